"""The deliver step against the in-memory fakes: what reaches the receiver, and what each try leaves behind.

Where the wire matters (bytes, headers, signature, timeouts) deliveries go through the real HttpSender
to a loopback Receiver; where it does not (retry schedules, rate limits) a scripted sender stands in.
Waits are simulated: `World.run` plays the deliver queue in the order messages become visible and
moves the FixedClock to each one, so a two-hour retry takes no wall time.
"""

from __future__ import annotations

import email.utils
import heapq
import itertools
import json
from collections import deque
from collections.abc import Iterator
from datetime import datetime, timedelta
from typing import Any

import pytest

from chalicelib import wiring
from chalicelib.adapters.http_sender import HttpSender
from chalicelib.adapters.memory import (
    FixedClock,
    MemoryControlStore,
    MemoryPayloadStore,
    MemoryQueues,
    MemoryRecordStore,
)
from chalicelib.adapters.mock_sender import MockSender
from chalicelib.control import connections, destinations, secrets, sources
from chalicelib.domain import messages
from chalicelib.domain.ids import Prefix, derived_id, new_id
from chalicelib.domain.models import ConnectionCreate, DestinationCreate, DestinationUpdate, SourceCreate
from chalicelib.domain.outbound import DeliveryResult, OutboundRequest, verify_signature
from chalicelib.domain.timefmt import iso
from chalicelib.entrypoints.deliver_worker import handle_deliver_batch
from chalicelib.flow.deliver import DeliverAction, DeliverOutcome, deliver_event
from chalicelib.flow.routing import RoutingCache
from chalicelib.settings import Settings
from tests.support.receiver import Receiver, Response

TEAM = "tm_01M8547MZCKAJCA8VS2MAZA7PF"
_names = itertools.count(1)


def linear(count: int = 3, interval: int = 5_000, **fields: Any) -> dict[str, Any]:
    return {"type": "retry", "strategy": "linear", "count": count, "interval": interval, **fields}


def exponential(count: int = 3, interval: int = 1_000) -> dict[str, Any]:
    return {"type": "retry", "strategy": "exponential", "count": count, "interval": interval}


class ScriptedSender:
    """A Sender for tests where the wire does not matter: answers as scripted and notes when it was called."""

    def __init__(self, clock: FixedClock, *results: DeliveryResult, default: DeliveryResult | None = None) -> None:
        self.clock = clock
        self.calls: list[tuple[datetime, OutboundRequest]] = []
        self._results = deque(results)
        self._default = default or DeliveryResult(ok=True, status=200, response_body=b"ok")

    def send(self, req: OutboundRequest) -> DeliveryResult:
        self.calls.append((self.clock.now(), req))
        return self._results.popleft() if self._results else self._default


def answer(status: int, **headers: str) -> DeliveryResult:
    return DeliveryResult(ok=200 <= status < 300, status=status, response_headers=headers)


