"""How fast does tapstack answer ping, against the Linux kernel and a minimal Python responder,
measured side by side in one run, not pinned (as users run it) and pinned to one CPU?

Run as root:  python bench/ping_bench.py [--rounds N] [--modes unpinned,pinned] [--cpu K]
                                         [--only NAMES] [--json FILE] [--no-check] [--quick]

Every responder is pinged by the kernel's own ping (iputils), from inside network namespaces
this script creates and always deletes (also on Ctrl-C and SIGTERM); nothing touches the root
namespace. The responders, each in namespaces of its own:

  kernel     two namespaces joined by a veth pair; the kernel at 198.51.100.1 pings the kernel
             at 198.51.100.2. The baseline.
  tapstack   ``python -m stack run --tap tap0`` answers as 192.0.2.2 and the kernel on the
             other end of tap0 (192.0.2.1) pings it.
  tapstack-busy-poll
             the same with ``--busy-poll 50``: after each burst the loop keeps looking for the next
             frame for 50 us instead of sleeping (a CPU spins meanwhile).
  tapstack-tun, tapstack-tun-pi
             the same over a TUN device, point to point: ``python -m stack run --tun tun0 --ip
             192.0.2.2 --host-ip 192.0.2.1`` (bare IP packets, no ARP), opened with IFF_NO_PI,
             and with ``--pi`` without it (every packet carries the 4-byte packet information).
  yardstick-tap, yardstick-tun
             ``bench/minimal_responder.py`` on the same TAP and TUN set-ups: about 60 lines that
             readv, verify both checksums and answer ARP and echo in place with one writev. The
             floor of what Python can do per frame: what tapstack's cost is compared with.

One round of one responder in one mode is two measurements:

  latency    ``ping -i 0 -c 1000 -W 1``: iputils waits for each reply before sending the next
             request (one in flight), so every ``time=X ms`` line is one unloaded round trip:
             the round's median and 99th percentile (nearest rank) of the answered ones, and the
             loss.
  capacity   ``ping -f -l 32 -c 20000 -w 60``: flood ping, keeping 32 requests in flight.
             Answers per second = replies received / wall time of the ping process (which
             includes ping's and ``ip netns exec``'s start-up, a few milliseconds: an honest lower
             bound; ping's own ``time Nms`` is kept in the JSON). ping ends with up to 31
             requests still in flight, which is not loss. A flood that gets fewer than ``-c``
             replies waits for its whole deadline, which understates answers/s: that is noted.
             For responders that are a process (tapstack, the yardstick), the CPU time it spent
             per answer during the flood (``/proc/PID/task/*/schedstat``: user, system and the
             kernel work done in its context, such as carrying each reply up to ping's socket).

Modes: ``unpinned``, ping and the responder may run on any CPU this script may (as users run:
on a 2-CPU machine round trips are bimodal, about 3x slower when pinger and responder wake each
other across CPUs); ``pinned``, both on CPU ``--cpu`` (default the last; the kernel answers in
softirq on the sender's CPU anyway). The mode is switched by setting the running responder's CPU
affinity (every thread) and starting ping under ``taskset``; no responder is restarted.

Order, and why: every responder is started once, at the start, and stays up (an idle one sleeps
in the kernel); then for each round, for each mode, for each responder: latency, then capacity.
So each responder is measured within seconds of every other in each round, and a change in the
shared machine's load (another job starting) hits all of them alike instead of passing for a
difference between two responders measured minutes apart; and the figures of one round and one
mode are measured side by side, so their ratio is a fair comparison on its own. Odd rounds visit
the (mode, responder) pairs in reverse order, so a steady drift cancels out (ABBA). Restarting
every responder for every measurement would cost 70 start-ups for nothing.

Statistics: every figure (median RTT, p99 RTT, answers/s, CPU per answer) is reported as the
median over the rounds, with the spread (min-max over the rounds). A ratio (tapstack's figure to
the yardstick's on the same device, or to the kernel's) is the ratio of the two medians, shown
with its spread: the min-max of each round's ratio of the two figures measured side by side. A
round that could not measure a figure (no reply at all) leaves it out of the median and the
spread, and is counted: a target is met only when both figures were measured in every round.

In process: each round also runs ``bench/echo_cost.py`` and ``bench/drop_cost.py`` (no device,
not pinned; each figure already the best of five timings) and reports their figures the same
way (median over rounds, spread).

Targets (issue 12), checked in every mode measured: for tapstack over TAP and TUN (and TUN with
``--pi``), against the yardstick on the same device: median RTT at most 1.2x, capacity at least
0.8x, CPU per answer at most 1.25x; against the kernel: median RTT at most 5x, capacity at least
0.3x; tapstack-busy-poll: median RTT at most 2.5x the kernel's (its ratios to the yardstick are
shown, not checked: the CPU it spins is its documented price). In process, at most: another MAC
or an unknown EtherType 1.5 us, a bad IPv4 header checksum 4 us, an ARP request for us from a
known or new sender 8 us. Exit status 0 when all are met (or with --no-check), 1 when one is not
(or a responder misbehaved), 2 when the benchmark cannot run here (not root, a tool missing, bad
arguments).
"""

from __future__ import annotations

