"""Golden flows for RFC 5227 (probe, announce, defend) and for a LAN of virtual hosts on one
TapHost: a frame in, the exact frames out (built with dpkt), the exact counters.

The kernel side is 192.0.2.1 at 02:..:01; OTHER_MAC is a third host that claims our address.
"""

from __future__ import annotations

import logging
from ipaddress import IPv4Address, IPv4Interface

import pytest

from stack import TapHost
from stack.l2 import conflict
from tests.core.test_node_flows import (
    BROADCAST_MAC, KERNEL_IP, KERNEL_MAC, OTHER_MAC, ZERO_MAC, arp, echo_request, expected_echo_reply,
    frames, pad,
)

HOST_IP = "192.0.2.2"
MAC = bytes.fromhex("020000000002")


def announcement(address: str, mac: bytes) -> bytes:
    """RFC 5227 3: an ARP request whose sender and target address are both the announced one."""
    return pad(arp(1, mac, address, ZERO_MAC, address))


def probe(address: str, mac: bytes) -> bytes:
    """RFC 5227 2.1.1: an ARP request with sender address 0.0.0.0 and target MAC zero."""
    return pad(arp(1, mac, "0.0.0.0", ZERO_MAC, address))


def midpoint(low: float, high: float) -> float:
    """A stand-in for random.uniform that makes RFC 5227's random delays predictable."""
    return (low + high) / 2


def timeline(host: TapHost, until: float, step: float = 0.25) -> list[tuple[float, bytes]]:
    """Poll the host at its deadlines up to ``until``; (time, frame) for every frame sent."""
    sent: list[tuple[float, bytes]] = []
    now = 0.0
    while now <= until:
        sent += [(now, frame) for frame in frames(host.poll(now))]
        deadline = host.next_deadline(now)
        if deadline is None:
            break
        now = max(deadline, now + 1e-9) if deadline > now else now + step
    return sent


def counters(host: TapHost) -> dict[str, int]:
    return host.stats.as_dict()


# ---------------------------------------------------------------------- announcing (no probing)

def test_rfc5227_2_3_two_announcements_two_seconds_apart():
    host = TapHost([f"{HOST_IP}/24"], mac=MAC)
    assert timeline(host, 60.0) == [(0.0, announcement(HOST_IP, MAC)), (2.0, announcement(HOST_IP, MAC))]
    assert counters(host) == {"arp_announcements_sent": 2, "tx_frames": 2}


def test_rfc5227_2_3_announcing_does_not_delay_answers():
    host = TapHost([f"{HOST_IP}/24"], mac=MAC)
    host.poll(0.0)  # the first announcement; the second is due at 2.0
    out = frames(host.receive(arp(1, KERNEL_MAC, KERNEL_IP, ZERO_MAC, HOST_IP), 0.5))
    assert out == [pad(arp(2, MAC, HOST_IP, KERNEL_MAC, KERNEL_IP, dst=KERNEL_MAC, src=MAC))]
    assert frames(host.receive(echo_request(dst_mac=MAC), 0.6)) == [expected_echo_reply()]


# ---------------------------------------------------------------------- defending

def test_rfc5227_2_4_c_defends_at_most_once_per_defend_interval(caplog):
    host = TapHost([f"{HOST_IP}/24"], mac=MAC)
    timeline(host, 5.0)
    host.stats.counters.clear()
    claim = arp(1, OTHER_MAC, HOST_IP, ZERO_MAC, HOST_IP)  # a gratuitous ARP from a usurper
    with caplog.at_level(logging.WARNING):
        assert frames(host.receive(claim, 10.0)) == [announcement(HOST_IP, MAC)]
    assert "02:00:00:00:00:99 claims 192.0.2.2" in caplog.text
    assert host.receive(claim, 10.0 + conflict.DEFEND_INTERVAL_S - 0.1) == []
    assert frames(host.receive(claim, 10.0 + conflict.DEFEND_INTERVAL_S)) == [announcement(HOST_IP, MAC)]
    assert counters(host) == {
        "rx_frames": 3, "rx_arp": 3, "tx_frames": 2, "arp_defences_sent": 2,
        "arp_defence_rate_limited": 1, "drop.arp_address_conflict": 3, "dropped": 3,
    }


