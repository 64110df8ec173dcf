"""Record: what one delivery try leaves behind, decided from the destination's answer.

Pure functions, no IO: the Attempt document (the receiver-facing evidence an operator reads), and the
Event's next state under the connection's retry rule: SUCCESSFUL, QUEUED for an automatic retry after
a computed delay, or FAILED. The deliver step (flow/deliver.py) and the dead-letter handling of the
sweeper (flow/sweep.py) build their documents here, so every Attempt has the same shape.

Retry decisions, fixed here:
- A 2xx answer is a success; anything else is a failed try.
- A try that got no usable answer is retried when the cause can pass by itself (timeouts, refused or
  dropped connections, DNS and TLS trouble: "timeouts and connection errors are always retried while
  count remains"); a bad destination URL, a header HTTP cannot carry, or an address the SSRF guard
  refuses fail the same way every time until someone changes the destination, so they are FAILED at
  once and the operator retries after the fix.
- A status answer is retried when the rule's `response_status_codes` say so (rules.should_retry_status).
- `count` is the number of retries after the first try, counted over every try of the event whatever
  its trigger: an event ends FAILED with at most `count + 1` attempts.
- A `Retry-After` header (seconds or an HTTP-date) longer than the computed delay wins, capped at
  24 hours like every other retry delay.
"""

from __future__ import annotations

import email.utils
import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, Final, cast
from urllib.parse import unquote_plus, urlsplit, urlunsplit

from chalicelib.domain.errors import ValidationError
from chalicelib.domain.outbound import DeliveryErrorCode, DeliveryResult
from chalicelib.domain.rules import (
    MAX_RETRY_DELAY_MS,
    RetryRule,
    RuleType,
    next_retry_delay_ms,
    parse_rule,
    should_retry_status,
)
from chalicelib.domain.statuses import AttemptStatus, AttemptTrigger, EventStatus
from chalicelib.domain.timefmt import iso
from chalicelib.ports import Doc

MAX_RESPONSE_BODY_BYTES: Final = 64 * 1024
RETRYABLE_ERRORS: Final = frozenset(
    {
        DeliveryErrorCode.TIMEOUT,
        DeliveryErrorCode.CONNECTION_REFUSED,
        DeliveryErrorCode.DNS_LOOKUP_FAILED,
        DeliveryErrorCode.TLS_ERROR,
        DeliveryErrorCode.CONNECTION_ERROR,
    }
)
REDACTED: Final = "REDACTED"
_SECONDS = re.compile(r"\d{1,12}", re.ASCII)


# ---- the retry rule -----------------------------------------------------------------------------


def retry_rule_of(connection: Mapping[str, Any]) -> RetryRule | None:
    """The connection's retry rule, or None when it has none (then a failed try is final)."""
    for raw in connection.get("rules") or ():
        if isinstance(raw, dict) and raw.get("type") == RuleType.RETRY:
            try:
                return cast(RetryRule, parse_rule(raw, field="rules"))
            except ValidationError:
                # Rules are validated when saved; a stored rule that no longer parses (a bound changed)
                # must not make the delivery itself fail over and over, so it counts as no rule.
                return None
    return None


def retry_after_ms(headers: Mapping[str, str], now: datetime) -> int | None:
    """`Retry-After` (delta-seconds or HTTP-date) as ms from `now`, capped at 24 h; None if absent or unreadable."""
    value = next((v for k, v in headers.items() if k.lower() == "retry-after"), None)
    if value is None:
        return None
    text = value.strip()
    if _SECONDS.fullmatch(text):
        wait_ms = int(text) * 1000
    else:
        try:
            when = email.utils.parsedate_to_datetime(text)
        except (TypeError, ValueError, IndexError):
            return None
        if when.tzinfo is None:
            when = when.replace(tzinfo=UTC)
        wait_ms = int((when - now).total_seconds() * 1000)
    return max(0, min(wait_ms, MAX_RETRY_DELAY_MS))


def is_retryable(result: DeliveryResult, rule: RetryRule) -> bool:
    """Whether a failed try may be retried under `rule` (count aside)."""
    if result.ok:
        return False
    if result.error_code is not None:
        return result.error_code in RETRYABLE_ERRORS
    return result.status is not None and should_retry_status(result.status, rule.response_status_codes)


@dataclass(frozen=True)
class NextState:
    """Where the event goes after a try: its status, the wait before the retry, and why (for logs)."""

    status: EventStatus
    retry_delay_ms: int | None
    reason: str


