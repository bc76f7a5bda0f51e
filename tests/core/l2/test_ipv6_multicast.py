"""The Ethernet address of an IPv6 group (RFC 2464 7): 33:33 and the group's low 32 bits."""

from __future__ import annotations

from ipaddress import IPv6Address

import pytest

from stack.l2.ethernet import MacAddress
from stack.l2.ipv6_multicast import is_ipv6_multicast_mac, ipv6_multicast_mac


@pytest.mark.parametrize(("group", "mac"), [
    ("ff02::1", "33:33:00:00:00:01"),  # all nodes
    ("ff02::16", "33:33:00:00:00:16"),  # all MLDv2 routers: where Linux sent its reports
    ("ff02::1:ff00:2", "33:33:ff:00:00:02"),  # Linux's solicitation for 2001:db8::2 went here
    ("ff0e::1234:5678:9abc:def0", "33:33:9a:bc:de:f0"),  # only the last four octets count
])
def test_rfc2464_7_the_mac_is_33_33_and_the_last_four_octets(group, mac):
    result = ipv6_multicast_mac(IPv6Address(group).packed)
    assert isinstance(result, MacAddress) and str(result) == mac
    assert result.is_multicast and is_ipv6_multicast_mac(result)


def test_other_macs_are_not_ipv6_multicast():
    assert not is_ipv6_multicast_mac(MacAddress("01:00:5e:00:00:01"))  # IPv4's all-hosts
    assert not is_ipv6_multicast_mac(MacAddress("02:00:00:00:00:01"))
    assert not is_ipv6_multicast_mac(b"\x33\x33")


@pytest.mark.parametrize(("address", "message"), [
    (IPv6Address("2001:db8::1").packed, "not an IPv6 multicast address"),
    (bytes(4), "16 bytes, not 4"),
])
def test_misuse_is_a_value_error(address, message):
    with pytest.raises(ValueError, match=message):
        ipv6_multicast_mac(address)
