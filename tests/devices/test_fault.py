"""The fault injector: seeded statistics, exact corruption, rate and size limits, and delays that
never block the loop (a fake clock drives it)."""

from __future__ import annotations

import math
import random
from collections import deque

import pytest

from stack import TapHost
from stack.buffers import join
from stack.runtime.loop import Loop
from stack.runtime.ping import PingSession
from stack.stats import Stats
from stack.tap.base import Device
from stack.tap.fault import FaultInjector
from stack.tap.pair import device_pair


class Queue(Device):
    """A device made of two lists: ``arriving`` frames come out of recv, sent frames go to ``sent``."""

    medium = "ethernet"
    mtu = 1500

    def __init__(self, frames=()) -> None:
        self.arriving: deque[bytes] = deque(frames)
        self.sent: list[tuple[float, bytes]] = []
        self.stats = Stats()

    def recv(self, now):
        return self.arriving.popleft() if self.arriving else None

    def send(self, frame, now):
        self.sent.append((now, join(frame)))

    def fileno(self):
        return -1

    def close(self):
        pass


def numbered(count: int, size: int = 60) -> list[bytes]:
    return [index.to_bytes(4, "big") + bytes(size - 4) for index in range(count)]


def within_binomial(observed: int, trials: int, chance: float, sigmas: float = 4.0) -> bool:
    mean = trials * chance
    return abs(observed - mean) <= sigmas * math.sqrt(trials * chance * (1 - chance))


def drain(device, now: float = 0.0) -> list[bytes]:
    out = []
    while (frame := device.recv(now)) is not None:
        out.append(bytes(frame))
    return out


def test_drop_a_tenth_of_10000_frames_in_within_a_binomial_bound():
    inner = Queue(numbered(10_000))
    faulty = FaultInjector(inner, random.Random(7), drop=0.1)
    survivors = drain(faulty)
    dropped = inner.stats["fault_in_dropped"]
    assert dropped + len(survivors) == 10_000
    assert within_binomial(dropped, 10_000, 0.1), dropped
    assert survivors == sorted(survivors)  # in order, untouched


def test_drop_on_the_way_out_too_and_the_same_seed_drops_the_same_frames():
    def run(seed):
        inner = Queue()
        faulty = FaultInjector(inner, random.Random(seed), drop=0.25)
        for frame in numbered(4000):
            faulty.send([frame[:14], frame[14:]], 0.0)
        return inner

    first, again, other = run(3), run(3), run(4)
    assert within_binomial(first.stats["fault_out_dropped"], 4000, 0.25)
    assert first.sent == again.sent and first.sent != other.sent


def test_corrupt_flips_exactly_one_bit_in_every_corrupted_frame():
    originals = numbered(2000, size=98)
    inner = Queue(originals)
    faulty = FaultInjector(inner, random.Random(1), corrupt=0.3)
    received = drain(faulty)
    changed = 0
    for before, after in zip(originals, received, strict=True):
        bits = sum(bin(a ^ b).count("1") for a, b in zip(before, after))
        assert bits in (0, 1) and len(before) == len(after)
        changed += bits
    assert changed == inner.stats["fault_in_corrupted"]
    assert within_binomial(changed, 2000, 0.3)


def test_corrupted_bits_fall_all_over_the_frame():
    inner = Queue(numbered(3000, size=16))
    received = drain(FaultInjector(inner, random.Random(2), corrupt=1.0))
    positions = {next(i * 8 + (a ^ b).bit_length() - 1 for i, (a, b) in enumerate(zip(bytes(16), frame[:4] + frame[4:]))
                      if a != b) for frame in [bytes(a ^ b for a, b in zip(o, r)) for o, r in
                                               zip(numbered(3000, size=16), received)]}
    assert len(positions) == 128  # every one of the 16 x 8 bits was hit at least once


def test_frames_larger_than_max_size_are_dropped():
    inner = Queue([bytes(60), bytes(1514), bytes(1000), bytes(1001)])
    assert [len(f) for f in drain(FaultInjector(inner, random.Random(), max_size=1000))] == [60, 1000]
    assert inner.stats["fault_in_too_large"] == 2


