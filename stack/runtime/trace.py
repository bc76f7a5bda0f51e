"""One line per frame, like ``tcpdump -nn -e``, plus the stack's verdict. Never raises.

Students compare these lines with ``tcpdump -nn -e -i tap0`` on the kernel side, so the wording
follows tcpdump's.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from ipaddress import IPv4Address, IPv6Address
from typing import TextIO

from stack.buffers import Buffer, join, length
from stack.errors import ParseError
from stack.l2.arp import ArpOp, ArpPacket
from stack.l2.ethernet import EthernetFrame, EtherType
from stack.packet_info import PacketInfo
from stack.l3.icmp import IcmpMessage, IcmpType
from stack.l3.icmpv6 import Icmpv6Message, Icmpv6Type
from stack.l3.ipv4 import IpProto, Ipv4Packet
from stack.l3.ipv6 import Ipv6Packet, NextHeader, walk_chain
from stack.l4.tcp import TcpFlags, TcpOptions, TcpSegment
from stack.node import Verdict
from stack.reasons import explain_drop

log = logging.getLogger(__name__)

_ICMP_NAMES = {
    IcmpType.ECHO_REPLY: "echo reply",
    IcmpType.ECHO_REQUEST: "echo request",
    IcmpType.DESTINATION_UNREACHABLE: "unreachable",
    IcmpType.TIME_EXCEEDED: "time exceeded in-transit",
    IcmpType.REDIRECT: "redirect",
    IcmpType.PARAMETER_PROBLEM: "parameter problem",
    IcmpType.TIMESTAMP_REQUEST: "time stamp query",
    IcmpType.TIMESTAMP_REPLY: "time stamp reply",
}
#: ICMPv6 names as tcpdump prints them.
_ICMPV6_NAMES = {
    Icmpv6Type.DESTINATION_UNREACHABLE: "destination unreachable",
    Icmpv6Type.PACKET_TOO_BIG: "packet too big",
    Icmpv6Type.TIME_EXCEEDED: "time exceeded in-transit",
    Icmpv6Type.PARAMETER_PROBLEM: "parameter problem",
    Icmpv6Type.ECHO_REQUEST: "echo request",
    Icmpv6Type.ECHO_REPLY: "echo reply",
    Icmpv6Type.MLD_QUERY: "multicast listener query",
    Icmpv6Type.MLDV1_REPORT: "multicast listener report",
    Icmpv6Type.MLDV1_DONE: "multicast listener done",
    Icmpv6Type.ROUTER_SOLICITATION: "router solicitation",
    Icmpv6Type.ROUTER_ADVERTISEMENT: "router advertisement",
    Icmpv6Type.NEIGHBOR_SOLICITATION: "neighbor solicitation",
    Icmpv6Type.NEIGHBOR_ADVERTISEMENT: "neighbor advertisement",
    Icmpv6Type.REDIRECT: "redirect",
    Icmpv6Type.MLDV2_REPORT: "multicast listener report v2",
}
_ETHERTYPE_NAMES = {EtherType.IPV4: "IPv4", EtherType.ARP: "ARP", EtherType.IPV6: "IPv6",
                    EtherType.VLAN: "802.1Q", EtherType.QINQ: "802.1Q-QinQ"}


def summarize(frame: Buffer | Sequence[Buffer], medium: str = "ethernet",
              packet_info: bool = False) -> str:
    """A tcpdump-like one-line description of a frame (``medium`` "ethernet" or "ip"; with
    ``packet_info``, an IP packet behind the TUN packet-information header)."""
    data = join(frame) if not isinstance(frame, (bytes, bytearray, memoryview)) else frame
    try:
        if medium == "ip" and packet_info:
            info = PacketInfo.parse(data)
            head = f"pi flags {info.flags:#x} proto {info.protocol:#06x}"
            if info.protocol == EtherType.IPV6:
                return f"{head}: {_ipv6(info.payload)}"
            if info.protocol != EtherType.IPV4:
                return head
            return f"{head}: {_ipv4(info.payload)}"
        if medium == "ip":
            return _ipv6(data) if len(data) and data[0] >> 4 == 6 else _ipv4(data)
        return _ethernet(data)
    except ParseError as error:
        return f"malformed: {error}"
    except Exception as error:  # a trace must never take the stack down; report and go on
        log.debug("trace failed on %d bytes: %r", len(data), error)
        return f"{len(data)} bytes (undecodable: {error!r})"


def _ethernet(data: Buffer) -> str:
    frame = EthernetFrame.parse(data)
    name = _ETHERTYPE_NAMES.get(frame.ethertype, "Unknown")
    head = (f"{frame.source} > {frame.destination}, ethertype {name} ({frame.ethertype:#06x}), "
            f"length {len(data)}")
    try:
        if frame.ethertype == EtherType.ARP:
            return f"{head}: {_arp(frame.payload)}"
        if frame.ethertype == EtherType.IPV4:
            return f"{head}: {_ipv4(frame.payload)}"
        if frame.ethertype == EtherType.IPV6:
            return f"{head}: {_ipv6(frame.payload)}"
    except ParseError as error:
        return f"{head}: malformed: {error}"
    return head


def _arp(data: Buffer) -> str:
    arp = ArpPacket.parse(data)
    if arp.operation == ArpOp.REQUEST:
        if arp.is_gratuitous:
            return f"Request who-has {arp.target_ip} tell {arp.sender_ip} (gratuitous), length 28"
        return f"Request who-has {arp.target_ip} tell {arp.sender_ip}, length 28"
    if arp.operation == ArpOp.REPLY:
        return f"Reply {arp.sender_ip} is-at {arp.sender_mac}, length 28"
    return f"ARP operation {arp.operation}, length 28"


def _ipv4(data: Buffer) -> str:
    packet = Ipv4Packet.parse(data)
    head = f"{packet.source} > {packet.destination}: "
    if packet.is_fragment:
        return head + (f"ip-proto-{packet.protocol} frag id {packet.identification} "
                       f"offset {packet.fragment_offset * 8}{'+' if packet.more_fragments else ''}")
    if packet.protocol == IpProto.ICMP:
        message = IcmpMessage.parse(packet.payload)
        name = _ICMP_NAMES.get(message.type, f"type-#{message.type}")
        size = length(packet.payload)
        if message.type in (IcmpType.ECHO_REQUEST, IcmpType.ECHO_REPLY):
            return (f"{head}ICMP {name}, id {message.identifier}, seq {message.sequence}, "
                    f"length {size}")
        return f"{head}ICMP {name}, length {size}"
    if packet.protocol == IpProto.TCP:
        return _tcp(packet.source, packet.destination, packet.payload)
    return f"{head}ip-proto-{packet.protocol} {length(packet.payload)}"


def _ipv6(data: Buffer) -> str:
    packet = Ipv6Packet.parse(data)
    head = f"{packet.source} > {packet.destination}: "
    chain = walk_chain(packet.next_header, packet.payload)
    fragment = chain.fragment
    if fragment is not None and not fragment.is_atomic:
        head += (f"frag (id {fragment.identification} offset {fragment.fragment_offset * 8}"
                 f"{'+' if fragment.more_fragments else ''}) ")
        if fragment.fragment_offset:
            return head + f"length {packet.payload_length}"
    if chain.upper_layer == NextHeader.ICMPV6:
        message = Icmpv6Message.parse(chain.upper_layer_data, packet.source, packet.destination) \
            if fragment is None or fragment.is_atomic else None
        if message is None:
            return head + f"ICMP6, length {len(chain.upper_layer_data)}"
        name = _ICMPV6_NAMES.get(message.type, f"type-#{message.type}")
        size = message.length
        if message.type in (Icmpv6Type.ECHO_REQUEST, Icmpv6Type.ECHO_REPLY):
            return f"{head}ICMP6, {name}, id {message.identifier}, seq {message.sequence}, length {size}"
        if message.type in (Icmpv6Type.NEIGHBOR_SOLICITATION, Icmpv6Type.NEIGHBOR_ADVERTISEMENT) \
                and len(message.payload) >= 16:
            target = IPv6Address(bytes(message.payload[:16]))
            verb = "who has" if message.type == Icmpv6Type.NEIGHBOR_SOLICITATION else "tgt is"
            return f"{head}ICMP6, {name}, {verb} {target}, length {size}"
        return f"{head}ICMP6, {name}, length {size}"
    if chain.upper_layer == NextHeader.TCP and (fragment is None or fragment.is_atomic):
        return _tcp(packet.source, packet.destination, chain.upper_layer_data)
    return f"{head}ip-proto-{chain.upper_layer} {len(chain.upper_layer_data)}"


#: tcpdump's letters for the TCP flags, in its order ("." is ACK).
_TCP_FLAG_LETTERS = ((TcpFlags.FIN, "F"), (TcpFlags.SYN, "S"), (TcpFlags.RST, "R"), (TcpFlags.PSH, "P"),
                     (TcpFlags.ACK, "."), (TcpFlags.URG, "U"), (TcpFlags.ECE, "E"), (TcpFlags.CWR, "W"))


def _tcp(source: IPv4Address | IPv6Address, destination: IPv4Address | IPv6Address, data: Buffer) -> str:
    """tcpdump -nn -S's TCP line: ports after the addresses, flags, absolute numbers, window,
    options, data length; a segment whose checksum fails is shown too, marked."""
    checksum = ""
    try:
        segment = TcpSegment.parse(data, source, destination)
    except ParseError as error:
        if error.reason != "bad_checksum":
            raise
        checksum = " [bad tcp cksum]"
        segment = TcpSegment.parse(data, source, destination, verify_checksum=False)
    letters = "".join(letter for flag, letter in _TCP_FLAG_LETTERS if segment.flags & flag) or "none"
    line = (f"{source}.{segment.source_port} > {destination}.{segment.destination_port}: "
            f"Flags [{letters}]{checksum}, seq {segment.sequence}")
    if segment.flags & TcpFlags.ACK:
        line += f", ack {segment.acknowledgment}"
    line += f", win {segment.window}"
    if segment.flags & TcpFlags.URG:
        line += f", urg {segment.urgent_pointer}"
    options = _tcp_options(segment.options)
    if options:
        line += f", options [{options}]"
    return line + f", length {segment.data_length}"


def _tcp_options(options: TcpOptions) -> str:
    """The options as tcpdump names them (mss, sackOK, TS val/ecr, wscale, sack, unknown kinds)."""
    parts = []
    if options.mss is not None:
        parts.append(f"mss {options.mss}")
    if options.sack_permitted:
        parts.append("sackOK")
    if options.timestamps is not None:
        parts.append(f"TS val {options.timestamps[0]} ecr {options.timestamps[1]}")
    if options.window_scale is not None:
        parts.append(f"wscale {options.window_scale}")
    if options.sack_blocks:
        parts.append("sack " + " ".join(f"{{{left}:{right}}}" for left, right in options.sack_blocks))
    parts += [f"opt-{kind}:{body.hex()}" if body else f"opt-{kind}" for kind, body in options.unknown]
    if options.malformed:
        parts.append("bad opts")
    return ",".join(parts)


class Tracer:
    """Writes trace lines for frames in and out, with the verdict for frames in."""

    def __init__(self, stream: TextIO, medium: str = "ethernet", packet_info: bool = False) -> None:
        self.stream = stream
        self.medium = medium
        self.packet_info = packet_info

    def inbound(self, frame: Buffer, verdict: Verdict | int, drop_reason: str | None = None,
                drop_detail: object = None) -> None:
        """A frame in and its ``verdict`` (the host's ``verdict`` after ``receive``; or, as
        before, the number of replies, the drop reason and its detail). A drop's reason and
        detail become plain words and the RFC rule, e.g. ``[drop ipv4_bad_checksum: ...
        (RFC 1122 3.2.1.2)]``."""
        if not isinstance(verdict, Verdict):
            verdict = Verdict(verdict, drop_reason, drop_detail)
        if verdict.drop_reason is not None:
            shown = f"drop {explain_drop(verdict.drop_reason, verdict.drop_detail)}"
        elif verdict.replies:
            shown = f"-> {verdict.replies} {'reply' if verdict.replies == 1 else 'replies'}"
        else:
            shown = "consumed"
        self.stream.write(f"In  {summarize(frame, self.medium, self.packet_info)}  [{shown}]\n")
        self.stream.flush()

    def outbound(self, frame: Sequence[Buffer]) -> None:
        self.stream.write(f"Out {summarize(frame, self.medium, self.packet_info)}\n")
        self.stream.flush()
