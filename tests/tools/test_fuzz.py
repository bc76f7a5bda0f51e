"""``tapstack fuzz`` in process: a fragile target behind the in-memory wire, stopped by one kind
of frame, is found out, and the frame shortened to the least that still stops it; a sturdy
target answers throughout; a target that never comes back gets its whole batch reported. The
same over IPv6 (``--ipv6``), on a TAP and a TUN link, and the CLI's refusals."""

from __future__ import annotations

import math
from ipaddress import IPv6Network, IPv4Address, IPv4Interface, IPv6Address, IPv6Interface

import pytest
from hypothesis import strategies as st

from stack import TapHost, TunHost
from stack.tools.fuzz import Fuzzer, fuzz_frames, fuzz_frames6
from stack.l2.arp import ArpOp, ArpPacket
from stack.l2.ethernet import EthernetFrame, EtherType, MacAddress
from stack.l3.icmp import IcmpMessage, IcmpType
from stack.l3.ipv4 import Ipv4Packet
from stack.l3.ipv6 import Ipv6Packet
from stack.runtime.loop import Loop
from stack.tap.pair import device_pair

OURS = IPv4Interface("192.0.2.2/24")
TARGET = IPv4Address("192.0.2.1")
KILLER_PROTOCOL = 0x99
KILLER_MINIMUM = 40  # the target breaks on frames at least this long carrying that protocol


class Fragile:
    """A TapHost that stops answering for ``down_s`` seconds after a frame of at least
    KILLER_MINIMUM bytes whose IPv4 protocol field is KILLER_PROTOCOL."""

    def __init__(self, down_s: float) -> None:
        self.host = TapHost([f"{TARGET}/24"])
        self.stats = self.host.stats
        self.down_s = down_s
        self.down_until = -math.inf
        self.kills = 0

    def receive(self, frame, now: float):
        if now < self.down_until:
            return []
        if len(frame) >= KILLER_MINIMUM and frame[12:14] == b"\x08\x00" and frame[23] == KILLER_PROTOCOL:
            self.down_until = now + self.down_s
            self.kills += 1
            return []
        return self.host.receive(frame, now)

    def poll(self, now: float):
        return self.host.poll(now)

    def next_deadline(self, now: float):
        return self.host.next_deadline(now)


def frame_to_target(protocol: int, payload: bytes) -> bytes:
    packet = Ipv4Packet(OURS.ip, TARGET, protocol, payload)
    return bytes(EthernetFrame(TapHost([f"{TARGET}/24"]).mac, TapHost([OURS]).mac, EtherType.IPV4, bytes(packet)))


HARMLESS = frame_to_target(1, bytes(IcmpMessage.echo(IcmpType.ECHO_REQUEST, 1, 1, b"x" * 30)))
KILLER = frame_to_target(KILLER_PROTOCOL, bytes(40))  # 14 + 20 + 40 = 74 bytes


def fuzzer(down_s: float, max_time: float = 30.0) -> tuple[Fuzzer, Fragile]:
    ours, theirs = device_pair()
    loop = Loop()
    target = Fragile(down_s)
    loop.attach(theirs, target)
    fuzz = Fuzzer(loop, ours, TapHost([OURS]), TARGET, max_time, tries=2, interval=0.02, timeout=0.1)
    assert fuzz.alive()
    return fuzz, target


def test_a_sturdy_target_answers_after_every_batch():
    fuzz, target = fuzzer(down_s=1.0)
    frames = fuzz_frames(OURS, fuzz.host.mac, TARGET, fuzz.target_mac())
    result = fuzz.run(frames, examples=120, batch_size=30, seed=1)
    assert not result.stopped and result.sent == 120 and result.batches == 4
    assert "answered ping after every batch" in result.describe()
    assert target.host.stats["rx_frames"] >= 120


