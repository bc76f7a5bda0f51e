"""Hypothesis strategies for fuzzing tapstack, or any IPv4 stack: valid frames, and mutators that
break exactly one thing in them.

Read first: docs/fuzzing.md "Fuzzing your own stack with the strategies"; RFC 791, RFC 792, RFC 826, RFC 768 for the
fields that are broken.

Hypothesis is a test extra: ``import stack`` never imports this module; import it explicitly
(``from stack import strategies``). Installing tapstack also registers these strategies with
``st.from_type`` (the ``hypothesis`` entry point calls ``stack.testing.hypothesis_hook.register``), so
``st.from_type(Ipv4Packet)`` draws well-formed datagrams.

Three kinds of strategy:

- *values*, the codecs' frozen dataclasses: ``mac_addresses``, ``ipv4_addresses``,
  ``ethernet_frames``, ``arp_packets``, ``ipv4_options``, ``ipv4_packets``, ``icmp_messages``,
  ``icmp_echo_messages``;
- *wire bytes* ready to feed to ``receive``: ``arp_frames``, ``icmp_frames``, ``frames``,
  ``echo_requests``, ``udp_datagrams`` (each in a ``medium``: ``"ethernet"`` gives a frame,
  ``"ip"`` a bare IPv4 datagram as on a TUN device without packet information), and
  ``fragment_trains``;
- the mutator ``broken(strategy, kinds=...)``, which takes any strategy of valid wire bytes and
  returns a ``Broken``: the frame with exactly one thing broken, what was broken, and the drop
  reasons a tapstack host counts for it.

Addresses default to the documentation networks (RFC 5737: 192.0.2.0/24, 198.51.100.0/24,
203.0.113.0/24) and to locally administered unicast MACs (02:xx:xx:xx:xx:xx); only
``any_address=True`` leaves them. Parameters that name an address or a size take either a plain
value or a strategy. Every strategy is built from integers, booleans, ``sampled_from`` and
``binary``, so a failing case shrinks to a short frame of small fields: empty payloads, the
first known code point, fragments as large as allowed, arrival in order.
"""

from __future__ import annotations

from dataclasses import dataclass
from ipaddress import IPv4Address, IPv6Address
from typing import Any, Literal

from hypothesis import assume
from hypothesis import strategies as st
from hypothesis.strategies import SearchStrategy

from stack.checksum import internet_checksum
from stack.documentation_addresses import DOCUMENTATION_NETWORKS
from stack.l2.arp import ArpOp, ArpPacket
from stack.l2.ethernet import EtherType, EthernetFrame, MacAddress
from stack.l3.icmp import IcmpMessage, IcmpType
from stack.l3.ipv4 import MAXIMUM_TOTAL_LENGTH, MINIMUM_HEADER_LENGTH, IpProto, Ipv4Packet
from stack.l2.ipv6_multicast import ipv6_multicast_mac
from stack.l3.icmpv6 import (Icmpv6Message, Icmpv6Type, NdOption, NdOptionType,
                             NeighborSolicitation)
from stack.l3.ipv6 import Ipv6Option, Ipv6Packet, NextHeader, OptionsHeader, RoutingHeader
from stack.l3.ipv6 import pseudo_header as ipv6_pseudo_header
from stack.l3.ipv6 import solicited_node_multicast
from stack.l4 import udp

__all__ = [
    "BREAKAGES", "DOCUMENTATION_NETWORKS", "ETHERNET_MTU", "Broken", "FragmentTrain", "Medium",
    "any_icmp_messages", "arp_frames", "arp_packets", "broken", "echo_requests", "eight_bits", "ethernet_frames",
    "fragment_trains", "frames", "icmp_echo_messages", "icmp_frames", "icmp_messages",
    "in_ethernet", "ipv4_addresses", "ipv4_options", "ipv4_packets", "mac_addresses", "payloads",
    "reassembly_model", "sixteen_bits", "udp_datagrams",
    # IPv6
    "IPV6_BREAKAGES", "UNKNOWN_IPV6_OPTIONS", "UNKNOWN_NEXT_HEADERS", "broken_ipv6", "ipv6_addresses",
    "ipv6_echo_requests", "ipv6_extension_chains", "ipv6_packet_values", "ipv6_packets",
    "ipv6_udp_datagrams", "neighbor_solicitations",
]

TYPICAL_PAYLOAD = 64  # most generated payloads are at most this long
ETHERNET_MTU = 1500  # the largest Ethernet II data field
MAXIMUM_OPTIONS = 40  # IHL 15: 60-byte header, 40 bytes of options
ETHERNET_HEADER = 14
ICMP_HEADER = 8
UDP_HEADER = udp.HEADER_LENGTH

#: Where wire bytes go: an Ethernet frame (TAP) or a bare IPv4 datagram (TUN, no packet info).
Medium = Literal["ethernet", "ip"]


# ---------------------------------------------------------------------------- primitives

def mac_addresses(*, any_address: bool = False) -> SearchStrategy[MacAddress]:
    """MACs 02:xx:xx:xx:xx:xx; with ``any_address``, any 6 bytes (broadcast and multicast too)."""
    if any_address:
        return st.binary(min_size=6, max_size=6).map(MacAddress)
    return st.binary(min_size=5, max_size=5).map(lambda rest: MacAddress(b"\x02" + rest))


def ipv4_addresses(*, any_address: bool = False) -> SearchStrategy[IPv4Address]:
    """Addresses in 192.0.2.0/24, 198.51.100.0/24 or 203.0.113.0/24; with ``any_address``, any."""
    if any_address:
        return st.ip_addresses(v=4)  # type: ignore[return-value]
    return st.one_of(*(st.ip_addresses(network=network) for network in DOCUMENTATION_NETWORKS))  # type: ignore[return-value]


