"""IPv6 against the real kernel (issue 14), in private namespaces: ``tapstack run`` with IPv6
addresses, pinged by the kernel's ``ping -6``.

The harness is ``test_cli_device.py``'s (imported, not copied). Addresses: RFC 3849's
documentation prefix only, on the test's own devices: the stack is 2001:db8::2, the kernel side
2001:db8::1 (``--host-ip`` turns the kernel's IPv6 on for that device only).
"""

from __future__ import annotations

import re
import sys

import pytest

from tests.root.test_cli_device import in_ns, kernel_ping, replies, start_stack  # noqa: F401 -- a fixture

pytestmark = [pytest.mark.device, pytest.mark.tools("ping")]

STACK_IP6, KERNEL_IP6 = "2001:db8::2", "2001:db8::1"
PI_MODES = [pytest.param([], id="no-pi"), pytest.param(["--pi"], id="pi")]


def counter(stderr: str, name: str) -> int:
    match = re.search(rf"^\s+{re.escape(name)}\s+(\d+)$", stderr, re.M)
    return int(match.group(1)) if match else 0


@pytest.mark.parametrize("pi", PI_MODES)
def test_tun_ipv6_and_ipv4_are_both_answered_from_the_first_ping(netns: str, start_stack, pi: list[str]) -> None:
    """``tapstack run --tun tun0 --ip 2001:db8::2 --host-ip 2001:db8::1`` (and IPv4 beside it):
    bare IPv6 packets point to point, no Neighbor Discovery."""
    stack = start_stack(netns, "--tun", "tun0", "--ip", STACK_IP6, "--ip", "192.0.2.2",
                        "--host-ip", KERNEL_IP6, "--host-ip", "192.0.2.1", *pi)
    six = kernel_ping(netns, "-6", "-c", "5", "-i", "0.1", "-w", "5", target=STACK_IP6)
    assert len(replies(six.stdout)) == 5, six.stdout + six.stderr
    four = kernel_ping(netns, "-c", "2", "-i", "0.1", "-w", "5", target="192.0.2.2")
    assert len(replies(four.stdout)) == 2, four.stdout
    assert stack.stop() == 0
    assert counter(stack.stderr, "icmpv6_echo_replies_sent") == 5, stack.stderr
    assert counter(stack.stderr, "icmp_echo_replies_sent") == 2, stack.stderr


def test_tun_udp_to_a_closed_port_gets_port_unreachable(netns: str, start_stack) -> None:
    """What traceroute -6 relies on: Destination Unreachable code 4 (RFC 4443 3.1), which the
    kernel turns into ECONNREFUSED for a connected UDP socket."""
    start_stack(netns, "--tun", "tun0", "--ip", STACK_IP6, "--host-ip", KERNEL_IP6)
    # (The kernel installs the route to the peer a moment after the address: retry briefly.)
    probe = ("import socket, time\n"
             "for attempt in range(40):\n"
             "    s = socket.socket(socket.AF_INET6, socket.SOCK_DGRAM)\n"
             "    s.settimeout(3)\n"
             "    try:\n"
             f"        s.connect(('{STACK_IP6}', 33434))\n"
             "        break\n"
             "    except OSError:\n"
             "        time.sleep(0.05)\n"
             "s.send(b'probe')\n"
             "try:\n    s.recv(100)\nexcept ConnectionRefusedError:\n    print('refused')\n"
             "except socket.timeout:\n    print('timeout')\n")
    result = in_ns(netns, sys.executable, "-c", probe, check=False)
    assert result.stdout.strip() == "refused", result.stdout + result.stderr
