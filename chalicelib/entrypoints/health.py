"""Liveness: answers without touching AWS, so a load balancer or uptime check costs nothing."""

from __future__ import annotations

from chalicelib.entrypoints.api import Api, Call

api = Api("health", "Health")


@api.route(
    "/health",
    ["GET"],
    summary="Liveness check",
    public=True,
    response={"type": "object", "properties": {"status": {"type": "string"}}},
)
def health(call: Call) -> dict[str, str]:
    return {"status": "ok"}
