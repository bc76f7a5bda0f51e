"""The ``tapstack`` command's user errors that need no device: one line on stderr, exit 2.

Arguments are validated before any device is opened, so these run anywhere, without root. As a
belt-and-braces guard (a regression in that order would otherwise create a TAP device in the
namespace the tests run in), they run in a throw-away network namespace when we are root.
The device-dependent errors (a TUN device given to ``--tap``, no permission) are in
``test_cli_device.py``; a TAP device given to ``--tun`` is in ``test_cli_tun_device.py``.
"""

from __future__ import annotations

import argparse
import ipaddress
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
TIMEOUT_S = 30

#: When root, run in a fresh network namespace that vanishes with the process.
ISOLATE = ["unshare", "--net"] if os.geteuid() == 0 and shutil.which("unshare") else []


def tapstack(*args: str) -> subprocess.CompletedProcess[str]:
    env = dict(os.environ, PYTHONPATH=str(REPO))
    return subprocess.run([*ISOLATE, sys.executable, "-m", "stack", *args], cwd=REPO, env=env,
                          capture_output=True, text=True, timeout=TIMEOUT_S, stdin=subprocess.DEVNULL)


def assert_usage_error(result: subprocess.CompletedProcess[str], *fragments: str) -> None:
    assert result.returncode == 2, result
    assert "Traceback" not in result.stderr, result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, f"expected one line on stderr, got:\n{result.stderr}"
    assert lines[0].startswith("tapstack"), lines[0]
    for fragment in fragments:
        assert fragment in lines[0], lines[0]
    assert "bytes from" not in result.stdout, result.stdout  # nothing ran


HOST = ["--tap", "tap0"]


@pytest.mark.parametrize(
    "args, fragments",
    [
        pytest.param(["--ip", "192.0.2.300/24"], ["192.0.2.300/24"], id="ip-octet-out-of-range"),
        pytest.param(["--ip", "192.0.2.2"], ["192.0.2.2", "prefix length"], id="ip-without-prefix"),
        pytest.param(["--ip", "192.0.2.0/24"], ["network or broadcast"], id="ip-network-address"),
        pytest.param(["--ip", "224.0.0.5/24"], ["unicast"], id="ip-multicast"),
        pytest.param(["--ip", "192.0.2.2/24", "--mac", "01:00:5e:00:00:01"], ["multicast"],
                     id="mac-multicast"),
        pytest.param(["--ip", "192.0.2.2/24", "--mac", "zz"], ["zz"], id="mac-garbage"),
        pytest.param(["--ip", "192.0.2.2/24", "--gateway", "192.0.2.x"], ["192.0.2.x"],
                     id="gateway-garbage"),
        pytest.param(["--ip", "192.0.2.2/24", "--host-ip", "192.0.2.2/24"], ["own address"],
                     id="host-ip-is-ours"),
        pytest.param([], ["--ip"], id="ip-missing"),
        pytest.param(["--ip", "192.0.2.20-192.0.2.10/24"], ["ends before it starts"], id="range-backwards"),
        pytest.param(["--ip", "192.0.2.250-192.0.3.5/24"], ["more than one /24"], id="range-two-networks"),
        pytest.param(["--ip", "192.0.2.0-192.0.2.5/24"], ["192.0.2.0/24", "network or broadcast"],
                     id="range-with-network-address"),
        pytest.param(["--ip", "192.0.2.1-x/24"], ["not an address range"], id="range-garbage"),
        pytest.param(["--ip", "192.0.0.1-192.2.0.1/8"], ["at most 65536"], id="range-too-large"),
        pytest.param(["--ip", "192.0.2.5-192.0.2.9/24", "--ip", "192.0.2.7/24"], ["twice"],
                     id="address-twice"),
    ],
)
@pytest.mark.parametrize("command", ["run", "ping"])
def test_bad_host_options_are_one_line_exit_2(command: str, args: list[str], fragments: list[str]) -> None:
    target = ["192.0.2.1"] if command == "ping" else []
    assert_usage_error(tapstack(command, *HOST, *args, *target), *fragments)


TUN = ["--tun", "tun0", "--ip", "192.0.2.2"]
TAP = ["--tap", "tap0", "--ip", "192.0.2.2/24"]


