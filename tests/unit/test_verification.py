"""Inbound verification: which requests a source accepts, and what a rejected sender is told.

Requests are signed by `tests/support/provider_signatures.py`, written from each provider's own
description, and where a provider publishes a worked example the check is also pinned to it.
"""

from __future__ import annotations

import base64
from datetime import UTC, datetime
from typing import Any

import pytest

from chalicelib.domain.verification import (
    MAX_EXTERNAL_ID_LENGTH,
    SIGNATURE_MISMATCH,
    TIMESTAMP_OUTSIDE_TOLERANCE,
    Verification,
    external_id,
    verify_request,
)
from tests.support.provider_signatures import (
    Algorithm,
    Encoding,
    basic_auth_header,
    github_headers,
    hmac_headers,
    shopify_headers,
    standard_webhooks_headers,
    standard_webhooks_secret,
    standard_webhooks_signature,
    stripe_headers,
    stripe_signature,
)

NOW = datetime(2026, 4, 17, 10, 0, tzinfo=UTC)
T = int(NOW.timestamp())
BODY = b'{"id":"evt_1Q2w3E","type":"order.created","data":{"total":120.5}}'
TAMPERED = BODY.replace(b"120.5", b"999.9")

STRIPE_SECRET = "whsec_stripe_test_5f2b9c1d7e4a"
GITHUB_SECRET = "gh-webhook-secret-8d1c"
SHOPIFY_SECRET = "shpss_client_secret_3a9e"
SW_SECRET = standard_webhooks_secret(b"standard-webhooks-key-bytes-0123456789")
HMAC_SECRET = "hmac-secret-77f0"
API_KEY = "key_live_4c8f2a9b"


def source(auth_type: str | None, **auth: Any) -> dict[str, Any]:
    config: dict[str, Any] = {"allowed_http_methods": ["POST"]}
    if auth_type is not None:
        config |= {"auth_type": auth_type, "auth": auth}
    return config


def verify(config: dict[str, Any], headers: dict[str, str], body: bytes = BODY, *, now: datetime = NOW) -> Verification:
    return verify_request(config, method="POST", headers=headers, query={}, raw_body=body, now=now)


def assert_verified(result: Verification) -> None:
    assert result == Verification(verified=True, failure=None)


def assert_rejected(result: Verification, reason: str | None = None) -> None:
    assert result.verified is False
    assert result.failure is not None
    assert result.rejected
    if reason is not None:
        assert result.failure == reason


def hmac_source(
    algorithm: Algorithm = "sha256", encoding: Encoding = "base64", header_key: str = "x-signature"
) -> dict[str, Any]:
    auth = {"algorithm": algorithm, "encoding": encoding, "header_key": header_key, "webhook_secret_key": HMAC_SECRET}
    return source("HMAC", **auth)


STRIPE = source("STRIPE", webhook_secret_key=STRIPE_SECRET)
GITHUB = source("GITHUB", webhook_secret_key=GITHUB_SECRET)
SHOPIFY = source("SHOPIFY", webhook_secret_key=SHOPIFY_SECRET)
STANDARD = source("STANDARD_WEBHOOKS", webhook_secret_key=SW_SECRET)


# ---- no verification configured --------------------------------------------------------------


def test_a_source_without_auth_type_accepts_requests_unverified() -> None:
    # Given a source with no verification
    config = source(None)

    # When an unsigned request arrives
    result = verify(config, {"content-type": "application/json"})

    # Then it is accepted but not marked verified
    assert result == Verification(verified=False, failure=None)
    assert not result.rejected


def test_a_source_whose_auth_type_has_no_auth_settings_rejects_rather_than_accepting() -> None:
    # Given a damaged config: a type but no secret
    config = {"auth_type": "STRIPE"}

    # When a request arrives
    result = verify(config, stripe_headers(STRIPE_SECRET, BODY, T))

    # Then verification fails closed
    assert_rejected(result)


def test_an_unknown_auth_type_rejects_rather_than_accepting() -> None:
    # Given a type FastHook does not know
    config = {"auth_type": "PAYPAL", "auth": {"webhook_secret_key": "x"}}

    # When a request arrives
    result = verify(config, {})

    # Then it is rejected
    assert_rejected(result)


# ---- Stripe -----------------------------------------------------------------------------------


def test_a_stripe_request_signed_with_the_endpoint_secret_is_verified() -> None:
    # Given a request signed as Stripe signs it
    headers = stripe_headers(STRIPE_SECRET, BODY, T)

    # When it is checked
    result = verify(STRIPE, headers)

    # Then it is verified
    assert_verified(result)


def test_a_stripe_request_signed_with_another_secret_is_a_signature_mismatch() -> None:
    # Given a request signed with someone else's secret
    headers = stripe_headers("whsec_someone_else", BODY, T)

    # When it is checked
    result = verify(STRIPE, headers)

    # Then it is rejected
    assert_rejected(result, SIGNATURE_MISMATCH)


