"""Request and event metrics through the HTTP routes, on moto: zero-filled, aligned, and equal to the counts.

One world of records is written once for the module (the tests only read it): requests, events of
every status and ignored branches, spread over a few minutes of 2026-11-23 between 10:00 and 10:06,
plus one expired request and records just outside the window. Records are written through the same
record store the pipeline uses, so the metrics read exactly what production stores.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import urlencode

import pytest

from chalicelib import wiring
from chalicelib.adapters.memory import FixedClock
from chalicelib.domain.ids import Prefix, new_id
from chalicelib.domain.timefmt import iso
from tests.support.factories import make_connection, running_fasthook, stored_request

NOW = datetime(2026, 11, 23, 12, 0, 0, tzinfo=UTC)
T0 = datetime(2026, 11, 23, 10, 0, 0, tzinfo=UTC)
START, END = "2026-11-23T10:00:00.000Z", "2026-11-23T10:05:30.000Z"


def at(minutes: int = 0, seconds: float = 0) -> str:
    return iso(T0 + timedelta(minutes=minutes, seconds=seconds))


class World:
    """The demo team's records, written straight to the record store at chosen times."""

    def __init__(self, api: Any) -> None:
        self.api = api
        self.records = wiring.container().records
        self.team = api.get("/auth/me")[1]["team"]["id"]
        self.a = self._connection()
        self.b = self._connection()
        self.live_until = int((NOW + timedelta(days=30)).timestamp())

    def _connection(self) -> dict[str, Any]:
        made = make_connection(self.api)
        return {"id": made["id"], "source_id": made["source"]["id"], "destination_id": made["destination"]["id"]}

    def request(self, when: str, connection: dict[str, Any], status: str = "accepted", **fields: Any) -> dict[str, Any]:
        doc = stored_request(
            T0,
            **{
                "team_id": self.team,
                "source_id": connection["source_id"],
                "status": status,
                "rejection_cause": None if status == "accepted" else "VERIFICATION_FAILED",
                "verified": status == "accepted",
                "ingested_at": when,
                "expires_at": self.live_until,
                **fields,
            },
        )
        assert self.records.put_request(doc)
        return doc

    def event(self, when: str, request: dict[str, Any], connection: dict[str, Any], status: str, **fields: Any) -> None:
        doc = {
            "id": new_id(Prefix.EVENT),
            "team_id": self.team,
            "request_id": request["id"],
            "connection_id": connection["id"],
            "source_id": connection["source_id"],
            "destination_id": connection["destination_id"],
            "status": status,
            "attempts": 0,
            "next_trigger": "INITIAL",
            "next_attempt_at": when if status in ("QUEUED", "SCHEDULED") else None,
            "created_at": when,
            "updated_at": when,
            "batch_operation_id": None,
            "data": None,
            "expires_at": self.live_until,
            **fields,
        }
        assert self.records.put_event(doc)

    def ignored(self, when: str, request: dict[str, Any], connection: dict[str, Any], cause: str) -> None:
        doc = {
            "id": new_id(Prefix.IGNORED),
            "team_id": self.team,
            "request_id": request["id"],
            "connection_id": connection["id"],
            "cause": cause,
            "message": "not for this connection",
            "created_at": when,
            "expires_at": self.live_until,
        }
        assert self.records.put_ignored(doc)

    def get(self, path: str, params: dict[str, Any] | list[tuple[str, str]]) -> tuple[int, Any]:
        return self.api.get(f"{path}?{urlencode(params)}")


@pytest.fixture(scope="module")
def world() -> Iterator[World]:
    with running_fasthook(FixedClock(NOW)) as (client, _clock):
        w = World(client)
        a, b = w.a, w.b
        r1 = w.request(at(0), a)
        w.request(at(0, 59.999), a, "rejected")
        r3 = w.request(at(1), b, external_id="ord_123")
        w.request(at(2, 30.5), a, batch_operation_id="bch_01", is_retry=True, retry_kind="bulk")
        w.request(at(5), b, "rejected")
        w.request(at(5, 1), a, expires_at=int((NOW - timedelta(minutes=1)).timestamp()))  # expired: never counted
        w.request(at(0, -0.001), a)  # a millisecond before the window
        w.request(at(5, 30.001), b)  # a millisecond after it
        w.event(at(0, 10), r1, a, "SUCCESSFUL")
        w.event(at(0, 20), r1, a, "FAILED")
        w.event(at(1, 5), r3, b, "QUEUED")
        w.event(at(1, 6), r3, b, "QUEUED", lease_until=iso(NOW + timedelta(minutes=5)))  # a delivery in flight
        w.event(at(1, 7), r1, a, "SCHEDULED", lease_until=iso(NOW - timedelta(hours=1)))  # its worker died: queued
        w.event(at(3), r3, b, "HOLD")
        w.event(at(4), r1, a, "CANCELLED")
        w.event(at(4, 30), r1, a, "SUCCESSFUL", batch_operation_id="bch_01")
        w.event(at(6), r1, a, "SUCCESSFUL")  # after the window
        w.event(at(2), r1, a, "FAILED", expires_at=int((NOW - timedelta(seconds=1)).timestamp()))  # expired
        w.ignored(at(0, 30), r1, a, "FILTERED")
        w.ignored(at(2), r3, b, "DEDUPLICATED")
        w.ignored(at(7), r3, b, "FILTERED")  # after the window
        yield w