@pytest.mark.parametrize(
    "args, fragments",
    [
        pytest.param([*TUN, "--mac", "02:00:00:00:00:09"], ["--mac is for TAP devices"], id="tun-with-mac"),
        pytest.param([*TUN, "--gateway", "192.0.2.1"], ["--gateway is for TAP devices"], id="tun-with-gateway"),
        pytest.param([*TAP, "--pi"], ["--pi is for TUN devices"], id="tap-with-pi"),
        pytest.param([*TUN, "--probe"], ["--probe is for TAP devices"], id="tun-with-probe"),
        pytest.param([*TAP, "--peer", "192.0.2.1"], ["--peer is for TUN devices"], id="tap-with-peer"),
        # (--tap with a bare --ip is "ip-without-prefix" above; --host-ip needs a prefix on TAP too.)
        pytest.param([*TAP, "--host-ip", "192.0.2.1"], ["192.0.2.1", "prefix length"],
                     id="tap-host-ip-without-prefix"),
        pytest.param([*TUN, "--peer", "192.0.2.7", "--host-ip", "192.0.2.1"],
                     ["--peer 192.0.2.7", "--host-ip 192.0.2.1"], id="tun-peer-differs-from-host-ip"),
        pytest.param([*TUN, "--peer", "192.0.2.2"], ["192.0.2.2"], id="tun-peer-is-ours"),
        pytest.param([*TUN, "--host-ip", "192.0.2.2"], ["own address"], id="tun-host-ip-is-ours"),
        pytest.param([*TUN, "--tap", "tap0"], ["--tap", "--tun"], id="tap-and-tun"),
    ],
)
@pytest.mark.parametrize("command", ["run", "ping"])
def test_tun_and_tap_options_mixed_up_are_one_line_exit_2(command: str, args: list[str],
                                                          fragments: list[str]) -> None:
    target = ["192.0.2.1"] if command == "ping" else []
    assert_usage_error(tapstack(command, *args, *target), *fragments)


@pytest.mark.parametrize(
    "args, fragments",
    [
        pytest.param(["-s", "70000"], ["-s 70000"], id="size-too-big"),
        pytest.param(["-c", "0"], ["'0'"], id="count-zero"),
        pytest.param(["-i", "soon"], ["soon"], id="interval-garbage"),
        pytest.param(["-W", "-1"], ["-1"], id="timeout-negative"),
    ],
)
def test_bad_ping_options_are_one_line_exit_2(args: list[str], fragments: list[str]) -> None:
    result = tapstack("ping", *HOST, "--ip", "192.0.2.2/24", *args, "192.0.2.1")
    assert_usage_error(result, *fragments)


def test_ping_target_that_is_not_an_address() -> None:
    assert_usage_error(tapstack("ping", *HOST, "--ip", "192.0.2.2/24", "192.0.2.256"), "192.0.2.256")


def test_unknown_command() -> None:
    assert_usage_error(tapstack("serve"), "serve")


def test_an_address_range_is_every_address_from_first_to_last() -> None:
    from stack.cli import host_addresses

    assert [str(i) for i in host_addresses("192.0.2.10-192.0.2.13/24")] == [
        "192.0.2.10/24", "192.0.2.11/24", "192.0.2.12/24", "192.0.2.13/24"]
    assert [str(i) for i in host_addresses("192.0.2.7-192.0.2.7/24")] == ["192.0.2.7/24"]
    assert len(host_addresses("192.0.2.1-192.0.2.254/24")) == 254
    bare = host_addresses("192.0.2.254-192.0.3.1")  # bare addresses (/32, for a TUN) may span
    assert [str(i) for i in bare] == ["192.0.2.254/32", "192.0.2.255/32", "192.0.3.0/32", "192.0.3.1/32"]


@pytest.mark.parametrize(
    "args, fragments",
    [
        pytest.param(["--drop", "1.5"], ["1.5", "between 0 and 1"], id="drop-above-1"),
        pytest.param(["--drop", "often"], ["often"], id="drop-garbage"),
        pytest.param(["--corrupt", "-0.1"], ["-0.1"], id="corrupt-negative"),
        pytest.param(["--delay-ms", "-5"], ["-5"], id="delay-negative"),
        pytest.param(["--jitter-ms", "5"], ["--jitter-ms", "--delay-ms"], id="jitter-without-delay"),
        pytest.param(["--delay-ms", "10", "--jitter-ms", "30"], ["larger than --delay-ms"],
                     id="jitter-above-delay"),
        pytest.param(["--rate", "0"], ["'0'", "above 0"], id="rate-zero"),
        pytest.param(["--max-size", "0"], ["'0'"], id="max-size-zero"),
        pytest.param(["--seed", "x"], ["'x'"], id="seed-garbage"),
        pytest.param(["--seed", "3"], ["--seed", "--drop"], id="seed-without-faults"),
        pytest.param(["--drop", "0.1", "--fault-direction", "up"], ["up"], id="direction-garbage"),
        pytest.param(["--ttl", "0"], ["'0'", "between 1 and 255"], id="rfc1122-3.2.1.7-ttl-zero"),
        pytest.param(["--ttl", "256"], ["256"], id="ttl-too-big"),
        pytest.param(["--arp-lifetime", "0"], ["'0'"], id="arp-lifetime-zero"),
        pytest.param(["--icmp-error-rate", "-1"], ["-1"], id="icmp-error-rate-negative"),
        pytest.param(["--icmp-error-burst", "x"], ["'x'"], id="icmp-error-burst-garbage"),
        pytest.param(["--reassembly-timeout", "0"], ["'0'"], id="reassembly-timeout-zero"),
    ],
)
@pytest.mark.parametrize("command", ["run", "ping"])
def test_bad_fault_and_choice_options_are_one_line_exit_2(command: str, args: list[str],
                                                          fragments: list[str]) -> None:
    target = ["192.0.2.1"] if command == "ping" else []
    assert_usage_error(tapstack(command, *TAP, *args, *target), *fragments)


