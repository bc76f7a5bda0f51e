"""``tapstack diff`` and ``tapstack fuzz`` against the real Linux kernel, each in a private
network namespace (diff makes its own with unshare; fuzz runs in one the test creates)."""

from __future__ import annotations

import re
import subprocess
import sys

import pytest

from tests.root.test_cli_device import REPO, stack_env, tapstack

pytestmark = pytest.mark.device

#: Frames compared in CI per seed; ``tapstack diff --examples N`` runs as many as a user asks.
CI_EXAMPLES = 300
#: Several seeds, so that CI compares different frames and not one sequence only.
CI_SEEDS = (1, 2, 3)


def _diff(device: list[str], seed: int) -> subprocess.Popen:
    return subprocess.Popen(
        ["unshare", "--net", "--mount", sys.executable, "-m", "stack", "diff", *device, "--examples",
         str(CI_EXAMPLES), "--seed", str(seed), "-q"],
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
        summary = re.search(r"(\d+) frames: (\d+) agree with Linux, (\d+) differ deliberately .*, 0 disagree",
                            output)
        assert summary, f"--seed {seed}:\n{output}"
        compared, agreed = int(summary.group(1)), int(summary.group(2))
        # Duplicates count once; over TUN, ARP frames are not drawn.
        assert compared > CI_EXAMPLES * 0.5 and agreed > compared * 0.75, f"--seed {seed}:\n{output}"


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
