"""Behaviours RFCs leave open: one ``HostChoices``, given to the hosts as keyword arguments or
as ``choices=`` (each behaviour test runs both ways), and built by the CLI from its flags."""

from __future__ import annotations

import ast
import dataclasses
import inspect

import pytest

import stack.choices
from stack import HostChoices, TapHost, TunHost
from stack.buffers import join
from stack.cli import build_parser, make_host
from stack.cli.arguments import UsageError
from stack.cli.wiring import host_choices
from stack.l3.ipv4 import Ipv4Packet
from stack.testing import frames

K, H = frames.KERNEL_IP, frames.HOST_IP


def by_keywords(host_class, *args, **choices):
    return host_class(*args, **choices)


def by_choices(host_class, *args, **choices):
    return host_class(*args, choices=HostChoices(**choices))


#: Each behaviour test builds its host both ways: the two must agree.
BOTH_WAYS = pytest.mark.parametrize("make", [by_keywords, by_choices], ids=["keywords", "choices"])


@BOTH_WAYS
def test_rfc1122_3_2_1_7_the_ttl_of_our_datagrams_is_configurable(make):
    host = make(TunHost, [H], K, ttl=7)
    [reply] = host.receive(frames.echo_request_frame()[14:], 1.0)
    assert Ipv4Packet.parse(join(reply)).ttl == 7
    assert Ipv4Packet.parse(join(TunHost([H], peer=K).receive(frames.echo_request_frame()[14:], 1.0)[0])).ttl == 64


@BOTH_WAYS
@pytest.mark.parametrize("ttl", [0, 256])
def test_rfc1122_3_2_1_7_a_ttl_of_zero_or_above_255_is_refused(make, ttl):
    with pytest.raises(ValueError, match="TTL"):
        make(TunHost, [H], ttl=ttl)


@BOTH_WAYS
def test_rfc1122_2_3_2_1_arp_entries_live_as_long_as_configured(make):
    host = make(TapHost, [f"{H}/24"], frames.HOST_MAC, arp_lifetime=5.0)
    host.receive(frames.arp_frame(1), 0.0)  # learns the kernel
    assert len(host.receive(frames.echo_request_frame(), 4.9)) == 1  # an echo reply, no ARP
    out = host.receive(frames.echo_request_frame(), 5.0)  # expired: the reply waits for ARP
    assert host.stats["arp_requests_sent"] == 1 and host.stats["arp_queued"] == 1 and len(out) == 1
    with pytest.raises(ValueError, match="lifetime"):
        make(TapHost, [f"{H}/24"], arp_lifetime=0)


def udp_to_closed_port() -> bytes:
    return frames.ipv4_datagram(K, H, 17, b"\x30\x39\x00\x35\x00\x0c\x00\x00abcd")


@BOTH_WAYS
def test_rfc1122_3_2_2_the_icmp_error_rate_and_burst_are_configurable(make):
    host = make(TunHost, [H], K, icmp_errors_per_second=1.0, icmp_error_burst=2)
    sent = [len(host.receive(udp_to_closed_port(), 10.0)) for _ in range(5)]
    assert sent == [1, 1, 0, 0, 0] and host.stats["icmp_error_rate_limited"] == 3
    assert len(host.receive(udp_to_closed_port(), 11.0)) == 1  # one token a second
    silent = make(TunHost, [H], K, icmp_errors_per_second=0, icmp_error_burst=0)
    assert silent.receive(udp_to_closed_port(), 1.0) == []


@BOTH_WAYS
def test_rfc1122_3_3_2_the_reassembly_timeout_is_configurable(make):
    host = make(TunHost, [H], K, reassembly_timeout=2.0)
    first = frames.ipv4_datagram(K, H, 1, frames.icmp_echo(8, 1, 1, bytes(64))[:16], identification=9,
                                 more_fragments=True)
    host.receive(first, 10.0)
    assert host.next_deadline(10.0) == pytest.approx(12.0)
    assert host.poll(11.9) == []
    [time_exceeded] = host.poll(12.0)
    assert join(time_exceeded)[20] == 11  # ICMP Time Exceeded
    assert host.stats.drops == {"ipv4_reassembly_timeout": 1}


