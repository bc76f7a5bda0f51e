"""A device that records every frame it receives and sends to a pcap file (tcpdump -w).

Read first: the pcap file format (draft-ietf-opsawg-pcap) and its link types (LINKTYPE_ETHERNET 1,
LINKTYPE_RAW 101; dpkt.pcap.DLT_RAW is 12 on Linux, which readers take for something else).
Wrap any device: ``PcapDevice(TapDevice("tap0"), open("trace.pcap", "wb"))``.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import BinaryIO

import dpkt

from stack.buffers import Buffer, join
from stack.packet_info import HEADER_LENGTH as PACKET_INFO_LENGTH
from stack.stats import Stats
from stack.tap.base import Device, Medium

log = logging.getLogger(__name__)

LINKTYPE_ETHERNET = 1
LINKTYPE_RAW = 101  # bare IPv4 or IPv6 packets: what a TUN device carries
LINKTYPES: dict[str, int] = {"ethernet": LINKTYPE_ETHERNET, "ip": LINKTYPE_RAW}
SNAPLEN = 65535


class PcapDevice(Device):
    """``inner`` with a recorder: frames in and out go to ``file``, flushed one by one.

    Timestamps are the loop's ``now`` plus ``timestamp_offset`` (the caller passes wall-clock
    minus monotonic time); this module never reads the clock. The file stays the caller's: it
    is flushed after every frame (so a pipe into Wireshark sees it at once) but not closed. If
    writing the capture fails (the reader of the pipe went away), capturing stops with a
    warning and the device keeps working.
    """

    def __init__(self, inner: Device, file: BinaryIO, timestamp_offset: float = 0.0,
                 packet_info: bool | None = None) -> None:
        """``packet_info``: every packet through ``inner`` starts with the 4-byte TUN
        packet-information header (default: what ``inner.packet_info`` says, False if nothing)."""
        self.inner = inner
        self.timestamp_offset = timestamp_offset
        self._file: BinaryIO | None = file
        self._writer = dpkt.pcap.Writer(file, snaplen=SNAPLEN, linktype=LINKTYPES[inner.medium])
        if packet_info is None:
            packet_info = getattr(inner, "packet_info", False)
        #: A TUN device with packet information: the capture is raw IP, so the 4-byte header
        #: in front of every packet is left out of it.
        self._skip = PACKET_INFO_LENGTH if packet_info else 0
        file.flush()

    @property
    def medium(self) -> Medium:
        return self.inner.medium

    @property
    def mtu(self) -> int:
        return self.inner.mtu  # type: ignore[attr-defined]

    @property
    def stats(self) -> Stats:
        return self.inner.stats

    def fileno(self) -> int:
        return self.inner.fileno()

    def recv(self, now: float) -> Buffer | None:
        frame = self.inner.recv(now)
        if frame is not None:
            self._record(frame, now)
        return frame

    def send(self, frame: Sequence[Buffer], now: float) -> None:
        self.inner.send(frame, now)
        self._record(join(frame), now)  # this joined copy is the capture's; the wire got buffers

    def _record(self, frame: Buffer, now: float) -> None:
        if self._file is None:
            return
        try:
            self._writer.writepkt(frame[self._skip:], ts=now + self.timestamp_offset)
            self._file.flush()
        except (OSError, ValueError) as error:  # ValueError: the file was closed
            log.warning("capture stopped: %s", error)
            self._file = None

    def next_deadline(self, now: float) -> float | None:
        """The wrapped device's timer (a ``FaultInjector`` holding delayed frames, say)."""
        return self.inner.next_deadline(now)

    def poll(self, now: float) -> None:
        self.inner.poll(now)

    def close(self) -> None:
        self.inner.close()

    def __repr__(self) -> str:
        return f"PcapDevice({self.inner!r})"