def test_rfc5227_2_4_c_the_address_stays_ours_after_a_conflict():
    host = TapHost([f"{HOST_IP}/24"], mac=MAC)
    timeline(host, 5.0)
    host.receive(arp(2, OTHER_MAC, HOST_IP, KERNEL_MAC, KERNEL_IP, dst=KERNEL_MAC), 6.0)
    assert IPv4Address(HOST_IP) not in host.link.cache  # the claim is never learnt
    out = frames(host.receive(arp(1, KERNEL_MAC, KERNEL_IP, ZERO_MAC, HOST_IP), 7.0))
    assert out == [pad(arp(2, MAC, HOST_IP, KERNEL_MAC, KERNEL_IP, dst=KERNEL_MAC, src=MAC))]


def test_rfc5227_2_4_a_probe_for_our_address_is_answered_not_a_conflict():
    host = TapHost([f"{HOST_IP}/24"], mac=MAC)
    timeline(host, 5.0)
    out = frames(host.receive(arp(1, OTHER_MAC, "0.0.0.0", ZERO_MAC, HOST_IP), 6.0))
    assert out == [pad(arp(2, MAC, HOST_IP, OTHER_MAC, "0.0.0.0", dst=OTHER_MAC, src=MAC))]
    assert host.stats.drops == {}


# ---------------------------------------------------------------------- probing

def test_rfc5227_2_1_1_three_probes_then_announce_wait_then_two_announcements():
    host = TapHost([f"{HOST_IP}/24"], mac=MAC, probe=True, uniform=midpoint)
    # PROBE_WAIT: first probe after uniform(0, 1) = 0.5 s; then uniform(1, 2) = 1.5 s apart;
    # ANNOUNCE_WAIT (2 s) after the last probe the address is ours and announced twice.
    assert timeline(host, 60.0) == [
        (0.5, probe(HOST_IP, MAC)), (2.0, probe(HOST_IP, MAC)), (3.5, probe(HOST_IP, MAC)),
        (5.5, announcement(HOST_IP, MAC)), (7.5, announcement(HOST_IP, MAC)),
    ]
    assert counters(host) == {"arp_probes_sent": 3, "arp_announcements_sent": 2, "tx_frames": 5}


def test_rfc5227_2_1_1_an_address_being_probed_is_not_used():
    host = TapHost([f"{HOST_IP}/24"], mac=MAC, probe=True, uniform=midpoint)
    timeline(host, 4.0)
    host.stats.counters.clear()
    assert host.receive(arp(1, KERNEL_MAC, KERNEL_IP, ZERO_MAC, HOST_IP), 4.0) == []
    assert host.receive(echo_request(dst_mac=MAC), 4.0) == []
    assert host.stats.drops == {"arp_not_for_us": 1, "ipv4_not_for_us": 1}
    timeline(host, 6.0)  # past ANNOUNCE_WAIT: in use from now on
    assert frames(host.receive(arp(1, KERNEL_MAC, KERNEL_IP, ZERO_MAC, HOST_IP), 6.0)) == [
        pad(arp(2, MAC, HOST_IP, KERNEL_MAC, KERNEL_IP, dst=KERNEL_MAC, src=MAC))]
    assert frames(host.receive(echo_request(dst_mac=MAC), 6.0)) == [expected_echo_reply()]


