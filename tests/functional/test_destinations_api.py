"""Destinations through the HTTP API: create, validate, secrets, upsert, update, enable/disable, delete, list.

Tests that change state get a fresh FastHook each (`api`); tables of accepted or rejected requests
share one per class (`shared`), since a rejected request stores nothing and accepted ones use their
own names.
"""

from __future__ import annotations

import pytest

from tests.support.factories import DEFAULT_URL, make_destination, make_source, running_fasthook, unique_name

URL = "https://receiver.example.test/in"
BEARER = {"auth_type": "BEARER_TOKEN", "auth": {"token": "tok-secret"}}
UNKNOWN_ID = "des_01HZZZZZZZZZZZZZZZZZZZZZZZ"


@pytest.fixture(scope="class")
def shared():
    with running_fasthook() as (client, _clock):
        yield client


def assert_error(status: int, body: dict, expected_status: int, error: str) -> None:
    assert status == expected_status, body
    assert body["error"] == error
    assert isinstance(body["message"], str) and body["message"]


def names(body: dict) -> list[str]:
    return [d["name"] for d in body["models"]]


# ---- create ------------------------------------------------------------------------------------


def test_an_http_destination_is_created_with_its_url_and_defaults(api):
    # When
    status, body = api.post("/destinations", {"name": "orders-api", "description": "orders", "config": {"url": URL}})
    # Then
    assert status == 201
    assert body["id"].startswith("des_")
    assert body["name"] == "orders-api" and body["description"] == "orders"
    assert body["type"] == "HTTP"
    assert body["config"]["url"] == URL
    assert body["config"]["http_timeout"] == 30
    assert body["disabled_at"] is None
    assert body["created_at"].endswith("Z") and body["created_at"] == body["updated_at"]
    assert api.get(f"/destinations/{body['id']}") == (200, body)


def test_a_mock_api_destination_is_created_with_its_path(api):
    # When
    status, body = api.post("/destinations", {"name": "mock", "type": "MOCK_API", "config": {"path": "/mock/in"}})
    # Then
    assert status == 201
    assert body["type"] == "MOCK_API"
    assert body["config"]["path"] == "/mock/in"
    assert "url" not in body["config"]


class TestAcceptedDestinationConfigs:
    @pytest.mark.parametrize("timeout", [1, 60])
    def test_http_timeout_accepts_one_to_sixty_seconds(self, shared, timeout):
        # When
        status, body = shared.post(
            "/destinations", {"name": unique_name("timed"), "config": {"url": URL, "http_timeout": timeout}}
        )
        # Then
        assert status == 201, body
        assert body["config"]["http_timeout"] == timeout

    @pytest.mark.parametrize("period", ["second", "minute", "hour", "concurrent"])
    def test_every_rate_limit_period_is_accepted(self, shared, period):
        # When
        status, body = shared.post(
            "/destinations",
            {"name": unique_name("limited"), "config": {"url": URL, "rate_limit": 5, "rate_limit_period": period}},
        )
        # Then
        assert status == 201, body
        assert body["config"]["rate_limit"] == 5
        assert body["config"]["rate_limit_period"] == period

    def test_http_method_and_path_forwarding_options_are_kept(self, shared):
        # When
        status, body = shared.post(
            "/destinations",
            {
                "name": unique_name("opts"),
                "config": {"url": URL, "http_method": "PUT", "path_forwarding_disabled": True},
            },
        )
        # Then
        assert status == 201, body
        assert body["config"]["http_method"] == "PUT"
        assert body["config"]["path_forwarding_disabled"] is True

    @pytest.mark.parametrize(
        ("auth_type", "auth"),
        [
            ("BEARER_TOKEN", {"token": "tok-secret"}),
            ("BASIC_AUTH", {"username": "user", "password": "pw-secret"}),
            ("API_KEY", {"key": "x-api-key", "api_key": "key-secret", "to": "header"}),
            ("API_KEY", {"key": "api_key", "api_key": "key-secret", "to": "query"}),
        ],
    )
    def test_destination_secrets_are_hidden_unless_include_config_auth(self, shared, auth_type, auth):
        # Given
        name = unique_name("secured")
        # When
        status, created = shared.post(
            "/destinations", {"name": name, "config": {"url": URL, "auth_type": auth_type, "auth": auth}}
        )
        # Then
        assert status == 201, created
        assert created["config"]["auth_type"] == auth_type
        assert "auth" not in created["config"]
        assert "auth" not in shared.get(f"/destinations/{created['id']}")[1]["config"]
        assert "auth" not in shared.get(f"/destinations?name={name}")[1]["models"][0]["config"]
        assert shared.get(f"/destinations/{created['id']}?include=config.auth")[1]["config"]["auth"] == auth
        listed = shared.get(f"/destinations?name={name}&include=config.auth")[1]["models"][0]
        assert listed["config"]["auth"] == auth

    def test_a_create_with_include_config_auth_shows_the_secret_it_stored(self, shared):
        # When
        status, body = shared.post(
            "/destinations?include=config.auth", {"name": unique_name("shown"), "config": {"url": URL, **BEARER}}
        )
        # Then
        assert status == 201
        assert body["config"]["auth"] == {"token": "tok-secret"}


