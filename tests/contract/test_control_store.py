"""The control store contract: the fake and DynamoDB must agree on every condition a use case relies on."""

from __future__ import annotations

import pytest

from chalicelib.domain.errors import AlreadyExistsError, ConcurrentUpdateError
from chalicelib.domain.ids import Prefix, new_id

TEAM, OTHER_TEAM = new_id(Prefix.TEAM), new_id(Prefix.TEAM)


def a_source(name: str = "stripe", **extra):
    return {"id": new_id(Prefix.SOURCE), "team_id": TEAM, "name": name, "version": 1, "config": {"n": 1.5}, **extra}


def test_a_created_resource_reads_back_by_id_by_name_and_in_the_list(store):
    # Given
    doc = a_source()
    # When
    store.create(TEAM, "source", doc, unique="stripe")
    # Then
    assert store.get(TEAM, "source", doc["id"]) == doc
    assert store.get_by_unique(TEAM, "source", "stripe") == doc
    assert store.list(TEAM, "source") == [doc]
    assert store.team_of(doc["id"]) == TEAM


def test_a_second_resource_with_the_same_name_is_refused_with_the_existing_one(store):
    # Given
    first = a_source()
    store.create(TEAM, "source", first, unique="stripe")
    # When
    with pytest.raises(AlreadyExistsError) as caught:
        store.create(TEAM, "source", a_source(), unique="stripe")
    # Then
    assert caught.value.data == first
    assert caught.value.code == "RESOURCE_ALREADY_EXISTS"
    assert len(store.list(TEAM, "source")) == 1


def test_names_are_unique_per_team_and_kind_only(store):
    # Given
    store.create(TEAM, "source", a_source(), unique="stripe")
    # When
    store.create(OTHER_TEAM, "source", a_source(team_id=OTHER_TEAM), unique="stripe")
    store.create(TEAM, "destination", {"id": new_id(Prefix.DESTINATION), "version": 1}, unique="stripe")
    # Then
    assert len(store.list(OTHER_TEAM, "source")) == 1
    assert len(store.list(TEAM, "destination")) == 1


def test_another_teams_resource_is_invisible(store):
    # Given
    doc = a_source()
    store.create(TEAM, "source", doc, unique="stripe")
    # Then
    assert store.get(OTHER_TEAM, "source", doc["id"]) is None
    assert store.list(OTHER_TEAM, "source") == []
    assert store.get_by_unique(OTHER_TEAM, "source", "stripe") is None


def test_replace_succeeds_only_from_the_version_it_read(store):
    # Given
    doc = a_source()
    store.create(TEAM, "source", doc, unique="stripe")
    updated = {**doc, "version": 2, "description": "new"}
    # When
    store.replace(TEAM, "source", updated, expected_version=1, old_unique="stripe", unique="stripe")
    # Then
    assert store.get(TEAM, "source", doc["id"]) == updated
    with pytest.raises(ConcurrentUpdateError):
        store.replace(TEAM, "source", {**doc, "version": 2}, expected_version=1, old_unique="stripe", unique="stripe")


def test_a_rename_moves_the_name_claim_and_frees_the_old_name(store):
    # Given
    doc = a_source()
    store.create(TEAM, "source", doc, unique="stripe")
    # When
    store.replace(
        TEAM,
        "source",
        {**doc, "name": "billing", "version": 2},
        expected_version=1,
        old_unique="stripe",
        unique="billing",
    )
    # Then
    assert store.get_by_unique(TEAM, "source", "billing")["name"] == "billing"
    assert store.get_by_unique(TEAM, "source", "stripe") is None
    store.create(TEAM, "source", a_source(), unique="stripe")


def test_a_rename_onto_a_taken_name_is_refused_and_changes_nothing(store):
    # Given
    first, second = a_source(), a_source("github")
    store.create(TEAM, "source", first, unique="stripe")
    store.create(TEAM, "source", second, unique="github")
    # When
    with pytest.raises(AlreadyExistsError):
        store.replace(
            TEAM,
            "source",
            {**second, "name": "stripe", "version": 2},
            expected_version=1,
            old_unique="github",
            unique="stripe",
        )
    # Then
    assert store.get(TEAM, "source", second["id"]) == second
    assert store.get_by_unique(TEAM, "source", "github") == second


def test_delete_removes_the_resource_its_name_and_its_reference_once(store):
    # Given
    doc = a_source()
    store.create(TEAM, "source", doc, unique="stripe")
    # When
    first, second = (
        store.delete(TEAM, "source", doc["id"], unique="stripe"),
        store.delete(TEAM, "source", doc["id"], unique="stripe"),
    )
    # Then
    assert (first, second) == (True, False)
    assert store.get(TEAM, "source", doc["id"]) is None
    assert store.team_of(doc["id"]) is None
    store.create(TEAM, "source", a_source(), unique="stripe")


