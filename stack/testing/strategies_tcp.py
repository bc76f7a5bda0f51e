"""Hypothesis strategies for TCP segments (issue 16): valid ones, every flag combination, broken
options, out-of-window-ish numbers, over IPv4 or IPv6, in an Ethernet frame or bare.

Read first: RFC 9293 3.1 (the header), 3.2 (options), 3.4 (sequence numbers), 3.10.7.1 (what a
closed port answers); RFC 7323 (window scale, timestamps); RFC 2018 (SACK).

Re-exported by ``stack.testing.strategies`` (its ``__all__``). Two kinds, as there:

- *values*: ``tcp_flags``, ``tcp_option_values``, ``tcp_segment_values`` (``TcpSegment``);
- *wire bytes*: ``tcp_options`` (an option list, malformed ones included), ``tcp_segments`` (a
  segment in an IPv4 or IPv6 packet, in a ``medium``: ``"ethernet"`` a frame, ``"ip"`` a bare
  packet), and the mutator ``broken_tcp``, which breaks exactly one thing of a segment and says
  which drop reason a tapstack host counts for it.

A segment's options are raw bytes here (a ``TcpSegment`` holds only well-formed ones), so a
malformed option list reaches the receiver as it would from the wire. Everything shrinks to a
SYN from port 1 to port 1 with sequence number 0, no options and no data.
"""

from __future__ import annotations

from ipaddress import IPv4Address, IPv6Address
from typing import Any, Literal

from hypothesis import strategies as st
from hypothesis.strategies import SearchStrategy

from stack.checksum import internet_checksum
from stack.l2.ethernet import EtherType, EthernetFrame, MacAddress
from stack.l2.ipv6_multicast import ipv6_multicast_mac
from stack.l3.ipv4 import IpProto, Ipv4Packet
from stack.l3.ipv6 import Ipv6Packet
from stack.l3.seam import transport_pseudo_header
from stack.l4.tcp import HEADER, MAXIMUM_OPTIONS_LENGTH, TcpFlags, TcpOptionKind, TcpOptions, TcpSegment

__all__ = ["TCP_BREAKAGES", "broken_tcp", "tcp_flags", "tcp_option_values", "tcp_options",
           "tcp_segment_values", "tcp_segments", "tcp_sequence_numbers"]

#: What ``broken_tcp`` breaks, each exactly one thing, with the drop reason a host counts.
TCP_BREAKAGES = {"checksum": "tcp_bad_checksum", "data_offset_short": "tcp_bad_header_length",
                 "data_offset_long": "tcp_bad_header_length", "truncate": "tcp_truncated"}

#: The flag combinations a scanner or a TCP sends most (RFC 9293 3.1; nmap's scans), first.
COMMON_FLAGS = (TcpFlags.SYN, TcpFlags.ACK, TcpFlags.SYN | TcpFlags.ACK, TcpFlags.RST,
                TcpFlags.RST | TcpFlags.ACK, TcpFlags.FIN | TcpFlags.ACK, TcpFlags.PSH | TcpFlags.ACK,
                TcpFlags(0), TcpFlags.FIN, TcpFlags.FIN | TcpFlags.PSH | TcpFlags.URG,
                TcpFlags.SYN | TcpFlags.ECE | TcpFlags.CWR)


def tcp_flags() -> SearchStrategy[TcpFlags]:
    """Any of the 256 combinations of the 8 control bits, the common ones first (shrinks to SYN)."""
    return st.one_of(st.sampled_from(COMMON_FLAGS), st.integers(0, 0xFF).map(TcpFlags))


def tcp_sequence_numbers() -> SearchStrategy[int]:
    """32-bit sequence or acknowledgment numbers, the edges of the space first (0, the top, the
    halfway point where RFC 9293 3.4's modulo comparisons turn), then any."""
    return st.one_of(st.sampled_from([0, 1, 2**32 - 1, 2**31 - 1, 2**31, 2**31 + 1]), st.integers(0, 2**32 - 1))


