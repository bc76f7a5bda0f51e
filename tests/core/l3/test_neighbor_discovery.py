"""Neighbor Discovery and DAD (stack/l3/neighbor_discovery.py): every RFC 4861 / RFC 4862 rule
it applies, one named test each, with the messages we send compared byte for byte to golden
packets built independently (dpkt builds the IPv6 packet and sums the ICMPv6 checksum); the
validation drops; the bounded cache and queue; and a hypothesis state machine against a model.

What Linux 6.18.44 sends (seen in a namespace with a TAP, kernel address 2001:db8::1, MAC
02:00:00:00:00:01; see the module docstring): a DAD probe for its address is answered with an NA
to ff02::1, S=0, O=1, target link-layer option (our ``GOLDEN_LINUX_DAD_ANSWER`` below is that
NA); a unicast NS gets S=1, O=0, no option; no unsolicited NA follows DAD (ndisc_notify 0).
"""

from __future__ import annotations

import ast
import math
from ipaddress import IPv6Address
from pathlib import Path

import dpkt
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, precondition, rule

from stack.buffers import join
from stack.l2.ipv6_multicast import ipv6_multicast_mac
from stack.l3 import neighbor_discovery as nd_module
from stack.l3.icmpv6 import Icmpv6Message
from stack.l3.neighbor_discovery import (
    DELAY_FIRST_PROBE_TIME_S,
    MAX_MULTICAST_SOLICIT,
    MAX_UNICAST_SOLICIT,
    PENDING_BYTES_PER_NEIGHBOR,
    PENDING_DATAGRAMS_PER_NEIGHBOR,
    PENDING_NEIGHBORS_CAPACITY,
    REACHABLE_TIME_S,
    RETRANS_TIMER_S,
    NeighborDiscovery,
    State,
)
from stack.reasons import DROP_REASONS
from stack.stats import Stats

OURS = IPv6Address("2001:db8::2")
OUR_MAC = bytes.fromhex("020000000002")
LINK_LOCAL = IPv6Address("fe80::ff:fe00:2")
OTHER = IPv6Address("2001:db8::3")  # a second host of a LAN, with a MAC of its own
OTHER_MAC = bytes.fromhex("020000000003")
PEER = IPv6Address("2001:db8::9")
PEER_MAC = bytes.fromhex("020000000009")
PEER_MAC_2 = bytes.fromhex("02000000000a")
OTHER_PEER = IPv6Address("2001:db8::7")
UNSPECIFIED = IPv6Address("::")
ALL_NODES = IPv6Address("ff02::1")

NS, NA, RS, RA, REDIRECT = 135, 136, 133, 134, 137
S, O, R = 0x40, 0x20, 0x80  # the first octet of an NA's flags word (RFC 4861 4.4)


# ----------------------------------------------------------------------------- golden packets


def snm(address: IPv6Address) -> IPv6Address:
    """The solicited-node group, written out by hand (RFC 4291 2.7.1)."""
    return IPv6Address(bytes.fromhex("ff0200000000000000000001ff") + address.packed[13:])


def lla(kind: int, mac: bytes) -> bytes:
    """A link-layer address option (RFC 4861 4.6.1): type, length 1 (8 octets), the MAC."""
    return bytes((kind, 1)) + mac


def packet(source, destination, icmp_type: int, body: bytes, flags: int = 0, code: int = 0,
           hop_limit: int = 255) -> bytes:
    """The whole IPv6 packet of an ND message, built by dpkt (which sums the checksum)."""
    icmp = dpkt.icmp6.ICMP6(type=icmp_type, code=code, data=bytes((flags, 0, 0, 0)) + body)
    ip = dpkt.ip6.IP6(src=IPv6Address(source).packed, dst=IPv6Address(destination).packed, nxt=58,
                      hlim=hop_limit, plen=len(bytes(icmp)))
    ip.data = icmp
    ip.plen = len(bytes(icmp))
    return bytes(ip)


def message_of(raw: bytes) -> tuple[IPv6Address, IPv6Address, int, Icmpv6Message]:
    source, destination = IPv6Address(raw[8:24]), IPv6Address(raw[24:40])
    return source, destination, raw[7], Icmpv6Message.parse(raw[40:], source, destination)


def ns_packet(source, destination, target, mac: bytes | None = None, **kw) -> bytes:
    return packet(source, destination, NS, IPv6Address(target).packed + (lla(1, mac) if mac else b""), **kw)


def na_packet(source, destination, target, flags: int, mac: bytes | None = None, **kw) -> bytes:
    return packet(source, destination, NA, IPv6Address(target).packed + (lla(2, mac) if mac else b""),
                  flags=flags, **kw)


#: The NA Linux 6.18.44 sent for a DAD probe of its address 2001:db8::1 (MAC 02:00:00:00:00:01):
#: to ff02::1, hop limit 255, flags 0x20 (O only), target link-layer option.
GOLDEN_LINUX_DAD_ANSWER = na_packet("2001:db8::1", ALL_NODES, "2001:db8::1", O, bytes.fromhex("020000000001"))


def make(dad: bool = False, announce: bool = False, **kw) -> tuple[NeighborDiscovery, Stats]:
    stats = Stats()
    nd = NeighborDiscovery(stats, [(OURS, OUR_MAC), (LINK_LOCAL, OUR_MAC), (OTHER, OTHER_MAC)],
                           ipv6_multicast_mac, dad=dad, announce=announce, **kw)
    nd.poll(0.0)
    return nd, stats


def feed(nd: NeighborDiscovery, raw: bytes, now: float = 1.0):
    return nd.receive(*message_of(raw), now)


def sent(outbound) -> bytes:
    return join(outbound.datagram)


