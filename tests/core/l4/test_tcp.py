"""TCP codec (RFC 9293 3.1, options RFC 7323 / RFC 2018) and the closed-port RST (RFC 9293 3.10.7.1).

The oracles are dpkt (it computes the checksum over the pseudo-header when it packs an IP
packet, and parses options independently) and the RFC's arithmetic, never ``stack`` itself.
"""

from __future__ import annotations

from ipaddress import IPv4Address, IPv6Address

import dpkt
import pytest
from hypothesis import given
from hypothesis import strategies as st

from stack.errors import ParseError
from stack.l4.tcp import TcpFlags, TcpOptions, TcpSegment, reset_for

SOURCE, DESTINATION = IPv4Address("192.0.2.1"), IPv4Address("192.0.2.2")
SOURCE6, DESTINATION6 = IPv6Address("2001:db8::1"), IPv6Address("2001:db8::2")


def dpkt_segment(flags: int = dpkt.tcp.TH_SYN, opts: bytes = b"", data: bytes = b"", family: int = 4,
                 seq: int = 1000, ack: int = 0) -> bytes:
    """dpkt's TCP segment from SOURCE port 40000 to DESTINATION port 80: its bytes after the IP header."""
    tcp = dpkt.tcp.TCP(sport=40000, dport=80, seq=seq, ack=ack, flags=flags, win=64240, opts=opts, data=data)
    tcp.off = (20 + len(opts)) // 4
    if family == 4:
        return bytes(dpkt.ip.IP(src=SOURCE.packed, dst=DESTINATION.packed, p=6, data=tcp))[20:]
    packet = dpkt.ip6.IP6(src=SOURCE6.packed, dst=DESTINATION6.packed, nxt=6, hlim=64, data=tcp)
    packet.plen = len(bytes(tcp))
    return bytes(packet)[40:]


LINUX_SYN_OPTIONS = bytes.fromhex("020405b4 0402080a 0001e240 00000000 01030307")


@pytest.mark.parametrize("family", [4, 6])
def test_a_linux_style_syn_parses_and_builds_byte_for_byte(family):
    wire = dpkt_segment(opts=LINUX_SYN_OPTIONS, family=family)
    source, destination = (SOURCE, DESTINATION) if family == 4 else (SOURCE6, DESTINATION6)
    segment = TcpSegment.parse(wire, source, destination)
    assert (segment.source_port, segment.destination_port, segment.sequence) == (40000, 80, 1000)
    assert segment.flags == TcpFlags.SYN and segment.window == 64240
    assert segment.options == TcpOptions(mss=1460, sack_permitted=True, timestamps=(123456, 0), window_scale=7)
    assert segment.segment_length == 1  # RFC 9293 3.4: SYN occupies one sequence number
    assert segment.to_bytes(source, destination) == wire


@given(payload=st.binary(max_size=64), flags=st.integers(0, 255), seq=st.integers(0, 2**32 - 1),
       ack=st.integers(0, 2**32 - 1), window=st.integers(0, 0xFFFF),
       mss=st.none() | st.integers(0, 0xFFFF), scale=st.none() | st.integers(0, 14),
       sack=st.booleans(), stamps=st.none() | st.tuples(st.integers(0, 2**32 - 1), st.integers(0, 2**32 - 1)))
def test_built_segments_parse_back_and_dpkt_agrees(payload, flags, seq, ack, window, mss, scale, sack, stamps):
    options = TcpOptions(mss=mss, window_scale=scale, sack_permitted=sack, timestamps=stamps)
    segment = TcpSegment(40000, 80, seq, ack, TcpFlags(flags), window, options=options, payload=payload)
    wire = segment.to_bytes(SOURCE, DESTINATION)
    assert TcpSegment.parse(wire, SOURCE, DESTINATION) == segment
    theirs = dpkt.tcp.TCP(wire)
    assert (theirs.seq, theirs.ack, theirs.flags, theirs.win, theirs.data) == (seq, ack, flags, window, payload)
    # dpkt recomputes the checksum when it packs a fresh IP packet around the same segment.
    repacked = dpkt.ip.IP(src=SOURCE.packed, dst=DESTINATION.packed, p=6, data=dpkt.tcp.TCP(wire))
    repacked.data.sum = 0
    assert bytes(repacked)[20:] == wire


