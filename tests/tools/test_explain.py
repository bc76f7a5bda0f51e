"""``tapstack explain``: fields with offsets and checksum verdicts, tapstack's answer, never a crash."""

from __future__ import annotations

import dpkt
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from stack.tools.explain import explain
from stack.testing import frames
from tests.devices.test_pcap_reader import file_header, record
from tests.strategies import frames as valid_frames
from tests.cli.test_cli import assert_usage_error, tapstack

ECHO = frames.ECHO_REQUEST


def rows(text: str) -> dict[str, str]:
    """Each row by its field name: the rest of the line."""
    found = {}
    for line in text.splitlines():
        parts = line.split(None, 1)
        if len(parts) == 2 and parts[0][0].isdigit():
            name = line[11:36].strip()
            found.setdefault(name, line)
    return found


def test_an_echo_request_field_by_field_and_its_answer():
    text = explain(ECHO)
    table = rows(text)
    assert table["destination MAC"].split()[:3] == ["0-5", "destination", "MAC"]
    assert "02:00:00:00:00:02" in table["destination MAC"] and "unicast" in table["destination MAC"]
    assert "12-13" in table["EtherType"] and "0x0800" in table["EtherType"] and "IPv4" in table["EtherType"]
    assert table["TTL"].split()[:3] == ["22", "TTL", "64"]
    assert "24-25" in table["header checksum"] and "correct (computed 0xf6a5)" in table["header checksum"]
    assert "192.0.2.1" in table["source address"] and "26-29" in table["source address"]
    assert "38-39" in table["identifier"] and "4660" in table["identifier"]
    assert "36-37" in table["checksum"] and "correct" in table["checksum"]
    assert "42-97" in table["data"] and "56 bytes" in table["data"]
    assert text.rstrip().endswith("192.0.2.2 > 192.0.2.1: ICMP echo reply, id 4660, seq 1, length 64")
    assert "as 192.0.2.2/24 at 02:00:00:00:00:02" in text


def test_rfc1122_3_2_1_2_a_wrong_header_checksum_shows_both_values_and_the_drop():
    text = explain(ECHO[:24] + b"\x12\x34" + ECHO[26:])
    assert "0x1234" in rows(text)["header checksum"]
    assert "WRONG: computed 0xf6a5" in rows(text)["header checksum"]
    assert ("drop ipv4_bad_checksum: the IPv4 header checksum is wrong: IPv4 header checksum 0x1234 "
            "does not verify (should be 0xf6a5) (RFC 1122 3.2.1.2)") in text


def test_a_wrong_icmp_checksum_is_caught_too():
    text = explain(ECHO[:36] + b"\x00\x00" + ECHO[38:])
    assert "WRONG: computed 0xeeb7" in rows(text)["checksum"]
    assert "drop icmp_bad_checksum" in text and "(RFC 792; RFC 1122 3.2.2)" in text


def test_arp_request_fields_and_reply():
    text = explain(frames.ARP_REQUEST)
    table = rows(text)
    assert "20-21" in table["operation (ar$op)"] and "request" in table["operation (ar$op)"]
    assert "38-41" in table["target IP (ar$tpa)"] and "192.0.2.2" in table["target IP (ar$tpa)"]
    assert "Reply 192.0.2.2 is-at" in text


def test_ipv4_options_are_decoded():
    record_route = b"\x07\x07\x04" + bytes(4) + b"\x00"
    frame = frames.echo_request_frame(options=record_route)
    table = rows(explain(frame))
    assert "28 bytes with options" in table["IHL (header length)"]
    assert "34-40" in table["option 7"] and "record route" in table["option 7"] and "pointer 4" in table["option 7"]
    assert "41" in table["option 0"] and "end of option list" in table["option 0"]


def test_udp_to_a_closed_port_gets_port_unreachable():
    segment = dpkt.udp.UDP(sport=12345, dport=53, ulen=12, data=b"abcd")  # dpkt fills sum, not ulen
    datagram = dpkt.ip.IP(src=frames.ip(frames.KERNEL_IP), dst=frames.ip(frames.HOST_IP), p=17, data=segment)
    raw = bytes(datagram)
    assert raw[26:28] != b"\x00\x00"  # a checksum to verify
    text = explain(raw, medium="ip")
    assert "UDP (RFC 768)" in text and "correct" in rows(text)["checksum"]
    assert "drop udp_port_unreachable" in text and "ICMP unreachable" in text