def datagram(size: int = 60, seed: int = 0) -> list:
    """Some IPv6 datagram of ours (contents do not matter to ND: it only holds and forwards it)."""
    return [bytes((0x60,)) + bytes(39), memoryview(bytes((seed + i) % 256 for i in range(size - 40)))]


# ----------------------------------------------------------------------------- DAD (RFC 4862 5.4)


def test_rfc4862_5_4_an_address_is_tentative_until_one_probe_and_retrans_timer_pass():
    stats = Stats()
    nd = NeighborDiscovery(stats, [(OURS, OUR_MAC)], ipv6_multicast_mac, announce=False)
    assert nd.tentative(OURS) and not nd.usable(OURS)
    [probe] = nd.poll(10.0)  # no uniform: the random delay is its lower bound, 0
    # RFC 4862 5.4.2: from ::, to the solicited-node group, no source link-layer option.
    assert sent(probe) == ns_packet(UNSPECIFIED, snm(OURS), OURS)
    assert probe.next_hop == snm(OURS) and probe.link_destination == bytes.fromhex("3333ff000002")
    assert probe.source == OURS  # the address probed for: the link sends from its MAC
    assert nd.next_deadline(10.0) == 10.0 + RETRANS_TIMER_S
    assert nd.poll(10.0 + RETRANS_TIMER_S - 0.01) == [] and nd.tentative(OURS)
    assert nd.poll(10.0 + RETRANS_TIMER_S) == []
    assert nd.usable(OURS) and not nd.tentative(OURS)
    assert stats["nd_dad_probes_sent"] == 1 and stats["nd_dad_passed"] == 1
    assert nd.next_deadline(20.0) is None


def test_rfc4862_5_1_dup_addr_detect_transmits_probes_retrans_timer_apart_then_usable():
    stats = Stats()
    nd = NeighborDiscovery(stats, [(OURS, OUR_MAC)], ipv6_multicast_mac, announce=False, transmits=3)
    probes = [(now, sent(o)) for now in (0.0, 0.5, 1.0, 1.5, 2.0, 2.5) for o in nd.poll(now)]
    assert probes == [(t, ns_packet(UNSPECIFIED, snm(OURS), OURS)) for t in (0.0, 1.0, 2.0)]
    assert nd.tentative(OURS) and nd.poll(3.0 - 0.01) == []
    assert nd.poll(3.0) == [] and nd.usable(OURS)
    assert stats["nd_dad_probes_sent"] == 3 and stats["nd_dad_passed"] == 1


def test_rfc4862_5_1_zero_dup_addr_detect_transmits_means_no_dad():
    nd = NeighborDiscovery(Stats(), [(OURS, OUR_MAC)], ipv6_multicast_mac, announce=False, transmits=0)
    assert nd.usable(OURS) and nd.poll(0.0) == []
    with pytest.raises(ValueError, match="negative"):
        NeighborDiscovery(Stats(), [(OURS, OUR_MAC)], ipv6_multicast_mac, transmits=-1)


def test_rfc4862_5_4_2_the_probe_waits_a_random_delay_up_to_max_rtr_solicitation_delay():
    asked = []

    def uniform(low, high):
        asked.append((low, high))
        return low + (high - low) * 0.75

    nd = NeighborDiscovery(Stats(), [(OURS, OUR_MAC)], ipv6_multicast_mac, uniform=uniform)
    assert nd.poll(5.0) == []
    assert (0.0, 1.0) in asked
    assert nd.next_deadline(5.0) == 5.75
    assert nd.poll(5.7) == [] and len(nd.poll(5.75)) == 1


def test_rfc4861_6_3_2_reachable_time_is_base_reachable_time_times_a_random_factor():
    nd = NeighborDiscovery(Stats(), [(OURS, OUR_MAC)], ipv6_multicast_mac, uniform=lambda low, high: high)
    assert nd.reachable_time == REACHABLE_TIME_S * 1.5
    assert NeighborDiscovery(Stats(), [], ipv6_multicast_mac).reachable_time == REACHABLE_TIME_S


def test_without_dad_an_address_is_usable_at_once():
    nd = NeighborDiscovery(Stats(), [(OURS, OUR_MAC)], ipv6_multicast_mac, dad=False, announce=False)
    assert nd.usable(OURS) and not nd.tentative(OURS)
    assert nd.poll(0.0) == []


def test_rfc4861_7_2_6_one_unsolicited_advertisement_when_an_address_becomes_usable():
    nd = NeighborDiscovery(Stats(), [(OURS, OUR_MAC)], ipv6_multicast_mac)
    nd.poll(0.0)
    [advertisement] = nd.poll(RETRANS_TIMER_S)
    # RFC 4861 7.2.6: to all-nodes, S=0, O=1, our link-layer address.
    assert sent(advertisement) == na_packet(OURS, ALL_NODES, OURS, O, OUR_MAC)
    assert advertisement.link_destination == bytes.fromhex("333300000001")
    assert nd.poll(10.0) == [] and nd.next_deadline(10.0) is None


def test_rfc4861_7_2_6_without_dad_the_advertisement_goes_at_the_first_poll():
    nd = NeighborDiscovery(Stats(), [(OURS, OUR_MAC)], ipv6_multicast_mac, dad=False)
    assert nd.next_deadline(3.0) == 3.0
    [advertisement] = nd.poll(3.0)
    assert sent(advertisement) == na_packet(OURS, ALL_NODES, OURS, O, OUR_MAC)


def test_like_linux_6_18_no_unsolicited_advertisement_when_announce_is_off():
    nd = NeighborDiscovery(Stats(), [(OURS, OUR_MAC)], ipv6_multicast_mac, announce=False)
    nd.poll(0.0)
    assert nd.poll(RETRANS_TIMER_S) == [] and nd.usable(OURS)


