"""End-to-end tier: the embedded stack (moto server, local HTTP server, in-process workers) and loopback receivers.

One FastHook runs per module, as `make run` runs it; each test makes its own sources, destinations
and connections, so tests do not see each other's traffic.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import pytest
import requests

from tests.support.local_stack import running_local_fasthook
from tests.support.receiver import Receiver


@dataclass
class FastHook:
    url: str
    token: str
    http: requests.Session

    def api(self, method: str, path: str, body: Any = None, **kw: Any) -> tuple[int, Any]:
        response = self.http.request(
            method,
            f"{self.url}/v1{path}",
            json=body,
            headers={"Authorization": f"Bearer {self.token}"},
            timeout=30,
            **kw,
        )
        return response.status_code, (response.json() if response.content else None)

    def ok(self, method: str, path: str, body: Any = None) -> Any:
        status, payload = self.api(method, path, body)
        assert status < 300, (status, payload)
        return payload

    def send(
        self,
        source_id: str,
        body: bytes = b'{"hello":"world"}',
        *,
        path: str = "",
        query: str = "",
        headers: dict[str, str] | None = None,
        method: str = "POST",
    ) -> requests.Response:
        url = f"{self.url}/e/{source_id}{path}" + (f"?{query}" if query else "")
        return self.http.request(
            method, url, data=body, headers={"Content-Type": "application/json", **(headers or {})}, timeout=30
        )

    def route(
        self,
        receiver: Receiver,
        *,
        path: str = "/hooks",
        rules: list[Any] | None = None,
        source_config: dict[str, Any] | None = None,
        destination_config: dict[str, Any] | None = None,
    ) -> dict[str, Any]:
        """A new source -> receiver connection; returns the connection as the API shows it."""
        name = uuid.uuid4().hex[:10]
        return self.ok(
            "POST",
            "/connections",
            {
                "name": f"c-{name}",
                "source": {"name": f"s-{name}", **({"config": source_config} if source_config else {})},
                "destination": {
                    "name": f"d-{name}",
                    "config": {"url": receiver.url(path), **(destination_config or {})},
                },
                "rules": rules or [],
            },
        )

    @property
    def records(self) -> Any:
        from chalicelib import wiring

        return wiring.container().records


def eventually(check: Callable[[], Any], *, timeout_s: float = 20.0, every_s: float = 0.1) -> Any:
    """Poll until `check` returns something truthy; the pipeline is asynchronous, so tests wait for it."""
    deadline = time.monotonic() + timeout_s
    while True:
        value = check()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"gave up after {timeout_s} s waiting for {check.__doc__ or check}")
        time.sleep(every_s)


@pytest.fixture(scope="module")
def fasthook() -> Iterator[FastHook]:
    with running_local_fasthook() as (url, token, http):
        yield FastHook(url, token, http)


@pytest.fixture()
def receiver() -> Iterator[Receiver]:
    with Receiver() as r:
        yield r
