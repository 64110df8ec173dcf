"""Hostile traffic through the embedded stack, as a provider or a client on the network would send it.

Oversized bodies are refused whole (nothing half-stored), odd bodies arrive byte for byte, oversized
headers and query strings get a clear 4xx, and no secret (API key, session token, source or
destination credential, signing secret) appears in anything FastHook logs along the way.
"""

from __future__ import annotations

import http.client
import logging
import uuid
from typing import Any

import pytest

from tests.e2e.conftest import FastHook, eventually
from tests.support.provider_signatures import basic_auth_header
from tests.support.receiver import Response

MAX_BODY = 10 * 1024 * 1024  # the embedded stack's default FASTHOOK_MAX_BODY_BYTES (DESIGN.md section 4)


def _objects(fasthook: FastHook) -> set[str]:
    from chalicelib.adapters.dynamo.client import make_client
    from chalicelib.settings import get_settings

    settings = get_settings()
    s3 = make_client("s3", region=settings.region, endpoint=settings.aws_endpoint)
    pages = s3.get_paginator("list_objects_v2").paginate(Bucket=settings.payload_bucket)
    return {item["Key"] for page in pages for item in page.get("Contents", [])}


def _requests_of(fasthook: FastHook, source_id: str) -> list[dict[str, Any]]:
    return fasthook.ok("GET", f"/requests?source_id={source_id}")["models"]


def _raw(fasthook: FastHook, method: str, target: str, headers: dict[str, str], body: bytes = b"") -> tuple[int, Any]:
    host, port = fasthook.url.removeprefix("http://").split(":")
    connection = http.client.HTTPConnection(host, int(port), timeout=30)
    try:
        connection.putrequest(method, target, skip_accept_encoding=True)
        for name, value in headers.items():
            connection.putheader(name, value)
        connection.putheader("Content-Length", str(len(body)))
        connection.endheaders(body)
        response = connection.getresponse()
        return response.status, response.read()
    finally:
        connection.close()


@pytest.mark.parametrize("framing", ["content-length", "chunked"])
def test_a_body_one_byte_over_10_mib_is_413_and_nothing_is_stored(fasthook, receiver, framing):
    # Given: the body whole (Content-Length known up front) or streamed in chunks (known only at the end)
    conn = fasthook.route(receiver)
    source_id = conn["source"]["id"]
    objects_before = _objects(fasthook)
    body = b"x" * (MAX_BODY + 1)
    step = 1 << 20
    payload = body if framing == "content-length" else (body[i : i + step] for i in range(0, len(body), step))

    # When
    answer = fasthook.send(source_id, payload, headers={"Content-Type": "application/octet-stream"})

    # Then
    assert answer.status_code == 413
    assert answer.json()["error"] == "payload_too_large"
    assert _requests_of(fasthook, source_id) == []
    assert _objects(fasthook) == objects_before
    assert receiver.requests == []


BODIES = {
    "utf8-text": ("text/plain; charset=utf-8", "Grüße 👋 مرحبا \u202e\u0000 done".encode()),
    "not-utf8-under-json": ("application/json", b'{"a": "\xff\xfe"}'),
    "binary-with-nul": ("application/octet-stream", bytes(range(256)) * 4),
    "json-nested-50k-deep": ("application/json", b"[" * 50_000 + b"]" * 50_000),
    "utf16-bom": ("text/plain; charset=utf-16", "\ufeffhello".encode("utf-16-le")),
    "empty": ("application/json", b""),
}


@pytest.mark.parametrize("kind", list(BODIES))
def test_odd_bodies_are_accepted_and_delivered_byte_identical(fasthook, receiver, kind):
    # Given
    content_type, body = BODIES[kind]
    conn = fasthook.route(receiver)

    # When
    answer = fasthook.send(conn["source"]["id"], body, headers={"Content-Type": content_type})
    [got] = receiver.wait_for(1, timeout_s=30)
    request_id = answer.json()["request_id"]
    shown = fasthook.api("GET", f"/requests/{request_id}?include=data")

    # Then
    assert answer.status_code == 200
    assert got.body == body
    assert shown[0] == 200, shown


@pytest.mark.parametrize(
    ("headers", "expected"),
    [
        ({"X-Big": "a" * 70_000}, 431),
        ({f"X-Many-{i}": "v" for i in range(150)}, 431),
    ],
    ids=["one-70k-header", "150-headers"],
)
@pytest.mark.parametrize("target", ["/v1/sources", "/e/src_any"])
def test_oversized_headers_are_a_clear_4xx_and_the_server_keeps_serving(fasthook, headers, expected, target):
    # When
    status, body = _raw(fasthook, "POST", target, {"Host": "fasthook", "Content-Type": "application/json", **headers})

    # Then
    assert status == expected, body
    assert b'"error"' in body
    assert fasthook.api("GET", "/sources?limit=1")[0] == 200