class World:
    """A team's resources, records and queues in memory, with a simulated deliver queue."""

    def __init__(self, sender: Any = None) -> None:
        self.control = MemoryControlStore()
        self.records = MemoryRecordStore()
        self.payloads = MemoryPayloadStore()
        self.queues = MemoryQueues()
        self.clock = FixedClock()
        self.routing = RoutingCache()
        self.sender = sender if sender is not None else ScriptedSender(self.clock)
        self.mock_sender = MockSender()
        self._sent = 0
        self._inbox: list[tuple[datetime, int, str]] = []
        self._order = itertools.count()
        self.resent_delays: list[int] = []

    # ---- resources, through the control use cases ---------------------------------------------------

    def source(self, **fields: Any) -> dict:
        body = SourceCreate.model_validate({"name": f"src-{next(_names)}", **fields})
        return sources.create_source(team_id=TEAM, body=body, store=self.control, clock=self.clock)

    def destination(self, url: str = "https://receiver.example.test/hooks", **config: Any) -> dict:
        kind = "MOCK_API" if "path" in config else "HTTP"
        config = config if kind == "MOCK_API" else {"url": url, **config}
        body = DestinationCreate.model_validate({"name": f"des-{next(_names)}", "type": kind, "config": config})
        return destinations.create_destination(team_id=TEAM, body=body, store=self.control, clock=self.clock)

    def connection(self, destination: dict, *, rules: list | None = None, source: dict | None = None) -> dict:
        source = source or self.source()
        body = ConnectionCreate.model_validate(
            {
                "name": f"conn-{next(_names)}",
                "source_id": source["id"],
                "destination_id": destination["id"],
                "rules": rules or [],
            }
        )
        return connections.create_connection(team_id=TEAM, body=body, store=self.control, clock=self.clock)

    def signing_secret(self) -> str:
        return secrets.get_project_secrets(team_id=TEAM, accounts=self.control, clock=self.clock)["signing_secret"][
            "value"
        ]

    # ---- a routed request, as the route step leaves it -----------------------------------------------

    def event(
        self,
        connection: dict,
        *,
        body: bytes = b'{"id":"evt_1","type":"order.paid"}',
        method: str = "POST",
        path: str = "",
        query: str = "",
        headers: dict[str, str] | None = None,
        status: str = "QUEUED",
        data: dict | None = None,
        large: bool = False,
    ) -> dict:
        now = self.clock.now()
        request_id = new_id(Prefix.REQUEST)
        request = {
            "id": request_id,
            "team_id": TEAM,
            "source_id": connection["source_id"],
            "status": "accepted",
            "rejection_cause": None,
            "verified": True,
            "method": method,
            "path": path,
            "query": query,
            "headers": {"content-type": "application/json", **(headers or {})},
            "body": None if large else body,
            "body_key": f"{TEAM}/requests/{request_id}" if large else None,
            "body_size": len(body),
            "content_type": "application/json",
            "external_id": None,
            "ingested_at": iso(now),
            "events_count": 1,
            "ignored_count": 0,
            "routed_at": iso(now),
            "is_retry": False,
            "retry_of": None,
            "retry_kind": None,
            "batch_operation_id": None,
            "expires_at": int((now + timedelta(days=30)).timestamp()),
        }
        if large:
            self.payloads.put(request["body_key"], body)
        self.records.put_request(request)
        event = {
            "id": derived_id(Prefix.EVENT, request_id, connection["id"]),
            "team_id": TEAM,
            "request_id": request_id,
            "connection_id": connection["id"],
            "source_id": connection["source_id"],
            "destination_id": connection["destination_id"],
            "status": status,
            "attempts": 0,
            "next_trigger": "INITIAL",
            "next_attempt_at": iso(now) if status in ("QUEUED", "SCHEDULED") else None,
            "last_attempt_at": None,
            "successful_at": None,
            "response_status": None,
            "error_code": None,
            "created_at": iso(now),
            "updated_at": iso(now),
            "batch_operation_id": None,
            "data": data,
            "expires_at": request["expires_at"],
        }
        self.records.put_event(event)
        return event

    # ---- running the deliver step -------------------------------------------------------------------

    def deliver(self, event_id: str, trigger: str = "INITIAL", *, sender: Any = None) -> DeliverOutcome:
        message = messages.DeliverEvent(team_id=TEAM, event_id=event_id, trigger=trigger)
        try:
            return deliver_event(
                message=message,
                records=self.records,
                resources=self.control,
                routing=self.routing,
                accounts=self.control,
                payloads=self.payloads,
                queues=self.queues,
                sender=sender or self.sender,
                mock_sender=self.mock_sender,
                clock=self.clock,
                pause=lambda seconds: self.clock.advance(seconds=seconds),
            )
        finally:
            self.collect()

    def collect(self) -> None:
        """Messages sent since the last look become visible `delay_s` after now, as in SQS."""
        for body, delay_s in self.queues.deliver[self._sent :]:
            self.resent_delays.append(delay_s)
            heapq.heappush(self._inbox, (self.clock.now() + timedelta(seconds=delay_s), next(self._order), body))
        self._sent = len(self.queues.deliver)

    def run(self, *, limit: int = 50) -> list[DeliverOutcome]:
        """Deliver queued messages in the order they become visible, moving the clock to each; until none is left."""
        self.collect()
        outcomes = []
        while self._inbox and len(outcomes) < limit:
            visible_at, _, body = heapq.heappop(self._inbox)
            if visible_at > self.clock.now():
                self.clock.advance(seconds=(visible_at - self.clock.now()).total_seconds())
            message = messages.decode(body)
            outcomes.append(self.deliver(message.event_id, message.trigger))
        return outcomes

    @property
    def pending_messages(self) -> int:
        self.collect()
        return len(self._inbox)

    def attempts(self, event_id: str) -> list[dict]:
        return sorted(self.records.attempts_of_event(event_id), key=lambda a: a["attempt_number"])


@pytest.fixture(scope="module")
def http_sender() -> Iterator[HttpSender]:
    with HttpSender(allow_private=True) as sender:
        yield sender


@pytest.fixture()
def receiver() -> Iterator[Receiver]:
    with Receiver() as running:
        yield running


@pytest.fixture()
def wired(http_sender) -> World:
    """A world whose deliveries go over loopback HTTP."""
    return World(http_sender)


@pytest.fixture()
def world() -> World:
    """A world whose deliveries are answered by a ScriptedSender (200 unless scripted)."""
    return World()


# ---- success and what the receiver sees ---------------------------------------------------------------


