"""The IPv6 host on an Ethernet link (issue 14): Neighbor Discovery, DAD and MLD wired into
``TapHost``, frame in, frames out.

Frames in are laid out by hand (stack.testing.frames, checksums by dpkt); frames out are read
back with dpkt, never with the codecs under test. The kernel side is 2001:db8::1 at
02:00:00:00:00:01; the host 2001:db8::2 at 02:00:00:00:00:02 (``--mac``), whose link-local
address is fe80::ff:fe00:2 (RFC 4291 appendix A).
"""

from __future__ import annotations

from ipaddress import IPv6Address

import dpkt
import pytest

from stack import TapHost
from stack.buffers import join
from stack.testing import frames as f
from stack.testing.frames import HOST_IP6, KERNEL_IP6

KERNEL_MAC, HOST_MAC = bytes.fromhex("020000000001"), bytes.fromhex("020000000002")
LINK_LOCAL = "fe80::ff:fe00:2"


def host(*more: str, dad: int = 0) -> TapHost:
    return TapHost(["192.0.2.2/24", f"{HOST_IP6}/64", *more], mac="02:00:00:00:00:02", dad_transmits=dad)


def eth6(packet: bytes, dst: bytes = HOST_MAC, src: bytes = KERNEL_MAC) -> bytes:
    return f.ethernet_frame(dst, src, 0x86DD, packet)


def option(kind: int, mac: bytes) -> bytes:
    """A source (1) or target (2) link-layer address option (RFC 4861 4.6.1)."""
    return bytes([kind, 1]) + mac


def solicitation(target: str, src: str = KERNEL_IP6, dst: str | None = None, slla: bool = True) -> bytes:
    dst = dst or str(IPv6Address(int(IPv6Address("ff02::1:ff00:0")) | int(IPv6Address(target)) & 0xFFFFFF))
    body = bytes(4) + f.ip6(target) + (option(1, KERNEL_MAC) if slla else b"")
    packet = f.ipv6_packet(f.icmpv6_message(135, 0, body, src=src, dst=dst), src=src, dst=dst, hop_limit=255)
    return eth6(packet, dst=bytes.fromhex("3333") + f.ip6(dst)[12:])


def advertisement(target: str, flags: int = 0x60000000, src: str = KERNEL_IP6, dst: str = HOST_IP6) -> bytes:
    body = flags.to_bytes(4, "big") + f.ip6(target) + option(2, KERNEL_MAC)
    return eth6(f.ipv6_packet(f.icmpv6_message(136, 0, body, src=src, dst=dst), src=src, dst=dst, hop_limit=255))


def echo(dst: str = HOST_IP6, src: str = KERNEL_IP6) -> bytes:
    return eth6(f.ipv6_packet(f.icmpv6_echo(128, 7, 1, b"abcdefgh", src=src, dst=dst), src=src, dst=dst))


def read(frames_out) -> list[tuple[dpkt.ethernet.Ethernet, dpkt.ip6.IP6 | None]]:
    out = []
    for frame in frames_out:
        ethernet = dpkt.ethernet.Ethernet(join(frame))
        out.append((ethernet, dpkt.ip6.IP6(bytes(ethernet.data)) if ethernet.type == 0x86DD else None))
    return out


def test_rfc4862_5_4_2_mld_report_then_dad_probe_then_the_address_is_used():
    tap = host(dad=1)
    started = [(e, ip) for e, ip in read(tap.poll(0.0)) if ip is not None]
    # RFC 4862 5.4.2: the solicited-node group is joined (reported, RFC 3810) before the probe.
    kinds = [bytes(ip.data)[0] for _, ip in started]  # dpkt: ip.data is the upper layer
    assert kinds[0] == 143 and 135 in kinds, kinds
    probe_ethernet, probe = next((e, ip) for e, ip in started if ip.nxt == 58 and ip.data.type == 135)
    assert probe.src == bytes(16)  # RFC 4862 5.4.2: from the unspecified address
    assert probe_ethernet.dst == bytes.fromhex("3333ff000002")  # its solicited-node group's MAC
    # While tentative, an echo to the address is dropped (RFC 4862 5.4).
    assert tap.receive(echo(), 0.5) == [] and tap.verdict.drop_reason == "ipv6_tentative_destination"
    tap.poll(1.0)
    tap.poll(2.0)  # RetransTimer after the probe: usable
    assert tap.ip6.usable(IPv6Address(HOST_IP6))


