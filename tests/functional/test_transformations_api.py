"""Transformations through the HTTP API: create, validate, upsert, update, delete (and in use), list.

Tests that change state get a fresh FastHook each (`api`); tables of rejected bodies and lookups
share one per class (`shared`).
"""

from __future__ import annotations

import hashlib

import pytest

from tests.support.factories import make_connection, make_transformation, running_fasthook, unique_name

CODE = "addHandler('transform', (request, context) => { request.headers['x-tag'] = 'blue'; return request; });"
OTHER_CODE = "addHandler('transform', (request, context) => request);"
UNKNOWN_ID = "trs_01HZZZZZZZZZZZZZZZZZZZZZZZ"


@pytest.fixture(scope="class")
def shared():
    with running_fasthook() as (client, _clock):
        yield client


def sha256(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


def assert_error(status: int, body: dict, expected_status: int, error: str) -> None:
    assert status == expected_status, body
    assert body["error"] == error
    assert isinstance(body["message"], str) and body["message"]


# ---- create ------------------------------------------------------------------------------------


def test_a_transformation_is_created_with_the_hash_of_its_code(api):
    # When
    status, body = api.post("/transformations", {"name": "tagger", "code": CODE, "env": {"TAG": "blue"}})
    # Then
    assert status == 201, body
    assert body["id"].startswith("trs_")
    assert (body["name"], body["code"], body["env"]) == ("tagger", CODE, {"TAG": "blue"})
    assert body["code_hash"] == sha256(CODE)
    assert body["deleted_at"] is None
    assert body["created_at"].endswith("Z") and body["created_at"] == body["updated_at"]
    assert api.get(f"/transformations/{body['id']}") == (200, body)


def test_env_defaults_to_an_empty_object(api):
    # When
    status, body = api.post("/transformations", {"name": "plain", "code": CODE})
    # Then
    assert status == 201
    assert body["env"] == {}


class TestRejectedTransformationRequests:
    @pytest.mark.parametrize(
        ("payload", "field"),
        [
            ({"name": "no-code"}, "code"),
            ({"name": "empty-code", "code": ""}, "code"),
            ({"name": "number-code", "code": 42}, "code"),
            ({"code": CODE}, "name"),
            ({"name": "has spaces", "code": CODE}, "name"),
            ({"name": "env-number", "code": CODE, "env": {"RETRIES": 3}}, "env.RETRIES"),
            ({"name": "env-bool", "code": CODE, "env": {"DEBUG": True}}, "env.DEBUG"),
            ({"name": "env-nested", "code": CODE, "env": {"CONF": {"a": "b"}}}, "env.CONF"),
            ({"name": "env-list", "code": CODE, "env": ["A=1"]}, "env"),
            ({"name": "extra", "code": CODE, "language": "lua"}, "language"),
        ],
    )
    def test_an_invalid_transformation_is_422_naming_the_field(self, shared, payload, field):
        # When
        status, body = shared.post("/transformations", payload)
        # Then
        assert_error(status, body, 422, "validation_error")
        assert body["field"] == field
        if "name" in payload:
            assert shared.get(f"/transformations?name={payload['name']}")[1]["models"] == []

    def test_an_upsert_without_code_is_422_naming_code(self, shared):
        # When
        status, body = shared.put("/transformations", {"name": "upserted"})
        # Then
        assert_error(status, body, 422, "validation_error")
        assert body["field"] == "code"

    def test_a_body_that_is_not_json_is_400(self, shared):
        # When
        status, body = shared.call("POST", "/transformations", raw="{not json")
        # Then
        assert_error(status, body, 400, "invalid_json")

    @pytest.mark.parametrize("bad_id", ["nonsense", "trs_", "trs_x", "web_01HZZZZZZZZZZZZZZZZZZZZZZZ", UNKNOWN_ID])
    def test_a_malformed_foreign_or_unknown_transformation_id_is_404_json(self, shared, bad_id):
        # When
        answers = [
            shared.get(f"/transformations/{bad_id}"),
            shared.put(f"/transformations/{bad_id}", {"code": CODE}),
            shared.delete(f"/transformations/{bad_id}"),
        ]
        # Then
        for status, body in answers:
            assert_error(status, body, 404, "not_found")

    @pytest.mark.parametrize("query", ["limit=256", "limit=0", "order_by=code", "cursor=@@"])
    def test_bad_list_parameters_are_400(self, shared, query):
        # When
        status, body = shared.get(f"/transformations?{query}")
        # Then
        assert_error(status, body, 400, "invalid_parameter")


# ---- duplicates and upsert ---------------------------------------------------------------------


def test_a_second_transformation_with_the_same_name_is_409_with_the_existing_one(api):
    # Given
    existing = make_transformation(api, "dup", code=CODE)
    # When
    status, body = api.post("/transformations", {"name": "dup", "code": OTHER_CODE})
    # Then
    assert_error(status, body, 409, "conflict")
    assert body["code"] == "RESOURCE_ALREADY_EXISTS"
    assert body["data"]["id"] == existing["id"]
    assert body["data"]["code"] == CODE
    assert api.get(f"/transformations/{existing['id']}")[1]["code"] == CODE


def test_put_transformations_upserts_by_name(api):
    # When
    first_status, first = api.put("/transformations", {"name": "upserted", "code": CODE})
    second_status, second = api.put(
        "/transformations", {"name": "upserted", "code": OTHER_CODE, "env": {"MODE": "strict"}}
    )
    # Then
    assert first_status == 201, first
    assert second_status == 200, second
    assert second["id"] == first["id"]
    assert second["code"] == OTHER_CODE and second["code_hash"] == sha256(OTHER_CODE)
    assert second["env"] == {"MODE": "strict"}
    assert [t["id"] for t in api.get("/transformations")[1]["models"]] == [first["id"]]


# ---- update ------------------------------------------------------------------------------------


@pytest.mark.parametrize("method", ["put", "patch"])
def test_an_update_changes_code_and_code_hash(api, method, clock):
    # Given
    existing = make_transformation(api, "evolving", code=CODE, env={"TAG": "blue"})
    clock.advance(seconds=2)
    # When
    status, body = getattr(api, method)(f"/transformations/{existing['id']}", {"code": OTHER_CODE})
    # Then
    assert status == 200, body
    assert body["code"] == OTHER_CODE
    assert body["code_hash"] == sha256(OTHER_CODE) != existing["code_hash"]
    assert (body["name"], body["env"]) == ("evolving", {"TAG": "blue"})
    assert body["updated_at"] > existing["updated_at"]
    assert api.get(f"/transformations/{existing['id']}")[1] == body


def test_an_update_of_env_alone_keeps_code_and_hash(api):
    # Given
    existing = make_transformation(api, code=CODE)
    # When
    status, body = api.put(f"/transformations/{existing['id']}", {"env": {"TAG": "green"}})
    # Then
    assert status == 200, body
    assert body["env"] == {"TAG": "green"}
    assert (body["code"], body["code_hash"]) == (CODE, existing["code_hash"])


def test_an_invalid_update_is_422_and_changes_nothing(api):
    # Given
    existing = make_transformation(api, code=CODE)
    # When
    status, body = api.put(f"/transformations/{existing['id']}", {"code": "", "env": {"N": 1}})
    # Then
    assert_error(status, body, 422, "validation_error")
    assert body["field"] in ("code", "env.N")
    assert api.get(f"/transformations/{existing['id']}")[1] == existing


def test_renaming_to_a_taken_name_is_409(api):
    # Given
    make_transformation(api, "taken")
    other = make_transformation(api, "other")
    # When
    status, body = api.put(f"/transformations/{other['id']}", {"name": "taken"})
    # Then
    assert_error(status, body, 409, "conflict")
    assert api.get(f"/transformations/{other['id']}")[1]["name"] == "other"


# ---- delete ------------------------------------------------------------------------------------


def test_an_unused_transformation_is_deleted_and_then_not_found(api):
    # Given
    kept = make_transformation(api)
    doomed = make_transformation(api)
    # When
    status, body = api.delete(f"/transformations/{doomed['id']}")
    # Then
    assert (status, body) == (200, {"id": doomed["id"]})
    assert_error(*api.get(f"/transformations/{doomed['id']}"), 404, "not_found")
    assert [t["id"] for t in api.get("/transformations")[1]["models"]] == [kept["id"]]
    assert api.delete(f"/transformations/{doomed['id']}")[0] == 404


@pytest.mark.parametrize("linked", ["by_id", "inline"])
def test_a_transformation_used_by_a_connection_cannot_be_deleted(api, linked):
    # Given
    if linked == "by_id":
        transformation = make_transformation(api, "in-use")
        rule = {"type": "transform", "transformation_id": transformation["id"]}
    else:
        rule = {"type": "transformation", "transformation": {"name": "in-use", "code": CODE}}
    connection = make_connection(api, "uses-it", rules=[rule])
    transformation_id = connection["rules"][0]["transformation_id"]
    # When
    status, body = api.delete(f"/transformations/{transformation_id}")
    # Then
    assert_error(status, body, 409, "conflict")
    assert body["code"] == "RESOURCE_IN_USE"
    assert connection["id"] in body["message"]
    assert api.get(f"/transformations/{transformation_id}")[0] == 200


def test_a_transformation_can_be_deleted_once_no_rule_uses_it(api):
    # Given
    transformation = make_transformation(api)
    connection = make_connection(api, rules=[{"type": "transform", "transformation_id": transformation["id"]}])
    api.patch(f"/connections/{connection['id']}", {"rules": []})
    # When
    status, _ = api.delete(f"/transformations/{transformation['id']}")
    # Then
    assert status == 200
    assert api.get(f"/transformations/{transformation['id']}")[0] == 404


# ---- list --------------------------------------------------------------------------------------


def test_transformations_list_in_name_order_and_page(api):
    # Given
    for name in ("gamma", "alpha", "beta"):
        make_transformation(api, name)
    # When
    first_status, first = api.get("/transformations?order_by=name&dir=asc&limit=2")
    second_status, second = api.get(
        f"/transformations?order_by=name&dir=asc&limit=2&cursor={first['pagination']['next']}"
    )
    # Then
    assert (first_status, second_status) == (200, 200)
    assert [t["name"] for t in first["models"]] == ["alpha", "beta"]
    assert [t["name"] for t in second["models"]] == ["gamma"]
    assert second["pagination"]["next"] is None
    assert first["count"] == 2 and second["count"] == 1


# ---- prefixes ----------------------------------------------------------------------------------


class TestPrefixes:
    @pytest.mark.parametrize("prefix", ["", "/v1", "/api/control/v1"])
    def test_transformation_routes_answer_under_every_control_prefix(self, shared, prefix):
        # Given
        client = shared.as_(shared.token, prefix=prefix)
        name = unique_name("prefixed")
        # When
        status, created = client.post("/transformations", {"name": name, "code": CODE})
        # Then
        assert status == 201, created
        assert client.get(f"/transformations/{created['id']}") == (200, created)
        assert client.put("/transformations", {"name": name, "code": OTHER_CODE})[0] == 200
        assert client.get(f"/transformations?name={name}")[1]["models"][0]["code_hash"] == sha256(OTHER_CODE)
        assert client.delete(f"/transformations/{created['id']}") == (200, {"id": created["id"]})
        assert client.get(f"/transformations/{created['id']}")[0] == 404