def test_a_stripe_body_changed_after_signing_is_a_signature_mismatch() -> None:
    # Given a genuine signature over the original body
    headers = stripe_headers(STRIPE_SECRET, BODY, T)

    # When a tampered body arrives with it
    result = verify(STRIPE, headers, TAMPERED)

    # Then it is rejected
    assert_rejected(result, SIGNATURE_MISMATCH)


def test_a_stripe_signature_over_a_different_timestamp_is_a_signature_mismatch() -> None:
    # Given a signature made for one timestamp, replayed with a fresher one in the header
    signature = stripe_signature(STRIPE_SECRET, BODY, T - 1000)
    headers = {"stripe-signature": f"t={T},v1={signature}"}

    # When it is checked
    result = verify(STRIPE, headers)

    # Then the timestamp is part of what was signed
    assert_rejected(result, SIGNATURE_MISMATCH)


def test_a_stripe_request_without_the_signature_header_names_the_header() -> None:
    # Given a request with no Stripe-Signature header
    # When it is checked
    result = verify(STRIPE, {"content-type": "application/json"})

    # Then the failure says what is missing
    assert_rejected(result, "missing Stripe-Signature header")


@pytest.mark.parametrize(
    "value",
    [
        "",
        "garbage",
        "v1=abcdef",  # no timestamp
        f"t=yesterday,v1={'ab' * 32}",
        f"t=-{T},v1={'ab' * 32}",
        f"t={'9' * 5000},v1={'ab' * 32}",  # longer than Python will turn into an int by default
        f"t={T},t={T - 1},v1={'ab' * 32}",  # two timestamps
        f"t={T},v1",
        f"t={T},,v1={'ab' * 32}",
    ],
)
def test_a_malformed_stripe_signature_header_is_rejected_not_raised(value: str) -> None:
    # Given a Stripe-Signature header Stripe would never send
    headers = {"stripe-signature": value}

    # When it is checked
    result = verify(STRIPE, headers)

    # Then it is a failure about the header, not an exception
    assert_rejected(result, "malformed Stripe-Signature header")


@pytest.mark.parametrize("signature", ["zz" * 32, "abc", "é" * 64, "ab" * 31 + " a"])
def test_a_stripe_v1_value_that_is_not_hex_does_not_verify(signature: str) -> None:
    # Given a v1 entry that is not a hex digest (including non-ASCII text)
    headers = {"stripe-signature": f"t={T},v1={signature}"}

    # When it is checked
    result = verify(STRIPE, headers)

    # Then nothing raises and the request is rejected
    assert_rejected(result, SIGNATURE_MISMATCH)


def test_a_stripe_header_with_only_v0_signatures_has_no_v1_to_check() -> None:
    # Given a header carrying only the legacy test-mode scheme
    legacy = stripe_signature(STRIPE_SECRET, BODY, T)
    headers = {"stripe-signature": f"t={T},v0={legacy}"}

    # When it is checked
    result = verify(STRIPE, headers)

    # Then it is rejected: v0 is not a scheme we trust
    assert_rejected(result, "no v1 signature in Stripe-Signature header")


def test_a_stripe_v0_entry_next_to_a_valid_v1_is_ignored() -> None:
    # Given Stripe's full header shape with a v0 entry after the v1
    headers = stripe_headers(STRIPE_SECRET, BODY, T)
    headers["stripe-signature"] += ",v0=" + "00" * 32

    # When it is checked
    result = verify(STRIPE, headers)

    # Then the v1 decides
    assert_verified(result)


def test_a_stripe_request_signed_during_a_secret_roll_matches_any_v1() -> None:
    # Given two v1 signatures: one from the old secret, one from the secret this source holds
    headers = stripe_headers(STRIPE_SECRET, BODY, T, also_signed_with=["whsec_the_old_secret"])
    assert headers["stripe-signature"].count("v1=") == 2

    # When it is checked
    result = verify(STRIPE, headers)

    # Then one match is enough
    assert_verified(result)


def test_a_stripe_header_where_no_v1_matches_is_a_signature_mismatch() -> None:
    # Given two v1 signatures, both from secrets this source does not hold
    headers = stripe_headers("whsec_other_a", BODY, T, also_signed_with=["whsec_other_b"])

    # When it is checked
    result = verify(STRIPE, headers)

    # Then it is rejected
    assert_rejected(result, SIGNATURE_MISMATCH)


@pytest.mark.parametrize("offset", [301, -301, 86400, -86400], ids=["too-old", "too-new", "a-day-old", "a-day-ahead"])
def test_a_genuine_stripe_signature_outside_five_minutes_is_rejected(offset: int) -> None:
    # Given a correctly signed request whose timestamp is more than 300 s from our clock
    t = T - offset
    headers = stripe_headers(STRIPE_SECRET, BODY, t)

    # When it is checked
    result = verify(STRIPE, headers)

    # Then it is refused as a possible replay
    assert_rejected(result, TIMESTAMP_OUTSIDE_TOLERANCE)


