"""IPv6 for ``tapstack explain``: the fixed header, each extension header field by field (every
option with its action bits), ICMPv6, the Neighbor Discovery messages and their options, MLD.

Read first: RFC 8200 3-4 (header, extension headers, option action bits), RFC 4443 (ICMPv6),
RFC 4861 4 and 6.1, 7.1, 8.1 (ND messages, options, validity checks), RFC 2710 3 (MLDv1),
RFC 3810 5 and 8.1 (MLDv2 query and report). Sans-I/O: bytes in, rows out; a field the packet
does not hold is "(missing)", never an exception.
"""

from __future__ import annotations

from ipaddress import IPv6Address, IPv6Network
from typing import TYPE_CHECKING

from stack.checksum import internet_checksum
from stack.l2.ethernet import MacAddress
from stack.l3.ipv6 import pseudo_header
from stack.l3.icmpv6 import checksum as icmpv6_checksum
from stack.l3.icmpv6 import decode_exponential
from stack.l4.udp import HEADER as UDP_HEADER

if TYPE_CHECKING:
    from stack.tools.explain import Explanation

NEXT_HEADERS = {0: "Hop-by-Hop Options (RFC 8200 4.3)", 6: "TCP", 17: "UDP (RFC 768)",
                43: "Routing (RFC 8200 4.4)", 44: "Fragment (RFC 8200 4.5)", 50: "ESP (not supported)",
                51: "AH (not supported)", 58: "ICMPv6 (RFC 4443)", 59: "no next header (RFC 8200 4.7)",
                60: "Destination Options (RFC 8200 4.6)"}
#: The extension headers tapstack walks (stack.l3.ipv6.EXTENSION_HEADERS).
EXTENSION_HEADERS = (0, 43, 44, 60)
ICMPV6_TYPES = {1: "destination unreachable", 2: "packet too big", 3: "time exceeded", 4: "parameter problem",
                128: "echo request", 129: "echo reply", 130: "multicast listener query",
                131: "multicast listener report v1 (RFC 2710)", 132: "multicast listener done (RFC 2710)",
                133: "router solicitation (RFC 4861 4.1)", 134: "router advertisement (RFC 4861 4.2)",
                135: "neighbor solicitation (RFC 4861 4.3)", 136: "neighbor advertisement (RFC 4861 4.4)",
                137: "redirect (RFC 4861 4.5)", 143: "multicast listener report v2 (RFC 3810 5.2)"}
#: Hop-by-Hop and Destination options by type (IANA "Destination Options and Hop-by-Hop Options").
IPV6_OPTION_NAMES = {0: "Pad1", 1: "PadN", 4: "tunnel encapsulation limit (RFC 2473)",
                     5: "router alert (RFC 2711)", 0xC2: "jumbo payload (RFC 2675)",
                     0xC9: "home address (RFC 6275)"}
#: RFC 8200 4.2: the two high-order bits of an option type: what a node that does not know it does.
OPTION_ACTIONS = {0: "00: skip it", 1: "01: discard the packet",
                  2: "10: discard, Parameter Problem code 2",
                  3: "11: discard, Parameter Problem code 2 unless to multicast"}
ROUTING_TYPES = {0: "type 0, deprecated (RFC 5095: treated as unknown)", 2: "Mobile IPv6 (RFC 6275)",
                 3: "RPL source route (RFC 6554)", 4: "segment routing (RFC 8754)"}
ND_OPTION_NAMES = {1: "source link-layer address (RFC 4861 4.6.1)", 2: "target link-layer address (RFC 4861 4.6.1)",
                   3: "prefix information (RFC 4861 4.6.2)", 4: "redirected header (RFC 4861 4.6.3)",
                   5: "MTU (RFC 4861 4.6.4)"}
#: RFC 4861 4.6.2, 4.6.4: the only lengths (in 8-octet units) these options may have.
ND_OPTION_LENGTHS = {3: 4, 5: 1}
MLD_RECORD_TYPES = {1: "MODE_IS_INCLUDE", 2: "MODE_IS_EXCLUDE", 3: "CHANGE_TO_INCLUDE_MODE",
                    4: "CHANGE_TO_EXCLUDE_MODE", 5: "ALLOW_NEW_SOURCES", 6: "BLOCK_OLD_SOURCES"}
