"""The event loop: the only place that reads the clock and waits on file descriptors.

One wake-up: wait (epoll) on the devices (and a signal wake-up pipe), read the clock once, drain
each readable device of up to ``BURST`` frames (each frame's answers are sent before the next
frame is read, so the receive buffer can be reused), then run the timers that are due.

Every call into a node, an agent or a device's timer is guarded: an exception there is a bug
(bad input is a counted drop, never an exception), so it is counted in the loop's ``stats``
(``internal_errors`` and ``internal_errors.<where>``), logged with the frame or the timer that
raised, and the loop goes on. A timer that raised is not called again for a while, doubling
while it keeps failing, so a bug that fails every time cannot spin the loop.
"""

from __future__ import annotations

import logging
import math
import select
import signal
import socket
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

from stack.buffers import Buffer
from stack.node import Verdict
from stack.stats import Stats
from stack.tap.base import Device, DeviceError
from stack.runtime.trace import Tracer

log = logging.getLogger(__name__)

#: Frames read from one device per wake-up before the others get their turn.
BURST = 64
#: Longest sleep, so ``until`` conditions are checked even when nothing happens.
MAX_WAIT_S = 0.5
#: A timer that raised waits this long before it is called again, twice as long after each
#: further failure in a row, at most ``MAX_BACKOFF_S``.
FIRST_BACKOFF_S = 0.01
MAX_BACKOFF_S = 1.0
#: How often ``Loop.wait`` asks whether what it waits for has come (a device back).
WAIT_INTERVAL_S = 0.1
#: Bytes of a frame shown (in hex) when handling it raised.
FRAME_HEX_BYTES = 64


class Node(Protocol):
    """What the loop drives: a sans-I/O host such as ``TapHost``."""

    stats: Stats

    def receive(self, frame: Buffer, now: float) -> list[list[Buffer]]: ...
    def poll(self, now: float) -> list[list[Buffer]]: ...
    def next_deadline(self, now: float) -> float | None: ...

    @property
    def verdict(self) -> Verdict:
        """What became of the last frame ``receive`` took (read only when tracing)."""
        ...


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
    #: Asks, without waiting, whether the device's fd has another frame (see ``Loop._drain``).
    readable: Callable[[float], list[tuple[int, int]]] | None = field(default=None, repr=False)


@dataclass(slots=True)
class _Backoff:
    """A timer that raised: how many times in a row, and when it may be called again."""

    failures: int
    until: float


