"""From parsed arguments to running parts: the host, the device and its wrappers (capture, faults),
the checks made before anything is created, and the loop that serves them until told to stop."""

from __future__ import annotations

import argparse
import logging
import os
import random
import signal
import stat
import sys
import time
from dataclasses import fields
from ipaddress import IPv4Interface

from stack.choices import HostChoices
from stack.l3.ipv6 import MINIMUM_MTU
from stack.stats import combined
from stack.cli.arguments import EXIT_FAILURE, EXIT_OK, UsageError, split_host_ips

log = logging.getLogger("stack")


def configure_logging(args: argparse.Namespace) -> None:
    """Our own loggers at the level asked for; libraries (pyroute2) only say warnings."""
    verbose, quiet = getattr(args, "verbose", False), getattr(args, "quiet", False)
    level = logging.DEBUG if verbose else logging.WARNING if quiet else logging.INFO
    logging.basicConfig(level=logging.WARNING, format="tapstack: %(message)s", stream=sys.stderr)
    logging.getLogger("stack").setLevel(level)


def host_choices(args: argparse.Namespace) -> HostChoices:
    """The one ``HostChoices`` the flags describe: each choice flag's destination is the field
    it sets, and a flag not given is absent (``argparse.SUPPRESS``), so its field keeps its default."""
    given = {f.name: getattr(args, f.name) for f in fields(HostChoices) if hasattr(args, f.name)}
    if args.answer_timestamp is not None:
        from pathlib import Path

        from stack.tools.lab import LabError, load_function

        try:
            given["timestamp_reply"] = load_function(Path(args.answer_timestamp), "timestamp_reply")
        except LabError as error:
            raise UsageError(f"--answer-timestamp: {error}")
    try:
        return HostChoices(**given)
    except ValueError as error:
        raise UsageError(str(error))


def make_host(args: argparse.Namespace):
    """The sans-I/O host the flags describe: a TapHost, or with --tun a TunHost."""
    from stack.node import TapHost, TunHost

    split_host_ips(args)  # (main has; tests that parse and call this directly have not)
    host_ips = [given for given in (args.host_ip, args.host_ip6) if given is not None]
    for given in host_ips:
        if given.ip in [i.ip for i in args.ip]:
            raise UsageError(f"--host-ip {given.ip} is the stack's own address; pick another")
    choices = host_choices(args)
    try:
        if args.tun is None:
            for option, value in (("--peer", args.peer), ("--pi", args.pi or None)):
                if value is not None:
                    raise UsageError(f"{option} is for TUN devices (--tun), not TAP")
            for interface in args.ip + host_ips:
                if not interface.explicit_prefix:
                    example = "64" if interface.version == 6 else "24"
                    raise UsageError(f"{interface.ip} needs a prefix length on a TAP device, "
                                     f"e.g. {interface.ip}/{example}")
            return open_services(TapHost(args.ip, mac=args.mac, gateway=args.gateway,
                                         uniform=random.Random().uniform, choices=choices,
                                         tcp_secret=os.urandom(16)), args)
        for option, given in (("--mac", args.mac is not None), ("--gateway", args.gateway is not None),
                              ("--probe", hasattr(args, "probe")),
                              ("--arp-lifetime", hasattr(args, "arp_lifetime")),
                              ("--no-dad/--dad-transmits", hasattr(args, "dad_transmits"))):
            if given:
                raise UsageError(f"{option} is for TAP devices: a TUN device has no link layer")
        # On a point-to-point link the peer is the kernel side's address, one per family.
        peers = {given.version: given.ip for given in host_ips}
        if args.peer is not None:
            known = peers.get(args.peer.version)
            if known is not None and known != args.peer:
                raise UsageError(f"--peer {args.peer} differs from --host-ip {known}: on a "
                                 "point-to-point link the peer is the kernel side's address")
            peers[args.peer.version] = args.peer
        return open_services(TunHost(args.ip, peer=[peers[v] for v in sorted(peers)], packet_info=args.pi,
                                     choices=choices, tcp_secret=os.urandom(16)), args)
    except ValueError as error:
        raise UsageError(str(error))


def open_services(host, args: argparse.Namespace):
    """The ``--tcp``/``--udp`` ports opened on ``host``, each port with its service; ValueError
    (one line for the user) for an address that is not the host's or a port opened twice."""
    from stack.l4.services import HTTP_BODY, tcp_service, udp_service

    # The loop's clock is time.monotonic(); daytime and HTTP's Date need the wall clock.
    epoch = time.time() - time.monotonic()
    body = getattr(args, "http_body", None) or HTTP_BODY
    for word in getattr(args, "tcp", []):
        where = None if word.address is None else [word.address]
        for port in word.ports:
            name = word.service_of(port)
            spec = f"banner:{word.text}" if name == "banner" else name
            try:
                host.listen(port, tcp_service(spec, epoch=epoch, http_body=body), where)
            except ValueError as error:
                raise ValueError(f"--tcp {port}: {error}") from None
    for word in getattr(args, "udp", []):
        where = None if word.address is None else [word.address]
        for port in word.ports:
            try:
                host.listen_udp(port, udp_service(word.service_of(port), epoch=epoch), where)
            except ValueError as error:
                raise ValueError(f"--udp {port}: {error}") from None
    return host


