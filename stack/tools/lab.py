"""``tapstack lab``: the teaching labs in ``stack/labs/``, their checkers, and the rig they run on.

A lab is a directory ``stack/labs/NN-name/`` with a worksheet (``README.md``), a checker
(``check.py``: items registered on a ``Checker``), and usually an ``answers.toml`` the student
fills in. Every item runs in one of two modes, on the same ``Rig`` interface:

- ``wire`` (no root): tapstack (192.0.2.2) and a second tapstack host (192.0.2.1) as the peer,
  over the in-memory wire (``stack.tap.pair``), as ``tapstack demo --in-memory`` does;
- ``kernel`` (root): tapstack on a TAP or TUN device whose other side is the Linux kernel
  (192.0.2.1), in a private network namespace this process enters first, as ``tapstack demo``
  does; the peer's pings are the kernel's own ``ping``.

With ``ipv6=Ipv6Link()`` (``ctx.rig(ipv6=Ipv6Link())``) the same link carries IPv6 only:
tapstack 2001:db8::2/64 (``HOST6``) and the peer 2001:db8::1/64 (``PEER6``), with Neighbor
Discovery and MLD on a TAP; in kernel mode the kernel's side of the device gets the peer's
address (``nodad`` unless ``peer_dad``) and the peer's MAC, and its pings are ``ping -6``.

Either way tapstack's side is captured to a pcap file (read back with dpkt) and traced.
An item passes, fails (an ``AssertionError`` with a message for the student), or is "not
answered yet" (``NotAnswered``: an answer still holds its placeholder ``"?"``).
"""

from __future__ import annotations

import importlib.util
import os
import re
import shutil
import subprocess
import tempfile
import tomllib
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from io import StringIO
from ipaddress import IPv4Address, IPv6Address, IPv6Interface
from pathlib import Path
from types import ModuleType

import dpkt

from stack.documentation_addresses import HOST, HOST6, HOST_MAC, PEER, PEER6, PEER_MAC
from stack.documentation_addresses import TAP_DEVICE as TAP_NAME
from stack.documentation_addresses import TUN_DEVICE as TUN_NAME
from stack.runtime.loop import Loop
from stack.node import TapHost, TunHost
from stack.runtime.ping import PingSession
from stack.runtime.trace import Tracer
from stack.testing import frames

#: Where the labs are: ``TAPSTACK_LABS`` (a directory of your own, e.g. a copy to work in), else
#: the labs shipped inside the package (``stack/labs``, package data, so every install has them).
LABS_DIRECTORY = Path(os.environ.get("TAPSTACK_LABS") or Path(__file__).resolve().parent.parent / "labs")
MODES = ("wire", "kernel")
#: What an answer holds until the student writes one.
PLACEHOLDER = "?"

PING_INTERVAL_S = {"wire": 0.05, "kernel": 0.2}
#: No wait in a rig is longer than this (each tool also has its own count and deadline).
COMMAND_TIMEOUT_S = 30.0
#: After a frame is sent, how long answers have to arrive.
SETTLE_S = 0.1
#: How long the kernel's side of an IPv6 rig has to listen to its address's solicited-node group.
KERNEL_ADDRESS_READY_S = 2.0


class LabError(Exception):
    """A lab that cannot be found or loaded (the CLI prints it as one line, exit 2)."""


class NotAnswered(Exception):
    """The student has not answered this yet: not a failure, not a pass."""


@dataclass(frozen=True)
class Ipv6Link:
    """An IPv6 rig's link (``ctx.rig(ipv6=Ipv6Link(...))``): tapstack's address and MAC, the
    peer's address, and whether the peer probes for its address before using it.

    tapstack gets ``host`` (and, on a TAP, its link-local address from ``host_mac``, RFC 4862
    5.3); its DAD is off unless the item passes ``dad_transmits``. The peer (a second tapstack
    host, or the kernel) has ``peer`` and the MAC ``PEER_MAC``; with ``peer_dad`` it runs
    Duplicate Address Detection first (RFC 4862 5.4; the kernel's address without ``nodad``).
    On a TUN link both are /128 addresses at the two ends (no Neighbor Discovery, no MAC)."""

    host: IPv6Interface = HOST6
    peer: IPv6Interface = PEER6
    host_mac: str = HOST_MAC
    peer_dad: bool = False