@pytest.mark.parametrize("claim", [
    pytest.param(arp(2, OTHER_MAC, HOST_IP, MAC, "0.0.0.0", dst=MAC), id="reply-to-our-probe"),
    pytest.param(arp(1, OTHER_MAC, HOST_IP, ZERO_MAC, HOST_IP), id="announcement"),
    pytest.param(arp(1, OTHER_MAC, "0.0.0.0", ZERO_MAC, HOST_IP), id="their-probe-for-it"),
])
def test_rfc5227_2_1_1_a_conflict_while_probing_gives_the_address_up(claim, caplog):
    host = TapHost([f"{HOST_IP}/24", "192.0.2.3/24"], mac=MAC, probe=True, uniform=midpoint)
    timeline(host, 1.0)  # each address has sent its first probe
    host.stats.counters.clear()
    with caplog.at_level(logging.WARNING):
        assert host.receive(claim, 1.0) == []
    assert "192.0.2.2 is in use by 02:00:00:00:00:99" in caplog.text
    assert counters(host) == {"rx_frames": 1, "rx_arp": 1, "tx_frames": 0, "arp_addresses_abandoned": 1,
                              "drop.arp_address_conflict": 1, "dropped": 1}
    # 192.0.2.3 goes on to be used; 192.0.2.2 is never probed, announced or answered for again.
    later = [frame for _, frame in timeline(host, 60.0)]
    assert later == [probe("192.0.2.3", MAC)] * 2 + [announcement("192.0.2.3", MAC)] * 2
    assert host.receive(arp(1, KERNEL_MAC, KERNEL_IP, ZERO_MAC, HOST_IP), 61.0) == []
    assert host.receive(echo_request(dst_mac=MAC), 61.0) == []
    assert host.ip.preferred_source(IPv4Address(KERNEL_IP)) == IPv4Address("192.0.2.3")


def test_rfc5227_2_1_1_another_hosts_probe_for_a_different_address_is_no_conflict():
    host = TapHost([f"{HOST_IP}/24"], mac=MAC, probe=True, uniform=midpoint)
    timeline(host, 1.0)
    assert host.receive(arp(1, OTHER_MAC, "0.0.0.0", ZERO_MAC, "192.0.2.77"), 1.0) == []
    assert [t for t, _ in timeline(host, 60.0) if t >= 1.0] == [2.0, 3.5, 5.5, 7.5]


def test_probing_without_a_random_source_uses_the_lower_bounds():
    host = TapHost([f"{HOST_IP}/24"], mac=MAC, probe=True)
    assert [t for t, _ in timeline(host, 60.0)] == [0.0, 1.0, 2.0, 4.0, 6.0]


# ---------------------------------------------------------------------- a LAN of hosts

LAN = ["192.0.2.10/24", "192.0.2.11/24", "198.51.100.7/24"]


def mac_of(address: str) -> bytes:
    return bytes.fromhex("0200") + IPv4Address(address).packed


def test_every_address_has_its_own_mac_and_announces_from_it():
    host = TapHost(LAN)
    assert [str(host.mac_of(i.split("/")[0])) for i in LAN] == [
        "02:00:c0:00:02:0a", "02:00:c0:00:02:0b", "02:00:c6:33:64:07"]
    assert host.mac == mac_of("192.0.2.10")
    sent = [frame for _, frame in timeline(host, 60.0)]
    expected = [announcement(a.split("/")[0], mac_of(a.split("/")[0])) for a in LAN]
    assert sorted(sent) == sorted(expected * 2)


@pytest.mark.parametrize("address", ["192.0.2.10", "192.0.2.11"])
def test_each_host_answers_arp_and_ping_from_its_own_mac(address):
    host = TapHost(LAN)
    mac = mac_of(address)
    out = frames(host.receive(arp(1, KERNEL_MAC, KERNEL_IP, ZERO_MAC, address), 0.0))
    assert out == [pad(arp(2, mac, address, KERNEL_MAC, KERNEL_IP, dst=KERNEL_MAC, src=mac))]
    out = frames(host.receive(echo_request(dst_mac=mac, dst=address), 0.1))
    reply = expected_echo_reply(src=address)
    assert out == [reply[:6] + mac + reply[12:]]


def test_a_frame_to_a_mac_of_none_of_our_hosts_is_not_for_us():
    host = TapHost(LAN)
    host.receive(arp(1, KERNEL_MAC, KERNEL_IP, ZERO_MAC, "192.0.2.10"), 0.0)
    assert host.receive(echo_request(dst_mac=mac_of("192.0.2.12"), dst="192.0.2.10"), 0.1) == []
    assert host.stats.drops == {"ethernet_not_for_us": 1}


