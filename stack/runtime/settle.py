"""A host without a device: hand it frames, then run its timers until it is quiet.

The loop (``stack.runtime.loop``) drives a host from a device on the wall clock; the tools ask
"what does this host send for these frames?" with neither (``tapstack explain`` asks a fresh
host, ``tapstack diff`` the host it compares with Linux, the benchmarks a settled one). Sans-I/O:
``now`` is an argument, and the clock moves only to the host's own timer deadlines.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Protocol

from stack.buffers import Buffer, Frame

#: The most timer runs one call makes: a timer that keeps coming due cannot hold a tool forever.
MAX_TIMER_RUNS = 1000


class Host(Protocol):
    """What ``run_until_quiet`` needs of a host (``TapHost`` and ``TunHost`` have it)."""

    def receive(self, frame: Buffer, now: float) -> list[Frame]: ...
    def poll(self, now: float) -> list[Frame]: ...
    def next_deadline(self, now: float) -> float | None: ...


@dataclass(frozen=True)
class Settled:
    """What ``run_until_quiet`` saw: every frame the host sent, in order (each a list of
    buffers, as from ``receive``), the host's clock when it was left, and whether it was quiet
    then (no timer due within the bound) rather than stopped by ``max_timer_runs``."""

    sent: list[Frame]
    now: float
    quiet: bool


def run_until_quiet(host: Host, now: float, frames: Iterable[Buffer] = (), *,
                    within: float = math.inf, max_timer_runs: int = MAX_TIMER_RUNS) -> Settled:
    """Hand ``frames`` to ``host`` at ``now``, then run its timers as they come due, moving the
    clock to each deadline, until no timer is due by ``now + within`` (quiet) or
    ``max_timer_runs`` runs have been made.

    ``within=0``: only what is due at once; the default, until no timer is left at all (a
    fresh host's start-up announcements). ``max_timer_runs=0``: the frames only, no timer.
    """
    sent: list[Frame] = []
    for frame in frames:
        sent += host.receive(frame, now)
    end = now + within
    runs = 0
    while (deadline := host.next_deadline(now)) is not None and deadline <= end:
        if runs >= max_timer_runs:
            return Settled(sent, now, quiet=False)
        now = max(now, deadline)
        sent += host.poll(now)
        runs += 1
    return Settled(sent, now, quiet=True)
