"""Neighbor Discovery and Duplicate Address Detection for the IPv6 host: the neighbour cache.

Read first: RFC 4861 7 (address resolution and NUD: 7.1 validation, 7.2 resolution, 7.3 the
states), 10 (constants); RFC 4862 5.4 (Duplicate Address Detection).

State only, no I/O: every method takes ``now`` and returns the datagrams to send as ``Outbound``
values (with the MAC they go to: ND is the network layer's own address resolution). Random delays
come from an injected ``uniform(a, b)``; without one, each is its lower bound.

A neighbour entry moves through the states of RFC 4861 7.3.2::

    (none) --resolve--> INCOMPLETE --NA--> REACHABLE (solicited) / STALE (unsolicited)
    REACHABLE --ReachableTime--> STALE --sent to--> DELAY --5 s--> PROBE --3 NS, no answer--> (none)
    any --solicited NA, upper-layer confirmation--> REACHABLE

Each of our addresses is TENTATIVE until DAD passes, then USABLE, or DUPLICATE (given up).

What Linux 6.18 (6.18.44) does, seen in a namespace with a TAP (kernel address 2001:db8::1;
tests/root/test_nd_device.py compares its answers with ours on the running kernel):
- its DAD probes carry a Nonce option (RFC 7527); ours do not (we never see our own probes);
- a DAD probe for its address gets an NA to ff02::1 with S=0, O=1 and the target link-layer
  option; a multicast NS gets S=1, O=1 and the option; a unicast NS gets S=1 but O=0 and no
  option (its ndisc_recv_ns sets both only for a multicast NS). We follow RFC 4861 7.2.4 (O set,
  option always included) -- a deliberate difference;
- no unsolicited NA after DAD (net.ipv6.conf.*.ndisc_notify is 0 by default). We send one
  (RFC 4861 7.2.6 MAY; issue 14 asks for it); ``announce=False`` behaves like Linux.
"""

from __future__ import annotations

import logging
import math
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from enum import Enum
from ipaddress import IPv6Address

from stack.buffers import Buffer, Frame, join, length
from stack.errors import ParseError
from stack.l3 import icmpv6, ipv6
from stack.l3.icmpv6 import (Icmpv6Message, Icmpv6Type, NdOption, NdOptionType, NeighborAdvertisement,
                             NeighborSolicitation)
from stack.l3.ipv6 import ALL_NODES, UNSPECIFIED, is_solicited_node_multicast, solicited_node_multicast
from stack.seam import Outbound
from stack.stats import Stats

log = logging.getLogger(__name__)

# RFC 4861 10: host constants.
MAX_MULTICAST_SOLICIT = 3  # multicast NS sent to resolve an address before giving up
MAX_UNICAST_SOLICIT = 3  # unicast NS sent in PROBE before the entry is deleted
MAX_NEIGHBOR_ADVERTISEMENT = 3  # the most unsolicited NAs a node MAY send (7.2.6); we send 1
MAX_RTR_SOLICITATION_DELAY_S = 1.0  # also the DAD delay's upper bound (RFC 4862 5.4.2)
REACHABLE_TIME_S = 30.0  # BaseReachableTime
DELAY_FIRST_PROBE_TIME_S = 5.0
MIN_RANDOM_FACTOR = 0.5
MAX_RANDOM_FACTOR = 1.5
RETRANS_TIMER_S = 1.0
# RFC 4862 5.1: DupAddrDetectTransmits, default 1 (one probe, then RetransTimer to wait).
DUP_ADDR_DETECT_TRANSMITS = 1
UNSOLICITED_ADVERTISEMENTS = 1  # RFC 4861 7.2.6: up to MAX_NEIGHBOR_ADVERTISEMENT; 1 is enough here

#: At most this many neighbours; the least recently created or confirmed one goes first.
NEIGHBOR_CACHE_CAPACITY = 1024
#: RFC 4861 7.2.2: SHOULD queue at least one packet per address being resolved. As ARP's queue
#: (stack/l2/neighbor.py): the latest datagrams up to a count and a byte size.
PENDING_DATAGRAMS_PER_NEIGHBOR = 256
PENDING_BYTES_PER_NEIGHBOR = 128 * 1024
#: At most this many addresses being resolved (INCOMPLETE) at once.
PENDING_NEIGHBORS_CAPACITY = 64

Uniform = Callable[[float, float], float]


def _lowest(low: float, high: float) -> float:
    return low


