"""The IPv6 host (issue 14) on a point-to-point TUN link: a packet in, the exact packets out.

Packets in and the answers expected are laid out by hand in ``stack.testing.frames`` (checksums
with dpkt), never with the codecs under test. The kernel side is 2001:db8::1, the host
2001:db8::2 (RFC 3849 documentation addresses). Each test names the RFC rule it checks.
"""

from __future__ import annotations

from ipaddress import IPv6Address

import pytest

from stack import TunHost
from stack.buffers import join
from stack.testing import frames as f
from stack.testing.frames import HOST_IP6, KERNEL_IP6

DATA = bytes(range(56))


@pytest.fixture
def host() -> TunHost:
    return TunHost(["192.0.2.2", f"{HOST_IP6}/64"], peer=["192.0.2.1", KERNEL_IP6])


def echo(dst: str = HOST_IP6, src: str = KERNEL_IP6, data: bytes = DATA, hop_limit: int = 64, **kwargs) -> bytes:
    return f.ipv6_packet(f.icmpv6_echo(128, 0x1234, 1, data, src=src, dst=dst), src=src, dst=dst,
                         hop_limit=hop_limit, **kwargs)


def reply(src: str = HOST_IP6, dst: str = KERNEL_IP6, data: bytes = DATA) -> bytes:
    return f.ipv6_packet(f.icmpv6_echo(129, 0x1234, 1, data, src=src, dst=dst), src=src, dst=dst)


def error(type: int, code: int, parameter: int, invoking: bytes, src: str = HOST_IP6,
          dst: str = KERNEL_IP6) -> bytes:
    """An ICMPv6 error (RFC 4443 3) quoting the invoking packet up to the 1280-byte minimum MTU."""
    body = parameter.to_bytes(4, "big") + invoking[:1280 - 48]
    return f.ipv6_packet(f.icmpv6_message(type, code, body, src=src, dst=dst), src=src, dst=dst)


def out(host: TunHost, packet: bytes, now: float = 1.0) -> list[bytes]:
    return [join(frame) for frame in host.receive(packet, now)]


def test_rfc4443_4_2_an_echo_request_is_answered_with_its_identifier_sequence_and_data(host):
    assert out(host, echo()) == [reply()]
    assert host.stats["icmpv6_echo_replies_sent"] == 1 and host.verdict.drop_reason is None


@pytest.mark.parametrize("predict", [True, False], ids=["fast path", "general path"])
def test_an_echo_reply_keeps_the_requests_traffic_class_as_linux_does(host, predict):
    # Linux 6.18 copies the whole Traffic Class byte (DSCP and ECN) into its echo reply (found by
    # tapstack diff --ipv6), as our IPv4 echo reply keeps the TOS (RFC 1349 5.1); the flow
    # label is the replier's own choice (RFC 6437) and ours is 0.
    host.ip6.predict = predict
    answer = f.ipv6_packet(f.icmpv6_echo(129, 0x1234, 1, DATA, src=HOST_IP6, dst=KERNEL_IP6), src=HOST_IP6,
                           dst=KERNEL_IP6, traffic_class=0xB9)
    assert out(host, echo(traffic_class=0xB9, flow_label=0x12345)) == [answer]


def test_rfc4443_4_2_an_echo_to_all_nodes_is_answered_from_our_address(host):
    # RFC 4443 4.2: "An Echo Reply SHOULD be sent in response to an Echo Request message sent to
    # an IPv6 multicast or anycast address"; its source is one of our unicast addresses.
    assert out(host, echo(dst="ff02::1")) == [reply()]


def test_rfc8200_a_packet_for_another_address_is_not_for_us(host):
    assert out(host, echo(dst="2001:db8::99")) == []
    assert host.verdict.drop_reason == "ipv6_not_for_us"


def test_rfc4291_2_7_a_multicast_source_is_dropped(host):
    assert out(host, echo(src="ff02::5")) == []
    assert host.verdict.drop_reason == "ipv6_multicast_source"


def test_rfc4291_2_5_2_an_echo_from_the_unspecified_address_is_dropped(host):
    assert out(host, echo(src="::")) == []
    assert host.verdict.drop_reason == "ipv6_unspecified_source"


def test_rfc8200_3_the_hop_limit_is_not_checked_on_delivery(host):
    assert out(host, echo(hop_limit=0)) == [reply()]


def test_rfc8200_4_an_unknown_next_header_gets_parameter_problem_code_1_at_its_field(host):
    packet = f.ipv6_packet(bytes(20), next_header=132)  # SCTP: no such upper layer here
    assert out(host, packet) == [error(4, 1, 6, packet)]
    assert host.verdict.drop_reason == "ipv6_unknown_next_header"


