"""IPv4 codec (RFC 791; RFC 1122 3.2.1): four ways on real datagrams, malformed input, misuse.

The oracles are the hex literals below (checksums worked out by hand, checked with
``dpkt.in_cksum``) and dpkt, never ``stack`` itself.
"""

from __future__ import annotations

from ipaddress import IPv4Address

import dpkt
import pytest

from stack.errors import ParseError
from stack.l3.ipv4 import IpProto, Ipv4Packet, header_bytes, packed_header_bytes
from stack.testing import frames

# An empty echo request from 192.0.2.1 to 198.51.100.7 with Don't Fragment set.
PAYLOAD = bytes.fromhex("08 00 f7 ff 00 00 00 00")  # ICMP echo request, id 0, seq 0, no data
DATAGRAM = bytes.fromhex(
    "45"           # version 4, IHL 5 (20 bytes)
    "00"           # type of service
    "00 1c"        # total length: 28
    "1a 2b"        # identification: 0x1a2b
    "40 00"        # flags: DF; fragment offset 0
    "40"           # TTL 64
    "01"           # protocol: ICMP
    "34 7a"        # header checksum: ~(4500+001c+1a2b+4000+4001+c000+0201+c633+6407) = ~cb85
    "c0 00 02 01"  # source: 192.0.2.1
    "c6 33 64 07"  # destination: 198.51.100.7
) + PAYLOAD

# A fragment-free datagram with one option (Router Alert, RFC 2113) and TTL 255.
OPTIONS_PAYLOAD = b"tapstack"
DATAGRAM_WITH_OPTIONS = bytes.fromhex(
    "46"           # version 4, IHL 6 (24 bytes)
    "00"           # type of service
    "00 20"        # total length: 32
    "00 01"        # identification: 1
    "40 00"        # flags: DF; fragment offset 0
    "ff"           # TTL 255
    "01"           # protocol: ICMP
    "62 d3"        # header checksum: ~(4600+0020+0001+4000+ff01+c000+0201+c000+0202+9404) = ~9d2c
    "c0 00 02 01"  # source: 192.0.2.1
    "c0 00 02 02"  # destination: 192.0.2.2
    "94 04 00 00"  # option: Router Alert (type 148, length 4, value 0)
) + OPTIONS_PAYLOAD

PACKET = Ipv4Packet(
    source=IPv4Address("192.0.2.1"),
    destination=IPv4Address("198.51.100.7"),
    protocol=IpProto.ICMP,
    payload=PAYLOAD,
    ttl=64,
    identification=0x1A2B,
    dont_fragment=True,
)

PACKET_WITH_OPTIONS = Ipv4Packet(
    "192.0.2.1", "192.0.2.2", IpProto.ICMP, OPTIONS_PAYLOAD,
    ttl=255, identification=1, dont_fragment=True, options=bytes.fromhex("94040000"),
)


def test_deconstruct():
    packet = Ipv4Packet.parse(DATAGRAM)
    assert packet.header_length == 20
    assert packet.type_of_service == 0
    assert packet.total_length == 28
    assert packet.identification == 0x1A2B
    assert packet.dont_fragment is True
    assert packet.more_fragments is False
    assert packet.fragment_offset == 0
    assert not packet.is_fragment
    assert packet.ttl == 64
    assert packet.protocol == 1 == IpProto.ICMP
    assert packet.source == IPv4Address("192.0.2.1")
    assert packet.destination == IPv4Address("198.51.100.7")
    assert packet.options == b""
    assert bytes(packet.payload) == PAYLOAD


def test_construct():
    assert bytes(PACKET) == DATAGRAM


def test_parse_of_bytes_is_identity():
    assert Ipv4Packet.parse(bytes(PACKET)) == PACKET