#: Each ND message: the RFC 4861 section of its validity checks, and where its options start.
ND_MESSAGES = {133: ("6.1.1", 8), 134: ("6.1.2", 16), 135: ("7.1.1", 24), 136: ("7.1.2", 24), 137: ("8.1", 40)}
INFINITY = 0xFFFFFFFF  # RFC 4861 4.6.2: a lifetime of all ones is infinity
SOLICITED_NODE = IPv6Network("ff02::1:ff00:0/104")


def address_meaning(address: IPv6Address) -> str:
    if address.is_multicast:
        if address in SOLICITED_NODE:
            return "solicited-node multicast (RFC 4291 2.7.1)"
        return {"ff02::1": "all nodes (RFC 4291 2.7.1)", "ff02::2": "all routers",
                "ff02::16": "all MLDv2 routers (RFC 3810)"}.get(str(address), "multicast")
    if address.is_unspecified:
        return "unspecified: only DAD and MLD send from it"
    if address.is_link_local:
        return "link-local (RFC 4291 2.5.6)"
    if address in IPv6Network("2001:db8::/32"):
        return "documentation (RFC 3849)"
    return ""


def _checksum(carried: int, computed: int, rule: str) -> str:
    if carried == computed:
        return f"correct (computed {computed:#06x})"
    return f"WRONG: computed {computed:#06x}; {rule}"


def _field(data: bytes, start: int, size: int, out: Explanation, name: str) -> int | None:
    """The field of ``size`` bytes at ``start`` as an integer, or None (and a "(missing)" row)."""
    if start + size > len(data):
        out.row(start, 1, name, "(missing)", "the packet ends before this field")
        return None
    return int.from_bytes(data[start:start + size], "big")


def _address(data: bytes, start: int, out: Explanation, name: str, meaning: str = "") -> IPv6Address | None:
    if start + 16 > len(data):
        out.row(start, 1, name, "(missing)", "the packet ends before this field")
        return None
    address = IPv6Address(bytes(data[start:start + 16]))
    out.row(start, 16, name, address, meaning or address_meaning(address))
    return address


def _lifetime(value: int, unit: str = "s") -> str:
    return "infinity" if value == INFINITY else f"{value} {unit}"


# ---------------------------------------------------------------------- the IPv6 header


def ipv6_packet(data: bytes, base: int, out: Explanation) -> None:
    """RFC 8200 3: the fixed header, then the extension headers' chain and the upper layer."""
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
    out.row(base + 8, 16, "source", source, address_meaning(source))
    out.row(base + 24, 16, "destination", destination, address_meaning(destination))
    end = base + 40 + payload_length
    out.needed = end
    if not fits:
        return
    if len(data) > end:
        out.note(f"{len(data) - end} bytes after the payload length: link padding")
    data = bytes(data[:end])
    walked = extension_headers(data, base, next_header, out, destination.is_multicast)
    if walked is None:
        return
    upper, start, fragment = walked
    if fragment:
        out.section(f"fragment data ({NEXT_HEADERS.get(upper, f'next header {upper}')}), {end - start} bytes")
        out.note("a part of a larger packet: its upper layer is read after reassembly (RFC 8200 4.5)")
    elif upper == 58:
        icmpv6(data, start, out, source, destination, hop_limit)
    elif upper == 17:
        udp6(data, start, out, source, destination)
    elif upper == 6:
        from stack.tools.explain import tcp

        tcp(data[start:end], start, out, source, destination, end - start)
    elif upper == 59:
        if end > start:
            out.note(f"{end - start} bytes after No Next Header: ignored (RFC 8200 4.7)")
    else:
        out.section(f"payload ({NEXT_HEADERS.get(upper, f'next header {upper}')}), {end - start} bytes")
        out.note("a next header tapstack does not know: Parameter Problem code 1 pointing at the "
                 "field that names it (RFC 8200 4)")


