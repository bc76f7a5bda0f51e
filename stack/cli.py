"""The ``tapstack`` command: ``run`` a host on a TAP device, ``ping`` from one, or ``demo``.

Bad input from the user (flags, addresses, a missing device, no permission) gets one line on
stderr and exit status 2; never a traceback. Traces go to stdout, logs and counters to stderr.
"""

from __future__ import annotations

import argparse
import logging
import os
import random
import stat
import sys
import time
from ipaddress import IPv4Address, IPv4Interface

from stack.l2.ethernet import MacAddress
from stack.l2.neighbor import ARP_ENTRY_LIFETIME_S
from stack.l3.host import ICMP_ERROR_BURST, ICMP_ERRORS_PER_SECOND
from stack.l3.ipv4 import DEFAULT_TTL
from stack.l3.reassembly import REASSEMBLY_TIMEOUT_S
from stack.stats import combined

log = logging.getLogger("stack")

EXIT_OK = 0
EXIT_FAILURE = 1  # ran, but the job failed (device went away, pings unanswered)
EXIT_USAGE = 2  # bad flags or addresses, device cannot be opened


class UsageError(Exception):
    """A user mistake; ``main`` prints it as one line and exits 2."""


class Parser(argparse.ArgumentParser):
    """argparse, but its errors are one line (``tapstack: error: ...``), not usage + error."""

    def error(self, message: str) -> None:  # type: ignore[override]
        sys.stderr.write(f"{self.prog}: error: {message} (see '{self.prog} --help')\n")
        raise SystemExit(EXIT_USAGE)


# ---------------------------------------------------------------------- argument types

class HostAddress(IPv4Interface):
    """An address with prefix length, remembering whether the prefix was written (TAP needs it;
    on a point-to-point TUN link a bare address is a /32)."""

    explicit_prefix: bool = True


def host_address(text: str) -> IPv4Interface:
    try:
        interface = HostAddress(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not an IPv4 address with prefix length, e.g. 192.0.2.2/24")
    interface.explicit_prefix = "/" in text
    if interface.ip.is_multicast or interface.ip.is_unspecified or interface.ip.is_loopback:
        raise argparse.ArgumentTypeError(f"{text!r} is not a unicast host address")
    if interface.network.prefixlen < 31 and interface.ip in (interface.network.network_address,
                                                             interface.network.broadcast_address):
        raise argparse.ArgumentTypeError(f"{text!r} is the network or broadcast address of its subnet")
    return interface


#: The most addresses one ``--ip FIRST-LAST/LEN`` range may hold.
MAX_RANGE = 65536


def host_addresses(text: str) -> list[IPv4Interface]:
    """``--ip``: one address (``192.0.2.2/24``) or a range (``192.0.2.10-192.0.2.250/24``)."""
    if "-" not in text:
        return [host_address(text)]
    first_text, _, rest = text.partition("-")
    last_text, slash, prefix = rest.partition("/")
    try:
        first, last = IPv4Address(first_text), IPv4Address(last_text)
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"{text!r} is not an address range, e.g. 192.0.2.10-192.0.2.250/24")
    if last < first:
        raise argparse.ArgumentTypeError(f"{text!r}: the range ends before it starts")
    count = int(last) - int(first) + 1
    if count > MAX_RANGE:
        raise argparse.ArgumentTypeError(f"{text!r} holds {count} addresses; at most {MAX_RANGE}")
    suffix = slash + prefix
    start, end = host_address(f"{first}{suffix}"), host_address(f"{last}{suffix}")
    if slash and start.network != end.network:  # (bare addresses are /32s, for a TUN)
        raise argparse.ArgumentTypeError(f"{text!r} spans more than one /{start.network.prefixlen} network")
    return [host_address(f"{IPv4Address(value)}{suffix}") for value in range(int(first), int(last) + 1)]


