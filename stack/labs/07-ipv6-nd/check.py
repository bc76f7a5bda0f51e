"""Lab 07 checker: IPv6 and Neighbor Discovery. ``tapstack lab check 07`` or ``pytest stack/labs/07-ipv6-nd``.

Frames are decoded here (dpkt for the IPv6 header, the ICMPv6 fields by hand from RFC 4861 4.3,
4.4 and RFC 3810 5.2), never with tapstack's own codecs.
"""

from dataclasses import dataclass
from ipaddress import IPv6Address, IPv6Interface

import dpkt

from stack.tools.lab import PEER_MAC, Checker, Ipv6Link, icmpv6_message, ipv6, on_link

check = Checker()

IPV6 = b"\x86\xdd"
HOP_BY_HOP = 0
ICMPV6 = 58
NEIGHBOR_SOLICITATION, NEIGHBOR_ADVERTISEMENT, MLD_V2_REPORT = 135, 136, 143
SOURCE_LINK_LAYER, TARGET_LINK_LAYER = 1, 2
ALL_NODES = IPv6Address("ff02::1")
ALL_MLDV2_ROUTERS = IPv6Address("ff02::16")
UNSPECIFIED = IPv6Address("::")
#: RFC 4861 7.1.1: a Neighbor Solicitation is valid only with this hop limit.
ND_HOP_LIMIT = 255
#: The MAC and the address of the "compute one" questions (the checker starts tapstack with them).
QUESTION_MAC = "02:1a:2b:3c:4d:5e"
QUESTION_ADDRESS = IPv6Interface("2001:db8::bc:1234:5678/64")
#: The DAD item and question: ``--dad-transmits 2``.
DAD_TRANSMITS = 2


@dataclass
class Icmpv6:
    """One ICMPv6 message in the capture, with the Ethernet and IPv6 fields around it."""

    time: float
    source_mac: str
    destination_mac: str
    source: IPv6Address
    destination: IPv6Address
    hop_limit: int
    router_alert: bool
    message: bytes

    @property
    def type(self):
        return self.message[0]

    @property
    def target(self):
        """An NS's or NA's Target Address (RFC 4861 4.3, 4.4: bytes 8-23)."""
        return IPv6Address(self.message[8:24])

    @property
    def solicited(self):
        return self.message[4] >> 6 & 1  # RFC 4861 4.4: R S O, the top three bits

    @property
    def override(self):
        return self.message[4] >> 5 & 1

    def option(self, kind):
        """The data of the first ND option of ``kind`` (RFC 4861 4.6: type, length in 8 bytes)."""
        options = self.message[24:]
        while len(options) >= 8 and options[1]:
            if options[0] == kind:
                return options[2:options[1] * 8]
            options = options[options[1] * 8:]
        return None

    def link_layer_address(self, kind):
        data = self.option(kind)
        return None if data is None else data[:6].hex(":")

    @property
    def groups(self):
        """An MLDv2 report's multicast address records (RFC 3810 5.2): (record type, group)."""
        records, body = [], self.message[8:]
        for _ in range(int.from_bytes(self.message[6:8], "big")):
            auxiliary, sources = body[1] * 4, int.from_bytes(body[2:4], "big")
            records.append((body[0], IPv6Address(body[4:20])))
            body = body[20 + 16 * sources + auxiliary:]
        return records


def icmpv6_messages(rig):
    """Every ICMPv6 message in the capture (a TAP rig), in order."""
    found = []
    for time, frame in rig.timed_capture():
        if frame[12:14] != IPV6:
            continue
        packet = dpkt.ip6.IP6(frame[14:])
        payload = frame[14 + 40:14 + 40 + packet.plen]
        next_header, router_alert = packet.nxt, False
        if next_header == HOP_BY_HOP:
            length = (payload[1] + 1) * 8
            router_alert = b"\x05\x02\x00\x00" in payload[2:length]  # RFC 2711: type 5, value 0 (MLD)
            next_header, payload = payload[0], payload[length:]
        if next_header == ICMPV6:
            found.append(Icmpv6(time, frame[6:12].hex(":"), frame[0:6].hex(":"), IPv6Address(packet.src),
                                IPv6Address(packet.dst), packet.hlim, router_alert, payload))
    return found