def test_the_frame_that_stops_the_target_is_found_and_shortened():
    fuzz, target = fuzzer(down_s=0.15)
    result = fuzz.run(st.sampled_from([HARMLESS, HARMLESS, HARMLESS, KILLER]), examples=40,
                      batch_size=10, seed=1, recovery=2.0)
    assert result.stopped and result.recovered
    assert result.culprit == KILLER
    assert result.smallest == KILLER[:KILLER_MINIMUM]
    assert f"smallest frame after which it stops ({KILLER_MINIMUM} bytes)" in result.describe()


def test_a_target_that_never_comes_back_gets_its_batch_reported():
    fuzz, target = fuzzer(down_s=math.inf)
    result = fuzz.run(st.sampled_from([HARMLESS, KILLER]), examples=20, batch_size=5, seed=1,
                      recovery=0.3)
    assert result.stopped and result.recovered is False and result.culprit is None
    assert KILLER in result.batch
    assert KILLER.hex() in result.describe() and "did not answer again" in result.describe()


def test_fuzzing_stops_at_the_time_limit():
    fuzz, target = fuzzer(down_s=1.0, max_time=0.0)
    result = fuzz.run(st.just(HARMLESS), examples=100, batch_size=10, seed=1)
    assert result.timed_out and result.sent == 0


@pytest.mark.parametrize("args, message", [
    (["--target", "198.51.100.1"], "must be another host on 192.0.2.0/24"),
    (["--target", "192.0.2.2"], "must be another host"),
])
def test_fuzz_only_targets_another_host_on_the_link(args, message):
    from tests.cli.test_cli import assert_usage_error, tapstack

    assert_usage_error(tapstack("fuzz", "--tap", "tap0", "--ip", "192.0.2.2/24", *args), message)


def test_a_frame_that_teaches_the_target_a_wrong_mac_for_us_is_not_a_stop():
    """A fuzzed ARP frame may claim our address from another MAC; the target then answers the
    wrong MAC. We announce ourselves before each ping check, so that is not taken for a stop."""
    fuzz, target = fuzzer(down_s=1.0)
    ours = TapHost([OURS])
    poison = ArpPacket(ArpOp.REQUEST, MacAddress("02:00:00:00:00:99"), OURS.ip, MacAddress(bytes(6)), TARGET)
    frame = bytes(EthernetFrame(MacAddress(b"\xff" * 6), ours.mac, EtherType.ARP, bytes(poison)))
    result = fuzz.run(st.just(frame), examples=5, batch_size=5, seed=1)
    assert not result.stopped and result.sent >= 1
    assert target.host.link.cache.lookup(OURS.ip, 100.0) == ours.mac  # set right again


# ---------------------------------------------------------------------- IPv6 (--ipv6)

OURS6 = IPv6Interface("2001:db8::2/64")
TARGET6 = IPv6Address("2001:db8::1")
KILLER_NEXT_HEADER = 253  # RFC 3692: for experiments; the fragile target breaks on it


class Fragile6:
    """A tapstack IPv6 host (TAP or TUN) that stops answering for ``down_s`` seconds after a
    packet of at least ``minimum`` bytes whose fixed header's Next Header is KILLER_NEXT_HEADER."""

    def __init__(self, medium: str, down_s: float, minimum: int) -> None:
        if medium == "ip":
            self.host = TunHost([f"{TARGET6}/64"], peer=OURS6.ip)
        else:
            self.host = TapHost([f"{TARGET6}/64"], dad_transmits=0)
        self.start = 0 if medium == "ip" else 14
        self.stats = self.host.stats
        self.down_s, self.minimum = down_s, minimum
        self.down_until = -math.inf

    def receive(self, frame, now: float):
        frame = bytes(frame)
        if now < self.down_until:
            return []
        if len(frame) >= self.minimum and len(frame) > self.start + 6 and frame[self.start] >> 4 == 6 \
                and frame[self.start + 6] == KILLER_NEXT_HEADER:
            self.down_until = now + self.down_s
            return []
        return self.host.receive(frame, now)

    def poll(self, now: float):
        return self.host.poll(now)

    def next_deadline(self, now: float):
        return self.host.next_deadline(now)


