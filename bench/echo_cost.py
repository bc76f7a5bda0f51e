"""How many microseconds does tapstack spend on one echo request, in process?

Run:  python bench/echo_cost.py [--count N] [--profile]

No device, no root: the same 98-byte echo request the kernel's ``ping`` sends (56 data bytes)
is fed to ``TapHost.receive`` (and its 84-byte datagram to ``TunHost.receive``) again and again,
and the reply is checked once. This is the Python work per answer that ``ping_bench.py``
measures end to end, without the device and the scheduler around it. Best of five timings.
"""

from __future__ import annotations

import argparse
import cProfile
import pstats
import sys
import timeit
from pathlib import Path

import dpkt

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from stack import TapHost, TunHost  # noqa: E402
from stack.buffers import join  # noqa: E402

KERNEL_MAC, HOST_MAC = bytes.fromhex("020000000001"), bytes.fromhex("020000000002")
KERNEL_IP, HOST_IP = bytes([192, 0, 2, 1]), bytes([192, 0, 2, 2])


def echo_request() -> bytes:
    """ping 192.0.2.2 from 192.0.2.1 at 02:00:00:00:00:01: id 0x1234, seq 1, 56 data bytes."""
    echo = dpkt.icmp.ICMP.Echo(id=0x1234, seq=1, data=bytes(range(56)))
    icmp = dpkt.icmp.ICMP(type=8, code=0, data=echo)
    ip = dpkt.ip.IP(src=KERNEL_IP, dst=HOST_IP, p=1, ttl=64, data=icmp)
    return bytes(dpkt.ethernet.Ethernet(dst=HOST_MAC, src=KERNEL_MAC, type=0x0800, data=ip))


def arp_request() -> bytes:
    """Who has 192.0.2.2? Tell 192.0.2.1: so the TAP host knows where to send its answers."""
    arp = dpkt.arp.ARP(op=1, sha=KERNEL_MAC, spa=KERNEL_IP, tha=bytes(6), tpa=HOST_IP)
    return bytes(dpkt.ethernet.Ethernet(dst=b"\xff" * 6, src=KERNEL_MAC, type=0x0806, data=arp))


def echo_request6() -> bytes:
    """``ping -6 2001:db8::2`` from 2001:db8::1: id 0x1234, seq 1, 56 data bytes (dpkt sums it)."""
    source, destination = bytes.fromhex("20010db8" + "00" * 11 + "01"), bytes.fromhex("20010db8" + "00" * 11 + "02")
    icmp = dpkt.icmp6.ICMP6(type=128, code=0, data=dpkt.icmp6.ICMP6.Echo(id=0x1234, seq=1, data=bytes(range(56))))
    return bytes(dpkt.ip6.IP6(src=source, dst=destination, nxt=58, hlim=64, plen=len(bytes(icmp)), data=icmp))


def neighbor_solicitation() -> bytes:
    """Who has 2001:db8::2? from 2001:db8::1 at the kernel's MAC (so the host knows where to answer)."""
    source = bytes.fromhex("20010db8" + "00" * 11 + "01")
    group = bytes.fromhex("ff0200000000000000000001ff000002")
    body = bytes(4) + bytes.fromhex("20010db8" + "00" * 11 + "02") + bytes([1, 1]) + KERNEL_MAC
    icmp = dpkt.icmp6.ICMP6(type=135, code=0, data=body)
    packet = dpkt.ip6.IP6(src=source, dst=group, nxt=58, hlim=255, plen=len(bytes(icmp)), data=icmp)
    return bytes(dpkt.ethernet.Ethernet(dst=bytes.fromhex("3333ff000002"), src=KERNEL_MAC, type=0x86DD,
                                        data=packet))


def per_echo_us(receive, frame: bytes, count: int) -> float:
    """Best of five: microseconds per ``receive(frame, now)``."""
    timer = timeit.Timer(lambda: receive(frame, 1.0))
    return min(timer.repeat(5, count)) / count * 1e6


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--count", type=int, default=20000, help="echoes per timing (default 20000)")
    parser.add_argument("--profile", action="store_true", help="also print a cProfile of TapHost.receive")
    args = parser.parse_args()

    frame = echo_request()
    tap = TapHost(["192.0.2.2/24"], mac=HOST_MAC)
    tap.receive(arp_request(), 0.0)
    tun = TunHost(["192.0.2.2"], peer="192.0.2.1")
    for host, packet in ((tap, frame), (tun, frame[14:])):
        out = host.receive(packet, 1.0)
        assert len(out) == 1 and host.stats["icmp_echo_replies_sent"] == 1, join(out[0]).hex()

    print(f"TapHost.receive: {per_echo_us(tap.receive, frame, args.count):6.2f} us per echo")
    print(f"TunHost.receive: {per_echo_us(tun.receive, frame[14:], args.count):6.2f} us per echo")
    # IPv6 (issue 14's target: at most 1.2x the IPv4 echo, in the same run): the same 56 data
    # bytes, 2001:db8::1 -> 2001:db8::2, the kernel's MAC known through Neighbor Discovery.
    tap6, tun6 = TapHost(["2001:db8::2/64"], mac=HOST_MAC, dad_transmits=0), TunHost(["2001:db8::2"])
    tap6.poll(0.0)
    tap6.receive(neighbor_solicitation(), 0.5)
    packet6 = echo_request6()
    frame6 = bytes(dpkt.ethernet.Ethernet(dst=HOST_MAC, src=KERNEL_MAC, type=0x86DD, data=packet6))
    for host, data in ((tap6, frame6), (tun6, packet6)):
        out = host.receive(data, 1.0)
        assert len(out) == 1 and host.stats["icmpv6_echo_replies_sent"] == 1, (host, host.verdict)
    print(f"TapHost.receive IPv6: {per_echo_us(tap6.receive, frame6, args.count):6.2f} us per echo")
    print(f"TunHost.receive IPv6: {per_echo_us(tun6.receive, packet6, args.count):6.2f} us per echo")
    if args.profile:
        profile = cProfile.Profile()
        profile.runcall(lambda: [tap.receive(frame, 1.0) for _ in range(args.count)])
        pstats.Stats(profile).sort_stats("tottime").print_stats(15)
    return 0


if __name__ == "__main__":
    sys.exit(main())
