"""The ``tapstack`` command in TUN mode, end to end, against the real kernel, in private namespaces.

The same harness as ``test_cli_device.py`` (imported from it, not copied): ``ip netns exec NS
python -m stack run|ping --tun tun0 ...`` as a subprocess in a namespace of its own, poked with
the kernel's ``ping`` and ``ip``, and always stopped (SIGTERM, then SIGKILL) in a fixture's
``finally``. Most tests run twice: with the device opened with IFF_NO_PI ("no-pi") and without
it ("pi"), where every packet carries the 4-byte packet-information header.

Addresses: the stack is 192.0.2.2 (a bare address, a /32), the kernel on the other end of tun0 is
192.0.2.1, point to point (``--host-ip`` configures it). The one IPv6 exchange uses the IPv6
documentation prefix (2001:db8::/32), only on tun0, inside the test's own namespace.

The TUN/TAP option mix-ups that are refused before any device is opened are in ``test_cli.py``.
"""

from __future__ import annotations

import re
import shutil
from collections.abc import Iterator
from pathlib import Path

import dpkt
import pytest

from tests.root.test_cli_device import (
    KERNEL_IP,
    STACK_IP,
    Stack,
    Stacks,
    assert_usage_error,
    in_ns,
    kernel_ping,
    replies,
    sh,
    start_stack,  # noqa: F401 -- a fixture: imported by name so that pytest finds it here
    tapstack,
)

pytestmark = pytest.mark.device

TUN_ARGS = ["--tun", "tun0", "--ip", STACK_IP]
PI_MODES = [pytest.param([], id="no-pi"), pytest.param(["--pi"], id="pi")]
LINKTYPE_RAW = 101  # a pcap of bare IP packets: what a TUN device carries

# The kernel's IPv6 end of tun0 and an address routed through it (nobody answers there).
KERNEL_IP6 = "2001:db8::1"
ROUTED_IP6 = "2001:db8::2"
IPV6_PING_DATA = 200  # an unusual size, so the stack's debug line names this very packet


@pytest.fixture(params=PI_MODES)
def pi(request: pytest.FixtureRequest) -> list[str]:
    """``[]`` or ``["--pi"]``: the test runs once per way of opening the TUN device."""
    return request.param


def tun_stack(start_stack, ns: str, pi: list[str], *extra: str) -> Stack:
    """192.0.2.2 on tun0; the stack configures the kernel side as 192.0.2.1 peer 192.0.2.2."""
    return start_stack(ns, *TUN_ARGS, "--host-ip", KERNEL_IP, *pi, *extra)


def counter(stderr: str, name: str) -> int:
    """One counter from the summary ``run`` prints at exit (0 when it is not listed)."""
    match = re.search(rf"^\s+{re.escape(name)}\s+(\d+)$", stderr, re.M)
    return int(match.group(1)) if match else 0


def require_tshark() -> str:
    """tshark's path (the test is marked ``tools("tshark")``: skipped, or failed in CI, without it)."""
    return shutil.which("tshark")


# ---------------------------------------------------------------------- the shared stack


