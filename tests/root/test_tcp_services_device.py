"""TCP and UDP services against the real kernel (issue 16, "Evidence"), each test in a private
namespace: ``tapstack run --tcp/--udp`` probed by nmap, curl and the kernel's own sockets, and
``tapstack connect`` talking to a kernel server.

The harness is ``test_cli_device.py``'s (imported, not copied). The kernel's side of each
connection is a small Python socket peer (``tests/root/tcp_peers.py``) run in the namespace as a
subprocess; it prints one JSON line. Rates and times are printed (``pytest -s`` shows them), never
asserted.

Addresses: the stack is 192.0.2.2 (and 2001:db8::2), the kernel 192.0.2.1 (2001:db8::1); the
SYN flood's forged sources are drawn from 198.51.100.0/24 and 203.0.113.0/24.
"""

from __future__ import annotations

import hashlib
import json
import re
import subprocess
import sys
import time

import pytest

from tests.root.test_cli_device import (KERNEL_IP, REPO, STACK_IP, in_ns, stack_env,  # noqa: F401
                                        start_stack)
from tests.root.tcp_peers import pattern

pytestmark = pytest.mark.device

STACK_IP6, KERNEL_IP6 = "2001:db8::2", "2001:db8::1"
#: A banner nmap knows: -sV names the product at once (one it does not know, such as
#: SSH-2.0-tapstack, only "softmatches" ssh and nmap tries more probes: ~7 s, with the kernel's TCP too).
BANNER = "SSH-2.0-OpenSSH_9.6"
#: Every service, on its well-known port, plus a range (no service named: discard).
SERVICES = ["--tcp", "7:echo", "--tcp", "9:discard", "--tcp", "13:daytime", "--tcp", "19:chargen",
            "--tcp", f"22:banner:{BANNER}", "--tcp", "80:http", "--tcp", "1000-1003"]
OPEN_PORTS = {7, 9, 13, 19, 22, 80, 1000, 1001, 1002, 1003}
DEFAULT_BODY = "Hello from tapstack\n"  # stack/l4/services.py HTTP_BODY
TIMEOUT_S = 30


TAP = ["--tap", "tap0", "--ip", f"{STACK_IP}/24", "--host-ip", f"{KERNEL_IP}/24"]
TUN = ["--tun", "tun0", "--ip", STACK_IP, "--host-ip", KERNEL_IP]


def host(start_stack, ns: str, *extra: str, device: list[str] = TAP):
    """The usual stack (192.0.2.2 on tap0, the kernel side 192.0.2.1) running every service."""
    return start_stack(ns, *device, *SERVICES, *extra)


def peer(ns: str, *args: object, timeout: float = TIMEOUT_S, stdin: bytes = b"") -> dict:
    """Run one of this module's peers (``main``) in ``ns`` and return its JSON line."""
    result = subprocess.run(peer_argv(ns, *args), cwd=REPO, env=stack_env(), input=stdin,
                            capture_output=True, timeout=timeout)
    assert result.returncode == 0, f"peer {args}: {result.returncode}\n{result.stderr.decode()}"
    return json.loads(result.stdout)


def peer_argv(ns: str, *args: object) -> list[str]:
    return ["ip", "netns", "exec", ns, sys.executable, "-m", "tests.root.tcp_peers",
            *map(str, args)]


def counter(stderr: str, name: str) -> int:
    match = re.search(rf"^\s+{re.escape(name)}\s+(\d+)$", stderr, re.M)
    return int(match.group(1)) if match else 0


# ---------------------------------------------------------------------- 1. scanners


def grepable_ports(output: str) -> tuple[dict[int, str], str]:
    """From ``nmap -oG -``: {port: state} of the ports listed, and the "Ignored State" text
    (e.g. ``closed (1014)``: the ports not listed, all in that state)."""
    ports = {int(port): state for port, state in re.findall(r"(\d+)/(\w+)/tcp/", output)}
    ignored = re.search(r"Ignored State: (\S+ \(\d+\))", output)
    return ports, ignored.group(1) if ignored else ""


