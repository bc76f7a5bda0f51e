"""IPv6 reassembly against its model (hypothesis): ``reassembly6_model`` says what a correct host
does with any train of fragments (RFC 8200 4.5, RFC 5722, RFC 6946), and both the reassembler
(``stack.l3.reassembly6``) and whole hosts do just that; a first fragment without the whole
header chain gets Parameter Problem code 3 (RFC 7112, RFC 8200 4.5); an incomplete packet
whose first fragment came gets Time Exceeded code 1 after 60 s.

The run length comes from the hypothesis profile (tests/conftest.py).
"""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from stack.l3.icmpv6 import Icmpv6Type
from stack.l3.ipv6 import Ipv6Packet, walk_chain
from stack.l3.reassembly6 import REASSEMBLY6_TIMEOUT_S, Ipv6Reassembler
from stack.testing.strategies6 import (ipv6_echo_requests, ipv6_extension_chains, ipv6_fragment_trains,
                                       ipv6_udp_datagrams, reassembly6_model)

from stack.testing.strategies import in_ethernet
from tests.core.test_fuzz_properties6 import HOST6, HOST_MAC, PEER6, PEER_MAC, Wire6

requests = ipv6_echo_requests(source=PEER6, destination=HOST6, medium="ip", min_size=1, max_size=9000)
media = st.sampled_from(["ethernet", "ip"])


def trains(medium: str = "ip", **options):
    return ipv6_fragment_trains(requests, medium=medium, destination_mac=HOST_MAC, source_mac=PEER_MAC,
                                **options)


# The reassembler alone ------------------------------------------------------------------------

@given(train=st.one_of(trains(), trains(duplicates=True), trains(duplicates=True, overlaps=True, atomic=True),
                       trains(overlaps=True), trains(atomic=True, shuffle=False)))
def test_the_reassembler_does_what_the_model_says(train):
    reassembler = Ipv6Reassembler()
    seen = []
    for fragment in train.fragments:
        packet = Ipv6Packet.parse(fragment)
        outcome = reassembler.add(packet, fragment, walk_chain(packet.next_header, packet.payload), 1.0)
        if outcome.packet is not None:
            assert outcome.packet == train.packet  # whatever completes is the packet, byte for byte
            seen.append("complete")
        elif outcome.reason == "ipv6_fragment_duplicate":
            seen.append("duplicate")
        elif outcome.reason in ("ipv6_fragment_overlap", "ipv6_fragment_of_discarded"):
            seen.append("discarded")
        else:
            assert outcome.reason is None, outcome.reason
            seen.append("held")
    size = max(stop for _, stop, _ in train.pieces)
    assert seen == reassembly6_model(size, list(train.pieces))
    assert seen.count("complete") == train.completions
    # Nothing is held once the packet completed, unless fragments came after it.
    if seen and seen[-1] == "complete" and not train.atomic:
        assert reassembler.held == 0 and not reassembler.partials


def test_the_model_follows_the_rfcs_on_small_cases():
    # RFC 5722 3: an overlap discards the packet and its later fragments; RFC 6946 4: an atomic
    # fragment is whole at once; RFC 8200 4.5: a duplicate is dropped, the rest kept.
    assert reassembly6_model(16, [(0, 8, True), (8, 16, False)]) == ["held", "complete"]
    assert reassembly6_model(16, [(0, 8, True), (0, 8, True), (8, 16, False)]) == ["held", "duplicate", "complete"]
    assert reassembly6_model(24, [(0, 16, True), (8, 24, False), (16, 24, False)]) == ["held", "discarded",
                                                                                        "discarded"]
    assert reassembly6_model(16, [(8, 16, False), (0, 16, False), (0, 8, True)]) == ["held", "complete", "complete"]


# Whole hosts ----------------------------------------------------------------------------------

def deliver(wire: Wire6, fragments, now: float = 1.0) -> None:
    for fragment in fragments:
        wire.receive(fragment, now)


@given(train=st.one_of(trains(duplicates=True), trains(duplicates=True, atomic=True), trains(reverse=True),
                       trains(shuffle=False)), medium=media)
