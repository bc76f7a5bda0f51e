"""Hypothesis strategies for IPv6: valid packets, fragment trains with a model of reassembly,
Neighbor Discovery and MLD messages, and the IPv6 breakages of ``broken``.

Read first: RFC 8200 (the header, extension headers and their option action bits, 4.5
fragments); RFC 5722 (overlapping fragments), RFC 6946 (atomic fragments), RFC 7112 (the
header chain in the first fragment); RFC 4443 (ICMPv6, 2.4 the rules on errors); RFC 4861
(Neighbor Discovery, 4 the messages, 4.6 options); RFC 2710 and RFC 3810 (MLDv1, MLDv2).

The IPv4 strategies are ``stack.testing.strategies``, which re-exports every name of this
module (so ``from stack.strategies import ipv6_fragment_trains`` works); this one builds on
its primitives. Wire bytes come in a ``medium`` as there: an Ethernet frame (EtherType 0x86DD;
to a multicast destination, its 33:33 MAC, RFC 2464 7) or a bare IPv6 packet, as on a TUN
device without packet information. Addresses default to 2001:db8::/32 (RFC 3849) and
fe80::/64, MACs to 02:xx:xx:xx:xx:xx.
"""

from __future__ import annotations

from dataclasses import dataclass
from ipaddress import IPv6Address
from typing import Any, NamedTuple

from hypothesis import assume
from hypothesis import strategies as st
from hypothesis.strategies import SearchStrategy

from stack.checksum import internet_checksum
from stack.errors import ParseError
from stack.l2.ethernet import EtherType, MacAddress
from stack.l2.ipv6_multicast import ipv6_multicast_mac
from stack.l3.icmpv6 import (Icmpv6Message, Icmpv6Type, MldQuery, MldReport, MldV1Message, MulticastAddressRecord,
                             NdOption, NdOptionType, NeighborAdvertisement, NeighborSolicitation, Redirect,
                             RouterAdvertisement, RouterSolicitation)
from stack.l3.icmpv6 import decode as decode_icmpv6
from stack.l3.icmpv6 import is_error as is_icmpv6_error
from stack.l3.ipv6 import (ALL_MLDV2_ROUTERS, ALL_NODES, ALL_ROUTERS, FRAGMENT_HEADER_LENGTH, HEADER_LENGTH,
                           MAXIMUM_PAYLOAD_LENGTH, UPPER_LAYER_HEADER_LENGTHS, FragmentHeader, Ipv6Option, Ipv6Packet, NextHeader,
                           OptionsHeader, ParameterProblemCode, RoutingHeader, identifies_one_node,
                           solicited_node_multicast, walk_chain)
from stack.l3.ipv6 import pseudo_header as ipv6_pseudo_header
from stack.testing.strategies import (ETHERNET_HEADER, ETHERNET_MTU, TYPICAL_PAYLOAD, UDP_HEADER, Broken,
                                      MacParameter, Medium, _check_medium, _strategy, _wrong_checksum,
                                      in_ethernet, mac_addresses, payloads)

__all__ = [
    "BREAKAGES6", "IPV6_BREAKAGES", "UNKNOWN_IPV6_OPTIONS", "UNKNOWN_NEXT_HEADERS", "Icmpv6Error",
    "Ipv6FragmentTrain", "broken_ipv6", "ipv6_addresses", "ipv6_echo_requests", "ipv6_extension_chains",
    "ipv6_fragment_trains", "ipv6_packet_values", "ipv6_packets", "ipv6_udp_datagrams", "mld_messages",
    "mld_queries", "mld_reports", "nd_messages", "neighbor_advertisements", "neighbor_solicitations",
    "icmpv6_message_values", "icmpv6_body_values", "reassembly6_model", "redirects", "router_advertisements",
    "router_solicitations",
]

ICMPV6_HEADER = 8

#: The unknown option types ``ipv6_extension_chains`` uses, one per action class (RFC 8200 4.2:
#: the two high-order bits; the third says whether the data may change en route). IANA
#: "Destination Options and Hop-by-Hop Options" leaves these unassigned.
UNKNOWN_IPV6_OPTIONS = (0x0B, 0x2B, 0x4B, 0x6B, 0x8B, 0xAB, 0xCB, 0xEB)
#: Next Header values no host implements (IANA: 253 and 254 are for experiments, RFC 3692), and
#: 59, No Next Header (RFC 8200 4.7).
UNKNOWN_NEXT_HEADERS = (253, 254, 143, 200)

#: What ``broken_ipv6`` breaks, each exactly one thing.
IPV6_BREAKAGES = ("payload_length_long", "payload_length_short", "version", "truncate", "checksum")


def ipv6_addresses(*, link_local: bool | None = False) -> SearchStrategy[IPv6Address]:
    """Addresses in 2001:db8::/32 (RFC 3849, documentation); with ``link_local=True`` in
    fe80::/64, with ``None`` either."""
    # Shrinks towards the network's first host (2001:db8::1, fe80::1), never the subnet-router
    # anycast address of all-zero host bits (RFC 4291 2.6.1).
    documentation = st.integers(1, (1 << 96) - 1).map(lambda low: IPv6Address((0x20010DB8 << 96) | low))
    local = st.integers(1, (1 << 64) - 1).map(lambda low: IPv6Address((0xFE80 << 112) | low))
    return documentation if link_local is False else local if link_local else st.one_of(documentation, local)


def _ipv6_in_medium(packet: bytes, medium: str, destination: IPv6Address, destination_mac: Any,
                    source_mac: Any) -> bytes:
    if medium == "ip":
        return packet
    if destination.is_multicast:
        destination_mac = ipv6_multicast_mac(destination.packed)
    return in_ethernet(packet, destination_mac, source_mac, EtherType.IPV6)


@st.composite
def _ipv6_common(draw: st.DrawFn, source: Any, destination: Any, source_mac: Any, destination_mac: Any,
                 hop_limit: Any) -> tuple[IPv6Address, IPv6Address, MacAddress, MacAddress, int, int, int]:
    return (draw(_strategy(source, ipv6_addresses(), IPv6Address)),
            draw(_strategy(destination, ipv6_addresses(), IPv6Address)),
            draw(_strategy(source_mac, mac_addresses(), MacAddress)),
            draw(_strategy(destination_mac, mac_addresses(), MacAddress)),
            draw(_strategy(hop_limit, st.sampled_from([64, 255, 1]) | st.integers(0, 255))),
            draw(st.sampled_from([0, 0, 0x10, 0xB8]) | st.integers(0, 255)),  # traffic class
            draw(st.sampled_from([0, 0, 0x12345]) | st.integers(0, 0xFFFFF)))  # flow label


def _ipv6_packet(source: IPv6Address, destination: IPv6Address, next_header: int, payload: bytes,
                 hop_limit: int, traffic_class: int = 0, flow_label: int = 0) -> bytes:
    return bytes(Ipv6Packet(source, destination, next_header, payload, hop_limit, traffic_class, flow_label))


def _icmpv6_echo(source: IPv6Address, destination: IPv6Address, identifier: int, sequence: int,
                 data: bytes, bad_checksum: bool = False) -> bytes:
    message = bytearray(Icmpv6Message.echo(Icmpv6Type.ECHO_REQUEST, identifier, sequence, data).to_bytes(
        source, destination))
    if bad_checksum:
        message[2] ^= 0x01
    return bytes(message)


def _udp6(source: IPv6Address, destination: IPv6Address, ports: tuple[int, int], data: bytes) -> bytes:
    """RFC 768 over IPv6: the checksum over the IPv6 pseudo-header is mandatory (RFC 8200 8.1)."""
    size = UDP_HEADER + len(data)
    header = ports[0].to_bytes(2, "big") + ports[1].to_bytes(2, "big") + size.to_bytes(2, "big")
    pseudo = ipv6_pseudo_header(source, destination, size, NextHeader.UDP)
    summed = internet_checksum(pseudo + header + b"\0\0" + data) or 0xFFFF
    return header + summed.to_bytes(2, "big") + data


_LARGEST_IPV6_DATA = ETHERNET_MTU - 40 - 8 - 64  # room for a header chain in one Ethernet frame


