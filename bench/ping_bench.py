"""How fast does tapstack answer ping, compared with the Linux kernel?

Run as root:  python bench/ping_bench.py [--json FILE] [--no-check]

Every responder is pinged by the kernel's own ping (iputils), from inside network namespaces
this script creates and always deletes (also on Ctrl-C); nothing touches the root namespace.

  kernel     two namespaces joined by a veth pair; the kernel at 198.51.100.1 pings the kernel
             at 198.51.100.2. The baseline.
  tapstack   one namespace; ``python -m stack run --tap tap0`` answers as 192.0.2.2 and the
             kernel on the other end of tap0 (192.0.2.1) pings it.
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

Two measurements per responder:

  latency    ``ping -i 0 -c 1000 -W 1``: iputils waits for each reply before sending the next
             request (one in flight), so every ``time=X ms`` line is one unloaded round trip.
             We report the median and the 99th percentile (nearest rank) of the answered ones,
             and the loss.
  capacity   ``ping -f -l 32 -c 20000 -w 60``: flood ping, keeping 32 requests in flight.
             Answers per second = replies received / wall time of the ping process, measured
             with time.monotonic() around it. The wall time includes ping's (and
             ``ip netns exec``'s) start-up, a few milliseconds, which slightly understates the
             fastest responder; we do not subtract anything, so the figure is an honest lower
             bound. (ping's own summary ``time Nms`` is kept in the JSON for comparison.)
             With ``-w``, ping keeps sending until ``-c`` replies have come back, so it ends
             with up to 31 requests still in flight: "transmitted - received" up to 31 is not
             loss. A flood that gets fewer than ``-c`` replies waits for the whole deadline,
             which makes answers/s meaningless: that is flagged.

Noise: on a 2-CPU virtual machine a round trip is bimodal -- about 3x slower when the pinger
and the responder wake each other across CPUs than on one CPU (seen with the kernel's own
responder and a 20-line Python responder alike). So both ping and the responder are pinned to
one CPU (``--cpu``, default the last; the kernel answers in softirq on the sender's CPU
anyway), and each measurement runs ``--rounds`` times (default 3): the table shows the best
round (lowest median RTT, highest answers/s), as timeit does, and the JSON keeps every round.

For responders that are a process of their own (tapstack, the yardstick), the CPU time it spent
per answer during the flood (``/proc/PID/schedstat``: user, system and the kernel work done in
its context, such as carrying each reply up to ping's socket) is reported too.

Targets, for tapstack: median RTT at most 5x the kernel's, and capacity at least 0.3x the
kernel's; and against the yardstick on the same device (issue 12's targets): median RTT at most
1.2x, capacity at least 0.8x, CPU per answer at most 1.25x. Exit status 0 when all are met (or with --no-check),
1 when one is not (or the responder misbehaved), 2 when the benchmark cannot run here.
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
from contextlib import AbstractContextManager, contextmanager
from dataclasses import asdict, dataclass, field
from functools import partial
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
PREFIX = f"tsk-bench-{os.getpid()}"  # every namespace this run creates starts with this

LATENCY_COUNT = 1000
FLOOD_COUNT = 20000
FLOOD_PRELOAD = 32
FLOOD_DEADLINE_S = 60

MAX_MEDIAN_RTT_RATIO = 5.0  # tapstack's median RTT / the kernel's
MIN_CAPACITY_RATIO = 0.3  # tapstack's answers per second / the kernel's
MAX_YARDSTICK_RTT_RATIO = 1.2  # tapstack's median RTT / the minimal responder's, same device
MIN_YARDSTICK_CAPACITY_RATIO = 0.8
MAX_YARDSTICK_CPU_RATIO = 1.25  # CPU time per answer

STACK_READY_ATTEMPTS = 30  # `ping -c 1 -W 1` tries before giving up on a starting stack
STACK_STOP_TIMEOUT_S = 10


class BenchError(Exception):
    """The benchmark could not measure (a command failed, a responder did not answer)."""


# ---------------------------------------------------------------------- commands


def run(argv: list[str], timeout: float = 30, check: bool = True) -> subprocess.CompletedProcess[str]:
    result = subprocess.run(argv, capture_output=True, text=True, timeout=timeout, stdin=subprocess.DEVNULL)
    if check and result.returncode != 0:
        raise BenchError(f"{' '.join(argv)} failed ({result.returncode}): {result.stderr.strip()}")
    return result


#: ``taskset -c CPU`` when pinning (set by main); the affinity is inherited across exec.
PIN: list[str] = []


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


# ---------------------------------------------------------------------- responders
#
# A responder is a context manager factory: it builds its topology, starts whatever answers,
# yields the namespace to ping from, and tears everything down on exit. Adding one (TUN mode,
# say) is one more entry in RESPONDERS.


@dataclass(frozen=True)
class Running:
    namespace: str  # where to ping from
    pid: int | None = None  # the answering process, when it is one (for its CPU time)


@dataclass(frozen=True)
class Responder:
    name: str
    address: str  # what ping targets
    start: Callable[[], AbstractContextManager[Running]]
    baseline: bool = False  # the kernel: what the others are compared with
    yardstick: str | None = None  # the minimal responder on the same device, for tapstack


@contextmanager
def kernel_responder() -> Iterator[Running]:
    """The kernel answering the kernel: namespace a --veth-- namespace b."""
    with namespace(f"{PREFIX}-ka") as a, namespace(f"{PREFIX}-kb") as b:
        run(["ip", "-n", a, "link", "add", "veth0", "type", "veth", "peer", "name", "veth1", "netns", b])
        run(["ip", "-n", a, "address", "add", "198.51.100.1/24", "dev", "veth0"])
        run(["ip", "-n", b, "address", "add", "198.51.100.2/24", "dev", "veth1"])
        run(["ip", "-n", a, "link", "set", "veth0", "up"])
        run(["ip", "-n", b, "link", "set", "veth1", "up"])
        wait_until_answering(a, "198.51.100.2", alive=lambda: None)
        yield Running(a)


@contextmanager
def tapstack_responder(device_args: tuple[str, ...] = ("--tap", "tap0"),
                       ip: str = "192.0.2.2/24", host_ip: str = "192.0.2.1/24") -> Iterator[Running]:
    """``python -m stack run`` in a namespace; the kernel on the device's other end pings it.

    ``--host-ip`` has the stack configure the kernel side (address, link up) itself. On a TAP
    device both addresses carry a prefix length; on a TUN device (``device_args`` ``("--tun",
    "tun0", ...)``) they are bare, and the kernel side becomes ``host_ip`` peer ``ip``.
    """
    with namespace(f"{PREFIX}-ts") as ns:
        argv = in_ns(ns, sys.executable, "-m", "stack", "run", *device_args, "--ip", ip,
                     "--host-ip", host_ip, "-q")
        with serving(ns, argv, ip.split("/")[0], "the stack") as running:
            yield running


@contextmanager
def yardstick_responder(medium: str) -> Iterator[Running]:
    """``bench/minimal_responder.py`` on a TAP (``medium="tap"``) or TUN device whose kernel side
    is configured here as tapstack's ``--host-ip`` does it: 192.0.2.1, the responder 192.0.2.2."""
    device = f"{medium}0"
    with namespace(f"{PREFIX}-ys") as ns:
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
    """Start ``argv`` (a responder process, pinned like ping), wait until ``address`` answers,
    and stop it with SIGTERM at the end, insisting on a clean exit."""
    with tempfile.TemporaryFile("w+") as stderr:
        env = dict(os.environ, PYTHONPATH=str(REPO))
        # `ip netns exec` execs the command, so this PID is the responder's own.
        process = subprocess.Popen(PIN + argv, cwd=REPO, env=env, stdin=subprocess.DEVNULL,
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
    Responder("kernel", "198.51.100.2", kernel_responder, baseline=True),
    Responder("yardstick-tap", "192.0.2.2", partial(yardstick_responder, "tap")),
    Responder("yardstick-tun", "192.0.2.2", partial(yardstick_responder, "tun")),
    Responder("tapstack", "192.0.2.2", tapstack_responder, yardstick="yardstick-tap"),
    Responder("tapstack-busy-poll", "192.0.2.2",
              partial(tapstack_responder, ("--tap", "tap0", "--busy-poll", "50")), yardstick="yardstick-tap"),
    Responder("tapstack-tun", "192.0.2.2",
              partial(tapstack_responder, ("--tun", "tun0"), ip="192.0.2.2", host_ip="192.0.2.1"),
              yardstick="yardstick-tun"),
    Responder("tapstack-tun-pi", "192.0.2.2",
              partial(tapstack_responder, ("--tun", "tun0", "--pi"), ip="192.0.2.2", host_ip="192.0.2.1"),
              yardstick="yardstick-tun"),
]


