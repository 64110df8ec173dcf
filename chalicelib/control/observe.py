"""Reading the evidence: requests, events, ignored branches and attempts, as the observability guide walks them.

Every read is team-scoped: an id of another team, a malformed id and an expired record (its
`expires_at` has passed; DynamoDB's TTL deletes late) all read as 404, lists omit them.

Decisions the spec leaves open, fixed here:
- **Event status vocabularies.** Lowercase values are the list/metric vocabulary of DESIGN.md:
  `queued` = SCHEDULED or QUEUED with no delivery in flight, `processing` = SCHEDULED or QUEUED with a
  live delivery lease (an attempt in flight), so the two never overlap; `delivered` = SUCCESSFUL,
  `failed` = FAILED, `ignored` = the ignored branches. Uppercase values filter the stored status
  exactly; `PENDING` = SCHEDULED + QUEUED (in flight or not) and `IGNORED` = the ignored branches.
  One value per call.
- **Ignored branches as events.** Where an event list is asked for ignored ones (`status=ignored` or
  `IGNORED`), each ignored branch is shown as an event: its id (`ign_...`), request, connection
  (`webhook_id`), the connection's source and destination, `status: "IGNORED"`, `cause`, `message`,
  `created_at`. Without a status filter, event lists hold events only.
- **Search (`q` / `search_term`).** Requests: an exact request id, or an `external_id` that equals
  or starts with `q`. Events: an exact event id or request id (ignored branches: their id or request id).
- **Requests by connection.** A request reaches every connection of its source, so `connection_id`
  on requests filters by that connection's source; an unknown connection matches nothing.
- **Lists** are newest first unless `dir=asc`, at most 100 a page; the cursor is the last
  position `(time, id)` plus the resolved time window and a hash of the filters, so a page boundary
  stays put while records arrive and a cursor used with other filters is a 400.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass, replace
from datetime import datetime
from typing import Any

from chalicelib.control import resources as res
from chalicelib.control.presenters import jsonable, present_attempt, present_data, present_event, present_request
from chalicelib.domain.errors import InvalidParameterError, NotFoundError
from chalicelib.domain.ids import Prefix, is_id, parse_id
from chalicelib.domain.statuses import EventStatus, RequestStatus
from chalicelib.domain.timefmt import iso, parse_time
from chalicelib.ports import Doc, PayloadStore, RecordStore, ResourceStore, TimelinePage, TimelineQuery

MAX_LIMIT = 100
IGNORED = "IGNORED"  # the status an ignored branch shows when presented as an event
EARLIEST = "1970-01-01T00:00:00.000Z"
LATEST = "9999-12-31T23:59:59.999Z"
_PENDING = (EventStatus.SCHEDULED.value, EventStatus.QUEUED.value)
# Query parameters that shape a page but not which records match: a cursor stays valid across them.
_PAGE_PARAMS = frozenset({"limit", "cursor", "next", "prev", "include", "team_id", "order_by"})


@dataclass(frozen=True)
class StatusFilter:
    statuses: tuple[str, ...] = ()  # stored event statuses; empty: any
    in_flight: bool | None = None
    ignored: bool = False


EVENT_STATUS_FILTERS: dict[str, StatusFilter] = {
    "queued": StatusFilter(_PENDING, in_flight=False),
    "processing": StatusFilter(_PENDING, in_flight=True),
    "delivered": StatusFilter((EventStatus.SUCCESSFUL.value,)),
    "failed": StatusFilter((EventStatus.FAILED.value,)),
    "ignored": StatusFilter(ignored=True),
    "PENDING": StatusFilter(_PENDING),
    IGNORED: StatusFilter(ignored=True),
    **{status.value: StatusFilter((status.value,)) for status in EventStatus},
}


def parse_event_status(raw: str | None) -> StatusFilter:
    if not raw:
        return StatusFilter()
    found = EVENT_STATUS_FILTERS.get(raw)
    if found is None:
        raise InvalidParameterError(f"status must be one of {' | '.join(EVENT_STATUS_FILTERS)}, not {raw!r:.40}")
    return found


def parse_direction(raw: str | None) -> str:
    direction = (raw or "desc").lower()
    if direction not in ("asc", "desc"):
        raise InvalidParameterError(f"dir must be asc or desc, not {raw!r:.40}")
    return direction


def _flag(query: Mapping[str, str], name: str) -> bool | None:
    value = (query.get(name) or "").lower()
    if value == "":
        return None
    if value in ("true", "1"):
        return True
    if value in ("false", "0"):
        return False
    raise InvalidParameterError(f"{name} must be true or false, not {query.get(name)!r:.40}")


def time_window(query: Mapping[str, str], now: datetime) -> tuple[str, str]:
    """The inclusive time window of `from`/`to` (or `ingested_at[gte|lte]`): ISO or relative times."""
    bounds = []
    for names, default in (
        (("from", "ingested_at[gte]", "created_at[gte]"), EARLIEST),
        (("to", "ingested_at[lte]", "created_at[lte]"), LATEST),
    ):
        name = next((n for n in names if query.get(n)), None)
        if name is None:
            bounds.append(default)
            continue
        moment = parse_time(query[name], now=now, name=name)
        # iso() is only sortable text inside 1970..9999; outside, the window's end is the answer.
        bounds.append(EARLIEST if moment.year < 1970 else iso(moment))
    start, end = bounds
    if start > end:
        raise InvalidParameterError(f"from ({start}) is after to ({end})")
    return start, end


# ---- cursors and pages --------------------------------------------------------------------------


def _signature(route: str, query: Mapping[str, str], direction: str) -> str:
    """What a cursor is valid for: the route, the direction and every filter as the caller spelled it."""
    filters = sorted((k, v) for k, v in query.items() if k not in _PAGE_PARAMS and k != "dir")
    raw = json.dumps([route, direction, filters], separators=(",", ":"))
    return hashlib.sha256(raw.encode()).hexdigest()[:16]


def _encode_cursor(position: str, window: tuple[str, str], signature: str, *, backwards: bool = False) -> str:
    payload = {"p": position, "w": list(window), "h": signature, **({"b": 1} if backwards else {})}
    return base64.urlsafe_b64encode(json.dumps(payload, separators=(",", ":")).encode()).decode().rstrip("=")


def _decode_cursor(cursor: str, signature: str) -> tuple[str, tuple[str, str], bool]:
    try:
        payload = json.loads(base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)))
        position, (start, end), made_for = payload["p"], payload["w"], payload["h"]
        backwards = bool(payload.get("b"))
    except (binascii.Error, ValueError, UnicodeDecodeError, KeyError, TypeError, RecursionError) as exc:
        raise InvalidParameterError("cursor is not a cursor this API returned") from exc
    if not all(isinstance(v, str) for v in (position, start, end)):
        raise InvalidParameterError("cursor is not a cursor this API returned")
    if made_for != signature:
        raise InvalidParameterError("cursor was made for other filters or another order; start again without it")
    return position, (start, end), backwards


def _position(kind: str, doc: Doc) -> str:
    return f"{doc['ingested_at'] if kind == 'REQ' else doc['created_at']}#{doc['id']}"


@dataclass(frozen=True)
class PageRequest:
    """A list call's paging: direction, size, the cursor it brought and what that cursor must be for."""

    direction: str
    limit: int
    cursor: str | None
    signature: str


