"""TAP and TUN devices: the Linux kernel's network stack on the other end of a file descriptor.

Read first: Documentation/networking/tuntap.rst; drivers/net/tun.c (tun_set_iff, tun_get_user,
tun_do_read). A TAP device carries Ethernet frames, a TUN device bare IP packets; either way one
read returns exactly one frame and one write sends exactly one frame.

What the kernel does (measured on Linux 6.18 in a private namespace, 2026):

- the interface is down: reads find nothing (EAGAIN; frames queued before it went down can still
  be read), writes fail with EIO (tun_get_user: ``!(dev->flags & IFF_UP)`` -> -EIO);
- the interface is deleted while attached (``ip link del``): the fd becomes readable and every
  read and write fails with EBADFD;
- multi-queue (IFF_MULTI_QUEUE, ``tapstack run --queues N``): every fd attached with the flag is
  one more queue of the same interface (``ip -d link`` shows ``multi_queue numqueues N``);
  attaching with the flag to an interface created without it, or without it to one created
  with it, fails with EINVAL (tun_set_iff), for TAP and TUN, with and without packet information;
- reads never failed with EIO; a TAP write shorter than 14 bytes, or a TUN write that does not
  start with IP version 4 or 6, fails with EINVAL; a TAP write larger than the MTU is accepted.
"""

from __future__ import annotations

import errno
import fcntl
import logging
import os
import platform
import socket
import struct
from collections.abc import Sequence
from typing import Self

from stack.buffers import Buffer
from stack.packet_info import HEADER_LENGTH as PACKET_INFO_LENGTH
from stack.packet_info import is_truncated
from stack.stats import Stats
from stack.tap.base import Device, DeviceError, DeviceGone, Medium

log = logging.getLogger(__name__)

CLONE_DEVICE = "/dev/net/tun"

# include/uapi/linux/if_tun.h
IFF_TUN = 0x0001
IFF_TAP = 0x0002
IFF_MULTI_QUEUE = 0x0100
IFF_NO_PI = 0x1000


def _tunsetiff() -> int:
    """TUNSETIFF is _IOW('T', 202, int); the "write" direction bit differs between architectures."""
    if platform.machine().startswith(("ppc", "powerpc", "mips", "sparc", "alpha")):
        return 0x800454CA
    return 0x400454CA


TUNSETIFF = _tunsetiff()
SIOCGIFMTU = 0x8921
SIOCGIFFLAGS = 0x8913  # <linux/sockios.h>
IFF_UP = 0x1  # <linux/if.h>

#: struct ifreq as TUNSETIFF reads it: the interface name, then the flags (a short).
IFREQ_FLAGS = struct.Struct("16sH")
#: struct ifreq as SIOCGIFMTU fills it: the interface name, then the MTU (an int).
IFREQ_MTU = struct.Struct("16si")
IFNAMSIZ = 16

ETHERNET_HEADER_LEN = 14
#: Headroom for one 802.1Q tag, so a tagged full-size frame is not mistaken for a truncated one.
VLAN_TAG_LEN = 4
#: One byte more than the largest frame: a read that fills the buffer was certainly truncated.
SPARE_LEN = 1

#: Frames one ``recv`` may drop (truncated) before it gives the loop its turn back.
DROPS_PER_RECV = 64

#: A read or write failing with one of these means the interface is gone for good.
GONE_ERRNOS = {errno.EBADFD, errno.ENODEV, errno.ENXIO}
#: A write failing with one of these drops that frame only; the counter says why.
TX_ERROR_COUNTERS = {
    errno.ENOBUFS: "tx_enobufs",
    errno.EIO: "tx_link_down",  # the interface is down (measured, see the module docstring)
    errno.EINVAL: "tx_einval",  # too short for Ethernet, or not IPv4/IPv6 on a TUN device
}


def check_name(name: str) -> None:
    """Refuse a name the kernel would refuse, before touching the kernel.

    net/core/dev.c dev_valid_name: not empty, shorter than IFNAMSIZ (16, with the NUL), not "."
    or "..", and without '/', ':' or whitespace.
    """
    if not name:
        raise DeviceError("the device name is empty")
    if len(name.encode()) >= IFNAMSIZ:
        raise DeviceError(f"device name {name!r} is too long: at most {IFNAMSIZ - 1} bytes")
    if name in (".", "..") or any(c in "/:" or c.isspace() for c in name):
        raise DeviceError(f"device name {name!r} is not valid: no '/', ':' or whitespace")


