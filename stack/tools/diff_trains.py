"""The fragment trains ``tapstack diff`` sends: one IPv4 datagram (an echo request, or UDP to a
port nobody listens on) cut into fragments, sent in order, reversed, shuffled, with an exact
duplicate, with an overlapping fragment, with an empty non-last fragment, whole (an atomic
datagram), or with one piece missing (the train never completes: a reassembly timeout).

Read first: RFC 791 3.2 (fragmentation and reassembly); RFC 815 (holes); RFC 1122 3.3.2 (a host
MUST reassemble, with a timeout; RFC 792: Time Exceeded code 1 when the first fragment came);
RFC 6864 (atomic datagrams). RFC 5722 (overlaps discard the whole datagram) is IPv6's; what an
IPv4 host does with an overlap is whatever Linux does (``tapstack diff`` compares it).

The diff's own generator, not ``stack.testing.strategies.fragment_trains``: it draws the kinds of
train that found issue 13 (an empty fragment) and the incomplete ones whose timer the diff waits
for, and it keeps trains short (at most ``MAX_FRAGMENTS`` pieces) so an example stays cheap.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from ipaddress import IPv4Address, IPv4Interface, IPv6Address

from stack.documentation_addresses import HOST
from stack.l2.ethernet import BROADCAST, EthernetFrame, EtherType, MacAddress
from stack.l3.icmp import IcmpMessage, IcmpType
from stack.checksum import internet_checksum
from stack.l3.ipv4 import MINIMUM_HEADER_LENGTH, IpProto, Ipv4Packet
from stack.l3.ipv6 import FragmentHeader, Ipv6Packet, NextHeader, pseudo_header
from stack.l4.udp import UdpDatagram

IPV6_HEADER = 40
FRAGMENT_HEADER = 8

#: The kinds of train, in the order hypothesis shrinks towards (a plain train first).
KINDS = ("in-order", "reversed", "shuffled", "duplicate", "overlap", "empty", "atomic", "incomplete")
#: How often each kind is drawn, out of ``sum(WEIGHTS.values())``. The kinds that leave a
#: datagram unfinished (``incomplete`` always; ``overlap`` nearly always and ``empty`` unless it
#: comes first, as the fragments after them start the datagram anew; ``duplicate`` when the copy
#: follows completion) cost a reassembly timeout each (``REASSEMBLY_TIMEOUT_S`` in diff.py, 1 s):
#: they are drawn less often.
WEIGHTS = {"in-order": 2, "reversed": 1, "shuffled": 2, "duplicate": 1, "overlap": 1, "empty": 3,
           "atomic": 1, "incomplete": 1}
#: ``KINDS`` each as often as its weight, for ``sampled_from`` (both families' trains).
WEIGHTED_KINDS = tuple(kind for kind in KINDS for _ in range(WEIGHTS[kind]))
#: At most this many pieces in a train (before duplicates, overlaps and empty fragments).
MAX_FRAGMENTS = 8
#: The largest fragment: an Ethernet MTU (RFC 894), header included.
LARGEST_FRAGMENT = 1500
#: Most datagrams carry up to this many bytes of ICMP or UDP message; one in eight up to
#: ``LARGEST_MESSAGE`` (so that the echo reply must itself be fragmented).
TYPICAL_MESSAGE = 300
LARGEST_MESSAGE = 4000


@dataclass(frozen=True)
class Train:
    """One datagram's fragments, in the order they are sent.

    ``datagram`` is the whole IPv4 datagram (unfragmented); ``fragments`` the wire bytes (an
    Ethernet frame each, or bare packets over TUN); ``pieces`` each fragment's (start, stop)
    byte range of the datagram's data, in the same order."""

    kind: str
    datagram: bytes
    fragments: tuple[bytes, ...]
    pieces: tuple[tuple[int, int], ...]

    @property
    def length(self) -> int:
        """The datagram's data length (what reassembly must cover)."""
        return len(self.datagram) - (IPV6_HEADER if self.datagram[0] >> 4 == 6 else MINIMUM_HEADER_LENGTH)


def _cut(draw, length: int) -> list[tuple[int, int]]:
    """Cut ``length`` bytes into 2 to ``MAX_FRAGMENTS`` pieces at drawn multiples of 8 bytes
    (a piece larger than a ``LARGEST_FRAGMENT`` fragment carries is cut again)."""
    from hypothesis import strategies as st

    units = math.ceil(length / 8)
    room = (LARGEST_FRAGMENT - MINIMUM_HEADER_LENGTH) // 8
    count = draw(st.integers(2, min(MAX_FRAGMENTS, units)))
    cuts = sorted(draw(st.lists(st.integers(1, units - 1), min_size=count - 1, max_size=count - 1, unique=True)))
    pieces: list[tuple[int, int]] = []
    for first, last in zip([0, *cuts], [*cuts, units]):
        for start in range(first, last, room):
            pieces.append((8 * start, min(8 * min(start + room, last), length)))
    return pieces


