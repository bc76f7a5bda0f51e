"""Device scenarios for tests/root/test_linux.py, each run in a private network namespace.

Run one as ``ip netns exec NS python tests/root/device_scenarios.py NAME [ARG]`` (with the repo on
PYTHONPATH): it opens real TAP/TUN devices, makes the kernel talk to them, and prints what it
observed as one JSON object (frames in hex, counters, error messages) for the test to check.
Never run it outside a namespace of its own: it creates interfaces and sends frames.

Addresses: the kernel is 192.0.2.1/24 on tap0 (198.51.100.1 peer 198.51.100.2 on tun0); the
frames we write come from 192.0.2.2 at 02:00:00:00:00:02.
"""

from __future__ import annotations

import contextlib
import json
import os
import select
import socket
import struct
import stat
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from ipaddress import IPv4Address, IPv4Interface

import dpkt

from stack.tap.base import DeviceError, DeviceGone
from stack.runtime.kernel import (add_permanent_neighbours, configure_address, configure_point_to_point,
                                  enter_private_namespace, write_sysctls)
from stack.tap.linux import TapDevice, TunDevice

KERNEL = IPv4Interface("192.0.2.1/24")
OURS = IPv4Address("192.0.2.2")
OUR_MAC = bytes.fromhex("020000000002")
BROADCAST_MAC = b"\xff" * 6
TUN_KERNEL = IPv4Interface("198.51.100.1/32")
TUN_PEER = IPv4Address("198.51.100.2")
NOBODY = 65534
WAIT_S = 2.0  # the longest any scenario waits for one frame


def ip(*argv: str) -> None:
    subprocess.run(["ip", *argv], check=True, capture_output=True, timeout=10)


def kernel_mac(ifname: str) -> bytes:
    # ip netns exec mounts a sysfs of the namespace, so this is our interface.
    with open(f"/sys/class/net/{ifname}/address") as file:
        return bytes.fromhex(file.read().strip().replace(":", ""))


def receive_until(device, wanted: Callable[[bytes], bool], timeout: float = WAIT_S) -> bytes | None:
    """Receive frames until one satisfies ``wanted`` (returned) or the time is up (None)."""
    deadline = time.monotonic() + timeout
    while (left := deadline - time.monotonic()) > 0:
        select.select([device], [], [], left)
        while (frame := device.recv(time.monotonic())) is not None:
            if wanted(bytes(frame)):
                return bytes(frame)
    return None


def drain_until(device, done: Callable[[], bool], timeout: float = WAIT_S) -> list[bytes]:
    """Receive until ``done()`` (e.g. a counter moved) or the time is up; what was returned."""
    frames: list[bytes] = []
    deadline = time.monotonic() + timeout
    while not done() and (left := deadline - time.monotonic()) > 0:
        select.select([device], [], [], left)
        while (frame := device.recv(time.monotonic())) is not None:
            frames.append(bytes(frame))
    return frames


def ethernet_header(destination: bytes, ethertype: int) -> bytes:
    return destination + OUR_MAC + ethertype.to_bytes(2, "big")


def is_arp(operation: int) -> Callable[[bytes], bool]:
    return lambda frame: frame[12:14] == b"\x08\x06" and frame[20:22] == operation.to_bytes(2, "big")


def echo_request(source: IPv4Address, destination: IPv4Address, payload: bytes) -> list[bytes | memoryview]:
    """An ICMP echo request as three buffers: IPv4 header, ICMP header, a view of the payload."""
    icmp = dpkt.icmp.ICMP(type=dpkt.icmp.ICMP_ECHO,
                          data=dpkt.icmp.ICMP.Echo(id=0x7A70, seq=1, data=payload))
    packet = bytes(dpkt.ip.IP(src=source.packed, dst=destination.packed, p=dpkt.ip.IP_PROTO_ICMP,
                              ttl=64, id=1, data=icmp))
    return [packet[:20], packet[20:28], memoryview(packet)[28:]]