class TestRejectedDestinationRequests:
    def test_a_destination_without_config_is_rejected_naming_config(self, shared):
        # When
        status, body = shared.post("/destinations", {"name": "no-config"})
        # Then
        assert_error(status, body, 422, "validation_error")
        assert body["field"] == "config"
        assert "config" in body["message"]

    @pytest.mark.parametrize(
        ("payload", "field"),
        [
            ({"config": {}}, "config.url"),
            ({"type": "HTTP", "config": {"path": "/x"}}, "config.url"),
            ({"type": "MOCK_API", "config": {}}, "config.path"),
            ({"type": "MOCK_API", "config": {"url": URL}}, "config.path"),
            ({"type": "MOCK_API", "config": {"path": "no-leading-slash"}}, "config.path"),
            ({"config": {"url": "ftp://receiver.example.test/in"}}, "config.url"),
            ({"config": {"url": "not a url"}}, "config.url"),
            ({"config": {"url": "http://"}}, "config.url"),
            ({"config": {"url": 42}}, "config.url"),
            ({"config": {"url": URL, "http_timeout": 0}}, "config.http_timeout"),
            ({"config": {"url": URL, "http_timeout": 61}}, "config.http_timeout"),
            ({"config": {"url": URL, "http_timeout": "soon"}}, "config.http_timeout"),
            ({"config": {"url": URL, "rate_limit": 0, "rate_limit_period": "second"}}, "config.rate_limit"),
            ({"config": {"url": URL, "rate_limit": 5, "rate_limit_period": "day"}}, "config.rate_limit_period"),
            ({"config": {"url": URL, "http_method": "TRACE"}}, "config.http_method"),
            ({"config": {"url": URL, "auth_type": "OAUTH"}}, "config.auth_type"),
            ({"config": {"url": URL, "auth_type": "BEARER_TOKEN", "auth": {}}}, "config.auth.token"),
            ({"config": {"url": URL, "auth_type": "BASIC_AUTH", "auth": {"username": "u"}}}, "config.auth.password"),
            (
                {
                    "config": {
                        "url": URL,
                        "auth_type": "API_KEY",
                        "auth": {"key": "x-key", "api_key": "k", "to": "body"},
                    }
                },
                "config.auth.to",
            ),
            ({"config": {"url": URL, "color": "blue"}}, "config.color"),
            ({"config": "https://receiver.example.test"}, "config"),
            ({"type": "SMTP", "config": {"url": URL}}, "type"),
            ({"name": "has spaces", "config": {"url": URL}}, "name"),
        ],
    )
    def test_an_invalid_destination_is_422_naming_the_field(self, shared, payload, field):
        # When
        status, body = shared.post("/destinations", {"name": "rejected", **payload})
        # Then
        assert_error(status, body, 422, "validation_error")
        assert body["field"] == field
        assert shared.get("/destinations?name=rejected")[1]["models"] == []

    @pytest.mark.parametrize(
        "config",
        [
            {"url": URL, "rate_limit": 10},
            {"url": URL, "rate_limit_period": "minute"},
        ],
    )
    def test_a_rate_limit_needs_both_rate_limit_and_its_period(self, shared, config):
        # When
        status, body = shared.post("/destinations", {"name": "half-limited", "config": config})
        # Then
        assert_error(status, body, 422, "validation_error")
        assert body["field"].startswith("config")
        assert "rate_limit" in body["message"]

    @pytest.mark.parametrize(
        "config",
        [
            {"url": URL, "auth_type": "BEARER_TOKEN"},
            {"url": URL, "auth": {"token": "t"}},
        ],
    )
    def test_auth_type_and_auth_go_together(self, shared, config):
        # When
        status, body = shared.post("/destinations", {"name": "half-auth", "config": config})
        # Then
        assert_error(status, body, 422, "validation_error")
        assert body["field"].startswith("config")

    def test_an_upsert_without_config_is_422_naming_config(self, shared):
        # When
        status, body = shared.put("/destinations", {"name": "upserted"})
        # Then
        assert_error(status, body, 422, "validation_error")
        assert body["field"] == "config"

    @pytest.mark.parametrize(
        "bad_id",
        [
            "nonsense",
            "des_",
            "des_not-a-valid-id",
            "src_01HZZZZZZZZZZZZZZZZZZZZZZZ",
            UNKNOWN_ID,
        ],
    )
    def test_a_malformed_foreign_or_unknown_destination_id_is_404_json(self, shared, bad_id):
        # When
        status, body = shared.get(f"/destinations/{bad_id}")
        # Then
        assert_error(status, body, 404, "not_found")

    def test_every_route_on_an_unknown_destination_id_is_404_json(self, shared):
        # When
        answers = [
            shared.patch(f"/destinations/{UNKNOWN_ID}", {"description": "x"}),
            shared.put(f"/destinations/{UNKNOWN_ID}", {"description": "x"}),
            shared.put(f"/destinations/{UNKNOWN_ID}/disable"),
            shared.post(f"/destinations/{UNKNOWN_ID}/enable"),
            shared.delete(f"/destinations/{UNKNOWN_ID}"),
            shared.delete("/destinations/web_01HZZZZZZZZZZZZZZZZZZZZZZZ"),
        ]
        # Then
        for status, body in answers:
            assert_error(status, body, 404, "not_found")

    @pytest.mark.parametrize(
        ("query", "named"),
        [
            ("limit=256", "limit"),
            ("limit=0", "limit"),
            ("limit=-1", "limit"),
            ("limit=ten", "limit"),
            ("limit=1.5", "limit"),
            ("order_by=color", "order_by"),
            ("order_by=id", "order_by"),
            ("dir=up", "dir"),
            ("cursor=garbage!!", "cursor"),
            ("cursor=eyJmb28iOiAxfQ", "cursor"),
            ("next=bm90LWpzb24", "cursor"),
            ("disabled=maybe", "disabled"),
        ],
    )
    def test_bad_list_parameters_are_400_naming_the_parameter(self, shared, query, named):
        # When
        status, body = shared.get(f"/destinations?{query}")
        # Then
        assert_error(status, body, 400, "invalid_parameter")
        assert named in body["message"]

    def test_limit_255_is_accepted(self, shared):
        # When
        status, body = shared.get("/destinations?limit=255")
        # Then
        assert status == 200
        assert body["pagination"]["limit"] == 255

    def test_destinations_need_a_token(self, shared):
        # When
        status, body = shared.as_(None).get("/destinations")
        # Then
        assert_error(status, body, 401, "unauthorized")


