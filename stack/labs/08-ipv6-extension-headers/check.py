"""Lab 08 checker: IPv6 extension headers and fragments. ``tapstack lab check 08``."""

from contextlib import contextmanager

from stack.testing import frames
from stack.tools.lab import Checker, Ipv6Link, on_link, set_link_mtu

check = Checker()

PEER6, HOST6, ALL_NODES = "2001:db8::1", "2001:db8::2", "ff02::1"
ALL_NODES_MAC = "33:33:00:00:00:01"  # RFC 2464 7: 33:33 and the group's last four octets
IPV6 = 0x86DD
HOP_BY_HOP, ROUTING, FRAGMENT, ICMPV6, DESTINATION_OPTIONS = 0, 43, 44, 58, 60
ECHO_REQUEST, ECHO_REPLY, PARAMETER_PROBLEM = 128, 129, 4
#: The action bits 00, 01, 10, 11 (RFC 8200 4.2) on option number 0x1e.
UNKNOWN_OPTIONS = (0x1E, 0x5E, 0x9E, 0xDE)
#: RFC 8200 5: the IPv6 minimum link MTU; the fragment items run at it.
MINIMUM_MTU = 1280
PING_SIZE = 3000


def echo(data=b"lab08", destination=HOST6, identifier=0x0808, sequence=1):
    return frames.icmpv6_echo(ECHO_REQUEST, identifier, sequence, data, dst=destination)


def packet(headers, next_header, upper, destination=HOST6):
    return frames.ipv6_packet(headers + upper, next_header=next_header, dst=destination)


# The worksheet's packets (README.md), laid out by hand: one extension header per line.
PACKET_C = packet(
    bytes.fromhex("3c00 0104 00000000")                        # Hop-by-Hop: PadN
    + bytes.fromhex("2b01 1e04 00000000 0106 000000000000")    # Destination: option 0x1e (00), PadN
    + bytes.fromhex("2c00 fd00 00000000")                      # Routing type 253, 0 segments left
    + bytes.fromhex("3a00 0000 08080808"),                     # Fragment: offset 0, M=0 (atomic)
    HOP_BY_HOP, echo(b"lab08 chain"))
P1 = packet(bytes.fromhex("3c00 0104 00000000")
            + bytes.fromhex("3a01 0102 0000 9e08 0000000000000000"),  # option 0x9e: action 10
            HOP_BY_HOP, echo())
P2 = packet(bytes.fromhex("2b00 0104 00000000")
            + bytes.fromhex("fd00 fd00 00000000"),  # Routing, 0 segments left, naming header 253
            HOP_BY_HOP, bytes(8))
P3 = packet(bytes.fromhex("2b00 0104 00000000")
            + bytes.fromhex("3a02 0001 00000000") + frames.ip6("2001:db8::3"),  # type 0, 1 left
            DESTINATION_OPTIONS, echo())
#: RFC 7112: a first fragment (M=1) that ends inside the Destination Options header it names.
SPLIT_CHAIN = packet(bytes.fromhex("3c00 0001 00000001") + bytes.fromhex("3a01 0104 00000000"), FRAGMENT, b"")
#: What answers P1, P2, P3 and SPLIT_CHAIN: (code, pointer), the pointer from the packet's
#: first octet (RFC 4443 3.4), worked out from the layouts above.
EXPECTED_PROBLEMS = {"P1": (2, 40 + 8 + 4 + 2), "P2": (1, 40 + 8), "P3": (0, 40 + 8 + 2), "SPLIT_CHAIN": (3, 0)}


def with_option(option_type, destination):
    """An echo request to ``destination`` with one option of ``option_type`` (two data octets)
    in a Destination Options header."""
    return packet(frames.options_header(ICMPV6, bytes([option_type, 2, 0, 0])), DESTINATION_OPTIONS,
                  echo(destination=destination), destination)


# ---------------------------------------------------------------------- reading packets
# By hand, apart from tapstack's codec (and dpkt's, which cannot walk fragment chains).