# ---------------------------------------------------------------------- answers


class Answers:
    """A lab's ``answers.toml``: ``answers.number("key")``, ``answers.text("key")``."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._values: dict | None = None
        self._error: str | None = None
        try:
            self._values = tomllib.loads(path.read_text())
        except FileNotFoundError:
            self._error = f"{path} does not exist"
        except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError) as error:
            self._error = f"{path.name} cannot be read as TOML ({error})"

    def value(self, key: str) -> object:
        if self._error is not None:
            raise AssertionError(self._error)
        value = self._values.get(key, PLACEHOLDER)
        if value == PLACEHOLDER:
            raise NotAnswered(f"{key} in {self.path.name} is not answered yet")
        return value

    def number(self, key: str) -> int:
        """An integer answer: 42, 0x2a in TOML, or a string of either ("0x2a")."""
        value = self.value(key)
        if isinstance(value, str):
            try:
                value = int(value.strip(), 0)
            except ValueError:
                raise AssertionError(f"{key} = {value!r} is not a number (write 42 or 0x2a)") from None
        if isinstance(value, bool) or not isinstance(value, int):
            raise AssertionError(f"{key} = {value!r} is not a whole number")
        return value

    def numbers(self, key: str) -> list[int]:
        value = self.value(key)
        if not isinstance(value, list) or not all(isinstance(v, int) and not isinstance(v, bool) for v in value):
            raise AssertionError(f"{key} = {value!r} is not a list of whole numbers, e.g. [0, 185]")
        return value

    def text(self, key: str) -> str:
        value = self.value(key)
        if not isinstance(value, str):
            raise AssertionError(f"{key} = {value!r} is not text (put it in quotes)")
        return value.strip()


# ---------------------------------------------------------------------- the rig


@dataclass
class PingOutcome:
    transmitted: int
    received: int
    output: str = ""


@dataclass
class Rig:
    """tapstack (``host``) and its peer on one link; what crossed it is in ``capture()``."""

    mode: str
    medium: str  # "ethernet" (TAP) or "ip" (TUN)
    host: TapHost | TunHost
    loop: Loop
    pcap_path: Path
    trace_stream: StringIO
    peer_mac: str | None
    _send_frame: Callable[[bytes], None]
    _ping: Callable[[int, int], PingOutcome]
    host_ip: IPv4Address | IPv6Address = HOST.ip
    peer_ip: IPv4Address | IPv6Address = PEER.ip
    host_mac: str = HOST_MAC
    closers: list[Callable[[], None]] = field(default_factory=list)
    #: 4, or 6 for a rig opened with ``ipv6=``: which packets ``datagrams()`` returns.
    family: int = 4
    #: tapstack's side of the link (the capturing device): ``send_to_peer`` writes to it.
    host_device: object = None
    #: What the peer says of one of its IPv6 addresses (``peer_address_state``).
    _peer_address_state: Callable[[IPv6Address], str | None] | None = None

    @property
    def stats(self):
        return self.host.stats

    @property
    def trace(self) -> str:
        return self.trace_stream.getvalue()

    def ping(self, count: int = 3, size: int = 56) -> PingOutcome:
        """The peer pings tapstack ``count`` times with ``size`` bytes of ICMP data."""
        return self._ping(count, size)

    def send(self, frame: bytes) -> dict[str, int]:
        """The peer sends one frame (Ethernet on a TAP, a bare IP packet on a TUN) to tapstack;
        returns once tapstack has read it and its answers have had time to cross the link, with
        the counters that changed meanwhile (``{"dropped": 1, "drop.ipv4_bad_checksum": 1}``)."""
        before = self.host.stats.as_dict()
        self._send_frame(frame)
        self.loop.run(until=lambda: self.host.stats["rx_frames"] > before.get("rx_frames", 0), timeout=5)
        self.loop.run(timeout=SETTLE_S)
        after = self.host.stats.as_dict()
        return {name: value - before.get(name, 0) for name, value in after.items()
                if value != before.get(name, 0)}

    def send_to_peer(self, frame: bytes) -> None:
        """tapstack's side of the link sends one frame (Ethernet on a TAP, a bare IP packet on a
        TUN) to the peer, as if tapstack had sent it (it is in the capture); returns once the
        peer's answers have had time to cross the link."""
        self.host_device.send([frame], self.loop.clock())
        self.loop.run(timeout=SETTLE_S)

    def peer_address_state(self, address: IPv6Address) -> str | None:
        """The state of one of the peer's IPv6 addresses (RFC 4862 5.4): "usable", "tentative"
        (DAD under way) or "duplicate" (DAD failed, given up); None when the peer has no such
        address. The kernel's is what ``ip -6 addr`` shows (flags tentative, dadfailed)."""
        return self._peer_address_state(address)

    def wait(self, seconds: float, until: Callable[[], bool] | None = None) -> None:
        """Let both hosts run for ``seconds`` (timers: DAD, retransmissions, reports), or until
        ``until()`` is true, whichever comes first."""
        self.loop.run(until=until, timeout=seconds)

    def capture(self) -> list[bytes]:
        """Every frame tapstack received and sent, in order, read back from the pcap file."""
        return [frame for _, frame in self.timed_capture()]

    def timed_capture(self) -> list[tuple[float, bytes]]:
        """``capture()`` with each frame's pcap timestamp (seconds)."""
        with open(self.pcap_path, "rb") as file:
            return [(timestamp, bytes(frame)) for timestamp, frame in dpkt.pcap.Reader(file)]

    def datagrams(self) -> list[dpkt.ip.IP] | list[dpkt.ip6.IP6]:
        """The rig's IP packets in the capture (IPv4, or IPv6 in a rig opened with ``ipv6=``),
        decoded by dpkt (an independent decoder)."""
        ethertype, decode = (b"\x08\x00", dpkt.ip.IP) if self.family == 4 else (b"\x86\xdd", dpkt.ip6.IP6)
        out = []
        for frame in self.capture():
            if self.medium == "ethernet":
                if len(frame) < 14 or frame[12:14] != ethertype:
                    continue
                frame = frame[14:]
            if frame and frame[0] >> 4 == self.family:
                out.append(decode(frame))
        return out

    def sent_by_host(self) -> list[dpkt.ip.IP]:
        return [d for d in self.datagrams() if d.src == self.host_ip.packed]

    def sent_by_peer(self) -> list[dpkt.ip.IP]:
        return [d for d in self.datagrams() if d.src == self.peer_ip.packed]

    def close(self) -> None:
        for close in reversed(self.closers):
            close()
        self.closers.clear()


