"""Sends an `OutboundRequest` to a user's HTTP destination and reports what happened, whatever happens.

A destination URL is user input, and FastHook runs inside someone's cloud account, so this is the
one place that must not become a proxy into that account:
- The host is resolved here, before any connection, and every address it resolves to is checked:
  loopback, private, link-local (cloud metadata at 169.254.169.254), CGNAT, unspecified, multicast,
  reserved and other non-global ranges, including IPv4 addresses embedded in IPv6 (mapped, 6to4,
  NAT64), are refused with SSRF_BLOCKED, unless the sender was built with `allow_private` (local
  runs and tests). A name that resolves to any refused address is refused as a whole.
- The connection then goes to the address that was checked, never to a second lookup of the name
  (which a rebinding DNS server could answer differently). The request still carries the name in
  its Host header, and for https the name is what TLS sends as SNI and verifies the certificate
  against.
- Proxies, .netrc credentials and cookies never apply: deliveries of different teams share this
  sender, so nothing from one response may leak into the next request.

A slow receiver must not hold a worker past its timeout, so `timeout_s` bounds the whole call: the
lookup, the connect, and every byte of the response. Socket timeouts alone cannot promise that (a
receiver that drips one byte a second never trips a read timeout), so a watchdog shuts the socket
when the deadline passes. Only the first `max_response_bytes` of a response are read.

Every network failure becomes a DeliveryResult with an error code; nothing here raises for the
network, and error messages never contain the URL's path or query (they may carry credentials).
"""

from __future__ import annotations

import ipaddress
import socket
import ssl
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from concurrent.futures import TimeoutError as FutureTimeoutError
from http.cookiejar import DefaultCookiePolicy
from typing import Any, Final

import requests
import urllib3
from requests.adapters import HTTPAdapter
from urllib3.connection import HTTPConnection, HTTPSConnection
from urllib3.connectionpool import HTTPConnectionPool, HTTPSConnectionPool
from urllib3.exceptions import ConnectTimeoutError, LocationParseError, NewConnectionError

from chalicelib.domain.outbound import DeliveryErrorCode, DeliveryResult, OutboundRequest

DEFAULT_MAX_RESPONSE_BYTES: Final = 64 * 1024
DEFAULT_USER_AGENT: Final = "FastHook/1.0"
_CHUNK_BYTES: Final = 16 * 1024
_MAX_MESSAGE_CHARS: Final = 300
_DEFAULT_PORTS: Final = {"http": 80, "https": 443}

Resolver = Callable[[str, int], Sequence[str]]

# Ranges no delivery may reach. Python's own `is_global` is consulted as well; this list is spelled
# out so the policy can be read here, and does not shift between Python versions.
_BLOCKED_NETWORKS: Final = tuple(
    (ipaddress.ip_network(net), reason)
    for net, reason in (
        ("0.0.0.0/8", "unspecified"),
        ("10.0.0.0/8", "private"),
        ("100.64.0.0/10", "shared (CGNAT)"),
        ("127.0.0.0/8", "loopback"),
        ("169.254.0.0/16", "link-local"),
        ("172.16.0.0/12", "private"),
        ("192.0.0.0/24", "reserved"),
        ("192.168.0.0/16", "private"),
        ("198.18.0.0/15", "reserved"),
        ("224.0.0.0/4", "multicast"),
        ("240.0.0.0/4", "reserved"),
        ("::/128", "unspecified"),
        ("::1/128", "loopback"),
        ("fc00::/7", "private"),
        ("fe80::/10", "link-local"),
        ("fec0::/10", "site-local"),
        ("ff00::/8", "multicast"),
    )
)
_NAT64 = ipaddress.ip_network("64:ff9b::/96")


