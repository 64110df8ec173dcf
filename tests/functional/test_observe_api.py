"""The observability API through the HTTP routes: requests, events, ignored branches and attempts.

Requests are ingested and routed by the real use cases against moto (ingest -> route), so the
records are exactly what production stores; the status variety a list needs (FAILED, HOLD, a
delivery in flight, ...) is written through the same record store the workers use.
"""

from __future__ import annotations

import base64
import json
from datetime import timedelta
from typing import Any
from urllib.parse import quote

import pytest

from chalicelib import wiring
from chalicelib.domain import messages
from chalicelib.domain.ids import Prefix, derived_id, new_id
from chalicelib.domain.timefmt import iso
from chalicelib.flow.ingest import Inbound, IngestLimits, accept_request
from chalicelib.flow.route import route_request
from tests.support.factories import make_connection, make_source, stored_request


class World:
    """The demo team's FastHook on moto, with helpers that store records as the pipeline does."""

    def __init__(self, api: Any, clock: Any) -> None:
        self.api, self.clock = api, clock
        self.deps = wiring.container()
        self.team = api.get("/auth/me")[1]["team"]["id"]

    def connection(self, **fields: Any) -> dict[str, Any]:
        """A new connection as the API shows it, plus the `source_id` / `destination_id` records carry."""
        made = make_connection(self.api, **fields)
        return {**made, "source_id": made["source"]["id"], "destination_id": made["destination"]["id"]}

    def ingest(
        self,
        source_id: str,
        body: bytes = b'{"type":"order.paid","n":1}',
        *,
        headers: dict[str, str] | None = None,
        path: str = "/orders",
        query: str = "x=1",
    ) -> str:
        """A provider call accepted by ingest; one second passes after it."""
        settings = self.deps.settings
        answer = accept_request(
            inbound=Inbound(source_id, "POST", path, query, headers or {"content-type": "application/json"}, body),
            records=self.deps.records,
            resources=self.deps.resources,
            payloads=self.deps.payloads,
            queues=self.deps.queues,
            clock=self.clock,
            limits=IngestLimits(settings.max_body_bytes, settings.inline_body_bytes, settings.retention_days),
        )
        assert answer.request_id, answer
        self.clock.advance(seconds=1)
        return answer.request_id

    def route(self, request_id: str) -> None:
        route_request(
            message=messages.RouteRequest(team_id=self.team, request_id=request_id),
            records=self.deps.records,
            resources=self.deps.resources,
            payloads=self.deps.payloads,
            queues=self.deps.queues,
            transformer=self.deps.transformer,
            routing=self.deps.routing,
            clock=self.clock,
        )

    def request(self, **fields: Any) -> dict[str, Any]:
        """A request stored directly, at the clock's time; one second passes after it."""
        doc = stored_request(self.clock.now(), **{"team_id": self.team, **fields})
        assert self.deps.records.put_request(doc)
        self.clock.advance(seconds=1)
        return doc

    def event(self, request: dict[str, Any], connection: dict[str, Any], status: str, **fields: Any) -> dict[str, Any]:
        """An event of `request` through `connection`, stored directly with `status`."""
        now = iso(self.clock.now())
        doc = {
            "id": derived_id(Prefix.EVENT, request["id"], connection["id"]),
            "team_id": self.team,
            "request_id": request["id"],
            "connection_id": connection["id"],
            "source_id": connection["source_id"],
            "destination_id": connection["destination_id"],
            "status": status,
            "attempts": 0,
            "next_trigger": "INITIAL",
            "next_attempt_at": now if status in ("QUEUED", "SCHEDULED") else None,
            "last_attempt_at": None,
            "successful_at": None,
            "response_status": None,
            "error_code": None,
            "created_at": now,
            "updated_at": now,
            "batch_operation_id": None,
            "data": None,
            "expires_at": request["expires_at"],
            **fields,
        }
        assert self.deps.records.put_event(doc)
        self.clock.advance(seconds=1)
        return doc

    def attempt(self, event: dict[str, Any], number: int, **fields: Any) -> dict[str, Any]:
        doc = {
            "id": new_id(Prefix.ATTEMPT),
            "team_id": event["team_id"],
            "event_id": event["id"],
            "request_id": event["request_id"],
            "connection_id": event["connection_id"],
            "destination_id": event["destination_id"],
            "attempt_number": number,
            "trigger": "INITIAL" if number == 1 else "AUTOMATIC",
            "status": "FAILED",
            "response_status": 500,
            "body": "try later",
            "error_code": None,
            "error_message": None,
            "requested_url": "https://receiver.example.test/hooks",
            "http_method": "POST",
            "delivery_latency": 3,
            "response_latency": 40,
            "created_at": iso(self.clock.now()),
            "expires_at": event["expires_at"],
            **fields,
        }
        self.deps.records.put_attempt(doc)
        self.clock.advance(seconds=1)
        return doc

    def every_page(self, path: str) -> tuple[list[str], int]:
        """Ids of every page of a list, following `next`, and how many pages it took."""
        seen: list[str] = []
        pages, url = 0, path
        while True:
            status, body = self.api.get(url)
            assert status == 200, body
            seen += [m["id"] for m in body["models"]]
            pages += 1
            if body["pagination"]["next"] is None:
                return seen, pages
            joiner = "&" if "?" in path else "?"
            url = f"{path}{joiner}cursor={body['pagination']['next']}"


