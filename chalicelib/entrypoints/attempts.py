"""Attempt routes: the receiver-facing evidence of every delivery try, by event or one at a time."""

from __future__ import annotations

from typing import Any

from chalicelib.control import observe
from chalicelib.domain.errors import InvalidParameterError
from chalicelib.entrypoints.api import Api, Call, Param, list_envelope, parse_limit

api = Api("attempts", "Attempts")

ATTEMPT = {
    "type": "object",
    "required": ["id", "event_id", "attempt_number", "trigger", "status", "created_at"],
    "properties": {
        "id": {"type": "string"},
        "event_id": {"type": "string"},
        "destination_id": {"type": "string"},
        "attempt_number": {"type": "integer"},
        "trigger": {"type": "string", "enum": ["INITIAL", "AUTOMATIC", "MANUAL", "BULK_RETRY", "UNPAUSE"]},
        "status": {"type": "string", "enum": ["SUCCESSFUL", "FAILED"]},
        "response_status": {"type": ["integer", "null"]},
        "body": {"type": ["string", "null"]},
        "error_code": {"type": ["string", "null"]},
        "requested_url": {"type": ["string", "null"]},
        "http_method": {"type": ["string", "null"]},
        "delivery_latency": {"type": ["integer", "null"]},
        "response_latency": {"type": ["integer", "null"]},
        "created_at": {"type": "string"},
    },
}


@api.route(
    "/attempts",
    ["GET"],
    summary="List attempts of events (event_id, repeatable), by created_at",
    response=ATTEMPT,
    list_response=True,
    params=(
        Param("event_id", "An event id; repeat it (or use event_id[]) for several events"),
        Param("event_id[]", "An event id, repeatable"),
        Param("order_by", "created_at", {"type": "string", "enum": ["created_at"]}),
        Param("dir", "desc (newest first, the default) or asc", {"type": "string", "enum": ["asc", "desc"]}),
        Param("limit", "Page size, at most 100 (default 100)", {"type": "integer", "minimum": 1, "maximum": 100}),
        Param("cursor", "Opaque pagination.next or pagination.prev of a previous page with the same filters"),
    ),
)
def list_attempts(call: Call) -> dict[str, Any]:
    if (call.query.get("order_by") or "created_at") != "created_at":
        raise InvalidParameterError(f"order_by must be created_at, not {call.query['order_by']!r:.40}")
    event_ids = [v for name in ("event_id", "event_id[]") for v in call.multi_query.get(name, []) if v]
    filters = {k: v for k, v in call.query.items() if k not in ("event_id", "event_id[]")}
    filters["event_id"] = ",".join(sorted(set(event_ids)))
    paging = observe.page_request("attempts", filters, limit=parse_limit(call.query.get("limit"), 100, 100))
    models, pagination = observe.list_attempts(
        team_id=call.team_id, event_ids=event_ids, paging=paging, records=call.deps.records, now=call.deps.clock.now()
    )
    return list_envelope(models, pagination)


@api.route("/attempts/{attempt_id}", ["GET"], summary="Retrieve an attempt", response=ATTEMPT)
def get_attempt(call: Call, attempt_id: str) -> dict[str, Any]:
    return observe.get_attempt(
        team_id=call.team_id, attempt_id=attempt_id, records=call.deps.records, now=call.deps.clock.now()
    )
