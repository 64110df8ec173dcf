"""Transformation executions the route step stores, against the in-memory fakes.

Every run of a transform rule leaves one execution: its status, console lines, error, duration, and
links to the request it read and to what its branch became (the event, or the ignored branch).
"""

from __future__ import annotations

from typing import Any

import pytest

from chalicelib.adapters.memory import MemoryExecutionStore, MemoryRecordStore
from chalicelib.domain.executions import MAX_LOG_CHARS
from chalicelib.domain.ids import Prefix, derived_id
from chalicelib.domain.timefmt import iso
from chalicelib.domain.transforms import TransformationError, TransformResult
from chalicelib.flow.route import RouteOutcome, route_request
from chalicelib.ports import Doc
from tests.unit.test_route import RecordsThatFailOnce, World


class ConsoleTransformer:
    """A Transformer that logs `lines`, then returns `change(request)` or fails with `error`, as the engine does."""

    def __init__(self, change=None, *, lines: list[dict[str, str]] | None = None, error: str | None = None) -> None:
        self.change = change or (lambda request: request)
        self.lines = lines or []
        self.error = error

    def transform(self, *, code: str, env: dict[str, str], request: Doc, context: Doc) -> TransformResult:
        if self.error is not None:
            raise TransformationError(self.error, logs=self.lines)
        return TransformResult(request=self.change(request), logs=list(self.lines), duration_ms=0.042)


class ExecutionsWorld(World):
    def __init__(self, *, records: MemoryRecordStore | None = None) -> None:
        super().__init__(records=records)
        self.executions = MemoryExecutionStore()

    def route(self, message: Any) -> RouteOutcome:
        return route_request(
            message=message,
            records=self.records,
            resources=self.resources,
            payloads=self.payloads,
            queues=self.queues,
            transformer=self.transformer,
            routing=self.routing,
            clock=self.clock,
            executions=self.executions,
        )

    def transforming(self, source: Doc, *rules: Any) -> tuple[Doc, Doc]:
        """A transformation and a connection of `source` whose rules are `rules`, with the transform rule first."""
        transformation = self.transformation()
        transform = {"type": "transform", "transformation_id": transformation["id"]}
        return transformation, self.connection(source, rules=[transform, *rules])

    def stored(self) -> list[Doc]:
        return sorted(self.executions.executions.values(), key=lambda doc: doc["id"])


@pytest.fixture()
def world() -> ExecutionsWorld:
    return ExecutionsWorld()


TWO_LEVELS = [{"level": "log", "message": "seen order 7"}, {"level": "warn", "message": "amount is odd"}]


def test_a_transform_run_stores_a_successful_execution_linked_to_its_request_and_event(world):
    # Given
    world.transformer = ConsoleTransformer(lambda r: {**r, "body": {"order": 7}}, lines=TWO_LEVELS)
    source = world.source()
    transformation, connection = world.transforming(source)
    # When
    request_id = world.send(source, {"id": 7})
    # Then
    [execution] = world.stored()
    event = world.event(request_id, connection)
    assert execution["status"] == "SUCCESSFUL" and execution["error"] is None
    assert (execution["transformation_id"], execution["connection_id"]) == (transformation["id"], connection["id"])
    assert (execution["request_id"], execution["event_id"], execution["ignored_id"]) == (request_id, event["id"], None)
    assert execution["logs"] == TWO_LEVELS and execution["log_levels"] == ["log", "warn"]
    assert execution["duration_ms"] == 0.042
    assert (execution["created_at"], execution["expires_at"]) == (iso(world.clock.now()), event["expires_at"])
    assert '"body":{"order":7}' in execution["output_json"]


def test_a_failed_run_stores_a_failed_execution_with_the_error_and_lines_linked_to_the_ignored_branch(world):
    # Given
    world.transformer = ConsoleTransformer(lines=TWO_LEVELS[:1], error="Error: amount missing")
    source = world.source()
    _, connection = world.transforming(source)
    # When
    request_id = world.send(source)
    # Then
    [execution] = world.stored()
    ignored = world.ignored(request_id)[connection["id"]]
    assert (execution["status"], execution["error"]) == ("FAILED", "Error: amount missing")
    assert execution["logs"] == TWO_LEVELS[:1]
    assert (execution["event_id"], execution["ignored_id"]) == (None, ignored["id"])
    assert execution["output_json"] is None and execution["duration_ms"] >= 0


def test_a_run_whose_branch_a_later_filter_drops_is_successful_and_linked_to_the_ignored_branch(world):
    # Given
    world.transformer = ConsoleTransformer(lambda r: {**r, "body": {"kind": "skip"}})
    source = world.source()
    _, connection = world.transforming(source, {"type": "filter", "body": {"kind": "keep"}})
    # When
    request_id = world.send(source)
    # Then
    [execution] = world.stored()
    assert world.ignored(request_id)[connection["id"]]["cause"] == "FILTERED"
    assert execution["status"] == "SUCCESSFUL"
    assert execution["ignored_id"] == derived_id(Prefix.IGNORED, request_id, connection["id"])


def test_a_route_message_run_again_after_a_crash_keeps_one_execution(world):
    # Given
    crashing = ExecutionsWorld(records=RecordsThatFailOnce("finish_routing"))
    crashing.transformer = ConsoleTransformer(lines=TWO_LEVELS)
    source = crashing.source()
    crashing.transforming(source)
    message = crashing.ingest(source)
    with pytest.raises(ConnectionError):
        crashing.route(message)
    first = crashing.stored()
    # When
    crashing.route(message)
    crashing.route(message)
    # Then
    assert len(first) == 1
    assert crashing.stored() == first


def test_each_transform_rule_of_a_connection_stores_its_own_execution(world):
    # Given
    world.transformer = ConsoleTransformer()
    source = world.source()
    transformation, connection = world.transforming(source)
    second = world.transformation()
    rules = [
        {"type": "transform", "transformation_id": transformation["id"]},
        {"type": "transform", "transformation_id": second["id"]},
    ]
    other = world.connection(source, rules=rules)
    # When
    request_id = world.send(source)
    # Then
    stored = world.stored()
    assert sorted((e["connection_id"], e["rule_index"]) for e in stored) == sorted(
        [(connection["id"], 0), (other["id"], 0), (other["id"], 1)]
    )
    assert {e["event_id"] for e in stored if e["connection_id"] == other["id"]} == {
        world.event(request_id, other)["id"]
    }
    assert len({e["id"] for e in stored}) == 3


def test_a_large_transformed_request_is_not_copied_into_the_execution(world):
    # Given
    world.transformer = ConsoleTransformer(lambda r: {**r, "body": "y" * 20_000})
    source = world.source()
    _, connection = world.transforming(source)
    # When
    request_id = world.send(source)
    # Then
    [execution] = world.stored()
    assert execution["output_json"] is None
    assert execution["event_id"] == world.event(request_id, connection)["id"]


def test_a_connection_without_a_transform_rule_stores_no_execution(world):
    # Given
    source = world.source()
    world.connection(source)
    # When
    world.send(source)
    # Then
    assert world.stored() == []


def test_the_lines_kept_with_an_execution_are_capped_in_total(world):
    # Given
    line = {"level": "log", "message": "x" * 4096}
    world.transformer = ConsoleTransformer(lines=[line] * 100)
    source = world.source()
    world.transforming(source)
    # When
    world.send(source)
    # Then
    [execution] = world.stored()
    assert execution["logs_truncated"] is True
    assert sum(len(kept["message"]) for kept in execution["logs"]) <= MAX_LOG_CHARS
    assert execution["logs"] == [line] * len(execution["logs"])
