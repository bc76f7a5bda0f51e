"""TCP and UDP services on whole hosts (issue 16): two TapHosts (or TunHosts) on an in-memory
wire, one serving, the other connecting with ``connect``; UDP services answered, refused and
unreachable. The expected bytes come from the RFCs (862, 863, 867, HTTP/1.1) and dpkt."""

from __future__ import annotations

from ipaddress import ip_address

import dpkt
import pytest

from stack import TapHost, TunHost
from stack.buffers import join
from stack.l4.services import HTTP_BODY, tcp_service, udp_service
from stack.l4.tcp_connection import TcpState
from stack.testing import frames


def wire(a, b, pending: list, now: float, until, limit: float = 30.0, step: float = 0.01) -> float:
    """Carry frames between ``a`` and ``b`` (pending: (receiver, frame)), running both hosts'
    timers, until ``until()`` or ``limit`` seconds of simulated time."""
    end = now + limit
    while now < end and not until():
        while pending:
            receiver, frame = pending.pop(0)
            other = b if receiver is a else a
            pending += [(other, f) for f in receiver.receive(join(frame), now)]
        now += step
        pending += [(b, f) for f in a.poll(now)] + [(a, f) for f in b.poll(now)]
    return now


def tap_pair(family: int):
    if family == 4:
        return TapHost(["192.0.2.1/24"]), TapHost(["192.0.2.2/24"]), "192.0.2.2"
    return (TapHost(["2001:db8::1/64"], dad_transmits=0), TapHost(["2001:db8::2/64"], dad_transmits=0),
            "2001:db8::2")


def tun_pair(family: int):
    if family == 4:
        return TunHost(["192.0.2.1"], peer="192.0.2.2"), TunHost(["192.0.2.2"], peer="192.0.2.1"), "192.0.2.2"
    return TunHost(["2001:db8::1"], peer="2001:db8::2"), TunHost(["2001:db8::2"], peer="2001:db8::1"), "2001:db8::2"


def talk(pair, port: int, service: str, request: bytes, family: int, close: bool = True) -> bytes:
    """Connect from the first host to the second's ``port`` running ``service``; send
    ``request`` (then close our side when ``close``) and return all that came back."""
    client, server, address = pair(family)
    server.listen(port, tcp_service(service, epoch=0.0))
    connection, out = client.connect(address, port, 0.0)
    pending = [(server, f) for f in out]
    now = wire(client, server, pending, 0.0, lambda: connection.established)
    assert connection.established
    connection.send(request)
    if close:
        connection.close()
    received = bytearray()

    def done() -> bool:
        received.extend(connection.read())
        return connection.closed or connection.state is TcpState.TIME_WAIT or (
            not close and b"\r\n\r\n" in received and received.endswith(b"tapstack\n"))

    wire(client, server, [(server, f) for f in client.poll(now)], now, done)
    return bytes(received)


@pytest.mark.parametrize("pair", [tap_pair, tun_pair])
@pytest.mark.parametrize("family", [4, 6])
def test_echo_over_tcp_returns_every_byte(pair, family):
    data = bytes(range(256)) * 200  # 51,200 bytes: many segments, both directions
    assert talk(pair, 7, "echo", data, family) == data


@pytest.mark.parametrize("family", [4, 6])
def test_http_answers_200_with_the_body(family):
    answer = talk(tap_pair, 80, "http", b"GET / HTTP/1.1\r\nHost: tapstack\r\n\r\n", family, close=False)
    response = dpkt.http.Response(answer)
    assert response.status == "200" and response.body == HTTP_BODY


def test_discard_and_daytime():
    assert talk(tap_pair, 9, "discard", b"anything", 4) == b""
    assert talk(tap_pair, 13, "daytime", b"", 4).endswith(b"\r\n")  # RFC 867: a line of text


def test_a_port_not_listened_on_still_refuses_and_the_connection_says_so():
    client, server, address = tap_pair(4)
    server.listen(80, tcp_service("http"))
    connection, out = client.connect(address, 81, 0.0)
    wire(client, server, [(server, f) for f in out], 0.0, lambda: connection.closed)
    assert connection.closed and connection.error == "refused"
    assert server.stats.drops["tcp_port_closed"] == 1


