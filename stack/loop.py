"""The event loop: the only place that reads the clock and waits on file descriptors.

One wake-up: wait (epoll) on the devices (and a signal wake-up pipe), read the clock once, drain
each readable device of up to ``BURST`` frames (each frame's answers are sent before the next
frame is read, so the receive buffer can be reused), then run the timers that are due.
"""

from __future__ import annotations

import logging
import select
import signal
import socket
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

from stack.buffers import Buffer
from stack.stats import Stats
from stack.tap.base import Device
from stack.trace import Tracer

log = logging.getLogger(__name__)

#: Frames read from one device per wake-up before the others get their turn.
BURST = 64
#: Longest sleep, so ``until`` conditions are checked even when nothing happens.
MAX_WAIT_S = 0.5


class Node(Protocol):
    """What the loop drives: a sans-I/O host such as ``TapHost``."""

    stats: Stats

    def receive(self, frame: Buffer, now: float) -> list[list[Buffer]]: ...
    def poll(self, now: float) -> list[list[Buffer]]: ...
    def next_deadline(self, now: float) -> float | None: ...


class Agent(Protocol):
    """Something that uses a node and sends through its device, e.g. a ``PingSession``.

    ``poll`` is called at every wake-up (so it sees replies at once); ``next_deadline`` bounds
    the sleep.
    """

    def poll(self, now: float) -> list[list[Buffer]]: ...
    def next_deadline(self, now: float) -> float | None: ...


@dataclass
class Attachment:
    device: Device
    node: Node
    agents: list[Agent] = field(default_factory=list)
    tracer: Tracer | None = None


