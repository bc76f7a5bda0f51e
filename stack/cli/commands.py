"""One function per subcommand (``COMMANDS``): each takes the parsed arguments, returns an exit
status, and imports what it needs only when it runs (``tapstack explain`` never loads the loop)."""

from __future__ import annotations

import argparse
import logging
import os
import sys

from stack.cli.arguments import EXIT_FAILURE, EXIT_OK, NEEDS_HYPOTHESIS, UsageError
from stack.cli.wiring import serve


def cmd_run(args: argparse.Namespace) -> int:
    if args.queues > 1:
        from stack.cli.queues import serve_queues

        return serve_queues(args)
    status, _ = serve(args, live_status=True)
    return status


def cmd_ping(args: argparse.Namespace) -> int:
    from stack.runtime.ping import PingSession

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


def cmd_connect(args: argparse.Namespace) -> int:
    from stack.runtime.connect import ConnectSession

    def check(host):
        try:
            if args.target.version == 4:
                host.ip.route(args.target)
            elif host.ip6 is None:
                raise ValueError(f"cannot connect to {args.target}: the host has no IPv6 address")
        except ValueError as error:
            raise UsageError(str(error))

    def sink(data: bytes) -> None:
        sys.stdout.buffer.write(data)
        sys.stdout.buffer.flush()

    def make(host, device):
        return ConnectSession(host, args.target, args.port, sys.stdin.fileno(), sink, connect_timeout=args.wait,
                              report=lambda line: print(f"tapstack: {line}", file=sys.stderr, flush=True))

    stdin = sys.stdin.fileno()
    blocking = os.get_blocking(stdin)  # the session reads it without blocking; a shell shares it
    try:
        status, agents = serve(args, agents=[make], until=lambda agents: agents[0].done(), check=check,
                               trace_stream=sys.stderr)
    finally:
        os.set_blocking(stdin, blocking)
    session = agents[0]
    if status != EXIT_OK:
        return status
    if session.error is not None or not session.done():
        reason = session.error or "stopped before the connection closed"
        print(f"tapstack: connect to {args.target} port {args.port}: {reason}", file=sys.stderr, flush=True)
        return EXIT_FAILURE
    return EXIT_OK


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
    from stack.tools.explain import explain

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
    from stack.tools.demo import run_demo

    return run_demo(count=args.count, in_memory=args.in_memory, trace=not args.quiet, tun=args.tun)


def cmd_diff(args: argparse.Namespace) -> int:
    from stack.tools import diff
    from stack.tap.base import DeviceError
    from stack.runtime.kernel import enter_private_namespace

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
        family = 6 if args.ipv6 else 4
        kernel = diff.KernelHost(medium, family)
    except DeviceError as error:
        raise UsageError(str(error))
    comparison = diff.Comparison(kernel, diff.StackHost(medium, family), medium, family)
    report = (lambda line: None) if args.quiet else (lambda line: print(line, flush=True))
    try:
        frames = diff.tcp_probe_frames(medium, family) if args.tcp else None
        outcome = diff.run_examples(comparison, args.examples, args.seed, progress=report, frames=frames)
    finally:
        kernel.close()
    print(diff.summary(comparison.tally), flush=True)
    if outcome is None:
        return EXIT_OK
    print("the smallest frame on which tapstack and Linux disagree:", flush=True)
    print(outcome.describe(), flush=True)
    return EXIT_FAILURE


def cmd_fuzz(args: argparse.Namespace) -> int:
    from stack.tools import fuzz
    from stack.runtime.loop import Loop
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
            from stack.runtime.kernel import configure_address

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

    from stack.tools import lab

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
        from stack.tools.demo import kernel_demo_unavailable
        from stack.tap.base import DeviceError
        from stack.runtime.kernel import enter_private_namespace

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


COMMANDS = {"run": cmd_run, "ping": cmd_ping, "connect": cmd_connect, "explain": cmd_explain, "demo": cmd_demo,
            "diff": cmd_diff, "fuzz": cmd_fuzz, "lab": cmd_lab}