@pytest.mark.parametrize("offset", [300, -300, 0])
def test_a_stripe_signature_exactly_at_the_tolerance_edge_is_accepted(offset: int) -> None:
    # Given a timestamp exactly 300 s either side of now
    headers = stripe_headers(STRIPE_SECRET, BODY, T - offset)

    # When it is checked
    result = verify(STRIPE, headers)

    # Then it is still inside the window
    assert_verified(result)


def test_a_stripe_header_with_spaces_after_commas_is_verified() -> None:
    # Given a header a proxy has reformatted with spaces
    signature = stripe_signature(STRIPE_SECRET, BODY, T)
    headers = {"stripe-signature": f"t={T}, v1={signature}"}

    # When it is checked
    result = verify(STRIPE, headers)

    # Then it is still verified
    assert_verified(result)


# ---- GitHub -----------------------------------------------------------------------------------


def test_github_published_example_is_verified() -> None:
    # Given the example from GitHub's "Validating webhook deliveries" page
    config = source("GITHUB", webhook_secret_key="It's a Secret to Everybody")
    headers = {"x-hub-signature-256": "sha256=757107ea0eb2509fc211221cce984b8a37570b6d7586c22c46f4379c8b043e17"}

    # When it is checked
    result = verify(config, headers, b"Hello, World!")

    # Then it is verified
    assert_verified(result)


def test_a_github_request_signed_with_the_webhook_secret_is_verified() -> None:
    # Given a request signed as GitHub signs it
    headers = github_headers(GITHUB_SECRET, BODY)

    # When it is checked
    result = verify(GITHUB, headers)

    # Then it is verified
    assert_verified(result)


def test_a_github_request_signed_with_another_secret_is_a_signature_mismatch() -> None:
    # Given a request signed with the wrong secret
    headers = github_headers("not-the-secret", BODY)

    # When it is checked
    result = verify(GITHUB, headers)

    # Then it is rejected
    assert_rejected(result, SIGNATURE_MISMATCH)


def test_a_github_body_changed_after_signing_is_a_signature_mismatch() -> None:
    # Given a genuine signature over the original body
    headers = github_headers(GITHUB_SECRET, BODY)

    # When a tampered body arrives with it
    result = verify(GITHUB, headers, TAMPERED)

    # Then it is rejected
    assert_rejected(result, SIGNATURE_MISMATCH)


def test_a_github_request_without_signature_headers_names_the_sha256_header() -> None:
    # Given no signature header at all
    # When it is checked
    result = verify(GITHUB, {"x-github-event": "push"})

    # Then the failure names the header GitHub sends today
    assert_rejected(result, "missing X-Hub-Signature-256 header")


def test_a_github_request_with_only_the_legacy_sha1_header_is_verified() -> None:
    # Given an older sender that only sends X-Hub-Signature (sha1=)
    headers = github_headers(GITHUB_SECRET, BODY)
    del headers["x-hub-signature-256"]

    # When it is checked
    result = verify(GITHUB, headers)

    # Then the SHA-1 fallback verifies it
    assert_verified(result)


def test_a_bad_github_sha256_signature_is_not_rescued_by_a_good_sha1_one() -> None:
    # Given a forged SHA-256 header next to a genuine SHA-1 one
    headers = github_headers(GITHUB_SECRET, BODY)
    headers["x-hub-signature-256"] = "sha256=" + "00" * 32

    # When it is checked
    result = verify(GITHUB, headers)

    # Then the SHA-256 header decides: no downgrade
    assert_rejected(result, SIGNATURE_MISMATCH)


@pytest.mark.parametrize(
    "value",
    [
        "",
        "757107ea0eb2509fc211221cce984b8a37570b6d7586c22c46f4379c8b043e17",
        "sha1=" + "ab" * 20,
        "sha256=xyz",
        "sha256=",
    ],
)
def test_a_malformed_github_signature_header_is_rejected_not_raised(value: str) -> None:
    # Given an X-Hub-Signature-256 value without the sha256= label or with a non-hex digest
    headers = {"x-hub-signature-256": value}

    # When it is checked
    result = verify(GITHUB, headers)

    # Then the header is reported malformed
    assert_rejected(result, "malformed X-Hub-Signature-256 header")


# ---- Shopify ----------------------------------------------------------------------------------


def test_a_shopify_request_signed_with_the_client_secret_is_verified() -> None:
    # Given a request signed as Shopify signs it
    headers = shopify_headers(SHOPIFY_SECRET, BODY)

    # When it is checked
    result = verify(SHOPIFY, headers)

    # Then it is verified
    assert_verified(result)


def test_a_shopify_request_signed_with_another_secret_is_a_signature_mismatch() -> None:
    # Given a request signed with the wrong secret
    headers = shopify_headers("shpss_wrong", BODY)

    # When it is checked
    result = verify(SHOPIFY, headers)

    # Then it is rejected
    assert_rejected(result, SIGNATURE_MISMATCH)


