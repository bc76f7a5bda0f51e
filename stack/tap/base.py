"""What every device offers the loop: one frame in, one frame (as buffers) out.

A device is dumb and composable (smoltcp's ``phy``): it moves whole frames, counts what went
wrong on its file descriptor, and knows nothing of Ethernet or IP. Wrappers (pcap capture,
fault injection) take a device and are a device.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Literal, Protocol

from stack.buffers import Buffer
from stack.stats import Stats

Medium = Literal["ethernet", "ip"]


class DeviceError(Exception):
    """A device cannot be opened or used; the message is one line a user can act on."""


class DeviceGone(DeviceError):
    """The device went away while running (deleted, detached): fatal for the loop."""


class Device(Protocol):
    #: "ethernet" for TAP and the in-memory pair, "ip" for TUN.
    medium: Medium
    #: Device counters: rx_frames, tx_frames, and transient errors by name (tx_enobufs, ...).
    stats: Stats

    def fileno(self) -> int:
        """A file descriptor that is readable when a frame can be received."""
        ...

    def recv(self, now: float) -> Buffer | None:
        """One whole frame, or None when there is nothing to read now (never blocks).

        The returned buffer may be a view into a preallocated receive buffer: it is valid only
        until the next ``recv`` on this device. Copy what you keep.
        """
        ...

    def send(self, frame: Sequence[Buffer], now: float) -> None:
        """Send one frame given as buffers in wire order, with one writev/sendmsg.

        Transient failures (queue full, link down) are counted in ``stats`` and the frame is
        dropped; a device that has gone away raises ``DeviceGone``.
        """
        ...

    def close(self) -> None: ...

    # Optional, for a device that holds frames back (``stack.tap.fault.FaultInjector``):
    #   next_deadline(now) -> float | None   when held frames are next due (None: none held)
    #   poll(now) -> None                     send the held frames out that are due
    # The loop calls them, then ``recv`` for held frames in that are due.
