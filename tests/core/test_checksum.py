"""The Internet checksum (RFC 1071) and its incremental update (RFC 1624).

Oracles: the RFCs' own worked examples and ``dpkt.in_cksum`` (an independent implementation).
"""

from __future__ import annotations

import dpkt
import pytest
from hypothesis import assume, given
from hypothesis import strategies as st

from stack.checksum import internet_checksum, is_valid, ones_complement_sum, update, verifies

# RFC 1071 section 3, "Numerical Examples": these bytes sum (ones' complement) to 0xddf2.
RFC1071_EXAMPLE = bytes.fromhex("00 01 f2 03 f4 f5 f6 f7")


def test_rfc1071_3_numerical_example():
    assert ones_complement_sum(RFC1071_EXAMPLE) == 0xDDF2
    assert internet_checksum(RFC1071_EXAMPLE) == 0x220D


def test_rfc1071_3_numerical_example_in_chunks_of_every_shape():
    assert ones_complement_sum([RFC1071_EXAMPLE[:3], RFC1071_EXAMPLE[3:]]) == 0xDDF2
    assert internet_checksum([RFC1071_EXAMPLE[:1], b"", memoryview(RFC1071_EXAMPLE)[1:6], bytearray(RFC1071_EXAMPLE[6:])]) == 0x220D
    assert internet_checksum([bytes([b]) for b in RFC1071_EXAMPLE]) == 0x220D


def test_rfc1071_1_a_message_with_its_checksum_verifies():
    assert is_valid(RFC1071_EXAMPLE + bytes.fromhex("22 0d"))
    assert internet_checksum(RFC1071_EXAMPLE + bytes.fromhex("22 0d")) == 0
    assert not is_valid(RFC1071_EXAMPLE + bytes.fromhex("22 0c"))


def test_rfc1071_4_1_odd_length_is_padded_with_a_zero_byte():
    # 0x01 alone is the word 0x0100: checksum ~0x0100 = 0xfeff.
    assert internet_checksum(b"\x01") == 0xFEFF
    assert internet_checksum([b"\x00\x01", b"\x02"]) == 0xFFFF - 0x0201  # 0001 + 0200


@pytest.mark.parametrize("size", [0, 1, 2, 3, 20, 1500])
def test_all_zero_data_has_checksum_0xffff(size):
    # The ones'-complement sum of zeros is +0 (0x0000); its complement is 0xffff.
    assert ones_complement_sum(bytes(size)) == 0
    assert internet_checksum(bytes(size)) == 0xFFFF == dpkt.in_cksum(bytes(size))
    assert internet_checksum([bytes(size), b"", bytes(size % 3)]) == 0xFFFF
    assert internet_checksum([]) == 0xFFFF


@pytest.mark.parametrize(
    "data",
    [b"\xff\xff", b"\xff\xff\xff\xff", b"\x80\x00\x7f\xff", b"\xff\xfe\x00\x01"],
    ids=["ffff", "ffff-ffff", "8000-7fff", "fffe-0001"],
)
def test_a_non_zero_sum_of_0xffff_is_negative_zero_and_checksum_0(data):
    # End-around carry never turns a non-zero sum into +0: the sum is 0xffff, the checksum 0.
    assert ones_complement_sum(data) == 0xFFFF
    assert internet_checksum(data) == 0 == dpkt.in_cksum(data)
    assert internet_checksum([data[:1], data[1:]]) == 0


@given(st.binary(max_size=2048))
def test_agrees_with_dpkt(data):
    expected = dpkt.in_cksum(data)
    assert internet_checksum(data) == expected
    assert internet_checksum(bytearray(data)) == expected
    assert internet_checksum(memoryview(data)) == expected


@st.composite
def split_bytes(draw):
    """Some bytes, and the same bytes cut into chunks of any length (empty and odd ones too)."""
    data = draw(st.binary(max_size=512))
    cuts = sorted(draw(st.lists(st.integers(0, len(data)), max_size=12)))
    edges = [0, *cuts, len(data)]
    kinds = draw(st.lists(st.sampled_from([bytes, bytearray, memoryview]), min_size=len(edges), max_size=len(edges)))
    return data, [kind(data[start:end]) for kind, start, end in zip(kinds, edges, edges[1:])]


@given(split_bytes())
def test_a_list_of_chunks_sums_as_if_joined(case):
    data, chunks = case
    assert b"".join(chunks) == data
    assert internet_checksum(chunks) == dpkt.in_cksum(data)
    assert is_valid(chunks) == (dpkt.in_cksum(data) == 0)