@pytest.fixture()
def world(api, clock) -> World:
    return World(api, clock)


def ids(docs: list[dict[str, Any]]) -> list[str]:
    return [d["id"] for d in docs]


# ---- one request ------------------------------------------------------------------------------------


def test_a_request_shows_its_stored_data_with_a_json_body_parsed(world):
    # Given
    connection = world.connection()
    request_id = world.ingest(
        connection["source_id"], b'{"type":"order.paid","n":1}', headers={"content-type": "application/json"}
    )
    # When
    status, body = world.api.get(f"/requests/{request_id}")
    # Then
    assert status == 200, body
    assert body["id"] == request_id and body["status"] == "accepted" and body["source_id"] == connection["source_id"]
    assert body["data"] == {
        "method": "POST",
        "path": "/orders",
        "query": "x=1",
        "headers": {"content-type": "application/json"},
        "body": {"type": "order.paid", "n": 1},
    }
    assert "expires_at" not in body and "body" not in body


def test_a_large_body_is_read_back_from_the_payload_bucket_as_text(world):
    # Given
    source = make_source(world.api)
    text = "line of text\n" * 2000  # above the 8 KB kept inline
    request_id = world.ingest(source["id"], text.encode(), headers={"content-type": "text/plain"})
    assert world.deps.records.get_request(request_id)["body_key"]
    # When
    status, body = world.api.get(f"/requests/{request_id}")
    # Then
    assert status == 200
    assert body["data"]["body"] == text and "is_base64" not in body["data"]


def test_bytes_that_are_not_utf8_show_as_base64(world):
    # Given
    source = make_source(world.api)
    raw = b"\x00\xff\xfe binary"
    request_id = world.ingest(source["id"], raw, headers={"content-type": "application/octet-stream"})
    # When
    status, body = world.api.get(f"/requests/{request_id}")
    # Then
    assert status == 200
    assert body["data"]["is_base64"] is True
    assert base64.b64decode(body["data"]["body"]) == raw


@pytest.mark.parametrize(
    "path",
    [
        "/requests/req_01ARZ3NDEKTSV4RRFFQ69G5FAV",
        "/requests/not-an-id",
        "/requests/evt_01ARZ3NDEKTSV4RRFFQ69G5FAV",
        "/requests/req_01ARZ3NDEKTSV4RRFFQ69G5FAV/events",
        "/requests/nope/ignored_events",
        "/events/evt_01ARZ3NDEKTSV4RRFFQ69G5FAV",
        "/events/req_01ARZ3NDEKTSV4RRFFQ69G5FAV",
        "/attempts/att_01ARZ3NDEKTSV4RRFFQ69G5FAV",
        "/attempts/%20",
    ],
)
def test_unknown_and_malformed_ids_are_404(world, path):
    # When
    status, body = world.api.get(path)
    # Then
    assert status == 404, body
    assert body["error"] == "not_found"


