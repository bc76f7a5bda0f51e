"""The ``tapstack`` command end to end, against the real kernel, in private network namespaces.

Each test runs ``ip netns exec NS python -m stack run|ping --tap tap0 ...`` as a subprocess in
a namespace of its own (the ``netns`` fixture) and pokes it with the kernel's ``ping``,
Habets' ``arping`` and ``ip``. A stack is always stopped (SIGTERM, then SIGKILL) in a fixture's
``finally``. Read-only checks share one running stack (``shared``) to keep the file fast.

Addresses: the stack is 192.0.2.2/24, the kernel on the other end of tap0 is 192.0.2.1/24.
"""

from __future__ import annotations

import os
import re
import shutil
import signal
import stat
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

pytestmark = pytest.mark.device

REPO = Path(__file__).resolve().parents[2]
STACK_IP = "192.0.2.2"
KERNEL_IP = "192.0.2.1"
NOT_OURS = "192.0.2.3"
DERIVED_MAC = "02:00:c0:00:02:02"  # 02:00 + 192.0.2.2, the default
CUSTOM_MAC = "02:00:00:00:00:99"
HOST_ARGS = ["--tap", "tap0", "--ip", f"{STACK_IP}/24"]
READY_LINE = "Ctrl-C to stop"  # logged once the device is open and the signal handlers are in
TIMEOUT_S = 30  # no subprocess wait is longer


def sh(*argv: str, timeout: float = TIMEOUT_S, check: bool = True) -> subprocess.CompletedProcess[str]:
    result = subprocess.run(argv, capture_output=True, text=True, timeout=timeout, stdin=subprocess.DEVNULL)
    if check:
        assert result.returncode == 0, \
            f"{' '.join(argv)}: {result.returncode}\n{result.stdout}{result.stderr}"
    return result


def in_ns(ns: str, *argv: str, **kwargs) -> subprocess.CompletedProcess[str]:
    return sh("ip", "netns", "exec", ns, *argv, **kwargs)


def stack_env() -> dict[str, str]:
    return dict(os.environ, PYTHONPATH=str(REPO), PYTHONDONTWRITEBYTECODE="1")


# ---------------------------------------------------------------------- a running stack


class Stack:
    """``python -m stack run ...`` running in a namespace; stderr goes to a file we can read."""

    def __init__(self, ns: str, args: list[str], stderr_path: Path, as_user: list[str] = (),
                 python: str = sys.executable) -> None:
        self.ns = ns
        self.stderr_path = stderr_path
        self._stderr = open(stderr_path, "w")
        # `ip netns exec` (and setpriv) exec the command: this PID is the stack's own.
        self.process = subprocess.Popen(
            ["ip", "netns", "exec", ns, *as_user, python, "-m", "stack", "run", *args],
            cwd=REPO, env=stack_env(), stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
            stderr=self._stderr)

    @property
    def stderr(self) -> str:
        return self.stderr_path.read_text()

    def wait_ready(self, timeout: float = 20) -> None:
        """Until the stack says it serves, without sending it anything."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if READY_LINE in self.stderr:
                return
            if self.process.poll() is not None:
                pytest.fail(f"the stack exited with {self.process.returncode}:\n{self.stderr}")
            time.sleep(0.05)
        pytest.fail(f"the stack did not get ready in {timeout} s:\n{self.stderr}")

    def stop(self, signum: int = signal.SIGTERM, timeout: float = 10) -> int:
        if self.process.poll() is None:
            self.process.send_signal(signum)
            try:
                self.process.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=timeout)
                pytest.fail(f"the stack ignored {signal.Signals(signum).name} for {timeout} s")
        self._stderr.close()
        return self.process.returncode

    def kill(self) -> None:
        """Cleanup of last resort (the test has already failed, or already stopped it)."""
        if self.process.poll() is None:
            self.process.kill()
            self.process.wait(timeout=10)
        self._stderr.close()


class Stacks:
    """Starts stacks and remembers them, so that a fixture's ``finally`` can stop them all."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory
        self.started: list[Stack] = []

    def __call__(self, ns: str, *args: str, as_user: list[str] = (), python: str = sys.executable,
                 ready: bool = True) -> Stack:
        stack = Stack(ns, list(args), self.directory / f"stack-{len(self.started)}.stderr", as_user, python)
        self.started.append(stack)
        if ready:
            stack.wait_ready()
        return stack

    def kill_all(self) -> None:
        for stack in self.started:
            stack.kill()