def test_first_login_creates_one_account_and_later_logins_find_it(store):
    # Given
    user = {"id": new_id(Prefix.USER), "name": "Ada", "version": 1}
    team = {"id": TEAM, "name": "Ada's team", "created_at": "2026-04-17T00:00:00.000Z"}
    # When
    created = store.create_account("google#123", user, team)
    again = store.create_account("google#123", {**user, "id": new_id(Prefix.USER)}, team)
    # Then
    assert (created, again) == (True, False)
    assert store.find_login("google#123") == user["id"]
    assert store.get_user(user["id"]) == user
    assert store.get_team(TEAM)["name"] == "Ada's team"
    assert [m["team_id"] for m in store.memberships(user["id"])] == [TEAM]


def test_sessions_are_stored_read_and_deleted_by_token_hash(store):
    # Given
    session = {"user_id": "usr_x", "expires_at_epoch": 2_000_000_000, "expires_at": "x"}
    # When
    store.put_session("abc", session)
    # Then
    assert store.get_session("abc") == session
    store.delete_session("abc")
    assert store.get_session("abc") is None


def test_saving_secrets_moves_the_api_key_lookup_to_the_new_key(store):
    # Given
    store.save_secrets(
        TEAM, {"version": 1, "api_key": "k1"}, expected_version=None, old_key_hash=None, new_key_hash="h1"
    )
    # When
    store.save_secrets(TEAM, {"version": 2, "api_key": "k2"}, expected_version=1, old_key_hash="h1", new_key_hash="h2")
    # Then
    assert store.team_for_api_key("h1") is None
    assert store.team_for_api_key("h2") == TEAM
    assert store.get_secrets(TEAM)["version"] == 2


def test_secrets_refuse_a_stale_version_a_second_creation_and_a_key_another_team_holds(store):
    # Given
    store.save_secrets(TEAM, {"version": 1}, expected_version=None, old_key_hash=None, new_key_hash="h1")
    # Then
    with pytest.raises(ConcurrentUpdateError):
        store.save_secrets(TEAM, {"version": 1}, expected_version=None, old_key_hash=None, new_key_hash="h9")
    with pytest.raises(ConcurrentUpdateError):
        store.save_secrets(TEAM, {"version": 3}, expected_version=2, old_key_hash="h1", new_key_hash="h1")
    with pytest.raises(AlreadyExistsError):
        store.save_secrets(OTHER_TEAM, {"version": 1}, expected_version=None, old_key_hash=None, new_key_hash="h1")
    assert store.team_for_api_key("h1") == TEAM
    assert store.team_for_api_key("h9") is None


def test_an_id_alone_finds_the_team_and_the_current_document(store):
    # Given
    doc = a_source()
    store.create(TEAM, "source", doc, unique="stripe")
    updated = {**doc, "version": 2, "description": "now"}
    store.replace(TEAM, "source", updated, expected_version=1, old_unique="stripe", unique="stripe")
    # Then
    assert store.lookup(doc["id"]) == (TEAM, updated)
    store.delete(TEAM, "source", doc["id"], unique="stripe")
    assert store.lookup(doc["id"]) is None


def test_every_resource_write_moves_the_routing_version_of_its_team_only(store):
    # Given
    start, other = store.routing_version(TEAM), store.routing_version(OTHER_TEAM)
    doc = a_source()
    # When
    store.create(TEAM, "source", doc, unique="stripe")
    after_create = store.routing_version(TEAM)
    store.replace(TEAM, "source", {**doc, "version": 2}, expected_version=1, old_unique="stripe", unique="stripe")
    after_replace = store.routing_version(TEAM)
    store.delete(TEAM, "source", doc["id"], unique="stripe")
    # Then
    assert start < after_create < after_replace < store.routing_version(TEAM)
    assert store.routing_version(OTHER_TEAM) == other


def test_team_resources_returns_every_kind_in_one_call(store):
    # Given
    src = a_source()
    store.create(TEAM, "source", src, unique="stripe")
    dest = {"id": new_id(Prefix.DESTINATION), "version": 1, "name": "d"}
    store.create(TEAM, "destination", dest, unique="d")
    store.save_secrets(TEAM, {"version": 1}, expected_version=None, old_key_hash=None, new_key_hash="h")
    # When
    found = store.team_resources(TEAM)
    # Then
    assert found == {"source": [src], "destination": [dest]}
    assert store.team_resources(OTHER_TEAM) == {}
