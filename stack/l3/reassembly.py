"""IPv4 reassembly: fragments in, whole datagrams out, with bounded memory and time.

Read first: RFC 791 3.2 ("Fragmentation and Reassembly"); RFC 815 (hole bookkeeping);
RFC 1122 3.3.2 (a host MUST reassemble, with a timeout); RFC 5722 (overlaps: discard all).

State only, no I/O: ``add(packet, now)`` and ``expire(now)`` take the time and say what
happened; the host counts it and sends what must be sent.
"""

from __future__ import annotations

from bisect import bisect_left
from dataclasses import dataclass, field
from ipaddress import IPv4Address

from stack.l3.ipv4 import MAXIMUM_TOTAL_LENGTH, MINIMUM_HEADER_LENGTH, Ipv4Packet

#: RFC 1122 3.3.2: a timeout between 60 s and 120 s is recommended; Linux uses 30 s
#: (net.ipv4.ipfrag_time), and so do we.
REASSEMBLY_TIMEOUT_S = 30.0
#: At most this many datagrams being reassembled at once; past it, the oldest goes first.
REASSEMBLY_MAX_DATAGRAMS = 64
#: At most this many fragment payload bytes held in all; past it, the oldest datagram goes first.
REASSEMBLY_MAX_BYTES = 4 * 1024 * 1024

#: RFC 791: (source, destination, protocol, identification) names one datagram's fragments.
Key = tuple[IPv4Address, IPv4Address, int, int]


@dataclass(slots=True)
class Partial:
    """A datagram being put together: its fragments' byte ranges and data, in order."""

    started_at: float
    starts: list[int] = field(default_factory=list)  # sorted fragment start offsets (bytes)
    pieces: list[bytes] = field(default_factory=list)  # the data, in the same order
    end: int | None = None  # total payload length, once the last fragment (MF = 0) came
    first: Ipv4Packet | None = None  # the fragment at offset 0: its header goes on the whole
    first_raw: bytes = b""  # that fragment as received, for an ICMP Time Exceeded quote
    held: int = 0  # payload bytes held


@dataclass(frozen=True, slots=True)
class Outcome:
    """What one fragment did. ``datagram`` is set when it completed one; ``reason`` when it (or
    its whole datagram) was dropped; neither when it is held waiting for the rest."""

    datagram: Ipv4Packet | None = None
    reason: str | None = None
    discarded: int = 0  # other fragments thrown away with it (an overlap discards them all)


@dataclass(frozen=True, slots=True)
class Expired:
    """A datagram whose time ran out; ``first_raw`` is its first fragment if that came."""

    key: Key
    first_raw: bytes
    fragments: int


