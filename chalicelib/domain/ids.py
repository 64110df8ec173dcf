"""Typed, prefixed, time-ordered ids (`src_01J...`).

The random part is a ULID-style string: 48 bits of milliseconds then 80 random bits, Crockford
base32, monotonic within a process, so sorting ids sorts them by creation. A path id that is
malformed or carries another resource's prefix is simply not found: `parse_id` raises NotFoundError.
"""

from __future__ import annotations

import os
import re
import threading
import time
from enum import StrEnum

from chalicelib.domain.errors import NotFoundError

_ALPHABET = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"
_BODY_LEN = 26
_BODY_RE = re.compile(r"^[0-9A-HJKMNP-TV-Z]{26}$")


class Prefix(StrEnum):
    TEAM = "tm"
    USER = "usr"
    SOURCE = "src"
    DESTINATION = "des"
    CONNECTION = "web"
    TRANSFORMATION = "trs"
    REQUEST = "req"
    EVENT = "evt"
    ATTEMPT = "att"
    BULK_OPERATION = "bch"
    IGNORED = "ign"
    EXECUTION = "exe"


_lock = threading.Lock()
_last_ms = -1
_last_rand = 0


def _encode(value: int, length: int) -> str:
    chars = []
    for _ in range(length):
        chars.append(_ALPHABET[value & 31])
        value >>= 5
    return "".join(reversed(chars))


def _next_body() -> str:
    global _last_ms, _last_rand
    with _lock:
        now_ms = int(time.time() * 1000)
        if now_ms <= _last_ms:
            # Same (or an earlier, after a clock step) millisecond: count up so order stays creation order.
            now_ms = _last_ms
            rand = _last_rand + 1
        else:
            rand = int.from_bytes(os.urandom(10), "big")
        _last_ms, _last_rand = now_ms, rand & ((1 << 80) - 1)
        return _encode(now_ms, 10) + _encode(_last_rand, 16)


def new_id(prefix: Prefix) -> str:
    return f"{prefix.value}_{_next_body()}"


def is_id(value: object, prefix: Prefix) -> bool:
    if not isinstance(value, str):
        return False
    head, sep, body = value.partition("_")
    return sep == "_" and head == prefix.value and bool(_BODY_RE.match(body))


def parse_id(value: object, prefix: Prefix, what: str) -> str:
    """Return `value` if it is an id of `prefix`; otherwise the resource cannot exist: 404."""
    if not is_id(value, prefix):
        raise NotFoundError(f"{what} {value!s:.80} not found")
    return str(value)


def derived_id(prefix: Prefix, parent_id: str, *parts: str) -> str:
    """A deterministic id for a record made from `parent_id` (an event of a request and connection).

    It keeps the parent's time part, so it sorts with the parent, and takes its random part from a
    hash of the inputs: a worker that processes the same message twice writes the same ids, and the
    conditional put of the second write finds the first instead of making a duplicate.
    """
    import hashlib

    body = parent_id.partition("_")[2]
    digest = int.from_bytes(hashlib.sha256("|".join((parent_id, *parts)).encode()).digest()[:10], "big")
    return f"{prefix.value}_{body[:10]}{_encode(digest, 16)}"