def test_rfc8200_4_7_no_next_header_ends_the_packet_quietly(host):
    assert out(host, f.ipv6_packet(b"", next_header=59)) == []
    assert host.stats["ipv6_no_next_header"] == 1


def hop_by_hop(option_type: int, upper: bytes, **kwargs) -> bytes:
    return f.ipv6_packet(f.options_header(58, bytes([option_type, 2, 0, 0])) + upper, next_header=0, **kwargs)


@pytest.mark.parametrize("option_type", [0x1E, 0x3E])  # action 00: skip
def test_rfc8200_4_2_an_unknown_option_with_action_00_is_skipped(host, option_type):
    packet = hop_by_hop(option_type, f.icmpv6_echo(128, 0x1234, 1, DATA))
    assert out(host, packet) == [reply()]


def test_rfc8200_4_2_an_unknown_option_with_action_01_discards_silently(host):
    assert out(host, hop_by_hop(0x5E, f.icmpv6_echo(128, 0x1234, 1, DATA))) == []
    assert host.verdict.drop_reason == "ipv6_unrecognised_option"
    assert host.stats["icmpv6_errors_sent"] == 0


def test_rfc8200_4_2_action_10_reports_parameter_problem_code_2_at_the_option(host):
    packet = hop_by_hop(0x9E, f.icmpv6_echo(128, 0x1234, 1, DATA))
    assert out(host, packet) == [error(4, 2, 42, packet)]  # the option type: 40 + 2


def test_rfc8200_4_2_action_10_reports_even_about_a_multicast_destination(host):
    packet = hop_by_hop(0x9E, f.icmpv6_echo(128, 0x1234, 1, DATA, dst="ff02::1"), dst="ff02::1")
    assert out(host, packet) == [error(4, 2, 42, packet)]


def test_rfc8200_4_2_action_11_reports_only_about_a_unicast_destination(host):
    unicast = hop_by_hop(0xDE, f.icmpv6_echo(128, 0x1234, 1, DATA))
    assert out(host, unicast) == [error(4, 2, 42, unicast)]
    multicast = hop_by_hop(0xDE, f.icmpv6_echo(128, 0x1234, 1, DATA, dst="ff02::1"), dst="ff02::1")
    assert out(host, multicast) == []


def test_rfc2711_the_router_alert_option_is_recognised(host):
    assert out(host, hop_by_hop(5, f.icmpv6_echo(128, 0x1234, 1, DATA))) == [reply()]


def test_rfc8200_4_4_a_routing_header_with_no_segments_left_is_ignored(host):
    packet = f.ipv6_packet(f.routing_header(58, 0, 0) + f.icmpv6_echo(128, 0x1234, 1, DATA), next_header=43)
    assert out(host, packet) == [reply()]


@pytest.mark.parametrize("routing_type", [0, 2, 253])
def test_rfc5095_rfc8200_4_4_a_routing_header_with_segments_left_gets_parameter_problem(host, routing_type):
    packet = f.ipv6_packet(f.routing_header(58, routing_type, 1, bytes(20)) + f.icmpv6_echo(128, 1, 1, DATA),
                           next_header=43)
    assert out(host, packet) == [error(4, 0, 42, packet)]  # the routing type field: 40 + 2
    assert host.verdict.drop_reason == "ipv6_routing_header_rejected"


def test_rfc8200_4_headers_before_a_hop_by_hop_header_out_of_place_are_processed_first(host):
    # RFC 8200 4: strictly in order. A routing header with segments left comes before the
    # misplaced Hop-by-Hop header: its Parameter Problem (code 0 at the routing type) wins, as
    # Linux 6.18 answers (tapstack diff --ipv6); without it, code 1 at the Next Header naming 0.
    first = f.ipv6_packet(f.routing_header(0, 0, 1, bytes(20)) + f.options_header(58, b"")
                          + f.icmpv6_echo(128, 1, 1, DATA), next_header=43)
    assert out(host, first) == [error(4, 0, 42, first)]
    assert host.verdict.drop_reason == "ipv6_routing_header_rejected"
    second = f.ipv6_packet(f.routing_header(0, 0, 0) + f.options_header(58, b"") + f.icmpv6_echo(128, 1, 1, DATA),
                           next_header=43)
    assert out(host, second) == [error(4, 1, 40, second)]
    assert host.verdict.drop_reason == "ipv6_hop_by_hop_not_first"


