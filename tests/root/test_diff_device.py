"""``tapstack diff`` and ``tapstack fuzz`` against the real Linux kernel, each in a private
network namespace (diff makes its own with unshare; fuzz runs in one the test creates)."""

from __future__ import annotations

import re
import subprocess
import sys

import pytest

from tests.root.test_cli_device import REPO, stack_env, tapstack

pytestmark = pytest.mark.device

#: Examples (frames, and one in four a fragment train) compared in CI per seed; ``tapstack diff
#: --examples N`` runs as many as a user asks. An incomplete train costs a second (the reassembly
#: timeout both hosts run out), so CI draws fewer than before trains came (300).
CI_EXAMPLES = 200
#: What a run prints last when it is clean.
SUMMARY = re.compile(r"(\d+) examples \((\d+) of them fragment trains\): (\d+) agree with Linux, "
                     r"(\d+) differ deliberately .*, 0 disagree")
#: Several seeds, so that CI compares different frames and not one sequence only.
CI_SEEDS = (1, 2, 3)


def _diff(device: list[str], seed: int, examples: int = CI_EXAMPLES) -> subprocess.Popen:
    return subprocess.Popen(
        ["unshare", "--net", "--mount", sys.executable, "-m", "stack", "diff", *device, "--examples",
         str(examples), "--seed", str(seed), "-q"],
        cwd=REPO, env=stack_env(), stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
        stdin=subprocess.DEVNULL)


@pytest.mark.parametrize("device", [[], ["--tun"]], ids=["tap", "tun"])
def test_tapstack_answers_every_generated_frame_as_linux_does(device: list[str]) -> None:
    # The seeds run side by side, each in a namespace of its own: they mostly wait for the
    # kernel's line to go quiet.
    runs = {seed: _diff(device, seed) for seed in CI_SEEDS}
    outputs = {seed: run.communicate(timeout=300)[0] for seed, run in runs.items()}
    for seed, run in runs.items():
        output = outputs[seed]
        assert run.returncode == 0, f"--seed {seed}:\n{output}"
        summary = SUMMARY.search(output)
        assert summary, f"--seed {seed}:\n{output}"
        compared, trains, agreed = int(summary.group(1)), int(summary.group(2)), int(summary.group(3))
        # Duplicates count once; over TUN, ARP frames are not drawn.
        assert compared > CI_EXAMPLES * 0.5 and agreed > compared * 0.75, f"--seed {seed}:\n{output}"
        # One draw in TRAIN_SHARE is a train; of the distinct examples compared, more (a repeated
        # single frame counts once, a train rarely repeats): seed 3 over TUN, 68 of 160.
        assert compared * 0.05 < trains < compared * 0.5, f"--seed {seed}:\n{output}"


#: IPv6 examples compared in CI per seed (``tapstack diff --ipv6``; one in four a fragment train).
CI_EXAMPLES6 = 150


@pytest.mark.parametrize("device", [["--ipv6"], ["--ipv6", "--tun"]], ids=["tap", "tun"])
def test_tapstack_answers_every_generated_ipv6_packet_as_linux_does(device: list[str]) -> None:
    runs = {seed: _diff(device, seed, CI_EXAMPLES6) for seed in CI_SEEDS}
    outputs = {seed: run.communicate(timeout=300)[0] for seed, run in runs.items()}
    for seed, run in runs.items():
        output = outputs[seed]
        assert run.returncode == 0, f"--seed {seed}:\n{output}"
        summary = SUMMARY.search(output)
        assert summary, f"--seed {seed}:\n{output}"
        compared, agreed = int(summary.group(1)), int(summary.group(3))
        # Over TUN a tenth go to an address with no route (no-route-over-tun).
        assert compared > CI_EXAMPLES6 * 0.5 and agreed > compared * 0.75, f"--seed {seed}:\n{output}"


