"""The machinery of ``tapstack diff`` without the kernel: normalising, the allow-list, the
verdicts, and hypothesis shrinking a disagreement to a small frame."""

from __future__ import annotations

import dpkt
import pytest

from stack.tools import diff
from stack.buffers import join
from stack.testing import frames


def echo_reply(ident: int = 0x4242, tos: int = 0, pad: bool = False, opts: bytes = b"") -> bytes:
    packet = dpkt.ip.IP(src=frames.ip(frames.HOST_IP), dst=frames.ip(frames.KERNEL_IP), p=1, ttl=64, id=ident,
                        tos=tos, data=dpkt.icmp.ICMP(type=0, data=dpkt.icmp.ICMP.Echo(id=1, seq=1, data=b"ab")))
    if opts:
        packet.opts, packet.hl = opts, 5 + len(opts) // 4
        packet.len, packet.sum = 20 + len(opts) + len(bytes(packet.data)), 0
    frame = frames.ethernet_frame(frames.KERNEL_MAC, bytes(diff.HOST_MAC), 0x0800, bytes(packet))
    return frames.pad(frame) if pad else frame


def test_normalize_sets_aside_identification_and_padding_but_not_tos():
    assert diff.normalize(echo_reply(1)) == diff.normalize(echo_reply(2, pad=True))
    assert diff.normalize(echo_reply(1)) != diff.normalize(echo_reply(1, tos=0x10))
    normalized = diff.normalize(echo_reply(0x1234))
    assert normalized[18:20] == b"\0\0" and dpkt.in_cksum(normalized[14:34]) == 0


def test_normalize_clears_timestamp_values_and_keeps_addresses():
    stamped = bytes([68, 12, 13, 0x01]) + frames.ip("192.0.2.2") + (1234).to_bytes(4, "big")
    other = bytes([68, 12, 13, 0x01]) + frames.ip("192.0.2.2") + (999).to_bytes(4, "big")
    moved = bytes([68, 12, 13, 0x01]) + frames.ip("192.0.2.9") + (1234).to_bytes(4, "big")
    assert diff.normalize(echo_reply(opts=stamped)) == diff.normalize(echo_reply(opts=other))
    assert diff.normalize(echo_reply(opts=stamped)) != diff.normalize(echo_reply(opts=moved))


def test_normalize_trims_arp_to_its_28_bytes():
    arp = frames.arp_frame(2, frames.HOST_MAC, frames.HOST_IP, frames.KERNEL_MAC, frames.KERNEL_IP)
    assert diff.normalize(frames.pad(arp)) == arp[:42]


class Twin:
    """tapstack again, as the "kernel": the harness must find no difference at all."""

    def __init__(self, change=None) -> None:
        self.stack = diff.StackHost()
        self.change = change

    def answer(self, frame: bytes) -> list[bytes]:
        out = self.stack.answer(frame)
        return self.change(frame, out) if self.change else out

    def answer_train(self, fragments: tuple[bytes, ...]) -> list[bytes]:
        return self.stack.answer_train(fragments)


def test_tapstack_against_itself_always_agrees():
    comparison = diff.Comparison(Twin(), diff.StackHost())
    assert diff.run_examples(comparison, 200, seed=3) is None
    assert comparison.tally.outcomes["disagree"] == 0 and comparison.tally.outcomes["agree"] > 150
    assert 20 < comparison.tally.trains < 80  # about one example in TRAIN_SHARE
    assert f"({comparison.tally.trains} of them fragment trains)" in diff.summary(comparison.tally)


def test_a_difference_on_the_allow_list_is_counted_as_deliberate():
    def timestamp_reply(frame: bytes, out: list[bytes]) -> list[bytes]:
        packet = diff._ipv4_to_host(frame)
        asks = packet is not None and packet.protocol == 1 and packet.payload[:1] == b"\x0d"
        return [b"a timestamp reply"] if asks else out

    comparison = diff.Comparison(Twin(timestamp_reply), diff.StackHost())
    assert diff.run_examples(comparison, 300, seed=3, trains=False) is None
    assert comparison.tally.allowed["icmp-timestamp"] > 0


