"""Event routes that change state: retrying one event. (The read routes come with the observability API.)"""

from __future__ import annotations

from typing import Any

from chalicelib.control import retries
from chalicelib.control.presenters import present_event
from chalicelib.entrypoints.api import Api, Call

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
