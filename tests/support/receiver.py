"""A webhook receiver on 127.0.0.1 for tests: it records what arrives and answers as the test scripts.

Delivery tests need a real HTTP peer to prove what FastHook puts on the wire (bytes, headers, path),
and to play the misbehaving receivers FastHook must survive (5xx, redirects, slow answers, bodies that
drip or never end). Every request is recorded before it is answered, so a test can tell "not sent"
from "sent and timed out". Scripted responses are used in order, then the default answer applies.

    with Receiver() as receiver:
        receiver.script(Response(status=500, body=b"nope"))
        ... deliver to receiver.url("/hooks") ...
        [request] = receiver.wait_for(1)

Optional TLS: pass `tls=(certfile, keyfile)` and use `https` URLs.
"""

from __future__ import annotations

import ssl
import threading
import time
from collections import deque
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import TracebackType
from typing import Any


@dataclass(frozen=True)
class Response:
    """One scripted answer. `delay_s` waits before the status line; `drip_s` sends the body a byte at a time."""

    status: int = 200
    body: bytes = b""
    headers: dict[str, str] = field(default_factory=dict)
    delay_s: float = 0.0
    drip_s: float = 0.0


@dataclass(frozen=True)
class ReceivedRequest:
    method: str
    path: str
    query: str
    headers: tuple[tuple[str, str], ...]
    body: bytes
    client_port: int

    def header(self, name: str) -> str | None:
        """A header's value, matched case-insensitively; None when absent."""
        wanted = name.lower()
        return next((value for key, value in self.headers if key.lower() == wanted), None)

    def header_names(self) -> set[str]:
        return {key.lower() for key, _ in self.headers}


class Receiver:
    def __init__(self, *, tls: tuple[str, str] | None = None, default: Response | None = None) -> None:
        self._lock = threading.Lock()
        self._arrived = threading.Condition(self._lock)
        self._requests: list[ReceivedRequest] = []
        self._scripted: deque[Response] = deque()
        self._default = default or Response()
        self._closing = threading.Event()
        self._server = _Server(("127.0.0.1", 0), _Handler)
        self._server.receiver = self
        if tls is not None:
            context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
            context.load_cert_chain(*tls)
            # The handshake runs in the handler's thread, so a client that aborts it cannot stall accept().
            self._server.socket = context.wrap_socket(
                self._server.socket, server_side=True, do_handshake_on_connect=False
            )
        self.scheme = "https" if tls else "http"
        self.port: int = self._server.server_address[1]
        self._thread = threading.Thread(target=self._server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
        self._thread.start()

    def url(self, path: str = "/", *, host: str = "127.0.0.1") -> str:
        return f"{self.scheme}://{host}:{self.port}{path}"

    def script(self, *responses: Response) -> None:
        """Answer the next requests with these responses, in order."""
        with self._lock:
            self._scripted.extend(responses)

    def answer_always(self, response: Response) -> None:
        with self._lock:
            self._default = response

    @property
    def requests(self) -> list[ReceivedRequest]:
        with self._lock:
            return list(self._requests)

    def wait_for(self, count: int, timeout_s: float = 5.0) -> list[ReceivedRequest]:
        """The first `count` requests, waiting up to `timeout_s` for them; AssertionError if they do not come."""
        with self._arrived:
            if not self._arrived.wait_for(lambda: len(self._requests) >= count, timeout=timeout_s):
                raise AssertionError(f"expected {count} request(s), got {len(self._requests)}")
            return self._requests[:count]

    def close(self) -> None:
        self._closing.set()
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=5)

    def __enter__(self) -> Receiver:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()

    # ---- called from handler threads ---------------------------------------------------------------

    def _record(self, request: ReceivedRequest) -> Response:
        with self._arrived:
            self._requests.append(request)
            self._arrived.notify_all()
            return self._scripted.popleft() if self._scripted else self._default

    def _pause(self, seconds: float) -> bool:
        """Sleep unless the receiver is closing; False when it is, so handlers stop at once."""
        return not self._closing.wait(seconds) if seconds > 0 else not self._closing.is_set()


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    block_on_close = False
    receiver: Receiver

    def handle_error(self, request: Any, client_address: Any) -> None:
        pass  # clients that give up mid-answer are what several tests are about


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: _Server

    def log_message(self, format: str, *args: Any) -> None:
        pass

    def _handle(self) -> None:
        body = self._read_body()
        path, _, query = self.path.partition("?")
        response = self.server.receiver._record(
            ReceivedRequest(
                method=self.command,
                path=path,
                query=query,
                headers=tuple(self.headers.items()),
                body=body,
                client_port=self.client_address[1],
            )
        )
        receiver = self.server.receiver
        if not receiver._pause(response.delay_s):
            return
        self.send_response(response.status)
        for name, value in response.headers.items():
            self.send_header(name, value)
        self.send_header("Content-Length", str(len(response.body)))
        self.end_headers()
        if self.command == "HEAD":
            return
        if not response.drip_s:
            self.wfile.write(response.body)
            return
        self.wfile.flush()
        for index in range(len(response.body)):
            if not receiver._pause(response.drip_s):
                return
            self.wfile.write(response.body[index : index + 1])
            self.wfile.flush()

    def _read_body(self) -> bytes:
        if "chunked" in (self.headers.get("Transfer-Encoding") or "").lower():
            chunks = []
            while True:
                size = int(self.rfile.readline().split(b";", 1)[0].strip() or b"0", 16)
                if size == 0:
                    while self.rfile.readline() not in (b"\r\n", b"\n", b""):
                        pass  # trailers
                    return b"".join(chunks)
                chunks.append(self.rfile.read(size))
                self.rfile.readline()
        length = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(length) if length else b""

    do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = do_HEAD = do_OPTIONS = _handle


def wait_until(predicate: Any, timeout_s: float = 5.0) -> bool:
    """Poll `predicate` until it is true or `timeout_s` passes; for effects that arrive asynchronously."""
    end = time.monotonic() + timeout_s
    while time.monotonic() < end:
        if predicate():
            return True
        time.sleep(0.01)
    return bool(predicate())
