"""The local HTTP front of `make run` and the HTTP-level tests: one port for the control API and ingest.

In AWS two fronts sit before FastHook: API Gateway (REST) before the Chalice routes, and a Lambda
function URL before ingest. This server plays both on 127.0.0.1 so a user can curl the same paths:
`/e/{source_id}[/...]` becomes a function URL event (payload format 2.0) for the ingest handler, and
everything else goes through chalice's LocalGateway, the same gateway emulation `chalice local` and
chalice's test client use.

It also does what the deployed gateway does and the app cannot: unknown routes are 404 JSON (API
Gateway's 403 "Missing Authentication Token" becomes 404, as infra/api_extras.json does in AWS), bodies
above FASTHOOK_MAX_BODY_BYTES are refused before they are read, and every error body has FastHook's
`{error, message}` shape. A request can fail; the server never does.
"""

from __future__ import annotations

import base64
import errno
import importlib
import json
import logging
import re
import socket
import threading
import time
import uuid
from collections.abc import Callable
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl

from chalicelib.domain.errors import (
    BadRequestError,
    FastHookError,
    MethodNotAllowedError,
    NotFoundError,
    PayloadTooLargeError,
)

# Not under "fasthook": Chalice sets the app logger of that name to ERROR.
log = logging.getLogger(__name__)

PROJECT_DIR = Path(__file__).resolve().parent.parent
INGEST_MODULE = "chalicelib.entrypoints.ingress"
INGEST_PATH = re.compile(r"^/e/[^/]+(/.*)?$")
# Headers a proxy owns; neither the app's nor ingest's response may set them on our connection.
HOP_BY_HOP = frozenset(
    {
        "connection",
        "keep-alive",
        "transfer-encoding",
        "content-length",
        "upgrade",
        "te",
        "trailer",
        "proxy-authenticate",
        "proxy-authorization",
    }
)
TEXT_TYPES = ("text/", "json", "xml", "javascript", "x-www-form-urlencoded", "yaml", "graphql")
CHUNK = 64 * 1024
DRAIN_SECONDS = 1.0


class PortInUseError(OSError):
    """Another process listens on the port FastHook was asked to serve on."""


class _BodyTooLarge(Exception):
    pass


class _BadBody(Exception):
    pass


def _max_body_bytes() -> int:
    from chalicelib.settings import get_settings

    return get_settings().max_body_bytes


def _chalice_config() -> Any:
    """A chalice Config read from .chalice/config.json the way `chalice local` builds it."""
    from chalice.config import Config

    config_file = PROJECT_DIR / ".chalice" / "config.json"
    from_disk = json.loads(config_file.read_text()) if config_file.exists() else {}
    return Config(
        chalice_stage="dev",
        user_provided_params={},
        config_from_disk=from_disk,
        default_params={
            "project_dir": str(PROJECT_DIR),
            "api_gateway_stage": "api",
            "api_gateway_endpoint_type": "REGIONAL",
            "autogen_policy": True,
        },
    )


def _thread_local_requests(app_obj: Any) -> None:
    """Give the app a per-thread `current_request`, as `chalice local` does, so threads don't mix requests."""
    from chalice.local import LocalChalice

    if not isinstance(app_obj, LocalChalice):
        app_obj.__class__ = type(f"Local{type(app_obj).__name__}", (LocalChalice, type(app_obj)), {})


def _error_name(chalice_code: str) -> str:
    """`MethodNotAllowedError` -> `method_not_allowed`: chalice's error codes in FastHook's casing."""
    if chalice_code == "InternalServerError":
        return FastHookError.error
    stem = chalice_code[: -len("Error")] if chalice_code.endswith("Error") and chalice_code != "Error" else chalice_code
    return re.sub(r"(?<=[a-z0-9])(?=[A-Z])", "_", stem).lower() or "error"


def _json_body(body: dict[str, Any]) -> bytes:
    return json.dumps(body, separators=(",", ":")).encode()


class Reply:
    """A response on its way to the socket."""

    def __init__(self, status: int, body: bytes = b"", headers: list[tuple[str, str]] | None = None) -> None:
        self.status, self.body, self.headers = status, body, headers or []

    @classmethod
    def json(cls, status: int, body: dict[str, Any], headers: list[tuple[str, str]] | None = None) -> Reply:
        return cls(status, _json_body(body), [("Content-Type", "application/json"), *(headers or [])])

    @classmethod
    def error(cls, exc: FastHookError, headers: list[tuple[str, str]] | None = None) -> Reply:
        return cls.json(exc.status_code, exc.body(), headers)


# ---- control API: chalice's LocalGateway ------------------------------------------------------------


