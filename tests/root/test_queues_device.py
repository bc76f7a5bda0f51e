"""``tapstack run --queues N`` against the real kernel: one multi-queue TAP (or TUN), one worker
process per queue, in a private namespace each.

The same harness as ``test_cli_device.py`` (imported from it). The kernel side is 192.0.2.1/24
plus 192.0.2.10-24, so sixteen pingers (``ping -I ADDRESS``) are sixteen flows the kernel spreads
over the queues by a hash of their addresses (fixed per boot: eight flows split 1:7 on the
machine this was written on, and all sixteen on one queue has a chance of 2^-15).
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time

import pytest

from tests.root.test_cli_device import (
    HOST_ARGS,
    KERNEL_IP,
    STACK_IP,
    REPO,
    in_ns,
    stack_env,
    start_stack,  # noqa: F401 -- a fixture: imported by name so that pytest finds it here
    tapstack,
)

pytestmark = pytest.mark.device

SOURCES = [KERNEL_IP] + [f"192.0.2.{n}" for n in range(10, 25)]


def queue_stack(start_stack, ns: str, queues: int = 2, *extra: str):
    stack = start_stack(ns, *HOST_ARGS, "--host-ip", f"{KERNEL_IP}/24", "--queues", str(queues), *extra)
    for address in SOURCES[1:]:
        in_ns(ns, "ip", "addr", "add", f"{address}/24", "dev", "tap0")
    return stack


def worker_pids(stack) -> list[int]:
    match = re.search(r"one worker each \(pids ([\d ]+)\)", stack.stderr)
    assert match, stack.stderr
    return [int(pid) for pid in match.group(1).split()]


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


def gone_soon(pids: list[int], seconds: float = 10) -> bool:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if not any(alive(pid) for pid in pids):
            return True
        time.sleep(0.05)
    return False


def ping_from_all(ns: str, *args: str, target: str = STACK_IP) -> dict[str, str]:
    """One kernel ping from each source address, all at once; each bounded by count and -w."""
    pingers = {source: subprocess.Popen(["ip", "netns", "exec", ns, "ping", "-n", "-I", source, *args, target],
                                        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                                        stdin=subprocess.DEVNULL)
               for source in SOURCES}
    return {source: pinger.communicate(timeout=60)[0] for source, pinger in pingers.items()}


def counter(summary: str, name: str) -> int:
    match = re.search(rf"^\s+{re.escape(name)}\s+(\d+)$", summary, re.M)
    return int(match.group(1)) if match else 0


def per_queue_frames(stderr: str) -> dict[int, int]:
    return {int(q): int(n) for q, n in re.findall(r"queue (\d+) \(worker \d+\): (\d+) frames in", stderr)}


@pytest.mark.tools("ping")
def test_two_queues_answer_sixteen_pingers_and_the_summary_is_the_sum(netns: str, start_stack) -> None:
    stack = queue_stack(start_stack, netns)
    link = in_ns(netns, "ip", "-d", "link", "show", "tap0").stdout
    assert "multi_queue numqueues 2" in link, link
    results = ping_from_all(netns, "-c", "20", "-i", "0.02", "-w", "20")
    for source, output in results.items():
        assert "20 packets transmitted, 20 received" in output, (source, output)
    assert stack.stop() == 0
    stderr = stack.stderr
    assert "tapstack counters (the sum over 2 queues)" in stderr
    assert counter(stderr, "icmp_echo_replies_sent") == len(SOURCES) * 20, stderr
    frames = per_queue_frames(stderr)
    assert sorted(frames) == [0, 1] and min(frames.values()) >= 20, stderr  # both answered pingers
    assert counter(stderr, "rx_frames") == sum(frames.values()), stderr  # one table: the sum
    # Every neighbour learnt on one queue was told to the other one (TAP: kernel address each).
    assert counter(stderr, "exchange.heard") == counter(stderr, "exchange.told") > 0
    assert counter(stderr, "drop.arp_unresolved") == 0, stderr


@pytest.mark.tools("ping")
def test_fragmented_pings_are_reassembled_by_one_worker(netns: str, start_stack) -> None:
    """The kernel hashes fragments on their addresses only (no ports to read), so all the
    fragments of one datagram land on one queue, and per-worker reassembly is enough: 3000-byte
    pings from sixteen addresses over two queues are all answered, none left incomplete."""
    stack = queue_stack(start_stack, netns)
    results = ping_from_all(netns, "-s", "3000", "-c", "10", "-i", "0.05", "-w", "20")
    for source, output in results.items():
        assert "10 packets transmitted, 10 received" in output, (source, output)
    assert stack.stop() == 0
    stderr = stack.stderr
    assert counter(stderr, "ipv4_reassembled") == len(SOURCES) * 10, stderr
    assert counter(stderr, "icmp_echo_replies_sent") == len(SOURCES) * 10, stderr
    assert all(n > 0 for n in per_queue_frames(stderr).values()), stderr  # both queues took some


def queue_packets(ns: str) -> list[int]:
    """Frames the kernel has put on each queue of tap0 (its mq qdisc has one class per queue)."""
    shown = in_ns(ns, "tc", "-s", "class", "show", "dev", "tap0").stdout
    counts = {int(handle, 16): int(packets) for handle, packets in
              re.findall(r"class mq :([0-9a-f]+) .*?\n\s*Sent \d+ bytes (\d+) pkt", shown)}
    return [counts[k] for k in sorted(counts)]


@pytest.mark.tools("ping", "tc")
def test_the_kernel_puts_every_fragment_of_a_datagram_on_one_queue(netns: str, start_stack) -> None:
    """Checked at the kernel's own queues (tc's per-queue counters), not through tapstack: two
    3000-byte pings (three fragments each) from each source address put all six fragments on
    one queue, and the sources together use both queues."""
    stack = queue_stack(start_stack, netns)
    for source in SOURCES:  # first, unfragmented: every ARP exchange is over before we count
        in_ns(netns, "ping", "-n", "-q", "-c", "1", "-w", "5", "-I", source, STACK_IP)
    used = set()
    for source in SOURCES:
        before = queue_packets(netns)
        in_ns(netns, "ping", "-n", "-q", "-c", "2", "-i", "0.05", "-w", "5", "-s", "3000", "-I", source, STACK_IP)
        grown = [after - was for after, was in zip(queue_packets(netns), before)]
        assert sorted(grown)[-2:] == [0, 6], (source, grown)  # 2 datagrams x 3 fragments, one queue
        used.add(grown.index(6))
    assert used == {0, 1}
    assert stack.stop() == 0


SEND_UDP = """
import socket, sys
with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
    sock.bind((sys.argv[1], int(sys.argv[2])))
    sock.sendto(bytes(int(sys.argv[4])), (sys.argv[3], 9))
