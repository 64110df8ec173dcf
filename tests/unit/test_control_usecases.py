"""Control use cases against the in-memory fakes: auth, secrets and resource mechanics, no IO."""

from __future__ import annotations

import threading

import pytest

from chalicelib.adapters.memory import FixedClock, MemoryControlStore
from chalicelib.control import auth, connections, secrets, sources
from chalicelib.control import resources as res
from chalicelib.domain.errors import ConcurrentUpdateError, ForbiddenError, UnauthorizedError, ValidationError
from chalicelib.domain.models import ConnectionCreate, SourceCreate, SourceUpdate
from chalicelib.domain.validation import validate


@pytest.fixture()
def store() -> MemoryControlStore:
    return MemoryControlStore()


@pytest.fixture()
def clock() -> FixedClock:
    return FixedClock()


def login(store, clock):
    return auth.login_demo(accounts=store, clock=clock, session_ttl_s=3600)


def test_concurrent_first_demo_logins_create_exactly_one_user_and_team(store, clock):
    # Given
    results: list[dict] = []
    threads = [threading.Thread(target=lambda: results.append(login(store, clock))) for _ in range(8)]
    # When
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    # Then
    assert len({r["user"]["id"] for r in results}) == 1
    assert len({r["team"]["id"] for r in results}) == 1
    assert len({r["token"] for r in results}) == 8


def test_a_session_is_valid_until_it_expires(store, clock):
    # Given
    token = login(store, clock)["token"]
    # When
    clock.advance(seconds=3599)
    principal = auth.authenticate(authorization=f"Bearer {token}", requested_team=None, accounts=store, clock=clock)
    clock.advance(seconds=1)
    # Then
    assert principal.kind == "session" and principal.user_id
    with pytest.raises(UnauthorizedError):
        auth.authenticate(authorization=f"Bearer {token}", requested_team=None, accounts=store, clock=clock)


def test_the_bearer_scheme_is_case_insensitive_but_required(store, clock):
    # Given
    token = login(store, clock)["token"]
    # Then
    assert auth.authenticate(authorization=f"bearer {token}", requested_team=None, accounts=store, clock=clock)
    with pytest.raises(UnauthorizedError):
        auth.authenticate(authorization=token, requested_team=None, accounts=store, clock=clock)


def test_an_api_key_resolves_to_its_team_and_refuses_another(store, clock):
    # Given
    team = login(store, clock)["team"]["id"]
    key = secrets.get_project_secrets(team_id=team, accounts=store, clock=clock)["api_key"]["value"]
    # When
    principal = auth.authenticate(authorization=f"Bearer {key}", requested_team=None, accounts=store, clock=clock)
    # Then
    assert (principal.kind, principal.team_id, principal.user_id) == ("api_key", team, None)
    with pytest.raises(ForbiddenError):
        auth.authenticate(authorization=f"Bearer {key}", requested_team="tm_other", accounts=store, clock=clock)


def test_racing_first_reads_of_secrets_agree_on_one_pair(store, clock):
    # Given
    team = login(store, clock)["team"]["id"]
    seen: list[str] = []
    threads = [
        threading.Thread(
            target=lambda: seen.append(
                secrets.get_project_secrets(team_id=team, accounts=store, clock=clock)["api_key"]["value"]
            )
        )
        for _ in range(8)
    ]
    # When
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    # Then
    assert len(set(seen)) == 1
    assert store.team_for_api_key(auth.hash_token(seen[0])) == team


def test_rotation_stamps_only_the_rotated_secret(store, clock):
    # Given
    team = login(store, clock)["team"]["id"]
    before = secrets.get_project_secrets(team_id=team, accounts=store, clock=clock)
    clock.advance(hours=1)
    # When
    after = secrets.rotate_project_secrets(team_id=team, names=["api_key"], accounts=store, clock=clock)
    # Then
    assert after["api_key"]["last_rotated_at"] > before["api_key"]["last_rotated_at"]
    assert after["signing_secret"] == before["signing_secret"]


class FlakyStore(MemoryControlStore):
    """Loses the first `failures` conditional writes, as if another writer got there first."""

    def __init__(self, failures: int) -> None:
        super().__init__()
        self.failures = failures

    def replace(self, *args, **kwargs):
        if self.failures:
            self.failures -= 1
            raise ConcurrentUpdateError()
        return super().replace(*args, **kwargs)


