"""Named counters: every frame in and out, every drop under the reason it was dropped for.

Read first: Linux ``skb_drop_reason`` and the SNMP MIB counters -- the idea that a dropped frame is
never silent: it has a name, a counter, and a debug log line.
"""

from __future__ import annotations

import logging
from collections import Counter

from stack.errors import ParseError


class Stats:
    """Counters by name. ``stats["rx_frames"]`` reads one (0 when never counted).

    Drop reasons are counted under ``drop.<reason>`` and also in ``drops`` for easy reading.
    """

    __slots__ = ("counters", "last_drop", "_detail", "_detail_args")

    def __init__(self) -> None:
        self.counters: Counter[str] = Counter()
        #: The reason of the most recent drop (for traces that show the verdict of one frame).
        self.last_drop: str | None = None
        # What the most recent drop was about, as given: words are made of it only when read
        # (``last_drop_detail``), so a drop nobody traces costs no formatting.
        self._detail: object = None
        self._detail_args: tuple = ()

    def count(self, name: str, amount: int = 1) -> None:
        self.counters[name] += amount

    def drop(self, reason: str, logger: logging.Logger | None = None, detail: object = "",
             *args: object) -> None:
        """Count a dropped frame under ``reason`` and log it at debug level.

        ``detail`` says what the drop was about: a value, or, with ``args``, a %-format string or
        a function that makes the words from ``args`` (``drop(r, log, "EtherType %#06x", 0x88b5)``).
        Like logging's arguments, the words are made only when someone reads them.
        """
        counters = self.counters
        counters["drop." + reason] += 1
        counters["dropped"] += 1
        self.last_drop = reason
        self._detail = detail
        self._detail_args = args
        if not args and isinstance(detail, ParseError):
            # Its traceback would pin the frames that held the receive buffer: keep the error only.
            detail.__traceback__ = None
        if logger is not None and logger.isEnabledFor(logging.DEBUG):
            logger.debug("drop %s: %s", reason, self.last_drop_detail)

    @property
    def last_drop_detail(self) -> object:
        """What the most recent drop was about (a value, or words), for traces; made on reading."""
        detail, args = self._detail, self._detail_args
        if args:
            return detail(*args) if callable(detail) else detail % args  # type: ignore[operator]
        if isinstance(detail, ParseError):
            return f"{detail.layer} {detail.detail}"
        return detail

    def __getitem__(self, name: str) -> int:
        return self.counters[name]

    @property
    def drops(self) -> dict[str, int]:
        """Drop counts by reason, without the ``drop.`` prefix."""
        return {
            name[5:]: value for name, value in self.counters.items() if name.startswith("drop.")
        }

    def as_dict(self) -> dict[str, int]:
        return dict(self.counters)

    def merge(self, other: Stats, prefix: str = "") -> None:
        """Add another set of counters, their names prefixed (``device.`` for a device's)."""
        if not prefix:
            self.counters.update(other.counters)
            return
        for name, value in other.counters.items():
            self.counters[prefix + name] += value

    def summary(self, title: str = "tapstack counters") -> str:
        """A one-screen table: traffic counters first, then drops by reason."""
        traffic = sorted(
            (name, value)
            for name, value in self.counters.items()
            if not name.startswith("drop.") and name != "dropped"
        )
        lines = [title]
        width = max((len(name) for name, _ in traffic), default=0)
        width = max([width] + [len(name) + 2 for name in self.drops])
        for name, value in traffic:
            lines.append(f"  {name:<{width}} {value:>10}")
        lines.append(f"  {'dropped':<{width}} {self.counters['dropped']:>10}")
        for reason, value in sorted(self.drops.items()):
            lines.append(f"    {reason:<{width - 2}} {value:>10}")
        return "\n".join(lines)

    def __repr__(self) -> str:
        return f"Stats({dict(self.counters)!r})"


def combined(node: Stats, **parts: Stats) -> Stats:
    """A node's counters plus other parts' under their names: ``combined(h, device=d.stats)``."""
    total = Stats()
    total.merge(node)
    for name, stats in parts.items():
        total.merge(stats, prefix=f"{name}.")
    return total