@pytest.fixture
def start_stack(tmp_path: Path) -> Iterator[Stacks]:
    """``start_stack(ns, *args)`` starts a stack and waits until it is ready; all are killed after."""
    stacks = Stacks(tmp_path)
    try:
        yield stacks
    finally:
        stacks.kill_all()


def tapstack(ns: str, command: str, *args: str, as_user: list[str] = (), python: str = sys.executable,
             timeout: float = TIMEOUT_S) -> subprocess.CompletedProcess[str]:
    """``python -m stack COMMAND ...`` in ``ns``, run to completion (killed after ``timeout``)."""
    return subprocess.run(["ip", "netns", "exec", ns, *as_user, python, "-m", "stack", command, *args],
                          cwd=REPO, env=stack_env(), capture_output=True, text=True, timeout=timeout,
                          stdin=subprocess.DEVNULL)


def host_stack(start_stack, ns: str, *extra: str) -> Stack:
    """The usual stack: 192.0.2.2 on tap0, the kernel side configured as 192.0.2.1 by the stack."""
    return start_stack(ns, *HOST_ARGS, "--host-ip", f"{KERNEL_IP}/24", *extra)


def kernel_ping(ns: str, *args: str, target: str = STACK_IP,
                timeout: float = TIMEOUT_S) -> subprocess.CompletedProcess[str]:
    """The kernel's ping; every call has a count and a deadline (-w)."""
    return in_ns(ns, "ping", "-n", *args, target, timeout=timeout, check=False)


def arping(ns: str, target: str, count: int = 3, deadline: int = 5) -> subprocess.CompletedProcess[str]:
    """Habets' arping on tap0, from the kernel's side (a packet socket: not the kernel's ARP)."""
    return in_ns(ns, "arping", "-c", str(count), "-w", str(deadline), "-i", "tap0", target, check=False)


def replies(ping_output: str) -> list[str]:
    return [line for line in ping_output.splitlines() if " bytes from " in line]


def neighbour_mac(ns: str, address: str) -> str | None:
    out = in_ns(ns, "ip", "neigh", "show", address, "dev", "tap0").stdout
    match = re.search(r"lladdr ([0-9a-f:]{17})", out)
    return match.group(1) if match else None


# ---------------------------------------------------------------------- the kernel pings the stack


@pytest.mark.tools("ping")
def test_no_loss_from_the_very_first_ping(netns: str, start_stack) -> None:
    """Nothing is sent to the stack before this ping: the first request waits in the kernel
    while ARP resolves 192.0.2.2, and must still be answered."""
    host_stack(start_stack, netns)
    result = kernel_ping(netns, "-c", "200", "-i", "0.01", "-w", "20")
    assert "200 packets transmitted, 200 received, 0% packet loss" in result.stdout, result.stdout
    assert re.search(r"^\d+ bytes from 192\.0\.2\.2: icmp_seq=1 ", result.stdout, re.M), result.stdout
    assert result.returncode == 0


@pytest.mark.tools("ping")
def test_full_size_pings_are_answered_full_size(shared: str) -> None:
    # 1472 data + 8 ICMP + 20 IPv4 = 1500, the MTU; -M do forbids fragmentation.
    result = kernel_ping(shared, "-s", "1472", "-M", "do", "-c", "5", "-i", "0.05", "-w", "10")
    lines = replies(result.stdout)
    assert len(lines) == 5, result.stdout + result.stderr
    assert all(line.startswith(f"1480 bytes from {STACK_IP}: ") for line in lines), lines
    assert result.returncode == 0


