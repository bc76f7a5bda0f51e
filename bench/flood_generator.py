"""A paced flood of hostile frames, written on one interface with an AF_PACKET socket.

    python bench/flood_generator.py --iface tap0 --responder-ip 192.0.2.2 \\
        --responder-mac 02:00:c0:00:02:02 --claimed-ip 192.0.2.1 [--rate 16000] [--count N] \\
        [--seconds S] [--mix bytes,fragment,arp,frame] [--forged-every 50] [--seed 13]

Run it inside the network namespace of the interface (``ip netns exec``): a frame sent on a TAP
device's kernel side reaches the program reading the TAP as from the wire, and one sent on a veth
end reaches the other end's namespace. Nothing is sent anywhere else.

Kinds of frame (``--mix`` takes them in turn, round robin):

  bytes      random bytes, 14 to 1514 of them (both MACs forced locally administered)
  fragment   a 1 KB first fragment of an IPv4 datagram (MF set, offset 0, random id, valid header
             checksum) to the responder: the rest never comes
  arp        an ARP request from a random documentation address (never the responder's nor the
             claimed one) at a random MAC, for the responder or for a random documentation
             address; every ``--forged-every``-th ARP frame instead is a forged claim (below)
  frame      a well-formed Ethernet header to the responder (or broadcast) with a random
             EtherType and random payload
  claim      only forged claims: ARP requests for the responder from ``--claimed-ip`` (the
             pinger's address) at a random MAC
  newsender  only ARP requests for the responder from random documentation addresses, each
             from a random MAC

Every address is a documentation address (192.0.2.0/24, 198.51.100.0/24, 203.0.113.0/24) and
every MAC has the locally administered bit set. Paced by the clock (``--rate`` frames a second,
sent in bursts of at most 1 ms worth), each frame written with one ``send``; the flood stops
after ``--count`` frames or ``--seconds``, whichever comes first (SIGTERM stops it too). At the
end one JSON line on stdout gives what was sent, by kind.
"""

from __future__ import annotations

import argparse
import ipaddress
import json
import random
import signal
import socket
import struct
import sys
import time

ETH_P_ALL = 0x0003
ETHERTYPE_IPV4, ETHERTYPE_ARP = 0x0800, 0x0806
BROADCAST = b"\xff" * 6
DOCUMENTATION = [ipaddress.IPv4Network(n) for n in ("192.0.2.0/24", "198.51.100.0/24", "203.0.113.0/24")]
DOCUMENTATION_ADDRESSES = [address.packed for network in DOCUMENTATION for address in network.hosts()]
#: Random EtherTypes for "frame": IPv4 and ARP (malformed payloads), IPv6, VLAN, and unknowns.
ETHERTYPES = [0x0800, 0x0806, 0x86DD, 0x8100, 0x88B5, 0x88B6, 0x9000, 0x0500]
KINDS = ("bytes", "fragment", "arp", "frame", "claim", "newsender")
FRAGMENT_PAYLOAD = 1000  # + 20 bytes of header: a 1 KB fragment (a multiple of 8, as a non-last one must be)


def checksum(header: bytes) -> int:
    """RFC 1071: the ones' complement of the ones' complement sum of the 16-bit words."""
    total = sum(struct.unpack(f"!{len(header) // 2}H", header))
    while total >> 16:
        total = (total & 0xFFFF) + (total >> 16)
    return ~total & 0xFFFF


class Frames:
    """Builds each kind of frame from one seeded random source."""

    def __init__(self, rng: random.Random, responder_ip: bytes, responder_mac: bytes, claimed_ip: bytes,
                 forged_every: int) -> None:
        self.rng = rng
        self.responder_ip, self.responder_mac, self.claimed_ip = responder_ip, responder_mac, claimed_ip
        self.forged_every = forged_every
        #: Random senders and targets: never the responder's or the claimed address (those
        #: frames are counted as what they are: forged claims).
        self.addresses = [a for a in DOCUMENTATION_ADDRESSES if a not in (responder_ip, claimed_ip)]
        self.arp_frames = 0
        self.forged = 0

    def mac(self) -> bytes:
        """A random unicast MAC with the locally administered bit set (02:, 06:, ... fe:)."""
        raw = bytearray(self.rng.randbytes(6))
        raw[0] = (raw[0] & 0xFC) | 0x02
        return bytes(raw)

    def address(self) -> bytes:
        return self.rng.choice(self.addresses)

    def bytes(self) -> bytes:
        raw = bytearray(self.rng.randbytes(self.rng.randint(14, 1514)))
        raw[0] |= 0x02  # destination: locally administered (unicast or group)
        raw[6] = (raw[6] & 0xFC) | 0x02  # source: a locally administered unicast MAC
        return bytes(raw)

    def fragment(self) -> bytes:
        header = bytearray(struct.pack("!BBHHHBBH4s4s", 0x45, 0, 20 + FRAGMENT_PAYLOAD,
                                       self.rng.getrandbits(16), 0x2000,  # MF, offset 0
                                       64, 1, 0, self.address(), self.responder_ip))
        struct.pack_into("!H", header, 10, checksum(bytes(header)))
        return (self.responder_mac + self.mac() + struct.pack("!H", ETHERTYPE_IPV4) + bytes(header)
                + self.rng.randbytes(FRAGMENT_PAYLOAD))

    def arp_request(self, sender_mac: bytes, sender_ip: bytes, target_ip: bytes) -> bytes:
        return (BROADCAST + sender_mac + struct.pack("!H", ETHERTYPE_ARP)
                + struct.pack("!HHBBH6s4s6s4s", 1, ETHERTYPE_IPV4, 6, 4, 1, sender_mac, sender_ip,
                              bytes(6), target_ip)
                + bytes(18))  # padded to the 60-byte minimum frame

    def arp(self) -> bytes:
        self.arp_frames += 1
        if self.forged_every and self.arp_frames % self.forged_every == 0:
            return self.claim()
        target = self.responder_ip if self.rng.random() < 0.5 else self.address()
        return self.arp_request(self.mac(), self.address(), target)

    def frame(self) -> bytes:
        destination = self.responder_mac if self.rng.random() < 0.5 else BROADCAST
        return (destination + self.mac() + struct.pack("!H", self.rng.choice(ETHERTYPES))
                + self.rng.randbytes(self.rng.randint(46, 1500)))

    def claim(self) -> bytes:
        self.forged += 1
        return self.arp_request(self.mac(), self.claimed_ip, self.responder_ip)

    def newsender(self) -> bytes:
        return self.arp_request(self.mac(), self.address(), self.responder_ip)


