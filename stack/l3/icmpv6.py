"""ICMPv6 (RFC 4443), Neighbor Discovery (RFC 4861 4) and MLD (RFC 3810 5, RFC 2710 3).

     0                   1                   2                   3
     0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1
    +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
    |     Type      |     Code      |          Checksum             |
    +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
    |   First word of the body (echo: Identifier | Sequence Number)  |
    +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
    |     Rest of the body ...
    +-+-+-+-+-

RFC 4443 2.3: the checksum covers the IPv6 pseudo-header (RFC 8200 8.1, Next Header 58) and
the whole message, so ``parse`` and ``buffers`` take the addresses, as UDP's do.
``Icmpv6Message`` is the envelope; the Neighbor Discovery and MLD classes below read and build
its body (``from_message`` / ``message``), each with its RFC diagram. Integrity only: the ND
validity rules that need the IP header (hop limit 255, RFC 4861 6.1) are the host's.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass, field
from enum import IntEnum
from ipaddress import IPv6Address

from stack.buffers import Buffer, Frame, Payload, chunks, join, length, slice_buffers
from stack.checksum import internet_checksum
from stack.errors import ParseError
from stack.l3.ipv6 import HEADER_LENGTH as IPV6_HEADER_LENGTH
from stack.l3.ipv6 import MINIMUM_MTU, NextHeader, pseudo_header

HEADER = struct.Struct("!BBH4s")
HEADER_LENGTH = HEADER.size  # 8
ECHO = struct.Struct("!HH")
#: RFC 4443 2.4 (c): an error quotes as much of the invoking packet as fits in 1280 octets.
MAXIMUM_QUOTE = MINIMUM_MTU - IPV6_HEADER_LENGTH - HEADER_LENGTH  # 1232
#: RFC 4861 6.1.1, 6.1.2, 7.1.1, 7.1.2, 8.1: ND messages are sent, and must arrive, with hop limit 255.
ND_HOP_LIMIT = 255
#: RFC 3810 5: MLD messages are sent with hop limit 1 (and a Router Alert option, RFC 2711).
MLD_HOP_LIMIT = 1
ROUTER_ALERT_OPTION = 5  # RFC 2711: the Hop-by-Hop option type; its value 0 means MLD


class Icmpv6Type(IntEnum):
    """ICMPv6 types we know by name (RFC 4443 2.1; ND RFC 4861 4; MLD RFC 2710, RFC 3810).
    Wire fields stay ``int``."""

    DESTINATION_UNREACHABLE = 1
    PACKET_TOO_BIG = 2
    TIME_EXCEEDED = 3
    PARAMETER_PROBLEM = 4
    ECHO_REQUEST = 128
    ECHO_REPLY = 129
    MLD_QUERY = 130
    MLDV1_REPORT = 131
    MLDV1_DONE = 132
    ROUTER_SOLICITATION = 133
    ROUTER_ADVERTISEMENT = 134
    NEIGHBOR_SOLICITATION = 135
    NEIGHBOR_ADVERTISEMENT = 136
    REDIRECT = 137
    MLDV2_REPORT = 143


def is_error(type: int) -> bool:
    """RFC 4443 2.1: types 0-127 are error messages, 128-255 informational."""
    return type < 128


class DestinationUnreachableCode(IntEnum):
    """RFC 4443 3.1."""

    NO_ROUTE = 0
    ADMINISTRATIVELY_PROHIBITED = 1
    BEYOND_SCOPE = 2
    ADDRESS_UNREACHABLE = 3
    PORT_UNREACHABLE = 4
    SOURCE_POLICY_FAILED = 5
    REJECT_ROUTE = 6


class TimeExceededCode(IntEnum):
    """RFC 4443 3.3."""

    HOP_LIMIT_EXCEEDED = 0
    REASSEMBLY_TIME_EXCEEDED = 1


# ----------------------------------------------------------------------------- the envelope


@dataclass(frozen=True, slots=True)
class Icmpv6Message:
    """One ICMPv6 message: type, code, the 4 bytes after the checksum (their meaning depends on
    the type: echo identifier and sequence, an error's MTU or pointer, ND flags...) and the rest.
    The checksum is verified by ``parse`` and computed by ``buffers``; it is never stored.
    """

    type: int
    code: int
    rest_of_header: bytes = bytes(4)
    payload: Payload = field(default=b"", compare=False)

    def __post_init__(self) -> None:
        if not 0 <= self.type <= 255 or not 0 <= self.code <= 255:
            raise ValueError(f"ICMPv6 type {self.type} / code {self.code} do not fit 8 bits")
        if len(self.rest_of_header) != 4:
            raise ValueError(f"rest of header is 4 bytes, not {len(self.rest_of_header)}")

    @property
    def length(self) -> int:
        return HEADER_LENGTH + length(self.payload)

    @classmethod
    def echo(cls, type: int, identifier: int, sequence: int, payload: Payload = b"") -> Icmpv6Message:
        """An Echo Request (128) or Echo Reply (129) (RFC 4443 4.1, 4.2)."""
        if not 0 <= identifier <= 0xFFFF or not 0 <= sequence <= 0xFFFF:
            raise ValueError(f"echo identifier {identifier} / sequence {sequence} do not fit 16 bits")
        return cls(type, 0, ECHO.pack(identifier, sequence), payload)

    @classmethod
    def error(cls, type: int, code: int, invoking: Payload, parameter: int = 0) -> Icmpv6Message:
        """An error message (RFC 4443 3) quoting the invoking packet (views, not copied).

        ``parameter`` is the 32-bit field: unused (0) for Destination Unreachable and Time
        Exceeded, the MTU for Packet Too Big (3.2), the pointer for Parameter Problem (3.4).
        RFC 4443 2.4 (c): as much of the invoking packet as fits without the error exceeding
        the minimum IPv6 MTU (1280 octets) is quoted.
        """
        if not is_error(type):
            raise ValueError(f"type {type} is not an error (RFC 4443 2.1: errors are 0-127)")
        if not 0 <= parameter <= 0xFFFFFFFF:
            raise ValueError(f"parameter {parameter} does not fit 32 bits")
        return cls(type, code, parameter.to_bytes(4, "big"), slice_buffers(invoking, 0, MAXIMUM_QUOTE))

    @property
    def identifier(self) -> int:
        return ECHO.unpack(self.rest_of_header)[0]

    @property
    def sequence(self) -> int:
        return ECHO.unpack(self.rest_of_header)[1]

    @property
    def parameter(self) -> int:
        """The 32 bits after the checksum: Packet Too Big's MTU, Parameter Problem's pointer."""
        return int.from_bytes(self.rest_of_header, "big")

    @classmethod
    def parse(cls, data: Buffer, source: IPv6Address, destination: IPv6Address) -> Icmpv6Message:
        """Read the ICMPv6 message (the upper-layer data of a packet from ``source`` to
        ``destination``), verifying its checksum."""
        size = len(data)
        # RFC 4443 2.1: type, code, checksum and a body; every message we know has at least its
        # 32-bit first word, so fewer than 8 octets cannot be one of them.
        if size < HEADER_LENGTH:
            raise ParseError("ICMPv6", "truncated", f"message of {size} bytes < header {HEADER_LENGTH}")
        type_, code, carried, rest = HEADER.unpack_from(data)
        view = memoryview(data)
        # RFC 4443 2.3: the checksum covers the pseudo-header and the message; RFC 4443 2.4: a
        # message with a wrong one is discarded (no zero checksum, unlike UDP over IPv4).
        if internet_checksum([pseudo_header(source, destination, size, NextHeader.ICMPV6), view]):
            computed = checksum(source, destination, [view[:2], b"\x00\x00", view[4:]])
            raise ParseError("ICMPv6", "bad_checksum",
                             f"checksum {carried:#06x} does not verify (should be {computed:#06x})")
        return cls(type_, code, rest, view[HEADER_LENGTH:])

    def header(self, source: IPv6Address, destination: IPv6Address) -> bytes:
        """The 8-byte header with the checksum over pseudo-header, header and payload."""
        unsummed = HEADER.pack(self.type, self.code, 0, self.rest_of_header)
        value = checksum(source, destination, [unsummed, *chunks(self.payload)])
        return HEADER.pack(self.type, self.code, value, self.rest_of_header)

    def buffers(self, source: IPv6Address, destination: IPv6Address) -> Frame:
        return [self.header(source, destination), *chunks(self.payload)]

    def to_bytes(self, source: IPv6Address, destination: IPv6Address) -> bytes:
        return join(self.buffers(source, destination))

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Icmpv6Message):
            return NotImplemented
        return (self.type == other.type and self.code == other.code
                and self.rest_of_header == other.rest_of_header and join(self.payload) == join(other.payload))

    __hash__ = None  # type: ignore[assignment]


def checksum(source: IPv6Address, destination: IPv6Address, message: Payload) -> int:
    """The Checksum field for ``message`` (its checksum field 0) from ``source`` to
    ``destination`` (RFC 4443 2.3)."""
    pseudo = pseudo_header(source, destination, length(message), NextHeader.ICMPV6)
    return internet_checksum([pseudo, *chunks(message)])


# ----------------------------------------------------------------------------- ND options (RFC 4861 4.6)


class NdOptionType(IntEnum):
    SOURCE_LINK_LAYER_ADDRESS = 1
    TARGET_LINK_LAYER_ADDRESS = 2
    PREFIX_INFORMATION = 3
    REDIRECTED_HEADER = 4
    MTU = 5


PREFIX_INFORMATION = struct.Struct("!BBIII16s")  # prefix length, L|A, valid, preferred, reserved, prefix
MTU_OPTION = struct.Struct("!HI")  # reserved, MTU


@dataclass(frozen=True, slots=True)
class NdOption:
    """One ND option (RFC 4861 4.6): type, then a length in 8-octet units counting the type and
    length octets, then ``data`` (``8 * length - 2`` octets). Unknown types keep their data:
    RFC 4861 4.6: receivers MUST silently ignore options they do not recognise.

         0                   1                   2                   3
         0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1
        +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
        |     Type      |    Length     |              ...              |
        +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
    """

    type: int
    data: bytes

    def __post_init__(self) -> None:
        if not 0 <= self.type <= 255:
            raise ValueError(f"ND option type {self.type} does not fit 8 bits")
        if (2 + len(self.data)) % 8 or not 8 <= 2 + len(self.data) <= 255 * 8:
            raise ValueError(f"ND option of {2 + len(self.data)} bytes is not a multiple of 8 from 8 to 2040")
        expected = KNOWN_OPTION_LENGTHS.get(self.type)
        if expected is not None and 2 + len(self.data) != expected * 8:
            raise ValueError(f"ND option {self.type} is {expected * 8} bytes, not {2 + len(self.data)}")

    def __bytes__(self) -> bytes:
        return bytes((self.type, (2 + len(self.data)) // 8)) + self.data

    # --- the options we know (RFC 4861 4.6.1-4.6.4), built and read

    @classmethod
    def link_layer_address(cls, type: int, address: bytes) -> NdOption:
        """Source (1) or Target (2) Link-Layer Address (RFC 4861 4.6.1); for Ethernet the
        6-byte MAC fills the 8-octet option exactly (RFC 2464 8)."""
        return cls(type, bytes(address) + bytes(-(2 + len(address)) % 8))

    @property
    def address(self) -> bytes:
        """The link-layer address of option 1 or 2 (all the data; 6 bytes for Ethernet)."""
        return self.data

    @classmethod
    def prefix_information(cls, prefix: IPv6Address, prefix_length: int, on_link: bool = True,
                           autonomous: bool = True, valid_lifetime: int = 0xFFFFFFFF,
                           preferred_lifetime: int = 0xFFFFFFFF) -> NdOption:
        """Prefix Information (RFC 4861 4.6.2), 32 octets."""
        flags = (0x80 if on_link else 0) | (0x40 if autonomous else 0)
        return cls(NdOptionType.PREFIX_INFORMATION, PREFIX_INFORMATION.pack(
            prefix_length, flags, valid_lifetime, preferred_lifetime, 0, prefix.packed))

    def prefix(self) -> PrefixInformation:
        if self.type != NdOptionType.PREFIX_INFORMATION:
            raise ValueError(f"option {self.type} is not Prefix Information")
        prefix_length, flags, valid, preferred, _reserved, prefix = PREFIX_INFORMATION.unpack(self.data)
        return PrefixInformation(IPv6Address(prefix), prefix_length, bool(flags & 0x80), bool(flags & 0x40),
                                 valid, preferred)

    @classmethod
    def mtu_option(cls, mtu: int) -> NdOption:
        """MTU (RFC 4861 4.6.4), 8 octets."""
        return cls(NdOptionType.MTU, MTU_OPTION.pack(0, mtu))

    @property
    def mtu(self) -> int:
        if self.type != NdOptionType.MTU:
            raise ValueError(f"option {self.type} is not MTU")
        return MTU_OPTION.unpack(self.data)[1]

    @classmethod
    def redirected_header(cls, packet: Payload) -> NdOption:
        """Redirected Header (RFC 4861 4.6.3): 6 reserved octets, then the original packet,
        cut to a multiple of 8 octets so that the Redirect, with a Target Link-Layer Address
        option of 8 octets beside it, stays within the minimum MTU of 1280 octets."""
        room = MINIMUM_MTU - IPV6_HEADER_LENGTH - REDIRECT_FIXED_LENGTH - 8 - 8 - 6
        quoted = join(packet)[:room]
        quoted += bytes(-(6 + 2 + len(quoted)) % 8)  # RFC 4861 4.6.3: the option is 8-octet units
        return cls(NdOptionType.REDIRECTED_HEADER, bytes(6) + quoted)

    @property
    def redirected_packet(self) -> bytes:
        return self.data[6:]


#: The size each option we know must have, in 8-octet units (RFC 4861 4.6.2, 4.6.4); a
#: different length cannot be read as that option.
KNOWN_OPTION_LENGTHS = {NdOptionType.PREFIX_INFORMATION: 4, NdOptionType.MTU: 1}


@dataclass(frozen=True, slots=True)
class PrefixInformation:
    """What a Prefix Information option says (RFC 4861 4.6.2)."""

    prefix: IPv6Address
    prefix_length: int
    on_link: bool
    autonomous: bool
    valid_lifetime: int
    preferred_lifetime: int


def parse_nd_options(data: Buffer, offset: int = 0) -> tuple[NdOption, ...]:
    """The options after an ND message's fixed part; ``offset`` is where ``data`` starts in the
    ICMPv6 message (for the error text)."""
    found: list[NdOption] = []
    index = 0
    size = len(data)
    while index < size:
        if index + 2 > size:
            raise ParseError("ICMPv6", "nd_option_truncated",
                             f"option at offset {offset + index} has {size - index} byte, not its 2-byte head")
        kind, units = data[index], data[index + 1]
        # RFC 4861 4.6: nodes MUST silently discard an ND packet that contains an option with
        # length zero.
        if units == 0:
            raise ParseError("ICMPv6", "nd_option_zero_length", f"option {kind} at offset {offset + index} has length 0")
        if index + units * 8 > size:
            raise ParseError("ICMPv6", "nd_option_truncated",
                             f"option {kind} of {units * 8} bytes at offset {offset + index} runs past the message")
        expected = KNOWN_OPTION_LENGTHS.get(kind)
        if expected is not None and units != expected:
            raise ParseError("ICMPv6", "nd_bad_option_length",
                             f"option {kind} at offset {offset + index} has length {units}, not {expected}")
        found.append(NdOption(kind, bytes(data[index + 2:index + units * 8])))
        index += units * 8
    return tuple(found)


def _options_bytes(options: tuple[NdOption, ...]) -> bytes:
    return b"".join(bytes(option) for option in options)


def _check_type(message: Icmpv6Message, expected: int) -> None:
    if message.type != expected:
        raise ValueError(f"ICMPv6 type {message.type} is not {Icmpv6Type(expected).name}")


def _body(message: Icmpv6Message, fixed: int, name: str) -> bytes:
    """The message's payload, at least ``fixed`` bytes (ND's and MLD's length rules)."""
    body = join(message.payload)
    if len(body) < fixed:
        raise ParseError("ICMPv6", "nd_truncated",
                         f"{name} of {HEADER_LENGTH + len(body)} bytes < {HEADER_LENGTH + fixed}")
    return body


# ----------------------------------------------------------------------------- Neighbor Discovery


def _link_layer(options: tuple[NdOption, ...], type: int) -> bytes | None:
    for option in options:
        if option.type == type:
            return option.address
    return None


@dataclass(frozen=True, slots=True)
class RouterSolicitation:
    """Router Solicitation (RFC 4861 4.1): type 133, code 0, 4 reserved octets, options."""

    options: tuple[NdOption, ...] = ()

    @classmethod
    def from_message(cls, message: Icmpv6Message) -> RouterSolicitation:
        _check_type(message, Icmpv6Type.ROUTER_SOLICITATION)
        # RFC 4861 6.1.1: ICMP length (derived from the IP length) is 8 or more octets.
        return cls(parse_nd_options(_body(message, 0, "Router Solicitation"), HEADER_LENGTH))

    def message(self) -> Icmpv6Message:
        return Icmpv6Message(Icmpv6Type.ROUTER_SOLICITATION, 0, bytes(4), _options_bytes(self.options))


RA_FIXED = struct.Struct("!II")  # reachable time, retrans timer


@dataclass(frozen=True, slots=True)
class RouterAdvertisement:
    """Router Advertisement (RFC 4861 4.2).

        +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
        |     Type      |     Code      |          Checksum             |
        +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
        | Cur Hop Limit |M|O|  Reserved |       Router Lifetime         |
        +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
        |                         Reachable Time                        |
        +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
        |                          Retrans Timer                        |
        +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
        |   Options ...
    """

    current_hop_limit: int = 0
    managed: bool = False
    other: bool = False
    router_lifetime: int = 0
    reachable_time: int = 0
    retrans_timer: int = 0
    options: tuple[NdOption, ...] = ()

    @classmethod
    def from_message(cls, message: Icmpv6Message) -> RouterAdvertisement:
        _check_type(message, Icmpv6Type.ROUTER_ADVERTISEMENT)
        # RFC 4861 6.1.2: ICMP length is 16 or more octets.
        body = _body(message, RA_FIXED.size, "Router Advertisement")
        hop_limit, flags, lifetime = struct.unpack("!BBH", message.rest_of_header)
        reachable, retrans = RA_FIXED.unpack_from(body)
        return cls(hop_limit, bool(flags & 0x80), bool(flags & 0x40), lifetime, reachable, retrans,
                   parse_nd_options(body[RA_FIXED.size:], HEADER_LENGTH + RA_FIXED.size))

    def message(self) -> Icmpv6Message:
        flags = (0x80 if self.managed else 0) | (0x40 if self.other else 0)
        rest = struct.pack("!BBH", self.current_hop_limit, flags, self.router_lifetime)
        return Icmpv6Message(Icmpv6Type.ROUTER_ADVERTISEMENT, 0, rest,
                             RA_FIXED.pack(self.reachable_time, self.retrans_timer) + _options_bytes(self.options))


@dataclass(frozen=True, slots=True)
class NeighborSolicitation:
    """Neighbor Solicitation (RFC 4861 4.3): 4 reserved octets, the target, options.

        +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
        |     Type      |     Code      |          Checksum             |
        +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
        |                           Reserved                            |
        +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
        +                       Target Address (128)                    +
        +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
        |   Options ...
    """

    target: IPv6Address
    options: tuple[NdOption, ...] = ()

    def __post_init__(self) -> None:
        if not isinstance(self.target, IPv6Address):
            object.__setattr__(self, "target", IPv6Address(self.target))

    @property
    def source_link_layer_address(self) -> bytes | None:
        return _link_layer(self.options, NdOptionType.SOURCE_LINK_LAYER_ADDRESS)

    @classmethod
    def from_message(cls, message: Icmpv6Message) -> NeighborSolicitation:
        _check_type(message, Icmpv6Type.NEIGHBOR_SOLICITATION)
        # RFC 4861 7.1.1: ICMP length is 24 or more octets.
        body = _body(message, 16, "Neighbor Solicitation")
        return cls(IPv6Address(body[:16]), parse_nd_options(body[16:], HEADER_LENGTH + 16))

    def message(self) -> Icmpv6Message:
        return Icmpv6Message(Icmpv6Type.NEIGHBOR_SOLICITATION, 0, bytes(4),
                             self.target.packed + _options_bytes(self.options))


NA_ROUTER = 0x80000000
NA_SOLICITED = 0x40000000
NA_OVERRIDE = 0x20000000


@dataclass(frozen=True, slots=True)
class NeighborAdvertisement:
    """Neighbor Advertisement (RFC 4861 4.4).

        +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
        |     Type      |     Code      |          Checksum             |
        +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
        |R|S|O|                     Reserved                            |
        +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
        +                       Target Address (128)                    +
        +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
        |   Options ...

    R: the sender is a router; S: sent in answer to a Neighbor Solicitation; O: override an
    existing cache entry.
    """

    target: IPv6Address
    router: bool = False
    solicited: bool = False
    override: bool = False
    options: tuple[NdOption, ...] = ()

    def __post_init__(self) -> None:
        if not isinstance(self.target, IPv6Address):
            object.__setattr__(self, "target", IPv6Address(self.target))

    @property
    def target_link_layer_address(self) -> bytes | None:
        return _link_layer(self.options, NdOptionType.TARGET_LINK_LAYER_ADDRESS)

    @classmethod
    def from_message(cls, message: Icmpv6Message) -> NeighborAdvertisement:
        _check_type(message, Icmpv6Type.NEIGHBOR_ADVERTISEMENT)
        # RFC 4861 7.1.2: ICMP length is 24 or more octets.
        body = _body(message, 16, "Neighbor Advertisement")
        flags = int.from_bytes(message.rest_of_header, "big")
        return cls(IPv6Address(body[:16]), bool(flags & NA_ROUTER), bool(flags & NA_SOLICITED),
                   bool(flags & NA_OVERRIDE), parse_nd_options(body[16:], HEADER_LENGTH + 16))

    def message(self) -> Icmpv6Message:
        flags = ((NA_ROUTER if self.router else 0) | (NA_SOLICITED if self.solicited else 0)
                 | (NA_OVERRIDE if self.override else 0))
        return Icmpv6Message(Icmpv6Type.NEIGHBOR_ADVERTISEMENT, 0, flags.to_bytes(4, "big"),
                             self.target.packed + _options_bytes(self.options))


REDIRECT_FIXED_LENGTH = 8 + 32  # ICMPv6 header, target, destination


@dataclass(frozen=True, slots=True)
class Redirect:
    """Redirect (RFC 4861 4.5): 4 reserved octets, the target (a better first hop), the
    destination being redirected, options (target link-layer address, redirected header)."""

    target: IPv6Address
    destination: IPv6Address
    options: tuple[NdOption, ...] = ()

    def __post_init__(self) -> None:
        for name in ("target", "destination"):
            if not isinstance(getattr(self, name), IPv6Address):
                object.__setattr__(self, name, IPv6Address(getattr(self, name)))

    @classmethod
    def from_message(cls, message: Icmpv6Message) -> Redirect:
        _check_type(message, Icmpv6Type.REDIRECT)
        # RFC 4861 8.1: ICMP length is 40 or more octets.
        body = _body(message, 32, "Redirect")
        return cls(IPv6Address(body[:16]), IPv6Address(body[16:32]), parse_nd_options(body[32:], HEADER_LENGTH + 32))

    def message(self) -> Icmpv6Message:
        return Icmpv6Message(Icmpv6Type.REDIRECT, 0, bytes(4),
                             self.target.packed + self.destination.packed + _options_bytes(self.options))


# ----------------------------------------------------------------------------- MLD


MLDV1_LENGTH = 24  # RFC 2710 3: every MLDv1 message, and RFC 3810 8.1: an MLDv1 Query
MLDV2_QUERY_MINIMUM = 28  # RFC 3810 5.1
QUERY_TAIL = struct.Struct("!BBH")  # Resv|S|QRV, QQIC, Number of Sources


def decode_exponential(code: int, threshold: int, mantissa_bits: int) -> int:
    """RFC 3810 5.1.3 and 5.1.9: a code below ``threshold`` is the value itself; otherwise
    1|exp|mant gives (mant | 1 << mantissa_bits) << (exp + 3)."""
    if code < threshold:
        return code
    exponent = (code >> mantissa_bits) & 0x07
    mantissa = code & ((1 << mantissa_bits) - 1)
    return (mantissa | 1 << mantissa_bits) << (exponent + 3)


@dataclass(frozen=True, slots=True)
class MldQuery:
    """A Multicast Listener Query (type 130): MLDv2 (RFC 3810 5.1) or, 24 octets long, MLDv1
    (RFC 2710 3). The multicast address is :: for a General Query.

        +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
        |  Type = 130   |      Code     |           Checksum            |
        +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
        |    Maximum Response Code      |           Reserved            |
        +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
        *                    Multicast Address (128)                    *
        +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
        | Resv  |S| QRV |     QQIC      |     Number of Sources (N)     |   (MLDv2 only)
        +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
        *                 Source Addresses [1..N] (128 each)            *
        +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
    """

    maximum_response_code: int
    multicast_address: IPv6Address = IPv6Address("::")
    sources: tuple[IPv6Address, ...] = ()
    suppress_router_processing: bool = False
    robustness: int = 0
    query_interval_code: int = 0
    version: int = 2

    def __post_init__(self) -> None:
        if not isinstance(self.multicast_address, IPv6Address):
            object.__setattr__(self, "multicast_address", IPv6Address(self.multicast_address))
        object.__setattr__(self, "sources", tuple(IPv6Address(s) for s in self.sources))
        if self.version not in (1, 2):
            raise ValueError(f"MLD version {self.version} is not 1 or 2")
        if self.version == 1 and (self.sources or self.suppress_router_processing or self.robustness
                                  or self.query_interval_code):
            raise ValueError("an MLDv1 query has no sources, S flag, QRV or QQIC (RFC 2710 3)")
        if not 0 <= self.maximum_response_code <= 0xFFFF or not 0 <= self.robustness <= 7 \
                or not 0 <= self.query_interval_code <= 255:
            raise ValueError("maximum response code, QRV or QQIC out of range")

    @property
    def is_general(self) -> bool:
        """RFC 3810 5.1.5: a General Query has the unspecified multicast address."""
        return self.multicast_address == IPv6Address("::")

    @property
    def maximum_response_delay_ms(self) -> int:
        """RFC 3810 5.1.3 (in MLDv1, RFC 2710 3.4, the code is the delay itself)."""
        if self.version == 1:
            return self.maximum_response_code
        return decode_exponential(self.maximum_response_code, 32768, 12)

    @property
    def query_interval_s(self) -> int:
        """RFC 3810 5.1.9: the querier's query interval (QQIC decoded)."""
        return decode_exponential(self.query_interval_code, 128, 4)

    @classmethod
    def from_message(cls, message: Icmpv6Message) -> MldQuery:
        _check_type(message, Icmpv6Type.MLD_QUERY)
        body = join(message.payload)
        size = HEADER_LENGTH + len(body)
        maximum_response_code = int.from_bytes(message.rest_of_header[:2], "big")
        # RFC 3810 8.1: a query of 24 octets is MLDv1, of 28 or more MLDv2; any other length
        # MUST be silently ignored.
        if size == MLDV1_LENGTH:
            return cls(maximum_response_code, IPv6Address(body[:16]), version=1)
        if size < MLDV2_QUERY_MINIMUM:
            raise ParseError("ICMPv6", "mld_bad_query_length", f"query of {size} bytes is neither 24 nor 28 or more")
        flags, qqic, count = QUERY_TAIL.unpack_from(body, 16)
        if 20 + 16 * count > len(body):
            raise ParseError("ICMPv6", "mld_truncated", f"query with {count} sources has only {len(body) - 20} "
                                                        f"bytes for them")
        sources = tuple(IPv6Address(body[20 + 16 * i:36 + 16 * i]) for i in range(count))
        return cls(maximum_response_code, IPv6Address(body[:16]), sources, bool(flags & 0x08), flags & 0x07, qqic)

    def message(self) -> Icmpv6Message:
        rest = self.maximum_response_code.to_bytes(2, "big") + bytes(2)
        body = self.multicast_address.packed
        if self.version == 2:
            flags = (0x08 if self.suppress_router_processing else 0) | self.robustness
            body += QUERY_TAIL.pack(flags, self.query_interval_code, len(self.sources))
            body += b"".join(source.packed for source in self.sources)
        return Icmpv6Message(Icmpv6Type.MLD_QUERY, 0, rest, body)


class RecordType(IntEnum):
    """RFC 3810 5.2.12: multicast address record types."""

    MODE_IS_INCLUDE = 1
    MODE_IS_EXCLUDE = 2
    CHANGE_TO_INCLUDE_MODE = 3
    CHANGE_TO_EXCLUDE_MODE = 4
    ALLOW_NEW_SOURCES = 5
    BLOCK_OLD_SOURCES = 6


RECORD_HEAD = struct.Struct("!BBH16s")  # record type, aux data len (32-bit words), N, address


@dataclass(frozen=True, slots=True)
class MulticastAddressRecord:
    """One record of an MLDv2 Report (RFC 3810 5.2.4).

        +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
        |  Record Type  |  Aux Data Len |     Number of Sources (N)     |
        +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
        *                       Multicast Address                       *
        *                       Source Address [1..N]                   *
        *                         Auxiliary Data                        *
        +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
    """

    record_type: int
    multicast_address: IPv6Address
    sources: tuple[IPv6Address, ...] = ()
    auxiliary_data: bytes = b""

    def __post_init__(self) -> None:
        if not isinstance(self.multicast_address, IPv6Address):
            object.__setattr__(self, "multicast_address", IPv6Address(self.multicast_address))
        object.__setattr__(self, "sources", tuple(IPv6Address(s) for s in self.sources))
        if not 0 <= self.record_type <= 255 or len(self.sources) > 0xFFFF:
            raise ValueError("record type or number of sources out of range")
        if len(self.auxiliary_data) % 4 or len(self.auxiliary_data) > 255 * 4:
            raise ValueError(f"auxiliary data of {len(self.auxiliary_data)} bytes is not 32-bit words up to 255")

    def __bytes__(self) -> bytes:
        return (RECORD_HEAD.pack(self.record_type, len(self.auxiliary_data) // 4, len(self.sources),
                                 self.multicast_address.packed)
                + b"".join(source.packed for source in self.sources) + self.auxiliary_data)


@dataclass(frozen=True, slots=True)
class MldReport:
    """An MLDv2 Report (RFC 3810 5.2): type 143, a reserved octet, checksum, 2 reserved octets,
    the number of records, the records."""

    records: tuple[MulticastAddressRecord, ...] = ()

    def __post_init__(self) -> None:
        object.__setattr__(self, "records", tuple(self.records))
        if len(self.records) > 0xFFFF:
            raise ValueError("more than 65535 records")

    @classmethod
    def from_message(cls, message: Icmpv6Message) -> MldReport:
        _check_type(message, Icmpv6Type.MLDV2_REPORT)
        body = join(message.payload)
        count = int.from_bytes(message.rest_of_header[2:], "big")
        records: list[MulticastAddressRecord] = []
        index = 0
        for number in range(count):
            if index + RECORD_HEAD.size > len(body):
                raise ParseError("ICMPv6", "mld_truncated", f"record {number + 1} of {count} is missing")
            record_type, auxiliary_words, sources, address = RECORD_HEAD.unpack_from(body, index)
            end = index + RECORD_HEAD.size + 16 * sources + 4 * auxiliary_words
            if end > len(body):
                raise ParseError("ICMPv6", "mld_truncated", f"record {number + 1} runs past the report")
            start = index + RECORD_HEAD.size
            records.append(MulticastAddressRecord(
                record_type, IPv6Address(address),
                tuple(IPv6Address(body[start + 16 * i:start + 16 * i + 16]) for i in range(sources)),
                body[start + 16 * sources:end]))
            index = end
        # Anything after the records is ignored (RFC 3810 5.2.10: the records fill the report).
        return cls(tuple(records))

    def message(self) -> Icmpv6Message:
        return Icmpv6Message(Icmpv6Type.MLDV2_REPORT, 0, len(self.records).to_bytes(4, "big"),
                             b"".join(bytes(record) for record in self.records))


@dataclass(frozen=True, slots=True)
class MldV1Message:
    """An MLDv1 Report (131) or Done (132) (RFC 2710 3): maximum response delay (0 when
    sent), 2 reserved octets, the multicast address; 24 octets in all."""

    type: int
    multicast_address: IPv6Address
    maximum_response_delay: int = 0

    def __post_init__(self) -> None:
        if self.type not in (Icmpv6Type.MLDV1_REPORT, Icmpv6Type.MLDV1_DONE):
            raise ValueError(f"ICMPv6 type {self.type} is not an MLDv1 Report or Done")
        if not isinstance(self.multicast_address, IPv6Address):
            object.__setattr__(self, "multicast_address", IPv6Address(self.multicast_address))

    @classmethod
    def from_message(cls, message: Icmpv6Message) -> MldV1Message:
        if message.type not in (Icmpv6Type.MLDV1_REPORT, Icmpv6Type.MLDV1_DONE):
            raise ValueError(f"ICMPv6 type {message.type} is not an MLDv1 Report or Done")
        body = join(message.payload)
        # RFC 2710 3: the message is 24 octets; shorter cannot carry the address (longer: the
        # rest is ignored, RFC 2710 5 "the length ... is at least 24 octets").
        if HEADER_LENGTH + len(body) < MLDV1_LENGTH:
            raise ParseError("ICMPv6", "mld_truncated", f"MLDv1 message of {HEADER_LENGTH + len(body)} bytes < 24")
        return cls(message.type, IPv6Address(body[:16]), int.from_bytes(message.rest_of_header[:2], "big"))

    def message(self) -> Icmpv6Message:
        return Icmpv6Message(self.type, 0, self.maximum_response_delay.to_bytes(2, "big") + bytes(2),
                             self.multicast_address.packed)


#: Which class reads each ND and MLD type's body (``decode``).
BODY_DECODERS = {
    Icmpv6Type.ROUTER_SOLICITATION: RouterSolicitation.from_message,
    Icmpv6Type.ROUTER_ADVERTISEMENT: RouterAdvertisement.from_message,
    Icmpv6Type.NEIGHBOR_SOLICITATION: NeighborSolicitation.from_message,
    Icmpv6Type.NEIGHBOR_ADVERTISEMENT: NeighborAdvertisement.from_message,
    Icmpv6Type.REDIRECT: Redirect.from_message,
    Icmpv6Type.MLD_QUERY: MldQuery.from_message,
    Icmpv6Type.MLDV1_REPORT: MldV1Message.from_message,
    Icmpv6Type.MLDV1_DONE: MldV1Message.from_message,
    Icmpv6Type.MLDV2_REPORT: MldReport.from_message,
}


def decode(message: Icmpv6Message) -> object:
    """The ND or MLD value of a message of those types, else the message itself; ParseError when
    its body cannot be read."""
    decoder = BODY_DECODERS.get(message.type)
    return decoder(message) if decoder else message
