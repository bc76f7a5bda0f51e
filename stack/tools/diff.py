"""``tapstack diff``: the same frames to the Linux kernel and to tapstack, their answers compared.

Read first: RFC 1122 1.2.2 (robustness), and this project's rule for the places RFC 1122 leaves
open: do what Linux does, unless ``DELIBERATE_DIFFERENCES`` below says why not.

Both hosts are 192.0.2.2/24 at 02:00:c0:00:02:02. The kernel owns that address on a TAP device
in a private network namespace (created by the caller; see ``run_diff``); we hold the device's
other end, write each frame into it and read what the kernel sends back until the line has been
quiet for ``QUIET_S``. tapstack is a ``TapHost`` in this process, fed the same frames. Frames
come from two peers both hosts already know (permanent neighbour entries), so no answer waits
for ARP.

Answers are compared after ``normalize``: what may differ between two correct hosts (the IP
identification, Ethernet padding, the values in a Timestamp option) is set aside. A frame whose
answers still differ is a disagreement unless one of ``DELIBERATE_DIFFERENCES`` covers it; that
list, each entry with its RFC, is the only allow-list. Hypothesis generates the frames and shrinks
a disagreement to a minimal frame, printed with both answers.

With ``family=6`` (``tapstack diff --ipv6``) the same for IPv6: both hosts are HOST6 at the
same MAC, the peers permanent neighbours on both sides (no answer waits for Neighbor Discovery),
no DAD; packets from ``probe_frames6``; the flow label set aside too; the kernel's own Router
Solicitations and MLD reports taken out of its answers (``is_kernel_noise``).

IPv4 examples are frames and, one in ``TRAIN_SHARE``, fragment trains (``diff_trains``: in
order, reversed, shuffled, with a duplicate, an overlap or an empty fragment, atomic, or with a
piece missing), all of a train's fragments sent and its answers compared together. So that an
incomplete train's Time Exceeded (RFC 1122 3.3.2, RFC 792 code 1) lands in its own example,
both hosts give up after ``REASSEMBLY_TIMEOUT_S`` (the kernel's ``net.ipv4.ipfrag_time``, per
namespace; tapstack's ``reassembly_timeout``), and after each example each side is run past its
timer while it still holds a datagram (the kernel's ``FRAG: inuse`` in /proc/net/sockstat): no
reassembly state outlives an example. With ``--ipv6`` the same with IPv6 fragment trains
(``fragment_trains6``; ``net.ipv6.ip6frag_time``, FRAG6 in /proc/net/sockstat6).
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from ipaddress import IPv4Address, IPv4Interface, IPv6Address, IPv6Interface

from stack.buffers import Buffer, join
from stack.checksum import internet_checksum
from stack.documentation_addresses import HOST, PEER, PEER_MAC, SECOND_PEER, SECOND_PEER_MAC, TUN_DEVICE
from stack.documentation_addresses import TAP_DEVICE as DEVICE
from stack.errors import ParseError
from stack.l2.arp import ArpOp, ArpPacket
from stack.l2.ethernet import BROADCAST, EthernetFrame, EtherType, MacAddress
from stack.l2.ipv6_multicast import ipv6_multicast_mac
from stack.l2.neighbor import NeighborCache
from stack.l3.icmp import IcmpMessage, IcmpType
from stack.l3.icmpv6 import Icmpv6Type
from stack.l3.ipv4 import IpOption, IpProto, Ipv4Packet, parse_options
from stack.l3.ipv6 import Ipv6Packet, Ipv6ParseError, NextHeader, link_local_address, solicited_node_multicast
from stack.l4.udp import UdpDatagram
from stack.node import TapHost, TunHost, mac_for
from stack.runtime.settle import run_until_quiet
from stack.runtime.trace import summarize
from stack.tools.diff_trains import Train, linux_keeps_what_tapstack_discards, where_linux_differs

#: Both hosts answer as HOST from the same MAC, derived from the address.
HOST_MAC = mac_for(HOST.ip)
#: The peers the frames come from, known to both hosts in advance (permanent entries).
PEERS = {PEER.ip: MacAddress(PEER_MAC), SECOND_PEER: MacAddress(SECOND_PEER_MAC)}
#: Over TUN (``medium="ip"``): a point-to-point link, the kernel HOST's address with the first
#: peer at the other end; bare IPv4 packets, no ARP.
TUN_PEER = PEER.ip
#: With ``family=6`` (``tapstack diff --ipv6``) both hosts are HOST6 at the same MAC (and its
#: link-local address, fe80::c0ff:fe00:202, made from it by modified EUI-64); the peers, their
#: global and link-local addresses, are known to both in advance (permanent neighbour entries).
HOST6 = IPv6Interface("2001:db8::2/64")
PEER6 = IPv6Address("2001:db8::1")
SECOND_PEER6 = IPv6Address("2001:db8::3")
PEERS6 = {PEER6: MacAddress(PEER_MAC), SECOND_PEER6: MacAddress(SECOND_PEER_MAC),
          link_local_address(bytes(MacAddress(PEER_MAC))): MacAddress(PEER_MAC),
          link_local_address(bytes(MacAddress(SECOND_PEER_MAC))): MacAddress(SECOND_PEER_MAC)}
#: Over TUN with ``family=6``: HOST6 (a /128) with PEER6 at the other end of the link.
TUN_PEER6 = PEER6
#: The kernel has answered a frame once the device has been quiet this long after it.
QUIET_S = 0.02
#: The longest we wait for the kernel's answers to one frame.
ANSWER_TIMEOUT_S = 0.5
#: tapstack's clock moves on this much per frame, so its ICMP error token bucket is full for
#: every frame, as the kernel's is with its rate limit off (``KERNEL_SYSCTLS``).
STACK_SECONDS_PER_FRAME = 1.0

#: Both hosts give up an incomplete datagram after this many seconds (RFC 1122 3.3.2: a
#: timeout is a MUST, its value the host's; tapstack's and Linux's default is 30 s). Short, so
#: that an incomplete fragment train's Time Exceeded comes within its own example: the lowest
#: value ``net.ipv4.ipfrag_time`` takes (whole seconds; it is per network namespace).
REASSEMBLY_TIMEOUT_S = 1
#: One example in this many is a fragment train (IPv4; ``stack.tools.diff_trains``).
TRAIN_SHARE = 4
#: The longest we wait for the kernel to give up a train (its timer, and a margin).
KERNEL_REASSEMBLY_WAIT_S = REASSEMBLY_TIMEOUT_S + 2.0

#: How the kernel under test is set up where Linux's defaults differ from tapstack's documented
#: choices; each is a setting a Linux administrator can make too.
KERNEL_SYSCTLS = {
    # Compare every ICMP error: no per-destination rate limit (tapstack's bucket is kept full).
    "net/ipv4/icmp_ratelimit": "0",
    # The reassembly timeout both hosts use (tapstack's through ``reassembly_timeout``).
    "net/ipv4/ipfrag_time": str(REASSEMBLY_TIMEOUT_S),
}
#: And on the TAP device:
TAP_SYSCTLS = {
    # RFC 1122 3.3.6: SHOULD discard a unicast datagram received as a link-layer broadcast
    # (tapstack does; Linux only when told to).
    f"net/ipv4/conf/{DEVICE}/drop_unicast_in_l2_multicast": "1",
    # Linux answers gratuitous ARP only into existing entries by default (arp_accept=0), as
    # tapstack's RFC 826 merge does: set explicitly so a distribution default cannot change it.
    f"net/ipv4/conf/{DEVICE}/arp_accept": "0",
}
#: With ``family=6``: compare every ICMPv6 error (tapstack's bucket is kept full), as for IPv4.
KERNEL_SYSCTLS6 = {"net/ipv6/icmp/ratelimit": "0",
                   # The reassembly timeout both hosts use (RFC 8200 4.5 says 60 s; see above).
                   "net/ipv6/ip6frag_time": str(REASSEMBLY_TIMEOUT_S)}


def device_sysctls6(device: str) -> dict[str, str]:
    """The IPv6 settings of the kernel's device, written before the link comes up."""
    return {
        # RFC 4862 5.4 (DAD) off for the link-local address too (``nodad`` is set on the global
        # one), as tapstack's dad_transmits=0: both hosts use their addresses at once.
        f"net/ipv6/conf/{device}/accept_dad": "0",
        # No unsolicited NA when an address comes up (Linux's default, set so a distribution's
        # cannot change it); tapstack's start-up NA goes before the first frame.
        f"net/ipv6/conf/{device}/ndisc_notify": "0",
    }


