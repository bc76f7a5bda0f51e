"""``--user``/``--group``: names checked before anything is opened, and the drop itself (in a
forked child, so this process keeps its privileges), read back from /proc/PID/status."""

from __future__ import annotations

import grp
import json
import os
import pwd

import pytest

from stack.runtime.privileges import CAPABILITY_SETS, Credentials, PrivilegeError, drop, resolve, status_fields


def test_neither_flag_means_no_change():
    assert resolve(None, None) is None


@pytest.mark.parametrize("user, group, message", [
    ("no-such-user-here", None, "--user no-such-user-here: no such user"),
    ("nobody", "no-such-group-here", "--group no-such-group-here: no such group"),
    (None, "nogroup", "--group needs --user"),
], ids=["bad-user", "bad-group", "group-alone"])
def test_bad_names_are_one_clear_line(user, group, message):
    with pytest.raises(PrivilegeError, match=message):
        resolve(user, group)


@pytest.mark.skipif(os.geteuid() != 0, reason="resolving for a change of user needs root")
def test_the_user_s_own_group_by_default_or_the_one_named():
    nobody = pwd.getpwnam("nobody")
    assert resolve("nobody", None) == Credentials("nobody", nobody.pw_uid,
                                                  grp.getgrgid(nobody.pw_gid).gr_name, nobody.pw_gid)
    root_group = grp.getgrgid(0).gr_name
    assert resolve(str(nobody.pw_uid), root_group) == Credentials("nobody", nobody.pw_uid, root_group, 0)


@pytest.mark.skipif(os.geteuid() == 0, reason="checks the refusal of a user that is not root")
def test_not_root_is_refused():
    with pytest.raises(PrivilegeError, match="only root can change user"):
        resolve("nobody", None)


@pytest.mark.skipif(os.geteuid() != 0, reason="dropping privileges needs root")
def test_drop_leaves_no_capability_no_group_and_no_new_privileges():
    credentials = resolve("nobody", None)
    reader, writer = os.pipe()
    child = os.fork()
    if child == 0:  # the child drops, reports, and exits without running pytest's teardown
        try:
            os.close(reader)
            drop(credentials)
            report = status_fields()
        except BaseException as error:
            report = {"error": repr(error)}
        os.write(writer, json.dumps(report).encode())
        os._exit(0)
    os.close(writer)
    with os.fdopen(reader) as pipe:
        report = json.loads(pipe.read())
    os.waitpid(child, 0)
    assert "error" not in report, report
    for name in CAPABILITY_SETS:
        assert int(report[name], 16) == 0, (name, report[name])
    assert report["Uid"].split() == [str(credentials.uid)] * 4
    assert report["Gid"].split() == [str(credentials.gid)] * 4
    assert report["Groups"] == "" and report["NoNewPrivs"] == "1"
