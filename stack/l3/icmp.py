"""ICMP messages (RFC 792; host requirements in RFC 1122 3.2.2).

     0                   1                   2                   3
     0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1
    +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
    |     Type      |     Code      |          Checksum             |
    +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
    |      Rest of header (echo: Identifier | Sequence Number)      |
    +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
    |     Data ...
    +-+-+-+-+-

The checksum covers the whole ICMP message (header and data).
"""

from __future__ import annotations

import struct
from dataclasses import dataclass, field
from enum import IntEnum

from stack.buffers import Buffer, Frame, Payload, chunks, join
from stack.checksum import internet_checksum, update, verifies
from stack.errors import ParseError

HEADER = struct.Struct("!BBH4s")
HEADER_LENGTH = HEADER.size  # 8
ECHO = struct.Struct("!HH")


class IcmpType(IntEnum):
    """ICMP types we know by name (RFC 792). Wire fields stay ``int``."""

    ECHO_REPLY = 0
    DESTINATION_UNREACHABLE = 3
    SOURCE_QUENCH = 4
    REDIRECT = 5
    ECHO_REQUEST = 8
    TIME_EXCEEDED = 11
    PARAMETER_PROBLEM = 12
    TIMESTAMP_REQUEST = 13
    TIMESTAMP_REPLY = 14


@dataclass(frozen=True, slots=True)
class IcmpMessage:
    """One ICMP message. ``rest_of_header`` is the 4 bytes after the checksum, whose meaning
    depends on the type (for echo: identifier and sequence number)."""

    type: int
    code: int
    rest_of_header: bytes = bytes(4)
    payload: Payload = field(default=b"", compare=False)

    def __post_init__(self) -> None:
        if not 0 <= self.type <= 255 or not 0 <= self.code <= 255:
            raise ValueError(f"ICMP type {self.type} / code {self.code} do not fit 8 bits")
        if len(self.rest_of_header) != 4:
            raise ValueError(f"rest of header is 4 bytes, not {len(self.rest_of_header)}")

    @classmethod
    def echo(cls, type: int, identifier: int, sequence: int, payload: Payload = b"") -> IcmpMessage:
        """An echo request or reply (RFC 792 page 14)."""
        if not 0 <= identifier <= 0xFFFF or not 0 <= sequence <= 0xFFFF:
            raise ValueError(f"echo identifier {identifier} / sequence {sequence} do not fit 16 bits")
        return cls(type, 0, ECHO.pack(identifier, sequence), payload)

    @property
    def identifier(self) -> int:
        return ECHO.unpack(self.rest_of_header)[0]

    @property
    def sequence(self) -> int:
        return ECHO.unpack(self.rest_of_header)[1]

    @classmethod
    def parse(cls, data: Buffer) -> IcmpMessage:
        if len(data) < HEADER_LENGTH:
            raise ParseError("ICMP", "truncated", f"message of {len(data)} bytes < header {HEADER_LENGTH}")
        type_, code, checksum, rest = HEADER.unpack_from(data)
        view = memoryview(data)
        # RFC 1122 3.2.2: ICMP messages with a bad checksum are discarded (RFC 792: the checksum
        # covers the whole message).
        if not verifies(view):
            computed = internet_checksum([view[:2], b"\x00\x00", view[4:]])
            raise ParseError("ICMP", "bad_checksum",
                             f"checksum {checksum:#06x} does not verify (should be {computed:#06x})")
        return cls(type_, code, rest, view[HEADER_LENGTH:])

    def header(self) -> bytes:
        """The 8-byte header with the checksum over header and payload (no payload copy)."""
        return header_bytes(self.type, self.code, self.rest_of_header, self.payload)

    def buffers(self) -> Frame:
        return [self.header(), *chunks(self.payload)]

    def __bytes__(self) -> bytes:
        return join(self.buffers())

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, IcmpMessage):
            return NotImplemented
        return (
            self.type == other.type
            and self.code == other.code
            and self.rest_of_header == other.rest_of_header
            and join(self.payload) == join(other.payload)
        )

    __hash__ = None  # type: ignore[assignment]


def header_bytes(type: int, code: int, rest_of_header: bytes, payload: Payload) -> bytes:
    """An ICMP header whose checksum covers it and the payload (RFC 792), payload not copied."""
    unsummed = HEADER.pack(type, code, 0, rest_of_header)
    checksum = internet_checksum([unsummed, *chunks(payload)])
    return HEADER.pack(type, code, checksum, rest_of_header)


#: An echo reply's first word: type 0, code 0.
_ECHO_REPLY_FIRST_WORD = IcmpType.ECHO_REPLY << 8 | 0


def echo_reply_checksum(request_checksum: int, request_type_code: int, after_checksum: Buffer) -> int:
    """The checksum of the echo reply made from a verified echo request by rewriting its first
    word (type 8 and its code -> type 0, code 0); ``after_checksum`` is the reply's bytes after
    the checksum field (identifier, sequence number, data), the same as the request's.

    RFC 1624 eqn. 3: when one 16-bit word changes, update the old checksum instead of summing
    the whole message again. Eqn. 3 never yields 0xFFFF, the checksum of a message of all zeros
    (RFC 1624 3.: +0 and -0): when it says 0x0000, look whether the reply is all zeros.
    """
    checksum = update(request_checksum, request_type_code, _ECHO_REPLY_FIRST_WORD)
    if checksum == 0 and not any(after_checksum):
        return 0xFFFF
    return checksum
