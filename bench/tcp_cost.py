"""How much Python work is one HTTP request or one megabyte of echo through tapstack's TCP, in process?

Run:  python bench/tcp_cost.py [--requests N] [--connections N] [--megabytes N] [--profile]

No device, no root: two ``TcpLayer`` (stack.l4.tcp_layer), a client and a server running
``http`` on port 80 and ``echo`` on port 7, joined by a perfect wire in memory. Every segment
is built to bytes (``to_bytes``: header, checksum) and parsed again (``TcpSegment.parse``:
checksum verified) as the hosts do, so the figures are the TCP work of BOTH ends, codec
included, without IP, Ethernet, the device or the loop. Time is virtual: a segment takes 10 us
on the wire; when nothing is in flight the wire jumps to the earliest timer (a delayed ACK,
a retransmission) and polls both layers. Each such jump is counted ("timer waits"): on a real
wire it is time spent waiting, here it costs nothing, so a figure with many of them hides a
stall that ``tcp_bench.py`` would show.

Printed, per second of this process's CPU time (not wall time: the machine is shared):
requests over one keep-alive connection, over a new connection per
request (``Connection: close``), and echo megabytes (N MB sent and read back), each with its
microseconds per request (milliseconds per MB). ``--profile`` prints cProfile's top functions for
each.
"""

from __future__ import annotations

import argparse
import cProfile
import pstats
import sys
import time
from collections import deque
from collections.abc import Callable
from ipaddress import IPv4Address
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from stack.l4.services import tcp_service  # noqa: E402
from stack.l4.tcp import TcpSegment  # noqa: E402
from stack.l4.tcp_layer import TcpLayer  # noqa: E402

CLIENT, SERVER = IPv4Address("192.0.2.1"), IPv4Address("192.0.2.2")
HTTP_PORT, ECHO_PORT = 80, 7
WIRE_DELAY_S = 10e-6
#: A stalled exchange gives up after this many timer waits in a row without progress.
MAXIMUM_IDLE_WAITS = 50


def http_request(host: str, close: bool) -> bytes:
    """The request tcp_client.py sends: a GET, and ``Connection: close`` for one per connection."""
    return (f"GET / HTTP/1.1\r\nHost: {host}\r\nUser-Agent: tcp_bench\r\n"
            + ("Connection: close\r\n" if close else "") + "\r\n").encode()


def response_length(buffer: bytes | bytearray) -> int | None:
    """The length of the HTTP response at the start of ``buffer`` once its head is whole
    (head + Content-Length), else None."""
    end = buffer.find(b"\r\n\r\n")
    if end < 0:
        return None
    for line in bytes(buffer[:end]).split(b"\r\n")[1:]:
        name, _, value = line.partition(b":")
        if name.strip().lower() == b"content-length":
            return end + 4 + int(value)
    return end + 4


class Wire:
    """Two TCP layers joined in memory; ``now`` is virtual."""

    def __init__(self, epoch: float | None = None, http_body: bytes | None = None) -> None:
        self.now = 0.0
        self.timer_waits = 0
        self.segments = 0
        self.server = TcpLayer(secret=bytes(16 * [7]))
        extra = {} if http_body is None else {"http_body": http_body}
        self.server.listen(HTTP_PORT, tcp_service("http", epoch=epoch, **extra))
        self.server.listen(ECHO_PORT, tcp_service("echo"))
        self.client = TcpLayer(secret=bytes(16 * [9]))
        self.layers = {CLIENT: self.client, SERVER: self.server}

    def carry(self, out: list) -> None:
        """Deliver every segment, and every segment sent in answer, until none is in flight."""
        queue = deque(out)
        while queue:
            source, destination, segment = queue.popleft()
            data = segment.to_bytes(source, destination)
            self.now += WIRE_DELAY_S
            self.segments += 1
            queue.extend(self.layers[destination].receive(source, destination,
                                                          TcpSegment.parse(data, source, destination), self.now))

    def flush(self) -> None:
        """Send what the client queued (``send``/``read``/``close`` are followed by a poll)."""
        self.carry(self.client.poll(self.now))

    def wait(self) -> None:
        """Nothing in flight: jump to the earliest timer and run both layers' timers."""
        deadlines = [d for d in (self.client.next_deadline(), self.server.next_deadline()) if d is not None]
        if not deadlines:
            raise RuntimeError("stalled: nothing in flight and no timer pending")
        self.now = max(self.now, min(deadlines))
        self.timer_waits += 1
        self.carry(self.client.poll(self.now) + self.server.poll(self.now))

    def until(self, done: Callable[[], bool]) -> None:
        """Flush, then wait for timers until ``done()``."""
        self.flush()
        idle = 0
        while not done():
            idle += 1
            if idle > MAXIMUM_IDLE_WAITS:
                raise RuntimeError(f"stalled: {MAXIMUM_IDLE_WAITS} timer waits without finishing")
            self.wait()
            self.flush()


