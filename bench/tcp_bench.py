"""How fast does tapstack serve TCP (HTTP requests, echo bytes), against the kernel's own TCP
serving the same bytes, measured side by side in one run, not pinned and pinned to one CPU?

Run as root:  python bench/tcp_bench.py [--rounds N] [--modes unpinned,pinned] [--cpu K]
                                        [--only kernel,tapstack] [--json FILE] [--quick]

Every server is measured by bench/tcp_client.py (a small Python socket client on the kernel's
TCP, bounded in count and time) from inside network namespaces this script creates and always
deletes (also on Ctrl-C and SIGTERM); nothing touches the root namespace. The servers:

  kernel     the yardstick: two namespaces joined by a veth pair; bench/tcp_yardstick.py (a
             minimal Python socket server: the kernel's TCP, tapstack's http answers byte for
             byte, recv/sendall echo) listens on 198.51.100.2 ports 80 and 7; the client runs
             at 198.51.100.1.
  tapstack   ``python -m stack run --tap tap0 --ip 192.0.2.2/24 --host-ip 192.0.2.1/24 --tcp
             80:http --tcp 7:echo``; the client runs in the same namespace, on tap0's kernel side.

One round of one server in one mode is three client runs, one request in flight at a time:

  keep-alive   ``http-keepalive``: N requests over one connection (requests/s);
  new conn.    ``http-new``: N connections, one request each with ``Connection: close``, the
               server closes (requests/s, connection set-up and tear-down included);
  echo         ``echo``: N bytes sent to port 7 and read back at once, checked byte for byte
               (MB/s, 10^6 bytes of the N, one way, per second of wall time).

and, for each, the server process's CPU time per request (per MB) from
``/proc/PID/task/*/schedstat``. For the kernel that is only what runs in the Python server's
context (its system calls, and the receive work the kernel happens to do there); the rest of
the kernel's TCP runs in softirq in the client's context: a lower bound, shown for scale.

Modes, order and statistics are ping_bench.py's: ``unpinned`` (as users run) and ``pinned``
(client and server on CPU ``--cpu``, default the last: the server's affinity set while it runs,
the client started under ``taskset``); every server started once; for each round, for each mode,
for each server; odd rounds reversed. Each round also runs bench/tcp_cost.py (in process, two
TcpLayers through memory, per CPU second). Every figure is the median over the rounds with its
spread (min-max); the ratio tapstack / kernel is the ratio of the medians with the min-max of
each round's side-by-side ratio. No target: the ratio is the figure (issue 16).

Before measuring, the first responses of both servers are compared: the same bytes but for
the Date line's value, or the report says how they differ. Exit status 0 when every figure was
measured in every round and the responses agree, 1 when not, 2 when the benchmark cannot run
here (not root, a tool missing, bad arguments).
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
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, ExitStack, contextmanager
from dataclasses import asdict, dataclass, field
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import ping_bench as pb  # noqa: E402  (namespaces, modes, medians and spreads: one implementation)

REPO = Path(__file__).resolve().parent.parent
PREFIX = f"tsk-tcpb-{os.getpid()}"  # every namespace this run creates starts with this
HTTP_PORT, ECHO_PORT = 80, 7


@dataclass(frozen=True)
class Counts:
    """How much one round measures."""

    requests: int = 2000  # keep-alive requests
    connections: int = 500  # new connections, one request each
    echo_bytes: int = 8_000_000
    in_process: tuple[str, ...] = ("--requests", "1000", "--connections", "200", "--megabytes", "2")


FULL = Counts()
QUICK = Counts(requests=200, connections=50, echo_bytes=1_000_000,
               in_process=("--requests", "100", "--connections", "20", "--megabytes", "0.2"))
DEFAULT_ROUNDS = 5
CLIENT_DEADLINE_S = 120
READY_ATTEMPTS = 30  # one probe of each port a second or so
IN_PROCESS_TIMEOUT_S = 600
#: What the run found out about the kernel's TCP in the client namespaces (name -> value).
FACTS: dict[str, str] = {}


# ---------------------------------------------------------------------- servers


@dataclass(frozen=True)
class Running:
    namespace: str  # where the client runs
    pid: int  # the serving process (its CPU time and affinity)


@dataclass(frozen=True)
class Server:
    name: str
    address: str  # what the client connects to
    start: Callable[[str], AbstractContextManager[Running]]


def client_argv(ns: str, what: str, address: str, port: int, amount: int = 1,
                prefix: tuple[str, ...] = (), deadline: float = CLIENT_DEADLINE_S) -> list[str]:
    return [*prefix, *pb.in_ns(ns, sys.executable, str(REPO / "bench" / "tcp_client.py"), what, address,
                               str(port), str(amount), "--deadline", str(deadline))]


@contextmanager
def serving(argv: list[str], client_ns: str, address: str, what: str) -> Iterator[Running]:
    """Start ``argv``, wait until ``address`` accepts on both ports, stop it with SIGTERM at the
    end insisting on exit status 0."""
    with tempfile.TemporaryFile("w+") as stderr:
        env = dict(os.environ, PYTHONPATH=str(REPO))
        # `ip netns exec` execs the command, so this PID is the server's own.
        process = subprocess.Popen(argv, cwd=REPO, env=env, stdin=subprocess.DEVNULL,
                                   stdout=subprocess.DEVNULL, stderr=stderr)

        def died() -> str | None:
            if process.poll() is None:
                return None
            stderr.seek(0)
            return f"{what} exited with {process.returncode}: {stderr.read().strip()}"

        try:
            wait_until_listening(client_ns, address, died)
            yield Running(client_ns, process.pid)
        except BaseException:
            pb.stop_stack(process, died, check=False)  # keep the original error
            raise
        pb.stop_stack(process, died)


def wait_until_listening(ns: str, address: str, alive: Callable[[], str | None]) -> None:
    for _ in range(READY_ATTEMPTS):
        reason = alive()
        if reason is not None:
            raise pb.BenchError(reason)
        started = time.monotonic()
        if all(pb.run(client_argv(ns, "probe", address, port, deadline=2), timeout=10, check=False).returncode == 0
               for port in (HTTP_PORT, ECHO_PORT)):
            return
        time.sleep(max(0.0, 1.0 - (time.monotonic() - started)))
    raise pb.BenchError(f"{address} did not accept on ports {HTTP_PORT} and {ECHO_PORT} in {READY_ATTEMPTS} tries")


@contextmanager
def kernel_server(prefix: str) -> Iterator[Running]:
    """The kernel's TCP: namespace a (client) --veth-- namespace b (tcp_yardstick.py)."""
    with pb.namespace(f"{prefix}a") as a, pb.namespace(f"{prefix}b") as b:
        pb.run(["ip", "-n", a, "link", "add", "veth0", "type", "veth", "peer", "name", "veth1", "netns", b])
        pb.run(["ip", "-n", a, "address", "add", "198.51.100.1/24", "dev", "veth0"])
        pb.run(["ip", "-n", b, "address", "add", "198.51.100.2/24", "dev", "veth1"])
        pb.run(["ip", "-n", a, "link", "set", "veth0", "up"])
        pb.run(["ip", "-n", b, "link", "set", "veth1", "up"])
        argv = pb.in_ns(b, sys.executable, str(REPO / "bench" / "tcp_yardstick.py"), "--ip", "198.51.100.2",
                        "--http-port", str(HTTP_PORT), "--echo-port", str(ECHO_PORT))
        with serving(argv, a, "198.51.100.2", "the yardstick server") as running:
            yield running


