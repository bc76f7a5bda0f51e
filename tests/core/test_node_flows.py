"""Golden flows on TapHost: a frame in, the exact frames out, and the exact counters.

Frames are built with dpkt (an independent implementation); expected output is built with dpkt
too, never with the codecs under test. Addresses: the kernel side is 192.0.2.1 at 02:..:01,
the host is 192.0.2.2/24 at 02:..:02.
"""

from __future__ import annotations

import logging
from ipaddress import IPv4Address

import dpkt
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from stack import EchoReply, TapHost
from stack.buffers import join
from stack.l2.neighbor import NeighborCache

KERNEL_MAC = bytes.fromhex("020000000001")
HOST_MAC = bytes.fromhex("020000000002")
OTHER_MAC = bytes.fromhex("020000000099")
BROADCAST_MAC = b"\xff" * 6
ZERO_MAC = bytes(6)
KERNEL_IP = "192.0.2.1"
HOST_IP = "192.0.2.2"
OTHER_IP = "192.0.2.3"
DATA = bytes(range(56))


def ip(address: str) -> bytes:
    return IPv4Address(address).packed


def pad(frame: bytes) -> bytes:
    """RFC 894: frames shorter than 60 bytes (without FCS) are padded with zeros."""
    return frame + bytes(max(0, 60 - len(frame)))


def ethernet(payload, ethertype: int, dst: bytes = HOST_MAC, src: bytes = KERNEL_MAC) -> bytes:
    return bytes(dpkt.ethernet.Ethernet(dst=dst, src=src, type=ethertype, data=bytes(payload)))


def arp(op: int, sha: bytes, spa: str, tha: bytes, tpa: str, dst: bytes = BROADCAST_MAC,
        src: bytes | None = None, hrd: int = 1, pro: int = 0x0800) -> bytes:
    packet = dpkt.arp.ARP(hrd=hrd, pro=pro, op=op, sha=sha, spa=ip(spa), tha=tha, tpa=ip(tpa))
    return ethernet(packet, 0x0806, dst=dst, src=sha if src is None else src)


def ipv4(payload: bytes, src: str = KERNEL_IP, dst: str = HOST_IP, p: int = 1, ttl: int = 64,
         id: int = 0x4242, mf: int = 0, offset: int = 0, opts: bytes = b"", tos: int = 0) -> dpkt.ip.IP:
    packet = dpkt.ip.IP(src=ip(src), dst=ip(dst), p=p, ttl=ttl, id=id, tos=tos, data=payload)
    packet.mf, packet.offset = mf, offset  # offset in 8-octet units, as on the wire (dpkt 1.9.8)
    if opts:
        packet.opts = opts
        packet.hl = 5 + len(opts) // 4
    packet.len = 20 + len(opts) + len(payload)
    packet.sum = 0  # dpkt computes it in bytes() only when it is zero
    return packet


def icmp_echo(type: int, ident: int, seq: int, data: bytes = DATA) -> bytes:
    return bytes(dpkt.icmp.ICMP(type=type, code=0, data=dpkt.icmp.ICMP.Echo(id=ident, seq=seq, data=data)))


def echo_request(ident: int = 0x1234, seq: int = 1, data: bytes = DATA, dst_mac: bytes = HOST_MAC,
                 **ip_fields) -> bytes:
    return ethernet(ipv4(icmp_echo(8, ident, seq, data), **ip_fields), 0x0800, dst=dst_mac)


def expected_echo_reply(ident: int = 0x1234, seq: int = 1, data: bytes = DATA, ip_id: int = 1,
                        src: str = HOST_IP, dst: str = KERNEL_IP, dst_mac: bytes = KERNEL_MAC) -> bytes:
    packet = ipv4(icmp_echo(0, ident, seq, data), src=src, dst=dst, id=ip_id)
    return ethernet(packet, 0x0800, dst=dst_mac, src=HOST_MAC)


def frames(out) -> list[bytes]:
    return [join(frame) for frame in out]


def traffic(host: TapHost) -> dict[str, int]:
    return host.stats.as_dict()


@pytest.fixture
def fresh() -> TapHost:
    """A host that has sent its start-up announcement and knows no neighbour."""
    host = TapHost([f"{HOST_IP}/24"], mac="02:00:00:00:00:02")
    host.poll(0.0)
    host.poll(2.0)  # RFC 5227 2.3: the second announcement
    host.stats.counters.clear()
    return host


