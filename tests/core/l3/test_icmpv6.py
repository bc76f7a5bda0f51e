"""ICMPv6 codec (RFC 4443), Neighbor Discovery (RFC 4861 4) and MLD (RFC 3810 5, RFC 2710):
Linux-sent golden messages read and rebuilt byte for byte, errors quoting to 1280 bytes,
every parse-error reason, misuse, hypothesis round trips, and dpkt as the checksum oracle.

The golden messages were sent by Linux 6.x from a TAP device (MAC 02:00:00:00:00:01,
address 2001:db8::1/64) in a private namespace: DAD, MLDv2 reports, a router solicitation, a
neighbour solicitation and an echo request, captured as the kernel wrote them.
"""

from __future__ import annotations

import re
from ipaddress import IPv6Address
from pathlib import Path

import dpkt
import pytest
from hypothesis import given
from hypothesis import strategies as st

from stack.errors import ParseError
from stack.l3.icmpv6 import (
    BODY_DECODERS,
    MAXIMUM_QUOTE,
    DestinationUnreachableCode,
    Icmpv6Message,
    Icmpv6Type,
    MldQuery,
    MldReport,
    MldV1Message,
    MulticastAddressRecord,
    NdOption,
    NdOptionType,
    NeighborAdvertisement,
    NeighborSolicitation,
    RecordType,
    Redirect,
    RouterAdvertisement,
    RouterSolicitation,
    checksum,
    decode,
    decode_exponential,
    is_error,
)
from stack.l3.ipv6 import Ipv6Packet, ParameterProblemCode
from stack.l3 import neighbor_discovery
from stack.reasons import DROP_REASONS

UNSPECIFIED = IPv6Address("::")
OURS = IPv6Address("2001:db8::1")
LINK_LOCAL = IPv6Address("fe80::ff:fe00:1")
MAC = bytes.fromhex("020000000001")


def golden(hex_packet: str) -> tuple[Ipv6Packet, Icmpv6Message]:
    packet = Ipv6Packet.parse(bytes.fromhex(hex_packet))
    chain = packet.chain()
    return packet, Icmpv6Message.parse(chain.upper_layer_data, packet.source, packet.destination)


# Linux's `ping -6 -s 8 2001:db8::3`.
ECHO_PACKET = ("6006cb7700103a40" "20010db8000000000000000000000001" "20010db8000000000000000000000003"
               "80"         # type 128: echo request
               "00"         # code 0
               "bd0e"       # checksum (the kernel's)
               "5b1f" "0001"  # identifier, sequence
               "0001020304050607")
# Linux's DAD probe for 2001:db8::1: from ::, to its solicited-node group, with a Nonce option
# (RFC 7527, type 14: unknown to us, kept as it is).
DAD_PACKET = ("6000000000203aff" "00000000000000000000000000000000" "ff0200000000000000000001ff000001"
              "87" "00" "86ff"  # type 135: neighbour solicitation, code 0, checksum
              "00000000"        # reserved
              "20010db8000000000000000000000001"  # target 2001:db8::1
              "0e01" "2a79d168bc02")  # option 14, 1 unit (8 bytes): the nonce
# Linux resolving 2001:db8::2: a neighbour solicitation with its source link-layer address.
NS_PACKET = ("6000000000203aff" "20010db8000000000000000000000001" "ff0200000000000000000001ff000002"
             "8700" "1c27" "00000000" "20010db8000000000000000000000002"
             "0101" "020000000001")  # option 1 (source link-layer address), 1 unit: the MAC
# Linux's router solicitation from its link-local address.
RS_PACKET = ("6000000000103aff" "fe80000000000000000000fffe000001" "ff020000000000000000000000000002"
             "8500" "7b2c" "00000000" "0101" "020000000001")
# Linux's MLDv2 report from its link-local address: one record, CHANGE_TO_EXCLUDE ff02::1:ff00:1.
MLD_REPORT_PACKET = ("6000000000240001" "fe80000000000000000000fffe000001" "ff020000000000000000000000000016"
                     "3a00" "0502" "0000" "0100"  # Hop-by-Hop: Router Alert (MLD), PadN
                     "8f" "00" "7207"  # type 143, reserved, checksum
                     "0000" "0001"     # reserved, 1 record
                     "04" "00" "0000"  # record type 4, no auxiliary data, no sources
                     "ff0200000000000000000001ff000001")