def plan_next(*, result: DeliveryResult, attempt_number: int, rule: RetryRule | None, now: datetime) -> NextState:
    """SUCCESSFUL, QUEUED for retry number `attempt_number` after its delay, or FAILED."""
    if result.ok:
        return NextState(EventStatus.SUCCESSFUL, None, "delivered")
    if rule is None:
        return NextState(EventStatus.FAILED, None, "the connection has no retry rule")
    if attempt_number > rule.count:
        return NextState(EventStatus.FAILED, None, f"all {rule.count} retries are used")
    if not is_retryable(result, rule):
        what = f"error {result.error_code}" if result.error_code else f"status {result.status}"
        return NextState(EventStatus.FAILED, None, f"{what} is not retried")
    delay_ms = next_retry_delay_ms(rule, attempt_number)
    hinted = retry_after_ms(result.response_headers, now)
    if hinted is not None and hinted > delay_ms:
        return NextState(EventStatus.QUEUED, hinted, f"retry {attempt_number} of {rule.count}, as Retry-After asks")
    return NextState(EventStatus.QUEUED, delay_ms, f"retry {attempt_number} of {rule.count}")


def event_changes(
    *, state: NextState, result: DeliveryResult, attempt_number: int, attempted_at: datetime, now: datetime
) -> Doc:
    """The Event fields a finished try sets (applied with the lease, by complete_event)."""
    changes: Doc = {
        "status": state.status.value,
        "attempts": attempt_number,
        "last_attempt_at": iso(attempted_at),
        "response_status": result.status,
        "error_code": result.error_code.value if result.error_code else None,
        "next_attempt_at": None,
        "updated_at": iso(now),
    }
    if state.status is EventStatus.SUCCESSFUL:
        changes["successful_at"] = iso(now)
    elif state.status is EventStatus.QUEUED:
        changes["next_trigger"] = AttemptTrigger.AUTOMATIC.value
        changes["next_attempt_at"] = iso(now + timedelta(milliseconds=state.retry_delay_ms or 0))
    return changes


# ---- the Attempt document -----------------------------------------------------------------------


def attempt_doc(
    event: Mapping[str, Any],
    *,
    attempt_id: str,
    attempt_number: int,
    trigger: str,
    status: AttemptStatus,
    response_status: int | None,
    body: str,
    error_code: str | None,
    error_message: str | None,
    requested_url: str | None,
    http_method: str | None,
    delivery_latency: int | None,
    response_latency: int | None,
    created_at: datetime,
) -> Doc:
    """An Attempt with the contract's fields; ids and expiry come from its event."""
    return {
        "id": attempt_id,
        "team_id": event["team_id"],
        "event_id": event["id"],
        "request_id": event["request_id"],
        "connection_id": event["connection_id"],
        "destination_id": event["destination_id"],
        "attempt_number": attempt_number,
        "trigger": str(trigger),
        "status": status.value,
        "response_status": response_status,
        "body": body,
        "error_code": error_code,
        "error_message": error_message,
        "requested_url": requested_url,
        "http_method": http_method,
        "delivery_latency": delivery_latency,
        "response_latency": response_latency,
        "created_at": iso(created_at),
        "expires_at": event.get("expires_at"),
    }


def build_attempt(
    event: Mapping[str, Any],
    *,
    attempt_id: str,
    attempt_number: int,
    trigger: str,
    result: DeliveryResult,
    requested_url: str,
    http_method: str,
    due_at: datetime,
    sent_at: datetime,
    finished_at: datetime,
) -> Doc:
    """The Attempt of one HTTP try. `delivery_latency` runs from when the try was due to when it was sent."""
    return attempt_doc(
        event,
        attempt_id=attempt_id,
        attempt_number=attempt_number,
        trigger=trigger,
        status=AttemptStatus.SUCCESSFUL if result.ok else AttemptStatus.FAILED,
        response_status=result.status,
        body=result.response_body[:MAX_RESPONSE_BODY_BYTES].decode("utf-8", errors="replace"),
        error_code=result.error_code.value if result.error_code else None,
        error_message=result.error_message,
        requested_url=requested_url,
        http_method=http_method,
        delivery_latency=max(0, int((sent_at - due_at).total_seconds() * 1000)),
        response_latency=result.response_latency_ms,
        created_at=finished_at,
    )


def shown_url(url: str, destination: Mapping[str, Any]) -> str:
    """The URL as an Attempt shows it: a destination API key sent in the query is replaced by REDACTED.

    Attempts are read by everyone on the team and listed in bulk; the credential stays in the
    destination, visible only with include=config.auth.
    """
    config = destination.get("config") or {}
    auth = config.get("auth") or {}
    if config.get("auth_type") != "API_KEY" or auth.get("to") != "query" or not auth.get("key"):
        return url
    parts = urlsplit(url)
    pieces = []
    for piece in parts.query.split("&"):
        name = piece.split("=", 1)[0]
        pieces.append(f"{name}={REDACTED}" if piece and unquote_plus(name) == auth["key"] else piece)
    return urlunsplit(parts._replace(query="&".join(pieces)))