def test_a_delivery_answered_200_makes_the_event_successful_with_one_initial_attempt(wired, receiver):
    # Given
    receiver.script(Response(status=200, body=b'{"received":true}'))
    conn = wired.connection(wired.destination(receiver.url("/hooks?tenant=a")))
    event = wired.event(conn, path="/orders/42", query="id=42", headers={"x-custom": "kept"})
    # When
    outcome = wired.deliver(event["id"])
    # Then
    assert outcome.action is DeliverAction.DELIVERED
    [got] = receiver.wait_for(1)
    assert (got.method, got.path, got.query) == ("POST", "/hooks/orders/42", "tenant=a&id=42")
    assert got.body == b'{"id":"evt_1","type":"order.paid"}'
    assert got.header("x-custom") == "kept"
    stored = wired.records.get_event(event["id"])
    assert stored["status"] == "SUCCESSFUL" and stored["successful_at"] == iso(wired.clock.now())
    assert (stored["attempts"], stored["response_status"], stored["next_attempt_at"]) == (1, 200, None)
    [attempt] = wired.attempts(event["id"])
    assert attempt["status"] == "SUCCESSFUL" and attempt["trigger"] == "INITIAL" and attempt["attempt_number"] == 1
    assert attempt["response_status"] == 200 and attempt["body"] == '{"received":true}'
    assert attempt["requested_url"] == receiver.url("/hooks/orders/42?tenant=a&id=42")
    assert attempt["http_method"] == "POST" and attempt["error_code"] is None
    assert attempt["delivery_latency"] == 0 and attempt["response_latency"] >= 0
    assert attempt["expires_at"] == event["expires_at"]
    assert wired.pending_messages == 0


def test_every_delivery_is_signed_with_the_team_secret_and_carries_the_fasthook_headers(wired, receiver):
    # Given
    conn = wired.connection(wired.destination(receiver.url("/")))
    event = wired.event(conn, body=b'{"amount":100}')
    # When
    wired.deliver(event["id"])
    # Then
    [got] = receiver.wait_for(1)
    assert verify_signature(wired.signing_secret(), got.body, got.header("x-fasthook-signature"))
    assert got.header("x-fasthook-event-id") == event["id"]
    assert got.header("x-fasthook-request-id") == event["request_id"]
    assert got.header("x-fasthook-attempt-count") == "1"
    assert got.header("x-fasthook-attempt-trigger") == "INITIAL"
    assert got.header("x-fasthook-verified") == "true"


def test_a_body_kept_in_s3_is_delivered_byte_for_byte(wired, receiver):
    # Given a 1 MiB binary body stored outside the request record
    body = (bytes(range(256)) * 4096)[: 1024 * 1024]
    conn = wired.connection(wired.destination(receiver.url("/")))
    event = wired.event(conn, body=body, large=True)
    # When
    wired.deliver(event["id"])
    # Then
    [got] = receiver.wait_for(1)
    assert got.body == body


def test_the_source_api_key_header_does_not_travel_on_to_the_destination(wired, receiver):
    # Given a source that checks an API key header
    source = wired.source(config={"auth_type": "API_KEY", "auth": {"header_key": "x-api-key", "api_key": "k-123"}})
    conn = wired.connection(wired.destination(receiver.url("/")), source=source)
    event = wired.event(conn, headers={"x-api-key": "k-123", "x-other": "1"})
    # When
    wired.deliver(event["id"])
    # Then
    [got] = receiver.wait_for(1)
    assert got.header("x-api-key") is None and got.header("x-other") == "1"


def test_transformed_event_data_is_delivered_instead_of_the_stored_request(world):
    # Given an event whose connection transformed the request
    conn = world.connection(world.destination("https://receiver.example.test/in"))
    data = {"method": "PUT", "path": "/v2", "query": "x=1", "headers": {"x-t": "yes"}, "body": b"new", "body_key": None}
    event = world.event(conn, data=data)
    # When
    world.deliver(event["id"])
    # Then
    [(_, sent)] = world.sender.calls
    assert (sent.method, sent.url, sent.body) == ("PUT", "https://receiver.example.test/in/v2?x=1", b"new")
    assert sent.header("x-t") == "yes"


def test_a_destination_api_key_in_the_query_is_redacted_in_the_attempt(world):
    # Given
    auth = {"key": "token", "api_key": "s3cret", "to": "query"}
    conn = world.connection(world.destination("https://receiver.example.test/in", auth_type="API_KEY", auth=auth))
    event = world.event(conn, query="a=1")
    # When
    world.deliver(event["id"])
    # Then the receiver got the key, the attempt does not show it
    [(_, sent)] = world.sender.calls
    assert "token=s3cret" in sent.url
    [attempt] = world.attempts(event["id"])
    assert attempt["requested_url"] == "https://receiver.example.test/in?a=1&token=REDACTED"