@pytest.fixture(scope="module", params=PI_MODES)
def shared_tun(request: pytest.FixtureRequest, module_netns: str,
               tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """One running TUN stack per mode for the checks that do not change it; yields its namespace.

    pytest runs all the tests of one mode before it tears this down and starts the other, so the
    two stacks never hold tun0 at the same time.
    """
    stacks = Stacks(tmp_path_factory.mktemp("shared-tun-stack"))
    try:
        stack = stacks(module_netns, *TUN_ARGS, "--host-ip", KERNEL_IP, *request.param)
        yield module_netns
        assert stack.stop() == 0, stack.stderr
    finally:
        stacks.kill_all()


# ---------------------------------------------------------------------- the kernel pings the stack


@pytest.mark.tools("ping")
def test_no_loss_from_the_very_first_ping(netns: str, start_stack, pi: list[str]) -> None:
    """Nothing is sent to the stack before this ping; the first request must be answered too."""
    tun_stack(start_stack, netns, pi)
    result = kernel_ping(netns, "-c", "100", "-i", "0.01", "-w", "20")
    assert "100 packets transmitted, 100 received, 0% packet loss" in result.stdout, result.stdout
    assert re.search(r"^\d+ bytes from 192\.0\.2\.2: icmp_seq=1 ", result.stdout, re.M), result.stdout
    assert result.returncode == 0


@pytest.mark.tools("ping")
def test_full_size_pings_are_answered_full_size(shared_tun: str) -> None:
    # 1472 data + 8 ICMP + 20 IPv4 = 1500, the MTU of tun0; -M do forbids fragmentation.
    result = kernel_ping(shared_tun, "-s", "1472", "-M", "do", "-c", "5", "-i", "0.05", "-w", "10")
    lines = replies(result.stdout)
    assert len(lines) == 5, result.stdout + result.stderr
    assert all(line.startswith(f"1480 bytes from {STACK_IP}: ") for line in lines), lines
    assert result.returncode == 0


# ---------------------------------------------------------------------- the stack pings the kernel


def test_stack_ping_gets_three_replies_from_the_kernel(netns: str, pi: list[str]) -> None:
    result = tapstack(netns, "ping", *TUN_ARGS, "--host-ip", KERNEL_IP, *pi,
                      "-c", "3", "-i", "0.2", KERNEL_IP)
    assert result.returncode == 0, result.stdout + result.stderr
    lines = replies(result.stdout)
    assert len(lines) == 3, result.stdout
    assert all(f"bytes from {KERNEL_IP}: icmp_seq=" in line for line in lines), lines
    assert "Traceback" not in result.stderr


# ---------------------------------------------------------------------- captures


@pytest.mark.tools("ping", "tshark")
def test_pcap_capture_is_raw_ip_that_tshark_reads(netns: str, start_stack, pi: list[str],
                                                   tmp_path: Path) -> None:
    """--pcap on a TUN device writes bare IP packets (LINKTYPE_RAW), also with --pi: the
    packet-information header is left out of the capture."""
    tshark = require_tshark()
    capture = tmp_path / "run.pcap"
    stack = tun_stack(start_stack, netns, pi, "--pcap", str(capture))
    assert kernel_ping(netns, "-c", "3", "-i", "0.05", "-w", "5").returncode == 0
    assert stack.stop() == 0, stack.stderr
    with capture.open("rb") as file:
        assert dpkt.pcap.Reader(file).datalink() == LINKTYPE_RAW
    fields = sh(tshark, "-r", str(capture), "-T", "fields", "-e", "frame.protocols",
                "-e", "_ws.expert.message").stdout.splitlines()
    protocols = [line.split("\t")[0] for line in fields]
    # IPv6 is off on tun0 (--host-ip), so nothing but three requests and three replies.
    assert len(protocols) == 6, fields
    assert all(p.startswith("raw:ip:icmp") for p in protocols), fields
    assert not [line for line in fields if "alformed" in line], fields
    # Our echo replies, with both checksums verified good by tshark (status 1 = good).
    good = sh(tshark, "-r", str(capture), "-o", "ip.check_checksum:TRUE", "-Y",
              "icmp.type == 0 && icmp.checksum.status == 1 && ip.checksum.status == 1"
              ).stdout.splitlines()
    assert len(good) == 3, good


# ---------------------------------------------------------------------- counters at exit


@pytest.mark.tools("ping")
def test_counters_show_the_replies_and_the_ipv6_packet_dropped(netns: str, start_stack,
                                                                pi: list[str]) -> None:
    """Echo replies are counted; an IPv6 packet from the kernel is dropped under its reason.

    With --pi the stack reads the protocol (0x86dd) from the packet-information header; without,
    the IP version nibble. -v logs every drop with the packet's length, which names this one.
    """
    stack = tun_stack(start_stack, netns, pi, "-v")
    assert kernel_ping(netns, "-c", "3", "-i", "0.05", "-w", "5").returncode == 0
    # --host-ip turned IPv6 off on tun0: turn it back on and route an IPv6 address through it.
    in_ns(netns, "sysctl", "-q", "-w", "net.ipv6.conf.tun0.disable_ipv6=0")
    in_ns(netns, "ip", "-6", "address", "add", KERNEL_IP6, "peer", ROUTED_IP6, "dev", "tun0", "nodad")
    result = in_ns(netns, "ping", "-6", "-n", "-s", str(IPV6_PING_DATA), "-c", "1", "-w", "1",
                   ROUTED_IP6, check=False)
    assert "1 packets transmitted, 0 received" in result.stdout, result.stdout + result.stderr
    assert stack.stop() == 0, stack.stderr
    stderr = stack.stderr
    assert "Traceback" not in stderr, stderr
    assert "tapstack counters" in stderr, stderr
    assert counter(stderr, "icmp_echo_replies_sent") == 3, stderr
    # The echo request plus whatever the kernel's IPv6 sent on its own (a router solicitation).
    assert counter(stderr, "tun_ipv6_not_supported") >= 1, stderr
    length = 40 + 8 + IPV6_PING_DATA + (4 if pi else 0)  # IPv6 + ICMPv6 headers, data, [tun_pi]
    assert f"drop tun_ipv6_not_supported: {length}" in stderr, stderr
    assert counter(stderr, "tun_not_ipv4") == 0, stderr
    # -v is tapstack's own debug log, not the netlink library's message dumps.
    assert "pyroute2" not in stderr and "nlmsg" not in stderr, stderr[:2000]


# ---------------------------------------------------------------------- user errors with a device


def test_tun_naming_a_tap_device_is_a_usage_error(netns: str, pi: list[str]) -> None:
    in_ns(netns, "ip", "tuntap", "add", "dev", "tap0", "mode", "tap")
    result = tapstack(netns, "run", "--tun", "tap0", "--ip", STACK_IP, *pi, timeout=10)
    assert_usage_error(result, "tap0", "TAP")
    assert in_ns(netns, "ip", "link", "show", "dev", "tap0", check=False).returncode == 0
