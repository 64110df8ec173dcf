"""A stand-in for Google's signing-key endpoint on 127.0.0.1, and RS256 ID tokens signed for it.

Unit tests of the verifier and functional tests of `POST /auth/google/login` both sign real tokens
with locally generated keys; nothing here reaches the network.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import jwt
from cryptography.hazmat.primitives.asymmetric import rsa
from jwt.algorithms import RSAAlgorithm

CLIENT_ID = "1234567890-fasthook.apps.googleusercontent.com"
KID = "fasthook-test-key-1"
START = 1_900_000_000.0
DROP = object()


# --- helpers -----------------------------------------------------------------------------------


@dataclass
class CertsEndpoint:
    """What the loopback key endpoint answers, and how often it was asked."""

    url: str = ""
    jwks: dict[str, Any] = field(default_factory=lambda: {"keys": []})
    status: int = 200
    body: bytes | None = None
    cache_control: str | None = None
    delay_s: float = 0.0
    hits: int = 0
    released: threading.Event = field(default_factory=threading.Event)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def publish(self, *keys: tuple[str, rsa.RSAPrivateKey]) -> None:
        self.jwks = {"keys": [_public_jwk(kid, key) for kid, key in keys]}

    def count_hit(self) -> None:
        with self._lock:
            self.hits += 1


class _CertsServer(ThreadingHTTPServer):
    daemon_threads = True
    endpoint: CertsEndpoint


class _CertsHandler(BaseHTTPRequestHandler):
    server: _CertsServer

    def do_GET(self) -> None:
        endpoint = self.server.endpoint
        endpoint.count_hit()
        if endpoint.delay_s:
            endpoint.released.wait(endpoint.delay_s)
        body = endpoint.body if endpoint.body is not None else json.dumps(endpoint.jwks).encode()
        try:
            self.send_response(endpoint.status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            if endpoint.cache_control is not None:
                self.send_header("Cache-Control", endpoint.cache_control)
            self.end_headers()
            self.wfile.write(body)
        except OSError:
            pass  # the client gave up waiting, which is what the timeout tests want

    def log_message(self, format: str, *args: Any) -> None:
        pass


def _public_jwk(kid: str, key: rsa.RSAPrivateKey) -> dict[str, Any]:
    jwk = RSAAlgorithm.to_jwk(key.public_key(), as_dict=True)
    assert isinstance(jwk, dict)
    return {**jwk, "kid": kid, "use": "sig", "alg": "RS256"}


def claims(now: float, **overrides: Any) -> dict[str, Any]:
    claims: dict[str, Any] = {
        "iss": "https://accounts.google.com",
        "aud": CLIENT_ID,
        "azp": CLIENT_ID,
        "sub": "110248495921238986420",
        "email": "ada@example.com",
        "email_verified": True,
        "name": "Ada Lovelace",
        "picture": "https://lh3.googleusercontent.com/a/ada",
        "iat": int(now),
        "exp": int(now) + 3600,
    }
    claims.update(overrides)
    return {name: value for name, value in claims.items() if value is not DROP}


def sign(key: rsa.RSAPrivateKey, now: float, *, kid: str = KID, **overrides: Any) -> str:
    return jwt.encode(claims(now, **overrides), key, algorithm="RS256", headers={"kid": kid})


@contextmanager
def serve_certs(key: rsa.RSAPrivateKey) -> Iterator[CertsEndpoint]:
    """Serve `key`'s JWKS under KID until the block ends."""
    endpoint = CertsEndpoint()
    endpoint.publish((KID, key))
    server = _CertsServer(("127.0.0.1", 0), _CertsHandler)
    server.endpoint = endpoint
    endpoint.url = f"http://127.0.0.1:{server.server_address[1]}/oauth2/v3/certs"
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True)
    thread.start()
    try:
        yield endpoint
    finally:
        endpoint.released.set()
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)
