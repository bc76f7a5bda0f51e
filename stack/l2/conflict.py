"""IPv4 address conflict detection on Ethernet (RFC 5227): probe, announce, defend.

Read first: RFC 5227 1.1 (constants), 2.1 (probing), 2.3 (announcing), 2.4 (ongoing detection
and defence).

State only, no I/O: ``poll(now)`` says which probes and announcements are due, and ``observe(...,
now)`` says what an incoming ARP packet means for our addresses; the link turns both into frames.
RFC 5227's random delays come from an injected ``uniform(a, b)`` (``random.Random(seed).uniform``);
without one, each delay is its lower bound.

An address is in one of four phases::

    PROBING --(ANNOUNCE_WAIT after the last probe, no conflict)--> ANNOUNCING --> BOUND
       \\--(someone else uses it, or probes for it)--> ABANDONED

Without probing an address starts ANNOUNCING: it is used at once and announced twice.
"""

from __future__ import annotations

import heapq
import logging
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from enum import Enum
from ipaddress import IPv4Address

from stack.l2.arp import ArpOp
from stack.l2.ethernet import MacAddress

log = logging.getLogger(__name__)

# RFC 5227 1.1: the protocol's constants, in seconds.
PROBE_WAIT_S = 1.0  # initial random delay before the first probe
PROBE_NUM = 3  # number of probe packets
PROBE_MIN_S = 1.0  # minimum delay until the next probe
PROBE_MAX_S = 2.0  # maximum delay until the next probe
ANNOUNCE_WAIT_S = 2.0  # delay after the last probe before announcing
ANNOUNCE_NUM = 2  # number of announcement packets
ANNOUNCE_INTERVAL_S = 2.0  # time between announcement packets
DEFEND_INTERVAL_S = 10.0  # minimum interval between defensive ARPs
#: Probes and announcements handed out per ``poll``: with thousands of addresses the rest follow
#: at the next wake-up (due at once), so the loop reads and answers frames in between.
BATCH = 256

Uniform = Callable[[float, float], float]


_UNSPECIFIED = bytes(4)  # 0.0.0.0, the sender address of an ARP probe (RFC 5227 2.1.1)


class Phase(Enum):
    PROBING = "probing"  # RFC 5227 2.1: not used yet; probes sent
    ANNOUNCING = "announcing"  # in use; announcements still to send
    BOUND = "bound"  # in use; announced
    ABANDONED = "abandoned"  # another host has it (found while probing): never used

    @property
    def in_use(self) -> bool:
        return self is Phase.ANNOUNCING or self is Phase.BOUND


class Action(Enum):
    """What ``poll`` asks the link to send."""

    PROBE = "probe"
    USE = "use"  # probing found no conflict: the address may be used from now on (no frame)
    ANNOUNCE = "announce"


class Verdict(Enum):
    """What an ARP packet meant for one of our addresses (``observe``)."""

    DEFEND = "defend"  # in use and claimed by another host: send one announcement to defend it
    CONFLICT = "conflict"  # the same, but we defended it less than DEFEND_INTERVAL ago
    ABANDON = "abandon"  # it was being probed and another host has it: it is given up


@dataclass(slots=True)
class Claim:
    """One of our addresses: its phase, how many probes or announcements it has sent in that
    phase, and when it was last defended."""

    phase: Phase
    sent: int = 0
    defended_at: float | None = None


def _lowest(low: float, high: float) -> float:
    return low


