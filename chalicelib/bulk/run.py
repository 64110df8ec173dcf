"""Running a bulk operation: one task invocation reads pages of matching items and retries each one.

Each item goes through the same single-item use case as `POST /events/:id/retry` (trigger BULK_RETRY)
or `POST /requests/:id/retry` (a replay marked `retry_kind: bulk`), recording the operation's id on
what it touches or makes. Transitions of the state machine are per task invocation, and one
invocation runs several pages (up to `max_pages`, while its time budget lasts), so 1,000 items cost
about two state transitions.

Exactly-once per (operation, item), even when Step Functions runs a page twice (a task retried after
a timeout while the first run still works, or after it died mid-page):
- an event is retried only if it does not already carry the operation id (a condition of the same
  write that queues it), so a second run finds it done and queues nothing;
- a replay's request id derives from (operation id, request id), so a second run finds the replay it
  made and only re-sends it to routing if it was never routed;
- the cursor moves by a write conditioned on where the page started, so a page is recorded once.
A run that dies after retrying items but before recording its page loses only its share of the
running `queued_count`; when the operation completes, `queued_count` is recounted exactly from the
records that carry the operation id.

The cancel flag is the operation's status: every page starts by reading it, and a page that finds the
operation cancelled cancels the retries it issued that have not started (see cancel.py).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import datetime
from typing import cast

from chalicelib.bulk.cancel import cancel_pending_retries
from chalicelib.bulk.page import PageQueues, PageResources
from chalicelib.bulk.plan import FIRST_PAGE, LAST_PAGE, operation_of, selection_of
from chalicelib.control import retries
from chalicelib.domain.errors import ConflictError, NotFoundError
from chalicelib.domain.ids import Prefix, derived_id
from chalicelib.domain.statuses import AttemptTrigger, BulkStatus, BulkType
from chalicelib.domain.timefmt import iso
from chalicelib.ports import BulkStore, Clock, Doc, PayloadStore, Queues, RecordStore, ResourceStore, TimelineQuery

# What happened to one item of a page.
NEW, ALREADY, SKIPPED = "new", "already", "skipped"
LATEST = "9999-12-31T23:59:59.999Z"


@dataclass(frozen=True)
class RunResult:
    """What a task invocation did: pages recorded, and whether the state machine should call it again."""

    pages: int
    more: bool
    status: str


def run_bulk_pages(
    *,
    team_id: str,
    operation_id: str,
    bulk: BulkStore,
    records: RecordStore,
    resources: ResourceStore,
    payloads: PayloadStore,
    queues: Queues,
    clock: Clock,
    page_size: int,
    max_pages: int,
    out_of_time: Callable[[], bool] = lambda: False,
) -> RunResult:
    """Run pages of the operation until it ends, `max_pages` pages are recorded, or time runs out."""
    pages = 0
    while True:
        operation = operation_of(bulk, team_id, operation_id)
        status = operation["status"]
        if status == BulkStatus.CANCELLED:
            cancel_pending_retries(operation, records=records, clock=clock)
            return RunResult(pages, False, status)
        if status != BulkStatus.RUNNING:
            return RunResult(pages, False, status)
        cursor = operation["cursor"]
        if cursor == LAST_PAGE:
            return RunResult(pages, False, _complete(bulk, records, operation, clock))
        if pages >= max_pages or (pages and out_of_time()):
            return RunResult(pages, True, status)
        now = clock.now()
        plan = selection_of(operation, resources=resources, now=now)
        if plan.nothing:
            items, resume = [], None
        else:
            page = records.query_timeline(
                team_id,
                plan.kind,
                replace(plan.query, limit=page_size, after=None if cursor == FIRST_PAGE else cursor),
            )
            items, resume = page.items, page.resume
        counts = _retry_page(
            operation,
            items,
            records=records,
            resources=resources,
            payloads=payloads,
            queues=queues,
            clock=clock,
        )
        # Recorded once per page: a second run of this page (or a cancel meanwhile) finds the cursor or
        # status moved, adds nothing, and goes round to read the operation again.
        if bulk.advance_operation(operation_id, cursor=cursor, next_cursor=resume or LAST_PAGE, counts=counts):
            pages += 1


def _complete(bulk: BulkStore, records: RecordStore, operation: Doc, clock: Clock) -> str:
    now = clock.now()
    queued = _recount(records, operation, now)
    changes: Doc = {"status": BulkStatus.COMPLETED.value, "completed_at": iso(now), "queued_count": queued}
    if operation["type"] == BulkType.REQUESTS:
        changes["done_count"] = queued
    done = bulk.transition_operation(
        operation["id"], from_statuses=frozenset({BulkStatus.RUNNING.value}), changes=changes
    )
    if done is not None:
        return str(done["status"])
    current = bulk.get_operation(operation["id"])
    return str(current["status"]) if current else BulkStatus.FAILED.value


def _recount(records: RecordStore, operation: Doc, now: datetime) -> int:
    """Exactly how many records carry the operation id: retried events keep their created_at (inside the
    window), replays are new requests ingested after the operation was made."""
    if operation["type"] == BulkType.EVENTS:
        kind, start, end = "EVT", operation["window"][0], operation["window"][1]
    else:
        kind, start, end = "REQ", operation["created_at"], LATEST
    query = TimelineQuery(start=start, end=end, now=now, fields=(("batch_operation_id", (operation["id"],)),))
    return records.count_timeline(operation["team_id"], kind, query)


def _retry_page(
    operation: Doc,
    items: list[Doc],
    *,
    records: RecordStore,
    resources: ResourceStore,
    payloads: PayloadStore,
    queues: Queues,
    clock: Clock,
) -> Doc:
    operation_id, team_id = operation["id"], operation["team_id"]
    outcomes = {NEW: 0, ALREADY: 0, SKIPPED: 0}
    # One read per resource and batched messages per page (see page.py); the use cases see the ports.
    page_resources, page_queues = cast(ResourceStore, PageResources(resources)), PageQueues(queues)
    for item in items:
        if operation["type"] == BulkType.EVENTS:
            outcome = _retry_event(
                item, operation_id, team_id, records=records, resources=page_resources, queues=page_queues, clock=clock
            )
        else:
            outcome = _replay_request(
                item,
                operation_id,
                team_id,
                records=records,
                resources=page_resources,
                payloads=payloads,
                queues=page_queues,
                clock=clock,
            )
        outcomes[outcome] += 1
    page_queues.flush()
    counts = {"queued_count": outcomes[NEW], "skipped_count": outcomes[SKIPPED]}
    if operation["type"] == BulkType.REQUESTS:
        # A replay is done when it is stored and handed to routing; its events live their own lives.
        counts["done_count"] = outcomes[NEW]
    return counts


def _retry_event(
    event: Doc,
    operation_id: str,
    team_id: str,
    *,
    records: RecordStore,
    resources: ResourceStore,
    queues: Queues,
    clock: Clock,
) -> str:
    """NEW when this call queued the retry, ALREADY when an earlier run did, SKIPPED when it cannot be retried."""
    if event.get("batch_operation_id") == operation_id:
        return ALREADY
    try:
        retries.retry_event(
            team_id=team_id,
            event_id=event["id"],
            records=records,
            resources=resources,
            queues=queues,
            clock=clock,
            trigger=AttemptTrigger.BULK_RETRY,
            batch_operation_id=operation_id,
        )
    except (ConflictError, NotFoundError):
        # Not retryable now (paused, in flight, gone), or another run of this page just retried it.
        current = records.get_event(event["id"])
        return ALREADY if current is not None and current.get("batch_operation_id") == operation_id else SKIPPED
    return NEW


def _replay_request(
    request: Doc,
    operation_id: str,
    team_id: str,
    *,
    records: RecordStore,
    resources: ResourceStore,
    payloads: PayloadStore,
    queues: Queues,
    clock: Clock,
) -> str:
    if request.get("batch_operation_id") == operation_id:
        return ALREADY  # a replay this operation made is never replayed again
    replay_id = derived_id(Prefix.REQUEST, operation_id, request["id"])
    if records.get_request(replay_id) is not None:
        # Made by an earlier run of this page; retry_request re-sends it to routing only if never routed.
        outcome = ALREADY
    else:
        outcome = NEW
    try:
        retries.retry_request(
            team_id=team_id,
            request_id=request["id"],
            records=records,
            resources=resources,
            payloads=payloads,
            queues=queues,
            clock=clock,
            retry_kind="bulk",
            batch_operation_id=operation_id,
            replay_id=replay_id,
        )
    except (ConflictError, NotFoundError):
        return SKIPPED
    return outcome


def fail_bulk_operation(*, team_id: str, operation_id: str, bulk: BulkStore, clock: Clock, cause: str) -> str:
    """The state machine's catch: a task failed for good, so the operation stops as failed (unless it ended)."""
    operation = operation_of(bulk, team_id, operation_id)
    failed = bulk.transition_operation(
        operation["id"],
        from_statuses=frozenset({BulkStatus.PLANNED.value, BulkStatus.RUNNING.value}),
        changes={"status": BulkStatus.FAILED.value, "completed_at": iso(clock.now()), "error": cause[:500]},
    )
    return str((failed or operation)["status"])