def test_a_mock_api_destination_is_answered_without_any_network(world):
    # Given a MOCK_API destination and an HTTP sender that must not be used
    conn = world.connection(world.destination(path="/mock/orders"))
    event = world.event(conn)
    # When
    outcome = world.deliver(event["id"])
    # Then
    assert outcome.action is DeliverAction.DELIVERED
    assert world.sender.calls == []
    [attempt] = world.attempts(event["id"])
    assert (attempt["status"], attempt["response_status"]) == ("SUCCESSFUL", 200)
    assert json.loads(attempt["body"]) == {"status": "ok"}
    assert attempt["requested_url"] == "/mock/orders"
    assert world.records.get_event(event["id"])["status"] == "SUCCESSFUL"


# ---- retries ---------------------------------------------------------------------------------------------


def test_a_500_then_200_under_a_linear_rule_is_retried_automatically_and_then_succeeds(wired, receiver):
    # Given
    receiver.script(Response(status=500, body=b"boom"))
    conn = wired.connection(wired.destination(receiver.url("/")), rules=[linear(count=3, interval=5_000)])
    event = wired.event(conn)
    start = wired.clock.now()
    # When the first try fails
    first = wired.deliver(event["id"])
    # Then a retry is scheduled 5 s later
    assert first.action is DeliverAction.RETRY_SCHEDULED and first.resend_delay_s == 5
    queued = wired.records.get_event(event["id"])
    assert (queued["status"], queued["next_trigger"], queued["attempts"]) == ("QUEUED", "AUTOMATIC", 1)
    assert queued["next_attempt_at"] == iso(start + timedelta(seconds=5))
    assert (queued["response_status"], queued["last_attempt_at"]) == (500, iso(start))
    # When the retry runs
    [second] = wired.run()
    # Then
    assert second.action is DeliverAction.DELIVERED
    requests = receiver.wait_for(2)
    assert [r.header("x-fasthook-attempt-count") for r in requests] == ["1", "2"]
    assert [r.header("x-fasthook-attempt-trigger") for r in requests] == ["INITIAL", "AUTOMATIC"]
    attempts = wired.attempts(event["id"])
    assert [(a["attempt_number"], a["trigger"], a["status"]) for a in attempts] == [
        (1, "INITIAL", "FAILED"),
        (2, "AUTOMATIC", "SUCCESSFUL"),
    ]
    assert attempts[0]["body"] == "boom" and attempts[0]["response_status"] == 500
    done = wired.records.get_event(event["id"])
    assert (done["status"], done["attempts"]) == ("SUCCESSFUL", 2)
    assert done["successful_at"] == iso(start + timedelta(seconds=5))


def test_exponential_retries_double_their_delay_and_the_event_fails_once_the_count_is_used(world):
    # Given a receiver that always answers 500
    world.sender = ScriptedSender(world.clock, default=answer(500))
    conn = world.connection(world.destination(), rules=[exponential(count=3, interval=1_000)])
    event = world.event(conn)
    # When
    world.deliver(event["id"])
    outcomes = world.run()
    # Then
    assert world.resent_delays == [1, 2, 4]
    assert [o.action for o in outcomes] == [DeliverAction.RETRY_SCHEDULED] * 2 + [DeliverAction.FAILED]
    sent_at = [at for at, _ in world.sender.calls]
    assert [(b - a).total_seconds() for a, b in itertools.pairwise(sent_at)] == [1, 2, 4]
    failed = world.records.get_event(event["id"])
    assert (failed["status"], failed["attempts"], failed["next_attempt_at"]) == ("FAILED", 4, None)
    assert [a["trigger"] for a in world.attempts(event["id"])] == ["INITIAL"] + ["AUTOMATIC"] * 3


def test_a_status_the_retry_rule_excludes_fails_the_event_at_once(wired, receiver):
    # Given a rule that retries everything but 404
    receiver.script(Response(status=404))
    conn = wired.connection(wired.destination(receiver.url("/")), rules=[linear(response_status_codes=["!404"])])
    event = wired.event(conn)
    # When
    outcome = wired.deliver(event["id"])
    # Then
    assert outcome.action is DeliverAction.FAILED and outcome.reason == "status 404 is not retried"
    stored = wired.records.get_event(event["id"])
    assert (stored["status"], stored["attempts"], stored["response_status"]) == ("FAILED", 1, 404)
    assert wired.pending_messages == 0


