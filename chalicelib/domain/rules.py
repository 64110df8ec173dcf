"""Connection rules: what a user may put in `connection.rules`, and what each rule decides.

The control API parses and normalises rules once, when a connection is saved, so every mistake comes
back as a 422 naming its field (`rules[1].window`) and the workers never meet a rule they cannot run.
The route worker asks this module whether a request passes a filter and which deduplicate key it
has; the deliver worker asks whether a response status is retried and how long to wait. All of it
is pure, so the same answers hold in the API, the workers and the tests.

Bounds chosen here (the spec fixes `window`, `delay` and `count`): a retry `interval` is 1 s..24 h,
an exponential backoff never waits more than 24 h, a connection has at most 50 rules, and a
deduplicate rule or a `response_status_codes` list names at most 50 entries.
"""

from __future__ import annotations

import base64
import hashlib
import json
import re
import types
import typing
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from enum import StrEnum
from functools import lru_cache
from typing import Annotated, Any, Final, Literal

import pydantic
from pydantic import BaseModel, Field, ValidationInfo, field_validator, model_validator

from chalicelib.domain.errors import ValidationError
from chalicelib.domain.filters import (
    MISSING,
    PathSegment,
    as_index,
    fold_header_schema,
    match_filter,
    parse_field_path,
    resolve_path,
    validate_filter_schema,
)
from chalicelib.domain.ids import Prefix, is_id
from chalicelib.domain.validation import field_path

MAX_RULES: Final = 50
MIN_DEDUPLICATE_WINDOW_MS: Final = 1_000
MAX_DEDUPLICATE_WINDOW_MS: Final = 3_600_000
MAX_DEDUPLICATE_FIELDS: Final = 50
MAX_DELAY_MS: Final = 86_400_000
MAX_RETRY_COUNT: Final = 50
MIN_RETRY_INTERVAL_MS: Final = 1_000
MAX_RETRY_INTERVAL_MS: Final = 86_400_000
MAX_RETRY_DELAY_MS: Final = 86_400_000
MAX_STATUS_CODE_ENTRIES: Final = 50
MAX_TRANSFORMATION_NAME_LENGTH: Final = 155


class RuleType(StrEnum):
    FILTER = "filter"
    TRANSFORM = "transform"
    DEDUPLICATE = "deduplicate"
    DELAY = "delay"
    RETRY = "retry"


# The spec accepts "transformation" as another spelling of "transform"; it is stored as "transform".
TRANSFORMATION_ALIAS: Final = "transformation"


class RetryStrategy(StrEnum):
    LINEAR = "linear"
    EXPONENTIAL = "exponential"


REQUEST_PARTS: Final = ("body", "headers", "query", "path")

_PATH_EXAMPLE = "body.id or headers.x-github-delivery"
_STATUS_EXAMPLE = '"500", a range like "500-599" or a comparison like ">=400", optionally negated with "!"'


def _prefix(info: ValidationInfo) -> str:
    """The rule's own name in messages: `rules[2]` when parsed by parse_rules."""
    return str(info.context.get("field_prefix", "")) if isinstance(info.context, dict) else ""


def _field(info: ValidationInfo, name: str) -> str:
    prefix = _prefix(info)
    return f"{prefix}.{name}" if prefix else name


class _Strict(BaseModel):
    model_config = pydantic.ConfigDict(extra="forbid", strict=True, frozen=True)


class FilterRule(_Strict):
    """Lets a request through only when every given part matches its schema (see filters.py)."""

    type: Literal[RuleType.FILTER]
    body: Any = None
    headers: Any = None
    query: Any = None
    path: Any = None

    @field_validator("body", "headers", "query", "path")
    @classmethod
    def _check_schema(cls, value: object, info: ValidationInfo) -> object:
        if value is not None:
            part = info.field_name or ""
            validate_filter_schema(value, field=_field(info, part), case_insensitive_keys=part == "headers")
        return value

    @model_validator(mode="after")
    def _check_some_part(self, info: ValidationInfo) -> FilterRule:
        if all(getattr(self, part) is None for part in REQUEST_PARTS):
            field = _prefix(info) or "rule"
            raise ValidationError(
                f"{field} needs a filter on at least one of body, headers, query or path", field=field
            )
        return self


class InlineTransformation(_Strict):
    name: str = Field(
        min_length=1,
        max_length=MAX_TRANSFORMATION_NAME_LENGTH,
        pattern=r"\S",
        description=f"a name of 1 to {MAX_TRANSFORMATION_NAME_LENGTH} characters",
    )
    code: str = Field(min_length=1, pattern=r"\S", description="a non-empty string of code")
    env: dict[str, str] | None = Field(default=None, description="an object whose values are strings")