def ipv6_echo_requests(*, source: Any = None, destination: Any = None, source_mac: MacParameter = None,
                       destination_mac: MacParameter = None, hop_limit: Any = None,
                       max_size: int = _LARGEST_IPV6_DATA, bad_checksum: Any = False,
                       medium: Medium = "ethernet", min_size: int = 0) -> SearchStrategy[bytes]:
    """ICMPv6 echo requests (RFC 4443 4.1) with ``min_size`` to ``max_size`` bytes of data, the
    checksum right (``bad_checksum=True`` or a strategy of booleans: one bit of it flipped)."""
    _check_medium(medium)
    if not 0 <= min_size <= max_size <= MAXIMUM_PAYLOAD_LENGTH - ICMPV6_HEADER:
        raise ValueError(f"echo data sizes {min_size}..{max_size} do not fit an IPv6 packet")

    @st.composite
    def packets(draw: st.DrawFn) -> bytes:
        src, dst, smac, dmac, hops, tclass, flow = draw(_ipv6_common(source, destination, source_mac,
                                                                     destination_mac, hop_limit))
        message = _icmpv6_echo(src, dst, draw(st.integers(0, 0xFFFF)), draw(st.integers(0, 0xFFFF)),
                               draw(payloads(max_size, min_size=min_size)),
                               draw(_strategy(bad_checksum, st.booleans())))
        return _ipv6_in_medium(_ipv6_packet(src, dst, NextHeader.ICMPV6, message, hops, tclass, flow),
                               medium, dst, dmac, smac)

    return packets()


def ipv6_udp_datagrams(*, source: Any = None, destination: Any = None, source_mac: MacParameter = None,
                       destination_mac: MacParameter = None, destination_port: Any = None,
                       medium: Medium = "ethernet") -> SearchStrategy[bytes]:
    """UDP over IPv6 (RFC 768, RFC 8200 8.1): the checksum computed, or (one time in eight) 0,
    which an IPv6 receiver discards."""
    _check_medium(medium)

    @st.composite
    def packets(draw: st.DrawFn) -> bytes:
        src, dst, smac, dmac, hops, tclass, flow = draw(_ipv6_common(source, destination, source_mac,
                                                                     destination_mac, None))
        ports = (draw(st.integers(1, 0xFFFF)), draw(_strategy(destination_port, st.integers(1, 0xFFFF))))
        datagram = bytearray(_udp6(src, dst, ports, draw(payloads(TYPICAL_PAYLOAD))))
        if draw(st.integers(0, 7)) == 0:
            datagram[6:8] = b"\0\0"
        return _ipv6_in_medium(_ipv6_packet(src, dst, NextHeader.UDP, bytes(datagram), hops, tclass, flow),
                               medium, dst, dmac, smac)

    return packets()


@st.composite
def _options_header(draw: st.DrawFn, next_header: int) -> bytes:
    """A Hop-by-Hop or Destination Options header: padding, and sometimes an unknown option of
    one of the four action classes (RFC 8200 4.2)."""
    options = []
    for _ in range(draw(st.integers(0, 2))):
        kind = draw(st.sampled_from(["pad1", "padn", "unknown", "unknown"]))
        if kind == "pad1":
            options.append(Ipv6Option(0))
        elif kind == "padn":
            options.append(Ipv6Option(1, bytes(draw(st.integers(0, 5)))))
        else:
            options.append(Ipv6Option(draw(st.sampled_from(UNKNOWN_IPV6_OPTIONS)),
                                      draw(st.binary(max_size=6))))
    return bytes(OptionsHeader.padded(next_header, options))


def ipv6_extension_chains(*, source: Any = None, destination: Any = None, source_mac: MacParameter = None,
                          destination_mac: MacParameter = None, medium: Medium = "ethernet") -> SearchStrategy[bytes]:
    """IPv6 packets with a chain of extension headers (RFC 8200 4): up to three of Hop-by-Hop
    (first only, as 4.1 asks; sometimes elsewhere), Destination Options (padding and unknown
    options of each action class) and Routing (type 0 or another, Segments Left 0 or 1), then an
    echo request, UDP, No Next Header (59) or a Next Header no host knows."""
    _check_medium(medium)

    @st.composite
    def packets(draw: st.DrawFn) -> bytes:
        src, dst, smac, dmac, hops, tclass, flow = draw(_ipv6_common(source, destination, source_mac,
                                                                     destination_mac, None))
        kinds = draw(st.lists(st.sampled_from(["hop", "dest", "routing"]), min_size=1, max_size=3))
        if "hop" in kinds[1:] and draw(st.integers(0, 3)):
            kinds = [kind for kind in kinds if kind != "hop"] or ["dest"]
        upper = draw(st.sampled_from(["echo", "udp", "none", "unknown"]))
        if upper == "echo":
            last, data = NextHeader.ICMPV6, _icmpv6_echo(src, dst, draw(st.integers(0, 0xFFFF)), 1,
                                                         draw(st.binary(max_size=32)))
        elif upper == "udp":
            last, data = NextHeader.UDP, _udp6(src, dst, (draw(st.integers(1, 0xFFFF)), draw(st.integers(1, 0xFFFF))),
                                               draw(st.binary(max_size=16)))
        elif upper == "none":
            last, data = NextHeader.NO_NEXT_HEADER, draw(st.binary(max_size=8))
        else:
            last, data = draw(st.sampled_from(UNKNOWN_NEXT_HEADERS)), draw(st.binary(max_size=16))
        numbers = {"hop": NextHeader.HOP_BY_HOP, "dest": NextHeader.DESTINATION_OPTIONS,
                   "routing": NextHeader.ROUTING}
        chain = b""
        following = last
        for kind in reversed(kinds):
            if kind == "routing":
                header = bytes(RoutingHeader(following, draw(st.sampled_from([0, 0, 3, 4, 253])),
                                             draw(st.sampled_from([0, 1])), bytes(4)))
                if header[2] == 0 and draw(st.booleans()):  # RH0 with one address (RFC 2460 4.4)
                    header = bytes(RoutingHeader(following, 0, header[3], bytes(4) + bytes(
                        IPv6Address("2001:db8::99").packed)))
            else:
                header = draw(_options_header(following))
            chain = header + chain
            following = numbers[kind]
        packet = _ipv6_packet(src, dst, following, chain + data, hops, tclass, flow)
        return _ipv6_in_medium(packet, medium, dst, dmac, smac)

    return packets()


def neighbor_solicitations(*, source: Any = None, target: Any = None, source_mac: MacParameter = None,
                           destination_mac: MacParameter = None, multicast: Any = None,
                           medium: Medium = "ethernet") -> SearchStrategy[bytes]:
    """Neighbor Solicitations (RFC 4861 4.3, 7.2.3): hop limit 255, to the target's
    solicited-node group (``multicast``) or the target itself, with or without the source
    link-layer address option (the frame's source MAC)."""
    _check_medium(medium)

    @st.composite
    def packets(draw: st.DrawFn) -> bytes:
        src = draw(_strategy(source, ipv6_addresses(link_local=None), IPv6Address))
        wanted = draw(_strategy(target, ipv6_addresses(), IPv6Address))
        smac = draw(_strategy(source_mac, mac_addresses(), MacAddress))
        to_group = draw(_strategy(multicast, st.booleans()))
        dst = solicited_node_multicast(wanted) if to_group else wanted
        options = (NdOption.link_layer_address(NdOptionType.SOURCE_LINK_LAYER_ADDRESS, bytes(smac)),) \
            if draw(st.booleans()) else ()
        message = NeighborSolicitation(wanted, options).message().to_bytes(src, dst)
        packet = _ipv6_packet(src, dst, NextHeader.ICMPV6, message, 255)
        return _ipv6_in_medium(packet, medium, dst, draw(_strategy(destination_mac, mac_addresses(), MacAddress)),
                               smac)

    return packets()


def ipv6_packets(*, source: Any = None, destination: Any = None, source_mac: MacParameter = None,
                 destination_mac: MacParameter = None, medium: Medium = "ethernet") -> SearchStrategy[bytes]:
    """Valid IPv6 packets of every kind above (no fragments), as wire bytes: echo requests,
    UDP, extension-header chains and (over Ethernet) Neighbor Solicitations for ``destination``."""
    common = dict(source=source, destination=destination, source_mac=source_mac,
                  destination_mac=destination_mac, medium=medium)
    kinds = [ipv6_echo_requests(**common), ipv6_udp_datagrams(**common), ipv6_extension_chains(**common)]
    if medium == "ethernet":
        kinds.append(neighbor_solicitations(source=source, target=destination, source_mac=source_mac,
                                            destination_mac=destination_mac))
    return st.one_of(*kinds)


def ipv6_packet_values() -> SearchStrategy[Ipv6Packet]:
    """``Ipv6Packet`` values (what ``st.from_type(Ipv6Packet)`` draws): ``ipv6_packets`` parsed."""
    return ipv6_packets(medium="ip").map(Ipv6Packet.parse)


