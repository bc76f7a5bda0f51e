"""Hypothesis strategies for the wire values, built from simple primitives so they shrink well.

Addresses come from the documentation ranges (RFC 5737 for IPv4; MACs 02:xx:xx:xx:xx:xx,
locally administered unicast) unless ``any_address=True``. Other fields range over everything
the codec can *build*: unknown code points included, TTL 1-255 (a TTL of 0 cannot be sent,
RFC 1122 3.2.1.7). Payloads are usually small (up to 64 bytes); about one example in sixteen
draws a size anywhere up to the limit, so 65535-byte datagrams are tried too.

Hypothesis is a test dependency: nothing in ``stack`` imports this module.
"""

from __future__ import annotations

from ipaddress import IPv4Address

from hypothesis import strategies as st
from hypothesis.strategies import SearchStrategy

from stack.l2.arp import ArpOp, ArpPacket
from stack.l2.ethernet import EtherType, EthernetFrame, MacAddress
from stack.l3.icmp import IcmpMessage, IcmpType
from stack.l3.ipv4 import MAXIMUM_TOTAL_LENGTH, MINIMUM_HEADER_LENGTH, IpProto, Ipv4Packet

DOCUMENTATION_NETWORKS = ("192.0.2.0/24", "198.51.100.0/24", "203.0.113.0/24")  # RFC 5737
TYPICAL_PAYLOAD = 64  # most generated payloads are at most this long
ETHERNET_MTU = 1500  # the largest Ethernet II data field
MAXIMUM_OPTIONS = 40  # IHL 15: 60-byte header, 40 bytes of options


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
def _payloads(draw: st.DrawFn, max_size: int, typical: int) -> bytes:
    if max_size > typical and draw(st.integers(0, 15)) == 0:
        size = draw(st.integers(typical + 1, max_size))
        pattern = draw(st.binary(min_size=1, max_size=8))
        return (pattern * (size // len(pattern) + 1))[:size]
    return draw(st.binary(max_size=min(typical, max_size)))


def payloads(max_size: int = ETHERNET_MTU, *, typical: int = TYPICAL_PAYLOAD) -> SearchStrategy[bytes]:
    """Bytes of at most ``max_size``: usually random and at most ``typical`` long, sometimes a
    repeated pattern of any length up to ``max_size``. Shrinks towards ``b""``."""
    return _payloads(max_size, typical)


def sixteen_bits(*known: int) -> SearchStrategy[int]:
    """A 16-bit field: one of the ``known`` values (shrinks to the first), or any value."""
    return st.one_of(st.sampled_from(known), st.integers(0, 0xFFFF)) if known else st.integers(0, 0xFFFF)


def eight_bits(*known: int) -> SearchStrategy[int]:
    """An 8-bit field: one of the ``known`` values (shrinks to the first), or any value."""
    return st.one_of(st.sampled_from(known), st.integers(0, 0xFF)) if known else st.integers(0, 0xFF)


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
) -> SearchStrategy[ArpPacket]:
    """ARP packets (6-byte hardware, 4-byte protocol addresses). Operation, hardware and
    protocol types default to any 16-bit value, shrinking to request / Ethernet / IPv4.
    For the only kind tapstack answers, pass ``operation=st.just(ArpOp.REQUEST)``,
    ``hardware_type=st.just(1)``, ``protocol_type=st.just(EtherType.IPV4)``."""
    return st.builds(
        ArpPacket,
        operation=operation if operation is not None else sixteen_bits(*ArpOp),
        sender_mac=mac_addresses(any_address=any_address),
        sender_ip=ipv4_addresses(any_address=any_address),
        target_mac=mac_addresses(any_address=any_address),
        target_ip=ipv4_addresses(any_address=any_address),
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
    options of a consistent length, and a payload that keeps the total length <= 65535.
    With ``fragments=False``: DF may be set, MF clear and fragment offset 0."""
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


# The largest ICMP message that fits a 1500-byte Ethernet data field behind a 60-byte IPv4 header.
_ICMP_IN_ETHERNET = ETHERNET_MTU - 60


def arp_frames(*, any_address: bool = False) -> SearchStrategy[bytes]:
    """Whole Ethernet frames (as wire bytes, padded to 60) carrying an ARP packet."""
    return st.builds(
        lambda destination, source, packet: bytes(EthernetFrame(destination, source, EtherType.ARP, bytes(packet))),
        mac_addresses(any_address=any_address),
        mac_addresses(any_address=any_address),
        arp_packets(any_address=any_address),
    )


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
        lambda destination, source, packet: bytes(EthernetFrame(destination, source, EtherType.IPV4, bytes(packet))),
        mac_addresses(any_address=any_address),
        mac_addresses(any_address=any_address),
        datagram,
    )


def frames(*, any_address: bool = False) -> SearchStrategy[bytes]:
    """Whole valid Ethernet frames as wire bytes: ARP, or ICMP in IPv4 (shrinks towards ARP)."""
    return st.one_of(arp_frames(any_address=any_address), icmp_frames(any_address=any_address))
