"""Every lab's checker, the rootless way (the in-memory wire), as CI runs it; and ``tapstack lab``.

With the answers files as shipped (placeholders), every item about the stack passes and every
answer is "not answered yet"; with the right answers (the key below) every item passes; a wrong
answer fails with a message. The kernel way runs too, as root, in namespaces the command makes.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from stack.tools import lab

REPO = Path(__file__).resolve().parents[2]
LABS = ["01", "02", "03", "04", "05", "06", "07"]

#: The teacher's key: what a student should find (each checker derives it from the stack's behaviour).
KEY = {
    "01": {"arp_ethertype": 0x0806, "arp_reply_operation": 2,
           "arp_request_destination": "ff:ff:ff:ff:ff:ff", "arp_reply_length": 60},
    "02": {"header_checksum": 0x9A5F, "ping_total_length": 84, "default_ttl": 64},
    "03": {"echo_request_type": 8, "echo_reply_type": 0, "icmp_checksum": 0x1927},
    "04": {"fragment_count": 3, "fragment_offsets": [0, 185, 370], "last_fragment_data_bytes": 1048},
    "05": {"tap_reply_bytes": 98, "tun_reply_bytes": 84, "packet_information_hex": "00000800"},
    "06": {},
    "07": {"link_local_address": "fe80::1a:2bff:fe3c:4d5e", "solicited_node_group": "ff02::1:ff34:5678",
           "solicited_node_mac": "33:33:ff:34:56:78", "na_solicited_flag": 1, "na_override_flag": 1,
           "nd_hop_limit": 255, "hop_limit_drop_reason": "icmpv6_nd_bad_hop_limit",
           "mld_reported_group": "ff02::1:ff00:2", "mld_report_destination": "ff02::16",
           "dad_probe_count": 2, "dad_seconds": 2, "dad_defence_destination": "ff02::1",
           "dad_defence_solicited_flag": 0, "dad_winner": "peer"},
}
#: One wrong answer per lab that has answers.
WRONG = {"01": ("arp_reply_length", 42), "02": ("header_checksum", 0x9A5E), "03": ("icmp_checksum", 0x1928),
         "04": ("fragment_offsets", [0, 1480, 2960]), "05": ("packet_information_hex", "08000000"),
         # Lab 07: the MAC copied without flipping the universal/local bit (RFC 4291 appendix A).
         "07": ("link_local_address", "fe80::21a:2bff:fe3c:4d5e")}


# ---------------------------------------------------------------------- lab 08 (IPv6 extension headers)
LABS.append("08")
KEY["08"] = {"chain_next_headers": [0, 60, 43, 44, 58], "destination_options_octets": 16,
             "upper_layer_offset": 80, "parameter_problems_unicast": [0, 0, 1, 1],
             "parameter_problems_multicast": [0, 0, 1, 0], "unknown_option": [2, 54],
             "unknown_next_header": [1, 48], "unknown_routing_type": [0, 50], "fragment_count": 3,
             "fragment_offsets": [0, 154, 308], "first_fragment_data_octets": 1232,
             "overlap_drop_reason": "ipv6_fragment_overlap",
             "later_fragment_drop_reason": "ipv6_fragment_of_discarded"}
WRONG["08"] = ("fragment_offsets", [0, 1232, 2464])


def toml(values: dict) -> str:
    def value(v):
        if isinstance(v, str):
            return f'"{v}"'
        return str(v).replace("'", '"')
    return "".join(f"{key} = {value(v)}\n" for key, v in values.items())


def is_answer_item(item: lab.Item) -> bool:
    return item.name.startswith(("answers.toml", "your timestamp_reply"))


def test_every_lab_has_a_worksheet_and_a_pytest_file():
    directories = lab.lab_directories()
    assert [d.name[:2] for d in directories] == LABS
    for directory in directories:
        assert (directory / "README.md").read_text().startswith(f"# Lab {directory.name[:2]}:")
        assert (directory / f"test_lab{directory.name[:2]}.py").is_file()


@pytest.mark.parametrize("number", LABS)
def test_as_shipped_the_stack_passes_and_the_answers_are_not_answered_yet(number):
    chosen = lab.load(number)
    outcomes = lab.check(chosen)
    for outcome in outcomes:
        expected = "todo" if is_answer_item(outcome.item) else "pass"
        assert outcome.status == expected, (outcome.item.name, outcome.message)
    assert any(is_answer_item(o.item) for o in outcomes), "a lab with nothing for the student to do"


@pytest.mark.parametrize("number", LABS)
def test_with_the_right_answers_every_item_passes(number, tmp_path):
    answers = tmp_path / "answers.toml"
    answers.write_text(toml(KEY[number]))
    outcomes = lab.check(lab.load(number), answers=answers, solution=number == "06")
    assert [(o.item.name, o.message) for o in outcomes if o.status != "pass"] == []


@pytest.mark.parametrize("number", sorted(WRONG))
def test_a_wrong_answer_fails_with_a_hint(number, tmp_path):
    key, wrong = WRONG[number]
    answers = tmp_path / "answers.toml"
    answers.write_text(toml(dict(KEY[number], **{key: wrong})))
    failed = [o for o in lab.check(lab.load(number), answers=answers) if o.status == "fail"]
    assert len(failed) == 1 and key in failed[0].message


def test_answers_that_are_not_toml_fail_each_answer_item_with_the_reason(tmp_path):
    answers = tmp_path / "answers.toml"
    answers.write_text("header_checksum = = 3\n")
    outcomes = lab.check(lab.load("02"), answers=answers)
    failed = [o for o in outcomes if o.status == "fail"]
    assert failed and all(is_answer_item(o.item) and "TOML" in o.message for o in failed)
    assert all(o.status == "pass" for o in outcomes if not is_answer_item(o.item))


def test_a_timestamp_reply_that_answers_wrongly_fails_the_student_items(tmp_path, monkeypatch):
    directory = tmp_path / "06-icmp-timestamp"
    directory.mkdir()
    for name in ("README.md", "check.py"):
        (directory / name).write_text((lab.LABS_DIRECTORY / "06-icmp-timestamp" / name).read_text())
    # An echo of the request with the type changed: no timestamps of its own, accepts anything.
    (directory / "timestamp.py").write_text(
        "from stack.l3.icmp import IcmpMessage\n"
        "def timestamp_reply(request, now):\n"
        "    return IcmpMessage(14, 0, request.rest_of_header, bytes(request.payload))\n")
    monkeypatch.setattr(lab, "LABS_DIRECTORY", tmp_path)
    outcomes = {o.item.name: o for o in lab.check(lab.load("06"))}
    statuses = [o.status for name, o in outcomes.items() if name.startswith("your")]
    assert statuses == ["pass", "fail", "fail"], outcomes


# ---------------------------------------------------------------------- the command


def tapstack(*args: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "stack", *args], cwd=REPO, capture_output=True, text=True,
                          env=dict(os.environ, PYTHONPATH=str(REPO)), timeout=timeout,
                          stdin=subprocess.DEVNULL)


def test_lab_list_names_every_lab():
    result = tapstack("lab", "list")
    assert result.returncode == 0, result.stderr
    assert [line[:2] for line in result.stdout.splitlines()] == LABS
    assert "Lab 06: ICMP Timestamp" in result.stdout


def test_lab_check_prints_an_item_per_line_and_exits_0_when_nothing_failed():
    result = tapstack("lab", "check", "2")
    assert result.returncode == 0, result.stdout + result.stderr
    lines = result.stdout.splitlines()
    assert lines[0].startswith("Lab 02: ") and "in-memory wire" in lines[0]
    assert sum(line.startswith("  PASS  ") for line in lines) == 5
    assert sum(line.startswith("  TODO  ") for line in lines) == 3
    assert lines[-1].startswith("5 passed, 0 failed, 3 not answered yet")


def test_lab_check_exits_1_on_a_failed_item(tmp_path):
    answers = tmp_path / "answers.toml"
    answers.write_text("header_checksum = 0x1234\n")
    result = tapstack("lab", "check", "02", "--answers", str(answers))
    assert result.returncode == 1
    assert "  FAIL  answers.toml: the header checksum" in result.stdout


def test_lab_check_keeps_captures_that_tshark_or_explain_can_read(tmp_path):
    result = tapstack("lab", "check", "03", "--keep", str(tmp_path))
    assert result.returncode == 0, result.stdout + result.stderr
    kept = sorted(tmp_path.glob("item01-rig1/*"))
    assert [p.name for p in kept] == ["capture.pcap", "trace.txt"]
    assert "ICMP echo reply" in (tmp_path / "item01-rig1" / "trace.txt").read_text()
    explained = tapstack("explain", "--pcap", str(tmp_path / "item01-rig1" / "capture.pcap"), "--frame", "1")
    assert explained.returncode == 0 and "Ethernet" in explained.stdout


@pytest.mark.parametrize("args, message", [
    (["lab", "check", "99"], "no lab '99': the labs are " + ", ".join(LABS)),
    (["lab", "check", "two"], "no lab 'two'"),
    (["lab", "check", "01", "--solution"], "lab 01 has no solution.py"),
    (["lab", "check", "01", "--answers", "/nonexistent/answers.toml"], "no such file"),
    (["run", "--tap", "tap0", "--ip", "192.0.2.2/24", "--answer-timestamp", "/nonexistent.py"],
     "--answer-timestamp: /nonexistent.py does not exist"),
])
def test_bad_input_is_one_line_and_exit_2(args, message):
    result = tapstack(*args)
    assert result.returncode == 2
    assert result.stderr.count("\n") == 1 and message in result.stderr, result.stderr


# ---------------------------------------------------------------------- the rig over IPv6


@pytest.mark.parametrize("medium, packet_info", [("ethernet", False), ("ip", False), ("ip", True)])
def test_an_ipv6_rig_carries_the_peers_pings_to_tapstacks_ipv6_address(medium, packet_info):
    with lab.open_rig("wire", medium, packet_info, ipv6=lab.Ipv6Link()) as rig:
        outcome = rig.ping(count=2)
        assert (outcome.transmitted, outcome.received) == (2, 2), outcome.output
        packets = rig.datagrams()
        assert rig.family == 6 and all(p.v == 6 for p in packets)
        replies = [p for p in rig.sent_by_host() if p.nxt == 58 and p.data.type == 129]
        assert len(replies) == 2 and all(p.dst == rig.peer_ip.packed for p in replies)
        assert rig.host_ip == lab.HOST6.ip and "echo reply" in rig.trace


def test_an_ipv6_rig_sends_frames_both_ways_and_takes_tapstacks_mac_and_dad_from_the_item():
    link = lab.Ipv6Link(host_mac="02:1a:2b:3c:4d:5e")
    with lab.open_rig("wire", ipv6=link, dad_transmits=1) as rig:
        assert rig.host.ip6.resolver.tentative(link.host.ip), "DAD on: the address waits"
        rig.wait(1.2)
        assert rig.host.ip6.resolver.usable(link.host.ip)
        # tapstack's side asks the peer who has 2001:db8::1 (an NS built by the checker).
        target = lab.PEER6.ip
        body = bytes(4) + target.packed + bytes([1, 1]) + bytes.fromhex("021a2b3c4d5e")
        group = lab.IPv6Address("ff02::1:ff00:1")
        solicitation = lab.ipv6(lab.icmpv6_message(135, 0, body, link.host.ip, group), link.host.ip, group,
                                hop_limit=255)
        frame = bytes.fromhex("3333ff000001021a2b3c4d5e86dd") + solicitation
        rig.send_to_peer(frame)
        # Its answer: a solicited NA to tapstack's address (not its unsolicited one to ff02::1).
        answers = [p for p in rig.datagrams() if p.src == target.packed and p.dst == link.host.ip.packed
                   and p.nxt == 58 and p.data.type == 136]
        assert len(answers) == 1 and rig.capture()[-1][:6] == bytes.fromhex("021a2b3c4d5e"), rig.trace


def test_an_ipv6_rig_tells_the_state_of_the_peers_addresses():
    # The peer probes for tapstack's own address: tapstack's announcement makes it a duplicate.
    link = lab.Ipv6Link(peer=lab.HOST6, peer_dad=True)
    with lab.open_rig("wire", ipv6=link) as rig:
        assert rig.peer_address_state(lab.HOST6.ip) == "duplicate"
        assert rig.peer_address_state(lab.IPv6Address("fe80::ff:fe00:1")) == "tentative"
        assert rig.peer_address_state(lab.IPv6Address("2001:db8::99")) is None
        rig.wait(1.2)
        assert rig.peer_address_state(lab.IPv6Address("fe80::ff:fe00:1")) == "usable"


# ---------------------------------------------------------------------- lab 08: more wrong answers


@pytest.mark.parametrize("key, wrong, hint", [
    ("chain_next_headers", [60, 43, 44, 58], "fixed header's Next Header"),
    ("destination_options_octets", 1, "8-octet units"),
    ("parameter_problems_multicast", [0, 0, 1, 1], "spares multicast"),
    ("unknown_option", [2, 52], "octet at fault"),
    ("unknown_next_header", [2, 48], "octet at fault"),
    ("first_fragment_data_octets", 1240, "multiple of 8"),
    ("overlap_drop_reason", "ipv6_fragment_duplicate", "kept trace"),
])
def test_lab08_each_wrong_answer_fails_its_item_alone_with_a_hint(key, wrong, hint, tmp_path):
    answers = tmp_path / "answers.toml"
    answers.write_text(toml(dict(KEY["08"], **{key: wrong})))
    outcomes = lab.check(lab.load("08"), answers=answers)
    failed = [o for o in outcomes if o.status != "pass"]
    assert len(failed) == 1 and failed[0].status == "fail", [(o.item.name, o.message) for o in failed]
    assert key in failed[0].message and hint in failed[0].message, failed[0].message


def test_lab08_the_fragment_items_run_at_1280_on_both_ends_of_the_link():
    with lab.open_rig("wire", ipv6=lab.Ipv6Link()) as rig:
        lab.set_link_mtu(rig, 1280)
        outcome = rig.ping(count=1, size=3000)
        assert outcome.received == 1, outcome.output
        sizes = [len(frame) - 14 for frame in rig.capture() if frame[12:14] == b"\x86\xdd"]
        # 3008 octets of ICMPv6 in fragments of at most 1280 each way: 1280, 1280, 592, twice.
        assert sorted(sizes)[-4:] == [1280] * 4 and sizes.count(592) == 2, sizes


def test_lab08_the_worksheets_packets_are_the_ones_the_checker_sends():
    """README.md shows packet C and P1-P3 in hex, one header per line; the student works on those
    bytes, so they must be the checker's, octet for octet (and explain's command, packet C)."""
    import re

    chosen = lab.load("08")
    text = (chosen.directory / "README.md").read_text()
    blocks = re.findall(r"```text\n(.*?)```", text, re.S)
    shown = {"C": "".join(blocks[0].split())}
    for name, body in re.findall(r"(P\d): (.*?)(?=\nP\d: |\Z)", blocks[1], re.S):
        shown[name] = "".join(body.split())
    check = chosen.module
    assert shown == {"C": check.PACKET_C.hex(), "P1": check.P1.hex(), "P2": check.P2.hex(), "P3": check.P3.hex()}
    explained = re.search(r'tapstack explain --tun "([0-9a-f ]+)"', text).group(1)
    assert "".join(explained.split()) == check.PACKET_C.hex()


def test_lab07_takes_any_spelling_of_an_address_and_says_what_is_not_one(tmp_path):
    answers = tmp_path / "answers.toml"
    spelled = dict(KEY["07"], link_local_address="FE80:0:0:0:1A:2BFF:FE3C:4D5E", solicited_node_mac="33-33-FF-34-56-78")
    answers.write_text(toml(spelled))
    chosen = lab.load("07")
    items = [i for i in chosen.items
             if "link-local address of tapstack" in i.name or "solicited-node group of" in i.name]
    context = lab.context_for(chosen, answers=answers)
    assert [lab.run_item(chosen, item, context).status for item in items] == ["pass", "pass"]
    answers.write_text(toml(dict(KEY["07"], link_local_address="fe80::zz")))
    outcome = lab.run_item(chosen, items[0], lab.context_for(chosen, answers=answers))
    assert outcome.status == "fail" and "is not an IPv6 address" in outcome.message


def test_a_rig_waits_until_a_condition_or_for_the_time_given():
    with lab.open_rig("wire", ipv6=lab.Ipv6Link(), dad_transmits=1) as rig:
        usable = lambda: rig.host.ip6.resolver.usable(lab.HOST6.ip)  # noqa: E731
        start = rig.loop.clock()
        rig.wait(5.0, until=usable)
        assert usable() and rig.loop.clock() - start < 2.0
        start = rig.loop.clock()
        rig.wait(0.2)
        assert rig.loop.clock() - start >= 0.2
