"""Golden frames for tests and labs, built with dpkt (an independent implementation), never with
tapstack's own codecs, so they can check them.

Two forms of the same four frames: ``ARP_REQUEST``, ``ARP_REPLY``, ``ECHO_REQUEST`` and
``ECHO_REPLY`` are built by dpkt through the helpers below; ``*_HEX`` are the same bytes written by
hand, one field per line (checksums worked out by hand and checked against ``dpkt.in_cksum``).
``tests/core/l2/test_ethernet.py`` asserts that the two forms agree.

The scene: the kernel side of a TAP device is 192.0.2.1 at 02:00:00:00:00:01 (``KERNEL_*``) and
pings tapstack, 192.0.2.2 at 02:00:00:00:00:02 (``HOST_*``). Only documentation addresses
(RFC 5737: 192.0.2.0/24, 198.51.100.0/24, 203.0.113.0/24) and locally administered MACs
(first octet 02) appear here.

Every helper returns wire ``bytes``. MAC arguments take ``bytes`` (6) or ``"02:00:..."``; IP
arguments take ``"192.0.2.1"``, an ``IPv4Address`` or 4 packed bytes.
"""

from __future__ import annotations

from ipaddress import IPv4Address
from typing import Final, Union

import dpkt

MacLike = Union[bytes, str]
IpLike = Union[str, IPv4Address, bytes]

KERNEL_MAC: Final = bytes.fromhex("020000000001")
HOST_MAC: Final = bytes.fromhex("020000000002")
BROADCAST_MAC: Final = b"\xff" * 6
ZERO_MAC: Final = bytes(6)
KERNEL_IP: Final = "192.0.2.1"
HOST_IP: Final = "192.0.2.2"

ETHERTYPE_IPV4: Final = 0x0800
ETHERTYPE_ARP: Final = 0x0806
ARP_REQUEST_OP: Final = 1
ARP_REPLY_OP: Final = 2
IP_PROTOCOL_ICMP: Final = 1
ICMP_ECHO_REPLY: Final = 0
ICMP_ECHO_REQUEST: Final = 8

ECHO_IDENT: Final = 0x1234
ECHO_SEQ: Final = 1
ECHO_DATA: Final = bytes(range(56))  # 56 bytes, as `ping` sends by default
MINIMUM_FRAME: Final = 60  # RFC 894: 46-byte minimum data field + 14-byte header (no FCS on a TAP)


def mac(value: MacLike) -> bytes:
    """Six raw bytes from ``b"\\x02..."`` or ``"02:00:00:00:00:01"``."""
    raw = bytes.fromhex(value.replace(":", "")) if isinstance(value, str) else bytes(value)
    if len(raw) != 6:
        raise ValueError(f"a MAC address is 6 bytes, not {len(raw)}")
    return raw


def ip(value: IpLike) -> bytes:
    """Four packed bytes from ``"192.0.2.1"``, an ``IPv4Address`` or packed bytes."""
    return IPv4Address(value).packed


def pad(frame: bytes, minimum: int = MINIMUM_FRAME) -> bytes:
    """RFC 894: a frame shorter than 60 bytes is padded with zeros (what tapstack sends)."""
    return frame + bytes(max(0, minimum - len(frame)))


def ethernet_frame(dst_mac: MacLike, src_mac: MacLike, ethertype: int, payload: bytes) -> bytes:
    """An Ethernet II frame, not padded. The payload is appended exactly as given.

    (Handing the payload to ``dpkt.ethernet.Ethernet(data=...)`` would not do: dpkt decodes it
    by EtherType and re-encodes it, which trims bytes after an IP total length, recomputes zero
    checksums and rewrites IPv6 payloads.)
    """
    header = bytes(dpkt.ethernet.Ethernet(dst=mac(dst_mac), src=mac(src_mac), type=ethertype))
    assert len(header) == 14
    return header + bytes(payload)