# ---------------------------------------------------------------------- measurements


@dataclass
class Figures:
    address: str
    median_rtt_ms: float = math.nan
    p99_rtt_ms: float = math.nan
    latency_loss: float = math.nan  # fraction of the LATENCY_COUNT requests unanswered
    answers_per_s: float = math.nan
    flood_transmitted: int = 0
    flood_received: int = 0
    flood_wall_s: float = math.nan
    flood_ping_time_s: float = math.nan  # ping's own "time Nms", for comparison
    cpu_us_per_answer: float = math.nan  # the responder's CPU time per flood answer (median round)
    cpu_us_per_answer_rounds: list[float] = field(default_factory=list)
    median_rtt_rounds_ms: list[float] = field(default_factory=list)  # every round's median
    answers_per_s_rounds: list[float] = field(default_factory=list)  # every round's capacity
    notes: list[str] = field(default_factory=list)


TIME = re.compile(r"time=([\d.]+) ms")
SUMMARY = re.compile(r"(\d+) packets transmitted, (\d+) received")
SUMMARY_TIME = re.compile(r"packet loss, time (\d+)ms")


def ping_summary(output: str) -> tuple[int, int]:
    match = SUMMARY.search(output)
    if match is None:
        raise BenchError(f"no summary line in ping's output:\n{output[-500:]}")
    return int(match.group(1)), int(match.group(2))


