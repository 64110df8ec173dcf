"""Request and event metrics: zero-filled time series that agree exactly with the count endpoints.

A metric reads the same time-ordered team timeline (gsi1) and applies the same filters as
`GET /requests/count` and `GET /events/count` (observe.select_requests / select_events), so the sum
of a measure over the buckets is exactly the count of the matching list for the same window.

Decisions the spec leaves open, fixed here:
- **Window.** `date_range[start]` and `date_range[end]` are required, ISO-8601 or relative (`now-1h`),
  both inclusive like `from`/`to` on the lists. A missing one is a 400 that names it.
- **Buckets.** Aligned to the granularity on the UTC epoch (a 5m bucket starts at :00, :05, ...): the
  first bucket holds `start`, the last holds `end`, every bucket in between is present with zeros.
  A bucket counts only records inside the window, so the first and last may cover part of their span.
- **Granularity** defaults to `1h` (the guide's daily-review choice); at most `MAX_BUCKETS` buckets a
  call, else a 400 that says which granularity would fit.
- **Measures.** `measures[]` picks some (repeatable, or comma-separated); by default all of them.
  Event measures: `count` (events, without ignored branches, as `/events/count`), `delivered_count`
  (SUCCESSFUL), `failed_count` (FAILED), `queued_count` (SCHEDULED/QUEUED without a live delivery
  lease), `processing_count` (with one), `hold_count` (HOLD), `ignored_count` (ignored branches, as
  `/events/count?status=ignored`). With `status=ignored` (or `IGNORED`), `count` counts the ignored
  branches. Any other status narrows every measure to the events of that status.
- Expired records (past their `expires_at`) are not counted, as the lists do not show them.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime

from chalicelib.control import observe
from chalicelib.domain.errors import InvalidParameterError
from chalicelib.domain.statuses import EventStatus, RequestStatus
from chalicelib.domain.timefmt import iso, parse_time
from chalicelib.ports import Doc, RecordStore, ResourceStore

GRANULARITIES: dict[str, int] = {
    "1s": 1,
    "5s": 5,
    "10s": 10,
    "30s": 30,
    "1m": 60,
    "5m": 300,
    "15m": 900,
    "1h": 3600,
}
DEFAULT_GRANULARITY = "1h"
# A chart has no use for more points, and the answer stays small (1,000 buckets are about 60 KB).
MAX_BUCKETS = 1000

REQUEST_MEASURES = ("count", "accepted_count", "rejected_count")
EVENT_MEASURES = (
    "count",
    "delivered_count",
    "failed_count",
    "queued_count",
    "processing_count",
    "hold_count",
    "ignored_count",
)
# List-window parameters a metric replaces with date_range: a stray `from` must not narrow the window.
_WINDOW_NAMES = frozenset({"from", "to", "ingested_at[gte]", "ingested_at[lte]", "created_at[gte]", "created_at[lte]"})
_PENDING = frozenset({EventStatus.SCHEDULED.value, EventStatus.QUEUED.value})


@dataclass(frozen=True)
class Series:
    """The buckets of one metrics call: their aligned starts and the chosen measures."""

    start: datetime
    end: datetime
    granularity: str
    measures: tuple[str, ...]

    @property
    def step_s(self) -> int:
        return GRANULARITIES[self.granularity]

    @property
    def first_bucket(self) -> int:
        return int(self.start.timestamp()) // self.step_s * self.step_s

    @property
    def buckets(self) -> int:
        return (int(self.end.timestamp()) // self.step_s * self.step_s - self.first_bucket) // self.step_s + 1


def parse_series(
    query: Mapping[str, str], multi: Mapping[str, list[str]], *, allowed: tuple[str, ...], now: datetime
) -> Series:
    """The window, granularity and measures of a metrics call; every mistake is a 400 that names it."""
    bounds = []
    for name in ("date_range[start]", "date_range[end]"):
        raw = query.get(name)
        if not raw:
            raise InvalidParameterError(f"{name} is required (ISO-8601 or relative like now-1h)")
        moment = parse_time(raw, now=now, name=name)
        if not 1970 <= moment.year <= 9998:
            raise InvalidParameterError(f"{name} must be between the years 1970 and 9998, not {raw!r:.60}")
        # Stored times have millisecond precision: the window does too, so buckets and counts agree.
        bounds.append(moment.replace(microsecond=moment.microsecond // 1000 * 1000))
    start, end = bounds
    if start > end:
        raise InvalidParameterError(f"date_range[start] ({iso(start)}) is after date_range[end] ({iso(end)})")
    granularity = query.get("granularity") or DEFAULT_GRANULARITY
    if granularity not in GRANULARITIES:
        raise InvalidParameterError(f"granularity must be one of {' | '.join(GRANULARITIES)}, not {granularity!r:.40}")
    measures = _measures(multi, allowed)
    series = Series(start, end, granularity, measures)
    if series.buckets > MAX_BUCKETS:
        fits = next(
            (g for g, s in GRANULARITIES.items() if Series(start, end, g, measures).buckets <= MAX_BUCKETS), None
        )
        hint = f"; granularity={fits} fits" if fits else "; narrow the date_range"
        raise InvalidParameterError(
            f"date_range with granularity={granularity} gives {series.buckets} buckets, more than {MAX_BUCKETS}{hint}"
        )
    return series


def _measures(multi: Mapping[str, list[str]], allowed: tuple[str, ...]) -> tuple[str, ...]:
    raw = [*multi.get("measures[]", []), *multi.get("measures", [])]
    asked = [m.strip() for value in raw for m in value.split(",") if m.strip()]
    if not asked:
        return allowed
    unknown = [m for m in asked if m not in allowed]
    if unknown:
        raise InvalidParameterError(f"measures[] must be among {' | '.join(allowed)}, not {unknown[0]!r:.40}")
    return tuple(dict.fromkeys(asked))


def _list_query(query: Mapping[str, str], series: Series) -> dict[str, str]:
    """The list filters of the call with the metric's window: what the count endpoints would be asked."""
    kept = {k: v for k, v in query.items() if k not in _WINDOW_NAMES}
    return {**kept, "from": iso(series.start), "to": iso(series.end)}


