"""A webhook's whole trip as a user drives it: provider -> ingest -> route -> deliver -> loopback receiver."""

from __future__ import annotations

import os
import time

from chalicelib.domain.outbound import verify_signature
from tests.e2e.conftest import eventually
from tests.support.provider_signatures import stripe_headers
from tests.support.receiver import Response


def test_a_1_kb_json_webhook_arrives_byte_identical_signed_with_its_path_and_query(fasthook, receiver):
    # Given
    conn = fasthook.route(receiver)
    body = b'{"type":"invoice.paid","pad":"' + b"x" * 990 + b'"}'
    secret = fasthook.ok("GET", "/project-secrets")["signing_secret"]["value"]
    # When
    answer = fasthook.send(conn["source"]["id"], body, path="/orders/7", query="a=1&b=two")
    [got] = receiver.wait_for(1, timeout_s=20)
    # Then
    assert answer.status_code == 200 and answer.json()["request_id"].startswith("req_")
    assert got.body == body
    assert (got.method, got.path, got.query) == ("POST", "/hooks/orders/7", "a=1&b=two")
    assert verify_signature(secret, got.body, got.header("x-fasthook-signature"))
    assert got.header("x-fasthook-request-id") == answer.json()["request_id"]
    assert got.header("x-fasthook-attempt-trigger") == "INITIAL"
    assert got.header("x-fasthook-attempt-count") == "1"
    event = fasthook.records.get_event(got.header("x-fasthook-event-id"))
    assert eventually(lambda: fasthook.records.get_event(event["id"])["status"] == "SUCCESSFUL")


def test_a_1_mib_binary_body_arrives_byte_identical(fasthook, receiver):
    # Given
    conn = fasthook.route(receiver)
    body = os.urandom(1024 * 1024)
    # When
    answer = fasthook.send(conn["source"]["id"], body, headers={"Content-Type": "application/octet-stream"})
    [got] = receiver.wait_for(1, timeout_s=30)
    # Then
    assert answer.status_code == 200
    assert got.body == body
    assert fasthook.records.get_request(answer.json()["request_id"])["body_key"]


def test_one_webhook_fans_out_to_every_connection_of_its_source(fasthook, receiver):
    # Given
    first = fasthook.route(receiver, path="/a")
    fasthook.ok(
        "POST",
        "/connections",
        {
            "name": "second",
            "source_id": first["source"]["id"],
            "destination": {"name": f"{first['destination']['name']}-b", "config": {"url": receiver.url("/b")}},
        },
    )
    # When
    answer = fasthook.send(first["source"]["id"])
    got = receiver.wait_for(2, timeout_s=20)
    # Then
    assert sorted(r.path for r in got) == ["/a", "/b"]
    request = eventually(
        lambda: (r := fasthook.records.get_request(answer.json()["request_id"])) and r["routed_at"] and r
    )
    assert request["events_count"] == 2 and request["ignored_count"] == 0


def test_a_filtered_webhook_is_not_delivered_and_leaves_an_ignored_branch(fasthook, receiver):
    # Given
    conn = fasthook.route(receiver, rules=[{"type": "filter", "body": {"type": {"$startsWith": "order."}}}])
    # When
    skipped = fasthook.send(conn["source"]["id"], b'{"type":"invoice.paid"}').json()["request_id"]
    kept = fasthook.send(conn["source"]["id"], b'{"type":"order.created"}').json()["request_id"]
    [got] = receiver.wait_for(1, timeout_s=20)
    # Then
    assert got.header("x-fasthook-request-id") == kept
    [ignored] = eventually(lambda: fasthook.records.ignored_of_request(skipped))
    assert ignored["cause"] == "FILTERED"
    time.sleep(0.5)
    assert len(receiver.requests) == 1


def test_a_failing_receiver_is_retried_by_the_retry_rule_until_it_answers(fasthook, receiver):
    # Given
    receiver.script(Response(status=500, body=b"down"))
    conn = fasthook.route(receiver, rules=[{"type": "retry", "strategy": "linear", "count": 3, "interval": 1000}])
    # When
    fasthook.send(conn["source"]["id"])
    got = receiver.wait_for(2, timeout_s=30)
    # Then
    assert [r.header("x-fasthook-attempt-trigger") for r in got] == ["INITIAL", "AUTOMATIC"]
    event_id = got[0].header("x-fasthook-event-id")
    assert got[1].header("x-fasthook-event-id") == event_id
    assert eventually(lambda: fasthook.records.get_event(event_id)["status"] == "SUCCESSFUL")
    attempts = fasthook.records.attempts_of_event(event_id)
    assert [(a["attempt_number"], a["response_status"]) for a in attempts] == [(1, 500), (2, 200)]