def is_echo_reply(offset: int) -> Callable[[bytes], bool]:
    """An IPv4 packet starting at ``offset`` carrying ICMP type 0."""
    return lambda frame: (len(frame) > offset + 20 and frame[offset] >> 4 == 4
                          and frame[offset + 9] == dpkt.ip.IP_PROTO_ICMP
                          and frame[offset + (frame[offset] & 0xF) * 4] == dpkt.icmp.ICMP_ECHOREPLY)


# The scenarios


def tap_kernel_arp_request() -> dict:
    """The kernel resolves 192.0.2.99 on tap0: its ARP request arrives through recv()."""
    with TapDevice("tap0") as tap:
        configure_address("tap0", KERNEL)
        configure_address("tap0", KERNEL)  # a second time changes nothing
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as udp:
            udp.sendto(b"x", ("192.0.2.99", 9))  # one datagram: one resolution
        received = receive_until(tap, is_arp(1))
        return {"name": tap.name, "created": tap.created, "medium": tap.medium, "mtu": tap.mtu,
                "kernel_mac": kernel_mac("tap0").hex(), "frame": received.hex() if received else None,
                "stats": tap.stats.as_dict(), "kernel_side": kernel_side("tap0")}


def kernel_side(ifname: str) -> dict:
    """What ``configure_address`` left behind: addresses, link flags, the IPv6 switch."""
    shown = subprocess.run(["ip", "-j", "addr", "show", "dev", ifname], capture_output=True,
                           text=True, check=True)
    (link,) = json.loads(shown.stdout)
    with open(f"/proc/sys/net/ipv6/conf/{ifname}/disable_ipv6") as file:
        ipv6_disabled = file.read().strip() == "1"
    return {"flags": link["flags"], "ipv6_disabled": ipv6_disabled,
            "addresses": [{key: a.get(key) for key in ("family", "local", "address", "prefixlen", "broadcast")}
                          for a in link["addr_info"]]}


def kernel_side_set_up() -> dict:
    """The whole kernel-side set-up ``tapstack diff`` makes: a MAC and an address on tap0,
    permanent neighbours, sysctls; a point-to-point address on tun0; and the errors for an
    interface or a setting that does not exist."""
    with TapDevice("tap0"), TunDevice("tun0"):
        configure_address("tap0", KERNEL, mac="02:00:c0:00:02:01")
        add_permanent_neighbours("tap0", {OURS: "02:00:00:00:00:02", IPv4Address("192.0.2.3"): "02:00:00:00:00:03"})
        add_permanent_neighbours("tap0", {OURS: "02:00:00:00:00:02"})  # a second time changes nothing
        write_sysctls({"net/ipv4/icmp_ratelimit": "0", "net/ipv4/conf/tap0/arp_accept": "1"})
        configure_point_to_point("tun0", TUN_KERNEL.ip, TUN_PEER)
        shown = subprocess.run(["ip", "-j", "neigh", "show", "dev", "tap0"], capture_output=True,
                               text=True, check=True)
        sysctls = {}
        for name in ("net/ipv4/icmp_ratelimit", "net/ipv4/conf/tap0/arp_accept"):
            with open(f"/proc/sys/{name}") as file:
                sysctls[name] = file.read().strip()
        return {"kernel_mac": kernel_mac("tap0").hex(":"), "tap": kernel_side("tap0"),
                "tun": kernel_side("tun0"), "sysctls": sysctls,
                "neighbours": sorted((n["dst"], n["lladdr"], n["state"]) for n in json.loads(shown.stdout)),
                "no_interface": _error_of(lambda: add_permanent_neighbours("nope0", {OURS: "02:00:00:00:00:02"})),
                "no_setting": _error_of(lambda: write_sysctls({"net/ipv4/conf/nope0/arp_accept": "1"}))}


