"""IPv6 reassembly: fragments in, whole packets out, with bounded memory and time.

Read first: RFC 8200 4.5 (the Fragment header, reassembly, its timeout); RFC 5722 (overlapping
fragments: discard the whole datagram, and its later fragments too); RFC 6946 (atomic fragments).

State only, no I/O: ``add(packet, raw, chain, now)`` and ``expire(now)`` take the time and say
what happened; the host counts it and sends what must be sent (Time Exceeded code 1). The codec
(``stack.l3.ipv6.walk_chain``) has already applied the per-fragment rules that come with a
Parameter Problem: a fragment with M=1 whose length is not a multiple of 8, a reassembled payload
over 65,535 octets, a first fragment without the whole header chain (RFC 7112).
"""

from __future__ import annotations

from bisect import bisect_left
from dataclasses import dataclass, field
from ipaddress import IPv6Address

from stack.buffers import Buffer
from stack.l3.ipv6 import (FRAGMENT_HEADER_LENGTH, HEADER_LENGTH, MAXIMUM_PAYLOAD_LENGTH, NEXT_HEADER_OFFSET,
                           FragmentHeader, HeaderChain, Ipv6Packet)

#: RFC 8200 4.5: reassembly is abandoned 60 seconds after the first-arriving fragment.
REASSEMBLY6_TIMEOUT_S = 60.0
#: At most this many packets being reassembled at once; past it, the oldest goes first.
REASSEMBLY6_MAX_DATAGRAMS = 64
#: At most this many fragment bytes held in all; past it, the oldest packet goes first.
REASSEMBLY6_MAX_BYTES = 4 * 1024 * 1024

#: RFC 8200 4.5: source, destination and identification name one packet's fragments.
Key = tuple[IPv6Address, IPv6Address, int]


@dataclass(slots=True)
class Partial6:
    """A packet being put together: its fragments' byte ranges and data, in order."""

    started_at: float
    starts: list[int] = field(default_factory=list)  # sorted fragment start offsets (bytes)
    pieces: list[bytes] = field(default_factory=list)  # the data, in the same order
    end: int | None = None  # the fragmentable part's length, once the last fragment (M = 0) came
    #: The first fragment's IPv6 header and Unfragmentable Part (headers before its Fragment
    #: header), the Next Header from its Fragment header, and the fragment as received.
    first_header: bytes = b""
    unfragmentable: bytes = b""
    next_header: int | None = None
    first_raw: bytes = b""
    held: int = 0  # bytes held (fragment data and the first fragment's headers)


@dataclass(frozen=True, slots=True)
class Outcome6:
    """What one fragment did. ``packet`` is set when it completed one (or was atomic): the whole
    packet's bytes, without the Fragment header; ``reason`` when it (or its whole packet) was
    dropped; neither when it is held waiting for the rest."""

    packet: bytes | None = None
    reason: str | None = None
    discarded: int = 0  # other fragments thrown away with it (an overlap discards them all)


@dataclass(frozen=True, slots=True)
class Expired6:
    """A packet whose time ran out; ``first_raw`` is its first fragment if that came (RFC 8200
    4.5: the host then sends Time Exceeded code 1 quoting it)."""

    key: Key
    first_raw: bytes
    fragments: int


