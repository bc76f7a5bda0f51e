"""ICMP codec (RFC 792; RFC 1122 3.2.2): four ways on a real echo request, malformed input, misuse.

The oracles are the hex literals below (checksums worked out by hand, checked with
``dpkt.in_cksum``) and dpkt, never ``stack`` itself.
"""

from __future__ import annotations

import dpkt
import pytest
from hypothesis import example, given
from hypothesis import strategies as st

from stack.errors import ParseError
from stack.l3.icmp import IcmpMessage, IcmpType, echo_reply_checksum, header_bytes
from stack.testing import frames

DATA = bytes(range(56))
# ping's echo request: identifier 0x1234, sequence 1, 56 data bytes.
MESSAGE = bytes.fromhex(
    "08"     # type: echo request
    "00"     # code 0
    "ee b7"  # checksum: ~(0800+1234+0001+sum(data)=2f710) = ~1148
    "12 34"  # identifier 0x1234
    "00 01"  # sequence number 1
    # data: 56 bytes
    "00 01 02 03 04 05 06 07  08 09 0a 0b 0c 0d 0e 0f"
    "10 11 12 13 14 15 16 17  18 19 1a 1b 1c 1d 1e 1f"
    "20 21 22 23 24 25 26 27  28 29 2a 2b 2c 2d 2e 2f"
    "30 31 32 33 34 35 36 37"
)

# Destination unreachable, fragmentation needed (RFC 1191): next-hop MTU 1500, nothing quoted.
UNREACHABLE = bytes.fromhex(
    "03"           # type: destination unreachable
    "04"           # code 4: fragmentation needed and DF set
    "f7 1f"        # checksum: ~(0304+0000+05dc) = ~08e0
    "00 00 05 dc"  # rest of header: unused, next-hop MTU 1500
)


def test_deconstruct():
    message = IcmpMessage.parse(MESSAGE)
    assert message.type == 8 == IcmpType.ECHO_REQUEST
    assert message.code == 0
    assert message.rest_of_header == bytes.fromhex("12340001")
    assert message.identifier == 0x1234
    assert message.sequence == 1
    assert bytes(message.payload) == DATA


def test_construct():
    assert bytes(IcmpMessage.echo(IcmpType.ECHO_REQUEST, 0x1234, 1, DATA)) == MESSAGE


def test_parse_of_bytes_is_identity():
    message = IcmpMessage.echo(IcmpType.ECHO_REQUEST, 0x1234, 1, DATA)
    assert IcmpMessage.parse(bytes(message)) == message


def test_buffers_join_to_bytes_and_keep_the_payload_object():
    data = memoryview(bytearray(DATA))
    message = IcmpMessage.echo(IcmpType.ECHO_REQUEST, 0x1234, 1, data)
    buffers = message.buffers()
    assert b"".join(buffers) == bytes(message) == MESSAGE
    assert len(buffers) == 2
    assert buffers[1] is data  # not copied


def test_buffers_keep_every_chunk_of_a_list_payload_with_odd_lengths():
    first, second = DATA[:7], memoryview(DATA)[7:]  # a 7-byte chunk: the checksum must still be right
    buffers = IcmpMessage.echo(IcmpType.ECHO_REQUEST, 0x1234, 1, [first, second]).buffers()
    assert buffers[1] is first and buffers[2] is second
    assert b"".join(buffers) == MESSAGE


def test_send_path_header_encoder_writes_the_same_header():
    assert header_bytes(8, 0, bytes.fromhex("12340001"), [DATA[:7], memoryview(DATA)[7:]]) == MESSAGE[:8]


def test_deconstruct_a_non_echo_message():
    message = IcmpMessage.parse(UNREACHABLE)
    assert message.type == IcmpType.DESTINATION_UNREACHABLE
    assert message.code == 4
    assert message.rest_of_header == bytes.fromhex("000005dc")
    assert bytes(message.payload) == b""


def test_construct_a_non_echo_message():
    assert bytes(IcmpMessage(3, 4, bytes.fromhex("000005dc"))) == UNREACHABLE


def test_echo_reply_matches_dpkt_and_the_golden_frame():
    reply = IcmpMessage.echo(IcmpType.ECHO_REPLY, 0x1234, 1, DATA)
    assert bytes(reply) == frames.icmp_echo(0, 0x1234, 1, DATA) == frames.ECHO_REPLY[34:]


def test_golden_echo_request_frame_carries_this_message():
    assert frames.ECHO_REQUEST[34:] == MESSAGE


def test_parsed_payload_is_a_view_not_a_copy():
    data = bytearray(MESSAGE)
    message = IcmpMessage.parse(data)
    assert isinstance(message.payload, memoryview)
    data[8] = 0xEE
    assert bytes(message.payload)[0] == 0xEE


def test_odd_length_message_checksum_pads_with_a_zero_byte():
    # RFC 1071 4.1: the odd byte 0x01 counts as the word 0x0100. ~(0800+0000+0000+0100) = f6ff.
    odd = bytes.fromhex("08 00 f6 ff 00 00 00 00 01")
    assert bytes(IcmpMessage.echo(8, 0, 0, b"\x01")) == odd
    assert bytes(IcmpMessage.parse(odd).payload) == b"\x01"


