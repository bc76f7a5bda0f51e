"""What the host answers in ICMP, the echo requests it sends, and the ICMP errors it sends.

Read first: RFC 792; RFC 1122 3.2.2 (ICMP), 3.2.2.6 (echo), 3.2.2.8 (timestamp); RFC 1812
4.3.2 (the size and precedence of an error, as Linux follows it).

``ICMP_HANDLERS`` says which types are answered; every other type is silently discarded.
``error`` is the one way the host sends an ICMP error, behind the RFC 1122 3.2.2 rules and a
token bucket.
"""

from __future__ import annotations

import logging
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from ipaddress import IPv4Address

from stack.buffers import Buffer, Payload, length
from stack.errors import ParseError
from stack.l3 import icmp
from stack.l3.addresses import Addresses
from stack.l3.icmp import IcmpMessage, IcmpType
from stack.l3.ipv4 import MINIMUM_HEADER_LENGTH, IpProto
from stack.l3.options import echo_options
from stack.l3.output import Output
from stack.l3.seam import Delivery, Received
from stack.ratelimit import TokenBucket
from stack.stats import Stats
from stack.seam import Outbound

log = logging.getLogger(__name__)

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
#: ICMP types known to be queries (RFC 792, RFC 950: echo, timestamp, information and address
#: mask, request and reply). RFC 1122 3.2.2: never answer an ICMP error message with another;
#: like Linux 6.18 (its ``icmp_pointers[].error`` and NR_ICMP_TYPES, checked by tapstack diff)
#: every other type counts as one (the errors, the unassigned and router discovery types, and
#: any type above 18 that may be a newer error).
ICMP_QUERY_TYPES = frozenset({IcmpType.ECHO_REPLY, IcmpType.ECHO_REQUEST, IcmpType.TIMESTAMP_REQUEST,
                              IcmpType.TIMESTAMP_REPLY, 15, 16, 17, 18})
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


@dataclass(frozen=True, slots=True)
class EchoReply:
    """An answer to one of our own echo requests (``Ipv4Host.ping``)."""

    source: IPv4Address
    identifier: int
    sequence: int
    ttl: int
    size: int  # ICMP data bytes, as ping's "64 bytes from" counts ICMP header + data
    rtt: float  # seconds between ping() and receive(), both on the caller's clock


