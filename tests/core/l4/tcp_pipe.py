"""Two TCP ends joined by an in-memory link that loses, delays and reorders segments, on a fake
clock; every segment crossing it goes through bytes and is checked against dpkt."""

from __future__ import annotations

import heapq
import random
from collections.abc import Callable
from ipaddress import IPv4Address, IPv6Address

import dpkt

from stack.l4.tcp import TcpSegment

A, B = IPv4Address("192.0.2.1"), IPv4Address("192.0.2.2")
A6, B6 = IPv6Address("2001:db8::1"), IPv6Address("2001:db8::2")


def check_with_dpkt(wire: bytes, source, destination) -> None:
    """dpkt reads the same header fields and computes the same checksum (its own arithmetic)."""
    segment = TcpSegment.parse(wire, source, destination)
    tcp = dpkt.tcp.TCP(wire)
    assert (tcp.sport, tcp.dport, tcp.seq, tcp.ack, tcp.flags, tcp.win) == (
        segment.source_port, segment.destination_port, segment.sequence, segment.acknowledgment,
        int(segment.flags), segment.window)
    assert bytes(tcp.data) == bytes(segment.payload)
    carried = tcp.sum
    tcp.sum = 0
    if source.version == 4:
        packet = dpkt.ip.IP(src=source.packed, dst=destination.packed, p=6, data=tcp)
        recomputed = dpkt.tcp.TCP(bytes(packet)[20:]).sum
    else:
        packet = dpkt.ip6.IP6(src=source.packed, dst=destination.packed, nxt=6, hlim=64, data=tcp)
        packet.plen = len(wire)
        recomputed = dpkt.tcp.TCP(bytes(packet)[40:]).sum
    assert recomputed == carried


class Link:
    """Segments in flight between two ends ``"a"`` and ``"b"``: each is lost with probability
    ``loss``, and delayed by ``delay`` plus up to ``jitter`` (jitter reorders)."""

    def __init__(self, rng: random.Random, loss: float = 0.0, delay: float = 0.01, jitter: float = 0.0,
                 addresses=(A, B)) -> None:
        self.rng, self.loss, self.delay, self.jitter = rng, loss, delay, jitter
        self.addresses = {"a": addresses[0], "b": addresses[1]}
        self.queue: list[tuple[float, int, str, bytes]] = []
        self.counter = 0
        self.sent: list[tuple[float, str, TcpSegment]] = []  # (time, from, segment), everything sent
        self.lost = 0

    def send(self, sender: str, segments: list[TcpSegment], now: float) -> None:
        receiver = "b" if sender == "a" else "a"
        source, destination = self.addresses[sender], self.addresses[receiver]
        for segment in segments:
            wire = segment.to_bytes(source, destination)
            check_with_dpkt(wire, source, destination)
            self.sent.append((now, sender, segment))
            if self.rng.random() < self.loss:
                self.lost += 1
                continue
            self.counter += 1
            arrival = now + self.delay + self.rng.random() * self.jitter
            heapq.heappush(self.queue, (arrival, self.counter, receiver, wire))

    def next_arrival(self) -> float | None:
        return self.queue[0][0] if self.queue else None

    def arrivals(self, now: float) -> list[tuple[str, TcpSegment]]:
        out = []
        while self.queue and self.queue[0][0] <= now:
            _, _, receiver, wire = heapq.heappop(self.queue)
            sender = "b" if receiver == "a" else "a"
            out.append((receiver, TcpSegment.parse(wire, self.addresses[sender], self.addresses[receiver])))
        return out


def run(link: Link, ends: dict, now: float, until: Callable[[], bool], limit: float,
        after_each: Callable[[float], None] = lambda now: None) -> float:
    """Drive ``ends`` (name -> TcpConnection) and the link on the fake clock until ``until()``
    or ``limit`` seconds have passed; returns the time reached."""
    end_time = now + limit
    while not until():
        times = [t for t in [link.next_arrival(), *(c.next_deadline() for c in ends.values() if c is not None)]
                 if t is not None]
        if not times:
            break
        now = max(now, min(times))
        if now > end_time:
            break
        for receiver, segment in link.arrivals(now):
            if ends.get(receiver) is not None:
                link.send(receiver, ends[receiver].receive(segment, now), now)
        for name, connection in ends.items():
            if connection is None:
                continue
            deadline = connection.next_deadline()
            if deadline is not None and deadline <= now:
                link.send(name, connection.poll(now), now)
        after_each(now)
    return now