def control_reply(gateway: Any, method: str, target: str, headers: dict[str, str], body: bytes | None) -> Reply:
    from chalice.local import LocalGatewayException

    path = target.partition("?")[0]
    try:
        response = gateway.handle_request(method=method, path=target, headers=headers, body=body)
    except LocalGatewayException as exc:
        # FastHook defines no authorizers, so the gateway's only 403 is "no route matches this path".
        if exc.CODE == HTTPStatus.FORBIDDEN:
            return Reply.error(NotFoundError(f"No route for {method} {path}"))
        return _reshape(exc.CODE, {k: str(v) for k, v in (exc.headers or {}).items()}, exc.body, method, path)
    out_headers = {k: str(v) for k, v in (response.get("headers") or {}).items()}
    raw = response.get("body")
    if response.get("isBase64Encoded") and raw is not None:
        raw = base64.b64decode(raw)
    reply = _reshape(int(response["statusCode"]), out_headers, raw, method, path)
    for name, values in (response.get("multiValueHeaders") or {}).items():
        reply.headers.extend((name, str(value)) for value in values)
    return reply


def _reshape(status: int, headers: dict[str, str], raw: str | bytes | None, method: str, path: str) -> Reply:
    """Turn chalice's own `{Code, Message}` answers into FastHook's `{error, message}`."""
    if status == HTTPStatus.METHOD_NOT_ALLOWED:
        allowed = headers.get("Allow", "")
        message = f"{method} is not allowed on {path}" + (f"; allowed: {allowed}" if allowed else "")
        return Reply.error(MethodNotAllowedError(message), [("Allow", allowed)] if allowed else [])
    body = raw.encode() if isinstance(raw, str) else (raw or b"")
    parsed = _chalice_error(body)
    if parsed is not None:
        code, message = parsed
        headers = {k: v for k, v in headers.items() if k.lower() != "content-type"}
        return Reply(
            status,
            _json_body({"error": _error_name(code), "message": message}),
            [("Content-Type", "application/json"), *headers.items()],
        )
    return Reply(status, body, list(headers.items()))


def _chalice_error(body: bytes) -> tuple[str, str] | None:
    if not body.startswith(b"{") or len(body) > 4096:
        return None
    try:
        data = json.loads(body)
    except ValueError:
        return None
    if isinstance(data, dict) and "error" not in data:
        if "Code" in data:
            return str(data["Code"]), str(data.get("Message", ""))
        if set(data) == {"message"}:  # API Gateway's own shape, e.g. from an authorizer
            return "Error", str(data["message"])
    return None


# ---- ingest: a Lambda function URL event ------------------------------------------------------------


def function_url_event(
    *, method: str, target: str, headers: list[tuple[str, str]], body: bytes, source_ip: str, host: str
) -> dict[str, Any]:
    """The event a Lambda function URL sends for this request (payload format version 2.0)."""
    raw_path, _, raw_query = target.partition("?")
    merged: dict[str, str] = {}
    cookies: list[str] = []
    for name, value in headers:
        key = name.lower()
        if key == "cookie":
            cookies.extend(part.strip() for part in value.split(";") if part.strip())
            continue
        merged[key] = f"{merged[key]},{value}" if key in merged else value
    now = time.time()
    event: dict[str, Any] = {
        "version": "2.0",
        "routeKey": "$default",
        "rawPath": raw_path,
        "rawQueryString": raw_query,
        "headers": merged,
        "requestContext": {
            "accountId": "anonymous",
            "apiId": "fasthook-local",
            "domainName": host,
            "domainPrefix": host.split(".")[0],
            "http": {
                "method": method,
                "path": raw_path,
                "protocol": "HTTP/1.1",
                "sourceIp": source_ip,
                "userAgent": merged.get("user-agent", ""),
            },
            "requestId": str(uuid.uuid4()),
            "routeKey": "$default",
            "stage": "$default",
            "time": time.strftime("%d/%b/%Y:%H:%M:%S +0000", time.gmtime(now)),
            "timeEpoch": int(now * 1000),
        },
        "isBase64Encoded": False,
    }
    if cookies:
        event["cookies"] = cookies
    if raw_query:
        query: dict[str, str] = {}
        for key, value in parse_qsl(raw_query, keep_blank_values=True):
            query[key] = f"{query[key]},{value}" if key in query else value
        event["queryStringParameters"] = query
    if body:
        # Function URLs pass text as text and everything else base64-encoded.
        content_type = merged.get("content-type", "").lower()
        text = None
        if any(marker in content_type for marker in TEXT_TYPES):
            try:
                text = body.decode("utf-8")
            except UnicodeDecodeError:
                text = None
        if text is None:
            event["body"], event["isBase64Encoded"] = base64.b64encode(body).decode("ascii"), True
        else:
            event["body"] = text
    return event


