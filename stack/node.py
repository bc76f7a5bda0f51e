"""Composition root: whole hosts, sans-I/O. ``TapHost`` is Ethernet + ARP + IPv4 + ICMP on a
TAP device; ``TunHost`` is the same IPv4 + ICMP host on a point-to-point TUN device, without a
link layer (as smoltcp's ``Medium::Ip``), optionally behind the packet-information header.

The link layer (l2) and the network layer (l3) never import each other; this module hands one
to the other, in one place for both hosts (``_Host._deliver``): the hosts differ only in the
link in front (``EthernetLink``, ``PointToPointLink``). Every method takes ``now`` and returns
the frames to send, each a list of buffers (headers and payload views, in wire order) for one
``writev``.
"""

from __future__ import annotations

import logging
from collections import deque
from collections.abc import Iterable
from ipaddress import IPv4Address, IPv4Interface
from typing import Any, NamedTuple

from stack.buffers import Buffer, Frame, Payload
from stack.choices import HostChoices
from stack.l2.conflict import ConflictDetector, Uniform
from stack.l2.ethernet import EtherType, MacAddress, frame_buffers
from stack.l2.link import EthernetLink, Link
from stack.l2.point_to_point import PointToPointLink
from stack.l2.neighbor import NeighborCache, Observer
from stack.l3.host import EchoReply, Ipv4Host
from stack.stats import Stats
from stack.seam import Outbound

log = logging.getLogger(__name__)


#: Amplification bound, at the default MTU of 1500 (docs/fuzzing.md "Amplification bound";
#: tests/core/test_fuzz_properties.py checks it on every generated sequence). One frame in causes at
#: most this many frames out: the 45 fragments of a 65,535-byte reply and one ARP request.
#: Datagrams held while ARP resolves count against the frame that caused them, not the ARP
#: reply that lets them go.
MAX_FRAMES_OUT_PER_FRAME_IN = 46
#: Over any sequence of frames of at most the MTU, bytes out <= bytes in + this much per frame in
#: (+ STARTUP_BYTES_PER_ADDRESS): an echo reply is the request plus Ethernet padding (<= 18), an
#: ICMP error quotes at most 548 bytes of what it answers behind 28 bytes of headers (<= 28), an
#: ARP reply is 60 bytes for a request of 42 or more, and resolving a neighbour costs at most
#: ARP_MAX_REQUESTS requests of 60 bytes (180).
EXTRA_BYTES_OUT_PER_FRAME_IN = 28 + 180
#: The two RFC 5227 announcements (60 bytes each) of every address, with no frame in.
STARTUP_BYTES_PER_ADDRESS = 2 * 60


def mac_for(address: IPv4Address) -> MacAddress:
    """A locally administered unicast MAC derived from an IPv4 address: 02:00 + its 4 bytes."""
    return MacAddress(b"\x02\x00" + address.packed)


class Verdict(NamedTuple):
    """What became of the last frame a host received: how many frames it sent in answer, and
    the reason it was dropped (with what the drop was about), or None when it was not."""

    replies: int
    drop_reason: str | None = None
    drop_detail: object = None

    @property
    def dropped(self) -> bool:
        return self.drop_reason is not None