def test_rate_limit_is_a_token_bucket_per_direction():
    inner = Queue()
    faulty = FaultInjector(inner, random.Random(), rate=100, burst=10)
    for _ in range(50):
        faulty.send([bytes(60)], 0.0)
    assert len(inner.sent) == 10 and inner.stats["fault_out_rate_limited"] == 40
    for index in range(200):  # 1 s at 200 frames a second: 100 tokens come back
        faulty.send([bytes(60)], 0.005 * (index + 1))
    assert len(inner.sent) == 10 + 100
    inner.arriving.extend([bytes(60)] * 20)  # the way in has its own, full bucket
    assert len(drain(faulty, 1.0)) == 10


def test_only_the_asked_direction_is_touched():
    inner = Queue(numbered(100))
    faulty = FaultInjector(inner, random.Random(), drop=1.0, directions="out")
    assert len(drain(faulty)) == 100
    faulty.send([b"x" * 60], 0.0)
    assert inner.sent == [] and inner.stats["fault_out_dropped"] == 1


def test_delay_holds_frames_until_due_and_jitter_never_reorders_them():
    inner = Queue()
    faulty = FaultInjector(inner, random.Random(5), delay_ms=20, jitter_ms=15)
    frames = numbered(500)
    for index, frame in enumerate(frames):  # one frame a millisecond: jitter is wider than that
        faulty.send([frame], index * 0.001)
    assert inner.sent == []
    assert faulty.next_deadline(0.0) >= 0.005
    now = 0.0
    while faulty.next_deadline(now) is not None:
        now = faulty.next_deadline(now)
        faulty.poll(now)
    assert [frame for _, frame in inner.sent] == frames
    delays = [when - index * 0.001 for index, (when, _) in enumerate(inner.sent)]
    assert all(0.005 - 1e-9 <= d for d in delays), min(delays)
    assert max(delays) <= 0.035 + 0.001 * 10  # late only behind a frame held ahead
    assert 0.018 < sum(delays) / len(delays) < 0.030
    assert inner.stats["fault_out_delayed"] == 500


def test_delayed_frames_in_come_out_of_recv_when_due():
    inner = Queue([b"a" * 60, b"b" * 60])
    faulty = FaultInjector(inner, random.Random(), delay_ms=50)
    assert faulty.recv(1.0) is None and faulty.next_deadline(1.0) == pytest.approx(1.05)
    assert faulty.recv(1.049) is None
    assert [f[:1] for f in drain(faulty, 1.05)] == [b"a", b"b"]
    assert faulty.next_deadline(1.05) is None


@pytest.mark.parametrize("kwargs, message", [
    (dict(drop=1.5), "drop chance"), (dict(corrupt=-0.1), "corrupt chance"),
    (dict(delay_ms=-1), "negative"), (dict(rate=0), "rate"), (dict(max_size=0), "size"),
    (dict(directions="sideways"), "directions"),
])
def test_bad_settings_are_value_errors(kwargs, message):
    with pytest.raises(ValueError, match=message):
        FaultInjector(Queue(), random.Random(), **kwargs)


class FakeClock:
    def __init__(self, start: float = 100.0, step: float = 0.0005) -> None:
        self.now, self.step = start, step

    def __call__(self) -> float:
        self.now += self.step
        return self.now


def test_on_the_loop_a_delayed_host_answers_late_and_the_loop_wakes_for_it():
    a, b = device_pair()
    try:
        server = TapHost(["192.0.2.2/24"])
        client = TapHost(["192.0.2.1/24"])
        session = PingSession(client, "192.0.2.2", count=3, interval=0.2, timeout=1.0)
        faulty = FaultInjector(a, random.Random(1), delay_ms=40)
        loop = Loop(clock=FakeClock(), max_wait=0.001)
        loop.attach(faulty, server)
        loop.attach(b, client, agents=[session])
        loop.run(until=session.done, timeout=10.0)
        loop.close()
        rtts = [reply.rtt for reply in session.replies]
        assert session.received == 3
        # 40 ms each way; the first echo also waits for ARP (the server's delayed start-up
        # announcement answers it, 40 ms after the request went out)
        assert 0.120 <= rtts[0] < 0.130 and all(0.080 <= rtt < 0.090 for rtt in rtts[1:]), rtts
        assert a.stats["fault_in_delayed"] >= 4 and a.stats["fault_out_delayed"] >= 4
    finally:
        a.close()
        b.close()