@pytest.fixture
def host(fresh: TapHost) -> TapHost:
    """A host that has answered the kernel's ARP request, so it knows the kernel's MAC."""
    fresh.receive(arp(1, KERNEL_MAC, KERNEL_IP, ZERO_MAC, HOST_IP), 0.0)
    fresh.stats.counters.clear()
    return fresh


# ---------------------------------------------------------------------- start-up

def test_rfc5227_3_announces_each_address_at_start_up():
    host = TapHost([f"{HOST_IP}/24", "198.51.100.7/24"], mac="02:00:00:00:00:02")
    assert host.next_deadline(5.0) == 5.0
    out = frames(host.poll(5.0))
    assert out == [
        pad(arp(1, HOST_MAC, HOST_IP, ZERO_MAC, HOST_IP)),
        pad(arp(1, HOST_MAC, "198.51.100.7", ZERO_MAC, "198.51.100.7")),
    ]
    # RFC 5227 2.3: ANNOUNCE_NUM (2) announcements, ANNOUNCE_INTERVAL (2 s) apart.
    assert host.next_deadline(5.0) == 7.0
    assert host.poll(6.9) == []
    assert frames(host.poll(7.0)) == out
    assert host.next_deadline(7.0) is None
    assert host.poll(60.0) == []
    assert traffic(host) == {"arp_announcements_sent": 4, "tx_frames": 4}


def test_default_mac_is_locally_administered_and_derived_from_the_address():
    host = TapHost([f"{HOST_IP}/24"])
    assert str(host.mac) == "02:00:c0:00:02:02"


# ---------------------------------------------------------------------- ARP

def test_rfc826_answers_a_broadcast_request_for_our_address(fresh):
    out = frames(fresh.receive(arp(1, KERNEL_MAC, KERNEL_IP, ZERO_MAC, HOST_IP), 1.0))
    assert out == [pad(arp(2, HOST_MAC, HOST_IP, KERNEL_MAC, KERNEL_IP, dst=KERNEL_MAC, src=HOST_MAC))]
    assert traffic(fresh) == {"rx_frames": 1, "rx_arp": 1, "arp_replies_sent": 1, "tx_frames": 1}
    assert fresh.link.cache.lookup(IPv4Address(KERNEL_IP), 1.0) == KERNEL_MAC


def test_answers_a_unicast_request_the_kernel_sends_to_reprobe(host):
    out = frames(host.receive(arp(1, KERNEL_MAC, KERNEL_IP, HOST_MAC, HOST_IP, dst=HOST_MAC), 30.0))
    assert out == [pad(arp(2, HOST_MAC, HOST_IP, KERNEL_MAC, KERNEL_IP, dst=KERNEL_MAC, src=HOST_MAC))]


def test_rfc826_never_answers_for_an_address_we_do_not_own(fresh):
    assert fresh.receive(arp(1, KERNEL_MAC, KERNEL_IP, ZERO_MAC, OTHER_IP), 1.0) == []
    assert fresh.stats.drops == {"arp_not_for_us": 1}
    # RFC 826: an unknown sender is only added when we are the target.
    assert fresh.link.cache.lookup(IPv4Address(KERNEL_IP), 1.0) is None


def test_rfc826_merge_follows_a_known_sender_that_moved_once_its_old_mac_stays_silent(host):
    """RFC 826's merge, hardened (tests/core/test_arp_poisoning.py has the rest): a gratuitous
    ARP moving a known sender to a new MAC is believed once the old MAC is silent for a check."""
    new_mac = bytes.fromhex("020000000077")
    host.receive(arp(1, new_mac, KERNEL_IP, ZERO_MAC, KERNEL_IP), 2.0)  # gratuitous
    assert host.link.cache.lookup(IPv4Address(KERNEL_IP), 2.0) == KERNEL_MAC  # not yet
    host.poll(2.0 + host.link.cache.check_interval)
    assert host.link.cache.lookup(IPv4Address(KERNEL_IP), 3.0) == new_mac
    out = frames(host.receive(echo_request(), 3.0))
    assert out == [expected_echo_reply(dst_mac=new_mac)]


