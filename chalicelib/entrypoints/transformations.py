"""Transformation routes: /transformations and the test run, PUT /transformations/run.

`/transformations/run` is a literal segment beside `/transformations/{resource_id}`; chalice (and
API Gateway) match a literal before a parameter, so a run never reaches the update route.
"""

from __future__ import annotations

from typing import Any

from chalicelib.control import transformations as uc
from chalicelib.domain.models import Transformation, TransformationCreate, TransformationUpdate
from chalicelib.domain.transforms import TransformationRun
from chalicelib.entrypoints.api import Api, Call
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
