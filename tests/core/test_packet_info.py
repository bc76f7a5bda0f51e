"""The TUN packet-information header (struct tun_pi): one real header, four ways, plus its flags.

The bytes are written by hand from <linux/if_tun.h>; ``tests/root/test_linux.py`` checks them
against the running kernel (a reply through a TUN device opened without IFF_NO_PI).
"""

from __future__ import annotations

import sys

import pytest

from stack.errors import ParseError
from stack.l2.ethernet import EtherType
from stack.packet_info import (ETH_P_IP, ETH_P_IPV6, HEADER_LENGTH, IPV4_HEADER, PROTOCOL_OF_VERSION,
                               PacketInfo, header_bytes, is_truncated)

NATIVE_STRIP = (1).to_bytes(2, sys.byteorder)  # flags are in host byte order
IPV4_HEX = bytes.fromhex(
    "0000"  # flags: none
    "0800"  # protocol: IPv4 (network byte order)
)


def test_deconstruct():
    info = PacketInfo.parse(IPV4_HEX + b"payload")
    assert (info.flags, info.protocol, bytes(info.payload)) == (0, 0x0800, b"payload")
    assert not info.truncated


def test_construct_and_emit():
    assert header_bytes(ETH_P_IP) == IPV4_HEX == IPV4_HEADER
    assert bytes(PacketInfo(0, 0x0800, b"payload")) == IPV4_HEX + b"payload"


def test_parse_emit_round_trip_with_the_strip_flag():
    header = NATIVE_STRIP + b"\x86\xdd"
    info = PacketInfo.parse(header)
    assert info.truncated and info.protocol == ETH_P_IPV6 and info.header() == header
    assert is_truncated(header) and not is_truncated(IPV4_HEX)


@pytest.mark.parametrize("data", [b"", b"\x00", b"\x00\x00\x08"], ids=["empty", "1-byte", "3-byte"])
def test_a_runt_is_a_parse_error(data):
    with pytest.raises(ParseError, match=rf"\[TUN\] packet of {len(data)} bytes < packet information 4") as raised:
        PacketInfo.parse(data)
    assert raised.value.drop_reason == "tun_runt"
    assert HEADER_LENGTH == 4


def test_the_protocol_numbers_are_the_ethertypes():
    """The header's protocol field is an EtherType (the kernel's ETH_P_*); l2 has the same."""
    assert (ETH_P_IP, ETH_P_IPV6) == (EtherType.IPV4, EtherType.IPV6)
    assert PROTOCOL_OF_VERSION == {4: EtherType.IPV4, 6: EtherType.IPV6}