def test_another_teams_request_event_and_attempt_are_404_and_never_listed(world):
    # Given
    connection = world.connection()
    foreign_team = new_id(Prefix.TEAM)
    request = world.request(team_id=foreign_team)
    event = world.event(request, connection, "FAILED", team_id=foreign_team)
    attempt = world.attempt(event, 1)
    # When
    answers = [world.api.get(p)[0] for p in (f"/requests/{request['id']}", f"/events/{event['id']}")]
    answers.append(world.api.get(f"/attempts/{attempt['id']}")[0])
    answers.append(world.api.get(f"/requests/{request['id']}/events")[0])
    listed = [world.api.get(p)[1]["count"] for p in ("/requests", "/events", f"/attempts?event_id={event['id']}")]
    # Then
    assert answers == [404, 404, 404, 404]
    assert listed == [0, 0, 0]


def test_an_expired_request_is_gone_for_readers_before_ttl_deletes_it(world):
    # Given
    expired = world.request(expires_at=int(world.clock.now().timestamp()) - 1)
    live = world.request()
    # When
    status, _ = world.api.get(f"/requests/{expired['id']}")
    listed = world.api.get("/requests")[1]
    counted = world.api.get("/requests/count")[1]
    # Then
    assert status == 404
    assert ids(listed["models"]) == [live["id"]]
    assert counted == {"count": 1}


# ---- the children of a request ----------------------------------------------------------------------


def test_routing_makes_events_and_ignored_branches_that_the_request_lists(world):
    # Given
    delivered = world.connection()
    source = {"id": delivered["source_id"]}
    filtered = world.connection(source=source, rules=[{"type": "filter", "body": {"type": "never"}}])
    request_id = world.ingest(delivered["source_id"])
    world.route(request_id)
    # When
    _, events = world.api.get(f"/requests/{request_id}/events")
    _, ignored = world.api.get(f"/requests/{request_id}/ignored_events")
    _, as_events = world.api.get(f"/requests/{request_id}/events?status=IGNORED")
    _, request = world.api.get(f"/requests/{request_id}")
    # Then
    assert [(e["webhook_id"], e["status"]) for e in events["models"]] == [(delivered["id"], "QUEUED")]
    assert events["count"] == 1 and set(events["pagination"]) == {"order_by", "dir", "limit", "next", "prev"}
    assert [(i["connection_id"], i["cause"]) for i in ignored["models"]] == [(filtered["id"], "FILTERED")]
    assert ignored["models"][0]["request_id"] == request_id
    shown = as_events["models"][0]
    assert shown["status"] == "IGNORED" and shown["cause"] == "FILTERED"
    assert shown["webhook_id"] == filtered["id"] and shown["destination_id"] == filtered["destination_id"]
    assert request["events_count"] == 1 and request["ignored_count"] == 1


@pytest.mark.parametrize(
    ("status", "expected"),
    [
        ("PENDING", {"SCHEDULED", "QUEUED", "QUEUED-leased"}),
        ("QUEUED", {"QUEUED", "QUEUED-leased"}),
        ("SCHEDULED", {"SCHEDULED"}),
        ("HOLD", {"HOLD"}),
        ("SUCCESSFUL", {"SUCCESSFUL"}),
        ("FAILED", {"FAILED"}),
        ("CANCELLED", {"CANCELLED"}),
        ("queued", {"SCHEDULED", "QUEUED"}),
        ("processing", {"QUEUED-leased"}),
        ("delivered", {"SUCCESSFUL"}),
        ("failed", {"FAILED"}),
        ("", {"SCHEDULED", "QUEUED", "QUEUED-leased", "HOLD", "SUCCESSFUL", "FAILED", "CANCELLED"}),
    ],
)
def test_a_requests_events_filter_by_either_status_vocabulary(world, status, expected):
    # Given
    request = world.request()
    labels = {}
    for label in ("SCHEDULED", "QUEUED", "QUEUED-leased", "HOLD", "SUCCESSFUL", "FAILED", "CANCELLED"):
        event = world.event(request, world.connection(), label.split("-")[0])
        labels[event["id"]] = label
    leased = next(eid for eid, label in labels.items() if label == "QUEUED-leased")
    until = iso(world.clock.now() + timedelta(minutes=5))
    assert world.deps.records.lease_event(leased, lease_id="l1", now=iso(world.clock.now()), until=until)
    # When
    code, body = world.api.get(f"/requests/{request['id']}/events?status={status}")
    # Then
    assert code == 200, body
    assert {labels[m["id"]] for m in body["models"]} == expected


def test_an_unknown_event_status_is_a_400_that_names_the_values(world):
    # Given
    request = world.request()
    # When
    status, body = world.api.get(f"/requests/{request['id']}/events?status=LOST")
    # Then
    assert status == 400
    assert "PENDING" in body["message"] and "delivered" in body["message"]


