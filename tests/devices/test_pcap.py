"""The pcap wrapper: what goes in and out is in the file, readable by dpkt, with our timestamps."""

from __future__ import annotations

import io

import dpkt
import pytest

from stack.tap.pair import device_pair
from stack.tap.pcap import LINKTYPE_ETHERNET, LINKTYPE_RAW, PcapDevice

OFFSET = 1_700_000_000.0  # wall clock minus monotonic, as the CLI passes it


@pytest.mark.parametrize(("medium", "linktype"), [("ethernet", LINKTYPE_ETHERNET), ("ip", LINKTYPE_RAW)])
def test_frames_in_and_out_are_recorded(medium, linktype):
    ours, theirs = device_pair(medium=medium)
    capture = io.BytesIO()
    device = PcapDevice(ours, capture, timestamp_offset=OFFSET)
    try:
        theirs.send([b"\x45incoming"], 10.25)
        received = device.recv(10.5)
        device.send([b"\x45out", memoryview(b"-going")], 11.75)
        assert device.recv(12.0) is None  # nothing more: nothing recorded
    finally:
        device.close()
        theirs.close()
    assert bytes(received) == b"\x45incoming"

    reader = dpkt.pcap.Reader(io.BytesIO(capture.getvalue()))
    assert reader.datalink() == linktype
    assert reader.snaplen == 65535
    assert [(ts, bytes(frame)) for ts, frame in reader] == [
        (pytest.approx(OFFSET + 10.5, abs=1e-6), b"\x45incoming"),
        (pytest.approx(OFFSET + 11.75, abs=1e-6), b"\x45out-going"),
    ]


def test_the_wrapper_is_the_inner_device_for_the_loop():
    ours, theirs = device_pair(mtu=9000)
    device = PcapDevice(ours, io.BytesIO())
    assert device.medium == "ethernet" and device.mtu == 9000
    assert device.stats is ours.stats and device.fileno() == ours.fileno()
    device.send([b"frame"], 0.0)
    assert bytes(theirs.recv(0.0)) == b"frame"  # the inner device still got the buffers
    assert ours.stats["tx_frames"] == 1
    device.close()
    assert ours.fileno() == -1
    theirs.close()


class Pipe(io.BytesIO):
    """A capture stream that counts flushes and can break like a closed pipe."""

    def __init__(self) -> None:
        super().__init__()
        self.flushes = 0
        self.broken = False

    def write(self, data) -> int:
        if self.broken:
            raise BrokenPipeError(32, "Broken pipe")
        return super().write(data)

    def flush(self) -> None:
        self.flushes += 1


def test_frames_are_flushed_once_per_wake_up_and_a_broken_pipe_stops_only_the_capture(caplog):
    ours, theirs = device_pair()
    pipe = Pipe()
    device = PcapDevice(ours, pipe)
    flushes_after_header = pipe.flushes
    device.send([b"one"], 1.0)
    device.send([b"two"], 2.0)
    assert pipe.flushes == flushes_after_header  # written, not yet flushed: the loop says when
    device.flush()
    assert pipe.flushes == flushes_after_header + 1
    pipe.broken = True
    device.send([b"three"], 3.0)
    device.send([b"four"], 4.0)
    assert [r.getMessage() for r in caplog.records] == ["capture stopped: [Errno 32] Broken pipe"]
    assert [bytes(theirs.recv(0.0)) for _ in range(4)] == [b"one", b"two", b"three", b"four"]
    device.close()
    theirs.close()


def test_the_loop_flushes_a_capture_once_per_wake_up_and_leaves_nothing_unflushed():
    from stack import TapHost
    from stack.runtime.loop import Loop
    from stack.runtime.ping import PingSession

    class CountingPipe(Pipe):
        def __init__(self) -> None:
            super().__init__()
            self.unflushed = 0

        def write(self, data) -> int:
            self.unflushed += 1
            return super().write(data)

        def flush(self) -> None:
            super().flush()
            self.unflushed = 0

    a, b = device_pair()
    pipe = CountingPipe()
    server, client = TapHost(["192.0.2.2/24"]), TapHost(["192.0.2.1/24"])
    session = PingSession(client, "192.0.2.2", count=3, interval=0.05, report=lambda line: None)
    loop = Loop()
    loop.attach(PcapDevice(a, pipe), server)
    loop.attach(b, client, agents=[session])
    loop.run(until=session.done, timeout=5)
    loop.close()
    assert session.done() and server.stats["icmp_echo_replies_sent"] == 3
    frames = len(list(dpkt.pcap.Reader(io.BytesIO(pipe.getvalue()))))
    assert frames >= 8  # ARP both ways, announcements, three requests and three replies
    assert pipe.flushes < frames  # not one flush per frame
    assert pipe.unflushed == 0  # but nothing left behind when the loop returns


def test_reopen_continues_in_a_new_file_with_its_own_header_and_loses_nothing():
    ours, theirs = device_pair()
    first, second = io.BytesIO(), io.BytesIO()
    device = PcapDevice(ours, first)
    try:
        device.send([b"\x02" * 14, b"one"], 1.0)
        assert device.reopen(second) is first  # the old file, for the caller to close
        device.send([b"\x02" * 14, b"two"], 2.0)
        device.flush()
    finally:
        device.close()
        theirs.close()
    old = [bytes(frame)[14:] for _, frame in dpkt.pcap.Reader(io.BytesIO(first.getvalue()))]
    new_reader = dpkt.pcap.Reader(io.BytesIO(second.getvalue()))
    assert new_reader.datalink() == LINKTYPE_ETHERNET
    assert old == [b"one"] and [bytes(frame)[14:] for _, frame in new_reader] == [b"two"]
