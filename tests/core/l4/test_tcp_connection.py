"""TcpConnection (RFC 9293): handshakes, data under loss and reordering, timers, RST and SYN
rules (RFC 5961), closing, and a stateful model of RFC 9293's state diagram.

Every segment crossing ``tcp_pipe.Link`` is checked against dpkt; the expected values come from
the RFCs' rules and arithmetic.
"""

from __future__ import annotations

import random

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, invariant, precondition, rule

from stack.l4.tcp import TcpFlags, TcpOptions, TcpSegment
from stack.l4.tcp_connection import (DELAYED_ACK_S, FIN_WAIT_2_TIMEOUT_S, MAXIMUM_RETRANSMISSIONS, MAXIMUM_SEGMENT_LIFETIME_S,
                                     MAXIMUM_SYN_RETRANSMISSIONS, RTO_MAXIMUM_S, TcpConfig, TcpConnection,
                                     TcpState)
from tests.core.l4.tcp_pipe import A6, B6, Link, run

ISS_A, ISS_B = 1000, 4_294_960_000  # B's sequence numbers wrap past 2**32


def syn(sequence=5000, options=TcpOptions(mss=1460), window=65535, source_port=40000, destination_port=80):
    return TcpSegment(source_port, destination_port, sequence, 0, TcpFlags.SYN, window, options=options)


def open_pair(now=0.0, config_a=TcpConfig(), config_b=TcpConfig(), link=None):
    """A (active) and B (passive, made from A's SYN) through a handshake on a lossless link."""
    link = link or Link(random.Random(0))
    a, out = TcpConnection.active_open(40000, 80, ISS_A, now, config_a)
    link.send("a", out, now)
    [(_, first)] = link.arrivals(now + 1)
    b, out = TcpConnection.passive_open(first, ISS_B, now, config_b)
    link.send("b", out, now)
    ends = {"a": a, "b": b}
    now = run(link, ends, now, lambda: a.established and b.established, 10)
    return a, b, link, ends, now


# ---------------------------------------------------------------------- opening


def test_rfc9293_3_5_passive_open_answers_syn_ack_with_mss_and_only_the_options_offered():
    plain, [answer] = TcpConnection.passive_open(syn(options=TcpOptions(mss=1400)), ISS_B, 0.0)
    assert plain.state is TcpState.SYN_RECEIVED
    assert answer.flags == TcpFlags.SYN | TcpFlags.ACK
    assert (answer.sequence, answer.acknowledgment) == (ISS_B, 5001)
    # RFC 7323 1.3: no window scale or timestamps unless the SYN had them; RFC 2018: no SACK-permitted.
    assert answer.options == TcpOptions(mss=1460)
    offered = TcpOptions(mss=1460, window_scale=7, sack_permitted=True, timestamps=(777, 0))
    _, [answer] = TcpConnection.passive_open(syn(options=offered), ISS_B, 3.0)
    assert answer.options.window_scale == 1  # 65536 bytes of buffer: 65536 >> 1 fits 16 bits
    assert answer.options.timestamps[1] == 777  # TSecr echoes the SYN's TSval (RFC 7323 3.2)
    assert not answer.options.sack_permitted


def test_rfc9293_3_5_three_way_handshake_both_established_and_send_mss_is_the_smaller():
    a, b, link, _, _ = open_pair(config_b=TcpConfig(mss=1000))
    assert (a.state, b.state) == (TcpState.ESTABLISHED, TcpState.ESTABLISHED)
    assert a.send_mss == 1000 and b.send_mss == 1000
    flags = [segment.flags for _, _, segment in link.sent]
    assert flags == [TcpFlags.SYN, TcpFlags.SYN | TcpFlags.ACK, TcpFlags.ACK]


def test_rfc7323_window_scale_is_used_when_both_offer_it():
    a, b, link, ends, now = open_pair(config_a=TcpConfig(receive_buffer=1 << 20))
    [syn_segment] = [s for _, who, s in link.sent if who == "a" and s.has(TcpFlags.SYN)]
    assert syn_segment.options.window_scale == 5  # 1 MiB >> 5 fits 16 bits
    assert b.send_window == 1 << 20  # B reads A's later windows shifted by 5
    b.send(bytes(100_000))
    run(link, ends, now, lambda: len(a._received) == 100_000, 30, lambda t: None)
    assert len(a.read()) == 100_000


def test_rfc9293_3_5_simultaneous_open_ends_established_on_both_sides():
    link = Link(random.Random(0))
    a, out_a = TcpConnection.active_open(40000, 80, ISS_A, 0.0)
    b, out_b = TcpConnection.active_open(80, 40000, ISS_B, 0.0)
    link.send("a", out_a, 0.0)
    link.send("b", out_b, 0.0)
    states = []
    run(link, {"a": a, "b": b}, 0.0, lambda: a.established and b.established, 10,
        lambda now: states.append((a.state, b.state)))
    assert (TcpState.SYN_RECEIVED, TcpState.SYN_RECEIVED) in states
    assert (a.state, b.state) == (TcpState.ESTABLISHED, TcpState.ESTABLISHED)


