"""Ingest: the provider's HTTP call becomes a durable Request before the provider gets its answer.

Order matters: a large body goes to S3 first, then the Request item is written while its one route
message is sent (the two at once, see `_store_and_route`); only when both succeeded does the provider
see 200. A rejected call (disabled source,
method not allowed, failed verification, body too large) is stored too, with its cause, so an
operator can see what a provider sent and why FastHook refused it.
"""

from __future__ import annotations

import contextlib
import functools
import json
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

from chalicelib.domain import messages
from chalicelib.domain.ids import Prefix, is_id, new_id
from chalicelib.domain.statuses import RejectionCause, RequestStatus
from chalicelib.domain.timefmt import iso
from chalicelib.domain.verification import external_id, verify_request
from chalicelib.ports import TEAM_RETENTION_DAYS, Clock, Doc, PayloadStore, Queues, RecordStore, ResourceStore

# `routing_error` of a stored Request whose route message could not be sent (its provider got an error).
ROUTE_SEND_FAILED = "ROUTE_SEND_FAILED"

CONTENT_TYPES = {"json": "application/json", "text": "text/plain", "xml": "application/xml"}


@dataclass(frozen=True)
class IngestLimits:
    max_body_bytes: int
    inline_body_bytes: int
    retention_days: int


@dataclass(frozen=True)
class Inbound:
    """One provider call as it reached FastHook: headers lower-cased, the path after /e/<source_id>."""

    source_id: str
    method: str
    path: str
    query: str
    headers: dict[str, str]
    body: bytes


@dataclass(frozen=True)
class IngestAnswer:
    status: int
    body: str
    content_type: str = "application/json"
    request_id: str | None = None
    headers: dict[str, str] = field(default_factory=dict)


def _json(status: int, payload: dict[str, Any], request_id: str | None = None, **headers: str) -> IngestAnswer:
    return IngestAnswer(status, json.dumps(payload, separators=(",", ":")), request_id=request_id, headers=headers)


def _parsed_body(headers: dict[str, str], body: bytes) -> Any:
    if "json" not in headers.get("content-type", "").lower() or not body:
        return None
    try:
        return json.loads(body)
    except (ValueError, RecursionError):  # nested thousands deep: still accepted, just not parsed
        return None


def accept_request(
    *,
    inbound: Inbound,
    records: RecordStore,
    resources: ResourceStore,
    payloads: PayloadStore,
    queues: Queues,
    clock: Clock,
    limits: IngestLimits,
) -> IngestAnswer:
    """Verify and store one provider call; route it when accepted. The answer is what the provider sees."""
    found = resources.lookup(inbound.source_id) if is_id(inbound.source_id, Prefix.SOURCE) else None
    if found is None:
        return _json(404, {"error": "not_found", "message": f"No source {inbound.source_id[:64]}"})
    team_id, source = found
    config = source.get("config") or {}
    now = clock.now()
    # The team's retention rides on the source's lookup copy (no extra read). The setting is the default
    # and the ceiling: it is the payload bucket's lifecycle, and a record must never outlive its body.
    retention_days = min(source.get(TEAM_RETENTION_DAYS) or limits.retention_days, limits.retention_days)
    request: Doc = {
        "id": new_id(Prefix.REQUEST),
        "team_id": team_id,
        "source_id": source["id"],
        "status": RequestStatus.ACCEPTED.value,
        "rejection_cause": None,
        "verified": False,
        "method": inbound.method.upper(),
        "path": inbound.path,
        "query": inbound.query,
        "headers": inbound.headers,
        "body": None,
        "body_key": None,
        "body_size": len(inbound.body),
        "content_type": inbound.headers.get("content-type"),
        "external_id": None,
        "ingested_at": iso(now),
        "events_count": 0,
        "ignored_count": 0,
        "routed_at": None,
        "is_retry": False,
        "retry_of": None,
        "retry_kind": None,
        "batch_operation_id": None,
        "expires_at": int((now + timedelta(days=retention_days)).timestamp()),
    }

    def reject(cause: RejectionCause, status: int, error: str, message: str, *, keep_body: bool = True) -> IngestAnswer:
        request.update(status=RequestStatus.REJECTED.value, rejection_cause=cause.value)
        if keep_body:
            _attach_body(request, inbound.body, payloads, limits)
        records.put_request(request)
        return _json(status, {"error": error, "message": message, "request_id": request["id"]}, request["id"])

    if len(inbound.body) > limits.max_body_bytes:
        return reject(
            RejectionCause.PAYLOAD_TOO_LARGE,
            413,
            "payload_too_large",
            f"Body of {len(inbound.body)} bytes is above the {limits.max_body_bytes} byte limit",
            keep_body=False,
        )
    if source.get("disabled_at"):
        return reject(RejectionCause.SOURCE_DISABLED, 403, "source_disabled", "This source is disabled")
    allowed = config.get("allowed_http_methods") or ["POST", "PUT", "PATCH", "DELETE"]
    if request["method"] not in allowed:
        answer = reject(
            RejectionCause.UNSUPPORTED_HTTP_METHOD,
            405,
            "method_not_allowed",
            f"{request['method']} is not accepted by this source; allowed: {', '.join(allowed)}",
        )
        return IngestAnswer(
            answer.status, answer.body, request_id=answer.request_id, headers={"Allow": ", ".join(allowed)}
        )
    verification = verify_request(
        config, method=request["method"], headers=inbound.headers, query={}, raw_body=inbound.body, now=now
    )
    if verification.failure is not None:
        return reject(
            RejectionCause.VERIFICATION_FAILED,
            401,
            "verification_failed",
            f"The request failed the source's verification: {verification.failure}",
        )
    request["verified"] = verification.verified
    request["external_id"] = external_id(config, inbound.headers, _parsed_body(inbound.headers, inbound.body))
    _attach_body(request, inbound.body, payloads, limits)
    message = messages.RouteRequest(team_id=team_id, request_id=request["id"])
    _store_and_route(request, message, records, queues, failed_at=iso(clock.now()))
    return _answer(config, request["id"])


