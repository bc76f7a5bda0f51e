"""The ``tapstack`` command: ``run`` a host on a TAP device, ``ping`` from one, or ``demo``.

Bad input from the user (flags, addresses, a missing device, no permission) gets one line on
stderr and exit status 2; never a traceback. Traces go to stdout, logs and counters to stderr.
"""

from __future__ import annotations

import argparse
import logging
import os
import random
import sys
import time
from ipaddress import IPv4Address, IPv4Interface

from stack.l2.ethernet import MacAddress
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


def positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number")
    if value < 1:
        raise argparse.ArgumentTypeError(f"{text!r} must be at least 1")
    return value


def seconds(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number of seconds")
    if not 0 <= value <= 3600:
        raise argparse.ArgumentTypeError(f"{text!r} must be between 0 and 3600 seconds")
    return value


# ---------------------------------------------------------------------- parser

def build_parser() -> argparse.ArgumentParser:
    parser = Parser(prog="tapstack", description=(
        "A userspace IPv4 host in pure Python on the other end of a TAP device: "
        "the kernel can ping it, arp for it and capture it."))
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
    return parser


# ---------------------------------------------------------------------- commands

def configure_logging(args: argparse.Namespace) -> None:
    """Our own loggers at the level asked for; libraries (pyroute2) only say warnings."""
    level = logging.DEBUG if args.verbose else logging.WARNING if args.quiet else logging.INFO
    logging.basicConfig(level=logging.WARNING, format="tapstack: %(message)s", stream=sys.stderr)
    logging.getLogger("stack").setLevel(level)


def make_host(args: argparse.Namespace):
    """The sans-I/O host the flags describe: a TapHost, or with --tun a TunHost."""
    from stack.node import TapHost, TunHost

    if args.host_ip is not None and args.host_ip.ip in [i.ip for i in args.ip]:
        raise UsageError(f"--host-ip {args.host_ip.ip} is the stack's own address; pick another")
    try:
        if args.tun is None:
            for option, value in (("--peer", args.peer), ("--pi", args.pi or None)):
                if value is not None:
                    raise UsageError(f"{option} is for TUN devices (--tun), not TAP")
            for interface in args.ip + ([args.host_ip] if args.host_ip else []):
                if not interface.explicit_prefix:
                    raise UsageError(f"{interface.ip} needs a prefix length on a TAP device, "
                                     f"e.g. {interface.ip}/24")
            return TapHost(args.ip, mac=args.mac, gateway=args.gateway,
                           answer_broadcast_echo=args.answer_broadcast, probe=args.probe,
                           uniform=random.Random().uniform)
        for option, value in (("--mac", args.mac), ("--gateway", args.gateway),
                              ("--probe", args.probe or None)):
            if value is not None:
                raise UsageError(f"{option} is for TAP devices: a TUN device has no link layer")
        peer = args.peer
        if args.host_ip is not None:
            if peer is not None and peer != args.host_ip.ip:
                raise UsageError(f"--peer {peer} differs from --host-ip {args.host_ip.ip}: on a "
                                 "point-to-point link the peer is the kernel side's address")
            peer = args.host_ip.ip
        return TunHost(args.ip, peer=peer, packet_info=args.pi,
                       answer_broadcast_echo=args.answer_broadcast)
    except ValueError as error:
        raise UsageError(str(error))


def open_device(args: argparse.Namespace, host):
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
    if args.pcap:
        from stack.tap.pcap import PcapDevice

        try:
            stream = sys.stdout.buffer if args.pcap == "-" else open(args.pcap, "wb")
        except OSError as error:
            device.close()
            raise UsageError(f"--pcap {args.pcap}: {error.strerror}")
        # The loop's clock is monotonic; pcap wants wall-clock time.
        device = PcapDevice(device, stream, timestamp_offset=time.time() - time.monotonic())
    return device


def serve(args: argparse.Namespace, agents=(), until=None) -> tuple[int, object]:
    from stack.loop import Loop
    from stack.tap.base import DeviceError
    from stack.trace import Tracer

    host = make_host(args)
    device = open_device(args, host)
    host.mtu = device.mtu
    try:
        agent_list = [make(host, device) for make in agents]
    except UsageError:
        device.close()
        raise
    loop = Loop()
    tracer = (Tracer(sys.stdout, host.medium, packet_info=getattr(host, "packet_info", False))
              if args.trace and args.pcap != "-" else None)
    loop.attach(device, host, agents=agent_list, tracer=tracer)
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
    status, _ = serve(args)
    return status


def cmd_ping(args: argparse.Namespace) -> int:
    from stack.ping import PingSession

    if not 0 <= args.size <= 65507:
        raise UsageError(f"-s {args.size}: the ICMP data size must be between 0 and 65507")

    def make(host, device):
        try:
            host.ip.route(args.target)
        except ValueError as error:
            raise UsageError(str(error))
        print(f"PING {args.target} {args.size}({args.size + 28}) bytes of data.", flush=True)
        return PingSession(host, args.target, count=args.count, interval=args.interval,
                           timeout=args.timeout, size=args.size, identifier=os.getpid() & 0xFFFF,
                           report=lambda line: print(line, flush=True))

    status, agents = serve(args, agents=[make], until=lambda agents: agents[0].done())
    session = agents[0]
    print(session.summary(), flush=True)
    if status != EXIT_OK:
        return status
    return EXIT_OK if session.received == session.count else EXIT_FAILURE


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
        raise UsageError("tapstack diff needs hypothesis: pip install 'tapstack[test]'")
    try:
        enter_private_namespace()
        kernel = diff.KernelHost()
    except DeviceError as error:
        raise UsageError(str(error))
    comparison = diff.Comparison(kernel, diff.StackHost())
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
        raise UsageError("tapstack fuzz needs hypothesis: pip install 'tapstack[test]'")
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


COMMANDS = {"run": cmd_run, "ping": cmd_ping, "demo": cmd_demo, "diff": cmd_diff, "fuzz": cmd_fuzz}


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