# ----------------------------------------------------------------------------- echo, four ways


def test_deconstruct_the_echo_request():
    _packet, message = golden(ECHO_PACKET)
    assert (message.type, message.code) == (Icmpv6Type.ECHO_REQUEST, 0)
    assert (message.identifier, message.sequence) == (0x5B1F, 1)
    assert bytes(message.payload) == bytes(range(8))
    assert decode(message) is message  # not an ND or MLD type


def test_construct_the_echo_request():
    message = Icmpv6Message.echo(Icmpv6Type.ECHO_REQUEST, 0x5B1F, 1, bytes(range(8)))
    assert message.to_bytes(OURS, IPv6Address("2001:db8::3")) == bytes.fromhex(ECHO_PACKET)[40:]


def test_parse_of_bytes_is_identity_and_buffers_keep_the_payload():
    data = memoryview(bytearray(b"0123456789"))
    reply = Icmpv6Message.echo(Icmpv6Type.ECHO_REPLY, 7, 9, [data[:3], data[3:]])
    buffers = reply.buffers(OURS, LINK_LOCAL)
    assert buffers[1] is not None and buffers[1].obj is data.obj
    assert Icmpv6Message.parse(b"".join(buffers), OURS, LINK_LOCAL) == reply


def test_rfc4443_2_3_the_checksum_covers_the_pseudo_header():
    wire = bytes.fromhex(ECHO_PACKET)[40:]
    with pytest.raises(ParseError) as caught:  # the same bytes, to another destination
        Icmpv6Message.parse(wire, OURS, IPv6Address("2001:db8::4"))
    assert caught.value.drop_reason == "icmpv6_bad_checksum"


def test_dpkt_computes_the_same_checksum():
    message = Icmpv6Message.echo(128, 1, 2, b"abc")
    wire = message.to_bytes(OURS, LINK_LOCAL)
    theirs = dpkt.ip6.IP6(src=OURS.packed, dst=LINK_LOCAL.packed, nxt=58, hlim=64, plen=len(wire),
                          data=dpkt.icmp6.ICMP6(type=128, code=0, data=wire[4:]))
    assert bytes(theirs)[40:] == wire


# ----------------------------------------------------------------------------- golden ND and MLD


def test_linux_dad_probe_neighbor_solicitation():
    packet, message = golden(DAD_PACKET)
    solicitation = decode(message)
    assert solicitation == NeighborSolicitation(OURS, (NdOption(14, bytes.fromhex("2a79d168bc02")),))
    assert solicitation.source_link_layer_address is None  # RFC 4861 7.1.1: none from ::
    assert packet.hop_limit == 255
    assert solicitation.message().to_bytes(packet.source, packet.destination) == bytes.fromhex(DAD_PACKET)[40:]


def test_linux_neighbor_solicitation_with_its_link_layer_address():
    packet, message = golden(NS_PACKET)
    solicitation = NeighborSolicitation.from_message(message)
    assert solicitation.target == IPv6Address("2001:db8::2")
    assert solicitation.source_link_layer_address == MAC
    assert solicitation.options == (NdOption.link_layer_address(NdOptionType.SOURCE_LINK_LAYER_ADDRESS, MAC),)
    assert solicitation.message().to_bytes(packet.source, packet.destination) == bytes.fromhex(NS_PACKET)[40:]


def test_linux_router_solicitation():
    packet, message = golden(RS_PACKET)
    solicitation = decode(message)
    assert solicitation == RouterSolicitation((NdOption(1, MAC),))
    assert solicitation.message().to_bytes(packet.source, packet.destination) == bytes.fromhex(RS_PACKET)[40:]


def test_linux_mldv2_report():
    packet, message = golden(MLD_REPORT_PACKET)
    report = decode(message)
    assert report == MldReport((MulticastAddressRecord(RecordType.CHANGE_TO_EXCLUDE_MODE,
                                                       IPv6Address("ff02::1:ff00:1")),))
    assert report.message().to_bytes(packet.source, packet.destination) == bytes.fromhex(MLD_REPORT_PACKET)[48:]