@functools.cache
def _pool() -> ThreadPoolExecutor:
    # One pool per process (Lambda container), made on first use, as the deliver worker's.
    return ThreadPoolExecutor(max_workers=8, thread_name_prefix="ingest-route")


def _store_and_route(
    request: Doc, message: messages.RouteRequest, records: RecordStore, queues: Queues, *, failed_at: str
) -> None:
    """Write the Request and queue its route message at the same time; return when both are done.

    The two calls do not depend on each other, so the provider waits for the slower one instead of
    their sum (the ingest latency budget is one DynamoDB write plus one SQS send). The provider still
    gets 200 only after both succeeded, so an accepted request is durable and queued. If the write
    fails after the send succeeded, the provider sees an error and retries, and the route worker
    finds no Request for that message: it waits briefly, lets SQS redeliver a few times, then drops
    it (RequestNotStoredError in flow/route.py). A message may also overtake its own write; the same
    wait covers that. If the send fails after the write succeeded, the provider sees an error too,
    and the stored Request says why it has no events (`routing_error: ROUTE_SEND_FAILED`).
    """
    sent = _pool().submit(queues.send_route, messages.encode(message))
    records.put_request(request)
    try:
        sent.result()
    except Exception:
        # Not relabelled: the send's own error still fails the call. Marking is best effort; if the
        # store refuses it too, the original error is the one worth reporting.
        with contextlib.suppress(Exception):
            records.mark_routing_failed(request["id"], cause=ROUTE_SEND_FAILED, at=failed_at)
        raise


def _attach_body(request: Doc, body: bytes, payloads: PayloadStore, limits: IngestLimits) -> None:
    """Small bodies live in the Request item; larger ones go to S3 first, so the item never points nowhere."""
    if len(body) <= limits.inline_body_bytes:
        request["body"] = body
        return
    key = f"{request['team_id']}/requests/{request['id']}"
    payloads.put(key, body)
    request["body_key"] = key


def _answer(config: Doc, request_id: str) -> IngestAnswer:
    custom = config.get("custom_response")
    if custom:
        return IngestAnswer(200, custom["body"], CONTENT_TYPES.get(custom["content_type"], "text/plain"), request_id)
    return _json(200, {"status": "SUCCESS", "request_id": request_id}, request_id)
