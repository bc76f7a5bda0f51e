"""How many virtual hosts can one tapstack be, and what does each cost?

Run:  python bench/lan_bench.py [--json FILE] [--in-process-only]

In process (no root, no device): ``TapHost`` with 1, 100 and 759 addresses (every host address
of the three documentation networks, RFC 5737, but .1, the kernel's on each). For each size:
memory held by the host once its announcements are done (tracemalloc), and the cost of
answering an ARP request and an echo request for its last host (timeit, 2,000 frames a run, the
best of 3 alternating rounds of 3 runs), which must not grow with the number of hosts.

On a real TAP device (root; in a network namespace this script creates and always deletes): the
759 hosts in one ``tapstack run``, the kernel holding 192.0.2.1, 198.51.100.1 and 203.0.113.1 on
the other end. We report the stack's resident memory against a one-host stack's, how long it
takes until the last host answers, and what ``nmap -sn`` (ARP host discovery) of the three /24s
finds: it must find exactly the 759 hosts, each at its own MAC.

Why 759 and not 10,000: only the documentation networks may be used on these machines, and
they hold 762 host addresses. Nothing in the stack depends on the count (addresses are sets and
dicts; on-link tests are one per network; announcements go out in batches), which the per-frame
figures below check; memory grows linearly, so 10,000 hosts cost 10,000 x the per-host figure.

Exit status 0 when the scan found exactly the configured hosts and the per-frame cost at 759
hosts is within 1.5x the cost at 1; 1 when not; 2 when it cannot run here.
"""

from __future__ import annotations

import argparse
import gc
import json
import math
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
import timeit
import tracemalloc
from ipaddress import IPv4Interface, IPv4Network
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "bench"))

from ping_bench import BenchError, in_ns, namespace, run, stop_stack  # noqa: E402

from stack import TapHost  # noqa: E402
from stack.buffers import join  # noqa: E402
from stack.runtime.settle import run_until_quiet  # noqa: E402
from tests.root.test_lan_device import parse_nmap_hosts  # noqa: E402

NETWORKS = ("192.0.2", "198.51.100", "203.0.113")
KERNEL_MAC = bytes.fromhex("020000000001")
MAX_COST_GROWTH = 1.5  # per-frame cost at 759 hosts / at 1 host


def documentation_lan() -> list[IPv4Interface]:
    return lan_of([f"{prefix}.0/24" for prefix in NETWORKS])


# ---------------------------------------------------------------------- in process


def settled_host(interfaces: list[IPv4Interface]) -> TapHost:
    """A host whose start-up announcements are all sent."""
    host = TapHost(interfaces)
    if not run_until_quiet(host, 0.0).quiet:
        raise BenchError(f"a host of {len(interfaces)} addresses did not go quiet after start-up")
    return host


def memory_of(interfaces: list[IPv4Interface]) -> int:
    gc.collect()
    tracemalloc.start()
    host = settled_host(interfaces)
    gc.collect()
    size = tracemalloc.get_traced_memory()[0]
    tracemalloc.stop()
    del host
    return size


def frames_for(interface: IPv4Interface) -> tuple[bytes, bytes]:
    """An ARP request for the address and an echo request to it, from the network's .1."""
    import dpkt

    kernel = (interface.network.network_address + 1).packed
    mac = bytes.fromhex("0200") + interface.ip.packed
    arp = dpkt.arp.ARP(op=1, sha=KERNEL_MAC, spa=kernel, tha=bytes(6), tpa=interface.ip.packed)
    arp_frame = bytes(dpkt.ethernet.Ethernet(dst=b"\xff" * 6, src=KERNEL_MAC, type=0x0806, data=arp))
    echo = dpkt.icmp.ICMP(type=8, data=dpkt.icmp.ICMP.Echo(id=7, seq=1, data=bytes(56)))
    ip = dpkt.ip.IP(src=kernel, dst=interface.ip.packed, p=1, ttl=64, data=echo)
    echo_frame = bytes(dpkt.ethernet.Ethernet(dst=mac, src=KERNEL_MAC, type=0x0800, data=ip))
    return arp_frame, echo_frame