def fetch(wire: Wire, connection, request: bytes) -> bytes:
    """Send one request on ``connection`` and read its whole response."""
    connection.send(request)
    received = bytearray()

    def complete() -> bool:
        received.extend(connection.read())
        total = response_length(received)
        return total is not None and len(received) >= total

    wire.until(complete)
    return bytes(received)


def http_keepalive(wire: Wire, count: int) -> list[bytes]:
    """``count`` requests, one at a time, over one connection; the responses (first and last)."""
    connection, out = wire.client.connect(CLIENT, SERVER, HTTP_PORT, wire.now)
    wire.carry(out)
    request = http_request(str(SERVER), close=False)
    first = last = fetch(wire, connection, request)
    for _ in range(count - 1):
        last = fetch(wire, connection, request)
    connection.close()
    wire.until(lambda: connection.closed)
    return [first, last]


def http_new_connections(wire: Wire, count: int) -> list[bytes]:
    """``count`` connections, one request each (``Connection: close``): the server closes, the
    client reads to the end and closes."""
    request = http_request(str(SERVER), close=True)
    responses = []
    for index in range(count):
        # A new local port each time, as a kernel client picks (the server keeps TIME-WAIT).
        connection, out = wire.client.connect(CLIENT, SERVER, HTTP_PORT, wire.now, local_port=49152 + index % 16384)
        wire.carry(out)
        received = bytearray()

        def finished() -> bool:
            received.extend(connection.read())
            if connection.finished_receiving:
                connection.close()
                wire.flush()
            return connection.closed

        connection.send(request)
        wire.until(finished)
        if index in (0, count - 1):
            responses.append(bytes(received))
    return responses


def echo(wire: Wire, megabytes: float) -> int:
    """Send ``megabytes`` MB to echo and read them all back (checked byte for byte); returns the size."""
    size = int(megabytes * 1_000_000)
    data = bytes(range(256)) * (size // 256 + 1)
    data = data[:size]
    connection, out = wire.client.connect(CLIENT, SERVER, ECHO_PORT, wire.now)
    wire.carry(out)
    sent = 0
    received = bytearray()

    def step() -> bool:
        nonlocal sent
        received.extend(connection.read())
        if sent < size:
            sent += connection.send(data[sent:sent + 65536])
            if sent == size:
                connection.close()
            wire.flush()
        return len(received) >= size

    while not step():
        wire.until(lambda: bool(connection.send_space) or connection.unsent_or_unacknowledged == 0
                   or len(received) >= size or _pending(connection, received))
    if bytes(received[:size]) != data:
        raise RuntimeError("echo returned other bytes than were sent")
    return size


def _pending(connection, received: bytearray) -> bool:
    """Bytes arrived for the client to read (so the echo loop reads them)."""
    more = connection.read()
    received.extend(more)
    return bool(more)


def measure(name: str, amount: float, profile: bool = False) -> dict:
    """One timing of one task on a fresh wire: CPU seconds (this process's: the machine is
    shared, so wall time would count other work), rate per CPU second, and the wire's counts."""
    wire = Wire()
    task = {"HTTP keep-alive": lambda: http_keepalive(wire, int(amount)),
            "HTTP new connections": lambda: http_new_connections(wire, int(amount)),
            "echo": lambda: echo(wire, amount)}[name]
    profiler = cProfile.Profile() if profile else None
    started = time.process_time()
    if profiler is not None:
        profiler.enable()
    task()
    if profiler is not None:
        profiler.disable()
    seconds = time.process_time() - started
    if profiler is not None:
        print(f"--- profile: {name} ---")
        pstats.Stats(profiler, stream=sys.stdout).sort_stats("tottime").print_stats(15)
    return {"seconds": seconds, "rate": amount / seconds, "timer_waits": wire.timer_waits,
            "segments": wire.segments}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="tcp_cost.py", description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=2000, help="keep-alive requests (2000)")
    parser.add_argument("--connections", type=int, default=500, help="new connections (500)")
    parser.add_argument("--megabytes", type=float, default=8.0, help="echo megabytes, 10^6 bytes (8)")
    parser.add_argument("--profile", action="store_true", help="print cProfile's top functions for each")
    args = parser.parse_args(argv)
    if args.requests < 1 or args.connections < 1 or not args.megabytes > 0:
        parser.error("--requests, --connections and --megabytes must be positive")
    for name, amount, unit in (("HTTP keep-alive", args.requests, "requests"),
                               ("HTTP new connections", args.connections, "requests"),
                               ("echo", args.megabytes, "MB")):
        found = measure(name, amount, args.profile)
        per = found["seconds"] / amount * 1e6
        if unit == "MB":
            print(f"{name:<22} {found['rate']:10.2f} MB/s        {per / 1000:8.1f} ms per MB       "
                  f"({found['segments']} segments, {found['timer_waits']} timer waits)")
        else:
            print(f"{name:<22} {found['rate']:10.0f} requests/s  {per:8.1f} us per request  "
                  f"({found['segments']} segments, {found['timer_waits']} timer waits)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
