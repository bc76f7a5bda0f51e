"""The TCP strategies (stack/testing/strategies_tcp.py): valid segments that dpkt reads as built,
every flag combination reachable, malformed options that a host survives, and ``broken_tcp``
whose one breakage is the drop reason a host counts."""

from __future__ import annotations

from ipaddress import IPv4Address, IPv6Address

import dpkt
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from stack import TapHost, TunHost
from stack.l4.tcp import TcpFlags, TcpOptions, TcpSegment
from stack.testing import strategies
from stack.testing.strategies_tcp import TCP_BREAKAGES, broken_tcp, tcp_flags, tcp_options, tcp_segments


def test_the_tcp_strategies_are_re_exported():
    for name in ("tcp_segments", "tcp_flags", "tcp_options", "broken_tcp", "tcp_segment_values"):
        assert name in strategies.__all__ and callable(getattr(strategies, name))


def _checksum_ok(packet) -> bool:
    tcp = packet.data
    carried = tcp.sum
    tcp.sum = 0
    if isinstance(packet, dpkt.ip.IP):
        packet.sum = 0
        again = dpkt.ip.IP(bytes(packet)).data.sum
    else:
        again = dpkt.ip6.IP6(bytes(packet)).data.sum
    return carried == again


@pytest.mark.parametrize("family", [4, 6])
@given(data=st.data())
def test_segments_are_valid_tcp_that_dpkt_reads(family, data):
    packet_bytes = data.draw(tcp_segments(family=family, medium="ip"))
    packet = dpkt.ip.IP(packet_bytes) if family == 4 else dpkt.ip6.IP6(packet_bytes)
    assert isinstance(packet.data, dpkt.tcp.TCP) and 20 <= packet.data.off * 4 <= 60
    assert _checksum_ok(packet)


def test_each_flag_combination_is_reachable():
    seen: set[int] = set()

    @settings(max_examples=3000, database=None)
    @given(tcp_flags())
    def collect(flags):
        seen.add(int(flags))

    collect()
    assert len(seen) > 200  # of 256: the combinations are drawn, not only the common ones


@given(options=tcp_options(malformed=True))
def test_malformed_options_are_seen_as_malformed_by_the_codec(options):
    assert len(options) % 4 == 0 and len(options) <= 40
    assert TcpOptions.parse(options).malformed


@given(options=tcp_options(malformed=False))
def test_valid_options_parse_back(options):
    assert not TcpOptions.parse(options).malformed


@pytest.mark.parametrize("family, medium", [(4, "ethernet"), (4, "ip"), (6, "ethernet"), (6, "ip")])
@given(data=st.data())
def test_a_host_answers_every_segment_to_a_closed_port_by_the_rule(family, medium, data):
    """Whatever the options: one RST unless the segment is a RST (RFC 9293 3.10.7.1)."""
    frame = data.draw(tcp_segments(family=family, medium=medium))
    if medium == "ethernet":
        host = TapHost(["192.0.2.2/24", "2001:db8::2/64"], mac="02:00:00:00:00:02", dad_transmits=0)
        host.link.cache.add_permanent(IPv4Address("192.0.2.1"), b"\x02\x00\x00\x00\x00\x01")
        host.ip6.resolver.add_permanent(IPv6Address("2001:db8::1"), b"\x02\x00\x00\x00\x00\x01")
    else:
        host = TunHost(["192.0.2.2", "2001:db8::2"], peer=["192.0.2.1", "2001:db8::1"])
    out = host.receive(frame, 1.0)
    start = 14 if medium == "ethernet" else 0
    packet = dpkt.ip.IP(frame[start:]) if family == 4 else dpkt.ip6.IP6(frame[start:])
    assert len(out) == (0 if packet.data.flags & dpkt.tcp.TH_RST else 1)


@pytest.mark.parametrize("medium", ["ethernet", "ip"])
@pytest.mark.parametrize("family", [4, 6])
@given(data=st.data())
def test_broken_segments_are_dropped_for_the_reason_given(family, medium, data):
    kind, frame = data.draw(broken_tcp(tcp_segments(family=family, medium=medium), medium))
    host = TapHost(["192.0.2.2/24", "2001:db8::2/64"], mac="02:00:00:00:00:02", dad_transmits=0) \
        if medium == "ethernet" else TunHost(["192.0.2.2", "2001:db8::2"], peer=["192.0.2.1", "2001:db8::1"])
    assert host.receive(frame, 1.0) == []
    assert host.stats.last_drop == TCP_BREAKAGES[kind]


def test_unknown_breakages_and_media_are_refused():
    with pytest.raises(ValueError, match="unknown breakages"):
        broken_tcp(tcp_segments(), kinds=["nonsense"])
    with pytest.raises(ValueError, match="medium"):
        tcp_segments(medium="wifi")


@given(segment=strategies.tcp_segment_values())
def test_segment_values_build_and_parse_back(segment):
    source, destination = IPv4Address("192.0.2.1"), IPv4Address("192.0.2.2")
    assert isinstance(segment, TcpSegment) and isinstance(segment.flags, TcpFlags)
    assert TcpSegment.parse(segment.to_bytes(source, destination), source, destination) == segment
