"""Route: one accepted Request becomes an Event per connection that takes it, or an ignored branch saying why.

Every connection of the request's source is a branch. A disabled connection or destination ignores
it (DISABLED); otherwise the connection's rules run in their stored, normalised order: filters and
transforms as the user ordered them (a filter after a transform sees the transformed request), then
deduplicate, then delay (retry rules apply at delivery). A branch that passes becomes an Event:
QUEUED, SCHEDULED when delayed, HOLD when the connection is paused.

Routing is at-least-once, like the queue that drives it: SQS may deliver a route message twice, or
again after a worker died half way. Event and ignored ids derive from (request, connection), so a
second run writes the same ids and the conditional puts find the first run's records. Deliver
messages go out after the records and the request's counts are written; a second run sends them
again for events still waiting for their first try (a duplicate is harmless: delivery takes a
lease). The deduplicate claim is the one side effect that is not naturally idempotent; see
`_Router._deduplicate` for how a crashed run's claim is told apart from a real duplicate.
"""

from __future__ import annotations

import copy
import json
import math
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal
from functools import cached_property
from typing import Final

from chalicelib.domain import messages
from chalicelib.domain import rules as rules_domain
from chalicelib.domain.errors import RequestNotStoredError
from chalicelib.domain.executions import new_execution
from chalicelib.domain.ids import Prefix, derived_id
from chalicelib.domain.statuses import (
    PENDING_EVENT_STATUSES,
    AttemptTrigger,
    EventStatus,
    IgnoredCause,
    RequestStatus,
)
from chalicelib.domain.timefmt import iso
from chalicelib.domain.transforms import (
    TransformationError,
    TransformResult,
    logs_of,
    parse_query,
    read_transformed_request,
)
from chalicelib.flow.routing import Branch, RoutingCache, RoutingSnapshot
from chalicelib.logs import service_logger
from chalicelib.ports import (
    Clock,
    Doc,
    ExecutionStore,
    PayloadStore,
    Queues,
    RecordStore,
    ResourceStore,
    Transformer,
)

logger = service_logger("fasthook-route", child=True)

# Transformed bodies up to this size stay in the Event item, larger ones go to the payload store,
# like request bodies at ingest (the worker passes settings.inline_body_bytes).
INLINE_BODY_BYTES: Final = 8192
# How long a route message waits in-process for a Request that ingest is still writing (about 0.5 s
# in all; a DynamoDB write takes milliseconds) before SQS's redelivery takes over.
NOT_STORED_WAITS_S: Final = (0.05, 0.15, 0.3)
# SQS's longest DelaySeconds; longer waits are chained by the deliver worker or found by the sweeper.
MAX_QUEUE_DELAY_S: Final = 900
# Used when a request carries no expiry of its own (the team retention default).
DEFAULT_RETENTION_S: Final = 30 * 86400


@dataclass(frozen=True)
class RouteOutcome:
    """What routing left on the request: its event and ignored branches, and deliver messages sent now."""

    events: int = 0
    ignored: int = 0
    deliveries: int = 0