class Ipv6Reassembler:
    def __init__(self, timeout: float = REASSEMBLY6_TIMEOUT_S,
                 max_datagrams: int = REASSEMBLY6_MAX_DATAGRAMS,
                 max_bytes: int = REASSEMBLY6_MAX_BYTES) -> None:
        self.timeout = timeout
        self.max_datagrams = max_datagrams
        self.max_bytes = max_bytes
        #: Oldest first (insertion order), so eviction takes the first key.
        self.partials: dict[Key, Partial6] = {}
        #: Packets discarded for an overlap, until when their later fragments are discarded too
        #: (RFC 5722 3); oldest first, at most ``max_datagrams`` of them.
        self.discarded: dict[Key, float] = {}
        self.held = 0
        self.evicted = 0  # packets given up to make room (the host counts them too)

    def add(self, packet: Ipv6Packet, raw: Buffer, chain: HeaderChain, now: float) -> Outcome6:
        """Take one fragment: ``chain`` is its walked header chain (``chain.fragment`` is set),
        ``raw`` its bytes as received (kept for the first fragment's Time Exceeded quote)."""
        fragment_header, where = _fragment_of(chain)
        payload = packet.payload
        # RFC 8200 4.5: the fragment data is everything after the Fragment header.
        data_at = where - HEADER_LENGTH + FRAGMENT_HEADER_LENGTH
        if fragment_header.is_atomic:
            # RFC 6946 4: an atomic fragment MUST be processed in isolation from any other
            # fragments, even those with the same source, destination and identification.
            return Outcome6(packet=_whole(bytes(raw[:HEADER_LENGTH]), bytes(payload[:where - HEADER_LENGTH]),
                                          fragment_header.next_header, [bytes(payload[data_at:])]))
        start = fragment_header.fragment_offset * 8
        data = bytes(payload[data_at:])  # a copy: the receive buffer is reused for the next frame
        stop = start + len(data)
        key = (packet.source, packet.destination, fragment_header.identification)
        self._forget_discarded(now)
        if not data:
            # An empty fragment (a first one is refused before, RFC 7112): as for IPv4, Linux
            # 6.18 drops it and what is held of its packet (the fragments after it start the
            # packet anew; found by tapstack diff --ipv6). Stored, it would make the real fragment
            # at its offset look like an overlap.
            if key in self.partials:
                return self._discard(key, "ipv6_fragment_empty", remember=False)
            return Outcome6(reason="ipv6_fragment_empty")
        if key in self.discarded:
            # RFC 5722 3: the constituent fragments of a discarded datagram, "including those not
            # yet received", MUST be silently discarded.
            return Outcome6(reason="ipv6_fragment_of_discarded")
        partial = self.partials.get(key)
        if partial is None:
            self._make_room(len(data), new_datagram=True)
            partial = self.partials[key] = Partial6(started_at=now)
        inconsistent = (
            (not fragment_header.more_fragments and partial.end is not None and stop != partial.end)
            or (partial.end is not None and stop > partial.end)
            or (not fragment_header.more_fragments and partial.starts
                and partial.starts[-1] + len(partial.pieces[-1]) > stop)
        )
        if inconsistent:
            # RFC 8200 4.5 has one end per packet: fragments that disagree cannot be one.
            return self._discard(key, "ipv6_fragment_inconsistent")
        index = bisect_left(partial.starts, start)
        if index < len(partial.starts) and partial.starts[index] == start \
                and len(partial.pieces[index]) == len(data):
            # RFC 8200 4.5: an exact duplicate may be dropped while the other fragments are kept.
            return Outcome6(reason="ipv6_fragment_duplicate")
        previous_end = partial.starts[index - 1] + len(partial.pieces[index - 1]) if index else 0
        next_start = partial.starts[index] if index < len(partial.starts) else None
        if previous_end > start or (next_start is not None and next_start < stop):
            # RFC 5722 3 (and RFC 8200 4.5): an overlapping fragment discards the whole datagram.
            return self._discard(key, "ipv6_fragment_overlap")
        unfragmentable = bytes(payload[:where - HEADER_LENGTH]) if start == 0 else b""
        first_length = len(unfragmentable) if start == 0 else (
            len(partial.unfragmentable) if partial.next_header is not None else None)
        furthest = max(stop, partial.starts[-1] + len(partial.pieces[-1]) if partial.starts else 0)
        if first_length is not None and first_length + furthest > MAXIMUM_PAYLOAD_LENGTH:
            # RFC 8200 4.5: more than 65,535 octets once the first fragment's Unfragmentable Part
            # is counted (the codec checked each fragment with its own headers only).
            return self._discard(key, "ipv6_fragment_too_large")
        incoming = len(data) + (HEADER_LENGTH + len(unfragmentable) if start == 0 else 0)
        if self.held + incoming > self.max_bytes:
            self._make_room(incoming, new_datagram=False, keep=key)
            if self.held + incoming > self.max_bytes:  # this packet alone is past the cap
                return self._discard(key, "ipv6_reassembly_evicted", remember=False)
        partial.starts.insert(index, start)
        partial.pieces.insert(index, data)
        partial.held += incoming
        self.held += incoming
        if not fragment_header.more_fragments:
            partial.end = stop
        if start == 0:
            # RFC 8200 4.5: the Unfragmentable Part and the Next Header come from the first
            # fragment (offset zero) only; other fragments' headers before theirs are ignored.
            partial.first_header = bytes(raw[:HEADER_LENGTH])
            partial.unfragmentable = unfragmentable
            partial.next_header = fragment_header.next_header
            partial.first_raw = bytes(raw[:HEADER_LENGTH + packet.payload_length])
        covered = sum(map(len, partial.pieces))
        if partial.end is None or partial.next_header is None or covered != partial.end:
            return Outcome6()  # holes remain (no overlaps, so covered == end means none)
        del self.partials[key]
        self.held -= partial.held
        return Outcome6(packet=_whole(partial.first_header, partial.unfragmentable, partial.next_header,
                                      partial.pieces))

    def _discard(self, key: Key, reason: str, remember: bool = True) -> Outcome6:
        partial = self.partials.pop(key)
        self.held -= partial.held
        if remember:
            self.discarded[key] = partial.started_at + self.timeout
            while len(self.discarded) > self.max_datagrams:
                del self.discarded[next(iter(self.discarded))]
        return Outcome6(reason=reason, discarded=len(partial.starts))

    def _forget_discarded(self, now: float) -> None:
        # RFC 5722 does not say for how long: as long as the datagram could have been reassembled.
        # (At most ``max_datagrams`` entries, not in deadline order: all are looked at.)
        for key, until in list(self.discarded.items()):
            if now >= until:
                del self.discarded[key]

    def _make_room(self, incoming: int, new_datagram: bool, keep: Key | None = None) -> None:
        """Past the caps, give up the oldest incomplete packets first (never ``keep``)."""
        for oldest in list(self.partials):
            if not ((new_datagram and len(self.partials) >= self.max_datagrams)
                    or self.held + incoming > self.max_bytes):
                return
            if oldest == keep:
                continue
            self.held -= self.partials.pop(oldest).held
            self.evicted += 1

    def expire(self, now: float) -> list[Expired6]:
        """RFC 8200 4.5: abandon packets not complete 60 seconds after their first-arriving fragment."""
        self._forget_discarded(now)
        expired: list[Expired6] = []
        for key, partial in list(self.partials.items()):
            if now < partial.started_at + self.timeout:
                break  # oldest first: the rest are younger
            del self.partials[key]
            self.held -= partial.held
            expired.append(Expired6(key, partial.first_raw, len(partial.starts)))
        return expired

    def next_deadline(self) -> float | None:
        for partial in self.partials.values():
            return partial.started_at + self.timeout
        return None


