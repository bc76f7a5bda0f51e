"""The IPv6 echo fast path (stack/l3/fast_path6.py) answers exactly as the general path does:
the same frames out and the same counters, on generated packets near a plain echo request (each
field the prediction looks at, mutated), over TAP and TUN; and it does answer the plain one."""

from __future__ import annotations

from hypothesis import example, given, settings
from hypothesis import strategies as st

from stack import TapHost, TunHost
from stack.buffers import join
from stack.l3.ipv6 import Ipv6Packet
from stack.testing import frames as f

KERNEL_MAC, HOST_MAC = bytes.fromhex("020000000001"), bytes.fromhex("020000000002")
PLAIN = f.ipv6_packet(f.icmpv6_echo(128, 0x1234, 1, bytes(range(56))))


@st.composite
def echo_like(draw) -> bytes:
    packet = bytearray(f.ipv6_packet(f.icmpv6_echo(
        128, draw(st.integers(0, 0xFFFF)), draw(st.integers(0, 0xFFFF)), draw(st.binary(max_size=80)),
        src=draw(st.sampled_from(["2001:db8::1", "fe80::1", "2001:db8::2"])),
        dst=draw(st.sampled_from(["2001:db8::2", "2001:db8::3", "ff02::1"]))),
        src=draw(st.sampled_from(["2001:db8::1", "fe80::1", "ff02::1", "::", "2001:db8::2"])),
        dst=draw(st.sampled_from(["2001:db8::2", "2001:db8::3", "ff02::1"])),
        hop_limit=draw(st.integers(0, 255))))
    mutation = draw(st.sampled_from(["none", "flip", "truncate", "append"]))
    if mutation == "flip":  # where the prediction makes its decisions
        packet[draw(st.integers(0, min(len(packet), 48) - 1))] ^= 1 << draw(st.integers(0, 7))
    elif mutation == "truncate":
        del packet[draw(st.integers(0, len(packet) - 1)):]
    elif mutation == "append":
        packet += draw(st.binary(min_size=1, max_size=20))
    return bytes(packet)


def tap(predict: bool) -> TapHost:
    host = TapHost(["192.0.2.2/24", "2001:db8::2/64"], mac=HOST_MAC, dad_transmits=0)
    host.ip6.predict = predict
    host.poll(0.0)
    host.stats.counters.clear()
    return host


def tun(predict: bool) -> TunHost:
    host = TunHost(["2001:db8::2"])
    host.ip6.predict = predict
    return host


def frame(packet: bytes) -> bytes:
    return f.ethernet_frame(HOST_MAC, KERNEL_MAC, 0x86DD, packet)


@settings(max_examples=500)
@given(echo_like(), st.booleans())
@example(PLAIN, True)
@example(PLAIN, False)
@example(f.ipv6_packet(f.icmpv6_echo(128, 0, 0, b"")), True)
@example(f.ipv6_packet(f.icmpv6_echo(128, 0, 0, b"\x00")), False)  # odd length
def test_prediction_answers_exactly_as_the_general_path(packet, over_tap):
    make, wrap = (tap, frame) if over_tap else (tun, lambda p: p)
    predicted, general = make(True), make(False)
    for now in (1.0, 2.0):  # the second time, over TAP, the kernel's MAC is being resolved/known
        out_predicted = [join(x) for x in predicted.receive(wrap(packet), now)]
        out_general = [join(x) for x in general.receive(wrap(packet), now)]
        assert out_predicted == out_general
        assert predicted.stats.as_dict() == general.stats.as_dict()


def test_the_plain_echo_is_predicted(monkeypatch):
    parsed = []
    real = Ipv6Packet.parse.__func__
    monkeypatch.setattr(Ipv6Packet, "parse", classmethod(lambda cls, data: parsed.append(1) or real(cls, data)))
    for predict in (True, False):
        host = tun(predict)
        assert len(host.receive(PLAIN, 1.0)) == 1
    assert parsed == [1]  # only the general path parsed it
