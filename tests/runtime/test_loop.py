"""The event loop over the in-memory pair: real frames through real file descriptors.

Timing rules are checked with a fake clock (the loop reads time only through ``clock``), so
these tests never sleep for the stack's timers.
"""

from __future__ import annotations

import io
import os
import signal
from ipaddress import IPv4Address

import pytest

from stack import TapHost
from stack.buffers import join
from stack.l2.arp import ArpPacket
from stack.l2.ethernet import EthernetFrame, EtherType
from stack.runtime.loop import BURST, Loop
from stack.runtime.ping import PingSession
from stack.tap.base import Device, DeviceGone
from stack.tap.pair import device_pair
from stack.runtime.trace import Tracer


class FakeClock:
    """Advances by ``step`` every time it is read: time passes only as the loop looks at it."""

    def __init__(self, start: float = 100.0, step: float = 0.01) -> None:
        self.now = start
        self.step = step

    def __call__(self) -> float:
        self.now += self.step
        return self.now


class Recording:
    """Wraps a device and remembers what was sent through it, and when."""

    def __init__(self, inner) -> None:
        self.inner = inner
        self.sent: list[tuple[float, bytes]] = []

    def __getattr__(self, name):
        return getattr(self.inner, name)

    def send(self, frame, now):
        self.sent.append((now, join(frame)))
        self.inner.send(frame, now)


@pytest.fixture
def wire():
    a, b = device_pair()
    yield a, b
    a.close()
    b.close()


def test_two_hosts_ping_each_other_over_the_pair(wire):
    server = TapHost(["192.0.2.2/24"])
    client = TapHost(["192.0.2.1/24"])
    replies: list[str] = []
    session = PingSession(client, "192.0.2.2", count=3, interval=0.01, timeout=1.0, report=replies.append)
    loop = Loop()
    loop.attach(wire[0], server)
    loop.attach(wire[1], client, agents=[session])
    loop.run(until=session.done, timeout=5.0)
    loop.close()
    assert session.received == 3 and loop.stop_reason == "done"
    assert [line.split()[4] for line in replies] == ["icmp_seq=1", "icmp_seq=2", "icmp_seq=3"]
    assert server.stats["icmp_echo_replies_sent"] == 3
    assert server.stats["arp_replies_sent"] == 1
    assert client.stats["icmp_echo_replies_received"] == 3
    assert wire[0].stats["rx_frames"] == server.stats["rx_frames"]


def test_rfc1122_2_3_2_1_arp_retries_once_per_second_on_the_loop_clock(wire):
    clock = FakeClock(step=0.01)
    client = TapHost(["192.0.2.1/24"])
    device = Recording(wire[1])
    session = PingSession(client, "192.0.2.77", count=1, timeout=5.0)  # nobody owns .77
    loop = Loop(clock=clock, max_wait=0.001)
    loop.attach(device, client, agents=[session])
    loop.run(until=session.done, timeout=10.0)
    loop.close()
    requests = [(when, ArpPacket.parse(EthernetFrame.parse(frame).payload))
                for when, frame in device.sent
                if EthernetFrame.parse(frame).ethertype == EtherType.ARP]
    asks = [(when, arp) for when, arp in requests if not arp.is_gratuitous]
    assert [arp.target_ip for _, arp in asks] == [IPv4Address("192.0.2.77")] * 3
    gaps = [later - earlier for (earlier, _), (later, _) in zip(asks, asks[1:])]
    assert all(1.0 <= gap <= 1.05 for gap in gaps), gaps
    assert client.stats["arp_resolution_failed"] == 1
    assert client.stats.drops == {"arp_unresolved": 1}
    assert session.received == 0 and session.done()


def test_a_burst_of_frames_is_drained_and_answered(wire):
    server = TapHost(["192.0.2.2/24"], mac="02:00:00:00:00:02")
    client = TapHost(["192.0.2.1/24"], mac="02:00:00:00:00:01")
    loop = Loop()
    loop.attach(wire[0], server)
    # Teach both sides each other's MAC, then queue many echo requests at once.
    for frame in client.ping("192.0.2.2", 0.0, identifier=1, sequence=0):
        wire[1].send(frame, 0.0)
    loop.run(timeout=0.2)
    while (frame := wire[1].recv(0.0)) is not None:  # the ARP reply: send what it releases
        for answer in client.receive(frame, 0.0):
            wire[1].send(answer, 0.0)
    count = 3 * BURST
    for sequence in range(1, count + 1):
        for frame in client.ping("192.0.2.2", 0.0, identifier=1, sequence=sequence):
            wire[1].send(frame, 0.0)
    loop.run(until=lambda: server.stats["icmp_echo_replies_sent"] >= count + 1, timeout=5.0)
    loop.close()
    assert server.stats["icmp_echo_replies_sent"] == count + 1
    assert wire[1].stats["tx_queue_full"] == 0


