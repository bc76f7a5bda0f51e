"""Lab 06 checker: ICMP Timestamp replies behind a switch. ``tapstack lab check 06``.

Items about the stack use functions of their own; items about your ``timestamp_reply`` load it
from ``timestamp.py`` (``--solution`` / ``TAPSTACK_LAB_SOLUTION=1``: from ``solution.py``).
"""

import dpkt

from stack.checksum import internet_checksum
from stack.l3.icmp import IcmpMessage
from stack.tools.lab import Checker, LabError, NotAnswered, icmp_message, ipv4, load_function, on_link

check = Checker()
ORIGINATE = (0x01020304).to_bytes(4, "big")
REQUEST = icmp_message(13, 0, b"\x00\x06\x00\x09", ORIGINATE + bytes(8))


def student_function(ctx):
    path = ctx.directory / ("solution.py" if ctx.solution else "timestamp.py")
    try:
        function = load_function(path, "timestamp_reply")
    except LabError as error:
        raise AssertionError(str(error)) from None
    try:
        function(IcmpMessage.parse(REQUEST), 1.0)
    except NotImplementedError:
        raise NotAnswered(f"timestamp_reply in {path.name} is not written yet") from None
    return function


def not_written(request, now):
    raise NotImplementedError("the stub")


def timestamp_replies(rig):
    return [d for d in rig.sent_by_host() if isinstance(d.data, dpkt.icmp.ICMP) and d.data.type == 14]


@check.item("off by default: a Timestamp request is discarded (icmp_type_not_handled), nothing sent")
def off_by_default(ctx):
    with ctx.rig() as rig:
        changed = rig.send(on_link(rig, ipv4(REQUEST)))
        assert changed.get("drop.icmp_type_not_handled") == 1, f"counters that changed: {changed}"
        assert not timestamp_replies(rig)


@check.item("a timestamp_reply that raises (the stub) is counted and dropped; the host keeps answering ping")
def stub_never_crashes(ctx):
    with ctx.rig(timestamp_reply=not_written) as rig:
        changed = rig.send(on_link(rig, ipv4(REQUEST)))
        assert changed.get("drop.icmp_timestamp_reply_failed") == 1, f"counters that changed: {changed}"
        assert "NotImplementedError" in rig.trace
        assert rig.ping(count=1).received == 1


@check.item("a Timestamp request to the broadcast address is ignored before the function is asked (RFC 1122 3.2.2.8)")
def broadcast_ignored(ctx):
    calls = []
    with ctx.rig(timestamp_reply=lambda request, now: calls.append(request)) as rig:
        changed = rig.send(on_link(rig, ipv4(REQUEST, destination="192.0.2.255"),
                                   destination_mac="ff:ff:ff:ff:ff:ff"))
        assert changed.get("drop.icmp_timestamp_to_broadcast_ignored") == 1, f"counters that changed: {changed}"
        assert calls == []


@check.item("your timestamp_reply: type 14 code 0, the request's identifier, sequence and originate timestamp")
def reply_fields(ctx):
    function = student_function(ctx)
    with ctx.rig(timestamp_reply=function) as rig:
        changed = rig.send(on_link(rig, ipv4(REQUEST)))
        assert changed.get("icmp_timestamp_replies_sent") == 1, f"no reply; counters that changed: {changed}"
        (reply,) = timestamp_replies(rig)
    message = bytes(reply.data)
    assert message[1] == 0, f"code {message[1]}, not 0"
    assert message[4:8] == REQUEST[4:8], "identifier and sequence number are the request's"
    assert len(message) == 20, f"a Timestamp Reply is 20 bytes, this one {len(message)}"
    assert message[8:12] == ORIGINATE, "the originate timestamp is returned as it came"
    assert internet_checksum(message) == 0, "the checksum does not verify"
    # RFC 1122 3.2.2.8: from the request's specific destination.
    assert reply.src == rig.host_ip.packed and reply.dst == rig.peer_ip.packed


@check.item("your timestamp_reply: receive and transmit timestamps are now in ms, high-order bit set (RFC 792)")
def reply_timestamps(ctx):
    function = student_function(ctx)
    reply = function(IcmpMessage.parse(REQUEST), 12.345)
    assert isinstance(reply, IcmpMessage), f"returned {reply!r}, not an IcmpMessage"
    data = bytes(reply.payload)
    assert len(data) == 12, f"{len(data)} bytes of timestamps, not 12"
    expected = 0x80000000 | 12345
    for name, value in (("receive", data[4:8]), ("transmit", data[8:12])):
        got = int.from_bytes(value, "big")
        assert got == expected, (f"{name} timestamp {got:#010x} at now=12.345 s: should be {expected:#010x} "
                                 "(milliseconds, and the high-order bit says 'not since midnight UT')")


@check.item("your timestamp_reply refuses malformed requests (data not 12 bytes, code not 0): counted, nothing sent")
def refuses_malformed(ctx):
    function = student_function(ctx)
    short = icmp_message(13, 0, b"\x00\x06\x00\x0a", ORIGINATE)
    odd_code = icmp_message(13, 1, b"\x00\x06\x00\x0b", ORIGINATE + bytes(8))
    with ctx.rig(timestamp_reply=function) as rig:
        for message in (short, odd_code):
            changed = rig.send(on_link(rig, ipv4(message)))
            assert changed.get("drop.icmp_timestamp_request_refused") == 1, (
                f"request {message.hex()}: counters that changed: {changed} (return None to refuse)")
        assert not timestamp_replies(rig)
