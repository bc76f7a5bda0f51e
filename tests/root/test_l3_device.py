"""Fragments and ICMP errors against the real kernel, over TAP, in a private namespace.

The kernel's ``ping -s 8000`` and ``-s 65507`` send fragmented echo requests that tapstack
reassembles, and tapstack's replies go back as fragments the kernel reassembles. A kernel UDP
socket sending to a closed port gets Port Unreachable, which it reports as "connection refused".
"""

from __future__ import annotations

import pytest

from tests.root.test_cli_device import KERNEL_IP, STACK_IP, host_stack, in_ns, kernel_ping, replies, start_stack  # noqa: F401

pytestmark = pytest.mark.device

UDP_PROBE = f"""
import socket, sys
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.settimeout(3)
s.connect(("{STACK_IP}", 9))
s.send(b"anyone there?")
try:
    s.recv(100)
except ConnectionRefusedError:
    print("refused")
except socket.timeout:
    print("timeout")
"""


@pytest.mark.tools("ping")
@pytest.mark.parametrize("size", [8000, 65507])
def test_kernel_pings_larger_than_the_mtu_are_answered(netns: str, start_stack, size: int) -> None:
    stack = host_stack(start_stack, netns)
    result = kernel_ping(netns, "-s", str(size), "-c", "3", "-i", "0.2", "-w", "10")
    assert result.returncode == 0, result.stdout + stack.stderr
    lines = replies(result.stdout)
    assert len(lines) == 3 and all(line.startswith(f"{size + 8} bytes from {STACK_IP}") for line in lines)
    assert stack.stop() == 0
    assert "ipv4_reassembled" in stack.stderr and "ipv4_fragments_sent" in stack.stderr


def test_a_kernel_udp_socket_hears_port_unreachable_as_connection_refused(netns: str, start_stack) -> None:
    stack = host_stack(start_stack, netns)
    result = in_ns(netns, "python3", "-c", UDP_PROBE)
    assert result.stdout.strip() == "refused", result.stdout + result.stderr + stack.stderr
    assert stack.stop() == 0
    assert "udp_port_unreachable" in stack.stderr and "icmp_errors_sent" in stack.stderr


def test_the_stacks_own_ping_larger_than_the_mtu_goes_out_in_fragments(netns: str) -> None:
    from tests.root.test_cli_device import HOST_ARGS, tapstack

    result = tapstack(netns, "ping", *HOST_ARGS, "--host-ip", f"{KERNEL_IP}/24",
                      "-s", "4000", "-c", "2", "-i", "0.2", KERNEL_IP)
    assert result.returncode == 0, result.stdout + result.stderr
    assert len([line for line in result.stdout.splitlines()
                if line.startswith(f"4008 bytes from {KERNEL_IP}")]) == 2, result.stdout
    assert "ipv4_fragments_sent" in result.stderr and "ipv4_reassembled" in result.stderr
