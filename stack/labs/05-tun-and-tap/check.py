"""Lab 05 checker: TUN versus TAP, and the packet-information header. ``tapstack lab check 05``."""

import dpkt

from stack.tools.lab import Checker, icmp_message, ipv4

check = Checker()
LINKTYPE_ETHERNET, LINKTYPE_RAW = 1, 101


def linktype(rig):
    with open(rig.pcap_path, "rb") as file:
        return dpkt.pcap.Reader(file).datalink()


@check.item("over TAP: Ethernet frames (pcap link type 1), ARP first, a ping reply is 98 bytes")
def over_tap(ctx):
    with ctx.rig("ethernet") as rig:
        outcome = rig.ping(count=2)
        assert outcome.received == 2, outcome.output
        assert linktype(rig) == LINKTYPE_ETHERNET
        frames = rig.capture()
        assert any(f[12:14] == b"\x08\x06" for f in frames), "no ARP on a TAP link?"
        replies = [f for f in frames if f[12:14] == b"\x08\x00" and f[14 + 12:14 + 16] == rig.host_ip.packed]
        assert replies and {len(f) for f in replies} == {98}, [len(f) for f in replies]


@check.item("over TUN: bare IPv4 packets (pcap link type 101), no ARP, a ping reply is 84 bytes")
def over_tun(ctx):
    with ctx.rig("ip") as rig:
        outcome = rig.ping(count=2)
        assert outcome.received == 2, outcome.output
        assert linktype(rig) == LINKTYPE_RAW
        packets = rig.capture()
        assert packets and all(p[0] >> 4 == 4 for p in packets), "every packet starts with version 4"
        assert "ARP" not in rig.trace and rig.stats["rx_arp"] == 0
        replies = [p for p in packets if p[12:16] == rig.host_ip.packed]
        assert replies and {len(p) for p in replies} == {84}, [len(p) for p in replies]


@check.item("over TUN with packet information: every packet read starts with flags 0, protocol 0x0800")
def with_packet_information(ctx):
    with ctx.rig("ip", packet_info=True) as rig:
        outcome = rig.ping(count=2)
        assert outcome.received == 2, outcome.output
        inbound = [line for line in rig.trace.splitlines() if line.startswith("In ")]
        assert inbound and all("pi flags 0x0 proto 0x0800" in line for line in inbound), rig.trace
        # The capture is raw IP either way: the 4-byte header is the device's, not the packet's.
        assert linktype(rig) == LINKTYPE_RAW and all(p[0] == 0x45 for p in rig.capture())


@check.item("over TUN: an IPv6 packet is counted and dropped (tun_ipv6_not_supported), with or without PI")
def ipv6_on_tun(ctx):
    packet = bytes.fromhex("60000000 0000 3a40") + bytes(32)  # an IPv6 header, no payload
    for packet_info in (False, True):
        with ctx.rig("ip", packet_info=packet_info) as rig:
            changed = rig.send(packet)
            assert changed.get("drop.tun_ipv6_not_supported") == 1, f"counters that changed: {changed}"


@check.item("the same echo request is answered on TAP and on TUN, with the same IPv4 reply")
def same_ip_both_ways(ctx):
    request = ipv4(icmp_message(8, 0, b"\x00\x05\x00\x01", b"same either way"))
    replies = []
    for medium in ("ethernet", "ip"):
        with ctx.rig(medium) as rig:
            frame = request if medium == "ip" else (
                bytes.fromhex(rig.host_mac.replace(":", "")) + bytes.fromhex(rig.peer_mac.replace(":", ""))
                + b"\x08\x00" + request)
            rig.send(frame)
            sent = [bytes(d) for d in rig.sent_by_host()]
            assert sent, "no reply"
            replies.append(sent[-1])
    # Identification aside (bytes 4-5, and so the checksum, bytes 10-11), the datagrams are the same.
    tap, tun = replies
    assert tap[:4] + tap[6:10] + tap[12:] == tun[:4] + tun[6:10] + tun[12:]


@check.item("answers.toml: the sizes of a default ping reply on each link")
def answer_sizes(ctx):
    tap_size = ctx.answers.number("tap_reply_bytes")
    tun_size = ctx.answers.number("tun_reply_bytes")
    with ctx.rig("ethernet") as rig:
        rig.ping(count=1)
        tap_sizes = {len(f) for f in rig.capture() if f[12:14] == b"\x08\x00" and f[26:30] == rig.host_ip.packed}
    with ctx.rig("ip") as rig:
        rig.ping(count=1)
        tun_sizes = {len(p) for p in rig.capture() if p[12:16] == rig.host_ip.packed}
    assert tap_size in tap_sizes, f"tap_reply_bytes = {tap_size}: Ethernet header + IPv4 + ICMP + 56 data"
    assert tun_size in tun_sizes, f"tun_reply_bytes = {tun_size}: what does a TUN device leave out?"


@check.item("answers.toml: the 4 packet-information bytes in front of an IPv4 packet")
def answer_packet_information(ctx):
    given = ctx.answers.text("packet_information_hex").lower().replace(" ", "").replace(":", "")
    with ctx.rig("ip", packet_info=True) as rig:
        rig.ping(count=1)
        seen = {line.split("pi flags ", 1)[1].split(":", 1)[0] for line in rig.trace.splitlines()
                if "pi flags" in line}
    flags, protocol = 0, 0x0800  # what the trace shows: "pi flags 0x0 proto 0x0800"
    assert seen == {"0x0 proto 0x0800"}, seen
    expected = flags.to_bytes(2, "little").hex() + protocol.to_bytes(2, "big").hex()
    assert given == expected, (f"packet_information_hex = {given!r}: two bytes of flags (host order), "
                               "then the EtherType of the packet (network order), as hex")