# ---- duplicates and upsert ---------------------------------------------------------------------


def test_a_second_destination_with_the_same_name_is_409_with_the_existing_one(api):
    # Given
    existing = make_destination(api, "dup")
    # When
    status, body = api.post("/destinations", {"name": "dup", "config": {"url": "https://other.example.test"}})
    # Then
    assert_error(status, body, 409, "conflict")
    assert body["code"] == "RESOURCE_ALREADY_EXISTS"
    assert body["data"]["id"] == existing["id"]
    assert body["data"]["name"] == "dup"
    assert body["data"]["config"]["url"] == DEFAULT_URL
    assert len(api.get("/destinations")[1]["models"]) == 1


def test_the_duplicate_409_does_not_leak_the_existing_destinations_secrets(api):
    # Given
    make_destination(api, "dup-secret", config={"url": URL, **BEARER})
    # When
    status, body = api.post("/destinations", {"name": "dup-secret", "config": {"url": URL}})
    # Then
    assert status == 409
    assert "auth" not in body["data"]["config"]
    assert "tok-secret" not in str(body)


def test_put_destinations_upserts_by_name(api):
    # When
    first_status, first = api.put("/destinations", {"name": "upserted", "config": {"url": URL}})
    second_status, second = api.put(
        "/destinations", {"name": "upserted", "config": {"url": "https://v2.example.test/in"}}
    )
    # Then
    assert first_status == 201
    assert second_status == 200
    assert second["id"] == first["id"]
    assert second["config"]["url"] == "https://v2.example.test/in"
    assert [d["id"] for d in api.get("/destinations")[1]["models"]] == [first["id"]]


