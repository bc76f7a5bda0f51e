"""The Ethernet link: frames in, datagrams up; datagrams down, frames out, resolving with ARP.

Read first: RFC 894 (IPv4 over Ethernet); RFC 826 (ARP, "Packet Reception"); RFC 1122 2.3.2;
RFC 5227 (probes, announcements, defence: ``stack.l2.conflict``).

Sans-I/O: ``receive(frame, now)``, ``send(outbound, now)`` and ``poll(now)`` return the frames to
send, each a list of buffers in wire order. Nothing here reads a clock or touches a device.

``Link`` is the shape every link has (this one for TAP, ``stack.l2.point_to_point`` for TUN): a
host (``stack.node``) puts one in front of its network layer and hands each datagram the link
takes up through ``Deliver``, the one handover, for both.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from ipaddress import IPv4Address, IPv6Address
from typing import Protocol

from stack.buffers import Buffer, Frame, join
from stack.errors import ParseError
from stack.l2.arp import HARDWARE_ETHERNET, ArpOp, ArpPacket
from stack.l2.arp import PACKET as ARP_PACKET
from stack.l2.arp import read as arp_read
from stack.l2.conflict import Action, ConflictDetector, Verdict
from stack.l2.ethernet import (BROADCAST, HEADER, HEADER_LENGTH, ZERO, EtherType, MacAddress,
                               frame_buffers, mac_text)
from stack.l2.ipv6_multicast import ipv6_multicast_mac
from stack.l2.neighbor import NeighborCache, Resolved
from stack.ratelimit import TokenBucket
from stack.stats import Stats
from stack.seam import LIMITED_BROADCAST, NetworkLayer, Outbound

log = logging.getLogger(__name__)

#: RFC 1112 6.4: every IPv4 multicast host belongs to the all-hosts group 224.0.0.1, whose
#: Ethernet address is 01:00:5e:00:00:01 (RFC 1112 6.4: 01-00-5E plus the low 23 bits).
ALL_HOSTS_MAC = MacAddress(b"\x01\x00\x5e\x00\x00\x01")

#: EtherTypes and ARP operations compared as plain ints: reading an IntEnum member costs more
#: than the comparison.
_IPV4, _ARP, _IPV6 = int(EtherType.IPV4), int(EtherType.ARP), int(EtherType.IPV6)
_REQUEST, _REPLY = int(ArpOp.REQUEST), int(ArpOp.REPLY)
_UNSPECIFIED = bytes(4)
_LIMITED_BROADCAST = LIMITED_BROADCAST.packed
#: Senders we do not know that we answer (and make an entry for) a second, and how many at once.
NEW_SENDERS_PER_SECOND = 100.0
NEW_SENDERS_BURST = 100
#: Checks of a neighbour's old MAC (one per neighbour per check interval) started a second, over
#: all neighbours, and how many at once; beyond, a claim is refused without one.
CHECKS_PER_SECOND = 20.0
CHECKS_BURST = 20


def ip_text(raw: bytes) -> str:
    """Four bytes as an IPv4 address is written, without building an ``IPv4Address``."""
    return ".".join(map(str, raw))
UNSPECIFIED = IPv4Address(0)

#: EtherTypes we recognise but do not handle, each dropped under its own reason.
UNSUPPORTED_ETHERTYPES = {
    EtherType.VLAN: "ethernet_vlan_tagged",  # 802.1Q frames are not supported
    EtherType.QINQ: "ethernet_vlan_tagged",
    EtherType.IPV6: "ethernet_ipv6_not_supported",
}


#: The handover up: ``deliver(datagram, link_broadcast, now)`` takes one IPv4 datagram the link
#: received (``link_broadcast``: it came in a link-layer broadcast or multicast) to the network
#: layer and returns the frames to send in answer, already through the link's ``send``.
Deliver = Callable[[Buffer, bool, float], list[Frame]]


class Link(Protocol):
    """What a host needs from the link in front of its network layer."""

    #: "ethernet" (a TAP device) or "ip" (a TUN device).
    medium: str

    def receive(self, frame: Buffer, now: float) -> list[Frame]:
        """One frame from the device in (datagrams go up through ``Deliver``); the frames to
        send in answer out."""
        ...

    def send(self, outbound: Outbound, now: float) -> list[Frame]:
        """A datagram of the network layer as the frames to send (none while it waits)."""
        ...

    def poll(self, now: float) -> list[Frame]:
        """Run the link's timers that are due."""
        ...

    def next_deadline(self, now: float) -> float | None:
        """When ``poll`` should next be called, or None when no timer is running."""
        ...