class State(Enum):
    """RFC 4861 7.3.2: the reachability states of a neighbour cache entry."""

    INCOMPLETE = "incomplete"  # resolution under way: NS sent, no answer yet
    REACHABLE = "reachable"  # confirmed within ReachableTime
    STALE = "stale"  # not known reachable; nothing is done until a datagram is sent to it
    DELAY = "delay"  # sent to while STALE: wait DELAY_FIRST_PROBE_TIME for a confirmation
    PROBE = "probe"  # unicast NS every RetransTimer
    # Not one of RFC 4861's states: an entry an administrator set (``add_permanent``; Linux's
    # NUD_PERMANENT, ``ip -6 neigh replace ... nud permanent``): no timers, no NUD, never
    # changed by ND messages, never evicted.
    PERMANENT = "permanent"


class Phase(Enum):
    """One of our addresses (RFC 4862 5.4)."""

    TENTATIVE = "tentative"  # DAD under way: not used, not answered for
    USABLE = "usable"
    DUPLICATE = "duplicate"  # another node has it: given up


#: A datagram held while its next hop is resolved: (buffers, our source address, bytes).
Queued = tuple[Frame, IPv6Address, int]


@dataclass(slots=True)
class Neighbor:
    """One neighbour cache entry (RFC 4861 5.1)."""

    state: State
    mac: bytes | None = None
    #: When the state's timer fires (INCOMPLETE/PROBE: next NS or give up; REACHABLE: -> STALE;
    #: DELAY: -> PROBE); math.inf in STALE.
    timer: float = math.inf
    probes: int = 0
    is_router: bool = False
    #: Our address the last datagram to it came from: solicitations are sent from it (7.2.2).
    source: IPv6Address | None = None
    queue: deque[Queued] = field(default_factory=deque)
    held: int = 0


@dataclass(slots=True)
class Address:
    """One of our addresses and its DAD state."""

    mac: bytes
    phase: Phase
    #: Next DAD step (send the probe; then declare the address usable), math.inf when none.
    timer: float = math.inf
    probes: int = 0
    #: Unsolicited NAs still to send (RFC 4861 7.2.6), and when.
    announcements: int = 0