def tap_send_round_trip() -> dict:
    """Frames written as buffer lists reach the kernel: it answers our ARP request and our ping."""
    with TapDevice("tap0") as tap:
        configure_address("tap0", KERNEL)
        mac = kernel_mac("tap0")
        arp = dpkt.arp.ARP(op=dpkt.arp.ARP_OP_REQUEST, sha=OUR_MAC, spa=OURS.packed,
                           tha=b"\0" * 6, tpa=KERNEL.ip.packed)
        tap.send([ethernet_header(BROADCAST_MAC, 0x0806), bytes(arp)], time.monotonic())
        arp_reply = receive_until(tap, is_arp(2))
        payload = bytes(range(56))
        tap.send([ethernet_header(mac, 0x0800), *echo_request(OURS, KERNEL.ip, payload)],
                 time.monotonic())
        echo_reply = receive_until(tap, is_echo_reply(14))
        neighbours = subprocess.run(["ip", "-j", "neigh", "show", "dev", "tap0"], capture_output=True,
                                    text=True, check=True).stdout
        return {"kernel_mac": mac.hex(), "arp_reply": arp_reply.hex() if arp_reply else None,
                "echo_reply": echo_reply.hex() if echo_reply else None,
                "payload": payload.hex(), "neighbours": json.loads(neighbours),
                "stats": tap.stats.as_dict()}


def tap_jumbo_frames() -> dict:
    """An MTU-9000 device gets a buffer for 9000-byte packets; raising the MTU later regrows it."""
    ip("tuntap", "add", "dev", "tap0", "mode", "tap")  # persistent, so we can set its MTU first
    ip("link", "set", "dev", "tap0", "mtu", "9000")
    with TapDevice("tap0") as tap:
        configure_address("tap0", KERNEL)
        # A permanent neighbour entry, so the kernel sends to us without asking by ARP.
        ip("neigh", "replace", str(OURS), "lladdr", "02:00:00:00:00:02", "dev", "tap0", "nud", "permanent")
        to_us = lambda frame: frame[12:14] == b"\x08\x00" and frame[30:34] == OURS.packed  # noqa: E731
        result: dict = {"created": tap.created, "mtu_at_open": tap.mtu}
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as udp:
            udp.sendto(bytes(9000 - 28), (str(OURS), 9))  # IPv4 20 + UDP 8 + data = 9000
            result["jumbo"] = len(receive_until(tap, to_us) or b"")
            ip("link", "set", "dev", "tap0", "mtu", "9100")  # the buffer is now too small
            udp.sendto(bytes(9100 - 28), (str(OURS), 9))
            result["while_too_small"] = [len(f) for f in drain_until(tap, lambda: tap.stats["rx_truncated"] > 0)]
            result["mtu_after"] = tap.mtu
            udp.sendto(bytes(9100 - 28), (str(OURS), 9))
            result["after_regrow"] = len(receive_until(tap, to_us) or b"")
        result["stats"] = tap.stats.as_dict()
        return result


def tun_round_trip(packet_info: str) -> dict:
    """A TUN device carries bare IPv4 both ways; with packet information, the 4-byte header is
    passed through as it is, both ways (the stack reads and writes it, not the device)."""
    with_pi = packet_info == "pi"
    with TunDevice("tun0", packet_info=with_pi) as tun:
        configure_address("tun0", TUN_KERNEL, peer=TUN_PEER)
        payload = bytes(range(56))
        header = [struct.pack("=H", 0) + struct.pack("!H", 0x0800)] if with_pi else []
        tun.send(header + echo_request(TUN_PEER, TUN_KERNEL.ip, payload), time.monotonic())
        reply = receive_until(tun, is_echo_reply(4 if with_pi else 0))
        result = {"medium": tun.medium, "mtu": tun.mtu, "packet_info": tun.packet_info,
                  "reply": reply.hex() if reply else None, "payload": payload.hex(),
                  "kernel_side": kernel_side("tun0")}
        if with_pi:
            # A packet socket sends EtherType 0x88b5 (IEEE "local experimental") out of tun0:
            # it reaches us with that protocol in its packet information, for the stack to drop.
            with socket.socket(socket.AF_PACKET, socket.SOCK_DGRAM, socket.htons(0x88B5)) as raw:
                raw.sendto(b"not an IPv4 packet", ("tun0", 0x88B5))
            other = receive_until(tun, lambda frame: frame[2:4] == b"\x88\xb5")
            result["non_ipv4"] = other.hex() if other else None
        result["stats"] = tun.stats.as_dict()
        return result


