"""Turns pydantic's validation failures into FastHook's ValidationError that names the field."""

from __future__ import annotations

from typing import Any, TypeVar

import pydantic

from chalicelib.domain.errors import ValidationError

M = TypeVar("M", bound=pydantic.BaseModel)


def field_path(loc: tuple[Any, ...], prefix: str = "") -> str:
    parts: list[str] = [prefix] if prefix else []
    for item in loc:
        if isinstance(item, int):
            if parts:
                parts[-1] = f"{parts[-1]}[{item}]"
            else:
                parts.append(f"[{item}]")
        elif isinstance(item, str) and not item.startswith(("function-", "tagged-union", "literal[")):
            parts.append(item)
    return ".".join(parts)


def validate(model: type[M], data: Any, *, prefix: str = "") -> M:
    """Validate `data` as `model`; the first problem becomes a 422 naming its field."""
    try:
        return model.model_validate(data)
    except pydantic.ValidationError as exc:
        err = exc.errors(include_url=False)[0]
        field = field_path(tuple(err["loc"]), prefix) or prefix or "body"
        msg = err["msg"]
        if err["type"] == "missing":
            msg = "is required"
        elif err["type"] == "extra_forbidden":
            msg = "is not a known field"
        elif msg.startswith("Value error, "):
            msg = msg[len("Value error, ") :]
        raise ValidationError(f"{field}: {msg}", field=field) from exc