@pytest.mark.tools("ping", "arping")
@pytest.mark.parametrize("mac", [None, CUSTOM_MAC], ids=["derived-mac", "custom-mac"])
def test_arping_is_answered_and_the_kernel_learns_the_mac(netns: str, start_stack, mac: str | None) -> None:
    host_stack(start_stack, netns, *(["--mac", mac] if mac else []))
    expected = mac or DERIVED_MAC
    result = arping(netns, STACK_IP)
    # Habets' arping: "60 bytes from 02:00:c0:00:02:02 (192.0.2.2): index=0 time=..."
    answers = re.findall(r"bytes from ([0-9a-f:]{17}) \((\S+)\)", result.stdout)
    assert answers == [(expected, STACK_IP)] * 3, result.stdout + result.stderr
    assert result.returncode == 0
    # arping bypasses the kernel's table; a kernel ping makes the kernel resolve 192.0.2.2.
    assert kernel_ping(netns, "-c", "1", "-w", "5").returncode == 0
    assert neighbour_mac(netns, STACK_IP) == expected


@pytest.mark.tools("ping", "arping")
def test_never_answers_for_an_address_it_does_not_own(shared: str) -> None:
    result = kernel_ping(shared, "-c", "2", "-i", "0.2", "-w", "2", target=NOT_OURS)
    assert replies(result.stdout) == [] and result.returncode != 0, result.stdout
    result = arping(shared, NOT_OURS, count=2, deadline=2)
    assert " bytes from " not in result.stdout, result.stdout
    assert result.returncode != 0
    # ... while the stack itself is still there and answering.
    assert kernel_ping(shared, "-c", "1", "-w", "5").returncode == 0


# ---------------------------------------------------------------------- the stack pings the kernel


def test_stack_ping_gets_three_replies_from_the_kernel(netns: str) -> None:
    result = tapstack(netns, "ping", *HOST_ARGS, "--host-ip", f"{KERNEL_IP}/24",
                      "-c", "3", "-i", "0.2", KERNEL_IP)
    assert result.returncode == 0, result.stdout + result.stderr
    lines = replies(result.stdout)
    assert len(lines) == 3, result.stdout
    assert all(f"bytes from {KERNEL_IP}: icmp_seq=" in line for line in lines), lines
    assert "Traceback" not in result.stderr


# ---------------------------------------------------------------------- stopping


@pytest.mark.tools("ping")
@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT], ids=["SIGTERM", "SIGINT"])
def test_signal_stops_run_cleanly_with_counters(netns: str, start_stack, signum: int) -> None:
    stack = host_stack(start_stack, netns)
    assert kernel_ping(netns, "-c", "3", "-i", "0.05", "-w", "5").returncode == 0
    assert stack.stop(signum) == 0, stack.stderr
    stderr = stack.stderr
    assert "Traceback" not in stderr, stderr
    assert "tapstack counters" in stderr, stderr
    match = re.search(r"^\s+icmp_echo_replies_sent\s+(\d+)$", stderr, re.M)
    assert match is not None, stderr
    assert int(match.group(1)) == 3, stderr  # nothing but those three pings asked for an echo


@pytest.mark.tools("ping")
def test_quiet_run_still_prints_the_counters_at_exit(netns: str, start_stack) -> None:
    stack = start_stack(netns, *HOST_ARGS, "--host-ip", f"{KERNEL_IP}/24", "-q", ready=False)
    # -q silences the "ready" log line: wait for the first answer instead (bounded). Until the
    # stack has configured the kernel side, ping fails at once, so attempts are spaced out.
    for _ in range(50):
        if kernel_ping(netns, "-c", "1", "-W", "1").returncode == 0:
            break
        time.sleep(0.1)
    else:
        pytest.fail(f"no answer from a quiet stack: {stack.stderr}")
    assert stack.stop() == 0
    assert "tapstack counters" in stack.stderr and "Ctrl-C" not in stack.stderr, stack.stderr


# ---------------------------------------------------------------------- devices made beforehand


@pytest.mark.tools("ping")
def test_attaches_to_a_persistent_tap_and_leaves_it(netns: str, start_stack) -> None:
    in_ns(netns, "ip", "tuntap", "add", "dev", "tap0", "mode", "tap")
    stack = host_stack(start_stack, netns)
    assert kernel_ping(netns, "-c", "3", "-i", "0.05", "-w", "5").returncode == 0
    assert stack.stop() == 0, stack.stderr
    assert in_ns(netns, "ip", "link", "show", "dev", "tap0", check=False).returncode == 0, "tap0 was deleted"