def test_rfc4861_7_2_4_a_solicitation_is_answered_solicited_override_with_our_mac():
    tap = host()
    ((ethernet, ip),) = read(tap.receive(solicitation(HOST_IP6), 1.0))
    assert ethernet.dst == KERNEL_MAC and ethernet.src == HOST_MAC
    assert ip.hlim == 255 and ip.src == f.ip6(HOST_IP6) and ip.dst == f.ip6(KERNEL_IP6)
    body = bytes(ip.data)
    assert body[0] == 136 and body[4] & 0x60 == 0x60  # S and O set
    assert body[8:24] == f.ip6(HOST_IP6) and body[24:32] == option(2, HOST_MAC)


def test_an_echo_after_the_solicitation_is_answered_to_the_solicitors_mac():
    tap = host()
    tap.receive(solicitation(HOST_IP6), 1.0)
    ((ethernet, ip),) = read(tap.receive(echo(), 1.1))
    assert ethernet.dst == KERNEL_MAC and ip.data.type == 129 and ip.data.data.id == 7


def test_rfc4861_7_2_2_an_unknown_neighbour_is_solicited_and_the_reply_held_until_it_answers():
    tap = host()
    ((ethernet, ip),) = read(tap.receive(echo(), 1.0))
    assert ip.data.type == 135 and ethernet.dst == bytes.fromhex("3333ff000001")
    assert bytes(ip.data)[8:24] == f.ip6(KERNEL_IP6)
    ((ethernet, ip),) = read(tap.receive(advertisement(KERNEL_IP6), 1.2))
    assert ethernet.dst == KERNEL_MAC and ip.data.type == 129  # the held reply, now resolved


def test_the_link_local_address_answers_too():
    tap = host()
    local_peer = "fe80::1"
    tap.receive(solicitation(LINK_LOCAL, src=local_peer), 1.0)
    ((ethernet, ip),) = read(tap.receive(echo(dst=LINK_LOCAL, src=local_peer), 1.1))
    assert ip.src == f.ip6(LINK_LOCAL) and ip.data.type == 129


def test_rfc2464_7_frames_to_other_groups_macs_are_not_for_us():
    tap = host()
    other_group = eth6(f.ipv6_packet(b"", next_header=59, dst="ff02::1:ff00:99"), dst=bytes.fromhex("3333ff000099"))
    assert tap.receive(other_group, 1.0) == [] and tap.verdict.drop_reason == "ethernet_not_for_us"
    all_nodes = eth6(f.ipv6_packet(b"", next_header=59, dst="ff02::1"), dst=bytes.fromhex("333300000001"))
    assert tap.receive(all_nodes, 1.0) == [] and tap.verdict.drop_reason is None


def test_a_lan_of_ipv6_hosts_each_answers_from_its_own_mac():
    tap = TapHost(["2001:db8::10/64", "2001:db8::11/64"], dad_transmits=0)
    for last in ("10", "11"):
        ((ethernet, ip),) = read(tap.receive(solicitation(f"2001:db8::{last}"), 1.0))
        assert ethernet.src == bytes.fromhex(f"0200000000{last}"), ethernet.src.hex()
        assert bytes(ip.data)[24:32] == option(2, bytes.fromhex(f"0200000000{last}"))
    assert IPv6Address("fe80::ff:fe00:10") in tap.addresses and IPv6Address("fe80::ff:fe00:11") in tap.addresses


@pytest.mark.parametrize("ips, mac", [(["192.0.2.2/24", "2001:db8::2/64"], "02:00:c0:00:02:02"),
                                      (["2001:db8::2/64"], "02:00:00:00:00:02")])
def test_the_nth_ipv6_address_shares_the_nth_ipv4_hosts_mac(ips, mac):
    tap = TapHost(ips, dad_transmits=0)
    ((ethernet, _),) = read(tap.receive(solicitation(HOST_IP6), 1.0))
    assert ethernet.src.hex(":") == mac


def test_our_ping_over_ethernet_resolves_first():
    tap = host()
    ((_, ip),) = read(tap.ping(KERNEL_IP6, 1.0, identifier=9, sequence=1))
    assert ip.data.type == 135  # the request waits for Neighbor Discovery
    ((ethernet, ip),) = read(tap.receive(advertisement(KERNEL_IP6), 1.1))
    assert ethernet.dst == KERNEL_MAC and ip.data.type == 128 and ip.data.data.id == 9


def test_the_dad_transmits_choice_reaches_neighbor_discovery():
    # RFC 4862 5.1: ``--dad-transmits 3`` sends three probes for each address, a second apart.
    tap = TapHost([f"{HOST_IP6}/64"], mac="02:00:00:00:00:02", dad_transmits=3)
    for tenth in range(0, 35):
        tap.poll(tenth / 10)
    # Two addresses (the global one and fe80::ff:fe00:2), three probes each, then both usable.
    assert tap.stats["nd_dad_probes_sent"] == 6 and tap.stats["nd_dad_passed"] == 2