# ---------------------------------------------------------------------- normalising


def normalize(frame: Buffer, medium: str = "ethernet") -> bytes:
    """A frame (or, with ``medium="ip"``, a bare IPv4 packet) with what may differ between two
    correct hosts set aside.

    - Ethernet padding (RFC 894: the sender pads to 60 bytes; Linux leaves it to the NIC, and a
      TAP device has none) is cut: ARP to its 28 bytes, IPv4 to its total length.
    - The IPv4 identification is any value unique per source, destination and protocol (RFC 791,
      RFC 6864): set to 0 and the header checksum recomputed.
    - The time values in a Timestamp option are our clocks': set to 0.
    - IPv6: padding is cut to the payload length; the flow label is any value the source
      chooses for the flow (RFC 6437 3; Linux hashes one, or reflects the request's), and a
      fragment's Identification any unique one (RFC 7739): set to 0.
    """
    data = bytes(frame)
    if medium == "ip":
        header, payload = b"", data
        if data[:1] and data[0] >> 4 == 6:
            return header + _normalize6(payload)
    else:
        try:
            ethernet = EthernetFrame.parse(data)
        except ParseError:
            return data
        header, payload = data[:14], bytes(ethernet.payload)
        if ethernet.ethertype == EtherType.ARP and len(payload) >= 28:
            return header + payload[:28]
        if ethernet.ethertype == EtherType.IPV6:
            return header + _normalize6(payload)
        if ethernet.ethertype != EtherType.IPV4:
            return data
    try:
        packet = Ipv4Packet.parse(payload)
    except ParseError:
        return data
    header_length = packet.header_length
    ip_header = bytearray(payload[:header_length])
    ip_header[4:6] = b"\0\0"
    if packet.options:
        ip_header[20:header_length] = _timestamps_cleared(packet.options)
    ip_header[10:12] = b"\0\0"
    ip_header[10:12] = internet_checksum(bytes(ip_header)).to_bytes(2, "big")
    return header + bytes(ip_header) + payload[header_length:packet.total_length]


def _normalize6(packet: bytes) -> bytes:
    """An IPv6 packet with its flow label cleared and padding cut (see ``normalize``)."""
    try:
        parsed = Ipv6Packet.parse(packet)
    except ParseError:
        return packet
    header = bytearray(packet[:40 + parsed.payload_length])
    header[1] &= 0xF0
    header[2:4] = b"\0\0"
    if parsed.next_header == NextHeader.FRAGMENT and len(header) >= 48:
        # RFC 8200 4.5 / RFC 7739: a fragment's Identification is any value the source makes
        # unique for the pair of addresses (our answers carry no other header before it).
        header[44:48] = bytes(4)
    return bytes(header)


#: What a kernel with IPv6 on sends on its own, never in answer to a frame of ours: Router
#: Solicitations (RFC 4861 6.3.7, when an interface comes up: up to 3, 4 s apart) and MLD reports
#: (RFC 3810 6.1, unsolicited ones when it joins a group: repeated by its robustness variable,
#: 1 s apart). ``tapstack diff --ipv6`` sends no Router Advertisement and no MLD query, the only
#: messages that ask for these, so any of them in the kernel's answers is noise from an earlier
#: moment, set aside by what it is rather than by when it came (the repeats are seconds apart and
#: land on any later frame).
KERNEL_NOISE_TYPES = frozenset({Icmpv6Type.ROUTER_SOLICITATION, 131, 132, 143})  # RS; MLDv1 report, done; MLDv2 report


def is_kernel_noise(frame: bytes, medium: str = "ethernet") -> bool:
    """True for a Router Solicitation or an MLD report (``KERNEL_NOISE_TYPES``)."""
    if medium == "ethernet":
        if frame[12:14] != b"\x86\xdd":
            return False
        frame = frame[14:]
    try:
        chain = Ipv6Packet.parse(frame).chain()
    except (ParseError, ValueError):
        return False
    data = chain.upper_layer_data
    return chain.upper_layer == NextHeader.ICMPV6 and len(data) >= 1 and data[0] in KERNEL_NOISE_TYPES


def _timestamps_cleared(options: bytes) -> bytes:
    """The options with every time value a Timestamp option holds set to 0 (RFC 791: flag 0
    holds 4-byte times from octet 5 on; flags 1 and 3 hold address-time pairs)."""
    out = b""
    for kind, option in parse_options(options):
        if kind == IpOption.TIMESTAMP and len(option) >= 4:
            values = bytearray(option)
            first, step = (4, 4) if option[3] & 0x0F == 0 else (8, 8)
            for start in range(first, min(option[2] - 1, len(option)), step):
                values[start:start + 4] = bytes(4)
            option = bytes(values)
        out += option
    return out + bytes(len(options) - len(out))


# ---------------------------------------------------------------------- deliberate differences


@dataclass(frozen=True)
class Difference:
    """A documented place where tapstack answers unlike Linux on purpose."""

    name: str
    why: str  # the RFC rule that leaves the choice open, and the choice
    covers: Callable[[bytes], bool]  # which input frames (and trains' whole datagrams) it covers
    media: tuple[str, ...] = ("ethernet", "ip")  # over TAP, TUN, or both
    covers_train: Callable[[Train], bool] | None = None  # which fragment trains, by their fragments


def _ipv4_to_host(frame: bytes) -> Ipv4Packet | None:
    try:
        ethernet = EthernetFrame.parse(frame)
        if ethernet.ethertype != EtherType.IPV4:
            return None
        return Ipv4Packet.parse(ethernet.payload)
    except ParseError:
        return None


def _protocol(*protocols: int) -> Callable[[bytes], bool]:
    def covers(frame: bytes) -> bool:
        packet = _ipv4_to_host(frame)
        return packet is not None and packet.protocol in protocols
    return covers


def _icmp_type(*types: int) -> Callable[[bytes], bool]:
    def covers(frame: bytes) -> bool:
        packet = _ipv4_to_host(frame)
        if packet is None or packet.protocol != IpProto.ICMP or packet.is_fragment:
            return False
        payload = join(packet.payload)
        return len(payload) >= 1 and payload[0] in types
    return covers