def blocked_address_reason(address: str) -> str | None:
    """Why a delivery may not connect to `address` ("loopback", "private", ...), or None when it may."""
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        return "not an IP address"
    if isinstance(ip, ipaddress.IPv6Address):
        embedded = ip.ipv4_mapped or ip.sixtofour
        if embedded is None and ip in _NAT64:
            embedded = ipaddress.IPv4Address(int(ip) & 0xFFFFFFFF)
        if embedded is not None:
            # The IPv4 address is where the packets end up; judge that one.
            inner = blocked_address_reason(str(embedded))
            return None if inner is None else f"{inner} (IPv4 inside IPv6)"
        ip = ipaddress.IPv6Address(ip.compressed.split("%", 1)[0])
    for network, reason in _BLOCKED_NETWORKS:
        if ip.version == network.version and ip in network:
            return reason
    if ip.is_multicast:
        return "multicast"
    if not ip.is_global or ip.is_reserved:
        return "not globally routable"
    return None


def system_resolver(host: str, port: int) -> list[str]:
    """Every address the system resolver gives for `host`, in its order of preference, once each."""
    infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    return list(dict.fromkeys(str(info[4][0]) for info in infos))


class HttpSender:
    """Delivers OutboundRequests over HTTP(S); one per process, reused so connections are kept alive.

    `resolver` and `ca_bundle` exist for tests and private deployments: a resolver maps a host to
    its addresses (default: the system's), a CA bundle replaces the system's trusted roots.
    """

    def __init__(
        self,
        allow_private: bool,
        *,
        max_response_bytes: int = DEFAULT_MAX_RESPONSE_BYTES,
        user_agent: str = DEFAULT_USER_AGENT,
        resolver: Resolver = system_resolver,
        ca_bundle: str | None = None,
    ) -> None:
        self._allow_private = allow_private
        self._max_response_bytes = max_response_bytes
        self._user_agent = user_agent
        self._resolver = resolver
        self._verify: bool | str = ca_bundle or True
        self._session = requests.Session()
        # No proxies or .netrc from the environment: either would bypass the address check or add
        # credentials nobody configured.
        self._session.trust_env = False
        self._session.cookies.set_policy(DefaultCookiePolicy(allowed_domains=[]))
        self._adapter = _PinnedAdapter()
        self._session.mount("http://", self._adapter)
        self._session.mount("https://", self._adapter)
        # getaddrinfo has no timeout of its own; a lookup runs here so the caller can stop waiting.
        self._lookups = ThreadPoolExecutor(max_workers=4, thread_name_prefix="fasthook-dns")

    def close(self) -> None:
        self._session.close()
        self._lookups.shutdown(wait=False, cancel_futures=True)

    def __enter__(self) -> HttpSender:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def send(self, req: OutboundRequest) -> DeliveryResult:
        """One HTTP call, finished within `req.timeout_s`; network trouble comes back as `error_code`, never raised."""
        started = time.monotonic()
        deadline = started + req.timeout_s
        call = _Call(req, started)

        try:
            prepared = self._prepare(req)
        except requests.exceptions.InvalidHeader:
            return call.failed(DeliveryErrorCode.INVALID_REQUEST, "A header cannot be sent over HTTP (name or value)")
        except (requests.exceptions.RequestException, LocationParseError, ValueError):
            return call.failed(DeliveryErrorCode.INVALID_URL, "The destination URL is not a valid http(s) URL")
        if prepared is None:
            return call.failed(DeliveryErrorCode.INVALID_URL, "The destination URL is not a valid http(s) URL")
        target, host, port = prepared
        call.host = host

        try:
            addresses = self._lookup(host, port, deadline)
        except (FutureTimeoutError, TimeoutError):
            return call.failed(DeliveryErrorCode.TIMEOUT, f"Looking up {host} took longer than {req.timeout_s:g} s")
        except (OSError, UnicodeError) as exc:
            return call.failed(DeliveryErrorCode.DNS_LOOKUP_FAILED, f"Could not resolve {host}: {_describe(exc)}")
        if not addresses:
            return call.failed(DeliveryErrorCode.DNS_LOOKUP_FAILED, f"Could not resolve {host}: no addresses")

        if not self._allow_private:
            for address in addresses:
                reason = blocked_address_reason(address)
                if reason is not None:
                    return call.failed(
                        DeliveryErrorCode.SSRF_BLOCKED,
                        f"{host} resolves to {address}, a {reason} address; deliveries may only reach public hosts",
                    )

        watchdog = _Watchdog(deadline)
        _in_flight.watchdog = watchdog
        watchdog.start()
        try:
            return self._send_pinned(call, target, addresses, host, port, deadline, watchdog)
        finally:
            watchdog.stop()
            _in_flight.watchdog = None

    def _prepare(self, req: OutboundRequest) -> tuple[_PinnedRequest, str, int] | None:
        headers: dict[str, str | bytes] = {"User-Agent": self._user_agent}
        for name, value in req.headers:
            headers[name] = _header_value(value)
        # The response is read by FastHook and stored for people to read: ask for it uncompressed.
        headers["Accept-Encoding"] = "identity"
        prepared = _PinnedRequest()
        prepared.prepare(method=req.method, url=req.url, headers=headers, data=req.body or None)
        url = urllib3.util.parse_url(prepared.url)
        if url.scheme not in _DEFAULT_PORTS or not url.host:
            return None
        host = url.host.strip("[]")
        port = url.port or _DEFAULT_PORTS[url.scheme]
        # The connection goes to an IP address, so the name the receiver expects is set here.
        host_header = url.host if url.port in (None, _DEFAULT_PORTS[url.scheme]) else f"{url.host}:{url.port}"
        # Replaces any Host the request brought: only the URL decides which virtual host is addressed.
        prepared.headers["Host"] = host_header
        return prepared, host, port

    def _lookup(self, host: str, port: int, deadline: float) -> list[str]:
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            raise TimeoutError
        return list(self._lookups.submit(self._resolver, host, port).result(timeout=remaining))

    def _send_pinned(
        self,
        call: _Call,
        prepared: _PinnedRequest,
        addresses: Sequence[str],
        host: str,
        port: int,
        deadline: float,
        watchdog: _Watchdog,
    ) -> DeliveryResult:
        failure: DeliveryResult | None = None
        for address in addresses:
            remaining = deadline - time.monotonic()
            if remaining <= 0 or watchdog.fired:
                return call.timed_out()
            prepared.pinned_address = address
            try:
                response = self._adapter.send(
                    prepared, stream=True, timeout=(remaining, remaining), verify=self._verify, cert=None, proxies={}
                )
            except (requests.exceptions.RequestException, urllib3.exceptions.HTTPError, OSError) as exc:
                if watchdog.fired or _is_timeout(exc):
                    return call.timed_out()
                failure = call.failed(*_classify(exc, host, address, port))
                # Nothing was sent when the connect itself failed: the next address may do better.
                if _connect_failed(exc):
                    continue
                return failure
            return self._read(call, response, deadline, watchdog)
        return failure or call.timed_out()

    def _read(self, call: _Call, response: requests.Response, deadline: float, watchdog: _Watchdog) -> DeliveryResult:
        cap = self._max_response_bytes
        chunks: list[bytes] = []
        received = 0
        status = response.status_code
        headers = dict(response.headers)
        try:
            while received <= cap:
                if time.monotonic() >= deadline:
                    return call.timed_out(status=status, body=b"".join(chunks)[:cap], headers=headers)
                chunk = response.raw.read(min(_CHUNK_BYTES, cap + 1 - received), decode_content=False)
                if not chunk:
                    break
                chunks.append(chunk)
                received += len(chunk)
        except (urllib3.exceptions.HTTPError, requests.exceptions.RequestException, OSError) as exc:
            body = b"".join(chunks)[:cap]
            if watchdog.fired or _is_timeout(exc):
                return call.timed_out(status=status, body=body, headers=headers)
            code, message = _classify(exc, call.host, None, None)
            return call.failed(code, message, status=status, body=body, headers=headers)
        finally:
            # A body read to its end returned the connection to the pool already; closing here only
            # drops a connection whose body we stopped reading.
            response.close()
        body = b"".join(chunks)
        return call.answered(status, body[:cap], truncated=received > cap, headers=headers)


