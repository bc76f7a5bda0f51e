"""The neighbour (ARP) cache: IPv4 address -> MAC, with lifetime, pending queue and rate limit.

Read first: RFC 826 ("Packet Reception"); RFC 1122 2.3.2.1 (cache validation, flooding) and
2.3.2.2 (queue while resolving).

State only, no I/O: every method takes ``now`` (seconds, any monotonic origin) and returns what
to do; the link layer turns that into frames.
"""

from __future__ import annotations

import math
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from ipaddress import IPv4Address

from stack.l2.ethernet import MacAddress

#: How long a learnt entry is used before it must be learnt again (RFC 1122 2.3.2.1: timeout).
ARP_ENTRY_LIFETIME_S = 60.0
#: At most this many resolved neighbours; the least recently confirmed one goes first.
ARP_CACHE_CAPACITY = 1024
#: RFC 1122 2.3.2.1: at most one ARP request per second per destination.
ARP_REQUEST_INTERVAL_S = 1.0
#: Requests sent for one address before giving up (Linux: mcast_solicit = 3).
ARP_MAX_REQUESTS = 3
#: RFC 1122 2.3.2.2: SHOULD save at least one (the latest) datagram per unresolved address.
#: We keep the latest datagrams up to a count and a byte size (as Linux's unres_qlen and
#: unres_qlen_bytes), enough for every fragment of a 65,535-byte datagram: a reply sent in
#: fragments must not lose its first ones while the neighbour is resolved.
PENDING_DATAGRAMS_PER_NEIGHBOR = 256
PENDING_BYTES_PER_NEIGHBOR = 128 * 1024
#: At most this many addresses being resolved at once.
PENDING_NEIGHBORS_CAPACITY = 64


#: Told of every entry learnt from the wire: ``observer(address, mac, now)``. With one worker per
#: queue (``tapstack run --queues N``) the runtime tells the sibling workers (stack.runtime.workers).
Observer = Callable[[IPv4Address, MacAddress, float], None]

#: A datagram held while its next hop is resolved, with the address it is sent from (so the
#: link can send it from that address's MAC).
Queued = tuple["IPv4Address | None", bytes]


@dataclass(slots=True)
class Entry:
    mac: MacAddress
    expires_at: float
    #: Set by an administrator (``ip neigh add ... nud permanent``, ``arp -s``): never expires,
    #: never evicted, and no ARP packet changes it.
    permanent: bool = False


@dataclass(slots=True)
class Pending:
    """An address being resolved (Linux: NUD_INCOMPLETE) and the datagrams waiting for it."""

    next_request_at: float
    requests_sent: int = 0
    datagrams: deque[Queued] = field(default_factory=deque)
    held: int = 0  # bytes of the datagrams


@dataclass(slots=True)
class Resolved:
    """An address that has just been resolved, with the datagrams that were waiting for it."""

    address: IPv4Address
    mac: MacAddress
    datagrams: list[Queued]


