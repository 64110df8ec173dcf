"""The whole of FastHook on one machine for HTTP-level tests: embedded stack, local server, workers, a login."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import requests


@contextmanager
def running_local_fasthook(
    *, workers: bool = True, sweep_every_s: float = 2.0
) -> Iterator[tuple[str, str, requests.Session]]:
    """Start moto, the server and (unless `workers` is False) the workers as `make run` does.

    Yields (base URL, demo session token, HTTP session). Without workers a test starts its own.
    """
    from local.server import LocalServer
    from local.stack import EmbeddedStack
    from local.workers import Workers

    server = LocalServer(0)
    stack = EmbeddedStack(http_port=server.port).start()
    server.start()
    pollers = Workers(sweep_every_s=sweep_every_s).start() if workers else None
    http = requests.Session()
    try:
        token = http.post(f"{server.url}/v1/auth/demo/login", timeout=30).json()["token"]
        yield server.url, token, http
    finally:
        if pollers is not None:
            pollers.stop()
        server.stop()
        stack.stop()
