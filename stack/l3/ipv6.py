"""IPv6 packets (RFC 8200 3), their extension headers (RFC 8200 4) and addresses (RFC 4291).

     0                   1                   2                   3
     0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1
    +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
    |Version| Traffic Class |           Flow Label                  |
    +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
    |         Payload Length        |  Next Header  |   Hop Limit   |
    +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
    |                                                               |
    +                  Source Address (128 bits)                    +
    |                                                               |
    +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
    |                                                               |
    +               Destination Address (128 bits)                  +
    |                                                               |
    +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+

Extension headers (RFC 8200 4) sit between this header and the upper-layer header, each
naming the next. ``Ipv6Packet.parse`` reads the fixed header only; ``walk_chain`` then walks the
extension headers (integrity only: the host decides what to do with each).
"""

from __future__ import annotations

import struct
from dataclasses import dataclass, field
from enum import IntEnum
from ipaddress import IPv6Address, IPv6Network

from stack.buffers import Buffer, Frame, Payload, chunks, join, length
from stack.errors import ParseError

HEADER = struct.Struct("!IHBB16s16s")  # version/class/flow, payload length, next header, hop limit
HEADER_LENGTH = HEADER.size  # 40
MAXIMUM_PAYLOAD_LENGTH = 0xFFFF  # RFC 2675 jumbograms are not supported
MINIMUM_MTU = 1280  # RFC 8200 5: every link carries packets of 1280 octets
DEFAULT_HOP_LIMIT = 64  # Linux net.ipv6.conf.*.hop_limit; RFC 4861 6.3.2 lets a router advertise another
PAYLOAD_LENGTH_OFFSET = 4  # where a Parameter Problem points for a bad fragment length (RFC 8200 4.5)
NEXT_HEADER_OFFSET = 6  # the fixed header's Next Header field
#: How many extension headers ``walk_chain`` follows. RFC 8200 4.1 asks nodes to accept any
#: number; we deliberately bound the walk (RFC 8883 1: a node may discard packets whose headers
#: exceed its processing limits) at twice the eight headers of RFC 8200 4.1's recommended order.
MAXIMUM_EXTENSION_HEADERS = 16
#: The upper-layer headers a first fragment must hold whole (RFC 7112 5, RFC 8200 4.5): ICMPv6's
#: 8 bytes (RFC 4443 2.1), UDP's 8 (RFC 768), TCP's 20 (RFC 9293 3.1). Other upper layers'
#: headers are unknown here: nothing is asked of them.
UPPER_LAYER_HEADER_LENGTHS = {58: 8, 17: 8, 6: 20}

PSEUDO_HEADER = struct.Struct("!16s16sI3xB")
FRAGMENT = struct.Struct("!BBHI")  # next header, reserved, offset|res|M, identification
FRAGMENT_HEADER_LENGTH = FRAGMENT.size  # 8
FRAGMENT_OFFSET_SHIFT = 3
FLAG_MORE_FRAGMENTS = 0x0001


class NextHeader(IntEnum):
    """Next Header values we know by name (IANA "Assigned Internet Protocol Numbers").
    Wire fields stay ``int``."""

    HOP_BY_HOP = 0
    TCP = 6
    UDP = 17
    ROUTING = 43
    FRAGMENT = 44
    ESP = 50
    AUTHENTICATION = 51
    ICMPV6 = 58
    NO_NEXT_HEADER = 59
    DESTINATION_OPTIONS = 60


#: The extension headers ``walk_chain`` steps over. Any other value ends the walk and is the
#: upper layer: the host answers an unknown one with Parameter Problem code 1 (RFC 8200 4).
#: AH and ESP (RFC 4302, RFC 4303) are not implemented, so to us they are upper layers too.
EXTENSION_HEADERS = frozenset({NextHeader.HOP_BY_HOP, NextHeader.ROUTING, NextHeader.FRAGMENT,
                               NextHeader.DESTINATION_OPTIONS})


class OptionAction(IntEnum):
    """RFC 8200 4.2: the two high-order bits of an option type say what a node that does not
    recognise the option must do."""

    SKIP = 0  # 00: skip over this option and continue processing the header
    DISCARD = 1  # 01: discard the packet
    DISCARD_AND_REPORT = 2  # 10: discard, send Parameter Problem code 2 pointing at the type
    DISCARD_AND_REPORT_UNLESS_MULTICAST = 3  # 11: the same, only if the destination is not multicast


