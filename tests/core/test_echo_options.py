"""RFC 1122 3.2.2.6: Record Route and Timestamp come back in the echo reply, updated with us;
other options are accepted and not echoed; a malformed option drops the datagram."""

from __future__ import annotations

import dpkt
import pytest

from stack import TunHost
from stack.buffers import join
from stack.testing import frames

HOST_IP, KERNEL_IP = frames.HOST_IP, frames.KERNEL_IP
US = frames.ip(HOST_IP)
EOL = b"\x00"


def request(options: bytes, data: bytes = b"options") -> bytes:
    return frames.ipv4_datagram(KERNEL_IP, HOST_IP, 1, frames.icmp_echo(8, 5, 1, data), options=options)


def reply(options: bytes, data: bytes = b"options") -> bytes:
    return frames.ipv4_datagram(HOST_IP, KERNEL_IP, 1, frames.icmp_echo(0, 5, 1, data),
                                identification=1, options=options)


def answer(options: bytes, now: float = 1.5) -> list[bytes]:
    tun = TunHost([HOST_IP], peer=KERNEL_IP)
    return [join(p) for p in tun.receive(request(options), now)]


def stamp(now: float) -> bytes:
    """RFC 791: not ms since midnight UT, so the high-order bit is set."""
    return (int(now * 1000) | 0x80000000).to_bytes(4, "big")


def test_record_route_gets_our_address_and_comes_back():
    sent = bytes([7, 11, 4]) + bytes(8) + EOL
    assert answer(sent) == [reply(bytes([7, 11, 8]) + US + bytes(4) + EOL)]


def test_a_full_record_route_comes_back_unchanged():
    full = bytes([7, 7, 8]) + frames.ip("198.51.100.1") + EOL
    assert answer(full) == [reply(full)]


def test_timestamp_only():
    sent = bytes([68, 12, 5, 0x00]) + bytes(8)
    assert answer(sent, now=1.5) == [reply(bytes([68, 12, 9, 0x00]) + stamp(1.5) + bytes(4))]


def test_timestamp_with_addresses():
    sent = bytes([68, 12, 5, 0x01]) + bytes(8)
    assert answer(sent, now=2.0) == [reply(bytes([68, 12, 13, 0x01]) + US + stamp(2.0))]


def test_timestamp_prespecified_for_another_host_is_left_alone():
    sent = bytes([68, 12, 5, 0x03]) + frames.ip("198.51.100.1") + bytes(4)
    assert answer(sent) == [reply(sent)]


def test_a_full_timestamp_counts_the_overflow():
    sent = bytes([68, 4, 5, 0x20])
    assert answer(sent) == [reply(bytes([68, 4, 5, 0x30]))]


def test_record_route_and_timestamp_together_other_options_dropped():
    security = bytes([130, 11]) + bytes(9)  # RFC 1108, not echoed
    sent = security + bytes([7, 7, 4]) + bytes(4) + bytes([1, 1])  # NOP NOP pad to 24
    assert answer(sent) == [reply(bytes([7, 7, 8]) + US + EOL)]


def test_unknown_options_alone_are_not_echoed():
    assert answer(bytes([130, 4, 0, 0])) == [reply(b"")]


@pytest.mark.parametrize("options", [bytes([7, 40, 4, 0]), bytes([68, 1, 0, 0]), bytes([1, 1, 1, 7])],
                         ids=["length-past-the-header", "length-1", "no-room-for-length"])
def test_a_malformed_option_drops_the_datagram(options):
    tun = TunHost([HOST_IP], peer=KERNEL_IP)
    datagram = bytearray(request(b"\x01" * 4))
    datagram[20:24] = options
    datagram[10:12] = b"\x00\x00"
    datagram[10:12] = dpkt.in_cksum(bytes(datagram[:24])).to_bytes(2, "big")
    assert tun.receive(bytes(datagram), 1.0) == []
    assert tun.stats.drops == {"ipv4_bad_options": 1}


def test_a_large_reply_carries_the_options_in_its_first_fragment_only():
    tun = TunHost([HOST_IP], peer=KERNEL_IP)
    data = bytes(3000)
    sent = bytes([7, 7, 4]) + bytes(4) + EOL
    out = [dpkt.ip.IP(join(p)) for p in tun.receive(request(sent, data), 1.0)]
    assert [p.opts for p in out] == [bytes([7, 7, 8]) + US + EOL, b"", b""]
    assert all(len(bytes(p)) <= 1500 for p in out)
    assert out[1].offset * 8 == len(bytes(out[0].data)) and out[0].mf and not out[-1].mf


def lsrr(pointer: int, kind: int = 131) -> bytes:
    """A source route through 198.51.100.7 (RFC 791 3.1: type, length 7, pointer, one address),
    padded to the 4-byte boundary; ``pointer`` 4 still points at it, 8 is past it (finished)."""
    return bytes([kind, 7, pointer]) + bytes([198, 51, 100, 7]) + EOL


@pytest.mark.parametrize("kind", [131, 137], ids=["loose", "strict"])
def test_rfc1122_3_3_5_an_unfinished_source_route_is_dropped_as_linux_does(kind):
    tun = TunHost([HOST_IP], peer=KERNEL_IP)
    assert tun.receive(request(lsrr(4, kind)), 1.0) == []
    assert tun.verdict.drop_reason == "ipv4_source_route_unfinished"


@pytest.mark.parametrize("kind", [131, 137], ids=["loose", "strict"])
def test_rfc1122_3_2_1_8_a_finished_source_route_reached_us_and_is_answered(kind):
    tun = TunHost([HOST_IP], peer=KERNEL_IP)
    assert len(tun.receive(request(lsrr(8, kind)), 1.0)) == 1
    assert tun.verdict.drop_reason is None
