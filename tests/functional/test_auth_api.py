"""Logins, sessions, profiles, logout and team resolution through the HTTP API."""

from __future__ import annotations

import pytest
from cryptography.hazmat.primitives.asymmetric import rsa

from chalicelib import wiring
from chalicelib.adapters.google_tokens import GoogleIdTokenVerifier
from tests.support.google_certs import CLIENT_ID, serve_certs, sign

PREFIXES = ["", "/v1", "/api/control/v1"]


def test_demo_login_returns_a_token_user_session_and_memberships(anon):
    # When
    status, body = anon.post("/auth/demo/login")
    # Then
    assert status == 200
    assert body["token"].startswith("fht_")
    assert body["user"]["email"] == "demo@fasthook.local"
    assert body["session"]["expires_at"].endswith("Z")
    assert body["memberships"][0]["team_id"].startswith("tm_")
    assert body["team"]["id"] == body["memberships"][0]["team_id"]


def test_every_demo_login_is_a_new_session_of_the_same_demo_user_and_team(anon):
    # When
    _, first = anon.post("/auth/demo/login")
    _, second = anon.post("/auth/demo/login")
    # Then
    assert first["token"] != second["token"]
    assert first["user"]["id"] == second["user"]["id"]
    assert first["team"]["id"] == second["team"]["id"]


@pytest.mark.parametrize("path", ["/auth/me", "/v1/auth/me", "/api/control/v1/auth/me", "/api/auth/me"])
def test_the_profile_answers_under_every_auth_prefix(api, path):
    # When
    status, body = api.as_(api.token, prefix="").get(path)
    # Then
    assert status == 200
    assert body["user"]["name"] == "Demo User"
    assert body["auth"] == "session"


def test_demo_login_works_under_the_dashboard_auth_prefix(anon):
    # When
    status, body = anon.as_(None, prefix="").post("/api/auth/demo/login")
    # Then
    assert status == 200 and body["token"].startswith("fht_")


@pytest.mark.parametrize("method", ["PATCH", "PUT"])
def test_a_profile_update_changes_the_name(api, method):
    # When
    status, body = api.call(method, "/auth/me", {"name": "Grace Hopper"})
    # Then
    assert status == 200
    assert body["user"]["name"] == "Grace Hopper"
    assert api.get("/auth/me")[1]["user"]["name"] == "Grace Hopper"


@pytest.mark.parametrize(
    ("payload", "field"),
    [
        ({}, "name"),
        ({"name": ""}, "name"),
        ({"name": "x" * 121}, "name"),
        ({"name": 42}, "name"),
    ],
)
def test_a_profile_update_without_a_valid_name_is_rejected_naming_name(api, payload, field):
    # When
    status, body = api.patch("/auth/me", payload)
    # Then
    assert status == 422
    assert body["error"] == "validation_error"
    assert body["field"] == field


def test_a_profile_update_with_invalid_json_is_a_400(api):
    # When
    status, body = api.call("PATCH", "/auth/me", raw="{name: ")
    # Then
    assert status == 400
    assert body["error"] == "invalid_json"


def test_a_profile_update_needs_a_user_session_not_an_api_key(api):
    # Given
    key = api.get("/project-secrets")[1]["api_key"]["value"]
    # When
    status, body = api.as_(key).patch("/auth/me", {"name": "Robot"})
    # Then
    assert status == 403
    assert "session" in body["message"]


def test_logout_kills_the_token_and_only_that_token(anon):
    # Given
    first = anon.post("/auth/demo/login")[1]["token"]
    second = anon.post("/auth/demo/login")[1]["token"]
    # When
    status, _ = anon.as_(first).post("/auth/logout")
    # Then
    assert status == 200
    assert anon.as_(first).get("/auth/me")[0] == 401
    assert anon.as_(second).get("/auth/me")[0] == 200


@pytest.mark.parametrize(
    "headers",
    [
        {},
        {"Authorization": "Bearer "},
        {"Authorization": "Basic dXNlcjpwYXNz"},
        {"Authorization": "Bearer fht_not-a-session"},
        {"Authorization": "Bearer fhp_not-a-key"},
    ],
)
def test_missing_or_bad_tokens_are_401_with_a_json_error(anon, headers):
    # When
    status, body = anon.get("/sources", headers=headers)
    # Then
    assert status == 401
    assert body["error"] == "unauthorized" and body["message"]


def test_an_expired_session_is_401(anon, clock):
    # Given
    token = anon.post("/auth/demo/login")[1]["token"]
    # When
    clock.advance(days=8)
    status, body = anon.as_(token).get("/auth/me")
    # Then
    assert status == 401
    assert "expired" in body["message"]


