"""A ping session: ``count`` echo requests, ``interval`` apart, each waited for ``timeout``.

Sans-I/O, like the host it drives: ``poll(now)`` returns the frames to send and reports replies
through the ``report`` callable (the CLI prints them, tests collect them).
"""

from __future__ import annotations

from collections.abc import Callable
from ipaddress import IPv4Address, IPv6Address, ip_address

from stack.buffers import Buffer
from stack.l3.host import EchoReply

ICMP_HEADER_LENGTH = 8


class PingSession:
    """Drives ``host.ping`` (a ``TapHost``, or anything with ``ping`` and ``take_echo_replies``)."""

    def __init__(self, host, destination: IPv4Address | IPv6Address | str, count: int = 5, interval: float = 1.0,
                 timeout: float = 2.0, size: int = 56, identifier: int = 0x7473,
                 report: Callable[[str], None] = lambda line: None) -> None:
        if count < 1:
            raise ValueError("count must be at least 1")
        if not 0 <= size <= 65507:  # 65535 - 20 (IPv4 header) - 8 (ICMP header)
            raise ValueError(f"size {size} is not between 0 and 65507")
        self.host = host
        self.destination = ip_address(destination) if isinstance(destination, str) else destination
        self.count = count
        self.interval = interval
        self.timeout = timeout
        self.identifier = identifier
        self.report = report
        self.payload = bytes(i & 0xFF for i in range(size))  # a ramp, like iputils' fill
        self.replies: list[EchoReply] = []
        self.transmitted = 0
        self._outstanding: set[int] = set()
        self._next_send_at: float | None = None
        self._last_sent_at: float | None = None
        self._now = 0.0

    @property
    def received(self) -> int:
        return len(self.replies)

    def done(self) -> bool:
        """All sent, and every reply in or the last one's timeout over."""
        if self.transmitted < self.count:
            return False
        if not self._outstanding:
            return True
        return self._now >= self._last_sent_at + self.timeout  # type: ignore[operator]

    def poll(self, now: float) -> list[list[Buffer]]:
        self._now = now
        for reply in self.host.take_echo_replies(self.identifier):
            if reply.source == self.destination and reply.sequence in self._outstanding:
                self._outstanding.discard(reply.sequence)
                self.replies.append(reply)
                self.report(f"{reply.size + ICMP_HEADER_LENGTH} bytes from {reply.source}: "
                            f"icmp_seq={reply.sequence} ttl={reply.ttl} time={reply.rtt * 1000:.3f} ms")
        if self._next_send_at is None:
            self._next_send_at = now
        if self.transmitted >= self.count or now < self._next_send_at:
            return []
        self.transmitted += 1
        sequence = self.transmitted & 0xFFFF
        self._outstanding.add(sequence)
        self._last_sent_at = now
        self._next_send_at = now + self.interval
        return self.host.ping(self.destination, now, self.identifier, sequence, self.payload)

    def next_deadline(self, now: float) -> float | None:
        if self.transmitted < self.count:
            return self._next_send_at if self._next_send_at is not None else now
        if not self.done():
            return self._last_sent_at + self.timeout  # type: ignore[operator]
        return None

    def summary(self) -> str:
        loss = 100.0 * (self.transmitted - self.received) / max(self.transmitted, 1)
        lines = [f"--- {self.destination} ping statistics ---",
                 f"{self.transmitted} packets transmitted, {self.received} received, "
                 f"{loss:.0f}% packet loss"]
        if self.replies:
            rtts = [reply.rtt * 1000 for reply in self.replies]
            lines.append(f"rtt min/avg/max = {min(rtts):.3f}/{sum(rtts) / len(rtts):.3f}/"
                         f"{max(rtts):.3f} ms")
        return "\n".join(lines)
