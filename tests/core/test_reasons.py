"""Every drop reason the code can count has plain words and an RFC rule, and a trace says them.

The reasons are found by reading the source (``stats.drop("...")``, ``ParseError(layer,
reason, ...)``, and the other places a reason is named), so a new drop without an explanation
fails here; docs/behaviour.md's Counters table must list exactly the same set.
"""

from __future__ import annotations

import ast
import io
import re
from pathlib import Path

import pytest

from stack import TapHost, TunHost
from stack.reasons import DROP_REASONS, explain_drop
from stack.runtime.trace import Tracer
from stack.testing import frames

REPO = Path(__file__).resolve().parents[2]
PACKAGE = REPO / "stack"
PREFIXES = ("ethernet_", "arp_", "ipv4_", "udp_", "tcp_", "tun_", "icmp_", "ipv6_", "icmpv6_")


def reasons_in_source() -> set[str]:
    """Reasons as the code names them: drop("x"), _discard(key, "x"), ParseError("L", "r"), reason="x", return "x"
    from a function that returns reasons (``Addresses.martian_source*``), and the values (and lookup default) of a ``*ETHERTYPES``
    reason table."""
    found: set[str] = set()
    for path in PACKAGE.rglob("*.py"):
        if path.name == "reasons.py":
            continue
        tree = ast.parse(path.read_text())
        for node in ast.walk(tree):
            if isinstance(node, ast.Call):
                name = getattr(node.func, "attr", getattr(node.func, "id", ""))
                strings = [a.value for a in node.args if isinstance(a, ast.Constant) and isinstance(a.value, str)]
                if name == "drop" and node.args and isinstance(node.args[0], ast.Constant):
                    found.add(node.args[0].value)  # drop(reason, logger, detail, *args)
                elif name == "_discard" and strings:
                    found.add(strings[0])
                elif name == "get" and getattr(node.func.value, "id", "").endswith("ETHERTYPES"):
                    found |= set(strings)  # the default of a reason table lookup
                elif name.endswith("ParseError") and len(strings) >= 2:  # also Ipv6ParseError
                    found.add(f"{strings[0].lower()}_{strings[1]}")
                for keyword in node.keywords:
                    if keyword.arg == "reason" and isinstance(keyword.value, ast.Constant):
                        found.add(keyword.value.value)
            elif isinstance(node, ast.Assign) and isinstance(node.value, ast.Constant):
                if any(getattr(t, "id", "") == "reason" for t in node.targets):
                    found.add(node.value.value)
            elif isinstance(node, ast.FunctionDef) and node.name.startswith("martian_source"):
                found |= {n.value.value for n in ast.walk(node)
                          if isinstance(n, ast.Return) and isinstance(n.value, ast.Constant) and n.value.value}
            elif isinstance(node, ast.Assign) and isinstance(node.value, ast.Dict) and any(
                    getattr(t, "id", "").endswith("ETHERTYPES") for t in node.targets):
                found |= {v.value for v in node.value.values if isinstance(v, ast.Constant)}
    return found


def reasons_in_docs() -> set[str]:
    text = (REPO / "docs" / "behaviour.md").read_text()
    table = text.split("Drop reasons", 1)[1].split("\n## ", 1)[0]
    return {name for name in re.findall(r"`([a-z0-9_]+)`", table) if name.startswith(PREFIXES)}


def test_the_scan_finds_the_reasons_of_each_kind():
    found = reasons_in_source()
    # one of each way of naming a reason
    assert {"ethernet_not_for_us", "ipv4_bad_checksum", "ipv4_fragment_overlap",
            "ethernet_8023_length_frame", "ipv4_source_is_ours", "ethernet_vlan_tagged"} <= found
    assert all(name.startswith(PREFIXES) for name in found), found


def test_every_reason_in_the_code_is_explained_and_nothing_else_is():
    assert reasons_in_source() == set(DROP_REASONS)


def test_the_docs_list_exactly_the_reasons():
    assert reasons_in_docs() == set(DROP_REASONS)