def test_rfc5227_probe_is_answered_but_its_zero_sender_is_not_learnt(fresh):
    out = frames(fresh.receive(arp(1, KERNEL_MAC, "0.0.0.0", ZERO_MAC, HOST_IP), 1.0))
    assert out == [pad(arp(2, HOST_MAC, HOST_IP, KERNEL_MAC, "0.0.0.0", dst=KERNEL_MAC, src=HOST_MAC))]
    assert IPv4Address("0.0.0.0") not in fresh.link.cache


def test_rfc5227_2_4_a_conflict_is_logged_defended_and_not_learnt(fresh, caplog):
    with caplog.at_level(logging.WARNING):
        out = frames(fresh.receive(arp(2, OTHER_MAC, HOST_IP, BROADCAST_MAC, HOST_IP), 1.0))
    # RFC 5227 2.4: one defensive ARP announcement (the conflict tests are in test_conflict.py).
    assert out == [pad(arp(1, HOST_MAC, HOST_IP, ZERO_MAC, HOST_IP))]
    assert fresh.stats.drops == {"arp_address_conflict": 1}
    assert "conflict" in caplog.text and "02:00:00:00:00:99" in caplog.text
    assert IPv4Address(HOST_IP) not in fresh.link.cache


def test_an_arp_reply_for_us_completes_a_pending_resolution(fresh):
    fresh.ping(KERNEL_IP, 0.0, identifier=7, sequence=1, payload=b"abc")
    out = frames(fresh.receive(arp(2, KERNEL_MAC, KERNEL_IP, HOST_MAC, HOST_IP, dst=HOST_MAC), 0.1))
    assert len(out) == 1 and out[0][:6] == KERNEL_MAC
    assert fresh.stats["arp_replies_received"] == 1


@pytest.mark.parametrize(
    "frame, reason",
    [
        (arp(1, KERNEL_MAC, KERNEL_IP, ZERO_MAC, HOST_IP, hrd=6), "arp_bad_hardware_type"),
        (arp(1, KERNEL_MAC, KERNEL_IP, ZERO_MAC, HOST_IP, pro=0x86DD), "arp_bad_protocol_type"),
        (arp(3, KERNEL_MAC, KERNEL_IP, ZERO_MAC, HOST_IP), "arp_unknown_operation"),
        (arp(1, bytes.fromhex("030000000001"), KERNEL_IP, ZERO_MAC, HOST_IP), "arp_bad_sender_mac"),
        (arp(1, ZERO_MAC, KERNEL_IP, ZERO_MAC, HOST_IP, src=KERNEL_MAC), "arp_bad_sender_mac"),
        (ethernet(bytes(arp(1, KERNEL_MAC, KERNEL_IP, ZERO_MAC, HOST_IP))[14:14 + 27], 0x0806,
                  dst=BROADCAST_MAC), "arp_truncated"),
        (ethernet(b"\x00\x01\x08\x00\x08\x04" + bytes(30), 0x0806, dst=BROADCAST_MAC),
         "arp_bad_address_length"),
    ],
    ids=["hardware-type-6", "protocol-ipv6", "rarp-operation", "multicast-sender-mac",
         "zero-sender-mac", "27-bytes", "hln-8"],
)
def test_arp_drops(fresh, frame, reason):
    assert fresh.receive(frame, 1.0) == []
    assert fresh.stats.drops == {reason: 1}
    assert fresh.link.cache.lookup(IPv4Address(KERNEL_IP), 1.0) is None


# ---------------------------------------------------------------------- ICMP echo

def test_rfc1122_3_2_2_6_echo_reply_has_same_identifier_sequence_and_data(host):
    request = echo_request(ident=0xBEEF, seq=42)
    out = host.receive(request, 1.0)
    assert frames(out) == [expected_echo_reply(ident=0xBEEF, seq=42)]
    assert traffic(host) == {"rx_frames": 1, "rx_ipv4": 1, "rx_ipv4_delivered": 1,
                             "icmp_echo_replies_sent": 1, "tx_frames": 1}


def test_echo_reply_is_headers_plus_a_view_of_the_request_data(host):
    """The iovec path: Ethernet, IPv4, ICMP headers as buffers, the data not copied."""
    request = bytearray(echo_request())
    [reply] = host.receive(request, 1.0)
    assert [len(buffer) for buffer in reply] == [14, 20, 8, 56]
    assert isinstance(reply[-1], memoryview) and reply[-1].obj is request


