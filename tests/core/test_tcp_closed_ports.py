"""Every host answers TCP to a closed port (RFC 9293 3.10.7.1), over IPv4 and IPv6, TAP and TUN.

Segments are built with dpkt and the answers read with dpkt; the expected RST comes from the
RFC's arithmetic (<SEQ=SEG.ACK><CTL=RST>, or <SEQ=0><ACK=SEG.SEQ+SEG.LEN><CTL=RST,ACK>), never
from ``stack`` itself. What Linux 6.18 puts around its RST (TTL 64, DF, TOS without ECN) was seen
on the running kernel (tests/root/test_tcp_device.py; ``tapstack diff``).
"""

from __future__ import annotations

from ipaddress import IPv4Address, IPv6Address

import dpkt
import pytest
from hypothesis import given
from hypothesis import strategies as st

from stack import TapHost, TunHost
from stack.buffers import join
from stack.l4.tcp import TcpFlags, TcpSegment
from stack.l4.tcp_layer import TcpLayer
from stack.testing import frames

K4, H4, K6, H6 = frames.KERNEL_IP, frames.HOST_IP, frames.KERNEL_IP6, frames.HOST_IP6
FIN, SYN, RST, PSH, ACK, URG = (dpkt.tcp.TH_FIN, dpkt.tcp.TH_SYN, dpkt.tcp.TH_RST, dpkt.tcp.TH_PUSH,
                                dpkt.tcp.TH_ACK, dpkt.tcp.TH_URG)


def segment(flags: int, seq: int = 1000, ack: int = 0, data: bytes = b"", opts: bytes = b"", family: int = 4,
            src: str | None = None, dst: str | None = None, tos: int = 0) -> bytes:
    """A TCP segment from port 40000 to port 80 in an IP packet, checksums by dpkt."""
    tcp = dpkt.tcp.TCP(sport=40000, dport=80, seq=seq, ack=ack, flags=flags, win=64240, opts=opts, data=data)
    tcp.off = (20 + len(opts)) // 4
    if family == 4:
        packet = dpkt.ip.IP(src=frames.ip(src or K4), dst=frames.ip(dst or H4), p=6, ttl=64, tos=tos, data=tcp)
        return bytes(packet)
    packet = dpkt.ip6.IP6(src=frames.ip6(src or K6), dst=frames.ip6(dst or H6), nxt=6, hlim=64, data=tcp)
    packet.fc = tos
    packet.plen = len(bytes(tcp))
    return bytes(packet)


def tun(family: int) -> TunHost:
    return TunHost([H4, H6], peer=[K4, K6])


def tap(family: int) -> TapHost:
    host = TapHost([f"{H4}/24", f"{H6}/64"], mac=frames.HOST_MAC, dad_transmits=0)
    host.link.cache.add_permanent(IPv4Address(K4), frames.KERNEL_MAC)
    host.ip6.resolver.add_permanent(IPv6Address(K6), frames.KERNEL_MAC)
    return host


def send(host, packet: bytes, destination_mac: bytes = frames.HOST_MAC) -> list[bytes]:
    """The packet in (in a frame to ``destination_mac`` over TAP); the IP packets answered."""
    if isinstance(host, TapHost):
        ethertype = 0x0800 if packet[0] >> 4 == 4 else 0x86DD
        out = host.receive(frames.ethernet_frame(destination_mac, frames.KERNEL_MAC, ethertype, packet), 1.0)
        return [join(frame)[14:] for frame in out]
    return [join(frame) for frame in host.receive(packet, 1.0)]


def answer_tcp(packet: bytes) -> tuple[object, dpkt.tcp.TCP]:
    ip = dpkt.ip.IP(packet) if packet[0] >> 4 == 4 else dpkt.ip6.IP6(packet)
    assert isinstance(ip.data, dpkt.tcp.TCP)
    return ip, ip.data


def checksum_verifies(packet: bytes) -> bool:
    """dpkt recomputes the TCP checksum (sum = 0 then bytes): the same as carried?"""
    ip, tcp = answer_tcp(packet)
    carried = tcp.sum
    tcp.sum = 0
    if packet[0] >> 4 == 4:
        ip.sum = 0
        recomputed = dpkt.tcp.TCP(bytes(ip)[ip.hl * 4:]).sum
    else:
        recomputed = dpkt.tcp.TCP(bytes(ip)[40:]).sum
    return carried == recomputed


