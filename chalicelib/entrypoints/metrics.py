"""Metrics routes: zero-filled request and event histograms over a date range."""

from __future__ import annotations

from typing import Any

from chalicelib.control import metrics
from chalicelib.entrypoints.api import Api, Call, Param
from chalicelib.entrypoints.requests import EVENT_STATUS, TIME

api = Api("metrics", "Metrics")

RANGE_PARAMS = (
    Param("date_range[start]", "Start of the range (inclusive), required", TIME, required=True),
    Param("date_range[end]", "End of the range (inclusive), required", TIME, required=True),
    Param(
        "granularity",
        f"Bucket size, default {metrics.DEFAULT_GRANULARITY}; at most {metrics.MAX_BUCKETS} buckets a call",
        {"type": "string", "enum": list(metrics.GRANULARITIES)},
    ),
)


def _measures(names: tuple[str, ...]) -> Param:
    return Param(
        "measures[]",
        "Measures to return (repeatable); all by default",
        {"type": "array", "items": {"type": "string", "enum": list(names)}},
    )


def _series(names: tuple[str, ...]) -> dict[str, Any]:
    return {
        "type": "object",
        "required": ["data", "granularity"],
        "properties": {
            "granularity": {"type": "string"},
            "data": {
                "type": "array",
                "items": {
                    "type": "object",
                    "required": ["time_bucket", "metrics"],
                    "properties": {
                        "time_bucket": {"type": "string"},
                        "metrics": {"type": "object", "properties": {n: {"type": "integer"} for n in names}},
                    },
                },
            },
        },
    }


@api.route(
    "/metrics/requests",
    ["GET"],
    summary="Request histogram: count, accepted_count, rejected_count per time bucket",
    response=_series(metrics.REQUEST_MEASURES),
    params=(
        *RANGE_PARAMS,
        _measures(metrics.REQUEST_MEASURES),
        Param("source_id", "Only requests to this source"),
        Param("status", "accepted or rejected", {"type": "string", "enum": ["accepted", "rejected"]}),
        Param("batch_operation_id", "Only replays made by this bulk operation"),
        Param("q", "An exact request id, or an external_id equal to or starting with this"),
    ),
)
def request_metrics(call: Call) -> dict[str, Any]:
    deps = call.deps
    return metrics.request_metrics(
        team_id=call.team_id,
        query=call.query,
        multi=call.multi_query,
        records=deps.records,
        resources=deps.resources,
        now=deps.clock.now(),
    )


@api.route(
    "/metrics/events",
    ["GET"],
    summary="Event histogram: count and counts by status per time bucket",
    response=_series(metrics.EVENT_MEASURES),
    params=(
        *RANGE_PARAMS,
        _measures(metrics.EVENT_MEASURES),
        EVENT_STATUS,
        Param("source_id", "Only events of this source"),
        Param("connection_id", "Only events of this connection"),
        Param("destination_id", "Only events to this destination"),
        Param("batch_operation_id", "Only events retried by this bulk operation"),
        Param("q", "An exact event id or request id"),
    ),
)
def event_metrics(call: Call) -> dict[str, Any]:
    deps = call.deps
    return metrics.event_metrics(
        team_id=call.team_id,
        query=call.query,
        multi=call.multi_query,
        records=deps.records,
        resources=deps.resources,
        now=deps.clock.now(),
    )