def _fragment_of(chain: HeaderChain) -> tuple[FragmentHeader, int]:
    """The chain's Fragment header and where it starts in the packet."""
    for header in chain.headers:
        if isinstance(header.value, FragmentHeader):
            return header.value, header.offset
    raise ValueError("not a fragment: the chain has no Fragment header")


def _whole(fixed: bytes, unfragmentable: bytes, next_header: int, pieces: list[bytes]) -> bytes:
    """RFC 8200 4.5: the reassembled packet: the first fragment's IPv6 header with the Payload
    Length of the whole, its Unfragmentable Part whose last Next Header is the Fragment header's,
    then the fragmentable part."""
    size = len(unfragmentable) + sum(map(len, pieces))
    headers = bytearray(fixed + unfragmentable)
    headers[4:6] = size.to_bytes(2, "big")
    headers[_last_next_header(headers)] = next_header
    return bytes(headers) + b"".join(pieces)


def _last_next_header(headers: bytearray) -> int:
    """Where the Next Header field that named the Fragment header is: the fixed header's, or
    the last extension header's of the Unfragmentable Part (each one's length is its own)."""
    pointer, index = NEXT_HEADER_OFFSET, HEADER_LENGTH
    while index < len(headers):
        pointer = index
        index += (headers[index + 1] + 1) * 8  # Hop-by-Hop, Destination, Routing: 8-octet units
    return pointer
