"""Transformation routes: /transformations, the test run PUT /transformations/run, and the executions.

`/transformations/run` is a literal segment beside `/transformations/{resource_id}`; chalice (and
API Gateway) match a literal before a parameter, so a run never reaches the update route.
"""

from __future__ import annotations

from typing import Any

from chalicelib.control import executions as executions_uc
from chalicelib.control import transformations as uc
from chalicelib.domain.executions import LOG_LEVELS
from chalicelib.domain.models import Transformation, TransformationCreate, TransformationUpdate
from chalicelib.domain.transforms import TransformationRun
from chalicelib.entrypoints.api import Api, Call, Param, list_envelope, parse_limit
from chalicelib.entrypoints.crud import CrudSpec, register_crud
from chalicelib.ports import Doc

api = Api("transformations", "Transformations")

_LOG_LINE: dict[str, Any] = {
    "type": "object",
    "required": ["level", "message"],
    "properties": {
        "level": {"type": "string", "enum": ["log", "info", "warn", "error", "debug"]},
        "message": {"type": "string"},
    },
}
RUN_RESPONSE: dict[str, Any] = {
    "type": "object",
    "required": ["request", "logs", "duration_ms"],
    "properties": {
        "request": {
            "type": "object",
            "description": "The transformed request: method, path, query (raw string), headers, body.",
            "properties": {
                "method": {"type": "string"},
                "path": {"type": "string"},
                "query": {"type": "string"},
                "headers": {"type": "object", "additionalProperties": {"type": "string"}},
                "body": {"description": "Any JSON value."},
            },
        },
        "logs": {"type": "array", "items": _LOG_LINE, "description": "console lines, in order, capped per run."},
        "duration_ms": {"type": "number"},
    },
    "description": "On failure: 422 {error: TRANSFORMATION_FAILED, message, logs}.",
}


@api.route(
    "/transformations/run",
    ["PUT"],
    summary="Run a transformation on a sample request",
    body=TransformationRun,
    response=RUN_RESPONSE,
    errors=(404,),
)
def run_transformation(call: Call) -> Doc:
    deps = call.deps
    return uc.run_transformation(
        team_id=call.team_id, body=call.body, store=deps.resources, transformer=deps.transformer
    )


def present(call: Call, docs: list[Doc]) -> list[Doc]:
    return [uc.present_transformation(d) for d in docs]


register_crud(
    api,
    CrudSpec(
        path="/transformations",
        plural="transformations",
        kind=uc.KIND,
        create_model=TransformationCreate,
        update_model=TransformationUpdate,
        upsert_model=TransformationCreate,
        response_model=Transformation,
        present=present,
        create=uc.create_transformation,
        upsert=uc.upsert_transformation,
        update=lambda resource_id, **kw: uc.update_transformation(transformation_id=resource_id, **kw),
        delete=lambda resource_id, **kw: uc.delete_transformation(transformation_id=resource_id, **kw),
    ),
)


# ---- executions ------------------------------------------------------------------------------------

_DATA: dict[str, Any] = {
    "type": ["object", "null"],
    "description": "{method, path, query, headers, body}; null once the record it came from expired.",
}
EXECUTION: dict[str, Any] = {
    "type": "object",
    "required": ["id", "transformation_id", "connection_id", "request_id", "status", "logs", "created_at"],
    "properties": {
        "id": {"type": "string", "description": "exe_..."},
        "team_id": {"type": "string"},
        "transformation_id": {"type": "string"},
        "connection_id": {"type": "string"},
        "webhook_id": {"type": "string", "description": "Alias of connection_id."},
        "source_id": {"type": ["string", "null"]},
        "request_id": {"type": "string", "description": "The request the run read (its input)."},
        "event_id": {"type": ["string", "null"], "description": "The event the branch made (its output), if any."},
        "ignored_id": {"type": ["string", "null"], "description": "The ignored branch, when the branch was dropped."},
        "rule_index": {"type": "integer", "description": "Position of the transform rule in the connection's rules."},
        "status": {"type": "string", "enum": ["SUCCESSFUL", "FAILED"]},
        "error": {"type": ["string", "null"]},
        "log_level": {"type": ["string", "null"], "description": "The most severe level logged."},
        "logs": {"type": "array", "items": _LOG_LINE},
        "logs_truncated": {"type": "boolean"},
        "duration_ms": {"type": "number"},
        "created_at": {"type": "string"},
        "updated_at": {"type": "string"},
        "original_event_data": {**_DATA, "description": "Detail only: the request's data. " + _DATA["description"]},
        "transformed_event_data": {**_DATA, "description": "Detail only: the transformed request."},
    },
}
_TIME = {"type": "string", "description": "ISO-8601 or now, now-30s, now-15m, now-1h, now-7d"}
EXECUTION_PARAMS = (
    Param(
        "log_level",
        f"Only executions that logged a line of this level: {', '.join(LOG_LEVELS)} (comma-separated: any of them)",
    ),
    Param("from", "Start of the time range (inclusive)", _TIME),
    Param("to", "End of the time range (inclusive)", _TIME),
    Param("created_at[gte]", "Alias of from", _TIME),
    Param("created_at[lte]", "Alias of to", _TIME),
    Param("limit", "Page size, at most 100 (default 100)", {"type": "integer", "minimum": 1, "maximum": 100}),
    Param("cursor", "Opaque pagination.next or pagination.prev of a previous page with the same filters"),
    Param("dir", "desc (newest first, the default) or asc", {"type": "string", "enum": ["asc", "desc"]}),
)


@api.route(
    "/transformations/{resource_id}/executions",
    ["GET"],
    summary="List a transformation's executions, newest first",
    response=EXECUTION,
    list_response=True,
    params=EXECUTION_PARAMS,
    errors=(404,),
)
def list_executions(call: Call, resource_id: str) -> dict[str, Any]:
    deps = call.deps
    models, pagination = executions_uc.list_executions(
        team_id=call.team_id,
        transformation_id=resource_id,
        query=call.query,
        limit=parse_limit(call.query.get("limit"), 100, 100),
        resources=deps.resources,
        executions=deps.executions,
        now=deps.clock.now(),
    )
    return list_envelope(models, pagination)


@api.route(
    "/transformations/{resource_id}/executions/{execution_id}",
    ["GET"],
    summary="Retrieve a transformation execution with its logs and data",
    response=EXECUTION,
    errors=(404,),
)
def get_execution(call: Call, resource_id: str, execution_id: str) -> Doc:
    deps = call.deps
    return executions_uc.get_execution(
        team_id=call.team_id,
        transformation_id=resource_id,
        execution_id=execution_id,
        resources=deps.resources,
        executions=deps.executions,
        records=deps.records,
        payloads=deps.payloads,
        now=deps.clock.now(),
    )