#: What Linux 6.18 does with the IPv6 packets the allow-list says it treats unlike tapstack,
#: checked on the running kernel in a namespace of its own (each entry's claim, one packet each).
IPV6_PROBE = """
import json
from stack.testing import frames as f
from stack.tools import diff

kernel = diff.KernelHost("ethernet", 6)
mac = bytes(diff.HOST_MAC)
peer = f.mac("02:00:00:00:00:01")
def ask(packet, destination=mac):
    answers = kernel.answer(f.ethernet_frame(destination, peer, 0x86DD, packet))
    return [[answer[14 + 40], answer[14 + 41], (answer[14] & 0x0F) << 4 | answer[15] >> 4] for answer in answers]
def packet(payload, next_header=58, dst="2001:db8::2", **kw):
    return f.ipv6_packet(payload, next_header, src="2001:db8::1", dst=dst, **kw)
echo = f.icmpv6_echo(128, 1, 1, b"abc", src="2001:db8::1", dst="2001:db8::2")
echo_all = f.icmpv6_echo(128, 1, 1, b"abc", src="2001:db8::1", dst="ff02::1")
ns = f.icmpv6_message(135, 0, bytes(4) + bytes.fromhex("20010db8000000000000000000000002"), src="2001:db8::1",
                      dst="2001:db8::2")
print(json.dumps({
    "echo": ask(packet(echo, traffic_class=0xB9)),
    "unicast ns": [list(a) for a in kernel.answer(f.ethernet_frame(mac, peer, 0x86DD, packet(ns, hop_limit=255)))],
    "srv6": ask(packet(f.routing_header(58, 4, 0) + echo, 43)),
    "rpl": ask(packet(f.routing_header(58, 3, 1) + echo, 43)),
    "unknown routing": ask(packet(f.routing_header(58, 253, 1) + echo, 43)),
    "routing to all-nodes": ask(packet(f.routing_header(58, 0, 0) + echo_all, 43, dst="ff02::1"),
                                bytes.fromhex("333300000001")),
    "long padding": ask(packet(f.options_header(58, b"\\x01\\x06" + bytes(6)) + echo, 60)),
    "hop-by-hop to another": ask(packet(f.options_header(59, b"\\x8b\\x00"), 0, dst="2001:db8::4d")),
    "jumbogram form": ask(packet(b"", 0) + f.options_header(58, b"") + echo),
}))
kernel.close()
"""


def test_linux_treats_the_ipv6_packets_of_the_allow_list_as_it_says() -> None:
    import json

    result = subprocess.run(["unshare", "--net", "--mount", sys.executable, "-c", IPV6_PROBE], cwd=REPO,
                            env=stack_env(), capture_output=True, text=True, timeout=60,
                            stdin=subprocess.DEVNULL)
    assert result.returncode == 0, result.stderr
    seen = json.loads(result.stdout)
    # [ICMPv6 type, code, traffic class] of each answer. The echo reply keeps the Traffic Class.
    assert seen["echo"] == [[129, 0, 0xB9]]
    # nd-unicast-solicitation: S set, O clear, no target link-layer option (24 bytes of NA).
    [advertisement] = seen["unicast ns"]
    assert advertisement[14 + 40] == 136 and advertisement[14 + 44] & 0x60 == 0x40
    assert len(advertisement) == 14 + 40 + 24
    # routing-types-linux-has: SRv6 and RPL dropped silently, whatever Segments Left; an unknown
    # type with Segments Left gets Parameter Problem code 0 (as tapstack).
    assert seen["srv6"] == seen["rpl"] == []
    assert seen["unknown routing"] == [[4, 0, 0]]
    # routing-header-not-to-host, padding-linux-refuses: silent.
    assert seen["routing to all-nodes"] == [] and seen["long padding"] == []
    # hop-by-hop-not-ours: the option reported although the packet is not Linux's.
    assert seen["hop-by-hop to another"] == [[4, 2, 0]]
    # zero-length-hop-by-hop: the echo behind it answered.
    assert seen["jumbogram form"] == [[129, 0, 0]]


#: What Linux does with an ARP packet whose sender MAC is not the peer's, or whose sender address
#: is its own, checked in a namespace of its own (``stack.tools.diff`` relies on the first; the others
#: are deliberate differences).
ARP_PROBE = """
import json
from ipaddress import IPv4Address
from pyroute2 import IPRoute
from stack.tools import diff
from stack.l2.arp import ArpOp, ArpPacket
from stack.l2.ethernet import BROADCAST, EthernetFrame, EtherType, MacAddress

kernel = diff.KernelHost()
def ask(sender_mac, sender_ip, source_mac, operation=ArpOp.REQUEST):
    arp = ArpPacket(operation, MacAddress(sender_mac), IPv4Address(sender_ip), MacAddress(bytes(6)),
                    diff.HOST.ip)
    answers = kernel.answer(bytes(EthernetFrame(BROADCAST, MacAddress(source_mac), EtherType.ARP, bytes(arp))))
    with IPRoute() as ipr:
        entry = next((n for n in ipr.get_neighbours(dst=sender_ip)), None)
    return {"answers": [str(MacAddress(answer[:6])) for answer in answers],
            "entry": entry and [entry.get_attr("NDA_LLADDR"), entry["state"]]}
print(json.dumps({"permanent": ask("02:00:01:00:00:03", "192.0.2.3", "02:00:00:00:00:03"),
                  "group": ask("03:00:00:00:00:05", "192.0.2.5", "02:00:00:00:00:05"),
                  "claim": ask("02:00:00:00:00:03", str(diff.HOST.ip), "02:00:00:00:00:03", ArpOp.REPLY),
                  **{f"sender {ip}": ask("02:00:00:00:00:06", ip, "02:00:00:00:00:06")
                     for ip in ("224.0.2.1", "255.255.255.255", "127.0.0.1", "192.0.2.255")}}))
kernel.close()
"""