AS_NOBODY = ["setpriv", "--reuid=nobody", "--regid=nogroup", "--clear-groups"]


class Nobody:
    """Runs a command as the unprivileged user ``nobody``, with /dev/net/tun of a chosen mode.

    Distributions ship /dev/net/tun with mode 0666, some containers with 0600. So that the test
    does not depend on it (and never changes it), the command runs in a private mount namespace
    where a node of our own with the mode we want is bind-mounted over /dev/net/tun.
    """

    def __init__(self, directory: Path, python: str) -> None:
        self.directory = directory
        self.python = python

    def argv(self, tun_mode: int = 0o666) -> list[str]:
        node = self.directory / f"tun-{tun_mode:o}"
        if not node.exists():
            os.mknod(node, stat.S_IFCHR | tun_mode, os.makedev(10, 200))  # misc 200: /dev/net/tun
            os.chmod(node, tun_mode)  # whatever the umask
        return ["unshare", "--mount", "--propagation", "private",
                "sh", "-c", 'mount --bind "$0" /dev/net/tun && exec "$@"', str(node), *AS_NOBODY]


@pytest.fixture
def nobody(tmp_path: Path) -> Nobody:
    """How to run as ``nobody``: an interpreter it can run that imports ``stack``, else skip."""
    for python in dict.fromkeys([sys.executable, shutil.which("python3.11"), shutil.which("python3")]):
        if python is None:
            continue
        check = "import sys, stack; assert sys.version_info >= (3, 11)"
        probe = subprocess.run([*AS_NOBODY, python, "-c", check],
                               env=stack_env(), cwd="/", capture_output=True, timeout=TIMEOUT_S)
        if probe.returncode == 0:
            return Nobody(tmp_path, python)
    pytest.skip(f"no Python >= 3.11 that the user 'nobody' can run and import 'stack' with "
                f"({sys.executable} is not reachable for it)")


@pytest.mark.tools("ping")
def test_unprivileged_user_runs_on_a_tap_it_owns(netns: str, start_stack, nobody: Nobody) -> None:
    # Root prepares the device and its kernel side; the stack itself runs without privileges.
    in_ns(netns, "ip", "tuntap", "add", "dev", "tap0", "mode", "tap", "user", "nobody")
    in_ns(netns, "ip", "address", "add", f"{KERNEL_IP}/24", "dev", "tap0")
    in_ns(netns, "ip", "link", "set", "tap0", "up")
    stack = start_stack(netns, *HOST_ARGS, as_user=nobody.argv(), python=nobody.python)
    result = kernel_ping(netns, "-c", "3", "-i", "0.05", "-w", "5")
    assert len(replies(result.stdout)) == 3, result.stdout + stack.stderr
    assert stack.stop() == 0, stack.stderr
    assert in_ns(netns, "ip", "link", "show", "dev", "tap0", check=False).returncode == 0


# ---------------------------------------------------------------------- user errors with a device


def assert_usage_error(result: subprocess.CompletedProcess[str], *fragments: str) -> None:
    assert result.returncode == 2, result
    assert "Traceback" not in result.stderr, result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, f"expected one line on stderr, got:\n{result.stderr}"
    for fragment in fragments:
        assert fragment in lines[0], lines[0]


def test_tap_naming_a_tun_device_is_a_usage_error(netns: str) -> None:
    in_ns(netns, "ip", "tuntap", "add", "dev", "tun0", "mode", "tun")
    result = tapstack(netns, "run", "--tap", "tun0", "--ip", f"{STACK_IP}/24", timeout=10)
    assert_usage_error(result, "tun0", "TUN")
    assert in_ns(netns, "ip", "link", "show", "dev", "tun0", check=False).returncode == 0


