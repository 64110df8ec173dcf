"""Bulk operation routes: create, list and cancel bulk retries of events and bulk replays of requests.

`/events/bulk_operations` and `/requests/bulk_operations` are literal segments beside
`/events/{event_id}` and `/requests/{request_id}`; chalice (and API Gateway) match a literal before a
parameter, so a list of operations never reads as an event or request id.
"""

from __future__ import annotations

from typing import Any

from pydantic import ConfigDict, Field

from chalicelib.bulk import cancel, plan
from chalicelib.domain.errors import InvalidParameterError
from chalicelib.domain.models import Strict
from chalicelib.domain.paging import encode_cursor, read_cursor
from chalicelib.domain.statuses import FINISHED_BULK_STATUSES, ONGOING_BULK_STATUSES, BulkType
from chalicelib.entrypoints.api import Api, Call, Param, Reply, list_envelope, parse_limit

api = Api("bulk_operations", "Bulk operations")


class EventBulkFilters(Strict):
    """The filters of GET /events a bulk retry selects its events by."""

    from_: str | None = Field(None, alias="from", description="ISO-8601 or relative: now, now-30s, now-1h, now-7d")
    to: str | None = None
    status: str | None = None
    source_id: str | None = None
    connection_id: str | None = None
    destination_id: str | None = None
    q: str | None = None

    # `from` is a Python keyword: the field is from_ and reads the JSON name.
    model_config = ConfigDict(**{**Strict.model_config, "populate_by_name": True})


class RequestBulkFilters(Strict):
    """The filters of GET /requests a bulk replay selects its requests by."""

    from_: str | None = Field(None, alias="from", description="ISO-8601 or relative: now, now-30s, now-1h, now-7d")
    to: str | None = None
    status: str | None = None
    source_id: str | None = None
    connection_id: str | None = None
    q: str | None = None

    # `from` is a Python keyword: the field is from_ and reads the JSON name.
    model_config = ConfigDict(**{**Strict.model_config, "populate_by_name": True})


OPERATION = {
    "type": "object",
    "required": ["id", "type", "query", "status", "cancelable", "progress"],
    "properties": {
        "id": {"type": "string", "description": "bch_..."},
        "type": {"type": "string", "enum": [t.value for t in BulkType]},
        "query": {"type": "object", "description": "The exact filters the operation selects by"},
        "status": {"type": "string", "enum": ["planned", "running", "completed", "cancelled", "failed"]},
        "total_count": {"type": ["integer", "null"]},
        "queued_count": {"type": "integer"},
        "done_count": {"type": "integer"},
        "failed_count": {"type": "integer"},
        "skipped_count": {"type": "integer", "description": "Matches that could not be retried (paused, gone)"},
        "progress": {"type": "number"},
        "cancelable": {"type": "boolean"},
        "created_at": {"type": "string"},
        "started_at": {"type": ["string", "null"]},
        "completed_at": {"type": ["string", "null"]},
        "cancelled_at": {"type": ["string", "null"]},
        "error": {"type": "string", "description": "Why a failed operation stopped (the task error's name)"},
    },
}
LIST_PARAMS = (
    Param(
        "bucket",
        "all (default), ongoing (planned or running) or history (finished)",
        {"type": "string", "enum": ["all", "ongoing", "history"]},
    ),
    Param("limit", "Page size, at most 100 (default 100)", {"type": "integer", "minimum": 1, "maximum": 100}),
    Param("cursor", "Opaque pagination.next of a previous page with the same bucket"),
)
_BUCKETS = {"all": None, "ongoing": frozenset(ONGOING_BULK_STATUSES), "history": frozenset(FINISHED_BULK_STATUSES)}


def _create(call: Call, kind: BulkType) -> Reply:
    deps = call.deps
    operation = plan.create_bulk_operation(
        team_id=call.team_id,
        kind=kind,
        body=call.body.model_dump(by_alias=True, exclude_none=True),
        bulk=deps.bulk,
        resources=deps.resources,
        runner=deps.bulk_runner,
        clock=deps.clock,
        retention_days=deps.settings.retention_days,
    )
    return Reply(plan.present_operation(operation), 201)


