"""``tapstack explain``: one frame decoded field by field, and what tapstack would do with it.

Read first: RFC 894 (Ethernet), RFC 826 (ARP), RFC 791 3.1 (IPv4 header and options), RFC 792
(ICMP), RFC 768 (UDP), RFC 9293 3.1 (TCP), RFC 1071 (checksums). Sans-I/O: bytes in, text out; never raises.

Every field is a row: byte offsets in the frame, the field's name, its value as on the wire,
and what it means; checksums show the value carried and the value computed. Then a fresh host
(``TapHost`` / ``TunHost``, its start-up announcements sent) receives the frame, and what it
sends at once, or its drop reason with the rule behind it, is shown.

A frame from a capture may hold fewer bytes than were sent (``original_length``: the capture's
snapshot length cut it). What was captured is explained; fields past it are "not captured",
checksums over them are not judged, and the host's answer is told only when the missing bytes
are link padding (otherwise it cannot be known).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from ipaddress import IPv4Address, IPv4Interface, IPv6Address, IPv6Interface

from stack.checksum import internet_checksum
from stack.documentation_addresses import DOCUMENTATION_NETWORKS, HOST
from stack.errors import ParseError
from stack.l2.ethernet import BROADCAST, MacAddress
from stack.l4.udp import HEADER as UDP_HEADER
from stack.l4.udp import checksum as udp_checksum
from stack.reasons import explain_drop
from stack.runtime.settle import run_until_quiet
from stack.runtime.trace import summarize

#: The address the explained host takes when the frame names none it could have.
FALLBACK_ADDRESS = HOST

ETHERTYPE_NAMES = {0x0800: "IPv4 (RFC 894)", 0x0806: "ARP (RFC 826)", 0x86DD: "IPv6 (RFC 2464)",
              0x8100: "802.1Q VLAN tag (not supported)", 0x88A8: "802.1ad QinQ tag (not supported)"}
PROTOCOLS = {1: "ICMP (RFC 792)", 2: "IGMP", 6: "TCP (RFC 9293)", 17: "UDP (RFC 768)", 41: "IPv6 in IPv4"}
ICMP_TYPES = {0: "echo reply", 3: "destination unreachable", 4: "source quench", 5: "redirect",
              8: "echo request", 11: "time exceeded", 12: "parameter problem",
              13: "timestamp request", 14: "timestamp reply"}
OPTION_NAMES = {0: "end of option list", 1: "no operation", 7: "record route", 68: "timestamp",
                131: "loose source route", 137: "strict source route", 148: "router alert"}


@dataclass
class Explanation:
    """Rows of (first byte, last byte, field, value, meaning), under section titles."""

    lines: list[str] = field(default_factory=list)
    #: Bytes of the frame the capture does not hold (cut by its snapshot length); 0: all there.
    uncaptured: int = 0
    #: Bytes from the frame's start that its protocols use (the rest is padding), once known.
    needed: int | None = None
    #: The address an ARP announcement (sender IP = target IP, RFC 5227 3) announces.
    announcement: IPv4Address | None = None
    #: What the frame is addressed to and from, for the host that answers it.
    destination_ip: IPv4Address | IPv6Address | None = None
    source_ip: IPv4Address | IPv6Address | None = None
    destination_mac: MacAddress | None = None
    source_mac: MacAddress | None = None

    def section(self, title: str) -> None:
        self.lines.append(title)

    def row(self, start: int, size: int, name: str, value: object, meaning: str = "") -> None:
        place = f"{start}" if size <= 1 else f"{start}-{start + size - 1}"
        self.lines.append(f"  {place:<8} {name:<24} {str(value):<20} {meaning}".rstrip())

    def note(self, text: str) -> None:
        self.lines.append(f"  {text}")

    def size(self, captured: int, whole: int | None = None) -> str:
        """``captured`` bytes, or "98 bytes, 50 captured" when the capture cut them."""
        if whole is None:
            whole = captured + self.uncaptured
        return f"{whole} bytes" + (f", {captured} captured" if captured < whole else "")


def _mac_meaning(mac: MacAddress) -> str:
    if mac == BROADCAST:
        return "broadcast"
    kind = "multicast (a group)" if mac.is_multicast else "unicast"
    return kind + (", locally administered" if mac.is_locally_administered else ", globally unique (OUI)")


def _missing(out: Explanation, start: int, name: str) -> None:
    if out.uncaptured:
        out.row(start, 1, name, "(not captured)", "past the capture's snapshot length")
    else:
        out.row(start, 1, name, "(missing)", "the frame ends before this field")


def _checksum(carried: int, computed: int, rule: str) -> str:
    if carried == computed:
        return f"correct (computed {computed:#06x})"
    return f"WRONG: computed {computed:#06x}; {rule}"


def ethernet(data: bytes, out: Explanation) -> None:
    out.section(f"Ethernet II (RFC 894), {out.size(len(data))}")
    if len(data) < 14:
        out.note(f"only {len(data)} bytes captured: an Ethernet header is 14" if out.uncaptured
                 else f"only {len(data)} bytes: an Ethernet header is 14 (a runt)")
        return
    destination, source = MacAddress(data[0:6]), MacAddress(data[6:12])
    ethertype = int.from_bytes(data[12:14], "big")
    out.destination_mac, out.source_mac = destination, source
    out.row(0, 6, "destination MAC", destination, _mac_meaning(destination))
    out.row(6, 6, "source MAC", source, _mac_meaning(source))
    meaning = ETHERTYPE_NAMES.get(ethertype, "802.3 length, not an EtherType" if ethertype < 0x0600 else "unknown")
    out.row(12, 2, "EtherType", f"{ethertype:#06x}", meaning)
    if ethertype == 0x0806:
        arp(data, 14, out)
    elif ethertype == 0x0800:
        ipv4_datagram(data, 14, out)
    elif ethertype == 0x86DD:
        ipv6_packet(data, 14, out)
    if len(data) + out.uncaptured < 60:
        out.note(f"{len(data) + out.uncaptured} bytes: shorter than Ethernet's minimum of 60 (RFC 894: a NIC pads it on "
                 "the wire; a TAP device has no NIC, so Linux's short frames arrive as they are)")


def arp(data: bytes, base: int, out: Explanation) -> None:
    body = data[base:]
    out.section(f"ARP (RFC 826), {out.size(len(body))}")
    out.needed = base + 28
    fields = [(0, 2, "hardware type (ar$hrd)", lambda v: "Ethernet" if v == 1 else "not Ethernet"),
              (2, 2, "protocol type (ar$pro)", lambda v: "IPv4" if v == 0x0800 else "not IPv4"),
              (4, 1, "hardware length (ar$hln)", lambda v: "6: a MAC" if v == 6 else "not 6"),
              (5, 1, "protocol length (ar$pln)", lambda v: "4: an IPv4 address" if v == 4 else "not 4"),
              (6, 2, "operation (ar$op)", lambda v: {1: "request", 2: "reply"}.get(v, "unknown"))]
    for offset, size, name, meaning in fields:
        if len(body) < offset + size:
            return _missing(out, base + offset, name)
        value = int.from_bytes(body[offset:offset + size], "big")
        out.row(base + offset, size, name, value if size == 1 else f"{value:#06x}" if offset == 2 else value,
                meaning(value))
    addresses = [(8, 6, "sender MAC (ar$sha)"), (14, 4, "sender IP (ar$spa)"),
                 (18, 6, "target MAC (ar$tha)"), (24, 4, "target IP (ar$tpa)")]
    for offset, size, name in addresses:
        if len(body) < offset + size:
            return _missing(out, base + offset, name)
        raw = body[offset:offset + size]
        value = MacAddress(raw) if size == 6 else IPv4Address(raw)
        meaning = ""
        if name.startswith("sender IP") and int(value) == 0:
            meaning = "0.0.0.0: a probe (RFC 5227 2.1.1)"
        if name.startswith("target IP"):
            out.destination_ip = value
            if body[14:18] == raw:
                meaning = "same as the sender's: an announcement (RFC 5227 3)"
                if int(value):
                    out.announcement = value
        if name.startswith("sender IP"):
            out.source_ip = value
        out.row(base + offset, size, name, value, meaning)
    if len(body) + out.uncaptured > 28:
        captured = f" ({len(body) - 28} captured)" if out.uncaptured else ""
        out.note(f"{len(body) + out.uncaptured - 28} bytes of Ethernet padding after the ARP packet{captured}")


def ipv4_datagram(data: bytes, base: int, out: Explanation) -> None:
    body = data[base:]
    out.section(f"IPv4 header (RFC 791 3.1), {out.size(len(body))} from offset {base}")
    on_wire = len(body) + out.uncaptured
    if len(body) < 1:
        return _missing(out, base, "version")
    version, ihl = body[0] >> 4, body[0] & 0x0F
    out.row(base, 1, "version", version, "IPv4" if version == 4
            else "not 4: discarded (RFC 1122 3.2.1.1)")
    header_length = ihl * 4
    out.row(base, 1, "IHL (header length)", ihl, f"{header_length} bytes" + (
        " (no options)" if ihl == 5 else " with options" if ihl > 5 else ": below 5, invalid (RFC 791)"))
    fixed = [(1, 1, "type of service", lambda v: f"{v:#04x}: DSCP {v >> 2}, ECN {v & 3}"),
             (2, 2, "total length", lambda v: f"{v} bytes, header included" + (
                 f"; the buffer has {on_wire}" if v != on_wire else "")),
             (4, 2, "identification", lambda v: "names the fragments of one datagram"),
             (6, 2, "flags, fragment offset", _flags),
             (8, 1, "TTL", lambda v: "hops left (not checked on delivery, RFC 1122 3.2.1.7)"),
             (9, 1, "protocol", lambda v: PROTOCOLS.get(v, "not handled here"))]
    for offset, size, name, meaning in fixed:
        if len(body) < offset + size:
            return _missing(out, base + offset, name)
        value = int.from_bytes(body[offset:offset + size], "big")
        out.row(base + offset, size, name, f"{value:#06x}" if offset in (4, 6) else value, meaning(value))
    if len(body) < 12:
        return _missing(out, base + 10, "header checksum")
    carried = int.from_bytes(body[10:12], "big")
    if len(body) >= max(header_length, 20):
        computed = internet_checksum([body[:10], b"\x00\x00", body[12:max(header_length, 20)]])
        verdict = _checksum(carried, computed, "a host MUST discard it (RFC 1122 3.2.1.2)")
    else:
        verdict = ("cannot be checked: the header was not all captured" if out.uncaptured
                   else "cannot be checked: the header is cut short")
    out.row(base + 10, 2, "header checksum", f"{carried:#06x}", verdict)
    for offset, name in ((12, "source"), (16, "destination")):
        if len(body) < offset + 4:
            return _missing(out, base + offset, name)
        address = IPv4Address(body[offset:offset + 4])
        if name == "source":
            out.source_ip = address
        else:
            out.destination_ip = address
        out.row(base + offset, 4, f"{name} address", address, _address_meaning(address))
    if header_length > 20:
        options(body[20:header_length], base + 20, out)
    if version != 4 or ihl < 5 or len(body) < header_length:
        return
    total_length = int.from_bytes(body[2:4], "big")
    payload = body[header_length:min(total_length, len(body))] if total_length >= header_length else b""
    out.needed = base + total_length
    # The payload as sent, when the capture holds only its start.
    whole = max(len(payload), min(total_length, on_wire) - header_length)
    if total_length < len(body):
        out.note(f"{len(body) - total_length} bytes after the total length: link padding (RFC 894)")
    fragment = int.from_bytes(body[6:8], "big")
    if fragment & 0x1FFF:
        out.note(f"a fragment at offset {(fragment & 0x1FFF) * 8}: its data is not a whole message")
        return
    protocol = body[9]
    if protocol == 1:
        icmp(payload, base + header_length, out, bool(fragment & 0x2000), whole)
    elif protocol == 17:
        udp(payload, base + header_length, out, body, whole)
    elif protocol == 6:
        tcp(payload, base + header_length, out, out.source_ip, out.destination_ip, whole)
    elif whole:
        out.section(f"payload ({PROTOCOLS.get(protocol, f'protocol {protocol}')}), "
                    f"{out.size(len(payload), whole)}")


def _flags(value: int) -> str:
    parts = []
    if value & 0x8000:
        parts.append("reserved bit set (must be 0)")
    if value & 0x4000:
        parts.append("DF (don't fragment)")
    if value & 0x2000:
        parts.append("MF (more fragments)")
    offset = (value & 0x1FFF) * 8
    parts.append(f"offset {offset}" + (": not a fragment" if not value & 0x3FFF else ""))
    return ", ".join(parts)


def _address_meaning(address: IPv4Address) -> str:
    if address == IPv4Address("255.255.255.255"):
        return "limited broadcast"
    if address.is_multicast:
        return "multicast" + (": all hosts (RFC 1112)" if str(address) == "224.0.0.1" else "")
    if int(address) >> 24 in (0, 127):
        return "never a valid source on a wire (RFC 1122 3.2.1.3)"
    for network in DOCUMENTATION_NETWORKS:
        if address in IPv4Interface(network).network:
            return "documentation address (RFC 5737)"
    return "private (RFC 1918)" if address.is_private else ""


def options(raw: bytes, base: int, out: Explanation) -> None:
    out.section(f"IPv4 options (RFC 791 3.1), {len(raw)} bytes")
    index = 0
    while index < len(raw):
        kind = raw[index]
        name = OPTION_NAMES.get(kind, "unknown option")
        if kind in (0, 1):
            out.row(base + index, 1, f"option {kind}", name)
            if kind == 0:
                return
            index += 1
            continue
        if index + 1 >= len(raw) or not 2 <= raw[index + 1] <= len(raw) - index:
            out.row(base + index, 1, f"option {kind}", name,
                    "its length runs past the header: the datagram is dropped (RFC 1122 3.2.1.8)")
            return
        size = raw[index + 1]
        meaning = f"{size} bytes" + (", copied into fragments" if kind & 0x80 else "")
        if kind in (7, 68) and size >= 3:
            meaning += f", pointer {raw[index + 2]}"
        out.row(base + index, size, f"option {kind}", name, meaning)
        index += size


def icmp(payload: bytes, base: int, out: Explanation, partial: bool, whole: int) -> None:
    out.section(f"ICMP (RFC 792), {out.size(len(payload), whole)}")
    if len(payload) < 8:
        out.note(f"only {len(payload)} bytes{' captured' if whole > len(payload) else ''}: "
                 "an ICMP header is 8")
        return
    kind, code = payload[0], payload[1]
    out.row(base, 1, "type", kind, ICMP_TYPES.get(kind, "unknown: silently discarded (RFC 1122 3.2.2)"))
    out.row(base + 1, 1, "code", code)
    carried = int.from_bytes(payload[2:4], "big")
    if partial:
        verdict = "covers the whole message: checked after reassembly"
    elif whole > len(payload):
        verdict = f"cannot be checked: it covers {whole} bytes, {len(payload)} captured"
    else:
        computed = internet_checksum([payload[:2], b"\x00\x00", payload[4:]])
        verdict = _checksum(carried, computed, "discarded (RFC 792; RFC 1122 3.2.2)")
    out.row(base + 2, 2, "checksum", f"{carried:#06x}", verdict)
    if kind in (0, 8, 13, 14):
        out.row(base + 4, 2, "identifier", int.from_bytes(payload[4:6], "big"), "matches a reply to its request")
        out.row(base + 6, 2, "sequence number", int.from_bytes(payload[6:8], "big"))
    else:
        out.row(base + 4, 4, "rest of header", payload[4:8].hex())
    if whole > 8:
        what = "the datagram in error (its header + data)" if kind in (3, 4, 5, 11, 12) else "data"
        captured = f", {len(payload) - 8} captured" if whole > len(payload) else ""
        out.row(base + 8, max(len(payload) - 8, 1), "data", f"{whole - 8} bytes{captured}", what)


def udp(payload: bytes, base: int, out: Explanation, datagram: bytes, whole: int) -> None:
    out.section(f"UDP (RFC 768), {out.size(len(payload), whole)}")
    if len(payload) < UDP_HEADER.size:
        out.note(f"only {len(payload)} bytes{' captured' if whole > len(payload) else ''}: "
                 f"a UDP header is {UDP_HEADER.size}")
        return
    source_port, destination_port, size, carried = UDP_HEADER.unpack_from(payload)
    out.row(base, 2, "source port", source_port)
    out.row(base + 2, 2, "destination port", destination_port,
            "no service here: Port Unreachable (RFC 1122 4.1.3.1)")
    out.row(base + 4, 2, "length", size, "header + data" if UDP_HEADER.size <= size <= whole else "invalid")
    if carried == 0:
        verdict = "0: not computed by the sender (allowed, RFC 768)"
    elif UDP_HEADER.size <= size <= whole and size > len(payload):
        verdict = f"cannot be checked: it covers {size} bytes, {len(payload)} captured"
    elif UDP_HEADER.size <= size <= len(payload):
        source, destination = IPv4Address(bytes(datagram[12:16])), IPv4Address(bytes(datagram[16:20]))
        computed = udp_checksum(source, destination, [payload[:6], b"\x00\x00", payload[8:size]])
        verdict = _checksum(carried, computed, "discarded (RFC 1122 4.1.3.4)")
    else:
        verdict = "cannot be checked: bad length"
    out.row(base + 6, 2, "checksum", f"{carried:#06x}", verdict)


# ---------------------------------------------------------------------- TCP (issue 16)

#: The control bits, low to high (RFC 9293 3.1; CWR and ECE from RFC 3168).
TCP_FLAG_NAMES = ("FIN", "SYN", "RST", "PSH", "ACK", "URG", "ECE", "CWR")
TCP_FLAG_MEANINGS = {"FIN": "no more data from the sender", "SYN": "synchronize sequence numbers",
                     "RST": "reset the connection", "PSH": "push function",
                     "ACK": "the acknowledgment field is significant", "URG": "the urgent pointer is significant",
                     "ECE": "ECN-Echo (RFC 3168)", "CWR": "congestion window reduced (RFC 3168)"}
TCP_OPTION_NAMES = {0: "end of option list", 1: "no operation", 2: "maximum segment size",
                    3: "window scale (RFC 7323)", 4: "SACK permitted (RFC 2018)", 5: "SACK (RFC 2018)",
                    8: "timestamps (RFC 7323)"}
_TCP_OPTION_LENGTHS = {2: 4, 3: 3, 4: 2, 8: 10}


def tcp(payload: bytes, base: int, out: Explanation, source: object, destination: object, whole: int) -> None:
    """RFC 9293 3.1: the TCP header field by field, its options one by one, the checksum over the
    pseudo-header of either family."""
    from stack.l3.seam import transport_pseudo_header

    out.section(f"TCP (RFC 9293 3.1), {out.size(len(payload), whole)}")
    if len(payload) < 20:
        out.note(f"only {len(payload)} bytes{' captured' if whole > len(payload) else ''}: a TCP header is "
                 "20 (dropped: tcp_truncated)")
        return
    source_port, destination_port = int.from_bytes(payload[0:2], "big"), int.from_bytes(payload[2:4], "big")
    out.row(base, 2, "source port", source_port)
    out.row(base + 2, 2, "destination port", destination_port, "no listener here: closed (RFC 9293 3.10.7.1)")
    flags = payload[13]
    out.row(base + 4, 4, "sequence number", int.from_bytes(payload[4:8], "big"),
            "of the first data octet (the ISN when SYN is set)")
    out.row(base + 8, 4, "acknowledgment number", int.from_bytes(payload[8:12], "big"),
            "the next sequence number expected" if flags & 0x10 else "not significant: ACK is not set")
    header_length = (payload[12] >> 4) * 4
    offset_meaning = (f"{header_length} bytes of header" + (f", {header_length - 20} of options" if header_length > 20 else "")
                      if 20 <= header_length <= len(payload) else
                      f"{header_length} bytes: " + ("below 20" if header_length < 20 else "past the segment")
                      + ", invalid (dropped: tcp_bad_header_length)")
    out.row(base + 12, 1, "data offset", payload[12] >> 4, offset_meaning)
    if payload[12] & 0x0F:
        out.row(base + 12, 1, "reserved", payload[12] & 0x0F, "must be zero; ignored by receivers")
    names = [name for bit, name in enumerate(TCP_FLAG_NAMES) if flags >> bit & 1]
    out.row(base + 13, 1, "flags", f"{flags:#04x}", " ".join(names) or "none set")
    for name in names:
        out.note(f"           {name}: {TCP_FLAG_MEANINGS[name]}")
    out.row(base + 14, 2, "window", int.from_bytes(payload[14:16], "big"), "octets the sender will accept")
    carried = int.from_bytes(payload[16:18], "big")
    if whole > len(payload):
        verdict = f"cannot be checked: it covers {whole} bytes, {len(payload)} captured"
    elif source is None or destination is None:
        verdict = "cannot be checked: no addresses for the pseudo-header"
    else:
        pseudo = transport_pseudo_header(source, destination, 6, len(payload))  # type: ignore[arg-type]
        computed = internet_checksum([pseudo, payload[:16], b"\x00\x00", payload[18:]])
        verdict = _checksum(carried, computed, "discarded (RFC 1122 4.2.2.7; dropped: tcp_bad_checksum)")
    out.row(base + 16, 2, "checksum", f"{carried:#06x}", verdict)
    out.row(base + 18, 2, "urgent pointer", int.from_bytes(payload[18:20], "big"),
            "significant (URG set)" if flags & 0x20 else "not significant: URG is not set")
    if 20 < header_length <= len(payload):
        tcp_options(payload[20:header_length], base + 20, out)
    if 20 <= header_length <= len(payload) and len(payload) > header_length:
        out.row(base + header_length, len(payload) - header_length, "data", f"{len(payload) - header_length} bytes")


def tcp_options(raw: bytes, base: int, out: Explanation) -> None:
    """RFC 9293 3.1: kind, or kind, length and data; an impossible length ends the reading (what
    follows is ignored, as Linux does)."""
    at = 0
    while at < len(raw):
        kind = raw[at]
        name = TCP_OPTION_NAMES.get(kind, "unknown kind: ignored (RFC 9293 3.1)")
        if kind in (0, 1):
            out.row(base + at, 1, "option", kind, name)
            if kind == 0:
                if at + 1 < len(raw):
                    out.row(base + at + 1, len(raw) - at - 1, "padding", f"{len(raw) - at - 1} bytes")
                return
            at += 1
            continue
        if at + 1 >= len(raw):
            out.row(base + at, 1, "option", kind, f"{name}: MALFORMED: no length byte; the rest is ignored")
            return
        size = raw[at + 1]
        expected = _TCP_OPTION_LENGTHS.get(kind)
        if size < 2 or at + size > len(raw) or (expected is not None and size != expected) or (
                kind == 5 and (size - 2) % 8):
            why = (f"length {size} < 2" if size < 2 else f"length {size} runs past the options"
                   if at + size > len(raw) else f"length {size}, not {expected}" if expected is not None
                   else f"length {size} is not 2 + 8n")
            out.row(base + at, len(raw) - at, "option", kind, f"{name}: MALFORMED ({why}): the rest is ignored "
                    "(RFC 9293 3.1: must not crash the receiver)")
            return
        body = raw[at + 2:at + size]
        value: object = body.hex() or "-"
        if kind == 2:
            value = int.from_bytes(body, "big")
        elif kind == 3:
            value = f"shift {body[0]}"
        elif kind == 8:
            value = f"val {int.from_bytes(body[:4], 'big')} ecr {int.from_bytes(body[4:], 'big')}"
        elif kind == 5:
            value = " ".join(f"{int.from_bytes(body[i:i + 4], 'big')}-{int.from_bytes(body[i + 4:i + 8], 'big')}"
                             for i in range(0, len(body), 8))
        out.row(base + at, size, f"option {kind}", value, name)
        at += size


NEXT_HEADERS = {0: "Hop-by-Hop Options (RFC 8200 4.3)", 6: "TCP", 17: "UDP (RFC 768)",
                43: "Routing (RFC 8200 4.4)", 44: "Fragment (RFC 8200 4.5)", 58: "ICMPv6 (RFC 4443)",
                59: "no next header (RFC 8200 4.7)", 60: "Destination Options (RFC 8200 4.6)"}
ICMPV6_TYPES = {1: "destination unreachable", 2: "packet too big", 3: "time exceeded", 4: "parameter problem",
                128: "echo request", 129: "echo reply", 130: "multicast listener query (RFC 3810)",
                131: "multicast listener report v1", 132: "multicast listener done",
                133: "router solicitation (RFC 4861)", 134: "router advertisement (RFC 4861)",
                135: "neighbor solicitation (RFC 4861)", 136: "neighbor advertisement (RFC 4861)",
                137: "redirect (RFC 4861)", 143: "multicast listener report v2 (RFC 3810)"}


def _ipv6_meaning(address: IPv6Address) -> str:
    if address.is_multicast:
        if int(address) >> 24 == 0xFF0200000000000000000001FF:
            return "solicited-node multicast (RFC 4291 2.7.1)"
        return {"ff02::1": "all nodes (RFC 4291 2.7.1)", "ff02::2": "all routers",
                "ff02::16": "all MLDv2 routers (RFC 3810)"}.get(str(address), "multicast")
    if address.is_unspecified:
        return "unspecified: only DAD and MLD send from it"
    if address.is_link_local:
        return "link-local (RFC 4291 2.5.6)"
    if address in IPv6Interface("2001:db8::/32").network:
        return "documentation (RFC 3849)"
    return ""


def ipv6_packet(data: bytes, base: int, out: Explanation) -> None:
    """RFC 8200 3: the fixed header, then the extension headers' chain and the upper layer."""
    from stack.l3.ipv6 import walk_chain

    size = len(data) - base
    out.section(f"IPv6 (RFC 8200), {out.size(size)}")
    if size < 40:
        out.note(f"only {size} bytes: an IPv6 header is 40")
        return
    first = int.from_bytes(data[base:base + 4], "big")
    payload_length, next_header, hop_limit = int.from_bytes(data[base + 4:base + 6], "big"), data[base + 6], data[base + 7]
    source, destination = IPv6Address(bytes(data[base + 8:base + 24])), IPv6Address(bytes(data[base + 24:base + 40]))
    out.source_ip, out.destination_ip = source, destination
    out.row(base, 1, "version", first >> 28, "IPv6" if first >> 28 == 6 else "not 6: discarded (RFC 8200 3)")
    out.row(base, 4, "traffic class, flow label", f"{(first >> 20) & 0xFF}, {first & 0xFFFFF:#x}")
    fits = 40 + payload_length <= size + out.uncaptured
    out.row(base + 4, 2, "payload length", payload_length,
            "after this header" if fits else "more than the packet holds: discarded (RFC 8200 3)")
    out.row(base + 6, 1, "next header", next_header, NEXT_HEADERS.get(next_header, "unknown"))
    out.row(base + 7, 1, "hop limit", hop_limit,
            "255: a neighbour's ND message" if hop_limit == 255 else "not checked on delivery (RFC 8200 3)")
    out.row(base + 8, 16, "source", source, _ipv6_meaning(source))
    out.row(base + 24, 16, "destination", destination, _ipv6_meaning(destination))
    out.needed = base + 40 + payload_length
    if not fits:
        return
    payload = bytes(data[base + 40:base + 40 + payload_length])
    try:
        chain = walk_chain(next_header, payload)
    except ParseError as error:
        out.note(f"the extension headers do not parse: {error}")
        return
    for header in chain.headers:
        out.row(base + header.offset, 2, NEXT_HEADERS.get(header.type, f"header {header.type}").split(" (")[0],
                f"{len(header.data) if hasattr(header, 'data') else ''}".strip() or "-",
                f"then {NEXT_HEADERS.get(header.next_header, header.next_header)}")
    upper = chain.upper_layer_data
    start = base + chain.upper_layer_offset
    if chain.upper_layer == 58 and chain.fragment is None and len(upper) >= 4:
        from stack.l3.icmpv6 import checksum as icmpv6_checksum

        out.section(f"ICMPv6 (RFC 4443), {len(upper)} bytes")
        kind = upper[0]
        out.row(start, 1, "type", kind, ICMPV6_TYPES.get(kind, "unknown: an informational one is discarded "
                                                         "(RFC 4443 2.4 (b))" if kind >= 128 else "unknown error"))
        out.row(start + 1, 1, "code", upper[1])
        carried = int.from_bytes(upper[2:4], "big")
        computed = icmpv6_checksum(source, destination, [upper[:2], b"\x00\x00", upper[4:]])
        out.row(start + 2, 2, "checksum", f"{carried:#06x}",
                _checksum(carried, computed, "discarded (RFC 4443 2.3; pseudo-header RFC 8200 8.1)"))
        if kind in (128, 129) and len(upper) >= 8:
            out.row(start + 4, 2, "identifier", int.from_bytes(upper[4:6], "big"), "matches a reply to its request")
            out.row(start + 6, 2, "sequence number", int.from_bytes(upper[6:8], "big"))
        elif kind in (135, 136) and len(upper) >= 24:
            out.row(start + 4, 4, "flags" if kind == 136 else "reserved", upper[4:8].hex())
            out.row(start + 8, 16, "target", IPv6Address(bytes(upper[8:24])), "the address asked about")
    elif chain.upper_layer == 6 and chain.fragment is None:
        tcp(upper, start, out, source, destination, len(upper))
    elif chain.upper_layer == 17 and len(upper) >= 8:
        out.section(f"UDP (RFC 768), {len(upper)} bytes")
        out.row(start, 2, "source port", int.from_bytes(upper[0:2], "big"))
        out.row(start + 2, 2, "destination port", int.from_bytes(upper[2:4], "big"),
                "no service here: Port Unreachable (RFC 4443 3.1)")