def test_linux_keeps_a_permanent_entry_learns_a_group_sender_mac_and_ignores_a_claim_and_bad_senders() -> None:
    import json

    result = subprocess.run(["unshare", "--net", "--mount", sys.executable, "-c", ARP_PROBE], cwd=REPO,
                            env=stack_env(), capture_output=True, text=True, timeout=60,
                            stdin=subprocess.DEVNULL)
    assert result.returncode == 0, result.stderr
    seen = json.loads(result.stdout)
    NUD_PERMANENT, NUD_STALE = 0x80, 0x04  # include/uapi/linux/neighbour.h
    # A peer's permanent entry stays; the reply goes to the packet's sender MAC all the same.
    assert seen["permanent"] == {"answers": ["02:00:01:00:00:03"],
                                 "entry": ["02:00:00:00:00:03", NUD_PERMANENT]}
    # RFC 1812 3.3.2 (MUST NOT believe a multicast link address) is not applied by Linux 6.18.
    assert seen["group"] == {"answers": ["03:00:00:00:00:05"], "entry": ["03:00:00:00:00:05", NUD_STALE]}
    # RFC 5227 2.4 (defend against a conflicting ARP packet) is left to user space by the kernel.
    assert seen["claim"]["answers"] == []
    # A request from a multicast, limited-broadcast or loopback sender address is neither answered
    # nor learnt (tapstack drops it as arp_bad_sender_ip); the subnet's broadcast address is.
    for ip in ("224.0.2.1", "255.255.255.255", "127.0.0.1"):
        assert seen[f"sender {ip}"] == {"answers": [], "entry": None}, (ip, seen[f"sender {ip}"])
    assert seen["sender 192.0.2.255"]["answers"] == ["02:00:00:00:00:06"]


def test_fuzzing_the_kernel_finds_it_answering_throughout(netns: str) -> None:
    result = tapstack(netns, "fuzz", "--tap", "tap0", "--ip", "192.0.2.2/24", "--host-ip", "192.0.2.1/24",
                      "--target", "192.0.2.1", "--examples", "300", "--batch", "50", "--seed", "2")
    assert result.returncode == 0, result.stdout + result.stderr
    assert "300 frames in 6 batches: the target answered ping after every batch" in result.stdout


def test_fuzz_refuses_a_target_that_does_not_answer(netns: str) -> None:
    result = tapstack(netns, "fuzz", "--tap", "tap0", "--ip", "192.0.2.2/24", "--host-ip", "192.0.2.1/24",
                      "--target", "192.0.2.9", "--examples", "10")
    assert result.returncode == 1
    assert "192.0.2.9 does not answer ping" in result.stderr


#: TCP segments to closed ports compared in CI per seed (``tapstack diff --tcp``).
CI_EXAMPLES_TCP = 100


@pytest.mark.parametrize("device", [["--tcp"], ["--tcp", "--tun"], ["--tcp", "--ipv6"], ["--tcp", "--ipv6", "--tun"]],
                         ids=["tap", "tun", "tap-ipv6", "tun-ipv6"])
def test_tapstack_answers_tcp_to_closed_ports_as_linux_does(device: list[str]) -> None:
    """Every flag combination, options (malformed too), bad checksums, broadcast and multicast:
    the same RST (or silence) as Linux 6.18, with no deliberate difference at all."""
    runs = {seed: _diff(device, seed, CI_EXAMPLES_TCP) for seed in CI_SEEDS}
    outputs = {seed: run.communicate(timeout=300)[0] for seed, run in runs.items()}
    for seed, run in runs.items():
        output = outputs[seed]
        assert run.returncode == 0, f"--seed {seed}:\n{output}"
        summary = re.search(r"(\d+) examples \(0 of them fragment trains\): (\d+) agree with Linux, "
                            r"0 differ deliberately \(none\), 0 disagree", output)
        assert summary and int(summary.group(1)) > CI_EXAMPLES_TCP * 0.5, f"--seed {seed}:\n{output}"