@contextmanager
def tapstack_server(prefix: str) -> Iterator[Running]:
    """``python -m stack run`` on a TAP in a namespace; the client on the kernel's side of it."""
    with pb.namespace(prefix) as ns:
        argv = pb.in_ns(ns, sys.executable, "-m", "stack", "run", "--tap", "tap0", "--ip", "192.0.2.2/24",
                        "--host-ip", "192.0.2.1/24", "--tcp", f"{HTTP_PORT}:http", "--tcp", f"{ECHO_PORT}:echo", "-q")
        with serving(argv, ns, "192.0.2.2", "the stack") as running:
            yield running


SERVERS = [Server("kernel", "198.51.100.2", kernel_server), Server("tapstack", "192.0.2.2", tapstack_server)]


# ---------------------------------------------------------------------- one round


@dataclass
class Round:
    """What one round measured of one server in one mode (NaN: could not be measured)."""

    keepalive_per_s: float = math.nan
    new_per_s: float = math.nan
    echo_mb_per_s: float = math.nan
    keepalive_cpu_us: float = math.nan  # the server process's CPU time per request
    new_cpu_us: float = math.nan
    echo_cpu_ms_per_mb: float = math.nan
    notes: list[str] = field(default_factory=list)
    first_responses: dict[str, str] = field(default_factory=dict)


