"""``tapstack explain`` over IPv6 (stack/tools/explain6.py): Neighbor Discovery messages and
options, MLDv1 and MLDv2, extension headers with their options' action bits, each field with its
offset, and tapstack's answer or drop with the rule. Packets are laid out by hand
(``stack.testing.frames``, checksums by dpkt), not with tapstack's codecs."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from stack.testing import frames
from stack.testing import strategies
from stack.tools.explain import explain
from tests.cli.test_cli import tapstack

PEER = frames.KERNEL_IP6  # 2001:db8::1 at 02:00:00:00:00:01
HOST = frames.HOST_IP6  # 2001:db8::2 at 02:00:00:00:00:02
ROUTER = "fe80::1"
PEER_MAC = frames.KERNEL_MAC
HOST_MAC = frames.HOST_MAC
ICMPV6_AT = 14 + 40  # where the ICMPv6 message starts in a frame without extension headers


def group_mac(address: str) -> bytes:
    """RFC 2464 7: 33:33 and the group's last four bytes."""
    return b"\x33\x33" + frames.ip6(address)[12:]


def nd_frame(type: int, body: bytes, src: str = PEER, dst: str = HOST, hop_limit: int = 255, code: int = 0,
             next_header: int = frames.NEXT_HEADER_ICMPV6, before: bytes = b"") -> bytes:
    """An ICMPv6 message (``body``: what follows its checksum) in IPv6 in Ethernet, from the peer."""
    message = frames.icmpv6_message(type, code, body, src, dst)
    packet = frames.ipv6_packet(before + message, next_header, src, dst, hop_limit)
    destination_mac = group_mac(dst) if dst.startswith("ff") else HOST_MAC
    return frames.ethernet_frame(destination_mac, PEER_MAC, 0x86DD, packet)


