"""UDP codec (RFC 768; RFC 1122 4.1.3.4): four ways on a real datagram, malformed input, misuse.

The oracles are the hex literals below (checksums worked out by hand, checked with dpkt) and
dpkt, never ``stack`` itself.
"""

from __future__ import annotations

from ipaddress import IPv4Address

import dpkt
import pytest
from hypothesis import given
from hypothesis import strategies as st

from stack.errors import ParseError
from stack.l4.udp import UdpDatagram, checksum

SOURCE, DESTINATION = IPv4Address("192.0.2.1"), IPv4Address("192.0.2.2")
DATA = b"tapstack"
# From 192.0.2.1 port 12345 to 192.0.2.2 port 53 (DNS), 8 data bytes.
DATAGRAM = bytes.fromhex(
    "30 39"  # source port 12345
    "00 35"  # destination port 53
    "00 10"  # length 16: header 8 + data 8
    "8e ba"  # checksum: ~(c000+0201+c000+0202 + 0011+0010 (pseudo-header: protocol 17, length 16)
             #   + 3039+0035+0010 + 7461+7073+7461+636b (data) = 37142 -> 7145) = 8eba
    "74 61 70 73 74 61 63 6b"  # data: "tapstack"
)
# The same ports, 2 data bytes whose sum makes the computed checksum 0: sent as ffff (RFC 768).
ALL_ONES = bytes.fromhex(
    "30 39 00 35"
    "00 0a"  # length 10
    "ff ff"  # ~(b497 (pseudo-header, header) + 4b68 (data)) = ~ffff = 0000 -> ffff
    "4b 68"
)
# No checksum computed (RFC 768: an all-zero checksum field).
UNSUMMED = bytes.fromhex("30 39 00 35 00 10 00 00") + DATA


def dpkt_datagram(data: bytes) -> bytes:
    """dpkt's UDP in an IPv4 datagram from SOURCE to DESTINATION: its bytes after the IP header."""
    udp = dpkt.udp.UDP(sport=12345, dport=53, data=data)
    udp.ulen = 8 + len(data)
    packet = dpkt.ip.IP(src=SOURCE.packed, dst=DESTINATION.packed, p=17, data=udp)
    return bytes(packet)[20:]


def test_the_literals_agree_with_dpkt():
    assert dpkt_datagram(DATA) == DATAGRAM
    assert dpkt_datagram(b"\x4b\x68") == ALL_ONES


def test_deconstruct():
    datagram = UdpDatagram.parse(DATAGRAM, SOURCE, DESTINATION)
    assert datagram.source_port == 12345
    assert datagram.destination_port == 53
    assert datagram.length == 16
    assert bytes(datagram.payload) == DATA


def test_construct():
    assert UdpDatagram(12345, 53, DATA).to_bytes(SOURCE, DESTINATION) == DATAGRAM


def test_parse_of_bytes_is_identity():
    datagram = UdpDatagram(12345, 53, DATA)
    assert UdpDatagram.parse(datagram.to_bytes(SOURCE, DESTINATION), SOURCE, DESTINATION) == datagram


def test_emit_as_buffers_keeps_the_payload_object():
    data = memoryview(bytearray(DATA))
    buffers = UdpDatagram(12345, 53, [data[:3], data[3:]]).buffers(SOURCE, DESTINATION)
    assert b"".join(buffers) == DATAGRAM
    assert len(buffers) == 3 and buffers[1].obj is data.obj  # views, not copies


def test_rfc768_a_computed_zero_is_sent_as_all_ones():
    assert UdpDatagram(12345, 53, b"\x4b\x68").to_bytes(SOURCE, DESTINATION) == ALL_ONES
    assert UdpDatagram.parse(ALL_ONES, SOURCE, DESTINATION).payload == b"\x4b\x68"


def test_rfc768_zero_checksum_means_none_and_is_not_verified():
    assert UdpDatagram(12345, 53, DATA).to_bytes(SOURCE, DESTINATION, summed=False) == UNSUMMED
    # Another pseudo-header would fail a computed checksum; none was computed here.
    assert UdpDatagram.parse(UNSUMMED, SOURCE, IPv4Address("198.51.100.4")).payload == DATA


