"""Our own datagrams on their way out: identification, TTL, and fragments that fit the MTU.

Read first: RFC 791 3.2 (fragmentation); RFC 1122 3.2.1.5 (identification), 3.2.1.7 (TTL).

Every datagram the host sends, the echo fast path's included, gets its header here; the payload
stays a list of buffers (fragments are views into it: the iovec path copies nothing).
"""

from __future__ import annotations

from ipaddress import IPv4Address

from stack.buffers import Buffer, length, slice_buffers
from stack.l3 import ipv4
from stack.l3.ipv4 import DEFAULT_TTL, MINIMUM_HEADER_LENGTH
from stack.stats import Stats
from stack.seam import Outbound


class Output:
    """Builds and fragments the datagrams we originate."""

    def __init__(self, stats: Stats, ttl: int = DEFAULT_TTL, mtu: int = 1500) -> None:
        """``ttl`` (RFC 1122 3.2.1.7) is the host's choice; ``mtu`` is the link's: the largest
        datagram it carries (the device tells; RFC 791 3.2)."""
        if not 1 <= ttl <= 255:
            raise ValueError(f"TTL {ttl} is not between 1 and 255")  # RFC 1122 3.2.1.7: never 0
        self.stats = stats
        self.ttl = ttl
        self.mtu = mtu
        self._identification = 0

    def packed_header(self, source: bytes, destination: bytes, protocol: int, payload_length: int,
                      type_of_service: int = 0, flags_offset: int = 0, options: bytes = b"",
                      same_identification: bool = False) -> bytes:
        """The header of our next datagram, addresses as 4 bytes each (as the fast path has
        them). RFC 791 / RFC 1122 3.2.1.5: each datagram gets the next identification, its
        fragments (``same_identification``) the one their datagram has."""
        if not same_identification:
            self._identification = (self._identification + 1) & 0xFFFF
        return ipv4.packed_header_bytes(source, destination, protocol, payload_length, self.ttl,
                                        self._identification, flags_offset, type_of_service, options)

    def send(self, source: IPv4Address, destination: IPv4Address, protocol: int,
             payload: list[Buffer], next_hop: IPv4Address, options: bytes = b"",
             type_of_service: int = 0, dont_fragment: bool = False) -> list[Outbound]:
        """A datagram from us, as one or more ``Outbound`` (fragments when it exceeds the MTU;
        ``dont_fragment`` sets DF on one that fits, RFC 791 3.1)."""
        size = length(payload)
        source_bytes, destination_bytes = source.packed, destination.packed
        if MINIMUM_HEADER_LENGTH + len(options) + size <= self.mtu:
            header = self.packed_header(source_bytes, destination_bytes, protocol, size, type_of_service,
                                        ipv4.FLAG_DONT_FRAGMENT if dont_fragment else 0, options=options)
            return [Outbound(next_hop, [header, *payload], source)]
        # RFC 791 3.2: fragment at multiples of 8 octets, MF on all but the last. The options we
        # send (Record Route, Timestamp) are not "copied" ones: only the first fragment has them.
        out = []
        start = 0
        while start < size:
            room = self.mtu - MINIMUM_HEADER_LENGTH - (len(options) if start == 0 else 0)
            stop = min(start + room // 8 * 8, size)
            flags_offset = (ipv4.FLAG_MORE_FRAGMENTS if stop < size else 0) | start // 8
            header = self.packed_header(source_bytes, destination_bytes, protocol, stop - start,
                                        type_of_service, flags_offset,
                                        options if start == 0 else b"", same_identification=start > 0)
            out.append(Outbound(next_hop, [header, *slice_buffers(payload, start, stop)], source))
            start = stop
        self.stats.count("ipv4_fragments_sent", len(out))
        return out