def _arrange(draw, kind: str, length: int, message: bytes, fragment, atomic) -> tuple[list, list]:
    """The pieces of a ``length``-byte message, in the order ``kind`` sends them, and their
    fragments (``fragment(start, stop, data=None, more=None)`` makes one; ``atomic()`` the
    train of an atomic datagram or fragment)."""
    from hypothesis import strategies as st

    if kind == "atomic":
        return [(0, length)], atomic()
    else:
        pieces = _cut(draw, length)
        if kind == "in-order":
            order = list(pieces)
        elif kind == "reversed":
            order = pieces[::-1]
        elif kind == "incomplete":
            missing = draw(st.integers(0, len(pieces) - 1))
            order = [piece for at, piece in enumerate(pieces) if at != missing]
            if draw(st.booleans()):
                order = list(draw(st.permutations(order)))
        elif kind == "shuffled":
            order = list(draw(st.permutations(pieces)))
        else:  # duplicate, overlap, empty: in order or shuffled
            order = list(draw(st.permutations(pieces))) if draw(st.booleans()) else list(pieces)
        frames = [fragment(start, stop) for start, stop in order]
        if kind == "duplicate":
            for _ in range(draw(st.integers(1, 2))):
                at = draw(st.integers(0, len(order) - 1))
                where = draw(st.integers(0, len(order)))
                order.insert(where, order[at])
                frames.insert(where, frames[at])
        elif kind == "overlap":
            units = math.ceil(length / 8)
            first = draw(st.integers(0, units - 1))
            stop = min(8 * draw(st.integers(first + 1, units)), length)
            extra = (8 * first, stop)
            # The same bytes, or other ones (a retransmission that disagrees).
            same = draw(st.booleans())
            extra_data = message[extra[0]:stop] if same else bytes(b ^ 0xFF for b in message[extra[0]:stop])
            where = draw(st.integers(0, len(order)))
            order.insert(where, extra)
            frames.insert(where, fragment(*extra, data=extra_data))
        elif kind == "empty":
            # Issue 13: an empty non-last fragment covers no bytes (MF set, no data), at an
            # offset inside the datagram, at its end, or just past it; half the time first
            # (issue 13's train), else anywhere (it discards what is held: the rest of the
            # train starts the datagram anew, which then times out).
            units = math.ceil(length / 8)
            offset = 8 * draw(st.integers(0, units + 1))
            where = 0 if draw(st.booleans()) else draw(st.integers(0, len(order)))
            order.insert(where, (offset, offset))
            frames.insert(where, fragment(offset, offset, data=b"", more=True))
    return order, frames


