"""The public strategies (``stack.testing.strategies``) make what they promise: valid frames with the
asked-for fields, fragment trains that put the datagram back together, mutators that break
exactly one thing, and ``st.from_type`` registered through the hypothesis entry point."""

from __future__ import annotations

import importlib.metadata
import subprocess
import sys
from ipaddress import IPv4Address, IPv4Network
from pathlib import Path

import dpkt
import pytest
from hypothesis import given
from hypothesis import strategies as st

from stack.buffers import join
from stack.errors import ParseError
from stack.l2.arp import ArpPacket
from stack.l2.ethernet import EthernetFrame, MacAddress
from stack.l3.icmp import IcmpMessage, IcmpType
from stack.l3.ipv4 import IpProto, Ipv4Packet
from stack.testing.strategies import (
    BREAKAGES,
    DOCUMENTATION_NETWORKS,
    broken,
    echo_requests,
    fragment_trains,
    frames,
    udp_datagrams,
)

NETWORKS = [IPv4Network(network) for network in DOCUMENTATION_NETWORKS]


def documentation(address: IPv4Address) -> bool:
    return any(address in network for network in NETWORKS)


def test_the_entry_point_is_declared():
    hooks = [e.value for e in importlib.metadata.entry_points(group="hypothesis")]
    assert "stack.testing.hypothesis_hook:register" in hooks


@given(packet=st.from_type(Ipv4Packet), arp=st.from_type(ArpPacket), mac=st.from_type(MacAddress),
       message=st.from_type(IcmpMessage), frame=st.from_type(EthernetFrame))
def test_from_type_draws_our_strategies(packet, arp, mac, message, frame):
    # Hypothesis' own inference would draw any address (and fail on out-of-range ints): these
    # come from the registered strategies.
    assert documentation(packet.source) and documentation(packet.destination)
    assert Ipv4Packet.parse(bytes(packet)) == packet
    assert documentation(arp.sender_ip) and ArpPacket.parse(bytes(arp)) == arp
    assert isinstance(mac, MacAddress) and mac[0] == 0x02
    assert IcmpMessage.parse(bytes(message)) == message
    assert frame.destination[0] == 0x02 and EthernetFrame.parse(join(frame.buffers(pad=False))) == frame


@given(frame=echo_requests(destination="192.0.2.2", destination_mac="02:00:00:00:00:02",
                           source=st.sampled_from(["198.51.100.1", "203.0.113.9"]),
                           min_size=3, max_size=100, identifier=7))
def test_echo_requests_carry_the_given_fields(frame):
    ethernet = dpkt.ethernet.Ethernet(frame)
    assert ethernet.dst == bytes.fromhex("020000000002") and ethernet.src[0] == 0x02
    packet = Ipv4Packet.parse(frame[14:])
    assert packet.destination == IPv4Address("192.0.2.2")
    assert str(packet.source) in ("198.51.100.1", "203.0.113.9")
    message = IcmpMessage.parse(packet.payload)
    assert message.type == IcmpType.ECHO_REQUEST and message.identifier == 7
    assert 3 <= len(message.payload) <= 100
    assert len(frame) == max(60, 14 + packet.total_length)


@given(datagram=echo_requests(medium="ip"))
def test_echo_requests_fit_the_ethernet_mtu_by_default(datagram):
    assert len(datagram) <= 1500
    assert IcmpMessage.parse(Ipv4Packet.parse(datagram).payload).type == IcmpType.ECHO_REQUEST


def test_sizes_that_do_not_fit_are_refused():
    with pytest.raises(ValueError):
        echo_requests(max_size=1473)
    with pytest.raises(ValueError):
        broken(frames(), kinds=["bad_luck"])


@given(datagram=udp_datagrams(medium="ip", destination_port=9))
def test_udp_datagrams_are_valid(datagram):
    packet = Ipv4Packet.parse(datagram)
    udp = dpkt.udp.UDP(bytes(packet.payload))
    assert packet.protocol == IpProto.UDP and udp.dport == 9 and udp.ulen == len(packet.payload)
    if udp.sum:  # RFC 768: computed over the pseudo-header, header and data
        pseudo = packet.source.packed + packet.destination.packed + bytes([0, 17]) + udp.ulen.to_bytes(2, "big")
        assert dpkt.in_cksum(pseudo + bytes(packet.payload)) == 0


