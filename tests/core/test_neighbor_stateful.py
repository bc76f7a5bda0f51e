"""The neighbour (ARP) cache against a simple model (hypothesis stateful testing).

Read first: RFC 826 ("Packet Reception"); RFC 1122 2.3.2.1 (at most one request per second per
destination, give up after a bounded number) and 2.3.2.2 (queue the latest datagrams). Permanent
entries (an administrator's, as ``ip neigh add ... nud permanent``) never change, expire or go.

The clock is injected (``now`` only moves forward, by drawn amounts); nothing sleeps. Bounds are
small so that the rules reach them: 4 entries, 3 addresses being resolved, 2 datagrams or 100
bytes per address.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from ipaddress import IPv4Address

from hypothesis import settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, rule

from stack.l2.ethernet import MacAddress
from stack.l2.neighbor import ACTIVE_USE_S, NeighborCache

LIFETIME, CAPACITY, INTERVAL, MAX_REQUESTS = 60.0, 4, 1.0, 3
PENDING_CAPACITY, QUEUE_LENGTH, QUEUE_BYTES = 3, 2, 100

addresses = st.integers(1, 5).map(lambda host: IPv4Address(f"192.0.2.{host}"))
macs = st.integers(1, 3).map(lambda n: MacAddress(bytes([2, 0, 0, 0, 0, n])))


@dataclass
class ModelPending:
    requests: int = 0
    next_request_at: float = 0.0
    datagrams: list[bytes] = field(default_factory=list)


class NeighborCacheAgainstAModel(RuleBasedStateMachine):
    def __init__(self) -> None:
        super().__init__()
        self.cache = NeighborCache(lifetime=LIFETIME, capacity=CAPACITY, request_interval=INTERVAL,
                                   max_requests=MAX_REQUESTS, pending_capacity=PENDING_CAPACITY,
                                   queue_length=QUEUE_LENGTH, queue_bytes=QUEUE_BYTES)
        self.now = 0.0
        self.entries: dict[IPv4Address, tuple[MacAddress, float]] = {}  # oldest confirmation first
        self.permanent: set[IPv4Address] = set()
        self.pending: dict[IPv4Address, ModelPending] = {}
        self.requests_at: dict[IPv4Address, list[float]] = {}  # each resolution's requests
        self.serial = 0
        self.used_at: dict[IPv4Address, float] = {}  # when each entry last sent a datagram

    def _request(self, address: IPv4Address) -> None:
        self.requests_at.setdefault(address, []).append(self.now)

    @rule(seconds=st.sampled_from([0.0, 0.25, 0.5, 1.0, 2.5, 30.0, 60.0]))
    def time_passes(self, seconds):
        self.now += seconds

    def _evict(self, now: float = -math.inf) -> None:
        # The least recently confirmed learnt entry not in active use goes (else the least
        # recently confirmed learnt one); permanent ones never do.
        while len(self.entries) > CAPACITY:
            learnt = [address for address in self.entries if address not in self.permanent]
            if not learnt:
                return
            idle = [address for address in learnt
                    if self.used_at.get(address, -math.inf) < now - ACTIVE_USE_S]
            del self.entries[(idle or learnt)[0]]

    @rule(address=addresses, mac=macs)
    def learn(self, address, mac):
        resolved = self.cache.learn(address, mac, self.now)
        if address in self.permanent:  # an administrator's entry: ARP changes nothing
            assert resolved is None
            return
        self.entries.pop(address, None)
        self.used_at.pop(address, None)
        self.entries[address] = (mac, self.now + LIFETIME)
        self._evict(self.now)
        self._resolved(address, mac, resolved)

    @rule(address=addresses, mac=macs)
    def add_permanent(self, address, mac):
        resolved = self.cache.add_permanent(address, mac)
        self.entries.pop(address, None)
        self.used_at.pop(address, None)
        self.entries[address] = (mac, math.inf)
        self.permanent.add(address)
        self._evict()
        self._resolved(address, mac, resolved)

    def _resolved(self, address, mac, resolved) -> None:
        waiting = self.pending.pop(address, None)
        self.requests_at.pop(address, None)  # the resolution is over
        if waiting is None:
            assert resolved is None
        else:
            assert resolved is not None and resolved.mac == mac
            assert [datagram for _, datagram in resolved.datagrams] == waiting.datagrams

    @rule(address=addresses)
    def lookup(self, address):
        expected = self.entries.get(address)
        if expected is not None and self.now >= expected[1]:
            expected = None
            del self.entries[address]
        if expected is not None:
            self.used_at[address] = self.now  # in active use
        assert self.cache.lookup(address, self.now) == (expected[0] if expected else None)

    @rule(address=addresses, size=st.integers(20, 70))
    def enqueue(self, address, size):
        self.serial += 1
        datagram = self.serial.to_bytes(4, "big") + bytes(size - 4)
        request_now, dropped = self.cache.enqueue(address, (None, datagram), self.now)
        waiting = self.pending.get(address)
        if waiting is None:
            if len(self.pending) >= PENDING_CAPACITY:
                assert (request_now, dropped) == (False, 1)  # no room for another resolution
                return
            waiting = self.pending[address] = ModelPending(next_request_at=self.now)
        waiting.datagrams.append(datagram)
        expected_drops = 0
        # RFC 1122 2.3.2.2: keep the latest; the oldest go past the count or the bytes.
        while len(waiting.datagrams) > 1 and (len(waiting.datagrams) > QUEUE_LENGTH
                                              or sum(map(len, waiting.datagrams)) > QUEUE_BYTES):
            waiting.datagrams.pop(0)
            expected_drops += 1
        assert dropped == expected_drops
        # A new resolution asks at once; later datagrams wait for the retry timer.
        expected_request = waiting.requests == 0
        assert request_now == expected_request
        if request_now:
            waiting.requests = 1
            waiting.next_request_at = self.now + INTERVAL
            self._request(address)

    @rule()
    def poll(self):
        retry, failed = self.cache.poll(self.now)
        expected_retry, expected_failed = [], []
        for address, waiting in list(self.pending.items()):
            if self.now < waiting.next_request_at:
                continue
            if waiting.requests >= MAX_REQUESTS:  # RFC 1122 2.3.2.1: give up, no flooding
                expected_failed.append((address, len(waiting.datagrams)))
                del self.pending[address]
                del self.requests_at[address]
            else:
                waiting.requests += 1
                waiting.next_request_at = self.now + INTERVAL
                expected_retry.append(address)
                self._request(address)
        assert sorted(retry) == sorted(expected_retry)
        assert sorted(failed) == sorted(expected_failed)

    @rule()
    def expire(self):
        stale = [a for a, (_, expires_at) in self.entries.items() if self.now >= expires_at]
        for address in stale:
            del self.entries[address]
        assert self.cache.expire(self.now) == len(stale)

    @invariant()
    def bounded(self):
        assert len(self.cache.entries) <= max(CAPACITY, len(self.permanent))
        assert len(self.cache.pending) <= PENDING_CAPACITY
        for pending in self.cache.pending.values():
            assert 1 <= len(pending.datagrams) <= QUEUE_LENGTH
            assert pending.held == sum(len(d) for _, d in pending.datagrams)
            assert pending.held <= QUEUE_BYTES or len(pending.datagrams) == 1
            assert pending.requests_sent <= MAX_REQUESTS

    @invariant()
    def agrees_with_the_model(self):
        assert list(self.cache.entries) == list(self.entries)
        assert set(self.cache.pending) == set(self.pending)
        for address, waiting in self.pending.items():
            assert [d for _, d in self.cache.pending[address].datagrams] == waiting.datagrams

    @invariant()
    def at_most_one_request_per_interval_per_destination(self):
        # RFC 1122 2.3.2.1: the requests of one resolution are at least a second apart.
        for times in self.requests_at.values():
            assert all(later - earlier >= INTERVAL for earlier, later in zip(times, times[1:]))

    @invariant()
    def the_deadline_is_the_earliest_pending_timer(self):
        expected = min((w.next_request_at for w in self.pending.values()), default=None)
        assert self.cache.next_deadline() == expected


TestNeighborCacheAgainstAModel = NeighborCacheAgainstAModel.TestCase
TestNeighborCacheAgainstAModel.settings = settings(stateful_step_count=40)
