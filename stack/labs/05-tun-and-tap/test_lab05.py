"""Lab 05's checker as pytest tests: ``pytest stack/labs/05-tun-and-tap`` (the rootless way)."""

from stack.tools.lab import pytest_items

test_item = pytest_items(__file__)
