"""The record store contract: the fake and DynamoDB agree on every condition the pipeline relies on.

Each test runs against MemoryRecordStore and against DynamoRecordStore on moto (the `records`
fixture). The S3 and SQS adapters have no fake-parity question, so their tests at the end run on moto.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from functools import partial
from typing import Any

import pytest

from chalicelib.domain.errors import NotFoundError
from chalicelib.domain.ids import Prefix, derived_id, new_id
from chalicelib.domain.statuses import AttemptStatus, AttemptTrigger, EventStatus, IgnoredCause
from chalicelib.domain.timefmt import iso
from tests.support.factories import stored_request

TEAM = new_id(Prefix.TEAM)
SOURCE = new_id(Prefix.SOURCE)
DESTINATION = new_id(Prefix.DESTINATION)
START = datetime(2026, 4, 17, tzinfo=UTC)
EXPIRES = int((START + timedelta(days=30)).timestamp())
PENDING = (EventStatus.SCHEDULED, EventStatus.QUEUED)
NOT_LEASABLE = (EventStatus.HOLD, EventStatus.SUCCESSFUL, EventStatus.FAILED, EventStatus.CANCELLED)


def at(seconds: float = 0) -> str:
    """The ISO time `seconds` after the start of every test's day."""
    return iso(START + timedelta(seconds=seconds))


def a_request(**fields: Any) -> dict[str, Any]:
    # A path, query, header and a body that is not UTF-8, so a round trip through the store shows them all.
    return stored_request(
        START,
        **{
            "team_id": TEAM,
            "source_id": SOURCE,
            "path": "/a/b",
            "query": "x=1",
            "headers": {"content-type": "application/json", "x-count": "3"},
            "body": b'{"n": 1}\x00\xff',
            "body_size": 10,
            **fields,
        },
    )


def an_event(
    request: dict[str, Any] | None = None,
    *,
    connection_id: str | None = None,
    status: EventStatus = EventStatus.QUEUED,
    **fields: Any,
) -> dict[str, Any]:
    request = request or a_request()
    connection_id = connection_id or new_id(Prefix.CONNECTION)
    return {
        "id": derived_id(Prefix.EVENT, request["id"], connection_id),
        "team_id": TEAM,
        "request_id": request["id"],
        "connection_id": connection_id,
        "source_id": SOURCE,
        "destination_id": DESTINATION,
        "status": status.value,
        "attempts": 0,
        "next_trigger": AttemptTrigger.INITIAL.value,
        "next_attempt_at": at() if status in PENDING else None,
        "last_attempt_at": None,
        "successful_at": None,
        "response_status": None,
        "error_code": None,
        "created_at": at(),
        "updated_at": at(),
        "batch_operation_id": None,
        "data": None,
        "expires_at": EXPIRES,
        **fields,
    }


def an_ignored(request: dict[str, Any], **fields: Any) -> dict[str, Any]:
    connection_id = fields.pop("connection_id", new_id(Prefix.CONNECTION))
    return {
        "id": derived_id(Prefix.IGNORED, request["id"], connection_id),
        "team_id": TEAM,
        "request_id": request["id"],
        "connection_id": connection_id,
        "cause": IgnoredCause.FILTERED.value,
        "message": "body.type did not match",
        "created_at": at(),
        "expires_at": EXPIRES,
        **fields,
    }


def an_attempt(event: dict[str, Any], number: int = 1, **fields: Any) -> dict[str, Any]:
    return {
        "id": new_id(Prefix.ATTEMPT),
        "team_id": TEAM,
        "event_id": event["id"],
        "request_id": event["request_id"],
        "connection_id": event["connection_id"],
        "destination_id": DESTINATION,
        "attempt_number": number,
        "trigger": AttemptTrigger.INITIAL.value,
        "status": AttemptStatus.FAILED.value,
        "response_status": 500,
        "body": "oops",
        "error_code": None,
        "error_message": None,
        "requested_url": "https://receiver.example.test/hooks/a/b?x=1",
        "http_method": "POST",
        "delivery_latency": 12,
        "response_latency": 340,
        "created_at": at(number),
        "expires_at": EXPIRES,
        **fields,
    }


def stored_event(records, **fields: Any) -> dict[str, Any]:
    event = an_event(**fields)
    assert records.put_event(event)
    return event


def ids(docs: list[dict[str, Any]]) -> list[str]:
    return [doc["id"] for doc in docs]


