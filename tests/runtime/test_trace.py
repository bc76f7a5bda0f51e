"""Trace lines: tcpdump's wording for what we know, and never an exception for anything."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from stack.runtime.trace import summarize
from stack.testing import frames
from tests.strategies import frames as valid_frames


def test_arp_and_echo_lines_read_like_tcpdump():
    assert summarize(frames.ARP_REQUEST) == (
        "02:00:00:00:00:01 > ff:ff:ff:ff:ff:ff, ethertype ARP (0x0806), length 42: "
        "Request who-has 192.0.2.2 tell 192.0.2.1, length 28")
    assert summarize(frames.ECHO_REQUEST) == (
        "02:00:00:00:00:01 > 02:00:00:00:00:02, ethertype IPv4 (0x0800), length 98: "
        "192.0.2.1 > 192.0.2.2: ICMP echo request, id 4660, seq 1, length 64")
    assert summarize([frames.ECHO_REPLY[:14], frames.ECHO_REPLY[14:]]).endswith(
        "192.0.2.2 > 192.0.2.1: ICMP echo reply, id 4660, seq 1, length 64")


def test_a_raw_ip_packet_in_ip_medium():
    assert summarize(frames.ECHO_REQUEST[14:], medium="ip") == (
        "192.0.2.1 > 192.0.2.2: ICMP echo request, id 4660, seq 1, length 64")


def test_malformed_frames_say_why():
    assert summarize(b"\x02" * 5) == "malformed: [Ethernet] frame of 5 bytes < header 14"
    corrupted = frames.ECHO_REQUEST[:24] + b"\x00\x00" + frames.ECHO_REQUEST[26:]
    assert summarize(corrupted) == (
        "02:00:00:00:00:01 > 02:00:00:00:00:02, ethertype IPv4 (0x0800), length 98: "
        "malformed: [IPv4] header checksum 0x0000 does not verify (should be 0xf6a5)")


@settings(max_examples=300)
@given(st.one_of(st.binary(max_size=120), valid_frames()), st.sampled_from(["ethernet", "ip"]))
def test_summarize_never_raises(data, medium):
    assert isinstance(summarize(data, medium), str)