def fuzzer6(medium: str, down_s: float = 1.0, minimum: int = 10_000) -> tuple[Fuzzer, Fragile6]:
    ours, theirs = device_pair(medium=medium)
    loop = Loop()
    target = Fragile6(medium, down_s, minimum)
    loop.attach(theirs, target)
    host = TunHost([OURS6], peer=TARGET6) if medium == "ip" else TapHost([OURS6])  # with DAD
    fuzz = Fuzzer(loop, ours, host, TARGET6, 30.0, tries=2, interval=0.02, timeout=0.1)
    assert fuzz.alive()
    return fuzz, target


@pytest.mark.parametrize("medium", ["ethernet", "ip"], ids=["tap", "tun"])
def test_ipv6_a_sturdy_target_answers_after_every_batch(medium):
    fuzz, target = fuzzer6(medium)
    if medium == "ethernet":  # Neighbor Discovery resolved the target (RFC 4861 7.2) for the first ping
        assert fuzz.target_mac() == target.host.mac
    else:
        assert fuzz.target_mac() is None
    frames = fuzz_frames6(OURS6, getattr(fuzz.host, "mac", None), TARGET6, fuzz.target_mac(), medium)
    result = fuzz.run(frames, examples=150, batch_size=50, seed=3)
    assert not result.stopped and result.sent == 150 and result.batches == 3, result.describe()
    stats = target.host.stats
    assert stats["rx_frames"] >= 150
    assert stats["rx_ipv6"] >= 100  # most of them parse as IPv6 (some are broken on purpose)
    assert stats["dropped"] > 0  # and the broken ones are dropped, each under a reason


@pytest.mark.parametrize("medium", ["ethernet", "ip"], ids=["tap", "tun"])
def test_ipv6_frames_are_only_to_the_target_or_its_link_scope_groups_and_from_us(medium):
    from hypothesis import given, settings

    from stack.l3.ipv6 import solicited_node_multicast

    allowed = {TARGET6, IPv6Address("ff02::1"), solicited_node_multicast(TARGET6)}
    link_scope = IPv6Network("ff02::/16")  # RFC 4291 2.7: link-local scope, never forwarded
    our_mac, target_mac = MacAddress("02:00:00:00:00:02"), MacAddress("02:00:00:00:00:01")
    start = 14 if medium == "ethernet" else 0
    seen = set()

    @settings(max_examples=200, database=None, derandomize=True)
    @given(fuzz_frames6(OURS6, our_mac, TARGET6, target_mac, medium))
    def check(frame):
        if medium == "ethernet":
            assert frame[6:12] == bytes(our_mac) and frame[12:14] == b"\x86\xdd"
        if len(frame) >= start + 40 and frame[start] >> 4 == 6:
            source = IPv6Address(frame[start + 8:start + 24])
            # Ours, or (RA, RS, Redirect, MLD) link-local or unspecified: none leaves the link.
            assert source == OURS6.ip or source.is_link_local or source.is_unspecified
            destination = IPv6Address(frame[start + 24:start + 40])
            assert destination in allowed or destination in link_scope
            seen.add(destination)

    check()
    assert allowed <= seen


def test_ipv6_the_packet_that_stops_the_target_is_found_and_shortened():
    harmless = bytes(Ipv6Packet(OURS6.ip, TARGET6, 59, b"x" * 30))  # No Next Header
    killer = bytes(Ipv6Packet(OURS6.ip, TARGET6, KILLER_NEXT_HEADER, bytes(60)))  # 100 bytes
    fuzz, target = fuzzer6("ip", down_s=0.15, minimum=48)
    result = fuzz.run(st.sampled_from([harmless, harmless, harmless, killer]), examples=40, batch_size=10,
                      seed=1, recovery=2.0)
    assert result.stopped and result.recovered and result.culprit == killer
    assert result.smallest == killer[:48]
    described = result.describe()
    assert "smallest frame after which it stops (48 bytes)" in described
    # Summarised as a bare packet (cut inside its payload), and as generated.
    assert "malformed: [IPv6] payload length 60 > buffer 8" in described
    assert f"as generated (100 bytes): {killer.hex()}" in described


