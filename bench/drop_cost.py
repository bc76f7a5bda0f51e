"""What does garbage cost? Microseconds per frame for each kind of frame a host drops or answers
without work, in process (no device, no root), beside an echo request for scale.

Run:  python bench/drop_cost.py [--count N] [--profile KIND]

Each kind is fed to ``TapHost.receive`` again and again; before timing, one frame of the kind
is checked to be dropped under the reason it names (or answered, for ARP requests). Best of five
timings. The issue 12 targets (at most): another MAC or an unknown EtherType 1.5 us, a bad IPv4
header checksum 4 us, an ARP request for us from a known or a new sender 8 us.
"""

from __future__ import annotations

import argparse
import cProfile
import math
import pstats
import sys
import timeit
from pathlib import Path

import dpkt

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from stack import TapHost  # noqa: E402
from stack.ratelimit import TokenBucket  # noqa: E402

KERNEL_MAC, HOST_MAC, OTHER_MAC = (bytes.fromhex(m) for m in ("020000000001", "020000000002", "020000000099"))
KERNEL_IP, HOST_IP, OTHER_IP = bytes([192, 0, 2, 1]), bytes([192, 0, 2, 2]), bytes([192, 0, 2, 99])
#: Frames of the "new sender" kind cycle through this many senders (more than the cache holds).
NEW_SENDERS = 4096


def ethernet(destination: bytes, ethertype: int, payload: bytes) -> bytes:
    return bytes(dpkt.ethernet.Ethernet(dst=destination, src=KERNEL_MAC, type=ethertype, data=payload))


def echo_request(destination_mac: bytes = HOST_MAC) -> bytes:
    echo = dpkt.icmp.ICMP.Echo(id=0x1234, seq=1, data=bytes(range(56)))
    icmp = dpkt.icmp.ICMP(type=8, code=0, data=echo)
    ip = dpkt.ip.IP(src=KERNEL_IP, dst=HOST_IP, p=1, ttl=64, data=icmp)
    return ethernet(destination_mac, 0x0800, bytes(ip))


def bad_checksum() -> bytes:
    frame = bytearray(echo_request())
    frame[24] ^= 0xFF  # the IPv4 header checksum's first byte
    return bytes(frame)


def arp_request(sender_ip: bytes, target_ip: bytes = HOST_IP, sender_mac: bytes = KERNEL_MAC) -> bytes:
    arp = dpkt.arp.ARP(op=1, sha=sender_mac, spa=sender_ip, tha=bytes(6), tpa=target_ip)
    return ethernet(b"\xff" * 6, 0x0806, bytes(arp))


def new_senders() -> list[bytes]:
    """ARP requests for us, each from a sender the host has not seen (198.51.100.0/24 and on)."""
    return [arp_request(bytes([198, 51, 100 + i // 250, 1 + i % 250]),
                        sender_mac=bytes([2, 0, 0, 1, i >> 8, i & 0xFF]))
            for i in range(NEW_SENDERS)]


#: Each kind: (name, frames to cycle through, the drop reason expected or None for an answer).
def kinds() -> list[tuple[str, list[bytes], str | None]]:
    return [
        ("echo request (for scale)", [echo_request()], None),
        ("another MAC", [echo_request(OTHER_MAC)], "ethernet_not_for_us"),
        ("unknown EtherType", [ethernet(HOST_MAC, 0x88B5, bytes(46))], "ethernet_unknown_ethertype"),
        ("random bytes behind our MAC", [ethernet(HOST_MAC, 0x0800, bytes(range(7, 53)))], "ipv4_bad_version"),
        ("bad IPv4 header checksum", [bad_checksum()], "ipv4_bad_checksum"),
        ("ARP request, another target", [arp_request(bytes([198, 51, 100, 7]), OTHER_IP)], "arp_not_for_us"),
        ("ARP request, known sender", [arp_request(KERNEL_IP)], None),
        ("ARP request, new sender", new_senders(), None),
        ("ARP request, new sender, limited", new_senders(), "arp_new_sender_rate_limited"),
    ]


def fresh_host(name: str = "") -> TapHost:
    host = TapHost(["192.0.2.2/24"], mac=HOST_MAC)
    host.receive(arp_request(KERNEL_IP), 0.0)  # the kernel is a known neighbour
    if name == "ARP request, new sender":  # every new sender answered: the work, not the limit
        host.link.new_senders = TokenBucket(math.inf, math.inf)
    elif name.endswith("limited"):
        host.link.new_senders = TokenBucket(0.0, 0.0)  # every new sender beyond the limit
    return host


def check(name: str, frames: list[bytes], reason: str | None) -> None:
    host = fresh_host(name)
    out = host.receive(frames[0], 1.0)
    verdict = host.verdict
    if reason is None:
        assert not verdict.dropped and len(out) == 1, (name, verdict)
    else:
        assert verdict.drop_reason == reason and not out, (name, verdict)


def per_frame_us(name: str, frames: list[bytes], count: int) -> float:
    """Best of five: microseconds per ``receive``, cycling through ``frames``."""
    host = fresh_host(name)
    receive = host.receive
    batch = (frames * (count // len(frames) + 1))[:count]

    def run() -> None:
        for frame in batch:
            receive(frame, 1.0)

    return min(timeit.Timer(run).repeat(5, 1)) / count * 1e6


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--count", type=int, default=20000, help="frames per timing (default 20000)")
    parser.add_argument("--profile", metavar="KIND", help="also profile the kind whose name starts with KIND")
    args = parser.parse_args()
    for name, frames, reason in kinds():
        check(name, frames, reason)
        print(f"{name:<32} {per_frame_us(name, frames, args.count):6.2f} us per frame"
              f"  ({reason or 'answered'})")
        if args.profile and name.startswith(args.profile):
            host = fresh_host(name)
            profile = cProfile.Profile()
            profile.runcall(lambda: [host.receive(f, 1.0) for f in frames * (args.count // len(frames))])
            pstats.Stats(profile).sort_stats("tottime").print_stats(12)
    return 0


if __name__ == "__main__":
    sys.exit(main())