def test_arp_lifetime_is_for_tap_devices() -> None:
    assert_usage_error(tapstack("run", *TUN, "--arp-lifetime", "5"), "--arp-lifetime is for TAP devices")


def test_the_help_names_each_choice_with_its_default_and_rfc() -> None:
    result = tapstack("run", "--help")
    text = " ".join(result.stdout.split())
    for fragment in ["--arp-lifetime", "RFC 1122 2.3.2.1", "default 60", "--ttl", "RFC 1122 3.2.1.7",
                     "64", "--icmp-error-rate", "RFC 1122 3.2.2", "1000", "--reassembly-timeout",
                     "RFC 1122 3.3.2", "ipfrag_time: 30", "--answer-broadcast", "RFC 1122 3.2.2.6",
                     "--drop P", "--delay-ms MS", "--seed N"]:
        assert fragment in text, fragment


@pytest.mark.parametrize("path, fragments", [
    ("/nonexistent-dir/x.pcap", ["--pcap /nonexistent-dir/x.pcap: No such file or directory"]),
    ("/", ["--pcap /: Is a directory"]),
], ids=["directory-missing", "a-directory"])
@pytest.mark.parametrize("command", ["run", "ping"])
def test_a_capture_file_that_cannot_be_written_is_one_line_before_any_device(command, path, fragments):
    """Checked before the device is opened: without root, a device error would come first."""
    target = ["192.0.2.1"] if command == "ping" else []
    result = tapstack(command, *TAP, "--host-ip", "192.0.2.1/24", "--pcap", path, *target)
    assert_usage_error(result, *fragments)


def test_a_ping_target_off_every_network_is_one_line_before_any_device():
    result = tapstack("ping", *TAP, "--host-ip", "192.0.2.1/24", "203.0.113.9")
    assert_usage_error(result, "no route to 203.0.113.9")


def kernel_side_warning(*args: str):
    from stack.cli import build_parser, kernel_side_warning, make_host

    parsed = build_parser().parse_args(["run", *args])
    return kernel_side_warning(parsed, make_host(parsed))


@pytest.mark.parametrize("args, expected", [
    pytest.param([*TAP, "--host-ip", "192.0.2.1/24"], None, id="tap-same-network"),
    pytest.param([*TAP, "--host-ip", "192.0.2.1/16"], None, id="tap-wider-kernel-network"),
    pytest.param([*TAP, "--host-ip", "198.51.100.1/24"],
                 "--host-ip 198.51.100.1/24 is on none of the host's networks (192.0.2.0/24): the kernel "
                 "has no route to tapstack, nor tapstack to the kernel; e.g. --host-ip 192.0.2.1/24",
                 id="tap-other-network"),
    pytest.param(["--tap", "tap0", "--ip", "192.0.2.130/25", "--host-ip", "192.0.2.1/24"],
                 "--host-ip 192.0.2.1/24 is on none of the host's networks (192.0.2.128/25): tapstack "
                 "cannot answer the kernel (give --gateway, or the host a prefix that holds 192.0.2.1)",
                 id="tap-kernel-outside-our-narrower-network"),
    pytest.param(["--tap", "tap0", "--ip", "192.0.2.130/25", "--host-ip", "192.0.2.1/24",
                  "--gateway", "192.0.2.129"], None, id="tap-kernel-behind-our-gateway"),
    pytest.param([*TAP, "--host-ip", "192.0.2.200/25"],
                 "--host-ip 192.0.2.200/25: the kernel's network 192.0.2.128/25 holds none of the host's "
                 "addresses, so it has no route to them; e.g. --host-ip 192.0.2.1/24", id="tap-we-are-outside-the-kernel-network"),
    pytest.param(["--tap", "tap0", "--ip", "192.0.2.10-192.0.2.250/24", "--ip", "198.51.100.7/24",
                  "--host-ip", "192.0.2.1/24"], None, id="tap-lan-on-two-networks"),
    pytest.param([*TUN, "--host-ip", "198.51.100.1"], None, id="tun-any-kernel-address"),
    pytest.param(["--tun", "tun0", "--ip", "192.0.2.10-192.0.2.20", "--host-ip", "192.0.2.1"],
                 "--host-ip 192.0.2.1: the kernel routes only 192.0.2.10 to tun0, so it cannot reach "
                 "192.0.2.11, 192.0.2.12, ... (10 addresses); e.g. --host-ip 192.0.2.1/27", id="tun-range-bare"),
    pytest.param(["--tun", "tun0", "--ip", "192.0.2.10-192.0.2.20", "--host-ip", "192.0.2.1/27"], None,
                 id="tun-range-covered"),
])
def test_a_kernel_side_that_cannot_reach_the_host_gets_one_warning(args, expected):
    """The routes these name were checked against the kernel (test_cli_device.py)."""
    assert kernel_side_warning(*args) == expected


