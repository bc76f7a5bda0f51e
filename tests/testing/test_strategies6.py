"""The public IPv6 strategies (``stack.testing.strategies6``, re-exported by
``stack.testing.strategies`` and ``stack.strategies``) make what they promise: valid ND and MLD
messages, fragment trains that put the packet back together (or, split, do not), breakages of
exactly one thing; dpkt reads what they make."""

from __future__ import annotations

import subprocess
import sys
from ipaddress import IPv6Address, IPv6Network
from pathlib import Path

import dpkt
import pytest
from hypothesis import given
from hypothesis import strategies as st

from stack.errors import ParseError
from stack.l3.icmpv6 import (Icmpv6Message, Icmpv6Type, MldQuery, MldReport, NeighborAdvertisement,
                             NeighborSolicitation, Redirect, RouterAdvertisement, decode)
from stack.l3.ipv6 import Ipv6Packet, Ipv6ParseError, NextHeader, walk_chain
from stack.testing import strategies, strategies6
from stack.testing.strategies import broken
from stack.testing.strategies6 import (
    BREAKAGES6,
    ipv6_echo_requests,
    ipv6_fragment_trains,
    ipv6_udp_datagrams,
    mld_queries,
    mld_reports,
    nd_messages,
    reassembly6_model,
)

REPO = Path(__file__).resolve().parents[2]
DOCUMENTATION, LINK_LOCAL = IPv6Network("2001:db8::/32"), IPv6Network("fe80::/64")


def ours(address: IPv6Address) -> bool:
    """A documentation, link-local, unspecified or multicast address: nothing real."""
    return address in DOCUMENTATION or address in LINK_LOCAL or address.is_unspecified or address.is_multicast


def read(frame: bytes, medium: str) -> tuple[Ipv6Packet, Icmpv6Message, object]:
    """The packet, its ICMPv6 message and the message's ND or MLD body, by our codecs; dpkt
    reads the frame too."""
    if medium == "ethernet":
        assert frame[:2] == b"\x33\x33" or frame[0] & 0x02, frame[:6].hex()  # 02: MACs, 33:33 groups
        assert frame[6] == 0x02 and frame[12:14] == b"\x86\xdd"
        assert dpkt.ethernet.Ethernet(frame).type == 0x86DD
        frame = frame[14:]
    packet = Ipv6Packet.parse(frame)
    assert dpkt.ip6.IP6(bytes(frame)).plen == packet.payload_length
    assert ours(packet.source) and ours(packet.destination)
    chain = packet.chain()
    assert chain.upper_layer == NextHeader.ICMPV6
    message = Icmpv6Message.parse(chain.upper_layer_data, packet.source, packet.destination)
    return packet, message, decode(message)


def test_the_ipv6_names_are_re_exported_under_both_names():
    import stack.strategies as published
    assert set(strategies.IPV6_NAMES) == set(strategies6.__all__)
    for name in strategies6.__all__:
        assert getattr(strategies, name) is getattr(strategies6, name) is getattr(published, name)
    assert set(strategies6.__all__) <= set(published.__all__) and "ipv6_fragment_trains" in dir(strategies)


@pytest.mark.parametrize("first", ["stack.testing.strategies6", "stack.strategies", "stack.testing.strategies"])
def test_either_module_may_be_imported_first(first):
    code = (f"import {first}\nfrom stack.strategies import *\n"
            "assert ipv6_fragment_trains and broken and nd_messages and BREAKAGES6")
    run = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True)
    assert run.returncode == 0, run.stderr


@given(frame=nd_messages(), medium=st.just("ethernet"))
def test_nd_messages_are_valid(frame, medium):
    packet, message, body = read(frame, medium)
    # RFC 4861 6.1, 7.1, 8.1: hop limit 255, code 0, options that read.
    assert packet.hop_limit == 255 and message.code == 0
    assert message.type in (Icmpv6Type.ROUTER_SOLICITATION, Icmpv6Type.ROUTER_ADVERTISEMENT,
                            Icmpv6Type.NEIGHBOR_SOLICITATION, Icmpv6Type.NEIGHBOR_ADVERTISEMENT, Icmpv6Type.REDIRECT)
    assert body is not message
    if message.type in (Icmpv6Type.ROUTER_ADVERTISEMENT, Icmpv6Type.REDIRECT):
        assert packet.source.is_link_local  # RFC 4861 6.1.2, 8.1
    if message.type == Icmpv6Type.NEIGHBOR_ADVERTISEMENT and packet.destination.is_multicast:
        assert not body.solicited  # RFC 4861 7.1.2


