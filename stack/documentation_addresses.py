"""The addresses, MACs and device names the tools and examples use, each named for its role.

Only addresses that cannot reach a real network: IPv4 from the documentation networks (RFC 5737),
IPv6 from 2001:db8::/32 (RFC 3849), and MACs with the locally administered bit set (IEEE 802:
bit 1 of the first octet, ``02:...``). The devices are created in private network namespaces,
so their names clash with nothing. ``tapstack demo``, ``tapstack lab`` and ``tapstack diff`` set
up the same link: tapstack (HOST) on one end of a TAP or TUN device, the kernel or a second
tapstack host (PEER) on the other. A base module: plain values, no layer (MACs as text;
``MacAddress(PEER_MAC)`` where one is needed).
"""

from __future__ import annotations

from ipaddress import IPv4Address, IPv4Interface, IPv6Interface

#: RFC 5737 3: TEST-NET-1, TEST-NET-2 and TEST-NET-3, for documentation and examples.
DOCUMENTATION_NETWORKS = ("192.0.2.0/24", "198.51.100.0/24", "203.0.113.0/24")

#: tapstack, the host under test: ``--ip`` in the examples, the host demo, lab and diff run.
HOST = IPv4Interface("192.0.2.2/24")
#: tapstack's MAC in demo and lab (diff gives both hosts ``mac_for(HOST.ip)``, 02:00:c0:00:02:02).
HOST_MAC = "02:00:00:00:00:02"
#: The other end of the link: the kernel (demo, lab, diff) or a second tapstack host (the
#: in-memory wire); on a TUN link, the point-to-point peer (PEER.ip).
PEER = IPv4Interface("192.0.2.1/24")
PEER_MAC = "02:00:00:00:00:01"
#: A second neighbour on the link (diff sends from both, so that answers are not all to one host).
SECOND_PEER = IPv4Address("192.0.2.3")
SECOND_PEER_MAC = "02:00:00:00:00:03"

#: The same two hosts over IPv6 (RFC 3849: 2001:db8::/32 is for documentation), as ``tapstack lab``
#: sets them up for its IPv6 labs: tapstack HOST6, the kernel or a second tapstack host PEER6.
HOST6 = IPv6Interface("2001:db8::2/64")
PEER6 = IPv6Interface("2001:db8::1/64")

#: The devices the tools create, in their own network namespace.
TAP_DEVICE = "tap0"
TUN_DEVICE = "tun0"
