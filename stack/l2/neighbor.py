"""The neighbour (ARP) cache: IPv4 address -> MAC, with lifetime, pending queue and rate limit.

Read first: RFC 826 ("Packet Reception"); RFC 1122 2.3.2.1 (cache validation, flooding) and
2.3.2.2 (queue while resolving); RFC 5227 2.4 (checking before believing a claim).

An entry in use is not moved to another MAC on the word of one ARP packet (``merge``): the old
MAC is checked first (the link sends it a unicast request), and the entry moves only when the old
MAC stays silent for ``check_interval``. RFC 826's merge believes every packet, which lets any
host on the link redirect our traffic with one forged frame (ARP cache poisoning).

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
#: How long the old MAC of an entry has to answer before the entry follows a new MAC claimed for
#: its address; also the least time between two checks of one address (one unicast request per
#: interval, whatever a flood claims). Linux's ``locktime`` is 1 s too.
ARP_CHECK_INTERVAL_S = 1.0
#: An entry looked up within this long is in active use: a flood of new senders evicts others first.
ACTIVE_USE_S = 10.0


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
    #: When a datagram was last sent by it (``lookup``): entries in active use are evicted last.
    used_at: float = -math.inf


@dataclass(slots=True)
class Check:
    """Another MAC claimed for a valid entry's address: it is taken only if the check ends
    (``until``) without word from the entry's own MAC (``confirmed``)."""

    entry: Entry
    candidate: MacAddress
    until: float
    confirmed: bool = False


