"""`GET /openapi.json`: the OpenAPI 3.1 document of the control API, generated from the route declarations.

Every route is declared once in `api.ROUTES` with the pydantic models that validate its body, so the
document is derived from that list instead of being written by hand: it cannot drift from what the
handlers accept. Building it walks every model's JSON schema, which costs far more than a cold start
should pay for a route few callers use, so it is built on the first request and kept for the life
of the process (the routes cannot change while it runs).
"""

from __future__ import annotations

import functools
import json
import re
from typing import Any

import pydantic
from chalice import Response

from chalicelib.domain.paging import ORDER_FIELDS
from chalicelib.entrypoints import api as api_module
from chalicelib.entrypoints.api import Api, Call, RouteSpec

api = Api("openapi", "Meta")

TITLE = "FastHook"
VERSION = "1.0.0"
REF = "#/components/schemas/{model}"
_PATH_PARAM = re.compile(r"{([^}]+)}")
_WRITES = frozenset({"POST", "PUT", "PATCH", "DELETE"})
_SUCCESS = {200: "OK", 201: "Created", 202: "Accepted", 204: "No content"}

DESCRIPTION = (
    "The FastHook control API. Paths are listed without a prefix and the server URL is `/v1`; every path "
    "also answers with no prefix at all and under `/api/control/v1`, and the `/auth/...` routes also "
    "answer under `/api/auth/...` (the dashboard's prefix). Authenticate with `Authorization: Bearer "
    "<token>`, a project API key (`fhp_...`) or a session token from a login route. The team is the "
    "`x-team-id` header, then the `team_id` query parameter, then the caller's default team."
)

ERROR_SCHEMA: dict[str, Any] = {
    "type": "object",
    "required": ["error", "message"],
    "properties": {
        "error": {"type": "string", "description": "Stable machine-readable reason, e.g. not_found."},
        "message": {"type": "string", "description": "What went wrong, for a human."},
        "code": {"type": "string", "description": "On 409: RESOURCE_ALREADY_EXISTS, CONCURRENT_UPDATE, ..."},
        "data": {"description": "On 409 RESOURCE_ALREADY_EXISTS: the existing resource."},
        "field": {"type": "string", "description": "On 422: the dotted path of the offending field."},
    },
}
PAGINATION_SCHEMA: dict[str, Any] = {
    "type": "object",
    "required": ["order_by", "dir", "limit", "next", "prev"],
    "properties": {
        "order_by": {"type": "string", "enum": list(ORDER_FIELDS)},
        "dir": {"type": "string", "enum": ["asc", "desc"]},
        "limit": {"type": "integer", "minimum": 1},
        "next": {"type": ["string", "null"], "description": "Cursor of the next page; null on the last page."},
        "prev": {"type": ["string", "null"], "description": "Cursor of the previous page; null on the first."},
    },
}
# Keyed by status so operations can point at them; the names are the components' names.
ERROR_RESPONSES: dict[int, tuple[str, str]] = {
    400: ("BadRequest", "Malformed JSON, query parameter or header."),
    401: ("Unauthorized", "No bearer token, or one that is not a valid API key or live session token."),
    403: ("Forbidden", "The caller is not a member of the requested team, or may not do this."),
    404: ("NotFound", "No such resource in this team; a malformed id or one of another team is also a 404."),
    409: (
        "Conflict",
        "The name is taken (code RESOURCE_ALREADY_EXISTS, data = the existing resource), the "
        "resource changed meanwhile (CONCURRENT_UPDATE) or it is still in use (RESOURCE_IN_USE).",
    ),
    413: ("PayloadTooLarge", "The request body is larger than the API accepts."),
    422: ("ValidationFailed", "The body breaks the resource's rules; `field` names the offending field."),
}
TEAM_PARAMS: tuple[dict[str, Any], ...] = (
    {
        "name": "x-team-id",
        "in": "header",
        "required": False,
        "schema": {"type": "string"},
        "description": "Team to act on; defaults to team_id, then the caller's default team.",
    },
    {
        "name": "team_id",
        "in": "query",
        "required": False,
        "schema": {"type": "string"},
        "description": "Team to act on when x-team-id is absent.",
    },
)


def _schemas_of_models(
    routes: list[RouteSpec],
) -> tuple[dict[tuple[type[pydantic.BaseModel], str], Any], dict[str, Any]]:
    """Bodies in validation mode, responses in serialization mode, all in one pass.

    One pass lets pydantic name every model once and disambiguate two models that share a class name
    (or one model whose input and output shapes differ), where hoisting each model's `$defs` one at a
    time would let the last one silently overwrite the others.
    """
    from pydantic.json_schema import models_json_schema

    wanted: dict[tuple[type[pydantic.BaseModel], str], None] = {}
    for route in routes:
        if route.body is not None:
            wanted[(route.body, "validation")] = None
        if isinstance(route.response, type):
            wanted[(route.response, "serialization")] = None
    if not wanted:
        return {}, {}
    refs, top = models_json_schema(list(wanted), ref_template=REF)  # type: ignore[arg-type]
    return dict(refs), top.get("$defs", {})


