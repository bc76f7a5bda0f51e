"""TcpLayer: the port table (RFC 9293 3.10.7.1-2), ISNs (RFC 6528), the half-open bound under a
SYN flood (RFC 4987), the connection and TIME-WAIT bounds, services end to end."""

from __future__ import annotations

import heapq
from ipaddress import IPv4Address, IPv6Address

import pytest

from stack.l4.services import tcp_service
from stack.l4.tcp import TcpFlags, TcpOptions, TcpSegment, reset_for
from stack.l4.tcp_connection import MAXIMUM_SEGMENT_LIFETIME_S, TcpState
from stack.l4.tcp_layer import ISN_TICKS_PER_SECOND, TcpLayer
from tests.core.l4.tcp_pipe import check_with_dpkt

CLIENT, SERVER = IPv4Address("192.0.2.1"), IPv4Address("192.0.2.2")
CLIENT6, SERVER6 = IPv6Address("2001:db8::1"), IPv6Address("2001:db8::2")
SECRET = bytes(range(32))


class Net:
    """Layers by address, joined by a lossless link with a fixed delay, on a fake clock."""

    def __init__(self, **layers: TcpLayer) -> None:
        self.by_address: dict = {}
        self.queue: list = []
        self.counter = 0
        self.now = 0.0
        self.sent: list = []

    def attach(self, layer: TcpLayer, *addresses) -> TcpLayer:
        for address in addresses:
            self.by_address[address] = layer
        return layer

    def send(self, outgoing, delay: float = 0.005) -> None:
        for source, destination, segment in outgoing:
            wire = segment.to_bytes(source, destination)
            check_with_dpkt(wire, source, destination)
            self.sent.append((self.now, source, destination, segment))
            self.counter += 1
            heapq.heappush(self.queue, (self.now + delay, self.counter, source, destination, wire))

    def run(self, until=lambda: False, limit: float = 30.0) -> None:
        end = self.now + limit
        layers = set(self.by_address.values())
        while not until():
            times = [self.queue[0][0]] if self.queue else []
            times += [t for t in (layer.next_deadline() for layer in layers) if t is not None]
            if not times or min(times) > end:
                break
            self.now = max(self.now, min(times))
            while self.queue and self.queue[0][0] <= self.now:
                _, _, source, destination, wire = heapq.heappop(self.queue)
                layer = self.by_address.get(destination)
                if layer is not None:
                    segment = TcpSegment.parse(wire, source, destination)
                    self.send(layer.receive(source, destination, segment, self.now))
            for layer in layers:
                deadline = layer.next_deadline()
                if deadline is not None and deadline <= self.now:
                    self.send(layer.poll(self.now))


def pair(service: str = "echo", port: int = 7, **server_options):
    net = Net()
    client = net.attach(TcpLayer(b"client secret 16" * 2), CLIENT, CLIENT6)
    server = net.attach(TcpLayer(SECRET, **server_options), SERVER, SERVER6)
    server.listen(port, tcp_service(service))
    return net, client, server


def exchange(net, client, local, remote, port, data: bytes, close: bool = True, local_port=None):
    """Connect, send ``data``, close (at once with ``close``, else once the server has), and read
    everything until the server closes."""
    connection, out = client.connect(local, remote, port, net.now, local_port=local_port)
    net.send(out)
    received = bytearray()
    offered = 0

    def done():
        nonlocal offered
        received.extend(connection.read())
        if connection.established and offered < len(data):
            offered += connection.send(data[offered:])
            net.send(client.poll(net.now))
        elif (close and connection.state is TcpState.ESTABLISHED) or connection.state is TcpState.CLOSE_WAIT:
            connection.close()
            net.send(client.poll(net.now))
        return connection.state in (TcpState.LAST_ACK, TcpState.TIME_WAIT, TcpState.CLOSED)

    net.run(done, limit=120)
    received.extend(connection.read())
    return connection, bytes(received)


# ---------------------------------------------------------------------- closed ports and LISTEN


def syn(port: int = 80, source_port: int = 40000, sequence: int = 1000) -> TcpSegment:
    return TcpSegment(source_port, port, sequence, 0, TcpFlags.SYN, 65535, options=TcpOptions(mss=1460))


