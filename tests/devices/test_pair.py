"""The in-memory wire: one send is one frame, buffers go out with one sendmsg, failures counted."""

from __future__ import annotations

import pytest

from stack.tap.base import DeviceGone
from stack.tap.pair import device_pair

NOW = 100.0


@pytest.fixture
def pair():
    left, right = device_pair(mtu=1500)
    yield left, right
    left.close()
    right.close()


def test_frame_boundaries_are_kept(pair):
    left, right = pair
    left.send([b"\x01" * 60], NOW)
    left.send([b"\x02" * 1514], NOW)
    assert bytes(right.recv(NOW)) == b"\x01" * 60
    assert bytes(right.recv(NOW)) == b"\x02" * 1514
    assert right.recv(NOW) is None


def test_a_buffer_list_arrives_as_one_frame(pair):
    left, right = pair
    payload = bytearray(b"payload")
    left.send([b"ethernet-head.", b"ip-header", memoryview(payload)[1:]], NOW)
    assert bytes(right.recv(NOW)) == b"ethernet-head.ip-header" + b"ayload"
    assert left.stats["tx_frames"] == 1 and left.stats["tx_bytes"] == 29
    assert right.stats["rx_frames"] == 1 and right.stats["rx_bytes"] == 29


def test_recv_returns_none_when_nothing_is_waiting(pair):
    left, right = pair
    assert left.recv(NOW) is None
    assert right.recv(NOW) is None
    assert left.stats.as_dict() == {} and right.stats.as_dict() == {}


def test_the_received_frame_is_a_view_valid_until_the_next_recv(pair):
    left, right = pair
    left.send([b"first"], NOW)
    left.send([b"second"], NOW)
    first = right.recv(NOW)
    assert isinstance(first, memoryview) and bytes(first) == b"first"
    assert bytes(right.recv(NOW)) == b"second"


def test_a_frame_larger_than_the_buffer_is_dropped_and_counted():
    left, right = device_pair(mtu=100)
    try:
        left.send([bytes(100 + 14 + 4 + 1)], NOW)  # one byte more than MTU + Ethernet + 802.1Q
        left.send([bytes(100 + 14 + 4)], NOW)
        assert len(right.recv(NOW)) == 118
        assert right.stats["rx_truncated"] == 1 and right.stats["rx_frames"] == 1
    finally:
        left.close()
        right.close()


def test_a_full_queue_drops_and_counts(pair):
    left, right = pair
    for sent in range(10_000):  # the queue holds a few hundred frames
        left.send([bytes(1000)], NOW)
        if left.stats["tx_queue_full"]:
            break
    assert left.stats["tx_queue_full"] == 1
    assert left.stats["tx_frames"] == sent
    received = 0
    while right.recv(NOW) is not None:
        received += 1
    assert received == sent


def test_sending_after_the_other_end_closed_raises_device_gone(pair):
    left, right = pair
    right.close()
    with pytest.raises(DeviceGone, match="pair0: the other end of the pair was closed"):
        left.send([b"hello"], NOW)
    with pytest.raises(DeviceGone):
        left.send([b"again"], NOW)


def test_medium_mtu_fileno_and_close():
    left, right = device_pair(mtu=9000, medium="ip")
    assert (left.medium, right.medium, left.mtu) == ("ip", "ip", 9000)
    assert left.fileno() >= 0 and left.fileno() != right.fileno()
    with left, right:
        pass
    assert left.fileno() == -1
    left.close()  # closing twice is fine
