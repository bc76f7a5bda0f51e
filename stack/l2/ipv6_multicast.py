"""The Ethernet address of an IPv6 multicast group (RFC 2464 7).

    +-------+-------+-------+-------+-------+-------+
    |  0x33 |  0x33 | DST13 | DST14 | DST15 | DST16 |
    +-------+-------+-------+-------+-------+-------+

DST13-DST16 are the last four octets of the 16-octet IPv6 destination address. This is a
link-layer rule, so it takes the address as 16 bytes (``IPv6Address.packed``): l2 does not
import l3.
"""

from __future__ import annotations

from stack.l2.ethernet import MacAddress

#: RFC 2464 7: every IPv6 multicast MAC starts with these two octets.
IPV6_MULTICAST_MAC_PREFIX = b"\x33\x33"


def ipv6_multicast_mac(address: bytes) -> MacAddress:
    """RFC 2464 7: 33:33 and the low 32 bits of the group: ff02::1 -> 33:33:00:00:00:01."""
    if len(address) != 16:
        raise ValueError(f"an IPv6 address is 16 bytes, not {len(address)}")
    # RFC 4291 2.7: multicast addresses start with 0xff; a unicast address has no group MAC.
    if address[0] != 0xFF:
        raise ValueError(f"{bytes(address).hex()} is not an IPv6 multicast address")
    return MacAddress(IPV6_MULTICAST_MAC_PREFIX + bytes(address[12:16]))


def is_ipv6_multicast_mac(mac: bytes) -> bool:
    """True for a MAC that RFC 2464 7 maps some IPv6 group to (33:33:xx:xx:xx:xx)."""
    return len(mac) == 6 and bytes(mac[:2]) == IPV6_MULTICAST_MAC_PREFIX
