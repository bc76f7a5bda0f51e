"""IPv4 datagrams (RFC 791 3.1; checks from RFC 1122 3.2.1).

     0                   1                   2                   3
     0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1
    +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
    |Version|  IHL  |Type of Service|          Total Length         |
    +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
    |         Identification        |Flags|      Fragment Offset    |
    +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
    |  Time to Live |    Protocol   |         Header Checksum       |
    +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
    |                       Source Address                          |
    +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
    |                    Destination Address                        |
    +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
    |                    Options                    |    Padding    |
    +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
"""

from __future__ import annotations

import struct
from dataclasses import dataclass, field
from enum import IntEnum
from ipaddress import IPv4Address

from stack.buffers import Buffer, Frame, Payload, chunks, join, length
from stack.checksum import internet_checksum
from stack.errors import ParseError

HEADER = struct.Struct("!BBHHHBBH4s4s")
MINIMUM_HEADER_LENGTH = HEADER.size  # 20
MAXIMUM_TOTAL_LENGTH = 0xFFFF
FLAG_DONT_FRAGMENT = 0x4000
FLAG_MORE_FRAGMENTS = 0x2000
FRAGMENT_OFFSET_MASK = 0x1FFF
DEFAULT_TTL = 64  # RFC 1700 / Linux net.ipv4.ip_default_ttl


class IpOption(IntEnum):
    """IPv4 option types (RFC 791 3.1) we know by name. The top bit is the "copied" flag."""

    END_OF_LIST = 0
    NO_OPERATION = 1
    RECORD_ROUTE = 7
    TIMESTAMP = 68
    LOOSE_SOURCE_ROUTE = 131
    STRICT_SOURCE_ROUTE = 137


def parse_options(options: bytes) -> list[tuple[int, bytes]]:
    """The options as (type, whole option bytes); ParseError when one runs past the header.

    RFC 791 3.1: EOL and NOP are one octet; every other option is type, length (counting the
    type and length octets), data.
    """
    found: list[tuple[int, bytes]] = []
    index = 0
    while index < len(options):
        kind = options[index]
        if kind == IpOption.END_OF_LIST:
            break
        if kind == IpOption.NO_OPERATION:
            index += 1
            continue
        if index + 1 >= len(options) or not 2 <= options[index + 1] <= len(options) - index:
            raise ParseError("IPv4", "bad_options",
                             f"option {kind} at offset {index} runs past the header")
        size = options[index + 1]
        found.append((kind, options[index:index + size]))
        index += size
    return found


class IpProto(IntEnum):
    """IP protocol numbers we know by name (IANA). Wire fields stay ``int``."""

    ICMP = 1
    IGMP = 2
    TCP = 6
    UDP = 17


#: What ``read_header`` returns: (header length in bytes, type of service, total length,
#: identification, flags and fragment offset word, TTL, protocol, header checksum, source,
#: destination), the addresses as their 4 bytes.
Header = tuple[int, int, int, int, int, int, int, int, bytes, bytes]