def at_once(*calls: Callable[[], Any]) -> list[Any]:
    """Run the calls in threads released together; their results in call order."""
    start = threading.Barrier(len(calls))
    results: list[Any] = [None] * len(calls)

    def run(slot: int) -> None:
        start.wait()
        results[slot] = calls[slot]()

    workers = [threading.Thread(target=run, args=(slot,)) for slot in range(len(calls))]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join()
    return results


# ---- round trips and replayed writes -------------------------------------------------------------


def test_a_request_reads_back_exactly_with_its_bytes_body_and_empty_fields(records):
    # Given
    request = a_request(retry_kind=None, external_id=None)
    # When
    stored = records.put_request(request)
    # Then
    assert stored is True
    got = records.get_request(request["id"])
    assert got == request
    assert isinstance(got["body"], bytes) and isinstance(got["expires_at"], int)
    assert got["verified"] is True and got["routed_at"] is None


def test_an_event_with_transformed_data_an_ignored_branch_and_an_attempt_read_back_exactly(records):
    # Given
    request = a_request()
    data = {"method": "PUT", "path": "/x", "query": "", "headers": {"a": "b"}, "body": b"\x01\x02", "body_key": None}
    event = an_event(request, data=data, attempts=2)
    ignored = an_ignored(request)
    attempt = an_attempt(event, response_status=None, error_code="TIMEOUT", body=None)
    # When
    records.put_event(event)
    records.put_ignored(ignored)
    records.put_attempt(attempt)
    # Then
    assert records.get_event(event["id"]) == event
    assert records.get_event(event["id"])["data"]["body"] == b"\x01\x02"
    assert records.ignored_of_request(request["id"]) == [ignored]
    assert records.get_attempt(attempt["id"]) == attempt


def test_unknown_ids_read_as_none(records):
    # When / Then
    assert records.get_request(new_id(Prefix.REQUEST)) is None
    assert records.get_event(new_id(Prefix.EVENT)) is None
    assert records.get_attempt(new_id(Prefix.ATTEMPT)) is None


def test_a_second_put_of_the_same_request_event_or_ignored_branch_is_refused_and_keeps_the_first(records):
    # Given
    request = a_request()
    event = an_event(request)
    ignored = an_ignored(request)
    records.put_request(request)
    records.put_event(event)
    records.put_ignored(ignored)
    # When
    again = (
        records.put_request({**request, "status": "rejected"}),
        records.put_event({**event, "status": EventStatus.HOLD.value}),
        records.put_ignored({**ignored, "cause": IgnoredCause.DEDUPLICATED.value}),
    )
    # Then
    assert again == (False, False, False)
    assert records.get_request(request["id"]) == request
    assert records.get_event(event["id"]) == event
    assert records.ignored_of_request(request["id"]) == [ignored]


def test_finish_routing_records_the_counts_and_time_on_the_request(records):
    # Given
    request = a_request()
    records.put_request(request)
    # When
    records.finish_routing(request["id"], events_count=2, ignored_count=1, routed_at=at(1))
    # Then
    assert records.get_request(request["id"]) == {**request, "events_count": 2, "ignored_count": 1, "routed_at": at(1)}


def test_finish_routing_of_a_request_that_is_gone_creates_nothing(records):
    # Given
    request_id = new_id(Prefix.REQUEST)
    # When
    records.finish_routing(request_id, events_count=1, ignored_count=0, routed_at=at(1))
    # Then
    assert records.get_request(request_id) is None


def test_a_routing_failure_is_recorded_only_on_a_stored_request_nobody_routed(records):
    # Given: one request never routed, one routed, one never stored
    stuck, routed, missing = a_request(), a_request(), new_id(Prefix.REQUEST)
    records.put_request(stuck)
    records.put_request(routed)
    records.finish_routing(routed["id"], events_count=1, ignored_count=0, routed_at=at(1))
    # When
    ids_ = (stuck["id"], routed["id"], missing)
    marked = [records.mark_routing_failed(request_id, cause="DEAD_LETTERED", at=at(2)) for request_id in ids_]
    # Then
    assert marked == [True, False, False]
    assert records.get_request(stuck["id"]) == {**stuck, "routing_error": "DEAD_LETTERED", "routing_failed_at": at(2)}
    assert "routing_error" not in records.get_request(routed["id"])
    assert records.get_request(missing) is None