def run_ping(ns: str, *args: str, timeout: float) -> subprocess.CompletedProcess[str]:
    result = run(PIN + in_ns(ns, "ping", "-n", *args), timeout=timeout, check=False)
    if result.returncode not in (0, 1):  # 1: some requests unanswered; 2: ping itself failed
        raise BenchError(f"ping {' '.join(args)} failed ({result.returncode}): {result.stderr.strip()}")
    return result


def percentile(sorted_values: list[float], fraction: float) -> float:
    """Nearest-rank percentile: the smallest value with at least ``fraction`` of them at or below."""
    rank = max(1, math.ceil(fraction * len(sorted_values)))
    return sorted_values[rank - 1]


def measure_latency(ns: str, figures: Figures) -> None:
    result = run_ping(ns, "-i", "0", "-c", str(LATENCY_COUNT), "-W", "1", figures.address,
                      timeout=LATENCY_COUNT + 30)
    rtts = sorted(float(value) for value in TIME.findall(result.stdout))
    transmitted, received = ping_summary(result.stdout)
    median = statistics.median(rtts) if rtts else math.nan
    figures.median_rtt_rounds_ms.append(median)
    # Keep the best round (lowest median); NaN (no replies) never replaces a measured round.
    if rtts and not median >= figures.median_rtt_ms:
        figures.latency_loss = 1 - received / transmitted
        figures.median_rtt_ms = median
        figures.p99_rtt_ms = percentile(rtts, 0.99)
    elif math.isnan(figures.latency_loss):
        figures.latency_loss = 1 - received / transmitted


def cpu_seconds(pid: int | None) -> float:
    """Time the process has run on a CPU (first field of /proc/PID/schedstat, nanoseconds)."""
    if pid is None:
        return math.nan
    try:
        return int(Path(f"/proc/{pid}/schedstat").read_text().split()[0]) / 1e9
    except (OSError, ValueError, IndexError):
        return math.nan