def test_identification_changes_between_datagrams(host):
    first = frames(host.receive(echo_request(seq=1), 1.0))[0]
    second = frames(host.receive(echo_request(seq=2), 1.0))[0]
    assert first == expected_echo_reply(seq=1, ip_id=1)
    assert second == expected_echo_reply(seq=2, ip_id=2)


@pytest.mark.parametrize("opts", [b"", b"\x01\x01\x01\x00"], ids=["predicted", "general"])
def test_rfc1349_5_1_the_echo_reply_carries_the_request_tos(host, opts):
    request = ethernet(ipv4(icmp_echo(8, 0x1234, 1), tos=0xB9, opts=opts), 0x0800)
    reply = ipv4(icmp_echo(0, 0x1234, 1), src=HOST_IP, dst=KERNEL_IP, id=1, tos=0xB9)
    assert frames(host.receive(request, 1.0)) == [ethernet(reply, 0x0800, dst=KERNEL_MAC, src=HOST_MAC)]


def test_rfc894_ethernet_padding_is_not_echoed(host):
    request = pad(echo_request(data=b"hi"))
    assert len(request) == 60
    assert frames(host.receive(request, 1.0)) == [pad(expected_echo_reply(data=b"hi"))]


def test_rfc1122_3_2_1_7_ttl_is_not_checked_on_local_delivery(host):
    assert frames(host.receive(echo_request(ttl=0), 1.0)) == [expected_echo_reply()]
    assert frames(host.receive(echo_request(ttl=1), 1.0)) == [expected_echo_reply(ip_id=2)]


def test_rfc1122_3_2_1_8_unknown_options_are_ignored_and_not_echoed(host):
    options = b"\x01\x01\x01\x00"  # NOP NOP NOP EOL
    assert frames(host.receive(echo_request(opts=options), 1.0)) == [expected_echo_reply()]


def test_zero_length_and_large_echo_data(host):
    assert frames(host.receive(echo_request(data=b""), 1.0)) == [pad(expected_echo_reply(data=b""))]
    big = bytes(range(256)) * 5 + bytes(192)  # 1472 bytes: a full 1500-byte datagram
    assert frames(host.receive(echo_request(data=big), 1.0)) == [expected_echo_reply(data=big, ip_id=2)]


@pytest.mark.parametrize("destination, link", [
    ("192.0.2.255", BROADCAST_MAC), ("255.255.255.255", BROADCAST_MAC),
    ("224.0.0.1", bytes.fromhex("01005e000001")),
], ids=["subnet-broadcast", "limited-broadcast", "all-hosts"])
def test_rfc1122_3_2_2_6_broadcast_echo_is_ignored_by_default(host, destination, link):
    assert host.receive(echo_request(dst=destination, dst_mac=link), 1.0) == []
    assert host.stats.drops == {"icmp_echo_to_broadcast_ignored": 1}


@pytest.mark.parametrize("destination, link", [
    ("192.0.2.255", BROADCAST_MAC), ("255.255.255.255", BROADCAST_MAC),
    ("224.0.0.1", bytes.fromhex("01005e000001")),
], ids=["subnet-broadcast", "limited-broadcast", "all-hosts"])
def test_broadcast_echo_when_enabled_is_answered_from_our_unicast_address(destination, link):
    host = TapHost([f"{HOST_IP}/24"], mac="02:00:00:00:00:02", answer_broadcast_echo=True)
    host.receive(arp(1, KERNEL_MAC, KERNEL_IP, ZERO_MAC, HOST_IP), 0.0)
    assert frames(host.receive(echo_request(dst=destination, dst_mac=link), 1.0)) == [
        expected_echo_reply(ip_id=1)
    ]


# ---------------------------------------------------------------------- ARP resolution

def test_rfc1122_2_3_2_2_first_echo_waits_for_arp_then_is_answered(fresh):
    # The kernel already knows our MAC (say, from our announcement); we do not know its MAC.
    out = frames(fresh.receive(echo_request(), 1.0))
    assert out == [pad(arp(1, HOST_MAC, HOST_IP, ZERO_MAC, KERNEL_IP, src=HOST_MAC))]
    assert fresh.stats["arp_queued"] == 1 and fresh.stats["arp_requests_sent"] == 1
    assert fresh.next_deadline(1.0) == 2.0
    out = frames(fresh.receive(arp(2, KERNEL_MAC, KERNEL_IP, HOST_MAC, HOST_IP, dst=HOST_MAC), 1.01))
    assert out == [expected_echo_reply()]
    assert fresh.stats["arp_queue_flushed"] == 1
    assert fresh.stats.drops == {}
    assert fresh.next_deadline(1.01) is None


