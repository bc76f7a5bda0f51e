"""MLDv2 host side (stack.l3.mld, RFC 3810): the start reports (Linux's, byte for byte), the
answers to General, address-specific and source-specific queries with their delays and the
6.2 scheduling rules, query validation (5.1.14), MLDv1 compatibility (8.2.1) and TUN links.
What Linux itself sends is compared in tests/root/test_mld_device.py."""

from __future__ import annotations

import struct
from ipaddress import IPv6Address

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from stack.buffers import join
from stack.l3.icmpv6 import Icmpv6Message, MldQuery
from stack.l3.ipv6 import Ipv6Packet
from stack.l3.mld import OLDER_VERSION_QUERIER_PRESENT_TIMEOUT_S, MldReporter, has_router_alert
from stack.stats import Stats

LINK_LOCAL = IPv6Address("fe80::ff:fe00:1")
ROUTER = IPv6Address("fe80::1")
GROUP = IPv6Address("ff02::1:ff00:1")
OTHER = IPv6Address("ff02::1:ff00:2")
ALL_NODES = IPv6Address("ff02::1")
UNSPECIFIED = IPv6Address("::")
#: Linux's MLDv2 report from its link-local address (tests/core/l3/test_icmpv6.py).
LINUX_REPORT = bytes.fromhex(
    "6000000000240001" "fe80000000000000000000fffe000001" "ff020000000000000000000000000016"
    "3a00" "0502" "0000" "0100"
    "8f007207" "00000001" "04000000" "ff0200000000000000000001ff000001")
#: The same from :: (Linux during DAD, seen on a TAP in a namespace).
LINUX_REPORT_FROM_UNSPECIFIED = bytes.fromhex(
    "6000000000240001" "00000000000000000000000000000000" "ff020000000000000000000000000016"
    "3a000502000001008f006f890000000104000000ff0200000000000000000001ff000001")


def multicast_mac(address: bytes) -> bytes:
    return b"\x33\x33" + address[-4:]  # RFC 2464 7, written out here


def reporter(groups=(ALL_NODES, GROUP, OTHER), uniform=None, link=True, started=True) -> MldReporter:
    """A reporter whose start reports are already sent (unless ``started`` is False)."""
    made = MldReporter(Stats(), list(groups), multicast_mac, uniform, link)
    if started:
        made.poll(0.0, LINK_LOCAL)
        made.poll(1.0, LINK_LOCAL)
    return made


def query(maximum_response_code: int = 1000, address: IPv6Address = UNSPECIFIED, sources=(), version=2):
    return MldQuery(maximum_response_code, address, tuple(sources), version=version).message()


def records(outbound) -> list[tuple[int, IPv6Address, tuple[IPv6Address, ...]]]:
    """Read a report by hand: the header, the Hop-by-Hop header, the ICMPv6 records."""
    wire = join(outbound.datagram)
    assert wire[6] == 0 and wire[7] == 1 and wire[40:48] == bytes.fromhex("3a00050200000100")
    assert wire[24:40] == IPv6Address("ff02::16").packed and outbound.link_destination == bytes.fromhex("333300000016")
    assert wire[48] == 143 and struct.unpack("!H", wire[4:6])[0] == len(wire) - 40
    Icmpv6Message.parse(wire[48:], IPv6Address(wire[8:24]), IPv6Address(wire[24:40]))  # the checksum verifies
    count = struct.unpack("!H", wire[54:56])[0]
    found, index = [], 56
    for _ in range(count):
        kind, _aux, sources = struct.unpack("!BBH", wire[index:index + 4])
        address = IPv6Address(wire[index + 4:index + 20])
        listed = tuple(IPv6Address(wire[index + 20 + 16 * i:index + 36 + 16 * i]) for i in range(sources))
        found.append((kind, address, listed))
        index += 20 + 16 * sources
    assert index == len(wire)
    return found


# ----------------------------------------------------------------------------- start


