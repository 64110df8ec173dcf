"""Destinations aimed at the inside: every spelling of a loopback, private, link-local or metadata address.

test_http_sender.py holds the guard's address table and the plain spellings. These are the ones
attackers try next: numeric forms the C resolver accepts (hex, octal, shortened, decimal), IPv6
forms of the same addresses, cloud metadata endpoints by address and by name, and names whose
DNS answer is internal. Each is refused before any socket connects, and only a sender built to
allow private addresses (the local stack's) reaches loopback at all.
"""

from __future__ import annotations

import time

import pytest

from chalicelib import wiring
from chalicelib.adapters.http_sender import HttpSender
from chalicelib.domain.outbound import DeliveryErrorCode
from chalicelib.settings import Settings
from tests.unit.test_http_sender import connects, guarded, receiver, request  # noqa: F401  (fixtures)

NUMERIC_LOOPBACK = ["0x7f000001", "0x7f.0.0.1", "0177.0.0.1", "127.1", "0", "017700000001", "0x7f.1"]
METADATA = ["2852039166", "0xa9fea9fe", "0251.0376.0251.0376", "100.100.100.200"]
IPV6 = [
    "[::]",
    "[0:0:0:0:0:ffff:7f00:1]",
    "[::ffff:7f00:1]",
    "[fd00:ec2::254]",  # the IPv6 address of EC2's instance metadata service
    "[fe80::a9fe:a9fe]",
    "[::ffff:a9fe:a9fe]",
    "[64:ff9b::7f00:1]",
]


@pytest.mark.parametrize("host", NUMERIC_LOOPBACK + METADATA + IPV6)
def test_every_spelling_of_an_internal_address_is_refused_without_connecting(receiver, guarded, connects, host):  # noqa: F811
    # Given: the receiver's port, so a loopback spelling that slipped through would be answered
    url = f"http://{host}:{receiver.port}/hooks"

    # When
    result = guarded.send(request(url))

    # Then
    assert result.error_code == DeliveryErrorCode.SSRF_BLOCKED, (host, result.error_code, result.error_message)
    assert connects.addresses == []
    time.sleep(0.05)
    assert receiver.requests == []


def test_a_metadata_address_written_as_a_fully_qualified_name_never_connects(connects):  # noqa: F811
    # When: the trailing dot makes it a DNS name, which the system resolver does not map to the address
    with HttpSender(allow_private=False) as sender:
        result = sender.send(request("http://169.254.169.254./latest/meta-data/"))

    # Then
    assert not result.ok and result.status is None
    assert result.error_code in (DeliveryErrorCode.SSRF_BLOCKED, DeliveryErrorCode.DNS_LOOKUP_FAILED)
    assert connects.addresses == []


@pytest.mark.parametrize(
    ("name", "answer"),
    [
        ("metadata.google.internal", ["169.254.169.254"]),
        ("instance-data.ec2.internal", ["fd00:ec2::254"]),
        ("rebind.example.test", ["::1"]),
        ("v4mapped.example.test", ["::ffff:10.0.0.7"]),
        ("cgnat.example.test", ["100.64.1.1"]),
    ],
)
def test_a_name_whose_dns_answer_is_internal_is_refused_without_connecting(connects, name, answer):  # noqa: F811
    # Given
    with HttpSender(allow_private=False, resolver=lambda host, port: answer) as sender:
        # When
        result = sender.send(request(f"https://{name}/latest/meta-data/"))

    # Then
    assert result.error_code == DeliveryErrorCode.SSRF_BLOCKED
    assert answer[0] in (result.error_message or "")
    assert connects.addresses == []


def test_a_deployed_fasthook_builds_a_guarded_sender_and_the_local_stack_opts_out_explicitly(receiver, connects):  # noqa: F811
    # Given: settings as a deployed stage has them (the default) and as the local stack sets them
    deployed = wiring.Container(settings=Settings()).sender
    local = wiring.Container(settings=Settings(allow_private_destinations=True)).sender

    # When
    refused = deployed.send(request(receiver.url("/hooks")))
    allowed = local.send(request(receiver.url("/hooks")))

    # Then
    assert refused.error_code == DeliveryErrorCode.SSRF_BLOCKED
    assert allowed.ok and len(receiver.wait_for(1)) == 1
