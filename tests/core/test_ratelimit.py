"""The token bucket (stack.ratelimit): ICMP errors (RFC 1122 3.2.2) and fault injection share it."""

from __future__ import annotations

import pytest

from stack.ratelimit import TokenBucket


def takes(bucket: TokenBucket, now: float, count: int) -> int:
    return sum(bucket.take(now) for _ in range(count))


def test_starts_full_and_gives_the_burst_at_once():
    bucket = TokenBucket(rate=10.0, burst=5)
    assert takes(bucket, 0.0, 8) == 5


def test_refills_at_the_rate_and_never_past_the_burst():
    bucket = TokenBucket(rate=10.0, burst=5)
    takes(bucket, 0.0, 5)
    assert takes(bucket, 0.25, 10) == 2  # 2.5 tokens earned: two whole ones
    assert takes(bucket, 100.0, 10) == 5  # a long wait saves at most the burst


def test_a_fraction_of_a_token_is_kept_for_later():
    bucket = TokenBucket(rate=10.0, burst=5)
    takes(bucket, 0.0, 5)
    assert not bucket.take(0.05)  # half a token
    assert bucket.take(0.1)  # half + half


def test_time_running_backwards_earns_nothing():
    bucket = TokenBucket(rate=10.0, burst=1)
    assert bucket.take(5.0)
    assert not bucket.take(4.0)
    assert not bucket.take(4.05)  # measured from 4.0: 0.5 token


def test_rate_zero_gives_only_the_burst_and_burst_zero_nothing():
    drained = TokenBucket(rate=0.0, burst=3)
    assert takes(drained, 0.0, 5) == 3
    assert takes(drained, 1e6, 3) == 0
    assert takes(TokenBucket(rate=1000.0, burst=0), 10.0, 5) == 0


@pytest.mark.parametrize("rate, burst", [(-1.0, 1), (1.0, -1)])
def test_negative_settings_are_refused(rate, burst):
    with pytest.raises(ValueError, match="cannot be negative"):
        TokenBucket(rate, burst)