@pytest.mark.parametrize("reason", sorted(DROP_REASONS))
def test_each_explanation_has_words_and_a_rule(reason):
    entry = DROP_REASONS[reason]
    assert len(entry.plain.split()) >= 3
    assert re.search(r"RFC \d+|IEEE 802|Linux|docs/", entry.rule), entry.rule


# ---------------------------------------------------------------------- a frame for each reason

K, H = frames.KERNEL_IP, frames.HOST_IP
KMAC, HMAC = frames.KERNEL_MAC, frames.HOST_MAC


def eth(payload: bytes, ethertype: int = 0x0800, dst: bytes = HMAC) -> bytes:
    return frames.ethernet_frame(dst, KMAC, ethertype, payload)


def datagram(payload: bytes, protocol: int = 1, src: str = K, dst: str = H, **kwargs) -> bytes:
    return frames.ipv4_datagram(src, dst, protocol, payload, **kwargs)


ECHO = frames.icmp_echo(8, 7, 1, b"x" * 8)
PLAIN = datagram(ECHO)


def arp(**kwargs) -> bytes:
    fields = dict(op=1, sender_mac=KMAC, sender_ip=K, target_mac=frames.ZERO_MAC, target_ip=H)
    fields.update(kwargs)
    return eth(frames.arp_packet(**fields), 0x0806, dst=frames.BROADCAST_MAC)


def udp(payload: bytes, length: int | None = None, checksum: bytes = b"\x00\x00") -> bytes:
    size = 8 + len(payload) if length is None else length
    return b"\x30\x39\x00\x35" + size.to_bytes(2, "big") + checksum + payload


def tcp(flags: int, source: str = K, destination: str = H) -> bytes:
    """A TCP segment from port 40000 to 80, its checksum by dpkt (the oracle)."""
    import dpkt

    segment = dpkt.tcp.TCP(sport=40000, dport=80, seq=1, flags=flags, win=512)
    if ":" in source:
        packet = dpkt.ip6.IP6(src=frames.ip6(source), dst=frames.ip6(destination), nxt=6, hlim=64, data=segment)
        packet.plen = 20
        return bytes(packet)[40:]
    return bytes(dpkt.ip.IP(src=frames.ip(source), dst=frames.ip(destination), p=6, data=segment))[20:]


SYN = tcp(0x02)
SYN6 = tcp(0x02, frames.KERNEL_IP6, frames.HOST_IP6)
# The broadcast destination is in the pseudo-header: a checksum for it.
SYN_TO_BROADCAST = tcp(0x02, K, "192.0.2.255")


def tap_host() -> TapHost:
    return TapHost([f"{H}/24"], mac=HMAC)


def tun_host(packet_info: bool = False) -> TunHost:
    return TunHost([H], peer=K, packet_info=packet_info)


def udp_service_host() -> TunHost:
    """A host whose UDP port 53 runs echo (the port ``udp()`` datagrams go to)."""
    from stack.l4.services import udp_service

    host = tun_host()
    host.listen_udp(53, udp_service("echo"))
    return host


def tun6_host(packet_info: bool = False) -> TunHost:
    return TunHost([H, frames.HOST_IP6], peer=[K, frames.KERNEL_IP6], packet_info=packet_info)


def echo6(**kwargs) -> bytes:
    src, dst = kwargs.pop("src", frames.KERNEL_IP6), kwargs.pop("dst", frames.HOST_IP6)
    return frames.ipv6_packet(frames.icmpv6_echo(128, 1, 1, b"x", src=src, dst=dst), src=src, dst=dst, **kwargs)


def tap6_host(dad: int = 0) -> TapHost:
    return TapHost([f"{H}/24", f"{frames.HOST_IP6}/64"], mac=frames.HOST_MAC, dad_transmits=dad)


