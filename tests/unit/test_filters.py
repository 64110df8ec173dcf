"""The filter language: what a user may save, and which requests each schema lets through."""

from __future__ import annotations

from typing import Any

import pytest

from chalicelib.domain.errors import ValidationError
from chalicelib.domain.filters import (
    MAX_SCHEMA_DEPTH,
    MAX_SCHEMA_NODES,
    MISSING,
    match_filter,
    parse_field_path,
    validate_filter_schema,
)

ORDER: dict[str, Any] = {
    "type": "order/created",
    "total": 120.5,
    "currency": "EUR",
    "paid": True,
    "coupon": None,
    "created_at": "2026-04-17T10:00:00.000Z",
    "updated_at": "2026-04-17T10:00:00.000Z",
    "limit": 100,
    "tags": ["gift", "express", "fragile"],
    "customer": {"email": "ada@example.com", "vip": False},
    "items": [
        {"sku": "A-1", "qty": 2, "price": 10},
        {"sku": "B-2", "qty": 1, "price": 100},
    ],
}


def nested(depth: int) -> dict[str, Any]:
    schema: dict[str, Any] = {"leaf": 1}
    for _ in range(depth - 1):
        schema = {"a": schema}
    return schema


def validation_error(schema: object, *, field: str = "rules[0].body") -> ValidationError:
    with pytest.raises(ValidationError) as caught:
        validate_filter_schema(schema, field=field)
    return caught.value


# ---- what may be saved ---------------------------------------------------------------------------


def test_a_schema_using_every_operator_is_accepted_and_matches() -> None:
    # Given
    schema = {
        "type": {"$eq": "order/created"},
        "currency": {"$neq": "USD"},
        "total": {"$gt": 100, "$gte": 100, "$lt": 200, "$lte": 120.5},
        "limit": {"$lt": {"$ref": "total"}},
        "customer": {"email": {"$startsWith": "ada", "$endsWith": ".com"}},
        "tags": {"$in": ["gift"], "$nin": ["spam"]},
        "coupon": {"$exist": True},
        "$or": [{"paid": True}, {"$and": [{"limit": 1}, {"$not": {"limit": 2}}]}],
        "updated_at": {"$ref": "created_at"},
    }

    # When
    validate_filter_schema(schema, field="rules[0].body")

    # Then
    assert match_filter(schema, ORDER) is True


def test_an_unknown_operator_is_rejected_naming_its_path() -> None:
    # Given
    schema = {"customer": {"email": {"$regex": ".*"}}}

    # When
    error = validation_error(schema)

    # Then
    assert error.field == "rules[0].body.customer.email.$regex"
    assert "rules[0].body.customer.email.$regex is not a filter operator" in error.message


@pytest.mark.parametrize(
    ("schema", "field"),
    [
        ({"tags": {"$in": "gift"}}, "rules[0].body.tags.$in"),
        ({"tags": {"$nin": 3}}, "rules[0].body.tags.$nin"),
        ({"coupon": {"$exist": "yes"}}, "rules[0].body.coupon.$exist"),
        ({"coupon": {"$exist": 1}}, "rules[0].body.coupon.$exist"),
        ({"$or": []}, "rules[0].body.$or"),
        ({"$and": {"paid": True}}, "rules[0].body.$and"),
        ({"total": {"$gt": True}}, "rules[0].body.total.$gt"),
        ({"total": {"$lte": [1]}}, "rules[0].body.total.$lte"),
        ({"type": {"$startsWith": 1}}, "rules[0].body.type.$startsWith"),
        ({"type": {"$endsWith": None}}, "rules[0].body.type.$endsWith"),
        ({"updated_at": {"$ref": ""}}, "rules[0].body.updated_at.$ref"),
        ({"updated_at": {"$ref": 5}}, "rules[0].body.updated_at.$ref"),
        ({"updated_at": {"$ref": "items[x]"}}, "rules[0].body.updated_at.$ref"),
        ({"total": {"$lt": {"$ref": "limit", "extra": 1}}}, "rules[0].body.total.$lt"),
        ({"total": {"$eq": {"$gt": 1}}}, "rules[0].body.total.$eq.$gt"),
        ({"$or": [{"total": {"$bogus": 1}}]}, "rules[0].body.$or[0].total.$bogus"),
        ({"items": [{"sku": {"$like": "A"}}]}, "rules[0].body.items[0].sku.$like"),
        ({"total": float("nan")}, "rules[0].body.total"),
    ],
)
def test_a_badly_typed_operand_is_rejected_naming_its_path(schema: dict[str, Any], field: str) -> None:
    # Given a schema with one bad operand

    # When
    error = validation_error(schema)

    # Then
    assert error.field == field
    assert error.message.startswith(field)