class Loop:
    def __init__(self, clock: Callable[[], float] = time.monotonic,
                 max_wait: float = MAX_WAIT_S) -> None:
        """``clock`` gives seconds (tests pass a fake one); ``max_wait`` caps one sleep."""
        self.clock = clock
        self.max_wait = max_wait
        self._previous_handlers: dict[int, Any] = {}
        self.attachments: list[Attachment] = []
        # epoll itself rather than ``selectors``: the wrapper's bookkeeping costs as much per
        # wake-up as the wait (Linux only, as TAP and TUN are). What each fd is for, by fd:
        # an attachment, or None for the signal wake-up socket.
        self.epoll = select.epoll()
        self._by_fd: dict[int, Attachment | None] = {}
        self.stopped = False
        self.stop_reason: str | None = None
        self._wakeup_reader: socket.socket | None = None
        self._wakeup_writer: socket.socket | None = None
        self.stats = Stats()  # the loop's own counters (internal errors)

    def attach(self, device: Device, node: Node, agents: Sequence[Agent] = (),
               tracer: Tracer | None = None) -> Attachment:
        attachment = Attachment(device, node, list(agents), tracer)
        self.attachments.append(attachment)
        self._by_fd[device.fileno()] = attachment
        self.epoll.register(device.fileno(), select.EPOLLIN)
        return attachment

    # ------------------------------------------------------------------ signals

    def install_signal_handlers(self) -> None:
        """SIGINT and SIGTERM stop the loop cleanly; a wake-up pipe interrupts ``select``."""
        self._wakeup_reader, self._wakeup_writer = socket.socketpair()
        self._wakeup_reader.setblocking(False)
        self._wakeup_writer.setblocking(False)
        signal.set_wakeup_fd(self._wakeup_writer.fileno(), warn_on_full_buffer=False)
        self._by_fd[self._wakeup_reader.fileno()] = None
        self.epoll.register(self._wakeup_reader.fileno(), select.EPOLLIN)
        for signum in (signal.SIGINT, signal.SIGTERM):
            self._previous_handlers[signum] = signal.signal(signum, self._on_signal)

    def _on_signal(self, signum: int, frame: Any) -> None:
        self.stop(signal.Signals(signum).name)

    def stop(self, reason: str = "stopped") -> None:
        self.stopped = True
        self.stop_reason = reason

    # ------------------------------------------------------------------ running

    def run(self, until: Callable[[], bool] | None = None, timeout: float | None = None) -> None:
        """Run until ``stop()``, a signal, ``until()`` returning True, or ``timeout`` seconds."""
        self.stopped = False
        now = self.clock()
        end = now + timeout if timeout is not None else None
        while True:
            deadline = self._run_timers(now)
            if self.stopped:
                break
            if until is not None and until():
                self.stop("done")
                break
            if end is not None:
                if now >= end:
                    self.stop("timeout")
                    break
                deadline = end if deadline is None else min(deadline, end)
            wait = self.max_wait if deadline is None else min(max(deadline - now, 0.0), self.max_wait)
            try:
                ready = self.epoll.poll(wait)  # seconds; epoll rounds up to whole milliseconds
            except InterruptedError:  # a signal whose handler raised: look again
                ready = []
            now = self.clock()  # the one clock read of this wake-up
            for fd, _ in ready:
                attachment = self._by_fd[fd]
                if attachment is None:
                    self._drain_wakeup()
                else:
                    self._drain(attachment, now)

    def _run_timers(self, now: float) -> float | None:
        """Poll every node whose timer is due and every agent; return the earliest next deadline."""
        earliest: float | None = None
        for attachment in self.attachments:
            node = attachment.node
            deadline = node.next_deadline(now)
            if deadline is not None and deadline <= now:
                self._send(attachment, node.poll(now), now)
                deadline = node.next_deadline(now)
            for agent in attachment.agents:
                self._send(attachment, agent.poll(now), now)
                agent_deadline = agent.next_deadline(now)
                if agent_deadline is not None and (deadline is None or agent_deadline < deadline):
                    deadline = agent_deadline
            device_deadline = self._run_device_timer(attachment, now)
            if device_deadline is not None and (deadline is None or device_deadline < deadline):
                deadline = device_deadline
            if deadline is not None and (earliest is None or deadline < earliest):
                earliest = deadline
        return earliest

    def _run_device_timer(self, attachment: Attachment, now: float) -> float | None:
        """A device holding frames (a ``FaultInjector`` delaying them) says when they are due:
        then its frames out are sent (``poll``) and its frames in received (``_drain``)."""
        next_deadline = getattr(attachment.device, "next_deadline", None)
        if next_deadline is None:
            return None
        deadline = next_deadline(now)
        if deadline is not None and deadline <= now:
            attachment.device.poll(now)  # type: ignore[attr-defined]
            self._drain(attachment, now)
            deadline = next_deadline(now)
        return deadline

    def _drain(self, attachment: Attachment, now: float) -> None:
        device, node, tracer = attachment.device, attachment.node, attachment.tracer
        for _ in range(BURST):
            frame = device.recv(now)
            if frame is None:
                return
            drops_before = node.stats["dropped"] if tracer is not None else 0
            try:
                out = node.receive(frame, now)
            except Exception:
                # A bug, never bad input (bad input is a counted drop): log it, keep serving.
                self.stats.count("internal_errors")
                log.exception("internal error handling a %d-byte frame: %s", len(frame), bytes(frame).hex())
                continue
            if tracer is not None:
                dropped = node.stats["dropped"] > drops_before
                tracer.inbound(frame, len(out), node.stats.last_drop if dropped else None,
                               node.stats.last_drop_detail if dropped else None)
            # This frame's answers go out before the next frame is read into the same buffer
            # (``_send``, written out: it runs once per frame).
            for reply in out:
                if tracer is not None:
                    tracer.outbound(reply)
                device.send(reply, now)

    def _send(self, attachment: Attachment, frames: list[list[Buffer]], now: float) -> None:
        for frame in frames:
            if attachment.tracer is not None:
                attachment.tracer.outbound(frame)
            attachment.device.send(frame, now)

    def _drain_wakeup(self) -> None:
        assert self._wakeup_reader is not None
        try:
            while self._wakeup_reader.recv(512):
                pass
        except BlockingIOError:
            pass

    def close(self) -> None:
        for signum, handler in self._previous_handlers.items():
            signal.signal(signum, handler)
        self._previous_handlers.clear()
        if self._wakeup_writer is not None:
            signal.set_wakeup_fd(-1)
            self._wakeup_reader.close()  # type: ignore[union-attr]
            self._wakeup_writer.close()
            self._wakeup_reader = self._wakeup_writer = None
        self.epoll.close()