def broken_ipv6(packets: SearchStrategy[bytes], medium: Medium = "ethernet",
                kinds: tuple[str, ...] = IPV6_BREAKAGES) -> SearchStrategy[tuple[str, bytes]]:
    """(what was broken, the packet) with exactly one thing broken (``IPV6_BREAKAGES``): the
    payload length longer than the packet or shorter (cutting the upper layer), the version, the
    packet truncated after its fixed header, or (ICMPv6 and UDP right after the fixed header) a
    checksum bit. A kind that does not apply to the drawn packet leaves it whole ("none")."""
    _check_medium(medium)
    unknown = set(kinds) - set(IPV6_BREAKAGES)
    if unknown:
        raise ValueError(f"unknown IPv6 breakages {sorted(unknown)}; known: {IPV6_BREAKAGES}")
    start = 0 if medium == "ip" else ETHERNET_HEADER

    @st.composite
    def broken_packets(draw: st.DrawFn) -> tuple[str, bytes]:
        data = bytearray(draw(packets))
        if len(data) < start + 40 or data[start] >> 4 != 6:
            return "none", bytes(data)
        how = draw(st.sampled_from(kinds))
        declared = int.from_bytes(data[start + 4:start + 6], "big")
        ip_end = start + 40 + declared
        if how == "payload_length_long":
            data[start + 4:start + 6] = (declared + draw(st.integers(1, 64))).to_bytes(2, "big")
            del data[ip_end:]  # no Ethernet padding to hide the lie
        elif how == "payload_length_short" and declared > 0:
            data[start + 4:start + 6] = draw(st.integers(0, declared - 1)).to_bytes(2, "big")
        elif how == "version":
            data[start] = draw(st.sampled_from([0, 4, 7, 15])) << 4 | data[start] & 0x0F
        elif how == "truncate" and ip_end > start + 40:
            del data[draw(st.integers(start, ip_end - 1)):]
        elif how == "checksum" and data[start + 6] in (NextHeader.ICMPV6, NextHeader.UDP) and declared >= 8:
            offset = start + 40 + (2 if data[start + 6] == NextHeader.ICMPV6 else 6)
            data[offset + draw(st.integers(0, 1))] ^= 1 << draw(st.integers(0, 7))
        else:
            how = "none"
        return how, bytes(data)

    return broken_packets()


# ---------------------------------------------------------------------------- Neighbor Discovery

def _icmpv6_packet(source: IPv6Address, destination: IPv6Address, message: Icmpv6Message, hop_limit: int,
                   hop_by_hop: bytes = b"") -> bytes:
    """An IPv6 packet carrying ``message`` (checksummed), behind a Hop-by-Hop header if given."""
    data = message.to_bytes(source, destination)
    if hop_by_hop:
        return _ipv6_packet(source, destination, NextHeader.HOP_BY_HOP, hop_by_hop + data, hop_limit)
    return _ipv6_packet(source, destination, NextHeader.ICMPV6, data, hop_limit)


@st.composite
def _nd_options(draw: st.DrawFn, link_layer: int | None, mac: MacAddress, extra: bool) -> tuple[NdOption, ...]:
    """Valid ND options (RFC 4861 4.6): the link-layer address option ``link_layer`` (1 or 2)
    with ``mac`` or not; with ``extra``, an MTU or Prefix Information option; sometimes an option
    of a type nobody knows, which a receiver MUST ignore (4.6)."""
    options: list[NdOption] = []
    if link_layer is not None and draw(st.booleans()):
        options.append(NdOption.link_layer_address(link_layer, bytes(mac)))
    if extra and draw(st.booleans()):
        options.append(NdOption.mtu_option(draw(st.sampled_from([1500, 1280, 9000]))))
    if extra and draw(st.booleans()):
        prefix = IPv6Address(draw(st.integers(0, 0xFFFF)) << 64 | 0x20010DB8 << 96)
        options.append(NdOption.prefix_information(prefix, 64, valid_lifetime=draw(st.integers(0, 0xFFFFFFFF)),
                                                   preferred_lifetime=draw(st.integers(0, 0xFFFFFFFF))))
    if draw(st.integers(0, 3)) == 0:
        options.append(NdOption(draw(st.sampled_from([200, 253, 254])), draw(st.sampled_from([bytes(6), bytes(14)]))))
    return tuple(draw(st.permutations(options)))


def _nd_frame(draw: st.DrawFn, source: IPv6Address, destination: IPv6Address, message: Icmpv6Message,
              source_mac: MacAddress, destination_mac: Any, medium: str) -> bytes:
    # RFC 4861 6.1, 7.1, 8.1: every ND message is sent with hop limit 255.
    packet = _icmpv6_packet(source, destination, message, 255)
    return _ipv6_in_medium(packet, medium, destination, draw(_strategy(destination_mac, mac_addresses(), MacAddress)),
                           source_mac)


def router_solicitations(*, source: Any = None, destination: Any = None, source_mac: MacParameter = None,
                         destination_mac: MacParameter = None, medium: Medium = "ethernet") -> SearchStrategy[bytes]:
    """Router Solicitations (RFC 4861 4.1, 6.1.1) to all-routers (ff02::2) unless
    ``destination`` says: from a link-local address with or without the source link-layer
    option, or from :: without it."""
    _check_medium(medium)

    @st.composite
    def packets(draw: st.DrawFn) -> bytes:
        smac = draw(_strategy(source_mac, mac_addresses(), MacAddress))
        src = draw(_strategy(source, st.one_of(ipv6_addresses(link_local=True), st.just(IPv6Address("::"))),
                             IPv6Address))
        dst = draw(_strategy(destination, st.just(ALL_ROUTERS), IPv6Address))
        link_layer = None if src == IPv6Address("::") else NdOptionType.SOURCE_LINK_LAYER_ADDRESS
        message = RouterSolicitation(draw(_nd_options(link_layer, smac, False))).message()
        return _nd_frame(draw, src, dst, message, smac, destination_mac, medium)

    return packets()


def router_advertisements(*, source: Any = None, destination: Any = None, source_mac: MacParameter = None,
                          destination_mac: MacParameter = None, medium: Medium = "ethernet") -> SearchStrategy[bytes]:
    """Router Advertisements (RFC 4861 4.2, 6.1.2) from a link-local address to all-nodes
    (ff02::1) unless ``destination`` says, with any hop limit, flags, lifetimes and timers, and
    valid options (source link-layer address, MTU, Prefix Information, unknown ones)."""
    _check_medium(medium)

    @st.composite
    def packets(draw: st.DrawFn) -> bytes:
        smac = draw(_strategy(source_mac, mac_addresses(), MacAddress))
        src = draw(_strategy(source, ipv6_addresses(link_local=True), IPv6Address))
        dst = draw(_strategy(destination, st.just(ALL_NODES), IPv6Address))
        advertisement = RouterAdvertisement(
            draw(st.sampled_from([64, 0, 255])), draw(st.booleans()), draw(st.booleans()),
            draw(st.sampled_from([1800, 0, 0xFFFF])), draw(st.integers(0, 3_600_000)), draw(st.integers(0, 0xFFFFFFFF)),
            draw(_nd_options(NdOptionType.SOURCE_LINK_LAYER_ADDRESS, smac, True)))
        return _nd_frame(draw, src, dst, advertisement.message(), smac, destination_mac, medium)

    return packets()


def neighbor_advertisements(*, source: Any = None, destination: Any = None, target: Any = None,
                            source_mac: MacParameter = None, destination_mac: MacParameter = None,
                            medium: Medium = "ethernet") -> SearchStrategy[bytes]:
    """Neighbor Advertisements (RFC 4861 4.4, 7.1.2) for ``target`` (by default the source
    itself): solicited (to ``destination``) or unsolicited (to all-nodes, Solicited clear, as
    7.1.2 requires), any Router and Override flags, with or without the target link-layer option."""
    _check_medium(medium)

    @st.composite
    def packets(draw: st.DrawFn) -> bytes:
        smac = draw(_strategy(source_mac, mac_addresses(), MacAddress))
        src = draw(_strategy(source, ipv6_addresses(link_local=None), IPv6Address))
        wanted = draw(_strategy(target, st.just(src), IPv6Address))
        solicited = draw(st.booleans())
        dst = draw(_strategy(destination, ipv6_addresses(), IPv6Address)) if solicited else ALL_NODES
        advertisement = NeighborAdvertisement(wanted, draw(st.booleans()), solicited, draw(st.booleans()),
                                              draw(_nd_options(NdOptionType.TARGET_LINK_LAYER_ADDRESS, smac, False)))
        return _nd_frame(draw, src, dst, advertisement.message(), smac, destination_mac, medium)

    return packets()


