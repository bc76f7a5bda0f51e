"""Lab 04's checker as pytest tests: ``pytest stack/labs/04-fragmentation`` (the rootless way)."""

from stack.tools.lab import pytest_items

test_item = pytest_items(__file__)
