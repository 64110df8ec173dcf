"""Connection rules: what a connection may be saved with, and what each rule decides for a webhook."""

from __future__ import annotations

import hashlib
from typing import Any

import pytest

from chalicelib.domain.errors import ValidationError
from chalicelib.domain.ids import Prefix, new_id
from chalicelib.domain.rules import (
    MAX_RETRY_DELAY_MS,
    MAX_RULES,
    DeduplicateRule,
    DelayRule,
    FilterRule,
    RetryRule,
    RetryStrategy,
    RuleType,
    TransformRule,
    dedupe_key,
    dump_rules,
    link_transformation,
    match_rule_filter,
    next_retry_delay_ms,
    normalize_rules,
    parse_rule,
    parse_rules,
    should_retry_status,
)

TRS_ID = new_id(Prefix.TRANSFORMATION)


def filter_rule(**parts: Any) -> dict[str, Any]:
    return {"type": "filter", **parts}


def transform_rule(**fields: Any) -> dict[str, Any]:
    return {"type": "transform", "transformation_id": TRS_ID, **fields}


def dedupe_rule(**fields: Any) -> dict[str, Any]:
    return {"type": "deduplicate", "window": 60_000, **fields}


def delay_rule(delay: Any = 5_000) -> dict[str, Any]:
    return {"type": "delay", "delay": delay}


def retry_rule(**fields: Any) -> dict[str, Any]:
    return {"type": "retry", "strategy": "linear", "count": 5, "interval": 60_000, **fields}


def rejection(raw: object) -> ValidationError:
    with pytest.raises(ValidationError) as caught:
        parse_rules(raw)
    return caught.value


def github_push(**overrides: Any) -> dict[str, Any]:
    parts: dict[str, Any] = {
        "body": {"ref": "refs/heads/main", "commits": [{"id": "c1"}], "pusher": {"name": "ada"}},
        "headers": {"X-GitHub-Event": "push", "X-GitHub-Delivery": "d-1", "Content-Type": "application/json"},
        "query": {"team": "core"},
        "path": "/github",
    }
    parts.update(overrides)
    return parts


# ---- parsing --------------------------------------------------------------------------------------


def test_a_full_rule_set_from_the_spec_is_accepted() -> None:
    # Given
    raw = [
        filter_rule(body={"ref": {"$startsWith": "refs/heads/"}}, headers={"x-github-event": "push"}),
        {"type": "transformation", "transformation": {"name": "strip", "code": "addHandler()", "env": {"A": "1"}}},
        dedupe_rule(include_fields=["body.id", "headers.x-github-delivery"]),
        delay_rule(0),
        retry_rule(strategy="exponential", count=50, response_status_codes=["500-599", "!501", ">=400", "<300"]),
    ]

    # When
    rules = parse_rules(raw)

    # Then
    assert [rule.type for rule in rules] == ["filter", "transform", "deduplicate", "delay", "retry"]