def _zero_echo(frame: bytes) -> bool:
    """An echo request whose reply is all zeros but for the checksum: identifier, sequence and
    data all zero."""
    packet = _ipv4_to_host(frame)
    if packet is None or packet.protocol != IpProto.ICMP or packet.is_fragment:
        return False
    message = join(packet.payload)
    return len(message) >= 8 and message[0] == IcmpType.ECHO_REQUEST and not any(message[4:])


def _with_route_or_time(frame: bytes) -> bool:
    """An IPv4 datagram carrying a Record Route or Timestamp option."""
    packet = _ipv4_to_host(frame)
    if packet is None or not packet.options:
        return False
    try:
        kinds = {kind for kind, _ in parse_options(packet.options)}
    except ParseError:
        return False
    return bool(kinds & {IpOption.RECORD_ROUTE, IpOption.TIMESTAMP})


def _finished_source_route(frame: bytes) -> bool:
    """An IPv4 datagram whose Loose or Strict Source Route has no hop left (we are its final
    destination, RFC 1122 3.2.1.8 (c))."""
    packet = _ipv4_to_host(frame)
    if packet is None or not packet.options:
        return False
    try:
        options = parse_options(packet.options)
    except ParseError:
        return False
    return any(kind in (IpOption.LOOSE_SOURCE_ROUTE, IpOption.STRICT_SOURCE_ROUTE) and len(option) >= 3
               and option[2] > len(option) for kind, option in options)


def _joined_macs() -> frozenset[bytes]:
    """The Ethernet group addresses the hosts listen on: broadcast, all-hosts (224.0.0.1) and,
    with IPv6, all-nodes and the solicited-node groups of HOST6 and its link-local address."""
    from stack.l2.ipv6_multicast import ipv6_multicast_mac

    groups6 = [IPv6Address("ff02::1"), solicited_node_multicast(HOST6.ip),
               solicited_node_multicast(link_local_address(bytes(HOST_MAC)))]
    return frozenset({bytes(BROADCAST), bytes.fromhex("01005e000001"),
                      *(bytes(ipv6_multicast_mac(group.packed)) for group in groups6)})


def _unjoined_multicast(frame: bytes) -> bool:
    """A frame to an Ethernet group address the host has not joined (``_joined_macs``)."""
    return len(frame) >= 6 and frame[0] & 1 == 1 and bytes(frame[:6]) not in _JOINED_MACS


def _arp(frame: bytes) -> ArpPacket | None:
    try:
        ethernet = EthernetFrame.parse(frame)
        return ArpPacket.parse(ethernet.payload) if ethernet.ethertype == EtherType.ARP else None
    except ParseError:
        return None


def _arp_group_sender(frame: bytes) -> bool:
    """An ARP packet whose sender hardware address is a group (multicast, broadcast) or zero
    address."""
    arp = _arp(frame)
    return arp is not None and (arp.sender_mac.is_multicast or arp.sender_mac == bytes(6))


def _arp_claiming_our_address(frame: bytes) -> bool:
    """An ARP packet from another MAC whose sender IP address is the host's (RFC 5227 2.4: a
    conflicting ARP packet)."""
    arp = _arp(frame)
    return arp is not None and arp.sender_ip == HOST.ip and arp.sender_mac != HOST_MAC


def _echo_with_code(frame: bytes) -> bool:
    """An echo request whose code is not 0."""
    packet = _ipv4_to_host(frame)
    if packet is None or packet.protocol != IpProto.ICMP or packet.is_fragment:
        return False
    message = join(packet.payload)
    return len(message) >= 2 and message[0] == IcmpType.ECHO_REQUEST and message[1] != 0


def _ipv6_to_host(frame: bytes) -> Ipv6Packet | None:
    try:
        ethernet = EthernetFrame.parse(frame)
        if ethernet.ethertype != EtherType.IPV6:
            return None
        return Ipv6Packet.parse(ethernet.payload)
    except ParseError:
        return None


def _unicast_solicitation(frame: bytes) -> bool:
    """A Neighbor Solicitation sent to a unicast address (not a solicited-node group)."""
    packet = _ipv6_to_host(frame)
    if packet is None or packet.next_header != NextHeader.ICMPV6 or packet.destination.is_multicast:
        return False
    message = join(packet.payload)
    return len(message) >= 1 and message[0] == Icmpv6Type.NEIGHBOR_SOLICITATION


def _routing_types_linux_has(frame: bytes) -> bool:
    """An IPv6 packet whose header chain holds a Routing header of type 3 (RPL) or 4 (SRv6)."""
    packet = _ipv6_to_host(frame)
    return packet is not None and any(header.type == NextHeader.ROUTING and header.data[2] in LINUX_ROUTING_TYPES
                                      for header in _headers(packet))


def _padding_linux_refuses(frame: bytes) -> bool:
    """An options header with more than 7 consecutive octets of padding, or a PadN whose data
    is not all zeros."""
    packet = _ipv6_to_host(frame)
    if packet is None:
        return False
    for header in _headers(packet):
        if header.type not in (NextHeader.HOP_BY_HOP, NextHeader.DESTINATION_OPTIONS):
            continue
        run = 0
        for option in header.value.options:
            if not option.is_padding:
                run = 0
                continue
            run += 1 if option.type == 0 else 2 + len(option.data)
            if run > 7 or any(option.data):
                return True
    return False


def _headers(packet: Ipv6Packet) -> tuple:
    """The extension headers of a packet, as far as they can be read."""
    try:
        return packet.chain().headers
    except Ipv6ParseError as error:
        return error.before
    except (ParseError, ValueError):
        return ()


def _routing_header_not_to_host(frame: bytes) -> bool:
    """A packet with a Routing header to a multicast address, or in a link-layer group frame."""
    packet = _ipv6_to_host(frame)
    if packet is None or not any(header.type == NextHeader.ROUTING for header in _headers(packet)):
        return False
    return packet.destination.is_multicast or frame[0] & 1 == 1


def _ours6() -> frozenset[IPv6Address]:
    return frozenset({HOST6.ip, link_local_address(bytes(HOST_MAC)), IPv6Address("ff02::1"),
                      solicited_node_multicast(HOST6.ip),
                      solicited_node_multicast(link_local_address(bytes(HOST_MAC)))})


def _hop_by_hop_not_ours(frame: bytes) -> bool:
    """A packet with a Hop-by-Hop Options header to an address that is not the host's."""
    packet = _ipv6_to_host(frame)
    return (packet is not None and packet.next_header == NextHeader.HOP_BY_HOP
            and packet.destination not in _ours6())


def _not_ours_over_tun(frame: bytes) -> bool:
    """A packet to a unicast address that is not the host's."""
    packet = _ipv6_to_host(frame)
    return packet is not None and not packet.destination.is_multicast and packet.destination not in _ours6()


def _to_solicited_node_group(frame: bytes) -> bool:
    packet = _ipv6_to_host(frame)
    return packet is not None and packet.destination in (solicited_node_multicast(HOST6.ip),)