def decode(frame: bytes, medium: str = "ethernet", packet_info: bool = False,
           original_length: int | None = None) -> Explanation:
    """The field-by-field part (``original_length``: the frame's length when sent, if the
    capture holds less). Never raises."""
    out = Explanation(uncaptured=max(0, (original_length or 0) - len(frame)))
    try:
        if medium == "ethernet":
            ethernet(frame, out)
        elif packet_info:
            out.section("TUN packet information (struct tun_pi), 4 bytes")
            if len(frame) < 4:
                out.note(f"only {len(frame)} bytes: the header is 4")
                return out
            flags = int.from_bytes(frame[0:2], "little")
            protocol = int.from_bytes(frame[2:4], "big")
            out.row(0, 2, "flags (host order)", f"{flags:#06x}",
                    "TUN_PKT_STRIP: the kernel cut the packet" if flags & 1 else "")
            out.row(2, 2, "protocol", f"{protocol:#06x}", ETHERTYPE_NAMES.get(protocol, "unknown"))
            if protocol == 0x0800:
                ipv4_datagram(frame, 4, out)
            elif protocol == 0x86DD:
                ipv6_packet(frame, 4, out)
        elif len(frame) and frame[0] >> 4 == 6:
            ipv6_packet(frame, 0, out)
        else:
            ipv4_datagram(frame, 0, out)
    except Exception as error:  # a bug here must not hide the rest: say so and go on
        out.note(f"(decoding stopped: {error!r})")
    return out