class _Call:
    """Builds the result of one send, with its latency measured from the start of the call."""

    def __init__(self, req: OutboundRequest, started: float) -> None:
        self.req = req
        self.started = started
        self.host = ""

    def _latency_ms(self) -> int:
        return int((time.monotonic() - self.started) * 1000)

    def answered(self, status: int, body: bytes, *, truncated: bool, headers: dict[str, str]) -> DeliveryResult:
        return DeliveryResult(
            ok=200 <= status < 300,
            status=status,
            response_body=body,
            truncated=truncated,
            response_headers=headers,
            response_latency_ms=self._latency_ms(),
        )

    def failed(
        self,
        code: DeliveryErrorCode,
        message: str,
        *,
        status: int | None = None,
        body: bytes = b"",
        headers: dict[str, str] | None = None,
    ) -> DeliveryResult:
        return DeliveryResult(
            ok=False,
            status=status,
            response_body=body,
            response_headers=headers or {},
            error_code=code,
            error_message=message[:_MAX_MESSAGE_CHARS],
            response_latency_ms=self._latency_ms(),
        )

    def timed_out(
        self, *, status: int | None = None, body: bytes = b"", headers: dict[str, str] | None = None
    ) -> DeliveryResult:
        message = f"The destination did not answer within {self.req.timeout_s:g} s"
        return self.failed(DeliveryErrorCode.TIMEOUT, message, status=status, body=body, headers=headers)