def route_request(
    *,
    message: messages.RouteRequest,
    records: RecordStore,
    resources: ResourceStore,
    payloads: PayloadStore,
    queues: Queues,
    transformer: Transformer,
    routing: RoutingCache,
    clock: Clock,
    inline_body_bytes: int = INLINE_BODY_BYTES,
    executions: ExecutionStore | None = None,
    not_stored_waits_s: tuple[float, ...] = NOT_STORED_WAITS_S,
) -> RouteOutcome:
    """Route one stored Request through its source's connections; safe to run again for the same message."""
    log = {"request_id": message.request_id, "team_id": message.team_id}
    request = records.get_request(message.request_id)
    for wait_s in not_stored_waits_s:
        if request is not None:
            break
        # Ingest writes the Request and sends this message at the same time, so the message can
        # overtake the write by a few milliseconds: look again before asking SQS for a redelivery.
        time.sleep(wait_s)
        request = records.get_request(message.request_id)
    if request is None:
        raise RequestNotStoredError(f"request {message.request_id} is not stored (yet)")
    if request["team_id"] != message.team_id:
        logger.warning("route message names another team than its request", extra=log)
        return RouteOutcome()
    if request["status"] != RequestStatus.ACCEPTED:
        return RouteOutcome()
    now = clock.now()
    if request.get("routed_at"):
        # A run finished routing and may have died before its deliver messages left: send again for
        # events still waiting for their first try, and change nothing else.
        sent = _send_deliveries(queues, records.events_of_request(request["id"]), now)
        logger.info("request already routed; deliveries re-sent", extra={**log, "deliveries": sent})
        return RouteOutcome(
            events=request.get("events_count", 0), ignored=request.get("ignored_count", 0), deliveries=sent
        )

    snapshot = routing.snapshot(request["team_id"], resources)
    router = _Router(
        request=request,
        snapshot=snapshot,
        records=records,
        transformer=transformer,
        now=now,
        original=_View.of_request(request, payloads),
    )
    decisions = [router.decide(branch) for branch in snapshot.branches(request["source_id"])]

    events: list[Doc] = []
    ignored = 0
    for decision in decisions:
        if decision.event is None:
            ignored += 1
            records.put_ignored(router.ignored_doc(decision))
        else:
            events.append(_store_event(decision, records, payloads, inline_body_bytes))
    if executions is not None:
        # After the branch's record, before the request counts as routed: a run that dies in between
        # routes again and writes the same execution ids, which the conditional put keeps once.
        for execution in router.executions_of(decisions):
            executions.put_execution(execution)
    records.finish_routing(request["id"], events_count=len(events), ignored_count=ignored, routed_at=iso(now))
    sent = _send_deliveries(queues, events, now)
    logger.info(
        "request routed",
        extra={
            **log,
            "events": len(events),
            "ignored": ignored,
            "deliveries": sent,
            "routing_version": snapshot.version,
        },
    )
    return RouteOutcome(events=len(events), ignored=ignored, deliveries=sent)


# ---- the request as rules see it ------------------------------------------------------------------


def _parse_body(raw: bytes, content_type: str | None) -> object:
    """Parsed JSON for a JSON content type that parses, else the text: a provider's bad JSON never stops routing."""
    if content_type and "json" in content_type.lower():
        try:
            return json.loads(raw)
        except (ValueError, RecursionError):
            pass
    return raw.decode("utf-8", errors="replace")


def _encode_body(body: object) -> bytes | None:
    """Bytes to deliver for a transformed body: text as UTF-8, any other JSON value as JSON, null as no body."""
    if body is None:
        return None
    if isinstance(body, bytes):
        return body
    if isinstance(body, str):
        return body.encode()
    return json.dumps(body, separators=(",", ":"), ensure_ascii=False).encode()


class _View:
    """A request at one point of a branch: the stored original, or what a transform made of it.

    The body is read (from the payload store for large ones) and parsed only when a rule asks for
    it, so a connection without body rules never pays for a large body.
    """

    def __init__(
        self,
        *,
        method: str,
        path: str,
        query: str,
        headers: dict[str, str],
        raw: Callable[[], bytes],
        parse: Callable[[bytes], object],
        transformed: bool,
    ) -> None:
        self.method, self.path, self.query, self.headers = method, path, query, headers
        self._raw, self._parse = raw, parse
        self.transformed = transformed

    @classmethod
    def of_request(cls, request: Doc, payloads: PayloadStore) -> _View:
        def raw() -> bytes:
            if request.get("body") is not None:
                return bytes(request["body"])
            return payloads.get(request["body_key"]) if request.get("body_key") else b""

        content_type = request.get("content_type") or request.get("headers", {}).get("content-type")
        return cls(
            method=request.get("method", "POST"),
            path=request.get("path") or "",
            query=request.get("query") or "",
            headers=dict(request.get("headers") or {}),
            raw=raw,
            parse=lambda data: _parse_body(data, content_type),
            transformed=False,
        )

    @classmethod
    def of_transform(cls, returned: Doc) -> _View:
        body = returned["body"]
        return cls(
            method=returned["method"],
            path=returned["path"],
            query=returned["query"],
            headers=returned["headers"],
            raw=lambda: _encode_body(body) or b"",
            parse=lambda _: body,
            transformed=True,
        )

    @cached_property
    def raw_body(self) -> bytes:
        return self._raw()

    @cached_property
    def body(self) -> object:
        return self._parse(self.raw_body)

    @cached_property
    def parsed_query(self) -> dict[str, str | list[str]]:
        return parse_query(self.query)

    def parts(self) -> Mapping[str, object]:
        return _Parts(self)

    def transform_input(self) -> Doc:
        """The request user code receives: the shape of `PUT /transformations/run`, plus the parsed query.

        A deep copy: the parsed body is shared by every branch of the request, and a transformer that
        changed it in place must not change what the next connection sees.
        """
        return copy.deepcopy(
            {
                "method": self.method,
                "path": self.path,
                "query": self.query,
                "parsed_query": self.parsed_query,
                "headers": self.headers,
                "body": self.body,
            }
        )


