"""Ingest against the in-memory fakes: what is stored, what is queued, and what the provider hears."""

from __future__ import annotations

import json

import pytest

from chalicelib.adapters.memory import (
    FixedClock,
    MemoryControlStore,
    MemoryPayloadStore,
    MemoryQueues,
    MemoryRecordStore,
)
from chalicelib.control import sources
from chalicelib.domain import messages
from chalicelib.domain.models import SourceCreate
from chalicelib.domain.timefmt import iso
from chalicelib.flow.ingest import Inbound, IngestLimits, accept_request
from tests.support.provider_signatures import github_headers, stripe_headers

TEAM = "tm_01M8547MZCKAJCA8VS2MAZA7PF"
LIMITS = IngestLimits(max_body_bytes=64 * 1024, inline_body_bytes=8192, retention_days=30)


class World:
    def __init__(self) -> None:
        self.resources = MemoryControlStore()
        self.records = MemoryRecordStore()
        self.payloads = MemoryPayloadStore()
        self.queues = MemoryQueues()
        self.clock = FixedClock()

    def source(self, **fields) -> dict:
        return sources.create_source(
            team_id=TEAM,
            body=SourceCreate(name=f"s{len(self.records.requests)}x{id(fields)}", **fields),
            store=self.resources,
            clock=self.clock,
        )

    def send(
        self,
        source_id: str,
        body: bytes = b'{"id":"evt_1"}',
        *,
        method: str = "POST",
        path: str = "",
        query: str = "",
        headers: dict | None = None,
        limits: IngestLimits = LIMITS,
    ):
        inbound = Inbound(
            source_id=source_id,
            method=method,
            path=path,
            query=query,
            headers={"content-type": "application/json", **(headers or {})},
            body=body,
        )
        return accept_request(
            inbound=inbound,
            records=self.records,
            resources=self.resources,
            payloads=self.payloads,
            queues=self.queues,
            clock=self.clock,
            limits=limits,
        )


@pytest.fixture()
def world() -> World:
    return World()


def test_an_accepted_webhook_is_stored_then_queued_and_answered_with_its_request_id(world):
    # Given
    src = world.source()
    # When
    answer = world.send(src["id"], path="/orders/1", query="a=1&b=2", headers={"x-github-delivery": "gh-1"})
    # Then
    assert answer.status == 200
    assert json.loads(answer.body) == {"status": "SUCCESS", "request_id": answer.request_id}
    stored = world.records.get_request(answer.request_id)
    assert stored["status"] == "accepted" and stored["verified"] is False
    assert (stored["method"], stored["path"], stored["query"]) == ("POST", "/orders/1", "a=1&b=2")
    assert stored["body"] == b'{"id":"evt_1"}'
    assert stored["external_id"] == "gh-1"
    assert [messages.decode(m) for m in world.queues.route] == [
        messages.RouteRequest(team_id=TEAM, request_id=answer.request_id)
    ]


class QueueDown(MemoryQueues):
    """The route queue refusing every send, after botocore's own retries."""

    def send_route(self, body: str) -> None:
        raise ConnectionError("route queue unreachable")


def test_a_route_queue_failure_fails_the_call_and_the_stored_request_says_why(world):
    # Given
    src = world.source()
    world.queues = QueueDown()
    # When: the provider gets an error, so it will send again
    with pytest.raises(ConnectionError):
        world.send(src["id"])
    # Then: the request that was written is not left looking merely unrouted
    [stored] = world.records.requests.values()
    assert (stored["status"], stored["routing_error"]) == ("accepted", "ROUTE_SEND_FAILED")
    assert stored["routing_failed_at"] == iso(world.clock.now())


def test_a_body_above_the_inline_limit_goes_to_s3_and_the_request_points_at_it(world):
    # Given
    src = world.source()
    body = bytes(range(256)) * 64  # 16 KiB of binary
    # When
    answer = world.send(src["id"], body=body, headers={"content-type": "application/octet-stream"})
    # Then
    stored = world.records.get_request(answer.request_id)
    assert stored["body"] is None
    assert world.payloads.get(stored["body_key"]) == body
    assert stored["body_size"] == len(body)


