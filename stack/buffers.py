"""Frames as lists of buffers: the iovec path.

A frame on its way out is a *sequence of buffers* -- the Ethernet header, the IPv4 header, the
ICMP header, a memoryview of the payload -- handed to one ``os.writev`` (or ``socket.sendmsg``).
Each layer puts its header in front as one more buffer; nothing joins them before the device.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Union

#: Anything the kernel can read from: ``bytes``, ``bytearray`` or ``memoryview``.
Buffer = Union[bytes, bytearray, memoryview]

#: What a codec accepts as its payload when building: one buffer, or a sequence of them.
Payload = Union[Buffer, Sequence[Buffer]]

#: One frame (or datagram) to send, as buffers in wire order.
Frame = list[Buffer]


def chunks(payload: Payload) -> list[Buffer]:
    """The payload as a list of buffers (one buffer becomes a list of one)."""
    if isinstance(payload, (bytes, bytearray, memoryview)):
        return [payload]
    return list(payload)


def length(payload: Payload) -> int:
    """Total number of bytes in a payload, without joining it."""
    if isinstance(payload, (bytes, bytearray, memoryview)):
        return len(payload)
    return sum(map(len, payload))


def join(payload: Payload) -> bytes:
    """One ``bytes`` object. For tests, captures and traces only -- never on the send path."""
    if isinstance(payload, bytes):
        return payload
    return b"".join(chunks(payload))


def slice_buffers(payload: Payload, start: int, stop: int) -> list[Buffer]:
    """Bytes ``start`` to ``stop`` of a payload as buffers: views of the originals, no copy."""
    out: list[Buffer] = []
    offset = 0
    for chunk in chunks(payload):
        end = offset + len(chunk)
        if end > start and offset < stop:
            out.append(memoryview(chunk)[max(start - offset, 0):min(stop, end) - offset])
        offset = end
        if offset >= stop:
            break
    return out
