"""Deliver: one try at getting an Event to its destination, recorded whatever the receiver does.

Reading order of `deliver_event`:
1. Is there anything to do? A gone, final or held event is acked. An event that is not due yet (a
   message that came early, or one hop of a wait longer than SQS's 15-minute delay) goes back with the
   remaining delay: long waits are chained, never dropped.
2. Do its connection and destination still allow it? Deleted -> CANCELLED; connection paused -> HOLD;
   destination disabled -> stays QUEUED and is looked at again in 60 s (see DISABLED_RECHECK_S).
3. The lease: a conditional write that only one worker wins, valid for the destination's HTTP timeout
   plus a margin. Whoever loses acks without calling the destination, so two deliveries of one event
   never overlap, even when SQS hands the same message to two workers.
4. The rate limit: one token from the destination's bucket. None left -> the lease is released, the
   event's next_attempt_at moves to when a token is due, and the message goes back with that delay.
5. The HTTP call (MOCK_API destinations are answered in process), then the Attempt and the Event's
   next state (flow/record.py), written with the lease: SUCCESSFUL, QUEUED for a retry (and its
   message sent), or FAILED.

A receiver's behaviour (5xx, timeouts, refused connections) is data on an Attempt, never an exception.
Store and queue failures do raise, so SQS retries the message; every step above is safe to repeat.

At-least-once: a worker that dies after the receiver answered but before step 5 is written leaves the
event QUEUED under a lease that expires; SQS redelivers the message (or the sweeper re-sends it) and
the receiver gets the same event again, with the same `x-fasthook-event-id` for it to deduplicate on.
"""

from __future__ import annotations

import math
import time
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Any, Final

from chalicelib.control.secrets import get_project_secrets
from chalicelib.domain import messages
from chalicelib.domain.errors import ValidationError
from chalicelib.domain.ids import Prefix, derived_id
from chalicelib.domain.messages import DeliverEvent
from chalicelib.domain.outbound import (
    DEFAULT_HTTP_TIMEOUT_S,
    DeliveryErrorCode,
    DeliveryResult,
    OutboundRequest,
    build_delivery,
)
from chalicelib.domain.statuses import FINAL_EVENT_STATUSES, PENDING_EVENT_STATUSES, AttemptTrigger, EventStatus
from chalicelib.domain.timefmt import iso
from chalicelib.flow.record import (
    build_attempt,
    event_changes,
    plan_next,
    retry_rule_of,
    shown_url,
)
from chalicelib.flow.routing import RoutingCache
from chalicelib.ports import (
    AccountStore,
    BulkStore,
    Clock,
    Doc,
    PayloadStore,
    Queues,
    RecordStore,
    ResourceStore,
    Sender,
)

LEASE_MARGIN_S: Final = 15
MAX_DELAY_S: Final = 900  # SQS's longest DelaySeconds
MAX_INLINE_WAIT_MS: Final = 1000  # rate-limit waits shorter than this are spent in the worker, longer ones on SQS
# A message may arrive a little before its event is due (the delay is whole seconds, clocks differ);
# within this much it is delivered rather than sent round again.
EARLY_TOLERANCE_S: Final = 1.0
# A disabled destination is a pause its owner will lift: its events stay QUEUED and are looked at
# again this often, rather than being failed (work nobody asked to drop) or held (HOLD belongs to
# paused connections, and only unpausing a connection releases it).
DISABLED_RECHECK_S: Final = 60
RATE_PERIOD_S: Final = {"second": 1, "minute": 60, "hour": 3600}
CONCURRENT: Final = "concurrent"

_PENDING: Final = frozenset(status.value for status in PENDING_EVENT_STATUSES)
_FINAL: Final = frozenset(status.value for status in FINAL_EVENT_STATUSES)


class DeliverAction(StrEnum):
    """What a deliver message led to. Every outcome acks the message; only an exception makes SQS retry it."""

    DELIVERED = "delivered"  # an attempt succeeded
    RETRY_SCHEDULED = "retry_scheduled"  # an attempt failed and the next one is queued
    FAILED = "failed"  # an attempt failed and no retry is left
    DEFERRED = "deferred"  # not due, rate limited or destination disabled: the message went back
    SKIPPED = "skipped"  # nothing to do: gone, final, held, or another worker has it
    CANCELLED = "cancelled"  # its connection or destination is gone
    HELD = "held"  # its connection is paused
    LEASE_LOST = "lease_lost"  # the attempt is recorded, but the lease expired and another worker took over