def test_a_shopify_body_changed_after_signing_is_a_signature_mismatch() -> None:
    # Given a genuine signature over the original body
    headers = shopify_headers(SHOPIFY_SECRET, BODY)

    # When a tampered body arrives with it
    result = verify(SHOPIFY, headers, TAMPERED)

    # Then it is rejected
    assert_rejected(result, SIGNATURE_MISMATCH)


def test_a_shopify_request_without_the_hmac_header_names_the_header() -> None:
    # Given no X-Shopify-Hmac-Sha256 header
    # When it is checked
    result = verify(SHOPIFY, {"x-shopify-topic": "orders/create"})

    # Then the failure names it
    assert_rejected(result, "missing X-Shopify-Hmac-Sha256 header")


@pytest.mark.parametrize("value", ["", "not base64!", "abc", "é" * 44])
def test_a_shopify_hmac_header_that_is_not_base64_is_rejected_not_raised(value: str) -> None:
    # Given a header value that does not decode
    headers = {"x-shopify-hmac-sha256": value}

    # When it is checked
    result = verify(SHOPIFY, headers)

    # Then the header is reported malformed
    assert_rejected(result, "malformed X-Shopify-Hmac-Sha256 header")


# ---- Standard Webhooks ------------------------------------------------------------------------


def test_standard_webhooks_published_example_is_verified() -> None:
    # Given the worked example from Svix's verification docs (the scheme Standard Webhooks adopted)
    config = source("STANDARD_WEBHOOKS", webhook_secret_key="whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw")
    headers = {
        "webhook-id": "msg_p5jXN8AQM9LWM0D4loKWxJek",
        "webhook-timestamp": "1614265330",
        "webhook-signature": "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=",
    }

    # When it is checked at the moment it was sent
    result = verify(config, headers, b'{"test": 2432232314}', now=datetime.fromtimestamp(1614265330, UTC))

    # Then it is verified
    assert_verified(result)


def test_a_standard_webhooks_request_signed_with_the_endpoint_secret_is_verified() -> None:
    # Given a request signed per the Standard Webhooks spec
    headers = standard_webhooks_headers(SW_SECRET, "msg_2KWPBgLlAfxdpx2AI54pPJ85f4W", BODY, T)

    # When it is checked
    result = verify(STANDARD, headers)

    # Then it is verified
    assert_verified(result)


def test_a_standard_webhooks_request_signed_with_another_secret_is_a_signature_mismatch() -> None:
    # Given a request signed with a different key
    other = standard_webhooks_secret(b"some-other-key-bytes-000000000000")
    headers = standard_webhooks_headers(other, "msg_1", BODY, T)

    # When it is checked
    result = verify(STANDARD, headers)

    # Then it is rejected
    assert_rejected(result, SIGNATURE_MISMATCH)


def test_a_standard_webhooks_body_changed_after_signing_is_a_signature_mismatch() -> None:
    # Given a genuine signature over the original body
    headers = standard_webhooks_headers(SW_SECRET, "msg_1", BODY, T)

    # When a tampered body arrives with it
    result = verify(STANDARD, headers, TAMPERED)

    # Then it is rejected
    assert_rejected(result, SIGNATURE_MISMATCH)


def test_a_standard_webhooks_message_id_changed_after_signing_is_a_signature_mismatch() -> None:
    # Given a genuine signature, replayed under a new message id to dodge deduplication
    headers = standard_webhooks_headers(SW_SECRET, "msg_1", BODY, T) | {"webhook-id": "msg_2"}

    # When it is checked
    result = verify(STANDARD, headers)

    # Then the id is part of what was signed
    assert_rejected(result, SIGNATURE_MISMATCH)


@pytest.mark.parametrize("missing", ["webhook-id", "webhook-timestamp", "webhook-signature"])
def test_a_standard_webhooks_request_missing_a_header_names_it(missing: str) -> None:
    # Given a signed request with one of the three headers dropped
    headers = standard_webhooks_headers(SW_SECRET, "msg_1", BODY, T)
    del headers[missing]

    # When it is checked
    result = verify(STANDARD, headers)

    # Then the failure names the missing header
    assert_rejected(result, f"missing {missing} header")


@pytest.mark.parametrize("timestamp", ["soon", "1.5e9", "-5", "", "9" * 5000])
def test_a_malformed_standard_webhooks_timestamp_is_rejected_not_raised(timestamp: str) -> None:
    # Given a webhook-timestamp that is not unix seconds
    headers = standard_webhooks_headers(SW_SECRET, "msg_1", BODY, T) | {"webhook-timestamp": timestamp}

    # When it is checked
    result = verify(STANDARD, headers)

    # Then it is rejected
    assert_rejected(result)
    assert result.failure in ("malformed webhook-timestamp header", "missing webhook-timestamp header")


@pytest.mark.parametrize("value", ["v1a,c2lnbmF0dXJl", "v2,c2lnbmF0dXJl", "garbage", "v1"])
def test_a_standard_webhooks_signature_list_without_v1_entries_is_rejected(value: str) -> None:
    # Given entries of other (asymmetric or unknown) versions only
    headers = standard_webhooks_headers(SW_SECRET, "msg_1", BODY, T) | {"webhook-signature": value}

    # When it is checked
    result = verify(STANDARD, headers)

    # Then there is nothing we can check
    assert_rejected(result, "no v1 signature in webhook-signature header")