def nd6(type: int, body: bytes, src: str = frames.KERNEL_IP6, dst: str = frames.HOST_IP6,
        hop_limit: int = 255) -> bytes:
    """A Neighbor Discovery message in a frame to our MAC (RFC 4861: hop limit 255)."""
    packet = frames.ipv6_packet(frames.icmpv6_message(type, 0, body, src=src, dst=dst), src=src, dst=dst,
                                hop_limit=hop_limit)
    mac = frames.HOST_MAC if not dst.startswith("ff") else bytes.fromhex("3333") + frames.ip6(dst)[12:]
    return frames.ethernet_frame(mac, frames.KERNEL_MAC, 0x86DD, packet)


TIMESTAMP = frames.icmp_message(13, 0, b"\x00\x01\x00\x01", bytes(12))


def timestamp_host(timestamp_reply) -> TapHost:
    return TapHost([f"{H}/24"], mac=HMAC, timestamp_reply=timestamp_reply)


def refuse_loudly(request, now):
    raise NotImplementedError("not written yet")


def pi(protocol: int, flags: int = 0) -> bytes:
    return flags.to_bytes(2, "little") + protocol.to_bytes(2, "big")


# (reason, host factory, frames sent first, the frame that is dropped)
CASES = [
    ("ethernet_runt", tap_host, [], KMAC * 2),
    ("ethernet_not_for_us", tap_host, [], frames.ethernet_frame("02:00:00:00:00:99", KMAC, 0x0800, PLAIN)),
    ("ethernet_vlan_tagged", tap_host, [], eth(b"\x00\x05\x08\x00" + PLAIN, 0x8100)),
    ("ethernet_ipv6_not_supported", tap_host, [], eth(bytes(40), 0x86DD)),
    ("ethernet_unknown_ethertype", tap_host, [], eth(bytes(46), 0x88B5)),
    ("ethernet_8023_length_frame", tap_host, [], eth(bytes(46), 46)),
    ("arp_truncated", tap_host, [], eth(frames.arp_packet(1, KMAC, K, frames.ZERO_MAC, H)[:20], 0x0806)),
    ("arp_bad_address_length", tap_host, [],
     eth(b"\x00\x01\x08\x00\x08\x04\x00\x01" + bytes(24), 0x0806)),
    ("arp_bad_hardware_type", tap_host, [], arp(hardware_type=6)),
    ("arp_bad_protocol_type", tap_host, [], arp(protocol_type=0x86DD)),
    ("arp_unknown_operation", tap_host, [], arp(op=9)),
    ("arp_bad_sender_mac", tap_host, [], arp(sender_mac=frames.BROADCAST_MAC)),
    ("arp_bad_sender_ip", tap_host, [], arp(sender_ip="224.0.2.1")),
    ("arp_address_conflict", tap_host, [], arp(sender_ip=H, target_ip=H)),
    ("arp_not_for_us", tap_host, [], arp(target_ip="192.0.2.3")),
    ("arp_mac_change_refused", tap_host, [arp()],
     arp(sender_mac=frames.mac("02:00:00:00:06:66"), target_ip="192.0.2.3")),
    ("arp_new_sender_rate_limited", tap_host,
     [arp(sender_mac=bytes([2, 0, 0, 1, 0, i]), sender_ip=f"198.51.100.{i + 1}") for i in range(100)],
     arp(sender_ip="203.0.113.1")),
    ("ipv4_truncated", tap_host, [], eth(PLAIN[:19])),
    ("ipv4_bad_version", tap_host, [], eth(b"\x65" + PLAIN[1:])),
    ("ipv4_bad_header_length", tap_host, [], eth(b"\x44" + PLAIN[1:])),
    ("ipv4_bad_total_length", tap_host, [], eth(PLAIN[:2] + b"\x00\x10" + PLAIN[4:])),
    ("ipv4_bad_checksum", tap_host, [], eth(PLAIN[:10] + bytes([PLAIN[10] ^ 1]) + PLAIN[11:])),
    ("ipv4_bad_options", tap_host, [], eth(datagram(ECHO, options=b"\x07\x09\x04\x00"))),
    ("ipv4_not_for_us", tap_host, [], eth(datagram(ECHO, dst="192.0.2.3"))),
    ("ipv4_source_route_unfinished", tap_host, [], eth(datagram(ECHO, options=bytes([131, 7, 4, 198, 51, 100, 7, 0])))),
    ("ipv4_unicast_in_link_broadcast", tap_host, [], eth(PLAIN, dst=frames.BROADCAST_MAC)),
    ("ipv4_martian_source", tap_host, [], eth(datagram(ECHO, src="127.0.0.1"))),
    ("ipv4_source_is_ours", tap_host, [], eth(datagram(ECHO, src=H))),
    ("ipv4_unknown_protocol", tap_host, [], eth(datagram(bytes(20), protocol=132))),
    ("ipv4_no_route", tap_host, [], eth(datagram(ECHO, src="203.0.113.5"))),
    ("ipv4_fragment_bad_length", tun_host, [], datagram(bytes(13), more_fragments=True)),
    ("ipv4_fragment_too_large", tun_host, [], datagram(bytes(16), fragment_offset=8189)),
    ("ipv4_fragment_duplicate", tun_host, [datagram(bytes(16), identification=5, more_fragments=True)],
     datagram(bytes(16), identification=5, more_fragments=True)),
    ("ipv4_fragment_empty", tun_host, [], datagram(b"", identification=5, more_fragments=True, fragment_offset=1)),
    ("ipv4_fragment_overlap", tun_host, [datagram(bytes(16), identification=5, more_fragments=True)],
     datagram(bytes(16), identification=5, more_fragments=True, fragment_offset=1)),
    ("ipv4_fragment_inconsistent", tun_host, [datagram(bytes(16), identification=5, fragment_offset=4)],
     datagram(bytes(16), identification=5, fragment_offset=8)),
    ("udp_truncated", tun_host, [], datagram(bytes(4), protocol=17)),
    ("udp_bad_length", tun_host, [], datagram(udp(b"abcd", length=40), protocol=17)),
    ("udp_bad_checksum", tun_host, [], datagram(udp(b"abcd", checksum=b"\x12\x34"), protocol=17)),
    ("udp_port_unreachable", tun_host, [], datagram(udp(b"abcd"), protocol=17)),
    # From chargen's port 19 to an echo service: two services would answer each other for ever.
    ("udp_service_refused", udp_service_host, [], datagram(b"\x00\x13" + udp(b"loop")[2:], protocol=17)),
    ("tcp_truncated", tun_host, [], datagram(SYN[:19], protocol=6)),
    ("tcp_bad_header_length", tun6_host, [], frames.ipv6_packet(SYN6[:12] + b"\x40" + SYN6[13:], next_header=6)),
    ("tcp_bad_checksum", tun_host, [], datagram(SYN[:16] + b"\x12\x34" + SYN[18:], protocol=6)),
    ("tcp_port_closed", tun6_host, [], frames.ipv6_packet(SYN6, next_header=6)),
    ("tcp_reset_discarded", tun_host, [], datagram(tcp(0x04), protocol=6)),
    ("tcp_not_unicast", tap_host, [], eth(datagram(SYN_TO_BROADCAST, protocol=6, dst="192.0.2.255"),
                                         dst=frames.BROADCAST_MAC)),
    ("ipv6_truncated", tun6_host, [], echo6()[:45]),
    ("ipv6_bad_version", lambda: tun6_host(True), [], b"\x00\x00\x86\xdd" + b"\x45" + echo6()[1:]),
    ("ipv6_not_for_us", tun6_host, [], echo6(dst="2001:db8::99")),
    ("ipv6_multicast_source", tun6_host, [], echo6(src="ff02::5")),
    ("ipv6_unspecified_source", tun6_host, [], echo6(src="::")),
    ("ipv6_unknown_next_header", tun6_host, [], frames.ipv6_packet(bytes(20), next_header=132)),
    ("ipv6_unrecognised_option", tun6_host, [], frames.ipv6_packet(
        frames.options_header(59, b"\x5e\x02\x00\x00"), next_header=0)),
    ("ipv6_routing_header_rejected", tun6_host, [], frames.ipv6_packet(
        frames.routing_header(59, 0, 1, bytes(20)), next_header=43)),
    ("ipv6_hop_by_hop_not_first", tun6_host, [], frames.ipv6_packet(
        frames.options_header(0, b"") + frames.options_header(59, b""), next_header=60)),
    ("ipv6_extension_truncated", tun6_host, [], frames.ipv6_packet(b"\x3b\x05", next_header=60)),
    ("icmpv6_truncated", tun6_host, [], frames.ipv6_packet(b"\x80\x00\x00")),
    ("icmpv6_bad_checksum", tun6_host, [], echo6()[:42] + b"\x00\x00" + echo6()[44:]),
    ("icmpv6_nd_without_link_layer", tun6_host, [], frames.ipv6_packet(
        frames.icmpv6_message(135, 0, bytes(4) + frames.ip6(frames.HOST_IP6)), hop_limit=255)),
    ("icmpv6_echo_reply_unsolicited", tun6_host, [], frames.ipv6_packet(
        frames.icmpv6_echo(129, 1, 1, b"x"))),
    ("icmpv6_type_not_handled", tun6_host, [], frames.ipv6_packet(frames.icmpv6_message(200, 0, bytes(4)))),
    ("icmpv6_nd_bad_hop_limit", tap6_host, [], nd6(135, bytes(4) + frames.ip6(frames.HOST_IP6), hop_limit=64)),
    ("icmpv6_nd_target_not_ours", tap6_host, [], nd6(135, bytes(4) + frames.ip6("2001:db8::99"))),
    ("icmpv6_nd_router_advertisement_ignored", tap6_host, [], nd6(
        134, bytes(12), src="fe80::1", dst="ff02::1")),
    ("ipv6_tentative_destination", lambda: tap6_host(dad=1), [], frames.ethernet_frame(
        frames.HOST_MAC, frames.KERNEL_MAC, 0x86DD, echo6())),
    ("tun_runt", lambda: tun_host(True), [], b"\x00\x00\x08"),
    ("tun_truncated", lambda: tun_host(True), [], pi(0x0800, flags=1) + PLAIN),
    ("tun_ipv6_not_supported", tun_host, [], b"\x60" + bytes(39)),
    ("tun_not_ipv4", tun_host, [], b"\x00" + PLAIN[1:]),
    ("icmp_truncated", tun_host, [], datagram(b"\x08\x00\xf7")),
    ("icmp_bad_checksum", tun_host, [], datagram(ECHO[:2] + bytes([ECHO[2] ^ 0x10]) + ECHO[3:])),
    ("icmp_type_not_handled", tun_host, [], datagram(frames.icmp_message(42, 0, data=bytes(8)))),
    ("icmp_echo_to_broadcast_ignored", tap_host, [],
     eth(datagram(ECHO, dst="192.0.2.255"), dst=frames.BROADCAST_MAC)),
    ("icmp_echo_reply_unsolicited", tun_host, [], datagram(frames.icmp_echo(0, 7, 1, b"x"))),
    ("icmp_timestamp_to_broadcast_ignored", lambda: timestamp_host(lambda request, now: None), [],
     eth(datagram(TIMESTAMP, dst="192.0.2.255"), dst=frames.BROADCAST_MAC)),
    ("icmp_timestamp_reply_failed", lambda: timestamp_host(refuse_loudly), [], eth(datagram(TIMESTAMP))),
    ("icmp_timestamp_request_refused", lambda: timestamp_host(lambda request, now: None), [],
     eth(datagram(TIMESTAMP))),
]
#: Reasons counted by timers or on the way out, not for a frame received: checked without one.
NOT_FROM_A_FRAME = {"arp_queue_full", "arp_unresolved", "ipv4_reassembly_evicted", "ipv4_reassembly_timeout",
                    "icmpv6_nd_queue_full", "icmpv6_nd_unresolved", "ipv6_reassembly_evicted",
                    "ipv6_reassembly_timeout"}
