"""The layout's rules (style.md (b), README "How it works"), enforced by reading the source.

The package has wings, each a folder (or, for the base, a few top-level modules):
- base (errors, buffers, checksum, stats, reasons, seam, packet_info, ratelimit, the
  documentation addresses): no layer;
- core (l2, l3, l4, node and the host's choices beside it): sans-I/O; l2 and l3 never import
  each other; l4 imports the base and l3's seam only (l3 hands datagrams up to l4);
- devices (tap): bytes only, no protocol, never wait or read the clock;
- runtime (loop, trace, status, ping session, kernel-side set-up): the core and the devices;
- testing (the public hypothesis strategies): the core;
- tools (explain, demo, diff, fuzz, lab): anything but the CLI;
- cli: everything.
Nothing below imports tools, testing or cli; only the loop (and the CLI's wiring, which times a
start-up) reads the clock; importing ``stack`` or running ``tapstack run`` imports no test tool.
"""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "stack"
BASE = {"stack.errors", "stack.buffers", "stack.checksum", "stack.stats", "stack.reasons", "stack.seam",
        "stack.packet_info", "stack.ratelimit", "stack.documentation_addresses"}
IO_MODULES = {"os", "socket", "select", "selectors", "fcntl", "time", "random", "threading",
              "asyncio", "subprocess"}


def module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def imports(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(), filename=str(path))
    found: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.update(f"{node.module}.{alias.name}" if f"{node.module}.{alias.name}" in NAMES else node.module
                         for alias in node.names)
    return found


#: The lab worksheets' checkers are data shipped in the package, not modules of it.
PATHS = [p for p in sorted(PACKAGE.rglob("*.py")) if "labs" not in p.relative_to(PACKAGE).parts]
NAMES = {module_name(p) for p in PATHS}
MODULES = {module_name(p): imports(p) for p in PATHS}


def wing(module: str) -> str:
    if module in BASE:
        return "base"
    if module.startswith(("stack.l2", "stack.l3", "stack.l4")) or module in {"stack.node", "stack.choices"}:
        return "core"
    for folder, name in (("tap", "devices"), ("runtime", "runtime"), ("tools", "tools"),
                         ("testing", "testing"), ("cli", "cli")):
        if module == f"stack.{folder}" or module.startswith(f"stack.{folder}."):
            return name
    if module in {"stack.strategies"}:
        return "testing"  # the strategies' published name
    if module in {"stack", "stack.__main__"}:
        return "cli" if module == "stack.__main__" else "api"
    return "unplaced"


#: Which wings each wing may import ("api" is the package's top, ``import stack``).
ALLOWED = {
    "base": {"base"},
    "core": {"base", "core"},
    "devices": {"base", "devices"},
    "runtime": {"base", "core", "devices", "runtime", "api"},
    "testing": {"base", "core", "testing", "api"},
    "tools": {"base", "core", "devices", "runtime", "testing", "tools", "api"},
    "cli": {"base", "core", "devices", "runtime", "testing", "tools", "cli", "api"},
    "api": {"base", "core"},
}


def stack_imports(module: str) -> set[str]:
    return {i for i in MODULES[module] if i == "stack" or i.startswith("stack.")}


def test_the_scan_sees_the_package():
    assert "stack.l2.link" in MODULES and "stack.l3.host" in MODULES
    assert "stack.l2.ethernet" in MODULES["stack.l2.link"]
    assert {"stack.runtime.loop", "stack.tools.diff", "stack.testing.strategies", "stack.cli.commands"} <= NAMES


@pytest.mark.parametrize("module", sorted(MODULES))
def test_every_module_has_a_wing(module):
    assert wing(module) != "unplaced", f"{module} is in no wing: put it in one, or name it in BASE"


@pytest.mark.parametrize("module", sorted(MODULES))
def test_a_wing_imports_only_the_wings_below_it(module):
    own = wing(module)
    wrong = {i: wing(i) for i in stack_imports(module) if wing(i) not in ALLOWED.get(own, set())}
    assert not wrong, f"{module} ({own}) imports {wrong}"


@pytest.mark.parametrize("module", [m for m in MODULES if m.startswith("stack.l2")])
def test_l2_never_imports_l3(module):
    assert not {i for i in MODULES[module] if i.startswith(("stack.l3", "stack.l4"))}


