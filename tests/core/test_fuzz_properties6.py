"""Fuzz properties of whole hosts over IPv6, with the public strategies (``stack.testing.strategies6``).

1. Nothing escapes ``TapHost.receive``, ``TunHost.receive`` or ``poll``, whatever comes in:
   valid packets of every kind, the same broken, fragment trains, corrupted bytes, noise.
2. Every frame a host sends is valid: our codecs and dpkt read it, its checksum verifies
   (RFC 4443 2.3, RFC 8200 8.1), it fits the MTU (an error: 1280 bytes, RFC 4443 2.4 (c)), it
   comes from our address, and goes to one node -- or, for Neighbor Discovery and MLD only, to
   a multicast group, with hop limit 255 (RFC 4861) or 1 (RFC 3810).
3. The amplification bound: no ICMPv6 error about a packet to a multicast group (RFC 4443 2.4
   (e) 3; but Parameter Problem code 2 for an option of action 10, RFC 8200 4.2); at most one
   error per packet in, and the rate limit (RFC 4443 2.4 (f)) bounds them all; bytes out stay
   within bytes in + EXTRA_BYTES6 per packet in + what the host sends with no packet in.
4. Every breakage ``broken`` makes is dropped under the reason it names, and answered with
   exactly the ICMPv6 error it names (Parameter Problem code and pointer), or with nothing.

The run length comes from the hypothesis profile (tests/conftest.py): quick by default,
``HYPOTHESIS_PROFILE=fuzz`` for hundreds of thousands of examples.
"""

from __future__ import annotations

import functools
import struct
from ipaddress import IPv6Address

import dpkt
from hypothesis import given
from hypothesis import strategies as st

from stack import TapHost, TunHost
from stack.buffers import join
from stack.l2.ethernet import EthernetFrame, EtherType, MacAddress
from stack.l3.icmpv6 import Icmpv6Message, Icmpv6Type, is_error
from stack.l3.ipv6 import Ipv6Packet, NextHeader, link_local_address, solicited_node_multicast
from stack.node import MAX_FRAMES_OUT_PER_FRAME_IN
from stack.packet_info import header_bytes as packet_info_header
from stack.testing.strategies import Broken, broken
from stack.testing.strategies6 import (
    ipv6_echo_requests,
    ipv6_extension_chains,
    ipv6_fragment_trains,
    ipv6_udp_datagrams,
    mld_queries,
    mld_reports,
    neighbor_advertisements,
    neighbor_solicitations,
    redirects,
    router_advertisements,
    router_solicitations,
)

HOST_MAC = MacAddress("02:00:00:00:00:02")
HOST6, HOST_LL = IPv6Address("2001:db8::2"), link_local_address(bytes(HOST_MAC))
HOST_GROUP = solicited_node_multicast(HOST6)  # also the link-local address's (same low 24 bits)
PEER_MAC = MacAddress("02:00:00:00:00:01")
PEER6, PEER_LL = IPv6Address("2001:db8::1"), IPv6Address("fe80::1")
ALL_NODES = IPv6Address("ff02::1")
PI = packet_info_header(EtherType.IPV6)

#: Bytes out per packet in, beyond the packet's own size: an ICMPv6 error quotes at most the
#: packet behind 48 bytes of headers (an echo reply, an NA, an MLD report are no larger than what
#: asked for them), and resolving a neighbour costs at most 3 Neighbor Solicitations of 86 bytes
#: (RFC 4861 10: MAX_MULTICAST_SOLICIT).
EXTRA_BYTES6 = 48 + 3 * 86

# Peers: the two the host knows (permanent neighbours), sometimes one it must resolve.
sources = st.sampled_from([PEER6, PEER6, PEER_LL, IPv6Address("2001:db8::77")])
known_sources = st.sampled_from([PEER6, PEER_LL])


