"""GoogleIdTokenVerifier against a stand-in for Google's key endpoint on 127.0.0.1.

The verifier is the only thing between a forged credential and a FastHook session, so these tests sign
real RS256 tokens with locally generated keys, serve the matching JWKS over loopback HTTP, and count
the endpoint's hits to show that keys are cached and that bad tokens cannot make FastHook hammer Google.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import socket
import threading
from collections.abc import Iterator
from typing import Any

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from chalicelib.adapters.google_tokens import GoogleIdTokenVerifier
from chalicelib.domain.errors import UnauthorizedError
from chalicelib.domain.identity import ExternalIdentity
from tests.support.google_certs import CLIENT_ID, DROP, KID, START, CertsEndpoint, claims, serve_certs, sign


class FakeClock:
    def __init__(self, now: float = START) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


def _b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _hand_made_token(header: dict[str, Any], claims: dict[str, Any], signature: bytes) -> str:
    signing_input = f"{_b64url(json.dumps(header).encode())}.{_b64url(json.dumps(claims).encode())}"
    return f"{signing_input}.{_b64url(signature)}"


def _refused(verifier: GoogleIdTokenVerifier, credential: str) -> str:
    with pytest.raises(UnauthorizedError) as caught:
        verifier.verify(credential)
    message = caught.value.message
    if credential.strip():
        assert credential not in message
    return message


def _closed_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


# --- fixtures ----------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def google_key() -> rsa.RSAPrivateKey:
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


@pytest.fixture(scope="module")
def other_key() -> rsa.RSAPrivateKey:
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


@pytest.fixture
def certs(google_key: rsa.RSAPrivateKey) -> Iterator[CertsEndpoint]:
    with serve_certs(google_key) as endpoint:
        yield endpoint


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def verifier(certs: CertsEndpoint, clock: FakeClock) -> GoogleIdTokenVerifier:
    return GoogleIdTokenVerifier(CLIENT_ID, certs.url, http_timeout_s=2.0, clock=clock)


# --- valid credentials -------------------------------------------------------------------------


def test_valid_credential_yields_the_google_identity(
    verifier: GoogleIdTokenVerifier, google_key: rsa.RSAPrivateKey, clock: FakeClock
) -> None:
    # Given
    credential = sign(google_key, clock.now)

    # When
    identity = verifier.verify(credential)

    # Then
    assert identity == ExternalIdentity(
        provider="google",
        subject="110248495921238986420",
        email="ada@example.com",
        email_verified=True,
        name="Ada Lovelace",
        picture_url="https://lh3.googleusercontent.com/a/ada",
    )


@pytest.mark.parametrize("issuer", ["accounts.google.com", "https://accounts.google.com"])
def test_both_spellings_of_the_google_issuer_are_accepted(
    verifier: GoogleIdTokenVerifier, google_key: rsa.RSAPrivateKey, clock: FakeClock, issuer: str
) -> None:
    # Given
    credential = sign(google_key, clock.now, iss=issuer)

    # When
    identity = verifier.verify(credential)

    # Then
    assert identity.subject == "110248495921238986420"


def test_identity_without_name_picture_or_verified_email_keeps_those_fields_empty(
    verifier: GoogleIdTokenVerifier, google_key: rsa.RSAPrivateKey, clock: FakeClock
) -> None:
    # Given
    credential = sign(google_key, clock.now, name=DROP, picture=DROP, email_verified=False)

    # When
    identity = verifier.verify(credential)

    # Then
    assert (identity.name, identity.picture_url, identity.email_verified) == (None, None, False)


# --- invalid credentials -----------------------------------------------------------------------


def test_expired_credential_is_refused(
    verifier: GoogleIdTokenVerifier, google_key: rsa.RSAPrivateKey, clock: FakeClock
) -> None:
    # Given
    credential = sign(google_key, clock.now - 7200)

    # When
    message = _refused(verifier, credential)

    # Then
    assert message == "Google credential has expired"


def test_credential_issued_in_the_future_is_refused(
    verifier: GoogleIdTokenVerifier, google_key: rsa.RSAPrivateKey, clock: FakeClock
) -> None:
    # Given
    credential = sign(google_key, clock.now + 600)

    # When
    message = _refused(verifier, credential)

    # Then
    assert message == "Google credential was issued in the future"


def test_credential_a_few_seconds_past_expiry_is_accepted_as_clock_skew(
    verifier: GoogleIdTokenVerifier, google_key: rsa.RSAPrivateKey, clock: FakeClock
) -> None:
    # Given
    credential = sign(google_key, clock.now - 3610)

    # When
    identity = verifier.verify(credential)

    # Then
    assert identity.email == "ada@example.com"


def test_credential_issued_for_another_client_is_refused(
    verifier: GoogleIdTokenVerifier, google_key: rsa.RSAPrivateKey, clock: FakeClock
) -> None:
    # Given
    credential = sign(google_key, clock.now, aud="someone-else.apps.googleusercontent.com")

    # When
    message = _refused(verifier, credential)

    # Then
    assert message == "Google credential was issued for another client"


def test_credential_from_another_issuer_is_refused(
    verifier: GoogleIdTokenVerifier, google_key: rsa.RSAPrivateKey, clock: FakeClock
) -> None:
    # Given
    credential = sign(google_key, clock.now, iss="https://accounts.example.com")

    # When
    message = _refused(verifier, credential)

    # Then
    assert message == "Google credential was not issued by Google"


def test_credential_signed_by_another_key_under_a_known_kid_is_refused(
    verifier: GoogleIdTokenVerifier, other_key: rsa.RSAPrivateKey, clock: FakeClock
) -> None:
    # Given
    credential = sign(other_key, clock.now, kid=KID)

    # When
    message = _refused(verifier, credential)

    # Then
    assert message == "Google credential signature is invalid"


def test_unsigned_alg_none_credential_is_refused_without_fetching_keys(
    verifier: GoogleIdTokenVerifier, certs: CertsEndpoint, clock: FakeClock
) -> None:
    # Given
    credential = _hand_made_token({"alg": "none", "typ": "JWT", "kid": KID}, claims(clock.now), b"")

    # When
    message = _refused(verifier, credential)

    # Then
    assert message == "Google credential is not signed with RS256"
    assert certs.hits == 0


def test_hs256_credential_keyed_with_the_public_key_pem_is_refused(
    verifier: GoogleIdTokenVerifier, google_key: rsa.RSAPrivateKey, clock: FakeClock
) -> None:
    # Given an attacker who MACs with the published public key, hoping it is used as an HMAC secret
    public_pem = google_key.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    header = {"alg": "HS256", "typ": "JWT", "kid": KID}
    unsigned = _hand_made_token(header, claims(clock.now), b"").rstrip(".")
    signature = hmac.new(public_pem, unsigned.encode(), hashlib.sha256).digest()
    credential = f"{unsigned}.{_b64url(signature)}"

    # When
    message = _refused(verifier, credential)

    # Then
    assert message == "Google credential is not signed with RS256"


@pytest.mark.parametrize(
    "credential",
    ["not-a-jwt", "a.b.c", "....", "", "   ", _b64url(b'{"alg":"RS256"}') + ".e30.", "x" * 20_000],
    ids=["word", "three-dots-segments", "dots", "empty", "blank", "rs256-without-kid", "huge"],
)
def test_garbage_credential_is_refused_without_fetching_keys(
    verifier: GoogleIdTokenVerifier, certs: CertsEndpoint, credential: str
) -> None:
    # Given a credential that is not a Google ID token at all

    # When
    message = _refused(verifier, credential)

    # Then
    assert message.startswith("Google credential ")
    assert certs.hits == 0


def test_credential_without_email_is_refused(
    verifier: GoogleIdTokenVerifier, google_key: rsa.RSAPrivateKey, clock: FakeClock
) -> None:
    # Given
    credential = sign(google_key, clock.now, email=DROP)

    # When
    message = _refused(verifier, credential)

    # Then
    assert message == "Google credential carries no email address"


def test_credential_without_expiry_is_refused(
    verifier: GoogleIdTokenVerifier, google_key: rsa.RSAPrivateKey, clock: FakeClock
) -> None:
    # Given
    credential = sign(google_key, clock.now, exp=DROP)

    # When
    message = _refused(verifier, credential)

    # Then
    assert message == "Google credential is missing the 'exp' claim"


def test_empty_client_id_refuses_every_credential_without_fetching_keys(
    certs: CertsEndpoint, google_key: rsa.RSAPrivateKey, clock: FakeClock
) -> None:
    # Given a deployment where the Google client id was never set
    verifier = GoogleIdTokenVerifier("", certs.url, clock=clock)
    credential = sign(google_key, clock.now, aud="")

    # When
    message = _refused(verifier, credential)

    # Then
    assert message == "Google login is not configured"
    assert certs.hits == 0


# --- the signing-key cache ---------------------------------------------------------------------


def test_building_a_verifier_fetches_nothing(certs: CertsEndpoint, clock: FakeClock) -> None:
    # Given / When
    GoogleIdTokenVerifier(CLIENT_ID, certs.url, clock=clock)

    # Then
    assert certs.hits == 0


def test_signing_keys_are_fetched_once_for_many_verifications(
    verifier: GoogleIdTokenVerifier, certs: CertsEndpoint, google_key: rsa.RSAPrivateKey, clock: FakeClock
) -> None:
    # Given
    credentials = [sign(google_key, clock.now, sub=f"user-{n}") for n in range(20)]

    # When
    subjects = [verifier.verify(credential).subject for credential in credentials]

    # Then
    assert subjects == [f"user-{n}" for n in range(20)]
    assert certs.hits == 1


def test_concurrent_first_logins_share_one_key_fetch(
    verifier: GoogleIdTokenVerifier, certs: CertsEndpoint, google_key: rsa.RSAPrivateKey, clock: FakeClock
) -> None:
    # Given a cold verifier and a slow key endpoint
    certs.delay_s = 0.2
    credential = sign(google_key, clock.now)
    results: list[str] = []

    def login() -> None:
        results.append(verifier.verify(credential).email)

    # When
    threads = [threading.Thread(target=login) for _ in range(12)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=10)

    # Then
    assert results == ["ada@example.com"] * 12
    assert certs.hits == 1


@pytest.mark.parametrize(
    ("cache_control", "fresh_at", "stale_at"),
    [("public, max-age=120, must-revalidate, no-transform", 100, 130), (None, 3500, 3700)],
    ids=["max-age", "default-hour"],
)
def test_signing_keys_are_refetched_once_their_cache_lifetime_is_over(
    verifier: GoogleIdTokenVerifier,
    certs: CertsEndpoint,
    google_key: rsa.RSAPrivateKey,
    clock: FakeClock,
    cache_control: str | None,
    fresh_at: float,
    stale_at: float,
) -> None:
    # Given
    certs.cache_control = cache_control
    verifier.verify(sign(google_key, clock.now))

    # When
    clock.advance(fresh_at)
    verifier.verify(sign(google_key, clock.now))
    hits_while_fresh = certs.hits
    clock.advance(stale_at - fresh_at)
    verifier.verify(sign(google_key, clock.now))

    # Then
    assert (hits_while_fresh, certs.hits) == (1, 2)


def test_unknown_kid_refetches_once_then_is_refused_without_asking_google_for_a_minute(
    verifier: GoogleIdTokenVerifier,
    certs: CertsEndpoint,
    google_key: rsa.RSAPrivateKey,
    other_key: rsa.RSAPrivateKey,
    clock: FakeClock,
) -> None:
    # Given keys cached a while ago
    verifier.verify(sign(google_key, clock.now))
    clock.advance(61)

    # When a flood of credentials names kids Google never published
    messages = []
    for n in range(10):
        clock.advance(5)
        messages.append(_refused(verifier, sign(other_key, clock.now, kid=f"made-up-{n}")))

    # Then one refetch was tried for them, and the known key still works
    assert set(messages) == {"Google credential was signed with an unknown key"}
    assert certs.hits == 2
    assert verifier.verify(sign(google_key, clock.now)).email == "ada@example.com"
    assert certs.hits == 2


def test_key_rotated_in_by_google_is_picked_up_by_refetching(
    verifier: GoogleIdTokenVerifier,
    certs: CertsEndpoint,
    google_key: rsa.RSAPrivateKey,
    other_key: rsa.RSAPrivateKey,
    clock: FakeClock,
) -> None:
    # Given keys cached, then Google publishes a new key
    verifier.verify(sign(google_key, clock.now))
    certs.publish((KID, google_key), ("fasthook-test-key-2", other_key))
    clock.advance(61)

    # When
    identity = verifier.verify(sign(other_key, clock.now, kid="fasthook-test-key-2"))

    # Then
    assert identity.email == "ada@example.com"
    assert certs.hits == 2


# --- the key endpoint failing ------------------------------------------------------------------


def test_unreachable_key_endpoint_is_unauthorized_not_a_crash(google_key: rsa.RSAPrivateKey, clock: FakeClock) -> None:
    # Given
    url = f"http://127.0.0.1:{_closed_port()}/oauth2/v3/certs"
    verifier = GoogleIdTokenVerifier(CLIENT_ID, url, http_timeout_s=2.0, clock=clock)

    # When
    message = _refused(verifier, sign(google_key, clock.now))

    # Then
    assert "could not fetch Google signing keys" in message


@pytest.mark.parametrize(
    ("status", "body"),
    [(500, b'{"error": "backend"}'), (200, b"<html>maintenance</html>"), (200, b'{"keys": []}')],
    ids=["server-error", "not-json", "no-keys"],
)
def test_key_endpoint_answering_nonsense_is_unauthorized(
    verifier: GoogleIdTokenVerifier,
    certs: CertsEndpoint,
    google_key: rsa.RSAPrivateKey,
    clock: FakeClock,
    status: int,
    body: bytes,
) -> None:
    # Given
    certs.status, certs.body = status, body

    # When
    message = _refused(verifier, sign(google_key, clock.now))

    # Then
    assert "could not fetch Google signing keys" in message


def test_key_endpoint_that_never_answers_times_out_as_unauthorized(
    certs: CertsEndpoint, google_key: rsa.RSAPrivateKey, clock: FakeClock
) -> None:
    # Given
    certs.delay_s = 30
    verifier = GoogleIdTokenVerifier(CLIENT_ID, certs.url, http_timeout_s=0.2, clock=clock)

    # When
    message = _refused(verifier, sign(google_key, clock.now))

    # Then
    assert "could not fetch Google signing keys" in message


def test_failed_key_fetch_is_not_retried_by_every_login_but_recovers_shortly(
    verifier: GoogleIdTokenVerifier, certs: CertsEndpoint, google_key: rsa.RSAPrivateKey, clock: FakeClock
) -> None:
    # Given the key endpoint failed once
    certs.status = 503
    _refused(verifier, sign(google_key, clock.now))

    # When logins keep arriving, and the endpoint recovers
    _refused(verifier, sign(google_key, clock.now))
    hits_during_backoff = certs.hits
    certs.status = 200
    clock.advance(10)
    identity = verifier.verify(sign(google_key, clock.now))

    # Then
    assert hits_during_backoff == 1
    assert identity.email == "ada@example.com"
    assert certs.hits == 2