@given(frame=mld_queries(medium="ip"))
def test_mld_queries_are_valid(frame):
    packet, message, query = read(frame, "ip")
    # RFC 3810 5.1.14: link-local source, hop limit 1, Router Alert; 8.1: 24 or 28+ bytes.
    assert packet.source.is_link_local and packet.hop_limit == 1
    assert packet.next_header == NextHeader.HOP_BY_HOP and any(o.type == 5 for o in packet.chain().headers[0].options)
    assert message.length == 24 if query.version == 1 else message.length >= 28
    assert packet.destination == (IPv6Address("ff02::1") if query.is_general else query.multicast_address)


@given(frame=mld_reports())
def test_mld_reports_are_valid(frame):
    packet, message, report = read(frame, "ethernet")
    assert packet.hop_limit == 1 and message.type in (Icmpv6Type.MLDV1_REPORT, Icmpv6Type.MLDV1_DONE,
                                                       Icmpv6Type.MLDV2_REPORT)
    if message.type == Icmpv6Type.MLDV2_REPORT:
        assert packet.destination == IPv6Address("ff02::16") and 1 <= len(report.records) <= 3


def put_together(fragments) -> bytes | None:
    """The fragmentable part from fragments without overlaps (exact duplicates allowed), or None."""
    pieces: dict[int, bytes] = {}
    end = None
    for fragment in fragments:
        packet = Ipv6Packet.parse(fragment)
        assert packet.next_header == NextHeader.FRAGMENT
        header = bytes(packet.payload[:8])
        offset, more = int.from_bytes(header[2:4], "big") & ~7, header[3] & 1
        pieces[offset] = bytes(packet.payload[8:])
        if not more:
            end = offset + len(pieces[offset])
    data = b""
    for start in sorted(pieces):
        if start != len(data):
            return None
        data += pieces[start]
    return data if len(data) == end else None


@given(train=ipv6_fragment_trains(duplicates=True))
def test_a_fragment_train_puts_the_packet_back_together(train):
    whole = Ipv6Packet.parse(train.packet)
    assert put_together(train.fragments) == bytes(whole.payload)
    # (Copies after the end start the packet anew: completions may be more than one.)
    assert train.completions >= 1 and not train.overlapping and not train.split_chain
    assert all(len(fragment) <= 1280 for fragment in train.fragments)
    assert 1 <= train.duplicates == len(train.fragments) - len(set(train.fragments))


@given(train=ipv6_fragment_trains(overlaps=True))
def test_an_overlap_comes_while_the_packet_is_incomplete(train):
    assert train.overlapping and train.completions == 0  # RFC 5722: everything held goes, and the rest


@given(train=ipv6_fragment_trains(atomic=True))
def test_an_atomic_fragment_is_the_whole_packet(train):
    atomic = [f for f, (start, _, more) in zip(train.fragments, train.pieces) if start == 0 and not more]
    assert len(atomic) == 1 and train.completions == 2  # RFC 6946: apart from the train it joins
    packet = Ipv6Packet.parse(atomic[0])
    assert bytes(packet.payload[8:]) == bytes(Ipv6Packet.parse(train.packet).payload)


@given(train=ipv6_fragment_trains(ipv6_udp_datagrams(medium="ip"), split_chain=True, medium="ethernet"))
def test_a_split_chain_leaves_the_upper_layer_header_out_of_the_first_fragment(train):
    first = next(f[14:] for f, (start, _, more) in zip(train.fragments, train.pieces) if start == 0 and more)
    packet = Ipv6Packet.parse(first)
    with pytest.raises(Ipv6ParseError) as raised:
        walk_chain(packet.next_header, packet.payload)
    assert raised.value.reason == "incomplete_chain" and raised.value.code == 3 and raised.value.pointer == 0
    assert train.completions == 0


def test_the_reassembly_model_on_its_rules():
    assert reassembly6_model(16, [(8, 16, False), (0, 8, True)]) == ["held", "complete"]
    assert reassembly6_model(16, [(0, 8, True), (0, 16, False), (8, 16, False)]) == ["held", "complete", "complete"]
    assert reassembly6_model(24, [(0, 16, True), (0, 8, True), (16, 24, False)]) == ["held", "discarded", "discarded"]