def _could_be_a_host(candidate: IPv4Address | None) -> bool:
    return candidate is not None and not (candidate.is_multicast or candidate.is_unspecified
                                          or candidate.is_loopback or candidate.is_reserved
                                          or int(candidate) & 0xFF in (0, 255))


def _host_address(out: Explanation, address: IPv4Interface | None) -> tuple[IPv4Interface, str]:
    if address is not None:
        return address, "as given"
    announced = out.announcement
    if _could_be_a_host(announced):
        # An announcement is news for the other hosts on the link, not for its sender's address.
        network = IPv4Interface(f"{announced}/24").network
        neighbour = next(h for h in network.hosts() if h != announced)
        return IPv4Interface(f"{neighbour}/24"), f"a neighbour of {announced}, which is announced"
    candidate = out.destination_ip
    if _could_be_a_host(candidate):
        return IPv4Interface(f"{candidate}/24"), "the frame's destination, assuming a /24"
    return FALLBACK_ADDRESS, "the frame names no address a host could have"


def answer(frame: bytes, out: Explanation, medium: str = "ethernet", packet_info: bool = False,
           address: IPv4Interface | None = None) -> list[str]:
    """What a fresh host would do with the frame, as lines. Never raises."""
    from stack.node import TapHost, TunHost

    if isinstance(out.destination_ip, IPv6Address) or isinstance(out.source_ip, IPv6Address):
        return _answer6(frame, out, medium, packet_info)
    interface, why = _host_address(out, address)
    if out.uncaptured and (out.needed is None or len(frame) < out.needed):
        return [f"What tapstack would do: cannot be told from {len(frame)} of the frame's "
                f"{len(frame) + out.uncaptured} bytes (capture whole frames: tcpdump -s 0, or "
                "tapstack's own --pcap)"]
    lines = []
    try:
        source = out.source_ip if out.source_ip is not None and out.source_ip != interface.ip else None
        if medium == "ethernet":
            mac = out.destination_mac
            if mac is None or mac.is_multicast or mac == MacAddress(bytes(6)):
                mac = None
            host = TapHost([interface], mac=mac)
            now = run_until_quiet(host, 0.0).now  # its start-up announcements, sent
            if source is not None and out.source_mac is not None and not out.source_mac.is_multicast \
                    and interface.network.prefixlen and host.ip.on_link(source):
                host.link.cache.learn(source, out.source_mac, now)  # the sender is known
            lines.append(f"What tapstack would do, as {interface} at {host.mac} ({why})"
                         + (f", knowing {source} at {out.source_mac}:" if source in host.link.cache else ":"))
        else:
            host = TunHost([interface], peer=source, packet_info=packet_info)
            now = run_until_quiet(host, 0.0).now
            lines.append(f"What tapstack would do, as {interface} on a TUN link ({why}):")
        # What it sends at once; a timer due later (an ARP retry, a reassembly timeout) is not told.
        replies = run_until_quiet(host, now, [frame], within=0.0).sent
    except (ValueError, ParseError) as error:
        return [f"What tapstack would do: cannot set up a host as {interface}: {error}"]
    except Exception as error:  # a bug in the stack: report it, never crash the command
        return lines + [f"  internal error in the stack: {error!r} (please report the frame)"]
    if out.uncaptured:
        lines.append(f"  (the {out.uncaptured} bytes not captured are link padding: the answer does "
                     "not depend on them)")
    stats = host.stats
    if stats["dropped"]:
        lines.append(f"  drop {explain_drop(stats.last_drop or '', stats.last_drop_detail)}")
    for reply in replies:
        lines.append(f"  answer: {summarize(reply, medium, packet_info)}")
    if not replies and not stats["dropped"]:
        lines.append("  takes it and sends nothing back"
                     + (" (learns the sender's MAC)" if stats["arp_replies_received"] else ""))
    announced = out.announcement
    if announced is not None and announced not in host.ip.addresses:
        lines.append(f"  an announcement of {announced} at {out.source_mac} (RFC 5227 3): it asks "
                     "nothing, so no host answers it; a host with")
        lines.append(f"  {announced} in its ARP cache updates that entry to this MAC (RFC 826 merge), "
                     "one without leaves its cache as it is")
    for name in ("icmp_error_about_icmp_error", "icmp_error_about_broadcast",
                 "icmp_error_about_link_broadcast", "icmp_error_about_fragment", "icmp_error_to_non_host"):
        if stats[name]:
            lines.append(f"  no ICMP error sent ({name.replace('_', ' ')}: RFC 1122 3.2.2)")
    return lines


