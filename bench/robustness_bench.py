"""Issue 13's figures in one table: floods one kind at a time, faults, and a soak with flat memory.

Run as root:  python bench/robustness_bench.py [--seconds-per-kind 10] [--rate 16000]
                  [--soak-minutes 2] [--quick] [--json FILE]
(``make bench-robustness``). Everything runs in network namespaces this script creates and always
deletes (one per tapstack it starts), with documentation addresses only; every flood is bounded
by count and time, every ping by count and deadline.

1. Floods, one kind at a time, then the mix. For each, a fresh ``tapstack run --tap tap0 --ip
   192.0.2.2/24 --host-ip 192.0.2.1/24`` in a namespace of its own; the kernel pings it at 100 a
   second for ``--seconds-per-kind`` while ``bench/flood_generator.py`` writes ``--rate`` frames
   a second of that kind on tap0's kernel side (so they reach tapstack as from the wire):
   random bytes, never-completed 1 KB fragments, ARP from random addresses, random Ethernet
   frames, forged ARP claims for the pinger's own address (every one), ARP from new senders
   (every one a new address at a new MAC), and the mix of the first four with a forged claim
   every 50th ARP frame (bench/flood_bench.py's flood). Reported per kind: flood frames sent
   and those the kernel dropped at tap0 unread (tapstack too slow), pings answered during the
   flood, 5 pings after it, peak memory (VmHWM: the process's peak resident set since it
   started), and whether it survived: exit 0 on SIGTERM with its counters and no internal
   error counted.
2. Faults, each on a real tapstack process and checked as the device tests check them:
   the device deleted and created again under ``--reattach``; SIGTERM and SIGINT every
   millisecond while it stops (the counters and a whole capture must still come); SIGHUP
   after the capture was moved (two whole files holding every frame); ``--pcap-max-bytes``
   rotation (the same); transient write errors (ENOBUFS, EAGAIN, EIO) injected at
   ``os.writev`` under a real TapDevice and the loop, in this process, as
   tests/runtime/test_write_errors.py does.
3. A soak: ``--soak-minutes`` (2) of the mixed flood with 10 pings a second, tapstack's VmRSS
   sampled every ``SAMPLE_S`` seconds. Verdict "flat" when the highest sample of the last third
   is at most ``FLAT_MARGIN`` (2%) above the highest of the first third, else "growing".

Exit status 0 when every kind was survived, every fault passed and the soak is flat; 1 when
not; 2 when the benchmark cannot run here.
"""

from __future__ import annotations

import argparse
import errno
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from pathlib import Path

from flood_bench import memory_kib, neighbour_mac, ping, tx_dropped
from ping_bench import BenchError, in_ns, namespace, run, wait_until_answering

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))
GENERATOR = REPO / "bench" / "flood_generator.py"
PREFIX = f"tsk-rob-{os.getpid()}"  # every namespace this run creates starts with this

PINGER_IP, RESPONDER_IP = "192.0.2.1", "192.0.2.2"
STACK_ARGS = ("run", "--tap", "tap0", "--ip", f"{RESPONDER_IP}/24", "--host-ip", f"{PINGER_IP}/24")
PING_INTERVAL_S = 0.01  # 100 pings a second during a flood
SOAK_PING_INTERVAL_S = 0.1
SAMPLE_S = 5.0  # the soak's RSS sampling period
FLAT_MARGIN = 0.02  # the soak is flat when the last third's peak is within 2% of the first third's
HEAD_START_S = 0.5  # the flood runs this long before the first ping
STOP_TIMEOUT_S = 10
#: (the table's name, flood_generator --mix, --forged-every)
KINDS = [
    ("random bytes", "bytes", 0),
    ("never-completed fragments", "fragment", 0),
    ("ARP from random addresses", "arp", 0),
    ("random frames", "frame", 0),
    ("forged ARP claims for the pinger", "claim", 0),
    ("new senders", "newsender", 0),
    ("the mix (forged claim 1 in 50 ARP)", "bytes,fragment,arp,frame", 50),
]
COUNTER_LINE = re.compile(r"^\s+(\S+)\s+(\d+)$", re.MULTILINE)


# ---------------------------------------------------------------------- a tapstack process