def test_buffers_join_to_bytes_and_keep_the_payload_object():
    payload = bytearray(PAYLOAD)
    packet = Ipv4Packet("192.0.2.1", "198.51.100.7", IpProto.ICMP, payload, identification=0x1A2B, dont_fragment=True)
    buffers = packet.buffers()
    assert b"".join(buffers) == bytes(packet) == DATAGRAM
    assert len(buffers) == 2
    assert buffers[1] is payload  # not copied


def test_buffers_keep_every_chunk_of_a_list_payload():
    header, data = PAYLOAD[:4], memoryview(PAYLOAD)[4:]
    packet = Ipv4Packet("192.0.2.1", "198.51.100.7", IpProto.ICMP, [header, data], identification=0x1A2B,
                        dont_fragment=True)
    buffers = packet.buffers()
    assert buffers[1] is header and buffers[2] is data
    assert b"".join(buffers) == DATAGRAM


def test_send_path_header_encoder_writes_the_same_header():
    header = header_bytes(IPv4Address("192.0.2.1"), IPv4Address("198.51.100.7"), IpProto.ICMP, len(PAYLOAD),
                          ttl=64, identification=0x1A2B, flags_offset=0x4000)
    assert header == DATAGRAM[:20]
    with pytest.raises(ValueError, match="TTL 0"):  # RFC 1122 3.2.1.7 on the send path too
        header_bytes(IPv4Address("192.0.2.1"), IPv4Address("192.0.2.2"), IpProto.ICMP, 0, ttl=0)
    with pytest.raises(ValueError, match="65536 bytes > 65535"):
        header_bytes(IPv4Address("192.0.2.1"), IPv4Address("192.0.2.2"), IpProto.ICMP, 65535 - 19)


def test_deconstruct_with_options():
    packet = Ipv4Packet.parse(DATAGRAM_WITH_OPTIONS)
    assert packet.header_length == 24
    assert packet.options == bytes.fromhex("94040000")
    assert packet.ttl == 255
    assert packet.identification == 1
    assert bytes(packet.payload) == OPTIONS_PAYLOAD


def test_construct_with_options():
    assert bytes(PACKET_WITH_OPTIONS) == DATAGRAM_WITH_OPTIONS


def test_parse_of_bytes_with_options_is_identity():
    assert Ipv4Packet.parse(bytes(PACKET_WITH_OPTIONS)) == PACKET_WITH_OPTIONS


@pytest.mark.parametrize(
    ("flags_offset", "dont_fragment", "more_fragments", "fragment_offset"),
    [
        (0x0000, False, False, 0),
        (0x4000, True, False, 0),
        (0x2000, False, True, 0),
        (0x20B9, False, True, 185),  # a middle fragment at byte 1480
        (0x00B9, False, False, 185),  # the last fragment
        (0x1FFF, False, False, 0x1FFF),
    ],
    ids=["none", "df", "mf", "mf-offset-185", "last-offset-185", "offset-max"],
)
def test_flags_and_fragment_offset(flags_offset, dont_fragment, more_fragments, fragment_offset):
    wire = frames.ipv4_datagram(
        "192.0.2.1", "192.0.2.2", 1, b"x",
        dont_fragment=dont_fragment, more_fragments=more_fragments, fragment_offset=fragment_offset,
    )
    assert wire[6:8] == flags_offset.to_bytes(2, "big")  # dpkt agrees with the hand-written value
    packet = Ipv4Packet.parse(wire)
    assert (packet.dont_fragment, packet.more_fragments, packet.fragment_offset) == (
        dont_fragment, more_fragments, fragment_offset,
    )
    assert packet.is_fragment == (more_fragments or fragment_offset != 0)
    assert bytes(packet) == wire


def test_rfc894_bytes_after_the_total_length_are_padding():
    packet = Ipv4Packet.parse(DATAGRAM + bytes(18))
    assert bytes(packet.payload) == PAYLOAD
    assert packet == PACKET


def test_parsed_payload_is_a_view_not_a_copy():
    data = bytearray(DATAGRAM)
    packet = Ipv4Packet.parse(data)
    assert isinstance(packet.payload, memoryview)
    data[20] = 0x00
    assert bytes(packet.payload)[0] == 0x00


