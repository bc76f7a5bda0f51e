"""The suite's hypothesis strategies: the public ``stack.strategies`` (kept importable here)."""

from stack.strategies import *  # noqa: F401,F403
from stack.strategies import __all__  # noqa: F401
