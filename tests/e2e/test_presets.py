"""Every source verification scheme, signed as the provider signs it, end to end.

The signatures come from tests/support/provider_signatures.py, written from the providers' own
descriptions and independent of chalicelib/domain/verification.py. A genuine webhook is delivered with
`x-fasthook-verified: true` and its provider's event id as the Request's external_id; one forgery per
scheme is refused with 401 and stored as a rejected Request with cause VERIFICATION_FAILED.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import pytest

from tests.support.provider_signatures import (
    basic_auth_header,
    github_headers,
    hmac_headers,
    shopify_headers,
    standard_webhooks_headers,
    standard_webhooks_secret,
    stripe_headers,
)

STANDARD_SECRET = standard_webhooks_secret(b"fasthook-e2e-standard-webhooks-k")
BODY = b'{"id":"evt_e2e_1","type":"order.paid","amount":4200}'
PLAIN_BODY = b'{"type":"order.paid","amount":4200}'  # no id: the generic schemes have no external id


@dataclass(frozen=True)
class Scheme:
    """A source's verification config, how its provider signs, and one way to forge it."""

    auth_type: str
    auth: dict[str, Any]
    body: bytes
    sign: Callable[[bytes, int], dict[str, str]]  # (body, unix now) -> headers
    forge: Callable[[bytes, int], tuple[bytes, dict[str, str]]]  # (body, unix now) -> (body, headers)
    external_id: str | None
    credential_header: str | None = None  # a header that proves the provider to FastHook and must not travel on


SCHEMES = [
    Scheme(
        "STRIPE",
        {"webhook_secret_key": "whsec_e2e_stripe"},
        BODY,
        sign=lambda body, now: stripe_headers("whsec_e2e_stripe", body, now),
        # a genuine signature, replayed ten minutes later: outside Stripe's five-minute tolerance
        forge=lambda body, now: (body, stripe_headers("whsec_e2e_stripe", body, now - 600)),
        external_id="evt_e2e_1",
    ),
    Scheme(
        "GITHUB",
        {"webhook_secret_key": "gh-e2e-secret"},
        BODY,
        sign=lambda body, now: github_headers("gh-e2e-secret", body, delivery_id="72d3162e-cc78-11e3-81ab"),
        forge=lambda body, now: (body, github_headers("not-the-secret", body, delivery_id="72d3162e-forged")),
        external_id="72d3162e-cc78-11e3-81ab",
    ),
    Scheme(
        "SHOPIFY",
        {"webhook_secret_key": "shpss_e2e"},
        BODY,
        sign=lambda body, now: shopify_headers("shpss_e2e", body, webhook_id="b54557e4-bdd9-4b37-8a5f"),
        # signed, then the body changed in transit
        forge=lambda body, now: (body.replace(b"4200", b"1"), shopify_headers("shpss_e2e", body, webhook_id="x")),
        external_id="b54557e4-bdd9-4b37-8a5f",
    ),
    Scheme(
        "STANDARD_WEBHOOKS",
        {"webhook_secret_key": STANDARD_SECRET},
        BODY,
        sign=lambda body, now: standard_webhooks_headers(STANDARD_SECRET, "msg_e2e_1", body, now),
        # a genuine signature for another message id: the id is part of what is signed
        forge=lambda body, now: (
            body,
            {
                **standard_webhooks_headers(STANDARD_SECRET, "msg_e2e_1", body, now),
                "webhook-id": "msg_e2e_2",
            },
        ),
        external_id="msg_e2e_1",
    ),
    Scheme(
        "HMAC",
        {"algorithm": "sha256", "encoding": "hex", "header_key": "x-e2e-signature", "webhook_secret_key": "hmac-e2e"},
        PLAIN_BODY,
        sign=lambda body, now: hmac_headers("hmac-e2e", body, header_key="x-e2e-signature", encoding="hex"),
        forge=lambda body, now: (body, hmac_headers("hmac-other", body, header_key="x-e2e-signature", encoding="hex")),
        external_id=None,
    ),
    Scheme(
        "BASIC_AUTH",
        {"username": "provider", "password": "s3cret-e2e"},
        PLAIN_BODY,
        sign=lambda body, now: basic_auth_header("provider", "s3cret-e2e"),
        forge=lambda body, now: (body, basic_auth_header("provider", "guess")),
        external_id=None,
        credential_header="authorization",
    ),
    Scheme(
        "API_KEY",
        {"header_key": "x-e2e-api-key", "api_key": "key-e2e-123"},
        PLAIN_BODY,
        sign=lambda body, now: {"x-e2e-api-key": "key-e2e-123"},
        forge=lambda body, now: (body, {"x-e2e-api-key": "key-e2e-124"}),
        external_id=None,
        credential_header="x-e2e-api-key",
    ),
]


@pytest.mark.parametrize("scheme", SCHEMES, ids=[s.auth_type for s in SCHEMES])
def test_a_webhook_signed_as_the_provider_signs_it_is_delivered_verified_and_a_forged_one_is_refused(
    fasthook, receiver, scheme
):
    # Given a source verified by the scheme
    conn = fasthook.route(receiver, source_config={"auth_type": scheme.auth_type, "auth": scheme.auth})
    source_id = conn["source"]["id"]
    now = int(time.time())
    forged_body, forged_headers = scheme.forge(scheme.body, now)
    # When the provider sends a genuine webhook, and someone else a forged one
    genuine = fasthook.send(source_id, scheme.body, headers=scheme.sign(scheme.body, now))
    forged = fasthook.send(source_id, forged_body, headers=forged_headers)
    # Then the genuine one is delivered, marked verified, with the provider's event id recorded
    assert genuine.status_code == 200, genuine.text
    [got] = receiver.wait_for(1, timeout_s=20)
    assert got.header("x-fasthook-request-id") == genuine.json()["request_id"]
    assert got.header("x-fasthook-verified") == "true"
    assert got.body == scheme.body
    if scheme.credential_header:
        assert scheme.credential_header not in got.header_names()
    accepted = fasthook.records.get_request(genuine.json()["request_id"])
    assert (accepted["status"], accepted["verified"], accepted["external_id"]) == (
        "accepted",
        True,
        scheme.external_id,
    )
    # And the forged one is refused and kept as a rejected request, never routed
    assert forged.status_code == 401, forged.text
    rejected = fasthook.records.get_request(forged.json()["request_id"])
    assert (rejected["status"], rejected["rejection_cause"], rejected["verified"]) == (
        "rejected",
        "VERIFICATION_FAILED",
        False,
    )
    assert fasthook.records.events_of_request(rejected["id"]) == []