def walk(raw):
    """(next header values, offset of the upper layer, upper layer type, fragment) of an IPv6
    packet: each extension header names the next (RFC 8200 4); the fragment is (offset in
    8-octet units, M, data octets, identification) or None."""
    values, offset, fragment = [raw[6]], 40, None
    kind = raw[6]
    while kind in (HOP_BY_HOP, ROUTING, FRAGMENT, DESTINATION_OPTIONS) and offset + 8 <= len(raw):
        if kind == FRAGMENT:
            field = int.from_bytes(raw[offset + 2:offset + 4], "big")
            size = 8
            fragment = (field >> 3, bool(field & 1), len(raw) - offset - size,
                        int.from_bytes(raw[offset + 4:offset + 8], "big"))
        else:
            size = (raw[offset + 1] + 1) * 8  # Hdr Ext Len: 8-octet units after the first 8
        kind = raw[offset]
        values.append(kind)
        offset += size
        if fragment is not None and fragment[0]:
            break  # a later fragment: fragment data follows
    return values, offset, kind, fragment


def icmpv6_of(raw):
    """(type, code, the 4 octets after the checksum) of an unfragmented ICMPv6 packet, or None."""
    _, offset, kind, fragment = walk(raw)
    if kind != ICMPV6 or fragment is not None and (fragment[0] or fragment[1]) or len(raw) < offset + 8:
        return None
    return raw[offset], raw[offset + 1], int.from_bytes(raw[offset + 4:offset + 8], "big")


def sent(rig, kind, code=None):
    """The ICMPv6 messages of ``kind`` (and ``code``) tapstack sent: (code, the 4 octets) each."""
    found = []
    for raw in sent_by_host(rig):
        message = icmpv6_of(raw)
        if message and message[0] == kind and code in (None, message[1]):
            found.append(message[1:])
    return found


def fragments(packets):
    """(offset units, M, data octets, length) of each fragment among ``packets``."""
    out = []
    for raw in packets:
        fragment = walk(raw)[3]
        if fragment is not None and (fragment[0] or fragment[1]):
            out.append((fragment[0], fragment[1], fragment[2], len(raw)))
    return out


