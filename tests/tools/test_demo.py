"""``tapstack demo``, the main job, end to end: every ping answered, exit 0.

The in-memory demos need nothing; the kernel demos need root and run in a network namespace
the demo process makes for itself (``unshare``), which vanishes when it exits.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]


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


def steps(stdout: str) -> dict[str, list[str]]:
    """The lines of each kernel tool's step, by tool: from its "$ tool ..." line to a blank line."""
    found: dict[str, list[str]] = {}
    lines = stdout.splitlines()
    for index, line in enumerate(lines):
        if line.startswith("$ "):
            end = lines.index("", index) if "" in lines[index:] else len(lines)
            found[line.split()[1]] = lines[index + 1:end]
    return found


def assert_tool_output_is_a_block_after_the_trace(step: list[str], tool: str) -> None:
    """The step's trace lines, then "<tool> printed:" and the tool's own lines, indented: never
    one cut into the other (Habets' arping ends its lines late, so a trace line ran into them)."""
    heading = step.index(f"{tool} printed:")
    assert all(line.startswith(("In  ", "Out ")) for line in step[:heading]), step
    assert step[heading + 1:] and all(line.startswith("  ") for line in step[heading + 1:]), step
    assert not [line for line in step if re.search(r".(In  |Out )[0-9a-f:]{17} > ", line)], step


def test_a_kernel_demo_that_cannot_start_falls_back_to_the_in_memory_wire():
    """Where namespaces are not allowed (a container without CAP_SYS_ADMIN), no traceback."""
    code = (
        "import stack.runtime.kernel as kernel\n"
        "from stack.tap.base import DeviceError\n"
        "def refuse(): raise DeviceError('cannot create a private network namespace (Operation not permitted)')\n"
        "kernel.enter_private_namespace = refuse\n"
        "import stack.tools.demo as demo\n"
        "demo.kernel_demo_unavailable = lambda: None\n"
        "raise SystemExit(demo.run_demo(count=2, trace=False))\n")
    result = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True,
                            timeout=60, env=dict(os.environ, PYTHONPATH=str(REPO)))
    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stdout.startswith("tapstack demo: using the in-memory wire (the kernel demo could "
                                    "not run: cannot create a private network namespace")
    assert "Traceback" not in result.stderr