def _response_schema(route: RouteSpec, refs: dict[tuple[type[pydantic.BaseModel], str], Any]) -> Any:
    if route.response is None:
        return None
    if isinstance(route.response, dict):
        item: Any = route.response
    else:
        item = refs[(route.response, "serialization")]
    if not route.list_response:
        return item
    return {
        "type": "object",
        "required": ["models", "pagination", "count"],
        "properties": {
            "models": {"type": "array", "items": item},
            "pagination": {"$ref": REF.format(model="Pagination")},
            "count": {"type": "integer", "minimum": 0, "description": "Number of models on this page."},
        },
    }


def _error_statuses(route: RouteSpec, method: str, path_params: list[str]) -> list[int]:
    statuses: list[int] = []
    if not route.public or route.body is not None or route.params:
        statuses.append(400)
    if not route.public:
        statuses += [401, 403]
    if path_params:
        statuses.append(404)
    # A write conflicts when it changes a stored resource: it carries a body or names one by id.
    # (That excludes logout, which only ends the caller's own session.)
    if not route.public and method in _WRITES and (route.body is not None or path_params or method != "POST"):
        statuses.append(409)
    if route.body is not None:
        statuses += [413, 422]
    return sorted(set(statuses) | set(route.errors))


def _operation(
    route: RouteSpec, method: str, operation_id: str, refs: dict[tuple[type[pydantic.BaseModel], str], Any]
) -> dict[str, Any]:
    path_params = _PATH_PARAM.findall(route.path)
    parameters: list[dict[str, Any]] = [
        {
            "name": name,
            "in": "path",
            "required": True,
            "schema": {"type": "string"},
            "description": f"The {name.replace('_', ' ')}.",
        }
        for name in path_params
    ]
    parameters += [
        {"name": p.name, "in": "query", "required": p.required, "description": p.description, "schema": p.schema}
        for p in route.params
    ]
    if not route.public:
        declared = {(p["name"], p["in"]) for p in parameters}
        parameters += [p for p in TEAM_PARAMS if (p["name"], p["in"]) not in declared]

    op: dict[str, Any] = {"operationId": operation_id, "tags": [route.tag], "summary": route.summary}
    if parameters:
        op["parameters"] = parameters
    if route.body is not None:
        op["requestBody"] = {
            "required": route.body_required,
            "content": {"application/json": {"schema": refs[(route.body, "validation")]}},
        }

    success: dict[str, Any] = {"description": _SUCCESS.get(route.status, "Success")}
    schema = _response_schema(route, refs)
    if schema is not None and route.status != 204:
        success["content"] = {"application/json": {"schema": schema}}
    responses: dict[str, Any] = {str(route.status): success}
    for also in route.also_status:
        responses[str(also)] = {**success, "description": _SUCCESS.get(also, "Success")}
    for status in _error_statuses(route, method, path_params):
        responses[str(status)] = {"$ref": f"#/components/responses/{ERROR_RESPONSES[status][0]}"}
    op["responses"] = responses
    if not route.public:
        op["security"] = [{"bearer": []}]
    return op


def build_document(routes: list[RouteSpec]) -> dict[str, Any]:
    refs, model_schemas = _schemas_of_models(routes)
    own = {"Error": ERROR_SCHEMA, "Pagination": PAGINATION_SCHEMA}
    clash = own.keys() & model_schemas.keys()
    if clash:
        raise RuntimeError(f"pydantic models named {sorted(clash)} clash with OpenAPI components of the same name")

    # Two operations of one path and method cannot both be documented; Chalice refuses them at
    # registration anyway, so a second one can only come from a module imported twice.
    seen: set[tuple[str, str]] = set()
    operation_ids: set[str] = set()
    paths: dict[str, dict[str, Any]] = {}
    tags: dict[str, None] = {}
    for route in routes:
        for method in route.methods:
            if (route.path, method) in seen:
                continue
            seen.add((route.path, method))
            base = route.handler_name if len(route.methods) == 1 else f"{route.handler_name}_{method.lower()}"
            operation_id, n = base, 2
            while operation_id in operation_ids:
                operation_id, n = f"{base}_{n}", n + 1
            operation_ids.add(operation_id)
            paths.setdefault(route.path, {})[method.lower()] = _operation(route, method, operation_id, refs)
            tags[route.tag] = None

    return {
        "openapi": "3.1.0",
        "info": {"title": TITLE, "version": VERSION, "description": DESCRIPTION},
        "servers": [{"url": "/v1"}],
        "tags": [{"name": tag} for tag in tags],
        "paths": paths,
        "components": {
            "schemas": {**model_schemas, **own},
            "responses": {
                name: {
                    "description": text,
                    "content": {"application/json": {"schema": {"$ref": REF.format(model="Error")}}},
                }
                for name, text in ERROR_RESPONSES.values()
            },
            "securitySchemes": {
                "bearer": {
                    "type": "http",
                    "scheme": "bearer",
                    "description": "A project API key (fhp_...) or a session token from /auth/.../login.",
                },
            },
        },
    }


@functools.cache
def document() -> dict[str, Any]:
    """The document of every route declared so far; callers must not modify it."""
    return build_document(api_module.ROUTES)


@functools.cache
def _document_text() -> str:
    return json.dumps(document(), separators=(",", ":"))


@api.route(
    "/openapi.json",
    ["GET"],
    summary="This API's OpenAPI 3.1 document",
    public=True,
    response={"type": "object", "required": ["openapi", "info", "paths"], "description": "An OpenAPI 3.1 document."},
)
def openapi_document(call: Call) -> Response:
    return Response(body=_document_text(), status_code=200, headers={"Content-Type": "application/json"})