@pytest.mark.parametrize("module", [m for m in MODULES if m.startswith("stack.l3")])
def test_l3_never_imports_l2(module):
    # l3 may hand a datagram up to l4 (the protocol table); it never reaches down to the link.
    assert not {i for i in MODULES[module] if i.startswith("stack.l2")}


#: The one l3 module the transport layer may import (style.md (b): "the l3 seam it is given").
L3_SEAM = "stack.l3.seam"


@pytest.mark.parametrize("module", [m for m in MODULES if m.startswith("stack.l4")])
def test_l4_imports_only_the_base_and_the_l3_seam(module):
    allowed = BASE | {L3_SEAM} | {m for m in MODULES if m.startswith("stack.l4")}
    assert stack_imports(module) <= allowed, f"{module} imports {stack_imports(module) - allowed}"


def test_the_l4_scan_sees_the_udp_codec():
    assert "stack.l4.udp" in MODULES and L3_SEAM in MODULES["stack.l4.udp"]


#: Sans-I/O: the core and the base, and the runtime's and tools' pure parts (traces, ping
#: sessions, running a host until it is quiet, and explain take the time and the bytes they
#: are given).
SANS_IO = [m for m in MODULES if wing(m) in {"core", "base"}] + [
    "stack.runtime.trace", "stack.runtime.ping", "stack.runtime.settle", "stack.tools.explain"]


@pytest.mark.parametrize("module", SANS_IO)
def test_core_is_sans_io(module):
    used = {i.split(".")[0] for i in MODULES[module]}
    assert not used & IO_MODULES, f"{module} imports {used & IO_MODULES}"


@pytest.mark.parametrize("module", [m for m in MODULES if wing(m) in {"base", "core", "devices", "runtime", "api"}])
def test_below_the_tools_nothing_imports_a_test_tool(module):
    used = {i.split(".")[0] for i in MODULES[module]}
    assert not used & {"hypothesis", "pytest", "_pytest"}, module


def test_only_the_loop_reads_the_clock():
    readers = {m for m, used in MODULES.items() if "time" in used}
    assert readers <= {"stack.runtime.loop", "stack.cli.wiring"}, readers


#: Waiting and the clock belong to the loop: a device never blocks, sleeps or asks the time.
WAITING_AND_CLOCK = {"select", "selectors", "time", "asyncio"}


@pytest.mark.parametrize("module", [m for m in MODULES if wing(m) == "devices"])
def test_devices_neither_wait_nor_read_the_clock(module):
    used = {i.split(".")[0] for i in MODULES[module]}
    assert not used & WAITING_AND_CLOCK, f"{module} imports {used & WAITING_AND_CLOCK}"


def test_the_packet_information_format_lives_in_one_base_module():
    """The link, the Linux device and pcap all read ``stack.packet_info``; no l2 copy."""
    assert "stack.l2.packet_info" not in MODULES
    for module in ("stack.l2.point_to_point", "stack.tap.linux", "stack.tap.pcap"):
        assert "stack.packet_info" in MODULES[module], module


def test_importing_stack_or_what_tapstack_run_uses_imports_no_test_tool():
    """hypothesis and pytest are the test extra: a user's ``import stack`` and ``tapstack run``
    (its CLI, loop, devices, capture, faults, trace, status line and kernel-side set-up) never
    load them, so they work where the extra is not installed."""
    code = ("import sys\n"
            "import stack, stack.cli, stack.cli.wiring, stack.runtime.loop, stack.runtime.trace\n"
            "import stack.runtime.status, stack.runtime.kernel, stack.runtime.ping\n"
            "import stack.tap.linux, stack.tap.pcap, stack.tap.fault, stack.tap.pair\n"
            "stack.cli.build_parser().parse_args(['run', '--tap', 'tap0', '--ip', '192.0.2.2/24'])\n"
            "print(sorted(m for m in sys.modules if m.split('.')[0] in {'hypothesis', 'pytest', '_pytest'}))\n")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60,
                            cwd=PACKAGE.parent, stdin=subprocess.DEVNULL)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "[]", result.stdout