def test_rfc9293_3_10_7_1_a_closed_port_answers_with_the_reset_for_the_segment():
    layer = TcpLayer(SECRET)
    [(source, destination, reset)] = layer.receive(CLIENT, SERVER, syn(), 1.0)
    assert (source, destination) == (SERVER, CLIENT)
    assert reset == reset_for(syn()) and reset.flags == TcpFlags.RST | TcpFlags.ACK and reset.acknowledgment == 1001
    assert layer.stats.drops == {"tcp_port_closed": 1} and layer.stats["tcp_resets_sent"] == 1
    rst = TcpSegment(40000, 80, 5, 0, TcpFlags.RST, 0)
    assert layer.receive(CLIENT, SERVER, rst, 1.0) == []  # never a RST for a RST


def test_rfc9293_3_10_7_2_listen_ignores_rst_resets_an_ack_and_drops_the_rest():
    layer = TcpLayer(SECRET)
    layer.listen(80, tcp_service("discard"))
    assert layer.receive(CLIENT, SERVER, TcpSegment(40000, 80, 5, 0, TcpFlags.RST, 0), 1.0) == []
    [(_, _, reset)] = layer.receive(CLIENT, SERVER, TcpSegment(40000, 80, 5, 777, TcpFlags.ACK, 0), 1.0)
    assert (reset.flags, reset.sequence) == (TcpFlags.RST, 777)  # <SEQ=SEG.ACK><CTL=RST>
    assert layer.receive(CLIENT, SERVER, TcpSegment(40000, 80, 5, 0, TcpFlags.FIN, 0), 1.0) == []
    assert layer.stats.drops == {"tcp_listen_reset": 1, "tcp_listen_ack": 1, "tcp_listen_no_syn": 1}
    assert layer.connections == {}


def test_a_listener_on_one_address_leaves_the_port_closed_on_the_others():
    layer = TcpLayer(SECRET)
    layer.listen(80, tcp_service("discard"), addresses=[SERVER])
    other = IPv4Address("192.0.2.3")
    [(_, _, synack)] = layer.receive(CLIENT, SERVER, syn(), 1.0)
    assert synack.flags == TcpFlags.SYN | TcpFlags.ACK
    [(_, _, reset)] = layer.receive(CLIENT, other, syn(), 1.0)
    assert reset.flags & TcpFlags.RST


def test_listen_refuses_bad_ports_and_a_second_listener():
    layer = TcpLayer(SECRET)
    layer.listen(80, tcp_service("discard"))
    with pytest.raises(ValueError, match="already listening"):
        layer.listen(80, tcp_service("echo"))
    with pytest.raises(ValueError, match="outside"):
        layer.listen(0, tcp_service("echo"))
    with pytest.raises(ValueError, match="128 bits"):
        TcpLayer(b"short")


# ---------------------------------------------------------------------- ISN


def test_rfc6528_isn_is_a_keyed_hash_of_the_four_tuple_plus_a_4us_clock():
    layer = TcpLayer(SECRET)
    key = (SERVER, 80, CLIENT, 40000)
    first = layer.initial_sequence_number(key, 10.0)
    assert (layer.initial_sequence_number(key, 11.0) - first) % 2**32 == ISN_TICKS_PER_SECOND
    others = {layer.initial_sequence_number((SERVER, 80, CLIENT, port), 10.0) for port in range(40000, 40100)}
    assert len(others) == 100  # F differs for each 4-tuple
    assert TcpLayer(bytes(32)).initial_sequence_number(key, 10.0) != first  # and with the secret
    [(_, _, synack)] = (layer.listen(80, tcp_service("echo")), layer.receive(CLIENT, SERVER, syn(), 10.0))[1]
    assert synack.sequence == first


# ---------------------------------------------------------------------- services end to end


@pytest.mark.parametrize("family", [4, 6])
def test_echo_returns_what_was_sent_over_both_families(family):
    net, client, server = pair("echo")
    local, remote = (CLIENT, SERVER) if family == 4 else (CLIENT6, SERVER6)
    data = bytes(range(256)) * 800  # 200 KiB: more than the buffers, so flow control works
    connection, received = exchange(net, client, local, remote, 7, data)
    assert received == data
    net.run(lambda: not server.connections and not client.connections, limit=200)
    assert server.connections == {} and client.connections == {}
    assert server.stats["tcp_connections_established"] == 1 and server.stats["tcp_connections_closed"] == 1
    mss = {segment.options.mss for _, source, _, segment in net.sent if segment.has(TcpFlags.SYN)}
    assert mss == ({1460} if family == 4 else {1440})  # the MTU less 40 / 60 bytes of headers