def test_rfc8200_4_an_unknown_option_before_a_truncated_header_is_acted_on_first(host):
    # A Destination Options header with an option of action 10, then a header that runs past the
    # payload: the option's Parameter Problem (code 2), as Linux 6.18 answers; without the option
    # the packet is dropped as truncated, silently.
    truncated = b"\x3c\x05" + bytes(6)  # another Destination Options header, 48 bytes long
    packet = f.ipv6_packet(f.options_header(60, bytes([0x8B, 0])) + truncated, next_header=60)
    assert out(host, packet) == [error(4, 2, 42, packet)]
    assert host.verdict.drop_reason == "ipv6_unrecognised_option"
    quiet = f.ipv6_packet(f.options_header(60, bytes([0x0B, 0])) + truncated, next_header=60)
    assert out(host, quiet) == []
    assert host.verdict.drop_reason == "ipv6_extension_truncated"


def test_rfc6946_an_atomic_fragment_is_processed_at_once(host):
    packet = f.ipv6_packet(f.fragment_header(58, 0, False, 7) + f.icmpv6_echo(128, 0x1234, 1, DATA),
                           next_header=44)
    assert out(host, packet) == [reply()]


def test_rfc4443_3_1_udp_to_a_closed_port_gets_port_unreachable(host):
    packet = f.ipv6_packet(f.udp6(40000, 33434, b"probe"), next_header=17)
    assert out(host, packet) == [error(1, 4, 0, packet)]
    assert host.verdict.drop_reason == "udp_port_unreachable"


def test_rfc8200_8_1_udp_with_a_zero_checksum_is_dropped(host):
    packet = f.ipv6_packet(f.udp6(40000, 33434, b"probe", checksum=0), next_header=17)
    assert out(host, packet) == []
    assert host.verdict.drop_reason == "udp_bad_checksum"


def test_rfc4443_2_4_e_3_no_port_unreachable_about_a_multicast_destination(host):
    packet = f.ipv6_packet(f.udp6(40000, 33434, b"x", dst="ff02::1"), next_header=17, dst="ff02::1")
    assert out(host, packet) == []
    assert host.stats["icmpv6_error_to_multicast"] == 1


def test_rfc4443_2_4_c_an_error_quotes_at_most_what_fits_in_1280_bytes(host):
    big = f.ipv6_packet(f.udp6(40000, 33434, bytes(1400)), next_header=17)
    (answer,) = out(host, big)
    assert len(answer) == 1280 and answer == error(1, 4, 0, big)


def test_rfc4443_2_4_e_1_no_error_about_an_icmpv6_error(host):
    # An error message with an unknown option of action 10 in front: still no error about it.
    inner = f.icmpv6_message(1, 4, bytes(4) + bytes(48))
    assert out(host, hop_by_hop(0x9E, inner)) == []
    assert host.stats["icmpv6_error_about_icmpv6_error"] == 1


def test_rfc4443_2_4_f_errors_are_rate_limited():
    host = TunHost([f"{HOST_IP6}/64"], icmp_errors_per_second=1, icmp_error_burst=2)
    packet = f.ipv6_packet(f.udp6(40000, 33434, b"x"), next_header=17)
    answers = [len(host.receive(packet, 1.0)) for _ in range(5)]
    assert answers == [1, 1, 0, 0, 0]
    assert host.stats["icmpv6_error_rate_limited"] == 3


def test_rfc4443_2_4_a_errors_received_are_counted_not_answered(host):
    message = f.icmpv6_message(1, 4, bytes(4) + echo()[:48])
    assert out(host, f.ipv6_packet(message)) == []
    assert host.stats["icmpv6_errors_received"] == 1


def test_rfc4443_2_4_b_an_unknown_informational_message_is_discarded(host):
    assert out(host, f.ipv6_packet(f.icmpv6_message(200, 0, bytes(4)))) == []
    assert host.verdict.drop_reason == "icmpv6_type_not_handled"


def test_rfc4861_neighbor_discovery_on_a_tun_link_is_dropped(host):
    solicitation = f.icmpv6_message(135, 0, bytes(4) + f.ip6(HOST_IP6), src=KERNEL_IP6, dst=HOST_IP6)
    assert out(host, f.ipv6_packet(solicitation, hop_limit=255)) == []
    assert host.verdict.drop_reason == "icmpv6_nd_without_link_layer"


def test_our_ping_and_its_reply_become_an_event(host):
    (request,) = [join(frame) for frame in host.ping(KERNEL_IP6, 1.0, identifier=0x1234, sequence=1,
                                                      payload=DATA)]
    assert request == echo(src=HOST_IP6, dst=KERNEL_IP6)
    assert out(host, reply(src=KERNEL_IP6, dst=HOST_IP6), now=1.25) == []
    (event,) = host.take_echo_replies(0x1234)
    assert event.source == IPv6Address(KERNEL_IP6) and event.sequence == 1 and event.rtt == 0.25
    assert out(host, reply(src=KERNEL_IP6, dst=HOST_IP6)) == []  # a second one is unsolicited
    assert host.verdict.drop_reason == "icmpv6_echo_reply_unsolicited"