@pytest.mark.parametrize("medium", ["ethernet", "ip"])
@pytest.mark.parametrize("family", [4, 6])
def test_tcp_probes_reach_the_tcp_layer_and_a_wrong_reset_is_a_disagreement(medium, family):
    """``tapstack diff --tcp``: segments that tapstack answers with RST (so the comparison sees
    the resets), and a "kernel" whose RST has another sequence number disagrees."""
    def other_sequence(frame: bytes, out: list[bytes]) -> list[bytes]:
        return [answer[:-16] + bytes([answer[-16] ^ 1]) + answer[-15:] for answer in out]

    class Changed:
        def __init__(self, change) -> None:
            self.stack, self.change = diff.StackHost(medium, family), change

        def answer(self, frame: bytes) -> list[bytes]:
            out = self.stack.answer(frame)
            return self.change(frame, out) if self.change else out

    same = diff.Comparison(Changed(None), diff.StackHost(medium, family), medium, family)
    assert diff.run_examples(same, 100, seed=1, frames=diff.tcp_probe_frames(medium, family)) is None
    resets = [outcome for outcome in same.tally.seen]
    stack = diff.StackHost(medium, family)
    answered = sum(bool(stack.answer(frame)) for frame in resets)
    assert answered >= 5 and stack.host.stats["drop.tcp_port_closed"] == answered
    changed = diff.Comparison(Changed(other_sequence), diff.StackHost(medium, family), medium, family)
    outcome = diff.run_examples(changed, 100, seed=1, frames=diff.tcp_probe_frames(medium, family))
    assert outcome is not None and outcome.verdict == "disagree"


def test_tcp_probes_go_to_broadcast_and_multicast_too():
    from hypothesis import given, settings

    seen = set()

    @settings(max_examples=200, database=None)
    @given(diff.tcp_probe_frames("ethernet", 4))
    def collect(frame):
        seen.add(frame[30:34])

    collect()
    assert {frames.ip("192.0.2.2"), frames.ip("192.0.2.255"), frames.ip("224.0.0.1")} <= seen


def test_a_disagreement_is_shrunk_to_a_small_frame_with_both_answers():
    def silent_on_echo(frame: bytes, out: list[bytes]) -> list[bytes]:
        return [] if any("echo reply" in diff.summarize(reply) for reply in out) else out

    comparison = diff.Comparison(Twin(silent_on_echo), diff.StackHost())
    outcome = diff.run_examples(comparison, 300, seed=3)
    assert outcome is not None and outcome.verdict == "disagree"
    assert outcome.kernel == [] and len(outcome.stack) == 1
    assert len(outcome.frame) == 60  # shrunk: an echo request with no data, padded
    text = outcome.describe()
    assert "linux    answers nothing" in text and "tapstack" in text and "echo reply" in text


def test_every_deliberate_difference_names_its_rfc_or_reason():
    for difference in diff.DELIBERATE_DIFFERENCES:
        assert difference.name and len(difference.why) > 40, difference


def test_normalize_a_bare_ip_packet_as_on_a_tun_device():
    one, two = echo_reply(1)[14:], echo_reply(2)[14:]
    assert one != two and diff.normalize(one, "ip") == diff.normalize(two, "ip")
    assert diff.normalize(one, "ip") == diff.normalize(echo_reply(1), "ethernet")[14:]


def test_tapstack_over_tun_against_itself_always_agrees():
    class TunTwin:
        def __init__(self) -> None:
            self.stack = diff.StackHost("ip")

        def answer(self, packet: bytes) -> list[bytes]:
            return self.stack.answer(packet)

        def answer_train(self, fragments: tuple[bytes, ...]) -> list[bytes]:
            return self.stack.answer_train(fragments)

    comparison = diff.Comparison(TunTwin(), diff.StackHost("ip"), "ip")
    assert diff.run_examples(comparison, 150, seed=4) is None
    assert comparison.tally.outcomes["disagree"] == 0 and comparison.tally.outcomes["agree"] > 100
    assert comparison.tally.trains > 10


PEER_IP, PEER_MAC = "192.0.2.3", "02:00:00:00:00:03"
FLIPPED_MAC = "02:00:01:00:00:03"  # the peer's MAC with one bit flipped, as the generator does


