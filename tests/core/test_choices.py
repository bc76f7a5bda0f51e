"""Behaviours RFCs leave open, as keyword arguments of the hosts (the CLI flags' counterparts)."""

from __future__ import annotations

import pytest

from stack import TapHost, TunHost
from stack.buffers import join
from stack.l3.ipv4 import Ipv4Packet
from tests import frames

K, H = frames.KERNEL_IP, frames.HOST_IP


def test_rfc1122_3_2_1_7_the_ttl_of_our_datagrams_is_configurable():
    host = TunHost([H], peer=K, ttl=7)
    [reply] = host.receive(frames.echo_request_frame()[14:], 1.0)
    assert Ipv4Packet.parse(join(reply)).ttl == 7
    assert Ipv4Packet.parse(join(TunHost([H], peer=K).receive(frames.echo_request_frame()[14:], 1.0)[0])).ttl == 64


@pytest.mark.parametrize("ttl", [0, 256])
def test_rfc1122_3_2_1_7_a_ttl_of_zero_or_above_255_is_refused(ttl):
    with pytest.raises(ValueError, match="TTL"):
        TunHost([H], ttl=ttl)


def test_rfc1122_2_3_2_1_arp_entries_live_as_long_as_configured():
    host = TapHost([f"{H}/24"], mac=frames.HOST_MAC, arp_lifetime=5.0)
    host.receive(frames.arp_frame(1), 0.0)  # learns the kernel
    assert len(host.receive(frames.echo_request_frame(), 4.9)) == 1  # an echo reply, no ARP
    out = host.receive(frames.echo_request_frame(), 5.0)  # expired: the reply waits for ARP
    assert host.stats["arp_requests_sent"] == 1 and host.stats["arp_queued"] == 1 and len(out) == 1
    with pytest.raises(ValueError, match="lifetime"):
        TapHost([f"{H}/24"], arp_lifetime=0)


def udp_to_closed_port() -> bytes:
    return frames.ipv4_datagram(K, H, 17, b"\x30\x39\x00\x35\x00\x0c\x00\x00abcd")


def test_rfc1122_3_2_2_the_icmp_error_rate_and_burst_are_configurable():
    host = TunHost([H], peer=K, icmp_errors_per_second=1.0, icmp_error_burst=2)
    sent = [len(host.receive(udp_to_closed_port(), 10.0)) for _ in range(5)]
    assert sent == [1, 1, 0, 0, 0] and host.stats["icmp_error_rate_limited"] == 3
    assert len(host.receive(udp_to_closed_port(), 11.0)) == 1  # one token a second
    silent = TunHost([H], peer=K, icmp_errors_per_second=0, icmp_error_burst=0)
    assert silent.receive(udp_to_closed_port(), 1.0) == []


def test_rfc1122_3_3_2_the_reassembly_timeout_is_configurable():
    host = TunHost([H], peer=K, reassembly_timeout=2.0)
    first = frames.ipv4_datagram(K, H, 1, frames.icmp_echo(8, 1, 1, bytes(64))[:16], identification=9,
                                 more_fragments=True)
    host.receive(first, 10.0)
    assert host.next_deadline(10.0) == pytest.approx(12.0)
    assert host.poll(11.9) == []
    [time_exceeded] = host.poll(12.0)
    assert join(time_exceeded)[20] == 11  # ICMP Time Exceeded
    assert host.stats.drops == {"ipv4_reassembly_timeout": 1}
