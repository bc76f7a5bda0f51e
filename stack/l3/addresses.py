"""Our IPv4 addresses and every rule that asks about them: delivery, source, on-link, next hop.

Read first: RFC 1122 3.2.1.3 (addressing), 3.3.1 (routing outbound); RFC 919 and RFC 922
(broadcasts); RFC 3021 (/31); RFC 5227 2.1 (an address not in use yet).

``Addresses`` owns every representation of the host's addresses -- the interfaces, the ones in
use, the integer and 4-byte tables the echo fast path reads, the broadcast addresses, the
networks for the on-link test -- so nothing else keeps a copy in step by hand. The general path
asks with ``IPv4Address`` values, the fast path with the 4 bytes and integer off the wire; both
forms answer from the same tables.
"""

from __future__ import annotations

from collections.abc import Iterable
from ipaddress import IPv4Address, IPv4Interface

from stack.l3.seam import Delivery
from stack.seam import LIMITED_BROADCAST

#: RFC 1112 4: the all-hosts group, which every multicast-capable host joins.
ALL_HOSTS_GROUP = IPv4Address("224.0.0.1")
#: Peer addresses the fast path remembers as ``IPv4Address`` values (a pinged host hears from a
#: few peers again and again); past this many the memo starts afresh.
ADDRESS_MEMO_CAPACITY = 256


