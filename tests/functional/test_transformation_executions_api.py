"""GET /transformations/:id/executions and /executions/:executionId through the HTTP routes, on moto.

Requests are ingested and routed by the real use cases (ingest -> route, with the quickjs-ng engine),
so the executions are exactly what the route worker stores. One world is built per module: the
tests only read it.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from chalicelib import wiring
from chalicelib.domain import messages
from chalicelib.flow.ingest import Inbound, IngestLimits, accept_request
from chalicelib.flow.route import route_request
from tests.support.factories import make_connection, make_transformation, running_fasthook

LOGGING = (
    "addHandler('transform', (request, context) => {"
    "  console.log('order', request.body.n);"
    "  if (request.body.n % 2 === 0) console.warn('even order', request.body.n);"
    "  request.headers['x-n'] = String(request.body.n);"
    "  request.body = { order: request.body.n };"
    "  return request;"
    "});"
)
FAILING = (
    "addHandler('transform', (request) => {  console.info('checking amount');  throw new Error('amount missing');});"
)
UNKNOWN_TRS = "trs_01HZZZZZZZZZZZZZZZZZZZZZZZ"
UNKNOWN_EXE = "exe_01HZZZZZZZZZZZZZZZZZZZZZZZ"


class World:
    """Two transformations behind two connections, and the requests routed through them."""

    def __init__(self, api: Any, clock: Any) -> None:
        self.api, self.clock = api, clock
        self.deps = wiring.container()
        self.team = api.get("/auth/me")[1]["team"]["id"]
        self.logging = make_transformation(api, code=LOGGING)
        self.failing = make_transformation(api, code=FAILING)
        self.ok_conn = make_connection(api, rules=[{"type": "transform", "transformation_id": self.logging["id"]}])
        self.bad_conn = make_connection(api, rules=[{"type": "transform", "transformation_id": self.failing["id"]}])
        # Oldest first, one second apart: n=1, 2, 3 through the logging transformation.
        self.requests = [self.deliver(self.ok_conn, f'{{"n":{n}}}'.encode()) for n in (1, 2, 3)]
        self.failed_request = self.deliver(self.bad_conn, b'{"n":4}')

    def deliver(self, connection: dict[str, Any], body: bytes) -> str:
        """A provider call accepted by ingest and routed at once; one second passes after it."""
        settings = self.deps.settings
        answer = accept_request(
            inbound=Inbound(
                connection["source"]["id"], "POST", "/orders", "x=1", {"content-type": "application/json"}, body
            ),
            records=self.deps.records,
            resources=self.deps.resources,
            payloads=self.deps.payloads,
            queues=self.deps.queues,
            clock=self.clock,
            limits=IngestLimits(settings.max_body_bytes, settings.inline_body_bytes, settings.retention_days),
        )
        assert answer.request_id, answer
        route_request(
            message=messages.RouteRequest(team_id=self.team, request_id=answer.request_id),
            records=self.deps.records,
            resources=self.deps.resources,
            payloads=self.deps.payloads,
            queues=self.deps.queues,
            transformer=self.deps.transformer,
            routing=self.deps.routing,
            clock=self.clock,
            executions=self.deps.executions,
        )
        self.clock.advance(seconds=1)
        return answer.request_id

    def executions(self, transformation: dict[str, Any], query: str = "") -> tuple[int, Any]:
        return self.api.get(f"/transformations/{transformation['id']}/executions{query}")


@pytest.fixture(scope="module")
def world() -> Iterator[World]:
    with running_fasthook() as (client, clock):
        yield World(client, clock)


def assert_error(status: int, body: dict, expected_status: int, error: str) -> None:
    assert status == expected_status, body
    assert body["error"] == error
    assert isinstance(body["message"], str) and body["message"]


def test_each_routed_request_leaves_a_successful_execution_with_its_logs_linked_to_its_request_and_event(world):
    # When
    status, body = world.executions(world.logging)
    # Then
    assert status == 200, body
    assert body["count"] == 3
    newest = body["models"][0]
    assert newest["request_id"] == world.requests[-1]
    assert newest["status"] == "SUCCESSFUL"
    assert newest["error"] is None
    assert (newest["transformation_id"], newest["connection_id"]) == (world.logging["id"], world.ok_conn["id"])
    assert newest["logs"] == [{"level": "log", "message": "order 3"}]
    assert newest["log_level"] == "log"
    [event] = world.deps.records.events_of_request(world.requests[-1])
    assert newest["event_id"] == event["id"] and newest["ignored_id"] is None
    assert newest["id"].startswith("exe_") and newest["duration_ms"] >= 0
    even = body["models"][1]
    assert even["logs"] == [{"level": "log", "message": "order 2"}, {"level": "warn", "message": "even order 2"}]
    assert even["log_level"] == "warn"


def test_a_failing_transformation_leaves_a_failed_execution_with_the_error_and_the_lines_logged_before_it(world):
    # When
    status, body = world.executions(world.failing)
    # Then
    assert status == 200, body
    [execution] = body["models"]
    assert execution["status"] == "FAILED"
    assert execution["error"] == "Error: amount missing"
    assert execution["logs"] == [{"level": "info", "message": "checking amount"}]
    assert execution["request_id"] == world.failed_request
    assert execution["event_id"] is None
    [ignored] = world.deps.records.ignored_of_request(world.failed_request)
    assert execution["ignored_id"] == ignored["id"]


def test_the_detail_shows_the_logs_the_original_request_and_the_transformed_one(world):
    # Given
    listed = world.executions(world.logging)[1]["models"][-1]
    # When
    status, body = world.api.get(f"/transformations/{world.logging['id']}/executions/{listed['id']}")
    # Then
    assert status == 200, body
    assert {k: body[k] for k in listed} == listed
    assert body["original_event_data"]["body"] == {"n": 1}
    assert body["original_event_data"]["path"] == "/orders"
    assert body["transformed_event_data"]["body"] == {"order": 1}
    assert body["transformed_event_data"]["headers"]["x-n"] == "1"


def test_the_detail_of_a_failed_execution_has_no_transformed_data(world):
    # Given
    listed = world.executions(world.failing)[1]["models"][0]
    # When
    status, body = world.api.get(f"/transformations/{world.failing['id']}/executions/{listed['id']}")
    # Then
    assert status == 200, body
    assert body["original_event_data"]["body"] == {"n": 4}
    assert body["transformed_event_data"] is None


def test_executions_page_newest_first_through_the_next_and_prev_cursors(world):
    # When
    first = world.executions(world.logging, "?limit=2")[1]
    second = world.executions(world.logging, f"?limit=2&cursor={first['pagination']['next']}")[1]
    back = world.executions(world.logging, f"?limit=2&cursor={second['pagination']['prev']}")[1]
    # Then
    assert [m["request_id"] for m in first["models"]] == world.requests[:0:-1]
    assert [m["request_id"] for m in second["models"]] == world.requests[:1]
    assert second["pagination"]["next"] is None
    assert [m["id"] for m in back["models"]] == [m["id"] for m in first["models"]]


def test_executions_list_oldest_first_with_dir_asc(world):
    # When
    status, body = world.executions(world.logging, "?dir=asc")
    # Then
    assert status == 200, body
    assert [m["request_id"] for m in body["models"]] == world.requests


@pytest.mark.parametrize(
    ("level", "expected"), [("warn", [1]), ("log", [2, 1, 0]), ("error", []), ("warn,error", [1]), ("WARN", [1])]
)
def test_the_log_level_filter_keeps_executions_that_logged_a_line_of_that_level(world, level, expected):
    # When
    status, body = world.executions(world.logging, f"?log_level={level}")
    # Then
    assert status == 200, body
    assert [m["request_id"] for m in body["models"]] == [world.requests[i] for i in expected]


def test_the_time_window_keeps_executions_created_inside_it(world):
    # Given
    every = world.executions(world.logging, "?dir=asc")[1]["models"]
    middle = every[1]["created_at"]
    # When
    since = world.executions(world.logging, f"?from={middle}")[1]["models"]
    until = world.executions(world.logging, f"?created_at[lte]={middle}")[1]["models"]
    # Then
    assert [m["id"] for m in since] == [every[2]["id"], every[1]["id"]]
    assert [m["id"] for m in until] == [every[1]["id"], every[0]["id"]]


@pytest.mark.parametrize("bad_id", ["nonsense", "trs_x", "web_01HZZZZZZZZZZZZZZZZZZZZZZZ", UNKNOWN_TRS])
def test_executions_of_a_malformed_foreign_or_unknown_transformation_are_404(world, bad_id):
    # When
    answers = [
        world.api.get(f"/transformations/{bad_id}/executions"),
        world.api.get(f"/transformations/{bad_id}/executions/{UNKNOWN_EXE}"),
    ]
    # Then
    for status, body in answers:
        assert_error(status, body, 404, "not_found")


@pytest.mark.parametrize("bad_id", ["nonsense", "exe_x", "evt_01HZZZZZZZZZZZZZZZZZZZZZZZ", UNKNOWN_EXE])
def test_a_malformed_or_unknown_execution_id_is_404(world, bad_id):
    # When
    status, body = world.api.get(f"/transformations/{world.logging['id']}/executions/{bad_id}")
    # Then
    assert_error(status, body, 404, "not_found")


def test_an_execution_read_through_another_transformation_is_404(world):
    # Given
    execution = world.executions(world.failing)[1]["models"][0]
    # When
    status, body = world.api.get(f"/transformations/{world.logging['id']}/executions/{execution['id']}")
    # Then
    assert_error(status, body, 404, "not_found")


@pytest.mark.parametrize(
    "query", ["log_level=loud", "limit=101", "limit=0", "dir=up", "cursor=@@", "from=yesterday", "from=now&to=now-1h"]
)
def test_bad_list_parameters_are_400(world, query):
    # When
    status, body = world.executions(world.logging, f"?{query}")
    # Then
    assert_error(status, body, 400, "invalid_parameter")


def test_a_cursor_of_another_transformations_list_is_400(world):
    # Given
    cursor = world.executions(world.logging, "?limit=1")[1]["pagination"]["next"]
    # When
    status, body = world.executions(world.failing, f"?cursor={cursor}")
    # Then
    assert_error(status, body, 400, "invalid_parameter")


@pytest.mark.parametrize("prefix", ["", "/v1", "/api/control/v1"])
def test_execution_routes_answer_under_every_control_prefix(world, prefix):
    # Given
    client = world.api.as_(world.api.token, prefix=prefix)
    # When
    status, listed = client.get(f"/transformations/{world.failing['id']}/executions")
    one = client.get(f"/transformations/{world.failing['id']}/executions/{listed['models'][0]['id']}")
    # Then
    assert status == 200
    assert one[0] == 200 and one[1]["id"] == listed["models"][0]["id"]


def test_the_openapi_document_describes_both_execution_routes(world):
    # When
    status, body = world.api.get("/openapi.json")
    # Then
    assert status == 200
    listing = body["paths"]["/transformations/{resource_id}/executions"]["get"]
    assert {p["name"] for p in listing["parameters"]} >= {"resource_id", "log_level", "cursor", "limit", "from"}
    assert "/transformations/{resource_id}/executions/{execution_id}" in body["paths"]