@pytest.mark.parametrize("wire, reason", [
    (dpkt_segment()[:19], "tcp_truncated"),
    (dpkt_segment()[:12] + b"\x40" + dpkt_segment()[13:], "tcp_bad_header_length"),  # 4 words < 5
    (dpkt_segment()[:12] + b"\x60" + dpkt_segment()[13:], "tcp_bad_header_length"),  # 24 > 20 bytes
    (dpkt_segment()[:16] + b"\x00\x00" + dpkt_segment()[18:], "tcp_bad_checksum"),
])
def test_malformed_segments_raise_parse_error_with_a_named_reason(wire, reason):
    with pytest.raises(ParseError) as caught:
        TcpSegment.parse(wire, SOURCE, DESTINATION)
    assert caught.value.drop_reason == reason


def test_the_checksum_covers_the_pseudo_header():
    wire = dpkt_segment()
    with pytest.raises(ParseError):
        TcpSegment.parse(wire, SOURCE, IPv4Address("192.0.2.3"))


@pytest.mark.parametrize("opts, expected", [
    (bytes.fromhex("02000000"), TcpOptions(malformed=True)),  # length 0 (RFC 9293 3.1: must not crash)
    (bytes.fromhex("020405b4 0101080a"), TcpOptions(mss=1460, malformed=True)),  # runs past the header
    (bytes.fromhex("0203 05b4"), TcpOptions(malformed=True)),  # MSS of the wrong length
    (bytes.fromhex("01010000"), TcpOptions()),  # NOPs, then End of Option List
    (bytes.fromhex("fe04abcd"), TcpOptions(unknown=((254, b"\xab\xcd"),))),  # RFC 9293 3.1: ignored
    (bytes.fromhex("0101050a 00000001 00000005"), TcpOptions(sack_blocks=((1, 5),))),
])
def test_option_lists_are_read_and_bad_ones_never_raise(opts, expected):
    wire = dpkt_segment(opts=opts)
    assert TcpSegment.parse(wire, SOURCE, DESTINATION).options == expected


@given(st.integers(0, 2**32 - 1), st.integers(0, 2**32 - 1))
def test_the_timestamps_only_list_is_written_and_read_as_linux_sends_it(value, echo_reply):
    # RFC 7323 appendix A: NOP, NOP, Timestamps (8, 10): the list of every segment after the
    # handshake, which the codec builds and reads at once (a fast path; the same bytes).
    wire = bytes.fromhex("0101080a") + value.to_bytes(4, "big") + echo_reply.to_bytes(4, "big")
    options = TcpOptions(timestamps=(value, echo_reply))
    assert options.to_bytes() == wire
    assert dpkt.tcp.parse_opts(wire) == [(1, b""), (1, b""), (8, wire[4:])]
    assert TcpOptions.parse(wire) == TcpOptions.parse(memoryview(wire)) == options
    assert TcpOptions.parse(wire[2:] + b"\x01\x01") == options  # another layout, read by the loop, alike
    assert TcpOptions(timestamps=(value, echo_reply), window_scale=0).to_bytes() == wire + bytes.fromhex("01030300")


@given(st.binary(max_size=40))
def test_any_option_bytes_parse_without_raising(opts):
    TcpOptions.parse(opts)


def test_rst_for_a_segment_without_ack_acknowledges_all_of_it():
    # RFC 9293 3.10.7.1: <SEQ=0><ACK=SEG.SEQ+SEG.LEN><CTL=RST,ACK>; SYN and FIN count in SEG.LEN.
    syn_with_data = TcpSegment(40000, 80, 2**32 - 2, 0, TcpFlags.SYN | TcpFlags.FIN, 1000, payload=b"abc")
    reset = reset_for(syn_with_data)
    assert reset == TcpSegment(80, 40000, 0, 3, TcpFlags.RST | TcpFlags.ACK, 0)  # wraps modulo 2**32


def test_rst_for_a_segment_with_ack_takes_its_sequence_from_the_ack():
    # RFC 9293 3.10.7.1: <SEQ=SEG.ACK><CTL=RST>.
    reset = reset_for(TcpSegment(40000, 80, 7, 123456, TcpFlags.ACK | TcpFlags.PSH, 1000, payload=b"x"))
    assert reset == TcpSegment(80, 40000, 123456, 0, TcpFlags.RST, 0)


def test_a_rst_is_never_answered():
    assert reset_for(TcpSegment(40000, 80, 7, 0, TcpFlags.RST, 0)) is None
    assert reset_for(TcpSegment(40000, 80, 7, 9, TcpFlags.RST | TcpFlags.ACK, 0)) is None


@pytest.mark.parametrize("field, value", [("source_port", 70000), ("sequence", 2**32), ("window", -1)])
def test_values_that_do_not_fit_their_field_are_refused(field, value):
    fields = dict(source_port=1, destination_port=2, sequence=0, acknowledgment=0, flags=TcpFlags.SYN, window=0)
    fields[field] = value
    with pytest.raises(ValueError):
        TcpSegment(**fields)
