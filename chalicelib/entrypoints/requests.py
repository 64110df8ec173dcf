"""Request routes that change state: replaying one request. (The read routes come with the observability API.)"""

from __future__ import annotations

from chalicelib.control import retries
from chalicelib.control.presenters import present_request
from chalicelib.entrypoints.api import Api, Call, Reply

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
