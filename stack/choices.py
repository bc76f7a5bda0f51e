"""The behaviours RFCs leave to a host, in one place: ``HostChoices``.

Each field is one choice (a MAY, a timer or a rate without a number, an optional mechanism); its
default is the constant of the module that owns the behaviour, and docs/usage.md ("Choices RFCs
leave open") gives each its flag. ``TapHost`` and ``TunHost`` take one as ``choices=`` or its
fields as keyword arguments; the CLI builds one from its flags.

The module sits beside ``node.py``, in the core, not in the base: its defaults come from both
layers (the ARP lifetime from l2, the rest from l3), and only the composition root may import
both. The link MTU is not here: it is the device's, not a choice (``host.mtu = device.mtu``).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, replace
from typing import Any

from stack.l2.neighbor import ARP_ENTRY_LIFETIME_S
from stack.l3.icmp_responder import ICMP_ERROR_BURST, ICMP_ERRORS_PER_SECOND, TimestampReply
from stack.l3.ipv4 import DEFAULT_TTL
from stack.l3.ipv6_host import DUP_ADDR_DETECT_TRANSMITS
from stack.l3.reassembly import REASSEMBLY_TIMEOUT_S


@dataclass(frozen=True, slots=True)
class HostChoices:
    """What a host does where RFCs let it choose; ``HostChoices()`` is tapstack's defaults."""

    #: RFC 1122 3.2.2.6: echo requests to a broadcast or multicast address MAY be discarded (we do).
    answer_broadcast_echo: bool = False
    #: RFC 5227 2.1: probe for each address before using it (TAP only; off: announce and use at once).
    probe: bool = False
    #: RFC 1122 2.3.2.1: ARP cache entries MUST time out; how long, in seconds, is ours (TAP only).
    arp_lifetime: float = ARP_ENTRY_LIFETIME_S
    #: RFC 1122 3.2.1.7: the TTL of our datagrams, fixed and configurable, never 0.
    ttl: int = DEFAULT_TTL
    #: RFC 1122 3.2.2: ICMP errors SHOULD be rate-limited: at most this many a second,
    icmp_errors_per_second: float = ICMP_ERRORS_PER_SECOND
    #: RFC 1122 3.2.2: and this many at once after a quiet spell (rate 0: all ever sent).
    icmp_error_burst: int = ICMP_ERROR_BURST
    #: RFC 1122 3.3.2: an incomplete datagram is given up after this many seconds.
    reassembly_timeout: float = REASSEMBLY_TIMEOUT_S
    #: RFC 1122 3.2.2.8: Timestamp replies are a MAY; ``timestamp_reply(request, now)`` answers
    #: them (None: not answered; lab 06 writes one).
    timestamp_reply: TimestampReply | None = None
    #: RFC 4862 5.1: DupAddrDetectTransmits, the probes sent for each IPv6 address before it is
    #: used (TAP only: a TUN link has no Neighbor Discovery); 0: no DAD, used at once.
    dad_transmits: int = DUP_ADDR_DETECT_TRANSMITS

    #: The choices only a host with a link layer (``TapHost``) has: a TUN link has no ARP nor ND.
    LINK_LAYER = ("probe", "arp_lifetime", "dad_transmits")

    def __post_init__(self) -> None:
        if not 1 <= self.ttl <= 255:
            raise ValueError(f"TTL {self.ttl} is not between 1 and 255")  # RFC 1122 3.2.1.7: never 0
        if self.arp_lifetime <= 0:
            raise ValueError(f"ARP entry lifetime {self.arp_lifetime} must be above 0 seconds")
        if self.icmp_errors_per_second < 0 or self.icmp_error_burst < 0:
            raise ValueError("the ICMP error rate and burst cannot be negative")
        if not 0 <= self.dad_transmits <= 10:
            raise ValueError(f"DAD transmits {self.dad_transmits} is not between 0 and 10")
        if self.reassembly_timeout <= 0:
            raise ValueError(f"reassembly timeout {self.reassembly_timeout} must be above 0 seconds")

    @classmethod
    def of(cls, choices: HostChoices | None, keywords: Mapping[str, Any]) -> HostChoices:
        """The choices a host was given: ``choices=``, its fields as keyword arguments, or both
        when they agree (a keyword argument that differs from ``choices`` is a ValueError; an
        unknown keyword is a TypeError, as for any function)."""
        if choices is None:
            return cls(**keywords)
        if replace(choices, **keywords) != choices:  # checks the names and the values too
            raise ValueError("the keyword arguments disagree with choices=: " + "; ".join(
                f"{name}={value!r} but choices.{name}={getattr(choices, name)!r}"
                for name, value in keywords.items() if getattr(choices, name) != value))
        return choices

    def without_link_layer(self) -> HostChoices:
        """These choices, checked for a host without a link layer (``TunHost``): a ValueError
        names a link-layer choice set away from its default."""
        default = HostChoices()
        wrong = [name for name in self.LINK_LAYER if getattr(self, name) != getattr(default, name)]
        if wrong:
            raise ValueError(f"{', '.join(wrong)} is for TAP hosts: a TUN device has no link layer")
        return self

