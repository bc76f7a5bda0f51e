"""Fragments in and out, and the ICMP errors a host sends: exact datagrams and counters.

Driven through TunHost (bare IPv4 packets, no ARP in the way); the IPv4 host under it is the
one TapHost uses too. Expected datagrams are built with dpkt (stack/testing/frames.py).
"""

from __future__ import annotations

import dpkt
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from stack import TunHost
from stack.buffers import join
from stack.l3.icmp_responder import ICMP_ERROR_BURST
from stack.l3.reassembly import REASSEMBLY_TIMEOUT_S
from stack.testing import frames

HOST_IP, KERNEL_IP = frames.HOST_IP, frames.KERNEL_IP


def host(**kwargs) -> TunHost:
    return TunHost([HOST_IP], peer=KERNEL_IP, **kwargs)


def fragments(datagram_payload: bytes, size: int = 1480, protocol: int = 1, ident: int = 0x4242,
              destination: str = HOST_IP) -> list[bytes]:
    """The datagram carrying ``datagram_payload``, cut into fragments of ``size`` data bytes."""
    pieces = []
    for start in range(0, len(datagram_payload), size):
        piece = datagram_payload[start:start + size]
        pieces.append(frames.ipv4_datagram(
            KERNEL_IP, destination, protocol, piece, identification=ident,
            more_fragments=start + size < len(datagram_payload), fragment_offset=start // 8))
    return pieces


def reassemble(packets: list[bytes]) -> tuple[bytes, list[dpkt.ip.IP]]:
    """Put our own fragments back together with dpkt, checking their headers on the way."""
    parsed = [dpkt.ip.IP(p) for p in packets]
    data = b""
    for index, packet in enumerate(parsed):
        assert packet.offset * 8 == len(data), "fragments in order, no gaps"  # dpkt: 8-octet units
        assert packet.mf == (index < len(parsed) - 1)
        assert dpkt.in_cksum(bytes(packet)[:20]) == 0
        data += bytes(packet.data) if isinstance(packet.data, bytes) else bytes(packet.data)
    return data, parsed


ECHO_8000 = frames.icmp_echo(8, 0x77, 1, bytes(range(256)) * 31 + bytes(64))  # 8000 data bytes


def test_rfc791_a_fragmented_echo_is_reassembled_and_the_reply_fragmented():
    tun = host()
    out = []
    for fragment in fragments(ECHO_8000):
        out += tun.receive(fragment, 1.0)
    packets = [join(p) for p in out]
    assert len(packets) == 6 and all(len(p) <= 1500 for p in packets)
    data, parsed = reassemble(packets)
    assert data == frames.icmp_echo(0, 0x77, 1, bytes(range(256)) * 31 + bytes(64))
    assert {p.id for p in parsed} == {parsed[0].id} and parsed[0].src == frames.ip(HOST_IP)
    assert tun.stats["ipv4_reassembled"] == 1 and tun.stats["ipv4_fragments_sent"] == 6
    assert tun.stats.drops == {} and tun.ip.reassembler.held == 0


def test_the_largest_echo_65507_bytes_goes_both_ways():
    message = frames.icmp_echo(8, 1, 1, bytes(65507))
    tun = host()
    out = []
    for fragment in fragments(message):
        out += tun.receive(fragment, 1.0)
    data, parsed = reassemble([join(p) for p in out])
    assert data == frames.icmp_echo(0, 1, 1, bytes(65507)) and len(parsed) == 45


def test_fragments_keep_the_payload_as_views_not_copies():
    tun = host()
    request = frames.icmp_echo(8, 1, 1, bytes(3000))
    out = [tun.receive(f, 1.0) for f in fragments(request)][-1]
    assert all(isinstance(buffer, memoryview) for packet in out for buffer in packet[1:])


@settings(max_examples=100)
@given(st.permutations(range(6)), st.lists(st.integers(0, 5), max_size=3))
def test_any_order_with_duplicates_gives_exactly_one_answer(order, duplicates):
    pieces = fragments(ECHO_8000)
    tun = host()
    answers = []
    for index in [*order[:3], *duplicates, *order[3:]]:
        answers += tun.receive(pieces[index], 1.0)
    assert len(answers) == 6  # one reply, in six fragments
    assert tun.stats["ipv4_reassembled"] == 1
    # A duplicate before completion is counted and ignored; one after completion starts a new
    # datagram that will time out. Nothing else is dropped.
    assert set(tun.stats.drops) <= {"ipv4_fragment_duplicate"}
    assert tun.stats["drop.ipv4_fragment_duplicate"] + len(tun.ip.reassembler.partials) <= len(duplicates)


def test_rfc5722_an_overlap_discards_the_whole_datagram():
    pieces = fragments(ECHO_8000)
    overlapping = frames.ipv4_datagram(KERNEL_IP, HOST_IP, 1, bytes(1480), identification=0x4242,
                                       more_fragments=True, fragment_offset=1480 // 8 + 1)
    tun = host()
    assert tun.receive(pieces[0], 1.0) == [] and tun.receive(pieces[1], 1.0) == []
    assert tun.receive(overlapping, 1.0) == []
    assert tun.stats.drops == {"ipv4_fragment_overlap": 3}  # the new one and the two held
    assert tun.ip.reassembler.held == 0 and not tun.ip.reassembler.partials
    for piece in pieces[2:]:  # the rest can no longer complete anything
        assert tun.receive(piece, 1.0) == []


@pytest.mark.parametrize("offset", [0, 1480 // 8, 2 * 1480 // 8])
def test_an_empty_fragment_covers_nothing_and_the_datagram_is_still_reassembled(offset):
    """Issue 13 (found against Linux): an empty fragment with more to come, before the real one
    at its offset, must not make that one an overlap; Linux 6.18 reassembles around it too."""
    empty = frames.ipv4_datagram(KERNEL_IP, HOST_IP, 1, b"", identification=0x4242, more_fragments=True,
                                 fragment_offset=offset)
    tun = host()
    out = tun.receive(empty, 1.0)
    for fragment in fragments(ECHO_8000):
        out += tun.receive(fragment, 1.0)
    assert len(out) == 6 and tun.stats["ipv4_reassembled"] == 1
    assert tun.stats.drops == {"ipv4_fragment_empty": 1}


@pytest.mark.parametrize("more_fragments", [True, False], ids=["more-to-come", "last"])
def test_an_empty_fragment_discards_what_is_held_of_its_datagram_as_linux_does(more_fragments):
    """tapstack diff found it: Linux 6.18 drops an empty fragment and the fragments held with it
    (tests/root/test_fragments_device.py); the fragments after it start the datagram anew."""
    pieces = fragments(ECHO_8000)
    empty = frames.ipv4_datagram(KERNEL_IP, HOST_IP, 1, b"", identification=0x4242,
                                 more_fragments=more_fragments, fragment_offset=1480 // 8)
    tun = host()
    assert tun.receive(pieces[0], 1.0) == [] and tun.receive(pieces[1], 1.0) == []
    assert tun.receive(empty, 1.0) == []
    assert tun.stats.drops == {"ipv4_fragment_empty": 3}  # the empty one and the two held
    assert not tun.ip.reassembler.partials and tun.ip.reassembler.held == 0
    out = []
    for piece in pieces:  # the whole train again: reassembled
        out += tun.receive(piece, 1.0)
    assert len(out) == 6 and tun.stats["ipv4_reassembled"] == 1


@pytest.mark.parametrize("fragment, reason", [
    (frames.ipv4_datagram(KERNEL_IP, HOST_IP, 1, bytes(13), more_fragments=True), "ipv4_fragment_bad_length"),
    (frames.ipv4_datagram(KERNEL_IP, HOST_IP, 1, bytes(16), fragment_offset=8189), "ipv4_fragment_too_large"),
], ids=["not-a-multiple-of-8", "ping-of-death"])
def test_malformed_fragments(fragment, reason):
    tun = host()
    assert tun.receive(fragment, 1.0) == []
    assert tun.stats.drops == {reason: 1}


def test_rfc1122_3_3_2_timeout_sends_time_exceeded_when_the_first_fragment_came():
    pieces = fragments(ECHO_8000)
    tun = host()
    tun.receive(pieces[0], 10.0)
    tun.receive(pieces[2], 11.0)
    assert tun.next_deadline(11.0) == 10.0 + REASSEMBLY_TIMEOUT_S
    assert tun.poll(10.0 + REASSEMBLY_TIMEOUT_S - 0.001) == []
    out = [join(p) for p in tun.poll(10.0 + REASSEMBLY_TIMEOUT_S)]
    quote = pieces[0][:548]
    assert out == [frames.ipv4_datagram(HOST_IP, KERNEL_IP, 1, frames.icmp_message(11, 1, bytes(4), quote),
                                        identification=1, type_of_service=0xC0)]
    assert tun.stats.drops == {"ipv4_reassembly_timeout": 2}
    assert tun.next_deadline(41.0) is None


def test_no_time_exceeded_without_the_first_fragment():
    pieces = fragments(ECHO_8000)
    tun = host()
    tun.receive(pieces[1], 0.0)
    assert tun.poll(REASSEMBLY_TIMEOUT_S) == []
    assert tun.stats.drops == {"ipv4_reassembly_timeout": 1}


def test_reassembly_memory_is_bounded_oldest_first():
    tun = host()
    tun.ip.reassembler.max_datagrams = 4
    for ident in range(6):
        tun.receive(fragments(ECHO_8000, ident=ident)[0], float(ident))
    assert len(tun.ip.reassembler.partials) == 4
    assert [key[3] for key in tun.ip.reassembler.partials] == [2, 3, 4, 5]
    assert tun.stats.drops == {"ipv4_reassembly_evicted": 2}


# ---------------------------------------------------------------------- ICMP errors


def udp(port: int = 9, data: bytes = b"hello", checksum: bool = True, **fields) -> bytes:
    datagram = dpkt.udp.UDP(sport=40000, dport=port, data=data)
    datagram.ulen = 8 + len(data)
    segment = bytes(datagram)
    if checksum:  # dpkt leaves the UDP checksum to us: compute it with the pseudo-header
        pseudo = frames.ip(KERNEL_IP) + frames.ip(fields.get("destination", HOST_IP)) + b"\x00\x11" + \
            len(segment).to_bytes(2, "big")
        value = dpkt.in_cksum(pseudo + segment) or 0xFFFF
        segment = segment[:6] + value.to_bytes(2, "big") + segment[8:]
    return frames.ipv4_datagram(KERNEL_IP, fields.pop("destination", HOST_IP), 17, segment, **fields)


def icmp_error(type: int, code: int, original: bytes, ident: int = 1, tos: int = 0xC0) -> bytes:
    # RFC 1812 4.3.2.5: precedence 6 (internetwork control), the original's TOS bits kept (Linux).
    return frames.ipv4_datagram(HOST_IP, KERNEL_IP, 1, frames.icmp_message(type, code, bytes(4), original[:548]),
                                identification=ident, type_of_service=tos)


def test_rfc1122_4_1_3_1_udp_to_a_closed_port_gets_port_unreachable():
    tun = host()
    datagram = udp()
    assert [join(p) for p in tun.receive(datagram, 1.0)] == [icmp_error(3, 3, datagram)]
    assert tun.stats.drops == {"udp_port_unreachable": 1} and tun.stats["icmp_errors_sent"] == 1


def test_the_quote_stops_so_the_error_fits_576_bytes():
    tun = host()
    datagram = udp(data=bytes(1000))
    [error] = [join(p) for p in tun.receive(datagram, 1.0)]
    assert len(error) == 576 and error == icmp_error(3, 3, datagram)


def test_rfc792_the_quote_is_the_datagram_not_the_link_padding_after_it():
    # RFC 894: Ethernet pads short frames; the padding is not part of the datagram (found by
    # tapstack diff: Linux quotes exactly the datagram).
    tun = host()
    datagram = frames.ipv4_datagram(KERNEL_IP, HOST_IP, 99, b"")
    [error] = [join(p) for p in tun.receive(datagram + bytes(26), 1.0)]
    assert error == icmp_error(3, 2, datagram)


def test_rfc1812_4_3_2_5_an_icmp_error_has_internetwork_control_precedence_and_the_tos_bits():
    tun = host()
    datagram = frames.ipv4_datagram(KERNEL_IP, HOST_IP, 99, bytes(8), type_of_service=0x13)
    [error] = [join(p) for p in tun.receive(datagram, 1.0)]
    assert error == icmp_error(3, 2, datagram, tos=0xC0 | 0x12)  # 0x12: the TOS bits of 0x13


@pytest.mark.parametrize("protocol", [132, 41, 253], ids=["sctp", "ipv6-in-ipv4", "experimental"])
def test_rfc1122_3_2_2_1_an_unknown_protocol_gets_protocol_unreachable(protocol):
    tun = host()
    datagram = frames.ipv4_datagram(KERNEL_IP, HOST_IP, protocol, bytes(20))
    assert [join(p) for p in tun.receive(datagram, 1.0)] == [icmp_error(3, 2, datagram)]
    assert tun.stats.drops == {"ipv4_unknown_protocol": 1}


def test_rfc1122_4_1_3_4_a_bad_udp_checksum_is_dropped_silently():
    datagram = bytearray(udp())
    datagram[-1] ^= 0xFF
    tun = host()
    assert tun.receive(bytes(datagram), 1.0) == []
    assert tun.stats.drops == {"udp_bad_checksum": 1}


def test_a_zero_udp_checksum_means_none_and_is_accepted():
    tun = host()
    assert len(tun.receive(udp(checksum=False), 1.0)) == 1


@pytest.mark.parametrize("datagram, rule", [
    (udp(destination="255.255.255.255"), "icmp_error_about_broadcast"),
    (udp(destination="224.0.0.1"), "icmp_error_about_broadcast"),
], ids=["limited-broadcast", "all-hosts-multicast"])
def test_rfc1122_3_2_2_no_error_about_broadcasts(datagram, rule):
    tun = host()
    assert tun.receive(datagram, 1.0) == []
    assert tun.stats[rule] == 1 and tun.stats["icmp_errors_sent"] == 0


def test_rfc1122_3_2_2_no_error_about_an_icmp_error():
    """A fragmented Destination Unreachable that never completes: no Time Exceeded about it."""
    message = frames.icmp_message(3, 1, bytes(4), bytes(3000))
    tun = host()
    tun.receive(fragments(message)[0], 0.0)
    assert tun.poll(REASSEMBLY_TIMEOUT_S) == []
    assert tun.stats["icmp_error_about_icmp_error"] == 1


@pytest.mark.parametrize("icmp_type, answered", [
    (8, True), (0, True), (13, True), (18, True),  # queries: a Time Exceeded about them
    (3, False), (11, False), (1, False), (9, False), (19, False), (200, False),  # errors, or maybe
])
def test_rfc1122_3_2_2_no_error_about_an_icmp_message_not_known_to_be_a_query(icmp_type, answered):
    """As Linux 6.18 (tapstack diff found it; checked on the kernel): only the query types of RFC
    792 and RFC 950 get an ICMP error about them; unassigned and unknown types may be errors."""
    message = frames.icmp_message(icmp_type, 0, bytes(4), bytes(3000))
    tun = host()
    tun.receive(fragments(message)[0], 0.0)
    errors = tun.poll(REASSEMBLY_TIMEOUT_S)
    assert len(errors) == answered and tun.stats["icmp_error_about_icmp_error"] == (not answered)


def test_rfc1122_3_2_2_icmp_errors_are_rate_limited():
    tun = host()
    sent = sum(len(tun.receive(udp(port=port), 5.0)) for port in range(ICMP_ERROR_BURST + 10))
    assert sent == ICMP_ERROR_BURST
    assert tun.stats["icmp_error_rate_limited"] == 10
    assert len(tun.receive(udp(), 5.01)) == 1  # 1000 tokens a second: 10 more after 10 ms


def test_tap_host_answers_udp_with_port_unreachable_through_arp():
    from stack import TapHost

    tap = TapHost(["192.0.2.2/24"], mac="02:00:00:00:00:02")
    tap.receive(frames.ARP_REQUEST, 0.0)
    datagram = udp()
    [frame] = tap.receive(frames.ethernet_frame(frames.HOST_MAC, frames.KERNEL_MAC, 0x0800, datagram), 1.0)
    assert join(frame) == frames.ethernet_frame(frames.KERNEL_MAC, frames.HOST_MAC, 0x0800,
                                                icmp_error(3, 3, datagram))