def to_host(medium: str = "ethernet", source=known_sources, multicast: bool = True):
    """Valid packets a host at HOST6 takes: echo requests, UDP, extension-header chains, and
    over Ethernet Neighbor Discovery and MLD queries; to its addresses or (``multicast``) its
    groups."""
    ours = [HOST6] if medium == "ip" else [HOST6, HOST_LL]
    destination = st.sampled_from(ours + ([ALL_NODES, HOST_GROUP] if multicast else []))
    addressing = dict(source=source, destination=destination, medium=medium)
    if medium == "ethernet":
        addressing.update(source_mac=PEER_MAC, destination_mac=HOST_MAC)
    kinds = [ipv6_echo_requests(**addressing), ipv6_udp_datagrams(**addressing),
             ipv6_extension_chains(**addressing)]
    if medium == "ethernet":
        link = dict(source_mac=PEER_MAC, destination_mac=HOST_MAC)
        kinds += [
            neighbor_solicitations(source=st.one_of(source, st.just(IPv6Address("::"))),
                                   target=st.sampled_from([HOST6, HOST_LL]), **link),
            neighbor_advertisements(source=source, destination=st.sampled_from([HOST6, HOST_LL]), **link),
            router_solicitations(source=PEER_LL, destination=HOST_LL, **link),
            router_advertisements(source=PEER_LL, destination=st.sampled_from([ALL_NODES, HOST_LL]), **link),
            redirects(source=PEER_LL, destination=st.sampled_from([HOST6, HOST_LL]), **link),
            mld_queries(source=PEER_LL, group=st.sampled_from([IPv6Address("::"), HOST_GROUP]), source_mac=PEER_MAC),
        ]
    return st.one_of(kinds)


def dpkt_ip6(datagram: bytes) -> dpkt.ip6.IP6:
    """dpkt's reading of a packet. It decodes eagerly down to the packet an ICMPv6 error quotes,
    where fragment and other extension chains make it raise AttributeError (docs: ecosystem.md,
    "dpkt gotchas"); an error is then read without its message (Next Header 59), the rest fully."""
    try:
        return dpkt.ip6.IP6(datagram)
    except (AttributeError, IndexError):
        if len(datagram) < 48 or datagram[6] != NextHeader.ICMPV6 or not is_error(datagram[40]):
            raise
        return dpkt.ip6.IP6(datagram[:6] + bytes([NextHeader.NO_NEXT_HEADER]) + datagram[7:40])


def dpkt_ethernet(frame: bytes) -> dpkt.ethernet.Ethernet:
    """dpkt's reading of a frame, its quoted packet set aside as ``dpkt_ip6`` does."""
    try:
        return dpkt.ethernet.Ethernet(frame)
    except (AttributeError, IndexError):
        return dpkt.ethernet.Ethernet(frame[:14] + bytes(dpkt_ip6(frame[14:])))


def pseudo_sum_ok(packet: Ipv6Packet, next_header: int, data: bytes) -> bool:
    """RFC 8200 8.1: the upper-layer checksum over the pseudo-header, summed by dpkt."""
    pseudo = packet.source.packed + packet.destination.packed + struct.pack("!I3xB", len(data), next_header)
    return dpkt.in_cksum(pseudo + data) == 0