# ---- children ------------------------------------------------------------------------------------


def test_a_request_lists_exactly_its_own_events_and_ignored_branches_in_id_order(records):
    # Given
    request, other = a_request(), a_request()
    events = [an_event(request) for _ in range(5)]
    ignored = [an_ignored(request) for _ in range(3)]
    for doc in reversed(events):
        records.put_event(doc)
    for doc in ignored:
        records.put_ignored(doc)
    records.put_event(an_event(other))
    records.put_ignored(an_ignored(other))
    # When
    found_events = records.events_of_request(request["id"])
    found_ignored = records.ignored_of_request(request["id"])
    # Then
    assert found_events == sorted(events, key=lambda e: e["id"])
    assert found_ignored == sorted(ignored, key=lambda i: i["id"])
    assert records.events_of_request(new_id(Prefix.REQUEST)) == []


def test_an_event_lists_exactly_its_own_attempts_in_try_order_even_beyond_one_page(records):
    # Given: 64 KB response bodies make the list longer than one 1 MB DynamoDB page, and the tries are
    # stored in another order than their numbers (attempt ids derive from the try, not the time)
    event, other = an_event(), an_event()
    attempts = [an_attempt(event, n, body="x" * 65536) for n in range(1, 21)]
    for doc in reversed(attempts):
        records.put_attempt(doc)
    records.put_attempt(an_attempt(other))
    # When
    found = records.attempts_of_event(event["id"])
    # Then
    assert ids(found) == ids(attempts)
    assert found[-1] == attempts[-1]


# ---- leases --------------------------------------------------------------------------------------


def test_of_two_workers_leasing_the_same_event_at_once_only_one_wins(records):
    for _ in range(10):
        # Given
        event = stored_event(records)
        # When
        won = at_once(
            *(
                partial(records.lease_event, event["id"], lease_id=f"lease-{n}", now=at(), until=at(60))
                for n in range(2)
            )
        )
        # Then
        winners = [doc for doc in won if doc is not None]
        assert len(winners) == 1
        assert records.get_event(event["id"])["lease_id"] == winners[0]["lease_id"]


def test_a_lease_returns_the_leased_event(records):
    # Given
    event = stored_event(records)
    # When
    leased = records.lease_event(event["id"], lease_id="lease-1", now=at(), until=at(60))
    # Then
    assert leased == {**event, "lease_id": "lease-1", "lease_until": at(60)}
    assert records.get_event(event["id"]) == leased


def test_a_lease_is_refused_while_live_and_granted_after_it_expires(records):
    # Given
    event = stored_event(records)
    records.lease_event(event["id"], lease_id="first", now=at(), until=at(60))
    # When
    while_live = records.lease_event(event["id"], lease_id="second", now=at(59), until=at(119))
    after_expiry = records.lease_event(event["id"], lease_id="third", now=at(60), until=at(120))
    # Then
    assert while_live is None
    assert after_expiry is not None and after_expiry["lease_id"] == "third"


@pytest.mark.parametrize("status", NOT_LEASABLE)
def test_no_lease_is_granted_for_an_event_that_is_held_or_final(records, status):
    # Given
    event = stored_event(records, status=status)
    # When
    leased = records.lease_event(event["id"], lease_id="lease-1", now=at(), until=at(60))
    # Then
    assert leased is None
    assert records.get_event(event["id"]) == event


@pytest.mark.parametrize("status", PENDING)
def test_scheduled_and_queued_events_can_be_leased(records, status):
    # Given
    event = stored_event(records, status=status)
    # When / Then
    assert records.lease_event(event["id"], lease_id="lease-1", now=at(), until=at(60)) is not None


def test_a_missing_event_is_never_leased_completed_or_transitioned(records):
    # Given
    missing = new_id(Prefix.EVENT)
    # When / Then
    assert records.lease_event(missing, lease_id="l", now=at(), until=at(60)) is None
    assert records.complete_event(missing, lease_id="l", changes={"status": "SUCCESSFUL"}) is False
    assert (
        records.transition_event(
            missing, from_statuses=frozenset({EventStatus.FAILED}), changes={"status": "QUEUED"}, now=at()
        )
        is None
    )
    assert records.get_event(missing) is None