def test_tun_packet_information_names_ipv6_both_ways():
    host = TunHost([f"{HOST_IP6}/64"], packet_info=True)
    pi6 = b"\x00\x00\x86\xdd"
    assert out(host, pi6 + echo()) == [pi6 + reply()]


def test_an_ipv4_only_host_still_drops_ipv6():
    host = TunHost(["192.0.2.2"])
    assert out(host, echo()) == []
    assert host.verdict.drop_reason == "tun_ipv6_not_supported"


@pytest.mark.parametrize("icmp_type, answered", [(128, True), (129, True), (1, False), (127, False)])
def test_rfc4443_2_4_e_no_time_exceeded_about_a_fragmented_icmpv6_error(host, icmp_type, answered):
    """tapstack diff --ipv6 found it: the first fragment's ICMPv6 type is behind its Fragment
    header; Linux 6.18 sends no Time Exceeded about an error message either."""
    message = f.icmpv6_message(icmp_type, 0, bytes(28))
    first = f.ipv6_packet(f.fragment_header(58, 0, True, 9) + message[:16], 44)
    assert out(host, first, 0.0) == []
    errors = [join(frame) for frame in host.poll(60.0)]
    assert len(errors) == answered
    if answered:
        assert errors[0][40:42] == bytes([3, 1])  # Time Exceeded, fragment reassembly time exceeded
    assert host.stats["icmpv6_error_about_icmpv6_error"] == (not answered)


def test_rfc8200_4_5_an_empty_first_fragment_gets_parameter_problem_code_3_and_the_packet_goes_on(host):
    """As Linux 6.18 (tapstack diff --ipv6): the empty first fragment alone is refused."""
    message = f.icmpv6_echo(128, 0x1234, 1, DATA)
    empty = f.ipv6_packet(f.fragment_header(58, 0, True, 9), 44)
    [problem] = out(host, empty)
    assert problem[40:42] == bytes([4, 3]) and problem[44:48] == bytes(4)  # code 3, pointer 0
    assert out(host, f.ipv6_packet(f.fragment_header(58, 0, True, 9) + message[:16], 44)) == []
    assert out(host, f.ipv6_packet(f.fragment_header(58, 2, False, 9) + message[16:], 44)) == [reply()]


HOP_BY_HOP = bytes([0, 0, 1, 4, 0, 0, 0, 0])  # next header 0 (another Hop-by-Hop), PadN 4


@pytest.mark.parametrize("rest, answered", [
    (bytes([58]) + HOP_BY_HOP[1:] + f.icmpv6_echo(128, 1, 1, b"abc"), True),  # an echo request behind it
    (HOP_BY_HOP + b"\x3a\x00", False),  # a third header cut short: the ICMPv6 type lies past the end
    (bytes([58]) + HOP_BY_HOP[1:4], False),  # the misplaced header itself cut short
    (bytes([58]) + HOP_BY_HOP[1:] + f.icmpv6_message(1, 0, bytes(8)), False),  # an ICMPv6 error behind it
    (b"route", False),  # after a Routing header to report (type 253, a segment left), cut short
    (b"route+echo", True),
])
def test_rfc4443_2_4_e_a_misplaced_hop_by_hop_is_reported_unless_an_icmpv6_error_may_be_behind_it(
        host, rest, answered):
    """Checked against Linux 6.18 by tapstack diff --ipv6: RFC 8200 4 (Parameter Problem code 1
    for a Hop-by-Hop header that is not first) gives way to RFC 4443 2.4 (e) when the packet's
    ICMPv6 type, found by the headers' lengths, is an error's or cannot be read."""
    packet = f.ipv6_packet(HOP_BY_HOP + rest, 0)
    if rest.startswith(b"route"):  # Routing (next: Hop-by-Hop), Hop-by-Hop (next: Hop-by-Hop or ICMPv6)
        behind = (bytes([58]) + HOP_BY_HOP[1:] + f.icmpv6_echo(128, 1, 1, b"abc")) if rest.endswith(b"echo") \
            else HOP_BY_HOP + b"\x3a\x00"
        packet = f.ipv6_packet(bytes([0, 0, 253, 1, 0, 0, 0, 0]) + behind, 43)
    answers = out(host, packet)
    assert len(answers) == answered
    if answered and not rest.startswith(b"route"):
        assert answers[0][40:42] == bytes([4, 1]) and answers[0][44:48] == (40).to_bytes(4, "big")
    elif answered:  # RFC 8200 4.4: the Routing header first, code 0 at its type
        assert answers[0][40:42] == bytes([4, 0]) and answers[0][44:48] == (42).to_bytes(4, "big")
