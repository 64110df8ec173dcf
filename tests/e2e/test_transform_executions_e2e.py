"""Transformation executions on the embedded stack: each run the route worker makes is listed with its logs.

A webhook goes in through ingest, the route worker runs the connection's transformation in the
quickjs-ng sandbox, and `GET /transformations/:id/executions` shows the run as a user reads it.
"""

from __future__ import annotations

import uuid

from tests.e2e.conftest import eventually

TWO_LEVELS = (
    "addHandler('transform', (request, context) => {"
    "  console.log('order', request.body.id);"
    "  if (request.body.amount % 2 === 0) console.warn('even amount', request.body.amount);"
    "  request.body = { order: request.body.id };"
    "  return request;"
    "});"
)
FAILING = (
    "addHandler('transform', (request) => {"
    "  console.info('checking', request.body.id);"
    "  console.error('no amount');"
    "  throw new Error('amount missing');"
    "});"
)


def transforming(fasthook, receiver, code: str) -> tuple[dict, dict]:
    """A transformation and a connection to `receiver` that runs it."""
    made = fasthook.ok("POST", "/transformations", {"name": f"t-{uuid.uuid4().hex[:10]}", "code": code})
    conn = fasthook.route(receiver, rules=[{"type": "transform", "transformation_id": made["id"]}])
    return made, conn


def executions(fasthook, transformation: dict, query: str = "", *, count: int = 1) -> dict:
    """The executions list once it holds at least `count` runs."""

    def listed() -> dict | None:
        status, body = fasthook.api("GET", f"/transformations/{transformation['id']}/executions{query}")
        assert status == 200, body
        return body if body["count"] >= count else None

    return eventually(listed)


def test_a_delivered_webhook_lists_its_execution_with_logs_linked_to_its_request_and_event(fasthook, receiver):
    # Given
    transformation, conn = transforming(fasthook, receiver, TWO_LEVELS)
    # When
    request_id = fasthook.send(conn["source"]["id"], b'{"id":"ord_1","amount":4}').json()["request_id"]
    receiver.wait_for(1, timeout_s=20)
    [execution] = executions(fasthook, transformation)["models"]
    detail = fasthook.ok("GET", f"/transformations/{transformation['id']}/executions/{execution['id']}")
    # Then
    [event] = fasthook.ok("GET", f"/requests/{request_id}/events")["models"]
    assert execution["status"] == "SUCCESSFUL"
    assert (execution["request_id"], execution["event_id"], execution["connection_id"]) == (
        request_id,
        event["id"],
        conn["id"],
    )
    assert execution["logs"] == [
        {"level": "log", "message": "order ord_1"},
        {"level": "warn", "message": "even amount 4"},
    ]
    assert detail["original_event_data"]["body"] == {"id": "ord_1", "amount": 4}
    assert detail["transformed_event_data"]["body"] == {"order": "ord_1"}


def test_a_failing_transformation_lists_a_failed_execution_with_the_error_and_the_lines_before_it(fasthook, receiver):
    # Given
    transformation, conn = transforming(fasthook, receiver, FAILING)
    # When
    request_id = fasthook.send(conn["source"]["id"], b'{"id":"ord_2"}').json()["request_id"]
    [execution] = executions(fasthook, transformation)["models"]
    # Then
    assert execution["status"] == "FAILED"
    assert execution["error"] == "Error: amount missing"
    assert execution["logs"] == [
        {"level": "info", "message": "checking ord_2"},
        {"level": "error", "message": "no amount"},
    ]
    assert execution["log_level"] == "error"
    assert (execution["request_id"], execution["event_id"]) == (request_id, None)
    assert execution["ignored_id"].startswith("ign_")
    assert receiver.requests == []


def test_executions_page_with_a_cursor_and_filter_by_log_level(fasthook, receiver):
    # Given
    transformation, conn = transforming(fasthook, receiver, TWO_LEVELS)
    sent = [
        fasthook.send(conn["source"]["id"], f'{{"id":"ord_{n}","amount":{n}}}'.encode()).json()["request_id"]
        for n in (1, 2, 3)
    ]
    executions(fasthook, transformation, count=3)
    # When
    first = executions(fasthook, transformation, "?limit=2&dir=asc")
    second = executions(fasthook, transformation, f"?limit=2&dir=asc&cursor={first['pagination']['next']}", count=0)
    warned = executions(fasthook, transformation, "?log_level=warn")
    # Then
    assert [m["request_id"] for m in first["models"] + second["models"]] == sent
    assert second["pagination"]["next"] is None
    assert [m["request_id"] for m in warned["models"]] == [sent[1]]


def test_unknown_transformations_and_executions_are_404(fasthook, receiver):
    # Given
    transformation, _ = transforming(fasthook, receiver, TWO_LEVELS)
    # When
    answers = [
        fasthook.api("GET", "/transformations/trs_01HZZZZZZZZZZZZZZZZZZZZZZZ/executions"),
        fasthook.api("GET", f"/transformations/{transformation['id']}/executions/exe_01HZZZZZZZZZZZZZZZZZZZZZZZ"),
        fasthook.api("GET", f"/transformations/{transformation['id']}/executions/not-an-id"),
    ]
    # Then
    assert [(status, body["error"]) for status, body in answers] == [(404, "not_found")] * 3
