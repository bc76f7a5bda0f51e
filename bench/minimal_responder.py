"""The yardstick: the least a Python program must do to answer ping on a TAP or TUN device.

It blocks in ``os.readv`` on a preallocated buffer, answers an ARP request for its address and
an ICMP echo request whose IPv4 and ICMP checksums both verify, in place (addresses swapped,
type 8 -> 0, the ICMP checksum updated as RFC 1624 allows), and sends the reply with one
``os.writev``; everything else is ignored. No stack, no loop, no counters: the floor of what
Python can do per frame, which ``ping_bench.py`` measures tapstack against.

    python bench/minimal_responder.py --tap tap0 --ip 192.0.2.2 --mac 02:00:00:00:00:02
    python bench/minimal_responder.py --tun tun0 --ip 192.0.2.2

The device must exist and its kernel side be configured (ping_bench does both); SIGTERM ends it
with exit status 0.
"""

import argparse
import fcntl
import ipaddress
import os
import signal
import struct

TUNSETIFF, IFF_TUN, IFF_TAP, IFF_NO_PI = 0x400454CA, 0x0001, 0x0002, 0x1000


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    device = parser.add_mutually_exclusive_group(required=True)
    device.add_argument("--tap", metavar="NAME")
    device.add_argument("--tun", metavar="NAME")
    parser.add_argument("--ip", required=True)
    parser.add_argument("--mac", default="02:00:00:00:00:02")
    args = parser.parse_args()
    signal.signal(signal.SIGTERM, lambda signum, frame: os._exit(0))
    ours = ipaddress.IPv4Address(args.ip).packed
    mac = bytes.fromhex(args.mac.replace(":", ""))
    fd = os.open("/dev/net/tun", os.O_RDWR)
    flags = (IFF_TAP if args.tap else IFF_TUN) | IFF_NO_PI
    fcntl.ioctl(fd, TUNSETIFF, struct.pack("16sH", (args.tap or args.tun).encode(), flags))
    buffer = bytearray(65536 + 14)
    view = memoryview(buffer)
    link = 14 if args.tap else 0  # where the IPv4 header starts
    while True:
        size = os.readv(fd, [buffer])
        if args.tap and buffer[12:14] == b"\x08\x06":  # ARP
            # A request (op 1) for our address: the reply goes back to its sender.
            if size >= 42 and buffer[20:22] == b"\x00\x01" and buffer[38:42] == ours:
                sender_mac, sender_ip = bytes(buffer[22:28]), bytes(buffer[28:32])
                buffer[0:6], buffer[6:12], buffer[21] = sender_mac, mac, 2
                buffer[22:28], buffer[28:32], buffer[32:38], buffer[38:42] = mac, ours, sender_mac, sender_ip
                os.writev(fd, [view[:42]])
            continue
        if args.tap and buffer[12:14] != b"\x08\x00":
            continue
        ip = link
        if size < ip + 28 or buffer[ip] != 0x45 or buffer[ip + 9] != 1 or buffer[ip + 16:ip + 20] != ours:
            continue
        total = int.from_bytes(buffer[ip + 2:ip + 4], "big")
        if total > size - ip or buffer[ip + 20] != 8:
            continue
        # Both checksums verify: read as one integer, a correct one makes a multiple of 0xFFFF.
        if int.from_bytes(view[ip:ip + 20], "big") % 0xFFFF or int.from_bytes(view[ip + 20:ip + total], "big") % 0xFFFF:
            continue
        if args.tap:
            buffer[0:6], buffer[6:12] = bytes(buffer[6:12]), mac
        buffer[ip + 12:ip + 16], buffer[ip + 16:ip + 20] = bytes(buffer[ip + 16:ip + 20]), bytes(buffer[ip + 12:ip + 16])
        buffer[ip + 20] = 0  # echo reply; RFC 1624: the checksum rises by 0x0800 (ones' complement)
        checksum = int.from_bytes(buffer[ip + 22:ip + 24], "big") + 0x0800
        checksum = (checksum & 0xFFFF) + (checksum >> 16)
        buffer[ip + 22:ip + 24] = checksum.to_bytes(2, "big")
        os.writev(fd, [view[:ip + total]])


if __name__ == "__main__":
    main()