@pytest.mark.parametrize("value", ["v1,not-base64!", "v1,", "v1,é"])
def test_a_standard_webhooks_v1_entry_that_is_not_base64_does_not_verify(value: str) -> None:
    # Given a v1 entry whose signature does not decode
    headers = standard_webhooks_headers(SW_SECRET, "msg_1", BODY, T) | {"webhook-signature": value}

    # When it is checked
    result = verify(STANDARD, headers)

    # Then it is rejected without raising
    assert_rejected(result, SIGNATURE_MISMATCH)


@pytest.mark.parametrize("offset", [301, -301], ids=["too-old", "too-new"])
def test_a_genuine_standard_webhooks_signature_outside_five_minutes_is_rejected(offset: int) -> None:
    # Given a correctly signed request whose timestamp is more than five minutes from our clock
    headers = standard_webhooks_headers(SW_SECRET, "msg_1", BODY, T - offset)

    # When it is checked
    result = verify(STANDARD, headers)

    # Then it is refused as a possible replay
    assert_rejected(result, TIMESTAMP_OUTSIDE_TOLERANCE)


@pytest.mark.parametrize("offset", [300, -300])
def test_a_standard_webhooks_signature_exactly_five_minutes_off_is_accepted(offset: int) -> None:
    # Given a timestamp exactly 300 s either side of now
    headers = standard_webhooks_headers(SW_SECRET, "msg_1", BODY, T - offset)

    # When it is checked
    result = verify(STANDARD, headers)

    # Then it is still inside the window
    assert_verified(result)


def test_a_standard_webhooks_signature_list_with_one_matching_entry_is_verified() -> None:
    # Given a space-separated list: an asymmetric entry, an old key's entry, then ours
    old = standard_webhooks_secret(b"previous-key-bytes-0000000000000")
    ours = standard_webhooks_signature(SW_SECRET, "msg_1", BODY, T)
    theirs = standard_webhooks_signature(old, "msg_1", BODY, T)
    headers = standard_webhooks_headers(SW_SECRET, "msg_1", BODY, T)
    headers["webhook-signature"] = f"v1a,c2lnbmF0dXJl {theirs} {ours}"

    # When it is checked
    result = verify(STANDARD, headers)

    # Then one match is enough
    assert_verified(result)


def test_a_standard_webhooks_signature_list_where_no_entry_matches_is_rejected() -> None:
    # Given two v1 entries from keys this source does not hold
    others = [standard_webhooks_secret(bytes([n]) * 32) for n in (1, 2)]
    entries = [standard_webhooks_signature(s, "msg_1", BODY, T) for s in others]
    headers = standard_webhooks_headers(SW_SECRET, "msg_1", BODY, T) | {"webhook-signature": " ".join(entries)}

    # When it is checked
    result = verify(STANDARD, headers)

    # Then it is rejected
    assert_rejected(result, SIGNATURE_MISMATCH)


def test_a_standard_webhooks_request_with_svix_header_names_is_verified() -> None:
    # Given a Svix-based sender that still uses svix-id / svix-timestamp / svix-signature
    headers = standard_webhooks_headers(SW_SECRET, "msg_1", BODY, T, prefix="svix-")

    # When it is checked
    result = verify(STANDARD, headers)

    # Then it is verified like the webhook-* form
    assert_verified(result)


def test_a_standard_webhooks_secret_without_the_whsec_prefix_still_works() -> None:
    # Given the secret pasted without its whsec_ prefix
    config = source("STANDARD_WEBHOOKS", webhook_secret_key=SW_SECRET.removeprefix("whsec_"))

    # When a request signed with the full secret is checked
    result = verify(config, standard_webhooks_headers(SW_SECRET, "msg_1", BODY, T))

    # Then it is verified
    assert_verified(result)


def test_a_standard_webhooks_secret_that_is_not_base64_is_reported_without_echoing_it() -> None:
    # Given a secret that cannot be a Standard Webhooks key
    config = source("STANDARD_WEBHOOKS", webhook_secret_key="whsec_not base64 at all!")

    # When a request is checked
    result = verify(config, standard_webhooks_headers(SW_SECRET, "msg_1", BODY, T))

    # Then the owner learns the secret is unusable, but not what it is
    assert_rejected(result)
    assert result.failure is not None
    assert "not base64 at all" not in result.failure


# ---- generic HMAC -----------------------------------------------------------------------------


@pytest.mark.parametrize("algorithm", ["sha1", "sha256", "sha512"])
@pytest.mark.parametrize("encoding", ["hex", "base64"])
def test_an_hmac_source_verifies_every_algorithm_and_encoding(algorithm: Algorithm, encoding: Encoding) -> None:
    # Given a source set to one algorithm and encoding, and a request signed that way
    config = hmac_source(algorithm, encoding)
    headers = hmac_headers(HMAC_SECRET, BODY, algorithm=algorithm, encoding=encoding)

    # When it is checked
    result = verify(config, headers)

    # Then it is verified
    assert_verified(result)


