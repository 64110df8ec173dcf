"""The record store's team timelines: the fake and DynamoDB page, filter and count alike.

Each test runs against MemoryRecordStore and DynamoRecordStore on moto (the `records` fixture),
except the two about DynamoDB itself: the read bound of one list call, and that no read ever Scans.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest

from chalicelib.domain.ids import Prefix, new_id
from chalicelib.domain.statuses import EventStatus
from chalicelib.domain.timefmt import iso
from chalicelib.ports import TimelineQuery
from tests.contract.test_record_store import (
    START,
    TEAM,
    a_request,
    an_attempt,
    an_event,
    an_ignored,
    at,
    ids,
)

NOW = START + timedelta(days=1)
WHOLE_DAY = {"start": at(0), "end": at(86_399), "now": NOW}


def window(**fields: Any) -> TimelineQuery:
    return TimelineQuery(**{**WHOLE_DAY, **fields})


def stored_requests(records, count: int, **fields: Any) -> list[dict[str, Any]]:
    """`count` requests one second apart, oldest first."""
    made = [a_request(ingested_at=at(i), **fields) for i in range(count)]
    for request in made:
        assert records.put_request(request)
    return made


def every_page(records, kind: str, query: TimelineQuery) -> tuple[list[str], int]:
    """Ids of every page read through `resume`, and how many pages it took."""
    seen: list[str] = []
    pages, after = 0, None
    while True:
        page = records.query_timeline(TEAM, kind, TimelineQuery(**{**query.__dict__, "after": after}))
        seen += ids(page.items)
        pages += 1
        if page.resume is None:
            return seen, pages
        after = page.resume


def test_a_teams_requests_come_newest_first_and_page_through_without_gaps_or_duplicates(records):
    # Given
    made = stored_requests(records, 7)
    # When
    seen, pages = every_page(records, "REQ", window(limit=3))
    # Then
    assert seen == [r["id"] for r in reversed(made)]
    assert pages == 3


def test_ascending_pages_run_oldest_first_and_the_window_bounds_are_inclusive(records):
    # Given
    made = stored_requests(records, 6)
    # When
    seen, _ = every_page(records, "REQ", window(start=at(1), end=at(4), ascending=True, limit=2))
    # Then
    assert seen == [r["id"] for r in made[1:5]]


def test_a_full_last_page_says_nothing_follows(records):
    # Given
    stored_requests(records, 4)
    # When
    page = records.query_timeline(TEAM, "REQ", window(limit=4))
    # Then
    assert len(page.items) == 4 and page.resume is None


def test_field_filters_match_any_of_their_values_and_all_filters_at_once(records):
    # Given
    source = new_id(Prefix.SOURCE)
    accepted = stored_requests(records, 2, source_id=source)
    rejected = stored_requests(records, 2, source_id=source, status="rejected", verified=False)
    stored_requests(records, 2)  # another source
    # When
    of_source = records.query_timeline(TEAM, "REQ", window(fields=(("source_id", (source,)),)))
    unverified = records.query_timeline(
        TEAM, "REQ", window(fields=(("source_id", (source,)), ("verified", (False,)), ("status", ("rejected",))))
    )
    either = records.count_timeline(TEAM, "REQ", window(fields=(("status", ("accepted", "rejected")),)))
    # Then
    assert sorted(ids(of_source.items)) == sorted(ids(accepted + rejected))
    assert sorted(ids(unverified.items)) == sorted(ids(rejected))
    assert either == 6


def test_search_matches_an_exact_id_or_an_external_id_prefix(records):
    # Given
    first = a_request(external_id="evt_stripe_123")
    second = a_request(external_id="evt_stripe_456", ingested_at=at(1))
    other = a_request(external_id="ch_999", ingested_at=at(2))
    for request in (first, second, other):
        records.put_request(request)
    search = {"search_exact": ("id",), "search_prefix": ("external_id",)}
    # When
    by_prefix = records.query_timeline(TEAM, "REQ", window(search="evt_stripe", **search))
    by_id = records.query_timeline(TEAM, "REQ", window(search=other["id"], **search))
    # Then
    assert ids(by_prefix.items) == [second["id"], first["id"]]
    assert ids(by_id.items) == [other["id"]]


def test_in_flight_splits_pending_events_by_a_live_lease(records):
    # Given
    waiting = an_event(status=EventStatus.QUEUED)
    leased = an_event(status=EventStatus.QUEUED)
    lapsed = an_event(status=EventStatus.SCHEDULED)
    for event in (waiting, leased, lapsed):
        records.put_event(event)
    records.lease_event(leased["id"], lease_id="l1", now=at(0), until=iso(NOW + timedelta(minutes=1)))
    records.lease_event(lapsed["id"], lease_id="l2", now=at(0), until=at(60))
    pending = (("status", ("SCHEDULED", "QUEUED")),)
    # When
    in_flight = records.query_timeline(TEAM, "EVT", window(fields=pending, in_flight=True))
    not_in_flight = records.query_timeline(TEAM, "EVT", window(fields=pending, in_flight=False))
    # Then
    assert ids(in_flight.items) == [leased["id"]]
    assert sorted(ids(not_in_flight.items)) == sorted([waiting["id"], lapsed["id"]])


def test_expired_records_are_neither_listed_nor_counted(records):
    # Given
    live = a_request()
    expired = a_request(ingested_at=at(1), expires_at=int(START.timestamp()))
    records.put_request(live)
    records.put_request(expired)
    # When
    page = records.query_timeline(TEAM, "REQ", window())
    total = records.count_timeline(TEAM, "REQ", window())
    # Then
    assert ids(page.items) == [live["id"]]
    assert total == 1


def test_another_teams_records_never_appear(records):
    # Given
    mine = a_request()
    theirs = a_request(team_id=new_id(Prefix.TEAM), ingested_at=at(1))
    records.put_request(mine)
    records.put_request(theirs)
    # When
    page = records.query_timeline(TEAM, "REQ", window())
    # Then
    assert ids(page.items) == [mine["id"]]


def test_events_ignored_branches_and_attempts_have_timelines_of_their_own(records):
    # Given
    request = a_request()
    records.put_request(request)
    event = an_event(request)
    records.put_event(event)
    ignored = an_ignored(request)
    records.put_ignored(ignored)
    attempt = an_attempt(event)
    records.put_attempt(attempt)
    # When
    kinds = {kind: ids(records.query_timeline(TEAM, kind, window()).items) for kind in ("REQ", "EVT", "IGN", "ATT")}
    # Then
    assert kinds == {"REQ": [request["id"]], "EVT": [event["id"]], "IGN": [ignored["id"]], "ATT": [attempt["id"]]}


def test_the_count_is_the_length_of_every_page_together(records):
    # Given
    stored_requests(records, 5, status="rejected")
    stored_requests(records, 4)
    query = window(fields=(("status", ("accepted",)),), limit=3)
    # When
    seen, _ = every_page(records, "REQ", query)
    total = records.count_timeline(TEAM, "REQ", query)
    # Then
    assert total == len(seen) == 4


# ---- DynamoDB only ---------------------------------------------------------------------------------


@pytest.fixture()
def dynamo(aws):
    """A boto3 DynamoDB client on moto, and a records store that reads at most one page of two items per call."""
    import boto3

    from chalicelib.adapters.dynamo.records import DynamoRecordStore

    client = boto3.client("dynamodb")
    return client, DynamoRecordStore(client, aws["FASTHOOK_RECORDS_TABLE"], timeline_pages=1, timeline_page_items=2)


def test_a_rare_filter_answers_a_partial_page_with_a_resume_position_instead_of_reading_on(dynamo):
    # Given
    _, records = dynamo
    made = stored_requests(records, 9)
    rare = [made[1]["id"], made[7]["id"]]
    query = window(fields=(("id", tuple(rare)),), limit=5)
    # When
    first = records.query_timeline(TEAM, "REQ", query)
    seen, pages = every_page(records, "REQ", query)
    # Then
    assert len(first.items) < 5 and first.resume is not None
    assert seen == [made[7]["id"], made[1]["id"]]
    assert pages > 2


def test_no_read_of_the_record_store_ever_scans(dynamo):
    # Given
    client, records = dynamo
    operations: list[str] = []
    client.meta.events.register("before-call.dynamodb.*", lambda model, **_: operations.append(model.name))
    request = stored_requests(records, 3)[0]
    event = an_event(request)
    records.put_event(event)
    records.put_ignored(an_ignored(request))
    records.put_attempt(an_attempt(event))
    # When
    for kind in ("REQ", "EVT", "IGN", "ATT"):
        records.query_timeline(TEAM, kind, window(limit=1, search="x", search_exact=("id",)))
        records.count_timeline(TEAM, kind, window(fields=(("status", ("accepted",)),)))
    records.get_request(request["id"])
    records.events_of_request(request["id"])
    records.ignored_of_request(request["id"])
    records.attempts_of_event(event["id"])
    records.due_events(before=at(3600), limit=10)
    records.held_events(event["connection_id"], limit=10)
    # Then
    assert "Query" in operations
    assert "Scan" not in operations
