"""Deliver-step faults the fault run (bench/chaos.py) brings out, held here against the in-memory fakes.

- A throttle that outlasts the SDK's retries on the event write, after the receiver answered: the
  event is tried again, and it used to get a second attempt with the same number (seen in a run).
- A worker slowed down between its lease and its HTTP call (store calls retried with backoff): the
  call could start with too little lease left and overlap another worker's delivery of the event
  (not seen in a run; the hazard the run's throttles create).
"""

from __future__ import annotations

from typing import Any

import pytest

from chalicelib.adapters.memory import MemoryControlStore, MemoryRecordStore
from chalicelib.domain.errors import FastHookError
from chalicelib.flow.deliver import LEASE_MARGIN_S, DeliverAction
from tests.unit.test_deliver import World


class Throttled(FastHookError):
    """What the DynamoDB adapter raises once botocore gave up retrying a throttled call."""


class EventWriteThrottledOnce(MemoryRecordStore):
    """The record store, but the first event write after a try is throttled past every retry."""

    def __init__(self) -> None:
        super().__init__()
        self.throttled = False

    def complete_event(
        self, event_id: str, *, lease_id: str, changes: dict[str, Any], leased: dict[str, Any] | None = None
    ) -> bool:
        if not self.throttled:
            self.throttled = True
            raise Throttled("ProvisionedThroughputExceededException")
        return super().complete_event(event_id, lease_id=lease_id, changes=changes, leased=leased)


class SlowSecretsLookup(MemoryControlStore):
    """The control store, but the next read of the signing secret (after the lease, before the call) takes `stall_s`."""

    def __init__(self, world: World, stall_s: float) -> None:
        super().__init__()
        self.world, self.stall_s = world, stall_s

    def get_secrets(self, team_id: str) -> Any:
        if self.stall_s:
            self.world.clock.advance(seconds=self.stall_s)
            self.stall_s = 0
        return super().get_secrets(team_id)


def test_a_try_whose_event_write_was_throttled_is_retried_under_the_same_attempt_number():
    # Given an event whose first try reaches the receiver but whose event write is then throttled past the retries
    world = World()
    world.records = EventWriteThrottledOnce()
    conn = world.connection(
        world.destination(), rules=[{"type": "retry", "strategy": "linear", "count": 3, "interval": 1000}]
    )
    event = world.event(conn)
    with pytest.raises(Throttled):
        world.deliver(event["id"])
    # When its lease runs out and the message comes back (SQS redelivers it, or the sweeper re-sends it)
    world.clock.advance(seconds=60)
    outcome = world.deliver(event["id"])
    # Then the receiver was called twice, and the event has one attempt, number 1, that says what the second call got
    assert outcome.action is DeliverAction.DELIVERED
    assert len(world.sender.calls) == 2
    stored = world.records.get_event(event["id"])
    assert (stored["status"], stored["attempts"]) == ("SUCCESSFUL", 1)
    assert [(a["attempt_number"], a["status"]) for a in world.attempts(event["id"])] == [(1, "SUCCESSFUL")]


def test_a_worker_left_with_less_lease_than_its_http_timeout_does_not_call_the_receiver():
    # Given a destination with a 10 s timeout (a lease of 10 s + the margin), and a worker that stalls
    # after taking the lease for longer than the margin
    world = World()
    world.control = slow = SlowSecretsLookup(world, stall_s=0)
    conn = world.connection(world.destination(http_timeout=10))
    event = world.event(conn)
    slow.stall_s = LEASE_MARGIN_S + 1
    # When it gets to the call
    outcome = world.deliver(event["id"])
    # Then it does not make it, it gives the lease back and sends the event round again at once
    assert outcome.action is DeliverAction.DEFERRED
    assert world.sender.calls == []
    stored = world.records.get_event(event["id"])
    assert (stored["status"], stored["attempts"], stored.get("lease_id")) == ("QUEUED", 0, None)
    # And the next try delivers it, once
    [again] = world.run()
    assert again.action is DeliverAction.DELIVERED and len(world.sender.calls) == 1


def test_a_worker_slowed_down_but_still_inside_its_lease_calls_the_receiver():
    # Given the same worker stalling for less than the lease's margin
    world = World()
    world.control = slow = SlowSecretsLookup(world, stall_s=0)
    conn = world.connection(world.destination(http_timeout=10))
    event = world.event(conn)
    slow.stall_s = LEASE_MARGIN_S - 1
    # When it delivers, then the call is made and recorded
    assert world.deliver(event["id"]).action is DeliverAction.DELIVERED
    assert [a["status"] for a in world.attempts(event["id"])] == ["SUCCESSFUL"]