def test_bytes_after_the_length_are_not_the_datagrams():
    parsed = UdpDatagram.parse(DATAGRAM + b"\x00\x00", SOURCE, DESTINATION)
    assert bytes(parsed.payload) == DATA


def test_checksum_of_the_header_with_a_zero_field():
    assert checksum(SOURCE, DESTINATION, [DATAGRAM[:6], b"\x00\x00", DATAGRAM[8:]]) == 0x8EBA


def flipped(data: bytes, index: int) -> bytes:
    return data[:index] + bytes([data[index] ^ 0x01]) + data[index + 1:]


@pytest.mark.parametrize("data, source, reason, words", [
    pytest.param(b"", SOURCE, "udp_truncated", "datagram of 0 bytes < header 8", id="empty"),
    pytest.param(DATAGRAM[:7], SOURCE, "udp_truncated", "datagram of 7 bytes < header 8", id="short-header"),
    pytest.param(DATAGRAM[:4] + b"\x00\x07" + DATAGRAM[6:], SOURCE, "udp_bad_length",
                 "length 7 < header 8", id="length-below-header"),
    pytest.param(DATAGRAM[:4] + b"\x00\x11" + DATAGRAM[6:], SOURCE, "udp_bad_length",
                 "length 17 > datagram 16", id="length-past-datagram"),
    pytest.param(DATAGRAM[:15], SOURCE, "udp_bad_length", "length 16 > datagram 15", id="data-cut"),
    pytest.param(flipped(DATAGRAM, 9), SOURCE, "udp_bad_checksum",  # 7461 -> 7460: one less summed
                 "checksum 0x8eba does not verify (should be 0x8ebb)", id="data-bit-flipped"),
    pytest.param(DATAGRAM, IPv4Address("192.0.2.9"), "udp_bad_checksum",
                 "checksum 0x8eba does not verify (should be 0x8eb2)", id="other-pseudo-header"),
])
def test_malformed(data, source, reason, words):
    with pytest.raises(ParseError) as caught:
        UdpDatagram.parse(data, source, DESTINATION)
    assert caught.value.drop_reason == reason
    assert str(caught.value) == f"[UDP] {words}"


@pytest.mark.parametrize("fields, words", [
    pytest.param((65536, 53), "source port 65536 does not fit 16 bits", id="source-port"),
    pytest.param((1, -1), "destination port -1 does not fit 16 bits", id="destination-port"),
])
def test_misuse_raises_value_error(fields, words):
    with pytest.raises(ValueError, match=words):
        UdpDatagram(*fields)


def test_a_payload_that_cannot_fit_is_refused():
    with pytest.raises(ValueError, match="65536 bytes > 65535"):
        UdpDatagram(1, 2, bytes(65528))


@given(st.binary(max_size=64), st.binary(min_size=4, max_size=4), st.binary(min_size=4, max_size=4))
def test_arbitrary_bytes_raise_only_parse_error(data, source, destination):
    try:
        UdpDatagram.parse(data, IPv4Address(source), IPv4Address(destination))
    except ParseError:
        pass


@given(st.integers(0, 0xFFFF), st.integers(0, 0xFFFF), st.binary(max_size=200), st.booleans())
def test_parse_of_built_agrees_with_dpkt(source_port, destination_port, data, summed):
    wire = UdpDatagram(source_port, destination_port, data).to_bytes(SOURCE, DESTINATION, summed)
    theirs = dpkt.udp.UDP(wire)
    assert (theirs.sport, theirs.dport, theirs.ulen, theirs.data) == (source_port, destination_port,
                                                                      8 + len(data), data)
    if summed:  # dpkt computes it when the field is 0
        packet = dpkt.ip.IP(src=SOURCE.packed, dst=DESTINATION.packed, p=17,
                            data=dpkt.udp.UDP(sport=source_port, dport=destination_port, ulen=8 + len(data),
                                              data=data))
        assert bytes(packet)[20:] == wire
    assert UdpDatagram.parse(wire, SOURCE, DESTINATION) == UdpDatagram(source_port, destination_port, data)