@dataclass(frozen=True)
class DeliverOutcome:
    event_id: str
    action: DeliverAction
    reason: str = ""
    attempt_id: str | None = None
    response_status: int | None = None
    error_code: str | None = None
    resend_delay_s: int | None = None


def deliver_event(
    *,
    message: DeliverEvent,
    records: RecordStore,
    resources: ResourceStore,
    routing: RoutingCache,
    accounts: AccountStore,
    payloads: PayloadStore,
    queues: Queues,
    sender: Sender,
    mock_sender: Sender,
    clock: Clock,
    lease_margin_s: int = LEASE_MARGIN_S,
    pause: Callable[[float], None] = time.sleep,
    bulk: BulkStore | None = None,
) -> DeliverOutcome:
    """Try to deliver the event a deliver message names; see the module docstring for the steps.

    `pause` waits out a rate-limit slot shorter than a second in the worker (SQS delays are whole
    seconds, so sending the message back for 100 ms would cost a full second of throughput).
    `routing`: the process's version-checked copy of the team's resources (flow/routing.py): the
    connection, destination and source cost one version read instead of three reads.
    """
    event_id = message.event_id
    event = records.get_event(event_id)
    if event is None or event.get("team_id") != message.team_id:
        return DeliverOutcome(event_id, DeliverAction.SKIPPED, "the event no longer exists")
    if event["status"] in _FINAL or event["status"] == EventStatus.HOLD:
        return DeliverOutcome(event_id, DeliverAction.SKIPPED, f"the event is {event['status']}")
    now = clock.now()
    early_s = _seconds_until_due(event, now)
    if early_s is not None:
        return _resend(queues, event, early_s, "not due yet", fallback_trigger=message.trigger)

    team_id = event["team_id"]
    team = routing.snapshot(team_id, resources)
    destination = team.destinations.get(event["destination_id"])
    if destination is None:
        return _cancel(records, event, now, "DESTINATION_DELETED", "its destination was deleted")
    connection = team.connections.get(event["connection_id"])
    if connection is None:
        return _cancel(records, event, now, "CONNECTION_DELETED", "its connection was deleted")
    request = records.get_request(event["request_id"])
    if request is None:
        return _cancel(records, event, now, "REQUEST_MISSING", "its request is no longer stored")
    if connection.get("paused_at"):
        return _hold(records, event, now)
    if destination.get("disabled_at"):
        return _wait_for_destination(records, queues, event, now, fallback_trigger=message.trigger)

    config = destination.get("config") or {}
    timeout_s = int(config.get("http_timeout") or DEFAULT_HTTP_TIMEOUT_S)
    lease_id = uuid.uuid4().hex
    lease_until = now + timedelta(seconds=timeout_s + lease_margin_s)
    leased = records.lease_event(event_id, lease_id=lease_id, now=iso(now), until=iso(lease_until))
    if leased is None:
        return DeliverOutcome(event_id, DeliverAction.SKIPPED, "another worker holds the lease or the event moved on")
    if _seconds_until_due(leased, now) is not None:
        # Another worker rescheduled it between our read and our lease, and sent its own message.
        records.complete_event(event_id, lease_id=lease_id, changes={}, leased=leased)
        return DeliverOutcome(event_id, DeliverAction.SKIPPED, "the event was rescheduled meanwhile")

    trigger = str(leased.get("next_trigger") or message.trigger)
    wait_ms = take_delivery_token(records, destination, now=now, lease_margin_s=lease_margin_s)
    waited_ms = 0
    while 0 < wait_ms and waited_ms + wait_ms < MAX_INLINE_WAIT_MS:
        # Held well inside the lease (the lease covers the HTTP timeout plus its margin).
        pause(wait_ms / 1000)
        waited_ms += wait_ms
        now = clock.now()
        wait_ms = take_delivery_token(records, destination, now=now, lease_margin_s=lease_margin_s)
    if wait_ms:
        delay_s = _delay_s(wait_ms)
        changes = {"next_attempt_at": iso(now + timedelta(seconds=delay_s)), "updated_at": iso(now)}
        if not records.complete_event(event_id, lease_id=lease_id, changes=changes, leased=leased):
            return DeliverOutcome(event_id, DeliverAction.LEASE_LOST, "the lease expired before it was released")
        _send(queues, leased, trigger, delay_s)
        return DeliverOutcome(event_id, DeliverAction.DEFERRED, "rate limited", resend_delay_s=delay_s)

    attempt_number = int(leased.get("attempts") or 0) + 1
    source = team.sources.get(event["source_id"])
    prepared = _prepare(
        event=leased,
        request=request,
        destination=destination,
        source=source,
        accounts=accounts,
        payloads=payloads,
        clock=clock,
        attempt_number=attempt_number,
        trigger=trigger,
    )
    sent_at = clock.now()
    if not isinstance(prepared, DeliveryResult) and sent_at + timedelta(seconds=timeout_s) > lease_until:
        # Getting here took most of the lease (store calls throttled and retried with backoff): a call
        # started now could outlive the lease while another worker delivers the same event (the hazard
        # the fault run's throttles create, bench/chaos.py); the event goes round again instead.
        if not records.complete_event(event_id, lease_id=lease_id, changes={}, leased=leased):
            return DeliverOutcome(event_id, DeliverAction.LEASE_LOST, "the lease expired before the call")
        _send(queues, leased, trigger, 0)
        return DeliverOutcome(event_id, DeliverAction.DEFERRED, "the lease ran short before the call", resend_delay_s=0)
    outbound: OutboundRequest | None = None
    if isinstance(prepared, DeliveryResult):
        result = prepared
    else:
        outbound = prepared
        result = (mock_sender if destination.get("type") == "MOCK_API" else sender).send(outbound)
    return _record(
        records=records,
        queues=queues,
        event=leased,
        lease_id=lease_id,
        connection=connection,
        destination=destination,
        outbound=outbound,
        result=result,
        attempt_number=attempt_number,
        trigger=trigger,
        due_at=_due_at(leased),
        sent_at=sent_at,
        finished_at=clock.now(),
        bulk=bulk,
    )


