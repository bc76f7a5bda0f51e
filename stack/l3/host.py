"""The IPv4 host: what a correct RFC 1122 host does with each datagram it receives.

Read first: RFC 791; RFC 792; RFC 1122 3.2.1 (IP), 3.2.2 (ICMP), 3.3.1 (routing outbound).

Sans-I/O: ``receive(datagram, now)`` returns ``Outbound`` values (datagram plus next hop) for the
link layer to send; ``ping`` originates an echo request; replies to it become ``EchoReply`` events.
"""

from __future__ import annotations

import logging
import struct
from collections import deque
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from enum import Enum
from ipaddress import IPv4Address, IPv4Interface

from stack.buffers import Buffer, Payload, length, slice_buffers
from stack.checksum import internet_checksum
from stack.errors import ParseError
from stack.l3 import icmp, ipv4
from stack.l3.icmp import IcmpMessage, IcmpType
from stack.l3.ipv4 import DEFAULT_TTL, MINIMUM_HEADER_LENGTH, IpProto, Ipv4Packet
from stack.l3.reassembly import REASSEMBLY_TIMEOUT_S, Reassembler
from stack.stats import Stats
from stack.types import Outbound

log = logging.getLogger(__name__)

LIMITED_BROADCAST = IPv4Address("255.255.255.255")
#: RFC 1112 4: the all-hosts group, which every multicast-capable host joins.
ALL_HOSTS_GROUP = IPv4Address("224.0.0.1")
#: Header prediction: a 20-byte IPv4 header followed by an 8-byte ICMP header.
PREDICTED_ECHO = struct.Struct("!BBHHHBBH4s4sBBH4s")
#: Header prediction compares fields with plain ints: reading an IntEnum member costs more
#: than the comparison itself.
_PROTOCOL_ICMP = int(IpProto.ICMP)
_ECHO_REQUEST = int(IcmpType.ECHO_REQUEST)
_ECHO_REPLY = int(IcmpType.ECHO_REPLY)
_FRAGMENT_BITS = ipv4.FLAG_MORE_FRAGMENTS | ipv4.FRAGMENT_OFFSET_MASK
#: Source addresses header prediction remembers as ``IPv4Address`` values (a pinged host hears
#: from a few peers again and again); past this many the memo starts afresh.
ADDRESS_MEMO_CAPACITY = 256
#: Echo requests we sent and still wait for; the oldest is forgotten past this many.
OUTSTANDING_ECHO_CAPACITY = 1024
#: Undelivered events kept for the user; the oldest is dropped past this many.
EVENT_CAPACITY = 1024
#: RFC 1122 3.2.2: ICMP errors are rate-limited. A token bucket like Linux's global one
#: (net.ipv4.icmp_msgs_per_sec = 1000, icmp_msgs_burst = 50).
ICMP_ERRORS_PER_SECOND = 1000.0
ICMP_ERROR_BURST = 50
#: RFC 1812 4.3.2.3 / Linux: an ICMP error quotes as much of the datagram as fits in 576 bytes
#: (RFC 792 asks for the header plus at least 64 bits of data).
ICMP_ERROR_MAXIMUM = 576
#: ICMP types that are error messages (RFC 1122 3.2.2: never answer one with another).
ICMP_ERROR_TYPES = frozenset({IcmpType.DESTINATION_UNREACHABLE, IcmpType.SOURCE_QUENCH,
                              IcmpType.REDIRECT, IcmpType.TIME_EXCEEDED, IcmpType.PARAMETER_PROBLEM})
#: RFC 1812 4.3.2.5: ICMP error messages SHOULD have precedence 6, internetwork control (what
#: Linux sends too: IPTOS_PREC_INTERNETCONTROL, keeping the quoted datagram's TOS bits).
ICMP_ERROR_PRECEDENCE = 0xC0
TOS_BITS = 0x1E  # the four RFC 1349 TOS bits (Linux's RT_TOS mask)
UNREACHABLE_PROTOCOL = 2  # RFC 792 Destination Unreachable codes
UNREACHABLE_PORT = 3
TIME_EXCEEDED_REASSEMBLY = 1  # RFC 792 Time Exceeded code 1: fragment reassembly time exceeded


