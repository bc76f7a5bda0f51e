"""The Ethernet link classifies frames from their header bytes (``EthernetLink.receive``):
checked against a reference built on the codec (``EthernetFrame.parse``, ``MacAddress``), on
generated frames, so the cheap path decides exactly what the codec's reading of the rules does."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from stack import TapHost
from stack.errors import ParseError
from stack.l2.ethernet import BROADCAST, EthernetFrame, MacAddress
from stack.l2.link import ALL_HOSTS_MAC, UNSUPPORTED_ETHERTYPES

OURS = MacAddress("02:00:00:00:00:02")


def reference(frame: bytes) -> str | None:
    """The link layer's verdict read with the codec: a drop reason, or None when the frame goes
    up (to ARP or IPv4)."""
    try:
        ethernet = EthernetFrame.parse(frame)
    except ParseError as error:
        return error.drop_reason
    if ethernet.destination not in (OURS, BROADCAST, ALL_HOSTS_MAC):
        return "ethernet_not_for_us"
    if ethernet.ethertype in (0x0800, 0x0806):
        return None
    if ethernet.ethertype < 0x0600:
        return "ethernet_8023_length_frame"
    return UNSUPPORTED_ETHERTYPES.get(ethernet.ethertype, "ethernet_unknown_ethertype")


destinations = st.sampled_from([OURS, BROADCAST, ALL_HOSTS_MAC, MacAddress("02:00:00:00:00:99"),
                                MacAddress("01:00:5e:00:00:02"), MacAddress("03:00:00:00:00:02")])
ethertypes = st.sampled_from([0x0800, 0x0806, 0x86DD, 0x8100, 0x88A8, 0x88B5, 46, 0x05FF, 0x0600])


@st.composite
def frames(draw) -> bytes:
    header = draw(destinations) + bytes(6) + draw(ethertypes).to_bytes(2, "big")
    frame = header + draw(st.binary(max_size=64))
    return frame[:draw(st.integers(0, len(frame)))] if draw(st.booleans()) else frame


@settings(max_examples=500)
@given(frames())
def test_the_link_classifies_as_the_codec_reads(frame):
    host = TapHost(["192.0.2.2/24"], mac=OURS)
    host.receive(frame, 1.0)
    reason = host.verdict.drop_reason
    expected = reference(frame)
    if expected is None:  # went up: whatever ARP or IPv4 made of it, it was not a link-layer drop
        assert reason is None or not reason.startswith("ethernet_"), reason
        assert host.stats["rx_ipv4"] + host.stats["rx_arp"] + host.stats["drop.arp_truncated"] \
            + host.stats["drop.arp_bad_address_length"] == 1
    else:
        assert reason == expected


def test_drop_details_are_words_only_when_read():
    host = TapHost(["192.0.2.2/24"], mac=OURS)
    host.receive(bytes.fromhex("020000000099") + bytes(6) + b"\x08\x00" + bytes(46), 1.0)
    assert host.stats._detail_args  # kept as given: nothing formatted yet
    assert host.verdict.drop_detail == "02:00:00:00:00:99"
    host.receive(OURS + bytes(6) + b"\x88\xb5" + bytes(46), 1.0)
    assert host.verdict.drop_detail == "0x88b5"