class _Host:
    """One host shape: a link in front of an IPv4 host, with its counters, timers and pings.

    ``TapHost`` and ``TunHost`` differ only in their link (``EthernetLink``,
    ``PointToPointLink``). Frames come in through ``receive`` to the link; the link hands each
    IPv4 datagram up through ``_deliver``, the one handover, which sends the network layer's
    answers back down through the link.
    """

    medium: str
    choices: HostChoices
    ip: Ipv4Host
    link: Link
    stats: Stats

    def _start(self, stats: Stats) -> None:
        self.stats = stats
        #: The counters themselves: a frame's increments go straight to them (per frame, a
        #: method call costs more than the addition).
        self._counters = stats.counters
        self._replies = 0

    def receive(self, frame: Buffer, now: float) -> list[Frame]:
        """One frame from the device in; the frames to send in answer out (see ``verdict``)."""
        counters = self._counters
        counters["rx_frames"] += 1
        # The verdict of this frame: a drop while handling it sets ``last_drop`` again.
        self.stats.last_drop = None
        out = self.link.receive(frame, now)
        self._replies = replies = len(out)
        counters["tx_frames"] += replies
        return out

    @property
    def verdict(self) -> Verdict:
        """The verdict on the last frame ``receive`` took (built only when asked: a tracer)."""
        stats = self.stats
        if stats.last_drop is None:
            return Verdict(self._replies)
        return Verdict(self._replies, stats.last_drop, stats.last_drop_detail)

    def _deliver(self, datagram: Buffer, link_broadcast: bool, now: float) -> list[Frame]:
        """The handover: a datagram the link took goes up to the IPv4 host; its answers go back
        down through the link."""
        outbounds = self.ip.receive(datagram, now, link_broadcast)
        if len(outbounds) == 1:  # an echo reply: the common case, without the loop
            return self.link.send(outbounds[0], now)
        return self._frames(outbounds, now)

    def _frames(self, outbounds: list[Outbound], now: float) -> list[Frame]:
        send = self.link.send
        out: list[Frame] = []
        for outbound in outbounds:
            out += send(outbound, now)
        return out

    @property
    def addresses(self) -> list[IPv4Address]:
        return self.ip.addresses

    @property
    def interfaces(self) -> list[IPv4Interface]:
        return self.ip.interfaces

    @property
    def mtu(self) -> int:
        """The link MTU the host sends within (set it from the device: ``host.mtu = dev.mtu``)."""
        return self.ip.mtu

    @mtu.setter
    def mtu(self, value: int) -> None:
        if value < 68:  # RFC 791: every internet module must forward a 68-octet datagram
            raise ValueError(f"an IPv4 link MTU is at least 68, not {value}")
        self.ip.mtu = value

    def poll(self, now: float) -> list[Frame]:
        """Run the timers that are due: start-up announcements, ARP retries and expiry,
        reassembly expiry."""
        out = self.link.poll(now) + self._frames(self.ip.poll(now), now)
        self.stats.count("tx_frames", len(out))
        return out

    def next_deadline(self, now: float) -> float | None:
        """When ``poll`` should next be called, or None when no timer is running."""
        link, ip = self.link.next_deadline(now), self.ip.next_deadline(now)
        if link is None or ip is None:
            return ip if link is None else link
        return min(link, ip)

    def ping(self, destination: IPv4Address | str, now: float, identifier: int = 0,
             sequence: int = 0, payload: Payload = b"") -> list[Frame]:
        """Send one ICMP echo request; the reply shows up in ``events`` as an ``EchoReply``."""
        out = self._frames(self.ip.ping(destination, now, identifier, sequence, payload), now)
        self.stats.count("tx_frames", len(out))
        return out

    @property
    def events(self) -> deque[EchoReply]:
        """Echo replies to our own pings, oldest first (a deque; pop them as you read them)."""
        return self.ip.events

    def take_echo_replies(self, identifier: int) -> list[EchoReply]:
        return self.ip.take_echo_replies(identifier)