def test_rfc9293_3_10_7_3_syn_sent_reset_with_acceptable_ack_is_refused_without_it_ignored():
    a, [first] = TcpConnection.active_open(40000, 80, ISS_A, 0.0)
    assert a.receive(TcpSegment(80, 40000, 0, ISS_A + 1, TcpFlags.RST, 0), 0.1) == []
    assert a.state is TcpState.SYN_SENT and a.stats.drops == {"tcp_reset_ignored": 1}
    a.receive(TcpSegment(80, 40000, 0, ISS_A + 1, TcpFlags.RST | TcpFlags.ACK, 0), 0.2)
    assert a.closed and a.error == "refused"


def test_rfc9293_3_10_7_3_syn_sent_ack_of_something_never_sent_gets_a_reset():
    a, _ = TcpConnection.active_open(40000, 80, ISS_A, 0.0)
    [reset] = a.receive(TcpSegment(80, 40000, 77, ISS_A + 99, TcpFlags.SYN | TcpFlags.ACK, 1000), 0.1)
    assert (reset.flags, reset.sequence) == (TcpFlags.RST, ISS_A + 99)
    assert a.state is TcpState.SYN_SENT


# ---------------------------------------------------------------------- data


@settings(max_examples=25, deadline=None)
@given(seed=st.integers(0, 2**32), loss=st.sampled_from([0.0, 0.05, 0.2]), jitter=st.sampled_from([0.0, 0.03]),
       size_a=st.integers(0, 40_000), size_b=st.integers(0, 40_000), family=st.sampled_from([4, 6]))
def test_random_data_arrives_byte_exact_both_ways_under_loss_and_reordering(seed, loss, jitter, size_a, size_b,
                                                                           family):
    rng = random.Random(seed)
    link = Link(rng, loss=loss, jitter=jitter, **({"addresses": (A6, B6)} if family == 6 else {}))
    a, out = TcpConnection.active_open(40000, 80, ISS_A, 0.0)
    link.send("a", out, 0.0)
    ends = {"a": a, "b": None}
    data = {"a": rng.randbytes(size_a), "b": rng.randbytes(size_b)}
    offered = {"a": 0, "b": 0}
    received = {"a": bytearray(), "b": bytearray()}

    def step(now):
        if ends["b"] is None:
            return
        for name, connection in ends.items():
            received[name] += connection.read(rng.choice([None, 1000]))
            if offered[name] < len(data[name]):
                offered[name] += connection.send(data[name][offered[name]:offered[name] + rng.randint(1, 30_000)])
            elif connection.state in (TcpState.ESTABLISHED, TcpState.CLOSE_WAIT):
                connection.close()

    # B is made from the first SYN that gets through (the layer's job, done by hand here).
    original = link.arrivals

    def arrivals(now):
        out = original(now)
        for index, (receiver, segment) in enumerate(out):
            if receiver == "b" and ends["b"] is None and segment.flags == TcpFlags.SYN:
                ends["b"], reply = TcpConnection.passive_open(segment, ISS_B, now)
                link.send("b", reply, now)
                out = out[index + 1:]
                return [pair for pair in out if pair[0] == "a" or ends["b"] is not None]
        return [pair for pair in out if pair[0] == "a" or ends["b"] is not None]

    link.arrivals = arrivals
    run(link, ends, 0.0, lambda: ends["b"] is not None and all(
        c.state in (TcpState.CLOSED, TcpState.TIME_WAIT) for c in ends.values()), 3000, step)
    a, b = ends["a"], ends["b"]
    assert b is not None
    assert (bytes(received["b"]) + b.read(), bytes(received["a"]) + a.read()) == (data["a"], data["b"])
    assert {a.state, b.state} <= {TcpState.CLOSED, TcpState.TIME_WAIT}
    if loss < 0.2:
        assert a.error is None and b.error is None
        assert TcpState.TIME_WAIT in (a.state, b.state) or a.closed and b.closed
    else:
        # At 20 % loss, the last FIN's ACK and its retransmissions can all be lost (5 in a row,
        # about 1 in 3000) until the peer's TIME-WAIT (2 MSL) is over: the closer then gives up
        # (RFC 1122 4.2.3.5), every byte already delivered (seed=8379, size_b=15333 found it).
        assert {a.error, b.error} <= {None, "timeout"}


