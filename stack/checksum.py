"""The Internet checksum (RFC 1071), over one buffer or a list of them.

Read first: RFC 1071 (computing), RFC 1624 (incremental update).

The ones'-complement sum of 16-bit words equals the message read as one big-endian integer,
modulo 0xFFFF, because 2**16 == 1 (mod 0xFFFF). ``int.from_bytes`` does that reading in C,
which is several times faster than summing words in Python.
"""

from __future__ import annotations

from stack.buffers import Buffer, Payload, chunks


def ones_complement_sum(data: Payload) -> int:
    """The 16-bit ones'-complement sum of the data (odd total length padded with a zero byte).

    A list of buffers is summed as if joined: appending ``n`` bytes multiplies what came
    before by 256**n, which is 1 (mod 0xFFFF) for even ``n`` and 256 for odd ``n``.
    """
    if isinstance(data, (bytes, bytearray, memoryview)):  # the common case, one buffer
        size = len(data)
        total = int.from_bytes(data, "big") << (8 * (size & 1))  # RFC 1071 4.1: pad odd
        if total == 0:
            return 0
        total %= 0xFFFF
        return total or 0xFFFF  # a non-zero multiple of 0xFFFF is "negative zero", 0xFFFF
    total = 0
    size = 0
    nonzero = False
    for chunk in chunks(data):
        value = int.from_bytes(chunk, "big")
        if len(chunk) & 1:
            total *= 256
        total += value
        size += len(chunk)
        nonzero = nonzero or value != 0
    if size & 1:
        total *= 256  # RFC 1071 4.1: an odd count is padded with one zero byte
    total %= 0xFFFF
    # A non-zero sum that is a multiple of 0xFFFF is ones'-complement "negative zero", 0xFFFF.
    if total == 0 and nonzero:
        return 0xFFFF
    return total


def internet_checksum(data: Payload) -> int:
    """The checksum field value: the ones' complement of the ones'-complement sum.

    Over a message that already carries a correct checksum, this returns 0.
    """
    return 0xFFFF - ones_complement_sum(data)


def is_valid(data: Buffer | list[Buffer]) -> bool:
    """True when a message including its checksum field sums to 0xFFFF (RFC 1071 1.)."""
    return internet_checksum(data) == 0


def verifies(data: Buffer) -> bool:
    """True when one buffer, checksum field included, verifies: the fast form of ``is_valid``.

    RFC 1071 1.: a message carrying its checksum sums to 0xFFFF ("negative zero"): read as one
    integer it is then a non-zero multiple of 0xFFFF. An all-zero message sums to +0 and fails,
    as ``internet_checksum`` says (0xFFFF, not 0). An odd length needs no padding here: the
    zero byte would multiply the integer by 256, which shares no factor with 0xFFFF.
    """
    value = int.from_bytes(data, "big")
    return value != 0 and value % 0xFFFF == 0


def update(checksum: int, old_word: int, new_word: int) -> int:
    """RFC 1624 eqn. 3: the new checksum after one 16-bit word changes, ``~(~HC + ~m + m')``."""
    total = (~checksum & 0xFFFF) + (~old_word & 0xFFFF) + new_word
    total = (total & 0xFFFF) + (total >> 16)
    total = (total & 0xFFFF) + (total >> 16)
    return ~total & 0xFFFF
