"""The TCP benchmark's yardstick: the kernel's TCP serving what tapstack serves, from a minimal
Python socket server.

Run (inside the server's namespace):  python bench/tcp_yardstick.py --ip ADDRESS
                                      [--http-port 80] [--echo-port 7] [--no-date]

HTTP on ``--http-port``: every request (a head ending in an empty line) is answered with the
very bytes tapstack's ``http`` service sends, computed at start-up by that service itself
(stack.l4.services, through two TcpLayers in memory: bench/tcp_cost.py), with ``Connection:
close`` and a close after it when the request asks for it; the ``Date`` line carries the
start-up time (same length as tapstack's; ``--no-date`` leaves it out, as tapstack does without
a clock). Echo on ``--echo-port``: ``recv`` and ``sendall`` until the peer closes. One thread
per port, one connection at a time each, blocking sockets, TCP_NODELAY (tapstack does not
delay small segments either). No parsing beyond finding the end of a head: the floor of what a
Python server adds to the kernel's TCP. SIGTERM or SIGINT: exit 0.
"""

from __future__ import annotations

import argparse
import signal
import socket
import sys
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import tcp_cost  # noqa: E402

CHUNK = 65536


def responses(epoch: float | None) -> tuple[bytes, bytes]:
    """tapstack's http answers (keep-alive, close) to tcp_client.py's two requests."""
    keepalive = tcp_cost.http_keepalive(tcp_cost.Wire(epoch=epoch), 1)[0]
    close = tcp_cost.http_new_connections(tcp_cost.Wire(epoch=epoch), 1)[0]
    return keepalive, close


def serve_http(connection: socket.socket, keepalive: bytes, close: bytes) -> None:
    buffer = b""
    while True:
        data = connection.recv(CHUNK)
        if not data:
            return
        buffer += data
        while (end := buffer.find(b"\r\n\r\n")) >= 0:
            head, buffer = buffer[:end], buffer[end + 4:]
            if b"\r\nconnection: close" in head.lower():
                connection.sendall(close)
                return
            connection.sendall(keepalive)


def serve_echo(connection: socket.socket) -> None:
    while data := connection.recv(CHUNK):
        connection.sendall(data)


def listen(address: str, port: int, serve) -> None:
    family = socket.AF_INET6 if ":" in address else socket.AF_INET
    server = socket.socket(family, socket.SOCK_STREAM)
    server.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    server.bind((address, port))
    server.listen(128)

    def accept_forever() -> None:
        while True:
            connection, _ = server.accept()
            with connection:
                connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
                try:
                    serve(connection)
                except OSError:  # the client reset: next connection
                    pass

    threading.Thread(target=accept_forever, daemon=True).start()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="tcp_yardstick.py", description=__doc__.splitlines()[0])
    parser.add_argument("--ip", required=True)
    parser.add_argument("--http-port", type=int, default=80)
    parser.add_argument("--echo-port", type=int, default=7)
    parser.add_argument("--no-date", action="store_true", help="answer without a Date line")
    args = parser.parse_args(argv)
    keepalive, close = responses(None if args.no_date else time.time())
    stopping = {signal.SIGTERM, signal.SIGINT}
    signal.pthread_sigmask(signal.SIG_BLOCK, stopping)  # the threads inherit the mask: main waits
    try:
        listen(args.ip, args.http_port, lambda c: serve_http(c, keepalive, close))
        listen(args.ip, args.echo_port, serve_echo)
    except OSError as error:
        print(f"tcp_yardstick: {error}", file=sys.stderr)
        return 1
    signal.sigwait(stopping)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
