"""Our IPv6 packets on the way out (stack.l3.output6): one datagram, or fragments above the MTU
(RFC 8200 4.5), checked with hand-written bytes, dpkt's Fragment header parser and our
reassembler. The kernel reassembles them too: tests/root/test_ipv6_fragments_device.py."""

from __future__ import annotations

import struct
from ipaddress import IPv6Address

import dpkt
import pytest

from stack.buffers import join
from stack.l3.ipv6 import Ipv6Packet
from stack.l3.output6 import Output6
from stack.l3.reassembly6 import Ipv6Reassembler
from stack.stats import Stats

SOURCE, DESTINATION = IPv6Address("2001:db8::2"), IPv6Address("2001:db8::1")
#: Linux's MLDv2 report (tests/core/l3/test_icmpv6.py): its Hop-by-Hop header and ICMPv6 message.
LINUX_MLD_REPORT = bytes.fromhex(
    "6000000000240001" "fe80000000000000000000fffe000001" "ff020000000000000000000000000016"
    "3a00" "0502" "0000" "0100"
    "8f007207" "00000001" "04000000" "ff0200000000000000000001ff000001")
ROUTER_ALERT = bytes.fromhex("0000050200000100")  # Next Header left 0: Output6 sets it


def fixed(next_header: int, payload_length: int, hop_limit: int = 64) -> bytes:
    return struct.pack("!IHBB16s16s", 0x60000000, payload_length, next_header, hop_limit,
                       SOURCE.packed, DESTINATION.packed)


def test_a_packet_within_the_mtu_is_one_datagram_with_the_payload_buffers_as_they_are():
    payload = memoryview(bytearray(b"0123456789"))
    (datagram,) = Output6(Stats(), hop_limit=33).datagrams(SOURCE, DESTINATION, 17, [payload[:4], payload[4:]])
    assert datagram[0] == fixed(17, 10, hop_limit=33)
    assert datagram[1].obj is payload.obj and datagram[2].obj is payload.obj
    assert join(datagram)[40:] == b"0123456789"


def test_the_hop_limit_of_one_packet_and_the_router_alert_make_linuxs_mld_report():
    source, destination = IPv6Address("fe80::ff:fe00:1"), IPv6Address("ff02::16")
    message = LINUX_MLD_REPORT[48:]
    (datagram,) = Output6(Stats()).datagrams(source, destination, 58, [message], hop_limit=1,
                                             extension=ROUTER_ALERT)
    assert join(datagram) == LINUX_MLD_REPORT


def test_exactly_the_mtu_is_not_fragmented():
    assert len(Output6(Stats(), mtu=1280).datagrams(SOURCE, DESTINATION, 17, [bytes(1240)])) == 1
    assert len(Output6(Stats(), mtu=1280).datagrams(SOURCE, DESTINATION, 17, [bytes(1241)])) == 2


def read_fragment(datagram) -> tuple[bytes, dpkt.ip6.IP6FragmentHeader, bytes]:
    """The fixed header, the Fragment header as dpkt reads it, and the data."""
    wire = join(datagram)
    assert wire[6] == 44  # the Fragment header follows the fixed header
    return wire[:40], dpkt.ip6.IP6FragmentHeader(wire[40:48]), wire[48:]


def test_rfc8200_4_5_fragments_offsets_m_flags_one_identification_and_views():
    stats = Stats()
    output = Output6(stats, mtu=1280)
    payload = memoryview(bytearray(bytes(range(256)) * 12))  # 3072 bytes
    fragments = output.datagrams(SOURCE, DESTINATION, 58, [payload])
    read = [read_fragment(fragment) for fragment in fragments]
    assert all(len(join(fragment)) <= 1280 for fragment in fragments)
    # 1280 - 40 - 8 = 1232 octets a fragment (a multiple of 8): 1232, 1232, 608
    assert [header.frag_off * 8 for _, header, _ in read] == [0, 1232, 2464]
    assert [header.m_flag for _, header, _ in read] == [1, 1, 0]
    assert {header.id for _, header, _ in read} == {1}
    assert {header.nxt for _, header, _ in read} == {58}
    assert [fixed_header for fixed_header, _, _ in read] == [fixed(44, 8 + n) for n in (1232, 1232, 608)]
    assert b"".join(data for _, _, data in read) == bytes(payload)
    assert all(buffer.obj is payload.obj for fragment in fragments for buffer in fragment[2:])
    assert stats["ipv6_fragments_sent"] == 3


