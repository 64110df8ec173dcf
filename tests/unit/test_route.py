"""Routing against the in-memory fakes: which branches become events, which are ignored and why, what is queued.

Resources are made through the control use cases and requests through ingest, so the route step
meets exactly the stored shapes it meets in production.
"""

from __future__ import annotations

import itertools
import json
from datetime import timedelta
from typing import Any

import pytest

from chalicelib import wiring
from chalicelib.adapters.memory import (
    FixedClock,
    MemoryControlStore,
    MemoryPayloadStore,
    MemoryQueues,
    MemoryRecordStore,
)
from chalicelib.control import connections, destinations, sources, transformations
from chalicelib.domain import messages
from chalicelib.domain.errors import RequestNotStoredError
from chalicelib.domain.ids import Prefix, derived_id
from chalicelib.domain.models import ConnectionCreate, DestinationCreate, SourceCreate, TransformationCreate
from chalicelib.domain.timefmt import iso
from chalicelib.domain.transforms import NoTransformer, TransformationError
from chalicelib.entrypoints.route_worker import handle_route_batch
from chalicelib.flow.ingest import Inbound, IngestLimits, accept_request
from chalicelib.flow.route import RouteOutcome, route_request
from chalicelib.flow.routing import RoutingCache
from chalicelib.ports import Doc
from chalicelib.settings import Settings

TEAM = "tm_01M8547MZCKAJCA8VS2MAZA7PF"
LIMITS = IngestLimits(max_body_bytes=1024 * 1024, inline_body_bytes=8192, retention_days=30)
_names = itertools.count(1)


# ---- test doubles --------------------------------------------------------------------------------


class CountingResources:
    """The control store as the route worker reads it, counting the reads its cache makes."""

    def __init__(self, inner: MemoryControlStore) -> None:
        self.inner = inner
        self.version_reads = 0
        self.full_loads = 0

    def routing_version(self, team_id: str) -> int:
        self.version_reads += 1
        return self.inner.routing_version(team_id)

    def team_resources(self, team_id: str) -> dict[str, list[Doc]]:
        self.full_loads += 1
        return self.inner.team_resources(team_id)

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)


class ScriptedTransformer:
    """A Transformer whose 'code' is a Python function of the request; records every call it gets."""

    def __init__(self, change=None, *, error: str | None = None) -> None:
        self.change = change or (lambda request: request)
        self.error = error
        self.calls: list[dict[str, Any]] = []

    def transform(self, *, code: str, env: dict[str, str], request: Doc, context: Doc) -> Doc:
        self.calls.append({"code": code, "env": env, "request": request, "context": context})
        if self.error is not None:
            raise TransformationError(self.error)
        return self.change(request)


class QueuesThatFailOnce(MemoryQueues):
    """SQS refusing the first deliver send, as when the worker dies right before it."""

    def __init__(self) -> None:
        super().__init__()
        self.failures_left = 1

    def send_deliver(self, bodies: list[tuple[str, int]]) -> None:
        if self.failures_left:
            self.failures_left -= 1
            raise ConnectionError("worker died before the deliver messages left")
        super().send_deliver(bodies)


class RecordsThatFailOnce(MemoryRecordStore):
    """A record store whose named write fails once, as when the worker dies right before it."""

    def __init__(self, failing: str, *, armed: bool = True) -> None:
        super().__init__()
        self.failing = failing
        self.failures_left = 1 if armed else 0

    def arm(self) -> None:
        self.failures_left = 1

    def _maybe_fail(self, operation: str) -> None:
        if operation == self.failing and self.failures_left:
            self.failures_left -= 1
            raise ConnectionError(f"worker died before {operation}")

    def put_event(self, event: Doc) -> bool:
        self._maybe_fail("put_event")
        return super().put_event(event)

    def finish_routing(self, request_id: str, *, events_count: int, ignored_count: int, routed_at: str) -> None:
        self._maybe_fail("finish_routing")
        super().finish_routing(request_id, events_count=events_count, ignored_count=ignored_count, routed_at=routed_at)


# ---- the world -----------------------------------------------------------------------------------