@contextmanager
def open_rig(mode: str, medium: str = "ethernet", packet_info: bool = False, keep: Path | None = None,
             ipv6: Ipv6Link | None = None, **host_options) -> Iterator[Rig]:
    """A rig in ``mode`` (``wire`` or ``kernel``); ``host_options`` go to TapHost / TunHost.
    With ``keep``, its capture (``capture.pcap``) and trace (``trace.txt``) stay in that directory.
    With ``ipv6``, the link carries IPv6 only (``Ipv6Link``)."""
    if keep is not None:
        keep.mkdir(parents=True, exist_ok=True)
    directory = keep if keep is not None else Path(tempfile.mkdtemp(prefix="tapstack-lab-"))
    rig = None
    try:
        opener = _open_wire_rig if mode == "wire" else _open_kernel_rig
        rig = opener(directory, medium, packet_info, host_options, ipv6)
        rig.loop.run(timeout=SETTLE_S)  # start-up announcements, before anything is asked
        yield rig
    finally:
        if rig is not None:
            rig.close()
            if keep is not None:
                (keep / "trace.txt").write_text(rig.trace)
        if keep is None:
            shutil.rmtree(directory, ignore_errors=True)


def _hosts(medium: str, packet_info: bool, host_options: dict, ipv6: Ipv6Link | None = None):
    if ipv6 is not None:
        return _hosts6(medium, packet_info, host_options, ipv6)
    if medium == "ethernet":
        return TapHost([HOST], mac=HOST_MAC, **host_options), TapHost([PEER], mac=PEER_MAC)
    return (TunHost([HOST.ip], peer=PEER.ip, packet_info=packet_info, **host_options),
            TunHost([PEER.ip], peer=HOST.ip, packet_info=packet_info))


