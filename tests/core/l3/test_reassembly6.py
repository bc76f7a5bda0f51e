"""IPv6 reassembly (stack.l3.reassembly6, RFC 8200 4.5, RFC 5722, RFC 6946): whole packets from
fragments in any order, the Unfragmentable Part of the first fragment, overlaps, atomic
fragments, the 60 s timeout and the bounds; hypothesis against a plain model.

Fragments are built here by hand with ``struct`` (never with ``stack.l3.output6``)."""

from __future__ import annotations

import struct
from ipaddress import IPv6Address

import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, precondition, rule

from stack.l3.ipv6 import Ipv6Packet
from stack.l3.reassembly6 import REASSEMBLY6_TIMEOUT_S, Ipv6Reassembler

SOURCE, DESTINATION = IPv6Address("2001:db8::1"), IPv6Address("2001:db8::2")
UDP, FRAGMENT, HOP_BY_HOP, DESTINATION_OPTIONS = 17, 44, 0, 60
#: A Destination Options header of 8 octets (Next Header to be filled in, PadN of 4).
DESTINATION_HEADER = bytes([0, 0, 1, 4, 0, 0, 0, 0])


def fixed(next_header: int, payload_length: int, source=SOURCE, destination=DESTINATION) -> bytes:
    return struct.pack("!IHBB16s16s", 0x60000000, payload_length, next_header, 64, source.packed, destination.packed)