class World:
    def __init__(self, *, records: MemoryRecordStore | None = None, queues: MemoryQueues | None = None) -> None:
        self.control = MemoryControlStore()
        self.resources = CountingResources(self.control)
        self.records = records or MemoryRecordStore()
        self.payloads = MemoryPayloadStore()
        self.queues = queues or MemoryQueues()
        self.clock = FixedClock()
        self.routing = RoutingCache()
        self.transformer: Any = NoTransformer()

    # resources, through the control use cases

    def source(self, **fields: Any) -> Doc:
        body = SourceCreate(name=f"src-{next(_names)}", **fields)
        return sources.create_source(team_id=TEAM, body=body, store=self.control, clock=self.clock)

    def destination(self) -> Doc:
        body = DestinationCreate(name=f"dest-{next(_names)}", config={"url": "https://receiver.example.test/hooks"})
        return destinations.create_destination(team_id=TEAM, body=body, store=self.control, clock=self.clock)

    def transformation(self, *, env: dict[str, str] | None = None) -> Doc:
        body = TransformationCreate(name=f"trs-{next(_names)}", code="addHandler('transform', (r) => r);", env=env)
        return transformations.create_transformation(team_id=TEAM, body=body, store=self.control, clock=self.clock)

    def connection(self, source: Doc, *, rules: list[Any] | None = None, destination: Doc | None = None) -> Doc:
        body = ConnectionCreate(
            name=f"conn-{next(_names)}",
            source_id=source["id"],
            destination_id=(destination or self.destination())["id"],
            rules=rules,
        )
        return connections.create_connection(team_id=TEAM, body=body, store=self.control, clock=self.clock)

    def pause(self, connection: Doc) -> None:
        connections.set_connection_paused(
            team_id=TEAM, connection_id=connection["id"], paused=True, store=self.control, clock=self.clock
        )

    # requests, through ingest, then the route step

    def ingest(
        self,
        source: Doc,
        body: bytes | dict = b'{"id":"evt_1","type":"order.paid"}',
        *,
        path: str = "",
        query: str = "",
        headers: dict[str, str] | None = None,
    ) -> messages.RouteRequest:
        raw = json.dumps(body).encode() if isinstance(body, dict) else body
        inbound = Inbound(
            source_id=source["id"],
            method="POST",
            path=path,
            query=query,
            headers={"content-type": "application/json", **(headers or {})},
            body=raw,
        )
        answer = accept_request(
            inbound=inbound,
            records=self.records,
            resources=self.control,
            payloads=self.payloads,
            queues=self.queues,
            clock=self.clock,
            limits=LIMITS,
        )
        assert answer.request_id is not None
        return messages.RouteRequest(team_id=TEAM, request_id=answer.request_id)

    def route(self, message: messages.RouteRequest) -> RouteOutcome:
        return route_request(
            message=message,
            records=self.records,
            resources=self.resources,
            payloads=self.payloads,
            queues=self.queues,
            transformer=self.transformer,
            routing=self.routing,
            clock=self.clock,
        )

    def send(self, source: Doc, body: bytes | dict = b'{"id":"evt_1","type":"order.paid"}', **kwargs: Any) -> str:
        message = self.ingest(source, body, **kwargs)
        self.route(message)
        return message.request_id

    # what routing left behind

    def event(self, request_id: str, connection: Doc) -> Doc | None:
        return self.records.get_event(derived_id(Prefix.EVENT, request_id, connection["id"]))

    def ignored(self, request_id: str) -> dict[str, Doc]:
        return {doc["connection_id"]: doc for doc in self.records.ignored_of_request(request_id)}

    def deliveries(self) -> list[tuple[messages.Message, int]]:
        return [(messages.decode(body), delay) for body, delay in self.queues.deliver]


@pytest.fixture()
def world() -> World:
    return World()


# ---- fan-out -------------------------------------------------------------------------------------