def extension_headers(data: bytes, base: int, next_header: int, out: Explanation,
                      multicast: bool) -> tuple[int, int, bool] | None:
    """Each extension header (RFC 8200 4) field by field; (the upper layer's Next Header value,
    where it starts, whether the packet is a fragment), or None when the chain breaks off."""
    index = base + 40
    end = len(data)
    fragment = False
    first = True
    while next_header in EXTENSION_HEADERS:
        name = NEXT_HEADERS[next_header]
        if next_header == 44:
            length = 8
        elif index + 2 <= end:
            length = (data[index + 1] + 1) * 8
        else:
            out.section(f"{name}")
            out.note(f"only {end - index} bytes left: the header does not fit: discarded, Parameter Problem "
                     "code 0 (RFC 8200 4)")
            return None
        out.section(f"{name}, {length} bytes")
        if next_header == 0 and not first:
            # RFC 8200 4.1: only directly after the IPv6 header.
            out.note("a Hop-by-Hop header not right after the IPv6 header: treated as an unknown next "
                     "header, Parameter Problem code 1 (RFC 8200 4)")
        if index + length > end:
            out.note(f"{length} bytes, but only {end - index} left in the payload: discarded, Parameter "
                     "Problem code 0 (RFC 8200 4)")
            return None
        out.row(index, 1, "next header", data[index], NEXT_HEADERS.get(data[index], "upper layer or unknown"))
        if next_header == 44:
            word = int.from_bytes(data[index + 2:index + 4], "big")
            offset, more = word >> 3, word & 1
            out.row(index + 1, 1, "reserved", data[index + 1], "ignored (RFC 8200 4.5)")
            kind = ("atomic: a whole packet, processed at once (RFC 6946)" if offset == 0 and not more
                    else "the first fragment" if offset == 0 else "a later fragment")
            out.row(index + 2, 2, "fragment offset, M", f"{offset * 8}, M={more}",
                    f"offset in bytes (units of 8); {kind}")
            out.row(index + 4, 4, "identification", int.from_bytes(data[index + 4:index + 8], "big"),
                    "names the fragments of one packet")
            fragment = fragment or not (offset == 0 and not more)
            if offset:
                return data[index], index + 8, True
        else:
            out.row(index + 1, 1, "header extension length", data[index + 1], f"{length} bytes: (n + 1) x 8")
            if next_header == 43:
                _routing(data, index, length, out)
            else:
                _options(data, index + 2, index + length, next_header, out, multicast)
        next_header = data[index]
        index += length
        first = False
    return next_header, index, fragment


def _routing(data: bytes, index: int, length: int, out: Explanation) -> None:
    routing_type, segments_left = data[index + 2], data[index + 3]
    out.row(index + 2, 1, "routing type", routing_type, ROUTING_TYPES.get(routing_type, "unknown"))
    # RFC 8200 4.4: a host knows no routing type: with Segments Left 0 the header is ignored,
    # otherwise the packet is discarded with Parameter Problem code 0 at the Routing Type.
    out.row(index + 3, 1, "segments left", segments_left,
            "0: the header is ignored (RFC 8200 4.4)" if segments_left == 0 else
            "an unknown type with segments left: discarded, Parameter Problem code 0 at the routing type "
            "(RFC 8200 4.4)")
    out.row(index + 4, length - 4, "type-specific data", f"{length - 4} bytes")


def _options(data: bytes, start: int, end: int, header: int, out: Explanation, multicast: bool) -> None:
    """The options of a Hop-by-Hop or Destination Options header (RFC 8200 4.2), each with its
    action bits and what tapstack does with it."""
    index = start
    while index < end:
        kind = data[index]
        if kind == 0:
            out.row(index, 1, "option 0", "Pad1", "one byte of padding (RFC 8200 4.2)")
            index += 1
            continue
        if index + 2 > end or index + 2 + data[index + 1] > end:
            out.row(index, 1, f"option {kind:#04x}", IPV6_OPTION_NAMES.get(kind, "unknown"),
                    "runs past its header: discarded, Parameter Problem code 0 (RFC 8200 4.2)")
            return
        size = data[index + 1]
        action = kind >> 6
        if kind == 1:
            meaning = "padding (RFC 8200 4.2)"
        elif kind == 5 and header == 0:
            value = int.from_bytes(data[index + 2:index + 4], "big") if size == 2 else None
            meaning = f"value {value}" + (": MLD" if value == 0 else "") + "; recognised (RFC 2711), read on"
        elif action == 0:
            meaning = "unknown: skipped, the header read on (RFC 8200 4.2)"
        elif action == 3 and multicast:
            meaning = "unknown, to multicast: silently discarded (RFC 8200 4.2)"
        else:
            meaning = "unknown: " + OPTION_ACTIONS[action].split(": ", 1)[1] + " (RFC 8200 4.2)"
        known = IPV6_OPTION_NAMES.get(kind, "unknown").split(" (")[0]
        out.row(index, 2 + size, f"option {kind:#04x}", f"{known}, {size} bytes", meaning)
        # RFC 8200 4.2: the two high-order bits (the action when the option is unknown), and the
        # third (whether its data may change en route).
        out.row(index, 1, "  action, change bits", f"{action:02b}, {(kind >> 5) & 1}",
                f"if unknown: {OPTION_ACTIONS[action].split(': ', 1)[1]}; data "
                f"{'may' if kind & 0x20 else 'does not'} change en route")
        index += 2 + size


