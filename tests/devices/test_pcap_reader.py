"""Reading a pcap file back: whole captures, frames cut by a snapshot length (legitimate), and
files that end inside a record (damaged), each told apart. Files are built here byte by byte
(draft-ietf-opsawg-pcap 4 and 5) or by dpkt, never by the code under test."""

from __future__ import annotations

import io
import struct

import dpkt
import pytest

from stack.tap.pcap import CaptureCutShort, CaptureError, PcapReader

FRAME = bytes(range(98))


def file_header(order: str = "<", magic: int = 0xA1B2C3D4, snaplen: int = 65535, linktype: int = 1) -> bytes:
    return struct.pack(order + "IHHiIII", magic, 2, 4, 0, 0, snaplen, linktype)


def record(data: bytes, original: int | None = None, order: str = "<", seconds: int = 7,
           fraction: int = 250_000) -> bytes:
    original = len(data) if original is None else original
    return struct.pack(order + "IIII", seconds, fraction, len(data), original) + data


def records(raw: bytes) -> list:
    return list(PcapReader(io.BytesIO(raw)))


def test_a_file_written_by_dpkt_reads_back_frame_by_frame():
    capture = io.BytesIO()
    writer = dpkt.pcap.Writer(capture, snaplen=65535, linktype=101)
    writer.writepkt(b"\x45first", ts=1.5)
    writer.writepkt(b"\x45second", ts=2.25)
    reader = PcapReader(io.BytesIO(capture.getvalue()))
    assert (reader.linktype, reader.snaplen) == (101, 65535)
    got = [(r.frame, r.timestamp, r.data, r.original_length, r.truncated) for r in reader]
    assert got == [(1, 1.5, b"\x45first", 6, False), (2, 2.25, b"\x45second", 7, False)]


@pytest.mark.parametrize("order", ["<", ">"], ids=["little-endian", "big-endian"])
def test_either_byte_order_and_nanosecond_timestamps(order):
    raw = file_header(order, magic=0xA1B23C4D, linktype=0x1000_0065) + record(FRAME, order=order,
                                                                              fraction=500_000_000)
    reader = PcapReader(io.BytesIO(raw))
    assert reader.linktype == 101  # the bits above the link type (FCS information) are not part of it
    (only,) = list(reader)
    assert only.timestamp == 7.5 and only.data == FRAME


def test_a_frame_cut_by_the_snapshot_length_is_a_record_not_an_error():
    (first, second) = records(file_header(snaplen=50) + record(FRAME[:50], original=98) + record(FRAME[:42]))
    assert first.truncated and len(first.data) == 50 and first.original_length == 98
    assert not second.truncated and second.frame == 2


@pytest.mark.parametrize("cut, detail", [
    (16 + 98 + 10, "the file ends 10 bytes into its 16-byte record header"),
    (16 + 98 + 16 + 50, "the file ends after 50 of its 98 captured bytes"),
    (16 + 98 + 16, "the file ends after 0 of its 98 captured bytes"),
], ids=["in-record-header", "in-record-data", "right-after-record-header"])
def test_a_file_ending_inside_a_record_is_cut_short_in_that_frame(cut, detail):
    raw = file_header() + (record(FRAME) * 3)
    reader = iter(PcapReader(io.BytesIO(raw[:24 + cut])))
    assert next(reader).data == FRAME  # the frames before the cut are whole
    with pytest.raises(CaptureCutShort) as caught:
        next(reader)
    assert caught.value.frame == 2
    assert str(caught.value) == f"capture cut short in frame 2 ({detail})"


@pytest.mark.parametrize("raw, message", [
    (b"hello, this is not a capture", "not a pcap file"),
    (b"", "not a pcap file"),
    (struct.pack("<I", 0x0A0D0D0A) + bytes(24), "a pcapng file"),
    (file_header()[:20], "capture cut short in its file header (20 of 24 bytes)"),
    (file_header() + record(b"")[:8] + struct.pack("<II", 10**9, 60), "claims 1000000000 captured bytes"),
], ids=["text", "empty", "pcapng", "file-header-cut", "damaged-record"])
def test_what_cannot_be_read_says_why(raw, message):
    with pytest.raises(CaptureError) as caught:
        records(raw)
    assert message in str(caught.value)
