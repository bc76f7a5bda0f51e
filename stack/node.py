"""Composition root: whole hosts, sans-I/O. ``TapHost`` is Ethernet + ARP + IPv4 + ICMP on a
TAP device; ``TunHost`` is the same IPv4 + ICMP host on a point-to-point TUN device, without a
link layer (as smoltcp's ``Medium::Ip``), optionally behind the packet-information header.

The link layer (l2) and the network layer (l3) never import each other; this module hands one
to the other. Every method takes ``now`` and returns the frames to send, each a list of buffers
(headers and payload views, in wire order) for one ``writev``.
"""

from __future__ import annotations

import logging
from collections import deque
from collections.abc import Iterable
from ipaddress import IPv4Address, IPv4Interface

from stack.buffers import Buffer, Frame, Payload
from stack.errors import ParseError
from stack.l2 import packet_info
from stack.l2.ethernet import EtherType, MacAddress
from stack.l2.conflict import ConflictDetector, Uniform
from stack.l2.link import EthernetLink
from stack.l2.neighbor import ARP_ENTRY_LIFETIME_S, NeighborCache
from stack.l3.host import ICMP_ERROR_BURST, ICMP_ERRORS_PER_SECOND, EchoReply, Ipv4Host, TimestampReply
from stack.l3.ipv4 import DEFAULT_TTL
from stack.l3.reassembly import REASSEMBLY_TIMEOUT_S
from stack.stats import Stats
from stack.types import Outbound

log = logging.getLogger(__name__)


#: Amplification bound, at the default MTU of 1500 (README "Fuzzing your own stack";
#: tests/test_fuzz_properties.py checks it on every generated sequence). One frame in causes at
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


