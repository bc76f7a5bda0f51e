"""tapstack: a userspace IPv4 stack in pure Python, on the other end of a TAP or TUN device.

The core is sans-I/O: ``TapHost.receive(frame, now)`` returns the frames to send. Devices and
the event loop live in ``stack.tap`` and ``stack.runtime.loop``.
"""

from stack.choices import HostChoices
from stack.errors import ParseError
from stack.l3.host import EchoReply
from stack.node import TapHost, TunHost, mac_for
from stack.stats import Stats

__all__ = ["EchoReply", "HostChoices", "ParseError", "Stats", "TapHost", "TunHost", "mac_for"]