# ---- rate limits ----------------------------------------------------------------------------------


def take_delivery_token(
    records: RecordStore, destination: Mapping[str, Any], *, now: datetime, lease_margin_s: int
) -> int:
    """Take the destination's rate-limit token: 0 when the delivery may go now, else ms until one is due.

    `rate_limit` per second|minute|hour: DESIGN.md says "the bucket holds at most rate_limit tokens, so
    deliveries are spread, never burst". The bucket holds one token and refills at rate_limit / period:
    deliveries are evenly spaced (10/second is one every 100 ms, 60/minute one a second), so no window
    of one period ever sees more than rate_limit of them, even while webhooks keep arriving. A wait
    shorter than a second is spent in the worker (deliver_event's `pause`), so spacing below one
    second does not cost SQS's one-second delay granularity.

    `concurrent`: at most rate_limit deliveries in flight. The store has token buckets but no
    semaphore (a bucket cannot be given a token back), so this is approximated by a bucket of
    rate_limit tokens that refills rate_limit per (http_timeout + margin) seconds, the longest a
    delivery can hold its lease. At most rate_limit start at once, and on average at most rate_limit
    are in flight; but a burst can briefly overlap the next refill (under 2 x rate_limit in flight),
    and a fast receiver is held to rate_limit deliveries per (timeout + margin) although it could take
    more. An exact limit needs an acquire/release semaphore in the RecordStore.
    """
    config = destination.get("config") or {}
    period = config.get("rate_limit_period")
    # int(): numbers read back from DynamoDB are Decimals, which do not mix with float arithmetic.
    limit = int(config.get("rate_limit") or 0)
    if not limit or not period:
        return 0
    now_ms = int(now.timestamp() * 1000)
    if period == CONCURRENT:
        window_s = int(config.get("http_timeout") or DEFAULT_HTTP_TIMEOUT_S) + lease_margin_s
        return records.take_token(
            f"concurrent#{destination['id']}", capacity=limit, refill_per_s=limit / window_s, now_ms=now_ms
        )
    seconds = RATE_PERIOD_S.get(period)
    if seconds is None:
        return 0
    return records.take_token(f"rate#{destination['id']}", capacity=1, refill_per_s=limit / seconds, now_ms=now_ms)