def test_an_arp_packet_with_another_sender_mac_leaves_the_permanent_peer_entry_alone():
    # As on the kernel side (NUD_PERMANENT): the reply goes to the packet's sender MAC, but later
    # datagrams still go to the peer's configured MAC.
    stack = diff.StackHost()
    request = frames.arp_frame(1, FLIPPED_MAC, PEER_IP, frames.ZERO_MAC, diff.HOST.ip, src_mac=PEER_MAC)
    [reply] = stack.answer(request)
    assert reply[:6] == frames.mac(FLIPPED_MAC)
    ping = frames.echo_request_frame(PEER_MAC, bytes(diff.HOST_MAC), PEER_IP, diff.HOST.ip)
    [echo_reply] = stack.answer(ping)
    assert echo_reply[:6] == frames.mac(PEER_MAC)


def test_an_arp_sender_mac_that_is_a_group_address_is_a_deliberate_difference():
    group = frames.arp_frame(1, "03:00:00:00:00:03", PEER_IP, frames.ZERO_MAC, diff.HOST.ip, src_mac=PEER_MAC)
    assert {d.name for d in diff.DELIBERATE_DIFFERENCES if d.covers(group)} == {"arp-group-sender-mac"}
    for sender in (PEER_MAC, FLIPPED_MAC):  # individual addresses: not covered
        frame = frames.arp_frame(1, sender, PEER_IP, frames.ZERO_MAC, diff.HOST.ip, src_mac=PEER_MAC)
        assert not any(d.covers(frame) for d in diff.DELIBERATE_DIFFERENCES)
    broadcast = frames.arp_frame(1, frames.BROADCAST_MAC, PEER_IP, frames.ZERO_MAC, diff.HOST.ip,
                                 src_mac=PEER_MAC)
    assert diff.StackHost().answer(group) == diff.StackHost().answer(broadcast) == []


def test_an_arp_packet_claiming_the_host_address_is_a_deliberate_difference():
    # RFC 5227 2.4: tapstack defends its address with an announcement; Linux stays silent.
    claim = frames.arp_frame(2, PEER_MAC, diff.HOST.ip, bytes(diff.HOST_MAC), diff.HOST.ip)
    assert {d.name for d in diff.DELIBERATE_DIFFERENCES if d.covers(claim)} == {"arp-address-defence"}
    [announcement] = diff.StackHost().answer(claim)
    assert announcement[:6] == frames.BROADCAST_MAC  # sender and target address ours:
    assert announcement[28:32] == announcement[38:42] == diff.HOST.ip.packed
    ours = frames.arp_frame(2, bytes(diff.HOST_MAC), diff.HOST.ip, PEER_MAC, PEER_IP)
    assert not any(d.covers(ours) for d in diff.DELIBERATE_DIFFERENCES)


# ---------------------------------------------------------------------- IPv6 (--ipv6)

from ipaddress import IPv6Address  # noqa: E402

from hypothesis import HealthCheck, given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

from stack.l3.ipv6 import Ipv6Packet  # noqa: E402
from stack.l3.neighbor_discovery import State  # noqa: E402
from stack.testing import strategies  # noqa: E402

HOST6, PEER6 = "2001:db8::2", "2001:db8::1"


def packet6(payload: bytes, next_header: int = 58, src: str = PEER6, dst: str = HOST6, traffic_class: int = 0,
            flow_label: int = 0, hop_limit: int = 64) -> bytes:
    return frames.ipv6_packet(payload, next_header, src=src, dst=dst, hop_limit=hop_limit,
                              traffic_class=traffic_class, flow_label=flow_label)


def frame6(packet: bytes, destination: bytes = bytes(diff.HOST_MAC), source: str = "02:00:00:00:00:01") -> bytes:
    return frames.ethernet_frame(destination, frames.mac(source), 0x86DD, packet)


def echo6(src: str = PEER6, dst: str = HOST6, **kwargs) -> bytes:
    return packet6(frames.icmpv6_echo(128, 7, 1, b"abc", src=src, dst=dst), src=src, dst=dst, **kwargs)