@pytest.mark.parametrize("algorithm", ["sha1", "sha256", "sha512"])
@pytest.mark.parametrize("encoding", ["hex", "base64"])
def test_an_hmac_signature_labelled_with_its_algorithm_is_verified(algorithm: Algorithm, encoding: Encoding) -> None:
    # Given a sender that writes `sha256=<digest>` rather than the bare digest
    config = hmac_source(algorithm, encoding)
    headers = hmac_headers(HMAC_SECRET, BODY, algorithm=algorithm, encoding=encoding, labelled=True)

    # When it is checked
    result = verify(config, headers)

    # Then the label is accepted
    assert_verified(result)


def test_an_hmac_signature_made_with_a_different_algorithm_is_a_signature_mismatch() -> None:
    # Given a source expecting sha512 and a sender using sha256
    config = hmac_source("sha512", "hex")
    headers = hmac_headers(HMAC_SECRET, BODY, algorithm="sha256", encoding="hex")

    # When it is checked
    result = verify(config, headers)

    # Then it is rejected
    assert_rejected(result, SIGNATURE_MISMATCH)


def test_an_hmac_source_defaults_to_base64_sha256() -> None:
    # Given a source that only names the header and secret
    config = source("HMAC", header_key="X-Signature", webhook_secret_key=HMAC_SECRET)

    # When a base64 SHA-256 signature arrives
    result = verify(config, hmac_headers(HMAC_SECRET, BODY))

    # Then it is verified (header names match whatever their case in the config)
    assert_verified(result)


HMAC_SOURCE = hmac_source("sha256", "hex", header_key="X-Signature")


def test_an_hmac_request_signed_with_another_secret_is_a_signature_mismatch() -> None:
    # Given a request signed with the wrong secret
    headers = hmac_headers("wrong", BODY, encoding="hex")

    # When it is checked
    result = verify(HMAC_SOURCE, headers)

    # Then it is rejected
    assert_rejected(result, SIGNATURE_MISMATCH)


def test_an_hmac_body_changed_after_signing_is_a_signature_mismatch() -> None:
    # Given a genuine signature over the original body
    headers = hmac_headers(HMAC_SECRET, BODY, encoding="hex")

    # When a tampered body arrives with it
    result = verify(HMAC_SOURCE, headers, TAMPERED)

    # Then it is rejected
    assert_rejected(result, SIGNATURE_MISMATCH)


def test_an_hmac_request_without_the_configured_header_names_it() -> None:
    # Given no signature header
    # When it is checked
    result = verify(HMAC_SOURCE, {})

    # Then the failure names the configured header
    assert_rejected(result, "missing X-Signature header")


@pytest.mark.parametrize("value", ["", "xyz", "abc", "sha512=" + "ab" * 32, "ab cd"])
def test_a_malformed_hmac_header_is_rejected_not_raised(value: str) -> None:
    # Given a header value that is not a hex digest
    headers = {"x-signature": value}

    # When it is checked
    result = verify(HMAC_SOURCE, headers)

    # Then the header is reported malformed
    assert_rejected(result, "malformed X-Signature header")


# ---- basic auth -------------------------------------------------------------------------------

BASIC = source("BASIC_AUTH", username="acme", password="s3cr3t:with:colons")


def test_basic_auth_with_the_right_credentials_is_verified() -> None:
    # Given the configured username and password (the password itself contains colons)
    headers = basic_auth_header("acme", "s3cr3t:with:colons")

    # When it is checked
    result = verify(BASIC, headers)

    # Then it is verified
    assert_verified(result)


def test_basic_auth_scheme_name_is_case_insensitive() -> None:
    # Given `basic` in lower case, which RFC 7617 allows
    headers = {"authorization": "basic " + base64.b64encode(b"acme:s3cr3t:with:colons").decode()}

    # When it is checked
    result = verify(BASIC, headers)

    # Then it is verified
    assert_verified(result)


@pytest.mark.parametrize(("username", "password"), [("acme", "wrong"), ("other", "s3cr3t:with:colons"), ("", "")])
def test_basic_auth_with_wrong_credentials_is_rejected(username: str, password: str) -> None:
    # Given a wrong username or password
    headers = basic_auth_header(username, password)

    # When it is checked
    result = verify(BASIC, headers)

    # Then it is rejected without saying which half was wrong
    assert_rejected(result, "wrong username or password")


@pytest.mark.parametrize(
    "value",
    [
        "Basic not-base64!",
        "Basic " + base64.b64encode(b"no-colon-here").decode(),
        "Basic ",
        "Basic",
        "Basic é",
    ],
)
def test_basic_auth_with_malformed_credentials_is_rejected_not_raised(value: str) -> None:
    # Given an Authorization header whose credentials do not decode to user:pass
    headers = {"authorization": value}

    # When it is checked
    result = verify(BASIC, headers)

    # Then it is rejected as malformed
    assert_rejected(result, "malformed Basic credentials in Authorization header")


