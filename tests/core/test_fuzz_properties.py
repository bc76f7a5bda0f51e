"""Fuzz properties of whole hosts, with the public strategies (``stack.testing.strategies``).

1. Nothing escapes ``TapHost.receive``, ``TunHost.receive`` (with and without packet
   information) or ``poll``, for arbitrary bytes and for every mutator.
2. Every mutation is dropped under the reason ``broken`` names, and nothing is answered: in
   particular no echo reply for a bit flipped anywhere in the checksummed region
   (RFC 1122 3.2.1.2 and 3.2.2).
3. Every frame a host emits is valid: our codecs and dpkt read it, checksums verify, it fits the
   MTU, it goes to no broadcast, multicast or own address (ARP aside), from our own address;
   and the output stays within the amplification bound (``stack.node``'s constants).
4. Fragment trains, in any order with duplicates and overlaps, are answered exactly as often as
   the RFC 5722 model says.

The run length comes from the hypothesis profile (tests/conftest.py): quick by default,
``HYPOTHESIS_PROFILE=fuzz`` for hundreds of thousands of examples.
"""

from __future__ import annotations

from ipaddress import IPv4Address, IPv4Network

import dpkt
from hypothesis import given
from hypothesis import strategies as st

from stack import TapHost, TunHost
from stack.buffers import join
from stack.l2.arp import ArpOp, ArpPacket
from stack.l2.ethernet import EthernetFrame, EtherType, MacAddress
from stack.packet_info import header_bytes as packet_info_header
from stack.l3.icmp import IcmpMessage, IcmpType
from stack.l3.ipv4 import IpProto, Ipv4Packet
from stack.node import EXTRA_BYTES_OUT_PER_FRAME_IN, MAX_FRAMES_OUT_PER_FRAME_IN, STARTUP_BYTES_PER_ADDRESS
from stack.testing.strategies import (
    Broken,
    arp_frames,
    broken,
    echo_requests,
    fragment_trains,
    ipv4_addresses,
    udp_datagrams,
)

HOST_IP, HOST_MAC = "192.0.2.2", MacAddress("02:00:00:00:00:02")
PEER_IP, PEER_MAC = "192.0.2.1", "02:00:00:00:00:01"
NETWORK = IPv4Network("192.0.2.0/24")
PI = packet_info_header(EtherType.IPV4)

# Peers: mostly the one the host knows, sometimes an on-link one it must resolve, sometimes one
# behind the gateway (all documentation addresses).
sources = st.sampled_from([PEER_IP] * 4 + ["192.0.2.77", "198.51.100.9"])


def to_host(medium: str = "ethernet", **fields):
    """Valid frames a host at HOST_IP would answer: echo requests, UDP, ARP requests."""
    addressing = dict(source=sources, destination=HOST_IP, medium=medium)
    if medium == "ethernet":
        addressing.update(destination_mac=HOST_MAC, source_mac=PEER_MAC)
    options = [echo_requests(**addressing, **fields), udp_datagrams(**addressing)]
    if medium == "ethernet":
        options.append(arp_frames(operation=st.just(ArpOp.REQUEST), hardware_type=st.just(1),
                                  protocol_type=st.just(EtherType.IPV4), sender_ip=sources,
                                  target_ip=HOST_IP, sender_mac=PEER_MAC))
    return st.one_of(options)