# ---------------------------------------------------------------------- ICMPv6


def icmpv6(data: bytes, start: int, out: Explanation, source: IPv6Address, destination: IPv6Address,
           hop_limit: int) -> None:
    message = data[start:]
    out.section(f"ICMPv6 (RFC 4443), {len(message)} bytes")
    if len(message) < 4:
        out.note(f"only {len(message)} bytes: an ICMPv6 header is at least 4")
        return
    kind, code = message[0], message[1]
    out.row(start, 1, "type", kind, ICMPV6_TYPES.get(kind, "unknown informational: discarded (RFC 4443 2.4 (b))"
                                                       if kind >= 128 else "unknown error: passed up, counted"))
    out.row(start + 1, 1, "code", code, "must be 0 (RFC 4861)" if kind in ND_MESSAGES and code else "")
    carried = int.from_bytes(message[2:4], "big")
    computed = icmpv6_checksum(source, destination, [message[:2], b"\x00\x00", message[4:]])
    out.row(start + 2, 2, "checksum", f"{carried:#06x}",
            _checksum(carried, computed, "discarded (RFC 4443 2.3; pseudo-header RFC 8200 8.1)"))
    body = ICMPV6_BODIES.get(kind)
    if body is not None:
        body(data, start, out)
    elif kind < 128 and len(message) > 4:
        out.row(start + 4, 4, "rest of header", bytes(message[4:8]).hex())
    if kind in ND_MESSAGES:
        nd_validity(data, start, out, kind, source, destination, hop_limit)


def _echo(data: bytes, start: int, out: Explanation) -> None:
    identifier = _field(data, start + 4, 2, out, "identifier")
    if identifier is None:
        return
    out.row(start + 4, 2, "identifier", identifier, "matches a reply to its request")
    sequence = _field(data, start + 6, 2, out, "sequence number")
    if sequence is not None:
        out.row(start + 6, 2, "sequence number", sequence)
    if len(data) > start + 8:
        out.row(start + 8, len(data) - start - 8, "data", f"{len(data) - start - 8} bytes", "echoed back")


def _error(data: bytes, start: int, out: Explanation) -> None:
    kind = data[start]
    value = _field(data, start + 4, 4, out, "rest of header")
    if value is None:
        return
    name, meaning = {2: ("MTU", "the next hop's MTU"), 4: ("pointer", "the offset of the field in error")}.get(
        kind, ("unused", "zero when sent"))
    out.row(start + 4, 4, name, value, meaning)
    if len(data) > start + 8:
        out.row(start + 8, len(data) - start - 8, "invoking packet", f"{len(data) - start - 8} bytes",
                "as much as fits in 1280 bytes (RFC 4443 2.4 (c))")


# ---------------------------------------------------------------------- Neighbor Discovery


def _reserved(data: bytes, start: int, out: Explanation, size: int = 4, rfc: str = "RFC 4861") -> None:
    value = _field(data, start, size, out, "reserved")
    if value is not None:
        out.row(start, size, "reserved", f"{value:#x}", f"sent as 0, ignored ({rfc})")


def _router_solicitation(data: bytes, start: int, out: Explanation) -> None:
    _reserved(data, start + 4, out)
    nd_options(data, start + 8, out)


