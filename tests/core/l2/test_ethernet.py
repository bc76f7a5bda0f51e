"""Ethernet II codec: four ways on one real frame, malformed input, RFC 894 padding, misuse.

The oracle is the hex literal below (written by hand) and dpkt, never ``stack`` itself.
"""

from __future__ import annotations

import pytest

from stack.buffers import join
from stack.errors import ParseError
from stack.l2.ethernet import BROADCAST, EtherType, EthernetFrame, MacAddress
from stack.l3.ipv4 import Ipv4Packet
from stack.testing import frames

# ARP who-has 192.0.2.2 tell 192.0.2.1, as tapstack sends it: padded to 60 bytes (RFC 894).
FRAME = bytes.fromhex(
    "ff ff ff ff ff ff"  # destination: broadcast
    "02 00 00 00 00 01"  # source: 02:00:00:00:00:01
    "08 06"              # EtherType: ARP
    "00 01 08 00 06 04"  # payload: ARP hrd, pro, hln, pln
    "00 01"              #          op: request
    "02 00 00 00 00 01"  #          sha
    "c0 00 02 01"        #          spa 192.0.2.1
    "00 00 00 00 00 00"  #          tha
    "c0 00 02 02"        #          tpa 192.0.2.2
    "00 00 00 00 00 00"  # padding: 18 zero bytes, up to the 60-byte minimum
    "00 00 00 00 00 00"
    "00 00 00 00 00 00"
)
ARP_PAYLOAD = FRAME[14:42]
SOURCE = MacAddress("02:00:00:00:00:01")


def test_deconstruct():
    frame = EthernetFrame.parse(FRAME)
    assert frame.destination == b"\xff" * 6
    assert frame.destination.is_broadcast
    assert frame.source == bytes.fromhex("020000000001")
    assert frame.ethertype == 0x0806 == EtherType.ARP
    assert bytes(frame.payload) == ARP_PAYLOAD + bytes(18)  # padding is the next layer's to trim


def test_construct():
    frame = EthernetFrame(BROADCAST, SOURCE, EtherType.ARP, ARP_PAYLOAD)
    assert bytes(frame) == FRAME


def test_parse_of_bytes_is_identity():
    frame = EthernetFrame(BROADCAST, SOURCE, EtherType.ARP, ARP_PAYLOAD + bytes(18))
    assert EthernetFrame.parse(bytes(frame)) == frame


def test_buffers_join_to_bytes_and_keep_the_payload_object():
    payload = bytearray(ARP_PAYLOAD)
    frame = EthernetFrame(BROADCAST, SOURCE, EtherType.ARP, payload)
    buffers = frame.buffers()
    assert b"".join(buffers) == bytes(frame) == FRAME
    assert buffers[1] is payload  # not copied


def test_buffers_keep_every_chunk_of_a_list_payload():
    header, body = memoryview(ARP_PAYLOAD)[:8], memoryview(ARP_PAYLOAD)[8:]
    buffers = EthernetFrame(BROADCAST, SOURCE, EtherType.ARP, [header, body]).buffers()
    assert buffers[1] is header and buffers[2] is body
    assert b"".join(buffers) == FRAME


def test_parsed_payload_is_a_view_not_a_copy():
    data = bytearray(FRAME)
    frame = EthernetFrame.parse(data)
    data[14] = 0xAB
    assert bytes(frame.payload)[0] == 0xAB


@pytest.mark.parametrize(
    "name",
    ["ARP_REQUEST", "ARP_REPLY", "ECHO_REQUEST", "ECHO_REPLY"],
)
def test_golden_frames_built_by_dpkt_match_their_hand_written_hex(name):
    assert getattr(frames, name) == getattr(frames, f"{name}_HEX")


@pytest.mark.parametrize(
    ("data", "reason", "fragment"),
    [
        (b"", "runt", "frame of 0 bytes < header 14"),
        (FRAME[:13], "runt", "frame of 13 bytes < header 14"),
    ],
    ids=["empty", "runt-13-bytes"],
)
def test_malformed_frame_is_a_parse_error(data, reason, fragment):
    with pytest.raises(ParseError) as caught:
        EthernetFrame.parse(data)
    assert caught.value.layer == "Ethernet"
    assert caught.value.reason == reason
    assert caught.value.drop_reason == f"ethernet_{reason}"
    assert fragment in str(caught.value)
    assert str(caught.value).startswith("[Ethernet] ")


def test_header_only_frame_parses_with_an_empty_payload():
    frame = EthernetFrame.parse(FRAME[:14])
    assert bytes(frame.payload) == b""


def test_rfc894_ipv4_in_a_padded_frame_is_trimmed_to_its_total_length():
    # A 28-byte datagram (ICMP echo request with no data) padded by the sender to a 60-byte frame.
    datagram = frames.ipv4_datagram("192.0.2.1", "192.0.2.2", 1, frames.icmp_echo(8, 0x1234, 1, b""))
    wire = frames.pad(frames.ethernet_frame(frames.HOST_MAC, frames.KERNEL_MAC, 0x0800, datagram))
    assert len(wire) == 60 and len(datagram) == 28
    frame = EthernetFrame.parse(wire)
    assert len(frame.payload) == 46
    packet = Ipv4Packet.parse(frame.payload)
    assert bytes(packet.payload) == datagram[20:]  # the 18 padding bytes are gone


