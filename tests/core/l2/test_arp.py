"""ARP codec (RFC 826): four ways on one real packet, malformed input, unknown code points, misuse.

The oracle is the hex literal below (written by hand) and dpkt, never ``stack`` itself.
ARP has no payload, so there is no ``buffers()`` test here.
"""

from __future__ import annotations

from ipaddress import IPv4Address

import pytest

from stack.errors import ParseError
from stack.l2.arp import ArpOp, ArpPacket
from stack.l2.ethernet import EtherType, MacAddress
from stack.testing import frames

# 192.0.2.2 is at 02:00:00:00:00:02, answering 192.0.2.1 at 02:00:00:00:00:01.
PACKET = bytes.fromhex(
    "00 01"              # ar$hrd: Ethernet (1)
    "08 00"              # ar$pro: IPv4
    "06"                 # ar$hln: 6
    "04"                 # ar$pln: 4
    "00 02"              # ar$op: reply (2)
    "02 00 00 00 00 02"  # ar$sha: 02:00:00:00:00:02
    "c0 00 02 02"        # ar$spa: 192.0.2.2
    "02 00 00 00 00 01"  # ar$tha: 02:00:00:00:00:01
    "c0 00 02 01"        # ar$tpa: 192.0.2.1
)

REPLY = ArpPacket(
    operation=ArpOp.REPLY,
    sender_mac=MacAddress("02:00:00:00:00:02"),
    sender_ip=IPv4Address("192.0.2.2"),
    target_mac=MacAddress("02:00:00:00:00:01"),
    target_ip=IPv4Address("192.0.2.1"),
)


def test_deconstruct():
    packet = ArpPacket.parse(PACKET)
    assert packet.hardware_type == 1
    assert packet.protocol_type == 0x0800 == EtherType.IPV4
    assert packet.operation == 2 == ArpOp.REPLY
    assert packet.sender_mac == bytes.fromhex("020000000002")
    assert packet.sender_ip == IPv4Address("192.0.2.2")
    assert packet.target_mac == bytes.fromhex("020000000001")
    assert packet.target_ip == IPv4Address("192.0.2.1")
    assert not packet.is_gratuitous


def test_construct():
    assert bytes(REPLY) == PACKET


def test_parse_of_bytes_is_identity():
    assert ArpPacket.parse(bytes(REPLY)) == REPLY


def test_construct_matches_dpkt():
    assert bytes(REPLY) == frames.arp_packet(2, frames.HOST_MAC, frames.HOST_IP, frames.KERNEL_MAC, frames.KERNEL_IP)


def test_fields_accept_strings_and_plain_bytes():
    built = ArpPacket(2, bytes.fromhex("020000000002"), "192.0.2.2", "02:00:00:00:00:01", "192.0.2.1")
    assert built == REPLY
    assert isinstance(built.sender_mac, MacAddress) and isinstance(built.sender_ip, IPv4Address)


def test_golden_request_frame_parses():
    packet = ArpPacket.parse(frames.ARP_REQUEST[14:])
    assert packet.operation == ArpOp.REQUEST
    assert packet.sender_mac == frames.KERNEL_MAC
    assert packet.sender_ip == IPv4Address(frames.KERNEL_IP)
    assert packet.target_mac == frames.ZERO_MAC
    assert packet.target_ip == IPv4Address(frames.HOST_IP)


def test_rfc894_trailing_padding_is_ignored():
    assert ArpPacket.parse(PACKET + bytes(18)) == REPLY


def test_rfc5227_announcement_is_gratuitous():
    packet = ArpPacket.parse(frames.arp_packet(1, frames.HOST_MAC, frames.HOST_IP, frames.ZERO_MAC, frames.HOST_IP))
    assert packet.is_gratuitous


def _with(offset: int, value: int) -> bytes:
    return PACKET[:offset] + bytes([value]) + PACKET[offset + 1:]


@pytest.mark.parametrize(
    ("data", "reason", "fragment"),
    [
        (b"", "truncated", "packet of 0 bytes < fixed part 8"),
        (PACKET[:7], "truncated", "packet of 7 bytes < fixed part 8"),
        (PACKET[:8], "truncated", "packet of 8 bytes < 28"),
        (PACKET[:27], "truncated", "packet of 27 bytes < 28"),
        (_with(4, 8), "bad_address_length", "hln=8 pln=4"),
        (_with(5, 16), "bad_address_length", "hln=6 pln=16"),
        (_with(4, 8)[:20], "bad_address_length", "hln=8"),  # lengths are checked before the size
    ],
    ids=[
        "empty", "truncated-fixed-part", "truncated-no-addresses", "truncated-27-bytes",
        "hln-8", "pln-16", "hln-8-and-short",
    ],
)
def test_malformed_packet_is_a_parse_error(data, reason, fragment):
    with pytest.raises(ParseError) as caught:
        ArpPacket.parse(data)
    assert caught.value.layer == "ARP"
    assert caught.value.reason == reason
    assert caught.value.drop_reason == f"arp_{reason}"
    assert fragment in str(caught.value)
    assert str(caught.value).startswith("[ARP] ")


@pytest.mark.parametrize(
    ("offset", "value", "field", "expected"),
    [
        (7, 3, "operation", 3),  # RARP request (RFC 903): unknown to us
        (6, 0xFF, "operation", 0xFF02),
        (1, 6, "hardware_type", 6),  # IEEE 802
        (2, 0x86, "protocol_type", 0x8600),
    ],
    ids=["op-3-rarp", "op-0xff02", "hrd-ieee802", "pro-0x8600"],
)
def test_unknown_code_points_parse_as_ints(offset, value, field, expected):
    packet = ArpPacket.parse(_with(offset, value))
    assert getattr(packet, field) == expected
    assert ArpPacket.parse(bytes(packet)) == packet


@pytest.mark.parametrize("field", ["operation", "hardware_type", "protocol_type"])
@pytest.mark.parametrize("value", [-1, 0x10000], ids=["negative", "17-bits"])
def test_field_wider_than_16_bits_is_a_value_error(field, value):
    fields = dict(operation=1, sender_mac=frames.KERNEL_MAC, sender_ip=frames.KERNEL_IP,
                  target_mac=frames.ZERO_MAC, target_ip=frames.HOST_IP)
    fields[field] = value
    with pytest.raises(ValueError, match=field):
        ArpPacket(**fields)


def test_7_byte_mac_is_a_value_error():
    with pytest.raises(ValueError, match="6 bytes"):
        ArpPacket(1, b"\x02" * 7, "192.0.2.1", frames.ZERO_MAC, "192.0.2.2")


def test_bad_ip_address_is_a_value_error():
    with pytest.raises(ValueError):
        ArpPacket(1, frames.KERNEL_MAC, "192.0.2.256", frames.ZERO_MAC, "192.0.2.2")
