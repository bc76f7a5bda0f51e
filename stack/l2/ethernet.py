"""Ethernet II frames (RFC 894 for IPv4 over Ethernet; IEEE 802.3 for the addresses).

     0                   1                   2                   3
     0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1
    +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
    |                  Destination MAC address                      |
    +                               +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
    |                               |                               |
    +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+                               +
    |                    Source MAC address                         |
    +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
    |           EtherType           |   Payload (46-1500 octets)... |
    +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+

The frame check sequence is not seen on a TAP device: the kernel neither gives nor wants it.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass, field
from enum import IntEnum

from stack.buffers import Buffer, Frame, Payload, chunks, join, length
from stack.errors import ParseError

HEADER = struct.Struct("!6s6sH")
HEADER_LENGTH = HEADER.size  # 14
# RFC 894: the data field is 46 to 1500 octets; shorter payloads are padded with zeros.
MINIMUM_PAYLOAD = 46
_PADDING = bytes(MINIMUM_PAYLOAD)
_HEX_DIGITS = frozenset("0123456789abcdefABCDEF")


class EtherType(IntEnum):
    """EtherType values we know by name. Wire fields stay ``int``: unknown values never raise."""

    IPV4 = 0x0800
    ARP = 0x0806
    VLAN = 0x8100  # IEEE 802.1Q tag
    IPV6 = 0x86DD
    QINQ = 0x88A8  # IEEE 802.1ad


class MacAddress(bytes):
    """A 48-bit IEEE 802 MAC address: six bytes that print as ``02:00:00:00:00:01``."""

    __slots__ = ()

    def __new__(cls, value: bytes | bytearray | memoryview | str) -> MacAddress:
        if isinstance(value, str):
            parts = value.split(":")
            # int(p, 16) alone would also accept "+1", " 1" and non-ASCII digits: check the digits.
            if len(parts) != 6 or not all(1 <= len(p) <= 2 and all(c in _HEX_DIGITS for c in p) for p in parts):
                raise ValueError(f"MAC address {value!r} is not six colon-separated hex octets")
            try:
                value = bytes(int(p, 16) for p in parts)
            except ValueError:
                raise ValueError(f"MAC address {value!r} is not six colon-separated hex octets")
        if len(value) != 6:
            raise ValueError(f"a MAC address is 6 bytes, not {len(value)}")
        return super().__new__(cls, value)

    @property
    def is_broadcast(self) -> bool:
        return self == BROADCAST

    @property
    def is_multicast(self) -> bool:
        """The I/G bit (least significant bit of the first octet): a group address."""
        return bool(self[0] & 0x01)

    @property
    def is_locally_administered(self) -> bool:
        """The U/L bit (second bit of the first octet)."""
        return bool(self[0] & 0x02)

    def __str__(self) -> str:
        return self.hex(":")

    def __repr__(self) -> str:
        return f"MacAddress('{self}')"


def mac_text(raw: bytes) -> str:
    """Six bytes as a MAC is written (``02:00:00:00:00:01``), without building a ``MacAddress``."""
    return raw.hex(":")


BROADCAST = MacAddress(b"\xff" * 6)
ZERO = MacAddress(bytes(6))


@dataclass(frozen=True, slots=True)
class EthernetFrame:
    """An Ethernet II frame. ``payload`` is what follows the 14-byte header.

    Built with ``payload`` as one buffer or a list of buffers (the iovec path); ``buffers()``
    gives the whole frame as a list for one ``writev``. Parsed, ``payload`` is a zero-copy view.
    """

    destination: MacAddress
    source: MacAddress
    ethertype: int
    payload: Payload = field(default=b"", compare=False)

    def __post_init__(self) -> None:
        if not isinstance(self.destination, MacAddress):
            object.__setattr__(self, "destination", MacAddress(self.destination))
        if not isinstance(self.source, MacAddress):
            object.__setattr__(self, "source", MacAddress(self.source))
        if not 0 <= self.ethertype <= 0xFFFF:
            raise ValueError(f"EtherType {self.ethertype:#x} does not fit 16 bits")

    @classmethod
    def parse(cls, data: Buffer) -> EthernetFrame:
        if len(data) < HEADER_LENGTH:
            raise ParseError("Ethernet", "runt", "frame of %d bytes < header %d", len(data), HEADER_LENGTH)
        destination, source, ethertype = HEADER.unpack_from(data)
        return cls(MacAddress(destination), MacAddress(source), ethertype, memoryview(data)[HEADER_LENGTH:])

    def header(self) -> bytes:
        return HEADER.pack(self.destination, self.source, self.ethertype)

    def buffers(self, pad: bool = True) -> Frame:
        """The frame as buffers: header, payload chunks, and (RFC 894) zero padding to 60 bytes."""
        if pad:
            return frame_buffers(self.destination, self.source, self.ethertype, chunks(self.payload))
        return [self.header(), *chunks(self.payload)]

    def __bytes__(self) -> bytes:
        return join(self.buffers())

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, EthernetFrame):
            return NotImplemented
        return (
            self.destination == other.destination
            and self.source == other.source
            and self.ethertype == other.ethertype
            and join(self.payload) == join(other.payload)
        )

    __hash__ = None  # type: ignore[assignment]  # payload may be a mutable view


def frame_buffers(destination: MacAddress, source: MacAddress, ethertype: int,
                  payload: list[Buffer]) -> Frame:
    """A frame to send: the header, the payload buffers as they are, and padding if short.

    RFC 894: the data field is at least 46 octets; shorter payloads are padded with zeros.
    """
    out: Frame = [HEADER.pack(destination, source, ethertype), *payload]
    short = MINIMUM_PAYLOAD - length(payload)
    if short > 0:
        out.append(_PADDING[:short])
    return out