def test_a_request_fans_out_to_every_connection_of_its_source_in_creation_order(world):
    # Given
    source = world.source()
    first = world.connection(source)
    world.clock.advance(seconds=1)
    second = world.connection(source)
    world.connection(world.source())  # another source's connection takes no part
    # When
    request_id = world.send(source)
    # Then
    events = [world.event(request_id, first), world.event(request_id, second)]
    assert [(e["status"], e["attempts"], e["next_trigger"], e["data"]) for e in events] == [
        ("QUEUED", 0, "INITIAL", None)
    ] * 2
    assert [e["destination_id"] for e in events] == [first["destination_id"], second["destination_id"]]
    assert all(e["next_attempt_at"] == iso(world.clock.now()) for e in events)
    assert len(world.records.events) == 2
    assert world.deliveries() == [
        (messages.DeliverEvent(team_id=TEAM, event_id=events[0]["id"], trigger="INITIAL"), 0),
        (messages.DeliverEvent(team_id=TEAM, event_id=events[1]["id"], trigger="INITIAL"), 0),
    ]


def test_the_request_records_its_event_and_ignored_counts_and_when_it_was_routed(world):
    # Given
    source = world.source()
    world.connection(source)
    world.connection(source, rules=[{"type": "filter", "body": {"type": "order.refunded"}}])
    disabled = world.connection(source)
    connections.set_connection_enabled(
        team_id=TEAM, connection_id=disabled["id"], enabled=False, store=world.control, clock=world.clock
    )
    message = world.ingest(source)
    world.clock.advance(seconds=2)
    # When
    outcome = world.route(message)
    # Then
    assert outcome == RouteOutcome(events=1, ignored=2, deliveries=1)
    stored = world.records.get_request(message.request_id)
    assert (stored["events_count"], stored["ignored_count"]) == (1, 2)
    assert stored["routed_at"] == iso(world.clock.now())


def test_a_source_without_connections_routes_to_nothing_and_says_so(world):
    # Given
    source = world.source()
    # When
    request_id = world.send(source)
    # Then
    stored = world.records.get_request(request_id)
    assert (stored["events_count"], stored["ignored_count"], stored["routed_at"]) == (0, 0, iso(world.clock.now()))
    assert world.queues.deliver == []


# ---- filters -------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("rule", "request_kwargs", "passes"),
    [
        ({"body": {"type": "order.paid"}}, {"body": {"type": "order.paid"}}, True),
        ({"body": {"type": "order.paid"}}, {"body": {"type": "order.failed"}}, False),
        ({"body": {"amount": {"$gte": 100}}}, {"body": {"amount": 250}}, True),
        ({"headers": {"X-Shopify-Topic": "orders/create"}}, {"headers": {"x-shopify-topic": "orders/create"}}, True),
        ({"headers": {"x-shopify-topic": "orders/create"}}, {"headers": {"x-shopify-topic": "orders/delete"}}, False),
        ({"query": {"tag": "gift"}}, {"query": "tag=card&tag=gift"}, True),
        ({"query": {"tag": "gift"}}, {"query": "tag=card"}, False),
        ({"query": {"page": "2"}}, {"query": "page=2"}, True),
        ({"path": {"$startsWith": "/orders"}}, {"path": "/orders/17"}, True),
        ({"path": {"$startsWith": "/orders"}}, {"path": "/refunds/17"}, False),
        ({"path": "/orders/17", "body": {"type": "order.paid"}}, {"path": "/orders/17", "body": {"type": "x"}}, False),
    ],
    ids=[
        "body-match",
        "body-mismatch",
        "body-operator",
        "header-name-in-any-case",
        "header-value-mismatch",
        "repeated-query-key-is-a-list",
        "query-mismatch",
        "query-single-value",
        "path-match",
        "path-mismatch",
        "every-named-part-must-match",
    ],
)
def test_a_filter_lets_matching_requests_through_and_records_the_rest_as_filtered(world, rule, request_kwargs, passes):
    # Given
    source = world.source()
    connection = world.connection(source, rules=[{"type": "filter", **rule}])
    # When
    request_id = world.send(source, **request_kwargs)
    # Then
    if passes:
        assert world.event(request_id, connection)["status"] == "QUEUED"
        assert world.ignored(request_id) == {}
    else:
        assert world.event(request_id, connection) is None
        ignored = world.ignored(request_id)[connection["id"]]
        assert ignored["cause"] == "FILTERED"
        assert ignored["id"] == derived_id(Prefix.IGNORED, request_id, connection["id"])
        assert world.queues.deliver == []


