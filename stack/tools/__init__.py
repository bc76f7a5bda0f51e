"""Tools built on the public API: explain, demo, diff (against Linux), fuzz (other stacks), lab."""
