"""Fixtures shared by the whole suite: whether device tests may run, and private namespaces.

Device tests touch real TAP/TUN devices, always inside a network namespace of their own, never
the machine's. Mark them ``@pytest.mark.device`` (``pytestmark = pytest.mark.device`` for a
file). They need root, /dev/net/tun, ``ip netns`` and ``unshare``; when something is missing they
are *skipped* with the reason -- unless ``TAPSTACK_REQUIRE_DEVICE=1`` is set (CI sets it), in
which case they *fail* with that reason, so a broken runner cannot pass by skipping them all.

Tests that run an external tool (``ping``, ``arping``, ``nmap``, ``tshark``) are marked
``@pytest.mark.tools("ping")`` (checked by ``require_tools``): one rule for every tool,
the same as for devices. Without the tool the test is *skipped* with the reason and the Debian
package to install; with ``TAPSTACK_REQUIRE_DEVICE=1`` it *fails* (``.ci/run`` installs them all).

``netns`` gives a test a fresh, empty namespace (``tsk-<pid>-<n>``) and deletes it afterwards,
also when the test fails; run things in it with ``ip netns exec <name> ...``. ``module_netns``
is one namespace for all the tests of a module. Asking for either gives the skip-or-fail check
even without the marker (``require_device`` alone gives just the check).
"""

from __future__ import annotations

import contextlib
import functools
import itertools
import os
import shutil
import subprocess
from collections.abc import Iterator

import re

import pytest
from hypothesis import HealthCheck, settings

# Hypothesis profiles (README "Fuzzing your own stack"), picked by HYPOTHESIS_PROFILE, else by CI:
# - "dev" (the default run): hypothesis' example counts, no per-example deadline (which a loaded
#   2-core machine would turn into flaky failures); failures saved in .hypothesis/ (ignored by git).
# - "ci" (CI set): hypothesis' own, unchanged: derandomized, no deadline, no database.
# - "fuzz": hundreds of thousands of examples per test, for a long unattended run, e.g.
#   HYPOTHESIS_PROFILE=fuzz .venv/bin/python -m pytest tests/core/test_fuzz_properties.py -x
#   (tests that set their own max_examples keep it).
settings.register_profile("dev", deadline=None)
settings.register_profile("fuzz", deadline=None, max_examples=300_000, stateful_step_count=100,
                          suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE") or ("ci" if "CI" in os.environ else "dev"))

_EXAMPLES = re.compile(r"(\d+) passing, (\d+) failing, and (\d+) invalid")
_examples_run: dict[str, int] = {}


@pytest.hookimpl(trylast=True)
def pytest_runtest_teardown(item: pytest.Item) -> None:
    """Count the examples each hypothesis test ran (every phase), for the summary line."""
    statistics = getattr(item, "hypothesis_statistics", None)
    if statistics:
        _examples_run[item.nodeid] = sum(int(n) for match in _EXAMPLES.findall(statistics) for n in match)


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    if _examples_run:
        terminalreporter.write_line(
            f"hypothesis profile {settings.get_current_profile_name()}: "
            f"{sum(_examples_run.values()):,} examples in {len(_examples_run)} tests")

REQUIRE_DEVICE = "TAPSTACK_REQUIRE_DEVICE"
_namespace_numbers = itertools.count()


def _run(*argv: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(argv, capture_output=True, text=True, timeout=10, stdin=subprocess.DEVNULL)


@functools.cache
def device_tests_unavailable() -> str | None:
    """Why device tests cannot run here (checked once per session), or None when they can."""
    if os.geteuid() != 0:
        return "device tests need root"
    if not os.path.exists("/dev/net/tun"):
        return "/dev/net/tun does not exist (modprobe tun)"
    for tool in ("ip", "unshare"):
        if shutil.which(tool) is None:
            return f"the {tool} command is not installed"
    try:
        os.close(os.open("/dev/net/tun", os.O_RDWR))  # opening attaches nothing yet
    except OSError as error:
        return f"/dev/net/tun cannot be opened: {error.strerror}"
    probe = f"tsk-{os.getpid()}-probe"
    created = _run("ip", "netns", "add", probe)
    if created.returncode != 0:
        return f"ip netns add does not work here: {created.stderr.strip()}"
    _run("ip", "netns", "del", probe)
    unshared = _run("unshare", "--net", "--mount", "true")
    if unshared.returncode != 0:
        return f"unshare --net --mount does not work here: {unshared.stderr.strip()}"
    return None


def skip_or_fail_without_devices() -> None:
    """Skip the current test when device tests cannot run here; fail instead when required."""
    reason = device_tests_unavailable()
    if reason is not None:
        skip_or_fail(reason)


#: The external tools tests use, with the Debian package that has each (``.ci/run`` installs them).
TOOL_PACKAGES = {"ping": "iputils-ping", "arping": "arping", "nmap": "nmap", "tshark": "tshark", "tc": "iproute2",
                 "tracepath": "iputils-tracepath", "traceroute": "traceroute"}


def skip_or_fail(reason: str) -> None:
    """Skip the current test for ``reason``; fail instead when TAPSTACK_REQUIRE_DEVICE=1."""
    if os.environ.get(REQUIRE_DEVICE) == "1":
        pytest.fail(f"{reason} ({REQUIRE_DEVICE}=1 requires it)", pytrace=False)
    pytest.skip(reason)


def require_tools(*tools: str) -> None:
    """Skip (or, with TAPSTACK_REQUIRE_DEVICE=1, fail) unless every tool is installed here."""
    missing = [tool for tool in tools if shutil.which(tool) is None]
    if missing:
        packages = " ".join(dict.fromkeys(TOOL_PACKAGES.get(tool, tool) for tool in missing))
        skip_or_fail(f"{' and '.join(missing)} not installed (apt-get install {packages})")


def pytest_runtest_setup(item: pytest.Item) -> None:
    if item.get_closest_marker("device") is not None:
        skip_or_fail_without_devices()
    for marker in item.iter_markers("tools"):
        require_tools(*marker.args)


@pytest.fixture
def require_device() -> None:
    """Skip (or, with TAPSTACK_REQUIRE_DEVICE=1, fail) unless device tests can run here."""
    skip_or_fail_without_devices()


@contextlib.contextmanager
def private_namespace() -> Iterator[str]:
    """Create a uniquely named network namespace; delete it on the way out, whatever happens."""
    name = f"tsk-{os.getpid()}-{next(_namespace_numbers)}"
    created = _run("ip", "netns", "add", name)
    assert created.returncode == 0, f"ip netns add {name}: {created.stderr}"
    try:
        yield name
    finally:
        _run("ip", "netns", "del", name)


@pytest.fixture
def netns(require_device: None) -> Iterator[str]:
    """The name of a new, empty network namespace, deleted when the test ends."""
    with private_namespace() as name:
        yield name


@pytest.fixture(scope="module")
def module_netns() -> Iterator[str]:
    """Like ``netns``, but one namespace shared by a module's tests (for a shared, slow set-up)."""
    skip_or_fail_without_devices()
    with private_namespace() as name:
        yield name