import argparse
import json
import math
import os
import platform
import re
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, ExitStack, contextmanager
from dataclasses import asdict, dataclass, field
from functools import partial
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
PREFIX = f"tsk-bench-{os.getpid()}"  # every namespace this run creates starts with this


@dataclass(frozen=True)
class Counts:
    """How much one round measures."""

    latency: int = 1000  # ping -i 0 -c LATENCY
    flood: int = 20000  # ping -f -c FLOOD
    in_process: int = 20000  # --count of echo_cost.py and drop_cost.py


FULL = Counts()
QUICK = Counts(latency=100, flood=2000, in_process=1000)  # --quick, for tests
FLOOD_PRELOAD = 32
FLOOD_DEADLINE_S = 60
DEFAULT_ROUNDS = 5
MODES = ("unpinned", "pinned")

STACK_READY_ATTEMPTS = 30  # `ping -c 1 -W 1` tries before giving up on a starting stack
STACK_STOP_TIMEOUT_S = 10
IN_PROCESS_TIMEOUT_S = 600


class BenchError(Exception):
    """The benchmark could not measure (a command failed, a responder did not answer)."""


# ---------------------------------------------------------------------- commands


def run(argv: list[str], timeout: float = 30, check: bool = True) -> subprocess.CompletedProcess[str]:
    result = subprocess.run(argv, capture_output=True, text=True, timeout=timeout, stdin=subprocess.DEVNULL)
    if check and result.returncode != 0:
        raise BenchError(f"{' '.join(argv)} failed ({result.returncode}): {result.stderr.strip()}")
    return result


def in_ns(namespace: str, *argv: str) -> list[str]:
    return ["ip", "netns", "exec", namespace, *argv]


@contextmanager
def namespace(name: str) -> Iterator[str]:
    """A fresh network namespace with lo up and IPv6 off (no router solicitations, no DAD)."""
    run(["ip", "netns", "add", name])
    try:
        run(in_ns(name, "ip", "link", "set", "lo", "up"))
        run(in_ns(name, "sysctl", "-q", "-w", "net.ipv6.conf.all.disable_ipv6=1",
                  "net.ipv6.conf.default.disable_ipv6=1"))
        yield name
    finally:
        run(["ip", "netns", "del", name], check=False)


# ---------------------------------------------------------------------- modes


@dataclass(frozen=True)
class Mode:
    """Where ping and the responder may run: ``cpus`` for the responder, ``ping_prefix`` for ping."""

    name: str
    cpus: frozenset[int]
    ping_prefix: tuple[str, ...] = ()

    @property
    def title(self) -> str:
        cpus = ",".join(str(cpu) for cpu in sorted(self.cpus))
        if self.name == "pinned":
            return f"pinned: ping and the responder on CPU {cpus}"
        return f"not pinned: ping and the responder on any of CPUs {cpus}, as users run"


def make_mode(name: str, cpu: int, allowed: set[int]) -> Mode:
    if name == "pinned":
        return Mode(name, frozenset({cpu}), ("taskset", "-c", str(cpu)))
    return Mode(name, frozenset(allowed))


def set_affinity(pid: int, cpus: frozenset[int]) -> None:
    """Let every thread of ``pid`` run on ``cpus`` only (the running process, no restart)."""
    for task in Path(f"/proc/{pid}/task").iterdir():
        try:
            os.sched_setaffinity(int(task.name), cpus)
        except ProcessLookupError:  # a thread that has just ended
            pass


# ---------------------------------------------------------------------- responders
#
# A responder is a context manager factory: given a namespace name prefix of its own, it builds
# its topology, starts whatever answers, yields the namespace to ping from, and tears everything
# down on exit. Adding one is one more entry in RESPONDERS.


@dataclass(frozen=True)
class Running:
    namespace: str  # where to ping from
    pid: int | None = None  # the answering process, when it is one (for its CPU time and affinity)


@dataclass(frozen=True)
class Responder:
    name: str
    address: str  # what ping targets
    start: Callable[[str], AbstractContextManager[Running]]


@contextmanager
def kernel_responder(prefix: str) -> Iterator[Running]:
    """The kernel answering the kernel: namespace a --veth-- namespace b."""
    with namespace(f"{prefix}a") as a, namespace(f"{prefix}b") as b:
        run(["ip", "-n", a, "link", "add", "veth0", "type", "veth", "peer", "name", "veth1", "netns", b])
        run(["ip", "-n", a, "address", "add", "198.51.100.1/24", "dev", "veth0"])
        run(["ip", "-n", b, "address", "add", "198.51.100.2/24", "dev", "veth1"])
        run(["ip", "-n", a, "link", "set", "veth0", "up"])
        run(["ip", "-n", b, "link", "set", "veth1", "up"])
        wait_until_answering(a, "198.51.100.2", alive=lambda: None)
        yield Running(a)


@contextmanager
def tapstack_responder(prefix: str, device_args: tuple[str, ...] = ("--tap", "tap0"),
                       ip: str = "192.0.2.2/24", host_ip: str = "192.0.2.1/24") -> Iterator[Running]:
    """``python -m stack run`` in a namespace; the kernel on the device's other end pings it.

    ``--host-ip`` has the stack configure the kernel side (address, link up) itself. On a TAP
    device both addresses carry a prefix length; on a TUN device (``device_args`` ``("--tun",
    "tun0", ...)``) they are bare, and the kernel side becomes ``host_ip`` peer ``ip``.
    """
    with namespace(prefix) as ns:
        argv = in_ns(ns, sys.executable, "-m", "stack", "run", *device_args, "--ip", ip,
                     "--host-ip", host_ip, "-q")
        with serving(ns, argv, ip.split("/")[0], "the stack") as running:
            yield running