def _answer6(frame: bytes, out: Explanation, medium: str, packet_info: bool) -> list[str]:
    """As ``answer``, for an IPv6 packet: a host with the packet's destination (or 2001:db8::2)
    as its address, duplicate address detection done, the sender's MAC known."""
    from stack.node import TapHost, TunHost

    destination = out.destination_ip
    if isinstance(destination, IPv6Address) and not (destination.is_multicast or destination.is_unspecified):
        interface, why = IPv6Interface(f"{destination}/64"), "the packet's destination, assuming a /64"
    else:
        interface, why = IPv6Interface("2001:db8::2/64"), "the packet names no address a host could have"
    source = out.source_ip if isinstance(out.source_ip, IPv6Address) else None
    lines = []
    try:
        if medium == "ethernet":
            mac = out.destination_mac
            if mac is None or mac.is_multicast:
                mac = None
            host = TapHost([interface], mac=mac, dad_transmits=0)
            now = run_until_quiet(host, 0.0).now
            known = source is not None and out.source_mac is not None and not out.source_mac.is_multicast \
                and not source.is_unspecified and not source.is_multicast
            if known:
                host.ip6.resolver.learn(source, bytes(out.source_mac), now)  # the sender is known
            lines.append(f"What tapstack would do, as {interface} at {host.mac} ({why})"
                         + (f", knowing {source} at {out.source_mac}:" if known else ":"))
        else:
            host = TunHost([interface], packet_info=packet_info)
            now = run_until_quiet(host, 0.0).now
            lines.append(f"What tapstack would do, as {interface} on a TUN link ({why}):")
        replies = run_until_quiet(host, now, [frame], within=0.0).sent
    except (ValueError, ParseError) as error:
        return [f"What tapstack would do: cannot set up a host as {interface}: {error}"]
    except Exception as error:  # a bug in the stack: report it, never crash the command
        return lines + [f"  internal error in the stack: {error!r} (please report the frame)"]
    stats = host.stats
    if stats["dropped"]:
        lines.append(f"  drop {explain_drop(stats.last_drop or '', stats.last_drop_detail)}")
    for reply in replies:
        lines.append(f"  answer: {summarize(reply, medium, packet_info)}")
    if not replies and not stats["dropped"]:
        lines.append("  takes it and sends nothing back")
    for name in ("icmpv6_error_about_icmpv6_error", "icmpv6_error_to_multicast", "icmpv6_error_to_unspecified_source"):
        if stats[name]:
            lines.append(f"  no ICMPv6 error sent ({name.replace('_', ' ')}: RFC 4443 2.4 (e))")
    return lines


def explain(frame: bytes, medium: str = "ethernet", packet_info: bool = False,
            address: IPv4Interface | None = None, original_length: int | None = None) -> str:
    """The whole explanation as text: fields, then tapstack's answer. ``original_length``: the
    frame's length when sent, if ``frame`` is only its captured start. Never raises."""
    frame = bytes(frame)
    out = decode(frame, medium, packet_info, original_length)
    header = f"  {'offset':<8} {'field':<24} {'value':<20} meaning"
    lines = [header, *out.lines] if out.lines else [header]
    return "\n".join(lines + [""] + answer(frame, out, medium, packet_info, address)) + "\n"