# ---- one event ------------------------------------------------------------------------------------


def test_an_event_shows_its_transformed_data_or_else_its_requests(world):
    # Given
    connection = world.connection()
    request_id = world.ingest(connection["source_id"], b'{"n":1}')
    request = world.deps.records.get_request(request_id)
    plain = world.event(request, connection, "SUCCESSFUL")
    transformed_data = {
        "method": "PUT",
        "path": "/changed",
        "query": "",
        "headers": {"content-type": "application/json"},
        "body": b'{"n":2}',
        "body_key": None,
    }
    transformed = world.event(request, world.connection(), "FAILED", data=transformed_data)
    # When
    _, shown_plain = world.api.get(f"/events/{plain['id']}")
    _, shown_transformed = world.api.get(f"/events/{transformed['id']}")
    # Then
    assert shown_plain["data"]["body"] == {"n": 1} and shown_plain["data"]["path"] == "/orders"
    assert shown_transformed["data"] == {
        "method": "PUT",
        "path": "/changed",
        "query": "",
        "headers": {"content-type": "application/json"},
        "body": {"n": 2},
    }
    assert shown_plain["webhook_id"] == connection["id"] and shown_plain["status"] == "SUCCESSFUL"
    assert "lease_id" not in shown_plain and "expires_at" not in shown_plain


# ---- attempts ---------------------------------------------------------------------------------------


def test_attempts_of_several_events_list_by_created_at_in_either_direction(world):
    # Given
    request = world.request()
    first = world.event(request, world.connection(), "FAILED")
    second = world.event(request, world.connection(), "SUCCESSFUL")
    other = world.event(request, world.connection(), "FAILED")
    a1 = world.attempt(first, 1)
    b1 = world.attempt(second, 1, status="SUCCESSFUL", response_status=200)
    a2 = world.attempt(first, 2)
    world.attempt(other, 1)
    # When
    _, desc = world.api.get(f"/attempts?event_id={first['id']}&event_id={second['id']}&order_by=created_at&dir=desc")
    _, asc = world.api.get(f"/attempts?event_id[]={first['id']}&event_id[]={second['id']}&dir=asc")
    _, one = world.api.get(f"/attempts/{a2['id']}")
    # Then
    assert ids(desc["models"]) == [a2["id"], b1["id"], a1["id"]]
    assert ids(asc["models"]) == [a1["id"], b1["id"], a2["id"]]
    assert desc["pagination"]["order_by"] == "created_at" and desc["count"] == 3
    assert one["attempt_number"] == 2 and one["trigger"] == "AUTOMATIC" and one["body"] == "try later"
    assert one["requested_url"] == "https://receiver.example.test/hooks" and "expires_at" not in one


def test_attempts_page_through_with_a_cursor(world):
    # Given
    event = world.event(world.request(), world.connection(), "FAILED")
    made = [world.attempt(event, n) for n in range(1, 8)]
    # When
    seen, pages = world.every_page(f"/attempts?event_id={event['id']}&dir=asc&limit=3")
    # Then
    assert seen == ids(made) and pages == 3


def test_attempts_reject_another_order_by(world):
    # When
    status, body = world.api.get("/attempts?event_id=evt_x&order_by=name")
    # Then
    assert status == 400 and "order_by" in body["message"]


# ---- the request list -------------------------------------------------------------------------------


def test_requests_page_newest_first_through_several_pages_and_the_count_matches(world):
    # Given
    made = [world.request() for _ in range(23)]
    # When
    newest_first, pages = world.every_page("/requests?limit=10")
    oldest_first, _ = world.every_page("/requests?limit=7&dir=asc")
    _, counted = world.api.get("/requests/count")
    # Then
    assert newest_first == list(reversed(ids(made))) and pages == 3
    assert oldest_first == ids(made)
    assert counted == {"count": 23}


def test_a_page_boundary_stays_put_while_new_requests_arrive(world):
    # Given
    made = [world.request() for _ in range(6)]
    _, first = world.api.get("/requests?limit=3")
    # When
    [world.request() for _ in range(4)]
    _, second = world.api.get(f"/requests?limit=3&cursor={first['pagination']['next']}")
    # Then
    assert ids(first["models"]) + ids(second["models"]) == list(reversed(ids(made)))