@pytest.mark.parametrize("args, fragments", [
    (["--queues", "0"], ["--queues", "'0' must be between 1 and 16"]),
    (["--queues", "17"], ["--queues", "'17' must be between 1 and 16"]),
    (["--queues", "two"], ["--queues", "'two' is not a whole number"]),
    (["--queues", "2", "--pcap", "/tmp/never-written.pcap"], ["--pcap cannot be used with --queues"]),
    (["--queues", "2", "--probe"], ["--probe cannot be used with --queues"]),
    (["--queues", "2", "--host-ip", "192.0.2.2/24"], ["own address"]),
], ids=["zero", "too-many", "not-a-number", "with-pcap", "with-probe", "bad-host-ip"])
def test_bad_queue_options_are_one_line_before_any_device(args, fragments):
    """Checked before any queue is opened: without root, a device error would come first."""
    result = tapstack("run", *TAP, *args)
    assert_usage_error(result, *fragments)
    assert not os.path.exists("/tmp/never-written.pcap")


def test_queues_is_a_run_option_only():
    result = tapstack("ping", *TAP, "192.0.2.1", "--queues=2")
    assert_usage_error(result, "unrecognized arguments: --queues=2")

@pytest.mark.parametrize("args, fragments", [
    (["--pcap-max-bytes", "10M"], ["--pcap-max-bytes bounds a capture file: give --pcap FILE"]),
    (["--pcap", "-", "--pcap-max-bytes", "10M"], ["cannot be used with --pcap -"]),
    (["--pcap", "/tmp/never-written.pcap", "--pcap-max-bytes", "64K"],
     ["--pcap-max-bytes 65536 is too small", "65575"]),
    (["--pcap", "/tmp/never-written.pcap", "--pcap-max-bytes", "ten"], ["'ten' is not a size in bytes"]),
    (["--pcap", "/tmp/never-written.pcap", "--pcap-max-bytes=-5M"], ["'-5M' is not a size"]),
    (["--pcap", "/tmp/never-written.pcap", "--pcap-max-bytes", "0"], ["'0' must be at least 1 byte"]),
    (["--pcap", "/tmp/never-written.pcap", "--pcap-max-bytes", "1.5M"], ["'1.5M' is not a size"]),
], ids=["without-pcap", "stdout", "too-small", "words", "negative", "zero", "fraction"])
@pytest.mark.parametrize("command", ["run", "ping"])
def test_bad_pcap_max_bytes_is_one_line_and_nothing_created(command, args, fragments):
    target = ["192.0.2.1"] if command == "ping" else []
    result = tapstack(command, *TAP, "--host-ip", "192.0.2.1/24", *args, *target)
    assert_usage_error(result, *fragments)
    assert not os.path.exists("/tmp/never-written.pcap")


@pytest.mark.parametrize("text, expected", [("65575", 65_575), ("100K", 102_400), ("10M", 10 << 20),
                                            ("2G", 2 << 30), ("10mb", 10 << 20), ("1k", 1024)])
def test_pcap_max_bytes_takes_k_m_and_g_as_powers_of_1024(text, expected):
    from stack.cli import build_parser

    args = build_parser().parse_args(["run", *TAP, "--pcap", "x.pcap", "--pcap-max-bytes", text])
    assert args.pcap_max_bytes == expected


