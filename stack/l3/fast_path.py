"""The echo fast path (header prediction): a plain echo request to us, answered in a few steps.

Read first: Clark, Jacobson, Romkey, Salwen, "An Analysis of TCP Processing Overhead" (1989):
most packets are of the expected kind, so test for that kind first with a few comparisons and
handle it without the general machinery.

Here the expected kind is an ICMP echo request in a 20-byte IPv4 header (no options, not a
fragment) to one of our unicast addresses, from a valid source we can route to, with a right
ICMP checksum; the IPv4 header has been read and checked already (``ipv4.read_header``, the
general path's own first step). This is an optimisation, not a second set of rules: it asks the host's own
``Addresses`` (delivery, martian source, next hop) and ``Output`` (identification, TTL, MTU),
and anything it does not recognise returns None and takes the general path, which also counts
every drop. The answer is the general path's, byte for byte and counter for counter
(tests/core/test_prediction.py checks that on generated datagrams, for TAP, TUN and TUN with the
packet-information header).
"""

from __future__ import annotations

from stack.buffers import Buffer
from stack.l3 import icmp, ipv4
from stack.l3.addresses import Addresses
from stack.l3.icmp import IcmpType
from stack.l3.ipv4 import MINIMUM_HEADER_LENGTH, Header, IpProto
from stack.l3.output import Output
from stack.stats import Stats
from stack.seam import Outbound

#: A 20-byte IPv4 header followed by an 8-byte ICMP header.
PREDICTED_LENGTH = MINIMUM_HEADER_LENGTH + icmp.HEADER.size
#: Fields are compared with plain ints: reading an IntEnum member costs more than the comparison.
_PROTOCOL_ICMP = int(IpProto.ICMP)
_ECHO_REQUEST = int(IcmpType.ECHO_REQUEST)
_ECHO_REPLY = int(IcmpType.ECHO_REPLY)
_FRAGMENT_BITS = ipv4.FLAG_MORE_FRAGMENTS | ipv4.FRAGMENT_OFFSET_MASK


class EchoFastPath:
    """Answers the common echo request, or returns None for the general path to decide."""

    def __init__(self, addresses: Addresses, output: Output, stats: Stats) -> None:
        self.addresses = addresses
        self.output = output
        self.stats = stats
        self.counters = stats.counters  # incremented directly: per frame, a call costs more

    def answer(self, datagram: Buffer, header: Header) -> list[Outbound] | None:
        """The reply to a plain echo request to us (as the general path would send it), or None.
        ``header`` is what ``ipv4.read_header`` read and checked (lengths, header checksum)."""
        (header_length, type_of_service, total_length, _, flags_offset, _, protocol, _, source,
         destination) = header
        addresses = self.addresses
        # RFC 1122 3.2.1.3: for us as a unicast destination (``Addresses.delivery``'s first case).
        our_address = addresses.usable_packed.get(destination)
        if (header_length != MINIMUM_HEADER_LENGTH or protocol != _PROTOCOL_ICMP
                or flags_offset & _FRAGMENT_BITS  # a fragment: reassembly first
                or total_length < PREDICTED_LENGTH
                or total_length > self.output.mtu  # the reply is as long: larger ones are fragmented
                or our_address is None):
            return None
        icmp_type, icmp_code, icmp_checksum, rest_of_header = icmp.HEADER.unpack_from(datagram, 20)
        if icmp_type != _ECHO_REQUEST:
            return None
        view = memoryview(datagram)
        # RFC 1122 3.2.2: the ICMP checksum verifies, or the general path drops it. As in
        # checksum.verifies: read as one integer, a message with a correct checksum is a multiple
        # of 0xFFFF (an echo request is never all zeros: type 8).
        if int.from_bytes(view[20:total_length], "big") % 0xFFFF:
            return None
        # RFC 1122 3.2.1.3: not from a martian source; RFC 1122 3.3.1.1: a next hop for the reply.
        next_hop = addresses.reply_next_hop(source)
        if next_hop is None:
            return None
        counters = self.counters
        counters["rx_ipv4_delivered"] += 1
        # What IcmpResponder.receive_echo_request does, with the addresses kept as the 4 bytes
        # they came in: RFC 1122 3.2.2.6: the reply's source is the request's destination, and it
        # carries the request's identifier, sequence number and data (a view of the request, not
        # a copy). RFC 1624: only the first word changes (type 8 -> 0, code -> 0), so the
        # request's checksum is updated rather than the data summed again.
        reply_checksum = icmp.echo_reply_checksum(icmp_checksum, icmp_type << 8 | icmp_code,
                                                  view[24:total_length])
        reply_header = icmp.HEADER.pack(_ECHO_REPLY, 0, reply_checksum, rest_of_header)
        counters["icmp_echo_replies_sent"] += 1
        header = self.output.packed_header(destination, source, _PROTOCOL_ICMP,
                                           total_length - MINIMUM_HEADER_LENGTH, type_of_service)
        return [Outbound(next_hop, [header, reply_header, view[28:total_length]], our_address)]
