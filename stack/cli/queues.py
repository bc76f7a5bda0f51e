"""``tapstack run --queues N``: one multi-queue device, N worker processes, one summary.

Everything the user gave is checked before anything is created; then every queue is opened
(IFF_MULTI_QUEUE) and the kernel side configured, and only then are the workers forked
(stack.runtime.workers says what each worker has of its own and what they share).
"""

from __future__ import annotations

import argparse
import copy
import logging
import os
import sys

from stack.cli.arguments import EXIT_FAILURE, EXIT_OK, UsageError
from stack.cli.wiring import (check_fault_options, describe_addresses, host_choices, kernel_side_warning,
                              make_host, with_faults)

log = logging.getLogger("stack")


def check_queue_options(args: argparse.Namespace) -> None:
    """Flags that cannot work with several workers: one line, exit 2, before anything is opened."""
    if args.pcap or getattr(args, "pcap_max_bytes", None) is not None:
        raise UsageError("--pcap cannot be used with --queues: the workers cannot share one capture "
                         f"file; capture on the kernel side instead (tcpdump -i {args.tap or args.tun} -w FILE)")
    for flag, given in (("--reattach", getattr(args, "reattach", False)),
                        ("--user", getattr(args, "user", None) is not None)):
        if given:
            raise UsageError(f"{flag} cannot be used with --queues yet: each worker would have to "
                             "do it for its own queue")
    if getattr(args, "probe", False):
        # RFC 5227 2.1.1: a probe's answer could land on another worker's queue and go unseen.
        raise UsageError("--probe cannot be used with --queues: an answer to a probe can land on "
                         "another worker's queue")


def open_queues(args: argparse.Namespace, host) -> list:
    """Every queue of the device (the first creates it, multi-queue, when it does not exist),
    then the kernel side when --host-ip asks; a failure closes what was opened."""
    from stack.tap.base import DeviceError
    from stack.tap.linux import TapDevice, TunDevice, interface_is_up

    name = args.tap or args.tun
    queues = []
    try:
        for _ in range(args.queues):
            queues.append(TapDevice(name, multi_queue=True) if args.tap
                          else TunDevice(name, packet_info=args.pi, multi_queue=True))
        if args.host_ip is not None:
            from stack.runtime.kernel import configure_address

            peer = host.addresses[0] if args.tun else None
            configure_address(name, args.host_ip, peer=peer)
        elif not interface_is_up(name):
            log.warning("%s is down: bring it up (ip link set %s up) or pass --host-ip", name, name)
    except DeviceError as error:
        for queue in queues:
            queue.close()
        raise UsageError(str(error))
    return queues


def serve_queues(args: argparse.Namespace) -> int:
    """Run the host the flags describe as ``args.queues`` workers, one per queue, until a signal."""
    from stack.runtime.workers import NeighbourExchange, Supervisor, exchange_sockets, share_of, summed

    check_fault_options(args)
    check_queue_options(args)
    host = make_host(args)  # checks every flag; each worker builds its own from the same flags
    choices = host_choices(args)
    warning = kernel_side_warning(args, host)
    if warning is not None:
        log.warning("%s", warning)
    queues = open_queues(args, host)
    pairs = exchange_sockets(args.queues) if args.tap else None

    def work(index: int, ready) -> tuple[int, dict[str, int]]:
        for other, queue in enumerate(queues):
            if other != index:
                os.close(queue.fileno())  # the sibling's queue: it stays open in the sibling
        device = queues[index]
        exchange = NeighbourExchange(pairs, index, device) if pairs is not None else None
        return serve_queue(args, share_of(choices, index, args.queues), device, exchange, ready)

    supervisor = Supervisor(args.queues, work)
    supervisor.start()
    for queue in queues:
        os.close(queue.fileno())  # the workers hold the queues now
    for inbox, sender in pairs or ():
        inbox.close()
        sender.close()
    name = args.tap or args.tun
    log.info("host %s on %s, %d queues, one worker each (pids %s); Ctrl-C to stop",
             describe_addresses(host.interfaces), name, args.queues,
             " ".join(str(pid) for pid in supervisor.pids))
    exits = supervisor.wait()
    status = EXIT_OK
    if supervisor.failure is not None:
        print(f"tapstack: {supervisor.failure}; the other workers were stopped", file=sys.stderr)
        status = EXIT_FAILURE
    elif any(e.status != 0 for e in exits):
        status = EXIT_FAILURE
    for outcome in exits:
        if outcome.counters is not None:
            log.info("queue %d (worker %d): %d frames in, %d out", outcome.index, outcome.pid,
                     outcome.counters.get("rx_frames", 0), outcome.counters.get("tx_frames", 0))
        else:
            print(f"tapstack: worker {outcome.pid} (queue {outcome.index}) {outcome.describe()} "
                  "without its counters: the sum below leaves them out", file=sys.stderr)
    title = f"tapstack counters (the sum over {args.queues} queues)"
    print(summed(exits).summary(title), file=sys.stderr)
    return status


def serve_queue(args: argparse.Namespace, choices, device, exchange, ready) -> tuple[int, dict[str, int]]:
    """One worker: its own host (the same flags, its share of the ICMP error budget) and loop on
    its queue, and the neighbour exchange with its siblings. Returns (exit status, counters)."""
    from stack.runtime.loop import Loop
    from stack.runtime.trace import Tracer
    from stack.runtime.workers import SiblingNeighbours
    from stack.stats import combined
    from stack.tap.base import DeviceError

    args = copy.copy(args)
    args.icmp_errors_per_second = choices.icmp_errors_per_second
    args.icmp_error_burst = choices.icmp_error_burst
    host = make_host(args)
    host.mtu = device.mtu
    device = with_faults(args, device)
    if exchange is not None:
        exchange.queue = device  # what a sibling's neighbour releases goes out as any frame does
    loop = Loop(busy_poll=args.busy_poll / 1e6)
    tracer = (Tracer(sys.stdout, host.medium, packet_info=getattr(host, "packet_info", False))
              if args.trace else None)
    loop.attach(device, host, tracer=tracer)
    if exchange is not None:
        host.observe_neighbours(exchange.tell)
        loop.attach(exchange, SiblingNeighbours(host, exchange.stats))
    loop.install_signal_handlers()
    released = False

    def release_signals_once() -> bool:
        # Signals held back since the fork are let in inside ``run`` (which would forget a stop
        # asked before it started), once the loop's handlers are in.
        nonlocal released
        if not released:
            released = True
            ready()
        return False

    status = EXIT_OK
    try:
        loop.run(until=release_signals_once)
    except DeviceError as error:
        print(f"tapstack: {error}", file=sys.stderr)
        status = EXIT_FAILURE
    finally:
        loop.close()
        device.close()
        if exchange is not None:
            exchange.close()
    parts = dict(device=device.stats, loop=loop.stats)
    if exchange is not None:
        parts["exchange"] = exchange.stats
    return status, dict(combined(host.stats, **parts).counters)