class Exploding:
    def __init__(self) -> None:
        from stack.stats import Stats

        self.stats = Stats()
        self.calls = 0

    def receive(self, frame, now):
        self.calls += 1
        raise RuntimeError("a bug")

    def poll(self, now):
        return []

    def next_deadline(self, now):
        return None


def test_an_internal_error_is_counted_and_logged_and_the_loop_goes_on(wire, caplog):
    node = Exploding()
    loop = Loop()
    loop.attach(wire[0], node)
    wire[1].send([b"\x02" * 14], 0.0)
    wire[1].send([b"\x02" * 14], 0.0)
    loop.run(until=lambda: node.calls == 2, timeout=2.0)
    loop.close()
    assert loop.stats["internal_errors"] == 2
    assert "internal error" in caplog.text and "a bug" in caplog.text


def test_sigterm_stops_the_loop_and_handlers_are_restored(wire):
    previous = signal.getsignal(signal.SIGTERM)

    class Terminator:
        def poll(self, now):
            os.kill(os.getpid(), signal.SIGTERM)
            return []

        def next_deadline(self, now):
            return None

    loop = Loop()
    loop.attach(wire[0], TapHost(["192.0.2.2/24"]), agents=[Terminator()])
    loop.install_signal_handlers()
    loop.run(timeout=5.0)
    loop.close()
    assert loop.stop_reason == "SIGTERM"
    assert signal.getsignal(signal.SIGTERM) == previous


def test_the_tracer_shows_each_frame_and_its_verdict(wire):
    server = TapHost(["192.0.2.2/24"], mac="02:00:00:00:00:02")
    client = TapHost(["192.0.2.1/24"], mac="02:00:00:00:00:01")
    out = io.StringIO()
    loop = Loop()
    loop.attach(wire[0], server, tracer=Tracer(out))
    for frame in client.ping("192.0.2.2", 0.0):
        wire[1].send(frame, 0.0)
    wire[1].send([b"\x02\x00\x00\x00\x00\x02\x02\x00\x00\x00\x00\x01\x86\xdd", bytes(40)], 0.0)
    loop.run(until=lambda: server.stats["rx_frames"] == 2, timeout=2.0)
    loop.close()
    lines = out.getvalue().splitlines()
    assert lines[0].startswith("Out 02:00:00:00:00:02 > ff:ff:ff:ff:ff:ff, ethertype ARP")
    assert "who-has 192.0.2.2 tell 192.0.2.2 (gratuitous)" in lines[0]
    assert lines[1].startswith("In  02:00:00:00:00:01 > ff:ff:ff:ff:ff:ff, ethertype ARP")
    assert lines[1].endswith("Request who-has 192.0.2.2 tell 192.0.2.1, length 28  [-> 1 reply]")
    assert lines[2] == ("Out 02:00:00:00:00:02 > 02:00:00:00:00:01, ethertype ARP (0x0806), "
                        "length 60: Reply 192.0.2.2 is-at 02:00:00:00:00:02, length 28")
    # (The trace reads the IPv6 header too: "malformed: [IPv6] version 0 != 6" before the verdict.)
    assert "ethertype IPv6 (0x86dd), length 54: malformed: [IPv6] version 0 != 6" in lines[3]
    assert lines[3].endswith("  [drop ethernet_ipv6_not_supported: IPv6 frame (EtherType 0x86dd): IPv6 is not supported here: 0x86dd (RFC 2464; docs/behaviour.md: not supported)]")


# ---------------------------------------------------------------- every call is guarded