def interface_mtu(name: str) -> int:
    """The MTU of interface ``name`` in this namespace (SIOCGIFMTU): the largest IP packet."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        reply = fcntl.ioctl(sock, SIOCGIFMTU, IFREQ_MTU.pack(name.encode(), 0))
    return IFREQ_MTU.unpack(reply)[1]


def interface_is_up(name: str) -> bool:
    """Whether interface ``name`` is administratively up (SIOCGIFFLAGS, IFF_UP), in this namespace."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        reply = fcntl.ioctl(sock, SIOCGIFFLAGS, IFREQ_FLAGS.pack(name.encode(), 0))
    return bool(IFREQ_FLAGS.unpack(reply)[1] & IFF_UP)


def interface_exists(name: str) -> bool:
    """Whether this network namespace has an interface called ``name``.

    Asks the kernel by socket ioctl rather than looking at /sys/class/net: sysfs shows the
    namespace it was mounted in, which after ``unshare --net`` is still the old one.
    """
    try:
        socket.if_nametoindex(name)
    except OSError:
        return False
    return True


def _tun_flags(name: str) -> int | None:
    """/sys/class/net/<name>/tun_flags: 0 when it is no TUN/TAP device, None when sysfs cannot tell."""
    sysfs = f"/sys/class/net/{name}"
    try:
        with open(f"{sysfs}/ifindex") as file:
            if int(file.read()) != socket.if_nametoindex(name):
                return None  # sysfs shows another namespace's interface of that name
        with open(f"{sysfs}/tun_flags") as file:
            return int(file.read(), 16)
    except FileNotFoundError:
        return 0 if os.path.exists(sysfs) else None
    except (OSError, ValueError):
        return None