class OptionType(IntEnum):
    PAD1 = 0  # RFC 8200 4.2: one octet of padding, no length or data
    PADN = 1  # RFC 8200 4.2: two or more octets of padding


class ParameterProblemCode(IntEnum):
    """RFC 4443 3.4 (and RFC 7112 for code 3)."""

    ERRONEOUS_HEADER_FIELD = 0
    UNRECOGNIZED_NEXT_HEADER = 1
    UNRECOGNIZED_OPTION = 2
    INCOMPLETE_HEADER_CHAIN = 3


class Ipv6ParseError(ParseError):
    """A ParseError that also carries what an ICMPv6 Parameter Problem about it needs.

    ``pointer`` is the octet offset in the invoking packet (RFC 4443 3.4) of the field at
    fault; ``code`` is the Parameter Problem code the RFC asks for, or None when the packet is
    to be discarded silently (the pointer then only helps ``explain``).
    """

    def __init__(self, layer: str, reason: str, detail: str, pointer: int | None = None,
                 code: int | None = None) -> None:
        super().__init__(layer, reason, detail)
        self.pointer = pointer
        self.code = code
        #: The extension headers ``walk_chain`` read before the one at fault (RFC 8200 4: they
        #: are processed, in order, before it).
        self.before: tuple[ExtensionHeader, ...] = ()


# ----------------------------------------------------------------------------- the fixed header


@dataclass(frozen=True, slots=True)
class Ipv6Packet:
    """An IPv6 packet. ``payload`` is everything after the fixed header: the extension headers
    (if ``next_header`` names one) and the upper-layer data. The payload length is derived.

    Parsed, ``payload`` is a zero-copy view trimmed to the payload length (anything after it
    is link-layer padding, RFC 2464 / RFC 894).
    """

    source: IPv6Address
    destination: IPv6Address
    next_header: int
    payload: Payload = field(default=b"", compare=False)
    hop_limit: int = DEFAULT_HOP_LIMIT
    traffic_class: int = 0
    flow_label: int = 0

    def __post_init__(self) -> None:
        if not isinstance(self.source, IPv6Address):
            object.__setattr__(self, "source", IPv6Address(self.source))
        if not isinstance(self.destination, IPv6Address):
            object.__setattr__(self, "destination", IPv6Address(self.destination))
        for name, bits in (("next_header", 8), ("hop_limit", 8), ("traffic_class", 8), ("flow_label", 20)):
            if not 0 <= getattr(self, name) < 1 << bits:
                raise ValueError(f"{name.replace('_', ' ')} {getattr(self, name)} does not fit {bits} bits")
        if self.payload_length > MAXIMUM_PAYLOAD_LENGTH:
            raise ValueError(f"payload of {self.payload_length} bytes > {MAXIMUM_PAYLOAD_LENGTH} (no jumbograms)")

    @property
    def payload_length(self) -> int:
        return length(self.payload)

    @classmethod
    def parse(cls, data: Buffer) -> Ipv6Packet:
        """Read the fixed header; the extension headers are ``walk_chain``'s."""
        size = len(data)
        if size < HEADER_LENGTH:
            raise ParseError("IPv6", "truncated", f"packet of {size} bytes < header {HEADER_LENGTH}")
        first_word, payload_length, next_header, hop_limit, source, destination = HEADER.unpack_from(data)
        version = first_word >> 28
        # RFC 8200 3: Version is 6 (RFC 2464 and the TUN framing carry IPv4 and IPv6 apart).
        if version != 6:
            raise ParseError("IPv6", "bad_version", f"version {version} != 6")
        # RFC 8200 3: Payload Length counts the octets after this header; more than the buffer
        # holds is a truncated packet. A zero length would mean a jumbogram only with a
        # Jumbo Payload option (RFC 2675), which we do not support: it is an empty payload.
        if HEADER_LENGTH + payload_length > size:
            raise ParseError("IPv6", "truncated",
                             f"payload length {payload_length} > buffer {size - HEADER_LENGTH}")
        view = memoryview(data)
        # RFC 8200 3: the hop limit is not checked on delivery (only a forwarding node does).
        return cls(
            IPv6Address(source),
            IPv6Address(destination),
            next_header,
            view[HEADER_LENGTH:HEADER_LENGTH + payload_length],  # the rest is link padding
            hop_limit,
            (first_word >> 20) & 0xFF,
            first_word & 0xFFFFF,
        )

    def chain(self) -> HeaderChain:
        """This packet's extension headers, walked (``walk_chain``)."""
        return walk_chain(self.next_header, self.payload if isinstance(self.payload, (bytes, bytearray, memoryview))
                          else join(self.payload))

    def header(self) -> bytes:
        return header_bytes(self.source, self.destination, self.next_header, self.payload_length,
                            self.hop_limit, self.traffic_class, self.flow_label)

    def buffers(self) -> Frame:
        """The packet as buffers: the header, then the payload chunks as they are."""
        return [self.header(), *chunks(self.payload)]

    def __bytes__(self) -> bytes:
        return join(self.buffers())

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Ipv6Packet):
            return NotImplemented
        return all(getattr(self, name) == getattr(other, name) for name in _COMPARED) and join(
            self.payload) == join(other.payload)

    __hash__ = None  # type: ignore[assignment]


