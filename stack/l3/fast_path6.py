"""The IPv6 echo fast path (header prediction), as ``fast_path.py`` is for IPv4.

Read first: ``stack.l3.fast_path`` (the idea, and why it is not a second set of rules).

The expected kind here: an ICMPv6 Echo Request right behind the 40-byte fixed header (no
extension headers), to one of our usable unicast addresses, from a source that identifies one
node, with a right checksum, whose reply fits the link MTU. Anything else returns None and the
general path (``Ipv6Host.receive``) decides, and counts every drop. The answer is the general
path's byte for byte and counter for counter (tests/core/l3/test_prediction6.py checks that on
generated packets, over TAP and TUN).
"""

from __future__ import annotations

from collections.abc import Callable
from ipaddress import IPv6Address

from stack.buffers import Buffer
from stack.checksum import update
from stack.l3.ipv6 import HEADER, HEADER_LENGTH
from stack.seam import Outbound
from stack.stats import Stats

_ICMPV6 = 58
_ECHO_REQUEST_WORD = 128 << 8  # type 128, code 0
_ECHO_REPLY_WORD = 129 << 8
_VERSION_6 = 6 << 28
_TRAFFIC_CLASS = 0xFF << 20
_UNSPECIFIED = bytes(16)
#: Sources remembered as ``IPv6Address`` values (building one costs more than the rest of a reply).
SOURCE_MEMO_CAPACITY = 256


class EchoFastPath6:
    """Answers the common echo request, or returns None for the general path to decide."""

    def __init__(self, ours: dict[bytes, IPv6Address], usable: Callable[[IPv6Address], bool],
                 send: Callable[[IPv6Address, IPv6Address, list[Buffer], float], list[Outbound]],
                 hop_limit: Callable[[], int], mtu: Callable[[], int], stats: Stats) -> None:
        """``ours``: our addresses by their 16 bytes; ``usable(address)``: DAD has passed;
        ``send(source, destination, datagram, now)``: the host's way out (Neighbor Discovery on
        Ethernet); ``hop_limit()`` and ``mtu()``: the host's current settings."""
        self.ours = ours
        self.usable = usable
        self.send = send
        self.hop_limit = hop_limit
        self.mtu = mtu
        self.counters = stats.counters  # incremented directly: per frame, a call costs more
        self._sources: dict[bytes, IPv6Address] = {}
        #: Our addresses (their 16 bytes) found usable: once DAD has passed, an address stays
        #: usable (RFC 4862 5.4.5: only a tentative one is given up), so it is asked once.
        self._usable: set[bytes] = set()

    def answer(self, datagram: Buffer, now: float) -> list[Outbound] | None:
        size = len(datagram)
        if size < HEADER_LENGTH + 8:
            return None
        first_word, payload_length, next_header, _, source, destination = HEADER.unpack_from(datagram)
        our_address = self.ours.get(destination)
        end = HEADER_LENGTH + payload_length
        if (first_word >> 28 != 6 or next_header != _ICMPV6 or our_address is None
                or datagram[HEADER_LENGTH] != 128 or datagram[HEADER_LENGTH + 1] != 0
                or not HEADER_LENGTH + 8 <= end <= size or end > self.mtu()
                # RFC 4291 2.7, RFC 4443 2.4 (e) 6: a source that is one node
                or source[0] == 0xFF or source == _UNSPECIFIED):
            return None
        if destination not in self._usable:
            if not self.usable(our_address):  # RFC 4862 5.4: not while tentative
                return None
            self._usable.add(destination)
        view = memoryview(datagram)
        # RFC 4443 2.3: the checksum over the pseudo-header (RFC 8200 8.1) and the message: read
        # as integers, the sum of a correct one is a multiple of 0xFFFF (stack.checksum); an odd
        # length is padded with a zero byte.
        message = int.from_bytes(view[HEADER_LENGTH:end], "big")
        if payload_length & 1:
            message <<= 8
        if (int.from_bytes(source, "big") + int.from_bytes(destination, "big") + payload_length + _ICMPV6
                + message) % 0xFFFF:
            return None
        counters = self.counters
        counters["rx_ipv6"] += 1
        counters["rx_icmpv6"] += 1
        peer = self._sources.get(source)
        if peer is None:
            if len(self._sources) >= SOURCE_MEMO_CAPACITY:
                self._sources.clear()
            peer = self._sources[source] = IPv6Address(source)
        # RFC 4443 4.2: the reply carries the request's identifier, sequence number and data;
        # RFC 1624: only the first word changes (128 -> 129), and the pseudo-header's sum does
        # not (source and destination swap), so the checksum is updated, not summed again.
        checksum = update(int.from_bytes(view[HEADER_LENGTH + 2:HEADER_LENGTH + 4], "big"),
                          _ECHO_REQUEST_WORD, _ECHO_REPLY_WORD)
        reply = bytes((129, 0)) + checksum.to_bytes(2, "big") + bytes(view[HEADER_LENGTH + 4:HEADER_LENGTH + 8])
        # The request's Traffic Class, as the general path keeps it.
        header = HEADER.pack(_VERSION_6 | first_word & _TRAFFIC_CLASS, payload_length, _ICMPV6, self.hop_limit(),
                             destination, source)
        counters["icmpv6_echo_replies_sent"] += 1
        return self.send(our_address, peer, [header, reply, view[HEADER_LENGTH + 8:end]], now)