class CaptureOutput:
    """``--pcap FILE``, opened before any device is touched, so that a path that cannot be
    written is one line and exit 2 with nothing changed. An existing file is emptied only once
    the device is ready (``start``), as tcpdump -w does; ``abandon`` leaves things as they were."""

    #: ``--pcap-max-bytes``: the files kept, the one being written included (FILE, FILE.1),
    #: as ``tcpdump -C N -W 2`` would, so a capture never takes more than twice N on disk.
    FILES = 2
    #: The smallest ``--pcap-max-bytes``: a file header and one record of the largest frame
    #: (the snapshot length), so every file stays within the bound.
    MIN_MAX_BYTES = 24 + 16 + 65_535

    @classmethod
    def check(cls, args: argparse.Namespace) -> None:
        """``--pcap-max-bytes`` that cannot work: one line, exit 2, before anything is opened."""
        max_bytes = getattr(args, "pcap_max_bytes", None)
        if max_bytes is None:
            return
        if not getattr(args, "pcap", None):
            raise UsageError("--pcap-max-bytes bounds a capture file: give --pcap FILE too")
        if args.pcap == "-":
            raise UsageError("--pcap-max-bytes cannot be used with --pcap - (stdout cannot be "
                             "rotated; pipe it to tcpdump -r - -C N -w FILE instead)")
        if max_bytes < cls.MIN_MAX_BYTES:
            raise UsageError(f"--pcap-max-bytes {max_bytes} is too small: a file must hold its "
                             f"header and one frame of the largest size ({cls.MIN_MAX_BYTES} bytes)")

    def __init__(self, path: str, max_bytes: int | None = None) -> None:
        self.path = path
        self.max_bytes = max_bytes
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

    def rotate(self):
        """The capture file is full (``--pcap-max-bytes``): FILE.1 becomes FILE.2 and so on,
        the oldest beyond ``FILES`` is removed, FILE becomes FILE.1, and a new FILE is opened
        and returned (the device closes the full one). None, with a warning, if that fails."""
        try:
            for number in range(self.FILES - 1, 0, -1):
                older = f"{self.path}.{number}"
                if os.path.lexists(older):
                    if number + 1 < self.FILES:
                        os.replace(older, f"{self.path}.{number + 1}")
                    else:
                        os.unlink(older)
            os.replace(self.path, f"{self.path}.1")
            self.stream = open(self.path, "wb")
        except OSError as error:
            log.warning("--pcap-max-bytes: cannot rotate %s (%s): capture stopped",
                        self.path, error.strerror)
            return None
        log.info("capture %s reached %d bytes: moved to %s.1, a new file started",
                 self.path, self.max_bytes, self.path)
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


def configure_kernel_side(args: argparse.Namespace, name: str, host) -> None:
    """``--host-ip`` (once per family): the kernel side's addresses, and the link up. On a TUN
    link each is point to point, with the host's first address of its family as the peer.
    Raises DeviceError."""
    from stack.runtime.kernel import configure_address
    from stack.tap.base import DeviceError

    for given in (args.host_ip, getattr(args, "host_ip6", None)):  # IPv4 first: it turns IPv6 off
        if given is None:
            continue
        ours = [a for a in host.addresses if a.version == given.version]
        if args.tun and not ours:
            raise DeviceError(f"--host-ip {given}: the host has no IPv{given.version} address to be its peer")
        configure_address(name, given, peer=ours[0] if args.tun else None)


