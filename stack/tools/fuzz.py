"""``tapstack fuzz``: generated frames at another stack behind a TAP (or TUN) device, checking
between batches that it still answers ping, and finding the smallest frame after which it stops.

We are a host on the link (a ``TapHost`` with ``--ip``, or a ``TunHost`` on a point-to-point TUN
link); the target is another host on the same link (the kernel on the device's other end, or a
stack bridged to it). Every frame goes to the target's address (or its network's broadcast; over
IPv6 the link-scope all-nodes group ff02::1 or the target's solicited-node group) from ours:
nothing is routed anywhere else.

Over IPv6 (``--ipv6``, ``fuzz_frames6``) the same, with ICMPv6 echo as the liveness check: our
address first passes duplicate address detection (RFC 4862 5.4), then the first ping resolves
the target with Neighbor Discovery (RFC 4861 7.2) on a TAP device.

1. Resolve the target with a ping (it must answer before anything is sent).
2. Send ``examples`` frames from ``fuzz_frames`` (valid and broken ones of every kind),
   ``batch`` at a time, each batch followed by a ping check (``LIVENESS_TRIES`` echo
   requests, one answer is enough).
3. When the target stops answering: wait up to ``recovery`` seconds for it to answer again. If it
   does, replay the batch one frame at a time, each followed by a check, to find the frame after
   which it stops; then shorten that frame (a binary search over its length) while it still
   stops the target, waiting for recovery after each. If it never comes back, report the batch.

Bounded: at most ``examples`` frames (plus the replays) and ``max_time`` seconds in all.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from ipaddress import IPv4Address, IPv4Interface, IPv6Address, IPv6Interface

from stack.runtime.loop import Loop
from stack.node import TapHost, TunHost
from stack.runtime.ping import PingSession
from stack.runtime.trace import summarize
from stack.documentation_addresses import PEER_MAC as PLACEHOLDER_MAC
from stack.l2.ethernet import MacAddress

BATCH = 50
#: A liveness check: this many echo requests, ``LIVENESS_INTERVAL_S`` apart; one answer is enough.
LIVENESS_TRIES = 3
LIVENESS_INTERVAL_S = 0.2
LIVENESS_TIMEOUT_S = 1.0
#: How long the target may take to answer again before we replay a batch.
RECOVERY_S = 10.0
#: Frames per wake-up of the loop between two sends, so the target's answers are read.
SETTLE_S = 0.002
#: The longest we wait for our IPv6 address to pass duplicate address detection (RFC 4862 5.4:
#: DupAddrDetectTransmits x RetransTimer, 1 s by default, after a delay of up to 1 s).
DAD_WAIT_S = 5.0
#: The shortest prefix the shortening tries: an Ethernet header over TAP, one byte over TUN.
SHORTEST = {"ethernet": 14, "ip": 1}


class TimeUp(Exception):
    pass


class TargetStopped(Exception):
    def __init__(self, batch: list[bytes]) -> None:
        super().__init__(f"the target stopped answering after a batch of {len(batch)} frames")
        self.batch = batch


@dataclass
class Result:
    sent: int = 0
    batches: int = 0
    stopped: bool = False
    recovered: bool | None = None
    culprit: bytes | None = None  # the frame after which the target stopped (as generated)
    smallest: bytes | None = None  # the shortest prefix of it that still stops the target
    batch: list[bytes] = field(default_factory=list)
    timed_out: bool = False
    medium: str = "ethernet"  # "ip": the frames are bare IP packets (a TUN device's)

    def describe(self) -> str:
        if not self.stopped:
            ended = " (time limit reached)" if self.timed_out else ""
            return (f"{self.sent} frames in {self.batches} batches{ended}: the target answered "
                    "ping after every batch")
        lines = [f"the target stopped answering ping after frame {self.sent} "
                 f"(batch {self.batches} of {len(self.batch)} frames)"]
        if self.smallest is not None:
            lines.append(f"smallest frame after which it stops ({len(self.smallest)} bytes): "
                         f"{summarize(self.smallest, self.medium)}")
            lines.append(f"  hex {self.smallest.hex()}")
            if self.culprit is not None and self.culprit != self.smallest:
                lines.append(f"as generated ({len(self.culprit)} bytes): {self.culprit.hex()}")
        elif self.recovered is False:
            lines.append("it did not answer again, so the frame could not be singled out; the "
                         "batch, smallest frame first:")
            for frame in sorted(self.batch, key=len):
                lines.append(f"  {summarize(frame, self.medium)}")
                lines.append(f"    hex {frame.hex()}")
        else:
            lines.append("it answered again, but no single frame of the batch stops it on its own")
        return "\n".join(lines)


class Fuzzer:
    """Drives the loop: sends frames through ``device`` and pings the target with ``host``."""

    def __init__(self, loop: Loop, device, host: TapHost | TunHost, target: IPv4Address | IPv6Address,
                 max_time: float, report: Callable[[str], None] = lambda line: None,
                 tries: int = LIVENESS_TRIES, interval: float = LIVENESS_INTERVAL_S,
                 timeout: float = LIVENESS_TIMEOUT_S) -> None:
        """``tries``, ``interval`` and ``timeout`` make one liveness check (see ``alive``)."""
        self.tries, self.interval, self.timeout = tries, interval, timeout
        self.loop = loop
        self.device = device
        self.host = host
        self.target = target
        self.report = report
        self.attachment = loop.attach(device, host)
        self.deadline = loop.clock() + max_time
        self._identifier = 0x6600

    # ------------------------------------------------------------------ the target

    def alive(self, tries: int | None = None) -> bool:
        """True when the target answers one of ``tries`` echo requests.

        First we announce ourselves (gratuitous ARP, on a TAP device over IPv4): a fuzzed ARP
        frame may have taught the target a wrong MAC for our address, and its replies would
        then never reach us. Over IPv6 our address must have passed duplicate address
        detection before it is a source (RFC 4862 5.4): we wait for it (``DAD_WAIT_S`` at most).
        """
        tries = self.tries if tries is None else tries
        now = self.loop.clock()
        if self.target.version == 4 and isinstance(self.host, TapHost):
            for frame in self.host.announce(now):
                self.device.send(frame, now)
        elif self.target.version == 6 and not self.our_address_usable():
            self.loop.run(until=self.our_address_usable, timeout=DAD_WAIT_S)
        self._identifier = (self._identifier + 1) & 0xFFFF
        session = PingSession(self.host, self.target, count=tries, interval=self.interval,
                              timeout=self.timeout, identifier=self._identifier)
        self.attachment.agents[:] = [session]
        try:
            self.loop.run(until=lambda: session.received > 0 or session.done(),
                          timeout=tries * self.interval + self.timeout + 1.0)
        finally:
            self.attachment.agents[:] = []
        return session.received > 0

    def our_address_usable(self) -> bool:
        ip6 = self.host.ip6
        return ip6 is not None and ip6.source_for(self.target) is not None

    def target_mac(self):
        """The target's MAC as our host learnt it (ARP or Neighbor Discovery); None over TUN."""
        if not isinstance(self.host, TapHost):
            return None
        if self.target.version == 6:
            entry = self.host.ip6.resolver.neighbors.get(self.target) if self.host.ip6 else None
            return MacAddress(entry.mac) if entry is not None and entry.mac is not None else None
        return self.host.link.cache.lookup(self.target, self.loop.clock())

    def recovered(self, within: float) -> bool:
        """Wait up to ``within`` seconds (and never past the deadline) for the target to answer."""
        end = min(self.loop.clock() + within, self.deadline)
        while self.loop.clock() < end:
            if self.alive(tries=1):
                return True
        return False

    def send(self, frames: list[bytes]) -> None:
        for frame in frames:
            self.device.send([frame], self.loop.clock())
            self.loop.run(timeout=SETTLE_S)  # read (and let our host answer) what comes back

    def stops_target(self, frame: bytes, recovery: float) -> bool | None:
        """Does sending ``frame`` stop the target? None when it does not come back afterwards
        (then nothing more can be learnt)."""
        self.send([frame])
        if self.alive():
            return False
        return True if self.recovered(recovery) else None

    # ------------------------------------------------------------------ a run

    def check_time(self) -> None:
        if self.loop.clock() >= self.deadline:
            raise TimeUp

    def run(self, frames, examples: int, batch_size: int, seed: int | None,
            recovery: float = RECOVERY_S) -> Result:
        """Fuzz with hypothesis strategy ``frames``; what happened."""
        from hypothesis import HealthCheck, Phase, given, settings
        from hypothesis import seed as with_seed

        result = Result(medium=self.host.medium)
        pending: list[bytes] = []

        def flush() -> None:
            if not pending:
                return
            self.check_time()
            self.send(pending)
            result.sent += len(pending)
            result.batches += 1
            if not self.alive():
                raise TargetStopped(list(pending))
            if result.batches % 10 == 0:
                self.report(f"{result.sent} frames sent, the target still answers")
            pending.clear()

        @settings(max_examples=examples, database=None, deadline=None, phases=[Phase.generate],
                  derandomize=seed is None, suppress_health_check=list(HealthCheck))
        @given(frames)
        def generate(frame: bytes) -> None:
            pending.append(frame)
            if len(pending) >= batch_size:
                flush()

        if seed is not None:
            generate = with_seed(seed)(generate)
        try:
            generate()
            flush()
        except TimeUp:
            result.timed_out = True
        except TargetStopped as stopped:
            result.stopped, result.batch = True, stopped.batch
            self.single_out(result, recovery)
        return result

    def single_out(self, result: Result, recovery: float) -> None:
        """The frame of the batch after which the target stops, then its shortest prefix."""
        self.report("the target stopped answering; waiting for it to answer again")
        result.recovered = self.recovered(recovery)
        if not result.recovered:
            return
        try:
            for frame in result.batch:
                self.check_time()
                verdict = self.stops_target(frame, recovery)
                if verdict is None:
                    result.culprit = result.smallest = frame
                    return
                if verdict:
                    result.culprit = result.smallest = frame
                    break
            if result.culprit is None:
                return
            self.report(f"frame found ({len(result.culprit)} bytes); shortening it")
            # The shortest prefix that still stops the target (over TAP an Ethernet header at least).
            low, high = SHORTEST[self.host.medium], len(result.culprit)
            while low < high:
                self.check_time()
                middle = (low + high) // 2
                verdict = self.stops_target(result.culprit[:middle], recovery)
                if verdict is None:
                    result.smallest = result.culprit[:middle]
                    return
                if verdict:
                    high = middle
                else:
                    low = middle + 1
            result.smallest = result.culprit[:high]
        except TimeUp:
            result.timed_out = True


