"""TCP for one host: the port table, its listeners and connections (RFC 9293 3.10.7.1-2).

Read first: RFC 9293 3.10.7.1 (CLOSED: the reset for a closed port), 3.10.7.2 (LISTEN);
RFC 6528 (initial sequence numbers); RFC 4987 (SYN flooding and its mitigations);
RFC 6056 3.3.3 (ephemeral ports); RFC 1122 4.2.2.13 (TIME-WAIT reuse).

Addresses are IPv4Address or IPv6Address: the layer works the same for both families (the
codec's pseudo-header is picked by the host; only the MSS differs). Nothing here reads the
clock or draws random numbers: ``now`` comes with every call and the ISN secret at construction.

Segments go out as ``(source, destination, segment)``: the host wraps each in its datagram.
The host hands us only unicast segments (RFC 9293 3.10.7.1: never answer a broadcast or
multicast one) whose checksum verified (``TcpSegment.parse``).

SYN flood resistance: a bounded half-open table (SYN-RECEIVED connections, at most
``maximum_half_open``) that evicts the oldest when full (RFC 4987 3.4, "random/oldest drop"),
not SYN cookies (RFC 4987 3.6): eviction keeps the peer's window scale, timestamps and MSS,
which a cookie would have to squeeze into 32 bits or lose. A legitimate handshake is lost only
if ``maximum_half_open`` flood SYNs arrive within one round trip: 256 in 1 ms is 256,000 SYNs
a second, several times what this Python stack can parse.
"""

from __future__ import annotations

import hashlib
import logging
from collections import OrderedDict
from collections.abc import Callable, Iterable
from dataclasses import dataclass, replace
from ipaddress import IPv4Address, IPv6Address
from typing import Protocol

from stack.l4.tcp import TcpFlags, TcpSegment, reset_for
from stack.l4.tcp_connection import FIN_WAIT_2_TIMEOUT_S, MODULO, TcpConfig, TcpConnection, TcpState
from stack.stats import Stats

log = logging.getLogger(__name__)

Address = IPv4Address | IPv6Address
#: (local address, local port, remote address, remote port).
Key = tuple[Address, int, Address, int]
#: A segment to send: (source, destination, segment).
Outgoing = tuple[Address, Address, TcpSegment]

#: SYN-RECEIVED connections kept at once (the SYN-flood bound); the oldest goes when full.
MAXIMUM_HALF_OPEN = 256
#: Connections kept at once, TIME-WAIT aside: a SYN beyond it is dropped (the peer retries).
MAXIMUM_CONNECTIONS = 1024
#: TIME-WAIT connections kept at once: the oldest goes when full (RFC 1122 4.2.2.13 lets a
#: host shorten TIME-WAIT; this is the memory bound).
MAXIMUM_TIME_WAIT = 1024
#: RFC 6056 2.1: the ephemeral port range (IANA's dynamic ports).
EPHEMERAL_PORTS = range(49152, 65536)
#: The ISN secret of a layer made without one (tests, in-memory labs): fixed, so its initial
#: sequence numbers are predictable; ``tapstack run`` passes random bytes (RFC 6528 3).
UNKEYED_SECRET = b"tapstack: not a secret"
#: RFC 6528 3: M is a timer that ticks every 4 microseconds.
ISN_TICKS_PER_SECOND = 250_000


class TcpService(Protocol):
    """An application a listener runs on each connection it accepts (``stack.l4.services``).

    ``update`` is called once the connection is established and after every event on it
    (data arrived, data acknowledged, the peer's FIN, a timer); it reads, sends and closes
    through the connection, and must not block or read the clock (``now`` is given).
    """

    def update(self, connection: TcpConnection, now: float) -> None: ...


ServiceFactory = Callable[[], TcpService]


@dataclass(slots=True)
class _Entry:
    connection: TcpConnection
    factory: ServiceFactory | None
    service: TcpService | None = None


