"""Creating a bulk operation and planning it: the exact filter, its time window and how many items match.

Decisions the spec leaves open, fixed here:
- **The exact filter.** An operation keeps the filters as the caller sent them (`query`) and the time
  window they resolved to when it was created (`window`): relative times (`now-1h`) and an open end
  are fixed at creation, so records that arrive later (a request replay's own new requests among
  them) are never swept in, and the filters copied from a list query select exactly what that list
  showed.
- **What a filter may select.** The filters are those of `GET /events` and `GET /requests` and are
  validated the same way (400 naming the field); ignored branches (`status=ignored|IGNORED`) cannot be
  retried, so an events operation rejects them.
- **progress** is done_count / total_count (1 when nothing matched and the operation ended).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from typing import Any

from chalicelib.control import observe
from chalicelib.domain.errors import InvalidParameterError, NotFoundError
from chalicelib.domain.ids import Prefix, new_id, parse_id
from chalicelib.domain.statuses import ONGOING_BULK_STATUSES, BulkStatus, BulkType
from chalicelib.domain.timefmt import iso
from chalicelib.ports import BulkRunner, BulkStore, Clock, Doc, RecordStore, ResourceStore

# The cursor of a page loop that has not started, and of one that has read every page. Positions are
# `<time>#<id>` and times start with a digit, so neither can be a real position.
FIRST_PAGE = "#"
LAST_PAGE = "~"

EVENT_FILTERS = ("from", "to", "status", "source_id", "connection_id", "destination_id", "q")
REQUEST_FILTERS = ("from", "to", "status", "source_id", "connection_id", "q")
_INTERNAL = {"cursor", "expires_at", "window", "execution_arn"}


@dataclass(frozen=True)
class Plan:
    """What one page of an operation reads: a timeline kind and its query over the operation's window."""

    kind: str
    query: Any  # TimelineQuery
    nothing: bool


def _selection(kind: str, filters: Mapping[str, str], *, team_id: str, resources: ResourceStore, now: datetime) -> Any:
    if kind == BulkType.EVENTS:
        selection = observe.select_events(filters, team_id=team_id, resources=resources, now=now)
        if selection.kind != "EVT":
            raise InvalidParameterError("status ignored selects ignored branches, which cannot be retried")
        return selection
    return observe.select_requests(filters, team_id=team_id, resources=resources, now=now)


def parse_filters(kind: str, body: Mapping[str, Any]) -> dict[str, str]:
    """The body's filters as list-query parameters; anything else, or a non-text value, is a 400 naming it."""
    allowed = EVENT_FILTERS if kind == BulkType.EVENTS else REQUEST_FILTERS
    filters: dict[str, str] = {}
    for name, value in body.items():
        if name not in allowed:
            raise InvalidParameterError(f"{name} is not a filter of {kind} bulk operations (use {', '.join(allowed)})")
        if value is None or value == "":
            continue
        if not isinstance(value, str):
            raise InvalidParameterError(f"{name} must be a string, not {type(value).__name__}")
        filters[name] = value
    return filters


def selection_of(operation: Doc, *, resources: ResourceStore, now: datetime) -> Plan:
    """The timeline query of an operation: its stored filters over its stored window, oldest first."""
    selection = _selection(
        operation["type"], operation["query"], team_id=operation["team_id"], resources=resources, now=now
    )
    start, end = operation["window"]
    query = replace(selection.query, start=start, end=end, now=now, ascending=True, after=None)
    return Plan(selection.kind, query, selection.nothing)


def create_bulk_operation(
    *,
    team_id: str,
    kind: BulkType,
    body: Mapping[str, Any],
    bulk: BulkStore,
    resources: ResourceStore,
    runner: BulkRunner,
    clock: Clock,
    retention_days: int,
) -> Doc:
    """Store a planned operation for the filters and start the state machine that runs it."""
    filters = parse_filters(kind, body)
    now = clock.now()
    selection = _selection(kind, filters, team_id=team_id, resources=resources, now=now)
    created_at = iso(now)
    # An open or future end stops at creation: later records are not part of what the caller saw.
    end = min(selection.query.end, created_at)
    operation: Doc = {
        "id": new_id(Prefix.BULK_OPERATION),
        "team_id": team_id,
        "type": kind.value,
        "query": filters,
        "window": [selection.query.start, end],
        "status": BulkStatus.PLANNED.value,
        "total_count": None,
        "queued_count": 0,
        "done_count": 0,
        "failed_count": 0,
        "skipped_count": 0,
        "cursor": FIRST_PAGE,
        "created_at": created_at,
        "started_at": None,
        "completed_at": None,
        "cancelled_at": None,
        "expires_at": int((now + timedelta(days=retention_days)).timestamp()),
    }
    bulk.put_operation(operation)
    try:
        runner.start(team_id=team_id, operation_id=operation["id"])
    except Exception:
        # Nothing will ever run it: it must not sit in the ongoing bucket as planned.
        bulk.transition_operation(
            operation["id"],
            from_statuses=frozenset({BulkStatus.PLANNED.value}),
            changes={"status": BulkStatus.FAILED.value, "completed_at": iso(clock.now())},
        )
        raise
    return operation


def plan_bulk_operation(
    *, team_id: str, operation_id: str, bulk: BulkStore, records: RecordStore, resources: ResourceStore, clock: Clock
) -> Doc:
    """The plan step: count what the filter matches and set the operation running (once; a re-run is a no-op)."""
    operation = operation_of(bulk, team_id, operation_id)
    if operation["status"] != BulkStatus.PLANNED:
        return operation
    now = clock.now()
    plan = selection_of(operation, resources=resources, now=now)
    total = 0 if plan.nothing else records.count_timeline(team_id, plan.kind, plan.query)
    started = bulk.transition_operation(
        operation_id,
        from_statuses=frozenset({BulkStatus.PLANNED.value}),
        changes={"status": BulkStatus.RUNNING.value, "total_count": total, "started_at": iso(now)},
    )
    return started or operation_of(bulk, team_id, operation_id)


def operation_of(bulk: BulkStore, team_id: str, operation_id: str, kind: str | None = None) -> Doc:
    """The team's operation (of `kind`, when given); 404 for a malformed, unknown or another team's id."""
    oid = parse_id(operation_id, Prefix.BULK_OPERATION, "Bulk operation")
    operation = bulk.get_operation(oid)
    if operation is None or operation["team_id"] != team_id or (kind is not None and operation["type"] != kind):
        raise NotFoundError(f"Bulk operation {oid} not found")
    return operation


def present_operation(operation: Doc) -> Doc:
    """An operation as the API shows it: the issue's fields, with progress computed from the counters."""
    shown = {k: v for k, v in operation.items() if k not in _INTERNAL}
    total = operation.get("total_count")
    done = int(operation.get("done_count") or 0)
    if total:
        progress = round(min(done / total, 1.0), 4)
    else:
        progress = 1.0 if total == 0 and operation["status"] != BulkStatus.RUNNING else 0.0
    shown["progress"] = progress
    shown["cancelable"] = operation["status"] in ONGOING_BULK_STATUSES
    return shown
