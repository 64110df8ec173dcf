"""Reading transformation executions: `GET /transformations/:id/executions` and one execution by id.

Decisions the spec leaves open, fixed here:
- **The transformation must exist** for the team: an unknown, malformed or other team's id is a 404,
  as is an execution id that is malformed, unknown, of another team or of another transformation.
- **Filters.** `log_level` keeps executions that logged at least one line of that level (`debug`,
  `log`, `info`, `warn`, `error`; several comma-separated mean any of them); the time window is
  `from`/`to` or `created_at[gte|lte]`, ISO or relative (`now-1h`), like the other lists.
- **Shape.** Lists show the run's metadata and its console lines; `log_level` is the most severe
  level logged (null when nothing was). The detail adds `original_event_data` (the stored request's
  data) and `transformed_event_data` (the output kept with the execution when small, else the data
  of the event the branch made; null when neither is there any more).
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from datetime import datetime
from typing import Any

from chalicelib.control import observe
from chalicelib.control import resources as res
from chalicelib.domain.errors import InvalidParameterError, NotFoundError
from chalicelib.domain.executions import LOG_LEVELS, most_severe
from chalicelib.domain.ids import Prefix, parse_id
from chalicelib.ports import Doc, ExecutionStore, PayloadStore, RecordStore, ResourceStore, TimelineQuery

KIND = "EXE"
_HIDDEN = frozenset({"expires_at", "output_json", "log_levels"})


def parse_log_levels(raw: str | None) -> tuple[str, ...]:
    if not raw:
        return ()
    levels = tuple(dict.fromkeys(part.strip().lower() for part in raw.split(",") if part.strip()))
    unknown = [level for level in levels if level not in LOG_LEVELS]
    if unknown or not levels:
        raise InvalidParameterError(f"log_level must be one of {' | '.join(LOG_LEVELS)}, not {raw!r:.40}")
    return levels


def present_execution(doc: Doc) -> Doc:
    out = {k: v for k, v in doc.items() if k not in _HIDDEN}
    out["webhook_id"] = doc.get("connection_id")
    out["log_level"] = most_severe(doc.get("log_levels") or [])
    out["updated_at"] = doc["created_at"]
    return out


def list_executions(
    *,
    team_id: str,
    transformation_id: str,
    query: Mapping[str, str],
    limit: int,
    resources: ResourceStore,
    executions: ExecutionStore,
    now: datetime,
) -> tuple[list[Doc], dict[str, Any]]:
    """A page of the transformation's executions, newest first unless `dir=asc`."""
    transformation = res.get_resource(resources, team_id, res.TRANSFORMATION, transformation_id)
    levels = parse_log_levels(query.get("log_level"))
    start, end = observe.time_window(query, now)
    # The cursor is bound to this transformation: one made for another cannot page this list.
    paging = observe.page_request(f"transformations/{transformation['id']}/executions", query, limit=limit)
    base = TimelineQuery(start=start, end=end, now=now)
    docs, pagination = observe.timeline_page(
        lambda q: executions.query_executions(team_id, transformation["id"], q, log_levels=levels), KIND, base, paging
    )
    return [present_execution(d) for d in docs], pagination


def get_execution(
    *,
    team_id: str,
    transformation_id: str,
    execution_id: str,
    resources: ResourceStore,
    executions: ExecutionStore,
    records: RecordStore,
    payloads: PayloadStore,
    now: datetime,
) -> Doc:
    """One execution with its logs, the request it read and what it made of it."""
    transformation = res.get_resource(resources, team_id, res.TRANSFORMATION, transformation_id)
    eid = parse_id(execution_id, Prefix.EXECUTION, "Execution")
    doc = executions.get_execution(eid)
    if doc is None or doc.get("transformation_id") != transformation["id"] or not observe.is_live(doc, team_id, now):
        raise NotFoundError(f"Execution {eid} not found")
    out = present_execution(doc)
    out["original_event_data"] = _data_or_none(
        lambda: observe.get_request(
            team_id=team_id, request_id=doc["request_id"], records=records, payloads=payloads, now=now
        )
    )
    if doc.get("output_json"):
        out["transformed_event_data"] = json.loads(doc["output_json"])
    elif doc.get("event_id"):
        out["transformed_event_data"] = _data_or_none(
            lambda: observe.get_event(
                team_id=team_id, event_id=doc["event_id"], records=records, payloads=payloads, now=now
            )
        )
    else:
        out["transformed_event_data"] = None
    return out


def _data_or_none(read: Any) -> Doc | None:
    """The `data` of a record the execution points at; None once that record expired before the execution."""
    try:
        return read().get("data")
    except NotFoundError:
        return None
