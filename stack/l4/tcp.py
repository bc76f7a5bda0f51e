"""TCP segments: the wire codec (RFC 9293 3.1; options RFC 9293 3.2, RFC 7323, RFC 2018).

Read first: RFC 9293 3.1 (the header), 3.2 (options), 3.4 (sequence space: SEG.LEN counts SYN
and FIN); RFC 7323 2 and 3 (window scale, timestamps); RFC 2018 2 and 3 (SACK).

     0                   1                   2                   3
     0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1
    +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
    |          Source Port          |       Destination Port        |
    +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
    |                        Sequence Number                        |
    +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
    |                    Acknowledgment Number                      |
    +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
    |  Data |       |C|E|U|A|P|R|S|F|                               |
    | Offset| Rsrvd |W|C|R|C|S|S|Y|I|            Window             |
    |       |       |R|E|G|K|H|T|N|N|                               |
    +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
    |           Checksum            |         Urgent Pointer        |
    +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
    |                           [Options]                           |
    +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
    |                             data                              |

The checksum covers a pseudo-header of the network layer around the segment (RFC 9293 3.1 for
IPv4, RFC 8200 8.1 for IPv6): ``parse`` and ``buffers`` take the two addresses, of either family,
and ``stack.l3.seam.transport_pseudo_header`` makes it. So TCP over IPv6 needs nothing here.

A segment is a frozen value; the checksum and the data offset are derived (verified by
``parse``, computed on output), never stored. Parsed, ``payload`` is a zero-copy view.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass, field
from enum import IntEnum, IntFlag
from ipaddress import IPv4Address, IPv6Address

from stack.buffers import Buffer, Frame, Payload, chunks, join, length
from stack.checksum import internet_checksum
from stack.errors import ParseError
from stack.l3.seam import IpProto, transport_pseudo_header

Address = IPv4Address | IPv6Address

HEADER = struct.Struct("!HHIIBBHHH")
HEADER_LENGTH = HEADER.size  # 20
#: The data offset is 4 bits of 32-bit words: at most 15 words, 40 bytes of options.
MAXIMUM_HEADER_LENGTH = 60
MAXIMUM_OPTIONS_LENGTH = MAXIMUM_HEADER_LENGTH - HEADER_LENGTH


class TcpFlags(IntFlag):
    """The control bits (RFC 9293 3.1; CWR and ECE from RFC 3168)."""

    FIN = 0x01
    SYN = 0x02
    RST = 0x04
    PSH = 0x08
    ACK = 0x10
    URG = 0x20
    ECE = 0x40
    CWR = 0x80


class TcpOptionKind(IntEnum):
    """Option kinds this codec reads (RFC 9293 3.2; RFC 7323; RFC 2018)."""

    END = 0
    NOP = 1
    MSS = 2
    WINDOW_SCALE = 3
    SACK_PERMITTED = 4
    SACK = 5
    TIMESTAMPS = 8


#: The length each known option must have (kind, length, data); SACK's is 2 + 8n.
_OPTION_LENGTHS = {TcpOptionKind.MSS: 4, TcpOptionKind.WINDOW_SCALE: 3,
                   TcpOptionKind.SACK_PERMITTED: 2, TcpOptionKind.TIMESTAMPS: 10}


@dataclass(frozen=True, slots=True)
class TcpOptions:
    """The options of one segment, read into fields.

    ``unknown`` keeps options of other kinds as (kind, data) in arrival order (RFC 9293 3.1:
    a TCP MUST ignore options it does not implement). ``malformed`` says the option list ended
    in an option whose length is impossible (0, 1, past the header, or wrong for its kind): what
    was read before it is kept and the rest ignored, as Linux does; RFC 9293 3.1 asks that such a
    segment not crash the receiver (the connection decides what more to do).
    """

    mss: int | None = None
    window_scale: int | None = None
    sack_permitted: bool = False
    #: (TSval, TSecr), RFC 7323 3.
    timestamps: tuple[int, int] | None = None
    #: SACK blocks (left edge, right edge), RFC 2018 3.
    sack_blocks: tuple[tuple[int, int], ...] = ()
    unknown: tuple[tuple[int, bytes], ...] = ()
    malformed: bool = False

    def __post_init__(self) -> None:
        if self.mss is not None and not 0 <= self.mss <= 0xFFFF:
            raise ValueError(f"MSS {self.mss} does not fit 16 bits")
        if self.window_scale is not None and not 0 <= self.window_scale <= 0xFF:
            raise ValueError(f"window scale {self.window_scale} does not fit 8 bits")
        if len(self.sack_blocks) > 4:
            raise ValueError(f"{len(self.sack_blocks)} SACK blocks > 4 (40 bytes of options)")
        if len(self.to_bytes()) > MAXIMUM_OPTIONS_LENGTH:
            raise ValueError(f"options of {len(self.to_bytes())} bytes > {MAXIMUM_OPTIONS_LENGTH}")

    @classmethod
    def parse(cls, data: Buffer) -> TcpOptions:
        """Read an option list (RFC 9293 3.1: kind, or kind, length, data). Never raises."""
        found: dict[str, object] = {}
        unknown: list[tuple[int, bytes]] = []
        malformed = False
        at, end = 0, len(data)
        while at < end:
            kind = data[at]
            if kind == TcpOptionKind.END:
                break  # RFC 9293 3.1: End of Option List; what follows is padding
            if kind == TcpOptionKind.NOP:
                at += 1
                continue
            if at + 1 >= end or data[at + 1] < 2 or at + data[at + 1] > end:
                malformed = True  # RFC 9293 3.1: an illegal option length must not crash us
                break
            size = data[at + 1]
            body = bytes(data[at + 2:at + size])
            expected = _OPTION_LENGTHS.get(kind)
            if (expected is not None and size != expected) or (
                    kind == TcpOptionKind.SACK and (size - 2) % 8):
                malformed = True
                break
            if kind == TcpOptionKind.MSS:
                found["mss"] = int.from_bytes(body, "big")
            elif kind == TcpOptionKind.WINDOW_SCALE:
                found["window_scale"] = body[0]
            elif kind == TcpOptionKind.SACK_PERMITTED:
                found["sack_permitted"] = True
            elif kind == TcpOptionKind.TIMESTAMPS:
                found["timestamps"] = (int.from_bytes(body[:4], "big"), int.from_bytes(body[4:], "big"))
            elif kind == TcpOptionKind.SACK:
                found["sack_blocks"] = tuple(
                    (int.from_bytes(body[i:i + 4], "big"), int.from_bytes(body[i + 4:i + 8], "big"))
                    for i in range(0, len(body), 8))
            else:
                unknown.append((kind, body))
            at += size
        return cls(malformed=malformed, unknown=tuple(unknown), **found)  # type: ignore[arg-type]

    def to_bytes(self) -> bytes:
        """The option list, padded with NOPs in front of the 4-byte aligned ones and with
        End of Option List to a multiple of 4 (RFC 9293 3.1: the header ends on a 32-bit
        boundary), in the order Linux sends them: MSS, SACK-permitted + timestamps, window scale."""
        out = bytearray()
        if self.mss is not None:
            out += struct.pack("!BBH", TcpOptionKind.MSS, 4, self.mss)
        if self.timestamps is not None:
            if self.sack_permitted:
                out += struct.pack("!BB", TcpOptionKind.SACK_PERMITTED, 2)
            else:
                out += struct.pack("!BB", TcpOptionKind.NOP, TcpOptionKind.NOP)
            out += struct.pack("!BBII", TcpOptionKind.TIMESTAMPS, 10, *self.timestamps)
        elif self.sack_permitted:
            out += struct.pack("!BBBB", TcpOptionKind.NOP, TcpOptionKind.NOP, TcpOptionKind.SACK_PERMITTED, 2)
        if self.window_scale is not None:
            out += struct.pack("!BBBB", TcpOptionKind.NOP, TcpOptionKind.WINDOW_SCALE, 3, self.window_scale)
        if self.sack_blocks:
            out += struct.pack("!BBBB", TcpOptionKind.NOP, TcpOptionKind.NOP, TcpOptionKind.SACK,
                               2 + 8 * len(self.sack_blocks))
            for left, right in self.sack_blocks:
                out += struct.pack("!II", left, right)
        for kind, body in self.unknown:
            out += bytes([kind, 2 + len(body)]) + body
        out += bytes(-len(out) % 4)  # End of Option List, then zero padding
        return bytes(out)


NO_OPTIONS = TcpOptions()


@dataclass(frozen=True, slots=True)
class TcpSegment:
    """One TCP segment. Building needs the addresses around it (the pseudo-header), so there is
    no ``__bytes__``: ``buffers(source, destination)`` and ``to_bytes(source, destination)``
    take them, as ``UdpDatagram`` does."""

    source_port: int
    destination_port: int
    sequence: int
    acknowledgment: int
    flags: TcpFlags
    window: int
    urgent_pointer: int = 0
    options: TcpOptions = NO_OPTIONS
    payload: Payload = field(default=b"", compare=False)

    def __post_init__(self) -> None:
        for name, bits in (("source_port", 16), ("destination_port", 16), ("sequence", 32),
                           ("acknowledgment", 32), ("window", 16), ("urgent_pointer", 16),
                           ("flags", 8)):
            value = getattr(self, name)
            if not 0 <= value < 1 << bits:
                raise ValueError(f"{name.replace('_', ' ')} {value} does not fit {bits} bits")

    @property
    def header_length(self) -> int:
        """Bytes of header: 20 and the options (the Data Offset field times 4)."""
        return HEADER_LENGTH + len(self.options.to_bytes())

    @property
    def data_length(self) -> int:
        """Bytes of data (the payload)."""
        return length(self.payload)

    @property
    def segment_length(self) -> int:
        """SEG.LEN (RFC 9293 3.4): the data, and one each for SYN and FIN."""
        return self.data_length + bool(self.flags & TcpFlags.SYN) + bool(self.flags & TcpFlags.FIN)

    def has(self, flag: TcpFlags) -> bool:
        return bool(self.flags & flag)

    @classmethod
    def parse(cls, data: Buffer, source: Address, destination: Address,
              verify_checksum: bool = True) -> TcpSegment:
        """Read the segment in a datagram from ``source`` to ``destination`` (either family).
        ``verify_checksum=False`` is for tools that show a damaged segment (trace, explain)."""
        size = len(data)
        if size < HEADER_LENGTH:
            raise ParseError("TCP", "truncated", "segment of %d bytes < header 20", size)
        (source_port, destination_port, sequence, acknowledgment, offset, flags, window,
         carried, urgent) = HEADER.unpack_from(data)
        header_length = (offset >> 4) * 4
        # RFC 9293 3.1: Data Offset counts 32-bit words of header, at least 5; it cannot run
        # past the segment.
        if header_length < HEADER_LENGTH:
            raise ParseError("TCP", "bad_header_length", "data offset %d words < 5", offset >> 4)
        if header_length > size:
            raise ParseError("TCP", "bad_header_length", "header of %d bytes > segment of %d",
                             header_length, size)
        view = memoryview(data)
        # RFC 9293 3.1 / RFC 1122 4.2.2.7: the checksum MUST be checked; a segment that fails
        # is discarded.
        if verify_checksum and internet_checksum(
                [transport_pseudo_header(source, destination, IpProto.TCP, size), view]):
            raise ParseError("TCP", "bad_checksum", "checksum %#06x does not verify", carried)
        options = TcpOptions.parse(view[HEADER_LENGTH:header_length]) if header_length > HEADER_LENGTH \
            else NO_OPTIONS
        # The 4 reserved bits are ignored (RFC 9293 3.1: must be zero, receivers ignore them).
        return cls(source_port, destination_port, sequence, acknowledgment, TcpFlags(flags), window,
                   urgent, options, view[header_length:])

    def header(self, source: Address, destination: Address) -> bytes:
        """The header with its options; the checksum covers the pseudo-header, the header and
        the payload (not copied)."""
        options = self.options.to_bytes()
        header_length = HEADER_LENGTH + len(options)
        unsummed = HEADER.pack(self.source_port, self.destination_port, self.sequence, self.acknowledgment,
                               header_length // 4 << 4, self.flags, self.window, 0,
                               self.urgent_pointer) + options
        pseudo = transport_pseudo_header(source, destination, IpProto.TCP, header_length + self.data_length)
        value = internet_checksum([pseudo, unsummed, *chunks(self.payload)])
        return unsummed[:16] + value.to_bytes(2, "big") + unsummed[18:]

    def buffers(self, source: Address, destination: Address) -> Frame:
        """The segment as buffers: the header, then the payload chunks as they are."""
        return [self.header(source, destination), *chunks(self.payload)]

    def to_bytes(self, source: Address, destination: Address) -> bytes:
        return join(self.buffers(source, destination))

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, TcpSegment):
            return NotImplemented
        return (self.source_port == other.source_port and self.destination_port == other.destination_port
                and self.sequence == other.sequence and self.acknowledgment == other.acknowledgment
                and self.flags == other.flags and self.window == other.window
                and self.urgent_pointer == other.urgent_pointer and self.options == other.options
                and join(self.payload) == join(other.payload))

    __hash__ = None  # type: ignore[assignment]

    def __repr__(self) -> str:
        names = "|".join(flag.name for flag in TcpFlags if self.flags & flag) or "none"
        return (f"TcpSegment({self.source_port}->{self.destination_port} {names} seq={self.sequence} "
                f"ack={self.acknowledgment} win={self.window} len={self.data_length})")


def reset_for(segment: TcpSegment) -> TcpSegment | None:
    """The RST that answers ``segment`` where no connection exists (RFC 9293 3.10.7.1, CLOSED),
    or None for a RST (an incoming RST is discarded, never answered).

    RFC 9293 3.10.7.1: if the ACK bit is off, sequence number zero is used,
    <SEQ=0><ACK=SEG.SEQ+SEG.LEN><CTL=RST,ACK>; if the ACK bit is on, <SEQ=SEG.ACK><CTL=RST>.
    """
    if segment.flags & TcpFlags.RST:
        return None  # RFC 9293 3.10.7.1: an incoming segment containing a RST is discarded
    if segment.flags & TcpFlags.ACK:
        return TcpSegment(segment.destination_port, segment.source_port, segment.acknowledgment, 0,
                          TcpFlags.RST, 0)
    return TcpSegment(segment.destination_port, segment.source_port, 0,
                      (segment.sequence + segment.segment_length) & 0xFFFFFFFF,
                      TcpFlags.RST | TcpFlags.ACK, 0)
