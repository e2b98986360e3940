"""A partner's token bucket: a burst, then its rate, and how long to wait."""

from types import SimpleNamespace

import pytest
from starlette.requests import Request

from gateway.api.deps import within_rate_limit
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


def test_a_request_whose_work_runs_again_after_a_split_takes_one_token() -> None:
    """Intake's works run again alone when their group commit splits (a repeated
    Idempotency-Key, say): the request took its token the first time."""
    limiter = RateLimiter(Clock())
    app = SimpleNamespace(state=SimpleNamespace(
        settings=SimpleNamespace(partner_rate_per_second=1.0, partner_rate_burst=1),
        rate_limiter=limiter))
    partner = SimpleNamespace(id="primero-a", rate_per_second=None, rate_burst=None)

    def request() -> Request:
        return Request({"type": "http", "app": app, "headers": []})

    first = request()
    within_rate_limit(first, partner)  # type: ignore[arg-type]
    within_rate_limit(first, partner)  # type: ignore[arg-type]  # the same request again
    with pytest.raises(RateLimited):
        within_rate_limit(request(), partner)  # type: ignore[arg-type]