# ---- connecting to the checked address -------------------------------------------------------------


class _PinnedRequest(requests.PreparedRequest):
    """A prepared request that knows which checked IP address it may connect to."""

    pinned_address: str | None = None


class _PinnedAdapter(HTTPAdapter):
    """Connects to `request.pinned_address` instead of resolving the URL's host again.

    Pools are keyed by that address (and, for https, by the name TLS verifies), so a keep-alive
    connection is only reused for the same checked address.
    """

    def init_poolmanager(self, *args: Any, **kwargs: Any) -> None:
        super().init_poolmanager(*args, **kwargs)
        self.poolmanager.pool_classes_by_scheme = {"http": _WatchedHTTPPool, "https": _WatchedHTTPSPool}

    def build_connection_pool_key_attributes(
        self, request: requests.PreparedRequest, verify: Any, cert: Any = None
    ) -> tuple[dict[str, Any], dict[str, Any]]:
        host_params, pool_kwargs = super().build_connection_pool_key_attributes(request, verify, cert)
        address = getattr(request, "pinned_address", None)
        if address is None:
            # Fail closed: a request that skipped the address check must never reach a socket.
            raise RuntimeError("refusing to connect to an address that was not checked")
        if host_params["scheme"] == "https":
            pool_kwargs["server_hostname"] = host_params["host"]
        host_params["host"] = address
        return host_params, pool_kwargs


class _Watchdog:
    """Shuts the socket of the call in flight when its deadline passes, waking any blocked read."""

    def __init__(self, deadline: float) -> None:
        self._deadline = deadline
        self._lock = threading.Lock()
        self._connection: HTTPConnection | None = None
        self._timer: threading.Timer | None = None
        self.fired = False

    def start(self) -> None:
        self._timer = threading.Timer(max(0.0, self._deadline - time.monotonic()), self._fire)
        self._timer.daemon = True
        self._timer.start()

    def stop(self) -> None:
        if self._timer is not None:
            self._timer.cancel()

    def attach(self, connection: HTTPConnection) -> None:
        with self._lock:
            self._connection = connection
            if self.fired:
                _shut(connection)

    def _fire(self) -> None:
        with self._lock:
            self.fired = True
            if self._connection is not None:
                _shut(self._connection)


def _shut(connection: HTTPConnection) -> None:
    sock = connection.sock
    if sock is None:
        return
    try:
        # The plain socket's shutdown, also for TLS: it wakes the reader without touching SSL state
        # that the reading thread is using.
        socket.socket.shutdown(sock, socket.SHUT_RDWR)
    except OSError:
        pass  # already closed: nothing left to wake


