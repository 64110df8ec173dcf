"""A plain provider POST turned into an OutboundRequest, for tests of building and sending deliveries."""

from __future__ import annotations

from typing import Any

from chalicelib.domain.outbound import OutboundRequest, build_delivery

SECRET = "whsec_team_signing_secret"


def a_delivery(destination: dict[str, Any], **overrides: Any) -> OutboundRequest:
    """build_delivery with a JSON POST from a provider; each test overrides what it is about."""
    args: dict[str, Any] = {
        "destination": destination,
        "method": "POST",
        "path_suffix": "",
        "query": "",
        "headers": {"Content-Type": "application/json"},
        "body": b'{"id": 1}',
        "event_id": "evt_1",
        "request_id": "req_1",
        "attempt_number": 1,
        "trigger": "INITIAL",
        "verified": True,
        "signing_secret": SECRET,
    }
    args.update(overrides)
    return build_delivery(**args)