def tun_bursts() -> dict:
    """recv returns every queued packet, then None at once (EAGAIN: the device never waits),
    whether a wake-up brings one or several."""
    with TunDevice("tun0") as tun:
        configure_address("tun0", TUN_KERNEL, peer=TUN_PEER)
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as udp:
            def kernel_sends(count: int) -> None:
                for number in range(count):
                    udp.sendto(bytes([number]), (str(TUN_PEER), 9))
                select.select([tun], [], [], WAIT_S)

            def received() -> list[int]:
                """The last payload byte of each packet recv returned, until it returned None."""
                got = []
                while (packet := tun.recv(0.0)) is not None:
                    got.append(packet[-1])
                return got

            result = {}
            for count in (1, 3, 1, 2, 1):
                kernel_sends(count)
                result[f"burst_{len(result)}"] = received()
            result["idle"] = tun.recv(0.0)
            result["stats"] = tun.stats.as_dict()
        return result


def down_and_deleted() -> dict:
    """What the device does when its interface is down, and when it is deleted under it."""
    arp = dpkt.arp.ARP(op=dpkt.arp.ARP_OP_REQUEST, sha=OUR_MAC, spa=OURS.packed, tpa=KERNEL.ip.packed)
    frame = [ethernet_header(BROADCAST_MAC, 0x0806), bytes(arp)]
    tap = TapDevice("tap0")  # created down
    result: dict = {"created": tap.created}
    try:
        tap.send(frame, 0.0)
        received = tap.recv(0.0)
        result["recv_while_down"] = None if received is None else bytes(received).hex()
        result["down"] = tap.stats.as_dict()
        ip("link", "set", "tap0", "up")
        tap.send(frame, 0.0)
        tap.send([frame[0][:10]], 0.0)  # shorter than an Ethernet header
        result["up"] = tap.stats.as_dict()
        ip("link", "del", "tap0")
        result["readable_after_delete"] = bool(select.select([tap], [], [], 1.0)[0])
        for operation, call in (("recv", lambda: tap.recv(0.0)), ("send", lambda: tap.send(frame, 0.0))):
            try:
                call()
                result[operation] = None
            except DeviceGone as error:
                result[operation] = str(error)
    finally:
        tap.close()
        tap.close()
    return result


def opening_errors() -> dict:
    """The one-line DeviceError for each way attaching can fail."""
    ip("tuntap", "add", "dev", "tun0", "mode", "tun")
    ip("tuntap", "add", "dev", "tap1", "mode", "tap")
    ip("tuntap", "add", "dev", "tap3", "mode", "tap", "multi_queue")
    attempts = {
        "tap_on_tun": lambda: TapDevice("tun0"),
        "tun_on_tap": lambda: TunDevice("tap1"),
        "tap_on_loopback": lambda: TapDevice("lo"),
        "tap_multi_queue": lambda: TapDevice("tap3"),
    }
    result: dict = {}
    for label, attempt in attempts.items():
        result[label] = _error_of(attempt)
    with TapDevice("tap2"):
        result["tap_busy"] = _error_of(lambda: TapDevice("tap2"))
    with TapDevice("tap%d") as template:
        result["template_name"] = template.name
    result["persistent_created"] = _created_and_close(TapDevice("tap1"))
    result["persistent_survives"] = os.path.exists("/sys/class/net/tap1")
    result["configure_missing"] = _error_of(lambda: configure_address("nope0", KERNEL))
    return result


def _error_of(attempt: Callable[[], object]) -> str | None:
    try:
        device = attempt()
    except DeviceError as error:
        return str(error)
    if device is not None:
        device.close()  # type: ignore[attr-defined]
    return None


def _created_and_close(device) -> bool:
    device.close()
    return device.created


def private_namespace() -> dict:
    """enter_private_namespace() moves us into a new namespace holding only lo, and lo is up."""
    before = os.stat("/proc/self/ns/net").st_ino
    enter_private_namespace()
    shown = subprocess.run(["ip", "-j", "link"], capture_output=True, text=True, check=True)
    return {"changed": os.stat("/proc/self/ns/net").st_ino != before,
            "links": [(link["ifname"], "UP" in link["flags"]) for link in json.loads(shown.stdout)]}