def window(**filters: str) -> dict[str, str]:
    return {"date_range[start]": START, "date_range[end]": END, "granularity": "1m", **filters}


def totals(body: dict[str, Any]) -> dict[str, int]:
    summed: dict[str, int] = {}
    for bucket in body["data"]:
        for name, value in bucket["metrics"].items():
            summed[name] = summed.get(name, 0) + value
    return summed


def count(world: World, path: str, **filters: str) -> int:
    status, body = world.get(path, {"from": START, "to": END, **filters})
    assert status == 200, body
    return body["count"]


# ---- shape, zero-fill and alignment --------------------------------------------------------------


def test_request_metrics_have_every_minute_of_the_range_zero_filled(world):
    # When
    status, body = world.get("/metrics/requests", window())
    # Then
    assert status == 200, body
    assert body["granularity"] == "1m"
    assert [b["time_bucket"] for b in body["data"]] == [at(m) for m in range(6)]
    assert [b["metrics"]["count"] for b in body["data"]] == [2, 1, 1, 0, 0, 1]
    assert [b["metrics"]["rejected_count"] for b in body["data"]] == [1, 0, 0, 0, 0, 1]
    assert body["data"][3]["metrics"] == {"count": 0, "accepted_count": 0, "rejected_count": 0}


def test_buckets_are_aligned_to_the_granularity_whatever_the_range_start(world):
    # When
    status, body = world.get(
        "/metrics/requests", {"date_range[start]": at(2, 17), "date_range[end]": at(7, 1), "granularity": "5m"}
    )
    # Then
    assert status == 200, body
    assert [b["time_bucket"] for b in body["data"]] == [at(0), at(5)]
    # Only records inside the range count, even in a bucket that starts before it.
    assert [b["metrics"]["count"] for b in body["data"]] == [1, 2]


def test_event_metrics_count_each_status_in_its_own_measure(world):
    # When
    status, body = world.get("/metrics/events", window())
    # Then
    assert status == 200, body
    assert totals(body) == {
        "count": 8,
        "delivered_count": 2,
        "failed_count": 1,
        "queued_count": 2,
        "processing_count": 1,
        "hold_count": 1,
        "ignored_count": 2,
    }
    assert body["data"][0]["metrics"] == {
        "count": 2,
        "delivered_count": 1,
        "failed_count": 1,
        "queued_count": 0,
        "processing_count": 0,
        "hold_count": 0,
        "ignored_count": 1,
    }


def test_measures_limit_what_each_bucket_holds(world):
    # When
    status, body = world.get(
        "/metrics/events", [*window().items(), ("measures[]", "count"), ("measures[]", "hold_count")]
    )
    # Then
    assert status == 200, body
    assert all(set(b["metrics"]) == {"count", "hold_count"} for b in body["data"])
    assert totals(body) == {"count": 8, "hold_count": 1}


def test_relative_times_are_read_against_now(world):
    # When
    status, body = world.get(
        "/metrics/requests", {"date_range[start]": "now-3h", "date_range[end]": "now", "granularity": "1h"}
    )
    # Then
    assert status == 200, body
    assert [b["time_bucket"] for b in body["data"]] == [iso(NOW - timedelta(hours=h)) for h in (3, 2, 1, 0)]
    assert [b["metrics"]["count"] for b in body["data"]] == [1, 6, 0, 0]


def test_granularity_defaults_to_one_hour(world):
    # When
    status, body = world.get("/metrics/events", {"date_range[start]": START, "date_range[end]": END})
    # Then
    assert status == 200, body
    assert body["granularity"] == "1h"
    assert [b["time_bucket"] for b in body["data"]] == [iso(T0)]


@pytest.mark.parametrize("prefix", ["", "/v1", "/api/control/v1"])
def test_metrics_answer_under_every_control_prefix(world, prefix):
    # When
    status, body = world.api.as_(world.api.token, prefix).get(f"/metrics/requests?{urlencode(window())}")
    # Then
    assert status == 200, body
    assert totals(body)["count"] == 5


# ---- the figures agree with the counts --------------------------------------------------------------