@pytest.mark.tools("nmap")
@pytest.mark.parametrize("scan", ["-sS", "-sT"])
def test_nmap_lists_exactly_the_opened_ports_open_and_the_rest_closed(netns: str, start_stack, scan: str) -> None:
    """-sS: a SYN, then nmap's RST to our SYN-ACK (or our RST: closed); -sT: full connects, the
    kernel's TCP completing the handshake and closing (or refused)."""
    stack = host(start_stack, netns)
    result = in_ns(netns, "nmap", "-n", scan, "-p", "1-1024", "-T4", "-oG", "-", STACK_IP, timeout=60)
    ports, ignored = grepable_ports(result.stdout)
    assert ports == dict.fromkeys(OPEN_PORTS, "open"), result.stdout
    assert ignored == f"closed ({1024 - len(OPEN_PORTS)})", result.stdout
    assert stack.stop() == 0
    assert "Traceback" not in stack.stderr, stack.stderr


@pytest.mark.tools("nmap")
def test_nmap_version_scan_reads_the_banner(netns: str, start_stack) -> None:
    host(start_stack, netns)
    result = in_ns(netns, "nmap", "-n", "-sV", "-p", "22", "-oG", "-", STACK_IP, timeout=60)
    # nmap's NULL probe reads the banner and names the product.
    assert "22/open/tcp//ssh//OpenSSH 9.6 (protocol 2.0)/" in result.stdout, result.stdout


# ---------------------------------------------------------------------- 2. HTTP


def curl(ns: str, *args: str, timeout: float = 10) -> subprocess.CompletedProcess[str]:
    return in_ns(ns, "curl", "--silent", "--show-error", "--max-time", "5", *args, timeout=timeout, check=False)


@pytest.mark.tools("curl")
def test_curl_gets_the_body_over_ipv4_and_ipv6_and_reuses_the_connection(netns: str, start_stack) -> None:
    stack = start_stack(netns, "--tap", "tap0", "--ip", f"{STACK_IP}/24", "--ip", f"{STACK_IP6}/64",
                        "--host-ip", f"{KERNEL_IP}/24", "--host-ip", f"{KERNEL_IP6}/64", "--no-dad",
                        "--tcp", "80:http")
    first = curl(netns, f"http://{STACK_IP}/")
    assert (first.returncode, first.stdout) == (0, DEFAULT_BODY), first.stderr
    # Two URLs in one command: the second request goes over the first's connection.
    both = curl(netns, "-v", f"http://{STACK_IP}/", f"http://{STACK_IP}/again")
    assert (both.returncode, both.stdout) == (0, DEFAULT_BODY * 2), both.stderr
    assert re.search(r"Re-using existing", both.stderr), both.stderr
    assert both.stderr.count("Connected to") == 1, both.stderr
    six = curl(netns, "-g", f"http://[{STACK_IP6}]/")
    assert (six.returncode, six.stdout) == (0, DEFAULT_BODY), six.stderr
    assert stack.stop() == 0
    assert "Traceback" not in stack.stderr, stack.stderr


@pytest.mark.tools("curl")
def test_curl_gets_the_body_given_with_http_body(netns: str, start_stack) -> None:
    start_stack(netns, "--tap", "tap0", "--ip", f"{STACK_IP}/24", "--host-ip", f"{KERNEL_IP}/24",
                "--tcp", "8080", "--http-body", "tapstack test page")
    result = curl(netns, "-i", f"http://{STACK_IP}:8080/")  # 8080 runs http without being told
    assert result.returncode == 0, result.stderr
    head, _, body = result.stdout.partition("\n\n")  # (text mode: CR LF read as LF)
    assert head.startswith("HTTP/1.1 200 OK\n"), result.stdout
    assert body == "tapstack test page\n", result.stdout


