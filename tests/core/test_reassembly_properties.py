"""Reassembly properties (hypothesis): any order gives the datagram, any overlap discards it,
and under any stream of fragments the memory held never exceeds the caps and exactly the
datagrams older than the timeout are given up (a stateful test against a simple model)."""

from __future__ import annotations

from ipaddress import IPv4Address

from hypothesis import assume, given, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, precondition, rule

from stack.l3.ipv4 import Ipv4Packet
from stack.l3.reassembly import Reassembler
from stack.testing.strategies import reassembly_model

SOURCE, DESTINATION = IPv4Address("192.0.2.1"), IPv4Address("192.0.2.2")


def fragment(data: bytes, start: int, stop: int, ident: int = 7) -> Ipv4Packet:
    return Ipv4Packet(SOURCE, DESTINATION, 17, data[start:stop], identification=ident,
                      more_fragments=stop < len(data), fragment_offset=start // 8)


@st.composite
def cuts(draw, size: int) -> list[tuple[int, int]]:
    """Boundaries of a fragmentation: multiples of 8 except the end."""
    points = sorted(draw(st.sets(st.integers(1, max(1, (size - 1) // 8)), max_size=12)))
    bounds = [0] + [p * 8 for p in points if p * 8 < size] + [size]
    return list(zip(bounds, bounds[1:]))


@settings(max_examples=200)
@given(st.binary(min_size=1, max_size=3000).flatmap(lambda d: st.tuples(st.just(d), cuts(len(d)))),
       st.randoms(use_true_random=False))
def test_any_permutation_of_any_fragmentation_reassembles(case, rng):
    data, pieces = case
    rng.shuffle(pieces)
    reassembler = Reassembler()
    outcomes = [reassembler.add(fragment(data, a, b), b"", 0.0) for a, b in pieces]
    assert all(o.datagram is None and o.reason is None for o in outcomes[:-1])
    whole = outcomes[-1].datagram
    assert whole is not None and bytes(whole.payload) == data
    assert (whole.more_fragments, whole.fragment_offset, whole.identification) == (False, 0, 7)
    assert reassembler.held == 0 and not reassembler.partials


@st.composite
def overlapping_cases(draw):
    """A datagram, its fragmentation, and one more fragment that overlaps a piece of it without
    being an exact duplicate of any piece (the pieces cover everything, so any other range
    overlaps)."""
    data = draw(st.binary(min_size=64, max_size=2000))
    pieces = draw(cuts(len(data)))
    units = len(data) // 8
    start = draw(st.integers(0, units - 1)) * 8
    stop = len(data) if draw(st.booleans()) else min(draw(st.integers(start // 8 + 1, units)) * 8, len(data))
    assume((start, stop) not in pieces and (start, stop) != (0, len(data)))  # a fragment, not a whole datagram
    return data, pieces, (start, stop)


@settings(max_examples=300)
@given(overlapping_cases(), st.data())
def test_overlaps_discard_the_datagram_as_the_model_says(case, draw):
    data, pieces, extra = case
    order = draw.draw(st.permutations([*pieces, extra]))
    reassembler = Reassembler()
    seen = []
    for start, stop in order:
        outcome = reassembler.add(fragment(data, start, stop), b"", 0.0)
        if outcome.datagram is not None:
            assert bytes(outcome.datagram.payload) == data  # whatever completes is the datagram
            seen.append("complete")
        elif outcome.reason == "ipv4_fragment_duplicate":
            seen.append("duplicate")
        elif outcome.reason in ("ipv4_fragment_overlap", "ipv4_fragment_inconsistent"):
            seen.append("discarded")
        else:
            assert outcome.reason is None, outcome.reason
            seen.append("held")
    assert seen == reassembly_model(len(data), order)
    assert "discarded" in seen or seen.count("complete") >= 1


class ReassemblyAgainstAModel(RuleBasedStateMachine):
    """Arbitrary fragments of a few datagrams, with time passing: memory stays bounded."""

    MAX_BYTES = 800  # well within reach of 30 steps of up to 200 bytes
    MAX_DATAGRAMS = 4

    def __init__(self) -> None:
        super().__init__()
        self.reassembler = Reassembler(timeout=30.0, max_datagrams=self.MAX_DATAGRAMS,
                                       max_bytes=self.MAX_BYTES)
        self.now = 0.0
        self.model_started: dict[int, float] = {}  # ident -> when its first fragment came

    # Offsets 200 bytes apart and sizes up to 200: fragments mostly tile without overlapping,
    # so the held bytes really grow towards the cap.
    @rule(ident=st.integers(0, 7), offset=st.integers(0, 30).map(lambda unit: unit * 25),
          size=st.integers(0, 200), more=st.sampled_from([True] * 7 + [False]))
    def add(self, ident, offset, size, more):
        if more:
            size -= size % 8
        packet = Ipv4Packet(SOURCE, DESTINATION, 17, bytes(size), identification=ident,
                            more_fragments=more, fragment_offset=offset)
        self.reassembler.add(packet, b"", self.now)
        # The model learns which datagrams are in progress, and since when: a new one from now on;
        # one gone was completed, discarded or evicted.
        keys = {key[3]: key for key in self.reassembler.partials}
        self.model_started = {ident: started for ident, started in self.model_started.items() if ident in keys}
        for ident in keys:
            self.model_started.setdefault(ident, self.now)

    @rule(seconds=st.floats(0, 20))
    def wait(self, seconds):
        self.now += seconds
        # RFC 1122 3.3.2: exactly the datagrams started a timeout or more ago are given up,
        # oldest first; the others are kept.
        due = [ident for ident, started in self.model_started.items() if self.now >= started + 30.0]
        expired = self.reassembler.expire(self.now)
        assert [e.key[3] for e in expired] == due
        assert all(e.fragments >= 1 for e in expired)
        for ident in due:
            del self.model_started[ident]
        assert sorted(key[3] for key in self.reassembler.partials) == sorted(self.model_started)

    @invariant()
    def memory_is_bounded(self):
        assert self.reassembler.held <= self.MAX_BYTES
        assert len(self.reassembler.partials) <= self.MAX_DATAGRAMS
        assert self.reassembler.held == sum(p.held for p in self.reassembler.partials.values())

    @invariant()
    def nothing_older_than_the_timeout_is_held(self):
        # ``wait`` always expires; ``add`` never goes back in time.
        for partial in self.reassembler.partials.values():
            assert partial.started_at + self.reassembler.timeout > self.now

    @precondition(lambda self: self.reassembler.partials)
    @rule()
    def expire_everything(self):
        self.now += 31.0
        self.reassembler.expire(self.now)
        self.model_started.clear()
        assert not self.reassembler.partials and self.reassembler.held == 0


TestReassemblyAgainstAModel = ReassemblyAgainstAModel.TestCase
TestReassemblyAgainstAModel.settings = settings(max_examples=100, stateful_step_count=30)
