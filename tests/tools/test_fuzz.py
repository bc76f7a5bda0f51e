"""``tapstack fuzz`` in process: a fragile target behind the in-memory wire, stopped by one kind
of frame, is found out, and the frame shortened to the least that still stops it; a sturdy
target answers throughout; a target that never comes back gets its whole batch reported."""

from __future__ import annotations

import math
from ipaddress import IPv4Address, IPv4Interface

import pytest
from hypothesis import strategies as st

from stack import TapHost
from stack.tools.fuzz import Fuzzer, fuzz_frames
from stack.l2.arp import ArpOp, ArpPacket
from stack.l2.ethernet import EthernetFrame, EtherType, MacAddress
from stack.l3.icmp import IcmpMessage, IcmpType
from stack.l3.ipv4 import Ipv4Packet
from stack.runtime.loop import Loop
from stack.tap.pair import device_pair

OURS = IPv4Interface("192.0.2.2/24")
TARGET = IPv4Address("192.0.2.1")
KILLER_PROTOCOL = 0x99
KILLER_MINIMUM = 40  # the target breaks on frames at least this long carrying that protocol


class Fragile:
    """A TapHost that stops answering for ``down_s`` seconds after a frame of at least
    KILLER_MINIMUM bytes whose IPv4 protocol field is KILLER_PROTOCOL."""

    def __init__(self, down_s: float) -> None:
        self.host = TapHost([f"{TARGET}/24"])
        self.stats = self.host.stats
        self.down_s = down_s
        self.down_until = -math.inf
        self.kills = 0

    def receive(self, frame, now: float):
        if now < self.down_until:
            return []
        if len(frame) >= KILLER_MINIMUM and frame[12:14] == b"\x08\x00" and frame[23] == KILLER_PROTOCOL:
            self.down_until = now + self.down_s
            self.kills += 1
            return []
        return self.host.receive(frame, now)

    def poll(self, now: float):
        return self.host.poll(now)

    def next_deadline(self, now: float):
        return self.host.next_deadline(now)


def frame_to_target(protocol: int, payload: bytes) -> bytes:
    packet = Ipv4Packet(OURS.ip, TARGET, protocol, payload)
    return bytes(EthernetFrame(TapHost([f"{TARGET}/24"]).mac, TapHost([OURS]).mac, EtherType.IPV4, bytes(packet)))


HARMLESS = frame_to_target(1, bytes(IcmpMessage.echo(IcmpType.ECHO_REQUEST, 1, 1, b"x" * 30)))
KILLER = frame_to_target(KILLER_PROTOCOL, bytes(40))  # 14 + 20 + 40 = 74 bytes


def fuzzer(down_s: float, max_time: float = 30.0) -> tuple[Fuzzer, Fragile]:
    ours, theirs = device_pair()
    loop = Loop()
    target = Fragile(down_s)
    loop.attach(theirs, target)
    fuzz = Fuzzer(loop, ours, TapHost([OURS]), TARGET, max_time, tries=2, interval=0.02, timeout=0.1)
    assert fuzz.alive()
    return fuzz, target


def test_a_sturdy_target_answers_after_every_batch():
    fuzz, target = fuzzer(down_s=1.0)
    frames = fuzz_frames(OURS, fuzz.host.mac, TARGET, fuzz.target_mac())
    result = fuzz.run(frames, examples=120, batch_size=30, seed=1)
    assert not result.stopped and result.sent == 120 and result.batches == 4
    assert "answered ping after every batch" in result.describe()
    assert target.host.stats["rx_frames"] >= 120


def test_the_frame_that_stops_the_target_is_found_and_shortened():
    fuzz, target = fuzzer(down_s=0.15)
    result = fuzz.run(st.sampled_from([HARMLESS, HARMLESS, HARMLESS, KILLER]), examples=40,
                      batch_size=10, seed=1, recovery=2.0)
    assert result.stopped and result.recovered
    assert result.culprit == KILLER
    assert result.smallest == KILLER[:KILLER_MINIMUM]
    assert f"smallest frame after which it stops ({KILLER_MINIMUM} bytes)" in result.describe()


def test_a_target_that_never_comes_back_gets_its_batch_reported():
    fuzz, target = fuzzer(down_s=math.inf)
    result = fuzz.run(st.sampled_from([HARMLESS, KILLER]), examples=20, batch_size=5, seed=1,
                      recovery=0.3)
    assert result.stopped and result.recovered is False and result.culprit is None
    assert KILLER in result.batch
    assert KILLER.hex() in result.describe() and "did not answer again" in result.describe()


def test_fuzzing_stops_at_the_time_limit():
    fuzz, target = fuzzer(down_s=1.0, max_time=0.0)
    result = fuzz.run(st.just(HARMLESS), examples=100, batch_size=10, seed=1)
    assert result.timed_out and result.sent == 0


@pytest.mark.parametrize("args, message", [
    (["--target", "198.51.100.1"], "must be another host on 192.0.2.0/24"),
    (["--target", "192.0.2.2"], "must be another host"),
])
def test_fuzz_only_targets_another_host_on_the_link(args, message):
    from tests.cli.test_cli import assert_usage_error, tapstack

    assert_usage_error(tapstack("fuzz", "--tap", "tap0", "--ip", "192.0.2.2/24", *args), message)


def test_a_frame_that_teaches_the_target_a_wrong_mac_for_us_is_not_a_stop():
    """A fuzzed ARP frame may claim our address from another MAC; the target then answers the
    wrong MAC. We announce ourselves before each ping check, so that is not taken for a stop."""
    fuzz, target = fuzzer(down_s=1.0)
    ours = TapHost([OURS])
    poison = ArpPacket(ArpOp.REQUEST, MacAddress("02:00:00:00:00:99"), OURS.ip, MacAddress(bytes(6)), TARGET)
    frame = bytes(EthernetFrame(MacAddress(b"\xff" * 6), ours.mac, EtherType.ARP, bytes(poison)))
    result = fuzz.run(st.just(frame), examples=5, batch_size=5, seed=1)
    assert not result.stopped and result.sent >= 1
    assert target.host.link.cache.lookup(OURS.ip, 100.0) == ours.mac  # set right again
