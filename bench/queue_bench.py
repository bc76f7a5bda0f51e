"""Does ``tapstack run --queues 2`` answer more pings per second than one queue?

Run as root:  python bench/queue_bench.py [--rounds N] [--count N] [--json FILE] [--no-check]

In a namespace of its own (deleted afterwards, also on Ctrl-C), ``python -m stack run --tap tap0
--ip 192.0.2.2/24 --host-ip 192.0.2.1/24 --queues Q`` answers, and eight pingers on the kernel
side, each from its own source address (``ping -I``), flood it at once:
``ping -f -l PRELOAD -c COUNT -W 1`` each, so exactly COUNT requests per pinger, at most PRELOAD
in flight, and every request not answered within a second is lost. Answers per second = all
replies / the wall time from starting the pingers until the last one ended. Loss = requests
without a reply.

The kernel picks a queue by a hash of the flow (for ping, its addresses), fixed for the whole
boot, so which queue eight addresses land on is luck: on the machine this was written on,
192.0.2.10-17 split 1:7. So two sets of eight pingers are measured:

  first eight   192.0.2.10-17, whatever the hash does with them;
  balanced      four addresses per queue, picked from 192.0.2.10-73 by watching which queue
                the kernel puts each one's requests on (``tc -s class show dev tap0``: the mq
                qdisc has one class per queue). What queue scaling gives when the flows spread.

Each (queues, pinning, set) runs ``--rounds`` times (default 5): the table shows the median
answers/s with the spread (lowest-highest), the loss summed over the rounds, the responders'
CPU time per answer (/proc/PID/schedstat, all workers together) and the share of the whole
machine's CPU time left idle during the flood (/proc/stat): near 0 % the machine itself is the
limit, and another queue has no CPU to run on. Not pinned,
the scheduler places everything; pinned, the worker of queue i runs on CPU i mod #CPUs (one
queue: CPU 0) and the pingers stay unpinned: they use CPU too, on the same machine.

Target (issue 12): two queues at least 1.5x the answers per second of one queue, with no loss
(balanced set). Exit status 0 when met (or with --no-check), 1 when not, 2 when the benchmark
cannot run here.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import re
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from contextlib import contextmanager
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
NAMESPACE = f"tsk-qbench-{os.getpid()}"
STACK_IP, KERNEL_IP = "192.0.2.2", "192.0.2.1"
FIRST_EIGHT = [f"192.0.2.{n}" for n in range(10, 18)]
POOL = [f"192.0.2.{n}" for n in range(10, 74)]
PRELOAD = 4
MIN_SPEEDUP = 1.5
READY_TIMEOUT_S = 20
PING_TIMEOUT_S = 120


class BenchError(Exception):
    """The benchmark could not measure."""


def run(argv: list[str], timeout: float = 30, check: bool = True) -> subprocess.CompletedProcess[str]:
    result = subprocess.run(argv, capture_output=True, text=True, timeout=timeout, stdin=subprocess.DEVNULL)
    if check and result.returncode != 0:
        raise BenchError(f"{' '.join(argv)} failed ({result.returncode}): {result.stderr.strip()}")
    return result


def in_ns(*argv: str) -> list[str]:
    return ["ip", "netns", "exec", NAMESPACE, *argv]


@contextmanager
def namespace():
    run(["ip", "netns", "add", NAMESPACE])
    try:
        run(in_ns("ip", "link", "set", "lo", "up"))
        yield
    finally:
        run(["ip", "netns", "del", NAMESPACE], check=False)


@contextmanager
def stack(queues: int, pinned: bool):
    """tapstack with ``queues`` queues, the pool's addresses on the kernel side; yields the pids
    that answer (the workers, or the one process)."""
    with tempfile.NamedTemporaryFile("w+", suffix=".stderr") as stderr:
        env = dict(os.environ, PYTHONPATH=str(REPO))
        process = subprocess.Popen(
            in_ns(sys.executable, "-m", "stack", "run", "--tap", "tap0", "--ip", f"{STACK_IP}/24",
                  "--host-ip", f"{KERNEL_IP}/24", "--queues", str(queues)),
            cwd=REPO, env=env, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=stderr)
        try:
            deadline = time.monotonic() + READY_TIMEOUT_S
            while "Ctrl-C to stop" not in Path(stderr.name).read_text():
                if process.poll() is not None or time.monotonic() > deadline:
                    raise BenchError(f"tapstack did not start: {Path(stderr.name).read_text()}")
                time.sleep(0.05)
            text = Path(stderr.name).read_text()
            match = re.search(r"\(pids ([\d ]+)\)", text)
            pids = [int(p) for p in match.group(1).split()] if match else [process.pid]
            if pinned:
                cpus = os.cpu_count() or 1
                for index, pid in enumerate(pids):
                    run(["taskset", "-p", "-c", str(index % cpus), str(pid)])
            for address in POOL:
                run(in_ns("ip", "addr", "add", f"{address}/24", "dev", "tap0"))
            run(in_ns("ping", "-n", "-q", "-c", "3", "-i", "0.2", "-w", "10", STACK_IP))
            yield pids
        finally:
            if process.poll() is None:
                process.send_signal(signal.SIGTERM)
                try:
                    process.wait(timeout=15)
                except subprocess.TimeoutExpired:
                    process.kill()
                    process.wait(timeout=15)
            if process.returncode != 0:
                print(Path(stderr.name).read_text(), file=sys.stderr)


def queue_packets() -> list[int]:
    """Frames the kernel has put on each queue of tap0 so far (the mq qdisc's classes)."""
    shown = run(in_ns("tc", "-s", "class", "show", "dev", "tap0")).stdout  # (iproute2 6.1: no -j for classes)
    counts = {int(handle, 16): int(packets) for handle, packets in
              re.findall(r"class mq :([0-9a-f]+) .*?\n\s*Sent \d+ bytes (\d+) pkt", shown)}
    return [counts[k] for k in sorted(counts)]


def balanced_eight() -> list[str]:
    """Four pool addresses per queue of a running two-queue stack, by where their pings land."""
    where: dict[str, int] = {}
    for address in POOL:
        before = queue_packets()
        run(in_ns("ping", "-n", "-q", "-c", "3", "-i", "0.01", "-w", "5", "-I", address, STACK_IP))
        after = queue_packets()
        grown = [after[i] - before[i] for i in range(len(after))]
        where[address] = max(range(len(grown)), key=grown.__getitem__)
        by_queue = [[a for a, q in where.items() if q == queue] for queue in (0, 1)]
        if all(len(addresses) >= 4 for addresses in by_queue):
            return by_queue[0][:4] + by_queue[1][:4]
    raise BenchError(f"the pool's addresses do not spread over the queues: {where}")


def cpu_seconds(pids: list[int]) -> float:
    """CPU time the responder processes have used so far (/proc/PID/schedstat: on CPU, in ns)."""
    total = 0
    for pid in pids:
        with open(f"/proc/{pid}/schedstat") as file:
            total += int(file.read().split()[0])
    return total / 1e9


def machine_idle() -> tuple[int, int]:
    """(idle, total) jiffies of all CPUs so far (/proc/stat; idle + iowait count as idle)."""
    with open("/proc/stat") as file:
        fields = [int(v) for v in file.readline().split()[1:]]
    return fields[3] + fields[4], sum(fields)


def flood(sources: list[str], count: int, pids: list[int]) -> dict:
    """All pingers at once: answers per second, replies, requests lost, the responders' CPU time
    per answer and the share of the machine's CPU time left idle meanwhile."""
    cpu_before, idle_before = cpu_seconds(pids), machine_idle()
    started = time.monotonic()
    pingers = [subprocess.Popen(in_ns("ping", "-n", "-q", "-f", "-l", str(PRELOAD), "-c", str(count),
                                      "-W", "1", "-I", source, STACK_IP),
                                stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                                stdin=subprocess.DEVNULL) for source in sources]
    outputs = [p.communicate(timeout=PING_TIMEOUT_S)[0] for p in pingers]
    elapsed = time.monotonic() - started
    cpu, idle_after = cpu_seconds(pids) - cpu_before, machine_idle()
    received = lost = 0
    for output in outputs:
        match = re.search(r"(\d+) packets transmitted, (\d+) received", output)
        if not match:
            raise BenchError(f"no summary in ping's output: {output[-300:]}")
        transmitted, got = int(match.group(1)), int(match.group(2))
        received += got
        lost += transmitted - got
    idle = (idle_after[0] - idle_before[0]) / max(1, idle_after[1] - idle_before[1])
    return {"rate": received / elapsed, "replies": received, "lost": lost,
            "cpu_us_per_answer": cpu / max(1, received) * 1e6, "idle": idle}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--count", type=int, default=3000, help="requests per pinger per round (3000)")
    parser.add_argument("--json", metavar="FILE")
    parser.add_argument("--no-check", action="store_true")
    args = parser.parse_args(argv)
    if os.geteuid() != 0:
        print("queue_bench: needs root (it creates a network namespace)", file=sys.stderr)
        return 2
    results: dict[str, dict] = {}
    try:
        with namespace():
            with stack(2, pinned=False):
                balanced = balanced_eight()
            print(f"balanced set: {' '.join(balanced)}", file=sys.stderr)
            for pinned in (False, True):
                for queues in (1, 2):
                    with stack(queues, pinned) as pids:
                        for name, sources in (("first eight", FIRST_EIGHT), ("balanced", balanced)):
                            rounds = [flood(sources, args.count, pids) for _ in range(args.rounds)]
                            key = f"{queues}|{'pinned' if pinned else 'not pinned'}|{name}"
                            results[key] = {"sources": sources, "rounds": rounds,
                                            "rates": [r["rate"] for r in rounds],
                                            "lost": sum(r["lost"] for r in rounds),
                                            "cpu_us_per_answer": statistics.median(r["cpu_us_per_answer"] for r in rounds),
                                            "idle": statistics.median(r["idle"] for r in rounds)}
                            print(f"{key}: median {statistics.median(results[key]['rates']):,.0f}/s, "
                                  f"lost {results[key]['lost']}", file=sys.stderr)
    except (BenchError, subprocess.TimeoutExpired) as error:
        print(f"queue_bench: {error}", file=sys.stderr)
        return 2
    return report(results, args)


def report(results: dict[str, dict], args) -> int:
    print(f"queue_bench: {platform.node()}, {os.cpu_count()} CPUs, Linux {platform.release()}, "
          f"8 pingers x {args.count} requests (ping -f -l {PRELOAD}), {args.rounds} rounds")
    print("| pinned | pingers | 1 queue: answers/s (spread) | 2 queues: answers/s (spread) | 2 / 1 "
          "| lost (1 / 2) | CPU µs per answer (1 / 2) | machine idle (1 / 2) |")
    print("|---|---|---|---|---|---|---|---|")
    met = True
    for pinned in ("not pinned", "pinned"):
        for name in ("first eight", "balanced"):
            one, two = results[f"1|{pinned}|{name}"], results[f"2|{pinned}|{name}"]
            m1, m2 = statistics.median(one["rates"]), statistics.median(two["rates"])
            ratio = m2 / m1
            print(f"| {pinned} | {name} | {m1:,.0f} ({min(one['rates']):,.0f}-{max(one['rates']):,.0f}) "
                  f"| {m2:,.0f} ({min(two['rates']):,.0f}-{max(two['rates']):,.0f}) | {ratio:.2f}x "
                  f"| {one['lost']} / {two['lost']} | {one['cpu_us_per_answer']:.0f} / {two['cpu_us_per_answer']:.0f} "
                  f"| {one['idle']:.0%} / {two['idle']:.0%} |")
            if name == "balanced" and (ratio < MIN_SPEEDUP or two["lost"]):
                met = False
    if args.json:
        Path(args.json).write_text(json.dumps(results, indent=2))
    verdict = "met" if met else "NOT met"
    print(f"target (balanced, pinned and not): 2 queues >= {MIN_SPEEDUP}x one queue, no loss: {verdict}")
    return 0 if met or args.no_check else 1


if __name__ == "__main__":
    sys.exit(main())
