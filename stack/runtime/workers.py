"""One worker process per queue of a multi-queue TAP/TUN device (``tapstack run --queues N``).

Read first: Documentation/networking/tuntap.rst ("Multiqueue tuntap interface"); drivers/net/tun.c
(tun_automq_select_queue: the kernel picks a queue by the flow hash of each frame).

Each worker runs a host of its own (built from the same flags) in a loop of its own, on one
queue. What is per worker and what is shared, and why:

- neighbours (ARP) are *shared*: a broadcast ARP packet, or a reply to our request, lands on one
  queue only, while the datagrams waiting for that neighbour may be held by another worker. Each
  worker tells its siblings every entry it learns from the wire (``NeighbourExchange``: one
  datagram socket per worker, its inbox), and a worker that hears of one records it and sends
  what waited for it (``TapHost.learn``);
- reassembly is per worker: the kernel hashes a fragment on its addresses only (it has no ports
  to read), so every fragment of a datagram lands on the same queue (tests/root/test_queues_device.py
  checks it at the kernel's per-queue counters, and that fragmented pings are all answered);
- the ICMP error budget is per worker, each worker with its share (``share_of``), so that the
  workers together never send more errors than the one budget the user gave allows (RFC 1122
  3.2.2: errors SHOULD be rate-limited);
- counters are per worker and summed at exit into one table (``Supervisor``).

The parent forks the workers once every queue is open and the kernel side configured, then only
waits for them: a signal (SIGINT, SIGTERM) is passed on to every worker, a worker that dies is
reported and the others are stopped, and no worker outlives the parent (PR_SET_PDEATHSIG).
"""

from __future__ import annotations

import ctypes
import json
import logging
import os
import select
import signal
import socket
import struct
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from ipaddress import IPv4Address

from stack.buffers import Buffer
from stack.choices import HostChoices
from stack.l2.ethernet import MacAddress
from stack.node import TapHost, Verdict
from stack.stats import Stats

log = logging.getLogger(__name__)

#: One learnt neighbour on the wire between workers: the IPv4 address, then the MAC.
NEIGHBOUR_MESSAGE = struct.Struct("!4s6s")
#: SIGTERM has been passed on to the workers this many times (each wait is ``WAIT_S``) before
#: the ones still running are killed.
WAITS_BEFORE_KILL = 20
WAIT_S = 0.25
#: prctl(2) option: the signal this process gets when its parent dies.
PR_SET_PDEATHSIG = 1
STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM)


def share_of(choices: HostChoices, index: int, count: int) -> HostChoices:
    """Worker ``index``'s share of the ICMP error budget of ``count`` workers: the rate divided
    evenly, the burst too (the first ``burst % count`` workers one more), so the workers' sums are
    exactly the rate and burst given (RFC 1122 3.2.2: errors SHOULD be rate-limited)."""
    burst, extra = divmod(choices.icmp_error_burst, count)
    return replace(choices, icmp_errors_per_second=choices.icmp_errors_per_second / count,
                   icmp_error_burst=burst + (1 if index < extra else 0))


# ---------------------------------------------------------------------- neighbours, shared


def exchange_sockets(count: int) -> list[tuple[socket.socket, socket.socket]]:
    """One inbox per worker: a datagram socket pair, (the worker's end, the siblings' end)."""
    pairs = []
    for _ in range(count):
        inbox, sender = socket.socketpair(socket.AF_UNIX, socket.SOCK_DGRAM)
        inbox.setblocking(False)
        sender.setblocking(False)
        pairs.append((inbox, sender))
    return pairs