# ---- update ------------------------------------------------------------------------------------


@pytest.mark.parametrize("method", ["patch", "put"])
def test_an_update_merges_config_key_by_key(api, method, clock):
    # Given
    created = make_destination(
        api, "merge", config={"url": URL, **BEARER, "rate_limit": 3, "rate_limit_period": "second"}
    )
    clock.advance(seconds=5)
    # When
    status, body = getattr(api, method)(
        f"/destinations/{created['id']}?include=config.auth", {"config": {"http_timeout": 10}}
    )
    # Then
    assert status == 200, body
    assert body["config"]["http_timeout"] == 10
    assert body["config"]["url"] == URL
    assert body["config"]["auth_type"] == "BEARER_TOKEN"
    assert body["config"]["auth"] == {"token": "tok-secret"}
    assert body["config"]["rate_limit"] == 3
    assert body["updated_at"] > created["updated_at"]
    assert body["created_at"] == created["created_at"]
    assert api.get(f"/destinations/{created['id']}?include=config.auth")[1] == body


@pytest.mark.parametrize("method", ["patch", "put"])
def test_an_update_changes_name_and_description_and_keeps_the_rest(api, method):
    # Given
    created = make_destination(api, "before", url=URL)
    # When
    status, body = getattr(api, method)(f"/destinations/{created['id']}", {"name": "after", "description": "new"})
    # Then
    assert status == 200, body
    assert body["name"] == "after" and body["description"] == "new"
    assert body["config"] == created["config"]
    assert api.get("/destinations?name=before")[1]["models"] == []
    assert api.get("/destinations?name=after")[1]["models"][0]["id"] == created["id"]


def test_a_destination_read_back_can_be_sent_back_as_an_update(api):
    # Given
    created = make_destination(api, "roundtrip", config={"url": URL, **BEARER})
    shown = api.get(f"/destinations/{created['id']}")[1]
    # When
    status, body = api.put(f"/destinations/{created['id']}?include=config.auth", shown)
    # Then
    assert status == 200, body
    assert body["config"]["auth"] == {"token": "tok-secret"}


def test_an_update_can_switch_to_mock_api_when_it_gives_a_path(api):
    # Given
    created = make_destination(api, "switch", url=URL)
    # When
    status, body = api.patch(f"/destinations/{created['id']}", {"type": "MOCK_API", "config": {"path": "/m"}})
    # Then
    assert status == 200, body
    assert body["type"] == "MOCK_API" and body["config"]["path"] == "/m"


def test_invalid_updates_are_422_naming_the_field_and_change_nothing(api):
    # Given
    created = make_destination(api, "steady", url=URL)
    cases = [
        ({"config": {"http_timeout": 0}}, "config.http_timeout"),
        ({"config": {"url": "nope"}}, "config.url"),
        ({"config": {"rate_limit": 5}}, "config.rate_limit_period"),
        ({"type": "MOCK_API"}, "config.path"),
        ({"name": "has spaces"}, "name"),
    ]
    for payload, field in cases:
        # When
        status, body = api.patch(f"/destinations/{created['id']}", payload)
        # Then
        assert_error(status, body, 422, "validation_error")
        assert body["field"] == field, payload
    assert api.get(f"/destinations/{created['id']}")[1] == created