def page_request(route: str, query: Mapping[str, str], *, limit: int) -> PageRequest:
    direction = parse_direction(query.get("dir"))
    cursor = query.get("cursor") or query.get("next") or query.get("prev") or None
    return PageRequest(direction, limit, cursor, _signature(route, query, direction))


def timeline_page(
    fetch: Callable[[TimelineQuery], TimelinePage], kind: str, base: TimelineQuery, paging: PageRequest
) -> tuple[list[Doc], dict[str, Any]]:
    """One page of a timeline and its pagination block; a `prev` cursor reads backwards from its position."""
    ascending = paging.direction == "asc"
    position, backwards = None, False
    window = (base.start, base.end)
    if paging.cursor:
        position, window, backwards = _decode_cursor(paging.cursor, paging.signature)
    query = replace(base, start=window[0], end=window[1], limit=paging.limit, after=position)
    next_cursor = prev_cursor = None
    if backwards:
        page = fetch(replace(query, ascending=not ascending))
        items = list(reversed(page.items))
        if items:
            next_cursor = _encode_cursor(_position(kind, items[-1]), window, paging.signature)
            if page.resume is not None:
                prev_cursor = _encode_cursor(_position(kind, items[0]), window, paging.signature, backwards=True)
    else:
        page = fetch(replace(query, ascending=ascending))
        items = page.items
        if page.resume is not None:
            next_cursor = _encode_cursor(page.resume, window, paging.signature)
        if position is not None and items:
            prev_cursor = _encode_cursor(_position(kind, items[0]), window, paging.signature, backwards=True)
    pagination = {
        "order_by": "created_at",
        "dir": paging.direction,
        "limit": paging.limit,
        "next": next_cursor,
        "prev": prev_cursor,
    }
    return items, pagination


