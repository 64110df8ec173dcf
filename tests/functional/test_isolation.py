"""Tenant isolation over every route: no team reaches another team's data, whatever id it names.

Two teams live on one embedded stack: team A (the demo user, with a source, destination,
transformation, connection and one webhook driven through the pipeline, so it owns a request, an
event, an attempt and whatever else the pipeline records) and team B (a second user, created
through the Google login use case with a stand-in verifier). The matrix is derived from the
declared routes: every route with an id in its path is called by B with A's ids, and every
authenticated route is called by A naming B's team. A route added later joins the matrix by
itself; one whose id is of a kind this module cannot make yet fails, naming the kind to add.
"""

from __future__ import annotations

import re
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import pytest
import requests

import app  # noqa: F401  (declares every route, so the matrix sees all of them)
from chalicelib.domain.identity import ExternalIdentity
from chalicelib.entrypoints.api import ROUTES, RouteSpec
from tests.support.receiver import Receiver, wait_until

PARAM = re.compile(r"{([^}]+)}")
# The kind of id a path parameter names: its own name, or for `resource_id` the collection before it.
PARAM_KINDS = {
    "attempt_id": "attempt",
    "event_id": "event",
    "request_id": "request",
    "execution_id": "execution",
}
COLLECTION_KINDS = {
    "sources": "source",
    "destinations": "destination",
    "connections": "connection",
    "transformations": "transformation",
}


def _kind(path: str, param: str) -> str | None:
    segments = path.split("{" + param + "}")[0].strip("/").split("/")
    if param == "operation_id":  # events and requests each have bulk operations of their own
        return f"{segments[0]}_bulk_operation"
    if param != "resource_id":
        return PARAM_KINDS.get(param)
    return COLLECTION_KINDS.get(segments[-1])


def _operations(*, with_ids: bool) -> list[tuple[str, str, RouteSpec]]:
    seen: set[tuple[str, str]] = set()
    operations = []
    for route in ROUTES:
        if route.public or (with_ids and not PARAM.search(route.path)):
            continue
        for method in route.methods:
            if (method, route.path) not in seen:
                seen.add((method, route.path))
                operations.append((method, route.path, route))
    return operations


ID_OPERATIONS = _operations(with_ids=True)
ALL_OPERATIONS = _operations(with_ids=False)
ID_READS = [path for method, path, _ in ID_OPERATIONS if method == "GET"]


class OneIdentity:
    """An IdentityVerifier that vouches for one person, whatever the credential."""

    def __init__(self, email: str) -> None:
        self.email = email

    def verify(self, credential: str) -> ExternalIdentity:
        return ExternalIdentity("google", f"sub-{self.email}", self.email, True, "Team B Owner", None)


@dataclass
class Team:
    id: str
    token: str
    api_key: str
    ids: dict[str, str] = field(default_factory=dict)
    names: list[str] = field(default_factory=list)


@dataclass
class World:
    url: str
    http: requests.Session
    a: Team
    b: Team

    def call(
        self, method: str, path: str, token: str, body: Any = None, headers: dict[str, str] | None = None
    ) -> requests.Response:
        return self.http.request(
            method,
            f"{self.url}/v1{path}",
            json=body,
            headers={"Authorization": f"Bearer {token}", **(headers or {})},
            timeout=30,
        )


def _ok(response: requests.Response) -> Any:
    assert response.status_code < 300, (response.request.method, response.request.url, response.text)
    return response.json()


def _eventually(check: Callable[[], Any], timeout_s: float = 20.0) -> Any:
    deadline = time.monotonic() + timeout_s
    while (value := check()) is None or value == []:
        if time.monotonic() > deadline:
            raise AssertionError(f"gave up waiting for {check}")
        time.sleep(0.1)
    return value


def _team_b(world_url: str, http: requests.Session) -> Team:
    from chalicelib import wiring
    from chalicelib.control.auth import login_google

    deps = wiring.container()
    session = login_google(
        credential="any",
        team_id=None,
        verifier=OneIdentity(f"b-{uuid.uuid4().hex[:8]}@example.test"),
        accounts=deps.accounts,
        clock=deps.clock,
        session_ttl_s=deps.settings.session_ttl_s,
    )
    token = session["token"]
    secrets = _ok(http.get(f"{world_url}/v1/project-secrets", headers={"Authorization": f"Bearer {token}"}))
    return Team(session["team"]["id"], token, secrets["api_key"]["value"])