def _router_advertisement(data: bytes, start: int, out: Explanation) -> None:
    hops = _field(data, start + 4, 1, out, "cur hop limit")
    if hops is None:
        return
    out.row(start + 4, 1, "cur hop limit", hops, "0: unspecified by this router" if hops == 0
            else "the hop limit hosts should send with")
    flags = data[start + 5] if len(data) > start + 5 else None
    if flags is None:
        return _field(data, start + 5, 1, out, "flags M, O")
    out.row(start + 5, 1, "flags M, O", f"M={flags >> 7}, O={(flags >> 6) & 1}",
            "M: addresses from DHCPv6; O: other settings from DHCPv6 (RFC 4861 4.2)")
    lifetime = _field(data, start + 6, 2, out, "router lifetime")
    if lifetime is None:
        return
    out.row(start + 6, 2, "router lifetime", f"{lifetime} s", "0: not a default router" if lifetime == 0
            else "how long it may be a default router")
    reachable = _field(data, start + 8, 4, out, "reachable time")
    if reachable is None:
        return
    out.row(start + 8, 4, "reachable time", f"{reachable} ms", "0: unspecified" if reachable == 0
            else "how long a neighbour counts as reachable after a confirmation")
    retrans = _field(data, start + 12, 4, out, "retrans timer")
    if retrans is None:
        return
    out.row(start + 12, 4, "retrans timer", f"{retrans} ms", "0: unspecified" if retrans == 0
            else "the time between two Neighbor Solicitations")
    nd_options(data, start + 16, out)


def _neighbor_solicitation(data: bytes, start: int, out: Explanation) -> None:
    _reserved(data, start + 4, out)
    target = _address(data, start + 8, out, "target address", "the address asked about")
    if target is None:
        return
    out.target_ip = target
    nd_options(data, start + 24, out)


def _neighbor_advertisement(data: bytes, start: int, out: Explanation) -> None:
    flags = _field(data, start + 4, 4, out, "flags R, S, O")
    if flags is None:
        return
    out.row(start + 4, 4, "flags R, S, O", f"R={flags >> 31}, S={(flags >> 30) & 1}, O={(flags >> 29) & 1}",
            "R: a router; S: an answer to a solicitation; O: overrides a cached MAC (RFC 4861 4.4)")
    if _address(data, start + 8, out, "target address", "the address advertised") is None:
        return
    nd_options(data, start + 24, out)


def _redirect(data: bytes, start: int, out: Explanation) -> None:
    _reserved(data, start + 4, out)
    if _address(data, start + 8, out, "target address", "the better first hop") is None:
        return
    if _address(data, start + 24, out, "destination address", "the destination redirected") is None:
        return
    nd_options(data, start + 40, out)


def nd_options(data: bytes, start: int, out: Explanation) -> None:
    """The options after an ND message's fixed part (RFC 4861 4.6): type, length in units of 8
    bytes, and each option's own fields."""
    index = start
    end = len(data)
    while index < end:
        if index + 2 > end:
            out.row(index, 1, "option", "(cut)", "1 byte: not an option's 2-byte head; tapstack drops the "
                                                 "message (nd_option_truncated)")
            return
        kind, units = data[index], data[index + 1]
        name = ND_OPTION_NAMES.get(kind, "unknown")
        if units == 0:
            # RFC 4861 4.6: nodes MUST silently discard an ND packet with an option of length 0.
            out.row(index, 2, f"ND option {kind}", "length 0",
                    f"{name.split(' (')[0]}, length 0: the whole packet is silently discarded (RFC 4861 4.6)")
            return
        size = units * 8
        if index + size > end:
            out.row(index, 2, f"ND option {kind}", f"{size} bytes",
                    f"{name.split(' (')[0]}: runs past the message ({end - index} bytes left): discarded")
            return
        out.section(f"ND option: {name}, {size} bytes")
        out.row(index, 1, "type", kind, name.split(" (")[0] if kind in ND_OPTION_NAMES
                else "unknown: skipped (RFC 4861 4.6: receivers MUST ignore options they do not know)")
        expected = ND_OPTION_LENGTHS.get(kind)
        wrong = expected is not None and units != expected
        out.row(index + 1, 1, "length", units, f"{size} bytes (units of 8)" + (
            f"; not {expected}: the message is discarded (RFC 4861 4.6.{2 if kind == 3 else 4})" if wrong else ""))
        if not wrong:
            ND_OPTION_BODIES.get(kind, _unknown_option)(data, index, size, out)
        index += size


