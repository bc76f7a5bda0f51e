"""The IPv4 host: what a correct RFC 1122 host does with each datagram it receives.

Read first: RFC 791; RFC 792; RFC 1122 3.2.1 (IP), 3.2.2 (ICMP), 3.3.1 (routing outbound).

Sans-I/O: ``receive(datagram, now)`` returns ``Outbound`` values (datagram plus next hop) for the
link layer to send; ``ping`` originates an echo request; replies to it become ``EchoReply`` events.

``Ipv4Host`` is a composition of small parts, each in its own module, and keeps only the
receive path's order (fast path, parse, delivery, martian source, reassembly, protocol table):

- ``Addresses`` (addresses.py): our addresses and every rule about them;
- ``Output`` (output.py): our datagrams' headers, identification, TTL and fragments;
- ``IcmpResponder`` (icmp_responder.py): ICMP answers, our pings, and ICMP errors;
- ``EchoFastPath`` (fast_path.py): header prediction for plain echo requests;
- ``Reassembler`` (reassembly.py): fragments in;
- ``UdpDatagram``, ``UdpPorts`` (stack/l4/udp.py): the UDP codec, and the ports with a service;
- ``tcp`` (stack/l4/tcp_layer.py ``TcpLayer``): TCP, its listeners and connections; a port with no
  listener answers with RST.
"""

from __future__ import annotations

import logging
from collections import deque
from collections.abc import Callable, Iterable
from ipaddress import IPv4Address, IPv4Interface
from typing import Protocol

from stack.buffers import Buffer, Payload
from stack.errors import ParseError
from stack.l3.addresses import Addresses
from stack.l3.fast_path import EchoFastPath
from stack.l3.icmp import IcmpType
from stack.l3.icmp_responder import (
    TIME_EXCEEDED_REASSEMBLY,
    UNREACHABLE_PORT,
    UNREACHABLE_PROTOCOL,
    EchoReply,
    IcmpResponder,
    TimestampReply,
)
from stack.l3.ipv4 import IpOption, IpProto, Ipv4Packet, parse_options, read_header
from stack.l3.output import Output
from stack.l3.reassembly import Reassembler
from stack.l3.seam import Delivery, Received
from stack.l4.tcp import TcpSegment
from stack.l4.tcp_connection import TcpConnection
from stack.l4.tcp_layer import UNKEYED_SECRET, TcpLayer
from stack.l4.udp import REFUSED_SOURCE_PORTS, UdpDatagram, UdpPorts
from stack.ratelimit import TokenBucket
from stack.stats import Stats
from stack.seam import Outbound

# The types users meet, where node.py finds them (the choices' defaults are in stack.choices).
__all__ = ["EchoReply", "Ipv4Host", "NetworkChoices", "PROTOCOL_HANDLERS", "TimestampReply"]

log = logging.getLogger(__name__)


class NetworkChoices(Protocol):
    """The host's choices the network layer reads (``stack.choices.HostChoices``, where each
    has its default and its RFC; l3 cannot import it, as its defaults reach into l2)."""

    answer_broadcast_echo: bool
    ttl: int
    icmp_errors_per_second: float
    icmp_error_burst: int
    reassembly_timeout: float
    timestamp_reply: TimestampReply | None