@pytest.mark.parametrize("args, message", [
    (["--ipv6", "--ip", "192.0.2.2/24", "--target", "192.0.2.1"], "--ip 192.0.2.2/24 is an IPv4 address, but --ipv6"),
    (["--ipv6", "--ip", "2001:db8::2/64", "--target", "192.0.2.1"], "--target 192.0.2.1 is an IPv4 address"),
    (["--ip", "2001:db8::2/64", "--target", "2001:db8::1"], "add --ipv6 to fuzz over IPv6"),
    (["--ipv6", "--ip", "2001:db8::2/64", "--target", "2001:db8:1::1"], "must be another host on 2001:db8::/64"),
    (["--ipv6", "--ip", "2001:db8::2/64", "--target", "2001:db8::2"], "must be another host"),
    (["--ipv6", "--ip", "2001:db8::2/64", "--target", "2001:db8::"], "must be another host"),
    (["--ipv6", "--ip", "2001:db8::2/64", "--target", "2001:db8::1", "--host-ip", "192.0.2.1/24"],
     "--host-ip 192.0.2.1/24 is an IPv4 address"),
    (["--ipv6", "--ip", "2001:db8::2/64", "--target", "nonsense"], "'nonsense' is not an IPv4 or IPv6 address"),
], ids=["ip-v4", "target-v4", "no-ipv6-flag", "off-link", "ours", "subnet-anycast", "host-ip-v4", "not-an-address"])
def test_fuzz_ipv6_bad_addresses_are_one_line_exit_2(args, message):
    from tests.cli.test_cli import assert_usage_error, tapstack

    assert_usage_error(tapstack("fuzz", "--tap", "tap0", *args), message)


@pytest.mark.parametrize("args, message", [
    (["--ip", "192.0.2.2", "--target", "192.0.2.2"], "the other end of the TUN link"),
    (["--ipv6", "--ip", "2001:db8::2", "--target", "ff02::1"], "the other end of the TUN link"),
    (["--ip", "192.0.2.2", "--target", "192.0.2.1", "--mac", "02:00:00:00:00:05"], "--mac is for a TAP"),
], ids=["ours", "multicast", "mac"])
def test_fuzz_over_tun_bad_input_is_one_line_exit_2(args, message):
    from tests.cli.test_cli import assert_usage_error, tapstack

    assert_usage_error(tapstack("fuzz", "--tun", "tun0", *args), message)


def test_ipv4_frames_over_tun_are_bare_packets_from_us_to_the_target_or_its_broadcast():
    from hypothesis import given, settings

    from stack.checksum import internet_checksum

    allowed = {TARGET, OURS.network.broadcast_address, IPv4Address("255.255.255.255"), IPv4Address("224.0.0.1")}
    seen = set()

    @settings(max_examples=200, database=None, derandomize=True)
    @given(fuzz_frames(OURS, None, TARGET, None, medium="ip"))
    def check(packet):
        assert packet  # (an empty write to a TUN device is refused: never generated)
        # (A broken packet may have a bit flipped in an address: its header checksum then fails.)
        if len(packet) >= 20 and packet[0] == 0x45 and internet_checksum(packet[:20]) == 0:
            assert IPv4Address(packet[12:16]) == OURS.ip
            assert IPv4Address(packet[16:20]) in allowed
            seen.add(IPv4Address(packet[16:20]))

    check()
    assert TARGET in seen and len(seen) >= 2
