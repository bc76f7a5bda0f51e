"""Lab 01's checker as pytest tests: ``pytest stack/labs/01-ethernet-arp`` (the rootless way)."""

from stack.tools.lab import pytest_items

test_item = pytest_items(__file__)