def test_a_tun_packet_with_packet_information():
    text = explain(b"\x00\x00\x08\x00" + ECHO[14:], medium="ip", packet_info=True)
    assert "2-3" in rows(text)["protocol"] and "0x0800" in rows(text)["protocol"]
    assert "4" == rows(text)["version"].split()[0] and "ICMP echo reply" in text


def test_a_short_frame_says_where_it_ends():
    text = explain(ECHO[:30])
    assert "(missing)" in text and "drop ipv4_truncated" in text


def test_rfc5227_3_an_announcement_is_explained_from_a_neighbour_not_answered_by_its_sender():
    """tapstack's own gratuitous ARP (frame 1 of its capture): sender IP = target IP."""
    announcement = frames.ethernet_frame(frames.BROADCAST_MAC, frames.HOST_MAC, frames.ETHERTYPE_ARP,
                                         frames.arp_packet(frames.ARP_REQUEST_OP, frames.HOST_MAC,
                                                           frames.HOST_IP, frames.ZERO_MAC, frames.HOST_IP))
    text = explain(announcement)
    assert "as 192.0.2.1/24" in text and "a neighbour of 192.0.2.2, which is announced" in text
    assert "answer:" not in text and "drop" not in text and "takes it and sends nothing back" in text
    assert "an announcement of 192.0.2.2 at 02:00:00:00:00:02 (RFC 5227 3)" in text
    assert "(RFC 826 merge)" in text
    # A host that has the announced address itself sees another host claiming it: a conflict.
    text = explain(announcement, address=ipv4_interface("192.0.2.2/24"))
    assert "drop arp_address_conflict" in text and "(gratuitous)" in text
    assert "an announcement of" not in text


def ipv4_interface(text: str):
    from ipaddress import IPv4Interface

    return IPv4Interface(text)


def test_a_frame_the_capture_cut_is_explained_as_far_as_it_goes_and_not_answered():
    text = explain(ECHO[:50], original_length=len(ECHO))
    assert "Ethernet II (RFC 894), 98 bytes, 50 captured" in text
    assert "84 bytes, header included" in rows(text)["total length"]  # no "the buffer has 36"
    assert "the buffer has" not in text
    assert "correct" in rows(text)["header checksum"]
    assert "cannot be checked: it covers 64 bytes, 16 captured" in rows(text)["checksum"]
    assert "56 bytes, 8 captured" in rows(text)["data"]
    assert "What tapstack would do: cannot be told from 50 of the frame's 98 bytes" in text
    assert "drop" not in text and "(missing)" not in text
    cut_in_header = explain(ECHO[:24], original_length=len(ECHO))
    assert "(not captured)" in rows(cut_in_header)["header checksum"]


def test_a_frame_cut_only_in_its_padding_is_still_answered():
    padded = frames.pad(frames.ARP_REQUEST)
    text = explain(padded[:50], original_length=len(padded))
    assert "18 bytes of Ethernet padding after the ARP packet (8 captured)" in text
    assert "(the 10 bytes not captured are link padding" in text
    assert "Reply 192.0.2.2 is-at" in text


@settings(max_examples=300)
@given(st.one_of(st.binary(max_size=120), valid_frames()), st.sampled_from(["ethernet", "ip"]), st.booleans(),
       st.none() | st.integers(0, 200))
def test_explain_never_raises_and_never_stops_early(data, medium, packet_info, original_length):
    text = explain(data, medium, packet_info=packet_info and medium == "ip", original_length=original_length)
    assert "decoding stopped" not in text and "internal error" not in text
    assert "What tapstack would do" in text


# ---------------------------------------------------------------------- the command


def test_the_command_takes_hex_with_spaces():
    result = tapstack("explain", " ".join(f"{b:02x}" for b in frames.ARP_REQUEST))
    assert result.returncode == 0, result.stderr
    assert "Reply 192.0.2.2 is-at" in result.stdout


