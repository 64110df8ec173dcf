"""Sweep: nothing accepted stays stuck, whatever happened to its queue message.

Two ways work can be left behind, and one use case for each:
- `sweep`: a pending event whose due time (or expired lease) lies more than a grace period in the
  past has lost its message (a failed send after the state was written, a chain hop that vanished) or
  its worker (died mid-lease). It gets a new deliver message; the lease in the deliver step keeps this
  harmless when the old message turns up after all.
- `fail_dead_letters`: a deliver message that failed every time SQS handed it out (the worker crashed,
  timed out, or could not reach storage) ends in the dead-letter queue. Its event becomes FAILED with
  an Attempt that says so (error_code DEAD_LETTERED), so an operator sees it and can retry it, instead
  of a QUEUED event nobody will ever deliver.

- the same use case takes route-queue dead letters: routing failed every time, so the Request is
  marked with `routing_error: DEAD_LETTERED` (unless a run finished routing it after all). The
  operator sees why it has no events and can replay it with `POST /requests/:id/retry`.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Final

from chalicelib.domain.ids import Prefix, derived_id
from chalicelib.domain.messages import DeliverEvent, RouteRequest, UnknownMessageError, decode, encode
from chalicelib.domain.statuses import PENDING_EVENT_STATUSES, AttemptStatus, AttemptTrigger, EventStatus
from chalicelib.domain.timefmt import iso
from chalicelib.flow.record import attempt_doc
from chalicelib.ports import Clock, Doc, Queues, RecordStore

# Longer than a healthy message takes to arrive, so a message that is merely in flight is not doubled.
SWEEP_GRACE_S: Final = 60
SWEEP_LIMIT: Final = 500
DEAD_LETTERED: Final = "DEAD_LETTERED"

_PENDING: Final = frozenset(status.value for status in PENDING_EVENT_STATUSES)


@dataclass(frozen=True)
class SweepOutcome:
    resent: tuple[str, ...]  # event ids that got a new deliver message
    more_due: bool  # the limit was reached: the next sweep continues


def sweep(
    *,
    records: RecordStore,
    queues: Queues,
    clock: Clock,
    limit: int = SWEEP_LIMIT,
    grace_s: int = SWEEP_GRACE_S,
) -> SweepOutcome:
    """Re-send a deliver message for every pending event overdue by more than `grace_s`."""
    before = iso(clock.now() - timedelta(seconds=grace_s))
    due = records.due_events(before=before, limit=limit)
    bodies = [
        (
            encode(
                DeliverEvent(
                    team_id=event["team_id"],
                    event_id=event["id"],
                    trigger=str(event.get("next_trigger") or AttemptTrigger.INITIAL),
                )
            ),
            0,
        )
        for event in due
    ]
    if bodies:
        queues.send_deliver(bodies)
    return SweepOutcome(resent=tuple(event["id"] for event in due), more_due=len(due) >= limit)


# ---- dead letters -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class DeadLetter:
    """One message taken from a dead-letter queue; `receive_count` is SQS's ApproximateReceiveCount."""

    body: str
    message_id: str = ""
    receive_count: int | None = None


@dataclass(frozen=True)
class DeadLetterOutcome:
    failed: tuple[str, ...] = ()  # events now FAILED with a DEAD_LETTERED attempt
    skipped: tuple[str, ...] = ()  # events gone, no longer pending, or leased by a live worker
    unrouted: tuple[str, ...] = ()  # requests now marked routing_error DEAD_LETTERED
    unreadable: tuple[str, ...] = ()  # message ids of bodies that are no FastHook message

    def merge(self, other: DeadLetterOutcome) -> DeadLetterOutcome:
        return DeadLetterOutcome(
            failed=self.failed + other.failed,
            skipped=self.skipped + other.skipped,
            unrouted=self.unrouted + other.unrouted,
            unreadable=self.unreadable + other.unreadable,
        )


def fail_dead_letters(*, messages: Sequence[DeadLetter], records: RecordStore, clock: Clock) -> DeadLetterOutcome:
    """Turn dead-lettered deliver messages into FAILED events and route messages into Requests marked as
    not routed (`unrouted`); safe to run twice on the same messages."""
    failed: list[str] = []
    skipped: list[str] = []
    unrouted: list[str] = []
    unreadable: list[str] = []
    for letter in messages:
        try:
            message = decode(letter.body)
        except UnknownMessageError:
            unreadable.append(letter.message_id)
            continue
        if isinstance(message, RouteRequest):
            if records.mark_routing_failed(message.request_id, cause=DEAD_LETTERED, at=iso(clock.now())):
                unrouted.append(message.request_id)
        elif _fail_event(message, letter, records, clock):
            failed.append(message.event_id)
        else:
            skipped.append(message.event_id)
    return DeadLetterOutcome(tuple(failed), tuple(skipped), tuple(unrouted), tuple(unreadable))


def _fail_event(message: DeliverEvent, letter: DeadLetter, records: RecordStore, clock: Clock) -> bool:
    event = records.get_event(message.event_id)
    if event is None or event.get("team_id") != message.team_id:
        return False
    now = clock.now()
    if event["status"] in _PENDING:
        attempt_number = int(event.get("attempts") or 0) + 1
        changes: Doc = {
            "status": EventStatus.FAILED.value,
            "attempts": attempt_number,
            "last_attempt_at": iso(now),
            "response_status": None,
            "error_code": DEAD_LETTERED,
            "next_attempt_at": None,
            "updated_at": iso(now),
        }
        # Only from a pending state with no live lease: a worker delivering it right now wins.
        updated = records.transition_event(event["id"], from_statuses=_PENDING, changes=changes, now=iso(now))
        if updated is None:
            return False
        _record_dead_letter(updated, letter, attempt_number, records, now)
        return True
    if event["status"] == EventStatus.FAILED and event.get("error_code") == DEAD_LETTERED:
        # Failed by an earlier run that stopped before its attempt was written: finish that run's work.
        _record_dead_letter(event, letter, int(event.get("attempts") or 1), records, now)
    return False


def _record_dead_letter(
    event: Doc, letter: DeadLetter, attempt_number: int, records: RecordStore, now: datetime
) -> None:
    # A derived id makes the write idempotent: a second run over the same letter rewrites the same attempt.
    attempt_id = derived_id(Prefix.ATTEMPT, event["id"], DEAD_LETTERED, str(attempt_number))
    if records.get_attempt(attempt_id) is not None:
        return
    times = f" {letter.receive_count} times" if letter.receive_count else " repeatedly"
    records.put_attempt(
        attempt_doc(
            event,
            attempt_id=attempt_id,
            attempt_number=attempt_number,
            trigger=str(event.get("next_trigger") or AttemptTrigger.INITIAL),
            status=AttemptStatus.FAILED,
            response_status=None,
            body="",
            error_code=DEAD_LETTERED,
            error_message=(
                f"The delivery message was received{times} without finishing (the worker crashed, ran out of "
                "time or could not reach storage) and went to the dead-letter queue; the event was marked "
                "FAILED so it does not wait forever. Retry it once the cause is fixed."
            ),
            requested_url=None,
            http_method=None,
            delivery_latency=None,
            response_latency=None,
            created_at=now,
        )
    )
