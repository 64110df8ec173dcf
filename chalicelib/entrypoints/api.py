"""The control API's small framework on top of Chalice blueprints.

Each route is declared once with its path, methods, body model and query parameters. The wrapper
authenticates the caller, resolves the team, parses and validates the body, calls the handler and
maps every FastHook error to `{error, message}`. The declarations also feed the OpenAPI document,
so documentation and behaviour come from the same models.
"""

from __future__ import annotations

import functools
import json
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import pydantic
from chalice import Blueprint, Response

from chalicelib import wiring
from chalicelib.control.auth import Principal, authenticate
from chalicelib.control.resources import ListQuery
from chalicelib.domain.errors import (
    FastHookError,
    InvalidJsonError,
    InvalidParameterError,
    PayloadTooLargeError,
    ValidationError,
)
from chalicelib.domain.paging import ORDER_FIELDS
from chalicelib.domain.validation import validate
from chalicelib.logs import service_logger

logger = service_logger("fasthook-api")

# Every control route answers under each of these; auth routes also under /api (giving /api/auth/...).
CONTROL_PREFIXES = ("", "/v1", "/api/control/v1")
MAX_BODY_BYTES = 6 * 1024 * 1024


@dataclass(frozen=True)
class Param:
    name: str
    description: str
    schema: dict[str, Any] = field(default_factory=lambda: {"type": "string"})
    required: bool = False


@dataclass(frozen=True)
class RouteSpec:
    path: str
    methods: tuple[str, ...]
    summary: str
    tag: str
    handler_name: str
    body: type[pydantic.BaseModel] | None
    body_required: bool
    response: dict[str, Any] | type[pydantic.BaseModel] | None
    status: int
    public: bool
    params: tuple[Param, ...]
    list_response: bool
    also_status: tuple[int, ...] = ()  # other success statuses (an upsert that creates answers 201)
    errors: tuple[int, ...] = ()  # error statuses beyond those the route's shape implies


ROUTES: list[RouteSpec] = []


@dataclass
class Call:
    """What a handler gets: the caller, the parsed body, the query and the wired dependencies."""

    principal: Principal | None
    body: Any
    query: dict[str, str]
    multi_query: dict[str, list[str]]
    headers: dict[str, str]
    deps: wiring.Container

    @property
    def team_id(self) -> str:
        assert self.principal is not None
        return self.principal.team_id

    def flag(self, name: str) -> bool | None:
        value = self.query.get(name)
        if value is None or value == "":
            return None
        if value.lower() in ("true", "1"):
            return True
        if value.lower() in ("false", "0"):
            return False
        raise InvalidParameterError(f"{name} must be true or false, not {value!r:.40}")

    def include_auth(self) -> bool:
        return "config.auth" in ",".join(self.multi_query.get("include", [])).split(",")

    def list_query(self, *, max_limit: int = 255, default_limit: int = 100) -> ListQuery:
        order_by = self.query.get("order_by") or "created_at"
        if order_by not in ORDER_FIELDS:
            raise InvalidParameterError(f"order_by must be one of {', '.join(ORDER_FIELDS)}, not {order_by!r:.40}")
        direction = (self.query.get("dir") or "desc").lower()
        if direction not in ("asc", "desc"):
            raise InvalidParameterError(f"dir must be asc or desc, not {direction!r:.40}")
        return ListQuery(
            order_by=order_by,
            direction=direction,
            limit=parse_limit(self.query.get("limit"), default_limit, max_limit),
            cursor=self.query.get("cursor") or self.query.get("next") or self.query.get("prev") or None,
        )


def parse_limit(raw: str | None, default: int, maximum: int) -> int:
    if raw is None or raw == "":
        return default
    # ASCII digits only (str.isdigit also takes "²", which int() refuses), and the value is read whole:
    # leading zeros must not push a large number past a check made on its first digits.
    digits = raw.lstrip("0")
    if not (raw.isascii() and raw.isdigit()) or len(digits) > len(str(maximum)) or not 1 <= int(digits or 0) <= maximum:
        raise InvalidParameterError(f"limit must be a whole number from 1 to {maximum}, not {raw!r:.40}")
    return int(digits)


@dataclass(frozen=True)
class Reply:
    body: Any
    status: int = 200