def test_complete_event_applies_the_changes_and_clears_the_lease_only_for_the_lease_holder(records):
    # Given
    event = stored_event(records)
    records.lease_event(event["id"], lease_id="mine", now=at(), until=at(60))
    changes = {"status": EventStatus.SUCCESSFUL.value, "attempts": 1, "response_status": 200, "next_attempt_at": None}
    # When
    by_stranger = records.complete_event(event["id"], lease_id="not-mine", changes=changes)
    by_holder = records.complete_event(event["id"], lease_id="mine", changes=changes)
    # Then
    assert by_stranger is False
    assert by_holder is True
    assert records.get_event(event["id"]) == {**event, **changes}


def test_a_worker_whose_lease_expired_and_was_taken_over_cannot_complete(records):
    # Given
    event = stored_event(records)
    records.lease_event(event["id"], lease_id="slow", now=at(), until=at(60))
    records.lease_event(event["id"], lease_id="fast", now=at(61), until=at(121))
    # When
    slow = records.complete_event(event["id"], lease_id="slow", changes={"status": EventStatus.FAILED.value})
    # Then
    assert slow is False
    assert records.get_event(event["id"])["lease_id"] == "fast"


def test_a_completed_event_cannot_be_completed_again_with_the_same_lease(records):
    # Given
    event = stored_event(records)
    records.lease_event(event["id"], lease_id="mine", now=at(), until=at(60))
    records.complete_event(event["id"], lease_id="mine", changes={"status": EventStatus.SUCCESSFUL.value})
    # When
    again = records.complete_event(event["id"], lease_id="mine", changes={"status": EventStatus.FAILED.value})
    # Then
    assert again is False
    assert records.get_event(event["id"])["status"] == EventStatus.SUCCESSFUL


# ---- transitions ---------------------------------------------------------------------------------


def test_transition_event_moves_only_from_the_named_statuses(records):
    # Given
    event = stored_event(records, status=EventStatus.FAILED)
    changes = {"status": EventStatus.QUEUED.value, "next_trigger": "MANUAL", "next_attempt_at": at(5)}
    # When
    from_wrong = records.transition_event(
        event["id"], from_statuses=frozenset({EventStatus.HOLD}), changes=changes, now=at(5)
    )
    from_right = records.transition_event(
        event["id"], from_statuses=frozenset({EventStatus.FAILED, EventStatus.SUCCESSFUL}), changes=changes, now=at(5)
    )
    # Then
    assert from_wrong is None
    assert from_right == {**event, **changes}
    assert records.get_event(event["id"]) == from_right


def test_transition_event_is_refused_while_leased_and_allowed_once_the_lease_expired(records):
    # Given
    event = stored_event(records)
    records.lease_event(event["id"], lease_id="worker", now=at(), until=at(60))
    changes = {"status": EventStatus.CANCELLED.value, "next_attempt_at": None}
    cancellable = frozenset(PENDING)
    # When
    while_leased = records.transition_event(event["id"], from_statuses=cancellable, changes=changes, now=at(30))
    after_expiry = records.transition_event(event["id"], from_statuses=cancellable, changes=changes, now=at(60))
    # Then
    assert while_leased is None
    assert after_expiry == {**event, **changes}
    assert "lease_id" not in records.get_event(event["id"])


def test_of_several_concurrent_releases_of_a_held_event_exactly_one_applies(records):
    changes = {"status": EventStatus.QUEUED.value, "next_trigger": "UNPAUSE", "next_attempt_at": at(1)}
    for _ in range(5):
        # Given
        event = stored_event(records, status=EventStatus.HOLD)
        release = partial(
            records.transition_event,
            event["id"],
            from_statuses=frozenset({EventStatus.HOLD}),
            changes=changes,
            now=at(1),
        )
        # When
        results = at_once(*[release] * 4)
        # Then
        assert len([r for r in results if r is not None]) == 1
        assert ids(records.due_events(before=at(2), limit=100)).count(event["id"]) == 1


# ---- the sweeper's and unpause's work lists ------------------------------------------------------