def function_url_reply(result: Any) -> Reply:
    """Write a handler's function URL result back as HTTP, including the implicit 200 JSON form."""
    if not (isinstance(result, dict) and "statusCode" in result):
        return Reply(HTTPStatus.OK, json.dumps(result).encode(), [("Content-Type", "application/json")])
    headers = [(str(k), str(v)) for k, v in (result.get("headers") or {}).items() if str(k).lower() not in HOP_BY_HOP]
    headers.extend(("Set-Cookie", str(cookie)) for cookie in result.get("cookies") or [])
    raw = result.get("body")
    if raw is None:
        body = b""
    elif result.get("isBase64Encoded"):
        body = base64.b64decode(raw)
    else:
        body = raw.encode() if isinstance(raw, str) else json.dumps(raw).encode()
    if body and not any(name.lower() == "content-type" for name, _ in headers):
        headers.append(("Content-Type", "application/json"))
    return Reply(int(result["statusCode"]), body, headers)


def _ingest_handler() -> Callable[[dict[str, Any], Any], Any] | None:
    try:
        module = importlib.import_module(INGEST_MODULE)
    except ModuleNotFoundError as exc:
        if exc.name != INGEST_MODULE:
            raise
        importlib.invalidate_caches()  # so the module is found as soon as it lands, without a restart
        return None
    return getattr(module, "handle_function_url", None)


def ingest_reply(event: dict[str, Any]) -> Reply:
    handler = _ingest_handler()
    if handler is None:
        return Reply.json(
            HTTPStatus.NOT_IMPLEMENTED, {"error": "not_implemented", "message": "ingest is not available yet"}
        )
    from chalice.local import LambdaContext

    context = LambdaContext(function_name="fasthook-local-ingest", memory_size=512, max_runtime_ms=30_000)
    return function_url_reply(handler(event, context))