def arp_packet(
    op: int,
    sender_mac: MacLike,
    sender_ip: IpLike,
    target_mac: MacLike,
    target_ip: IpLike,
    *,
    hardware_type: int = 1,
    protocol_type: int = ETHERTYPE_IPV4,
) -> bytes:
    """The 28-byte ARP packet (RFC 826) for Ethernet/IPv4."""
    return bytes(dpkt.arp.ARP(
        hrd=hardware_type, pro=protocol_type, hln=6, pln=4, op=op,
        sha=mac(sender_mac), spa=ip(sender_ip), tha=mac(target_mac), tpa=ip(target_ip),
    ))


def arp_frame(
    op: int,
    sender_mac: MacLike = KERNEL_MAC,
    sender_ip: IpLike = KERNEL_IP,
    target_mac: MacLike = ZERO_MAC,
    target_ip: IpLike = HOST_IP,
    *,
    dst_mac: MacLike | None = None,
    src_mac: MacLike | None = None,
    pad_to_minimum: bool = False,
) -> bytes:
    """An ARP packet in an Ethernet frame.

    The Ethernet destination defaults to broadcast for a request and to ``target_mac`` otherwise;
    the source defaults to ``sender_mac``. Not padded (42 bytes, as the Linux kernel writes to a
    TAP) unless ``pad_to_minimum`` (60 bytes, as tapstack sends it).
    """
    if dst_mac is None:
        dst_mac = BROADCAST_MAC if op == ARP_REQUEST_OP else target_mac
    frame = ethernet_frame(
        dst_mac, sender_mac if src_mac is None else src_mac, ETHERTYPE_ARP,
        arp_packet(op, sender_mac, sender_ip, target_mac, target_ip),
    )
    return pad(frame) if pad_to_minimum else frame


def ipv4_datagram(
    src_ip: IpLike,
    dst_ip: IpLike,
    protocol: int,
    payload: bytes,
    *,
    ttl: int = 64,
    identification: int = 0,
    dont_fragment: bool = False,
    more_fragments: bool = False,
    fragment_offset: int = 0,
    type_of_service: int = 0,
    options: bytes = b"",
) -> bytes:
    """An IPv4 datagram with its header checksum computed by dpkt.

    ``fragment_offset`` is in 8-octet units, as on the wire. ``options`` must be a multiple of
    4 bytes (dpkt does not pad them). Any TTL, 0 included, can be built here.
    """
    if len(options) % 4:
        raise ValueError("options must be a multiple of 4 bytes")
    packet = dpkt.ip.IP(
        src=ip(src_ip), dst=ip(dst_ip), p=protocol, ttl=ttl, id=identification, tos=type_of_service,
        data=bytes(payload),
    )
    packet.df, packet.mf, packet.offset = int(dont_fragment), int(more_fragments), fragment_offset
    packet.opts = bytes(options)
    packet.hl = 5 + len(options) // 4
    packet.sum = 0  # dpkt computes the checksum (and the total length) in bytes() only when sum == 0
    return bytes(packet)


def icmp_message(type: int, code: int, rest_of_header: bytes = bytes(4), data: bytes = b"") -> bytes:
    """An ICMP message (RFC 792) with its checksum computed by dpkt."""
    if len(rest_of_header) != 4:
        raise ValueError("the rest of the ICMP header is 4 bytes")
    return bytes(dpkt.icmp.ICMP(type=type, code=code, data=bytes(rest_of_header) + bytes(data)))


def icmp_echo(type: int, ident: int, seq: int, data: bytes = ECHO_DATA) -> bytes:
    """An ICMP echo request (type 8) or reply (type 0)."""
    return bytes(dpkt.icmp.ICMP(type=type, code=0, data=dpkt.icmp.ICMP.Echo(id=ident, seq=seq, data=bytes(data))))