class Addresses:
    """The addresses of one interface (one or more), its gateway, and the rules about them."""

    def __init__(self, interfaces: Iterable[IPv4Interface], gateway: IPv4Address | None = None,
                 point_to_point: bool = False) -> None:
        """``point_to_point``: the interface is a point-to-point link (a TUN device), so every
        destination is reached by sending into it; there is no next hop to choose."""
        self.interfaces = list(interfaces)  # none: an IPv6-only host, whose IPv4 is off
        self.addresses = [interface.ip for interface in self.interfaces]
        self.gateway = gateway
        self.point_to_point = point_to_point
        # Sets hold ints: looking an int up is several times cheaper than an IPv4Address.
        self._configured = frozenset(int(address) for address in self.addresses)
        #: Our addresses in use (``set_usable``), as integers.
        self.usable = set(self._configured)
        #: The same addresses by their 4 wire bytes: the fast path finds ours without converting.
        self.usable_packed = {address.packed: address for address in self.addresses}
        # RFC 919 / RFC 922: the limited broadcast and each subnet's directed broadcast.
        self._broadcast = {int(LIMITED_BROADCAST)} | {
            int(interface.network.broadcast_address)
            for interface in self.interfaces
            if interface.network.prefixlen < 31  # RFC 3021: a /31 has no broadcast address
        }
        # On-link test in integers: (network address, netmask) -> our addresses on it, one entry
        # per network (a LAN of thousands of addresses in one /24 is one test, not thousands).
        self._networks: dict[tuple[int, int], list[IPv4Address]] = {}
        for interface in self.interfaces:
            key = (int(interface.network.network_address), int(interface.network.netmask))
            self._networks.setdefault(key, []).append(interface.ip)
        self._seen: dict[bytes, IPv4Address] = {}
        #: ``reply_next_hop``'s answers for sources it found good, by their 4 bytes.
        self._reply_routes: dict[bytes, IPv4Address] = {}
        if gateway is not None and not self.on_link(gateway):
            raise ValueError(f"gateway {gateway} is not on any of our networks")

    # ------------------------------------------------------------------ ours

    def owns(self, address: IPv4Address) -> bool:
        """One of our addresses, and in use (not withdrawn by ``set_usable``)."""
        return int(address) in self.usable

    def set_usable(self, address: IPv4Address, usable: bool) -> None:
        """Use one of our addresses, or stop using it: the link withdraws an address while it
        probes for it and for good when another host has it (RFC 5227 2.1)."""
        if int(address) not in self._configured:
            raise ValueError(f"{address} is not one of this host's addresses")
        if usable:
            self.usable.add(int(address))
            self.usable_packed[address.packed] = address
        else:
            self.usable.discard(int(address))
            self.usable_packed.pop(address.packed, None)
        self._reply_routes.clear()  # "a source that is ours" has changed

    def delivery(self, destination: IPv4Address) -> Delivery | None:
        """How a datagram to ``destination`` is for us, or None when it is not (RFC 1122 3.2.1.3).
        (The fast path's form: a unicast destination is a key of ``usable_packed``.)"""
        address = int(destination)
        if address in self.usable:
            return Delivery.UNICAST
        if address in self._broadcast:
            return Delivery.BROADCAST
        if destination == ALL_HOSTS_GROUP:
            return Delivery.MULTICAST
        return None

    def martian_source(self, source: IPv4Address) -> str | None:
        """RFC 1122 3.2.1.3: a host MUST silently discard a datagram with an invalid source.
        The drop reason, or None for a valid source."""
        return self.martian_source_value(int(source))

    def martian_source_value(self, address: int) -> str | None:
        """``martian_source`` for an address as an integer."""
        first_octet = address >> 24
        if first_octet == 0:
            return "ipv4_martian_source"  # {0, *}: only while a host learns its own address
        if first_octet == 127:
            return "ipv4_martian_source"  # 3.2.1.3 (g): 127/8 MUST NOT appear outside a host
        if 224 <= first_octet <= 239 or address in self._broadcast:
            return "ipv4_martian_source"  # multicast or broadcast: a source is a single host
        if address in self.usable:
            return "ipv4_source_is_ours"  # Linux: a local address as source is a martian
        return None

    def preferred_source(self, destination: IPv4Address) -> IPv4Address:
        """Our first address in use on the destination's network; else our first address in
        use (Linux does alike); else, when none is in use yet, our first address."""
        value = int(destination)
        for (network, netmask), addresses in self._networks.items():
            if value & netmask == network:
                for address in addresses:
                    if int(address) in self.usable:
                        return address
        for address in self.addresses:
            if int(address) in self.usable:
                return address
        if not self.addresses:
            raise ValueError("the host has no IPv4 address")
        return self.addresses[0]

    # ------------------------------------------------------------------ routing

    def on_link(self, address: IPv4Address) -> bool:
        """On one of our networks."""
        return self.on_link_value(int(address))

    def on_link_value(self, value: int) -> bool:
        """``on_link`` for an address as an integer."""
        for network, netmask in self._networks:
            if value & netmask == network:
                return True
        return False

    def next_hop(self, destination: IPv4Address) -> IPv4Address | None:
        """RFC 1122 3.3.1.1: on-link destinations directly, others through the gateway (None:
        no route).

        On a point-to-point link everything goes to the one peer: the next hop is then only a
        label (nothing resolves it), and we use the destination itself.
        """
        return self.next_hop_packed(destination.packed, int(destination), destination)

    def next_hop_packed(self, destination: bytes, value: int,
                        address: IPv4Address | None = None) -> IPv4Address | None:
        """``next_hop`` for an address as its 4 wire bytes and its integer (the fast path's
        form), which builds its ``IPv4Address`` only when it is the next hop, remembered
        (ADDRESS_MEMO_CAPACITY of them): building one costs more than the rest of an echo
        reply's addressing."""
        if not (self.point_to_point or self.on_link_value(value)):
            return self.gateway
        if address is None:
            address = self._seen.get(destination)
            if address is None:
                if len(self._seen) >= ADDRESS_MEMO_CAPACITY:
                    self._seen.clear()
                address = self._seen[destination] = IPv4Address(destination)
        return address

    def reply_next_hop(self, source: bytes) -> IPv4Address | None:
        """Where an answer to a datagram from ``source`` (its 4 wire bytes) goes: the next hop,
        or None when the source is a martian (``martian_source``) or has no route (``next_hop``).
        Remembered for good sources (ADDRESS_MEMO_CAPACITY of them, forgotten when our addresses
        change), as a route cache: a ping's every request comes from the same source."""
        next_hop = self._reply_routes.get(source)
        if next_hop is not None:
            return next_hop
        value = int.from_bytes(source, "big")
        if self.martian_source_value(value) is not None:
            return None
        next_hop = self.next_hop_packed(source, value)
        if next_hop is not None:
            if len(self._reply_routes) >= ADDRESS_MEMO_CAPACITY:
                self._reply_routes.clear()
            self._reply_routes[source] = next_hop
        return next_hop

    def route(self, destination: IPv4Address) -> IPv4Address:
        """The next hop for a datagram we originate; ValueError when we cannot send there."""
        if self.delivery(destination) is not None or self.martian_source(destination):
            raise ValueError(f"cannot send to {destination}: not a unicast address of another host")
        next_hop = self.next_hop(destination)
        if next_hop is None:
            raise ValueError(f"no route to {destination}: it is off the host's networks and no gateway is set")
        return next_hop