def test_rfc5681_3_1_slow_start_then_congestion_avoidance():
    a, b, link, ends, now = open_pair()
    size = a._segment_size()
    assert a.congestion_window == 3 * size  # RFC 5681 3.1: IW = 3 * SMSS for 1095 < SMSS <= 2190
    a.send(bytes(100 * size))
    flight = a.poll(now)
    assert [s.data_length for s in flight] == [size] * 3  # the initial window, no more
    b.receive(flight[0], now)
    [ack] = b.receive(flight[1], now)  # every second full segment is ACKed at once
    more = a.receive(ack, now + 0.02)
    # RFC 5681 3.1 (2): slow start adds min(N, SMSS) for an ACK of N = 2 SMSS: cwnd 4 SMSS,
    # one segment still in flight, so three more go out.
    assert a.congestion_window == 4 * size and len(more) == 3
    a.slow_start_threshold = a.congestion_window  # from here on: congestion avoidance
    b.receive(flight[2], now)
    [ack] = b.receive(more[0], now + 0.03)
    before = a.congestion_window
    a.receive(ack, now + 0.04)
    # RFC 5681 3.1 (3): cwnd += SMSS * SMSS / cwnd per ACK.
    assert a.congestion_window == before + size * size // before


def test_rfc5681_3_1_after_a_retransmission_timeout_cwnd_is_one_segment_and_ssthresh_half_the_flight():
    a, b, link, ends, now = open_pair()
    size = a._segment_size()
    a.send(bytes(10 * size))
    flight = a.poll(now)
    [again] = a.poll(a.next_deadline())
    assert again.sequence == flight[0].sequence and a.congestion_window == size
    assert a.slow_start_threshold == max(3 * size // 2, 2 * size)


def test_rfc3042_limited_transmit_gets_a_small_window_to_fast_retransmit_without_a_timeout():
    """RFC 5681 3.2 (1), RFC 3042 2: the first and second duplicate ACK each let one new segment
    out (cwnd unchanged), so a loss in a flight of three still brings the third duplicate ACK.
    Without it the two later segments bring two duplicate ACKs only and the loss waits for the
    retransmission timeout (1 s at least): what a 5 % lossy link to the kernel showed."""
    a, b, link, ends, now = open_pair()
    size = a._segment_size()
    a.send(b"x")  # one exchange first: from now on B's windows are scaled (not the SYN-ACK's)
    [ack] = b.receive(a.poll(now)[0], now) or b.poll(now + DELAYED_ACK_S)
    now += DELAYED_ACK_S
    a.receive(ack, now)
    assert b.read() == b"x"
    a.send(bytes(10 * size))
    lost, second, third = a.poll(now)  # the initial window: three segments
    window = a.congestion_window
    [first_duplicate] = b.receive(second, now)  # out of order: a duplicate ACK at once (RFC 5681 4.2)
    [new] = a.receive(first_duplicate, now + 0.01)
    assert (new.sequence, new.data_length) == (third.sequence + size, size)  # never sent before
    [second_duplicate] = b.receive(third, now + 0.01)
    [newer] = a.receive(second_duplicate, now + 0.02)
    assert newer.sequence == new.sequence + size and a.congestion_window == window
    [third_duplicate] = b.receive(new, now + 0.02)
    [again, *_] = a.receive(third_duplicate, now + 0.03)
    assert again.sequence == lost.sequence and a.stats["tcp_fast_retransmits"] == 1
    assert now + 0.03 < a.next_deadline()  # no timeout was needed
    b.receive(again, now + 0.03)
    assert b.read() == bytes(4 * size)


def test_rfc1122_4_2_3_2_an_ack_is_delayed_but_sent_for_every_second_full_segment():
    a, b, link, ends, now = open_pair()
    size = a._segment_size()
    [one] = (a.send(b"x" * 10), a.poll(now))[1]
    assert b.receive(one, now) == []  # delayed
    assert b.next_deadline() == pytest.approx(now + DELAYED_ACK_S)
    [ack] = b.poll(now + DELAYED_ACK_S)
    assert ack.flags == TcpFlags.ACK and ack.acknowledgment == one.sequence + 10
    a.receive(ack, now + 0.25)
    a.send(bytes(2 * size))
    first, second = a.poll(now + 0.3)
    assert b.receive(first, now + 0.3) == []
    [ack] = b.receive(second, now + 0.3)  # the second full-sized segment: ACK at once
    assert ack.acknowledgment == second.sequence + size


def test_rfc5681_4_2_an_out_of_order_segment_is_acknowledged_at_once_and_kept():
    a, b, link, ends, now = open_pair()
    a.send(b"0123456789" * 3)
    a.config  # noqa: B018
    segments = a.poll(now)
    whole = segments[0]
    first = TcpSegment(whole.source_port, whole.destination_port, whole.sequence, whole.acknowledgment,
                       TcpFlags.ACK, whole.window, payload=bytes(whole.payload)[:10])
    rest = TcpSegment(whole.source_port, whole.destination_port, whole.sequence + 10, whole.acknowledgment,
                      TcpFlags.ACK, whole.window, payload=bytes(whole.payload)[10:])
    [duplicate] = b.receive(rest, now)
    assert duplicate.acknowledgment == whole.sequence  # still waiting for the hole
    [ack] = b.receive(first, now)  # the hole filled: ACK at once (RFC 5681 4.2)
    assert ack.acknowledgment == whole.sequence + 30
    assert b.read() == b"0123456789" * 3


# ---------------------------------------------------------------------- timers


def test_rfc6298_syn_retransmissions_back_off_doubling_then_give_up():
    a, [first] = TcpConnection.active_open(40000, 80, ISS_A, 0.0)
    times, now = [0.0], 0.0
    while not a.closed:
        now = a.next_deadline()
        for segment in a.poll(now):
            assert segment.flags == TcpFlags.SYN and segment.sequence == ISS_A
            times.append(now)
    gaps = [later - earlier for earlier, later in zip(times, times[1:])]
    expected = [min(2.0 ** n, RTO_MAXIMUM_S) for n in range(MAXIMUM_SYN_RETRANSMISSIONS)]
    assert gaps == pytest.approx(expected)  # RFC 6298 2.1 (1 s) and 5.5 (doubling), 2.5 (cap)
    assert a.error == "timeout" and a.stats["tcp_connections_timed_out"] == 1
    assert now - times[-1] == pytest.approx(RTO_MAXIMUM_S)


def test_rfc6298_data_retransmission_doubles_from_the_measured_rto_then_gives_up():
    a, b, link, ends, now = open_pair()
    a.send(b"hello")
    [segment] = a.poll(now)
    rto = a.rto
    assert rto == pytest.approx(1.0)  # RFC 6298 2.4: a 20 ms round trip is rounded up to 1 s
    times = [now]
    while not a.closed:
        now = a.next_deadline()
        for again in a.poll(now):
            assert (again.sequence, bytes(again.payload)) == (segment.sequence, b"hello")
            times.append(now)
    gaps = [later - earlier for earlier, later in zip(times, times[1:])]
    assert gaps == pytest.approx([min(rto * 2 ** n, RTO_MAXIMUM_S) for n in range(MAXIMUM_RETRANSMISSIONS)])
    assert a.error == "timeout"


def test_rfc9293_3_8_6_1_zero_window_probes_keep_the_connection_open_until_the_window_opens():
    a, b, link, ends, now = open_pair(config_b=TcpConfig(receive_buffer=3000))
    a.send(bytes(range(256)) * 40)  # 10240 bytes into a 3000-byte window nobody reads
    now = run(link, ends, now, lambda: False, 600)  # ten minutes: far past the give-up time
    probes = [(t, s) for t, who, s in link.sent if who == "a" and s.data_length == 1]
    assert len(probes) >= 5 and a.state is TcpState.ESTABLISHED and b.send_window > 0
    gaps = [later[0] - earlier[0] for earlier, later in zip(probes, probes[1:])]
    assert gaps[1] > gaps[0] and max(gaps) <= RTO_MAXIMUM_S + 1e-6  # backed off, capped
    received = bytearray()
    run(link, ends, now, lambda: len(received) == 10240, 120, lambda t: received.extend(b.read()))
    assert bytes(received) == bytes(range(256)) * 40


def test_after_a_timeout_a_bare_ack_carries_the_highest_sequence_sent_so_the_peer_accepts_it():
    a, b, link, ends, now = open_pair()
    size = a._segment_size()
    a.send(bytes(3 * size))
    for segment in a.poll(now):
        b.receive(segment, now)  # B has everything; its ACKs are lost
    [again] = a.poll(a.next_deadline())  # go back to SND.UNA: SND.NXT is below what B holds
    assert a.send_next == again.sequence + size and a.send_max == again.sequence + 3 * size
    b.send(bytes(2 * size))
    first, second = b.poll(now + 1.5)
    a.receive(first, now + 1.5)
    [ack] = a.receive(second, now + 1.5)
    assert ack.data_length == 0 and ack.sequence == b.receive_next  # acceptable to B
    assert b.receive(ack, now + 1.6) == [] and b.stats.drops == {}


# ---------------------------------------------------------------------- RST, SYN and unacceptable segments


def test_rfc5961_3_2_a_reset_in_the_window_but_not_at_rcv_nxt_gets_a_challenge_ack():
    a, b, link, ends, now = open_pair()
    [challenge] = b.receive(TcpSegment(40000, 80, a.send_next + 100, 0, TcpFlags.RST, 0), now)
    assert challenge.flags == TcpFlags.ACK and challenge.acknowledgment == b.receive_next
    assert b.state is TcpState.ESTABLISHED and b.stats.drops == {"tcp_reset_challenged": 1}
    assert b.receive(TcpSegment(40000, 80, a.send_next, 0, TcpFlags.RST, 0), now) == []
    assert b.closed and b.error == "reset"


def test_rfc5961_4_a_syn_on_an_established_connection_gets_a_challenge_ack():
    a, b, link, ends, now = open_pair()
    [challenge] = b.receive(syn(sequence=a.send_next + 5), now)
    assert challenge.flags == TcpFlags.ACK and (challenge.sequence, challenge.acknowledgment) == (
        b.send_next, b.receive_next)
    assert b.state is TcpState.ESTABLISHED and b.stats.drops == {"tcp_syn_challenged": 1}


def test_rfc9293_3_10_7_4_fifth_a_segment_without_ack_on_a_synchronized_connection_is_dropped():
    a, b, link, ends, now = open_pair()
    assert b.receive(TcpSegment(40000, 80, a.send_next, 0, TcpFlags.PSH, 100, payload=b"data"), now) == []
    assert b.read() == b"" and b.stats.drops == {"tcp_no_ack": 1}


def test_rfc9293_3_10_7_3_fifth_syn_sent_drops_a_segment_with_neither_syn_nor_rst():
    a, _ = TcpConnection.active_open(40000, 80, ISS_A, 0.0)
    assert a.receive(TcpSegment(80, 40000, 7, 0, TcpFlags.PSH, 100, payload=b"x"), 0.1) == []
    assert a.state is TcpState.SYN_SENT and a.stats.drops == {"tcp_no_syn": 1}


def test_the_out_of_order_queue_is_bounded_by_the_receive_buffer():
    a, b, link, ends, now = open_pair(config_b=TcpConfig(receive_buffer=4096))
    start = a.send_next
    # Overlapping segments beyond a hole at RCV.NXT, within the window, each kept as it came,
    # until the queue would hold more than the 4096-byte buffer.
    for offset in range(1, 6):
        b.receive(TcpSegment(40000, 80, (start + offset) % 2**32, b.send_next, TcpFlags.ACK, 100,
                             payload=bytes(1000)), now)
    assert b.stats.drops.get("tcp_out_of_order_queue_full", 0) >= 1
    assert b.read() == b""  # nothing in order yet: the hole at RCV.NXT is still there


def test_rfc9293_3_10_7_4_an_unacceptable_segment_is_answered_with_an_ack_and_dropped():
    a, b, link, ends, now = open_pair()
    old = TcpSegment(40000, 80, (a.send_next - 5000) % 2**32, b.send_next, TcpFlags.ACK, 100, payload=b"old")
    [ack] = b.receive(old, now)
    assert (ack.flags, ack.sequence, ack.acknowledgment) == (TcpFlags.ACK, b.send_next, b.receive_next)
    assert b.read() == b"" and b.stats.drops == {"tcp_out_of_window": 1}


def test_rfc5961_5_2_an_ack_of_data_never_sent_is_answered_and_dropped():
    a, b, link, ends, now = open_pair()
    [ack] = b.receive(TcpSegment(40000, 80, a.send_next, (b.send_next + 10**6) % 2**32, TcpFlags.ACK, 100,
                                 payload=b"data"), now)
    assert ack.acknowledgment == b.receive_next and b.read() == b""
    assert b.stats.drops == {"tcp_unacceptable_ack": 1}


# ---------------------------------------------------------------------- closing


def test_rfc9293_3_6_simultaneous_close_goes_through_closing_to_time_wait_then_closed():
    a, b, link, ends, now = open_pair()
    a.close()
    b.close()
    assert (a.state, b.state) == (TcpState.FIN_WAIT_1, TcpState.FIN_WAIT_1)
    states = set()
    now = run(link, ends, now, lambda: a.state is b.state is TcpState.TIME_WAIT, 10,
              lambda t: states.add((a.state, b.state)))
    assert (TcpState.CLOSING, TcpState.CLOSING) in states
    entered = now
    run(link, ends, now, lambda: a.closed and b.closed, 1000)
    assert a.closed and b.closed and a.error is None
    assert link.sent[-1][0] <= entered + 1  # nothing sent during TIME-WAIT
    assert a.next_deadline() is None


def test_rfc9293_3_10_7_4_time_wait_lasts_two_msl_and_a_retransmitted_fin_restarts_it():
    a, b, link, ends, now = open_pair()
    a.close()
    now = run(link, ends, now, lambda: a.state is TcpState.FIN_WAIT_2, 5)
    b.close()
    [fin] = b.poll(now)
    [ack] = a.receive(fin, now)
    assert a.state is TcpState.TIME_WAIT and a.next_deadline() == pytest.approx(now + 2 * MAXIMUM_SEGMENT_LIFETIME_S)
    [again] = a.receive(fin, now + 30)  # B did not get our ACK and sent its FIN again
    assert again.acknowledgment == ack.acknowledgment
    assert a.next_deadline() == pytest.approx(now + 30 + 2 * MAXIMUM_SEGMENT_LIFETIME_S)
    assert a.poll(now + 30 + 2 * MAXIMUM_SEGMENT_LIFETIME_S) == [] and a.closed


def test_fin_wait_2_waits_for_ever_unless_given_a_timeout():
    a, b, link, ends, now = open_pair()
    a.close()
    now = run(link, ends, now, lambda: a.state is TcpState.FIN_WAIT_2, 5)
    assert a.next_deadline() is None  # RFC 9293: no timer in FIN-WAIT-2


def test_fin_wait_2_ends_after_a_minute_without_a_segment_from_the_peer():
    a, b, link, ends, now = open_pair(config_a=TcpConfig(fin_wait_2_timeout=FIN_WAIT_2_TIMEOUT_S))
    a.close()
    now = run(link, ends, now, lambda: a.state is TcpState.FIN_WAIT_2, 5)
    assert a.next_deadline() == pytest.approx(now + FIN_WAIT_2_TIMEOUT_S)
    b.send(b"still talking")  # a half-closed connection still receives, and that restarts the wait
    link.send("b", b.poll(now + 30), now + 30)
    now = run(link, ends, now + 30, lambda: a.next_deadline() > now + FIN_WAIT_2_TIMEOUT_S, 1)
    assert a.read() == b"still talking" and a.state is TcpState.FIN_WAIT_2
    assert a.poll(a.next_deadline()) == [] and a.closed and a.error == "timeout"


def drive_to(state: TcpState):
    """A pair with A in ``state`` (B in its counterpart), by the diagram's own paths."""
    if state is TcpState.SYN_SENT:
        a, _ = TcpConnection.active_open(40000, 80, ISS_A, 0.0)
        return a, None, 0.0
    if state is TcpState.SYN_RECEIVED:
        a, _ = TcpConnection.passive_open(syn(), ISS_A, 0.0)
        return a, None, 0.0
    a, b, link, ends, now = open_pair()
    if state is TcpState.ESTABLISHED:
        return a, b, now
    if state in (TcpState.CLOSE_WAIT, TcpState.LAST_ACK):
        b.close()
        now = run(link, ends, now, lambda: a.state is TcpState.CLOSE_WAIT and not link.queue, 5)
        if state is TcpState.LAST_ACK:
            a.close()
            a.poll(now)  # the FIN goes nowhere: A waits in LAST-ACK
        return a, b, now
    a.close()
    if state is TcpState.FIN_WAIT_1:
        a.poll(now)
        return a, b, now
    if state is TcpState.CLOSING:
        b.close()
        fin_a, fin_b = a.poll(now), b.poll(now)
        a.receive(fin_b[0], now)  # B's FIN before the ACK of ours
        return a, b, now
    now = run(link, ends, now, lambda: a.state is TcpState.FIN_WAIT_2, 5)
    if state is TcpState.TIME_WAIT:
        b.close()
        a.receive(b.poll(now)[0], now)
    return a, b, now


@pytest.mark.parametrize("state", [s for s in TcpState if s not in (TcpState.CLOSED, TcpState.LISTEN)],
                         ids=lambda s: s.value)
def test_rfc9293_3_10_7_a_reset_closes_every_state_only_at_rcv_nxt(state):
    a, _, now = drive_to(state)
    assert a.state is state
    if state is TcpState.SYN_SENT:
        a.receive(TcpSegment(80, 40000, 0, ISS_A + 1, TcpFlags.RST | TcpFlags.ACK, 0), now)
        assert a.closed and a.error == "refused"
        return
    # RFC 5961 3.2: in the window but not at RCV.NXT: a challenge ACK, nothing else changes.
    [challenge] = a.receive(TcpSegment(a.remote_port, a.local_port, (a.receive_next + 1) % 2**32, 0,
                                       TcpFlags.RST, 0), now)
    assert challenge.flags == TcpFlags.ACK and a.state is state
    assert a.receive(TcpSegment(a.remote_port, a.local_port, a.receive_next, 0, TcpFlags.RST, 0), now) == []
    assert a.closed
    expected = {TcpState.SYN_RECEIVED: None, TcpState.CLOSING: None, TcpState.LAST_ACK: None,
                TcpState.TIME_WAIT: None}.get(state, "reset")
    assert a.error == expected  # RFC 9293 3.10.7.4 second: "connection reset" where a user listens


def test_close_in_syn_received_sends_the_fin_after_the_handshake():
    b, _ = TcpConnection.passive_open(syn(), ISS_B, 0.0)
    b.close()
    assert b.state is TcpState.SYN_RECEIVED
    out = b.receive(TcpSegment(40000, 80, 5001, ISS_B + 1, TcpFlags.ACK, 1000), 0.1)
    assert b.state is TcpState.FIN_WAIT_1 and [s.flags for s in out] == [TcpFlags.FIN | TcpFlags.ACK]


def test_abort_sends_a_reset_and_closes():
    a, b, link, ends, now = open_pair()
    [reset] = a.abort()
    assert reset.flags == TcpFlags.RST and reset.sequence == a.send_next
    assert a.closed and a.error == "aborted"
    assert b.receive(reset, now) == [] and b.closed and b.error == "reset"


# ---------------------------------------------------------------------- the state diagram as a model


CLOSABLE = {TcpState.ESTABLISHED: TcpState.FIN_WAIT_1, TcpState.CLOSE_WAIT: TcpState.LAST_ACK,
            TcpState.SYN_SENT: TcpState.CLOSED}


class StateDiagram(RuleBasedStateMachine):
    """Two ends, A (active open) and B (passive from A's SYN, or active too: simultaneous open),
    over a link that keeps order in each direction but lets the two directions interleave in
    any way (so both ends can close before either FIN arrives). Retransmissions after time
    steps bring old duplicates. The model is RFC 9293's diagram driven by what each delivered
    segment carries, judged by the model's own count of each side's sequence numbers."""

    @initialize()
    def start(self):
        self.now = 0.0
        self.queues = {"a": [], "b": []}  # segments waiting to reach a / b, in order
        self.ends = {"a": None, "b": None}
        self.model = {"a": TcpState.CLOSED, "b": TcpState.LISTEN}
        self.receive_next = {"a": None, "b": None}  # what the model says each end expects next
        self.fin_sent_at = {"a": None, "b": None}  # the FIN's sequence number once closing
        self.close_pending = {"a": False, "b": False}
        self.time_wait_since = {"a": None, "b": None}
        self.sent = {"a": 0, "b": 0}
        self.ends["a"], out = TcpConnection.active_open(40000, 80, ISS_A, 0.0)
        self.model["a"] = TcpState.SYN_SENT
        self.queues["b"] += out

    def other(self, name):
        return "b" if name == "a" else "a"

    def emit(self, name, segments):
        self.queues[self.other(name)] += segments

    @precondition(lambda self: self.ends["b"] is None)
    @rule()
    def b_opens_actively_too(self):
        self.ends["b"], out = TcpConnection.active_open(80, 40000, ISS_B, self.now)
        self.model["b"] = TcpState.SYN_SENT
        self.emit("b", out)

    @rule(name=st.sampled_from("ab"))
    def deliver(self, name):
        if not self.queues[name]:
            return
        segment = self.queues[name].pop(0)
        connection = self.ends[name]
        if connection is None:
            if segment.flags == TcpFlags.SYN:  # LISTEN: rcv SYN, snd SYN,ACK
                self.ends[name], out = TcpConnection.passive_open(segment, ISS_B, self.now)
                self.model[name] = TcpState.SYN_RECEIVED
                self.receive_next[name] = segment.sequence + 1
                self.emit(name, out)
            return
        self.expect_after(name, segment)
        self.emit(name, connection.receive(segment, self.now))

    def expect_after(self, name, segment):
        """The diagram's transition for ``segment`` arriving at ``name``."""
        state, expected = self.model[name], self.model[name]
        flags = segment.flags
        connection = self.ends[name]
        nxt = self.receive_next[name]
        fin_of_ours = self.fin_sent_at[name]
        acks_our_fin = bool(flags & TcpFlags.ACK) and fin_of_ours is not None and \
            (segment.acknowledgment - (fin_of_ours + 1)) % 2**32 < 2**31
        if state is TcpState.CLOSED:
            return
        if state is TcpState.SYN_SENT:
            if flags & TcpFlags.SYN:
                self.receive_next[name] = (segment.sequence + 1) % 2**32
                if flags & TcpFlags.ACK:
                    expected = self.establish(name)  # rcv SYN,ACK, snd ACK
                else:
                    expected = TcpState.SYN_RECEIVED  # simultaneous open
            self.model[name] = expected
            return
        end = (segment.sequence + segment.segment_length) % 2**32
        new = (end - nxt) % 2**32 < 2**31 and end != nxt if segment.segment_length else segment.sequence == nxt
        if flags & TcpFlags.SYN:
            if state is TcpState.SYN_RECEIVED and flags & TcpFlags.ACK and segment.sequence + 1 == nxt:
                expected = self.establish(name)  # the peer's SYN-ACK in a simultaneous open
            self.model[name] = expected
            return
        if not new and not (segment.segment_length == 0 and segment.sequence == nxt):
            if flags & TcpFlags.FIN and state is TcpState.TIME_WAIT:
                self.time_wait_since[name] = self.now  # a retransmitted FIN restarts 2 MSL
            return  # an old duplicate: acknowledged, no change
        if state is TcpState.SYN_RECEIVED and flags & TcpFlags.ACK:
            state = expected = self.establish(name)  # rcv ACK of SYN
        if acks_our_fin:
            expected = {TcpState.FIN_WAIT_1: TcpState.FIN_WAIT_2, TcpState.CLOSING: TcpState.TIME_WAIT,
                        TcpState.LAST_ACK: TcpState.CLOSED}.get(state, state)
            if expected is TcpState.TIME_WAIT and state is not TcpState.TIME_WAIT:
                self.time_wait_since[name] = self.now
        if flags & TcpFlags.FIN and expected in (TcpState.ESTABLISHED, TcpState.FIN_WAIT_1, TcpState.FIN_WAIT_2):
            self.receive_next[name] = end
            expected = {TcpState.ESTABLISHED: TcpState.CLOSE_WAIT, TcpState.FIN_WAIT_1: TcpState.CLOSING,
                        TcpState.FIN_WAIT_2: TcpState.TIME_WAIT}[expected]
            if expected is TcpState.TIME_WAIT:
                self.time_wait_since[name] = self.now
        elif flags & TcpFlags.FIN and expected is TcpState.TIME_WAIT:
            self.time_wait_since[name] = self.now
        elif segment.data_length and state in (TcpState.ESTABLISHED, TcpState.FIN_WAIT_1, TcpState.FIN_WAIT_2):
            self.receive_next[name] = end
        self.model[name] = expected

    def establish(self, name):
        if self.close_pending[name]:
            self.close_pending[name] = False
            self.fin_sent_at[name] = self.fin_sequence(name)
            return TcpState.FIN_WAIT_1
        return TcpState.ESTABLISHED

    def fin_sequence(self, name):
        iss = ISS_A if self.ends[name] is self.ends["a"] else ISS_B
        return (iss + 1 + self.sent[name]) % 2**32

    @rule(name=st.sampled_from("ab"), size=st.integers(1, 300))
    def send(self, name, size):
        connection = self.ends[name]
        if connection is not None and connection.send_space and self.sent[name] + size <= 3000:
            self.sent[name] += connection.send(bytes(size))
            self.emit(name, connection.poll(self.now))

    @rule(name=st.sampled_from("ab"))
    def read(self, name):
        if self.ends[name] is not None:
            self.ends[name].read()
            self.emit(name, self.ends[name].poll(self.now))

    @rule(name=st.sampled_from("ab"))
    def close(self, name):
        connection = self.ends[name]
        if connection is None:
            return
        state = self.model[name]
        connection.close()
        if state is TcpState.SYN_RECEIVED:
            self.close_pending[name] = True  # RFC 9293 3.10.4: queued until ESTABLISHED
        elif state in CLOSABLE:
            self.model[name] = CLOSABLE[state]
            if state is not TcpState.SYN_SENT:
                self.fin_sent_at[name] = self.fin_sequence(name)
        self.emit(name, connection.poll(self.now))

    @rule(name=st.sampled_from("ab"), exact=st.booleans())
    def reset_arrives(self, name, exact):
        """A RST at RCV.NXT closes any state (RFC 9293 3.10.7.4 second); elsewhere in the window
        it gets a challenge ACK (RFC 5961 3.2). In SYN-SENT it must acknowledge our SYN."""
        connection = self.ends[name]
        if connection is None or self.model[name] is TcpState.CLOSED:
            return
        if self.model[name] is TcpState.SYN_SENT:
            reset = TcpSegment(connection.remote_port, connection.local_port, 0, (connection.iss + 1) % 2**32,
                               TcpFlags.RST | TcpFlags.ACK, 0)
            exact = True
        else:
            sequence = (self.receive_next[name] + (0 if exact else 1)) % 2**32
            reset = TcpSegment(connection.remote_port, connection.local_port, sequence, 0, TcpFlags.RST, 0)
        out = connection.receive(reset, self.now)
        if exact:
            self.model[name] = TcpState.CLOSED
            assert out == []
        else:
            assert [s.flags for s in out] == [TcpFlags.ACK]
            self.emit(name, out)

    @rule(step=st.sampled_from([0.05, 0.3, 1.1]))
    def time_passes(self, step):
        if self.now + step > 25:  # well before any give-up (SYN-ACK: 1+2+4+8+16 s)
            return
        self.now += step
        self.poll_both()

    @precondition(lambda self: TcpState.TIME_WAIT in self.model.values())
    @rule()
    def time_wait_ends(self):
        for name in "ab":
            connection = self.ends[name]
            if connection is not None and self.model[name] not in (TcpState.TIME_WAIT, TcpState.CLOSED) and (
                    connection.send_unacknowledged != connection.send_max or connection._retransmit_deadline):
                return  # a long wait would make this side give up: not this rule's business
        self.now += 2 * MAXIMUM_SEGMENT_LIFETIME_S + 0.01
        for name in "ab":
            if self.model[name] is TcpState.TIME_WAIT and \
                    self.now - self.time_wait_since[name] >= 2 * MAXIMUM_SEGMENT_LIFETIME_S:
                self.model[name] = TcpState.CLOSED
        self.poll_both()

    def poll_both(self):
        for name in "ab":
            connection = self.ends[name]
            if connection is not None:
                deadline = connection.next_deadline()
                if deadline is not None and deadline <= self.now:
                    self.emit(name, connection.poll(self.now))

    @invariant()
    def states_match_the_diagram(self):
        for name in "ab":
            connection = self.ends[name]
            actual = TcpState.LISTEN if connection is None else connection.state
            assert actual is self.model[name], (name, actual, self.model[name])


TestStateDiagram = StateDiagram.TestCase
TestStateDiagram.settings = settings(max_examples=150, stateful_step_count=40, deadline=None)
