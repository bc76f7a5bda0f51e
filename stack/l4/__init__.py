"""The transport layer: UDP (codec), later TCP. Imports the base and ``stack.l3.seam`` only."""