def test_basic_auth_with_a_bearer_token_is_rejected() -> None:
    # Given another scheme in Authorization
    # When it is checked
    result = verify(BASIC, {"authorization": "Bearer abc"})

    # Then it is rejected
    assert_rejected(result, "Authorization header does not carry Basic credentials")


def test_basic_auth_without_an_authorization_header_names_it() -> None:
    # Given no Authorization header
    # When it is checked
    result = verify(BASIC, {})

    # Then the failure names it
    assert_rejected(result, "missing Authorization header")


# ---- API key ----------------------------------------------------------------------------------

API_KEY_SOURCE = source("API_KEY", header_key="X-API-Key", api_key=API_KEY)


def test_an_api_key_in_the_configured_header_is_verified() -> None:
    # Given the key in the configured header
    # When it is checked
    result = verify(API_KEY_SOURCE, {"x-api-key": API_KEY})

    # Then it is verified
    assert_verified(result)


@pytest.mark.parametrize("value", ["key_live_wrong", API_KEY + "x", API_KEY[:-1], "", f"Bearer {API_KEY}", "ключ"])
def test_a_wrong_api_key_is_rejected(value: str) -> None:
    # Given a different value in the header (a Bearer prefix is only understood in Authorization)
    # When it is checked
    result = verify(API_KEY_SOURCE, {"x-api-key": value})

    # Then it is rejected
    assert_rejected(result, "wrong API key")


def test_a_missing_api_key_header_is_named() -> None:
    # Given the key sent in some other header
    # When it is checked
    result = verify(API_KEY_SOURCE, {"x-other-key": API_KEY})

    # Then the failure names the configured header
    assert_rejected(result, "missing X-API-Key header")


@pytest.mark.parametrize("value", [API_KEY, f"Bearer {API_KEY}", f"bearer {API_KEY}"])
def test_an_api_key_in_authorization_may_be_sent_as_a_bearer_token(value: str) -> None:
    # Given a source that reads the key from Authorization
    config = source("API_KEY", header_key="authorization", api_key=API_KEY)

    # When the key arrives bare or as a bearer token
    result = verify(config, {"authorization": value})

    # Then both are verified
    assert_verified(result)


def test_a_wrong_bearer_token_is_rejected() -> None:
    # Given a source that reads the key from Authorization
    config = source("API_KEY", header_key="authorization", api_key=API_KEY)

    # When another bearer token arrives
    result = verify(config, {"authorization": "Bearer key_live_other"})

    # Then it is rejected
    assert_rejected(result, "wrong API key")


# ---- failures never leak ----------------------------------------------------------------------


_SW_EXPECTED = standard_webhooks_signature(SW_SECRET, "msg_1", TAMPERED, T).removeprefix("v1,")

# Each case: a config, a request that fails it, and strings the failure reason must not contain.
FAILING_REQUESTS = [
    pytest.param(
        STRIPE,
        stripe_headers(STRIPE_SECRET, BODY, T),
        TAMPERED,
        [STRIPE_SECRET, stripe_signature(STRIPE_SECRET, TAMPERED, T)],
        id="stripe-mismatch",
    ),
    pytest.param(STRIPE, stripe_headers(STRIPE_SECRET, BODY, T - 999), BODY, [STRIPE_SECRET], id="stripe-stale"),
    pytest.param(
        GITHUB,
        github_headers(GITHUB_SECRET, BODY),
        TAMPERED,
        [GITHUB_SECRET, github_headers(GITHUB_SECRET, TAMPERED)["x-hub-signature-256"].removeprefix("sha256=")],
        id="github",
    ),
    pytest.param(
        SHOPIFY,
        shopify_headers(SHOPIFY_SECRET, BODY),
        TAMPERED,
        [SHOPIFY_SECRET, shopify_headers(SHOPIFY_SECRET, TAMPERED)["x-shopify-hmac-sha256"]],
        id="shopify",
    ),
    pytest.param(
        STANDARD,
        standard_webhooks_headers(SW_SECRET, "msg_1", BODY, T),
        TAMPERED,
        [SW_SECRET, SW_SECRET.removeprefix("whsec_"), _SW_EXPECTED],
        id="standard-webhooks",
    ),
    pytest.param(
        HMAC_SOURCE,
        hmac_headers(HMAC_SECRET, BODY, encoding="hex"),
        TAMPERED,
        [HMAC_SECRET, hmac_headers(HMAC_SECRET, TAMPERED, encoding="hex")["x-signature"]],
        id="hmac",
    ),
    pytest.param(BASIC, basic_auth_header("acme", "nope"), BODY, ["s3cr3t", "nope"], id="basic-auth"),
    pytest.param(API_KEY_SOURCE, {"x-api-key": "key_live_guess"}, BODY, [API_KEY, "key_live_guess"], id="api-key"),
]


