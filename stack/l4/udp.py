"""UDP datagrams (RFC 768; host requirements in RFC 1122 4.1).

     0      7 8     15 16    23 24    31
    +--------+--------+--------+--------+
    |     Source      |   Destination   |
    |      Port       |      Port       |
    +--------+--------+--------+--------+
    |                 |                 |
    |     Length      |    Checksum     |
    +--------+--------+--------+--------+
    |
    |          data octets ...
    +---------------- ...

Length counts the header and the data. The checksum covers the IPv4 pseudo-header
(``stack.l3.seam``), the header and the data; 0 means the sender computed none.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass, field
from collections.abc import Callable, Iterable
from ipaddress import IPv4Address, IPv6Address

from stack.buffers import Buffer, Frame, Payload, chunks, join, length
from stack.checksum import internet_checksum
from stack.errors import ParseError
from stack.l3.seam import IpProto, pseudo_header, transport_pseudo_header

HEADER = struct.Struct("!HHHH")
HEADER_LENGTH = HEADER.size  # 8
MAXIMUM_LENGTH = 0xFFFF


@dataclass(frozen=True, slots=True)
class UdpDatagram:
    """One UDP datagram. The checksum is verified by ``parse`` and computed on output, never
    stored; the length is derived from the payload.

    Building needs the addresses of the IPv4 datagram around it (the pseudo-header), so there
    is no ``__bytes__``: ``buffers(source, destination)`` and ``to_bytes(source, destination)``
    take them, as smoltcp's ``UdpRepr::emit`` does. Parsed, ``payload`` is a zero-copy view.
    """

    source_port: int
    destination_port: int
    payload: Payload = field(default=b"", compare=False)

    def __post_init__(self) -> None:
        for name in ("source_port", "destination_port"):
            if not 0 <= getattr(self, name) <= 0xFFFF:
                raise ValueError(f"{name.replace('_', ' ')} {getattr(self, name)} does not fit 16 bits")
        if self.length > MAXIMUM_LENGTH:
            raise ValueError(f"UDP datagram of {self.length} bytes > {MAXIMUM_LENGTH}")

    @property
    def length(self) -> int:
        """The Length field: header and data."""
        return HEADER_LENGTH + length(self.payload)

    @classmethod
    def parse(cls, data: Buffer, source: IPv4Address, destination: IPv4Address) -> UdpDatagram:
        """Read the UDP datagram in an IPv4 datagram from ``source`` to ``destination``."""
        size = len(data)
        if size < HEADER_LENGTH:
            raise ParseError("UDP", "truncated", f"datagram of {size} bytes < header {HEADER_LENGTH}")
        source_port, destination_port, udp_length, carried = HEADER.unpack_from(data)
        # RFC 768: Length counts the header; it cannot run past the IP datagram that carries it.
        if udp_length < HEADER_LENGTH:
            raise ParseError("UDP", "bad_length", f"length {udp_length} < header {HEADER_LENGTH}")
        if udp_length > size:
            raise ParseError("UDP", "bad_length", f"length {udp_length} > datagram {size}")
        view = memoryview(data)[:udp_length]
        # RFC 1122 4.1.3.4: a non-zero checksum MUST be verified (pseudo-header included), and a
        # datagram that fails is silently discarded. RFC 768: 0 means none was computed.
        if carried and internet_checksum([pseudo_header(source, destination, IpProto.UDP, udp_length), view]):
            computed = checksum(source, destination, [view[:6], b"\x00\x00", view[HEADER_LENGTH:]])
            raise ParseError("UDP", "bad_checksum",
                             f"checksum {carried:#06x} does not verify (should be {computed:#06x})")
        return cls(source_port, destination_port, view[HEADER_LENGTH:])

    def header(self, source: IPv4Address | IPv6Address, destination: IPv4Address | IPv6Address,
               summed: bool = True) -> bytes:
        """The 8-byte header; its checksum (unless ``summed`` is False: 0, none) covers the
        pseudo-header, the header and the payload (not copied)."""
        unsummed = HEADER.pack(self.source_port, self.destination_port, self.length, 0)
        if not summed:
            return unsummed  # RFC 768: an all-zero checksum means the sender computed none
        value = checksum(source, destination, [unsummed, *chunks(self.payload)])
        return HEADER.pack(self.source_port, self.destination_port, self.length, value)

    def buffers(self, source: IPv4Address | IPv6Address, destination: IPv4Address | IPv6Address,
                summed: bool = True) -> Frame:
        """The datagram as buffers: the header, then the payload chunks as they are."""
        return [self.header(source, destination, summed), *chunks(self.payload)]

    def to_bytes(self, source: IPv4Address, destination: IPv4Address, summed: bool = True) -> bytes:
        return join(self.buffers(source, destination, summed))

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, UdpDatagram):
            return NotImplemented
        return (self.source_port == other.source_port and self.destination_port == other.destination_port
                and join(self.payload) == join(other.payload))

    __hash__ = None  # type: ignore[assignment]


def checksum(source: IPv4Address | IPv6Address, destination: IPv4Address | IPv6Address, datagram: Payload) -> int:
    """The Checksum field for ``datagram`` (its header with the checksum field 0, then data)
    from ``source`` to ``destination`` (either family: RFC 768, RFC 8200 8.1). RFC 768: a
    computed 0 is sent as all ones (0xFFFF)."""
    pseudo = transport_pseudo_header(source, destination, IpProto.UDP, length(datagram))
    return internet_checksum([pseudo, *chunks(datagram)]) or 0xFFFF


#: A UDP service (``stack.l4.services``): the data of a datagram and the time, to the data of
#: the answer (None: no answer).
UdpService = Callable[[bytes, float], "bytes | None"]
#: Source ports a service never answers: 0 (RFC 768: no port to answer to) and the ports of
#: services that answer every datagram (echo 7, daytime 13, quote 17, chargen 19, time 37):
#: two such services answering each other would loop for ever (CERT CA-1996-01).
REFUSED_SOURCE_PORTS = frozenset({0, 7, 13, 17, 19, 37})


class UdpPorts:
    """The UDP ports of a host that run a service (every other port is unreachable: the host
    answers with ICMP). ``listen(port, service, addresses)``; ``service(address, port)``."""

    def __init__(self) -> None:
        self._services: dict[tuple[IPv4Address | IPv6Address | None, int], UdpService] = {}

    def listen(self, port: int, service: UdpService,
               addresses: Iterable[IPv4Address | IPv6Address] | None = None) -> None:
        """Run ``service`` on ``port`` (of ``addresses``, or every address of the host)."""
        if not 1 <= port <= 65535:
            raise ValueError(f"port {port} outside 1..65535")
        targets: list[IPv4Address | IPv6Address | None] = [None] if addresses is None else list(addresses)
        for address in targets:
            if (address, port) in self._services:
                where = "every address" if address is None else str(address)
                raise ValueError(f"UDP port {port} is already open on {where}")
        for address in targets:
            self._services[(address, port)] = service

    def service(self, address: IPv4Address | IPv6Address, port: int) -> UdpService | None:
        if not self._services:
            return None
        return self._services.get((address, port)) or self._services.get((None, port))
