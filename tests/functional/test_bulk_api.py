"""Bulk operations through the HTTP routes, on moto, with the state machine's tasks run by hand.

Step Functions is replaced by the in-memory runner (it records the executions asked for); the test then
calls the task handlers the state machine would call (`entrypoints/bulk_tasks.py`), so every step is
deterministic. The embedded stack's real executions are covered in tests/e2e/test_bulk_e2e.py.
"""

from __future__ import annotations

from typing import Any

import pytest

from chalicelib import wiring
from chalicelib.adapters.memory import MemoryBulkRunner
from chalicelib.domain.ids import Prefix, derived_id, new_id
from chalicelib.domain.timefmt import iso
from chalicelib.entrypoints import bulk_tasks
from tests.support.factories import make_connection, stored_request


class World:
    def __init__(self, api: Any, clock: Any) -> None:
        self.api, self.clock = api, clock
        self.deps = wiring.container()
        self.runner = MemoryBulkRunner()
        self.deps.overrides["bulk_runner"] = self.runner
        self.team = api.get("/auth/me")[1]["team"]["id"]

    def connection(self) -> dict[str, Any]:
        made = make_connection(self.api)
        return {**made, "source_id": made["source"]["id"], "destination_id": made["destination"]["id"]}

    def request(self, source_id: str) -> dict[str, Any]:
        now = self.clock.now()
        doc = stored_request(now, team_id=self.team, source_id=source_id, events_count=1, routed_at=iso(now))
        assert self.deps.records.put_request(doc)
        self.clock.advance(seconds=1)
        return doc

    def event(self, connection: dict[str, Any], status: str = "FAILED") -> dict[str, Any]:
        request = self.request(connection["source_id"])
        now = iso(self.clock.now())
        doc = {
            "id": derived_id(Prefix.EVENT, request["id"], connection["id"]),
            "team_id": self.team,
            "request_id": request["id"],
            "connection_id": connection["id"],
            "source_id": connection["source_id"],
            "destination_id": connection["destination_id"],
            "status": status,
            "attempts": 1,
            "next_trigger": "INITIAL",
            "next_attempt_at": None,
            "last_attempt_at": now,
            "successful_at": None,
            "response_status": 500,
            "error_code": None,
            "created_at": now,
            "updated_at": now,
            "batch_operation_id": None,
            "data": None,
            "expires_at": request["expires_at"],
        }
        assert self.deps.records.put_event(doc)
        self.clock.advance(seconds=1)
        return doc

    def create(self, kind: str, body: dict[str, Any] | None = None) -> dict[str, Any]:
        status, operation = self.api.post(f"/{kind}/bulk_operations", body or {})
        assert status == 201, operation
        self.clock.advance(seconds=1)
        return operation

    def run(self, operation: dict[str, Any]) -> dict[str, Any]:
        """What the state machine does: plan, then the pages task until it answers more=false."""
        state = {"team_id": self.team, "operation_id": operation["id"], "version": 1}
        answer = bulk_tasks.handle_plan(state, None)
        while answer["more"]:
            answer = bulk_tasks.handle_pages(answer, None)
        return answer

    def listed(self, kind: str, query: str = "") -> list[dict[str, Any]]:
        status, body = self.api.get(f"/{kind}/bulk_operations{query}")
        assert status == 200, body
        return body["models"]


@pytest.fixture()
def world(api, clock) -> World:
    return World(api, clock)


def test_bulk_operation_lists_are_literal_routes_beside_event_and_request_ids(world):
    # Given no operation yet
    # When the lists are read under every prefix
    answers = [
        world.api.as_(world.api.token, prefix).get(f"/{kind}/bulk_operations")
        for prefix in ("", "/v1", "/api/control/v1")
        for kind in ("events", "requests")
    ]

    # Then each is an (empty) list envelope, not an event or request looked up by id
    assert all(status == 200 and body["models"] == [] and "pagination" in body for status, body in answers)