def open_device(args: argparse.Namespace, host, capture: CaptureOutput | None = None):
    """The TAP or TUN device, its kernel side configured when asked, wrapped for capture when asked."""
    from stack.tap.base import DeviceError
    from stack.tap.linux import TapDevice, TunDevice, interface_exists, interface_is_up, interface_mtu

    name = args.tap or args.tun
    if getattr(host, "ip6", None) is not None and interface_exists(name) and interface_mtu(name) < MINIMUM_MTU:
        # RFC 8200 5: a link that cannot carry 1280 octets cannot carry IPv6 (checked before
        # the device is attached: a new one has 1500).
        raise UsageError(f"{name} has MTU {interface_mtu(name)}, below IPv6's minimum of {MINIMUM_MTU} "
                         f"(RFC 8200 5): raise it (ip link set {name} mtu {MINIMUM_MTU}) or give no IPv6 address")
    try:
        device = TapDevice(name) if args.tap else TunDevice(name, packet_info=args.pi)
    except DeviceError as error:
        raise UsageError(str(error))
    if args.host_ip is not None or getattr(args, "host_ip6", None) is not None:
        try:
            configure_kernel_side(args, name, host)
        except DeviceError as error:
            device.close()
            raise UsageError(str(error))
    elif not interface_is_up(device.name):
        log.warning("%s is down: bring it up (ip link set %s up) or pass --host-ip", name, name)
    device = with_faults(args, device)
    if capture is not None:
        from stack.tap.pcap import PcapDevice

        # The loop's clock is monotonic; pcap wants wall-clock time.
        device = PcapDevice(device, capture.start(), timestamp_offset=time.time() - time.monotonic(),
                            max_bytes=capture.max_bytes,
                            rotate=capture.rotate if capture.max_bytes is not None else None)
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
    ours = [i for i in host.interfaces if i.version == 4]
    if not ours:
        return None
    if args.tun:
        routed = IPv4Interface(f"{ours[0].ip}/{kernel.network.prefixlen}").network
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
          check=None, trace_stream=None) -> tuple[int, object]:
    """Run the host the flags describe until ``until(agents)``. Everything the user gave is
    checked (``check(host)`` too) and the capture file opened before any device is touched.
    For the ``tapstack`` process: from the end of the run until it exits, SIGINT and SIGTERM
    are ignored, so the counters and the capture are always finished and the exit status is
    the run's."""
    from stack.runtime.loop import Loop
    from stack.tap.base import DeviceError, DeviceGone
    from stack.runtime.trace import Tracer
    from stack.cli import lifecycle

    check_fault_options(args)
    CaptureOutput.check(args)
    credentials = lifecycle.resolve_credentials(args)
    host = make_host(args)
    if check is not None:
        check(host)
    warning = kernel_side_warning(args, host)
    if warning is not None:
        log.warning("%s", warning)
    capture = CaptureOutput(args.pcap, getattr(args, "pcap_max_bytes", None)) if args.pcap else None
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
    if credentials is not None:
        lifecycle.drop_privileges(credentials, device, capture)
    loop = Loop(busy_poll=args.busy_poll / 1e6)
    tracer = (Tracer(trace_stream or sys.stdout, host.medium, packet_info=getattr(host, "packet_info", False))
              if args.trace and args.pcap != "-" else None)
    for agent in agent_list:
        if hasattr(agent, "watch"):
            agent.watch(loop)  # an agent with input of its own: the loop wakes for it too
    status_line = None
    if live_status:
        from stack.runtime import status as live

        if live.wanted(sys.stderr, sys.stdout, args.trace and args.pcap != "-", args.verbose):
            status_line = live.StatusLine(sys.stderr, lambda: host.stats)
            for handler in logging.getLogger().handlers:
                handler.addFilter(live.EraseBeforeLogging(status_line))
    attachment = loop.attach(device, host, agents=agent_list + ([status_line] if status_line else []),
                             tracer=tracer)
    loop.install_signal_handlers(hangup=lifecycle.hangup_handler(capture, device))
    log.info("host %s %s (mtu %d); Ctrl-C to stop", describe_addresses(host.interfaces),
             describe_link(host, args), device.mtu)
    status = EXIT_OK
    try:
        while True:
            try:
                loop.run(until=(lambda: until(agent_list)) if until else None)
                break
            except DeviceGone as error:  # deleted: with --reattach, wait for it to come back
                if not args.reattach or not lifecycle.reattach(args, loop, attachment, host, error):
                    if not loop.stopped:
                        raise
                    break
    except DeviceError as error:  # gone, or failing in a way it cannot recover from
        print(f"tapstack: {error}", file=sys.stderr)
        status = EXIT_FAILURE
    finally:
        # The loop's handlers stay: a second SIGINT or SIGTERM while stopping is ignored rather
        # than killing us without the counters or a whole capture.
        loop.close(restore_signals=False)
        device.close()
        if status_line is not None:
            status_line.erase()  # the full table below replaces it
    # Like tcpdump's closing counts, the summary is printed even with -q (which silences logs).
    print(combined(host.stats, device=device.stats, loop=loop.stats).summary(), file=sys.stderr)
    if capture is not None and capture.path != "-":
        capture.stream.close()
    # Until the process exits, SIGINT and SIGTERM are ignored: a late signal must not turn the
    # exit status the run decided into 143. SIG_IGN, not a handler of ours: Python's
    # finalization puts the default action back for its own handlers, not for SIG_IGN.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
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