class _LinuxDevice(Device):
    """What TAP and TUN devices share: attaching, the receive buffer, readv and writev."""

    medium: Medium
    kind: str  # "TAP" or "TUN", for messages
    #: Bytes in front of the frame we return: the packet-information header, if any.
    prefix_len = 0
    #: Bytes of link-layer header in a frame (Ethernet on TAP, none on TUN).
    link_header_len = 0

    def __init__(self, name: str, flags: int, multi_queue: bool = False) -> None:
        check_name(name)
        #: One queue of a multi-queue interface (IFF_MULTI_QUEUE): open one device per queue.
        self.multi_queue = multi_queue
        if multi_queue:
            flags |= IFF_MULTI_QUEUE
        #: True when this open created the interface (it goes away when we close it).
        self.created = not interface_exists(name)
        self._fd = -1
        self._flags = flags
        self._fd, self.name = self._attach(name, flags)
        try:
            self.mtu = interface_mtu(self.name)
        except OSError as error:
            self.close()
            raise DeviceError(f"{self.name}: cannot read the MTU ({error.strerror})") from None
        self.stats = Stats()
        #: The counters themselves: a frame's few increments go straight to them (per frame, a
        #: method call costs more than the addition).
        self._counters = self.stats.counters
        self._allocate()
        log.info("attached %s %s (%s, mtu %d)", self.kind, self.name,
                 "created" if self.created else "existing", self.mtu)

    def _attach(self, name: str, flags: int) -> tuple[int, str]:
        """Open the clone device and bind it to interface ``name``; the fd and the kernel's name."""
        try:
            fd = os.open(CLONE_DEVICE, os.O_RDWR | os.O_NONBLOCK | os.O_CLOEXEC)
        except FileNotFoundError:
            raise DeviceError(f"{CLONE_DEVICE} does not exist: load the tun module (modprobe tun)") from None
        except OSError as error:
            if error.errno in (errno.EACCES, errno.EPERM):
                raise DeviceError(self._permission_denied(name, CLONE_DEVICE)) from None
            raise DeviceError(f"cannot open {CLONE_DEVICE} ({error.strerror}): "
                              "load the tun module (modprobe tun)") from None
        try:
            reply = fcntl.ioctl(fd, TUNSETIFF, IFREQ_FLAGS.pack(name.encode(), flags))
        except OSError as error:
            os.close(fd)
            raise DeviceError(self._attach_failure(name, error)) from None
        # The kernel writes back the interface's name (it fills in templates such as "tap%d").
        return fd, IFREQ_FLAGS.unpack(reply)[0].rstrip(b"\0").decode()

    def _attach_failure(self, name: str, error: OSError) -> str:
        """One actionable line for a failed TUNSETIFF."""
        if error.errno == errno.EPERM:
            # tun_set_iff: creating needs CAP_NET_ADMIN; attaching needs it or the device's owner.
            return self._permission_denied(name, name)
        if error.errno == errno.EBUSY:
            return f"{name} is already attached by another process (or another device object)"
        if error.errno == errno.EINVAL:
            # tun_set_iff: an existing interface of the wrong kind is EINVAL.
            return self._wrong_kind(name)
        return f"cannot attach {name} as a {self.kind} device: {error.strerror}"

    def _permission_denied(self, name: str, opening: str) -> str:
        advice = (f"run as root, or create a persistent device you own: "
                  f"sudo ip tuntap add dev {name} mode {self.kind.lower()} user $USER")
        if opening == CLONE_DEVICE:
            advice += f" (and sudo chmod 0666 {CLONE_DEVICE}, its usual mode)"
        return f"permission denied opening {opening}: {advice}"

    def _wrong_kind(self, name: str) -> str:
        flags = _tun_flags(name)
        if flags is None:
            return f"{name} exists and cannot be attached as a {self.kind} device: pick another name"
        if flags == 0:
            return f"{name} exists and is not a TUN/TAP device: pick another name"
        actual = "TUN" if flags & IFF_TUN else "TAP"
        if actual != self.kind:
            return f"{name} exists as a {actual} device, not a {self.kind} device"
        # tun_set_iff: IFF_MULTI_QUEUE must match how the interface was created (EINVAL).
        if flags & IFF_MULTI_QUEUE and not self.multi_queue:
            return f"{name} is a multi-queue {actual} device: recreate it without multi_queue"
        if self.multi_queue and not flags & IFF_MULTI_QUEUE:
            return (f"{name} exists without multi_queue, so it has one queue: delete it (ip link "
                    f"del {name}) or recreate it with ip tuntap add dev {name} mode "
                    f"{actual.lower()} multi_queue")
        return f"{name} exists as a {actual} device but refused to attach (tun_flags {flags:#x})"

    # Receiving

    def _allocate(self) -> None:
        """One receive buffer for the largest frame the current MTU allows, read as two parts.

        The first iovec is the header part (the Ethernet header on TAP, packet information on
        TUN), the second the rest; both are views of the same bytearray, so the frame is
        contiguous.
        """
        head = self.prefix_len + self.link_header_len
        size = head + self.mtu + VLAN_TAG_LEN + SPARE_LEN
        self._buffer = bytearray(size)
        self._view = memoryview(self._buffer)
        self._iovec = [self._view[:head], self._view[head:]] if head else [self._view]

    def recv(self, now: float) -> memoryview | None:
        """One frame as a view of the receive buffer (valid until the next ``recv``), or None
        at once when none is waiting (the fd is non-blocking: EAGAIN)."""
        for _ in range(DROPS_PER_RECV):
            try:
                received = os.readv(self._fd, self._iovec)
            except BlockingIOError:
                return None
            except OSError as error:
                self._read_failed(error)
                return None
            frame = self._frame(received)
            if frame is not None:
                counters = self._counters
                counters["rx_frames"] += 1
                counters["rx_bytes"] += received - self.prefix_len  # as tx: no PI header
                return frame
        return None  # the fd is still readable: the loop comes back at its next wake-up

    def _frame(self, received: int) -> memoryview | None:
        """The frame in the first ``received`` bytes of the buffer, or None (counted) to drop it."""
        if received == len(self._buffer):
            self._truncated("rx_truncated")
            return None
        return self._view[:received]

    def _truncated(self, counter: str) -> None:
        """A frame did not fit (the MTU was raised since we opened): drop it, grow the buffer."""
        self.stats.count(counter)
        try:
            self.mtu = interface_mtu(self.name)
        except OSError as error:
            raise DeviceGone(f"{self.name}: device went away ({error.strerror})") from None
        self._allocate()
        log.debug("%s: frame larger than the receive buffer dropped; mtu now %d", self.name, self.mtu)

    def _read_failed(self, error: OSError) -> None:
        if error.errno in GONE_ERRNOS:
            raise DeviceGone(f"{self.name}: device went away ({error.strerror})") from None
        if error.errno == errno.EIO:
            # Never seen on a read (see the module docstring); counted rather than fatal.
            self.stats.count("rx_eio")
            return
        raise DeviceError(f"{self.name}: read failed ({error.strerror})") from None

    # Sending

    def send(self, frame: Sequence[Buffer], now: float) -> None:
        """Write one frame, given as buffers in wire order, with a single writev."""
        try:
            written = os.writev(self._fd, frame)
        except BlockingIOError:
            self.stats.count("tx_eagain")
            return
        except OSError as error:
            self._write_failed(error)
            return
        counters = self._counters
        counters["tx_frames"] += 1
        counters["tx_bytes"] += written - self.prefix_len

    def _write_failed(self, error: OSError) -> None:
        if error.errno in GONE_ERRNOS:
            raise DeviceGone(f"{self.name}: device went away ({error.strerror})") from None
        counter = TX_ERROR_COUNTERS.get(error.errno)
        if counter is None:
            raise DeviceError(f"{self.name}: write failed ({error.strerror})") from None
        self.stats.count(counter)
        log.debug("%s: frame not sent: %s", self.name, error.strerror)

    # The file descriptor

    def fileno(self) -> int:
        return self._fd

    def close(self) -> None:
        """Detach; a device this object created goes away with it. Closing twice is fine."""
        if self._fd >= 0:
            os.close(self._fd)
            self._fd = -1
            log.info("closed %s", self.name)

    def reattach(self) -> None:
        """Attach again to an interface of this name that came back after ours went away
        (``--reattach``): the MTU and the receive buffer read again, the same counters. It is
        not ours to delete any more (``created`` False). DeviceError when it cannot be
        attached (yet).

        The fd left by the deleted interface is attached again (TUNSETIFF on a tun file whose
        interface is gone is allowed: tun_chr_ioctl only refuses it while attached; measured
        on Linux 6.18, also after dropping root), so no new open of /dev/net/tun, which the
        user of --user may not be allowed, is needed; a new fd only if that fails.
        """
        if self._fd >= 0:
            try:
                fcntl.ioctl(self._fd, TUNSETIFF, IFREQ_FLAGS.pack(self.name.encode(), self._flags))
            except OSError as error:
                if error.errno not in (errno.EEXIST, errno.EBADFD, errno.EBADF):
                    raise DeviceError(self._attach_failure(self.name, error)) from None
                self.close()
        if self._fd < 0:
            self._fd, self.name = self._attach(self.name, self._flags)
        self.created = False
        try:
            self.mtu = interface_mtu(self.name)
        except OSError as error:
            self.close()
            raise DeviceError(f"{self.name}: cannot read the MTU ({error.strerror})") from None
        self._allocate()
        log.info("re-attached %s %s (mtu %d)", self.kind, self.name, self.mtu)

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.name!r}, mtu={self.mtu})"


