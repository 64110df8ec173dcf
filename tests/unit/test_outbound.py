"""What a destination receives for a delivery: URL, method, headers, signature and body, decided offline."""

from __future__ import annotations

import base64
import hashlib
import hmac
from typing import Any

import pytest

from chalicelib.domain.errors import ValidationError
from chalicelib.domain.outbound import (
    DEFAULT_HTTP_TIMEOUT_S,
    OutboundRequest,
    sign_body,
    verify_signature,
)
from tests.support.deliveries import SECRET, a_delivery


def destination(url: str = "https://receiver.example.test/hooks", *, type: str = "HTTP", **config: Any):
    return {"type": type, "config": {"url": url, **config}}


def deliver(dest: dict[str, Any] | None = None, **overrides: Any) -> OutboundRequest:
    """A plain POST from a provider; each test overrides what it is about."""
    return a_delivery(dest or destination(), **overrides)


def header_names(req: OutboundRequest) -> set[str]:
    return {name.lower() for name, _ in req.headers}


# ---- URL and method ------------------------------------------------------------------------------------


def test_path_suffix_is_appended_to_the_destination_path():
    # Given a source URL called with /orders/42 after the source id
    # When the delivery is built
    req = deliver(destination("https://receiver.example.test/hooks/"), path_suffix="/orders/42")
    # Then the suffix lands under the destination's path
    assert req.url == "https://receiver.example.test/hooks/orders/42"


def test_inbound_query_follows_the_destination_query_with_duplicates_kept():
    # Given a destination URL that has its own query and an inbound query repeating a name
    dest = destination("https://receiver.example.test/hooks?tenant=a&v=1")
    # When the delivery is built
    req = deliver(dest, path_suffix="/x", query="v=2&tag=a%20b&tag=c")
    # Then both queries are kept as given, destination first
    assert req.url == "https://receiver.example.test/hooks/x?tenant=a&v=1&v=2&tag=a%20b&tag=c"


def test_path_forwarding_disabled_keeps_the_destination_path_but_still_forwards_the_query():
    # Given a destination that opted out of path forwarding
    dest = destination("https://receiver.example.test/fixed", path_forwarding_disabled=True)
    # When a request with a suffix and a query is delivered
    req = deliver(dest, path_suffix="/orders/42", query="id=42")
    # Then only the query travels
    assert req.url == "https://receiver.example.test/fixed?id=42"


def test_a_path_suffix_cannot_climb_above_the_destination_path():
    # Given suffixes that try to leave the destination's base path, plain and percent-encoded
    dest = destination("https://receiver.example.test/hooks")
    # When they are delivered
    plain = deliver(dest, path_suffix="/../admin")
    encoded = deliver(dest, path_suffix="/a/%2e%2e/%2E%2E/%2e%2e/admin")
    # Then they stay under /hooks
    assert plain.url == "https://receiver.example.test/hooks/admin"
    assert encoded.url == "https://receiver.example.test/hooks/admin"


def test_unsafe_characters_in_the_suffix_are_percent_encoded_once():
    # Given a suffix with a space and an already-encoded slash
    req = deliver(path_suffix="/a b/c%2Fd")
    # Then the space is encoded and the existing escape is left alone
    assert req.url == "https://receiver.example.test/hooks/a%20b/c%2Fd"


def test_the_inbound_method_is_used_unless_the_destination_fixes_one():
    # Given one destination without and one with http_method
    # When a PATCH arrives for each
    inbound = deliver(method="patch")
    fixed = deliver(destination(http_method="PUT"), method="PATCH")
    # Then the first forwards PATCH, the second sends PUT
    assert inbound.method == "PATCH"
    assert fixed.method == "PUT"


def test_timeout_is_the_destination_http_timeout_defaulting_to_30_seconds():
    assert deliver().timeout_s == DEFAULT_HTTP_TIMEOUT_S == 30
    assert deliver(destination(http_timeout=5)).timeout_s == 5


def test_a_mock_api_destination_gets_a_path_only_url_for_the_mock_sender():
    # Given a MOCK_API destination, which has a path instead of a URL
    dest = {"type": "MOCK_API", "config": {"path": "/mock/orders"}}
    # When a request is delivered
    req = deliver(dest, path_suffix="/1", query="a=1")
    # Then the URL is the mock path with suffix and query
    assert req.url == "/mock/orders/1?a=1"


def test_a_corrupt_stored_destination_config_is_a_validation_error():
    with pytest.raises(ValidationError):
        deliver({"type": "HTTP", "config": {"url": "ftp://nope"}})
    with pytest.raises(ValidationError):
        deliver({"type": "HTTP", "config": {}})


# ---- body and headers ------------------------------------------------------------------------------------


def test_the_body_bytes_are_forwarded_unchanged():
    # Given a body that is not text
    body = bytes(range(256)) * 4
    # When it is delivered
    req = deliver(body=body)
    # Then the very same bytes go out
    assert req.body == body


def test_hop_by_hop_headers_and_those_named_by_connection_are_not_forwarded():
    # Given a provider request with connection-level headers
    inbound = {
        "Host": "ingest.fasthook.test",
        "Content-Length": "9",
        "Connection": "keep-alive, X-Conn-Only",
        "X-Conn-Only": "1",
        "Keep-Alive": "timeout=5",
        "Proxy-Authorization": "Basic abc",
        "Proxy-Connection": "keep-alive",
        "TE": "trailers",
        "Trailer": "X-T",
        "Transfer-Encoding": "chunked",
        "Upgrade": "h2c",
        "Expect": "100-continue",
        "Accept-Encoding": "br",
        "Content-Type": "application/json",
        "X-GitHub-Event": "push",
    }
    # When it is delivered
    req = deliver(headers=inbound)
    # Then only the end-to-end headers remain, with their original spelling
    forwarded = [(name, value) for name, value in req.headers if not name.startswith("x-fasthook-")]
    assert forwarded == [("Content-Type", "application/json"), ("X-GitHub-Event", "push")]


