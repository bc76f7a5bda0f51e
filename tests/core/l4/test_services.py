"""The services (RFC 862, 863, 864, 867; HTTP/1.1 per RFC 9112) and their UDP twins.

A service only uses a connection's ``read``/``send``/``close``/``send_space``/
``finished_receiving``: the unit tests give it a stand-in with the same five, and the end-to-end
tests run it on real connections through two TcpLayers."""

from __future__ import annotations

import re

import pytest

from stack.l4.services import (CHARGEN_LINE, HTTP_MAXIMUM_HEAD, Chargen, Http, chargen_bytes, daytime_text,
                               tcp_service, udp_service)
from stack.l4.tcp_connection import TcpState
from tests.core.l4.test_tcp_layer import CLIENT, SERVER, exchange, pair


class Connection:
    """The five things a service uses, over two byte buffers."""

    def __init__(self, space: int = 1 << 20) -> None:
        self.inbox = bytearray()
        self.sent = bytearray()
        self.space = space
        self.closed = False
        self.fin = False

    @property
    def send_space(self) -> int:
        return 0 if self.closed else self.space - len(self.sent)

    def send(self, data: bytes) -> int:
        taken = min(len(data), self.send_space)
        self.sent += data[:taken]
        return taken

    def read(self, limit: int | None = None) -> bytes:
        limit = len(self.inbox) if limit is None else limit
        data = bytes(self.inbox[:limit])
        del self.inbox[:limit]
        return data

    def close(self) -> None:
        self.closed = True

    @property
    def finished_receiving(self) -> bool:
        return self.fin and not self.inbox


def run_service(spec: str, *chunks: bytes, fin: bool = False, **options) -> Connection:
    service = tcp_service(spec, **options)()
    connection = Connection()
    service.update(connection, 1.0)
    for chunk in chunks:
        connection.inbox += chunk
        service.update(connection, 2.0)
    if fin:
        connection.fin = True
        service.update(connection, 3.0)
    return connection


# ---------------------------------------------------------------------- echo, discard, chargen, daytime, banner


def test_rfc862_echo_sends_back_everything_and_closes_after_the_peer():
    connection = run_service("echo", b"abc", b"def", fin=True)
    assert connection.sent == b"abcdef" and connection.closed


def test_rfc862_echo_reads_only_what_it_can_send_back():
    service = tcp_service("echo")()
    connection = Connection(space=4)
    connection.inbox += b"0123456789"
    service.update(connection, 1.0)
    assert connection.sent == b"0123" and connection.inbox == b"456789"  # left for flow control


def test_rfc863_discard_sends_nothing():
    connection = run_service("discard", b"x" * 1000, fin=True)
    assert connection.sent == b"" and connection.closed and not connection.inbox


def test_rfc864_chargen_lines_are_72_rotating_printable_characters():
    text = chargen_bytes(0, 3 * (CHARGEN_LINE + 2))
    lines = text.split(b"\r\n")[:3]
    assert lines[0] == bytes(range(0x20, 0x20 + 72))
    assert lines[1] == bytes(range(0x21, 0x21 + 72))
    assert all(len(line) == 72 for line in lines)
    line_95 = chargen_bytes(95 * 74, 72)
    assert line_95 == lines[0]  # after 95 lines the pattern starts over
    assert chargen_bytes(100, 500) == chargen_bytes(0, 600)[100:]  # any slice of one stream


def test_rfc864_chargen_stops_at_its_bound_and_closes():
    connection = run_service("chargen", chargen_maximum=10_000)
    assert len(connection.sent) == 10_000 and connection.closed
    assert bytes(connection.sent) == chargen_bytes(0, 10_000)


def test_rfc867_daytime_sends_the_date_from_the_epoch_and_now_then_closes():
    connection = run_service("daytime", epoch=1_000_000_000.0)
    assert connection.sent == daytime_text(1_000_000_001.0) == b"Sunday, September 09, 2001 01:46:41-UTC\r\n"
    assert connection.closed


def test_banner_sends_its_line_on_connect_and_stays_open():
    connection = run_service("banner:SSH-2.0-OpenSSH_9.6", b"SSH-2.0-client\r\n")
    assert connection.sent == b"SSH-2.0-OpenSSH_9.6\r\n" and not connection.closed


@pytest.mark.parametrize("spec, message", [
    ("telnet", "unknown TCP service 'telnet' (choose from echo, discard, chargen, daytime, http, banner:TEXT)"),
    ("banner", "banner needs its text: banner:TEXT"),
    ("echo:5", "unknown TCP service 'echo:5'"),
])
def test_an_unknown_service_is_one_clear_error(spec, message):
    with pytest.raises(ValueError, match=re.escape(message)):
        tcp_service(spec)


def test_udp_services_answer_one_datagram_each():
    assert udp_service("echo")(b"ping", 1.0) == b"ping"
    assert udp_service("discard")(b"ping", 1.0) is None
    assert udp_service("daytime", epoch=0.0)(b"", 86400.0) == b"Friday, January 02, 1970 00:00:00-UTC\r\n"
    with pytest.raises(ValueError, match="choose from echo, discard, daytime"):
        udp_service("chargen")


# ---------------------------------------------------------------------- HTTP


GET = b"GET / HTTP/1.1\r\nHost: 192.0.2.2\r\n\r\n"


def responses(data: bytes) -> list[tuple[int, dict[str, str], bytes]]:
    """Split a byte stream of responses (each with Content-Length)."""
    out = []
    while data:
        head, _, rest = data.partition(b"\r\n\r\n")
        lines = head.decode().split("\r\n")
        status = int(lines[0].split()[1])
        fields = {k.lower(): v for k, v in (line.split(": ", 1) for line in lines[1:])}
        length = int(fields["content-length"])
        out.append((status, fields, rest[:length]))
        data = rest[length:]
    return out


