"""Per-partner rate limits: one token bucket per partner, so that one misbehaving partner
cannot starve the others.

Each request of a partner takes a token; tokens come back at the partner's rate up to its
burst. Without a token the request is refused with 429 and `Retry-After` (the seconds until
the next token), before it touches the store. The rate and burst are the partner record's
(`casebridge partners limit`), else CASEBRIDGE_PARTNER_RATE_PER_SECOND and
CASEBRIDGE_PARTNER_RATE_BURST.

The buckets live in the memory of each API process: counting in the store would cost a
write on every request, reads included, and a limit is about load, which each process
carries on its own. With N processes behind a balancer a partner gets up to N times its
rate; a limit across them all belongs in the proxy in front (docs/api.md).
"""

import math
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

from gateway.errors import CaseBridgeError


class RateLimited(CaseBridgeError):
    def __init__(self, *, retry_after: int, rate: float, burst: int) -> None:
        super().__init__(
            detail=f"Too many requests: this partner may make {rate:g} a second (bursts of "
                   f"{burst}). Try again in {retry_after} s.",
            status=429, slug="rate-limited", title="Too many requests",
            extensions={"retry_after": retry_after,
                        "limit": {"per_second": rate, "burst": burst}},
            headers={"Retry-After": str(retry_after)},
        )


@dataclass
class _Bucket:
    tokens: float
    at: float


class RateLimiter:
    """Token buckets by key; thread-safe (sync views run on a thread pool)."""

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self._clock = clock
        self._buckets: dict[str, _Bucket] = {}
        self._lock = threading.Lock()

    def take(self, key: str, *, rate: float, burst: int) -> None:
        """Take one token from `key`'s bucket, or raise RateLimited."""
        now = self._clock()
        with self._lock:
            bucket = self._buckets.setdefault(key, _Bucket(float(burst), now))
            bucket.tokens = min(float(burst), bucket.tokens + (now - bucket.at) * rate)
            bucket.at = now
            if bucket.tokens >= 1:
                bucket.tokens -= 1
                return
            wait = (1 - bucket.tokens) / rate
        raise RateLimited(retry_after=max(1, math.ceil(wait)), rate=rate, burst=burst)