def tentative_host() -> tuple[NeighborDiscovery, Stats]:
    stats = Stats()
    nd = NeighborDiscovery(stats, [(OURS, OUR_MAC)], ipv6_multicast_mac)
    nd.poll(0.0)  # the probe is out
    return nd, stats


def test_rfc4862_5_4_3_a_probe_from_another_node_for_our_tentative_address_makes_it_a_duplicate():
    nd, stats = tentative_host()
    assert feed(nd, ns_packet(UNSPECIFIED, snm(OURS), OURS), 0.5) == []
    assert not nd.usable(OURS) and not nd.tentative(OURS)
    assert stats["nd_duplicate_addresses"] == 1
    assert nd.poll(5.0) == []  # given up: no announcement, never usable
    assert not nd.usable(OURS)
    # ... and never answered for again.
    assert feed(nd, ns_packet(PEER, snm(OURS), OURS, PEER_MAC), 6.0) == []
    assert stats.last_drop == "icmpv6_nd_target_not_ours"


def test_rfc4862_5_4_3_address_resolution_of_a_tentative_address_is_ignored():
    nd, stats = tentative_host()
    assert feed(nd, ns_packet(PEER, snm(OURS), OURS, PEER_MAC), 0.5) == []
    assert stats.last_drop == "icmpv6_nd_target_tentative"
    assert nd.tentative(OURS) and stats["nd_duplicate_addresses"] == 0
    nd.poll(RETRANS_TIMER_S)
    assert nd.usable(OURS)


def test_rfc4862_5_4_4_an_advertisement_for_our_tentative_address_makes_it_a_duplicate(caplog):
    nd, stats = tentative_host()
    with caplog.at_level("WARNING"):
        assert feed(nd, na_packet(PEER, ALL_NODES, OURS, O, PEER_MAC), 0.5) == []
    assert not nd.usable(OURS) and stats["nd_duplicate_addresses"] == 1
    assert "duplicate" in caplog.text and str(OURS) in caplog.text


def test_rfc4862_5_4_4_an_advertisement_for_an_address_we_use_is_logged_and_dropped(caplog):
    nd, stats = make()
    with caplog.at_level("WARNING"):
        assert feed(nd, na_packet(PEER, ALL_NODES, OURS, O, PEER_MAC)) == []
    assert stats.last_drop == "icmpv6_nd_advertisement_for_our_address" and nd.usable(OURS)
    assert str(OURS) in caplog.text


# ----------------------------------------------------------------------------- answering NS


def test_rfc4861_7_2_4_a_dad_probe_is_answered_to_all_nodes_without_the_solicited_flag():
    nd, stats = make()
    [answer] = feed(nd, ns_packet(UNSPECIFIED, snm(OURS), OURS))
    assert sent(answer) == na_packet(OURS, ALL_NODES, OURS, O, OUR_MAC)
    assert answer.link_destination == bytes.fromhex("333300000001") and answer.source == OURS
    assert nd.state(UNSPECIFIED) is None  # nothing learnt from ::


def test_the_dad_answer_is_the_one_linux_6_18_sends():
    stats = Stats()
    linux = IPv6Address("2001:db8::1")
    nd = NeighborDiscovery(stats, [(linux, bytes.fromhex("020000000001"))], ipv6_multicast_mac, dad=False,
                           announce=False)
    [answer] = feed(nd, ns_packet(UNSPECIFIED, snm(linux), linux))
    assert sent(answer) == GOLDEN_LINUX_DAD_ANSWER


def test_rfc4861_7_2_4_a_solicitation_is_answered_to_the_solicitor_solicited_and_override():
    nd, stats = make()
    [answer] = feed(nd, ns_packet(PEER, snm(OURS), OURS, PEER_MAC))
    # S=1, O=1 (not anycast), target link-layer option: RFC 4861 7.2.4.
    assert sent(answer) == na_packet(OURS, PEER, OURS, S | O, OUR_MAC)
    assert answer.next_hop == PEER and answer.link_destination == PEER_MAC and answer.source == OURS
    # RFC 4861 7.2.3: the solicitor's entry is created STALE; sending the answer makes it DELAY
    # (7.3.3), as Linux 6.18 shows after answering (``ip -6 neigh``: DELAY).
    assert nd.state(PEER) is State.DELAY
    assert stats["nd_solicitations_received"] == 1 and stats["nd_advertisements_sent"] == 1


def test_rfc4861_7_2_4_a_unicast_solicitation_gets_the_option_and_override_too():
    # Linux 6.18 omits the option and clears O here (its ndisc_recv_ns sets both only for a
    # multicast NS); RFC 4861 7.2.4 lets the option go (MAY) and asks for O (SHOULD): we keep both.
    nd, _ = make()
    [answer] = feed(nd, ns_packet(PEER, OURS, OURS, PEER_MAC))
    assert sent(answer) == na_packet(OURS, PEER, OURS, S | O, OUR_MAC)


def test_each_address_of_a_lan_answers_from_its_own_mac():
    nd, _ = make()
    [answer] = feed(nd, ns_packet(PEER, snm(OTHER), OTHER, PEER_MAC))
    assert sent(answer) == na_packet(OTHER, PEER, OTHER, S | O, OTHER_MAC) and answer.source == OTHER


