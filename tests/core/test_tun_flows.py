"""Golden flows on TunHost: a packet in, the exact packets out, the exact counters.

TUN mode is the same IPv4 host without a link layer: bare IPv4 packets, no ARP, point to point,
optionally behind the 4-byte packet-information header. Expected packets are built with dpkt
(stack/testing/frames.py), never with the codecs under test.
"""

from __future__ import annotations

import struct
from ipaddress import IPv4Address

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from stack import EchoReply, TunHost
from stack.buffers import join
from stack.testing import frames

HOST_IP, KERNEL_IP = frames.HOST_IP, frames.KERNEL_IP
DATA = frames.ECHO_DATA


def pi(protocol: int = 0x0800, flags: int = 0) -> bytes:
    """struct tun_pi: flags in host byte order, protocol in network byte order."""
    return struct.pack("=H", flags) + struct.pack("!H", protocol)


def echo_request(source: str = KERNEL_IP, destination: str = HOST_IP, ident: int = 0x1234,
                 seq: int = 1, data: bytes = DATA, **fields) -> bytes:
    return frames.ipv4_datagram(source, destination, 1, frames.icmp_echo(8, ident, seq, data), **fields)


def echo_reply(destination: str = KERNEL_IP, ident: int = 0x1234, seq: int = 1, data: bytes = DATA,
               identification: int = 1) -> bytes:
    return frames.ipv4_datagram(HOST_IP, destination, 1, frames.icmp_echo(0, ident, seq, data),
                                identification=identification)


def packets(out) -> list[bytes]:
    return [join(packet) for packet in out]


@pytest.fixture(params=[False, True], ids=["no-pi", "pi"])
def with_pi(request) -> bool:
    return request.param


@pytest.fixture
def host(with_pi: bool) -> TunHost:
    return TunHost([HOST_IP], peer=KERNEL_IP, packet_info=with_pi)


def framed(datagram: bytes, with_pi: bool) -> bytes:
    return pi() + datagram if with_pi else datagram


def test_echo_request_is_answered_with_same_identifier_sequence_and_data(host, with_pi):
    out = host.receive(framed(echo_request(ident=0xBEEF, seq=7), with_pi), 1.0)
    assert packets(out) == [framed(echo_reply(ident=0xBEEF, seq=7), with_pi)]
    assert host.stats.as_dict() == {"rx_frames": 1, "rx_ipv4_delivered": 1,
                                    "icmp_echo_replies_sent": 1, "tx_frames": 1}


def test_the_reply_is_buffers_with_the_packet_information_as_one_more(with_pi):
    host = TunHost([HOST_IP], peer=KERNEL_IP, packet_info=with_pi)
    request = bytearray(framed(echo_request(), with_pi))
    [reply] = host.receive(request, 1.0)
    assert [len(b) for b in reply] == ([4] if with_pi else []) + [20, 8, 56]
    assert isinstance(reply[-1], memoryview) and reply[-1].obj is request  # data not copied


def test_no_arp_and_no_next_hop_resolution_on_a_point_to_point_link(host, with_pi):
    """A source far off our /32 is answered at once: everything goes back into the link."""
    out = host.receive(framed(echo_request(source="203.0.113.9"), with_pi), 1.0)
    assert packets(out) == [framed(echo_reply(destination="203.0.113.9"), with_pi)]
    assert host.next_deadline(1.0) is None and host.poll(1.0) == []


def test_ping_goes_out_at_once_and_its_reply_is_matched(host, with_pi):
    out = packets(host.ping(KERNEL_IP, 5.0, identifier=0x55, sequence=3, payload=b"tun"))
    request = frames.ipv4_datagram(HOST_IP, KERNEL_IP, 1, frames.icmp_echo(8, 0x55, 3, b"tun"),
                                   identification=1)
    assert out == [framed(request, with_pi)]
    reply = frames.ipv4_datagram(KERNEL_IP, HOST_IP, 1, frames.icmp_echo(0, 0x55, 3, b"tun"), ttl=64)
    assert host.receive(framed(reply, with_pi), 5.5) == []
    assert list(host.events) == [EchoReply(IPv4Address(KERNEL_IP), 0x55, 3, 64, 3, pytest.approx(0.5))]


def test_broadcast_echo_is_ignored_by_default(host, with_pi):
    assert host.receive(framed(echo_request(destination="255.255.255.255"), with_pi), 1.0) == []
    assert host.stats.drops == {"icmp_echo_to_broadcast_ignored": 1}


IPV6_PACKET = bytes.fromhex("6000000000083a40") + bytes(32) + bytes.fromhex("8000f7ff00000000")


@pytest.mark.parametrize("packet, reason", [
    (pi(0x86DD) + IPV6_PACKET, "tun_ipv6_not_supported"),
    (pi(0x88B5) + b"not ip", "tun_not_ipv4"),
    (pi(0x0806) + bytes(28), "tun_not_ipv4"),
    (pi(0x0800, flags=0x0001) + echo_request(), "tun_truncated"),
    (b"\x00\x00\x08", "tun_runt"),
    (pi(0x0800) + bytes(19), "ipv4_truncated"),
    (pi(0x0800) + IPV6_PACKET, "ipv4_bad_version"),  # the header says IPv4, the packet does not
], ids=["ipv6", "experimental-ethertype", "arp", "truncated-flag", "runt", "short-ipv4",
        "ipv6-labelled-ipv4"])
def test_packet_information_drops(packet, reason):
    host = TunHost([HOST_IP], peer=KERNEL_IP, packet_info=True)
    assert host.receive(packet, 1.0) == []
    assert host.stats.drops == {reason: 1}


@pytest.mark.parametrize("packet, reason", [
    (IPV6_PACKET, "tun_ipv6_not_supported"),
    (b"\x00" + echo_request()[1:], "tun_not_ipv4"),
    (b"", "tun_not_ipv4"),
    (pi() + echo_request(), "tun_not_ipv4"),  # a PI header where none was asked for: nibble 0
], ids=["ipv6", "version-0", "empty", "unexpected-packet-information"])
def test_without_packet_information_the_version_nibble_decides(packet, reason):
    host = TunHost([HOST_IP], peer=KERNEL_IP)
    assert host.receive(packet, 1.0) == []
    assert host.stats.drops == {reason: 1}


def test_the_peer_cannot_be_our_own_address():
    with pytest.raises(ValueError):
        TunHost([HOST_IP], peer=HOST_IP)


@settings(max_examples=300)
@given(st.binary(max_size=120), st.booleans())
def test_arbitrary_bytes_never_raise(data, with_pi):
    host = TunHost([HOST_IP], peer=KERNEL_IP, packet_info=with_pi)
    host.receive(data, 0.0)
    host.poll(0.0)