def _populate_team_a(world: World, receiver: Receiver) -> None:
    """Team A's resources, and one webhook through the pipeline so it owns records of every kind."""
    a, tag = world.a, uuid.uuid4().hex[:8]

    def post(path: str, body: dict[str, Any]) -> Any:
        return _ok(world.call("POST", path, a.token, body))

    transformation = post(
        "/transformations",
        {"name": f"a-trs-{tag}", "code": "addHandler('transform', (request) => request);"},
    )
    connection = post(
        "/connections",
        {
            "name": f"a-conn-{tag}",
            "source": {"name": f"a-src-{tag}"},
            "destination": {"name": f"a-dest-{tag}", "config": {"url": receiver.url("/a")}},
            "rules": [{"type": "transform", "transformation_id": transformation["id"]}],
        },
    )
    a.ids.update(
        source=connection["source"]["id"],
        destination=connection["destination"]["id"],
        connection=connection["id"],
        transformation=transformation["id"],
    )
    a.names += [f"a-trs-{tag}", f"a-conn-{tag}", f"a-src-{tag}", f"a-dest-{tag}"]

    # Bulk retries made while the source has nothing yet: they exist, but retry nothing.
    for collection in ("events", "requests"):
        bulk = world.call("POST", f"/{collection}/bulk_operations", a.token, {"source_id": a.ids["source"]})
        if bulk.status_code in (200, 201, 202):
            a.ids[f"{collection}_bulk_operation"] = bulk.json()["id"]

    sent = world.http.post(f"{world.url}/e/{a.ids['source']}", data=b'{"secret_of_a": true}', timeout=30)
    assert sent.status_code == 200, sent.text
    assert wait_until(lambda: len(receiver.requests) >= 1, timeout_s=20)

    def first(path: str) -> str | None:
        models = _ok(world.call("GET", path, a.token))["models"]
        return models[0]["id"] if models else None

    a.ids["request"] = _eventually(lambda: first(f"/requests?source_id={a.ids['source']}"))
    a.ids["event"] = _eventually(lambda: first(f"/events?source_id={a.ids['source']}"))
    a.ids["attempt"] = _eventually(lambda: first(f"/attempts?event_id={a.ids['event']}"))
    executions = world.call("GET", f"/transformations/{a.ids['transformation']}/executions", a.token)
    if executions.status_code == 200 and executions.json()["models"]:
        a.ids["execution"] = executions.json()["models"][0]["id"]


@pytest.fixture(scope="module")
def world() -> Iterator[World]:
    from local.server import LocalServer
    from local.stack import EmbeddedStack
    from local.workers import Workers

    server = LocalServer(0)
    stack = EmbeddedStack(http_port=server.port, stage="isolation").start()
    server.start()
    workers = Workers(sweep_every_s=60.0).start()
    http = requests.Session()
    try:
        with Receiver() as receiver:
            demo = _ok(http.post(f"{server.url}/v1/auth/demo/login", timeout=30))
            secrets = _ok(
                http.get(f"{server.url}/v1/project-secrets", headers={"Authorization": f"Bearer {demo['token']}"})
            )
            a = Team(demo["team"]["id"], demo["token"], secrets["api_key"]["value"])
            created = World(server.url, http, a, _team_b(server.url, http))
            _populate_team_a(created, receiver)
            yield created
    finally:
        workers.stop()
        server.stop()
        stack.stop()


def _path_with_ids(path: str, ids: dict[str, str]) -> str:
    def fill(match: re.Match[str]) -> str:
        kind = _kind(path, match.group(1))
        assert kind is not None, f"{path}: no id kind known for {{{match.group(1)}}}; add it to PARAM_KINDS"
        if kind not in ids:
            pytest.skip(f"team A has no {kind} yet on the embedded stack (needed by {path})")
        return ids[kind]

    return PARAM.sub(fill, path)


def _body_for(route: RouteSpec) -> dict[str, Any] | None:
    """A body that passes validation, so the answer is the handler's, not the validator's 422."""
    if route.body is None:
        return None
    return {"name": f"taken-by-b-{uuid.uuid4().hex[:6]}"} if "name" in route.body.model_fields else {}


def _assert_no_data_of(team: Team, response: requests.Response) -> None:
    body = response.json()
    assert set(body) <= {"error", "message", "code", "field"}, body
    for name in team.names:
        assert name not in response.text


@pytest.mark.parametrize("credential", ["session", "api_key"])
@pytest.mark.parametrize(("method", "path", "route"), ID_OPERATIONS, ids=[f"{m} {p}" for m, p, _ in ID_OPERATIONS])
def test_another_teams_ids_are_not_found_and_reveal_nothing(
    world: World, method: str, path: str, route: RouteSpec, credential: str
) -> None:
    # Given: team B's credential and a path naming team A's resources
    token = world.b.token if credential == "session" else world.b.api_key
    target = _path_with_ids(path, world.a.ids)

    # When
    response = world.call(method, target, token, _body_for(route))

    # Then
    assert response.status_code == 404, (method, target, response.text)
    _assert_no_data_of(world.a, response)


