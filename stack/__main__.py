"""``python -m stack`` is the ``tapstack`` command."""

from stack.cli import main

raise SystemExit(main())