def _link_layer_option(data: bytes, index: int, size: int, out: Explanation) -> None:
    raw = bytes(data[index + 2:index + size])
    value = MacAddress(raw[:6]) if len(raw) >= 6 else raw.hex()
    sender = "the sender's" if data[index] == 1 else "the target's"
    out.row(index + 2, size - 2, "link-layer address", value,
            f"{sender} MAC" + (f" (+{len(raw) - 6} bytes of padding)" if len(raw) > 6 else ""))


def _prefix_information(data: bytes, index: int, size: int, out: Explanation) -> None:
    length, flags = data[index + 2], data[index + 3]
    out.row(index + 2, 1, "prefix length", length, "bits of the prefix that count")
    out.row(index + 3, 1, "flags L, A", f"L={flags >> 7}, A={(flags >> 6) & 1}",
            "L: on-link; A: usable for address autoconfiguration (RFC 4862)")
    valid = int.from_bytes(data[index + 4:index + 8], "big")
    preferred = int.from_bytes(data[index + 8:index + 12], "big")
    out.row(index + 4, 4, "valid lifetime", _lifetime(valid), "how long the prefix is on-link")
    out.row(index + 8, 4, "preferred lifetime", _lifetime(preferred),
            "how long addresses from it are preferred" + (": more than valid, ignored (RFC 4862 5.5.3 (c))"
                                                          if preferred > valid else ""))
    out.row(index + 12, 4, "reserved", int.from_bytes(data[index + 12:index + 16], "big"))
    prefix = IPv6Address(bytes(data[index + 16:index + 32]))
    out.row(index + 16, 16, "prefix", f"{prefix}/{length}",
            "link-local: ignored (RFC 4861 6.3.4)" if prefix.is_link_local else "")


def _redirected_header(data: bytes, index: int, size: int, out: Explanation) -> None:
    out.row(index + 2, 6, "reserved", bytes(data[index + 2:index + 8]).hex())
    inner = bytes(data[index + 8:index + size])
    meaning = "the start of the redirected packet"
    if len(inner) >= 40 and inner[0] >> 4 == 6:
        meaning += f": {IPv6Address(inner[8:24])} > {IPv6Address(inner[24:40])}"
    out.row(index + 8, size - 8, "IP header + data", f"{len(inner)} bytes", meaning)


def _mtu_option(data: bytes, index: int, size: int, out: Explanation) -> None:
    out.row(index + 2, 2, "reserved", int.from_bytes(data[index + 2:index + 4], "big"))
    mtu = int.from_bytes(data[index + 4:index + 8], "big")
    out.row(index + 4, 4, "MTU", mtu, "the link's MTU" + (": below 1280, ignored (RFC 8200 5)" if mtu < 1280 else ""))


def _unknown_option(data: bytes, index: int, size: int, out: Explanation) -> None:
    out.row(index + 2, size - 2, "data", f"{size - 2} bytes", "skipped")


ND_OPTION_BODIES = {1: _link_layer_option, 2: _link_layer_option, 3: _prefix_information,
                    4: _redirected_header, 5: _mtu_option}