def of_type(rig, kind, source_mac=None):
    return [m for m in icmpv6_messages(rig) if m.type == kind and (source_mac is None or m.source_mac == source_mac)]


def modified_eui64_link_local(mac):
    """RFC 4291 2.5.1 and appendix A, RFC 4862 5.3: fe80::/64 + the MAC with ff:fe in the middle
    and the universal/local bit (0x02 of the first byte) inverted."""
    octets = bytes.fromhex(mac.replace(":", ""))
    identifier = bytes([octets[0] ^ 0x02]) + octets[1:3] + b"\xff\xfe" + octets[3:]
    return IPv6Address(b"\xfe\x80" + bytes(6) + identifier)


def solicited_node(address):
    """RFC 4291 2.7.1: ff02::1:ff00:0/104 and the low 24 bits of the address."""
    return IPv6Address(int(IPv6Address("ff02::1:ff00:0")) | int(address) & 0xFFFFFF)


def neighbor_solicitation(source, target, destination, mac, hop_limit=ND_HOP_LIMIT):
    """An NS for ``target`` from ``source`` (with a source link-layer option of ``mac``, unless
    ``source`` is ::) to ``destination``, as an IPv6 packet."""
    options = b"" if source == UNSPECIFIED else bytes([SOURCE_LINK_LAYER, 1]) + bytes.fromhex(mac.replace(":", ""))
    message = icmpv6_message(NEIGHBOR_SOLICITATION, 0, bytes(4) + target.packed + options, source, destination)
    return ipv6(message, source, destination, hop_limit=hop_limit)


def ethernet(destination_mac, source_mac, packet):
    return bytes.fromhex(destination_mac.replace(":", "") + source_mac.replace(":", "")) + IPV6 + packet


def multicast_mac(group):
    """RFC 2464 7: 33:33 and the low 32 bits of the group."""
    return "33:33:" + group.packed[12:].hex(":")


def address_answer(ctx, key):
    text = ctx.answers.text(key)
    try:
        return IPv6Address(text.split("/")[0])
    except ValueError:
        raise AssertionError(f"{key} = {text!r} is not an IPv6 address (e.g. \"2001:db8::1\")") from None


def mac_answer(ctx, key):
    return ctx.answers.text(key).lower().replace("-", ":")


def flag_answer(ctx, key):
    value = ctx.answers.number(key)
    assert value in (0, 1), f"{key} = {value}: a flag is 0 or 1"
    return value


# ---------------------------------------------------------------------- the stack's part


@check.item("tapstack's link-local address is fe80:: and its MAC's modified EUI-64 (RFC 4291 2.5.1, RFC 4862 5.3)")
def link_local(ctx):
    with ctx.rig(ipv6=Ipv6Link()) as rig:
        expected = modified_eui64_link_local(rig.host_mac)
        reports = of_type(rig, MLD_V2_REPORT, rig.host_mac)
        announced = {m.target for m in of_type(rig, NEIGHBOR_ADVERTISEMENT, rig.host_mac)}
    assert reports and all(m.source == expected for m in reports), (
        f"tapstack's MLD reports come from {[str(m.source) for m in reports]}, not its link-local {expected}")
    assert expected in announced, f"tapstack announced {sorted(map(str, announced))}, not {expected}"


@check.item("a ping over IPv6 starts with NS/NA: the peer asks the solicited-node group, tapstack answers unicast")
def neighbor_exchange(ctx):
    with ctx.rig(ipv6=Ipv6Link()) as rig:
        outcome = rig.ping(count=1)
        assert outcome.received == 1, f"the ping was not answered:\n{outcome.output}"
        group = solicited_node(rig.host_ip)
        asked = [m for m in of_type(rig, NEIGHBOR_SOLICITATION, rig.peer_mac) if m.target == rig.host_ip]
        assert asked, f"no NS for {rig.host_ip} from the peer in the capture"
        solicitation = asked[0]
        # RFC 4861 7.2.2: to the target's solicited-node group, at its 33:33 MAC (RFC 2464 7).
        assert solicitation.destination == group and solicitation.destination_mac == multicast_mac(group)
        assert solicitation.link_layer_address(SOURCE_LINK_LAYER) == rig.peer_mac, "the NS names the asker's MAC"
        answers = [m for m in of_type(rig, NEIGHBOR_ADVERTISEMENT, rig.host_mac)
                   if m.destination == solicitation.source]
        assert answers, "tapstack sent no Neighbor Advertisement to the asker"
        answer = answers[0]
        # RFC 4861 7.2.4: unicast to the asker, S=1, O=1, the target link-layer option.
        assert answer.destination_mac == rig.peer_mac and answer.target == rig.host_ip
        assert (answer.solicited, answer.override) == (1, 1), (answer.solicited, answer.override)
        assert answer.link_layer_address(TARGET_LINK_LAYER) == rig.host_mac
        assert "neighbor advertisement, tgt is 2001:db8::2" in rig.trace


