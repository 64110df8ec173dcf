"""The sweeper against the in-memory fakes: lost messages and dead workers are caught, nothing else is touched."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import pytest

from chalicelib import wiring
from chalicelib.domain import messages
from chalicelib.domain.outbound import DeliveryResult, OutboundRequest
from chalicelib.domain.timefmt import iso
from chalicelib.entrypoints.sweeper import drain_dead_letters, handle_sweep
from chalicelib.flow.deliver import DeliverAction
from chalicelib.flow.sweep import DeadLetter, fail_dead_letters, sweep
from chalicelib.settings import Settings
from tests.support.receiver import Receiver
from tests.unit.test_deliver import (  # noqa: F401  (http_sender is a fixture)
    TEAM,
    ScriptedSender,
    World,
    answer,
    http_sender,
    linear,
)


@pytest.fixture()
def world() -> World:
    return World()


@pytest.fixture()
def receiver() -> Iterator[Receiver]:
    with Receiver() as running:
        yield running


def run_sweep(world: World):
    try:
        return sweep(records=world.records, queues=world.queues, clock=world.clock)
    finally:
        world.collect()


def deliver_message(event: dict, trigger: str = "INITIAL") -> str:
    return messages.encode(messages.DeliverEvent(team_id=TEAM, event_id=event["id"], trigger=trigger))


# ---- sweep -----------------------------------------------------------------------------------------------


def test_an_event_whose_message_was_lost_is_resent_and_delivered(world):
    # Given a queued event whose message never came
    event = world.event(world.connection(world.destination()))
    world.clock.advance(seconds=61)
    # When
    swept = run_sweep(world)
    # Then
    assert swept.resent == (event["id"],) and not swept.more_due
    [outcome] = world.run()
    assert outcome.action is DeliverAction.DELIVERED


def test_the_sweep_resends_with_the_trigger_the_event_is_waiting_for(world):
    # Given an automatic retry whose message was lost
    world.sender = ScriptedSender(world.clock, answer(500))
    event = world.event(world.connection(world.destination(), rules=[linear(count=1, interval=5_000)]))
    world.deliver(event["id"])
    world.queues.deliver.clear()
    world.clock.advance(seconds=5 + 61)
    # When
    run_sweep(world)
    # Then
    [(body, delay_s)] = world.queues.deliver
    assert messages.decode(body) == messages.DeliverEvent(team_id=TEAM, event_id=event["id"], trigger="AUTOMATIC")
    assert delay_s == 0


def test_the_sweep_ignores_fresh_future_leased_and_final_events(world):
    # Given events made two minutes ago: one leased by a live worker, the others finished or held
    conn = world.connection(world.destination())
    leased = world.event(conn)
    finished = [world.event(conn, status=status) for status in ("SUCCESSFUL", "FAILED", "CANCELLED", "HOLD")]
    world.clock.advance(seconds=120)
    now = world.clock.now()
    assert world.records.lease_event(
        leased["id"], lease_id="live", now=iso(now), until=iso(now + timedelta(seconds=45))
    )
    # And events due just now, or due later
    world.event(conn)
    later = world.event(conn)
    world.records.transition_event(
        later["id"],
        from_statuses=frozenset({"QUEUED"}),
        changes={"next_attempt_at": iso(now + timedelta(minutes=10))},
        now=iso(now),
    )
    # When
    swept = run_sweep(world)
    # Then
    assert swept.resent == ()
    assert world.queues.deliver == []
    assert all(world.records.get_event(e["id"])["status"] == e["status"] for e in finished)


def test_the_sweep_takes_at_most_its_limit_and_says_more_are_due(world):
    # Given
    conn = world.connection(world.destination())
    events = [world.event(conn) for _ in range(3)]
    world.clock.advance(minutes=5)
    # When
    swept = sweep(records=world.records, queues=world.queues, clock=world.clock, limit=2)
    # Then
    assert len(swept.resent) == 2 and swept.more_due
    assert set(swept.resent) <= {e["id"] for e in events}


def test_a_worker_that_dies_after_the_call_leaves_the_event_pending_until_the_sweeper_resends_it(
    http_sender,  # noqa: F811
    receiver,
):
    # Given a worker that dies after the receiver answered, before anything was recorded
    class WorkerDied(Exception):
        pass

    class DiesAfterSending:
        def send(self, req: OutboundRequest) -> DeliveryResult:
            http_sender.send(req)
            raise WorkerDied

    world = World(http_sender)
    event = world.event(world.connection(world.destination(receiver.url("/"), http_timeout=30)))
    with pytest.raises(WorkerDied):
        world.deliver(event["id"], sender=DiesAfterSending())
    assert len(receiver.wait_for(1)) == 1
    stuck = world.records.get_event(event["id"])
    assert (stuck["status"], stuck["attempts"]) == ("QUEUED", 0) and world.attempts(event["id"]) == []
    # When SQS hands the message out again while the lease is live
    again = world.deliver(event["id"])
    # Then the receiver is not called a second time, and the sweeper leaves it alone too
    assert again.action is DeliverAction.SKIPPED and len(receiver.requests) == 1
    world.clock.advance(seconds=30 + 15)
    assert run_sweep(world).resent == ()
    # When the lease has been expired for longer than the sweeper's grace
    world.clock.advance(seconds=61)
    swept = run_sweep(world)
    [outcome] = world.run()
    # Then it is delivered: at least once, the receiver saw the same event twice
    assert swept.resent == (event["id"],)
    assert outcome.action is DeliverAction.DELIVERED
    first, second = receiver.wait_for(2)
    assert first.header("x-fasthook-event-id") == second.header("x-fasthook-event-id") == event["id"]
    done = world.records.get_event(event["id"])
    assert (done["status"], done["attempts"]) == ("SUCCESSFUL", 1)


# ---- dead letters -------------------------------------------------------------------------------------


def test_a_dead_lettered_deliver_message_fails_its_event_with_an_attempt_that_says_why(world):
    # Given a queued event whose message went to the dead-letter queue
    event = world.event(world.connection(world.destination()))
    letter = DeadLetter(body=deliver_message(event), message_id="m-1", receive_count=6)
    # When
    outcome = fail_dead_letters(messages=[letter], records=world.records, clock=world.clock)
    # Then
    assert outcome.failed == (event["id"],)
    stored = world.records.get_event(event["id"])
    assert (stored["status"], stored["error_code"], stored["attempts"]) == ("FAILED", "DEAD_LETTERED", 1)
    [attempt] = world.attempts(event["id"])
    assert (attempt["status"], attempt["error_code"], attempt["trigger"]) == ("FAILED", "DEAD_LETTERED", "INITIAL")
    assert "received 6 times" in attempt["error_message"] and "dead-letter queue" in attempt["error_message"]


def test_handling_the_same_dead_letter_twice_records_one_attempt(world):
    # Given
    event = world.event(world.connection(world.destination()))
    letter = DeadLetter(body=deliver_message(event))
    # When
    fail_dead_letters(messages=[letter], records=world.records, clock=world.clock)
    second = fail_dead_letters(messages=[letter], records=world.records, clock=world.clock)
    # Then
    assert second.failed == () and second.skipped == (event["id"],)
    assert len(world.attempts(event["id"])) == 1


def test_a_dead_letter_for_an_event_that_was_delivered_meanwhile_changes_nothing(world):
    # Given
    event = world.event(world.connection(world.destination()))
    world.deliver(event["id"])
    # When
    outcome = fail_dead_letters(messages=[DeadLetter(deliver_message(event))], records=world.records, clock=world.clock)
    # Then
    assert outcome.skipped == (event["id"],)
    assert world.records.get_event(event["id"])["status"] == "SUCCESSFUL"
    assert [a["status"] for a in world.attempts(event["id"])] == ["SUCCESSFUL"]


def test_a_dead_lettered_route_message_marks_its_request_as_not_routed(world):
    # Given: a stored request routing gave up on, one routed meanwhile, and one that was never stored
    stuck = {"id": "req_01M8547MZCKAJCA8VS2MAZA7PF", "team_id": TEAM, "status": "accepted", "routed_at": None}
    routed = {"id": "req_01M8547MZCKAJCA8VS2MAZA7PG", "team_id": TEAM, "status": "accepted", "routed_at": None}
    world.records.put_request(stuck)
    world.records.put_request(routed)
    world.records.finish_routing(routed["id"], events_count=1, ignored_count=0, routed_at=iso(world.clock.now()))
    route = [
        messages.encode(messages.RouteRequest(team_id=TEAM, request_id=request_id))
        for request_id in (stuck["id"], routed["id"], "req_01M8547MZCKAJCA8VS2MAZA7PH")
    ]
    letters = [DeadLetter(body, f"m-{i}") for i, body in enumerate(route)] + [DeadLetter("{not a message", "m-9")]
    # When
    outcome = fail_dead_letters(messages=letters, records=world.records, clock=world.clock)
    # Then: the operator sees why the stuck one has no events; the routed one is left as it is
    assert outcome.unrouted == (stuck["id"],)
    assert outcome.unreadable == ("m-9",)
    assert outcome.failed == outcome.skipped == ()
    marked = world.records.get_request(stuck["id"])
    assert (marked["routing_error"], marked["routing_failed_at"]) == ("DEAD_LETTERED", iso(world.clock.now()))
    assert "routing_error" not in world.records.get_request(routed["id"])


# ---- the scheduled entry point ----------------------------------------------------------------------------


class FakeSqs:
    """The two SQS calls the sweeper makes on a dead-letter queue, over a list of messages."""

    def __init__(self, bodies: list[str]) -> None:
        self.waiting = [
            {
                "MessageId": f"m-{i}",
                "ReceiptHandle": f"rh-{i}",
                "Body": b,
                "Attributes": {"ApproximateReceiveCount": "6"},
            }
            for i, b in enumerate(bodies)
        ]
        self.deleted: list[str] = []

    def receive_message(self, **kwargs: Any) -> dict:
        batch, self.waiting = (
            self.waiting[: kwargs["MaxNumberOfMessages"]],
            self.waiting[kwargs["MaxNumberOfMessages"] :],
        )
        return {"Messages": batch} if batch else {}

    def delete_message_batch(self, **kwargs: Any) -> dict:
        self.deleted += [entry["ReceiptHandle"] for entry in kwargs["Entries"]]
        return {"Successful": [{"Id": entry["Id"]} for entry in kwargs["Entries"]]}


def test_draining_a_dead_letter_queue_handles_then_deletes_every_batch(world):
    # Given 12 dead-lettered deliver messages
    conn = world.connection(world.destination())
    events = [world.event(conn) for _ in range(12)]
    sqs = FakeSqs([deliver_message(e) for e in events])
    # When
    outcome = drain_dead_letters(
        sqs,
        "https://sqs.test/deliver-dlq",
        lambda letters: fail_dead_letters(messages=letters, records=world.records, clock=world.clock),
    )
    # Then
    assert sorted(outcome.failed) == sorted(e["id"] for e in events)
    assert len(sqs.deleted) == 12 and sqs.waiting == []
    assert all(world.records.get_event(e["id"])["status"] == "FAILED" for e in events)


def test_the_scheduled_sweep_resends_overdue_events_and_returns_a_summary(world):
    # Given an overdue event and no dead-letter queue configured
    event = world.event(world.connection(world.destination()))
    world.clock.advance(minutes=2)
    wiring.use(
        wiring.Container(
            settings=Settings(),
            clock=world.clock,
            overrides={"control": world.control, "records": world.records, "queues": world.queues},
        )
    )
    try:
        # When
        summary = handle_sweep({}, None)
    finally:
        wiring.reset()
    # Then
    assert summary == {"resent": 1, "more_due": False}
    [(body, _)] = world.queues.deliver
    assert messages.decode(body).event_id == event["id"]