@contextmanager
def yardstick_responder(prefix: str, medium: str) -> Iterator[Running]:
    """``bench/minimal_responder.py`` on a TAP (``medium="tap"``) or TUN device whose kernel side
    is configured here as tapstack's ``--host-ip`` does it: 192.0.2.1, the responder 192.0.2.2."""
    device = f"{medium}0"
    with namespace(prefix) as ns:
        run(in_ns(ns, "ip", "tuntap", "add", "dev", device, "mode", medium))
        if medium == "tun":
            run(in_ns(ns, "ip", "address", "add", "192.0.2.1", "peer", "192.0.2.2", "dev", device))
        else:
            run(in_ns(ns, "ip", "address", "add", "192.0.2.1/24", "dev", device))
        run(in_ns(ns, "ip", "link", "set", device, "up"))
        argv = in_ns(ns, sys.executable, str(REPO / "bench" / "minimal_responder.py"), f"--{medium}", device,
                     "--ip", "192.0.2.2")
        with serving(ns, argv, "192.0.2.2", "the minimal responder") as running:
            yield running


@contextmanager
def serving(ns: str, argv: list[str], address: str, what: str) -> Iterator[Running]:
    """Start ``argv`` (a responder process), wait until ``address`` answers, and stop it with
    SIGTERM at the end, insisting on a clean exit."""
    with tempfile.TemporaryFile("w+") as stderr:
        env = dict(os.environ, PYTHONPATH=str(REPO))
        # `ip netns exec` execs the command, so this PID is the responder's own.
        process = subprocess.Popen(argv, cwd=REPO, env=env, stdin=subprocess.DEVNULL,
                                   stdout=subprocess.DEVNULL, stderr=stderr)

        def died() -> str | None:
            if process.poll() is None:
                return None
            stderr.seek(0)
            return f"{what} exited with {process.returncode}: {stderr.read().strip()}"

        try:
            wait_until_answering(ns, address, alive=died)
            yield Running(ns, process.pid)
        except BaseException:
            stop_stack(process, died, check=False)  # keep the original error
            raise
        stop_stack(process, died)


def stop_stack(process: subprocess.Popen, died: Callable[[], str | None], check: bool = True) -> None:
    """SIGTERM, then insist on exit status 0 (a clean stop is part of what we check)."""
    if process.poll() is None:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=STACK_STOP_TIMEOUT_S)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=STACK_STOP_TIMEOUT_S)
            if check:
                raise BenchError(f"the stack ignored SIGTERM for {STACK_STOP_TIMEOUT_S} s; killed it")
    if check and process.returncode != 0:
        raise BenchError(f"on SIGTERM, {died()}")


def wait_until_answering(ns: str, address: str, alive: Callable[[], str | None]) -> None:
    """Ping once a second or so until ``address`` answers (or ``alive`` says why it never will).

    Until the stack has configured the kernel side, ping fails at once ("Network is
    unreachable"): such attempts are spaced out too.
    """
    for _ in range(STACK_READY_ATTEMPTS):
        reason = alive()
        if reason is not None:
            raise BenchError(reason)
        started = time.monotonic()
        probe = run(in_ns(ns, "ping", "-n", "-q", "-c", "1", "-W", "1", address), timeout=10, check=False)
        if probe.returncode == 0:
            return
        time.sleep(max(0.0, 1.0 - (time.monotonic() - started)))
    raise BenchError(f"{address} did not answer {STACK_READY_ATTEMPTS} pings")


RESPONDERS = [
    Responder("kernel", "198.51.100.2", kernel_responder),
    Responder("yardstick-tap", "192.0.2.2", partial(yardstick_responder, medium="tap")),
    Responder("yardstick-tun", "192.0.2.2", partial(yardstick_responder, medium="tun")),
    Responder("tapstack", "192.0.2.2", tapstack_responder),
    Responder("tapstack-busy-poll", "192.0.2.2",
              partial(tapstack_responder, device_args=("--tap", "tap0", "--busy-poll", "50"))),
    Responder("tapstack-tun", "192.0.2.2",
              partial(tapstack_responder, device_args=("--tun", "tun0"), ip="192.0.2.2", host_ip="192.0.2.1")),
    Responder("tapstack-tun-pi", "192.0.2.2",
              partial(tapstack_responder, device_args=("--tun", "tun0", "--pi"), ip="192.0.2.2",
                      host_ip="192.0.2.1")),
]


# ---------------------------------------------------------------------- one round


@dataclass
class Round:
    """What one round measured of one responder in one mode (NaN: could not be measured)."""

    median_rtt_us: float = math.nan
    p99_rtt_us: float = math.nan
    latency_loss: float = math.nan  # fraction of the latency requests unanswered
    answers_per_s: float = math.nan
    cpu_us_per_answer: float = math.nan  # the responder's CPU time per flood answer
    flood_transmitted: int = 0
    flood_received: int = 0
    flood_wall_s: float = math.nan
    flood_ping_time_s: float = math.nan  # ping's own "time Nms", for comparison
    notes: list[str] = field(default_factory=list)