class Wire6:
    """Feeds a host and checks everything it sends (properties 2 and 3)."""

    def __init__(self, medium: str, packet_info: bool = False, **choices) -> None:
        self.medium, self.packet_info = medium, packet_info
        if medium == "ethernet":
            self.host = TapHost([f"{HOST6}/64"], mac=HOST_MAC, dad_transmits=0, **choices)
            for address in (PEER6, PEER_LL):
                self.host.ip6.resolver.add_permanent(address, bytes(PEER_MAC))
        else:
            self.host = TunHost([f"{HOST6}/64"], peer=PEER6, packet_info=packet_info, **choices)
        self.ours = set(self.host.ip6.addresses)
        self.frames_in = self.bytes_in = self.bytes_out = 0
        self.errors: list[tuple[float, Icmpv6Message, Ipv6Packet]] = []
        self.echo_replies = 0
        self.fragments: dict[tuple, list[bytes]] = {}
        self.last: list[tuple[Ipv6Packet, bytes]] = []  # what the last call sent, read

    def receive(self, frame: bytes, now: float) -> list[bytes]:
        if self.packet_info:
            frame = PI + frame
        errors_before = len(self.errors)
        out = [join(buffers) for buffers in self.host.receive(frame, now)]
        self.frames_in += 1
        self.bytes_in += len(frame)
        assert len(out) <= MAX_FRAMES_OUT_PER_FRAME_IN
        self.check(out, now)
        # RFC 4443 2.4: one packet in, at most one error out.
        assert len(self.errors) - errors_before <= 1
        return out

    def poll(self, now: float) -> list[bytes]:
        out = [join(buffers) for buffers in self.host.poll(now)]
        self.check(out, now)
        return out

    def check(self, out: list[bytes], now: float) -> None:
        self.last = []
        for frame in out:
            self.bytes_out += len(frame)
            if self.medium == "ethernet":
                ethernet = EthernetFrame.parse(frame)
                theirs = dpkt_ethernet(frame)
                assert (theirs.dst, theirs.src, theirs.type) == (ethernet.destination, ethernet.source, 0x86DD)
                assert ethernet.source == HOST_MAC and 60 <= len(frame) <= 14 + self.host.ip6.mtu
                datagram = bytes(ethernet.payload)
                packet = Ipv6Packet.parse(datagram)
                # RFC 2464 7: a multicast destination goes to 33:33 and its low 32 bits.
                if packet.destination.is_multicast:
                    assert ethernet.destination == b"\x33\x33" + packet.destination.packed[12:]
                assert datagram[40 + packet.payload_length:] == bytes(len(datagram) - 40 - packet.payload_length)
                datagram = datagram[:40 + packet.payload_length]
            elif self.packet_info:
                assert frame[:4] == PI
                datagram = frame[4:]
            else:
                datagram = frame
            self.check_packet(datagram, now)
        # Property 3: the rate limit (a bucket that starts full) bounds every error sent.
        if self.errors:
            choices = self.host.choices
            assert len(self.errors) <= choices.icmp_error_burst + choices.icmp_errors_per_second * (
                now - self.errors[0][0]) + 1

    def check_packet(self, datagram: bytes, now: float) -> None:
        assert len(datagram) <= self.host.ip6.mtu
        packet = Ipv6Packet.parse(datagram)
        assert 40 + packet.payload_length == len(datagram)
        theirs = dpkt_ip6(datagram)
        assert (theirs.src, theirs.dst, theirs.plen) == (packet.source.packed, packet.destination.packed,
                                                         packet.payload_length)
        assert packet.source in self.ours, packet.source
        destination = packet.destination
        assert destination not in self.ours and not destination.is_unspecified and not destination.is_loopback
        chain = packet.chain()
        self.last.append((packet, datagram))
        if chain.fragment is not None:
            # Our own fragments (RFC 8200 4.5): to one node, with the Fragment header right away.
            assert not destination.is_multicast and packet.next_header == NextHeader.FRAGMENT
            assert chain.fragment.more_fragments or chain.fragment.fragment_offset
            whole = self.reassemble(packet, chain)
            if whole is None:
                return
            packet, chain = whole, whole.chain()
        data = bytes(chain.upper_layer_data)
        assert chain.upper_layer == NextHeader.ICMPV6, chain.upper_layer  # we originate nothing else
        message = Icmpv6Message.parse(data, packet.source, destination)  # verifies the checksum
        assert pseudo_sum_ok(packet, NextHeader.ICMPV6, data)
        kind = message.type
        if destination.is_multicast:
            # Only ND (NS, unsolicited NA) and MLD reports go to groups, hop limits as their RFCs say.
            assert kind in (Icmpv6Type.NEIGHBOR_SOLICITATION, Icmpv6Type.NEIGHBOR_ADVERTISEMENT,
                            Icmpv6Type.MLDV2_REPORT, Icmpv6Type.MLDV1_REPORT, Icmpv6Type.MLDV1_DONE), kind
        if kind in (Icmpv6Type.NEIGHBOR_SOLICITATION, Icmpv6Type.NEIGHBOR_ADVERTISEMENT):
            assert packet.hop_limit == 255  # RFC 4861 7.1
        elif kind in (Icmpv6Type.MLDV2_REPORT, Icmpv6Type.MLDV1_REPORT, Icmpv6Type.MLDV1_DONE):
            assert packet.hop_limit == 1  # RFC 3810 5.2.14, RFC 2710 3
        else:
            assert packet.hop_limit > 0 and kind in (Icmpv6Type.ECHO_REPLY,) or is_error(kind), kind
        if is_error(kind):
            assert len(datagram) <= 1280  # RFC 4443 2.4 (c)
            self.errors.append((now, message, packet))
        self.echo_replies += kind == Icmpv6Type.ECHO_REPLY

    def reassemble(self, fragment: Ipv6Packet, chain) -> Ipv6Packet | None:
        """Our own fragments, put together as they come (in order, RFC 8200 4.5: data in 8-byte
        units but the last, one Fragment header right after the fixed header)."""
        header = chain.fragment
        key = (fragment.source, fragment.destination, header.identification)
        held = self.fragments.setdefault(key, [])
        data = bytes(chain.upper_layer_data)
        assert header.fragment_offset * 8 == sum(map(len, held)), "in order, no gaps"
        held.append(data)
        if header.more_fragments:
            assert len(data) % 8 == 0
            return None
        del self.fragments[key]
        return Ipv6Packet(fragment.source, fragment.destination, header.next_header, b"".join(held),
                          fragment.hop_limit)

    def within_the_byte_bound(self, idle_bytes: int) -> bool:
        return self.bytes_out <= self.bytes_in + EXTRA_BYTES6 * self.frames_in + idle_bytes