def echo_request_frame(
    src_mac: MacLike = KERNEL_MAC,
    dst_mac: MacLike = HOST_MAC,
    src_ip: IpLike = KERNEL_IP,
    dst_ip: IpLike = HOST_IP,
    ident: int = ECHO_IDENT,
    seq: int = ECHO_SEQ,
    data: bytes = ECHO_DATA,
    ttl: int = 64,
    *,
    identification: int = 0,
    options: bytes = b"",
) -> bytes:
    """An ICMP echo request in IPv4 in Ethernet. With no arguments: ``ECHO_REQUEST``."""
    datagram = ipv4_datagram(
        src_ip, dst_ip, IP_PROTOCOL_ICMP, icmp_echo(ICMP_ECHO_REQUEST, ident, seq, data),
        ttl=ttl, identification=identification, options=options,
    )
    return ethernet_frame(dst_mac, src_mac, ETHERTYPE_IPV4, datagram)


def echo_reply_frame(
    src_mac: MacLike = HOST_MAC,
    dst_mac: MacLike = KERNEL_MAC,
    src_ip: IpLike = HOST_IP,
    dst_ip: IpLike = KERNEL_IP,
    ident: int = ECHO_IDENT,
    seq: int = ECHO_SEQ,
    data: bytes = ECHO_DATA,
    ttl: int = 64,
    *,
    identification: int = 0,
    options: bytes = b"",
) -> bytes:
    """An ICMP echo reply in IPv4 in Ethernet. With no arguments: ``ECHO_REPLY``."""
    datagram = ipv4_datagram(
        src_ip, dst_ip, IP_PROTOCOL_ICMP, icmp_echo(ICMP_ECHO_REPLY, ident, seq, data),
        ttl=ttl, identification=identification, options=options,
    )
    return ethernet_frame(dst_mac, src_mac, ETHERTYPE_IPV4, datagram)


# Who has 192.0.2.2? Tell 192.0.2.1 (at 02:00:00:00:00:01). 42 bytes, not padded.
ARP_REQUEST: Final = arp_frame(ARP_REQUEST_OP, KERNEL_MAC, KERNEL_IP, ZERO_MAC, HOST_IP)
# 192.0.2.2 is at 02:00:00:00:00:02, sent to 02:00:00:00:00:01. 42 bytes, not padded.
ARP_REPLY: Final = arp_frame(ARP_REPLY_OP, HOST_MAC, HOST_IP, KERNEL_MAC, KERNEL_IP)
# ping 192.0.2.2 from 192.0.2.1: id 0x1234, seq 1, 56 data bytes. 98 bytes.
ECHO_REQUEST: Final = echo_request_frame()
# ... and its answer from 192.0.2.2. 98 bytes.
ECHO_REPLY: Final = echo_reply_frame()

_ECHO_DATA_HEX = """
    00 01 02 03 04 05 06 07  08 09 0a 0b 0c 0d 0e 0f
    10 11 12 13 14 15 16 17  18 19 1a 1b 1c 1d 1e 1f
    20 21 22 23 24 25 26 27  28 29 2a 2b 2c 2d 2e 2f
    30 31 32 33 34 35 36 37
"""

ARP_REQUEST_HEX: Final = bytes.fromhex(
    "ff ff ff ff ff ff"  # Ethernet destination: broadcast
    "02 00 00 00 00 01"  # Ethernet source: 02:00:00:00:00:01
    "08 06"              # EtherType: ARP
    "00 01"              # ar$hrd: Ethernet (1)
    "08 00"              # ar$pro: IPv4
    "06"                 # ar$hln: 6
    "04"                 # ar$pln: 4
    "00 01"              # ar$op: request (1)
    "02 00 00 00 00 01"  # ar$sha: 02:00:00:00:00:01
    "c0 00 02 01"        # ar$spa: 192.0.2.1
    "00 00 00 00 00 00"  # ar$tha: unknown, zero
    "c0 00 02 02"        # ar$tpa: 192.0.2.2
)

