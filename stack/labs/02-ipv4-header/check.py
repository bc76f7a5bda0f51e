"""Lab 02 checker: the IPv4 header and its checksum. ``tapstack lab check 02``."""

from stack.checksum import internet_checksum
from stack.tools.explain import explain
from stack.tools.lab import Checker, icmp_message, ipv4, on_link, with_bit_flipped

check = Checker()

#: The header of the worksheet, checksum field (bytes 10-11) zeroed: the student sums it by hand.
WORKSHEET_HEADER = bytes.fromhex("4500 0054 1c46 4000 4001 0000 c000 0201 c000 0202")
ECHO = icmp_message(8, 0, b"\x00\x02\x00\x01", b"lab02 checksum")


@check.item("a datagram with a wrong header checksum is dropped, and the trace says RFC 1122 3.2.1.2")
def bad_checksum_dropped(ctx):
    with ctx.rig() as rig:
        changed = rig.send(on_link(rig, with_bit_flipped(ipv4(ECHO), 11)))
        assert changed.get("drop.ipv4_bad_checksum") == 1, f"counters that changed: {changed}"
        assert "icmp_echo_replies_sent" not in changed, "tapstack answered a corrupted datagram"
        lines = [line for line in rig.trace.splitlines() if "drop ipv4_bad_checksum" in line]
        assert lines and "RFC 1122 3.2.1.2" in lines[0], rig.trace
        assert "should be" in lines[0], "the trace line shows what the checksum should have been"


@check.item("the same datagram with its checksum right is answered")
def good_checksum_answered(ctx):
    with ctx.rig() as rig:
        changed = rig.send(on_link(rig, ipv4(ECHO)))
        assert changed.get("icmp_echo_replies_sent") == 1, f"counters that changed: {changed}"


@check.item("every header tapstack sends verifies: the ones' complement sum over it is 0")
def sent_headers_verify(ctx):
    with ctx.rig() as rig:
        rig.ping(count=2)
        sent = rig.sent_by_host()
        assert len(sent) == 2, f"expected 2 echo replies in the capture, found {len(sent)} datagrams"
        for datagram in sent:
            header = bytes(datagram)[:datagram.hl * 4]
            assert internet_checksum(header) == 0, f"header {header.hex()} does not verify"


@check.item("tapstack explain shows a wrong header checksum as WRONG, with the value it computed")
def explain_shows_checksum(ctx):
    with ctx.rig() as rig:
        frame = on_link(rig, with_bit_flipped(ipv4(ECHO), 11))
    text = explain(frame, "ethernet" if rig.medium == "ethernet" else "ip")
    checksum_lines = [line for line in text.splitlines() if "header checksum" in line.lower()]
    assert any("WRONG" in line for line in checksum_lines), text
    assert "ipv4_bad_checksum" in text and "RFC 1122 3.2.1.2" in text, text


@check.item("--ttl 32 (TapHost(ttl=32)) makes every reply leave with TTL 32 (RFC 1122 3.2.1.7)")
def configured_ttl(ctx):
    with ctx.rig(ttl=32) as rig:
        rig.ping(count=1)
        ttls = {d.ttl for d in rig.sent_by_host()}
    assert ttls == {32}, f"replies left with TTL {ttls}"


@check.item("answers.toml: the header checksum of the worksheet's header, by hand")
def answer_checksum(ctx):
    given = ctx.answers.number("header_checksum")
    filled = WORKSHEET_HEADER[:10] + (given & 0xFFFF).to_bytes(2, "big") + WORKSHEET_HEADER[12:]
    total = internet_checksum(filled)
    assert 0 <= given <= 0xFFFF and total == 0, (
        f"header_checksum = {given:#06x}: with it in the header, the checksum over the header comes to "
        f"{total:#06x}, not 0x0000. Sum the ten 16-bit words (checksum as 0), fold the carries, invert.")


@check.item("answers.toml: the total length of an IPv4 datagram carrying a default ping (56 data bytes)")
def answer_total_length(ctx):
    given = ctx.answers.number("ping_total_length")
    with ctx.rig() as rig:
        rig.ping(count=1, size=56)
        lengths = {d.len for d in rig.sent_by_peer()}
    assert given in lengths, f"ping_total_length = {given}: header + ICMP header + data"


@check.item("answers.toml: the TTL of tapstack's replies by default")
def answer_ttl(ctx):
    given = ctx.answers.number("default_ttl")
    with ctx.rig() as rig:
        rig.ping(count=1)
        ttls = {d.ttl for d in rig.sent_by_host()}
    assert given in ttls, f"default_ttl = {given}: read it in a trace, a capture or stack/l3/ipv4.py"
