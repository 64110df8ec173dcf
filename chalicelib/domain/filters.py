"""The filter language of connection rules: checked when a user saves it, evaluated on every request.

A filter schema is user-written JSON that runs against every webhook a source receives, so it is
checked once, at save time, against a closed list of operators and a size budget; the matcher can
then stay small and never raises, whatever the provider sends.

Matching, as DESIGN.md's rules section fixes it:

- an object matches when each of its keys matches the same key of the value, recursively; keys
  starting with `$` are operators applied to the value itself, and all entries must hold;
- a string, number, boolean or null matches an equal value (`1` equals `1.0`, never `true`);
- an array matches an array value that contains, for each listed element, some matching element;
- a primitive, an operator or an object applied to an array value matches when one element matches
  (`{"tags": "gift"}` matches `{"tags": ["gift", "card"]}`); the negations `$neq` and `$nin` are
  exact complements of `$eq` and `$in`, so on an array they mean "no element";
- `$ref` reads another field of the same document by dotted path (`order.items[0].id`), either as
  `{"$ref": path}` (equality) or as the operand of another operator (`{"$lte": {"$ref": "max"}}`);
  a reference to a field that is not there never matches;
- a missing field fails every operator except `{"$exist": false}` and `$neq`; `$or`, `$and` and
  `$not` pass the missing field on to their sub-schemas (`$not` is plain logical negation).
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Mapping
from typing import Any, Final

from chalicelib.domain.errors import ValidationError

MAX_SCHEMA_DEPTH: Final = 16
MAX_SCHEMA_NODES: Final = 2000
MAX_PATH_LENGTH: Final = 512

OPERATORS: Final = (
    "$eq",
    "$neq",
    "$gt",
    "$gte",
    "$lt",
    "$lte",
    "$in",
    "$nin",
    "$startsWith",
    "$endsWith",
    "$exist",
    "$or",
    "$and",
    "$not",
    "$ref",
)

PathSegment = str | int


class _Missing:
    """A field the document does not have; unlike JSON null, it fails `$exist: true`."""

    def __repr__(self) -> str:
        return "MISSING"


MISSING: Final = _Missing()


# ---- field paths --------------------------------------------------------------------------------

_PIECE_RE = re.compile(r"([^.\[\]]*)((?:\[\d+\])*)", re.ASCII)
_INDEX_RE = re.compile(r"\[(\d+)\]", re.ASCII)


def parse_field_path(text: object) -> tuple[PathSegment, ...] | None:
    """`"a.b[0].c"` -> `("a", "b", 0, "c")`; None when `text` is not such a path."""
    if not isinstance(text, str) or not text or len(text) > MAX_PATH_LENGTH:
        return None
    segments: list[PathSegment] = []
    for piece in text.split("."):
        found = _PIECE_RE.fullmatch(piece)
        if found is None:
            return None
        name, indexes = found.groups()
        if not name and not indexes:
            return None
        if name:
            segments.append(name)
        segments.extend(int(index) for index in _INDEX_RE.findall(indexes))
    return tuple(segments)


def resolve_path(document: object, path: tuple[PathSegment, ...]) -> object:
    """The value at `path` inside `document`, or MISSING."""
    current = document
    for segment in path:
        if isinstance(current, Mapping) and isinstance(segment, str):
            if segment not in current:
                return MISSING
            current = current[segment]
            continue
        index = as_index(segment)
        if isinstance(current, list) and index is not None and index < len(current):
            current = current[index]
            continue
        return MISSING
    return current


def as_index(segment: PathSegment) -> int | None:
    """A list index from `[2]` or from a plain `2` segment (so `items.0.id` also works)."""
    if isinstance(segment, int):
        return segment
    if segment.isascii() and segment.isdigit():
        return int(segment)
    return None


# ---- validation ---------------------------------------------------------------------------------

_SCALARS = (str, int, float, bool, type(None))


class _Budget:
    """Counts nodes across one schema so a hostile one is refused before it is stored."""

    def __init__(self, field: str) -> None:
        self.field = field
        self.nodes = 0

    def visit(self, value: object, depth: int) -> None:
        self.nodes += 1
        if self.nodes > MAX_SCHEMA_NODES:
            raise ValidationError(
                f"{self.field} has more than {MAX_SCHEMA_NODES} values; simplify the filter", field=self.field
            )
        if isinstance(value, (dict, list)) and depth > MAX_SCHEMA_DEPTH:
            raise ValidationError(f"{self.field} is nested more than {MAX_SCHEMA_DEPTH} levels deep", field=self.field)


def validate_filter_schema(schema: object, *, field: str, case_insensitive_keys: bool = False) -> None:
    """Raise ValidationError naming the first problem in `schema` (e.g. `rules[0].body.type.$in`).

    `case_insensitive_keys` is for header filters: `X-Id` and `x-id` in one object would be the
    same header, so having both is refused rather than silently keeping one.
    """
    _check_schema(schema, field, 1, _Budget(field), case_insensitive_keys)


def _check_schema(schema: object, path: str, depth: int, budget: _Budget, fold_case: bool) -> None:
    budget.visit(schema, depth)
    if isinstance(schema, dict):
        seen: dict[str, str] = {}
        for key, sub in schema.items():
            sub_path = f"{path}.{key}"
            if not isinstance(key, str):
                raise ValidationError(f"{path} has a key that is not a string", field=path)
            if key.startswith("$"):
                _check_operator(key, sub, sub_path, depth + 1, budget, fold_case)
                continue
            if fold_case:
                if key.lower() in seen:
                    raise ValidationError(
                        f"{sub_path} names the same header as {seen[key.lower()]}; header names ignore case",
                        field=sub_path,
                    )
                seen[key.lower()] = key
            _check_schema(sub, sub_path, depth + 1, budget, fold_case)
    elif isinstance(schema, list):
        for index, sub in enumerate(schema):
            _check_schema(sub, f"{path}[{index}]", depth + 1, budget, fold_case)
    else:
        _check_scalar(schema, path)


def _check_scalar(value: object, path: str) -> None:
    if not isinstance(value, _SCALARS):
        raise ValidationError(f"{path} must be a JSON value", field=path)
    if isinstance(value, float) and not math.isfinite(value):
        raise ValidationError(f"{path} must be a finite number", field=path)


def _check_operator(op: str, operand: object, path: str, depth: int, budget: _Budget, fold_case: bool) -> None:
    if op not in OPERATORS:
        raise ValidationError(f"{path} is not a filter operator; use one of {', '.join(OPERATORS)}", field=path)
    if op in ("$or", "$and"):
        budget.visit(operand, depth)
        if not isinstance(operand, list) or not operand:
            raise ValidationError(f"{path} must be a non-empty list of filters", field=path)
        for index, sub in enumerate(operand):
            _check_schema(sub, f"{path}[{index}]", depth + 1, budget, fold_case)
    elif op == "$not":
        _check_schema(operand, path, depth, budget, fold_case)
    elif op == "$exist":
        budget.visit(operand, depth)
        if not isinstance(operand, bool):
            raise ValidationError(f"{path} must be true or false", field=path)
    elif op == "$ref":
        budget.visit(operand, depth)
        _check_ref_path(operand, path)
    elif _is_ref_operand(operand):
        budget.visit(operand, depth)
        _check_ref_operand(operand, path, depth + 1, budget)
    elif op in ("$eq", "$neq"):
        _check_literal(operand, path, depth, budget, op)
    elif op in ("$in", "$nin"):
        if not isinstance(operand, list):
            budget.visit(operand, depth)
            raise ValidationError(f'{path} must be a list of values or {{"$ref": "<path>"}}', field=path)
        _check_literal(operand, path, depth, budget, op)
    elif op in ("$startsWith", "$endsWith"):
        budget.visit(operand, depth)
        if not isinstance(operand, str):
            raise ValidationError(f'{path} must be a string or {{"$ref": "<path>"}}', field=path)
    else:
        budget.visit(operand, depth)
        if not (_is_number(operand) or isinstance(operand, str)) or (
            isinstance(operand, float) and not math.isfinite(operand)
        ):
            raise ValidationError(f'{path} must be a number, a string or {{"$ref": "<path>"}}', field=path)


def _check_ref_path(operand: object, path: str) -> None:
    if parse_field_path(operand) is None:
        raise ValidationError(f"{path} must be a dotted field path such as order.items[0].id", field=path)


def _check_ref_operand(operand: dict[str, Any], path: str, depth: int, budget: _Budget) -> None:
    if len(operand) != 1:
        raise ValidationError(f'{path} must be exactly {{"$ref": "<path>"}} when it holds $ref', field=path)
    budget.visit(operand["$ref"], depth)
    _check_ref_path(operand["$ref"], f"{path}.$ref")


def _check_literal(value: object, path: str, depth: int, budget: _Budget, op: str) -> None:
    budget.visit(value, depth)
    if isinstance(value, dict):
        for key, sub in value.items():
            if isinstance(key, str) and key.startswith("$"):
                raise ValidationError(
                    f"{path}.{key} is not allowed here: {op} takes plain JSON values", field=f"{path}.{key}"
                )
            _check_literal(sub, f"{path}.{key}", depth + 1, budget, op)
    elif isinstance(value, list):
        for index, sub in enumerate(value):
            _check_literal(sub, f"{path}[{index}]", depth + 1, budget, op)
    else:
        _check_scalar(value, path)


def _is_ref_operand(operand: object) -> bool:
    return isinstance(operand, dict) and "$ref" in operand


# ---- matching -----------------------------------------------------------------------------------


def match_filter(schema: object, value: object) -> bool:
    """Whether `value` (one request part: body, headers, query or path) passes `schema`.

    `schema` must have passed `validate_filter_schema`; `value` may be anything, including MISSING.
    """
    return _match(schema, value, value)


def _match(schema: object, value: object, root: object) -> bool:
    if isinstance(schema, dict):
        return _match_object(schema, value, root)
    if isinstance(schema, list):
        return _contains_all(schema, value, root)
    return value is not MISSING and _any_item(value, lambda item: json_equal(item, schema))


def _match_object(schema: dict[str, Any], value: object, root: object) -> bool:
    operators = [(key, operand) for key, operand in schema.items() if key.startswith("$")]
    fields = {key: sub for key, sub in schema.items() if not key.startswith("$")}
    if value is MISSING and not operators:
        return False
    if not all(_apply_operator(op, operand, value, root) for op, operand in operators):
        return False
    return not fields or _match_fields(fields, value, root)


def _match_fields(fields: dict[str, Any], value: object, root: object) -> bool:
    if isinstance(value, Mapping):
        return all(_match(sub, value.get(key, MISSING), root) for key, sub in fields.items())
    if isinstance(value, list):
        # All keys must hold on the same element, or {"id": 1, "qty": 2} would mix two line items.
        return any(isinstance(item, Mapping) and _match_fields(fields, item, root) for item in value)
    return False


def _contains_all(schema: list[Any], value: object, root: object) -> bool:
    if not isinstance(value, list):
        return False
    return all(any(_match(sub, item, root) for item in value) for sub in schema)


def _any_item(value: object, test: Callable[[object], bool]) -> bool:
    if test(value):
        return True
    return isinstance(value, list) and any(test(item) for item in value)


def _apply_operator(op: str, operand: Any, value: object, root: object) -> bool:
    if op == "$or":
        return any(_match(sub, value, root) for sub in operand)
    if op == "$and":
        return all(_match(sub, value, root) for sub in operand)
    if op == "$not":
        return not _match(operand, value, root)
    if op == "$exist":
        return (value is not MISSING) is operand
    if op == "$ref":
        operand = {"$ref": operand}
        op = "$eq"
    target = _resolve_operand(operand, root)
    if target is MISSING:
        return False
    if op == "$neq":
        return value is MISSING or not _any_item(value, lambda item: json_equal(item, target))
    if value is MISSING:
        return False
    if op == "$nin":
        return isinstance(target, list) and not _any_item(value, lambda item: _is_in(item, target))
    test = _TESTS.get(op)
    return test is not None and _any_item(value, lambda item: test(item, target))


def _resolve_operand(operand: object, root: object) -> object:
    if isinstance(operand, dict) and "$ref" in operand:
        path = parse_field_path(operand["$ref"])
        return MISSING if path is None else resolve_path(root, path)
    return operand


def _is_in(item: object, target: object) -> bool:
    return isinstance(target, list) and any(json_equal(item, candidate) for candidate in target)


def _is_number(value: object) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _comparable(a: object, b: object) -> bool:
    # Numbers compare with numbers and strings with strings (ISO dates sort as strings); never across.
    return (_is_number(a) and _is_number(b)) or (isinstance(a, str) and isinstance(b, str))


def _starts_with(item: object, target: object) -> bool:
    return isinstance(item, str) and isinstance(target, str) and item.startswith(target)


def _ends_with(item: object, target: object) -> bool:
    return isinstance(item, str) and isinstance(target, str) and item.endswith(target)


def json_equal(a: object, b: object) -> bool:
    """Deep JSON equality: `1 == 1.0`, but `true != 1`; iterative, so deep bodies cannot overflow."""
    pending = [(a, b)]
    while pending:
        x, y = pending.pop()
        if x is y and not isinstance(x, float):
            continue
        if isinstance(x, bool) or isinstance(y, bool):
            if not (isinstance(x, bool) and isinstance(y, bool) and x == y):
                return False
        elif _is_number(x) or _is_number(y):
            if not (_is_number(x) and _is_number(y) and x == y):
                return False
        elif isinstance(x, Mapping):
            if not isinstance(y, Mapping) or x.keys() != y.keys():
                return False
            pending.extend((x[key], y[key]) for key in x)
        elif isinstance(x, list):
            if not isinstance(y, list) or len(x) != len(y):
                return False
            pending.extend(zip(x, y, strict=True))
        elif type(x) is not type(y) or x != y:
            return False
    return True


_TESTS: Final[dict[str, Callable[[Any, Any], bool]]] = {
    "$eq": json_equal,
    "$in": _is_in,
    "$gt": lambda a, b: _comparable(a, b) and a > b,
    "$gte": lambda a, b: _comparable(a, b) and a >= b,
    "$lt": lambda a, b: _comparable(a, b) and a < b,
    "$lte": lambda a, b: _comparable(a, b) and a <= b,
    "$startsWith": _starts_with,
    "$endsWith": _ends_with,
}


def fold_header_schema(schema: object) -> object:
    """`schema` with header names (object keys and `$ref` paths) lower-cased, to match folded headers."""
    if isinstance(schema, dict):
        folded: dict[str, Any] = {}
        for key, sub in schema.items():
            if key == "$ref" and isinstance(sub, str):
                folded[key] = sub.lower()
            elif key in ("$eq", "$neq", "$in", "$nin", "$gt", "$gte", "$lt", "$lte", "$startsWith", "$endsWith"):
                # Operands are header values, which keep their case; only a $ref inside is a name.
                folded[key] = fold_header_schema(sub) if _is_ref_operand(sub) else sub
            else:
                folded[key if key.startswith("$") else key.lower()] = fold_header_schema(sub)
        return folded
    if isinstance(schema, list):
        return [fold_header_schema(sub) for sub in schema]
    return schema