def test_rfc3810_6_1_the_start_report_is_linuxs_and_is_sent_twice_within_a_second():
    calls = []

    def uniform(low, high):
        calls.append((low, high))
        return high

    made = reporter([ALL_NODES, GROUP], uniform, started=False)
    assert made.next_deadline(5.0) == 5.0  # due at once
    (first,) = made.poll(5.0, LINK_LOCAL)
    assert join(first.datagram) == LINUX_REPORT
    assert (first.next_hop, first.source, first.link_destination) == (
        IPv6Address("ff02::16"), LINK_LOCAL, bytes.fromhex("333300000016"))
    assert calls == [(0.0, 1.0)] and made.next_deadline(5.5) == 6.0
    assert made.poll(5.9, LINK_LOCAL) == []
    (second,) = made.poll(6.0, LINK_LOCAL)
    assert join(second.datagram) == LINUX_REPORT
    assert made.next_deadline(6.0) is None and made.poll(100.0, LINK_LOCAL) == []
    assert made.stats["mld_reports_sent"] == 2


def test_rfc3810_5_2_13_before_the_link_local_address_is_usable_reports_come_from_unspecified():
    (report,) = reporter([GROUP], started=False).poll(0.0, UNSPECIFIED)
    assert join(report.datagram) == LINUX_REPORT_FROM_UNSPECIFIED


def test_rfc3810_6_all_nodes_and_interface_local_groups_are_never_reported():
    made = reporter([ALL_NODES, IPv6Address("ff01::1234")], started=False)
    assert made.groups == [] and made.poll(0.0, LINK_LOCAL) == [] and made.next_deadline(0.0) is None


def test_a_unicast_group_is_our_misuse():
    with pytest.raises(ValueError, match="2001:db8::1 is not a multicast address"):
        MldReporter(Stats(), [IPv6Address("2001:db8::1")], multicast_mac)


def test_records_that_do_not_fit_1280_octets_go_in_several_reports():
    groups = [IPv6Address(f"ff02::1:ff00:{n:x}") for n in range(1, 101)]
    out = reporter(groups, started=False).poll(0.0, LINK_LOCAL)
    assert [len(records(o)) for o in out] == [61, 39]  # (1280 - 40 - 8 - 8) // 20 = 61
    assert all(len(join(o.datagram)) <= 1280 for o in out)
    assert [address for o in out for _, address, _ in records(o)] == groups


# ----------------------------------------------------------------------------- queries (RFC 3810 6.2, 6.3)


def test_rfc3810_6_2_a_general_query_is_answered_with_every_group_after_a_random_delay():
    calls = []

    def uniform(low, high):
        calls.append((low, high))
        return (low + high) / 2

    made = reporter(uniform=uniform)
    calls.clear()
    made.receive_query(ROUTER, ALL_NODES, 1, query(10000), 10.0, router_alert=True)
    assert calls == [(0.0, 10.0)]  # [0, Maximum Response Delay]: 10000 ms
    assert made.next_deadline(10.0) == 15.0 and made.poll(14.9, LINK_LOCAL) == []
    (report,) = made.poll(15.0, LINK_LOCAL)
    assert records(report) == [(2, GROUP, ()), (2, OTHER, ())]  # MODE_IS_EXCLUDE, no sources
    assert made.stats["mld_queries_received"] == 1


def test_rfc3810_6_2_rule_1_and_2_the_sooner_general_answer_stands():
    delays = iter([0.5, 4.0, 8.0, 2.0])  # the first: the start report's retransmission
    made = reporter(uniform=lambda low, high: next(delays))
    made.receive_query(ROUTER, ALL_NODES, 1, query(10000), 10.0)
    made.receive_query(ROUTER, ALL_NODES, 1, query(10000), 10.0)  # 18 > 14: nothing changes
    assert made.general_at == 14.0
    made.receive_query(ROUTER, ALL_NODES, 1, query(10000), 10.0)  # 12 < 14: replaces it
    assert made.general_at == 12.0 and made.next_deadline(10.0) == 12.0


def test_rfc3810_6_3_an_address_specific_query_is_answered_for_that_group_only():
    made = reporter(uniform=lambda low, high: high)
    made.receive_query(ROUTER, GROUP, 1, query(500, GROUP), 10.0)
    (report,) = made.poll(10.5, LINK_LOCAL)
    assert records(report) == [(2, GROUP, ())]