class NeighborDiscovery:
    """The ND messages of RFC 4861 for a host (no router, no SLAAC), its neighbour cache and the
    DAD of its addresses."""

    def __init__(self, stats: Stats, addresses: list[tuple[IPv6Address, bytes]],
                 multicast_mac: Callable[[bytes], bytes], dad: bool = True,
                 uniform: Uniform | None = None, announce: bool = True,
                 capacity: int = NEIGHBOR_CACHE_CAPACITY,
                 transmits: int = DUP_ADDR_DETECT_TRANSMITS) -> None:
        """``addresses``: each of our unicast addresses (link-local and global) with the MAC
        (6 bytes) it answers from (a LAN of hosts gives each address its own MAC).
        ``transmits``: the DAD probes sent for each address (RFC 4862 5.1 DupAddrDetectTransmits;
        0 is ``dad=False``).
        ``announce``: send one unsolicited NA when an address becomes usable (RFC 4861 7.2.6)."""
        self.stats = stats
        self.multicast_mac = multicast_mac
        if transmits < 0:
            raise ValueError(f"DAD transmits {transmits} is negative")
        # RFC 4862 5.1: DupAddrDetectTransmits 0 disables DAD.
        self.dad = dad = dad and transmits > 0
        self.transmits = transmits
        self.uniform = uniform if uniform is not None else _lowest
        self.announce = announce
        self.capacity = capacity
        # RFC 4861 6.3.2: ReachableTime is BaseReachableTime times a random factor in
        # [MIN_RANDOM_FACTOR, MAX_RANDOM_FACTOR]; without an injected uniform the factor is 1
        # (exactly BaseReachableTime, deterministic). Not recomputed every few hours (6.3.4
        # SHOULD): a host process lives shorter than that here.
        factor = uniform(MIN_RANDOM_FACTOR, MAX_RANDOM_FACTOR) if uniform is not None else 1.0
        self.reachable_time = REACHABLE_TIME_S * factor
        self.addresses: dict[IPv6Address, Address] = {}
        for address, mac in addresses:
            address = IPv6Address(address)
            if address.is_multicast or address == UNSPECIFIED:
                raise ValueError(f"{address} is not a unicast address")
            if len(mac) != 6:
                raise ValueError(f"a MAC is 6 bytes, not {len(mac)}")
            # RFC 4862 5.4: every address is tentative until DAD passes (``dad=False``: used at once,
            # as Linux with accept_dad=0).
            self.addresses[address] = Address(bytes(mac), Phase.TENTATIVE if dad else Phase.USABLE)
        self.neighbors: dict[IPv6Address, Neighbor] = {}
        self.incomplete = 0  # entries in INCOMPLETE (bounded by PENDING_NEIGHBORS_CAPACITY)
        self.started = False
        #: The earliest timer (None: none), valid while ``_deadline_known``: every change of a
        #: timer clears it, so ``next_deadline`` and an idle ``poll`` do not walk the tables at
        #: every wake-up of the loop (a LAN of hosts has thousands of addresses).
        self._deadline: float | None = None
        self._deadline_known = False

    def learn(self, neighbor: IPv6Address, mac: bytes, now: float) -> list[Outbound]:
        """A neighbour's MAC heard of elsewhere, as an NS with its source link-layer option would
        tell it (RFC 4861 7.2.3: a new entry is STALE); returns what waited for it."""
        return self._learn_from_solicitation(neighbor, bytes(mac), now)

    def forget_neighbours(self) -> None:
        """Forget every neighbour and resolution (their held packets with them): the link was
        replaced (a new interface on the other end). Our addresses and permanent entries stay."""
        self.neighbors = {address: entry for address, entry in self.neighbors.items()
                          if entry.state is State.PERMANENT}
        self.incomplete = 0
        self._deadline_known = False

    def add_permanent(self, address: IPv6Address | str, mac: bytes) -> list[Outbound]:
        """A neighbour whose MAC is known in advance (``ip -6 neigh replace ADDRESS lladdr MAC
        nud permanent``): used without resolution, never probed, aged or changed by an ND
        message. The datagrams that waited for it, if it was being resolved, are returned."""
        address = IPv6Address(address)
        mac = bytes(mac)
        if address.is_multicast or address == UNSPECIFIED:
            raise ValueError(f"{address} is not a unicast address")
        if len(mac) != 6:
            raise ValueError(f"a MAC is 6 bytes, not {len(mac)}")
        entry = self.neighbors.get(address)
        out: list[Outbound] = []
        if entry is not None and entry.state is State.INCOMPLETE:
            out = self._resolved(address, entry, mac, State.STALE, 0.0)
        self.neighbors[address] = Neighbor(State.PERMANENT, mac)
        self._deadline_known = False
        return out

    # ------------------------------------------------------------------ our addresses

    def usable(self, address: IPv6Address) -> bool:
        entry = self.addresses.get(address)
        return entry is not None and entry.phase is Phase.USABLE

    def tentative(self, address: IPv6Address) -> bool:
        entry = self.addresses.get(address)
        return entry is not None and entry.phase is Phase.TENTATIVE

    def _start(self, now: float) -> None:
        """Start the timers at the first call that gives the time (the constructor has none)."""
        self.started = True
        self._deadline_known = False
        for entry in self.addresses.values():
            if entry.phase is Phase.TENTATIVE:
                # RFC 4862 5.4.2: the first probe waits a random delay in [0,
                # MAX_RTR_SOLICITATION_DELAY] (the interface has just been enabled). Joining the
                # solicited-node group first (5.4.2 MUST) is the host's MLD part.
                entry.timer = now + self.uniform(0.0, MAX_RTR_SOLICITATION_DELAY_S)
            elif self.announce:
                entry.announcements = UNSOLICITED_ADVERTISEMENTS
                entry.timer = now

    # ------------------------------------------------------------------ receive

    def receive(self, source: IPv6Address, destination: IPv6Address, hop_limit: int,
                message: Icmpv6Message, now: float) -> list[Outbound]:
        """One ND message (types 133-137) already checksum-verified by the host: validated
        (invalid ones are drops with named reasons), then acted on."""
        if not self.started:
            self._start(now)
        self._deadline_known = False
        handler = HANDLERS.get(message.type)
        if handler is None:
            raise ValueError(f"ICMPv6 type {message.type} is not a Neighbor Discovery message")
        # RFC 4861 6.1.1, 6.1.2, 7.1.1, 7.1.2, 8.1: the IP Hop Limit is 255 (a message that
        # crossed a router is not from the link), and the ICMP Code is 0.
        if hop_limit != icmpv6.ND_HOP_LIMIT:
            self.stats.drop("icmpv6_nd_bad_hop_limit", log, "hop limit %d from %s", hop_limit, source)
            return []
        if message.code != 0:
            self.stats.drop("icmpv6_nd_bad_code", log, "code %d from %s", message.code, source)
            return []
        # RFC 4861 6.1, 7.1.1, 7.1.2, 8.1: the ICMP length and options (non-zero lengths, 4.6)
        # are read by the codec.
        try:
            body = icmpv6.decode(message)
        except ParseError as error:
            self.stats.drop("icmpv6_" + error.reason, log, error)
            return []
        return handler(self, source, destination, body, now)

    def _solicitation(self, source: IPv6Address, destination: IPv6Address,
                      solicitation: NeighborSolicitation, now: float) -> list[Outbound]:
        target = solicitation.target
        link_address = solicitation.source_link_layer_address
        # RFC 4861 7.1.1: the Target Address is not a multicast address.
        if target.is_multicast:
            self.stats.drop("icmpv6_nd_multicast_target", log, target)
            return []
        dad_probe = source == UNSPECIFIED
        if dad_probe:
            # RFC 4861 7.1.1: from ::, the destination is a solicited-node multicast address ...
            if not is_solicited_node_multicast(destination):
                self.stats.drop("icmpv6_nd_dad_not_to_solicited_node", log, destination)
                return []
            # ... and there is no source link-layer address option.
            if link_address is not None:
                self.stats.drop("icmpv6_nd_source_link_layer_from_unspecified", log, target)
                return []
        ours = self.addresses.get(target)
        if ours is None or ours.phase is Phase.DUPLICATE:
            # RFC 4861 7.2.3: a target that is not one of our addresses: silently discarded.
            self.stats.drop("icmpv6_nd_target_not_ours", log, target)
            return []
        if ours.phase is Phase.TENTATIVE:
            if dad_probe:
                # RFC 4862 5.4.3: another node probes for our tentative address: a duplicate.
                # (A probe of our own looped back would not be: we never receive our own frames.)
                self._duplicate(target, ours, "another node probes for it (DAD NS)")
                return []
            # RFC 4862 5.4.3: from a unicast source the sender resolves the address: ignored.
            self.stats.drop("icmpv6_nd_target_tentative", log, target)
            return []
        self.stats.count("nd_solicitations_received")
        na_options = (NdOption.link_layer_address(NdOptionType.TARGET_LINK_LAYER_ADDRESS, ours.mac),)
        if dad_probe:
            # RFC 4861 7.2.4: to a DAD probe, the NA goes to all-nodes with S=0 (Override set,
            # target link-layer option: Linux 6.18 answers the same).
            advertisement = NeighborAdvertisement(target, solicited=False, override=True, options=na_options)
            self.stats.count("nd_advertisements_sent")
            return [self._nd(target, ALL_NODES, advertisement.message(), self.multicast_mac(ALL_NODES.packed))]
        out: list[Outbound] = []
        if link_address is not None:
            # RFC 4861 7.2.3: the source link-layer option creates or updates the sender's entry.
            out += self._learn_from_solicitation(source, link_address, now)
        # RFC 4861 7.2.4: S=1; O SHOULD be set (our addresses are not anycast); the target
        # link-layer option MUST be included for a multicast NS and MAY be omitted for a unicast
        # one: we always include it (Linux 6.18 omits it and clears O for a unicast NS).
        advertisement = NeighborAdvertisement(target, solicited=True, override=True, options=na_options)
        self.stats.count("nd_advertisements_sent")
        # RFC 4861 7.2.4: sent to the solicitor's address, resolved as any datagram (a unicast NS
        # without the option: its entry, or address resolution) ...
        datagram = self._datagram(target, source, advertisement.message())
        if link_address is not None and source not in self.neighbors:
            # ... or, when a full cache had no room for its entry, to the MAC in its option.
            return out + [Outbound(source, datagram, target, link_address)]
        return out + self.resolve(datagram, source, target, now)

    def _learn_from_solicitation(self, source: IPv6Address, mac: bytes, now: float) -> list[Outbound]:
        """RFC 4861 7.2.3 and the table in 7.3.3 for an NS with a source link-layer option."""
        entry = self.neighbors.get(source)
        if entry is None:
            # RFC 4861 7.2.3: no entry: one is created in STALE (IsRouter false).
            if not self._make_room():
                return []
            self.neighbors[source] = Neighbor(State.STALE, mac)
            self.stats.count("nd_neighbors_learnt")
            return []
        if entry.state is State.INCOMPLETE:
            # RFC 4861 7.3.3 (and 7.2.3): INCOMPLETE + a link-layer address -> STALE; the queued
            # datagrams go out.
            return self._resolved(source, entry, mac, State.STALE, now)
        if entry.state is State.PERMANENT:
            # An administrator's entry: ND does not change it (as Linux's NUD_PERMANENT).
            return []
        if entry.mac != mac:
            # RFC 4861 7.2.3: a different address replaces the cached one; the state MUST be STALE.
            entry.mac = mac
            self._set(entry, State.STALE, math.inf)
            self.stats.count("nd_link_address_changed")
        return []

    def _advertisement(self, source: IPv6Address, destination: IPv6Address,
                       advertisement: NeighborAdvertisement, now: float) -> list[Outbound]:
        target = advertisement.target
        # RFC 4861 7.1.2: the Target Address is not a multicast address ...
        if target.is_multicast:
            self.stats.drop("icmpv6_nd_multicast_target", log, target)
            return []
        # ... and an NA to a multicast destination has the Solicited flag clear.
        if destination.is_multicast and advertisement.solicited:
            self.stats.drop("icmpv6_nd_solicited_to_multicast", log, target)
            return []
        ours = self.addresses.get(target)
        if ours is not None and ours.phase is Phase.TENTATIVE:
            # RFC 4862 5.4.4: an NA for a tentative address: another node has it, a duplicate.
            self._duplicate(target, ours, f"{source} advertises it (NA)")
            return []
        if ours is not None:
            # RFC 4862 5.4.4: an NA for an address we already use: maybe a duplicate that DAD
            # missed; logged, the address is kept (as Linux).
            log.warning("ND: %s advertises our address %s", source, target)
            self.stats.drop("icmpv6_nd_advertisement_for_our_address", log, target)
            return []
        entry = self.neighbors.get(target)
        if entry is None:
            # RFC 4861 7.2.5: no entry for the target: silently discarded (no entry is created).
            self.stats.drop("icmpv6_nd_advertisement_unknown_target", log, target)
            return []
        self.stats.count("nd_advertisements_received")
        if entry.state is State.PERMANENT:
            # An administrator's entry: ND does not change it (as Linux's NUD_PERMANENT).
            return []
        mac = advertisement.target_link_layer_address
        if entry.state is State.INCOMPLETE:
            # RFC 4861 7.2.5: without the target link-layer option the NA is silently discarded.
            if mac is None:
                self.stats.drop("icmpv6_nd_advertisement_without_address", log, target)
                return []
            entry.is_router = advertisement.router
            # RFC 4861 7.2.5: solicited -> REACHABLE, else STALE; the queued datagrams go out.
            state = State.REACHABLE if advertisement.solicited else State.STALE
            return self._resolved(target, entry, mac, state, now)
        changed = mac is not None and mac != entry.mac
        if not advertisement.override and changed:
            # RFC 4861 7.2.5: O clear and a different address: a REACHABLE entry becomes STALE;
            # nothing else changes (the cached address is not replaced).
            if entry.state is State.REACHABLE:
                self._set(entry, State.STALE, math.inf)
            self.stats.count("nd_override_refused")
            return []
        # RFC 4861 7.2.5: O set, or the same (or no) address: the address is recorded ...
        if changed:
            entry.mac = mac
            self.stats.count("nd_overrides")
            self.stats.count("nd_link_address_changed")
        if advertisement.solicited:
            # ... S set: REACHABLE;
            self._reachable(entry, now)
        elif changed:
            # ... S clear and a new address: STALE; otherwise the state stays.
            self._set(entry, State.STALE, math.inf)
        # ... and IsRouter follows the R flag (a router becoming a host would leave the Default
        # Router List: 7.2.5, not kept here, no routers in this host).
        entry.is_router = advertisement.router
        return []

    def _router_solicitation(self, source: IPv6Address, destination: IPv6Address,
                             solicitation: icmpv6.RouterSolicitation, now: float) -> list[Outbound]:
        # RFC 4861 6.1.1: from ::, there is no source link-layer address option.
        if source == UNSPECIFIED and any(o.type == NdOptionType.SOURCE_LINK_LAYER_ADDRESS
                                         for o in solicitation.options):
            self.stats.drop("icmpv6_nd_source_link_layer_from_unspecified", log, "router solicitation")
            return []
        # RFC 4861 6.2.6: a host MUST silently discard any Router Solicitation.
        self.stats.drop("icmpv6_nd_router_solicitation_ignored", log, source)
        return []

    def _router_advertisement(self, source: IPv6Address, destination: IPv6Address,
                              advertisement: icmpv6.RouterAdvertisement, now: float) -> list[Outbound]:
        # RFC 4861 6.1.2: the source is link-local.
        if not source.is_link_local:
            self.stats.drop("icmpv6_nd_router_not_link_local", log, source)
            return []
        # RFC 4861 6.3.4 (hosts process RAs) deliberately skipped: no SLAAC (RFC 4862 5.5) or
        # default routers in issue 14; the RA is counted, not acted on.
        self.stats.drop("icmpv6_nd_router_advertisement_ignored", log, source)
        return []

    def _redirect(self, source: IPv6Address, destination: IPv6Address,
                  redirect: icmpv6.Redirect, now: float) -> list[Outbound]:
        # RFC 4861 8.1: the source is link-local ...
        if not source.is_link_local:
            self.stats.drop("icmpv6_nd_router_not_link_local", log, source)
            return []
        # ... the Destination Address is not multicast, and the Target is link-local or the
        # Destination itself (the destination is on-link).
        if redirect.destination.is_multicast or not (redirect.target.is_link_local
                                                     or redirect.target == redirect.destination):
            self.stats.drop("icmpv6_nd_bad_redirect", log, "target %s destination %s",
                            redirect.target, redirect.destination)
            return []
        # RFC 4861 8.3 (hosts follow Redirects) deliberately skipped: every destination is
        # on-link in issue 14, there is no first-hop router to be redirected from.
        self.stats.drop("icmpv6_nd_redirect_ignored", log, source)
        return []

    # ------------------------------------------------------------------ send

    def resolve(self, datagram: list[Buffer], next_hop: IPv6Address, source: IPv6Address,
                now: float) -> list[Outbound]:
        """Our datagram to ``next_hop``: sent at once when its MAC is known (a multicast group's,
        or a neighbour's), else held while the address is resolved."""
        if not self.started:
            self._start(now)
        if int(next_hop) >> 120 == 0xFF:  # (``is_multicast``, without its network lookup: per packet)
            # RFC 4861 7.2.1: multicast needs no resolution (RFC 2464 7: 33:33 + low 32 bits).
            return [Outbound(next_hop, datagram, source, self.multicast_mac(next_hop.packed))]
        entry = self.neighbors.get(next_hop)
        if entry is not None and entry.state is not State.INCOMPLETE:
            if entry.state is State.STALE:
                # RFC 4861 7.3.3: sending to a STALE entry moves it to DELAY.
                self._set(entry, State.DELAY, now + DELAY_FIRST_PROBE_TIME_S)
            entry.source = source
            return [Outbound(next_hop, datagram, source, entry.mac)]
        if entry is None:
            if self.incomplete >= PENDING_NEIGHBORS_CAPACITY or not self._make_room():
                self.stats.drop("icmpv6_nd_queue_full", log, next_hop)
                return []
            # RFC 4861 7.2.2: a new INCOMPLETE entry, a multicast NS at once, RetransTimer to the next.
            entry = self.neighbors[next_hop] = Neighbor(State.INCOMPLETE, source=source)
            self.incomplete += 1
            self._enqueue(next_hop, entry, datagram, source)
            return self._solicit(next_hop, entry, now)
        self._enqueue(next_hop, entry, datagram, source)
        entry.source = source
        return []  # the next NS waits for the entry's timer (at most one per RetransTimer)

    def _enqueue(self, next_hop: IPv6Address, entry: Neighbor, datagram: list[Buffer],
                 source: IPv6Address) -> None:
        # RFC 4861 7.2.2: hold the datagram (a copy: its buffers may view a receive buffer the
        # device reuses) while the address is resolved; the latest are kept, the oldest dropped.
        copy = join(datagram)
        entry.queue.append(([copy], source, len(copy)))
        entry.held += len(copy)
        self.stats.count("nd_queued")
        while len(entry.queue) > 1 and (len(entry.queue) > PENDING_DATAGRAMS_PER_NEIGHBOR
                                        or entry.held > PENDING_BYTES_PER_NEIGHBOR):
            entry.held -= entry.queue.popleft()[2]
            self.stats.drop("icmpv6_nd_queue_full", log, next_hop)

    def _solicit(self, target: IPv6Address, entry: Neighbor, now: float) -> list[Outbound]:
        """One NS for ``target``: multicast to its solicited-node group while INCOMPLETE (7.2.2),
        unicast to the cached MAC in PROBE (7.3.3)."""
        entry.probes += 1
        entry.timer = now + RETRANS_TIMER_S
        self._deadline_known = False
        source = self._solicitation_source(entry.source)
        if source is None:
            # RFC 4862 5.4: a tentative address is not used as a source; with none usable, no NS.
            self.stats.count("nd_solicitations_unsent")
            return []
        options = (NdOption.link_layer_address(NdOptionType.SOURCE_LINK_LAYER_ADDRESS,
                                               self.addresses[source].mac),)
        message = NeighborSolicitation(target, options).message()
        self.stats.count("nd_solicitations_sent")
        if entry.state is State.INCOMPLETE:
            group = solicited_node_multicast(target)
            return [self._nd(source, group, message, self.multicast_mac(group.packed))]
        return [self._nd(source, target, message, entry.mac)]

    def _solicitation_source(self, preferred: IPv6Address | None) -> IPv6Address | None:
        # RFC 4861 7.2.2: the source of the datagram that prompted the NS, if ours, SHOULD be
        # its source; otherwise any of our addresses.
        if preferred is not None and self.usable(preferred):
            return preferred
        return next((address for address, entry in self.addresses.items() if entry.phase is Phase.USABLE), None)

    # ------------------------------------------------------------------ timers

    def poll(self, now: float) -> list[Outbound]:
        """Timers: DAD probes and their end, the unsolicited NA, resolution retries and give-ups,
        NUD (REACHABLE -> STALE, DELAY -> PROBE, PROBE retries and deletion)."""
        if not self.started:
            self._start(now)
        deadline = self.next_deadline(now)
        if deadline is None or now < deadline:
            return []
        self._deadline_known = False
        out: list[Outbound] = []
        for address, entry in self.addresses.items():
            if now >= entry.timer:
                out += self._address_timer(address, entry, now)
        for address, neighbor in list(self.neighbors.items()):
            if now >= neighbor.timer:
                out += self._neighbor_timer(address, neighbor, now)
        return out

    def _address_timer(self, address: IPv6Address, entry: Address, now: float) -> list[Outbound]:
        if entry.phase is Phase.TENTATIVE:
            if entry.probes < self.transmits:
                # RFC 4862 5.4.2: the probe: NS from :: to the target's solicited-node group, no
                # source link-layer option (RFC 4861 7.2.2), then RetransTimer until the next or
                # the end (DupAddrDetectTransmits probes, RetransTimer apart). (No RFC 7527 nonce: Linux 6.18 adds one; we never see our own probes.)
                entry.probes += 1
                entry.timer = now + RETRANS_TIMER_S
                group = solicited_node_multicast(address)
                message = NeighborSolicitation(address).message()
                self.stats.count("nd_dad_probes_sent")
                datagram = self._datagram(UNSPECIFIED, group, message)
                # ``source`` is the address probed for: the link sends from its MAC.
                return [Outbound(group, datagram, address, self.multicast_mac(group.packed))]
            # RFC 4862 5.4: DupAddrDetectTransmits probes and RetransTimer without a duplicate:
            # the address is usable.
            entry.phase = Phase.USABLE
            entry.timer = math.inf
            self.stats.count("nd_dad_passed")
            log.info("ND: %s passed duplicate address detection", address)
            if self.announce:
                entry.announcements = UNSOLICITED_ADVERTISEMENTS
                entry.timer = now
            else:
                return []
        if entry.phase is Phase.USABLE and entry.announcements > 0:
            # RFC 4861 7.2.6: an unsolicited NA to all-nodes, S=0, O=1 (not anycast), with our
            # link-layer address (up to MAX_NEIGHBOR_ADVERTISEMENT, RetransTimer apart).
            entry.announcements -= 1
            entry.timer = now + RETRANS_TIMER_S if entry.announcements else math.inf
            options = (NdOption.link_layer_address(NdOptionType.TARGET_LINK_LAYER_ADDRESS, entry.mac),)
            message = NeighborAdvertisement(address, solicited=False, override=True, options=options).message()
            self.stats.count("nd_advertisements_sent")
            return [self._nd(address, ALL_NODES, message, self.multicast_mac(ALL_NODES.packed))]
        entry.timer = math.inf
        return []

    def _neighbor_timer(self, address: IPv6Address, entry: Neighbor, now: float) -> list[Outbound]:
        state = entry.state
        if state is State.REACHABLE:
            # RFC 4861 7.3.3: ReachableTime without a confirmation: STALE.
            self._set(entry, State.STALE, math.inf)
            return []
        if state is State.DELAY:
            # RFC 4861 7.3.3: DELAY_FIRST_PROBE_TIME without a confirmation: PROBE, a unicast NS.
            self._set(entry, State.PROBE, now)
            entry.probes = 0
            return self._solicit(address, entry, now)
        limit = MAX_MULTICAST_SOLICIT if state is State.INCOMPLETE else MAX_UNICAST_SOLICIT
        if entry.probes < limit:
            # RFC 4861 7.2.2 / 7.3.3: retransmit every RetransTimer up to the limit.
            return self._solicit(address, entry, now)
        del self.neighbors[address]
        if state is State.INCOMPLETE:
            self.incomplete -= 1
            # RFC 4861 7.2.2: no answer after MAX_MULTICAST_SOLICIT: the queued datagrams are
            # dropped. (Its SHOULD to send Address Unreachable for each is not done here.)
            self.stats.count("nd_resolution_failed")
            for _ in entry.queue:
                self.stats.drop("icmpv6_nd_unresolved", log, address)
        else:
            # RFC 4861 7.3.3: no answer after MAX_UNICAST_SOLICIT probes: the entry is deleted.
            self.stats.count("nd_neighbors_unreachable")
        return []

    def next_deadline(self, now: float) -> float | None:
        """When ``poll`` next has work; None when nothing is timed."""
        if not self.started:
            return now
        if not self._deadline_known:
            earliest = min(min((entry.timer for entry in self.addresses.values()), default=math.inf),
                           min((entry.timer for entry in self.neighbors.values()), default=math.inf))
            self._deadline = None if earliest == math.inf else earliest
            self._deadline_known = True
        return self._deadline

    def confirm(self, neighbor: IPv6Address, now: float) -> None:
        """Upper-layer reachability confirmation (RFC 4861 7.3.1): a known neighbour becomes
        REACHABLE (nothing when it is unknown or INCOMPLETE)."""
        entry = self.neighbors.get(neighbor)
        if entry is not None and entry.state not in (State.INCOMPLETE, State.PERMANENT):
            self._reachable(entry, now)

    # ------------------------------------------------------------------ helpers

    def state(self, neighbor: IPv6Address) -> State | None:
        """The state of a neighbour's entry (None when there is none)."""
        entry = self.neighbors.get(neighbor)
        return None if entry is None else entry.state

    def _set(self, entry: Neighbor, state: State, timer: float) -> None:
        entry.state = state
        entry.timer = timer
        self._deadline_known = False

    def _reachable(self, entry: Neighbor, now: float) -> None:
        self._set(entry, State.REACHABLE, now + self.reachable_time)
        entry.probes = 0

    def _resolved(self, address: IPv6Address, entry: Neighbor, mac: bytes, state: State,
                  now: float) -> list[Outbound]:
        """An INCOMPLETE entry learns its MAC: the queued datagrams go out."""
        self.incomplete -= 1
        entry.mac = mac
        entry.probes = 0
        if state is State.REACHABLE:
            self._reachable(entry, now)
        else:
            self._set(entry, state, math.inf)
        queued, entry.queue, entry.held = entry.queue, deque(), 0
        if queued:
            self.stats.count("nd_queue_flushed", len(queued))
            if entry.state is State.STALE:
                # RFC 4861 7.3.3: sending to a STALE entry moves it to DELAY.
                self._set(entry, State.DELAY, now + DELAY_FIRST_PROBE_TIME_S)
        return [Outbound(address, datagram, source, mac) for datagram, source, _ in queued]

    def _make_room(self) -> bool:
        """Room for one more entry: over capacity, the oldest entry that is not being resolved
        goes (a STALE one first). False when every entry is INCOMPLETE or PERMANENT."""
        if len(self.neighbors) < self.capacity:
            return True
        victim = next((a for a, e in self.neighbors.items() if e.state is State.STALE), None)
        if victim is None:
            victim = next((a for a, e in self.neighbors.items()
                           if e.state not in (State.INCOMPLETE, State.PERMANENT)), None)
        if victim is None:
            return False
        del self.neighbors[victim]
        self.stats.count("nd_neighbors_evicted")
        return True

    def _duplicate(self, address: IPv6Address, entry: Address, why: str) -> None:
        # RFC 4862 5.4.5: a duplicate tentative address is not assigned; a message is logged
        # (SHOULD); the address stays unused (manual intervention).
        # RFC 4862 5.4.5: for a duplicate link-local address made from the MAC, IP operation on
        # the interface SHOULD be disabled: not done, the other addresses stay usable (as Linux
        # with its default accept_dad=1).
        entry.phase = Phase.DUPLICATE
        entry.timer = math.inf
        self.stats.count("nd_duplicate_addresses")
        log.warning("ND: %s is a duplicate address: %s; it is given up", address, why)

    def _datagram(self, source: IPv6Address, destination: IPv6Address, message: Icmpv6Message) -> Frame:
        """An ND message as an IPv6 datagram: hop limit 255 (RFC 4861 7.1), Next Header 58."""
        body = message.buffers(source, destination)
        header = ipv6.header_bytes(source, destination, ipv6.NextHeader.ICMPV6, length(body),
                                   hop_limit=icmpv6.ND_HOP_LIMIT)
        return [header, *body]

    def _nd(self, source: IPv6Address, destination: IPv6Address, message: Icmpv6Message,
            mac: bytes | None) -> Outbound:
        return Outbound(destination, self._datagram(source, destination, message), source, mac)


#: What each ND type does (RFC 4861 4): every handler validates the rules of its type first.
HANDLERS = {
    Icmpv6Type.ROUTER_SOLICITATION: NeighborDiscovery._router_solicitation,
    Icmpv6Type.ROUTER_ADVERTISEMENT: NeighborDiscovery._router_advertisement,
    Icmpv6Type.NEIGHBOR_SOLICITATION: NeighborDiscovery._solicitation,
    Icmpv6Type.NEIGHBOR_ADVERTISEMENT: NeighborDiscovery._advertisement,
    Icmpv6Type.REDIRECT: NeighborDiscovery._redirect,
}