def redirects(*, source: Any = None, destination: Any = None, source_mac: MacParameter = None,
              destination_mac: MacParameter = None, medium: Medium = "ethernet") -> SearchStrategy[bytes]:
    """Redirects (RFC 4861 4.5, 8.1) from a link-local router address to ``destination``: the
    target is link-local or the redirected destination itself, which is unicast; options: the
    target link-layer address and a Redirected Header quoting a packet of ours, or neither."""
    _check_medium(medium)

    @st.composite
    def packets(draw: st.DrawFn) -> bytes:
        smac = draw(_strategy(source_mac, mac_addresses(), MacAddress))
        src = draw(_strategy(source, ipv6_addresses(link_local=True), IPv6Address))
        dst = draw(_strategy(destination, ipv6_addresses(), IPv6Address))
        redirected = draw(ipv6_addresses())
        to = draw(st.one_of(st.just(redirected), ipv6_addresses(link_local=True)))
        options = []
        if draw(st.booleans()):
            options.append(NdOption.link_layer_address(NdOptionType.TARGET_LINK_LAYER_ADDRESS,
                                                       bytes(draw(mac_addresses()))))
        if draw(st.booleans()):
            quoted = _ipv6_packet(dst, redirected, NextHeader.NO_NEXT_HEADER, draw(st.binary(max_size=24)), 64)
            options.append(NdOption.redirected_header(quoted))
        message = Redirect(to, redirected, tuple(options)).message()
        return _nd_frame(draw, src, dst, message, smac, destination_mac, medium)

    return packets()


def nd_messages(*, source: Any = None, destination: Any = None, source_mac: MacParameter = None,
                destination_mac: MacParameter = None, medium: Medium = "ethernet") -> SearchStrategy[bytes]:
    """Any of the five Neighbor Discovery messages (RFC 4861 4), valid, with valid options.
    ``destination`` is the solicitation's target and the others' destination (a Router
    Solicitation keeps all-routers, an unsolicited advertisement all-nodes); ``source`` is the
    sender's address where the message allows it (a router's is link-local)."""
    common = dict(source_mac=source_mac, destination_mac=destination_mac, medium=medium)
    return st.one_of(
        neighbor_solicitations(source=source, target=destination, **common),
        neighbor_advertisements(source=source, destination=destination, **common),
        router_solicitations(**common),
        router_advertisements(**common),
        redirects(destination=destination, **common),
    )


# ---------------------------------------------------------------------------- MLD

#: RFC 2711, RFC 3810 5: MLD messages carry a Router Alert option (value 0) in a Hop-by-Hop header.
_ROUTER_ALERT = bytes(OptionsHeader.padded(NextHeader.ICMPV6, [Ipv6Option(5, bytes(2))]))


def _groups() -> SearchStrategy[IPv6Address]:
    return st.one_of(ipv6_addresses().map(solicited_node_multicast),
                     st.integers(1, 0xFFFF).map(lambda low: IPv6Address(0xFF0E << 112 | 0xDB8 << 96 | low)))


def mld_queries(*, version: Any = None, group: Any = None, source: Any = None, source_mac: MacParameter = None,
                medium: Medium = "ethernet") -> SearchStrategy[bytes]:
    """Multicast Listener Queries, MLDv1 (RFC 2710 3, 24 bytes) or MLDv2 (RFC 3810 5.1): from a
    link-local address, hop limit 1, a Router Alert option (5.1.14); General (to ff02::1) or
    about ``group`` (to that group, 5.1.15; by default a solicited-node group of a documentation
    address or a ff0e:db8:: group); MLDv2 ones with up to two sources, any S flag, QRV and QQIC."""
    _check_medium(medium)

    @st.composite
    def packets(draw: st.DrawFn) -> bytes:
        smac = draw(_strategy(source_mac, mac_addresses(), MacAddress))
        src = draw(_strategy(source, ipv6_addresses(link_local=True), IPv6Address))
        which = draw(_strategy(version, st.sampled_from([2, 1])))
        general = group is None and draw(st.booleans())
        about = IPv6Address("::") if general else draw(_strategy(group, _groups(), IPv6Address))
        code = draw(st.sampled_from([10000, 0, 1000]) | st.integers(0, 0xFFFF))
        if which == 1:
            query = MldQuery(code, about, version=1)
        else:
            query = MldQuery(code, about, tuple(draw(st.lists(ipv6_addresses(), max_size=2))),
                             draw(st.booleans()), draw(st.integers(0, 7)), draw(st.integers(0, 255)))
        dst = ALL_NODES if about == IPv6Address("::") else about
        packet = _icmpv6_packet(src, dst, query.message(), 1, _ROUTER_ALERT)
        return _ipv6_in_medium(packet, medium, dst, None, smac)

    return packets()


def mld_reports(*, version: Any = None, group: Any = None, source: Any = None, source_mac: MacParameter = None,
                medium: Medium = "ethernet") -> SearchStrategy[bytes]:
    """Multicast Listener Reports: MLDv1 Reports and Dones (RFC 2710 3: to the group, a Done to
    all-routers) or MLDv2 Reports (RFC 3810 5.2, to ff02::16) with up to three records of any
    type, each with up to two sources; from a link-local address (or :: for MLDv2, 5.2.13), hop
    limit 1, Router Alert."""
    _check_medium(medium)

    @st.composite
    def packets(draw: st.DrawFn) -> bytes:
        smac = draw(_strategy(source_mac, mac_addresses(), MacAddress))
        which = draw(_strategy(version, st.sampled_from([2, 1])))
        about = draw(_strategy(group, _groups(), IPv6Address))
        if which == 1:
            src = draw(_strategy(source, ipv6_addresses(link_local=True), IPv6Address))
            kind = draw(st.sampled_from([Icmpv6Type.MLDV1_REPORT, Icmpv6Type.MLDV1_DONE]))
            message = MldV1Message(kind, about).message()
            dst = about if kind == Icmpv6Type.MLDV1_REPORT else ALL_ROUTERS
        else:
            src = draw(_strategy(source, st.one_of(ipv6_addresses(link_local=True), st.just(IPv6Address("::"))),
                                 IPv6Address))
            records = [MulticastAddressRecord(draw(st.integers(1, 6)), about if number == 0 else draw(_groups()),
                                              tuple(draw(st.lists(ipv6_addresses(), max_size=2))),
                                              bytes(4 * draw(st.integers(0, 1))))
                       for number in range(draw(st.integers(1, 3)))]
            message = MldReport(tuple(records)).message()
            dst = ALL_MLDV2_ROUTERS
        packet = _icmpv6_packet(src, dst, message, 1, _ROUTER_ALERT)
        return _ipv6_in_medium(packet, medium, dst, None, smac)

    return packets()


def mld_messages(*, group: Any = None, source: Any = None, source_mac: MacParameter = None,
                 medium: Medium = "ethernet") -> SearchStrategy[bytes]:
    """Any MLD message: ``mld_queries`` or ``mld_reports``."""
    common = dict(group=group, source=source, source_mac=source_mac, medium=medium)
    return st.one_of(mld_queries(**common), mld_reports(**common))


def _message_of(packet: bytes) -> Icmpv6Message:
    whole = Ipv6Packet.parse(packet)
    chain = whole.chain()
    return Icmpv6Message.parse(chain.upper_layer_data, whole.source, whole.destination)


def icmpv6_message_values(packets: SearchStrategy[bytes] | None = None) -> SearchStrategy[Icmpv6Message]:
    """``Icmpv6Message`` values (what ``st.from_type(Icmpv6Message)`` draws): the messages of
    ``packets`` (bare IPv6 packets carrying ICMPv6; default: echo requests, ND and MLD messages)."""
    if packets is None:
        packets = st.one_of(ipv6_echo_requests(medium="ip"), nd_messages(medium="ip"), mld_messages(medium="ip"))
    return packets.map(_message_of)