def test_a_body_that_is_not_valid_json_is_filtered_as_text_instead_of_failing(world):
    # Given
    source = world.source()
    connection = world.connection(source, rules=[{"type": "filter", "body": {"$startsWith": "{not json"}}])
    # When
    request_id = world.send(source, b"{not json at all")
    # Then
    assert world.event(request_id, connection)["status"] == "QUEUED"


def test_a_large_body_kept_in_the_payload_store_is_filtered_like_an_inline_one(world):
    # Given
    source = world.source()
    connection = world.connection(source, rules=[{"type": "filter", "body": {"kind": "bulk"}}])
    body = {"kind": "bulk", "padding": "x" * 20_000}
    # When
    request_id = world.send(source, body)
    # Then
    assert world.records.get_request(request_id)["body_key"] is not None
    assert world.event(request_id, connection)["status"] == "QUEUED"


# ---- disabled, paused, delayed -------------------------------------------------------------------


def test_a_disabled_connection_ignores_the_request_as_disabled(world):
    # Given
    source = world.source()
    connection = world.connection(source)
    connections.set_connection_enabled(
        team_id=TEAM, connection_id=connection["id"], enabled=False, store=world.control, clock=world.clock
    )
    # When
    request_id = world.send(source)
    # Then
    assert world.event(request_id, connection) is None
    assert world.ignored(request_id)[connection["id"]]["cause"] == "DISABLED"
    assert world.queues.deliver == []


def test_a_disabled_destination_ignores_the_request_as_disabled(world):
    # Given
    source = world.source()
    destination = world.destination()
    connection = world.connection(source, destination=destination)
    destinations.set_destination_enabled(
        team_id=TEAM, destination_id=destination["id"], enabled=False, store=world.control, clock=world.clock
    )
    # When
    request_id = world.send(source)
    # Then
    assert world.event(request_id, connection) is None
    assert world.ignored(request_id)[connection["id"]]["cause"] == "DISABLED"


def test_a_paused_connection_holds_new_events_without_queueing_a_delivery(world):
    # Given
    source = world.source()
    connection = world.connection(source)
    world.pause(connection)
    # When
    request_id = world.send(source)
    # Then
    event = world.event(request_id, connection)
    assert (event["status"], event["next_attempt_at"], event["next_trigger"]) == ("HOLD", None, "INITIAL")
    assert world.records.get_request(request_id)["events_count"] == 1
    assert world.queues.deliver == []


@pytest.mark.parametrize(("delay_ms", "queue_delay_s"), [(30_000, 30), (3_600_000, 900)], ids=["30s", "1h"])
def test_a_delay_schedules_the_event_and_the_queue_delay_never_exceeds_fifteen_minutes(world, delay_ms, queue_delay_s):
    # Given
    source = world.source()
    connection = world.connection(source, rules=[{"type": "delay", "delay": delay_ms}])
    # When
    request_id = world.send(source)
    # Then
    event = world.event(request_id, connection)
    assert event["status"] == "SCHEDULED"
    assert event["next_attempt_at"] == iso(world.clock.now() + timedelta(milliseconds=delay_ms))
    assert world.deliveries() == [(messages.DeliverEvent(TEAM, event["id"], "INITIAL"), queue_delay_s)]


# ---- deduplicate ---------------------------------------------------------------------------------


def test_a_duplicate_within_the_window_is_deduplicated_and_one_after_it_makes_a_new_event(world):
    # Given
    source = world.source()
    connection = world.connection(
        source, rules=[{"type": "deduplicate", "window": 60_000, "include_fields": ["body.id"]}]
    )
    first = world.send(source, {"id": "evt_1", "attempt": 1})
    # When
    world.clock.advance(seconds=30)
    duplicate = world.send(source, {"id": "evt_1", "attempt": 2})
    other = world.send(source, {"id": "evt_2"})
    world.clock.advance(seconds=31)
    after_window = world.send(source, {"id": "evt_1", "attempt": 3})
    # Then
    assert world.event(first, connection)["status"] == "QUEUED"
    assert world.event(duplicate, connection) is None
    assert world.ignored(duplicate)[connection["id"]]["cause"] == "DEDUPLICATED"
    assert world.event(other, connection)["status"] == "QUEUED"
    assert world.event(after_window, connection)["status"] == "QUEUED"
    assert len(world.queues.deliver) == 3