class NeighborCache:
    """Resolved entries plus pending resolutions, both bounded."""

    def __init__(
        self,
        lifetime: float = ARP_ENTRY_LIFETIME_S,
        capacity: int = ARP_CACHE_CAPACITY,
        request_interval: float = ARP_REQUEST_INTERVAL_S,
        max_requests: int = ARP_MAX_REQUESTS,
        pending_capacity: int = PENDING_NEIGHBORS_CAPACITY,
        queue_length: int = PENDING_DATAGRAMS_PER_NEIGHBOR,
        queue_bytes: int = PENDING_BYTES_PER_NEIGHBOR,
    ) -> None:
        self.lifetime = lifetime
        self.capacity = capacity
        self.request_interval = request_interval
        self.max_requests = max_requests
        self.pending_capacity = pending_capacity
        self.queue_length = queue_length
        self.queue_bytes = queue_bytes
        #: Ordered oldest confirmation first, so eviction takes the first key.
        self.entries: dict[IPv4Address, Entry] = {}
        self.pending: dict[IPv4Address, Pending] = {}
        #: Called after every entry ``learn`` records from the wire (None: nobody listens).
        self.observer: Observer | None = None

    def __contains__(self, address: IPv4Address) -> bool:
        """In the table in RFC 826's sense: resolved, or being resolved."""
        return address in self.entries or address in self.pending

    def lookup(self, address: IPv4Address, now: float) -> MacAddress | None:
        entry = self.entries.get(address)
        if entry is None:
            return None
        if now >= entry.expires_at:
            del self.entries[address]
            return None
        return entry.mac

    def learn(self, address: IPv4Address, mac: MacAddress, now: float, tell: bool = True) -> Resolved | None:
        """Record ``address`` at ``mac``. Returns the datagrams that were waiting for it, if any.

        The ``observer`` hears of it unless ``tell`` is False (an entry that came from an
        observer elsewhere: a sibling worker, which told the others itself).

        A permanent entry stays as it is (RFC 826's merge updates what was learnt, not what an
        administrator set; Linux 6.18 keeps a NUD_PERMANENT entry too, see tests/tools/test_diff.py).
        """
        old = self.entries.get(address)
        if old is not None and old.permanent:
            return None
        self.entries.pop(address, None)  # re-insert at the end: most recently confirmed
        self.entries[address] = Entry(mac, now + self.lifetime)
        if len(self.entries) > self.capacity:
            self._evict()
        if tell and self.observer is not None:
            self.observer(address, mac, now)
        pending = self.pending.pop(address, None)
        if pending is None:
            return None
        return Resolved(address, mac, list(pending.datagrams))

    def add_permanent(self, address: IPv4Address, mac: MacAddress) -> Resolved | None:
        """An entry set by an administrator: used until removed, whatever ARP says. Returns the
        datagrams that were waiting for ``address``, if any."""
        self.entries.pop(address, None)
        self.entries[address] = Entry(mac, math.inf, permanent=True)
        self._evict()
        pending = self.pending.pop(address, None)
        return None if pending is None else Resolved(address, mac, list(pending.datagrams))

    def _evict(self) -> None:
        """Forget the least recently confirmed learnt entries while over capacity (permanent
        entries stay, even beyond it)."""
        while len(self.entries) > self.capacity:
            oldest = next((address for address, entry in self.entries.items() if not entry.permanent), None)
            if oldest is None:
                return
            del self.entries[oldest]

    def enqueue(self, address: IPv4Address, datagram: Queued, now: float) -> tuple[bool, int]:
        """Hold a datagram for an unresolved address.

        Returns (send a request now?, datagrams dropped to make room). A new resolution asks for
        a request at once; later datagrams wait for the retry timer (RFC 1122 2.3.2.1).
        """
        pending = self.pending.get(address)
        if pending is None:
            if len(self.pending) >= self.pending_capacity:
                return False, 1
            pending = self.pending[address] = Pending(next_request_at=now)
        pending.datagrams.append(datagram)  # RFC 1122 2.3.2.2: keep the latest, drop the oldest
        pending.held += len(datagram[1])
        dropped = 0
        while len(pending.datagrams) > 1 and (len(pending.datagrams) > self.queue_length
                                              or pending.held > self.queue_bytes):
            pending.held -= len(pending.datagrams.popleft()[1])
            dropped += 1
        if pending.requests_sent == 0 and now >= pending.next_request_at:
            self._mark_requested(pending, now)
            return True, dropped
        return False, dropped

    def _mark_requested(self, pending: Pending, now: float) -> None:
        pending.requests_sent += 1
        pending.next_request_at = now + self.request_interval

    def poll(self, now: float) -> tuple[list[IPv4Address], list[tuple[IPv4Address, int]]]:
        """Timers: (addresses to send another request for, (address, datagrams) given up on)."""
        retry: list[IPv4Address] = []
        failed: list[tuple[IPv4Address, int]] = []
        for address, pending in list(self.pending.items()):
            if now < pending.next_request_at:
                continue
            if pending.requests_sent >= self.max_requests:
                del self.pending[address]
                failed.append((address, len(pending.datagrams)))
            else:
                self._mark_requested(pending, now)
                retry.append(address)
        return retry, failed

    def next_deadline(self) -> float | None:
        """When ``poll`` next has work: the earliest retry or give-up time. Entries expire lazily."""
        if not self.pending:  # the usual case, asked at every wake-up of the loop
            return None
        return min(p.next_request_at for p in self.pending.values())

    def expire(self, now: float) -> int:
        """Forget entries whose lifetime is over; returns how many."""
        stale = [address for address, entry in self.entries.items() if now >= entry.expires_at]
        for address in stale:
            del self.entries[address]
        return len(stale)