def test_empty_echo_reply_with_all_zero_fields_has_checksum_0xffff():
    # The ones'-complement sum is +0, so the checksum is ~0 = 0xffff (RFC 1071), never 0x0000.
    assert bytes(IcmpMessage.echo(IcmpType.ECHO_REPLY, 0, 0)) == bytes.fromhex("00 00 ff ff 00 00 00 00")
    with pytest.raises(ParseError, match="does not verify"):
        IcmpMessage.parse(bytes(8))  # the same message with checksum 0x0000


def test_a_sum_of_negative_zero_gives_checksum_0x0000():
    # 0000 + ffff + 0000 = ffff (-0): the checksum is ~ffff = 0x0000, which verifies (RFC 1071).
    # (Only UDP sends 0xffff instead of a computed 0, RFC 768; ICMP does not.)
    wire = bytes.fromhex("00 00 00 00 ff ff 00 00")
    assert bytes(IcmpMessage(IcmpType.ECHO_REPLY, 0, b"\xff\xff\x00\x00")) == wire == frames.icmp_echo(0, 0xFFFF, 0, b"")
    assert IcmpMessage.parse(wire).identifier == 0xFFFF


@pytest.mark.parametrize(
    ("data", "reason", "fragment"),
    [
        (b"", "truncated", "message of 0 bytes < header 8"),
        (MESSAGE[:7], "truncated", "message of 7 bytes < header 8"),
        (MESSAGE[:2] + b"\xee\xb8" + MESSAGE[4:], "bad_checksum", "checksum 0xeeb8 does not verify"),
        (MESSAGE[:2] + b"\x00\x00" + MESSAGE[4:], "bad_checksum", "checksum 0x0000 does not verify"),
        (MESSAGE[:-1], "bad_checksum", "checksum 0xeeb7 does not verify"),  # the data is covered too
        (b"\x00" + MESSAGE[1:], "bad_checksum", "does not verify"),  # type changed, checksum not updated
    ],
    ids=["empty", "truncated-7-bytes", "bad-checksum", "checksum-zero", "data-truncated", "type-changed"],
)
def test_malformed_message_is_a_parse_error(data, reason, fragment):
    with pytest.raises(ParseError) as caught:
        IcmpMessage.parse(data)
    assert caught.value.layer == "ICMP"
    assert caught.value.reason == reason
    assert caught.value.drop_reason == f"icmp_{reason}"
    assert fragment in str(caught.value)
    assert str(caught.value).startswith("[ICMP] ")


def test_rfc1122_3_2_2_bad_checksum_is_a_parse_error():
    corrupted = bytearray(MESSAGE)
    corrupted[40] ^= 0x10  # one bit of the data
    with pytest.raises(ParseError) as caught:
        IcmpMessage.parse(bytes(corrupted))
    assert caught.value.drop_reason == "icmp_bad_checksum"


def test_unknown_type_parses_as_an_int():
    message = IcmpMessage.parse(frames.icmp_message(253, 7, b"abcd", b"experiment"))  # RFC 4727 experiment
    assert message.type == 253
    assert message.type not in set(IcmpType)
    assert message.code == 7
    assert message.rest_of_header == b"abcd"
    assert bytes(message.payload) == b"experiment"


@pytest.mark.parametrize(
    ("build", "message"),
    [
        (lambda: IcmpMessage.echo(8, 70000, 1), "identifier 70000"),
        (lambda: IcmpMessage.echo(8, 1, 0x10000), "sequence 65536"),
        (lambda: IcmpMessage.echo(8, -1, 1), "identifier -1"),
        (lambda: IcmpMessage(256, 0), "type 256"),
        (lambda: IcmpMessage(8, 256), "code 256"),
        (lambda: IcmpMessage(8, 0, b"abc"), "4 bytes, not 3"),
    ],
    ids=["identifier-70000", "sequence-65536", "identifier-negative", "type-256", "code-256", "rest-3-bytes"],
)
def test_local_misuse_is_a_value_error(build, message):
    with pytest.raises(ValueError, match=message):
        build()


# RFC 1624: an echo reply's checksum updated from the request's equals the one summed from scratch.

# Data near the ones'-complement edges: all zeros, all ones, and words that bring the sum to
# 0x0000 / 0xffff, as well as anything.
edge_data = st.one_of(
    st.binary(max_size=200),
    st.integers(0, 200).map(bytes),
    st.integers(0, 200).map(lambda n: b"\xff" * n),
    st.lists(st.sampled_from([b"\x00\x00", b"\xff\xff", b"\xf8\x00", b"\x07\xff", b"\x00\x01", b"\xff\xfe"]),
             max_size=40).map(b"".join),
)


@given(st.integers(0, 255), st.binary(min_size=4, max_size=4) | st.just(bytes(4)), edge_data)
@example(0, bytes(4), b"")  # the all-zero reply: checksum 0xffff, which eqn. 3 cannot give
@example(0, bytes(4), bytes(57))
@example(0, b"\xf8\x00\x00\x00", b"")  # a reply summing to -0: checksum 0x0000
@example(255, b"\x07\xff\x00\x00", b"\x00")
def test_rfc1624_echo_reply_checksum_equals_a_full_recomputation(code, rest_of_header, data):
    request = bytes(IcmpMessage(IcmpType.ECHO_REQUEST, code, rest_of_header, data))
    request_checksum = int.from_bytes(request[2:4], "big")
    expected = dpkt.in_cksum(bytes([IcmpType.ECHO_REPLY, 0, 0, 0]) + rest_of_header + data)
    assert echo_reply_checksum(request_checksum, IcmpType.ECHO_REQUEST << 8 | code,
                               memoryview(request)[4:]) == expected