def tcp_option_values() -> SearchStrategy[TcpOptions]:
    """Well-formed options as ``TcpOptions`` (what a SYN from Linux carries, and parts of it)."""
    return st.builds(
        TcpOptions,
        mss=st.none() | st.sampled_from([1460, 536, 1440]) | st.integers(0, 0xFFFF),
        window_scale=st.none() | st.integers(0, 14) | st.integers(0, 255),
        sack_permitted=st.booleans(),
        timestamps=st.none() | st.tuples(tcp_sequence_numbers(), tcp_sequence_numbers()),
    )


#: Option lists that are wrong in one way each (RFC 9293 3.1: they must not crash a receiver).
_MALFORMED_OPTIONS = (
    bytes([TcpOptionKind.MSS, 0]),  # length 0
    bytes([TcpOptionKind.MSS, 1]),  # length 1: shorter than kind and length
    bytes([TcpOptionKind.MSS, 9, 5, 0xB4]),  # runs past the option list
    bytes([TcpOptionKind.MSS, 3, 5]),  # the wrong length for MSS (4)
    bytes([TcpOptionKind.WINDOW_SCALE, 4, 7, 0]),  # the wrong length for window scale (3)
    bytes([TcpOptionKind.TIMESTAMPS, 6, 0, 0, 0, 1]),  # the wrong length for timestamps (10)
    bytes([TcpOptionKind.SACK, 7, 0, 0, 0, 1, 0]),  # SACK not 2 + 8n
    bytes([TcpOptionKind.MSS]),  # a kind and no length
)


@st.composite
def tcp_options(draw: st.DrawFn, malformed: bool | None = None) -> bytes:
    """An option list as bytes, padded to a multiple of 4 (at most 40): well-formed options,
    unknown kinds, NOPs, or (with ``malformed`` True, or one time in four when None) one of the
    malformed lists a receiver must survive (zero or one length, past the end, the wrong length
    for its kind). Shrinks to no options."""
    kind = draw(st.sampled_from(["none", "valid", "unknown", "malformed"]) if malformed is None
                else st.just("malformed" if malformed else "valid"))
    if kind == "none":
        return b""
    if kind == "valid":
        return draw(tcp_option_values()).to_bytes()
    if kind == "unknown":
        code = draw(st.sampled_from([253, 254, 30, 34]) | st.integers(9, 255))
        data = draw(st.binary(max_size=8))
        raw = bytes([TcpOptionKind.NOP, code, 2 + len(data)]) + data
    else:
        prefix = draw(st.sampled_from([b"", bytes([TcpOptionKind.NOP]), bytes([2, 4, 5, 0xB4])]))
        raw = prefix + draw(st.sampled_from(_MALFORMED_OPTIONS))
    raw += bytes(-len(raw) % 4)
    return raw[:MAXIMUM_OPTIONS_LENGTH]


def tcp_segment_values(flags: Any = None, options: Any = None) -> SearchStrategy[TcpSegment]:
    """``TcpSegment`` values: any ports, numbers, flags (``tcp_flags``), window, urgent pointer,
    well-formed options and a short payload."""
    return st.builds(
        TcpSegment,
        source_port=st.integers(1, 0xFFFF) | st.just(0),
        destination_port=st.sampled_from([80, 22, 443]) | st.integers(0, 0xFFFF),
        sequence=tcp_sequence_numbers(), acknowledgment=tcp_sequence_numbers(),
        flags=flags if flags is not None else tcp_flags(), window=st.integers(0, 0xFFFF),
        urgent_pointer=st.just(0) | st.integers(0, 0xFFFF),
        options=options if options is not None else tcp_option_values(),
        payload=st.binary(max_size=64))


def _segment_bytes(source: IPv4Address | IPv6Address, destination: IPv4Address | IPv6Address,
                   ports: tuple[int, int], sequence: int, acknowledgment: int, flags: int, window: int,
                   urgent: int, options: bytes, data: bytes) -> bytes:
    """A TCP segment with raw option bytes; its checksum over the family's pseudo-header."""
    header_length = 20 + len(options)
    unsummed = HEADER.pack(*ports, sequence, acknowledgment, header_length // 4 << 4, flags, window, 0,
                           urgent) + options
    pseudo = transport_pseudo_header(source, destination, IpProto.TCP, header_length + len(data))
    value = internet_checksum([pseudo, unsummed, data])
    return unsummed[:16] + value.to_bytes(2, "big") + unsummed[18:] + data