def test_neighbor_advertisement_flags_are_the_top_three_bits():
    advertisement = NeighborAdvertisement(OURS, router=False, solicited=True, override=True,
                                          options=(NdOption.link_layer_address(2, MAC),))
    message = advertisement.message()
    assert message.rest_of_header == bytes.fromhex("60000000")  # R=0 S=1 O=1 (RFC 4861 4.4)
    assert bytes(message.payload) == OURS.packed + bytes.fromhex("0201") + MAC
    parsed = decode(Icmpv6Message.parse(message.to_bytes(OURS, LINK_LOCAL), OURS, LINK_LOCAL))
    assert parsed == advertisement and parsed.target_link_layer_address == MAC
    assert NeighborAdvertisement.from_message(Icmpv6Message(136, 0, b"\x80\x00\x00\x00", bytes(16))).router


def test_router_advertisement_with_prefix_and_mtu_options():
    prefix = NdOption.prefix_information(IPv6Address("2001:db8::"), 64, valid_lifetime=2592000,
                                         preferred_lifetime=604800)
    advertisement = RouterAdvertisement(64, managed=True, other=False, router_lifetime=1800,
                                        reachable_time=30000, retrans_timer=1000,
                                        options=(prefix, NdOption.mtu_option(1500)))
    message = advertisement.message()
    assert message.rest_of_header == bytes.fromhex("40 80 0708")  # hop limit 64, M, lifetime 1800
    assert bytes(message.payload)[:8] == bytes.fromhex("00007530 000003e8")
    assert bytes(prefix) == bytes.fromhex(
        "03 04 40 c0 00278d00 00093a80 00000000 20010db8000000000000000000000000")  # RFC 4861 4.6.2
    parsed = decode(message)
    assert parsed == advertisement
    information = parsed.options[0].prefix()
    assert (information.prefix, information.prefix_length, information.on_link, information.autonomous,
            information.valid_lifetime, information.preferred_lifetime) == (
        IPv6Address("2001:db8::"), 64, True, True, 2592000, 604800)
    assert parsed.options[1].mtu == 1500


def test_redirect_with_a_redirected_header_cut_to_the_minimum_mtu():
    original = bytes.fromhex(ECHO_PACKET) + bytes(2000)
    redirect = Redirect(IPv6Address("fe80::1"), IPv6Address("2001:db8::3"),
                        (NdOption.link_layer_address(2, MAC), NdOption.redirected_header(original)))
    message = redirect.message()
    assert 40 + message.length == 1280  # RFC 4861 4.6.3: within the minimum MTU
    parsed = decode(message)
    assert parsed == redirect
    assert parsed.options[1].redirected_packet[:56] == bytes.fromhex(ECHO_PACKET)
    short = NdOption.redirected_header(b"abc")  # padded to whole 8-octet units
    assert bytes(short) == bytes.fromhex("0402") + bytes(6) + b"abc" + bytes(5)


def test_rfc3810_mldv2_general_query_and_its_exponential_codes():
    query = MldQuery(0x8000 | 3 << 12 | 0x123, robustness=2, query_interval_code=0x80 | 2 << 4 | 5,
                     suppress_router_processing=True, sources=(IPv6Address("2001:db8::9"),))
    message = query.message()
    assert message.length == 28 + 16
    assert bytes(message.payload)[16:20] == bytes.fromhex("0a a5 0001")  # S=1 QRV=2, QQIC, 1 source
    parsed = decode(message)
    assert parsed == query and parsed.is_general and parsed.version == 2
    # RFC 3810 5.1.3: (mant | 0x1000) << (exp + 3); 5.1.9: (mant | 0x10) << (exp + 3).
    assert parsed.maximum_response_delay_ms == (0x123 | 0x1000) << 6
    assert parsed.query_interval_s == (5 | 0x10) << 5
    assert decode_exponential(1000, 32768, 12) == 1000 and decode_exponential(125, 128, 4) == 125


def test_rfc3810_8_1_a_24_byte_query_is_mldv1():
    message = Icmpv6Message(130, 0, bytes.fromhex("2710 0000"), IPv6Address("ff02::1:ff00:1").packed)
    query = decode(message)
    assert query.version == 1 and query.maximum_response_delay_ms == 10000  # RFC 2710 3.4: in ms
    assert query.multicast_address == IPv6Address("ff02::1:ff00:1") and not query.is_general
    assert query.message() == message