HOSTS = [pytest.param(tun, 4, id="tun-ipv4"), pytest.param(tun, 6, id="tun-ipv6"),
         pytest.param(tap, 4, id="tap-ipv4"), pytest.param(tap, 6, id="tap-ipv6")]


@pytest.mark.parametrize("make, family", HOSTS)
def test_rfc9293_3_10_7_1_a_syn_to_a_closed_port_gets_rst_ack_with_seq_0_and_ack_seq_plus_1(make, family):
    host = make(family)
    out = send(host, segment(SYN, seq=1000, opts=b"\x02\x04\x05\xb4", family=family, tos=0xB9))
    assert len(out) == 1
    ip, tcp = answer_tcp(out[0])
    assert (tcp.sport, tcp.dport, tcp.seq, tcp.ack, tcp.flags, tcp.win) == (80, 40000, 0, 1001, RST | ACK, 0)
    assert tcp.off == 5 and tcp.data == b"" and checksum_verifies(out[0])
    if family == 4:
        # As Linux 6.18's RST: TTL 64, DF, the request's TOS without its ECN bits.
        assert (ip.src, ip.dst, ip.ttl, ip.df, ip.tos) == (frames.ip(H4), frames.ip(K4), 64, 1, 0xB8)
    else:
        assert (ip.src, ip.dst, ip.hlim, ip.fc) == (frames.ip6(H6), frames.ip6(K6), 64, 0xB8)
    assert host.stats["drop.tcp_port_closed"] == 1 and host.stats["tcp_resets_sent"] == 1


@pytest.mark.parametrize("make, family", HOSTS)
def test_rfc9293_3_10_7_1_a_segment_with_ack_gets_a_rst_at_its_ack_number(make, family):
    out = send(make(family), segment(ACK | PSH, seq=5, ack=0xDEADBEEF, data=b"hello", family=family))
    _, tcp = answer_tcp(out[0])
    assert (tcp.seq, tcp.ack, tcp.flags) == (0xDEADBEEF, 0, RST)


@pytest.mark.parametrize("family", [4, 6])
def test_rfc9293_3_4_seg_len_counts_syn_fin_and_the_data_and_wraps(family):
    out = send(tun(family), segment(SYN | FIN | URG, seq=2**32 - 3, data=b"abcd", family=family))
    _, tcp = answer_tcp(out[0])
    assert (tcp.seq, tcp.ack, tcp.flags) == (0, (2**32 - 3 + 4 + 2) % 2**32, RST | ACK)


@pytest.mark.parametrize("make, family", HOSTS)
@pytest.mark.parametrize("flags", [RST, RST | ACK, RST | SYN, RST | FIN | PSH], ids=["rst", "rst-ack", "rst-syn", "rst-fin"])
def test_rfc9293_3_10_7_1_a_rst_is_never_answered(make, family, flags):
    host = make(family)
    assert send(host, segment(flags, ack=7, family=family)) == []
    assert host.stats.last_drop == "tcp_reset_discarded"


@pytest.mark.parametrize("destination, mac", [
    ("192.0.2.255", frames.BROADCAST_MAC), ("255.255.255.255", frames.BROADCAST_MAC),
    ("224.0.0.1", bytes.fromhex("01005e000001")), ("ff02::1", bytes.fromhex("333300000001"))])
def test_rfc1122_4_2_3_10_nothing_to_a_broadcast_or_multicast_address(destination, mac):
    host = tap(4)
    family = 6 if ":" in destination else 4
    assert send(host, segment(SYN, family=family, dst=destination), destination_mac=mac) == []
    assert host.stats.last_drop == "tcp_not_unicast"


def test_rfc1122_4_2_3_10_nothing_to_multicast_over_tun_either():
    host = tun(6)
    assert send(host, segment(SYN, family=6, dst="ff02::1")) == []
    assert host.stats.last_drop == "tcp_not_unicast"


