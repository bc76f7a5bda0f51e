"""``tapstack explain`` for TCP: every header field, each flag, the checksum verified over either
family's pseudo-header, each option (malformed ones too), and the RST tapstack answers."""

from __future__ import annotations

import dpkt
import pytest

from stack.testing import frames
from stack.tools.explain import explain

LINUX_SYN_OPTIONS = bytes.fromhex("020405b40402080a0001e2400000000001030307")


def segment(flags: int, opts: bytes = b"", family: int = 4, data: bytes = b"", ack: int = 0, urp: int = 0,
            dst: str | None = None) -> bytes:
    tcp = dpkt.tcp.TCP(sport=40000, dport=80, seq=1000, ack=ack, flags=flags, win=64240, opts=opts, data=data,
                       urp=urp)
    tcp.off = (20 + len(opts)) // 4
    if family == 4:
        return bytes(dpkt.ip.IP(src=frames.ip(frames.KERNEL_IP), dst=frames.ip(dst or frames.HOST_IP), p=6,
                                data=tcp))
    packet = dpkt.ip6.IP6(src=frames.ip6(frames.KERNEL_IP6), dst=frames.ip6(dst or frames.HOST_IP6), nxt=6,
                          hlim=64, data=tcp)
    packet.plen = len(bytes(tcp))
    return bytes(packet)


def rows(text: str) -> dict[str, str]:
    """field name -> the rest of its row, for the TCP section."""
    section = text.split("TCP (RFC 9293 3.1)", 1)[1].split("\n\n", 1)[0]
    found = {}
    for line in section.splitlines()[1:]:
        parts = line.split(None, 1)
        if len(parts) == 2 and parts[0][0].isdigit():
            found[line[11:36].strip()] = line[36:].strip()
    return found


@pytest.mark.parametrize("family", [4, 6])
def test_a_linux_syn_field_by_field_and_the_rst_it_gets(family):
    text = explain(segment(dpkt.tcp.TH_SYN, LINUX_SYN_OPTIONS, family), "ip")
    fields = rows(text)
    assert fields["source port"] == "40000" and fields["destination port"].startswith("80")
    assert fields["sequence number"].startswith("1000")
    assert "not significant" in fields["acknowledgment number"]
    assert fields["data offset"].startswith("10") and "40 bytes of header, 20 of options" in fields["data offset"]
    assert fields["flags"].startswith("0x02") and fields["flags"].endswith("SYN")
    assert fields["window"].startswith("64240")
    assert "correct (computed" in fields["checksum"]
    assert "not significant" in fields["urgent pointer"]
    assert fields["option 2"].startswith("1460") and "maximum segment size" in fields["option 2"]
    assert "SACK permitted" in fields["option 4"] and fields["option 8"].startswith("val 123456 ecr 0")
    assert fields["option 3"].startswith("shift 7")
    assert "Flags [R.], seq 0, ack 1001, win 0" in text and "drop tcp_port_closed" in text


def test_each_flag_is_named_and_explained():
    text = explain(segment(0xFF, ack=5, urp=1), "ip")
    assert "0xff                 FIN SYN RST PSH ACK URG ECE CWR" in text
    for meaning in ("no more data from the sender", "synchronize sequence numbers", "reset the connection",
                    "push function", "the acknowledgment field is significant", "ECN-Echo", "congestion window reduced"):
        assert meaning in text
    assert "significant (URG set)" in text
    assert "drop tcp_reset_discarded" in text and "answer:" not in text  # RFC 9293 3.10.7.1


@pytest.mark.parametrize("opts, why", [
    (b"\x02\x09\x00\x00", "length 9 runs past the options"), (b"\x02\x01\x00\x00", "length 1 < 2"),
    (b"\x03\x04\x07\x00", "length 4, not 3"), (b"\x01\x01\x01\x05", "no length byte")])
def test_a_malformed_option_is_named_and_the_rst_still_goes(opts, why):
    text = explain(segment(dpkt.tcp.TH_SYN, opts), "ip")
    assert "MALFORMED" in text and why in text
    assert "Flags [R.]" in text


def test_a_wrong_checksum_shows_both_values_and_the_drop():
    packet = bytearray(segment(dpkt.tcp.TH_SYN))
    packet[36:38] = b"\x12\x34"
    text = explain(bytes(packet), "ip")
    assert "0x1234" in text and "WRONG: computed" in text and "drop tcp_bad_checksum" in text


def test_a_bad_data_offset_and_a_short_segment():
    packet = bytearray(segment(dpkt.tcp.TH_SYN))
    packet[32] = 0x40
    assert "below 20, invalid (dropped: tcp_bad_header_length)" in explain(bytes(packet), "ip")
    short = frames.ipv4_datagram(frames.KERNEL_IP, frames.HOST_IP, 6, bytes(12))
    assert "a TCP header is 20" in explain(short, "ip")


def test_data_and_unknown_options_are_shown():
    text = explain(segment(dpkt.tcp.TH_ACK | dpkt.tcp.TH_PUSH, b"\xfd\x04\xab\xcd", data=b"hello", ack=1), "ip")
    assert "unknown kind: ignored (RFC 9293 3.1)" in text and "abcd" in text and "5 bytes" in text
    assert "Flags [R], seq 1, win 0" in text


def test_a_segment_to_broadcast_is_not_answered():
    frame = frames.ethernet_frame(frames.BROADCAST_MAC, frames.KERNEL_MAC, 0x0800,
                                  segment(dpkt.tcp.TH_SYN, dst="192.0.2.255"))
    text = explain(frame)
    assert "drop tcp_not_unicast" in text and "answer:" not in text