@check.item("tapstack reports its solicited-node group in MLDv2: to ff02::16, hop limit 1, Router Alert (RFC 3810)")
def mld_report(ctx):
    with ctx.rig(ipv6=Ipv6Link()) as rig:
        reports = of_type(rig, MLD_V2_REPORT, rig.host_mac)
    assert reports, "tapstack sent no MLDv2 report"
    for report in reports:
        assert report.destination == ALL_MLDV2_ROUTERS and report.destination_mac == multicast_mac(ALL_MLDV2_ROUTERS)
        assert report.hop_limit == 1 and report.router_alert, "RFC 3810 5: hop limit 1 and a Router Alert option"
    groups = {group for _, group in reports[0].groups}
    assert solicited_node(rig.host_ip) in groups, f"the report names {sorted(map(str, groups))}"
    assert ALL_NODES not in groups, "RFC 3810 6: ff02::1 is never reported"


@check.item("an NS with hop limit 64 is dropped (icmpv6_nd_bad_hop_limit, RFC 4861 7.1.1); with 255 it is answered")
def hop_limit(ctx):
    with ctx.rig(ipv6=Ipv6Link()) as rig:
        group = solicited_node(rig.host_ip)
        for hops, answered in ((64, False), (ND_HOP_LIMIT, True)):
            packet = neighbor_solicitation(rig.peer_ip, rig.host_ip, group, rig.peer_mac, hop_limit=hops)
            changed = rig.send(on_link(rig, packet, destination_mac=multicast_mac(group)))
            if answered:
                assert changed.get("nd_advertisements_sent") == 1, f"hop limit 255: counters that changed: {changed}"
            else:
                assert changed.get("drop.icmpv6_nd_bad_hop_limit") == 1, f"hop limit 64: counters: {changed}"
                assert "nd_advertisements_sent" not in changed, "tapstack answered an NS that may come from off-link"
        assert "drop icmpv6_nd_bad_hop_limit" in rig.trace


@check.item("the peer (Linux with --kernel) also ignores an NS with hop limit 64 and answers one with 255")
def peer_hop_limit(ctx):
    with ctx.rig(ipv6=Ipv6Link()) as rig:
        group = solicited_node(rig.peer_ip)
        answers = []
        for hops in (64, ND_HOP_LIMIT):
            packet = neighbor_solicitation(rig.host_ip, rig.peer_ip, group, rig.host_mac, hop_limit=hops)
            answers.append([m for m in peer_answers(rig, ethernet(multicast_mac(group), rig.host_mac, packet),
                                                    rig.peer_ip) if m.solicited])
    assert not answers[0], "the peer answered an NS with hop limit 64"
    assert answers[1], "the peer did not answer an NS with hop limit 255 (so the test proves nothing)"


@check.item(f"DAD: with dad_transmits={DAD_TRANSMITS} tapstack probes {DAD_TRANSMITS} times a second apart "
            "(NS from ::, no source link-layer option), then uses and announces its address (RFC 4862 5.4)")
