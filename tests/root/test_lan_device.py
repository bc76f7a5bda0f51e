"""A LAN of virtual hosts and RFC 5227 against the real kernel and a real scanner, over TAP, each
test in a private namespace.

nmap's ARP host discovery (``nmap -sn``) from the kernel's side finds exactly the addresses
tapstack was given, each at its own MAC; a kernel-side ``arping`` claiming one of our addresses
is defended; with ``--probe`` an address the kernel already has is given up and the others used.
"""

from __future__ import annotations

import re

import pytest

from tests.root.test_cli_device import KERNEL_IP, in_ns, kernel_ping, replies, start_stack  # noqa: F401

pytestmark = pytest.mark.device

RANGE = [f"192.0.2.{n}" for n in range(10, 31)]
SINGLE = "192.0.2.200"


def parse_nmap_hosts(output: str) -> dict[str, str | None]:
    """{address: MAC or None} of every host ``nmap -sn`` reports up (the scanning host itself,
    the kernel, has no MAC line)."""
    found: dict[str, str | None] = {}
    current = None
    for line in output.splitlines():
        if match := re.match(r"Nmap scan report for (\S+)", line):
            current = match.group(1)
            found[current] = None
        elif current and (match := re.match(r"MAC Address: ([0-9A-F:]{17})", line)):
            found[current] = match.group(1).lower()
    return found


def nmap_hosts(ns: str) -> dict[str, str | None]:
    """``nmap -sn`` (ARP host discovery) of the whole /24 from the kernel's side."""
    return parse_nmap_hosts(in_ns(ns, "nmap", "-sn", "-n", "192.0.2.0/24", timeout=60).stdout)


def derived_mac(address: str) -> str:
    return "02:00:" + ":".join(f"{int(octet):02x}" for octet in address.split("."))


@pytest.mark.tools("nmap")
def test_a_scan_of_the_subnet_finds_exactly_the_configured_hosts(netns: str, start_stack) -> None:
    stack = start_stack(netns, "--tap", "tap0", "--ip", f"{RANGE[0]}-{RANGE[-1]}/24",
                        "--ip", f"{SINGLE}/24", "--host-ip", f"{KERNEL_IP}/24")
    found = nmap_hosts(netns)
    found.pop(KERNEL_IP, None)  # nmap lists the scanning host too
    assert found == {address: derived_mac(address) for address in [*RANGE, SINGLE]}, stack.stderr
    assert stack.stop() == 0
    assert "22 addresses" in stack.stderr


@pytest.mark.tools("ping")
def test_every_host_of_the_range_answers_ping(netns: str, start_stack) -> None:
    start_stack(netns, "--tap", "tap0", "--ip", f"{RANGE[0]}-{RANGE[-1]}/24",
                "--host-ip", f"{KERNEL_IP}/24")
    for address in RANGE[::5]:
        result = kernel_ping(netns, "-c", "2", "-i", "0.05", "-w", "5", target=address)
        assert len(replies(result.stdout)) == 2, result.stdout


@pytest.mark.tools("arping")
def test_rfc5227_2_4_a_claim_on_our_address_is_defended(netns: str, start_stack) -> None:
    stack = start_stack(netns, "--tap", "tap0", "--ip", f"{RANGE[0]}/24", "--host-ip", f"{KERNEL_IP}/24")
    # Habets' arping -U: an unsolicited ARP (gratuitous) from the kernel's MAC claiming RANGE[0].
    in_ns(netns, "arping", "-i", "tap0", "-S", RANGE[0], "-U", "-c", "2", "-w", "3", RANGE[0], check=False)
    assert stack.stop() == 0
    assert f"claims {RANGE[0]}, which is ours" in stack.stderr
    assert re.search(r"arp_defences_sent +1\n", stack.stderr), stack.stderr  # once per 10 s
    assert re.search(r"arp_address_conflict +2\n", stack.stderr), stack.stderr


@pytest.mark.tools("ping")
def test_rfc5227_2_1_probe_gives_up_an_address_the_kernel_has(netns: str, start_stack) -> None:
    in_ns(netns, "ip", "tuntap", "add", "dev", "tap0", "mode", "tap")
    in_ns(netns, "ip", "addr", "add", f"{KERNEL_IP}/24", "dev", "tap0")
    in_ns(netns, "ip", "addr", "add", "192.0.2.9/24", "dev", "tap0")  # the address we shall want
    in_ns(netns, "ip", "link", "set", "tap0", "up")
    stack = start_stack(netns, "--tap", "tap0", "--probe", "--ip", "192.0.2.9/24", "--ip", f"{RANGE[0]}/24")
    # Probing takes PROBE_WAIT + 2 x PROBE_MAX + ANNOUNCE_WAIT = 7 s at most; ping until answered
    # (requests sent while the kernel waits for ARP are answered late, all at once).
    result = kernel_ping(netns, "-c", "1", "-i", "0.5", "-w", "15", target=RANGE[0])
    assert len(replies(result.stdout)) >= 1, result.stdout + stack.stderr
    assert stack.stop() == 0
    assert "192.0.2.9 is in use by" in stack.stderr
    assert re.search(r"arp_addresses_abandoned +1\n", stack.stderr), stack.stderr
