"""The public hypothesis strategies (``stack.testing.strategies``, also ``stack.strategies``) and
their entry point. Importing ``stack`` never imports this package: hypothesis is a test extra."""
