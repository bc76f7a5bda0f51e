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

A base module, not an l2 one: the header is the TUN driver's own framing, which the device
(sizing its buffer, noticing TUN_PKT_STRIP), pcap (leaving it out of a raw-IP capture) and the
point-to-point link (``stack.l2.point_to_point``: handing the packet up by protocol) all read,
and devices import only base modules. This is the one place that knows its format.
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

#: The protocol field holds an EtherType (<linux/if_ether.h> ETH_P_IP, ETH_P_IPV6; the same
#: numbers as ``stack.l2.ethernet.EtherType``, which a test checks).
ETH_P_IP = 0x0800
ETH_P_IPV6 = 0x86DD
#: Without the header, the protocol a packet's IP version number stands for (as the kernel
#: does for a TUN write opened with IFF_NO_PI: it reads the first nibble).
PROTOCOL_OF_VERSION = {4: ETH_P_IP, 6: ETH_P_IPV6}


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


def is_truncated(data: Buffer) -> bool:
    """Whether the header at the start of ``data`` (at least 4 bytes) has TUN_PKT_STRIP set."""
    return bool(FLAGS.unpack_from(data, 0)[0] & TUN_PKT_STRIP)


#: The header in front of every IPv4 packet we send (and nearly every one we receive).
IPV4_HEADER = header_bytes(ETH_P_IP)