def read_header(data: Buffer) -> Header:
    """The header of a datagram, checked as RFC 1122 3.2.1 asks of a host, without building any
    object: the early classification at the top of the network layer. ``Ipv4Packet.parse`` and
    the host's receive path both start here, so the rules are in one place."""
    size = len(data)
    if size < MINIMUM_HEADER_LENGTH:
        raise ParseError("IPv4", "truncated", "datagram of %d bytes < header 20", size)
    (version_ihl, tos, total_length, identification, flags_offset, ttl, protocol,
     checksum, source, destination) = HEADER.unpack_from(data)
    if version_ihl == 0x45:  # the usual header: version 4, no options
        header_length = MINIMUM_HEADER_LENGTH
    else:
        version = version_ihl >> 4
        # RFC 1122 3.2.1.1: a datagram whose version number is not 4 MUST be silently discarded.
        if version != 4:
            raise ParseError("IPv4", "bad_version", "version %d != 4", version)
        header_length = (version_ihl & 0x0F) * 4
        # RFC 791 3.1: IHL is at least 5 (20 octets).
        if header_length < MINIMUM_HEADER_LENGTH:
            raise ParseError("IPv4", "bad_header_length", "IHL %d < 5", header_length // 4)
        if header_length > size:
            raise ParseError("IPv4", "truncated", "header length %d > buffer %d", header_length, size)
    if total_length < header_length:
        raise ParseError("IPv4", "bad_total_length", "total length %d < header length %d",
                         total_length, header_length)
    if total_length > size:
        raise ParseError("IPv4", "truncated", "total length %d > buffer %d", total_length, size)
    # RFC 1122 3.2.1.2: a host MUST verify the header checksum and silently discard on failure.
    # (As in checksum.verifies: read as one integer, a header with a correct checksum is a
    # non-zero multiple of 0xFFFF; a version-4 header is never all zeros.)
    if int.from_bytes(data[:header_length], "big") % 0xFFFF:
        raise ParseError("IPv4", "bad_checksum", "header checksum %#06x does not verify (should be %s)",
                         checksum, _ShouldBe(bytes(data[:header_length])))
    if header_length > MINIMUM_HEADER_LENGTH:
        parse_options(bytes(data[MINIMUM_HEADER_LENGTH:header_length]))  # structure only
    return (header_length, tos, total_length, identification, flags_offset, ttl, protocol, checksum,
            source, destination)


class _ShouldBe:
    """The checksum a header should carry, worked out only when a drop's words are read."""

    __slots__ = ("header",)

    def __init__(self, header: bytes) -> None:
        self.header = header

    def __str__(self) -> str:
        header = self.header
        return "%#06x" % internet_checksum([header[:10], bytes(2), header[12:]])


@dataclass(frozen=True, slots=True)
class Ipv4Packet:
    """An IPv4 datagram. The header checksum is verified by ``parse`` and computed on output;
    it is never stored. ``total_length`` and IHL are derived from ``options`` and ``payload``.

    Parsed, ``payload`` is a zero-copy view trimmed to the total length (anything after it is
    link-layer padding, RFC 894).
    """

    source: IPv4Address
    destination: IPv4Address
    protocol: int
    payload: Payload = field(default=b"", compare=False)
    ttl: int = DEFAULT_TTL
    identification: int = 0
    dont_fragment: bool = False
    more_fragments: bool = False
    fragment_offset: int = 0  # in 8-octet units, as on the wire
    type_of_service: int = 0
    options: bytes = b""

    def __post_init__(self) -> None:
        if not isinstance(self.source, IPv4Address):
            object.__setattr__(self, "source", IPv4Address(self.source))
        if not isinstance(self.destination, IPv4Address):
            object.__setattr__(self, "destination", IPv4Address(self.destination))
        if not 0 <= self.ttl <= 255:
            raise ValueError(f"TTL {self.ttl} does not fit 8 bits")
        if not 0 <= self.protocol <= 255:
            raise ValueError(f"protocol {self.protocol} does not fit 8 bits")
        if not 0 <= self.identification <= 0xFFFF:
            raise ValueError(f"identification {self.identification} does not fit 16 bits")
        if not 0 <= self.fragment_offset <= FRAGMENT_OFFSET_MASK:
            raise ValueError(f"fragment offset {self.fragment_offset} does not fit 13 bits")
        if not 0 <= self.type_of_service <= 255:
            raise ValueError(f"type of service {self.type_of_service} does not fit 8 bits")
        if len(self.options) % 4 or len(self.options) > 40:
            raise ValueError(f"options must be a multiple of 4 bytes, at most 40 (got {len(self.options)})")
        if self.options:
            try:
                parse_options(self.options)
            except ParseError as error:
                raise ValueError(f"malformed options: {error.detail}") from None
        if self.total_length > MAXIMUM_TOTAL_LENGTH:
            raise ValueError(f"datagram of {self.total_length} bytes > {MAXIMUM_TOTAL_LENGTH}")

    @property
    def header_length(self) -> int:
        return MINIMUM_HEADER_LENGTH + len(self.options)

    @property
    def total_length(self) -> int:
        return self.header_length + length(self.payload)

    @property
    def is_fragment(self) -> bool:
        return self.more_fragments or self.fragment_offset != 0

    @classmethod
    def parse(cls, data: Buffer) -> Ipv4Packet:
        """Read a datagram, checking what RFC 1122 3.2.1 asks of a host before anything else
        (``read_header``'s rules)."""
        return cls.from_header(data, read_header(data))

    @classmethod
    def from_header(cls, data: Buffer, header: Header) -> Ipv4Packet:
        """The datagram whose header ``read_header(data)`` has read and checked."""
        (header_length, tos, total_length, identification, flags_offset, ttl, protocol, _,
         source, destination) = header
        view = memoryview(data)
        return cls(
            IPv4Address(source),
            IPv4Address(destination),
            protocol,
            view[header_length:total_length],
            ttl,
            identification,
            bool(flags_offset & FLAG_DONT_FRAGMENT),
            bool(flags_offset & FLAG_MORE_FRAGMENTS),
            flags_offset & FRAGMENT_OFFSET_MASK,
            tos,
            bytes(view[MINIMUM_HEADER_LENGTH:header_length]) if header_length > MINIMUM_HEADER_LENGTH else b"",
        )

    @property
    def flags_offset(self) -> int:
        """The 16-bit flags and fragment offset word as on the wire."""
        return (
            (FLAG_DONT_FRAGMENT if self.dont_fragment else 0)
            | (FLAG_MORE_FRAGMENTS if self.more_fragments else 0)
            | self.fragment_offset
        )

    def header(self) -> bytes:
        """The header with its checksum, for this datagram's options and payload length."""
        return header_bytes(self.source, self.destination, self.protocol, length(self.payload),
                            self.ttl, self.identification, self.flags_offset,
                            self.type_of_service, self.options)

    def buffers(self) -> Frame:
        """The datagram as buffers: the header, then the payload chunks as they are."""
        return [self.header(), *chunks(self.payload)]

    def __bytes__(self) -> bytes:
        return join(self.buffers())

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Ipv4Packet):
            return NotImplemented
        return all(getattr(self, name) == getattr(other, name) for name in _COMPARED) and join(
            self.payload
        ) == join(other.payload)

    __hash__ = None  # type: ignore[assignment]