@pytest.mark.parametrize(
    ("raw", "field", "words"),
    [
        ([dedupe_rule(window=999)], "rules[0].window", "between 1000 and 3600000"),
        ([dedupe_rule(window=3_600_001)], "rules[0].window", "between 1000 and 3600000"),
        ([dedupe_rule(window=True)], "rules[0].window", "whole number"),
        ([dedupe_rule(window="60000")], "rules[0].window", "whole number"),
        ([dedupe_rule(window=1500.5)], "rules[0].window", "whole number"),
        ([{"type": "deduplicate"}], "rules[0].window", "is required"),
        ([dedupe_rule(include_fields=[])], "rules[0].include_fields", "non-empty list"),
        ([dedupe_rule(include_fields="body.id")], "rules[0].include_fields", "list"),
        ([dedupe_rule(include_fields=["body.id", "payload.id"])], "rules[0].include_fields[1]", "rooted at body"),
        ([dedupe_rule(exclude_fields=[7])], "rules[0].exclude_fields[0]", "must be a string"),
        (
            [dedupe_rule(include_fields=["body.id"], exclude_fields=["body.ts"])],
            "rules[0].exclude_fields",
            "cannot be combined with include_fields",
        ),
        ([delay_rule(), delay_rule(-1)], "rules[1].delay", "between 0 and 86400000"),
        ([delay_rule(86_400_001)], "rules[0].delay", "between 0 and 86400000"),
        ([delay_rule(False)], "rules[0].delay", "whole number"),
        ([retry_rule(strategy="fibonacci")], "rules[0].strategy", '"linear" or "exponential"'),
        ([retry_rule(count=51)], "rules[0].count", "between 0 and 50"),
        ([retry_rule(count=-1)], "rules[0].count", "between 0 and 50"),
        ([retry_rule(interval=999)], "rules[0].interval", "between 1000 and 86400000"),
        ([retry_rule(interval=86_400_001)], "rules[0].interval", "between 1000 and 86400000"),
        ([retry_rule(response_status_codes=["500", "5xx"])], "rules[0].response_status_codes[1]", "status code"),
        ([retry_rule(response_status_codes=["600"])], "rules[0].response_status_codes[0]", "status code"),
        ([retry_rule(response_status_codes=["599-500"])], "rules[0].response_status_codes[0]", "status code"),
        ([retry_rule(response_status_codes=["=>400"])], "rules[0].response_status_codes[0]", "status code"),
        ([retry_rule(response_status_codes=[500])], "rules[0].response_status_codes[0]", "must be a string"),
        ([retry_rule(response_status_codes="500")], "rules[0].response_status_codes", "list"),
        ([{"type": "retry", "strategy": "linear", "count": 1}], "rules[0].interval", "is required"),
        ([{"type": "transform"}], "rules[0].transformation_id", "is required unless an inline transformation"),
        ([transform_rule(transformation_id="src_01J0000000000000000000000")], "rules[0].transformation_id", "trs_"),
        (
            [transform_rule(transformation={"name": "x", "code": "y"})],
            "rules[0].transformation",
            "cannot be given together with transformation_id",
        ),
        (
            [{"type": "transform", "transformation": {"name": "", "code": "y"}}],
            "rules[0].transformation.name",
            "1 to 155 characters",
        ),
        (
            [{"type": "transform", "transformation": {"name": "n" * 156, "code": "y"}}],
            "rules[0].transformation.name",
            "1 to 155 characters",
        ),
        (
            [{"type": "transform", "transformation": {"name": "n", "code": "  "}}],
            "rules[0].transformation.code",
            "non-empty string",
        ),
        ([{"type": "transform", "transformation": {"name": "n"}}], "rules[0].transformation.code", "is required"),
        (
            [{"type": "transform", "transformation": {"name": "n", "code": "c", "env": {"TOKEN": 1}}}],
            "rules[0].transformation.env.TOKEN",
            "must be a string",
        ),
        (
            [{"type": "transform", "transformation": {"name": "n", "code": "c", "lang": "js"}}],
            "rules[0].transformation.lang",
            "not a known field",
        ),
        ([{"type": "transform", "transformation": "code"}], "rules[0].transformation", "an object"),
        ([filter_rule()], "rules[0]", "at least one of body, headers, query or path"),
        ([filter_rule(body={"type": {"$like": "x"}})], "rules[0].body.type.$like", "not a filter operator"),
        ([delay_rule(), filter_rule(query={"a": {"$in": 1}})], "rules[1].query.a.$in", "list"),
        ([delay_rule(), {"type": "delay", "delay": 1, "unit": "s"}], "rules[1].unit", "not a known field"),
        ([{"type": "pause"}], "rules[0].type", "must be one of"),
        ([{"type": 3}], "rules[0].type", "must be one of"),
        ([{"delay": 5}], "rules[0].type", "is required"),
        (["delay"], "rules[0]", "must be an object"),
        ([delay_rule(), delay_rule()], "rules[1]", "at most one"),
        ([dedupe_rule(), retry_rule(), dedupe_rule()], "rules[2]", "at most one"),
        ([retry_rule(), retry_rule()], "rules[1]", "at most one"),
        ({"type": "delay"}, "rules", "must be a list"),
        (None, "rules", "must be a list"),
        ([filter_rule(path="/a")] * (MAX_RULES + 1), "rules", f"at most {MAX_RULES}"),
    ],
)
def test_an_invalid_rule_is_rejected_naming_the_field(raw: object, field: str, words: str) -> None:
    # Given rules with one mistake

    # When
    error = rejection(raw)

    # Then
    assert error.field == field
    assert error.message.startswith(field)
    assert words in error.message
    assert error.status_code == 422