def unprivileged() -> dict:
    """What a non-root user gets. Run under ``unshare --mount``: we swap /dev/net/tun privately.

    The process keeps root as its saved user ID and switches only its effective IDs to nobody,
    which is what the kernel checks (file access, CAP_NET_ADMIN, the device's owner).
    /dev/net/tun is bind-mounted from device nodes we make, once with mode 0666 (most
    distributions) and once with mode 0600 (only root may open it), on a tmpfs of our own.
    """
    ip("tuntap", "add", "dev", "mine", "mode", "tap", "user", str(NOBODY))
    ip("tuntap", "add", "dev", "roots", "mode", "tap", "user", "0")
    result: dict = {}
    with private_clone_device(0o666):
        with as_nobody():
            device = TapDevice("mine")
            result["own_device"] = {"name": device.name, "created": device.created,
                                    "uid": os.geteuid()}
            device.close()
            result["roots_device"] = _error_of(lambda: TapDevice("roots"))
            result["new_device"] = _error_of(lambda: TapDevice("new0"))
    with private_clone_device(0o600), as_nobody():
        result["clone_device_0600"] = _error_of(lambda: TapDevice("mine"))
    return result


@contextlib.contextmanager
def private_clone_device(mode: int) -> Iterator[None]:
    if not in_private_namespace("mnt"):
        raise RuntimeError("refusing to mount over /dev/net/tun outside a private mount namespace")
    directory = tempfile.mkdtemp(prefix="tsk-dev-")
    try:
        subprocess.run(["mount", "-t", "tmpfs", "tmpfs", directory], check=True)
        node = os.path.join(directory, "tun")
        os.mknod(node, stat.S_IFCHR | mode, os.makedev(10, 200))
        os.chmod(node, mode)  # mknod applies the umask
        subprocess.run(["mount", "--bind", node, "/dev/net/tun"], check=True)
        try:
            yield
        finally:
            subprocess.run(["umount", "/dev/net/tun"], check=True)
            subprocess.run(["umount", directory], check=True)
    finally:
        os.rmdir(directory)


@contextlib.contextmanager
def as_nobody() -> Iterator[None]:
    groups = os.getgroups()
    os.setgroups([])
    os.setegid(NOBODY)
    os.seteuid(NOBODY)
    try:
        yield
    finally:
        os.seteuid(0)
        os.setegid(0)
        os.setgroups(groups)


def empty_fragments() -> dict:
    """Linux owns 192.0.2.2 on tap0; fragments of one echo request (32 bytes: [0, 8) and [8, 32))
    go in, with an empty fragment (more to come) first at offset 8, or at 0, or after the first
    fragment. Its echo replies are counted: does an empty fragment spoil the datagram (issue 13)?"""
    with TapDevice("tap0") as device:
        configure_address("tap0", IPv4Interface("192.0.2.2/24"))
        add_permanent_neighbours("tap0", {IPv4Address("192.0.2.1"): "02:00:00:00:00:01"})
        kernel_mac = bytes.fromhex(open("/sys/class/net/tap0/address").read().strip().replace(":", "")) \
            if os.path.exists("/sys/class/net/tap0/address") else None
        if kernel_mac is None:
            out = subprocess.run(["ip", "link", "show", "tap0"], capture_output=True, text=True).stdout
            kernel_mac = bytes.fromhex(out.split("link/ether ")[1].split()[0].replace(":", ""))
        echo = bytes(dpkt.icmp.ICMP(type=8, code=0, data=dpkt.icmp.ICMP.Echo(id=7, seq=1, data=bytes(range(24)))))

        def fragment(data: bytes, offset: int, more: bool, ident: int) -> bytes:
            ip = dpkt.ip.IP(src=bytes([192, 0, 2, 1]), dst=bytes([192, 0, 2, 2]), p=1, ttl=64, id=ident, data=data)
            ip.mf, ip.offset, ip.len, ip.sum = int(more), offset, 20 + len(data), 0
            return bytes(dpkt.ethernet.Ethernet(dst=kernel_mac, src=bytes.fromhex("020000000001"), type=0x0800,
                                                data=bytes(ip)))

        def replies(frames: list[bytes]) -> int:
            for frame in frames:
                device.send([frame], 0.0)
            got = receive_until(device, lambda f: len(f) > 34 and f[12:14] == b"\x08\x00" and f[34] == 0)
            return 1 if got is not None else 0

        result = {}
        # (name, identification, the empty fragment's offset, where in the train it goes)
        for name, ident, empty_at, place in (("plain", 1, None, 0), ("empty_at_8", 2, 1, 0), ("empty_at_0", 3, 0, 0),
                                             ("empty_at_8_after_first", 4, 1, 1),
                                             ("empty_at_0_after_first", 5, 0, 1)):
            train = [fragment(echo[:8], 0, True, ident), fragment(echo[8:], 1, False, ident)]
            if empty_at is not None:
                train.insert(place, fragment(b"", empty_at, True, ident))
            result[name] = replies(train)
        return result