def cost_us(host: TapHost, frame: bytes) -> float:
    assert len(host.receive(frame, 1.0)) == 1, "no answer"
    return min(timeit.repeat(lambda: host.receive(frame, 1.0), number=2000, repeat=3)) / 2000 * 1e6


def lan_of(networks: list[str]) -> list[IPv4Interface]:
    """Every host address of ``networks`` but the first of each (the kernel's)."""
    out = []
    for text in networks:
        network = IPv4Network(text)
        out += [IPv4Interface(f"{address}/{network.prefixlen}") for address in list(network.hosts())[1:]]
    return out


def in_process(lan: list[IPv4Interface], rounds: int = 3) -> dict:
    """Memory and per-frame cost by number of hosts (1, 100 and all of ``lan``). Costs are
    measured in alternating rounds (1, 100, all, 1, 100, ...), keeping each size's best, so
    machine noise hits all alike."""
    sizes = sorted({1, min(100, len(lan)), len(lan)})
    hosts = {size: settled_host(lan[:size]) for size in sizes}
    rows = []
    for size, host in hosts.items():
        arp_frame, _ = frames_for(lan[size - 1])
        reply = join(host.receive(arp_frame, 1.0)[0])
        assert reply[6:12] == bytes(host.mac_of(lan[size - 1].ip)), "ARP reply from the wrong MAC"
        rows.append({"hosts": size, "memory_bytes": memory_of(lan[:size]),
                     "arp_reply_us": math.inf, "echo_reply_us": math.inf})
    for _ in range(rounds):
        for row in rows:
            host = hosts[row["hosts"]]
            arp_frame, echo_frame = frames_for(lan[row["hosts"] - 1])
            row["arp_reply_us"] = min(row["arp_reply_us"], cost_us(host, arp_frame))
            row["echo_reply_us"] = min(row["echo_reply_us"], cost_us(host, echo_frame))
    base = rows[0]["memory_bytes"]
    for row in rows[1:]:
        row["bytes_per_extra_host"] = (row["memory_bytes"] - base) / (row["hosts"] - 1)
    return {"rows": rows}


# ---------------------------------------------------------------------- on a real TAP


def rss_kib(pid: int) -> int:
    with open(f"/proc/{pid}/status") as status:
        return int(re.search(r"^VmRSS:\s+(\d+) kB", status.read(), re.M).group(1))


def start_stack(ns: str, ip_args: list[str], stderr) -> subprocess.Popen:
    env = dict(os.environ, PYTHONPATH=str(REPO))
    argv = in_ns(ns, sys.executable, "-m", "stack", "run", "--tap", "tap0", *ip_args, "-q")
    return subprocess.Popen(argv, cwd=REPO, env=env, stdin=subprocess.DEVNULL,
                            stdout=subprocess.DEVNULL, stderr=stderr)


def wait_answering(ns: str, address: str, process: subprocess.Popen, timeout: float = 30) -> float:
    """Seconds from now until ``address`` answers a kernel ping."""
    start = time.monotonic()
    while time.monotonic() - start < timeout:
        if process.poll() is not None:
            raise BenchError(f"the stack exited with {process.returncode}")
        if run(in_ns(ns, "ping", "-n", "-c", "1", "-W", "1", address), check=False).returncode == 0:
            return time.monotonic() - start
    raise BenchError(f"{address} did not answer within {timeout} s")


