"""Checks the Google ID tokens that `POST /auth/google/login` receives.

A Google ID token is a JWT that Google signs with RS256 keys it publishes, and rotates, as a JWKS.
FastHook accepts one only if Google signed it for FastHook's own OAuth client, recently, for an account
with an email address. Everything about the token is attacker-supplied, so the algorithm is pinned
before any key is chosen, and the key set is cached so that neither normal traffic nor a flood of
made-up key ids turns into a stream of requests to Google. Every way a credential can fail, including
Google's key endpoint being unreachable, ends as an UnauthorizedError (401), never a 500 or a hang.
"""

from __future__ import annotations

import math
import re
import threading
import time
from collections.abc import Callable, Mapping
from typing import Any

import jwt
import requests

from chalicelib.domain.errors import UnauthorizedError
from chalicelib.domain.identity import ExternalIdentity

GOOGLE_JWKS_URL = "https://www.googleapis.com/oauth2/v3/certs"
GOOGLE_ISSUERS = ("accounts.google.com", "https://accounts.google.com")

_ALGORITHM = "RS256"
# Clocks of Google, Lambda and the browser that relays the token are never quite in step.
_CLOCK_LEEWAY_S = 60.0
_DEFAULT_KEYS_MAX_AGE_S = 3600.0
# A token naming a key we do not hold may mean Google rotated keys, or may be garbage; at most one
# refetch a minute keeps a flood of made-up kids from becoming a flood of requests to Google.
_UNKNOWN_KID_REFETCH_INTERVAL_S = 60.0
# While Google's endpoint is failing, logins queued behind the lock should fail at once instead of
# each waiting out its own timeout.
_FAILED_FETCH_BACKOFF_S = 5.0
# Real ID tokens are about 1 KiB; anything far larger is refused before it is parsed.
_MAX_CREDENTIAL_CHARS = 16 * 1024
_MAX_AGE_RE = re.compile(r"(?:^|[,\s])max-age\s*=\s*\"?(\d+)\"?", re.IGNORECASE)

_PROVIDER = "google"
_KEYS_UNAVAILABLE = "Google login is unavailable: could not fetch Google signing keys"