def _with_checksum(header: bytes) -> bytes:
    """The header with a correct checksum (by dpkt), so only the named defect is wrong."""
    zeroed = header[:10] + b"\x00\x00" + header[12:]
    return zeroed[:10] + dpkt.in_cksum(zeroed).to_bytes(2, "big") + zeroed[12:]


def _malformed(offset: int, value: bytes, payload: bytes = PAYLOAD) -> bytes:
    header = DATAGRAM[:20]
    return _with_checksum(header[:offset] + value + header[offset + len(value):]) + payload


@pytest.mark.parametrize(
    ("data", "reason", "fragment"),
    [
        (b"", "truncated", "datagram of 0 bytes < header 20"),
        (DATAGRAM[:19], "truncated", "datagram of 19 bytes < header 20"),
        (_malformed(0, b"\x65"), "bad_version", "version 6 != 4"),
        (_malformed(0, b"\x05"), "bad_version", "version 0 != 4"),
        (_malformed(0, b"\x44"), "bad_header_length", "IHL 4 < 5"),
        (_malformed(0, b"\x40"), "bad_header_length", "IHL 0 < 5"),
        (_malformed(0, b"\x4f", payload=b""), "truncated", "header length 60 > buffer 20"),
        (_malformed(2, b"\x00\x13"), "bad_total_length", "total length 19 < header length 20"),
        (_malformed(2, b"\x00\x00"), "bad_total_length", "total length 0 < header length 20"),
        (_malformed(2, b"\x01\xf4"), "truncated", "total length 500 > buffer 28"),
        (DATAGRAM[:27], "truncated", "total length 28 > buffer 27"),
        (DATAGRAM[:10] + b"\x34\x7b" + DATAGRAM[12:], "bad_checksum", "header checksum 0x347b does not verify"),
        (DATAGRAM[:8] + b"\x3f" + DATAGRAM[9:], "bad_checksum", "does not verify"),  # TTL changed in transit
    ],
    ids=[
        "empty", "truncated-19-bytes",
        "rfc1122-3.2.1.1-version-6", "rfc1122-3.2.1.1-version-0",
        "rfc791-ihl-4", "rfc791-ihl-0",
        "ihl-15-larger-than-buffer",
        "total-length-19-below-ihl", "total-length-0",
        "total-length-500-above-buffer", "truncated-payload",
        "rfc1122-3.2.1.2-bad-checksum", "rfc1122-3.2.1.2-ttl-changed",
    ],
)
def test_malformed_datagram_is_a_parse_error(data, reason, fragment):
    with pytest.raises(ParseError) as caught:
        Ipv4Packet.parse(data)
    assert caught.value.layer == "IPv4"
    assert caught.value.reason == reason
    assert caught.value.drop_reason == f"ipv4_{reason}"
    assert fragment in str(caught.value)
    assert str(caught.value).startswith("[IPv4] ")


def test_rfc1122_3_2_1_2_bad_header_checksum_is_a_parse_error():
    corrupted = bytearray(DATAGRAM)
    corrupted[13] ^= 0x01  # source 192.0.2.1 -> 192.0.3.1
    with pytest.raises(ParseError) as caught:
        Ipv4Packet.parse(bytes(corrupted))
    assert caught.value.drop_reason == "ipv4_bad_checksum"


def test_rfc1122_3_2_1_2_the_checksum_covers_the_options():
    corrupted = bytearray(DATAGRAM_WITH_OPTIONS)
    corrupted[22] ^= 0x80  # inside the Router Alert option
    with pytest.raises(ParseError, match="does not verify"):
        Ipv4Packet.parse(bytes(corrupted))


def test_rfc1122_3_2_1_2_the_checksum_does_not_cover_the_payload():
    changed = DATAGRAM[:20] + b"\xff" * 8
    assert bytes(Ipv4Packet.parse(changed).payload) == b"\xff" * 8


