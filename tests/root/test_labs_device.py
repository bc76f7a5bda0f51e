"""Every lab's checker the kernel way: against the Linux kernel in a private namespace (root).

Split from ``tests/tools/test_labs.py`` (root-only tests live in ``tests/root``)."""

from __future__ import annotations

import pytest

from tests.tools.test_labs import KEY, LABS, tapstack, toml


@pytest.mark.device
@pytest.mark.parametrize("number", LABS)
@pytest.mark.tools("ping")
def test_the_kernel_way_passes_with_the_right_answers(number, tmp_path):
    answers = tmp_path / "answers.toml"
    answers.write_text(toml(KEY[number]))
    extra = ["--solution"] if number == "06" else []
    result = tapstack("lab", "check", number, "--kernel", "--answers", str(answers), *extra)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "Linux kernel in a private network namespace" in result.stdout
    assert result.stdout.rstrip().endswith("lab complete"), result.stdout