@pytest.mark.parametrize(
    "tun_mode, existing",
    [(0o666, True), (0o666, False), (0o600, False)],
    ids=["tap-owned-by-root", "no-such-tap", "clone-device-root-only"],
)
def test_unprivileged_user_without_permission_gets_told_how(netns: str, nobody: Nobody, tun_mode: int,
                                                            existing: bool) -> None:
    if existing:
        # Owned by root. (A persistent TAP with neither owner nor group is open to anyone who can
        # open /dev/net/tun: tun_not_capable() in drivers/net/tun.c.)
        in_ns(netns, "ip", "tuntap", "add", "dev", "tap0", "mode", "tap", "user", "root")
    result = tapstack(netns, "run", *HOST_ARGS, as_user=nobody.argv(tun_mode), python=nobody.python,
                      timeout=10)
    assert_usage_error(result, "permission", "ip tuntap add")


# ---------------------------------------------------------------------- the shared stack


@pytest.fixture(scope="module")
def shared(module_netns: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """One running stack (default MAC) for the checks that do not change it; yields its namespace."""
    stacks = Stacks(tmp_path_factory.mktemp("shared-stack"))
    try:
        stack = host_stack(stacks, module_netns)
        yield module_netns
        assert stack.stop() == 0, stack.stderr
    finally:
        stacks.kill_all()


# ---------------------------------------------------------------------- captures and failures


@pytest.mark.tools("ping", "tshark")
def test_pcap_capture_of_a_run_opens_in_tshark(netns: str, start_stack, tmp_path: Path) -> None:
    """--pcap writes every frame in and out; tshark reads it with no malformed frame."""
    tshark = shutil.which("tshark")
    capture = tmp_path / "run.pcap"
    stack = host_stack(start_stack, netns, "--pcap", str(capture))
    assert kernel_ping(netns, "-c", "3", "-i", "0.05", "-w", "5").returncode == 0
    assert stack.stop() == 0, stack.stderr
    fields = sh(tshark, "-r", str(capture), "-T", "fields", "-e", "frame.protocols",
                "-e", "_ws.expert.message").stdout.splitlines()
    protocols = [line.split("\t")[0] for line in fields]
    # Our announcement; the kernel's who-has and our reply; three requests and three replies.
    assert protocols.count("eth:ethertype:ip:icmp:data") == 6, fields
    assert protocols.count("eth:ethertype:arp") >= 3, fields
    assert not [line for line in fields if "alformed" in line], fields
    # Our echo replies, with both checksums verified good by tshark (status 1 = good).
    replies = sh(tshark, "-r", str(capture), "-o", "ip.check_checksum:TRUE", "-Y",
                 "icmp.type == 0 && icmp.checksum.status == 1 && ip.checksum.status == 1"
                 ).stdout.splitlines()
    assert len(replies) == 3, replies


def test_the_device_going_away_ends_run_with_one_clear_line(netns: str, start_stack) -> None:
    stack = host_stack(start_stack, netns)
    in_ns(netns, "ip", "link", "del", "tap0")
    try:
        stack.process.wait(timeout=10)
    except subprocess.TimeoutExpired:
        pytest.fail("the stack kept running after its device was deleted")
    stderr = stack.stderr
    assert stack.process.returncode == 1, stderr
    assert "Traceback" not in stderr, stderr
    assert "tap0: device went away" in stderr, stderr


@pytest.mark.parametrize("existing", [False, True], ids=["no-tap", "persistent-tap"])
@pytest.mark.parametrize("args, message", [
    (["run", "--pcap", "/nonexistent-dir/x.pcap"], "--pcap /nonexistent-dir/x.pcap: No such file or directory"),
    (["ping", "203.0.113.9"], "no route to 203.0.113.9"),
], ids=["pcap-directory-missing", "ping-off-link"])
def test_errors_in_the_flags_come_before_any_device_or_kernel_change(netns: str, args, message,
                                                                     existing: bool) -> None:
    if existing:
        in_ns(netns, "ip", "tuntap", "add", "dev", "tap0", "mode", "tap")
    command, *rest = args
    result = tapstack(netns, command, *HOST_ARGS, "--host-ip", f"{KERNEL_IP}/24", *rest)
    assert_usage_error(result, message)  # one line: not even "kernel side of tap0: ..., up"
    assert " bytes from " not in result.stdout
    link = in_ns(netns, "ip", "-o", "link", "show", "dev", "tap0", check=False)
    if not existing:
        assert link.returncode != 0, link.stdout  # no tap0 was created
        return
    flags = re.search(r"<([^>]*)>", link.stdout).group(1).split(",")
    assert "UP" not in flags, link.stdout  # not brought up
    assert in_ns(netns, "ip", "-4", "-o", "address", "show", "dev", "tap0").stdout == ""  # no address


def test_a_device_that_cannot_be_opened_leaves_the_capture_file_as_it_was(netns: str, tmp_path: Path) -> None:
    in_ns(netns, "ip", "tuntap", "add", "dev", "tun0", "mode", "tun")
    earlier, new = tmp_path / "earlier.pcap", tmp_path / "new.pcap"
    earlier.write_bytes(b"an earlier capture")
    for path in (earlier, new):
        result = tapstack(netns, "run", "--tap", "tun0", "--ip", f"{STACK_IP}/24", "--pcap", str(path), timeout=10)
        assert_usage_error(result, "tun0", "TUN")
    assert earlier.read_bytes() == b"an earlier capture"  # not emptied, as tcpdump -w leaves it
    assert not new.exists()  # not created


@pytest.mark.tools("ping")
def test_a_capture_replaces_an_earlier_longer_file_entirely(netns: str, start_stack, tmp_path: Path) -> None:
    from stack.tap.pcap import PcapReader

    capture = tmp_path / "run.pcap"
    capture.write_bytes(b"x" * 100_000)  # longer than the capture: nothing of it may remain
    stack = host_stack(start_stack, netns, "--pcap", str(capture))
    assert kernel_ping(netns, "-c", "2", "-i", "0.05", "-w", "5").returncode == 0
    assert stack.stop() == 0, stack.stderr
    with open(capture, "rb") as file:
        frames = list(PcapReader(file))  # raises if anything but whole records follows
    assert sum(1 for record in frames if record.data[12:14] == b"\x08\x00") == 4  # 2 requests, 2 replies


@pytest.mark.tools("ping")
@pytest.mark.parametrize("args, target, warning, answered", [
    (HOST_ARGS + ["--host-ip", f"{KERNEL_IP}/24"], STACK_IP, None, True),
    (HOST_ARGS + ["--host-ip", "198.51.100.1/24"], STACK_IP,
     "--host-ip 198.51.100.1/24 is on none of the host's networks (192.0.2.0/24): the kernel has no route "
     "to tapstack, nor tapstack to the kernel; e.g. --host-ip 192.0.2.1/24", False),
    (HOST_ARGS + ["--host-ip", "192.0.2.200/25"], STACK_IP,
     "the kernel's network 192.0.2.128/25 holds none of the host's addresses", False),
    (["--tap", "tap0", "--ip", "192.0.2.130/25", "--host-ip", f"{KERNEL_IP}/24"], "192.0.2.130",
     "tapstack cannot answer the kernel", False),
    (["--tun", "tun0", "--ip", "192.0.2.10", "--ip", "192.0.2.11", "--host-ip", KERNEL_IP], "192.0.2.11",
     "--host-ip 192.0.2.1: the kernel routes only 192.0.2.10 to tun0, so it cannot reach 192.0.2.11", False),
    (["--tun", "tun0", "--ip", "192.0.2.10", "--ip", "192.0.2.11", "--host-ip", f"{KERNEL_IP}/28"],
     "192.0.2.11", None, True),
], ids=["tap-same-network", "tap-other-network", "tap-kernel-network-narrower", "tap-our-network-narrower",
        "tun-bare-host-ip-second-address", "tun-host-ip-with-prefix"])
def test_the_kernel_side_warning_is_given_exactly_when_the_kernel_gets_no_answer(
        netns: str, start_stack, args, target, warning, answered) -> None:
    stack = start_stack(netns, *args)
    result = kernel_ping(netns, "-c", "1", "-w", "2", target=target)
    assert (len(replies(result.stdout)) == 1) == answered, result.stdout + result.stderr
    assert stack.stop() == 0, stack.stderr
    warned = [line for line in stack.stderr.splitlines() if "--host-ip" in line]
    if warning is None:
        assert warned == [], warned
    else:
        assert len(warned) == 1 and warned[0].startswith("tapstack: --host-ip ") and warning in warned[0], warned