def test_rfc9112_http_answers_200_with_the_body_and_keeps_the_connection():
    connection = run_service("http", GET, http_body=b"hi\n")
    [(status, fields, body)] = responses(bytes(connection.sent))
    assert (status, body, fields["content-length"]) == (200, b"hi\n", "3")
    assert not connection.closed and "connection" not in fields


def test_rfc9112_9_3_2_pipelined_requests_are_answered_in_order_even_split_anywhere():
    stream = GET + b"HEAD /x HTTP/1.1\r\nHost: h\r\n\r\n" + b"POST /y HTTP/1.1\r\nHost: h\r\nContent-Length: 5\r\n\r\nabcde" \
        + b"GET /z HTTP/1.1\r\nHost: h\r\nConnection: close\r\n\r\n"
    for cut in range(0, len(stream), 7):
        connection = run_service("http", stream[:cut], stream[cut:])
        answers = responses_with_head(bytes(connection.sent))
        assert [a[0] for a in answers] == [200, 200, 200, 200]
        assert [a[2] for a in answers] == [b"Hello from tapstack\n", b"", b"Hello from tapstack\n",
                                           b"Hello from tapstack\n"]
        assert answers[-1][1]["connection"] == "close" and connection.closed


def responses_with_head(data: bytes) -> list:
    """Like ``responses``, knowing the second answer is to HEAD (a Content-Length, no body)."""
    out = []
    index = 0
    while data:
        head, _, rest = data.partition(b"\r\n\r\n")
        lines = head.decode().split("\r\n")
        fields = {k.lower(): v for k, v in (line.split(": ", 1) for line in lines[1:])}
        length = 0 if index == 1 else int(fields["content-length"])
        out.append((int(lines[0].split()[1]), fields, rest[:length]))
        data = rest[length:]
        index += 1
    return out


@pytest.mark.parametrize("request_bytes, status", [
    (b"NONSENSE\r\n\r\n", 400),  # RFC 9112 3: not a request line
    (b"GET / HTTP/1.1\r\n\r\n", 400),  # RFC 9112 3.2: no Host
    (b"GET / HTTP/1.1\r\nHost : x\r\n\r\n", 400),  # RFC 9112 5.1: space before the colon
    (b"GET / HTTP/1.1\r\nHost: x\r\nContent-Length: -1\r\n\r\n", 400),  # RFC 9112 6.3
    (b"POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n", 501),  # RFC 9112 6.1
    (b"GET / HTTP/2.0\r\nHost: x\r\n\r\n", 505),
    (b"GET /" + b"a" * HTTP_MAXIMUM_HEAD + b" HTTP/1.1\r\n", 431),  # RFC 6585 5
], ids=["request-line", "no-host", "space-before-colon", "bad-length", "chunked", "http2", "too-large"])
def test_a_malformed_request_gets_an_error_and_close(request_bytes, status):
    connection = run_service("http", request_bytes + GET)
    [(answer, fields, _)] = responses(bytes(connection.sent))
    assert answer == status and fields["connection"] == "close" and connection.closed


def test_rfc9112_9_3_http_1_0_closes_unless_it_asks_for_keep_alive():
    closing = run_service("http", b"GET / HTTP/1.0\r\n\r\n")
    assert closing.closed and responses(bytes(closing.sent))[0][1]["connection"] == "close"
    kept = run_service("http", b"GET / HTTP/1.0\r\nConnection: Keep-Alive\r\n\r\n")
    assert not kept.closed and responses(bytes(kept.sent))[0][1]["connection"] == "keep-alive"


def test_rfc9112_2_2_empty_lines_before_a_request_and_bare_lf_are_accepted():
    connection = run_service("http", b"\r\n" + b"GET / HTTP/1.1\nHost: x\n\n")
    assert responses(bytes(connection.sent))[0][0] == 200


def test_rfc9110_6_6_1_date_is_sent_when_the_server_has_a_clock():
    connection = run_service("http", GET, epoch=1_000_000_000.0)
    assert responses(bytes(connection.sent))[0][1]["date"] == "Sun, 09 Sep 2001 01:46:42 GMT"
    assert "date" not in responses(bytes(run_service("http", GET).sent))[0][1]


def test_http_waits_for_send_space_instead_of_dropping_an_answer():
    service = Http(b"x" * 100)
    connection = Connection(space=300)  # room for one answer (about 200 bytes), not two
    connection.inbox += GET * 3
    service.update(connection, 1.0)
    assert len(responses(bytes(connection.sent))) == 1
    connection.space += 10_000
    service.update(connection, 2.0)
    assert len(responses(bytes(connection.sent))) == 3


def test_http_closes_after_the_peer_does_once_every_request_is_answered():
    connection = run_service("http", GET, fin=True)
    assert connection.closed and len(responses(bytes(connection.sent))) == 1


# ---------------------------------------------------------------------- end to end over TcpLayers


def test_chargen_end_to_end_is_bounded_and_exact():
    net, client, server = pair("chargen", port=19)
    server._listeners.clear()
    server.listen(19, lambda: Chargen(300_000))
    connection, received = exchange(net, client, CLIENT, SERVER, 19, b"", close=False)
    assert received == chargen_bytes(0, 300_000)
    assert connection.state in (TcpState.LAST_ACK, TcpState.CLOSED, TcpState.TIME_WAIT)


def test_banner_end_to_end():
    net, client, server = pair("banner:220 tapstack ESMTP", port=25)
    connection, out = client.connect(CLIENT, SERVER, 25, net.now)
    net.send(out)
    net.run(lambda: connection.read(0) == b"" and len(connection._received) > 0, limit=5)
    assert connection.read() == b"220 tapstack ESMTP\r\n"