def test_normalize_ipv6_sets_aside_the_flow_label_and_padding_but_not_the_traffic_class():
    one, two = frame6(echo6(flow_label=0x4A9C)), frame6(echo6(flow_label=0x12345)) + bytes(9)
    assert one != two and diff.normalize(one) == diff.normalize(two) == frame6(echo6())
    assert diff.normalize(frame6(echo6(traffic_class=0x10))) != diff.normalize(frame6(echo6()))
    assert diff.normalize(echo6(flow_label=7), "ip") == echo6()


def test_the_kernels_router_solicitations_and_mld_reports_are_noise_and_nothing_else():
    solicitation = packet6(frames.icmpv6_message(133, 0, bytes(4), src="fe80::1", dst="ff02::2"),
                           src="fe80::1", dst="ff02::2", hop_limit=255)
    report = packet6(bytes.fromhex("3a00050200000100") + frames.icmpv6_message(143, 0, bytes(4), src="fe80::1",
                                                                               dst="ff02::16"),
                     next_header=0, src="fe80::1", dst="ff02::16", hop_limit=1)
    for noise in (solicitation, report):
        assert diff.is_kernel_noise(frame6(noise)) and diff.is_kernel_noise(noise, "ip")
    advertisement = packet6(frames.icmpv6_message(136, 0, bytes(4) + bytes(16)), hop_limit=255)
    for answer in (echo6(), advertisement):
        assert not diff.is_kernel_noise(frame6(answer)) and not diff.is_kernel_noise(answer, "ip")
    assert not diff.is_kernel_noise(echo_reply())  # IPv4


def covering(frame: bytes, medium: str = "ethernet") -> set[str]:
    return {d.name for d in diff.DELIBERATE_DIFFERENCES if medium in d.media and d.covers(frame)}


def test_each_ipv6_deliberate_difference_covers_its_packets_only():
    ns_body = IPv6Address(HOST6).packed
    unicast_ns = packet6(frames.icmpv6_message(135, 0, bytes(4) + ns_body, dst=HOST6), hop_limit=255)
    group = "ff02::1:ff00:2"
    multicast_ns = packet6(frames.icmpv6_message(135, 0, bytes(4) + ns_body, dst=group), dst=group, hop_limit=255)
    assert covering(frame6(unicast_ns)) == {"nd-unicast-solicitation"}
    assert covering(frame6(multicast_ns, bytes.fromhex("3333ff000002"))) == set()
    echo = frames.icmpv6_echo(128, 1, 1)
    for routing_type, covered in ((3, {"routing-types-linux-has"}), (4, {"routing-types-linux-has"}),
                                  (0, set()), (253, set())):
        packet = packet6(frames.routing_header(58, routing_type, 0) + echo, next_header=43)
        assert covering(frame6(packet)) == covered, routing_type
    to_all_nodes = packet6(frames.routing_header(58, 0, 0) + echo, next_header=43, dst="ff02::1")
    assert covering(frame6(to_all_nodes, bytes.fromhex("333300000001"))) == {"routing-header-not-to-host"}
    long_padding = packet6(frames.options_header(58, b"\x01\x06" + bytes(6)) + echo, next_header=60)
    short_padding = packet6(frames.options_header(58, b"\x01\x04" + bytes(4)) + echo, next_header=60)
    assert covering(frame6(long_padding)) == {"padding-linux-refuses"}
    assert covering(frame6(short_padding)) == set()
    stranger = "2001:db8::4d"
    hop_by_hop = packet6(frames.options_header(59, b"\x8b\x00"), next_header=0, dst=stranger)
    assert covering(frame6(hop_by_hop)) == {"hop-by-hop-not-ours"}
    assert covering(frame6(packet6(frames.options_header(59, b"\x8b\x00"), next_header=0))) == set()
    jumbo_shaped = packet6(b"", next_header=0) + frames.options_header(58, b"") + echo
    assert covering(frame6(jumbo_shaped)) == {"zero-length-hop-by-hop"}
    # Over TUN only: a stranger's address, our solicited-node group.
    tun = bytes(12) + b"\x86\xdd"
    assert covering(tun + echo6(dst=stranger), "ip") == {"no-route-over-tun"}
    assert covering(frame6(echo6(dst=stranger)), "ethernet") == set()
    assert covering(tun + echo6(dst=group), "ip") == {"solicited-node-over-tun"}
    assert covering(tun + echo6(), "ip") == covering(frame6(echo6())) == set()


