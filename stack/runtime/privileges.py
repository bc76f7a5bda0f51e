"""Dropping root once the device is open: ``--user NAME`` and ``--group NAME``.

Read first: credentials(7), capabilities(7) ("Effect of user ID changes on capabilities"),
prctl(2) (PR_CAPBSET_DROP, PR_CAP_AMBIENT, PR_SET_NO_NEW_PRIVS), setgroups(2).

Order matters: the bounding and ambient sets are emptied while we still hold CAP_SETPCAP, then
the supplementary groups cleared and the group set (both need CAP_SETGID), then the user (real,
effective and saved: the kernel then clears the permitted and effective sets, as PR_SET_KEEPCAPS
is off), then the inheritable set emptied and no_new_privs set, so that nothing this process
runs can gain a privilege back (a setuid binary, file capabilities). Finally /proc/self/status
is read back: a capability left anywhere, or an id not the one asked for, is an error.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import errno
import grp
import logging
import os
import pwd
from dataclasses import dataclass

log = logging.getLogger(__name__)

# include/uapi/linux/prctl.h
PR_CAPBSET_DROP = 24
PR_SET_NO_NEW_PRIVS = 38
PR_CAP_AMBIENT = 47
PR_CAP_AMBIENT_CLEAR_ALL = 4
# include/uapi/linux/capability.h
LINUX_CAPABILITY_VERSION_3 = 0x20080522
#: The capability sets /proc/PID/status shows; every one must be empty once dropped.
CAPABILITY_SETS = ("CapInh", "CapPrm", "CapEff", "CapBnd", "CapAmb")


class PrivilegeError(Exception):
    """Credentials that cannot be had or dropped; the message is one line for the user."""


@dataclass(frozen=True, slots=True)
class Credentials:
    """Whom to become: a user and a group, by name and number."""

    user: str
    uid: int
    group: str
    gid: int


def _user(name: str) -> pwd.struct_passwd:
    try:
        return pwd.getpwnam(name)
    except KeyError:
        pass
    if name.isdigit():
        try:
            return pwd.getpwuid(int(name))
        except KeyError:
            pass
    raise PrivilegeError(f"--user {name}: no such user")


def _group(name: str) -> grp.struct_group:
    try:
        return grp.getgrnam(name)
    except KeyError:
        pass
    if name.isdigit():
        try:
            return grp.getgrgid(int(name))
        except KeyError:
            pass
    raise PrivilegeError(f"--group {name}: no such group")


def resolve(user: str | None, group: str | None) -> Credentials | None:
    """The credentials ``--user`` and ``--group`` name (None when neither is given), checked
    before anything is opened: the names exist, and we are root, able to become them."""
    if user is None:
        if group is not None:
            raise PrivilegeError("--group needs --user: dropping to a group alone would keep "
                                 "root's user and its capabilities")
        return None
    entry = _user(user)
    if group is None:
        gid = entry.pw_gid  # the user's own group, as su and setpriv --init-groups do
        try:
            group_name = grp.getgrgid(gid).gr_name
        except KeyError:
            group_name = str(gid)
    else:
        group_entry = _group(group)
        gid, group_name = group_entry.gr_gid, group_entry.gr_name
    if os.geteuid() != 0:
        raise PrivilegeError(f"--user {user}: only root can change user (tapstack runs as uid "
                             f"{os.geteuid()}); run as root, or leave out --user and run as "
                             f"that user on a device it owns (ip tuntap add ... user NAME)")
    return Credentials(entry.pw_name, entry.pw_uid, group_name, gid)


def _libc() -> ctypes.CDLL:
    return ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)


def _prctl(libc: ctypes.CDLL, option: int, argument: int, third: int = 0) -> None:
    if libc.prctl(option, ctypes.c_ulong(argument), ctypes.c_ulong(third), ctypes.c_ulong(0),
                  ctypes.c_ulong(0)) != 0:
        error = ctypes.get_errno()
        raise PrivilegeError(f"prctl({option}, {argument}) failed: {os.strerror(error)}")


class _CapabilityHeader(ctypes.Structure):
    _fields_ = [("version", ctypes.c_uint32), ("pid", ctypes.c_int)]


class _CapabilityData(ctypes.Structure):
    _fields_ = [("effective", ctypes.c_uint32), ("permitted", ctypes.c_uint32),
                ("inheritable", ctypes.c_uint32)]


def _clear_capabilities(libc: ctypes.CDLL) -> None:
    """capset(2) with every set empty (version 3: two 32-bit halves)."""
    header = _CapabilityHeader(LINUX_CAPABILITY_VERSION_3, 0)
    data = (_CapabilityData * 2)()
    if libc.capset(ctypes.byref(header), data) != 0:
        raise PrivilegeError(f"capset failed: {os.strerror(ctypes.get_errno())}")


def _last_capability() -> int:
    try:
        with open("/proc/sys/kernel/cap_last_cap") as file:
            return int(file.read())
    except (OSError, ValueError):
        return 63  # every bit the 64-bit sets can hold (``check`` reads the result back)


def status_fields(pid: int | str = "self") -> dict[str, str]:
    """/proc/PID/status as a dict: ``CapEff``, ``Uid`` ("real effective saved fs"), ``Groups``..."""
    fields = {}
    with open(f"/proc/{pid}/status") as file:
        for line in file:
            key, _, value = line.partition(":")
            fields[key] = value.strip()
    return fields


def drop(credentials: Credentials) -> None:
    """Become ``credentials`` for good, with no capability left (see the module docstring)."""
    libc = _libc()
    for capability in range(_last_capability() + 1):
        if libc.prctl(PR_CAPBSET_DROP, ctypes.c_ulong(capability), ctypes.c_ulong(0),
                      ctypes.c_ulong(0), ctypes.c_ulong(0)) != 0:
            error = ctypes.get_errno()
            if error != errno.EINVAL:  # EINVAL: a capability this kernel does not know
                raise PrivilegeError(f"cannot drop capability {capability} from the bounding "
                                     f"set: {os.strerror(error)}")
    _prctl(libc, PR_CAP_AMBIENT, PR_CAP_AMBIENT_CLEAR_ALL)
    try:
        os.setgroups([])
        os.setresgid(credentials.gid, credentials.gid, credentials.gid)
        os.setresuid(credentials.uid, credentials.uid, credentials.uid)
    except OSError as error:
        raise PrivilegeError(f"cannot become {credentials.user}:{credentials.group}: "
                             f"{error.strerror}") from None
    _clear_capabilities(libc)
    _prctl(libc, PR_SET_NO_NEW_PRIVS, 1)
    check(credentials)
    log.info("running as %s:%s (uid %d, gid %d), no capabilities, no supplementary groups",
             credentials.user, credentials.group, credentials.uid, credentials.gid)


def check(credentials: Credentials) -> None:
    """What the kernel says of this process matches ``credentials`` and holds no capability."""
    fields = status_fields()
    left = [name for name in CAPABILITY_SETS if name in fields and int(fields[name], 16) != 0]
    if left:
        raise PrivilegeError("capabilities left after dropping privileges: "
                             + ", ".join(f"{name} {fields[name]}" for name in left))
    if set(fields["Uid"].split()) != {str(credentials.uid)} or \
            set(fields["Gid"].split()) != {str(credentials.gid)} or fields.get("Groups", ""):
        raise PrivilegeError(f"credentials after dropping privileges are not {credentials.user}:"
                             f"{credentials.group}: Uid {fields['Uid']}, Gid {fields['Gid']}, "
                             f"Groups {fields.get('Groups', '')}")
