"""Bulk retry and replay use cases (chalicelib/bulk) against the in-memory fakes.

The state machine is played by hand: `plan_bulk_operation`, then `run_bulk_pages` as often as it asks
for more, exactly the calls the task Lambdas make. Page sizes are tiny so a few records make many pages.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest

from chalicelib.adapters.memory import (
    FixedClock,
    MemoryBulkRunner,
    MemoryBulkStore,
    MemoryControlStore,
    MemoryPayloadStore,
    MemoryQueues,
    MemoryRecordStore,
)
from chalicelib.bulk.cancel import cancel_bulk_operation
from chalicelib.bulk.plan import create_bulk_operation, plan_bulk_operation, present_operation
from chalicelib.bulk.run import RunResult, run_bulk_pages
from chalicelib.control import observe
from chalicelib.domain import messages
from chalicelib.domain.errors import ConflictError, InvalidParameterError, NotFoundError
from chalicelib.domain.ids import Prefix, derived_id, new_id
from chalicelib.domain.statuses import BulkType
from chalicelib.domain.timefmt import iso

TEAM = "tm_01M8547MZCKAJCA8VS2MAZA7PF"


class CrashingBulkStore(MemoryBulkStore):
    """A store whose next page record fails, as a task that dies after retrying a page but before recording it."""

    crash_next_advance = False

    def advance_operation(self, operation_id: str, *, cursor: str, next_cursor: str, counts: Any) -> bool:
        if self.crash_next_advance:
            self.crash_next_advance = False
            raise TimeoutError("the task timed out before it recorded its page")
        return super().advance_operation(operation_id, cursor=cursor, next_cursor=next_cursor, counts=counts)


class World:
    def __init__(self) -> None:
        self.clock = FixedClock()
        self.records = MemoryRecordStore()
        self.resources = MemoryControlStore()
        self.payloads = MemoryPayloadStore()
        self.queues = MemoryQueues()
        self.bulk = CrashingBulkStore()
        self.runner = MemoryBulkRunner()

    def connection(self) -> dict[str, Any]:
        source = {"id": new_id(Prefix.SOURCE), "name": new_id(Prefix.SOURCE), "version": 1}
        destination = {"id": new_id(Prefix.DESTINATION), "name": new_id(Prefix.DESTINATION), "version": 1}
        connection = {
            "id": new_id(Prefix.CONNECTION),
            "name": "c",
            "source_id": source["id"],
            "destination_id": destination["id"],
            "version": 1,
        }
        self.resources.create(TEAM, "source", source, unique=source["name"])
        self.resources.create(TEAM, "destination", destination, unique=destination["name"])
        self.resources.create(TEAM, "connection", connection, unique=f"{source['id']}/c")
        return connection

    def request(self, source_id: str) -> dict[str, Any]:
        now = self.clock.now()
        doc = {
            "id": new_id(Prefix.REQUEST),
            "team_id": TEAM,
            "source_id": source_id,
            "status": "accepted",
            "method": "POST",
            "path": "/p",
            "query": "",
            "headers": {},
            "body": b"{}",
            "body_key": None,
            "external_id": None,
            "ingested_at": iso(now),
            "routed_at": iso(now),
            "is_retry": False,
            "batch_operation_id": None,
            "expires_at": int((now + timedelta(days=30)).timestamp()),
        }
        assert self.records.put_request(doc)
        self.clock.advance(seconds=1)
        return doc

    def event(self, connection: dict[str, Any], status: str = "FAILED") -> dict[str, Any]:
        request = self.request(connection["source_id"])
        now = iso(self.clock.now())
        doc = {
            "id": derived_id(Prefix.EVENT, request["id"], connection["id"]),
            "team_id": TEAM,
            "request_id": request["id"],
            "connection_id": connection["id"],
            "source_id": connection["source_id"],
            "destination_id": connection["destination_id"],
            "status": status,
            "attempts": 1,
            "next_trigger": "INITIAL",
            "next_attempt_at": None,
            "created_at": now,
            "updated_at": now,
            "batch_operation_id": None,
            "expires_at": request["expires_at"],
        }
        assert self.records.put_event(doc)
        self.clock.advance(seconds=1)
        return doc

    def create(self, kind: BulkType, **filters: str) -> dict[str, Any]:
        operation = create_bulk_operation(
            team_id=TEAM,
            kind=kind,
            body=filters,
            bulk=self.bulk,
            resources=self.resources,
            runner=self.runner,
            clock=self.clock,
            retention_days=30,
        )
        self.clock.advance(seconds=1)
        return operation

    def plan(self, operation: dict[str, Any]) -> dict[str, Any]:
        return plan_bulk_operation(
            team_id=TEAM,
            operation_id=operation["id"],
            bulk=self.bulk,
            records=self.records,
            resources=self.resources,
            clock=self.clock,
        )

    def run(self, operation: dict[str, Any], *, page_size: int = 2, max_pages: int = 10) -> RunResult:
        return run_bulk_pages(
            team_id=TEAM,
            operation_id=operation["id"],
            bulk=self.bulk,
            records=self.records,
            resources=self.resources,
            payloads=self.payloads,
            queues=self.queues,
            clock=self.clock,
            page_size=page_size,
            max_pages=max_pages,
        )

    def run_to_end(self, operation: dict[str, Any], **kw: Any) -> dict[str, Any]:
        self.plan(operation)
        while self.run(operation, **kw).more:
            pass
        return self.shown(operation)

    def shown(self, operation: dict[str, Any]) -> dict[str, Any]:
        stored = self.bulk.get_operation(operation["id"])
        assert stored is not None
        return present_operation(stored)

    def delivered_triggers(self) -> list[tuple[str, str]]:
        decoded = [messages.decode(body) for body, _ in self.queues.deliver]
        return [(m.event_id, m.trigger) for m in decoded]  # type: ignore[attr-defined]


@pytest.fixture()
def world() -> World:
    return World()


def test_failed_events_retried_in_bulk_are_queued_once_each_with_trigger_bulk_retry(world):
    # Given five failed events and one delivered one
    connection = world.connection()
    failed = [world.event(connection) for _ in range(5)]
    world.event(connection, "SUCCESSFUL")
    operation = world.create(BulkType.EVENTS, status="failed")

    # When the operation runs to its end, two events a page
    shown = world.run_to_end(operation, page_size=2)

    # Then each failed event was queued once for a BULK_RETRY and carries the operation's id
    assert shown["status"] == "completed" and shown["total_count"] == 5 and shown["queued_count"] == 5
    assert sorted(world.delivered_triggers()) == sorted((e["id"], "BULK_RETRY") for e in failed)
    for event in failed:
        stored = world.records.get_event(event["id"])
        assert stored["status"] == "QUEUED" and stored["batch_operation_id"] == operation["id"]
    assert shown["cancelable"] is False and shown["completed_at"] is not None


def test_a_page_processed_twice_never_retries_an_item_twice(world):
    # Given an operation over four failed events whose first page's task dies before recording the page
    connection = world.connection()
    for _ in range(4):
        world.event(connection)
    operation = world.create(BulkType.EVENTS, status="failed")
    world.plan(operation)
    world.bulk.crash_next_advance = True
    with pytest.raises(TimeoutError):
        world.run(operation, page_size=2)

    # When Step Functions retries the task and the operation runs to its end
    while world.run(operation, page_size=2).more:
        pass

    # Then every event was queued exactly once, and the counters count each event once
    event_ids = [event_id for event_id, _ in world.delivered_triggers()]
    assert len(event_ids) == 4 and len(set(event_ids)) == 4
    shown = world.shown(operation)
    assert shown["queued_count"] == 4 and shown["total_count"] == 4


def test_cancel_stops_a_long_operation_and_cancels_retries_not_started(world):
    # Given an operation over six failed events, one event a page, that has run two pages
    connection = world.connection()
    events = [world.event(connection) for _ in range(6)]
    operation = world.create(BulkType.EVENTS, status="failed")
    world.plan(operation)
    assert world.run(operation, page_size=1, max_pages=2).more

    # When it is cancelled and the state machine runs its next pages task
    cancelled = cancel_bulk_operation(
        team_id=TEAM,
        operation_id=operation["id"],
        kind=BulkType.EVENTS,
        bulk=world.bulk,
        records=world.records,
        clock=world.clock,
    )
    after = world.run(operation, page_size=1)

    # Then no further retry is issued, and the two issued but not started became CANCELLED
    assert cancelled["status"] == "cancelled" and cancelled["cancelled_at"] is not None
    assert after.more is False and after.status == "cancelled"
    assert len(world.queues.deliver) == 2
    statuses = [world.records.get_event(e["id"])["status"] for e in events]
    assert statuses == ["CANCELLED", "CANCELLED", "FAILED", "FAILED", "FAILED", "FAILED"]
    shown = world.shown(operation)
    assert shown["queued_count"] == 2 and shown["done_count"] < shown["total_count"] == 6


def test_cancelling_a_finished_or_cancelled_operation_is_a_conflict(world):
    # Given a completed operation and a cancelled one
    connection = world.connection()
    world.event(connection)
    completed = world.create(BulkType.EVENTS)
    world.run_to_end(completed)
    cancelled = world.create(BulkType.EVENTS)
    cancel_bulk_operation(
        team_id=TEAM,
        operation_id=cancelled["id"],
        kind=BulkType.EVENTS,
        bulk=world.bulk,
        records=world.records,
        clock=world.clock,
    )

    # When / Then cancelling either again is a 409
    for operation in (completed, cancelled):
        with pytest.raises(ConflictError) as refused:
            cancel_bulk_operation(
                team_id=TEAM,
                operation_id=operation["id"],
                kind=BulkType.EVENTS,
                bulk=world.bulk,
                records=world.records,
                clock=world.clock,
            )
        assert refused.value.status_code == 409


def test_an_operation_of_another_kind_or_team_is_not_found(world):
    # Given an events operation
    operation = world.create(BulkType.EVENTS)

    # When / Then it cannot be reached as a requests operation, by another team, or by a malformed id
    for team, kind, operation_id in (
        (TEAM, BulkType.REQUESTS, operation["id"]),
        ("tm_01M8547MZCKAJCA8VS2MAZA7PG", BulkType.EVENTS, operation["id"]),
        (TEAM, BulkType.EVENTS, "bch_nope"),
    ):
        with pytest.raises(NotFoundError):
            cancel_bulk_operation(
                team_id=team,
                operation_id=operation_id,
                kind=kind,
                bulk=world.bulk,
                records=world.records,
                clock=world.clock,
            )


def test_filters_copied_from_a_list_query_select_exactly_the_listed_items(world):
    # Given failed events on two connections, and delivered ones on the first
    first, second = world.connection(), world.connection()
    for connection in (first, second, first, second, first):
        world.event(connection)
        world.event(connection, "SUCCESSFUL")
    filters = {"status": "failed", "connection_id": first["id"]}
    selection = observe.select_events(filters, team_id=TEAM, resources=world.resources, now=world.clock.now())
    listed, _ = observe.list_events(
        team_id=TEAM,
        selection=selection,
        paging=observe.page_request("events", filters, limit=100),
        records=world.records,
        resources=world.resources,
    )

    # When a bulk retry is made from the same filters
    operation = world.create(BulkType.EVENTS, **filters)
    shown = world.run_to_end(operation, page_size=1)

    # Then it retried exactly the events the list showed
    assert sorted(event_id for event_id, _ in world.delivered_triggers()) == sorted(e["id"] for e in listed)
    assert shown["total_count"] == len(listed) == 3 and shown["query"] == filters


def test_records_that_arrive_after_the_operation_was_made_are_not_part_of_it(world):
    # Given an open-ended operation over failed events, and a failed event that arrives after it was made
    connection = world.connection()
    before = world.event(connection)
    operation = world.create(BulkType.EVENTS, status="failed")
    world.event(connection)

    # When it runs
    shown = world.run_to_end(operation)

    # Then only the event that existed when it was made is retried
    assert world.delivered_triggers() == [(before["id"], "BULK_RETRY")]
    assert shown["total_count"] == 1


def test_a_request_replay_in_bulk_makes_one_replay_per_request_even_when_a_page_runs_twice(world):
    # Given three requests of a source and a replay operation whose first page's task dies before recording it
    connection = world.connection()
    originals = [world.request(connection["source_id"]) for _ in range(3)]
    operation = world.create(BulkType.REQUESTS, source_id=connection["source_id"])
    world.plan(operation)
    world.bulk.crash_next_advance = True
    with pytest.raises(TimeoutError):
        world.run(operation, page_size=2)

    # When the operation runs to its end
    while world.run(operation, page_size=2).more:
        pass

    # Then each request has one replay, marked as a bulk retry of it, handed to routing
    replay_ids = [derived_id(Prefix.REQUEST, operation["id"], r["id"]) for r in originals]
    replays = [world.records.get_request(rid) for rid in replay_ids]
    assert all(r is not None for r in replays)
    assert [(r["retry_of"], r["retry_kind"], r["batch_operation_id"]) for r in replays] == [
        (o["id"], "bulk", operation["id"]) for o in originals
    ]
    routed = [messages.decode(body).request_id for body in world.queues.route]  # type: ignore[attr-defined]
    assert set(routed) == set(replay_ids)
    shown = world.shown(operation)
    assert shown["status"] == "completed" and shown["queued_count"] == shown["done_count"] == 3


@pytest.mark.parametrize(
    ("kind", "filters", "named"),
    [
        (BulkType.EVENTS, {"status": "nope"}, "status"),
        (BulkType.EVENTS, {"status": "ignored"}, "ignored"),
        (BulkType.EVENTS, {"from": "yesterday"}, "from"),
        (BulkType.EVENTS, {"from": "now", "to": "now-1h"}, "after"),
        (BulkType.REQUESTS, {"status": "failed"}, "status"),
        (BulkType.REQUESTS, {"destination_id": "des_x"}, "destination_id"),
    ],
)
def test_a_bad_filter_is_refused_before_anything_is_stored(world, kind, filters, named):
    # Given / When a bulk operation is asked for with a filter the list endpoints would refuse
    with pytest.raises(InvalidParameterError) as refused:
        world.create(kind, **filters)

    # Then nothing was stored or started, and the message names the problem
    assert named in refused.value.message
    assert world.bulk.operations == {} and world.runner.started == []