def test_failed_events_retried_in_bulk_are_queued_with_the_operation_id_and_counted(world):
    # Given three failed events of one connection and a delivered one
    connection = world.connection()
    failed = [world.event(connection) for _ in range(3)]
    world.event(connection, "SUCCESSFUL")

    # When a bulk retry of the failed events is made and its state machine runs
    created = world.create("events", {"status": "failed", "connection_id": connection["id"]})
    answer = world.run(created)

    # Then it was started once, ran to completed, and the failed events are QUEUED for a BULK_RETRY with its id
    assert created["status"] == "planned" and created["id"].startswith("bch_") and created["cancelable"] is True
    assert world.runner.started == [(world.team, created["id"])]
    assert answer == {**answer, "status": "completed", "more": False}
    [shown] = world.listed("events")
    assert (shown["status"], shown["total_count"], shown["queued_count"]) == ("completed", 3, 3)
    assert shown["query"] == {"status": "failed", "connection_id": connection["id"]}
    status, events = world.api.get(f"/events?batch_operation_id={created['id']}")
    assert status == 200 and sorted(e["id"] for e in events["models"]) == sorted(e["id"] for e in failed)
    assert {(e["status"], e["batch_operation_id"]) for e in events["models"]} == {("QUEUED", created["id"])}
    status, counted = world.api.get(f"/events/count?batch_operation_id={created['id']}")
    assert status == 200 and counted["count"] == 3


def test_requests_replayed_in_bulk_are_new_requests_marked_with_the_operation(world):
    # Given two requests of a source
    connection = world.connection()
    originals = [world.request(connection["source_id"]) for _ in range(2)]

    # When a bulk replay of the source's requests runs
    created = world.create("requests", {"source_id": connection["source_id"]})
    world.run(created)

    # Then each has one replay, a bulk retry of it listed by the operation's id
    status, replays = world.api.get(f"/requests?batch_operation_id={created['id']}")
    assert status == 200
    assert sorted(r["retry_of"] for r in replays["models"]) == sorted(r["id"] for r in originals)
    assert {(r["is_retry"], r["retry_kind"]) for r in replays["models"]} == {(True, "bulk")}
    [shown] = world.listed("requests")
    assert (shown["status"], shown["total_count"], shown["queued_count"], shown["done_count"]) == (
        "completed",
        2,
        2,
        2,
    )


def test_buckets_split_ongoing_from_finished_operations_newest_first_and_page(world):
    # Given a completed, a planned (not yet run) and a cancelled operation, oldest first
    completed = world.create("events")
    world.run(completed)
    planned = world.create("events")
    cancelled = world.create("events")
    assert world.api.post(f"/events/bulk_operations/{cancelled['id']}/cancel")[0] == 200

    # When each bucket is listed, and the whole list one a page
    ongoing, history, everything = (world.listed("events", f"?bucket={b}") for b in ("ongoing", "history", "all"))
    status, first = world.api.get("/events/bulk_operations?limit=1")
    status2, second = world.api.get(f"/events/bulk_operations?limit=1&cursor={first['pagination']['next']}")

    # Then each bucket holds exactly its operations, newest first, and the pages walk the list
    assert [op["id"] for op in ongoing] == [planned["id"]]
    assert [op["id"] for op in history] == [cancelled["id"], completed["id"]]
    assert [op["id"] for op in everything] == [cancelled["id"], planned["id"], completed["id"]]
    assert (status, status2) == (200, 200)
    assert [op["id"] for op in first["models"] + second["models"]] == [cancelled["id"], planned["id"]]
    assert world.listed("requests") == []


def test_cancel_answers_the_cancelled_operation_and_cancelling_a_finished_one_is_409(world):
    # Given a planned operation and a completed one
    planned = world.create("events")
    completed = world.create("events")
    world.run(completed)

    # When each is cancelled, and the cancelled one again
    cancelled = world.api.post(f"/events/bulk_operations/{planned['id']}/cancel")
    finished = world.api.post(f"/events/bulk_operations/{completed['id']}/cancel")
    again = world.api.post(f"/events/bulk_operations/{planned['id']}/cancel")

    # Then the first answers 200 cancelled, and the others are 409 that say why
    assert cancelled[0] == 200 and cancelled[1]["status"] == "cancelled" and cancelled[1]["cancelable"] is False
    assert finished[0] == 409 and "completed" in finished[1]["message"]
    assert again[0] == 409 and "cancelled" in again[1]["message"]
    # and the state machine that was still to run does nothing
    assert world.run(planned)["status"] == "cancelled"


