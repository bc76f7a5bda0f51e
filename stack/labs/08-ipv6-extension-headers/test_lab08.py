"""Lab 08's checker as pytest tests: ``pytest stack/labs/08-ipv6-extension-headers`` (the rootless way)."""

from stack.tools.lab import pytest_items

test_item = pytest_items(__file__)