class _Parts(Mapping[str, object]):
    """`{body, headers, query, path}` of a view, resolving the body only when a rule reads it."""

    def __init__(self, view: _View) -> None:
        self._view = view

    def __getitem__(self, part: str) -> object:
        if part == "body":
            return self._view.body
        if part == "headers":
            return self._view.headers
        if part == "query":
            return self._view.parsed_query
        if part == "path":
            return self._view.path
        raise KeyError(part)

    def __iter__(self) -> Iterator[str]:
        return iter(rules_domain.REQUEST_PARTS)

    def __len__(self) -> int:
        return len(rules_domain.REQUEST_PARTS)


# ---- one branch -------------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Decision:
    """A branch's fate: an Event to store (`stored` when an earlier run already stored it), or a cause."""

    connection_id: str
    event: Doc | None = None
    stored: bool = False
    payload: bytes | None = None  # a transformed body too large for the Event item
    cause: IgnoredCause | None = None
    message: str = ""


class _Router:
    """Runs each connection's rules for one request; holds what every branch shares."""

    def __init__(
        self,
        *,
        request: Doc,
        snapshot: RoutingSnapshot,
        records: RecordStore,
        transformer: Transformer,
        now: datetime,
        original: _View,
    ) -> None:
        self.request, self.snapshot, self.records, self.transformer = request, snapshot, records, transformer
        self.now, self.original = now, original
        self.now_epoch = int(now.timestamp())
        self.expires_at = self.now_epoch + _retention_s(request)
        self._prior_ignored: dict[str, Doc] | None = None
        # Transform runs of each connection, in rule order; `executions_of` links them to the branch's fate.
        self._runs: dict[str, list[Doc]] = {}

    def decide(self, branch: Branch) -> _Decision:
        connection = branch.connection
        destination = self.snapshot.destinations.get(connection["destination_id"])
        if connection.get("disabled_at"):
            return self._ignore(branch, IgnoredCause.DISABLED, "The connection is disabled")
        if destination is None or destination.get("disabled_at"):
            return self._ignore(branch, IgnoredCause.DISABLED, "The connection's destination is disabled")
        if branch.rules_error is not None:
            # Unreachable through the control API, which validates rules on save; refusing the branch
            # keeps the other connections of the request routing while the log says what to fix.
            logger.error(
                "stored connection rules do not parse",
                extra={"connection_id": branch.id, "request_id": self.request["id"], "error": branch.rules_error},
            )
            return self._ignore(
                branch, IgnoredCause.DISABLED, f"The connection's rules are invalid: {branch.rules_error}"
            )

        event_id = derived_id(Prefix.EVENT, self.request["id"], branch.id)
        view = self.original
        delay_ms = 0
        for index, rule in enumerate(branch.rules):
            if isinstance(rule, rules_domain.FilterRule):
                if not rules_domain.match_rule_filter(rule, view.parts()):
                    return self._ignore(
                        branch, IgnoredCause.FILTERED, "The request did not match the connection's filter"
                    )
            elif isinstance(rule, rules_domain.TransformRule):
                transformed = self._transform(branch, destination, rule, view, index)
                if isinstance(transformed, _Decision):
                    return transformed
                view = transformed
            elif isinstance(rule, rules_domain.DeduplicateRule):
                key = rules_domain.dedupe_key(rule, view.parts(), view.raw_body)
                settled = self._deduplicate(branch, event_id, key, rule.window)
                if settled is not None:
                    return settled
            elif isinstance(rule, rules_domain.DelayRule):
                delay_ms = rule.delay
            # A retry rule shapes delivery, not routing.
        return self._event(branch, event_id, view, delay_ms)

    def _transform(
        self, branch: Branch, destination: Doc, rule: rules_domain.TransformRule, view: _View, index: int
    ) -> _View | _Decision:
        transformation = self.snapshot.transformations.get(rule.transformation_id or "")
        if transformation is None or transformation.get("deleted_at"):
            return self._ignore(
                branch,
                IgnoredCause.TRANSFORMATION_FAILED,
                f"Transformation {rule.transformation_id} no longer exists",
            )
        source = self.snapshot.sources.get(self.request["source_id"]) or {"id": self.request["source_id"]}
        context = {
            "connection": _summary(branch.connection),
            "source": _summary(source),
            "destination": {**_summary(destination), "type": destination.get("type")},
        }
        given = view.transform_input()
        started = time.perf_counter()
        try:
            returned = self.transformer.transform(
                code=transformation["code"],
                env=dict(transformation.get("env") or {}),
                request=given,
                context=context,
            )
            transformed = read_transformed_request(returned, original=view.transform_input())
        except TransformationError as exc:
            self._record_run(branch, transformation, index, None, exc.message, exc.logs, started, None)
            return self._ignore(branch, IgnoredCause.TRANSFORMATION_FAILED, exc.message)
        took = returned.duration_ms if isinstance(returned, TransformResult) else None
        self._record_run(branch, transformation, index, transformed, None, logs_of(returned), started, took)
        return _View.of_transform(transformed)

    def _record_run(
        self,
        branch: Branch,
        transformation: Doc,
        index: int,
        output: Doc | None,
        error: str | None,
        logs: list[dict[str, str]],
        started: float,
        duration_ms: float | None,
    ) -> None:
        """Keep the execution of one transform run until the branch's fate (event or ignored) is known."""
        if duration_ms is None:
            duration_ms = (time.perf_counter() - started) * 1000
        self._runs.setdefault(branch.id, []).append(
            new_execution(
                request=self.request,
                connection_id=branch.id,
                transformation_id=transformation["id"],
                rule_index=index,
                output=output,
                error=error,
                logs=logs,
                duration_ms=duration_ms,
                created_at=iso(self.now),
                expires_at=self.expires_at,
            )
        )

    def executions_of(self, decisions: list[_Decision]) -> list[Doc]:
        """Every transform run of this routing, linked to the event its branch made or the ignored branch."""
        linked = []
        for decision in decisions:
            for execution in self._runs.get(decision.connection_id, []):
                if decision.event is not None:
                    execution = {**execution, "event_id": decision.event["id"]}
                else:
                    ignored_id = derived_id(Prefix.IGNORED, self.request["id"], decision.connection_id)
                    execution = {**execution, "ignored_id": ignored_id}
                linked.append(execution)
        return linked

    def _deduplicate(self, branch: Branch, event_id: str, key: str, window_ms: int) -> _Decision | None:
        """None when the branch goes on; else what it became (DEDUPLICATED, or an earlier run's record).

        The claim on `connection#key` is the one side effect a second run cannot simply repeat: if a
        first run claimed it and died before storing its Event, a plain retry would find the claim and
        drop its own event as a duplicate. So each branch first claims a marker of its own, held as
        long as the request lives. Winning the marker means no earlier run of this message reached
        here, and the key claim decides. Losing it means one did: reuse the record it stored, or, if
        it died before storing one, take the key claim again and keep the event even when the claim
        is taken, because the taker is most likely that crashed run (at-least-once over dedupe).
        """
        claim_key = f"{branch.id}#{key}"
        until_epoch = self.now_epoch + max(1, math.ceil(window_ms / 1000))
        first_run = self.records.claim_dedupe(
            f"{branch.id}#{event_id}", now_epoch=self.now_epoch, until_epoch=max(self.expires_at, until_epoch)
        )
        if first_run:
            if self.records.claim_dedupe(claim_key, now_epoch=self.now_epoch, until_epoch=until_epoch):
                return None
            return self._ignore(
                branch, IgnoredCause.DEDUPLICATED, "A request with the same deduplication key was routed in the window"
            )
        existing = self.records.get_event(event_id)
        if existing is not None:
            return _Decision(connection_id=branch.id, event=existing, stored=True)
        earlier = self._ignored_before().get(branch.id)
        if earlier is not None:
            return _Decision(
                connection_id=branch.id, cause=IgnoredCause(earlier["cause"]), message=earlier.get("message", "")
            )
        if not self.records.claim_dedupe(claim_key, now_epoch=self.now_epoch, until_epoch=until_epoch):
            logger.warning(
                "deduplicate claim held after an interrupted routing run; keeping the event",
                extra={"request_id": self.request["id"], "connection_id": branch.id, "event_id": event_id},
            )
        return None

    def _ignored_before(self) -> dict[str, Doc]:
        if self._prior_ignored is None:
            self._prior_ignored = {
                doc["connection_id"]: doc for doc in self.records.ignored_of_request(self.request["id"])
            }
        return self._prior_ignored

    def _event(self, branch: Branch, event_id: str, view: _View, delay_ms: int) -> _Decision:
        connection = branch.connection
        if connection.get("paused_at"):
            status, due = EventStatus.HOLD, None
        elif delay_ms > 0:
            status, due = EventStatus.SCHEDULED, iso(self.now + timedelta(milliseconds=delay_ms))
        else:
            status, due = EventStatus.QUEUED, iso(self.now)
        data, payload = None, None
        if view.transformed:
            body = _encode_body(view.body)
            data = {
                "method": view.method,
                "path": view.path,
                "query": view.query,
                "headers": dict(view.headers),
                "body": body,
                "body_key": None,
            }
            payload = body
        created = iso(self.now)
        event = {
            "id": event_id,
            "team_id": self.request["team_id"],
            "request_id": self.request["id"],
            "connection_id": branch.id,
            "source_id": self.request["source_id"],
            "destination_id": connection["destination_id"],
            "status": status.value,
            "attempts": 0,
            "next_trigger": AttemptTrigger.INITIAL.value,
            "next_attempt_at": due,
            "last_attempt_at": None,
            "successful_at": None,
            "response_status": None,
            "error_code": None,
            "created_at": created,
            "updated_at": created,
            "batch_operation_id": None,
            "data": data,
            "expires_at": self.expires_at,
        }
        return _Decision(connection_id=branch.id, event=event, payload=payload)

    def _ignore(self, branch: Branch, cause: IgnoredCause, message: str) -> _Decision:
        return _Decision(connection_id=branch.id, cause=cause, message=message)

    def ignored_doc(self, decision: _Decision) -> Doc:
        assert decision.cause is not None
        return {
            "id": derived_id(Prefix.IGNORED, self.request["id"], decision.connection_id),
            "team_id": self.request["team_id"],
            "request_id": self.request["id"],
            "connection_id": decision.connection_id,
            "cause": decision.cause.value,
            "message": decision.message,
            "created_at": iso(self.now),
            "expires_at": self.expires_at,
        }


