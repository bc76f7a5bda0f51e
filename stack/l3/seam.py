"""What the network layer hands the protocols above it (ICMP here, UDP and later TCP in l4).

Read first: RFC 1122 3.2.1.3 (how a datagram is addressed to a host); RFC 768 and RFC 793 3.1
(the pseudo-header a transport checksum covers).

The transport layer (``stack.l4``) imports only this module of l3: a datagram for us as the
protocol handlers see it (``Received``), how it was addressed (``Delivery``), the protocol
numbers (``IpProto``) and the pseudo-headers (IPv4 below; ``transport_pseudo_header`` picks the
family, so a transport codec such as TCP's works over IPv6 unchanged).

    +--------+--------+--------+--------+
    |          source address           |
    +--------+--------+--------+--------+
    |        destination address        |
    +--------+--------+--------+--------+
    |  zero  |protocol|     length      |
    +--------+--------+--------+--------+
"""

from __future__ import annotations

import struct
from dataclasses import dataclass
from enum import Enum
from ipaddress import IPv4Address, IPv6Address

from stack.buffers import Buffer
from stack.l3.ipv4 import IpProto, Ipv4Packet
from stack.l3.ipv6 import pseudo_header as ipv6_pseudo_header

__all__ = ["Delivery", "IpProto", "PSEUDO_HEADER", "Received", "pseudo_header", "transport_pseudo_header"]

PSEUDO_HEADER = struct.Struct("!4s4sxBH")


class Delivery(Enum):
    """How a datagram was addressed to us (RFC 1122 3.2.1.3)."""

    UNICAST = "unicast"
    BROADCAST = "broadcast"
    MULTICAST = "multicast"


@dataclass(frozen=True, slots=True)
class Received:
    """A datagram for us, as the protocol handlers see it: its value, its bytes as received
    (what an ICMP error quotes), and how it was addressed."""

    packet: Ipv4Packet
    raw: Buffer
    delivery: Delivery
    link_broadcast: bool = False


def pseudo_header(source: IPv4Address, destination: IPv4Address, protocol: int, length: int) -> bytes:
    """The 12 bytes in front of a UDP or TCP segment that its checksum covers too (RFC 768)."""
    return PSEUDO_HEADER.pack(source.packed, destination.packed, protocol, length)


def transport_pseudo_header(source: IPv4Address | IPv6Address, destination: IPv4Address | IPv6Address,
                            protocol: int, length: int) -> bytes:
    """The pseudo-header of either family: RFC 9293 3.1 for IPv4 (12 bytes), RFC 8200 8.1 for
    IPv6 (40 bytes). Both addresses are of one family."""
    if isinstance(source, IPv6Address):
        return ipv6_pseudo_header(source, destination, length, protocol)  # type: ignore[arg-type]
    return PSEUDO_HEADER.pack(source.packed, destination.packed, protocol, length)