def _slice(docs: list[Doc], kind: str, query: TimelineQuery) -> TimelinePage:
    """A TimelineQuery over documents already in hand (the attempts of a few events)."""
    low, high = f"{query.start}#", f"{query.end}#~"
    found = sorted(
        ((_position(kind, d), d) for d in docs if low <= _position(kind, d) <= high),
        key=lambda pair: pair[0],
        reverse=not query.ascending,
    )
    if query.after is not None:
        after = query.after
        found = [(p, d) for p, d in found if (p > after if query.ascending else p < after)]
    page = found[: query.limit]
    return TimelinePage([d for _, d in page], page[-1][0] if len(found) > query.limit else None)


# ---- reading one record -------------------------------------------------------------------------


def is_live(doc: Doc | None, team_id: str, now: datetime) -> bool:
    if doc is None or doc.get("team_id") != team_id:
        return False
    expires_at = doc.get("expires_at")
    return not (isinstance(expires_at, int) and expires_at <= int(now.timestamp()))


def _body(inline: Any, key: str | None, payloads: PayloadStore) -> bytes | None:
    if key:
        try:
            return payloads.get(key)
        except (NotFoundError, KeyError):
            return None  # the body expired with its retention before the record did: show the record anyway
    return inline if isinstance(inline, bytes) else (inline.encode() if isinstance(inline, str) else None)


def _request_data(request: Doc, payloads: PayloadStore) -> Doc:
    body = _body(request.get("body"), request.get("body_key"), payloads)
    return present_data(request["method"], request["path"], request["query"], request["headers"], body)


def _request_of_team(records: RecordStore, team_id: str, request_id: str, now: datetime) -> Doc:
    rid = parse_id(request_id, Prefix.REQUEST, "Request")
    request = records.get_request(rid)
    if request is None or not is_live(request, team_id, now):
        raise NotFoundError(f"Request {rid} not found")
    return request


def get_request(*, team_id: str, request_id: str, records: RecordStore, payloads: PayloadStore, now: datetime) -> Doc:
    """One request with its stored data (a large body is read back from the payload store)."""
    request = _request_of_team(records, team_id, request_id, now)
    return jsonable({**present_request(request), "data": _request_data(request, payloads)})


def latest_input(
    *,
    team_id: str,
    connection_id: str,
    records: RecordStore,
    resources: ResourceStore,
    payloads: PayloadStore,
    now: datetime,
) -> Doc:
    """The newest request the connection's source received, with its data: one Query of the request timeline.

    The timeline read is bounded like every list page: when the bound is hit before a request of the
    source turns up, the answer is a 404 that says so rather than a Scan of the whole team.
    """
    connection = res.get_resource(resources, team_id, res.CONNECTION, connection_id)
    source_id = connection["source_id"]
    timeline = TimelineQuery(start=EARLIEST, end=LATEST, now=now, limit=1, fields=(("source_id", (source_id,)),))
    page = records.query_timeline(team_id, "REQ", timeline)
    if not page.items:
        if page.resume is not None:
            raise NotFoundError(f"no request of source {source_id} among the team's most recent requests")
        raise NotFoundError(f"no request has reached source {source_id} yet")
    request = page.items[0]
    return jsonable({**present_request(request), "data": _request_data(request, payloads)})


def get_event(*, team_id: str, event_id: str, records: RecordStore, payloads: PayloadStore, now: datetime) -> Doc:
    """One event with its data: what a transformation made of the request, else the request's own."""
    eid = parse_id(event_id, Prefix.EVENT, "Event")
    event = records.get_event(eid)
    if event is None or not is_live(event, team_id, now):
        raise NotFoundError(f"Event {eid} not found")
    own = event.get("data")
    if own:
        body = _body(own.get("body"), own.get("body_key"), payloads)
        data = present_data(own["method"], own["path"], own["query"], own["headers"], body)
    else:
        request = records.get_request(event["request_id"])
        data = _request_data(request, payloads) if is_live(request, team_id, now) and request else None
    return jsonable(present_event(event, data=data))


def get_attempt(*, team_id: str, attempt_id: str, records: RecordStore, now: datetime) -> Doc:
    aid = parse_id(attempt_id, Prefix.ATTEMPT, "Attempt")
    attempt = records.get_attempt(aid)
    if attempt is None or not is_live(attempt, team_id, now):
        raise NotFoundError(f"Attempt {aid} not found")
    return jsonable(present_attempt(attempt))


# ---- the children of a request ------------------------------------------------------------------


def _connections(resources: ResourceStore, team_id: str) -> dict[str, Doc]:
    return {doc["id"]: doc for doc in resources.list(team_id, res.CONNECTION.name)}


