"""``tapstack demo``: a virtual host being pinged, end to end, with no set-up.

As root: a private network namespace (``unshare(CLONE_NEWNET)``: it vanishes with this process),
a TAP device in it, the kernel on one side (192.0.2.1/24) and tapstack on the other (192.0.2.2);
then the kernel's own ``ping`` and ``arping`` against it. With ``tun``, a TUN device instead:
a point-to-point link, bare IP packets, no ARP (so no arping). Without root (or without
iputils ``ping``): two tapstack hosts on an in-memory wire, the second pinging the first.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
from ipaddress import IPv4Interface

from stack.documentation_addresses import HOST, HOST_MAC, PEER, PEER_MAC, TAP_DEVICE, TUN_DEVICE
from stack.runtime.loop import Loop
from stack.node import TapHost, TunHost
from stack.runtime.ping import PingSession
from stack.stats import Stats, combined
from stack.runtime.trace import Tracer

INTERVAL_S = 0.2
COMMAND_TIMEOUT_S = 60  # each kernel tool has its own count and deadline; this is the backstop


def say(text: str = "") -> None:
    print(text, flush=True)


def kernel_demo_unavailable() -> str | None:
    """Why the kernel demo cannot run here, or None when it can."""
    if os.geteuid() != 0:
        return "not running as root"
    if not os.path.exists("/dev/net/tun"):
        return "/dev/net/tun does not exist"
    if shutil.which("ping") is None:
        return "the kernel's ping (iputils-ping) is not installed"
    return None


def run_demo(count: int = 5, in_memory: bool = False, trace: bool = True, tun: bool = False) -> int:
    from stack.tap.base import DeviceError

    reason = "asked for with --in-memory" if in_memory else kernel_demo_unavailable()
    if reason is None:
        try:
            return kernel_tun_demo(count, trace) if tun else kernel_demo(count, trace)
        except DeviceError as error:  # e.g. no permission to make a namespace in a container
            reason = f"the kernel demo could not run: {error}"
    say(f"tapstack demo: using the in-memory wire ({reason}).")
    return in_memory_demo(count, trace, tun)


def show_counters(stats: Stats) -> None:
    say()
    say(stats.summary("What the stack counted:"))


def kernel_demo(count: int, trace: bool) -> int:
    from stack.runtime.kernel import configure_address, enter_private_namespace
    from stack.tap.linux import TapDevice

    enter_private_namespace()  # from here on this process sees only its own, empty network
    device = TapDevice(TAP_DEVICE)
    configure_address(TAP_DEVICE, PEER)
    host = TapHost([HOST], mac=HOST_MAC)
    say(f"tapstack demo: in a private network namespace, the kernel is {PEER} on {TAP_DEVICE};")
    say(f"tapstack answers as {HOST.ip} ({host.mac}) on the other end of {TAP_DEVICE}.")
    commands = [_ping_command(count), _arping_command(count)]
    return _against_the_kernel(device, host, commands, trace, "every ping and arping was answered")


def kernel_tun_demo(count: int, trace: bool) -> int:
    from stack.runtime.kernel import configure_point_to_point, enter_private_namespace
    from stack.tap.linux import TunDevice

    enter_private_namespace()
    device = TunDevice(TUN_DEVICE)
    configure_point_to_point(TUN_DEVICE, PEER.ip, HOST.ip)
    host = TunHost([HOST.ip], peer=PEER.ip)
    say(f"tapstack demo: in a private network namespace, the kernel is {PEER.ip} on {TUN_DEVICE}, "
        f"a point-to-point link;")
    say(f"tapstack answers as {HOST.ip} at its other end: bare IPv4 packets, no Ethernet, no ARP.")
    return _against_the_kernel(device, host, [_ping_command(count)], trace, "every ping was answered")


def _ping_command(count: int) -> list[str]:
    return ["ping", "-c", str(count), "-i", str(INTERVAL_S), "-W", "1", str(HOST.ip)]


def _against_the_kernel(device, host, commands: list[list[str] | None], trace: bool,
                        success: str) -> int:
    """Serve ``host`` on ``device`` while the kernel's own tools run, one after the other."""
    host.mtu = device.mtu
    loop = Loop()
    loop.attach(device, host, tracer=Tracer(sys.stdout, host.medium) if trace else None)
    if trace:
        say("Lines starting In/Out are frames tapstack received and sent, with its verdict; "
            "each tool's own output follows them.")
    status = 0
    try:
        loop.run(timeout=0.05)  # send the start-up announcement, if any
        for argv in commands:
            if argv is None:
                say("\n(arping is not installed: apt-get install arping)")
                continue
            say(f"\n$ {' '.join(argv)}")
            # The tool writes to a file, not to our stdout, and is shown after the trace lines
            # of its step: on a shared terminal its lines and ours would cut into each other.
            with tempfile.TemporaryFile() as output:
                process = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=output,
                                           stderr=subprocess.STDOUT)
                loop.run(until=lambda: process.poll() is not None, timeout=COMMAND_TIMEOUT_S)
                if process.poll() is None:
                    process.kill()
                if process.wait() != 0:
                    status = 1
                output.seek(0)
                show_output(argv[0], output.read().decode(errors="replace"))
    finally:
        loop.close()
        device.close()
    show_counters(combined(host.stats, device=device.stats, loop=loop.stats))
    say(f"\ntapstack demo: {success if status == 0 else 'FAILED'}; "
        "the namespace goes away with this process.")
    return status


def show_output(tool: str, text: str) -> None:
    """What ``tool`` printed, as a block of indented lines under its name."""
    say(f"{tool} printed:")
    for line in text.splitlines():
        if line.strip():
            say(f"  {line.rstrip()}")


def _arping_command(count: int) -> list[str] | None:
    if shutil.which("arping") is None:
        return None
    usage = subprocess.run(["arping", "--help"], capture_output=True, text=True)
    usage = usage.stdout + usage.stderr
    interface_flag = "-i" if "Habets" in usage else "-I"  # Habets' arping vs iputils-arping
    return ["arping", "-c", str(count), "-w", "5", interface_flag, TAP_DEVICE, str(HOST.ip)]


def in_memory_demo(count: int, trace: bool, tun: bool = False) -> int:
    from stack.tap.pair import device_pair

    if tun:
        host_device, peer_device = device_pair(medium="ip")
        host, peer = TunHost([HOST.ip], peer=PEER.ip), TunHost([PEER.ip], peer=HOST.ip)
        wire = "an in-memory point-to-point link (bare IP packets)"
    else:
        host_device, peer_device = device_pair()
        host, peer = TapHost([HOST], mac=HOST_MAC), TapHost([PEER], mac=PEER_MAC)
        wire = "an in-memory Ethernet wire"
    session = PingSession(peer, HOST.ip, count=count, interval=INTERVAL_S, timeout=1.0,
                          report=lambda line: say(f"peer: {line}"))
    loop = Loop()
    loop.attach(host_device, host, tracer=Tracer(sys.stdout, host.medium) if trace else None)
    loop.attach(peer_device, peer, agents=[session])
    say(f"tapstack demo: tapstack host {HOST.ip} and a second tapstack host {PEER.ip} share")
    say(f"{wire}; the second pings the first.")
    say("Lines starting In/Out are frames the first host received and sent, with its verdict.\n")
    try:
        loop.run(until=session.done, timeout=count * INTERVAL_S + 10)
    finally:
        loop.close()
        host_device.close()
        peer_device.close()
    say(session.summary())
    show_counters(host.stats)
    ok = session.received == session.count
    say(f"\ntapstack demo: {'every ping was answered' if ok else 'FAILED'}.")
    return 0 if ok else 1