def _list(call: Call, kind: BulkType) -> dict[str, Any]:
    bucket = call.query.get("bucket") or "all"
    if bucket not in _BUCKETS:
        raise InvalidParameterError(f"bucket must be all, ongoing or history, not {bucket!r:.40}")
    limit = parse_limit(call.query.get("limit"), 100, 100)
    after = _decode_cursor(call.query.get("cursor") or call.query.get("next"), bucket)
    page = call.deps.bulk.list_operations(call.team_id, kind.value, statuses=_BUCKETS[bucket], limit=limit, after=after)
    pagination = {
        "order_by": "created_at",
        "dir": "desc",
        "limit": limit,
        "next": _encode_cursor(page.resume, bucket) if page.resume else None,
        "prev": None,
    }
    return list_envelope([plan.present_operation(op) for op in page.items], pagination)


def _cancel(call: Call, kind: BulkType, operation_id: str) -> dict[str, Any]:
    deps = call.deps
    return cancel.cancel_bulk_operation(
        team_id=call.team_id,
        operation_id=operation_id,
        kind=kind,
        bulk=deps.bulk,
        records=deps.records,
        clock=deps.clock,
    )


def _encode_cursor(position: str, bucket: str) -> str:
    return encode_cursor({"p": position, "b": bucket})


def _decode_cursor(cursor: str | None, bucket: str) -> str | None:
    if not cursor:
        return None
    payload = read_cursor(cursor)
    position, made_for = payload.get("p"), payload.get("b")
    if not isinstance(position, str):
        raise InvalidParameterError("cursor is not a cursor this API returned")
    if made_for != bucket:
        raise InvalidParameterError("cursor was made for another bucket; start again without it")
    return position


# ---- events -------------------------------------------------------------------------------------------


@api.route(
    "/events/bulk_operations",
    ["POST"],
    summary="Retry every event a filter selects (trigger BULK_RETRY), on Step Functions",
    body=EventBulkFilters,
    body_required=False,
    response=OPERATION,
    status=201,
)
def create_event_bulk_operation(call: Call) -> Reply:
    return _create(call, BulkType.EVENTS)


@api.route(
    "/events/bulk_operations",
    ["GET"],
    summary="List event bulk operations, newest first",
    response=OPERATION,
    list_response=True,
    params=LIST_PARAMS,
)
def list_event_bulk_operations(call: Call) -> dict[str, Any]:
    return _list(call, BulkType.EVENTS)


@api.route(
    "/events/bulk_operations/{operation_id}/cancel",
    ["POST"],
    summary="Cancel a planned or running event bulk operation",
    response=OPERATION,
    errors=(409,),
)
def cancel_event_bulk_operation(call: Call, operation_id: str) -> dict[str, Any]:
    return _cancel(call, BulkType.EVENTS, operation_id)


# ---- requests -----------------------------------------------------------------------------------------


@api.route(
    "/requests/bulk_operations",
    ["POST"],
    summary="Replay every request a filter selects through the current routing, on Step Functions",
    body=RequestBulkFilters,
    body_required=False,
    response=OPERATION,
    status=201,
)
def create_request_bulk_operation(call: Call) -> Reply:
    return _create(call, BulkType.REQUESTS)


@api.route(
    "/requests/bulk_operations",
    ["GET"],
    summary="List request bulk operations, newest first",
    response=OPERATION,
    list_response=True,
    params=LIST_PARAMS,
)
def list_request_bulk_operations(call: Call) -> dict[str, Any]:
    return _list(call, BulkType.REQUESTS)


@api.route(
    "/requests/bulk_operations/{operation_id}/cancel",
    ["POST"],
    summary="Cancel a planned or running request bulk operation",
    response=OPERATION,
    errors=(409,),
)
def cancel_request_bulk_operation(call: Call, operation_id: str) -> dict[str, Any]:
    return _cancel(call, BulkType.REQUESTS, operation_id)