#: The figures per server and mode: Round attribute -> (column title, unit, digits).
FIGURES = {"keepalive_per_s": ("keep-alive req/s", "", 0), "new_per_s": ("new conn. req/s", "", 0),
           "echo_mb_per_s": ("echo MB/s", "", 2), "keepalive_cpu_us": ("CPU/req keep-alive", "us", 0),
           "new_cpu_us": ("CPU/req new conn.", "us", 0), "echo_cpu_ms_per_mb": ("CPU/MB echo", "ms", 1)}
#: The ratios tapstack / kernel reported (the speeds; CPU figures of the kernel are a lower bound).
RATIO_FIGURES = ("keepalive_per_s", "new_per_s", "echo_mb_per_s")

#: client run -> (port, the Round attribute of its rate, of its CPU, CPU unit scale)
RUNS = {"http-keepalive": (HTTP_PORT, "keepalive_per_s", "keepalive_cpu_us"),
        "http-new": (HTTP_PORT, "new_per_s", "new_cpu_us"),
        "echo": (ECHO_PORT, "echo_mb_per_s", "echo_cpu_ms_per_mb")}


def measure_round(running: Running, address: str, mode: pb.Mode, counts: Counts) -> Round:
    figures = Round()
    pb.set_affinity(running.pid, mode.cpus)
    amounts = {"http-keepalive": counts.requests, "http-new": counts.connections, "echo": counts.echo_bytes}
    for what, (port, rate_name, cpu_name) in RUNS.items():
        amount = amounts[what]
        cpu_before = pb.cpu_seconds(running.pid)
        result = pb.run(client_argv(running.namespace, what, address, port, amount, mode.ping_prefix),
                        timeout=CLIENT_DEADLINE_S + 30, check=False)
        cpu = pb.cpu_seconds(running.pid) - cpu_before
        if result.returncode != 0:
            figures.notes.append(f"{what}: {result.stderr.strip() or f'exit status {result.returncode}'}")
            continue
        found = json.loads(result.stdout)
        if what == "echo":
            megabytes = amount / 1e6
            setattr(figures, rate_name, megabytes / found["seconds"])
            setattr(figures, cpu_name, cpu / megabytes * 1e3)
        else:
            setattr(figures, rate_name, found["rate"])
            setattr(figures, cpu_name, cpu / amount * 1e6)
            figures.first_responses[what] = found["first_response"]
    return figures


# ---------------------------------------------------------------------- in process

IN_PROCESS_LINE = re.compile(r"^(?P<kind>\S.*?)\s+(?P<rate>\d+(?:\.\d+)?) (?P<unit>requests/s|MB/s)\b", re.M)


def parse_in_process(output: str) -> dict[str, float]:
    """``kind -> rate`` from tcp_cost.py's lines (``HTTP keep-alive   4217 requests/s ...``)."""
    return {f"{m['kind']} ({m['unit']})": float(m["rate"]) for m in IN_PROCESS_LINE.finditer(output)}


def run_in_process(counts: Counts) -> dict[str, float]:
    result = pb.run([sys.executable, str(REPO / "bench" / "tcp_cost.py"), *counts.in_process],
                    timeout=IN_PROCESS_TIMEOUT_S)
    found = parse_in_process(result.stdout)
    if len(found) != 3:
        raise pb.BenchError(f"tcp_cost.py printed {len(found)} figures, not 3:\n{result.stdout[-500:]}")
    return found


# ---------------------------------------------------------------------- responses

DATE = re.compile(r"^Date: [^\r\n]*\r\n", re.M)


def compare_responses(results: Results) -> list[str]:
    """How the servers' first responses differ, the Date line's value aside ([]: the same)."""
    seen: dict[str, dict[str, str]] = {}
    for name, by_mode in results.items():
        for rounds in by_mode.values():
            for one in rounds:
                for what, text in one.first_responses.items():
                    seen.setdefault(what, {}).setdefault(name, text)
    differences = []
    for what, by_server in seen.items():
        shapes = {name: DATE.sub("Date: (any)\r\n", text) for name, text in by_server.items()}
        if len(set(shapes.values())) > 1:
            differences.append(f"{what}: " + "; ".join(f"{name} sent {text!r}" for name, text in shapes.items()))
    return differences


