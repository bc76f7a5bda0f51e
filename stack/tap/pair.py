"""An in-memory wire: two devices joined by a Unix datagram socket pair (no root needed).

Read first: unix(7) -- SOCK_DGRAM keeps message boundaries, so one send is one frame and one
receive is one frame, as on a TAP device; the fds work with selectors and, being non-blocking,
raise BlockingIOError when empty, just as a TAP fd does.
"""

from __future__ import annotations

import errno
import logging
import socket
from collections.abc import Sequence
from typing import Self

from stack.buffers import Buffer
from stack.stats import Stats
from stack.tap.base import Device, DeviceError, DeviceGone, Medium

log = logging.getLogger(__name__)

#: socket.MSG_TRUNC as a plain int: testing a flag against the IntFlag member costs more than the read.
MSG_TRUNC = int(socket.MSG_TRUNC)
ETHERNET_HEADER_LEN = 14
VLAN_TAG_LEN = 4

#: Sending fails with one of these once the other end has been closed (unix(7)).
PEER_GONE_ERRNOS = {errno.ECONNREFUSED, errno.ENOTCONN, errno.EPIPE, errno.ECONNRESET}


def device_pair(mtu: int = 1500, medium: Medium = "ethernet") -> tuple[PairDevice, PairDevice]:
    """Two devices of the same medium: what one sends, the other receives."""
    left, right = socket.socketpair(socket.AF_UNIX, socket.SOCK_DGRAM)
    return PairDevice(left, "pair0", mtu, medium), PairDevice(right, "pair1", mtu, medium)


class PairDevice(Device):
    """One end of the in-memory wire.

    Frames larger than the receive buffer (MTU + Ethernet header + one 802.1Q tag) are dropped
    and counted as ``rx_truncated``. A full queue at the other end drops the frame being sent
    (``tx_queue_full``), as a full transmit queue would. Closing the other end is noticed on
    the next send (DeviceGone); a receive just finds nothing.
    """

    def __init__(self, sock: socket.socket, name: str, mtu: int, medium: Medium) -> None:
        sock.setblocking(False)
        self._sock = sock
        self.name = name
        self.mtu = mtu
        self.medium: Medium = medium
        self.stats = Stats()
        #: The counters themselves: a frame's increments go straight to them (per frame, a
        #: method call costs more than the addition).
        self._counters = self.stats.counters
        self._buffer = bytearray(mtu + ETHERNET_HEADER_LEN + VLAN_TAG_LEN)
        self._view = memoryview(self._buffer)

    def recv(self, now: float) -> memoryview | None:
        """One frame as a view of the receive buffer (valid until the next ``recv``), or None."""
        while True:
            try:
                received, _, flags, _ = self._sock.recvmsg_into([self._view])
            except BlockingIOError:
                return None
            except OSError as error:
                raise self._failure(error) from None
            if flags & MSG_TRUNC:
                self.stats.count("rx_truncated")
                log.debug("%s: frame larger than %d bytes dropped", self.name, len(self._buffer))
                continue
            counters = self._counters
            counters["rx_frames"] += 1
            counters["rx_bytes"] += received
            return self._view[:received]

    def send(self, frame: Sequence[Buffer], now: float) -> None:
        """Send one frame, given as buffers in wire order, with a single sendmsg."""
        try:
            sent = self._sock.sendmsg(frame)
        except BlockingIOError:
            self.stats.count("tx_queue_full")
            log.debug("%s: the other end's queue is full, frame dropped", self.name)
            return
        except OSError as error:
            raise self._failure(error) from None
        counters = self._counters
        counters["tx_frames"] += 1
        counters["tx_bytes"] += sent

    def _failure(self, error: OSError) -> DeviceError:
        if error.errno in PEER_GONE_ERRNOS:
            return DeviceGone(f"{self.name}: the other end of the pair was closed")
        return DeviceError(f"{self.name}: {error.strerror}")

    def fileno(self) -> int:
        return self._sock.fileno()

    def close(self) -> None:
        """Close this end (closing twice is fine)."""
        self._sock.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"PairDevice({self.name!r}, mtu={self.mtu}, medium={self.medium!r})"