def idle_bytes(medium: str, times: list[float]) -> int:
    """What a host sends with no packet in, polled at the same times (its MLD reports)."""
    wire = Wire6(medium)
    for now in times:
        wire.poll(now)
    return wire.bytes_out


# 1 + 2 + 3: nothing escapes, whatever comes in; whatever goes out is valid ------------------

@functools.cache  # (strategies built once: building one inspects its functions' source)
def corrupted(medium: str):
    """A valid packet with one byte overwritten anywhere, or cut anywhere: arbitrary damage."""
    @st.composite
    def damage(draw):
        frame = bytearray(draw(to_host(medium, sources)))
        at = draw(st.integers(0, len(frame) - 1))
        if draw(st.booleans()):
            frame[at] = draw(st.integers(0, 255))
            return bytes(frame)
        return bytes(frame[:at])
    return damage()


@functools.cache
def anything(medium: str):
    """Valid packets for the host, the same broken or damaged, fragment trains, MLD reports, noise."""
    valid = to_host(medium, sources)
    addressing = dict(source=sources, destination=st.sampled_from([HOST6, ALL_NODES]), medium="ip",
                      min_size=1, max_size=3000)
    link = dict(medium=medium, destination_mac=HOST_MAC, source_mac=PEER_MAC)
    trains = st.one_of(
        ipv6_fragment_trains(ipv6_echo_requests(**addressing), **link),
        ipv6_fragment_trains(ipv6_echo_requests(**addressing), duplicates=True, overlaps=True, atomic=True, **link),
        ipv6_fragment_trains(ipv6_udp_datagrams(source=sources, destination=HOST6, medium="ip"), split_chain=True,
                             **link),
    )
    kinds = [
        valid.map(lambda frame: [frame]),
        broken(valid, medium=medium).map(lambda case: [case.frame]),
        corrupted(medium).map(lambda frame: [frame]),
        trains.map(lambda train: list(train.fragments)),
        st.binary(max_size=80).map(lambda noise: [noise]),
    ]
    if medium == "ethernet":
        kinds.append(mld_reports(source_mac=PEER_MAC).map(lambda frame: [frame]))
    return st.one_of(kinds)


@given(data=st.data(), medium=st.sampled_from(["ethernet", "ip"]), packet_info=st.booleans())
def test_everything_sent_is_valid_and_within_the_amplification_bound(data, medium, packet_info):
    wire, now, times = Wire6(medium, packet_info and medium == "ip"), 0.0, []
    for _ in range(data.draw(st.integers(1, 6), label="batches")):
        for frame in data.draw(anything(medium), label="frames"):
            wire.receive(frame, now)
        now += data.draw(st.sampled_from([0.0, 0.5, 1.0, 31.0]), label="pause")
        wire.poll(now)
        times.append(now)
    wire.poll(now + 61.0)  # every timer: resolution given up, reassembly timeout (Time Exceeded)
    times.append(now + 61.0)
    assert wire.within_the_byte_bound(idle_bytes(medium, times)), (wire.bytes_out, wire.bytes_in, wire.frames_in)


@given(steps=st.lists(st.tuples(st.binary(max_size=120), st.floats(0, 70)), max_size=8),
       medium=st.sampled_from(["ethernet", "ip"]))
def test_arbitrary_bytes_behind_an_ipv6_header_never_escape(steps, medium):
    # Noise that gets past the first checks: an IPv6 EtherType, version 6, a payload length
    # that fits, our address as the destination.
    wire, now = Wire6(medium), 0.0
    for noise, pause in steps:
        now += pause
        header = struct.pack("!IHBB16s16s", 6 << 28, len(noise), noise[0] if noise else 59, 64,
                             PEER6.packed, HOST6.packed)
        packet = header + noise
        wire.receive(packet if medium == "ip" else bytes(EthernetFrame(HOST_MAC, PEER_MAC, EtherType.IPV6, packet)),
                     now)
        wire.poll(now)