def test_deduplication_is_per_connection(world):
    # Given
    source = world.source()
    rules = [{"type": "deduplicate", "window": 60_000}]
    one, two = world.connection(source, rules=rules), world.connection(source, rules=rules)
    # When
    request_id = world.send(source)
    # Then
    assert world.event(request_id, one)["status"] == world.event(request_id, two)["status"] == "QUEUED"


# ---- transform -----------------------------------------------------------------------------------


def test_a_transformation_rewrites_the_request_the_event_delivers(world):
    # Given
    def to_cents(request: Doc) -> Doc:
        body = request["body"]
        return {
            **request,
            "path": "/v2" + request["path"],
            "headers": {**request["headers"], "X-Currency": "EUR"},
            "body": {**body, "amount": body["amount"] * 100},
        }

    world.transformer = ScriptedTransformer(to_cents)
    source = world.source()
    transformation = world.transformation(env={"RATE": "100"})
    connection = world.connection(source, rules=[{"type": "transform", "transformation_id": transformation["id"]}])
    # When
    request_id = world.send(source, {"amount": 12}, path="/orders", query="a=1")
    # Then
    data = world.event(request_id, connection)["data"]
    assert json.loads(data["body"]) == {"amount": 1200}
    assert (data["method"], data["path"], data["query"], data["body_key"]) == ("POST", "/v2/orders", "a=1", None)
    assert data["headers"]["x-currency"] == "EUR"
    call = world.transformer.calls[0]
    assert (call["code"], call["env"]) == (transformation["code"], {"RATE": "100"})
    assert call["request"]["parsed_query"] == {"a": "1"}
    assert call["context"]["connection"] == {"id": connection["id"], "name": connection["name"]}
    assert call["context"]["source"]["id"] == source["id"]
    assert call["context"]["destination"]["id"] == connection["destination_id"]


def test_a_large_transformed_body_is_kept_in_the_payload_store(world):
    # Given
    world.transformer = ScriptedTransformer(lambda request: {**request, "body": "y" * 20_000})
    source = world.source()
    transformation = world.transformation()
    connection = world.connection(source, rules=[{"type": "transform", "transformation_id": transformation["id"]}])
    # When
    request_id = world.send(source)
    # Then
    data = world.event(request_id, connection)["data"]
    assert data["body"] is None
    assert world.payloads.get(data["body_key"]) == b"y" * 20_000


def test_a_transformation_that_throws_ignores_the_branch_as_transformation_failed(world):
    # Given
    world.transformer = ScriptedTransformer(error="TypeError: body.amount is undefined")
    source = world.source()
    transformation = world.transformation()
    connection = world.connection(source, rules=[{"type": "transform", "transformation_id": transformation["id"]}])
    # When
    request_id = world.send(source)
    # Then
    ignored = world.ignored(request_id)[connection["id"]]
    assert (ignored["cause"], ignored["message"]) == ("TRANSFORMATION_FAILED", "TypeError: body.amount is undefined")
    assert world.event(request_id, connection) is None and world.queues.deliver == []


def test_a_transformation_that_returns_no_request_fails_the_branch(world):
    # Given
    world.transformer = ScriptedTransformer(lambda request: ["not", "a", "request"])
    source = world.source()
    transformation = world.transformation()
    connection = world.connection(source, rules=[{"type": "transform", "transformation_id": transformation["id"]}])
    # When
    request_id = world.send(source)
    # Then
    ignored = world.ignored(request_id)[connection["id"]]
    assert ignored["cause"] == "TRANSFORMATION_FAILED"
    assert "not a request object" in ignored["message"]


