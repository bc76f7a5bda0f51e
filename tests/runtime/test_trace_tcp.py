"""``--trace`` lines for TCP, as ``tcpdump -nn -S`` prints them: ports after the addresses, the
flags in tcpdump's letters, absolute numbers, window, options, data length."""

from __future__ import annotations

import dpkt
import pytest

from stack import TunHost
from stack.buffers import join
from stack.runtime.trace import summarize
from stack.testing import frames


def segment(flags: int, seq: int = 1000, ack: int = 0, data: bytes = b"", opts: bytes = b"", family: int = 4,
            win: int = 64240, urp: int = 0) -> bytes:
    tcp = dpkt.tcp.TCP(sport=40000, dport=80, seq=seq, ack=ack, flags=flags, win=win, opts=opts, data=data, urp=urp)
    tcp.off = (20 + len(opts)) // 4
    if family == 4:
        return bytes(dpkt.ip.IP(src=frames.ip(frames.KERNEL_IP), dst=frames.ip(frames.HOST_IP), p=6, data=tcp))
    packet = dpkt.ip6.IP6(src=frames.ip6(frames.KERNEL_IP6), dst=frames.ip6(frames.HOST_IP6), nxt=6, hlim=64,
                          data=tcp)
    packet.plen = len(bytes(tcp))
    return bytes(packet)


LINUX_SYN_OPTIONS = bytes.fromhex("020405b4 0402080a 0001e240 00000000 01030307")


def test_a_syn_reads_as_tcpdump_prints_it():
    line = summarize(segment(dpkt.tcp.TH_SYN, opts=LINUX_SYN_OPTIONS), "ip")
    assert line == ("192.0.2.1.40000 > 192.0.2.2.80: Flags [S], seq 1000, win 64240, "
                    "options [mss 1460,sackOK,TS val 123456 ecr 0,wscale 7], length 0")


def test_the_rst_a_closed_port_sends_reads_as_tcpdump_prints_it():
    host = TunHost([frames.HOST_IP], peer=frames.KERNEL_IP)
    [reset] = host.receive(segment(dpkt.tcp.TH_SYN), 1.0)
    assert summarize(join(reset), "ip") == "192.0.2.2.80 > 192.0.2.1.40000: Flags [R.], seq 0, ack 1001, win 0, length 0"


@pytest.mark.parametrize("flags, letters", [
    (dpkt.tcp.TH_ACK | dpkt.tcp.TH_PUSH, "P."), (dpkt.tcp.TH_FIN | dpkt.tcp.TH_ACK, "F."), (0, "none"),
    (dpkt.tcp.TH_SYN | dpkt.tcp.TH_ECE | dpkt.tcp.TH_CWR, "SEW"), (0xFF, "FSRP.UEW")])
def test_flags_use_tcpdumps_letters_and_order(flags, letters):
    line = summarize(segment(flags, ack=7, data=b"hello"), "ip")
    assert f"Flags [{letters}]" in line and line.endswith("length 5")
    assert (", ack 7" in line) == bool(flags & dpkt.tcp.TH_ACK)


def test_ipv6_and_the_urgent_pointer():
    line = summarize(segment(dpkt.tcp.TH_URG | dpkt.tcp.TH_ACK, ack=9, urp=3, family=6), "ip")
    assert line == "2001:db8::1.40000 > 2001:db8::2.80: Flags [.U], seq 1000, ack 9, win 64240, urg 3, length 0"


def test_a_bad_checksum_is_shown_and_marked():
    packet = bytearray(segment(dpkt.tcp.TH_SYN))
    packet[36] ^= 0xFF
    line = summarize(bytes(packet), "ip")
    assert line.startswith("192.0.2.1.40000 > 192.0.2.2.80: Flags [S] [bad tcp cksum], seq 1000")


def test_malformed_options_and_a_short_header():
    assert "options [bad opts]" in summarize(segment(dpkt.tcp.TH_SYN, opts=b"\x02\x09\x00\x00"), "ip")
    short = frames.ipv4_datagram(frames.KERNEL_IP, frames.HOST_IP, 6, bytes(12))
    assert "malformed: [TCP]" in summarize(short, "ip")
