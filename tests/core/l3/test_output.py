"""Our datagrams on the way out (stack.l3.output): identification, TTL, fragments (RFC 791 3.2)."""

from __future__ import annotations

from ipaddress import IPv4Address

import dpkt
import pytest

from stack.buffers import join
from stack.l3.output import Output
from stack.stats import Stats

SOURCE, DESTINATION = IPv4Address("192.0.2.2"), IPv4Address("192.0.2.1")


def parsed(outbound) -> dpkt.ip.IP:
    return dpkt.ip.IP(join(outbound.datagram))


def test_each_datagram_gets_the_next_identification_and_our_ttl():
    output = Output(Stats(), ttl=17)
    first, second = (output.send(SOURCE, DESTINATION, 17, [b"data"], DESTINATION)[0] for _ in range(2))
    assert (parsed(first).id, parsed(second).id) == (1, 2)
    assert parsed(first).ttl == 17
    assert dpkt.in_cksum(join(first.datagram)[:20]) == 0  # the header checksum verifies
    assert first.next_hop == DESTINATION and first.source == SOURCE


def test_rfc791_3_2_fragments_share_one_identification_and_are_views_of_the_payload():
    stats = Stats()
    output = Output(stats, mtu=68)
    payload = memoryview(bytearray(range(100)))
    fragments = output.send(SOURCE, DESTINATION, 253, [payload], DESTINATION)  # 253: experimentation
    packets = [parsed(fragment) for fragment in fragments]
    assert [p.id for p in packets] == [1, 1, 1]
    assert [p.offset * 8 for p in packets] == [0, 48, 96]  # 68 - 20 = 48, a multiple of 8
    assert [p.mf for p in packets] == [1, 1, 0]
    assert b"".join(join(f.datagram)[20:] for f in fragments) == bytes(payload)
    assert all(isinstance(buffer, memoryview) for fragment in fragments for buffer in fragment.datagram[1:])
    assert stats["ipv4_fragments_sent"] == 3
    assert parsed(output.send(SOURCE, DESTINATION, 17, [b"x"], DESTINATION)[0]).id == 2


def test_options_go_in_the_first_fragment_only():
    output = Output(Stats(), mtu=68)
    record_route = b"\x07\x07\x04" + bytes(4) + b"\x00"  # 8 bytes
    packets = [parsed(f) for f in output.send(SOURCE, DESTINATION, 253, [bytes(80)], DESTINATION, record_route)]
    # 68 - 20 - 8 = 40 bytes beside the options, then 48 a fragment: 40 and 40
    assert [len(p.opts) for p in packets] == [8, 0]
    assert [len(p.data) for p in packets] == [40, 40]


@pytest.mark.parametrize("ttl", [0, 256])
def test_rfc1122_3_2_1_7_ttl_must_fit_and_never_be_zero(ttl):
    with pytest.raises(ValueError, match=f"TTL {ttl} is not between 1 and 255"):
        Output(Stats(), ttl=ttl)
