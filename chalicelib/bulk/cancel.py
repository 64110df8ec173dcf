"""Cancelling a bulk operation: no further retries are issued, and those issued but not started are cancelled.

The cancel flag is the operation's status. Setting it is one conditional write (only a planned or
running operation can be cancelled: a finished or cancelled one is a 409); the page loop reads it
before every page. Retries the operation queued that no worker has started (SCHEDULED/QUEUED with
trigger BULK_RETRY, no live lease) become CANCELLED here, and again when the running task sees the flag,
which catches a page that was being issued while the cancel landed. A retry already in flight finishes.
"""

from __future__ import annotations

from dataclasses import replace

from chalicelib.bulk.plan import operation_of, present_operation
from chalicelib.domain.errors import ConflictError
from chalicelib.domain.statuses import (
    PENDING_EVENT_STATUSES,
    AttemptTrigger,
    BulkStatus,
    BulkType,
    EventStatus,
)
from chalicelib.domain.timefmt import iso
from chalicelib.ports import BulkStore, Clock, Doc, RecordStore, TimelineQuery

_ONGOING = frozenset({BulkStatus.PLANNED.value, BulkStatus.RUNNING.value})
_PENDING = frozenset(s.value for s in PENDING_EVENT_STATUSES)
_EARLIEST = "1970-01-01T00:00:00.000Z"
CANCELLED_CODE = "BULK_OPERATION_CANCELLED"


def cancel_bulk_operation(
    *, team_id: str, operation_id: str, kind: BulkType, bulk: BulkStore, records: RecordStore, clock: Clock
) -> Doc:
    """Cancel a planned or running operation; 404 if it is not the team's, 409 if it already ended."""
    operation = operation_of(bulk, team_id, operation_id, kind.value)
    cancelled = bulk.transition_operation(
        operation["id"],
        from_statuses=_ONGOING,
        changes={"status": BulkStatus.CANCELLED.value, "cancelled_at": iso(clock.now())},
    )
    if cancelled is None:
        current = operation_of(bulk, team_id, operation_id, kind.value)
        raise ConflictError(
            f"Bulk operation {current['id']} is {current['status']}; only a planned or running one can be cancelled",
            code="BULK_OPERATION_FINISHED",
        )
    cancel_pending_retries(cancelled, records=records, clock=clock)
    return present_operation(cancelled)


def cancel_pending_retries(operation: Doc, *, records: RecordStore, clock: Clock, page: int = 100) -> int:
    """Cancel the operation's retries that have not started; returns how many became CANCELLED."""
    if operation["type"] != BulkType.EVENTS:
        return 0  # a replay is routed as soon as it is made: nothing of it waits
    cancelled = 0
    now = clock.now()
    # Retried events keep their created_at, so they all sit in the operation's window.
    query = TimelineQuery(
        start=_EARLIEST,
        end=operation["window"][1],
        now=now,
        limit=page,
        ascending=True,
        fields=(
            ("batch_operation_id", (operation["id"],)),
            ("status", tuple(sorted(_PENDING))),
            ("next_trigger", (AttemptTrigger.BULK_RETRY.value,)),
        ),
        in_flight=False,
    )
    changes = {
        "status": EventStatus.CANCELLED.value,
        "error_code": CANCELLED_CODE,
        "next_attempt_at": None,
        "updated_at": iso(now),
    }
    while True:
        found = records.query_timeline(operation["team_id"], "EVT", query)
        for event in found.items:
            # Only if still waiting and unleased: a delivery that started is left to finish.
            if records.transition_event(event["id"], from_statuses=_PENDING, changes=changes, now=iso(now)):
                cancelled += 1
        if found.resume is None:
            return cancelled
        query = replace(query, after=found.resume)
