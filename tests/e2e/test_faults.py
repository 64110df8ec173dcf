"""Faults the pipeline must survive, on the embedded stack with a loopback receiver.

A deliver worker that dies after the receiver answered, SQS handing out one message twice, a receiver
slower than its timeout, a burst against a flaky receiver: no event is lost, none is left stuck, and no
two deliveries of one event overlap at the receiver.

Faults are injected the way they happen, without patching FastHook: each test starts its own workers
(local/workers.py) and may hand them a deliver handler that wraps the real one. The stack itself is
shared by the module.
"""

from __future__ import annotations

import itertools
import random
import threading
import time
import uuid
from collections import Counter, defaultdict
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from chalicelib import wiring
from chalicelib.domain import messages
from chalicelib.domain.ids import Prefix, new_id
from chalicelib.domain.outbound import DeliveryResult, OutboundRequest
from chalicelib.domain.timefmt import iso
from chalicelib.entrypoints.deliver_worker import handle_deliver_batch
from chalicelib.flow.deliver import deliver_event
from chalicelib.flow.sweep import sweep
from local.workers import Handler, Workers
from tests.e2e.conftest import FastHook, eventually
from tests.support.local_stack import running_local_fasthook
from tests.support.receiver import ReceivedRequest, Receiver, Response

# ---- the stack, workers started per test ------------------------------------------------------------------


@pytest.fixture(scope="module")
def fasthook() -> Iterator[FastHook]:
    """The embedded stack and local server as conftest's, but without workers: each test starts its own."""
    with running_local_fasthook(workers=False) as (url, token, http):
        yield FastHook(url, token, http)


@pytest.fixture()
def start_workers(fasthook: FastHook) -> Iterator[Callable[..., Workers]]:
    """Start the pollers and the sweeper with the given overrides; they stop when the test ends."""
    started: list[Workers] = []

    def start(**options: Any) -> Workers:
        workers = Workers(**{"sweep_every_s": 60.0, **options}).start()
        started.append(workers)
        return workers

    yield start
    for workers in started:
        workers.stop()


# ---- a receiver that also says when ---------------------------------------------------------------------


@dataclass(frozen=True)
class Visit:
    """One delivery as the receiver lived it: which event, when it arrived, when the answer went out."""

    event_id: str | None
    arrived: float
    answered: float


class TimedReceiver(Receiver):
    """A Receiver that notes when each request arrived and was answered, and may answer by a rule.

    `answer(request)` picks the response (None: the script or default applies). The answer goes out
    right after `_pause`, in the handler's thread, so that is when the visit ends.
    """

    def __init__(self, answer: Callable[[ReceivedRequest], Response | None] | None = None) -> None:
        self._answer = answer
        self._visits: list[Visit] = []
        self._visits_lock = threading.Lock()
        self._open = threading.local()
        super().__init__()

    def visits(self, event_id: str | None = None) -> list[Visit]:
        with self._visits_lock:
            return [v for v in self._visits if event_id is None or v.event_id == event_id]

    def _record(self, request: ReceivedRequest) -> Response:
        arrived = time.monotonic()
        scripted = super()._record(request)
        self._open.visit = (request.header("x-fasthook-event-id"), arrived)
        return (self._answer(request) if self._answer else None) or scripted

    def _pause(self, seconds: float) -> bool:
        going_on = super()._pause(seconds)
        visit = getattr(self._open, "visit", None)
        if visit is not None:
            self._open.visit = None
            with self._visits_lock:
                self._visits.append(Visit(*visit, answered=time.monotonic()))
        return going_on


def overlapping(visits: list[Visit]) -> list[tuple[Visit, Visit]]:
    """Pairs of visits of one event where the second arrived before the first was answered."""
    by_event: dict[str | None, list[Visit]] = defaultdict(list)
    for visit in visits:
        by_event[visit.event_id].append(visit)
    pairs = []
    for same in by_event.values():
        ordered = sorted(same, key=lambda v: v.arrived)
        pairs += [(a, b) for a, b in itertools.pairwise(ordered) if b.arrived < a.answered]
    return pairs


@pytest.fixture()
def timed() -> Iterator[TimedReceiver]:
    with TimedReceiver() as receiver:
        yield receiver  # type: ignore[misc]