class EthernetLink:
    """One Ethernet interface: our MAC(s), the neighbour cache, and the network layer above.

    ``macs`` gives each address a MAC of its own (a LAN of virtual hosts on one device); without
    it every address shares ``mac`` (one NIC with several addresses). ``detector`` announces,
    optionally probes, and defends our addresses (RFC 5227). ``deliver`` takes each IPv4
    datagram up (the host's handover); ``network`` answers the link's questions about our
    addresses (ARP).
    """

    medium = "ethernet"

    def __init__(
        self,
        mac: MacAddress,
        network: NetworkLayer,
        addresses: list[IPv4Address],
        stats: Stats,
        cache: NeighborCache | None = None,
        macs: dict[IPv4Address, MacAddress] | None = None,
        detector: ConflictDetector | None = None,
        *,
        deliver: Deliver,
        deliver6: Deliver | None = None,
    ) -> None:
        self.mac = mac
        self.network = network
        self.deliver = deliver
        #: The handover of IPv6 packets (None: the host has no IPv6 address; dropped as
        #: ``ethernet_ipv6_not_supported``).
        self.deliver6 = deliver6
        #: The IPv6 multicast groups' MACs we listen to (RFC 2464 7: 33:33 + the group's low 32
        #: bits): the host's groups (``listen``), nothing else.
        self._multicast: frozenset[bytes] = frozenset()
        self.stats = stats
        #: The counters themselves: the per-frame increment goes straight to them.
        self._counters = stats.counters
        self.cache = cache if cache is not None else NeighborCache()
        #: The MAC each address answers ARP from and sends from (the same ``mac`` for all
        #: when the link has one MAC).
        self.macs = macs if macs is not None else dict.fromkeys(addresses, mac)
        self._mac_by_value = {int(address): mac for address, mac in self.macs.items()}
        self._our_macs = frozenset(self.macs.values()) | {mac}
        self._one_mac = len(self._our_macs) == 1
        self.detector = detector if detector is not None else ConflictDetector(addresses, self._our_macs)
        #: The rate limit on senders we do not know yet (``receive_arp``).
        self.new_senders = TokenBucket(NEW_SENDERS_PER_SECOND, NEW_SENDERS_BURST)
        #: The budget of checks (unicast requests, and their warnings) over all neighbours: a
        #: flood claiming every known address from ever-new MACs starts at most so many a second.
        self.checks = TokenBucket(CHECKS_PER_SECOND, CHECKS_BURST)
        for address in addresses:
            if not self.detector.in_use(address):
                # RFC 5227 2.1: an address being probed is not used (nor answered for) yet.
                self.network.set_usable(address, False)

    def mac_of(self, address: IPv4Address | None) -> MacAddress:
        """The MAC that speaks for one of our addresses (our first MAC for any other)."""
        if self._one_mac or address is None:
            return self.mac
        # (Keyed by int: hashing an IPv4Address is several times slower, and this is per frame.)
        return self._mac_by_value.get(int(address), self.mac)

    # ------------------------------------------------------------------ receive

    def receive(self, frame: Buffer, now: float) -> list[Frame]:
        """Early classification from the header's bytes, before any object is built: the
        destination MAC first, then the EtherType. Most frames are IPv4 to our MAC and go up at
        once; garbage (another host's frame, an unknown EtherType) costs one unpack and a few
        comparisons, and its drop's words are made only if someone reads them."""
        if len(frame) < HEADER_LENGTH:
            self.stats.drop("ethernet_runt", log, "frame of %d bytes < header %d", len(frame), HEADER_LENGTH)
            return []
        destination, source, ethertype = HEADER.unpack_from(frame)
        if destination[0] & 1:
            # IEEE 802.3: the I/G bit marks a group address; we listen to broadcast and, as every
            # IPv4 multicast host (RFC 1112 6.4), to the all-hosts group's address.
            if destination != BROADCAST and destination != ALL_HOSTS_MAC and destination not in self._multicast:
                self.stats.drop("ethernet_not_for_us", log, mac_text, destination)
                return []
            link_broadcast = True
        elif destination != self.mac and (self._one_mac or destination not in self._our_macs):
            self.stats.drop("ethernet_not_for_us", log, mac_text, destination)
            return []
        else:
            link_broadcast = False
        if ethertype == _IPV4:
            # RFC 1122 3.3.4.2: the weak host model (as Linux): a datagram for any of our
            # addresses is taken on any of our MACs (the network layer decides).
            self._counters["rx_ipv4"] += 1
            if self.cache.checking:  # rarely: a neighbour's MAC is being checked
                self._confirm(frame, source)
            return self.deliver(memoryview(frame)[HEADER_LENGTH:], link_broadcast, now)
        if ethertype == _ARP:
            return self.receive_arp(memoryview(frame)[HEADER_LENGTH:], now)
        if ethertype == _IPV6 and self.deliver6 is not None:
            self._counters["rx_ipv6_frames"] += 1
            return self.deliver6(memoryview(frame)[HEADER_LENGTH:], link_broadcast, now)
        if ethertype < 0x0600:
            # IEEE 802.3: values below 0x0600 are a length (LLC/SNAP), not an EtherType.
            reason = "ethernet_8023_length_frame"
        else:
            reason = UNSUPPORTED_ETHERTYPES.get(ethertype, "ethernet_unknown_ethertype")
        self.stats.drop(reason, log, "%#06x", ethertype)
        return []

    def receive_arp(self, payload: Buffer, now: float) -> list[Frame]:
        """RFC 826 "Packet Reception", in its own order, read from the packet's bytes: no
        address object is built for a packet that is dropped."""
        try:
            hardware_type, protocol_type, operation, sender_mac, sender_packed, _, target_packed = (
                arp_read(payload))
        except ParseError as error:
            self.stats.drop(error.drop_reason, log, error)
            return []
        self._counters["rx_arp"] += 1
        # RFC 826: "?Do I have the hardware type in ar$hrd?" / "?Do I speak the protocol in ar$pro?"
        if hardware_type != HARDWARE_ETHERNET:
            self.stats.drop("arp_bad_hardware_type", log, "%d", hardware_type)
            return []
        if protocol_type != _IPV4:
            self.stats.drop("arp_bad_protocol_type", log, "%#06x", protocol_type)
            return []
        if operation != _REQUEST and operation != _REPLY:
            self.stats.drop("arp_unknown_operation", log, "%d", operation)
            return []
        # RFC 1812 3.3.2: a router MUST NOT believe an ARP reply claiming a broadcast or multicast
        # link address; as a host we believe no such packet (nor the all-zero address) at all.
        # Linux 6.18 answers and learns such a sender (stack.tools.diff: arp-group-sender-mac).
        if sender_mac[0] & 1 or sender_mac == ZERO:
            self.stats.drop("arp_bad_sender_mac", log, mac_text, sender_mac)
            return []
        # RFC 1122 3.2.1.3: a multicast, limited-broadcast or loopback address is never a host's
        # own, so no host can be asking from it; Linux 6.18 neither answers nor learns such a
        # sender (found by tapstack diff, seed 22; checked in a namespace). 0.0.0.0 is a probe.
        first = sender_packed[0]
        if 224 <= first <= 239 or first == 127 or sender_packed == _LIMITED_BROADCAST:
            self.stats.drop("arp_bad_sender_ip", log, ip_text, sender_packed)
            return []
        verdict = self.detector.observe(operation, sender_mac, sender_packed, target_packed, now)
        if verdict is not None:
            # RFC 5227 2.1.1 / 2.4: another host claims (or probes for) one of our addresses.
            # The claim is never learnt.
            return self._conflict(*verdict, payload)

        frames: list[Frame] = []
        # RFC 5227 2.1.1: a probe has sender address 0.0.0.0 and is never learnt.
        sender_ip = None if sender_packed == _UNSPECIFIED else IPv4Address(sender_packed)
        # RFC 826: "If the pair <protocol type, sender protocol address> is already in my
        # translation table, update the sender hardware address field ... set Merge_flag" --
        # hardened: a valid entry is not moved to another MAC on this packet's word (``_merge``).
        sender_known = sender_ip is not None and sender_ip in self.cache
        refused = sender_known and self._merge(sender_ip, MacAddress(sender_mac), frames, now)
        # RFC 826: "?Am I the target protocol address?" -- never answer for addresses we do not own.
        target_ip = self.network.own_address(target_packed)
        if target_ip is None:
            if refused:
                self.stats.drop("arp_mac_change_refused", log, ip_text, sender_packed)
            elif not sender_known:
                self.stats.drop("arp_not_for_us", log, ip_text, target_packed)
            return frames
        if not sender_known:
            # A sender we do not know costs an entry and a reply: at most so many a second, so a
            # flood of new senders cannot churn the cache or spend our time (known ones always).
            if not self.new_senders.take(now):
                self.stats.drop("arp_new_sender_rate_limited", log, ip_text, sender_packed)
                return frames
            # RFC 826: "If Merge_flag is false, add the triplet ... to the translation table."
            if sender_ip is not None:
                frames += self.release(self.cache.learn(sender_ip, MacAddress(sender_mac), now), now)
        if operation == _REQUEST:
            # RFC 826: "Swap hardware and protocol fields, putting the local hardware and protocol
            # addresses in the sender fields ... send the packet to the (new) target hardware
            # address on the same hardware on which the request was received."
            frames.append(self._arp_frame(sender_mac, self.mac_of(target_ip), _REPLY, target_packed,
                                          sender_mac, sender_packed))
            self._counters["arp_replies_sent"] += 1
        else:
            self._counters["arp_replies_received"] += 1
        return frames

    def _merge(self, address: IPv4Address, mac: MacAddress, frames: list[Frame], now: float) -> bool:
        """RFC 826's merge, hardened against ARP cache poisoning (``NeighborCache.merge``): another
        MAC for a valid entry is refused until the old MAC has been checked (a unicast request,
        at most one per address per check interval) and stayed silent. True when refused."""
        resolved, refused, check = self.cache.merge(address, mac, now, self.checks.take)
        frames += self.release(resolved, now)
        if refused:
            self._counters["arp_mac_changes_refused"] += 1
        if check is not None:
            log.warning("ARP: a packet says %s is at %s, but we have it at %s: not believed unless "
                        "%s stays silent for %.1f s (asked with a unicast request)", address, mac, check,
                        check, self.cache.check_interval)
            frames.append(self._check(address, check))
        return refused

    def _check(self, address: IPv4Address, mac: MacAddress) -> Frame:
        """A unicast ARP request to the MAC we have for ``address`` (RFC 1122 2.3.2.1's unicast
        poll): a neighbour still there answers it, which confirms the entry."""
        self._counters["arp_checks_sent"] += 1
        source = self.network.preferred_source(address)
        return self._arp_frame(mac, self.mac_of(source), _REQUEST, source.packed, ZERO, address.packed)

    def _confirm(self, frame: Buffer, source_mac: bytes) -> None:
        """A datagram from a neighbour whose MAC is being checked: from the old MAC, it confirms
        the entry (smoltcp and lwIP learn from IP traffic too; we only confirm)."""
        if len(frame) >= HEADER_LENGTH + 20:
            self.cache.confirm(IPv4Address(bytes(frame[26:30])), MacAddress(source_mac))

    def _conflict(self, verdict: Verdict, address: IPv4Address, payload: Buffer) -> list[Frame]:
        self.stats.drop("arp_address_conflict", log, ArpPacket.parse, bytes(payload[:ARP_PACKET.size]))
        if verdict is Verdict.ABANDON:
            # RFC 5227 2.1.1: a conflict while probing: the address is not used, ever.
            self.stats.count("arp_addresses_abandoned")
            self.network.set_usable(address, False)
            return []
        if verdict is Verdict.DEFEND:
            # RFC 5227 2.4 (b), (c): defend by broadcasting one ARP announcement.
            self.stats.count("arp_defences_sent")
            return [self._announcement(address)]
        self.stats.count("arp_defence_rate_limited")
        return []

    # ------------------------------------------------------------------ send

    def add_ipv6_macs(self, macs: dict[IPv6Address, MacAddress]) -> None:
        """The MACs our IPv6 addresses speak from (and are spoken to at)."""
        self._mac_by_value.update({int(address): each for address, each in macs.items()})
        self._our_macs = self._our_macs | frozenset(macs.values())
        self._one_mac = len(self._our_macs) == 1

    def listen(self, groups: list[bytes]) -> None:
        """Take frames to these IPv6 multicast groups' MACs (each group as its 16 bytes)."""
        self._multicast = frozenset(ipv6_multicast_mac(group) for group in groups)

    def send(self, outbound: Outbound, now: float) -> list[Frame]:
        """Frame a datagram for its next hop, or hold it while ARP resolves the next hop. An
        IPv6 datagram comes with its MAC (the network layer's Neighbor Discovery found it)."""
        if outbound.link_destination is not None:
            return [frame_buffers(outbound.link_destination, self.mac_of(outbound.source), _IPV6,
                                  outbound.datagram)]
        mac = self.cache.lookup(outbound.next_hop, now)
        if mac is not None:
            return [frame_buffers(mac, self.mac_of(outbound.source), EtherType.IPV4, outbound.datagram)]
        # RFC 1122 2.3.2.2: hold the datagram (a copy: its payload may view a receive buffer that
        # the device is about to reuse) instead of dropping it while the address is resolved.
        request_now, dropped = self.cache.enqueue(
            outbound.next_hop, (outbound.source, join(outbound.datagram)), now)
        self.stats.count("arp_queued")
        for _ in range(dropped):
            self.stats.drop("arp_queue_full", log, outbound.next_hop)
        if not request_now:
            return []
        return [self._request(outbound.next_hop)]

    def _request(self, address: IPv4Address) -> Frame:
        self.stats.count("arp_requests_sent")
        source = self.network.preferred_source(address)
        return self._arp_broadcast(source, source, address)

    def _arp_broadcast(self, speaker: IPv4Address, sender_ip: IPv4Address,
                       target_ip: IPv4Address) -> Frame:
        """An ARP request to everyone, from the MAC of our address ``speaker``."""
        return self._arp_frame(BROADCAST, self.mac_of(speaker), _REQUEST, sender_ip.packed, ZERO, target_ip.packed)

    @staticmethod
    def _arp_frame(destination: bytes, speaker: bytes, operation: int, sender_ip: bytes,
                   target_mac: bytes, target_ip: bytes) -> Frame:
        """One ARP packet for Ethernet and IPv4 (RFC 826) from our MAC ``speaker``, in a frame to
        ``destination``: every ARP frame the link sends is built here."""
        packet = ARP_PACKET.pack(HARDWARE_ETHERNET, _IPV4, 6, 4, operation, speaker, sender_ip,
                                 target_mac, target_ip)
        return frame_buffers(destination, speaker, _ARP, [packet])

    def release(self, resolved: Resolved | None, now: float) -> list[Frame]:
        """The datagrams that waited for a neighbour just resolved, framed to it (counted)."""
        if resolved is None:
            return []
        self.stats.count("arp_queue_flushed", len(resolved.datagrams))
        return [
            frame_buffers(resolved.mac, self.mac_of(source), EtherType.IPV4, [datagram])
            for source, datagram in resolved.datagrams
        ]

    # ------------------------------------------------------------------ timers

    def poll(self, now: float) -> list[Frame]:
        frames: list[Frame] = []
        for action, address in self.detector.poll(now):
            if action is Action.PROBE:
                frames.append(self.probe(address))
            elif action is Action.ANNOUNCE:
                self.stats.count("arp_announcements_sent")
                frames.append(self._announcement(address))
            else:  # Action.USE: probing found no conflict
                self.network.set_usable(address, True)
        retry, failed = self.cache.poll(now)
        frames += [self._request(address) for address in retry]
        for address, datagrams in failed:
            # RFC 1122 2.3.2.1: give up after a bounded number of requests (no ARP flooding).
            self.stats.count("arp_resolution_failed")
            for _ in range(datagrams):
                self.stats.drop("arp_unresolved", log, address)
        for moved in self.cache.end_checks(now):
            # The old MAC stayed silent for a whole check: the neighbour really moved.
            self._counters["arp_mac_changes_followed"] += 1
            log.warning("ARP: %s moved from %s to %s (the old MAC did not answer for %.1f s)",
                        moved.address, moved.old, moved.new, self.cache.check_interval)
        self.cache.expire(now)
        return frames

    def next_deadline(self, now: float) -> float | None:
        detector, cache = self.detector.next_deadline(now), self.cache.next_deadline()
        if detector is None or cache is None:
            return cache if detector is None else detector
        return min(detector, cache)

    def _announcement(self, address: IPv4Address) -> Frame:
        """RFC 5227 3: an ARP announcement is a request with sender and target address ours."""
        return self._arp_broadcast(address, address, address)

    def announce(self) -> list[Frame]:
        """One announcement for each address in use, now (RFC 5227 3: neighbours that know us
        update their entry, RFC 826's merge)."""
        out = [self._announcement(address) for address in self.macs if self.detector.in_use(address)]
        self.stats.count("arp_announcements_sent", len(out))
        return out

    def probe(self, address: IPv4Address) -> Frame:
        """RFC 5227 2.1.1: an ARP probe asks for ``address`` with sender address 0.0.0.0 (so
        that nobody learns it) and target MAC zero."""
        self.stats.count("arp_probes_sent")
        return self._arp_broadcast(address, UNSPECIFIED, address)