def fragment(data: bytes, start: int, stop: int, ident: int = 7, more: bool | None = None,
             next_header: int = UDP, unfragmentable: bytes = b"", source=SOURCE) -> bytes:
    """The fragment of ``data`` from ``start`` to ``stop``: fixed header, ``unfragmentable``
    (one Destination Options header, or nothing), the Fragment header, the data."""
    more = stop < len(data) if more is None else more
    fragment_header = struct.pack("!BBHI", next_header, 0, start // 8 << 3 | int(more), ident)
    if unfragmentable:
        unfragmentable = bytes([FRAGMENT]) + unfragmentable[1:]
    body = unfragmentable + fragment_header + data[start:stop]
    return fixed(DESTINATION_OPTIONS if unfragmentable else FRAGMENT, len(body), source) + body


def whole(data: bytes, next_header: int = UDP, unfragmentable: bytes = b"") -> bytes:
    """The packet the fragments came from, as a sender would have sent it unfragmented."""
    if unfragmentable:
        unfragmentable = bytes([next_header]) + unfragmentable[1:]
    return fixed(DESTINATION_OPTIONS if unfragmentable else next_header, len(unfragmentable) + len(data)) \
        + unfragmentable + data


def add(reassembler: Ipv6Reassembler, raw: bytes, now: float = 0.0):
    packet = Ipv6Packet.parse(raw)
    return reassembler.add(packet, raw, packet.chain(), now)


DATA = bytes(range(256)) * 10  # 2560 bytes


def test_rfc8200_4_5_fragments_in_any_order_make_the_packet_without_the_fragment_header():
    reassembler = Ipv6Reassembler()
    first, second, third = (fragment(DATA, 0, 1232), fragment(DATA, 1232, 2464), fragment(DATA, 2464, 2560))
    assert add(reassembler, third).packet is None
    assert add(reassembler, first).packet is None
    outcome = add(reassembler, second)
    assert outcome.packet == whole(DATA)
    assert outcome.reason is None and reassembler.held == 0 and not reassembler.partials


def test_rfc8200_4_5_the_unfragmentable_part_and_next_header_come_from_the_first_fragment():
    reassembler = Ipv6Reassembler()
    # a later fragment with no Destination Options header and another Next Header: ignored
    add(reassembler, fragment(DATA, 1232, 2560, next_header=58))
    outcome = add(reassembler, fragment(DATA, 0, 1232, unfragmentable=DESTINATION_HEADER))
    assert outcome.packet == whole(DATA, unfragmentable=DESTINATION_HEADER)
    packet = Ipv6Packet.parse(outcome.packet)
    assert packet.next_header == DESTINATION_OPTIONS and packet.chain().upper_layer == UDP
    assert packet.payload_length == 8 + len(DATA)


def test_rfc6946_an_atomic_fragment_is_processed_at_once_apart_from_the_others():
    reassembler = Ipv6Reassembler()
    add(reassembler, fragment(DATA, 0, 1232, ident=9))
    outcome = add(reassembler, fragment(b"hello", 0, 5, ident=9))
    assert outcome.packet == whole(b"hello")
    assert len(reassembler.partials) == 1 and reassembler.partials[(SOURCE, DESTINATION, 9)].starts == [0]
    assert add(reassembler, fragment(DATA, 1232, 2560, ident=9)).packet == whole(DATA)


def test_rfc8200_4_5_fragments_are_keyed_by_source_destination_and_identification():
    reassembler = Ipv6Reassembler()
    add(reassembler, fragment(DATA, 0, 1232, ident=1))
    add(reassembler, fragment(DATA, 0, 1232, ident=2))
    assert add(reassembler, fragment(DATA, 1232, 2560, ident=1, source=IPv6Address("2001:db8::9"))).packet is None
    assert len(reassembler.partials) == 3
    assert add(reassembler, fragment(DATA, 1232, 2560, ident=2)).packet == whole(DATA)


def test_rfc5722_an_overlap_discards_the_datagram_and_its_later_fragments():
    reassembler = Ipv6Reassembler()
    add(reassembler, fragment(DATA, 0, 1232))
    add(reassembler, fragment(DATA, 1232, 2464))
    outcome = add(reassembler, fragment(DATA, 1224, 1240, more=True))
    assert (outcome.packet, outcome.reason, outcome.discarded) == (None, "ipv6_fragment_overlap", 2)
    assert not reassembler.partials and reassembler.held == 0
    # "including those not yet received": the rest of it is discarded too, until the timeout
    late = add(reassembler, fragment(DATA, 2464, 2560), now=59.0)
    assert (late.packet, late.reason) == (None, "ipv6_fragment_of_discarded")
    assert add(reassembler, fragment(DATA, 0, 1232), now=60.0).reason is None  # a new one after it


def test_an_empty_fragment_drops_what_is_held_of_its_packet_as_linux_does():
    """tapstack diff --ipv6 found it: Linux 6.18 drops an empty (not first) fragment with what it
    holds of the packet; first, nothing is held and the packet is still put together."""
    reassembler = Ipv6Reassembler()
    outcome = add(reassembler, fragment(DATA, 1232, 1232, more=True))  # empty, nothing held yet
    assert (outcome.packet, outcome.reason, outcome.discarded) == (None, "ipv6_fragment_empty", 0)
    add(reassembler, fragment(DATA, 0, 1232))
    assert add(reassembler, fragment(DATA, 1232, 2560)).packet == whole(DATA)
    add(reassembler, fragment(DATA, 0, 1232))
    outcome = add(reassembler, fragment(DATA, 1232, 1232, more=False))
    assert (outcome.packet, outcome.reason, outcome.discarded) == (None, "ipv6_fragment_empty", 1)
    assert not reassembler.partials and reassembler.held == 0 and not reassembler.discarded
    assert add(reassembler, fragment(DATA, 1232, 2560)).reason is None  # anew: not remembered


def test_rfc5722_each_discarded_datagram_is_remembered_for_its_own_60_seconds():
    reassembler = Ipv6Reassembler()
    add(reassembler, fragment(DATA, 0, 1232, ident=1), now=0.0)
    add(reassembler, fragment(DATA, 0, 1232, ident=2), now=30.0)
    add(reassembler, fragment(DATA, 8, 16, ident=2, more=True), now=31.0)  # discarded first, until 90
    add(reassembler, fragment(DATA, 8, 16, ident=1, more=True), now=32.0)  # then this one, until 60
    assert add(reassembler, fragment(DATA, 1232, 2560, ident=1), now=61.0).reason is None
    assert add(reassembler, fragment(DATA, 1232, 2560, ident=2), now=61.0).reason == "ipv6_fragment_of_discarded"


def test_rfc8200_4_5_an_exact_duplicate_is_dropped_and_the_datagram_goes_on():
    reassembler = Ipv6Reassembler()
    add(reassembler, fragment(DATA, 0, 1232))
    assert add(reassembler, fragment(DATA, 0, 1232)).reason == "ipv6_fragment_duplicate"
    assert add(reassembler, fragment(DATA, 1232, 2560)).packet == whole(DATA)


def test_fragments_that_disagree_about_the_end_discard_the_datagram():
    reassembler = Ipv6Reassembler()
    add(reassembler, fragment(DATA, 1232, 2560))
    outcome = add(reassembler, fragment(DATA, 1232, 2464, more=False))
    assert (outcome.reason, outcome.discarded) == ("ipv6_fragment_inconsistent", 1)


def test_rfc8200_4_5_the_first_fragments_headers_may_not_take_the_packet_past_65535():
    reassembler = Ipv6Reassembler()
    big = bytes(65528 + 7)
    add(reassembler, fragment(big, 65528, 65535))  # fits with no headers before it: the codec passes it
    outcome = add(reassembler, fragment(big, 0, 1232, unfragmentable=DESTINATION_HEADER))
    assert (outcome.reason, outcome.discarded) == ("ipv6_fragment_too_large", 1)


def test_rfc8200_4_5_time_exceeded_after_60_seconds_quotes_the_first_fragment():
    reassembler = Ipv6Reassembler()
    first = fragment(DATA, 0, 1232, ident=1)
    add(reassembler, first, now=10.0)
    add(reassembler, fragment(DATA, 1232, 2464, ident=2), now=20.0)
    assert REASSEMBLY6_TIMEOUT_S == 60.0 and reassembler.next_deadline() == 70.0
    assert reassembler.expire(69.9) == []
    (expired,) = reassembler.expire(70.0)
    assert (expired.key, expired.first_raw, expired.fragments) == ((SOURCE, DESTINATION, 1), first, 1)
    assert reassembler.next_deadline() == 80.0
    (later,) = reassembler.expire(80.0)
    assert later.first_raw == b""  # no first fragment: no Time Exceeded
    assert reassembler.next_deadline() is None and reassembler.held == 0


def test_the_first_fragments_quote_leaves_out_link_padding():
    reassembler = Ipv6Reassembler()
    first = fragment(DATA, 0, 8)
    add(reassembler, first + bytes(6))  # Ethernet padding after the packet
    assert reassembler.expire(60.0)[0].first_raw == first


def test_the_oldest_datagram_is_evicted_past_the_datagram_cap():
    reassembler = Ipv6Reassembler(max_datagrams=2)
    for ident in (1, 2, 3):
        add(reassembler, fragment(DATA, 1232, 2560, ident=ident))
    assert [key[2] for key in reassembler.partials] == [2, 3] and reassembler.evicted == 1


def test_the_oldest_datagram_is_evicted_past_the_byte_cap_and_one_alone_past_it_is_given_up():
    reassembler = Ipv6Reassembler(max_bytes=2000)
    add(reassembler, fragment(DATA, 1232, 2560, ident=1))
    add(reassembler, fragment(DATA, 1232, 2560, ident=2))
    assert [key[2] for key in reassembler.partials] == [2] and reassembler.evicted == 1
    outcome = add(reassembler, fragment(DATA, 0, 1232, ident=2))
    assert (outcome.reason, outcome.discarded) == ("ipv6_reassembly_evicted", 1)
    assert reassembler.held == 0
    assert add(reassembler, fragment(DATA, 1232, 2560, ident=2)).reason is None  # not remembered


def test_a_chain_without_a_fragment_header_is_our_misuse():
    packet = Ipv6Packet.parse(whole(b"abc"))
    with pytest.raises(ValueError, match="no Fragment header"):
        Ipv6Reassembler().add(packet, whole(b"abc"), packet.chain(), 0.0)


# ----------------------------------------------------------------------------- properties


@st.composite
def cuts(draw, size: int) -> list[tuple[int, int]]:
    """Boundaries of a fragmentation: multiples of 8 except the end; at least two pieces."""
    points = sorted(draw(st.sets(st.integers(1, max(1, (size - 1) // 8)), min_size=1, max_size=12)))
    bounds = [0] + [p * 8 for p in points if p * 8 < size] + [size]
    return list(zip(bounds, bounds[1:]))


@settings(max_examples=200)
@given(st.binary(min_size=9, max_size=3000).flatmap(lambda d: st.tuples(st.just(d), cuts(len(d)))),
       st.booleans(), st.randoms(use_true_random=False))
def test_any_permutation_of_any_fragmentation_reassembles(case, with_options, rng):
    data, pieces = case
    rng.shuffle(pieces)
    options = DESTINATION_HEADER if with_options else b""
    reassembler = Ipv6Reassembler()
    outcomes = [add(reassembler, fragment(data, a, b, unfragmentable=options if a == 0 else b""))
                for a, b in pieces]
    assert all(o.packet is None and o.reason is None for o in outcomes[:-1])
    assert outcomes[-1].packet == whole(data, unfragmentable=options)
    assert reassembler.held == 0 and not reassembler.partials


def model(size: int, arrivals: list[tuple[int, int]]) -> list[str]:
    """RFC 5722 as plainly as possible: per arrival (start, stop): "duplicate" of a held piece,
    "discarded" when it overlaps one (and every arrival after that), "complete", or "held"."""
    held: set[tuple[int, int]] = set()
    outcomes: list[str] = []
    for start, stop in arrivals:
        if "discarded" in outcomes or "complete" in outcomes:
            outcomes.append("discarded" if "discarded" in outcomes else "held")
        elif (start, stop) in held:
            outcomes.append("duplicate")
        elif any(a < stop and start < b for a, b in held):
            held.clear()
            outcomes.append("discarded")
        else:
            held.add((start, stop))
            if sum(b - a for a, b in held) == size and any(a == 0 for a, _ in held) \
                    and any(b == size for _, b in held):
                outcomes.append("complete")
            else:
                outcomes.append("held")
    return outcomes


@st.composite
def overlapping_cases(draw):
    """A payload, its fragmentation, and one more fragment that overlaps a piece of it without
    being an exact duplicate (the pieces cover everything, so any other range overlaps)."""
    data = draw(st.binary(min_size=64, max_size=2000))
    pieces = draw(cuts(len(data)))
    units = len(data) // 8
    start = draw(st.integers(0, units - 1)) * 8
    stop = len(data) if draw(st.booleans()) else min(draw(st.integers(start // 8 + 1, units)) * 8, len(data))
    assume((start, stop) not in pieces and (start, stop) != (0, len(data)))
    return data, pieces, (start, stop)


@settings(max_examples=300)
@given(overlapping_cases(), st.data())
def test_rfc5722_overlaps_discard_the_datagram_as_the_model_says(case, draw):
    data, pieces, extra = case
    order = draw.draw(st.permutations([*pieces, extra]))
    reassembler = Ipv6Reassembler()
    seen = []
    for start, stop in order:
        outcome = add(reassembler, fragment(data, start, stop))
        if outcome.packet is not None:
            assert outcome.packet == whole(data)  # whatever completes is the packet
            seen.append("complete")
        elif outcome.reason == "ipv6_fragment_duplicate":
            seen.append("duplicate")
        elif outcome.reason in ("ipv6_fragment_overlap", "ipv6_fragment_inconsistent",
                                "ipv6_fragment_of_discarded"):
            seen.append("discarded")
        else:
            assert outcome.reason is None, outcome.reason
            seen.append("held")
    assert seen == model(len(data), order)


class Reassembly6AgainstAModel(RuleBasedStateMachine):
    """Arbitrary fragments of a few packets, with time passing: memory stays bounded and exactly
    the packets older than the timeout are given up."""

    MAX_BYTES = 1000
    MAX_DATAGRAMS = 4

    def __init__(self) -> None:
        super().__init__()
        self.reassembler = Ipv6Reassembler(max_datagrams=self.MAX_DATAGRAMS, max_bytes=self.MAX_BYTES)
        self.now = 0.0
        self.model_started: dict[int, float] = {}

    @rule(ident=st.integers(0, 7), offset=st.integers(0, 30).map(lambda unit: unit * 200),
          size=st.integers(0, 200), more=st.sampled_from([True] * 7 + [False]))
    def add(self, ident, offset, size, more):
        if more:
            size -= size % 8
            if offset == 0:
                size = max(size, 8)  # RFC 8200 4.5: a first fragment holds the UDP header (RFC 7112)
        data = bytes(offset + size)
        add(self.reassembler, fragment(data, offset, offset + size, ident=ident, more=more), self.now)
        keys = {key[2] for key in self.reassembler.partials}
        self.model_started = {i: started for i, started in self.model_started.items() if i in keys}
        for ident in keys:
            self.model_started.setdefault(ident, self.now)

    @rule(seconds=st.floats(0, 40))
    def wait(self, seconds):
        self.now += seconds
        due = [ident for ident, started in self.model_started.items() if self.now >= started + 60.0]
        expired = self.reassembler.expire(self.now)
        assert [e.key[2] for e in expired] == due
        for ident in due:
            del self.model_started[ident]
        assert sorted(key[2] for key in self.reassembler.partials) == sorted(self.model_started)

    @invariant()
    def memory_is_bounded(self):
        assert self.reassembler.held <= self.MAX_BYTES
        assert len(self.reassembler.partials) <= self.MAX_DATAGRAMS
        assert len(self.reassembler.discarded) <= self.MAX_DATAGRAMS
        assert self.reassembler.held == sum(p.held for p in self.reassembler.partials.values())

    @precondition(lambda self: self.reassembler.partials)
    @rule()
    def expire_everything(self):
        self.now += 61.0
        self.reassembler.expire(self.now)
        self.model_started.clear()
        assert not self.reassembler.partials and self.reassembler.held == 0


TestReassembly6AgainstAModel = Reassembly6AgainstAModel.TestCase
TestReassembly6AgainstAModel.settings = settings(max_examples=100, stateful_step_count=30)