def test_the_command_reads_a_frame_from_a_pcap(tmp_path):
    path = tmp_path / "two.pcap"
    with open(path, "wb") as file:
        writer = dpkt.pcap.Writer(file, linktype=101)
        writer.writepkt(ECHO[14:], ts=1.0)
        writer.writepkt(ECHO[14:24] + b"\x00\x00" + ECHO[26:], ts=2.0)
    first = tapstack("explain", "--pcap", str(path))
    assert first.returncode == 0 and "ICMP echo reply" in first.stdout and "on a TUN link" in first.stdout
    second = tapstack("explain", "--pcap", str(path), "--frame", "2")
    assert second.returncode == 0 and "drop ipv4_bad_checksum" in second.stdout
    assert_usage_error(tapstack("explain", "--pcap", str(path), "--frame", "3"), "fewer than 3 frames")


@pytest.mark.parametrize("args, fragments", [
    (["0g"], ["'g'", "not a hex digit"]),
    (["abc"], ["odd number"]),
    (["--pcap", "/nonexistent/x.pcap"], ["/nonexistent/x.pcap", "No such file"]),
    ([], ["HEX", "--pcap"]),
    (["00", "--pcap", "x.pcap"], ["either"]),
    (["00", "--pi"], ["--pi", "--tun"]),
], ids=["not-hex", "odd-length", "missing-pcap", "nothing", "both", "pi-without-tun"])
def test_bad_input_is_one_line_exit_2(args, fragments):
    assert_usage_error(tapstack("explain", *args), *fragments)


def test_the_readme_tun_example_with_packet_information_works_when_pasted():
    result = tapstack("explain", "--tun", "--pi",
                      "0000 0800 4500 001c 0000 0000 4001 f6dd c000 0201 c000 0202 0800 e5ca 1234 0001")
    assert result.returncode == 0, result.stderr
    assert "correct (computed 0xf6dd)" in result.stdout and "correct (computed 0xe5ca)" in result.stdout
    assert result.stdout.rstrip().endswith(
        "answer: pi flags 0x0 proto 0x0800: 192.0.2.2 > 192.0.2.1: ICMP echo reply, id 4660, seq 1, length 8")


def test_a_frame_cut_by_the_snapshot_length_is_explained_and_exits_0(tmp_path):
    path = tmp_path / "snap50.pcap"
    path.write_bytes(file_header(snaplen=50) + record(frames.ARP_REQUEST) + record(ECHO[:50], original=98))
    result = tapstack("explain", "--pcap", str(path), "--frame", "2")
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("frame 2: 50 of 98 bytes captured (the capture's snapshot length is 50)\n")
    assert "cannot be told from 50 of the frame's 98 bytes" in result.stdout
    whole = tapstack("explain", "--pcap", str(path), "--frame", "1")
    assert whole.returncode == 0 and not whole.stdout.startswith("frame") and "Reply 192.0.2.2" in whole.stdout


@pytest.mark.parametrize("cut, frame, fragments", [
    (10, 2, ["capture cut short in frame 2", "10 bytes into its 16-byte record header"]),
    (16 + 50, 2, ["capture cut short in frame 2", "after 50 of its 98 captured bytes"]),
    (16 + 50, 3, ["capture cut short in frame 2", "so it has no frame 3"]),
], ids=["in-record-header", "in-record-data", "asked-past-the-cut"])
def test_a_capture_cut_short_is_one_line_exit_2(tmp_path, cut, frame, fragments):
    path = tmp_path / "cut.pcap"
    whole = file_header() + record(frames.ARP_REQUEST) + record(ECHO)
    path.write_bytes(whole[:24 + 16 + len(frames.ARP_REQUEST) + cut])
    assert_usage_error(tapstack("explain", "--pcap", str(path), "--frame", str(frame)), str(path), *fragments)
    before = tapstack("explain", "--pcap", str(path), "--frame", "1")  # the frames before the cut are whole
    assert before.returncode == 0 and "Reply 192.0.2.2" in before.stdout


def test_a_file_that_is_not_a_pcap_is_one_line_exit_2(tmp_path):
    path = tmp_path / "not.pcap"
    path.write_bytes(b"hello, this is not a capture")
    assert_usage_error(tapstack("explain", "--pcap", str(path)), "not a pcap file")
    path.write_bytes(file_header())
    assert_usage_error(tapstack("explain", "--pcap", str(path)), "has no frames")
