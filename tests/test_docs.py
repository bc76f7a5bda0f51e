"""Every command in the README and in docs/ runs as written.

Each fenced ``sh`` or ``python`` block carries an HTML comment on the line above it that says how
it runs (``<!-- runs: KIND -->``):
- ``user``: as it is, as whoever runs the tests;
- ``root``: as root, in a private network namespace made for it (``unshare --net --mount``) and
  gone when it ends, so its devices, addresses and traffic never touch this machine's network;
- ``python``: the block is a Python program; ``pytest``: the block is a test file, run by pytest;
- ``quick-start``: the README's two commands: ``make demo`` is run, ``make test`` is this suite
  (``.ci/run`` must call it);
- ``install``: installs Debian packages; not run here, but ``.ci/run`` must install the same ones.
Each block runs in a temporary directory that holds links to the clone's top-level entries (so
``stack/labs/...`` and ``bench/...`` resolve and nothing is written into the clone), with
``tapstack`` and ``python`` on ``PATH`` meaning this interpreter and this tree. A block that
names ``ping``, ``arping``, ``nmap``, ``tshark``, ``traceroute`` or ``curl``, or says so (``<!-- runs: root, needs ping -->``:
a command that runs the tool itself), needs that tool (skipped without it, failed in CI); every background job a block starts is ended with its process group.
"""

from __future__ import annotations

import functools
import os
import re
import shlex
import signal
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
DOCUMENTS = [REPO / "README.md", *sorted((REPO / "docs").glob("*.md"))]
KINDS = {"user", "root", "python", "pytest", "quick-start", "install"}
TOOLS = ("ping", "arping", "nmap", "tshark", "traceroute", "curl")
#: No block runs longer than this (``tapstack diff`` with its default count is the longest).
BLOCK_TIMEOUT_S = 240

_BLOCK = re.compile(r"(?:<!-- runs: (?P<kind>[a-z-]+)(?:, needs (?P<needs>[a-z ]+))? -->\n)?"
                    r"```(?P<language>sh|python)\n(?P<body>.*?)```", re.S)


@dataclass(frozen=True)
class Block:
    document: Path
    line: int
    kind: str | None
    language: str
    body: str
    needs: tuple[str, ...] = ()

    @property
    def id(self) -> str:
        return f"{self.document.relative_to(REPO)}:{self.line}"

    def tools(self) -> list[str]:
        words = set(re.findall(r"(?m)(?:^|[|;&(]\s*|\$\()\s*([a-z-]+)", self.body)) | set(self.needs)
        return [tool for tool in TOOLS if tool in words]


@functools.cache
def blocks() -> tuple[Block, ...]:
    """Every command block of the README and docs/ (read once per session)."""
    found = []
    for document in DOCUMENTS:
        text = document.read_text()
        for match in _BLOCK.finditer(text):
            line = text.count("\n", 0, match.start("language")) + 1
            found.append(Block(document, line, match.group("kind"), match.group("language"),
                               match.group("body"), tuple((match.group("needs") or "").split())))
    return tuple(found)


def of_kind(*kinds: str) -> list:
    params = []
    for block in blocks():
        if block.kind not in kinds:
            continue
        marks = [pytest.mark.tools(*block.tools())] if block.tools() else []
        if block.kind == "root":
            marks.append(pytest.mark.device)
        params.append(pytest.param(block, id=block.id, marks=marks))
    return params


def test_every_block_says_how_it_runs():
    unmarked = [f"{b.id} ({b.language})" for b in blocks() if b.kind not in KINDS]
    assert not unmarked, f"blocks without a known '<!-- runs: KIND -->' line above them: {unmarked}"
    assert len(blocks()) > 15  # the parser found the blocks at all


def workspace(tmp_path: Path) -> tuple[Path, dict[str, str]]:
    """A directory beside a view of the clone, and an environment with our tapstack and python."""
    for entry in REPO.iterdir():
        if entry.name not in {".git", ".venv", ".hypothesis", ".pytest_cache"}:
            (tmp_path / entry.name).symlink_to(entry)
    bin_directory = tmp_path / ".bin"
    bin_directory.mkdir()
    for name, command in {"tapstack": f"{sys.executable} -m stack", "python": sys.executable}.items():
        shim = bin_directory / name
        shim.write_text(f'#!/bin/sh\nexec {command} "$@"\n')
        shim.chmod(0o755)
    env = dict(os.environ, PATH=f"{bin_directory}:{os.environ.get('PATH', '/usr/bin:/bin')}",
               PYTHONPATH=str(REPO))
    env.pop("TAPSTACK_LABS", None)
    return tmp_path, env