class TapDevice(_LinuxDevice):
    """A TAP device: Ethernet frames, without the 4-byte packet-information header (IFF_NO_PI)."""

    medium: Medium = "ethernet"
    kind = "TAP"
    link_header_len = ETHERNET_HEADER_LEN

    def __init__(self, name: str, multi_queue: bool = False) -> None:
        super().__init__(name, IFF_TAP | IFF_NO_PI, multi_queue)


class TunDevice(_LinuxDevice):
    """A TUN device: bare IP packets, point to point.

    With ``packet_info`` (opened without IFF_NO_PI) every packet read or written starts with the
    4-byte packet-information header. The device passes it through both ways -- the stack
    (``TunHost(packet_info=True)``) reads it and writes it as one more buffer -- and only sizes
    its receive buffer for it. A packet the kernel marked truncated (TUN_PKT_STRIP: our buffer
    was too small) still goes up, for the stack to count as dropped, and the buffer regrows
    from the MTU. Without ``packet_info`` (IFF_NO_PI) the kernel tells the IP version from the
    first nibble of what we write.
    """

    medium: Medium = "ip"
    kind = "TUN"

    def __init__(self, name: str, packet_info: bool = False, multi_queue: bool = False) -> None:
        self.packet_info = packet_info
        if packet_info:
            self.prefix_len = PACKET_INFO_LENGTH
        super().__init__(name, IFF_TUN if packet_info else IFF_TUN | IFF_NO_PI, multi_queue)

    def _frame(self, received: int) -> memoryview | None:
        if not self.packet_info:
            return _LinuxDevice._frame(self, received)  # the class, not super(): once per packet
        frame = self._view[:received]  # a view of this buffer, even if the next line regrows it
        if is_truncated(self._buffer):  # TUN_PKT_STRIP: the kernel cut it
            self._truncated("rx_truncated")
        return frame