def fuzz_frames(ours: IPv4Interface, our_mac, target: IPv4Address, target_mac, medium: str = "ethernet"):
    """Frames from us to the target (and its network's broadcast), nothing else: the frames
    ``tapstack diff`` compares, and the public strategies' echo requests and UDP datagrams with
    exactly one thing broken (``stack.testing.strategies.broken``). With ``medium="ip"`` (a TUN
    device) the bare IPv4 packets of those frames, and no ARP."""
    from hypothesis import strategies as st

    from stack.testing import strategies
    from stack.tools.diff import probe_frames

    if medium == "ip":  # probe_frames makes Ethernet frames: they carry its MACs, then cut off
        our_mac = target_mac = MacAddress(PLACEHOLDER_MAC)
    probes = probe_frames(IPv4Interface(f"{target}/{ours.network.prefixlen}"), target_mac,
                          {ours.ip: our_mac}, others=False)
    aim = {"source": ours.ip, "destination": target, "medium": medium}
    if medium == "ethernet":
        aim.update(source_mac=our_mac, destination_mac=target_mac)
    else:
        probes = probes.filter(lambda frame: frame[12:14] == b"\x08\x00").map(lambda frame: frame[14:])
    frames = st.one_of(
        probes,
        strategies.broken(strategies.echo_requests(**aim), medium=medium).map(lambda broken: broken.frame),
        strategies.broken(strategies.udp_datagrams(**aim), medium=medium).map(lambda broken: broken.frame),
    )
    # A TUN device refuses an empty write (EINVAL): a packet truncated to nothing is not sent.
    return frames.filter(len) if medium == "ip" else frames


