"""A device that makes a link bad on purpose: drop, corrupt, delay, jitter, rate and size limits.

Read first: smoltcp's ``phy::FaultInjector`` (drop, one-bit corruption "the hardest to detect",
size and rate limits) and Linux ``tc-netem`` (delay and jitter). Wrap any device:
``FaultInjector(TapDevice("tap0"), random.Random(7), drop=0.1, delay_ms=20)``.

Faults apply to frames in (from the wire to the stack) and out (from the stack to the wire), or
to one direction only (``directions``). Per frame, in this order: ``drop`` (a chance), frames
larger than ``max_size`` bytes dropped, the rate limit (a ``TokenBucket`` of ``rate`` frames a
second, burst ``burst``; a frame finding it empty is dropped, as smoltcp does), ``corrupt`` (a
chance; exactly one bit flips), then ``delay_ms`` plus a uniform ``jitter_ms`` either side.
Delayed frames are held with their due time and never reordered (a frame is never due before
the one held ahead of it); nothing blocks: ``next_deadline(now)`` tells the loop when to come
back, ``poll(now)`` sends the frames out that are due, and ``recv(now)`` returns frames in that
are due. Randomness comes from ``rng`` only, and time only from the ``now`` the loop passes.

Counters, in the wrapped device's stats (``device.`` in the summary): ``fault_<dir>_dropped``,
``fault_<dir>_too_large``, ``fault_<dir>_rate_limited``, ``fault_<dir>_corrupted``,
``fault_<dir>_delayed``, with ``<dir>`` ``in`` or ``out``.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Sequence
from typing import Any, Protocol

from stack.buffers import Buffer
from stack.ratelimit import TokenBucket
from stack.stats import Stats
from stack.tap.base import Device, Medium

IN = "in"
OUT = "out"
DIRECTIONS = {"both": (IN, OUT), IN: (IN,), OUT: (OUT,)}


class Random(Protocol):
    """What the injector draws from: ``random.Random(seed)`` fits."""

    def random(self) -> float: ...
    def randrange(self, stop: int) -> int: ...
    def uniform(self, a: float, b: float) -> float: ...


class FaultInjector(Device):
    """``inner`` with faults, seeded by ``rng``; see the module docstring."""

    def __init__(self, inner: Device, rng: Random, drop: float = 0.0, corrupt: float = 0.0,
                 delay_ms: float = 0.0, jitter_ms: float = 0.0, rate: float | None = None,
                 burst: int | None = None, max_size: int | None = None,
                 directions: str = "both") -> None:
        for name, chance in (("drop", drop), ("corrupt", corrupt)):
            if not 0.0 <= chance <= 1.0:
                raise ValueError(f"{name} chance {chance} is not between 0 and 1")
        if delay_ms < 0 or jitter_ms < 0:
            raise ValueError("delay and jitter cannot be negative")
        if rate is not None and rate <= 0:
            raise ValueError(f"rate {rate} must be above 0 frames a second")
        if max_size is not None and max_size < 1:
            raise ValueError(f"maximum size {max_size} must be at least 1 byte")
        if directions not in DIRECTIONS:
            raise ValueError(f"directions {directions!r} is not one of {', '.join(DIRECTIONS)}")
        self.inner = inner
        self.rng = rng
        self.drop = drop
        self.corrupt = corrupt
        self.delay = delay_ms / 1000.0
        self.jitter = jitter_ms / 1000.0
        self.max_size = max_size
        self.directions = DIRECTIONS[directions]
        # Each direction has its own bucket (burst: one second's worth, at least 1, by default).
        self._buckets = {
            direction: TokenBucket(rate, float(burst if burst is not None else max(1.0, rate)))
            for direction in (IN, OUT)
        } if rate is not None else {}
        self._held: dict[str, deque[tuple[float, bytes]]] = {IN: deque(), OUT: deque()}

    # ------------------------------------------------------------------ the Device protocol

    @property
    def medium(self) -> Medium:
        return self.inner.medium

    @property
    def stats(self) -> Stats:
        return self.inner.stats

    def __getattr__(self, name: str) -> Any:
        # mtu, name, packet_info, ...: the wrapped device's (``inner`` itself is never missing
        # once set; guard against the lookup during construction).
        if name == "inner":
            raise AttributeError(name)
        return getattr(self.inner, name)

    def fileno(self) -> int:
        return self.inner.fileno()

    def recv(self, now: float) -> Buffer | None:
        """A frame in: a held one that is due, else the next one from the wire that survives."""
        held = self._held[IN]
        while True:
            if held and held[0][0] <= now:
                return held.popleft()[1]
            frame = self.inner.recv(now)
            if frame is None:
                return None
            if IN not in self.directions:
                return frame
            survivor = self._apply(IN, frame, now)
            if survivor is not None:
                return survivor

    def send(self, frame: Sequence[Buffer], now: float) -> None:
        if OUT not in self.directions:
            self.inner.send(frame, now)
            return
        joined = b"".join(frame)
        survivor = self._apply(OUT, joined, now)
        if survivor is joined:
            self.inner.send(frame, now)  # untouched: the buffers as they were
        elif survivor is not None:
            self.inner.send([survivor], now)

    def next_deadline(self, now: float) -> float | None:
        """When the earliest held frame is due (None: nothing held)."""
        dues = [held[0][0] for held in self._held.values() if held]
        return min(dues) if dues else None

    def poll(self, now: float) -> None:
        """Send the held frames out that are due (held frames in come out of ``recv``)."""
        held = self._held[OUT]
        while held and held[0][0] <= now:
            self.inner.send([held.popleft()[1]], now)

    def flush(self) -> None:
        self.inner.flush()

    def close(self) -> None:
        self.inner.close()

    def __repr__(self) -> str:
        return f"FaultInjector({self.inner!r})"

    # ------------------------------------------------------------------ faults

    def _apply(self, direction: str, frame: Buffer, now: float) -> Buffer | None:
        """The frame as it goes on (the same object when untouched), or None when it is gone
        (dropped, or held until it is due)."""
        if self.drop and self.rng.random() < self.drop:
            self.stats.count(f"fault_{direction}_dropped")
            return None
        if self.max_size is not None and len(frame) > self.max_size:
            self.stats.count(f"fault_{direction}_too_large")
            return None
        if self._buckets and not self._buckets[direction].take(now):
            self.stats.count(f"fault_{direction}_rate_limited")
            return None
        if self.corrupt and self.rng.random() < self.corrupt and len(frame):
            changed = bytearray(frame)
            bit = self.rng.randrange(len(changed) * 8)
            changed[bit // 8] ^= 1 << (bit % 8)
            self.stats.count(f"fault_{direction}_corrupted")
            frame = bytes(changed)
        if self.delay or self.jitter:
            held = self._held[direction]
            due = now + max(0.0, self.delay + (self.rng.uniform(-self.jitter, self.jitter) if self.jitter else 0.0))
            if held and due < held[-1][0]:
                due = held[-1][0]  # never overtake the frame held ahead
            held.append((due, bytes(frame)))  # a copy: a received frame views a reused buffer
            self.stats.count(f"fault_{direction}_delayed")
            return None
        return frame