def run_in_group(argv: list[str], cwd: Path, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    """Run argv in a process group of its own; end whatever it left running, by that group."""
    process = subprocess.Popen(argv, cwd=cwd, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                               stdin=subprocess.DEVNULL, text=True, start_new_session=True)
    try:
        output, _ = process.communicate(timeout=BLOCK_TIMEOUT_S)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        output, _ = process.communicate()
        pytest.fail(f"still running after {BLOCK_TIMEOUT_S} s:\n{output}")
    finally:
        try:
            os.killpg(process.pid, signal.SIGTERM)  # background jobs the block did not end itself
        except ProcessLookupError:
            pass
    return subprocess.CompletedProcess(argv, process.returncode, output, "")


def assert_ran(block: Block, result: subprocess.CompletedProcess[str]) -> None:
    assert result.returncode == 0, f"{block.id} exited {result.returncode}:\n{block.body}\n---\n{result.stdout}"
    assert "Traceback" not in result.stdout, f"{block.id}:\n{result.stdout}"


@pytest.mark.parametrize("block", of_kind("user"))
def test_a_user_block_runs_as_written(block: Block, tmp_path: Path) -> None:
    cwd, env = workspace(tmp_path)
    assert_ran(block, run_in_group(["bash", "-euo", "pipefail", "-c", block.body], cwd, env))


@pytest.mark.parametrize("block", of_kind("root"))
def test_a_root_block_runs_as_written_in_a_private_namespace(block: Block, tmp_path: Path) -> None:
    cwd, env = workspace(tmp_path)
    argv = ["unshare", "--net", "--mount", "bash", "-euo", "pipefail", "-c", block.body]
    assert_ran(block, run_in_group(argv, cwd, env))


@pytest.mark.parametrize("block", of_kind("python"))
def test_a_python_block_runs_as_written(block: Block, tmp_path: Path) -> None:
    cwd, env = workspace(tmp_path)
    assert_ran(block, run_in_group([sys.executable, "-c", block.body], cwd, env))


@pytest.mark.parametrize("block", of_kind("pytest"))
def test_a_test_file_block_passes(block: Block, tmp_path: Path) -> None:
    cwd, env = workspace(tmp_path)
    (cwd / "test_from_the_docs.py").write_text(block.body)
    result = run_in_group([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "--rootdir", str(cwd),
                           "-c", os.devnull, "test_from_the_docs.py"], cwd, env)
    assert_ran(block, result)
    assert re.search(r"\d+ passed", result.stdout), result.stdout


def quick_start() -> list[str]:
    (block,) = [b for b in blocks() if b.kind == "quick-start"]
    return [line.split("#", 1)[0].strip() for line in block.body.splitlines() if line.strip()]


def test_the_quick_start_is_two_commands_and_ci_runs_its_test_command():
    commands = quick_start()
    assert len(commands) == 2, commands
    demo, test = commands
    assert demo == "make demo", demo
    ci = (REPO / ".ci" / "run").read_text()
    assert re.search(rf"(?m)^{re.escape(test)}$", ci), f".ci/run does not call the README's {test!r}"


def test_ci_installs_the_packages_the_docs_tell_root_to_install():
    (block,) = [b for b in blocks() if b.kind == "install"]
    named = set(shlex.split(block.body.split("apt-get install", 1)[1].split("\n", 1)[0]))
    ci = (REPO / ".ci" / "run").read_text()
    listed = set(re.search(r"packages=\(([^)]*)\)", ci).group(1).split())
    assert named <= listed, f".ci/run does not install {named - listed}"


@pytest.mark.skipif(not (REPO / ".venv" / ".installed").exists(),
                    reason="make demo is run when the suite runs under make (its .venv exists)")
def test_make_demo_runs_and_every_ping_is_answered() -> None:
    env = {k: v for k, v in os.environ.items() if k not in {"MAKEFLAGS", "MAKELEVEL", "MFLAGS"}}
    result = run_in_group(["make", "--no-print-directory", "demo"], REPO, env)
    assert result.returncode == 0, result.stdout
    assert re.search(r"every ping( and arping)? was answered", result.stdout), result.stdout