@pytest.mark.parametrize("type_", [Icmpv6Type.MLDV1_REPORT, Icmpv6Type.MLDV1_DONE])
def test_mldv1_report_and_done(type_):
    message = MldV1Message(type_, "ff02::1:ff00:1").message()
    assert message.length == 24
    assert decode(message) == MldV1Message(type_, IPv6Address("ff02::1:ff00:1"))


# ----------------------------------------------------------------------------- errors


def test_rfc4443_2_4_c_an_error_quotes_the_invoking_packet_up_to_1280_bytes():
    invoking = bytes.fromhex(ECHO_PACKET) + bytes(3000)
    error = Icmpv6Message.error(Icmpv6Type.PARAMETER_PROBLEM, ParameterProblemCode.UNRECOGNIZED_NEXT_HEADER,
                                [invoking[:100], memoryview(invoking)[100:]], parameter=6)
    assert 40 + error.length == 1280 and MAXIMUM_QUOTE == 1232
    assert error.parameter == 6 and error.rest_of_header == bytes.fromhex("00000006")
    wire = error.to_bytes(OURS, LINK_LOCAL)
    assert wire[8:] == invoking[:1232]
    small = Icmpv6Message.error(Icmpv6Type.DESTINATION_UNREACHABLE, DestinationUnreachableCode.PORT_UNREACHABLE,
                                invoking[:60])
    assert bytes(Icmpv6Message.parse(small.to_bytes(OURS, LINK_LOCAL), OURS, LINK_LOCAL).payload) == invoking[:60]
    too_big = Icmpv6Message.error(Icmpv6Type.PACKET_TOO_BIG, 0, invoking[:60], parameter=1280)
    assert too_big.parameter == 1280


def test_rfc4443_2_1_errors_are_types_below_128():
    assert is_error(1) and is_error(127) and not is_error(128) and not is_error(Icmpv6Type.ECHO_REPLY)


# ----------------------------------------------------------------------------- malformed input


def ns(options: bytes, target: bytes = OURS.packed) -> Icmpv6Message:
    return Icmpv6Message(135, 0, bytes(4), target + options)


# (id, message or raw bytes to parse, reason, text)
MALFORMED = [
    ("empty", b"", "truncated", "message of 0 bytes < header 8"),
    ("seven-bytes", bytes.fromhex(ECHO_PACKET)[40:47], "truncated", "message of 7 bytes < header 8"),
    ("checksum-off-by-one", bytes.fromhex(ECHO_PACKET)[40:42] + b"\xbd\x0f" + bytes.fromhex(ECHO_PACKET)[44:],
     "bad_checksum", "checksum 0xbd0f does not verify (should be 0xbd0e)"),
    ("data-cut", bytes.fromhex(ECHO_PACKET)[40:-1], "bad_checksum", "checksum 0xbd0e does not verify"),
    ("ns-without-target", Icmpv6Message(135, 0, bytes(4), bytes(15)), "nd_truncated",
     "Neighbor Solicitation of 23 bytes < 24"),
    ("na-without-target", Icmpv6Message(136, 0, bytes(4)), "nd_truncated", "Neighbor Advertisement of 8 bytes < 24"),
    ("ra-short", Icmpv6Message(134, 0, bytes(4), bytes(7)), "nd_truncated", "Router Advertisement of 15 bytes < 16"),
    ("redirect-short", Icmpv6Message(137, 0, bytes(4), bytes(31)), "nd_truncated", "Redirect of 39 bytes < 40"),
    ("option-length-zero", ns(bytes.fromhex("0100") + MAC), "nd_option_zero_length",
     "option 1 at offset 24 has length 0"),
    ("unknown-option-length-zero", Icmpv6Message(133, 0, bytes(4), bytes.fromhex("fe00") + bytes(6)),
     "nd_option_zero_length", "option 254 at offset 8 has length 0"),
    ("option-past-end", ns(bytes.fromhex("0102") + MAC), "nd_option_truncated",
     "option 1 of 16 bytes at offset 24 runs past the message"),
    ("option-one-byte", ns(b"\x01"), "nd_option_truncated", "has 1 byte, not its 2-byte head"),
    ("prefix-length-3", Icmpv6Message(134, 0, bytes(4), bytes(8) + bytes.fromhex("0303") + bytes(22)),
     "nd_bad_option_length", "option 3 at offset 16 has length 3, not 4"),
    ("mtu-length-2", Icmpv6Message(134, 0, bytes(4), bytes(8) + bytes.fromhex("0502") + bytes(14)),
     "nd_bad_option_length", "option 5 at offset 16 has length 2, not 1"),
    ("query-26-bytes", Icmpv6Message(130, 0, bytes(4), bytes(18)), "mld_bad_query_length",
     "query of 26 bytes is neither 24 nor 28 or more"),
    ("query-8-bytes", Icmpv6Message(130, 0, bytes(4)), "mld_bad_query_length", "query of 8 bytes"),
    ("query-sources-missing", Icmpv6Message(130, 0, bytes(4), bytes(16) + bytes.fromhex("00000002") + bytes(16)),
     "mld_truncated", "query with 2 sources has only 16 bytes"),
    ("report-record-missing", Icmpv6Message(143, 0, bytes.fromhex("00000002"), bytes(20)), "mld_truncated",
     "record 2 of 2 is missing"),
    ("report-record-sources-past-end", Icmpv6Message(143, 0, bytes.fromhex("00000001"),
                                                     bytes.fromhex("04000001") + bytes(16)),
     "mld_truncated", "record 1 runs past the report"),
    ("report-aux-data-past-end", Icmpv6Message(143, 0, bytes.fromhex("00000001"),
                                               bytes.fromhex("04010000") + bytes(16)),
     "mld_truncated", "record 1 runs past the report"),
    ("mldv1-report-short", Icmpv6Message(131, 0, bytes(4), bytes(15)), "mld_truncated",
     "MLDv1 message of 23 bytes < 24"),
]