ARP_REPLY_HEX: Final = bytes.fromhex(
    "02 00 00 00 00 01"  # Ethernet destination: 02:00:00:00:00:01
    "02 00 00 00 00 02"  # Ethernet source: 02:00:00:00:00:02
    "08 06"              # EtherType: ARP
    "00 01"              # ar$hrd: Ethernet (1)
    "08 00"              # ar$pro: IPv4
    "06"                 # ar$hln: 6
    "04"                 # ar$pln: 4
    "00 02"              # ar$op: reply (2)
    "02 00 00 00 00 02"  # ar$sha: 02:00:00:00:00:02
    "c0 00 02 02"        # ar$spa: 192.0.2.2
    "02 00 00 00 00 01"  # ar$tha: 02:00:00:00:00:01
    "c0 00 02 01"        # ar$tpa: 192.0.2.1
)

ECHO_REQUEST_HEX: Final = bytes.fromhex(
    "02 00 00 00 00 02"  # Ethernet destination: 02:00:00:00:00:02
    "02 00 00 00 00 01"  # Ethernet source: 02:00:00:00:00:01
    "08 00"              # EtherType: IPv4
    "45"                 # IPv4 version 4, IHL 5 (20 bytes)
    "00"                 # type of service
    "00 54"              # total length: 84 = 20 + 8 + 56
    "00 00"              # identification
    "00 00"              # flags 0, fragment offset 0
    "40"                 # TTL 64
    "01"                 # protocol: ICMP
    "f6 a5"              # header checksum: ~(4500+0054+4001+c000+0201+c000+0202) = ~095a
    "c0 00 02 01"        # source: 192.0.2.1
    "c0 00 02 02"        # destination: 192.0.2.2
    "08"                 # ICMP type: echo request
    "00"                 # code 0
    "ee b7"              # ICMP checksum: ~(0800+1234+0001+sum(data)=2f710) = ~1148
    "12 34"              # identifier 0x1234
    "00 01"              # sequence number 1
    + _ECHO_DATA_HEX     # 56 data bytes, 00 to 37
)

ECHO_REPLY_HEX: Final = bytes.fromhex(
    "02 00 00 00 00 01"  # Ethernet destination: 02:00:00:00:00:01
    "02 00 00 00 00 02"  # Ethernet source: 02:00:00:00:00:02
    "08 00"              # EtherType: IPv4
    "45"                 # IPv4 version 4, IHL 5 (20 bytes)
    "00"                 # type of service
    "00 54"              # total length: 84
    "00 00"              # identification
    "00 00"              # flags 0, fragment offset 0
    "40"                 # TTL 64
    "01"                 # protocol: ICMP
    "f6 a5"              # header checksum (the same words as the request, in another order)
    "c0 00 02 02"        # source: 192.0.2.2
    "c0 00 02 01"        # destination: 192.0.2.1
    "00"                 # ICMP type: echo reply
    "00"                 # code 0
    "f6 b7"              # ICMP checksum: the request's plus 0x0800 (RFC 1624)
    "12 34"              # identifier 0x1234
    "00 01"              # sequence number 1
    + _ECHO_DATA_HEX     # the same 56 data bytes (RFC 1122 3.2.2.6)
)


# ---------------------------------------------------------------------- IPv6 (issue 14)
#
# The same scene over IPv6 (RFC 3849: 2001:db8::/32 is for documentation): the kernel side is
# 2001:db8::1, tapstack 2001:db8::2. Packets are laid out here by hand (dpkt's extension-header
# support is thin), and checksums summed here with ``dpkt.in_cksum``, not with tapstack's code.

KERNEL_IP6: Final = "2001:db8::1"
HOST_IP6: Final = "2001:db8::2"
NEXT_HEADER_ICMPV6: Final = 58
NEXT_HEADER_UDP: Final = 17
ICMPV6_ECHO_REQUEST: Final = 128
ICMPV6_ECHO_REPLY: Final = 129


def ip6(value: str | bytes) -> bytes:
    """Sixteen packed bytes from ``"2001:db8::1"`` or packed bytes."""
    from ipaddress import IPv6Address
    return IPv6Address(value).packed