def _zero_length_hop_by_hop(frame: bytes) -> bool:
    """A packet with Payload Length 0 whose first header is Hop-by-Hop Options (the form of an
    RFC 2675 jumbogram)."""
    packet = _ipv6_to_host(frame)
    return packet is not None and packet.payload_length == 0 and packet.next_header == NextHeader.HOP_BY_HOP


#: The Routing header types Linux 6.18 implements: RPL (3, RFC 6554) and SRv6 (4, RFC 8754).
LINUX_ROUTING_TYPES = (3, 4)


_JOINED_MACS = _joined_macs()

#: Where tapstack answers unlike Linux on purpose. The only allow-list of ``tapstack diff``.
DELIBERATE_DIFFERENCES = [
    Difference("protocols-linux-has", "IGMP (2), PIM (103) and UDP-Lite (136): Linux implements "
               "them (and silently drops what arrives here); tapstack does not, and sends Protocol "
               "Unreachable (RFC 1122 3.2.2.1: SHOULD, for a protocol the host does not have)",
               _protocol(2, 103, 136)),
    Difference("icmp-timestamp", "ICMP Timestamp: Linux answers requests; tapstack does not "
               "(RFC 1122 3.2.2.8: a host MAY implement Timestamp; a teaching lab adds it)",
               _icmp_type(IcmpType.TIMESTAMP_REQUEST)),
    Difference("echo-code", "an echo request with a code other than 0: tapstack's reply has code "
               "0, as RFC 792 defines the echo reply; Linux copies the request's code",
               _echo_with_code),
    Difference("route-and-time-options", "Record Route and Timestamp options: in an echo reply "
               "tapstack adds itself once, as RFC 1122 3.2.2.6 says (\"updated to include the "
               "current host\"), Linux twice (on receiving and on sending); an ICMP error about such "
               "a datagram quotes it as received (RFC 792: \"the original datagram\") and carries no "
               "options in tapstack, while Linux quotes it as it updated it and echoes the options; "
               "likewise a TCP RST: Linux 6.18 echoes the options, tapstack's RST carries none (RFC "
               "1122 3.2.1.8: a host MAY implement Record Route and Timestamp)",
               _with_route_or_time),
    Difference("unjoined-multicast-mac", "a frame to an Ethernet multicast address the host has "
               "not joined (IPv4 or IPv6): tapstack drops it, as the multicast address filter of a NIC does; "
               "a Linux TAP device has no filter and hands it to ARP and IP",
               _unjoined_multicast),
    Difference("arp-group-sender-mac", "an ARP packet whose sender MAC is a group (multicast, "
               "broadcast) or zero address: tapstack drops it (RFC 1812 3.3.2: a router MUST NOT "
               "believe an ARP reply claiming a broadcast or multicast link address; tapstack, a "
               "host, believes no such request either); Linux 6.18 answers the request to that "
               "address and learns it", _arp_group_sender),
    Difference("arp-address-defence", "an ARP packet from another MAC with the host's address as "
               "its sender address: tapstack defends the address with one announcement at most "
               "every 10 s (RFC 5227 2.4: a host MUST respond to a conflicting ARP packet, here by "
               "(b) or (c)); the Linux 6.18 kernel answers nothing", _arp_claiming_our_address),
    Difference("finished-source-route", "a datagram whose source route is finished (we are its "
               "final destination): tapstack takes and answers it (RFC 1122 3.2.1.8 (c): a host "
               "MUST be able to act as the final destination of a source route); Linux 6.18 drops "
               "every source-routed datagram (net.ipv4.conf.all.accept_source_route = 0; "
               "tests/root/test_fragments_device.py)", _finished_source_route),
    Difference("zero-echo-checksum", "an echo reply that is all zeros but for its checksum: "
               "tapstack sends 0xffff, the one value that verifies (RFC 1071: the sum must be all "
               "ones); Linux's incremental update (RFC 1624 eqn. 3) gives 0x0000",
               _zero_echo),
    Difference("ipv4-fragment-inside-a-run", "a fragment lying inside data that came in order, "
               "not an exact copy of one fragment: Linux 6.18 drops it alone and keeps the "
               "datagram, yet discards the datagram for the same fragment over data that came out "
               "of order (tests/root/test_fragments_device.py); tapstack discards the datagram "
               "on any overlap but an exact duplicate, whatever the order (RFC 791 3.2 leaves "
               "overlaps to the receiver; RFC 5722's rule for IPv6, made against overlap attacks, "
               "applied to IPv4 too)", lambda frame: False,
               covers_train=lambda train: train.datagram[0] >> 4 == 4 and linux_keeps_what_tapstack_discards(train)),
    # IPv6 (``--ipv6``)
    Difference("ipv6-fragment-inside-a-run", "a fragment lying inside data that came in order, "
               "not an exact copy of one fragment: Linux 6.18 drops it alone and keeps the packet "
               "(as for IPv4); tapstack discards the packet and its later fragments, as RFC 5722 3 "
               "says a node MUST for any overlapping fragment", lambda frame: False,
               covers_train=lambda train: train.datagram[0] >> 4 == 6 and linux_keeps_what_tapstack_discards(train)),
    Difference("ipv6-fragments-after-an-overlap", "the fragments that come after an overlap "
               "discarded a packet: tapstack discards them too until the packet's timeout, as RFC "
               "5722 3 says a node MUST (\"including those not yet received\"); Linux 6.18 starts "
               "the packet anew with them (and may answer it, or send Time Exceeded)", lambda frame: False,
               covers_train=lambda train: train.datagram[0] >> 4 == 6
               and where_linux_differs(train) == "after-an-overlap"),
    Difference("nd-unicast-solicitation", "a Neighbor Solicitation to a unicast address: "
               "tapstack's advertisement has Override set and the target link-layer option (RFC "
               "4861 7.2.4: O SHOULD be set for an address that is not anycast; the option MAY be "
               "omitted for a unicast NS); Linux 6.18 clears O and omits the option "
               "(tests/root/test_nd_device.py)", _unicast_solicitation),
    Difference("routing-types-linux-has", "a Routing header of type 3 (RPL, RFC 6554) or 4 (SRv6, "
               "RFC 8754): Linux implements them and, off by default (rpl_seg_enabled, seg6_enabled "
               "0), discards the packet silently whatever Segments Left is; tapstack implements "
               "neither and applies RFC 8200 4.4 to an unrecognised type (Segments Left 0: "
               "ignored, the packet processed; otherwise Parameter Problem code 0)",
               _routing_types_linux_has),
    Difference("padding-linux-refuses", "an options header with more than 7 consecutive octets "
               "of padding (Pad1, PadN) or a PadN carrying other than zeros: Linux 6.18 discards the "
               "packet (the checks RFC 4942 2.1.9.5 suggests against covert channels); tapstack "
               "skips padding as RFC 8200 4.2 defines it, whatever its length and contents",
               _padding_linux_refuses),
    Difference("zero-length-hop-by-hop", "Payload Length 0 with a Hop-by-Hop Options header "
               "first (an RFC 2675 jumbogram's form) but no Jumbo Payload option: Linux 6.18 reads "
               "the packet to the end of the frame and answers what it finds there; tapstack "
               "supports no jumbograms and reads a payload of 0 octets (RFC 8200 3), which holds "
               "no header: dropped (neither sends RFC 2675 3's Parameter Problem)",
               _zero_length_hop_by_hop),
    Difference("routing-header-not-to-host", "a packet with a Routing header to a multicast "
               "address or in a link-layer multicast frame: Linux 6.18 discards it whatever the "
               "type and Segments Left (RFC 2460 4.4 forbade a multicast destination with a type 0 "
               "header); tapstack applies RFC 8200 4.4 (Segments Left 0: the header is ignored)",
               _routing_header_not_to_host),
    Difference("hop-by-hop-not-ours", "a packet with a Hop-by-Hop Options header to an address "
               "that is not the host's: Linux 6.18 reads the header before deciding whether the "
               "packet is its own and reports an unknown option (Parameter Problem code 2); "
               "tapstack, a host that does not forward, is on no packet's path but its own (RFC "
               "8200 4.3: the header is for nodes along the delivery path) and drops it unread",
               _hop_by_hop_not_ours),
    Difference("no-route-over-tun", "over TUN, a packet to an address that is not the host's: "
               "Linux 6.18 has no route for it and answers Destination Unreachable code 0 (no "
               "route), as a router does; tapstack, a host that does not forward, drops it (RFC "
               "4443 3.1: SHOULD be generated by a router, or by the IPv6 layer of the originating "
               "node)", _not_ours_over_tun, media=("ip",)),
    Difference("solicited-node-over-tun", "over TUN, a packet to the host's solicited-node "
               "group: tapstack has joined it (RFC 4291 2.8: a node MUST recognise the solicited-"
               "node address of each of its unicast addresses) and answers; Linux 6.18 joins no "
               "solicited-node group on a device without Neighbor Discovery (IFF_NOARP) and drops "
               "it", _to_solicited_node_group, media=("ip",)),
]