@pytest.mark.parametrize(("data", "reason", "text"), [case[1:] for case in MALFORMED],
                         ids=[case[0] for case in MALFORMED])
def test_malformed_input_is_a_parse_error(data, reason, text):
    with pytest.raises(ParseError) as caught:
        if isinstance(data, Icmpv6Message):
            decode(data)
        else:
            Icmpv6Message.parse(data, OURS, IPv6Address("2001:db8::3"))
    error = caught.value
    assert (error.layer, error.reason) == ("ICMPv6", reason)
    assert error.drop_reason == f"icmpv6_{reason}" and error.drop_reason in DROP_REASONS
    assert text in str(error) and str(error).startswith("[ICMPv6] ")


def test_every_icmpv6_reason_has_a_malformed_case():
    # The codec's reasons: those its source raises (the host adds reasons of its own).
    source = (Path(__file__).parents[3] / "stack" / "l3" / "icmpv6.py").read_text()
    raised = set(re.findall(r'ParseError\(\s*"ICMPv6",\s*"([a-z0-9_]+)"', source))
    assert {f"icmpv6_{case[2]}" for case in MALFORMED} == {f"icmpv6_{r}" for r in raised}
    assert {f"icmpv6_{r}" for r in raised} <= set(DROP_REASONS)


def test_rfc4861_4_6_unknown_options_are_kept_not_refused():
    solicitation = decode(ns(bytes.fromhex("fe01") + bytes(6) + bytes.fromhex("0101") + MAC))
    assert [option.type for option in solicitation.options] == [254, 1]
    assert solicitation.source_link_layer_address == MAC


@pytest.mark.parametrize(("build", "message"), [
    (lambda: Icmpv6Message(256, 0), "type 256"),
    (lambda: Icmpv6Message(1, 0, b"abc"), "4 bytes, not 3"),
    (lambda: Icmpv6Message.echo(128, 1 << 16, 0), "identifier 65536"),
    (lambda: Icmpv6Message.error(128, 0, b""), "not an error"),
    (lambda: Icmpv6Message.error(2, 0, b"", parameter=1 << 32), "does not fit 32 bits"),
    (lambda: NdOption(1, bytes(5)), "not a multiple of 8"),
    (lambda: NdOption(5, bytes(14)), "is 8 bytes, not 16"),
    (lambda: NdOption(1, b"abcdef").prefix(), "not Prefix Information"),
    (lambda: MldQuery(0, version=1, robustness=2), "MLDv1 query has no"),
    (lambda: MldQuery(0, version=3), "version 3"),
    (lambda: MulticastAddressRecord(1, "ff02::1", auxiliary_data=b"abc"), "32-bit words"),
    (lambda: MldV1Message(130, "ff02::1"), "not an MLDv1 Report or Done"),
    (lambda: NeighborSolicitation.from_message(Icmpv6Message(136, 0)), "not NEIGHBOR_SOLICITATION"),
], ids=["type-256", "rest-3-bytes", "identifier-65536", "error-of-type-128", "parameter-33-bits",
        "option-unaligned", "mtu-option-16-bytes", "prefix-of-slla", "mldv1-qrv", "mld-version-3",
        "aux-data-unaligned", "mldv1-type-130", "wrong-type"])