def present_ignored_as_event(doc: Doc, connections: Mapping[str, Doc]) -> Doc:
    connection = connections.get(doc["connection_id"]) or {}
    return {
        "id": doc["id"],
        "team_id": doc["team_id"],
        "request_id": doc["request_id"],
        "connection_id": doc["connection_id"],
        "webhook_id": doc["connection_id"],
        "source_id": connection.get("source_id"),
        "destination_id": connection.get("destination_id"),
        "status": IGNORED,
        "cause": doc.get("cause"),
        "message": doc.get("message"),
        "attempts": 0,
        "created_at": doc["created_at"],
        "updated_at": doc["created_at"],
    }


def _whole(models: list[Doc]) -> dict[str, Any]:
    return {"order_by": "created_at", "dir": "asc", "limit": len(models), "next": None, "prev": None}


def _oldest_first(docs: list[Doc]) -> list[Doc]:
    return sorted(docs, key=lambda d: (d["created_at"], d["id"]))


def list_request_events(
    *, team_id: str, request_id: str, status: str | None, records: RecordStore, resources: ResourceStore, now: datetime
) -> tuple[list[Doc], dict[str, Any]]:
    """The events of one request, oldest first; `status` in either vocabulary, IGNORED for ignored branches."""
    request = _request_of_team(records, team_id, request_id, now)
    wanted = parse_event_status(status)
    if wanted.ignored:
        connections = _connections(resources, team_id)
        ignored = [d for d in records.ignored_of_request(request["id"]) if is_live(d, team_id, now)]
        models = [present_ignored_as_event(d, connections) for d in _oldest_first(ignored)]
        return models, _whole(models)
    now_iso = iso(now)
    events = []
    for event in records.events_of_request(request["id"]):
        if not is_live(event, team_id, now) or (wanted.statuses and event["status"] not in wanted.statuses):
            continue
        in_flight = bool(event.get("lease_until")) and event["lease_until"] > now_iso
        if wanted.in_flight is not None and in_flight != wanted.in_flight:
            continue
        events.append(event)
    models = [jsonable(present_event(e)) for e in _oldest_first(events)]
    return models, _whole(models)


def list_request_ignored(
    *, team_id: str, request_id: str, records: RecordStore, now: datetime
) -> tuple[list[Doc], dict[str, Any]]:
    """The ignored branches of one request, oldest first, as DESIGN.md shapes them (with `message`)."""
    request = _request_of_team(records, team_id, request_id, now)
    ignored = [d for d in records.ignored_of_request(request["id"]) if is_live(d, team_id, now)]
    models = [{k: v for k, v in d.items() if k != "expires_at"} for d in _oldest_first(ignored)]
    return models, _whole(models)


# ---- the team timelines -------------------------------------------------------------------------


@dataclass(frozen=True)
class Selection:
    """What a list or count reads: a timeline kind and its query; `nothing` when a filter cannot match."""

    kind: str
    query: TimelineQuery
    nothing: bool = False


def select_requests(query: Mapping[str, str], *, team_id: str, resources: ResourceStore, now: datetime) -> Selection:
    start, end = time_window(query, now)
    fields: list[tuple[str, tuple[Any, ...]]] = []
    nothing = False
    status = (query.get("status") or "").lower()
    if status:
        if status not in {s.value for s in RequestStatus}:
            raise InvalidParameterError(f"status must be accepted or rejected, not {query['status']!r:.40}")
        fields.append(("status", (status,)))
    for name in ("verified", "is_retry"):
        flag = _flag(query, name)
        if flag is not None:
            fields.append((name, (flag,)))
    retry_kind = query.get("retry_kind")
    if retry_kind:
        if retry_kind not in ("single", "bulk"):
            raise InvalidParameterError(f"retry_kind must be single or bulk, not {retry_kind!r:.40}")
        fields.append(("retry_kind", (retry_kind,)))
    sources = {query["source_id"]} if query.get("source_id") else None
    if query.get("connection_id"):
        connection = _connections(resources, team_id).get(query["connection_id"])
        of_connection = {connection["source_id"]} if connection else set()
        sources = of_connection if sources is None else sources & of_connection
    if sources is not None:
        nothing = not sources
        fields.append(("source_id", tuple(sorted(sources))))
    if query.get("batch_operation_id"):
        fields.append(("batch_operation_id", (query["batch_operation_id"],)))
    q = query.get("q") or query.get("search_term") or None
    timeline = TimelineQuery(
        start=start,
        end=end,
        now=now,
        fields=tuple(fields),
        search=q,
        search_exact=("id",) if q else (),
        search_prefix=("external_id",) if q else (),
    )
    return Selection("REQ", timeline, nothing)