class Loop:
    def __init__(self, clock: Callable[[], float] = time.monotonic,
                 max_wait: float = MAX_WAIT_S, busy_poll: float = 0.0) -> None:
        """``clock`` gives seconds (tests pass a fake one); ``max_wait`` caps one sleep.

        ``busy_poll`` (seconds, 0: off), as the kernel's ``net.core.busy_poll``: after a
        wake-up that brought frames, keep looking for the next one without sleeping for this
        long, so a request that follows a reply at once does not pay for a wake-up. It costs a
        CPU spinning for that long after every burst.
        """
        self.clock = clock
        self.max_wait = max_wait
        self.busy_poll = busy_poll
        self._busy_until = -math.inf
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
        #: Timers that raised, by ``id`` of their owner (node, agent or device).
        self._backoff: dict[int, _Backoff] = {}
        self._probes: list[select.epoll] = []
        self._hangup: Callable[[], None] | None = None
        #: Other file descriptors an agent waits on (``watch``): fd -> whether it wants them now.
        self._watched: dict[int, Callable[[], bool]] = {}
        self._watching: set[int] = set()
        self._hangup_pending = False
        #: SIGINT/SIGTERM received after the first one, while stopping (ignored).
        self.signals_while_stopping = 0

    def attach(self, device: Device, node: Node, agents: Sequence[Agent] = (),
               tracer: Tracer | None = None) -> Attachment:
        probe = select.epoll()
        probe.register(device.fileno(), select.EPOLLIN)
        self._probes.append(probe)
        attachment = Attachment(device, node, list(agents), tracer, probe.poll)
        self.attachments.append(attachment)
        self._by_fd[device.fileno()] = attachment
        self.epoll.register(device.fileno(), select.EPOLLIN)
        return attachment

    def device_replaced(self, attachment: Attachment, old_fd: int) -> None:
        """The attachment's device has a new file descriptor (re-attached after it went
        away, the old one closed): wait on the new one instead."""
        if self._by_fd.get(old_fd) is attachment:
            del self._by_fd[old_fd]
        try:
            self.epoll.unregister(old_fd)
        except OSError:  # closing the old fd already took it out (or the number is reused)
            pass
        fd = attachment.device.fileno()
        probe = select.epoll()
        probe.register(fd, select.EPOLLIN)
        self._probes.append(probe)
        attachment.readable = probe.poll
        self._by_fd[fd] = attachment
        self.epoll.register(fd, select.EPOLLIN)

    def wait(self, ready: Callable[[], bool], timeout: float, interval: float = WAIT_INTERVAL_S) -> bool:
        """Sleep until ``ready()`` (asked every ``interval`` seconds), ``timeout`` seconds, or a
        stop (SIGINT/SIGTERM end the sleep at once); whether ``ready()`` said yes. Nothing is
        received or sent meanwhile (a device gone, waiting for it to come back)."""
        sleeper = select.epoll()
        try:
            if self._wakeup_reader is not None:
                sleeper.register(self._wakeup_reader.fileno(), select.EPOLLIN)
            end = self.clock() + timeout
            while not self.stopped:
                if ready():
                    return True
                now = self.clock()
                if now >= end:
                    return False
                if sleeper.poll(min(interval, end - now)):
                    self._drain_wakeup()
            return False
        finally:
            sleeper.close()

    # ------------------------------------------------------------------ signals

    def install_signal_handlers(self, hangup: Callable[[], None] | None = None) -> None:
        """SIGINT and SIGTERM stop the loop cleanly; a wake-up pipe interrupts the wait.

        A second SIGINT or SIGTERM while stopping (the capture being finished, the counters
        printed) is logged and ignored: the handlers stay in place until
        ``restore_signal_handlers`` (``close`` calls it unless told not to). ``hangup``: SIGHUP
        calls it between two wake-ups, never in the middle of a frame (a capture reopened,
        log rotation); without it SIGHUP keeps its handler.
        """
        self._wakeup_reader, self._wakeup_writer = socket.socketpair()
        self._wakeup_reader.setblocking(False)
        self._wakeup_writer.setblocking(False)
        signal.set_wakeup_fd(self._wakeup_writer.fileno(), warn_on_full_buffer=False)
        self._by_fd[self._wakeup_reader.fileno()] = None
        self.epoll.register(self._wakeup_reader.fileno(), select.EPOLLIN)
        for signum in (signal.SIGINT, signal.SIGTERM):
            self._previous_handlers[signum] = signal.signal(signum, self._on_signal)
        if hangup is not None:
            self._hangup = hangup
            self._previous_handlers[signal.SIGHUP] = signal.signal(signal.SIGHUP, self._on_hangup)

    def _on_signal(self, signum: int, frame: Any) -> None:
        name = signal.Signals(signum).name
        if self.stopped and self.stop_reason is not None:
            # Stopping already: finishing the capture and the counters matters more than a
            # second Ctrl-C (which used to kill the process, exit 143, with neither).
            self.signals_while_stopping += 1
            log.info("%s while stopping: ignored, finishing the capture and the counters", name)
            return
        self.stop(name)

    def _on_hangup(self, signum: int, frame: Any) -> None:
        self._hangup_pending = True  # acted on by the loop, between wake-ups (``_serve``)

    def _take_hangup(self) -> None:
        """A SIGHUP came: call the hangup callback (guarded like every callback)."""
        self._hangup_pending = False
        try:
            self._hangup()  # type: ignore[misc]
        except Exception:
            self.stats.count("internal_errors")
            self.stats.count("internal_errors.hangup")
            log.exception("internal error handling SIGHUP")

    def stop(self, reason: str = "stopped") -> None:
        self.stopped = True
        self.stop_reason = reason

    # ------------------------------------------------------------------ running

    def watch(self, fd: int, wanted: Callable[[], bool]) -> bool:
        """Wake up when ``fd`` is readable while ``wanted()`` (an agent's input, such as
        ``tapstack connect``'s stdin; the agent reads it in its ``poll``). False when epoll cannot
        wait on it (a regular file, /dev/null: always readable; the agent reads it at once)."""
        try:
            self.epoll.register(fd, select.EPOLLIN)
        except PermissionError:
            return False
        self.epoll.unregister(fd)
        self._watched[fd] = wanted
        return True

    def _arm_watches(self) -> None:
        """Wait on a watched fd only while its agent wants it (level-triggered epoll would
        otherwise wake at once, again and again, for input nobody takes)."""
        for fd, wanted in self._watched.items():
            want = wanted()
            if want and fd not in self._watching:
                self.epoll.register(fd, select.EPOLLIN)
                self._watching.add(fd)
            elif not want and fd in self._watching:
                self.epoll.unregister(fd)
                self._watching.discard(fd)

    def run(self, until: Callable[[], bool] | None = None, timeout: float | None = None) -> None:
        """Run until ``stop()``, a signal, ``until()`` returning True, or ``timeout`` seconds."""
        self.stopped = False
        now = self.clock()
        end = now + timeout if timeout is not None else None
        try:
            self._serve(now, until, end)
        finally:
            self._flush()

    def _serve(self, now: float, until: Callable[[], bool] | None, end: float | None) -> None:
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
            if now < self._busy_until:
                wait = 0.0  # busy polling: look again at once
            self._flush()  # once per wake-up, before sleeping: a capture written in one go
            if self._watched:
                self._arm_watches()
            try:
                ready = self.epoll.poll(wait)  # seconds; epoll rounds up to whole milliseconds
            except InterruptedError:  # a signal whose handler raised: look again
                ready = []
            now = self.clock()  # the one clock read of this wake-up
            if self._hangup_pending:
                self._take_hangup()
            for fd, _ in ready:
                if fd in self._watching:
                    continue  # an agent's input: it reads it when polled, below
                attachment = self._by_fd[fd]
                if attachment is None:
                    self._drain_wakeup()
                else:
                    self._drain(attachment, now)
                    if self.busy_poll:
                        self._busy_until = now + self.busy_poll

    def _flush(self) -> None:
        """Let every device write out what it buffered during this wake-up (a capture)."""
        for attachment in self.attachments:
            try:
                attachment.device.flush()
            except Exception:  # a bug in a device wrapper: counted and logged, never fatal
                self.stats.count("internal_errors")
                self.stats.count("internal_errors.device_flush")
                log.exception("internal error flushing %r", attachment.device)

    def _run_timers(self, now: float) -> float | None:
        """Poll every node whose timer is due, every agent and every device timer that is due;
        return the earliest next deadline."""
        earliest: float | None = None
        for attachment in self.attachments:
            deadline = self._run_node_timer(attachment, now)
            for agent in attachment.agents:
                agent_deadline = self._run_agent(attachment, agent, now)
                if agent_deadline is not None and (deadline is None or agent_deadline < deadline):
                    deadline = agent_deadline
            device_deadline = self._run_device_timer(attachment, now)
            if device_deadline is not None and (deadline is None or device_deadline < deadline):
                deadline = device_deadline
            if deadline is not None and (earliest is None or deadline < earliest):
                earliest = deadline
        return earliest

    def _run_node_timer(self, attachment: Attachment, now: float) -> float | None:
        node = attachment.node
        if self._backoff and (held := self._held_back(node, now)) is not None:
            return held
        frames = None
        try:
            deadline = node.next_deadline(now)
            if deadline is not None and deadline <= now:
                frames = node.poll(now)
                deadline = node.next_deadline(now)
        except Exception:
            return self._timer_failed("node_timer", node, now)
        if self._backoff:
            self._backoff.pop(id(node), None)
        if frames:
            self._send(attachment, frames, now)
        return deadline

    def _run_agent(self, attachment: Attachment, agent: Agent, now: float) -> float | None:
        """Agents are polled at every wake-up (so they see replies at once)."""
        if self._backoff and (held := self._held_back(agent, now)) is not None:
            return held
        try:
            frames = agent.poll(now)
            deadline = agent.next_deadline(now)
        except Exception:
            return self._timer_failed("agent", agent, now)
        if self._backoff:
            self._backoff.pop(id(agent), None)
        if frames:
            self._send(attachment, frames, now)
        return deadline

    def _run_device_timer(self, attachment: Attachment, now: float) -> float | None:
        """A device holding frames (a ``FaultInjector`` delaying them) says when they are due:
        then its frames out are sent (``poll``) and its frames in received (``_drain``). A
        ``DeviceError`` is the device's condition, not a bug: it ends the run."""
        device = attachment.device
        if self._backoff and (held := self._held_back(device, now)) is not None:
            return held
        try:
            deadline = device.next_deadline(now)
            due = deadline is not None and deadline <= now
            if due:
                device.poll(now)
        except DeviceError:
            raise
        except Exception:
            return self._timer_failed("device_timer", device, now)
        if due:
            self._drain(attachment, now, probe=False)  # the held frames in that are due, all
            try:
                deadline = device.next_deadline(now)
            except DeviceError:
                raise
            except Exception:
                return self._timer_failed("device_timer", device, now)
        if self._backoff:
            self._backoff.pop(id(device), None)
        return deadline

    def _held_back(self, owner: object, now: float) -> float | None:
        """When a timer that raised may be called again, or None when it may be called now."""
        backoff = self._backoff.get(id(owner))
        if backoff is None or now >= backoff.until:
            return None
        return backoff.until

    def _timer_failed(self, where: str, owner: object, now: float) -> float:
        """Count and log a bug in a timer; hold the timer back (longer each time in a row)."""
        backoff = self._backoff.get(id(owner))
        failures = 1 if backoff is None else backoff.failures + 1
        delay = min(FIRST_BACKOFF_S * 2 ** (failures - 1), MAX_BACKOFF_S)
        self._backoff[id(owner)] = _Backoff(failures, now + delay)
        self.stats.count("internal_errors")
        self.stats.count(f"internal_errors.{where}")
        log.exception("internal error in the %s of %r (%d in a row): next call in %.3f s",
                      where.replace("_", " "), owner, failures, delay)
        return now + delay

    def _drain(self, attachment: Attachment, now: float, probe: bool = True) -> None:
        """Receive and answer up to ``BURST`` frames from a device.

        A wake-up usually brings one frame (ping waits for each answer before the next), and a
        read that finds nothing raises BlockingIOError, which costs three times as much as
        asking epoll whether the fd is readable without waiting. So after a first frame the
        loop asks (``probe``) before reading again; once a second frame came (a flood) it
        reads on and lets the device's None end the burst. (The device itself never waits.)
        """
        device, node, tracer = attachment.device, attachment.node, attachment.tracer
        readable = attachment.readable if probe else None
        for count in range(BURST):
            if count == 1 and readable is not None and not readable(0):
                return
            frame = device.recv(now)
            if frame is None:
                return
            try:
                out = node.receive(frame, now)
            except Exception:
                # A bug, never bad input (bad input is a counted drop): log it, keep serving.
                self.stats.count("internal_errors")
                self.stats.count("internal_errors.node_receive")
                log.exception("internal error receiving a %d-byte frame: %s", len(frame), _hex(frame))
                continue
            if tracer is not None:
                tracer.inbound(frame, node.verdict)
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

    def restore_signal_handlers(self) -> None:
        """Put back the handlers ``install_signal_handlers`` replaced (once the run is over)."""
        for signum, handler in self._previous_handlers.items():
            signal.signal(signum, handler)
        self._previous_handlers.clear()

    def close(self, restore_signals: bool = True) -> None:
        """Release the loop's descriptors. ``restore_signals=False`` keeps its signal handlers
        (a second signal is still ignored) until ``restore_signal_handlers``, e.g. until the
        counters are printed."""
        self.stopped = True
        if self.stop_reason is None:
            self.stop_reason = "closed"
        if restore_signals:
            self.restore_signal_handlers()
        if self._wakeup_writer is not None:
            signal.set_wakeup_fd(-1)
            self._wakeup_reader.close()  # type: ignore[union-attr]
            self._wakeup_writer.close()
            self._wakeup_reader = self._wakeup_writer = None
        self.epoll.close()
        for probe in self._probes:
            probe.close()
        self._probes.clear()


def _hex(frame: Buffer) -> str:
    """The first ``FRAME_HEX_BYTES`` bytes of a frame in hex (and how long it was, if longer)."""
    shown = bytes(frame[:FRAME_HEX_BYTES]).hex()
    return shown if len(frame) <= FRAME_HEX_BYTES else f"{shown}... ({len(frame)} bytes)"