def put_together(fragments: list[bytes]) -> bytes | None:
    """The payload of fragments without overlaps (exact duplicates allowed), or None if holes."""
    pieces: dict[int, bytes] = {}
    end = None
    for fragment in fragments:
        packet = Ipv4Packet.parse(fragment)
        assert packet.is_fragment
        pieces[packet.fragment_offset * 8] = bytes(packet.payload)
        if not packet.more_fragments:
            end = packet.fragment_offset * 8 + len(packet.payload)
    data = b""
    for start in sorted(pieces):
        if start != len(data):
            return None
        data += pieces[start]
    return data if len(data) == end else None


@given(train=fragment_trains())
def test_a_fragment_train_puts_the_datagram_back_together(train):
    whole = Ipv4Packet.parse(train.datagram)
    assert put_together(list(train.fragments)) == bytes(whole.payload)
    assert train.completions == 1 and train.duplicates == 0 and not train.overlapping
    assert all(len(fragment) <= 1500 for fragment in train.fragments)
    first = Ipv4Packet.parse(min(train.fragments, key=lambda f: Ipv4Packet.parse(f).fragment_offset))
    assert (first.source, first.destination, first.identification) == (
        whole.source, whole.destination, whole.identification)


@given(train=fragment_trains(duplicates=True, medium="ethernet", destination_mac="02:00:00:00:00:02"))
def test_duplicates_are_exact_copies(train):
    assert 1 <= train.duplicates == len(train.fragments) - len(set(train.fragments))
    assert all(fragment[:6] == bytes.fromhex("020000000002") for fragment in train.fragments)
    assert put_together([fragment[14:] for fragment in train.fragments]) is not None


@given(train=fragment_trains(overlaps=True))
def test_an_overlap_comes_while_the_datagram_is_incomplete(train):
    assert train.overlapping and train.completions == 0  # RFC 5722: everything held goes


@given(case=broken(frames()))
def test_broken_frames_differ_from_the_original_in_one_place(case):
    assert case.kind in BREAKAGES and case.frame != case.original and case.drop_reasons
    if case.kind == "truncated":
        assert len(case.frame) < len(case.original)
    elif case.kind == "flipped_bit":
        differences = [a ^ b for a, b in zip(case.frame, case.original) if a != b]
        assert len(case.frame) == len(case.original) and len(differences) == 1
        assert bin(differences[0]).count("1") == 1


@given(case=broken(st.one_of(frames(), udp_datagrams())))
def test_broken_frames_raise_only_parse_error_layer_by_layer(case):
    try:
        ethernet = EthernetFrame.parse(case.frame)
        if ethernet.ethertype == 0x0806:
            ArpPacket.parse(ethernet.payload)
        elif ethernet.ethertype == 0x0800:
            packet = Ipv4Packet.parse(ethernet.payload)
            if packet.protocol == IpProto.ICMP:
                IcmpMessage.parse(packet.payload)
    except ParseError as error:
        assert error.drop_reason in case.drop_reasons


def test_hypothesis_stays_a_test_extra():
    # A fresh interpreter: importing the package and its CLI pulls in no hypothesis.
    code = "import sys, stack, stack.cli, stack.runtime.loop; sys.exit('hypothesis' in sys.modules)"
    assert subprocess.run([sys.executable, "-c", code], cwd=Path(__file__).resolve().parents[2]).returncode == 0


def test_from_type_works_when_the_strategies_are_imported_before_hypothesis():
    # Hypothesis runs the entry point while it is imported, here from inside stack.testing.strategies.
    code = ("import stack.testing.strategies\nfrom hypothesis import strategies as st\n"
            "from stack.l3.ipv4 import Ipv4Packet\n"
            "assert str(st.from_type(Ipv4Packet).example().source).startswith(('192.0.2.', '198.51.100.', '203.0.113.'))")
    run = subprocess.run([sys.executable, "-c", code], cwd=Path(__file__).resolve().parents[2], capture_output=True, text=True)
    assert run.returncode == 0, run.stderr
