"""Our own IPv6 packets on their way out: hop limit, and fragments that fit the link MTU.

Read first: RFC 8200 4.5 (fragmentation by the source), 5 (the 1280-octet minimum MTU);
RFC 7739 (Fragment Identification values must not be trivially predictable).

The payload stays a list of buffers: a fragment's data is views into it, never a copy.
"""

from __future__ import annotations

from collections.abc import Callable
from ipaddress import IPv6Address

from stack.buffers import Buffer, length, slice_buffers
from stack.l3.ipv6 import (DEFAULT_HOP_LIMIT, FRAGMENT, FRAGMENT_HEADER_LENGTH, FRAGMENT_OFFSET_SHIFT,
                           HEADER_LENGTH, MAXIMUM_PAYLOAD_LENGTH, MINIMUM_MTU, NextHeader, header_bytes)
from stack.stats import Stats


class Output6:
    """Builds, and fragments when they exceed the MTU, the IPv6 packets we originate."""

    def __init__(self, stats: Stats, hop_limit: int = DEFAULT_HOP_LIMIT, mtu: int = 1500,
                 uniform: Callable[[float, float], float] | None = None) -> None:
        """``mtu`` is the link's (the largest packet it carries). ``uniform`` seeds the
        Identification counter (RFC 7739); without it the counter starts at 0."""
        if not 1 <= hop_limit <= 255:
            raise ValueError(f"hop limit {hop_limit} is not between 1 and 255")
        # RFC 8200 5: every link has an MTU of 1280 octets or more.
        if mtu < MINIMUM_MTU:
            raise ValueError(f"MTU {mtu} < {MINIMUM_MTU}, the IPv6 minimum (RFC 8200 5)")
        self.stats = stats
        self.hop_limit = hop_limit
        self.mtu = mtu
        # RFC 7739 5.1 (a documented choice): one counter for all destinations, started at a
        # random value and stepped by one per fragmented packet. A peer that sees two of our
        # fragmented packets learns how many we fragmented in between, nothing else; the values
        # are not predictable before the first one is seen.
        self._identification = int((uniform or (lambda low, high: low))(0, 0xFFFFFFFF)) & 0xFFFFFFFF

    def next_identification(self) -> int:
        """RFC 8200 4.5: a new Identification for each fragmented packet."""
        self._identification = (self._identification + 1) & 0xFFFFFFFF
        return self._identification

    def datagrams(self, source: IPv6Address, destination: IPv6Address, next_header: int,
                  payload: list[Buffer], hop_limit: int | None = None,
                  extension: bytes = b"", extension_type: int = NextHeader.HOP_BY_HOP,
                  traffic_class: int = 0) -> list[list[Buffer]]:
        """Our packet as one datagram (buffers, the IPv6 header first) or, above the link MTU,
        as fragments (RFC 8200 4.5).

        ``extension``: extension headers that go before the payload and belong to the
        Unfragmentable Part (RFC 8200 4.5: Hop-by-Hop, Routing): a Hop-by-Hop Options header
        first, e.g. MLD's Router Alert, unless it starts with a Routing or Destination Options
        header (``extension_type``). Their Next Header fields chain among themselves; the last
        one is set here (to ``next_header``, or 44 in fragments). ``traffic_class``: the
        header's (an echo reply's is the request's).
        """
        hop_limit = self.hop_limit if hop_limit is None else hop_limit
        size = length(payload)
        if len(extension) + size > MAXIMUM_PAYLOAD_LENGTH:
            raise ValueError(f"payload of {len(extension) + size} bytes > {MAXIMUM_PAYLOAD_LENGTH} (no jumbograms)")
        first_type = extension_type
        if HEADER_LENGTH + len(extension) + size <= self.mtu:
            if not extension:
                return [[header_bytes(source, destination, next_header, size, hop_limit, traffic_class), *payload]]
            return [[header_bytes(source, destination, first_type, len(extension) + size, hop_limit, traffic_class),
                     _chained(extension, next_header), *payload]]
        # RFC 8200 4.5: the Fragmentable Part goes in pieces of a multiple of 8 octets (all but
        # the last), each after the Unfragmentable Part and a Fragment header; the same
        # Identification in all of them, the offset in 8-octet units, M set on all but the last.
        unfragmentable = _chained(extension, NextHeader.FRAGMENT) if extension else b""
        room = (self.mtu - HEADER_LENGTH - len(unfragmentable) - FRAGMENT_HEADER_LENGTH) // 8 * 8
        if room < 8:
            raise ValueError(f"extension headers of {len(extension)} bytes leave no room in an MTU of {self.mtu}")
        identification = self.next_identification()
        out: list[list[Buffer]] = []
        start = 0
        while start < size:
            stop = min(start + room, size)
            more = stop < size
            fragment = FRAGMENT.pack(next_header, 0, start // 8 << FRAGMENT_OFFSET_SHIFT | more, identification)
            header = header_bytes(source, destination, first_type if extension else NextHeader.FRAGMENT,
                                  len(unfragmentable) + FRAGMENT_HEADER_LENGTH + stop - start, hop_limit,
                                  traffic_class)
            out.append([header, *([unfragmentable] if unfragmentable else []), fragment,
                        *slice_buffers(payload, start, stop)])
            start = stop
        self.stats.count("ipv6_fragments_sent", len(out))
        return out


def _chained(extension: bytes, next_header: int) -> bytes:
    """``extension`` with the Next Header of its last header set to ``next_header``."""
    headers = bytearray(extension)
    index = last = 0
    while index < len(headers):
        last = index
        index += (headers[index + 1] + 1) * 8  # Hop-by-Hop, Routing, Destination: 8-octet units
    if index != len(headers):
        raise ValueError(f"extension headers of {len(headers)} bytes do not end where their lengths say")
    headers[last] = next_header
    return bytes(headers)