def select_events(query: Mapping[str, str], *, team_id: str, resources: ResourceStore, now: datetime) -> Selection:
    start, end = time_window(query, now)
    wanted = parse_event_status(query.get("status"))
    connection_id = query.get("connection_id") or query.get("webhook_id") or None
    source_id, destination_id = query.get("source_id") or None, query.get("destination_id") or None
    q = query.get("q") or query.get("search_term") or None
    base = TimelineQuery(
        start=start, end=end, now=now, search=q, search_exact=("id", "request_id") if q else (), in_flight=None
    )
    if wanted.ignored:
        # Ignored branches name only their connection: source and destination filters go through it.
        connections = _connections(resources, team_id)
        chosen = {
            cid
            for cid, c in connections.items()
            if (connection_id is None or cid == connection_id)
            and (source_id is None or c.get("source_id") == source_id)
            and (destination_id is None or c.get("destination_id") == destination_id)
        }
        fields: list[tuple[str, tuple[Any, ...]]] = []
        narrowed = connection_id is not None or source_id is not None or destination_id is not None
        if narrowed:
            fields.append(("connection_id", tuple(sorted(chosen))))
        nothing = (narrowed and not chosen) or bool(query.get("batch_operation_id"))
        return Selection("IGN", replace(base, fields=tuple(fields)), nothing)
    fields = []
    if wanted.statuses:
        fields.append(("status", wanted.statuses))
    for name, value in (
        ("source_id", source_id),
        ("connection_id", connection_id),
        ("destination_id", destination_id),
        ("batch_operation_id", query.get("batch_operation_id") or None),
    ):
        if value is not None:
            fields.append((name, (value,)))
    return Selection("EVT", replace(base, fields=tuple(fields), in_flight=wanted.in_flight))


def _fetcher(records: RecordStore, team_id: str, selection: Selection) -> Callable[[TimelineQuery], TimelinePage]:
    if selection.nothing:
        return lambda _query: TimelinePage([], None)
    return lambda query: records.query_timeline(team_id, selection.kind, query)


def list_requests(
    *,
    team_id: str,
    selection: Selection,
    paging: PageRequest,
    include_data: bool,
    records: RecordStore,
    payloads: PayloadStore,
) -> tuple[list[Doc], dict[str, Any]]:
    docs, pagination = timeline_page(_fetcher(records, team_id, selection), "REQ", selection.query, paging)
    models = [
        jsonable({**present_request(d), **({"data": _request_data(d, payloads)} if include_data else {})}) for d in docs
    ]
    return models, pagination


def list_events(
    *, team_id: str, selection: Selection, paging: PageRequest, records: RecordStore, resources: ResourceStore
) -> tuple[list[Doc], dict[str, Any]]:
    docs, pagination = timeline_page(_fetcher(records, team_id, selection), selection.kind, selection.query, paging)
    if selection.kind == "IGN":
        connections = _connections(resources, team_id)
        return [present_ignored_as_event(d, connections) for d in docs], pagination
    return [jsonable(present_event(d)) for d in docs], pagination


def count(*, team_id: str, selection: Selection, records: RecordStore) -> int:
    """Exactly how many records every page of the list with the same filters holds."""
    if selection.nothing:
        return 0
    return records.count_timeline(team_id, selection.kind, selection.query)


# ---- attempts -----------------------------------------------------------------------------------


def list_attempts(
    *, team_id: str, event_ids: list[str], paging: PageRequest, records: RecordStore, now: datetime
) -> tuple[list[Doc], dict[str, Any]]:
    """Attempts of the given events (any of them), or of the whole team without `event_id`, by created_at."""
    base = TimelineQuery(start=EARLIEST, end=LATEST, now=now)
    if not event_ids:
        docs, pagination = timeline_page(lambda q: records.query_timeline(team_id, "ATT", q), "ATT", base, paging)
        return [jsonable(present_attempt(d)) for d in docs], pagination
    attempts: list[Doc] = []
    for event_id in dict.fromkeys(event_ids):
        # An event id that is malformed, unknown or another team's has no attempts this caller may see.
        event = records.get_event(event_id) if is_id(event_id, Prefix.EVENT) else None
        if event is not None and is_live(event, team_id, now):
            attempts += [a for a in records.attempts_of_event(event_id) if is_live(a, team_id, now)]
    docs, pagination = timeline_page(lambda q: _slice(attempts, "ATT", q), "ATT", base, paging)
    return [jsonable(present_attempt(d)) for d in docs], pagination