@pytest.mark.parametrize(("config", "headers", "body", "forbidden"), FAILING_REQUESTS)
def test_a_failure_reason_never_contains_a_secret_or_an_expected_signature(
    config: dict[str, Any], headers: dict[str, str], body: bytes, forbidden: list[str]
) -> None:
    # Given a request that fails verification
    # When it is checked
    result = verify(config, headers, body)

    # Then the reason shown to the sender and stored with the request gives nothing away
    assert_rejected(result)
    assert result.failure is not None
    for secret in forbidden:
        assert secret not in result.failure


def test_header_names_are_matched_whatever_their_case() -> None:
    # Given a caller that passed headers with their original capitals
    headers = {"Stripe-Signature": stripe_headers(STRIPE_SECRET, BODY, T)["stripe-signature"]}

    # When it is checked
    result = verify(STRIPE, headers)

    # Then it is still verified
    assert_verified(result)


# ---- external ids -----------------------------------------------------------------------------


def test_a_stripe_event_id_comes_from_the_body() -> None:
    # Given a Stripe event body
    # When its id is read
    found = external_id(STRIPE, {"x-request-id": "req_abc"}, {"id": "evt_1Q2w3E", "object": "event"})

    # Then it is the event id, not a transport header
    assert found == "evt_1Q2w3E"


def test_a_stripe_body_without_an_id_falls_back_to_common_headers() -> None:
    # Given a body that is not an event object
    # When its id is read
    found = external_id(STRIPE, {"idempotency-key": "idem-1"}, ["not", "an", "object"])

    # Then a common id header is used
    assert found == "idem-1"


def test_a_github_event_id_is_the_delivery_header() -> None:
    # Given GitHub's headers and a body that also has an id
    headers = github_headers(GITHUB_SECRET, BODY, delivery_id="72d3162e-cc78-11e3-81ab-4c9367dc0958")

    # When its id is read
    found = external_id(GITHUB, headers, {"id": 123, "action": "opened"})

    # Then it is X-GitHub-Delivery
    assert found == "72d3162e-cc78-11e3-81ab-4c9367dc0958"


@pytest.mark.parametrize(
    ("headers", "expected"),
    [
        ({"x-shopify-webhook-id": "b54557e4", "x-shopify-event-id": "98880550"}, "b54557e4"),
        ({"x-shopify-event-id": "98880550"}, "98880550"),
    ],
)
def test_a_shopify_event_id_is_the_webhook_id_header_else_the_event_id(headers: dict[str, str], expected: str) -> None:
    # Given Shopify's id headers
    # When its id is read
    found = external_id(SHOPIFY, headers, {"id": 820982911946154508})

    # Then the webhook id is preferred
    assert found == expected


def test_a_standard_webhooks_event_id_is_the_webhook_id_header() -> None:
    # Given Standard Webhooks headers
    headers = standard_webhooks_headers(SW_SECRET, "msg_2KWPBgLlAfxdpx2AI54pPJ85f4W", BODY, T)

    # When its id is read
    found = external_id(STANDARD, headers, {"id": "something-else"})

    # Then it is webhook-id
    assert found == "msg_2KWPBgLlAfxdpx2AI54pPJ85f4W"


@pytest.mark.parametrize(
    ("headers", "body", "expected"),
    [
        ({"webhook-id": "msg_1", "x-github-delivery": "gh", "x-request-id": "r"}, None, "msg_1"),
        ({"x-github-delivery": "gh", "idempotency-key": "idem"}, None, "gh"),
        ({"x-shopify-webhook-id": "shop", "x-request-id": "r"}, None, "shop"),
        ({"idempotency-key": "idem", "x-request-id": "r", "x-event-id": "e"}, None, "idem"),
        ({"x-request-id": "r", "x-event-id": "e"}, None, "r"),
        ({"x-event-id": "e"}, {"id": "body"}, "e"),
        ({}, {"id": "body-id"}, "body-id"),
        ({"x-request-id": "  "}, {"id": "body-id"}, "body-id"),
        ({}, {"id": 42}, None),
        ({}, {"data": {"id": "nested"}}, None),
        ({}, "plain text", None),
        ({}, None, None),
    ],
)
def test_a_source_without_a_preset_takes_the_first_common_id(
    headers: dict[str, str], body: Any, expected: str | None
) -> None:
    # Given an unauthenticated source and whatever ids the sender provides
    # When its id is read
    found = external_id(source(None), headers, body)

    # Then the first id in priority order wins (only a top-level string body id counts)
    assert found == expected


def test_an_external_id_is_capped_at_256_characters() -> None:
    # Given an absurdly long id
    # When it is read
    found = external_id(source(None), {"x-request-id": "r" * 1000}, None)

    # Then it is cut to the stored maximum
    assert found == "r" * MAX_EXTERNAL_ID_LENGTH


def test_a_preset_falls_back_to_common_ids_when_its_own_header_is_absent() -> None:
    # Given a GitHub source but a request relayed without X-GitHub-Delivery
    # When its id is read
    found = external_id(GITHUB, {"x-request-id": "relay-1"}, None)

    # Then a common id is still found
    assert found == "relay-1"