def test_listen_refuses_an_address_that_is_not_the_hosts():
    host = TapHost(["192.0.2.2/24"])
    with pytest.raises(ValueError, match="not one of the host's addresses"):
        host.listen(80, tcp_service("http"), addresses=[ip_address("192.0.2.3")])


def test_a_listener_on_one_address_of_a_lan_leaves_the_others_closed():
    client = TapHost(["192.0.2.1/24"])
    lan = TapHost(["192.0.2.2/24", "192.0.2.3/24"])
    lan.listen(80, tcp_service("http"), addresses=[ip_address("192.0.2.3")])
    outcomes = {}
    for address in ("192.0.2.2", "192.0.2.3"):
        connection, out = client.connect(address, 80, 0.0)
        wire(client, lan, [(lan, f) for f in out], 0.0, lambda: connection.established or connection.closed)
        outcomes[address] = connection.error if connection.closed else "established"
    assert outcomes == {"192.0.2.2": "refused", "192.0.2.3": "established"}


# ---------------------------------------------------------------------- UDP


def udp_frame(port: int, data: bytes, source_port: int = 40000, destination: str = frames.HOST_IP) -> bytes:
    udp = dpkt.udp.UDP(sport=source_port, dport=port, data=data)
    udp.ulen = 8 + len(data)
    return frames.ipv4_datagram(frames.KERNEL_IP, destination, 17, bytes(udp))


def udp_answers(host, frame: bytes) -> list[dpkt.ip.IP]:
    return [dpkt.ip.IP(join(f)) for f in host.receive(frame, 1.0)]


def test_udp_echo_answers_with_the_same_data_from_the_port_it_was_sent_to():
    host = TunHost([frames.HOST_IP + "/24"])
    host.listen_udp(7, udp_service("echo"))
    [answer] = udp_answers(host, udp_frame(7, b"ping?"))
    assert answer.p == 17 and (answer.data.sport, answer.data.dport, answer.data.data) == (7, 40000, b"ping?")
    # dpkt recomputes the checksum of a fresh copy: ours must match it.
    copy = dpkt.udp.UDP(bytes(answer.data))
    copy.sum = 0
    rebuilt = dpkt.ip.IP(src=answer.src, dst=answer.dst, p=17, data=copy)
    assert bytes(rebuilt)[20:] == bytes(answer.data)


def test_udp_services_never_answer_another_services_port_nor_port_zero():
    host = TunHost([frames.HOST_IP + "/24"])
    host.listen_udp(7, udp_service("echo"))
    for source_port in (0, 7, 19):
        assert udp_answers(host, udp_frame(7, b"loop?", source_port=source_port)) == []
    assert host.stats.drops["udp_service_refused"] == 3


def test_udp_discard_answers_nothing_and_other_ports_stay_unreachable():
    host = TunHost([frames.HOST_IP + "/24"])
    host.listen_udp(9, udp_service("discard"))
    assert udp_answers(host, udp_frame(9, b"gone")) == []
    [unreachable] = udp_answers(host, udp_frame(10, b"nobody"))
    assert (unreachable.p, unreachable.data.type, unreachable.data.code) == (1, 3, 3)


def test_udp_echo_over_ipv6():
    host = TunHost(["2001:db8::2/64"])
    host.listen_udp(7, udp_service("echo"))
    udp = dpkt.udp.UDP(sport=40000, dport=7, data=b"six")
    udp.ulen = 11
    packet = dpkt.ip6.IP6(src=ip_address(frames.KERNEL_IP6).packed, dst=ip_address("2001:db8::2").packed,
                          nxt=17, hlim=64, data=udp)
    packet.plen = 11
    [answer] = [dpkt.ip6.IP6(join(f)) for f in host.receive(bytes(packet), 1.0)]
    assert answer.nxt == 17 and (answer.data.sport, answer.data.dport, answer.data.data) == (7, 40000, b"six")