# 3: no error storm ----------------------------------------------------------------------------

ERROR_KINDS = ["unknown_option", "unknown_next_header", "routing_header", "fragment_length", "hop_by_hop_not_first"]


@given(case=broken(st.one_of(
    ipv6_echo_requests(source=known_sources, destination=ALL_NODES, source_mac=PEER_MAC),
    ipv6_udp_datagrams(source=known_sources, destination=st.sampled_from([ALL_NODES, HOST_GROUP]),
                       source_mac=PEER_MAC)), kinds=ERROR_KINDS))
def test_rfc4443_2_4_e_no_error_about_a_packet_to_a_multicast_group(case):
    wire = Wire6("ethernet")
    wire.receive(case.frame, 1.0)
    if wire.errors:
        # RFC 8200 4.2: the one exception, an unknown option whose action bits are 10.
        (_, message, _), = wire.errors
        option = case.frame[14 + message.parameter]
        assert message.type == Icmpv6Type.PARAMETER_PROBLEM and message.code == 2 and option >> 6 == 0b10, case
    assert case.error is None or case.error.code == 2


@given(cases=st.lists(broken(ipv6_echo_requests(source=PEER6, destination=HOST6, medium="ip"),
                             kinds=ERROR_KINDS, medium="ip"), min_size=1, max_size=40),
       spacing=st.sampled_from([0.0, 0.001, 0.01, 0.05]))
def test_rfc4443_2_4_f_the_rate_limit_bounds_the_errors(cases, spacing):
    # (A small bucket, so that 40 packets can empty it: 4 errors at once, 50 a second.)
    wire, now = Wire6("ip", icmp_error_burst=4, icmp_errors_per_second=50.0), 0.0
    choices = wire.host.choices
    # A token bucket, plainly: it starts full (the burst), earns the rate every second, and
    # each error spends one token; with none left, no error.
    tokens, last, expected = float(choices.icmp_error_burst), 0.0, []
    for case in cases:
        wire.receive(case.frame, now)
        if case.error is not None:
            tokens = min(float(choices.icmp_error_burst), tokens + (now - last) * choices.icmp_errors_per_second)
            last = now
            if tokens >= 1.0:
                tokens -= 1.0
                expected.append(tuple(case.error))
        now += spacing
    assert [(m.type, m.code, m.parameter) for _, m, _ in wire.errors] == expected
    assert len(wire.errors) <= choices.icmp_error_burst + choices.icmp_errors_per_second * now


# 4: every breakage dropped under its reason, answered as it says ------------------------------

def assert_as_said(wire: Wire6, out: list[bytes], case: Broken) -> None:
    drops = wire.host.stats.drops
    assert sum(drops.values()) == 1, (drops, case)
    assert set(drops) <= case.drop_reasons, (drops, case)
    assert wire.echo_replies == 0, case
    if case.error is None:
        assert out == [], case
        return
    assert len(out) == 1 and len(wire.errors) == 1, (out, case)
    _, message, packet = wire.errors[0]
    assert (message.type, message.code, message.parameter) == tuple(case.error), (message, case)
    # RFC 4443 2.4 (c): the error quotes the packet as it came (as much as fits 1280 bytes).
    invoking = case.frame[14:] if wire.medium == "ethernet" else case.frame
    assert bytes(message.payload) == invoking[:len(message.payload)] and packet.destination == (
        Ipv6Packet.parse(invoking).source)


@given(case=broken(to_host()))
def test_every_ipv6_breakage_is_dropped_and_answered_as_said_on_a_tap_host(case):
    wire = Wire6("ethernet")
    assert_as_said(wire, wire.receive(case.frame, 1.0), case)


@given(case=broken(to_host("ip"), medium="ip"))
def test_every_ipv6_breakage_is_dropped_and_answered_as_said_on_a_tun_host(case):
    wire = Wire6("ip")
    assert_as_said(wire, wire.receive(case.frame, 1.0), case)


@given(case=broken(ipv6_echo_requests(source=PEER6, destination=HOST6, destination_mac=HOST_MAC,
                                      source_mac=PEER_MAC), kinds=["flipped_bit"]))
def test_rfc4443_2_3_no_echo_reply_for_a_bit_flipped_in_the_message(case):
    wire = Wire6("ethernet")
    assert_as_said(wire, wire.receive(case.frame, 1.0), case)