# ---------------------------------------------------------------------- 3. and 4. echo, chargen


@pytest.mark.parametrize("device", [pytest.param(TAP, id="tap"), pytest.param(TUN, id="tun")])
def test_echo_returns_every_byte_of_a_megabyte(netns: str, start_stack, device: list[str]) -> None:
    stack = host(start_stack, netns, device=device)
    small = peer(netns, "echo", STACK_IP, 7, 100, 1)
    assert small["received"] == small["sent"] == 100 and small["equal"], small
    big = peer(netns, "echo", STACK_IP, 7, 1 << 20, 2)
    print(f"echo over {device[0][2:].upper()}: 1 MiB both ways in {big['seconds']:.2f} s")
    assert big["received"] == big["sent"] == 1 << 20 and big["equal"], big
    assert stack.stop() == 0
    assert "Traceback" not in stack.stderr, stack.stderr


def test_chargen_streams_rfc864_lines_at_a_measured_rate(netns: str, start_stack) -> None:
    host(start_stack, netns)
    result = peer(netns, "chargen", STACK_IP, 19)
    rate = result["bytes"] / result["seconds"]
    print(f"chargen: {result['bytes']} bytes in {result['seconds']:.2f} s, {rate / 1e6:.2f} MB/s")
    assert result["bytes"] > 0 and rate > 0, result
    assert result["pattern"], result  # every byte is where RFC 864's rotating lines put it


def test_daytime_and_discard(netns: str, start_stack) -> None:
    host(start_stack, netns)
    daytime = peer(netns, "read", STACK_IP, 13)
    # RFC 867 fixes no syntax; ours is its example's, in UTC: "Monday, November 30, 2026 12:00:00-UTC"
    assert re.fullmatch(r"\w+day, \w+ \d\d, \d{4} \d\d:\d\d:\d\d-UTC\r\n", daytime["text"]), daytime
    discard = peer(netns, "echo", STACK_IP, 9, 50_000, 3)
    assert discard["sent"] == 50_000 and discard["received"] == 0, discard


# ---------------------------------------------------------------------- 5. tapstack connect