def test_rfc1122_3_3_4_2_weak_host_model_any_of_our_macs_takes_any_of_our_addresses():
    host = TapHost(LAN)
    host.receive(arp(1, KERNEL_MAC, KERNEL_IP, ZERO_MAC, "192.0.2.10"), 0.0)
    out = frames(host.receive(echo_request(dst_mac=mac_of("192.0.2.11"), dst="192.0.2.10"), 0.1))
    reply = expected_echo_reply(src="192.0.2.10")
    assert out == [reply[:6] + mac_of("192.0.2.10") + reply[12:]]


def test_with_mac_given_all_addresses_share_it():
    host = TapHost(LAN, mac=MAC)
    for interface in LAN:
        address = interface.split("/")[0]
        out = frames(host.receive(arp(1, KERNEL_MAC, KERNEL_IP, ZERO_MAC, address), 0.0))
        assert out == [pad(arp(2, MAC, address, KERNEL_MAC, KERNEL_IP, dst=KERNEL_MAC, src=MAC))]


def test_a_datagram_waiting_for_arp_leaves_from_its_source_address_mac():
    host = TapHost(LAN)
    out = frames(host.ping(KERNEL_IP, 0.0, identifier=1, sequence=1))
    source_mac = mac_of("192.0.2.10")  # the first address on the kernel's network
    assert out == [pad(arp(1, source_mac, "192.0.2.10", ZERO_MAC, KERNEL_IP))]
    out = frames(host.receive(arp(2, KERNEL_MAC, KERNEL_IP, source_mac, "192.0.2.10", dst=source_mac), 0.1))
    assert len(out) == 1 and out[0][:12] == KERNEL_MAC + source_mac


def test_an_address_given_twice_is_refused():
    with pytest.raises(ValueError, match="twice"):
        TapHost(["192.0.2.10/24", "192.0.2.10/24"])


def documentation_lan() -> list[IPv4Interface]:
    """Every host address of the three documentation networks (RFC 5737) but .1, the kernel's
    on each: 759 hosts."""
    return [IPv4Interface(f"{prefix}.{n}/24") for prefix in ("192.0.2", "198.51.100", "203.0.113")
            for n in range(2, 255)]


def test_a_lan_of_759_hosts_announces_in_batches_and_every_host_answers():
    interfaces = documentation_lan()
    host = TapHost(interfaces)
    first = host.poll(0.0)
    assert len(first) == conflict.BATCH and host.next_deadline(0.0) == 0.0  # the rest at once
    sent = len(first) + sum(len(host.poll(0.0)) for _ in range(2))
    assert sent == len(interfaces) and host.next_deadline(0.0) == 2.0
    for interface in interfaces:
        address, mac = str(interface.ip), mac_of(str(interface.ip))
        kernel = str(interface.network.network_address + 1)
        out = frames(host.receive(arp(1, KERNEL_MAC, kernel, ZERO_MAC, address), 1.0))
        assert out == [pad(arp(2, mac, address, KERNEL_MAC, kernel, dst=KERNEL_MAC, src=mac))], address
        out = frames(host.receive(echo_request(dst_mac=mac, src=kernel, dst=address), 1.0))
        reply = expected_echo_reply(src=address, dst=kernel, ip_id=1)
        assert len(out) == 1 and out[0][:12] == KERNEL_MAC + mac and out[0][26:34] == reply[26:34]
    assert host.stats["arp_replies_sent"] == host.stats["icmp_echo_replies_sent"] == len(interfaces)
    assert host.stats.drops == {}


def test_rfc5227_3_announce_now_sends_one_announcement_per_address_in_use():
    host = TapHost(LAN, probe=True, uniform=midpoint)
    assert host.announce(0.0) == []  # all still being probed
    timeline(host, 60.0)
    out = sorted(frames(host.announce(61.0)))
    assert out == sorted(announcement(a.split("/")[0], mac_of(a.split("/")[0])) for a in LAN)