def test_delay_above_a_day_is_rejected_naming_the_field() -> None:
    # Given
    raw = [delay_rule(86_400_001)]

    # When
    error = rejection(raw)

    # Then
    assert error.body() == {
        "error": "validation_error",
        "message": "rules[0].delay must be a whole number of ms between 0 and 86400000 (24 hours)",
        "field": "rules[0].delay",
    }


@pytest.mark.parametrize(
    "raw",
    [
        dedupe_rule(window=1_000),
        dedupe_rule(window=3_600_000, exclude_fields=["headers.Date", "body.sent_at", "body.items[0].ts"]),
        delay_rule(0),
        delay_rule(86_400_000),
        retry_rule(count=0, interval=1_000),
        retry_rule(count=50, interval=86_400_000, response_status_codes=[]),
    ],
)
def test_values_at_the_bounds_are_accepted(raw: dict[str, Any]) -> None:
    # Given a rule at the edge of its bounds

    # When
    rules = parse_rules([raw])

    # Then
    assert dump_rules(rules) == [raw]


def test_the_transformation_alias_is_accepted_and_stored_as_transform() -> None:
    # Given
    raw = [{"type": "transformation", "transformation_id": TRS_ID}]

    # When
    rules = parse_rules(raw)

    # Then
    assert isinstance(rules[0], TransformRule)
    assert dump_rules(rules) == [{"type": "transform", "transformation_id": TRS_ID}]


def test_rules_are_normalised_with_filters_and_transforms_in_given_order_first() -> None:
    # Given
    raw = [
        retry_rule(),
        filter_rule(path="/a"),
        delay_rule(),
        transform_rule(),
        dedupe_rule(),
        filter_rule(path="/b"),
    ]

    # When
    rules = parse_rules(raw)

    # Then
    assert [(rule.type, getattr(rule, "path", None)) for rule in rules] == [
        (RuleType.FILTER, "/a"),
        (RuleType.TRANSFORM, None),
        (RuleType.FILTER, "/b"),
        (RuleType.DEDUPLICATE, None),
        (RuleType.DELAY, None),
        (RuleType.RETRY, None),
    ]


def test_normalising_already_normalised_rules_changes_nothing() -> None:
    # Given
    rules = parse_rules([delay_rule(), filter_rule(path="/a"), retry_rule()])

    # When
    again = normalize_rules(rules)

    # Then
    assert again == rules


def test_dumped_rules_leave_out_unset_fields_but_keep_null_in_filters() -> None:
    # Given
    raw = [filter_rule(body={"deleted_at": None}), retry_rule(strategy="exponential")]

    # When
    dumped = dump_rules(parse_rules(raw))

    # Then
    assert dumped == [
        {"type": "filter", "body": {"deleted_at": None}},
        {"type": "retry", "strategy": "exponential", "count": 5, "interval": 60_000},
    ]


def test_dumped_rules_parse_back_to_the_same_rules() -> None:
    # Given
    rules = parse_rules(
        [
            filter_rule(headers={"X-Event": {"$in": ["push", "ping"]}}),
            {"type": "transformation", "transformation": {"name": "n", "code": "c"}},
            dedupe_rule(exclude_fields=["headers.date"]),
            retry_rule(response_status_codes=[">=500"]),
        ]
    )

    # When
    again = parse_rules(dump_rules(rules))

    # Then
    assert again == rules


def test_an_inline_transformation_can_be_linked_to_its_stored_id() -> None:
    # Given
    rule = parse_rule({"type": "transform", "transformation": {"name": "n", "code": "c"}}, field="rules[0]")
    assert isinstance(rule, TransformRule)

    # When
    linked = link_transformation(rule, TRS_ID)

    # Then
    assert dump_rules([linked]) == [{"type": "transform", "transformation_id": TRS_ID}]