def test_the_ipv6_stack_host_knows_the_peers_permanently_and_answers_at_once():
    stack = diff.StackHost(family=6)
    resolver = stack.host.ip6.resolver
    assert all(resolver.state(peer) is State.PERMANENT for peer in diff.PEERS6)
    [reply] = stack.answer(frame6(echo6()))
    assert reply[:6] == frames.mac("02:00:00:00:00:01") and reply[14 + 40] == 129
    [reply] = stack.answer(frame6(echo6(src="fe80::ff:fe00:3", dst="fe80::c0ff:fe00:202")))
    assert reply[:6] == frames.mac("02:00:00:00:00:03")


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.sampled_from(["ethernet", "ip"]).flatmap(lambda medium: st.tuples(
    st.just(medium), strategies.ipv6_packets(medium=medium))))
def test_the_ipv6_strategies_draw_packets_our_codec_and_dpkt_both_read(drawn):
    medium, data = drawn
    if medium == "ethernet":
        assert data[12:14] == b"\x86\xdd"
        data = data[14:]
    packet = Ipv6Packet.parse(data)
    try:
        packet.chain()  # the extension headers walk: well formed, but for a Hop-by-Hop header
    except diff.Ipv6ParseError as error:  # drawn out of place on purpose (RFC 8200 4)
        assert error.reason == "hop_by_hop_not_first"
    parsed = dpkt.ip6.IP6(data)
    assert parsed.plen == packet.payload_length == len(data) - 40
    assert (parsed.src, parsed.dst) == (packet.source.packed, packet.destination.packed)


@settings(max_examples=150, deadline=None)
@given(strategies.broken_ipv6(strategies.ipv6_echo_requests(medium="ip"), "ip"))
def test_broken_ipv6_breaks_what_it_says(drawn):
    how, data = drawn
    if how == "version":
        assert data[0] >> 4 != 6
    elif how == "payload_length_long":
        assert int.from_bytes(data[4:6], "big") > len(data) - 40
    elif how == "payload_length_short":
        assert int.from_bytes(data[4:6], "big") < len(data) - 40
    elif how == "truncate":
        assert len(data) < 40 + int.from_bytes(data[4:6], "big")
    elif how == "checksum":
        with pytest.raises(diff.ParseError):
            from stack.l3.icmpv6 import Icmpv6Message
            packet = Ipv6Packet.parse(data)
            Icmpv6Message.parse(packet.payload, packet.source, packet.destination)


@settings(max_examples=20)
@given(st.from_type(Ipv6Packet))
def test_ipv6_packet_values_are_registered_for_from_type(packet):
    assert isinstance(packet, Ipv6Packet) and packet.payload_length == len(bytes(packet)) - 40


@pytest.mark.parametrize("medium", ["ethernet", "ip"])
def test_tapstack_over_ipv6_against_itself_always_agrees(medium):
    class Twin6:
        def __init__(self) -> None:
            self.stack = diff.StackHost(medium, 6)

        def answer(self, frame: bytes) -> list[bytes]:
            return self.stack.answer(frame)

        def answer_train(self, fragments: tuple[bytes, ...]) -> list[bytes]:
            return self.stack.answer_train(fragments)

    comparison = diff.Comparison(Twin6(), diff.StackHost(medium, 6), medium, 6)
    assert diff.run_examples(comparison, 150, seed=5) is None
    assert comparison.tally.outcomes["disagree"] == 0 and comparison.tally.outcomes["agree"] > 100


# ---------------------------------------------------------------------- fragment trains (IPv4)

from bisect import bisect_left  # noqa: E402

from stack.l3 import reassembly  # noqa: E402
from stack.l3.icmp import IcmpMessage  # noqa: E402
from stack.l3.ipv4 import Ipv4Packet as Ipv4  # noqa: E402
from stack.tools.diff_trains import KINDS, Train, fragment_trains, linux_keeps_what_tapstack_discards  # noqa: E402


def _bare(fragment: bytes, medium: str) -> bytes:
    if medium == "ethernet":
        assert fragment[12:14] == b"\x08\x00"
        return fragment[14:]
    return fragment


@settings(max_examples=120, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.sampled_from(["ethernet", "ip"]).flatmap(lambda medium: st.tuples(st.just(medium),
                                                                            fragment_trains(medium))))