def upper_layer_checksum(src: str | bytes, dst: str | bytes, next_header: int, data: bytes) -> int:
    """RFC 8200 8.1: the checksum over the pseudo-header and ``data`` (its checksum field 0)."""
    pseudo = ip6(src) + ip6(dst) + len(data).to_bytes(4, "big") + bytes(3) + bytes([next_header])
    return dpkt.in_cksum(pseudo + data)


def icmpv6_message(type: int, code: int, body: bytes, src: str | bytes = KERNEL_IP6,
                   dst: str | bytes = HOST_IP6) -> bytes:
    """An ICMPv6 message (RFC 4443 2.1): type, code, checksum, then ``body`` (the 4 bytes after
    the checksum and the rest), its checksum over the pseudo-header from ``src`` to ``dst``."""
    unsummed = bytes([type, code, 0, 0]) + body
    summed = upper_layer_checksum(src, dst, NEXT_HEADER_ICMPV6, unsummed)
    return unsummed[:2] + summed.to_bytes(2, "big") + unsummed[4:]


def icmpv6_echo(type: int, ident: int, seq: int, data: bytes = ECHO_DATA, src: str | bytes = KERNEL_IP6,
                dst: str | bytes = HOST_IP6) -> bytes:
    return icmpv6_message(type, 0, ident.to_bytes(2, "big") + seq.to_bytes(2, "big") + data, src, dst)


def udp6(sport: int, dport: int, data: bytes, src: str | bytes = KERNEL_IP6, dst: str | bytes = HOST_IP6,
         checksum: int | None = None) -> bytes:
    """A UDP datagram over IPv6 (RFC 8200 8.1: its checksum is mandatory)."""
    unsummed = sport.to_bytes(2, "big") + dport.to_bytes(2, "big") + (8 + len(data)).to_bytes(2, "big") \
        + bytes(2) + data
    if checksum is None:
        checksum = upper_layer_checksum(src, dst, NEXT_HEADER_UDP, unsummed) or 0xFFFF
    return unsummed[:6] + checksum.to_bytes(2, "big") + unsummed[8:]


def ipv6_packet(payload: bytes, next_header: int = NEXT_HEADER_ICMPV6, src: str | bytes = KERNEL_IP6,
                dst: str | bytes = HOST_IP6, hop_limit: int = 64, traffic_class: int = 0,
                flow_label: int = 0) -> bytes:
    """The 40-byte fixed header (RFC 8200 3) and ``payload`` (extension headers included)."""
    first_word = 6 << 28 | traffic_class << 20 | flow_label
    return (first_word.to_bytes(4, "big") + len(payload).to_bytes(2, "big") + bytes([next_header, hop_limit])
            + ip6(src) + ip6(dst) + payload)


def options_header(next_header: int, options: bytes) -> bytes:
    """A Hop-by-Hop or Destination Options header (RFC 8200 4.3, 4.6) holding ``options`` (type,
    length, data ...), padded with PadN/Pad1 to a multiple of 8 octets."""
    body = bytes([next_header, 0]) + options
    short = -len(body) % 8
    if short == 1:
        body += b"\x00"  # Pad1
    elif short:
        body += bytes([1, short - 2]) + bytes(short - 2)  # PadN
    return bytes([body[0], len(body) // 8 - 1]) + body[2:]


def routing_header(next_header: int, routing_type: int, segments_left: int, data: bytes = bytes(4)) -> bytes:
    """A Routing header (RFC 8200 4.4): ``data`` after the first 4 octets (a multiple of 8 in all)."""
    return bytes([next_header, (4 + len(data)) // 8 - 1, routing_type, segments_left]) + data


def fragment_header(next_header: int, offset_units: int, more: bool, identification: int) -> bytes:
    """A Fragment header (RFC 8200 4.5): offset in 8-octet units, the M flag, identification."""
    return bytes([next_header, 0]) + (offset_units << 3 | int(more)).to_bytes(2, "big") \
        + identification.to_bytes(4, "big")