_COMPARED = ("source", "destination", "next_header", "hop_limit", "traffic_class", "flow_label")


def header_bytes(source: IPv6Address, destination: IPv6Address, next_header: int, payload_length: int,
                 hop_limit: int = DEFAULT_HOP_LIMIT, traffic_class: int = 0, flow_label: int = 0) -> bytes:
    """The 40-byte fixed header for a payload of ``payload_length`` bytes (the send path calls
    this directly; the payload stays a list of buffers). IPv6 has no header checksum (RFC 8200 3)."""
    if payload_length > MAXIMUM_PAYLOAD_LENGTH:
        raise ValueError(f"payload of {payload_length} bytes > {MAXIMUM_PAYLOAD_LENGTH} (no jumbograms)")
    first_word = 6 << 28 | traffic_class << 20 | flow_label
    return HEADER.pack(first_word, payload_length, next_header, hop_limit, source.packed, destination.packed)


def pseudo_header(source: IPv6Address, destination: IPv6Address, upper_layer_length: int, next_header: int) -> bytes:
    """The 40 bytes an upper-layer checksum covers in front of its message (RFC 8200 8.1).

        +  Source Address (16)  +  Destination Address (16)  +
        |                Upper-Layer Packet Length (32)             |
        |                  zero (24)                  | Next Header |

    RFC 8200 8.1: with a Routing header, the destination is the final one (the last address of
    the routing header at the source, the packet's destination at the receiver); the caller
    passes it. The Next Header is the upper layer's (58 for ICMPv6), not the first header's.
    """
    return PSEUDO_HEADER.pack(source.packed, destination.packed, upper_layer_length, next_header)


# ----------------------------------------------------------------------------- options (RFC 8200 4.2)


@dataclass(frozen=True, slots=True)
class Ipv6Option:
    """One TLV-encoded option of a Hop-by-Hop or Destination Options header (RFC 8200 4.2).

         +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+- - - - - - - - -
         |  Option Type  |  Opt Data Len |  Option Data
         +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+- - - - - - - - -

    Pad1 is the single octet 0, with no length or data. ``offset`` is where the option type is
    in the packet (the pointer of a Parameter Problem code 2); it is not compared.
    """

    type: int
    data: bytes = b""
    offset: int = field(default=0, compare=False)

    def __post_init__(self) -> None:
        if not 0 <= self.type <= 255:
            raise ValueError(f"option type {self.type} does not fit 8 bits")
        if self.type == OptionType.PAD1 and self.data:
            raise ValueError("Pad1 has no data (RFC 8200 4.2)")
        if len(self.data) > 255:
            raise ValueError(f"option data of {len(self.data)} bytes > 255")

    @property
    def action(self) -> OptionAction:
        """What to do if the option is not recognised (RFC 8200 4.2, the two high-order bits)."""
        return OptionAction(self.type >> 6)

    @property
    def may_change(self) -> bool:
        """RFC 8200 4.2: the third-highest bit: the option data may change en route."""
        return bool(self.type & 0x20)

    @property
    def is_padding(self) -> bool:
        return self.type in (OptionType.PAD1, OptionType.PADN)

    def __bytes__(self) -> bytes:
        if self.type == OptionType.PAD1:
            return b"\x00"
        return bytes((self.type, len(self.data))) + self.data