def header_bytes(source: IPv4Address, destination: IPv4Address, protocol: int, payload_length: int,
                 ttl: int = DEFAULT_TTL, identification: int = 0, flags_offset: int = 0,
                 type_of_service: int = 0, options: bytes = b"") -> bytes:
    """An IPv4 header with its checksum, for a payload of ``payload_length`` bytes.

    The send path calls this directly (the payload stays a list of buffers); ``Ipv4Packet``
    uses it too, so there is one encoder: ``packed_header_bytes``, which this calls.
    """
    return packed_header_bytes(source.packed, destination.packed, protocol, payload_length, ttl,
                               identification, flags_offset, type_of_service, options)


def packed_header_bytes(source: bytes, destination: bytes, protocol: int, payload_length: int,
                        ttl: int = DEFAULT_TTL, identification: int = 0, flags_offset: int = 0,
                        type_of_service: int = 0, options: bytes = b"") -> bytes:
    """``header_bytes`` with the addresses already packed (4 bytes each), as they come off the
    wire: header prediction answers a datagram without building an ``IPv4Address``."""
    # RFC 1122 3.2.1.7: a host MUST NOT send a datagram with a TTL of zero.
    if ttl == 0:
        raise ValueError("RFC 1122 3.2.1.7: a host must not send a datagram with TTL 0")
    header_length = MINIMUM_HEADER_LENGTH + len(options)
    total_length = header_length + payload_length
    if total_length > MAXIMUM_TOTAL_LENGTH:
        raise ValueError(f"datagram of {total_length} bytes > {MAXIMUM_TOTAL_LENGTH}")
    first_word = 0x40 | (header_length >> 2)
    # RFC 1071: the checksum is the ones' complement of the ones'-complement sum of the header's
    # 16-bit words, its own field taken as zero. Summed here from the fields themselves, without
    # packing the header twice: 2**16 == 1 (mod 0xFFFF), so a 32-bit address read as one integer
    # sums as its two words do (as stack.checksum explains).
    total = (first_word << 8 | type_of_service) + total_length + identification + flags_offset \
        + (ttl << 8 | protocol) + int.from_bytes(source, "big") + int.from_bytes(destination, "big")
    if options:
        total += int.from_bytes(options, "big")
    # The header is never all zeros (version 4), so its sum is 1..0xFFFF: 0xFFFF for a multiple.
    checksum = 0xFFFF - (total % 0xFFFF or 0xFFFF)
    return HEADER.pack(first_word, type_of_service, total_length, identification, flags_offset,
                       ttl, protocol, checksum, source, destination) + options


_COMPARED = (
    "source", "destination", "protocol", "ttl", "identification", "dont_fragment",
    "more_fragments", "fragment_offset", "type_of_service", "options",
)