def json_response(body: Any, status: int = 200, headers: dict[str, str] | None = None) -> Response:
    return Response(
        body=json.dumps(body, separators=(",", ":"), default=str),
        status_code=status,
        headers={"Content-Type": "application/json", **(headers or {})},
    )


def error_response(exc: FastHookError) -> Response:
    return json_response(exc.body(), exc.status_code)


def list_envelope(models: list[Any], pagination: dict[str, Any]) -> dict[str, Any]:
    return {"models": models, "pagination": pagination, "count": len(models)}


def _parse_body(raw: bytes | None, model: type[pydantic.BaseModel] | None, required: bool) -> Any:
    if model is None:
        return None
    if raw is None or raw.strip() == b"":
        if required:
            raise ValidationError("body: is required (a JSON object)", field="body")
        data: Any = {}
    else:
        if len(raw) > MAX_BODY_BYTES:
            raise PayloadTooLargeError("request body is larger than 6 MB")
        try:
            data = json.loads(raw)
        except (UnicodeDecodeError, ValueError) as exc:
            raise InvalidJsonError(f"request body is not valid JSON: {exc}") from exc
        except RecursionError as exc:  # arrays or objects nested thousands deep
            raise InvalidJsonError("request body is nested too deeply to be read") from exc
    if not isinstance(data, dict):
        raise ValidationError("body: must be a JSON object", field="body")
    return validate(model, data)


class Api:
    """A set of declared routes, turned into one Chalice blueprint per URL prefix.

    Chalice consumes a route's options when a blueprint is registered, so registering one blueprint
    under several prefixes breaks; each prefix gets a blueprint of its own instead.
    """

    def __init__(self, name: str, tag: str) -> None:
        self.name = name
        self.tag = tag
        self._views: list[tuple[str, list[str], Callable[[Blueprint], Callable[..., Response]]]] = []

    def blueprint(self) -> Blueprint:
        bp = Blueprint(f"chalicelib.entrypoints.{self.name}")
        for path, methods, make_view in self._views:
            # Bodies are read as JSON whatever the Content-Type says (curl -d sends a form type).
            bp.route(path, methods=list(methods), cors=False, content_types=["*/*"])(make_view(bp))
        return bp

    def route(
        self,
        path: str,
        methods: list[str],
        *,
        summary: str,
        body: type[pydantic.BaseModel] | None = None,
        body_required: bool = True,
        response: dict[str, Any] | type[pydantic.BaseModel] | None = None,
        status: int = 200,
        public: bool = False,
        params: tuple[Param, ...] = (),
        list_response: bool = False,
        also_status: tuple[int, ...] = (),
        errors: tuple[int, ...] = (),
    ) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
        def register(handler: Callable[..., Any]) -> Callable[..., Any]:
            ROUTES.append(
                RouteSpec(
                    path,
                    tuple(methods),
                    summary,
                    self.tag,
                    handler.__name__,
                    body,
                    body_required,
                    response,
                    status,
                    public,
                    params,
                    list_response,
                    also_status,
                    errors,
                )
            )

            def make_view(bp: Blueprint) -> Callable[..., Response]:
                @functools.wraps(handler)
                def view(**uri_params: str) -> Response:
                    return dispatch(bp.current_request, uri_params)

                return view

            def dispatch(request: Any, uri_params: dict[str, str]) -> Response:
                try:
                    deps = wiring.container()
                    headers = {k.lower(): v for k, v in (request.headers or {}).items()}
                    query = dict(request.query_params or {})
                    multi = (
                        {k: request.query_params.getlist(k) for k in request.query_params}
                        if request.query_params
                        else {}
                    )
                    principal = None
                    if not public:
                        principal = authenticate(
                            authorization=headers.get("authorization"),
                            requested_team=headers.get("x-team-id") or query.get("team_id") or None,
                            accounts=deps.accounts,
                            clock=deps.clock,
                        )
                    call = Call(
                        principal, _parse_body(request.raw_body, body, body_required), query, multi, headers, deps
                    )
                    result = handler(call, **uri_params)
                except FastHookError as exc:
                    if exc.status_code >= 500:
                        logger.exception("request failed", extra={"path": request.path})
                    return error_response(exc)
                if isinstance(result, Response):
                    return result
                if isinstance(result, Reply):
                    return json_response(result.body, result.status)
                if result is None:
                    return Response(body="", status_code=204)
                return json_response(result, status)

            self._views.append((path, methods, make_view))
            return handler

        return register