class TransformRule(_Strict):
    """Runs a transformation, stored (`transformation_id`) or inline (upserted by name on save)."""

    type: Literal[RuleType.TRANSFORM, "transformation"]
    transformation_id: str | None = Field(default=None, description="a transformation id (trs_...)")
    transformation: InlineTransformation | None = Field(
        default=None, description="an object with name, code and optional env"
    )

    @field_validator("type")
    @classmethod
    def _store_canonical_type(cls, value: str) -> str:
        return RuleType.TRANSFORM

    @field_validator("transformation_id")
    @classmethod
    def _check_id(cls, value: str | None, info: ValidationInfo) -> str | None:
        if value is not None and not is_id(value, Prefix.TRANSFORMATION):
            field = _field(info, "transformation_id")
            raise ValidationError(f"{field} must be a transformation id (trs_...)", field=field)
        return value

    @model_validator(mode="after")
    def _check_exactly_one(self, info: ValidationInfo) -> TransformRule:
        if self.transformation_id is not None and self.transformation is not None:
            field = _field(info, "transformation")
            raise ValidationError(f"{field} cannot be given together with transformation_id; use one", field=field)
        if self.transformation_id is None and self.transformation is None:
            field = _field(info, "transformation_id")
            raise ValidationError(f"{field} is required unless an inline transformation is given", field=field)
        return self


_FIELDS_DESCRIPTION = f"a non-empty list of at most {MAX_DEDUPLICATE_FIELDS} dotted paths such as {_PATH_EXAMPLE}"


class DeduplicateRule(_Strict):
    """Drops a request whose key was already seen on the connection within `window` ms."""

    type: Literal[RuleType.DEDUPLICATE]
    window: int = Field(
        ge=MIN_DEDUPLICATE_WINDOW_MS,
        le=MAX_DEDUPLICATE_WINDOW_MS,
        description=f"a whole number of ms between {MIN_DEDUPLICATE_WINDOW_MS} and {MAX_DEDUPLICATE_WINDOW_MS}",
    )
    include_fields: list[str] | None = Field(
        default=None, min_length=1, max_length=MAX_DEDUPLICATE_FIELDS, description=_FIELDS_DESCRIPTION
    )
    exclude_fields: list[str] | None = Field(
        default=None, min_length=1, max_length=MAX_DEDUPLICATE_FIELDS, description=_FIELDS_DESCRIPTION
    )

    @field_validator("include_fields", "exclude_fields")
    @classmethod
    def _check_paths(cls, value: list[str] | None, info: ValidationInfo) -> list[str] | None:
        for index, text in enumerate(value or ()):
            if _parse_request_path(text) is None:
                field = f"{_field(info, info.field_name or '')}[{index}]"
                raise ValidationError(
                    f"{field} must be a dotted path rooted at body, headers, query or path, such as {_PATH_EXAMPLE}",
                    field=field,
                )
        return value

    @model_validator(mode="after")
    def _check_one_list(self, info: ValidationInfo) -> DeduplicateRule:
        if self.include_fields is not None and self.exclude_fields is not None:
            field = _field(info, "exclude_fields")
            raise ValidationError(f"{field} cannot be combined with include_fields; use one of them", field=field)
        return self


class DelayRule(_Strict):
    """Holds every event of the connection for `delay` ms before its first delivery."""

    type: Literal[RuleType.DELAY]
    delay: int = Field(
        ge=0, le=MAX_DELAY_MS, description=f"a whole number of ms between 0 and {MAX_DELAY_MS} (24 hours)"
    )


class RetryRule(_Strict):
    """How many automatic retries a failed delivery gets, how far apart, and for which responses."""

    type: Literal[RuleType.RETRY]
    strategy: RetryStrategy = Field(strict=False, description='"linear" or "exponential"')
    count: int = Field(ge=0, le=MAX_RETRY_COUNT, description=f"a whole number between 0 and {MAX_RETRY_COUNT}")
    interval: int = Field(
        ge=MIN_RETRY_INTERVAL_MS,
        le=MAX_RETRY_INTERVAL_MS,
        description=f"a whole number of ms between {MIN_RETRY_INTERVAL_MS} and {MAX_RETRY_INTERVAL_MS} (24 hours)",
    )
    response_status_codes: list[str] | None = Field(
        default=None,
        max_length=MAX_STATUS_CODE_ENTRIES,
        description=f"a list of at most {MAX_STATUS_CODE_ENTRIES} entries such as {_STATUS_EXAMPLE}",
    )

    @field_validator("response_status_codes")
    @classmethod
    def _check_codes(cls, value: list[str] | None, info: ValidationInfo) -> list[str] | None:
        for index, entry in enumerate(value or ()):
            if _parse_status_entry(entry) is None:
                field = f"{_field(info, 'response_status_codes')}[{index}]"
                raise ValidationError(f"{field} must be a status code like {_STATUS_EXAMPLE}", field=field)
        return value


