"""IPv6 against the real kernel (issue 14), in private namespaces: ``tapstack run`` with IPv6
addresses, pinged by the kernel's ``ping -6``.

The harness is ``test_cli_device.py``'s (imported, not copied). Addresses: RFC 3849's
documentation prefix only, on the test's own devices: the stack is 2001:db8::2, the kernel side
2001:db8::1 (``--host-ip`` turns the kernel's IPv6 on for that device only).
"""

from __future__ import annotations

import re
import sys
import time

import pytest

from tests.root.test_cli_device import in_ns, kernel_ping, replies, start_stack, tapstack  # noqa: F401 -- a fixture

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


# ---------------------------------------------------------------------- TAP: Neighbor Discovery

TAP_ARGS = ["--tap", "tap0", "--ip", "192.0.2.2/24", "--ip", f"{STACK_IP6}/64",
            "--host-ip", "192.0.2.1/24", "--host-ip", f"{KERNEL_IP6}/64"]
#: The host's MAC: 02:00 + 192.0.2.2 (the IPv6 address shares the IPv4 host's MAC), and its
#: link-local address by modified EUI-64 (RFC 4291 2.5.1, appendix A).
STACK_MAC, STACK_LINK_LOCAL = "02:00:c0:00:02:02", "fe80::c0ff:fe00:202"


@pytest.mark.parametrize("dad", [pytest.param([], id="dad"), pytest.param(["--no-dad"], id="no-dad")])
def test_tap_global_and_link_local_answer_from_the_first_ping(netns: str, start_stack, dad: list[str]) -> None:
    stack = start_stack(netns, *TAP_ARGS, *dad)
    # With DAD the first requests wait in the kernel (our address is tentative for about a
    # second, RFC 4862 5.4) and are answered then: none is lost. (ping -w sends on until -c
    # replies came, so it may send more than -c meanwhile.)
    six = kernel_ping(netns, "-6", "-c", "3", "-i", "0.1", "-w", "10", target=STACK_IP6)
    answered = {int(n) for n in re.findall(r"icmp_seq=(\d+)", six.stdout)}
    assert {1, 2, 3} <= answered, six.stdout + stack.stderr
    local = kernel_ping(netns, "-6", "-c", "3", "-i", "0.1", "-w", "10", target=f"{STACK_LINK_LOCAL}%tap0")
    assert {1, 2, 3} <= {int(n) for n in re.findall(r"icmp_seq=(\d+)", local.stdout)}, local.stdout
    # The kernel resolved us with Neighbor Discovery: our MAC in its neighbour table.
    neighbours = in_ns(netns, "ip", "-6", "neigh", "show", "dev", "tap0").stdout
    assert f"{STACK_IP6} lladdr {STACK_MAC}" in neighbours, neighbours
    assert stack.stop() == 0
    assert counter(stack.stderr, "nd_dad_passed") == (2 if not dad else 0), stack.stderr


def test_tap_fragments_both_ways(netns: str, start_stack) -> None:
    """``ping -6 -s 4000``: the request comes in three fragments (reassembled, RFC 8200 4.5) and
    the reply leaves in three (our fragmentation above the 1500-byte MTU)."""
    stack = start_stack(netns, *TAP_ARGS, "--no-dad")
    result = kernel_ping(netns, "-6", "-s", "4000", "-c", "2", "-i", "0.2", "-w", "10", target=STACK_IP6)
    assert len(replies(result.stdout)) == 2, result.stdout + result.stderr
    assert all("4008 bytes from" in line for line in replies(result.stdout)), result.stdout
    assert stack.stop() == 0
    assert counter(stack.stderr, "ipv6_reassembled") == 2 and counter(stack.stderr, "ipv6_fragments_sent") >= 6


def test_tap_duplicate_address_detection_gives_up_an_address_the_kernel_holds(netns: str, start_stack) -> None:
    """RFC 4862 5.4.4: the kernel already has 2001:db8::7 on tap0; our probe for it is answered
    (a Neighbor Advertisement), so ours is a duplicate: given up with a warning."""
    in_ns(netns, "ip", "tuntap", "add", "dev", "tap0", "mode", "tap")
    in_ns(netns, "sysctl", "-q", "-w", "net.ipv6.conf.tap0.disable_ipv6=0")
    in_ns(netns, "ip", "link", "set", "tap0", "up")
    in_ns(netns, "ip", "-6", "address", "add", "2001:db8::7/64", "dev", "tap0", "nodad")
    stack = start_stack(netns, "--tap", "tap0", "--ip", "2001:db8::7/64")
    for _ in range(60):  # DAD: a probe after at most 1 s, then RetransTimer (1 s)
        if "duplicate" in stack.stderr:
            break
        time.sleep(0.1)
    assert stack.stop() == 0
    assert counter(stack.stderr, "nd_duplicate_addresses") == 1, stack.stderr
    assert "2001:db8::7" in stack.stderr and "duplicate" in stack.stderr