def test_an_update_that_loses_a_race_rereads_and_applies_again(clock):
    # Given
    store = FlakyStore(failures=2)
    created = sources.create_source(team_id="tm_a", body=SourceCreate(name="s"), store=store, clock=clock)
    # When
    updated = sources.update_source(
        team_id="tm_a", source_id=created["id"], body=SourceUpdate(description="d"), store=store, clock=clock
    )
    # Then
    assert updated["description"] == "d"
    assert updated["version"] == 2


def test_an_update_that_keeps_losing_races_is_a_conflict_not_a_silent_success(clock):
    # Given
    store = FlakyStore(failures=res.UPDATE_TRIES)
    created = sources.create_source(team_id="tm_a", body=SourceCreate(name="s"), store=store, clock=clock)
    # Then
    with pytest.raises(ConcurrentUpdateError):
        sources.update_source(
            team_id="tm_a", source_id=created["id"], body=SourceUpdate(description="d"), store=store, clock=clock
        )
    assert store.get("tm_a", "source", created["id"])["description"] is None


def test_an_update_that_changes_nothing_does_not_bump_the_version(store, clock):
    # Given
    created = sources.create_source(team_id="tm_a", body=SourceCreate(name="s"), store=store, clock=clock)
    # When
    again = sources.update_source(
        team_id="tm_a", source_id=created["id"], body=SourceUpdate(name="s"), store=store, clock=clock
    )
    # Then
    assert again["version"] == 1


def test_disabling_twice_keeps_the_first_disabled_at(store, clock):
    # Given
    created = sources.create_source(team_id="tm_a", body=SourceCreate(name="s"), store=store, clock=clock)
    first = sources.set_source_enabled(team_id="tm_a", source_id=created["id"], enabled=False, store=store, clock=clock)
    clock.advance(minutes=5)
    # When
    second = sources.set_source_enabled(
        team_id="tm_a", source_id=created["id"], enabled=False, store=store, clock=clock
    )
    # Then
    assert second["disabled_at"] == first["disabled_at"]


def test_a_connection_to_a_disabled_source_starts_disabled_and_follows_the_source(store, clock):
    # Given
    src = sources.create_source(team_id="tm_a", body=SourceCreate(name="s"), store=store, clock=clock)
    sources.set_source_enabled(team_id="tm_a", source_id=src["id"], enabled=False, store=store, clock=clock)
    body = validate(
        ConnectionCreate,
        {"name": "c", "source_id": src["id"], "destination": {"name": "d", "config": {"url": "https://example.com/h"}}},
    )
    # When
    conn = connections.create_connection(team_id="tm_a", body=body, store=store, clock=clock)
    sources.set_source_enabled(team_id="tm_a", source_id=src["id"], enabled=True, store=store, clock=clock)
    # Then
    assert conn["disabled_at"] is not None
    assert store.get("tm_a", "connection", conn["id"])["disabled_at"] is None


def test_rules_are_validated_before_anything_is_written(store, clock):
    # Given
    body = validate(
        ConnectionCreate,
        {
            "name": "c",
            "source": {"name": "new-src"},
            "destination": {"name": "d", "config": {"url": "https://example.com"}},
            "rules": [{"type": "delay", "delay": -1}],
        },
    )
    # Then
    with pytest.raises(ValidationError) as caught:
        connections.create_connection(team_id="tm_a", body=body, store=store, clock=clock)
    assert caught.value.field == "rules[0].delay"
    assert store.list("tm_a", "source") == [] and store.list("tm_a", "destination") == []


@pytest.mark.parametrize(
    ("stored", "given", "merged"),
    [
        ({"a": 1, "b": 2}, None, {"a": 1, "b": 2}),
        ({"a": 1, "b": 2}, {"b": 3}, {"a": 1, "b": 3}),
        ({"auth_type": "HMAC", "auth": {"k": 1}}, {"auth_type": None}, {}),
        ({"auth_type": "HMAC", "auth": {"k": 1}}, {"auth": {"k": 2}}, {"auth_type": "HMAC", "auth": {"k": 2}}),
    ],
)
def test_config_updates_merge_key_by_key(stored, given, merged):
    assert res.merge_config(stored, given) == merged