def test_until_the_javascript_engine_lands_a_transform_rule_fails_with_that_reason(world):
    # Given
    source = world.source()
    transformation = world.transformation()
    connection = world.connection(source, rules=[{"type": "transform", "transformation_id": transformation["id"]}])
    # When
    request_id = world.send(source)
    # Then
    ignored = world.ignored(request_id)[connection["id"]]
    assert ignored["cause"] == "TRANSFORMATION_FAILED"
    assert ignored["message"] == "transformations run once the JavaScript engine lands"


def test_a_transformation_that_vanished_from_under_its_connection_fails_the_branch(world):
    # Given
    world.transformer = ScriptedTransformer()
    source = world.source()
    transformation = world.transformation()
    connection = world.connection(source, rules=[{"type": "transform", "transformation_id": transformation["id"]}])
    # The control API refuses to delete a transformation in use; stored data can still lose one.
    world.control.delete(TEAM, "transformation", transformation["id"], unique=transformation["name"])
    # When
    request_id = world.send(source)
    # Then
    ignored = world.ignored(request_id)[connection["id"]]
    assert ignored["cause"] == "TRANSFORMATION_FAILED"
    assert transformation["id"] in ignored["message"]


def test_rules_run_in_their_stored_order_so_a_filter_after_a_transform_sees_the_transformed_body(world):
    # Given
    world.transformer = ScriptedTransformer(lambda request: {**request, "body": {**request["body"], "kind": "kept"}})
    source = world.source()
    transformation = world.transformation()
    transform = {"type": "transform", "transformation_id": transformation["id"]}
    keep_filter = {"type": "filter", "body": {"kind": "kept"}}
    filter_after = world.connection(source, rules=[transform, keep_filter])
    filter_before = world.connection(source, rules=[keep_filter, transform])
    # When
    request_id = world.send(source, {"kind": "raw"})
    # Then
    assert json.loads(world.event(request_id, filter_after)["data"]["body"]) == {"kind": "kept"}
    assert world.ignored(request_id)[filter_before["id"]]["cause"] == "FILTERED"
    assert len(world.transformer.calls) == 1


def test_one_connections_transformation_does_not_change_what_another_connection_sees(world):
    # Given
    def mutate_in_place(request: Doc) -> Doc:
        request["body"]["kind"] = "changed"
        return request

    world.transformer = ScriptedTransformer(mutate_in_place)
    source = world.source()
    transformation = world.transformation()
    world.connection(source, rules=[{"type": "transform", "transformation_id": transformation["id"]}])
    untouched = world.connection(source, rules=[{"type": "filter", "body": {"kind": "raw"}}])
    # When
    request_id = world.send(source, {"kind": "raw"})
    # Then
    assert world.event(request_id, untouched)["status"] == "QUEUED"


# ---- requests that are not routed ----------------------------------------------------------------


def test_a_rejected_request_is_not_routed(world):
    # Given
    source = world.source(config={"allowed_http_methods": ["PUT"]})
    connection = world.connection(source)
    message = world.ingest(source)  # a POST the source does not allow: stored as rejected
    # When
    outcome = world.route(message)
    # Then
    assert outcome == RouteOutcome()
    assert world.event(message.request_id, connection) is None
    assert world.records.get_request(message.request_id)["routed_at"] is None


def test_a_message_for_a_request_that_is_not_stored_asks_for_a_redelivery(world):
    # When: the message overtook its Request's write, or the write failed
    with pytest.raises(RequestNotStoredError):
        route_request(
            message=messages.RouteRequest(team_id=TEAM, request_id="req_01M8547MZCKAJCA8VS2MAZA7PF"),
            records=world.records,
            resources=world.resources,
            payloads=world.payloads,
            queues=world.queues,
            transformer=world.transformer,
            routing=world.routing,
            clock=world.clock,
            not_stored_waits_s=(),
        )
    # Then nothing was routed
    assert world.queues.deliver == []


class LateRecords:
    """The record store as a route message that overtook ingest's write sees it: absent, then there."""

    def __init__(self, inner: Any, misses: int) -> None:
        self.inner, self.misses = inner, misses

    def get_request(self, request_id: str) -> Doc | None:
        if self.misses > 0:
            self.misses -= 1
            return None
        return self.inner.get_request(request_id)

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)