@BOTH_WAYS
def test_rfc1122_3_2_2_6_echo_requests_to_broadcast_are_answered_only_when_chosen(make):
    to_broadcast = frames.echo_request_frame(dst_mac=frames.BROADCAST_MAC, dst_ip="192.0.2.255")
    host = make(TapHost, [f"{H}/24"], frames.HOST_MAC)
    host.receive(frames.arp_frame(1), 0.0)  # learns the kernel, so a reply needs no ARP
    assert host.receive(to_broadcast, 1.0) == []
    answering = make(TapHost, [f"{H}/24"], frames.HOST_MAC, answer_broadcast_echo=True)
    answering.receive(frames.arp_frame(1), 0.0)
    [reply] = answering.receive(to_broadcast, 1.0)
    assert Ipv4Packet.parse(join(reply)[14:]).source == answering.addresses[0]


@BOTH_WAYS
def test_rfc5227_2_1_an_address_is_probed_for_only_when_chosen(make):
    def first_arp_sender(host) -> str:
        deadline = host.next_deadline(0.0)
        [frame] = host.poll(deadline)
        return ".".join(str(b) for b in join(frame)[28:32])  # the ARP sender protocol address

    assert first_arp_sender(make(TapHost, [f"{H}/24"])) == H  # an announcement
    assert first_arp_sender(make(TapHost, [f"{H}/24"], probe=True)) == "0.0.0.0"  # a probe


@BOTH_WAYS
def test_rfc1122_3_2_2_8_timestamp_requests_are_answered_only_with_a_function(make):
    from stack.l3.icmp import IcmpMessage

    def timestamp_reply(request: IcmpMessage, now: float) -> IcmpMessage:
        return IcmpMessage(14, 0, request.rest_of_header, bytes(request.payload[:4]) + bytes(8))

    request = bytes(IcmpMessage(13, 0, b"\x00\x01\x00\x02", bytes(12)))
    datagram = frames.ipv4_datagram(K, H, 1, request)
    assert make(TunHost, [H], K).receive(datagram, 1.0) == []
    [reply] = make(TunHost, [H], K, timestamp_reply=timestamp_reply).receive(datagram, 1.0)
    assert join(reply)[20] == 14  # ICMP Timestamp Reply


# ---------------------------------------------------------------------- one HostChoices


def test_the_hosts_take_the_fields_of_host_choices_as_keyword_arguments():
    assert TapHost([f"{H}/24"]).choices == TunHost([H]).choices == HostChoices()
    chosen = HostChoices(answer_broadcast_echo=True, ttl=9, icmp_errors_per_second=2.0, icmp_error_burst=3,
                         reassembly_timeout=4.0, timestamp_reply=print)
    as_keywords = dataclasses.asdict(chosen)
    assert TunHost([H], **as_keywords).choices == TunHost([H], choices=chosen).choices == chosen
    tap = dataclasses.replace(chosen, probe=True, arp_lifetime=5.0)
    assert TapHost([f"{H}/24"], **dataclasses.asdict(tap)).choices == tap


def test_keyword_arguments_that_agree_with_choices_are_accepted_and_a_conflict_is_a_value_error():
    chosen = HostChoices(ttl=9)
    assert TapHost([f"{H}/24"], ttl=9, choices=chosen).choices is chosen
    with pytest.raises(ValueError, match=r"ttl=7 but choices.ttl=9"):
        TapHost([f"{H}/24"], ttl=7, choices=chosen)
    with pytest.raises(ValueError, match=r"arp_lifetime=5.0 but choices.arp_lifetime=60.0"):
        TapHost([f"{H}/24"], arp_lifetime=5.0, ttl=9, choices=chosen)
    with pytest.raises(ValueError, match="reassembly_timeout"):
        TunHost([H], reassembly_timeout=1.0, choices=HostChoices())
    with pytest.raises(TypeError, match="tll"):
        TapHost([f"{H}/24"], tll=9)


@pytest.mark.parametrize("given", [dict(probe=True), dict(arp_lifetime=5.0)], ids=["probe", "arp_lifetime"])
def test_a_link_layer_choice_on_a_tun_host_is_a_value_error(given):
    [name] = given
    for build in (lambda: TunHost([H], **given), lambda: TunHost([H], choices=HostChoices(**given))):
        with pytest.raises(ValueError, match=f"{name} is for TAP hosts"):
            build()
    assert TunHost([H], **{name: getattr(HostChoices(), name)}).choices == HostChoices()


