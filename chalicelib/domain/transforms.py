"""Transformations as the pipeline sees them: how one fails, and what a transformed request may look like.

The JavaScript engine that runs user code comes with the transformations issue; until then the
route worker and `PUT /transformations/run` talk to the `Transformer` port, and `NoTransformer`
stands in for the engine so a connection with a transform rule records TRANSFORMATION_FAILED with a
clear reason instead of crashing the worker. `read_transformed_request` is the one check of what user
code handed back, so the worker, the run API and the engine agree on the shape.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any, Final
from urllib.parse import urlencode

from chalicelib.domain.errors import FastHookError

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


class NoTransformer:
    """The Transformer until the JavaScript engine lands: every transformation fails, saying why."""

    def transform(
        self, *, code: str, env: dict[str, str], request: dict[str, Any], context: dict[str, Any]
    ) -> dict[str, Any]:
        raise TransformationError("transformations run once the JavaScript engine lands")


def read_transformed_request(returned: object, *, original: Mapping[str, Any]) -> dict[str, Any]:
    """`{method, path, query, headers, body}` from what user code returned; TransformationError if it is not one.

    A field the code left out keeps the original's value. `query` may come back as the raw string or
    as an object (`{"a": "1", "tag": ["x", "y"]}`); it is stored as the raw string either way. Header
    names are lower-cased, as every stored request's are, and number or boolean values become text;
    `body` is whatever JSON value the code produced (an object, a string, null, ...).
    """
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