# ---------------------------------------------------------------------- report

#: server -> mode -> the rounds, in order
Results = dict[str, dict[str, list[Round]]]
#: tcp_cost.py's kind -> the rounds' rates
InProcess = dict[str, list[float]]


def figure_rounds(rounds: list[Round], figure: str) -> list[float]:
    return [getattr(one, figure) for one in rounds]


def title(mode: pb.Mode) -> str:
    cpus = ",".join(str(cpu) for cpu in sorted(mode.cpus))
    if mode.name == "pinned":
        return f"pinned: client and server on CPU {cpus}"
    return f"not pinned: client and server on any of CPUs {cpus}, as users run"


def ratios(results: Results, mode: str) -> dict[str, pb.Ratio]:
    if "tapstack" not in results or "kernel" not in results:
        return {}
    return {figure: pb.ratio(figure_rounds(results["tapstack"][mode], figure),
                             figure_rounds(results["kernel"][mode], figure)) for figure in RATIO_FIGURES}


def mode_report(mode: pb.Mode, results: Results, rounds: int) -> list[str]:
    lines = [f"== {title(mode)}: median of {rounds} round{'s' if rounds != 1 else ''} (min-max) =="]
    width = max(len("server"), *(len(name) for name in results))
    cells = {name: {figure: pb.show(pb.spread(figure_rounds(by_mode[mode.name], figure)), digits, unit)
                    for figure, (_, unit, digits) in FIGURES.items()} for name, by_mode in results.items()}
    widths = {figure: max(len(FIGURES[figure][0]), *(len(row[figure]) for row in cells.values()))
              for figure in FIGURES}
    lines.append(f"{'server':<{width}}  " + "  ".join(f"{FIGURES[f][0]:>{w}}" for f, w in widths.items()))
    for name, row in cells.items():
        lines.append(f"{name:<{width}}  " + "  ".join(f"{row[f]:>{w}}" for f, w in widths.items()))
        for index, one in enumerate(results[name][mode.name], 1):
            lines += [f"  note: {name}, round {index}: {note}" for note in one.notes]
    found = ratios(results, mode.name)
    if found:
        lines.append("tapstack / kernel: the ratio of the medians (min-max of each round's ratio, side by side)")
        for figure, value in found.items():
            incomplete = "" if value.complete else "  [not measured in every round]"
            lines.append(f"  {FIGURES[figure][0]:<18} {pb.number(value.value, 3):>7}x "
                         f"({pb.number(value.low, 3)}-{pb.number(value.high, 3)}){incomplete}")
    return lines


def in_process_report(in_process: InProcess, rounds: int) -> list[str]:
    lines = [f"== in process (bench/tcp_cost.py: two TcpLayers through memory, both ends' TCP, per CPU "
             f"second, not pinned): median of {rounds} round{'s' if rounds != 1 else ''} (min-max) =="]
    width = max((len(kind) for kind in in_process), default=0)
    for kind, values in in_process.items():
        lines.append(f"  {kind:<{width}}  {pb.show(pb.spread(values), 2 if 'MB' in kind else 0)}")
    return lines


def complete(results: Results, in_process: InProcess) -> bool:
    return all(pb.spread(figure_rounds(rounds, figure)).complete
               for by_mode in results.values() for rounds in by_mode.values() for figure in FIGURES) \
        and all(pb.spread(values).complete for values in in_process.values())


def report(modes: list[pb.Mode], results: Results, in_process: InProcess, differences: list[str],
           rounds: int) -> list[str]:
    lines: list[str] = []
    for mode in modes:
        lines += mode_report(mode, results, rounds) + [""]
    lines += in_process_report(in_process, rounds) + [""]
    if len(results) > 1:
        lines += [f"responses differ: {d}" for d in differences] or \
                 ["responses: the same bytes from both servers (the Date line's value aside)"]
    lines.append("every figure measured in every round" if complete(results, in_process)
                 else "NOT every figure was measured in every round (see the notes)")
    return lines