class _Host:
    """What both hosts offer: the IPv4 host, its counters, timers and our own pings.

    Subclasses say how a datagram becomes a frame (``_frames``) and how a frame in becomes a
    datagram (``receive``).
    """

    medium: str
    ip: Ipv4Host
    stats: Stats

    @property
    def addresses(self) -> list[IPv4Address]:
        return self.ip.addresses

    @property
    def interfaces(self) -> list[IPv4Interface]:
        return self.ip.interfaces

    def _frames(self, outbounds: list[Outbound], now: float) -> list[Frame]:
        raise NotImplementedError

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
        """Run the timers that are due (start-up announcements, ARP retries and expiry)."""
        out = self._frames(self.ip.poll(now), now)
        self.stats.count("tx_frames", len(out))
        return out

    def next_deadline(self, now: float) -> float | None:
        """When ``poll`` should next be called, or None when no timer is running."""
        return self.ip.next_deadline(now)

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

    Behaviours RFCs leave open (README "Choices RFCs leave open"): ``arp_lifetime`` seconds an
    ARP entry is used (RFC 1122 2.3.2.1), ``ttl`` of our datagrams (RFC 1122 3.2.1.7),
    ``icmp_errors_per_second`` and ``icmp_error_burst`` (RFC 1122 3.2.2), and
    ``reassembly_timeout`` seconds (RFC 1122 3.3.2); ``timestamp_reply(request, now)``, a
    function that answers ICMP Timestamp requests (RFC 1122 3.2.2.8; without it, not answered).

    RFC 5227: every address is announced twice at start-up, two seconds apart, and defended
    when another host claims it. With ``probe`` each address is first probed for (three ARP
    probes) and used only when nobody answered; ``uniform(a, b)`` draws RFC 5227's random
    delays (pass ``random.Random(seed).uniform``; without it each delay is its lower bound).
    """

    medium = "ethernet"

    def __init__(
        self,
        ips: Iterable[IPv4Interface | str],
        mac: MacAddress | str | None = None,
        gateway: IPv4Address | str | None = None,
        answer_broadcast_echo: bool = False,
        neighbor_cache: NeighborCache | None = None,
        probe: bool = False,
        uniform: Uniform | None = None,
        arp_lifetime: float = ARP_ENTRY_LIFETIME_S,
        ttl: int = DEFAULT_TTL,
        icmp_errors_per_second: float = ICMP_ERRORS_PER_SECOND,
        icmp_error_burst: int = ICMP_ERROR_BURST,
        reassembly_timeout: float = REASSEMBLY_TIMEOUT_S,
        timestamp_reply: TimestampReply | None = None,
    ) -> None:
        interfaces = [IPv4Interface(ip) for ip in ips]
        if not interfaces:
            raise ValueError("a host needs at least one IPv4 address")
        if neighbor_cache is None:
            if arp_lifetime <= 0:
                raise ValueError(f"ARP entry lifetime {arp_lifetime} must be above 0 seconds")
            # RFC 1122 2.3.2.1: a cache entry MUST time out; how long is the host's choice.
            neighbor_cache = NeighborCache(lifetime=arp_lifetime)
        self.stats = Stats()
        self.ip = Ipv4Host(
            interfaces,
            self.stats,
            gateway=IPv4Address(gateway) if gateway is not None else None,
            answer_broadcast_echo=answer_broadcast_echo,
            ttl=ttl,
            icmp_errors_per_second=icmp_errors_per_second,
            icmp_error_burst=icmp_error_burst,
            reassembly_timeout=reassembly_timeout,
            timestamp_reply=timestamp_reply,
        )
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
        detector = ConflictDetector(addresses, set(macs.values()), probe=probe, uniform=uniform)
        self.link = EthernetLink(self.mac, self.ip, addresses, self.stats, neighbor_cache,
                                 macs=macs, detector=detector)

    def mac_of(self, address: IPv4Address | str) -> MacAddress:
        """The MAC one of our addresses answers from."""
        return self.link.macs[IPv4Address(address)]

    def announce(self, now: float) -> list[Frame]:
        """Announce every address in use once more, now (gratuitous ARP, RFC 5227 3): the
        neighbours that know us set their entry back to our MAC."""
        out = self.link.announce()
        self.stats.count("tx_frames", len(out))
        return out

    def receive(self, frame: Buffer, now: float) -> list[Frame]:
        """One Ethernet frame from the wire in; the frames to send in answer out."""
        self.stats.count("rx_frames")
        out = self.link.receive(frame, now)
        self.stats.count("tx_frames", len(out))
        return out

    def _frames(self, outbounds: list[Outbound], now: float) -> list[Frame]:
        out: list[Frame] = []
        for outbound in outbounds:
            out.extend(self.link.send(outbound, now))
        return out

    def poll(self, now: float) -> list[Frame]:
        """Run the timers that are due: start-up announcements, ARP retries and expiry."""
        out = self.link.poll(now) + self._frames(self.ip.poll(now), now)
        self.stats.count("tx_frames", len(out))
        return out

    def next_deadline(self, now: float) -> float | None:
        link, ip = self.link.next_deadline(now), self.ip.next_deadline(now)
        if link is None or ip is None:
            return ip if link is None else link
        return min(link, ip)

    def __repr__(self) -> str:
        ips = ", ".join(str(i) for i in self.interfaces[:4])
        more = f", ... {len(self.interfaces) - 4} more" if len(self.interfaces) > 4 else ""
        return f"TapHost(mac={self.mac}, ips=[{ips}{more}])"


#: Without the packet-information header, the EtherType a packet's IP version stands for.
_PROTOCOL_OF_VERSION = {4: int(EtherType.IPV4), 6: int(EtherType.IPV6)}

#: The packet-information header we put in front of every packet we send: IPv4, no flags.
_PI_IPV4 = packet_info.header_bytes(EtherType.IPV4)


class TunHost(_Host):
    """A host at the far end of a point-to-point TUN device: bare IPv4 packets, no ARP.

    ``ips`` may be bare addresses (``"192.0.2.2"``, a /32, as on most point-to-point links);
    ``peer`` is the address at the other end (the kernel's). With ``packet_info`` every packet
    in and out starts with the 4-byte header of a TUN device opened without IFF_NO_PI.
    """

    medium = "ip"

    def __init__(
        self,
        ips: Iterable[IPv4Interface | str],
        peer: IPv4Address | str | None = None,
        packet_info: bool = False,
        answer_broadcast_echo: bool = False,
        ttl: int = DEFAULT_TTL,
        icmp_errors_per_second: float = ICMP_ERRORS_PER_SECOND,
        icmp_error_burst: int = ICMP_ERROR_BURST,
        reassembly_timeout: float = REASSEMBLY_TIMEOUT_S,
        timestamp_reply: TimestampReply | None = None,
    ) -> None:
        interfaces = [IPv4Interface(ip) for ip in ips]
        if not interfaces:
            raise ValueError("a host needs at least one IPv4 address")
        self.peer = IPv4Address(peer) if peer is not None else None
        if self.peer is not None and self.peer in [i.ip for i in interfaces]:
            raise ValueError(f"the peer {self.peer} is one of the host's own addresses")
        self.packet_info = packet_info
        self.stats = Stats()
        self.ip = Ipv4Host(interfaces, self.stats, answer_broadcast_echo=answer_broadcast_echo,
                           point_to_point=True, ttl=ttl,
                           icmp_errors_per_second=icmp_errors_per_second,
                           icmp_error_burst=icmp_error_burst, reassembly_timeout=reassembly_timeout,
                           timestamp_reply=timestamp_reply)

    def receive(self, packet: Buffer, now: float) -> list[Frame]:
        """One packet from the TUN device in; the packets to send in answer out."""
        self.stats.count("rx_frames")
        datagram = self._datagram_in(packet)
        if datagram is None:
            return []
        out = self._frames(self.ip.receive(datagram, now), now)
        self.stats.count("tx_frames", len(out))
        return out

    def _datagram_in(self, packet: Buffer) -> Buffer | None:
        """The IPv4 datagram in a packet, or None (counted) when there is none."""
        if self.packet_info:
            if packet[:4] == _PI_IPV4:
                # Header prediction: nearly every packet is IPv4 with no flags (the header we
                # send); hand it up without building the header's value.
                return memoryview(packet)[4:]
            try:
                info = packet_info.PacketInfo.parse(packet)
            except ParseError as error:
                self.stats.drop(error.drop_reason, log, error)
                return None
            if info.truncated:
                # The kernel cut the packet to fit our read buffer (TUN_PKT_STRIP).
                self.stats.drop("tun_truncated", log, len(packet))
                return None
            protocol, datagram = info.protocol, info.payload
        else:
            # Without the header the IP version number is all there is (as the kernel does for
            # a TUN write: it reads the first nibble).
            version = packet[0] >> 4 if len(packet) else 0
            protocol = _PROTOCOL_OF_VERSION.get(version, 0)
            datagram = packet
        if protocol == EtherType.IPV4:
            return datagram
        if protocol == EtherType.IPV6:
            self.stats.drop("tun_ipv6_not_supported", log, len(packet))
        else:
            self.stats.drop("tun_not_ipv4", log, f"{protocol:#06x}")
        return None

    def _frames(self, outbounds: list[Outbound], now: float) -> list[Frame]:
        if self.packet_info:
            return [[_PI_IPV4, *outbound.datagram] for outbound in outbounds]
        return [outbound.datagram for outbound in outbounds]

    def __repr__(self) -> str:
        ips = ", ".join(str(i) for i in self.interfaces)
        return f"TunHost(ips=[{ips}], peer={self.peer}, packet_info={self.packet_info})"