class ConflictDetector:
    """Probes (optionally), announces and defends a set of addresses."""

    def __init__(self, addresses: Iterable[IPv4Address], our_macs: Iterable[MacAddress],
                 probe: bool = False, uniform: Uniform | None = None) -> None:
        self.probe = probe
        self.uniform = uniform if uniform is not None else _lowest
        self.our_macs = frozenset(our_macs)
        first = Phase.PROBING if probe else Phase.ANNOUNCING
        self.claims: dict[IPv4Address, Claim] = {address: Claim(first) for address in addresses}
        #: The same claims by the address's 4 bytes, as ARP packets carry them.
        self._by_packed = {address.packed: (address, claim) for address, claim in self.claims.items()}
        #: (due time, address): the next probe or announcement of each address, earliest first.
        self._due: list[tuple[float, IPv4Address]] = []
        self._started = False

    def in_use(self, address: IPv4Address) -> bool:
        claim = self.claims.get(address)
        return claim is not None and claim.phase.in_use

    # ------------------------------------------------------------------ timers

    def _start(self, now: float) -> None:
        self._started = True
        for address in self.claims:
            if self.probe:
                # RFC 5227 2.1.1: wait a random time in [0, PROBE_WAIT] before the first probe,
                # so hosts switched on together do not probe in step.
                self._due.append((now + self.uniform(0.0, PROBE_WAIT_S), address))
            else:
                self._due.append((now, address))  # RFC 5227 3: announce at once
        heapq.heapify(self._due)

    def next_deadline(self, now: float) -> float | None:
        if not self._started:
            return now
        return self._due[0][0] if self._due else None

    def poll(self, now: float) -> list[tuple[Action, IPv4Address]]:
        """The probes and announcements due by ``now`` (at most BATCH; the rest stay due)."""
        if not self._started:
            self._start(now)
        out: list[tuple[Action, IPv4Address]] = []
        while self._due and self._due[0][0] <= now and len(out) < BATCH:
            _, address = heapq.heappop(self._due)
            claim = self.claims[address]
            actions, delay = self._step(claim)
            out += [(action, address) for action in actions]
            if delay is not None:
                heapq.heappush(self._due, (now + delay, address))
        return out

    def _step(self, claim: Claim) -> tuple[list[Action], float | None]:
        """One timer of one claim: what to do now, and the delay to its next timer (or None)."""
        actions: list[Action] = []
        if claim.phase is Phase.PROBING:
            if claim.sent < PROBE_NUM:
                claim.sent += 1
                if claim.sent < PROBE_NUM:
                    # RFC 5227 2.1.1: PROBE_NUM probes, spaced randomly PROBE_MIN..PROBE_MAX.
                    return [Action.PROBE], self.uniform(PROBE_MIN_S, PROBE_MAX_S)
                # RFC 5227 2.1.1: then ANNOUNCE_WAIT without conflict before using the address.
                return [Action.PROBE], ANNOUNCE_WAIT_S
            # RFC 5227 2.1.1: no conflict by ANNOUNCE_WAIT after the last probe: it may be used.
            claim.phase, claim.sent = Phase.ANNOUNCING, 0
            actions.append(Action.USE)
        if claim.phase is Phase.ANNOUNCING:
            claim.sent += 1
            actions.append(Action.ANNOUNCE)
            if claim.sent < ANNOUNCE_NUM:
                # RFC 5227 2.3: ANNOUNCE_NUM announcements, ANNOUNCE_INTERVAL apart.
                return actions, ANNOUNCE_INTERVAL_S
            claim.phase = Phase.BOUND
        return actions, None  # bound (or abandoned): nothing more to send

    # ------------------------------------------------------------------ receiving

    def observe(self, operation: int, sender_mac: bytes, sender_ip: bytes, target_ip: bytes,
                now: float) -> tuple[Verdict, IPv4Address] | None:
        """What an ARP packet (already checked to be Ethernet/IPv4; addresses as its bytes)
        means for our addresses, if anything."""
        if sender_mac in self.our_macs:
            return None  # our own packet (a TAP does not loop frames back, but a bridge might)
        claimed = self._by_packed.get(sender_ip)
        if claimed is not None:
            return self._claimed(claimed[0], claimed[1], MacAddress(sender_mac), now)
        if operation == ArpOp.REQUEST and sender_ip == _UNSPECIFIED:
            claimed = self._by_packed.get(target_ip)
            if claimed is not None and claimed[1].phase is Phase.PROBING:
                # RFC 5227 2.1.1: another host's probe for the address we probe for is a
                # conflict too (both want it; neither may use it).
                return self._abandon(claimed[0], claimed[1], MacAddress(sender_mac))
        return None

    def _claimed(self, address: IPv4Address, claim: Claim, mac: MacAddress,
                 now: float) -> tuple[Verdict, IPv4Address] | None:
        """Another host sends ARP with one of our addresses as its own (sender IP)."""
        if claim.phase is Phase.PROBING:
            # RFC 5227 2.1.1: any ARP packet with the probed address as sender IP is a conflict.
            return self._abandon(address, claim, mac)
        if claim.phase is Phase.ABANDONED:
            return None  # that host has it; we gave it up
        # RFC 5227 2.4 (c): an address configured to be kept "under any circumstances" MAY be
        # defended indefinitely, with at most one defensive ARP per DEFEND_INTERVAL.
        if claim.defended_at is not None and now - claim.defended_at < DEFEND_INTERVAL_S:
            log.debug("address conflict: %s claims %s again; defended %.1f s ago", mac, address,
                      now - claim.defended_at)
            return Verdict.CONFLICT, address
        claim.defended_at = now
        log.warning("address conflict: %s claims %s, which is ours: defending it with an "
                    "announcement (at most once per %.0f s, RFC 5227 2.4)", mac, address,
                    DEFEND_INTERVAL_S)
        return Verdict.DEFEND, address

    def _abandon(self, address: IPv4Address, claim: Claim,
                 mac: MacAddress) -> tuple[Verdict, IPv4Address]:
        claim.phase = Phase.ABANDONED
        log.warning("address conflict while probing: %s is in use by %s; not using it "
                    "(RFC 5227 2.1.1)", address, mac)
        return Verdict.ABANDON, address
