"""What Linux does with fragment trains and source routes, checked on the running kernel (issue 13): the kernel owns
192.0.2.2 on a TAP device in a private namespace (tests/root/device_scenarios.py
``empty_fragments``); tapstack's reassembler follows it (tests/core/test_fragments_and_errors.py)."""

from __future__ import annotations

import pytest

from tests.root.test_linux import run_scenario

pytestmark = pytest.mark.device


def test_linux_drops_an_empty_fragment_and_what_it_holds_of_its_datagram(netns: str) -> None:
    """An empty fragment first spoils nothing (nothing is held yet: issue 13); after the first
    fragment it discards it (found by tapstack diff), and the last one alone never completes."""
    assert run_scenario(netns, "empty_fragments") == {"plain": 1, "empty_at_8": 1, "empty_at_0": 1,
                                                      "empty_at_8_after_first": 0, "empty_at_0_after_first": 0}


def test_linux_drops_every_source_routed_datagram(netns: str) -> None:
    """With net.ipv4.conf.all.accept_source_route = 0 (the default in a new namespace), Linux 6.18
    drops an unfinished source route (tapstack too: RFC 1122 3.3.5) and a finished one as well
    (tapstack answers that one: RFC 1122 3.2.1.8 (c) says a host MUST be able to be the final
    destination of a source route)."""
    assert run_scenario(netns, "source_routes") == {"accept_source_route_all": "0", "none": 1,
                                                    "unfinished": 0, "finished": 0}


#: The first fragment of a datagram carrying an ICMP message of each type, left incomplete: which
#: ones the kernel sends Time Exceeded (reassembly) about, all in one train of datagrams.
ICMP_TYPES_PROBE = """
import json
from stack.l3.ipv4 import Ipv4Packet, IpProto
from stack.tools import diff

kernel = diff.KernelHost("ip")  # its ipfrag_time is diff.REASSEMBLY_TIMEOUT_S
firsts = tuple(bytes(Ipv4Packet(diff.TUN_PEER, diff.HOST.ip, IpProto.ICMP, bytes([icmp_type]) + bytes(7),
                                identification=icmp_type, more_fragments=True)) for icmp_type in range(256))
answers = kernel.answer_train(firsts)
print(json.dumps(sorted(answer[20 + 8 + 20] for answer in answers if answer[20] == 11 and answer[21] == 1)))
kernel.close()
"""


def test_linux_sends_time_exceeded_about_icmp_queries_only() -> None:
    """RFC 1122 3.2.2: no ICMP error about an ICMP error; Linux 6.18 sends one only about the
    query types (tapstack does the same: ICMP_QUERY_TYPES)."""
    import json
    import subprocess
    import sys

    from stack.l3.icmp_responder import ICMP_QUERY_TYPES
    from tests.root.test_cli_device import REPO, stack_env

    result = subprocess.run(["unshare", "--net", "--mount", sys.executable, "-c", ICMP_TYPES_PROBE], cwd=REPO,
                            env=stack_env(), capture_output=True, text=True, timeout=60, stdin=subprocess.DEVNULL)
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout) == sorted(ICMP_QUERY_TYPES) == [0, 8, 13, 14, 15, 16, 17, 18]


#: Fragment trains with a fragment over data already held (32 bytes of echo request, ranges in
#: bytes), each its own datagram and echo identifier, all sent at once: which are answered.
OVERLAP_PROBE = """
import json
from stack.l3.icmp import IcmpMessage, IcmpType
from stack.l3.ipv4 import Ipv4Packet, IpProto
from stack.tools import diff

CASES = %r
kernel = diff.KernelHost("ip")
fragments = []
for ident, pieces in enumerate(CASES):
    message = bytes(IcmpMessage.echo(IcmpType.ECHO_REQUEST, ident, 1, bytes(range(24))))
    for start, stop, other in pieces:
        data = bytes(0xFF ^ b for b in message[start:stop]) if other else message[start:stop]
        fragments.append(bytes(Ipv4Packet(diff.TUN_PEER, diff.HOST.ip, IpProto.ICMP, data, identification=100 + ident,
                                          more_fragments=stop < len(message), fragment_offset=start // 8)))
answers = kernel.answer_train(tuple(fragments))
print(json.dumps(sorted(int.from_bytes(a[24:26], "big") for a in answers if a[9] == 1 and a[20] == 0)))
kernel.close()
"""
#: (the train, as (start, stop, other bytes); whether Linux answers it)
OVERLAP_CASES = [
    ([(0, 8, 0), (8, 16, 0), (0, 16, 1), (16, 32, 0)], True),   # inside a run that came in order: kept
    ([(0, 16, 0), (0, 8, 1), (16, 32, 0)], True),                # inside one fragment: kept
    ([(8, 16, 0), (0, 8, 0), (0, 16, 1), (16, 32, 0)], False),   # the same over two runs: discarded
    ([(0, 8, 0), (16, 24, 0), (8, 16, 0), (0, 16, 0), (24, 32, 0)], False),  # a gap filled is a run of its own
    ([(0, 8, 0), (8, 24, 0), (0, 16, 1), (24, 32, 0)], True),    # inside a run of two: kept
    ([(0, 8, 0), (0, 16, 0), (16, 32, 0)], False),               # past the end of the held data: discarded
    ([(0, 8, 0), (8, 32, 0), (0, 8, 1), (8, 32, 0)], True),      # after completion: anew, never complete
]


