"""The public hypothesis strategies, under their published name: see ``stack.testing.strategies``.

Importing this module imports hypothesis (the ``test`` extra); ``import stack`` never does.
"""

from stack.testing.strategies import *  # noqa: F403
from stack.testing.strategies import __all__  # noqa: F401