class TcpLayer:
    """The TCP of one host: ``listen``, ``connect``, ``receive``, ``poll``, ``next_deadline``."""

    def __init__(self, secret: bytes, stats: Stats | None = None, *, mtu: int = 1500,
                 maximum_half_open: int = MAXIMUM_HALF_OPEN, maximum_connections: int = MAXIMUM_CONNECTIONS,
                 maximum_time_wait: int = MAXIMUM_TIME_WAIT, nagle: bool = False) -> None:
        if len(secret) < 16:
            raise ValueError(f"the ISN secret has {len(secret)} bytes; RFC 6528 asks for at least 128 bits")
        if min(maximum_half_open, maximum_connections, maximum_time_wait) < 1:
            raise ValueError("the table bounds must be at least 1")
        self._key = hashlib.blake2s(secret).digest()
        self.stats = stats if stats is not None else Stats()
        self._nagle = nagle
        self.mtu = mtu
        self.maximum_half_open = maximum_half_open
        self.maximum_connections = maximum_connections
        self.maximum_time_wait = maximum_time_wait
        self._listeners: dict[tuple[Address | None, int], ServiceFactory] = {}
        self._entries: dict[Key, _Entry] = {}
        self._half_open: OrderedDict[Key, None] = OrderedDict()
        self._time_wait: OrderedDict[Key, None] = OrderedDict()

    @property
    def mtu(self) -> int:
        """The link MTU new connections' MSS comes from (the host sets it from the device)."""
        return self._mtu

    @mtu.setter
    def mtu(self, value: int) -> None:
        if not 68 <= value <= 65535:  # RFC 791: every link carries 68 octets
            raise ValueError(f"MTU {value} outside 68..65535")
        self._mtu = value
        # The MSS is the MTU less the IP and TCP headers (RFC 9293 3.7.1; RFC 8200 5 for IPv6,
        # whose links carry at least 1280).
        self._configs = {4: TcpConfig(mss=value - 40, nagle=self._nagle),
                         6: TcpConfig(mss=max(value, 1280) - 60, nagle=self._nagle, default_send_mss=1220)}
        # A service reads no more once it has closed: its connections give FIN-WAIT-2 a limit.
        self._service_configs = {version: replace(config, fin_wait_2_timeout=FIN_WAIT_2_TIMEOUT_S)
                                 for version, config in self._configs.items()}

    # ------------------------------------------------------------------ the table

    def listen(self, port: int, service_factory: ServiceFactory,
               addresses: Iterable[Address] | None = None) -> None:
        """Open ``port`` (on ``addresses``, or every address of the host): each connection a SYN
        opens runs ``service_factory()`` once established."""
        if not 1 <= port <= 65535:
            raise ValueError(f"port {port} outside 1..65535")
        targets: list[Address | None] = [None] if addresses is None else list(addresses)
        for address in targets:
            if (address, port) in self._listeners:
                where = "every address" if address is None else str(address)
                raise ValueError(f"port {port} is already listening on {where}")
        for address in targets:
            self._listeners[(address, port)] = service_factory

    def listening(self, address: Address, port: int) -> bool:
        return self._listener(address, port) is not None

    def _listener(self, address: Address, port: int) -> ServiceFactory | None:
        return self._listeners.get((address, port)) or self._listeners.get((None, port))

    @property
    def connections(self) -> dict[Key, TcpConnection]:
        """The connections by (local address, local port, remote address, remote port)."""
        return {key: entry.connection for key, entry in self._entries.items()}

    @property
    def half_open(self) -> int:
        return len(self._half_open)

    def initial_sequence_number(self, key: Key, now: float) -> int:
        """RFC 6528 3: ISN = M + F(localip, localport, remoteip, remoteport, secretkey), M a
        4 us timer and F a keyed hash (BLAKE2s here, RFC 6528 3 suggests MD5 or better)."""
        local, local_port, remote, remote_port = key
        data = local.packed + local_port.to_bytes(2, "big") + remote.packed + remote_port.to_bytes(2, "big")
        offset = int.from_bytes(hashlib.blake2s(data, key=self._key, digest_size=4).digest(), "big")
        return (int(now * ISN_TICKS_PER_SECOND) + offset) % MODULO

    # ------------------------------------------------------------------ segments and timers

    def receive(self, source: Address, destination: Address, segment: TcpSegment,
                now: float) -> list[Outgoing]:
        """A segment from ``source`` to our ``destination``: RFC 9293 3.10.7."""
        key = (destination, segment.destination_port, source, segment.source_port)
        entry = self._entries.get(key)
        if entry is not None and entry.connection.state is TcpState.TIME_WAIT and self._reopens(key, entry, segment):
            # RFC 1122 4.2.2.13: a new SYN MAY reopen a connection from TIME-WAIT if its ISN is
            # larger (ours will be larger than anything the old one sent).
            self.stats.count("tcp_time_wait_reopened")
            previous = entry.connection.send_max
            self._forget(key)
            return self._accept(key, segment, now, iss_after=previous)
        if entry is not None:
            out = entry.connection.receive(segment, now)
            return self._wrap(key, out + self._serve(key, entry, now))
        if self._listener(destination, segment.destination_port) is None:
            # RFC 9293 3.10.7.1: no connection and no listener: CLOSED: answer with a reset
            # (none for a RST).
            reset = reset_for(segment)
            if reset is None:
                self.stats.drop("tcp_reset_discarded", log, "%r", segment)
                return []
            self.stats.drop("tcp_port_closed", log, "port %d", segment.destination_port)
            self.stats.count("tcp_resets_sent")
            return [(destination, source, reset)]
        return self._accept(key, segment, now)

    def _reopens(self, key: Key, entry: _Entry, segment: TcpSegment) -> bool:
        """A SYN alone, beyond what the old connection received, to a port still listening."""
        return (segment.flags & (TcpFlags.SYN | TcpFlags.ACK | TcpFlags.RST) == TcpFlags.SYN
                and 0 < (segment.sequence - entry.connection.receive_next) % MODULO < 1 << 31
                and self._listener(key[0], key[1]) is not None)

    def _accept(self, key: Key, segment: TcpSegment, now: float, iss_after: int | None = None) -> list[Outgoing]:
        """RFC 9293 3.10.7.2, LISTEN."""
        local, _, remote, _ = key
        if segment.has(TcpFlags.RST):
            # RFC 9293 3.10.7.2 first: an incoming RST is ignored.
            self.stats.drop("tcp_listen_reset", log, "RST to listening port %d", segment.destination_port)
            return []
        if segment.has(TcpFlags.ACK):
            # RFC 9293 3.10.7.2 second: an ACK in LISTEN is answered <SEQ=SEG.ACK><CTL=RST>.
            self.stats.drop("tcp_listen_ack", log, "ACK to listening port %d", segment.destination_port)
            self.stats.count("tcp_resets_sent")
            return [(local, remote, reset_for(segment))]  # type: ignore[list-item]
        if not segment.has(TcpFlags.SYN):
            # RFC 9293 3.10.7.2 fourth: any other control or text-bearing segment is dropped.
            self.stats.drop("tcp_listen_no_syn", log, "%r", segment)
            return []
        if len(self._entries) - len(self._time_wait) >= self.maximum_connections and not self._half_open:
            self.stats.drop("tcp_connection_limit", log, "%d connections", len(self._entries))
            return []
        if len(self._half_open) >= self.maximum_half_open or \
                len(self._entries) - len(self._time_wait) >= self.maximum_connections:
            # RFC 4987 3.4: the half-open table is full: the oldest half-open connection goes,
            # silently (no RST: a flood's sources are usually spoofed; a real peer retries).
            oldest = next(iter(self._half_open))
            self.stats.drop("tcp_half_open_evicted", log, "%s", oldest)
            self._forget(oldest)
        iss = self.initial_sequence_number(key, now)
        if iss_after is not None and (iss - iss_after) % MODULO >= 1 << 31:
            iss = (iss_after + (1 << 16)) % MODULO  # RFC 1122 4.2.2.13 (1): larger than before
        # RFC 9293 3.10.7.2 third: the SYN's data and other controls are not queued here (the
        # peer sends them again once the handshake is over).
        self.stats.count("tcp_syns_accepted")
        connection, out = TcpConnection.passive_open(segment, iss, now, self._service_configs[local.version],
                                                     self.stats)
        self._entries[key] = _Entry(connection, self._listener(local, segment.destination_port))
        self._half_open[key] = None
        return self._wrap(key, out)

    def connect(self, local: Address, remote: Address, remote_port: int, now: float,
                service_factory: ServiceFactory | None = None,
                local_port: int | None = None) -> tuple[TcpConnection, list[Outgoing]]:
        """An active open (RFC 9293 3.10.1) from ``local`` to ``remote``:``remote_port``: the
        connection and its SYN. Without ``local_port`` an ephemeral port is picked (RFC 6056
        3.3.3: a keyed hash of the addresses, then the next free one)."""
        if local.version != remote.version:
            raise ValueError(f"{local} and {remote} are of different families")
        if not 1 <= remote_port <= 65535:
            raise ValueError(f"port {remote_port} outside 1..65535")
        if local_port is None:
            local_port = self._ephemeral_port(local, remote, remote_port)
        key = (local, local_port, remote, remote_port)
        if key in self._entries:
            raise ValueError(f"{local}:{local_port} -> {remote}:{remote_port} is already in use")
        connection, out = TcpConnection.active_open(local_port, remote_port, self.initial_sequence_number(key, now),
                                                    now, self._configs[local.version], self.stats)
        self._entries[key] = _Entry(connection, service_factory)
        self.stats.count("tcp_connects")
        return connection, self._wrap(key, out)

    def _ephemeral_port(self, local: Address, remote: Address, remote_port: int) -> int:
        data = local.packed + remote.packed + remote_port.to_bytes(2, "big")
        start = int.from_bytes(hashlib.blake2s(data, key=self._key, digest_size=4).digest(), "big")
        for step in range(len(EPHEMERAL_PORTS)):
            port = EPHEMERAL_PORTS[(start + step) % len(EPHEMERAL_PORTS)]
            if (local, port, remote, remote_port) not in self._entries and not self.listening(local, port):
                return port
        raise ValueError(f"no free local port to {remote}:{remote_port}")

    def poll(self, now: float) -> list[Outgoing]:
        """Run every connection's timers due at ``now``."""
        out: list[Outgoing] = []
        for key, entry in list(self._entries.items()):
            deadline = entry.connection.next_deadline()
            if deadline is not None and deadline <= now:
                out += self._wrap(key, entry.connection.poll(now) + self._serve(key, entry, now))
        return out

    def next_deadline(self) -> float | None:
        """The earliest time ``poll`` has something to do (None: nothing)."""
        deadlines = [d for d in (e.connection.next_deadline() for e in self._entries.values()) if d is not None]
        return min(deadlines) if deadlines else None

    # ------------------------------------------------------------------ bookkeeping

    def _serve(self, key: Key, entry: _Entry, now: float) -> list[TcpSegment]:
        """Let the service act, send what it queued, and keep the tables right."""
        connection = entry.connection
        out: list[TcpSegment] = []
        if connection.established and entry.factory is not None:
            if entry.service is None:
                self.stats.count("tcp_connections_established")
                entry.service = entry.factory()
            entry.service.update(connection, now)
            out = connection.poll(now)
        elif connection.established and entry.service is None and entry.factory is None:
            entry.service = _NO_SERVICE
            self.stats.count("tcp_connections_established")
        self._settle(key, connection)
        return out

    def _settle(self, key: Key, connection: TcpConnection) -> None:
        if key in self._half_open and connection.state is not TcpState.SYN_RECEIVED:
            del self._half_open[key]
        if connection.closed:
            self._forget(key)
            self.stats.count("tcp_connections_closed")
        elif connection.state is TcpState.TIME_WAIT and key not in self._time_wait:
            self._time_wait[key] = None
            if len(self._time_wait) > self.maximum_time_wait:
                oldest = next(iter(self._time_wait))
                self.stats.drop("tcp_time_wait_evicted", log, "%s", oldest)
                self._forget(oldest)

    def _forget(self, key: Key) -> None:
        self._entries.pop(key, None)
        self._half_open.pop(key, None)
        self._time_wait.pop(key, None)

    def _wrap(self, key: Key, segments: list[TcpSegment]) -> list[Outgoing]:
        local, _, remote, _ = key
        return [(local, remote, segment) for segment in segments]


class _NoService:
    """What a connection opened by ``connect`` without a service runs: nothing (the caller
    reads and writes the connection itself)."""

    def update(self, connection: TcpConnection, now: float) -> None:
        return None


_NO_SERVICE = _NoService()