def _value(value: Any, default: SearchStrategy[Any]) -> SearchStrategy[Any]:
    if value is None:
        return default
    return value if isinstance(value, SearchStrategy) else st.just(value)


def _link_destination(destination: IPv4Address | IPv6Address, unicast: MacAddress) -> MacAddress:
    """The MAC a packet to ``destination`` goes to: a group's own (RFC 1112 6.4, RFC 2464 7),
    broadcast for an IPv4 broadcast address, else the host's."""
    if isinstance(destination, IPv6Address):
        return MacAddress(ipv6_multicast_mac(destination.packed)) if destination.is_multicast else unicast
    if destination.is_multicast:
        return MacAddress(bytes([1, 0, 0x5E, destination.packed[1] & 0x7F]) + destination.packed[2:])
    if int(destination) & 0xFF == 0xFF:
        return MacAddress(b"\xff" * 6)
    return unicast


def tcp_segments(*, source: Any = None, destination: Any = None, source_mac: Any = None,
                 destination_mac: Any = None, family: Literal[4, 6] = 4,
                 medium: Literal["ethernet", "ip"] = "ethernet", flags: Any = None,
                 destination_port: Any = None, options: Any = None) -> SearchStrategy[bytes]:
    """TCP segments as wire bytes: in an IPv4 (``family`` 4) or IPv6 packet from ``source`` to
    ``destination`` (defaults: 192.0.2.1 / 2001:db8::1 to 192.0.2.2 / 2001:db8::2), in an
    Ethernet frame (``medium="ethernet"``; to ``destination_mac``, or the group's or broadcast
    MAC for such a destination) or bare (``"ip"``). Any flags (``tcp_flags``), sequence and
    acknowledgment numbers at the edges of the space and anywhere (``tcp_sequence_numbers``),
    windows, urgent pointers, options (``tcp_options``: unknown and malformed ones too) and up to
    64 bytes of data; the checksum correct (``broken_tcp`` breaks it). The IP header's TTL / hop
    limit and TOS / traffic class vary too."""
    if medium not in ("ethernet", "ip"):
        raise ValueError(f"medium is 'ethernet' or 'ip', not {medium!r}")
    if family not in (4, 6):
        raise ValueError(f"family is 4 or 6, not {family!r}")
    address = IPv4Address if family == 4 else IPv6Address
    sources = _value(source, st.just(address("192.0.2.1" if family == 4 else "2001:db8::1")))
    destinations = _value(destination, st.just(address("192.0.2.2" if family == 4 else "2001:db8::2")))
    source_macs = _value(source_mac, st.just(MacAddress("02:00:00:00:00:01")))
    destination_macs = _value(destination_mac, st.just(MacAddress("02:00:00:00:00:02")))

    @st.composite
    def segments(draw: st.DrawFn) -> bytes:
        src, dst = address(draw(sources)), address(draw(destinations))
        ports = (draw(st.integers(1, 0xFFFF) | st.just(0)),
                 draw(_value(destination_port, st.sampled_from([80, 22, 443, 1]) | st.integers(0, 0xFFFF))))
        segment = _segment_bytes(src, dst, ports, draw(tcp_sequence_numbers()), draw(tcp_sequence_numbers()),
                                 int(draw(_value(flags, tcp_flags()))),
                                 draw(st.sampled_from([64240, 0, 512]) | st.integers(0, 0xFFFF)),
                                 draw(st.just(0) | st.integers(0, 0xFFFF)),
                                 draw(_value(options, tcp_options())), draw(st.binary(max_size=64)))
        tos = draw(st.sampled_from([0, 0, 0x10, 0xB8, 0x03]) | st.integers(0, 255))
        hops = draw(st.sampled_from([64, 1, 255]) | st.integers(1, 255))
        if family == 4:
            packet = bytes(Ipv4Packet(src, dst, IpProto.TCP, segment, ttl=hops, type_of_service=tos,
                                      identification=draw(st.integers(0, 0xFFFF)),
                                      dont_fragment=draw(st.booleans())))
            ethertype = EtherType.IPV4
        else:
            packet = bytes(Ipv6Packet(src, dst, IpProto.TCP, segment, hops, tos,
                                      draw(st.sampled_from([0, 0x12345]) | st.integers(0, 0xFFFFF))))
            ethertype = EtherType.IPV6
        if medium == "ip":
            return packet
        link = _link_destination(dst, MacAddress(draw(destination_macs)))
        return bytes(EthernetFrame(link, MacAddress(draw(source_macs)), ethertype, packet))

    return segments()