def test_rfc894_short_frames_are_padded_with_zeros_to_60_bytes():
    frame = EthernetFrame(BROADCAST, SOURCE, 0x88B5, b"\x01\x02\x03")
    buffers = frame.buffers()
    assert len(buffers) == 3
    assert buffers[2] == bytes(43)  # 14 + 3 + 43 = 60
    assert b"".join(buffers) == frames.pad(frames.ethernet_frame(BROADCAST, SOURCE, 0x88B5, b"\x01\x02\x03"))
    assert len(bytes(frame)) == 60


def test_padding_can_be_turned_off():
    frame = EthernetFrame(BROADCAST, SOURCE, 0x88B5, b"\x01\x02\x03")
    assert b"".join(frame.buffers(pad=False)) == frames.ethernet_frame(BROADCAST, SOURCE, 0x88B5, b"\x01\x02\x03")
    assert len(frame.buffers(pad=False)) == 2


@pytest.mark.parametrize("size", [45, 46, 47, 1500], ids=["45-padded", "46-minimum", "47", "1500-mtu"])
def test_padding_only_below_46_bytes_of_payload(size):
    wire = b"".join(EthernetFrame(BROADCAST, SOURCE, 0x88B5, bytes([7]) * size).buffers())
    assert len(wire) == 14 + max(size, 46)
    assert wire[14:14 + size] == bytes([7]) * size


def test_unknown_ethertype_parses_as_an_int():
    wire = frames.ethernet_frame(frames.HOST_MAC, frames.KERNEL_MAC, 0x88B5, b"experimental")  # IEEE local experimental
    frame = EthernetFrame.parse(wire)
    assert frame.ethertype == 0x88B5
    assert frame.ethertype not in set(EtherType)


def test_ethertype_below_0x0600_is_read_as_a_number_too():
    # IEEE 802.3 length field: not Ethernet II; the link layer drops it as an unknown EtherType.
    frame = EthernetFrame.parse(frames.ethernet_frame(frames.HOST_MAC, frames.KERNEL_MAC, 46, bytes(46)))
    assert frame.ethertype == 46


def test_mac_address_from_string_and_bytes():
    assert MacAddress("02:00:00:00:00:01") == bytes.fromhex("020000000001")
    assert MacAddress("2:0:0:0:0:a") == bytes.fromhex("02000000000a")
    assert MacAddress("02:AB:cd:00:00:01") == bytes.fromhex("02abcd000001")
    assert str(MacAddress(bytes.fromhex("02abcd000001"))) == "02:ab:cd:00:00:01"
    assert MacAddress(memoryview(bytes.fromhex("020000000001"))) == bytes.fromhex("020000000001")


def test_mac_address_flags():
    assert MacAddress("ff:ff:ff:ff:ff:ff").is_broadcast
    assert MacAddress("01:00:5e:00:00:01").is_multicast
    assert not MacAddress("02:00:00:00:00:01").is_multicast
    assert MacAddress("02:00:00:00:00:01").is_locally_administered
    assert not MacAddress("00:00:5e:00:53:01").is_locally_administered  # RFC 7042 documentation MAC


@pytest.mark.parametrize(
    "value",
    [b"\x02\x00\x00\x00\x00\x00\x01", b"\x02\x00\x00\x00\x00", b""],
    ids=["7-bytes", "5-bytes", "empty"],
)
def test_mac_address_of_the_wrong_length_is_a_value_error(value):
    with pytest.raises(ValueError, match="6 bytes"):
        MacAddress(value)


@pytest.mark.parametrize(
    "text",
    [
        "02:00:00:00:00",
        "02:00:00:00:00:00:01",
        "02-00-00-00-00-01",
        "02:00:00:00:00:zz",
        "02:00:00:00:00:100",
        "02:00:00:00::01",
        "",
        "02:00:00:00:00:+1",
        "02:00:00:00:00: 1",
        "02:00:00:00:00:\u0661",  # ARABIC-INDIC DIGIT ONE: int() reads it, a MAC must not
    ],
    ids=[
        "five-octets", "seven-octets", "dashes", "not-hex", "three-digits", "empty-octet", "empty-string",
        "plus-sign", "space", "non-ascii-digit",
    ],
)
def test_bad_mac_string_is_a_value_error(text):
    with pytest.raises(ValueError, match="MAC address"):
        MacAddress(text)


def test_ethertype_wider_than_16_bits_is_a_value_error():
    with pytest.raises(ValueError, match="16 bits"):
        EthernetFrame(BROADCAST, SOURCE, 0x10000)


def test_frame_with_a_7_byte_mac_is_a_value_error():
    with pytest.raises(ValueError, match="6 bytes"):
        EthernetFrame(b"\x02" * 7, SOURCE, EtherType.ARP)


def test_frames_compare_by_payload_content_not_by_buffer_layout():
    one = EthernetFrame(BROADCAST, SOURCE, EtherType.ARP, ARP_PAYLOAD)
    assert one == EthernetFrame(BROADCAST, SOURCE, EtherType.ARP, [ARP_PAYLOAD[:5], memoryview(ARP_PAYLOAD)[5:]])
    assert one != EthernetFrame(BROADCAST, SOURCE, EtherType.ARP, ARP_PAYLOAD[:-1])
    assert join(one.payload) == ARP_PAYLOAD