@pytest.mark.parametrize("bad_id", ["src_01M8547MZCKAJCA8VS2MAZA7PF", "nope", "des_01M8547MZCKAJCA8VS2MAZA7PF"])
def test_an_unknown_source_is_404_and_nothing_is_stored(world, bad_id):
    # When
    answer = world.send(bad_id)
    # Then
    assert answer.status == 404
    assert world.records.requests == {} and world.queues.route == []


def test_a_disabled_source_refuses_and_records_why(world):
    # Given
    src = world.source()
    sources.set_source_enabled(
        team_id=TEAM, source_id=src["id"], enabled=False, store=world.resources, clock=world.clock
    )
    # When
    answer = world.send(src["id"])
    # Then
    assert answer.status == 403
    stored = world.records.get_request(answer.request_id)
    assert (stored["status"], stored["rejection_cause"]) == ("rejected", "SOURCE_DISABLED")
    assert world.queues.route == []


def test_a_method_the_source_does_not_allow_is_405_with_allow_and_recorded(world):
    # Given
    src = world.source(config={"allowed_http_methods": ["POST"]})
    # When
    answer = world.send(src["id"], method="PUT")
    # Then
    assert answer.status == 405
    assert answer.headers["Allow"] == "POST"
    assert world.records.get_request(answer.request_id)["rejection_cause"] == "UNSUPPORTED_HTTP_METHOD"


def test_a_body_above_the_limit_is_413_recorded_without_its_body(world):
    # Given
    src = world.source()
    small = IngestLimits(max_body_bytes=1024, inline_body_bytes=512, retention_days=30)
    # When
    answer = world.send(src["id"], body=b"x" * 1025, limits=small)
    # Then
    assert answer.status == 413
    stored = world.records.get_request(answer.request_id)
    assert stored["rejection_cause"] == "PAYLOAD_TOO_LARGE"
    assert stored["body"] is None and stored["body_key"] is None and world.payloads.objects == {}


def test_a_stripe_signed_webhook_is_accepted_verified_with_the_event_id(world):
    # Given
    src = world.source(config={"auth_type": "STRIPE", "auth": {"webhook_secret_key": "whsec_test"}})
    body = b'{"id":"evt_1Nx","type":"invoice.paid"}'
    headers = stripe_headers("whsec_test", body, int(world.clock.now().timestamp()))
    # When
    answer = world.send(src["id"], body=body, headers=headers)
    # Then
    assert answer.status == 200
    stored = world.records.get_request(answer.request_id)
    assert stored["verified"] is True and stored["external_id"] == "evt_1Nx"


def test_a_webhook_signed_with_the_wrong_secret_is_401_and_recorded_as_failed_verification(world):
    # Given
    src = world.source(config={"auth_type": "GITHUB", "auth": {"webhook_secret_key": "right"}})
    body = b'{"zen":"hi"}'
    # When
    answer = world.send(src["id"], body=body, headers=github_headers("wrong", body))
    # Then
    assert answer.status == 401
    assert "right" not in answer.body
    stored = world.records.get_request(answer.request_id)
    assert (stored["status"], stored["rejection_cause"], stored["verified"]) == (
        "rejected",
        "VERIFICATION_FAILED",
        False,
    )
    assert world.queues.route == []


@pytest.mark.parametrize(
    ("content_type", "mime"), [("json", "application/json"), ("text", "text/plain"), ("xml", "application/xml")]
)
def test_a_custom_response_replaces_the_default_answer(world, content_type, mime):
    # Given
    src = world.source(config={"custom_response": {"content_type": content_type, "body": "<ok/>"}})
    # When
    answer = world.send(src["id"])
    # Then
    assert (answer.status, answer.body, answer.content_type) == (200, "<ok/>", mime)
    assert world.records.get_request(answer.request_id)["status"] == "accepted"


def test_a_disabled_then_re_enabled_source_accepts_again_at_once(world):
    # Given
    src = world.source()
    for enabled in (False, True):
        sources.set_source_enabled(
            team_id=TEAM, source_id=src["id"], enabled=enabled, store=world.resources, clock=world.clock
        )
    # Then
    assert world.send(src["id"]).status == 200