def on_device() -> dict:
    for tool in ("ip", "ping", "nmap"):
        if shutil.which(tool) is None:
            raise BenchError(f"{tool} is not installed (apt-get install iproute2 iputils-ping nmap)")
    ranges = [f"--ip={prefix}.2-{prefix}.254/24" for prefix in NETWORKS]
    expected = {str(i.ip): "02:00:" + i.ip.packed.hex(":") for i in documentation_lan()}
    with namespace(f"tsk-lanbench-{os.getpid()}") as ns, tempfile.TemporaryFile("w+") as stderr:
        run(in_ns(ns, "ip", "tuntap", "add", "dev", "tap0", "mode", "tap"))
        run(in_ns(ns, "sysctl", "-q", "-w", "net.ipv6.conf.tap0.disable_ipv6=1"))
        for prefix in NETWORKS:
            run(in_ns(ns, "ip", "addr", "add", f"{prefix}.1/24", "dev", "tap0"))
        run(in_ns(ns, "ip", "link", "set", "tap0", "up"))
        figures: dict = {}
        for label, ip_args, last in (("one_host", ["--ip=192.0.2.2/24"], "192.0.2.2"),
                                     ("lan", ranges, "203.0.113.254")):
            process = start_stack(ns, ip_args, stderr)
            try:
                figures[f"{label}_ready_s"] = wait_answering(ns, last, process)
                figures[f"{label}_rss_kib"] = rss_kib(process.pid)
                if label == "lan":
                    started = time.monotonic()
                    scan = run(in_ns(ns, "nmap", "-sn", "-n", *(f"{p}.0/24" for p in NETWORKS)), timeout=300)
                    figures["scan_s"] = time.monotonic() - started
                    found = parse_nmap_hosts(scan.stdout)
                    for prefix in NETWORKS:
                        found.pop(f"{prefix}.1", None)  # nmap lists the scanning host too
                    figures["hosts_found"] = len(found)
                    figures["hosts_expected"] = len(expected)
                    figures["scan_exact"] = found == expected
                    figures["rss_kib_per_extra_host"] = ((figures["lan_rss_kib"] - figures["one_host_rss_kib"])
                                                         / (len(expected) - 1))
            finally:
                stop_stack(process, lambda: f"exit {process.returncode}", check=False)
        return figures


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--json", metavar="FILE", help="also write the figures as JSON")
    parser.add_argument("--in-process-only", action="store_true", help="skip the real-device part")
    parser.add_argument("--network", action="append", metavar="CIDR",
                        help="in process only: the hosts of these networks instead of the three "
                             "documentation /24s (e.g. --network 198.18.0.0/18 for 16,381 hosts; "
                             "on your own machine: this project's only use documentation addresses)")
    args = parser.parse_args(argv)
    if args.network and not args.in_process_only:
        parser.error("--network is for the in-process part only: add --in-process-only")
    results: dict = {"in_process": in_process(lan_of(args.network) if args.network else documentation_lan())}
    print("hosts  memory (KiB)  per extra host (B)  ARP reply (us)  echo reply (us)")
    for row in results["in_process"]["rows"]:
        print(f"{row['hosts']:>5}  {row['memory_bytes'] / 1024:>12.0f}  "
              f"{row.get('bytes_per_extra_host', 0):>18.0f}  {row['arp_reply_us']:>14.1f}  "
              f"{row['echo_reply_us']:>15.1f}")
    rows = results["in_process"]["rows"]
    growth = max(rows[-1]["arp_reply_us"] / rows[0]["arp_reply_us"],
                 rows[-1]["echo_reply_us"] / rows[0]["echo_reply_us"])
    ok = growth <= MAX_COST_GROWTH
    print(f"per-frame cost at {rows[-1]['hosts']} hosts / at 1: {growth:.2f}x "
          f"(target <= {MAX_COST_GROWTH}x) {'ok' if ok else 'FAIL'}")
    if not args.in_process_only:
        if os.geteuid() != 0:
            print("lan_bench: the real-device part needs root (or pass --in-process-only)", file=sys.stderr)
            return 2
        try:
            device = results["on_device"] = on_device()
        except BenchError as error:
            print(f"lan_bench: {error}", file=sys.stderr)
            return 2
        print(f"on tap0: 1 host {device['one_host_rss_kib']} KiB RSS; {device['hosts_expected']} hosts "
              f"{device['lan_rss_kib']} KiB RSS ({device['rss_kib_per_extra_host'] * 1024:.0f} B per extra host); "
              f"last host answering {device['lan_ready_s']:.1f} s after start")
        print(f"nmap -sn of the three /24s: {device['hosts_found']} hosts found of "
              f"{device['hosts_expected']} in {device['scan_s']:.1f} s, exactly the configured ones "
              f"at their own MACs: {'yes' if device['scan_exact'] else 'NO'}")
        ok = ok and device["scan_exact"]
    if args.json:
        Path(args.json).write_text(json.dumps(results, indent=2))
    return 0 if ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