class IcmpResponder:
    """The host's ICMP: answers (``ICMP_HANDLERS``), its own pings, and the errors it sends."""

    def __init__(self, addresses: Addresses, output: Output, stats: Stats,
                 error_limit: TokenBucket, answer_broadcast_echo: bool = False,
                 timestamp_reply: TimestampReply | None = None) -> None:
        """``error_limit`` rate-limits ICMP errors (RFC 1122 3.2.2). ``timestamp_reply(request,
        now)`` answers ICMP Timestamp requests (RFC 1122 3.2.2.8: a MAY); without it they are
        discarded like any type we do not handle (lab 06 writes one)."""
        self.addresses = addresses
        self.output = output
        self.stats = stats
        self.error_limit = error_limit
        self.answer_broadcast_echo = answer_broadcast_echo
        self.timestamp_reply = timestamp_reply
        self._outstanding: dict[tuple[IPv4Address, int, int], float] = {}
        self.events: deque[EchoReply] = deque(maxlen=EVENT_CAPACITY)

    # ------------------------------------------------------------------ receive

    def receive(self, received: Received, now: float) -> list[Outbound]:
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
            source = self.addresses.preferred_source(packet.source)
        next_hop = self.addresses.next_hop(packet.source)
        if next_hop is None:
            self.stats.drop("ipv4_no_route", log, packet.source)
            return []
        options = echo_options(packet.options, source, now) if packet.options else b""
        # RFC 792 / RFC 1122 3.2.2.6: the reply carries the request's identifier, sequence and
        # data (the data as a view of the request: the iovec path copies nothing).
        # RFC 1349 5.1: and the request's TOS (Linux copies the whole byte, ECN bits too).
        reply_header = icmp.header_bytes(IcmpType.ECHO_REPLY, 0, request.rest_of_header, request.payload)
        self.stats.count("icmp_echo_replies_sent")
        return self.output.send(source, packet.source, IpProto.ICMP, [reply_header, request.payload],
                                next_hop, options, packet.type_of_service)

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
        next_hop = self.addresses.next_hop(packet.source)
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
        return self.output.send(packet.destination, packet.source, IpProto.ICMP, reply.buffers(), next_hop)

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

    # ------------------------------------------------------------------ our pings

    def ping(self, destination: IPv4Address | str, now: float, identifier: int = 0,
             sequence: int = 0, payload: Payload = b"") -> list[Outbound]:
        """Originate one echo request; its reply (if any) becomes an ``EchoReply`` in ``events``."""
        destination = IPv4Address(destination)
        next_hop = self.addresses.route(destination)
        request = IcmpMessage.echo(IcmpType.ECHO_REQUEST, identifier, sequence, payload)
        self._outstanding[(destination, identifier, sequence)] = now
        while len(self._outstanding) > OUTSTANDING_ECHO_CAPACITY:
            del self._outstanding[next(iter(self._outstanding))]
        self.stats.count("icmp_echo_requests_sent")
        source = self.addresses.preferred_source(destination)
        return self.output.send(source, destination, IpProto.ICMP, request.buffers(), next_hop)

    def take_echo_replies(self, identifier: int) -> list[EchoReply]:
        """Remove and return the events for echo requests sent with ``identifier``."""
        mine = [event for event in self.events if event.identifier == identifier]
        if mine:
            self.events = deque((e for e in self.events if e.identifier != identifier),
                                maxlen=EVENT_CAPACITY)
        return mine

    # ------------------------------------------------------------------ errors

    def error(self, received: Received, type: int, code: int, now: float) -> list[Outbound]:
        """An ICMP error about ``received``, unless RFC 1122 3.2.2 forbids one or the rate limit
        says no."""
        packet = received.packet
        # RFC 1122 3.2.2: an ICMP error message MUST NOT be sent as the result of receiving
        if packet.protocol == IpProto.ICMP and packet.fragment_offset == 0 and (
                len(packet.payload) == 0 or packet.payload[0] not in ICMP_QUERY_TYPES):
            return self._no_error("icmp_error_about_icmp_error")  # ... an ICMP error message (or not a query),
        if received.delivery is not Delivery.UNICAST:
            return self._no_error("icmp_error_about_broadcast")  # ... a broadcast or multicast,
        if received.link_broadcast:
            return self._no_error("icmp_error_about_link_broadcast")  # ... a link-layer broadcast,
        if packet.fragment_offset != 0:
            return self._no_error("icmp_error_about_fragment")  # ... a non-initial fragment,
        if self.addresses.martian_source(packet.source) or int(packet.source) >> 28 == 0xF:
            return self._no_error("icmp_error_to_non_host")  # ... a source that is not one host.
        next_hop = self.addresses.next_hop(packet.source)
        if next_hop is None:
            return self._no_error("icmp_error_no_route")
        if not self.error_limit.take(now):
            return self._no_error("icmp_error_rate_limited")
        room = ICMP_ERROR_MAXIMUM - MINIMUM_HEADER_LENGTH - icmp.HEADER_LENGTH
        # RFC 792: the header and at least 64 bits of data; the datagram, never the link's
        # padding after it (RFC 894).
        quote: Buffer = memoryview(received.raw)[:min(room, packet.total_length)]
        header = icmp.header_bytes(type, code, bytes(4), quote)
        self.stats.count("icmp_errors_sent")
        type_of_service = ICMP_ERROR_PRECEDENCE | packet.type_of_service & TOS_BITS
        return self.output.send(packet.destination, packet.source, IpProto.ICMP, [header, quote],
                                next_hop, type_of_service=type_of_service)

    def _no_error(self, reason: str) -> list[Outbound]:
        self.stats.count(reason)
        return []


#: What the host answers in ICMP; every other type is silently discarded (RFC 1122 3.2.2).
ICMP_HANDLERS: dict[int, Callable[[IcmpResponder, Received, IcmpMessage, float], list[Outbound]]] = {
    IcmpType.ECHO_REQUEST: IcmpResponder.receive_echo_request,
    IcmpType.ECHO_REPLY: IcmpResponder.receive_echo_reply,
    IcmpType.TIMESTAMP_REQUEST: IcmpResponder.receive_timestamp_request,
}