class Stack:
    """``python -m stack run ...`` in namespace ``ns``; its stderr in a temporary file."""

    def __init__(self, ns: str, extra: tuple[str, ...], stderr) -> None:
        self.ns, self._stderr = ns, stderr
        env = dict(os.environ, PYTHONPATH=str(REPO))
        # `ip netns exec` execs the command, so this PID is the stack's own.
        self.process = subprocess.Popen(in_ns(ns, sys.executable, "-m", "stack", *STACK_ARGS, *extra),
                                        cwd=REPO, env=env, stdin=subprocess.DEVNULL,
                                        stdout=subprocess.DEVNULL, stderr=stderr)

    @property
    def pid(self) -> int:
        return self.process.pid

    @property
    def stderr(self) -> str:
        self._stderr.seek(0)
        return self._stderr.read()

    def died(self) -> str | None:
        return None if self.process.poll() is None else f"tapstack exited with {self.process.returncode}: {self.stderr}"

    def wait_for(self, text: str, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while text not in self.stderr:
            if self.process.poll() is not None:
                raise BenchError(f"waiting for {text!r}: {self.died()}")
            if time.monotonic() > deadline:
                raise BenchError(f"no {text!r} from tapstack in {timeout} s")
            time.sleep(0.05)

    def stop(self) -> int:
        """SIGTERM; the exit status (killed after STOP_TIMEOUT_S: -9)."""
        if self.process.poll() is None:  # not reaped: the PID is surely ours
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=STOP_TIMEOUT_S)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=STOP_TIMEOUT_S)
        return self.process.returncode

    def counters(self) -> dict[str, int]:
        return {name: int(value) for name, value in COUNTER_LINE.findall(self.stderr)}


@contextmanager
def stack(name: str, *extra: str) -> Iterator[Stack]:
    with namespace(f"{PREFIX}-{name}") as ns, tempfile.TemporaryFile("w+") as stderr:
        running = Stack(ns, extra, stderr)
        try:
            wait_until_answering(ns, RESPONDER_IP, alive=running.died)
            yield running
        finally:
            if running.process.poll() is None:
                running.process.kill()
                running.process.wait(timeout=STOP_TIMEOUT_S)