def fragment_trains(medium: str = "ethernet", host: IPv4Interface = HOST,
                    host_mac: MacAddress | None = None,
                    peers: dict[IPv4Address, MacAddress] | None = None):
    """Fragment trains from ``peers`` (by default diff's) to ``host`` (mostly its address, sometimes a broadcast or
    all-hosts): ``Train`` values of every kind in ``KINDS``. With ``medium="ip"`` the fragments
    are bare IPv4 packets (a TUN device). hypothesis (the test extra) is imported here only."""
    from hypothesis import strategies as st

    if host_mac is None or peers is None:
        from stack.tools.diff import HOST_MAC, PEERS, TUN_PEER

        host_mac = HOST_MAC if host_mac is None else host_mac
        if peers is None:  # over TUN, the one peer at the other end of the link
            peers = {TUN_PEER: PEERS[TUN_PEER]} if medium == "ip" else PEERS
    known = dict(peers)
    destinations = [host.ip, host.ip, host.ip, host.ip, host.ip, host.network.broadcast_address,
                    IPv4Address("255.255.255.255"), IPv4Address("224.0.0.1")]

    @st.composite
    def trains(draw) -> Train:
        source = draw(st.sampled_from(sorted(known)))
        destination = draw(st.sampled_from(destinations))
        kind = draw(st.sampled_from(WEIGHTED_KINDS))
        if draw(st.integers(0, 7)) == 0:
            size = draw(st.integers(TYPICAL_MESSAGE + 1, LARGEST_MESSAGE))
            pattern = draw(st.binary(min_size=1, max_size=8))
        else:
            size = draw(st.integers(9, TYPICAL_MESSAGE))  # more than 8: at least two fragments
            pattern = b""
        protocol = draw(st.sampled_from([IpProto.ICMP, IpProto.UDP]))
        data_size = size - 8  # the ICMP echo and the UDP header are 8 bytes each
        data = (pattern * (data_size // len(pattern) + 1))[:data_size] if pattern else \
            draw(st.binary(min_size=data_size, max_size=data_size))
        if protocol == IpProto.ICMP:
            message = bytes(IcmpMessage.echo(IcmpType.ECHO_REQUEST, draw(st.integers(0, 0xFFFF)),
                                             draw(st.integers(0, 0xFFFF)), data))
        else:
            # RFC 768: a zero checksum means none was computed.
            message = UdpDatagram(draw(st.integers(1, 0xFFFF)), draw(st.integers(1, 0xFFFF)), data).to_bytes(
                source, destination, summed=draw(st.booleans()))
        fields = dict(ttl=draw(st.integers(1, 255)), identification=draw(st.integers(0, 0xFFFF)),
                      type_of_service=draw(st.sampled_from([0, 0, 0, 0x10, 0xB8])))
        whole = Ipv4Packet(source, destination, protocol, message, **fields)
        length = len(message)

        def fragment(start: int, stop: int, data: bytes | None = None, more: bool | None = None) -> bytes:
            # RFC 791 3.2: MF on every fragment but the last; the offset in 8-octet units.
            piece = message[start:stop] if data is None else data
            return bytes(Ipv4Packet(source, destination, protocol, piece, more_fragments=stop < length if more is None
                                    else more, fragment_offset=start // 8, **fields))

        order, frames = _arrange(draw, kind, length, message, fragment, lambda: [bytes(
            # RFC 6864 4: an atomic datagram (DF set, MF clear, offset 0) is not a fragment at all.
            Ipv4Packet(source, destination, protocol, message, dont_fragment=True, **fields))])
        if medium == "ethernet":
            mac = host_mac if destination == host.ip else BROADCAST
            frames = [bytes(EthernetFrame(mac, known[source], EtherType.IPV4, frame)) for frame in frames]
        return Train(kind, bytes(whole), tuple(frames), tuple(order))

    return trains()


def _ipv6(source: IPv6Address, destination: IPv6Address, next_header: int, payload: bytes,
          hop_limit: int, traffic_class: int) -> bytes:
    """An IPv6 packet (RFC 8200 3)."""
    return bytes(Ipv6Packet(source, destination, next_header, payload, hop_limit=hop_limit,
                            traffic_class=traffic_class))


def fragment_trains6(medium: str = "ethernet"):
    """IPv6 fragment trains from diff's peers to HOST6 (mostly; over TAP sometimes ff02::1): an
    echo request or UDP to a closed port cut into fragments, each a Fragment header (RFC 8200
    4.5) with the whole upper-layer header in the first (RFC 7112), of the kinds in ``KINDS``;
    ``atomic`` is an atomic fragment (RFC 6946: offset 0, M clear)."""
    from hypothesis import strategies as st

    from stack.l2.ipv6_multicast import ipv6_multicast_mac
    from stack.tools.diff import HOST6, HOST_MAC, PEERS6, TUN_PEER6

    if medium == "ip":
        peers, destinations = {TUN_PEER6: PEERS6[TUN_PEER6]}, [HOST6.ip]
    else:
        peers = {address: mac for address, mac in PEERS6.items() if not address.is_link_local}
        destinations = [HOST6.ip] * 5 + [IPv6Address("ff02::1")]

    @st.composite
    def trains(draw) -> Train:
        source = draw(st.sampled_from(sorted(peers)))
        destination = draw(st.sampled_from(destinations))
        kind = draw(st.sampled_from(WEIGHTED_KINDS))
        if draw(st.integers(0, 7)) == 0:
            size = draw(st.integers(TYPICAL_MESSAGE + 1, LARGEST_MESSAGE))
            pattern = draw(st.binary(min_size=1, max_size=8))
            data = (pattern * ((size - 8) // len(pattern) + 1))[:size - 8]
        else:
            size = draw(st.integers(9, TYPICAL_MESSAGE))
            data = draw(st.binary(min_size=size - 8, max_size=size - 8))
        next_header = draw(st.sampled_from([NextHeader.ICMPV6, NextHeader.UDP]))
        if next_header == NextHeader.ICMPV6:  # RFC 4443 4.1: an echo request
            header = bytes([128, 0, 0, 0]) + draw(st.integers(0, 0xFFFF)).to_bytes(2, "big") \
                + draw(st.integers(0, 0xFFFF)).to_bytes(2, "big")
        else:  # RFC 768; RFC 8200 8.1: the checksum is mandatory
            header = draw(st.integers(1, 0xFFFF)).to_bytes(2, "big") + draw(st.integers(1, 0xFFFF)).to_bytes(2, "big") \
                + size.to_bytes(2, "big") + b"\0\0"
        summed = internet_checksum(pseudo_header(source, destination, size, next_header) + header + data) or 0xFFFF
        at = 2 if next_header == NextHeader.ICMPV6 else 6
        message = header[:at] + summed.to_bytes(2, "big") + header[at + 2:] + data
        hop_limit, traffic_class = draw(st.integers(1, 255)), draw(st.sampled_from([0, 0, 0, 0x10, 0xB8]))
        identification = draw(st.integers(0, 0xFFFFFFFF))
        length = len(message)

        def fragment(start: int, stop: int, data: bytes | None = None, more: bool | None = None) -> bytes:
            piece = message[start:stop] if data is None else data
            header = FragmentHeader(next_header, start // 8, stop < length if more is None else more, identification)
            return _ipv6(source, destination, NextHeader.FRAGMENT, bytes(header) + piece, hop_limit, traffic_class)

        order, frames = _arrange(draw, kind, length, message, fragment, lambda: [fragment(0, length)])
        if medium == "ethernet":
            mac = HOST_MAC if destination == HOST6.ip else ipv6_multicast_mac(destination.packed)
            frames = [bytes(EthernetFrame(mac, peers[source], EtherType.IPV6, frame)) for frame in frames]
        whole = _ipv6(source, destination, next_header, message, hop_limit, traffic_class)
        return Train(kind, whole, tuple(frames), tuple(order))

    return trains()


# ---------------------------------------------------------------------- the overlap Linux keeps


def _tapstack_takes(held: set[tuple[int, int]], start: int, stop: int) -> str:
    """What tapstack's reassembler does with a fragment (stack/l3/reassembly.py): "duplicate"
    (an exact copy: dropped alone), "discard" (any other overlap: RFC 5722's rule), or "hold"."""
    if (start, stop) in held:
        return "duplicate"
    if any(a < stop and start < b for a, b in held):
        return "discard"
    return "hold"


def _linux_takes(runs: list[list[int]], start: int, stop: int) -> str:
    """What Linux 6.18 does with a fragment, as observed on the kernel (tests/root/
    test_fragments_device.py): it keeps what it holds as runs (fragments that came in order,
    each starting where the one before ended). A fragment past the end of the last one held
    overlaps if it starts before that end, else it extends the last run or starts a new one;
    any other fragment is a "duplicate" (dropped alone) when it lies inside one run, an overlap
    ("discard") when it crosses one, and starts a run of its own in a gap."""
    if not runs:
        return "new"
    tail = max(stop_ for _, stop_ in runs)
    if stop > tail:
        return "discard" if start < tail else "extend" if start == tail else "new"
    for first, last in runs:
        if first < stop and start < last:
            return "duplicate" if first <= start and stop <= last else "discard"
    return "new"


def where_linux_differs(train: Train) -> str | None:
    """Where the train makes Linux 6.18 and tapstack reassemble differently, the first time:
    "inside-a-run" (a fragment lies inside a run Linux holds without being an exact duplicate:
    Linux drops it alone and keeps the datagram, tapstack discards it all), "after-an-overlap"
    (IPv6: tapstack discards the later fragments of a packet it discarded for an overlap, RFC
    5722 3; Linux starts the packet anew with them), or None. Both models run side by side up
    to that point (an empty fragment discards what is held, a datagram covered from 0 to its
    end completes and starts anew, after an overlap an IPv4 datagram starts anew)."""
    length = train.length
    ipv6 = train.datagram[0] >> 4 == 6
    held: set[tuple[int, int]] = set()
    runs: list[list[int]] = []
    for at, (start, stop) in enumerate(train.pieces):
        if start == stop:  # an empty fragment: both discard what they hold
            held.clear()
            runs.clear()
            continue
        ours, linux = _tapstack_takes(held, start, stop), _linux_takes(runs, start, stop)
        if ours == "discard" and linux == "duplicate":
            return "inside-a-run"
        if ours == "discard":
            if ipv6:
                return "after-an-overlap" if at + 1 < len(train.pieces) else None
            held.clear()
            runs.clear()
        elif ours == "hold":
            held.add((start, stop))
            if linux == "extend":
                run = max(runs, key=lambda run: run[1])
                run[1] = stop
            else:
                runs.append([start, stop])
        if sum(b - a for a, b in held) == length and any(a == 0 for a, _ in held) \
                and any(b == length for _, b in held):
            held.clear()
            runs.clear()
    return None


def linux_keeps_what_tapstack_discards(train: Train) -> bool:
    """Whether, somewhere in the train, a fragment lies inside a run Linux holds without being
    an exact duplicate: Linux drops it alone and keeps the datagram, tapstack discards it all
    (``where_linux_differs``)."""
    return where_linux_differs(train) == "inside-a-run"
