"""Ordering and opaque cursors for the control lists (sources, destinations, connections, ...).

A cursor encodes the sort key of the boundary item, not an offset, so a page boundary stays put
while resources are created or deleted around it.
"""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import Sequence
from typing import Any

from chalicelib.domain.errors import InvalidParameterError

ORDER_FIELDS = ("created_at", "updated_at", "name")


def encode_cursor(payload: dict[str, Any]) -> str:
    raw = json.dumps(payload, separators=(",", ":")).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def read_cursor(cursor: str) -> dict[str, Any]:
    """The object inside a cursor `encode_cursor` made; anything else (a user's guess) is a 400."""
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
        payload = json.loads(raw)
    except (binascii.Error, ValueError, UnicodeDecodeError, RecursionError) as exc:
        raise InvalidParameterError("cursor is not a cursor this API returned") from exc
    if not isinstance(payload, dict):
        raise InvalidParameterError("cursor is not a cursor this API returned")
    return payload


def decode_cursor(cursor: str, *, expect: dict[str, Any]) -> dict[str, Any]:
    """Read a cursor and check it was made for the same ordering; anything else is a 400."""
    payload = read_cursor(cursor)
    if any(payload.get(k) != v for k, v in expect.items()):
        raise InvalidParameterError("cursor was made for another order_by/dir; start again without it")
    if not isinstance(payload.get("k"), list) or len(payload["k"]) != 2:
        raise InvalidParameterError("cursor is not a cursor this API returned")
    return payload


def paginate(
    items: Sequence[dict[str, Any]], *, order_by: str, direction: str, limit: int, cursor: str | None
) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    """Sort by (order_by, id), then cut one page after (or, for a `prev` cursor, before) the cursor."""
    desc = direction == "desc"
    ordered = sorted(items, key=lambda doc: (str(doc.get(order_by) or ""), doc["id"]), reverse=desc)
    keys = [[str(doc.get(order_by) or ""), doc["id"]] for doc in ordered]
    expect = {"o": order_by, "d": direction}
    start = 0
    if cursor:
        payload = decode_cursor(cursor, expect=expect)
        boundary = payload["k"]
        after = [i for i, k in enumerate(keys) if (k > boundary if not desc else k < boundary)]
        if payload.get("b"):
            before = [i for i, k in enumerate(keys) if (k < boundary if not desc else k > boundary)]
            end = (before[-1] + 1) if before else 0
            start = max(0, end - limit)
        else:
            start = after[0] if after else len(ordered)
    page = list(ordered[start : start + limit])
    has_next = start + limit < len(ordered)
    pagination = {
        "order_by": order_by,
        "dir": direction,
        "limit": limit,
        "next": encode_cursor({**expect, "k": keys[start + len(page) - 1]}) if page and has_next else None,
        "prev": encode_cursor({**expect, "k": keys[start], "b": 1}) if page and start > 0 else None,
    }
    return page, pagination
