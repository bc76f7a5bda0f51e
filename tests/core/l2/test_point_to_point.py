"""The point-to-point link on its own: what it hands up, what it drops, how it frames.

The network layer above is a recording ``deliver`` (no IPv4 host), so these tests check the
link's part only: the packet-information header (format from ``stack.packet_info``), the IP
version nibble without it, and that prediction changes nothing.
"""

from __future__ import annotations

import struct
from ipaddress import IPv4Address

import pytest
from hypothesis import example, given
from hypothesis import strategies as st

from stack.buffers import join
from stack.l2.link import EthernetLink, Link
from stack.l2.point_to_point import PointToPointLink
from stack.stats import Stats
from stack.seam import Outbound
from stack.testing import frames

DATAGRAM = frames.ECHO_REQUEST[14:]
IPV6_PACKET = bytes.fromhex("6000000000083a40") + bytes(32) + bytes.fromhex("8000f7ff00000000")
ANSWER = [b"answer"]


def pi(protocol: int = 0x0800, flags: int = 0) -> bytes:
    """struct tun_pi, written here by hand: flags in host byte order, protocol in network order."""
    return struct.pack("=H", flags) + struct.pack("!H", protocol)


class Up:
    """A network layer that records what the link hands up and answers each with ``ANSWER``."""

    def __init__(self) -> None:
        self.datagrams: list[tuple[bytes, bool, float]] = []

    def __call__(self, datagram, link_broadcast: bool, now: float):
        self.datagrams.append((bytes(datagram), link_broadcast, now))
        return [ANSWER]


def link(packet_info: bool, predict: bool = True) -> tuple[PointToPointLink, Up, Stats]:
    up, stats = Up(), Stats()
    p2p = PointToPointLink(up, stats, packet_info)
    p2p.predict = predict
    return p2p, up, stats


@pytest.mark.parametrize("packet_info", [False, True], ids=["no-pi", "pi"])
def test_an_ipv4_packet_goes_up_without_its_header_and_the_answer_comes_back(packet_info):
    p2p, up, stats = link(packet_info)
    packet = pi() + DATAGRAM if packet_info else DATAGRAM
    assert p2p.receive(packet, 2.0) == [ANSWER]
    assert up.datagrams == [(DATAGRAM, False, 2.0)]
    assert stats.as_dict() == {}


def test_without_prediction_the_header_is_parsed_and_the_same_goes_up():
    p2p, up, _ = link(True, predict=False)
    assert p2p.receive(pi() + DATAGRAM, 1.0) == [ANSWER]
    assert up.datagrams == [(DATAGRAM, False, 1.0)]


@pytest.mark.parametrize("packet_info", [False, True], ids=["no-pi", "pi"])
def test_send_frames_the_datagram_as_buffers_with_the_header_as_one_more(packet_info):
    p2p, _, _ = link(packet_info)
    datagram = [DATAGRAM[:20], memoryview(DATAGRAM)[20:]]
    [packet] = p2p.send(Outbound(IPv4Address("203.0.113.9"), datagram), 1.0)  # next hop ignored
    assert packet[-2:] == datagram  # the same buffers, never joined
    assert join(packet) == (pi() if packet_info else b"") + DATAGRAM


@pytest.mark.parametrize("packet, reason", [
    (pi(0x86DD) + IPV6_PACKET, "tun_ipv6_not_supported"),
    (pi(0x0806) + bytes(28), "tun_not_ipv4"),
    (pi(0x0800, flags=0x0001) + DATAGRAM, "tun_truncated"),
    (pi(0x0800)[:3], "tun_runt"),
], ids=["ipv6", "arp", "truncated-flag", "runt"])
def test_packet_information_drops_are_counted_and_nothing_goes_up(packet, reason):
    p2p, up, stats = link(True)
    assert p2p.receive(packet, 1.0) == []
    assert up.datagrams == [] and stats.drops == {reason: 1}


@pytest.mark.parametrize("packet, reason", [
    (IPV6_PACKET, "tun_ipv6_not_supported"),
    (b"", "tun_not_ipv4"),
    (pi() + DATAGRAM, "tun_not_ipv4"),  # a header where none was asked for: version nibble 0
], ids=["ipv6", "empty", "unexpected-header"])
def test_without_packet_information_the_version_nibble_decides(packet, reason):
    p2p, up, stats = link(False)
    assert p2p.receive(packet, 1.0) == []
    assert up.datagrams == [] and stats.drops == {reason: 1}


@given(st.binary(max_size=4).map(lambda head: head + DATAGRAM) | st.binary(max_size=40))
@example(pi() + DATAGRAM)
@example(pi(flags=0x0001) + DATAGRAM)  # TUN_PKT_STRIP: the prediction must not take it
@example(pi(flags=0x0100) + DATAGRAM)  # another flag bit: not TUN_PKT_STRIP (host byte order)
def test_prediction_hands_up_and_drops_exactly_as_the_general_path(packet):
    (fast, fast_up, fast_stats), (slow, slow_up, slow_stats) = link(True), link(True, predict=False)
    assert fast.receive(packet, 1.0) == slow.receive(packet, 1.0)
    assert fast_up.datagrams == slow_up.datagrams
    assert fast_stats.as_dict() == slow_stats.as_dict()


def test_both_links_have_one_shape_and_no_timers_on_a_point_to_point_link():
    p2p, _, _ = link(False)
    assert (p2p.poll(5.0), p2p.next_deadline(5.0)) == ([], None)
    for cls in (EthernetLink, PointToPointLink):
        missing = [name for name in ("receive", "send", "poll", "next_deadline", "medium")
                   if not hasattr(cls, name)]
        assert not missing, (cls, missing)
    assert {EthernetLink.medium, PointToPointLink.medium} == {"ethernet", "ip"}
    assert {"receive", "send", "poll", "next_deadline"} <= set(dir(Link))