def test_http_answers_over_a_connection():
    net, client, server = pair("http", port=80)
    connection, received = exchange(net, client, CLIENT, SERVER, 80,
                                    b"GET / HTTP/1.1\r\nHost: x\r\n\r\nGET /2 HTTP/1.1\r\nHost: x\r\n"
                                    b"Connection: close\r\n\r\n", close=False)
    assert received.count(b"HTTP/1.1 200 OK\r\n") == 2 and received.endswith(b"Hello from tapstack\n")
    assert connection.finished_receiving  # the server closed after "Connection: close"


def test_daytime_closes_first_so_the_server_holds_time_wait_bounded():
    net, client, server = pair("daytime", port=13, maximum_time_wait=2)
    for port in (50001, 50002, 50003):
        connection, received = exchange(net, client, CLIENT, SERVER, 13, b"", close=False, local_port=port)
        assert received.endswith(b"-UTC\r\n")
        net.run(lambda: all(c.state is TcpState.TIME_WAIT for c in server.connections.values()), limit=5)
    states = [c.state for c in server.connections.values()]
    assert states == [TcpState.TIME_WAIT] * 2
    assert server.stats.drops == {"tcp_time_wait_evicted": 1}
    net.run(limit=2 * MAXIMUM_SEGMENT_LIFETIME_S + 1)
    assert server.connections == {}


def test_rfc1122_4_2_2_13_a_new_syn_reopens_a_connection_in_time_wait():
    net, client, server = pair("daytime", port=13)
    connection, _ = exchange(net, client, CLIENT, SERVER, 13, b"", close=False)
    net.run(lambda: not client.connections, limit=5)
    [old] = server.connections.values()
    assert old.state is TcpState.TIME_WAIT
    again, received = exchange(net, client, CLIENT, SERVER, 13, b"", close=False, local_port=connection.local_port)
    assert received.endswith(b"-UTC\r\n") and server.stats["tcp_time_wait_reopened"] == 1


# ---------------------------------------------------------------------- SYN flood and bounds


def test_rfc4987_a_syn_flood_fills_the_half_open_table_but_a_new_connection_still_succeeds():
    net, client, server = pair("echo", maximum_half_open=16)
    flood = [(IPv4Address(f"198.51.100.{i % 250 + 1}"), SERVER, syn(7, 1024 + i, i)) for i in range(500)]
    for source, destination, segment in flood:
        server.receive(source, destination, segment, net.now)  # SYN-ACKs to nowhere
    assert server.half_open == 16
    assert server.stats.drops == {"tcp_half_open_evicted": 500 - 16}
    connection, received = exchange(net, client, CLIENT, SERVER, 7, b"still here")
    assert received == b"still here"
    assert server.half_open <= 16


def test_the_connection_bound_drops_new_syns_when_nothing_is_half_open():
    net, client, server = pair("discard", maximum_connections=2)
    connections = [exchange(net, client, CLIENT, SERVER, 7, b"x", close=False)[0] for _ in range(2)]
    assert all(c.state is TcpState.ESTABLISHED for c in connections)
    assert server.receive(CLIENT, SERVER, syn(7, 50000), net.now) == []
    assert server.stats.drops == {"tcp_connection_limit": 1}


def test_connect_picks_distinct_ephemeral_ports_and_refuses_mixed_families():
    layer = TcpLayer(SECRET)
    ports = {layer.connect(CLIENT, SERVER, 80, 0.0)[0].local_port for _ in range(50)}
    assert len(ports) == 50 and all(49152 <= port <= 65535 for port in ports)
    with pytest.raises(ValueError, match="different families"):
        layer.connect(CLIENT, SERVER6, 80, 0.0)


def test_a_connect_to_a_closed_port_is_refused():
    net, client, server = pair("echo")
    connection, out = client.connect(CLIENT, SERVER, 9, net.now)
    net.send(out)
    net.run(lambda: connection.closed, limit=5)
    assert connection.error == "refused" and client.connections == {}