def test_due_events_are_the_pending_events_due_before_the_time_oldest_first(records):
    # Given
    queued = stored_event(records, status=EventStatus.QUEUED, next_attempt_at=at(10))
    scheduled = stored_event(records, status=EventStatus.SCHEDULED, next_attempt_at=at(5))
    lease_expired = stored_event(records, next_attempt_at=at(1))
    records.lease_event(lease_expired["id"], lease_id="dead-worker", now=at(1), until=at(20))
    lease_live = stored_event(records, next_attempt_at=at(2))
    records.lease_event(lease_live["id"], lease_id="busy-worker", now=at(2), until=at(300))
    stored_event(records, status=EventStatus.SCHEDULED, next_attempt_at=at(100))  # not due yet
    stored_event(records, status=EventStatus.HOLD)
    for final in (EventStatus.SUCCESSFUL, EventStatus.FAILED, EventStatus.CANCELLED):
        stored_event(records, status=final)
    # When
    due = records.due_events(before=at(30), limit=100)
    # Then
    assert ids(due) == [scheduled["id"], queued["id"], lease_expired["id"]]
    assert due[2]["lease_id"] == "dead-worker"


def test_events_being_delivered_do_not_hide_an_overdue_event_behind_them(records):
    # Given: more live leases than the sweeper's limit, all due before the one event a dead worker left
    for n in range(12):
        busy = stored_event(records, next_attempt_at=at(n))
        records.lease_event(busy["id"], lease_id=f"busy-{n}", now=at(n), until=at(600))
    forgotten = stored_event(records, next_attempt_at=at(50))
    # When
    due = records.due_events(before=at(100), limit=5)
    # Then: the live leases are not due, and the overdue event is found past them
    assert ids(due) == [forgotten["id"]]


def test_an_event_due_exactly_at_the_time_is_not_yet_due(records):
    # Given
    stored_event(records, next_attempt_at=at(10))
    # When / Then
    assert records.due_events(before=at(10), limit=10) == []


def test_due_events_returns_at_most_limit_events_the_oldest_across_all_events(records):
    # Given: enough events to land in every shard of the due index
    events = [stored_event(records, next_attempt_at=at(n)) for n in range(40, 0, -1)]
    # When
    due = records.due_events(before=at(1000), limit=25)
    # Then
    oldest = sorted(events, key=lambda e: e["next_attempt_at"])[:25]
    assert ids(due) == ids(oldest)


def test_a_completed_event_leaves_the_due_list_and_a_rescheduled_one_is_due_at_its_new_time(records):
    # Given
    done = stored_event(records)
    retried = stored_event(records)
    for event in (done, retried):
        records.lease_event(event["id"], lease_id="w", now=at(), until=at(600))
    # When
    records.complete_event(done["id"], lease_id="w", changes={"status": EventStatus.SUCCESSFUL.value})
    records.complete_event(
        retried["id"], lease_id="w", changes={"status": EventStatus.SCHEDULED.value, "next_attempt_at": at(30)}
    )
    # Then
    assert records.due_events(before=at(30), limit=10) == []
    assert ids(records.due_events(before=at(31), limit=10)) == [retried["id"]]


def test_a_failed_event_retried_by_hand_becomes_due(records):
    # Given
    event = stored_event(records, status=EventStatus.FAILED)
    # When
    records.transition_event(
        event["id"],
        from_statuses=frozenset({EventStatus.FAILED}),
        changes={"status": EventStatus.QUEUED.value, "next_attempt_at": at(3)},
        now=at(3),
    )
    # Then
    assert ids(records.due_events(before=at(4), limit=10)) == [event["id"]]


def test_held_events_are_the_hold_events_of_one_connection_oldest_first(records):
    # Given
    connection = new_id(Prefix.CONNECTION)
    held = [
        stored_event(records, connection_id=connection, status=EventStatus.HOLD, created_at=at(n)) for n in (3, 1, 2)
    ]
    stored_event(records, connection_id=connection, status=EventStatus.QUEUED)
    stored_event(records, connection_id=connection, status=EventStatus.CANCELLED)
    stored_event(records, status=EventStatus.HOLD)  # another connection
    # When
    found = records.held_events(connection, limit=10)
    first_two = records.held_events(connection, limit=2)
    # Then
    assert ids(found) == [held[1]["id"], held[2]["id"], held[0]["id"]]
    assert found[0] == held[1]
    assert ids(first_two) == ids(found)[:2]


def test_a_released_held_event_leaves_the_held_list_and_becomes_due(records):
    # Given
    connection = new_id(Prefix.CONNECTION)
    event = stored_event(records, connection_id=connection, status=EventStatus.HOLD)
    # When
    records.transition_event(
        event["id"],
        from_statuses=frozenset({EventStatus.HOLD}),
        changes={"status": EventStatus.QUEUED.value, "next_trigger": "UNPAUSE", "next_attempt_at": at(1)},
        now=at(1),
    )
    # Then
    assert records.held_events(connection, limit=10) == []
    assert ids(records.due_events(before=at(2), limit=10)) == [event["id"]]