def test_tap_a_lan_of_ipv6_hosts_each_with_its_own_mac(netns: str, start_stack) -> None:
    """``--ip 2001:db8::10-2001:db8::13/64``: four hosts, each at 02:00 + its low 4 bytes, each
    with its own link-local address."""
    start_stack(netns, "--tap", "tap0", "--ip", "2001:db8::10-2001:db8::13/64", "--host-ip", f"{KERNEL_IP6}/64",
                "--no-dad")
    for last in ("10", "13"):
        result = kernel_ping(netns, "-6", "-c", "1", "-w", "5", target=f"2001:db8::{last}")
        assert len(replies(result.stdout)) == 1, result.stdout + result.stderr
        local = kernel_ping(netns, "-6", "-c", "1", "-w", "5", target=f"fe80::ff:fe00:{last}%tap0")
        assert len(replies(local.stdout)) == 1, local.stdout + local.stderr
    neighbours = in_ns(netns, "ip", "-6", "neigh", "show", "dev", "tap0").stdout
    assert "2001:db8::10 lladdr 02:00:00:00:00:10" in neighbours, neighbours
    assert "2001:db8::13 lladdr 02:00:00:00:00:13" in neighbours, neighbours


@pytest.mark.tools("tracepath")
def test_tap_tracepath_6_ends_at_us(netns: str, start_stack) -> None:
    """tracepath -6: its UDP probe to a closed port, with hop limit 1, reaches us and is answered
    with Port Unreachable (RFC 4443 3.1): "reached" at hop 1, the path MTU 1500."""
    start_stack(netns, "--tap", "tap0", "--ip", f"{STACK_IP6}/64", "--host-ip", f"{KERNEL_IP6}/64", "--no-dad")
    result = in_ns(netns, "tracepath", "-6", "-n", STACK_IP6, check=False, timeout=30)
    assert re.search(rf"^\s*1:\s+{re.escape(STACK_IP6)}\s+\S+ms reached$", result.stdout, re.M), result.stdout
    assert "pmtu 1500 hops 1 back 1" in result.stdout, result.stdout


def test_tapstack_ping_an_ipv6_target_from_the_virtual_host(netns: str) -> None:
    """``tapstack ping ... 2001:db8::1``: the target's family decides; the virtual host pings the
    kernel over TUN and prints ping's lines."""
    from tests.root.test_cli_device import tapstack
    result = tapstack(netns, "ping", "--tun", "tun0", "--ip", STACK_IP6, "--host-ip", KERNEL_IP6,
                      "-c", "3", "-i", "0.2", KERNEL_IP6)
    assert result.returncode == 0, result.stdout + result.stderr
    assert len(re.findall(rf"bytes from {re.escape(KERNEL_IP6)}: icmp_seq=\d", result.stdout)) == 3, result.stdout
    assert "3 packets transmitted, 3 received, 0% packet loss" in result.stdout


def test_rfc8200_5_on_a_tap_of_mtu_1280_our_packets_fit_it(netns: str, start_stack) -> None:
    """A TAP made at MTU 1280 before tapstack attaches: ``ping -6 -s 1400`` (1448 octets) comes
    in two fragments and each reply leaves in two too (at 1500 it would leave whole)."""
    in_ns(netns, "ip", "tuntap", "add", "tap0", "mode", "tap")
    in_ns(netns, "ip", "link", "set", "tap0", "mtu", "1280")
    stack = start_stack(netns, *TAP_ARGS, "--no-dad")
    result = kernel_ping(netns, "-6", "-s", "1400", "-c", "2", "-i", "0.2", "-w", "10", target=STACK_IP6)
    assert len(replies(result.stdout)) == 2, result.stdout + result.stderr
    assert stack.stop() == 0
    assert counter(stack.stderr, "ipv6_reassembled") == 2, stack.stderr
    assert counter(stack.stderr, "ipv6_fragments_sent") == 4, stack.stderr


def test_rfc8200_5_a_tap_below_1280_with_an_ipv6_address_is_one_error_line(netns: str) -> None:
    in_ns(netns, "ip", "tuntap", "add", "tap0", "mode", "tap")
    in_ns(netns, "ip", "link", "set", "tap0", "mtu", "1000")
    result = tapstack(netns, "run", "--tap", "tap0", "--ip", f"{STACK_IP6}/64")
    assert result.returncode == 2
    assert result.stderr == ("tapstack: error: tap0 has MTU 1000, below IPv6's minimum of 1280 (RFC 8200 5): "
                             "raise it (ip link set tap0 mtu 1280) or give no IPv6 address\n"), result.stderr
