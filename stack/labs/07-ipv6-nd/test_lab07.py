"""Lab 07's checker as pytest tests: ``pytest stack/labs/07-ipv6-nd`` (the rootless way)."""

from stack.tools.lab import pytest_items

test_item = pytest_items(__file__)