def _hosts6(medium: str, packet_info: bool, host_options: dict, ipv6: Ipv6Link):
    """tapstack and the wire's peer over IPv6 only. On a TAP, tapstack's DAD is off unless the
    item asks (``dad_transmits=1``): its address is then usable at once, as the kernel's."""
    if medium == "ethernet":
        options = {"dad_transmits": 0, **host_options}
        return (TapHost([ipv6.host], mac=ipv6.host_mac, **options),
                TapHost([ipv6.peer], mac=PEER_MAC, dad_transmits=1 if ipv6.peer_dad else 0))
    return (TunHost([f"{ipv6.host.ip}/128"], peer=ipv6.peer.ip, packet_info=packet_info, **host_options),
            TunHost([f"{ipv6.peer.ip}/128"], peer=ipv6.host.ip, packet_info=packet_info))


def _addresses(ipv6: Ipv6Link | None) -> dict:
    """The rig's ``host_ip``, ``peer_ip`` and ``host_mac`` (IPv4 unless ``ipv6``)."""
    if ipv6 is None:
        return {"host_ip": HOST.ip, "peer_ip": PEER.ip, "host_mac": HOST_MAC, "family": 4}
    return {"host_ip": ipv6.host.ip, "peer_ip": ipv6.peer.ip, "host_mac": ipv6.host_mac, "family": 6}


def _configure_kernel6(device_name: str, medium: str, ipv6: Ipv6Link) -> Callable[[], bool] | None:
    """The kernel's side of an IPv6 rig: the peer's address (``nodad`` unless ``peer_dad``) and,
    on a TAP, the peer's MAC (so its link-local address is the wire's peer's, fe80::ff:fe00:1).
    Returns what tapstack must wait for before it starts (None: nothing)."""
    from stack.runtime.kernel import configure_address

    if medium == "ethernet":
        configure_address(device_name, ipv6.peer, mac=PEER_MAC, dad=ipv6.peer_dad)
    else:
        configure_address(device_name, IPv6Interface(f"{ipv6.peer.ip}/128"), peer=ipv6.host.ip,
                          dad=ipv6.peer_dad)
    if ipv6.peer_dad or medium != "ethernet":  # (no solicited-node groups on a TUN: IFF_NOARP)
        return None
    # Even a nodad address's solicited-node group is sometimes joined only after the netlink
    # request returns (seen on Linux 6.18: about 1 in 9, 7-11 ms later); until then a Neighbor
    # Solicitation to the group goes unanswered (without this wait lab 07's DAD probe, sent at
    # start-up, was unanswered in 13 of 40 runs; with it in 0 of 80). tapstack starts once the
    # kernel listens to the group (/proc/net/igmp6, this namespace's).
    group = f"ff0200000000000000000001ff{ipv6.peer.ip.packed[13:].hex()}"
    return lambda: _kernel_listens(device_name, group)


def _kernel_listens(device_name: str, group: str) -> bool:
    """Whether the kernel has joined ``group`` (32 hex digits) on the device: /proc/net/igmp6
    (index, device, group, users, flags, timer)."""
    with open("/proc/net/igmp6") as table:
        return any(line.split()[1:3] == [device_name, group] for line in table)


def _attach_host(directory: Path, device, host, packet_info: bool, closers: list) -> tuple[Loop, Path, StringIO]:
    loop, pcap_path, trace, _ = _attach_captured(directory, device, host, packet_info, closers)
    return loop, pcap_path, trace


def _attach_captured(directory: Path, device, host, packet_info: bool, closers: list):
    """``_attach_host``, and the capturing device tapstack is attached through."""
    from stack.tap.pcap import PcapDevice

    pcap_path = directory / "capture.pcap"
    pcap_file = open(pcap_path, "wb")
    closers.append(pcap_file.close)
    trace = StringIO()
    loop = Loop()
    closers.append(loop.close)
    captured = PcapDevice(device, pcap_file, packet_info=packet_info)
    loop.attach(captured, host, tracer=Tracer(trace, host.medium, packet_info=packet_info))
    return loop, pcap_path, trace, captured