def echo_fragments(data_size, identification=0x08080808, mtu=MINIMUM_MTU):
    """An echo request with ``data_size`` octets of data in fragments that fit ``mtu``, each
    carrying the fixed header and a Fragment header (RFC 8200 4.5)."""
    message = echo(bytes(i & 0xFF for i in range(data_size)))
    room = (mtu - 40 - 8) // 8 * 8
    return [packet(frames.fragment_header(ICMPV6, start // 8, start + room < len(message), identification),
                   FRAGMENT, message[start:start + room])
            for start in range(0, len(message), room)]


@contextmanager
def rig6(ctx, mtu=None):
    """An IPv6 rig: tapstack 2001:db8::2, the peer 2001:db8::1 (a second tapstack host, or the
    kernel); with ``mtu``, both ends of the link send within it."""
    with ctx.rig(ipv6=Ipv6Link()) as rig:
        if mtu is not None:
            set_link_mtu(rig, mtu)
        yield rig


def packets(rig):
    """The IPv6 packets of the capture, as bytes."""
    out = []
    for frame in rig.capture():
        if rig.medium == "ethernet":
            if frame[12:14] != IPV6.to_bytes(2, "big"):
                continue
            frame = frame[14:]
        if frame[:1] and frame[0] >> 4 == 6:
            out.append(frame)
    return out


def sent_by_host(rig):
    return [raw for raw in packets(rig) if raw[8:24] == frames.ip6(HOST6)]


def sent_by_peer(rig):
    return [raw for raw in packets(rig) if raw[8:24] == frames.ip6(PEER6)]


def send6(rig, raw, destination_mac=None):
    return rig.send(on_link(rig, raw, destination_mac))


def problems_for(rig, destination):
    """How many Parameter Problems tapstack sends for each of UNKNOWN_OPTIONS to ``destination``."""
    counts = []
    mac = ALL_NODES_MAC if destination == ALL_NODES else None
    for option_type in UNKNOWN_OPTIONS:
        before = len(sent(rig, PARAMETER_PROBLEM))
        send6(rig, with_option(option_type, destination), mac)
        counts.append(len(sent(rig, PARAMETER_PROBLEM)) - before)
    return counts


def problem_for(rig, raw):
    """The (code, pointer) of the Parameter Problem tapstack sends about ``raw``, or None."""
    before = len(sent(rig, PARAMETER_PROBLEM))
    send6(rig, raw)
    after = sent(rig, PARAMETER_PROBLEM)
    return after[-1] if len(after) > before else None


# ---------------------------------------------------------------------- the stack's part


@check.item("packet C: hop-by-hop, destination options, routing (0 left), atomic fragment: walked, answered")
def chain_answered(ctx):
    with rig6(ctx) as rig:
        changed = send6(rig, PACKET_C)
        assert changed.get("icmpv6_echo_replies_sent") == 1, f"counters that changed: {changed}"
        assert not any(name.startswith("drop.ipv6") for name in changed), f"counters that changed: {changed}"


@check.item("unknown options to 2001:db8::2: 00 skipped, 01 dropped, 10 and 11 Parameter Problem (RFC 8200 4.2)")
def options_unicast(ctx):
    with rig6(ctx) as rig:
        counts = problems_for(rig, HOST6)
        assert counts == [0, 0, 1, 1], f"Parameter Problems for 0x1e, 0x5e, 0x9e, 0xde: {counts}"
        assert len(sent(rig, ECHO_REPLY)) == 1, "only the request with option 0x1e (00: skip) is answered"
        assert rig.stats["drop.ipv6_unrecognised_option"] == 3, rig.stats.as_dict()


@check.item("unknown options to ff02::1: 10 still reported, 11 not (RFC 8200 4.2, RFC 4443 2.4 (e))")
def options_multicast(ctx):
    with rig6(ctx) as rig:
        counts = problems_for(rig, ALL_NODES)
        assert counts == [0, 0, 1, 0], f"Parameter Problems for 0x1e, 0x5e, 0x9e, 0xde: {counts}"
        pointers = [pointer for _, pointer in sent(rig, PARAMETER_PROBLEM, 2)]
        assert pointers == [40 + 2], f"the pointer names the option type (octet 42), not {pointers}"


@check.item("P1, P2, P3 and a first fragment without the whole chain: Parameter Problem code and pointer")
def parameter_problems(ctx):
    with rig6(ctx) as rig:
        for name, expected in EXPECTED_PROBLEMS.items():
            got = problem_for(rig, globals()[name])
            assert got == expected, f"{name}: Parameter Problem (code, pointer) {got}, expected {expected}"


@check.item("a 3000-byte ping at MTU 1280 crosses in 3 fragments each way, and is answered (RFC 8200 4.5)")
def big_ping(ctx):
    with rig6(ctx, MINIMUM_MTU) as rig:
        outcome = rig.ping(count=2, size=PING_SIZE)
        assert outcome.received == 2, outcome.output
        assert rig.stats["ipv6_reassembled"] == 2, "tapstack should have reassembled two requests"
        for who, seen in (("the peer's", sent_by_peer(rig)), ("tapstack's", sent_by_host(rig))):
            pieces = fragments(seen)
            assert [offset for offset, _, _, _ in pieces] == [0, 154, 308] * 2, f"{who} fragments {pieces}"
            assert [more for _, more, _, _ in pieces] == [True, True, False] * 2, f"{who} fragments {pieces}"
            assert sum(size for _, _, size, _ in pieces) == 2 * (8 + PING_SIZE), f"{who} fragments {pieces}"
            assert all(length <= MINIMUM_MTU for *_, length in pieces), f"{who}: a packet above the MTU"


@check.item("fragments arriving in reverse order are reassembled and answered (RFC 8200 4.5)")
def reverse_order(ctx):
    with rig6(ctx) as rig:
        for piece in reversed(echo_fragments(2000)):
            changed = send6(rig, piece)
        assert changed.get("ipv6_reassembled") == 1, f"counters that changed: {changed}"
        assert changed.get("icmpv6_echo_replies_sent") == 1, f"counters that changed: {changed}"


def overlap_drops(rig):
    """The drop reasons of an overlapping fragment and of the fragment that comes after it."""
    first, second = echo_fragments(2000)
    send6(rig, first)
    # Data from octet 1224: the first fragment's last 8 octets again (RFC 5722).
    overlapping = packet(frames.fragment_header(ICMPV6, 1224 // 8, True, 0x08080808), FRAGMENT, bytes(16))
    changed = send6(rig, overlapping)
    later = send6(rig, second)
    # Only IPv6's drops: the kernel's own frames (its MLD reports to other groups) may cross meanwhile.
    return ([name[5:] for name in changed if name.startswith("drop.ipv6")],
            [name[5:] for name in later if name.startswith("drop.ipv6")], later)


@check.item("overlapping fragments discard the whole packet, and its later fragments (RFC 5722)")
def overlap(ctx):
    with rig6(ctx) as rig:
        dropped, later, changed = overlap_drops(rig)
        assert dropped == ["ipv6_fragment_overlap"], f"the overlapping fragment: drops {dropped}"
        assert later == ["ipv6_fragment_of_discarded"], f"the next fragment: drops {later}"
        assert "icmpv6_echo_replies_sent" not in changed, "a packet with overlapping fragments was answered"


# ---------------------------------------------------------------------- the student's part


@check.item("answers.toml: walking packet C's header chain")
def answer_chain(ctx):
    values = ctx.answers.numbers("chain_next_headers")
    octets = ctx.answers.number("destination_options_octets")
    offset = ctx.answers.number("upper_layer_offset")
    expected_values, expected_offset, _, _ = walk(PACKET_C)
    assert values == expected_values, (
        f"chain_next_headers = {values}: start at the fixed header's Next Header (octet 6), then each "
        "extension header's first octet names the next")
    destination = PACKET_C[48:]
    assert octets == (destination[1] + 1) * 8, (
        f"destination_options_octets = {octets}: Hdr Ext Len counts 8-octet units after the first 8")
    assert offset == expected_offset, f"upper_layer_offset = {offset}: 40, then each header's length"
    with rig6(ctx) as rig:  # and tapstack reads it so: the reply echoes the request's data
        send6(rig, PACKET_C)
        assert sent(rig, ECHO_REPLY), "tapstack did not answer packet C"


@check.item("answers.toml: how many Parameter Problems each action bit causes, unicast and multicast")
def answer_actions(ctx):
    unicast = ctx.answers.numbers("parameter_problems_unicast")
    multicast = ctx.answers.numbers("parameter_problems_multicast")
    with rig6(ctx) as rig:
        seen_unicast = problems_for(rig, HOST6)
        seen_multicast = problems_for(rig, ALL_NODES)
    assert unicast == seen_unicast, (
        f"parameter_problems_unicast = {unicast}: RFC 8200 4.2, the two high bits of the option type")
    assert multicast == seen_multicast, (
        f"parameter_problems_multicast = {multicast}: RFC 8200 4.2, which action spares multicast?")


@check.item("answers.toml: the code and pointer of the Parameter Problems about P1, P2, P3")
def answer_pointers(ctx):
    keys = {"P1": "unknown_option", "P2": "unknown_next_header", "P3": "unknown_routing_type"}
    given = {name: ctx.answers.numbers(key) for name, key in keys.items()}
    with rig6(ctx) as rig:
        for name, answer in given.items():
            got = problem_for(rig, globals()[name])
            assert got is not None, f"tapstack sent no Parameter Problem about {name}"
            assert answer == list(got), (
                f"{keys[name]} = {answer}: [code, pointer], the pointer counted from the IPv6 header's "
                "first octet to the octet at fault (RFC 4443 3.4)")


@check.item("answers.toml: a 3000-byte echo request in fragments at MTU 1280")
def answer_fragments(ctx):
    count = ctx.answers.number("fragment_count")
    offsets = ctx.answers.numbers("fragment_offsets")
    first = ctx.answers.number("first_fragment_data_octets")
    with rig6(ctx, MINIMUM_MTU) as rig:
        rig.ping(count=1, size=PING_SIZE)
        pieces = fragments(sent_by_host(rig))
    assert count == len(pieces), f"fragment_count = {count}: 3008 octets of ICMPv6, how many per fragment?"
    assert offsets == [offset for offset, _, _, _ in pieces], (
        f"fragment_offsets = {offsets}: the field counts 8-octet units (RFC 8200 4.5), one per fragment")
    assert first == pieces[0][2], (
        f"first_fragment_data_octets = {first}: 1280, less the fixed header and the Fragment header, "
        "down to a multiple of 8")


@check.item("answers.toml: the drop reasons of overlapping fragments")
def answer_overlap(ctx):
    overlap_reason = ctx.answers.text("overlap_drop_reason")
    later_reason = ctx.answers.text("later_fragment_drop_reason")
    with rig6(ctx) as rig:
        dropped, later, _ = overlap_drops(rig)
    assert [overlap_reason] == dropped, (
        f"overlap_drop_reason = {overlap_reason!r}: read it in a kept trace (lab check 08 --keep)")
    assert [later_reason] == later, (
        f"later_fragment_drop_reason = {later_reason!r}: RFC 5722 3, the fragments not yet received")
