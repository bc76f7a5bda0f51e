"""IP options in an echo reply: Record Route and Timestamp, updated with this host.

Read first: RFC 791 3.1 ("Record Route", "Internet Timestamp"); RFC 1122 3.2.2.6 (an echo reply
returns them), 3.2.1.8 (other options are ignored).
"""

from __future__ import annotations

from ipaddress import IPv4Address

from stack.l3 import ipv4


def echo_options(options: bytes, address: IPv4Address, now: float) -> bytes:
    """RFC 1122 3.2.2.6: the Record Route and Timestamp options of an echo request, updated with
    this host, for the reply ("without truncation": the route is for the whole round trip).
    Other options are not echoed. Padded with End-of-List to a multiple of 4 octets."""
    out = b""
    for kind, option in ipv4.parse_options(options):
        if kind == ipv4.IpOption.RECORD_ROUTE:
            out += _record_route(option, address)
        elif kind == ipv4.IpOption.TIMESTAMP:
            out += _timestamp(option, address, now)
    return out + bytes(-len(out) % 4)


def _record_route(option: bytes, address: IPv4Address) -> bytes:
    """RFC 791 "Record Route": our address at the pointer (1-based), pointer moved on by 4; a
    full option (pointer past the end) goes back unchanged."""
    if len(option) < 3 or option[2] < 4 or option[2] + 3 > len(option):
        return option
    pointer = option[2]
    return (option[:2] + bytes([pointer + 4]) + option[3:pointer - 1] + address.packed
            + option[pointer + 3:])


def _timestamp(option: bytes, address: IPv4Address, now: float) -> bytes:
    """RFC 791 "Internet Timestamp": flag 0 timestamps, 1 address + timestamp, 3 prespecified."""
    if len(option) < 4:
        return option
    pointer, overflow, flag = option[2], option[3] >> 4, option[3] & 0x0F
    # RFC 791: ms since midnight UT, or any time with the high-order bit set: a sans-I/O host
    # has no wall clock, so it sends its own clock's milliseconds with that bit set.
    stamp = ((int(now * 1000) & 0x7FFFFFFF) | 0x80000000).to_bytes(4, "big")
    entry = {0: 4, 1: 8, 3: 8}.get(flag)
    if entry is None or pointer < 5:
        return option
    if pointer + entry - 1 > len(option):
        # Full: count the overflow (it saturates at 15 here rather than failing the request).
        return option[:3] + bytes([(min(overflow + 1, 15) << 4) | flag]) + option[4:]
    if flag == 3 and option[pointer - 1:pointer + 3] != address.packed:
        return option  # prespecified, and not our turn
    value = stamp if flag == 0 else address.packed + stamp
    return (option[:2] + bytes([pointer + entry]) + option[3:pointer - 1] + value
            + option[pointer - 1 + entry:])
