"""The ``tapstack`` command: ``run`` a host on a TAP or TUN device, ``ping`` from one, ``explain`` a
frame, the ``demo``, ``diff`` against Linux, ``fuzz`` another stack, and the ``lab`` checkers.

Bad input from the user (flags, addresses, files, a missing device, no permission) gets one line
on stderr and exit status 2; never a traceback. Traces go to stdout, logs and counters to stderr.
``arguments`` holds the words, ``wiring`` builds and runs the parts, ``commands`` the subcommands.
"""

from __future__ import annotations

import sys

from stack.cli.arguments import EXIT_OK, EXIT_USAGE, UsageError, build_parser, host_addresses, split_host_ips
from stack.cli.commands import COMMANDS
from stack.cli.wiring import configure_logging, kernel_side_warning, make_host

__all__ = ["build_parser", "host_addresses", "kernel_side_warning", "main", "make_host"]


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    configure_logging(args)
    try:
        split_host_ips(args)
        return COMMANDS[args.command](args)
    except UsageError as error:
        print(f"tapstack: error: {error}", file=sys.stderr)
        return EXIT_USAGE
    except KeyboardInterrupt:
        return EXIT_OK
    except BrokenPipeError:
        return EXIT_OK