def measure_capacity(ns: str, figures: Figures, pid: int | None = None) -> None:
    cpu_before = cpu_seconds(pid)
    started = time.monotonic()
    result = run_ping(ns, "-f", "-l", str(FLOOD_PRELOAD), "-c", str(FLOOD_COUNT), "-w", str(FLOOD_DEADLINE_S),
                      figures.address, timeout=FLOOD_DEADLINE_S + 30)
    wall = time.monotonic() - started
    cpu = cpu_seconds(pid) - cpu_before
    transmitted, received = ping_summary(result.stdout)
    if received and not math.isnan(cpu):
        figures.cpu_us_per_answer_rounds.append(cpu / received * 1e6)
        figures.cpu_us_per_answer = statistics.median(figures.cpu_us_per_answer_rounds)
    answers_per_s = received / wall
    figures.answers_per_s_rounds.append(answers_per_s)
    if received < FLOOD_COUNT:
        figures.notes.append(f"flood got {received} of {FLOOD_COUNT} replies: ping waited for its "
                             f"-w {FLOOD_DEADLINE_S} deadline, so answers/s is understated")
    if not answers_per_s <= figures.answers_per_s:  # the best round so far (NaN: the first)
        figures.flood_wall_s = wall
        figures.flood_transmitted, figures.flood_received = transmitted, received
        figures.answers_per_s = answers_per_s
        if (match := SUMMARY_TIME.search(result.stdout)) is not None:
            figures.flood_ping_time_s = int(match.group(1)) / 1000


def measure(responder: Responder, rounds: int) -> Figures:
    figures = Figures(responder.address)
    print(f"measuring {responder.name} ({responder.address}) ...", file=sys.stderr, flush=True)
    with responder.start() as running:
        for _ in range(rounds):
            measure_latency(running.namespace, figures)
            measure_capacity(running.namespace, figures, running.pid)
    return figures


# ---------------------------------------------------------------------- report


@dataclass
class Check:
    responder: str
    what: str
    ratio: float
    target: str
    passed: bool
    versus: str = "kernel"


def checks(results: dict[str, Figures]) -> list[Check]:
    baseline = next(r for r in RESPONDERS if r.baseline)
    base = results.get(baseline.name)  # None when --only left it out: no kernel ratios
    found = []
    for responder in RESPONDERS:
        if responder.baseline or responder.name.startswith("yardstick") or responder.name not in results:
            continue
        figures = results[responder.name]
        if base is not None:
            rtt_ratio = figures.median_rtt_ms / base.median_rtt_ms
            capacity_ratio = figures.answers_per_s / base.answers_per_s
            found.append(Check(responder.name, "median RTT ratio", rtt_ratio, f"<= {MAX_MEDIAN_RTT_RATIO:g}x",
                               rtt_ratio <= MAX_MEDIAN_RTT_RATIO))  # NaN (no replies) fails
            found.append(Check(responder.name, "capacity ratio", capacity_ratio, f">= {MIN_CAPACITY_RATIO:g}x",
                               capacity_ratio >= MIN_CAPACITY_RATIO))
        if responder.yardstick in results:
            floor = results[responder.yardstick]
            for what, ratio, target, passed in (
                    ("median RTT ratio", figures.median_rtt_ms / floor.median_rtt_ms, MAX_YARDSTICK_RTT_RATIO, None),
                    ("capacity ratio", figures.answers_per_s / floor.answers_per_s, MIN_YARDSTICK_CAPACITY_RATIO, True),
                    ("CPU per answer ratio", figures.cpu_us_per_answer / floor.cpu_us_per_answer,
                     MAX_YARDSTICK_CPU_RATIO, None)):
                ok = ratio >= target if passed else ratio <= target  # NaN fails either way
                found.append(Check(responder.name, what, ratio, f"{'>=' if passed else '<='} {target:g}x", ok,
                                   versus=responder.yardstick))
    return found


def report(results: dict[str, Figures], found: list[Check], check: bool) -> None:
    width = max(len("responder"), *(len(name) for name in results))
    print(f"{'responder':<{width}} {'address':<14} {'median RTT':>11} {'p99 RTT':>10} {'loss':>7} "
          f"{'unanswered':>10} {'answers/s':>10} {'CPU/answer':>11}")
    for name, f in results.items():
        cpu = "" if math.isnan(f.cpu_us_per_answer) else f"{f.cpu_us_per_answer:>8.1f} us"
        print(f"{name:<{width}} {f.address:<14} {f.median_rtt_ms:>8.3f} ms {f.p99_rtt_ms:>7.3f} ms "
              f"{f.latency_loss:>7.1%} {f.flood_transmitted - f.flood_received:>10} "
              f"{f.answers_per_s:>10,.0f} {cpu:>11}")
        for note in f.notes:
            print(f"  note: {note}")
    print(f"(loss: of the {LATENCY_COUNT} one-at-a-time pings; unanswered: flood requests without a reply, "
          f"up to {FLOOD_PRELOAD - 1} of them merely in flight when ping stopped)")
    print()
    for c in found:
        verdict = ("PASS" if c.passed else "FAIL") if check else "(not checked)"
        print(f"{c.responder}/{c.versus} {c.what}: {c.ratio:.2f}x (target {c.target}) {verdict}")