# ---- building the request ---------------------------------------------------------------------------


def _prepare(
    *,
    event: Doc,
    request: Doc,
    destination: Doc,
    source: Doc | None,
    accounts: AccountStore,
    payloads: PayloadStore,
    clock: Clock,
    attempt_number: int,
    trigger: str,
) -> OutboundRequest | DeliveryResult:
    """The OutboundRequest, or a failed result when the stored destination cannot make one."""
    data = event.get("data") or request
    body = data.get("body")
    if body is None and data.get("body_key"):
        body = payloads.get(data["body_key"])
    secret = get_project_secrets(team_id=event["team_id"], accounts=accounts, clock=clock)["signing_secret"]["value"]
    try:
        return build_delivery(
            destination=destination,
            method=str(data.get("method") or request["method"]),
            path_suffix=str(data.get("path") or ""),
            query=str(data.get("query") or ""),
            headers=data.get("headers") or {},
            body=bytes(body or b""),
            event_id=event["id"],
            request_id=event["request_id"],
            attempt_number=attempt_number,
            trigger=trigger,
            verified=bool(request.get("verified")),
            signing_secret=secret,
            strip_headers=_source_credential_headers(source),
        )
    except ValidationError as exc:
        # A stored destination that no longer validates would fail every try the same way: record it.
        return DeliveryResult(
            ok=False, status=None, error_code=DeliveryErrorCode.INVALID_REQUEST, error_message=exc.message
        )


def _source_credential_headers(source: Doc | None) -> list[str]:
    """The header carrying the source's own API key: it proved the provider to FastHook, it must not travel on."""
    config = (source or {}).get("config") or {}
    header = (config.get("auth") or {}).get("header_key")
    return [header] if config.get("auth_type") == "API_KEY" and header else []


# ---- recording ------------------------------------------------------------------------------------


def _record(
    *,
    records: RecordStore,
    queues: Queues,
    event: Doc,
    lease_id: str,
    connection: Doc,
    destination: Doc,
    outbound: OutboundRequest | None,
    result: DeliveryResult,
    attempt_number: int,
    trigger: str,
    due_at: datetime,
    sent_at: datetime,
    finished_at: datetime,
    bulk: BulkStore | None = None,
) -> DeliverOutcome:
    config = destination.get("config") or {}
    attempt = build_attempt(
        event,
        # One id per (event, try number): a try whose attempt was written but whose event write failed
        # (a throttle outlasting the SDK's retries, an expired lease) is tried again under the same
        # number, and that try's attempt replaces it, so an event's attempts stay numbered 1..n.
        attempt_id=derived_id(Prefix.ATTEMPT, event["id"], "try", str(attempt_number)),
        attempt_number=attempt_number,
        trigger=trigger,
        result=result,
        requested_url=shown_url(outbound.url, destination)
        if outbound
        else str(config.get("url") or config.get("path")),
        http_method=outbound.method if outbound else str(config.get("http_method") or ""),
        due_at=due_at,
        sent_at=sent_at,
        finished_at=finished_at,
    )
    # The attempt is written first: it is what the receiver saw, true even if the lease was lost (until
    # the try that takes over, under the same number, replaces it with what the receiver saw then).
    records.put_attempt(attempt)
    state = plan_next(result=result, attempt_number=attempt_number, rule=retry_rule_of(connection), now=finished_at)
    changes = event_changes(
        state=state, result=result, attempt_number=attempt_number, attempted_at=sent_at, now=finished_at
    )
    facts = {"attempt_id": attempt["id"], "response_status": result.status, "error_code": attempt["error_code"]}
    if not records.complete_event(event["id"], lease_id=lease_id, changes=changes, leased=event):
        return DeliverOutcome(
            event["id"], DeliverAction.LEASE_LOST, "the lease expired before the attempt was recorded", **facts
        )
    if bulk is not None and trigger == AttemptTrigger.BULK_RETRY and event.get("batch_operation_id"):
        # A bulk operation's progress: its retry's attempt finished (done), and failed or not.
        bulk.add_outcome(str(event["batch_operation_id"]), failed=not result.ok)
    if state.status is EventStatus.QUEUED:
        delay_s = _delay_s(state.retry_delay_ms or 0)
        _send(queues, event, AttemptTrigger.AUTOMATIC, delay_s)
        return DeliverOutcome(event["id"], DeliverAction.RETRY_SCHEDULED, state.reason, resend_delay_s=delay_s, **facts)
    action = DeliverAction.DELIVERED if state.status is EventStatus.SUCCESSFUL else DeliverAction.FAILED
    return DeliverOutcome(event["id"], action, state.reason, **facts)


