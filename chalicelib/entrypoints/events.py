"""Event routes: the observability reads (list, count, one event) and retrying one event."""

from __future__ import annotations

from typing import Any

from chalicelib.control import observe, retries
from chalicelib.control.presenters import present_event
from chalicelib.entrypoints.api import Api, Call, Param, list_envelope, parse_limit
from chalicelib.entrypoints.requests import COUNT, EVENT_LIST, EVENT_STATUS, PAGE_PARAMS, WINDOW_PARAMS

api = Api("events", "Events")

EVENT = {
    "type": "object",
    "required": ["id", "status"],
    "properties": {"id": {"type": "string"}, "status": {"type": "string"}},
}


@api.route(
    "/events/{event_id}/retry", ["POST"], summary="Retry one event now (trigger MANUAL)", response=EVENT, errors=(409,)
)
def retry_event(call: Call, event_id: str) -> dict[str, Any]:
    deps = call.deps
    event = retries.retry_event(
        team_id=call.team_id,
        event_id=event_id,
        records=deps.records,
        resources=deps.resources,
        queues=deps.queues,
        clock=deps.clock,
    )
    return present_event(event)


# ---- reads ----------------------------------------------------------------------------------------

EVENT_FILTERS = (
    *WINDOW_PARAMS,
    EVENT_STATUS,
    Param("source_id", "Only events of this source"),
    Param("connection_id", "Only events of this connection"),
    Param("webhook_id", "Alias of connection_id"),
    Param("destination_id", "Only events to this destination"),
    Param("batch_operation_id", "Only events retried by this bulk operation"),
    Param("q", "An exact event id or request id"),
    Param("search_term", "Alias of q"),
)


@api.route(
    "/events",
    ["GET"],
    summary="List events, newest first",
    response=EVENT_LIST,
    list_response=True,
    params=EVENT_FILTERS + PAGE_PARAMS,
)
def list_events(call: Call) -> dict[str, Any]:
    deps = call.deps
    selection = observe.select_events(call.query, team_id=call.team_id, resources=deps.resources, now=deps.clock.now())
    paging = observe.page_request("events", call.query, limit=parse_limit(call.query.get("limit"), 100, 100))
    models, pagination = observe.list_events(
        team_id=call.team_id, selection=selection, paging=paging, records=deps.records, resources=deps.resources
    )
    return list_envelope(models, pagination)


@api.route(
    "/events/count", ["GET"], summary="Count events matching the list's filters", response=COUNT, params=EVENT_FILTERS
)
def count_events(call: Call) -> dict[str, int]:
    deps = call.deps
    selection = observe.select_events(call.query, team_id=call.team_id, resources=deps.resources, now=deps.clock.now())
    return {"count": observe.count(team_id=call.team_id, selection=selection, records=deps.records)}


@api.route("/events/{event_id}", ["GET"], summary="Retrieve an event with its data", response=EVENT_LIST)
def get_event(call: Call, event_id: str) -> dict[str, Any]:
    deps = call.deps
    return observe.get_event(
        team_id=call.team_id, event_id=event_id, records=deps.records, payloads=deps.payloads, now=deps.clock.now()
    )