# ---- HTTP -------------------------------------------------------------------------------------------


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "FastHook-local"
    # A client that stops sending mid-request must not pin a thread forever.
    timeout = 60
    server: FastHookHTTPServer

    def _handle(self) -> None:
        started = time.monotonic()
        path = self.path.partition("?")[0]
        status = 0
        try:
            reply = self._route(path)
        except _BodyTooLarge:
            reply = Reply.error(PayloadTooLargeError(f"request body is larger than {_max_body_bytes()} bytes"))
            self.close_connection = True
        except _BadBody as exc:
            reply = Reply.error(BadRequestError(str(exc)))
            self.close_connection = True
        except (TimeoutError, ConnectionError):
            self.close_connection = True
            log.info("%s %s dropped: client stopped sending", self.command, path)
            return
        except Exception:
            # The process boundary: one broken request must cost one 500, never the server.
            log.exception("%s %s failed", self.command, path)
            reply = Reply.error(FastHookError("An internal server error occurred."))
        try:
            status = reply.status
            self._send(reply)
        except (BrokenPipeError, ConnectionResetError):
            self.close_connection = True
        finally:
            log.info("%s %s %s %.0fms", self.command, path, status or "-", (time.monotonic() - started) * 1000)

    do_GET = do_HEAD = do_POST = do_PUT = do_PATCH = do_DELETE = do_OPTIONS = _handle

    def __getattr__(self, name: str) -> Any:
        # Any other method (TRACE, QUERY, a made-up one) gets the gateway's 405 or 404, as in AWS,
        # rather than the stdlib's 501: a client's odd method is its mistake, not a server failure.
        if name.startswith("do_"):
            return self._handle
        raise AttributeError(name)

    def _route(self, path: str) -> Reply:
        body = self._read_body()
        if INGEST_PATH.match(path):
            event = function_url_event(
                method=self.command,
                target=self.path,
                headers=list(self.headers.items()),
                body=body,
                source_ip=self.client_address[0],
                host=self.headers.get("host") or f"127.0.0.1:{self.server.server_port}",
            )
            return ingest_reply(event)
        headers: dict[str, str] = {}
        for name, value in self.headers.items():
            key = name.lower()
            headers[key] = f"{headers[key]}, {value}" if key in headers else value
        return control_reply(self.server.gateway, self.command, self.path, headers, body or None)

    def _read_body(self) -> bytes:
        limit = _max_body_bytes()
        if "chunked" in self.headers.get("transfer-encoding", "").lower():
            return self._read_chunked(limit)
        declared = self.headers.get("content-length")
        if declared is None:
            return b""
        if not declared.strip().isdigit():
            raise _BadBody("Content-Length must be a whole number")
        length = int(declared)
        if length > limit:
            raise _BodyTooLarge
        return self.rfile.read(length)

    def _read_chunked(self, limit: int) -> bytes:
        parts: list[bytes] = []
        total = 0
        while True:
            line = self.rfile.readline(1024)
            try:
                size = int(line.split(b";")[0].strip(), 16)
            except ValueError:
                raise _BadBody("malformed chunked body") from None
            if size == 0:
                while self.rfile.readline(1024) not in (b"\r\n", b"\n", b""):
                    pass  # trailers carry nothing we use
                return b"".join(parts)
            total += size
            if total > limit:
                raise _BodyTooLarge
            parts.append(self.rfile.read(size))
            self.rfile.readline(8)

    def handle_expect_100(self) -> bool:
        # Refuse an oversized body before the client sends it (curl waits for 100 above 1 MB).
        declared = self.headers.get("content-length", "")
        if declared.strip().isdigit() and int(declared) > _max_body_bytes():
            self.close_connection = True
            self._send(Reply.error(PayloadTooLargeError(f"request body is larger than {_max_body_bytes()} bytes")))
            log.info("%s %s 413 (before body)", self.command, self.path.partition("?")[0])
            return False
        return super().handle_expect_100()

    def _send(self, reply: Reply) -> None:
        self.send_response(reply.status)
        for name, value in reply.headers:
            if name.lower() not in HOP_BY_HOP:
                self.send_header(name, value)
        self.send_header("Content-Length", str(len(reply.body)))
        if self.close_connection:
            self.send_header("Connection", "close")
        self.end_headers()
        if self.command != "HEAD" and reply.body:
            self.wfile.write(reply.body)
        self.wfile.flush()
        if self.close_connection:
            self._drain()

    def _drain(self) -> None:
        """Discard what the client is still sending, briefly, so closing doesn't reset our answer away."""
        try:
            self.connection.shutdown(socket.SHUT_WR)
            self.connection.settimeout(0.2)
            deadline = time.monotonic() + DRAIN_SECONDS
            while time.monotonic() < deadline and self.connection.recv(CHUNK):
                pass
        except OSError:
            pass

    def send_error(self, code: int, message: str | None = None, explain: str | None = None) -> None:
        # The stdlib's own errors (bad request line, unknown method, ...) in FastHook's JSON shape.
        self.close_connection = True
        status = HTTPStatus(code)
        reply = Reply.json(
            code,
            {
                "error": status.phrase.lower().replace(" ", "_").replace("-", "_"),
                "message": message or status.description,
            },
        )
        try:
            self._send(reply)
        except OSError:
            pass
        log.info("%s %s %s", getattr(self, "command", "-"), (getattr(self, "path", "") or "-").partition("?")[0], code)

    def log_request(self, code: int | str = "-", size: int | str = "-") -> None:
        pass  # _handle writes the one access line, without query strings (they can carry secrets)

    def log_message(self, format: str, *args: Any) -> None:
        log.debug(format, *args)


class FastHookHTTPServer(ThreadingHTTPServer):
    def __init__(self, address: tuple[str, int], gateway: Any) -> None:
        self.gateway = gateway
        super().__init__(address, _Handler)

    def get_request(self) -> tuple[socket.socket, Any]:
        conn, address = super().get_request()
        # Headers and body go out in separate writes; without this, Nagle's algorithm meets the
        # client's delayed ACK and every answer waits ~40 ms.
        conn.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        return conn, address


class LocalServer:
    """FastHook on 127.0.0.1:<port>: bind at construction (so a taken port fails early), serve in a thread."""

    def __init__(self, port: int, *, host: str = "127.0.0.1", app_obj: Any = None) -> None:
        from chalice.local import LocalGateway

        if app_obj is None:
            from app import app as app_obj
        _thread_local_requests(app_obj)
        try:
            self.httpd = FastHookHTTPServer((host, port), LocalGateway(app_obj, _chalice_config()))
        except OSError as exc:
            if exc.errno != errno.EADDRINUSE:
                raise
            raise PortInUseError(exc.errno, f"{host}:{port} is already in use by another process") from exc
        self.host, self.port = host, int(self.httpd.server_address[1])
        self._thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    def start(self) -> LocalServer:
        self._thread = threading.Thread(
            target=self.httpd.serve_forever, kwargs={"poll_interval": 0.2}, name="fasthook-http", daemon=True
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        if self._thread is not None:
            self.httpd.shutdown()
            self._thread.join(timeout=5)
            self._thread = None
        self.httpd.server_close()

    def __enter__(self) -> LocalServer:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()