#: Builds a Timestamp Reply from a Timestamp request and the host's clock (``now`` in seconds),
#: or returns None to refuse the request (lab 06: students write one).
TimestampReply = Callable[[IcmpMessage, float], IcmpMessage | None]


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


@dataclass(frozen=True, slots=True)
class EchoReply:
    """An answer to one of our own echo requests (``Ipv4Host.ping``)."""

    source: IPv4Address
    identifier: int
    sequence: int
    ttl: int
    size: int  # ICMP data bytes, as ping's "64 bytes from" counts ICMP header + data
    rtt: float  # seconds between ping() and receive(), both on the caller's clock


class Ipv4Host:
    """An IPv4 host with one or more addresses on one interface, and an optional gateway."""

    def __init__(
        self,
        interfaces: Iterable[IPv4Interface],
        stats: Stats,
        gateway: IPv4Address | None = None,
        answer_broadcast_echo: bool = False,
        ttl: int = DEFAULT_TTL,
        point_to_point: bool = False,
        mtu: int = 1500,
        icmp_errors_per_second: float = ICMP_ERRORS_PER_SECOND,
        icmp_error_burst: int = ICMP_ERROR_BURST,
        reassembly_timeout: float = REASSEMBLY_TIMEOUT_S,
        timestamp_reply: TimestampReply | None = None,
    ) -> None:
        """``point_to_point``: the interface is a point-to-point link (a TUN device), so every
        destination is reached by sending into it; there is no next hop to choose.
        ``ttl`` (RFC 1122 3.2.1.7), the ICMP error rate (RFC 1122 3.2.2) and the reassembly
        timeout (RFC 1122 3.3.2) are the behaviours RFCs leave to the host (README).
        ``timestamp_reply(request, now)`` answers ICMP Timestamp requests (RFC 1122 3.2.2.8: a
        MAY); without it they are discarded like any type we do not handle (lab 06 writes one)."""
        if not 1 <= ttl <= 255:
            raise ValueError(f"TTL {ttl} is not between 1 and 255")  # RFC 1122 3.2.1.7: never 0
        if icmp_errors_per_second < 0 or icmp_error_burst < 0:
            raise ValueError("the ICMP error rate and burst cannot be negative")
        if reassembly_timeout <= 0:
            raise ValueError(f"reassembly timeout {reassembly_timeout} must be above 0 seconds")
        self.icmp_errors_per_second = float(icmp_errors_per_second)
        self.icmp_error_burst = icmp_error_burst
        self.interfaces = list(interfaces)
        self.point_to_point = point_to_point
        #: The link's MTU: the largest datagram it carries (the device tells; RFC 791 3.2).
        self.mtu = mtu
        if not self.interfaces:
            raise ValueError("a host needs at least one IPv4 address")
        self.stats = stats
        self.gateway = gateway
        self.answer_broadcast_echo = answer_broadcast_echo
        self.timestamp_reply = timestamp_reply
        self.ttl = ttl
        self.addresses = [interface.ip for interface in self.interfaces]
        # Address sets hold ints: looking an int up is several times cheaper than an IPv4Address.
        self._local = {int(address) for address in self.addresses}
        self._configured = frozenset(self._local)  # _local less the ones not in use (set_usable)
        # Our addresses in use by their 4 wire bytes: header prediction finds ours without
        # converting (kept in step with _local by set_usable).
        self._local_packed = {address.packed: address for address in self.addresses}
        self._addresses_seen: dict[bytes, IPv4Address] = {}
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
        if gateway is not None and not self.on_link(gateway):
            raise ValueError(f"gateway {gateway} is not on any of our networks")
        #: Header prediction for plain echo requests (see ``_predicted_echo``); tests turn it off
        #: to compare both paths.
        self.predict = True
        self.reassembler = Reassembler(timeout=reassembly_timeout)
        self._error_tokens = float(icmp_error_burst)
        self._error_tokens_at: float | None = None
        self._identification = 0
        self._outstanding: dict[tuple[IPv4Address, int, int], float] = {}
        self.events: deque[EchoReply] = deque(maxlen=EVENT_CAPACITY)

    # ------------------------------------------------------------------ addressing

    def owns(self, address: IPv4Address) -> bool:
        """One of our addresses, and in use (not withdrawn by ``set_usable``)."""
        return int(address) in self._local

    def set_usable(self, address: IPv4Address, usable: bool) -> None:
        """Use one of our addresses, or stop using it: the link withdraws an address while it
        probes for it and for good when another host has it (RFC 5227 2.1)."""
        if int(address) not in self._configured:
            raise ValueError(f"{address} is not one of this host's addresses")
        if usable:
            self._local.add(int(address))
            self._local_packed[address.packed] = address
        else:
            self._local.discard(int(address))
            self._local_packed.pop(address.packed, None)

    def on_link(self, address: IPv4Address) -> bool:
        return self._on_link_value(int(address))

    def _on_link_value(self, value: int) -> bool:
        for network, netmask in self._networks:
            if value & netmask == network:
                return True
        return False

    def next_hop(self, destination: IPv4Address) -> IPv4Address | None:
        """RFC 1122 3.3.1.1: on-link destinations directly, others through the gateway.

        On a point-to-point link everything goes to the one peer: the next hop is then only a
        label (nothing resolves it), and we use the destination itself.
        """
        if self.point_to_point or self._on_link_value(int(destination)):
            return destination
        return self.gateway

    def route(self, destination: IPv4Address) -> IPv4Address:
        """The next hop for a datagram we originate; ValueError when we cannot send there."""
        if self._delivery(destination) is not None or self._martian_source(destination):
            raise ValueError(f"cannot send to {destination}: not a unicast address of another host")
        next_hop = self.next_hop(destination)
        if next_hop is None:
            raise ValueError(f"no route to {destination}: it is off the host's networks and no gateway is set")
        return next_hop

    def preferred_source(self, destination: IPv4Address) -> IPv4Address:
        """Our first address in use on the destination's network; else our first address in
        use (Linux does alike); else, when none is in use yet, our first address."""
        value = int(destination)
        for (network, netmask), addresses in self._networks.items():
            if value & netmask == network:
                for address in addresses:
                    if int(address) in self._local:
                        return address
        for address in self.addresses:
            if int(address) in self._local:
                return address
        return self.addresses[0]

    def _delivery(self, destination: IPv4Address) -> Delivery | None:
        address = int(destination)
        if address in self._local:
            return Delivery.UNICAST
        if address in self._broadcast:
            return Delivery.BROADCAST
        if destination == ALL_HOSTS_GROUP:
            return Delivery.MULTICAST
        return None

    def _martian_source(self, source: IPv4Address) -> str | None:
        """RFC 1122 3.2.1.3: a host MUST silently discard a datagram with an invalid source."""
        return self._martian_source_value(int(source))

    def _martian_source_value(self, address: int) -> str | None:
        """``_martian_source`` for an address as an integer."""
        first_octet = address >> 24
        if first_octet == 0:
            return "ipv4_martian_source"  # {0, *}: only while a host learns its own address
        if first_octet == 127:
            return "ipv4_martian_source"  # 3.2.1.3 (g): 127/8 MUST NOT appear outside a host
        if 224 <= first_octet <= 239 or address in self._broadcast:
            return "ipv4_martian_source"  # multicast or broadcast: a source is a single host
        if address in self._local:
            return "ipv4_source_is_ours"  # Linux: a local address as source is a martian
        return None

    # ------------------------------------------------------------------ receive

    def receive(self, datagram: Buffer, now: float, link_broadcast: bool = False) -> list[Outbound]:
        if self.predict and not link_broadcast:
            predicted = self._predicted_echo(datagram)
            if predicted is not None:
                return predicted
        try:
            packet = Ipv4Packet.parse(datagram)
        except ParseError as error:
            self.stats.drop(error.drop_reason, log, error)
            return []
        delivery = self._delivery(packet.destination)
        if delivery is None:
            # RFC 1122 3.2.1.3: a host MUST silently discard a datagram not addressed to it
            # (we are not a router: RFC 1122 3.3.1.1).
            self.stats.drop("ipv4_not_for_us", log, packet.destination)
            return []
        if delivery is Delivery.UNICAST and link_broadcast:
            # RFC 1122 3.3.6: SHOULD discard a unicast IP datagram received as a link broadcast.
            self.stats.drop("ipv4_unicast_in_link_broadcast", log, packet.destination)
            return []
        martian = self._martian_source(packet.source)
        if martian is not None:
            self.stats.drop(martian, log, packet.source)
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
            return self._icmp_error(received, IcmpType.DESTINATION_UNREACHABLE,
                                    UNREACHABLE_PROTOCOL, now)
        self.stats.count("rx_ipv4_delivered")
        return handler(self, received, now)

    def _count_evictions(self) -> None:
        while self.reassembler.evicted:
            self.reassembler.evicted -= 1
            self.stats.drop("ipv4_reassembly_evicted", log, "oldest incomplete datagram")

    def _predicted_echo(self, datagram: Buffer) -> list[Outbound] | None:
        """Header prediction: answer the common case, a plain echo request to us, directly.

        Read first: Clark, Jacobson, Romkey, Salwen, "An Analysis of TCP Processing Overhead"
        (1989): most packets are of the expected kind, so test for that kind first with a few
        comparisons and handle it without the general machinery. Here the expected kind is an
        ICMP echo request in a 20-byte IPv4 header (no options, not a fragment) to one of our
        unicast addresses, from a valid source we can route to, with both checksums right.
        Anything else returns None and takes the general path, which also counts every drop.
        The answer is the general path's, byte for byte and counter for counter
        (tests/test_prediction.py checks that on generated datagrams).
        """
        if len(datagram) < PREDICTED_ECHO.size:
            return None
        (version_ihl, type_of_service, total_length, _, flags_offset, _, protocol, _, source,
         destination, icmp_type, icmp_code, icmp_checksum, rest_of_header) = PREDICTED_ECHO.unpack_from(datagram)
        our_address = self._local_packed.get(destination)
        if (version_ihl != 0x45 or protocol != _PROTOCOL_ICMP or icmp_type != _ECHO_REQUEST
                or flags_offset & _FRAGMENT_BITS  # a fragment: reassembly first
                or not PREDICTED_ECHO.size <= total_length <= len(datagram)
                or total_length > self.mtu  # the reply is as long: larger ones are fragmented
                or our_address is None):
            return None
        view = memoryview(datagram)
        # RFC 1122 3.2.1.2 and 3.2.2: both checksums verify, or the general path drops it. As
        # in checksum.verifies: read as one integer, a message with a correct checksum is a
        # multiple of 0xFFFF (neither is all zeros: version 4, type 8).
        if (int.from_bytes(view[:20], "big") % 0xFFFF
                or int.from_bytes(view[20:total_length], "big") % 0xFFFF):
            return None
        source_value = int.from_bytes(source, "big")
        if self._martian_source_value(source_value) is not None:
            return None
        if self.point_to_point or self._on_link_value(source_value):
            next_hop = self._address_seen(source)  # RFC 1122 3.3.1.1: on-link, send directly
        elif self.gateway is not None:
            next_hop = self.gateway
        else:
            return None
        self.stats.count("rx_ipv4_delivered")
        # What _echo_reply and _send do, with the addresses kept as the 4 bytes they came in:
        # RFC 1122 3.2.2.6: the reply's source is the request's destination, and it carries the
        # request's identifier, sequence number and data (a view of the request, not a copy).
        # RFC 1624: only the first word changes (type 8 -> 0, code -> 0), so the request's
        # checksum is updated rather than the data summed again.
        reply_checksum = icmp.echo_reply_checksum(icmp_checksum, icmp_type << 8 | icmp_code,
                                                  view[24:total_length])
        reply_header = icmp.HEADER.pack(_ECHO_REPLY, 0, reply_checksum, rest_of_header)
        self.stats.count("icmp_echo_replies_sent")
        self._identification = (self._identification + 1) & 0xFFFF
        header = ipv4.packed_header_bytes(destination, source, _PROTOCOL_ICMP,
                                          total_length - MINIMUM_HEADER_LENGTH, self.ttl,
                                          self._identification, type_of_service=type_of_service)
        return [Outbound(next_hop, [header, reply_header, view[28:total_length]], our_address)]

    def _address_seen(self, packed: bytes) -> IPv4Address:
        """``IPv4Address(packed)``, remembered (at most ADDRESS_MEMO_CAPACITY of them): building
        one costs more than the rest of an echo reply's addressing."""
        address = self._addresses_seen.get(packed)
        if address is None:
            if len(self._addresses_seen) >= ADDRESS_MEMO_CAPACITY:
                self._addresses_seen.clear()
            address = self._addresses_seen[packed] = IPv4Address(packed)
        return address

    def receive_icmp(self, received: Received, now: float) -> list[Outbound]:
        try:
            message = IcmpMessage.parse(received.packet.payload)
        except ParseError as error:
            self.stats.drop(error.drop_reason, log, error)
            return []
        handler = ICMP_HANDLERS.get(message.type)
        if handler is None:
            # RFC 1122 3.2.2: an ICMP message of unknown type MUST be silently discarded.
            # (Known error types would go to a transport layer; we have none.)
            self.stats.drop("icmp_type_not_handled", log, message.type)
            return []
        return handler(self, received, message, now)

    def receive_udp(self, received: Received, now: float) -> list[Outbound]:
        """No UDP port has a service (yet): every datagram gets Port Unreachable."""
        packet = received.packet
        payload = packet.payload
        if len(payload) < 8:
            self.stats.drop("udp_truncated", log, len(payload))
            return []
        udp_length = int.from_bytes(payload[4:6], "big")
        if not 8 <= udp_length <= len(payload):
            self.stats.drop("udp_bad_length", log, udp_length)
            return []
        if payload[6:8] != b"\x00\x00":
            # RFC 1122 4.1.3.4: a non-zero UDP checksum MUST be verified (pseudo-header included);
            # a datagram that fails is silently discarded.
            pseudo = (packet.source.packed + packet.destination.packed
                      + bytes([0, IpProto.UDP]) + udp_length.to_bytes(2, "big"))
            if internet_checksum([pseudo, payload[:udp_length]]) != 0:
                self.stats.drop("udp_bad_checksum", log, packet.source)
                return []
        # RFC 1122 4.1.3.1: a datagram for a port with no listener SHOULD get Port Unreachable.
        self.stats.drop("udp_port_unreachable", log, int.from_bytes(payload[2:4], "big"))
        return self._icmp_error(received, IcmpType.DESTINATION_UNREACHABLE, UNREACHABLE_PORT, now)

    def receive_echo_request(self, received: Received, request: IcmpMessage, now: float) -> list[Outbound]:
        packet, delivery = received.packet, received.delivery
        if delivery is not Delivery.UNICAST and not self.answer_broadcast_echo:
            # RFC 1122 3.2.2.6: an echo request to a broadcast or multicast address MAY be
            # silently discarded (Linux: icmp_echo_ignore_broadcasts = 1).
            self.stats.drop("icmp_echo_to_broadcast_ignored", log, packet.destination)
            return []
        # RFC 1122 3.2.2.6: the reply's source MUST be the request's specific destination; for a
        # broadcast request, one of our own addresses (RFC 1122 3.2.1.3: never a broadcast source).
        if delivery is Delivery.UNICAST:
            source = packet.destination
        else:
            source = self.preferred_source(packet.source)
        next_hop = self.next_hop(packet.source)
        if next_hop is None:
            self.stats.drop("ipv4_no_route", log, packet.source)
            return []
        options = echo_options(packet.options, source, now) if packet.options else b""
        return self._echo_reply(source, packet.source, next_hop, request.rest_of_header,
                                request.payload, options, packet.type_of_service)

    def receive_timestamp_request(self, received: Received, request: IcmpMessage,
                                  now: float) -> list[Outbound]:
        """RFC 792 Timestamp (type 13) in, Timestamp Reply (14) out, built by the host's
        ``timestamp_reply`` function (which returns None to refuse a malformed request)."""
        packet = received.packet
        if self.timestamp_reply is None:
            # RFC 1122 3.2.2.8: Timestamp is a MAY; off by default, discarded as an unhandled type.
            self.stats.drop("icmp_type_not_handled", log, request.type)
            return []
        if received.delivery is not Delivery.UNICAST:
            # RFC 1122 3.2.2.8: a Timestamp request to a broadcast or multicast address MAY be
            # silently discarded.
            self.stats.drop("icmp_timestamp_to_broadcast_ignored", log, packet.destination)
            return []
        next_hop = self.next_hop(packet.source)
        if next_hop is None:
            self.stats.drop("ipv4_no_route", log, packet.source)
            return []
        try:
            reply = self.timestamp_reply(request, now)
        except Exception as error:  # the function is the user's (lab 06): a failure is a drop, never a crash
            self.stats.drop("icmp_timestamp_reply_failed", log, f"{type(error).__name__}: {error}")
            return []
        if reply is None:
            self.stats.drop("icmp_timestamp_request_refused", log, length(request.payload))
            return []
        if not isinstance(reply, IcmpMessage) or reply.type != IcmpType.TIMESTAMP_REPLY:
            self.stats.drop("icmp_timestamp_reply_failed", log, f"returned {reply!r}, not a Timestamp Reply")
            return []
        self.stats.count("icmp_timestamp_replies_sent")
        # RFC 1122 3.2.2.8: the reply's source MUST be the request's specific destination.
        return self._send(packet.destination, packet.source, IpProto.ICMP, reply.buffers(), next_hop)

    def _echo_reply(self, source: IPv4Address, destination: IPv4Address, next_hop: IPv4Address,
                    rest_of_header: bytes, data: Buffer, options: bytes = b"",
                    type_of_service: int = 0) -> list[Outbound]:
        """RFC 792 / RFC 1122 3.2.2.6: the reply carries the request's identifier, sequence and
        data (the data as a view of the request: the iovec path copies nothing). RFC 1349 5.1:
        and the request's TOS (Linux copies the whole byte, ECN bits too)."""
        reply_header = icmp.header_bytes(IcmpType.ECHO_REPLY, 0, rest_of_header, data)
        self.stats.count("icmp_echo_replies_sent")
        return self._send(source, destination, IpProto.ICMP, [reply_header, data], next_hop, options,
                          type_of_service)

    def receive_echo_reply(self, received: Received, reply: IcmpMessage, now: float) -> list[Outbound]:
        packet = received.packet
        key = (packet.source, reply.identifier, reply.sequence)
        sent_at = self._outstanding.pop(key, None)
        if sent_at is None:
            self.stats.drop("icmp_echo_reply_unsolicited", log, key)
            return []
        self.stats.count("icmp_echo_replies_received")
        self.events.append(
            EchoReply(packet.source, reply.identifier, reply.sequence, packet.ttl,
                      length(reply.payload), now - sent_at)
        )
        return []

    # ------------------------------------------------------------------ send

    def _send(self, source: IPv4Address, destination: IPv4Address, protocol: int,
              payload: list[Buffer], next_hop: IPv4Address, options: bytes = b"",
              type_of_service: int = 0) -> list[Outbound]:
        """A datagram from us, as one or more ``Outbound`` (fragments when it exceeds the MTU)."""
        self._identification = (self._identification + 1) & 0xFFFF
        size = length(payload)
        if MINIMUM_HEADER_LENGTH + len(options) + size <= self.mtu:
            header = ipv4.header_bytes(source, destination, protocol, size, self.ttl,
                                       self._identification, type_of_service=type_of_service,
                                       options=options)
            return [Outbound(next_hop, [header, *payload], source)]
        # RFC 791 3.2: fragment at multiples of 8 octets, MF on all but the last. The options we
        # send (Record Route, Timestamp) are not "copied" ones: only the first fragment has them.
        out = []
        start = 0
        while start < size:
            room = self.mtu - MINIMUM_HEADER_LENGTH - (len(options) if start == 0 else 0)
            stop = min(start + room // 8 * 8, size)
            flags_offset = (ipv4.FLAG_MORE_FRAGMENTS if stop < size else 0) | start // 8
            header = ipv4.header_bytes(source, destination, protocol, stop - start, self.ttl,
                                       self._identification, flags_offset, type_of_service,
                                       options=options if start == 0 else b"")
            out.append(Outbound(next_hop, [header, *slice_buffers(payload, start, stop)], source))
            start = stop
        self.stats.count("ipv4_fragments_sent", len(out))
        return out

    def _icmp_error(self, received: Received, type: int, code: int, now: float) -> list[Outbound]:
        """An ICMP error about ``received``, unless RFC 1122 3.2.2 forbids one or the rate limit
        says no."""
        packet = received.packet
        # RFC 1122 3.2.2: an ICMP error message MUST NOT be sent as the result of receiving
        if packet.protocol == IpProto.ICMP and packet.fragment_offset == 0 and (
                len(packet.payload) == 0 or packet.payload[0] in ICMP_ERROR_TYPES):
            return self._no_error("icmp_error_about_icmp_error")  # ... an ICMP error message,
        if received.delivery is not Delivery.UNICAST:
            return self._no_error("icmp_error_about_broadcast")  # ... a broadcast or multicast,
        if received.link_broadcast:
            return self._no_error("icmp_error_about_link_broadcast")  # ... a link-layer broadcast,
        if packet.fragment_offset != 0:
            return self._no_error("icmp_error_about_fragment")  # ... a non-initial fragment,
        if self._martian_source(packet.source) or int(packet.source) >> 28 == 0xF:
            return self._no_error("icmp_error_to_non_host")  # ... a source that is not one host.
        next_hop = self.next_hop(packet.source)
        if next_hop is None:
            return self._no_error("icmp_error_no_route")
        if not self._take_error_token(now):
            return self._no_error("icmp_error_rate_limited")
        room = ICMP_ERROR_MAXIMUM - MINIMUM_HEADER_LENGTH - icmp.HEADER_LENGTH
        # RFC 792: the header and at least 64 bits of data; the datagram, never the link's
        # padding after it (RFC 894).
        quote = memoryview(received.raw)[:min(room, packet.total_length)]
        header = icmp.header_bytes(type, code, bytes(4), quote)
        self.stats.count("icmp_errors_sent")
        type_of_service = ICMP_ERROR_PRECEDENCE | packet.type_of_service & TOS_BITS
        return self._send(packet.destination, packet.source, IpProto.ICMP, [header, quote], next_hop,
                          type_of_service=type_of_service)

    def _no_error(self, reason: str) -> list[Outbound]:
        self.stats.count(reason)
        return []

    def _take_error_token(self, now: float) -> bool:
        """Token bucket: ``icmp_errors_per_second`` tokens a second, at most ``icmp_error_burst``
        saved (by default ICMP_ERRORS_PER_SECOND and ICMP_ERROR_BURST)."""
        if self._error_tokens_at is not None:
            elapsed = max(0.0, now - self._error_tokens_at)
            self._error_tokens = min(float(self.icmp_error_burst),
                                     self._error_tokens + elapsed * self.icmp_errors_per_second)
        self._error_tokens_at = now
        if self._error_tokens < 1.0:
            return False
        self._error_tokens -= 1.0
        return True

    def ping(self, destination: IPv4Address | str, now: float, identifier: int = 0,
             sequence: int = 0, payload: Payload = b"") -> list[Outbound]:
        """Originate one echo request; its reply (if any) becomes an ``EchoReply`` in ``events``."""
        destination = IPv4Address(destination)
        next_hop = self.route(destination)
        request = IcmpMessage.echo(IcmpType.ECHO_REQUEST, identifier, sequence, payload)
        self._outstanding[(destination, identifier, sequence)] = now
        while len(self._outstanding) > OUTSTANDING_ECHO_CAPACITY:
            del self._outstanding[next(iter(self._outstanding))]
        self.stats.count("icmp_echo_requests_sent")
        source = self.preferred_source(destination)
        return self._send(source, destination, IpProto.ICMP, request.buffers(), next_hop)

    def take_echo_replies(self, identifier: int) -> list[EchoReply]:
        """Remove and return the events for echo requests sent with ``identifier``."""
        mine = [event for event in self.events if event.identifier == identifier]
        if mine:
            self.events = deque((e for e in self.events if e.identifier != identifier),
                                maxlen=EVENT_CAPACITY)
        return mine

    # ------------------------------------------------------------------ timers

    def poll(self, now: float) -> list[Outbound]:
        """Reassembly timeouts: RFC 1122 3.3.2 / RFC 792, Time Exceeded (code 1) to the source
        when the first fragment had come."""
        out: list[Outbound] = []
        for expired in self.reassembler.expire(now):
            for _ in range(expired.fragments):
                self.stats.drop("ipv4_reassembly_timeout", log, expired.key)
            if expired.first_raw:
                first = Ipv4Packet.parse(expired.first_raw)
                delivery = self._delivery(first.destination) or Delivery.UNICAST
                out += self._icmp_error(Received(first, expired.first_raw, delivery),
                                        IcmpType.TIME_EXCEEDED, TIME_EXCEEDED_REASSEMBLY, now)
        return out

    def next_deadline(self, now: float) -> float | None:
        return self.reassembler.next_deadline()


def echo_options(options: bytes, address: IPv4Address, now: float) -> bytes:
    """RFC 1122 3.2.2.6: the Record Route and Timestamp options of an echo request, updated with
    this host, for the reply ("without truncation": the route is for the whole round trip).
    Other options are not echoed. Padded with End-of-List to a multiple of 4 octets."""
    out = b""
    for kind, option in ipv4.parse_options(options):
        if kind == ipv4.IpOption.RECORD_ROUTE:
            out += _record_route(option, address)
        elif kind == ipv4.IpOption.TIMESTAMP:
            out += _timestamp(option, address, now)
    return out + bytes(-len(out) % 4)


def _record_route(option: bytes, address: IPv4Address) -> bytes:
    """RFC 791 "Record Route": our address at the pointer (1-based), pointer moved on by 4; a
    full option (pointer past the end) goes back unchanged."""
    if len(option) < 3 or option[2] < 4 or option[2] + 3 > len(option):
        return option
    pointer = option[2]
    return (option[:2] + bytes([pointer + 4]) + option[3:pointer - 1] + address.packed
            + option[pointer + 3:])


def _timestamp(option: bytes, address: IPv4Address, now: float) -> bytes:
    """RFC 791 "Internet Timestamp": flag 0 timestamps, 1 address + timestamp, 3 prespecified."""
    if len(option) < 4:
        return option
    pointer, overflow, flag = option[2], option[3] >> 4, option[3] & 0x0F
    # RFC 791: ms since midnight UT, or any time with the high-order bit set: a sans-I/O host
    # has no wall clock, so it sends its own clock's milliseconds with that bit set.
    stamp = ((int(now * 1000) & 0x7FFFFFFF) | 0x80000000).to_bytes(4, "big")
    entry = {0: 4, 1: 8, 3: 8}.get(flag)
    if entry is None or pointer < 5:
        return option
    if pointer + entry - 1 > len(option):
        # Full: count the overflow (it saturates at 15 here rather than failing the request).
        return option[:3] + bytes([(min(overflow + 1, 15) << 4) | flag]) + option[4:]
    if flag == 3 and option[pointer - 1:pointer + 3] != address.packed:
        return option  # prespecified, and not our turn
    value = stamp if flag == 0 else address.packed + stamp
    return (option[:2] + bytes([pointer + entry]) + option[3:pointer - 1] + value
            + option[pointer - 1 + entry:])


#: What the host does with each IP protocol; any other (TCP included) gets Protocol Unreachable.
PROTOCOL_HANDLERS: dict[int, Callable[[Ipv4Host, Received, float], list[Outbound]]] = {
    IpProto.ICMP: Ipv4Host.receive_icmp,
    IpProto.UDP: Ipv4Host.receive_udp,
}

#: What the host answers in ICMP; every other type is silently discarded (RFC 1122 3.2.2).
ICMP_HANDLERS: dict[int, Callable[[Ipv4Host, Received, IcmpMessage, float], list[Outbound]]] = {
    IcmpType.ECHO_REQUEST: Ipv4Host.receive_echo_request,
    IcmpType.ECHO_REPLY: Ipv4Host.receive_echo_reply,
    IcmpType.TIMESTAMP_REQUEST: Ipv4Host.receive_timestamp_request,
}
