"""Real TAP and TUN devices against the real kernel, each scenario in a namespace of its own.

The test process never leaves the machine's namespace: every scenario runs as
``ip netns exec NS python tests/root/device_scenarios.py NAME`` and reports what it saw as JSON,
and the assertions are here. The checks at the bottom (names, ioctl numbers) need no device.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
from pathlib import Path

import dpkt
import pytest

from stack.tap import linux
from stack.runtime import kernel
from stack.tap.base import DeviceError
from stack.tap.linux import TapDevice

REPO = Path(__file__).resolve().parents[2]
SCENARIOS = Path(__file__).with_name("device_scenarios.py")
OUR_MAC = bytes.fromhex("020000000002")
KERNEL_IP = bytes([192, 0, 2, 1])
OUR_IP = bytes([192, 0, 2, 2])
PAYLOAD = bytes(range(56))


def run_scenario(netns: str, name: str, *args: str, mount_namespace: bool = False) -> dict:
    unshare = ["unshare", "--mount"] if mount_namespace else []
    result = subprocess.run(
        ["ip", "netns", "exec", netns, *unshare, sys.executable, str(SCENARIOS), name, *args],
        capture_output=True, text=True, timeout=30, cwd=REPO, stdin=subprocess.DEVNULL,
        env=dict(os.environ, PYTHONPATH=str(REPO), PYTHONDONTWRITEBYTECODE="1"))
    assert result.returncode == 0, f"scenario {name} failed:\n{result.stderr}"
    return json.loads(result.stdout)


@pytest.mark.device
def test_the_kernels_arp_request_arrives_through_recv(netns):
    seen = run_scenario(netns, "tap_kernel_arp_request")
    assert (seen["name"], seen["created"], seen["medium"], seen["mtu"]) == ("tap0", True, "ethernet", 1500)
    assert seen["frame"] is not None, seen["stats"]
    raw = bytes.fromhex(seen["frame"])
    assert len(raw) == 42  # a TAP device neither pads to 60 bytes nor carries the FCS
    frame = dpkt.ethernet.Ethernet(raw)
    kernel_mac = bytes.fromhex(seen["kernel_mac"])
    assert (frame.dst, frame.src, frame.type) == (b"\xff" * 6, kernel_mac, dpkt.ethernet.ETH_TYPE_ARP)
    arp = frame.data
    assert (arp.op, arp.sha, arp.spa, arp.tpa) == (dpkt.arp.ARP_OP_REQUEST, kernel_mac, KERNEL_IP,
                                                   bytes([192, 0, 2, 99]))
    assert seen["stats"]["rx_frames"] >= 1 and seen["stats"]["rx_bytes"] >= 42
    # configure_address (called twice) left one address with its broadcast, the link up, no IPv6.
    kernel_side = seen["kernel_side"]
    assert kernel_side["addresses"] == [{"family": "inet", "local": "192.0.2.1", "address": None,
                                         "prefixlen": 24, "broadcast": "192.0.2.255"}]
    assert "UP" in kernel_side["flags"] and kernel_side["ipv6_disabled"] is True


@pytest.mark.device
def test_the_kernel_side_set_up_leaves_mac_neighbours_sysctls_and_a_peer(netns):
    seen = run_scenario(netns, "kernel_side_set_up")
    assert seen["kernel_mac"] == "02:00:c0:00:02:01"
    assert seen["tap"]["addresses"] == [{"family": "inet", "local": "192.0.2.1", "address": None,
                                         "prefixlen": 24, "broadcast": "192.0.2.255"}]
    assert seen["neighbours"] == [["192.0.2.2", "02:00:00:00:00:02", ["PERMANENT"]],
                                  ["192.0.2.3", "02:00:00:00:00:03", ["PERMANENT"]]]
    assert seen["sysctls"] == {"net/ipv4/icmp_ratelimit": "0", "net/ipv4/conf/tap0/arp_accept": "1"}
    # A point-to-point address: ours as IFA_LOCAL, the peer's as IFA_ADDRESS, a /32.
    assert seen["tun"]["addresses"] == [{"family": "inet", "local": "198.51.100.1", "address": "198.51.100.2",
                                         "prefixlen": 32, "broadcast": None}]
    assert "UP" in seen["tun"]["flags"] and seen["tun"]["ipv6_disabled"] is True
    assert seen["no_interface"] == "nope0: no such network interface"
    assert seen["no_setting"] == "this kernel has no setting net.ipv4.conf.nope0.arp_accept"


@pytest.mark.device
def test_frames_sent_as_buffer_lists_reach_the_kernel(netns):
    seen = run_scenario(netns, "tap_send_round_trip")
    kernel_mac = bytes.fromhex(seen["kernel_mac"])
    # Our ARP request (two buffers) was understood: the kernel answered it and learned our MAC.
    assert seen["arp_reply"] is not None, seen["stats"]
    reply = dpkt.ethernet.Ethernet(bytes.fromhex(seen["arp_reply"]))
    assert (reply.dst, reply.src) == (OUR_MAC, kernel_mac)
    assert (reply.data.op, reply.data.spa, reply.data.tha, reply.data.tpa) == (
        dpkt.arp.ARP_OP_REPLY, KERNEL_IP, OUR_MAC, OUR_IP)
    assert [(n["dst"], n["lladdr"]) for n in seen["neighbours"]] == [("192.0.2.2", "02:00:00:00:00:02")]
    # Our echo request (four buffers) was understood: the kernel's reply carries our data back.
    assert seen["echo_reply"] is not None, seen["stats"]
    echo = dpkt.ethernet.Ethernet(bytes.fromhex(seen["echo_reply"]))
    packet, icmp = echo.data, echo.data.data
    assert (echo.dst, packet.src, packet.dst) == (OUR_MAC, KERNEL_IP, OUR_IP)
    assert (icmp.type, icmp.data.id, icmp.data.seq, icmp.data.data) == (0, 0x7A70, 1, PAYLOAD)
    assert dpkt.in_cksum(bytes(packet)[20:]) == 0
    assert seen["stats"]["tx_frames"] == 2 and seen["stats"]["tx_bytes"] == 42 + 14 + 84


@pytest.mark.device
def test_the_receive_buffer_follows_the_mtu(netns):
    seen = run_scenario(netns, "tap_jumbo_frames")
    assert seen["created"] is False  # a persistent device made before opening it
    assert seen["mtu_at_open"] == 9000
    assert seen["jumbo"] == 14 + 9000  # received whole
    # After the MTU went up to 9100 the next frame did not fit: dropped, counted, buffer regrown.
    assert seen["while_too_small"] == []
    assert seen["stats"]["rx_truncated"] == 1
    assert seen["mtu_after"] == 9100
    assert seen["after_regrow"] == 14 + 9100


@pytest.mark.device
@pytest.mark.parametrize("packet_info", ["no-pi", "pi"])
def test_tun_carries_bare_ipv4_both_ways(netns, packet_info):
    seen = run_scenario(netns, "tun_round_trip", packet_info)
    assert (seen["medium"], seen["mtu"], seen["packet_info"]) == ("ip", 1500, packet_info == "pi")
    assert seen["reply"] is not None, seen["stats"]
    reply = bytes.fromhex(seen["reply"])
    if packet_info == "pi":
        assert reply[:4] == b"\x00\x00\x08\x00"  # flags 0, protocol IPv4: passed through
        reply = reply[4:]
        assert bytes.fromhex(seen["non_ipv4"]) == b"\x00\x00\x88\xb5not an IPv4 packet"
    packet = dpkt.ip.IP(reply)
    assert (packet.src, packet.dst) == (bytes([198, 51, 100, 1]), bytes([198, 51, 100, 2]))
    assert (packet.data.type, packet.data.data.data) == (dpkt.icmp.ICMP_ECHOREPLY, PAYLOAD)
    assert seen["stats"]["tx_bytes"] == 84  # the packet, not counting packet information
    assert seen["kernel_side"]["addresses"] == [{"family": "inet", "local": "198.51.100.1",
                                                 "address": "198.51.100.2", "prefixlen": 32,
                                                 "broadcast": None}]


@pytest.mark.device
def test_tun_recv_returns_every_queued_packet_then_none(netns):
    seen = run_scenario(netns, "tun_bursts")
    assert [seen[f"burst_{n}"] for n in range(5)] == [[0], [0, 1, 2], [0], [0, 1], [0]]
    assert seen["idle"] is None
    assert seen["stats"]["rx_frames"] == 8 and seen["stats"]["rx_bytes"] == 8 * (20 + 8 + 1)


@pytest.mark.device
def test_link_down_and_device_deleted(netns):
    seen = run_scenario(netns, "down_and_deleted")
    assert seen["created"] is True
    # Down: the kernel refuses writes with EIO (counted) and has nothing to read.
    assert seen["down"] == {"tx_link_down": 1}
    assert seen["recv_while_down"] is None
    # Up: a whole frame goes out, a 10-byte one is EINVAL (counted).
    assert seen["up"] == {"tx_link_down": 1, "tx_frames": 1, "tx_bytes": 42, "tx_einval": 1}
    # Deleted: the fd turns readable and both directions say the device is gone.
    assert seen["readable_after_delete"] is True
    assert seen["recv"] == "tap0: device went away (File descriptor in bad state)"
    assert seen["send"] == "tap0: device went away (File descriptor in bad state)"


@pytest.mark.device
def test_opening_errors_are_one_actionable_line(netns):
    seen = run_scenario(netns, "opening_errors")
    assert seen["tap_on_tun"] == "tun0 exists as a TUN device, not a TAP device"
    assert seen["tun_on_tap"] == "tap1 exists as a TAP device, not a TUN device"
    assert seen["tap_on_loopback"] == "lo exists and is not a TUN/TAP device: pick another name"
    assert seen["tap_multi_queue"] == ("tap3 is a multi-queue TAP device: recreate it without "
                                       "multi_queue")
    assert seen["tap_busy"] == "tap2 is already attached by another process (or another device object)"
    assert seen["template_name"] == "tap0"  # the kernel filled in "tap%d"
    assert seen["persistent_created"] is False and seen["persistent_survives"] is True
    assert seen["configure_missing"] == "nope0: no such network interface"


@pytest.mark.device
def test_enter_private_namespace_gives_an_empty_namespace_with_lo_up(netns):
    seen = run_scenario(netns, "private_namespace")
    assert seen == {"changed": True, "links": [["lo", True]]}


@pytest.mark.device
def test_an_unprivileged_user_is_told_what_to_do(netns):
    seen = run_scenario(netns, "unprivileged", mount_namespace=True)
    assert seen["own_device"] == {"name": "mine", "created": False, "uid": 65534}
    assert seen["roots_device"] == (
        "permission denied opening roots: run as root, or create a persistent device you own: "
        "sudo ip tuntap add dev roots mode tap user $USER")
    assert seen["new_device"] == (
        "permission denied opening new0: run as root, or create a persistent device you own: "
        "sudo ip tuntap add dev new0 mode tap user $USER")
    assert seen["clone_device_0600"] == (
        "permission denied opening /dev/net/tun: run as root, or create a persistent device you own: "
        "sudo ip tuntap add dev mine mode tap user $USER (and sudo chmod 0666 /dev/net/tun, its usual mode)")


# Without a device: checks that must fail before the kernel is touched.


def refuse(*args, **kwargs):
    raise AssertionError("the kernel was touched")


@pytest.fixture
def kernel_untouchable(monkeypatch):
    monkeypatch.setattr(linux.os, "open", refuse)
    monkeypatch.setattr(linux.fcntl, "ioctl", refuse)


@pytest.mark.parametrize(("name", "message"), [
    ("", "the device name is empty"),
    ("a" * 20, "device name 'aaaaaaaaaaaaaaaaaaaa' is too long: at most 15 bytes"),
    ("é" * 8, "device name 'éééééééé' is too long: at most 15 bytes"),  # 16 bytes in UTF-8
    ("tap/0", "device name 'tap/0' is not valid: no '/', ':' or whitespace"),
    ("tap 0", "device name 'tap 0' is not valid: no '/', ':' or whitespace"),
    ("tap\t0", "device name 'tap\\t0' is not valid: no '/', ':' or whitespace"),
    ("tap:0", "device name 'tap:0' is not valid: no '/', ':' or whitespace"),
    ("..", "device name '..' is not valid: no '/', ':' or whitespace"),
], ids=["empty", "20-chars", "16-bytes", "slash", "space", "tab", "colon", "dotdot"])
def test_bad_names_are_refused_before_the_kernel_is_touched(kernel_untouchable, name, message):
    with pytest.raises(DeviceError) as raised:
        TapDevice(name)
    assert str(raised.value) == message


def test_a_missing_clone_device_says_to_load_the_module(monkeypatch):
    monkeypatch.setattr(linux, "CLONE_DEVICE", "/nonexistent/net/tun")
    monkeypatch.setattr(linux.fcntl, "ioctl", refuse)
    with pytest.raises(DeviceError, match=r"^/nonexistent/net/tun does not exist: load the tun "
                                          r"module \(modprobe tun\)$"):
        TapDevice("tap0")


def test_enter_private_namespace_refuses_with_threads_running(monkeypatch):
    monkeypatch.setattr(kernel.ctypes, "CDLL", refuse)  # must not get as far as unshare(2)
    release = threading.Event()
    thread = threading.Thread(target=release.wait, args=(5,))
    thread.start()
    try:
        with pytest.raises(DeviceError, match="must run before any thread starts"):
            kernel.enter_private_namespace()
    finally:
        release.set()
        thread.join()


@pytest.mark.parametrize(("machine", "number"), [
    ("x86_64", 0x400454CA), ("aarch64", 0x400454CA), ("armv7l", 0x400454CA),
    ("ppc64le", 0x800454CA), ("mips64", 0x800454CA),
])
def test_tunsetiff_number_follows_the_architecture(monkeypatch, machine, number):
    monkeypatch.setattr(linux.platform, "machine", lambda: machine)
    assert linux._tunsetiff() == number
