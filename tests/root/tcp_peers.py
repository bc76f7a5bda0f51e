"""The kernel's side of the TCP/UDP device tests: small socket peers, each run in a namespace as
``python -m tests.root.tcp_peers NAME ARGS...``, printing one JSON line (the test reads it).

Kept apart from the tests so that starting one costs only Python's start (no pytest import).
Python's sockets need no extra package and are exact about bytes (nc is not). Everything is
bounded: connects retry for 5 s at most, reads and accepts time out, the flood stops after COUNT
SYNs or SECONDS + 2.
"""

from __future__ import annotations

import hashlib
import json
import random
import socket
import struct
import sys
import threading
import time


def pattern(seed: int, size: int) -> bytes:
    """SIZE reproducible random bytes (the tests compute the same to compare)."""
    return random.Random(seed).randbytes(size)




def _connect(address: str, port: int, timeout: float = 10) -> socket.socket:
    """A TCP connection from the kernel, retried briefly while the route to the stack appears."""
    deadline = time.monotonic() + 5
    while True:
        try:
            return socket.create_connection((address, port), timeout=timeout)
        except (ConnectionRefusedError, OSError):
            if time.monotonic() > deadline:
                raise
            time.sleep(0.05)


def _read_all(connection: socket.socket) -> bytes:
    chunks = []
    while chunk := connection.recv(65536):
        chunks.append(chunk)
    return b"".join(chunks)


def echo(address: str, port: str, size: str, seed: str) -> dict:
    """Send SIZE random bytes (and FIN) while reading what comes back, until the stack's FIN."""
    data = pattern(int(seed), int(size))
    started = time.monotonic()
    with _connect(address, int(port)) as connection:
        def send() -> None:
            connection.sendall(data)
            connection.shutdown(socket.SHUT_WR)
        sender = threading.Thread(target=send)
        sender.start()
        received = _read_all(connection)
        sender.join()
    return {"sent": len(data), "received": len(received), "equal": received == data,
            "seconds": time.monotonic() - started}


def rfc864_stream(size: int) -> bytes:
    """RFC 864's suggested pattern, written from the RFC (not from the stack's code): lines of 72
    of the 95 printable ASCII characters and CR LF, each line starting one character later."""
    printable = [chr(c) for c in range(32, 127)]
    lines = []
    line = 0
    while 74 * line < size:
        lines.append("".join(printable[(line + i) % 95] for i in range(72)) + "\r\n")
        line += 1
    return "".join(lines).encode()[:size]


def chargen(address: str, port: str) -> dict:
    started = time.monotonic()
    with _connect(address, int(port)) as connection:
        received = _read_all(connection)
    seconds = time.monotonic() - started
    return {"bytes": len(received), "seconds": seconds, "pattern": received == rfc864_stream(len(received))}


def read(address: str, port: str) -> dict:
    with _connect(address, int(port)) as connection:
        return {"text": _read_all(connection).decode()}


def udp(address: str, port: str, text: str) -> dict:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as udp:
        udp.settimeout(3)
        udp.connect((address, int(port)))
        udp.send(text.encode())
        try:
            return {"reply": udp.recv(2048).decode()}
        except ConnectionRefusedError:
            return {"refused": True}
        except TimeoutError:
            return {"timeout": True}


def serve(port: str, size: str, seed: str) -> dict:
    """Accept one connection (20 s at most), send SIZE random bytes and FIN while reading what
    arrives until the client's FIN."""
    data = pattern(int(seed), int(size))
    with socket.create_server(("0.0.0.0", int(port))) as server:
        server.settimeout(20)
        print("listening", flush=True)
        connection, _ = server.accept()
        with connection:
            connection.settimeout(20)
            def send() -> None:
                connection.sendall(data)
                connection.shutdown(socket.SHUT_WR)
            sender = threading.Thread(target=send)
            sender.start()
            received = _read_all(connection)
            sender.join()
    return {"received": len(received), "sha256": hashlib.sha256(received).hexdigest()}


def _checksum(data: bytes) -> int:
    if len(data) % 2:
        data += b"\0"
    total = sum(struct.unpack(f"!{len(data) // 2}H", data))
    while total >> 16:
        total = (total & 0xFFFF) + (total >> 16)
    return ~total & 0xFFFF


def flood(address: str, port: str, count: str, seconds: str) -> dict:
    """COUNT SYNs to ADDRESS:PORT from random sources in 198.51.100.0/24 and 203.0.113.0/24,
    spread evenly over SECONDS (bursts of 50), through a raw socket: bounded in count and time."""
    rng = random.Random(9)
    total, duration = int(count), float(seconds)
    destination = socket.inet_aton(address)
    sent = 0
    started = time.monotonic()
    with socket.socket(socket.AF_INET, socket.SOCK_RAW, socket.IPPROTO_RAW) as raw:
        while sent < total and time.monotonic() - started < duration + 2:
            for _ in range(min(50, total - sent)):
                source = socket.inet_aton(f"{rng.choice(('198.51.100', '203.0.113'))}.{rng.randrange(1, 255)}")
                tcp = struct.pack("!HHIIBBHHH", rng.randrange(1024, 65536), int(port), rng.getrandbits(32), 0,
                                  5 << 4, 0x02, 64240, 0, 0)
                pseudo = source + destination + struct.pack("!BBH", 0, socket.IPPROTO_TCP, len(tcp))
                tcp = tcp[:16] + struct.pack("!H", _checksum(pseudo + tcp)) + tcp[18:]
                ip = struct.pack("!BBHHHBBH4s4s", 0x45, 0, 20 + len(tcp), rng.getrandbits(16), 0, 64,
                                 socket.IPPROTO_TCP, 0, source, destination)
                raw.sendto(ip + tcp, (address, 0))  # the kernel fills the IPv4 checksum
                sent += 1
            time.sleep(max(0.0, started + duration * sent / total - time.monotonic()))
    return {"sent": sent}


PEERS = {"echo": echo, "chargen": chargen, "read": read, "udp": udp,
         "serve": serve, "flood": flood}

if __name__ == "__main__":
    print(json.dumps(PEERS[sys.argv[1]](*sys.argv[2:])))