def test_rfc4861_7_2_4_a_solicitation_without_the_option_from_a_stranger_resolves_it_first():
    nd, stats = make()
    assert nd.state(PEER) is None
    [solicitation] = feed(nd, ns_packet(PEER, OURS, OURS), 1.0)
    # The answer waits for the solicitor's MAC: a multicast NS from the target we answer for.
    assert sent(solicitation) == ns_packet(OURS, snm(PEER), PEER, OUR_MAC)
    assert solicitation.link_destination == bytes.fromhex("3333ff000009")
    assert nd.state(PEER) is State.INCOMPLETE
    [answer] = feed(nd, na_packet(PEER, OURS, PEER, S | O, PEER_MAC), 1.2)
    assert sent(answer) == na_packet(OURS, PEER, OURS, S | O, OUR_MAC)
    assert answer.link_destination == PEER_MAC and nd.state(PEER) is State.REACHABLE


def test_rfc4861_7_2_3_a_solicitation_from_a_known_neighbour_with_another_mac_updates_it_stale():
    nd, stats = make()
    resolve_peer(nd)
    assert nd.state(PEER) is State.REACHABLE
    [answer] = feed(nd, ns_packet(PEER, snm(OURS), OURS, PEER_MAC_2), 2.0)
    assert answer.link_destination == PEER_MAC_2
    assert stats["nd_link_address_changed"] == 1
    assert nd.state(PEER) is State.DELAY  # STALE (7.2.3), then the answer was sent to it (7.3.3)


def test_rfc4861_7_3_3_a_solicitation_with_the_option_completes_an_incomplete_entry():
    nd, stats = make()
    nd.resolve(datagram(seed=1), PEER, OURS, 1.0)
    out = feed(nd, ns_packet(PEER, snm(OURS), OURS, PEER_MAC), 1.5)
    assert [sent(o) for o in out] == [join(datagram(seed=1)), na_packet(OURS, PEER, OURS, S | O, OUR_MAC)]
    assert nd.state(PEER) is State.DELAY and stats["nd_queue_flushed"] == 1


# ----------------------------------------------------------------------------- validation


def on_host(raw, before=()):
    nd, stats = make()
    for earlier in before:
        feed(nd, earlier)
    return nd, stats


INVALID = [
    # (reason, packet) -- each rule of RFC 4861 6.1.1, 6.1.2, 7.1.1, 7.1.2, 8.1 (and 6.2.6, 6.3.4, 8.3)
    ("icmpv6_nd_bad_hop_limit", ns_packet(PEER, snm(OURS), OURS, PEER_MAC, hop_limit=254)),
    ("icmpv6_nd_bad_hop_limit", na_packet(PEER, OURS, PEER, S, PEER_MAC, hop_limit=64)),
    ("icmpv6_nd_bad_code", ns_packet(PEER, snm(OURS), OURS, PEER_MAC, code=1)),
    ("icmpv6_nd_bad_code", packet("fe80::1", ALL_NODES, RA, bytes(8), code=3)),
    ("icmpv6_nd_truncated", packet(PEER, snm(OURS), NS, OURS.packed[:8])),
    ("icmpv6_nd_option_zero_length", packet(PEER, snm(OURS), NS, OURS.packed + bytes(8))),
    ("icmpv6_nd_multicast_target", ns_packet(PEER, snm(OURS), "ff02::1", PEER_MAC)),
    ("icmpv6_nd_multicast_target", na_packet(PEER, OURS, "ff02::1", S, PEER_MAC)),
    ("icmpv6_nd_dad_not_to_solicited_node", ns_packet(UNSPECIFIED, OURS, OURS)),
    ("icmpv6_nd_dad_not_to_solicited_node", ns_packet(UNSPECIFIED, ALL_NODES, OURS)),
    ("icmpv6_nd_source_link_layer_from_unspecified", ns_packet(UNSPECIFIED, snm(OURS), OURS, PEER_MAC)),
    ("icmpv6_nd_source_link_layer_from_unspecified", packet(UNSPECIFIED, "ff02::2", RS, lla(1, PEER_MAC))),
    ("icmpv6_nd_solicited_to_multicast", na_packet(PEER, ALL_NODES, PEER, S | O, PEER_MAC)),
    ("icmpv6_nd_router_not_link_local", packet(PEER, ALL_NODES, RA, bytes(8))),
    ("icmpv6_nd_router_not_link_local", packet(PEER, OURS, REDIRECT, PEER.packed + PEER.packed)),
    ("icmpv6_nd_bad_redirect", packet("fe80::1", OURS, REDIRECT, PEER.packed + IPv6Address("ff02::5").packed)),
    ("icmpv6_nd_bad_redirect", packet("fe80::1", OURS, REDIRECT, PEER.packed + OTHER.packed)),
    ("icmpv6_nd_target_not_ours", ns_packet(PEER, snm(PEER), PEER, PEER_MAC)),
    ("icmpv6_nd_advertisement_unknown_target", na_packet(PEER, OURS, PEER, S | O, PEER_MAC)),
    ("icmpv6_nd_router_solicitation_ignored", packet("fe80::9", "ff02::2", RS, lla(1, PEER_MAC))),
    ("icmpv6_nd_router_advertisement_ignored", packet("fe80::1", ALL_NODES, RA, bytes(8))),
    ("icmpv6_nd_redirect_ignored", packet("fe80::1", OURS, REDIRECT, IPv6Address("fe80::5").packed + PEER.packed)),
]


@pytest.mark.parametrize("reason, raw", INVALID, ids=[f"{r}-{i}" for i, (r, _) in enumerate(INVALID)])
def test_rfc4861_invalid_or_ignored_messages_are_dropped_under_their_reason(reason, raw):
    nd, stats = make()
    assert feed(nd, raw) == []
    assert stats.last_drop == reason and stats[f"drop.{reason}"] == 1 and stats["dropped"] == 1
    assert nd.neighbors == {}  # nothing learnt from a dropped message
    assert nd.usable(OURS)