def test_without_a_retry_rule_a_failed_delivery_is_final_after_one_attempt(wired, receiver):
    # Given
    receiver.script(Response(status=500))
    conn = wired.connection(wired.destination(receiver.url("/")))
    event = wired.event(conn)
    # When
    outcome = wired.deliver(event["id"])
    # Then
    assert outcome.action is DeliverAction.FAILED
    assert [a["status"] for a in wired.attempts(event["id"])] == ["FAILED"]
    assert wired.records.get_event(event["id"])["status"] == "FAILED"
    assert wired.pending_messages == 0


@pytest.mark.parametrize(
    ("retry_after", "expected_delay"),
    [
        ("120", timedelta(seconds=120)),
        ("HTTP-DATE+300", timedelta(seconds=300)),
        ("999999", timedelta(hours=24)),
        ("1", timedelta(seconds=10)),
    ],
    ids=["seconds", "http-date", "capped-at-24h", "shorter-than-the-interval"],
)
def test_a_retry_after_longer_than_the_rule_interval_sets_the_next_attempt(world, retry_after, expected_delay):
    # Given a receiver that answers 503 with Retry-After
    if retry_after.startswith("HTTP-DATE+"):
        when = world.clock.now() + timedelta(seconds=int(retry_after.removeprefix("HTTP-DATE+")))
        retry_after = email.utils.format_datetime(when, usegmt=True)
    world.sender = ScriptedSender(world.clock, answer(503, **{"Retry-After": retry_after}))
    conn = world.connection(world.destination(), rules=[linear(count=1, interval=10_000)])
    event = world.event(conn)
    # When
    outcome = world.deliver(event["id"])
    # Then
    assert outcome.action is DeliverAction.RETRY_SCHEDULED
    stored = world.records.get_event(event["id"])
    assert stored["next_attempt_at"] == iso(world.clock.now() + expected_delay)
    assert world.resent_delays == [min(900, int(expected_delay.total_seconds()))]


def test_a_receiver_slower_than_the_timeout_gives_a_timeout_attempt_that_is_retried(wired, receiver):
    # Given a receiver that answers after 2 s and a destination that waits 1 s
    receiver.script(Response(status=200, delay_s=2))
    conn = wired.connection(wired.destination(receiver.url("/"), http_timeout=1), rules=[linear(count=2)])
    event = wired.event(conn)
    # When
    outcome = wired.deliver(event["id"])
    # Then
    assert outcome.action is DeliverAction.RETRY_SCHEDULED and outcome.error_code == "TIMEOUT"
    [attempt] = wired.attempts(event["id"])
    assert (attempt["status"], attempt["error_code"], attempt["response_status"]) == ("FAILED", "TIMEOUT", None)
    stored = wired.records.get_event(event["id"])
    assert (stored["status"], stored["error_code"], stored["next_trigger"]) == ("QUEUED", "TIMEOUT", "AUTOMATIC")


def test_a_refused_connection_is_retried_even_when_the_rule_names_only_some_statuses(wired):
    # Given a destination nobody listens on and a rule that retries only 500
    import socket

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    conn = wired.connection(
        wired.destination(f"http://127.0.0.1:{port}/"), rules=[linear(response_status_codes=["500"])]
    )
    event = wired.event(conn)
    # When
    outcome = wired.deliver(event["id"])
    # Then
    assert outcome.action is DeliverAction.RETRY_SCHEDULED and outcome.error_code == "CONNECTION_REFUSED"


def test_a_two_hour_retry_interval_is_chained_through_900_second_messages(world):
    # Given a first try that fails and a rule that waits two hours
    world.sender = ScriptedSender(world.clock, answer(500))
    conn = world.connection(world.destination(), rules=[linear(count=1, interval=7_200_000)])
    event = world.event(conn)
    start = world.clock.now()
    # When
    world.deliver(event["id"])
    outcomes = world.run()
    # Then every hop is at most 900 s, and the retry goes out exactly when it is due
    assert world.resent_delays == [900] * 8
    assert [o.action for o in outcomes] == [DeliverAction.DEFERRED] * 7 + [DeliverAction.DELIVERED]
    retried_at, retry = world.sender.calls[1]
    assert retried_at == start + timedelta(hours=2)
    assert retry.header("x-fasthook-attempt-trigger") == "AUTOMATIC"
    assert world.records.get_event(event["id"])["status"] == "SUCCESSFUL"


# ---- rate limits ----------------------------------------------------------------------------------------


def test_a_rate_limit_of_two_per_second_spaces_deliveries_half_a_second_apart(world):
    # Given five events for a destination limited to 2 per second, all due now
    conn = world.connection(world.destination(rate_limit=2, rate_limit_period="second"))
    events = [world.event(conn) for _ in range(5)]
    # When their messages arrive together
    outcomes = [world.deliver(e["id"]) for e in events]
    # Then each waits for its slot in the worker (under a second, so no trip back through SQS)
    assert [o.action for o in outcomes] == [DeliverAction.DELIVERED] * 5
    assert world.resent_delays == []
    sent_at = [at for at, _ in world.sender.calls]
    assert all((b - a) >= timedelta(milliseconds=500) for a, b in itertools.pairwise(sent_at))
    assert all((c - a) >= timedelta(seconds=1) for a, _, c in zip(sent_at, sent_at[1:], sent_at[2:], strict=False))