def test_request_metrics_sum_to_the_request_count_for_every_filter(world):
    # Given
    cases = [
        {},
        {"source_id": world.a["source_id"]},
        {"source_id": world.b["source_id"]},
        {"status": "accepted"},
        {"status": "rejected"},
        {"batch_operation_id": "bch_01"},
        {"q": "ord_1"},
        {"source_id": world.a["source_id"], "status": "rejected"},
        {"source_id": "src_01ARZ3NDEKTSV4RRFFQ69G5FAV"},
    ]
    for filters in cases:
        # When
        status, body = world.get("/metrics/requests", window(**filters))
        # Then
        assert status == 200, (filters, body)
        summed = totals(body)
        assert summed["count"] == count(world, "/requests/count", **filters), filters
        accepted = (
            0
            if filters.get("status") == "rejected"
            else count(world, "/requests/count", **{**filters, "status": "accepted"})
        )
        assert summed["accepted_count"] == accepted, filters
    assert totals(world.get("/metrics/requests", window(q="ord_1"))[1])["count"] == 1


@pytest.mark.parametrize(
    "status",
    [
        *("", "queued", "processing", "delivered", "failed", "ignored"),
        *("SCHEDULED", "QUEUED", "HOLD", "SUCCESSFUL", "FAILED", "CANCELLED", "PENDING", "IGNORED"),
    ],
)
def test_event_metrics_sum_to_the_event_count_in_both_status_vocabularies(world, status):
    # Given
    filters = {"status": status} if status else {}
    # When
    code, body = world.get("/metrics/events", window(**filters))
    # Then
    assert code == 200, body
    assert totals(body)["count"] == count(world, "/events/count", **filters)


def test_each_event_measure_equals_the_count_of_its_status(world):
    # When
    summed = totals(world.get("/metrics/events", window())[1])
    # Then
    for measure, status in [
        ("delivered_count", "delivered"),
        ("failed_count", "failed"),
        ("queued_count", "queued"),
        ("processing_count", "processing"),
        ("hold_count", "HOLD"),
        ("ignored_count", "ignored"),
    ]:
        assert summed[measure] == count(world, "/events/count", status=status), measure


def test_event_metrics_filters_agree_with_the_event_count(world):
    # Given
    cases = [
        {"connection_id": world.a["id"]},
        {"source_id": world.b["source_id"]},
        {"destination_id": world.a["destination_id"]},
        {"batch_operation_id": "bch_01"},
        {"connection_id": world.b["id"], "status": "ignored"},
        {"source_id": world.a["source_id"], "status": "delivered"},
        {"destination_id": "des_01ARZ3NDEKTSV4RRFFQ69G5FAV"},
    ]
    for filters in cases:
        # When
        status, body = world.get("/metrics/events", window(**filters))
        # Then
        assert status == 200, (filters, body)
        summed = totals(body)
        assert summed["count"] == count(world, "/events/count", **filters), filters
        if "status" not in filters:
            assert summed["ignored_count"] == count(world, "/events/count", **filters, status="ignored"), filters
    by_connection = totals(world.get("/metrics/events", window(connection_id=world.a["id"]))[1])
    assert by_connection["count"] == 5 and by_connection["ignored_count"] == 1


def test_event_metrics_search_by_request_id(world):
    # Given
    request_id = world.api.get("/events?" + urlencode({"from": START, "to": END, "status": "HOLD"}))[1]["models"][0][
        "request_id"
    ]
    # When
    status, body = world.get("/metrics/events", window(q=request_id))
    # Then
    assert status == 200, body
    assert totals(body)["count"] == count(world, "/events/count", q=request_id) == 3


# ---- bad input --------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("params", "named"),
    [
        ({"date_range[end]": END}, "date_range[start]"),
        ({"date_range[start]": START}, "date_range[end]"),
        ({"date_range[start]": "yesterday", "date_range[end]": END}, "date_range[start]"),
        ({"date_range[start]": END, "date_range[end]": START}, "after"),
        ({"date_range[start]": START, "date_range[end]": END, "granularity": "2m"}, "granularity"),
        ({"date_range[start]": START, "date_range[end]": END, "granularity": "1d"}, "granularity"),
        ({"date_range[start]": "now-1h", "date_range[end]": "now", "granularity": "1s"}, "more than 1000"),
        ({"date_range[start]": START, "date_range[end]": END, "measures[]": "hold_count"}, "measures[]"),
        ({"date_range[start]": START, "date_range[end]": END, "status": "delivered"}, "status"),
    ],
)
def test_bad_request_metrics_parameters_are_400_naming_the_problem(world, params, named):
    # When
    status, body = world.get("/metrics/requests", params)
    # Then
    assert status == 400, body
    assert named in body["message"]


def test_too_many_buckets_suggests_a_granularity_that_fits(world):
    # When
    status, body = world.get(
        "/metrics/events", {"date_range[start]": "now-1h", "date_range[end]": "now", "granularity": "1s"}
    )
    # Then
    assert status == 400, body
    assert "3601 buckets" in body["message"] and "granularity=5s fits" in body["message"]


def test_an_unknown_event_status_is_400(world):
    # When
    status, body = world.get("/metrics/events", window(status="lost"))
    # Then
    assert status == 400, body
    assert "status" in body["message"]


def test_metrics_need_a_token(world):
    # When
    status, body = world.api.as_(None).get(f"/metrics/events?{urlencode(window())}")
    # Then
    assert status == 401, body