def without_nan(value):
    """JSON has no NaN: a figure that could not be measured is written as null."""
    if isinstance(value, float) and math.isnan(value):
        return None
    if isinstance(value, dict):
        return {key: without_nan(item) for key, item in value.items()}
    if isinstance(value, list):
        return [without_nan(item) for item in value]
    return value


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--json", metavar="FILE", help="also write the figures to FILE as JSON")
    parser.add_argument("--no-check", action="store_true", help="report only; exit 0 whatever the ratios")
    parser.add_argument("--rounds", type=int, default=3, help="measurements per responder; the best is shown (3)")
    parser.add_argument("--cpu", type=int, default=(os.cpu_count() or 1) - 1,
                        help="pin ping and the responder to this CPU (default: the last); -1: do not pin")
    parser.add_argument("--only", metavar="NAMES",
                        help="measure only these responders (comma-separated: " +
                             ", ".join(r.name for r in RESPONDERS) + ")")
    args = parser.parse_args(argv)
    if args.rounds < 1:
        parser.error("--rounds must be at least 1")
    chosen = RESPONDERS
    if args.only:
        names = args.only.split(",")
        unknown = [name for name in names if name not in {r.name for r in RESPONDERS}]
        if unknown:
            parser.error(f"--only: no responder named {', '.join(unknown)}")
        chosen = [r for r in RESPONDERS if r.name in names]

    if os.geteuid() != 0:
        print("ping_bench: needs root (it creates network namespaces and TAP/TUN devices); run it with sudo",
              file=sys.stderr)
        return 2
    missing = [tool for tool in ("ip", "ping") if shutil.which(tool) is None]
    if missing or not os.path.exists("/dev/net/tun"):
        print(f"ping_bench: cannot run here: missing {', '.join(missing) or '/dev/net/tun'}", file=sys.stderr)
        return 2
    if args.cpu >= 0:
        if shutil.which("taskset") is None:
            print("ping_bench: taskset is not installed (util-linux); use --cpu -1 to run unpinned",
                  file=sys.stderr)
            return 2
        PIN[:] = ["taskset", "-c", str(args.cpu)]
    # SIGTERM unwinds like Ctrl-C, so every namespace and stack process is cleaned up.
    signal.signal(signal.SIGTERM, lambda signum, frame: sys.exit(128 + signum))

    try:
        results = {responder.name: measure(responder, args.rounds) for responder in chosen}
    except (BenchError, subprocess.TimeoutExpired) as error:
        print(f"ping_bench: {error}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("ping_bench: interrupted", file=sys.stderr)
        return 130
    found = checks(results)
    report(results, found, check=not args.no_check)
    if args.json:
        document = {
            "environment": {"kernel": platform.release(), "python": platform.python_version(),
                            "cpus": os.cpu_count(), "machine": platform.machine()},
            "method": {"pinned_cpu": args.cpu, "rounds": args.rounds,
                       "shown": "the best round: lowest median RTT, highest answers/s",
                       "latency": f"ping -i 0 -c {LATENCY_COUNT} -W 1",
                       "capacity": f"ping -f -l {FLOOD_PRELOAD} -c {FLOOD_COUNT} -w {FLOOD_DEADLINE_S}; "
                                   "answers/s = received / wall time of the ping process"},
            "responders": {name: asdict(figures) for name, figures in results.items()},
            "checks": [asdict(c) for c in found],
            "targets": {"max_median_rtt_ratio": MAX_MEDIAN_RTT_RATIO,
                        "min_capacity_ratio": MIN_CAPACITY_RATIO,
                        "yardstick": {"max_median_rtt_ratio": MAX_YARDSTICK_RTT_RATIO,
                                      "min_capacity_ratio": MIN_YARDSTICK_CAPACITY_RATIO,
                                      "max_cpu_per_answer_ratio": MAX_YARDSTICK_CPU_RATIO}},
        }
        Path(args.json).write_text(json.dumps(without_nan(document), indent=2) + "\n")
    if args.no_check or all(c.passed for c in found):
        return 0
    return 1


if __name__ == "__main__":
    raise SystemExit(main())
