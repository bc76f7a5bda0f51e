"""The TCP benchmark's client: a small Python socket client, bounded in count and time.

Run (inside the client's namespace):
  python bench/tcp_client.py http-keepalive ADDRESS PORT COUNT   COUNT requests, one connection
  python bench/tcp_client.py http-new ADDRESS PORT COUNT         COUNT connections, one request each
  python bench/tcp_client.py echo ADDRESS PORT BYTES             BYTES sent and read back
  python bench/tcp_client.py probe ADDRESS PORT                  connect once (is it listening?)
  [--deadline SECONDS]  give up after this long in all (default 120)

One request in flight at a time (the next goes when the whole response is in): requests per
second is then the inverse of the time a request takes, what one user sees. http-new sends
``Connection: close`` and reads to the end of the stream, as a client without keep-alive does.
Echo sends from one buffer and reads back into another at once (non-blocking, one selector)
and checks every byte. Prints one JSON line: what, how many, seconds (wall, from the first
connect to the last byte), rate, and the first response (to compare servers). Exit status 1
with one line on stderr when a server misbehaves or the deadline passes, 2 on bad usage.
"""

from __future__ import annotations

import argparse
import json
import selectors
import socket
import sys
import time

CONNECT_TIMEOUT_S = 5.0
CHUNK = 65536


class ClientError(Exception):
    """The server did not do what the benchmark needs."""


def http_request(host: str, close: bool) -> bytes:
    """The same request tcp_cost.py sends in process."""
    return (f"GET / HTTP/1.1\r\nHost: {host}\r\nUser-Agent: tcp_bench\r\n"
            + ("Connection: close\r\n" if close else "") + "\r\n").encode()


def connect(address: str, port: int, deadline: float) -> socket.socket:
    sock = socket.create_connection((address, port), timeout=min(CONNECT_TIMEOUT_S, remaining(deadline)))
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)  # as HTTP clients do (curl)
    return sock


def remaining(deadline: float) -> float:
    left = deadline - time.monotonic()
    if left <= 0:
        raise ClientError("deadline passed")
    return left


def read_response(sock: socket.socket, buffer: bytearray, deadline: float, to_end: bool) -> bytes:
    """One HTTP response (head + Content-Length bytes) from ``buffer`` and the socket; with
    ``to_end`` the stream must end right after it. What follows it stays in ``buffer``."""
    total = None
    while True:
        if total is None and (end := buffer.find(b"\r\n\r\n")) >= 0:
            length = 0
            for line in bytes(buffer[:end]).split(b"\r\n")[1:]:
                name, _, value = line.partition(b":")
                if name.strip().lower() == b"content-length":
                    length = int(value)
            total = end + 4 + length
            if not buffer.startswith(b"HTTP/1.1 200 "):
                raise ClientError(f"not a 200 response: {bytes(buffer[:end])[:200]!r}")
        if total is not None and len(buffer) >= total and not to_end:
            response = bytes(buffer[:total])
            del buffer[:total]
            return response
        sock.settimeout(remaining(deadline))
        data = sock.recv(CHUNK)
        if not data:
            if total is not None and len(buffer) == total:
                return bytes(buffer)
            raise ClientError(f"the server closed after {len(buffer)} bytes of a response")
        buffer += data


def http_keepalive(address: str, port: int, count: int, deadline: float) -> tuple[float, str]:
    request = http_request(address, close=False)
    buffer = bytearray()
    started = time.monotonic()
    with connect(address, port, deadline) as sock:
        first = ""
        for index in range(count):
            sock.sendall(request)
            response = read_response(sock, buffer, deadline, to_end=False)
            if index == 0:
                first = response.decode("latin-1")
        seconds = time.monotonic() - started
    return seconds, first


def http_new(address: str, port: int, count: int, deadline: float) -> tuple[float, str]:
    request = http_request(address, close=True)
    started = time.monotonic()
    first = ""
    for index in range(count):
        with connect(address, port, deadline) as sock:
            sock.sendall(request)
            response = read_response(sock, bytearray(), deadline, to_end=True)
        if index == 0:
            first = response.decode("latin-1")
    return time.monotonic() - started, first


def echo(address: str, port: int, size: int, deadline: float) -> tuple[float, str]:
    data = (bytes(range(256)) * (size // 256 + 1))[:size]
    received = bytearray(size)
    view, sent, got = memoryview(received), 0, 0
    started = time.monotonic()
    with connect(address, port, deadline) as sock, selectors.DefaultSelector() as selector:
        sock.setblocking(False)
        selector.register(sock, selectors.EVENT_READ | selectors.EVENT_WRITE)
        while got < size:
            for _, events in selector.select(timeout=remaining(deadline)):
                if events & selectors.EVENT_WRITE and sent < size:
                    try:
                        sent += sock.send(data[sent:sent + CHUNK])
                    except BlockingIOError:
                        pass
                    if sent == size:
                        sock.shutdown(socket.SHUT_WR)  # echo closes once we have
                        selector.modify(sock, selectors.EVENT_READ)
                if events & selectors.EVENT_READ:
                    try:
                        count = sock.recv_into(view[got:])
                    except BlockingIOError:
                        continue
                    if count == 0:
                        raise ClientError(f"the server closed after echoing {got} of {size} bytes")
                    got += count
        seconds = time.monotonic() - started
    if received != data:
        raise ClientError("echo returned other bytes than were sent")
    return seconds, ""


def probe(address: str, port: int, deadline: float) -> tuple[float, str]:
    started = time.monotonic()
    connect(address, port, deadline).close()
    return time.monotonic() - started, ""


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="tcp_client.py", description=__doc__.splitlines()[0])
    parser.add_argument("what", choices=["http-keepalive", "http-new", "echo", "probe"])
    parser.add_argument("address")
    parser.add_argument("port", type=int)
    parser.add_argument("amount", type=int, nargs="?", default=1, help="requests, connections or bytes")
    parser.add_argument("--deadline", type=float, default=120.0, help="seconds in all (120)")
    args = parser.parse_args(argv)
    if args.amount < 1 or not 1 <= args.port <= 65535 or not args.deadline > 0:
        parser.error("the amount and the deadline must be positive, the port 1..65535")
    deadline = time.monotonic() + args.deadline
    try:
        if args.what == "http-keepalive":
            seconds, first = http_keepalive(args.address, args.port, args.amount, deadline)
        elif args.what == "http-new":
            seconds, first = http_new(args.address, args.port, args.amount, deadline)
        elif args.what == "echo":
            seconds, first = echo(args.address, args.port, args.amount, deadline)
        else:
            seconds, first = probe(args.address, args.port, deadline)
    except (ClientError, OSError) as error:  # socket.timeout is an OSError
        print(f"tcp_client: {args.what} {args.address} {args.port}: {error or type(error).__name__}",
              file=sys.stderr)
        return 1
    print(json.dumps({"what": args.what, "amount": args.amount, "seconds": seconds,
                      "rate": args.amount / seconds if seconds > 0 else None, "first_response": first}))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