#: The figures reported per responder and mode: (Round attribute, column title, unit).
FIGURES = {"median_rtt_us": ("median RTT", "us"), "p99_rtt_us": ("p99 RTT", "us"),
           "answers_per_s": ("answers/s", ""), "cpu_us_per_answer": ("CPU/answer", "us")}

TIME = re.compile(r"time=([\d.]+) ms")
SUMMARY = re.compile(r"(\d+) packets transmitted, (\d+) received")
SUMMARY_TIME = re.compile(r"packet loss, time (\d+)ms")


def ping_summary(output: str) -> tuple[int, int]:
    match = SUMMARY.search(output)
    if match is None:
        raise BenchError(f"no summary line in ping's output:\n{output[-500:]}")
    return int(match.group(1)), int(match.group(2))


def run_ping(ns: str, mode: Mode, *args: str, timeout: float) -> subprocess.CompletedProcess[str]:
    result = run([*mode.ping_prefix, *in_ns(ns, "ping", "-n", *args)], timeout=timeout, check=False)
    if result.returncode not in (0, 1):  # 1: some requests unanswered; 2: ping itself failed
        raise BenchError(f"ping {' '.join(args)} failed ({result.returncode}): {result.stderr.strip()}")
    return result


def percentile(sorted_values: list[float], fraction: float) -> float:
    """Nearest-rank percentile: the smallest value with at least ``fraction`` of them at or below."""
    rank = max(1, math.ceil(fraction * len(sorted_values)))
    return sorted_values[rank - 1]


def cpu_seconds(pid: int | None) -> float:
    """Time the process's threads have run on a CPU (first field of each schedstat, in ns)."""
    if pid is None:
        return math.nan
    try:
        return sum(int((task / "schedstat").read_text().split()[0])
                   for task in Path(f"/proc/{pid}/task").iterdir()) / 1e9
    except (OSError, ValueError, IndexError):
        return math.nan


def measure_round(running: Running, address: str, mode: Mode, counts: Counts) -> Round:
    """One latency and one capacity measurement of a running responder, in ``mode``."""
    figures = Round()
    if running.pid is not None:
        set_affinity(running.pid, mode.cpus)
    ns = running.namespace

    result = run_ping(ns, mode, "-i", "0", "-c", str(counts.latency), "-W", "1", address,
                      timeout=counts.latency + 30)
    rtts = sorted(float(value) * 1000 for value in TIME.findall(result.stdout))
    transmitted, received = ping_summary(result.stdout)
    figures.latency_loss = 1 - received / transmitted if transmitted else math.nan
    if rtts:
        figures.median_rtt_us = statistics.median(rtts)
        figures.p99_rtt_us = percentile(rtts, 0.99)

    cpu_before = cpu_seconds(running.pid)
    started = time.monotonic()
    result = run_ping(ns, mode, "-f", "-l", str(FLOOD_PRELOAD), "-c", str(counts.flood),
                      "-w", str(FLOOD_DEADLINE_S), address, timeout=FLOOD_DEADLINE_S + 30)
    figures.flood_wall_s = time.monotonic() - started
    cpu = cpu_seconds(running.pid) - cpu_before
    figures.flood_transmitted, figures.flood_received = ping_summary(result.stdout)
    if figures.flood_received:
        figures.answers_per_s = figures.flood_received / figures.flood_wall_s
        figures.cpu_us_per_answer = cpu / figures.flood_received * 1e6  # NaN without a process
    if figures.flood_received < counts.flood:
        figures.notes.append(f"flood got {figures.flood_received} of {counts.flood} replies: ping waited "
                             f"for its -w {FLOOD_DEADLINE_S} deadline, so answers/s is understated")
    if (match := SUMMARY_TIME.search(result.stdout)) is not None:
        figures.flood_ping_time_s = int(match.group(1)) / 1000
    return figures


# ---------------------------------------------------------------------- in process

#: The in-process benchmarks run each round: script -> what its figures are "us per".
IN_PROCESS = {"echo_cost.py": "echo", "drop_cost.py": "frame"}
#: Issue 12's in-process targets: drop_cost.py's kind -> at most this many microseconds.
IN_PROCESS_TARGETS = {"another MAC": 1.5, "unknown EtherType": 1.5, "bad IPv4 header checksum": 4.0,
                      "ARP request, known sender": 8.0, "ARP request, new sender": 8.0}
COST_LINE = re.compile(r"^(?P<kind>\S.*?):?\s+(?P<us>\d+(?:\.\d+)?) us per (?:frame|echo)\b", re.M)


def parse_costs(output: str) -> dict[str, float]:
    """``kind -> microseconds`` from the lines echo_cost.py and drop_cost.py print, e.g.
    ``TapHost.receive:  9.30 us per echo`` or ``another MAC   3.58 us per frame  (reason)``."""
    return {match["kind"]: float(match["us"]) for match in COST_LINE.finditer(output)}


def run_in_process(script: str, count: int) -> dict[str, float]:
    argv = [sys.executable, str(REPO / "bench" / script), "--count", str(count)]
    result = run(argv, timeout=IN_PROCESS_TIMEOUT_S)
    costs = parse_costs(result.stdout)
    if not costs:
        raise BenchError(f"{script} printed no 'N us per ...' line:\n{result.stdout[-500:]}")
    return costs