# ---- the other ways a message ends --------------------------------------------------------------------


def _cancel(records: RecordStore, event: Doc, now: datetime, code: str, why: str) -> DeliverOutcome:
    changes = {
        "status": EventStatus.CANCELLED.value,
        "error_code": code,
        "next_attempt_at": None,
        "updated_at": iso(now),
    }
    if records.transition_event(event["id"], from_statuses=_PENDING, changes=changes, now=iso(now)) is None:
        return DeliverOutcome(event["id"], DeliverAction.SKIPPED, "the event moved on before it could be cancelled")
    return DeliverOutcome(event["id"], DeliverAction.CANCELLED, f"cancelled: {why}", error_code=code)


def _hold(records: RecordStore, event: Doc, now: datetime) -> DeliverOutcome:
    changes = {"status": EventStatus.HOLD.value, "next_attempt_at": None, "updated_at": iso(now)}
    if records.transition_event(event["id"], from_statuses=_PENDING, changes=changes, now=iso(now)) is None:
        return DeliverOutcome(event["id"], DeliverAction.SKIPPED, "the event moved on before it could be held")
    return DeliverOutcome(event["id"], DeliverAction.HELD, "its connection is paused")


def _wait_for_destination(
    records: RecordStore, queues: Queues, event: Doc, now: datetime, *, fallback_trigger: str
) -> DeliverOutcome:
    # next_attempt_at moves too, so the sweeper does not see an overdue event and send a second message.
    changes = {"next_attempt_at": iso(now + timedelta(seconds=DISABLED_RECHECK_S)), "updated_at": iso(now)}
    if records.transition_event(event["id"], from_statuses=_PENDING, changes=changes, now=iso(now)) is None:
        return DeliverOutcome(
            event["id"], DeliverAction.SKIPPED, "another worker holds the lease or the event moved on"
        )
    return _resend(queues, event, DISABLED_RECHECK_S, "its destination is disabled", fallback_trigger=fallback_trigger)


def _resend(queues: Queues, event: Doc, delay_s: int, why: str, *, fallback_trigger: str) -> DeliverOutcome:
    _send(queues, event, str(event.get("next_trigger") or fallback_trigger), delay_s)
    return DeliverOutcome(event["id"], DeliverAction.DEFERRED, why, resend_delay_s=delay_s)


def _send(queues: Queues, event: Doc, trigger: str, delay_s: int) -> None:
    body = messages.encode(DeliverEvent(team_id=event["team_id"], event_id=event["id"], trigger=str(trigger)))
    queues.send_deliver([(body, min(delay_s, MAX_DELAY_S))])


# ---- time ---------------------------------------------------------------------------------------------


def _parse(stamp: str) -> datetime:
    return datetime.fromisoformat(stamp)


def _due_at(event: Doc) -> datetime:
    return _parse(event.get("next_attempt_at") or event["created_at"])


def _seconds_until_due(event: Doc, now: datetime) -> int | None:
    """Whole seconds (at most 900) until the event is due, or None when it is due now."""
    if not event.get("next_attempt_at"):
        return None
    remaining = (_parse(event["next_attempt_at"]) - now).total_seconds()
    if remaining <= EARLY_TOLERANCE_S:
        return None
    return min(math.ceil(remaining), MAX_DELAY_S)


def _delay_s(wait_ms: int) -> int:
    """SQS delays are whole seconds: round up, so the message never comes back before it is due."""
    return min(max(1, math.ceil(wait_ms / 1000)), MAX_DELAY_S)