def test_a_rate_per_minute_sends_the_next_one_back_through_the_queue(world):
    # Given a destination limited to 60 per minute: one slot a second
    conn = world.connection(world.destination(rate_limit=60, rate_limit_period="minute"))
    events = [world.event(conn) for _ in range(3)]
    start = world.clock.now()
    # When their messages arrive together
    outcomes = [world.deliver(e["id"]) for e in events]
    # Then one goes now; the others wait a whole second, on SQS rather than in the worker
    assert [o.action for o in outcomes] == [DeliverAction.DELIVERED] + [DeliverAction.DEFERRED] * 2
    assert all(o.resend_delay_s == 1 for o in outcomes[1:])
    for waiting in events[1:]:
        stored = world.records.get_event(waiting["id"])
        assert (stored["status"], stored["attempts"]) == ("QUEUED", 0)
        assert stored["next_attempt_at"] == iso(start + timedelta(seconds=1))
        assert "lease_id" not in stored
    # When the queue plays out
    world.run()
    # Then all are delivered, a second apart
    sent_at = [at for at, _ in world.sender.calls]
    assert len(sent_at) == 3
    assert all((b - a) >= timedelta(seconds=1) for a, b in itertools.pairwise(sent_at))


def test_a_concurrent_limit_starts_that_many_and_the_rest_wait_for_a_slot(world):
    # Given a destination with at most 2 deliveries in flight and a 5 s timeout
    conn = world.connection(world.destination(rate_limit=2, rate_limit_period="concurrent", http_timeout=5))
    events = [world.event(conn) for _ in range(3)]
    # When
    outcomes = [world.deliver(e["id"]) for e in events]
    # Then the third waits for a slot: 2 per (timeout + 15 s margin) is one every 10 s
    assert [o.action for o in outcomes] == [DeliverAction.DELIVERED] * 2 + [DeliverAction.DEFERRED]
    assert outcomes[2].resend_delay_s == 10
    assert len(world.sender.calls) == 2


# ---- leases ---------------------------------------------------------------------------------------------


def test_a_message_for_an_event_another_worker_has_leased_does_not_call_the_receiver(world):
    # Given another worker holds the lease
    conn = world.connection(world.destination())
    event = world.event(conn)
    now = world.clock.now()
    assert world.records.lease_event(
        event["id"], lease_id="other-worker", now=iso(now), until=iso(now + timedelta(seconds=45))
    )
    # When a second copy of the message arrives
    outcome = world.deliver(event["id"])
    # Then
    assert outcome.action is DeliverAction.SKIPPED
    assert world.sender.calls == [] and world.attempts(event["id"]) == []
    assert world.pending_messages == 0


def test_an_attempt_whose_lease_expired_meanwhile_is_recorded_but_changes_nothing_else(world):
    # Given a receiver so slow that the lease expires and another worker takes the event over
    class SlowSender:
        def send(self, req: OutboundRequest) -> DeliveryResult:
            world.clock.advance(seconds=120)
            now = world.clock.now()
            taken = world.records.lease_event(
                event["id"], lease_id="next-worker", now=iso(now), until=iso(now + timedelta(seconds=45))
            )
            assert taken is not None
            return answer(200)

    conn = world.connection(world.destination())
    event = world.event(conn)
    # When
    outcome = world.deliver(event["id"], sender=SlowSender())
    # Then
    assert outcome.action is DeliverAction.LEASE_LOST
    assert [a["status"] for a in world.attempts(event["id"])] == ["SUCCESSFUL"]
    stored = world.records.get_event(event["id"])
    assert (stored["status"], stored["attempts"], stored["lease_id"]) == ("QUEUED", 0, "next-worker")
    assert world.pending_messages == 0


# ---- events that are not delivered ---------------------------------------------------------------------


@pytest.mark.parametrize("status", ["HOLD", "CANCELLED", "SUCCESSFUL", "FAILED"])
def test_an_event_that_is_held_or_final_is_acked_without_a_call(world, status):
    # Given
    conn = world.connection(world.destination())
    event = world.event(conn, status=status)
    # When
    outcome = world.deliver(event["id"])
    # Then
    assert outcome.action is DeliverAction.SKIPPED
    assert world.sender.calls == [] and world.pending_messages == 0
    assert world.records.get_event(event["id"])["status"] == status


