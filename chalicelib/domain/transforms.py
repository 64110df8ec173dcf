"""Transformations as the pipeline sees them: what user code gets, how a run fails, what it may hand back.

The route worker and `PUT /transformations/run` talk to the `Transformer` port (the quickjs-ng
sandbox in `adapters/quickjs_engine.py`; `NoTransformer` stays for wiring without an engine). A run
answers a `TransformResult`: what the handler returned plus the console lines it logged.
`read_transformed_request` is the one check of what user code handed back, so the worker, the run
API and the engine agree on the shape; `transform_input` is the one shape user code receives.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Annotated, Any, Final
from urllib.parse import parse_qsl, urlencode

from pydantic import Field, StringConstraints, field_validator

from chalicelib.domain.errors import FastHookError
from chalicelib.domain.models import MAX_CODE_BYTES, EnvMap, Strict

_SCALAR_HEADER_VALUES: Final = (str, int, float, bool)


class TransformationError(FastHookError):
    """User code threw, ran too long, used too much memory, or returned something that is not a request.

    `logs` are the `{level, message}` lines the code logged before it failed, which the run API shows.
    """

    status_code = 422
    error = "TRANSFORMATION_FAILED"

    def __init__(self, message: str, *, logs: Iterable[dict[str, str]] = ()) -> None:
        super().__init__(message)
        self.logs = list(logs)

    def body(self) -> dict[str, Any]:
        return {**super().body(), "logs": self.logs}


@dataclass(frozen=True)
class TransformResult:
    """One successful run: what the handler returned (unchecked), the console lines, and how long it took.

    A Transformer may also answer the bare returned value (the port's first shape); `logs_of` and
    `read_transformed_request` accept both.
    """

    request: object
    logs: list[dict[str, str]] = field(default_factory=list)
    duration_ms: float = 0.0


class NoTransformer:
    """The Transformer for wiring without an engine: every transformation fails, saying why."""

    def transform(
        self, *, code: str, env: dict[str, str], request: dict[str, Any], context: dict[str, Any]
    ) -> TransformResult:
        raise TransformationError("transformations run once the JavaScript engine lands")


def logs_of(returned: object) -> list[dict[str, str]]:
    """The console lines of a run (none for a Transformer that answers the bare request)."""
    return list(returned.logs) if isinstance(returned, TransformResult) else []


def parse_query(query: str) -> dict[str, str | list[str]]:
    """`a=1&tag=x&tag=y` -> `{"a": "1", "tag": ["x", "y"]}`: a repeated key becomes a list."""
    parsed: dict[str, str | list[str]] = {}
    for name, value in parse_qsl(query or "", keep_blank_values=True):
        seen = parsed.get(name)
        if seen is None:
            parsed[name] = value
        elif isinstance(seen, list):
            seen.append(value)
        else:
            parsed[name] = [seen, value]
    return parsed


def transform_input(*, method: str, path: str, query: str, headers: Mapping[str, str], body: object) -> dict[str, Any]:
    """The request user code receives, as the route worker builds it: names lower-cased, the query also parsed.

    A body given as text under a JSON content type is handed over parsed when it parses, as a stored
    request's body is.
    """
    lowered = {str(name).lower(): str(value) for name, value in headers.items()}
    if isinstance(body, str) and "json" in lowered.get("content-type", "").lower():
        try:
            body = json.loads(body)
        except (ValueError, RecursionError):
            pass
    query = (query or "").removeprefix("?")
    return {
        "method": method.upper(),
        "path": path,
        "query": query,
        "parsed_query": parse_query(query),
        "headers": lowered,
        "body": body,
    }


def read_transformed_request(returned: object, *, original: Mapping[str, Any]) -> dict[str, Any]:
    """`{method, path, query, headers, body}` from what user code returned; TransformationError if it is not one.

    `returned` is a TransformResult or the bare returned value; a TransformationError raised here
    carries the run's console lines. A field the code left out keeps the original's value. `query`
    may come back as the raw string or as an object (`{"a": "1", "tag": ["x", "y"]}`); it is stored
    as the raw string either way. Header names are lower-cased, as every stored request's are, and
    number or boolean values become text; `body` is whatever JSON value the code produced.
    """
    if isinstance(returned, TransformResult):
        try:
            return _read_request(returned.request, original)
        except TransformationError as exc:
            exc.logs = exc.logs or list(returned.logs)
            raise
    return _read_request(returned, original)


def _read_request(returned: object, original: Mapping[str, Any]) -> dict[str, Any]:
    if not isinstance(returned, Mapping):
        raise TransformationError(f"the transformation returned {_kind(returned)}, not a request object")
    method = returned.get("method", original.get("method"))
    if not isinstance(method, str) or not method.strip():
        raise TransformationError("the transformation returned a request whose method is not a string")
    path = returned.get("path", original.get("path")) or ""
    if not isinstance(path, str):
        raise TransformationError("the transformation returned a request whose path is not a string")
    return {
        "method": method.strip().upper(),
        "path": path,
        "query": _query_text(returned.get("query", original.get("query"))),
        "headers": _headers(returned.get("headers", original.get("headers"))),
        "body": returned.get("body", original.get("body")),
    }


def _query_text(query: object) -> str:
    if query is None:
        return ""
    if isinstance(query, str):
        return query.removeprefix("?")
    if isinstance(query, Mapping):
        pairs: list[tuple[str, str]] = []
        for name, value in query.items():
            values = value if isinstance(value, list) else [value]
            for item in values:
                if item is not None and not isinstance(item, _SCALAR_HEADER_VALUES):
                    raise TransformationError(f"the transformed query parameter {str(name)[:64]!r} is not text")
                pairs.append((str(name), "" if item is None else _text(item)))
        return urlencode(pairs)
    raise TransformationError(f"the transformation returned a query that is {_kind(query)}, not text or an object")


def _headers(headers: object) -> dict[str, str]:
    if headers is None:
        return {}
    if not isinstance(headers, Mapping):
        raise TransformationError(f"the transformation returned headers that are {_kind(headers)}, not an object")
    out: dict[str, str] = {}
    for name, value in headers.items():
        if value is None:
            continue
        if not isinstance(value, _SCALAR_HEADER_VALUES):
            raise TransformationError(f"the transformed header {str(name)[:64]!r} is not text")
        out[str(name).lower()] = _text(value)
    return out


def _text(value: object) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)


def _kind(value: object) -> str:
    if value is None:
        return "null"
    if isinstance(value, list):
        return "a list"
    if isinstance(value, str):
        return "text"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, (int, float)):
        return "a number"
    return f"a {type(value).__name__}"


# ---- the run endpoint's body ---------------------------------------------------------------------


class TransformationRunRequest(Strict):
    """The sample request a run transforms, shaped like a stored request's `data`."""

    method: Annotated[str, StringConstraints(min_length=1, max_length=16, pattern=r"^[A-Za-z]+$")] = "POST"
    path: Annotated[str, StringConstraints(max_length=4096)] = ""
    query: Annotated[str, StringConstraints(max_length=16384)] = Field("", description="The raw query string, a=1&b=2.")
    headers: dict[Annotated[str, StringConstraints(min_length=1, max_length=256)], str] = Field(default_factory=dict)
    body: Any = Field(None, description="A JSON value; text under a JSON content type is parsed first.")


class TransformationRun(Strict):
    """`PUT /transformations/run`: code (or a stored transformation's id), env, and a request to transform."""

    code: Annotated[str, StringConstraints(min_length=1)] | None = None
    transformation_id: str | None = Field(None, description="Run a stored transformation instead of `code`.")
    env: EnvMap | None = Field(None, description="process.env; defaults to the stored transformation's env.")
    request: TransformationRunRequest

    @field_validator("code")
    @classmethod
    def _code_size(cls, value: str | None) -> str | None:
        if value is not None and len(value.encode()) > MAX_CODE_BYTES:
            raise ValueError("is larger than 5 MB")
        return value