# ---- fault injection ----------------------------------------------------------------------------------------


class WorkerDied(Exception):
    """The deliver worker vanished (killed, out of memory, timed out) at the worst moment."""


class DiesAfterSending:
    """A Sender that makes the real HTTP call and dies before FastHook can record the answer."""

    def __init__(self, real: Any) -> None:
        self._real = real

    def send(self, req: OutboundRequest) -> DeliveryResult:
        self._real.send(req)
        raise WorkerDied("the deliver worker died after the receiver answered")


def dies_after_the_first_delivery_of(source_id: str) -> Handler:
    """A deliver handler whose first batch with an event of `source_id` dies after that event's HTTP call.

    The real deliver step runs (lease, token, HTTP call) with a sender that dies once the receiver has
    answered; the exception leaves the worker as a crash would, so nothing of the batch is deleted.
    Every later batch goes to the real handler.
    """
    died = threading.Event()

    def handler(event: dict[str, Any], context: Any) -> Any:
        if not died.is_set():
            deps = wiring.container()
            for record in event["Records"]:
                message = messages.decode(record["body"])
                stored = deps.records.get_event(message.event_id)
                if stored is not None and stored["source_id"] == source_id:
                    died.set()
                    deliver_event(
                        message=message,
                        records=deps.records,
                        resources=deps.resources,
                        routing=deps.routing,
                        accounts=deps.accounts,
                        payloads=deps.payloads,
                        queues=deps.queues,
                        sender=DiesAfterSending(deps.sender),
                        mock_sender=deps.mock_sender,
                        clock=deps.clock,
                    )
        return handle_deliver_batch(event, context)

    return handler


def sweep_with_grace(grace_s: int) -> Handler:
    """The sweep, with a grace of seconds rather than the scheduled sweeper's minute, so a test need not wait."""

    def handler(event: dict[str, Any], context: Any) -> Any:
        deps = wiring.container()
        return sweep(records=deps.records, queues=deps.queues, clock=deps.clock, grace_s=grace_s)

    return handler


class Tap:
    """Wraps the real deliver handler and counts, per event, the messages it finished handling."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.handled: Counter[str] = Counter()

    def __call__(self, event: dict[str, Any], context: Any) -> Any:
        result = handle_deliver_batch(event, context)
        failed = {f["itemIdentifier"] for f in result.get("batchItemFailures", [])}
        with self._lock:
            for record in event["Records"]:
                if record["messageId"] not in failed:
                    self.handled[messages.decode(record["body"]).event_id] += 1
        return result


def resend(event: dict[str, Any], copies: int) -> None:
    """Put `copies` more copies of the event's deliver message on the deliver queue, as SQS may."""
    body = messages.encode(messages.DeliverEvent(team_id=event["team_id"], event_id=event["id"], trigger="INITIAL"))
    wiring.container().queues.send_deliver([(body, 0)] * copies)


def deliver_messages_in_flight() -> int:
    deps = wiring.container()
    attributes = deps.sqs.get_queue_attributes(
        QueueUrl=deps.settings.deliver_queue_url, AttributeNames=["ApproximateNumberOfMessagesNotVisible"]
    )["Attributes"]
    return int(attributes["ApproximateNumberOfMessagesNotVisible"])


def attempts_of(fasthook: FastHook, event_id: str) -> list[tuple[int, str, str, int | None, str | None]]:
    return [
        (a["attempt_number"], a["trigger"], a["status"], a["response_status"], a["error_code"])
        for a in sorted(fasthook.records.attempts_of_event(event_id), key=lambda a: a["attempt_number"])
    ]


# ---- the embedded stack's DynamoDB is atomic per request ---------------------------------------------------


def queued_event() -> dict[str, Any]:
    """A QUEUED event, due now, stored through the real record store (no source or destination needed)."""
    now = datetime.now(UTC)
    event = {
        "id": new_id(Prefix.EVENT),
        "team_id": "tm_lease_race",
        "request_id": new_id(Prefix.REQUEST),
        "connection_id": "web_lease_race",
        "source_id": "src_lease_race",
        "destination_id": "des_lease_race",
        "status": "QUEUED",
        "attempts": 0,
        "next_trigger": "INITIAL",
        "next_attempt_at": iso(now),
        "created_at": iso(now),
        "updated_at": iso(now),
    }
    assert wiring.container().records.put_event(event)
    return event


