"""Timestamps as the API shows them (ISO-8601 UTC with milliseconds) and the time expressions it reads.

Filters take ISO-8601 or a relative expression `now`, `now-30s`, `now-15m`, `now-1h`, `now-7d`.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta

from chalicelib.domain.errors import InvalidParameterError

_RELATIVE = re.compile(r"^now(?:([+-])(\d{1,9})(ms|s|m|h|d|w))?$")
_UNITS = {"ms": 0.001, "s": 1, "m": 60, "h": 3600, "d": 86400, "w": 7 * 86400}


def iso(moment: datetime) -> str:
    """`2026-04-17T00:00:00.000Z`: sortable as text, so stored timestamps order correctly in DynamoDB."""
    moment = moment.astimezone(UTC)
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"


def parse_time(value: str, *, now: datetime, name: str) -> datetime:
    """Read an ISO-8601 or relative time; anything else is a 400 that names the parameter."""
    text = value.strip()
    match = _RELATIVE.match(text)
    if match:
        sign, amount, unit = match.groups()
        if not sign:
            return now
        try:
            delta = timedelta(seconds=int(amount) * _UNITS[unit])
            return now - delta if sign == "-" else now + delta
        except OverflowError as exc:
            raise InvalidParameterError(f"{name} reaches outside the calendar: {value!r:.60}") from exc
    try:
        parsed = datetime.fromisoformat(text.replace("Z", "+00:00").replace("z", "+00:00"))
    except ValueError as exc:
        raise InvalidParameterError(
            f"{name} must be an ISO-8601 time or a relative time like now-1h, not {value!r:.60}"
        ) from exc
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=UTC)
    return parsed.astimezone(UTC)