class FailingTimer:
    """A node (or agent) whose timer is always due and whose ``poll`` (or ``next_deadline``)
    raises, ``failures`` times (None: for ever); it records when it was called."""

    def __init__(self, failing: str = "poll", failures: int | None = None) -> None:
        from stack.stats import Stats

        self.stats = Stats()
        self.failing = failing
        self.failures = failures
        self.calls: list[float] = []

    def _maybe_fail(self, method: str, now: float) -> None:
        if method != self.failing:
            return
        self.calls.append(now)
        if self.failures is None or len(self.calls) <= self.failures:
            raise RuntimeError(f"a bug in {method}")

    def receive(self, frame, now):
        return []

    def poll(self, now):
        self._maybe_fail("poll", now)
        return []

    def next_deadline(self, now):
        self._maybe_fail("next_deadline", now)
        return now  # always due


@pytest.mark.parametrize("failing", ["poll", "next_deadline"])
def test_a_node_timer_that_always_raises_is_counted_logged_and_backs_off(wire, caplog, failing):
    node = FailingTimer(failing)
    loop = Loop(clock=FakeClock(step=0.01), max_wait=0.001)
    loop.attach(wire[0], node)
    loop.run(timeout=3.0)
    loop.close()
    # Called again after 10, 20, 40 ... ms, then every second: not every wake-up (about 300).
    assert 6 <= len(node.calls) <= 11, node.calls
    gaps = [later - earlier for earlier, later in zip(node.calls, node.calls[1:])]
    assert all(later >= 1.9 * earlier for earlier, later in zip(gaps[:5], gaps[1:6])), gaps
    assert max(gaps) <= 1.0 + 0.05
    assert loop.stats["internal_errors.node_timer"] == len(node.calls) == loop.stats["internal_errors"]
    assert "internal error in the node timer of" in caplog.text and f"a bug in {failing}" in caplog.text


def test_a_timer_that_works_again_is_called_at_every_wake_up_again(wire):
    node = FailingTimer("poll", failures=3)
    loop = Loop(clock=FakeClock(step=0.01), max_wait=0.001)
    loop.attach(wire[0], node)
    loop.run(timeout=1.0)
    loop.close()
    assert loop.stats["internal_errors"] == 3
    late = [when for when in node.calls if when > node.calls[3] + 0.1]
    assert len(late) > 40  # once it worked, due at every wake-up (every 10-20 ms) again


@pytest.mark.parametrize("failing", ["poll", "next_deadline"])
def test_a_failing_agent_neither_ends_the_run_nor_stops_the_host_answering(wire, caplog, failing):
    server = TapHost(["192.0.2.2/24"])
    client = TapHost(["192.0.2.1/24"])
    session = PingSession(client, "192.0.2.2", count=3, interval=0.01, timeout=1.0)
    broken = FailingTimer(failing)
    loop = Loop()
    loop.attach(wire[0], server, agents=[broken])
    loop.attach(wire[1], client, agents=[session])
    loop.run(until=session.done, timeout=5.0)
    loop.close()
    assert session.received == 3 and loop.stop_reason == "done"
    assert loop.stats["internal_errors.agent"] == len(broken.calls) >= 1
    assert "internal error in the agent of" in caplog.text


class TimerDevice(Device):
    """The in-memory device with a timer that raises (``error`` is raised by ``poll``)."""

    def __init__(self, inner, error: Exception) -> None:
        self.inner, self.error, self.polls = inner, error, 0
        self.medium, self.stats = inner.medium, inner.stats

    def fileno(self):
        return self.inner.fileno()

    def recv(self, now):
        return self.inner.recv(now)

    def send(self, frame, now):
        self.inner.send(frame, now)

    def close(self):
        self.inner.close()

    def next_deadline(self, now):
        return now

    def poll(self, now):
        self.polls += 1
        raise self.error


def test_a_bug_in_a_device_timer_is_counted_and_the_device_still_serves(wire, caplog):
    server = TapHost(["192.0.2.2/24"])
    client = TapHost(["192.0.2.1/24"])
    session = PingSession(client, "192.0.2.2", count=2, interval=0.01, timeout=1.0)
    device = TimerDevice(wire[0], ValueError("a bug in the device timer"))
    loop = Loop()
    loop.attach(device, server)
    loop.attach(wire[1], client, agents=[session])
    loop.run(until=session.done, timeout=5.0)
    loop.close()
    assert session.received == 2
    assert loop.stats["internal_errors.device_timer"] == device.polls >= 1
    assert "a bug in the device timer" in caplog.text