def test_a_prev_cursor_goes_back_to_the_page_before(world):
    # Given
    [world.request() for _ in range(7)]
    _, first = world.api.get("/requests?limit=3")
    _, second = world.api.get(f"/requests?limit=3&cursor={first['pagination']['next']}")
    # When
    _, back = world.api.get(f"/requests?limit=3&cursor={second['pagination']['prev']}")
    # Then
    assert first["pagination"]["prev"] is None
    assert ids(back["models"]) == ids(first["models"])


def test_request_filters_each_narrow_the_list_and_the_count_agrees(world):
    # Given
    connection = world.connection()
    source = connection["source_id"]
    paid = world.request(source_id=source, external_id="evt_stripe_paid_1")
    rejected = world.request(source_id=source, status="rejected", verified=False)
    replay = world.request(source_id=source, is_retry=True, retry_kind="bulk", batch_operation_id="bch_1")
    elsewhere = world.request(external_id="evt_stripe_other")
    cases = {
        f"source_id={source}": [replay, rejected, paid],
        f"connection_id={connection['id']}": [replay, rejected, paid],
        "status=rejected": [rejected],
        "status=ACCEPTED&verified=true": [elsewhere, replay, paid],
        "verified=false": [rejected],
        "is_retry=true": [replay],
        "retry_kind=bulk": [replay],
        "batch_operation_id=bch_1": [replay],
        f"q={rejected['id']}": [rejected],
        "q=evt_stripe": [elsewhere, paid],
        "search_term=evt_stripe_paid": [paid],
        f"source_id={source}&q=evt_stripe": [paid],
        "connection_id=web_01ARZ3NDEKTSV4RRFFQ69G5FAV": [],
    }
    for query, expected in cases.items():
        # When
        status, listed = world.api.get(f"/requests?{query}")
        _, counted = world.api.get(f"/requests/count?{query}")
        # Then
        assert status == 200, (query, listed)
        assert ids(listed["models"]) == ids(expected), query
        assert counted == {"count": len(expected)}, query


def test_from_and_to_take_iso_and_relative_times(world):
    # Given
    old = world.request()
    world.clock.advance(hours=2)
    recent = world.request()
    start = iso(world.clock.now() - timedelta(hours=3))
    # When
    _, last_hour = world.api.get("/requests?from=now-1h")
    _, before = world.api.get("/requests?to=now-1h")
    _, iso_window = world.api.get(f"/requests?from={quote(start)}&to={quote(old['ingested_at'])}")
    _, ingested = world.api.get("/requests/count?ingested_at[gte]=now-1h&ingested_at[lte]=now")
    # Then
    assert ids(last_hour["models"]) == [recent["id"]]
    assert ids(before["models"]) == [old["id"]]
    assert ids(iso_window["models"]) == [old["id"]]
    assert ingested == {"count": 1}


def test_include_data_adds_each_requests_stored_data(world):
    # Given
    source = make_source(world.api)
    world.ingest(source["id"], b'{"k":"v"}')
    # When
    _, plain = world.api.get("/requests")
    _, with_data = world.api.get("/requests?include=data")
    # Then
    assert "data" not in plain["models"][0]
    assert with_data["models"][0]["data"]["body"] == {"k": "v"}


@pytest.mark.parametrize(
    "query",
    [
        "from=yesterday",
        "to=now-1x",
        "from=now&to=now-1h",
        "cursor=not-a-cursor",
        "cursor=" + base64.urlsafe_b64encode(json.dumps({"p": 1}).encode()).decode(),
        "limit=101",
        "limit=0",
        "dir=sideways",
        "status=queued",
        "verified=maybe",
    ],
)
def test_bad_parameters_are_400_that_name_them(world, query):
    # When
    status, body = world.api.get(f"/requests?{query}")
    # Then
    assert status == 400, body
    assert body["error"] == "invalid_parameter"


def test_a_cursor_from_another_query_is_a_400(world):
    # Given
    [world.request() for _ in range(3)]
    _, first = world.api.get("/requests?limit=1&status=accepted")
    # When
    status, body = world.api.get(f"/requests?limit=1&status=rejected&cursor={first['pagination']['next']}")
    events_status, _ = world.api.get(f"/events?limit=1&cursor={first['pagination']['next']}")
    # Then
    assert status == 400 and "cursor" in body["message"]
    assert events_status == 400