def test_tapstack_connect_to_a_kernel_server_moves_data_both_ways(netns: str) -> None:
    to_server, to_client = pattern(4, 300_000), pattern(5, 200_000)
    server = subprocess.Popen(peer_argv(netns, "serve", 5000, len(to_client), 5), cwd=REPO, env=stack_env(),
                              stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        assert server.stdout.readline().strip() == b"listening"
        client = subprocess.run(["ip", "netns", "exec", netns, sys.executable, "-m", "stack", "connect",
                                 "--tap", "tap0", "--ip", f"{STACK_IP}/24", "--host-ip", f"{KERNEL_IP}/24",
                                 "-q", KERNEL_IP, "5000"],
                                cwd=REPO, env=stack_env(), input=to_server, capture_output=True, timeout=TIMEOUT_S)
        out, err = server.communicate(timeout=TIMEOUT_S)
    finally:
        if server.poll() is None:
            server.kill()
            server.wait(timeout=10)
    assert client.returncode == 0, client.stderr.decode()
    assert client.stdout == to_client, (len(client.stdout), client.stderr.decode())
    received = json.loads(out)
    assert received == {"received": len(to_server), "sha256": hashlib.sha256(to_server).hexdigest()}, err


def test_tapstack_connect_to_a_closed_kernel_port_exits_1_with_one_line(netns: str) -> None:
    client = subprocess.run(["ip", "netns", "exec", netns, sys.executable, "-m", "stack", "connect",
                             "--tap", "tap0", "--ip", f"{STACK_IP}/24", "--host-ip", f"{KERNEL_IP}/24",
                             "-q", "-w", "5", KERNEL_IP, "5001"],
                            cwd=REPO, env=stack_env(), stdin=subprocess.DEVNULL, capture_output=True,
                            text=True, timeout=TIMEOUT_S)
    assert client.returncode == 1, client.stderr
    assert client.stdout == ""
    # -q: no logs; the counters (as for run), then the one line that says why.
    lines = client.stderr.strip().splitlines()
    assert lines[-1] == f"tapstack: connect to {KERNEL_IP} port 5001: connection refused", client.stderr
    assert [line for line in lines if line.startswith("tapstack:")] == [lines[-1]], client.stderr
    assert "Traceback" not in client.stderr


# ---------------------------------------------------------------------- 6. SYN flood


@pytest.mark.tools("curl")
def test_curl_every_100ms_succeeds_during_a_syn_flood(netns: str, start_stack) -> None:
    # With a gateway our SYN-ACKs to the forged sources go to the kernel, which drops them (it
    # does not forward): the half-open table fills as it would under a real flood.
    stack = host(start_stack, netns, "--gateway", KERNEL_IP)
    flood = subprocess.Popen(peer_argv(netns, "flood", STACK_IP, 80, 3000, 3.0), cwd=REPO, env=stack_env(),
                             stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        outcomes = []
        deadline = time.monotonic() + 3.0
        while time.monotonic() < deadline:
            started = time.monotonic()
            result = curl(netns, "--max-time", "2", f"http://{STACK_IP}/")
            outcomes.append(result.returncode == 0 and result.stdout == DEFAULT_BODY)
            time.sleep(max(0.0, 0.1 - (time.monotonic() - started)))
        out, err = flood.communicate(timeout=TIMEOUT_S)
    finally:
        if flood.poll() is None:
            flood.kill()
            flood.wait(timeout=10)
    sent = json.loads(out)["sent"]
    assert stack.stop() == 0
    evicted = counter(stack.stderr, "tcp_half_open_evicted")
    print(f"SYN flood: {sent} SYNs in 3 s; {sum(outcomes)} of {len(outcomes)} curls succeeded; "
          f"{evicted} half-open connections evicted")
    assert sent == 3000, err.decode()
    assert evicted > 0, stack.stderr  # the flood reached the stack and filled its half-open table
    assert len(outcomes) >= 10 and sum(outcomes) >= 0.9 * len(outcomes), outcomes
    assert "Traceback" not in stack.stderr, stack.stderr


# ---------------------------------------------------------------------- 7. a bad link


def test_a_transfer_through_a_lossy_slow_link_is_byte_exact(netns: str, start_stack) -> None:
    # Seeded: the same frames are lost each run. Each loss fast retransmit does not repair costs
    # a retransmission timeout of at least 1 s (RFC 6298 2.4; Linux: 200 ms): 2-9 s here.
    host(start_stack, netns, "--drop", "0.05", "--delay-ms", "20", "--seed", "1")
    result = peer(netns, "echo", STACK_IP, 7, 200_000, 6, timeout=60)
    print(f"echo over --drop 0.05 --delay-ms 20: 200 KB both ways in {result['seconds']:.2f} s")
    assert result["received"] == result["sent"] == 200_000 and result["equal"], result


# ---------------------------------------------------------------------- 8. UDP


def test_udp_echo_daytime_and_port_unreachable(netns: str, start_stack) -> None:
    start_stack(netns, "--tap", "tap0", "--ip", f"{STACK_IP}/24", "--host-ip", f"{KERNEL_IP}/24",
                "--udp", "7:echo", "--udp", "13:daytime")
    assert peer(netns, "udp", STACK_IP, 7, "hello, echo") == {"reply": "hello, echo"}
    daytime = peer(netns, "udp", STACK_IP, 13, "")
    assert re.fullmatch(r"\w+day, \w+ \d\d, \d{4} \d\d:\d\d:\d\d-UTC\r\n", daytime.get("reply", "")), daytime
    # RFC 1122 4.1.3.1: a closed port answers Port Unreachable: ECONNREFUSED on a connected socket.
    assert peer(netns, "udp", STACK_IP, 9, "anyone?") == {"refused": True}