def test_rfc3810_6_3_a_source_specific_query_is_answered_with_is_include_of_its_sources():
    made = reporter(uniform=lambda low, high: high)
    first, second = IPv6Address("2001:db8::a"), IPv6Address("2001:db8::b")
    made.receive_query(ROUTER, GROUP, 1, query(500, GROUP, [second]), 10.0)
    made.receive_query(ROUTER, GROUP, 1, query(300, GROUP, [first]), 10.0)  # rule 5: sources added, sooner
    assert made.next_deadline(10.0) == 10.3
    (report,) = made.poll(10.3, LINK_LOCAL)
    assert records(report) == [(1, GROUP, (first, second))]  # MODE_IS_INCLUDE


def test_rfc3810_6_2_rule_4_a_group_query_clears_the_pending_source_list():
    made = reporter(uniform=lambda low, high: high)
    made.receive_query(ROUTER, GROUP, 1, query(500, GROUP, [IPv6Address("2001:db8::a")]), 10.0)
    made.receive_query(ROUTER, GROUP, 1, query(900, GROUP), 10.0)
    (report,) = made.poll(10.5, LINK_LOCAL)
    assert records(report) == [(2, GROUP, ())]


def test_rfc3810_6_2_rule_1_a_pending_general_answer_covers_a_later_group_query():
    made = reporter(uniform=lambda low, high: high)
    made.receive_query(ROUTER, ALL_NODES, 1, query(1000), 10.0)
    made.receive_query(ROUTER, GROUP, 1, query(5000, GROUP), 10.0)
    assert made.group_at == {}
    (report,) = made.poll(11.0, LINK_LOCAL)
    assert len(records(report)) == 2


@pytest.mark.parametrize("source, hop_limit, router_alert, message, reason", [
    (IPv6Address("2001:db8::1"), 1, True, query(), "icmpv6_mld_source_not_link_local"),
    (ROUTER, 255, True, query(), "icmpv6_mld_bad_hop_limit"),
    (ROUTER, 1, False, query(), "icmpv6_mld_no_router_alert"),
    (ROUTER, 1, True, query(1000, IPv6Address("ff02::1:ff00:9")), "icmpv6_mld_query_not_ours"),
    (ROUTER, 1, True, Icmpv6Message(130, 0, bytes(4), bytes(18)), "icmpv6_mld_bad_query_length"),
], ids=["global-source", "hop-limit-255", "no-router-alert", "other-group", "26-bytes"])
def test_rfc3810_5_1_14_invalid_queries_are_dropped_with_a_reason(source, hop_limit, router_alert, message, reason):
    made = reporter()
    made.receive_query(source, ALL_NODES, hop_limit, message, 10.0, router_alert=router_alert)
    assert made.stats.last_drop == reason and made.stats["dropped"] == 1
    assert made.next_deadline(10.0) is None


def test_a_query_whose_router_alert_the_host_did_not_look_at_is_accepted():
    made = reporter()
    made.receive_query(ROUTER, ALL_NODES, 1, query(), 10.0)
    assert made.stats["dropped"] == 0 and made.next_deadline(10.0) == 10.0


def test_has_router_alert_reads_the_hop_by_hop_header():
    assert has_router_alert(Ipv6Packet.parse(LINUX_REPORT).chain())
    no_hop_by_hop = bytes.fromhex("6000000000083a01") + LINUX_REPORT[8:40] + bytes(8)
    assert not has_router_alert(Ipv6Packet.parse(no_hop_by_hop).chain())


# ----------------------------------------------------------------------------- MLDv1 (RFC 3810 8.2.1)


def v1_report(outbound) -> IPv6Address:
    wire = join(outbound.datagram)
    assert wire[6:8] == b"\x00\x01" and wire[40:48] == bytes.fromhex("3a00050200000100")
    assert wire[48] == 131 and len(wire) == 48 + 24  # RFC 2710 3: 24 octets
    Icmpv6Message.parse(wire[48:], IPv6Address(wire[8:24]), IPv6Address(wire[24:40]))
    assert wire[24:40] == wire[56:72]  # RFC 2710 3: sent to the group it reports
    assert outbound.link_destination == multicast_mac(wire[24:40])
    return IPv6Address(wire[56:72])


