"""``tapstack lab``: the teaching labs in ``stack/labs/``, their checkers, and the rig they run on.

A lab is a directory ``stack/labs/NN-name/`` with a worksheet (``README.md``), a checker
(``check.py``: items registered on a ``Checker``), and usually an ``answers.toml`` the student
fills in. Every item runs in one of two modes, on the same ``Rig`` interface:

- ``wire`` (no root): tapstack (192.0.2.2) and a second tapstack host (192.0.2.1) as the peer,
  over the in-memory wire (``stack.tap.pair``), as ``tapstack demo --in-memory`` does;
- ``kernel`` (root): tapstack on a TAP or TUN device whose other side is the Linux kernel
  (192.0.2.1), in a private network namespace this process enters first, as ``tapstack demo``
  does; the peer's pings are the kernel's own ``ping``.

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
from ipaddress import IPv4Address
from pathlib import Path
from types import ModuleType

import dpkt

from stack.documentation_addresses import HOST, HOST_MAC, PEER, PEER_MAC
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


class LabError(Exception):
    """A lab that cannot be found or loaded (the CLI prints it as one line, exit 2)."""


class NotAnswered(Exception):
    """The student has not answered this yet: not a failure, not a pass."""


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
    host_ip: IPv4Address = HOST.ip
    peer_ip: IPv4Address = PEER.ip
    host_mac: str = HOST_MAC
    closers: list[Callable[[], None]] = field(default_factory=list)

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

    def capture(self) -> list[bytes]:
        """Every frame tapstack received and sent, in order, read back from the pcap file."""
        with open(self.pcap_path, "rb") as file:
            return [bytes(frame) for _, frame in dpkt.pcap.Reader(file)]

    def datagrams(self) -> list[dpkt.ip.IP]:
        """The IPv4 datagrams of the capture, decoded by dpkt (an independent decoder)."""
        out = []
        for frame in self.capture():
            if self.medium == "ethernet":
                if len(frame) < 14 or frame[12:14] != b"\x08\x00":
                    continue
                frame = frame[14:]
            if frame and frame[0] >> 4 == 4:
                out.append(dpkt.ip.IP(frame))
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
             **host_options) -> Iterator[Rig]:
    """A rig in ``mode`` (``wire`` or ``kernel``); ``host_options`` go to TapHost / TunHost.
    With ``keep``, its capture (``capture.pcap``) and trace (``trace.txt``) stay in that directory."""
    if keep is not None:
        keep.mkdir(parents=True, exist_ok=True)
    directory = keep if keep is not None else Path(tempfile.mkdtemp(prefix="tapstack-lab-"))
    rig = None
    try:
        opener = _open_wire_rig if mode == "wire" else _open_kernel_rig
        rig = opener(directory, medium, packet_info, host_options)
        rig.loop.run(timeout=SETTLE_S)  # start-up announcements, before anything is asked
        yield rig
    finally:
        if rig is not None:
            rig.close()
            if keep is not None:
                (keep / "trace.txt").write_text(rig.trace)
        if keep is None:
            shutil.rmtree(directory, ignore_errors=True)


def _hosts(medium: str, packet_info: bool, host_options: dict):
    if medium == "ethernet":
        return TapHost([HOST], mac=HOST_MAC, **host_options), TapHost([PEER], mac=PEER_MAC)
    return (TunHost([HOST.ip], peer=PEER.ip, packet_info=packet_info, **host_options),
            TunHost([PEER.ip], peer=HOST.ip, packet_info=packet_info))


def _attach_host(directory: Path, device, host, packet_info: bool, closers: list) -> tuple[Loop, Path, StringIO]:
    from stack.tap.pcap import PcapDevice

    pcap_path = directory / "capture.pcap"
    pcap_file = open(pcap_path, "wb")
    closers.append(pcap_file.close)
    trace = StringIO()
    loop = Loop()
    closers.append(loop.close)
    loop.attach(PcapDevice(device, pcap_file, packet_info=packet_info), host,
                tracer=Tracer(trace, host.medium, packet_info=packet_info))
    return loop, pcap_path, trace


def _open_wire_rig(directory: Path, medium: str, packet_info: bool, host_options: dict) -> Rig:
    from stack.tap.pair import device_pair

    host, peer = _hosts(medium, packet_info, host_options)
    host_device, peer_device = device_pair(medium=medium)
    closers: list = [host_device.close, peer_device.close]
    # Both ends of the in-memory TUN link carry the packet-information header; the capture
    # leaves it out as it does for a real TUN device (_attach_host tells the pcap wrapper).
    loop, pcap_path, trace = _attach_host(directory, host_device, host, packet_info, closers)
    peer_attachment = loop.attach(peer_device, peer)

    def send_frame(frame: bytes) -> None:
        if packet_info:  # what the kernel would put in front: flags 0, the protocol by version
            protocol = b"\x08\x00" if frame[:1] and frame[0] >> 4 == 4 else b"\x86\xdd"
            frame = b"\x00\x00" + protocol + frame
        peer_device.send([frame], loop.clock())

    def ping(count: int, size: int) -> PingOutcome:
        lines: list[str] = []
        session = PingSession(peer, HOST.ip, count=count, interval=PING_INTERVAL_S["wire"],
                              timeout=1.0, size=size, identifier=0x4C42, report=lines.append)
        peer_attachment.agents.append(session)
        try:
            loop.run(until=session.done, timeout=count * PING_INTERVAL_S["wire"] + 5)
        finally:
            peer_attachment.agents.remove(session)
        return PingOutcome(session.transmitted, session.received, "\n".join(lines + [session.summary()]))

    rig = Rig("wire", medium, host, loop, pcap_path, trace, PEER_MAC if medium == "ethernet" else None,
              send_frame, ping)
    rig.closers = closers
    return rig


def _open_kernel_rig(directory: Path, medium: str, packet_info: bool, host_options: dict) -> Rig:
    """Needs ``enter_private_namespace()`` done (``tapstack lab check --kernel`` does it)."""
    import socket

    from stack.runtime.kernel import configure_address, configure_point_to_point
    from stack.tap.linux import TapDevice, TunDevice

    host, _ = _hosts(medium, packet_info, host_options)
    closers: list = []
    if medium == "ethernet":
        device = TapDevice(TAP_NAME)
        closers.append(device.close)
        configure_address(TAP_NAME, PEER)
    else:
        device = TunDevice(TUN_NAME, packet_info=packet_info)
        closers.append(device.close)
        configure_point_to_point(TUN_NAME, PEER.ip, HOST.ip)
    host.mtu = device.mtu
    loop, pcap_path, trace = _attach_host(directory, device, host, packet_info, closers)
    # The kernel's side sends our frames through a packet socket on its end of the device.
    raw = socket.socket(socket.AF_PACKET, socket.SOCK_RAW)
    raw.bind((device.name, 0))
    closers.insert(0, raw.close)
    kernel_mac = raw.getsockname()[4].hex(":") if medium == "ethernet" else None

    def ping(count: int, size: int) -> PingOutcome:
        interval = PING_INTERVAL_S["kernel"]
        argv = ["ping", "-n", "-c", str(count), "-s", str(size), "-i", str(interval), "-W", "1",
                "-w", str(int(count * interval + 5)), str(HOST.ip)]
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
        # On a TUN device the packet's protocol (the packet information) is the socket address's.
        protocol = 0x0800 if medium == "ethernet" or frame[0] >> 4 == 4 else 0x86DD
        raw.sendto(frame, (device.name, protocol))

    return Rig("kernel", medium, host, loop, pcap_path, trace, kernel_mac, send_frame, ping,
               closers=closers)


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


def on_link(rig: Rig, datagram: bytes, destination_mac: str | None = None, ethertype: int = 0x0800) -> bytes:
    """``datagram`` as the peer would send it on the rig's link: in an Ethernet frame from the
    peer's MAC (to tapstack's, unless ``destination_mac``) on a TAP, bare on a TUN."""
    if rig.medium != "ethernet":
        return datagram
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

    def rig(self, medium: str = "ethernet", packet_info: bool = False, **host_options):
        keep = None
        if self.keep is not None:
            self._rigs += 1
            keep = self.keep / f"item{self.item_number:02d}-rig{self._rigs}"
        return open_rig(self.mode, medium, packet_info, keep, **host_options)


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