@pytest.mark.parametrize("path", ID_READS)
def test_the_owner_reads_its_own_ids_on_every_get(world: World, path: str) -> None:
    # Given: the ids the matrix uses are real (a 404 for B proves nothing about ids that do not exist);
    # only reads are replayed by the owner, as its writes would change the world the matrix runs on
    target = _path_with_ids(path, world.a.ids)

    # When
    response = world.call("GET", target, world.a.token)

    # Then
    assert response.status_code == 200, (target, response.text)


@pytest.mark.parametrize("credential", ["session", "api_key"])
@pytest.mark.parametrize(("method", "path", "route"), ALL_OPERATIONS, ids=[f"{m} {p}" for m, p, _ in ALL_OPERATIONS])
def test_naming_a_team_one_is_not_in_is_forbidden_on_every_route(
    world: World, method: str, path: str, route: RouteSpec, credential: str
) -> None:
    # Given: team A's credential, team A's own ids, and team B's id in x-team-id
    token = world.a.token if credential == "session" else world.a.api_key
    target = PARAM.sub(lambda m: world.a.ids.get(_kind(path, m.group(1)) or "", "x_unknown"), path)

    # When
    response = world.call(method, target, token, _body_for(route), headers={"x-team-id": world.b.id})

    # Then
    assert response.status_code == 403, (method, target, response.text)
    _assert_no_data_of(world.b, response)


def test_the_other_teams_writes_changed_nothing_of_team_a(world: World) -> None:
    # Given: the matrix above has run B's writes (updates, deletes, pauses, retries) against A's ids
    # When
    names = {
        kind: _ok(world.call("GET", f"/{kind}s/{world.a.ids[kind]}", world.a.token))["name"]
        for kind in ("source", "destination", "connection", "transformation")
    }
    connection = _ok(world.call("GET", f"/connections/{world.a.ids['connection']}", world.a.token))
    events = _ok(world.call("GET", f"/events?source_id={world.a.ids['source']}", world.a.token))["models"]
    attempts = _ok(world.call("GET", f"/attempts?event_id={world.a.ids['event']}", world.a.token))["models"]

    # Then: nothing renamed, deleted, disabled or paused, and no retry of A's request or event ran
    assert all(name.startswith("a-") for name in names.values()), names
    assert connection["disabled_at"] is None and connection["paused_at"] is None
    assert [event["id"] for event in events] == [world.a.ids["event"]]
    assert [attempt["id"] for attempt in attempts] == [world.a.ids["attempt"]]


def test_lists_show_only_the_callers_team(world: World) -> None:
    # When
    listed = {
        credential: _ok(world.call("GET", "/sources", token))["models"]
        for credential, token in (("session", world.b.token), ("api_key", world.b.api_key))
    }
    counted = _ok(world.call("GET", "/requests/count", world.b.token))

    # Then
    assert listed == {"session": [], "api_key": []}
    assert counted["count"] == 0


def test_an_api_key_acts_for_its_own_team_only(world: World) -> None:
    # When
    as_a = world.call("GET", f"/sources/{world.a.ids['source']}", world.a.api_key)
    as_b = world.call("GET", f"/sources/{world.a.ids['source']}", world.b.api_key)

    # Then
    assert as_a.status_code == 200 and as_a.json()["id"] == world.a.ids["source"]
    assert as_b.status_code == 404


def _own_path(path: str, world: World) -> str:
    return PARAM.sub(lambda m: world.a.ids.get(_kind(path, m.group(1)) or "", "x_unknown"), path)


def test_a_logged_out_session_is_refused_on_every_route_at_once(world: World) -> None:
    # Given
    token = _ok(world.http.post(f"{world.url}/v1/auth/demo/login", timeout=30))["token"]
    assert world.call("GET", "/auth/me", token).status_code == 200

    # When
    _ok(world.call("POST", "/auth/logout", token))
    answers = {(m, p): world.call(m, _own_path(p, world), token).status_code for m, p, _ in ALL_OPERATIONS}

    # Then
    assert {key: status for key, status in answers.items() if status != 401} == {}
    assert world.call("GET", "/auth/me", world.a.token).status_code == 200


def test_a_rotated_api_key_is_refused_on_every_route_at_once(world: World) -> None:
    # Given: team B's key (rotating A's would break the matrix's api_key cases)
    old_key = world.b.api_key

    # When
    rotated = _ok(world.call("POST", "/project-secrets/rotate", world.b.token, {"rotate": ["api_key"]}))
    world.b.api_key = rotated["api_key"]["value"]
    answers = {(m, p): world.call(m, _own_path(p, world), old_key).status_code for m, p, _ in ALL_OPERATIONS}

    # Then
    assert {key: status for key, status in answers.items() if status != 401} == {}
    assert world.call("GET", "/sources", world.b.api_key).status_code == 200