# ---- filters --------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("parts", "expected"),
    [
        ({"headers": {"x-github-event": "push"}}, True),
        ({"headers": {"X-GITHUB-EVENT": "push"}}, True),
        ({"headers": {"x-github-event": "Push"}}, False),
        ({"headers": {"X-GitHub-Event": {"$in": ["push", "ping"]}}}, True),
        ({"headers": {"x-github-delivery": {"$ref": "X-GitHub-Delivery"}}}, True),
        ({"headers": {"x-missing": {"$exist": False}}}, True),
        ({"body": {"pusher": {"name": "ada"}}, "path": "/github"}, True),
        ({"body": {"pusher": {"name": "ada"}}, "path": "/gitlab"}, False),
        ({"query": {"team": {"$in": ["core", "infra"]}}}, True),
        ({"query": {"team": "web"}}, False),
        ({"body": {"commits": {"id": "c1"}}}, True),
    ],
)
def test_a_filter_rule_checks_every_part_it_names(parts: dict[str, Any], expected: bool) -> None:
    # Given
    rule = parse_rule(filter_rule(**parts))
    assert isinstance(rule, FilterRule)

    # When
    matched = match_rule_filter(rule, github_push())

    # Then
    assert matched is expected


def test_a_filter_on_a_part_the_request_lacks_only_passes_an_absence_check() -> None:
    # Given
    present = parse_rule(filter_rule(query={"team": "core"}))
    absent = parse_rule(filter_rule(query={"$exist": False}))
    request = github_push()
    del request["query"]
    assert isinstance(present, FilterRule) and isinstance(absent, FilterRule)

    # When
    matched_present, matched_absent = match_rule_filter(present, request), match_rule_filter(absent, request)

    # Then
    assert (matched_present, matched_absent) == (False, True)


# ---- retry ----------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("codes", "status", "retried"),
    [
        (None, 200, False),
        (None, 204, False),
        (None, 301, True),
        (None, 404, True),
        (None, 500, True),
        ([], 299, False),
        ([], 503, True),
        (["500"], 500, True),
        (["500"], 501, False),
        (["500-599"], 599, True),
        (["500-599"], 499, False),
        ([">=400"], 400, True),
        ([">=400"], 399, False),
        ([">500"], 500, False),
        ([">500"], 501, True),
        (["<=499"], 499, True),
        (["<=499"], 500, False),
        (["<500"], 499, True),
        (["<500"], 500, False),
        ([">=200"], 200, True),
        (["500-599", "!501"], 501, False),
        (["500-599", "!501"], 502, True),
        (["500-599", "!501"], 404, False),
        ([">=400", "!401", "!403"], 401, False),
        ([">=400", "!401", "!403"], 429, True),
        (["!401"], 401, False),
        (["!401"], 500, True),
        (["!401"], 200, False),
        (["!500-599"], 503, False),
        (["!500-599"], 404, True),
        (["!>=500"], 502, False),
        (["!<400"], 302, False),
        (["!<400"], 400, True),
        ([" 500 - 599 "], 550, True),
    ],
)
def test_response_status_codes_decide_which_responses_are_retried(
    codes: list[str] | None, status: int, retried: bool
) -> None:
    # Given a retry rule saved with these codes
    rule = parse_rule(retry_rule(response_status_codes=codes) if codes is not None else retry_rule())
    assert isinstance(rule, RetryRule)

    # When
    decision = should_retry_status(status, rule.response_status_codes)

    # Then
    assert decision is retried


@pytest.mark.parametrize(
    ("strategy", "interval", "attempt", "delay_ms"),
    [
        ("linear", 60_000, 1, 60_000),
        ("linear", 60_000, 7, 60_000),
        ("exponential", 60_000, 1, 60_000),
        ("exponential", 60_000, 2, 120_000),
        ("exponential", 60_000, 4, 480_000),
        ("exponential", 3_600_000, 5, 57_600_000),
        ("exponential", 3_600_000, 6, MAX_RETRY_DELAY_MS),
        ("exponential", 1_000, 50, MAX_RETRY_DELAY_MS),
        ("linear", 86_400_000, 3, MAX_RETRY_DELAY_MS),
    ],
)
def test_the_wait_before_each_retry_follows_the_strategy_up_to_a_day(
    strategy: str, interval: int, attempt: int, delay_ms: int
) -> None:
    # Given
    rule = RetryRule.model_validate(retry_rule(strategy=strategy, interval=interval))
    assert rule.strategy is RetryStrategy(strategy)

    # When
    wait = next_retry_delay_ms(rule, attempt)

    # Then
    assert wait == delay_ms