Rule = Annotated[FilterRule | TransformRule | DeduplicateRule | DelayRule | RetryRule, Field(discriminator="type")]

_MODELS: Final[dict[str, type[_Strict]]] = {
    RuleType.FILTER: FilterRule,
    RuleType.TRANSFORM: TransformRule,
    TRANSFORMATION_ALIAS: TransformRule,
    RuleType.DEDUPLICATE: DeduplicateRule,
    RuleType.DELAY: DelayRule,
    RuleType.RETRY: RetryRule,
}
# Order of the stored list; filters and transforms share a rank so they keep the user's order.
_RANK: Final[dict[str, int]] = {
    RuleType.FILTER: 0,
    RuleType.TRANSFORM: 0,
    RuleType.DEDUPLICATE: 1,
    RuleType.DELAY: 2,
    RuleType.RETRY: 3,
}
_AT_MOST_ONE: Final = (RuleType.DEDUPLICATE, RuleType.DELAY, RuleType.RETRY)


# ---- parsing ------------------------------------------------------------------------------------


def parse_rules(raw: object) -> list[Rule]:
    """Validate the `rules` of a connection body and return them in normalised order.

    Errors name the field by its position in `raw` (`rules[3].delay`), which is what the user sent.
    """
    if not isinstance(raw, list):
        raise ValidationError("rules must be a list of rule objects", field="rules")
    if len(raw) > MAX_RULES:
        raise ValidationError(f"rules may hold at most {MAX_RULES} rules", field="rules")
    rules = [parse_rule(item, field=f"rules[{index}]") for index, item in enumerate(raw)]
    first_of: dict[str, int] = {}
    for index, rule in enumerate(rules):
        if rule.type not in _AT_MOST_ONE:
            continue
        if rule.type in first_of:
            raise ValidationError(
                f"rules[{index}] is a second {rule.type} rule (the first is rules[{first_of[rule.type]}]); "
                f"a connection takes at most one",
                field=f"rules[{index}]",
            )
        first_of[rule.type] = index
    return normalize_rules(rules)


def parse_rule(raw: object, *, field: str = "rule") -> Rule:
    """Validate one rule object; `field` is its name in messages (`rules[0]`)."""
    if not isinstance(raw, dict):
        raise ValidationError(f"{field} must be an object with a type", field=field)
    if "type" not in raw:
        raise ValidationError(f"{field}.type is required", field=f"{field}.type")
    rule_type = raw["type"]
    model = _MODELS.get(rule_type) if isinstance(rule_type, str) else None
    if model is None:
        raise ValidationError(
            f"{field}.type must be one of {', '.join(_MODELS)}; got {json.dumps(rule_type, default=str)[:60]}",
            field=f"{field}.type",
        )
    try:
        rule = model.model_validate(raw, context={"field_prefix": field})
    except pydantic.ValidationError as exc:
        raise _to_validation_error(exc, model, field, rule_type) from exc
    return typing.cast(Rule, rule)


def normalize_rules(rules: Sequence[Rule]) -> list[Rule]:
    """Filters and transforms in their given order, then deduplicate, delay and retry."""
    return sorted(rules, key=lambda rule: _RANK[rule.type])


def dump_rules(rules: Sequence[Rule]) -> list[dict[str, Any]]:
    """The JSON shape to store and to return: unset fields are left out, never null."""
    return [rule.model_dump(mode="json", exclude_none=True) for rule in rules]


def link_transformation(rule: TransformRule, transformation_id: str) -> TransformRule:
    """The rule as stored once its inline transformation has been upserted as `transformation_id`."""
    if not is_id(transformation_id, Prefix.TRANSFORMATION):
        raise ValueError(f"not a transformation id: {transformation_id!r}")
    return rule.model_copy(update={"transformation_id": transformation_id, "transformation": None})