def test_local_misuse_is_a_value_error(build, message):
    with pytest.raises(ValueError, match=message):
        build()


# ----------------------------------------------------------------------------- properties

addresses = st.integers(0, (1 << 128) - 1).map(IPv6Address)
nd_options = st.one_of(
    st.builds(NdOption.link_layer_address, st.sampled_from([1, 2]), st.binary(min_size=6, max_size=6)),
    st.builds(NdOption.prefix_information, addresses, st.integers(0, 128), st.booleans(), st.booleans(),
              st.integers(0, 0xFFFFFFFF), st.integers(0, 0xFFFFFFFF)),
    st.builds(NdOption.mtu_option, st.integers(0, 0xFFFFFFFF)),
    st.builds(NdOption.redirected_header, st.binary(max_size=100)),
    st.builds(NdOption, st.integers(6, 255), st.integers(0, 3).map(lambda n: bytes(6 + 8 * n))),
)
option_tuples = st.lists(nd_options, max_size=4).map(tuple)
records = st.builds(MulticastAddressRecord, st.integers(0, 255), addresses,
                    st.lists(addresses, max_size=3).map(tuple), st.integers(0, 3).map(lambda n: bytes(4 * n)))
bodies = st.one_of(
    st.builds(RouterSolicitation, option_tuples),
    st.builds(RouterAdvertisement, st.integers(0, 255), st.booleans(), st.booleans(), st.integers(0, 0xFFFF),
              st.integers(0, 0xFFFFFFFF), st.integers(0, 0xFFFFFFFF), option_tuples),
    st.builds(NeighborSolicitation, addresses, option_tuples),
    st.builds(NeighborAdvertisement, addresses, st.booleans(), st.booleans(), st.booleans(), option_tuples),
    st.builds(Redirect, addresses, addresses, option_tuples),
    st.builds(MldQuery, st.integers(0, 0xFFFF), addresses, st.lists(addresses, max_size=3).map(tuple),
              st.booleans(), st.integers(0, 7), st.integers(0, 255)),
    st.builds(lambda code, address: MldQuery(code, address, version=1), st.integers(0, 0xFFFF), addresses),
    st.builds(MldReport, st.lists(records, max_size=3).map(tuple)),
    st.builds(MldV1Message, st.sampled_from([131, 132]), addresses, st.integers(0, 0xFFFF)),
)


@given(bodies, addresses, addresses)
def test_nd_and_mld_values_survive_the_wire(body, source, destination):
    wire = body.message().to_bytes(source, destination)
    assert decode(Icmpv6Message.parse(wire, source, destination)) == body


@given(bodies, addresses, addresses)
def test_dpkt_reads_the_same_type_code_and_checksum(body, source, destination):
    wire = body.message().to_bytes(source, destination)
    theirs = dpkt.icmp6.ICMP6(wire)
    assert (theirs.type, theirs.code, theirs.sum) == (wire[0], wire[1], int.from_bytes(wire[2:4], "big"))
    # dpkt.in_cksum is an independent sum: the pseudo-header and the message add up to 0.
    pseudo = source.packed + destination.packed + len(wire).to_bytes(4, "big") + bytes(3) + b"\x3a"
    assert dpkt.in_cksum(pseudo + wire) == 0
    assert checksum(source, destination, wire[:2] + b"\x00\x00" + wire[4:]) == theirs.sum


@given(st.sampled_from(sorted(BODY_DECODERS)) | st.integers(0, 255), st.integers(0, 255),
       st.binary(min_size=4, max_size=4), st.binary(max_size=120))
def test_arbitrary_bodies_raise_only_parse_error(type_, code, rest, payload):
    message = Icmpv6Message(type_, code, rest, payload)
    try:
        decode(message)
    except ParseError:
        pass


@given(st.binary(max_size=80), addresses, addresses)
def test_arbitrary_bytes_raise_only_parse_error(data, source, destination):
    try:
        decode(Icmpv6Message.parse(data, source, destination))
    except ParseError:
        pass