def _open_wire_rig(directory: Path, medium: str, packet_info: bool, host_options: dict,
                   ipv6: Ipv6Link | None = None) -> Rig:
    from stack.tap.pair import device_pair

    host, peer = _hosts(medium, packet_info, host_options, ipv6)
    addresses = _addresses(ipv6)
    host_device, peer_device = device_pair(medium=medium)
    closers: list = [host_device.close, peer_device.close]
    # Both ends of the in-memory TUN link carry the packet-information header; the capture
    # leaves it out as it does for a real TUN device (_attach_host tells the pcap wrapper).
    loop, pcap_path, trace, captured = _attach_captured(directory, host_device, host, packet_info, closers)
    peer_attachment = loop.attach(peer_device, peer)

    def send_frame(frame: bytes) -> None:
        if packet_info:  # what the kernel would put in front: flags 0, the protocol by version
            protocol = b"\x08\x00" if frame[:1] and frame[0] >> 4 == 4 else b"\x86\xdd"
            frame = b"\x00\x00" + protocol + frame
        peer_device.send([frame], loop.clock())

    def ping(count: int, size: int) -> PingOutcome:
        lines: list[str] = []
        session = PingSession(peer, addresses["host_ip"], count=count, interval=PING_INTERVAL_S["wire"],
                              timeout=1.0, size=size, identifier=0x4C42, report=lines.append)
        peer_attachment.agents.append(session)
        try:
            loop.run(until=session.done, timeout=count * PING_INTERVAL_S["wire"] + 5)
        finally:
            peer_attachment.agents.remove(session)
        return PingOutcome(session.transmitted, session.received, "\n".join(lines + [session.summary()]))

    def peer_address_state(address: IPv6Address) -> str | None:
        resolver = peer.ip6.resolver if peer.ip6 is not None else None
        if resolver is None:  # a TUN link: no DAD, every address is usable
            return "usable" if peer.ip6 is not None and address in peer.ip6.addresses else None
        entry = resolver.addresses.get(address)
        return None if entry is None else entry.phase.value  # the same three words

    rig = Rig("wire", medium, host, loop, pcap_path, trace, PEER_MAC if medium == "ethernet" else None,
              send_frame, ping, host_device=captured, _peer_address_state=peer_address_state, **addresses)
    rig.closers = closers
    return rig


def _open_kernel_rig(directory: Path, medium: str, packet_info: bool, host_options: dict,
                     ipv6: Ipv6Link | None = None) -> Rig:
    """Needs ``enter_private_namespace()`` done (``tapstack lab check --kernel`` does it)."""
    import socket

    from stack.runtime.kernel import configure_address, configure_point_to_point
    from stack.tap.linux import TapDevice, TunDevice

    host, _ = _hosts(medium, packet_info, host_options, ipv6)
    addresses = _addresses(ipv6)
    closers: list = []
    if medium == "ethernet":
        device = TapDevice(TAP_NAME)
        closers.append(device.close)
        if ipv6 is None:
            configure_address(TAP_NAME, PEER)
    else:
        device = TunDevice(TUN_NAME, packet_info=packet_info)
        closers.append(device.close)
        if ipv6 is None:
            configure_point_to_point(TUN_NAME, PEER.ip, HOST.ip)
    ready = _configure_kernel6(device.name, medium, ipv6) if ipv6 is not None else None
    host.mtu = device.mtu
    if host.ip6 is not None:
        host.ip6.mtu = device.mtu
    loop, pcap_path, trace, captured = _attach_captured(directory, device, host, packet_info, closers)
    if ready is not None:
        loop.wait(ready, KERNEL_ADDRESS_READY_S)  # before tapstack's first frame
    # The kernel's side sends our frames through a packet socket on its end of the device.
    raw = socket.socket(socket.AF_PACKET, socket.SOCK_RAW)
    raw.bind((device.name, 0))
    closers.insert(0, raw.close)
    kernel_mac = raw.getsockname()[4].hex(":") if medium == "ethernet" else None

    def ping(count: int, size: int) -> PingOutcome:
        interval = PING_INTERVAL_S["kernel"]
        argv = ["ping", "-n", f"-{addresses['family']}", "-c", str(count), "-s", str(size), "-i", str(interval),
                "-W", "1", "-w", str(int(count * interval + 5)), str(addresses["host_ip"])]
        output = directory / "ping.txt"
        with open(output, "w") as stdout:
            process = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=stdout,
                                       stderr=subprocess.STDOUT)
            try:
                loop.run(until=lambda: process.poll() is not None, timeout=COMMAND_TIMEOUT_S)
            finally:
                if process.poll() is None:
                    process.kill()
                process.wait()
        text = output.read_text()
        found = re.search(r"(\d+) packets transmitted, (\d+) received", text)
        if found is None:
            return PingOutcome(0, 0, text)
        return PingOutcome(int(found.group(1)), int(found.group(2)), text)

    def send_frame(frame: bytes) -> None:
        # On a TUN device the packet's protocol (the packet information) is the socket address's;
        # on a TAP, the frame's EtherType.
        if medium == "ethernet":
            protocol = int.from_bytes(frame[12:14], "big")
        else:
            protocol = 0x0800 if frame[0] >> 4 == 4 else 0x86DD
        raw.sendto(frame, (device.name, protocol))

    return Rig("kernel", medium, host, loop, pcap_path, trace, kernel_mac, send_frame, ping,
               closers=closers, host_device=captured,
               _peer_address_state=lambda address: _kernel_address_state(device.name, address), **addresses)