_ITEM_KINDS: Final = {
    "string_type": "a string",
    "int_type": "a whole number",
    "bool_type": "true or false",
    "dict_type": "an object",
    "list_type": "a list",
}


def _to_validation_error(
    exc: pydantic.ValidationError, model: type[BaseModel], prefix: str, rule_type: str
) -> ValidationError:
    """Pydantic's first complaint, in plain words that name the field: `rules[1].window must be ...`."""
    error = exc.errors(include_url=False)[0]
    loc = tuple(error["loc"])
    field = field_path(loc, prefix) or prefix
    kind = error["type"]
    if kind == "missing":
        return ValidationError(f"{field} is required", field=field)
    if kind == "extra_forbidden":
        return ValidationError(f"{field} is not a known field of a {rule_type} rule", field=field)
    description, is_item = _describe(model, loc)
    if is_item and kind in _ITEM_KINDS:
        description = _ITEM_KINDS[kind]
    if description is None:
        description = _ITEM_KINDS.get(kind, "valid: " + str(error["msg"]).lower())
    return ValidationError(f"{field} must be {description}", field=field)


def _describe(model: type[BaseModel], loc: tuple[Any, ...]) -> tuple[str | None, bool]:
    """The description of the deepest model field in `loc`, and whether `loc` goes past it (an item)."""
    description = None
    current: type[BaseModel] | None = model
    for depth, part in enumerate(loc):
        info = current.model_fields.get(part) if current is not None and isinstance(part, str) else None
        if info is None:
            return description, depth > 0
        description = info.description
        current = _model_in(info.annotation)
    return description, False


def _model_in(annotation: object) -> type[BaseModel] | None:
    candidates = typing.get_args(annotation) if isinstance(annotation, types.UnionType) else (annotation,)
    for candidate in candidates:
        if typing.get_origin(candidate) is None and isinstance(candidate, type) and issubclass(candidate, BaseModel):
            return candidate
    return None


# ---- filters ------------------------------------------------------------------------------------


def match_rule_filter(rule: FilterRule, request_parts: Mapping[str, object]) -> bool:
    """Whether a request passes `rule`: every part the rule names must match.

    `request_parts` is `{"body", "headers", "query", "path"}`; a part that is absent is a missing
    field (only `$exist: false` or `$neq` can match it). Header names match whatever their case.
    """
    for part in REQUEST_PARTS:
        schema = getattr(rule, part)
        if schema is None:
            continue
        value = request_parts.get(part, MISSING)
        if part == "headers":
            value = _fold_headers(value)
            schema = fold_header_schema(schema)
        if not match_filter(schema, value):
            return False
    return True


def _fold_headers(headers: object) -> object:
    if isinstance(headers, Mapping):
        return {str(name).lower(): value for name, value in headers.items()}
    return headers


# ---- retry --------------------------------------------------------------------------------------

# Bounds for comparisons: an HTTP status has three digits.
_LOWEST_STATUS: Final = 0
_HIGHEST_STATUS: Final = 999
_STATUS_ENTRY_RE = re.compile(
    r"\s*(?P<neg>!?)\s*(?:(?P<low>\d{3})\s*-\s*(?P<high>\d{3})|(?P<cmp>>=|<=|>|<)?\s*(?P<code>\d{3}))\s*",
    re.ASCII,
)


@dataclass(frozen=True, slots=True)
class StatusCodeEntry:
    """One `response_status_codes` entry as an inclusive range, e.g. `">=500"` -> 500..999."""

    negated: bool
    low: int
    high: int

    def matches(self, status: int) -> bool:
        return self.low <= status <= self.high


@lru_cache(maxsize=1024)
def _parse_status_entry(entry: str) -> StatusCodeEntry | None:
    found = _STATUS_ENTRY_RE.fullmatch(entry)
    if found is None:
        return None
    negated = found["neg"] == "!"
    if found["code"] is None:
        low, high = int(found["low"]), int(found["high"])
        valid = 100 <= low <= high <= 599
        return StatusCodeEntry(negated, low, high) if valid else None
    code = int(found["code"])
    if not 100 <= code <= 599:
        return None
    low, high = {
        None: (code, code),
        ">=": (code, _HIGHEST_STATUS),
        ">": (code + 1, _HIGHEST_STATUS),
        "<=": (_LOWEST_STATUS, code),
        "<": (_LOWEST_STATUS, code - 1),
    }[found["cmp"]]
    return StatusCodeEntry(negated, low, high)


