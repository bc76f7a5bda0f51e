"""The Device protocol: every device has a timer (by default none), so the loop calls it directly."""

from __future__ import annotations

import io
import random

import pytest

from stack.tap.base import Device
from stack.tap.fault import FaultInjector
from stack.tap.linux import TapDevice, TunDevice
from stack.tap.pair import PairDevice, device_pair
from stack.tap.pcap import PcapDevice


@pytest.fixture
def wire():
    a, b = device_pair()
    yield a, b
    a.close()
    b.close()


@pytest.mark.parametrize("cls", [TapDevice, TunDevice, PairDevice, PcapDevice, FaultInjector])
def test_every_device_class_is_a_device(cls):
    assert Device in cls.__mro__  # declared, so it inherits the defaults
    for method in ("recv", "send", "fileno", "close", "next_deadline", "poll"):
        assert callable(getattr(cls, method)), method


def test_a_device_holding_nothing_has_no_timer(wire):
    assert wire[0].next_deadline(1.0) is None
    assert wire[0].poll(1.0) is None and wire[1].recv(1.0) is None


def test_wrappers_pass_the_timer_of_the_device_they_wrap(wire):
    faulty = FaultInjector(wire[0], random.Random(1), delay_ms=40, directions="out")
    captured = PcapDevice(faulty, io.BytesIO())
    captured.send([b"\x02" * 60], 1.0)
    assert captured.next_deadline(1.0) == pytest.approx(1.04)
    captured.poll(1.03)
    assert wire[1].recv(1.03) is None
    captured.poll(1.04)
    assert bytes(wire[1].recv(1.04)) == b"\x02" * 60 and captured.next_deadline(1.04) is None