def flood(running: Stack, mix: str, forged_every: int, rate: float, seconds: float) -> subprocess.Popen:
    responder_mac = neighbour_mac(running.ns, RESPONDER_IP) or ""
    return subprocess.Popen(
        in_ns(running.ns, sys.executable, str(GENERATOR), "--iface", "tap0",
              "--responder-ip", RESPONDER_IP, "--responder-mac", responder_mac, "--claimed-ip", PINGER_IP,
              "--rate", str(rate), "--count", str(int(rate * seconds) + 1), "--seconds", str(seconds),
              "--mix", mix, "--forged-every", str(forged_every)),
        stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def finish(generator: subprocess.Popen) -> dict:
    if generator.poll() is None:
        generator.send_signal(signal.SIGTERM)
    out, err = generator.communicate(timeout=STOP_TIMEOUT_S + 30)
    if generator.returncode != 0 or not out.strip():
        raise BenchError(f"the flood generator exited with {generator.returncode}: {err.strip()}")
    return json.loads(out.strip().splitlines()[-1])


def replies(ns: str, count: int, *args: str) -> int:
    result = run(in_ns(ns, "ping", "-n", "-c", str(count), "-i", "0.05", "-w", "10", *args, RESPONDER_IP),
                 timeout=30, check=False)
    return sum(1 for line in result.stdout.splitlines() if " bytes from " in line)


# ---------------------------------------------------------------------- 1. floods


@dataclass
class KindOutcome:
    kind: str
    flood_sent: int = 0
    dropped_at_tap: int | None = None
    sent: int = 0
    answered: int = 0
    after: str = ""
    rss_before_kib: int | None = None
    rss_peak_kib: int | None = None
    exit_status: int | None = None
    internal_errors: int = 0
    survived: bool = False


def measure_kind(kind: str, mix: str, forged_every: int, rate: float, seconds: float) -> KindOutcome:
    outcome = KindOutcome(kind)
    print(f"flood: {kind}, {rate:,.0f} frames/s for {seconds:g} s ...", file=sys.stderr, flush=True)
    with stack(mix.split(",")[0] if "," not in mix else "mix", "-q") as running:
        outcome.rss_before_kib = memory_kib(running.pid, "VmRSS")
        generator = flood(running, mix, forged_every, rate, seconds + 2 * HEAD_START_S + 5)
        try:
            time.sleep(HEAD_START_S)
            if generator.poll() is not None:
                raise BenchError(f"the flood generator exited with {generator.returncode}")
            outcome.sent, outcome.answered, _ = ping(running.ns, int(seconds / PING_INTERVAL_S), PING_INTERVAL_S)
        finally:
            report = finish(generator)
        outcome.flood_sent = report["sent"]
        outcome.dropped_at_tap = tx_dropped(running.ns, "tap0")
        outcome.rss_peak_kib = memory_kib(running.pid, "VmHWM")
        outcome.after = f"{replies(running.ns, 5)}/5"
        outcome.exit_status = running.stop()
        counters = running.counters()
        outcome.internal_errors = counters.get("internal_errors", 0)
        outcome.survived = (outcome.exit_status == 0 and "rx_frames" in running.stderr
                            and outcome.internal_errors == 0 and "Traceback" not in running.stderr)
    return outcome


# ---------------------------------------------------------------------- 2. faults


@dataclass
class Fault:
    fault: str
    what: str
    result: str = ""
    passed: bool = False


def records(path: Path) -> int:
    from stack.tap.pcap import PcapReader

    with open(path, "rb") as file:
        return sum(1 for _ in PcapReader(file))  # raises unless a header and whole records


def fault_reattach() -> Fault:
    fault = Fault("device deleted, reattached", "--reattach: ip link del tap0, then a new tap0")
    with stack("reattach", "--reattach", "--reattach-timeout", "20") as running:
        before = replies(running.ns, 3)
        run(in_ns(running.ns, "ip", "link", "del", "tap0"))
        running.wait_for("waiting up to 20 s for tap0", 10)
        time.sleep(0.3)
        run(in_ns(running.ns, "ip", "tuntap", "add", "dev", "tap0", "mode", "tap"))
        running.wait_for("re-attached tap0", 20)
        after = replies(running.ns, 5)
        status = running.stop()
    fault.result = f"answered {before}/3 before, {after}/5 after; exit {status}"
    fault.passed = before == 3 and after == 5 and status == 0
    return fault


def fault_two_signals(directory: Path) -> Fault:
    capture = directory / "signals.pcap"
    fault = Fault("signals while stopping", "SIGTERM, then SIGTERM/SIGINT every ms until it exits")
    with stack("signals", "--pcap", str(capture)) as running:
        answered = replies(running.ns, 3)
        process, sent = running.process, 0
        deadline = time.monotonic() + 5
        while process.poll() is None and time.monotonic() < deadline:  # not reaped: the PID is ours
            os.kill(process.pid, signal.SIGTERM if sent % 2 == 0 else signal.SIGINT)
            sent += 1
            time.sleep(0.001)
        status = running.stop()
        counters = running.counters()
    frames = records(capture)
    expected = counters.get("device.rx_frames", -1) + counters.get("device.tx_frames", -1)
    fault.result = (f"{sent} signals; exit {status}; counters printed: {'yes' if counters else 'NO'}; "
                    f"capture whole, {frames} frames = counters' {expected}")
    fault.passed = status == 0 and answered == 3 and sent >= 2 and frames == expected
    return fault


def fault_sighup(directory: Path) -> Fault:
    capture = directory / "hup.pcap"
    moved = directory / "hup.1.pcap"
    fault = Fault("SIGHUP rotation", "mv FILE; kill -HUP, while pinging at 100/s")
    with stack("sighup", "--pcap", str(capture)) as running:
        pinging = subprocess.Popen(in_ns(running.ns, "ping", "-n", "-q", "-c", "100", "-i", "0.01", "-w", "20",
                                         RESPONDER_IP), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                                   stdin=subprocess.DEVNULL)
        try:
            time.sleep(0.4)
            capture.rename(moved)
            running.process.send_signal(signal.SIGHUP)
            running.wait_for("capture reopened", 5)
        finally:
            pinging.wait(timeout=30)
        status = running.stop()
        counters = running.counters()
    parts = [records(moved), records(capture)]
    expected = counters.get("device.rx_frames", -1) + counters.get("device.tx_frames", -1)
    fault.result = f"two whole files, {parts[0]} + {parts[1]} frames = counters' {expected}; exit {status}"
    fault.passed = status == 0 and all(parts) and sum(parts) == expected
    return fault


def fault_max_bytes(directory: Path) -> Fault:
    capture = directory / "bounded.pcap"
    fault = Fault("--pcap-max-bytes rotation", "--pcap-max-bytes 100K; 60 pings of 1,000 bytes")
    with stack("maxbytes", "--pcap", str(capture), "--pcap-max-bytes", "100K") as running:
        answered = replies(running.ns, 60, "-s", "1000")
        status = running.stop()
        counters = running.counters()
    older = Path(f"{capture}.1")
    parts = [records(older), records(capture)] if older.exists() else [0, records(capture)]
    sizes = [path.stat().st_size for path in (older, capture) if path.exists()]
    expected = counters.get("device.rx_frames", -1) + counters.get("device.tx_frames", -1)
    fault.result = (f"files of {' and '.join(f'{s:,}' for s in sizes)} bytes, {parts[0]} + {parts[1]} frames "
                    f"= counters' {expected}; exit {status}")
    fault.passed = (status == 0 and answered == 60 and len(sizes) == 2 and max(sizes) <= 100 * 1024
                    and sum(parts) == expected)
    return fault


def fault_write_errors() -> Fault:
    """The real TapDevice's write path on a socket pair, the errno injected at os.writev (as
    tests/runtime/test_write_errors.py): 5 requests whose replies fail, then one that succeeds."""
    from stack import TapHost
    from stack.runtime.loop import Loop
    from stack.stats import Stats
    from stack.tap import linux
    from stack.tap.linux import TapDevice

    fault = Fault("write errors", "ENOBUFS, EAGAIN, EIO at os.writev (in process, the real TapDevice)")
    results, passed = [], True
    real_writev = linux.os.writev
    for code, counter in ((errno.ENOBUFS, "tx_enobufs"), (errno.EAGAIN, "tx_eagain"), (errno.EIO, "tx_link_down")):
        ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_DGRAM)
        theirs.settimeout(2.0)
        device = TapDevice.__new__(TapDevice)
        device.name, device.mtu, device.created, device._flags = "fake0", 1500, False, 0
        ours.setblocking(False)
        device._fd = os.dup(ours.fileno())
        device.stats = Stats()
        device._counters = device.stats.counters
        device._allocate()
        server = TapHost(["192.0.2.2/24"], mac="02:00:00:00:00:02")
        client = TapHost(["192.0.2.1/24"], mac="02:00:00:00:00:01")
        loop = Loop()
        loop.attach(device, server)

        def failing(fd, buffers, code=code):
            raise OSError(code, os.strerror(code))
        try:
            now = time.monotonic()
            (request,) = client.ping("192.0.2.2", now, identifier=7, sequence=0)
            (arp_reply,) = server.receive(b"".join(request), now)
            requests = client.receive(b"".join(arp_reply), now)
            requests += [f for sequence in range(1, 5) for f in client.ping("192.0.2.2", now, identifier=7,
                                                                           sequence=sequence)]
            linux.os.writev = failing
            for frame in requests:
                theirs.send(b"".join(frame))
            started = time.monotonic()
            loop.run(timeout=0.5)
            failed = device.stats[counter]
            linux.os.writev = real_writev
            for frame in client.ping("192.0.2.2", time.monotonic(), identifier=7, sequence=9):
                theirs.send(b"".join(frame))
            loop.run(until=lambda: device.stats["tx_frames"] >= 1, timeout=2.0)
            ok = (failed >= 5 and device.stats["tx_frames"] == 1 and loop.stats["internal_errors"] == 0
                  and time.monotonic() - started < 3)
        finally:
            linux.os.writev = real_writev
            loop.close()
            device.close()
            ours.close()
            theirs.close()
        results.append(f"{errno.errorcode[code]} {failed} counted")
        passed = passed and ok
    fault.result = "; ".join(results) + ("; the next reply written each time" if passed else "; FAILED")
    fault.passed = passed
    return fault