def _summary(doc: Doc) -> Doc:
    return {"id": doc.get("id"), "name": doc.get("name")}


def _retention_s(request: Doc) -> int:
    """The team's retention, as ingest applied it to the request (its expiry minus its arrival)."""
    expires_at, ingested_at = request.get("expires_at"), request.get("ingested_at")
    # DynamoDB hands numbers back as Decimal, the memory store as int.
    if isinstance(expires_at, (int, Decimal)) and not isinstance(expires_at, bool) and isinstance(ingested_at, str):
        retention = int(expires_at) - int(datetime.fromisoformat(ingested_at).timestamp())
        if retention > 0:
            return retention
    return DEFAULT_RETENTION_S


# ---- writing ----------------------------------------------------------------------------------------


def _store_event(decision: _Decision, records: RecordStore, payloads: PayloadStore, inline_body_bytes: int) -> Doc:
    """Store a new Event, or return the one an earlier run stored (whose status is what counts now)."""
    assert decision.event is not None
    if decision.stored:
        return decision.event
    event = decision.event
    if decision.payload is not None and len(decision.payload) > inline_body_bytes:
        # The body goes first, so a stored Event never points at a missing object.
        key = f"{event['team_id']}/events/{event['id']}"
        payloads.put(key, decision.payload)
        event = {**event, "data": {**event["data"], "body": None, "body_key": key}}
    if records.put_event(event):
        return event
    return records.get_event(event["id"]) or event


def _send_deliveries(queues: Queues, events: list[Doc], now: datetime) -> int:
    """One deliver message per event still waiting for its first try, all in one send."""
    bodies = [
        (
            messages.encode(
                messages.DeliverEvent(team_id=event["team_id"], event_id=event["id"], trigger=event["next_trigger"])
            ),
            _queue_delay_s(event, now),
        )
        for event in events
        if event["status"] in PENDING_EVENT_STATUSES and event.get("attempts", 0) == 0
    ]
    if bodies:
        queues.send_deliver(bodies)
    return len(bodies)


def _queue_delay_s(event: Doc, now: datetime) -> int:
    due = event.get("next_attempt_at")
    if not due:
        return 0
    seconds = math.ceil((datetime.fromisoformat(due) - now).total_seconds())
    return max(0, min(MAX_QUEUE_DELAY_S, seconds))
