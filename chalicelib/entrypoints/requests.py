"""Request routes: the observability reads (list, count, one request, its events and ignored branches) and replay."""

from __future__ import annotations

from typing import Any

from chalicelib.control import observe, retries
from chalicelib.control.presenters import present_request
from chalicelib.entrypoints.api import Api, Call, Param, Reply, list_envelope, parse_limit

api = Api("requests", "Requests")

REQUEST = {
    "type": "object",
    "required": ["id", "status"],
    "properties": {"id": {"type": "string"}, "retry_of": {"type": "string"}},
}


@api.route(
    "/requests/{request_id}/retry",
    ["POST"],
    summary="Replay a request through the current routing",
    response=REQUEST,
    status=202,
    errors=(409,),
)
def retry_request(call: Call, request_id: str) -> Reply:
    deps = call.deps
    replay = retries.retry_request(
        team_id=call.team_id,
        request_id=request_id,
        records=deps.records,
        resources=deps.resources,
        payloads=deps.payloads,
        queues=deps.queues,
        clock=deps.clock,
    )
    return Reply(present_request(replay), 202)


# ---- reads ----------------------------------------------------------------------------------------

TIME = {"type": "string", "description": "ISO-8601 or relative: now, now-30s, now-15m, now-1h, now-7d"}
WINDOW_PARAMS = (
    Param("from", "Start of the time range (inclusive)", TIME),
    Param("to", "End of the time range (inclusive)", TIME),
    Param("ingested_at[gte]", "Alias of from", TIME),
    Param("ingested_at[lte]", "Alias of to", TIME),
)
PAGE_PARAMS = (
    Param("limit", "Page size, at most 100 (default 100)", {"type": "integer", "minimum": 1, "maximum": 100}),
    Param("cursor", "Opaque pagination.next or pagination.prev of a previous page with the same filters"),
    Param("dir", "desc (newest first, the default) or asc", {"type": "string", "enum": ["asc", "desc"]}),
)
REQUEST_FILTERS = (
    *WINDOW_PARAMS,
    Param("status", "accepted or rejected", {"type": "string", "enum": ["accepted", "rejected"]}),
    Param("verified", "Source verification passed", {"type": "boolean"}),
    Param("source_id", "Only requests to this source"),
    Param("connection_id", "Only requests to this connection's source"),
    Param("batch_operation_id", "Only replays made by this bulk operation"),
    Param("is_retry", "Only replays (true) or only originals (false)", {"type": "boolean"}),
    Param("retry_kind", "single or bulk", {"type": "string", "enum": ["single", "bulk"]}),
    Param("q", "An exact request id, or an external_id equal to or starting with this"),
    Param("search_term", "Alias of q"),
)
EVENT_STATUS = Param(
    "status",
    "queued | processing | delivered | failed | ignored, or an exact SCHEDULED | QUEUED | HOLD | SUCCESSFUL | "
    "FAILED | CANCELLED, or PENDING (SCHEDULED + QUEUED) | IGNORED (ignored branches)",
    {"type": "string", "enum": list(observe.EVENT_STATUS_FILTERS)},
)
REQUEST_LIST = {
    "type": "object",
    "required": ["id", "status", "source_id", "ingested_at"],
    "properties": {
        "id": {"type": "string"},
        "status": {"type": "string", "enum": ["accepted", "rejected"]},
        "verified": {"type": "boolean"},
        "source_id": {"type": "string"},
        "external_id": {"type": ["string", "null"]},
        "events_count": {"type": "integer"},
        "ignored_count": {"type": "integer"},
        "ingested_at": {"type": "string"},
        "created_at": {"type": "string"},
        "data": {"type": "object"},
    },
}
EVENT_LIST = {
    "type": "object",
    "required": ["id", "status", "request_id", "webhook_id"],
    "properties": {
        "id": {"type": "string"},
        "status": {"type": "string"},
        "request_id": {"type": "string"},
        "webhook_id": {"type": "string"},
        "connection_id": {"type": "string"},
        "source_id": {"type": ["string", "null"]},
        "destination_id": {"type": ["string", "null"]},
        "created_at": {"type": "string"},
        "data": {"type": "object"},
    },
}
IGNORED = {
    "type": "object",
    "required": ["id", "request_id", "connection_id", "cause", "created_at"],
    "properties": {
        "id": {"type": "string"},
        "request_id": {"type": "string"},
        "connection_id": {"type": "string"},
        "cause": {"type": "string", "enum": ["FILTERED", "DEDUPLICATED", "TRANSFORMATION_FAILED", "DISABLED"]},
        "message": {"type": ["string", "null"]},
        "created_at": {"type": "string"},
    },
}
COUNT = {"type": "object", "required": ["count"], "properties": {"count": {"type": "integer"}}}


@api.route(
    "/requests",
    ["GET"],
    summary="List requests, newest first",
    response=REQUEST_LIST,
    list_response=True,
    params=REQUEST_FILTERS
    + PAGE_PARAMS
    + (Param("include", "data: add stored payload data", {"type": "string", "enum": ["data"]}),),
)
def list_requests(call: Call) -> dict[str, Any]:
    deps = call.deps
    now = deps.clock.now()
    selection = observe.select_requests(call.query, team_id=call.team_id, resources=deps.resources, now=now)
    paging = observe.page_request("requests", call.query, limit=parse_limit(call.query.get("limit"), 100, 100))
    include_data = "data" in ",".join(call.multi_query.get("include", [])).split(",")
    models, pagination = observe.list_requests(
        team_id=call.team_id,
        selection=selection,
        paging=paging,
        include_data=include_data,
        records=deps.records,
        payloads=deps.payloads,
    )
    return list_envelope(models, pagination)


@api.route(
    "/requests/count",
    ["GET"],
    summary="Count requests matching the list's filters",
    response=COUNT,
    params=REQUEST_FILTERS,
)
def count_requests(call: Call) -> dict[str, int]:
    deps = call.deps
    selection = observe.select_requests(
        call.query, team_id=call.team_id, resources=deps.resources, now=deps.clock.now()
    )
    return {"count": observe.count(team_id=call.team_id, selection=selection, records=deps.records)}


@api.route("/requests/{request_id}", ["GET"], summary="Retrieve a request with its stored data", response=REQUEST_LIST)
def get_request(call: Call, request_id: str) -> dict[str, Any]:
    deps = call.deps
    return observe.get_request(
        team_id=call.team_id, request_id=request_id, records=deps.records, payloads=deps.payloads, now=deps.clock.now()
    )


@api.route(
    "/requests/{request_id}/events",
    ["GET"],
    summary="List the events of a request, oldest first",
    response=EVENT_LIST,
    list_response=True,
    params=(EVENT_STATUS,),
)
def list_request_events(call: Call, request_id: str) -> dict[str, Any]:
    deps = call.deps
    models, pagination = observe.list_request_events(
        team_id=call.team_id,
        request_id=request_id,
        status=call.query.get("status"),
        records=deps.records,
        resources=deps.resources,
        now=deps.clock.now(),
    )
    return list_envelope(models, pagination)


@api.route(
    "/requests/{request_id}/ignored_events",
    ["GET"],
    summary="List the ignored branches of a request, oldest first",
    response=IGNORED,
    list_response=True,
)
def list_request_ignored_events(call: Call, request_id: str) -> dict[str, Any]:
    deps = call.deps
    models, pagination = observe.list_request_ignored(
        team_id=call.team_id, request_id=request_id, records=deps.records, now=deps.clock.now()
    )
    return list_envelope(models, pagination)