# ---------------------------------------------------------------------- statistics


@dataclass(frozen=True)
class Spread:
    """A figure over the rounds: the median and the min-max of the rounds that measured it."""

    median: float
    low: float
    high: float
    measured: int  # rounds that measured it
    rounds: int  # rounds run

    @property
    def complete(self) -> bool:
        return self.rounds > 0 and self.measured == self.rounds


def spread(values: list[float]) -> Spread:
    finite = [value for value in values if not math.isnan(value)]
    if not finite:
        return Spread(math.nan, math.nan, math.nan, 0, len(values))
    return Spread(statistics.median(finite), min(finite), max(finite), len(finite), len(values))


def divide(numerator: float, denominator: float) -> float:
    """``numerator / denominator``, NaN when either is NaN or the denominator is 0."""
    if math.isnan(numerator) or math.isnan(denominator) or denominator == 0:
        return math.nan
    return numerator / denominator


@dataclass(frozen=True)
class Ratio:
    """One figure of a responder to the same figure of another, both measured in the same rounds."""

    value: float  # the ratio of the two medians over the rounds
    low: float  # min and max of the rounds' own ratios (each round's figures side by side)
    high: float
    per_round: list[float]
    complete: bool  # both figures measured in every round


def ratio(figures: list[float], reference: list[float]) -> Ratio:
    if len(figures) != len(reference):
        raise ValueError(f"{len(figures)} rounds against {len(reference)}: ratios need the same rounds")
    per_round = [divide(a, b) for a, b in zip(figures, reference)]
    of_rounds = spread(per_round)
    mine, theirs = spread(figures), spread(reference)
    return Ratio(divide(mine.median, theirs.median), of_rounds.low, of_rounds.high, per_round,
                 mine.complete and theirs.complete and of_rounds.complete)


@dataclass(frozen=True)
class Target:
    """A ratio of ``responder``'s figure to ``versus``'s; ``limit`` None: shown, not checked."""

    responder: str
    versus: str
    figure: str  # a key of FIGURES
    bound: str  # "<=" or ">="
    limit: float | None

    def met(self, found: Ratio) -> bool | None:
        if self.limit is None:
            return None
        if not found.complete:  # a figure missing from a round is not a met target
            return False
        return found.value <= self.limit if self.bound == "<=" else found.value >= self.limit  # NaN: False


def _tapstack_targets() -> list[Target]:
    """Per tapstack variant, in RESPONDERS' order: its ratios to the yardstick on the same device
    and to the kernel (busy polling: its round trip against the kernel's is its own target)."""
    def versus_yardstick(name: str, yardstick: str, limits: tuple[float | None, ...]) -> list[Target]:
        return [Target(name, yardstick, "median_rtt_us", "<=", limits[0]),
                Target(name, yardstick, "answers_per_s", ">=", limits[1]),
                Target(name, yardstick, "cpu_us_per_answer", "<=", limits[2])]

    def versus_kernel(name: str, rtt: float) -> list[Target]:
        return [Target(name, "kernel", "median_rtt_us", "<=", rtt),
                Target(name, "kernel", "answers_per_s", ">=", 0.3)]

    return [*versus_yardstick("tapstack", "yardstick-tap", (1.2, 0.8, 1.25)), *versus_kernel("tapstack", 5.0),
            # Busy polling spins a CPU on purpose (its documented price): its yardstick ratios are shown only.
            *versus_yardstick("tapstack-busy-poll", "yardstick-tap", (None, None, None)),
            *versus_kernel("tapstack-busy-poll", 2.5),
            *versus_yardstick("tapstack-tun", "yardstick-tun", (1.2, 0.8, 1.25)), *versus_kernel("tapstack-tun", 5.0),
            *versus_yardstick("tapstack-tun-pi", "yardstick-tun", (1.2, 0.8, 1.25)),
            *versus_kernel("tapstack-tun-pi", 5.0)]


#: Issue 12's targets (and the kernel ones of the first benchmark), checked in every mode.
TARGETS = _tapstack_targets()


@dataclass(frozen=True)
class Check:
    mode: str
    target: Target
    ratio: Ratio
    passed: bool | None  # None: no target, shown only


#: responder -> mode -> the rounds, in order
Results = dict[str, dict[str, list[Round]]]


def figure_rounds(rounds: list[Round], figure: str) -> list[float]:
    return [getattr(one, figure) for one in rounds]


def checks(results: Results, modes: list[str], targets: list[Target] = TARGETS) -> list[Check]:
    """Every target whose two responders were both measured, in every mode."""
    found = []
    for mode in modes:
        for target in targets:
            if target.responder not in results or target.versus not in results:
                continue
            found_ratio = ratio(figure_rounds(results[target.responder][mode], target.figure),
                                figure_rounds(results[target.versus][mode], target.figure))
            found.append(Check(mode, target, found_ratio, target.met(found_ratio)))
    return found


@dataclass(frozen=True)
class CostCheck:
    kind: str
    cost: Spread
    limit: float
    passed: bool


#: script -> kind -> the rounds' microseconds (NaN: the kind was missing from a round's output)
Costs = dict[str, dict[str, list[float]]]


