"""Project secrets: lazy creation, masking, setting, rotation, and the old key dying at once."""

from __future__ import annotations

import pytest


def test_secrets_are_created_on_first_read_and_stay_the_same_afterwards(api):
    # When
    status, first = api.get("/project-secrets")
    _, second = api.get("/project-secrets")
    # Then
    assert status == 200
    assert first["api_key"]["value"].startswith("fhp_")
    assert first["api_key"]["masked_value"].endswith(first["api_key"]["value"][-4:])
    assert first["api_key"]["value"] not in first["api_key"]["masked_value"]
    assert first["signing_secret"]["value"] != first["api_key"]["value"]
    assert first == second


def test_rotating_with_an_empty_body_replaces_both_and_the_old_key_stops_working(api):
    # Given
    before = api.get("/project-secrets")[1]
    old_key = before["api_key"]["value"]
    assert api.as_(old_key).get("/sources")[0] == 200
    # When
    status, after = api.post("/project-secrets/rotate")
    # Then
    assert status == 200
    assert after["api_key"]["value"] != old_key
    assert after["signing_secret"]["value"] != before["signing_secret"]["value"]
    assert api.as_(old_key).get("/sources")[0] == 401
    assert api.as_(after["api_key"]["value"]).get("/sources")[0] == 200


def test_rotating_only_the_signing_secret_keeps_the_api_key(api):
    # Given
    before = api.get("/project-secrets")[1]
    # When
    status, after = api.post("/project-secrets/rotate", {"rotate": ["signing_secret"]})
    # Then
    assert status == 200
    assert after["api_key"] == before["api_key"]
    assert after["signing_secret"]["value"] != before["signing_secret"]["value"]


def test_a_rotation_called_with_the_api_key_itself_returns_the_new_key_that_works(api):
    # Given
    old_key = api.get("/project-secrets")[1]["api_key"]["value"]
    # When
    status, after = api.as_(old_key).post("/project-secrets/rotate", {"rotate": ["api_key"]})
    # Then
    assert status == 200
    assert api.as_(after["api_key"]["value"]).get("/auth/me")[0] == 200
    assert api.as_(old_key).get("/auth/me")[0] == 401


def test_putting_a_chosen_api_key_makes_it_the_teams_key(api):
    # When
    status, body = api.put("/project-secrets", {"api_key": "fhp_my-own-chosen-key-123"})
    # Then
    assert status == 200
    assert body["api_key"]["value"] == "fhp_my-own-chosen-key-123"
    assert api.as_("fhp_my-own-chosen-key-123").get("/sources")[0] == 200


@pytest.mark.parametrize(
    ("payload", "field"),
    [
        ({}, "body"),
        ({"api_key": "short"}, "api_key"),
        ({"signing_secret": "has spaces in it"}, "signing_secret"),
        ({"api_key": 123456789012345}, "api_key"),
        ({"colour": "blue"}, "colour"),
    ],
)
def test_a_secrets_update_that_breaks_the_rules_is_422_naming_the_field(api, payload, field):
    # When
    status, body = api.put("/project-secrets", payload)
    # Then
    assert status == 422
    assert body["error"] == "validation_error"
    assert body["field"] == field


@pytest.mark.parametrize("payload", [{"rotate": ["password"]}, {"rotate": "api_key"}])
def test_rotating_an_unknown_secret_is_422(api, payload):
    # When
    status, body = api.post("/project-secrets/rotate", payload)
    # Then
    assert status == 422
    assert body["field"].startswith("rotate")


def test_putting_only_the_signing_secret_keeps_the_api_key_working(api):
    # Given
    key = api.get("/project-secrets")[1]["api_key"]["value"]
    # When
    status, body = api.put("/project-secrets", {"signing_secret": "fhw_a-new-signing-secret"})
    # Then
    assert status == 200
    assert body["signing_secret"]["value"] == "fhw_a-new-signing-secret"
    assert body["api_key"]["value"] == key
    assert api.as_(key).get("/sources")[0] == 200