# ---------------------------------------------------------------------- 3. soak


@dataclass
class Soak:
    minutes: float
    flood_sent: int = 0
    sent: int = 0
    answered: int = 0
    samples_kib: list[int] = field(default_factory=list)
    first_third_max_kib: int = 0
    last_third_max_kib: int = 0
    flat: bool = False
    exit_status: int | None = None


def soak(minutes: float, rate: float) -> Soak:
    outcome = Soak(minutes)
    seconds = minutes * 60
    print(f"soak: the mix for {minutes:g} min at {rate:,.0f} frames/s ...", file=sys.stderr, flush=True)
    with stack("soak", "-q") as running:
        generator = flood(running, "bytes,fragment,arp,frame", 50, rate, seconds + 10)
        count = int(seconds / SOAK_PING_INTERVAL_S)
        pinging = subprocess.Popen(in_ns(running.ns, "ping", "-n", "-q", "-c", str(count), "-i",
                                         str(SOAK_PING_INTERVAL_S), "-W", "1",
                                         RESPONDER_IP),
                                   stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, stdin=subprocess.DEVNULL, text=True)
        try:
            started = time.monotonic()
            while time.monotonic() - started < seconds and pinging.poll() is None:
                sample = memory_kib(running.pid, "VmRSS")
                if sample is None:
                    raise BenchError(f"tapstack went away during the soak: {running.died()}")
                outcome.samples_kib.append(sample)
                time.sleep(SAMPLE_S)
            output, _ = pinging.communicate(timeout=seconds + 60)
        finally:
            if pinging.poll() is None:
                pinging.kill()
                pinging.wait()
            report = finish(generator)
        from ping_bench import ping_summary

        outcome.sent, outcome.answered = ping_summary(output)
        outcome.flood_sent = report["sent"]
        outcome.exit_status = running.stop()
    outcome.first_third_max_kib, outcome.last_third_max_kib, outcome.flat = flat(outcome.samples_kib)
    return outcome