def test_host_choices_are_frozen_and_checked_when_made():
    with pytest.raises(dataclasses.FrozenInstanceError):
        HostChoices().ttl = 1  # type: ignore[misc]
    for bad, match in [(dict(ttl=0), "TTL"), (dict(arp_lifetime=0.0), "lifetime"),
                       (dict(icmp_errors_per_second=-1.0), "negative"), (dict(icmp_error_burst=-1), "negative"),
                       (dict(reassembly_timeout=0.0), "reassembly timeout")]:
        with pytest.raises(ValueError, match=match):
            HostChoices(**bad)


def test_each_choice_has_its_default_from_the_module_that_owns_it_and_an_rfc_citation():
    """Read from the source: every field's default is a name (the owner's constant) or a plain
    False/None, and the comment line above it cites an RFC."""
    source = inspect.getsource(stack.choices)
    lines = source.splitlines()
    [cls] = [n for n in ast.parse(source).body if isinstance(n, ast.ClassDef) and n.name == "HostChoices"]
    fields = [n for n in cls.body if isinstance(n, ast.AnnAssign)]
    assert [f.target.id for f in fields] == [f.name for f in dataclasses.fields(HostChoices)]
    for field in fields:
        default = field.value
        plain = isinstance(default, ast.Constant) and default.value in (False, None)
        assert isinstance(default, ast.Name) or plain, f"{field.target.id}: a number restated, not the owner's"
        start = field.lineno - 2  # the comment block right above the field, from its first line
        while lines[start - 1].strip().startswith("#:"):
            start -= 1
        assert lines[start].strip().startswith("#: RFC "), f"{field.target.id}: no one-line RFC citation"


# ---------------------------------------------------------------------- the CLI builds one


def parsed(*flags: str, medium: str = "tap", command: str = "run"):
    device = ["--tap", "tap0", "--ip", f"{H}/24"] if medium == "tap" else ["--tun", "tun0", "--ip", H]
    return build_parser().parse_args([command, *device, *flags, *([K] if command == "ping" else [])])


@pytest.mark.parametrize("command", ["run", "ping"])
@pytest.mark.parametrize("medium", ["tap", "tun"])
def test_the_cli_defaults_are_the_host_choices_defaults(command, medium):
    args = parsed(medium=medium, command=command)
    assert host_choices(args) == HostChoices()
    assert make_host(args).choices == HostChoices()


def a_timestamp_reply_file(directory):
    path = directory / "timestamp.py"
    path.write_text("def timestamp_reply(request, now):\n    return None\n")
    return path


#: Each choice's flag, a value away from the default, and what the field then holds.
FLAGS = {
    "answer_broadcast_echo": (["--answer-broadcast"], True),
    "probe": (["--probe"], True),
    "arp_lifetime": (["--arp-lifetime", "5"], 5.0),
    "ttl": (["--ttl", "7"], 7),
    "icmp_errors_per_second": (["--icmp-error-rate", "2.5"], 2.5),
    "icmp_error_burst": (["--icmp-error-burst", "3"], 3),
    "reassembly_timeout": (["--reassembly-timeout", "4"], 4.0),
    "timestamp_reply": (["--answer-timestamp", "FILE"], "timestamp_reply"),
    "dad_transmits": (["--no-dad"], 0),
}


def test_every_choice_has_a_flag():
    assert set(FLAGS) == {f.name for f in dataclasses.fields(HostChoices)}


@pytest.mark.parametrize("field", sorted(FLAGS))
def test_each_flag_lands_in_its_field_and_nowhere_else(field, tmp_path):
    flags, expected = FLAGS[field]
    flags = [str(a_timestamp_reply_file(tmp_path)) if flag == "FILE" else flag for flag in flags]
    args = parsed(*flags)
    choices = make_host(args).choices
    value = getattr(choices, field)
    assert (value.__name__ if callable(value) else value) == expected
    assert getattr(HostChoices(), field) != value
    assert dataclasses.replace(choices, **{field: getattr(HostChoices(), field)}) == HostChoices()
    assert dataclasses.replace(host_choices(args), timestamp_reply=choices.timestamp_reply) == choices


def test_the_cli_refuses_link_layer_choices_on_a_tun_device():
    for flags in (["--probe"], ["--arp-lifetime", "5"]):
        with pytest.raises(UsageError, match=f"{flags[0]} is for TAP devices"):
            make_host(parsed(*flags, medium="tun"))
