"""Small applications a listener runs on its connections, and their UDP twins, all sans-I/O.

Read first: RFC 862 (echo), RFC 863 (discard), RFC 864 (chargen), RFC 867 (daytime);
RFC 9112 (HTTP/1.1 messages) and RFC 9110 (HTTP semantics) for ``http``.

A TCP service is an object with ``update(connection, now)``, made fresh for each connection
(``TcpLayer.listen(port, factory)``); the layer calls it once the connection is established and
after every event. It reads, sends and closes through the connection and never waits: when the
send buffer is full it leaves the received bytes unread, so the window closes on the peer.

Wall-clock time (daytime, HTTP's Date) is ``epoch + now``: the runtime passes the epoch its
monotonic clock started at (``time.time() - time.monotonic()``); the core reads no clock.

``tcp_service("banner:SSH-2.0-OpenSSH_9.6")`` and ``udp_service("echo")`` make them from the
names the command line will use.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from datetime import datetime, timezone
from email.utils import formatdate

from stack.l4.tcp_connection import TcpConnection
from stack.l4.tcp_layer import ServiceFactory, TcpService
from stack.l4.udp import UdpService

#: RFC 864: chargen sends until the user closes; we stop after this many bytes and close.
CHARGEN_MAXIMUM_BYTES = 1 << 20
#: RFC 864: 72 printable characters a line, each line starting one character further on.
CHARGEN_LINE = 72
_PRINTABLE = bytes(range(0x20, 0x7F))  # the 95 printable ASCII characters
#: The body ``http`` answers with unless told otherwise.
HTTP_BODY = b"Hello from tapstack\n"
#: Longest request head (request line and fields) ``http`` reads; longer gets 431 and close.
HTTP_MAXIMUM_HEAD = 8192


def _close_when_peer_closed(connection: TcpConnection) -> None:
    if connection.finished_receiving:
        connection.close()  # the peer sent FIN and everything before it was read: close our side


class Echo:
    """RFC 862: send back whatever is received, until the peer closes."""

    def update(self, connection: TcpConnection, now: float) -> None:
        # Read only what can be sent back: the rest stays in the receive buffer (flow control).
        connection.send(connection.read(connection.send_space))
        _close_when_peer_closed(connection)


class Discard:
    """RFC 863: throw away whatever is received, until the peer closes."""

    def update(self, connection: TcpConnection, now: float) -> None:
        connection.read()
        _close_when_peer_closed(connection)


class Chargen:
    """RFC 864: send lines of rotating printable characters, ignoring what is received; closes
    after ``maximum`` bytes (the RFC lets it run until the user closes) or when the peer does."""

    def __init__(self, maximum: int = CHARGEN_MAXIMUM_BYTES) -> None:
        self.maximum = maximum
        self.sent = 0

    def update(self, connection: TcpConnection, now: float) -> None:
        connection.read()  # RFC 864: data received is thrown away
        if connection.finished_receiving:
            connection.close()
            return
        while self.sent < self.maximum and connection.send_space:
            chunk = chargen_bytes(self.sent, min(connection.send_space, self.maximum - self.sent, 16384))
            self.sent += connection.send(chunk)
        if self.sent >= self.maximum:
            connection.close()


def chargen_bytes(offset: int, count: int) -> bytes:
    """Bytes ``offset`` to ``offset + count`` of the RFC 864 stream: 72 characters and CR LF a
    line, line n starting at the n-th printable character."""
    out = bytearray()
    width = CHARGEN_LINE + 2
    while len(out) < count:
        line, column = divmod(offset + len(out), width)
        start = line % len(_PRINTABLE)
        text = (_PRINTABLE[start:] + _PRINTABLE[:start])[:CHARGEN_LINE] + b"\r\n"
        out += text[column:column + count - len(out)]
    return bytes(out)


def daytime_text(wall_clock: float) -> bytes:
    """RFC 867: the date and time as a line (the RFC fixes no syntax; this is its example's,
    in UTC): ``Monday, November 30, 2026 12:00:00-UTC``."""
    moment = datetime.fromtimestamp(wall_clock, tz=timezone.utc)
    return moment.strftime("%A, %B %d, %Y %H:%M:%S-UTC").encode() + b"\r\n"


class Daytime:
    """RFC 867: send the date and time on connect, then close."""

    def __init__(self, epoch: float = 0.0) -> None:
        self.epoch = epoch
        self.done = False

    def update(self, connection: TcpConnection, now: float) -> None:
        connection.read()  # RFC 867: any data received is thrown away
        if not self.done:
            self.done = True
            connection.send(daytime_text(self.epoch + now))
            connection.close()


class Banner:
    """Send a line on connect (an SSH or SMTP greeting, for scanners to read), then discard
    what arrives until the peer closes."""

    def __init__(self, text: bytes) -> None:
        self.text = text if text.endswith(b"\n") else text + b"\r\n"
        self.sent = False

    def update(self, connection: TcpConnection, now: float) -> None:
        if not self.sent:
            self.sent = True
            connection.send(self.text)
        connection.read()
        _close_when_peer_closed(connection)


_REQUEST_LINE = re.compile(rb"([!#$%&'*+.^_`|~0-9A-Za-z-]+) (\S+) HTTP/(\d)\.(\d)")
_FIELD = re.compile(rb"([!#$%&'*+.^_`|~0-9A-Za-z-]+):[ \t]*(.*?)[ \t]*")
_END_OF_HEAD = re.compile(rb"\r?\n\r?\n")
_REASONS = {200: "OK", 400: "Bad Request", 431: "Request Header Fields Too Large", 501: "Not Implemented",
            505: "HTTP Version Not Supported"}


class Http:
    """A tiny HTTP/1.1 origin server: any request gets ``200 OK`` and ``body``.

    Requests are read in order (pipelined ones answered in order, RFC 9112 9.3.2); a request's
    body (Content-Length) is read and thrown away; keep-alive is the default for HTTP/1.1 and
    ``Connection: close`` closes after the answer (RFC 9112 9.3 and 9.6); HTTP/1.0 closes unless
    it asks for keep-alive. A malformed request gets 400 and close. Not implemented: chunked
    request bodies (501 and close, RFC 9112 6.1), ``Expect: 100-continue`` (ignored, so the
    client sends its body after its wait), any method semantics (GET, HEAD, POST all answered
    alike; HEAD without the body, RFC 9110 9.3.2).
    """

    def __init__(self, body: bytes = HTTP_BODY, epoch: float | None = None) -> None:
        self.body = body
        self.epoch = epoch
        self.buffer = bytearray()
        self.body_remaining = 0
        self.closing = False
        self.answered = 0
        self.pending: tuple[bytes, bool, int] | None = None

    def update(self, connection: TcpConnection, now: float) -> None:
        if self.closing:
            connection.read()
            return
        # Read no more than a head's worth ahead (what is unread keeps the peer's window small).
        self.buffer += connection.read(max(2 * HTTP_MAXIMUM_HEAD - len(self.buffer), 0))
        while not self.closing:
            if self.body_remaining:
                taken = min(self.body_remaining, len(self.buffer))
                del self.buffer[:taken]
                self.body_remaining -= taken
                if self.body_remaining:
                    break
            if self.pending is None:
                self.pending = self._next_answer(now)
            if self.pending is None:
                break
            response, close, body_length = self.pending
            if connection.send_space < len(response):
                break  # no room yet: the answer waits until ACKs free some
            self.pending = None
            connection.send(response)
            self.answered += 1
            if close:
                self.closing = True
                connection.close()
                return
            self.body_remaining = body_length
            self.buffer += connection.read(max(2 * HTTP_MAXIMUM_HEAD - len(self.buffer), 0))
        if connection.finished_receiving and not self.body_remaining and self.pending is None \
                and _END_OF_HEAD.search(self.buffer) is None:
            connection.close()  # the peer closed and every whole request was answered

    def _next_answer(self, now: float) -> tuple[bytes, bool, int] | None:
        """The answer to the request at the head of the buffer (and drop its head), or None
        until a whole head has arrived."""
        while self.buffer.startswith(b"\r\n") or self.buffer.startswith(b"\n"):
            # RFC 9112 2.2: a server SHOULD ignore at least one empty line before the request line.
            del self.buffer[:2 if self.buffer.startswith(b"\r\n") else 1]
        end = _END_OF_HEAD.search(self.buffer)
        if end is None:
            if len(self.buffer) > HTTP_MAXIMUM_HEAD:
                return self._error(431, now)  # RFC 6585 5: request header fields too large
            return None
        head = bytes(self.buffer[:end.start()])
        del self.buffer[:end.end()]
        if end.start() > HTTP_MAXIMUM_HEAD:
            return self._error(431, now)
        # RFC 9112 2.2: a lone LF may be taken as a line terminator.
        lines = head.replace(b"\r\n", b"\n").split(b"\n")
        request = _REQUEST_LINE.fullmatch(lines[0])
        if request is None:
            return self._error(400, now)  # RFC 9112 3: an invalid request line gets 400
        method, _, major, minor = request.groups()
        if major != b"1":
            return self._error(505, now)  # RFC 9110 15.6.6: major version not supported
        fields: dict[bytes, bytes] = {}
        for line in lines[1:]:
            field = _FIELD.fullmatch(line)
            if field is None:
                # RFC 9112 5.1: whitespace before the colon (or no colon) MUST be answered 400.
                return self._error(400, now)
            name = field.group(1).lower()
            fields[name] = fields[name] + b", " + field.group(2) if name in fields else field.group(2)
        http11 = minor != b"0"
        if http11 and b"host" not in fields:
            return self._error(400, now)  # RFC 9112 3.2: HTTP/1.1 without Host MUST get 400
        if b"transfer-encoding" in fields:
            return self._error(501, now)  # RFC 9112 6.1: a coding not understood: 501 (and close)
        length = fields.get(b"content-length", b"0")
        if not length.isdigit() or len(length) > 12:
            return self._error(400, now)  # RFC 9112 6.3 (5): an invalid Content-Length is an error
        tokens = {t.strip().lower() for t in fields.get(b"connection", b"").split(b",")}
        # RFC 9112 9.3: HTTP/1.1 persists unless "close"; HTTP/1.0 only with "keep-alive".
        close = b"close" in tokens or (not http11 and b"keep-alive" not in tokens)
        extra = b"" if http11 or close else b"Connection: keep-alive\r\n"
        response = self._response(200, self.body, now, close, extra, head_only=method == b"HEAD")
        return response, close, int(length)

    def _error(self, status: int, now: float) -> tuple[bytes, bool, int]:
        self.buffer.clear()
        return self._response(status, f"{status} {_REASONS[status]}\n".encode(), now, True), True, 0

    def _response(self, status: int, body: bytes, now: float, close: bool, extra: bytes = b"",
                  head_only: bool = False) -> bytes:
        head = [f"HTTP/1.1 {status} {_REASONS[status]}\r\n".encode(), b"Server: tapstack\r\n"]
        if self.epoch is not None:
            # RFC 9110 6.6.1: an origin server with a clock MUST send Date.
            head.append(b"Date: " + formatdate(self.epoch + now, usegmt=True).encode() + b"\r\n")
        head.append(b"Content-Type: text/plain; charset=utf-8\r\n")
        head.append(b"Content-Length: %d\r\n" % len(body))  # RFC 9110 8.6 (also for HEAD, 9.3.2)
        if close:
            head.append(b"Connection: close\r\n")  # RFC 9112 9.6: say so before closing
        head.append(extra + b"\r\n")
        return b"".join(head) + (b"" if head_only else body)


#: The TCP services by the name ``--tcp PORT:SERVICE`` will use (``banner:TEXT`` aside).
TCP_SERVICES = ("echo", "discard", "chargen", "daytime", "http", "banner:TEXT")


def tcp_service(spec: str, *, epoch: float | None = None, http_body: bytes = HTTP_BODY,
                chargen_maximum: int = CHARGEN_MAXIMUM_BYTES) -> ServiceFactory:
    """The factory for a service named ``spec`` (``echo``, ``http``, ``banner:TEXT``, ...);
    ValueError, naming the choices, for anything else. ``epoch`` makes ``now`` wall-clock time
    (daytime, HTTP's Date); without it daytime counts from 1970 and HTTP sends no Date."""
    name, colon, argument = spec.partition(":")
    factories: dict[str, Callable[[], TcpService]] = {
        "echo": Echo, "discard": Discard,
        "chargen": lambda: Chargen(chargen_maximum),
        "daytime": lambda: Daytime(epoch or 0.0),
        "http": lambda: Http(http_body, epoch),
    }
    if name == "banner":
        if not argument:
            raise ValueError("banner needs its text: banner:TEXT")
        text = argument.encode()
        return lambda: Banner(text)
    if colon or name not in factories:
        raise ValueError(f"unknown TCP service {spec!r} (choose from {', '.join(TCP_SERVICES)})")
    return factories[name]


# ---------------------------------------------------------------------- UDP: a datagram in, at most one out


def udp_echo(payload: bytes, now: float) -> bytes:
    """RFC 862: send back the data of the datagram."""
    return payload


def udp_discard(payload: bytes, now: float) -> None:
    """RFC 863: throw the datagram away (no answer)."""
    return None


def udp_daytime(epoch: float = 0.0) -> UdpService:
    """RFC 867: any datagram is answered with the date and time (its data is thrown away)."""

    def daytime(payload: bytes, now: float) -> bytes:
        return daytime_text(epoch + now)

    return daytime


UDP_SERVICES = ("echo", "discard", "daytime")


def udp_service(spec: str, *, epoch: float = 0.0) -> UdpService:
    """The UDP service named ``spec``; ValueError, naming the choices, for anything else."""
    if spec == "echo":
        return udp_echo
    if spec == "discard":
        return udp_discard
    if spec == "daytime":
        return udp_daytime(epoch)
    raise ValueError(f"unknown UDP service {spec!r} (choose from {', '.join(UDP_SERVICES)})")
