"""Functional tier: the Chalice app through chalice's test Client, with moto DynamoDB/SQS/S3."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest

from chalicelib import wiring
from chalicelib.adapters.memory import FixedClock


class Api:
    """Thin JSON wrapper around chalice's test client, with the caller's token applied."""

    def __init__(self, client: Any, token: str | None = None, prefix: str = "/v1") -> None:
        self.client, self.token, self.prefix = client, token, prefix

    def as_(self, token: str | None, prefix: str | None = None) -> Api:
        return Api(self.client, token, self.prefix if prefix is None else prefix)

    def call(
        self, method: str, path: str, body: Any = None, *, headers: dict[str, str] | None = None, raw: str | None = None
    ) -> tuple[int, Any]:
        all_headers = {"Content-Type": "application/json", **(headers or {})}
        if self.token:
            all_headers.setdefault("Authorization", f"Bearer {self.token}")
        payload = raw if raw is not None else (json.dumps(body) if body is not None else None)
        response = self.client.http.request(method, self.prefix + path, headers=all_headers, body=payload)
        text = response.body.decode() if isinstance(response.body, bytes) else response.body
        return response.status_code, (json.loads(text) if text else None)

    def get(self, path: str, **kw: Any) -> tuple[int, Any]:
        return self.call("GET", path, **kw)

    def post(self, path: str, body: Any = None, **kw: Any) -> tuple[int, Any]:
        return self.call("POST", path, body, **kw)

    def put(self, path: str, body: Any = None, **kw: Any) -> tuple[int, Any]:
        return self.call("PUT", path, body, **kw)

    def patch(self, path: str, body: Any = None, **kw: Any) -> tuple[int, Any]:
        return self.call("PATCH", path, body, **kw)

    def delete(self, path: str, **kw: Any) -> tuple[int, Any]:
        return self.call("DELETE", path, **kw)


@pytest.fixture()
def clock() -> FixedClock:
    from datetime import UTC, datetime

    return FixedClock(datetime.now(UTC).replace(microsecond=0))


@pytest.fixture()
def anon(aws: dict[str, str], monkeypatch: pytest.MonkeyPatch, clock: FixedClock) -> Iterator[Api]:
    """An unauthenticated client of a FastHook whose stores are moto DynamoDB."""
    from chalice.test import Client

    for name, value in aws.items():
        monkeypatch.setenv(name, value)
    monkeypatch.setenv("FASTHOOK_INGEST_URL", "https://hooks.example.test")
    wiring.reset()
    from chalicelib.settings import get_settings

    wiring.use(wiring.Container(settings=get_settings(), clock=clock))
    import app as fasthook

    with Client(fasthook.app) as client:
        yield Api(client)
    wiring.reset()


@pytest.fixture()
def api(anon: Api) -> Api:
    """A client logged in as the demo user (session token)."""
    status, body = anon.post("/auth/demo/login")
    assert status == 200, body
    return anon.as_(body["token"])
