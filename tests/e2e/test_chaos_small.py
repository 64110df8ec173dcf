"""The fault run in small: 500 webhooks through the embedded stack while every fault is on.

The same `bench.chaos.run` as `make chaos` (one code path), with 500 webhooks (the embedded stack
delivers about 3 a second with these faults on a shared 2-core machine, so this keeps the run near
three minutes), shares of faults high enough that each kind happens several times in a small run,
and the sweeper's grace shortened so a crashed worker's lease is taken over within the run. Figures
(throughput, duplicates) are the bench's business; this test holds the promises: nothing accepted is
lost, no two deliveries of one event overlap, nothing is left unfinished, and the attempts tell the
truth.
"""

from __future__ import annotations

import pytest

from bench import chaos

SMALL = chaos.Params(
    count=500,
    rate=3.0,
    destinations=3,
    # The dice are seeded: with this seed the first hundred rolls of each hold several of every fault, so
    # the run below cannot end up without, say, a crash after the HTTP call.
    seed=11,
    receiver_5xx=0.08,
    receiver_timeout=0.04,
    crash_before=0.03,
    crash_after=0.03,
    duplicate=0.08,
    dynamodb_throttle=0.005,
    sqs_throttle=0.02,  # SQS sees few calls in a small run: enough that some are always throttled
    persistent_throttle=0.001,
    sweep_every_s=1.0,
    # Short enough that a dead worker's lease (1 s timeout + 15 s) is taken over well inside the run, long
    # enough that events merely waiting in the deliver queue's backlog are not sent again on every sweep.
    sweep_grace_s=20,
    visibility_s=20,
    final_within_s=120.0,
    drain_timeout_s=300.0,
    faults_after_send_s=20.0,
)


@pytest.fixture(scope="module")
def result() -> dict:
    ran = chaos.run(SMALL)
    print(chaos.markdown(ran))  # shown with any failure: the run's figures
    return ran


def test_every_accepted_webhook_is_delivered_or_failed_with_a_cause_despite_the_faults(result):
    # Given webhooks sent while receivers, workers, DynamoDB and SQS misbehave (the fixture's run)
    load, outcome = result["load"], result["outcome"]
    # When the faults stop and the pipeline settles
    # Then every webhook was accepted (the sender retries a 5xx as a provider does), none is lost, and
    # each request made exactly one event
    assert load["accepted"] == SMALL.count, load
    assert outcome["lost"] == 0, outcome["lost_request_ids"]
    assert outcome["delivered"] + outcome["failed_final"] == SMALL.count
    assert outcome["requests_with_extra_events"] == 0


def test_the_faults_of_every_kind_really_happened(result):
    # Given the run's own counts of what it injected
    faults, outcome = result["faults"], result["outcome"]
    # Then each kind of fault hit the pipeline at least once, so the other assertions are not vacuous
    assert faults["worker_crashes"].get("before", 0) > 0 and faults["worker_crashes"].get("after", 0) > 0, faults
    assert faults["duplicated_messages"].get("route", 0) > 0 and faults["duplicated_messages"].get("deliver", 0) > 0
    kinds = faults["throttles"]
    assert kinds.get("dynamodb throttle", 0) > 0 and kinds.get("sqs throttle", 0) > 0, kinds
    assert outcome["receiver_5xx"] > 0 and outcome["receiver_late"] > 0, outcome


def test_no_two_deliveries_of_one_event_overlap_at_the_receiver(result):
    # Then the lease kept every event to one delivery in flight at a time
    assert result["outcome"]["overlaps"] == 0, result["outcome"]["overlap_examples"]


def test_every_event_is_final_within_two_minutes_of_the_faults_stopping(result):
    # Then the sweeper and the queues' redelivery finished whatever a crashed worker left behind
    assert result["outcome"]["stuck_after_2_min"] == 0


def test_attempts_match_events_and_every_duplicate_delivery_has_a_known_cause(result):
    outcome = result["outcome"]
    # Then per event: attempts numbered 1..n as the event counts them, the last one's status is the
    # event's, and every receiver visit is a recorded attempt or an injected crash after the HTTP call
    assert outcome["attempts_inconsistent"] == 0, outcome["inconsistent_examples"]
    # And a duplicate delivery only ever comes from a crash after the HTTP call or a timed-out try
    assert "unexplained" not in outcome["duplicate_causes"], outcome["duplicate_causes"]
