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
from ipaddress import IPv4Address, IPv4Interface, IPv6Address, IPv6Interface, ip_address, ip_interface
from typing import Any, NamedTuple

from stack.buffers import Buffer, Frame, Payload
from stack.choices import HostChoices
from stack.l2.conflict import ConflictDetector, Uniform
from stack.l2.ethernet import MacAddress
from stack.l2.ipv6_multicast import ipv6_multicast_mac
from stack.l2.link import EthernetLink, Link
from stack.l2.point_to_point import PointToPointLink
from stack.l2.neighbor import NeighborCache, Observer
from stack.l3.host import EchoReply, Ipv4Host
from stack.l3.ipv6 import link_local_address
from stack.l3.ipv6_host import Ipv6Host
from stack.l4.tcp_connection import TcpConnection
from stack.l4.tcp_layer import UNKEYED_SECRET, ServiceFactory
from stack.l4.udp import UdpService
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


def mac_for6(address: IPv6Address) -> MacAddress:
    """A host's MAC derived from an IPv6 address of its own (when it has no IPv4 address to
    share one with): 02:00 + the address's low 4 bytes."""
    return MacAddress(b"\x02\x00" + address.packed[12:])


def split_families(ips: Iterable[IPv4Interface | IPv6Interface | str]) -> tuple[list[IPv4Interface], list[IPv6Interface]]:
    """Addresses (with their prefix lengths) by family, each in the order given."""
    version4: list[IPv4Interface] = []
    version6: list[IPv6Interface] = []
    for ip in ips:
        interface = ip if isinstance(ip, (IPv4Interface, IPv6Interface)) else ip_interface(ip)
        (version4 if interface.version == 4 else version6).append(interface)
    return version4, version6


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
    #: The IPv6 host, or None when no IPv6 address was given (IPv6 is then dropped, counted).
    ip6: Ipv6Host | None = None
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

    def _deliver6(self, datagram: Buffer, link_multicast: bool, now: float) -> list[Frame]:
        """The IPv6 handover: a packet the link took goes up to the IPv6 host; its answers back
        down through the link."""
        outbounds = self.ip6.receive(datagram, now, link_multicast)
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
    def addresses(self) -> list[IPv4Address | IPv6Address]:
        """Our addresses: IPv4's, then IPv6's (link-local ones included)."""
        return self.ip.addresses + (self.ip6.addresses if self.ip6 is not None else [])

    @property
    def interfaces(self) -> list[IPv4Interface | IPv6Interface]:
        return self.ip.interfaces + (self.ip6.interfaces if self.ip6 is not None else [])

    @property
    def mtu(self) -> int:
        """The link MTU the host sends within (set it from the device: ``host.mtu = dev.mtu``)."""
        return self.ip.mtu

    @mtu.setter
    def mtu(self, value: int) -> None:
        """Both families send within it (IPv6 needs 1280 or more: RFC 8200 5)."""
        if value < 68:  # RFC 791: every internet module must forward a 68-octet datagram
            raise ValueError(f"an IPv4 link MTU is at least 68, not {value}")
        if self.ip6 is not None:
            self.ip6.mtu = value  # ValueError below 1280, before anything changed
        self.ip.mtu = value

    def poll(self, now: float) -> list[Frame]:
        """Run the timers that are due: start-up announcements, ARP retries and expiry,
        reassembly expiry."""
        out = self.link.poll(now) + self._frames(self.ip.poll(now), now)
        if self.ip6 is not None:
            out += self._frames(self.ip6.poll(now), now)
        self.stats.count("tx_frames", len(out))
        return out

    def next_deadline(self, now: float) -> float | None:
        """When ``poll`` should next be called, or None when no timer is running."""
        deadlines = [d for d in (self.link.next_deadline(now), self.ip.next_deadline(now),
                                 self.ip6.next_deadline(now) if self.ip6 is not None else None) if d is not None]
        return min(deadlines) if deadlines else None

    def ping(self, destination: IPv4Address | IPv6Address | str, now: float, identifier: int = 0,
             sequence: int = 0, payload: Payload = b"") -> list[Frame]:
        """Send one ICMP (or ICMPv6) echo request; the reply shows up in ``events`` as an
        ``EchoReply``."""
        address = ip_address(destination) if isinstance(destination, str) else destination
        if address.version == 6:
            if self.ip6 is None:
                raise ValueError(f"cannot ping {address}: the host has no IPv6 address")
            outbounds = self.ip6.ping(address, now, identifier, sequence, payload)
        else:
            outbounds = self.ip.ping(address, now, identifier, sequence, payload)
        out = self._frames(outbounds, now)
        self.stats.count("tx_frames", len(out))
        return out

    # ------------------------------------------------------------------ TCP

    def listen(self, port: int, service_factory: ServiceFactory,
               addresses: Iterable[IPv4Address | IPv6Address] | None = None) -> None:
        """Open TCP ``port`` on ``addresses`` (ours; None: every address of the host, both
        families): each connection a SYN opens runs ``service_factory()`` once established
        (``stack.l4.services``). ValueError for an address that is not ours or a port open twice."""
        for host, chosen in self._hosts_for(addresses):
            host.tcp.listen(port, service_factory, chosen)

    def listen_udp(self, port: int, service: UdpService,
                   addresses: Iterable[IPv4Address | IPv6Address] | None = None) -> None:
        """Run ``service`` (``stack.l4.services.udp_service``) on UDP ``port`` of ``addresses``
        (None: every address): each datagram's data in, its answer's data (or None) out."""
        for host, chosen in self._hosts_for(addresses):
            host.udp.listen(port, service, chosen)

    def _hosts_for(self, addresses: Iterable[IPv4Address | IPv6Address] | None) -> list[tuple[Any, Any]]:
        """Each family's host with the addresses of ``addresses`` it holds (None: all of them);
        a family with none of them is left out. ValueError for an address that is not ours."""
        wanted = None if addresses is None else [ip_address(str(a)) for a in addresses]
        for address in wanted or []:
            if address not in self.addresses:
                raise ValueError(f"{address} is not one of the host's addresses")
        chosen = []
        for version, host in ((4, self.ip), (6, self.ip6)):
            if host is None:
                continue
            mine = None if wanted is None else [a for a in wanted if a.version == version]
            if mine is None or mine:
                chosen.append((host, mine))
        return chosen

    def connect(self, destination: IPv4Address | IPv6Address | str, port: int, now: float,
                service_factory: ServiceFactory | None = None) -> tuple[TcpConnection, list[Frame]]:
        """A TCP connection to ``destination``:``port`` (an active open): the connection (``send``,
        ``read``, ``close``, ``state``) and the frames to send (its SYN, or an ARP/NS request
        first). ValueError when the host cannot reach it."""
        address = ip_address(destination) if isinstance(destination, str) else destination
        if address.version == 6:
            if self.ip6 is None:
                raise ValueError(f"cannot connect to {address}: the host has no IPv6 address")
            connection, outbounds = self.ip6.connect(address, port, now, service_factory)
        else:
            connection, outbounds = self.ip.connect(address, port, now, service_factory)
        out = self._frames(outbounds, now)
        self.stats.count("tx_frames", len(out))
        return connection, out

    def forget_neighbours(self) -> None:
        """Forget every neighbour learnt on the link (the link was replaced: a new interface on
        the other end); entries an administrator set stay."""
        cache = getattr(self.link, "cache", None)
        if cache is not None:
            cache.forget_learnt()
        resolver = self.ip6.resolver if self.ip6 is not None else None
        if resolver is not None:
            resolver.forget_neighbours()

    @property
    def events(self) -> deque[EchoReply]:
        """Echo replies to our own pings, oldest first (a deque; pop them as you read them)."""
        return self.ip.events

    def take_echo_replies(self, identifier: int) -> list[EchoReply]:
        # IPv4's and IPv6's replies share one deque (``events``).
        return self.ip.take_echo_replies(identifier)

    def _start_ipv6(self, interfaces: list[IPv6Interface], resolver=None, link_multicast=None) -> None:
        if not interfaces:
            return
        self.ip6 = Ipv6Host(interfaces, self.stats, self.choices,
                            lambda reply: self.ip.icmp.events.append(reply),
                            resolver=resolver, link_multicast=link_multicast, tcp_secret=self._tcp_secret)


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

    TCP: every port is closed (a RST, RFC 9293 3.10.7.1) until ``listen`` opens it;
    ``connect`` opens a connection. ``tcp_secret`` keys the initial sequence numbers (RFC 6528:
    pass random bytes, as ``tapstack run`` does; the default is fixed, for tests).
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
        tcp_secret: bytes = UNKEYED_SECRET,
        **keywords: Any,
    ) -> None:
        self.choices = choices = HostChoices.of(choices, keywords)
        self._tcp_secret = tcp_secret
        interfaces, interfaces6 = split_families(ips)
        if not interfaces and not interfaces6:
            raise ValueError("a host needs at least one address")
        if neighbor_cache is None:
            # RFC 1122 2.3.2.1: a cache entry MUST time out; how long is the host's choice.
            neighbor_cache = NeighborCache(lifetime=choices.arp_lifetime)
        self._start(Stats())
        self.ip = Ipv4Host(interfaces, self.stats, choices,
                           gateway=IPv4Address(gateway) if gateway is not None else None, tcp_secret=tcp_secret)
        addresses = self.ip.addresses
        addresses6 = [interface.ip for interface in interfaces6]
        if len(set(addresses)) != len(addresses) or len(set(addresses6)) != len(addresses6):
            raise ValueError("an address is given twice")
        shared = None
        if mac is not None:
            shared = MacAddress(mac)
            if shared.is_multicast:
                raise ValueError(f"{shared} is a multicast address and cannot be a host's MAC")
            macs = dict.fromkeys(addresses, shared)
        else:
            macs = {address: mac_for(address) for address in addresses}
        # The IPv6 addresses' MACs: the shared one; else the n-th IPv6 address belongs to the host
        # of the n-th IPv4 address (``--ip 192.0.2.2/24 --ip 2001:db8::2/64`` is one host), and
        # any beyond to hosts of their own (``mac_for6``).
        macs6 = {address: shared if shared is not None
                 else macs[addresses[index]] if index < len(addresses) else mac_for6(address)
                 for index, address in enumerate(addresses6)}
        self.mac = macs[addresses[0]] if addresses else macs6[addresses6[0]]
        detector = ConflictDetector(addresses, set(macs.values()), probe=choices.probe, uniform=uniform)
        self.link: EthernetLink = EthernetLink(self.mac, self.ip, addresses, self.stats, neighbor_cache,
                                               macs=macs, detector=detector, deliver=self._deliver,
                                               deliver6=self._deliver6 if interfaces6 else None)
        if interfaces6:
            self._start_ethernet_ipv6(interfaces6, macs, macs6, uniform)

    def _start_ethernet_ipv6(self, interfaces6: list[IPv6Interface], macs: dict[IPv4Address, MacAddress],
                             macs6: dict[IPv6Address, MacAddress], uniform: Uniform | None) -> None:
        """IPv6 on the Ethernet link: every MAC of the host also has its link-local address
        (RFC 4862 5.3, modified EUI-64: RFC 4291 2.5.1, appendix A), and Neighbor Discovery
        (RFC 4861) resolves our next hops and answers for our addresses."""
        try:
            from stack.l3.neighbor_discovery import NeighborDiscovery
        except ImportError:  # (until Neighbor Discovery lands: issue 14, in progress)
            raise ValueError("IPv6 on a TAP device needs Neighbor Discovery, which is not wired in "
                             "yet; use a TUN device (--tun) for IPv6 meanwhile") from None

        every_mac = list(dict.fromkeys([*macs.values(), *macs6.values()]))
        link_locals = {link_local_address(bytes(each)): each for each in every_mac}
        link_locals = {address: each for address, each in link_locals.items() if address not in macs6}
        macs6 = {**macs6, **link_locals}
        interfaces6 = interfaces6 + [IPv6Interface(f"{address}/64") for address in link_locals]
        self.link.add_ipv6_macs(macs6)
        resolver = NeighborDiscovery(self.stats, [(address, bytes(each)) for address, each in macs6.items()],
                                     ipv6_multicast_mac, dad=self.choices.dad_transmits > 0, uniform=uniform,
                                     transmits=self.choices.dad_transmits)
        self._start_ipv6(interfaces6, resolver=resolver, link_multicast=ipv6_multicast_mac)
        assert self.ip6 is not None
        self.link.listen([group.packed for group in self.ip6.groups])

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
        out = self.link.release(resolved, now)
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
        ips: Iterable[IPv4Interface | IPv6Interface | str],
        peer: IPv4Address | IPv6Address | str | Iterable[IPv4Address | IPv6Address | str] | None = None,
        packet_info: bool = False,
        choices: HostChoices | None = None,
        tcp_secret: bytes = UNKEYED_SECRET,
        **keywords: Any,
    ) -> None:
        self.choices = choices = HostChoices.of(choices, keywords).without_link_layer()
        self._tcp_secret = tcp_secret
        interfaces, interfaces6 = split_families(ips)
        if not interfaces and not interfaces6:
            raise ValueError("a host needs at least one address")
        if peer is None:
            self.peers: list[IPv4Address | IPv6Address] = []
        elif isinstance(peer, (str, IPv4Address, IPv6Address)):
            self.peers = [ip_address(peer)]
        else:
            self.peers = [ip_address(p) for p in peer]
        self.peer = self.peers[0] if self.peers else None
        ours = {i.ip for i in interfaces} | {i.ip for i in interfaces6}
        for each in self.peers:
            if each in ours:
                raise ValueError(f"the peer {each} is one of the host's own addresses")
        self._start(Stats())
        self.ip = Ipv4Host(interfaces, self.stats, choices, point_to_point=True, tcp_secret=tcp_secret)
        # RFC 4861 1: Neighbor Discovery needs link-layer addresses; a TUN link has none, so
        # IPv6 packets go straight into it (as smoltcp's Medium::Ip).
        self._start_ipv6(interfaces6)
        self.link: PointToPointLink = PointToPointLink(
            self._deliver, self.stats, packet_info, deliver6=self._deliver6 if self.ip6 is not None else None)

    @property
    def packet_info(self) -> bool:
        """Whether every packet in and out carries the TUN packet-information header."""
        return self.link.packet_info

    def __repr__(self) -> str:
        ips = ", ".join(str(i) for i in self.interfaces)
        return f"TunHost(ips=[{ips}], peer={self.peer}, packet_info={self.packet_info})"