# ---------------------------------------------------------------------- the two hosts


class StackHost:
    """tapstack as the host under test: a ``TapHost`` in this process (with ``medium="ip"``, a
    ``TunHost`` with TUN_PEER at the other end)."""

    def __init__(self, medium: str = "ethernet", family: int = 4) -> None:
        self.medium = medium
        self.family = family
        if family == 6 and medium == "ip":
            self.host = TunHost([f"{HOST6.ip}/128"], peer=TUN_PEER6)
        elif family == 6:
            # DAD off (the kernel's addresses are nodad too); the peers permanent on both sides
            # (``ip -6 neigh replace ... nud permanent`` on the kernel's).
            self.host = TapHost([HOST6], mac=HOST_MAC, dad_transmits=0)
            assert self.host.ip6 is not None and self.host.ip6.resolver is not None
            for address, mac in PEERS6.items():
                self.host.ip6.resolver.add_permanent(address, bytes(mac))
        elif medium == "ip":
            self.host = TunHost([f"{HOST.ip}/32"], peer=TUN_PEER, reassembly_timeout=REASSEMBLY_TIMEOUT_S)
        else:
            self.host = TapHost([HOST], mac=HOST_MAC, neighbor_cache=NeighborCache(lifetime=math.inf),
                                reassembly_timeout=REASSEMBLY_TIMEOUT_S)
            for address, mac in PEERS.items():
                # Permanent, as on the kernel side (NUD_PERMANENT): an ARP packet with another
                # sender MAC for a peer (a flipped bit) changes neither host's entry.
                self.host.link.cache.add_permanent(address, mac)
        if family == 6:
            # RFC 8200 4.5 fixes 60 s, so tapstack makes IPv6's timeout no choice: the diff sets
            # its reassembler's, as it sets the kernel's ip6frag_time (KERNEL_SYSCTLS6).
            self.host.ip6.reassembler.timeout = REASSEMBLY_TIMEOUT_S
        self.now = run_until_quiet(self.host, 0.0).now  # its start-up announcements, sent

    def answer(self, frame: bytes) -> list[bytes]:
        return self.answer_train((frame,))

    def answer_train(self, fragments: tuple[bytes, ...]) -> list[bytes]:
        """What the host sends for a fragment train (or one frame), all at once, and, when a
        datagram is left incomplete, at its reassembly timeout: our clock is driven past it."""
        self.now += STACK_SECONDS_PER_FRAME
        # No other timer of ours runs: our clock jumps a second an example, the kernel's does
        # not, and a timer's late answer would land on another example's.
        settled = run_until_quiet(self.host, self.now, fragments, max_timer_runs=0)
        sent = [join(out) for out in settled.sent]
        for _ in range(len(fragments)):  # each fragment starts at most one datagram
            deadline = self._reassembler.next_deadline()
            if deadline is None:
                break
            self.now = max(self.now, deadline)
            sent += [join(out) for out in self.host.poll(self.now)]
        return sent

    @property
    def _reassembler(self):
        ip = self.host.ip6 if self.family == 6 else self.host.ip
        return ip.reassembler


class _Collector:
    """A node for the loop that keeps every frame the kernel sends and answers nothing."""

    def __init__(self) -> None:
        from stack.stats import Stats

        self.stats = Stats()
        self.frames: list[bytes] = []
        self._seen: int | None = None

    def receive(self, frame: Buffer, now: float) -> list:
        self.frames.append(bytes(frame))
        return []

    def poll(self, now: float) -> list:
        return []

    def next_deadline(self, now: float) -> float | None:
        return None

    def reset(self) -> None:
        self.frames.clear()
        self._seen = None

    def quiet(self) -> bool:
        """True at the first wake-up that brought no new frame (the loop wakes at least every
        QUIET_S)."""
        seen, self._seen = self._seen, len(self.frames)
        return seen == len(self.frames)