def dad_probes(ctx):
    with ctx.rig(ipv6=Ipv6Link(), dad_transmits=DAD_TRANSMITS) as rig:
        assert rig.host.ip6.resolver.tentative(rig.host_ip), "the address is in use before DAD"
        probes, announced = run_dad(rig)
        assert rig.host.ip6.resolver.usable(rig.host_ip), "the address is not in use after DAD"
    assert len(probes) == DAD_TRANSMITS, f"{len(probes)} probes for {rig.host_ip}"
    for probe in probes:
        group = solicited_node(rig.host_ip)
        assert probe.source == UNSPECIFIED and probe.destination == group and probe.hop_limit == ND_HOP_LIMIT
        assert probe.option(SOURCE_LINK_LAYER) is None, "RFC 4861 7.2.2: no source link-layer option from ::"
    gaps = [round(later.time - earlier.time, 1) for earlier, later in zip(probes, probes[1:])]
    assert all(0.9 <= gap <= 1.5 for gap in gaps), f"probes {gaps} seconds apart (RetransTimer is 1 s)"
    assert announced and announced[0].time > probes[-1].time, "no unsolicited NA once the address was usable"
    assert (announced[0].destination, announced[0].solicited, announced[0].override) == (ALL_NODES, 0, 1)


def run_dad(rig):
    """Run until tapstack announces its address (or DAD's time is well over): the timeline."""
    rig.wait(DAD_TRANSMITS + 3, until=lambda: bool(dad_timeline(rig)[1]))
    return dad_timeline(rig)


def dad_timeline(rig):
    """tapstack's DAD probes for its address, and its advertisements of it to all-nodes."""
    probes = [m for m in of_type(rig, NEIGHBOR_SOLICITATION, rig.host_mac) if m.target == rig.host_ip]
    announced = [m for m in of_type(rig, NEIGHBOR_ADVERTISEMENT, rig.host_mac)
                 if m.target == rig.host_ip and m.destination == ALL_NODES]
    return probes, announced


def claimed_twice(ctx):
    """The peer uses 2001:db8::2 already; tapstack, given the same address, probes for it."""
    link = Ipv6Link(peer=Ipv6Link().host)
    return ctx.rig(ipv6=link, dad_transmits=1)


def defence(rig):
    """The peer's NAs for the address, to all-nodes, after tapstack's probe."""
    probes, _ = dad_timeline(rig)
    assert probes, "tapstack sent no DAD probe"
    return [m for m in of_type(rig, NEIGHBOR_ADVERTISEMENT, rig.peer_mac)
            if m.target == rig.host_ip and m.time >= probes[0].time]


def peer_answers_for(rig, address):
    """tapstack's side asks the peer who has ``address`` (from tapstack's link-local address)."""
    asker = modified_eui64_link_local(rig.host_mac)
    group = solicited_node(address)
    return peer_answers(rig, ethernet(multicast_mac(group), rig.host_mac,
                                      neighbor_solicitation(asker, address, group, rig.host_mac)), address)


def peer_answers(rig, frame, target, seconds=1.0):
    """tapstack's side sends ``frame`` to the peer: the peer's NAs for ``target`` within
    ``seconds`` (the wait ends at the first)."""
    before = len(icmpv6_messages(rig))

    def answers():
        return [m for m in icmpv6_messages(rig)[before:] if m.type == NEIGHBOR_ADVERTISEMENT
                and m.source_mac == rig.peer_mac and m.target == target]

    rig.send_to_peer(frame)
    rig.wait(seconds, until=lambda: bool(answers()))
    return answers()


@check.item("DAD: two hosts claim 2001:db8::2: the peer defends it (NA), tapstack gives it up, the peer keeps it")
def duplicate(ctx):
    with claimed_twice(ctx) as rig:
        rig.wait(3.0, until=lambda: rig.stats["nd_duplicate_addresses"] > 0 and bool(defence(rig)))
        assert defence(rig), "the peer did not answer tapstack's probe"
        assert rig.stats["nd_duplicate_addresses"] == 1 and not rig.host.ip6.resolver.usable(rig.host_ip)
        # tapstack no longer answers for it; the peer still does.
        packet = neighbor_solicitation(IPv6Address("fe80::ff:fe00:1"), rig.host_ip, solicited_node(rig.host_ip),
                                       PEER_MAC)
        changed = rig.send(on_link(rig, packet, destination_mac=multicast_mac(solicited_node(rig.host_ip))))
        assert changed.get("drop.icmpv6_nd_target_not_ours") == 1, f"counters that changed: {changed}"
        assert peer_answers_for(rig, rig.host_ip), "the peer no longer answers for the address"