_in_flight = threading.local()


def _watch(connection: HTTPConnection) -> None:
    watchdog = getattr(_in_flight, "watchdog", None)
    if watchdog is not None:
        watchdog.attach(connection)


class _WatchedHTTPConnection(HTTPConnection):
    def connect(self) -> None:
        _watch(self)
        super().connect()

    def request(self, *args: Any, **kwargs: Any) -> None:
        _watch(self)
        super().request(*args, **kwargs)


class _WatchedHTTPSConnection(HTTPSConnection):
    def connect(self) -> None:
        _watch(self)
        super().connect()

    def request(self, *args: Any, **kwargs: Any) -> None:
        _watch(self)
        super().request(*args, **kwargs)


class _WatchedHTTPPool(HTTPConnectionPool):
    ConnectionCls = _WatchedHTTPConnection


class _WatchedHTTPSPool(HTTPSConnectionPool):
    ConnectionCls = _WatchedHTTPSConnection


# ---- naming failures ---------------------------------------------------------------------------------


def _header_value(value: str) -> str | bytes:
    # http.client sends str headers as Latin-1; anything else goes as its UTF-8 bytes instead of failing.
    try:
        value.encode("latin-1")
    except UnicodeEncodeError:
        return value.encode("utf-8")
    return value


def _chain(exc: BaseException) -> Iterator[BaseException]:
    """The exception and everything it wraps: causes, contexts, urllib3's `reason`, requests' args."""
    seen: set[int] = set()
    todo = [exc]
    while todo and len(seen) < 32:
        current = todo.pop(0)
        if id(current) in seen:
            continue
        seen.add(id(current))
        yield current
        nested = [current.__cause__, current.__context__, getattr(current, "reason", None), *current.args]
        todo.extend(item for item in nested if isinstance(item, BaseException))


def _is_timeout(exc: BaseException) -> bool:
    # urllib3's NewConnectionError subclasses its TimeoutError for history's sake; it is no timeout.
    return any(
        isinstance(e, (TimeoutError, requests.exceptions.Timeout, urllib3.exceptions.TimeoutError))
        and not isinstance(e, NewConnectionError)
        for e in _chain(exc)
    )


def _connect_failed(exc: BaseException) -> bool:
    return any(isinstance(e, (NewConnectionError, ConnectTimeoutError)) for e in _chain(exc))


def _describe(exc: BaseException) -> str:
    """A short reason from the innermost exception, which names neither the URL nor its query."""
    innermost = list(_chain(exc))[-1]
    if isinstance(innermost, ssl.SSLCertVerificationError) and innermost.verify_message:
        return f"certificate verify failed: {innermost.verify_message}"
    if isinstance(innermost, ssl.SSLError) and innermost.reason:
        return str(innermost.reason)
    if isinstance(innermost, OSError) and innermost.strerror:
        return innermost.strerror
    text = str(innermost) or type(innermost).__name__
    return text.split(" (Caused by", 1)[0]


def _classify(exc: BaseException, host: str, address: str | None, port: int | None) -> tuple[DeliveryErrorCode, str]:
    chain = list(_chain(exc))
    shown = f"[{address}]" if address and ":" in address else address
    where = f"{host} ({shown}:{port})" if address and address != host else (f"{shown}:{port}" if address else host)
    tls = next((e for e in chain if isinstance(e, (ssl.SSLError, ssl.CertificateError))), None)
    if tls is not None or any(isinstance(e, requests.exceptions.SSLError) for e in chain):
        reason = _describe(tls) if tls is not None else "handshake failed"
        return DeliveryErrorCode.TLS_ERROR, f"TLS with {where} failed: {reason}"
    if any(isinstance(e, ConnectionRefusedError) for e in chain):
        return DeliveryErrorCode.CONNECTION_REFUSED, f"{where} refused the connection"
    return DeliveryErrorCode.CONNECTION_ERROR, f"Connection to {where} failed: {_describe(exc)}"
