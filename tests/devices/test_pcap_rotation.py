"""``--pcap-max-bytes``: PcapDevice moves to the next file before one would pass its bound; every
file is a whole pcap file and the frames across the files are exactly the frames in and out."""

from __future__ import annotations

import io
import logging

import pytest

from stack.tap.pair import device_pair
from stack.tap.pcap import FILE_HEADER_SIZE, RECORD_HEADER_SIZE, PcapDevice, PcapReader


class Files:
    """What a caller's ``rotate`` does, in memory: the full file kept, a new one handed out."""

    def __init__(self, fail_after: int | None = None) -> None:
        self.files: list[io.BytesIO] = [io.BytesIO()]
        self.contents: list[bytes] = []  # of every closed (full) file, in order
        self.fail_after = fail_after

    def rotate(self):
        if self.fail_after is not None and len(self.files) > self.fail_after:
            return None
        full = self.files[-1]
        original_close = full.close

        def close() -> None:
            self.contents.append(full.getvalue())
            original_close()
        full.close = close
        self.files.append(io.BytesIO())
        return self.files[-1]

    def all(self) -> list[bytes]:
        return [*self.contents, self.files[-1].getvalue()]


def records(content: bytes) -> list:
    return list(PcapReader(io.BytesIO(content)))  # raises unless a header and whole records


def frame(number: int, size: int) -> bytes:
    return number.to_bytes(4, "big") + bytes(size - 4)


def test_files_stay_within_the_bound_and_hold_every_frame_once_in_order():
    ours, theirs = device_pair()
    files = Files()
    bound = 5_000
    device = PcapDevice(ours, files.files[0], max_bytes=bound, rotate=files.rotate)
    sizes = [60, 1_000, 1_514, 200, 999, 1_200, 64, 1_514, 1_514, 300] * 6
    for number, size in enumerate(sizes):
        if number % 2:
            theirs.send([frame(number, size)], float(number))
            assert device.recv(float(number)) is not None
        else:
            device.send([frame(number, size)[:10], memoryview(frame(number, size))[10:]], float(number))
    device.close()
    theirs.close()
    contents = files.all()
    assert device.rotations == len(contents) - 1 >= 5
    assert all(len(content) <= bound for content in contents), [len(c) for c in contents]
    per_file = [records(content) for content in contents]
    assert all(per_file)  # no empty file: a file is started only for a frame
    seen = [int.from_bytes(r.data[:4], "big") for part in per_file for r in part]
    assert seen == list(range(len(sizes)))
    assert len(seen) == ours.stats["rx_frames"] + ours.stats["tx_frames"]
    # Full: a file was left only when the next frame would not fit.
    for content, following in zip(per_file, per_file[1:]):
        used = FILE_HEADER_SIZE + sum(RECORD_HEADER_SIZE + len(r.data) for r in content)
        assert used + RECORD_HEADER_SIZE + len(following[0].data) > bound


def test_a_frame_larger_than_the_bound_gets_a_file_of_its_own():
    ours, theirs = device_pair()
    files = Files()
    device = PcapDevice(ours, files.files[0], max_bytes=500, rotate=files.rotate)
    for number, size in enumerate([100, 2_000, 100]):
        device.send([frame(number, size)], 1.0)
    device.close()
    theirs.close()
    assert [[len(r.data) for r in records(c)] for c in files.all()] == [[100], [2_000], [100]]


def test_sighup_reopen_starts_the_count_afresh():
    ours, theirs = device_pair()
    files = Files()
    device = PcapDevice(ours, files.files[0], max_bytes=1_000, rotate=files.rotate)
    for number in range(4):
        device.send([frame(number, 200)], 1.0)  # 4 * 216 + 24 = 888: still one file
    assert device.rotations == 0
    moved = io.BytesIO()
    device.reopen(moved)
    for number in range(4, 8):
        device.send([frame(number, 200)], 2.0)
    assert device.rotations == 0  # the new file holds 4 frames, as a fresh one can
    assert len(records(moved.getvalue())) == 4
    device.send([frame(8, 200)], 3.0)
    assert device.rotations == 1 and moved.closed  # full: moved aside and closed
    device.close()
    theirs.close()


def test_a_rotation_that_fails_stops_the_capture_not_the_device(caplog):
    ours, theirs = device_pair()
    files = Files(fail_after=1)
    device = PcapDevice(ours, files.files[0], max_bytes=600, rotate=files.rotate)
    with caplog.at_level(logging.WARNING):
        for number in range(10):
            device.send([frame(number, 200)], 1.0)
    assert [bytes(theirs.recv(0.0))[:4] for _ in range(10)] == [frame(n, 4) for n in range(10)]
    contents = files.all()
    assert all(len(c) <= 600 for c in contents)  # the bound holds: nothing written past it
    assert [len(records(c)) for c in contents] == [2, 2]
    assert "could not be rotated" in caplog.text
    device.close()
    theirs.close()


def test_max_bytes_and_rotate_go_together():
    ours, theirs = device_pair()
    with pytest.raises(ValueError):
        PcapDevice(ours, io.BytesIO(), max_bytes=1_000)
    with pytest.raises(ValueError):
        PcapDevice(ours, io.BytesIO(), max_bytes=10, rotate=lambda: io.BytesIO())
    ours.close()
    theirs.close()