def parse_status_code_entry(entry: str) -> StatusCodeEntry:
    """Parse one entry (`"500"`, `"500-599"`, `">=400"`, `"!401"`); ValueError if it is none of those."""
    parsed = _parse_status_entry(entry)
    if parsed is None:
        raise ValueError(f"not a status code entry: {entry!r}")
    return parsed


def should_retry_status(status: int, codes: Sequence[str] | None) -> bool:
    """Whether a delivery answered with `status` is retried under `response_status_codes` = `codes`.

    Retried when it matches no negated entry and matches a positive one; with no positive entry, when
    it is not 2xx. No list (or an empty one): every non-2xx.
    """
    not_success = not 200 <= status <= 299
    # Entries were validated when the rule was saved; one that no longer parses is ignored rather
    # than failing a delivery over it.
    parsed = [_parse_status_entry(code) for code in codes or () if isinstance(code, str)]
    entries = [entry for entry in parsed if entry is not None]
    if any(entry.negated and entry.matches(status) for entry in entries):
        return False
    positives = [entry for entry in entries if not entry.negated]
    if positives:
        return any(entry.matches(status) for entry in positives)
    return not_success


def next_retry_delay_ms(rule: RetryRule, attempt_number: int) -> int:
    """The wait before retry number `attempt_number` (1 = first retry), at most 24 hours."""
    if attempt_number < 1:
        raise ValueError(f"attempt_number starts at 1, got {attempt_number}")
    if rule.strategy is RetryStrategy.LINEAR:
        return min(rule.interval, MAX_RETRY_DELAY_MS)
    # The cap is reached long before 2**27; bounding the exponent keeps the integer small.
    doublings = min(attempt_number - 1, 27)
    return min(rule.interval * 2**doublings, MAX_RETRY_DELAY_MS)


# ---- deduplicate --------------------------------------------------------------------------------


def _parse_request_path(text: object) -> tuple[PathSegment, ...] | None:
    path = parse_field_path(text)
    if path is None or path[0] not in REQUEST_PARTS:
        return None
    if path[0] == "headers" and len(path) > 1 and isinstance(path[1], str):
        path = ("headers", path[1].lower(), *path[2:])
    return path


def dedupe_key(rule: DeduplicateRule, request_parts: Mapping[str, object], raw_body: bytes) -> str:
    """The sha256 hex key under which the connection remembers this request for `rule.window`.

    With `include_fields`, the key covers just those fields' values; with `exclude_fields`, the whole
    request (body, headers, query, path) minus those fields; with neither, the raw body bytes.
    """
    parts = {part: request_parts[part] for part in REQUEST_PARTS if part in request_parts}
    if "headers" in parts:
        parts["headers"] = _fold_headers(parts["headers"])
    if rule.include_fields:
        selected = []
        for text in sorted(set(rule.include_fields)):
            path = _parse_request_path(text)
            value = MISSING if path is None else resolve_path(parts, path)
            if value is not MISSING:
                selected.append([text, value])
        if selected:
            return _hash_json({"include_fields": selected})
        # None of the fields is there: keying on "nothing" would drop every such request as a
        # duplicate of the first, so fall back to the body, which loses nothing unique.
    elif rule.exclude_fields:
        kept: object = parts
        for text in rule.exclude_fields:
            path = _parse_request_path(text)
            if path is not None:
                kept = _without(kept, path)
        return _hash_json({"exclude_fields": kept})
    return hashlib.sha256(raw_body).hexdigest()


def _without(value: object, path: tuple[PathSegment, ...]) -> object:
    """`value` minus the field at `path`; copies only along the path, the rest is shared."""
    head, rest = path[0], path[1:]
    if isinstance(value, Mapping) and isinstance(head, str):
        if head not in value:
            return value
        if not rest:
            return {key: item for key, item in value.items() if key != head}
        return {**value, head: _without(value[head], rest)}
    index = as_index(head)
    if isinstance(value, list) and index is not None and index < len(value):
        if not rest:
            return value[:index] + value[index + 1 :]
        copy = list(value)
        copy[index] = _without(value[index], rest)
        return copy
    return value


def _hash_json(value: object) -> str:
    text = json.dumps(value, sort_keys=True, separators=(",", ":"), default=_json_default)
    return hashlib.sha256(text.encode()).hexdigest()


def _json_default(value: object) -> object:
    if isinstance(value, (bytes, bytearray)):
        return {"$base64": base64.b64encode(value).decode()}
    raise TypeError(f"not JSON: {type(value).__name__}")
