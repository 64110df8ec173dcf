"""Transformation executions: the record each run of a transform rule in the route worker leaves behind.

An execution points at what it transformed instead of copying it: the request (`request_id`), and
what the branch became (`event_id`, or `ignored_id` when a failure or a later filter dropped it).
The transformed request is kept inline only while it is small (`output_json`, at most
`MAX_OUTPUT_BYTES` of JSON text, kept as text so that any JSON value fits a DynamoDB item whatever its
nesting or number precision); a larger one is `null`, and the event's own data shows it. The console
lines come capped by the engine (count and length per line); here their total is capped too, so an
execution always fits one item (DynamoDB's 400 KB).
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from enum import StrEnum
from typing import Any, Final

from chalicelib.domain.ids import Prefix, derived_id

Doc = dict[str, Any]

# The console levels user code can log with, least to most severe; `log_level` filters take these.
LOG_LEVELS: Final = ("debug", "log", "info", "warn", "error")
MAX_OUTPUT_BYTES: Final = 8192
MAX_LOG_CHARS: Final = 64 * 1024


class ExecutionStatus(StrEnum):
    SUCCESSFUL = "SUCCESSFUL"
    FAILED = "FAILED"


def execution_id(request_id: str, connection_id: str, rule_index: int) -> str:
    """One id per (request, connection, transform rule): a redelivered route message writes the same one."""
    return derived_id(Prefix.EXECUTION, request_id, connection_id, str(rule_index))


def _capped_logs(lines: Iterable[dict[str, str]]) -> tuple[list[dict[str, str]], bool]:
    kept: list[dict[str, str]] = []
    total = 0
    for line in lines:
        level, message = str(line.get("level", "log")), str(line.get("message", ""))
        total += len(message)
        if total > MAX_LOG_CHARS:
            return kept, True
        kept.append({"level": level, "message": message})
    return kept, False


def new_execution(
    *,
    request: Doc,
    connection_id: str,
    transformation_id: str,
    rule_index: int,
    output: Doc | None,
    error: str | None,
    logs: Iterable[dict[str, str]],
    duration_ms: float,
    created_at: str,
    expires_at: int,
) -> Doc:
    """The execution of one run; `error` None means it succeeded and `output` is the transformed request."""
    kept, truncated = _capped_logs(logs)
    output_json = None
    if output is not None:
        text = json.dumps(output, separators=(",", ":"), ensure_ascii=False, default=str)
        output_json = text if len(text.encode()) <= MAX_OUTPUT_BYTES else None
    return {
        "id": execution_id(request["id"], connection_id, rule_index),
        "team_id": request["team_id"],
        "transformation_id": transformation_id,
        "connection_id": connection_id,
        "source_id": request.get("source_id"),
        "request_id": request["id"],
        "event_id": None,
        "ignored_id": None,
        "rule_index": rule_index,
        "status": (ExecutionStatus.FAILED if error is not None else ExecutionStatus.SUCCESSFUL).value,
        "error": error,
        "logs": kept,
        "logs_truncated": truncated,
        "log_levels": sorted({line["level"] for line in kept}),
        "output_json": output_json,
        "duration_ms": round(float(duration_ms), 3),
        "created_at": created_at,
        "expires_at": expires_at,
    }


def most_severe(levels: Iterable[str]) -> str | None:
    """The execution's `log_level`: the most severe level it logged, None when it logged nothing."""
    ranked = [LOG_LEVELS.index(level) for level in levels if level in LOG_LEVELS]
    return LOG_LEVELS[max(ranked)] if ranked else None