#: include/uapi/linux/if_addr.h: an address DAD has not finished with, or found a duplicate of.
IFA_F_DADFAILED = 0x08
IFA_F_TENTATIVE = 0x40


def _kernel_address_state(device_name: str, address: IPv6Address) -> str | None:
    """``ip -6 addr show dev DEVICE``: the kernel's state of ``address`` on the device."""
    import socket

    from pyroute2 import IPRoute

    with IPRoute() as ipr:
        index = ipr.link_lookup(ifname=device_name)[0]
        for message in ipr.get_addr(family=socket.AF_INET6, index=index):
            if IPv6Address(message.get_attr("IFA_ADDRESS")) != address:
                continue
            flags = message.get_attr("IFA_FLAGS") or message["flags"]
            if flags & IFA_F_DADFAILED:
                return "duplicate"
            return "tentative" if flags & IFA_F_TENTATIVE else "usable"
    return None


# ---------------------------------------------------------------------- frames for checkers
# Built with dpkt, an implementation independent of the stack under test.


def icmp_message(type: int, code: int = 0, rest_of_header: bytes = bytes(4), data: bytes = b"") -> bytes:
    """An ICMP message with its checksum (RFC 792: over the whole message), built by dpkt (an
    implementation independent of tapstack's: ``stack.testing.frames``)."""
    return frames.icmp_message(type, code, rest_of_header, data)