def test_rfc1122_3_2_1_7_building_a_header_with_ttl_0_is_a_value_error():
    packet = Ipv4Packet("192.0.2.1", "192.0.2.2", IpProto.ICMP, PAYLOAD, ttl=0)
    with pytest.raises(ValueError, match="TTL 0"):
        bytes(packet)
    with pytest.raises(ValueError, match="TTL 0"):
        packet.buffers()


def test_rfc1122_3_2_1_7_parsing_a_ttl_0_datagram_works():
    wire = frames.ipv4_datagram("192.0.2.1", "192.0.2.2", 253, b"", ttl=0)
    assert wire == bytes.fromhex("45 00 0014 0000 0000 00 fd 35ea c0000201 c0000202")  # hand-checked
    packet = Ipv4Packet.parse(wire)
    assert packet.ttl == 0
    assert packet.protocol == 253


def test_unknown_protocol_parses_as_an_int():
    packet = Ipv4Packet.parse(frames.ipv4_datagram("192.0.2.1", "192.0.2.2", 253, b"experiment"))  # RFC 3692
    assert packet.protocol == 253
    assert packet.protocol not in set(IpProto)
    assert bytes(packet.payload) == b"experiment"


def test_largest_datagram_builds_and_parses():
    payload = bytes(65535 - 20)
    wire = bytes(Ipv4Packet("192.0.2.1", "192.0.2.2", 253, payload))
    assert wire[2:4] == b"\xff\xff"
    assert len(Ipv4Packet.parse(wire).payload) == 65515


def test_addresses_accept_strings():
    packet = Ipv4Packet("192.0.2.1", "198.51.100.7", 1)
    assert packet.source == IPv4Address("192.0.2.1") and packet.destination == IPv4Address("198.51.100.7")


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        (dict(ttl=256), "TTL 256"),
        (dict(ttl=-1), "TTL -1"),
        (dict(protocol=256), "protocol 256"),
        (dict(identification=70000), "identification 70000"),
        (dict(fragment_offset=0x2000), "fragment offset"),
        (dict(type_of_service=256), "type of service"),
        (dict(options=b"\x01\x01\x01"), "multiple of 4"),
        (dict(options=bytes(44)), "at most 40"),
        (dict(payload=bytes(65535 - 20 + 1)), "65536 bytes > 65535"),
        (dict(payload=bytes(65535 - 24 + 1), options=bytes(4)), "65536 bytes > 65535"),
        (dict(payload=[bytes(40000), bytes(40000)]), "80020 bytes > 65535"),
        (dict(source="192.0.2.256"), "256"),
    ],
    ids=[
        "ttl-256", "ttl-negative", "protocol-256", "identification-70000", "fragment-offset-14-bits",
        "tos-256", "options-3-bytes", "options-44-bytes", "payload-over-65535", "payload-and-options-over-65535",
        "chunked-payload-over-65535", "bad-address",
    ],
)
def test_local_misuse_is_a_value_error(fields, message):
    arguments = dict(source="192.0.2.1", destination="192.0.2.2", protocol=1)
    arguments.update(fields)
    with pytest.raises(ValueError, match=message):
        Ipv4Packet(**arguments)


def test_packed_header_bytes_is_header_bytes_with_packed_addresses():
    source, destination = IPv4Address("192.0.2.1"), IPv4Address("198.51.100.7")
    for options in (b"", b"\x01\x01\x01\x00"):
        assert packed_header_bytes(source.packed, destination.packed, IpProto.ICMP, 64, 17, 0xBEEF, 0x4000,
                                   0x10, options) == header_bytes(source, destination, IpProto.ICMP, 64, 17,
                                                                  0xBEEF, 0x4000, 0x10, options)
    header = packed_header_bytes(destination.packed, source.packed, IpProto.ICMP, 64)
    assert dpkt.in_cksum(header) == 0
    with pytest.raises(ValueError):
        packed_header_bytes(source.packed, destination.packed, IpProto.ICMP, 0, ttl=0)