@pytest.mark.parametrize("family", [4, 6])
@pytest.mark.parametrize("damage, reason", [
    (lambda tcp: tcp[:16] + bytes([tcp[16] ^ 0xFF]) + tcp[17:], "tcp_bad_checksum"),
    (lambda tcp: tcp[:12] + b"\x40" + tcp[13:], "tcp_bad_header_length"),
    (lambda tcp: tcp[:12] + b"\xf0" + tcp[13:], "tcp_bad_header_length"),
    (lambda tcp: tcp[:19], "tcp_truncated"),
], ids=["checksum", "offset-4", "offset-past-end", "truncated"])
def test_rfc1122_4_2_2_7_a_segment_that_does_not_verify_is_dropped_unanswered(family, damage, reason):
    wire = segment(SYN, family=family)
    start = 20 if family == 4 else 40
    tcp = damage(wire[start:])
    packet = frames.ipv4_datagram(K4, H4, 6, tcp) if family == 4 else frames.ipv6_packet(tcp, next_header=6)
    host = tun(family)
    assert send(host, packet) == []
    assert host.stats.last_drop == reason


@pytest.mark.parametrize("family", [4, 6])
def test_rfc9293_3_1_malformed_options_do_not_stop_the_rst(family):
    # An option whose length runs past the header: ignored (a closed port reads no options).
    out = send(tun(family), segment(SYN, opts=b"\x02\x09\x05\xb4", family=family))
    assert len(out) == 1 and answer_tcp(out[0])[1].flags == RST | ACK


@given(flags=st.integers(0, 255), seq=st.integers(0, 2**32 - 1), ack=st.integers(0, 2**32 - 1),
       data=st.binary(max_size=40), family=st.sampled_from([4, 6]))
def test_rfc9293_3_10_7_1_every_segment_to_a_closed_port(flags, seq, ack, data, family):
    out = send(tun(family), segment(flags, seq=seq, ack=ack, data=data, family=family))
    if flags & RST:
        assert out == []
        return
    assert len(out) == 1
    _, tcp = answer_tcp(out[0])
    if flags & ACK:
        assert (tcp.seq, tcp.ack, tcp.flags) == (ack, 0, RST)
    else:
        length = len(data) + bool(flags & SYN) + bool(flags & FIN)
        assert (tcp.seq, tcp.ack, tcp.flags) == (0, (seq + length) % 2**32, RST | ACK)


class RecordingLayer:
    """A TCP layer in TcpLayer's shape that answers every segment with an empty ACK."""

    def __init__(self) -> None:
        self.seen: list = []

    def receive(self, source, destination, segment, now):
        self.seen.append((source, destination, segment, now))
        return [(destination, source, TcpSegment(segment.destination_port, segment.source_port, 7, 8,
                                                 TcpFlags.ACK, 100))]

    def poll(self, now):
        return [(IPv6Address(H6) if self.family == 6 else IPv4Address(H4),
                 IPv6Address(K6) if self.family == 6 else IPv4Address(K4),
                 TcpSegment(1, 2, 3, 4, TcpFlags.FIN | TcpFlags.ACK, 5))]

    def next_deadline(self):
        return 42.0


@pytest.mark.parametrize("make, family", HOSTS)
def test_the_tcp_layer_is_one_replaceable_part_of_each_host(make, family):
    host = make(family)
    layer = RecordingLayer()
    layer.family = family
    (host.ip if family == 4 else host.ip6).tcp = layer
    out = send(host, segment(SYN, family=family))
    (source, destination, seen, now), = layer.seen
    assert (str(source), str(destination), seen.flags, now) == (K4 if family == 4 else K6,
                                                                H4 if family == 4 else H6, TcpFlags.SYN, 1.0)
    _, tcp = answer_tcp(out[0])
    assert (tcp.seq, tcp.ack, tcp.flags, tcp.win) == (7, 8, ACK, 100) and checksum_verifies(out[0])
    assert host.next_deadline(1.0) <= 42.0
    polled = [join(f) for f in host.poll(1.0)]
    polled = [p[14:] if isinstance(host, TapHost) else p for p in polled]
    assert any(answer_tcp(p)[1].flags == FIN | ACK for p in polled if p[0] >> 4 == family)


def test_a_layer_without_listeners_has_no_timers():
    from stack.stats import Stats

    layer = TcpLayer(b"x" * 16, Stats())
    assert layer.poll(5.0) == [] and layer.next_deadline() is None