class NeighbourExchange:
    """Worker ``index``'s part of the exchange: it tells its siblings what it learns
    (``tell``, the host's neighbour observer) and reads what they learn from its inbox.

    For the loop it is a device (``fileno``, ``recv``): each "frame" in is one sibling's
    neighbour, which ``SiblingNeighbours`` gives to the host, and the frames the host sends in
    answer (the datagrams that waited for it) go out through ``queue``, the worker's own queue.
    """

    medium = "ethernet"

    def __init__(self, pairs: Sequence[tuple[socket.socket, socket.socket]], index: int,
                 queue=None) -> None:
        self.stats = Stats()
        self.queue = queue
        self._inbox = pairs[index][0]
        self._siblings = [sender for i, (_, sender) in enumerate(pairs) if i != index]
        # The ends this worker does not use (the siblings' inboxes, and its own sending end).
        for i, (inbox, sender) in enumerate(pairs):
            if i != index:
                inbox.close()
            else:
                sender.close()

    def tell(self, address: IPv4Address, mac: MacAddress, now: float) -> None:
        """Every sibling hears of a neighbour this worker learnt from the wire."""
        message = NEIGHBOUR_MESSAGE.pack(address.packed, bytes(mac))
        for sibling in self._siblings:
            try:
                sibling.send(message)
            except BlockingIOError:  # a sibling that stopped reading: it learns on its own
                self.stats.count("full")
            except OSError:  # a sibling that is gone: the supervisor stops everyone
                self.stats.count("failed")
            else:
                self.stats.count("told")

    # The loop's device

    def fileno(self) -> int:
        return self._inbox.fileno()

    def recv(self, now: float) -> bytes | None:
        try:
            return self._inbox.recv(64)
        except BlockingIOError:
            return None

    def send(self, frame: Sequence[Buffer], now: float) -> None:
        self.queue.send(frame, now)

    def next_deadline(self, now: float) -> float | None:
        return None

    def poll(self, now: float) -> None:
        pass

    def flush(self) -> None:
        pass

    def close(self) -> None:
        self._inbox.close()
        for sibling in self._siblings:
            sibling.close()


class SiblingNeighbours:
    """The loop's node for a ``NeighbourExchange``: each message in is a neighbour a sibling
    learnt, recorded by ``host`` (``TapHost.learn``); the frames out are what waited for it."""

    def __init__(self, host: TapHost, stats: Stats) -> None:
        self.host = host
        self.stats = stats
        self._replies = 0

    def receive(self, message: Buffer, now: float) -> list[list[Buffer]]:
        if len(message) != NEIGHBOUR_MESSAGE.size:  # only our workers write here; counted all the same
            self.stats.count("malformed")
            return []
        address, mac = NEIGHBOUR_MESSAGE.unpack(message)
        self.stats.count("heard")
        out = self.host.learn(IPv4Address(address), MacAddress(mac), now)
        # Datagrams this worker held for a neighbour whose ARP packet landed on another queue.
        self.stats.count("released", len(out))
        self._replies = len(out)
        return out

    def poll(self, now: float) -> list[list[Buffer]]:
        return []

    def next_deadline(self, now: float) -> float | None:
        return None

    @property
    def verdict(self) -> Verdict:
        return Verdict(self._replies)


# ---------------------------------------------------------------------- processes


@dataclass
class WorkerExit:
    """How one worker ended: its exit status (negative: killed by that signal) and counters."""

    index: int
    pid: int
    status: int
    counters: dict[str, int] | None = None

    def describe(self) -> str:
        if self.status < 0:
            return f"killed by {signal.Signals(-self.status).name}"
        return f"exited with status {self.status}"


#: What a worker runs: ``work(index, ready)`` serves queue ``index`` and returns (exit status,
#: counters); it calls ``ready()`` once its own signal handlers are in (signals wait till then).
Work = Callable[[int, Callable[[], None]], tuple[int, dict[str, int]]]


