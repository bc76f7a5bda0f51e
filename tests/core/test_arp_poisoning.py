"""ARP cache poisoning (issue 13): a known neighbour is not moved to another MAC on the word of
one ARP packet; a flood of new senders cannot churn the cache.

RFC 826's merge believes every packet, so one forged frame claiming the pinger's address from
another MAC redirects every reply (Linux has the same weakness, measured in issue 13). Here the
old MAC is asked first (a unicast ARP request, as RFC 1122 2.3.2.1's unicast poll and RFC 5227
2.4's defence), and the entry moves only when it stays silent for a check interval.
"""

from __future__ import annotations

import logging
from ipaddress import IPv4Address

from stack import TapHost
from stack.l2.neighbor import ACTIVE_USE_S, NeighborCache
from tests.core.test_node_flows import (
    HOST_MAC, HOST_IP, KERNEL_IP, KERNEL_MAC, ZERO_MAC, arp, echo_request, expected_echo_reply, frames,
    pad, host, fresh,  # noqa: F401 (fixtures)
)

FORGED_MAC = bytes.fromhex("020000000666")
KERNEL = IPv4Address(KERNEL_IP)


def check_request() -> bytes:
    """The unicast ARP request that asks the old MAC whether it still has the address."""
    return pad(arp(1, HOST_MAC, HOST_IP, ZERO_MAC, KERNEL_IP, dst=KERNEL_MAC, src=HOST_MAC))


def test_a_claim_to_a_known_address_is_refused_and_the_old_mac_checked(host, caplog):
    with caplog.at_level(logging.WARNING):
        out = frames(host.receive(arp(2, FORGED_MAC, KERNEL_IP, ZERO_MAC, "192.0.2.77"), 1.0))
    assert out == [check_request()]
    assert host.link.cache.lookup(KERNEL, 1.0) == KERNEL_MAC
    assert host.stats.drops == {"arp_mac_change_refused": 1}
    assert host.stats["arp_mac_changes_refused"] == 1 and host.stats["arp_checks_sent"] == 1
    assert "02:00:00:00:06:66" in caplog.text and "02:00:00:00:00:01" in caplog.text
    # Replies keep going to the real MAC.
    assert frames(host.receive(echo_request(), 1.1)) == [expected_echo_reply()]


def test_the_old_mac_answering_the_check_keeps_the_entry(host):
    host.receive(arp(1, FORGED_MAC, KERNEL_IP, ZERO_MAC, KERNEL_IP), 1.0)  # a forged announcement
    host.receive(arp(2, KERNEL_MAC, KERNEL_IP, HOST_MAC, HOST_IP, dst=HOST_MAC), 1.2)  # the answer
    host.poll(1.0 + host.link.cache.check_interval)
    assert host.link.cache.lookup(KERNEL, 5.0) == KERNEL_MAC
    assert host.stats["arp_mac_changes_followed"] == 0


def test_a_datagram_from_the_old_mac_confirms_it_too(host):
    host.receive(arp(1, FORGED_MAC, KERNEL_IP, ZERO_MAC, KERNEL_IP), 1.0)
    assert frames(host.receive(echo_request(), 1.5)) == [expected_echo_reply()]
    host.poll(2.0)
    assert host.link.cache.lookup(KERNEL, 2.0) == KERNEL_MAC


def test_a_datagram_from_another_mac_does_not_confirm(host):
    host.receive(arp(1, FORGED_MAC, KERNEL_IP, ZERO_MAC, KERNEL_IP), 1.0)
    forged_echo = bytearray(echo_request())
    forged_echo[6:12] = FORGED_MAC
    host.receive(bytes(forged_echo), 1.5)
    host.poll(2.0)
    assert host.link.cache.lookup(KERNEL, 2.0) == FORGED_MAC  # the old MAC was silent


def test_a_peer_that_really_moved_is_followed_within_the_check_interval(host, caplog):
    moved_mac = bytes.fromhex("020000000077")
    host.receive(arp(1, moved_mac, KERNEL_IP, ZERO_MAC, KERNEL_IP), 10.0)
    interval = host.link.cache.check_interval
    assert host.next_deadline(10.0) == 10.0 + interval  # the loop wakes up when the check ends
    host.poll(10.0 + interval / 2)
    assert host.link.cache.lookup(KERNEL, 10.5) == KERNEL_MAC
    with caplog.at_level(logging.WARNING):
        host.poll(10.0 + interval)
    assert host.link.cache.lookup(KERNEL, 11.0) == moved_mac
    assert host.stats["arp_mac_changes_followed"] == 1
    assert "moved from 02:00:00:00:00:01 to 02:00:00:00:00:77" in caplog.text