def nd_validity(data: bytes, start: int, out: Explanation, kind: int, source: IPv6Address,
                destination: IPv6Address, hop_limit: int) -> None:
    """The checks of RFC 4861 (6.1.1, 6.1.2, 7.1.1, 7.1.2, 8.1) a message must pass, or a host
    MUST silently discard it; each one the packet fails is said."""
    section, minimum = ND_MESSAGES[kind]
    failed = []
    if hop_limit != 255:
        failed.append(f"hop limit {hop_limit}, not 255: it may come from off the link")
    if data[start + 1]:
        failed.append(f"code {data[start + 1]}, not 0")
    if len(data) - start < minimum:
        failed.append(f"{len(data) - start} bytes, fewer than {minimum}")
    options = _option_kinds(data, start + minimum)
    if 0 in options.values():
        failed.append("an option of length 0")
    target = IPv6Address(bytes(data[start + 8:start + 24])) if len(data) - start >= 24 else None
    if kind in (135, 136) and target is not None and target.is_multicast:
        failed.append(f"the target {target} is multicast")
    if kind == 135 and source.is_unspecified:
        if destination not in SOLICITED_NODE:
            failed.append("from :: (DAD) but not to a solicited-node group")
        if 1 in options:
            failed.append("from :: with a source link-layer address option")
    if kind == 133 and source.is_unspecified and 1 in options:
        failed.append("from :: with a source link-layer address option")
    if kind == 136 and destination.is_multicast and len(data) - start >= 8 and data[start + 4] & 0x40:
        failed.append("to a multicast address with the S (solicited) flag set")
    if kind in (134, 137) and not source.is_link_local:
        failed.append(f"the source {source} is not link-local")
    if kind == 137 and len(data) - start >= 40:
        redirected = IPv6Address(bytes(data[start + 24:start + 40]))
        if redirected.is_multicast:
            failed.append("the destination address is multicast")
        if target is not None and not target.is_link_local and target != redirected:
            failed.append("the target is neither link-local nor the destination")
    out.section(f"Validity checks (RFC 4861 {section})")
    if failed:
        out.note("fails, so a host MUST silently discard it: " + "; ".join(failed))
    else:
        out.note("passes them all (hop limit 255, code 0, length, options, addresses)")


def _option_kinds(data: bytes, index: int) -> dict[int, int]:
    """{option type: length} of the options from ``index``, as far as they can be read."""
    found: dict[int, int] = {}
    while index + 2 <= len(data):
        found.setdefault(data[index], data[index + 1])
        if data[index + 1] == 0:
            break
        index += data[index + 1] * 8
    return found


# ---------------------------------------------------------------------- MLD


def _mld_query(data: bytes, start: int, out: Explanation) -> None:
    size = len(data) - start
    version = 1 if size == 24 else 2 if size >= 28 else None
    code = _field(data, start + 4, 2, out, "maximum response code")
    if code is None:
        return
    if version == 1:
        meaning = f"{code} ms: report within this delay (RFC 2710 3.4)"
    else:
        delay = decode_exponential(code, 32768, 12)
        meaning = f"{delay} ms" + (" (floating point, RFC 3810 5.1.3)" if code >= 32768 else "") + \
            ": report within this delay"
    out.row(start + 4, 2, "maximum response code", code, meaning)
    _reserved(data, start + 6, out, 2, "RFC 3810 5.1.2")
    if start + 24 <= len(data) and not any(data[start + 8:start + 24]):
        meaning = "::: a General Query, about every group (RFC 3810 5.1.5)"
    else:
        meaning = "a Multicast Address Specific Query (RFC 3810 5.1.5)"
    if _address(data, start + 8, out, "multicast address", meaning) is None:
        return
    if version is None:
        out.note(f"{size} bytes: neither 24 (MLDv1) nor 28 or more (MLDv2): silently ignored (RFC 3810 8.1)")
        return
    if version == 1:
        out.note("24 bytes: an MLDv1 query (RFC 2710 3); a host answers it in MLDv1 (RFC 3810 8.2.1)")
        return
    flags, qqic, count = data[start + 24], data[start + 25], int.from_bytes(data[start + 26:start + 28], "big")
    out.row(start + 24, 1, "resv, S, QRV", f"S={(flags >> 3) & 1}, QRV={flags & 7}",
            "S: routers suppress timer updates; QRV: the querier's robustness variable (RFC 3810 5.1.7-8)")
    interval = decode_exponential(qqic, 128, 4)
    out.row(start + 25, 1, "QQIC", qqic, f"query interval {interval} s (RFC 3810 5.1.9)")
    out.row(start + 26, 2, "number of sources", count, "0: about every source" if count == 0 else "")
    for number in range(count):
        if _address(data, start + 28 + 16 * number, out, f"source {number + 1}") is None:
            out.note(f"{count} sources announced, {number} in the query: discarded (mld_truncated)")
            return
    out.note("an MLDv2 query (RFC 3810 5.1)")