@st.composite
def _payloads(draw: st.DrawFn, min_size: int, max_size: int, typical: int) -> bytes:
    if max_size > typical and draw(st.integers(0, 15)) == 0:
        size = draw(st.integers(max(typical + 1, min_size), max_size))
        pattern = draw(st.binary(min_size=1, max_size=8))
        return (pattern * (size // len(pattern) + 1))[:size]
    return draw(st.binary(min_size=min_size, max_size=max(min_size, min(typical, max_size))))


def payloads(max_size: int = ETHERNET_MTU, *, min_size: int = 0,
             typical: int = TYPICAL_PAYLOAD) -> SearchStrategy[bytes]:
    """Bytes, ``min_size`` to ``max_size`` long: usually random and at most ``typical`` long,
    one time in sixteen a repeated pattern of any length up to ``max_size`` (so the largest
    sizes are tried too). Shrinks towards ``min_size`` zero bytes."""
    if not 0 <= min_size <= max_size:
        raise ValueError(f"payload sizes {min_size}..{max_size} are not a range")
    return _payloads(min_size, max_size, typical)


def sixteen_bits(*known: int) -> SearchStrategy[int]:
    """A 16-bit field: one of the ``known`` values (shrinks to the first), or any value."""
    return st.one_of(st.sampled_from(known), st.integers(0, 0xFFFF)) if known else st.integers(0, 0xFFFF)


def eight_bits(*known: int) -> SearchStrategy[int]:
    """An 8-bit field: one of the ``known`` values (shrinks to the first), or any value."""
    return st.one_of(st.sampled_from(known), st.integers(0, 0xFF)) if known else st.integers(0, 0xFF)


def _strategy(value: Any, default: SearchStrategy[Any], convert: Any = None) -> SearchStrategy[Any]:
    """A parameter given as a plain value, a strategy, or None (the default strategy)."""
    if value is None:
        return default
    if isinstance(value, SearchStrategy):
        return value.map(convert) if convert is not None else value
    return st.just(convert(value) if convert is not None else value)


def _check_medium(medium: str) -> None:
    if medium not in ("ethernet", "ip"):
        raise ValueError(f"medium is 'ethernet' or 'ip', not {medium!r}")


# ---------------------------------------------------------------------------- values

def ethernet_frames(
    *,
    any_address: bool = False,
    ethertype: SearchStrategy[int] | None = None,
    payload: SearchStrategy[bytes] | None = None,
) -> SearchStrategy[EthernetFrame]:
    """Ethernet II frames with any EtherType (known ones first) and a payload of at most 1500
    bytes, unrelated to the EtherType. The destination may be any MAC when ``any_address``."""
    return st.builds(
        EthernetFrame,
        destination=mac_addresses(any_address=any_address),
        source=mac_addresses(any_address=any_address),
        ethertype=ethertype if ethertype is not None else sixteen_bits(*EtherType),
        payload=payload if payload is not None else payloads(ETHERNET_MTU),
    )


def arp_packets(
    *,
    any_address: bool = False,
    operation: SearchStrategy[int] | None = None,
    hardware_type: SearchStrategy[int] | None = None,
    protocol_type: SearchStrategy[int] | None = None,
    sender_mac: MacAddress | str | SearchStrategy[MacAddress] | None = None,
    sender_ip: IPv4Address | str | SearchStrategy[IPv4Address] | None = None,
    target_mac: MacAddress | str | SearchStrategy[MacAddress] | None = None,
    target_ip: IPv4Address | str | SearchStrategy[IPv4Address] | None = None,
) -> SearchStrategy[ArpPacket]:
    """ARP packets (6-byte hardware, 4-byte protocol addresses). Operation, hardware and
    protocol types default to any 16-bit value, shrinking to request / Ethernet / IPv4.
    For the only kind tapstack answers, pass ``operation=st.just(ArpOp.REQUEST)``,
    ``hardware_type=st.just(1)``, ``protocol_type=st.just(EtherType.IPV4)`` and the host's
    address as ``target_ip``."""
    return st.builds(
        ArpPacket,
        operation=operation if operation is not None else sixteen_bits(*ArpOp),
        sender_mac=_strategy(sender_mac, mac_addresses(any_address=any_address), MacAddress),
        sender_ip=_strategy(sender_ip, ipv4_addresses(any_address=any_address), IPv4Address),
        target_mac=_strategy(target_mac, mac_addresses(any_address=any_address), MacAddress),
        target_ip=_strategy(target_ip, ipv4_addresses(any_address=any_address), IPv4Address),
        hardware_type=hardware_type if hardware_type is not None else sixteen_bits(1),
        protocol_type=protocol_type if protocol_type is not None else sixteen_bits(EtherType.IPV4),
    )


@st.composite
def ipv4_options(draw: st.DrawFn) -> bytes:
    """Well-formed options (RFC 791 3.1) of a consistent length: 0, 4, ..., 40 bytes (IHL 5 to
    15). No-operations and type-length-value options of any type, then End-of-List padding."""
    size = 4 * draw(st.integers(0, MAXIMUM_OPTIONS // 4))
    out = b""
    while len(out) < size:
        room = size - len(out)
        kind = draw(st.sampled_from(["end", "nop", "tlv"])) if room >= 2 else "nop"
        if kind == "end":
            out += bytes(room)
        elif kind == "nop":
            out += b"\x01"
        else:
            option_length = draw(st.integers(2, room))
            option_type = draw(st.integers(2, 255))
            out += bytes([option_type, option_length]) + draw(st.binary(min_size=option_length - 2,
                                                                       max_size=option_length - 2))
    return out


@st.composite
def ipv4_packets(
    draw: st.DrawFn,
    *,
    any_address: bool = False,
    protocol: SearchStrategy[int] | None = None,
    payload: SearchStrategy[bytes] | None = None,
    options: SearchStrategy[bytes] | None = None,
    fragments: bool = True,
) -> Ipv4Packet:
    """IPv4 datagrams that can be built: any protocol (known ones first), TTL 1-255, any flags,
    options of a consistent length, and a payload that keeps the total length <= 65535 (so IHL
    and total length are always right). With ``fragments=False``: DF may be set, MF clear and
    fragment offset 0."""
    drawn_options = draw(options if options is not None else ipv4_options())
    limit = MAXIMUM_TOTAL_LENGTH - MINIMUM_HEADER_LENGTH - len(drawn_options)
    return Ipv4Packet(
        source=draw(ipv4_addresses(any_address=any_address)),
        destination=draw(ipv4_addresses(any_address=any_address)),
        protocol=draw(protocol if protocol is not None else eight_bits(*IpProto)),
        payload=draw(payload if payload is not None else payloads(limit)),
        ttl=draw(st.integers(1, 255)),
        identification=draw(st.integers(0, 0xFFFF)),
        dont_fragment=draw(st.booleans()),
        more_fragments=draw(st.booleans()) if fragments else False,
        fragment_offset=draw(st.integers(0, 0x1FFF)) if fragments else 0,
        type_of_service=draw(st.integers(0, 0xFF)),
        options=drawn_options,
    )


def icmp_messages(
    *,
    type: SearchStrategy[int] | None = None,
    code: SearchStrategy[int] | None = None,
    payload: SearchStrategy[bytes] | None = None,
) -> SearchStrategy[IcmpMessage]:
    """ICMP messages of any type and code (known types first), any 4-byte rest of header."""
    return st.builds(
        IcmpMessage,
        type=type if type is not None else eight_bits(*IcmpType),
        code=code if code is not None else eight_bits(0),
        rest_of_header=st.binary(min_size=4, max_size=4),
        payload=payload if payload is not None else payloads(ETHERNET_MTU),
    )


def any_icmp_messages() -> SearchStrategy[IcmpMessage]:
    """Echo requests and replies, or ICMP messages of any type (what ``st.from_type`` draws)."""
    return st.one_of(icmp_echo_messages(), icmp_messages())


def icmp_echo_messages(
    *,
    type: SearchStrategy[int] | None = None,
    payload: SearchStrategy[bytes] | None = None,
) -> SearchStrategy[IcmpMessage]:
    """Echo requests and replies (RFC 792) with any identifier, sequence number and data."""
    return st.builds(
        IcmpMessage.echo,
        type=type if type is not None else st.sampled_from([IcmpType.ECHO_REQUEST, IcmpType.ECHO_REPLY]),
        identifier=st.integers(0, 0xFFFF),
        sequence=st.integers(0, 0xFFFF),
        payload=payload if payload is not None else payloads(ETHERNET_MTU),
    )


# ---------------------------------------------------------------------------- wire bytes

# The largest ICMP message that fits a 1500-byte Ethernet data field behind a 60-byte IPv4 header.
_ICMP_IN_ETHERNET = ETHERNET_MTU - 60


def in_ethernet(datagram: bytes, destination: MacAddress | bytes | str,
                source: MacAddress | bytes | str, ethertype: int = EtherType.IPV4) -> bytes:
    """``datagram`` in an Ethernet II frame (padded to 60 bytes, RFC 894), as wire bytes."""
    return bytes(EthernetFrame(MacAddress(destination), MacAddress(source), ethertype, datagram))


def arp_frames(*, any_address: bool = False, **fields: Any) -> SearchStrategy[bytes]:
    """Whole Ethernet frames (as wire bytes, padded to 60) carrying an ARP packet; ``fields``
    go to ``arp_packets`` (``operation=st.just(ArpOp.REQUEST), target_ip="192.0.2.2"``...). The
    frame goes to a broadcast for a request, else to the target MAC."""
    def frame(source: MacAddress, packet: ArpPacket) -> bytes:
        destination = MacAddress(b"\xff" * 6) if packet.operation == ArpOp.REQUEST else packet.target_mac
        return in_ethernet(bytes(packet), destination, source, EtherType.ARP)

    if not fields:  # any packet, between any two MACs
        return st.builds(
            lambda destination, source, packet: in_ethernet(bytes(packet), destination, source, EtherType.ARP),
            mac_addresses(any_address=any_address), mac_addresses(any_address=any_address),
            arp_packets(any_address=any_address))
    return arp_packets(any_address=any_address, **fields).map(lambda packet: frame(packet.sender_mac, packet))


def icmp_frames(*, any_address: bool = False) -> SearchStrategy[bytes]:
    """Whole Ethernet frames (as wire bytes, padded to 60) carrying an unfragmented IPv4
    datagram (protocol ICMP) that carries an ICMP message of any type; at most 1514 bytes."""
    message = st.one_of(
        icmp_echo_messages(payload=payloads(_ICMP_IN_ETHERNET - 8)),
        icmp_messages(payload=payloads(_ICMP_IN_ETHERNET - 8)),
    )
    datagram = ipv4_packets(
        any_address=any_address,
        protocol=st.just(IpProto.ICMP),
        payload=message.map(bytes),
        fragments=False,
    )
    return st.builds(
        lambda destination, source, packet: in_ethernet(bytes(packet), destination, source),
        mac_addresses(any_address=any_address),
        mac_addresses(any_address=any_address),
        datagram,
    )


def frames(*, any_address: bool = False) -> SearchStrategy[bytes]:
    """Whole valid Ethernet frames as wire bytes: ARP, or ICMP in IPv4 (shrinks towards ARP)."""
    return st.one_of(arp_frames(any_address=any_address), icmp_frames(any_address=any_address))


AddressParameter = IPv4Address | str | SearchStrategy[IPv4Address] | None
MacParameter = MacAddress | bytes | str | SearchStrategy[MacAddress] | None


def _largest_data(medium: str, options: int, transport_header: int) -> int:
    total = ETHERNET_MTU if medium == "ethernet" else MAXIMUM_TOTAL_LENGTH
    return total - MINIMUM_HEADER_LENGTH - options - transport_header


@st.composite
def _datagram_in_medium(draw: st.DrawFn, medium: str, source: AddressParameter,
                        destination: AddressParameter, source_mac: MacParameter,
                        destination_mac: MacParameter, protocol: int, transport: Any,
                        options: SearchStrategy[bytes] | bytes | None,
                        identification: SearchStrategy[int] | int | None,
                        ttl: SearchStrategy[int] | int | None) -> bytes:
    drawn_options = draw(_strategy(options, st.just(b"")))
    message = draw(transport(len(drawn_options)))
    packet = Ipv4Packet(
        source=draw(_strategy(source, ipv4_addresses(), IPv4Address)),
        destination=draw(_strategy(destination, ipv4_addresses(), IPv4Address)),
        protocol=protocol,
        payload=message,
        ttl=draw(_strategy(ttl, st.just(64))),
        identification=draw(_strategy(identification, st.integers(0, 0xFFFF))),
        options=drawn_options,
    )
    if medium == "ip":
        return bytes(packet)
    return in_ethernet(bytes(packet), draw(_strategy(destination_mac, mac_addresses(), MacAddress)),
                       draw(_strategy(source_mac, mac_addresses(), MacAddress)))


def echo_requests(
    *,
    source: AddressParameter = None,
    destination: AddressParameter = None,
    source_mac: MacParameter = None,
    destination_mac: MacParameter = None,
    min_size: int = 0,
    max_size: int | None = None,
    identifier: SearchStrategy[int] | int | None = None,
    sequence: SearchStrategy[int] | int | None = None,
    options: SearchStrategy[bytes] | bytes | None = None,
    identification: SearchStrategy[int] | int | None = None,
    ttl: SearchStrategy[int] | int | None = None,
    medium: Medium = "ethernet",
) -> SearchStrategy[bytes]:
    """Valid ICMP echo requests (RFC 792) as wire bytes: an Ethernet frame (padded to 60) or,
    with ``medium="ip"``, a bare IPv4 datagram.

    ``min_size``/``max_size`` bound the ICMP data; ``max_size`` defaults to what fits an MTU
    of 1500 (1472 bytes less options) and may be raised to 65507 on ``"ip"`` (for bigger
    requests over Ethernet use ``fragment_trains``). ``options`` is no options by
    default (pass ``ipv4_options()`` for any well-formed ones). To aim at a host, give its
    address and MAC: ``echo_requests(destination="192.0.2.2", destination_mac=host.mac)``.
    """
    _check_medium(medium)
    largest = _largest_data(medium, 0, ICMP_HEADER)
    maximum = _largest_data("ethernet", 0, ICMP_HEADER) if max_size is None else max_size
    if not 0 <= min_size <= maximum <= largest:
        raise ValueError(f"echo data sizes {min_size}..{max_size} do not fit {medium} (at most {largest})")

    def message(options_length: int) -> SearchStrategy[bytes]:
        room = min(maximum, _largest_data(medium, options_length, ICMP_HEADER))
        return st.builds(
            lambda ident, seq, data: bytes(IcmpMessage.echo(IcmpType.ECHO_REQUEST, ident, seq, data)),
            _strategy(identifier, st.integers(0, 0xFFFF)),
            _strategy(sequence, st.integers(0, 0xFFFF)),
            payloads(max(room, min_size), min_size=min_size),
        )

    return _datagram_in_medium(medium, source, destination, source_mac, destination_mac,
                               IpProto.ICMP, message, options, identification, ttl)


def udp_datagrams(
    *,
    source: AddressParameter = None,
    destination: AddressParameter = None,
    source_mac: MacParameter = None,
    destination_mac: MacParameter = None,
    source_port: SearchStrategy[int] | int | None = None,
    destination_port: SearchStrategy[int] | int | None = None,
    min_size: int = 0,
    max_size: int | None = None,
    checksum: SearchStrategy[bool] | bool | None = None,
    medium: Medium = "ethernet",
) -> SearchStrategy[bytes]:
    """Valid UDP datagrams (RFC 768) in IPv4, as wire bytes in ``medium``: the UDP length is
    right, and the checksum is either computed (with the pseudo-header) or 0 ("none"), drawn
    unless ``checksum`` says. Sizes bound the UDP data as in ``echo_requests``."""
    _check_medium(medium)
    largest = _largest_data(medium, 0, UDP_HEADER)
    maximum = _largest_data("ethernet", 0, UDP_HEADER) if max_size is None else max_size
    if not 0 <= min_size <= maximum <= largest:
        raise ValueError(f"UDP data sizes {min_size}..{max_size} do not fit {medium} (at most {largest})")

    @st.composite
    def datagram(draw: st.DrawFn) -> bytes:
        packet_source = draw(_strategy(source, ipv4_addresses(), IPv4Address))
        packet_destination = draw(_strategy(destination, ipv4_addresses(), IPv4Address))

        def message(options_length: int) -> SearchStrategy[bytes]:
            return st.builds(
                lambda ports, data, summed: _udp(packet_source, packet_destination, ports, data, summed),
                st.tuples(_strategy(source_port, st.integers(0, 0xFFFF)),
                          _strategy(destination_port, st.integers(0, 0xFFFF))),
                payloads(max(min(maximum, _largest_data(medium, options_length, UDP_HEADER)), min_size),
                         min_size=min_size),
                _strategy(checksum, st.booleans()),
            )

        return draw(_datagram_in_medium(medium, packet_source, packet_destination, source_mac,
                                        destination_mac, IpProto.UDP, message, None, None, None))

    return datagram()


def _udp(source: IPv4Address, destination: IPv4Address, ports: tuple[int, int], data: bytes,
         summed: bool) -> bytes:
    """RFC 768: header (ports, length, checksum) and data; the checksum (when ``summed``)
    covers the pseudo-header too; else it is 0, "none"."""
    return udp.UdpDatagram(ports[0], ports[1], data).to_bytes(source, destination, summed)


# ---------------------------------------------------------------------------- fragments

@dataclass(frozen=True, slots=True)
class FragmentTrain:
    """One datagram cut into fragments, in the order they are sent.

    ``fragments`` are wire bytes in the train's medium; ``datagram`` is the whole IPv4
    datagram they came from. ``duplicates`` counts exact copies added, ``overlapping`` says
    whether a fragment overlapping another (not an exact copy) was added. ``completions`` is
    how many times a receiver that reassembles as RFC 5722 and Linux do (exact duplicates
    tolerated, any other overlap discards everything held; a fragment arriving after the
    datagram completed starts it anew) puts the whole datagram together: 1 for a plain train,
    0 when an overlap came before the end, sometimes 2 when duplicates follow completion.
    """

    datagram: bytes
    fragments: tuple[bytes, ...]
    duplicates: int
    overlapping: bool
    completions: int


def reassembly_model(size: int, arrivals: list[tuple[int, int]]) -> list[str]:
    """What a reassembler must do with fragments of one ``size``-byte payload, as plainly as
    possible: per arrival (start, stop), "held", "duplicate", "discarded" (it overlaps a held
    piece: everything held goes, RFC 5722) or "complete"."""
    held: set[tuple[int, int]] = set()
    outcomes = []
    for start, stop in arrivals:
        if (start, stop) in held:
            outcomes.append("duplicate")
        elif any(a < stop and start < b for a, b in held):
            held.clear()
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


def _fragment(whole: Ipv4Packet, data: bytes, start: int, stop: int) -> bytes:
    # RFC 791 3.2: every fragment but the last has MF set; options go in the first fragment only
    # (the ones generated here are not "copied" ones in practice: the receiver ignores them).
    return bytes(Ipv4Packet(
        whole.source, whole.destination, whole.protocol, data[start:stop], ttl=whole.ttl,
        identification=whole.identification, more_fragments=stop < len(data),
        fragment_offset=start // 8, type_of_service=whole.type_of_service,
        options=whole.options if start == 0 else b"",
    ))


@st.composite
def fragment_trains(
    draw: st.DrawFn,
    datagrams: SearchStrategy[bytes] | SearchStrategy[Ipv4Packet] | None = None,
    *,
    largest_fragment: int = ETHERNET_MTU,
    shuffle: bool = True,
    duplicates: bool = False,
    overlaps: bool = False,
    medium: Medium = "ip",
    source_mac: MacParameter = None,
    destination_mac: MacParameter = None,
) -> FragmentTrain:
    """A datagram cut into fragments of at most ``largest_fragment`` bytes (IPv4 header
    included; data in multiples of 8 but the last), in any order (``shuffle``; shrinks to
    in order and to the largest fragments), with exact duplicates added on request and one
    overlapping fragment on request (sent before the datagram could be complete).

    ``datagrams`` is a strategy of unfragmented datagrams (``Ipv4Packet`` values or bytes, such
    as ``echo_requests(medium="ip", max_size=65507)``); by default echo requests between
    documentation addresses with 1 to 4000 bytes of data. With ``medium="ethernet"`` every
    fragment is put in a frame from ``source_mac`` to ``destination_mac``.
    """
    _check_medium(medium)
    if datagrams is None:
        datagrams = echo_requests(medium="ip", min_size=1, max_size=4000)
    drawn = draw(datagrams)
    whole = Ipv4Packet.parse(drawn) if isinstance(drawn, (bytes, bytearray, memoryview)) else drawn
    if whole.is_fragment:
        raise ValueError("fragment_trains needs unfragmented datagrams")
    data = bytes(whole.payload)
    assume(len(data) > 8)  # one fragment of 8 bytes or less is not fragmented at all
    room = (largest_fragment - MINIMUM_HEADER_LENGTH - len(whole.options)) // 8
    if room < 1:
        raise ValueError(f"fragments of {largest_fragment} bytes carry no data")
    # Cut points: each piece as large as allowed minus a drawn number of 8-byte units (shrinks
    # to the fewest, largest pieces); at least two pieces.
    pieces: list[tuple[int, int]] = []
    start = 0
    while start < len(data):
        units = min(room, (len(data) - 1) // 8) if start == 0 else room
        size = 8 * (units - draw(st.integers(0, units - 1)))
        stop = min(start + size, len(data))
        pieces.append((start, stop))
        start = stop
    order = list(draw(st.permutations(pieces))) if shuffle else list(pieces)
    copies = 0
    if duplicates:
        for _ in range(draw(st.integers(1, 3))):
            piece = draw(st.sampled_from(pieces))
            order.insert(draw(st.integers(0, len(order))), piece)
            copies += 1
    overlapping = False
    if overlaps:
        units = (len(data) + 7) // 8
        first = draw(st.integers(0, units - 1))
        last = draw(st.integers(first + 1, units))
        extra = (first * 8, min(last * 8, len(data)))
        assume(extra not in pieces and extra != (0, len(data)))
        # No later than the fragment that would complete the datagram, so that the overlap is
        # seen while it is incomplete (after it, the overlap would only start a new one), and
        # where it really overlaps what is held: an extra piece that merely fits beside the
        # held ones (0-16 before 16-17, with 0-8 and 8-16 still to come) completes the datagram
        # with no overlap at all (found by the property suite).
        completing = reassembly_model(len(data), order).index("complete")
        places = [at for at in range(completing + 1)
                  if "complete" not in reassembly_model(len(data), [*order[:at], extra, *order[at:]])]
        assume(places)
        order.insert(draw(st.sampled_from(places)), extra)
        overlapping = True
    completions = reassembly_model(len(data), order).count("complete")
    fragments = tuple(_fragment(whole, data, a, b) for a, b in order)
    if medium == "ethernet":
        destination = draw(_strategy(destination_mac, mac_addresses(), MacAddress))
        source = draw(_strategy(source_mac, mac_addresses(), MacAddress))
        fragments = tuple(in_ethernet(fragment, destination, source) for fragment in fragments)
    return FragmentTrain(bytes(whole), fragments, copies, overlapping, completions)


# ---------------------------------------------------------------------------- mutators

#: What ``broken`` can break, one per example (see ``broken`` for each one's drop reasons).
BREAKAGES = (
    "truncated",           # cut short inside one layer (Ethernet, ARP, IPv4, or ICMP/UDP in a fixed-up IPv4)
    "flipped_bit",         # one bit flipped in a checksummed region (the IPv4 header, the ICMP message)
    "ipv4_checksum",       # a wrong IPv4 header checksum
    "icmp_checksum",       # a wrong ICMP checksum
    "ipv4_total_length",   # an IPv4 total length that lies (past the buffer, or below the header)
    "ipv4_header_length",  # an IHL that lies (below 5, or past the total length)
    "udp_length",          # a UDP length that lies (below 8, or past the datagram)
    "arp_address_length",  # ARP hardware or protocol address length other than 6 and 4
    "ip_version",          # an IP version other than 4
)

_IPV4_PARSE_ERRORS = frozenset({"ipv4_bad_version", "ipv4_bad_header_length", "ipv4_truncated",
                                "ipv4_bad_total_length", "ipv4_bad_checksum"})


@dataclass(frozen=True, slots=True)
class Broken:
    """A frame (or datagram) with exactly one thing broken.

    ``kind`` is one of ``BREAKAGES``, ``detail`` says what exactly (``"IPv4 total length 84 ->
    0"``), ``original`` is the valid frame it was made from. ``drop_reasons`` are the counters
    a tapstack host (``TapHost`` for ``"ethernet"``, ``TunHost`` without packet information
    for ``"ip"``) may count for it when the original was addressed to that host: exactly one
    for most kinds, several for a flipped bit (which check notices it first depends on the
    bit). Any other stack should drop it too: nothing in it may be answered.
    """

    frame: bytes
    original: bytes
    kind: str
    detail: str
    drop_reasons: frozenset[str]

    @property
    def drop_reason(self) -> str | None:
        """The one drop reason, when there is exactly one."""
        return next(iter(self.drop_reasons)) if len(self.drop_reasons) == 1 else None


@dataclass(frozen=True, slots=True)
class _Layout:
    """Where the layers of a valid frame are."""

    ip: int | None = None  # offset of the IPv4 header
    header_length: int = 0
    total_length: int = 0
    protocol: int = -1
    fragment: bool = False
    arp: int | None = None  # offset of the ARP packet

    @property
    def transport(self) -> int:
        assert self.ip is not None
        return self.ip + self.header_length

    @property
    def end(self) -> int:
        assert self.ip is not None
        return self.ip + self.total_length


def _layout(frame: bytes, medium: str) -> _Layout:
    start = 0
    if medium == "ethernet":
        if len(frame) < ETHERNET_HEADER:
            raise ValueError(f"broken() needs valid frames, got {len(frame)} bytes")
        ethertype = int.from_bytes(frame[12:14], "big")
        if ethertype == EtherType.ARP:
            return _Layout(arp=ETHERNET_HEADER)
        if ethertype != EtherType.IPV4:
            return _Layout()
        start = ETHERNET_HEADER
    packet = Ipv4Packet.parse(frame[start:])  # valid by contract: a ParseError here is the caller's
    return _Layout(ip=start, header_length=packet.header_length, total_length=packet.total_length,
                   protocol=packet.protocol, fragment=packet.is_fragment)


def _applicable(layout: _Layout, frame: bytes) -> list[str]:
    kinds = ["truncated"]
    if layout.arp is not None:
        kinds.append("arp_address_length")
    if layout.ip is not None:
        kinds += ["flipped_bit", "ipv4_checksum", "ipv4_total_length", "ipv4_header_length", "ip_version"]
        whole = not layout.fragment
        if whole and layout.protocol == IpProto.ICMP and layout.total_length - layout.header_length >= ICMP_HEADER:
            kinds.append("icmp_checksum")
        if whole and layout.protocol == IpProto.UDP and layout.total_length - layout.header_length >= UDP_HEADER:
            kinds.append("udp_length")
    return [kind for kind in BREAKAGES if kind in kinds]


def _wrong_checksum(old: int, delta: int) -> int:
    """A checksum value that does not verify where ``old`` did. In ones' complement 0x0000 and
    0xFFFF are the same number, so swapping one for the other would still verify."""
    new = old ^ delta
    if new % 0xFFFF == old % 0xFFFF:
        new = old ^ 0x0001
    return new


def _fix_ipv4_checksum(frame: bytearray, ip: int, header_length: int) -> None:
    frame[ip + 10:ip + 12] = b"\0\0"
    frame[ip + 10:ip + 12] = internet_checksum(bytes(frame[ip:ip + header_length])).to_bytes(2, "big")


@st.composite
def _broken(draw: st.DrawFn, frames: SearchStrategy[bytes], kinds: tuple[str, ...] | None,
            medium: str) -> Broken:
    original = bytes(draw(frames))
    layout = _layout(original, medium)
    applicable = [kind for kind in _applicable(layout, original) if kinds is None or kind in kinds]
    assume(applicable)
    kind = draw(st.sampled_from(applicable))
    frame = bytearray(original)
    ip = layout.ip
    reasons: set[str]
    if kind == "truncated":
        layers = []
        if medium == "ethernet":
            layers.append("Ethernet")
        if layout.arp is not None:
            layers.append("ARP")
        if ip is not None:
            layers.append("IPv4")
            if not layout.fragment and layout.protocol in (IpProto.ICMP, IpProto.UDP) \
                    and layout.total_length > layout.header_length:
                layers.append("ICMP" if layout.protocol == IpProto.ICMP else "UDP")
        layer = draw(st.sampled_from(layers))
        if layer == "Ethernet":
            cut = draw(st.integers(0, ETHERNET_HEADER - 1))
            reasons = {"ethernet_runt"}
        elif layer == "ARP":
            cut = ETHERNET_HEADER + draw(st.integers(0, 27))
            reasons = {"arp_truncated"}
        elif layer == "IPv4":
            assert ip is not None
            cut = ip + draw(st.integers(0, layout.total_length - 1))
            # A TUN without packet information reads the version from the first byte.
            reasons = {"tun_not_ipv4"} if medium == "ip" and cut == 0 else {"ipv4_truncated"}
        else:
            # The message cut short inside a datagram whose header says so: only the message
            # (its checksum or its own length) can tell.
            assert ip is not None
            transport = layout.transport
            size = layout.total_length - layout.header_length
            keep = draw(st.integers(0, size - 1))
            message = bytes(frame[transport:transport + keep])
            if layer == "ICMP" and keep >= ICMP_HEADER and internet_checksum(message) == 0:
                keep %= ICMP_HEADER  # the bytes cut were zeros the checksum cannot see: cut the header
                message = message[:keep]
            frame[ip + 2:ip + 4] = (layout.header_length + keep).to_bytes(2, "big")
            _fix_ipv4_checksum(frame, ip, layout.header_length)
            del frame[transport + keep:]
            if layer == "ICMP":
                reasons = {"icmp_truncated" if keep < ICMP_HEADER else "icmp_bad_checksum"}
            else:
                reasons = {"udp_truncated" if keep < UDP_HEADER else "udp_bad_length"}
            cut = len(frame)
        del frame[cut:]
        detail = f"{layer}: cut at byte {cut} of {len(original)}"
    elif kind == "flipped_bit":
        assert ip is not None
        regions = [(ip, ip + layout.header_length, "IPv4 header")]
        if "icmp_checksum" in _applicable(layout, original):
            regions.append((layout.transport, layout.end, "ICMP message"))
        start, stop, name = draw(st.sampled_from(regions))
        bit = draw(st.integers(0, 8 * (stop - start) - 1))
        frame[start + bit // 8] ^= 0x80 >> (bit % 8)
        detail = f"{name}: bit {bit % 8} of byte {bit // 8} flipped"
        if name == "ICMP message":
            reasons = {"icmp_bad_checksum"}
        else:
            reasons = set(_IPV4_PARSE_ERRORS)
            if 4 <= bit < 8:
                # A longer IHL can keep the header checksum right by chance (the words it takes
                # in may sum to zero): the next checks then read payload bytes as options, or
                # the ICMP message starts later than it did.
                reasons |= {"ipv4_bad_options", "icmp_bad_checksum", "icmp_truncated"}
            if medium == "ip" and bit < 4:
                reasons = {"tun_ipv6_not_supported" if frame[0] >> 4 == 6 else "tun_not_ipv4"}
    elif kind in ("ipv4_checksum", "icmp_checksum"):
        assert ip is not None
        at = ip + 10 if kind == "ipv4_checksum" else layout.transport + 2
        old = int.from_bytes(frame[at:at + 2], "big")
        new = _wrong_checksum(old, draw(st.integers(1, 0xFFFF)))
        frame[at:at + 2] = new.to_bytes(2, "big")
        detail = f"{'IPv4 header' if kind == 'ipv4_checksum' else 'ICMP'} checksum {old:#06x} -> {new:#06x}"
        reasons = {"ipv4_bad_checksum" if kind == "ipv4_checksum" else "icmp_bad_checksum"}
    elif kind == "ipv4_total_length":
        assert ip is not None
        available = len(frame) - ip  # Ethernet padding included: a lie within it goes unseen
        if available < MAXIMUM_TOTAL_LENGTH and draw(st.booleans()):
            new = draw(st.integers(available + 1, MAXIMUM_TOTAL_LENGTH))
            reasons = {"ipv4_truncated"}
        else:
            new = draw(st.integers(0, layout.header_length - 1))
            reasons = {"ipv4_bad_total_length"}
        frame[ip + 2:ip + 4] = new.to_bytes(2, "big")
        _fix_ipv4_checksum(frame, ip, layout.header_length)
        detail = f"IPv4 total length {layout.total_length} -> {new}"
    elif kind == "ipv4_header_length":
        assert ip is not None
        too_long = [ihl for ihl in range(6, 16) if 4 * ihl > layout.total_length]
        if too_long and draw(st.booleans()):
            ihl = draw(st.sampled_from(too_long))
            reasons = {"ipv4_truncated" if 4 * ihl > len(frame) - ip else "ipv4_bad_total_length"}
        else:
            ihl = draw(st.integers(0, 4))
            reasons = {"ipv4_bad_header_length"}
        frame[ip] = (frame[ip] & 0xF0) | ihl
        _fix_ipv4_checksum(frame, ip, layout.header_length)
        detail = f"IPv4 IHL {layout.header_length // 4} -> {ihl}"
    elif kind == "udp_length":
        transport = layout.transport
        size = layout.total_length - layout.header_length
        old = int.from_bytes(frame[transport + 4:transport + 6], "big")
        new = draw(st.one_of(st.integers(0, UDP_HEADER - 1), st.integers(size + 1, 0xFFFF)))
        frame[transport + 4:transport + 6] = new.to_bytes(2, "big")
        reasons = {"udp_bad_length"}
        detail = f"UDP length {old} -> {new}"
    elif kind == "arp_address_length":
        assert layout.arp is not None
        field = draw(st.sampled_from(["hardware", "protocol"]))
        at, right = (layout.arp + 4, 6) if field == "hardware" else (layout.arp + 5, 4)
        new = draw(st.integers(0, 255).filter(lambda value: value != right))
        frame[at] = new
        reasons = {"arp_bad_address_length"}
        detail = f"ARP {field} address length {right} -> {new}"
    else:  # ip_version
        assert ip is not None
        version = draw(st.sampled_from([6, 0, 5, 15, *range(1, 4), *range(7, 15)]))
        frame[ip] = (version << 4) | (frame[ip] & 0x0F)
        _fix_ipv4_checksum(frame, ip, layout.header_length)
        detail = f"IP version 4 -> {version}"
        if medium == "ip":
            reasons = {"tun_ipv6_not_supported" if version == 6 else "tun_not_ipv4"}
        else:
            reasons = {"ipv4_bad_version"}
    return Broken(bytes(frame), original, kind, detail, frozenset(reasons))


def broken(frames: SearchStrategy[bytes], kinds: list[str] | tuple[str, ...] | None = None, *,
           medium: Medium = "ethernet") -> SearchStrategy[Broken]:
    """Each valid frame from ``frames`` with exactly one thing broken, as a ``Broken``.

    ``kinds`` limits what may be broken (default: any of ``BREAKAGES`` that applies to the
    frame; a frame to which none of ``kinds`` applies is rejected, so ``kinds=["udp_length"]``
    on echo requests finds nothing). ``medium`` says what ``frames`` gives: Ethernet frames or
    bare IPv4 datagrams. Drop reasons, for a tapstack host the original was addressed to:

    ====================  ============================================================
    truncated             ``ethernet_runt``, ``arp_truncated``, ``ipv4_truncated`` (or
                          ``tun_not_ipv4`` for nothing left on a TUN); inside ICMP/UDP
                          with the IPv4 header fixed up: ``icmp_truncated`` /
                          ``icmp_bad_checksum``, ``udp_truncated`` / ``udp_bad_length``
    flipped_bit           IPv4 header: one of ``ipv4_bad_version``,
                          ``ipv4_bad_header_length``, ``ipv4_truncated``,
                          ``ipv4_bad_total_length``, ``ipv4_bad_checksum``; ICMP message:
                          ``icmp_bad_checksum`` (RFC 1071: the checksum sees every
                          single-bit error)
    ipv4_checksum         ``ipv4_bad_checksum``
    icmp_checksum         ``icmp_bad_checksum``
    ipv4_total_length     ``ipv4_truncated`` (past the buffer) or ``ipv4_bad_total_length``
                          (below the header); the header checksum is fixed up
    ipv4_header_length    ``ipv4_bad_header_length`` (IHL < 5), or ``ipv4_truncated`` /
                          ``ipv4_bad_total_length`` (IHL past the datagram)
    udp_length            ``udp_bad_length``
    arp_address_length    ``arp_bad_address_length``
    ip_version            ``ipv4_bad_version`` (TUN: ``tun_ipv6_not_supported`` or
                          ``tun_not_ipv4``, read from the first nibble)
    ====================  ============================================================

    Lies that cannot be seen are never made: a total length within the Ethernet padding, a
    truncation that only removes zero bytes from an ICMP message (its checksum still verifies).
    """
    _check_medium(medium)
    if kinds is not None:
        unknown = set(kinds) - set(BREAKAGES)
        if unknown:
            raise ValueError(f"unknown breakages {sorted(unknown)}; known: {', '.join(BREAKAGES)}")
        kinds = tuple(kinds)
    return _broken(frames, kinds, medium)


# ---------------------------------------------------------------------------- IPv6 (issue 15)
#
# Read first: RFC 8200 (the header, extension headers and their option action bits), RFC 4443
# (ICMPv6), RFC 4861 4.3 (Neighbor Solicitation). Wire bytes in a ``medium`` as above: an
# Ethernet frame (EtherType 0x86DD; to a multicast destination, its 33:33 MAC, RFC 2464 7) or a
# bare IPv6 packet. Fragments are ``fragment_trains``' business (IPv4 only so far): none here.

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
                       medium: Medium = "ethernet") -> SearchStrategy[bytes]:
    """ICMPv6 echo requests (RFC 4443 4.1) with up to ``max_size`` bytes of data, the checksum
    right (``bad_checksum=True`` or a strategy of booleans: one bit of it flipped)."""
    _check_medium(medium)

    @st.composite
    def packets(draw: st.DrawFn) -> bytes:
        src, dst, smac, dmac, hops, tclass, flow = draw(_ipv6_common(source, destination, source_mac,
                                                                     destination_mac, hop_limit))
        message = _icmpv6_echo(src, dst, draw(st.integers(0, 0xFFFF)), draw(st.integers(0, 0xFFFF)),
                               draw(payloads(max_size)), draw(_strategy(bad_checksum, st.booleans())))
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


# ---------------------------------------------------------------------------- TCP (issue 16)
# In their own module (stack/testing/strategies_tcp.py), re-exported here.
from stack.testing.strategies_tcp import *  # noqa: E402,F401,F403
from stack.testing.strategies_tcp import __all__ as _TCP_ALL  # noqa: E402

__all__ += _TCP_ALL