def test_rfc3810_8_2_1_an_mldv1_query_is_answered_with_mldv1_reports_for_260_seconds():
    made = reporter(uniform=lambda low, high: high)
    made.receive_query(ROUTER, ALL_NODES, 1, query(10000), 10.0)  # a pending MLDv2 answer ...
    made.receive_query(ROUTER, ALL_NODES, 1, query(2000, version=1), 11.0)  # ... dropped: v1 now
    assert OLDER_VERSION_QUERIER_PRESENT_TIMEOUT_S == 260.0 and made.general_at is None
    out = made.poll(13.0, LINK_LOCAL)
    assert [v1_report(o) for o in out] == [GROUP, OTHER]
    made.receive_query(ROUTER, ALL_NODES, 1, query(1000), 200.0)  # an MLDv2 query, still in v1 mode
    assert [v1_report(o) for o in made.poll(201.0, LINK_LOCAL)] == [GROUP, OTHER]
    made.receive_query(ROUTER, ALL_NODES, 1, query(1000), 271.0)  # 11 + 260: back to MLDv2
    (report,) = made.poll(272.0, LINK_LOCAL)
    assert len(records(report)) == 2


def test_rfc2710_4_a_running_v1_timer_is_reset_only_to_a_sooner_time():
    delays = iter([0.5, 5.0, 9.0, 1.0])  # the first: the start report's retransmission
    made = reporter(uniform=lambda low, high: next(delays))
    made.receive_query(ROUTER, GROUP, 1, query(10000, GROUP, version=1), 10.0)
    made.receive_query(ROUTER, GROUP, 1, query(10000, GROUP, version=1), 10.0)
    assert made.v1_at == {GROUP: 15.0}
    made.receive_query(ROUTER, GROUP, 1, query(10000, GROUP, version=1), 10.0)
    assert made.v1_at == {GROUP: 11.0}


# ----------------------------------------------------------------------------- point to point


def test_no_mld_on_a_point_to_point_link():
    made = reporter(link=False, started=False)
    assert made.next_deadline(0.0) is None and made.poll(0.0, LINK_LOCAL) == []
    made.receive_query(ROUTER, ALL_NODES, 1, query(), 1.0)
    assert made.stats.last_drop == "icmpv6_mld_point_to_point" and made.poll(10.0, LINK_LOCAL) == []


# ----------------------------------------------------------------------------- a property


@settings(max_examples=150)
@given(st.lists(st.tuples(st.floats(0, 100), st.integers(0, 20000), st.sampled_from([None, GROUP, OTHER]),
                          st.booleans()), max_size=8),
       st.floats(0, 1))
def test_every_query_is_answered_within_its_maximum_response_delay(queries, fraction):
    """Whatever the queries (v1 or v2, general or not) and the random delays, polling at each
    deadline answers each one for its groups no later than its Maximum Response Delay."""
    made = reporter(uniform=lambda low, high: low + (high - low) * fraction)
    now = 2.0
    for gap, delay_ms, group, v1 in queries:
        now += gap
        for deadline in iter(lambda: made.next_deadline(now), None):
            if deadline > now:
                break
            made.poll(deadline, LINK_LOCAL)
        address = UNSPECIFIED if group is None else group
        made.receive_query(ROUTER, ALL_NODES, 1, query(delay_ms, address, version=1 if v1 else 2), now)
        deadline = made.next_deadline(now)
        assert deadline is not None and now <= deadline <= now + delay_ms / 1000.0 + 1e-9
        out = made.poll(now + delay_ms / 1000.0, LINK_LOCAL)
        reported = {v1_report(o) for o in out if join(o.datagram)[48] == 131} | {
            address for o in out if join(o.datagram)[48] == 143 for _, address, _ in records(o)}
        assert ({GROUP, OTHER} if group is None else {group}) <= reported
        assert all(len(join(o.datagram)) <= 1280 for o in out)
