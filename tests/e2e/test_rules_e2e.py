"""Connection rules and destination settings as a receiver lives them: dedupe, delay, rate limit, retries, mock.

Covered elsewhere, not repeated here: retry-then-success and 409 on retrying an event of a paused
connection (test_pipeline.py); a destination on 169.254.169.254 or another private address being
SSRF_BLOCKED (tests/unit/test_http_sender.py: the embedded stack allows private addresses, so the guard
cannot be seen from here).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime, timedelta

import pytest

from tests.e2e.conftest import eventually
from tests.support.receiver import ReceivedRequest, Receiver, Response


class ClockedReceiver(Receiver):
    """A Receiver that also notes when (time.monotonic) each request arrived, in arrival order."""

    def __init__(self) -> None:
        self._arrivals: list[float] = []
        self._arrivals_lock = threading.Lock()
        super().__init__()

    @property
    def arrivals(self) -> list[float]:
        with self._arrivals_lock:
            return list(self._arrivals)

    def _record(self, request: ReceivedRequest) -> Response:
        with self._arrivals_lock:
            self._arrivals.append(time.monotonic())
        return super()._record(request)


@pytest.fixture()
def clocked() -> Iterator[ClockedReceiver]:
    with ClockedReceiver() as receiver:
        yield receiver  # type: ignore[misc]


def test_the_same_body_twice_within_the_window_is_delivered_once_and_the_copy_is_ignored_as_deduplicated(
    fasthook, receiver
):
    # Given a connection that deduplicates on the raw body for a minute
    conn = fasthook.route(receiver, rules=[{"type": "deduplicate", "window": 60000}])
    source_id = conn["source"]["id"]
    # When the same body comes twice, then another body
    first = fasthook.send(source_id, b'{"order":1}').json()["request_id"]
    copy = fasthook.send(source_id, b'{"order":1}').json()["request_id"]
    other = fasthook.send(source_id, b'{"order":2}').json()["request_id"]
    # Then the copy became an ignored DEDUPLICATED branch, and only the two different bodies arrive
    [ignored] = eventually(lambda: fasthook.records.ignored_of_request(copy))
    assert ignored["cause"] == "DEDUPLICATED"
    got = receiver.wait_for(2, timeout_s=20)
    assert sorted(r.body for r in got) == [b'{"order":1}', b'{"order":2}']
    assert {r.header("x-fasthook-request-id") for r in got} == {first, other}
    copied = eventually(lambda: (r := fasthook.records.get_request(copy)) and r["routed_at"] and r)
    assert (copied["events_count"], copied["ignored_count"]) == (0, 1)
    time.sleep(1.0)
    assert len(receiver.requests) == 2


def test_a_delayed_connection_schedules_the_event_and_delivers_it_no_sooner_than_the_delay(fasthook, clocked):
    # Given a connection that delays deliveries by one second
    conn = fasthook.route(clocked, rules=[{"type": "delay", "delay": 1000}])
    # When
    sent_at = time.monotonic()
    request_id = fasthook.send(conn["source"]["id"]).json()["request_id"]
    # Then the event is SCHEDULED for one second after it was made
    [event] = eventually(lambda: fasthook.records.events_of_request(request_id))
    assert event["status"] == "SCHEDULED"
    due = datetime.fromisoformat(event["next_attempt_at"]) - datetime.fromisoformat(event["created_at"])
    assert due == timedelta(seconds=1)
    # And the receiver gets it a second or more after the webhook was sent
    clocked.wait_for(1, timeout_s=20)
    assert clocked.arrivals[0] - sent_at >= 1.0
    assert eventually(lambda: fasthook.records.get_event(event["id"])["status"] == "SUCCESSFUL")


def test_a_rate_limit_of_two_per_second_never_lets_three_go_at_once_and_spreads_six_over_two_seconds(fasthook, clocked):
    # Given a destination limited to 2 deliveries per second
    conn = fasthook.route(clocked, destination_config={"rate_limit": 2, "rate_limit_period": "second"})
    # When six webhooks come in at once
    for n in range(6):
        assert fasthook.send(conn["source"]["id"], b'{"n":%d}' % n).status_code == 200
    clocked.wait_for(6, timeout_s=30)
    # Then the bucket (2 tokens, refilled at 2 a second: flow/deliver.py take_delivery_token) lets at most
    # the first two go together and spreads the rest: a third needs half a second of refill, and the six
    # need (6 - 2) / 2 = 2 seconds of it (bounds loosened for the jitter between token and arrival)
    at = clocked.arrivals
    assert all(later - earlier >= 0.2 for earlier, later in zip(at, at[2:], strict=False)), at
    assert at[5] - at[0] >= 1.5, at
    time.sleep(0.5)
    assert len(clocked.requests) == 6


def arrivals_in_window(at: list[float], window_s: float) -> int:
    """The most arrivals any window of `window_s` holds."""
    return max(sum(1 for t in at if start <= t < start + window_s) for start in at)


def test_a_rate_limit_of_two_per_second_never_puts_more_than_two_deliveries_in_one_second(fasthook, clocked):
    # Given a destination limited to 2 deliveries per second
    conn = fasthook.route(clocked, destination_config={"rate_limit": 2, "rate_limit_period": "second"})
    start = time.monotonic()

    def send_at(n: int) -> int:
        time.sleep(max(0.0, start + n * 0.2 - time.monotonic()))
        return fasthook.send(conn["source"]["id"], b'{"n":%d}' % n).status_code

    # When eight webhooks come in over 1.4 seconds, one every 0.2 s
    with ThreadPoolExecutor(max_workers=8) as pool:
        assert list(pool.map(send_at, range(8))) == [200] * 8
    clocked.wait_for(8, timeout_s=30)
    # Then deliveries leave half a second apart, so three never land close together. The receiver sees
    # arrivals, not sends, and a busy machine delays some calls more than others: a 0.75 s window
    # allows a quarter second of that jitter and still catches any burst.
    assert arrivals_in_window(clocked.arrivals, 0.75) <= 2, clocked.arrivals


def test_a_linear_retry_rule_of_two_gives_three_attempts_with_their_triggers_and_then_fails(fasthook, receiver):
    # Given a receiver that always answers 500 and a linear retry rule of two retries a second apart
    receiver.answer_always(Response(status=500, body=b"down"))
    conn = fasthook.route(receiver, rules=[{"type": "retry", "strategy": "linear", "count": 2, "interval": 1000}])
    # When
    fasthook.send(conn["source"]["id"])
    got = receiver.wait_for(3, timeout_s=30)
    # Then the receiver saw the initial try and two automatic retries of one event
    event_id = got[0].header("x-fasthook-event-id")
    assert {r.header("x-fasthook-event-id") for r in got} == {event_id}
    assert [(r.header("x-fasthook-attempt-count"), r.header("x-fasthook-attempt-trigger")) for r in got] == [
        ("1", "INITIAL"),
        ("2", "AUTOMATIC"),
        ("3", "AUTOMATIC"),
    ]
    # And the event ends FAILED with exactly those three attempts
    eventually(lambda: fasthook.records.get_event(event_id)["status"] == "FAILED")
    attempts = sorted(fasthook.records.attempts_of_event(event_id), key=lambda a: a["attempt_number"])
    assert [(a["attempt_number"], a["trigger"], a["status"], a["response_status"]) for a in attempts] == [
        (1, "INITIAL", "FAILED", 500),
        (2, "AUTOMATIC", "FAILED", 500),
        (3, "AUTOMATIC", "FAILED", 500),
    ]
    assert fasthook.records.get_event(event_id)["attempts"] == 3
    time.sleep(1.5)
    assert len(receiver.requests) == 3


def test_a_mock_api_destination_makes_the_event_successful_without_any_receiver(fasthook):
    # Given a connection to a MOCK_API destination
    name = f"mock-{time.monotonic_ns()}"
    conn = fasthook.ok(
        "POST",
        "/connections",
        {
            "name": name,
            "source": {"name": name},
            "destination": {"name": name, "type": "MOCK_API", "config": {"path": "/mock/in"}},
        },
    )
    # When
    request_id = fasthook.send(conn["source"]["id"]).json()["request_id"]
    # Then the event is delivered, with an attempt answered 200 by the mock
    [event] = eventually(lambda: fasthook.records.events_of_request(request_id))
    assert eventually(lambda: fasthook.records.get_event(event["id"])["status"] == "SUCCESSFUL")
    [attempt] = fasthook.records.attempts_of_event(event["id"])
    assert (attempt["status"], attempt["response_status"], attempt["trigger"]) == ("SUCCESSFUL", 200, "INITIAL")
    assert attempt["body"] == '{"status":"ok"}'
