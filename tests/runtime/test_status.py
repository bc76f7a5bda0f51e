"""The live status line of ``tapstack run``: on a terminal only, at most four redraws a second,
erased before the counters at exit (a pseudo-terminal for the real thing)."""

from __future__ import annotations

import io

import pytest

from stack import TapHost
from stack.runtime.status import ERASE, StatusLine, describe, wanted
from stack.testing import frames


class Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_the_line_counts_frames_answers_and_the_top_drops():
    host = TapHost([f"{frames.HOST_IP}/24"], mac=frames.HOST_MAC)
    host.receive(frames.ECHO_REQUEST, 0.0)
    host.receive(frames.ARP_REQUEST, 0.0)
    for _ in range(3):
        host.receive(frames.ECHO_REQUEST[:24] + b"\x00\x00" + frames.ECHO_REQUEST[26:], 0.0)
    host.receive(b"\x02" * 5, 0.0)
    # out 3: an ARP request for the kernel, then the echo reply it released and the ARP reply
    assert describe(host.stats) == ("in 6  out 3  answers 2  drops 4: ipv4_bad_checksum 3, "
                                    "ethernet_runt 1")


def test_redrawn_at_most_four_times_a_second_of_the_loop_clock_and_erased():
    stream = Terminal()
    stats = TapHost([f"{frames.HOST_IP}/24"]).stats
    line = StatusLine(stream, lambda: stats, width=lambda: 200)
    now = 10.0
    while now < 12.0:  # a busy loop: a wake-up every millisecond for two seconds
        line.poll(now)
        assert line.next_deadline(now) <= now + 0.25
        now += 0.001
    assert 8 <= line.draws <= 9
    assert stream.getvalue().startswith(ERASE + "in 0  out 0") and "\n" not in stream.getvalue()
    line.erase()
    assert stream.getvalue().endswith(ERASE) and not line.shown


def test_never_wider_than_the_terminal():
    stats = TapHost([f"{frames.HOST_IP}/24"]).stats
    for reason in ("ipv4_bad_checksum", "ethernet_ipv6_not_supported", "icmp_type_not_handled"):
        stats.drop(reason)
    stream = Terminal()
    StatusLine(stream, lambda: stats, width=lambda: 40).draw()
    assert len(stream.getvalue()) - len(ERASE) == 39


@pytest.mark.parametrize("stderr_tty, stdout_tty, trace, verbose, shown", [
    (True, True, False, False, True),
    (False, True, False, False, False),  # stderr is a file or a pipe: never
    (True, True, True, False, False),  # the trace writes to the same terminal: it would tear the line
    (True, False, True, False, True),  # the trace goes to a file: fine
    (True, True, False, True, False),  # -v writes a line per drop
])
def test_shown_only_where_it_stays_readable(stderr_tty, stdout_tty, trace, verbose, shown):
    stderr = Terminal() if stderr_tty else io.StringIO()
    stdout = Terminal() if stdout_tty else io.StringIO()
    assert wanted(stderr, stdout, trace, verbose) is shown