def test_linux_keeps_a_datagram_when_a_fragment_lies_inside_a_run_it_received_in_order() -> None:
    """What the deliberate difference ``ipv4-fragment-inside-a-run`` of tapstack diff says of
    Linux, and its model of it (``stack.tools.diff_trains``) agrees; tapstack discards each."""
    import json
    import subprocess
    import sys

    from stack.tools.diff_trains import Train, linux_keeps_what_tapstack_discards
    from tests.root.test_cli_device import REPO, stack_env

    cases = [pieces for pieces, _ in OVERLAP_CASES]
    result = subprocess.run(["unshare", "--net", "--mount", sys.executable, "-c", OVERLAP_PROBE % (cases,)], cwd=REPO,
                            env=stack_env(), capture_output=True, text=True, timeout=60, stdin=subprocess.DEVNULL)
    assert result.returncode == 0, result.stderr
    answered = json.loads(result.stdout)
    assert answered == [ident for ident, (_, linux) in enumerate(OVERLAP_CASES) if linux]
    for pieces, linux in OVERLAP_CASES[:-1]:
        train = Train("overlap", bytes(20 + 32), (), tuple((start, stop) for start, stop, _ in pieces))
        assert linux_keeps_what_tapstack_discards(train) == linux, pieces


#: IPv6 fragment trains of 32-byte echo requests (ranges in bytes; None: an ICMPv6 error's first
#: fragment), each its own packet and echo identifier, all sent at once over TUN.
IPV6_PROBE = """
import json
from stack.checksum import internet_checksum
from stack.l3.ipv6 import FragmentHeader, pseudo_header
from stack.tools import diff
from stack.tools.diff_trains import _ipv6

CASES = %r
kernel = diff.KernelHost("ip", 6)  # its ip6frag_time is diff.REASSEMBLY_TIMEOUT_S
source, destination = diff.TUN_PEER6, diff.HOST6.ip
packets = []
for ident, pieces in enumerate(CASES):
    header = bytes([128 if pieces else 1, 0, 0, 0]) + ident.to_bytes(2, "big") + b"\\0\\1"
    summed = internet_checksum(pseudo_header(source, destination, 32, 58) + header + bytes(24))
    message = header[:2] + summed.to_bytes(2, "big") + header[4:] + bytes(24)
    for start, stop, more in pieces or [(0, 16, True)]:
        fragment = FragmentHeader(58, start // 8, more, 500 + ident)
        packets.append(_ipv6(source, destination, 44, bytes(fragment) + message[start:stop], 64, 0))
answers = kernel.answer_train(tuple(packets))
print(json.dumps({"replies": sorted(int.from_bytes(a[44:46], "big") for a in answers if a[40] == 129),
                  "problems": sorted([a[41], int.from_bytes(a[44:48], "big")] for a in answers if a[40] == 4),
                  "time exceeded": sorted(int.from_bytes(a[48 + 44:48 + 48], "big") for a in answers if a[40] == 3)}))
kernel.close()
"""
IPV6_CASES = [
    [(0, 8, True), (8, 16, True), (0, 16, True), (16, 32, False)],  # 0: inside a run: kept
    [(0, 16, True), (8, 24, True), (0, 8, True), (8, 32, False)],  # 1: an overlap, then anew: answered
    [(0, 0, True), (0, 8, True), (8, 32, False)],  # 2: an empty first fragment: Parameter Problem 3
    [(0, 8, True), (8, 8, True), (8, 32, False)],  # 3: an empty later one: all discarded
    [(8, 8, True), (0, 8, True), (8, 32, False)],  # 4: an empty one before anything: answered
    [(0, 8, True)],  # 5: the first fragment alone: Time Exceeded
    None,  # 6: an ICMPv6 error's first fragment alone: no Time Exceeded
]


def test_linux_reassembles_ipv6_trains_as_tapstack_diff_says() -> None:
    """The IPv6 rules tapstack follows Linux 6.18 in (2 to 6), and its deliberate differences
    ipv6-fragment-inside-a-run (0) and ipv6-fragments-after-an-overlap (1)."""
    import json
    import subprocess
    import sys

    from tests.root.test_cli_device import REPO, stack_env

    result = subprocess.run(["unshare", "--net", "--mount", sys.executable, "-c", IPV6_PROBE % (IPV6_CASES,)],
                            cwd=REPO, env=stack_env(), capture_output=True, text=True, timeout=60,
                            stdin=subprocess.DEVNULL)
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout) == {"replies": [0, 1, 2, 4], "problems": [[3, 0]], "time exceeded": [505]}
