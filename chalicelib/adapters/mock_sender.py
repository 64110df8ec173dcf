"""The sender of MOCK_API destinations: every delivery is answered 200 `{"status":"ok"}`, without a network.

A MOCK_API destination lets a user try a source and its rules before a real receiver exists. Its
attempts must look like any other (status, body, headers, latency), so the rest of the pipeline (rate
limits, records, metrics) treats it the same; only the wire is skipped.
"""

from __future__ import annotations

from typing import Final

from chalicelib.domain.outbound import DeliveryResult, OutboundRequest

MOCK_RESPONSE_BODY: Final = b'{"status":"ok"}'


class MockSender:
    """Answers every OutboundRequest as a healthy receiver would; keeps no state, so it is safe across threads."""

    def send(self, req: OutboundRequest) -> DeliveryResult:
        return DeliveryResult(
            ok=True,
            status=200,
            response_body=MOCK_RESPONSE_BODY,
            response_headers={"content-type": "application/json"},
            response_latency_ms=0,
        )
