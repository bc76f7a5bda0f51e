"""A device that records every frame it receives and sends to a pcap file (tcpdump -w), and a reader.

Read first: the pcap file format (draft-ietf-opsawg-pcap) and its link types (LINKTYPE_ETHERNET 1,
LINKTYPE_RAW 101; dpkt.pcap.DLT_RAW is 12 on Linux, which readers take for something else).
Wrap any device: ``PcapDevice(TapDevice("tap0"), open("trace.pcap", "wb"))``. Read one back
with ``PcapReader(open("trace.pcap", "rb"))``: it tells a frame cut by the capture's snapshot
length (legitimate) from a file that ends in the middle of a record (a damaged capture).
"""

from __future__ import annotations

import logging
import struct
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
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
    """``inner`` with a recorder: frames in and out go to ``file``, flushed once per wake-up.

    Timestamps are the loop's ``now`` plus ``timestamp_offset`` (the caller passes wall-clock
    minus monotonic time); this module never reads the clock. The file stays the caller's: it
    is flushed at the end of every wake-up of the loop (``flush``: a pipe into Wireshark sees each
    burst at once, without a write per frame) but not closed. If writing the capture fails (the
    reader of the pipe went away), capturing stops with a warning and the device keeps working.

    ``max_bytes`` with ``rotate`` bounds each file (tcpdump -C): before a frame's record would
    take the file past ``max_bytes``, ``rotate()`` is called to move the files aside and open
    the next one (None: it could not; capturing stops with a warning, so the bound holds), the
    device goes on in it (``reopen``) and closes the full one. So every file is a whole pcap
    file (its own header, whole records) and no frame is split or lost between two files. A
    file holds at least one frame: a single record larger than ``max_bytes`` goes alone into
    a file of its own (the CLI asks for a size that holds the largest frame, so it never does).
    """

    def __init__(self, inner: Device, file: BinaryIO, timestamp_offset: float = 0.0,
                 packet_info: bool | None = None, max_bytes: int | None = None,
                 rotate: Callable[[], BinaryIO | None] | None = None) -> None:
        """``packet_info``: every packet through ``inner`` starts with the 4-byte TUN
        packet-information header (default: what ``inner.packet_info`` says, False if nothing)."""
        if (max_bytes is None) != (rotate is None):
            raise ValueError("max_bytes and rotate go together")
        if max_bytes is not None and max_bytes <= FILE_HEADER_SIZE:
            raise ValueError(f"max_bytes {max_bytes} does not hold a pcap file header")
        self.inner = inner
        self.timestamp_offset = timestamp_offset
        self.max_bytes = max_bytes
        self._rotate = rotate
        self.rotations = 0  # files filled and moved aside
        self._file: BinaryIO | None = file
        self._writer = dpkt.pcap.Writer(file, snaplen=SNAPLEN, linktype=LINKTYPES[inner.medium])
        self._size = FILE_HEADER_SIZE  # bytes in the current file
        if packet_info is None:
            packet_info = getattr(inner, "packet_info", False)
        #: A TUN device with packet information: the capture is raw IP, so the 4-byte header
        #: in front of every packet is left out of it.
        self._skip = PACKET_INFO_LENGTH if packet_info else 0
        self._unflushed = False  # frames written since the last flush
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
        data = frame[self._skip:]
        size = RECORD_HEADER_SIZE + len(data)
        if (self.max_bytes is not None and self._size + size > self.max_bytes
                and self._size > FILE_HEADER_SIZE):
            self._next_file()  # between two frames: this one goes whole into the next file
            if self._file is None:
                return
        try:
            self._writer.writepkt(data, ts=now + self.timestamp_offset)
            self._size += size
            self._unflushed = True
        except (OSError, ValueError) as error:  # ValueError: the file was closed
            self._stop(error)

    def flush(self) -> None:
        if self._file is not None and self._unflushed:
            self._unflushed = False
            try:
                self._file.flush()
            except (OSError, ValueError) as error:
                self._stop(error)
        self.inner.flush()

    def reopen(self, file: BinaryIO) -> BinaryIO | None:
        """Go on capturing into ``file`` (log rotation: SIGHUP after the old file was moved):
        what was written so far is flushed to the old file, ``file`` starts with a pcap file
        header, and every frame from now on goes to it. Returns the old file, for the caller
        to close (None if capturing had stopped). Called between frames, so no frame is split
        or lost between the two files."""
        old = self._file
        if old is not None:
            try:
                old.flush()
            except (OSError, ValueError) as error:
                log.warning("capture: flushing the old file failed: %s", error)
        self._writer = dpkt.pcap.Writer(file, snaplen=SNAPLEN, linktype=LINKTYPES[self.inner.medium])
        file.flush()
        self._file = file
        self._size = FILE_HEADER_SIZE
        self._unflushed = False
        return old

    def _next_file(self) -> None:
        """The current file is full: the caller's ``rotate`` moves it aside and opens the next."""
        assert self._rotate is not None
        try:
            file = self._rotate()
        except OSError as error:
            file = None
            log.warning("capture: cannot start the next file (%s)", error)
        if file is None:
            self._stop(OSError(f"the capture reached {self.max_bytes} bytes and could not be rotated"))
            return
        old = self.reopen(file)
        self.rotations += 1
        if old is not None:
            try:
                old.close()
            except OSError as error:
                log.warning("capture: closing the full file failed: %s", error)

    def _stop(self, error: Exception) -> None:
        log.warning("capture stopped: %s", error)
        self._file = None

    def next_deadline(self, now: float) -> float | None:
        """The wrapped device's timer (a ``FaultInjector`` holding delayed frames, say)."""
        return self.inner.next_deadline(now)

    def poll(self, now: float) -> None:
        self.inner.poll(now)

    def close(self) -> None:
        self.flush()
        self.inner.close()

    def __repr__(self) -> str:
        return f"PcapDevice({self.inner!r})"