def source_routes() -> dict:
    """Linux owns 192.0.2.2 on tap0; echo requests with a Loose Source Route through
    198.51.100.7, unfinished (pointer 4) and finished (pointer 8), and without one: its replies
    counted, with the sysctl that decides (net.ipv4.conf.all.accept_source_route)."""
    with TapDevice("tap0") as device:
        configure_address("tap0", IPv4Interface("192.0.2.2/24"))
        add_permanent_neighbours("tap0", {IPv4Address("192.0.2.1"): "02:00:00:00:00:01"})
        out = subprocess.run(["ip", "link", "show", "tap0"], capture_output=True, text=True).stdout
        kernel_mac = bytes.fromhex(out.split("link/ether ")[1].split()[0].replace(":", ""))

        def echo(options: bytes, ident: int) -> bytes:
            icmp = bytes(dpkt.icmp.ICMP(type=8, code=0, data=dpkt.icmp.ICMP.Echo(id=ident, seq=1, data=b"x" * 8)))
            ip = dpkt.ip.IP(src=bytes([192, 0, 2, 1]), dst=bytes([192, 0, 2, 2]), p=1, ttl=64, id=ident, data=icmp)
            ip.opts, ip.hl = options, 5 + len(options) // 4
            ip.len, ip.sum = 20 + len(options) + len(icmp), 0
            return bytes(dpkt.ethernet.Ethernet(dst=kernel_mac, src=bytes.fromhex("020000000001"), type=0x0800,
                                                data=bytes(ip)))

        result = {"accept_source_route_all": open("/proc/sys/net/ipv4/conf/all/accept_source_route").read().strip()}
        for name, ident, options in (("none", 1, b""), ("unfinished", 2, bytes([131, 7, 4, 198, 51, 100, 7, 0])),
                                     ("finished", 3, bytes([131, 7, 8, 198, 51, 100, 7, 0]))):
            device.send([echo(options, ident)], 0.0)
            got = receive_until(device, lambda f: len(f) > 34 and f[12:14] == b"\x08\x00"
                                and f[14 + (f[14] & 0x0F) * 4] == 0, timeout=0.5)
            result[name] = 1 if got is not None else 0
        return result


SCENARIOS = {f.__name__: f for f in (empty_fragments, source_routes, tap_kernel_arp_request, kernel_side_set_up, tap_send_round_trip, tap_jumbo_frames,
                                     tun_round_trip, tun_bursts, down_and_deleted, opening_errors, private_namespace,
                                     unprivileged)}

def in_private_namespace(kind: str) -> bool:
    """Whether our ``kind`` namespace ("net", "mnt") differs from the one of whoever started us.

    ``ip netns exec`` and ``unshare`` exec the command, so the parent is the test (or a shell).
    """
    ours, theirs = (os.stat(f"/proc/{pid}/ns/{kind}") for pid in ("self", os.getppid()))
    return (ours.st_dev, ours.st_ino) != (theirs.st_dev, theirs.st_ino)


if __name__ == "__main__":
    if not in_private_namespace("net"):
        sys.exit("refusing to run: not in a private network namespace (use ip netns exec)")
    name, *args = sys.argv[1:]
    print(json.dumps(SCENARIOS[name](*args)))