def test_credentials_sent_to_fasthook_are_not_forwarded_but_provider_signatures_are():
    # Given a provider request carrying FastHook-bound credentials and its own signature
    inbound = {
        "Authorization": "Basic c291cmNlOnNlY3JldA==",
        "Cookie": "session=abc",
        "X-Source-Key": "src-api-key",
        "Stripe-Signature": "t=1,v1=abc",
    }
    # When the source's API key header is named for stripping
    req = deliver(headers=inbound, strip_headers=["x-source-key"])
    # Then the credentials stay behind and the provider signature travels on
    assert {"authorization", "cookie", "x-source-key"}.isdisjoint(header_names(req))
    assert req.header("stripe-signature") == "t=1,v1=abc"


def test_inbound_fasthook_headers_cannot_be_forged():
    # Given a provider that sends its own x-fasthook-* headers
    inbound = {"X-FastHook-Signature": "forged", "x-fasthook-verified": "true", "x-fasthook-anything": "1"}
    # When the request is delivered unverified
    req = deliver(headers=inbound, verified=False)
    # Then only FastHook's values are present
    assert [v for n, v in req.headers if n.lower() == "x-fasthook-signature"] == [sign_body(SECRET, req.body)]
    assert [v for n, v in req.headers if n.lower() == "x-fasthook-verified"] == ["false"]
    assert "x-fasthook-anything" not in header_names(req)


def test_headers_that_http_cannot_carry_are_dropped():
    req = deliver(headers={"X-Split": "a\r\nInjected: 1", "Bad Name": "x", "X-Ok": "fine"})
    assert req.header("x-ok") == "fine"
    assert {"x-split", "bad name", "injected"}.isdisjoint(header_names(req))


def test_fasthook_headers_describe_the_attempt():
    # Given the third automatic attempt of a verified request
    req = deliver(event_id="evt_9", request_id="req_9", attempt_number=3, trigger="AUTOMATIC", verified=True)
    # Then the receiver can tell which event, request and attempt it is
    assert req.header("x-fasthook-event-id") == "evt_9"
    assert req.header("x-fasthook-request-id") == "req_9"
    assert req.header("x-fasthook-attempt-count") == "3"
    assert req.header("x-fasthook-attempt-trigger") == "AUTOMATIC"
    assert req.header("x-fasthook-verified") == "true"


def test_the_signature_is_base64_hmac_sha256_of_the_raw_body_with_the_team_secret():
    # Given a delivery of some bytes
    body = b'{"amount": 100}\n'
    req = deliver(body=body)
    # Then the signature is what a receiver computes itself
    expected = base64.b64encode(hmac.new(SECRET.encode(), body, hashlib.sha256).digest()).decode()
    assert req.header("x-fasthook-signature") == expected
    assert verify_signature(SECRET, body, expected)


def test_a_receiver_rejects_a_signature_for_other_bytes_or_another_secret():
    signature = sign_body(SECRET, b"original")
    assert not verify_signature(SECRET, b"tampered", signature)
    assert not verify_signature("another-secret-value", b"original", signature)
    assert not verify_signature(SECRET, b"original", "not base64 at all ✓")


# ---- destination auth ------------------------------------------------------------------------------------


def test_bearer_token_auth_sends_an_authorization_bearer_header():
    req = deliver(destination(auth_type="BEARER_TOKEN", auth={"token": "tok_123"}))
    assert req.header("authorization") == "Bearer tok_123"


def test_basic_auth_sends_base64_username_and_password():
    req = deliver(destination(auth_type="BASIC_AUTH", auth={"username": "ann", "password": "pä:ss"}))
    assert req.header("authorization") == "Basic " + base64.b64encode("ann:pä:ss".encode()).decode()


def test_destination_auth_replaces_an_inbound_authorization():
    # Given a provider that sent its own Authorization
    dest = destination(auth_type="BEARER_TOKEN", auth={"token": "tok_dest"})
    # When delivered to a bearer-token destination
    req = deliver(dest, headers={"Authorization": "Bearer provider"})
    # Then exactly one Authorization goes out, the destination's
    assert [v for n, v in req.headers if n.lower() == "authorization"] == ["Bearer tok_dest"]


def test_api_key_auth_to_header_replaces_any_inbound_header_of_that_name():
    dest = destination(auth_type="API_KEY", auth={"key": "X-Api-Key", "api_key": "k_dest", "to": "header"})
    req = deliver(dest, headers={"x-api-key": "from-provider"})
    assert [v for n, v in req.headers if n.lower() == "x-api-key"] == ["k_dest"]


def test_api_key_auth_to_query_replaces_any_inbound_parameter_of_that_name():
    # Given an API key that goes into the query, and a provider query with the same name
    dest = destination(
        "https://receiver.example.test/hooks?v=1",
        auth_type="API_KEY",
        auth={"key": "key", "api_key": "k d&x", "to": "query"},
    )
    # When delivered
    req = deliver(dest, query="key=attacker&a=1")
    # Then the destination's key is the only one, encoded, and no header carries it
    assert req.url == "https://receiver.example.test/hooks?v=1&a=1&key=k%20d%26x"
    assert "key" not in header_names(req)


def test_secrets_and_bodies_stay_out_of_the_request_repr():
    req = deliver(destination(auth_type="BEARER_TOKEN", auth={"token": "tok_secret"}), body=b"payload-bytes")
    assert "tok_secret" not in repr(req)
    assert "payload-bytes" not in repr(req)
