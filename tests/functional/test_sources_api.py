"""Sources through the HTTP API: create, read, list, upsert, update, enable/disable, delete, and errors."""

from __future__ import annotations

import pytest

HMAC = {
    "auth_type": "HMAC",
    "auth": {
        "algorithm": "sha256",
        "encoding": "hex",
        "header_key": "x-signature",
        "webhook_secret_key": "s3cret-value",
    },
}


def test_a_new_source_has_an_id_the_ingest_url_and_default_methods(api):
    # When
    status, body = api.post("/sources", {"name": "stripe-prod"})
    # Then
    assert status == 201
    assert body["id"].startswith("src_")
    assert body["url"] == f"https://hooks.example.test/e/{body['id']}"
    assert body["type"] == "WEBHOOK"
    assert body["config"]["allowed_http_methods"] == ["POST", "PUT", "PATCH", "DELETE"]
    assert body["disabled_at"] is None
    assert body["created_at"].endswith("Z") and body["created_at"] == body["updated_at"]


def test_a_source_reads_back_by_id(api):
    # Given
    created = api.post("/sources", {"name": "github", "description": "repo hooks"})[1]
    # When
    status, body = api.get(f"/sources/{created['id']}")
    # Then
    assert status == 200
    assert body == created


def test_source_secrets_show_only_with_include_config_auth(api):
    # Given
    created = api.post("/sources", {"name": "signed", "config": HMAC})[1]
    # Then
    assert "auth" not in created["config"] and created["config"]["auth_type"] == "HMAC"
    assert "auth" not in api.get(f"/sources/{created['id']}")[1]["config"]
    shown = api.get(f"/sources/{created['id']}?include=config.auth")[1]
    assert shown["config"]["auth"]["webhook_secret_key"] == "s3cret-value"
    listed = api.get("/sources?include=config.auth")[1]["models"][0]
    assert listed["config"]["auth"]["header_key"] == "x-signature"
    assert "auth" not in api.get("/sources")[1]["models"][0]["config"]


@pytest.mark.parametrize(
    ("auth_type", "auth"),
    [
        ("BASIC_AUTH", {"username": "u", "password": "p"}),
        ("API_KEY", {"header_key": "x-api-key", "api_key": "k"}),
        ("STRIPE", {"webhook_secret_key": "whsec_abc"}),
        ("GITHUB", {"webhook_secret_key": "gh"}),
        ("SHOPIFY", {"webhook_secret_key": "shp"}),
        ("STANDARD_WEBHOOKS", {"webhook_secret_key": "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"}),
    ],
)
def test_every_verification_type_is_accepted_with_its_auth_shape(api, auth_type, auth):
    # When
    status, body = api.post(
        "/sources", {"name": f"s-{auth_type.lower()}", "config": {"auth_type": auth_type, "auth": auth}}
    )
    # Then
    assert status == 201
    assert body["config"]["auth_type"] == auth_type


@pytest.mark.parametrize(
    ("payload", "field"),
    [
        ({}, "name"),
        ({"name": ""}, "name"),
        ({"name": "has spaces"}, "name"),
        ({"name": "x" * 156}, "name"),
        ({"name": "ok", "config": {"allowed_http_methods": ["FETCH"]}}, "config.allowed_http_methods[0]"),
        ({"name": "ok", "config": {"allowed_http_methods": []}}, "config.allowed_http_methods"),
        ({"name": "ok", "config": {"auth_type": "HMAC"}}, "config.auth"),
        (
            {"name": "ok", "config": {"auth_type": "HMAC", "auth": {"header_key": "x"}}},
            "config.auth.webhook_secret_key",
        ),
        ({"name": "ok", "config": {"auth_type": "NOPE", "auth": {}}}, "config.auth_type"),
        (
            {"name": "ok", "config": {"custom_response": {"content_type": "json", "body": "x" * 1001}}},
            "config.custom_response.body",
        ),
        ({"name": "ok", "config": {"mystery": 1}}, "config.mystery"),
        ({"name": "ok", "type": "lower"}, "type"),
        ({"name": "ok", "colour": "blue"}, "colour"),
    ],
)
def test_an_invalid_source_is_422_naming_the_field(api, payload, field):
    # When
    status, body = api.post("/sources", payload)
    # Then
    assert status == 422
    assert body["error"] == "validation_error"
    assert body["field"] == field
    assert field.split("[")[0].split(".")[-1] in body["message"]


