"""``--user``, ``--group``, ``--reattach``: their mistakes are one line and exit 2 before any
device is opened, and ``run --help`` names them (device behaviour: tests/root/test_lifecycle_device.py)."""

from __future__ import annotations

import pytest

from tests.cli.test_cli import assert_usage_error, tapstack

HOST = ["--tap", "tap0", "--ip", "192.0.2.2/24"]


@pytest.mark.parametrize("args, fragment", [
    (["--user", "no-such-user-here"], "--user no-such-user-here: no such user"),
    (["--user", "nobody", "--group", "no-such-group-here"], "--group no-such-group-here: no such group"),
    (["--group", "nogroup"], "--group needs --user"),
    (["--reattach", "--reattach-timeout", "soon"], "'soon' is not a number of seconds"),
    (["--reattach", "--reattach-timeout", "-1"], "must be between 0 and 3600 seconds"),
], ids=["bad-user", "bad-group", "group-alone", "timeout-garbage", "timeout-negative"])
@pytest.mark.parametrize("command", ["run", "ping"])
def test_lifecycle_mistakes_are_one_line_exit_2(command, args, fragment) -> None:
    target = ["192.0.2.1"] if command == "ping" else []
    assert_usage_error(tapstack(command, *HOST, *args, *target), fragment)


def test_run_help_names_the_lifecycle_flags() -> None:
    text = " ".join(tapstack("run", "--help").stdout.split())
    for fragment in ["--user NAME", "--group NAME", "no capabilities", "no_new_privs", "--reattach",
                     "--reattach-timeout SECONDS", "(default 60); then exit 1"]:
        assert fragment in text, fragment