@pytest.mark.parametrize(
    ("kind", "body", "status", "named"),
    [
        ("events", {"status": "nope"}, 400, "status"),
        ("events", {"status": "ignored"}, 400, "ignored"),
        ("events", {"from": "yesterday"}, 400, "from"),
        ("events", {"from": "now", "to": "now-1h"}, 400, "from"),
        ("events", {"limit": "5"}, 422, "limit"),
        ("events", {"source_id": 5}, 422, "source_id"),
        ("requests", {"status": "failed"}, 400, "status"),
        ("requests", {"destination_id": "des_x"}, 422, "destination_id"),
    ],
)
def test_a_bad_filter_is_refused_and_nothing_starts(world, kind, body, status, named):
    # Given / When an operation is asked for with a filter the list endpoints would refuse
    answer, error = world.api.post(f"/{kind}/bulk_operations", body)

    # Then it is refused naming the field, and no execution was started
    assert answer == status and named in error["message"] and set(error) >= {"error", "message"}
    assert world.runner.started == []


def test_unknown_malformed_and_other_kind_ids_are_404_and_a_bad_bucket_is_400(world):
    # Given an events operation
    operation = world.create("events")

    # When ids that are not the team's operations of that kind are cancelled
    answers = [
        world.api.post(f"/events/bulk_operations/{new_id(Prefix.BULK_OPERATION)}/cancel"),
        world.api.post("/events/bulk_operations/not-an-id/cancel"),
        world.api.post(f"/requests/bulk_operations/{operation['id']}/cancel"),
    ]

    # Then each is a 404, and a bucket that does not exist is a 400
    assert [status for status, _ in answers] == [404, 404, 404]
    status, error = world.api.get("/events/bulk_operations?bucket=recent")
    assert status == 400 and "bucket" in error["message"]


def test_without_a_configured_state_machine_creating_is_a_503_and_the_operation_is_failed(api):
    # Given a FastHook whose FASTHOOK_BULK_STATE_MACHINE_ARN is not set (moto here has no state machine)
    # When a bulk retry is asked for
    status, error = api.post("/events/bulk_operations", {"status": "failed"})

    # Then it says so, and the operation it stored is not left waiting as planned
    assert status == 503 and "FASTHOOK_BULK_STATE_MACHINE_ARN" in error["message"]
    _, ongoing = api.get("/events/bulk_operations?bucket=ongoing")
    _, history = api.get("/events/bulk_operations?bucket=history")
    assert ongoing["models"] == [] and [op["status"] for op in history["models"]] == ["failed"]


def test_a_task_that_fails_for_good_marks_the_operation_failed_but_never_a_finished_one(world):
    # Given a running operation and a completed one
    running = world.create("events")
    bulk_tasks.handle_plan({"team_id": world.team, "operation_id": running["id"]}, None)
    completed = world.create("events")
    world.run(completed)

    # When the state machine's catch calls the fail task for each
    error = {"Error": "Lambda.Unknown", "Cause": '{"errorMessage": "boom at line 3"}'}
    answers = [
        bulk_tasks.handle_fail({"team_id": world.team, "operation_id": op["id"], "error": error}, None)
        for op in (running, completed)
    ]

    # Then the running one is failed, showing the error's name only, and the completed one is untouched
    assert [answer["status"] for answer in answers] == ["failed", "completed"]
    shown = {op["id"]: op for op in world.listed("events")}
    assert shown[running["id"]]["status"] == "failed" and shown[running["id"]]["error"] == "Lambda.Unknown"
    assert shown[running["id"]]["cancelable"] is False and shown[completed["id"]]["status"] == "completed"