def padding(size: int) -> list[Ipv6Option]:
    """``size`` octets of padding: nothing, Pad1, or one PadN of zeros (RFC 8200 4.2)."""
    if size == 0:
        return []
    if size == 1:
        return [Ipv6Option(OptionType.PAD1)]
    return [Ipv6Option(OptionType.PADN, bytes(size - 2))]


def parse_options(data: Buffer, offset: int) -> tuple[Ipv6Option, ...]:
    """The options in an options header's option area; ``offset`` is where ``data`` starts in
    the packet. An option running past the area is a ParseError pointing at its type."""
    found: list[Ipv6Option] = []
    index = 0
    size = len(data)
    while index < size:
        kind = data[index]
        if kind == OptionType.PAD1:
            found.append(Ipv6Option(kind, b"", offset + index))
            index += 1
            continue
        if index + 2 > size or index + 2 + data[index + 1] > size:
            raise Ipv6ParseError("IPv6", "bad_option", f"option {kind} at offset {offset + index} runs past its header",
                                 pointer=offset + index)
        option_length = data[index + 1]
        found.append(Ipv6Option(kind, bytes(data[index + 2:index + 2 + option_length]), offset + index))
        index += 2 + option_length
    return tuple(found)


# ----------------------------------------------------------------------------- extension headers