# ---- deduplicate ----------------------------------------------------------------------------------


def dedupe(rule: dict[str, Any], parts: dict[str, Any], raw_body: bytes = b"{}") -> str:
    parsed = parse_rule(rule)
    assert isinstance(parsed, DeduplicateRule)
    return dedupe_key(parsed, parts, raw_body)


def test_without_fields_the_key_is_the_hash_of_the_raw_body() -> None:
    # Given
    raw_body = b'{"ref":"refs/heads/main"}'

    # When
    key = dedupe(dedupe_rule(), github_push(), raw_body)

    # Then
    assert key == hashlib.sha256(raw_body).hexdigest()
    assert key != dedupe(dedupe_rule(), github_push(), raw_body + b" ")


def test_with_include_fields_requests_agreeing_on_those_fields_share_a_key() -> None:
    # Given
    rule = dedupe_rule(include_fields=["headers.X-GitHub-Delivery", "body.pusher.name"])
    first = github_push()
    retry_of_first = github_push(
        body={"ref": "refs/heads/other", "pusher": {"name": "ada"}},
        headers={"x-github-delivery": "d-1", "Date": "later"},
    )
    other_delivery = github_push(headers={"X-GitHub-Delivery": "d-2"})

    # When
    keys = [
        dedupe(rule, parts, raw_body=str(i).encode()) for i, parts in enumerate([first, retry_of_first, other_delivery])
    ]

    # Then
    assert keys[0] == keys[1]
    assert keys[0] != keys[2]
    assert len(keys[0]) == 64


def test_include_fields_tell_a_null_value_from_a_missing_one() -> None:
    # Given
    rule = dedupe_rule(include_fields=["body.id", "body.kind"])
    with_null = github_push(body={"id": None, "kind": "a"})
    without = github_push(body={"kind": "a"})

    # When
    keys = dedupe(rule, with_null), dedupe(rule, without)

    # Then
    assert keys[0] != keys[1]


def test_include_fields_absent_from_every_request_fall_back_to_the_raw_body() -> None:
    # Given
    rule = dedupe_rule(include_fields=["body.id"])

    # When
    first, second = dedupe(rule, github_push(), b"one"), dedupe(rule, github_push(), b"two")

    # Then
    assert first == hashlib.sha256(b"one").hexdigest()
    assert first != second


def test_with_exclude_fields_requests_differing_only_in_those_fields_share_a_key() -> None:
    # Given
    rule = dedupe_rule(exclude_fields=["headers.date", "body.commits[0].timestamp"])
    first = github_push(
        headers={"Date": "Mon", "X-GitHub-Delivery": "d-1"},
        body={"commits": [{"id": "c1", "timestamp": 1}]},
    )
    resent = github_push(
        headers={"DATE": "Tue", "x-github-delivery": "d-1"},
        body={"commits": [{"id": "c1", "timestamp": 2}]},
    )
    changed = github_push(
        headers={"Date": "Mon", "X-GitHub-Delivery": "d-1"},
        body={"commits": [{"id": "c2", "timestamp": 1}]},
    )

    # When
    keys = [dedupe(rule, parts, raw_body=str(i).encode()) for i, parts in enumerate([first, resent, changed])]

    # Then
    assert keys[0] == keys[1]
    assert keys[0] != keys[2]


def test_exclude_fields_leave_the_request_parts_untouched() -> None:
    # Given
    rule = dedupe_rule(exclude_fields=["body.pusher.name", "query.team"])
    parts = github_push()
    before = repr(parts)

    # When
    dedupe(rule, parts)

    # Then
    assert repr(parts) == before


def test_the_key_does_not_depend_on_the_order_of_object_keys() -> None:
    # Given
    rule = dedupe_rule(exclude_fields=["headers.date"])
    one = github_push(body={"a": 1, "b": 2})
    two = github_push(body={"b": 2, "a": 1})

    # When
    keys = dedupe(rule, one), dedupe(rule, two)

    # Then
    assert keys[0] == keys[1]


def test_rules_built_directly_are_the_same_types_parse_returns() -> None:
    # Given
    raw = delay_rule(1_000)

    # When
    direct = DelayRule.model_validate(raw)

    # Then
    assert parse_rules([raw]) == [direct]
