"""The small typed seam between the link layer (l2) and the network layer (l3).

l2 and l3 never import each other: a link hands datagrams up through the ``deliver`` it is given
(``stack.node`` passes the one handover, which calls ``NetworkLayer.receive``) and l3 hands
datagrams down as ``Outbound`` values. ``stack.node`` wires one to the other.
"""

from __future__ import annotations

from ipaddress import IPv4Address, IPv6Address
from typing import NamedTuple, Protocol

from stack.buffers import Buffer, Frame

#: 255.255.255.255 (RFC 919): a destination for the network layer, never a sender for the link's
#: ARP; both layers read it from here.
LIMITED_BROADCAST = IPv4Address("255.255.255.255")


class Outbound(NamedTuple):
    """A datagram the network layer wants sent, and the neighbour it goes to next.

    ``next_hop`` is the destination itself when it is on-link, else the gateway (RFC 1122
    3.3.1). ``datagram`` is the IPv4 or IPv6 datagram as buffers in wire order. ``source`` is the one
    of our addresses it is sent from (a link whose addresses have MACs of their own sends it
    from that address's MAC).

    (A NamedTuple rather than a frozen dataclass: one is built for every datagram sent, and a
    frozen dataclass's construction costs several times more.)
    """

    next_hop: IPv4Address | IPv6Address
    datagram: Frame
    source: IPv4Address | IPv6Address | None = None
    #: IPv6 on an Ethernet link: the MAC the datagram goes to, as its 6 bytes, resolved by the
    #: network layer itself (Neighbor Discovery is ICMPv6, RFC 4861; a multicast destination's
    #: MAC comes from the link's own rule, RFC 2464 7, which the host hands the network layer).
    #: None for IPv4 (the link resolves the next hop with ARP) and on point-to-point links.
    link_destination: bytes | None = None


class NetworkLayer(Protocol):
    """What the link layer needs from the network layer above it."""

    def receive(self, datagram: Buffer, now: float, link_broadcast: bool = False) -> list[Outbound]:
        """Take one datagram from the link; return the datagrams to send in answer."""
        ...

    def owns(self, address: IPv4Address) -> bool:
        """True when ``address`` is one of this host's unicast addresses (ARP answers for it)."""
        ...

    def own_address(self, packed: bytes) -> IPv4Address | None:
        """``owns`` for an address as the 4 bytes ARP carries: that address if ours, else None."""
        ...

    def preferred_source(self, destination: IPv4Address) -> IPv4Address:
        """Which of our addresses to speak from towards ``destination`` (also in ARP requests)."""
        ...

    def set_usable(self, address: IPv4Address, usable: bool) -> None:
        """Start or stop using one of our addresses (RFC 5227: while it is probed, or when
        another host turned out to have it). An unusable address is not ours to receive on."""
        ...