"""


@pytest.mark.tools("ping", "tc")
def test_the_kernel_puts_every_fragment_of_a_udp_datagram_on_one_queue(netns: str, start_stack) -> None:
    """A fragment has no ports to read, so the kernel hashes all of a datagram's fragments (the
    first too) on the addresses alone: 3000-byte datagrams from three source ports of each
    address land, three fragments each, on one queue; whole datagrams are hashed with their
    ports (sixteen source ports of one address use both queues)."""
    stack = queue_stack(start_stack, netns)
    for source in SOURCES[:4]:  # first, a ping: every ARP exchange is over before we count
        in_ns(netns, "ping", "-n", "-q", "-c", "1", "-w", "5", "-I", source, STACK_IP)
    for source in SOURCES[:4]:
        queues = set()
        for port in (40000, 40001, 40002):
            before = queue_packets(netns)
            in_ns(netns, sys.executable, "-c", SEND_UDP, source, str(port), STACK_IP, "3000")
            deadline = time.monotonic() + 5
            while sum(queue_packets(netns)) - sum(before) < 3 and time.monotonic() < deadline:
                time.sleep(0.01)
            grown = [after - was for after, was in zip(queue_packets(netns), before)]
            assert sorted(grown)[-2:] == [0, 3], (source, port, grown)
            queues.add(grown.index(3))
        assert len(queues) == 1, (source, queues)  # the ports never moved a fragment
    # Whereas whole datagrams of one address pair, from sixteen source ports, use both queues.
    queues = set()
    for port in range(41000, 41016):
        before = queue_packets(netns)
        in_ns(netns, sys.executable, "-c", SEND_UDP, KERNEL_IP, str(port), STACK_IP, "100")
        deadline = time.monotonic() + 5
        while sum(queue_packets(netns)) == sum(before) and time.monotonic() < deadline:
            time.sleep(0.01)
        grown = [after - was for after, was in zip(queue_packets(netns), before)]
        queues.add(grown.index(max(grown)))
    assert queues == {0, 1}
    assert stack.stop() == 0


@pytest.mark.tools("ping")
def test_sigterm_to_the_parent_stops_every_worker(netns: str, start_stack) -> None:
    stack = queue_stack(start_stack, netns, 3)
    pids = worker_pids(stack)
    assert len(pids) == 3 and all(alive(pid) for pid in pids)
    assert stack.stop(signal.SIGTERM) == 0
    assert gone_soon(pids, 1)
    assert "tapstack counters (the sum over 3 queues)" in stack.stderr
    assert in_ns(netns, "ip", "link", "show", "tap0", check=False).returncode != 0  # gone with us


def test_a_worker_that_dies_is_reported_and_the_others_stop(netns: str, start_stack) -> None:
    stack = queue_stack(start_stack, netns, 3)
    pids = worker_pids(stack)
    os.kill(pids[1], signal.SIGKILL)
    assert stack.process.wait(timeout=20) == 1
    assert gone_soon(pids)
    stderr = stack.stderr
    assert f"tapstack: worker {pids[1]} (queue 1) killed by SIGKILL; the other workers were stopped" in stderr
    assert "without its counters" in stderr
    assert "Traceback" not in stderr


def test_no_worker_outlives_a_killed_parent(netns: str, start_stack) -> None:
    stack = queue_stack(start_stack, netns)
    pids = worker_pids(stack)
    stack.process.kill()  # SIGKILL: the parent cannot pass anything on
    stack.process.wait(timeout=10)
    assert gone_soon(pids), "orphaned workers"


def test_an_existing_single_queue_device_is_one_clear_line(netns: str) -> None:
    in_ns(netns, "ip", "tuntap", "add", "dev", "tap0", "mode", "tap")
    result = tapstack(netns, "run", *HOST_ARGS, "--host-ip", f"{KERNEL_IP}/24", "--queues", "2")
    assert result.returncode == 2
    assert result.stderr.strip().splitlines() == [
        "tapstack: error: tap0 exists without multi_queue, so it has one queue: delete it (ip link del "
        "tap0) or recreate it with ip tuntap add dev tap0 mode tap multi_queue"]
    # Nothing was changed: no address on the kernel side, still one queue.
    shown = in_ns(netns, "ip", "-d", "addr", "show", "tap0").stdout
    assert KERNEL_IP not in shown and "multi_queue" not in shown, shown


@pytest.mark.parametrize("flag, words", [("--pcap=/dev/null", "--pcap cannot be used with --queues"),
                                         ("--probe", "--probe cannot be used with --queues")])
def test_flags_that_cannot_work_with_several_workers_are_refused_first(netns: str, flag, words) -> None:
    result = tapstack(netns, "run", *HOST_ARGS, "--queues", "2", flag)
    assert result.returncode == 2
    assert result.stderr.startswith(f"tapstack: error: {words}"), result.stderr
    assert in_ns(netns, "ip", "link", "show", "tap0", check=False).returncode != 0  # nothing created


@pytest.mark.tools("ping")
def test_tun_with_two_queues_answers(netns: str, start_stack) -> None:
    stack = start_stack(netns, "--tun", "tun0", "--ip", STACK_IP, "--host-ip", KERNEL_IP, "--queues", "2")
    link = in_ns(netns, "ip", "-d", "link", "show", "tun0").stdout
    assert "multi_queue numqueues 2" in link, link
    result = in_ns(netns, "ping", "-n", "-c", "10", "-i", "0.02", "-w", "10", "-s", "2000", STACK_IP, check=False)
    assert "10 packets transmitted, 10 received" in result.stdout, result.stdout
    assert stack.stop() == 0
    assert counter(stack.stderr, "icmp_echo_replies_sent") == 10


@pytest.mark.tools("ping")
def test_an_existing_multi_queue_device_is_used_and_left_as_it_was(netns: str, start_stack) -> None:
    in_ns(netns, "ip", "tuntap", "add", "dev", "tap0", "mode", "tap", "multi_queue")
    stack = queue_stack(start_stack, netns, 3)
    assert "multi_queue numqueues 3" in in_ns(netns, "ip", "-d", "link", "show", "tap0").stdout
    result = in_ns(netns, "ping", "-n", "-c", "3", "-i", "0.05", "-w", "10", STACK_IP, check=False)
    assert "3 received" in result.stdout, result.stdout
    assert stack.stop() == 0
    # Persistent: still there once every queue is closed, with none attached.
    assert "multi_queue numqueues 0" in in_ns(netns, "ip", "-d", "link", "show", "tap0").stdout
