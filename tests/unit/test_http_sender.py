"""The HTTP sender against real loopback receivers: what arrives, what comes back, and what is refused.

Only 127.0.0.1 is ever contacted. Addresses the SSRF guard must refuse (10.0.0.1, 169.254.169.254,
...) are refused before any socket connects; a Python audit hook records every `socket.connect` made
by the test's thread, so the tests prove that rather than trust it.
"""

from __future__ import annotations

import datetime
import socket
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from chalicelib.adapters.http_sender import HttpSender, blocked_address_reason
from chalicelib.domain.outbound import DeliveryErrorCode, OutboundRequest, verify_signature
from tests.support.deliveries import SECRET, a_delivery
from tests.support.receiver import Receiver, Response

# ---- recording socket connects ------------------------------------------------------------------------

_connects: list[Any] = []
_recording = threading.local()


def _audit(event: str, args: tuple[Any, ...]) -> None:
    if event == "socket.connect" and getattr(_recording, "on", False):
        _connects.append(args[1])


sys.addaudithook(_audit)  # audit hooks cannot be removed; this one only acts while a test records


class ConnectLog:
    @property
    def addresses(self) -> list[Any]:
        return list(_connects)


@pytest.fixture()
def connects() -> Iterator[ConnectLog]:
    """Every address the test's own thread connects a socket to while the test runs."""
    _connects.clear()
    _recording.on = True
    try:
        yield ConnectLog()
    finally:
        _recording.on = False
        _connects.clear()


@pytest.fixture()
def receiver() -> Iterator[Receiver]:
    with Receiver() as running:
        yield running


@pytest.fixture()
def sender() -> Iterator[HttpSender]:
    """A sender that may reach loopback, as in local runs and tests."""
    with HttpSender(allow_private=True) as running:
        yield running


@pytest.fixture()
def guarded() -> Iterator[HttpSender]:
    """A sender as deployed: only public addresses."""
    with HttpSender(allow_private=False) as running:
        yield running


def request(url: str, *, method: str = "POST", body: bytes = b"{}", timeout_s: float = 5.0, **headers: str):
    return OutboundRequest(method=method, url=url, headers=tuple(headers.items()), body=body, timeout_s=timeout_s)


def delivery(url: str, **overrides: Any) -> OutboundRequest:
    return a_delivery(overrides.pop("destination", {"type": "HTTP", "config": {"url": url}}), **overrides)