def test_a_schema_nested_to_the_limit_is_accepted() -> None:
    # Given
    schema = nested(MAX_SCHEMA_DEPTH)

    # When
    validate_filter_schema(schema, field="rules[0].body")

    # Then
    assert match_filter(schema, nested(MAX_SCHEMA_DEPTH)) is True


def test_a_schema_nested_past_the_limit_is_rejected() -> None:
    # Given
    schema = nested(MAX_SCHEMA_DEPTH + 1)

    # When
    error = validation_error(schema)

    # Then
    assert error.field == "rules[0].body"
    assert error.message == f"rules[0].body is nested more than {MAX_SCHEMA_DEPTH} levels deep"


def test_a_deep_stack_of_not_operators_counts_towards_the_depth_limit() -> None:
    # Given
    schema: object = "x"
    for _ in range(MAX_SCHEMA_DEPTH + 1):
        schema = {"$not": schema}

    # When
    error = validation_error(schema)

    # Then
    assert "nested more than" in error.message


def test_a_schema_with_too_many_values_is_rejected() -> None:
    # Given
    schema = {"tags": {"$in": list(range(MAX_SCHEMA_NODES))}}

    # When
    error = validation_error(schema)

    # Then
    assert error.field == "rules[0].body"
    assert f"more than {MAX_SCHEMA_NODES} values" in error.message


def test_header_names_that_differ_only_in_case_are_rejected() -> None:
    # Given
    schema = {"X-Event": "push", "x-event": "ping"}

    # When
    with pytest.raises(ValidationError) as caught:
        validate_filter_schema(schema, field="rules[0].headers", case_insensitive_keys=True)

    # Then
    assert caught.value.field == "rules[0].headers.x-event"


@pytest.mark.parametrize(
    ("text", "path"),
    [
        ("type", ("type",)),
        ("customer.email", ("customer", "email")),
        ("items[1].sku", ("items", 1, "sku")),
        ("[0].id", (0, "id")),
        ("matrix[1][2]", ("matrix", 1, 2)),
        ("headers.x-github-delivery", ("headers", "x-github-delivery")),
    ],
)
def test_field_paths_read_dots_and_indexes(text: str, path: tuple[object, ...]) -> None:
    # Given a dotted path

    # When
    parsed = parse_field_path(text)

    # Then
    assert parsed == path


@pytest.mark.parametrize("text", ["", ".", "a..b", "a.", "items[", "items[-1]", "a]b", 5, "x" * 600])
def test_malformed_field_paths_are_refused(text: object) -> None:
    # Given a malformed path

    # When
    parsed = parse_field_path(text)

    # Then
    assert parsed is None


# ---- what matches --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("schema", "expected"),
    [
        ({"type": "order/created"}, True),
        ({"type": "order/deleted"}, False),
        ({"customer": {"vip": False}}, True),
        ({"customer": {"vip": True}}, False),
        ({"coupon": None}, True),
        ({"paid": 1}, False),
        ({"total": 120.5, "currency": "EUR"}, True),
        ({"total": 120.5, "currency": "USD"}, False),
        ({"missing": "x"}, False),
        ({"customer": {}}, True),
        ({"missing": {}}, False),
    ],
)
def test_plain_objects_match_key_by_key(schema: dict[str, Any], expected: bool) -> None:
    # Given the order document

    # When
    matched = match_filter(schema, ORDER)

    # Then
    assert matched is expected


