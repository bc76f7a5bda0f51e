"""MLDv2 reports: what Linux sends on a TAP (and does not send on a TUN) device in a private
namespace, compared byte for byte with MldReporter's."""

from __future__ import annotations

import subprocess
from ipaddress import IPv6Address

import pytest

from stack.buffers import join
from stack.l3.mld import MldReporter
from stack.stats import Stats

pytestmark = pytest.mark.device

#: Runs in the namespace: a TAP (MAC 02:00:00:00:00:01) or TUN device with IPv6 on and
#: 2001:db8::1, read for 3 s; every frame or packet as a hex line. The device lives as long as
#: the file descriptor, so nothing is left behind.
SCRIPT = r"""
import fcntl, os, select, struct, subprocess, sys, time
tap = sys.argv[1] == "tap"
fd = os.open("/dev/net/tun", os.O_RDWR)
fcntl.ioctl(fd, 0x400454CA, struct.pack("16sH", b"mld0", (0x0002 if tap else 0x0001) | 0x1000))
commands = ["sysctl -qw net.ipv6.conf.mld0.disable_ipv6=0"]
if tap:
    commands.append("ip link set mld0 address 02:00:00:00:00:01")
commands += ["ip link set mld0 up", "ip -6 addr add 2001:db8::1/64 dev mld0"]
for command in commands:
    subprocess.run(command, shell=True, check=True)
deadline = time.monotonic() + 3
while time.monotonic() < deadline:
    if select.select([fd], [], [], 0.1)[0]:
        print(os.read(fd, 2000).hex())
os.close(fd)
"""


def kernel_sends(netns: str, kind: str) -> list[bytes]:
    result = subprocess.run(["ip", "netns", "exec", netns, "python3", "-c", SCRIPT, kind],
                            capture_output=True, text=True, timeout=20)
    assert result.returncode == 0, result.stderr
    return [bytes.fromhex(line) for line in result.stdout.split()]


def is_mldv2_report(packet: bytes) -> bool:
    """IPv6, a Hop-by-Hop header first (8 octets), then ICMPv6 type 143."""
    return len(packet) > 48 and packet[0] >> 4 == 6 and packet[6] == 0 and packet[40] == 58 and packet[48] == 143


def multicast_mac(address: bytes) -> bytes:
    return b"\x33\x33" + address[-4:]  # RFC 2464 7, written out here


def test_linux_reports_on_tap_are_byte_for_byte_ours(netns: str) -> None:
    frames = kernel_sends(netns, "tap")
    reports = [frame for frame in frames if frame[12:14] == b"\x86\xdd" and is_mldv2_report(frame[14:])]
    assert reports, [frame.hex() for frame in frames]
    sources = set()
    for frame in reports:
        source = IPv6Address(frame[14 + 8:14 + 24])
        sources.add(source)
        ours = MldReporter(Stats(), [IPv6Address("ff02::1"), IPv6Address("ff02::1:ff00:1")],
                           multicast_mac).poll(0.0, source)
        (outbound,) = ours
        assert frame[:6] == outbound.link_destination
        assert frame[14:] == join(outbound.datagram)
    # RFC 3810 5.2.13: from :: while the link-local address is tentative, then from it
    assert IPv6Address("fe80::ff:fe00:1") in sources


def test_linux_sends_no_mld_report_on_a_tun_device(netns: str) -> None:
    packets = kernel_sends(netns, "tun")
    assert not [packet for packet in packets if is_mldv2_report(packet)]
    # the device was up with IPv6 on: the kernel did speak (a router solicitation)
    assert any(packet[0] >> 4 == 6 and packet[40] == 133 for packet in packets), [p.hex() for p in packets]
