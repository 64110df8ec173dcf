"""Bulk retry and replay as an operator drives them: on the embedded stack, Step Functions on moto runs the
state machine of infra/, whose task Lambdas are FastHook's handlers run in-process."""

from __future__ import annotations

from typing import Any

from tests.e2e.conftest import eventually
from tests.support.receiver import Response


def _operation(fasthook: Any, kind: str, operation_id: str) -> dict[str, Any]:
    models = fasthook.ok("GET", f"/{kind}/bulk_operations?limit=100")["models"]
    return next(op for op in models if op["id"] == operation_id)


def test_failed_events_retried_in_bulk_become_successful_with_bulk_retry_attempts(fasthook, receiver):
    # Given five events that failed because the receiver was down
    receiver.answer_always(Response(status=503))
    connection = fasthook.route(receiver)
    for n in range(5):
        assert fasthook.send(connection["source"]["id"], f'{{"n":{n}}}'.encode()).status_code == 200
    query = f"status=failed&connection_id={connection['id']}"
    eventually(lambda: fasthook.ok("GET", f"/events/count?{query}")["count"] == 5)
    listed = fasthook.ok("GET", f"/events?{query}")["models"]

    # When the receiver is fixed and the failed events are retried in bulk with the list's filters
    receiver.answer_always(Response(status=200))
    created = fasthook.ok("POST", "/events/bulk_operations", {"status": "failed", "connection_id": connection["id"]})
    done = eventually(
        lambda: (
            (op := _operation(fasthook, "events", created["id"]))["done_count"] == 5
            and op["status"] == "completed"
            and op
        ),
        timeout_s=60,
    )

    # Then every listed event is SUCCESSFUL, its last attempt a BULK_RETRY, and the operation counted five
    assert (done["total_count"], done["queued_count"], done["done_count"], done["failed_count"]) == (5, 5, 5, 0)
    assert done["progress"] == 1.0 and done["cancelable"] is False
    for event in listed:
        assert fasthook.records.get_event(event["id"])["status"] == "SUCCESSFUL"
        attempts = fasthook.ok("GET", f"/attempts?event_id={event['id']}")["models"]
        assert sorted(a["trigger"] for a in attempts) == ["BULK_RETRY", "INITIAL"]
    retried = fasthook.ok("GET", f"/events?batch_operation_id={created['id']}")["models"]
    assert sorted(e["id"] for e in retried) == sorted(e["id"] for e in listed)
    # and a finished operation cannot be cancelled
    status, body = fasthook.api("POST", f"/events/bulk_operations/{created['id']}/cancel")
    assert status == 409, body


def test_requests_replayed_in_bulk_go_through_the_current_routing(fasthook, receiver):
    # Given two requests of a source that had one connection
    connection = fasthook.route(receiver, path="/first")
    source_id = connection["source"]["id"]
    for n in range(2):
        assert fasthook.send(source_id, f'{{"n":{n}}}'.encode()).status_code == 200
    receiver.wait_for(2, timeout_s=20)
    # and a second connection of the same source added afterwards
    fasthook.ok(
        "POST",
        "/connections",
        {
            "name": "second",
            "source_id": source_id,
            "destination": {"name": "d-second", "config": {"url": receiver.url("/second")}},
        },
    )

    # When the source's requests are replayed in bulk
    created = fasthook.ok("POST", "/requests/bulk_operations", {"source_id": source_id})
    eventually(lambda: _operation(fasthook, "requests", created["id"])["status"] == "completed", timeout_s=60)

    # Then each replay is a new request that reached both connections
    replays = fasthook.ok("GET", f"/requests?batch_operation_id={created['id']}")["models"]
    assert len(replays) == 2 and {r["retry_kind"] for r in replays} == {"bulk"}
    paths = eventually(lambda: (p := sorted(r.path for r in receiver.requests)) and len(p) == 6 and p)
    assert paths == ["/first"] * 4 + ["/second"] * 2


def test_retries_that_fail_again_are_done_and_failed(fasthook, receiver):
    # Given two events that failed, and a receiver that is still down
    receiver.answer_always(Response(status=500))
    connection = fasthook.route(receiver)
    for n in range(2):
        assert fasthook.send(connection["source"]["id"], f'{{"n":{n}}}'.encode()).status_code == 200
    eventually(
        lambda: fasthook.ok("GET", f"/events/count?status=failed&connection_id={connection['id']}")["count"] == 2
    )

    # When they are retried in bulk
    created = fasthook.ok("POST", "/events/bulk_operations", {"status": "failed", "connection_id": connection["id"]})
    done = eventually(
        lambda: (
            (op := _operation(fasthook, "events", created["id"]))["done_count"] == 2
            and op["status"] == "completed"
            and op
        ),
        timeout_s=60,
    )

    # Then both retries finished and both count as failed; the events stay FAILED after a BULK_RETRY attempt
    assert (done["status"], done["queued_count"], done["done_count"], done["failed_count"]) == ("completed", 2, 2, 2)
    for event in fasthook.ok("GET", f"/events?batch_operation_id={created['id']}")["models"]:
        assert event["status"] == "FAILED"
        attempts = fasthook.ok("GET", f"/attempts?event_id={event['id']}")["models"]
        assert sorted(a["trigger"] for a in attempts) == ["BULK_RETRY", "INITIAL"]