@pytest.mark.parametrize(
    ("schema", "expected"),
    [
        ({"type": {"$eq": "order/created"}}, True),
        ({"type": {"$eq": "order/updated"}}, False),
        ({"customer": {"$eq": {"email": "ada@example.com", "vip": False}}}, True),
        ({"customer": {"$eq": {"email": "ada@example.com"}}}, False),
        ({"currency": {"$neq": "USD"}}, True),
        ({"currency": {"$neq": "EUR"}}, False),
        ({"total": {"$gt": 120}}, True),
        ({"total": {"$gt": 120.5}}, False),
        ({"total": {"$gte": 120.5}}, True),
        ({"total": {"$gte": 121}}, False),
        ({"total": {"$lt": 121}}, True),
        ({"total": {"$lt": 120.5}}, False),
        ({"total": {"$lte": 120.5}}, True),
        ({"total": {"$lte": 120}}, False),
        ({"created_at": {"$gte": "2026-04-01"}}, True),
        ({"created_at": {"$lt": "2026-04-01"}}, False),
        ({"total": {"$gt": "100"}}, False),
        ({"currency": {"$in": ["EUR", "GBP"]}}, True),
        ({"currency": {"$in": ["USD", "GBP"]}}, False),
        ({"currency": {"$nin": ["USD", "GBP"]}}, True),
        ({"currency": {"$nin": ["EUR"]}}, False),
        ({"customer": {"email": {"$startsWith": "ada@"}}}, True),
        ({"customer": {"email": {"$startsWith": "bob@"}}}, False),
        ({"customer": {"email": {"$endsWith": "@example.com"}}}, True),
        ({"customer": {"email": {"$endsWith": ".org"}}}, False),
        ({"total": {"$startsWith": "12"}}, False),
        ({"coupon": {"$exist": True}}, True),
        ({"coupon": {"$exist": False}}, False),
        ({"discount": {"$exist": False}}, True),
        ({"discount": {"$exist": True}}, False),
        ({"$or": [{"currency": "USD"}, {"paid": True}]}, True),
        ({"$or": [{"currency": "USD"}, {"paid": False}]}, False),
        ({"$and": [{"currency": "EUR"}, {"paid": True}]}, True),
        ({"$and": [{"currency": "EUR"}, {"paid": False}]}, False),
        ({"$not": {"currency": "USD"}}, True),
        ({"$not": {"currency": "EUR"}}, False),
        ({"total": {"$gt": 100, "$lt": 200}}, True),
        ({"total": {"$gt": 100, "$lt": 110}}, False),
    ],
)
def test_each_operator_matches_and_fails_as_documented(schema: dict[str, Any], expected: bool) -> None:
    # Given the order document

    # When
    matched = match_filter(schema, ORDER)

    # Then
    assert matched is expected


@pytest.mark.parametrize(
    ("schema", "expected"),
    [
        ({"tags": "gift"}, True),
        ({"tags": "spam"}, False),
        ({"tags": ["gift", "fragile"]}, True),
        ({"tags": ["gift", "spam"]}, False),
        ({"tags": []}, True),
        ({"type": ["order/created"]}, False),
        ({"tags": {"$startsWith": "exp"}}, True),
        ({"tags": {"$in": ["spam", "express"]}}, True),
        ({"tags": {"$nin": ["spam", "junk"]}}, True),
        ({"tags": {"$nin": ["spam", "gift"]}}, False),
        ({"tags": {"$neq": "spam"}}, True),
        ({"tags": {"$neq": "gift"}}, False),
        ({"tags": {"$eq": ["gift", "express", "fragile"]}}, True),
        ({"items": {"sku": "B-2"}}, True),
        ({"items": {"sku": "C-3"}}, False),
        ({"items": {"sku": "A-1", "qty": 2}}, True),
        ({"items": {"sku": "A-1", "qty": 1}}, False),
        ({"items": {"price": {"$gte": 100}}}, True),
        ({"items": [{"sku": "A-1"}, {"sku": "B-2"}]}, True),
        ({"items": [{"sku": "A-1"}, {"sku": "C-3"}]}, False),
    ],
)
def test_arrays_match_by_containment(schema: dict[str, Any], expected: bool) -> None:
    # Given the order document with tags and line items

    # When
    matched = match_filter(schema, ORDER)

    # Then
    assert matched is expected


