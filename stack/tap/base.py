"""What every device offers the loop: one frame in, one frame (as buffers) out.

A device is dumb and composable (smoltcp's ``phy``): it moves whole frames, counts what went
wrong on its file descriptor, and knows nothing of Ethernet or IP. Wrappers (pcap capture,
fault injection) take a device and are a device. Devices neither wait nor read the clock:
``recv`` returns None at once when nothing is there, and time is the ``now`` the loop passes.
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

    # The device's timer, for a device that holds frames back (``FaultInjector``). Every device
    # has one (subclass ``Device`` for these defaults: no timer); the loop calls ``poll`` when
    # ``next_deadline`` is due, then ``recv`` for the held frames in that are due.

    def next_deadline(self, now: float) -> float | None:
        """When held frames are next due; None (the default) when none are held."""
        return None

    def flush(self) -> None:
        """The end of a wake-up: write out anything kept in a buffer (a capture file). The loop
        calls it once per wake-up, after every frame of it was received and answered."""

    def poll(self, now: float) -> None:
        """Send the held frames out that are due (the default holds none)."""
