"""``tapstack fuzz --ipv6`` (and over TUN) against the real Linux kernel, in a private network
namespace the test creates: a short clean run, the kernel answering ICMPv6 echo throughout."""

from __future__ import annotations

import re

import pytest

from tests.root.test_cli_device import in_ns, tapstack

pytestmark = pytest.mark.device

#: Short runs (a few seconds each): the generator's IPv6 kinds all come up in this many frames.
EXAMPLES = 150


@pytest.mark.parametrize("device, ours, kernel", [
    (["--tap", "tap0"], "2001:db8::2/64", "2001:db8::1/64"),
    (["--tun", "tun0"], "2001:db8::2", "2001:db8::1"),
], ids=["tap", "tun"])
def test_fuzzing_the_kernel_over_ipv6_finds_it_answering_throughout(netns: str, device, ours, kernel) -> None:
    result = tapstack(netns, "fuzz", *device, "--ipv6", "--ip", ours, "--host-ip", kernel,
                      "--target", "2001:db8::1", "--examples", str(EXAMPLES), "--batch", "50", "--seed", "6",
                      "--max-time", "60")
    assert result.returncode == 0, result.stdout + result.stderr
    assert f"{EXAMPLES} frames in 3 batches: the target answered ping after every batch" in result.stdout
    assert "Traceback" not in result.stderr
    # The kernel did receive them (its namespace's counters outlive the device).
    counters = dict(line.split() for line in in_ns(netns, "cat", "/proc/net/snmp6").stdout.splitlines())
    assert int(counters["Ip6InReceives"]) >= EXAMPLES // 2, counters["Ip6InReceives"]
    assert int(counters["Icmp6InEchos"]) >= 3  # a liveness ping at least after each batch


def test_fuzzing_the_kernel_over_ipv4_on_a_tun_device(netns: str) -> None:
    result = tapstack(netns, "fuzz", "--tun", "tun0", "--ip", "192.0.2.2", "--host-ip", "192.0.2.1",
                      "--target", "192.0.2.1", "--examples", "100", "--batch", "50", "--seed", "2",
                      "--max-time", "60")
    assert result.returncode == 0, result.stdout + result.stderr
    assert re.search(r"^100 frames in 2 batches: the target answered ping after every batch$", result.stdout, re.M)


def test_fuzz_ipv6_refuses_a_target_that_does_not_answer(netns: str) -> None:
    result = tapstack(netns, "fuzz", "--tap", "tap0", "--ipv6", "--ip", "2001:db8::2/64",
                      "--host-ip", "2001:db8::1/64", "--target", "2001:db8::9", "--examples", "10")
    assert result.returncode == 1
    assert "2001:db8::9 does not answer ping" in result.stderr
