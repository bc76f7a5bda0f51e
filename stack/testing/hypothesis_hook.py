"""Registers ``stack.testing.strategies`` with hypothesis' ``st.from_type`` (the ``hypothesis`` entry point).

Hypothesis calls ``register`` while it is itself being imported, which may be from inside
``import stack.testing.strategies``; so the strategies are looked up only when ``from_type`` first asks.
"""

from __future__ import annotations

import importlib
from typing import Any


def _lazily(name: str) -> Any:
    """A resolver hypothesis calls with the type: ``stack.testing.strategies.<name>()``."""
    return lambda _type: getattr(importlib.import_module("stack.testing.strategies"), name)()


def _body(kind: type) -> Any:
    """The resolver for an ND or MLD class: ``stack.testing.strategies6.icmpv6_body_values(kind)``."""
    return importlib.import_module("stack.testing.strategies6").icmpv6_body_values(kind)


def register() -> None:
    from hypothesis import strategies as st

    from stack.l2.arp import ArpPacket
    from stack.l2.ethernet import EthernetFrame, MacAddress
    from stack.l3.icmp import IcmpMessage
    from stack.l3.ipv4 import Ipv4Packet
    from stack.l3 import icmpv6
    from stack.l3.ipv6 import Ipv6Packet

    st.register_type_strategy(MacAddress, _lazily("mac_addresses"))
    st.register_type_strategy(ArpPacket, _lazily("arp_packets"))
    st.register_type_strategy(Ipv4Packet, _lazily("ipv4_packets"))
    st.register_type_strategy(Ipv6Packet, _lazily("ipv6_packet_values"))
    st.register_type_strategy(IcmpMessage, _lazily("any_icmp_messages"))
    st.register_type_strategy(EthernetFrame, _lazily("ethernet_frames"))
    st.register_type_strategy(icmpv6.Icmpv6Message, _lazily("icmpv6_message_values"))
    for name in ("RouterSolicitation", "RouterAdvertisement", "NeighborSolicitation", "NeighborAdvertisement",
                 "Redirect", "MldQuery", "MldReport", "MldV1Message"):
        st.register_type_strategy(getattr(icmpv6, name), _body)
