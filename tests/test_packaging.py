"""tapstack installs as a package that works outside the clone: the labs ship inside it, the
version is the distribution's, and the metadata builds without warnings."""

from __future__ import annotations

import os
import subprocess
import sys
import tomllib
import zipfile
from pathlib import Path

import pytest

from tests.tools.test_labs import LABS

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def wheel(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A wheel built from the clone as pip builds it (in an isolated build environment)."""
    out = tmp_path_factory.mktemp("wheel")
    result = subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "-w", str(out), str(REPO)],
                            capture_output=True, text=True, timeout=300, stdin=subprocess.DEVNULL)
    if result.returncode != 0 and "No matching distribution found for setuptools" in result.stderr:
        pytest.skip("pip cannot reach a package index to build the wheel with")
    assert result.returncode == 0, result.stdout + result.stderr
    assert "Deprecat" not in result.stdout + result.stderr, result.stdout + result.stderr
    (found,) = out.glob("tapstack-*.whl")
    return found


def test_the_wheel_ships_every_lab_with_its_worksheet_checker_and_answers(wheel: Path) -> None:
    names = set(zipfile.ZipFile(wheel).namelist())
    labs = sorted(p.name for p in (REPO / "stack" / "labs").iterdir() if p.is_dir() and p.name[:2].isdigit())
    assert [lab[:2] for lab in labs] == LABS
    for lab in labs:
        assert {f"stack/labs/{lab}/README.md", f"stack/labs/{lab}/check.py"} <= names, lab
        if (REPO / "stack" / "labs" / lab / "answers.toml").is_file():
            assert f"stack/labs/{lab}/answers.toml" in names, lab
    assert "stack/labs/02-ipv4-header/answers.toml" in names
    assert "stack/labs/07-ipv6-nd/answers.toml" in names


def test_installed_outside_the_clone_the_labs_and_the_version_work(wheel: Path, tmp_path: Path) -> None:
    target = tmp_path / "site"
    subprocess.run([sys.executable, "-m", "pip", "install", "--no-deps", "--quiet", "--target", str(target),
                    str(wheel)], check=True, capture_output=True, timeout=120, stdin=subprocess.DEVNULL)
    env = {**os.environ, "PYTHONPATH": str(target)}
    env.pop("TAPSTACK_LABS", None)

    def tapstack(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([sys.executable, "-m", "stack", *args], cwd=tmp_path, env=env,
                              capture_output=True, text=True, timeout=120, stdin=subprocess.DEVNULL)

    listed = tapstack("lab", "list")
    assert listed.returncode == 0 and str(target / "stack" / "labs") in listed.stdout, listed.stdout + listed.stderr
    checked = tapstack("lab", "check", "01")
    assert checked.returncode == 0 and "0 failed" in checked.stdout, checked.stdout + checked.stderr
    version = tapstack("--version")
    declared = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]["version"]
    assert version.stdout.strip() == f"tapstack {declared}", version.stdout + version.stderr