def test_a_message_for_an_event_that_no_longer_exists_is_acked(world):
    # When
    outcome = world.deliver(derived_id(Prefix.EVENT, new_id(Prefix.REQUEST), "web_x"))
    # Then
    assert outcome.action is DeliverAction.SKIPPED and world.pending_messages == 0


def test_a_deleted_destination_cancels_the_event_without_a_call(world):
    # Given
    dest = world.destination()
    event = world.event(world.connection(dest))
    destinations.delete_destination(team_id=TEAM, destination_id=dest["id"], store=world.control)
    # When
    outcome = world.deliver(event["id"])
    # Then
    assert outcome.action is DeliverAction.CANCELLED
    stored = world.records.get_event(event["id"])
    assert (stored["status"], stored["error_code"]) == ("CANCELLED", "DESTINATION_DELETED")
    assert world.sender.calls == [] and world.pending_messages == 0


def test_a_deleted_connection_cancels_the_event(world):
    # Given
    conn = world.connection(world.destination())
    event = world.event(conn)
    connections.delete_connection(team_id=TEAM, connection_id=conn["id"], store=world.control)
    # When
    world.deliver(event["id"])
    # Then
    stored = world.records.get_event(event["id"])
    assert (stored["status"], stored["error_code"]) == ("CANCELLED", "CONNECTION_DELETED")


def test_an_event_of_a_connection_paused_since_it_was_routed_goes_on_hold(world):
    # Given
    conn = world.connection(world.destination())
    event = world.event(conn)
    connections.set_connection_paused(
        team_id=TEAM, connection_id=conn["id"], paused=True, store=world.control, clock=world.clock
    )
    # When
    outcome = world.deliver(event["id"])
    # Then
    assert outcome.action is DeliverAction.HELD
    stored = world.records.get_event(event["id"])
    assert (stored["status"], stored["next_attempt_at"]) == ("HOLD", None)
    assert world.sender.calls == [] and world.pending_messages == 0


def test_a_change_made_after_a_delivery_applies_to_the_very_next_one(world):
    # Given a worker that has delivered once, so it holds the team's resources in its cache
    dest = world.destination("https://old.example.test/hooks")
    conn = world.connection(dest)
    assert world.deliver(world.event(conn)["id"]).action is DeliverAction.DELIVERED
    # When the destination moves, then the next event goes to the new address
    destinations.update_destination(
        team_id=TEAM,
        destination_id=dest["id"],
        body=DestinationUpdate.model_validate({"config": {"url": "https://new.example.test/hooks"}}),
        store=world.control,
        clock=world.clock,
    )
    assert world.deliver(world.event(conn)["id"]).action is DeliverAction.DELIVERED
    assert [req.url for _, req in world.sender.calls] == [
        "https://old.example.test/hooks",
        "https://new.example.test/hooks",
    ]
    # And when the connection is paused, the next event is held, not delivered
    connections.set_connection_paused(
        team_id=TEAM, connection_id=conn["id"], paused=True, store=world.control, clock=world.clock
    )
    assert world.deliver(world.event(conn)["id"]).action is DeliverAction.HELD
    assert len(world.sender.calls) == 2


def test_a_disabled_destination_keeps_the_event_queued_and_looks_again_a_minute_later(world):
    # Given
    dest = world.destination()
    event = world.event(world.connection(dest))
    destinations.set_destination_enabled(
        team_id=TEAM, destination_id=dest["id"], enabled=False, store=world.control, clock=world.clock
    )
    # When
    outcome = world.deliver(event["id"])
    # Then
    assert outcome.action is DeliverAction.DEFERRED and outcome.resend_delay_s == 60
    stored = world.records.get_event(event["id"])
    assert stored["status"] == "QUEUED"
    assert stored["next_attempt_at"] == iso(world.clock.now() + timedelta(seconds=60))
    assert world.sender.calls == []
    # When it is enabled again, the next look delivers it
    destinations.set_destination_enabled(
        team_id=TEAM, destination_id=dest["id"], enabled=True, store=world.control, clock=world.clock
    )
    [again] = world.run()
    assert again.action is DeliverAction.DELIVERED


def test_a_message_that_arrives_early_goes_back_with_the_remaining_delay(world):
    # Given an event due in 100 s
    conn = world.connection(world.destination())
    event = world.event(conn)
    later = iso(world.clock.now() + timedelta(seconds=100))
    world.records.transition_event(
        event["id"], from_statuses=frozenset({"QUEUED"}), changes={"next_attempt_at": later}, now=iso(world.clock.now())
    )
    # When
    outcome = world.deliver(event["id"])
    # Then
    assert outcome.action is DeliverAction.DEFERRED and outcome.resend_delay_s == 100
    assert world.sender.calls == []


# ---- the worker entry point -------------------------------------------------------------------------------


