"""The machinery of ``tapstack diff`` without the kernel: normalising, the allow-list, the
verdicts, and hypothesis shrinking a disagreement to a small frame."""

from __future__ import annotations

import dpkt

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


def test_tapstack_against_itself_always_agrees():
    comparison = diff.Comparison(Twin(), diff.StackHost())
    assert diff.run_examples(comparison, 200, seed=3) is None
    assert comparison.tally.outcomes["disagree"] == 0 and comparison.tally.outcomes["agree"] > 150


def test_a_difference_on_the_allow_list_is_counted_as_deliberate():
    def tcp_reset(frame: bytes, out: list[bytes]) -> list[bytes]:
        packet = diff._ipv4_to_host(frame)
        return [b"a reset"] if packet is not None and packet.protocol == 6 else out

    comparison = diff.Comparison(Twin(tcp_reset), diff.StackHost())
    assert diff.run_examples(comparison, 300, seed=3) is None
    assert comparison.tally.allowed["tcp"] > 0


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

    comparison = diff.Comparison(TunTwin(), diff.StackHost("ip"), "ip")
    assert diff.run_examples(comparison, 150, seed=4) is None
    assert comparison.tally.outcomes["disagree"] == 0 and comparison.tally.outcomes["agree"] > 100


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
