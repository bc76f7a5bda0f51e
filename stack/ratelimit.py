"""A token bucket: the one rate limit of the stack (ICMP errors, fault injection's frame rate).

Read first: RFC 1122 3.2.2 (ICMP errors are rate-limited); Linux ``icmp_global_allow`` and
``tc-tbf``. Time is passed in as ``now`` (seconds on the caller's clock); nothing reads a clock.
"""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(slots=True)
class TokenBucket:
    """``rate`` tokens a second, at most ``burst`` saved; it starts full.

    Each ``take(now)`` first adds what ``rate`` earned since the previous call (time that runs
    backwards earns nothing), then spends one token if there is a whole one.
    """

    rate: float
    burst: float
    tokens: float = field(init=False)
    at: float | None = field(default=None, init=False)

    def __post_init__(self) -> None:
        if self.rate < 0 or self.burst < 0:
            raise ValueError(f"a token bucket's rate ({self.rate}) and burst ({self.burst}) cannot be negative")
        self.tokens = float(self.burst)

    def take(self, now: float) -> bool:
        """Spend one token at ``now``: True when there was one, False (nothing spent) if not."""
        if self.at is not None:
            self.tokens = min(float(self.burst), self.tokens + max(0.0, now - self.at) * self.rate)
        self.at = now
        if self.tokens < 1.0:
            return False
        self.tokens -= 1.0
        return True