def ipv4(payload: bytes, source: IPv4Address = PEER.ip, destination: IPv4Address = HOST.ip,
         protocol: int = 1, identification: int = 0x4C42, offset: int = 0, more_fragments: bool = False,
         ttl: int = 64, total_length: int | None = None) -> bytes:
    """An IPv4 datagram (20-byte header, checksum right) around ``payload``; ``offset`` in bytes;
    ``total_length`` makes the header claim another length (its checksum still right)."""
    datagram = frames.ipv4_datagram(source, destination, protocol, payload, ttl=ttl,
                                    identification=identification, more_fragments=more_fragments,
                                    fragment_offset=offset // 8)
    if total_length is None:
        return datagram
    header = datagram[:2] + total_length.to_bytes(2, "big") + datagram[4:10] + bytes(2) + datagram[12:20]
    return header[:10] + dpkt.in_cksum(header).to_bytes(2, "big") + header[12:] + datagram[20:]


def icmpv6_message(type: int, code: int = 0, body: bytes = bytes(4), source: IPv6Address = PEER6.ip,
                   destination: IPv6Address = HOST6.ip) -> bytes:
    """An ICMPv6 message (RFC 4443 2.1: type, code, checksum, then ``body``), its checksum over
    the pseudo-header from ``source`` to ``destination`` (RFC 8200 8.1), built by
    ``stack.testing.frames`` (dpkt's checksum, not tapstack's code)."""
    return frames.icmpv6_message(type, code, body, source.packed, destination.packed)


def ipv6(payload: bytes, source: IPv6Address = PEER6.ip, destination: IPv6Address = HOST6.ip,
         next_header: int = 58, hop_limit: int = 64) -> bytes:
    """An IPv6 packet (the 40-byte header of RFC 8200 3) around ``payload`` (extension headers
    included); ``next_header`` 58 is ICMPv6."""
    return frames.ipv6_packet(payload, next_header, source.packed, destination.packed, hop_limit=hop_limit)


def on_link(rig: Rig, datagram: bytes, destination_mac: str | None = None, ethertype: int | None = None) -> bytes:
    """``datagram`` as the peer would send it on the rig's link: in an Ethernet frame from the
    peer's MAC (to tapstack's, unless ``destination_mac``) on a TAP, bare on a TUN. The EtherType
    is IPv4's or IPv6's by the datagram's version, unless ``ethertype`` (ARP: 0x0806)."""
    if rig.medium != "ethernet":
        return datagram
    if ethertype is None:
        ethertype = 0x86DD if datagram[:1] and datagram[0] >> 4 == 6 else 0x0800
    destination = bytes.fromhex((destination_mac or rig.host_mac).replace(":", ""))
    return destination + bytes.fromhex(rig.peer_mac.replace(":", "")) + ethertype.to_bytes(2, "big") + datagram


def with_bit_flipped(data: bytes, index: int, bit: int = 0) -> bytes:
    return data[:index] + bytes([data[index] ^ (1 << bit)]) + data[index + 1:]


# ---------------------------------------------------------------------- checkers


@dataclass
class Context:
    """What an item gets: the mode, the lab's directory, its answers, and rigs to run."""

    mode: str
    directory: Path
    answers: Answers
    solution: bool = False
    #: Keep every rig's capture and trace under this directory (``lab check --keep DIR``).
    keep: Path | None = None
    item_number: int = 0
    _rigs: int = 0

    def rig(self, medium: str = "ethernet", packet_info: bool = False, ipv6: Ipv6Link | None = None,
            **host_options):
        keep = None
        if self.keep is not None:
            self._rigs += 1
            keep = self.keep / f"item{self.item_number:02d}-rig{self._rigs}"
        return open_rig(self.mode, medium, packet_info, keep, ipv6=ipv6, **host_options)


@dataclass(frozen=True)
class Item:
    name: str
    function: Callable[[Context], None]


class Checker:
    """A lab's list of items: ``check = Checker()``, then ``@check.item("what it checks")``."""

    def __init__(self) -> None:
        self.items: list[Item] = []

    def item(self, name: str) -> Callable[[Callable[[Context], None]], Callable[[Context], None]]:
        def register(function: Callable[[Context], None]) -> Callable[[Context], None]:
            self.items.append(Item(name, function))
            return function
        return register


@dataclass
class Lab:
    number: str
    directory: Path
    title: str
    module: ModuleType

    @property
    def items(self) -> list[Item]:
        return self.module.check.items


@dataclass(frozen=True)
class Outcome:
    item: Item
    status: str  # "pass", "fail" or "todo"
    message: str = ""


def lab_directories() -> list[Path]:
    if not LABS_DIRECTORY.is_dir():
        return []
    return sorted(p for p in LABS_DIRECTORY.iterdir() if re.fullmatch(r"\d\d-[a-z0-9-]+", p.name)
                  and (p / "check.py").is_file())


def find_lab(number: str) -> Path:
    """``6``, ``06`` or ``06-icmp-timestamp``: that lab's directory; LabError when there is none."""
    labs = lab_directories()
    if not labs:
        raise LabError(f"no labs found in {LABS_DIRECTORY} (set TAPSTACK_LABS to the labs directory)")
    wanted = number.split("-", 1)[0]
    if wanted.isdigit():
        for directory in labs:
            if int(directory.name[:2]) == int(wanted):
                return directory
    known = ", ".join(d.name[:2] for d in labs)
    raise LabError(f"no lab {number!r}: the labs are {known} (tapstack lab list)")


def title_of(directory: Path) -> str:
    readme = directory / "README.md"
    first = readme.read_text().splitlines()[0] if readme.is_file() else directory.name
    return first.lstrip("# ").strip()


def load(number_or_path: str) -> Lab:
    """A lab by number, or by a path inside its directory (a test file's ``__file__``)."""
    path = Path(number_or_path)
    directory = path.parent if path.suffix == ".py" else find_lab(number_or_path)
    number = directory.name[:2]
    spec = importlib.util.spec_from_file_location(f"tapstack_lab_{number}_check", directory / "check.py")
    module = importlib.util.module_from_spec(spec)
    try:
        spec.loader.exec_module(module)
    except Exception as error:
        raise LabError(f"{directory / 'check.py'} cannot be loaded: {type(error).__name__}: {error}") from None
    if not isinstance(getattr(module, "check", None), Checker):
        raise LabError(f"{directory / 'check.py'} has no Checker named check")
    return Lab(number, directory, title_of(directory), module)


def run_item(lab: Lab, item: Item, context: Context) -> Outcome:
    context.item_number, context._rigs = lab.items.index(item) + 1, 0
    try:
        item.function(context)
    except NotAnswered as reason:
        return Outcome(item, "todo", str(reason))
    except AssertionError as error:
        return Outcome(item, "fail", str(error) or "assertion failed")
    except Exception as error:  # a checker must report, never crash: the error is the message
        return Outcome(item, "fail", f"{type(error).__name__}: {error}")
    return Outcome(item, "pass")


def context_for(lab: Lab, mode: str = "wire", answers: Path | None = None,
                solution: bool = False, keep: Path | None = None) -> Context:
    return Context(mode, lab.directory, Answers(answers or lab.directory / "answers.toml"), solution,
                   keep)


def check(lab: Lab, mode: str = "wire", answers: Path | None = None, solution: bool = False,
          keep: Path | None = None,
          report: Callable[[Outcome], None] = lambda outcome: None) -> list[Outcome]:
    context = context_for(lab, mode, answers, solution, keep)
    outcomes = []
    for item in lab.items:
        outcome = run_item(lab, item, context)
        report(outcome)
        outcomes.append(outcome)
    return outcomes


LABELS = {"pass": "PASS", "fail": "FAIL", "todo": "TODO"}


def format_outcome(outcome: Outcome) -> str:
    line = f"  {LABELS[outcome.status]}  {outcome.item.name}"
    if outcome.message:
        line += f"\n        {outcome.message}"
    return line


def summary(outcomes: list[Outcome]) -> str:
    counts = {status: sum(o.status == status for o in outcomes) for status in LABELS}
    text = f"{counts['pass']} passed, {counts['fail']} failed, {counts['todo']} not answered yet"
    if counts["fail"]:
        return text + ": fix the FAIL items"
    if counts["todo"]:
        return text + ": the stack does its part; the TODO items are yours (see the worksheet)"
    return text + ": lab complete"


def load_function(path: Path, name: str) -> Callable:
    """Function ``name`` from the Python file ``path`` (a lab's student file); LabError if not."""
    if not path.is_file():
        raise LabError(f"{path} does not exist")
    spec = importlib.util.spec_from_file_location(f"tapstack_user_{path.stem}", path)
    module = importlib.util.module_from_spec(spec)
    try:
        spec.loader.exec_module(module)
    except Exception as error:
        raise LabError(f"{path} cannot be loaded: {type(error).__name__}: {error}") from None
    function = getattr(module, name, None)
    if not callable(function):
        raise LabError(f"{path} has no function {name}()")
    return function


# ---------------------------------------------------------------------- pytest


def pytest_items(test_file: str):
    """For a lab's ``test_labNN.py``: one pytest test per item, run the rootless way (``wire``).

    ``TAPSTACK_LAB_ANSWERS=FILE`` checks another answers file; ``TAPSTACK_LAB_SOLUTION=1`` checks
    a lab's reference solution. An item not answered yet is skipped, with the reason."""
    import pytest

    lab = load(test_file)
    answers = os.environ.get("TAPSTACK_LAB_ANSWERS")
    solution = os.environ.get("TAPSTACK_LAB_SOLUTION") == "1"

    @pytest.mark.parametrize("item", lab.items, ids=[f"{i:02d}" for i in range(1, len(lab.items) + 1)])
    def test_item(item: Item) -> None:
        outcome = run_item(lab, item, context_for(lab, "wire", Path(answers) if answers else None, solution))
        if outcome.status == "todo":
            pytest.skip(outcome.message)
        assert outcome.status == "pass", f"{item.name}: {outcome.message}"

    return test_item