def lease_at_once(event_id: str, workers: int) -> int:
    """How many of `workers` threads, released together, win a lease on the event."""
    records = wiring.container().records
    start = threading.Barrier(workers)

    def lease(_: int) -> bool:
        start.wait()
        moment = datetime.now(UTC)
        until = iso(moment + timedelta(seconds=30))
        return records.lease_event(event_id, lease_id=uuid.uuid4().hex, now=iso(moment), until=until) is not None

    with ThreadPoolExecutor(max_workers=workers) as pool:
        return sum(pool.map(lease, range(workers)))


def test_eight_workers_leasing_one_event_at_once_leave_exactly_one_winner(fasthook):
    # Given queued events on the embedded stack's DynamoDB
    events = [queued_event() for _ in range(20)]
    # When eight threads lease each of them at the same moment, through the real record store
    winners = [lease_at_once(event["id"], workers=8) for event in events]
    # Then each event has exactly one winner, as DynamoDB guarantees
    assert winners == [1] * 20


# ---- faults -------------------------------------------------------------------------------------------------


def test_a_worker_that_dies_after_the_receiver_answered_is_delivered_again_once_its_lease_expires(
    fasthook, timed, start_workers
):
    # Given a destination with a 1 s timeout (a 16 s lease), a deliver worker that dies after its first
    # HTTP call, and a sweeper that runs every second
    conn = fasthook.route(timed, destination_config={"http_timeout": 1})
    start_workers(
        deliver_handler=dies_after_the_first_delivery_of(conn["source"]["id"]),
        sweep_handler=sweep_with_grace(1),
        sweep_every_s=1.0,
    )
    # When a webhook comes in and the worker dies once the receiver has answered
    fasthook.send(conn["source"]["id"])
    [first] = timed.wait_for(1, timeout_s=20)
    event_id = first.header("x-fasthook-event-id")
    time.sleep(0.5)
    # Then nothing is recorded yet, the event waits, leased by the dead worker, and its message was not
    # deleted: it stays in flight until its visibility timeout, as with a Lambda that crashed
    stranded = fasthook.records.get_event(event_id)
    assert (stranded["status"], stranded["attempts"], fasthook.records.attempts_of_event(event_id)) == ("QUEUED", 0, [])
    assert deliver_messages_in_flight() == 1
    # When the lease expires, the sweeper sends the event again
    timed.wait_for(2, timeout_s=40)
    # Then it is delivered and recorded once: at least once, never lost, never stuck
    eventually(lambda: fasthook.records.get_event(event_id)["status"] == "SUCCESSFUL", timeout_s=10)
    assert attempts_of(fasthook, event_id) == [(1, "INITIAL", "SUCCESSFUL", 200, None)]
    visits = timed.visits(event_id)
    assert len(visits) == 2 and overlapping(visits) == []
    assert event_id not in {e["id"] for e in fasthook.records.due_events(before="9999-12-31T00:00:00.000Z", limit=500)}


def test_the_same_deliver_message_twice_reaches_the_receiver_once(fasthook, timed, start_workers):
    # Given two deliver pollers (as Lambda runs several) and a receiver that takes 1.5 s to answer
    tap = Tap()
    start_workers(deliver_handler=tap, deliver_pollers=2)
    timed.script(Response(status=200, delay_s=1.5))
    conn = fasthook.route(timed)
    # When SQS hands the message out twice more while the delivery is in flight, and once after it succeeded
    fasthook.send(conn["source"]["id"])
    [first] = timed.wait_for(1, timeout_s=20)
    event = fasthook.records.get_event(first.header("x-fasthook-event-id"))
    resend(event, copies=2)
    eventually(lambda: fasthook.records.get_event(event["id"])["status"] == "SUCCESSFUL")
    resend(event, copies=1)
    eventually(lambda: tap.handled[event["id"]] >= 4, timeout_s=20)
    # Then every copy was handled, and the receiver saw one delivery, recorded as one attempt
    assert len(timed.visits(event["id"])) == 1 and overlapping(timed.visits()) == []
    assert attempts_of(fasthook, event["id"]) == [(1, "INITIAL", "SUCCESSFUL", 200, None)]
    assert fasthook.records.get_event(event["id"])["attempts"] == 1


