"""The import rules of style.md (b), enforced by reading the source (no extra dependency).

l2 and l3 never import each other; l4 (transport) imports the base and l3's seam only, never
l2; the sans-I/O core (l2, l3, l4, node, trace, ping) imports no clock, file descriptor, socket
or randomness, and no tool, test helper or CLI; devices import only the base modules.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parent.parent / "stack"
BASE = {"stack", "stack.errors", "stack.buffers", "stack.checksum", "stack.stats", "stack.types",
        "stack.packet_info", "stack.ratelimit"}
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
            found.add(node.module)
    return found


MODULES = {module_name(p): imports(p) for p in sorted(PACKAGE.rglob("*.py"))}
#: What the core never imports: the tools built on the public API, the test helpers, the CLI.
TOOLS = {"stack.cli", "stack.demo", "stack.diff", "stack.explain", "stack.fuzz", "stack.lab",
         "stack.strategies", "stack.hypothesis_hook", "hypothesis", "pytest", "dpkt"}
#: The one l3 module the transport layer may import (style.md (b): "the l3 seam it is given").
L3_SEAM = "stack.l3.seam"
CORE = [m for m in MODULES if m.startswith(("stack.l2", "stack.l3", "stack.l4"))
        or m in {"stack.node", "stack.trace", "stack.ping", "stack.types", "stack.explain",
                 "stack.reasons"} | BASE]


def test_the_scan_sees_the_package():
    assert "stack.l2.link" in MODULES and "stack.l3.host" in MODULES
    assert "stack.l2.ethernet" in MODULES["stack.l2.link"]


@pytest.mark.parametrize("module", [m for m in MODULES if m.startswith("stack.l2")])
def test_l2_never_imports_l3(module):
    assert not {i for i in MODULES[module] if i.startswith("stack.l3")}


@pytest.mark.parametrize("module", [m for m in MODULES if m.startswith("stack.l3")])
def test_l3_never_imports_l2(module):
    assert not {i for i in MODULES[module] if i.startswith("stack.l2")}


@pytest.mark.parametrize("module", [m for m in MODULES if m.startswith("stack.l4")])
def test_l4_imports_only_the_base_and_the_l3_seam(module):
    stack_imports = {i for i in MODULES[module] if i.startswith("stack.")}
    allowed = BASE | {L3_SEAM} | {m for m in MODULES if m.startswith("stack.l4")}
    assert stack_imports <= allowed, f"{module} imports {stack_imports - allowed}"


def test_the_l4_scan_sees_the_udp_codec():
    assert "stack.l4.udp" in MODULES and L3_SEAM in MODULES["stack.l4.udp"]


@pytest.mark.parametrize("module", [m for m in CORE if m not in TOOLS])
def test_core_imports_no_tool(module):
    used = MODULES[module] | {i.split(".")[0] for i in MODULES[module]}
    assert not used & TOOLS, f"{module} imports {used & TOOLS}"


@pytest.mark.parametrize("module", CORE)
def test_core_is_sans_io(module):
    used = {i.split(".")[0] for i in MODULES[module]}
    assert not used & IO_MODULES, f"{module} imports {used & IO_MODULES}"


@pytest.mark.parametrize("module", [m for m in MODULES if m.startswith("stack.tap")])
def test_devices_know_no_protocol(module):
    stack_imports = {i for i in MODULES[module] if i.startswith("stack.")}
    allowed = BASE | {m for m in MODULES if m.startswith("stack.tap")}
    assert stack_imports <= allowed, f"{module} imports {stack_imports - allowed}"


@pytest.mark.parametrize("module", sorted(BASE - {"stack"}))
def test_base_modules_import_no_layer(module):
    stack_imports = {i for i in MODULES[module] if i.startswith("stack.")}
    assert stack_imports <= BASE


def test_only_the_loop_reads_the_clock_among_runtime_modules():
    readers = {m for m, used in MODULES.items() if "time" in used}
    assert readers <= {"stack.loop", "stack.cli", "stack.cli.wiring", "stack.cli.commands"}, readers


#: Waiting and the clock belong to the loop: a device never blocks, sleeps or asks the time.
WAITING_AND_CLOCK = {"select", "selectors", "time", "asyncio"}


@pytest.mark.parametrize("module", [m for m in MODULES if m.startswith("stack.tap")])
def test_devices_neither_wait_nor_read_the_clock(module):
    used = {i.split(".")[0] for i in MODULES[module]}
    assert not used & WAITING_AND_CLOCK, f"{module} imports {used & WAITING_AND_CLOCK}"


def test_the_packet_information_format_lives_in_one_base_module():
    """The link, the Linux device and pcap all read ``stack.packet_info``; no l2 copy."""
    assert "stack.l2.packet_info" not in MODULES
    for module in ("stack.l2.point_to_point", "stack.tap.linux", "stack.tap.pcap"):
        assert "stack.packet_info" in MODULES[module], module