class Supervisor:
    """Forks ``count`` workers running ``work`` and waits for them (``wait``)."""

    def __init__(self, count: int, work: Work) -> None:
        self.count = count
        self.work = work
        self.pids: list[int] = []
        self._results: dict[int, int] = {}  # result pipe (read end) -> worker index
        self._received: dict[int, bytearray] = {}
        self.exits: list[WorkerExit] = []
        #: Set when a worker ended while the others still served: why everyone stops.
        self.failure: str | None = None
        self.stopping = False

    def start(self) -> None:
        """Fork the workers. Signals are held back until each worker's handlers are in."""
        sys.stdout.flush()  # nothing buffered is written twice, once by each process
        sys.stderr.flush()
        signal.pthread_sigmask(signal.SIG_BLOCK, STOP_SIGNALS)
        parent = os.getpid()
        for index in range(self.count):
            read_end, write_end = os.pipe()
            pid = os.fork()
            if pid == 0:
                os.close(read_end)
                for other in self._results:
                    os.close(other)
                self._child(index, write_end, parent)  # never returns
            os.close(write_end)
            self.pids.append(pid)
            self._results[read_end] = index
            self._received[read_end] = bytearray()

    def _child(self, index: int, result: int, parent: int) -> None:
        status, counters = 1, {}
        try:
            _die_with_parent(parent)
            status, counters = self.work(index, _release_signals)
        except BaseException:  # a bug: said once, the supervisor stops the others
            log.exception("worker %d (queue %d) failed", os.getpid(), index)
        finally:
            try:
                sys.stdout.flush()
                sys.stderr.flush()
                _write_all(result, json.dumps({"status": status, "counters": counters}).encode())
            finally:
                os._exit(status)

    def wait(self) -> list[WorkerExit]:
        """Until every worker ended: SIGINT and SIGTERM are passed on to all of them; a worker
        that ends while the others serve stops them too. Returns how each ended."""
        wakeup_reader, wakeup_writer = socket.socketpair()
        wakeup_reader.setblocking(False)
        wakeup_writer.setblocking(False)
        previous_wakeup = signal.set_wakeup_fd(wakeup_writer.fileno(), warn_on_full_buffer=False)
        previous = {signum: signal.signal(signum, self._on_signal) for signum in STOP_SIGNALS}
        _release_signals()
        waits = 0
        try:
            while self._results:
                ready, _, _ = select.select([*self._results, wakeup_reader], [], [], WAIT_S)
                for fd in ready:
                    if fd is wakeup_reader:
                        _drain(wakeup_reader)
                    else:
                        self._read_result(fd)
                if self.stopping and not ready:
                    waits += 1
                    if waits >= WAITS_BEFORE_KILL:
                        self._signal_all(signal.SIGKILL)
        finally:
            for signum, handler in previous.items():
                signal.signal(signum, handler)
            signal.set_wakeup_fd(previous_wakeup)
            wakeup_reader.close()
            wakeup_writer.close()
        return sorted(self.exits, key=lambda e: e.index)

    def _on_signal(self, signum: int, frame: object) -> None:
        self.stop()

    def stop(self) -> None:
        """Ask every worker still running to stop (SIGTERM)."""
        self.stopping = True
        self._signal_all(signal.SIGTERM)

    def _signal_all(self, signum: int) -> None:
        ended = {e.pid for e in self.exits}
        for pid in self.pids:
            if pid not in ended:
                try:
                    os.kill(pid, signum)
                except ProcessLookupError:
                    pass

    def _read_result(self, fd: int) -> None:
        chunk = os.read(fd, 65536)
        if chunk:
            self._received[fd] += chunk
            return
        # End of file: the worker has ended (or is about to: collect it).
        index = self._results.pop(fd)
        os.close(fd)
        pid = self.pids[index]
        _, raw = os.waitpid(pid, 0)
        status = os.waitstatus_to_exitcode(raw)
        counters = None
        try:
            counters = json.loads(self._received.pop(fd))["counters"]
        except (ValueError, KeyError, TypeError):
            pass
        outcome = WorkerExit(index, pid, status, counters)
        self.exits.append(outcome)
        if not self.stopping:
            self.failure = f"worker {pid} (queue {index}) {outcome.describe()}"
            self.stop()


def _release_signals() -> None:
    signal.pthread_sigmask(signal.SIG_UNBLOCK, STOP_SIGNALS)


def _die_with_parent(parent: int) -> None:
    """No orphans: this worker gets SIGTERM when the parent dies (prctl PR_SET_PDEATHSIG)."""
    libc = ctypes.CDLL(None, use_errno=True)
    libc.prctl(PR_SET_PDEATHSIG, signal.SIGTERM, 0, 0, 0)
    if os.getppid() != parent:  # the parent died before prctl: nobody would tell us
        os._exit(1)


def _write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view):]
    os.close(fd)


def _drain(sock: socket.socket) -> None:
    try:
        while sock.recv(512):
            pass
    except BlockingIOError:
        pass


def summed(exits: Sequence[WorkerExit]) -> Stats:
    """The workers' counters added up: one table for the whole host."""
    total = Stats()
    for outcome in exits:
        if outcome.counters:
            total.counters.update(outcome.counters)
    return total
