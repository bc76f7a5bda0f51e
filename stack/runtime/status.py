"""A live one-line status for ``tapstack run`` on a terminal: frames in and out, answers, drops.

Not part of the sans-I/O core: an agent of the loop (``poll(now)`` / ``next_deadline(now)``)
that writes to a terminal. It redraws at most every ``interval`` seconds of the loop's clock,
erases itself before anything else is written (log lines, the counters at exit), and is only
used when stderr is a terminal (see ``wanted``).
"""

from __future__ import annotations

import logging
import shutil
from collections.abc import Callable
from typing import TextIO

from stack.stats import Stats

#: At most four redraws a second: enough to watch, cheap for the loop.
INTERVAL_S = 0.25
#: Drop reasons shown on the line, most frequent first.
TOP_REASONS = 3
ERASE = "\r\x1b[K"  # carriage return, then clear to the end of the line (ECMA-48 EL)
ANSWERS = ("icmp_echo_replies_sent", "arp_replies_sent", "icmp_errors_sent")


def wanted(stderr: TextIO, stdout: TextIO, trace: bool, verbose: bool) -> bool:
    """Show the line only on a terminal, and only where nothing else writes lines all the time:
    not with -v (a debug line per drop) nor with --trace printing to a terminal (a line per
    frame); the line is redrawn in place, and other lines would tear it."""
    try:
        if not stderr.isatty():
            return False
        return not verbose and not (trace and stdout.isatty())
    except (AttributeError, ValueError):  # a closed or odd stream
        return False


def describe(stats: Stats) -> str:
    answers = sum(stats[name] for name in ANSWERS)
    text = f"in {stats['rx_frames']}  out {stats['tx_frames']}  answers {answers}  drops {stats['dropped']}"
    top = sorted(stats.drops.items(), key=lambda item: (-item[1], item[0]))[:TOP_REASONS]
    if top:
        text += ": " + ", ".join(f"{reason} {count}" for reason, count in top)
    return text


class StatusLine:
    """An agent that redraws ``describe(stats())`` on ``stream`` at most every ``interval``."""

    def __init__(self, stream: TextIO, stats: Callable[[], Stats], interval: float = INTERVAL_S,
                 width: Callable[[], int] | None = None) -> None:
        self.stream = stream
        self.stats = stats
        self.interval = interval
        self.width = width or (lambda: shutil.get_terminal_size().columns)
        self.shown = False
        self.draws = 0
        self._next_at: float | None = None

    def poll(self, now: float) -> list:
        if self._next_at is None or now >= self._next_at:
            self.draw()
            self._next_at = now + self.interval
        return []

    def next_deadline(self, now: float) -> float | None:
        return self._next_at

    def draw(self) -> None:
        text = describe(self.stats())[:max(self.width() - 1, 10)]  # never wrap: \r could not undo it
        self.stream.write(ERASE + text)
        self.stream.flush()
        self.shown = True
        self.draws += 1

    def erase(self) -> None:
        if self.shown:
            self.stream.write(ERASE)
            self.stream.flush()
            self.shown = False


class EraseBeforeLogging(logging.Filter):
    """Attached to a log handler: a log line first erases the status line (redrawn later)."""

    def __init__(self, status: StatusLine) -> None:
        super().__init__()
        self.status = status

    def filter(self, record: logging.LogRecord) -> bool:
        self.status.erase()
        return True
