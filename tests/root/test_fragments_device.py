"""What Linux does with fragment trains, checked on the running kernel (issue 13): the kernel owns
192.0.2.2 on a TAP device in a private namespace (tests/root/device_scenarios.py
``empty_fragments``); tapstack's reassembler follows it (tests/core/test_fragments_and_errors.py)."""

from __future__ import annotations

import pytest

from tests.root.test_linux import run_scenario

pytestmark = pytest.mark.device


def test_linux_reassembles_around_an_empty_fragment(netns: str) -> None:
    assert run_scenario(netns, "empty_fragments") == {"plain": 1, "empty_at_8": 1, "empty_at_0": 1}