def test_a_host_answers_a_train_as_often_as_the_model_says(train, medium):
    wire = Wire6(medium)
    deliver(wire, _in(medium, train.fragments))
    assert wire.echo_replies == train.completions >= 1
    assert wire.errors == []
    wire.poll(100.0)  # leftovers (a duplicate after completion) time out, validly


@given(train=ipv6_fragment_trains(ipv6_extension_chains(source=PEER6, destination=HOST6, medium="ip"),
                                  largest_fragment=200, duplicates=True))
def test_extension_header_chains_are_put_together_as_often_as_the_model_says(train):
    # Hop-by-Hop and Routing headers stay in every fragment, the rest is cut (RFC 8200 4.5).
    wire = Wire6("ip")
    deliver(wire, train.fragments)
    drops = wire.host.stats.drops
    if "ipv6_routing_header_rejected" in drops or "ipv6_unrecognised_option" in drops:
        return  # the Unfragmentable Part decided first (RFC 8200 4: headers in order)
    assert wire.host.stats["ipv6_reassembled"] == train.completions >= 1


@given(train=trains(overlaps=True), medium=media)
def test_rfc5722_an_overlap_before_the_end_gets_no_reply(train, medium):
    wire = Wire6(medium)
    deliver(wire, _in(medium, train.fragments))
    assert wire.echo_replies == 0 and "ipv6_fragment_overlap" in wire.host.stats.drops
    # RFC 5722 3: the later fragments of the packet are discarded too, silently.
    assert wire.errors == []


@given(train=trains(atomic=True), medium=media)
def test_rfc6946_an_atomic_fragment_is_answered_at_once_and_disturbs_nothing(train, medium):
    wire = Wire6(medium)
    deliver(wire, _in(medium, train.fragments))
    assert wire.echo_replies == train.completions == 2


@given(train=st.one_of(ipv6_fragment_trains(requests, split_chain=True),
                       ipv6_fragment_trains(ipv6_udp_datagrams(source=PEER6, destination=HOST6, medium="ip"),
                                            split_chain=True, duplicates=True)),
       medium=media)
def test_rfc7112_a_first_fragment_without_the_whole_chain_gets_parameter_problem_code_3(train, medium):
    wire = Wire6(medium)
    deliver(wire, _in(medium, train.fragments))
    firsts = sum(1 for start, _, _ in train.pieces if start == 0)
    # RFC 8200 4.5 (RFC 7112 5): each first fragment is discarded with Parameter Problem code 3,
    # pointer 0; the packet never completes (no reply, no Port Unreachable).
    assert [(m.type, m.code, m.parameter) for _, m, _ in wire.errors] == [(Icmpv6Type.PARAMETER_PROBLEM, 3, 0)] * firsts
    assert wire.echo_replies == 0 and wire.host.stats.drops["ipv6_incomplete_chain"] == firsts
    wire.poll(1.0 + REASSEMBLY6_TIMEOUT_S)
    assert len(wire.errors) == firsts  # no Time Exceeded: the first fragment was never held


@given(train=trains(), medium=media, data=st.data())
def test_rfc8200_4_5_time_exceeded_after_60_s_when_the_first_fragment_came(train, medium, data):
    pieces = list(train.pieces)
    missing = data.draw(st.sampled_from(range(len(pieces))), label="missing")
    wire = Wire6(medium)
    deliver(wire, _in(medium, [f for i, f in enumerate(train.fragments) if i != missing]))
    assert wire.echo_replies == 0 and wire.errors == []
    wire.poll(1.0 + REASSEMBLY6_TIMEOUT_S - 0.001)
    assert wire.errors == []
    wire.poll(1.0 + REASSEMBLY6_TIMEOUT_S)
    first_came = pieces[missing][0] != 0
    assert [(m.type, m.code) for _, m, _ in wire.errors] == ([(Icmpv6Type.TIME_EXCEEDED, 1)] if first_came else [])
    assert wire.host.stats.drops["ipv6_reassembly_timeout"] == len(pieces) - 1


def _in(medium: str, fragments):
    """The fragments as the host's medium carries them (trains are drawn bare, "ip")."""
    if medium == "ip":
        return list(fragments)
    return [in_ethernet(fragment, HOST_MAC, PEER_MAC, 0x86DD) for fragment in fragments]
