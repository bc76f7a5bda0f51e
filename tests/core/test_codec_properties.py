"""Hypothesis properties of the four wire codecs.

1. Any bytes, and any truncation or one-bit flip of a valid encoding, either parse or raise
   ``ParseError`` with the codec's layer and a known reason; nothing else escapes (style (c) 2).
2. ``parse(bytes(x)) == x`` for generated values.
3. Differential against dpkt both ways: dpkt reads our bytes field by field (and its checksum
   arithmetic agrees with the checksums we wrote), and we read dpkt's bytes to the fields it was
   given.
4. The checksums catch every single-bit error in the IPv4 header and in the ICMP message.

dpkt decodes eagerly and some of its sub-decoders leak exceptions (see style.md, Evidence), so
the differential tests use dpkt classes whose dispatch tables are emptied: each layer is
compared on its own, with raw bytes handed from one layer to the next.
"""

from __future__ import annotations

from ipaddress import IPv4Address

import dpkt
import pytest
from hypothesis import given
from hypothesis import strategies as st

from stack.buffers import join
from stack.errors import ParseError
from stack.l2.arp import ArpPacket
from stack.l2.ethernet import EtherType, EthernetFrame
from stack.l3.icmp import IcmpMessage, IcmpType
from stack.l3.ipv4 import IpProto, Ipv4Packet
from stack.testing import frames as golden
from tests.strategies import (
    arp_packets,
    eight_bits,
    frames,
    icmp_echo_messages,
    icmp_messages,
    ipv4_addresses,
    ipv4_options,
    ipv4_packets,
    mac_addresses,
    payloads,
    sixteen_bits,
)

REASONS = {
    "Ethernet": {"runt"},
    "ARP": {"truncated", "bad_address_length"},
    "IPv4": {"truncated", "bad_version", "bad_header_length", "bad_total_length", "bad_checksum"},
    "ICMP": {"truncated", "bad_checksum"},
}


class RawEthernet(dpkt.ethernet.Ethernet):
    """dpkt's Ethernet, leaving the payload as bytes."""

    _typesw: dict = {}


class RawIP(dpkt.ip.IP):
    """dpkt's IP, leaving the payload as bytes."""

    _protosw: dict = {}


class RawICMP(dpkt.icmp.ICMP):
    """dpkt's ICMP, leaving everything after the checksum as bytes."""

    _typesw: dict = {}


# EtherTypes dpkt reads as something else: 802.3 lengths (<= 1500), VLAN tags, MPLS labels.
DPKT_SPECIAL_ETHERTYPES = {0x8100, 0x88A8, 0x9100, 0x9200, 0x8847, 0x8848}
ethernet_ii_types = sixteen_bits(*EtherType).filter(lambda t: t > 1500 and t not in DPKT_SPECIAL_ETHERTYPES)


def checksum_by_dpkt(message: bytes, at: int) -> int:
    """The checksum dpkt computes for ``message`` with the 16-bit field at ``at`` zeroed."""
    return dpkt.in_cksum(message[:at] + b"\x00\x00" + message[at + 2:])