def test_rfc4861_7_1_1_a_valid_solicitation_passes_every_check():
    nd, stats = make()
    assert len(feed(nd, ns_packet(PEER, snm(OURS), OURS, PEER_MAC))) == 1 and stats["dropped"] == 0


def test_a_message_that_is_not_nd_is_our_misuse():
    nd, _ = make()
    with pytest.raises(ValueError, match="not a Neighbor Discovery"):
        nd.receive(PEER, OURS, 255, Icmpv6Message.echo(128, 1, 1), 1.0)


# ----------------------------------------------------------------------------- resolution (7.2.2)


def resolve_peer(nd: NeighborDiscovery, now: float = 1.0) -> None:
    nd.resolve(datagram(), PEER, OURS, now)
    feed(nd, na_packet(PEER, OURS, PEER, S | O, PEER_MAC), now + 0.1)


def test_rfc4861_7_2_1_a_multicast_destination_goes_at_once_to_its_33_33_mac():
    nd, _ = make()
    group = IPv6Address("ff02::1:ff00:9")
    [out] = nd.resolve(datagram(), group, OURS, 1.0)
    assert out.link_destination == bytes.fromhex("3333ff000009") and out.next_hop == group
    assert nd.neighbors == {}


def test_rfc4861_7_2_2_an_unknown_neighbour_is_solicited_at_its_solicited_node_group_and_held():
    nd, stats = make()
    [solicitation] = nd.resolve(datagram(seed=1), PEER, OTHER, 1.0)
    # From the datagram's source (7.2.2 SHOULD), with that address's MAC in the option.
    assert sent(solicitation) == ns_packet(OTHER, snm(PEER), PEER, OTHER_MAC)
    assert solicitation.source == OTHER and solicitation.link_destination == bytes.fromhex("3333ff000009")
    assert nd.state(PEER) is State.INCOMPLETE and stats["nd_queued"] == 1
    # At most one NS per RetransTimer: a second datagram waits with the first.
    assert nd.resolve(datagram(seed=2), PEER, OTHER, 1.5) == []
    # RFC 4861 7.2.5: the solicited NA makes it REACHABLE and the held datagrams go, in order.
    out = feed(nd, na_packet(PEER, OTHER, PEER, S | O, PEER_MAC), 1.6)
    assert [sent(o) for o in out] == [join(datagram(seed=1)), join(datagram(seed=2))]
    assert all(o.link_destination == PEER_MAC and o.source == OTHER and o.next_hop == PEER for o in out)
    assert nd.state(PEER) is State.REACHABLE
    # Known now: the next datagram goes at once, as it was given (buffers, not joined).
    data = datagram(seed=3)
    [out] = nd.resolve(data, PEER, OTHER, 2.0)
    assert out.datagram is data and out.link_destination == PEER_MAC


def test_rfc4861_7_2_2_the_held_datagram_is_a_copy():
    nd, _ = make()
    buffer = bytearray(join(datagram(seed=4)))
    nd.resolve([memoryview(buffer)], PEER, OURS, 1.0)
    buffer[:] = bytes(len(buffer))  # the device reuses its receive buffer
    [out] = feed(nd, na_packet(PEER, OURS, PEER, S, PEER_MAC), 1.1)
    assert sent(out) == join(datagram(seed=4))


def test_rfc4861_7_2_2_retransmits_every_retrans_timer_then_drops_the_held_datagrams():
    nd, stats = make()
    nd.resolve(datagram(), PEER, OURS, 1.0)
    nd.resolve(datagram(), PEER, OURS, 1.1)
    for attempt in range(1, MAX_MULTICAST_SOLICIT):
        when = 1.0 + attempt * RETRANS_TIMER_S
        assert nd.next_deadline(when - 0.5) == when
        assert nd.poll(when - 0.01) == []
        [again] = nd.poll(when)
        assert sent(again) == ns_packet(OURS, snm(PEER), PEER, OUR_MAC)
    assert stats["nd_solicitations_sent"] == MAX_MULTICAST_SOLICIT
    assert nd.poll(1.0 + MAX_MULTICAST_SOLICIT * RETRANS_TIMER_S) == []
    assert nd.state(PEER) is None and stats["nd_resolution_failed"] == 1
    assert stats["drop.icmpv6_nd_unresolved"] == 2
    assert nd.next_deadline(10.0) is None


def test_rfc4861_7_2_5_an_advertisement_without_its_link_layer_address_does_not_resolve():
    nd, stats = make()
    nd.resolve(datagram(), PEER, OURS, 1.0)
    assert feed(nd, na_packet(PEER, OURS, PEER, S | O), 1.1) == []
    assert stats.last_drop == "icmpv6_nd_advertisement_without_address"
    assert nd.state(PEER) is State.INCOMPLETE


def test_rfc4861_7_2_5_an_unsolicited_advertisement_resolves_to_stale():
    nd, _ = make()
    nd.resolve(datagram(), PEER, OURS, 1.0)
    [out] = feed(nd, na_packet(PEER, ALL_NODES, PEER, O, PEER_MAC), 1.1)
    assert out.link_destination == PEER_MAC
    assert nd.state(PEER) is State.DELAY  # STALE, then the held datagram was sent (7.3.3)


def test_rfc4861_7_2_2_the_queue_per_neighbour_is_bounded_by_count():
    nd, stats = make()
    for seed in range(PENDING_DATAGRAMS_PER_NEIGHBOR + 1):
        nd.resolve(datagram(seed=seed), PEER, OURS, 1.0)
    assert stats["drop.icmpv6_nd_queue_full"] == 1
    out = feed(nd, na_packet(PEER, OURS, PEER, S, PEER_MAC), 1.1)
    assert len(out) == PENDING_DATAGRAMS_PER_NEIGHBOR
    assert sent(out[0]) == join(datagram(seed=1))  # the oldest went: the latest are kept