@pytest.mark.parametrize("how", ["header", "query"])
def test_naming_a_team_the_caller_is_not_in_is_403(api, how):
    # Given
    foreign = "tm_01M8547MZCKAJCA8VS2MAZA7PF"
    # When
    if how == "header":
        status, body = api.get("/sources", headers={"x-team-id": foreign})
    else:
        status, body = api.get(f"/sources?team_id={foreign}")
    # Then
    assert status == 403
    assert body["error"] == "forbidden"


def test_naming_ones_own_team_is_allowed_and_the_header_wins_over_the_query(api):
    # Given
    team = api.get("/auth/me")[1]["team"]["id"]
    # When
    status, _ = api.get("/sources?team_id=tm_01M8547MZCKAJCA8VS2MAZA7PF", headers={"x-team-id": team})
    # Then
    assert status == 200


def test_an_api_key_reaches_only_its_own_team(api):
    # Given
    key = api.get("/project-secrets")[1]["api_key"]["value"]
    team = api.get("/auth/me")[1]["team"]["id"]
    keyed = api.as_(key)
    # Then
    assert keyed.get("/sources")[0] == 200
    assert keyed.get("/sources", headers={"x-team-id": team})[0] == 200
    assert keyed.get("/sources", headers={"x-team-id": "tm_01M8547MZCKAJCA8VS2MAZA7PF"})[0] == 403
    profile = keyed.get("/auth/me")[1]
    assert profile["user"] is None and profile["team"]["id"] == team


def test_logout_with_an_api_key_is_refused_and_the_key_keeps_working(api):
    # Given
    key = api.get("/project-secrets")[1]["api_key"]["value"]
    # When
    status, body = api.as_(key).post("/auth/logout")
    # Then
    assert status == 400
    assert "rotat" in body["message"]
    assert api.as_(key).get("/sources")[0] == 200


# ---- Google ----------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def google_key() -> rsa.RSAPrivateKey:
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


@pytest.fixture()
def google(anon, google_key):
    """FastHook configured for Google login, with Google's keys served from 127.0.0.1."""
    with serve_certs(google_key) as certs:
        container = wiring.container()
        container.overrides["identity"] = GoogleIdTokenVerifier(
            CLIENT_ID, certs.url, http_timeout_s=2.0, clock=lambda: container.clock.now().timestamp()
        )
        container.__dict__.pop("identity", None)
        yield anon


def test_a_first_google_login_creates_the_user_and_a_personal_team(google, google_key, clock):
    # Given
    credential = sign(google_key, clock.now().timestamp(), email="ada@example.com", name="Ada Lovelace")
    # When
    status, body = google.post("/auth/google/login", {"credential": credential})
    # Then
    assert status == 200
    assert body["user"]["email"] == "ada@example.com"
    assert body["user"]["name"] == "Ada Lovelace"
    assert body["team"]["name"] == "Ada Lovelace's team"
    assert [m["team_id"] for m in body["memberships"]] == [body["team"]["id"]]
    me = google.as_(body["token"]).get("/auth/me")[1]
    assert me["user"]["id"] == body["user"]["id"]


def test_a_second_google_login_finds_the_same_user_and_team(google, google_key, clock):
    # Given
    credential = sign(google_key, clock.now().timestamp())
    _, first = google.post("/auth/google/login", {"credential": credential})
    # When
    _, second = google.post("/auth/google/login", {"credential": credential})
    # Then
    assert second["user"]["id"] == first["user"]["id"]
    assert second["team"]["id"] == first["team"]["id"]
    assert second["token"] != first["token"]


@pytest.mark.parametrize(
    "change",
    [
        {"aud": "someone-elses-client"},
        {"iss": "https://accounts.example.com"},
        {"exp": 1},
        {"email_verified": False},
    ],
)
def test_a_google_credential_that_fails_verification_is_401(google, google_key, clock, change):
    # Given
    credential = sign(google_key, clock.now().timestamp(), **change)
    # When
    status, body = google.post("/auth/google/login", {"credential": credential})
    # Then
    assert status == 401
    assert body["error"] == "unauthorized"
    assert credential not in body["message"]


def test_a_google_login_without_a_credential_is_422_naming_credential(google):
    # When
    status, body = google.post("/auth/google/login", {})
    # Then
    assert status == 422
    assert body["field"] == "credential"


def test_google_login_is_refused_when_no_client_id_is_configured(anon):
    # When
    status, body = anon.post("/auth/google/login", {"credential": "a.b.c"})
    # Then
    assert status == 401
    assert "not configured" in body["message"]
