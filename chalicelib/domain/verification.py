"""Decides whether an inbound request really comes from the sender its source trusts.

Ingest calls `verify_request` before it stores a Request and rejects it with cause
VERIFICATION_FAILED when `failure` is set. The module is pure (the clock arrives as `now`, the body
as the exact bytes received) so every provider's scheme can be tested byte for byte against the way
the provider signs, without IO.

A failure is a short reason stored with the rejected request and shown to the source's owner, so
it names the header at fault and never a secret or the signature we expected: echoing either would
hand a forger the answer. Malformed input of any kind is a failure, never an exception, because the
request comes from the open internet.

`external_id` reads the provider's own event id so a user can find a delivery by the id their
provider's dashboard shows.
"""

from __future__ import annotations

import base64
import binascii
import hmac
import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

# Stripe and Standard Webhooks both default to five minutes; a signed request replayed later than
# that is refused even though its signature is genuine.
TOLERANCE_SECONDS = 300
MAX_EXTERNAL_ID_LENGTH = 256

SIGNATURE_MISMATCH = "signature mismatch"
TIMESTAMP_OUTSIDE_TOLERANCE = f"timestamp outside the {TOLERANCE_SECONDS} s tolerance"
# The stored config was validated on write; reaching this means it was damaged since. Refusing is
# the safe answer: accepting would silently turn verification off.
INCOMPLETE_CONFIG = "the source's verification settings are incomplete"

_HEX = re.compile(r"(?:[0-9a-fA-F]{2})+")
# Bounded so int() never meets a number long enough to be slow or to hit Python's digit limit.
_UNIX_SECONDS = re.compile(r"[0-9]{1,15}")
_HMAC_ALGORITHMS = frozenset({"sha1", "sha256", "sha512"})


@dataclass(frozen=True, slots=True)
class Verification:
    """The outcome of checking one request.

    `verified` is True only when a configured check passed; a source without `auth_type` accepts
    requests unverified (`verified=False`, `failure=None`). Callers reject when `failure` is set.
    """

    verified: bool
    failure: str | None = None

    @property
    def rejected(self) -> bool:
        return self.failure is not None


UNCHECKED = Verification(verified=False)
PASSED = Verification(verified=True)


@dataclass(frozen=True, slots=True)
class _Request:
    headers: Mapping[str, str]  # names lower-cased
    raw_body: bytes
    now: float  # unix seconds

    def header(self, name: str) -> str | None:
        value = self.headers.get(name.lower())
        return None if value is None else value.strip()


def verify_request(
    config: Mapping[str, Any],
    *,
    method: str,
    headers: Mapping[str, str],
    query: Mapping[str, str],
    raw_body: bytes,
    now: datetime,
) -> Verification:
    """Check `raw_body` and `headers` against the source's `auth_type` and `auth`.

    `now` must be timezone-aware. `method` and `query` are taken so callers hand over the whole
    request once; no scheme reads them today (every provider signs the body and headers only).
    """
    auth_type = config.get("auth_type")
    if not auth_type:
        return UNCHECKED
    check = _CHECKS.get(auth_type)
    auth = config.get("auth")
    if check is None or not isinstance(auth, Mapping):
        return Verification(verified=False, failure=INCOMPLETE_CONFIG)
    request = _Request(headers=_lower_keys(headers), raw_body=raw_body, now=now.timestamp())
    failure = check(auth, request)
    return PASSED if failure is None else Verification(verified=False, failure=failure)


def external_id(config: Mapping[str, Any], headers: Mapping[str, str], parsed_body: Any) -> str | None:
    """The sender's id for this event, or None; the preset's own place first, then common ones."""
    lowered = _lower_keys(headers)
    auth_type = config.get("auth_type")
    if auth_type == "STRIPE":
        found = _body_id(parsed_body)
    else:
        found = _first_header(lowered, _PRESET_ID_HEADERS.get(auth_type))
    if found is None:
        found = _first_header(lowered, _COMMON_ID_HEADERS) or _body_id(parsed_body)
    return None if found is None else found[:MAX_EXTERNAL_ID_LENGTH]


# ---- one check per auth_type: each returns a failure reason, or None when the request passes ----


def _check_hmac(auth: Mapping[str, Any], request: _Request) -> str | None:
    algorithm = auth.get("algorithm", "sha256")
    encoding = auth.get("encoding", "base64")
    header_key = _text(auth, "header_key")
    secret = _text(auth, "webhook_secret_key")
    if algorithm not in _HMAC_ALGORITHMS or encoding not in ("hex", "base64") or not header_key or not secret:
        return INCOMPLETE_CONFIG
    value = request.header(header_key)
    if value is None:
        return f"missing {header_key} header"
    # Many senders label the digest the way GitHub does (`sha256=...`); the label adds nothing to check.
    label = f"{algorithm}="
    if value[: len(label)].lower() == label:
        value = value[len(label) :]
    received = _from_hex(value) if encoding == "hex" else _from_base64(value)
    if received is None:
        return f"malformed {header_key} header"
    expected = hmac.digest(secret.encode(), request.raw_body, algorithm)
    return None if hmac.compare_digest(expected, received) else SIGNATURE_MISMATCH


