"""Transformations on the embedded stack: a webhook reshaped in flight, as the loopback receiver sees it.

The route worker runs the connection's transform rule in the quickjs-ng sandbox; a failing
transformation leaves an ignored branch and the stored request untouched.
"""

from __future__ import annotations

import json
import uuid

from tests.e2e.conftest import eventually

REWRITE = (
    "addHandler('transform', (request, context) => {"
    "  request.body = { order: request.body.id, cents: request.body.amount * Number(process.env.RATE) };"
    "  request.headers['x-transformed-by'] = context.connection.name;"
    "  return request;"
    "});"
)


def transformation(fasthook, code: str, env: dict[str, str] | None = None) -> dict:
    body = {"name": f"t-{uuid.uuid4().hex[:10]}", "code": code, "env": env or {}}
    return fasthook.ok("POST", "/transformations", body)


def routed(fasthook, request_id: str) -> dict:
    """The stored request once the route worker finished with it."""
    return eventually(lambda: (r := fasthook.records.get_request(request_id)) and r.get("routed_at") and r)


def test_a_transformation_rewrites_the_body_and_adds_a_header_before_delivery(fasthook, receiver):
    # Given
    rule = {"type": "transform", "transformation_id": transformation(fasthook, REWRITE, {"RATE": "100"})["id"]}
    conn = fasthook.route(receiver, rules=[rule])
    # When
    answer = fasthook.send(conn["source"]["id"], b'{"id":"ord_7","amount":12}')
    [got] = receiver.wait_for(1, timeout_s=20)
    # Then
    assert answer.status_code == 200
    assert json.loads(got.body) == {"order": "ord_7", "cents": 1200}
    assert got.header("x-transformed-by") == conn["name"]
    stored = fasthook.records.get_request(answer.json()["request_id"])
    assert bytes(stored["body"]) == b'{"id":"ord_7","amount":12}'


def test_an_inline_transformation_rule_runs_too(fasthook, receiver):
    # Given
    inline = {"name": f"t-{uuid.uuid4().hex[:10]}", "code": REWRITE, "env": {"RATE": "10"}}
    conn = fasthook.route(receiver, rules=[{"type": "transformation", "transformation": inline}])
    # When
    fasthook.send(conn["source"]["id"], b'{"id":"ord_8","amount":3}')
    [got] = receiver.wait_for(1, timeout_s=20)
    # Then
    assert json.loads(got.body) == {"order": "ord_8", "cents": 30}


def test_a_throwing_transformation_ignores_the_branch_and_keeps_the_original_request(fasthook, receiver):
    # Given
    code = "addHandler('transform', (request) => { throw new Error('amount missing'); });"
    rule = {"type": "transform", "transformation_id": transformation(fasthook, code)["id"]}
    conn = fasthook.route(receiver, rules=[rule])
    body = b'{"id":"ord_9"}'
    # When
    request_id = fasthook.send(conn["source"]["id"], body).json()["request_id"]
    # Then
    [ignored] = eventually(lambda: fasthook.records.ignored_of_request(request_id))
    assert ignored["cause"] == "TRANSFORMATION_FAILED"
    assert ignored["message"] == "Error: amount missing"
    request = routed(fasthook, request_id)
    assert (request["events_count"], request["ignored_count"]) == (0, 1)
    assert bytes(request["body"]) == body
    assert receiver.requests == []


def test_the_server_keeps_serving_after_an_infinite_loop_transformation(fasthook, receiver):
    # Given
    looping = transformation(fasthook, "addHandler('transform', (request) => { for (;;) {} });")
    stuck = fasthook.route(receiver, path="/stuck", rules=[{"type": "transform", "transformation_id": looping["id"]}])
    healthy = fasthook.route(receiver, path="/healthy")
    # When
    stuck_id = fasthook.send(stuck["source"]["id"]).json()["request_id"]
    [ignored] = eventually(lambda: fasthook.records.ignored_of_request(stuck_id))
    answer = fasthook.send(healthy["source"]["id"])
    [got] = receiver.wait_for(1, timeout_s=20)
    # Then
    assert ignored["cause"] == "TRANSFORMATION_FAILED"
    assert ignored["message"] == "the transformation ran longer than 1 s of CPU time"
    assert answer.status_code == 200
    assert got.path == "/healthy"
    assert fasthook.api("GET", f"/transformations/{looping['id']}")[0] == 200
