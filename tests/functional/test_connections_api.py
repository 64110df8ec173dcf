"""Connections through the HTTP API: links, inline upserts, rules, upsert, update, pause, enable, cascades, list.

Tests that change state get a fresh FastHook each (`api`); tables of rejected or accepted bodies
share one per class (`world`: a source and a destination ready to link).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import pytest

from tests.support.factories import (
    make_connection,
    make_destination,
    make_source,
    make_transformation,
    running_fasthook,
    unique_name,
)

URL = "https://receiver.example.test/in"
UNKNOWN_CONNECTION = "web_01HZZZZZZZZZZZZZZZZZZZZZZZ"
UNKNOWN_SOURCE = "src_01HZZZZZZZZZZZZZZZZZZZZZZZ"
UNKNOWN_DESTINATION = "des_01HZZZZZZZZZZZZZZZZZZZZZZZ"
UNKNOWN_TRANSFORMATION = "trs_01HZZZZZZZZZZZZZZZZZZZZZZZ"
CODE = "addHandler('transform', (request, context) => request);"
RETRY = {
    "type": "retry",
    "strategy": "exponential",
    "count": 5,
    "interval": 60000,
    "response_status_codes": ["500-599", "!501", ">=400"],
}


@dataclass
class World:
    api: Any
    source: dict[str, Any]
    destination: dict[str, Any]

    def body(self, **fields: Any) -> dict[str, Any]:
        return {
            "name": unique_name("conn"),
            "source_id": self.source["id"],
            "destination_id": self.destination["id"],
            **fields,
        }


@pytest.fixture(scope="class")
def world():
    with running_fasthook() as (client, _clock):
        yield World(client, make_source(client, "world-src"), make_destination(client, "world-dest", url=URL))


def assert_error(status: int, body: dict, expected_status: int, error: str) -> None:
    assert status == expected_status, body
    assert body["error"] == error
    assert isinstance(body["message"], str) and body["message"]


def ids(body: dict) -> set[str]:
    return {m["id"] for m in body["models"]}


# ---- create ------------------------------------------------------------------------------------


def test_a_connection_links_a_source_and_a_destination_by_id(api):
    # Given
    source = make_source(api, "shop")
    destination = make_destination(api, "warehouse", url=URL)
    # When
    status, body = api.post(
        "/connections",
        {
            "name": "orders",
            "description": "shop orders",
            "source_id": source["id"],
            "destination_id": destination["id"],
        },
    )
    # Then
    assert status == 201, body
    assert body["id"].startswith("web_")
    assert body["name"] == "orders" and body["description"] == "shop orders"
    assert body["full_name"] == "shop -> warehouse"
    assert body["source"] == api.get(f"/sources/{source['id']}")[1]
    assert body["destination"] == api.get(f"/destinations/{destination['id']}")[1]
    assert body["rules"] == []
    assert body["disabled_at"] is None and body["paused_at"] is None
    assert body["created_at"].endswith("Z") and body["created_at"] == body["updated_at"]
    assert api.get(f"/connections/{body['id']}") == (200, body)


def test_source_and_destination_objects_with_an_id_link_existing_ones(api):
    # Given
    source = make_source(api)
    destination = make_destination(api)
    # When
    status, body = api.post(
        "/connections", {"name": "by-object", "source": {"id": source["id"]}, "destination": {"id": destination["id"]}}
    )
    # Then
    assert status == 201, body
    assert body["source"]["id"] == source["id"]
    assert body["destination"]["id"] == destination["id"]


def test_inline_source_and_destination_are_created_and_reused_by_name(api):
    # Given
    inline_source = {"name": "github", "config": {"allowed_http_methods": ["POST"]}}
    inline_destination = {"name": "ci", "config": {"url": URL}}
    # When
    first_status, first = api.post(
        "/connections", {"name": "pushes", "source": inline_source, "destination": inline_destination}
    )
    second_status, second = api.post(
        "/connections",
        {
            "name": "pulls",
            "source": inline_source,
            "destination": {"name": "review", "type": "MOCK_API", "config": {"path": "/review"}},
        },
    )
    # Then
    assert (first_status, second_status) == (201, 201), (first, second)
    assert first["source"]["id"].startswith("src_")
    assert first["source"]["config"]["allowed_http_methods"] == ["POST"]
    assert first["destination"]["config"]["url"] == URL
    assert second["source"]["id"] == first["source"]["id"]
    assert second["destination"]["id"] != first["destination"]["id"]
    assert second["full_name"] == "github -> review"
    assert [s["id"] for s in api.get("/sources")[1]["models"]] == [first["source"]["id"]]
    assert len(api.get("/destinations")[1]["models"]) == 2


def test_a_connection_on_a_disabled_source_starts_disabled(api):
    # Given
    source = make_source(api)
    api.put(f"/sources/{source['id']}/disable")
    # When
    connection = make_connection(api, source=source)
    # Then
    assert connection["disabled_at"] is not None


class TestRejectedConnections:
    @pytest.mark.parametrize(
        ("change", "field"),
        [
            ({"source_id": None}, "source_id"),
            ({"destination_id": None}, "destination_id"),
            ({"source_id": UNKNOWN_SOURCE}, "source_id"),
            ({"source_id": "src_nope"}, "source_id"),
            ({"source_id": UNKNOWN_DESTINATION}, "source_id"),
            ({"source_id": None, "source": {"id": UNKNOWN_SOURCE}}, "source_id"),
            ({"destination_id": UNKNOWN_DESTINATION}, "destination_id"),
            ({"destination_id": None, "destination": {"id": UNKNOWN_DESTINATION}}, "destination_id"),
            ({"destination_id": None, "destination": {"name": "no-config"}}, "destination.config"),
            (
                {"destination_id": None, "destination": {"name": "bad-url", "config": {"url": "nope"}}},
                "destination.config.url",
            ),
            ({"source_id": None, "source": {"name": "bad name"}}, "source.name"),
            ({"name": None}, "name"),
            ({"colour": "red"}, "colour"),
        ],
    )
    def test_a_connection_without_a_valid_source_destination_or_name_is_422_naming_it(self, world, change, field):
        # Given
        body = {k: v for k, v in {**world.body(), **change}.items() if v is not None}
        # When
        status, answer = world.api.post("/connections", body)
        # Then
        assert_error(status, answer, 422, "validation_error")
        assert answer["field"] == field
        if "name" in body:
            assert world.api.get(f"/connections?name={body['name']}")[1]["models"] == []

    @pytest.mark.parametrize(
        ("rules", "field"),
        [
            ([{"type": "delay", "delay": 86_400_001}], "rules[0].delay"),
            ([{"type": "delay", "delay": -1}], "rules[0].delay"),
            ([{"type": "delay", "delay": "soon"}], "rules[0].delay"),
            ([{"type": "deduplicate", "window": 999}], "rules[0].window"),
            ([{"type": "deduplicate", "window": 3_600_001}], "rules[0].window"),
            ([{"type": "deduplicate", "window": 5000, "include_fields": ["id"]}], "rules[0].include_fields[0]"),
            (
                [{"type": "deduplicate", "window": 5000, "include_fields": ["body.id"], "exclude_fields": ["body.x"]}],
                "rules[0].exclude_fields",
            ),
            ([{**RETRY, "count": 51}], "rules[0].count"),
            ([{**RETRY, "strategy": "random"}], "rules[0].strategy"),
            ([{**RETRY, "interval": 999}], "rules[0].interval"),
            ([{**RETRY, "response_status_codes": ["5xx"]}], "rules[0].response_status_codes[0]"),
            ([{"type": "filter", "body": {"amount": {"$regex": "^1"}}}], "rules[0].body"),
            ([{"type": "filter"}], "rules[0]"),
            ([{"type": "teleport"}], "rules[0].type"),
            ([{"delay": 10}], "rules[0].type"),
            (["delay"], "rules[0]"),
            ({"type": "delay", "delay": 10}, "rules"),
            ([{"type": "delay", "delay": 1}, {"type": "delay", "delay": 2}], "rules[1]"),
            ([{"type": "transform"}], "rules[0].transformation_id"),
            ([{"type": "transform", "transformation_id": "trs_nope"}], "rules[0].transformation_id"),
            ([{"type": "transform", "transformation_id": UNKNOWN_TRANSFORMATION}], "rules[0].transformation_id"),
            (
                [{"type": "transform", "transformation": {"name": "t", "code": CODE, "env": {"N": 1}}}],
                "rules[0].transformation.env.N",
            ),
            ([{"type": "transform", "transformation": {"name": "t"}}], "rules[0].transformation.code"),
            ([{"type": "delay", "delay": 10}, {"type": "delay", "delay": 10, "extra": 1}], "rules[1].extra"),
        ],
    )
    def test_an_invalid_rule_is_422_naming_the_field(self, world, rules, field):
        # Given
        body = world.body(rules=rules)
        # When
        status, answer = world.api.post("/connections", body)
        # Then
        assert_error(status, answer, 422, "validation_error")
        assert answer["field"].startswith(field), answer
        assert world.api.get(f"/connections?name={body['name']}")[1]["models"] == []

    def test_an_unknown_transformation_id_names_the_rule_by_the_position_the_user_gave(self, world):
        # Given: the transform rule is second as sent, first once normalised
        rules = [{"type": "delay", "delay": 10}, {"type": "transform", "transformation_id": UNKNOWN_TRANSFORMATION}]
        # When
        status, answer = world.api.post("/connections", world.body(rules=rules))
        # Then
        assert status == 422
        assert answer["field"] == "rules[1].transformation_id"

    def test_a_rejected_connection_creates_no_inline_source_or_transformation(self, world):
        # Given
        body = {
            "name": "never",
            "source": {"name": "orphan-src"},
            "destination_id": UNKNOWN_DESTINATION,
            "rules": [{"type": "transform", "transformation": {"name": "orphan-trs", "code": CODE}}],
        }
        # When
        status, _ = world.api.post("/connections", body)
        # Then
        assert status == 422
        assert world.api.get("/transformations?name=orphan-trs")[1]["models"] == []
        assert world.api.get("/sources?name=orphan-src")[1]["models"] == []

    @pytest.mark.parametrize("bad_id", ["nonsense", "web_", "web_x", UNKNOWN_SOURCE, UNKNOWN_CONNECTION])
    def test_a_malformed_foreign_or_unknown_connection_id_is_404_json(self, world, bad_id):
        # When
        status, body = world.api.get(f"/connections/{bad_id}")
        # Then
        assert_error(status, body, 404, "not_found")

    def test_every_route_on_an_unknown_connection_id_is_404_json(self, world):
        # When
        path = f"/connections/{UNKNOWN_CONNECTION}"
        answers = [
            world.api.patch(path, {"description": "x"}),
            world.api.put(path, {"description": "x"}),
            world.api.put(f"{path}/pause"),
            world.api.put(f"{path}/unpause"),
            world.api.post(f"{path}/disable"),
            world.api.put(f"{path}/enable"),
            world.api.delete(path),
        ]
        # Then
        for status, body in answers:
            assert_error(status, body, 404, "not_found")

    @pytest.mark.parametrize(
        "query",
        ["limit=256", "limit=0", "order_by=source", "dir=sideways", "cursor=%%%", "paused=perhaps", "disabled=2"],
    )
    def test_bad_list_parameters_are_400(self, world, query):
        # When
        status, body = world.api.get(f"/connections?{query}")
        # Then
        assert_error(status, body, 400, "invalid_parameter")


# ---- rules -------------------------------------------------------------------------------------


def test_rules_are_stored_in_normalised_order(api):
    # Given
    transformation = make_transformation(api, "reshape")
    first_filter = {"type": "filter", "body": {"type": {"$in": ["order.created", "order.paid"]}}}
    second_filter = {"type": "filter", "headers": {"x-shop": {"$startsWith": "eu-"}}}
    transform = {"type": "transform", "transformation_id": transformation["id"]}
    dedupe = {"type": "deduplicate", "window": 60000, "include_fields": ["body.id"]}
    delay = {"type": "delay", "delay": 5000}
    # When
    status, body = api.post(
        "/connections",
        {
            "name": "ordered",
            "source_id": make_source(api)["id"],
            "destination_id": make_destination(api)["id"],
            "rules": [RETRY, delay, first_filter, dedupe, transform, second_filter],
        },
    )
    # Then
    assert status == 201, body
    assert body["rules"] == [first_filter, transform, second_filter, dedupe, delay, RETRY]
    assert api.get(f"/connections/{body['id']}")[1]["rules"] == body["rules"]


class TestAcceptedRules:
    @pytest.mark.parametrize(
        "rule",
        [
            {"type": "delay", "delay": 0},
            {"type": "delay", "delay": 86_400_000},
            {"type": "deduplicate", "window": 1000},
            {"type": "deduplicate", "window": 3_600_000, "exclude_fields": ["headers.date", "body.sent_at"]},
            {"type": "retry", "strategy": "linear", "count": 50, "interval": 1000},
            {"type": "retry", "strategy": "linear", "count": 0, "interval": 1000},
            {
                "type": "filter",
                "body": {"$or": [{"amount": {"$gte": 100}}, {"vip": True}]},
                "query": {"test": {"$exist": False}},
                "path": {"$endsWith": "/orders"},
            },
        ],
    )
    def test_rules_at_their_bounds_are_accepted_as_given(self, world, rule):
        # When
        status, body = world.api.post("/connections", world.body(rules=[rule]))
        # Then
        assert status == 201, body
        assert body["rules"] == [rule]


@pytest.mark.parametrize("rule_type", ["transform", "transformation"])
def test_an_inline_transformation_is_created_and_linked_by_id(api, rule_type):
    # Given
    inline = {"name": "add-tag", "code": CODE, "env": {"TAG": "blue"}}
    # When
    status, body = api.post(
        "/connections",
        {
            "name": "tagged",
            "source_id": make_source(api)["id"],
            "destination_id": make_destination(api)["id"],
            "rules": [{"type": rule_type, "transformation": inline}],
        },
    )
    # Then
    assert status == 201, body
    [rule] = body["rules"]
    assert rule["type"] == "transform"
    assert rule["transformation_id"].startswith("trs_")
    assert "transformation" not in rule
    [stored] = api.get("/transformations")[1]["models"]
    assert stored["id"] == rule["transformation_id"]
    assert (stored["name"], stored["code"], stored["env"]) == ("add-tag", CODE, {"TAG": "blue"})


def test_an_inline_transformation_with_a_known_name_updates_that_transformation(api):
    # Given
    existing = make_transformation(api, "shared-code", code="old")
    # When
    connection = make_connection(
        api, rules=[{"type": "transform", "transformation": {"name": "shared-code", "code": CODE}}]
    )
    # Then
    assert connection["rules"] == [{"type": "transform", "transformation_id": existing["id"]}]
    assert api.get(f"/transformations/{existing['id']}")[1]["code"] == CODE


def test_a_transform_rule_by_id_links_an_existing_transformation(api):
    # Given
    transformation = make_transformation(api)
    # When
    connection = make_connection(api, rules=[{"type": "transformation", "transformation_id": transformation["id"]}])
    # Then
    assert connection["rules"] == [{"type": "transform", "transformation_id": transformation["id"]}]


# ---- duplicates and upsert ---------------------------------------------------------------------


def test_a_second_connection_with_the_same_name_on_the_same_source_is_409(api):
    # Given
    source = make_source(api)
    existing = make_connection(api, "orders", source=source)
    # When
    status, body = api.post(
        "/connections", {"name": "orders", "source_id": source["id"], "destination_id": make_destination(api)["id"]}
    )
    # Then
    assert_error(status, body, 409, "conflict")
    assert body["code"] == "RESOURCE_ALREADY_EXISTS"
    assert body["data"]["id"] == existing["id"]
    assert body["data"]["name"] == "orders"
    assert ids(api.get("/connections")[1]) == {existing["id"]}


def test_the_duplicate_409_carries_the_existing_connection_as_get_shows_it(api):
    # Given
    existing = make_connection(api, "orders")
    # When
    status, body = api.post(
        "/connections",
        {"name": "orders", "source_id": existing["source"]["id"], "destination_id": existing["destination"]["id"]},
    )
    # Then
    assert status == 409
    assert body["data"] == api.get(f"/connections/{existing['id']}")[1]


def test_the_same_connection_name_on_another_source_is_allowed(api):
    # Given
    destination = make_destination(api)
    first = make_connection(api, "orders", destination=destination)
    # When
    second = make_connection(api, "orders", destination=destination)
    # Then
    assert second["id"] != first["id"]
    assert second["source"]["id"] != first["source"]["id"]


def test_put_connections_upserts_by_source_and_name(api):
    # Given
    source, destination = make_source(api), make_destination(api)
    body = {"name": "upserted", "source_id": source["id"], "destination_id": destination["id"]}
    # When
    first_status, first = api.put("/connections", body)
    second_status, second = api.put(
        "/connections", {**body, "description": "second", "rules": [{"type": "delay", "delay": 1000}]}
    )
    # Then
    assert first_status == 201, first
    assert second_status == 200, second
    assert second["id"] == first["id"]
    assert second["description"] == "second"
    assert second["rules"] == [{"type": "delay", "delay": 1000}]
    assert ids(api.get("/connections")[1]) == {first["id"]}


def test_put_connections_with_an_id_updates_that_connection(api):
    # Given
    existing = make_connection(api, "before")
    # When
    status, body = api.put(
        "/connections",
        {
            "id": existing["id"],
            "name": "after",
            "source_id": existing["source"]["id"],
            "destination_id": existing["destination"]["id"],
        },
    )
    # Then
    assert status == 200, body
    assert body["id"] == existing["id"]
    assert body["name"] == "after"
    assert ids(api.get("/connections")[1]) == {existing["id"]}


# ---- update ------------------------------------------------------------------------------------


@pytest.mark.parametrize("method", ["put", "patch"])
def test_an_update_replaces_the_rules_and_keeps_the_rest(api, method, clock):
    # Given
    existing = make_connection(api, "steady", description="kept", rules=[{"type": "delay", "delay": 1000}])
    clock.advance(seconds=2)
    # When
    status, body = getattr(api, method)(
        f"/connections/{existing['id']}", {"rules": [RETRY, {"type": "filter", "body": {"ok": True}}]}
    )
    # Then
    assert status == 200, body
    assert body["rules"] == [{"type": "filter", "body": {"ok": True}}, RETRY]
    assert (body["name"], body["description"]) == ("steady", "kept")
    assert body["source"] == existing["source"]
    assert body["destination"] == existing["destination"]
    assert body["updated_at"] > existing["updated_at"]
    assert api.get(f"/connections/{existing['id']}")[1] == body


def test_an_update_can_move_the_connection_to_another_destination(api):
    # Given
    existing = make_connection(api)
    other = make_destination(api, "elsewhere")
    # When
    status, body = api.patch(f"/connections/{existing['id']}", {"destination_id": other["id"]})
    # Then
    assert status == 200, body
    assert body["destination"]["id"] == other["id"]
    assert body["full_name"] == f"{existing['source']['name']} -> elsewhere"


def test_an_invalid_rule_update_is_422_and_keeps_the_old_rules(api):
    # Given
    existing = make_connection(api, rules=[{"type": "delay", "delay": 1000}])
    # When
    status, body = api.patch(f"/connections/{existing['id']}", {"rules": [{"type": "delay", "delay": 86_400_001}]})
    # Then
    assert_error(status, body, 422, "validation_error")
    assert body["field"] == "rules[0].delay"
    assert api.get(f"/connections/{existing['id']}")[1]["rules"] == [{"type": "delay", "delay": 1000}]


def test_a_connection_read_back_can_be_sent_back_as_an_update(api):
    # Given
    existing = make_connection(api, rules=[{"type": "delay", "delay": 1000}])
    # When
    status, body = api.put(f"/connections/{existing['id']}", existing)
    # Then
    assert status == 200, body
    assert body == existing


# ---- pause and enable --------------------------------------------------------------------------


@pytest.mark.parametrize("method", ["put", "post"])
def test_pause_sets_paused_at_and_unpause_clears_it(api, method, clock):
    # Given
    existing = make_connection(api)
    clock.advance(seconds=1)
    # When
    status, paused = getattr(api, method)(f"/connections/{existing['id']}/pause")
    # Then
    assert status == 200, paused
    assert paused["paused_at"] is not None
    assert api.get(f"/connections/{existing['id']}")[1]["paused_at"] == paused["paused_at"]
    # When
    status, running = getattr(api, method)(f"/connections/{existing['id']}/unpause")
    # Then
    assert status == 200, running
    assert running["paused_at"] is None
    assert api.get(f"/connections/{existing['id']}")[1]["paused_at"] is None


@pytest.mark.parametrize("method", ["put", "post"])
def test_disable_sets_disabled_at_and_enable_clears_it(api, method):
    # Given
    existing = make_connection(api)
    # When
    status, disabled = getattr(api, method)(f"/connections/{existing['id']}/disable")
    # Then
    assert status == 200, disabled
    assert disabled["disabled_at"] is not None
    assert api.get(f"/connections/{existing['id']}")[1]["disabled_at"] == disabled["disabled_at"]
    # When
    status, enabled = getattr(api, method)(f"/connections/{existing['id']}/enable")
    # Then
    assert status == 200, enabled
    assert enabled["disabled_at"] is None


def test_disabling_the_source_disables_its_connections_and_enabling_it_re_enables_them(api):
    # Given
    source = make_source(api)
    first, second = make_connection(api, source=source), make_connection(api, source=source)
    elsewhere = make_connection(api)
    # When
    api.post(f"/sources/{source['id']}/disable")
    # Then
    assert api.get(f"/connections/{first['id']}")[1]["disabled_at"] is not None
    assert api.get(f"/connections/{second['id']}")[1]["disabled_at"] is not None
    assert api.get(f"/connections/{elsewhere['id']}")[1]["disabled_at"] is None
    # When
    api.post(f"/sources/{source['id']}/enable")
    # Then
    assert api.get(f"/connections/{first['id']}")[1]["disabled_at"] is None
    assert api.get(f"/connections/{second['id']}")[1]["disabled_at"] is None


def test_a_connection_disabled_on_its_own_stays_disabled_when_its_source_is_enabled(api, clock):
    # Given
    source = make_source(api)
    own = make_connection(api, source=source)
    follower = make_connection(api, source=source)
    disabled_at = api.put(f"/connections/{own['id']}/disable")[1]["disabled_at"]
    clock.advance(seconds=3)
    api.put(f"/sources/{source['id']}/disable")
    # When
    api.put(f"/sources/{source['id']}/enable")
    # Then
    assert api.get(f"/connections/{own['id']}")[1]["disabled_at"] == disabled_at
    assert api.get(f"/connections/{follower['id']}")[1]["disabled_at"] is None


def test_a_connection_disabled_while_its_source_is_disabled_stays_disabled_when_the_source_is_enabled(api):
    # Given
    source = make_source(api)
    connection = make_connection(api, source=source)
    api.put(f"/sources/{source['id']}/disable")
    api.put(f"/connections/{connection['id']}/disable")
    # When
    api.put(f"/sources/{source['id']}/enable")
    # Then
    assert api.get(f"/connections/{connection['id']}")[1]["disabled_at"] is not None


# ---- delete and cascades -----------------------------------------------------------------------


def test_a_deleted_connection_is_gone_and_its_ends_remain(api):
    # Given
    connection = make_connection(api)
    # When
    status, body = api.delete(f"/connections/{connection['id']}")
    # Then
    assert (status, body) == (200, {"id": connection["id"]})
    assert_error(*api.get(f"/connections/{connection['id']}"), 404, "not_found")
    assert api.get("/connections")[1]["models"] == []
    assert api.get(f"/sources/{connection['source']['id']}")[0] == 200
    assert api.get(f"/destinations/{connection['destination']['id']}")[0] == 200


@pytest.mark.parametrize("end", ["source", "destination"])
def test_deleting_a_source_or_destination_deletes_its_connections(api, end):
    # Given
    source, destination = make_source(api), make_destination(api)
    doomed = [
        make_connection(api, source=source, destination=destination),
        make_connection(
            api, source=source if end == "source" else None, destination=destination if end == "destination" else None
        ),
    ]
    survivor = make_connection(api)
    path = f"/{end}s/{(source if end == 'source' else destination)['id']}"
    # When
    status, _ = api.delete(path)
    # Then
    assert status == 200
    for connection in doomed:
        assert api.get(f"/connections/{connection['id']}")[0] == 404
    assert ids(api.get("/connections")[1]) == {survivor["id"]}


# ---- list --------------------------------------------------------------------------------------


def test_lists_filter_by_source_destination_paused_and_disabled(api):
    # Given
    source_a, source_b = make_source(api), make_source(api)
    dest_a, dest_b = make_destination(api), make_destination(api)
    a_to_a = make_connection(api, source=source_a, destination=dest_a)
    a_to_b = make_connection(api, source=source_a, destination=dest_b)
    b_to_a = make_connection(api, source=source_b, destination=dest_a)
    b_to_b = make_connection(api, source=source_b, destination=dest_b)
    api.put(f"/connections/{a_to_b['id']}/pause")
    api.put(f"/connections/{b_to_a['id']}/disable")

    def listed(query: str) -> set[str]:
        status, body = api.get(f"/connections?{query}")
        assert status == 200, body
        return ids(body)

    # Then
    assert listed(f"source_id={source_a['id']}") == {a_to_a["id"], a_to_b["id"]}
    assert listed(f"destination_id={dest_a['id']}") == {a_to_a["id"], b_to_a["id"]}
    assert listed(f"source_id={source_b['id']}&destination_id={dest_b['id']}") == {b_to_b["id"]}
    assert listed("paused=true") == {a_to_b["id"]}
    assert listed("paused=false") == {a_to_a["id"], b_to_a["id"], b_to_b["id"]}
    assert listed("disabled=true") == {b_to_a["id"]}
    assert listed("disabled=false&paused=false") == {a_to_a["id"], b_to_b["id"]}
    assert listed(f"name={b_to_b['name']}") == {b_to_b["id"]}
    assert listed(f"source_id={UNKNOWN_SOURCE}") == set()


def test_a_page_of_connections_walks_with_next_and_prev(api):
    # Given
    source, destination = make_source(api), make_destination(api)
    made = [make_connection(api, f"c{i}", source=source, destination=destination)["id"] for i in range(5)]
    # When
    first = api.get("/connections?order_by=name&dir=asc&limit=3")[1]
    second = api.get(f"/connections?order_by=name&dir=asc&limit=3&cursor={first['pagination']['next']}")[1]
    back = api.get(f"/connections?order_by=name&dir=asc&limit=3&cursor={second['pagination']['prev']}")[1]
    # Then
    assert [m["id"] for m in first["models"] + second["models"]] == made
    assert second["pagination"]["next"] is None
    assert back["models"] == first["models"]


def test_nested_secrets_show_only_with_include_config_auth(api):
    # Given
    source = make_source(api, config={"auth_type": "API_KEY", "auth": {"header_key": "x-key", "api_key": "in-key"}})
    destination = make_destination(
        api, config={"url": URL, "auth_type": "BEARER_TOKEN", "auth": {"token": "out-token"}}
    )
    connection = make_connection(api, source=source, destination=destination)
    # Then
    for shown in (connection, api.get(f"/connections/{connection['id']}")[1], api.get("/connections")[1]["models"][0]):
        assert "auth" not in shown["source"]["config"]
        assert "auth" not in shown["destination"]["config"]
        assert shown["source"]["config"]["auth_type"] == "API_KEY"
        assert shown["destination"]["config"]["auth_type"] == "BEARER_TOKEN"
    for shown in (
        api.get(f"/connections/{connection['id']}?include=config.auth")[1],
        api.get("/connections?include=config.auth")[1]["models"][0],
    ):
        assert shown["source"]["config"]["auth"]["api_key"] == "in-key"
        assert shown["destination"]["config"]["auth"] == {"token": "out-token"}


# ---- prefixes ----------------------------------------------------------------------------------


class TestPrefixes:
    @pytest.mark.parametrize("prefix", ["", "/v1", "/api/control/v1"])
    def test_connection_routes_answer_under_every_control_prefix(self, world, prefix):
        # Given
        client = world.api.as_(world.api.token, prefix=prefix)
        # When
        status, created = client.post("/connections", world.body())
        # Then
        assert status == 201, created
        assert client.get(f"/connections/{created['id']}") == (200, created)
        assert client.put(f"/connections/{created['id']}/pause")[1]["paused_at"] is not None
        assert created["id"] in ids(client.get("/connections?paused=true")[1])
        assert client.patch(f"/connections/{created['id']}", {"rules": [RETRY]})[1]["rules"] == [RETRY]
        assert client.delete(f"/connections/{created['id']}") == (200, {"id": created["id"]})
        assert client.get(f"/connections/{created['id']}")[0] == 404