def test_a_message_that_overtakes_its_request_is_routed_once_the_request_lands(world):
    # Given: the first two reads miss the Request that ingest is still writing
    source = world.source()
    connection = world.connection(source)
    message = world.ingest(source)
    # When
    route_request(
        message=message,
        records=LateRecords(world.records, misses=2),
        resources=world.resources,
        payloads=world.payloads,
        queues=world.queues,
        transformer=world.transformer,
        routing=world.routing,
        clock=world.clock,
        not_stored_waits_s=(0.001, 0.001, 0.001),
    )
    # Then: routed in the same run, without waiting for SQS
    assert world.event(message.request_id, connection)["status"] == "QUEUED"


@pytest.mark.parametrize(("receives", "failures"), [(1, ["m-1"]), (2, ["m-1"]), (3, [])])
def test_the_route_worker_retries_a_missing_request_then_drops_it_after_three_receives(world, receives, failures):
    # Given: a route message whose Request was never stored (ingest's write failed, its provider retried)
    body = messages.encode(messages.RouteRequest(team_id=TEAM, request_id="req_01M8547MZCKAJCA8VS2MAZA7PF"))
    record = _sqs_record("m-1", body)
    record["attributes"]["ApproximateReceiveCount"] = str(receives)
    wiring.use(
        wiring.Container(
            settings=Settings(),
            clock=world.clock,
            overrides={"control": world.control, "records": world.records, "queues": world.queues},
        )
    )
    try:
        # When
        answer = handle_route_batch({"Records": [record]}, None)
    finally:
        wiring.reset()
    # Then: SQS redelivers it twice, then it is acknowledged and gone
    assert answer == {"batchItemFailures": [{"itemIdentifier": m} for m in failures]}
    assert world.queues.deliver == []


# ---- idempotency ---------------------------------------------------------------------------------


def test_routing_the_same_message_twice_creates_nothing_new_and_resends_deliveries_not_yet_tried(world):
    # Given
    source = world.source()
    tried, untried = world.connection(source), world.connection(source)
    world.connection(source, rules=[{"type": "filter", "body": {"type": "never"}}])
    message = world.ingest(source)
    world.route(message)
    events_before, ignored_before = dict(world.records.events), dict(world.records.ignored)
    world.records.events[world.event(message.request_id, tried)["id"]]["attempts"] = 1  # its delivery started
    # When
    outcome = world.route(message)
    # Then
    assert world.records.events.keys() == events_before.keys()
    assert world.records.ignored == ignored_before
    assert outcome == RouteOutcome(events=2, ignored=1, deliveries=1)
    untried_id = world.event(message.request_id, untried)["id"]
    assert [m.event_id for m, _ in world.deliveries()].count(untried_id) == 2


def test_a_crash_before_the_deliver_messages_left_is_repaired_by_the_redelivered_message():
    # Given
    world = World(queues=QueuesThatFailOnce())
    source = world.source()
    one, two = world.connection(source), world.connection(source)
    message = world.ingest(source)
    with pytest.raises(ConnectionError):
        world.route(message)
    assert world.queues.deliver == []
    # When
    world.route(message)
    # Then
    expected = {world.event(message.request_id, one)["id"], world.event(message.request_id, two)["id"]}
    assert {m.event_id for m, _ in world.deliveries()} == expected
    assert len(world.records.events) == 2


def test_a_crash_between_storing_events_and_counting_them_is_finished_by_the_redelivered_message():
    # Given
    world = World(records=RecordsThatFailOnce("finish_routing"))
    source = world.source()
    connection = world.connection(source, rules=[{"type": "delay", "delay": 60_000}])
    message = world.ingest(source)
    with pytest.raises(ConnectionError):
        world.route(message)
    first_event = world.event(message.request_id, connection)
    # When
    world.clock.advance(seconds=20)
    outcome = world.route(message)
    # Then
    assert outcome == RouteOutcome(events=1, ignored=0, deliveries=1)
    assert world.event(message.request_id, connection) == first_event
    assert world.records.get_request(message.request_id)["events_count"] == 1
    # The retry keeps the first run's schedule: 40 s are left of the 60 s delay.
    assert world.deliveries() == [(messages.DeliverEvent(TEAM, first_event["id"], "INITIAL"), 40)]