#: Reasons of the IPv6 codecs (issue 14) that no host counts yet: tests/core/l3/test_ipv6.py and
#: test_icmpv6.py raise each one from bytes; they move into CASES when the host speaks IPv6.
#: IPv6 reasons no frame to a host here produces yet: the codec's (ND options, MLD, fragments)
#: until Neighbor Discovery, MLD and reassembly are wired in (issue 14), and the placeholders.
FROM_THE_IPV6_CODECS = {reason for reason in DROP_REASONS if reason.startswith(("ipv6_", "icmpv6_"))} - {
    case[0] for case in CASES}


#: TCP reasons that need a connection or a listener first: tests/core/l4 (test_tcp_layer.py,
#: test_tcp_connection.py) make each happen and check it is counted.
FROM_A_CONNECTION = {reason for reason in DROP_REASONS if reason.startswith("tcp_")} - {case[0] for case in CASES}


def test_the_cases_cover_every_reason():
    assert ({case[0] for case in CASES} | NOT_FROM_A_FRAME | FROM_THE_IPV6_CODECS | FROM_A_CONNECTION
            == set(DROP_REASONS))


@pytest.mark.parametrize("reason", sorted(FROM_A_CONNECTION))
def test_every_tcp_reason_without_a_case_here_is_made_and_checked_by_the_l4_tests(reason):
    tests = "".join(path.read_text() for path in (REPO / "tests" / "core" / "l4").glob("test_tcp_*.py"))
    assert f'"{reason}"' in tests


