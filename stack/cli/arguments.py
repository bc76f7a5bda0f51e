"""The command line's words: every subcommand and option, their types, and the exit statuses.

Each argument type turns text into a value or raises ``argparse.ArgumentTypeError`` with one
line for the user; nothing here opens a device or a file.
"""

from __future__ import annotations

import argparse
import sys
from dataclasses import dataclass
from ipaddress import IPv4Address, IPv4Interface, IPv6Address, IPv6Interface, ip_address

from stack.choices import HostChoices
from stack.l2.ethernet import MacAddress

#: The choices' defaults, for the help texts: a choice flag not given is left out of the parsed
#: arguments (``argparse.SUPPRESS``) and keeps this default (``wiring.host_choices``).
DEFAULT_CHOICES = HostChoices()

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


class HostAddress6(IPv6Interface):
    """``HostAddress`` for IPv6: a bare address is a /128 on a TUN link; a TAP needs the prefix."""

    explicit_prefix: bool = True


def host_address(text: str) -> IPv4Interface | IPv6Interface:
    """``--ip`` and ``--host-ip``: one IPv4 or IPv6 address with its prefix length."""
    try:
        interface: HostAddress | HostAddress6 = HostAddress6(text) if ":" in text else HostAddress(text)
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"{text!r} is not an address with prefix length, e.g. 192.0.2.2/24 or 2001:db8::2/64")
    interface.explicit_prefix = "/" in text
    ip = interface.ip
    if ip.is_multicast or ip.is_unspecified or ip.is_loopback:
        raise argparse.ArgumentTypeError(f"{text!r} is not a unicast host address")
    if interface.version == 6:
        if ip.ipv4_mapped is not None:
            raise argparse.ArgumentTypeError(f"{text!r} is an IPv4-mapped address; give the IPv4 address itself")
        return interface
    if interface.network.prefixlen < 31 and ip in (interface.network.network_address,
                                                   interface.network.broadcast_address):
        raise argparse.ArgumentTypeError(f"{text!r} is the network or broadcast address of its subnet")
    return interface


def ipv4_host_address(text: str) -> IPv4Interface:
    """``host_address``, IPv4 only (the commands that do not speak IPv6 yet)."""
    interface = host_address(text)
    if interface.version != 4:
        raise argparse.ArgumentTypeError(f"{text!r}: this command speaks IPv4 only; e.g. 192.0.2.2/24")
    return interface


#: The most addresses one ``--ip FIRST-LAST/LEN`` range may hold.
MAX_RANGE = 65536
#: The most queues ``run --queues`` opens: one worker process each, and a machine has few cores.
MAX_QUEUES = 16


def host_addresses(text: str) -> list[IPv4Interface | IPv6Interface]:
    """``--ip``: one address (``192.0.2.2/24``, ``2001:db8::2/64``) or a range
    (``192.0.2.10-192.0.2.250/24``, ``2001:db8::10-2001:db8::ff/64``)."""
    if "-" not in text:
        return [host_address(text)]
    first_text, _, rest = text.partition("-")
    last_text, slash, prefix = rest.partition("/")
    try:
        first, last = ip_address(first_text), ip_address(last_text)
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"{text!r} is not an address range, e.g. 192.0.2.10-192.0.2.250/24")
    if first.version != last.version:
        raise argparse.ArgumentTypeError(f"{text!r} mixes IPv4 and IPv6")
    if last < first:
        raise argparse.ArgumentTypeError(f"{text!r}: the range ends before it starts")
    count = int(last) - int(first) + 1
    if count > MAX_RANGE:
        raise argparse.ArgumentTypeError(f"{text!r} holds {count} addresses; at most {MAX_RANGE}")
    suffix = slash + prefix
    start, end = host_address(f"{first}{suffix}"), host_address(f"{last}{suffix}")
    if slash and start.network != end.network:  # (bare addresses are /32s or /128s, for a TUN)
        raise argparse.ArgumentTypeError(f"{text!r} spans more than one /{start.network.prefixlen} network")
    kind = type(first)
    return [host_address(f"{kind(value)}{suffix}") for value in range(int(first), int(last) + 1)]


