"""Composition root: a whole host, sans-I/O. ``TapHost`` is Ethernet + ARP + IPv4 + ICMP.

The link layer (l2) and the network layer (l3) never import each other; this module hands one
to the other. Every method takes ``now`` and returns the frames to send, each a list of buffers
(headers and payload views, in wire order) for one ``writev``.
"""

from __future__ import annotations

from collections.abc import Iterable
from ipaddress import IPv4Address, IPv4Interface

from stack.buffers import Buffer, Frame, Payload
from stack.l2.ethernet import MacAddress
from stack.l2.link import EthernetLink
from stack.l2.neighbor import NeighborCache
from stack.l3.host import EchoReply, Ipv4Host
from stack.stats import Stats


def mac_for(address: IPv4Address) -> MacAddress:
    """A locally administered unicast MAC derived from an IPv4 address: 02:00 + its 4 bytes."""
    return MacAddress(b"\x02\x00" + address.packed)


class TapHost:
    """A host on an Ethernet link (a TAP device): answers ARP and ping, and can ping.

    ``ips`` are interfaces with a prefix length (``"192.0.2.2/24"``); ``mac`` defaults to one
    derived from the first address (``mac_for``). ``gateway`` is the next hop for off-link
    destinations. ``answer_broadcast_echo`` answers echo requests sent to a broadcast or the
    all-hosts multicast address (ignored by default, like Linux).
    """

    medium = "ethernet"

    def __init__(
        self,
        ips: Iterable[IPv4Interface | str],
        mac: MacAddress | str | None = None,
        gateway: IPv4Address | str | None = None,
        answer_broadcast_echo: bool = False,
        neighbor_cache: NeighborCache | None = None,
    ) -> None:
        interfaces = [IPv4Interface(ip) for ip in ips]
        if not interfaces:
            raise ValueError("a host needs at least one IPv4 address")
        self.stats = Stats()
        self.ip = Ipv4Host(
            interfaces,
            self.stats,
            gateway=IPv4Address(gateway) if gateway is not None else None,
            answer_broadcast_echo=answer_broadcast_echo,
        )
        self.mac = MacAddress(mac) if mac is not None else mac_for(interfaces[0].ip)
        if self.mac.is_multicast:
            raise ValueError(f"{self.mac} is a multicast address and cannot be a host's MAC")
        self.link = EthernetLink(self.mac, self.ip, self.ip.addresses, self.stats, neighbor_cache)

    @property
    def addresses(self) -> list[IPv4Address]:
        return self.ip.addresses

    @property
    def interfaces(self) -> list[IPv4Interface]:
        return self.ip.interfaces

    def receive(self, frame: Buffer, now: float) -> list[Frame]:
        """One frame from the wire in; the frames to send in answer out."""
        self.stats.count("rx_frames")
        out = self.link.receive(frame, now)
        self.stats.count("tx_frames", len(out))
        return out

    def poll(self, now: float) -> list[Frame]:
        """Run the timers that are due: start-up announcements, ARP retries and expiry."""
        out = self.link.poll(now)
        for outbound in self.ip.poll(now):
            out.extend(self.link.send(outbound, now))
        self.stats.count("tx_frames", len(out))
        return out

    def next_deadline(self, now: float) -> float | None:
        """When ``poll`` should next be called, or None when no timer is running."""
        deadlines = [d for d in (self.link.next_deadline(now), self.ip.next_deadline(now)) if d is not None]
        return min(deadlines, default=None)

    def ping(self, destination: IPv4Address | str, now: float, identifier: int = 0,
             sequence: int = 0, payload: Payload = b"") -> list[Frame]:
        """Send one ICMP echo request; the reply shows up in ``events`` as an ``EchoReply``.

        If the next hop is not resolved yet, the request waits while ARP resolves it.
        """
        out: list[Frame] = []
        for outbound in self.ip.ping(destination, now, identifier, sequence, payload):
            out.extend(self.link.send(outbound, now))
        self.stats.count("tx_frames", len(out))
        return out

    @property
    def events(self):
        """Echo replies to our own pings, oldest first (a deque; pop them as you read them)."""
        return self.ip.events

    def take_echo_replies(self, identifier: int) -> list[EchoReply]:
        return self.ip.take_echo_replies(identifier)

    def __repr__(self) -> str:
        ips = ", ".join(str(i) for i in self.interfaces)
        return f"TapHost(mac={self.mac}, ips=[{ips}])"