class Wire:
    """Feeds a host and checks everything it sends (property 3), keeping the totals the
    amplification bound is stated in."""

    def __init__(self, medium: str, packet_info: bool = False) -> None:
        self.medium, self.packet_info = medium, packet_info
        if medium == "ethernet":
            self.host = TapHost([f"{HOST_IP}/24"], mac=HOST_MAC, gateway=PEER_IP)
            self.host.receive(bytes(EthernetFrame(HOST_MAC, PEER_MAC, EtherType.ARP, bytes(
                ArpPacket(ArpOp.REQUEST, PEER_MAC, PEER_IP, bytes(6), HOST_IP)))), 0.0)  # learn the peer
        else:
            self.host = TunHost([HOST_IP], peer=PEER_IP, packet_info=packet_info)
        self.ours = {IPv4Address(HOST_IP)}
        self.frames_in = self.bytes_in = self.bytes_out = 0
        self.echo_replies = 0
        self.within_mtu = True  # the byte bound is stated for frames of at most the MTU
        self.fragments: dict[tuple, list[Ipv4Packet]] = {}

    def receive(self, frame: bytes, now: float) -> list[bytes]:
        if self.packet_info:
            frame = PI + frame
        before = self.host.stats.as_dict()
        out = [join(buffers) for buffers in self.host.receive(frame, now)]
        after = self.host.stats
        self.frames_in += 1
        self.bytes_in += len(frame)
        link_header = 14 if self.medium == "ethernet" else 4 if self.packet_info else 0
        self.within_mtu = self.within_mtu and len(frame) <= self.host.mtu + link_header
        # Held datagrams count against the frame that caused them, not the one that released them.
        caused = (len(out) - (after["arp_queue_flushed"] - before.get("arp_queue_flushed", 0))
                  + (after["arp_queued"] - before.get("arp_queued", 0)))
        assert caused <= MAX_FRAMES_OUT_PER_FRAME_IN
        self.check(out)
        return out

    def poll(self, now: float) -> list[bytes]:
        out = [join(buffers) for buffers in self.host.poll(now)]
        self.check(out)
        return out

    def check(self, out: list[bytes]) -> None:
        for frame in out:
            self.bytes_out += len(frame)
            if self.medium == "ethernet":
                self.check_ethernet(frame)
            elif self.packet_info:
                assert frame[:4] == PI
                self.check_datagram(frame[4:])
            else:
                self.check_datagram(frame)
        limit = self.bytes_in + EXTRA_BYTES_OUT_PER_FRAME_IN * self.frames_in
        if self.medium == "ethernet":
            limit += STARTUP_BYTES_PER_ADDRESS * len(self.ours)
        assert self.bytes_out <= limit or not self.within_mtu, (self.bytes_out, self.bytes_in, self.frames_in)

    def check_ethernet(self, frame: bytes) -> None:
        assert 60 <= len(frame) <= 14 + self.host.mtu
        ethernet = EthernetFrame.parse(frame)
        theirs = dpkt.ethernet.Ethernet(frame)
        assert (theirs.dst, theirs.src, theirs.type) == (ethernet.destination, ethernet.source, ethernet.ethertype)
        assert ethernet.source == HOST_MAC
        if ethernet.ethertype == EtherType.ARP:
            arp = ArpPacket.parse(ethernet.payload)
            assert dpkt.arp.ARP(bytes(ethernet.payload)).spa == arp.sender_ip.packed
            assert arp.sender_mac == HOST_MAC and arp.sender_ip in self.ours
            return
        assert ethernet.ethertype == EtherType.IPV4
        assert not ethernet.destination.is_multicast  # broadcast included
        payload = bytes(ethernet.payload)
        size = Ipv4Packet.parse(payload).total_length
        assert payload[size:] == bytes(len(payload) - size) and (size >= 46 or len(payload) == 46)  # RFC 894
        self.check_datagram(payload[:size])

    def check_datagram(self, datagram: bytes) -> None:
        assert len(datagram) <= self.host.mtu
        packet = Ipv4Packet.parse(datagram)  # verifies the header checksum
        assert packet.total_length == len(datagram)
        theirs = dpkt.ip.IP(datagram)
        assert dpkt.in_cksum(datagram[:packet.header_length]) == 0 and theirs.len == len(datagram)
        assert packet.source in self.ours and packet.destination not in self.ours
        destination = packet.destination
        assert not (destination.is_multicast or destination.is_unspecified or destination.is_loopback)
        assert destination != IPv4Address("255.255.255.255") and destination != NETWORK.broadcast_address
        assert packet.ttl > 0
        if packet.is_fragment:
            whole = self.reassemble(packet)
            if whole is None:
                return
            packet = whole
        if packet.protocol == IpProto.ICMP:
            message = IcmpMessage.parse(packet.payload)  # verifies the ICMP checksum
            assert dpkt.in_cksum(bytes(packet.payload)) == 0
            self.echo_replies += message.type == IcmpType.ECHO_REPLY

    def reassemble(self, fragment: Ipv4Packet) -> Ipv4Packet | None:
        """Our own fragments, put together as they come (they come in order, RFC 791 3.2)."""
        key = (fragment.source, fragment.destination, fragment.identification)
        held = self.fragments.setdefault(key, [])
        assert fragment.fragment_offset * 8 == sum(len(p.payload) for p in held), "in order, no gaps"
        held.append(fragment)
        if fragment.more_fragments:
            assert len(fragment.payload) % 8 == 0
            return None
        del self.fragments[key]
        first = held[0]
        return Ipv4Packet(first.source, first.destination, first.protocol,
                          b"".join(bytes(p.payload) for p in held))


# 1 + 3: nothing escapes, whatever comes in; whatever goes out is valid ---------------------

steps = st.lists(st.tuples(st.binary(max_size=120), st.floats(0, 40)), max_size=8)


@given(steps=steps)
def test_arbitrary_bytes_never_escape_a_tap_host(steps):
    wire, now = Wire("ethernet"), 0.0
    for frame, pause in steps:
        now += pause
        wire.receive(frame, now)
        wire.poll(now)


@given(steps=steps, packet_info=st.booleans())
def test_arbitrary_bytes_never_escape_a_tun_host(steps, packet_info):
    wire, now = Wire("ip", packet_info), 0.0
    for frame, pause in steps:
        now += pause
        wire.receive(frame, now)
        wire.poll(now)