def flat(samples: list[int], margin: float = FLAT_MARGIN) -> tuple[int, int, bool]:
    """(the first third's highest sample, the last third's, whether the last is within
    ``margin`` of the first): memory that grows with time shows in the last third."""
    third = max(1, len(samples) // 3)
    first, last = max(samples[:third]), max(samples[-third:])
    return first, last, last <= first * (1 + margin)


# ---------------------------------------------------------------------- report


def mib(kib: int | None) -> str:
    return "-" if kib is None else f"{kib / 1024:.1f} MiB"


def report(kinds: list[KindOutcome], faults: list[Fault], soaked: Soak | None, rate: float, seconds: float) -> bool:
    if kinds:
        print(f"\nFloods ({rate:,.0f} frames/s, {seconds:g} s each, pinged at 100/s; a fresh tapstack each):")
        print("| flood | frames sent (dropped at tap0 unread) | pings answered during it | after | peak RSS | survived |")
        print("|---|---|---|---|---|---|")
    for k in kinds:
        print(f"| {k.kind} | {k.flood_sent:,} ({k.dropped_at_tap or 0:,}) | {k.answered:,} / {k.sent:,} "
              f"({k.answered / k.sent if k.sent else 0:.1%}) | {k.after} | {mib(k.rss_peak_kib)} | "
              f"{'yes' if k.survived else 'NO'}: exit {k.exit_status}, internal errors {k.internal_errors} |")
    if faults:
        print("\nFaults:")
        print("| fault | how | result | passed |")
        print("|---|---|---|---|")
    for f in faults:
        print(f"| {f.fault} | {f.what} | {f.result} | {'yes' if f.passed else 'NO'} |")
    if soaked is not None:
        print(f"\nSoak: {soaked.minutes:g} min of the mix at {rate:,.0f} frames/s ({soaked.flood_sent:,} frames), "
              f"pinged at 10/s: {soaked.answered:,} / {soaked.sent:,} answered; VmRSS every {SAMPLE_S:g} s "
              f"({len(soaked.samples_kib)} samples) from {mib(soaked.samples_kib[0])} to {mib(soaked.samples_kib[-1])}; "
              f"first third's highest {mib(soaked.first_third_max_kib)}, last third's {mib(soaked.last_third_max_kib)}: "
              f"{'flat' if soaked.flat else 'GROWING'} (flat: within {FLAT_MARGIN:.0%}); exit {soaked.exit_status}")
    return (all(k.survived for k in kinds) and all(f.passed for f in faults)
            and (soaked is None or (soaked.flat and soaked.exit_status == 0)))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds-per-kind", type=float, default=10.0, help="flood and ping each kind this long (10)")
    parser.add_argument("--rate", type=float, default=16000.0, help="flood frames a second (16000)")
    parser.add_argument("--soak-minutes", type=float, default=2.0, help="the soak's length (2; 0: no soak)")
    parser.add_argument("--quick", action="store_true", help="3 s per kind, a 0.5 min soak")
    parser.add_argument("--only", choices=["floods", "faults", "soak"], action="append",
                        help="run only this part (repeatable)")
    parser.add_argument("--json", metavar="FILE", help="also write the figures to FILE as JSON")
    args = parser.parse_args(argv)
    seconds = 3.0 if args.quick else args.seconds_per_kind
    minutes = 0.5 if args.quick else args.soak_minutes
    if not 1 <= seconds <= 600 or not 0 < args.rate <= 1_000_000 or not 0 <= minutes <= 120:
        parser.error("--seconds-per-kind must be 1-600, --rate in (0, 1000000], --soak-minutes 0-120")
    if minutes and minutes * 60 < 3 * SAMPLE_S:
        parser.error(f"--soak-minutes: at least {3 * SAMPLE_S / 60:g} (three samples)")
    if os.geteuid() != 0:
        print("robustness_bench: needs root (it creates network namespaces and TAP devices); run it with sudo",
              file=sys.stderr)
        return 2
    missing = [tool for tool in ("ip", "ping") if shutil.which(tool) is None]
    if missing or not os.path.exists("/dev/net/tun"):
        print(f"robustness_bench: cannot run here: missing {', '.join(missing) or '/dev/net/tun'}", file=sys.stderr)
        return 2
    parts = set(args.only or ["floods", "faults", "soak"])
    signal.signal(signal.SIGTERM, lambda signum, frame: sys.exit(128 + signum))  # unwind: clean up
    load_before = os.getloadavg()
    kinds: list[KindOutcome] = []
    faults: list[Fault] = []
    soaked = None
    try:
        if "floods" in parts:
            kinds = [measure_kind(name, mix, forged, args.rate, seconds) for name, mix, forged in KINDS]
        if "faults" in parts:
            print("faults ...", file=sys.stderr, flush=True)
            with tempfile.TemporaryDirectory() as directory:
                faults = [fault_reattach(), fault_two_signals(Path(directory)), fault_sighup(Path(directory)),
                          fault_max_bytes(Path(directory)), fault_write_errors()]
        if "soak" in parts and minutes:
            soaked = soak(minutes, args.rate)
    except (BenchError, subprocess.TimeoutExpired) as error:
        print(f"robustness_bench: {error}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("robustness_bench: interrupted", file=sys.stderr)
        return 130
    passed = report(kinds, faults, soaked, args.rate, seconds)
    load_after = os.getloadavg()
    print(f"\nload average (1, 5, 15 min) before: {', '.join(f'{v:.2f}' for v in load_before)}; after: "
          f"{', '.join(f'{v:.2f}' for v in load_after)}; {os.cpu_count()} CPUs; Python {sys.version.split()[0]}, "
          f"Linux {os.uname().release}")
    if args.json:
        Path(args.json).write_text(json.dumps({
            "method": {"rate": args.rate, "seconds_per_kind": seconds, "soak_minutes": minutes,
                       "cpus": os.cpu_count(), "load_average": [load_before, load_after]},
            "floods": [asdict(k) for k in kinds], "faults": [asdict(f) for f in faults],
            "soak": asdict(soaked) if soaked else None}, indent=2) + "\n")
    return 0 if passed else 1


if __name__ == "__main__":
    raise SystemExit(main())