class KernelHost:
    """The Linux kernel as the host under test, over a TAP device (or with ``medium="ip"`` a
    TUN device). Call in a private network namespace only."""

    def __init__(self, medium: str = "ethernet", family: int = 4) -> None:
        from stack.runtime import kernel
        from stack.runtime.loop import Loop
        from stack.tap.linux import TapDevice, TunDevice

        self.medium = medium
        self.family = family
        self.waits = 0  # examples after which the kernel held a datagram to give up
        self.device = TunDevice(TUN_DEVICE) if medium == "ip" else TapDevice(DEVICE)
        name = self.device.name
        try:
            # The kernel side: our address (and MAC) on the device, IPv6 off, up; over TAP the
            # peers permanent, as they are on tapstack's side; the sysctls above. With
            # ``family=6``: IPv6 on for the device only, HOST6 without DAD (nodad).
            if family == 6:
                kernel.set_ipv6(name, enabled=True)
                kernel.write_sysctls({**KERNEL_SYSCTLS6, **device_sysctls6(name)})
            if family == 6 and medium == "ip":
                kernel.configure_address(name, IPv6Interface(f"{HOST6.ip}/128"), peer=TUN_PEER6)
            elif family == 6:
                kernel.configure_address(name, HOST6, mac=HOST_MAC)
                kernel.add_permanent_neighbours(name, PEERS6)
            elif medium == "ip":
                kernel.configure_point_to_point(name, HOST.ip, TUN_PEER)
                kernel.write_sysctls(KERNEL_SYSCTLS)
            else:
                kernel.configure_address(name, HOST, mac=HOST_MAC)
                kernel.add_permanent_neighbours(name, PEERS)
                kernel.write_sysctls({**KERNEL_SYSCTLS, **TAP_SYSCTLS})
            self.collector = _Collector()
            self.loop = Loop(max_wait=QUIET_S)
            self.loop.attach(self.device, self.collector)
            self._collect()  # whatever the kernel said when the link came up
        except BaseException:
            self.device.close()
            raise

    def _collect(self) -> list[bytes]:
        self.collector.reset()
        self.loop.run(until=self.collector.quiet, timeout=ANSWER_TIMEOUT_S)
        return list(self.collector.frames)

    def holds_fragments(self) -> bool:
        """Whether the kernel holds an incomplete datagram: the ``FRAG: inuse`` count of this
        network namespace's /proc/net/sockstat (``FRAG6`` in sockstat6 with ``family=6``)."""
        name, line = ("sockstat6", "FRAG6:") if self.family == 6 else ("sockstat", "FRAG:")
        with open(f"/proc/net/{name}") as stat:
            for text in stat:
                if text.startswith(line):
                    return text.split()[2] != "0"
        return False

    def answer(self, frame: bytes) -> list[bytes]:
        return self.answer_train((frame,))

    def answer_train(self, fragments: tuple[bytes, ...]) -> list[bytes]:
        """What the kernel sends for a fragment train (or one frame) and, when it holds an
        incomplete datagram afterwards, until it has given it up (``ipfrag_time``) and gone
        quiet."""
        for fragment in fragments:
            self.device.send([fragment], 0.0)
        answers = self._collect()
        if self.holds_fragments():
            self.waits += 1
            # The loop keeps the clock (it wakes at least every QUIET_S to ask).
            self.collector.reset()
            self.loop.run(until=lambda: not self.holds_fragments(), timeout=KERNEL_REASSEMBLY_WAIT_S)
            answers += self.collector.frames
            if self.holds_fragments():
                raise RuntimeError(f"the kernel still holds fragments {KERNEL_REASSEMBLY_WAIT_S} s after a train")
            answers += self._collect()  # the Time Exceeded it sends as it gives up
        if self.family == 6:
            # Set aside what the kernel sends on its own (see ``KERNEL_NOISE_TYPES``).
            answers = [answer for answer in answers if not is_kernel_noise(answer, self.medium)]
        return answers

    def close(self) -> None:
        self.loop.close()
        self.device.close()


# ---------------------------------------------------------------------- comparing


@dataclass
class Outcome:
    frame: bytes  # the frame; for a fragment train, its whole datagram in a frame
    kernel: list[bytes]
    stack: list[bytes]
    verdict: str  # "agree", "allowed", "disagree"
    difference: str | None = None  # the deliberate difference's name, when allowed
    medium: str = "ethernet"
    train: Train | None = None  # the example, when it was a fragment train

    @property
    def key(self) -> bytes | tuple[bytes, ...]:
        """What was sent: the frame, or the train's fragments."""
        return self.train.fragments if self.train is not None else self.frame

    def describe(self) -> str:
        what = "packet" if self.medium == "ip" else "frame"
        if self.train is not None:
            train = self.train
            lines = [f"fragment train ({train.kind}, {len(train.fragments)} fragments) of the datagram "
                     f"({len(train.datagram)} bytes): {summarize(train.datagram, 'ip')}"]
            for (start, stop), fragment in zip(train.pieces, train.fragments):
                lines.append(f"  {what} bytes {start}-{stop}: {summarize(fragment, self.medium)}")
                lines.append(f"  {'':8} hex {fragment.hex()}")
        else:
            lines = [f"{what} ({len(self.frame)} bytes): {summarize(self.frame, self.medium)}",
                     f"  hex {self.frame.hex()}"]
        for who, answers in (("linux", self.kernel), ("tapstack", self.stack)):
            if not answers:
                lines.append(f"  {who:8} answers nothing")
            for answer in answers:
                lines.append(f"  {who:8} {summarize(answer, self.medium)}")
                lines.append(f"  {'':8} hex {answer.hex()}")
        return "\n".join(lines)


@dataclass
class Tally:
    outcomes: Counter = field(default_factory=Counter)  # verdict -> count
    allowed: Counter = field(default_factory=Counter)  # difference name -> count
    seen: set = field(default_factory=set)

    trains: int = 0  # of the examples, fragment trains

    def add(self, outcome: Outcome) -> None:
        if outcome.key in self.seen:  # hypothesis replays frames while shrinking
            return
        self.seen.add(outcome.key)
        self.outcomes[outcome.verdict] += 1
        self.trains += outcome.train is not None
        if outcome.difference:
            self.allowed[outcome.difference] += 1


class Disagreement(AssertionError):
    def __init__(self, outcome: Outcome) -> None:
        super().__init__(outcome.describe())
        self.outcome = outcome


class Comparison:
    """Both hosts, side by side."""

    def __init__(self, kernel, stack, medium: str = "ethernet", family: int = 4) -> None:
        self.kernel = kernel
        self.stack = stack
        self.medium = medium
        self.family = family
        self.tally = Tally()

    def compare(self, example: bytes | Train) -> Outcome:
        """Send one example (a frame, or a fragment train) to both hosts; compare the answers."""
        medium = self.medium
        if isinstance(example, Train):
            train: Train | None = example
            kernel = self.kernel.answer_train(example.fragments)
            stack = self.stack.answer_train(example.fragments)
            # The allow-list reads the datagram the train carries, as one frame.
            ethertype = b"\x86\xdd" if example.datagram[0] >> 4 == 6 else b"\x08\x00"
            frame, as_frame = example.datagram, bytes(12) + ethertype + example.datagram
        else:
            train, frame = None, example
            kernel = self.kernel.answer(frame)
            stack = self.stack.answer(frame)
            # The allow-list reads Ethernet frames: give a bare packet the header it would have.
            ethertype = b"\x86\xdd" if frame[:1] and frame[0] >> 4 == 6 else b"\x08\x00"
            as_frame = frame if medium == "ethernet" else bytes(14 - 2) + ethertype + frame
        if sorted(normalize(f, medium) for f in kernel) == sorted(normalize(f, medium) for f in stack):
            outcome = Outcome(frame, kernel, stack, "agree", medium=medium, train=train)
        else:
            allowed = next((d for d in DELIBERATE_DIFFERENCES if medium in d.media and (
                d.covers(as_frame) or (train is not None and d.covers_train is not None and d.covers_train(train)))),
                None)
            outcome = Outcome(frame, kernel, stack, "allowed" if allowed else "disagree",
                              allowed.name if allowed else None, medium, train)
        self.tally.add(outcome)
        return outcome


# ---------------------------------------------------------------------- frames


