"""One TCP connection: RFC 9293's state machine, sans-I/O (time passed in, segments returned).

Read first: RFC 9293 3.3.2 (the state diagram), 3.4 (sequence numbers), 3.8 (data communication),
3.10.7 (SEGMENT ARRIVES); RFC 6298 (the retransmission timer); RFC 5681 (congestion control);
RFC 5961 (challenge ACKs); RFC 7323 (window scale, timestamps); RFC 1122 4.2.

                                +---------+ ---------\\      active OPEN
                                |  CLOSED |            \\    -----------
                                +---------+<---------\\   \\   create TCB
                                  |     ^              \\   \\  snd SYN
                     passive OPEN |     |   CLOSE        \\   \\
                     ------------ |     | ----------       \\   \\
                      create TCB  |     | delete TCB         \\   \\
                                  V     |                      \\   \\
              rcv RST (note 1)  +---------+            CLOSE    |    \\
           -------------------->|  LISTEN |          ---------- |     |
          /                     +---------+          delete TCB |     |
         /           rcv SYN      |     |     SEND              |     |
        /           -----------   |     |    -------            |     V
    +--------+      snd SYN,ACK  /       \\   snd SYN          +--------+
    |        |<-----------------           ------------------>|        |
    |  SYN   |                    rcv SYN                     |  SYN   |
    |  RCVD  |<-----------------------------------------------|  SENT  |
    |        |                  snd SYN,ACK                   |        |
    |        |------------------           -------------------|        |
    +--------+   rcv ACK of SYN  \\       /  rcv SYN,ACK       +--------+
       |         --------------   |     |   -----------
       |                x         |     |     snd ACK
       |                          V     V
       |  CLOSE                 +---------+
       | -------                |  ESTAB  |
       | snd FIN                +---------+
       |                 CLOSE    |     |    rcv FIN
       V                -------   |     |    -------
    +---------+         snd FIN  /       \\   snd ACK         +---------+
    |  FIN    |<----------------          ------------------>|  CLOSE  |
    | WAIT-1  |------------------                            |   WAIT  |
    +---------+          rcv FIN  \\                          +---------+
      | rcv ACK of FIN   -------   |                          CLOSE  |
      | --------------   snd ACK   |                         ------- |
      V        x                   V                         snd FIN V
    +---------+               +---------+                    +---------+
    |FINWAIT-2|               | CLOSING |                    | LAST-ACK|
    +---------+               +---------+                    +---------+
      |              rcv ACK of FIN |                 rcv ACK of FIN |
      |  rcv FIN     -------------- |    Timeout=2MSL -------------- |
      |  -------            x       V    ------------        x       V
       \\ snd ACK              +---------+delete TCB          +---------+
         -------------------->|TIME-WAIT|------------------->| CLOSED  |
                              +---------+                    +---------+

LISTEN is the port table's (``stack.l4.tcp_layer``): a connection is made from a SYN the layer
accepted (``passive_open``, starting in SYN-RECEIVED) or for a ``connect`` (``active_open``,
SYN-SENT). Sequence numbers are kept modulo 2**32 as on the wire and compared with ``_after``.

The API: ``receive(segment, now)`` and ``poll(now)`` return the segments to send;
``next_deadline()`` says when ``poll`` is next due; ``send(data)`` queues bytes (bounded, returns
how many were taken); ``read()`` takes the bytes received in order; ``close()`` sends a FIN after
the queued data; ``abort()`` returns a RST. After ``send``, ``read`` or ``close`` the caller polls
(``next_deadline()`` is then the last ``now`` seen), as the layer does after a service runs.

Not implemented (each said where it would be): urgent data (RFC 9293 3.8.5: URG is ignored),
SACK (RFC 2018: SACK-permitted is declined), PAWS (RFC 7323 5), ECN (RFC 3168), the user
timeout option (RFC 5482), keep-alives (RFC 1122 4.2.3.6: MAY; off here), precedence/security.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from enum import Enum

from stack.stats import Stats
from stack.l4.tcp import NO_OPTIONS, TcpFlags, TcpOptions, TcpSegment

log = logging.getLogger(__name__)

MODULO = 1 << 32

#: RFC 6298 2.1: until a round-trip time is measured the RTO is 1 second.
RTO_INITIAL_S = 1.0
#: RFC 6298 2.4: whenever RTO is computed, if it is less than 1 second it SHOULD be rounded up to 1 s.
RTO_MINIMUM_S = 1.0
#: RFC 6298 2.5: a maximum value may be placed on RTO provided it is at least 60 seconds.
RTO_MAXIMUM_S = 60.0
#: RFC 1122 4.2.3.5: give up after R2 (at least 100 s of retransmissions): 8 back-offs from 1 s
#: (1+2+4+8+16+32+60+60 = 183 s) for data and FIN.
MAXIMUM_RETRANSMISSIONS = 8
#: RFC 1122 4.2.3.5: for a SYN, R2 at least 3 minutes: 1+2+4+8+16+32+60 = 123 s before the 7th
#: retransmission times out, then 60 s more. A SYN-ACK (passive open) is retried less: a half-open
#: connection is what a SYN flood fills the table with.
MAXIMUM_SYN_RETRANSMISSIONS = 8
MAXIMUM_SYN_ACK_RETRANSMISSIONS = 5
#: RFC 1122 4.2.3.2: an ACK MUST NOT be delayed more than 0.5 s; we wait 0.2 s.
DELAYED_ACK_S = 0.2
#: RFC 9293 3.4.2: MSL is "2 minutes" there, an engineering choice; we use 30 s, so TIME-WAIT
#: (2 * MSL, RFC 9293 3.10.7.4) lasts 60 s. The layer also bounds how many are kept.
MAXIMUM_SEGMENT_LIFETIME_S = 30.0
#: Ours (RFC 9293 sets no limit; ``TcpConfig.fin_wait_2_timeout``): how long a connection we
#: closed may wait in FIN-WAIT-2 for the peer's FIN, counted from the last segment received, so
#: a vanished peer cannot hold it for ever. The port table sets it for the connections its
#: services run (they read no more once they close); a bare connection waits as the RFC says.
FIN_WAIT_2_TIMEOUT_S = 60.0
#: RFC 9293 3.7.1: without an MSS option, the default send MSS is 536 (IPv4) / 1220 (IPv6).
DEFAULT_SEND_MSS = 536
#: Bytes we buffer each way (the receive buffer is the window we offer).
SEND_BUFFER = 256 * 1024
RECEIVE_BUFFER = 64 * 1024
#: RFC 7323 2.3: the shift count is at most 14.
MAXIMUM_WINDOW_SCALE = 14


class TcpState(Enum):
    """The states of RFC 9293 3.3.2, named as there."""

    CLOSED = "CLOSED"
    LISTEN = "LISTEN"
    SYN_SENT = "SYN-SENT"
    SYN_RECEIVED = "SYN-RECEIVED"
    ESTABLISHED = "ESTABLISHED"
    FIN_WAIT_1 = "FIN-WAIT-1"
    FIN_WAIT_2 = "FIN-WAIT-2"
    CLOSE_WAIT = "CLOSE-WAIT"
    CLOSING = "CLOSING"
    LAST_ACK = "LAST-ACK"
    TIME_WAIT = "TIME-WAIT"


#: RFC 9293 3.3.2: the states in which both SYNs have been seen ("synchronized").
SYNCHRONIZED = frozenset(TcpState) - {TcpState.CLOSED, TcpState.LISTEN, TcpState.SYN_SENT}
#: States where arriving data is taken (RFC 9293 3.10.7.4, seventh).
RECEIVING = frozenset({TcpState.ESTABLISHED, TcpState.FIN_WAIT_1, TcpState.FIN_WAIT_2})
#: States where the user may still send (RFC 9293 3.10.2).
SENDING = frozenset({TcpState.SYN_SENT, TcpState.SYN_RECEIVED, TcpState.ESTABLISHED, TcpState.CLOSE_WAIT})


def _add(sequence: int, amount: int) -> int:
    return (sequence + amount) % MODULO


def _distance(later: int, earlier: int) -> int:
    """``later - earlier`` in sequence space (RFC 9293 3.4: arithmetic modulo 2**32), signed."""
    return (later - earlier + (1 << 31)) % MODULO - (1 << 31)


def _after(a: int, b: int) -> bool:
    return _distance(a, b) > 0


@dataclass(frozen=True, slots=True)
class TcpConfig:
    """What a connection may be tuned with (the defaults are the module's constants)."""

    #: The MSS we announce: the MTU minus 40 (IPv4) or 60 (IPv6) bytes of headers.
    mss: int = 1460
    send_buffer: int = SEND_BUFFER
    receive_buffer: int = RECEIVE_BUFFER
    #: RFC 896 / RFC 1122 4.2.3.4: Nagle's algorithm; off by default (RFC 1122: a TCP MAY let the
    #: application turn it off; our services write whole answers at once).
    nagle: bool = False
    #: The default MSS for a peer that sends none (RFC 9293 3.7.1): 536 IPv4, 1220 IPv6.
    default_send_mss: int = DEFAULT_SEND_MSS
    #: Seconds without a segment after which FIN-WAIT-2 gives up (None: wait, as RFC 9293 does).
    fin_wait_2_timeout: float | None = None

    def __post_init__(self) -> None:
        if not 64 <= self.mss <= 0xFFFF:
            raise ValueError(f"MSS {self.mss} outside 64..65535")
        if self.send_buffer < 1 or not 1 <= self.receive_buffer <= 0xFFFF << MAXIMUM_WINDOW_SCALE:
            raise ValueError("buffer sizes must be positive (receive at most 65535 << 14)")


DEFAULT_CONFIG = TcpConfig()


class TcpConnection:
    """One connection's transmission control block (RFC 9293 3.3.1) and its rules.

    ``state`` is a ``TcpState``; ``closed`` says it reached CLOSED; ``error`` then says why it
    ended abnormally (``"reset"``, ``"refused"``, ``"timeout"``, ``"aborted"``) or is None.
    """

    def __init__(self, local_port: int, remote_port: int, iss: int, now: float,
                 config: TcpConfig = DEFAULT_CONFIG, stats: Stats | None = None) -> None:
        self.local_port = local_port
        self.remote_port = remote_port
        self.config = config
        self.stats = stats if stats is not None else Stats()
        self.state = TcpState.CLOSED
        self.error: str | None = None
        self.passive = False
        # Send sequence variables (RFC 9293 3.3.1). ``send_max`` is the highest SND.NXT ever
        # reached (SND.NXT goes back to SND.UNA when the retransmission timer fires).
        self.iss = iss % MODULO
        self.send_unacknowledged = self.iss
        self.send_next = self.iss
        self.send_max = self.iss
        self.send_window = 0
        self.send_window_update_sequence = 0  # SND.WL1
        self.send_window_update_acknowledgment = 0  # SND.WL2
        self.maximum_send_window = 0
        # Receive sequence variables; ``_receive_right_edge`` is RCV.NXT + RCV.WND as advertised.
        self.irs = 0
        self.receive_next = 0
        self._receive_right_edge = 0
        # Options (RFC 7323 2, 3; RFC 9293 3.7.1).
        self.send_mss = config.default_send_mss
        self._send_shift = 0  # the peer's window scale (applied to windows it sends)
        self._receive_shift = 0  # ours
        self._window_scaling = False
        self._timestamps = False
        self._timestamp_recent = 0
        self._timestamp_offset = self.iss
        # Buffers: the bytes from sequence ``_send_base`` on, and the received ones in order.
        self._send_buffer = bytearray()
        self._send_base = _add(self.iss, 1)
        self._received = bytearray()
        self._out_of_order: dict[int, bytes] = {}  # sequence -> data (all within the window)
        self._out_of_order_bytes = 0
        self._out_of_order_fin: int | None = None
        self._fin_received = False
        self._close_requested = False
        self._fin_sequence: int | None = None  # the FIN's sequence number once closing
        # Timers (absolute times) and RFC 6298 state.
        self._now = now
        self._rto = RTO_INITIAL_S
        self._smoothed_rtt: float | None = None
        self._rtt_variance = 0.0
        self._rtt_sample: tuple[int, float] | None = None  # (sequence that ends it, sent at)
        self._retransmit_deadline: float | None = None
        self._retries = 0
        self._ack_deadline: float | None = None
        self._ack_now = False
        self._full_segments_unacknowledged = 0
        self._time_wait_deadline: float | None = None
        # Congestion control (RFC 5681).
        self.congestion_window = 0
        self.slow_start_threshold = 0xFFFFFFFF
        self._duplicate_acks = 0
        self._recovery = False
        self._syn_retransmitted = False

    # ------------------------------------------------------------------ opening

    @classmethod
    def passive_open(cls, syn: TcpSegment, iss: int, now: float, config: TcpConfig = DEFAULT_CONFIG,
                     stats: Stats | None = None) -> tuple[TcpConnection, list[TcpSegment]]:
        """The connection a listener makes for ``syn`` (RFC 9293 3.10.7.2, LISTEN, third) and its
        SYN-ACK; the layer has checked that ``syn`` carries SYN and neither RST nor ACK."""
        connection = cls(syn.destination_port, syn.source_port, iss, now, config, stats)
        connection.passive = True
        connection._take_syn(syn)
        connection.state = TcpState.SYN_RECEIVED
        return connection, connection._output(now)

    @classmethod
    def active_open(cls, local_port: int, remote_port: int, iss: int, now: float,
                    config: TcpConfig = DEFAULT_CONFIG,
                    stats: Stats | None = None) -> tuple[TcpConnection, list[TcpSegment]]:
        """A connection that sends a SYN (RFC 9293 3.10.1, OPEN call, active) and the SYN."""
        connection = cls(local_port, remote_port, iss, now, config, stats)
        connection.state = TcpState.SYN_SENT
        return connection, connection._output(now)

    def _take_syn(self, syn: TcpSegment) -> None:
        """Note the peer's SYN: IRS, RCV.NXT, its window and options."""
        self.irs = syn.sequence
        self.receive_next = _add(syn.sequence, 1)
        self._receive_right_edge = _add(self.receive_next, self._receive_window_available())
        options = syn.options
        if options.mss is not None:
            # RFC 9293 3.7.1: the MSS option bounds what we send (RFC 6691: TCP header options
            # come out of it, so timestamps take 12 bytes below).
            self.send_mss = max(min(options.mss, self.config.mss), 64)
        else:
            self.send_mss = min(self.config.default_send_mss, self.config.mss)
        # RFC 7323 2.2: window scaling is on only when both SYNs carry the option.
        if options.window_scale is not None:  # (an active open always offers it)
            self._window_scaling = True
            # RFC 7323 2.3: a shift count above 14 is used as 14 (and logged).
            self._send_shift = min(options.window_scale, MAXIMUM_WINDOW_SCALE)
            self._receive_shift = self._window_shift()
        # RFC 7323 3.2: timestamps are on only when the SYN (and our SYN) carry them.
        if options.timestamps is not None:
            self._timestamps = True
            self._timestamp_recent = options.timestamps[0]
        # RFC 2018 2: SACK-permitted may be declined: we never send SACK-permitted, so the peer
        # never sends SACK blocks (and any it sends are ignored).
        # RFC 9293 3.10.7.4: the SYN's window is never scaled (RFC 7323 2.2).
        self.send_window = syn.window
        self.maximum_send_window = max(self.maximum_send_window, self.send_window)
        self.send_window_update_sequence = syn.sequence
        self.send_window_update_acknowledgment = syn.acknowledgment

    def _window_shift(self) -> int:
        """The smallest shift that lets the receive buffer be advertised (RFC 7323 2.2)."""
        shift = 0
        while self.config.receive_buffer >> shift > 0xFFFF and shift < MAXIMUM_WINDOW_SCALE:
            shift += 1
        return shift

    # ------------------------------------------------------------------ the user's calls

    @property
    def closed(self) -> bool:
        return self.state is TcpState.CLOSED

    @property
    def established(self) -> bool:
        """Both SYNs acknowledged (the handshake is over), whether or not closing has begun."""
        return self.state in SYNCHRONIZED and self.state is not TcpState.SYN_RECEIVED

    @property
    def finished_receiving(self) -> bool:
        """The peer's FIN arrived and every byte before it has been read."""
        return self._fin_received and not self._received

    @property
    def send_space(self) -> int:
        """Bytes ``send`` would take now (0 once closing or closed)."""
        if self.state not in SENDING or self._close_requested:
            return 0
        return max(self.config.send_buffer - len(self._send_buffer), 0)

    @property
    def unsent_or_unacknowledged(self) -> int:
        """Bytes queued to send and not yet acknowledged."""
        return len(self._send_buffer)

    def send(self, data: bytes) -> int:
        """Queue bytes to send; returns how many were taken (the send buffer is bounded; 0 once
        the connection is closing or closed). Segments go out on the next ``poll``/``receive``."""
        taken = min(len(data), self.send_space)
        if taken:
            self._send_buffer += data[:taken]
        return taken

    def read(self, limit: int | None = None) -> bytes:
        """Take up to ``limit`` bytes received in order (all when None)."""
        if limit is None or limit >= len(self._received):
            data, self._received = bytes(self._received), bytearray()
        else:
            data = bytes(self._received[:limit])
            del self._received[:limit]
        if data and self.state in RECEIVING:
            # RFC 1122 4.2.3.3 (receiver SWS avoidance): tell the peer the window opened only
            # once it opened by min(half the buffer, one MSS).
            advertised = _distance(self._receive_right_edge, self.receive_next)
            if self._receive_window_available() - advertised >= self._window_update_step():
                self._ack_now = True
        return data

    def close(self) -> None:
        """RFC 9293 3.10.4, CLOSE call: a FIN goes after the data queued."""
        if self.state is TcpState.SYN_SENT:
            self._enter_closed(None)  # RFC 9293 3.10.4: SYN-SENT: delete the TCB
        elif self.state is TcpState.SYN_RECEIVED:
            # RFC 9293 3.10.4: SYN-RECEIVED with data queued: queue the FIN for after ESTABLISHED.
            self._close_requested = True
        elif self.state is TcpState.ESTABLISHED:
            self._start_closing(TcpState.FIN_WAIT_1)
        elif self.state is TcpState.CLOSE_WAIT:
            self._start_closing(TcpState.LAST_ACK)
        # Other states: already closing (RFC 9293 3.10.4: "error: connection closing").

    def abort(self) -> list[TcpSegment]:
        """RFC 9293 3.10.5, ABORT call: a RST in synchronized states, then CLOSED."""
        out = []
        if self.state in SYNCHRONIZED and self.state is not TcpState.TIME_WAIT:
            out.append(self._segment(self.send_max, TcpFlags.RST, timestamps=False))
        if not self.closed:
            self._enter_closed("aborted")
        return out

    def _start_closing(self, state: TcpState) -> None:
        self._close_requested = True
        self._fin_sequence = _add(self._send_base, len(self._send_buffer))
        self.state = state

    # ------------------------------------------------------------------ timers

    def next_deadline(self) -> float | None:
        """When ``poll`` must next run (None: nothing pending until a segment arrives)."""
        if self.closed:
            return None
        if self._ack_now or self._has_sendable():
            return self._now
        deadlines = [d for d in (self._retransmit_deadline, self._ack_deadline, self._time_wait_deadline)
                     if d is not None]
        return min(deadlines) if deadlines else None

    def poll(self, now: float) -> list[TcpSegment]:
        """Run the timers due at ``now`` and send what can be sent."""
        self._now = now
        if self.closed:
            return []
        if self._time_wait_deadline is not None and now >= self._time_wait_deadline:
            # RFC 9293 3.10.8: TIME-WAIT timeout: delete the TCB (or FIN-WAIT-2's, ours).
            self._enter_closed(None if self.state is TcpState.TIME_WAIT else "timeout")
            return []
        out: list[TcpSegment] = []
        if self._retransmit_deadline is not None and now >= self._retransmit_deadline:
            out += self._retransmission_timeout(now)
            if self.closed:
                return out
        if self._ack_deadline is not None and now >= self._ack_deadline:
            self._ack_now = True
        return out + self._output(now)

    def _retransmission_timeout(self, now: float) -> list[TcpSegment]:
        """RFC 6298 5.4-5.7: retransmit the earliest unacknowledged segment, back off, restart."""
        self._retransmit_deadline = None
        outstanding = self.send_unacknowledged != self.send_max
        probing = not outstanding and self.send_window == 0 and self._unsent() > 0
        if not outstanding and not probing:
            return []
        self._retries += 1
        limit = MAXIMUM_RETRANSMISSIONS
        if self.state is TcpState.SYN_SENT:
            limit = MAXIMUM_SYN_RETRANSMISSIONS
        elif self.state is TcpState.SYN_RECEIVED:
            limit = MAXIMUM_SYN_ACK_RETRANSMISSIONS
        if self._retries > limit:
            # RFC 1122 4.2.3.5: after R2, close the connection.
            self.stats.count("tcp_connections_timed_out")
            log.debug("tcp %d->%d: gave up after %d retransmissions", self.local_port, self.remote_port,
                      limit)
            self._enter_closed("timeout")
            return []
        if outstanding:
            self.stats.count("tcp_retransmission_timeouts")
            if self.state in (TcpState.SYN_SENT, TcpState.SYN_RECEIVED):
                self._syn_retransmitted = True
            else:
                # RFC 5681 3.1 (4): ssthresh = max(FlightSize / 2, 2*SMSS); cwnd = 1 SMSS (the loss window).
                flight = _distance(self.send_max, self.send_unacknowledged)
                self.slow_start_threshold = max(flight // 2, 2 * self._segment_size())
                self.congestion_window = self._segment_size()
                self._recovery = False
                self._duplicate_acks = 0
            # Go back: resend from SND.UNA (the receiver holds what it had out of order).
            self.send_next = self.send_unacknowledged
            self._rtt_sample = None  # RFC 6298 3 (Karn): no RTT from a retransmitted segment
        # RFC 6298 5.5: back off the timer (RTO = RTO * 2, at most the maximum, 2.5).
        self._rto = min(self._rto * 2, RTO_MAXIMUM_S)
        return self._output(now, probe=probing or self.send_window == 0)

    # ------------------------------------------------------------------ arriving segments

    def receive(self, segment: TcpSegment, now: float) -> list[TcpSegment]:
        """RFC 9293 3.10.7 SEGMENT ARRIVES, for this connection's 4-tuple."""
        self._now = now
        if self.closed:
            return []
        if self.state is TcpState.SYN_SENT:
            self._receive_in_syn_sent(segment, now)
        else:
            self._receive_synchronized(segment, now)
        if self.closed:
            return self._pending_reset()
        if self.state is TcpState.FIN_WAIT_2 and self.config.fin_wait_2_timeout is not None:
            self._time_wait_deadline = now + self.config.fin_wait_2_timeout  # restarted by each segment
        return self._pending_reset() + self._output(now)

    _reset_out: TcpSegment | None = None

    def _pending_reset(self) -> list[TcpSegment]:
        out, self._reset_out = self._reset_out, None
        return [out] if out is not None else []

    def _send_reset(self, sequence: int) -> None:
        self._reset_out = TcpSegment(self.local_port, self.remote_port, sequence, 0, TcpFlags.RST, 0)

    def _receive_in_syn_sent(self, segment: TcpSegment, now: float) -> None:
        """RFC 9293 3.10.7.3, SYN-SENT."""
        ack_acceptable = False
        if segment.has(TcpFlags.ACK):
            # RFC 9293 3.10.7.3 first: SEG.ACK =< ISS or SEG.ACK > SND.NXT: send a reset (unless
            # the segment is a RST) and discard.
            if not _after(segment.acknowledgment, self.iss) or _after(segment.acknowledgment, self.send_max):
                if not segment.has(TcpFlags.RST):
                    self._send_reset(segment.acknowledgment)
                self.stats.drop("tcp_unacceptable_ack", log, "SYN-SENT: ACK %d for ISS %d", segment.acknowledgment,
                                self.iss)
                return
            ack_acceptable = True
        if segment.has(TcpFlags.RST):
            # RFC 9293 3.10.7.3 second (RFC 5961 3.2: in SYN-SENT a RST is accepted only with an
            # acceptable ACK): "connection reset"; without an ACK it is dropped.
            if ack_acceptable:
                self._enter_closed("refused")
            else:
                self.stats.drop("tcp_reset_ignored", log, "RST without ACK in SYN-SENT")
            return
        if not segment.has(TcpFlags.SYN):
            # RFC 9293 3.10.7.3 fifth: neither SYN nor RST: drop.
            self.stats.drop("tcp_no_syn", log, "SYN-SENT: %r", segment)
            return
        # RFC 9293 3.10.7.3 fourth: the SYN.
        self._take_syn(segment)
        if ack_acceptable:
            self._acknowledge(segment.acknowledgment, now)
        if _after(self.send_unacknowledged, self.iss):
            # Our SYN is acknowledged: ESTABLISHED, ACK the peer's SYN (with data if any).
            self._establish(segment)
            self._ack_now = True
            if segment.data_length or segment.has(TcpFlags.FIN):
                # RFC 9293 3.10.7.3: other controls or text: continue at the sixth step.
                self._receive_text(_add(segment.sequence, 1), segment, now)
        else:
            # RFC 9293 3.10.7.3: simultaneous open: SYN-RECEIVED, send SYN,ACK (SEQ=ISS).
            self.state = TcpState.SYN_RECEIVED
            self.send_next = self.iss
            self._rtt_sample = None

    def _establish(self, segment: TcpSegment) -> None:
        self.state = TcpState.ESTABLISHED
        self._retries = 0
        # RFC 5681 3.1: IW = 2..4 segments by SMSS; 1 segment if the SYN or SYN-ACK was lost.
        size = self._segment_size()
        initial = 2 * size if size > 2190 else 3 * size if size > 1095 else 4 * size
        self.congestion_window = size if self._syn_retransmitted else initial
        # RFC 6298 5.7: if the SYN was retransmitted and no RTT was measured, RTO is 3 s once
        # data flows.
        if self._syn_retransmitted and self._smoothed_rtt is None:
            self._rto = 3.0
        if self._close_requested and self._fin_sequence is None:
            self._start_closing(TcpState.FIN_WAIT_1)

    def _acceptable(self, segment: TcpSegment) -> bool:
        """RFC 9293 3.10.7.4 first: the four cases of the acceptability test."""
        window = max(_distance(self._receive_right_edge, self.receive_next), 0)
        length = segment.segment_length
        start = _distance(segment.sequence, self.receive_next)
        if length == 0:
            return start == 0 if window == 0 else 0 <= start < window
        if window == 0:
            return False
        end = start + length - 1
        return 0 <= start < window or 0 <= end < window

    def _receive_synchronized(self, segment: TcpSegment, now: float) -> None:
        """RFC 9293 3.10.7.4, every state from SYN-RECEIVED to TIME-WAIT."""
        if self.state is TcpState.SYN_RECEIVED and segment.has(TcpFlags.SYN) \
                and not segment.has(TcpFlags.ACK) and segment.sequence == self.irs:
            # The peer's SYN again: our SYN-ACK was lost. Send it again (the rule below would
            # answer a bare ACK, which cannot complete the handshake).
            self.stats.count("tcp_syn_retransmissions_received")
            self.send_next = self.iss
            self._rtt_sample = None
            return
        if self.state is TcpState.SYN_RECEIVED and segment.flags & (TcpFlags.SYN | TcpFlags.ACK | TcpFlags.RST) \
                == TcpFlags.SYN | TcpFlags.ACK and segment.sequence == self.irs \
                and _after(segment.acknowledgment, self.send_unacknowledged) \
                and not _after(segment.acknowledgment, self.send_max):
            # Simultaneous open (RFC 9293 3.5, figure 7, line 4): the peer's SYN-ACK acknowledges
            # our SYN: ESTABLISHED, and ACK it (the acceptability test would refuse its SYN).
            self._establish(segment)
            self.send_window = segment.window  # RFC 7323 2.2: a SYN's window is not scaled
            self.maximum_send_window = max(self.maximum_send_window, self.send_window)
            self._acknowledge(segment.acknowledgment, now)
            self._ack_now = True
            return
        # RFC 7323 4.3: remember the peer's newest timestamp from segments at the left edge.
        # RFC 7323 5 (PAWS) is not implemented: old duplicates are caught by the window test only.
        if self._timestamps and segment.options.timestamps is not None and \
                not _after(segment.sequence, self.receive_next) and \
                _distance(segment.options.timestamps[0], self._timestamp_recent) >= 0:
            self._timestamp_recent = segment.options.timestamps[0]
        # First: sequence number.
        if not self._acceptable(segment):
            if not segment.has(TcpFlags.RST):
                # RFC 9293 3.10.7.4 first: an unacceptable segment is answered with an ACK
                # (<SEQ=SND.NXT><ACK=RCV.NXT><CTL=ACK>) unless it carries RST, and dropped.
                self._ack_now = True
                if self.state is TcpState.TIME_WAIT and segment.has(TcpFlags.FIN):
                    # RFC 9293 3.10.7.4 eighth: a retransmitted FIN in TIME-WAIT restarts 2 MSL.
                    self._time_wait_deadline = now + 2 * MAXIMUM_SEGMENT_LIFETIME_S
            self.stats.drop("tcp_out_of_window", log, "seq %d not in RCV.NXT %d + window", segment.sequence,
                            self.receive_next)
            return
        # Second: RST (RFC 5961 3.2).
        if segment.has(TcpFlags.RST):
            if segment.sequence != self.receive_next:
                # RFC 5961 3.2: a RST in the window but not exactly at RCV.NXT: challenge ACK.
                self._ack_now = True
                self.stats.drop("tcp_reset_challenged", log, "RST seq %d != RCV.NXT %d", segment.sequence,
                                self.receive_next)
                return
            self.stats.count("tcp_resets_received")
            # RFC 9293 3.10.7.4 second: SYN-RECEIVED from a passive open goes back to LISTEN
            # (the layer's listener is still there; this connection just ends); from an active
            # open "connection refused"; other states "connection reset"; CLOSING, LAST-ACK,
            # TIME-WAIT: just CLOSED.
            if self.state is TcpState.SYN_RECEIVED:
                self._enter_closed(None if self.passive else "refused")
            elif self.state in (TcpState.CLOSING, TcpState.LAST_ACK, TcpState.TIME_WAIT):
                self._enter_closed(None)
            else:
                self._enter_closed("reset")
            return
        # Third: security/compartment: not implemented (RFC 9293 3.10.7.4 third concerns IPv4
        # security options, which this stack ignores).
        # Fourth: SYN.
        if segment.has(TcpFlags.SYN):
            # RFC 9293 3.10.7.4 fourth / RFC 5961 4.2: a SYN in a synchronized state, whatever
            # its sequence number, is answered with a challenge ACK and dropped.
            self._ack_now = True
            self.stats.drop("tcp_syn_challenged", log, "SYN in %s", self.state.value)
            return
        # Fifth: ACK.
        if not segment.has(TcpFlags.ACK):
            # RFC 9293 3.10.7.4 fifth: if the ACK bit is off, drop the segment.
            self.stats.drop("tcp_no_ack", log, "segment without ACK in %s", self.state.value)
            return
        if not self._receive_ack(segment, now):
            return
        # Sixth: URG: urgent data is not implemented (RFC 9293 3.8.5: the urgent pointer is
        # ignored; RFC 6093 advises new applications not to use it). Data is taken as normal.
        # Seventh and eighth: text and FIN.
        self._receive_text(segment.sequence, segment, now)

    def _receive_ack(self, segment: TcpSegment, now: float) -> bool:
        """RFC 9293 3.10.7.4 fifth, the ACK field; False when the segment is dropped."""
        ack = segment.acknowledgment
        if self.state is TcpState.SYN_RECEIVED:
            # RFC 9293 3.10.7.4 fifth, SYN-RECEIVED: SND.UNA < SEG.ACK =< SND.NXT: ESTABLISHED;
            # otherwise <SEQ=SEG.ACK><CTL=RST>.
            if not (_after(ack, self.send_unacknowledged) and not _after(ack, self.send_max)):
                self._send_reset(ack)
                self.stats.drop("tcp_unacceptable_ack", log, "SYN-RECEIVED: ACK %d, ISS %d", ack, self.iss)
                return False
            self._establish(segment)
            self._update_window(segment, force=True)
        # RFC 5961 5.2: an ACK is acceptable from SND.UNA - MAX.SND.WND to SND.NXT; outside
        # it the segment is dropped and an ACK is sent (for an ACK of unsent data, RFC 9293
        # 3.10.7.4 fifth).
        if _after(ack, self.send_max) or _distance(self.send_unacknowledged, ack) > max(self.maximum_send_window, 1):
            self._ack_now = True
            self.stats.drop("tcp_unacceptable_ack", log, "ACK %d outside SND.UNA %d..SND.NXT %d", ack,
                            self.send_unacknowledged, self.send_max)
            return False
        if _after(ack, self.send_unacknowledged):
            self._acknowledge(ack, now)
        elif ack == self.send_unacknowledged:
            self._maybe_duplicate_ack(segment, now)
        self._update_window(segment)
        if self._fin_sequence is not None and not _after(_add(self._fin_sequence, 1), self.send_unacknowledged):
            # Our FIN is acknowledged.
            if self.state is TcpState.FIN_WAIT_1:
                self.state = TcpState.FIN_WAIT_2  # RFC 9293 3.10.7.4 fifth, FIN-WAIT-1
            elif self.state is TcpState.CLOSING:
                self._enter_time_wait(now)  # RFC 9293 3.10.7.4 fifth, CLOSING
                return False
            elif self.state is TcpState.LAST_ACK:
                self._enter_closed(None)  # RFC 9293 3.10.7.4 fifth, LAST-ACK
                return False
        return True

    def _acknowledge(self, ack: int, now: float) -> None:
        """New data (or our SYN/FIN) acknowledged: SND.UNA moves (RFC 9293 3.10.7.4 fifth)."""
        acknowledged = _distance(ack, self.send_unacknowledged)
        if self.send_unacknowledged == self.iss:
            acknowledged -= 1  # the SYN's sequence number is no data
        self.send_unacknowledged = ack
        if _after(ack, self.send_next):
            self.send_next = ack
        trim = _distance(ack, self._send_base)
        if trim > 0:
            trim = min(trim, len(self._send_buffer))
            del self._send_buffer[:trim]
            self._send_base = _add(self._send_base, trim)
        # RFC 6298 2.2-2.3: a round-trip sample from the segment being timed (Karn: never a
        # retransmitted one).
        if self._rtt_sample is not None and not _after(self._rtt_sample[0], ack):
            self._measure(now - self._rtt_sample[1])
            self._rtt_sample = None
        self._retries = 0
        if self.state in SYNCHRONIZED and self.state is not TcpState.SYN_RECEIVED and acknowledged > 0:
            self._grow_window(acknowledged)
        # RFC 6298 5.2 / 5.3: all acknowledged: stop the timer; new data acknowledged: restart.
        if self.send_unacknowledged == self.send_max:
            self._retransmit_deadline = None
        else:
            self._retransmit_deadline = now + self._rto

    def _grow_window(self, acknowledged: int) -> None:
        size = self._segment_size()
        self._duplicate_acks = 0
        if self._recovery:
            # RFC 5681 3.2 (6): the ACK of new data ends fast recovery: cwnd = ssthresh.
            self._recovery = False
            self.congestion_window = self.slow_start_threshold
        elif self.congestion_window < self.slow_start_threshold:
            # RFC 5681 3.1 (2): slow start: cwnd += min(N, SMSS).
            self.congestion_window += min(acknowledged, size)
        else:
            # RFC 5681 3.1 (3): congestion avoidance: cwnd += SMSS*SMSS/cwnd.
            self.congestion_window += max(size * size // self.congestion_window, 1)

    def _maybe_duplicate_ack(self, segment: TcpSegment, now: float) -> None:
        """RFC 5681 2 (DUPLICATE ACKNOWLEDGMENT) and 3.2 (fast retransmit / fast recovery)."""
        window = segment.window << self._send_shift
        if (self.send_unacknowledged == self.send_max or segment.data_length or segment.has(TcpFlags.FIN)
                or window != self.send_window or self.state not in SYNCHRONIZED):
            return
        self._duplicate_acks += 1
        size = self._segment_size()
        if self._duplicate_acks == 3 and not self._recovery:
            # RFC 5681 3.2 (2)-(4): ssthresh = max(FlightSize/2, 2*SMSS), retransmit the lost
            # segment, cwnd = ssthresh + 3*SMSS.
            self.stats.count("tcp_fast_retransmits")
            flight = _distance(self.send_max, self.send_unacknowledged)
            self.slow_start_threshold = max(flight // 2, 2 * size)
            self.congestion_window = self.slow_start_threshold + 3 * size
            self._recovery = True
            self._rtt_sample = None
            self._resend_first = True
        elif self._recovery:
            self.congestion_window += size  # RFC 5681 3.2 (5): inflate for each further dup ACK

    _resend_first = False

    def _update_window(self, segment: TcpSegment, force: bool = False) -> None:
        """RFC 9293 3.10.7.4 fifth: update SND.WND if SND.WL1 < SEG.SEQ, or SND.WL1 = SEG.SEQ
        and SND.WL2 =< SEG.ACK (never from an older segment)."""
        if force or _after(segment.sequence, self.send_window_update_sequence) or (
                segment.sequence == self.send_window_update_sequence
                and not _after(self.send_window_update_acknowledgment, segment.acknowledgment)):
            # RFC 7323 2.3: windows after the SYN are shifted by the peer's scale.
            self.send_window = segment.window << self._send_shift
            self.maximum_send_window = max(self.maximum_send_window, self.send_window)
            self.send_window_update_sequence = segment.sequence
            self.send_window_update_acknowledgment = segment.acknowledgment
            if self.send_window == 0 and self._unsent() > 0:
                # RFC 9293 3.8.6.1 / RFC 1122 4.2.2.17: while the peer keeps answering our probes
                # with a zero window, the connection stays open: the probe timer backs off but
                # the retries do not count; start it if nothing else runs.
                self._retries = 0
                if self._retransmit_deadline is None:
                    self._retransmit_deadline = self._now + self._rto

    def _receive_text(self, sequence: int, segment: TcpSegment, now: float) -> None:
        """RFC 9293 3.10.7.4 seventh (segment text) and eighth (FIN), from ``sequence`` on."""
        data = bytes(segment.payload) if segment.data_length else b""
        fin = segment.has(TcpFlags.FIN)
        if self.state not in RECEIVING:
            # RFC 9293 3.10.7.4 seventh: CLOSE-WAIT, CLOSING, LAST-ACK, TIME-WAIT: ignore the
            # text (the FIN has been received); eighth: a FIN again is acknowledged.
            if fin or data:
                self._ack_now = True
                if self.state is TcpState.TIME_WAIT:
                    self._time_wait_deadline = now + 2 * MAXIMUM_SEGMENT_LIFETIME_S
            return
        # Trim what we already have and what does not fit in the window.
        early = _distance(self.receive_next, sequence)
        if early > 0:
            data = data[early:]
            sequence = self.receive_next
            if early > segment.data_length:
                fin = False  # the FIN lies before RCV.NXT: received already
        room = _distance(self._receive_right_edge, sequence)
        if len(data) > room:
            data = data[:max(room, 0)]
            fin = False  # RFC 9293 3.10.7.4: what lies past the window (and its FIN) is dropped
        if sequence != self.receive_next:
            # Out of order: keep it (bounded) and ACK at once (RFC 5681 4.2: SHOULD send an
            # immediate duplicate ACK when an out-of-order segment arrives). A bare ACK ahead of
            # RCV.NXT (the peer's data before it was lost) is not answered: two such ends would
            # otherwise trade ACKs until a retransmission.
            if not data and not fin:
                return
            self._ack_now = True
            if data:
                if self._out_of_order_bytes + len(data) > self.config.receive_buffer:
                    self.stats.drop("tcp_out_of_order_queue_full", log, "%d bytes held", self._out_of_order_bytes)
                    return
                previous = self._out_of_order.get(sequence, b"")
                if len(data) > len(previous):
                    self._out_of_order[sequence] = data
                    self._out_of_order_bytes += len(data) - len(previous)
            if fin:
                self._out_of_order_fin = _add(sequence, len(data))
            return
        filled_gap = bool(self._out_of_order)
        if data:
            self._take_in_order(data)
            self._pull_out_of_order()
            if filled_gap:
                self._ack_now = True  # RFC 5681 4.2: ACK at once when a gap is (partly) filled
            else:
                self._delay_ack(len(data), now)
        if fin or (self._out_of_order_fin is not None and self._out_of_order_fin == self.receive_next):
            self._receive_fin(now)

    def _take_in_order(self, data: bytes) -> None:
        self._received += data
        self.receive_next = _add(self.receive_next, len(data))

    def _pull_out_of_order(self) -> None:
        while self._out_of_order:
            progressed = False
            for sequence in list(self._out_of_order):
                data = self._out_of_order[sequence]
                offset = _distance(self.receive_next, sequence)
                if offset < 0:
                    continue
                del self._out_of_order[sequence]
                self._out_of_order_bytes -= len(data)
                if offset < len(data):
                    self._take_in_order(data[offset:])
                    progressed = True
            if not progressed:
                break

    def _delay_ack(self, size: int, now: float) -> None:
        """RFC 1122 4.2.3.2: delay an ACK at most 0.5 s; ACK at least every second full-sized
        segment."""
        if size >= self._segment_size():
            self._full_segments_unacknowledged += 1
        if self._full_segments_unacknowledged >= 2:
            self._ack_now = True
        elif self._ack_deadline is None:
            self._ack_deadline = now + DELAYED_ACK_S

    def _receive_fin(self, now: float) -> None:
        """RFC 9293 3.10.7.4 eighth: the FIN: RCV.NXT over it, ACK it, change state."""
        self._fin_received = True
        self._out_of_order_fin = None
        self.receive_next = _add(self.receive_next, 1)
        self._receive_right_edge = _add(self._receive_right_edge, 1)  # a FIN takes no buffer
        self._ack_now = True
        if self.state is TcpState.ESTABLISHED:
            self.state = TcpState.CLOSE_WAIT
        elif self.state is TcpState.FIN_WAIT_1:
            # Our FIN not acknowledged yet (that case went to FIN-WAIT-2 above): CLOSING.
            self.state = TcpState.CLOSING
        elif self.state is TcpState.FIN_WAIT_2:
            self._enter_time_wait(now)

    def _enter_time_wait(self, now: float) -> None:
        """RFC 9293 3.10.7.4: TIME-WAIT, for 2 MSL; nothing left to send but ACKs."""
        self.state = TcpState.TIME_WAIT
        self._retransmit_deadline = None
        self._time_wait_deadline = now + 2 * MAXIMUM_SEGMENT_LIFETIME_S

    def _enter_closed(self, error: str | None) -> None:
        self.state = TcpState.CLOSED
        self.error = error
        self._retransmit_deadline = self._ack_deadline = self._time_wait_deadline = None
        self._ack_now = False

    # ------------------------------------------------------------------ sending

    def _segment_size(self) -> int:
        """Data bytes per segment: the send MSS less the options every segment carries (RFC 6691)."""
        return self.send_mss - (12 if self._timestamps else 0)

    def _unsent(self) -> int:
        """Bytes queued and not yet sent (from SND.NXT)."""
        if self.state in (TcpState.SYN_SENT, TcpState.SYN_RECEIVED):
            return 0
        return max(len(self._send_buffer) - _distance(self.send_next, self._send_base), 0)

    def _fin_due(self) -> bool:
        return self._fin_sequence is not None and self.send_next == self._fin_sequence

    def _syn_due(self) -> bool:
        return self.state in (TcpState.SYN_SENT, TcpState.SYN_RECEIVED) and self.send_next == self.iss

    def _has_sendable(self) -> bool:
        if self._syn_due() or self._fin_due() or self._resend_first:
            return True
        unsent = self._unsent()
        if not unsent:
            return False
        in_flight = _distance(self.send_next, self.send_unacknowledged)
        usable = min(self.send_window, self._congestion_limit()) - in_flight
        return usable > 0 and self._worth_sending(unsent, usable, in_flight)

    def _congestion_limit(self) -> int:
        """What may be in flight: the congestion window, and on the first and second duplicate
        ACK one more segment each, of data never sent before (SND.NXT at SND.MAX)."""
        if not self._recovery and 1 <= self._duplicate_acks <= 2 and self.send_next == self.send_max:
            # RFC 5681 3.2 (1), RFC 3042 2: Limited Transmit SHOULD be used: FlightSize at most
            # cwnd + 2*SMSS, cwnd itself unchanged.
            return self.congestion_window + self._duplicate_acks * self._segment_size()
        return self.congestion_window

    def _worth_sending(self, unsent: int, usable: int, in_flight: int) -> bool:
        """RFC 1122 4.2.3.4 (sender SWS avoidance) and RFC 896 (Nagle, when on)."""
        size = self._segment_size()
        amount = min(unsent, usable, size)
        if amount >= size:
            return True
        if amount == unsent and (not self.config.nagle or in_flight == 0):
            return True  # everything queued fits (Nagle: and nothing is in flight)
        if in_flight == 0:
            return amount > 0  # nothing in flight: send what the window allows (for the override timeout)
        return amount >= self.maximum_send_window // 2 and amount > 0

    def _output(self, now: float, probe: bool = False) -> list[TcpSegment]:
        """Everything sendable now: SYN or SYN-ACK, data within the windows, FIN, else an ACK."""
        out: list[TcpSegment] = []
        if self._syn_due():
            out.append(self._syn_segment())
            self.send_next = _add(self.iss, 1)
            self.send_max = self.send_max if _after(self.send_max, self.send_next) else self.send_next
            if self._retransmit_deadline is None:
                self._retransmit_deadline = now + self._rto
            return out
        if self.state in (TcpState.SYN_SENT, TcpState.CLOSED):
            self._ack_now = False  # nothing to acknowledge before the peer's SYN
            return out  # (in SYN-RECEIVED only ACKs go out: no data before the handshake ends)
        if self._resend_first:
            self._resend_first = False
            out += self._resend_earliest(now)
        size = self._segment_size()
        while True:
            unsent = self._unsent()
            in_flight = _distance(self.send_next, self.send_unacknowledged)
            usable = min(self.send_window, self._congestion_limit()) - in_flight
            if probe and unsent and in_flight <= 0 and usable <= 0:
                # RFC 9293 3.8.6.1: a zero-window probe: one byte past the window.
                usable = 1
            probe = False
            if unsent and usable > 0 and self._worth_sending(unsent, usable, in_flight):
                amount = min(unsent, usable, size)
                out.append(self._data_segment(self.send_next, amount, now))
                continue
            if self._fin_due() and not unsent:
                out.append(self._segment(self.send_next, TcpFlags.FIN | TcpFlags.ACK))
                self._advance(1, now)
                continue
            break
        if self._ack_now and not out and self.state is not TcpState.CLOSED:
            # A bare ACK carries the highest sequence number sent (as 4.4BSD's tcp_output does),
            # not SND.NXT: after a retransmission timeout SND.NXT is back at SND.UNA, below what
            # the peer has received, and an ACK from there would fail its acceptability test
            # (and be answered with an ACK, and so on).
            out.append(self._segment(self.send_max, TcpFlags.ACK))
        if out:
            self._acknowledgment_sent()
        return out

    def _resend_earliest(self, now: float) -> list[TcpSegment]:
        """RFC 5681 3.2 (3): retransmit the segment SND.UNA starts."""
        offset = _distance(self.send_unacknowledged, self._send_base)
        available = len(self._send_buffer) - offset
        amount = min(self._segment_size(), available, _distance(self.send_max, self.send_unacknowledged))
        if amount > 0:
            return [self._build_data(self.send_unacknowledged, offset, amount)]
        if self._fin_sequence is not None and self.send_unacknowledged == self._fin_sequence:
            return [self._segment(self._fin_sequence, TcpFlags.FIN | TcpFlags.ACK)]
        return []

    def _data_segment(self, sequence: int, amount: int, now: float) -> TcpSegment:
        offset = _distance(sequence, self._send_base)
        segment = self._build_data(sequence, offset, amount)
        if not segment.has(TcpFlags.FIN):
            self._advance(amount, now)
        else:
            self._advance(amount + 1, now)
        return segment

    def _build_data(self, sequence: int, offset: int, amount: int) -> TcpSegment:
        payload = bytes(self._send_buffer[offset:offset + amount])
        flags = TcpFlags.ACK
        if offset + amount == len(self._send_buffer):
            flags |= TcpFlags.PSH  # RFC 9293 3.9.1.2: push what the user sent, at the end of the buffer
            if self._fin_sequence is not None and _add(sequence, amount) == self._fin_sequence:
                flags |= TcpFlags.FIN  # the FIN rides on the last data segment
        return self._segment(sequence, flags, payload)

    def _advance(self, amount: int, now: float) -> None:
        """SND.NXT moves over what was just sent; time it and arm the timer (RFC 6298 5.1)."""
        start = self.send_next
        self.send_next = _add(self.send_next, amount)
        if _after(self.send_next, self.send_max):
            if self._rtt_sample is None and not _after(self.send_max, start):
                self._rtt_sample = (self.send_next, now)
            self.send_max = self.send_next
        if self._retransmit_deadline is None:
            self._retransmit_deadline = now + self._rto

    def _acknowledgment_sent(self) -> None:
        self._ack_now = False
        self._ack_deadline = None
        self._full_segments_unacknowledged = 0

    def _receive_window_available(self) -> int:
        return max(self.config.receive_buffer - len(self._received), 0)

    def _window_update_step(self) -> int:
        return min(self.config.receive_buffer // 2, self.config.mss)

    def _advertise(self) -> int:
        """The window field: the free buffer, moved only by whole steps (RFC 1122 4.2.3.3) and
        never shrunk (RFC 9293 3.8.6.2.2: the right edge MUST NOT move left), scaled (RFC 7323)."""
        current = max(_distance(self._receive_right_edge, self.receive_next), 0)
        available = self._receive_window_available()
        window = available if available - current >= self._window_update_step() or available <= current \
            else current
        window = max(window, current)
        field_value = min(window >> self._receive_shift, 0xFFFF)
        self._receive_right_edge = _add(self.receive_next, field_value << self._receive_shift)
        if _after(_add(self.receive_next, current), self._receive_right_edge):
            self._receive_right_edge = _add(self.receive_next, current)
        return field_value

    def _timestamp_value(self) -> int:
        return (int(self._now * 1000) + self._timestamp_offset) % MODULO  # RFC 7323 5.4: a 1 ms clock

    def _segment(self, sequence: int, flags: TcpFlags, payload: bytes = b"", timestamps: bool = True) -> TcpSegment:
        options = NO_OPTIONS
        if self._timestamps and timestamps:
            # RFC 7323 3.2: once negotiated, every segment but a RST carries timestamps.
            options = TcpOptions(timestamps=(self._timestamp_value(), self._timestamp_recent))
        acknowledgment = self.receive_next if flags & TcpFlags.ACK else 0
        return TcpSegment(self.local_port, self.remote_port, sequence, acknowledgment, flags,
                          self._advertise(), options=options, payload=payload)

    def _syn_segment(self) -> TcpSegment:
        """SYN (active) or SYN-ACK (passive, or simultaneous open): MSS always; window scale and
        timestamps on an active open, and on a SYN-ACK only when the SYN offered them (RFC 7323
        1.3: a SYN-ACK carries them only when the SYN did). SACK-permitted is never sent."""
        passive_reply = self.state is TcpState.SYN_RECEIVED
        scale = None
        if not passive_reply or self._window_scaling:
            scale = self._window_shift()
        timestamps = None
        if not passive_reply or self._timestamps:
            timestamps = (self._timestamp_value(), self._timestamp_recent if passive_reply else 0)
        options = TcpOptions(mss=self.config.mss, window_scale=scale, timestamps=timestamps)
        # RFC 7323 2.2: the window in a SYN is never scaled.
        window = min(self._receive_window_available(), 0xFFFF)
        if passive_reply:
            self._receive_right_edge = _add(self.receive_next, window)
            return TcpSegment(self.local_port, self.remote_port, self.iss, self.receive_next,
                              TcpFlags.SYN | TcpFlags.ACK, window, options=options)
        return TcpSegment(self.local_port, self.remote_port, self.iss, 0, TcpFlags.SYN, window, options=options)

    def _measure(self, rtt: float) -> None:
        """RFC 6298 2.2 (first sample) and 2.3 (later ones): SRTT, RTTVAR, RTO (G taken as 0)."""
        if self._smoothed_rtt is None:
            self._smoothed_rtt = rtt
            self._rtt_variance = rtt / 2
        else:
            self._rtt_variance = 0.75 * self._rtt_variance + 0.25 * abs(self._smoothed_rtt - rtt)
            self._smoothed_rtt = 0.875 * self._smoothed_rtt + 0.125 * rtt
        self._rto = min(max(self._smoothed_rtt + 4 * self._rtt_variance, RTO_MINIMUM_S), RTO_MAXIMUM_S)

    @property
    def rto(self) -> float:
        """The current retransmission timeout (RFC 6298), backed off after timeouts."""
        return self._rto

    def __repr__(self) -> str:
        return (f"TcpConnection({self.local_port}->{self.remote_port} {self.state.value} "
                f"snd.una={self.send_unacknowledged} snd.nxt={self.send_next} rcv.nxt={self.receive_next})")