def _mld_v1(data: bytes, start: int, out: Explanation) -> None:
    delay = _field(data, start + 4, 2, out, "maximum response delay")
    if delay is None:
        return
    out.row(start + 4, 2, "maximum response delay", delay, "0 when sent by a host (RFC 2710 3.4)")
    _reserved(data, start + 6, out, 2, "RFC 2710 3.5")
    _address(data, start + 8, out, "multicast address",
             "the group joined" if data[start] == 131 else "the group left")


def _mld_v2_report(data: bytes, start: int, out: Explanation) -> None:
    """RFC 3810 5.2. A host reads no other host's report (RFC 3810 6: no report suppression in
    MLDv2), so a malformed one is explained, not dropped."""
    _reserved(data, start + 4, out, 2, "RFC 3810 5.2.1")
    count = _field(data, start + 6, 2, out, "number of records")
    if count is None:
        return
    out.row(start + 6, 2, "number of records", count)
    index = start + 8
    for number in range(1, count + 1):
        if index + 20 > len(data):
            out.note(f"record {number} of {count} is missing: the report is malformed")
            return
        kind, auxiliary, sources = data[index], data[index + 1], int.from_bytes(data[index + 2:index + 4], "big")
        size = 20 + 16 * sources + 4 * auxiliary
        out.section(f"MLDv2 record {number} (RFC 3810 5.2.4), {size} bytes")
        out.row(index, 1, "record type", kind, MLD_RECORD_TYPES.get(kind, "unknown: ignored (RFC 3810 5.2.12)"))
        out.row(index + 1, 1, "aux data len", auxiliary, f"{4 * auxiliary} bytes (units of 4)" + (
            "; MLDv2 defines none, ignored (RFC 3810 5.2.10)" if auxiliary else ""))
        out.row(index + 2, 2, "number of sources", sources)
        _address(data, index + 4, out, "multicast address")
        if index + size > len(data):
            out.note(f"the record runs past the report ({len(data) - index} bytes left): the report is malformed")
            return
        for source in range(sources):
            _address(data, index + 20 + 16 * source, out, f"source {source + 1}")
        if auxiliary:
            out.row(index + 20 + 16 * sources, 4 * auxiliary, "auxiliary data", f"{4 * auxiliary} bytes")
        index += size
    if index < len(data):
        out.note(f"{len(data) - index} bytes after the records: ignored")


ICMPV6_BODIES = {1: _error, 2: _error, 3: _error, 4: _error, 128: _echo, 129: _echo,
                 130: _mld_query, 131: _mld_v1, 132: _mld_v1, 143: _mld_v2_report,
                 133: _router_solicitation, 134: _router_advertisement, 135: _neighbor_solicitation,
                 136: _neighbor_advertisement, 137: _redirect}


# ---------------------------------------------------------------------- UDP


def udp6(data: bytes, start: int, out: Explanation, source: IPv6Address, destination: IPv6Address) -> None:
    datagram = data[start:]
    out.section(f"UDP (RFC 768), {len(datagram)} bytes")
    if len(datagram) < UDP_HEADER.size:
        out.note(f"only {len(datagram)} bytes: a UDP header is {UDP_HEADER.size}")
        return
    source_port, destination_port, size, carried = UDP_HEADER.unpack_from(datagram)
    out.row(start, 2, "source port", source_port)
    out.row(start + 2, 2, "destination port", destination_port,
            "no service here: Port Unreachable (RFC 4443 3.1)")
    out.row(start + 4, 2, "length", size, "header + data" if UDP_HEADER.size <= size <= len(datagram) else "invalid")
    if carried == 0:
        verdict = "0: not allowed over IPv6, discarded (RFC 8200 8.1)"
    elif UDP_HEADER.size <= size <= len(datagram):
        pseudo = pseudo_header(source, destination, size, 17)  # RFC 8200 8.1
        computed = internet_checksum([pseudo, datagram[:6], b"\x00\x00", datagram[8:size]]) or 0xFFFF
        verdict = _checksum(carried, computed, "discarded (RFC 8200 8.1)")
    else:
        verdict = "cannot be checked: bad length"
    out.row(start + 6, 2, "checksum", f"{carried:#06x}", verdict)
