"""Lab 03's checker as pytest tests: ``pytest stack/labs/03-icmp-echo`` (the rootless way)."""

from stack.tools.lab import pytest_items

test_item = pytest_items(__file__)
