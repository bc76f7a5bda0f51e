"""Neighbor Discovery against the running kernel: what Linux answers, next to what
stack/l3/neighbor_discovery.py answers, for the same solicitations.

In a private namespace a TAP is opened (its MAC 02:00:00:00:00:01) and the kernel side is given
2001:db8::1/64. A script on the TAP's file descriptor records what the kernel sends for a few
seconds (its DAD, and whether an unsolicited NA follows), then sends a DAD probe, a multicast NS
and a unicast NS for 2001:db8::1 and records the NAs. The same NS go into a NeighborDiscovery
owning 2001:db8::1 at the same MAC; the answers are compared byte for byte.
"""

from __future__ import annotations

import json
import subprocess
import sys
from ipaddress import IPv6Address

import pytest

from stack.buffers import join
from stack.l2.ipv6_multicast import ipv6_multicast_mac
from stack.l3.icmpv6 import Icmpv6Message
from stack.l3.neighbor_discovery import NeighborDiscovery
from stack.stats import Stats

pytestmark = pytest.mark.device

KERNEL = IPv6Address("2001:db8::1")
KERNEL_MAC = bytes.fromhex("020000000001")
ASKER = IPv6Address("2001:db8::2")
ASKER_MAC = bytes.fromhex("020000000002")

SCRIPT = r"""
import json, select, subprocess, sys, time
from ipaddress import IPv6Address
from stack.tap.linux import TapDevice

def sh(command):
    subprocess.run(command, shell=True, check=True)

sh("sysctl -qw net.ipv6.conf.all.disable_ipv6=0 net.ipv6.conf.default.disable_ipv6=0")
tap = TapDevice("ndtap0")
sh("ip link set ndtap0 address 02:00:00:00:00:01 && ip link set ndtap0 up")
sh("ip -6 addr add 2001:db8::1/64 dev ndtap0")
notify = open("/proc/sys/net/ipv6/conf/ndtap0/ndisc_notify").read().strip()

def collect(seconds):
    got = []
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        if select.select([tap], [], [], max(0.0, end - time.monotonic()))[0]:
            frame = tap.recv(0.0)
            if frame is not None and bytes(frame[12:14]) == b"\x86\xdd":
                got.append(bytes(frame).hex())
    return got

result = {"kernel": subprocess.run(["uname", "-r"], capture_output=True, text=True).stdout.strip(),
          "ndisc_notify": notify, "start": collect(3.5)}
for name, frame in json.loads(sys.argv[1]).items():
    tap.send([bytes.fromhex(frame)], 0.0)
    result[name] = collect(0.5)
print(json.dumps(result))
"""


def ns_frame(source: IPv6Address, destination: IPv6Address, destination_mac: bytes, with_option: bool) -> bytes:
    """An Ethernet frame with a Neighbor Solicitation for KERNEL (the IPv6 packet built by dpkt)."""
    from tests.core.l3.test_neighbor_discovery import ns_packet

    ip = ns_packet(source, destination, KERNEL, ASKER_MAC if with_option else None)
    return destination_mac + ASKER_MAC + b"\x86\xdd" + ip


SOLICITATIONS = {
    "dad": ns_frame(IPv6Address("::"), IPv6Address("ff02::1:ff00:1"), bytes.fromhex("3333ff000001"), False),
    "multicast": ns_frame(ASKER, IPv6Address("ff02::1:ff00:1"), bytes.fromhex("3333ff000001"), True),
    "unicast": ns_frame(ASKER, KERNEL, KERNEL_MAC, True),
}


def advertisements(frames: list[str]) -> list[bytes]:
    """The Neighbor Advertisements (Ethernet frames) among the captured frames."""
    found = [bytes.fromhex(frame) for frame in frames]
    return [frame for frame in found if frame[14 + 6] == 58 and frame[14 + 40] == 136]


def ours(name: str) -> tuple[bytes, ...]:
    """What NeighborDiscovery sends for the same solicitation: (destination MAC, IPv6 packet)."""
    nd = NeighborDiscovery(Stats(), [(KERNEL, KERNEL_MAC)], ipv6_multicast_mac, dad=False, announce=False)
    nd.poll(0.0)
    raw = SOLICITATIONS[name][14:]
    source, destination = IPv6Address(raw[8:24]), IPv6Address(raw[24:40])
    out = nd.receive(source, destination, raw[7], Icmpv6Message.parse(raw[40:], source, destination), 1.0)
    assert len(out) == 1
    return out[0].link_destination, join(out[0].datagram)


@pytest.fixture(scope="module")
def kernel(module_netns: str) -> dict:
    argument = json.dumps({name: frame.hex() for name, frame in SOLICITATIONS.items()})
    run = subprocess.run(["ip", "netns", "exec", module_netns, sys.executable, "-c", SCRIPT, argument],
                         capture_output=True, text=True, timeout=60)
    assert run.returncode == 0, run.stderr
    return json.loads(run.stdout)


def test_linux_answers_a_dad_probe_exactly_as_we_do(kernel: dict) -> None:
    # To ff02::1 (33:33:00:00:00:01), S=0, O=1, target link-layer option (RFC 4861 7.2.4).
    [answer] = advertisements(kernel["dad"])
    mac, packet = ours("dad")
    assert answer[:6] == mac == bytes.fromhex("333300000001")
    assert answer[14:] == packet, kernel["kernel"]


def test_linux_answers_a_multicast_solicitation_exactly_as_we_do(kernel: dict) -> None:
    [answer] = advertisements(kernel["multicast"])
    mac, packet = ours("multicast")
    assert answer[:6] == mac == ASKER_MAC
    assert answer[14:] == packet, kernel["kernel"]


def test_linux_clears_override_and_omits_the_option_for_a_unicast_solicitation_we_do_not(kernel: dict) -> None:
    # The one deliberate difference: RFC 4861 7.2.4 asks for O (SHOULD) and allows the option to
    # be left out (MAY); Linux clears both for a unicast NS, we keep both.
    [answer] = advertisements(kernel["unicast"])
    mac, packet = ours("unicast")
    assert answer[:6] == mac == ASKER_MAC
    linux = answer[14:]
    assert linux[40 + 4] == 0x40 and len(linux) == 40 + 24  # S only, no option
    assert packet[40 + 4] == 0x60 and len(packet) == 40 + 32  # S and O, the option
    assert linux[40 + 8:40 + 24] == packet[40 + 8:40 + 24] == KERNEL.packed


def test_linux_sends_no_unsolicited_advertisement_after_dad_by_default(kernel: dict) -> None:
    # RFC 4861 7.2.6 is a MAY; Linux sends one only with ndisc_notify (0 by default). Its DAD
    # probes were seen (NS from ::), so the capture ran over the whole of DAD.
    assert kernel["ndisc_notify"] == "0"
    probes = [bytes.fromhex(frame) for frame in kernel["start"]]
    assert any(frame[14 + 40] == 135 and frame[14 + 8:14 + 24] == bytes(16) for frame in probes)
    assert advertisements(kernel["start"]) == []