@dataclass(frozen=True, slots=True)
class OptionsHeader:
    """A Hop-by-Hop Options (RFC 8200 4.3) or Destination Options (4.6) header.

         +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
         |  Next Header  |  Hdr Ext Len  |                               |
         +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+                               +
         .                            Options                            .
         +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+

    Hdr Ext Len is in 8-octet units, not counting the first 8. ``options`` keep their padding,
    so parsing gives back exactly what was sent; ``padded`` adds the padding for you.
    """

    next_header: int
    options: tuple[Ipv6Option, ...] = ()

    def __post_init__(self) -> None:
        object.__setattr__(self, "options", tuple(self.options))
        size = 2 + sum(len(bytes(option)) for option in self.options)
        # RFC 8200 4.3, 4.6: the header is a multiple of 8 octets long, at most 2048.
        if size % 8 or size > 2048:
            raise ValueError(f"options header of {size} bytes is not a multiple of 8 up to 2048 (use padded())")

    @classmethod
    def padded(cls, next_header: int, options: list[Ipv6Option] | tuple[Ipv6Option, ...] = ()) -> OptionsHeader:
        """The header with padding after ``options`` to a multiple of 8 octets (RFC 8200 4.2)."""
        size = 2 + sum(len(bytes(option)) for option in options)
        return cls(next_header, (*options, *padding(-size % 8)))

    def __bytes__(self) -> bytes:
        body = b"".join(bytes(option) for option in self.options)
        return bytes((self.next_header, (2 + len(body)) // 8 - 1)) + body


@dataclass(frozen=True, slots=True)
class RoutingHeader:
    """A Routing header (RFC 8200 4.4).

         +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
         |  Next Header  |  Hdr Ext Len  |  Routing Type | Segments Left |
         +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
         .                       type-specific data                      .
         +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+

    A host implements no routing type. RFC 8200 4.4: an unrecognised type with Segments Left 0
    is ignored; otherwise the packet is discarded with Parameter Problem code 0 pointing at the
    Routing Type. RFC 5095 3: type 0 (RH0) MUST be treated as unrecognised. The host applies
    this; ``RoutingHeader`` only reads it.
    """

    next_header: int
    routing_type: int
    segments_left: int
    data: bytes = bytes(4)

    def __post_init__(self) -> None:
        for name in ("next_header", "routing_type", "segments_left"):
            if not 0 <= getattr(self, name) <= 255:
                raise ValueError(f"{name.replace('_', ' ')} {getattr(self, name)} does not fit 8 bits")
        if (4 + len(self.data)) % 8 or 4 + len(self.data) > 2048:
            raise ValueError(f"routing header of {4 + len(self.data)} bytes is not a multiple of 8 up to 2048")

    @property
    def is_type_0(self) -> bool:
        """RH0, deprecated by RFC 5095."""
        return self.routing_type == 0

    def __bytes__(self) -> bytes:
        return bytes((self.next_header, (4 + len(self.data)) // 8 - 1, self.routing_type,
                      self.segments_left)) + self.data


@dataclass(frozen=True, slots=True)
class FragmentHeader:
    """A Fragment header (RFC 8200 4.5).

         +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
         |  Next Header  |   Reserved    |      Fragment Offset    |Res|M|
         +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
         |                         Identification                        |
         +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+

    ``fragment_offset`` is in 8-octet units, as on the wire. The reserved fields are sent as
    zero and ignored on reception (RFC 8200 4.5).
    """

    next_header: int
    fragment_offset: int
    more_fragments: bool
    identification: int

    def __post_init__(self) -> None:
        if not 0 <= self.next_header <= 255:
            raise ValueError(f"next header {self.next_header} does not fit 8 bits")
        if not 0 <= self.fragment_offset <= 0x1FFF:
            raise ValueError(f"fragment offset {self.fragment_offset} does not fit 13 bits")
        if not 0 <= self.identification <= 0xFFFFFFFF:
            raise ValueError(f"identification {self.identification} does not fit 32 bits")

    @property
    def is_atomic(self) -> bool:
        """RFC 6946: offset 0 and no more fragments: a whole packet in a Fragment header, to be
        processed at once, apart from any reassembly of the same identification."""
        return self.fragment_offset == 0 and not self.more_fragments

    def __bytes__(self) -> bytes:
        return FRAGMENT.pack(self.next_header, 0,
                             self.fragment_offset << FRAGMENT_OFFSET_SHIFT | int(self.more_fragments),
                             self.identification)


@dataclass(frozen=True, slots=True)
class ExtensionHeader:
    """One extension header as found in a packet: its type (the Next Header value that named
    it), where it starts in the packet, its bytes, and its decoded value."""

    type: int
    offset: int
    data: bytes
    value: OptionsHeader | RoutingHeader | FragmentHeader = field(compare=False)

    @property
    def next_header(self) -> int:
        return self.data[0]

    @property
    def options(self) -> tuple[Ipv6Option, ...]:
        """The options of a Hop-by-Hop or Destination Options header (empty for the others)."""
        return self.value.options if isinstance(self.value, OptionsHeader) else ()

    @property
    def routing_type_pointer(self) -> int:
        """Where a Routing header's Routing Type is (RFC 8200 4.4: a Parameter Problem points there)."""
        return self.offset + 2

    @property
    def fragment_offset_pointer(self) -> int:
        """Where a Fragment header's Fragment Offset is (RFC 8200 4.5: a Parameter Problem about
        a reassembly over 65,535 octets points there)."""
        return self.offset + 2


@dataclass(frozen=True, slots=True)
class HeaderChain:
    """What ``walk_chain`` found: the extension headers in order, and the upper layer.

    ``upper_layer`` is the Next Header value after the last extension header (59 is "no next
    header"); ``upper_layer_offset`` is where its data starts in the packet and
    ``upper_layer_pointer`` where the Next Header field that named it is (an unrecognised one
    gets Parameter Problem code 1 pointing there, RFC 8200 4). ``upper_layer_data`` is a view.
    After the Fragment header of a fragment that is not the first, the data is the fragment's.
    """

    headers: tuple[ExtensionHeader, ...]
    upper_layer: int
    upper_layer_offset: int
    upper_layer_pointer: int
    upper_layer_data: Buffer = field(compare=False)

    @property
    def fragment(self) -> FragmentHeader | None:
        for header in self.headers:
            if isinstance(header.value, FragmentHeader):
                return header.value
        return None

    @property
    def hop_by_hop(self) -> ExtensionHeader | None:
        return self.headers[0] if self.headers and self.headers[0].type == NextHeader.HOP_BY_HOP else None


def walk_chain(next_header: int, payload: Buffer, base: int = HEADER_LENGTH,
               limit: int = MAXIMUM_EXTENSION_HEADERS) -> HeaderChain:
    """Walk the extension headers of a packet whose fixed header names ``next_header`` and
    whose payload (after the 40-byte header) is ``payload``; offsets count from the packet's
    start (``base`` is where ``payload`` begins). Integrity only: each header must fit, and
    option areas must parse. The host decides about unknown options, routing types and the
    upper layer. Raises ``Ipv6ParseError`` (a ParseError) with the pointer and code, and the
    headers read before the one at fault (``before``).
    """
    view = memoryview(payload)
    size = len(view)
    headers: list[ExtensionHeader] = []
    index = 0  # in payload
    pointer = NEXT_HEADER_OFFSET  # the Next Header field naming the current header, in the packet
    first_fragment = False
    try:
        while next_header in EXTENSION_HEADERS:
            offset = base + index
            # RFC 8200 4: a Hop-by-Hop Options header must immediately follow the IPv6 header; a
            # Next Header of zero in any other header is treated as unrecognised (Parameter Problem
            # code 1 pointing at it).
            if next_header == NextHeader.HOP_BY_HOP and headers:
                raise Ipv6ParseError("IPv6", "hop_by_hop_not_first",
                                     f"Hop-by-Hop Options header at offset {offset} is not first",
                                     pointer=pointer, code=ParameterProblemCode.UNRECOGNIZED_NEXT_HEADER)
            if len(headers) >= limit:
                raise Ipv6ParseError("IPv6", "chain_too_long",
                                     f"more than {limit} extension headers", pointer=offset)
            if next_header == NextHeader.FRAGMENT:
                header_length = FRAGMENT_HEADER_LENGTH
            else:
                header_length = (view[index + 1] + 1) * 8 if index + 2 <= size else 8
            if index + header_length > size:
                # RFC 7112 5: a first fragment without the whole header chain SHOULD be discarded
                # with Parameter Problem code 3, its pointer set to zero.
                if first_fragment:
                    raise Ipv6ParseError("IPv6", "incomplete_chain",
                                         f"the first fragment ends inside header {next_header} at offset {offset}",
                                         pointer=0, code=ParameterProblemCode.INCOMPLETE_HEADER_CHAIN)
                raise Ipv6ParseError("IPv6", "extension_truncated",
                                     f"header {next_header} of {header_length} bytes at offset {offset} "
                                     f"runs past the payload ({size - index} bytes left)", pointer=offset)
            data = bytes(view[index:index + header_length])
            value: OptionsHeader | RoutingHeader | FragmentHeader
            if next_header == NextHeader.FRAGMENT:
                value = _fragment(data, offset, index, size - index - header_length)
            elif next_header == NextHeader.ROUTING:
                value = RoutingHeader(data[0], data[2], data[3], data[4:])
            else:
                value = OptionsHeader(data[0], parse_options(data[2:], offset + 2))
            headers.append(ExtensionHeader(next_header, offset, data, value))
            pointer = offset
            next_header = data[0]
            index += header_length
            if isinstance(value, FragmentHeader):
                if value.fragment_offset != 0:
                    break  # RFC 8200 4.5: after a later fragment's Fragment header comes fragment data
                first_fragment = value.more_fragments
        # RFC 8200 4.5 (RFC 7112 5): the first fragment holds all headers through the upper-layer
        # header (an empty one holds none of it); without it, discard it with Parameter Problem
        # code 3, pointer 0. Linux 6.18 answers an empty first fragment so too, and reassembles
        # the rest (found by tapstack diff --ipv6).
        if first_fragment and size - index < UPPER_LAYER_HEADER_LENGTHS.get(next_header, 0):
            raise Ipv6ParseError("IPv6", "incomplete_chain",
                                 f"the first fragment has {size - index} bytes of upper-layer header {next_header}, "
                                 f"not {UPPER_LAYER_HEADER_LENGTHS[next_header]}",
                                 pointer=0, code=ParameterProblemCode.INCOMPLETE_HEADER_CHAIN)
    except Ipv6ParseError as error:
        error.before = tuple(headers)
        raise
    return HeaderChain(tuple(headers), next_header, base + index, pointer, view[index:])


def _fragment(data: bytes, offset: int, unfragmentable_length: int, fragment_data_length: int) -> FragmentHeader:
    next_header, _reserved, offset_flags, identification = FRAGMENT.unpack(data)
    header = FragmentHeader(next_header, offset_flags >> FRAGMENT_OFFSET_SHIFT,
                            bool(offset_flags & FLAG_MORE_FRAGMENTS), identification)
    # RFC 8200 4.5: a fragment with M set whose length is not a multiple of 8 octets must be
    # discarded, and a Parameter Problem code 0 should point at its Payload Length field.
    if header.more_fragments and fragment_data_length % 8:
        raise Ipv6ParseError("IPv6", "fragment_bad_length",
                             f"fragment of {fragment_data_length} bytes with more to come is not a multiple of 8",
                             pointer=PAYLOAD_LENGTH_OFFSET, code=ParameterProblemCode.ERRONEOUS_HEADER_FIELD)
    # RFC 8200 4.5: a fragment that would make the reassembled payload exceed 65,535 octets must
    # be discarded, and a Parameter Problem code 0 should point at its Fragment Offset field.
    reassembled = unfragmentable_length + header.fragment_offset * 8 + fragment_data_length
    if reassembled > MAXIMUM_PAYLOAD_LENGTH:
        raise Ipv6ParseError("IPv6", "fragment_too_large",
                             f"fragment at {header.fragment_offset * 8} of {fragment_data_length} bytes makes "
                             f"a payload of {reassembled} > 65535",
                             pointer=offset + 2, code=ParameterProblemCode.ERRONEOUS_HEADER_FIELD)
    return header


# ----------------------------------------------------------------------------- addresses (RFC 4291)

UNSPECIFIED = IPv6Address("::")
ALL_NODES = IPv6Address("ff02::1")  # RFC 4291 2.7.1: link-local all-nodes
ALL_ROUTERS = IPv6Address("ff02::2")  # RFC 4291 2.7.1: link-local all-routers
ALL_MLDV2_ROUTERS = IPv6Address("ff02::16")  # RFC 3810 5.2.14: where MLDv2 reports go
LINK_LOCAL_PREFIX = IPv6Network("fe80::/64")  # RFC 4291 2.5.6
SOLICITED_NODE_PREFIX = IPv6Network("ff02::1:ff00:0/104")  # RFC 4291 2.7.1


class MulticastScope(IntEnum):
    """RFC 4291 2.7 (updated by RFC 7346): the scop field, the low 4 bits of the second octet."""

    INTERFACE_LOCAL = 1
    LINK_LOCAL = 2
    REALM_LOCAL = 3
    ADMIN_LOCAL = 4
    SITE_LOCAL = 5
    ORGANIZATION_LOCAL = 8
    GLOBAL = 14


def solicited_node_multicast(address: IPv6Address) -> IPv6Address:
    """RFC 4291 2.7.1: ff02::1:ff00:0/104 followed by the low 24 bits of the address."""
    return IPv6Address(int(SOLICITED_NODE_PREFIX.network_address) | int(address) & 0xFFFFFF)


def is_solicited_node_multicast(address: IPv6Address) -> bool:
    return address in SOLICITED_NODE_PREFIX


def interface_identifier(mac: bytes) -> bytes:
    """RFC 4291 2.5.1 and appendix A: the modified EUI-64 interface identifier of a 48-bit MAC:
    0xFFFE in the middle, and the universal/local bit (0x02 of the first octet) inverted."""
    if len(mac) != 6:
        raise ValueError(f"a MAC address is 6 bytes, not {len(mac)}")
    return bytes((mac[0] ^ 0x02,)) + bytes(mac[1:3]) + b"\xff\xfe" + bytes(mac[3:6])


def link_local_address(mac: bytes) -> IPv6Address:
    """fe80::/64 and the modified EUI-64 identifier (RFC 4291 2.5.6, RFC 2464 5):
    02:00:00:00:00:02 gives fe80::ff:fe00:2."""
    return IPv6Address(LINK_LOCAL_PREFIX.network_address.packed[:8] + interface_identifier(mac))


def multicast_scope(address: IPv6Address) -> int:
    """The scop field of a multicast address (RFC 4291 2.7); ValueError for a unicast one."""
    if not address.is_multicast:
        raise ValueError(f"{address} is not a multicast address")
    return address.packed[1] & 0x0F


def is_link_local_unicast(address: IPv6Address) -> bool:
    """RFC 4291 2.5.6: fe80::/10."""
    return address.is_link_local


def identifies_one_node(address: IPv6Address) -> bool:
    """RFC 4443 2.4 (e) 6: no ICMPv6 error goes to a source that does not identify a single
    node, such as the unspecified address or a multicast address (anycast is not known here)."""
    return not (address.is_multicast or address == UNSPECIFIED)
