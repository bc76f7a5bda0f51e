"""What ``serve`` does around the loop: dropping privileges (``--user``, ``--group``), SIGHUP
(the capture file reopened, for log rotation) and a device that goes away (``--reattach``)."""

from __future__ import annotations

import argparse
import logging

from stack.cli.arguments import UsageError

log = logging.getLogger("stack")


# ---------------------------------------------------------------------- privileges


def resolve_credentials(args: argparse.Namespace):
    """``--user`` and ``--group`` checked before anything is opened (UsageError: exit 2)."""
    from stack.runtime.privileges import PrivilegeError, resolve

    try:
        return resolve(getattr(args, "user", None), getattr(args, "group", None))
    except PrivilegeError as error:
        raise UsageError(str(error))


def drop_privileges(credentials, device, capture=None) -> None:
    """Become ``credentials`` (the device is open, the kernel side configured); when that
    fails, the device is closed and the capture abandoned: UsageError, exit 2."""
    from stack.runtime.privileges import PrivilegeError, drop

    # What the loop and the run may still import, imported while the files are surely
    # readable (the new user may not read root's copy of the package).
    import stack.runtime.status  # noqa: F401
    import stack.runtime.trace  # noqa: F401
    try:
        drop(credentials)
    except PrivilegeError as error:
        device.close()
        if capture is not None:
            capture.abandon()
        raise UsageError(str(error))


# ---------------------------------------------------------------------- SIGHUP


def hangup_handler(capture, device):
    """What SIGHUP does with ``--pcap``: reopen FILE (a new file with a pcap header, the old one
    complete), or with ``--pcap -`` (stdout) nothing but a log line. None without ``--pcap``:
    SIGHUP keeps its default (a hung-up terminal ends tapstack)."""
    if capture is None:
        return None
    if capture.path == "-":
        return lambda: log.info("SIGHUP ignored: the capture goes to stdout, which cannot be reopened")
    return lambda: reopen_capture(capture, device)


def reopen_capture(capture, device) -> None:
    """Open ``--pcap FILE`` anew and go on capturing into it; the old file is closed complete.
    A path that cannot be opened now (moved directory, no permission after --user) leaves the
    capture in the old file, with a warning: no frame is lost either way."""
    try:
        stream = open(capture.path, "wb")
    except OSError as error:
        log.warning("SIGHUP: cannot reopen the capture %s (%s): still writing to the old file",
                    capture.path, error.strerror)
        return
    pcap = _find(device, "reopen")
    old = pcap.reopen(stream)
    capture.stream = stream
    if old is not None:
        old.close()
    log.info("SIGHUP: capture reopened: %s", capture.path)


def _find(device, attribute: str):
    """The device, or the first device it wraps (``.inner``), that has ``attribute``."""
    while not hasattr(type(device), attribute):
        device = device.inner
    return device


# ---------------------------------------------------------------------- --reattach


def reattach(args: argparse.Namespace, loop, attachment, host, gone: Exception) -> bool:
    """The device went away (``gone``): wait up to ``--reattach-timeout`` for an interface of
    its name to come back, attach to it, configure its kernel side again (``--host-ip``), and
    say so. True: go on serving; False: stopped (a signal) while waiting. Raises DeviceGone
    when it did not come back in time."""
    from stack.tap.base import DeviceError, DeviceGone
    from stack.tap.linux import interface_exists

    device = _find(attachment.device, "reattach")
    name = device.name
    old_fd = device.fileno()  # kept open: reattach() attaches it again (see there)
    timeout = args.reattach_timeout
    log.warning("%s; waiting up to %g s for %s to come back (--reattach)", gone, timeout, name)

    def back() -> bool:
        if not interface_exists(name):
            return False
        try:
            device.reattach()
        except DeviceError as error:
            log.debug("%s is back but cannot be attached yet: %s", name, error)
            return False
        return True

    if not loop.wait(back, timeout):
        if loop.stopped:
            return False
        raise DeviceGone(f"{name}: device went away and did not come back within {timeout:g} s "
                         "(--reattach-timeout)")
    loop.device_replaced(attachment, old_fd)
    host.mtu = device.mtu
    # A new interface on the other end: what we learnt about the old one's neighbours (its MAC
    # first of all) no longer holds, as Linux flushes its neighbours when a link goes down.
    host.forget_neighbours()
    if args.host_ip is not None or getattr(args, "host_ip6", None) is not None:
        from stack.cli.wiring import configure_kernel_side

        try:
            configure_kernel_side(args, name, host)
        except (DeviceError, OSError, ImportError) as error:  # e.g. no longer root after --user
            log.warning("%s: the kernel side could not be configured again (%s): configure it "
                        "yourself", name, error)
    log.warning("re-attached %s: serving again", name)
    return True