@pytest.mark.parametrize(
    ("query", "allowed"),
    [
        ("q=" + "a" * 70_000, {414}),  # past the request line's limit
        ("q=" + "a" * 30_000, {200, 400}),  # long but readable: answered, not crashed
        ("&".join(f"p{i}=v" for i in range(3000)), {200, 400}),
        ("limit=%ff%fe&cursor=%00", {400}),
    ],
    ids=["70k", "30k", "3000-params", "undecodable"],
)
@pytest.mark.parametrize("path", ["/v1/events", "/v1/requests", "/v1/sources"])
def test_oversized_or_odd_query_strings_are_answered_with_a_clear_status(fasthook, query, allowed, path):
    # When
    status, body = _raw(
        fasthook, "GET", f"{path}?{query}", {"Host": "fasthook", "Authorization": f"Bearer {fasthook.token}"}
    )

    # Then
    assert status in allowed, body[:300]
    assert fasthook.api("GET", "/sources?limit=1")[0] == 200


@pytest.mark.parametrize("method", ["TRACE", "QUERY", "CONNECT", "BREW"])
def test_an_http_method_no_route_has_is_a_405_or_404_never_a_server_error(fasthook, method):
    # When
    on_route = _raw(fasthook, method, "/v1/health", {"Host": "fasthook"})
    elsewhere = _raw(fasthook, method, "/v1/no-such-route", {"Host": "fasthook"})

    # Then
    assert on_route[0] == 405 and b"method_not_allowed" in on_route[1]
    assert elsewhere[0] == 404 and b"not_found" in elsewhere[1]


# ---- secrets never in logs ----------------------------------------------------------------------------

OUR_LOGGERS = (
    "fasthook-api",
    "fasthook-ingest",
    "fasthook-route",
    "fasthook-deliver",
    "fasthook-sweeper",
    "fasthook-bulk",
    "fasthook.local",
    "local.server",
    "local.workers",
)


def test_no_secret_appears_in_any_log_line_of_a_full_pipeline_run(fasthook, receiver, capfd, caplog):
    # Given: a source that checks basic auth, a destination that sends a bearer token, a failing first
    # attempt (so retries and error paths log too), and every credential the control API hands out
    caplog.set_level(logging.INFO)  # libraries at the level a deployed stage runs them
    for name in OUR_LOGGERS:  # our own code at its most talkative
        caplog.set_level(logging.DEBUG, logger=name)
    tag = uuid.uuid4().hex[:8]
    source_password = f"src-pass-{tag}"
    destination_token = f"dest-token-{tag}"
    conn = fasthook.route(
        receiver,
        source_config={"auth_type": "BASIC_AUTH", "auth": {"username": "provider", "password": source_password}},
        destination_config={"auth_type": "BEARER_TOKEN", "auth": {"token": destination_token}},
    )
    project = fasthook.ok("GET", "/project-secrets")
    api_key, signing_secret = project["api_key"]["value"], project["signing_secret"]["value"]
    session = fasthook.http.post(f"{fasthook.url}/v1/auth/demo/login", timeout=30).json()["token"]
    receiver.script(Response(status=500, body=f"echo {destination_token}".encode()))

    # When: webhooks with and without the right credential, control calls with each token, a bad token
    source_id = conn["source"]["id"]
    good = fasthook.send(source_id, b'{"card": "4242"}', headers=basic_auth_header("provider", source_password))
    forged = fasthook.send(source_id, b"{}", headers=basic_auth_header("provider", f"{source_password}-wrong"))
    for token in (api_key, session, f"fhp_not_a_key_{tag}"):
        fasthook.http.get(f"{fasthook.url}/v1/sources", headers={"Authorization": f"Bearer {token}"}, timeout=30)
    fasthook.http.get(f"{fasthook.url}/v1/sources?api_key={api_key}", timeout=30)
    event_id = eventually(lambda: (fasthook.ok("GET", f"/events?source_id={source_id}")["models"] or [{}])[0].get("id"))
    eventually(lambda: fasthook.ok("GET", f"/events/{event_id}")["status"] == "FAILED")
    fasthook.ok("POST", f"/events/{event_id}/retry")
    eventually(lambda: len(receiver.requests) >= 2, timeout_s=30)
    fasthook.http.post(f"{fasthook.url}/v1/auth/logout", headers={"Authorization": f"Bearer {session}"}, timeout=30)
    out, err = capfd.readouterr()
    logged = out + err + "\n".join(f"{r.getMessage()} {r.__dict__}" for r in caplog.records)

    # Then
    assert good.status_code == 200 and forged.status_code in (401, 403)
    assert event_id in logged, "the pipeline's log lines were not captured, so this test would prove nothing"
    secrets = {
        "source password": source_password,
        "destination token": destination_token,
        "API key": api_key,
        "signing secret": signing_secret,
        "session token": session,
        "unknown bearer token": f"fhp_not_a_key_{tag}",
        "basic auth header": basic_auth_header("provider", source_password)["authorization"].split()[-1],
    }
    assert [name for name, value in secrets.items() if value in logged] == []
    assert "Bearer " not in logged
