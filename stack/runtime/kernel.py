"""The kernel's side of a device: its address, its link state, and a namespace of our own.

Read first: rtnetlink(7) (RTM_NEWADDR, RTM_NEWLINK), unshare(2), network_namespaces(7). This is
what ``ip addr add``, ``ip link set up`` and ``unshare --net`` do, through pyroute2 (imported
lazily: it takes about 0.2 s and only the set-up needs it).
"""

from __future__ import annotations

import ctypes
import errno
import logging
import os
import threading
from ipaddress import IPv4Address, IPv4Interface

from stack.tap.base import DeviceError

log = logging.getLogger(__name__)

CLONE_NEWNET = 0x40000000  # include/uapi/linux/sched.h


def configure_address(ifname: str, interface: IPv4Interface, peer: IPv4Address | None = None) -> None:
    """Give the kernel side of ``ifname`` an address and bring the link up.

    ``ip addr add 192.0.2.1/24 brd + dev tap0 && ip link set tap0 up``; with ``peer`` (a TUN
    device) ``ip addr add 198.51.100.1 peer 198.51.100.2 dev tun0``. IPv6 is disabled on the
    interface first, so the kernel's router solicitations and MLD reports stay out of the trace.
    An address that is already there is fine.
    """
    from pyroute2 import IPRoute
    from pyroute2.netlink.exceptions import NetlinkError

    address = {"address": str(interface.ip), "prefixlen": interface.network.prefixlen}
    if peer is not None:
        # For a point-to-point address IFA_LOCAL is ours and IFA_ADDRESS the peer's.
        address = {"local": str(interface.ip), "address": str(peer),
                   "prefixlen": interface.network.prefixlen}
    elif interface.network.prefixlen < 31:
        # RFC 1122 §3.2.1.3: host part all ones is the directed broadcast (what ip's "brd +" sets).
        address["broadcast"] = str(interface.network.broadcast_address)
    try:
        with IPRoute() as ipr:
            found = ipr.link_lookup(ifname=ifname)
            if not found:
                raise DeviceError(f"{ifname}: no such network interface")
            disable_ipv6(ifname)
            try:
                ipr.addr("add", index=found[0], **address)
            except NetlinkError as error:
                if error.code != errno.EEXIST:
                    raise
            ipr.link("set", index=found[0], state="up")
    except NetlinkError as error:
        raise DeviceError(_netlink_failure(ifname, interface, error.code)) from None
    log.info("kernel side of %s: %s%s, up", ifname, interface, f" peer {peer}" if peer else "")


def _netlink_failure(ifname: str, interface: IPv4Interface, code: int) -> str:
    if code in (errno.EPERM, errno.EACCES):
        return f"permission denied configuring {ifname}: run as root (needs CAP_NET_ADMIN)"
    if code == errno.ENODEV:
        return f"{ifname}: no such network interface"
    return f"cannot configure {interface} on {ifname}: {os.strerror(code)}"


def disable_ipv6(ifname: str) -> None:
    """net.ipv6.conf.<ifname>.disable_ipv6 = 1, when the kernel has IPv6 at all."""
    path = f"/proc/sys/net/ipv6/conf/{ifname}/disable_ipv6"
    if not os.path.exists(path):
        return
    try:
        with open(path, "w") as file:
            file.write("1")
    except OSError as error:
        raise DeviceError(f"cannot disable IPv6 on {ifname} ({error.strerror}): run as root") from None


def enter_private_namespace() -> None:
    """Move this process into a new, empty network namespace and bring its ``lo`` up.

    unshare(2) with CLONE_NEWNET moves only the calling thread, so call it before any thread
    starts. Interfaces created afterwards live (and die) in the namespace. /sys/class/net still
    shows the old namespace until sysfs is mounted again (``ip netns exec`` does that for you).
    """
    if threading.active_count() > 1:
        raise DeviceError("enter_private_namespace() must run before any thread starts")
    libc = ctypes.CDLL(None, use_errno=True)
    if libc.unshare(CLONE_NEWNET) != 0:
        reason = os.strerror(ctypes.get_errno())
        raise DeviceError(f"cannot create a private network namespace ({reason}): run as root")

    from pyroute2 import IPRoute

    with IPRoute() as ipr:
        ipr.link("set", index=ipr.link_lookup(ifname="lo")[0], state="up")
    log.info("entered a private network namespace")