#: The strategy of bare packets that carries each ND and MLD value class (``icmpv6_body_values``).
_BODIES = {"RouterSolicitation": lambda: router_solicitations(medium="ip"),
           "RouterAdvertisement": lambda: router_advertisements(medium="ip"),
           "NeighborSolicitation": lambda: neighbor_solicitations(medium="ip"),
           "NeighborAdvertisement": lambda: neighbor_advertisements(medium="ip"),
           "Redirect": lambda: redirects(medium="ip"),
           "MldQuery": lambda: mld_queries(medium="ip"),
           "MldReport": lambda: mld_reports(version=2, medium="ip"),
           "MldV1Message": lambda: mld_reports(version=1, medium="ip")}


def icmpv6_body_values(kind: type) -> SearchStrategy[Any]:
    """Values of an ND or MLD class of ``stack.l3.icmpv6`` (``NeighborSolicitation``,
    ``MldQuery``...), read from the valid messages above; what ``st.from_type`` draws for them."""
    if kind.__name__ not in _BODIES:
        raise ValueError(f"no strategy for {kind.__name__}; known: {', '.join(_BODIES)}")
    return icmpv6_message_values(_BODIES[kind.__name__]()).map(decode_icmpv6)


# ---------------------------------------------------------------------------- fragments

@dataclass(frozen=True, slots=True)
class Ipv6FragmentTrain:
    """One IPv6 packet cut into fragments (RFC 8200 4.5), in the order they are sent.

    ``packet`` is the whole packet (without a Fragment header); ``fragments`` are wire bytes in
    the train's medium; ``pieces`` each fragment's (start, stop, more fragments) in the
    fragmentable part, what ``reassembly6_model`` reads. ``duplicates`` counts exact copies
    added, ``overlapping`` says whether an overlapping one was added, ``atomic`` whether an
    atomic fragment (RFC 6946) of the same identification was added, ``split_chain`` whether
    the first fragment lacks part of the header chain (RFC 7112). ``completions`` is how many
    times a correct host puts the packet together (``reassembly6_model``; 0 with a split chain,
    whose first fragment it discards with Parameter Problem code 3, pointer 0).
    """

    packet: bytes
    fragments: tuple[bytes, ...]
    pieces: tuple[tuple[int, int, bool], ...]
    identification: int
    duplicates: int
    overlapping: bool
    atomic: bool
    split_chain: bool
    completions: int


def reassembly6_model(size: int, arrivals: list[tuple[int, int, bool]]) -> list[str]:
    """What an IPv6 host must do with fragments of one packet whose fragmentable part is
    ``size`` bytes, as plainly as possible: per arrival (start, stop, more fragments), "held",
    "duplicate", "discarded" or "complete".

    - RFC 6946 4: an atomic fragment (offset 0, M clear) is a whole packet on its own, apart from
      any reassembly of the same identification: "complete", the rest untouched;
    - RFC 8200 4.5: an exact duplicate may be dropped, the rest kept;
    - RFC 5722 3: a fragment that overlaps a held one discards the whole packet, and the packet's
      fragments that come after it are discarded too ("including those not yet received");
    - the packet completes when its pieces cover it from 0 to its end; a fragment after that
      starts a new one.
    """
    held: set[tuple[int, int]] = set()
    discarded = False
    outcomes = []
    for start, stop, more in arrivals:
        if start == 0 and not more:
            outcomes.append("complete")
        elif discarded:
            outcomes.append("discarded")
        elif (start, stop) in held:
            outcomes.append("duplicate")
        elif any(a < stop and start < b for a, b in held):
            held.clear()
            discarded = True
            outcomes.append("discarded")
        else:
            held.add((start, stop))
            covered = sum(b - a for a, b in held)
            if covered == size and any(b == size for _, b in held) and any(a == 0 for a, _ in held):
                held.clear()
                outcomes.append("complete")
            else:
                outcomes.append("held")
    return outcomes


def _unfragmentable_length(packet: Ipv6Packet) -> int:
    """RFC 8200 4.5: the Unfragmentable Part is the Hop-by-Hop header and the headers up to a
    Routing header; what follows is fragmentable."""
    chain = walk_chain(packet.next_header, packet.payload)
    if chain.fragment is not None:
        raise ValueError("ipv6_fragment_trains needs packets without a Fragment header")
    end = 0
    for index, header in enumerate(chain.headers):
        if header.type == NextHeader.HOP_BY_HOP or (header.type == NextHeader.ROUTING) or any(
                later.type == NextHeader.ROUTING for later in chain.headers[index + 1:]):
            end = header.offset - HEADER_LENGTH + len(header.data)
    return end


