"""One worker per queue (stack.runtime.workers), in process and without root: the neighbour
exchange between workers over real socket pairs, the ICMP error budget's shares, and the
supervisor (forked workers, signals passed on, a dead worker stops the rest, counters summed).

The device tests (tests/root/test_queues_device.py) run the same over a real multi-queue TAP.
"""

from __future__ import annotations

import os
import select
import signal
from ipaddress import IPv4Address

import pytest

from stack import TapHost
from stack.buffers import join
from stack.choices import HostChoices
from stack.l2.neighbor import NeighborCache
from stack.runtime.workers import (NEIGHBOUR_MESSAGE, NeighbourExchange, SiblingNeighbours, Supervisor,
                                   exchange_sockets, share_of, summed)
from tests.core.test_node_flows import (HOST_IP, HOST_MAC, KERNEL_IP, KERNEL_MAC, ZERO_MAC, arp, echo_request,
                                        expected_echo_reply, pad)

MAC = "02:00:00:00:00:02"


def fresh_host() -> TapHost:
    host = TapHost([f"{HOST_IP}/24"], mac=MAC)
    host.poll(0.0)
    host.poll(2.0)  # both start-up announcements sent
    host.stats.counters.clear()
    return host


class Sent:
    """A queue device that only records what is sent through it."""

    def __init__(self) -> None:
        self.frames: list[bytes] = []

    def send(self, frame, now: float) -> None:
        self.frames.append(join(frame))


# ---------------------------------------------------------------------- the core's hook


def test_the_observer_hears_entries_learnt_from_the_wire_only():
    cache = NeighborCache()
    heard = []
    cache.observer = lambda address, mac, now: heard.append((address, mac, now))
    address = IPv4Address(KERNEL_IP)
    cache.learn(address, KERNEL_MAC, 1.0)
    cache.learn(IPv4Address("192.0.2.7"), KERNEL_MAC, 2.0, tell=False)  # from a sibling
    cache.add_permanent(IPv4Address("192.0.2.8"), KERNEL_MAC)
    cache.learn(IPv4Address("192.0.2.8"), HOST_MAC, 3.0)  # a permanent entry stays: nothing learnt
    assert heard == [(address, KERNEL_MAC, 1.0)]


def test_learn_sends_what_waited_exactly_as_the_arp_reply_would():
    """A datagram held for the kernel goes out the same, whether the kernel's ARP reply came in
    on this worker's queue or a sibling told us of it (``TapHost.learn``)."""
    request = echo_request()
    by_arp, by_sibling = fresh_host(), fresh_host()
    for host in (by_arp, by_sibling):
        out = host.receive(request, 1.0)
        assert [join(f) for f in out] == [pad(arp(1, HOST_MAC, HOST_IP, ZERO_MAC, KERNEL_IP,
                                                  src=HOST_MAC))]
    reply = arp(2, KERNEL_MAC, KERNEL_IP, HOST_MAC, HOST_IP, dst=HOST_MAC)
    from_arp = [join(f) for f in by_arp.receive(reply, 1.1)]
    from_sibling = [join(f) for f in by_sibling.learn(KERNEL_IP, KERNEL_MAC.hex(":"), 1.1)]
    assert from_sibling == from_arp == [expected_echo_reply()]
    assert by_sibling.stats["arp_queue_flushed"] == by_arp.stats["arp_queue_flushed"] == 1
    assert by_sibling.stats["tx_frames"] == 2  # the ARP request, then the reply


# ---------------------------------------------------------------------- the exchange


def two_workers():
    pairs = exchange_sockets(2)
    hosts = [fresh_host(), fresh_host()]
    queues = [Sent(), Sent()]
    # Each worker gets its own ends (the constructor closes the rest): dup the pair for the
    # second, as fork would have given it its own copies.
    copies = [(inbox.dup(), sender.dup()) for inbox, sender in pairs]
    exchanges = [NeighbourExchange(pairs, 0, queues[0]), NeighbourExchange(copies, 1, queues[1])]
    for host, exchange in zip(hosts, exchanges):
        host.observe_neighbours(exchange.tell)
    return hosts, exchanges, queues