def test_fragment_trains_are_valid_fragments_of_their_datagram_for_our_codec_and_dpkt(drawn):
    medium, train = drawn
    assert train.kind in KINDS and len(train.fragments) == len(train.pieces) >= 1
    whole = Ipv4.parse(train.datagram)  # its header checksum verifies
    assert not whole.is_fragment and dpkt.ip.IP(train.datagram).len == len(train.datagram)
    data = join(whole.payload)
    if whole.protocol == 1:
        IcmpMessage.parse(data)  # a valid echo request: its checksum verifies
    else:
        udp = dpkt.udp.UDP(data)
        assert udp.ulen == len(data)
    covered = set()
    for (start, stop), fragment in zip(train.pieces, train.fragments):
        packet = Ipv4.parse(_bare(fragment, medium))
        oracle = dpkt.ip.IP(_bare(fragment, medium))
        assert (packet.source, packet.destination, packet.protocol, packet.identification) == \
            (whole.source, whole.destination, whole.protocol, whole.identification)
        assert packet.fragment_offset * 8 == start == oracle.offset * 8  # dpkt: in 8-octet units
        assert len(packet.payload) == stop - start == oracle.len - 20
        assert packet.more_fragments == bool(oracle.mf) and packet.dont_fragment == bool(oracle.df)
        if train.kind == "atomic":  # RFC 6864: DF set, not a fragment
            assert packet.dont_fragment and not packet.is_fragment and (start, stop) == (0, len(data))
            continue
        assert packet.is_fragment and not packet.dont_fragment
        if start == stop:  # the empty fragment
            assert train.kind == "empty" and packet.more_fragments
            continue
        # RFC 791 3.2: MF on all but the last; 8-octet multiples but the last
        assert packet.more_fragments == (stop < len(data)) and (stop == len(data) or stop % 8 == 0)
        assert stop - start + 20 <= 1500
        if join(packet.payload) == data[start:stop]:
            covered.add((start, stop))
        else:
            assert train.kind == "overlap"  # the overlapping fragment may carry other bytes
    pieces = sorted(piece for piece in set(train.pieces) if piece[0] != piece[1])
    if train.kind in ("in-order", "reversed", "shuffled", "duplicate", "empty"):
        assert [a for a, _ in pieces] == [0, *(b for _, b in pieces[:-1])] and pieces[-1][1] == len(data)
    if train.kind == "incomplete":  # one piece missing
        holes = [a for a, _ in pieces[1:]] != [b for _, b in pieces[:-1]]
        assert holes or pieces[0][0] != 0 or pieces[-1][1] != len(data)
    if train.kind == "duplicate":
        assert len(train.fragments) > len(set(train.fragments))


