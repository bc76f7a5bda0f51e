"""The kernel's side of a device: its address, MAC, link state, neighbours and sysctls, and a
namespace of our own. The one place the project sets the kernel up (``--host-ip``, the demo, the
lab's kernel mode, ``tapstack diff``).

Read first: rtnetlink(7) (RTM_NEWADDR, RTM_NEWLINK, RTM_NEWNEIGH), unshare(2),
network_namespaces(7), Documentation/networking/ip-sysctl.rst. This is what ``ip addr add``,
``ip link set``, ``ip neigh replace``, ``sysctl -w`` and ``unshare --net`` do, through pyroute2
(imported lazily: it takes about 0.2 s and only the set-up needs it) and /proc/sys.
"""

from __future__ import annotations

import ctypes
import errno
import logging
import os
import threading
from collections.abc import Mapping
from ipaddress import IPv4Address, IPv4Interface, IPv6Address, IPv6Interface

from stack.tap.base import DeviceError

log = logging.getLogger(__name__)

CLONE_NEWNET = 0x40000000  # include/uapi/linux/sched.h
NUD_PERMANENT = 0x80  # include/uapi/linux/neighbour.h
IFA_F_NODAD = 0x02  # include/uapi/linux/if_addr.h


def configure_address(ifname: str, interface: IPv4Interface | IPv6Interface,
                      peer: IPv4Address | IPv6Address | None = None, mac: object | None = None,
                      dad: bool = False) -> None:
    """Give the kernel side of ``ifname`` an address and bring the link up.

    ``ip addr add 192.0.2.1/24 brd + dev tap0 && ip link set tap0 up``; with ``peer`` (a TUN
    device) ``ip addr add 198.51.100.1 peer 198.51.100.2 dev tun0``; with ``mac`` (a TAP device)
    ``ip link set tap0 address 02:...`` first. IPv6 is disabled on the interface first, so the
    kernel's router solicitations and MLD reports stay out of the trace. An address that is
    already there is fine. An IPv6 address is used at once (``nodad``) unless ``dad``: then the
    kernel first probes for it (RFC 4862 5.4), and gives it up if another node has it.
    """
    from pyroute2 import IPRoute
    from pyroute2.netlink.exceptions import NetlinkError

    address: dict[str, object] = {"address": str(interface.ip), "prefixlen": interface.network.prefixlen}
    if interface.version == 6 and not dad:
        # IFA_F_NODAD: the kernel uses the address at once, rather than after its own duplicate
        # address detection (a second), so the first ping is answered.
        address["flags"] = IFA_F_NODAD
    if peer is not None:
        # For a point-to-point address IFA_LOCAL is ours and IFA_ADDRESS the peer's.
        address = {"local": str(interface.ip), "address": str(peer),
                   "prefixlen": interface.network.prefixlen}
    elif interface.version == 4 and interface.network.prefixlen < 31:
        # RFC 1122 §3.2.1.3: host part all ones is the directed broadcast (what ip's "brd +" sets).
        address["broadcast"] = str(interface.network.broadcast_address)
    try:
        with IPRoute() as ipr:
            found = ipr.link_lookup(ifname=ifname)
            if not found:
                raise DeviceError(f"{ifname}: no such network interface")
            # IPv6 stays off on the device (the kernel's router solicitations and MLD reports
            # stay out of the trace) unless an IPv6 address is asked for.
            set_ipv6(ifname, enabled=interface.version == 6)
            if mac is not None:
                ipr.link("set", index=found[0], address=str(mac))
            # Up first: an IPv6 point-to-point address added while the link is down gets no
            # route to its peer when the link comes up (seen on Linux 6.18; IPv4's does).
            ipr.link("set", index=found[0], state="up")
            try:
                ipr.addr("add", index=found[0], **address)
            except NetlinkError as error:
                if error.code != errno.EEXIST:
                    raise
    except NetlinkError as error:
        raise DeviceError(_netlink_failure(ifname, interface, error.code)) from None
    log.info("kernel side of %s: %s%s, up", ifname, interface, f" peer {peer}" if peer else "")


def configure_point_to_point(ifname: str, local: IPv4Address, peer: IPv4Address) -> None:
    """The kernel side of a TUN link: ``local`` (a /32) with ``peer`` at the other end, IPv6
    off, up (``ip addr add LOCAL peer PEER dev tun0 && ip link set tun0 up``)."""
    configure_address(ifname, IPv4Interface(f"{local}/32"), peer=peer)


def add_permanent_neighbours(ifname: str, neighbours: Mapping[IPv4Address, object]) -> None:
    """``ip neigh replace ADDRESS lladdr MAC dev IFNAME nud permanent`` for each (address, MAC).

    A permanent entry (NUD_PERMANENT) is never probed, aged out, or changed by an ARP packet
    with another sender MAC: the kernel sends to these neighbours without asking for them.
    """
    from pyroute2 import IPRoute
    from pyroute2.netlink.exceptions import NetlinkError

    try:
        with IPRoute() as ipr:
            found = ipr.link_lookup(ifname=ifname)
            if not found:
                raise DeviceError(f"{ifname}: no such network interface")
            for address, mac in neighbours.items():
                ipr.neigh("replace", dst=str(address), lladdr=str(mac), ifindex=found[0],
                          state=NUD_PERMANENT)
    except NetlinkError as error:
        raise DeviceError(_netlink_failure(ifname, "permanent neighbours", error.code)) from None


def _netlink_failure(ifname: str, what: object, code: int) -> str:
    if code in (errno.EPERM, errno.EACCES):
        return f"permission denied configuring {ifname}: run as root (needs CAP_NET_ADMIN)"
    if code == errno.ENODEV:
        return f"{ifname}: no such network interface"
    return f"cannot configure {what} on {ifname}: {os.strerror(code)}"


def write_sysctls(settings: Mapping[str, str]) -> None:
    """Set kernel parameters, ``{"net/ipv4/icmp_ratelimit": "0"}`` (``sysctl -w
    net.ipv4.icmp_ratelimit=0``): each name is a path under /proc/sys, so in a private
    namespace ``net/...`` settings are the namespace's own."""
    for name, value in settings.items():
        try:
            _write_sysctl(name, value)
        except OSError as error:
            dotted = name.replace("/", ".")
            if error.errno == errno.ENOENT:
                raise DeviceError(f"this kernel has no setting {dotted}") from None
            raise DeviceError(f"cannot set {dotted} = {value} ({error.strerror}): run as root") from None


def disable_ipv6(ifname: str) -> None:
    """net.ipv6.conf.<ifname>.disable_ipv6 = 1, when the kernel has IPv6 at all."""
    set_ipv6(ifname, enabled=False)


def set_ipv6(ifname: str, enabled: bool) -> None:
    """net.ipv6.conf.<ifname>.disable_ipv6 = 0 or 1, when the kernel has IPv6 at all."""
    name = f"net/ipv6/conf/{ifname}/disable_ipv6"
    if not os.path.exists(f"/proc/sys/{name}"):
        if enabled:
            raise DeviceError(f"cannot configure IPv6 on {ifname}: this kernel has no IPv6")
        return
    try:
        _write_sysctl(name, "0" if enabled else "1")
    except OSError as error:
        verb = "enable" if enabled else "disable"
        raise DeviceError(f"cannot {verb} IPv6 on {ifname} ({error.strerror}): run as root") from None


def _write_sysctl(name: str, value: str) -> None:
    with open(f"/proc/sys/{name}", "w") as file:
        file.write(value)


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