def test_a_paused_connection_holds_events_and_unpause_delivers_them_with_trigger_unpause(fasthook, receiver):
    # Given
    conn = fasthook.route(receiver)
    fasthook.ok("PUT", f"/connections/{conn['id']}/pause")
    request_id = fasthook.send(conn["source"]["id"]).json()["request_id"]
    [held] = eventually(lambda: fasthook.records.events_of_request(request_id))
    assert held["status"] == "HOLD"
    # When
    fasthook.ok("PUT", f"/connections/{conn['id']}/unpause")
    [got] = receiver.wait_for(1, timeout_s=20)
    # Then
    assert got.header("x-fasthook-attempt-trigger") == "UNPAUSE"


def test_retrying_a_failed_event_by_hand_delivers_it_again_and_a_paused_branch_is_409(fasthook, receiver):
    # Given
    receiver.script(Response(status=503))
    conn = fasthook.route(receiver)
    fasthook.send(conn["source"]["id"])
    [first] = receiver.wait_for(1, timeout_s=20)
    event_id = first.header("x-fasthook-event-id")
    eventually(lambda: fasthook.records.get_event(event_id)["status"] == "FAILED")
    # When
    status, event = fasthook.api("POST", f"/events/{event_id}/retry")
    second = receiver.wait_for(2, timeout_s=20)[1]
    # Then
    assert status == 200 and event["status"] == "QUEUED"
    assert second.header("x-fasthook-attempt-trigger") == "MANUAL"
    fasthook.ok("PUT", f"/connections/{conn['id']}/pause")
    status, body = fasthook.api("POST", f"/events/{event_id}/retry")
    assert status == 409 and "paused" in body["message"]


def test_replaying_a_request_routes_it_again_through_the_current_connections(fasthook, receiver):
    # Given
    conn = fasthook.route(receiver, path="/first")
    request_id = fasthook.send(conn["source"]["id"]).json()["request_id"]
    receiver.wait_for(1, timeout_s=20)
    fasthook.ok(
        "POST",
        "/connections",
        {
            "name": "added-later",
            "source_id": conn["source"]["id"],
            "destination": {"name": f"{conn['destination']['name']}-2", "config": {"url": receiver.url("/second")}},
        },
    )
    # When
    status, replay = fasthook.api("POST", f"/requests/{request_id}/retry")
    got = receiver.wait_for(3, timeout_s=20)
    # Then
    assert status == 202 and replay["retry_of"] == request_id and replay["is_retry"] is True
    assert sorted(r.path for r in got[1:]) == ["/first", "/second"]


def test_a_stripe_signed_webhook_is_verified_and_a_forged_one_is_refused(fasthook, receiver):
    # Given
    conn = fasthook.route(receiver, source_config={"auth_type": "STRIPE", "auth": {"webhook_secret_key": "whsec_e2e"}})
    body = b'{"id":"evt_e2e","type":"charge.succeeded"}'
    # When
    good = fasthook.send(conn["source"]["id"], body, headers=stripe_headers("whsec_e2e", body, int(time.time())))
    forged = fasthook.send(conn["source"]["id"], body, headers=stripe_headers("whsec_other", body, int(time.time())))
    [got] = receiver.wait_for(1, timeout_s=20)
    # Then
    assert (good.status_code, forged.status_code) == (200, 401)
    assert got.header("x-fasthook-verified") == "true"
    assert fasthook.records.get_request(good.json()["request_id"])["external_id"] == "evt_e2e"
    assert fasthook.records.get_request(forged.json()["request_id"])["rejection_cause"] == "VERIFICATION_FAILED"


def test_an_unknown_source_is_404_and_a_disallowed_method_is_405(fasthook, receiver):
    # Given
    conn = fasthook.route(receiver, source_config={"allowed_http_methods": ["POST"]})
    # Then
    assert fasthook.send("src_01M8547MZCKAJCA8VS2MAZA7PF").status_code == 404
    assert fasthook.send(conn["source"]["id"], method="PUT").status_code == 405
