"""Lab 01 checker: Ethernet and ARP. ``tapstack lab check 01`` or ``pytest stack/labs/01-ethernet-arp``."""

import dpkt

from stack.tools.lab import Checker, icmp_message, ipv4, on_link

check = Checker()
ARP = 0x0806
ARP_REQUEST, ARP_REPLY = 1, 2


def arp_packets(rig):
    """(Ethernet frame, ARP packet) for every ARP frame in the capture, decoded by dpkt."""
    found = []
    for frame in rig.capture():
        ethernet = dpkt.ethernet.Ethernet(frame)
        if ethernet.type == ARP:
            found.append((ethernet, dpkt.arp.ARP(frame[14:42])))
    return found


def mac(text):
    return bytes.fromhex(text.replace(":", ""))


def first_exchange(rig):
    """The peer's ARP request for tapstack's address and tapstack's reply to it."""
    packets = arp_packets(rig)
    requests = [(e, a) for e, a in packets if a.op == ARP_REQUEST and a.tpa == rig.host_ip.packed
                and a.spa == rig.peer_ip.packed]
    replies = [(e, a) for e, a in packets if a.op == ARP_REPLY and a.spa == rig.host_ip.packed]
    assert requests, "no ARP request 'who-has 192.0.2.2 tell 192.0.2.1' in the capture"
    assert replies, "tapstack sent no ARP reply for 192.0.2.2"
    return requests[0], replies[0]


@check.item("a ping starts with ARP: the peer asks who-has 192.0.2.2, tapstack answers is-at its MAC")
def arp_exchange(ctx):
    with ctx.rig() as rig:
        outcome = rig.ping(count=1)
        assert outcome.received == 1, f"the ping was not answered:\n{outcome.output}"
        (request_frame, request), (reply_frame, reply) = first_exchange(rig)
        assert request_frame.dst == b"\xff" * 6, "the ARP request was not broadcast"
        assert reply.sha == mac(rig.host_mac), f"the reply says is-at {reply.sha.hex(':')}, not {rig.host_mac}"
        # RFC 826: the reply goes back to the asker, unicast, with the asker as target.
        assert reply_frame.dst == request.sha and reply.tha == request.sha and reply.tpa == request.spa
        assert "Reply 192.0.2.2 is-at 02:00:00:00:00:02" in rig.trace


@check.item("every frame tapstack sends is at least 60 bytes (RFC 894: padded to the minimum)")
def padding(ctx):
    with ctx.rig() as rig:
        rig.ping(count=1)
        sent = [f for f in rig.capture() if f[6:12] == mac(rig.host_mac)]
        assert sent, "tapstack sent nothing"
        short = [len(f) for f in sent if len(f) < 60]
        assert not short, f"frames of {short} bytes were sent"
        replies = [f for f in sent if f[12:14] == b"\x08\x06"]
        assert replies and all(len(f) == 60 for f in replies), "an ARP frame is 42 bytes + 18 of padding"


@check.item("a frame to another MAC is dropped (ethernet_not_for_us), even with a ping inside")
def not_our_mac(ctx):
    with ctx.rig() as rig:
        request = ipv4(icmp_message(8, 0, b"\x00\x07\x00\x01", b"lab01"))
        changed = rig.send(on_link(rig, request, destination_mac="02:00:00:00:00:99"))
        assert changed.get("drop.ethernet_not_for_us") == 1, f"counters that changed: {changed}"
        assert "icmp_echo_replies_sent" not in changed, "tapstack answered a frame for another MAC"
        assert "drop ethernet_not_for_us" in rig.trace


@check.item("an ARP request for an address that is not ours gets no answer (arp_not_for_us)")
def not_our_address(ctx):
    with ctx.rig() as rig:
        packet = dpkt.arp.ARP(op=ARP_REQUEST, sha=mac(rig.peer_mac), spa=bytes([192, 0, 2, 77]),
                              tha=bytes(6), tpa=bytes([192, 0, 2, 3]))
        changed = rig.send(on_link(rig, bytes(packet), destination_mac="ff:ff:ff:ff:ff:ff", ethertype=ARP))
        assert changed.get("drop.arp_not_for_us") == 1, f"counters that changed: {changed}"
        assert "arp_replies_sent" not in changed, "tapstack answered for an address it does not have"


@check.item("answers.toml: the EtherType of ARP")
def answer_ethertype(ctx):
    given = ctx.answers.number("arp_ethertype")
    with ctx.rig() as rig:
        rig.ping(count=1)
        seen = {e.type for e, _ in arp_packets(rig)}
    assert given in seen, f"arp_ethertype = {given:#06x}: look at bytes 12-13 of an ARP frame in the trace"


@check.item("answers.toml: the ARP operation code of a reply")
def answer_opcode(ctx):
    given = ctx.answers.number("arp_reply_operation")
    with ctx.rig() as rig:
        rig.ping(count=1)
        _, (_, reply) = first_exchange(rig)
    assert given == reply.op, f"arp_reply_operation = {given}: RFC 826 'ar$op', look at tapstack's reply"


@check.item("answers.toml: the destination MAC of an ARP request")
def answer_request_destination(ctx):
    given = ctx.answers.text("arp_request_destination").lower().replace("-", ":")
    with ctx.rig() as rig:
        rig.ping(count=1)
        (request_frame, _), _ = first_exchange(rig)
    assert given == request_frame.dst.hex(":"), f"arp_request_destination = {given}: who must hear a question?"


@check.item("answers.toml: the length of tapstack's ARP reply frame on the wire")
def answer_frame_length(ctx):
    given = ctx.answers.number("arp_reply_length")
    with ctx.rig() as rig:
        rig.ping(count=1)
        lengths = {len(f) for f in rig.capture() if f[6:12] == mac(rig.host_mac) and f[12:14] == b"\x08\x06"}
    assert given in lengths, f"arp_reply_length = {given}: 14 + 28 bytes is not the whole story (RFC 894)"
