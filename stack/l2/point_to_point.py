"""The point-to-point link of a TUN device: packets in, datagrams up; datagrams down, packets out.

Read first: Documentation/networking/tuntap.rst ("Frame format"); ``stack.packet_info`` (the
header). A TUN device carries bare IP packets between two ends: no link-layer address, no
neighbour to resolve, no ARP (as smoltcp's ``Medium::Ip``), so ``Outbound.next_hop`` is not
looked at. Opened without IFF_NO_PI, every packet both ways starts with the 4-byte
packet-information header, and that header says which protocol follows; opened with it, the
IP version number is all there is.

Sans-I/O, the same shape as ``EthernetLink``: ``receive(packet, now)``, ``send(outbound, now)``
and ``poll(now)`` return the packets to send, each a list of buffers in wire order.
"""

from __future__ import annotations

import logging

from stack.buffers import Buffer, Frame
from stack.errors import ParseError
from stack.l2.link import Deliver
from stack.packet_info import ETH_P_IP, ETH_P_IPV6, IPV4_HEADER, PROTOCOL_OF_VERSION, PacketInfo
from stack.packet_info import header_bytes as packet_info_header

#: The packet-information header we send before an IPv6 packet (no flags).
IPV6_HEADER = packet_info_header(ETH_P_IPV6)
from stack.stats import Stats
from stack.seam import Outbound

log = logging.getLogger(__name__)


class PointToPointLink:
    """One end of a point-to-point link; ``deliver`` takes each IPv4 datagram up (the node's
    handover) and returns the packets to send in answer. With ``packet_info`` every packet in
    and out carries the TUN packet-information header."""

    medium = "ip"

    def __init__(self, deliver: Deliver, stats: Stats, packet_info: bool = False,
                 deliver6: Deliver | None = None) -> None:
        """``deliver6`` takes IPv6 packets up (None: the host has no IPv6 address; they are
        dropped as ``tun_ipv6_not_supported``)."""
        self.deliver = deliver
        self.deliver6 = deliver6
        self.stats = stats
        self.packet_info = packet_info
        #: Header prediction for IPv4 behind the header we send (tests turn it off to compare).
        self.predict = True

    def receive(self, packet: Buffer, now: float) -> list[Frame]:
        """One packet from the TUN device in; the packets to send in answer out."""
        if not self.packet_info:
            # Without the header the IP version number is all there is (as the kernel does for
            # a TUN write: it reads the first nibble).
            if len(packet) and packet[0] >> 4 == 4:
                return self.deliver(packet, False, now)
            version = packet[0] >> 4 if len(packet) else 0
            if version == 6 and self.deliver6 is not None:
                return self.deliver6(packet, False, now)
            return self._not_ipv4(PROTOCOL_OF_VERSION.get(version, 0), packet)
        if self.predict and packet[:4] == IPV4_HEADER:
            # Header prediction: nearly every packet is IPv4 with no flags (the header we send);
            # hand it up without building the header's value.
            return self.deliver(memoryview(packet)[4:], False, now)
        try:
            info = PacketInfo.parse(packet)
        except ParseError as error:
            self.stats.drop(error.drop_reason, log, error)
            return []
        if info.truncated:
            # The kernel cut the packet to fit our read buffer (TUN_PKT_STRIP).
            self.stats.drop("tun_truncated", log, len(packet))
            return []
        if info.protocol == ETH_P_IP:
            return self.deliver(info.payload, False, now)
        if info.protocol == ETH_P_IPV6 and self.deliver6 is not None:
            return self.deliver6(info.payload, False, now)
        return self._not_ipv4(info.protocol, packet)

    def _not_ipv4(self, protocol: int, packet: Buffer) -> list[Frame]:
        if protocol == ETH_P_IPV6:
            self.stats.drop("tun_ipv6_not_supported", log, len(packet))
        else:
            self.stats.drop("tun_not_ipv4", log, f"{protocol:#06x}")
        return []

    def send(self, outbound: Outbound, now: float) -> list[Frame]:
        """The datagram as one packet (behind the packet-information header, if any)."""
        if self.packet_info:
            # The header names the protocol that follows (the kernel checks it against nothing
            # but passes it on): IPv6 when the datagram's first nibble says 6.
            if outbound.datagram[0][0] >> 4 == 6:
                return [[IPV6_HEADER, *outbound.datagram]]
            return [[IPV4_HEADER, *outbound.datagram]]
        return [outbound.datagram]

    def poll(self, now: float) -> list[Frame]:
        return []  # no timers: nothing to resolve, nothing to announce

    def next_deadline(self, now: float) -> float | None:
        return None

    def __repr__(self) -> str:
        return f"PointToPointLink(packet_info={self.packet_info})"