def fuzz_frames6(ours: IPv6Interface, our_mac, target: IPv6Address, target_mac, medium: str = "ethernet"):
    """IPv6 frames (with ``medium="ip"``, bare packets) from us to the target, the link's
    all-nodes group ff02::1 or the target's solicited-node group (RFC 4291 2.7.1: link scope,
    they never leave the link), nothing else, drawn from the public strategies
    (``stack.testing.strategies``): echo requests (some with a wrong checksum), UDP, extension
    header chains (options of each action class, routing headers, unknown next headers),
    Neighbor Discovery messages (NS for the target, NA, RS, RA, Redirect) and MLD queries and
    reports (TAP only), single fragments of fragmented echo requests (in or out of order,
    overlapping, atomic), and each of these with exactly one thing broken (``broken_ipv6``:
    payload length, version, truncation, a checksum bit)."""
    from hypothesis import strategies as st

    from stack.l3.ipv6 import link_local_address, solicited_node_multicast
    from stack.testing import strategies

    if medium == "ip":
        our_mac = target_mac = MacAddress(PLACEHOLDER_MAC)  # (unused: no link layer)
    destinations = st.sampled_from([target, target, target, IPv6Address("ff02::1"),
                                    solicited_node_multicast(target)])
    aim = {"source": ours.ip, "destination": destinations, "source_mac": our_mac,
           "destination_mac": target_mac, "medium": medium}
    kinds = [strategies.ipv6_echo_requests(**aim, bad_checksum=st.integers(0, 7).map(lambda n: n == 0)),
             strategies.ipv6_udp_datagrams(**aim), strategies.ipv6_extension_chains(**aim)]
    if medium == "ethernet":
        kinds.append(strategies.neighbor_solicitations(source=ours.ip, target=target, source_mac=our_mac,
                                                       destination_mac=target_mac))
        # The other ND messages (RS, RA, NA, Redirect) and MLD queries and reports, all on-link.
        kinds.append(strategies.nd_messages(source=ours.ip, destination=target, source_mac=our_mac,
                                            destination_mac=target_mac))
        # MLD about link-scope groups only (a global-scope group could be routed off the link).
        groups = st.sampled_from([solicited_node_multicast(target), solicited_node_multicast(ours.ip)])
        kinds.append(strategies.mld_messages(group=groups, source=link_local_address(bytes(our_mac)),
                                             source_mac=our_mac))
    # One fragment of a fragmented echo request (RFC 8200 4.5): in order, out of order,
    # overlapping or atomic; the rest of the train may never come (the target's reassembly
    # timeout is part of what is fuzzed).
    echoes = strategies.ipv6_echo_requests(source=ours.ip, destination=target, medium="ip",
                                           min_size=1300, max_size=3000)
    link = dict(medium=medium, source_mac=our_mac, destination_mac=target_mac)
    trains = st.one_of(strategies.ipv6_fragment_trains(echoes, **link),
                       strategies.ipv6_fragment_trains(echoes, overlaps=True, **link),
                       strategies.ipv6_fragment_trains(echoes, atomic=True, **link))
    kinds.append(st.tuples(trains, st.integers(0, 1 << 16)).map(
        lambda drawn: drawn[0].fragments[drawn[1] % len(drawn[0].fragments)]))
    valid = st.one_of(*kinds)
    frames = st.one_of(valid, strategies.broken_ipv6(valid, medium).map(lambda broken: broken[1]))
    # A TUN device refuses an empty write (EINVAL): a packet truncated to nothing is not sent.
    return frames.filter(len) if medium == "ip" else frames
