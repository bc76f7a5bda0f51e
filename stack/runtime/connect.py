"""A TCP client session on the stack, like ``nc``: ``tapstack connect TARGET PORT``.

An agent of the loop (as ``PingSession``): its first ``poll`` opens the connection
(``host.connect``, an active open, RFC 9293 3.10.1); once established, what comes on ``source``
(stdin) is sent, and what arrives is written to ``sink`` (stdout). At the end of its input the
session closes its side (a FIN) and waits for the peer's; when the peer closes first, the
session sends what it has queued and closes too (as ``nc -N`` would after its input), so a
daytime or HTTP server that closes ends the command. The session is over when both sides have
closed (our TIME-WAIT is not waited out), or when the connection was refused, reset or timed out.

The input is read without blocking, only as much as the connection's send buffer takes, so a
fast producer is paced by TCP's window; the loop wakes up for it (``Loop.watch``) only while the
session wants more.
"""

from __future__ import annotations

import errno
import os
from collections.abc import Callable
from ipaddress import IPv4Address, IPv6Address

from stack.buffers import Buffer
from stack.l4.tcp_connection import TcpConnection, TcpState

#: The most bytes read from the input in one poll.
READ_CHUNK = 65536
#: What ``error`` becomes in the one line the command prints.
ERRORS = {"refused": "connection refused", "reset": "connection reset by peer",
          "timeout": "connection timed out", "aborted": "connection aborted"}


class ConnectSession:
    """Drives ``host.connect`` and one connection between ``source`` and ``sink``."""

    def __init__(self, host, destination: IPv4Address | IPv6Address, port: int, source: int,
                 sink: Callable[[bytes], None], connect_timeout: float = 10.0,
                 report: Callable[[str], None] = lambda line: None) -> None:
        self.host = host
        self.destination = destination
        self.port = port
        self.source = source
        self.sink = sink
        self.connect_timeout = connect_timeout
        self.report = report
        self.connection: TcpConnection | None = None
        self.error: str | None = None
        self._started_at: float | None = None
        self._input_ended = False
        self._closed_ours = False
        self._pollable = True  # False: the input is a regular file (always readable)
        self._now = 0.0

    # ------------------------------------------------------------------ the loop's side

    def watch(self, loop) -> None:
        """Ask the loop to wake us when the input is readable (``Loop.watch``)."""
        os.set_blocking(self.source, False)
        self._pollable = loop.watch(self.source, self.wants_input)

    def wants_input(self) -> bool:
        connection = self.connection
        return (connection is not None and connection.established and not self._input_ended
                and connection.send_space > 0)

    def done(self) -> bool:
        if self.error is not None:
            return True
        connection = self.connection
        if connection is None:
            return False
        self._deliver(connection)  # what came with the peer's FIN, before we call it done
        if connection.closed and connection.error is not None:
            self.error = ERRORS.get(connection.error, connection.error)
        return connection.closed or connection.state is TcpState.TIME_WAIT

    def poll(self, now: float) -> list[list[Buffer]]:
        self._now = now
        if self.connection is None:
            self._started_at = now
            self.connection, frames = self.host.connect(self.destination, self.port, now)
            return frames
        connection = self.connection
        self._deliver(connection)
        if connection.closed:
            if connection.error is not None and self.error is None:
                self.error = ERRORS.get(connection.error, connection.error)
            return []
        if not connection.established:
            if now - self._started_at >= self.connect_timeout:  # type: ignore[operator]
                self.error = ERRORS["timeout"]
                connection.abort()  # RFC 9293 3.10.5: ABORT in SYN-SENT sends nothing
            return []
        if self.wants_input():
            self._read_input(connection)
        if not self._closed_ours and (self._input_ended or connection.finished_receiving):
            # Our input is over, or the peer closed: a FIN after what is queued (RFC 9293 3.10.4).
            connection.close()
            self._closed_ours = True
        return []

    def next_deadline(self, now: float) -> float | None:
        if self.connection is None:
            return now
        if not self.connection.established:
            return (self._started_at or now) + self.connect_timeout
        if not self._pollable and self.wants_input():
            return now  # a regular file: read on, paced by the send buffer
        return None

    # ------------------------------------------------------------------ helpers

    def _deliver(self, connection: TcpConnection) -> None:
        received = connection.read()
        if received:
            self.sink(received)

    def _read_input(self, connection: TcpConnection) -> None:
        try:
            data = os.read(self.source, min(READ_CHUNK, connection.send_space))
        except BlockingIOError:
            return
        except OSError as error:
            if error.errno == errno.EAGAIN:
                return
            self.report(f"reading the input: {error.strerror}")
            self._input_ended = True
            return
        if not data:
            self._input_ended = True
            return
        connection.send(data)