def test_rfc4861_7_2_2_the_queue_per_neighbour_is_bounded_by_bytes():
    nd, stats = make()
    big = PENDING_BYTES_PER_NEIGHBOR // 2
    for seed in range(3):
        nd.resolve(datagram(big, seed), PEER, OURS, 1.0)
    assert stats["drop.icmpv6_nd_queue_full"] == 1
    assert len(feed(nd, na_packet(PEER, OURS, PEER, S, PEER_MAC), 1.1)) == 2


def test_the_addresses_being_resolved_are_bounded():
    nd, stats = make()
    for index in range(PENDING_NEIGHBORS_CAPACITY):
        assert len(nd.resolve(datagram(), IPv6Address(int(PEER) + 0x100 + index), OURS, 1.0)) == 1
    assert nd.resolve(datagram(), PEER, OURS, 1.0) == []
    assert stats["drop.icmpv6_nd_queue_full"] == 1 and nd.state(PEER) is None


def test_rfc4861_7_2_3_the_cache_is_bounded_and_a_stale_entry_goes_first():
    nd, stats = make(capacity=2)
    for index in range(3):
        feed(nd, ns_packet(IPv6Address(int(PEER) + index), snm(OURS), OURS, PEER_MAC))
    assert len(nd.neighbors) == 2 and stats["nd_neighbors_evicted"] == 1


def test_rfc4861_7_2_4_a_full_cache_still_answers_a_solicitation_to_the_mac_of_its_option():
    nd, stats = make(capacity=1)
    nd.resolve(datagram(), OTHER_PEER, OURS, 1.0)  # the only entry, INCOMPLETE: it cannot go
    [answer] = feed(nd, ns_packet(PEER, snm(OURS), OURS, PEER_MAC))
    assert sent(answer) == na_packet(OURS, PEER, OURS, S | O, OUR_MAC) and answer.link_destination == PEER_MAC
    assert nd.state(PEER) is None and nd.state(OTHER_PEER) is State.INCOMPLETE


def test_no_solicitation_from_a_tentative_address():
    # RFC 4862 5.4: a tentative address is not a source; with no usable address, no NS.
    nd, stats = tentative_host()
    assert nd.resolve(datagram(), PEER, OURS, 0.5) == []
    assert stats["nd_solicitations_unsent"] == 1 and nd.state(PEER) is State.INCOMPLETE


# ----------------------------------------------------------------------------- 7.2.5 on known entries


def test_rfc4861_7_2_5_override_clear_and_another_mac_only_makes_reachable_stale():
    nd, stats = make()
    resolve_peer(nd)
    assert feed(nd, na_packet(PEER, OURS, PEER, S, PEER_MAC_2), 2.0) == []
    assert nd.state(PEER) is State.STALE and nd.neighbors[PEER].mac == PEER_MAC
    assert stats["nd_override_refused"] == 1 and stats["nd_overrides"] == 0


def test_rfc4861_7_2_5_override_set_replaces_the_mac_and_is_counted():
    nd, stats = make()
    resolve_peer(nd)
    feed(nd, na_packet(PEER, ALL_NODES, PEER, O, PEER_MAC_2), 2.0)
    assert nd.neighbors[PEER].mac == PEER_MAC_2 and nd.state(PEER) is State.STALE
    assert stats["nd_overrides"] == 1
    feed(nd, na_packet(PEER, OURS, PEER, S | O, PEER_MAC), 3.0)
    assert nd.neighbors[PEER].mac == PEER_MAC and nd.state(PEER) is State.REACHABLE
    assert stats["nd_overrides"] == 2


def test_rfc4861_7_2_5_a_solicited_advertisement_with_the_same_mac_confirms_reachability():
    nd, stats = make()
    resolve_peer(nd)
    nd.poll(1.1 + REACHABLE_TIME_S)
    assert nd.state(PEER) is State.STALE
    feed(nd, na_packet(PEER, OURS, PEER, S, PEER_MAC), 40.0)
    assert nd.state(PEER) is State.REACHABLE and stats["nd_overrides"] == 0


def test_rfc4861_7_2_5_unsolicited_without_override_and_the_same_mac_changes_nothing():
    nd, _ = make()
    resolve_peer(nd)
    feed(nd, na_packet(PEER, ALL_NODES, PEER, 0, PEER_MAC), 2.0)
    assert nd.state(PEER) is State.REACHABLE


def test_rfc4861_7_2_5_is_router_follows_the_r_flag():
    nd, _ = make()
    nd.resolve(datagram(), PEER, OURS, 1.0)
    feed(nd, na_packet(PEER, OURS, PEER, R | S | O, PEER_MAC), 1.1)
    assert nd.neighbors[PEER].is_router
    feed(nd, na_packet(PEER, OURS, PEER, S | O, PEER_MAC), 1.2)
    assert not nd.neighbors[PEER].is_router


# ----------------------------------------------------------------------------- NUD (7.3)


def test_rfc4861_7_3_3_reachable_becomes_stale_after_reachable_time():
    nd, _ = make()
    resolve_peer(nd, 1.0)
    assert nd.next_deadline(2.0) == 1.1 + REACHABLE_TIME_S
    nd.poll(1.1 + REACHABLE_TIME_S - 0.01)
    assert nd.state(PEER) is State.REACHABLE
    nd.poll(1.1 + REACHABLE_TIME_S)
    assert nd.state(PEER) is State.STALE and nd.next_deadline(40.0) is None