# ---------------------------------------------------------------------- reading

#    0                   1                   2                   3
#    0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1
#   +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
#   |                          Magic Number                         |
#   |          Major Version        |         Minor Version         |
#   |                           Reserved1                           |
#   |                           Reserved2                           |
#   |                            SnapLen                            |
#   | FCS |f|0 0 0 0 0 0 0 0 0 0 0 0|         LinkType              |
#   +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
#   (draft-ietf-opsawg-pcap 4: the file header; the magic's byte order is the file's)
FILE_HEADER = "IHHIIII"
FILE_HEADER_SIZE = 24
#   |                      Timestamp (Seconds)                      |
#   |            Timestamp (Microseconds or nanoseconds)            |
#   |                    Captured Packet Length                     |
#   |                    Original Packet Length                     |
#   /                          Packet Data                          /
#   (draft-ietf-opsawg-pcap 5: one record per frame)
RECORD_HEADER = "IIII"
RECORD_HEADER_SIZE = 16
MAGIC_MICROSECONDS = 0xA1B2C3D4
MAGIC_NANOSECONDS = 0xA1B23C4D
PCAPNG_MAGIC = 0x0A0D0D0A  # a pcapng Section Header Block: another format
#: A record claiming more captured bytes than this is damaged (libpcap's and Wireshark's limit).
MAX_RECORD_SIZE = 262_144


class CaptureError(Exception):
    """A pcap file that cannot be read as one; the message says why, in a user's words."""


class CaptureCutShort(CaptureError):
    """The file ends inside record ``frame`` (its header or its data): a damaged capture,
    e.g. copied while tcpdump was still writing it. The frames before it are whole."""

    def __init__(self, frame: int, detail: str) -> None:
        super().__init__(f"capture cut short in frame {frame} ({detail})")
        self.frame = frame


@dataclass(frozen=True, slots=True)
class Record:
    """One frame of a capture: ``data`` is what was captured, ``original_length`` the frame's
    length on the wire. Less captured than sent is legitimate: the capture's snapshot length
    cut it (``tcpdump -s 50``)."""

    frame: int  # counting from 1, as tcpdump -# and Wireshark do
    timestamp: float
    data: bytes
    original_length: int

    @property
    def truncated(self) -> bool:
        return len(self.data) < self.original_length


class PcapReader:
    """The records of a pcap file, in order. Raises ``CaptureError`` (on opening: not a pcap
    file; while iterating: ``CaptureCutShort`` or a damaged record), never anything else."""

    def __init__(self, file: BinaryIO) -> None:
        self._file = file
        header = file.read(FILE_HEADER_SIZE)
        magic = header[:4]
        orders = [order for order in "<>" if len(magic) == 4
                  and struct.unpack(order + "I", magic)[0] in (MAGIC_MICROSECONDS, MAGIC_NANOSECONDS)]
        if not orders:
            if len(magic) == 4 and struct.unpack("<I", magic)[0] == PCAPNG_MAGIC:
                raise CaptureError("a pcapng file; convert it to pcap first "
                                   "(editcap -F pcap IN.pcapng OUT.pcap)")
            raise CaptureError("not a pcap file (no pcap magic number at its start)")
        if len(header) < FILE_HEADER_SIZE:
            raise CaptureError(f"capture cut short in its file header ({len(header)} of "
                               f"{FILE_HEADER_SIZE} bytes)")
        self._order = orders[0]
        magic_value, _, _, _, _, self.snaplen, network = struct.unpack(self._order + FILE_HEADER, header)
        self.linktype = network & 0xFFFF  # the bits above are FCS information
        self._divisor = 1e9 if magic_value == MAGIC_NANOSECONDS else 1e6

    def __iter__(self) -> Iterator[Record]:
        number = 0
        while True:
            number += 1
            header = self._file.read(RECORD_HEADER_SIZE)
            if not header:
                return  # the end, between two records: a whole capture
            if len(header) < RECORD_HEADER_SIZE:
                raise CaptureCutShort(number, f"the file ends {len(header)} bytes into its "
                                              f"{RECORD_HEADER_SIZE}-byte record header")
            seconds, fraction, captured, original = struct.unpack(self._order + RECORD_HEADER, header)
            if captured > MAX_RECORD_SIZE:
                raise CaptureError(f"frame {number}'s record claims {captured} captured bytes (at "
                                   f"most {MAX_RECORD_SIZE}): the file is damaged")
            data = self._file.read(captured)
            if len(data) < captured:
                raise CaptureCutShort(number, f"the file ends after {len(data)} of its {captured} "
                                              "captured bytes")
            yield Record(number, seconds + fraction / self._divisor, data, max(original, captured))
