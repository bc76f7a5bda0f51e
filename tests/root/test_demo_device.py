"""The kernel demos: the kernel's own ping and arping against tapstack, in a namespace the demo makes (root).

Split from ``tests/tools/test_demo.py`` (root-only tests live in ``tests/root``)."""

from __future__ import annotations

import pytest

from tests.tools.test_demo import (
    assert_tool_output_is_a_block_after_the_trace,
    demo,
    steps,
)


@pytest.mark.tools("ping", "arping")
@pytest.mark.device
def test_kernel_demo_over_tap_answers_ping_and_arping():
    result = demo()
    assert result.returncode == 0, result.stdout + result.stderr
    assert "3 packets transmitted, 3 received, 0% packet loss" in result.stdout
    assert "$ arping -c 3" in result.stdout and "3 packets received" in result.stdout
    assert "every ping and arping was answered" in result.stdout
    found = steps(result.stdout)
    for tool in ("ping", "arping"):
        assert_tool_output_is_a_block_after_the_trace(found[tool], tool)
    assert sum(" bytes from 02:00:00:00:00:02 (192.0.2.2)" in line for line in found["arping"]) == 3


@pytest.mark.tools("ping")
@pytest.mark.device
def test_kernel_demo_over_tun_answers_ping():
    result = demo("--tun")
    assert result.returncode == 0, result.stdout + result.stderr
    assert "3 packets transmitted, 3 received, 0% packet loss" in result.stdout
    assert "192.0.2.1 > 192.0.2.2: ICMP echo request" in result.stdout  # a bare IP trace line
    assert "every ping was answered" in result.stdout
    assert_tool_output_is_a_block_after_the_trace(steps(result.stdout)["ping"], "ping")


@pytest.mark.tools("ping", "arping")
@pytest.mark.device
def test_kernel_demo_without_trace_shows_each_tool_s_output_alone():
    result = demo("-q")
    assert result.returncode == 0, result.stdout + result.stderr
    found = steps(result.stdout)
    assert found["ping"][0] == "ping printed:" and found["arping"][0] == "arping printed:"
    assert not [line for line in result.stdout.splitlines() if line.startswith(("In  ", "Out ", "Lines "))]