def _train(kind: str, pieces: list[tuple[int, int]], message: bytes, medium: str = "ip") -> Train:
    """A train of an echo request to the host from the TUN peer, cut as ``pieces`` say."""
    def fragment(start: int, stop: int) -> bytes:
        packet = bytes(Ipv4(diff.TUN_PEER, diff.HOST.ip, 1, message[start:stop], identification=77,
                            more_fragments=stop < len(message) or start == stop, fragment_offset=start // 8))
        if medium == "ethernet":
            return frames.ethernet_frame(bytes(diff.HOST_MAC), bytes(diff.PEERS[diff.TUN_PEER]), 0x0800, packet)
        return packet
    whole = bytes(Ipv4(diff.TUN_PEER, diff.HOST.ip, 1, message, identification=77))
    return Train(kind, whole, tuple(fragment(*piece) for piece in pieces), tuple(pieces))


ECHO = bytes(IcmpMessage.echo(8, 7, 1, bytes(range(24))))  # 32 bytes: [0, 8), [8, 32)


@pytest.mark.parametrize("medium", ["ethernet", "ip"])
def test_rfc1122_3_3_2_an_incomplete_train_gets_its_time_exceeded_in_its_own_example(medium):
    stack = diff.StackHost(medium)
    before = stack.now
    [error] = stack.answer_train(_train("incomplete", [(0, 8)], ECHO, medium).fragments)
    packet = Ipv4.parse(_bare(error, medium))
    message = join(packet.payload)
    assert message[:2] == bytes([11, 1])  # RFC 792: Time Exceeded, fragment reassembly time exceeded
    assert message[8:8 + 28] == _bare(_train("incomplete", [(0, 8)], ECHO, medium).fragments[0], medium)
    assert stack.now >= before + diff.REASSEMBLY_TIMEOUT_S and not stack.host.ip.reassembler.partials
    # The first fragment missing: no Time Exceeded (RFC 1122 3.3.2), and nothing left behind.
    assert stack.answer_train(_train("incomplete", [(8, 32)], ECHO, medium).fragments) == []
    assert not stack.host.ip.reassembler.partials
    # Then a whole train is answered at once, its clock a second on.
    [reply] = stack.answer_train(_train("in-order", [(0, 8), (8, 32)], ECHO, medium).fragments)
    assert join(Ipv4.parse(_bare(reply, medium)).payload)[0] == 0


class StoresEmptyFragments(reassembly.Reassembler):
    """The reassembler before issue 13's fix: an empty fragment with more to come is stored."""

    def add(self, packet, raw, now):
        if packet.more_fragments and not len(packet.payload):
            key = (packet.source, packet.destination, packet.protocol, packet.identification)
            partial = self.partials.setdefault(key, reassembly.Partial(started_at=now))
            index = bisect_left(partial.starts, packet.fragment_offset * 8)
            partial.starts.insert(index, packet.fragment_offset * 8)
            partial.pieces.insert(index, b"")
            return reassembly.Outcome()
        return super().add(packet, raw, now)


def _before_the_fix(medium: str = "ethernet") -> diff.StackHost:
    stack = diff.StackHost(medium)
    stack.host.ip.reassembler = StoresEmptyFragments(timeout=diff.REASSEMBLY_TIMEOUT_S)
    return stack


def test_the_issue_13_train_with_the_old_reassembler_is_a_disagreement():
    """The train Linux reassembles (tests/root/test_fragments_device.py): an empty fragment at
    offset 8 first, then the datagram. tapstack as it was answered nothing."""
    train = _train("empty", [(8, 8), (0, 8), (8, 32)], ECHO)
    assert diff.Comparison(diff.StackHost("ip"), diff.StackHost("ip"), "ip").compare(train).verdict == "agree"
    outcome = diff.Comparison(diff.StackHost("ip"), _before_the_fix("ip"), "ip").compare(train)
    assert outcome.verdict == "disagree" and len(outcome.kernel) == 1 and outcome.stack == []


def test_the_diff_finds_the_issue_13_bug_by_itself():
    """With tapstack as the kernel (it takes an empty fragment as Linux does) and tapstack before
    the fix under test, the generated examples find a train with an empty fragment, shrunk."""
    comparison = diff.Comparison(Twin(), _before_the_fix())
    outcome = diff.run_examples(comparison, 500, seed=1)
    assert outcome is not None and outcome.verdict == "disagree" and outcome.train is not None
    assert any(start == stop for start, stop in outcome.train.pieces)  # an empty fragment
    assert len(outcome.train.fragments) <= 4  # shrunk
    text = outcome.describe()
    assert text.startswith("fragment train (") and "linux" in text and "tapstack" in text


@pytest.mark.parametrize("pieces, linux_keeps", [
    ([(0, 8), (8, 16), (0, 16), (16, 32)], True),  # inside a run that came in order
    ([(0, 16), (0, 8), (16, 32)], True),  # inside one fragment
    ([(8, 16), (0, 8), (0, 16), (16, 32)], False),  # over two runs: Linux discards too
    ([(0, 8), (0, 16), (16, 32)], False),  # past the end of what is held
    ([(0, 8), (0, 8), (8, 32)], False),  # an exact duplicate: both keep the datagram
    ([(0, 8), (8, 32), (0, 16), (16, 32)], False),  # after completion: a new datagram
    ([(0, 8), (8, 16), (16, 16), (0, 16), (16, 32)], False),  # an empty fragment discarded it all first
])
def test_the_overlap_linux_keeps_is_a_deliberate_difference_of_the_train_only(pieces, linux_keeps):
    train = _train("overlap", pieces, ECHO)
    assert linux_keeps_what_tapstack_discards(train) == linux_keeps
    covered = {d.name for d in diff.DELIBERATE_DIFFERENCES if d.covers_train is not None and d.covers_train(train)}
    assert covered == ({"ipv4-fragment-inside-a-run"} if linux_keeps else set())
    assert not any(d.covers(bytes(12) + b"\x08\x00" + train.datagram) for d in diff.DELIBERATE_DIFFERENCES)


# ---------------------------------------------------------------------- fragment trains (IPv6)

from stack.l3.ipv6 import FragmentHeader  # noqa: E402
from stack.tools.diff_trains import fragment_trains6, where_linux_differs  # noqa: E402


@settings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.sampled_from(["ethernet", "ip"]).flatmap(lambda medium: st.tuples(st.just(medium),
                                                                            fragment_trains6(medium))))
def test_ipv6_fragment_trains_are_fragments_of_their_packet_for_our_codec_and_dpkt(drawn):
    medium, train = drawn
    whole = Ipv6Packet.parse(train.datagram)
    message = join(whole.payload)
    assert whole.next_header in (58, 17) and train.length == len(message)
    for (start, stop), fragment in zip(train.pieces, train.fragments):
        if medium == "ethernet":
            assert fragment[12:14] == b"\x86\xdd"
            fragment = fragment[14:]
        packet = Ipv6Packet.parse(fragment)
        if start == stop == 0:  # an empty first fragment: the codec refuses it (RFC 7112)
            with pytest.raises(diff.Ipv6ParseError):
                packet.chain()
        header = packet.chain().fragment if start != stop or start else None
        assert packet.next_header == 44 and (packet.source, packet.destination) == (whole.source, whole.destination)
        assert dpkt.ip6.IP6(fragment).plen == packet.payload_length == 8 + stop - start
        fragment_header = FragmentHeader(*_fragment_fields(fragment[40:48]))
        assert fragment_header.fragment_offset * 8 == start and fragment_header.next_header == whole.next_header
        assert header is None or header == fragment_header
        if train.kind == "atomic":  # RFC 6946
            assert fragment_header.is_atomic and fragment[48:] == message
        elif start != stop:
            assert fragment_header.more_fragments == (stop < len(message))


def _fragment_fields(data: bytes) -> tuple[int, int, bool, int]:
    offset_flags = int.from_bytes(data[2:4], "big")
    return data[0], offset_flags >> 3, bool(offset_flags & 1), int.from_bytes(data[4:8], "big")


def test_tapstack_over_ipv6_fragment_trains_against_itself_agrees_and_waits_out_its_timer():
    twin = Twin()
    twin.stack = diff.StackHost("ethernet", 6)
    comparison = diff.Comparison(twin, diff.StackHost("ethernet", 6), "ethernet", 6)
    assert diff.run_examples(comparison, 150, seed=2) is None
    assert comparison.tally.trains > 15 and comparison.tally.outcomes["disagree"] == 0
    for stack in (comparison.kernel.stack, comparison.stack):
        assert stack.host.ip6.reassembler.timeout == diff.REASSEMBLY_TIMEOUT_S
        assert not stack.host.ip6.reassembler.partials


@pytest.mark.parametrize("pieces, ipv4, ipv6", [
    ([(0, 8), (8, 16), (0, 16), (16, 32)], "inside-a-run", "inside-a-run"),
    ([(0, 16), (8, 24), (0, 8), (8, 32)], None, "after-an-overlap"),  # IPv4: anew, both alike
    ([(0, 16), (8, 32)], None, None),  # an overlap, nothing after it
    ([(0, 8), (8, 32)], None, None),
])
def test_where_linux_reassembles_unlike_tapstack(pieces, ipv4, ipv6):
    v4 = _train("overlap", pieces, ECHO)
    v6 = Train("overlap", frames.ipv6_packet(ECHO, 58), (), tuple(pieces))
    assert (where_linux_differs(v4), where_linux_differs(v6)) == (ipv4, ipv6)
    names = {d.name for d in diff.DELIBERATE_DIFFERENCES if d.covers_train is not None and d.covers_train(v6)}
    assert names == ({f"ipv6-fragment{'s' if ipv6 == 'after-an-overlap' else ''}-{ipv6}"} if ipv6 else set())