def free_port() -> int:
    """A loopback port nobody listens on (bound, then released)."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


# ---- what arrives ---------------------------------------------------------------------------------------


def test_a_binary_body_arrives_byte_for_byte(receiver, sender):
    # Given a body with every byte value, including NUL and invalid UTF-8
    body = bytes(range(256)) * 16 + b"\xff\xfe\x00"
    # When it is sent
    result = sender.send(delivery(receiver.url("/hooks"), body=body, headers={"Content-Type": "image/png"}))
    # Then the receiver got exactly those bytes
    [got] = receiver.wait_for(1)
    assert result.ok and result.status == 200
    assert got.body == body
    assert got.header("content-type") == "image/png"


def test_a_one_mebibyte_body_arrives_whole(receiver, sender):
    body = (b"0123456789abcdef" * 65536)[: 1024 * 1024]
    result = sender.send(delivery(receiver.url("/"), body=body))
    [got] = receiver.wait_for(1)
    assert result.ok
    assert len(got.body) == 1024 * 1024 and got.body == body


def test_method_path_and_merged_query_reach_the_receiver(receiver, sender):
    # Given a destination with its own path and query, and a PUT with a suffix and query
    req = delivery(receiver.url("/hooks?tenant=a"), method="PUT", path_suffix="/orders/42", query="id=42&x=1")
    # When it is sent
    sender.send(req)
    # Then the receiver sees the forwarded method, path and both queries
    [got] = receiver.wait_for(1)
    assert (got.method, got.path, got.query) == ("PUT", "/hooks/orders/42", "tenant=a&id=42&x=1")


def test_path_forwarding_disabled_sends_to_the_destination_path(receiver, sender):
    dest = {"type": "HTTP", "config": {"url": receiver.url("/fixed"), "path_forwarding_disabled": True}}
    sender.send(delivery(receiver.url(), destination=dest, path_suffix="/orders/42", query="id=42"))
    [got] = receiver.wait_for(1)
    assert (got.path, got.query) == ("/fixed", "id=42")


def test_the_receiver_gets_signed_fasthook_headers_and_no_hop_by_hop_headers(receiver, sender):
    # Given a provider request with connection-level headers and an auth header for FastHook
    inbound = {
        "Content-Type": "application/json",
        "Connection": "close",
        "Keep-Alive": "timeout=5",
        "Transfer-Encoding": "chunked",
        "Upgrade": "websocket",
        "Proxy-Authorization": "Basic eA==",
        "Authorization": "Basic c3JjOnNlY3JldA==",
        "Host": "ingest.fasthook.test",
        "X-Provider-Event": "order.paid",
    }
    body = b'{"order": 7}'
    # When it is delivered
    result = sender.send(delivery(receiver.url("/hooks"), headers=inbound, body=body, verified=False))
    # Then the receiver sees the provider's end-to-end headers and FastHook's, and can verify the signature
    [got] = receiver.wait_for(1)
    assert result.ok
    names = got.header_names()
    assert {"keep-alive", "transfer-encoding", "upgrade", "proxy-authorization", "authorization"}.isdisjoint(names)
    assert got.header("host") == f"127.0.0.1:{receiver.port}"
    assert got.header("x-provider-event") == "order.paid"
    assert got.header("user-agent") == "FastHook/1.0"
    assert got.header("x-fasthook-event-id") == "evt_1"
    assert got.header("x-fasthook-request-id") == "req_1"
    assert got.header("x-fasthook-attempt-count") == "1"
    assert got.header("x-fasthook-attempt-trigger") == "INITIAL"
    assert got.header("x-fasthook-verified") == "false"
    assert verify_signature(SECRET, got.body, got.header("x-fasthook-signature") or "")


@pytest.mark.parametrize(
    ("auth_type", "auth", "header", "expected"),
    [
        ("BEARER_TOKEN", {"token": "tok_1"}, "authorization", "Bearer tok_1"),
        ("BASIC_AUTH", {"username": "ann", "password": "pw"}, "authorization", "Basic YW5uOnB3"),
        ("API_KEY", {"key": "X-Api-Key", "api_key": "k_1", "to": "header"}, "x-api-key", "k_1"),
    ],
)
def test_destination_auth_arrives_as_a_header(receiver, sender, auth_type, auth, header, expected):
    dest = {"type": "HTTP", "config": {"url": receiver.url("/"), "auth_type": auth_type, "auth": auth}}
    sender.send(delivery(receiver.url(), destination=dest))
    [got] = receiver.wait_for(1)
    assert got.header(header) == expected


def test_destination_api_key_for_the_query_arrives_in_the_query(receiver, sender):
    auth = {"key": "api_key", "api_key": "k_1", "to": "query"}
    dest = {"type": "HTTP", "config": {"url": receiver.url("/"), "auth_type": "API_KEY", "auth": auth}}
    sender.send(delivery(receiver.url(), destination=dest, query="a=1"))
    [got] = receiver.wait_for(1)
    assert got.query == "a=1&api_key=k_1"


def test_consecutive_deliveries_reuse_the_connection(receiver, sender):
    sender.send(request(receiver.url("/one")))
    sender.send(request(receiver.url("/two")))
    first, second = receiver.wait_for(2)
    assert first.client_port == second.client_port


# ---- what comes back -----------------------------------------------------------------------------------


def test_a_500_is_a_failed_result_with_status_body_and_headers(receiver, sender):
    # Given a receiver that answers 500
    receiver.script(Response(status=500, body=b'{"error": "boom"}', headers={"X-Trace": "t1"}))
    # When a delivery is sent
    result = sender.send(request(receiver.url()))
    # Then the answer is recorded, not raised
    assert not result.ok
    assert result.status == 500
    assert result.response_body == b'{"error": "boom"}'
    assert result.response_headers["X-Trace"] == "t1"
    assert result.error_code is None and not result.truncated


def test_the_latency_covers_the_wait_for_the_answer(receiver, sender):
    receiver.script(Response(status=202, delay_s=0.3))
    result = sender.send(request(receiver.url()))
    assert result.ok and result.status == 202
    assert result.response_latency_ms >= 300


def test_a_response_body_over_64_kib_is_cut_at_64_kib(receiver, sender):
    # Given a receiver answering with 200 KB
    receiver.script(Response(body=b"x" * 200_000))
    # When a delivery is sent
    result = sender.send(request(receiver.url()))
    # Then only the first 64 KiB are kept, and the cut is flagged
    assert result.ok
    assert result.response_body == b"x" * 65536
    assert result.truncated


def test_a_response_body_of_exactly_64_kib_is_not_flagged_truncated(receiver, sender):
    receiver.script(Response(body=b"y" * 65536))
    result = sender.send(request(receiver.url()))
    assert len(result.response_body) == 65536 and not result.truncated


def test_a_redirect_is_not_followed(receiver, sender):
    # Given a receiver that redirects elsewhere on itself
    receiver.script(Response(status=302, headers={"Location": receiver.url("/elsewhere")}))
    # When a delivery is sent
    result = sender.send(request(receiver.url("/start")))
    # Then the 302 is the result and nothing else was requested
    assert not result.ok
    assert result.status == 302
    assert result.response_headers["Location"].endswith("/elsewhere")
    time.sleep(0.2)
    assert [r.path for r in receiver.requests] == ["/start"]


# ---- network failures ----------------------------------------------------------------------------------


def test_a_receiver_slower_than_the_timeout_gives_timeout_soon_after_it(receiver, sender):
    # Given a receiver that waits 5 s before answering and a 1 s destination timeout
    receiver.script(Response(delay_s=5))
    # When a delivery is sent
    started = time.monotonic()
    result = sender.send(request(receiver.url(), timeout_s=1))
    elapsed = time.monotonic() - started
    # Then it gives up with TIMEOUT at about the timeout
    assert result.error_code == DeliveryErrorCode.TIMEOUT
    assert not result.ok and result.status is None
    assert elapsed < 2.0


def test_a_receiver_dripping_its_body_cannot_outlast_the_timeout(receiver, sender):
    # Given a receiver that answers at once but sends its body one byte every 0.2 s
    receiver.script(Response(status=200, body=b"z" * 50, drip_s=0.2))
    # When a delivery with a 1 s timeout is sent
    started = time.monotonic()
    result = sender.send(request(receiver.url(), timeout_s=1))
    elapsed = time.monotonic() - started
    # Then the whole call still ends at about 1 s, as a TIMEOUT
    assert result.error_code == DeliveryErrorCode.TIMEOUT
    assert not result.ok
    assert elapsed < 2.0


def test_a_closed_port_is_connection_refused(sender):
    result = sender.send(request(f"http://127.0.0.1:{free_port()}/hooks?api_key=hidden"))
    assert result.error_code == DeliveryErrorCode.CONNECTION_REFUSED
    assert not result.ok and result.status is None
    assert "hidden" not in (result.error_message or "")


def test_a_receiver_that_hangs_up_without_answering_is_a_connection_error(sender):
    # Given a loopback server that reads the request and closes the connection without a word
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen(1)

        def hang_up() -> None:
            conn, _ = listener.accept()
            with conn:
                conn.recv(65536)

        threading.Thread(target=hang_up, daemon=True).start()
        # When a delivery is sent to it
        result = sender.send(request(f"http://127.0.0.1:{listener.getsockname()[1]}/"))
    # Then it is a connection error, not a crash
    assert result.error_code == DeliveryErrorCode.CONNECTION_ERROR
    assert not result.ok and result.status is None


def test_an_unresolvable_host_is_dns_lookup_failed(sender):
    result = sender.send(request("http://nothing.invalid/hooks"))
    assert result.error_code == DeliveryErrorCode.DNS_LOOKUP_FAILED
    assert "nothing.invalid" in (result.error_message or "")


@pytest.mark.parametrize("url", ["ftp://example.com/x", "/relative/path", "http://", "http://host:99999/"])
def test_a_url_that_is_not_http_is_invalid_url(sender, url):
    result = sender.send(request(url))
    assert result.error_code == DeliveryErrorCode.INVALID_URL
    assert not result.ok


def test_a_header_http_cannot_carry_is_an_invalid_request_and_nothing_is_sent(receiver, sender):
    result = sender.send(request(receiver.url(), **{"X-Token": "line1\nInjected: yes"}))
    assert result.error_code == DeliveryErrorCode.INVALID_REQUEST
    time.sleep(0.1)
    assert receiver.requests == []


# ---- SSRF guard ----------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "host",
    ["127.0.0.1", "10.0.0.1", "169.254.169.254", "[::1]", "[::ffff:127.0.0.1]", "localhost", "2130706433"],
)
def test_private_and_internal_destinations_are_refused_before_connecting(receiver, guarded, connects, host):
    # Given a deployed sender and a destination on an internal address (the receiver's port, when loopback)
    url = f"http://{host}:{receiver.port}/hooks"
    # When a delivery is sent
    started = time.monotonic()
    result = guarded.send(request(url))
    elapsed = time.monotonic() - started
    # Then it is refused at once, no socket was connected, and the receiver saw nothing
    assert result.error_code == DeliveryErrorCode.SSRF_BLOCKED
    assert not result.ok and result.status is None
    assert elapsed < 0.5
    assert connects.addresses == []
    time.sleep(0.1)
    assert receiver.requests == []


def test_a_public_name_resolving_to_a_private_address_is_refused(connects):
    # Given DNS that answers an internal address for a public-looking name
    with HttpSender(allow_private=False, resolver=lambda host, port: ["10.1.2.3"]) as guarded:
        # When a delivery is sent there
        result = guarded.send(request("https://hooks.example.test/in"))
    # Then it is refused without connecting
    assert result.error_code == DeliveryErrorCode.SSRF_BLOCKED
    assert "10.1.2.3" in (result.error_message or "")
    assert connects.addresses == []


def test_a_name_with_one_private_address_among_public_ones_is_refused(connects):
    with HttpSender(allow_private=False, resolver=lambda host, port: ["93.184.215.14", "192.168.1.5"]) as guarded:
        result = guarded.send(request("http://mixed.example.test/"))
    assert result.error_code == DeliveryErrorCode.SSRF_BLOCKED
    assert connects.addresses == []


@pytest.mark.parametrize(
    "address",
    [
        "127.0.0.1", "127.255.0.9", "10.0.0.1", "172.16.0.1", "172.31.255.255", "192.168.0.1", "169.254.169.254",
        "100.64.0.1", "100.127.255.254", "0.0.0.0", "224.0.0.1", "239.255.255.250", "240.0.0.1",
        "255.255.255.255", "::", "::1", "fc00::1", "fd12:3456::1", "fe80::1", "fe80::1%eth0", "ff02::1",
        "::ffff:127.0.0.1", "::ffff:10.0.0.1", "::ffff:169.254.169.254", "64:ff9b::a9fe:a9fe", "2002:a00:1::1",
        "2001:db8::1", "198.18.0.1", "192.0.2.1",
    ],
)  # fmt: skip
def test_the_guard_refuses_every_non_public_address(address):
    assert blocked_address_reason(address) is not None


@pytest.mark.parametrize(
    "address", ["93.184.215.14", "8.8.8.8", "1.1.1.1", "2606:4700:4700::1111", "::ffff:8.8.8.8", "64:ff9b::808:808"]
)
def test_the_guard_lets_public_addresses_through(address):
    assert blocked_address_reason(address) is None


def test_the_connection_goes_to_the_checked_address_not_to_a_new_lookup(receiver, connects):
    # Given a name only our resolver knows, pointing at the receiver (a second, system lookup would fail)
    lookups: list[str] = []

    def resolver(host: str, port: int) -> list[str]:
        lookups.append(host)
        return ["127.0.0.1"]

    with HttpSender(allow_private=True, resolver=resolver) as sender:
        # When a delivery is sent to that name
        result = sender.send(request(f"http://hooks.example.test:{receiver.port}/pinned"))
    # Then it was looked up once, connected to the checked address, and kept its Host
    [got] = receiver.wait_for(1)
    assert result.ok
    assert lookups == ["hooks.example.test"]
    assert connects.addresses == [("127.0.0.1", receiver.port)]
    assert got.header("host") == f"hooks.example.test:{receiver.port}"


def test_when_the_first_address_refuses_the_next_one_is_tried(receiver, connects):
    # Given a name with two checked addresses, the first of which has nothing listening
    with HttpSender(allow_private=True, resolver=lambda host, port: ["127.0.0.2", "127.0.0.1"]) as sender:
        # When a delivery is sent
        result = sender.send(request(f"http://two.example.test:{receiver.port}/"))
    # Then the second address answered
    assert result.ok
    assert connects.addresses == [("127.0.0.2", receiver.port), ("127.0.0.1", receiver.port)]
    assert len(receiver.wait_for(1)) == 1


def test_a_lookup_slower_than_the_timeout_gives_timeout():
    # Given a resolver that hangs longer than the destination timeout
    def slow_resolver(host: str, port: int) -> list[str]:
        time.sleep(3)
        return ["127.0.0.1"]

    with HttpSender(allow_private=True, resolver=slow_resolver) as sender:
        # When a delivery with a 1 s timeout is sent
        started = time.monotonic()
        result = sender.send(request("http://slow-dns.example.test/", timeout_s=1))
        elapsed = time.monotonic() - started
    # Then the call ends at about the timeout
    assert result.error_code == DeliveryErrorCode.TIMEOUT
    assert elapsed < 2.0


# ---- TLS -------------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def tls_files(tmp_path_factory) -> dict[str, str]:
    """A test CA, and a server certificate it signed for hooks.example.test only (no IP address in it)."""
    directory = tmp_path_factory.mktemp("tls")
    now = datetime.datetime.now(datetime.UTC)
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "FastHook test CA")])
    ca_cert = (
        x509.CertificateBuilder().subject_name(ca_name).issuer_name(ca_name).public_key(ca_key.public_key())
        .serial_number(x509.random_serial_number()).not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .add_extension(x509.KeyUsage(digital_signature=True, content_commitment=False, key_encipherment=False,
                                     data_encipherment=False, key_agreement=False, key_cert_sign=True,
                                     crl_sign=True, encipher_only=False, decipher_only=False), critical=True)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(ca_key.public_key()), critical=False)
        .sign(ca_key, hashes.SHA256())
    )  # fmt: skip
    key = ec.generate_private_key(ec.SECP256R1())
    cert = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "hooks.example.test")]))
        .issuer_name(ca_name).public_key(key.public_key()).serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5)).not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(x509.SubjectAlternativeName([x509.DNSName("hooks.example.test")]), critical=False)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(x509.ExtendedKeyUsage([x509.oid.ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()), critical=False)
        .sign(ca_key, hashes.SHA256())
    )  # fmt: skip
    paths = {"ca": directory / "ca.pem", "cert": directory / "cert.pem", "key": directory / "key.pem"}
    paths["ca"].write_bytes(ca_cert.public_bytes(serialization.Encoding.PEM))
    paths["cert"].write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    paths["key"].write_bytes(
        key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    )
    return {name: str(Path(path)) for name, path in paths.items()}


@pytest.fixture()
def tls_receiver(tls_files) -> Iterator[Receiver]:
    with Receiver(tls=(tls_files["cert"], tls_files["key"])) as running:
        yield running


def test_https_to_a_pinned_address_verifies_the_certificate_against_the_name(tls_receiver, tls_files):
    # Given a name resolved to loopback, and a certificate valid for that name only (not for 127.0.0.1)
    resolver = lambda host, port: ["127.0.0.1"]  # noqa: E731
    with HttpSender(allow_private=True, resolver=resolver, ca_bundle=tls_files["ca"]) as sender:
        # When a delivery is sent over https to the name
        result = sender.send(request(f"https://hooks.example.test:{tls_receiver.port}/secure"))
    # Then TLS succeeded with the name (SNI and verification) while connecting to the checked address
    [got] = tls_receiver.wait_for(1)
    assert result.ok, result.error_message
    assert got.path == "/secure"
    assert got.header("host") == f"hooks.example.test:{tls_receiver.port}"


def test_a_certificate_for_another_name_is_a_tls_error(tls_receiver, tls_files):
    resolver = lambda host, port: ["127.0.0.1"]  # noqa: E731
    with HttpSender(allow_private=True, resolver=resolver, ca_bundle=tls_files["ca"]) as sender:
        result = sender.send(request(f"https://other.example.test:{tls_receiver.port}/"))
    assert result.error_code == DeliveryErrorCode.TLS_ERROR
    assert tls_receiver.requests == []


def test_a_certificate_from_an_untrusted_issuer_is_a_tls_error(tls_receiver, sender):
    result = sender.send(request(tls_receiver.url("/")))
    assert result.error_code == DeliveryErrorCode.TLS_ERROR
    assert "certificate" in (result.error_message or "").lower()
    assert tls_receiver.requests == []