def sqs_event(*bodies: str) -> dict:
    return {
        "Records": [
            {
                "messageId": f"m-{index}",
                "receiptHandle": f"rh-{index}",
                "body": body,
                "attributes": {"ApproximateReceiveCount": "1"},
                "messageAttributes": {},
                "eventSource": "aws:sqs",
                "eventSourceARN": "arn:aws:sqs:us-east-1:123456789012:fasthook-test-deliver",
                "awsRegion": "us-east-1",
            }
            for index, body in enumerate(bodies)
        ]
    }


@pytest.fixture()
def installed(wired) -> Iterator[World]:
    """The wired world installed as the process's container, as the Lambda handler finds it."""
    wiring.use(
        wiring.Container(
            settings=Settings(),
            clock=wired.clock,
            overrides={
                "control": wired.control,
                "records": wired.records,
                "payloads": wired.payloads,
                "queues": wired.queues,
                "sender": wired.sender,
            },
        )
    )
    try:
        yield wired
    finally:
        wiring.reset()


def test_the_worker_fails_only_the_records_it_cannot_read(installed, receiver):
    # Given a batch with a deliver message, a route message and garbage
    event = installed.event(installed.connection(installed.destination(receiver.url("/"))))
    good = messages.encode(messages.DeliverEvent(team_id=TEAM, event_id=event["id"], trigger="INITIAL"))
    route = messages.encode(messages.RouteRequest(team_id=TEAM, request_id=event["request_id"]))
    # When
    response = handle_deliver_batch(sqs_event(good, route, "not json"), None)
    # Then
    assert response == {"batchItemFailures": [{"itemIdentifier": "m-1"}, {"itemIdentifier": "m-2"}]}
    assert installed.records.get_event(event["id"])["status"] == "SUCCESSFUL"


def test_a_batch_reports_its_attempts_and_failed_attempts_as_cloudwatch_metrics(installed, receiver, capsys):
    # Given two events to a receiver that fails the first call and accepts the second
    receiver.script(Response(status=503), Response(status=200))
    conn = installed.connection(installed.destination(receiver.url("/")))
    events = [installed.event(conn) for _ in range(2)]
    bodies = [messages.encode(messages.DeliverEvent(team_id=TEAM, event_id=e["id"], trigger="INITIAL")) for e in events]
    capsys.readouterr()
    # When
    handle_deliver_batch(sqs_event(*bodies, "not json"), None)
    # Then one embedded-metric-format line says 2 attempts, 1 failed, for this stage
    lines = [json.loads(line) for line in capsys.readouterr().out.splitlines() if '"CloudWatchMetrics"' in line]
    [emf] = lines
    [directive] = emf["_aws"]["CloudWatchMetrics"]
    assert directive["Namespace"] == "FastHook" and directive["Dimensions"] == [["stage"]]
    assert (emf["Attempts"], emf["FailedAttempts"], emf["stage"]) == ([2.0], [1.0], Settings().stage)


def test_a_batch_that_made_no_attempt_emits_no_metrics(installed, capsys):
    # When: nothing in the batch reached a receiver
    handle_deliver_batch(sqs_event("not json"), None)
    # Then
    assert '"CloudWatchMetrics"' not in capsys.readouterr().out


def test_two_copies_of_one_message_in_a_batch_reach_the_receiver_once(installed, receiver):
    # Given a slow receiver and the same message twice, handled side by side
    receiver.answer_always(Response(status=200, delay_s=0.3))
    event = installed.event(installed.connection(installed.destination(receiver.url("/"))))
    body = messages.encode(messages.DeliverEvent(team_id=TEAM, event_id=event["id"], trigger="INITIAL"))
    # When
    response = handle_deliver_batch(sqs_event(body, body), None)
    # Then
    assert response == {"batchItemFailures": []}
    assert len(receiver.requests) == 1
    assert [a["status"] for a in installed.attempts(event["id"])] == ["SUCCESSFUL"]


def test_slow_receivers_in_one_batch_are_called_side_by_side(installed, receiver):
    # Given three events whose receiver takes 0.5 s each
    receiver.answer_always(Response(status=200, delay_s=0.5))
    conn = installed.connection(installed.destination(receiver.url("/")))
    events = [installed.event(conn) for _ in range(3)]
    bodies = [messages.encode(messages.DeliverEvent(team_id=TEAM, event_id=e["id"], trigger="INITIAL")) for e in events]
    # When
    handle_deliver_batch(sqs_event(*bodies), None)
    # Then three connections were open at once (one after the other would reuse one keep-alive connection)
    arrived = receiver.wait_for(3)
    assert len({r.client_port for r in arrived}) == 3
    assert all(installed.records.get_event(e["id"])["status"] == "SUCCESSFUL" for e in events)