def test_rfc4861_7_3_3_stale_delay_probe_then_deleted():
    nd, stats = make()
    resolve_peer(nd, 1.0)
    nd.poll(100.0)
    [out] = nd.resolve(datagram(), PEER, OURS, 100.0)  # sent at once with the cached MAC
    assert out.link_destination == PEER_MAC and nd.state(PEER) is State.DELAY
    assert nd.poll(100.0 + DELAY_FIRST_PROBE_TIME_S - 0.01) == []
    [probe] = nd.poll(100.0 + DELAY_FIRST_PROBE_TIME_S)
    # PROBE: a unicast NS to the cached MAC, with our option.
    assert sent(probe) == ns_packet(OURS, PEER, PEER, OUR_MAC)
    assert probe.link_destination == PEER_MAC and nd.state(PEER) is State.PROBE
    # Still sent to while probing.
    assert nd.resolve(datagram(), PEER, OURS, 105.5)[0].link_destination == PEER_MAC
    for attempt in range(1, MAX_UNICAST_SOLICIT):
        assert len(nd.poll(105.0 + attempt * RETRANS_TIMER_S)) == 1
    assert nd.poll(105.0 + MAX_UNICAST_SOLICIT * RETRANS_TIMER_S) == []
    assert nd.state(PEER) is None and stats["nd_neighbors_unreachable"] == 1


def test_rfc4861_7_3_3_a_solicited_advertisement_ends_the_probe():
    nd, _ = make()
    resolve_peer(nd, 1.0)
    nd.poll(100.0)
    nd.resolve(datagram(), PEER, OURS, 100.0)
    nd.poll(105.0)
    assert nd.state(PEER) is State.PROBE
    feed(nd, na_packet(PEER, OURS, PEER, S, PEER_MAC), 105.2)
    assert nd.state(PEER) is State.REACHABLE
    assert nd.poll(108.0) == []


def test_rfc4861_7_3_1_an_upper_layer_confirmation_makes_an_entry_reachable():
    nd, _ = make()
    resolve_peer(nd, 1.0)
    nd.poll(100.0)
    nd.resolve(datagram(), PEER, OURS, 100.0)
    nd.confirm(PEER, 101.0)
    assert nd.state(PEER) is State.REACHABLE
    assert nd.poll(106.0) == []  # no probe
    nd.confirm(OTHER, 106.0)  # unknown: nothing
    assert nd.state(OTHER) is None


def test_a_permanent_neighbour_is_used_at_once_and_never_changed_aged_or_evicted():
    # As Linux's NUD_PERMANENT (``ip -6 neigh replace ... nud permanent``), which tapstack diff
    # sets on both hosts.
    nd, stats = make(capacity=2)
    assert nd.add_permanent(PEER, PEER_MAC) == []
    [out] = nd.resolve(datagram(), PEER, OURS, 1.0)
    assert out.link_destination == PEER_MAC and stats["nd_solicitations_sent"] == 0
    # Neither an NS with another source link-layer address nor an overriding NA changes it.
    [answer] = feed(nd, ns_packet(PEER, snm(OURS), OURS, PEER_MAC_2), 2.0)
    assert answer.link_destination == PEER_MAC
    feed(nd, na_packet(PEER, OURS, PEER, S | O, PEER_MAC_2), 3.0)
    nd.confirm(PEER, 3.0)
    assert nd.state(PEER) is State.PERMANENT and nd.neighbors[PEER].mac == PEER_MAC
    assert stats["nd_link_address_changed"] == 0 and stats["nd_overrides"] == 0
    # No timer: no NUD, no ageing, ever.
    assert nd.next_deadline(4.0) is None and nd.poll(1e9) == []
    # A full cache evicts learnt entries, never a permanent one; forgetting keeps it too.
    feed(nd, ns_packet(OTHER_PEER, snm(OURS), OURS, PEER_MAC_2), 5.0)
    feed(nd, ns_packet(IPv6Address("2001:db8::8"), snm(OURS), OURS, PEER_MAC_2), 6.0)
    assert PEER in nd.neighbors and stats["nd_neighbors_evicted"] == 1
    nd.forget_neighbours()
    assert list(nd.neighbors) == [PEER]


def test_a_permanent_entry_releases_what_waited_for_its_resolution():
    nd, _ = make()
    assert len(nd.resolve(datagram(seed=7), PEER, OURS, 1.0)) == 1  # the multicast NS
    [released] = nd.add_permanent(PEER, PEER_MAC)
    assert released.link_destination == PEER_MAC and sent(released) == join(datagram(seed=7))
    assert nd.state(PEER) is State.PERMANENT and nd.incomplete == 0
    with pytest.raises(ValueError):
        nd.add_permanent(ALL_NODES, PEER_MAC)
    with pytest.raises(ValueError):
        nd.add_permanent(PEER, bytes(5))


def test_misuse_is_refused():
    with pytest.raises(ValueError):
        NeighborDiscovery(Stats(), [(IPv6Address("ff02::1"), OUR_MAC)], ipv6_multicast_mac)
    with pytest.raises(ValueError):
        NeighborDiscovery(Stats(), [(OURS, b"\x02")], ipv6_multicast_mac)


ADDRESSES = st.sampled_from([OURS, OTHER, LINK_LOCAL, PEER, UNSPECIFIED, ALL_NODES, snm(OURS),
                             IPv6Address("fe80::1"), IPv6Address("ff02::2")])


@settings(max_examples=300)
@given(kind=st.integers(133, 137), code=st.sampled_from([0, 0, 0, 1]), rest=st.binary(min_size=4, max_size=4),
       body=st.one_of(st.binary(max_size=64),
                      st.builds(lambda target, tail: target.packed + tail, ADDRESSES, st.binary(max_size=24))),
       hop_limit=st.sampled_from([255, 255, 254, 1]), source=ADDRESSES, destination=ADDRESSES,
       tentative=st.booleans())