@check.item("DAD: tapstack defends its address (NA to ff02::1, S=0, O=1); a peer claiming it gives it up")
def defended(ctx):
    with ctx.rig(ipv6=Ipv6Link()) as rig:
        group = solicited_node(rig.host_ip)
        probe = neighbor_solicitation(UNSPECIFIED, rig.host_ip, group, rig.peer_mac)
        changed = rig.send(on_link(rig, probe, destination_mac=multicast_mac(group)))
        assert changed.get("nd_advertisements_sent") == 1, f"counters that changed: {changed}"
        answer = of_type(rig, NEIGHBOR_ADVERTISEMENT, rig.host_mac)[-1]
        # RFC 4861 7.2.4: the prober has no address yet: to all-nodes, S=0; O=1 and our MAC.
        assert (answer.target, answer.destination, answer.solicited, answer.override) == (
            rig.host_ip, ALL_NODES, 0, 1), (answer.target, answer.destination, answer.solicited, answer.override)
        assert answer.destination_mac == multicast_mac(ALL_NODES)
        assert answer.link_layer_address(TARGET_LINK_LAYER) == rig.host_mac
    # The peer starts with tapstack's address and DAD: it gives the address up (RFC 4862 5.4.4,
    # 5.4.5), whether tapstack's answer to its probe or tapstack's announcement reaches it first.
    with ctx.rig(ipv6=Ipv6Link(peer=Ipv6Link().host, peer_dad=True)) as rig:
        rig.wait(3.0, until=lambda: rig.peer_address_state(rig.host_ip) == "duplicate")
        state = rig.peer_address_state(rig.host_ip)
        assert state == "duplicate", f"the peer's {rig.host_ip} is {state}, not a duplicate given up"
        assert not peer_answers_for(rig, rig.host_ip), "the peer still answers for tapstack's address"
        assert rig.host.ip6.resolver.usable(rig.host_ip), "tapstack gave its own address up"


# ---------------------------------------------------------------------- the student's part


@check.item(f"answers.toml: the link-local address of tapstack with MAC {QUESTION_MAC}")
def answer_link_local(ctx):
    given = address_answer(ctx, "link_local_address")
    with ctx.rig(ipv6=Ipv6Link(host_mac=QUESTION_MAC)) as rig:
        used = {m.source for m in of_type(rig, MLD_V2_REPORT, rig.host_mac) if m.source.is_link_local}
    assert used, "tapstack sent no MLD report from its link-local address"
    assert given in used, (f"link_local_address = {given}: fe80::/64, then the MAC with ff:fe in the middle and "
                           "one bit of the first byte flipped (RFC 4291 appendix A)")


@check.item(f"answers.toml: the solicited-node group of {QUESTION_ADDRESS.ip} and its MAC")
def answer_solicited_node(ctx):
    group = address_answer(ctx, "solicited_node_group")
    mac = mac_answer(ctx, "solicited_node_mac")
    with ctx.rig(ipv6=Ipv6Link(host=QUESTION_ADDRESS)) as rig:
        outcome = rig.ping(count=1)
        assert outcome.received == 1, outcome.output
        asked = [m for m in of_type(rig, NEIGHBOR_SOLICITATION, rig.peer_mac) if m.target == rig.host_ip]
    assert asked, "the peer sent no NS"
    assert group == asked[0].destination, (
        f"solicited_node_group = {group}: ff02::1:ff00:0/104 and the last 24 bits of the address (RFC 4291 2.7.1)")
    assert mac == asked[0].destination_mac, (
        f"solicited_node_mac = {mac}: 33:33 and the group's last 32 bits (RFC 2464 7)")


@check.item("answers.toml: the S and O flags of tapstack's answer to a Neighbor Solicitation")
def answer_flags(ctx):
    solicited = flag_answer(ctx, "na_solicited_flag")
    override = flag_answer(ctx, "na_override_flag")
    with ctx.rig(ipv6=Ipv6Link()) as rig:
        rig.ping(count=1)
        answers = [m for m in of_type(rig, NEIGHBOR_ADVERTISEMENT, rig.host_mac) if m.destination == rig.peer_ip]
    assert answers, "tapstack sent no NA to the peer"
    assert solicited == answers[0].solicited, f"na_solicited_flag = {solicited}: was this NA asked for? (RFC 4861 4.4)"
    assert override == answers[0].override, (
        f"na_override_flag = {override}: should the asker replace what it has cached?")


