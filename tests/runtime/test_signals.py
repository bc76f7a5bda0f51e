"""The loop's signals in process: a second SIGINT/SIGTERM while stopping, SIGHUP between
wake-ups, and ``Loop.wait`` (ended at once by a signal)."""

from __future__ import annotations

import os
import signal
import time

import pytest

from stack import TapHost
from stack.runtime.loop import Loop
from stack.tap.pair import device_pair


@pytest.fixture
def loop():
    ours, theirs = device_pair()
    loop = Loop()
    loop.attach(ours, TapHost(["192.0.2.2/24"]))
    yield loop
    loop.close()
    ours.close()
    theirs.close()


class Signaller:
    """An agent that sends this process ``signals`` (one per wake-up)."""

    def __init__(self, *signals: int) -> None:
        self.signals = list(signals)

    def poll(self, now):
        if self.signals:
            os.kill(os.getpid(), self.signals.pop(0))
        return []

    def next_deadline(self, now):
        return now if self.signals else None


def test_a_second_signal_while_stopping_is_ignored_until_the_handlers_are_restored(loop):
    previous = signal.getsignal(signal.SIGTERM)
    loop.install_signal_handlers()
    loop.attachments[0].agents.append(Signaller(signal.SIGTERM))
    loop.run(timeout=5.0)
    assert loop.stop_reason == "SIGTERM"
    loop.close(restore_signals=False)
    os.kill(os.getpid(), signal.SIGINT)  # would raise KeyboardInterrupt with the default handler
    os.kill(os.getpid(), signal.SIGTERM)  # would end pytest with the default one
    assert loop.signals_while_stopping == 2 and loop.stop_reason == "SIGTERM"
    loop.restore_signal_handlers()
    assert signal.getsignal(signal.SIGTERM) == previous


def test_sighup_calls_the_hangup_callback_between_wake_ups_and_goes_on(loop):
    calls = []
    before = signal.getsignal(signal.SIGHUP)  # SIG_DFL, or SIG_IGN under nohup
    loop.install_signal_handlers(hangup=lambda: calls.append(loop.stopped))
    loop.attachments[0].agents.append(Signaller(signal.SIGHUP, signal.SIGHUP))
    loop.run(until=lambda: len(calls) == 2, timeout=5.0)
    assert calls == [False, False] and loop.stop_reason == "done"
    loop.close()
    assert signal.getsignal(signal.SIGHUP) == before  # put back as it was


def test_a_failing_hangup_callback_is_counted_not_fatal(loop):
    def hangup():
        raise RuntimeError("a bug")

    loop.install_signal_handlers(hangup=hangup)
    loop.attachments[0].agents.append(Signaller(signal.SIGHUP))
    loop.run(until=lambda: loop.stats["internal_errors"] > 0, timeout=5.0)
    assert loop.stats["internal_errors.hangup"] == 1


def test_wait_returns_when_ready_at_the_timeout_or_at_a_signal(loop):
    loop.install_signal_handlers()
    answers = iter([False, False, True])
    assert loop.wait(lambda: next(answers), timeout=5.0, interval=0.01) is True
    started = time.monotonic()
    assert loop.wait(lambda: False, timeout=0.2, interval=0.05) is False
    assert 0.2 <= time.monotonic() - started < 1.0
    signal.setitimer(signal.ITIMER_REAL, 0.05)  # SIGALRM is not ours: use SIGTERM via a handler
    previous = signal.signal(signal.SIGALRM, lambda *_: os.kill(os.getpid(), signal.SIGTERM))
    try:
        started = time.monotonic()
        assert loop.wait(lambda: False, timeout=10.0, interval=5.0) is False
        assert time.monotonic() - started < 2.0 and loop.stop_reason == "SIGTERM"
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)
