"""Lab 02's checker as pytest tests: ``pytest stack/labs/02-ipv4-header`` (the rootless way)."""

from stack.tools.lab import pytest_items

test_item = pytest_items(__file__)