def option(type: int, data: bytes) -> bytes:
    """An ND option (RFC 4861 4.6): type, length in units of 8 bytes, data (padded to fit)."""
    data += bytes(-(len(data) + 2) % 8)
    return bytes([type, (len(data) + 2) // 8]) + data


SOURCE_LINK_LAYER = option(1, PEER_MAC)
ROUTER_ALERT = frames.options_header(frames.NEXT_HEADER_ICMPV6, b"\x05\x02\x00\x00")  # RFC 2711: MLD


def rows(text: str) -> dict[str, str]:
    """Each row by its field name (the first row of that name): the rest of the line."""
    found: dict[str, str] = {}
    for line in text.splitlines():
        parts = line.split(None, 1)
        if len(parts) == 2 and parts[0][0].isdigit():
            found.setdefault(line[11:36].strip(), line)
    return found


def sections(text: str) -> list[str]:
    return [line for line in text.splitlines() if line and not line.startswith(" ")]


# ---------------------------------------------------------------------- Neighbor Discovery


def test_a_neighbor_solicitation_with_its_option_and_the_advertisement_it_gets():
    body = bytes(4) + frames.ip6(HOST) + SOURCE_LINK_LAYER
    text = explain(nd_frame(135, body, dst="ff02::1:ff00:2"))
    table = rows(text)
    assert "solicited-node multicast" in table["destination"]
    assert table["type"].split()[:3] == ["54", "type", "135"] and "neighbor solicitation (RFC 4861 4.3)" in table["type"]
    assert "58-61" in table["reserved"] and "62-77" in table["target address"] and "2001:db8::2" in table["target address"]
    assert "ND option: source link-layer address (RFC 4861 4.6.1), 8 bytes" in sections(text)
    assert "80-85" in table["link-layer address"] and "02:00:00:00:00:01" in table["link-layer address"]
    assert "the sender's MAC" in table["link-layer address"]
    assert "Validity checks (RFC 4861 7.1.1)" in sections(text) and "passes them all" in text
    # The host with the solicited address answers with an advertisement to the solicitor.
    assert "(the address solicited, assuming a /64)" in text
    assert text.rstrip().endswith("2001:db8::2 > 2001:db8::1: ICMP6, neighbor advertisement, tgt is 2001:db8::2, "
                                  "length 32")


@pytest.mark.parametrize("flags, shown", [(0xE0, "R=1, S=1, O=1"), (0x40, "R=0, S=1, O=0"), (0x20, "R=0, S=0, O=1")])
def test_neighbor_advertisement_flags(flags, shown):
    body = bytes([flags, 0, 0, 0]) + frames.ip6(PEER) + option(2, PEER_MAC)
    table = rows(explain(nd_frame(136, body)))
    assert "58-61" in table["flags R, S, O"] and shown in table["flags R, S, O"]
    assert "the target's MAC" in table["link-layer address"]


def test_rfc4861_7_1_2_an_advertisement_to_multicast_with_s_set_fails_and_is_dropped():
    text = explain(nd_frame(136, bytes([0x40, 0, 0, 0]) + frames.ip6(PEER), dst="ff02::1"))
    assert "fails, so a host MUST silently discard it: to a multicast address with the S (solicited) flag set" in text
    assert "drop icmpv6_nd_solicited_to_multicast" in text and "(RFC 4861 7.1.2)" in text


def test_rfc4861_7_1_1_hop_limit_not_255_fails_and_is_dropped():
    text = explain(nd_frame(135, bytes(4) + frames.ip6(HOST) + SOURCE_LINK_LAYER, hop_limit=64))
    assert "hop limit 64, not 255: it may come from off the link" in text
    assert "drop icmpv6_nd_bad_hop_limit" in text


def test_rfc4861_6_1_1_a_router_solicitation_from_unspecified_with_a_source_option():
    text = explain(nd_frame(133, bytes(4) + SOURCE_LINK_LAYER, src="::"))
    table = rows(text)
    assert "58-61" in table["reserved"] and "64-69" in table["link-layer address"]
    assert "Validity checks (RFC 4861 6.1.1)" in sections(text)
    assert "from :: with a source link-layer address option" in text
    assert "drop icmpv6_nd_source_link_layer_from_unspecified" in text


def test_a_router_advertisement_field_by_field_with_prefix_mtu_and_unknown_options():
    prefix = bytes([64, 0xC0]) + (86400).to_bytes(4, "big") + (14400).to_bytes(4, "big") + bytes(4) \
        + frames.ip6("2001:db8:1::")
    body = bytes([64, 0x40]) + (1800).to_bytes(2, "big") + (30000).to_bytes(4, "big") + (1000).to_bytes(4, "big") \
        + SOURCE_LINK_LAYER + option(5, bytes(2) + (1400).to_bytes(4, "big")) + option(3, prefix) + option(200, bytes(6))
    text = explain(nd_frame(134, body, src=ROUTER, dst="ff02::1"))
    table = rows(text)
    assert table["cur hop limit"].split()[:4] == ["58", "cur", "hop", "limit"] and " 64 " in table["cur hop limit"]
    assert "59" == table["flags M, O"].split()[0] and "M=0, O=1" in table["flags M, O"]
    assert "60-61" in table["router lifetime"] and "1800 s" in table["router lifetime"]
    assert "62-65" in table["reachable time"] and "30000 ms" in table["reachable time"]
    assert "66-69" in table["retrans timer"] and "1000 ms" in table["retrans timer"]
    # Options: source link-layer at 70, MTU at 78, prefix information at 86, unknown at 118.
    assert "82-85" in table["MTU"] and "1400" in table["MTU"]
    assert "88" == table["prefix length"].split()[0] and "64" in table["prefix length"]
    assert "89" == table["flags L, A"].split()[0] and "L=1, A=1" in table["flags L, A"]
    assert "90-93" in table["valid lifetime"] and "86400 s" in table["valid lifetime"]
    assert "94-97" in table["preferred lifetime"] and "14400 s" in table["preferred lifetime"]
    assert "102-117" in table["prefix"] and "2001:db8:1::/64" in table["prefix"]
    assert "ND option: unknown, 8 bytes" in sections(text)
    assert "unknown: skipped (RFC 4861 4.6" in text
    assert "passes them all" in text
    assert "drop icmpv6_nd_router_advertisement_ignored" in text and "(RFC 4861 6.3.4" in text


def test_rfc4861_4_6_2_a_prefix_option_of_the_wrong_length_is_a_drop():
    body = bytes(12) + option(3, bytes(22))  # 3 units, not 4
    text = explain(nd_frame(134, body, src=ROUTER, dst="ff02::1"))
    assert "not 4: the message is discarded (RFC 4861 4.6.2)" in rows(text)["length"]
    assert "drop icmpv6_nd_bad_option_length" in text


def test_rfc4861_4_6_an_option_of_length_zero_is_the_drop_of_the_whole_packet():
    body = bytes(4) + frames.ip6(HOST) + bytes([1, 0]) + bytes(6)
    text = explain(nd_frame(135, body))
    table = rows(text)
    assert "78-79" in table["ND option 1"] and "length 0: the whole packet is silently discarded (RFC 4861 4.6)" in table["ND option 1"]
    assert "fails, so a host MUST silently discard it: an option of length 0" in text
    assert "drop icmpv6_nd_option_zero_length" in text and "(RFC 4861 4.6)" in text


def test_a_redirect_with_its_redirected_header():
    inner = frames.ipv6_packet(b"", 59, HOST, "2001:db8:5::1")
    body = bytes(4) + frames.ip6("fe80::9") + frames.ip6("2001:db8:5::1") + option(4, bytes(6) + inner)
    text = explain(nd_frame(137, body, src=ROUTER))
    table = rows(text)
    assert "62-77" in table["target address"] and "fe80::9" in table["target address"]
    assert "78-93" in table["destination address"] and "2001:db8:5::1" in table["destination address"]
    assert "102-141" in table["IP header + data"] and "2001:db8::2 > 2001:db8:5::1" in table["IP header + data"]
    assert "Validity checks (RFC 4861 8.1)" in sections(text) and "passes them all" in text
    assert "drop icmpv6_nd_redirect_ignored" in text


def test_rfc4861_8_1_a_redirect_from_a_global_address_fails_the_checks():
    body = bytes(4) + frames.ip6("fe80::9") + frames.ip6("2001:db8:5::1")
    text = explain(nd_frame(137, body))
    assert "the source 2001:db8::1 is not link-local" in text
    assert "drop icmpv6_nd_router_not_link_local" in text or "drop icmpv6_nd_bad_redirect" in text


def test_nd_over_tun_is_explained_and_dropped_for_want_of_a_link_layer():
    frame = nd_frame(135, bytes(4) + frames.ip6(HOST))
    text = explain(frame[14:], medium="ip")
    assert "neighbor solicitation" in rows(text)["type"] and "drop icmpv6_nd_without_link_layer" in text


# ---------------------------------------------------------------------- MLD


def mld_frame(type: int, body: bytes, dst: str = "ff02::1", hop_limit: int = 1) -> bytes:
    return nd_frame(type, body, src=ROUTER, dst=dst, hop_limit=hop_limit, next_header=0, before=ROUTER_ALERT)


def test_an_mldv1_query_and_the_report_it_gets():
    text = explain(mld_frame(130, (1000).to_bytes(2, "big") + bytes(2) + bytes(16)))
    table = rows(text)
    at = ICMPV6_AT + 8  # after the Hop-by-Hop header
    assert table["maximum response code"].startswith(f"  {at + 4}-{at + 5}") and "1000 ms" in table["maximum response code"]
    assert "a General Query" in table["multicast address"]
    assert "24 bytes: an MLDv1 query (RFC 2710 3)" in text
    assert "ICMP6, multicast listener report, length 24" in text  # answered in MLDv1 (RFC 3810 8.2.1)


def test_an_mldv2_query_field_by_field_and_the_report_it_gets():
    # Maximum Response Code 0x8001: 1|000|000000000001 = (1 | 0x1000) << 3 = 32776 ms (RFC 3810 5.1.3);
    # QQIC 200: 1|100|1000 = (8 | 0x10) << 7 = 3072 s (5.1.9); S set, QRV 2, two sources.
    body = (0x8001).to_bytes(2, "big") + bytes(2) + bytes(16) + bytes([0x0A, 200]) + (2).to_bytes(2, "big") \
        + frames.ip6("2001:db8::7") + frames.ip6("2001:db8::8")
    text = explain(mld_frame(130, body))
    table = rows(text)
    at = ICMPV6_AT + 8
    assert "32776 ms" in table["maximum response code"] and "floating point" in table["maximum response code"]
    assert table["resv, S, QRV"].startswith(f"  {at + 24} ") and "S=1, QRV=2" in table["resv, S, QRV"]
    assert "200" in table["QQIC"] and "query interval 3072 s" in table["QQIC"]
    assert "2" in table["number of sources"]
    assert f"{at + 28}-{at + 43}" in table["source 1"] and "2001:db8::7" in table["source 1"]
    assert f"{at + 44}-{at + 59}" in table["source 2"] and "2001:db8::8" in table["source 2"]
    assert "ICMP6, multicast listener report v2" in text
    # The Hop-by-Hop header before it: the Router Alert option with its action bits.
    assert "router alert, 2 bytes" in table["option 0x05"] and "value 0: MLD; recognised (RFC 2711)" in table["option 0x05"]
    assert "00, 0" in table["action, change bits"]


def test_rfc3810_8_1_a_query_of_26_bytes_is_ignored():
    text = explain(mld_frame(130, bytes(22)))
    assert "26 bytes: neither 24 (MLDv1) nor 28 or more (MLDv2): silently ignored (RFC 3810 8.1)" in text
    assert "drop icmpv6_mld_bad_query_length" in text


def test_rfc3810_5_1_14_a_query_with_hop_limit_255_is_dropped():
    text = explain(mld_frame(130, bytes(4) + bytes(16), hop_limit=255))
    assert "drop icmpv6_mld_bad_hop_limit" in text


@pytest.mark.parametrize("type, name, meaning", [(131, "multicast listener report v1", "the group joined"),
                                                 (132, "multicast listener done", "the group left")])
def test_mldv1_report_and_done(type, name, meaning):
    text = explain(mld_frame(type, bytes(4) + frames.ip6("ff02::1:3"), dst="ff02::1"))
    table = rows(text)
    assert name in table["type"]
    assert f"{ICMPV6_AT + 8 + 4}-{ICMPV6_AT + 8 + 5}" in table["maximum response delay"]
    assert "ff02::1:3" in table["multicast address"] and meaning in table["multicast address"]
    assert "takes it and sends nothing back" in text  # RFC 3810 6: another host's report is not acted on


def test_an_mldv2_report_record_by_record():
    records = (bytes([4, 0]) + (0).to_bytes(2, "big") + frames.ip6("ff02::1:ff00:2")
               + bytes([1, 1]) + (1).to_bytes(2, "big") + frames.ip6("ff05::9") + frames.ip6("2001:db8::7") + b"abcd"
               + bytes([9, 0]) + (0).to_bytes(2, "big") + frames.ip6("ff05::a"))
    text = explain(nd_frame(143, bytes(2) + (3).to_bytes(2, "big") + records, src=ROUTER, dst="ff02::1", hop_limit=1))
    assert "MLDv2 record 1 (RFC 3810 5.2.4), 20 bytes" in text and "MLDv2 record 2 (RFC 3810 5.2.4), 40 bytes" in text
    lines = text.splitlines()
    record_types = [line for line in lines if " record type " in line]
    assert "CHANGE_TO_EXCLUDE_MODE" in record_types[0] and record_types[0].split()[0] == str(ICMPV6_AT + 8)
    assert "MODE_IS_INCLUDE" in record_types[1] and "unknown: ignored" in record_types[2]
    assert any("aux data len" in line and "4 bytes (units of 4)" in line for line in lines)
    assert any("2001:db8::7" in line and "source 1" in line for line in lines)
    assert any("auxiliary data" in line and "4 bytes" in line for line in lines)
    assert "takes it and sends nothing back" in text


def test_an_mldv2_report_with_a_record_cut_short():
    records = bytes([1, 0]) + (3).to_bytes(2, "big") + frames.ip6("ff05::9") + frames.ip6("2001:db8::7")
    text = explain(nd_frame(143, bytes(2) + (1).to_bytes(2, "big") + records, src=ROUTER, dst="ff02::1", hop_limit=1))
    assert "the record runs past the report (36 bytes left): the report is malformed" in text
    # RFC 3810 6: a host does not read other hosts' reports; it counts them.
    assert "drop" not in text and "takes it and sends nothing back" in text


# ---------------------------------------------------------------------- extension headers


def test_options_of_each_action_class_with_their_bits_and_the_verdict():
    # Hop-by-Hop: an unknown option of class 00 (skipped); Destination: class 10 (Parameter Problem).
    echo = frames.icmpv6_echo(128, 1, 1, b"hi")
    destination = frames.options_header(58, b"\x8b\x02ab")
    hop_by_hop = frames.options_header(60, b"\x0b\x00")
    packet = frames.ipv6_packet(hop_by_hop + destination + echo, 0)
    text = explain(frames.ethernet_frame(HOST_MAC, PEER_MAC, 0x86DD, packet))
    lines = text.splitlines()
    assert "Hop-by-Hop Options (RFC 8200 4.3), 8 bytes" in lines and "Destination Options (RFC 8200 4.6), 8 bytes" in lines
    skip = next(line for line in lines if "option 0x0b" in line)
    assert skip.split()[0] == "56-57" and "unknown: skipped" in skip
    report = next(line for line in lines if "option 0x8b" in line)
    assert report.split()[0] == "64-67" and "unknown: discard, Parameter Problem code 2 (RFC 8200 4.2)" in report
    bits = [line for line in lines if "action, change bits" in line]
    assert any(line.split()[0] == "56" and " 00, 0 " in line and "skip it" in line for line in bits)
    assert any(line.split()[0] == "64" and " 10, 0 " in line for line in bits)
    assert "ICMP6, parameter problem" in text and "drop ipv6_unrecognised_option" in text


def test_option_class_11_to_multicast_is_silent():
    echo = frames.icmpv6_echo(128, 1, 1, b"", dst="ff02::1")
    packet = frames.ipv6_packet(frames.options_header(58, b"\xcb\x00") + echo, 60, dst="ff02::1")
    text = explain(frames.ethernet_frame(group_mac("ff02::1"), PEER_MAC, 0x86DD, packet))
    assert "unknown, to multicast: silently discarded (RFC 8200 4.2)" in rows(text)["option 0xcb"]
    assert "11, 0" in rows(text)["action, change bits"]
    assert "answer:" not in text


@pytest.mark.parametrize("segments_left, verdict", [(0, "0: the header is ignored (RFC 8200 4.4)"),
                                                    (2, "Parameter Problem code 0 at the routing type")])
def test_routing_header_type_and_segments_left(segments_left, verdict):
    packet = frames.ipv6_packet(frames.routing_header(58, 0, segments_left) + frames.icmpv6_echo(128, 1, 1, b""), 43)
    text = explain(frames.ethernet_frame(HOST_MAC, PEER_MAC, 0x86DD, packet))
    table = rows(text)
    assert "56" == table["routing type"].split()[0] and "type 0, deprecated (RFC 5095" in table["routing type"]
    assert "57" == table["segments left"].split()[0] and verdict in table["segments left"]
    if segments_left:
        assert "drop ipv6_routing_header_rejected" in text
    else:
        assert "ICMP6, echo reply" in text


@pytest.mark.parametrize("offset, more, kind", [(0, True, "the first fragment"), (3, False, "a later fragment"),
                                                (0, False, "atomic")])
def test_fragment_header_fields(offset, more, kind):
    echo = frames.icmpv6_echo(128, 1, 1, b"x" * 16)
    packet = frames.ipv6_packet(frames.fragment_header(58, offset, more, 0xABCD) + echo, 44)
    text = explain(frames.ethernet_frame(HOST_MAC, PEER_MAC, 0x86DD, packet))
    table = rows(text)
    assert "56-57" in table["fragment offset, M"] and f"{offset * 8}, M={int(more)}" in table["fragment offset, M"]
    assert kind in table["fragment offset, M"]
    assert "58-61" in table["identification"] and str(0xABCD) in table["identification"]
    if kind == "atomic":  # RFC 6946: processed at once
        assert "ICMP6, echo reply" in text
    else:
        assert "read after reassembly" in text


# ---------------------------------------------------------------------- never a crash


ND_AND_MLD_TYPES = [130, 131, 132, 133, 134, 135, 136, 137, 143, 1, 2, 3, 4, 128, 129]


@st.composite
def icmpv6_frames(draw) -> bytes:
    """ND, MLD and other ICMPv6 messages with arbitrary bodies (cut, zero-length options, lengths
    that lie), checksums right, over Ethernet or bare."""
    body = draw(st.binary(max_size=80) | st.lists(st.sampled_from([SOURCE_LINK_LAYER, bytes([3, 4]) + bytes(30),
                                                                   bytes([1, 0]), bytes([5, 1]) + bytes(6), b"\x00"]),
                                                  max_size=4).map(lambda parts: bytes(20) + b"".join(parts)))
    hop_limit = draw(st.sampled_from([255, 1, 64]))
    before = draw(st.sampled_from([b"", ROUTER_ALERT]))
    return nd_frame(draw(st.sampled_from(ND_AND_MLD_TYPES)), body, hop_limit=hop_limit,
                    next_header=0 if before else 58, before=before,
                    dst=draw(st.sampled_from([HOST, "ff02::1", "ff02::1:ff00:2"])))


@settings(max_examples=300, deadline=None)
@given(st.one_of(icmpv6_frames(), strategies.ipv6_packets(),
                 strategies.broken_ipv6(strategies.ipv6_packets()).map(lambda broken: broken[1])),
       st.booleans())
def test_explain_never_raises_on_ipv6(frame, bare):
    text = explain(frame[14:], "ip") if bare else explain(frame)
    assert "decoding stopped" not in text and "internal error" not in text
    assert "What tapstack would do" in text


def test_the_command_explains_a_neighbor_solicitation_given_in_hex():
    frame = nd_frame(135, bytes(4) + frames.ip6(HOST) + SOURCE_LINK_LAYER, dst="ff02::1:ff00:2")
    result = tapstack("explain", frame.hex())
    assert result.returncode == 0, result.stderr
    assert "neighbor solicitation (RFC 4861 4.3)" in result.stdout and "neighbor advertisement, tgt is" in result.stdout
