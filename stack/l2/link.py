"""The Ethernet link: frames in, datagrams up; datagrams down, frames out, resolving with ARP.

Read first: RFC 894 (IPv4 over Ethernet); RFC 826 (ARP, "Packet Reception"); RFC 1122 2.3.2;
RFC 5227 3 (announcements).

Sans-I/O: ``receive(frame, now)``, ``send(outbound, now)`` and ``poll(now)`` return the frames to
send, each a list of buffers in wire order. Nothing here reads a clock or touches a device.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from ipaddress import IPv4Address

from stack.buffers import Buffer, Frame, join
from stack.errors import ParseError
from stack.l2.arp import HARDWARE_ETHERNET, ArpOp, ArpPacket
from stack.l2.ethernet import BROADCAST, ZERO, EthernetFrame, EtherType, MacAddress, frame_buffers
from stack.l2.neighbor import NeighborCache, Resolved
from stack.stats import Stats
from stack.types import NetworkLayer, Outbound

log = logging.getLogger(__name__)

#: RFC 1112 6.4: every IPv4 multicast host belongs to the all-hosts group 224.0.0.1, whose
#: Ethernet address is 01:00:5e:00:00:01 (RFC 1112 6.4: 01-00-5E plus the low 23 bits).
ALL_HOSTS_MAC = MacAddress(b"\x01\x00\x5e\x00\x00\x01")

_IPV4_ETHERTYPE = EtherType.IPV4.to_bytes(2, "big")

#: EtherTypes we recognise but do not handle, each dropped under its own reason.
UNSUPPORTED_ETHERTYPES = {
    EtherType.VLAN: "ethernet_vlan_tagged",  # 802.1Q frames are not supported
    EtherType.QINQ: "ethernet_vlan_tagged",
    EtherType.IPV6: "ethernet_ipv6_not_supported",
}


class EthernetLink:
    """One Ethernet interface: our MAC, the neighbour cache, and the network layer above."""

    def __init__(
        self,
        mac: MacAddress,
        network: NetworkLayer,
        addresses: list[IPv4Address],
        stats: Stats,
        cache: NeighborCache | None = None,
    ) -> None:
        self.mac = mac
        self.network = network
        self.addresses = addresses
        self.stats = stats
        self.cache = cache if cache is not None else NeighborCache()
        #: Header prediction for IPv4 to our MAC (tests turn it off to compare both paths).
        self.predict = True
        #: RFC 5227 3: announce our addresses once at start-up (sent by the first ``poll``).
        self.announce_pending = True

    # ------------------------------------------------------------------ receive

    def receive(self, frame: Buffer, now: float) -> list[Frame]:
        # Header prediction: most frames are IPv4 sent to our own MAC; hand those up at once,
        # without building the frame value (the general path below would do the same).
        if self.predict and frame[12:14] == _IPV4_ETHERTYPE and frame[0:6] == self.mac:
            return self._deliver_ipv4(memoryview(frame)[14:], False, now)
        try:
            ethernet = EthernetFrame.parse(frame)
        except ParseError as error:
            self.stats.drop(error.drop_reason, log, error)
            return []
        destination = ethernet.destination
        if destination != self.mac and destination != BROADCAST and destination != ALL_HOSTS_MAC:
            self.stats.drop("ethernet_not_for_us", log, destination)
            return []
        handler = ETHERTYPE_HANDLERS.get(ethernet.ethertype)
        if handler is None:
            if ethernet.ethertype < 0x0600:
                # IEEE 802.3: values below 0x0600 are a length (LLC/SNAP), not an EtherType.
                reason = "ethernet_8023_length_frame"
            else:
                reason = UNSUPPORTED_ETHERTYPES.get(ethernet.ethertype, "ethernet_unknown_ethertype")
            self.stats.drop(reason, log, f"{ethernet.ethertype:#06x}")
            return []
        return handler(self, ethernet, now)

    def receive_ipv4(self, ethernet: EthernetFrame, now: float) -> list[Frame]:
        return self._deliver_ipv4(ethernet.payload, ethernet.destination != self.mac, now)

    def _deliver_ipv4(self, datagram: Buffer, link_broadcast: bool, now: float) -> list[Frame]:
        self.stats.count("rx_ipv4")
        outbounds = self.network.receive(datagram, now, link_broadcast)
        frames: list[Frame] = []
        for outbound in outbounds:
            frames.extend(self.send(outbound, now))
        return frames

    def receive_arp(self, ethernet: EthernetFrame, now: float) -> list[Frame]:
        """RFC 826 "Packet Reception", in its own order."""
        try:
            arp = ArpPacket.parse(ethernet.payload)
        except ParseError as error:
            self.stats.drop(error.drop_reason, log, error)
            return []
        self.stats.count("rx_arp")
        # RFC 826: "?Do I have the hardware type in ar$hrd?" / "?Do I speak the protocol in ar$pro?"
        if arp.hardware_type != HARDWARE_ETHERNET:
            self.stats.drop("arp_bad_hardware_type", log, arp.hardware_type)
            return []
        if arp.protocol_type != EtherType.IPV4:
            self.stats.drop("arp_bad_protocol_type", log, f"{arp.protocol_type:#06x}")
            return []
        if arp.operation not in (ArpOp.REQUEST, ArpOp.REPLY):
            self.stats.drop("arp_unknown_operation", log, arp.operation)
            return []
        # IEEE 802: a station's own address is never a group address (Linux arp_process drops too).
        if arp.sender_mac.is_multicast or arp.sender_mac == ZERO:
            self.stats.drop("arp_bad_sender_mac", log, arp.sender_mac)
            return []
        if arp.sender_ip in self.addresses:
            # RFC 5227 2.4: someone else claims our address. Conflict defence is not implemented
            # yet; we log it for the operator and do not learn the claim.
            self.stats.drop("arp_address_conflict", log, arp)
            log.warning("address conflict: %s claims %s, which is ours", arp.sender_mac, arp.sender_ip)
            return []

        frames: list[Frame] = []
        sender_known = arp.sender_ip in self.cache
        # RFC 826: "If the pair <protocol type, sender protocol address> is already in my
        # translation table, update the sender hardware address field ... set Merge_flag".
        if sender_known and not arp.sender_ip.is_unspecified:
            frames += self._flush(self.cache.learn(arp.sender_ip, arp.sender_mac, now), now)
        # RFC 826: "?Am I the target protocol address?" -- never answer for addresses we do not own.
        if not self.network.owns(arp.target_ip):
            if not sender_known:
                self.stats.drop("arp_not_for_us", log, arp.target_ip)
            return frames
        # RFC 826: "If Merge_flag is false, add the triplet ... to the translation table."
        # RFC 5227 2.1.1: a probe has sender address 0.0.0.0 and is never learnt.
        if not sender_known and not arp.sender_ip.is_unspecified:
            frames += self._flush(self.cache.learn(arp.sender_ip, arp.sender_mac, now), now)
        if arp.operation == ArpOp.REQUEST:
            # RFC 826: "Swap hardware and protocol fields, putting the local hardware and protocol
            # addresses in the sender fields ... send the packet to the (new) target hardware
            # address on the same hardware on which the request was received."
            reply = ArpPacket(ArpOp.REPLY, self.mac, arp.target_ip, arp.sender_mac, arp.sender_ip)
            frames.append(EthernetFrame(arp.sender_mac, self.mac, EtherType.ARP, bytes(reply)).buffers())
            self.stats.count("arp_replies_sent")
        else:
            self.stats.count("arp_replies_received")
        return frames

    # ------------------------------------------------------------------ send

    def send(self, outbound: Outbound, now: float) -> list[Frame]:
        """Frame a datagram for its next hop, or hold it while ARP resolves the next hop."""
        mac = self.cache.lookup(outbound.next_hop, now)
        if mac is not None:
            return [frame_buffers(mac, self.mac, EtherType.IPV4, outbound.datagram)]
        # RFC 1122 2.3.2.2: hold the datagram (a copy: its payload may view a receive buffer that
        # the device is about to reuse) instead of dropping it while the address is resolved.
        request_now, dropped = self.cache.enqueue(outbound.next_hop, join(outbound.datagram), now)
        self.stats.count("arp_queued")
        if dropped:
            self.stats.drop("arp_queue_full", log, outbound.next_hop)
        if not request_now:
            return []
        return [self._request(outbound.next_hop)]

    def _request(self, address: IPv4Address) -> Frame:
        self.stats.count("arp_requests_sent")
        request = ArpPacket(ArpOp.REQUEST, self.mac, self.network.preferred_source(address), ZERO, address)
        return EthernetFrame(BROADCAST, self.mac, EtherType.ARP, bytes(request)).buffers()

    def _flush(self, resolved: Resolved | None, now: float) -> list[Frame]:
        if resolved is None:
            return []
        self.stats.count("arp_queue_flushed", len(resolved.datagrams))
        return [
            frame_buffers(resolved.mac, self.mac, EtherType.IPV4, [datagram])
            for datagram in resolved.datagrams
        ]

    # ------------------------------------------------------------------ timers

    def poll(self, now: float) -> list[Frame]:
        frames: list[Frame] = []
        if self.announce_pending:
            self.announce_pending = False
            frames += [self.announcement(address) for address in self.addresses]
        retry, failed = self.cache.poll(now)
        frames += [self._request(address) for address in retry]
        for address, datagrams in failed:
            # RFC 1122 2.3.2.1: give up after a bounded number of requests (no ARP flooding).
            self.stats.count("arp_resolution_failed")
            for _ in range(datagrams):
                self.stats.drop("arp_unresolved", log, address)
        self.cache.expire(now)
        return frames

    def next_deadline(self, now: float) -> float | None:
        if self.announce_pending:
            return now
        return self.cache.next_deadline()

    def announcement(self, address: IPv4Address) -> Frame:
        """RFC 5227 3: an ARP announcement is a request with sender and target address ours."""
        self.stats.count("arp_announcements_sent")
        packet = ArpPacket(ArpOp.REQUEST, self.mac, address, ZERO, address)
        return EthernetFrame(BROADCAST, self.mac, EtherType.ARP, bytes(packet)).buffers()


#: What the link does with each EtherType; anything else is dropped under a named reason.
ETHERTYPE_HANDLERS: dict[int, Callable[[EthernetLink, EthernetFrame, float], list[Frame]]] = {
    EtherType.ARP: EthernetLink.receive_arp,
    EtherType.IPV4: EthernetLink.receive_ipv4,
}
