"""IPv6 fragments against the real kernel, on the loopback device of a private namespace.

Output6's fragments of an echo request are written to ``lo`` with an AF_PACKET socket; the
kernel reassembles them and answers, and, with ``lo``'s MTU at 1280, its reply comes back in
fragments that ``Ipv6Reassembler`` puts together into the reply to our request.
"""

from __future__ import annotations

import subprocess
from ipaddress import IPv6Address

import pytest

from stack.buffers import join
from stack.l3.icmpv6 import Icmpv6Message, Icmpv6Type
from stack.l3.ipv6 import Ipv6Packet
from stack.l3.output6 import Output6
from stack.l3.reassembly6 import Ipv6Reassembler
from stack.stats import Stats

pytestmark = pytest.mark.device

LOOPBACK = IPv6Address("::1")

#: Runs in the namespace: lo up at MTU 1280, our fragments (hex lines on stdin) written to it,
#: then every IPv6 packet seen on lo for up to 3 s (or until the kernel's last reply fragment),
#: as hex lines. Bounded: a fixed number of writes and a deadline.
SCRIPT = r"""
import socket, subprocess, sys, time
subprocess.run(["ip", "link", "set", "lo", "up", "mtu", "1280"], check=True)
ETH_P_IPV6 = 0x86DD
capture = socket.socket(socket.AF_PACKET, socket.SOCK_DGRAM, socket.htons(ETH_P_IPV6))
capture.bind(("lo", ETH_P_IPV6))
capture.settimeout(0.2)
sender = socket.socket(socket.AF_PACKET, socket.SOCK_DGRAM, socket.htons(ETH_P_IPV6))
for line in sys.stdin.read().split()[:64]:
    sender.sendto(bytes.fromhex(line), ("lo", ETH_P_IPV6, 0, 0, bytes(6)))
deadline = time.monotonic() + 3
seen = []
while time.monotonic() < deadline and len(seen) < 256:
    try:
        data, address = capture.recvfrom(70000)
    except socket.timeout:
        continue
    if address[2] == socket.PACKET_OUTGOING:
        continue  # lo shows each packet twice: keep the incoming copy
    seen.append(data.hex())
print("\n".join(seen))
"""


def test_the_kernel_reassembles_our_fragments_and_we_reassemble_its_own(netns: str) -> None:
    data = bytes(range(256)) * 12  # 3072 bytes: three fragments each way at MTU 1280
    request = Icmpv6Message.echo(Icmpv6Type.ECHO_REQUEST, 0x7A6B, 1, data)
    fragments = Output6(Stats(), mtu=1280, uniform=lambda low, high: 0x1234_0000).datagrams(
        LOOPBACK, LOOPBACK, 58, request.buffers(LOOPBACK, LOOPBACK))
    assert len(fragments) == 3
    sent = [join(fragment).hex() for fragment in fragments]
    result = subprocess.run(["ip", "netns", "exec", netns, "python3", "-c", SCRIPT], input="\n".join(sent),
                            capture_output=True, text=True, timeout=20)
    assert result.returncode == 0, result.stderr
    seen = [bytes.fromhex(line) for line in result.stdout.split()]
    theirs = [raw for raw in seen if raw.hex() not in sent]
    reassembler = Ipv6Reassembler()
    replies = []
    for raw in theirs:
        packet = Ipv6Packet.parse(raw)
        chain = packet.chain()
        if chain.fragment is None:
            continue
        outcome = reassembler.add(packet, raw, chain, 1.0)
        if outcome.packet is not None:
            replies.append(outcome.packet)
    assert len([raw for raw in theirs if raw[6] == 44]) == 3, [raw[:48].hex() for raw in seen]
    (reply_bytes,) = replies
    reply_packet = Ipv6Packet.parse(reply_bytes)
    assert reply_packet.next_header == 58 and reply_packet.payload_length == 8 + len(data)
    reply = Icmpv6Message.parse(reply_packet.payload, LOOPBACK, LOOPBACK)  # its checksum verifies
    assert (reply.type, reply.identifier, reply.sequence) == (Icmpv6Type.ECHO_REPLY, 0x7A6B, 1)
    assert bytes(reply.payload) == data
