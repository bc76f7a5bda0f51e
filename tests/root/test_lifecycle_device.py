"""Signals, privileges and a device that goes away, on a real ``tapstack run`` process.

Each test runs the stack in a private namespace (``netns``) and pokes it from outside: signals
by PID (only while the process has not been reaped, so the PID is surely still ours), ``ip``
to delete and re-create its device, /proc/PID/status to see its credentials. Stack 192.0.2.2,
kernel side 192.0.2.1, as in test_cli_device.
"""

from __future__ import annotations

import os
import pwd
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from stack.tap.pcap import PcapReader
from tests.root.test_cli_device import (
    AS_NOBODY,
    HOST_ARGS,
    KERNEL_IP,
    REPO,
    Nobody,
    Stack,
    assert_usage_error,
    in_ns,
    kernel_ping,
    nobody,  # noqa: F401 -- a fixture: imported by name so that pytest finds it here
    replies,
    stack_env,
    start_stack,  # noqa: F401 -- a fixture
    tapstack,
)

pytestmark = pytest.mark.device

HOST = [*HOST_ARGS, "--host-ip", f"{KERNEL_IP}/24"]


def counter(stderr: str, name: str) -> int:
    match = re.search(rf"^\s+{re.escape(name)}\s+(\d+)$", stderr, re.M)
    assert match is not None, f"no counter {name} in:\n{stderr}"
    return int(match.group(1))


def records(path: Path) -> list:
    with open(path, "rb") as file:
        return list(PcapReader(file))  # raises unless the file is a header and whole records


def wait_for(stack: Stack, text: str, timeout: float = 20) -> None:
    deadline = time.monotonic() + timeout
    while text not in stack.stderr:
        if stack.process.poll() is not None:
            pytest.fail(f"the stack exited with {stack.process.returncode}:\n{stack.stderr}")
        if time.monotonic() > deadline:
            pytest.fail(f"no {text!r} from the stack in {timeout} s:\n{stack.stderr}")
        time.sleep(0.05)


# ---------------------------------------------------------------------- signals


@pytest.mark.tools("ping")
def test_signals_while_stopping_keep_the_counters_and_the_capture(netns: str, start_stack,
                                                                   tmp_path: Path) -> None:
    capture = tmp_path / "run.pcap"
    stack = start_stack(netns, *HOST, "--pcap", str(capture))
    assert len(replies(kernel_ping(netns, "-c", "3", "-i", "0.05", "-w", "5").stdout)) == 3
    # SIGTERM, then SIGTERM and SIGINT every millisecond until it has exited (at most 5 s):
    # some land while it stops, some after the counters are printed.
    process, sent = stack.process, 0
    deadline = time.monotonic() + 5
    while process.poll() is None and time.monotonic() < deadline:  # not reaped: the PID is ours
        os.kill(process.pid, signal.SIGTERM if sent % 2 == 0 else signal.SIGINT)
        sent += 1
        time.sleep(0.001)
    assert stack.stop() == 0, f"exit {process.returncode} after {sent} signals:\n{stack.stderr}"
    assert sent >= 2, sent
    stderr = stack.stderr
    assert "Traceback" not in stderr, stderr
    assert counter(stderr, "icmp_echo_replies_sent") == 3
    frames = records(capture)
    assert len(frames) == counter(stderr, "device.rx_frames") + counter(stderr, "device.tx_frames")
    assert sum(1 for r in frames if r.data[12:14] == b"\x08\x00") == 6  # 3 requests, 3 replies


@pytest.mark.tools("ping")
def test_sighup_reopens_the_capture_without_losing_a_frame(netns: str, start_stack, tmp_path: Path) -> None:
    capture = tmp_path / "cap.pcap"
    stack = start_stack(netns, *HOST, "--pcap", str(capture))
    ping = subprocess.Popen(["ip", "netns", "exec", netns, "ping", "-n", "-c", "150", "-i", "0.01",
                             "-w", "20", "192.0.2.2"], stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                            stdin=subprocess.DEVNULL, text=True)
    try:
        rotated = []
        for number in (1, 2):  # logrotate's way: move the file, then SIGHUP
            time.sleep(0.4)
            rotated.append(tmp_path / f"cap.{number}.pcap")
            capture.rename(rotated[-1])
            stack.process.send_signal(signal.SIGHUP)
            wait_for(stack, f"capture reopened: {capture}" if number == 1 else "reopened", 5)
        output, _ = ping.communicate(timeout=30)
    finally:
        if ping.poll() is None:
            ping.kill()
            ping.wait()
    assert len(replies(output)) == 150, output
    assert stack.stop() == 0, stack.stderr
    stderr = stack.stderr
    assert stderr.count("capture reopened") == 2, stderr
    parts = [records(path) for path in (*rotated, capture)]  # each a whole pcap file
    assert all(parts), [len(p) for p in parts]  # frames in each of the three files
    total = counter(stderr, "device.rx_frames") + counter(stderr, "device.tx_frames")
    assert sum(len(p) for p in parts) == total
    timestamps = [r.timestamp for part in parts for r in part]
    assert timestamps == sorted(timestamps)  # the files follow one another, nothing between