def test_a_device_error_from_a_device_timer_still_ends_the_run(wire):
    device = TimerDevice(wire[0], DeviceGone("pair0: the other end went away"))
    loop = Loop()
    loop.attach(device, TapHost(["192.0.2.2/24"]))
    with pytest.raises(DeviceGone):
        loop.run(timeout=1.0)
    loop.close()
    assert loop.stats["internal_errors"] == 0


def test_the_frame_that_raised_is_logged_in_hex_cut_short(wire, caplog):
    node = Exploding()
    loop = Loop()
    loop.attach(wire[0], node)
    frame = bytes(range(200))
    wire[1].send([frame], 0.0)
    loop.run(until=lambda: node.calls == 1, timeout=2.0)
    loop.close()
    assert loop.stats["internal_errors.node_receive"] == 1
    assert f"a 200-byte frame: {frame[:64].hex()}... (200 bytes)" in caplog.text
    assert frame[:65].hex() not in caplog.text


# ---------------------------------------------------------------- devices never wait: the loop asks


class CountingDevice(Device):
    def __init__(self, inner) -> None:
        self.inner, self.recvs = inner, 0
        self.medium, self.stats = inner.medium, inner.stats

    def fileno(self):
        return self.inner.fileno()

    def recv(self, now):
        self.recvs += 1
        return self.inner.recv(now)

    def send(self, frame, now):
        self.inner.send(frame, now)

    def close(self):
        self.inner.close()


def test_a_lone_frame_is_read_once_and_a_burst_until_the_device_has_none(wire):
    """After a first frame the loop asks epoll (without waiting) whether another is there,
    rather than paying for a read that fails with EAGAIN; a second frame means a burst, read
    until the device says None."""
    node = FailingTimer("nothing")  # a node that takes every frame and answers none
    node.receive = lambda frame, now: node.calls.append(now) or []  # type: ignore[method-assign]
    device = CountingDevice(wire[0])
    loop = Loop()
    loop.attach(device, node)
    wire[1].send([b"\x02" * 14], 0.0)
    loop.run(until=lambda: len(node.calls) == 1, timeout=2.0)
    assert device.recvs == 1
    for _ in range(3):
        wire[1].send([b"\x02" * 14], 0.0)
    loop.run(until=lambda: len(node.calls) == 4, timeout=2.0)
    loop.close()
    assert device.recvs == 1 + 3 + 1


# ---------------------------------------------------------------- busy polling


class RecordingEpoll:
    """The loop's epoll, recording the timeout of every wait."""

    def __init__(self, real) -> None:
        self.real = real
        self.timeouts: list[float] = []

    def poll(self, timeout: float = -1):
        self.timeouts.append(timeout)
        return self.real.poll(timeout)

    def __getattr__(self, name: str):
        return getattr(self.real, name)


def pinged_with_busy_poll(busy_poll: float) -> tuple[list[float], int]:
    from stack import TapHost
    from stack.runtime.loop import Loop
    from stack.runtime.ping import PingSession
    from stack.tap.pair import device_pair

    a, b = device_pair()
    server, client = TapHost(["192.0.2.2/24"]), TapHost(["192.0.2.1/24"])
    session = PingSession(client, "192.0.2.2", count=3, interval=0.15, report=lambda line: None)
    loop = Loop(busy_poll=busy_poll)
    loop.epoll = recording = RecordingEpoll(loop.epoll)
    loop.attach(a, server)
    loop.attach(b, client, agents=[session])
    loop.run(until=session.done, timeout=5)
    loop.close()
    a.close()
    b.close()
    return recording.timeouts, server.stats["icmp_echo_replies_sent"]


def test_busy_poll_keeps_looking_without_sleeping_after_frames_then_sleeps_again():
    idle, answered_idle = pinged_with_busy_poll(0.0)
    busy, answered_busy = pinged_with_busy_poll(0.05)
    assert answered_idle == answered_busy == 3
    # Without it, the loop waits for the next frame or timer (a zero wait only when one is due);
    # with it, it looks again at once, many times, for 50 ms after each burst ...
    assert busy.count(0.0) > 10 * max(1, idle.count(0.0))
    # ... and then sleeps again until the next ping (0.15 s apart): not a spin for ever.
    first_spin = busy.index(0.0)
    assert any(timeout > 0.01 for timeout in busy[first_spin:])