@pytest.mark.parametrize("raw", ["{", "[1, 2]", '"text"', "null"])
def test_a_body_that_is_not_a_json_object_is_a_4xx_with_an_error_body(api, raw):
    # When
    status, body = api.call("POST", "/sources", raw=raw)
    # Then
    assert status in (400, 422)
    assert set(body) >= {"error", "message"}


def test_a_duplicate_name_is_409_with_the_existing_source(api):
    # Given
    first = api.post("/sources", {"name": "dup"})[1]
    # When
    status, body = api.post("/sources", {"name": "dup"})
    # Then
    assert status == 409
    assert body["code"] == "RESOURCE_ALREADY_EXISTS"
    assert body["data"]["id"] == first["id"]


def test_put_upserts_by_name_creating_then_updating_the_same_source(api):
    # When
    created_status, created = api.put("/sources", {"name": "shopify"})
    updated_status, updated = api.put("/sources", {"name": "shopify", "description": "store"})
    # Then
    assert (created_status, updated_status) == (201, 200)
    assert updated["id"] == created["id"]
    assert updated["description"] == "store"


@pytest.mark.parametrize("method", ["PUT", "PATCH"])
def test_an_update_changes_only_the_given_fields_and_merges_config(api, clock, method):
    # Given
    created = api.post("/sources", {"name": "merge", "config": HMAC})[1]
    clock.advance(seconds=5)
    # When
    status, body = api.call(method, f"/sources/{created['id']}", {"config": {"allowed_http_methods": ["POST"]}})
    # Then
    assert status == 200
    assert body["name"] == "merge"
    assert body["config"]["allowed_http_methods"] == ["POST"]
    assert body["config"]["auth_type"] == "HMAC"
    assert api.get(f"/sources/{created['id']}?include=config.auth")[1]["config"]["auth"] == HMAC["auth"]
    assert body["updated_at"] > created["updated_at"]


def test_clearing_auth_type_removes_the_stored_secret(api):
    # Given
    created = api.post("/sources", {"name": "unsigned-later", "config": HMAC})[1]
    # When
    status, body = api.patch(f"/sources/{created['id']}?include=config.auth", {"config": {"auth_type": None}})
    # Then
    assert status == 200
    assert "auth_type" not in body["config"] and "auth" not in body["config"]


def test_renaming_onto_a_taken_name_is_409_and_renaming_frees_the_old_name(api):
    # Given
    a = api.post("/sources", {"name": "a"})[1]
    api.post("/sources", {"name": "b"})
    # Then
    assert api.patch(f"/sources/{a['id']}", {"name": "b"})[0] == 409
    assert api.patch(f"/sources/{a['id']}", {"name": "c"})[0] == 200
    assert api.post("/sources", {"name": "a"})[0] == 201


@pytest.mark.parametrize("method", ["PUT", "POST"])
def test_disable_and_enable_set_and_clear_disabled_at(api, method):
    # Given
    source = api.post("/sources", {"name": "toggle"})[1]
    # When
    disabled = api.call(method, f"/sources/{source['id']}/disable")[1]
    enabled = api.call(method, f"/sources/{source['id']}/enable")[1]
    # Then
    assert disabled["disabled_at"] is not None
    assert enabled["disabled_at"] is None


def test_a_deleted_source_is_gone_from_get_and_list(api):
    # Given
    source = api.post("/sources", {"name": "short-lived"})[1]
    # When
    status, body = api.delete(f"/sources/{source['id']}")
    # Then
    assert status == 200 and body["id"] == source["id"]
    assert api.get(f"/sources/{source['id']}")[0] == 404
    assert api.get("/sources")[1]["models"] == []
    assert api.delete(f"/sources/{source['id']}")[0] == 404