def _tcp_offset(data: bytes, medium: str) -> int:
    """Where the TCP segment starts in a frame or packet from ``tcp_segments``."""
    start = 14 if medium == "ethernet" else 0
    return start + (data[start] & 0x0F) * 4 if data[start] >> 4 == 4 else start + 40


def _fix_lengths(data: bytearray, medium: str, cut: int) -> None:
    """After ``cut`` bytes were removed from the end: the IP length fields (and IPv4's
    checksum) say the shorter size, so only TCP sees the change."""
    start = 14 if medium == "ethernet" else 0
    if data[start] >> 4 == 4:
        total = int.from_bytes(data[start + 2:start + 4], "big") - cut
        data[start + 2:start + 4] = total.to_bytes(2, "big")
        header_length = (data[start] & 0x0F) * 4
        data[start + 10:start + 12] = b"\0\0"
        data[start + 10:start + 12] = internet_checksum(bytes(data[start:start + header_length])).to_bytes(2, "big")
    else:
        payload = int.from_bytes(data[start + 4:start + 6], "big") - cut
        data[start + 4:start + 6] = payload.to_bytes(2, "big")


def broken_tcp(segments: SearchStrategy[bytes], medium: Literal["ethernet", "ip"] = "ethernet",
               kinds: Any = None) -> SearchStrategy[tuple[str, bytes]]:
    """Each segment from ``segments`` (``tcp_segments`` output, no IP options) with exactly one
    thing broken, as (kind, bytes); ``TCP_BREAKAGES[kind]`` is the drop reason a host counts:
    ``checksum`` (one bit of the checksum: RFC 1071 sees every single-bit error), a data offset
    below 5 words (``data_offset_short``) or past the segment (``data_offset_long``), or the
    segment cut below its 20-byte header (``truncate``, the IP length fixed up)."""
    chosen = tuple(kinds) if kinds is not None else tuple(TCP_BREAKAGES)
    unknown = set(chosen) - set(TCP_BREAKAGES)
    if unknown:
        raise ValueError(f"unknown breakages {sorted(unknown)}; known: {', '.join(TCP_BREAKAGES)}")

    @st.composite
    def broken(draw: st.DrawFn) -> tuple[str, bytes]:
        data = bytearray(draw(segments))
        at = _tcp_offset(bytes(data), medium)
        kind = draw(st.sampled_from(chosen))
        if kind == "checksum":
            data[at + 16 + draw(st.integers(0, 1))] ^= 1 << draw(st.integers(0, 7))
        elif kind == "data_offset_short":
            data[at + 12] = draw(st.integers(0, 4)) << 4 | data[at + 12] & 0x0F
        elif kind == "data_offset_long":
            size = _ip_end(data, medium) - at
            words = draw(st.integers(min(15, size // 4 + 1), 15)) if size < 60 else None
            if words is None:
                data = data[:_ip_end(data, medium)]
                cut = size - 56  # leave 56 bytes: a data offset of 15 words (60) runs past them
                del data[at + 56:]
                _fix_lengths(data, medium, cut)
                words = 15
            data[at + 12] = words << 4 | data[at + 12] & 0x0F
        else:
            end = _ip_end(data, medium)
            keep = draw(st.integers(0, 19))
            cut = end - at - keep
            del data[at + keep:]
            _fix_lengths(data, medium, cut)
        return kind, bytes(data)

    return broken()


def _ip_end(data: bytearray, medium: str) -> int:
    """Where the IP packet ends (Ethernet padding after it is not the segment's)."""
    start = 14 if medium == "ethernet" else 0
    if data[start] >> 4 == 4:
        return start + int.from_bytes(data[start + 2:start + 4], "big")
    return start + 40 + int.from_bytes(data[start + 4:start + 6], "big")