#: Issue 14's target: the IPv6 echo costs at most this many times the IPv4 echo, per round.
IPV6_ECHO_RATIO = 1.2
IPV6_ECHO_PAIRS = {"TapHost.receive IPv6": "TapHost.receive", "TunHost.receive IPv6": "TunHost.receive"}


def cost_checks(costs: Costs) -> list[CostCheck]:
    kinds = costs.get("drop_cost.py", {})
    found = []
    for kind, limit in IN_PROCESS_TARGETS.items():
        cost = spread(kinds.get(kind, []))
        found.append(CostCheck(kind, cost, limit, cost.complete and cost.median <= limit))
    echoes = costs.get("echo_cost.py", {})
    for six, four in IPV6_ECHO_PAIRS.items():
        # Each round's ratio, measured side by side in one run of echo_cost.py.
        ratios = [a / b for a, b in zip(echoes.get(six, []), echoes.get(four, []))]
        cost = spread(ratios)
        found.append(CostCheck(f"{six} / IPv4 (ratio)", cost, IPV6_ECHO_RATIO,
                               bool(ratios) and cost.complete and cost.median <= IPV6_ECHO_RATIO))
    return found


# ---------------------------------------------------------------------- report


def number(value: float, digits: int) -> str:
    return "n/a" if math.isnan(value) else f"{value:,.{digits}f}"


def digits_for(figure: str) -> int:
    """Whole microseconds for round trips (ping prints them so), whole answers, tenths of CPU us."""
    return 1 if figure == "cpu_us_per_answer" else 0


def show(found: Spread, digits: int, unit: str = "") -> str:
    """``12.3 us (11.0-15.2)``; ``n/a`` when no round measured it; ``[3/5 rounds]`` when some did not."""
    if found.measured == 0:
        return "n/a"
    text = f"{number(found.median, digits)}{' ' + unit if unit else ''} " \
           f"({number(found.low, digits)}-{number(found.high, digits)})"
    if not found.complete:
        text += f" [{found.measured}/{found.rounds} rounds]"
    return text


def verdict(passed: bool | None, check: bool) -> str:
    if passed is None:
        return "(no target)"
    if not check:
        return "(not checked)"
    return "PASS" if passed else "FAIL"


def mode_report(mode: Mode, results: Results, found: list[Check], check: bool, rounds: int) -> list[str]:
    lines = [f"== {mode.title}: median of {rounds} round{'s' if rounds != 1 else ''} (min-max) =="]
    width = max(len("responder"), *(len(name) for name in results))
    columns = {figure: max(len(title), *(len(show(spread(figure_rounds(modes[mode.name], figure)),
                                                  digits_for(figure), unit)) for modes in results.values()))
               for figure, (title, unit) in FIGURES.items()}
    lines.append(f"{'responder':<{width}}  " + "  ".join(f"{FIGURES[f][0]:>{w}}" for f, w in columns.items())
                 + "  worst loss")
    for name, modes in results.items():
        rounds_of = modes[mode.name]
        cells = []
        for figure, w in columns.items():
            text = show(spread(figure_rounds(rounds_of, figure)), digits_for(figure), FIGURES[figure][1])
            if figure == "cpu_us_per_answer" and text == "n/a" and name == "kernel":
                text = "(softirq)"
            cells.append(f"{text:>{w}}")
        loss = spread(figure_rounds(rounds_of, "latency_loss")).high
        lines.append(f"{name:<{width}}  " + "  ".join(cells) + f"  {'n/a' if math.isnan(loss) else f'{loss:.1%}':>10}")
        for index, one in enumerate(rounds_of, 1):
            lines += [f"  note: {name}, round {index}: {note}" for note in one.notes]
    mine = [c for c in found if c.mode == mode.name]
    if mine:
        lines.append("ratios: of the medians (min-max of each round's ratio, side by side)")
        label = max(len(f"{c.target.responder} / {c.target.versus}") for c in mine)
        for c in mine:
            target = f"target {c.target.bound} {c.target.limit:g}x" if c.target.limit is not None else ""
            incomplete = "" if c.ratio.complete else " [not measured in every round]"
            lines.append(f"  {c.target.responder + ' / ' + c.target.versus:<{label}}  "
                         f"{FIGURES[c.target.figure][0]:<10} {number(c.ratio.value, 2):>6}x "
                         f"({number(c.ratio.low, 2)}-{number(c.ratio.high, 2)}){incomplete}  "
                         f"{target:<16} {verdict(c.passed, check)}")
    return lines


def in_process_report(costs: Costs, found: list[CostCheck], check: bool, rounds: int) -> list[str]:
    lines = [f"== in process (no device, not pinned): median of {rounds} round{'s' if rounds != 1 else ''} "
             "(min-max), each the best of five timings =="]
    width = max(len(kind) for kinds in costs.values() for kind in kinds)
    limits = {c.kind: c for c in found}
    for script, kinds in costs.items():
        lines.append(f"{script}:")
        for kind, values in kinds.items():
            line = f"  {kind:<{width}}  {show(spread(values), 2, 'us'):>22} per {IN_PROCESS[script]}"
            if script == "drop_cost.py" and kind in limits:
                c = limits[kind]
                line += f"  target <= {c.limit:g} us  {verdict(c.passed, check)}"
            lines.append(line)
    for c in found:
        if c.kind.endswith("(ratio)"):
            lines.append(f"  {c.kind}: {show(c.cost, 2, 'x'):>22}  target <= {c.limit:g}x  "
                         f"{verdict(c.passed, check)}")
        elif c.kind not in costs.get("drop_cost.py", {}):
            lines.append(f"  {c.kind}: not reported by drop_cost.py  target <= {c.limit:g} us  "
                         f"{verdict(c.passed, check)}")
    return lines


