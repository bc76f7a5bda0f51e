"""The TUN packet-information header (Linux ``struct tun_pi``, <linux/if_tun.h>).

     0                   1                   2                   3
     0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1
    +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
    |     Flags (host byte order)   |  Protocol (EtherType, network |
    |                               |  byte order)                  |
    +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
    |     The IP packet ...
    +-+-+-+-+-

A TUN device opened without IFF_NO_PI puts this in front of every packet, both ways. The only
flag is TUN_PKT_STRIP: the kernel cut the packet because the reader's buffer was too small.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass, field

from stack.buffers import Buffer
from stack.errors import ParseError

FLAGS = struct.Struct("=H")  # host byte order, as the kernel writes it
PROTOCOL = struct.Struct("!H")
HEADER_LENGTH = 4
TUN_PKT_STRIP = 0x0001


@dataclass(frozen=True, slots=True)
class PacketInfo:
    """``flags`` and ``protocol`` (an EtherType: 0x0800 for IPv4), then the packet."""

    flags: int
    protocol: int
    payload: Buffer = field(default=b"", compare=False)

    @property
    def truncated(self) -> bool:
        return bool(self.flags & TUN_PKT_STRIP)

    @classmethod
    def parse(cls, data: Buffer) -> PacketInfo:
        if len(data) < HEADER_LENGTH:
            raise ParseError("TUN", "runt", f"packet of {len(data)} bytes < packet information {HEADER_LENGTH}")
        (flags,) = FLAGS.unpack_from(data, 0)
        (protocol,) = PROTOCOL.unpack_from(data, 2)
        return cls(flags, protocol, memoryview(data)[HEADER_LENGTH:])

    def header(self) -> bytes:
        return header_bytes(self.protocol, self.flags)

    def __bytes__(self) -> bytes:
        return self.header() + bytes(self.payload)


def header_bytes(protocol: int, flags: int = 0) -> bytes:
    return FLAGS.pack(flags) + PROTOCOL.pack(protocol)