def test_a_dedupe_claim_left_by_a_crashed_run_does_not_drop_that_runs_own_event():
    # Given
    world = World(records=RecordsThatFailOnce("put_event"))
    source = world.source()
    connection = world.connection(source, rules=[{"type": "deduplicate", "window": 60_000}])
    message = world.ingest(source)
    with pytest.raises(ConnectionError):
        world.route(message)  # claimed the dedupe key, then died before storing the event
    # When
    world.route(message)
    duplicate = world.send(source)
    # Then
    event = world.event(message.request_id, connection)
    assert event["status"] == "QUEUED"
    assert [m.event_id for m, _ in world.deliveries()] == [event["id"]]
    assert world.ignored(duplicate)[connection["id"]]["cause"] == "DEDUPLICATED"


def test_a_redelivered_duplicate_stays_deduplicated():
    # Given
    world = World(records=RecordsThatFailOnce("finish_routing", armed=False))
    source = world.source()
    connection = world.connection(source, rules=[{"type": "deduplicate", "window": 60_000}])
    world.send(source)
    world.records.arm()
    duplicate = world.ingest(source)
    with pytest.raises(ConnectionError):
        world.route(duplicate)  # recorded DEDUPLICATED, then died before counting
    # When
    outcome = world.route(duplicate)
    # Then
    assert outcome == RouteOutcome(events=0, ignored=1, deliveries=0)
    assert world.event(duplicate.request_id, connection) is None
    assert world.ignored(duplicate.request_id)[connection["id"]]["cause"] == "DEDUPLICATED"


# ---- the routing cache ---------------------------------------------------------------------------


def test_the_routing_cache_reads_one_version_per_request_and_reloads_only_after_a_change(world):
    # Given
    source = world.source()
    connection = world.connection(source)
    # When
    for _ in range(3):
        world.send(source)
    reads_before_change = (world.resources.version_reads, world.resources.full_loads)
    world.pause(connection)
    world.send(source)
    world.send(source)
    # Then
    assert reads_before_change == (3, 1)
    assert (world.resources.version_reads, world.resources.full_loads) == (5, 2)


def test_pausing_a_connection_takes_effect_on_the_very_next_request(world):
    # Given
    source = world.source()
    connection = world.connection(source)
    before = world.send(source)
    # When
    world.pause(connection)
    after = world.send(source)
    # Then
    assert world.event(before, connection)["status"] == "QUEUED"
    assert world.event(after, connection)["status"] == "HOLD"


def test_a_new_connection_receives_the_very_next_request(world):
    # Given
    source = world.source()
    world.connection(source)
    world.send(source)
    # When
    added = world.connection(source)
    request_id = world.send(source)
    # Then
    assert world.event(request_id, added)["status"] == "QUEUED"


# ---- the SQS entry point -------------------------------------------------------------------------


def _sqs_record(message_id: str, body: str) -> dict[str, Any]:
    return {
        "messageId": message_id,
        "receiptHandle": f"handle-{message_id}",
        "body": body,
        "attributes": {"ApproximateReceiveCount": "1"},
        "messageAttributes": {},
        "md5OfBody": "",
        "eventSource": "aws:sqs",
        "eventSourceARN": "arn:aws:sqs:us-east-1:123456789012:fasthook-test-route",
        "awsRegion": "us-east-1",
    }


def test_the_route_worker_reports_unreadable_messages_as_batch_item_failures():
    # Given
    deliver = messages.encode(messages.DeliverEvent(team_id=TEAM, event_id="evt_x", trigger="INITIAL"))
    event = {"Records": [_sqs_record("m-1", "not a message"), _sqs_record("m-2", deliver)]}
    # When
    answer = handle_route_batch(event, None)
    # Then
    assert answer == {"batchItemFailures": [{"itemIdentifier": "m-1"}, {"itemIdentifier": "m-2"}]}
