"""Lab 03 checker: ICMP echo and ping. ``tapstack lab check 03``."""

import dpkt

from stack.checksum import internet_checksum
from stack.tools.lab import Checker, icmp_message, ipv4, on_link, with_bit_flipped

check = Checker()

#: The echo request of the worksheet, checksum (bytes 2-3) zeroed: type 8, code 0, identifier
#: 0x0007, sequence 1, data "ping".
WORKSHEET_REQUEST = bytes.fromhex("0800 0000 0007 0001 70696e67")
ECHO = icmp_message(8, 0, b"\x00\x03\x00\x01", b"lab03 echo")


def echo_pairs(rig):
    """(request, reply) ICMP messages matched by identifier and sequence, decoded by dpkt."""
    requests = {(d.data.echo.id, d.data.echo.seq): d for d in rig.sent_by_peer()
                if isinstance(d.data, dpkt.icmp.ICMP) and d.data.type == 8}
    replies = {(d.data.echo.id, d.data.echo.seq): d for d in rig.sent_by_host()
               if isinstance(d.data, dpkt.icmp.ICMP) and d.data.type == 0}
    return [(requests[key], replies[key]) for key in requests if key in replies]


@check.item("three pings, three replies (tapstack's own ping, or the kernel's)")
def every_ping_answered(ctx):
    with ctx.rig() as rig:
        outcome = rig.ping(count=3)
        assert (outcome.transmitted, outcome.received) == (3, 3), outcome.output
        assert rig.stats["icmp_echo_replies_sent"] == 3


@check.item("each reply: type 0 code 0, the request's identifier, sequence and data (RFC 792, RFC 1122 3.2.2.6)")
def reply_mirrors_request(ctx):
    with ctx.rig() as rig:
        rig.ping(count=3, size=100)
        pairs = echo_pairs(rig)
        assert len(pairs) == 3, f"matched {len(pairs)} request/reply pairs in the capture, not 3"
        for request, reply in pairs:
            assert (reply.data.type, reply.data.code) == (0, 0)
            assert bytes(reply.data.echo.data) == bytes(request.data.echo.data), "the data differs"
            # RFC 1122 3.2.2.6: the reply's source is the request's specific destination.
            assert reply.src == request.dst and reply.dst == request.src


@check.item("each reply's ICMP checksum verifies over the whole message")
def reply_checksum(ctx):
    with ctx.rig() as rig:
        rig.ping(count=2, size=33)  # an odd length: the last byte is padded for the sum
        replies = [d for d in rig.sent_by_host() if isinstance(d.data, dpkt.icmp.ICMP)]
        assert len(replies) == 2
        for reply in replies:
            assert internet_checksum(bytes(reply.data)) == 0, bytes(reply.data).hex()


@check.item("an echo request with a wrong ICMP checksum is dropped (icmp_bad_checksum, RFC 1122 3.2.2)")
def bad_icmp_checksum(ctx):
    with ctx.rig() as rig:
        changed = rig.send(on_link(rig, ipv4(with_bit_flipped(ECHO, 9))))
        assert changed.get("drop.icmp_bad_checksum") == 1, f"counters that changed: {changed}"
        assert "icmp_echo_replies_sent" not in changed
        assert "RFC 1122 3.2.2" in rig.trace


@check.item("an echo request to the broadcast address is ignored by default, answered with answer_broadcast_echo")
def broadcast_echo(ctx):
    frame = None
    with ctx.rig() as rig:
        frame = on_link(rig, ipv4(ECHO, destination="192.0.2.255"), destination_mac="ff:ff:ff:ff:ff:ff")
        changed = rig.send(frame)
        assert changed.get("drop.icmp_echo_to_broadcast_ignored") == 1, f"counters that changed: {changed}"
    with ctx.rig(answer_broadcast_echo=True) as rig:
        changed = rig.send(frame)
        assert changed.get("icmp_echo_replies_sent") == 1, f"counters that changed: {changed}"
        replies = rig.sent_by_host()
        # RFC 1122 3.2.2.6 / 3.2.1.3: answered from our own address, never from the broadcast one.
        assert replies and replies[-1].src == rig.host_ip.packed


@check.item("answers.toml: the ICMP types of an echo request and an echo reply")
def answer_types(ctx):
    request, reply = ctx.answers.number("echo_request_type"), ctx.answers.number("echo_reply_type")
    with ctx.rig() as rig:
        rig.ping(count=1)
        (sent, answered), = echo_pairs(rig)
    assert request == sent.data.type, f"echo_request_type = {request}: look at a request in the trace or capture"
    assert reply == answered.data.type, f"echo_reply_type = {reply}"


@check.item("answers.toml: the ICMP checksum of the worksheet's echo request, by hand")
def answer_checksum(ctx):
    given = ctx.answers.number("icmp_checksum")
    filled = WORKSHEET_REQUEST[:2] + (given & 0xFFFF).to_bytes(2, "big") + WORKSHEET_REQUEST[4:]
    total = internet_checksum(filled)
    assert 0 <= given <= 0xFFFF and total == 0, (
        f"icmp_checksum = {given:#06x}: with it, the message sums to {total:#06x}, not 0x0000. "
        "The ICMP checksum covers the header and the data (RFC 792).")