def test_rotation_moves_file_to_file_1_and_keeps_two_files(tmp_path):
    from stack.cli.wiring import CaptureOutput

    path = tmp_path / "cap.pcap"
    capture = CaptureOutput(str(path), max_bytes=100_000)
    capture.start().write(b"first")
    for content in (b"second", b"third"):
        old = capture.stream
        new = capture.rotate()
        old.close()
        new.write(content)
    capture.stream.close()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["cap.pcap", "cap.pcap.1"]
    assert path.read_bytes() == b"third" and (tmp_path / "cap.pcap.1").read_bytes() == b"second"


def test_a_rotation_that_cannot_rename_is_none_with_a_warning(tmp_path, caplog):
    from stack.cli.wiring import CaptureOutput

    path = tmp_path / "cap.pcap"
    capture = CaptureOutput(str(path), max_bytes=100_000)
    path.unlink()  # moved away by someone else: nothing to rename
    assert capture.rotate() is None
    assert "cannot rotate" in caplog.text
    capture.stream.close()


# ---------------------------------------------------------------------- --tcp / --udp words

@pytest.mark.parametrize("text, expected", [
    ("80", dict(first=80, last=80, service="", address=None)),
    ("80:http", dict(first=80, last=80, service="http")),
    ("7-9", dict(first=7, last=9, service="")),
    ("22:banner:SSH-2.0-tapstack", dict(first=22, service="banner", text="SSH-2.0-tapstack")),
    ("192.0.2.3:80:http", dict(service="http", address=ipaddress.ip_address("192.0.2.3"))),
    ("[2001:db8::2]:7:echo", dict(first=7, service="echo", address=ipaddress.ip_address("2001:db8::2"))),
])
def test_tcp_words_name_ports_services_and_addresses(text, expected):
    from stack.cli.arguments import tcp_service
    word = tcp_service(text)
    for name, value in expected.items():
        assert getattr(word, name) == value, name


def test_a_port_without_a_service_runs_the_one_its_number_is_known_for():
    from stack.cli.arguments import tcp_service, udp_service
    assert [tcp_service("7-9").service_of(p) for p in (7, 8, 9)] == ["echo", "discard", "discard"]
    assert tcp_service("19").service_of(19) == "chargen" and tcp_service("8080").service_of(8080) == "http"
    assert udp_service("19").service_of(19) == "discard"  # no UDP chargen here


@pytest.mark.parametrize("text, words", [
    ("0", "from 1 to 65535"), ("9-7", "from 1 to 65535"), ("x", "[ADDRESS:]PORT"),
    ("80:ftp", "not a TCP service"), ("192.0.2.300:80", "not an IPv4 address"),
    ("[2001:db8::2:80", "[ADDRESS]:PORT"), ("13:daytime:x", "only banner"), ("22:banner:", "printable"),
    ("192.0.2.3", "names no port"),
])
def test_bad_tcp_words_are_one_clear_line(text, words):
    from stack.cli.arguments import tcp_service
    with pytest.raises(argparse.ArgumentTypeError, match=re.escape(words)):
        tcp_service(text)


def test_udp_words_refuse_tcp_only_services():
    from stack.cli.arguments import udp_service
    with pytest.raises(argparse.ArgumentTypeError, match="not a UDP service"):
        udp_service("19:chargen")


@pytest.mark.parametrize(
    "args, fragments",
    [
        pytest.param(["192.0.2.1", "0"], ["'0'"], id="port-zero"),
        pytest.param(["192.0.2.1", "http"], ["'http'"], id="port-not-a-number"),
        pytest.param(["2001:db8::1", "80"], ["no IPv6 address"], id="ipv6-target-without-ipv6"),
        pytest.param(["-w", "-1", "192.0.2.1", "80"], ["-1"], id="wait-negative"),
        pytest.param(["--tcp", "80:gopher", "192.0.2.1", "80"], ["gopher"], id="unknown-service"),
        pytest.param(["--tcp", "192.0.2.9:80", "192.0.2.1", "80"], ["192.0.2.9 is not one of"],
                     id="service-on-an-address-not-ours"),
        pytest.param(["--tcp", "80", "--tcp", "80:echo", "192.0.2.1", "80"], ["already listening"],
                     id="port-opened-twice"),
    ],
)
def test_bad_connect_and_service_options_are_one_line_exit_2(args: list[str], fragments: list[str]) -> None:
    assert_usage_error(tapstack("connect", *HOST, "--ip", "192.0.2.2/24", *args), *fragments)
