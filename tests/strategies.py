"""The suite's hypothesis strategies: the public ``stack.testing.strategies`` (kept importable here)."""

from stack.testing.strategies import *  # noqa: F401,F403
from stack.testing.strategies import __all__  # noqa: F401