def report(modes: list[Mode], results: Results, found: list[Check], costs: Costs, cost_found: list[CostCheck],
           check: bool, rounds: int) -> list[str]:
    lines: list[str] = []
    for mode in modes:
        lines += mode_report(mode, results, found, check, rounds) + [""]
    lines += in_process_report(costs, cost_found, check, rounds) + [""]
    checked = [c.passed for c in found if c.passed is not None] + [c.passed for c in cost_found]
    if check:
        lines.append(f"{sum(checked)} of {len(checked)} targets met")
    else:
        lines.append(f"{sum(checked)} of {len(checked)} targets met (not checked: --no-check)")
    return lines


def without_nan(value):
    """JSON has no NaN: a figure that could not be measured is written as null."""
    if isinstance(value, float) and math.isnan(value):
        return None
    if isinstance(value, dict):
        return {key: without_nan(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [without_nan(item) for item in value]
    return value


def cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def document(args: argparse.Namespace, modes: list[Mode], counts: Counts, results: Results,
             found: list[Check], costs: Costs, cost_found: list[CostCheck],
             load_start: tuple[float, ...], load_end: tuple[float, ...]) -> dict:
    """Everything the run measured, every round of every figure, for ``--json``."""
    return without_nan({
        "environment": {"kernel": platform.release(), "python": platform.python_version(),
                        "cpus": os.cpu_count(), "cpu_model": cpu_model(), "machine": platform.machine(),
                        "load_average_start": list(load_start), "load_average_end": list(load_end)},
        "method": {
            "rounds": args.rounds, "quick": args.quick,
            "modes": {mode.name: {"cpus": sorted(mode.cpus), "ping": " ".join(mode.ping_prefix) or None}
                      for mode in modes},
            "order": "all responders started once; for each round, for each mode, for each responder: "
                     "latency then capacity; odd rounds in reverse order",
            "statistics": "each figure: median over the rounds, spread min-max over the rounds; each ratio: "
                          "ratio of the medians, spread min-max of the rounds' side-by-side ratios",
            "latency": f"ping -i 0 -c {counts.latency} -W 1",
            "capacity": f"ping -f -l {FLOOD_PRELOAD} -c {counts.flood} -w {FLOOD_DEADLINE_S}; "
                        "answers/s = received / wall time of the ping process",
            "cpu_per_answer": "the responder's threads' run time (/proc/PID/task/*/schedstat) during the flood "
                              "/ replies received",
            "in_process": f"bench/echo_cost.py and bench/drop_cost.py --count {counts.in_process}, once per round",
        },
        "responders": {
            name: {"address": next(r.address for r in RESPONDERS if r.name == name),
                   "modes": {mode: {"rounds": [asdict(one) for one in rounds],
                                    "figures": {figure: asdict(spread(figure_rounds(rounds, figure)))
                                                | {"rounds": figure_rounds(rounds, figure)}
                                                for figure in [*FIGURES, "latency_loss"]}}
                             for mode, rounds in by_mode.items()}}
            for name, by_mode in results.items()},
        "ratios": [{"mode": c.mode, "responder": c.target.responder, "versus": c.target.versus,
                    "figure": c.target.figure, "ratio": c.ratio.value, "low": c.ratio.low, "high": c.ratio.high,
                    "per_round": c.ratio.per_round, "complete": c.ratio.complete,
                    "target": None if c.target.limit is None else f"{c.target.bound} {c.target.limit:g}",
                    "passed": c.passed} for c in found],
        "in_process": {script: {kind: asdict(spread(values)) | {"rounds": values} for kind, values in kinds.items()}
                       for script, kinds in costs.items()},
        "in_process_checks": [{"kind": c.kind, "median_us": c.cost.median, "target": f"<= {c.limit:g}",
                               "passed": c.passed} for c in cost_found],
        "all_targets_met": all(c.passed is not False for c in found) and all(c.passed for c in cost_found),
    })


# ---------------------------------------------------------------------- the run


def schedule(rounds: int, modes: list[Mode], names: list[str]) -> Iterator[tuple[int, Mode, str]]:
    """(round, mode, responder) in measuring order: every pair each round, odd rounds reversed."""
    pairs = [(mode, name) for mode in modes for name in names]
    for index in range(rounds):
        for mode, name in (pairs if index % 2 == 0 else reversed(pairs)):
            yield index, mode, name


def measure_all(chosen: list[Responder], modes: list[Mode], rounds: int, counts: Counts) -> tuple[Results, Costs]:
    results: Results = {r.name: {mode.name: [] for mode in modes} for r in chosen}
    costs: Costs = {script: {} for script in IN_PROCESS}
    by_name = {r.name: r for r in chosen}
    with ExitStack() as started:
        running = {}
        for position, responder in enumerate(chosen):
            print(f"starting {responder.name} ...", file=sys.stderr, flush=True)
            running[responder.name] = started.enter_context(responder.start(f"{PREFIX}-{position}"))
        current = -1
        for index, mode, name in schedule(rounds, modes, [r.name for r in chosen]):
            if index != current:  # a new round starts with the in-process figures
                current = index
                for script in IN_PROCESS:
                    print(f"round {index + 1}/{rounds}: {script} ...", file=sys.stderr, flush=True)
                    found = run_in_process(script, counts.in_process)
                    for kind in [*found, *(kind for kind in costs[script] if kind not in found)]:
                        costs[script].setdefault(kind, [math.nan] * index).append(found.get(kind, math.nan))
            print(f"round {index + 1}/{rounds}, {mode.name}: {name} ...", file=sys.stderr, flush=True)
            results[name][mode.name].append(measure_round(running[name], by_name[name].address, mode, counts))
    return results, costs


def cannot_run(modes: list[Mode]) -> str | None:
    if os.geteuid() != 0:
        return "needs root (it creates network namespaces and TAP/TUN devices); run it with sudo"
    missing = [tool for tool in ("ip", "ping") if shutil.which(tool) is None]
    if any(mode.ping_prefix for mode in modes) and shutil.which("taskset") is None:
        missing.append("taskset (util-linux; or --modes unpinned)")
    if not os.path.exists("/dev/net/tun"):
        missing.append("/dev/net/tun")
    return f"cannot run here: missing {', '.join(missing)}" if missing else None


def parse_arguments(argv: list[str] | None) -> argparse.Namespace:
    allowed = os.sched_getaffinity(0)
    parser = argparse.ArgumentParser(prog="ping_bench.py", description=__doc__.split("\n\n")[0])
    parser.add_argument("--json", metavar="FILE", help="also write every round of every figure to FILE as JSON")
    parser.add_argument("--no-check", action="store_true", help="report only; exit 0 whatever the ratios")
    parser.add_argument("--rounds", type=int, help=f"rounds (default {DEFAULT_ROUNDS}; 1 with --quick)")
    parser.add_argument("--modes", default=",".join(MODES),
                        help="comma-separated: unpinned, pinned (default: both, in one run)")
    parser.add_argument("--cpu", type=int, default=max(allowed),
                        help="the CPU of the pinned mode (default: the last, %(default)s)")
    parser.add_argument("--only", metavar="NAMES",
                        help="measure only these responders (comma-separated: " +
                             ", ".join(r.name for r in RESPONDERS) + ")")
    parser.add_argument("--quick", action="store_true",
                        help=f"small counts (ping {QUICK.latency} and flood {QUICK.flood}), 1 round: for tests")
    args = parser.parse_args(argv)
    if args.rounds is None:
        args.rounds = 1 if args.quick else DEFAULT_ROUNDS
    if args.rounds < 1:
        parser.error("--rounds must be at least 1")
    modes = [mode for mode in args.modes.split(",") if mode]
    unknown = [mode for mode in modes if mode not in MODES]
    if unknown or not modes or len(set(modes)) != len(modes):
        parser.error(f"--modes: give unpinned, pinned or both, once each (not {args.modes!r})")
    if "pinned" in modes and args.cpu not in allowed:
        parser.error(f"--cpu {args.cpu}: not one of the CPUs this process may use "
                     f"({', '.join(str(cpu) for cpu in sorted(allowed))})")
    args.modes = [make_mode(mode, args.cpu, allowed) for mode in modes]
    args.chosen = RESPONDERS
    if args.only:
        names = args.only.split(",")
        unknown = [name for name in names if name not in {r.name for r in RESPONDERS}]
        if unknown:
            parser.error(f"--only: no responder named {', '.join(unknown)}")
        args.chosen = [r for r in RESPONDERS if r.name in names]
    if args.json and not Path(args.json).resolve().parent.is_dir():
        parser.error(f"--json {args.json}: no such directory")
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_arguments(argv)  # bad arguments: one line, exit status 2
    reason = cannot_run(args.modes)
    if reason is not None:
        print(f"ping_bench: {reason}", file=sys.stderr)
        return 2
    # SIGTERM unwinds like Ctrl-C, so every namespace and stack process is cleaned up.
    signal.signal(signal.SIGTERM, lambda signum, frame: sys.exit(128 + signum))
    counts = QUICK if args.quick else FULL
    load_start = os.getloadavg()
    try:
        results, costs = measure_all(args.chosen, args.modes, args.rounds, counts)
    except (BenchError, subprocess.TimeoutExpired) as error:
        print(f"ping_bench: {error}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("ping_bench: interrupted", file=sys.stderr)
        return 130
    load_end = os.getloadavg()
    modes = [mode.name for mode in args.modes]
    found = checks(results, modes)
    cost_found = cost_checks(costs)
    print(f"ping_bench: {cpu_model()}, {os.cpu_count()} CPUs, Linux {platform.release()}, "
          f"Python {platform.python_version()}, load average {load_start[0]:.2f} at the start, "
          f"{load_end[0]:.2f} at the end")
    print("\n".join(report(args.modes, results, found, costs, cost_found, not args.no_check, args.rounds)))
    if args.json:
        Path(args.json).write_text(json.dumps(document(args, args.modes, counts, results, found, costs, cost_found,
                                                       load_start, load_end), indent=2) + "\n")
    met = all(c.passed is not False for c in found) and all(c.passed for c in cost_found)
    return 0 if args.no_check or met else 1


if __name__ == "__main__":
    raise SystemExit(main())