@dataclass(slots=True)
class Moved:
    """An entry that followed its address to a new MAC: the old one stayed silent for a check."""

    address: IPv4Address
    old: MacAddress
    new: MacAddress


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
        self.check_interval = ARP_CHECK_INTERVAL_S
        #: The checks running, by address (usually none).
        self.checking: dict[IPv4Address, Check] = {}
        #: Called after every entry ``learn`` records from the wire (None: nobody listens).
        self.observer: Observer | None = None

    def __contains__(self, address: IPv4Address) -> bool:
        """In the table in RFC 826's sense: resolved, or being resolved."""
        return address in self.entries or bool(self.pending) and address in self.pending

    def lookup(self, address: IPv4Address, now: float) -> MacAddress | None:
        entry = self.entries.get(address)
        if entry is None:
            return None
        if now >= entry.expires_at:
            del self.entries[address]
            self.checking.pop(address, None)
            return None
        entry.used_at = now
        return entry.mac

    def merge(self, address: IPv4Address, mac: MacAddress, now: float,
              may_check: Callable[[float], bool] | None = None) -> tuple[Resolved | None, bool, MacAddress | None]:
        """RFC 826's merge step for an ARP packet from ``address`` at ``mac``, hardened.

        Returns (the datagrams that were waiting for the address, if any; whether ``mac`` was
        refused; the MAC to check with a unicast request, when a check starts now). A new or
        expired entry is learnt; the same MAC confirms the entry; another MAC for a valid entry
        is not believed at once: it becomes the entry's candidate, and the old MAC is checked --
        if ``may_check(now)`` allows one more check (a budget over all addresses); if not, the
        claim is refused outright. A permanent entry stays as it is, silently (what an
        administrator set).
        """
        entry = self.entries.get(address)
        if entry is None or now >= entry.expires_at:
            return self.learn(address, mac, now), False, None
        if entry.permanent:
            return None, False, None
        check = self.checking.get(address) if self.checking else None
        if entry.mac == mac:
            # RFC 826: the pair is in the table: refresh it; during a check, the old MAC spoke.
            entry.expires_at = now + self.lifetime
            if check is not None:
                check.confirmed = True
            return None, False, None
        if check is not None:
            check.candidate = mac  # a check is running: it ends in ``end_checks``
            return None, True, None
        if may_check is not None and not may_check(now):
            return None, True, None  # no check left in the budget: refused, the entry as it was
        self.checking[address] = Check(entry, mac, now + self.check_interval)
        return None, True, entry.mac

    def confirm(self, address: IPv4Address, mac: MacAddress) -> None:
        """Word from ``mac`` for ``address`` outside ARP (a unicast datagram from it to us, as
        smoltcp and lwIP take it): during a check, the old MAC is alive."""
        check = self.checking.get(address)
        if check is not None and check.entry.mac == mac:
            check.confirmed = True

    def end_checks(self, now: float) -> list[Moved]:
        """Checks whose time is over: an entry whose MAC stayed silent follows its candidate (the
        neighbour really moved); a confirmed one stays. Returns the entries that moved."""
        moved: list[Moved] = []
        for address, check in list(self.checking.items()):
            if now < check.until:
                continue
            del self.checking[address]
            entry = check.entry
            if not check.confirmed and self.entries.get(address) is entry:
                moved.append(Moved(address, entry.mac, check.candidate))
                entry.mac = check.candidate
                entry.expires_at = now + self.lifetime
                if self.observer is not None:
                    self.observer(address, entry.mac, now)
        return moved

    def learn(self, address: IPv4Address, mac: MacAddress, now: float, tell: bool = True) -> Resolved | None:
        """Record ``address`` at ``mac``. Returns the datagrams that were waiting for it, if any.

        The ``observer`` hears of it unless ``tell`` is False (an entry that came from an
        observer elsewhere: a sibling worker, which told the others itself).

        A permanent entry stays as it is (RFC 826's merge updates what was learnt, not what an
        administrator set; Linux 6.18 keeps a NUD_PERMANENT entry too, see tests/tools/test_diff.py).
        """
        # (Each dictionary step hashes the address, which costs more than the step: a flood of
        # new senders comes here, so the steps that cannot apply are skipped.)
        entries = self.entries
        old = entries.get(address)
        if old is not None:
            if old.permanent:
                return None
            del entries[address]  # re-inserted at the end: most recently confirmed
            if self.checking:
                self.checking.pop(address, None)
        entries[address] = Entry(mac, now + self.lifetime)
        if len(entries) > self.capacity:
            self._evict(now)
        if tell and self.observer is not None:
            self.observer(address, mac, now)
        pending = self.pending.pop(address, None) if self.pending else None
        if pending is None:
            return None
        return Resolved(address, mac, list(pending.datagrams))

    def add_permanent(self, address: IPv4Address, mac: MacAddress) -> Resolved | None:
        """An entry set by an administrator: used until removed, whatever ARP says. Returns the
        datagrams that were waiting for ``address``, if any."""
        self.entries.pop(address, None)
        self.checking.pop(address, None)
        self.entries[address] = Entry(mac, math.inf, permanent=True)
        self._evict(-math.inf)
        pending = self.pending.pop(address, None)
        return None if pending is None else Resolved(address, mac, list(pending.datagrams))

    def _evict(self, now: float) -> None:
        """Forget the least recently confirmed learnt entries while over capacity: first those
        not in active use (no datagram sent by them for ``ACTIVE_USE_S``), so a flood of new
        senders cannot push out the neighbours we talk to; permanent entries stay, even beyond."""
        active_since = now - ACTIVE_USE_S
        entries = self.entries
        while len(entries) > self.capacity:
            oldest = None
            # (A plain loop: a flood of new senders comes here once per sender, and the oldest
            # entry is nearly always the one: a generator would cost more than the search.)
            for address, entry in entries.items():
                if not entry.permanent and entry.used_at < active_since:
                    oldest = address
                    break
            else:  # every entry in active use: the least recently confirmed goes
                for address, entry in entries.items():
                    if not entry.permanent:
                        oldest = address
                        break
            if oldest is None:
                return
            del entries[oldest]
            if self.checking:
                self.checking.pop(oldest, None)

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
        """When ``poll`` or ``end_checks`` next has work: the earliest retry, give-up or end of
        a check. Entries expire lazily."""
        if not self.pending and not self.checking:  # the usual case, asked at every wake-up
            return None
        return min([p.next_request_at for p in self.pending.values()]
                   + [c.until for c in self.checking.values()])

    def forget_learnt(self) -> None:
        """Forget every learnt entry and resolution (permanent entries stay): the link changed."""
        self.entries = {address: entry for address, entry in self.entries.items() if entry.permanent}
        self.pending.clear()
        self.checking.clear()

    def expire(self, now: float) -> int:
        """Forget entries whose lifetime is over; returns how many."""
        stale = [address for address, entry in self.entries.items() if now >= entry.expires_at]
        for address in stale:
            del self.entries[address]
            self.checking.pop(address, None)
        return len(stale)
