"""Lab 06's checker as pytest tests: ``pytest stack/labs/06-icmp-timestamp`` (the rootless way)."""

from stack.tools.lab import pytest_items

test_item = pytest_items(__file__)
