"""ARP cache poisoning on a real TAP device (issue 13): forged claims to the kernel's address do not
redirect tapstack's replies, a real MAC change is followed within the check interval, and a flood
of new senders does not stop the answers.

Each test runs ``python -m stack run --tap tap0 --ip 192.0.2.2/24 --host-ip 192.0.2.1/24`` in a
namespace of its own; the kernel on tap0's other end (192.0.2.1) pings it, and
``bench/flood_generator.py`` writes the flood on tap0 with an AF_PACKET socket, so it reaches
tapstack as from the wire. A sniffer (an AF_PACKET socket for every protocol, so that it sees
the kernel's outgoing frames too) tells where tapstack's echo replies went and what ARP the kernel
sent. The flood is small (1,000 frames a second for 3.5 s): what is tested is the defence,
not capacity (``bench/flood_bench.py`` measures that).
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
GENERATOR = REPO / "bench" / "flood_generator.py"
KERNEL_IP, STACK_IP = "192.0.2.1", "192.0.2.2"
MOVED_MAC = "02:00:00:00:00:77"

pytestmark = [pytest.mark.device, pytest.mark.tools("ping")]

#: Counts, for a bounded time, the echo replies that come out of tap0 by packet type (0: to the
#: kernel's own MAC, 3: to another host's, which the kernel drops) and lists the ARP frames the
#: kernel sends (packet type 4, outgoing), with the monotonic time of each.
SNIFFER = r"""
import json, socket, struct, sys, time
sock = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, socket.htons(0x0003))
sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4 << 20)
sock.bind((sys.argv[1], 0))
sock.settimeout(0.1)
print("ready", flush=True)
end = time.monotonic() + float(sys.argv[2])
replies, arp = {}, []
while time.monotonic() < end:
    try:
        data, address = sock.recvfrom(2048)
    except socket.timeout:
        continue
    ethertype, kind = struct.unpack_from("!H", data, 12)[0], address[2]
    if ethertype == 0x0800 and len(data) > 34 and data[23] == 1 and data[34] == 0:
        replies[kind] = replies.get(kind, 0) + 1
    elif ethertype == 0x0806 and kind == 4 and len(data) >= 42:
        arp.append({"time": time.monotonic(), "source": data[6:12].hex(":"),
                    "operation": struct.unpack_from("!H", data, 20)[0],
                    "sender": socket.inet_ntoa(data[28:32]), "target": socket.inet_ntoa(data[38:42])})