def test_a_receiver_slower_than_the_timeout_gives_a_timeout_attempt_and_the_retry_succeeds(
    fasthook, receiver, start_workers
):
    # Given a destination with a 1 s timeout, a receiver that first takes 2 s, and a retry rule
    start_workers()
    receiver.script(Response(status=200, delay_s=2.0))
    conn = fasthook.route(
        receiver,
        destination_config={"http_timeout": 1},
        rules=[{"type": "retry", "strategy": "linear", "count": 2, "interval": 1000}],
    )
    # When
    fasthook.send(conn["source"]["id"])
    first, second = receiver.wait_for(2, timeout_s=20)
    # Then the first try timed out and the automatic retry was answered
    event_id = first.header("x-fasthook-event-id")
    assert second.header("x-fasthook-event-id") == event_id
    assert [r.header("x-fasthook-attempt-trigger") for r in (first, second)] == ["INITIAL", "AUTOMATIC"]
    eventually(lambda: fasthook.records.get_event(event_id)["status"] == "SUCCESSFUL")
    assert attempts_of(fasthook, event_id) == [
        (1, "INITIAL", "FAILED", None, "TIMEOUT"),
        (2, "AUTOMATIC", "SUCCESSFUL", 200, None),
    ]


def test_a_burst_to_three_destinations_with_a_flaky_receiver_ends_with_every_event_delivered(fasthook, start_workers):
    # Given three connections with a retry rule, to a receiver that answers 500 to about a third of
    # first tries (seeded dice) and never to a retry
    dice = random.Random(4)
    dice_lock = threading.Lock()
    refused: set[str] = set()
    answered: set[str] = set()

    def flaky(request: ReceivedRequest) -> Response | None:
        event_id = str(request.header("x-fasthook-event-id"))
        with dice_lock:
            if request.header("x-fasthook-attempt-count") == "1" and dice.random() < 0.33:
                refused.add(event_id)
                return Response(status=500, body=b"busy")
            answered.add(event_id)
        return None

    start_workers()
    retry = [{"type": "retry", "strategy": "linear", "count": 3, "interval": 1000}]
    with TimedReceiver(answer=flaky) as flaky_receiver:
        sources = [fasthook.route(flaky_receiver, path=f"/{name}", rules=retry)["source"]["id"] for name in "abc"]
        # When 50 webhooks arrive at once, spread over the three sources
        with ThreadPoolExecutor(max_workers=8) as pool:
            answers = list(pool.map(lambda n: fasthook.send(sources[n % 3], b'{"n":%d}' % n), range(50)))
        request_ids = [a.json()["request_id"] for a in answers if a.status_code == 200]

        def all_final() -> list[dict[str, Any]] | None:
            """every request routed to its event, and every event SUCCESSFUL"""
            events = [fasthook.records.events_of_request(r) for r in request_ids]
            if any(len(of_request) != 1 for of_request in events):
                return None
            flat = [e for of_request in events for e in of_request]
            return flat if all(e["status"] == "SUCCESSFUL" for e in flat) else None

        def delivered() -> bool:
            """the receiver accepted 50 distinct events"""
            with dice_lock:
                return len(answered) >= 50

        # (the receiver's count first: polling 50 requests' events would slow the workers down)
        eventually(delivered, timeout_s=60, every_s=0.2)
        events = eventually(all_final, timeout_s=10, every_s=0.5)
        visits = flaky_receiver.visits()
    # Then every accepted request reached its destination: none lost, none stuck
    assert len(request_ids) == 50
    assert Counter(e["source_id"] for e in events) == {sources[0]: 17, sources[1]: 17, sources[2]: 16}
    # And each event was tried exactly as often as the receiver refused it, plus the delivery
    assert refused, "the seeded dice refused nothing: the retry path was not exercised"
    tries = Counter(v.event_id for v in visits)
    for event in events:
        expected = 2 if event["id"] in refused else 1
        assert (event["attempts"], tries[event["id"]]) == (expected, expected), event["id"]
    assert overlapping(visits) == []