@pytest.mark.tools("ping")
def test_sighup_with_the_capture_on_stdout_is_ignored(netns: str, tmp_path: Path) -> None:
    out, err = tmp_path / "stdout.pcap", tmp_path / "stderr"
    with open(out, "wb") as stdout, open(err, "w") as stderr_file:
        process = subprocess.Popen(["ip", "netns", "exec", netns, sys.executable, "-m", "stack",
                                    "run", *HOST, "--pcap", "-"], cwd=REPO, env=stack_env(), stdout=stdout,
                                   stderr=stderr_file, stdin=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 20
        while "Ctrl-C to stop" not in err.read_text():
            assert process.poll() is None and time.monotonic() < deadline, err.read_text()
            time.sleep(0.05)
        process.send_signal(signal.SIGHUP)
        time.sleep(0.2)
        assert process.poll() is None, err.read_text()  # still running
        assert len(replies(kernel_ping(netns, "-c", "2", "-i", "0.05", "-w", "5").stdout)) == 2
        process.send_signal(signal.SIGTERM)
        assert process.wait(timeout=10) == 0, err.read_text()
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
    assert "SIGHUP ignored" in err.read_text()
    assert sum(1 for r in records(out) if r.data[12:14] == b"\x08\x00") == 4  # one capture, whole


# ---------------------------------------------------------------------- --user


def credentials_of(pid: int) -> dict[str, str]:
    with open(f"/proc/{pid}/status") as file:
        return {k: v.strip() for k, _, v in (line.partition(":") for line in file)}


def assert_unprivileged(pid: int, uid: int) -> None:
    status = credentials_of(pid)
    assert status["Uid"].split() == [str(uid)] * 4, status["Uid"]
    for name in ("CapEff", "CapPrm", "CapInh", "CapBnd", "CapAmb"):
        assert int(status[name], 16) == 0, (name, status[name])


@pytest.mark.tools("ping")
def test_user_drops_root_after_the_device_is_open_and_keeps_serving(netns: str, start_stack,
                                                                   nobody: Nobody) -> None:
    uid = pwd.getpwnam("nobody").pw_uid
    stack = start_stack(netns, *HOST, "--user", "nobody", python=nobody.python)
    assert credentials_of(stack.process.pid)["CapEff"] != "", "no /proc status"
    result = kernel_ping(netns, "-c", "3", "-i", "0.05", "-w", "5")
    assert len(replies(result.stdout)) == 3, result.stdout + stack.stderr
    assert_unprivileged(stack.process.pid, uid)
    status = credentials_of(stack.process.pid)
    assert status["Groups"] == "" and status["NoNewPrivs"] == "1", status
    assert "running as nobody:" in stack.stderr, stack.stderr
    assert stack.stop() == 0, stack.stderr
    # The device root created went away with the process, as without --user.
    assert in_ns(netns, "ip", "link", "show", "dev", "tap0", check=False).returncode != 0


@pytest.mark.tools("ping")
def test_without_root_on_a_tap_the_user_owns_there_is_no_capability(netns: str, start_stack,
                                                                     nobody: Nobody) -> None:
    in_ns(netns, "ip", "tuntap", "add", "dev", "tap0", "mode", "tap", "user", "nobody")
    in_ns(netns, "ip", "address", "add", f"{KERNEL_IP}/24", "dev", "tap0")
    in_ns(netns, "ip", "link", "set", "tap0", "up")
    stack = start_stack(netns, *HOST_ARGS, as_user=nobody.argv(), python=nobody.python)
    assert len(replies(kernel_ping(netns, "-c", "3", "-i", "0.05", "-w", "5").stdout)) == 3
    assert int(credentials_of(stack.process.pid)["CapEff"], 16) == 0
    assert int(credentials_of(stack.process.pid)["CapPrm"], 16) == 0
    assert stack.stop() == 0, stack.stderr


@pytest.mark.parametrize("args, message", [
    (["--user", "no-such-user-here"], "--user no-such-user-here: no such user"),
    (["--user", "nobody", "--group", "no-such-group-here"], "--group no-such-group-here: no such group"),
    (["--group", "nogroup"], "--group needs --user"),
], ids=["bad-user", "bad-group", "group-alone"])
def test_bad_user_or_group_is_one_line_and_nothing_created(netns: str, args, message) -> None:
    result = tapstack(netns, "run", *HOST, *args, timeout=10)
    assert_usage_error(result, message)
    assert in_ns(netns, "ip", "link", "show", "dev", "tap0", check=False).returncode != 0


def test_user_when_not_root_is_one_clear_line(netns: str, nobody: Nobody) -> None:
    in_ns(netns, "ip", "tuntap", "add", "dev", "tap0", "mode", "tap", "user", "nobody")
    result = tapstack(netns, "run", *HOST_ARGS, "--user", "nobody", as_user=list(AS_NOBODY),
                      python=nobody.python, timeout=10)
    assert_usage_error(result, "--user nobody: only root can change user")


# ---------------------------------------------------------------------- --reattach


@pytest.mark.tools("ping")
def test_reattach_serves_again_once_the_device_is_back(netns: str, start_stack) -> None:
    stack = start_stack(netns, *HOST, "--reattach", "--reattach-timeout", "20")
    assert len(replies(kernel_ping(netns, "-c", "2", "-i", "0.05", "-w", "5").stdout)) == 2
    in_ns(netns, "ip", "link", "del", "tap0")
    wait_for(stack, "waiting up to 20 s for tap0 to come back")
    time.sleep(0.3)
    assert stack.process.poll() is None, stack.stderr
    in_ns(netns, "ip", "tuntap", "add", "dev", "tap0", "mode", "tap")  # back, as a new device
    wait_for(stack, "re-attached tap0")
    # --host-ip is configured again on the new device by the stack.
    result = kernel_ping(netns, "-c", "3", "-i", "0.05", "-w", "10")
    assert len(replies(result.stdout)) == 3, result.stdout + stack.stderr
    assert stack.stop() == 0, stack.stderr
    # The new tap0 has a new MAC: the stack forgot the old one's neighbours when it re-attached
    # (else the ARP hardening would hold on to the old MAC for a check interval).
    assert counter(stack.stderr, "icmp_echo_replies_sent") == 5, stack.stderr
    assert "Traceback" not in stack.stderr


def test_reattach_gives_up_after_its_timeout_with_one_line(netns: str, start_stack) -> None:
    stack = start_stack(netns, *HOST, "--reattach", "--reattach-timeout", "1")
    started = time.monotonic()
    in_ns(netns, "ip", "link", "del", "tap0")
    try:
        stack.process.wait(timeout=15)
    except subprocess.TimeoutExpired:
        pytest.fail(f"still waiting after 15 s:\n{stack.stderr}")
    assert 1.0 <= time.monotonic() - started < 10
    stderr = stack.stderr
    assert stack.process.returncode == 1, stderr
    assert "Traceback" not in stderr
    lines = [line for line in stderr.splitlines() if "did not come back" in line]
    assert lines == ["tapstack: tap0: device went away and did not come back within 1 s "
                     "(--reattach-timeout)"], stderr
    assert "tapstack counters" in stderr


@pytest.mark.tools("ping")
def test_reattach_after_dropping_root_attaches_a_device_the_user_owns(netns: str, start_stack,
                                                                       nobody: Nobody) -> None:
    stack = start_stack(netns, *HOST, "--user", "nobody", "--reattach", "--reattach-timeout", "20",
                        python=nobody.python)
    in_ns(netns, "ip", "link", "del", "tap0")
    wait_for(stack, "waiting up to 20 s")
    in_ns(netns, "ip", "tuntap", "add", "dev", "tap0", "mode", "tap", "user", "nobody")
    wait_for(stack, "re-attached tap0")
    # As nobody it cannot configure the kernel side again: it says so, and root does it.
    assert "the kernel side could not be configured again" in stack.stderr, stack.stderr
    in_ns(netns, "ip", "address", "add", f"{KERNEL_IP}/24", "dev", "tap0")
    in_ns(netns, "ip", "link", "set", "tap0", "up")
    result = kernel_ping(netns, "-c", "3", "-i", "0.05", "-w", "10")
    assert len(replies(result.stdout)) == 3, result.stdout + stack.stderr
    assert_unprivileged(stack.process.pid, pwd.getpwnam("nobody").pw_uid)
    assert stack.stop() == 0, stack.stderr
    assert "Traceback" not in stack.stderr


def test_sigterm_ends_the_reattach_wait_at_once_with_the_counters(netns: str, start_stack) -> None:
    stack = start_stack(netns, *HOST, "--reattach", "--reattach-timeout", "60")
    in_ns(netns, "ip", "link", "del", "tap0")
    wait_for(stack, "waiting up to 60 s")
    started = time.monotonic()
    assert stack.stop() == 0, stack.stderr
    assert time.monotonic() - started < 3
    assert "tapstack counters" in stack.stderr and "Traceback" not in stack.stderr