def probe_frames(host: IPv4Interface = HOST, host_mac: MacAddress = HOST_MAC,
                 peers: dict[IPv4Address, MacAddress] = PEERS, others: bool = True):
    """Frames from ``peers`` to ``host``: valid ones of every kind a host may see (echo
    requests with and without options, other ICMP types, UDP, TCP-sized junk, other protocols,
    ARP requests, replies and probes), and broken ones (a flipped bit, a truncation, a bad
    header checksum). Addressed to the host, its network's broadcast, the limited broadcast,
    all-hosts, and (with ``others``) a neighbour that is not the host."""
    from hypothesis import strategies as st

    peers_known = dict(peers)
    peers = st.sampled_from(sorted(peers_known))
    destinations = [host.ip, host.network.broadcast_address, IPv4Address("255.255.255.255"),
                    IPv4Address("224.0.0.1")]
    neighbour = host.network.network_address + 77 if host.network.prefixlen <= 24 else None
    if others and neighbour is not None and neighbour != host.ip and neighbour not in peers_known:
        destinations.append(neighbour)
    host_destinations = st.sampled_from(destinations)

    @st.composite
    def ipv4_frames(draw) -> bytes:
        source = draw(peers)
        destination = draw(st.one_of(st.just(host.ip), host_destinations))
        kind = draw(st.sampled_from(["echo", "echo", "icmp", "udp", "tcp", "protocol"]))
        if kind == "echo":
            message = IcmpMessage.echo(IcmpType.ECHO_REQUEST, draw(st.integers(0, 0xFFFF)),
                                       draw(st.integers(0, 0xFFFF)), draw(st.binary(max_size=200)))
            protocol, payload = IpProto.ICMP, bytes(message)
        elif kind == "icmp":
            # Mostly the types RFC 792 and its successors define (an error quoting something,
            # a query), with their usual codes; then anything.
            known_types = st.sampled_from([0, 3, 4, 5, 8, 11, 12, 13, 14, 15, 16, 17, 18])
            message = IcmpMessage(draw(known_types | st.integers(0, 255)),
                                  draw(st.sampled_from([0, 0, 1, 3]) | st.integers(0, 255)),
                                  draw(st.binary(min_size=4, max_size=4)), draw(st.binary(max_size=48)))
            protocol, payload = IpProto.ICMP, bytes(message)
        elif kind == "udp":
            protocol, payload = IpProto.UDP, _udp(source, destination, draw(st.integers(1, 0xFFFF)),
                                                   draw(st.integers(1, 0xFFFF)), draw(st.binary(max_size=64)),
                                                   draw(st.booleans()))
        elif kind == "tcp":
            protocol, payload = IpProto.TCP, draw(tcp_probe_segments(source, destination))
        else:
            protocol = draw(st.integers(0, 255).filter(lambda p: p not in (1, 6, 17)))
            payload = draw(st.binary(max_size=32))
        # Source routes through 198.51.100.7 with a hop to go (pointer 4) or none (8): issue 13,
        # where a host answered an unfinished route it should not have delivered.
        routes = [bytes([kind, 7, pointer, 198, 51, 100, 7, 0])
                  for kind in (IpOption.LOOSE_SOURCE_ROUTE, IpOption.STRICT_SOURCE_ROUTE) for pointer in (4, 8)]
        options = draw(st.sampled_from([b"", b"", b"", b"", b"", b"\x01\x01\x01\x00",
                                        bytes([IpOption.RECORD_ROUTE, 11, 4]) + bytes(8) + b"\x00",
                                        bytes([IpOption.TIMESTAMP, 12, 5, 0]) + bytes(8), *routes]))
        packet = Ipv4Packet(source, destination, protocol, payload, ttl=draw(st.integers(1, 255)),
                            identification=draw(st.integers(0, 0xFFFF)),
                            dont_fragment=draw(st.booleans()),
                            type_of_service=draw(st.sampled_from([0, 0, 0, 0x10, 0xB8]) | st.integers(0, 255)),
                            options=options)
        # Mostly to our MAC; a datagram to a broadcast address mostly as a link broadcast.
        link_broadcast = draw(st.booleans()) if destination != host.ip else draw(st.integers(0, 15)) == 0
        return bytes(EthernetFrame(BROADCAST if link_broadcast else host_mac, peers_known[source],
                                   EtherType.IPV4, bytes(packet)))

    @st.composite
    def arp_frames(draw) -> bytes:
        source = draw(peers)
        operation = draw(st.sampled_from([ArpOp.REQUEST, ArpOp.REQUEST, ArpOp.REPLY]))
        sender = draw(st.sampled_from([source, source, IPv4Address("0.0.0.0")]))
        target = draw(st.sampled_from([host.ip, host.ip, source, *destinations[4:]]))
        target_mac = host_mac if operation == ArpOp.REPLY or draw(st.booleans()) else MacAddress(bytes(6))
        packet = ArpPacket(operation, peers_known[source], sender, target_mac, target)
        destination = host_mac if draw(st.booleans()) else BROADCAST
        return bytes(EthernetFrame(destination, peers_known[source], EtherType.ARP, bytes(packet)))

    @st.composite
    def broken(draw, frames) -> bytes:
        frame = bytearray(draw(frames))
        how = draw(st.sampled_from(["none", "none", "none", "flip", "truncate", "ip_checksum"]))
        if how == "flip":
            frame[draw(st.integers(0, len(frame) - 1))] ^= 1 << draw(st.integers(0, 7))
        elif how == "truncate":
            del frame[draw(st.integers(14, len(frame) - 1)):]
        elif how == "ip_checksum" and frame[12:14] == b"\x08\x00":
            frame[24] ^= 0xFF
        return bytes(frame)

    return broken(st.one_of(ipv4_frames(), ipv4_frames(), arp_frames()))


def _udp(source: IPv4Address, destination: IPv4Address, source_port: int, destination_port: int,
         data: bytes, with_checksum: bool) -> bytes:
    # RFC 768: a zero checksum means none was computed; a computed 0 is sent as all ones.
    return UdpDatagram(source_port, destination_port, data).to_bytes(source, destination, summed=with_checksum)


def probe_frames6(medium: str = "ethernet"):
    """IPv6 frames (or, with ``medium="ip"``, bare packets) from the peers to HOST6, drawn with
    the public strategies (``stack.testing.strategies``): echo requests (some with a broken
    checksum, any size up to what a frame holds), UDP to closed ports, extension-header chains
    (options of each action class, routing headers type 0 or other with Segments Left 0 or 1,
    unknown next headers), Neighbor Solicitations for our addresses and others (from a peer or
    from ::, a DAD probe); to our global and link-local addresses, ff02::1, our solicited-node
    group, or a neighbour that is not us; one in four broken (``broken_ipv6``: payload length,
    version, truncation, a checksum). Not fragments: reassembly state and its 60 s timers would
    outlive one example (as for IPv4)."""
    from hypothesis import strategies as st

    from stack.testing import strategies as generate

    if medium == "ip":
        peers = {TUN_PEER6: PEERS6[TUN_PEER6]}
        ours = [HOST6.ip]
    else:
        peers = PEERS6
        ours = [HOST6.ip, link_local_address(bytes(HOST_MAC))]
    stranger = HOST6.network.network_address + 77
    destinations = [*ours, IPv6Address("ff02::1"), solicited_node_multicast(HOST6.ip), stranger]

    @st.composite
    def packets(draw) -> bytes:
        source = draw(st.sampled_from(sorted(peers)))
        destination = draw(st.sampled_from(ours) | st.sampled_from(destinations))
        fields = dict(source=source, destination=destination, source_mac=peers[source],
                      destination_mac=HOST_MAC, medium=medium)
        kinds = [generate.ipv6_echo_requests(**fields, bad_checksum=st.integers(0, 7).map(lambda n: n == 0)),
                 generate.ipv6_udp_datagrams(**fields), generate.ipv6_extension_chains(**fields),
                 tcp_probe_segments(source, destination).map(
                     lambda segment: _in_medium6(segment, source, destination, peers[source], medium))]
        if medium == "ethernet":
            # Solicitations for our addresses, mostly; some for another; some from :: (a DAD probe).
            solicitor = draw(st.sampled_from([source, source, source, IPv6Address("::")]))
            kinds.append(generate.neighbor_solicitations(
                source=solicitor, target=st.sampled_from([*ours, *ours, stranger]), source_mac=peers[source],
                destination_mac=HOST_MAC))
        packet = draw(st.one_of(*kinds))
        if draw(st.integers(0, 3)) == 0:
            _, packet = draw(generate.broken_ipv6(st.just(packet), medium))
        return packet

    return packets()


