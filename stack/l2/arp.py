"""ARP packets for IPv4 over Ethernet (RFC 826).

     0                   1                   2                   3
     0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1
    +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
    |     Hardware type (ar$hrd)    |     Protocol type (ar$pro)    |
    +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
    | HW len (ar$hln)|Proto len(ar$pln)|       Operation (ar$op)    |
    +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
    |        Sender hardware address (ar$sha), 6 octets             |
    +                               +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
    |                               | Sender protocol address       |
    +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+ (ar$spa), 4 octets            |
    |                               |                               |
    +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+                               +
    |        Target hardware address (ar$tha), 6 octets             |
    +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
    |            Target protocol address (ar$tpa), 4 octets         |
    +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
"""

from __future__ import annotations

import struct
from dataclasses import dataclass
from enum import IntEnum
from ipaddress import IPv4Address

from stack.buffers import Buffer
from stack.errors import ParseError
from stack.l2.ethernet import EtherType, MacAddress

FIXED = struct.Struct("!HHBBH")  # hrd, pro, hln, pln, op
PACKET = struct.Struct("!HHBBH6s4s6s4s")
PACKET_LENGTH = PACKET.size  # 28 for Ethernet/IPv4
HARDWARE_ETHERNET = 1  # ar$hrd for Ethernet (RFC 826: "ares_hrd$Ethernet")


class ArpOp(IntEnum):
    REQUEST = 1
    REPLY = 2


def read(data: Buffer) -> tuple[int, int, int, bytes, bytes, bytes, bytes]:
    """The fields of an ARP packet as they are on the wire, without building any object:
    (hardware type, protocol type, operation, sender MAC, sender IP, target MAC, target IP), the
    addresses as bytes. Trailing bytes (Ethernet padding) are ignored.

    Only 6-byte hardware and 4-byte protocol addresses can be read here; other values are a
    ParseError (we cannot even find the fields). Hardware and protocol *types* are policy, checked
    by the link layer.
    """
    size = len(data)
    if size >= PACKET_LENGTH:  # the usual case: one unpack
        hardware_type, protocol_type, hardware_length, protocol_length, operation, sha, spa, tha, tpa = (
            PACKET.unpack_from(data))
        if hardware_length == 6 and protocol_length == 4:
            return hardware_type, protocol_type, operation, sha, spa, tha, tpa
    elif size < FIXED.size:
        raise ParseError("ARP", "truncated", "packet of %d bytes < fixed part %d", size, FIXED.size)
    else:
        _, _, hardware_length, protocol_length, _ = FIXED.unpack_from(data)
        if hardware_length == 6 and protocol_length == 4:
            raise ParseError("ARP", "truncated", "packet of %d bytes < %d", size, PACKET_LENGTH)
    raise ParseError("ARP", "bad_address_length", "address lengths hln=%d pln=%d, expected 6 and 4",
                     hardware_length, protocol_length)


@dataclass(frozen=True, slots=True)
class ArpPacket:
    """One ARP packet. Field names spell out RFC 826's: ``sender_mac`` is ar$sha, and so on."""

    operation: int
    sender_mac: MacAddress
    sender_ip: IPv4Address
    target_mac: MacAddress
    target_ip: IPv4Address
    hardware_type: int = HARDWARE_ETHERNET
    protocol_type: int = EtherType.IPV4

    def __post_init__(self) -> None:
        if not isinstance(self.sender_mac, MacAddress):
            object.__setattr__(self, "sender_mac", MacAddress(self.sender_mac))
        if not isinstance(self.target_mac, MacAddress):
            object.__setattr__(self, "target_mac", MacAddress(self.target_mac))
        if not isinstance(self.sender_ip, IPv4Address):
            object.__setattr__(self, "sender_ip", IPv4Address(self.sender_ip))
        if not isinstance(self.target_ip, IPv4Address):
            object.__setattr__(self, "target_ip", IPv4Address(self.target_ip))
        for name in ("operation", "hardware_type", "protocol_type"):
            if not 0 <= getattr(self, name) <= 0xFFFF:
                raise ValueError(f"ARP {name} {getattr(self, name)} does not fit 16 bits")

    @classmethod
    def parse(cls, data: Buffer) -> ArpPacket:
        """Read an ARP packet; trailing bytes (Ethernet padding) are ignored (``read``'s rules)."""
        hardware_type, protocol_type, operation, sha, spa, tha, tpa = read(data)
        return cls(operation, MacAddress(sha), IPv4Address(spa), MacAddress(tha), IPv4Address(tpa),
                   hardware_type, protocol_type)

    def __bytes__(self) -> bytes:
        return PACKET.pack(
            self.hardware_type,
            self.protocol_type,
            6,
            4,
            self.operation,
            self.sender_mac,
            self.sender_ip.packed,
            self.target_mac,
            self.target_ip.packed,
        )

    @property
    def is_gratuitous(self) -> bool:
        """Sender and target protocol addresses equal: an announcement (RFC 5227 3)."""
        return self.sender_ip == self.target_ip
