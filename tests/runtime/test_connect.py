"""``tapstack connect``'s session (stack/runtime/connect.py): a client host with a
ConnectSession on its input (a pipe) and output, a server host on an in-memory wire; data both
ways byte-exact, closing, refusal and the connect timeout."""

from __future__ import annotations

import os
from ipaddress import ip_address

from stack import TunHost
from stack.buffers import join
from stack.l4.services import tcp_service
from stack.runtime.connect import ConnectSession


def run(session: ConnectSession, client, server, limit: float = 60.0, step: float = 0.01, deaf: bool = False) -> float:
    """The session's and both hosts' frames carried until the session is done (``deaf``: the
    server hears nothing)."""
    now = 0.0
    pending: list = []
    while now < limit and not session.done():
        pending += [(server, f) for f in session.poll(now)]
        while pending:
            receiver, frame = pending.pop(0)
            if deaf and receiver is server:
                continue
            other = client if receiver is server else server
            pending += [(other, f) for f in receiver.receive(join(frame), now)]
        now += step
        pending += [(server, f) for f in client.poll(now)] + [(client, f) for f in server.poll(now)]
    return now


def hosts():
    return TunHost(["192.0.2.1"], peer="192.0.2.2"), TunHost(["192.0.2.2"], peer="192.0.2.1")


def session_with_input(client, port: int, data: bytes, **keywords):
    reader, writer = os.pipe()
    os.write(writer, data)  # (small enough for the pipe's buffer)
    os.close(writer)
    os.set_blocking(reader, False)
    received = bytearray()
    session = ConnectSession(client, ip_address("192.0.2.2"), port, reader, received.extend, **keywords)
    return session, received, reader


def test_the_input_goes_to_an_echo_server_and_comes_back_then_both_close():
    client, server = hosts()
    server.listen(7, tcp_service("echo"))
    data = bytes(range(256)) * 100
    session, received, reader = session_with_input(client, 7, data)
    run(session, client, server)
    os.close(reader)
    assert session.done() and session.error is None
    assert bytes(received) == data


def test_a_server_that_closes_first_ends_the_session():
    client, server = hosts()
    server.listen(13, tcp_service("daytime"))
    reader, writer = os.pipe()  # input never ends: the server's close must end the session
    os.set_blocking(reader, False)
    received = bytearray()
    session = ConnectSession(client, ip_address("192.0.2.2"), 13, reader, received.extend)
    run(session, client, server)
    os.close(reader)
    os.close(writer)
    assert session.done() and session.error is None and received.endswith(b"\r\n")


def test_a_closed_port_is_refused():
    client, server = hosts()
    session, received, reader = session_with_input(client, 81, b"x")
    run(session, client, server)
    os.close(reader)
    assert session.error == "connection refused" and received == bytearray()


def test_no_answer_times_out_after_the_wait():
    client, server = hosts()
    session, _, reader = session_with_input(client, 7, b"x", connect_timeout=2.0)
    now = run(session, client, server, deaf=True)
    os.close(reader)
    assert session.error == "connection timed out" and 2.0 <= now < 2.5
