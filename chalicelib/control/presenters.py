"""How Requests, Events and Attempts look to API clients (the observability guide's field lists).

Internal fields (leases, TTL epochs, index keys, raw bytes) never leave the store; the request's
stored data is shown only on request (`include=data`) or on detail routes.
"""

from __future__ import annotations

import base64
import json
from typing import Any

from chalicelib.ports import Doc

_INTERNAL = {"lease_id", "lease_until", "expires_at", "body", "body_key", "data"}


def present_data(method: str, path: str, query: str, headers: dict[str, str], body: bytes | None) -> Doc:
    """`data` as DESIGN.md fixes it: parsed JSON for JSON bodies, UTF-8 text, else base64 with is_base64."""
    out: Doc = {"method": method, "path": path, "query": query, "headers": headers, "body": None}
    if body is None:
        return out
    content_type = next((v for k, v in headers.items() if k.lower() == "content-type"), "")
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError:
        out["body"] = base64.b64encode(body).decode()
        out["is_base64"] = True
        return out
    if "json" in content_type.lower():
        try:
            out["body"] = json.loads(text)
            return out
        except (ValueError, RecursionError):  # a body nested thousands deep is shown as the text it is
            pass
    out["body"] = text
    return out


def present_request(doc: Doc, *, body: bytes | None = None, include_data: bool = False) -> Doc:
    out = {k: v for k, v in doc.items() if k not in _INTERNAL and k != "headers" and k != "query"}
    # Lists order every record by (created_at, id); a request's creation is its ingestion.
    out.setdefault("created_at", doc.get("ingested_at"))
    if include_data:
        out["data"] = present_data(doc["method"], doc["path"], doc["query"], doc["headers"], body)
    return out


def present_event(doc: Doc, *, data: Doc | None = None) -> Doc:
    """An event; `data` (from present_data) on the detail route, where the stored payload is shown."""
    out = {k: v for k, v in doc.items() if k not in _INTERNAL}
    out["webhook_id"] = doc["connection_id"]
    if data is not None:
        out["data"] = data
    return out


def present_attempt(doc: Doc) -> Doc:
    return {k: v for k, v in doc.items() if k not in _INTERNAL or k == "body"}


def present_ignored(doc: Doc) -> Doc:
    return {k: v for k, v in doc.items() if k not in _INTERNAL}


def jsonable(value: Any) -> Any:
    """Stored docs may carry bytes; the API never shows raw bytes."""
    if isinstance(value, bytes):
        return base64.b64encode(value).decode()
    if isinstance(value, dict):
        return {k: jsonable(v) for k, v in value.items()}
    if isinstance(value, list):
        return [jsonable(v) for v in value]
    return value