class GoogleIdTokenVerifier:
    """IdentityVerifier for Google ID tokens (Sign in with Google credentials)."""

    def __init__(
        self,
        client_id: str,
        jwks_url: str = GOOGLE_JWKS_URL,
        *,
        http_timeout_s: float = 5.0,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._client_id = client_id.strip()
        self._jwks_url = jwks_url
        self._http_timeout_s = http_timeout_s
        self._clock = clock
        self._lock = threading.Lock()
        self._keys: dict[str, Any] = {}
        self._keys_expire_at = float("-inf")
        self._last_fetch_at: float | None = None
        self._failed_at: float | None = None

    def verify(self, credential: str) -> ExternalIdentity:
        if not self._client_id:
            raise UnauthorizedError("Google login is not configured")
        if not isinstance(credential, str) or not credential.strip():
            raise UnauthorizedError("Google credential is missing")
        if len(credential) > _MAX_CREDENTIAL_CHARS:
            raise UnauthorizedError("Google credential is malformed")

        kid = self._read_kid(credential)
        claims = self._decode(credential, self._signing_key(kid))
        self._check_lifetime(claims)
        return self._identity_from(claims)

    def _read_kid(self, credential: str) -> str:
        try:
            header = jwt.get_unverified_header(credential)
        except jwt.InvalidTokenError as exc:
            raise UnauthorizedError("Google credential is malformed") from exc
        # Pinned before any key is looked up: `none` and HS256 (keyed with our public key) are the
        # classic ways to forge a token that a verifier trusting the header would accept.
        if header.get("alg") != _ALGORITHM:
            raise UnauthorizedError("Google credential is not signed with RS256")
        kid = header.get("kid")
        if not isinstance(kid, str) or not kid:
            raise UnauthorizedError("Google credential does not name its signing key")
        return kid

    def _decode(self, credential: str, key: Any) -> dict[str, Any]:
        try:
            return jwt.decode(
                credential,
                key,
                algorithms=[_ALGORITHM],
                audience=self._client_id,
                issuer=GOOGLE_ISSUERS,
                options={
                    "require": ["iss", "aud", "sub", "exp", "iat"],
                    # Checked in _check_lifetime against the injected clock instead.
                    "verify_exp": False,
                    "verify_iat": False,
                    "verify_nbf": False,
                },
            )
        except jwt.InvalidSignatureError as exc:
            raise UnauthorizedError("Google credential signature is invalid") from exc
        except jwt.InvalidAudienceError as exc:
            raise UnauthorizedError("Google credential was issued for another client") from exc
        except jwt.InvalidIssuerError as exc:
            raise UnauthorizedError("Google credential was not issued by Google") from exc
        except jwt.MissingRequiredClaimError as exc:
            raise UnauthorizedError(f"Google credential is missing the '{exc.claim}' claim") from exc
        except jwt.InvalidTokenError as exc:
            raise UnauthorizedError("Google credential is malformed") from exc

    def _check_lifetime(self, claims: Mapping[str, Any]) -> None:
        now = self._clock()
        exp = _timestamp(claims, "exp")
        iat = _timestamp(claims, "iat")
        if exp <= now - _CLOCK_LEEWAY_S:
            raise UnauthorizedError("Google credential has expired")
        if iat > now + _CLOCK_LEEWAY_S:
            raise UnauthorizedError("Google credential was issued in the future")
        if "nbf" in claims and _timestamp(claims, "nbf") > now + _CLOCK_LEEWAY_S:
            raise UnauthorizedError("Google credential is not valid yet")

    def _identity_from(self, claims: Mapping[str, Any]) -> ExternalIdentity:
        subject = claims["sub"]
        email = claims.get("email")
        if not isinstance(subject, str) or not subject:
            raise UnauthorizedError("Google credential has no account id")
        if not isinstance(email, str) or not email:
            raise UnauthorizedError("Google credential carries no email address")
        verified = claims.get("email_verified")
        return ExternalIdentity(
            provider=_PROVIDER,
            subject=subject,
            email=email,
            # Google has sent this as the string "true" in older tokens.
            email_verified=verified is True or verified == "true",
            name=_optional_str(claims.get("name")),
            picture_url=_optional_str(claims.get("picture")),
        )

    def _signing_key(self, kid: str) -> Any:
        # One lock around lookup and fetch: concurrent logins after a cold start or key expiry
        # share a single request to Google instead of each sending one.
        with self._lock:
            now = self._clock()
            stale = now >= self._keys_expire_at
            if stale or (kid not in self._keys and self._may_refetch_for_unknown_kid(now)):
                self._refresh_keys(now)
            key = self._keys.get(kid)
        if key is None:
            raise UnauthorizedError("Google credential was signed with an unknown key")
        return key

    def _may_refetch_for_unknown_kid(self, now: float) -> bool:
        return self._last_fetch_at is None or now - self._last_fetch_at >= _UNKNOWN_KID_REFETCH_INTERVAL_S

    def _refresh_keys(self, now: float) -> None:
        if self._failed_at is not None and now - self._failed_at < _FAILED_FETCH_BACKOFF_S:
            raise UnauthorizedError(_KEYS_UNAVAILABLE)
        self._last_fetch_at = now
        try:
            keys, max_age = self._fetch_keys()
        except UnauthorizedError:
            # Stamped after the attempt: callers that queued on the lock during a slow failure must
            # still fall inside the backoff.
            self._failed_at = self._clock()
            raise
        self._failed_at = None
        self._keys = keys
        self._keys_expire_at = now + max_age

    def _fetch_keys(self) -> tuple[dict[str, Any], float]:
        try:
            # The timeout bounds the connect and every read wait, so a silent endpoint costs one
            # login at most that long (and, through the backoff, only one login).
            response = requests.get(self._jwks_url, timeout=self._http_timeout_s)
            response.raise_for_status()
            document = response.json()
        except (requests.RequestException, ValueError) as exc:
            raise UnauthorizedError(_KEYS_UNAVAILABLE) from exc
        keys = _rsa_keys(document)
        if not keys:
            raise UnauthorizedError(_KEYS_UNAVAILABLE)
        return keys, _max_age(response.headers.get("Cache-Control"), response.headers.get("Age"))


def _rsa_keys(document: Any) -> dict[str, Any]:
    entries = document.get("keys") if isinstance(document, dict) else None
    if not isinstance(entries, list):
        return {}
    keys: dict[str, Any] = {}
    for entry in entries:
        if not isinstance(entry, dict) or entry.get("kty") != "RSA":
            continue
        kid = entry.get("kid")
        if not isinstance(kid, str) or not kid:
            continue
        if entry.get("use", "sig") != "sig" or entry.get("alg", _ALGORITHM) != _ALGORITHM:
            continue
        try:
            keys[kid] = jwt.PyJWK(entry, algorithm=_ALGORITHM).key
        except jwt.PyJWKError:
            # One unusable key should not take the others, and with them every login, down.
            continue
    return keys


def _max_age(cache_control: str | None, age: str | None) -> float:
    match = _MAX_AGE_RE.search(cache_control or "")
    if match is None:
        return _DEFAULT_KEYS_MAX_AGE_S
    max_age = float(match.group(1))
    # A CDN in front of Google reports how long the response already sat in its cache.
    if age is not None and age.strip().isdigit():
        max_age -= float(age.strip())
    return max(max_age, 0.0)


def _timestamp(claims: Mapping[str, Any], name: str) -> float:
    value = claims[name]
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise UnauthorizedError(f"Google credential has a malformed '{name}' claim")
    return float(value)


def _optional_str(value: Any) -> str | None:
    return value if isinstance(value, str) and value else None
