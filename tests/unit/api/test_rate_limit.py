"""A partner's token bucket: a burst, then its rate, and how long to wait."""

import pytest

from gateway.api.ratelimit import RateLimited, RateLimiter


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_a_burst_passes_then_the_rate_holds_and_retry_after_says_how_long() -> None:
    clock = Clock()
    limiter = RateLimiter(clock)
    for _ in range(3):
        limiter.take("primero-a", rate=0.5, burst=3)
    with pytest.raises(RateLimited) as refused:
        limiter.take("primero-a", rate=0.5, burst=3)
    assert refused.value.status == 429
    assert refused.value.headers == {"Retry-After": "2"}  # one token every 2 s
    assert refused.value.extensions["limit"] == {"per_second": 0.5, "burst": 3}
    clock.now += 2
    limiter.take("primero-a", rate=0.5, burst=3)
    with pytest.raises(RateLimited):
        limiter.take("primero-a", rate=0.5, burst=3)


def test_one_partner_spending_its_tokens_leaves_the_others_theirs() -> None:
    limiter = RateLimiter(Clock())
    limiter.take("primero-a", rate=1, burst=1)
    with pytest.raises(RateLimited):
        limiter.take("primero-a", rate=1, burst=1)
    limiter.take("progres-b", rate=1, burst=1)


def test_a_quiet_partner_saves_no_more_than_its_burst() -> None:
    clock = Clock()
    limiter = RateLimiter(clock)
    limiter.take("primero-a", rate=10, burst=2)
    clock.now += 3600
    limiter.take("primero-a", rate=10, burst=2)
    limiter.take("primero-a", rate=10, burst=2)
    with pytest.raises(RateLimited) as refused:
        limiter.take("primero-a", rate=10, burst=2)
    assert refused.value.headers["Retry-After"] == "1"  # never 0: a client would not wait
