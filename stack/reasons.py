"""Every drop reason in plain words, with the rule (RFC section, or standard) behind it.

Read first: docs/behaviour.md "Counters". Traces (``--trace``) and ``tapstack explain`` print a drop as
``drop ipv4_bad_checksum: the IPv4 header checksum is wrong: header checksum 0x1c46 does not
verify (should be 0x1c47) (RFC 1122 3.2.1.2)``. ``tests/core/test_reasons.py`` scans the source for
every reason the code can count and checks that each has an entry here and in docs/behaviour.md.
"""

from __future__ import annotations

from dataclasses import dataclass

from stack.errors import ParseError

#: Longest detail (the value that caused the drop) a trace line shows.
DETAIL_MAXIMUM = 100


@dataclass(frozen=True, slots=True)
class DropReason:
    """What a drop means (``plain``) and the rule that asks for it (``rule``)."""

    plain: str
    rule: str


DROP_REASONS: dict[str, DropReason] = {
    # Ethernet
    "ethernet_runt": DropReason("frame shorter than the 14-byte Ethernet header", "RFC 894"),
    "ethernet_not_for_us": DropReason(
        "destination MAC is not ours, broadcast or all-hosts", "RFC 1122 2.3; IEEE 802.3 address recognition"),
    "ethernet_vlan_tagged": DropReason(
        "802.1Q VLAN-tagged frame: VLANs are not supported here", "IEEE 802.1Q; docs/behaviour.md: not supported"),
    "ethernet_ipv6_not_supported": DropReason(
        "IPv6 frame (EtherType 0x86dd): IPv6 is not supported here", "RFC 2464; docs/behaviour.md: not supported"),
    "ethernet_unknown_ethertype": DropReason(
        "EtherType of a protocol this host does not speak (only IPv4 and ARP)", "RFC 894, RFC 826"),
    "ethernet_8023_length_frame": DropReason(
        "IEEE 802.3 length field (below 0x0600), not an EtherType: LLC/SNAP is not spoken",
        "RFC 1122 2.3.3 (RFC 1042 encapsulation is a MAY)"),
    # ARP
    "arp_truncated": DropReason("ARP packet shorter than its 28 bytes", "RFC 826 (packet format)"),
    "arp_bad_address_length": DropReason(
        "address lengths are not 6 (MAC) and 4 (IPv4)", "RFC 826 (ar$hln, ar$pln)"),
    "arp_bad_hardware_type": DropReason(
        "hardware type is not Ethernet (1)", "RFC 826 Packet Reception: ?Do I have the hardware type in ar$hrd?"),
    "arp_bad_protocol_type": DropReason(
        "protocol type is not IPv4 (0x0800)", "RFC 826 Packet Reception: ?Do I speak the protocol in ar$pro?"),
    "arp_unknown_operation": DropReason(
        "operation is neither request (1) nor reply (2)", "RFC 826 (ar$op)"),
    "arp_bad_sender_mac": DropReason(
        "sender MAC is a group (multicast/broadcast) or zero address: no station has it",
        "RFC 1812 3.3.2 (MUST NOT believe a broadcast or multicast link address; Linux 6.18 learns it)"),
    "arp_bad_sender_ip": DropReason(
        "sender address is multicast, limited broadcast or loopback: no host has it",
        "RFC 1122 3.2.1.3 (never a host's own address; Linux 6.18 drops it too)"),
    "arp_address_conflict": DropReason(
        "another host claims one of our addresses (never learnt; defended or given up)", "RFC 5227 2.1.1, 2.4"),
    "arp_mac_change_refused": DropReason(
        "says a neighbour we know is at another MAC: not believed until its old MAC has been "
        "asked (a unicast request) and stayed silent for a check interval",
        "RFC 826 merge, hardened against cache poisoning (RFC 5227 2.4 style check; issue 13)"),
    "arp_new_sender_rate_limited": DropReason(
        "asks for us from a sender we do not know, beyond the rate we answer new senders at "
        "(100 a second): a flood cannot churn the cache",
        "RFC 1122 2.3.2.1 (prevent ARP flooding), on the receiving side"),
    "arp_not_for_us": DropReason(
        "asks for an address that is not ours, from a sender not in our table",
        "RFC 826 Packet Reception: ?Am I the target protocol address?"),
    "arp_queue_full": DropReason(
        "datagram waiting for ARP pushed out by a newer one", "RFC 1122 2.3.2.2 (keep at least the latest)"),
    "arp_unresolved": DropReason(
        "next hop never answered ARP: its waiting datagram is given up", "RFC 1122 2.3.2.1 (no ARP flooding)"),
    # IPv4
    "ipv4_truncated": DropReason(
        "datagram shorter than its header or its total length says", "RFC 791 3.1; RFC 1122 3.2.1"),
    "ipv4_bad_version": DropReason("version is not 4", "RFC 1122 3.2.1.1"),
    "ipv4_bad_header_length": DropReason("header length (IHL) below 5 words (20 bytes)", "RFC 791 3.1"),
    "ipv4_bad_total_length": DropReason("total length smaller than the header", "RFC 791 3.1"),
    "ipv4_bad_checksum": DropReason("the IPv4 header checksum is wrong", "RFC 1122 3.2.1.2"),
    "ipv4_bad_options": DropReason(
        "a malformed option (its length runs past the header)", "RFC 791 3.1; RFC 1122 3.2.1.8"),
    "ipv4_source_route_unfinished": DropReason(
        "a source route with hops still to go: we are not its destination and do not forward "
        "(Linux drops it too; Source Route Failed would be the other answer)", "RFC 1122 3.3.5"),
    "ipv4_not_for_us": DropReason(
        "destination is none of our addresses or broadcasts (a host does not forward)",
        "RFC 1122 3.2.1.3, 3.3.1.1"),
    "ipv4_unicast_in_link_broadcast": DropReason(
        "a unicast datagram arrived in a link-layer broadcast", "RFC 1122 3.3.6"),
    "ipv4_martian_source": DropReason(
        "source is not one host (0/8, 127/8, multicast or broadcast)", "RFC 1122 3.2.1.3"),
    "ipv4_source_is_ours": DropReason(
        "source is our own address (a martian, as Linux says)", "RFC 1122 3.2.1.3"),
    "ipv4_unknown_protocol": DropReason(
        "no handler for this IP protocol: answered with Protocol Unreachable", "RFC 1122 3.2.2.1"),
    "ipv4_no_route": DropReason(
        "no route back to the source (off our networks, no gateway)", "RFC 1122 3.3.1.1"),
    # Fragments
    "ipv4_fragment_bad_length": DropReason(
        "a fragment with more to come whose data is not a multiple of 8 bytes", "RFC 791 3.2"),
    "ipv4_fragment_too_large": DropReason(
        "fragments would make a datagram over 65,535 bytes (ping of death)", "RFC 791 3.1"),
    "ipv4_fragment_duplicate": DropReason(
        "an exact duplicate of a fragment already held (tolerated)", "RFC 791 3.2"),
    "ipv4_fragment_empty": DropReason(
        "a fragment with no data: dropped, and what is held of its datagram with it (as Linux "
        "6.18; the fragments after it start the datagram anew)", "RFC 791 3.2 (fragments carry data); issue 13"),
    "ipv4_fragment_overlap": DropReason(
        "a fragment overlaps another: the whole datagram is discarded", "RFC 5722 (as Linux for IPv4)"),
    "ipv4_fragment_inconsistent": DropReason(
        "fragments disagree about where the datagram ends: the whole datagram is discarded", "RFC 791 3.2"),
    "ipv4_reassembly_evicted": DropReason(
        "an incomplete datagram given up to make room (reassembly is bounded)", "RFC 1122 3.3.2"),
    "ipv4_reassembly_timeout": DropReason(
        "an incomplete datagram timed out (Time Exceeded sent if its first fragment came)", "RFC 1122 3.3.2"),
    # IPv6 (the codecs of stack/l3/ipv6.py)
    "ipv6_truncated": DropReason(
        "packet shorter than its 40-byte header or than its payload length says", "RFC 8200 3"),
    "ipv6_bad_version": DropReason("version is not 6", "RFC 8200 3"),
    "ipv6_extension_truncated": DropReason(
        "an extension header runs past the end of the packet", "RFC 8200 4"),
    "ipv6_bad_option": DropReason(
        "a Hop-by-Hop or Destination option runs past its header", "RFC 8200 4.2"),
    "ipv6_hop_by_hop_not_first": DropReason(
        "a Hop-by-Hop Options header not right after the IPv6 header (Parameter Problem code 1)",
        "RFC 8200 4"),
    "ipv6_chain_too_long": DropReason(
        "more than 16 extension headers: the chain walk is bounded", "RFC 8883 1 (processing limits); docs/how-it-works.md"),
    "ipv6_incomplete_chain": DropReason(
        "a first fragment that does not hold the whole header chain (Parameter Problem code 3)", "RFC 7112 5"),
    "ipv6_fragment_bad_length": DropReason(
        "a fragment with more to come whose data is not a multiple of 8 bytes (Parameter Problem code 0)",
        "RFC 8200 4.5"),
    "ipv6_fragment_too_large": DropReason(
        "a fragment that would make a payload over 65,535 bytes (Parameter Problem code 0)", "RFC 8200 4.5"),
    # IPv6, the host (stack/l3/ipv6_host.py)
    "ipv6_not_for_us": DropReason(
        "not one of our addresses nor one of our multicast groups (we do not forward)",
        "RFC 8200 3; RFC 4291 2.7, 2.8 (the groups a node listens to)"),
    "ipv6_multicast_source": DropReason("a multicast source address: a source is one node", "RFC 4291 2.7"),
    "ipv6_unspecified_source": DropReason(
        "from :: (only Neighbor Discovery's DAD and MLD may come from it)", "RFC 4291 2.5.2; RFC 4862 5.4"),
    "ipv6_tentative_destination": DropReason(
        "to one of our addresses that duplicate address detection has not cleared yet", "RFC 4862 5.4"),
    "ipv6_unknown_next_header": DropReason(
        "an upper layer we do not have (Parameter Problem code 1 pointing at its Next Header)", "RFC 8200 4"),
    "ipv6_unrecognised_option": DropReason(
        "an option we do not know whose action bits say discard (with Parameter Problem code 2 "
        "for 10, and for 11 unless to a multicast address)", "RFC 8200 4.2"),
    "ipv6_routing_header_rejected": DropReason(
        "a routing header with segments left: a host routes none (type 0 is deprecated); "
        "Parameter Problem code 0 at the routing type", "RFC 8200 4.4; RFC 5095 3"),
    "ipv6_reassembly_timeout": DropReason(
        "an incomplete packet timed out (Time Exceeded code 1 sent if its first fragment came)",
        "RFC 8200 4.5"),
    "ipv6_no_source_address": DropReason(
        "no usable address of ours to answer from yet (duplicate address detection running)", "RFC 4862 5.4"),
    "icmpv6_nd_without_link_layer": DropReason(
        "a Neighbor Discovery message on a point-to-point TUN link, which has no link-layer addresses",
        "RFC 4861 1, 4.6.1 (link-layer address options)"),
    "icmpv6_echo_reply_unsolicited": DropReason(
        "an echo reply to no request of ours", "RFC 4443 4.2"),
    "icmpv6_type_not_handled": DropReason(
        "an informational message of a type we do not know: silently discarded", "RFC 4443 2.4 (b)"),
    # IPv6 reassembly (stack/l3/reassembly6.py; counted once the host wires it, issue 14)
    "ipv6_fragment_duplicate": DropReason(
        "an exact duplicate of a fragment already held (tolerated)", "RFC 8200 4.5"),
    "ipv6_fragment_overlap": DropReason(
        "a fragment overlaps another: the whole packet is discarded", "RFC 5722 3"),
    "ipv6_fragment_empty": DropReason(
        "a fragment with no data: dropped, and what is held of its packet with it (as Linux 6.18)",
        "RFC 8200 4.5 (fragments carry data)"),
    "ipv6_fragment_of_discarded": DropReason(
        "a fragment of a packet discarded for an overlap (until its 60 s are up)", "RFC 5722 3"),
    "ipv6_fragment_inconsistent": DropReason(
        "fragments disagree about where the packet ends: the whole packet is discarded", "RFC 8200 4.5"),
    "ipv6_reassembly_evicted": DropReason(
        "an incomplete packet given up to make room (reassembly is bounded)",
        "RFC 8200 4.5 (held: at most 64 packets, 4 MiB)"),
    # ICMPv6, Neighbor Discovery, MLD (the codecs of stack/l3/icmpv6.py)
    "icmpv6_truncated": DropReason("shorter than the 8-byte ICMPv6 header", "RFC 4443 2.1"),
    "icmpv6_bad_checksum": DropReason(
        "the ICMPv6 checksum (pseudo-header included) is wrong", "RFC 4443 2.3"),
    "icmpv6_nd_truncated": DropReason(
        "a Neighbor Discovery message shorter than its fixed part", "RFC 4861 6.1, 7.1, 8.1"),
    "icmpv6_nd_option_zero_length": DropReason(
        "a Neighbor Discovery option with length 0", "RFC 4861 4.6"),
    "icmpv6_nd_option_truncated": DropReason(
        "a Neighbor Discovery option runs past the message", "RFC 4861 4.6"),
    "icmpv6_nd_bad_option_length": DropReason(
        "a Prefix Information or MTU option of the wrong length", "RFC 4861 4.6.2, 4.6.4"),
    "icmpv6_mld_bad_query_length": DropReason(
        "an MLD query neither 24 (MLDv1) nor at least 28 (MLDv2) bytes long", "RFC 3810 8.1"),
    "icmpv6_mld_truncated": DropReason(
        "an MLD message whose sources or records run past its end", "RFC 3810 5.1, 5.2; RFC 2710 3"),
    # MLD queries (stack/l3/mld.py; counted once the host wires it, issue 14)
    "icmpv6_mld_point_to_point": DropReason(
        "an MLD query on a point-to-point (TUN) link, where this stack speaks no MLD",
        "RFC 3810 6 (no MLD on TUN; Linux sends none there either)"),
    "icmpv6_mld_source_not_link_local": DropReason(
        "an MLD query whose source is not a link-local address", "RFC 3810 5.1.14"),
    "icmpv6_mld_bad_hop_limit": DropReason("an MLD query whose hop limit is not 1", "RFC 3810 5.1.14"),
    "icmpv6_mld_no_router_alert": DropReason(
        "an MLD query without the Router Alert option in a Hop-by-Hop header", "RFC 3810 5.1.14; RFC 2711"),
    "icmpv6_mld_query_not_ours": DropReason(
        "an MLD query about a group we do not listen to: nothing to report", "RFC 3810 6.2"),
    # Neighbor Discovery and DAD (stack/l3/neighbor_discovery.py; counted once the host hands ND to it)
    "icmpv6_nd_bad_hop_limit": DropReason(
        "a Neighbor Discovery message whose hop limit is not 255 (it crossed a router)",
        "RFC 4861 6.1.1, 6.1.2, 7.1.1, 7.1.2, 8.1"),
    "icmpv6_nd_bad_code": DropReason(
        "a Neighbor Discovery message whose ICMP code is not 0", "RFC 4861 6.1.1, 6.1.2, 7.1.1, 7.1.2, 8.1"),
    "icmpv6_nd_multicast_target": DropReason(
        "a Neighbor Solicitation or Advertisement whose target is a multicast address", "RFC 4861 7.1.1, 7.1.2"),
    "icmpv6_nd_dad_not_to_solicited_node": DropReason(
        "a solicitation from :: (a DAD probe) not sent to a solicited-node multicast address", "RFC 4861 7.1.1"),
    "icmpv6_nd_source_link_layer_from_unspecified": DropReason(
        "a solicitation from :: that carries a source link-layer address option", "RFC 4861 6.1.1, 7.1.1"),
    "icmpv6_nd_solicited_to_multicast": DropReason(
        "a Neighbor Advertisement to a multicast address with the Solicited flag set", "RFC 4861 7.1.2"),
    "icmpv6_nd_router_not_link_local": DropReason(
        "a Router Advertisement or Redirect whose source is not a link-local address", "RFC 4861 6.1.2, 8.1"),
    "icmpv6_nd_bad_redirect": DropReason(
        "a Redirect to a multicast destination, or whose target is neither link-local nor the destination",
        "RFC 4861 8.1"),
    "icmpv6_nd_target_not_ours": DropReason(
        "a Neighbor Solicitation for an address that is not ours: silently discarded", "RFC 4861 7.2.3"),
    "icmpv6_nd_target_tentative": DropReason(
        "a Neighbor Solicitation (address resolution) for our address still under DAD: not answered",
        "RFC 4862 5.4.3"),
    "icmpv6_nd_advertisement_unknown_target": DropReason(
        "a Neighbor Advertisement for a neighbour not in the cache: silently discarded", "RFC 4861 7.2.5"),
    "icmpv6_nd_advertisement_without_address": DropReason(
        "a Neighbor Advertisement for an address being resolved, without its link-layer address",
        "RFC 4861 7.2.5"),
    "icmpv6_nd_advertisement_for_our_address": DropReason(
        "another node advertises an address we use (a duplicate DAD missed?): logged, the address kept",
        "RFC 4862 5.4.4"),
    "icmpv6_nd_router_solicitation_ignored": DropReason(
        "a Router Solicitation: a host silently discards it", "RFC 4861 6.2.6"),
    "icmpv6_nd_router_advertisement_ignored": DropReason(
        "a Router Advertisement: counted, not acted on (no SLAAC or default router here)",
        "RFC 4861 6.3.4; docs/behaviour.md: not supported"),
    "icmpv6_nd_redirect_ignored": DropReason(
        "a Redirect: counted, not acted on (every destination is on-link here)",
        "RFC 4861 8.3; docs/behaviour.md: not supported"),
    "icmpv6_nd_queue_full": DropReason(
        "a datagram waiting for address resolution pushed out (the queue is bounded, or too many "
        "addresses are being resolved)", "RFC 4861 7.2.2"),
    "icmpv6_nd_unresolved": DropReason(
        "a datagram dropped: its next hop did not answer 3 Neighbor Solicitations", "RFC 4861 7.2.2"),
    # TCP: the codec (stack/l4/tcp.py)
    "tcp_truncated": DropReason("shorter than the 20-byte TCP header", "RFC 9293 3.1"),
    "tcp_bad_header_length": DropReason(
        "TCP data offset below 5 words or past the segment", "RFC 9293 3.1"),
    "tcp_bad_checksum": DropReason("the TCP checksum is wrong", "RFC 9293 3.1; RFC 1122 4.2.2.7"),
    # TCP: the port table (stack/l4/tcp_layer.py)
    "tcp_port_closed": DropReason(
        "no connection and no listener on that TCP port: answered with a reset (none for a RST)",
        "RFC 9293 3.10.7.1"),
    "tcp_listen_reset": DropReason("a RST to a listening port is ignored", "RFC 9293 3.10.7.2 (first)"),
    "tcp_listen_ack": DropReason(
        "an ACK to a listening port with no connection: answered with a reset", "RFC 9293 3.10.7.2 (second)"),
    "tcp_listen_no_syn": DropReason(
        "a segment without SYN to a listening port with no connection", "RFC 9293 3.10.7.2 (fourth)"),
    "tcp_connection_limit": DropReason(
        "a SYN beyond the bound on connections, with nothing half-open to evict (the peer retries)",
        "RFC 4987 3; docs/how-it-works.md TCP bounds"),
    "tcp_half_open_evicted": DropReason(
        "the oldest half-open (SYN-RECEIVED) connection was dropped to make room for a new SYN",
        "RFC 4987 3.4 (SYN flood: oldest drop)"),
    "tcp_time_wait_evicted": DropReason(
        "the oldest TIME-WAIT connection was dropped: too many held",
        "RFC 1122 4.2.2.13; docs/how-it-works.md TCP bounds"),
    "tcp_reset_discarded": DropReason(
        "a RST to a port with no connection: discarded, never answered", "RFC 9293 3.10.7.1"),
    "tcp_not_unicast": DropReason(
        "TCP segment to a broadcast or multicast address: silently discarded, never answered",
        "RFC 1122 4.2.3.10; RFC 1122 3.2.1.3"),
    # TCP: one connection (stack/l4/tcp_connection.py)
    "tcp_out_of_window": DropReason(
        "sequence number outside the receive window: answered with an ACK", "RFC 9293 3.10.7.4 (first)"),
    "tcp_reset_challenged": DropReason(
        "a RST in the window but not at RCV.NXT: answered with a challenge ACK", "RFC 5961 3.2"),
    "tcp_syn_challenged": DropReason(
        "a SYN on a synchronized connection: answered with a challenge ACK", "RFC 5961 4.2; RFC 9293 3.10.7.4"),
    "tcp_reset_ignored": DropReason(
        "a RST in SYN-SENT that does not acknowledge our SYN", "RFC 9293 3.10.7.3; RFC 5961 3.2"),
    "tcp_no_syn": DropReason(
        "a segment in SYN-SENT with neither SYN nor RST", "RFC 9293 3.10.7.3 (fifth)"),
    "tcp_no_ack": DropReason(
        "a segment without the ACK bit on a synchronized connection", "RFC 9293 3.10.7.4 (fifth)"),
    "tcp_unacceptable_ack": DropReason(
        "acknowledges data never sent (or far too old): answered with an ACK, or a reset in "
        "SYN-SENT and SYN-RECEIVED", "RFC 9293 3.10.7.3-4 (fifth); RFC 5961 5.2"),
    "tcp_out_of_order_queue_full": DropReason(
        "out-of-order data beyond what the queue holds (bounded in bytes by the receive buffer)",
        "RFC 9293 3.10.7.4 (seventh); docs/how-it-works.md TCP bounds"),
    # UDP
    "udp_service_refused": DropReason(
        "a datagram to a UDP service from port 0 or another service's port (7, 13, 17, 19, 37), or "
        "to a broadcast or multicast address: not answered (services answer unicast only; two "
        "services answering each other would loop)", "RFC 768; CERT CA-1996-01"),
    "udp_truncated": DropReason("shorter than the 8-byte UDP header", "RFC 768"),
    "udp_bad_length": DropReason("UDP length outside 8 to the datagram's size", "RFC 768"),
    "udp_bad_checksum": DropReason("the UDP checksum is wrong", "RFC 1122 4.1.3.4"),
    "udp_port_unreachable": DropReason(
        "no service on that UDP port: answered with Port Unreachable", "RFC 1122 4.1.3.1"),
    # TUN
    "tun_runt": DropReason(
        "shorter than the 4-byte packet-information header", "Linux tuntap.rst (struct tun_pi)"),
    "tun_truncated": DropReason(
        "the kernel cut the packet to fit our buffer (TUN_PKT_STRIP)", "Linux if_tun.h (TUN_PKT_STRIP)"),
    "tun_ipv6_not_supported": DropReason("IPv6 packet: IPv6 is not supported here", "RFC 8200; docs/behaviour.md: not supported"),
    "tun_not_ipv4": DropReason("not an IPv4 packet", "RFC 791 3.1 (version 4); Linux tuntap.rst"),
    # ICMP
    "icmp_truncated": DropReason("shorter than the 8-byte ICMP header", "RFC 792"),
    "icmp_bad_checksum": DropReason("the ICMP checksum is wrong", "RFC 792; RFC 1122 3.2.2"),
    "icmp_type_not_handled": DropReason(
        "an ICMP type this host does not handle: silently discarded", "RFC 1122 3.2.2"),
    "icmp_echo_to_broadcast_ignored": DropReason(
        "echo request to a broadcast or multicast address: ignored (--answer-broadcast answers)",
        "RFC 1122 3.2.2.6"),
    "icmp_timestamp_to_broadcast_ignored": DropReason(
        "Timestamp request to a broadcast or multicast address: ignored", "RFC 1122 3.2.2.8"),
    "icmp_timestamp_reply_failed": DropReason(
        "the timestamp_reply function raised or returned something other than a Timestamp Reply",
        "RFC 792 (Timestamp Reply, type 14); docs/labs.md: lab 06"),
    "icmp_timestamp_request_refused": DropReason(
        "the timestamp_reply function refused the request (malformed: not 12 bytes of timestamps)",
        "RFC 792 (Timestamp: originate, receive, transmit)"),
    "icmp_echo_reply_unsolicited": DropReason(
        "echo reply matching none of our echo requests", "RFC 792 (identifier and sequence match a reply)"),
}


def explain_drop(reason: str, detail: object = None) -> str:
    """``reason: plain words: detail (rule)``; never raises, also for a reason not in the table."""
    entry = DROP_REASONS.get(reason)
    plain, rule = (entry.plain, entry.rule) if entry else ("(no explanation recorded)", "no rule recorded")
    text = f"{reason}: {plain}"
    shown = _detail(detail)
    if shown:
        text += f": {shown}"
    return f"{text} ({rule})"


def _detail(detail: object) -> str:
    if detail is None or detail == "":
        return ""
    try:
        text = f"{detail.layer} {detail.detail}" if isinstance(detail, ParseError) else str(detail)
    except Exception:  # a detail that cannot print itself must not break a trace
        return ""
    if len(text) > DETAIL_MAXIMUM:
        text = text[:DETAIL_MAXIMUM - 3] + "..."
    return text