def document(args: argparse.Namespace, counts: Counts, results: Results, in_process: InProcess,
             differences: list[str], load_start: tuple[float, ...], load_end: tuple[float, ...]) -> dict:
    """Everything the run measured, every round of every figure, for ``--json``."""
    return pb.without_nan({
        "environment": {"kernel": platform.release(), "python": platform.python_version(),
                        "cpus": os.cpu_count(), "cpu_model": pb.cpu_model(), "machine": platform.machine(),
                        "load_average_start": list(load_start), "load_average_end": list(load_end),
                        **FACTS},
        "method": {
            "rounds": args.rounds, "quick": args.quick,
            "modes": {mode.name: {"cpus": sorted(mode.cpus), "client": " ".join(mode.ping_prefix) or None}
                      for mode in args.modes},
            "order": "all servers started once; for each round, for each mode, for each server: keep-alive, "
                     "new connections, echo; odd rounds in reverse order",
            "keepalive": f"tcp_client.py http-keepalive: {counts.requests} requests, one connection, one in flight",
            "new_connections": f"tcp_client.py http-new: {counts.connections} connections, one request each",
            "echo": f"tcp_client.py echo: {counts.echo_bytes} bytes sent and read back; MB/s = 10^6 bytes / s",
            "cpu": "the server process's threads' run time (/proc/PID/task/*/schedstat) during the run",
            "in_process": "bench/tcp_cost.py " + " ".join(counts.in_process) + ", once per round",
        },
        "servers": {
            name: {"address": next(s.address for s in SERVERS if s.name == name),
                   "modes": {mode: {"rounds": [asdict(one) for one in rounds],
                                    "figures": {figure: asdict(pb.spread(figure_rounds(rounds, figure)))
                                                | {"rounds": figure_rounds(rounds, figure)} for figure in FIGURES}}
                             for mode, rounds in by_mode.items()}}
            for name, by_mode in results.items()},
        "ratios": [{"mode": mode.name, "figure": figure, "ratio": value.value, "low": value.low, "high": value.high,
                    "per_round": value.per_round, "complete": value.complete}
                   for mode in args.modes for figure, value in ratios(results, mode.name).items()],
        "in_process": {kind: asdict(pb.spread(values)) | {"rounds": values} for kind, values in in_process.items()},
        "response_differences": differences,
        "complete": complete(results, in_process),
    })


# ---------------------------------------------------------------------- the run


def measure_all(chosen: list[Server], modes: list[pb.Mode], rounds: int,
                counts: Counts) -> tuple[Results, InProcess]:
    results: Results = {s.name: {mode.name: [] for mode in modes} for s in chosen}
    in_process: InProcess = {}
    by_name = {s.name: s for s in chosen}
    with ExitStack() as started:
        running = {}
        for position, server in enumerate(chosen):
            print(f"starting {server.name} ...", file=sys.stderr, flush=True)
            running[server.name] = started.enter_context(server.start(f"{PREFIX}-{position}"))
            # The kernel's congestion control shapes both servers' figures (its client sends to both).
            found = pb.run(pb.in_ns(running[server.name].namespace, "sysctl", "-n",
                                    "net.ipv4.tcp_congestion_control"), check=False).stdout.strip()
            FACTS[f"tcp_congestion_control ({server.name}'s client namespace)"] = found or "unknown"
        current = -1
        for index, mode, name in pb.schedule(rounds, modes, [s.name for s in chosen]):
            if index != current:  # a new round starts with the in-process figures
                current = index
                print(f"round {index + 1}/{rounds}: tcp_cost.py ...", file=sys.stderr, flush=True)
                for kind, rate in run_in_process(counts).items():
                    in_process.setdefault(kind, [math.nan] * index).append(rate)
            print(f"round {index + 1}/{rounds}, {mode.name}: {name} ...", file=sys.stderr, flush=True)
            results[name][mode.name].append(measure_round(running[name], by_name[name].address, mode, counts))
    return results, in_process


def cannot_run(modes: list[pb.Mode]) -> str | None:
    if os.geteuid() != 0:
        return "needs root (it creates network namespaces and a TAP device); run it with sudo"
    missing = [tool for tool in ("ip",) if shutil.which(tool) is None]
    if any(mode.ping_prefix for mode in modes) and shutil.which("taskset") is None:
        missing.append("taskset (util-linux; or --modes unpinned)")
    if not os.path.exists("/dev/net/tun"):
        missing.append("/dev/net/tun")
    return f"cannot run here: missing {', '.join(missing)}" if missing else None