# ---- dedupe claims and rate limits ---------------------------------------------------------------


def test_a_dedupe_key_is_claimed_once_within_its_window_and_again_after_it(records):
    # Given
    now = int(START.timestamp())
    # When
    first = records.claim_dedupe("web_1#abc", now_epoch=now, until_epoch=now + 60)
    within = records.claim_dedupe("web_1#abc", now_epoch=now + 59, until_epoch=now + 119)
    other_key = records.claim_dedupe("web_1#def", now_epoch=now + 59, until_epoch=now + 119)
    after = records.claim_dedupe("web_1#abc", now_epoch=now + 60, until_epoch=now + 120)
    after_within = records.claim_dedupe("web_1#abc", now_epoch=now + 119, until_epoch=now + 179)
    # Then
    assert (first, within, other_key, after, after_within) == (True, False, True, True, False)


def test_a_token_bucket_gives_its_capacity_then_a_wait_in_milliseconds(records):
    # Given
    take = {"capacity": 3, "refill_per_s": 1.0}
    # When
    answers = [records.take_token("des_1", **take, now_ms=1_000) for _ in range(4)]
    later = records.take_token("des_1", **take, now_ms=1_400)
    # Then
    assert answers == [0, 0, 0, 1000]
    assert later == 600


def test_a_token_bucket_refills_over_time_up_to_its_capacity(records):
    # Given
    take = {"capacity": 2, "refill_per_s": 2.0}
    for _ in range(2):
        records.take_token("des_2", **take, now_ms=0)
    # When
    after_half_a_second = [records.take_token("des_2", **take, now_ms=500) for _ in range(2)]
    after_an_hour = [records.take_token("des_2", **take, now_ms=3_600_000) for _ in range(3)]
    # Then
    assert after_half_a_second == [0, 500]
    assert after_an_hour == [0, 0, 500]


def test_a_worker_with_a_clock_behind_gets_no_extra_tokens(records):
    # Given
    take = {"capacity": 1, "refill_per_s": 1.0}
    records.take_token("des_3", **take, now_ms=10_000)
    # When
    behind = records.take_token("des_3", **take, now_ms=9_000)
    # Then
    assert behind == 1000
    assert records.take_token("des_3", **take, now_ms=11_000) == 0


def test_token_buckets_are_independent(records):
    # Given
    records.take_token("des_a", capacity=1, refill_per_s=0.5, now_ms=0)
    # When / Then
    assert records.take_token("des_a", capacity=1, refill_per_s=0.5, now_ms=0) == 2000
    assert records.take_token("des_b", capacity=1, refill_per_s=0.5, now_ms=0) == 0


def test_concurrent_takers_never_get_more_tokens_than_the_bucket_holds(records):
    # Given
    take = partial(records.take_token, "des_c", capacity=5, refill_per_s=0.001, now_ms=0)
    # When
    answers = at_once(*[take] * 8) + at_once(*[take] * 8)
    # Then
    assert answers.count(0) == 5
    assert all(answer > 0 for answer in answers if answer != 0)


# ---- S3 payloads (moto) --------------------------------------------------------------------------


def test_a_large_body_reads_back_byte_for_byte_from_s3(payloads):
    # Given
    body = bytes(range(256)) * 40_000
    # When
    payloads.put(f"{TEAM}/requests/req_1", body)
    # Then
    assert payloads.get(f"{TEAM}/requests/req_1") == body


def test_a_missing_body_is_a_fasthook_not_found_error(payloads):
    # When
    with pytest.raises(NotFoundError) as caught:
        payloads.get(f"{TEAM}/requests/never-written")
    # Then
    assert "never-written" in caught.value.message


# ---- SQS queues (moto) ---------------------------------------------------------------------------


def _drain(client: Any, url: str) -> list[dict[str, Any]]:
    received: list[dict[str, Any]] = []
    while True:
        got = client.receive_message(QueueUrl=url, MaxNumberOfMessages=10, WaitTimeSeconds=0).get("Messages", [])
        if not got:
            return received
        received.extend(got)
        client.delete_message_batch(
            QueueUrl=url, Entries=[{"Id": str(n), "ReceiptHandle": m["ReceiptHandle"]} for n, m in enumerate(got)]
        )


