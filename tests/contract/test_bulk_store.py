"""The BulkStore contract: the in-memory fake and DynamoDB on moto answer every call the same way."""

from __future__ import annotations

from typing import Any

import pytest

from chalicelib.domain.ids import Prefix, new_id

TEAM = "tm_01M8547MZCKAJCA8VS2MAZA7PF"
OTHER_TEAM = "tm_01M8547MZCKAJCA8VS2MAZA7PG"


@pytest.fixture(params=["memory", "dynamodb"])
def bulk(request: pytest.FixtureRequest):
    from chalicelib.adapters.memory import MemoryBulkStore

    if request.param == "memory":
        yield MemoryBulkStore()
        return
    aws = request.getfixturevalue("aws")
    import boto3

    from chalicelib.adapters.dynamo.bulk import DynamoBulkStore
    from tests.contract.conftest import AtomicCalls

    yield DynamoBulkStore(AtomicCalls(boto3.client("dynamodb")), aws["FASTHOOK_RECORDS_TABLE"])


def operation(n: int, *, team: str = TEAM, kind: str = "events", status: str = "planned", **fields: Any) -> dict:
    return {
        "id": new_id(Prefix.BULK_OPERATION),
        "team_id": team,
        "type": kind,
        "query": {"status": "failed", "source_id": "src_x"},
        "window": ["1970-01-01T00:00:00.000Z", "2026-04-17T00:00:00.000Z"],
        "status": status,
        "total_count": None,
        "queued_count": 0,
        "done_count": 0,
        "failed_count": 0,
        "skipped_count": 0,
        "cursor": "#",
        "created_at": f"2026-04-17T00:00:{n:02d}.000Z",
        "started_at": None,
        "completed_at": None,
        "cancelled_at": None,
        "expires_at": 1900000000,
        **fields,
    }


def test_an_operation_is_stored_once_and_read_back_as_written(bulk):
    # Given a new operation
    op = operation(1)

    # When it is stored twice
    first, second = bulk.put_operation(op), bulk.put_operation({**op, "status": "running"})

    # Then the second put is refused and the first is read back unchanged
    assert (first, second) == (True, False)
    assert bulk.get_operation(op["id"]) == op
    assert bulk.get_operation(new_id(Prefix.BULK_OPERATION)) is None


def test_lists_are_per_team_and_kind_newest_first_filtered_by_status_and_paged(bulk):
    # Given operations of two kinds, two teams and several statuses
    ongoing = [operation(n, status="running") for n in (1, 3)]
    finished = [operation(n, status=s) for n, s in ((2, "completed"), (4, "cancelled"), (5, "failed"))]
    for op in [*ongoing, *finished, operation(6, kind="requests"), operation(7, team=OTHER_TEAM)]:
        assert bulk.put_operation(op)

    # When the team's event operations are listed, all of them two a page, then by status
    first = bulk.list_operations(TEAM, "events", statuses=None, limit=2, after=None)
    second = bulk.list_operations(TEAM, "events", statuses=None, limit=2, after=first.resume)
    third = bulk.list_operations(TEAM, "events", statuses=None, limit=2, after=second.resume)
    running = bulk.list_operations(TEAM, "events", statuses=frozenset({"planned", "running"}), limit=10, after=None)
    history = bulk.list_operations(
        TEAM, "events", statuses=frozenset({"completed", "cancelled", "failed"}), limit=10, after=None
    )

    # Then the pages hold the five newest first, and the status lists exactly their operations
    pages = [op["id"] for page in (first, second, third) for op in page.items]
    everything = sorted([*ongoing, *finished], key=lambda d: d["created_at"], reverse=True)
    assert pages == [op["id"] for op in everything] and third.resume is None
    assert [op["id"] for op in running.items] == [ongoing[1]["id"], ongoing[0]["id"]] and running.resume is None
    assert {op["id"] for op in history.items} == {op["id"] for op in finished}


