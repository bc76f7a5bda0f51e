"""Fault injection seen from the real kernel: its own ping reports the loss and the delay.

A stack runs in a private network namespace (see tests/root/test_cli_device.py) with
``--drop 0.2 --delay-ms 30``: every frame in and out has a one-in-five chance of being lost and
waits 30 ms, so a round trip loses about 36 % and takes at least 60 ms.
"""

from __future__ import annotations

import re

import pytest

from tests.root.test_cli_device import host_stack, kernel_ping, start_stack  # noqa: F401 (a fixture)

pytestmark = pytest.mark.device


@pytest.mark.tools("ping")
def test_the_kernels_ping_sees_loss_and_added_delay(netns: str, start_stack) -> None:  # noqa: F811
    stack = host_stack(start_stack, netns, "--drop", "0.2", "--delay-ms", "30", "--seed", "5")
    result = kernel_ping(netns, "-c", "40", "-i", "0.05", "-W", "1")  # -w would wait for 40 replies
    sent, received = map(int, re.search(r"(\d+) packets transmitted, (\d+) received",
                                         result.stdout).groups())
    assert sent == 40 and 5 <= received <= 38, result.stdout
    rtt_min = float(re.search(r"rtt min/avg/max/mdev = ([\d.]+)/", result.stdout).group(1))
    assert rtt_min >= 60.0, result.stdout
    assert stack.stop() == 0
    counters = dict(re.findall(r"^\s+(device\.fault_\w+)\s+(\d+)$", stack.stderr, re.M))
    assert int(counters["device.fault_in_dropped"]) > 0 and int(counters["device.fault_out_dropped"]) > 0
    assert int(counters["device.fault_out_delayed"]) >= received
    assert "seed 5" in stack.stderr
