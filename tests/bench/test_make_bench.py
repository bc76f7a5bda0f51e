"""``make bench`` without root says so in one line and exits 2 before installing anything."""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]


def test_make_bench_without_root_says_so_and_creates_nothing() -> None:
    if shutil.which("make") is None:
        pytest.skip("make is not installed (apt-get install make)")
    as_nobody = []
    if os.geteuid() == 0:  # drop to nobody for the test, as a user without root would run it
        if shutil.which("setpriv") is None:
            pytest.skip("setpriv is not installed (util-linux), needed to run make as a user")
        as_nobody = ["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups"]
    directory = Path(tempfile.mkdtemp(prefix="tsk-make-bench-"))
    try:
        directory.chmod(0o755)
        for name in ("Makefile", "pyproject.toml"):
            shutil.copy(REPO / name, directory / name)
        # (Under `make test`, as .ci/run runs the suite, a nested make would print its
        # "Entering directory" lines: --no-print-directory keeps the output the user's.)
        result = subprocess.run([*as_nobody, "make", "--no-print-directory", "bench"], cwd=directory,
                                capture_output=True, text=True, timeout=60, stdin=subprocess.DEVNULL)
        assert result.returncode == 2, result.stdout + result.stderr
        assert result.stdout.splitlines() == ["make bench: needs root (it creates network namespaces and TAP/TUN "
                                              "devices): sudo make bench"]
        assert sorted(path.name for path in directory.iterdir()) == ["Makefile", "pyproject.toml"]  # no .venv
    finally:
        shutil.rmtree(directory)