# ---------------------------------------------------------------------- TCP to closed ports


def tcp_probe_segments(source: IPv4Address | IPv6Address, destination: IPv4Address | IPv6Address):
    """TCP segments (bytes, checksum right for the addresses) to a closed port, drawn with the
    public strategies (``stack.testing.strategies_tcp``): every flag combination, sequence and
    acknowledgment numbers anywhere, options valid, unknown or malformed, data or none; one in
    four broken (checksum, data offset, truncation: ``broken_tcp``)."""
    from hypothesis import strategies as st

    from stack.testing.strategies_tcp import broken_tcp, tcp_segments

    family = 6 if isinstance(source, IPv6Address) else 4
    packets = tcp_segments(source=source, destination=destination, family=family, medium="ip")
    header = 20 if family == 4 else 40
    either = st.one_of(packets, packets, packets, broken_tcp(packets, "ip").map(lambda broken: broken[1]))
    # The segment alone (it ends where the IP packet says: truncation fixed the length up).
    return either.map(lambda packet: packet[header:_packet_end(packet)])


def _packet_end(packet: bytes) -> int:
    if packet[0] >> 4 == 4:
        return int.from_bytes(packet[2:4], "big")
    return 40 + int.from_bytes(packet[4:6], "big")


def _in_medium6(segment: bytes, source: IPv6Address, destination: IPv6Address, source_mac: MacAddress,
                medium: str) -> bytes:
    packet = bytes(Ipv6Packet(source, destination, NextHeader.TCP, segment))
    if medium == "ip":
        return packet
    mac = MacAddress(ipv6_multicast_mac(destination.packed)) if destination.is_multicast else HOST_MAC
    return bytes(EthernetFrame(mac, source_mac, EtherType.IPV6, packet))


def tcp_probe_frames(medium: str = "ethernet", family: int = 4):
    """``tapstack diff --tcp``: only TCP segments to closed ports (``tcp_probe_segments``) from
    the peers, to the host's addresses and, over TAP, to broadcast and multicast addresses (RFC
    1122 4.2.3.10: never answered), in frames or bare packets."""
    from hypothesis import strategies as st

    if family == 6:
        peers = {TUN_PEER6: PEERS6[TUN_PEER6]} if medium == "ip" else PEERS6
        ours = [HOST6.ip] if medium == "ip" else [HOST6.ip, link_local_address(bytes(HOST_MAC))]
        groups = [IPv6Address("ff02::1"), solicited_node_multicast(HOST6.ip)]
    else:
        peers = {TUN_PEER: PEERS[TUN_PEER]} if medium == "ip" else PEERS
        ours = [HOST.ip]
        groups = [HOST.network.broadcast_address, IPv4Address("255.255.255.255"), IPv4Address("224.0.0.1")]

    @st.composite
    def frames(draw) -> bytes:
        source = draw(st.sampled_from(sorted(peers)))
        destination = draw(st.sampled_from(ours) | st.sampled_from([*ours, *groups]))
        segment = draw(tcp_probe_segments(source, destination))
        if family == 6:
            return _in_medium6(segment, source, destination, peers[source], medium)
        packet = Ipv4Packet(source, destination, IpProto.TCP, segment, ttl=draw(st.integers(1, 255)),
                            identification=draw(st.integers(0, 0xFFFF)), dont_fragment=draw(st.booleans()),
                            type_of_service=draw(st.sampled_from([0, 0x10, 0xB9]) | st.integers(0, 255)))
        if medium == "ip":
            return bytes(packet)
        if destination.is_multicast:
            mac = MacAddress(bytes([1, 0, 0x5E, destination.packed[1] & 0x7F]) + destination.packed[2:])
        else:
            mac = BROADCAST if destination != HOST.ip else HOST_MAC
        return bytes(EthernetFrame(mac, peers[source], EtherType.IPV4, bytes(packet)))

    return frames()


# ---------------------------------------------------------------------- running


def tun_probe_frames():
    """``probe_frames`` for a TUN device: the IPv4 packets inside its frames, without ARP."""
    return probe_frames(peers={TUN_PEER: PEERS[TUN_PEER]}).filter(
        lambda frame: frame[12:14] == b"\x08\x00").map(lambda frame: frame[14:])


def _frames_or_trains(frames, trains):
    """A frame, or one time in ``TRAIN_SHARE`` a fragment train (shrinks to a frame)."""
    from hypothesis import strategies as st

    return st.integers(1, TRAIN_SHARE).flatmap(lambda draw: trains if draw == TRAIN_SHARE else frames)


def run_examples(comparison: Comparison, examples: int, seed: int | None,
                 progress: Callable[[str], None] = lambda line: None, frames=None,
                 trains: bool = True) -> Outcome | None:
    """Compare ``examples`` generated frames (from ``frames``, a strategy, when given: e.g.
    ``tcp_probe_frames``; else the family's probes and, unless not ``trains``, fragment trains);
    the minimal disagreement, or None."""
    from hypothesis import HealthCheck, given, settings
    from hypothesis import seed as with_seed
    from stack.tools.diff_trains import fragment_trains, fragment_trains6

    if frames is not None:
        pass  # (e.g. diff --tcp: TCP to closed ports only)
    elif comparison.family == 6:
        frames = probe_frames6(comparison.medium)
        if trains:
            frames = _frames_or_trains(frames, fragment_trains6(comparison.medium))
    else:
        frames = tun_probe_frames() if comparison.medium == "ip" else probe_frames()
        if trains:
            # One example in TRAIN_SHARE a fragment train (shrinking prefers a single frame).
            frames = _frames_or_trains(frames, fragment_trains(comparison.medium))

    @settings(max_examples=examples, database=None, deadline=None, derandomize=seed is None,
              suppress_health_check=list(HealthCheck), report_multiple_bugs=False)
    @given(frames)
    def check(example: bytes | Train) -> None:
        outcome = comparison.compare(example)
        done = sum(comparison.tally.outcomes.values())
        if done % 100 == 0 and outcome.key in comparison.tally.seen:
            progress(f"{done} examples compared")
        if outcome.verdict == "disagree":
            raise Disagreement(outcome)

    if seed is not None:
        check = with_seed(seed)(check)
    try:
        check()
    except Disagreement as disagreement:
        return disagreement.outcome
    return None


def summary(tally: Tally) -> str:
    total = sum(tally.outcomes.values())
    allowed = ", ".join(f"{name} {count}" for name, count in sorted(tally.allowed.items()))
    return (f"{total} examples ({tally.trains} of them fragment trains): {tally.outcomes['agree']} agree "
            f"with Linux, {tally.outcomes['allowed']} differ deliberately ({allowed or 'none'}), "
            f"{tally.outcomes['disagree']} disagree")