def _empty(series: Series) -> list[dict[str, int]]:
    return [dict.fromkeys(series.measures, 0) for _ in range(series.buckets)]


def _present(series: Series, tallies: list[dict[str, int]]) -> Doc:
    first = series.first_bucket
    return {
        "data": [
            {"time_bucket": iso(datetime.fromtimestamp(first + i * series.step_s, UTC)), "metrics": tally}
            for i, tally in enumerate(tallies)
        ],
        "granularity": series.granularity,
    }


def _bucket_of(series: Series, at: str) -> int:
    moment = datetime.fromisoformat(at.replace("Z", "+00:00"))
    return (int(moment.timestamp()) - series.first_bucket) // series.step_s


def _add(tallies: list[dict[str, int]], index: int, names: tuple[str, ...]) -> None:
    if 0 <= index < len(tallies):
        bucket = tallies[index]
        for name in names:
            if name in bucket:
                bucket[name] += 1


def request_metrics(
    *,
    team_id: str,
    query: Mapping[str, str],
    multi: Mapping[str, list[str]],
    records: RecordStore,
    resources: ResourceStore,
    now: datetime,
) -> Doc:
    series = parse_series(query, multi, allowed=REQUEST_MEASURES, now=now)
    selection = observe.select_requests(_list_query(query, series), team_id=team_id, resources=resources, now=now)
    tallies = _empty(series)
    if not selection.nothing:
        for point in records.timeline_points(team_id, "REQ", selection.query, ("ingested_at", "status")):
            kind = "accepted_count" if point.get("status") == RequestStatus.ACCEPTED.value else "rejected_count"
            _add(tallies, _bucket_of(series, point["ingested_at"]), ("count", kind))
    return _present(series, tallies)


def _event_measure(point: Doc, now_iso: str) -> str | None:
    status = point.get("status")
    if status in _PENDING:
        lease_until = point.get("lease_until")
        return "processing_count" if isinstance(lease_until, str) and lease_until > now_iso else "queued_count"
    return {
        EventStatus.SUCCESSFUL.value: "delivered_count",
        EventStatus.FAILED.value: "failed_count",
        EventStatus.HOLD.value: "hold_count",
    }.get(status or "")


def event_metrics(
    *,
    team_id: str,
    query: Mapping[str, str],
    multi: Mapping[str, list[str]],
    records: RecordStore,
    resources: ResourceStore,
    now: datetime,
) -> Doc:
    series = parse_series(query, multi, allowed=EVENT_MEASURES, now=now)
    list_query = _list_query(query, series)
    wanted = observe.parse_event_status(query.get("status"))
    tallies = _empty(series)
    if not wanted.ignored:
        events = observe.select_events(list_query, team_id=team_id, resources=resources, now=now)
        if not events.nothing:
            now_iso = iso(now)
            for point in records.timeline_points(team_id, "EVT", events.query, ("created_at", "status", "lease_until")):
                measure = _event_measure(point, now_iso)
                _add(tallies, _bucket_of(series, point["created_at"]), ("count", measure) if measure else ("count",))
    if not query.get("status") or wanted.ignored:
        ignored = observe.select_events(
            {**list_query, "status": "ignored"}, team_id=team_id, resources=resources, now=now
        )
        measured = ("count", "ignored_count") if wanted.ignored else ("ignored_count",)
        if not ignored.nothing:
            for point in records.timeline_points(team_id, "IGN", ignored.query, ("created_at",)):
                _add(tallies, _bucket_of(series, point["created_at"]), measured)
    return _present(series, tallies)
