"""The benchmark's yardstick (bench/minimal_responder.py) really answers: the kernel resolves it
with ARP and its ping gets every reply, over TAP and TUN, in a namespace of the test's own."""

from __future__ import annotations

import signal
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]

pytestmark = pytest.mark.device


def in_ns(ns: str, *argv: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["ip", "netns", "exec", ns, *argv], capture_output=True, text=True, timeout=30,
                          check=True, stdin=subprocess.DEVNULL)


@pytest.mark.tools("ping")
@pytest.mark.parametrize("medium", ["tap", "tun"])
def test_the_minimal_responder_answers_the_kernels_ping(netns: str, medium: str) -> None:
    device = f"{medium}0"
    in_ns(netns, "ip", "tuntap", "add", "dev", device, "mode", medium)
    peer = ["peer", "192.0.2.2"] if medium == "tun" else []
    in_ns(netns, "ip", "address", "add", "192.0.2.1" + ("" if peer else "/24"), *peer, "dev", device)
    in_ns(netns, "ip", "link", "set", device, "up")
    responder = subprocess.Popen(["ip", "netns", "exec", netns, sys.executable,
                                  str(REPO / "bench" / "minimal_responder.py"), f"--{medium}", device,
                                  "--ip", "192.0.2.2"], stdin=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        result = subprocess.run(["ip", "netns", "exec", netns, "ping", "-n", "-c", "3", "-i", "0.2", "-w", "10",
                                 "192.0.2.2"], capture_output=True, text=True, timeout=30)
        assert result.returncode == 0 and "3 received" in result.stdout, result.stdout + result.stderr
    finally:
        responder.send_signal(signal.SIGTERM)
        assert responder.wait(timeout=10) == 0, responder.stderr.read()