@pytest.mark.parametrize("reason, make, before, frame", CASES, ids=[c[0] for c in CASES])
def test_the_trace_line_of_a_dropped_frame_says_why_and_which_rule(reason, make, before, frame):
    host = make()
    for earlier in before:
        host.receive(earlier, 1.0)
    dropped = host.stats["dropped"]
    out = host.receive(frame, 1.0)
    assert host.stats["dropped"] > dropped and host.stats.last_drop == reason
    stream = io.StringIO()
    tracer = Tracer(stream, host.medium, packet_info=getattr(host, "packet_info", False))
    tracer.inbound(frame, len(out), host.stats.last_drop, host.stats.last_drop_detail)
    line = stream.getvalue()
    entry = DROP_REASONS[reason]
    assert f"[drop {reason}: {entry.plain}" in line
    assert line.rstrip().endswith(f"({entry.rule})]")


def test_rfc1122_3_2_1_2_the_checksum_line_shows_both_values():
    frame = eth(PLAIN[:10] + b"\x12\x34" + PLAIN[12:])
    host = tap_host()
    host.receive(frame, 1.0)
    stream = io.StringIO()
    Tracer(stream).inbound(frame, 0, host.stats.last_drop, host.stats.last_drop_detail)
    correct = PLAIN[10:12].hex()
    assert (f"the IPv4 header checksum is wrong: IPv4 header checksum 0x1234 does not verify "
            f"(should be 0x{correct}) (RFC 1122 3.2.1.2)]") in stream.getvalue()


@pytest.mark.parametrize("reason", sorted(NOT_FROM_A_FRAME | FROM_THE_IPV6_CODECS))
def test_drops_without_a_frame_are_explained_too(reason):
    text = explain_drop(reason, "192.0.2.9")
    assert text == f"{reason}: {DROP_REASONS[reason].plain}: 192.0.2.9 ({DROP_REASONS[reason].rule})"


def test_an_unknown_reason_or_an_unprintable_detail_never_raises():
    class Unprintable:
        def __str__(self):
            raise RuntimeError("no")

    assert explain_drop("made_up", Unprintable()) == "made_up: (no explanation recorded) (no rule recorded)"
    assert explain_drop("ipv4_bad_version", "x" * 500).count("x") < 120