class TapHost(_Host):
    """A host on an Ethernet link (a TAP device): answers ARP and ping, and can ping.

    ``ips`` are interfaces with a prefix length (``"192.0.2.2/24"``). Without ``mac`` every
    address has a MAC of its own, derived from it (``mac_for``): a LAN of hosts on one device;
    with ``mac`` they all share it, like one NIC with several addresses. ``mac`` (the attribute)
    is the first address's. ``gateway`` is the next hop for off-link destinations.
    ``answer_broadcast_echo`` answers echo requests sent to a broadcast or the all-hosts
    multicast address (ignored by default, like Linux).

    The behaviours RFCs leave open are a ``HostChoices`` (stack/choices.py, each with its
    default and its RFC): pass one as ``choices``, or its fields as keyword arguments
    (``ttl=32``, ``arp_lifetime=5.0``, ``timestamp_reply=...``), or both where they agree.

    RFC 5227: every address is announced twice at start-up, two seconds apart, and defended
    when another host claims it. With ``probe`` each address is first probed for (three ARP
    probes) and used only when nobody answered; ``uniform(a, b)`` draws RFC 5227's random
    delays (pass ``random.Random(seed).uniform``; without it each delay is its lower bound).
    ``probe`` and ``answer_broadcast_echo`` are two of the choices.
    """

    medium = "ethernet"

    def __init__(
        self,
        ips: Iterable[IPv4Interface | str],
        mac: MacAddress | str | None = None,
        gateway: IPv4Address | str | None = None,
        neighbor_cache: NeighborCache | None = None,
        uniform: Uniform | None = None,
        choices: HostChoices | None = None,
        **keywords: Any,
    ) -> None:
        self.choices = choices = HostChoices.of(choices, keywords)
        interfaces = [IPv4Interface(ip) for ip in ips]
        if not interfaces:
            raise ValueError("a host needs at least one IPv4 address")
        if neighbor_cache is None:
            # RFC 1122 2.3.2.1: a cache entry MUST time out; how long is the host's choice.
            neighbor_cache = NeighborCache(lifetime=choices.arp_lifetime)
        self._start(Stats())
        self.ip = Ipv4Host(interfaces, self.stats, choices,
                           gateway=IPv4Address(gateway) if gateway is not None else None)
        addresses = self.ip.addresses
        if len(set(addresses)) != len(addresses):
            raise ValueError("an address is given twice")
        if mac is not None:
            shared = MacAddress(mac)
            if shared.is_multicast:
                raise ValueError(f"{shared} is a multicast address and cannot be a host's MAC")
            macs = dict.fromkeys(addresses, shared)
        else:
            macs = {address: mac_for(address) for address in addresses}
        self.mac = macs[addresses[0]]
        detector = ConflictDetector(addresses, set(macs.values()), probe=choices.probe, uniform=uniform)
        self.link: EthernetLink = EthernetLink(self.mac, self.ip, addresses, self.stats, neighbor_cache,
                                               macs=macs, detector=detector, deliver=self._deliver)

    def mac_of(self, address: IPv4Address | str) -> MacAddress:
        """The MAC one of our addresses answers from."""
        return self.link.macs[IPv4Address(address)]

    def observe_neighbours(self, observer: Observer | None) -> None:
        """Have ``observer(address, mac, now)`` told of every neighbour this host learns from
        ARP (None: nobody). One worker per queue tells its siblings (stack.runtime.workers)."""
        self.link.cache.observer = observer

    def learn(self, address: IPv4Address | str, mac: MacAddress | str, now: float) -> list[Frame]:
        """A neighbour learnt elsewhere (a sibling worker read the ARP packet on its queue):
        record it, as RFC 826's merge would have (the observer is not told again), and return
        the datagrams that waited for it, framed. A permanent entry stays as it is."""
        resolved = self.link.cache.learn(IPv4Address(address), MacAddress(mac), now, tell=False)
        if resolved is None:
            return []
        self.stats.count("arp_queue_flushed", len(resolved.datagrams))
        mac_of = self.link.mac_of
        out = [frame_buffers(resolved.mac, mac_of(source), EtherType.IPV4, [datagram])
               for source, datagram in resolved.datagrams]
        self.stats.count("tx_frames", len(out))
        return out

    def announce(self, now: float) -> list[Frame]:
        """Announce every address in use once more, now (gratuitous ARP, RFC 5227 3): the
        neighbours that know us set their entry back to our MAC."""
        out = self.link.announce()
        self.stats.count("tx_frames", len(out))
        return out

    def __repr__(self) -> str:
        ips = ", ".join(str(i) for i in self.interfaces[:4])
        more = f", ... {len(self.interfaces) - 4} more" if len(self.interfaces) > 4 else ""
        return f"TapHost(mac={self.mac}, ips=[{ips}{more}])"


class TunHost(_Host):
    """A host at the far end of a point-to-point TUN device: bare IPv4 packets, no ARP.

    ``ips`` may be bare addresses (``"192.0.2.2"``, a /32, as on most point-to-point links);
    ``peer`` is the address at the other end (the kernel's). With ``packet_info`` every packet
    in and out starts with the 4-byte header of a TUN device opened without IFF_NO_PI.
    ``choices`` and the keyword arguments are ``TapHost``'s, but for the link layer's (``probe``,
    ``arp_lifetime``), which a TUN host does not have: setting one is a ValueError.
    """

    medium = "ip"

    def __init__(
        self,
        ips: Iterable[IPv4Interface | str],
        peer: IPv4Address | str | None = None,
        packet_info: bool = False,
        choices: HostChoices | None = None,
        **keywords: Any,
    ) -> None:
        self.choices = choices = HostChoices.of(choices, keywords).without_link_layer()
        interfaces = [IPv4Interface(ip) for ip in ips]
        if not interfaces:
            raise ValueError("a host needs at least one IPv4 address")
        self.peer = IPv4Address(peer) if peer is not None else None
        if self.peer is not None and self.peer in [i.ip for i in interfaces]:
            raise ValueError(f"the peer {self.peer} is one of the host's own addresses")
        self._start(Stats())
        self.ip = Ipv4Host(interfaces, self.stats, choices, point_to_point=True)
        self.link: PointToPointLink = PointToPointLink(self._deliver, self.stats, packet_info)

    @property
    def packet_info(self) -> bool:
        """Whether every packet in and out carries the TUN packet-information header."""
        return self.link.packet_info

    def __repr__(self) -> str:
        ips = ", ".join(str(i) for i in self.interfaces)
        return f"TunHost(ips=[{ips}], peer={self.peer}, packet_info={self.packet_info})"