def test_a_flood_of_claims_sends_one_check_per_interval(host):
    sent = 0
    for i in range(200):  # 200 forged claims in 2 s, each from another MAC
        forged = bytes([2, 0, 0, 6, i, 1])
        out = frames(host.receive(arp(1, forged, KERNEL_IP, ZERO_MAC, KERNEL_IP), 1.0 + i / 100))
        sent += out.count(check_request())
        host.receive(arp(2, KERNEL_MAC, KERNEL_IP, HOST_MAC, HOST_IP, dst=HOST_MAC), 1.0 + i / 100)
        host.poll(1.0 + i / 100)
    assert sent <= 3  # t = 1.0, 2.0 and 2.99: one per interval
    assert host.stats["arp_mac_changes_refused"] == 200
    assert host.link.cache.lookup(KERNEL, 3.0) == KERNEL_MAC


def test_new_senders_are_rate_limited_but_known_ones_always_answered(host):
    answered = 0
    for i in range(300):  # 300 requests for us from senders we do not know, at one instant
        sender = bytes([2, 0, 0, 1, i >> 8, i & 0xFF])
        answered += len(host.receive(arp(1, sender, f"198.51.100.{i % 250 + 1}" if i < 250 else
                                         f"203.0.113.{i - 249}", ZERO_MAC, HOST_IP), 1.0))
    assert answered == 100
    assert host.stats.drops == {"arp_new_sender_rate_limited": 200}
    # The kernel is known: its request is answered even now.
    assert len(host.receive(arp(1, KERNEL_MAC, KERNEL_IP, ZERO_MAC, HOST_IP), 1.0)) == 1


def test_a_flood_of_new_senders_does_not_evict_a_neighbour_in_active_use():
    host = TapHost([f"{HOST_IP}/24"], mac="02:00:00:00:00:02", neighbor_cache=NeighborCache(capacity=16))
    host.receive(arp(1, KERNEL_MAC, KERNEL_IP, ZERO_MAC, HOST_IP), 0.0)
    now = 0.0
    for i in range(2000):  # 2000 new senders over 40 s while the kernel pings at 25/s
        now = i * 0.02
        sender_ip = f"198.51.{100 + i // 250}.{i % 250 + 1}" if i < 500 else f"203.0.113.{i % 250 + 1}"
        host.receive(arp(1, bytes([2, 0, 0, 1, i >> 8, i & 0xFF]), sender_ip, ZERO_MAC, HOST_IP), now)
        assert frames(host.receive(echo_request(seq=i % 65536), now)) == [
            expected_echo_reply(seq=i % 65536, ip_id=i + 1)], i
    assert len(host.link.cache.entries) == 16
    assert ACTIVE_USE_S > 0.02


def test_merge_directly_on_the_cache():
    cache = NeighborCache(lifetime=60.0)
    mac_a, mac_b = bytes.fromhex("020000000001"), bytes.fromhex("020000000002")
    address = IPv4Address("192.0.2.9")
    assert cache.merge(address, mac_a, 0.0) == (None, False, None)  # new: learnt
    assert cache.merge(address, mac_b, 1.0) == (None, True, mac_a)  # refused, check mac_a
    assert cache.merge(address, mac_b, 1.5) == (None, True, None)  # refused, check running
    assert cache.next_deadline() == 1.0 + cache.check_interval
    assert [m.new for m in cache.end_checks(2.0)] == [mac_b]
    assert cache.lookup(address, 2.0) == mac_b
    # An expired entry is learnt again at once (RFC 826).
    assert cache.merge(address, mac_a, 100.0) == (None, False, None)
    assert cache.lookup(address, 100.0) == mac_a


def test_checks_have_a_budget_over_all_neighbours():
    """A flood claiming many known addresses from new MACs starts at most CHECKS_BURST checks at
    once (then CHECKS_PER_SECOND): beyond, claims are refused without a check (and no warning)."""
    from stack.l2.link import CHECKS_BURST

    tap = TapHost([f"{HOST_IP}/24"], mac="02:00:00:00:00:02", neighbor_cache=NeighborCache())
    neighbours = [f"198.51.100.{i}" for i in range(1, 61)]
    for i, address in enumerate(neighbours):  # 60 known neighbours
        tap.receive(arp(1, bytes([2, 0, 0, 5, 0, i]), address, ZERO_MAC, HOST_IP), 0.0)
    sent = 0
    for i, address in enumerate(neighbours):  # each claimed from another MAC, at one instant
        out = frames(tap.receive(arp(1, bytes([2, 0, 0, 6, 0, i]), address, ZERO_MAC, "192.0.2.99"), 1.0))
        sent += len(out)
    assert sent == CHECKS_BURST
    assert tap.stats["arp_mac_changes_refused"] == 60
    tap.poll(3.0)  # the checks end: nobody answered them, so those entries move; the rest stay
    moved = sum(tap.link.cache.lookup(IPv4Address(a), 3.0) == bytes([2, 0, 0, 6, 0, i])
                for i, a in enumerate(neighbours))
    assert moved == CHECKS_BURST
