"""TCP to closed ports against the real kernel (issue 16), in private namespaces: a kernel
``connect()`` is refused, ``nmap -sS`` lists every port closed, ``traceroute -T`` ends at the
host; over TAP and TUN, IPv4 and IPv6.

The harness is ``test_cli_device.py``'s (imported, not copied). Addresses: 192.0.2.2 and
2001:db8::2 are the stack, 192.0.2.1 and 2001:db8::1 the kernel side (``--host-ip``).
"""

from __future__ import annotations

import re
import sys

import pytest

from tests.root.test_cli_device import in_ns, start_stack  # noqa: F401 -- a fixture

pytestmark = pytest.mark.device

STACK_IP, KERNEL_IP, STACK_IP6, KERNEL_IP6 = "192.0.2.2", "192.0.2.1", "2001:db8::2", "2001:db8::1"
TAP = ["--tap", "tap0", "--ip", f"{STACK_IP}/24", "--ip", f"{STACK_IP6}/64", "--no-dad",
       "--host-ip", f"{KERNEL_IP}/24", "--host-ip", f"{KERNEL_IP6}/64"]
TUN = ["--tun", "tun0", "--ip", STACK_IP, "--ip", STACK_IP6, "--host-ip", KERNEL_IP, "--host-ip", KERNEL_IP6]
DEVICES = [pytest.param(TAP, id="tap"), pytest.param(TUN, id="tun")]

#: A kernel TCP socket connects to each port; each outcome printed. Retried briefly while the
#: kernel installs its routes (a moment after the addresses) and, over TAP, learns the MAC.
CONNECT = """
import socket, sys, time
family = socket.AF_INET6 if ":" in sys.argv[1] else socket.AF_INET
for port in sys.argv[2:]:
    for attempt in range(60):
        s = socket.socket(family, socket.SOCK_STREAM)
        s.settimeout(2)
        try:
            s.connect((sys.argv[1], int(port)))
            print(port, "connected")
            break
        except ConnectionRefusedError:
            print(port, "refused")
            break
        except OSError as error:
            if attempt == 59:
                print(port, type(error).__name__, error)
            time.sleep(0.05)
        finally:
            s.close()
"""


def counter(stderr: str, name: str) -> int:
    match = re.search(rf"^\s+{re.escape(name)}\s+(\d+)$", stderr, re.M)
    return int(match.group(1)) if match else 0


@pytest.mark.parametrize("device", DEVICES)
def test_a_kernel_connect_to_a_closed_port_is_refused(netns: str, start_stack, device: list[str]) -> None:
    """RFC 9293 3.10.7.1: the kernel's SYN gets <SEQ=0><ACK=ISN+1><CTL=RST,ACK>, which it reports
    as "connection refused" (ECONNREFUSED), over IPv4 and IPv6."""
    stack = start_stack(netns, *device)
    for address in (STACK_IP, STACK_IP6):
        result = in_ns(netns, sys.executable, "-c", CONNECT, address, "22", "80", check=False)
        assert result.stdout.split("\n")[:2] == ["22 refused", "80 refused"], result.stdout + result.stderr
    assert stack.stop() == 0
    assert counter(stack.stderr, "tcp_resets_sent") == 4, stack.stderr
    assert "tcp_port_closed" in stack.stderr


@pytest.mark.tools("nmap")
@pytest.mark.parametrize("device", DEVICES)
def test_nmap_syn_scan_lists_every_port_closed(netns: str, start_stack, device: list[str]) -> None:
    """``nmap -sS -p 1-1024``: a RST for each SYN, so each port is *closed* (not *filtered*, as
    it was with Protocol Unreachable)."""
    stack = start_stack(netns, *device)
    # -Pn: no ping first; -n: no DNS; --max-retries 0 and a short timeout keep it quick.
    result = in_ns(netns, "nmap", "-sS", "-Pn", "-n", "-p", "1-1024", "--max-retries", "0",
                   "--host-timeout", "20s", STACK_IP, check=False, timeout=30)
    assert result.returncode == 0, result.stdout + result.stderr
    # Nmap 7.93: "Not shown: 1024 closed tcp ports (reset)".
    assert re.search(r"Not shown: 1024 closed tcp ports \(reset\)", result.stdout), result.stdout
    assert "filtered" not in result.stdout, result.stdout
    assert stack.stop() == 0
    assert counter(stack.stderr, "tcp_resets_sent") >= 1024, stack.stderr


@pytest.mark.tools("traceroute")
@pytest.mark.parametrize("device", DEVICES)
def test_traceroute_tcp_ends_at_the_host(netns: str, start_stack, device: list[str]) -> None:
    """``traceroute -T -p 80``: its SYN (TTL 1 is enough on one link) gets our RST, so the trace
    reaches the host at the first hop (no "!P", Protocol Unreachable, as before)."""
    start_stack(netns, *device)
    result = in_ns(netns, "traceroute", "-n", "-T", "-p", "80", "-q", "1", "-w", "2", "-m", "3", STACK_IP,
                   check=False, timeout=30)
    assert result.returncode == 0, result.stdout + result.stderr
    hops = [line.split() for line in result.stdout.splitlines()[1:]]
    assert len(hops) == 1 and hops[0][:2] == ["1", STACK_IP] and "!P" not in result.stdout, result.stdout