def _record_batches(client: Any) -> list[list[dict[str, Any]]]:
    """The Entries of every SendMessageBatch call the client makes (a botocore hook, not a patch)."""
    batches: list[list[dict[str, Any]]] = []

    def record(params: dict[str, Any], **_: Any) -> None:
        batches.append([dict(entry) for entry in params["Entries"]])

    client.meta.events.register("provide-client-params.sqs.SendMessageBatch", record)
    return batches


def test_a_route_message_reaches_the_route_queue(sqs):
    # Given
    from chalicelib.adapters.sqs_queues import SqsQueues

    client, route_url, deliver_url = sqs
    # When
    SqsQueues(client, route_url, deliver_url).send_route('{"kind":"route"}')
    # Then
    assert [m["Body"] for m in _drain(client, route_url)] == ['{"kind":"route"}']
    assert _drain(client, deliver_url) == []


def test_deliver_messages_go_out_in_batches_of_ten_and_all_arrive(sqs):
    # Given
    from chalicelib.adapters.sqs_queues import SqsQueues

    client, route_url, deliver_url = sqs
    batches = _record_batches(client)
    bodies = [(f"message-{n}", 0) for n in range(23)]
    # When
    SqsQueues(client, route_url, deliver_url).send_deliver(bodies)
    # Then
    assert [len(batch) for batch in batches] == [10, 10, 3]
    assert sorted(m["Body"] for m in _drain(client, deliver_url)) == sorted(body for body, _ in bodies)


def test_deliver_delays_are_clamped_to_what_sqs_accepts(sqs):
    # Given
    from chalicelib.adapters.sqs_queues import SqsQueues

    client, route_url, deliver_url = sqs
    batches = _record_batches(client)
    # When
    SqsQueues(client, route_url, deliver_url).send_deliver([("now", -5), ("soon", 30), ("later", 86_400)])
    # Then
    assert [entry["DelaySeconds"] for entry in batches[0]] == [0, 30, 900]
    assert [m["Body"] for m in _drain(client, deliver_url)] == ["now"]
    attributes = client.get_queue_attributes(
        QueueUrl=deliver_url, AttributeNames=["ApproximateNumberOfMessagesDelayed"]
    )
    assert attributes["Attributes"]["ApproximateNumberOfMessagesDelayed"] == "2"


class RefusingSqs:
    """A real (moto) SQS client whose SendMessageBatch refuses the first entry of its first `refusals` calls."""

    def __init__(self, client: Any, refusals: int) -> None:
        self._client = client
        self.refusals = refusals
        self.calls: list[list[str]] = []

    def send_message_batch(self, *, QueueUrl: str, Entries: list[dict[str, Any]]) -> dict[str, Any]:
        self.calls.append([entry["MessageBody"] for entry in Entries])
        if self.refusals <= 0:
            return self._client.send_message_batch(QueueUrl=QueueUrl, Entries=Entries)
        self.refusals -= 1
        refused, taken = Entries[0], Entries[1:]
        answer = self._client.send_message_batch(QueueUrl=QueueUrl, Entries=taken) if taken else {}
        failure = {"Id": refused["Id"], "SenderFault": False, "Code": "InternalError", "Message": "try again"}
        return {"Successful": answer.get("Successful", []), "Failed": [failure]}


def test_entries_sqs_refused_are_sent_again_once(sqs):
    # Given
    from chalicelib.adapters.sqs_queues import SqsQueues

    client, route_url, deliver_url = sqs
    flaky = RefusingSqs(client, refusals=1)
    # When
    SqsQueues(flaky, route_url, deliver_url).send_deliver([("a", 0), ("b", 0), ("c", 0)])
    # Then
    assert flaky.calls == [["a", "b", "c"], ["a"]]
    assert sorted(m["Body"] for m in _drain(client, deliver_url)) == ["a", "b", "c"]


def test_entries_refused_twice_raise_so_the_caller_does_not_acknowledge(sqs):
    # Given
    from chalicelib.adapters.sqs_queues import QueueSendError, SqsQueues

    client, route_url, deliver_url = sqs
    flaky = RefusingSqs(client, refusals=2)
    # When
    with pytest.raises(QueueSendError) as caught:
        SqsQueues(flaky, route_url, deliver_url).send_deliver([("a", 0), ("b", 0)])
    # Then
    assert "InternalError" in caught.value.message
    assert flaky.calls == [["a", "b"], ["a"]]
