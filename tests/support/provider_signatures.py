"""Sign requests the way each webhook provider does, so tests can play the provider.

Written from the providers' published descriptions with hmac/hashlib only, independently of
`chalicelib/domain/verification.py`: a test that signs with the code under test would prove nothing.
Every helper returns headers with lower-case names, ready to merge into a request
(`headers = {"content-type": "application/json"} | stripe_headers(...)`). Bodies are the exact bytes
sent; re-serialising JSON after signing would break the signature, as it would in production.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
from collections.abc import Sequence
from typing import Literal

Algorithm = Literal["sha1", "sha256", "sha512"]
Encoding = Literal["hex", "base64"]


def _hmac(key: bytes, message: bytes, algorithm: str = "sha256") -> bytes:
    return hmac.new(key, message, getattr(hashlib, algorithm)).digest()


# ---- Stripe: `Stripe-Signature: t=<unix>,v1=<hex>`; HMAC-SHA256 of "<t>.<body>" keyed by the whsec_ string ----


def stripe_signature(secret: str, body: bytes, t: int) -> str:
    """The hex `v1` value Stripe sends for `body` at unix time `t`."""
    return _hmac(secret.encode(), f"{t}.".encode() + body).hex()


def stripe_headers(secret: str, body: bytes, t: int, *, also_signed_with: Sequence[str] = ()) -> dict[str, str]:
    """`stripe-signature` as Stripe sends it; `also_signed_with` adds one v1 per extra secret (secret roll)."""
    entries = [f"t={t}"] + [f"v1={stripe_signature(s, body, t)}" for s in (*also_signed_with, secret)]
    return {"stripe-signature": ",".join(entries)}


# ---- GitHub: `X-Hub-Signature-256: sha256=<hex>` (and the legacy `X-Hub-Signature: sha1=<hex>`) ----


def github_headers(secret: str, body: bytes, *, delivery_id: str | None = None) -> dict[str, str]:
    """Both signature headers, as GitHub sends them, plus `x-github-delivery` when given."""
    headers = {
        "x-hub-signature-256": "sha256=" + _hmac(secret.encode(), body, "sha256").hex(),
        "x-hub-signature": "sha1=" + _hmac(secret.encode(), body, "sha1").hex(),
    }
    if delivery_id is not None:
        headers["x-github-delivery"] = delivery_id
    return headers


# ---- Shopify: `X-Shopify-Hmac-Sha256: base64(HMAC-SHA256(client secret, body))` ----


def shopify_headers(secret: str, body: bytes, *, webhook_id: str | None = None) -> dict[str, str]:
    headers = {"x-shopify-hmac-sha256": base64.b64encode(_hmac(secret.encode(), body)).decode()}
    if webhook_id is not None:
        headers["x-shopify-webhook-id"] = webhook_id
    return headers


# ---- Standard Webhooks: key = base64-decode(secret minus "whsec_"); HMAC-SHA256 of "<id>.<t>.<body>" ----


def standard_webhooks_secret(key: bytes) -> str:
    """The `whsec_...` form a Standard Webhooks sender shows for the raw key bytes."""
    return "whsec_" + base64.b64encode(key).decode()


def standard_webhooks_signature(secret: str, msg_id: str, body: bytes, t: int) -> str:
    """One `v1,<base64>` entry of the `webhook-signature` list."""
    key = base64.b64decode(secret.removeprefix("whsec_"))
    digest = _hmac(key, f"{msg_id}.{t}.".encode() + body)
    return "v1," + base64.b64encode(digest).decode()


def standard_webhooks_headers(
    secret: str, msg_id: str, body: bytes, t: int, *, prefix: Literal["webhook-", "svix-"] = "webhook-"
) -> dict[str, str]:
    return {
        f"{prefix}id": msg_id,
        f"{prefix}timestamp": str(t),
        f"{prefix}signature": standard_webhooks_signature(secret, msg_id, body, t),
    }


# ---- FastHook's generic HMAC and credential schemes ----


def hmac_headers(
    secret: str,
    body: bytes,
    *,
    header_key: str = "x-signature",
    algorithm: Algorithm = "sha256",
    encoding: Encoding = "base64",
    labelled: bool = False,
) -> dict[str, str]:
    """A generic HMAC signature of the body; `labelled` prefixes it GitHub-style (`sha256=...`)."""
    digest = _hmac(secret.encode(), body, algorithm)
    value = digest.hex() if encoding == "hex" else base64.b64encode(digest).decode()
    return {header_key.lower(): f"{algorithm}={value}" if labelled else value}


def basic_auth_header(username: str, password: str) -> dict[str, str]:
    """`authorization: Basic base64(user:pass)` (RFC 7617)."""
    token = base64.b64encode(f"{username}:{password}".encode()).decode()
    return {"authorization": f"Basic {token}"}