def any_address(text: str) -> IPv4Address | IPv6Address:
    try:
        return ip_address(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not an IPv4 or IPv6 address")


def split_host_ips(args: argparse.Namespace) -> None:
    """``--host-ip`` may be given once per family: ``args.host_ip`` becomes the IPv4 one (or
    None) and ``args.host_ip6`` the IPv6 one (or None)."""
    given = getattr(args, "host_ip", None)
    if not isinstance(given, list):
        args.host_ip6 = getattr(args, "host_ip6", None)
        return
    by_version: dict[int, IPv4Interface | IPv6Interface] = {}
    for interface in given:
        if interface.version in by_version:
            raise UsageError(f"--host-ip is given twice for IPv{interface.version} "
                             f"({by_version[interface.version]} and {interface}); once per family")
        by_version[interface.version] = interface
    args.host_ip, args.host_ip6 = by_version.get(4), by_version.get(6)


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
microseconds = _number(int, "a whole number of microseconds", lambda v: 0 <= v <= 1_000_000,
                       "must be between 0 and 1000000 microseconds")
milliseconds = _number(float, "a number of milliseconds", lambda v: 0 <= v <= 60_000,
                       "must be between 0 and 60000 milliseconds")
chance = _number(float, "a number", lambda v: 0.0 <= v <= 1.0,
                 "is a chance: between 0 and 1 (0.1 is 10 %)")
positive_number = _number(float, "a number", lambda v: 0 < v <= 1e9, "must be above 0")
non_negative_number = _number(float, "a number", lambda v: 0 <= v <= 1e9, "must be 0 or more")


_SIZE_SUFFIXES = {"": 1, "K": 1 << 10, "M": 1 << 20, "G": 1 << 30}


def _byte_size(text: str) -> int:
    """``10M`` is 10 MiB: a whole number with an optional K, M or G (powers of 1024)."""
    stripped = text.strip().upper().removesuffix("B")
    suffix = stripped[-1:] if stripped[-1:] in ("K", "M", "G") else ""
    number = stripped[:len(stripped) - len(suffix)]
    if not number.isdigit():
        raise ValueError(text)
    return int(number) * _SIZE_SUFFIXES[suffix]


byte_size = _number(_byte_size, "a size in bytes (a whole number, optionally with K, M or G)",
                    lambda v: 1 <= v <= 1 << 50, "must be at least 1 byte")


def bounded_int(low: int, high: int):
    return _number(int, "a whole number", lambda v: low <= v <= high, f"must be between {low} and {high}")


#: The services ``--tcp`` opens, and those ``--udp`` opens (RFC 862, 863, 864, 867; HTTP/1.1;
#: ``banner:TEXT``).
TCP_SERVICES = ("echo", "discard", "chargen", "daytime", "http", "banner")
UDP_SERVICES = ("echo", "discard", "daytime")
#: A port given without a service runs the one its number is known for, else discard.
WELL_KNOWN_SERVICES = {7: "echo", 9: "discard", 13: "daytime", 19: "chargen", 80: "http", 8080: "http"}
#: The longest ``banner:TEXT``: one line, as SSH's (RFC 4253 4.2: at most 255 characters).
MAX_BANNER = 255


@dataclass(frozen=True, slots=True)
class PortService:
    """One ``--tcp``/``--udp`` word: ports ``first``..``last`` run ``service`` (with ``text``
    for a banner; "" when none was named: each port its well-known one), on ``address`` only or
    (None) on every address of the stack."""

    protocol: str
    first: int
    last: int
    service: str = ""
    text: str = ""
    address: IPv4Address | IPv6Address | None = None

    @property
    def ports(self) -> range:
        return range(self.first, self.last + 1)

    def service_of(self, port: int) -> str:
        """The service ``port`` runs: the one named, else the one its number is known for
        (``WELL_KNOWN_SERVICES``), else discard."""
        if self.service:
            return self.service
        known = TCP_SERVICES if self.protocol == "tcp" else UDP_SERVICES
        name = WELL_KNOWN_SERVICES.get(port, "discard")
        return name if name in known else "discard"


def _port_service(protocol: str, text: str) -> PortService:
    """``[ADDRESS:]PORT[-PORT][:SERVICE]``; an IPv6 address in brackets (``[2001:db8::2]:80``),
    as in a URL (RFC 3986 3.2.2); ``banner:TEXT`` takes the rest of the word as its text."""
    known = TCP_SERVICES if protocol == "tcp" else UDP_SERVICES
    example = "80:http" if protocol == "tcp" else "7:echo"
    rest, address = text, None
    if rest.startswith("["):
        inside, bracket, rest = rest[1:].partition("]:")
        if not bracket:
            raise argparse.ArgumentTypeError(f"{text!r}: an IPv6 address is written [ADDRESS]:PORT")
        try:
            address = IPv6Address(inside)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{text!r}: {inside!r} is not an IPv6 address")
    else:
        head, colon, tail = rest.partition(":")
        if "." in head:
            try:
                address = IPv4Address(head)
            except ValueError:
                raise argparse.ArgumentTypeError(f"{text!r}: {head!r} is not an IPv4 address")
            rest = tail
            if not colon:
                raise argparse.ArgumentTypeError(f"{text!r} names no port, e.g. {head}:{example}")
    ports, _, service = rest.partition(":")
    first_text, dash, last_text = ports.partition("-")
    if not first_text.isdigit() or (dash and not last_text.isdigit()):
        raise argparse.ArgumentTypeError(
            f"{text!r} is not [ADDRESS:]PORT[-PORT][:SERVICE], e.g. {example}")
    first = int(first_text)
    last = int(last_text) if dash else first
    if not 1 <= first <= last <= 65535:
        raise argparse.ArgumentTypeError(f"{text!r}: ports run from 1 to 65535, first to last")
    name, _, banner = service.partition(":")
    if service and name not in known:
        raise argparse.ArgumentTypeError(
            f"{text!r}: {name!r} is not a {protocol.upper()} service; one of: {', '.join(known)}")
    if name == "banner":
        if not banner or len(banner) > MAX_BANNER or not banner.isprintable():
            raise argparse.ArgumentTypeError(
                f"{text!r}: banner:TEXT needs 1 to {MAX_BANNER} printable characters")
    elif banner:
        raise argparse.ArgumentTypeError(f"{text!r}: only banner takes a text ({name} does not)")
    return PortService(protocol, first, last, name, banner, address)


#: The longest ``--http-body``: a small page, held once in memory and sent on every request.
MAX_HTTP_BODY = 65536


def http_body(text: str) -> bytes:
    """``--http-body``: the text of the http service's answers (UTF-8), a line ending added."""
    body = text.encode() + (b"" if text.endswith("\n") else b"\n")
    if len(body) > MAX_HTTP_BODY:
        raise argparse.ArgumentTypeError(f"the HTTP body has {len(body)} bytes; at most {MAX_HTTP_BODY}")
    return body


def tcp_service(text: str) -> PortService:
    """``--tcp``: ``80``, ``80:http``, ``7-9``, ``22:banner:SSH-2.0-tapstack``, ``192.0.2.3:80:http``,
    ``[2001:db8::2]:7:echo``."""
    return _port_service("tcp", text)


def udp_service(text: str) -> PortService:
    """``--udp``: ``7:echo``, ``9``, ``13:daytime``, with an address as for ``--tcp``."""
    return _port_service("udp", text)


# ---------------------------------------------------------------------- parser

#: How long ``--reattach`` waits for a device that went away to come back, by default.
REATTACH_TIMEOUT_S = 60.0


def lifecycle_options(p: argparse.ArgumentParser) -> None:
    """Privileges and the device going away (``run`` and ``ping``)."""
    group = p.add_argument_group("privileges and faults of the device")
    group.add_argument("--user", metavar="NAME",
                       help="once the device is open and the kernel side configured, become this "
                            "user (root only): no capabilities, no supplementary groups, "
                            "no_new_privs")
    group.add_argument("--group", metavar="NAME",
                       help="with --user: become this group (default: the user's own group)")
    group.add_argument("--reattach", action="store_true",
                       help="when the device is deleted, wait for it to come back (up to "
                            "--reattach-timeout) and go on serving, rather than exit 1")
    group.add_argument("--reattach-timeout", type=seconds, default=REATTACH_TIMEOUT_S,
                       metavar="SECONDS", help="with --reattach: how long to wait for the device "
                       f"(default {REATTACH_TIMEOUT_S:g}); then exit 1")


NEEDS_HYPOTHESIS = "needs hypothesis: pip install hypothesis (in a clone of tapstack: pip install '.[test]')"


def version() -> str:
    """The installed distribution's version (pyproject.toml), or "unknown" when run from a bare tree."""
    from importlib.metadata import PackageNotFoundError
    from importlib.metadata import version as distribution_version
    try:
        return distribution_version("tapstack")
    except PackageNotFoundError:
        return "unknown (not installed: pip install .)"


class VersionAction(argparse.Action):
    """``--version``: looks the version up only when asked (reading the installed metadata costs
    tens of milliseconds, which every other command would pay at start-up)."""

    def __init__(self, option_strings: list[str], dest: str, **kwargs) -> None:
        super().__init__(option_strings, dest, nargs=0, default=argparse.SUPPRESS,
                         help="print tapstack's version and exit")

    def __call__(self, parser, namespace, values, option_string=None) -> None:
        print(f"{parser.prog} {version()}")
        parser.exit()


def build_parser() -> argparse.ArgumentParser:
    parser = Parser(prog="tapstack", description=(
        "A userspace IPv4 and IPv6 host in pure Python on the other end of a TAP device (Ethernet frames) "
        "or a TUN device (bare IP packets): the kernel can ping it, arp for it, scan it and "
        "capture it."), epilog="Start with: tapstack demo.  Help on a command: tapstack COMMAND -h.")
    parser.add_argument("--version", action=VersionAction)
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
                       metavar="ADDR[/LEN]", help="the host's address, IPv4 or IPv6: 192.0.2.2/24 or "
                       "2001:db8::2/64 on a TAP, 192.0.2.2 (a /32) or with a prefix on a TUN; or a "
                       "range of hosts, 192.0.2.10-192.0.2.250/24 (repeatable)")
        p.add_argument("--peer", type=any_address, metavar="ADDR",
                       help="TUN: the address at the other end (default: --host-ip's)")
        p.add_argument("--pi", action="store_true",
                       help="TUN: open without IFF_NO_PI, so every packet carries the 4-byte "
                            "packet-information header")
        p.add_argument("--mac", type=mac_address,
                       help="one MAC for all the addresses (default: each address its own, "
                            "02:00 + the address, e.g. 02:00:c0:00:02:02 for 192.0.2.2)")
        p.add_argument("--probe", action="store_true", default=argparse.SUPPRESS,
                       help="TAP: probe for each address before using it (RFC 5227: three ARP "
                            "probes; an address another host answers for is not used)")
        p.add_argument("--gateway", type=ipv4_address, metavar="ADDR",
                       help="next hop for destinations off the host's networks")
        p.add_argument("--host-ip", type=host_address, action="append", metavar="ADDR[/LEN]",
                       help="also configure the kernel side: add this address to the device (on a "
                            "TUN, as point to point with the host's address as peer) and bring it "
                            "up; once per family (an IPv6 one leaves the kernel's IPv6 on for "
                            "that device); without it the kernel side is left as it is")
        p.add_argument("--answer-broadcast", action="store_true", dest="answer_broadcast_echo",
                       default=argparse.SUPPRESS,
                       help="answer echo requests sent to broadcast or multicast (RFC 1122 "
                            "3.2.2.6 allows ignoring them; Linux does by default)")
        choices = p.add_argument_group(
            "choices RFCs leave open (each default as Linux, or as the RFC suggests)",
            argument_default=argparse.SUPPRESS)
        choices.add_argument("--answer-timestamp", metavar="FILE.py", default=None,
                             help="answer ICMP Timestamp requests with the function "
                             "timestamp_reply(request, now) in FILE.py (RFC 1122 3.2.2.8: a MAY; "
                             "off by default; lab 06 writes it)")
        choices.add_argument("--arp-lifetime", type=positive_number,
                             metavar="SECONDS", help="TAP: how long a learnt ARP entry is used (RFC 1122 "
                             f"2.3.2.1: entries MUST time out; default {DEFAULT_CHOICES.arp_lifetime:g})")
        choices.add_argument("--no-dad", action="store_const", const=0, dest="dad_transmits",
                             help="TAP: use IPv6 addresses at once, without duplicate address "
                             "detection (RFC 4862 5.4; as Linux's accept_dad=0)")
        choices.add_argument("--dad-transmits", type=bounded_int(0, 10), metavar="N",
                             help="TAP: duplicate address detection probes per IPv6 address (RFC "
                             f"4862 5.1: DupAddrDetectTransmits; default {DEFAULT_CHOICES.dad_transmits})")
        choices.add_argument("--ttl", type=bounded_int(1, 255),
                             help="TTL of the datagrams we send (RFC 1122 3.2.1.7: fixed and "
                             f"configurable; RFC 1700 and Linux: {DEFAULT_CHOICES.ttl})")
        choices.add_argument("--icmp-error-rate", type=non_negative_number,
                             dest="icmp_errors_per_second", metavar="PER_SECOND",
                             help="ICMP errors sent per second at most (RFC 1122 "
                             "3.2.2: errors SHOULD be rate-limited; Linux icmp_msgs_per_sec: "
                             f"{DEFAULT_CHOICES.icmp_errors_per_second:g})")
        choices.add_argument("--icmp-error-burst", type=bounded_int(0, 1_000_000), metavar="N",
                             help="ICMP errors sent at once after a quiet spell; with --icmp-error-rate 0, "
                             "all that are ever sent (Linux icmp_msgs_burst: "
                             f"{DEFAULT_CHOICES.icmp_error_burst})")
        choices.add_argument("--reassembly-timeout", type=positive_number, metavar="SECONDS",
                             help="give up an incomplete fragmented datagram after this long "
                             "(RFC 1122 3.3.2 suggests 60-120; Linux ipfrag_time: "
                             f"{DEFAULT_CHOICES.reassembly_timeout:g})")
        services = p.add_argument_group(
            "services (every port not opened here is closed: TCP answers RST, UDP Port Unreachable)")
        services.add_argument("--tcp", type=tcp_service, action="append", default=[],
                              metavar="[ADDR:]PORT[-PORT][:SERVICE]",
                              help="open TCP ports running a service: echo (RFC 862), discard (863), "
                              "chargen (864), daytime (867), http (200 OK to any request), "
                              "banner:TEXT (a line on connect); without one, the port's well-known "
                              "service (7 echo, 9 discard, 13 daytime, 19 chargen, 80 and 8080 "
                              "http), else discard; on ADDR only, or every address (repeatable; an "
                              "IPv6 ADDR in brackets: [2001:db8::2]:80)")
        services.add_argument("--udp", type=udp_service, action="append", default=[],
                              metavar="[ADDR:]PORT[-PORT][:SERVICE]",
                              help="open UDP ports running echo, discard or daytime (repeatable)")
        services.add_argument("--http-body", metavar="TEXT", type=http_body,
                              help="the body the http service answers with (default: "
                              "'Hello from tapstack')")
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
        p.add_argument("--pcap-max-bytes", type=byte_size, metavar="N",
                       help="with --pcap FILE: when FILE would grow past N bytes (K, M, G: "
                            "powers of 1024), move it to FILE.1 (the older FILE.1 is removed) "
                            "and start a new FILE; at least 65575 (a header and a 64K frame)")
        p.add_argument("--busy-poll", type=microseconds, default=0, metavar="MICROSECONDS",
                       help="after frames arrive, keep looking for the next one without sleeping "
                            "for this long (as net.core.busy_poll): shorter round trips, one CPU "
                            "spinning that long after every burst (0: off, the default)")
        lifecycle_options(p)
        p.add_argument("-v", "--verbose", action="store_true",
                       help="debug logging: every drop with its reason")
        p.add_argument("-q", "--quiet", action="store_true",
                       help="log only warnings and errors (the counters are still printed at exit)")

    run = sub.add_parser("run", help="run a pingable host until Ctrl-C or SIGTERM")
    host_options(run)
    run.add_argument("--queues", type=bounded_int(1, MAX_QUEUES), default=1, metavar="N",
                     help="open the device with N queues (IFF_MULTI_QUEUE) and serve each in a "
                          f"worker process of its own, the kernel spreading flows by hash (1-{MAX_QUEUES}; "
                          "default 1: one queue, one process)")

    ping = sub.add_parser("ping", help="run a host and ping from it, like ping(8)")
    host_options(ping)
    ping.add_argument("target", type=any_address, metavar="TARGET", help="address to ping (IPv4 or IPv6)")

    ping.add_argument("-c", "--count", type=positive_int, default=5, help="echo requests to send (5)")
    ping.add_argument("-i", "--interval", type=seconds, default=1.0, help="seconds between requests (1)")
    ping.add_argument("-W", "--timeout", type=seconds, default=2.0,
                      help="seconds to wait for the last reply (2)")
    ping.add_argument("-s", "--size", type=int, default=56, help="ICMP data bytes (56)")

    connect = sub.add_parser("connect", help="run a host and open a TCP connection from it, like nc: "
                             "stdin is sent, what arrives is written to stdout")
    host_options(connect)
    connect.add_argument("target", type=any_address, metavar="TARGET", help="address to connect to (IPv4 or IPv6)")
    connect.add_argument("port", type=bounded_int(1, 65535), metavar="PORT", help="TCP port (1-65535)")
    connect.add_argument("-w", "--wait", type=seconds, default=10.0, metavar="SECONDS",
                         help="give up when the connection is not established within SECONDS (10)")

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
    explain.add_argument("--ip", type=ipv4_host_address, metavar="ADDR[/LEN]",
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
                      help="compare over a TUN device (bare IP packets, point to point)")
    diff.add_argument("--ipv6", action="store_true",
                      help="compare IPv6 (2001:db8::2/64, Neighbor Discovery over TAP) instead of IPv4")
    diff.add_argument("--tcp", action="store_true",
                      help="only TCP segments to closed ports (every flag combination, options, bad checksums)")
    diff.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    diff.add_argument("-q", "--quiet", action="store_true", help="only the result")
    fuzz = sub.add_parser("fuzz", help="send generated frames (valid and broken) to another stack "
                                       "behind a TAP device, checking that it still answers ping")
    fuzz.add_argument("--tap", required=True, metavar="NAME", help="TAP device the target is behind")
    fuzz.add_argument("--ip", required=True, type=ipv4_host_address, metavar="ADDR/LEN",
                      help="our address on the link (the frames come from it)")
    fuzz.add_argument("--target", required=True, type=ipv4_address, metavar="ADDR",
                      help="the stack under test: an address on our network")
    fuzz.add_argument("--mac", type=mac_address, help="our MAC (default: 02:00 + our address)")
    fuzz.add_argument("--host-ip", type=ipv4_host_address, metavar="ADDR[/LEN]",
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