class Ipv4Host:
    """An IPv4 host with one or more addresses on one interface, and an optional gateway."""

    def __init__(
        self,
        interfaces: Iterable[IPv4Interface],
        stats: Stats,
        choices: NetworkChoices,
        gateway: IPv4Address | None = None,
        point_to_point: bool = False,
        mtu: int = 1500,
        tcp_secret: bytes = UNKEYED_SECRET,
    ) -> None:
        """``point_to_point``: the interface is a point-to-point link (a TUN device), so every
        destination is reached by sending into it; there is no next hop to choose.
        ``choices`` are the behaviours RFCs leave to the host (checked where they are made).
        ``tcp_secret`` keys TCP's initial sequence numbers (RFC 6528: give random bytes)."""
        self.stats = stats
        self.output = Output(stats, choices.ttl, mtu)
        self.addressing = Addresses(interfaces, gateway, point_to_point)
        errors = TokenBucket(float(choices.icmp_errors_per_second), choices.icmp_error_burst)
        self.icmp = IcmpResponder(self.addressing, self.output, stats, errors,
                                  choices.answer_broadcast_echo, choices.timestamp_reply)
        self.fast_path = EchoFastPath(self.addressing, self.output, stats)
        #: Header prediction for plain echo requests (``fast_path``); tests turn it off to
        #: compare both paths.
        self.predict = True
        self.reassembler = Reassembler(timeout=choices.reassembly_timeout)
        #: The TCP layer: segments in, (source, destination, segment) answers out, and timers.
        self.tcp = TcpLayer(tcp_secret, stats, mtu=mtu)
        #: The UDP ports with a service; every other port is unreachable.
        self.udp = UdpPorts()

    # ------------------------------------------------------------------ the parts' settings

    @property
    def interfaces(self) -> list[IPv4Interface]:
        return self.addressing.interfaces

    @property
    def addresses(self) -> list[IPv4Address]:
        return self.addressing.addresses

    @property
    def gateway(self) -> IPv4Address | None:
        return self.addressing.gateway

    @property
    def mtu(self) -> int:
        """The link's MTU: the largest datagram it carries (the device tells; RFC 791 3.2)."""
        return self.output.mtu

    @mtu.setter
    def mtu(self, value: int) -> None:
        self.output.mtu = value
        self.tcp.mtu = value  # the MSS of new connections

    @property
    def ttl(self) -> int:
        return self.output.ttl

    # ------------------------------------------------------------------ addressing (the link asks)

    def owns(self, address: IPv4Address) -> bool:
        """One of our addresses, and in use (not withdrawn by ``set_usable``)."""
        return self.addressing.owns(address)

    def own_address(self, packed: bytes) -> IPv4Address | None:
        """``owns`` for an address as its 4 bytes (as ARP carries it): the address, or None."""
        return self.addressing.usable_packed.get(packed)

    def set_usable(self, address: IPv4Address, usable: bool) -> None:
        """Use one of our addresses, or stop using it (RFC 5227 2.1; ``Addresses.set_usable``)."""
        self.addressing.set_usable(address, usable)

    def preferred_source(self, destination: IPv4Address) -> IPv4Address:
        """Which of our addresses speaks towards ``destination`` (``Addresses.preferred_source``)."""
        return self.addressing.preferred_source(destination)

    def on_link(self, address: IPv4Address) -> bool:
        return self.addressing.on_link(address)

    def next_hop(self, destination: IPv4Address) -> IPv4Address | None:
        """RFC 1122 3.3.1.1 (``Addresses.next_hop``)."""
        return self.addressing.next_hop(destination)

    def route(self, destination: IPv4Address) -> IPv4Address:
        """The next hop for a datagram we originate; ValueError when we cannot send there."""
        return self.addressing.route(destination)

    # ------------------------------------------------------------------ receive

    def receive(self, datagram: Buffer, now: float, link_broadcast: bool = False) -> list[Outbound]:
        try:
            header = read_header(datagram)  # the early classification: no object built yet
        except ParseError as error:
            self.stats.drop(error.drop_reason, log, error)
            return []
        if self.predict and not link_broadcast:
            predicted = self.fast_path.answer(datagram, header)
            if predicted is not None:
                return predicted
        packet = Ipv4Packet.from_header(datagram, header)
        delivery = self.addressing.delivery(packet.destination)
        if delivery is None:
            # RFC 1122 3.2.1.3: a host MUST silently discard a datagram not addressed to it
            # (we are not a router: RFC 1122 3.3.1.1).
            self.stats.drop("ipv4_not_for_us", log, packet.destination)
            return []
        if delivery is Delivery.UNICAST and link_broadcast:
            # RFC 1122 3.3.6: SHOULD discard a unicast IP datagram received as a link broadcast.
            self.stats.drop("ipv4_unicast_in_link_broadcast", log, packet.destination)
            return []
        martian = self.addressing.martian_source(packet.source)
        if martian is not None:
            self.stats.drop(martian, log, packet.source)
            return []
        if packet.options and self._unfinished_source_route(packet.options):
            # RFC 1122 3.3.5: a host that does not forward a datagram with an unfinished source
            # route (we are a hop, not its destination) SHOULD send Source Route Failed; Linux
            # 6.18 drops it silently (all.accept_source_route = 0), and so do we (issue 13).
            # A finished route is delivered (RFC 1122 3.2.1.8 (c): we are its final destination).
            self.stats.drop("ipv4_source_route_unfinished", log, packet.destination)
            return []
        # RFC 1122 3.2.1.7: TTL is not checked on datagrams delivered to this host.
        # RFC 1122 3.2.1.8: options we do not implement are ignored (parse has checked that each
        # is well formed; echo requests return Record Route and Timestamp, 3.2.2.6).
        raw: Buffer = datagram
        if packet.is_fragment:
            # RFC 1122 3.3.2: a host MUST be able to reassemble incoming datagrams.
            outcome = self.reassembler.add(packet, datagram, now)
            self._count_evictions()
            if outcome.reason is not None:
                self.stats.drop(outcome.reason, log, packet.identification)
                for _ in range(outcome.discarded):
                    self.stats.drop(outcome.reason, log, packet.identification)
            if outcome.datagram is None:
                return []
            self.stats.count("ipv4_reassembled")
            packet = outcome.datagram
            raw = bytes(packet)
        received = Received(packet, raw, delivery, link_broadcast)
        handler = PROTOCOL_HANDLERS.get(packet.protocol)
        if handler is None:
            # RFC 1122 3.2.2.1: a host SHOULD send Protocol Unreachable for a protocol it lacks.
            self.stats.drop("ipv4_unknown_protocol", log, packet.protocol)
            return self.icmp.error(received, IcmpType.DESTINATION_UNREACHABLE, UNREACHABLE_PROTOCOL, now)
        self.stats.count("rx_ipv4_delivered")
        return handler(self, received, now)

    @staticmethod
    def _unfinished_source_route(options: bytes) -> bool:
        """RFC 791 3.1: a Loose (131) or Strict (137) Source Route whose pointer still points
        into its route data: the datagram has hops to go after us."""
        for kind, option in parse_options(options):
            if kind in (IpOption.LOOSE_SOURCE_ROUTE, IpOption.STRICT_SOURCE_ROUTE) and len(option) >= 3 \
                    and option[2] <= len(option):
                return True
        return False

    def _count_evictions(self) -> None:
        while self.reassembler.evicted:
            self.reassembler.evicted -= 1
            self.stats.drop("ipv4_reassembly_evicted", log, "oldest incomplete datagram")

    def receive_icmp(self, received: Received, now: float) -> list[Outbound]:
        return self.icmp.receive(received, now)

    def receive_udp(self, received: Received, now: float) -> list[Outbound]:
        """A UDP datagram for us: a port with a service (``udp``) answers; any other gets Port
        Unreachable."""
        packet = received.packet
        try:
            datagram = UdpDatagram.parse(packet.payload, packet.source, packet.destination)
        except ParseError as error:
            self.stats.drop(error.drop_reason, log, error)
            return []
        service = self.udp.service(packet.destination, datagram.destination_port)
        if service is not None:
            return self._serve_udp(received, datagram, service, now)
        # RFC 1122 4.1.3.1: a datagram for a port with no listener SHOULD get Port Unreachable.
        self.stats.drop("udp_port_unreachable", log, datagram.destination_port)
        return self.icmp.error(received, IcmpType.DESTINATION_UNREACHABLE, UNREACHABLE_PORT, now)

    def _serve_udp(self, received: Received, datagram: UdpDatagram, service, now: float) -> list[Outbound]:
        packet = received.packet
        if received.delivery is not Delivery.UNICAST or datagram.source_port in REFUSED_SOURCE_PORTS:
            # Services answer unicast only (an echo to a broadcast address would multiply the
            # traffic), and never another service's port (two echoes would loop: CA-1996-01).
            self.stats.drop("udp_service_refused", log, "from %s port %d", packet.source, datagram.source_port)
            return []
        self.stats.count("udp_service_datagrams")
        answer = service(bytes(datagram.payload), now)
        if answer is None:
            return []
        next_hop = self.addressing.next_hop(packet.source)
        if next_hop is None:
            self.stats.drop("ipv4_no_route", log, packet.source)
            return []
        reply = UdpDatagram(datagram.destination_port, datagram.source_port, answer)
        return self.output.send(packet.destination, packet.source, IpProto.UDP,
                                reply.buffers(packet.destination, packet.source), next_hop)

    def receive_tcp(self, received: Received, now: float) -> list[Outbound]:
        """A TCP segment for us: parsed (checksum verified), then handed to the TCP layer."""
        packet = received.packet
        try:
            segment = TcpSegment.parse(packet.payload, packet.source, packet.destination)
        except ParseError as error:
            self.stats.drop(error.drop_reason, log, error)  # RFC 1122 4.2.2.7: bad checksum: discarded
            return []
        if received.delivery is not Delivery.UNICAST:
            # RFC 1122 4.2.3.10: a SYN to a broadcast or multicast address MUST be silently
            # discarded; and RFC 9293 3.10.7.1's RST would come from a broadcast address, which
            # RFC 1122 3.2.1.3 forbids: no segment to one is answered (Linux 6.18: neither).
            self.stats.drop("tcp_not_unicast", log, packet.destination)
            return []
        if self.addressing.next_hop(packet.source) is None:
            self.stats.drop("ipv4_no_route", log, packet.source)
            return []
        return self._send_tcp(self.tcp.receive(packet.source, packet.destination, segment, now), packet)

    def _send_tcp(self, answers: list, packet: Ipv4Packet | None = None) -> list[Outbound]:
        """The TCP layer's segments out through the host's output path (route, fragments).
        The route of an answer was checked before its segment went in; a timer's segment with
        none is counted (``tcp_no_route``) and not sent. As Linux 6.18 sends a RST: DF set (RFC
        1191), the host's TTL, and the received TOS without its ECN bits (RFC 3168 6.1.1: no ECT
        on a RST); checked with tapstack diff and tests/root/test_tcp_device.py."""
        out: list[Outbound] = []
        for source, destination, segment in answers:
            next_hop = self.addressing.next_hop(destination)
            if next_hop is None:
                self.stats.count("tcp_no_route")
                continue
            type_of_service = packet.type_of_service & ~0x03 if packet is not None else 0
            out += self.output.send(source, destination, IpProto.TCP, segment.buffers(source, destination),
                                    next_hop, type_of_service=type_of_service, dont_fragment=True)
        return out

    def connect(self, destination: IPv4Address, port: int, now: float,
                service_factory=None) -> tuple[TcpConnection, list[Outbound]]:
        """A TCP active open (RFC 9293 3.10.1) to ``destination``:``port`` from our address
        towards it; ValueError when there is no route."""
        self.addressing.route(destination)  # ValueError: no route
        source = self.addressing.preferred_source(destination)
        connection, out = self.tcp.connect(source, destination, port, now, service_factory)
        return connection, self._send_tcp(out)

    # ------------------------------------------------------------------ our pings

    def ping(self, destination: IPv4Address | str, now: float, identifier: int = 0,
             sequence: int = 0, payload: Payload = b"") -> list[Outbound]:
        """Originate one echo request; its reply (if any) becomes an ``EchoReply`` in ``events``."""
        return self.icmp.ping(destination, now, identifier, sequence, payload)

    @property
    def events(self) -> deque[EchoReply]:
        """Echo replies to our own pings, oldest first."""
        return self.icmp.events

    def take_echo_replies(self, identifier: int) -> list[EchoReply]:
        """Remove and return the events for echo requests sent with ``identifier``."""
        return self.icmp.take_echo_replies(identifier)

    # ------------------------------------------------------------------ timers

    def poll(self, now: float) -> list[Outbound]:
        """Reassembly timeouts: RFC 1122 3.3.2 / RFC 792, Time Exceeded (code 1) to the source
        when the first fragment had come."""
        out: list[Outbound] = self._send_tcp(self.tcp.poll(now))
        for expired in self.reassembler.expire(now):
            for _ in range(expired.fragments):
                self.stats.drop("ipv4_reassembly_timeout", log, expired.key)
            if expired.first_raw:
                first = Ipv4Packet.parse(expired.first_raw)
                delivery = self.addressing.delivery(first.destination) or Delivery.UNICAST
                out += self.icmp.error(Received(first, expired.first_raw, delivery),
                                       IcmpType.TIME_EXCEEDED, TIME_EXCEEDED_REASSEMBLY, now)
        return out

    def next_deadline(self, now: float) -> float | None:
        deadlines = [d for d in (self.reassembler.next_deadline(), self.tcp.next_deadline()) if d is not None]
        return min(deadlines) if deadlines else None


#: What the host does with each IP protocol; any other gets Protocol Unreachable.
PROTOCOL_HANDLERS: dict[int, Callable[[Ipv4Host, Received, float], list[Outbound]]] = {
    IpProto.ICMP: Ipv4Host.receive_icmp,
    IpProto.UDP: Ipv4Host.receive_udp,
    IpProto.TCP: Ipv4Host.receive_tcp,
}