@given(case=broken(st.one_of(ipv6_echo_requests(), ipv6_udp_datagrams(), nd_messages(), mld_queries())))
def test_broken_ipv6_frames_differ_from_the_original_in_one_kind_of_way(case):
    assert case.kind in BREAKAGES6 and case.frame != case.original and case.drop_reasons
    if case.kind == "flipped_bit":
        differences = [a ^ b for a, b in zip(case.frame, case.original) if a != b]
        assert len(case.frame) == len(case.original) and len(differences) == 1
        assert bin(differences[0]).count("1") == 1
    if case.kind == "truncated":
        assert len(case.frame) < len(case.original) or case.frame[18:20] != case.original[18:20]
    if case.error is not None:
        assert case.error.type == Icmpv6Type.PARAMETER_PROBLEM and case.error.code in (0, 1, 2)


@given(case=broken(st.one_of(ipv6_echo_requests(medium="ip"), ipv6_udp_datagrams(medium="ip")), medium="ip"))
def test_broken_ipv6_packets_raise_only_parse_error_layer_by_layer(case):
    try:
        packet = Ipv6Packet.parse(case.frame)
        chain = packet.chain()
        if chain.upper_layer == NextHeader.ICMPV6:
            Icmpv6Message.parse(chain.upper_layer_data, packet.source, packet.destination)
    except ParseError as error:
        reason = error.drop_reason
        assert reason in case.drop_reasons or (case.kind, reason) in {("ip_version", "ipv6_bad_version"),
                                                                      ("truncated", "ipv6_truncated")}, (reason, case)


def test_kinds_are_checked():
    assert broken(ipv6_echo_requests(), kinds=["nd_code", "ipv4_checksum"]) is not None
    with pytest.raises(ValueError, match="unknown breakages"):
        broken(ipv6_echo_requests(), kinds=["bad_luck"])
    with pytest.raises(ValueError):
        ipv6_echo_requests(min_size=10, max_size=5)


@given(packet=st.from_type(Ipv6Packet))
def test_from_type_draws_ipv6_packets_between_documentation_addresses(packet):
    assert ours(packet.source) and ours(packet.destination)


@given(message=st.from_type(Icmpv6Message), solicitation=st.from_type(NeighborSolicitation),
       advertisement=st.from_type(NeighborAdvertisement), router=st.from_type(RouterAdvertisement),
       redirect=st.from_type(Redirect), query=st.from_type(MldQuery), report=st.from_type(MldReport))
def test_from_type_draws_icmpv6_messages_and_their_nd_and_mld_bodies(message, solicitation, advertisement, router,
                                                                     redirect, query, report):
    # Registered through the entry point: valid values, documentation addresses (hypothesis'
    # own inference would build any address, and fail on out-of-range fields).
    assert message.type in (Icmpv6Type.ECHO_REQUEST, *range(130, 138), Icmpv6Type.MLDV2_REPORT)
    assert solicitation.target in DOCUMENTATION or solicitation.target in LINK_LOCAL
    assert ours(advertisement.target) and ours(redirect.destination)
    assert NeighborSolicitation.from_message(solicitation.message()) == solicitation
    assert RouterAdvertisement.from_message(router.message()) == router
    assert MldQuery.from_message(query.message()) == query and len(report.records) >= 1


@given(case=broken(st.binary(min_size=15, max_size=60).map(lambda noise: noise[:12] + b"\x86\xdd\x45" + noise[15:])))
def test_bytes_under_the_ipv6_ethertype_that_do_not_read_are_only_cut_short(case):
    # (Version 4 under the IPv6 EtherType.) As under any other EtherType: broken() breaks the
    # Ethernet header it can read, no more.
    assert case.kind == "truncated" and case.drop_reasons == {"ethernet_runt"}


@given(train=ipv6_fragment_trains(reverse=True), in_order=ipv6_fragment_trains(shuffle=False))
def test_trains_go_last_to_first_or_in_order_on_request(train, in_order):
    starts = [start for start, _, _ in train.pieces]
    assert starts == sorted(starts, reverse=True) and train.completions == 1
    assert [start for start, _, _ in in_order.pieces] == sorted(start for start, _, _ in in_order.pieces)
