"""``run_until_quiet``: frames into a host, then its timers, on a clock that moves only to the
host's own deadlines."""

from __future__ import annotations

import math

import dpkt
import pytest

from stack import TapHost, TunHost
from stack.buffers import join
from stack.l2.neighbor import ARP_MAX_REQUESTS
from stack.l3.reassembly import REASSEMBLY_TIMEOUT_S
from stack.runtime.settle import run_until_quiet
from stack.testing import frames


def tap_host() -> TapHost:
    return TapHost([f"{frames.HOST_IP}/24"], mac=frames.HOST_MAC)


def arp_operations(sent) -> list[tuple[int, bytes, bytes]]:
    """(operation, sender IP, target IP) of every frame, which must all be ARP."""
    out = []
    for frame in map(join, sent):
        arp = dpkt.ethernet.Ethernet(frame).data
        assert isinstance(arp, dpkt.arp.ARP), frame.hex()
        out.append((arp.op, arp.spa, arp.tpa))
    return out


def test_a_fresh_host_sends_its_start_up_announcements_and_goes_quiet():
    host = tap_host()
    settled = run_until_quiet(host, 0.0)
    ours = frames.ip(frames.HOST_IP)
    # RFC 5227 3: two announcements, two seconds apart; the clock stops at the second.
    assert arp_operations(settled.sent) == [(dpkt.arp.ARP_OP_REQUEST, ours, ours)] * 2
    assert (settled.now, settled.quiet) == (2.0, True)
    assert host.next_deadline(settled.now) is None
    assert run_until_quiet(host, settled.now).sent == []


def test_a_timer_due_at_the_bound_runs():
    ours = frames.ip(frames.HOST_IP)
    announcement = (dpkt.arp.ARP_OP_REQUEST, ours, ours)
    at_once = run_until_quiet(tap_host(), 0.0, within=0.0)  # the first announcement is due at 0
    assert (arp_operations(at_once.sent), at_once.now) == ([announcement], 0.0)
    both = run_until_quiet(tap_host(), 0.0, within=2.0)  # the second at exactly 2
    assert (arp_operations(both.sent), both.now) == ([announcement] * 2, 2.0)


def test_frames_go_in_at_now_and_within_bounds_the_timers_that_run():
    host = tap_host()
    now = run_until_quiet(host, 0.0).now
    # The sender is unknown: the reply waits while ARP asks for it (RFC 1122 2.3.2.2).
    request = frames.echo_request_frame(src_ip="192.0.2.7", src_mac="02:00:00:00:00:07")
    at_once = run_until_quiet(host, now, [request], within=0.0)
    asked = (dpkt.arp.ARP_OP_REQUEST, frames.ip(frames.HOST_IP), frames.ip("192.0.2.7"))
    assert arp_operations(at_once.sent) == [asked]
    assert (at_once.now, at_once.quiet) == (now, True)
    # Then, left to its timers, it asks again until it gives up; the clock follows the retries.
    rest = run_until_quiet(host, at_once.now)
    assert arp_operations(rest.sent) == [asked] * (ARP_MAX_REQUESTS - 1)
    assert rest.quiet and now < rest.now < now + 10 and host.next_deadline(rest.now) is None


def test_the_clock_jumps_to_a_far_deadline_only_when_within_reaches_it():
    host = TunHost([frames.HOST_IP], peer=frames.KERNEL_IP)
    first = frames.ipv4_datagram(frames.KERNEL_IP, frames.HOST_IP, 1, frames.icmp_echo(8, 1, 1, bytes(2000))[:1480],
                                 identification=7, more_fragments=True)
    held = run_until_quiet(host, 5.0, [first], within=REASSEMBLY_TIMEOUT_S - 1)
    assert (held.sent, held.now, held.quiet) == ([], 5.0, True)
    expired = run_until_quiet(host, held.now)
    # RFC 1122 3.3.2: the first fragment came, so the timeout is told (Time Exceeded, code 1).
    [error] = map(join, expired.sent)
    assert (error[20], error[21]) == (11, 1)
    assert expired.now == 5.0 + REASSEMBLY_TIMEOUT_S and expired.quiet


class Restless:
    """A host whose timer is always due and sends one frame each time it runs."""

    def __init__(self) -> None:
        self.polled_at: list[float] = []

    def receive(self, frame, now: float):
        return [[b"answer to ", bytes(frame)]]

    def poll(self, now: float):
        self.polled_at.append(now)
        return [[b"tick"]]

    def next_deadline(self, now: float):
        return now - 1.0  # overdue, always


def test_max_timer_runs_bounds_a_host_that_is_never_quiet():
    host = Restless()
    settled = run_until_quiet(host, 3.0, [b"a", b"b"], max_timer_runs=4)
    assert [join(f) for f in settled.sent] == [b"answer to a", b"answer to b"] + [b"tick"] * 4
    # An overdue timer runs at now: the clock never goes back.
    assert host.polled_at == [3.0] * 4 and (settled.now, settled.quiet) == (3.0, False)


def test_max_timer_runs_zero_hands_over_the_frames_only():
    host = Restless()
    settled = run_until_quiet(host, 1.0, [b"x"], max_timer_runs=0)
    assert [join(f) for f in settled.sent] == [b"answer to x"]
    assert host.polled_at == [] and settled.quiet is False


@pytest.mark.parametrize("within", [0.0, 1.5, math.inf])
def test_an_idle_host_is_quiet_at_once(within):
    host = TunHost([frames.HOST_IP], peer=frames.KERNEL_IP)
    assert run_until_quiet(host, 7.0, within=within) == run_until_quiet(host, 7.0, max_timer_runs=0)
    assert run_until_quiet(host, 7.0, within=within).now == 7.0