def test_a_reply_whose_arp_resolution_lands_on_another_queue_is_still_sent():
    hosts, exchanges, queues = two_workers()
    try:
        # Worker 0 gets the kernel's echo request and must resolve the kernel first: it holds
        # the reply and sends an ARP request.
        assert len(hosts[0].receive(echo_request(), 1.0)) == 1
        assert hosts[0].stats["arp_queued"] == 1
        # The kernel's ARP reply lands on worker 1's queue: worker 1 learns, and tells worker 0.
        reply = arp(2, KERNEL_MAC, KERNEL_IP, HOST_MAC, HOST_IP, dst=HOST_MAC)
        assert hosts[1].receive(reply, 1.1) == []
        assert exchanges[1].stats["told"] == 1
        assert exchanges[1].recv(1.1) is None  # nothing told back to the teller
        # Worker 0's loop finds the message in its inbox and sends the held reply.
        message = exchanges[0].recv(1.2)
        assert message == NEIGHBOUR_MESSAGE.pack(IPv4Address(KERNEL_IP).packed, KERNEL_MAC)
        node = SiblingNeighbours(hosts[0], exchanges[0].stats)
        out = node.receive(message, 1.2)
        assert [join(f) for f in out] == [expected_echo_reply()]
        for frame in out:  # the loop sends the node's frames through the inbox "device"
            exchanges[0].send(frame, 1.2)
        assert queues[0].frames == [expected_echo_reply()]
        assert exchanges[0].stats["heard"] == exchanges[0].stats["released"] == 1
        # Hearing of it is not learning from the wire: worker 0 tells nobody.
        assert exchanges[0].stats["told"] == 0
        assert exchanges[1].recv(1.3) is None
    finally:
        for exchange in exchanges:
            exchange.close()


def test_without_the_exchange_the_reply_would_wait():
    """The case above without the exchange: worker 0 never learns (what the exchange fixes)."""
    hosts = [fresh_host(), fresh_host()]
    hosts[0].receive(echo_request(), 1.0)
    hosts[1].receive(arp(2, KERNEL_MAC, KERNEL_IP, HOST_MAC, HOST_IP, dst=HOST_MAC), 1.1)
    assert hosts[0].link.cache.lookup(IPv4Address(KERNEL_IP), 1.2) is None
    assert hosts[0].stats["arp_queue_flushed"] == 0


def test_a_malformed_message_is_counted_not_raised():
    stats = fresh_host().stats
    node = SiblingNeighbours(fresh_host(), stats)
    assert node.receive(b"\x01\x02\x03", 1.0) == []
    assert stats["malformed"] == 1


# ---------------------------------------------------------------------- per worker, and why


@pytest.mark.parametrize("rate, burst, count", [(1000.0, 50, 2), (1000.0, 50, 3), (0.0, 7, 4),
                                                (1.0, 1, 16), (0.5, 0, 3)])
def test_rfc1122_3_2_2_the_workers_icmp_error_shares_add_up_to_the_budget(rate, burst, count):
    choices = HostChoices(icmp_errors_per_second=rate, icmp_error_burst=burst)
    shares = [share_of(choices, index, count) for index in range(count)]
    assert sum(s.icmp_error_burst for s in shares) == burst
    assert sum(s.icmp_errors_per_second for s in shares) == pytest.approx(rate)
    assert max(s.icmp_error_burst for s in shares) - min(s.icmp_error_burst for s in shares) <= 1
    assert all(s.ttl == choices.ttl for s in shares)  # everything else as given


# ---------------------------------------------------------------------- the supervisor

#: How long a test worker waits for its SIGTERM at most (in 50 ms steps): 10 s.
STEPS = 200


def serve_until_terminated(index: int, ready, before=lambda index: None):
    stopped = []
    signal.signal(signal.SIGTERM, lambda *_: stopped.append(True))
    ready()
    before(index)
    for _ in range(STEPS):
        if stopped:
            return 0, {"rx_frames": 10 + index, f"worker{index}": 1}
        select.select([], [], [], 0.05)
    return 9, {}


def test_sigterm_to_the_parent_stops_every_worker_and_the_counters_are_summed():
    def work(index, ready):
        # The last worker, once serving, sends the parent SIGTERM (as `kill PARENT` would).
        return serve_until_terminated(index, ready, lambda i: i == 2 and os.kill(os.getppid(), signal.SIGTERM))

    supervisor = Supervisor(3, work)
    supervisor.start()
    exits = supervisor.wait()
    assert supervisor.failure is None
    assert [(e.index, e.status) for e in exits] == [(0, 0), (1, 0), (2, 0)]
    total = summed(exits)
    assert total["rx_frames"] == 10 + 11 + 12
    assert [total[f"worker{i}"] for i in range(3)] == [1, 1, 1]
    for pid in supervisor.pids:  # all reaped: no zombie, no orphan
        with pytest.raises(ChildProcessError):
            os.waitpid(pid, os.WNOHANG)


@pytest.mark.parametrize("how, described", [("exit", "exited with status 3"),
                                            ("kill", "killed by SIGKILL")])
def test_a_worker_that_dies_is_reported_and_the_others_stop(how, described):
    def work(index, ready):
        if index == 1:
            ready()
            if how == "exit":
                os._exit(3)
            os.kill(os.getpid(), signal.SIGKILL)
        return serve_until_terminated(index, ready)

    supervisor = Supervisor(3, work)
    supervisor.start()
    exits = supervisor.wait()
    assert supervisor.failure == f"worker {supervisor.pids[1]} (queue 1) {described}"
    assert [e.status for e in exits] == [0, 3 if how == "exit" else -signal.SIGKILL, 0]
    assert exits[1].counters is None  # it never said them
    assert summed(exits)["rx_frames"] == 10 + 12  # the dead worker's counters are not there
