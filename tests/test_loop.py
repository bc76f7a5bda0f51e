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
from stack.loop import BURST, Loop
from stack.ping import PingSession
from stack.tap.pair import device_pair
from stack.trace import Tracer


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
    assert lines[3].endswith("ethertype IPv6 (0x86dd), length 54  [drop ethernet_ipv6_not_supported: IPv6 frame (EtherType 0x86dd): IPv6 is not supported here: 0x86dd (RFC 2464; docs/behaviour.md: not supported)]")
