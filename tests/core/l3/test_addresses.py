"""Our addresses and the rules about them (stack.l3.addresses): RFC 1122 3.2.1.3, 3.3.1.1."""

from __future__ import annotations

from ipaddress import IPv4Address, IPv4Interface

import pytest

from stack.l3.addresses import ADDRESS_MEMO_CAPACITY, Addresses
from stack.l3.seam import Delivery

A = IPv4Address


def lan(gateway: str | None = None) -> Addresses:
    """Two addresses on 192.0.2.0/24, one on 198.51.100.0/31 (no broadcast, RFC 3021)."""
    return Addresses([IPv4Interface("192.0.2.2/24"), IPv4Interface("192.0.2.3/24"),
                      IPv4Interface("198.51.100.0/31")], A(gateway) if gateway else None)


@pytest.mark.parametrize("destination, delivery", [
    ("192.0.2.2", Delivery.UNICAST),
    ("198.51.100.0", Delivery.UNICAST),
    ("192.0.2.255", Delivery.BROADCAST),      # RFC 922: the subnet's directed broadcast
    ("255.255.255.255", Delivery.BROADCAST),  # RFC 919: the limited broadcast
    ("224.0.0.1", Delivery.MULTICAST),        # RFC 1112: all hosts
    ("198.51.100.1", None),                   # RFC 3021: a /31's other address, not a broadcast
    ("192.0.2.9", None),
    ("224.0.0.2", None),
])
def test_rfc1122_3_2_1_3_delivery(destination, delivery):
    assert lan().delivery(A(destination)) is delivery


@pytest.mark.parametrize("source, reason", [
    ("0.0.0.0", "ipv4_martian_source"),
    ("0.1.2.3", "ipv4_martian_source"),
    ("127.0.0.1", "ipv4_martian_source"),
    ("224.0.0.5", "ipv4_martian_source"),
    ("239.255.255.255", "ipv4_martian_source"),
    ("192.0.2.255", "ipv4_martian_source"),
    ("255.255.255.255", "ipv4_martian_source"),
    ("192.0.2.3", "ipv4_source_is_ours"),
    ("192.0.2.1", None),
    ("198.51.100.1", None),
    ("240.0.0.1", None),  # class E: not a martian source here (an ICMP error is not sent to it)
])
def test_rfc1122_3_2_1_3_martian_sources(source, reason):
    addresses = lan()
    assert addresses.martian_source(A(source)) == reason
    assert addresses.martian_source_value(int(A(source))) == reason


def test_an_address_withdrawn_leaves_every_representation_at_once():
    addresses = lan()
    ours = A("192.0.2.3")
    addresses.set_usable(ours, False)
    assert not addresses.owns(ours)
    assert ours.packed not in addresses.usable_packed
    assert addresses.delivery(ours) is None
    assert addresses.martian_source(ours) is None  # no longer ours
    assert addresses.preferred_source(A("192.0.2.1")) == A("192.0.2.2")
    addresses.set_usable(ours, True)
    assert addresses.owns(ours) and addresses.usable_packed[ours.packed] == ours
    assert addresses.delivery(ours) is Delivery.UNICAST


def test_only_our_own_addresses_can_be_withdrawn():
    with pytest.raises(ValueError, match="192.0.2.9 is not one of this host's addresses"):
        lan().set_usable(A("192.0.2.9"), False)


def test_preferred_source_is_the_first_usable_one_on_the_destinations_network():
    addresses = lan()
    assert addresses.preferred_source(A("198.51.100.1")) == A("198.51.100.0")
    assert addresses.preferred_source(A("203.0.113.7")) == A("192.0.2.2")  # off-link: our first
    for address in addresses.addresses:
        addresses.set_usable(address, False)
    assert addresses.preferred_source(A("192.0.2.1")) == A("192.0.2.2")  # none in use: our first


@pytest.mark.parametrize("gateway, destination, next_hop", [
    (None, "192.0.2.77", "192.0.2.77"),
    (None, "198.51.100.1", "198.51.100.1"),
    (None, "203.0.113.7", None),
    ("192.0.2.1", "203.0.113.7", "192.0.2.1"),
    ("192.0.2.1", "192.0.2.77", "192.0.2.77"),
])
def test_rfc1122_3_3_1_1_next_hop(gateway, destination, next_hop):
    addresses = lan(gateway)
    expected = A(next_hop) if next_hop else None
    assert addresses.next_hop(A(destination)) == expected
    assert addresses.next_hop_packed(A(destination).packed, int(A(destination))) == expected  # the fast path's form


def test_on_a_point_to_point_link_every_destination_is_the_next_hop():
    addresses = Addresses([IPv4Interface("192.0.2.2/32")], point_to_point=True)
    assert not addresses.on_link(A("203.0.113.7"))
    assert addresses.next_hop(A("203.0.113.7")) == A("203.0.113.7")


def test_the_fast_paths_memo_of_addresses_is_bounded():
    addresses = lan()
    for value in range(ADDRESS_MEMO_CAPACITY + 5):
        address = A(f"192.0.2.{value % 256}")
        assert addresses.next_hop_packed(address.packed, int(address)) == address
    assert len(addresses._seen) <= ADDRESS_MEMO_CAPACITY


@pytest.mark.parametrize("destination, words", [
    ("192.0.2.2", "not a unicast address of another host"),
    ("192.0.2.255", "not a unicast address of another host"),
    ("127.0.0.1", "not a unicast address of another host"),
    ("203.0.113.7", "no route to 203.0.113.7"),
])
def test_route_refuses_what_we_cannot_send_to(destination, words):
    with pytest.raises(ValueError, match=words):
        lan().route(A(destination))


def test_route_through_the_gateway():
    assert lan("192.0.2.1").route(A("203.0.113.7")) == A("192.0.2.1")


def test_no_ipv4_address_is_an_ipv6_only_host_whose_ipv4_is_off():
    off = Addresses([])
    assert off.delivery(A("192.0.2.2")) is None and not off.owns(A("192.0.2.2"))
    with pytest.raises(ValueError, match="no IPv4 address"):
        off.preferred_source(A("192.0.2.1"))


def test_misconfiguration_is_refused():
    with pytest.raises(ValueError, match="gateway 203.0.113.1 is not on any of our networks"):
        lan("203.0.113.1")
