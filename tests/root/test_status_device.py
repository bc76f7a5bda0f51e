"""The live status line on a real pseudo-terminal, with the kernel's ping (root).

Split from ``tests/runtime/test_status.py`` (root-only tests live in ``tests/root``)."""

from __future__ import annotations

import os
import pty
import re
import select
import signal
import subprocess
import sys
import time

import pytest

from tests.root.test_cli_device import REPO, stack_env


@pytest.mark.tools("ping")
@pytest.mark.device
def test_on_a_pseudo_terminal_the_line_is_live_then_replaced_by_the_counters(netns):
    controller, terminal = pty.openpty()
    process = subprocess.Popen(
        ["ip", "netns", "exec", netns, sys.executable, "-m", "stack", "run", "--tap", "tap0",
         "--ip", "192.0.2.2/24", "--host-ip", "192.0.2.1/24"],
        cwd=REPO, env=stack_env(), stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=terminal)
    os.close(terminal)
    seen = b""
    try:
        deadline = time.monotonic() + 20
        while b"answers" not in seen and time.monotonic() < deadline:
            if select.select([controller], [], [], 0.2)[0]:
                seen += os.read(controller, 4096)
        subprocess.run(["ip", "netns", "exec", netns, "ping", "-c", "3", "-i", "0.2", "-W", "2",
                        "192.0.2.2"], capture_output=True, timeout=20, stdin=subprocess.DEVNULL)
        time.sleep(0.6)  # at least two redraws
        process.send_signal(signal.SIGTERM)
        process.wait(timeout=10)
        while select.select([controller], [], [], 0.2)[0]:
            try:
                chunk = os.read(controller, 4096)
            except OSError:  # the other side is closed
                break
            if not chunk:
                break
            seen += chunk
    finally:
        if process.poll() is None:
            process.kill()
            process.wait(timeout=10)
        os.close(controller)
    text = seen.decode(errors="replace")
    assert process.returncode == 0, text
    lines = re.findall(r"\r\x1b\[K(in \d+  out \d+  answers (\d+)[^\r\n]*)", text)
    assert lines and max(int(answers) for _, answers in lines) >= 4, text  # 3 echoes and an ARP
    before, _, after = text.partition("tapstack counters")
    last_draw = before.rindex("answers")
    assert "\r\x1b[K" in before[last_draw:], text  # erased before anything else was written
    assert "answers" not in after and "icmp_echo_replies_sent" in after, text