def test_rfc1122_2_3_2_1_at_most_one_request_per_second_then_give_up(fresh):
    request = pad(arp(1, HOST_MAC, HOST_IP, ZERO_MAC, KERNEL_IP, src=HOST_MAC))
    assert frames(fresh.receive(echo_request(seq=1), 0.0)) == [request]
    assert fresh.receive(echo_request(seq=2), 0.5) == []  # still waiting: no second request
    assert fresh.poll(0.9) == []
    assert frames(fresh.poll(1.0)) == [request]
    assert frames(fresh.poll(2.0)) == [request]
    assert fresh.poll(2.5) == []
    assert fresh.poll(3.0) == []  # three requests sent: give up, drop what waited
    assert fresh.stats["arp_requests_sent"] == 3
    assert fresh.stats["arp_resolution_failed"] == 1
    assert fresh.stats.drops == {"arp_unresolved": 2}
    assert fresh.next_deadline(3.0) is None


def test_pending_queue_keeps_the_latest_datagrams_within_its_count():
    host = TapHost([f"{HOST_IP}/24"], mac="02:00:00:00:00:02", neighbor_cache=NeighborCache(queue_length=3))
    for seq in range(1, 6):
        host.receive(echo_request(seq=seq), 0.0)
    assert host.stats.drops == {"arp_queue_full": 2}
    out = frames(host.receive(arp(2, KERNEL_MAC, KERNEL_IP, HOST_MAC, HOST_IP, dst=HOST_MAC), 0.1))
    assert out == [expected_echo_reply(seq=seq, ip_id=seq) for seq in (3, 4, 5)]


def test_pending_queue_keeps_the_latest_datagrams_within_its_bytes():
    reply = len(expected_echo_reply()) - 14  # the datagram queued, without its Ethernet header
    host = TapHost([f"{HOST_IP}/24"], mac="02:00:00:00:00:02",
                   neighbor_cache=NeighborCache(queue_bytes=2 * reply + 1))
    for seq in range(1, 5):
        host.receive(echo_request(seq=seq), 0.0)
    assert host.stats.drops == {"arp_queue_full": 2}
    out = frames(host.receive(arp(2, KERNEL_MAC, KERNEL_IP, HOST_MAC, HOST_IP, dst=HOST_MAC), 0.1))
    assert out == [expected_echo_reply(seq=seq, ip_id=seq) for seq in (3, 4)]