@pytest.mark.parametrize(
    ("schema", "expected"),
    [
        ({"updated_at": {"$ref": "created_at"}}, True),
        ({"currency": {"$ref": "type"}}, False),
        ({"total": {"$lte": {"$ref": "items[1].price"}}}, False),
        ({"total": {"$gte": {"$ref": "items[1].price"}}}, True),
        ({"total": {"$gt": {"$ref": "items.0.price"}}}, True),
        ({"tags": {"$ref": "tags"}}, True),
        ({"currency": {"$ref": "nowhere"}}, False),
        ({"currency": {"$neq": {"$ref": "nowhere"}}}, False),
        ({"items": {"price": {"$ref": "limit"}}}, True),
        ({"items": {"qty": {"$in": {"$ref": "tags"}}}}, False),
    ],
)
def test_ref_compares_with_another_field_of_the_same_document(schema: dict[str, Any], expected: bool) -> None:
    # Given the order document

    # When
    matched = match_filter(schema, ORDER)

    # Then
    assert matched is expected


@pytest.mark.parametrize(
    ("schema", "expected"),
    [
        ({"discount": {"$neq": 5}}, True),
        ({"discount": {"$exist": False}}, True),
        ({"discount": {"$eq": None}}, False),
        ({"discount": {"$nin": [5]}}, False),
        ({"discount": {"$lt": 5}}, False),
        ({"discount": {"$startsWith": ""}}, False),
        ({"discount": {"$in": [None]}}, False),
        ({"discount": None}, False),
        ({"discount": {"$or": [{"$exist": False}, {"$gt": 0}]}}, True),
        ({"discount": {"$not": {"$exist": True}}}, True),
    ],
)
def test_a_missing_field_fails_every_operator_but_exist_false_and_neq(schema: dict[str, Any], expected: bool) -> None:
    # Given an order without a discount

    # When
    matched = match_filter(schema, ORDER)

    # Then
    assert matched is expected


@pytest.mark.parametrize(
    ("schema", "value", "expected"),
    [
        (False, False, True),
        (False, 0, False),
        (1, 1.0, True),
        (1, True, False),
        ({"$startsWith": "/hooks/"}, "/hooks/github", True),
        ({"$startsWith": "/hooks/"}, "/other", False),
        ({"$exist": False}, MISSING, True),
        ({"id": 1}, "not an object", False),
        ({"id": 1}, None, False),
        ({}, {"anything": 1}, True),
    ],
)
def test_a_schema_can_target_a_whole_non_object_value(schema: object, value: object, expected: bool) -> None:
    # Given a path, a scalar body or no value at all

    # When
    matched = match_filter(schema, value)

    # Then
    assert matched is expected


def test_references_between_very_deep_fields_compare_without_overflowing() -> None:
    # Given a body nested far deeper than Python's recursion limit, in two equal copies and one that differs
    def deep(leaf: int) -> object:
        value: object = leaf
        for _ in range(5000):
            value = [value]
        return value

    body = {"a": deep(1), "b": deep(1), "c": deep(2)}

    # When
    same = match_filter({"a": {"$ref": "b"}}, body)
    different = match_filter({"a": {"$ref": "c"}}, body)

    # Then
    assert same is True
    assert different is False