def ipv4_address(text: str) -> IPv4Address:
    try:
        return IPv4Address(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not an IPv4 address")


def mac_address(text: str) -> MacAddress:
    try:
        mac = MacAddress(text)
    except ValueError as error:
        raise argparse.ArgumentTypeError(str(error))
    if mac.is_multicast:
        raise argparse.ArgumentTypeError(f"{text!r} is a multicast MAC; a host needs a unicast one")
    return mac


def _number(convert, what: str, accept, requirement: str):
    """An argparse type: ``convert`` the text (else it "is not ``what``"), then ``accept`` the
    value (else say ``requirement``)."""
    def parse(text: str):
        try:
            value = convert(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{text!r} is not {what}")
        if not accept(value):
            raise argparse.ArgumentTypeError(f"{text!r} {requirement}")
        return value
    return parse


positive_int = _number(int, "a whole number", lambda v: v >= 1, "must be at least 1")
whole_number = _number(int, "a whole number", lambda v: True, "")
seconds = _number(float, "a number of seconds", lambda v: 0 <= v <= 3600,
                  "must be between 0 and 3600 seconds")
milliseconds = _number(float, "a number of milliseconds", lambda v: 0 <= v <= 60_000,
                       "must be between 0 and 60000 milliseconds")
chance = _number(float, "a number", lambda v: 0.0 <= v <= 1.0,
                 "is a chance: between 0 and 1 (0.1 is 10 %)")
positive_number = _number(float, "a number", lambda v: 0 < v <= 1e9, "must be above 0")
non_negative_number = _number(float, "a number", lambda v: 0 <= v <= 1e9, "must be 0 or more")


def bounded_int(low: int, high: int):
    return _number(int, "a whole number", lambda v: low <= v <= high, f"must be between {low} and {high}")


# ---------------------------------------------------------------------- parser

NEEDS_HYPOTHESIS = "needs hypothesis: pip install hypothesis (in a clone of tapstack: pip install '.[test]')"


def version() -> str:
    """The installed distribution's version (pyproject.toml), or "unknown" when run from a bare tree."""
    from importlib.metadata import PackageNotFoundError
    from importlib.metadata import version as distribution_version
    try:
        return distribution_version("tapstack")
    except PackageNotFoundError:
        return "unknown (not installed: pip install .)"


def build_parser() -> argparse.ArgumentParser:
    parser = Parser(prog="tapstack", description=(
        "A userspace IPv4 host in pure Python on the other end of a TAP device (Ethernet frames) "
        "or a TUN device (bare IP packets): the kernel can ping it, arp for it, scan it and "
        "capture it."), epilog="Start with: tapstack demo.  Help on a command: tapstack COMMAND -h.")
    parser.add_argument("--version", action="version", version=f"%(prog)s {version()}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=Parser)
    sub.required = True

    def host_options(p: argparse.ArgumentParser) -> None:
        device = p.add_mutually_exclusive_group(required=True)
        device.add_argument("--tap", metavar="NAME",
                            help="TAP device (Ethernet) to attach to; created when it does not exist")
        device.add_argument("--tun", metavar="NAME",
                            help="TUN device (bare IP, point to point) to attach to; created when "
                                 "it does not exist")
        p.add_argument("--ip", required=True, action="extend", type=host_addresses,
                       metavar="ADDR[/LEN]", help="the host's address: 192.0.2.2/24 on a TAP, "
                       "192.0.2.2 (a /32) or with a prefix on a TUN; or a range of hosts, "
                       "192.0.2.10-192.0.2.250/24 (repeatable)")
        p.add_argument("--peer", type=ipv4_address, metavar="ADDR",
                       help="TUN: the address at the other end (default: --host-ip's)")
        p.add_argument("--pi", action="store_true",
                       help="TUN: open without IFF_NO_PI, so every packet carries the 4-byte "
                            "packet-information header")
        p.add_argument("--mac", type=mac_address,
                       help="one MAC for all the addresses (default: each address its own, "
                            "02:00 + the address, e.g. 02:00:c0:00:02:02 for 192.0.2.2)")
        p.add_argument("--probe", action="store_true",
                       help="TAP: probe for each address before using it (RFC 5227: three ARP "
                            "probes; an address another host answers for is not used)")
        p.add_argument("--gateway", type=ipv4_address, metavar="ADDR",
                       help="next hop for destinations off the host's networks")
        p.add_argument("--host-ip", type=host_address, metavar="ADDR[/LEN]",
                       help="also configure the kernel side: add this address to the device (on a "
                            "TUN, as point to point with the host's address as peer) and bring it "
                            "up; without it the kernel side is left as it is")
        p.add_argument("--answer-broadcast", action="store_true",
                       help="answer echo requests sent to broadcast or multicast (RFC 1122 "
                            "3.2.2.6 allows ignoring them; Linux does by default)")
        choices = p.add_argument_group(
            "choices RFCs leave open (each default as Linux, or as the RFC suggests)")
        choices.add_argument("--answer-timestamp", metavar="FILE.py",
                             help="answer ICMP Timestamp requests with the function "
                             "timestamp_reply(request, now) in FILE.py (RFC 1122 3.2.2.8: a MAY; "
                             "off by default; lab 06 writes it)")
        choices.add_argument("--arp-lifetime", type=positive_number,
                             metavar="SECONDS", help="TAP: how long a learnt ARP entry is used "
                             f"(RFC 1122 2.3.2.1: entries MUST time out; default {ARP_ENTRY_LIFETIME_S:g})")
        choices.add_argument("--ttl", type=bounded_int(1, 255), default=DEFAULT_TTL,
                             help="TTL of the datagrams we send (RFC 1122 3.2.1.7: fixed and "
                             f"configurable; RFC 1700 and Linux: {DEFAULT_TTL})")
        choices.add_argument("--icmp-error-rate", type=non_negative_number,
                             default=ICMP_ERRORS_PER_SECOND, metavar="PER_SECOND",
                             help="ICMP errors sent per second at most (RFC 1122 "
                             "3.2.2: errors SHOULD be rate-limited; Linux icmp_msgs_per_sec: "
                             f"{ICMP_ERRORS_PER_SECOND:g})")
        choices.add_argument("--icmp-error-burst", type=bounded_int(0, 1_000_000),
                             default=ICMP_ERROR_BURST, metavar="N",
                             help="ICMP errors sent at once after a quiet spell; with --icmp-error-rate 0, "
                             f"all that are ever sent (Linux icmp_msgs_burst: {ICMP_ERROR_BURST})")
        choices.add_argument("--reassembly-timeout", type=positive_number,
                             default=REASSEMBLY_TIMEOUT_S, metavar="SECONDS",
                             help="give up an incomplete fragmented datagram after this long "
                             "(RFC 1122 3.3.2 suggests 60-120; Linux ipfrag_time: "
                             f"{REASSEMBLY_TIMEOUT_S:g})")
        faults = p.add_argument_group(
            "fault injection (seeded; on frames in and out unless --fault-direction says)")
        faults.add_argument("--drop", type=chance, default=0.0, metavar="P",
                            help="drop each frame with chance P (0.1: one in ten)")
        faults.add_argument("--corrupt", type=chance, default=0.0, metavar="P",
                            help="flip one random bit in each frame with chance P")
        faults.add_argument("--delay-ms", type=milliseconds, default=0.0, metavar="MS",
                            help="hold each frame this long (frames keep their order)")
        faults.add_argument("--jitter-ms", type=milliseconds, default=0.0, metavar="MS",
                            help="add a uniform -MS..+MS to each delay")
        faults.add_argument("--rate", type=positive_number, metavar="PPS",
                            help="at most PPS frames a second each way (a token bucket of one "
                            "second's frames); the rest are dropped")
        faults.add_argument("--max-size", type=bounded_int(1, 65_535 + 18), metavar="BYTES",
                            help="drop frames larger than BYTES")
        faults.add_argument("--seed", type=whole_number, metavar="N",
                            help="seed of the faults' random numbers (default: a fresh one, logged)")
        faults.add_argument("--fault-direction", choices=["both", "in", "out"], default="both",
                            help="which frames the faults touch: in (to the stack), out (from "
                            "it) or both (default)")
        p.add_argument("--trace", action="store_true",
                       help="print one tcpdump-like line per frame in and out, with the verdict")
        p.add_argument("--pcap", metavar="FILE",
                       help="write every frame in and out to a pcap file ('-' for stdout)")
        p.add_argument("-v", "--verbose", action="store_true",
                       help="debug logging: every drop with its reason")
        p.add_argument("-q", "--quiet", action="store_true",
                       help="log only warnings and errors (the counters are still printed at exit)")

    run = sub.add_parser("run", help="run a pingable host until Ctrl-C or SIGTERM")
    host_options(run)

    ping = sub.add_parser("ping", help="run a host and ping from it, like ping(8)")
    host_options(ping)
    ping.add_argument("target", type=ipv4_address, metavar="TARGET", help="address to ping")
    ping.add_argument("-c", "--count", type=positive_int, default=5, help="echo requests to send (5)")
    ping.add_argument("-i", "--interval", type=seconds, default=1.0, help="seconds between requests (1)")
    ping.add_argument("-W", "--timeout", type=seconds, default=2.0,
                      help="seconds to wait for the last reply (2)")
    ping.add_argument("-s", "--size", type=int, default=56, help="ICMP data bytes (56)")

    explain = sub.add_parser("explain", help="decode one frame field by field and say what "
                             "tapstack would answer, and why")
    explain.add_argument("hex", nargs="?", metavar="HEX",
                         help="the frame in hex (spaces and colons allowed), e.g. from tcpdump -xx")
    explain.add_argument("--pcap", metavar="FILE", help="take the frame from a pcap file instead")
    explain.add_argument("--frame", type=positive_int, default=1, metavar="N",
                         help="with --pcap: which frame, counting from 1 (1)")
    explain.add_argument("--tun", action="store_true",
                         help="the frame is a bare IP packet (a TUN device's), not Ethernet")
    explain.add_argument("--pi", action="store_true",
                         help="with --tun: the packet starts with the 4-byte packet information")
    explain.add_argument("--ip", type=host_address, metavar="ADDR[/LEN]",
                         help="the address tapstack answers as (default: the frame's destination, /24)")

    demo = sub.add_parser("demo", help="show a host being pinged, end to end, with no set-up")
    demo.add_argument("--in-memory", action="store_true",
                      help="use the in-memory wire even when running as root")
    demo.add_argument("--tun", action="store_true",
                      help="show TUN mode (bare IP, point to point) instead of TAP")
    demo.add_argument("-c", "--count", type=positive_int, default=5, help="pings to send (5)")
    demo.add_argument("-q", "--quiet", action="store_true", help="no frame trace")
    demo.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    diff = sub.add_parser("diff", help="send the same generated frames to the Linux kernel and to "
                                       "tapstack and compare their answers (root)")
    diff.add_argument("--examples", type=positive_int, default=500,
                      help="frames to generate and compare (500)")
    diff.add_argument("--seed", type=int, help="seed for the generator (default: a fixed one)")
    diff.add_argument("--tun", action="store_true",
                      help="compare over a TUN device (bare IPv4 packets, point to point)")
    diff.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    diff.add_argument("-q", "--quiet", action="store_true", help="only the result")
    fuzz = sub.add_parser("fuzz", help="send generated frames (valid and broken) to another stack "
                                       "behind a TAP device, checking that it still answers ping")
    fuzz.add_argument("--tap", required=True, metavar="NAME", help="TAP device the target is behind")
    fuzz.add_argument("--ip", required=True, type=host_address, metavar="ADDR/LEN",
                      help="our address on the link (the frames come from it)")
    fuzz.add_argument("--target", required=True, type=ipv4_address, metavar="ADDR",
                      help="the stack under test: an address on our network")
    fuzz.add_argument("--mac", type=mac_address, help="our MAC (default: 02:00 + our address)")
    fuzz.add_argument("--host-ip", type=host_address, metavar="ADDR[/LEN]",
                      help="also give the kernel side of the device this address and bring it up "
                           "(to fuzz the kernel itself: --target the same address)")
    fuzz.add_argument("--examples", type=positive_int, default=1000, help="frames to send (1000)")
    fuzz.add_argument("--batch", type=positive_int, default=50,
                      help="frames between two ping checks (50)")
    fuzz.add_argument("--seed", type=int, help="seed for the generator (default: a fixed one)")
    fuzz.add_argument("--max-time", type=seconds, default=300.0,
                      help="stop after this many seconds in all (300)")
    fuzz.add_argument("--recovery", type=seconds, default=10.0,
                      help="how long to wait for a stopped target to answer again (10)")
    fuzz.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    fuzz.add_argument("-q", "--quiet", action="store_true", help="only the result")
    lab = sub.add_parser("lab", help="the teaching labs (stack/labs/): list them, or check one")
    lab_sub = lab.add_subparsers(dest="lab_command", metavar="list|check", parser_class=Parser)
    lab_sub.required = True
    lab_sub.add_parser("list", help="list the labs")
    lab_check = lab_sub.add_parser("check", help="run a lab's checker: PASS, FAIL or TODO per item")
    lab_check.add_argument("number", metavar="NN", help="the lab's number, e.g. 02")
    lab_check.add_argument("--kernel", action="store_true",
                           help="against the Linux kernel in a private network namespace (root); "
                                "default: the in-memory wire with a second tapstack host (no root)")
    lab_check.add_argument("--answers", metavar="FILE",
                           help="check this answers file instead of the lab's answers.toml")
    lab_check.add_argument("--solution", action="store_true",
                           help="lab 06: check the reference solution.py instead of your timestamp.py")
    lab_check.add_argument("--keep", metavar="DIR",
                           help="keep each item's capture (capture.pcap) and trace (trace.txt) in DIR")
    lab_check.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    return parser


# ---------------------------------------------------------------------- commands

def configure_logging(args: argparse.Namespace) -> None:
    """Our own loggers at the level asked for; libraries (pyroute2) only say warnings."""
    verbose, quiet = getattr(args, "verbose", False), getattr(args, "quiet", False)
    level = logging.DEBUG if verbose else logging.WARNING if quiet else logging.INFO
    logging.basicConfig(level=logging.WARNING, format="tapstack: %(message)s", stream=sys.stderr)
    logging.getLogger("stack").setLevel(level)


def make_host(args: argparse.Namespace):
    """The sans-I/O host the flags describe: a TapHost, or with --tun a TunHost."""
    from stack.node import TapHost, TunHost

    if args.host_ip is not None and args.host_ip.ip in [i.ip for i in args.ip]:
        raise UsageError(f"--host-ip {args.host_ip.ip} is the stack's own address; pick another")
    choices = dict(ttl=args.ttl, icmp_errors_per_second=args.icmp_error_rate,
                   icmp_error_burst=args.icmp_error_burst, reassembly_timeout=args.reassembly_timeout)
    timestamp_reply = None
    if args.answer_timestamp is not None:
        from pathlib import Path

        from stack.lab import LabError, load_function

        try:
            timestamp_reply = load_function(Path(args.answer_timestamp), "timestamp_reply")
        except LabError as error:
            raise UsageError(f"--answer-timestamp: {error}")
    try:
        if args.tun is None:
            for option, value in (("--peer", args.peer), ("--pi", args.pi or None)):
                if value is not None:
                    raise UsageError(f"{option} is for TUN devices (--tun), not TAP")
            for interface in args.ip + ([args.host_ip] if args.host_ip else []):
                if not interface.explicit_prefix:
                    raise UsageError(f"{interface.ip} needs a prefix length on a TAP device, "
                                     f"e.g. {interface.ip}/24")
            return TapHost(args.ip, mac=args.mac, gateway=args.gateway, timestamp_reply=timestamp_reply,
                           answer_broadcast_echo=args.answer_broadcast, probe=args.probe,
                           uniform=random.Random().uniform,
                           arp_lifetime=args.arp_lifetime or ARP_ENTRY_LIFETIME_S, **choices)
        for option, value in (("--mac", args.mac), ("--gateway", args.gateway),
                              ("--probe", args.probe or None), ("--arp-lifetime", args.arp_lifetime)):
            if value is not None:
                raise UsageError(f"{option} is for TAP devices: a TUN device has no link layer")
        peer = args.peer
        if args.host_ip is not None:
            if peer is not None and peer != args.host_ip.ip:
                raise UsageError(f"--peer {peer} differs from --host-ip {args.host_ip.ip}: on a "
                                 "point-to-point link the peer is the kernel side's address")
            peer = args.host_ip.ip
        return TunHost(args.ip, peer=peer, packet_info=args.pi, timestamp_reply=timestamp_reply,
                       answer_broadcast_echo=args.answer_broadcast, **choices)
    except ValueError as error:
        raise UsageError(str(error))


class CaptureOutput:
    """``--pcap FILE``, opened before any device is touched, so that a path that cannot be
    written is one line and exit 2 with nothing changed. An existing file is emptied only once
    the device is ready (``start``), as tcpdump -w does; ``abandon`` leaves things as they were."""

    def __init__(self, path: str) -> None:
        self.path = path
        if path == "-":
            self.stream, self.created = sys.stdout.buffer, False
            return
        self.created = not os.path.lexists(path)
        try:  # not O_TRUNC: a failure after this must not have emptied the user's old capture
            descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_CLOEXEC, 0o666)
        except OSError as error:
            raise UsageError(f"--pcap {path}: {error.strerror}")
        self.stream = open(descriptor, "wb")

    def start(self):
        """The stream to write the capture to, emptied first when it is a regular file."""
        if self.path != "-" and stat.S_ISREG(os.fstat(self.stream.fileno()).st_mode):
            self.stream.truncate(0)
        return self.stream

    def abandon(self) -> None:
        if self.path == "-":
            return
        self.stream.close()
        if self.created:
            try:
                os.unlink(self.path)
            except OSError:
                pass


def open_device(args: argparse.Namespace, host, capture: CaptureOutput | None = None):
    """The TAP or TUN device, its kernel side configured when asked, wrapped for capture when asked."""
    from stack.tap.base import DeviceError
    from stack.tap.linux import TapDevice, TunDevice, interface_is_up

    name = args.tap or args.tun
    try:
        device = TapDevice(name) if args.tap else TunDevice(name, packet_info=args.pi)
    except DeviceError as error:
        raise UsageError(str(error))
    if args.host_ip is not None:
        from stack.tap.kernel import configure_address

        # On a TUN link the kernel side is point to point: its address, and ours as the peer.
        peer = host.addresses[0] if args.tun else None
        try:
            configure_address(name, args.host_ip, peer=peer)
        except DeviceError as error:
            device.close()
            raise UsageError(str(error))
    elif not interface_is_up(device.name):
        log.warning("%s is down: bring it up (ip link set %s up) or pass --host-ip", name, name)
    device = with_faults(args, device)
    if capture is not None:
        from stack.tap.pcap import PcapDevice

        # The loop's clock is monotonic; pcap wants wall-clock time.
        device = PcapDevice(device, capture.start(), timestamp_offset=time.time() - time.monotonic())
    return device


def fault_options(args: argparse.Namespace) -> dict:
    """The FaultInjector settings the flags ask for (empty: no fault injection)."""
    settings = dict(drop=args.drop, corrupt=args.corrupt, delay_ms=args.delay_ms,
                    jitter_ms=args.jitter_ms, rate=args.rate, max_size=args.max_size)
    if not any(settings.values()):
        return {}
    return dict(settings, directions=args.fault_direction)


def with_faults(args: argparse.Namespace, device):
    """The device wrapped in a FaultInjector when a fault flag is given (seeded, seed logged)."""
    settings = fault_options(args)
    if not settings:
        return device
    from stack.tap.fault import FaultInjector

    seed = args.seed if args.seed is not None else random.SystemRandom().randrange(1 << 32)
    log.info("fault injection %s, seed %d (--seed %d repeats it)",
             ", ".join(f"{k}={v}" for k, v in settings.items() if v), seed, seed)
    return FaultInjector(device, random.Random(seed), **settings)


def check_fault_options(args: argparse.Namespace) -> None:
    """Fault flags that make no sense together: one line, exit 2 (before any device is opened)."""
    if args.jitter_ms and not args.delay_ms:
        raise UsageError("--jitter-ms varies a delay: give --delay-ms too")
    if args.jitter_ms > args.delay_ms:
        raise UsageError(f"--jitter-ms {args.jitter_ms:g} is larger than --delay-ms {args.delay_ms:g}: "
                         "a frame cannot leave before it came")
    if args.seed is not None and not fault_options(args):
        raise UsageError("--seed seeds fault injection: give --drop, --corrupt, --delay-ms, "
                         "--rate or --max-size too")


def kernel_side_warning(args: argparse.Namespace, host) -> str | None:
    """Why ``--host-ip`` leaves the kernel and tapstack unable to reach each other, or None.

    TAP: the kernel routes its own network (--host-ip's prefix) to the device, and tapstack
    answers what is on its networks (or its gateway). TUN: the kernel routes the prefix around
    its peer, tapstack's first address (``ip addr add LOCAL peer PEER/LEN``; a bare --host-ip
    routes the peer alone); tapstack sends everything back over the link.
    """
    kernel = args.host_ip
    if kernel is None:
        return None
    ours = host.interfaces
    if args.tun:
        routed = IPv4Interface(f"{host.addresses[0]}/{kernel.network.prefixlen}").network
        unrouted = [i.ip for i in ours if i.ip not in routed]
        if not unrouted:
            return None
        prefix = next(p for p in range(32, -1, -1)
                      if all(i.ip in IPv4Interface(f"{kernel.ip}/{p}").network for i in ours))
        given = kernel if getattr(kernel, "explicit_prefix", True) else kernel.ip
        missed = ", ".join(str(a) for a in unrouted[:2]) + (
            f", ... ({len(unrouted)} addresses)" if len(unrouted) > 2 else "")
        only = routed.network_address if routed.prefixlen == 32 else routed
        return (f"--host-ip {given}: the kernel routes only {only} to {args.tun}, so it cannot reach "
                f"{missed}; e.g. --host-ip {kernel.ip}/{prefix}")
    networks = list(dict.fromkeys(i.network for i in ours))
    answers = args.gateway is not None or any(kernel.ip in network for network in networks)
    reaches = any(i.ip in kernel.network for i in ours)
    if answers and reaches:
        return None
    named = ", ".join(str(n) for n in networks[:3]) + (", ..." if len(networks) > 3 else "")
    taken = {i.ip for i in ours}
    free = next((a for a in ours[0].network.hosts() if a not in taken), None)
    example = f"; e.g. --host-ip {free}/{ours[0].network.prefixlen}" if free is not None else ""
    if not reaches and not answers:
        return (f"--host-ip {kernel} is on none of the host's networks ({named}): the kernel has no "
                f"route to tapstack, nor tapstack to the kernel{example}")
    if not reaches:
        return (f"--host-ip {kernel}: the kernel's network {kernel.network} holds none of the host's "
                f"addresses, so it has no route to them{example}")
    return (f"--host-ip {kernel} is on none of the host's networks ({named}): tapstack cannot answer "
            f"the kernel (give --gateway, or the host a prefix that holds {kernel.ip})")


def serve(args: argparse.Namespace, agents=(), until=None, live_status: bool = False,
          check=None) -> tuple[int, object]:
    """Run the host the flags describe until ``until(agents)``. Everything the user gave is
    checked (``check(host)`` too) and the capture file opened before any device is touched."""
    from stack.loop import Loop
    from stack.tap.base import DeviceError
    from stack.trace import Tracer

    check_fault_options(args)
    host = make_host(args)
    if check is not None:
        check(host)
    warning = kernel_side_warning(args, host)
    if warning is not None:
        log.warning("%s", warning)
    capture = CaptureOutput(args.pcap) if args.pcap else None
    try:
        device = open_device(args, host, capture)
    except BaseException:
        if capture is not None:
            capture.abandon()
        raise
    host.mtu = device.mtu
    try:
        agent_list = [make(host, device) for make in agents]
    except UsageError:
        device.close()
        raise
    loop = Loop()
    tracer = (Tracer(sys.stdout, host.medium, packet_info=getattr(host, "packet_info", False))
              if args.trace and args.pcap != "-" else None)
    status_line = None
    if live_status:
        from stack import status as live

        if live.wanted(sys.stderr, sys.stdout, args.trace and args.pcap != "-", args.verbose):
            status_line = live.StatusLine(sys.stderr, lambda: host.stats)
            for handler in logging.getLogger().handlers:
                handler.addFilter(live.EraseBeforeLogging(status_line))
    loop.attach(device, host, agents=agent_list + ([status_line] if status_line else []), tracer=tracer)
    loop.install_signal_handlers()
    log.info("host %s %s (mtu %d); Ctrl-C to stop", describe_addresses(host.interfaces),
             describe_link(host, args), device.mtu)
    status = EXIT_OK
    try:
        loop.run(until=(lambda: until(agent_list)) if until else None)
    except DeviceError as error:  # gone, or failing in a way it cannot recover from
        print(f"tapstack: {error}", file=sys.stderr)
        status = EXIT_FAILURE
    finally:
        loop.close()
        device.close()
        if status_line is not None:
            status_line.erase()  # the full table below replaces it
    # Like tcpdump's closing counts, the summary is printed even with -q (which silences logs).
    print(combined(host.stats, device=device.stats, loop=loop.stats).summary(), file=sys.stderr)
    return status, agent_list


def describe_addresses(interfaces: list[IPv4Interface]) -> str:
    if len(interfaces) <= 4:
        return ", ".join(str(i) for i in interfaces)
    return f"{interfaces[0]}, {interfaces[1]}, ... {interfaces[-1]} ({len(interfaces)} addresses)"


def describe_link(host, args: argparse.Namespace) -> str:
    if args.tun:
        return f"on {args.tun}, peer {host.peer}"
    if len(host.addresses) > 1 and args.mac is None:
        return f"on {args.tap}, each at its own MAC ({host.mac} for {host.addresses[0]}, ...)"
    return f"at {host.mac} on {args.tap}"


def cmd_run(args: argparse.Namespace) -> int:
    status, _ = serve(args, live_status=True)
    return status


def cmd_ping(args: argparse.Namespace) -> int:
    from stack.ping import PingSession

    if not 0 <= args.size <= 65507:
        raise UsageError(f"-s {args.size}: the ICMP data size must be between 0 and 65507")

    def check(host):
        try:
            host.ip.route(args.target)
        except ValueError as error:
            raise UsageError(str(error))

    def make(host, device):
        print(f"PING {args.target} {args.size}({args.size + 28}) bytes of data.", flush=True)
        return PingSession(host, args.target, count=args.count, interval=args.interval,
                           timeout=args.timeout, size=args.size, identifier=os.getpid() & 0xFFFF,
                           report=lambda line: print(line, flush=True))

    status, agents = serve(args, agents=[make], until=lambda agents: agents[0].done(), check=check)
    session = agents[0]
    print(session.summary(), flush=True)
    if status != EXIT_OK:
        return status
    return EXIT_OK if session.received == session.count else EXIT_FAILURE


#: pcap link types: Ethernet, and the raw-IP ones (101 LINKTYPE_RAW; 12 and 14, DLT_RAW on
#: some systems); a capture's link type says what its frames are.
PCAP_MEDIA = {1: "ethernet", 101: "ip", 12: "ip", 14: "ip"}


def read_pcap_frame(path: str, number: int):
    """Record ``number`` (from 1) of a pcap file, its medium and the capture's snapshot length;
    UsageError when it cannot be had (no such frame, the file ends inside it or before it)."""
    from stack.tap.pcap import CaptureCutShort, CaptureError, PcapReader

    try:
        with open(path, "rb") as file:
            reader = PcapReader(file)
            medium = PCAP_MEDIA.get(reader.linktype)
            if medium is None:
                raise UsageError(f"--pcap {path}: link type {reader.linktype} is neither "
                                 "Ethernet (1) nor raw IP (101)")
            count = 0
            for record in reader:
                count = record.frame
                if record.frame == number:
                    return record, medium, reader.snaplen
    except OSError as error:
        raise UsageError(f"--pcap {path}: {error.strerror}")
    except CaptureCutShort as error:  # as tshark says it: "cut short in the middle of a packet"
        past = f", so it has no frame {number}" if number > error.frame else ""
        raise UsageError(f"--pcap {path}: {error}{past}")
    except CaptureError as error:
        raise UsageError(f"--pcap {path}: {error}")
    raise UsageError(f"--pcap {path} has no frames" if count == 0 else
                     f"--pcap {path} has fewer than {number} frames (it holds {count})")


def cmd_explain(args: argparse.Namespace) -> int:
    from stack.explain import explain

    if (args.hex is None) == (args.pcap is None):
        raise UsageError("give the frame either as HEX or with --pcap FILE")
    if args.pi and not args.tun:
        raise UsageError("--pi is for TUN packets: give --tun too")
    medium = "ip" if args.tun else "ethernet"
    original_length = None
    if args.pcap is not None:
        record, medium, snaplen = read_pcap_frame(args.pcap, args.frame)
        frame = record.data
        if record.truncated:  # the capture's snapshot length cut it: explain what is there
            original_length = record.original_length
            sys.stdout.write(f"frame {record.frame}: {len(frame)} of {original_length} bytes captured "
                             f"(the capture's snapshot length is {snaplen})\n")
    else:
        text = "".join(args.hex.split()).replace(":", "").removeprefix("0x")
        if len(text) % 2:
            raise UsageError(f"the hex has an odd number of digits ({len(text)}): a byte is two")
        try:
            frame = bytes.fromhex(text)
        except ValueError:
            bad = next((c for c in text if c not in "0123456789abcdefABCDEF"), "?")
            raise UsageError(f"{bad!r} is not a hex digit")
    sys.stdout.write(explain(frame, medium, packet_info=args.pi, address=args.ip,
                             original_length=original_length))
    return EXIT_OK


def cmd_demo(args: argparse.Namespace) -> int:
    from stack.demo import run_demo

    return run_demo(count=args.count, in_memory=args.in_memory, trace=not args.quiet, tun=args.tun)


def cmd_diff(args: argparse.Namespace) -> int:
    from stack import diff
    from stack.tap.base import DeviceError
    from stack.tap.kernel import enter_private_namespace

    if os.geteuid() != 0:
        raise UsageError("tapstack diff needs root: the kernel under test runs in a private "
                         "network namespace it creates")
    try:
        import hypothesis  # noqa: F401
    except ImportError:
        raise UsageError(f"tapstack diff {NEEDS_HYPOTHESIS}")
    try:
        enter_private_namespace()
        medium = "ip" if args.tun else "ethernet"
        kernel = diff.KernelHost(medium)
    except DeviceError as error:
        raise UsageError(str(error))
    comparison = diff.Comparison(kernel, diff.StackHost(medium), medium)
    report = (lambda line: None) if args.quiet else (lambda line: print(line, flush=True))
    try:
        outcome = diff.run_examples(comparison, args.examples, args.seed, progress=report)
    finally:
        kernel.close()
    print(diff.summary(comparison.tally), flush=True)
    if outcome is None:
        return EXIT_OK
    print("the smallest frame on which tapstack and Linux disagree:", flush=True)
    print(outcome.describe(), flush=True)
    return EXIT_FAILURE


def cmd_fuzz(args: argparse.Namespace) -> int:
    from stack import fuzz
    from stack.loop import Loop
    from stack.node import TapHost
    from stack.tap.base import DeviceError
    from stack.tap.linux import TapDevice

    if args.target not in args.ip.network or args.target in (args.ip.ip, args.ip.network.network_address,
                                                            args.ip.network.broadcast_address):
        raise UsageError(f"--target {args.target} must be another host on {args.ip.network}, the "
                         "network of --ip (frames never leave the link)")
    try:
        import hypothesis  # noqa: F401
    except ImportError:
        raise UsageError(f"tapstack fuzz {NEEDS_HYPOTHESIS}")
    host = TapHost([args.ip], mac=args.mac)
    try:
        device = TapDevice(args.tap)
    except DeviceError as error:
        raise UsageError(str(error))
    loop = Loop()
    try:
        if args.host_ip is not None:
            from stack.tap.kernel import configure_address

            configure_address(device.name, args.host_ip)
        host.mtu = device.mtu
        loop.install_signal_handlers()
        fuzzer = fuzz.Fuzzer(loop, device, host, args.target, args.max_time,
                             report=(lambda line: None) if args.quiet else (lambda line: print(line, flush=True)))
        if not fuzzer.alive():
            print(f"tapstack: {args.target} does not answer ping, so there is nothing to check "
                  "against; is it up and on this link?", file=sys.stderr)
            return EXIT_FAILURE
        frames = fuzz.fuzz_frames(args.ip, host.mac, args.target, fuzzer.target_mac())
        result = fuzzer.run(frames, args.examples, args.batch, args.seed, args.recovery)
    except DeviceError as error:
        print(f"tapstack: {error}", file=sys.stderr)
        return EXIT_FAILURE
    finally:
        loop.close()
        device.close()
    print(result.describe(), flush=True)
    return EXIT_FAILURE if result.stopped else EXIT_OK


def cmd_lab(args: argparse.Namespace) -> int:
    from pathlib import Path

    from stack import lab

    if args.lab_command == "list":
        directories = lab.lab_directories()
        if not directories:
            raise UsageError(f"no labs found in {lab.LABS_DIRECTORY} (set TAPSTACK_LABS)")
        for directory in directories:
            print(f"{directory.name[:2]}  {lab.title_of(directory)}  ({directory})")
        return EXIT_OK
    logging.getLogger("stack").setLevel(logging.DEBUG if args.verbose else logging.WARNING)
    try:
        chosen = lab.load(args.number)
    except lab.LabError as error:
        raise UsageError(str(error))
    if args.solution and not (chosen.directory / "solution.py").is_file():
        raise UsageError(f"lab {chosen.number} has no solution.py to check (--solution is for lab 06)")
    answers = Path(args.answers) if args.answers else None
    if answers is not None and not answers.is_file():
        raise UsageError(f"--answers {answers}: no such file")
    mode = "wire"
    if args.kernel:
        from stack.demo import kernel_demo_unavailable
        from stack.tap.base import DeviceError
        from stack.tap.kernel import enter_private_namespace

        reason = kernel_demo_unavailable()  # the lab's kernel mode needs what the demo's does
        if reason is not None:
            raise UsageError(f"--kernel: {reason}; without --kernel the lab runs on the in-memory wire")
        try:
            enter_private_namespace()  # the lab's devices live and die in it, never on this machine's network
        except DeviceError as error:
            raise UsageError(f"--kernel: {error}")
        mode = "kernel"
    wire = ("the Linux kernel in a private network namespace" if mode == "kernel"
            else "the in-memory wire, a second tapstack host as the peer")
    print(f"{chosen.title} ({wire})", flush=True)
    outcomes = lab.check(chosen, mode, answers, args.solution, Path(args.keep) if args.keep else None,
                         report=lambda outcome: print(lab.format_outcome(outcome), flush=True))
    print(lab.summary(outcomes), flush=True)
    if args.keep:
        print(f"captures and traces kept in {args.keep}", flush=True)
    return EXIT_FAILURE if any(o.status == "fail" for o in outcomes) else EXIT_OK


COMMANDS = {"run": cmd_run, "ping": cmd_ping, "explain": cmd_explain, "demo": cmd_demo,
            "diff": cmd_diff, "fuzz": cmd_fuzz, "lab": cmd_lab}


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    configure_logging(args)
    try:
        return COMMANDS[args.command](args)
    except UsageError as error:
        print(f"tapstack: error: {error}", file=sys.stderr)
        return EXIT_USAGE
    except KeyboardInterrupt:
        return EXIT_OK
    except BrokenPipeError:
        return EXIT_OK


if __name__ == "__main__":
    raise SystemExit(main())