@pytest.mark.parametrize(
    "bad_id",
    [
        "nope",
        "src_",
        "des_01M8547MZCKAJCA8VS2MAZA7PF",
        "src_01M8547MZCKAJCA8VS2MAZA7PF",
        "src_01M8547MZCKAJCA8VS2MAZA7P%21",
    ],
)
@pytest.mark.parametrize("method", ["GET", "PATCH", "DELETE"])
def test_a_malformed_foreign_or_unknown_id_is_404_json(api, bad_id, method):
    # When
    status, body = api.call(method, f"/sources/{bad_id}", {} if method == "PATCH" else None)
    # Then
    assert status == 404
    assert body["error"] == "not_found"


def test_lists_order_page_and_walk_back_without_gaps_or_duplicates(api, clock):
    # Given
    names = ["e", "a", "d", "b", "c"]
    for name in names:
        api.post("/sources", {"name": name})
        clock.advance(seconds=1)
    # When
    seen, cursor, pages = [], None, []
    while True:
        _, page = api.get("/sources?order_by=name&dir=asc&limit=2" + (f"&cursor={cursor}" if cursor else ""))
        pages.append(page)
        seen += [m["name"] for m in page["models"]]
        cursor = page["pagination"]["next"]
        if not cursor:
            break
    back = api.get(f"/sources?order_by=name&dir=asc&limit=2&cursor={pages[-1]['pagination']['prev']}")[1]
    # Then
    assert seen == sorted(names)
    assert [p["count"] for p in pages] == [2, 2, 1]
    assert [m["name"] for m in back["models"]] == ["c", "d"]
    newest_first = [m["name"] for m in api.get("/sources")[1]["models"]]
    assert newest_first == list(reversed(names))


@pytest.mark.parametrize(
    "query",
    [
        "limit=0",
        "limit=256",
        "limit=abc",
        "limit=99999999999999999999",
        "order_by=colour",
        "dir=sideways",
        "cursor=!!!",
        "cursor=eyJvIjoxfQ",
        "disabled=maybe",
    ],
)
def test_bad_list_parameters_are_400_naming_the_parameter(api, query):
    # When
    status, body = api.get(f"/sources?{query}")
    # Then
    assert status == 400
    assert body["error"] == "invalid_parameter"
    assert query.split("=")[0] in body["message"]


def test_list_filters_by_name_and_disabled(api):
    # Given
    on = api.post("/sources", {"name": "on"})[1]
    off = api.post("/sources", {"name": "off"})[1]
    api.put(f"/sources/{off['id']}/disable")
    # Then
    assert [m["id"] for m in api.get("/sources?name=on")[1]["models"]] == [on["id"]]
    assert [m["id"] for m in api.get("/sources?disabled=true")[1]["models"]] == [off["id"]]
    assert [m["id"] for m in api.get("/sources?disabled=false")[1]["models"]] == [on["id"]]


@pytest.mark.parametrize("prefix", ["", "/v1", "/api/control/v1"])
def test_sources_answer_under_every_control_prefix(api, prefix):
    # Given
    client = api.as_(api.token, prefix=prefix)
    # When
    status, created = client.post("/sources", {"name": f"p{len(prefix)}"})
    # Then
    assert status == 201
    assert client.get(f"/sources/{created['id']}")[0] == 200
    assert [m["id"] for m in client.get("/sources")[1]["models"]] == [created["id"]]


def test_a_json_body_sent_with_a_form_content_type_is_still_read(api):
    # When: plain `curl -d` labels the body application/x-www-form-urlencoded
    status, body = api.post(
        "/sources", {"name": "from-curl"}, headers={"Content-Type": "application/x-www-form-urlencoded"}
    )
    # Then
    assert status == 201
    assert body["name"] == "from-curl"