class Reassembler:
    def __init__(self, timeout: float = REASSEMBLY_TIMEOUT_S,
                 max_datagrams: int = REASSEMBLY_MAX_DATAGRAMS,
                 max_bytes: int = REASSEMBLY_MAX_BYTES) -> None:
        self.timeout = timeout
        self.max_datagrams = max_datagrams
        self.max_bytes = max_bytes
        #: Oldest first (insertion order), so eviction takes the first key.
        self.partials: dict[Key, Partial] = {}
        self.held = 0
        self.evicted = 0  # datagrams given up to make room (the host counts them too)

    def add(self, packet: Ipv4Packet, raw: bytes, now: float) -> Outcome:
        """Take one fragment (``raw`` is its bytes as received, for the first one's quote)."""
        start = packet.fragment_offset * 8
        data = bytes(packet.payload)  # a copy: the receive buffer is reused for the next frame
        stop = start + len(data)
        if packet.more_fragments and len(data) % 8:
            # RFC 791: every fragment but the last carries a multiple of 8 octets.
            return Outcome(reason="ipv4_fragment_bad_length")
        if MINIMUM_HEADER_LENGTH + stop > MAXIMUM_TOTAL_LENGTH:
            return Outcome(reason="ipv4_fragment_too_large")  # the "ping of death"
        key = (packet.source, packet.destination, packet.protocol, packet.identification)
        if not data:
            # RFC 791 3.2 defines no empty fragment (a fragment carries data). Linux 6.18 takes
            # one as a broken datagram: it is dropped and what is held of its datagram with it
            # (the fragments after it start the datagram anew); so do we (tapstack diff found it;
            # tests/root/test_fragments_device.py). Never stored: stored, it made the real
            # fragment at its offset look like an overlap (issue 13).
            if key in self.partials:
                return self._discard(key, "ipv4_fragment_empty")
            return Outcome(reason="ipv4_fragment_empty")
        partial = self.partials.get(key)
        if partial is None:
            self._make_room(len(data), new_datagram=True)
            partial = self.partials[key] = Partial(started_at=now)
        inconsistent = (
            (not packet.more_fragments and partial.end is not None and stop != partial.end)
            or (partial.end is not None and stop > partial.end)
            or (not packet.more_fragments and partial.starts
                and partial.starts[-1] + len(partial.pieces[-1]) > stop)
        )
        if inconsistent:
            return self._discard(key, "ipv4_fragment_inconsistent")
        index = bisect_left(partial.starts, start)
        if index < len(partial.starts) and partial.starts[index] == start \
                and len(partial.pieces[index]) == len(data):
            return Outcome(reason="ipv4_fragment_duplicate")  # tolerated; the datagram goes on
        previous_end = partial.starts[index - 1] + len(partial.pieces[index - 1]) if index else 0
        next_start = partial.starts[index] if index < len(partial.starts) else None
        if previous_end > start or (next_start is not None and next_start < stop):
            # RFC 5722 (and Linux for IPv4 since 2018): an overlap discards the whole datagram.
            return self._discard(key, "ipv4_fragment_overlap")
        if self.held + len(data) > self.max_bytes:
            self._make_room(len(data), new_datagram=False, keep=key)
            if self.held + len(data) > self.max_bytes:  # this datagram alone is past the cap
                return self._discard(key, "ipv4_reassembly_evicted")
        partial.starts.insert(index, start)
        partial.pieces.insert(index, data)
        partial.held += len(data)
        self.held += len(data)
        if not packet.more_fragments:
            partial.end = stop
        if start == 0:
            partial.first, partial.first_raw = packet, bytes(raw)
        if partial.end is None or partial.first is None or partial.held != partial.end:
            return Outcome()  # holes remain (no overlaps, so held == end means none)
        del self.partials[key]
        self.held -= partial.held
        first = partial.first
        whole = Ipv4Packet(first.source, first.destination, first.protocol, b"".join(partial.pieces),
                           ttl=first.ttl, identification=first.identification,
                           dont_fragment=first.dont_fragment, type_of_service=first.type_of_service,
                           options=first.options)
        return Outcome(datagram=whole)

    def _discard(self, key: Key, reason: str) -> Outcome:
        partial = self.partials.pop(key)
        self.held -= partial.held
        return Outcome(reason=reason, discarded=len(partial.starts))

    def _make_room(self, incoming: int, new_datagram: bool, keep: Key | None = None) -> None:
        """Past the caps, give up the oldest incomplete datagrams first (never ``keep``)."""
        for oldest in list(self.partials):
            if not ((new_datagram and len(self.partials) >= self.max_datagrams)
                    or self.held + incoming > self.max_bytes):
                return
            if oldest == keep:
                continue
            self.held -= self.partials.pop(oldest).held
            self.evicted += 1

    def expire(self, now: float) -> list[Expired]:
        """RFC 1122 3.3.2: give up datagrams not complete within the timeout."""
        expired: list[Expired] = []
        for key, partial in list(self.partials.items()):
            if now < partial.started_at + self.timeout:
                break  # oldest first: the rest are younger
            del self.partials[key]
            self.held -= partial.held
            expired.append(Expired(key, partial.first_raw, len(partial.starts)))
        return expired

    def next_deadline(self) -> float | None:
        for partial in self.partials.values():
            return partial.started_at + self.timeout
        return None