def test_any_nd_message_is_answered_or_dropped_and_never_raises(kind, code, rest, body, hop_limit, source,
                                                                destination, tentative):
    stats = Stats()
    nd = NeighborDiscovery(stats, [(OURS, OUR_MAC)], ipv6_multicast_mac, dad=tentative)
    nd.poll(0.0)
    out = nd.receive(source, destination, hop_limit, Icmpv6Message(kind, code, rest, body), 0.5)
    if not out:
        assert stats["dropped"] == 1 or stats["nd_duplicate_addresses"] == 1 or nd.neighbors
    for outbound in out:
        raw = sent(outbound)
        assert raw[7] == 255 and raw[6] == 58  # RFC 4861: ND sent with hop limit 255
        assert len(outbound.link_destination) == 6


# ----------------------------------------------------------------------------- every reason produced


def reasons_dropped_by_the_module() -> set[str]:
    tree = ast.parse(Path(nd_module.__file__).read_text())
    return {node.args[0].value for node in ast.walk(tree)
            if isinstance(node, ast.Call) and getattr(node.func, "attr", "") == "drop"
            and node.args and isinstance(node.args[0], ast.Constant)}


#: Reasons the tests above produce without a table row of INVALID (timers, bounds, state).
PRODUCED_ELSEWHERE = {"icmpv6_nd_target_tentative", "icmpv6_nd_advertisement_without_address",
                      "icmpv6_nd_advertisement_for_our_address", "icmpv6_nd_queue_full", "icmpv6_nd_unresolved"}


def test_every_reason_of_the_module_is_explained_and_produced_by_a_test():
    reasons = reasons_dropped_by_the_module()
    assert reasons <= set(DROP_REASONS)
    assert reasons == {reason for reason, _ in INVALID if reason in reasons} | PRODUCED_ELSEWHERE


# ----------------------------------------------------------------------------- a model


PEERS = [IPv6Address(int(PEER) + index) for index in range(4)]
MACS = [bytes.fromhex("0200000001") + bytes((index,)) for index in range(3)]


class CacheAgainstAModel(RuleBasedStateMachine):
    """Random datagrams, advertisements, solicitations and time: the cache follows a small model of
    RFC 4861 7.2.5/7.3.3 (which MAC a neighbour has, whether it is resolved) and its bounds hold."""

    def __init__(self) -> None:
        super().__init__()
        self.stats = Stats()
        self.nd = NeighborDiscovery(self.stats, [(OURS, OUR_MAC)], ipv6_multicast_mac, dad=False,
                                    announce=False, capacity=3)
        self.now = 0.0
        self.nd.poll(self.now)
        #: address -> MAC (None while resolving); what the cache must say.
        self.model: dict[IPv6Address, bytes | None] = {}

    @rule(peer=st.sampled_from(PEERS))
    def send(self, peer):
        out = self.nd.resolve(datagram(), peer, OURS, self.now)
        known = peer in self.model
        if known and self.model[peer] is not None:
            assert [o.link_destination for o in out] == [self.model[peer]]
        elif not known and peer in self.nd.neighbors:
            self.model[peer] = None  # a new resolution: one NS out
            assert len(out) == 1 and out[0].link_destination == bytes.fromhex("3333ff") + peer.packed[13:]
        else:
            assert out == []

    @rule(peer=st.sampled_from(PEERS), mac=st.sampled_from(MACS), solicited=st.booleans(),
          override=st.booleans())
    def advertise(self, peer, mac, solicited, override):
        flags = (S if solicited else 0) | (O if override else 0)
        out = feed(self.nd, na_packet(peer, OURS, peer, flags, mac), self.now)
        if peer not in self.model:
            assert out == [] and self.stats.last_drop == "icmpv6_nd_advertisement_unknown_target"
            return
        if self.model[peer] is None or override:
            self.model[peer] = mac
        assert all(o.link_destination == mac for o in out)

    @rule(peer=st.sampled_from(PEERS), mac=st.sampled_from(MACS))
    def solicit(self, peer, mac):
        [*_, answer] = feed(self.nd, ns_packet(peer, snm(OURS), OURS, mac), self.now)
        self.model[peer] = mac
        assert answer.link_destination == mac

    @rule(seconds=st.sampled_from([0.3, 1.0, 5.0, 31.0]))
    def wait(self, seconds):
        self.now += seconds
        self.nd.poll(self.now)
        # Entries the cache gave up on (resolution failed, NUD failed) leave the model.
        for peer in list(self.model):
            if peer not in self.nd.neighbors:
                del self.model[peer]

    @invariant()
    def agrees_with_the_model(self):
        # An evicted entry leaves the model too (the cache is bounded).
        for peer in list(self.model):
            if peer not in self.nd.neighbors:
                del self.model[peer]
        assert set(self.model) == set(self.nd.neighbors)
        for peer, mac in self.model.items():
            entry = self.nd.neighbors[peer]
            assert entry.mac == mac
            assert (entry.state is State.INCOMPLETE) == (mac is None)
            assert (entry.timer == math.inf) == (entry.state is State.STALE)

    @invariant()
    def bounded(self):
        assert len(self.nd.neighbors) <= 3
        assert self.nd.incomplete == sum(e.state is State.INCOMPLETE for e in self.nd.neighbors.values())
        assert all(len(e.queue) <= PENDING_DATAGRAMS_PER_NEIGHBOR for e in self.nd.neighbors.values())


TestCacheAgainstAModel = CacheAgainstAModel.TestCase
TestCacheAgainstAModel.settings = settings(max_examples=60, stateful_step_count=30, deadline=None)