def _ipv6_fragment(whole: Ipv6Packet, unfragmentable: bytes, first_next_header: int, fragmentable: bytes,
                   start: int, stop: int, more: bool, identification: int) -> bytes:
    # RFC 8200 4.5: each fragment: the Unfragmentable Part (its last Next Header now 44), the
    # Fragment header (the original Next Header, offset in 8-octet units, M), the piece.
    head = bytearray(unfragmentable)
    fragment_header = bytes(FragmentHeader(first_next_header, start // 8, more, identification))
    if head:
        _set_last_next_header(head, NextHeader.FRAGMENT)
        next_header = whole.next_header
    else:
        next_header = NextHeader.FRAGMENT
    return _ipv6_packet(whole.source, whole.destination, next_header,
                        bytes(head) + fragment_header + fragmentable[start:stop], whole.hop_limit,
                        whole.traffic_class, whole.flow_label)


def _set_last_next_header(headers: bytearray, value: int) -> int:
    """Set the Next Header of the last of a run of extension headers (8-octet length units);
    returns the old value."""
    index = last = 0
    while index < len(headers):
        last = index
        index += (headers[index + 1] + 1) * 8
    old = headers[last]
    headers[last] = value
    return old


@st.composite
def ipv6_fragment_trains(
    draw: st.DrawFn,
    packets: SearchStrategy[bytes] | None = None,
    *,
    largest_fragment: int = 1280,
    shuffle: bool = True,
    reverse: bool = False,
    duplicates: bool = False,
    overlaps: bool = False,
    atomic: bool = False,
    split_chain: bool = False,
    identification: Any = None,
    medium: Medium = "ip",
    source_mac: MacParameter = None,
    destination_mac: MacParameter = None,
) -> Ipv6FragmentTrain:
    """An IPv6 packet cut into fragments (RFC 8200 4.5) of at most ``largest_fragment`` bytes
    (default 1280, the minimum MTU; data in multiples of 8 but the last), in any order
    (``shuffle``; in order with ``shuffle=False``, last to first with ``reverse``), with exact duplicates, one overlapping fragment (sent while the packet is
    still incomplete), and an atomic fragment of the same identification (RFC 6946) on request.

    With ``split_chain`` a Destination Options header goes after the Fragment header and the
    first fragment ends inside it or before the upper-layer header: the chain is split across
    fragments (RFC 7112), and a correct host discards that first fragment (Parameter Problem
    code 3, pointer 0) so the packet never completes.

    ``packets`` gives whole packets as bytes in the "ip" medium, with no Fragment header
    (default: echo requests between documentation addresses, 1 to 4000 bytes of data); any
    Hop-by-Hop or Routing header stays in every fragment (the Unfragmentable Part). Unless the
    chain is split, the first fragment holds every header through the upper-layer header (RFC
    8200 4.5, RFC 7112). ``completions`` counts reassemblies: it assumes the host gets as far as
    the Fragment header (no Routing header with Segments Left or discarding option before it).
    """
    _check_medium(medium)
    if packets is None:
        packets = ipv6_echo_requests(medium="ip", min_size=1, max_size=4000)
    whole = Ipv6Packet.parse(draw(packets))
    payload = bytes(whole.payload)
    try:
        cut = _unfragmentable_length(whole)
    except ParseError:
        assume(False)  # a chain that does not read (Hop-by-Hop not first...) has no parts to cut
        raise
    unfragmentable, fragmentable = payload[:cut], payload[cut:]
    if unfragmentable:
        first_next_header = _set_last_next_header(bytearray(unfragmentable), 0)
    else:
        first_next_header = whole.next_header
    options_length = 0
    if split_chain:
        # A Destination Options header (8 to 48 bytes of padding) heads the fragmentable part.
        options_length = 8 * draw(st.integers(1, 6))
        options = bytes(OptionsHeader.padded(first_next_header, [Ipv6Option(1, bytes(options_length - 4))]))
        fragmentable = options + fragmentable
        first_next_header = NextHeader.DESTINATION_OPTIONS
    assume(len(fragmentable) > 8)  # one fragment of 8 bytes or less is not fragmented at all
    # RFC 8200 4.5, RFC 7112 5: the first fragment holds every header through the upper-layer
    # header (``chain_end`` bytes of the fragmentable part), unless the chain is to be split.
    chain = walk_chain(whole.next_header, payload)
    chain_end = min(len(fragmentable), options_length + chain.upper_layer_offset - HEADER_LENGTH - cut
                    + UPPER_LAYER_HEADER_LENGTHS.get(chain.upper_layer, 0))
    least = 1 if split_chain else max(1, -(-chain_end // 8))  # the first fragment's fewest 8-byte units
    room = (largest_fragment - HEADER_LENGTH - len(unfragmentable) - FRAGMENT_HEADER_LENGTH) // 8
    if room < 1:
        raise ValueError(f"fragments of {largest_fragment} bytes carry no data")
    if HEADER_LENGTH + len(unfragmentable) + FRAGMENT_HEADER_LENGTH + len(fragmentable) - HEADER_LENGTH \
            > MAXIMUM_PAYLOAD_LENGTH:
        raise ValueError("the packet with a Fragment header is over 65,535 bytes")
    pieces: list[tuple[int, int]] = []
    start = 0
    while start < len(fragmentable):
        units = min(room, (len(fragmentable) - 1) // 8) if start == 0 else room
        if start == 0 and split_chain:
            # RFC 7112: the first fragment ends inside the Destination Options header, or right
            # after it, before the upper-layer header.
            units = min(units, options_length // 8)
        if start == 0:
            assume(units >= least)  # (else the chain cannot stay whole in a first fragment)
        size = 8 * (units - draw(st.integers(0, units - (least if start == 0 else 1))))
        stop = min(start + size, len(fragmentable))
        pieces.append((start, stop))
        start = stop
    if reverse:
        order = pieces[::-1]  # last to first, as some senders send them
    else:
        order = list(draw(st.permutations(pieces))) if shuffle else list(pieces)
    copies = 0
    if duplicates:
        for _ in range(draw(st.integers(1, 3))):
            order.insert(draw(st.integers(0, len(order))), draw(st.sampled_from(pieces)))
            copies += 1
    size = len(fragmentable)

    def model(arrivals: list[tuple[int, int]]) -> list[str]:
        return reassembly6_model(size, [(a, b, b < size) for a, b in arrivals])

    overlapping = False
    if overlaps:
        units = (size + 7) // 8
        first = draw(st.integers(0, units - 1))
        last = draw(st.integers(first + 1, units))
        extra = (first * 8, min(last * 8, size))
        assume(extra not in pieces and extra != (0, size))
        assume(split_chain or extra[0] > 0 or extra[1] >= chain_end)  # a first fragment, chain whole
        # While the packet is incomplete and where it overlaps what is held (as for IPv4).
        completing = model(order).index("complete") if "complete" in model(order) else len(order)
        places = [at for at in range(completing + 1)
                  if "discarded" in model([*order[:at], extra])]
        assume(places)
        order.insert(draw(st.sampled_from(places)), extra)
        overlapping = True
    arrivals = [(a, b, b < size) for a, b in order]
    if atomic:
        arrivals.insert(draw(st.integers(0, len(arrivals))), (0, size, False))
    ident = draw(_strategy(identification, st.integers(0, 0xFFFFFFFF)))
    completions = 0 if split_chain else reassembly6_model(size, arrivals).count("complete")
    if split_chain:
        completions = sum(1 for a, _, more in arrivals if a == 0 and not more)  # atomic ones only
    fragments = tuple(_ipv6_fragment(whole, unfragmentable, first_next_header, fragmentable, a, b, more, ident)
                      for a, b, more in arrivals)
    if medium == "ethernet":
        dmac = draw(_strategy(destination_mac, mac_addresses(), MacAddress))
        smac = draw(_strategy(source_mac, mac_addresses(), MacAddress))
        fragments = tuple(_ipv6_in_medium(fragment, medium, whole.destination, dmac, smac) for fragment in fragments)
    return Ipv6FragmentTrain(bytes(whole), fragments, tuple(arrivals), ident, copies, overlapping, atomic,
                             split_chain, completions)


# ---------------------------------------------------------------------------- broken (IPv6)

class Icmpv6Error(NamedTuple):
    """The ICMPv6 error a host must send about a broken packet: type, code, and the parameter
    (a Parameter Problem's pointer: the offset of the field at fault in the packet, RFC 4443 3.4)."""

    type: int
    code: int
    pointer: int


#: What ``broken`` breaks in an IPv6 packet, one per example (see ``broken6`` for the drop
#: reason and the ICMPv6 error each must cause). ``truncated``, ``flipped_bit``, ``ip_version``
#: and ``udp_length`` are IPv4's kinds too.
BREAKAGES6 = (
    "truncated",             # cut inside the Ethernet header, the IPv6 packet, or the upper layer (length fixed up)
    "flipped_bit",           # one bit flipped in the ICMPv6 message or the UDP datagram (not its length)
    "ip_version",            # a version other than 6
    "ipv6_payload_length",   # a payload length that lies (past the packet, or cutting the upper layer)
    "icmpv6_checksum",       # a wrong ICMPv6 checksum
    "udp_checksum",          # a wrong UDP checksum
    "udp_length",            # a UDP length that lies
    "nd_hop_limit",          # an ND message whose hop limit is not 255 (RFC 4861 6.1, 7.1, 8.1)
    "nd_code",               # an ND message whose code is not 0
    "nd_option_length",      # an ND option of length 0 (RFC 4861 4.6: silently discard)
    "nd_truncated",          # an ND message shorter than its fixed part
    "mld_hop_limit",         # an MLD query whose hop limit is not 1 (RFC 3810 5.1.14)
    "unknown_option",        # a Destination Options header with an unknown option (action 01, 10 or 11)
    "unknown_next_header",   # the upper layer's Next Header changed to one nobody implements
    "routing_header",        # a Routing header of an unknown type with Segments Left > 0
    "fragment_length",       # a Fragment header (first fragment, M set) whose data is not 8-byte units
    "hop_by_hop_not_first",  # a Hop-by-Hop Options header after a Destination Options header
)

_ND_FIXED = {Icmpv6Type.ROUTER_SOLICITATION: 0, Icmpv6Type.ROUTER_ADVERTISEMENT: 8,
             Icmpv6Type.NEIGHBOR_SOLICITATION: 16, Icmpv6Type.NEIGHBOR_ADVERTISEMENT: 16, Icmpv6Type.REDIRECT: 32}
_UNSPECIFIED = IPv6Address("::")
_PARAMETER_PROBLEM = int(Icmpv6Type.PARAMETER_PROBLEM)


@dataclass(frozen=True, slots=True)
class _Layout6:
    """Where the parts of a valid IPv6 packet are (offsets in the packet), and whether it gets
    as far as its upper layer (no option, routing header or fragment decides before)."""

    start: int  # where the packet starts in the frame
    packet: Ipv6Packet
    walked: bool  # the header chain reads
    reaches: bool
    upper: int = -1
    upper_offset: int = 0
    upper_pointer: int = 0
    hop_by_hop: int = 0  # the Hop-by-Hop header's length (0: none)

    @property
    def end(self) -> int:
        return HEADER_LENGTH + self.packet.payload_length

    def upper_data(self, packet: bytes | bytearray) -> bytes:
        return bytes(packet[self.upper_offset:self.end])


def _layout6(frame: bytes, medium: str) -> _Layout6 | None:
    """The layout of an IPv6 packet (None when ``frame`` is not one)."""
    start = 0 if medium == "ip" else ETHERNET_HEADER
    if medium == "ethernet" and (len(frame) < ETHERNET_HEADER or frame[12:14] != b"\x86\xdd"):
        return None
    if medium == "ip" and (not frame or frame[0] >> 4 != 6):
        return None
    packet = Ipv6Packet.parse(frame[start:])  # valid by contract: a ParseError here is the caller's
    try:
        chain = walk_chain(packet.next_header, packet.payload)
    except ParseError:
        return _Layout6(start, packet, False, False)
    reaches = True
    for header in chain.headers:
        for option in header.options:
            known = option.is_padding or (header.type == NextHeader.HOP_BY_HOP and option.type == 5)
            reaches &= known or option.action == 0
        if isinstance(header.value, RoutingHeader):
            reaches &= header.value.segments_left == 0
        if isinstance(header.value, FragmentHeader):
            reaches &= header.value.is_atomic
    hop_by_hop = len(chain.headers[0].data) if chain.hop_by_hop is not None else 0
    return _Layout6(start, packet, True, reaches, chain.upper_layer, chain.upper_layer_offset,
                    chain.upper_layer_pointer, hop_by_hop)


def _applicable6(layout: _Layout6, medium: str) -> list[str]:
    kinds = ["truncated", "ip_version", "ipv6_payload_length"]
    packet = layout.packet
    if not layout.reaches or (packet.source == _UNSPECIFIED and layout.upper != NextHeader.ICMPV6):
        return kinds
    size = layout.end - layout.upper_offset
    data = bytes(packet.payload)[layout.upper_offset - HEADER_LENGTH:]
    if layout.upper == NextHeader.ICMPV6 and size >= ICMPV6_HEADER:
        kinds += ["flipped_bit", "icmpv6_checksum"]
        kind = data[0]
        if medium == "ethernet" and kind in _ND_FIXED:
            kinds += ["nd_hop_limit", "nd_code"]
            if _nd_options_at(data) < size:
                kinds.append("nd_option_length")
            if _ND_FIXED[kind]:
                kinds.append("nd_truncated")
        if medium == "ethernet" and kind == Icmpv6Type.MLD_QUERY and packet.source.is_link_local \
                and packet.hop_limit == 1:
            kinds.append("mld_hop_limit")
    if layout.upper == NextHeader.UDP and size >= UDP_HEADER:
        kinds += ["flipped_bit", "udp_length"]
        if data[6:8] != b"\0\0":
            kinds.append("udp_checksum")
    if layout.upper in (NextHeader.ICMPV6, NextHeader.UDP):
        kinds += ["unknown_option", "unknown_next_header", "routing_header"]
        # (The two that leave the chain unreadable only where no rule forbids an error about
        # the upper layer: tapstack, unable to read it, would not know.)
        readable_upper_matters = layout.upper == NextHeader.ICMPV6 and (is_icmpv6_error(data[0])
                                                                        or data[0] == Icmpv6Type.REDIRECT)
        if packet.payload_length % 8 and not layout.hop_by_hop and not readable_upper_matters:
            kinds.append("fragment_length")
        if not layout.hop_by_hop and not readable_upper_matters:
            kinds.append("hop_by_hop_not_first")
    return [kind for kind in BREAKAGES6 if kind in kinds]


def _nd_options_at(message: bytes) -> int:
    """Where an ND message's options start (RFC 4861 4.1-4.5: after its fixed part)."""
    return ICMPV6_HEADER + _ND_FIXED[message[0]]


def _no_error_about(layout: _Layout6, packet: bytes | bytearray) -> bool:
    """RFC 4443 2.4 (e) 1, 2: no error about an ICMPv6 error or a Redirect; (e) 6: none to a
    source that is not one node."""
    upper = layout.upper_data(packet)
    return (layout.upper == NextHeader.ICMPV6 and len(upper) > 0
            and (is_icmpv6_error(upper[0]) or upper[0] == Icmpv6Type.REDIRECT)) \
        or not identifies_one_node(layout.packet.source)


def _with_payload_length(packet: bytearray, length: int) -> None:
    packet[4:6] = length.to_bytes(2, "big")


def _icmpv6_sum(packet: bytes | bytearray, layout: _Layout6, upper: bytes) -> int:
    pseudo = ipv6_pseudo_header(layout.packet.source, layout.packet.destination, len(upper), NextHeader.ICMPV6)
    return internet_checksum(pseudo + upper)


def _fix_icmpv6_checksum(packet: bytearray, layout: _Layout6) -> None:
    at = layout.upper_offset
    packet[at + 2:at + 4] = b"\0\0"
    upper = bytes(packet[at:HEADER_LENGTH + int.from_bytes(packet[4:6], "big")])
    packet[at + 2:at + 4] = _icmpv6_sum(packet, layout, upper).to_bytes(2, "big")


def _upper_still_verifies(packet: bytearray, layout: _Layout6) -> bool:
    """Whether the upper layer (ICMPv6 or UDP, as cut) still passes its checksum."""
    end = HEADER_LENGTH + int.from_bytes(packet[4:6], "big")
    upper = bytes(packet[layout.upper_offset:end])
    pseudo = ipv6_pseudo_header(layout.packet.source, layout.packet.destination, len(upper), layout.upper)
    return internet_checksum(pseudo + upper) == 0


def _cut_upper_reasons(layout: _Layout6, keep: int, udp_length: int) -> set[str]:
    """The drop reason for an upper layer cut to ``keep`` bytes behind a fixed-up length."""
    if layout.upper == NextHeader.ICMPV6:
        return {"icmpv6_truncated" if keep < ICMPV6_HEADER else "icmpv6_bad_checksum"}
    if keep < UDP_HEADER:
        return {"udp_truncated"}
    return {"udp_bad_length"} if udp_length > keep else {"udp_bad_checksum"}


def break_ipv6(draw: st.DrawFn, original: bytes, kinds: tuple[str, ...] | None, medium: str) -> Broken:
    """``broken``'s IPv6 half: one drawn breakage of ``original`` (a valid IPv6 frame or packet)."""
    layout = _layout6(original, medium)
    assert layout is not None
    applicable = [kind for kind in _applicable6(layout, medium) if kinds is None or kind in kinds]
    assume(applicable)
    kind = draw(st.sampled_from(applicable))
    start = layout.start
    head, packet = bytearray(original[:start]), bytearray(original[start:start + layout.end])
    source, destination = layout.packet.source, layout.packet.destination
    multicast = destination.is_multicast
    error: Icmpv6Error | None = None
    reasons: set[str]
    no_error = _no_error_about(layout, packet)  # (read before anything moves)
    if kind == "truncated":
        layers = (["Ethernet"] if medium == "ethernet" else []) + ["IPv6"]
        if layout.reaches and layout.upper in (NextHeader.ICMPV6, NextHeader.UDP) \
                and layout.end > layout.upper_offset:
            layers.append("ICMPv6" if layout.upper == NextHeader.ICMPV6 else "UDP")
        layer = draw(st.sampled_from(layers))
        if layer == "Ethernet":
            cut = draw(st.integers(0, ETHERNET_HEADER - 1))
            frame = bytes(head + packet)[:cut]
            detail = f"Ethernet: cut at byte {cut} of {len(original)}"
            return Broken(frame, original, kind, detail, frozenset({"ethernet_runt"}))
        if layer == "IPv6":
            cut = draw(st.integers(0, layout.end - 1))
            detail = f"IPv6: cut at byte {cut} of {layout.end}"
            reasons = {"tun_not_ipv4"} if medium == "ip" and cut == 0 else {"ipv6_truncated"}
            return Broken(bytes(head + packet[:cut]), original, kind, detail, frozenset(reasons))
        size = layout.end - layout.upper_offset
        keep = draw(st.integers(0, size - 1))
        udp_length = int.from_bytes(packet[layout.upper_offset + 4:layout.upper_offset + 6], "big")
        del packet[layout.upper_offset + keep:]
        _with_payload_length(packet, len(packet) - HEADER_LENGTH)
        assume(keep < ICMPV6_HEADER or layout.upper == NextHeader.UDP or not _upper_still_verifies(packet, layout))
        reasons = _cut_upper_reasons(layout, keep, udp_length)
        detail = f"{layer}: cut to {keep} of {size} bytes, payload length fixed up"
    elif kind == "ip_version":
        versions = [v for v in range(16) if v != 6 and (medium == "ethernet" or v != 4)]
        version = draw(st.sampled_from(versions))
        packet[0] = version << 4 | packet[0] & 0x0F
        reasons = {"tun_not_ipv4"} if medium == "ip" else {"ipv6_bad_version"}
        detail = f"IP version 6 -> {version}"
    elif kind == "ipv6_payload_length":
        declared = layout.packet.payload_length
        available = len(original) - start - HEADER_LENGTH  # Ethernet padding included
        shorter = "flipped_bit" in _applicable6(layout, medium) and declared > 0
        assume(shorter or available < MAXIMUM_PAYLOAD_LENGTH)  # (a 65,535-byte packet cannot lie longer)
        if available < MAXIMUM_PAYLOAD_LENGTH and (not shorter or draw(st.booleans())):
            new = draw(st.integers(available + 1, MAXIMUM_PAYLOAD_LENGTH))
            reasons = {"ipv6_truncated"}
        else:
            new = draw(st.integers(layout.upper_offset - HEADER_LENGTH, declared - 1))
            keep = HEADER_LENGTH + new - layout.upper_offset
            udp_length = int.from_bytes(packet[layout.upper_offset + 4:layout.upper_offset + 6], "big")
            reasons = _cut_upper_reasons(layout, keep, udp_length)
        _with_payload_length(packet, new)
        if reasons != {"ipv6_truncated"}:
            assume(keep < ICMPV6_HEADER or layout.upper == NextHeader.UDP
                   or not _upper_still_verifies(packet, layout))
        detail = f"IPv6 payload length {declared} -> {new}"
    elif kind == "flipped_bit":
        at = layout.upper_offset
        size = layout.end - at
        if layout.upper == NextHeader.UDP:
            bit = draw(st.integers(0, 8 * (size - 2) - 1).map(lambda b: b if b < 32 else b + 16))  # not the length
            reasons, name = {"udp_bad_checksum"}, "UDP datagram"
        else:
            bit = draw(st.integers(0, 8 * size - 1))
            reasons, name = {"icmpv6_bad_checksum"}, "ICMPv6 message"
        packet[at + bit // 8] ^= 0x80 >> (bit % 8)
        detail = f"{name}: bit {bit % 8} of byte {bit // 8} flipped"
    elif kind in ("icmpv6_checksum", "udp_checksum"):
        at = layout.upper_offset + (2 if kind == "icmpv6_checksum" else 6)
        old = int.from_bytes(packet[at:at + 2], "big")
        new = 0 if kind == "udp_checksum" and draw(st.integers(0, 3)) == 0 else \
            _wrong_checksum(old, draw(st.integers(1, 0xFFFF)))
        packet[at:at + 2] = new.to_bytes(2, "big")
        reasons = {"icmpv6_bad_checksum" if kind == "icmpv6_checksum" else "udp_bad_checksum"}
        detail = f"{'ICMPv6' if kind == 'icmpv6_checksum' else 'UDP'} checksum {old:#06x} -> {new:#06x}"
    elif kind == "udp_length":
        at = layout.upper_offset
        size = layout.end - at
        old = int.from_bytes(packet[at + 4:at + 6], "big")
        new = draw(st.one_of(st.integers(0, UDP_HEADER - 1), st.integers(size + 1, 0xFFFF)))
        packet[at + 4:at + 6] = new.to_bytes(2, "big")
        reasons = {"udp_bad_length"}
        detail = f"UDP length {old} -> {new}"
    elif kind in ("nd_hop_limit", "mld_hop_limit"):
        right = 255 if kind == "nd_hop_limit" else 1
        new = draw(st.integers(0, 255).filter(lambda value: value != right))
        packet[7] = new
        reasons = {"icmpv6_nd_bad_hop_limit" if kind == "nd_hop_limit" else "icmpv6_mld_bad_hop_limit"}
        detail = f"hop limit {right} -> {new}"
    elif kind == "nd_code":
        new = draw(st.integers(1, 255))
        packet[layout.upper_offset + 1] = new
        _fix_icmpv6_checksum(packet, layout)
        reasons = {"icmpv6_nd_bad_code"}
        detail = f"ND code 0 -> {new}"
    elif kind == "nd_option_length":
        message = layout.upper_data(packet)
        offsets, index = [], _nd_options_at(message)
        while index < len(message):
            offsets.append(index)
            index += 8 * message[index + 1]
        at = draw(st.sampled_from(offsets))
        packet[layout.upper_offset + at + 1] = 0
        _fix_icmpv6_checksum(packet, layout)
        reasons = {"icmpv6_nd_option_zero_length"}
        detail = f"ND option {message[at]} at byte {at}: length {message[at + 1]} -> 0"
    elif kind == "nd_truncated":
        message = layout.upper_data(packet)
        keep = ICMPV6_HEADER + draw(st.integers(0, _ND_FIXED[message[0]] - 1))
        del packet[layout.upper_offset + keep:]
        _with_payload_length(packet, len(packet) - HEADER_LENGTH)
        _fix_icmpv6_checksum(packet, layout)
        reasons = {"icmpv6_nd_truncated"}
        detail = (f"ND message {message[0]}: cut to {keep} of {len(message)} bytes "
                  f"(fixed part {_nd_options_at(message)})")
    elif kind == "unknown_option":
        option = draw(st.sampled_from([t for t in UNKNOWN_IPV6_OPTIONS if t >> 6]))
        header = bytes(OptionsHeader.padded(0, [Ipv6Option(option, bytes(4))]))
        at = _insert_header(packet, layout, NextHeader.DESTINATION_OPTIONS, header)
        action = option >> 6
        reasons = {"ipv6_unrecognised_option"}
        # RFC 8200 4.2: 01 discard; 10 discard and report, even to multicast; 11 unless to multicast.
        if (action == 2 or (action == 3 and not multicast)) and not no_error:
            error = Icmpv6Error(_PARAMETER_PROBLEM, ParameterProblemCode.UNRECOGNIZED_OPTION, at + 2)
        detail = f"Destination Options with unknown option {option:#04x} (action {action:02b}) at byte {at + 2}"
    elif kind == "unknown_next_header":
        new = draw(st.sampled_from(UNKNOWN_NEXT_HEADERS))
        pointer = layout.upper_pointer
        packet[pointer] = new
        if source == _UNSPECIFIED:
            # RFC 4443 2.4 (e) 6, RFC 4862: only ND and MLD may come from ::
            reasons = {"ipv6_unspecified_source"}
        else:
            reasons = {"ipv6_unknown_next_header"}
            # (The upper layer is unknown now: no ICMPv6 message, so 2.4 (e) 1 and 2 no longer apply.)
            if not multicast and identifies_one_node(source):
                error = Icmpv6Error(_PARAMETER_PROBLEM, ParameterProblemCode.UNRECOGNIZED_NEXT_HEADER, pointer)
        detail = f"Next Header at byte {pointer}: {layout.upper} -> {new}"
    elif kind == "routing_header":
        routing_type = draw(st.sampled_from([253, 254]))
        segments = draw(st.integers(1, 255))
        header = bytes(RoutingHeader(0, routing_type, segments, bytes(4)))
        at = _insert_header(packet, layout, NextHeader.ROUTING, header)
        reasons = {"ipv6_routing_header_rejected"}
        # RFC 8200 4.4: Parameter Problem code 0 pointing at the Routing Type.
        if not multicast and not no_error:
            error = Icmpv6Error(_PARAMETER_PROBLEM, ParameterProblemCode.ERRONEOUS_HEADER_FIELD, at + 2)
        detail = f"Routing header type {routing_type}, {segments} segments left, at byte {at}"
    elif kind == "fragment_length":
        identification = draw(st.integers(0, 0xFFFFFFFF))
        _insert_header(packet, layout, NextHeader.FRAGMENT, bytes(FragmentHeader(0, 0, True, identification)))
        reasons = {"ipv6_fragment_bad_length"}
        # RFC 8200 4.5: Parameter Problem code 0 pointing at the Payload Length.
        if not multicast and not no_error:
            error = Icmpv6Error(_PARAMETER_PROBLEM, ParameterProblemCode.ERRONEOUS_HEADER_FIELD, 4)
        detail = f"first fragment (M set) of {layout.packet.payload_length} bytes, not 8-byte units"
    else:  # hop_by_hop_not_first
        _insert_header(packet, layout, NextHeader.HOP_BY_HOP, bytes(OptionsHeader.padded(0, [])))
        _insert_header(packet, layout, NextHeader.DESTINATION_OPTIONS, bytes(OptionsHeader.padded(0, [])))
        reasons = {"ipv6_hop_by_hop_not_first"}
        # RFC 8200 4: Parameter Problem code 1 pointing at the Next Header that names it.
        if not multicast and not no_error:
            error = Icmpv6Error(_PARAMETER_PROBLEM, ParameterProblemCode.UNRECOGNIZED_NEXT_HEADER, HEADER_LENGTH)
        detail = "Destination Options header, then Hop-by-Hop Options"
    if medium == "ethernet":
        frame = bytes(head + packet) + bytes(max(0, 60 - len(head) - len(packet)))
    else:
        frame = bytes(packet)
    return Broken(frame, original, kind, detail, frozenset(reasons), error)


def _insert_header(packet: bytearray, layout: _Layout6, type: int, header: bytes) -> int:
    """Put an extension ``header`` of ``type`` right after the fixed header (or the Hop-by-Hop
    header): it takes over the Next Header that named what follows; returns where it went."""
    at = HEADER_LENGTH + layout.hop_by_hop
    naming = 6 if not layout.hop_by_hop else HEADER_LENGTH
    packet[at:at] = bytes([packet[naming]]) + header[1:]
    packet[naming] = type
    _with_payload_length(packet, int.from_bytes(packet[4:6], "big") + len(header))
    return at