@given(st.integers(0, 256).flatmap(lambda words: st.binary(min_size=2 * words, max_size=2 * words)), st.data())
def test_a_message_carrying_its_checksum_is_valid(body, data):
    checksum = dpkt.in_cksum(body).to_bytes(2, "big")
    at = 2 * data.draw(st.integers(0, len(body) // 2), label="checksum word")  # a field anywhere, word-aligned
    message = body[:at] + checksum + body[at:]
    assert is_valid(message)
    assert is_valid([message[:at + 1], message[at + 1:]])


# RFC 1624 section 4: a 16-bit field m = 0x5555 changes to m' = 0x3285, and the ones'-complement
# sum of all the other header words is 0xcd7a. Recomputed, the new checksum is ~(cd7a + 3285)
# = ~ffff = 0x0000. RFC 1141's eqn. 2 (HC - ~m - m') gives 0xffff, the -0 that does not verify
# against a recomputed checksum; eqn. 3, ~(~HC + ~m + m'), gives the right 0x0000.
RFC1624_OLD = bytes.fromhex("cd 7a 55 55")
RFC1624_NEW = bytes.fromhex("cd 7a 32 85")


def test_rfc1624_4_example_recomputed():
    assert internet_checksum(RFC1624_OLD) == 0xDD2F  # ~(cd7a + 5555) = ~22d0
    assert internet_checksum(RFC1624_NEW) == 0x0000


def test_rfc1624_3_eqn3_does_not_produce_eqn2_negative_zero():
    new_checksum = update(0xDD2F, 0x5555, 0x3285)
    assert new_checksum == 0x0000  # not eqn. 2's 0xffff
    assert new_checksum == dpkt.in_cksum(RFC1624_NEW)
    assert is_valid(RFC1624_NEW + new_checksum.to_bytes(2, "big"))


def test_rfc1624_echo_request_to_reply_adds_0x0800():
    # The golden echo request has ICMP checksum 0xeeb7; type 8 -> 0 gives the reply's 0xf6b7.
    assert update(0xEEB7, 0x0800, 0x0000) == 0xF6B7


def test_rfc1624_an_unchanged_word_keeps_the_checksum():
    assert update(0x0000, 0x5555, 0x5555) == 0x0000  # RFC 1624 erratum 4782's case
    assert update(0x220D, 0x00F1, 0x00F1) == 0x220D


def test_rfc1624_update_folds_the_carry_out_of_the_first_fold():
    # Words ffff 0000 sum to -0 (checksum 0x0000); 0000 -> 0001 makes them sum to 0001
    # (checksum 0xfffe). ~HC + ~m + m' = ffff + ffff + 0001 = 1ffff needs two folds.
    assert dpkt.in_cksum(bytes.fromhex("ffff 0000")) == 0x0000
    assert dpkt.in_cksum(bytes.fromhex("ffff 0001")) == 0xFFFE
    assert update(0x0000, 0x0000, 0x0001) == 0xFFFE


# Words near the ones'-complement edges (0, 1, -1, -0) make the carries and zeros happen often.
words = st.one_of(st.sampled_from([0x0000, 0x0001, 0xFFFE, 0xFFFF]), st.integers(0, 0xFFFF))


@st.composite
def one_word_changed(draw):
    """Even-length data, an even offset in it, and a new value for the 16-bit word there."""
    data = b"".join(word.to_bytes(2, "big") for word in draw(st.lists(words, min_size=1, max_size=64)))
    offset = 2 * draw(st.integers(0, len(data) // 2 - 1))
    return data, offset, draw(words)


@given(one_word_changed())
def test_rfc1624_update_agrees_with_recomputing_from_scratch(case):
    data, offset, new_word = case
    old_word = int.from_bytes(data[offset:offset + 2], "big")
    new_data = data[:offset] + new_word.to_bytes(2, "big") + data[offset + 2:]
    # Eqn. 3 cannot tell all-zero data (checksum 0xffff) from data summing to -0 (checksum 0);
    # no IPv4 header or ICMP echo request is all zeros, so that case is left out.
    assume(any(new_data))
    assert update(dpkt.in_cksum(data), old_word, new_word) == dpkt.in_cksum(new_data)


# verifies(): the one-buffer fast form of is_valid, used on every received header.


@pytest.mark.parametrize("data", [b"", b"\x00", bytes(20), bytes(1501)], ids=["empty", "one-zero", "20-zeros", "1501-zeros"])
def test_verifies_refuses_all_zeros_as_internet_checksum_does(data):
    # All zeros sum to +0: the checksum field would have to be 0xffff, so they do not verify.
    assert internet_checksum(data) == 0xFFFF
    assert not verifies(data)


@pytest.mark.parametrize("data", [b"\xff\xff", b"\xff\xff\x00", b"\x00\xff\xff", b"\x80\x00\x7f\xff\x00"],
                         ids=["ffff", "ffff-00-odd", "00ff-ff-odd", "8000-7fff-00-odd"])
def test_verifies_accepts_negative_zero_also_at_odd_lengths(data):
    assert internet_checksum(data) == 0 == dpkt.in_cksum(data)
    assert verifies(data) and verifies(bytearray(data)) and verifies(memoryview(data))


@given(st.binary(max_size=1600))
def test_verifies_agrees_with_internet_checksum_and_dpkt(data):
    expected = internet_checksum(data) == 0
    assert expected == (dpkt.in_cksum(data) == 0)
    assert verifies(data) == expected
    assert verifies(memoryview(data)) == expected


@given(st.binary(max_size=1600), st.data())
def test_verifies_a_message_carrying_its_checksum(body, data):
    # The checksum word anywhere word-aligned, also before an odd body's padded last byte.
    at = 2 * data.draw(st.integers(0, len(body) // 2), label="checksum word")
    message = body[:at] + dpkt.in_cksum(body).to_bytes(2, "big") + body[at:]
    assert verifies(message)
    assert verifies(memoryview(message)[:len(message)])