def test_renaming_to_a_taken_name_is_409(api):
    # Given
    make_destination(api, "taken")
    other = make_destination(api, "other")
    # When
    status, body = api.patch(f"/destinations/{other['id']}", {"name": "taken"})
    # Then
    assert_error(status, body, 409, "conflict")
    assert body["code"] == "RESOURCE_ALREADY_EXISTS"
    assert api.get(f"/destinations/{other['id']}")[1]["name"] == "other"


# ---- enable / disable --------------------------------------------------------------------------


@pytest.mark.parametrize("method", ["put", "post"])
def test_disable_sets_disabled_at_and_enable_clears_it(api, method, clock):
    # Given
    created = make_destination(api, "toggled")
    clock.advance(seconds=1)
    # When
    disabled_status, disabled = getattr(api, method)(f"/destinations/{created['id']}/disable")
    # Then
    assert disabled_status == 200, disabled
    assert disabled["disabled_at"] is not None
    assert api.get(f"/destinations/{created['id']}")[1]["disabled_at"] == disabled["disabled_at"]
    # When
    enabled_status, enabled = getattr(api, method)(f"/destinations/{created['id']}/enable")
    # Then
    assert enabled_status == 200, enabled
    assert enabled["disabled_at"] is None
    assert api.get(f"/destinations/{created['id']}")[1]["disabled_at"] is None


def test_disabling_twice_keeps_the_first_disabled_at(api, clock):
    # Given
    created = make_destination(api, "twice")
    first = api.put(f"/destinations/{created['id']}/disable")[1]
    clock.advance(minutes=5)
    # When
    status, second = api.put(f"/destinations/{created['id']}/disable")
    # Then
    assert status == 200
    assert second["disabled_at"] == first["disabled_at"]


# ---- delete and lookups ------------------------------------------------------------------------


def test_a_deleted_destination_is_gone_from_get_and_list(api):
    # Given
    kept = make_destination(api, "kept")
    doomed = make_destination(api, "doomed")
    # When
    status, body = api.delete(f"/destinations/{doomed['id']}")
    # Then
    assert status == 200
    assert body == {"id": doomed["id"]}
    status, body = api.get(f"/destinations/{doomed['id']}")
    assert_error(status, body, 404, "not_found")
    assert [d["id"] for d in api.get("/destinations")[1]["models"]] == [kept["id"]]
    assert api.delete(f"/destinations/{doomed['id']}")[0] == 404
    # And its name is free again
    assert make_destination(api, "doomed")["id"] != doomed["id"]


def test_a_source_id_is_not_a_destination(api):
    # Given
    source = make_source(api)
    # When
    status, body = api.get(f"/destinations/{source['id']}")
    # Then
    assert_error(status, body, 404, "not_found")


# ---- list --------------------------------------------------------------------------------------


def test_the_list_envelope_has_models_pagination_and_count(api):
    # Given
    make_destination(api, "only")
    # When
    status, body = api.get("/destinations")
    # Then
    assert status == 200
    assert body["count"] == 1 and names(body) == ["only"]
    assert body["pagination"] == {"order_by": "created_at", "dir": "desc", "limit": 100, "next": None, "prev": None}


@pytest.fixture(scope="class")
def three_destinations():
    """bravo, charlie and alpha created a second apart in that order; then bravo updated last."""
    with running_fasthook() as (client, clock):
        ids = {}
        for name in ("bravo", "charlie", "alpha"):
            ids[name] = make_destination(client, name)["id"]
            clock.advance(seconds=1)
        client.patch(f"/destinations/{ids['bravo']}", {"description": "touched"})
        yield client