def flip(data: bytes, bit: int) -> bytes:
    changed = bytearray(data)
    changed[bit // 8] ^= 0x80 >> (bit % 8)
    return bytes(changed)


def parse_or_parse_error(codec, data):
    """``codec.parse(data)``, or None when it raises a ParseError of the codec's own layer with
    a known reason. Any other exception propagates and fails the test."""
    layer = {EthernetFrame: "Ethernet", ArpPacket: "ARP", Ipv4Packet: "IPv4", IcmpMessage: "ICMP"}[codec]
    try:
        value = codec.parse(data)
    except ParseError as error:
        assert error.layer == layer
        assert error.reason in REASONS[layer]
        assert str(error).startswith(f"[{layer}] ")
        return None
    assert isinstance(value, codec)
    return value


def decode_frame(frame: bytes) -> list[object]:
    """Every layer of a frame our codecs can read, top layer last; stops at the first ParseError."""
    layers: list[object] = []
    ethernet = parse_or_parse_error(EthernetFrame, frame)
    if ethernet is None:
        return layers
    layers.append(ethernet)
    if ethernet.ethertype == EtherType.ARP:
        arp = parse_or_parse_error(ArpPacket, ethernet.payload)
        layers += [arp] if arp is not None else []
    elif ethernet.ethertype == EtherType.IPV4:
        ipv4 = parse_or_parse_error(Ipv4Packet, ethernet.payload)
        if ipv4 is not None:
            layers.append(ipv4)
            if ipv4.protocol == IpProto.ICMP and not ipv4.is_fragment:
                icmp = parse_or_parse_error(IcmpMessage, ipv4.payload)
                layers += [icmp] if icmp is not None else []
    return layers


CODECS = [
    pytest.param(EthernetFrame, id="ethernet"),
    pytest.param(ArpPacket, id="arp"),
    pytest.param(Ipv4Packet, id="ipv4"),
    pytest.param(IcmpMessage, id="icmp"),
]

# Valid encodings, by codec: wire bytes that parse.
ENCODINGS = {
    EthernetFrame: frames(any_address=True),
    ArpPacket: arp_packets(any_address=True).map(bytes),
    Ipv4Packet: ipv4_packets(any_address=True).map(bytes),
    IcmpMessage: st.one_of(icmp_echo_messages(), icmp_messages()).map(bytes),
}


# 1. Only ParseError ------------------------------------------------------------------------

@pytest.mark.parametrize("codec", CODECS)
@given(data=st.binary(max_size=100))
def test_arbitrary_bytes_parse_or_raise_only_parse_error(codec, data):
    parse_or_parse_error(codec, data)


@given(data=st.binary(max_size=100))
def test_arbitrary_bytes_through_every_layer_raise_only_parse_error(data):
    decode_frame(data)


@pytest.mark.parametrize("codec", CODECS)
@given(data=st.data())
def test_valid_encodings_parse(codec, data):
    assert parse_or_parse_error(codec, data.draw(ENCODINGS[codec], label="encoding")) is not None


@pytest.mark.parametrize("codec", CODECS)
@given(data=st.data())
def test_truncated_encodings_parse_or_raise_only_parse_error(codec, data):
    wire = data.draw(ENCODINGS[codec], label="encoding")
    cut = data.draw(st.integers(0, len(wire) - 1), label="cut")
    value = parse_or_parse_error(codec, wire[:cut])
    if codec in (ArpPacket, Ipv4Packet):
        # Every byte of these is accounted for (total length / fixed size): nothing may be missing.
        assert value is None
    elif value is not None:
        # Ethernet has no length; an ICMP message that loses only zero words still verifies.
        header_length = 14 if codec is EthernetFrame else 8
        assert bytes(value.payload) == wire[header_length:cut]


@given(wire=frames(any_address=True), data=st.data())
def test_truncated_frames_through_every_layer_raise_only_parse_error(wire, data):
    decode_frame(wire[:data.draw(st.integers(0, len(wire) - 1), label="cut")])


@pytest.mark.parametrize("codec", CODECS)
@given(data=st.data())
def test_one_bit_flipped_encodings_parse_or_raise_only_parse_error(codec, data):
    wire = data.draw(ENCODINGS[codec], label="encoding")
    parse_or_parse_error(codec, flip(wire, data.draw(st.integers(0, 8 * len(wire) - 1), label="bit")))


@given(frame=st.builds(
    EthernetFrame, mac_addresses(any_address=True), mac_addresses(any_address=True), sixteen_bits(*EtherType),
    payloads(),
), data=st.data())
def test_ethernet_has_no_integrity_check_any_flipped_frame_parses_as_it_is(frame, data):
    wire = join(frame.buffers(pad=False))
    flipped = flip(wire, data.draw(st.integers(0, 8 * len(wire) - 1), label="bit"))
    assert join(EthernetFrame.parse(flipped).buffers(pad=False)) == flipped


@given(packet=arp_packets(any_address=True), data=st.data())
def test_arp_one_bit_flip_is_read_as_it_is_except_in_the_address_lengths(packet, data):
    wire = bytes(packet)
    bit = data.draw(st.one_of(st.integers(32, 47), st.integers(0, 8 * len(wire) - 1)), label="bit")
    if bit // 8 in (4, 5):  # ar$hln, ar$pln: anything but 6 and 4 cannot be read
        with pytest.raises(ParseError) as caught:
            ArpPacket.parse(flip(wire, bit))
        assert caught.value.drop_reason == "arp_bad_address_length"
    else:  # ARP has no checksum: the flipped field is read as sent
        assert bytes(ArpPacket.parse(flip(wire, bit))) == flip(wire, bit)


@given(wire=frames(any_address=True), data=st.data())
def test_one_bit_flipped_frames_through_every_layer_raise_only_parse_error(wire, data):
    decode_frame(flip(wire, data.draw(st.integers(0, 8 * len(wire) - 1), label="bit")))


# 2. Round trips ----------------------------------------------------------------------------

@given(frame=st.builds(
    EthernetFrame, mac_addresses(any_address=True), mac_addresses(any_address=True), sixteen_bits(*EtherType),
    payloads(),
))
def test_ethernet_parse_of_bytes_is_identity(frame):
    assert EthernetFrame.parse(join(frame.buffers(pad=False))) == frame
    padded = EthernetFrame.parse(bytes(frame))  # RFC 894: the padding becomes part of the payload
    assert bytes(padded.payload) == join(frame.payload) + bytes(max(0, 46 - len(join(frame.payload))))


@given(packet=arp_packets(any_address=True))
def test_arp_parse_of_bytes_is_identity(packet):
    assert ArpPacket.parse(bytes(packet)) == packet


@given(packet=ipv4_packets(any_address=True))
def test_ipv4_parse_of_bytes_is_identity(packet):
    assert Ipv4Packet.parse(bytes(packet)) == packet


@given(message=st.one_of(icmp_echo_messages(), icmp_messages()))
def test_icmp_parse_of_bytes_is_identity(message):
    assert IcmpMessage.parse(bytes(message)) == message


@given(wire=frames(any_address=True))
def test_whole_frames_rebuild_to_the_same_bytes(wire):
    layers = decode_frame(wire)
    assert len(layers) in (2, 3)  # ARP, or IPv4 and ICMP
    top = bytes(layers[-1])
    if len(layers) == 3:
        top = bytes(Ipv4Packet(**{**_fields(layers[1]), "payload": top}))
    assert bytes(EthernetFrame(layers[0].destination, layers[0].source, layers[0].ethertype, top)) == wire


def _fields(packet: Ipv4Packet) -> dict:
    names = ("source", "destination", "protocol", "ttl", "identification", "dont_fragment", "more_fragments",
             "fragment_offset", "type_of_service", "options")
    return {name: getattr(packet, name) for name in names}


# 3. Differential against dpkt: dpkt reads our bytes -----------------------------------------

@given(frame=st.builds(
    EthernetFrame, mac_addresses(any_address=True), mac_addresses(any_address=True), ethernet_ii_types,
    payloads(),
))
def test_dpkt_reads_our_ethernet_frames(frame):
    wire = bytes(frame)
    theirs = RawEthernet(wire)
    ours = EthernetFrame.parse(wire)
    assert (theirs.dst, theirs.src, theirs.type) == (ours.destination, ours.source, ours.ethertype)
    assert theirs.data == bytes(ours.payload)
    assert (theirs.dst, theirs.src, theirs.type) == (frame.destination, frame.source, frame.ethertype)


@given(packet=arp_packets(any_address=True))
def test_dpkt_reads_our_arp_packets(packet):
    wire = bytes(packet)
    theirs = dpkt.arp.ARP(wire)
    ours = ArpPacket.parse(wire)
    assert (theirs.hrd, theirs.pro, theirs.hln, theirs.pln, theirs.op) == (
        ours.hardware_type, ours.protocol_type, 6, 4, ours.operation,
    )
    assert (theirs.sha, theirs.spa, theirs.tha, theirs.tpa) == (
        ours.sender_mac, ours.sender_ip.packed, ours.target_mac, ours.target_ip.packed,
    )


def assert_dpkt_reads_ipv4(wire: bytes, ours: Ipv4Packet) -> None:
    theirs = RawIP(wire)
    assert theirs.v == 4
    assert theirs.hl * 4 == ours.header_length == 20 + len(theirs.opts)
    assert theirs.len == ours.total_length
    assert (theirs.tos, theirs.id, theirs.ttl, theirs.p) == (
        ours.type_of_service, ours.identification, ours.ttl, ours.protocol,
    )
    assert (theirs.rf, theirs.df, theirs.mf, theirs.offset) == (
        0, ours.dont_fragment, ours.more_fragments, ours.fragment_offset,
    )
    assert (theirs.src, theirs.dst) == (ours.source.packed, ours.destination.packed)
    assert theirs.opts == ours.options
    assert theirs.data == bytes(ours.payload)
    assert theirs.sum == checksum_by_dpkt(wire[:ours.header_length], 10)


@given(packet=ipv4_packets(any_address=True))
def test_dpkt_reads_our_ipv4_datagrams(packet):
    wire = bytes(packet)
    assert len(wire) == packet.total_length
    assert_dpkt_reads_ipv4(wire, Ipv4Packet.parse(wire))


def assert_dpkt_reads_icmp(wire: bytes, ours: IcmpMessage) -> None:
    theirs = RawICMP(wire)
    assert (theirs.type, theirs.code) == (ours.type, ours.code)
    assert theirs.data == ours.rest_of_header + bytes(ours.payload)
    assert theirs.sum == checksum_by_dpkt(wire, 2)
    if ours.type in (IcmpType.ECHO_REQUEST, IcmpType.ECHO_REPLY):
        echo = dpkt.icmp.ICMP(wire).echo
        assert (echo.id, echo.seq, echo.data) == (ours.identifier, ours.sequence, bytes(ours.payload))


@given(message=st.one_of(icmp_echo_messages(), icmp_messages()))
def test_dpkt_reads_our_icmp_messages(message):
    wire = bytes(message)
    assert_dpkt_reads_icmp(wire, IcmpMessage.parse(wire))


@given(wire=frames(any_address=True))
def test_dpkt_reads_our_whole_frames_layer_by_layer(wire):
    ethernet = EthernetFrame.parse(wire)
    theirs = RawEthernet(wire)
    assert (theirs.dst, theirs.src, theirs.type) == (ethernet.destination, ethernet.source, ethernet.ethertype)
    if ethernet.ethertype == EtherType.ARP:
        arp = ArpPacket.parse(ethernet.payload)
        full = dpkt.ethernet.Ethernet(wire).arp  # dpkt's own ARP dispatch
        assert (full.op, full.sha, full.spa, full.tha, full.tpa) == (
            arp.operation, arp.sender_mac, arp.sender_ip.packed, arp.target_mac, arp.target_ip.packed,
        )
    else:
        assert ethernet.ethertype == EtherType.IPV4
        ipv4 = Ipv4Packet.parse(ethernet.payload)
        assert_dpkt_reads_ipv4(bytes(ethernet.payload), ipv4)
        assert_dpkt_reads_icmp(bytes(ipv4.payload), IcmpMessage.parse(ipv4.payload))


# 3'. Differential against dpkt: we read dpkt's bytes ----------------------------------------

@given(
    destination=mac_addresses(any_address=True), source=mac_addresses(any_address=True),
    ethertype=ethernet_ii_types, payload=payloads(),
)
def test_we_read_dpkt_ethernet_frames(destination, source, ethertype, payload):
    ours = EthernetFrame.parse(golden.ethernet_frame(destination, source, ethertype, payload))
    assert (ours.destination, ours.source, ours.ethertype) == (destination, source, ethertype)
    assert bytes(ours.payload) == payload


@given(
    op=sixteen_bits(1, 2), hardware_type=sixteen_bits(1), protocol_type=sixteen_bits(0x0800),
    sender_mac=mac_addresses(any_address=True), sender_ip=ipv4_addresses(any_address=True),
    target_mac=mac_addresses(any_address=True), target_ip=ipv4_addresses(any_address=True),
)
def test_we_read_dpkt_arp_packets(op, hardware_type, protocol_type, sender_mac, sender_ip, target_mac, target_ip):
    wire = golden.arp_packet(op, sender_mac, sender_ip, target_mac, target_ip,
                             hardware_type=hardware_type, protocol_type=protocol_type)
    assert ArpPacket.parse(wire) == ArpPacket(op, sender_mac, sender_ip, target_mac, target_ip,
                                              hardware_type, protocol_type)


@given(
    source=ipv4_addresses(any_address=True), destination=ipv4_addresses(any_address=True),
    protocol=eight_bits(1), payload=payloads(), ttl=st.integers(0, 255), identification=st.integers(0, 0xFFFF),
    dont_fragment=st.booleans(), more_fragments=st.booleans(), fragment_offset=st.integers(0, 0x1FFF),
    type_of_service=st.integers(0, 0xFF), options=ipv4_options(),
)
def test_we_read_dpkt_ipv4_datagrams(source, destination, protocol, payload, ttl, identification, dont_fragment,
                                     more_fragments, fragment_offset, type_of_service, options):
    wire = golden.ipv4_datagram(
        source, destination, protocol, payload, ttl=ttl, identification=identification,
        dont_fragment=dont_fragment, more_fragments=more_fragments, fragment_offset=fragment_offset,
        type_of_service=type_of_service, options=options,
    )
    ours = Ipv4Packet.parse(wire)  # TTL 0 included: only *sending* it is forbidden
    assert (ours.source, ours.destination, ours.protocol, ours.ttl, ours.identification) == (
        IPv4Address(source), IPv4Address(destination), protocol, ttl, identification,
    )
    assert (ours.dont_fragment, ours.more_fragments, ours.fragment_offset, ours.type_of_service) == (
        dont_fragment, more_fragments, fragment_offset, type_of_service,
    )
    assert ours.options == options
    assert bytes(ours.payload) == payload


@given(
    type=eight_bits(*IcmpType), code=eight_bits(0), rest=st.binary(min_size=4, max_size=4), payload=payloads(),
)
def test_we_read_dpkt_icmp_messages(type, code, rest, payload):
    ours = IcmpMessage.parse(golden.icmp_message(type, code, rest, payload))
    assert (ours.type, ours.code, ours.rest_of_header, bytes(ours.payload)) == (type, code, rest, payload)


@given(
    type=st.sampled_from([8, 0]), identifier=st.integers(0, 0xFFFF), sequence=st.integers(0, 0xFFFF),
    payload=payloads(), cuts=st.lists(st.integers(0, 64), max_size=4),
)
def test_we_build_and_read_dpkt_icmp_echo_messages(type, identifier, sequence, payload, cuts):
    wire = golden.icmp_echo(type, identifier, sequence, payload)
    ours = IcmpMessage.parse(wire)
    assert (ours.type, ours.identifier, ours.sequence, bytes(ours.payload)) == (type, identifier, sequence, payload)
    # Built from the payload cut into chunks (odd lengths included), we write dpkt's bytes.
    edges = [0, *sorted(min(cut, len(payload)) for cut in cuts), len(payload)]
    chunks = [memoryview(payload)[start:end] for start, end in zip(edges, edges[1:])]
    assert b"".join(IcmpMessage.echo(type, identifier, sequence, chunks).buffers()) == wire


# 4. Checksums catch every single-bit error ---------------------------------------------------

@given(packet=ipv4_packets(any_address=True), data=st.data())
def test_rfc1122_3_2_1_2_any_one_bit_flip_in_the_ipv4_header_is_a_parse_error(packet, data):
    wire = bytes(packet)
    bit = data.draw(st.integers(0, 8 * packet.header_length - 1), label="bit")
    with pytest.raises(ParseError) as caught:  # bad_checksum, or an earlier check (version, IHL, length)
        Ipv4Packet.parse(flip(wire, bit))
    assert caught.value.layer == "IPv4"


@given(packet=ipv4_packets(any_address=True).filter(lambda packet: len(join(packet.payload)) > 0), data=st.data())
def test_a_one_bit_flip_in_the_ipv4_payload_is_not_the_ipv4_checksum_s_business(packet, data):
    wire = bytes(packet)
    bit = data.draw(st.integers(8 * packet.header_length, 8 * len(wire) - 1), label="bit")
    parsed = Ipv4Packet.parse(flip(wire, bit))
    assert _fields(parsed) == _fields(packet)
    assert bytes(parsed.payload) == flip(wire, bit)[packet.header_length:]


@given(message=st.one_of(icmp_echo_messages(), icmp_messages()), data=st.data())
def test_rfc1122_3_2_2_any_one_bit_flip_in_an_icmp_message_is_a_parse_error(message, data):
    wire = bytes(message)
    bit = data.draw(st.integers(0, 8 * len(wire) - 1), label="bit")
    with pytest.raises(ParseError) as caught:
        IcmpMessage.parse(flip(wire, bit))
    assert caught.value.drop_reason == "icmp_bad_checksum"