def test_a_status_change_happens_only_from_the_statuses_it_names(bulk):
    # Given a planned operation
    op = operation(1)
    bulk.put_operation(op)

    # When it is started, then asked to start again, then cancelled
    started = bulk.transition_operation(
        op["id"], from_statuses=frozenset({"planned"}), changes={"status": "running", "total_count": 7}
    )
    again = bulk.transition_operation(op["id"], from_statuses=frozenset({"planned"}), changes={"status": "running"})
    cancelled = bulk.transition_operation(
        op["id"], from_statuses=frozenset({"planned", "running"}), changes={"status": "cancelled"}
    )

    # Then each answer reflects the condition, and an unknown id changes nothing
    assert started is not None and started["status"] == "running" and started["total_count"] == 7
    assert again is None
    assert cancelled is not None and cancelled["status"] == "cancelled"
    missing = new_id(Prefix.BULK_OPERATION)
    assert bulk.transition_operation(missing, from_statuses=frozenset({"planned"}), changes={"status": "x"}) is None
    assert bulk.get_operation(missing) is None


def test_a_page_is_recorded_once_and_only_while_running(bulk):
    # Given a running operation at its first page
    op = operation(1, status="running")
    bulk.put_operation(op)

    # When the page is recorded, then recorded again from the same cursor (a second run of the page)
    first = bulk.advance_operation(op["id"], cursor="#", next_cursor="2026#evt_a", counts={"queued_count": 3})
    second = bulk.advance_operation(op["id"], cursor="#", next_cursor="2026#evt_a", counts={"queued_count": 3})

    # Then only the first counts
    assert (first, second) == (True, False)
    stored = bulk.get_operation(op["id"])
    assert stored["cursor"] == "2026#evt_a" and stored["queued_count"] == 3

    # And once cancelled, no page is recorded any more
    bulk.transition_operation(op["id"], from_statuses=frozenset({"running"}), changes={"status": "cancelled"})
    assert not bulk.advance_operation(op["id"], cursor="2026#evt_a", next_cursor="~", counts={"queued_count": 1})
    assert bulk.get_operation(op["id"])["queued_count"] == 3


def test_outcomes_add_up_and_an_unknown_operation_is_not_created(bulk):
    # Given a running operation
    op = operation(1, status="running")
    bulk.put_operation(op)

    # When three retries finish, one of them failed, and one outcome names an operation that is gone
    for failed in (False, True, False):
        bulk.add_outcome(op["id"], failed=failed)
    gone = new_id(Prefix.BULK_OPERATION)
    bulk.add_outcome(gone, failed=True)

    # Then the counters moved by exactly that, and no stub operation appeared
    stored = bulk.get_operation(op["id"])
    assert (stored["done_count"], stored["failed_count"]) == (3, 1)
    assert bulk.get_operation(gone) is None


def test_an_event_is_retried_by_a_bulk_operation_at_most_once(records):
    # Given a failed event that no bulk operation has touched
    request_id, now = new_id(Prefix.REQUEST), "2026-04-17T00:00:00.000Z"
    event = {
        "id": new_id(Prefix.EVENT),
        "team_id": TEAM,
        "request_id": request_id,
        "connection_id": new_id(Prefix.CONNECTION),
        "source_id": new_id(Prefix.SOURCE),
        "destination_id": new_id(Prefix.DESTINATION),
        "status": "FAILED",
        "attempts": 1,
        "next_trigger": "INITIAL",
        "next_attempt_at": None,
        "created_at": now,
        "updated_at": now,
        "batch_operation_id": None,
        "expires_at": 1900000000,
    }
    assert records.put_event(event)
    operation_id = new_id(Prefix.BULK_OPERATION)
    changes = {"status": "QUEUED", "next_trigger": "BULK_RETRY", "batch_operation_id": operation_id}

    # When the operation queues it, and a second run of the same page tries again
    first = records.transition_event(
        event["id"],
        from_statuses=frozenset({"FAILED", "QUEUED"}),
        changes=changes,
        now=now,
        unless_batch_operation_id=operation_id,
    )
    second = records.transition_event(
        event["id"],
        from_statuses=frozenset({"FAILED", "QUEUED"}),
        changes=changes,
        now=now,
        unless_batch_operation_id=operation_id,
    )
    # and another operation retries it later
    later = new_id(Prefix.BULK_OPERATION)
    other = records.transition_event(
        event["id"],
        from_statuses=frozenset({"FAILED", "QUEUED"}),
        changes={**changes, "batch_operation_id": later},
        now=now,
        unless_batch_operation_id=later,
    )

    # Then the second try of the same operation is refused, the other operation's is not
    assert first is not None and first["batch_operation_id"] == operation_id
    assert second is None
    assert other is not None and records.get_event(event["id"])["batch_operation_id"] == later