def test_rfc1122_2_3_2_2_a_reply_in_fragments_waits_whole_for_arp(fresh):
    # Found by the fuzz properties: the queue held 3 datagrams, so of an 8000-byte echo reply
    # (6 fragments) to a neighbour whose entry had expired only the last 3 fragments left, and
    # the pinger could never put it together.
    data = bytes(range(256)) * 31 + bytes(64)
    message = icmp_echo(8, 0x77, 1, data)
    for start in range(0, len(message), 1480):
        piece = message[start:start + 1480]
        fragment = ipv4(piece, mf=int(start + 1480 < len(message)), offset=start // 8)
        assert frames(fresh.receive(ethernet(fragment, 0x0800), 0.0)) == (
            [pad(arp(1, HOST_MAC, HOST_IP, ZERO_MAC, KERNEL_IP, src=HOST_MAC))]
            if start + 1480 >= len(message) else [])
    out = frames(fresh.receive(arp(2, KERNEL_MAC, KERNEL_IP, HOST_MAC, HOST_IP, dst=HOST_MAC), 0.1))
    assert len(out) == 6 and "arp_queue_full" not in fresh.stats.drops
    replies = [dpkt.ethernet.Ethernet(frame).data for frame in out]
    assert b"".join(bytes(r.data) for r in sorted(replies, key=lambda r: r.offset)) == icmp_echo(0, 0x77, 1, data)


def test_entries_expire_after_their_lifetime(host):
    assert frames(host.receive(echo_request(), 59.0)) == [expected_echo_reply()]
    out = frames(host.receive(echo_request(seq=2), 60.0))
    assert out == [pad(arp(1, HOST_MAC, HOST_IP, ZERO_MAC, KERNEL_IP, src=HOST_MAC))]


# ---------------------------------------------------------------------- our own ping

def test_ping_resolves_sends_and_matches_the_reply(fresh):
    out = frames(fresh.ping(KERNEL_IP, 10.0, identifier=0x55, sequence=9, payload=b"tapstack"))
    assert out == [pad(arp(1, HOST_MAC, HOST_IP, ZERO_MAC, KERNEL_IP, src=HOST_MAC))]
    out = frames(fresh.receive(arp(2, KERNEL_MAC, KERNEL_IP, HOST_MAC, HOST_IP, dst=HOST_MAC), 10.001))
    request = ipv4(icmp_echo(8, 0x55, 9, b"tapstack"), src=HOST_IP, dst=KERNEL_IP, id=1)
    assert out == [pad(ethernet(request, 0x0800, dst=KERNEL_MAC, src=HOST_MAC))]
    reply = ethernet(ipv4(icmp_echo(0, 0x55, 9, b"tapstack"), ttl=63), 0x0800)
    assert fresh.receive(reply, 10.25) == []
    assert list(fresh.events) == [EchoReply(IPv4Address(KERNEL_IP), 0x55, 9, 63, 8, pytest.approx(0.25))]
    assert fresh.take_echo_replies(0x55)[0].sequence == 9 and not fresh.events


def test_an_echo_reply_nobody_asked_for_is_dropped(host):
    reply = ethernet(ipv4(icmp_echo(0, 0x55, 9)), 0x0800)
    assert host.receive(reply, 1.0) == []
    assert host.stats.drops == {"icmp_echo_reply_unsolicited": 1}
    assert not host.events


@pytest.mark.parametrize("target", [HOST_IP, "192.0.2.255", "224.0.0.1", "127.0.0.1", "203.0.113.5"],
                         ids=["ourselves", "broadcast", "multicast", "loopback", "off-link-no-gateway"])
def test_ping_refuses_what_it_cannot_send(host, target):
    with pytest.raises(ValueError):
        host.ping(target, 0.0)


def test_off_link_traffic_goes_through_the_gateway():
    host = TapHost([f"{HOST_IP}/24"], mac="02:00:00:00:00:02", gateway=KERNEL_IP)
    host.receive(arp(1, KERNEL_MAC, KERNEL_IP, ZERO_MAC, HOST_IP), 0.0)
    out = frames(host.receive(echo_request(src="203.0.113.9"), 1.0))
    assert out == [expected_echo_reply(dst="203.0.113.9", ip_id=1)]  # to the gateway's MAC


def test_off_link_source_without_gateway_has_no_route(host):
    assert host.receive(echo_request(src="203.0.113.9"), 1.0) == []
    assert host.stats.drops == {"ipv4_no_route": 1}


def test_gateway_must_be_on_link():
    with pytest.raises(ValueError):
        TapHost([f"{HOST_IP}/24"], gateway="203.0.113.1")


# ---------------------------------------------------------------------- drops

def _vlan_frame() -> bytes:
    tagged = bytes(dpkt.ethernet.Ethernet(dst=HOST_MAC, src=KERNEL_MAC, type=0x8100, data=b""))
    return tagged[:12] + b"\x81\x00\x00\x05\x08\x00" + bytes(ipv4(icmp_echo(8, 1, 1)))


def _corrupt_ip_checksum(frame: bytes) -> bytes:
    return frame[:24] + bytes([frame[24] ^ 0xFF]) + frame[25:]


def _corrupt_icmp_checksum(frame: bytes) -> bytes:
    return frame[:36] + bytes([frame[36] ^ 0xFF]) + frame[37:]


DROPS = [
    ("runt", KERNEL_MAC * 2, "ethernet_runt"),
    ("other-unicast-mac", echo_request(dst_mac=OTHER_MAC), "ethernet_not_for_us"),
    ("other-multicast-mac", echo_request(dst_mac=bytes.fromhex("01005e000005")), "ethernet_not_for_us"),
    ("802.1q", _vlan_frame(), "ethernet_vlan_tagged"),
    ("ipv6", ethernet(bytes(40), 0x86DD), "ethernet_ipv6_not_supported"),
    ("unknown-ethertype", ethernet(bytes(46), 0x88B5), "ethernet_unknown_ethertype"),
    ("802.3-length", ethernet(bytes(46), 46), "ethernet_8023_length_frame"),
    ("ip-truncated", ethernet(bytes(ipv4(icmp_echo(8, 1, 1)))[:19], 0x0800), "ipv4_truncated"),
    ("ip-version-6", ethernet(b"\x65" + bytes(ipv4(icmp_echo(8, 1, 1)))[1:], 0x0800), "ipv4_bad_version"),
    ("ip-bad-checksum", _corrupt_ip_checksum(echo_request()), "ipv4_bad_checksum"),
    ("ip-not-for-us", echo_request(dst=OTHER_IP), "ipv4_not_for_us"),
    ("ip-other-network", echo_request(dst="198.51.100.2"), "ipv4_not_for_us"),
    ("unicast-in-link-broadcast", echo_request(dst_mac=BROADCAST_MAC), "ipv4_unicast_in_link_broadcast"),
    ("source-0.0.0.0", echo_request(src="0.0.0.0"), "ipv4_martian_source"),
    ("source-loopback", echo_request(src="127.0.0.1"), "ipv4_martian_source"),
    ("source-multicast", echo_request(src="224.0.0.5"), "ipv4_martian_source"),
    ("source-limited-broadcast", echo_request(src="255.255.255.255"), "ipv4_martian_source"),
    ("source-subnet-broadcast", echo_request(src="192.0.2.255"), "ipv4_martian_source"),
    ("source-is-ours", echo_request(src=HOST_IP), "ipv4_source_is_ours"),
    ("icmp-truncated", ethernet(ipv4(b"\x08\x00\xf7"), 0x0800), "icmp_truncated"),
    ("icmp-bad-checksum", _corrupt_icmp_checksum(echo_request()), "icmp_bad_checksum"),
    ("icmp-timestamp", ethernet(ipv4(bytes(dpkt.icmp.ICMP(type=13, data=bytes(16)))), 0x0800),
     "icmp_type_not_handled"),
    ("icmp-unknown-type-42", ethernet(ipv4(bytes(dpkt.icmp.ICMP(type=42, data=bytes(8)))), 0x0800),
     "icmp_type_not_handled"),
    ("icmp-unreachable", ethernet(ipv4(bytes(dpkt.icmp.ICMP(type=3, code=3, data=bytes(32)))), 0x0800),
     "icmp_type_not_handled"),
]


@pytest.mark.parametrize("frame, reason", [d[1:] for d in DROPS], ids=[d[0] for d in DROPS])
def test_every_drop_has_a_named_reason(host, frame, reason):
    assert host.receive(frame, 1.0) == []
    assert host.stats.drops == {reason: 1}
    assert host.stats["dropped"] == 1 and host.stats.last_drop == reason
    assert host.stats["tx_frames"] == 0


def test_drops_are_logged_at_debug_level(host, caplog):
    with caplog.at_level(logging.DEBUG, logger="stack"):
        host.receive(_corrupt_ip_checksum(echo_request()), 1.0)
    [record] = [r for r in caplog.records if "drop" in r.getMessage()]
    assert record.levelno == logging.DEBUG
    assert "ipv4_bad_checksum" in record.getMessage() and "does not verify" in record.getMessage()


@pytest.mark.parametrize("kind", [bytes, bytearray, memoryview])
def test_receive_takes_any_bytes_like(host, kind):
    assert frames(host.receive(kind(echo_request()), 1.0)) == [expected_echo_reply()]


# ---------------------------------------------------------------------- properties

@settings(max_examples=300)
@given(st.binary(max_size=200))
def test_arbitrary_bytes_never_raise(data):
    host = TapHost([f"{HOST_IP}/24"], mac="02:00:00:00:00:02")
    host.receive(data, 0.0)
    host.poll(0.0)


@settings(max_examples=300)
@given(st.integers(min_value=14, max_value=97), st.integers(min_value=0, max_value=7))
def test_rfc1122_3_2_2_a_single_bit_flip_in_ip_or_icmp_never_gets_an_echo_reply(byte, bit):
    host = TapHost([f"{HOST_IP}/24"], mac="02:00:00:00:00:02")
    host.receive(arp(1, KERNEL_MAC, KERNEL_IP, ZERO_MAC, HOST_IP), 0.0)
    frame = bytearray(echo_request())
    frame[byte] ^= 1 << bit
    # Every byte from 14 on is covered by the IPv4 header checksum or the ICMP checksum, and
    # the Internet checksum detects every single-bit error.
    assert host.receive(bytes(frame), 1.0) == []
    assert host.stats["dropped"] == 1