def anything(medium: str):
    """Valid frames for the host, the same broken, fragment trains, and noise."""
    valid = to_host(medium)
    requests = echo_requests(source=sources, destination=HOST_IP, medium="ip", min_size=1, max_size=3000)
    trains = st.one_of(
        fragment_trains(requests, medium=medium, destination_mac=HOST_MAC, source_mac=PEER_MAC),
        fragment_trains(requests, duplicates=True, overlaps=True, medium=medium,
                        destination_mac=HOST_MAC, source_mac=PEER_MAC),
    )
    return st.one_of(
        valid.map(lambda frame: [frame]),
        broken(valid, medium=medium).map(lambda case: [case.frame]),
        trains.map(lambda train: list(train.fragments)),
        st.binary(max_size=80).map(lambda noise: [noise]),
    )


@given(data=st.data(), medium=st.sampled_from(["ethernet", "ip"]), packet_info=st.booleans())
def test_everything_sent_is_valid_and_within_the_amplification_bound(data, medium, packet_info):
    wire, now = Wire(medium, packet_info and medium == "ip"), 0.0
    for _ in range(data.draw(st.integers(1, 6), label="batches")):
        for frame in data.draw(anything(medium), label="frames"):
            wire.receive(frame, now)
        now += data.draw(st.sampled_from([0.0, 0.5, 1.0, 31.0]), label="pause")
        wire.poll(now)
    wire.poll(now + 61.0)  # every timer: ARP give-up, reassembly timeout (Time Exceeded)


@given(request=echo_requests(source=PEER_IP, destination=HOST_IP, medium="ip", min_size=1473,
                             max_size=65507))
def test_a_reply_larger_than_the_mtu_leaves_in_valid_fragments(request):
    wire = Wire("ip")  # (a request above the MTU: outside the byte bound's promise)
    out = wire.receive(request, 0.0)
    assert len(out) == -(-(len(request) - 20) // 1480) and wire.echo_replies == 1


# 2: every mutation dropped, under its reason, and never answered ----------------------------

def assert_dropped_as_said(host, out: list, case: Broken, reasons: frozenset[str] | None = None) -> None:
    assert out == [], case
    drops = host.stats.drops
    assert sum(drops.values()) == 1, (drops, case)
    assert set(drops) <= (case.drop_reasons if reasons is None else reasons), (drops, case)
    assert host.stats["icmp_echo_replies_sent"] == 0


@given(case=broken(to_host(max_size=1472)))
def test_every_mutation_is_dropped_under_its_reason_on_a_tap_host(case):
    wire = Wire("ethernet")
    wire.host.stats.counters.clear()
    assert_dropped_as_said(wire.host, wire.receive(case.frame, 1.0), case)


@given(case=broken(to_host("ip", max_size=1472), medium="ip"))
def test_every_mutation_is_dropped_under_its_reason_on_a_tun_host(case):
    wire = Wire("ip")
    assert_dropped_as_said(wire.host, wire.receive(case.frame, 1.0), case)


@given(case=broken(to_host("ip", max_size=1472), medium="ip"))
def test_every_mutation_is_dropped_on_a_tun_host_with_packet_information(case):
    wire = Wire("ip", packet_info=True)
    # The packet information says IPv4, so the IPv4 parser (not the first nibble) sees the break.
    tun_only = {"tun_not_ipv4": {"ipv4_truncated", "ipv4_bad_version"},
                "tun_ipv6_not_supported": {"ipv4_bad_version"}}
    reasons = frozenset().union(*(tun_only.get(reason, {reason}) for reason in case.drop_reasons))
    assert_dropped_as_said(wire.host, wire.receive(case.frame, 1.0), case, reasons)


@given(case=broken(echo_requests(source=PEER_IP, destination=HOST_IP, destination_mac=HOST_MAC,
                                 source_mac=PEER_MAC), kinds=["flipped_bit"]))
def test_rfc1122_3_2_2_no_echo_reply_for_a_bit_flipped_in_the_checksummed_region(case):
    wire = Wire("ethernet")
    wire.host.stats.counters.clear()
    assert_dropped_as_said(wire.host, wire.receive(case.frame, 1.0), case)


# 4: fragment trains ---------------------------------------------------------------------

@given(train=fragment_trains(echo_requests(source=PEER_IP, destination=HOST_IP, medium="ip", min_size=1,
                                           max_size=9000, identification=st.integers(0, 3)),
                             duplicates=True),
       medium=st.sampled_from(["ethernet", "ip"]))
def test_fragment_trains_are_answered_as_often_as_the_model_says(train, medium):
    wire = Wire(medium)
    for fragment in train.fragments:
        wire.receive(fragment if medium == "ip" else bytes(EthernetFrame(HOST_MAC, PEER_MAC, EtherType.IPV4, fragment)),
                     1.0)
    assert wire.echo_replies == train.completions >= 1
    wire.poll(100.0)  # leftovers (a duplicate after completion) time out, validly


@given(train=fragment_trains(echo_requests(source=PEER_IP, destination=HOST_IP, medium="ip", min_size=1,
                                           max_size=9000), overlaps=True))
def test_rfc5722_an_overlap_before_the_end_gets_no_reply(train):
    wire = Wire("ip")
    for fragment in train.fragments:
        wire.receive(fragment, 1.0)
    assert wire.echo_replies == 0 and "ipv4_fragment_overlap" in wire.host.stats.drops