def test_rfc8200_4_5_the_unfragmentable_part_goes_in_every_fragment_before_the_fragment_header():
    fragments = Output6(Stats(), mtu=1280).datagrams(SOURCE, DESTINATION, 58, [bytes(2000)], extension=ROUTER_ALERT)
    for fragment in fragments:
        wire = join(fragment)
        assert wire[6] == 0 and wire[40:48] == bytes([44]) + ROUTER_ALERT[1:]
        assert dpkt.ip6.IP6FragmentHeader(wire[48:56]).nxt == 58
    assert len(join(fragments[0])) == 40 + 8 + 8 + 1224  # 1280 - 56 = 1224, a multiple of 8


def test_fragments_reassemble_to_the_packet_sent_unfragmented():
    payload = [b"head", memoryview(bytes(range(200)) * 20), b"tail"]
    fragments = Output6(Stats(), mtu=1280).datagrams(SOURCE, DESTINATION, 17, payload, extension=ROUTER_ALERT)
    reassembler = Ipv6Reassembler()
    outcomes = []
    for fragment in reversed(fragments):
        wire = join(fragment)
        packet = Ipv6Packet.parse(wire)
        outcomes.append(reassembler.add(packet, wire, packet.chain(), 0.0))
    body = b"head" + bytes(range(200)) * 20 + b"tail"
    assert outcomes[-1].packet == fixed(0, 8 + len(body)) + bytes([17]) + ROUTER_ALERT[1:] + body


def test_rfc8200_4_5_each_fragmented_packet_gets_a_new_identification_seeded_by_uniform():
    output = Output6(Stats(), mtu=1280, uniform=lambda low, high: high)  # 0xFFFFFFFF: it wraps
    first, second = (output.datagrams(SOURCE, DESTINATION, 17, [bytes(1500)]) for _ in range(2))
    assert [read_fragment(f)[1].id for f in first] == [0, 0]
    assert [read_fragment(f)[1].id for f in second] == [1, 1]
    output.datagrams(SOURCE, DESTINATION, 17, [b"small"])  # unfragmented: no identification used
    assert read_fragment(output.datagrams(SOURCE, DESTINATION, 17, [bytes(1500)])[0])[1].id == 2
    seeded = Output6(Stats(), uniform=lambda low, high: 123456.7)
    assert read_fragment(seeded.datagrams(SOURCE, DESTINATION, 17, [bytes(1500)])[0])[1].id == 123457


@pytest.mark.parametrize("make, message", [
    (lambda: Output6(Stats(), mtu=1279), "MTU 1279 < 1280"),
    (lambda: Output6(Stats(), hop_limit=0), "hop limit 0"),
    (lambda: Output6(Stats()).datagrams(SOURCE, DESTINATION, 17, [bytes(65536)]), "65536 bytes > 65535"),
    (lambda: Output6(Stats()).datagrams(SOURCE, DESTINATION, 17, [b"x"], extension=bytes(7)), "do not end"),
    (lambda: Output6(Stats(), mtu=1280).datagrams(SOURCE, DESTINATION, 17, [bytes(2000)],
                                                  extension=b"\x00\xa0" + bytes(1286)), "no room"),
], ids=["mtu-below-1280", "hop-limit-0", "jumbogram", "ragged-extension", "extension-fills-the-mtu"])
def test_our_misuse_raises(make, message):
    with pytest.raises(ValueError, match=message):
        make()