@check.item("answers.toml: the hop limit of ND messages, and the drop reason of an NS without it")
def answer_hop_limit(ctx):
    hops = ctx.answers.number("nd_hop_limit")
    reason = ctx.answers.text("hop_limit_drop_reason")
    with ctx.rig(ipv6=Ipv6Link()) as rig:
        rig.ping(count=1)
        limits = {m.hop_limit for m in icmpv6_messages(rig)
                  if m.type in (NEIGHBOR_SOLICITATION, NEIGHBOR_ADVERTISEMENT)}
        group = solicited_node(rig.host_ip)
        changed = rig.send(on_link(rig, neighbor_solicitation(rig.peer_ip, rig.host_ip, group, rig.peer_mac, 64),
                                   destination_mac=multicast_mac(group)))
    assert limits == {hops}, f"nd_hop_limit = {hops}: look at the hop limit of every NS and NA in the trace"
    assert f"drop.{reason}" in changed, (f"hop_limit_drop_reason = {reason!r}: the name after 'drop' in the trace "
                                          "line of an NS with hop limit 64 (item 4 keeps it: --keep DIR)")


@check.item("answers.toml: MLD: the group tapstack reports, and where the report goes")
def answer_mld(ctx):
    group = address_answer(ctx, "mld_reported_group")
    destination = address_answer(ctx, "mld_report_destination")
    with ctx.rig(ipv6=Ipv6Link()) as rig:
        reports = of_type(rig, MLD_V2_REPORT, rig.host_mac)
    assert reports, "tapstack sent no MLD report"
    groups = {g for _, g in reports[0].groups}
    assert groups == {group}, (f"mld_reported_group = {group}: the report's record names one group for both "
                               "2001:db8::2 and fe80::ff:fe00:2; which, and why one?")
    assert destination == reports[0].destination, (
        f"mld_report_destination = {destination}: in MLDv2 not the group itself")


@check.item(f"answers.toml: DAD with --dad-transmits {DAD_TRANSMITS}: the probes, and the seconds until use")
def answer_dad(ctx):
    count = ctx.answers.number("dad_probe_count")
    seconds = ctx.answers.number("dad_seconds")
    with ctx.rig(ipv6=Ipv6Link(), dad_transmits=DAD_TRANSMITS) as rig:
        probes, announced = run_dad(rig)
    assert count == len(probes), f"dad_probe_count = {count}: count the NS from :: for 2001:db8::2"
    assert announced, "tapstack never announced its address"
    measured = announced[0].time - probes[0].time
    assert abs(seconds - measured) < 0.5, (f"dad_seconds = {seconds}: from the first probe to the unsolicited NA "
                                          "(RetransTimer after each probe, RFC 4862 5.4)")


@check.item("answers.toml: two hosts claim one address: the defender's NA, and who keeps the address")
def answer_duplicate(ctx):
    destination = address_answer(ctx, "dad_defence_destination")
    solicited = flag_answer(ctx, "dad_defence_solicited_flag")
    winner = ctx.answers.text("dad_winner").lower()
    assert winner in ("tapstack", "peer"), f"dad_winner = {winner!r}: write \"tapstack\" or \"peer\""
    with claimed_twice(ctx) as rig:
        rig.wait(3.0, until=lambda: rig.stats["nd_duplicate_addresses"] > 0 and bool(defence(rig)))
        answers = defence(rig)
        keeps = "tapstack" if rig.host.ip6.resolver.usable(rig.host_ip) else "peer"
    assert answers, "the peer did not defend its address"
    assert destination == answers[0].destination, (
        f"dad_defence_destination = {destination}: the prober has no address yet; where can an answer reach it?")
    assert solicited == answers[0].solicited, (
        f"dad_defence_solicited_flag = {solicited}: RFC 4861 7.2.4, an answer to a probe from ::")
    assert winner == keeps, f"dad_winner = {winner}: who was using the address first?"