print(json.dumps({"replies": replies, "arp": arp}), flush=True)
"""


def in_ns(ns: str, *argv: str) -> list[str]:
    return ["ip", "netns", "exec", ns, *argv]


def run(*argv: str, timeout: float = 30) -> subprocess.CompletedProcess[str]:
    return subprocess.run(argv, capture_output=True, text=True, timeout=timeout, stdin=subprocess.DEVNULL)


class Stack:
    """tapstack serving in ``ns``; ``stop()`` sends SIGTERM and returns its stderr (the counters)."""

    def __init__(self, ns: str) -> None:
        self.ns = ns
        self.stderr = tempfile.TemporaryFile("w+")
        self.process = subprocess.Popen(
            in_ns(ns, sys.executable, "-m", "stack", "run", "--tap", "tap0", "--ip", f"{STACK_IP}/24",
                  "--host-ip", f"{KERNEL_IP}/24", "-q"),
            cwd=REPO, env=dict(os.environ, PYTHONPATH=str(REPO)), stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL, stderr=self.stderr)

    def wait_until_answering(self) -> None:
        for _ in range(20):
            assert self.process.poll() is None, self.output()
            if run(*in_ns(self.ns, "ping", "-n", "-q", "-c", "1", "-W", "1", STACK_IP)).returncode == 0:
                return
            time.sleep(0.5)
        pytest.fail(f"tapstack did not answer: {self.output()}")

    def output(self) -> str:
        self.stderr.seek(0)
        return self.stderr.read()

    def stop(self) -> str:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            self.process.wait(timeout=10)
        assert self.process.returncode == 0, self.output()
        return self.output()

    def kill(self) -> None:
        if self.process.poll() is None:
            self.process.kill()
            self.process.wait(timeout=10)
        self.stderr.close()


@pytest.fixture
def stack(netns: str) -> Iterator[Stack]:
    run(*in_ns(netns, "sysctl", "-q", "-w", "net.ipv6.conf.all.disable_ipv6=1",
               "net.ipv6.conf.default.disable_ipv6=1"))
    serving = Stack(netns)
    try:
        serving.wait_until_answering()
        yield serving
    finally:
        serving.kill()


def counters(summary: str) -> dict[str, int]:
    """The counters tapstack prints at exit, drops by reason included."""
    return {name: int(value) for name, value in re.findall(r"^\s+(\S+)\s+(\d+)$", summary, re.MULTILINE)}


def stack_mac(ns: str) -> str:
    entries = json.loads(run("ip", "-j", "-n", ns, "neigh", "show", STACK_IP).stdout)
    return next(entry["lladdr"] for entry in entries if entry.get("lladdr"))


def kernel_mac(ns: str) -> str:
    return json.loads(run("ip", "-j", "-n", ns, "link", "show", "tap0").stdout)[0]["address"]


@contextlib.contextmanager
def flood(ns: str, kinds: str, rate: int, seconds: float) -> Iterator[dict]:
    """The flood generator, running; on the way out, what it says it sent (in the yielded dict)."""
    sent: dict = {}
    generator = subprocess.Popen(
        in_ns(ns, sys.executable, str(GENERATOR), "--iface", "tap0", "--responder-ip", STACK_IP,
              "--responder-mac", stack_mac(ns), "--claimed-ip", KERNEL_IP, "--mix", kinds,
              "--rate", str(rate), "--seconds", str(seconds), "--count", str(int(rate * seconds))),
        stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        time.sleep(0.3)  # the flood is running before the first ping
        yield sent
    finally:
        out, err = generator.communicate(timeout=seconds + 10)
    assert generator.returncode == 0, err
    sent.update(json.loads(out))


@contextlib.contextmanager
def sniffing(ns: str, seconds: float) -> Iterator[dict]:
    seen: dict = {}
    sniffer = subprocess.Popen(in_ns(ns, sys.executable, "-c", SNIFFER, "tap0", str(seconds)),
                               stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    assert sniffer.stdout.readline().strip() == "ready", sniffer.stderr.read()
    try:
        yield seen
    finally:
        out, err = sniffer.communicate(timeout=seconds + 10)
    assert sniffer.returncode == 0, err
    seen.update(json.loads(out))
    seen["replies"] = {int(kind): count for kind, count in seen["replies"].items()}


def ping(ns: str, count: int, interval: float, *options: str) -> subprocess.CompletedProcess[str]:
    return run(*in_ns(ns, "ping", "-n", "-i", str(interval), "-c", str(count), "-W", "1", *options, STACK_IP),
               timeout=count * interval * 3 + 20)


def answered(output: str) -> tuple[int, int]:
    sent, received = re.search(r"(\d+) packets transmitted, (\d+) received", output).groups()
    return int(sent), int(received)


def test_forged_claims_to_the_kernels_address_do_not_redirect_the_replies(stack: Stack) -> None:
    ns = stack.ns
    real_mac = kernel_mac(ns)
    with sniffing(ns, 5.0) as seen, flood(ns, "claim", rate=1000, seconds=3.5) as sent:
        during = ping(ns, 150, 0.02)
    after = ping(ns, 5, 0.1)
    summary = stack.stop()

    assert sent["forged_claims"] >= 3000  # ARP requests for 192.0.2.2 from 192.0.2.1 at random MACs
    transmitted, received = answered(during.stdout)
    assert received >= 0.99 * transmitted, during.stdout
    assert answered(after.stdout) == (5, 5)
    # Where the echo replies went: to the kernel's real MAC (packet type 0, PACKET_HOST), none to
    # another MAC (3, PACKET_OTHERHOST): the entry for 192.0.2.1 never left real_mac.
    assert seen["replies"].get(0, 0) > 0 and seen["replies"].get(3, 0) == 0, (seen["replies"], real_mac)
    found = counters(summary)
    assert found["arp_mac_changes_refused"] >= 1000, summary
    # At most one check of the real MAC per check interval (1 s), whatever the flood claims; it
    # answers each, so the entry never moves.
    assert 1 <= found["arp_checks_sent"] <= sent["seconds"] + 3, summary
    assert found.get("arp_mac_changes_followed", 0) == 0, summary
    assert f"{KERNEL_IP} moved" not in summary


@pytest.mark.parametrize("arp_notify", ["0", "1"], ids=["arp_notify-0-default", "arp_notify-1"])
def test_a_real_mac_change_is_followed_within_a_few_seconds(stack: Stack, arp_notify: str) -> None:
    ns = stack.ns
    old_mac = kernel_mac(ns)
    assert run(*in_ns(ns, "sysctl", "-q", "-w", f"net.ipv4.conf.tap0.arp_notify={arp_notify}")).returncode == 0
    interval = 0.02
    with sniffing(ns, 7.0) as seen:
        pinging = subprocess.Popen(in_ns(ns, "ping", "-D", "-n", "-i", str(interval), "-c", "300", "-W", "1",
                                         STACK_IP),
                                   stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                   text=True)
        time.sleep(1.5)
        changed_at = time.time()
        assert run("ip", "-n", ns, "link", "set", "tap0", "address", MOVED_MAC).returncode == 0
        out, err = pinging.communicate(timeout=30)
    notify = run(*in_ns(ns, "sysctl", "-n", "net.ipv4.conf.tap0.arp_notify")).stdout.strip()
    summary = stack.stop()

    # Does Linux announce its new MAC (a gratuitous ARP)? Only with net.ipv4.conf.*.arp_notify=1
    # (0 by default): measured here, not assumed. Either way it asks for 192.0.2.2 again, from the
    # new MAC (on Linux 6.18, at its next ping): that request is what tapstack checks and follows.
    from_new_mac = [frame for frame in seen["arp"] if frame["source"] == MOVED_MAC]
    assert any(frame["target"] == STACK_IP for frame in from_new_mac), seen["arp"]
    gratuitous = [frame for frame in from_new_mac if frame["sender"] == frame["target"] == KERNEL_IP]
    assert bool(gratuitous) == (notify == "1"), (notify, from_new_mac)

    # The answers stop (tapstack's replies go to the old MAC, which the kernel no longer takes)
    # and resume once the check of the old MAC ends (1 s): the gap is reported.
    reply_times = [float(t) for t in re.findall(r"^\[(\d+\.\d+)\] \d+ bytes from", out, re.MULTILINE)]
    assert any(t < changed_at for t in reply_times) and any(t > changed_at + 1 for t in reply_times), out
    gap = max(later - earlier for earlier, later in zip(reply_times, reply_times[1:]))
    print(f"\nreal MAC change: the longest time without an answer {gap:.2f} s "
          f"(gratuitous ARP sent: {bool(gratuitous)}, arp_notify={notify}; ARP from the new MAC: {from_new_mac})")
    # About the check interval (1 s), whether or not the kernel announced its new MAC (RFC 826's
    # plain merge, before issue 13, followed at once: 0.03 s).
    assert gap <= 3.0, out
    transmitted, received = answered(out)
    assert received >= transmitted - int(3.0 / interval), out
    assert found_moved(summary, old_mac), summary
    assert counters(summary)["arp_mac_changes_followed"] == 1, summary


def found_moved(summary: str, old_mac: str) -> bool:
    return f"{KERNEL_IP} moved from {old_mac} to {MOVED_MAC}" in summary


def test_a_flood_of_new_senders_does_not_stop_the_answers(stack: Stack) -> None:
    ns = stack.ns
    with sniffing(ns, 5.0) as seen, flood(ns, "newsender", rate=1000, seconds=3.5) as sent:
        during = ping(ns, 150, 0.02)
    summary = stack.stop()

    # ARP requests for 192.0.2.2 from random documentation addresses (760 of them: every host
    # address of the three ranges but ours and the kernel's) at random MACs.
    assert sent["sent"] >= 3000
    transmitted, received = answered(during.stdout)
    assert received >= 0.99 * transmitted, during.stdout
    assert seen["replies"].get(3, 0) == 0, seen["replies"]
    found = counters(summary)
    # Senders not known yet are learnt and answered at most 100 a second (burst 100): of the 760
    # addresses (3,500 draws reach nearly all of them) at most about 500 were learnt in the flood's
    # few seconds; the others' requests were dropped under this reason.
    assert found["arp_new_sender_rate_limited"] >= 100, summary
    assert f"{KERNEL_IP} moved" not in summary
