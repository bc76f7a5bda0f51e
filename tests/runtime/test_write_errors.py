"""Transient write errors of a Linux device (ENOBUFS, EAGAIN, EIO: the link down) under the loop:
each frame that could not be written is counted under its name, never fatal, and the loop does
not spin on it.

The device is the real ``TapDevice`` code (readv, writev and their error handling) on one end of
an in-memory datagram socket pair instead of /dev/net/tun (no interface is touched); the errno
is injected where the kernel would give it, at ``os.writev``.
"""

from __future__ import annotations

import errno
import os
import socket
import time

import pytest

from stack import TapHost
from stack.runtime.loop import Loop
from stack.stats import Stats
from stack.tap import linux
from stack.tap.linux import TapDevice


def socket_tap(sock: socket.socket) -> TapDevice:
    """A TapDevice whose file descriptor is ``sock``'s (everything else as after attaching)."""
    device = TapDevice.__new__(TapDevice)
    device.name, device.mtu, device.created, device._flags = "fake0", 1500, False, 0
    sock.setblocking(False)  # as the real fd is opened (O_NONBLOCK): a read never waits
    device._fd = os.dup(sock.fileno())
    device.stats = Stats()
    device._counters = device.stats.counters
    device._allocate()
    return device


class CountingClock:
    """The loop reads the clock once per wake-up: how many wake-ups there were."""

    def __init__(self, clock) -> None:
        self.clock, self.reads = clock, 0

    def __call__(self) -> float:
        self.reads += 1
        return self.clock()


@pytest.mark.parametrize("code, counter", [
    (errno.ENOBUFS, "tx_enobufs"),
    (errno.EAGAIN, "tx_eagain"),
    (errno.EIO, "tx_link_down"),
], ids=["ENOBUFS", "EAGAIN", "EIO-link-down"])
def test_a_transient_write_error_is_counted_never_fatal_and_never_spins(monkeypatch, code, counter):
    ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_DGRAM)
    theirs.settimeout(2.0)
    device = socket_tap(ours)
    server = TapHost(["192.0.2.2/24"], mac="02:00:00:00:00:02")
    client = TapHost(["192.0.2.1/24"], mac="02:00:00:00:00:01")
    failed = []

    def writev(fd, buffers):
        failed.append(fd)
        raise OSError(code, os.strerror(code))

    clock = CountingClock(time.monotonic)
    loop = Loop(clock=clock)
    loop.attach(device, server)
    try:
        # The two hosts know each other's MAC first (ARP, outside the loop); the first echo
        # request, queued by the client meanwhile, comes out of its ARP reply.
        now = clock.clock()  # the loop's clock: the entries learnt are fresh in it
        (request,) = client.ping("192.0.2.2", now, identifier=7, sequence=0)
        (arp_reply,) = server.receive(b"".join(request), now)
        requests = client.receive(b"".join(arp_reply), now)
        requests += [frame for sequence in range(1, 5)
                     for frame in client.ping("192.0.2.2", now, identifier=7, sequence=sequence)]
        assert len(requests) == 5
        monkeypatch.setattr(linux.os, "writev", writev)
        for frame in requests:
            theirs.send(b"".join(frame))
        loop.run(timeout=0.6)  # the loop must neither raise nor keep waking up
        assert server.stats["icmp_echo_replies_sent"] == 5
        # Every frame the host sent in the loop (five replies, its announcement) failed, counted.
        announced = server.stats["arp_announcements_sent"]
        assert device.stats[counter] == len(failed) == 5 + announced
        assert device.stats["tx_frames"] == 0
        assert loop.stats["internal_errors"] == 0
        assert clock.reads < 20, f"{clock.reads} wake-ups in 0.6 s: the loop spins"
        # The error gone, the next request is answered.
        monkeypatch.undo()
        for frame in client.ping("192.0.2.2", clock.clock(), identifier=7, sequence=9):
            theirs.send(b"".join(frame))
        loop.run(until=lambda: device.stats["tx_frames"] >= 1, timeout=2.0)
        assert client.receive(theirs.recv(2048), clock.clock()) == []  # the echo reply, taken in
        assert client.stats["icmp_echo_replies_received"] == 1
        assert device.stats["tx_frames"] == 1
    finally:
        loop.close()
        device.close()
        ours.close()
        theirs.close()