class TestListOrder:
    @pytest.mark.parametrize(
        ("query", "expected"),
        [
            ("order_by=name&dir=asc", ["alpha", "bravo", "charlie"]),
            ("order_by=name&dir=desc", ["charlie", "bravo", "alpha"]),
            ("order_by=created_at&dir=asc", ["bravo", "charlie", "alpha"]),
            ("order_by=created_at&dir=desc", ["alpha", "charlie", "bravo"]),
            ("", ["alpha", "charlie", "bravo"]),
            ("order_by=updated_at&dir=asc", ["charlie", "alpha", "bravo"]),
            ("order_by=updated_at&dir=desc", ["bravo", "alpha", "charlie"]),
            ("order_by=name&dir=ASC", ["alpha", "bravo", "charlie"]),
        ],
    )
    def test_lists_sort_by_name_created_at_or_updated_at_in_either_direction(self, three_destinations, query, expected):
        # When
        status, body = three_destinations.get(f"/destinations?{query}")
        # Then
        assert status == 200, body
        assert names(body) == expected

    def test_a_cursor_from_another_ordering_is_400(self, three_destinations):
        # Given
        cursor = three_destinations.get("/destinations?limit=1&order_by=name")[1]["pagination"]["next"]
        # When
        status, body = three_destinations.get(f"/destinations?limit=1&order_by=created_at&cursor={cursor}")
        # Then
        assert_error(status, body, 400, "invalid_parameter")


@pytest.mark.parametrize(("order", "direction"), [("created_at", "asc"), ("created_at", "desc"), ("name", "desc")])
def test_pages_of_two_walk_five_destinations_without_gaps_and_prev_goes_back(api, order, direction):
    # Given
    for name in ("d3", "d1", "d5", "d2", "d4"):
        make_destination(api, name)
    listing = f"/destinations?order_by={order}&dir={direction}"
    everything = [d["id"] for d in api.get(listing)[1]["models"]]
    # When: walk forward with next
    pages, paginations = [], []
    status, body = api.get(f"{listing}&limit=2")
    while True:
        assert status == 200, body
        pages.append([d["id"] for d in body["models"]])
        paginations.append(body["pagination"])
        if body["pagination"]["next"] is None:
            break
        status, body = api.get(f"{listing}&limit=2&cursor={body['pagination']['next']}")
    # Then
    assert [len(p) for p in pages] == [2, 2, 1]
    assert [i for page in pages for i in page] == everything
    assert paginations[0]["prev"] is None
    # When: go back from the last page
    status, back = api.get(f"{listing}&limit=2&cursor={paginations[2]['prev']}")
    # Then
    assert status == 200
    assert [d["id"] for d in back["models"]] == pages[1]
    status, first = api.get(f"{listing}&limit=2&cursor={back['pagination']['prev']}")
    assert [d["id"] for d in first["models"]] == pages[0]
    assert first["pagination"]["prev"] is None


def test_lists_filter_by_disabled_type_and_name(api):
    # Given
    http_on = make_destination(api, "http-on")
    http_off = make_destination(api, "http-off")
    mock = make_destination(api, "mock-on", type="MOCK_API", config={"path": "/m"})
    api.put(f"/destinations/{http_off['id']}/disable")

    def ids(query: str) -> set[str]:
        status, body = api.get(f"/destinations?{query}")
        assert status == 200, body
        assert body["count"] == len(body["models"])
        return {d["id"] for d in body["models"]}

    # Then
    assert ids("disabled=true") == {http_off["id"]}
    assert ids("disabled=false") == {http_on["id"], mock["id"]}
    assert ids("type=MOCK_API") == {mock["id"]}
    assert ids("type=HTTP") == {http_on["id"], http_off["id"]}
    assert ids("type=HTTP&disabled=false") == {http_on["id"]}
    assert ids("name=http-on") == {http_on["id"]}
    assert ids("name=absent") == set()


# ---- prefixes ----------------------------------------------------------------------------------


class TestPrefixes:
    @pytest.mark.parametrize("prefix", ["", "/v1", "/api/control/v1"])
    def test_destination_routes_answer_under_every_control_prefix(self, shared, prefix):
        # Given
        client = shared.as_(shared.token, prefix=prefix)
        # When
        status, created = client.post("/destinations", {"name": unique_name("prefixed"), "config": {"url": URL}})
        # Then
        assert status == 201, created
        assert client.get(f"/destinations/{created['id']}") == (200, created)
        assert client.patch(f"/destinations/{created['id']}", {"description": "d"})[0] == 200
        assert client.post(f"/destinations/{created['id']}/disable")[0] == 200
        assert created["id"] in {d["id"] for d in client.get("/destinations?disabled=true")[1]["models"]}
        assert client.delete(f"/destinations/{created['id']}") == (200, {"id": created["id"]})
        assert client.get(f"/destinations/{created['id']}")[0] == 404
