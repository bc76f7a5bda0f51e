"""Lab 04 checker: fragmentation and reassembly. ``tapstack lab check 04``."""

from stack.tools.lab import Checker, icmp_message, ipv4, on_link

check = Checker()
MORE_FRAGMENTS = 0x2000
OFFSET_MASK = 0x1FFF


def fragments(datagrams):
    """(offset in bytes, more-fragments flag, payload length) of each fragment, in capture order."""
    return [((d._flags_offset & OFFSET_MASK) * 8, bool(d._flags_offset & MORE_FRAGMENTS), d.len - d.hl * 4)
            for d in datagrams if d._flags_offset & (MORE_FRAGMENTS | OFFSET_MASK)]


def echo_fragments(data_size, mtu=1500):
    """The fragments of one echo request with ``data_size`` bytes of data, split at ``mtu``."""
    message = icmp_message(8, 0, b"\x00\x04\x00\x01", bytes(i & 0xFF for i in range(data_size)))
    room = (mtu - 20) // 8 * 8
    pieces = []
    for start in range(0, len(message), room):
        chunk = message[start:start + room]
        pieces.append(ipv4(chunk, identification=0x0404, offset=start,
                           more_fragments=start + room < len(message), total_length=20 + len(chunk)))
    return pieces


@check.item("a 3000-byte ping crosses in fragments both ways, and is answered")
def big_ping(ctx):
    with ctx.rig() as rig:
        outcome = rig.ping(count=2, size=3000)
        assert outcome.received == 2, outcome.output
        assert rig.stats["ipv4_reassembled"] == 2, "tapstack should have reassembled two requests"
        inbound, outbound = fragments(rig.sent_by_peer()), fragments(rig.sent_by_host())
        assert len(inbound) == 6 and len(outbound) == 6, f"fragments in {inbound}, out {outbound}"


@check.item("tapstack's fragments: offsets multiples of 8, More Fragments on all but the last (RFC 791)")
def fragment_rules(ctx):
    with ctx.rig() as rig:
        rig.ping(count=1, size=3000)
        outbound = fragments(rig.sent_by_host())
    assert [offset for offset, _, _ in outbound] == [0, 1480, 2960], outbound
    assert [more for _, more, _ in outbound] == [True, True, False], outbound
    assert sum(size for _, _, size in outbound) == 3008, "8 bytes of ICMP header + 3000 of data"
    assert all(20 + size <= 1500 for _, _, size in outbound), "a fragment above the MTU"


@check.item("fragments arriving in reverse order are reassembled and answered (RFC 1122 3.3.2)")
def reverse_order(ctx):
    with ctx.rig() as rig:
        pieces = echo_fragments(2000)
        for piece in reversed(pieces):
            changed = rig.send(on_link(rig, piece))
        assert changed.get("ipv4_reassembled") == 1, f"counters that changed: {changed}"
        assert changed.get("icmp_echo_replies_sent") == 1


@check.item("overlapping fragments discard the whole datagram (ipv4_fragment_overlap, RFC 5722)")
def overlap(ctx):
    with ctx.rig() as rig:
        first, second = echo_fragments(2000)
        rig.send(on_link(rig, first))
        overlapping = ipv4(bytes(16), identification=0x0404, offset=1472, more_fragments=False)
        changed = rig.send(on_link(rig, overlapping))
        assert changed.get("drop.ipv4_fragment_overlap"), f"counters that changed: {changed}"
        changed = rig.send(on_link(rig, second))
        assert "icmp_echo_replies_sent" not in changed, "a datagram with overlapping fragments was answered"


@check.item("answers.toml: how a ping of 4000 data bytes is split at MTU 1500")
def answer_split(ctx):
    count = ctx.answers.number("fragment_count")
    offsets = ctx.answers.numbers("fragment_offsets")
    last = ctx.answers.number("last_fragment_data_bytes")
    with ctx.rig() as rig:
        rig.ping(count=1, size=4000)
        outbound = fragments(rig.sent_by_host())
    assert count == len(outbound), f"fragment_count = {count}: 4008 bytes of ICMP, 1480 per fragment"
    expected_offsets = [offset // 8 for offset, _, _ in outbound]
    assert offsets == expected_offsets, (
        f"fragment_offsets = {offsets}: the field counts 8-byte units (RFC 791), one value per fragment")
    assert last == outbound[-1][2], f"last_fragment_data_bytes = {last}: what is left after the full ones"