def _check_basic_auth(auth: Mapping[str, Any], request: _Request) -> str | None:
    username = _text(auth, "username")
    password = _text(auth, "password")
    if not username or not password:
        return INCOMPLETE_CONFIG
    value = request.header("authorization")
    if value is None:
        return "missing Authorization header"
    scheme, _, token = value.partition(" ")
    if scheme.lower() != "basic":  # RFC 7617: the scheme name is case-insensitive
        return "Authorization header does not carry Basic credentials"
    credentials = _from_base64(token.strip())
    if credentials is None or b":" not in credentials:
        return "malformed Basic credentials in Authorization header"
    given_user, _, given_password = credentials.partition(b":")
    # Both comparisons always run, so timing does not tell which half was wrong.
    user_ok = hmac.compare_digest(given_user, username.encode())
    password_ok = hmac.compare_digest(given_password, password.encode())
    return None if user_ok & password_ok else "wrong username or password"


def _check_api_key(auth: Mapping[str, Any], request: _Request) -> str | None:
    header_key = _text(auth, "header_key")
    api_key = _text(auth, "api_key")
    if not header_key or not api_key:
        return INCOMPLETE_CONFIG
    value = request.header(header_key)
    if value is None:
        return f"missing {header_key} header"
    candidates = [value]
    if header_key.lower() == "authorization":
        # Senders that put a key in Authorization almost always send it as a bearer token.
        scheme, _, token = value.partition(" ")
        if scheme.lower() == "bearer":
            candidates.append(token.strip())
    return None if _any_equal(api_key.encode(), (c.encode() for c in candidates)) else "wrong API key"


def _check_stripe(auth: Mapping[str, Any], request: _Request) -> str | None:
    secret = _text(auth, "webhook_secret_key")
    if not secret:
        return INCOMPLETE_CONFIG
    value = request.header("stripe-signature")
    if value is None:
        return "missing Stripe-Signature header"
    timestamp: str | None = None
    signatures: list[str] = []
    for item in value.split(","):
        name, sep, part = item.strip().partition("=")
        if not sep:
            return "malformed Stripe-Signature header"
        if name == "t":
            if timestamp is not None:  # two timestamps: no way to tell which one was signed
                return "malformed Stripe-Signature header"
            timestamp = part
        elif name == "v1":
            signatures.append(part)
        # Other schemes (v0 is Stripe's test-mode legacy) are ignored, as Stripe's docs instruct.
    if timestamp is None or not _UNIX_SECONDS.fullmatch(timestamp):
        return "malformed Stripe-Signature header"
    if not signatures:
        return "no v1 signature in Stripe-Signature header"
    if not _fresh(int(timestamp), request.now):
        return TIMESTAMP_OUTSIDE_TOLERANCE
    # Stripe keys the HMAC with the secret string exactly as shown, `whsec_` prefix included, and
    # signs the header's own timestamp text, so neither is re-encoded here.
    expected = hmac.digest(secret.encode(), timestamp.encode() + b"." + request.raw_body, "sha256")
    # Several v1 entries appear while an endpoint secret is being rolled; any one may match.
    return None if _any_equal(expected, (_from_hex(s) for s in signatures)) else SIGNATURE_MISMATCH


def _check_github(auth: Mapping[str, Any], request: _Request) -> str | None:
    secret = _text(auth, "webhook_secret_key")
    if not secret:
        return INCOMPLETE_CONFIG
    # The SHA-1 header is only a fallback for old senders: when both are present the SHA-256 one
    # decides, so a forger cannot downgrade the check by tampering with it.
    algorithm, display = "sha256", "X-Hub-Signature-256"
    value = request.header("x-hub-signature-256")
    if value is None:
        algorithm, display = "sha1", "X-Hub-Signature"
        value = request.header("x-hub-signature")
        if value is None:
            return "missing X-Hub-Signature-256 header"
    label = f"{algorithm}="
    received = _from_hex(value[len(label) :]) if value.startswith(label) else None
    if received is None:
        return f"malformed {display} header"
    expected = hmac.digest(secret.encode(), request.raw_body, algorithm)
    return None if hmac.compare_digest(expected, received) else SIGNATURE_MISMATCH


def _check_shopify(auth: Mapping[str, Any], request: _Request) -> str | None:
    secret = _text(auth, "webhook_secret_key")
    if not secret:
        return INCOMPLETE_CONFIG
    value = request.header("x-shopify-hmac-sha256")
    if value is None:
        return "missing X-Shopify-Hmac-Sha256 header"
    received = _from_base64(value)
    if received is None:
        return "malformed X-Shopify-Hmac-Sha256 header"
    expected = hmac.digest(secret.encode(), request.raw_body, "sha256")
    return None if hmac.compare_digest(expected, received) else SIGNATURE_MISMATCH


