"""``tapstack diff`` and ``tapstack fuzz`` against the real Linux kernel, each in a private
network namespace (diff makes its own with unshare; fuzz runs in one the test creates)."""

from __future__ import annotations

import re
import subprocess
import sys

import pytest

from tests.test_cli_device import REPO, stack_env, tapstack

pytestmark = pytest.mark.device

#: Frames compared in CI; ``tapstack diff --examples N`` runs as many as a user asks.
CI_EXAMPLES = 400


@pytest.mark.parametrize("device", [[], ["--tun"]], ids=["tap", "tun"])
def test_tapstack_answers_every_generated_frame_as_linux_does(device: list[str]) -> None:
    result = subprocess.run(
        ["unshare", "--net", "--mount", sys.executable, "-m", "stack", "diff", *device, "--examples",
         str(CI_EXAMPLES), "--seed", "1", "-q"],
        cwd=REPO, env=stack_env(), capture_output=True, text=True, timeout=300, stdin=subprocess.DEVNULL)
    assert result.returncode == 0, result.stdout + result.stderr
    summary = re.search(r"(\d+) frames: (\d+) agree with Linux, (\d+) differ deliberately .*, 0 disagree",
                        result.stdout)
    assert summary, result.stdout
    compared, agreed = int(summary.group(1)), int(summary.group(2))
    # Duplicates count once; over TUN, ARP frames are not drawn.
    assert compared > CI_EXAMPLES * 0.5 and agreed > compared * 0.75, result.stdout


def test_fuzzing_the_kernel_finds_it_answering_throughout(netns: str) -> None:
    result = tapstack(netns, "fuzz", "--tap", "tap0", "--ip", "192.0.2.2/24", "--host-ip", "192.0.2.1/24",
                      "--target", "192.0.2.1", "--examples", "300", "--batch", "50", "--seed", "2")
    assert result.returncode == 0, result.stdout + result.stderr
    assert "300 frames in 6 batches: the target answered ping after every batch" in result.stdout


def test_fuzz_refuses_a_target_that_does_not_answer(netns: str) -> None:
    result = tapstack(netns, "fuzz", "--tap", "tap0", "--ip", "192.0.2.2/24", "--host-ip", "192.0.2.1/24",
                      "--target", "192.0.2.9", "--examples", "10")
    assert result.returncode == 1
    assert "192.0.2.9 does not answer ping" in result.stderr
