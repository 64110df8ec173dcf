"""Ingest entry point: the Lambda function URL that providers call (`/e/{source_id}[/any/path]`).

Chalice has no function-URL support, so this is a plain `@app.lambda_function` and infra/ adds the
URL. The embedded local server builds the same event shape and calls the same handler.

The event (payload format 2.0) is read as the plain dict it is: the five fields ingest needs do not
justify importing powertools' data classes, ~60 ms of a cold start every provider call may hit.
boto3 is not imported here either: wiring builds clients on the first call.
"""

from __future__ import annotations

import base64
import binascii
import json
import re
from typing import Any

from chalicelib import wiring
from chalicelib.flow.ingest import Inbound, IngestAnswer, IngestLimits, accept_request
from chalicelib.logs import service_logger

logger = service_logger("fasthook-ingest")

_PATH = re.compile(r"^/e/([^/]+)(/.*)?$")


def _response(answer: IngestAnswer) -> dict[str, Any]:
    headers = {"Content-Type": answer.content_type, **answer.headers}
    if answer.request_id:
        headers["x-fasthook-request-id"] = answer.request_id
    return {"statusCode": answer.status, "headers": headers, "body": answer.body, "isBase64Encoded": False}


def _error(status: int, error: str, message: str) -> dict[str, Any]:
    return _response(IngestAnswer(status, json.dumps({"error": error, "message": message})))


def handle_function_url(event: dict[str, Any], context: Any) -> dict[str, Any]:
    match = _PATH.match(event.get("rawPath") or "")
    if not match:
        return _error(404, "not_found", "Webhooks are sent to /e/<source_id>")
    raw = event.get("body") or ""
    try:
        body = base64.b64decode(raw, validate=True) if event.get("isBase64Encoded") else raw.encode()
    except (binascii.Error, ValueError):
        return _error(400, "bad_request", "The request body could not be decoded")
    deps = wiring.container()
    settings = deps.settings
    inbound = Inbound(
        source_id=match.group(1),
        method=((event.get("requestContext") or {}).get("http") or {}).get("method", "POST"),
        path=match.group(2) or "",
        query=event.get("rawQueryString") or "",
        headers={k.lower(): v for k, v in (event.get("headers") or {}).items()},
        body=body,
    )
    answer = accept_request(
        inbound=inbound,
        records=deps.records,
        resources=deps.resources,
        payloads=deps.payloads,
        queues=deps.queues,
        clock=deps.clock,
        limits=IngestLimits(settings.max_body_bytes, settings.inline_body_bytes, settings.retention_days),
    )
    logger.info(
        "ingested", extra={"source_id": inbound.source_id, "status": answer.status, "request_id": answer.request_id}
    )
    return _response(answer)