def parse_arguments(argv: list[str] | None) -> argparse.Namespace:
    allowed = os.sched_getaffinity(0)
    parser = argparse.ArgumentParser(prog="tcp_bench.py", description=__doc__.split("\n\n")[0])
    parser.add_argument("--json", metavar="FILE", help="also write every round of every figure to FILE as JSON")
    parser.add_argument("--rounds", type=int, help=f"rounds (default {DEFAULT_ROUNDS}; 1 with --quick)")
    parser.add_argument("--modes", default=",".join(pb.MODES),
                        help="comma-separated: unpinned, pinned (default: both, in one run)")
    parser.add_argument("--cpu", type=int, default=max(allowed),
                        help="the CPU of the pinned mode (default: the last, %(default)s)")
    parser.add_argument("--only", metavar="NAMES",
                        help="measure only these servers (comma-separated: " + ", ".join(s.name for s in SERVERS) + ")")
    parser.add_argument("--quick", action="store_true",
                        help=f"small counts ({QUICK.requests} requests, {QUICK.connections} connections, "
                             f"{QUICK.echo_bytes // 1_000_000} MB), 1 round: for tests")
    args = parser.parse_args(argv)
    if args.rounds is None:
        args.rounds = 1 if args.quick else DEFAULT_ROUNDS
    if args.rounds < 1:
        parser.error("--rounds must be at least 1")
    modes = [mode for mode in args.modes.split(",") if mode]
    unknown = [mode for mode in modes if mode not in pb.MODES]
    if unknown or not modes or len(set(modes)) != len(modes):
        parser.error(f"--modes: give unpinned, pinned or both, once each (not {args.modes!r})")
    if "pinned" in modes and args.cpu not in allowed:
        parser.error(f"--cpu {args.cpu}: not one of the CPUs this process may use "
                     f"({', '.join(str(cpu) for cpu in sorted(allowed))})")
    args.modes = [pb.make_mode(mode, args.cpu, allowed) for mode in modes]
    args.chosen = SERVERS
    if args.only:
        names = args.only.split(",")
        unknown = [name for name in names if name not in {s.name for s in SERVERS}]
        if unknown or not names:
            parser.error(f"--only: no server named {', '.join(unknown) or repr(args.only)}")
        args.chosen = [s for s in SERVERS if s.name in names]
    if args.json and not Path(args.json).resolve().parent.is_dir():
        parser.error(f"--json {args.json}: no such directory")
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_arguments(argv)  # bad arguments: one line, exit status 2
    reason = cannot_run(args.modes)
    if reason is not None:
        print(f"tcp_bench: {reason}", file=sys.stderr)
        return 2
    # SIGTERM unwinds like Ctrl-C, so every namespace and server process is cleaned up.
    signal.signal(signal.SIGTERM, lambda signum, frame: sys.exit(128 + signum))
    counts = QUICK if args.quick else FULL
    load_start = os.getloadavg()
    try:
        results, in_process = measure_all(args.chosen, args.modes, args.rounds, counts)
    except (pb.BenchError, subprocess.TimeoutExpired) as error:
        print(f"tcp_bench: {error}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("tcp_bench: interrupted", file=sys.stderr)
        return 130
    load_end = os.getloadavg()
    differences = compare_responses(results)
    print(f"tcp_bench: {pb.cpu_model()}, {os.cpu_count()} CPUs, Linux {platform.release()}, "
          f"Python {platform.python_version()}, load average {load_start[0]:.2f} at the start, "
          f"{load_end[0]:.2f} at the end; per round: {counts.requests} keep-alive requests, "
          f"{counts.connections} new connections, {counts.echo_bytes / 1e6:g} MB echoed; the kernel's "
          f"congestion control: {', '.join(sorted(set(FACTS.values()))) or 'unknown'}")
    print("\n".join(report(args.modes, results, in_process, differences, args.rounds)))
    if args.json:
        Path(args.json).write_text(json.dumps(document(args, counts, results, in_process, differences,
                                                       load_start, load_end), indent=2) + "\n")
    return 0 if complete(results, in_process) and not differences else 1


if __name__ == "__main__":
    raise SystemExit(main())
