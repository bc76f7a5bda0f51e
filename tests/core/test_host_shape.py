"""One host shape for TAP and TUN, and the verdict each frame gets, as a value.

``TapHost`` and ``TunHost`` differ only in the link in front of the IPv4 host; the handover from
link to network is one method for both. After ``receive`` the host's ``verdict`` says what
became of the frame (replies sent, or the drop reason and its detail): the tracer reads that
instead of comparing counters.
"""

from __future__ import annotations

import pytest

from stack import TapHost, TunHost
from stack.l2.link import EthernetLink
from stack.l2.point_to_point import PointToPointLink
from stack.node import Verdict, _Host
from stack.packet_info import IPV4_HEADER
from stack.testing import frames

BAD_CHECKSUM = frames.ECHO_REQUEST[:24] + b"\x00\x00" + frames.ECHO_REQUEST[26:]


def tap() -> TapHost:
    host = TapHost([frames.HOST_IP + "/24"], mac=frames.HOST_MAC)
    host.receive(frames.ARP_REQUEST, 0.0)  # learn the kernel's MAC
    return host


def tun(packet_info: bool = False) -> TunHost:
    return TunHost([frames.HOST_IP], peer=frames.KERNEL_IP, packet_info=packet_info)


def test_the_hosts_differ_only_in_their_link():
    assert isinstance(tap().link, EthernetLink) and isinstance(tun().link, PointToPointLink)
    for method in ("receive", "_deliver", "_frames", "poll", "next_deadline", "ping", "verdict"):
        assert getattr(TapHost, method) is getattr(TunHost, method) is getattr(_Host, method), method


@pytest.mark.parametrize("make, frame", [
    (tap, frames.ECHO_REQUEST),
    (tun, frames.ECHO_REQUEST[14:]),
    (lambda: tun(True), IPV4_HEADER + frames.ECHO_REQUEST[14:]),
], ids=["tap", "tun", "tun-pi"])
def test_every_datagram_goes_up_through_the_one_handover(make, frame):
    host = make()
    handed = []
    deliver = host._deliver
    host.link.deliver = lambda *args: handed.append(bytes(args[0])) or deliver(*args)
    assert len(host.receive(frame, 1.0)) == 1
    assert handed == [frames.ECHO_REQUEST[14:]]


def test_an_answered_frame_has_a_reply_and_no_drop():
    host = tap()
    out = host.receive(frames.ECHO_REQUEST, 1.0)
    assert host.verdict == Verdict(1) == Verdict(len(out), None, None)
    assert not host.verdict.dropped


def test_a_dropped_frame_has_its_reason_and_detail():
    host = tap()
    assert host.receive(BAD_CHECKSUM, 1.0) == []
    verdict = host.verdict
    assert verdict.dropped and verdict.replies == 0
    assert verdict.drop_reason == "ipv4_bad_checksum" == host.stats.last_drop
    assert "checksum 0x0000 does not verify" in str(verdict.drop_detail)


def test_the_verdict_is_the_last_frames_only():
    host = tun()
    host.receive(b"", 1.0)
    assert host.verdict.drop_reason == "tun_not_ipv4"
    host.receive(frames.ECHO_REQUEST[14:], 1.0)
    assert host.verdict == Verdict(1)
    assert host.stats.drops == {"tun_not_ipv4": 1}  # the counters still remember it


def test_a_consumed_frame_has_neither_replies_nor_a_drop():
    host = tap()
    reply = frames.arp_frame(frames.ARP_REPLY_OP, target_mac=frames.HOST_MAC)  # kernel: I am here
    assert host.receive(reply, 1.0) == []  # merged into the neighbour cache, nothing to say
    assert host.verdict == Verdict(0)
    assert host.stats["arp_replies_received"] == 1


@pytest.mark.parametrize("make", [
    lambda: TapHost(["192.0.2.2/24", "2001:db8::2/64"], mac="02:00:00:00:00:02"),
    lambda: TunHost(["192.0.2.2", "2001:db8::2/64"], peer=["192.0.2.1", "2001:db8::1"]),
], ids=["tap", "tun"])
def test_rfc8200_5_the_link_mtu_is_both_families(make):
    host = make()
    host.mtu = 1280
    assert (host.ip.mtu, host.ip6.mtu) == (1280, 1280)
    # RFC 8200 5: below 1280 a link cannot carry IPv6; nothing is changed.
    with pytest.raises(ValueError, match="at least 1280"):
        host.mtu = 1279
    assert (host.ip.mtu, host.ip6.mtu) == (1280, 1280)
