"""A loopback webhook receiver that notes when each delivery arrived, keyed by FastHook's request id.

tests/support/receiver.py records what arrives but not when; the bench needs arrival times on the
same clock as the send times (time.perf_counter) to measure ingest-to-receiver latency.
"""

from __future__ import annotations

import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


class TimedReceiver:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.arrivals: dict[str, float] = {}  # request id -> first arrival (perf_counter)
        self.deliveries = 0  # every request, duplicates included
        self._server = _Server(("127.0.0.1", 0), _Handler)
        self._server.receiver = self
        self.port: int = self._server.server_address[1]
        self._thread = threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.05}, name="bench-receiver", daemon=True
        )

    def url(self, path: str = "/hooks") -> str:
        return f"http://127.0.0.1:{self.port}{path}"

    def start(self) -> TimedReceiver:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=5)

    def arrived(self, request_id: str | None, at: float) -> None:
        with self._lock:
            self.deliveries += 1
            if request_id and request_id not in self.arrivals:
                self.arrivals[request_id] = at

    def count_of(self, request_ids: set[str]) -> int:
        with self._lock:
            return sum(1 for r in request_ids if r in self.arrivals)


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    receiver: TimedReceiver


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: _Server

    def log_message(self, format: str, *args: Any) -> None:
        pass

    def _handle(self) -> None:
        arrived = time.perf_counter()
        length = int(self.headers.get("Content-Length") or 0)
        if length:
            self.rfile.read(length)
        self.server.receiver.arrived(self.headers.get("x-fasthook-request-id"), arrived)
        self.send_response(200)
        self.send_header("Content-Length", "0")
        self.end_headers()

    do_POST = do_PUT = do_PATCH = do_DELETE = do_GET = _handle