# ---- the event list ---------------------------------------------------------------------------------


@pytest.fixture()
def fleet(world) -> dict[str, Any]:
    """Events of every status over two connections, a delivery in flight, and an ignored branch."""
    one, two = world.connection(), world.connection()
    request = world.request(source_id=one["source_id"])
    made = {
        "scheduled": world.event(request, one, "SCHEDULED"),
        "queued": world.event(request, two, "QUEUED"),
        "hold": world.event(world.request(), one, "HOLD"),
        "successful": world.event(world.request(), one, "SUCCESSFUL"),
        "failed": world.event(world.request(), two, "FAILED", batch_operation_id="bch_9"),
        "cancelled": world.event(world.request(), two, "CANCELLED"),
        "leased": world.event(world.request(), one, "QUEUED"),
    }
    until = iso(world.clock.now() + timedelta(minutes=5))
    assert world.deps.records.lease_event(made["leased"]["id"], lease_id="l", now=iso(world.clock.now()), until=until)
    filtered = world.connection(source={"id": one["source_id"]}, rules=[{"type": "filter", "body": {"x": "never"}}])
    request_id = world.ingest(one["source_id"])
    world.route(request_id)
    routed = world.deps.records.events_of_request(request_id)
    ignored = world.deps.records.ignored_of_request(request_id)
    return {"one": one, "two": two, "filtered": filtered, "routed": routed, "ignored": ignored, **made}


def test_events_filter_by_each_status_vocabulary_and_by_ids_and_the_count_agrees(world, fleet):
    # Given
    one, two = fleet["one"], fleet["two"]
    routed = [e["id"] for e in fleet["routed"]]  # QUEUED events of every connection of source one
    ignored = [i["id"] for i in fleet["ignored"]]
    cases = {
        "status=queued": ["scheduled", "queued", *routed],
        "status=processing": ["leased"],
        "status=delivered": ["successful"],
        "status=failed": ["failed"],
        "status=ignored": ignored,
        "status=IGNORED": ignored,
        "status=PENDING": ["scheduled", "queued", "leased", *routed],
        "status=QUEUED": ["queued", "leased", *routed],
        "status=SCHEDULED": ["scheduled"],
        "status=HOLD": ["hold"],
        "status=SUCCESSFUL": ["successful"],
        "status=FAILED": ["failed"],
        "status=CANCELLED": ["cancelled"],
        f"connection_id={two['id']}": ["queued", "failed", "cancelled"],
        f"webhook_id={two['id']}&status=failed": ["failed"],
        f"destination_id={one['destination_id']}": ["scheduled", "hold", "successful", "leased", *routed],
        f"source_id={two['source_id']}": ["queued", "failed", "cancelled"],
        "batch_operation_id=bch_9": ["failed"],
        f"q={fleet['hold']['id']}": ["hold"],
        f"q={fleet['scheduled']['request_id']}": ["scheduled", "queued"],
        f"status=ignored&connection_id={fleet['filtered']['id']}": ignored,
        f"status=ignored&source_id={two['source_id']}": [],
    }
    for query, names in cases.items():
        expected = sorted(fleet[n]["id"] if n in fleet else n for n in names)
        # When
        status, listed = world.api.get(f"/events?{query}")
        _, counted = world.api.get(f"/events/count?{query}")
        # Then
        assert status == 200, (query, listed)
        assert sorted(ids(listed["models"])) == expected, query
        assert counted == {"count": len(expected)}, query


def test_ignored_branches_in_the_event_list_look_like_events(world, fleet):
    # When
    _, listed = world.api.get("/events?status=ignored")
    # Then
    [shown] = listed["models"]
    assert shown["status"] == "IGNORED" and shown["cause"] == "FILTERED"
    assert shown["webhook_id"] == fleet["filtered"]["id"]
    assert shown["source_id"] == fleet["one"]["source_id"]


def test_events_page_newest_first_without_duplicates_or_gaps(world, fleet):
    # Given
    _, everything = world.api.get("/events")
    # When
    seen, pages = world.every_page("/events?limit=2")
    # Then
    assert seen == ids(everything["models"]) and len(seen) == 7 + len(fleet["routed"])
    assert len(set(seen)) == len(seen) and pages == (len(seen) + 1) // 2
    created = [m["created_at"] for m in everything["models"]]
    assert created == sorted(created, reverse=True)