def _check_standard_webhooks(auth: Mapping[str, Any], request: _Request) -> str | None:
    secret = _text(auth, "webhook_secret_key")
    key = _standard_webhooks_key(secret) if secret else None
    if key is None:
        return "the source's webhook secret is not a Standard Webhooks key (whsec_ followed by base64)"
    # Svix, the scheme's origin, still sends `svix-*` names (Clerk, Resend, ...) with identical content.
    svix_only = request.header("webhook-signature") is None and request.header("svix-signature") is not None
    prefix = "svix-" if svix_only else "webhook-"
    msg_id = request.header(f"{prefix}id")
    if not msg_id:
        return f"missing {prefix}id header"
    timestamp = request.header(f"{prefix}timestamp")
    if not timestamp:
        return f"missing {prefix}timestamp header"
    signature_list = request.header(f"{prefix}signature")
    if not signature_list:
        return f"missing {prefix}signature header"
    if not _UNIX_SECONDS.fullmatch(timestamp):
        return f"malformed {prefix}timestamp header"
    # Entries are `<version>,<signature>`; only v1 (HMAC-SHA256) is symmetric, others are not ours to check.
    entries = (entry.partition(",") for entry in signature_list.split())
    signatures = [sig for version, comma, sig in entries if version == "v1" and comma]
    if not signatures:
        return f"no v1 signature in {prefix}signature header"
    if not _fresh(int(timestamp), request.now):
        return TIMESTAMP_OUTSIDE_TOLERANCE
    signed = f"{msg_id}.{timestamp}.".encode() + request.raw_body
    expected = hmac.digest(key, signed, "sha256")
    return None if _any_equal(expected, (_from_base64(s) for s in signatures)) else SIGNATURE_MISMATCH


_CHECKS: dict[str, Callable[[Mapping[str, Any], _Request], str | None]] = {
    "HMAC": _check_hmac,
    "BASIC_AUTH": _check_basic_auth,
    "API_KEY": _check_api_key,
    "STRIPE": _check_stripe,
    "GITHUB": _check_github,
    "SHOPIFY": _check_shopify,
    "STANDARD_WEBHOOKS": _check_standard_webhooks,
}

_PRESET_ID_HEADERS: dict[str, tuple[str, ...]] = {
    "GITHUB": ("x-github-delivery",),
    "SHOPIFY": ("x-shopify-webhook-id", "x-shopify-event-id"),
    "STANDARD_WEBHOOKS": ("webhook-id", "svix-id"),
}
_COMMON_ID_HEADERS = (
    "webhook-id",
    "svix-id",
    "x-github-delivery",
    "x-shopify-webhook-id",
    "idempotency-key",
    "x-request-id",
    "x-event-id",
)


# ---- helpers -------------------------------------------------------------------------------------


def _lower_keys(headers: Mapping[str, str]) -> dict[str, str]:
    # Callers already lower-case names; doing it again costs little and keeps a stray capital
    # from turning into a "missing header" rejection.
    return {name.lower(): value for name, value in headers.items()}


def _text(auth: Mapping[str, Any], field: str) -> str | None:
    value = auth.get(field)
    return value if isinstance(value, str) else None


def _fresh(timestamp: int, now: float) -> bool:
    # Both directions: a timestamp from the future is as suspect as a stale one.
    return abs(now - timestamp) <= TOLERANCE_SECONDS


def _any_equal(expected: bytes, candidates: Iterable[bytes | None]) -> bool:
    # Every candidate is compared (no early exit) so timing does not reveal which entry matched.
    matched = False
    for candidate in candidates:
        if candidate is not None:
            matched |= hmac.compare_digest(expected, candidate)
    return matched


def _from_hex(text: str) -> bytes | None:
    # bytes.fromhex alone would accept embedded spaces; the pattern keeps the format strict.
    return bytes.fromhex(text) if _HEX.fullmatch(text) else None


def _from_base64(text: str) -> bytes | None:
    try:
        decoded = base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError):  # ValueError: non-ASCII text
        return None
    return decoded or None


def _standard_webhooks_key(secret: str) -> bytes | None:
    # The spec's secrets are `whsec_` + base64 of the key bytes; the prefix is optional on input.
    encoded = secret.removeprefix("whsec_")
    return _from_base64(encoded)


def _first_header(headers: Mapping[str, str], names: Iterable[str] | None) -> str | None:
    for name in names or ():
        value = headers.get(name, "").strip()
        if value:
            return value
    return None


def _body_id(parsed_body: Any) -> str | None:
    if isinstance(parsed_body, dict):
        value = parsed_body.get("id")
        if isinstance(value, str) and value.strip():
            return value.strip()
    return None
