"""``tapstack demo``, the main job, end to end: every ping answered, exit 0.

The in-memory demos need nothing; the kernel demos need root and run in a network namespace
the demo process makes for itself (``unshare``), which vanishes when it exits.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent


def demo(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "stack", "demo", "-c", "3", *args], cwd=REPO,
                          env=dict(os.environ, PYTHONPATH=str(REPO)), capture_output=True, text=True,
                          timeout=60, stdin=subprocess.DEVNULL)


@pytest.mark.parametrize("mode", [[], ["--tun"]], ids=["tap", "tun"])
def test_in_memory_demo_answers_every_ping(mode):
    result = demo("--in-memory", *mode)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "3 packets transmitted, 3 received, 0% packet loss" in result.stdout
    assert result.stdout.rstrip().endswith("tapstack demo: every ping was answered.")
    assert result.stdout.count("ICMP echo reply") == 3  # the trace shows each reply going out
    assert "Traceback" not in result.stderr


@pytest.mark.tools("ping", "arping")
@pytest.mark.device
def test_kernel_demo_over_tap_answers_ping_and_arping():
    result = demo()
    assert result.returncode == 0, result.stdout + result.stderr
    assert "3 packets transmitted, 3 received, 0% packet loss" in result.stdout
    assert "$ arping -c 3" in result.stdout and "3 packets received" in result.stdout
    assert "every ping and arping was answered" in result.stdout


@pytest.mark.tools("ping")
@pytest.mark.device
def test_kernel_demo_over_tun_answers_ping():
    result = demo("--tun")
    assert result.returncode == 0, result.stdout + result.stderr
    assert "3 packets transmitted, 3 received, 0% packet loss" in result.stdout
    assert "192.0.2.1 > 192.0.2.2: ICMP echo request" in result.stdout  # a bare IP trace line
    assert "every ping was answered" in result.stdout


def test_a_kernel_demo_that_cannot_start_falls_back_to_the_in_memory_wire():
    """Where namespaces are not allowed (a container without CAP_SYS_ADMIN), no traceback."""
    code = (
        "import stack.tap.kernel as kernel\n"
        "from stack.tap.base import DeviceError\n"
        "def refuse(): raise DeviceError('cannot create a private network namespace (Operation not permitted)')\n"
        "kernel.enter_private_namespace = refuse\n"
        "import stack.demo as demo\n"
        "demo.kernel_demo_unavailable = lambda: None\n"
        "raise SystemExit(demo.run_demo(count=2, trace=False))\n")
    result = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True,
                            timeout=60, env=dict(os.environ, PYTHONPATH=str(REPO)))
    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stdout.startswith("tapstack demo: using the in-memory wire (the kernel demo could "
                                    "not run: cannot create a private network namespace")
    assert "Traceback" not in result.stderr