def mac_address(text: str) -> bytes:
    raw = bytes.fromhex(text.replace(":", ""))
    if len(raw) != 6:
        raise argparse.ArgumentTypeError(f"not a MAC address: {text}")
    return raw


def ipv4(text: str) -> bytes:
    try:
        return ipaddress.IPv4Address(text).packed
    except ValueError as error:
        raise argparse.ArgumentTypeError(str(error)) from None


def mix(text: str) -> list[str]:
    kinds = text.split(",")
    unknown = [kind for kind in kinds if kind not in KINDS]
    if unknown or not text:
        raise argparse.ArgumentTypeError(f"unknown kind {', '.join(unknown)!r} (kinds: {', '.join(KINDS)})")
    return kinds


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--iface", required=True, help="interface to send on (in this namespace)")
    parser.add_argument("--responder-ip", type=ipv4, required=True)
    parser.add_argument("--responder-mac", type=mac_address, required=True)
    parser.add_argument("--claimed-ip", type=ipv4, required=True, help="the address forged claims are for")
    parser.add_argument("--rate", type=float, default=16000.0, help="frames a second (16000)")
    parser.add_argument("--count", type=int, default=320_000, help="frames at most (320000)")
    parser.add_argument("--seconds", type=float, default=30.0, help="seconds at most (30)")
    parser.add_argument("--mix", type=mix, default=["bytes", "fragment", "arp", "frame"],
                        help="kinds of frame, taken in turn (bytes,fragment,arp,frame)")
    parser.add_argument("--forged-every", type=int, default=50,
                        help="every Nth ARP frame of 'arp' is a forged claim (50; 0: none)")
    parser.add_argument("--seed", type=int, default=13)
    args = parser.parse_args(argv)
    if args.rate <= 0 or args.count < 0 or args.seconds <= 0 or args.forged_every < 0:
        parser.error("--rate and --seconds must be positive, --count and --forged-every not negative")
    for address in (args.responder_ip, args.claimed_ip):
        if not any(ipaddress.IPv4Address(address) in network for network in DOCUMENTATION):
            parser.error(f"{ipaddress.IPv4Address(address)} is not a documentation address")
    if not args.responder_mac[0] & 0x02:
        parser.error("the responder's MAC must be locally administered")

    stopping = []
    signal.signal(signal.SIGTERM, lambda signum, frame: stopping.append(signum))
    frames = Frames(random.Random(args.seed), args.responder_ip, args.responder_mac, args.claimed_ip,
                    args.forged_every)
    builders = [getattr(frames, kind) for kind in args.mix]
    sent = dict.fromkeys(args.mix, 0)
    errors = 0
    with socket.socket(socket.AF_PACKET, socket.SOCK_RAW, socket.htons(ETH_P_ALL)) as sock:
        sock.bind((args.iface, 0))
        sock.setblocking(False)
        started = time.monotonic()
        deadline = started + args.seconds
        total = 0
        while total < args.count and not stopping:
            now = time.monotonic()
            if now >= deadline:
                break
            due = min(args.count, int((now - started) * args.rate) + 1)
            burst = min(due - total, max(1, int(args.rate / 1000)))  # at most 1 ms worth at once
            for _ in range(burst):
                index = total % len(builders)
                try:
                    sock.send(builders[index]())
                    sent[args.mix[index]] += 1
                except (BlockingIOError, OSError):  # a full queue (ENOBUFS): the frame is lost
                    errors += 1
                total += 1
            if total >= due:
                time.sleep(max(0.0, started + total / args.rate - time.monotonic()))
        elapsed = time.monotonic() - started
    print(json.dumps({"sent": sum(sent.values()), "by_kind": sent, "forged_claims": frames.forged,
                      "send_errors": errors, "seconds": round(elapsed, 3),
                      "rate": round(sum(sent.values()) / elapsed) if elapsed else 0}), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
