"""schemathesis over every operation of `/v1/openapi.json`, served by the local HTTP server.

The operations come from the document the server publishes, which is generated from the declared
routes: a route added tomorrow is fuzzed tomorrow without touching this file. Every example is sent
with a live demo session token, so the fuzzer reaches the handlers instead of stopping at the 401.
Checks: no 5xx, every status code and body the document's, the media type it promises, and that an
operation documented as authenticated refuses a caller without a token.
"""

from __future__ import annotations

import json
import urllib.request
from typing import Any

import pytest
import schemathesis
from hypothesis import HealthCheck, settings
from schemathesis.checks import not_a_server_error
from schemathesis.core.parameters import ParameterLocation
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    ignored_auth,
    response_schema_conformance,
    status_code_conformance,
)

from local.server import LocalServer
from tests.fuzz.api_schema import control_api_schema

# What every operation must do: no 5xx, documented statuses, media types and bodies, and every operation that
# declares bearer auth refuses a request without it (one probe per operation per run).
CHECKS = (
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_schema_conformance,
    ignored_auth,
)


def _call(server: LocalServer, method: str, path: str, token: str | None = None, body: Any = None) -> Any:
    request = urllib.request.Request(
        f"{server.url}/v1{path}",
        method=method,
        data=json.dumps(body).encode() if body is not None else b"",
        headers={"Content-Type": "application/json", **({"Authorization": f"Bearer {token}"} if token else {})},
    )
    with urllib.request.urlopen(request, timeout=15) as answer:
        return json.loads(answer.read())


def _login(server: LocalServer) -> str:
    return _call(server, "POST", "/auth/demo/login")["token"]


@pytest.fixture(scope="module")
def demo_token(fuzz_server: LocalServer) -> str:
    return _login(fuzz_server)


@pytest.fixture(scope="module")
def demo_ids(fuzz_server: LocalServer, demo_token: str) -> dict[str, str]:
    """The demo team's id and its real resources' ids, by the collection whose `{resource_id}` they fill."""
    transformation = _call(
        fuzz_server,
        "POST",
        "/transformations",
        demo_token,
        {"name": "fuzz-trs", "code": "addHandler('transform', (request) => request);"},
    )
    connection = _call(
        fuzz_server,
        "POST",
        "/connections",
        demo_token,
        {
            "name": "fuzz-conn",
            "source": {"name": "fuzz-src"},
            "destination": {"name": "fuzz-dest", "config": {"url": "https://receiver.example.test/fuzz"}},
            "rules": [{"type": "transform", "transformation_id": transformation["id"]}],
        },
    )
    return {
        "team": _call(fuzz_server, "GET", "/auth/me", demo_token)["team"]["id"],
        "sources": connection["source"]["id"],
        "destinations": connection["destination"]["id"],
        "connections": connection["id"],
        "transformations": transformation["id"],
    }


def _aim_at_the_demo_team(case: schemathesis.Case, ids: dict[str, str]) -> None:
    """Point valid examples at the demo team and its real resources; invalid parts keep their values.

    A random `x-team-id` or `team_id` only ever reaches the 403 branch and a random id the 404 one;
    aimed at real ones, the rest of an example (bodies, filters, flags) reaches the handlers.
    """

    def valid(location: ParameterLocation) -> bool:
        return case.meta is None or not case.meta.is_negative_at(location)

    if case.headers and "x-team-id" in case.headers and valid(ParameterLocation.HEADER):
        case.headers["x-team-id"] = ids["team"]
    if case.query and "team_id" in case.query and valid(ParameterLocation.QUERY):
        case.query["team_id"] = ids["team"]
    collection = case.operation.path.strip("/").split("/")[0]
    if case.path_parameters and "resource_id" in case.path_parameters and valid(ParameterLocation.PATH):
        case.path_parameters["resource_id"] = ids.get(collection, case.path_parameters["resource_id"])


schema = control_api_schema()


def test_the_fuzzed_document_is_the_one_the_server_publishes(fuzz_server: LocalServer) -> None:
    # When
    with urllib.request.urlopen(f"{fuzz_server.url}/v1/openapi.json", timeout=15) as answer:
        published = json.loads(answer.read())

    # Then
    assert published == json.loads(json.dumps(schema.raw_schema))


@schema.parametrize()
@settings(deadline=None, suppress_health_check=list(HealthCheck))
def test_every_operation_answers_as_documented_without_server_errors(
    case: schemathesis.Case, fuzz_server: LocalServer, demo_token: str, demo_ids: dict[str, str]
) -> None:
    # Given: logout ends the session it is called with, so it gets a session of its own
    token = _login(fuzz_server) if case.operation.path == "/auth/logout" else demo_token
    _aim_at_the_demo_team(case, demo_ids)

    # When / Then
    case.call_and_validate(
        base_url=f"{fuzz_server.url}/v1", headers={"Authorization": f"Bearer {token}"}, checks=list(CHECKS)
    )
