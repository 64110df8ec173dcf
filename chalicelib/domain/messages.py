"""What travels on FastHook's queues: frozen, versioned messages that carry ids, never bodies.

A worker that meets a version it does not know fails that message (it goes to the DLQ and the
sweeper records it) rather than guessing.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass

VERSION = 1


class UnknownMessageError(ValueError):
    """A queue body that is not a FastHook message of a version this code understands."""


@dataclass(frozen=True)
class RouteRequest:
    """Route one stored Request through its source's connections."""

    team_id: str
    request_id: str
    v: int = VERSION
    kind: str = "route"


@dataclass(frozen=True)
class DeliverEvent:
    """Try to deliver one Event; `trigger` is why this try exists (INITIAL, AUTOMATIC, MANUAL, ...)."""

    team_id: str
    event_id: str
    trigger: str
    v: int = VERSION
    kind: str = "deliver"


Message = RouteRequest | DeliverEvent
_KINDS: dict[str, type[RouteRequest] | type[DeliverEvent]] = {"route": RouteRequest, "deliver": DeliverEvent}


def encode(message: Message) -> str:
    return json.dumps(asdict(message), separators=(",", ":"), sort_keys=True)


def decode(body: str) -> Message:
    try:
        data = json.loads(body)
        kind = _KINDS[data["kind"]]
        if data.get("v") != VERSION:
            raise UnknownMessageError(f"message version {data.get('v')!r} is not {VERSION}")
        return kind(**data)
    except UnknownMessageError:
        raise
    except (ValueError, KeyError, TypeError) as exc:
        raise UnknownMessageError(f"not a FastHook message: {exc}") from exc
