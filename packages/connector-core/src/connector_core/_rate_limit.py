"""A token bucket rate limiter with O(1) refill, fair waiting and an injectable clock."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable


class TokenBucket:
    """Allow ``rate`` tokens per second on average, with bursts up to ``burst``.

    ``acquire(n)`` reserves tokens at once and then waits out any debt, so waiters
    are served in arrival order without polling; a cancelled waiter gets its tokens
    back. Refill is computed from the clock on each call (O(1), no background task).

    Args:
        rate: tokens added per second (> 0).
        burst: bucket capacity (>= 1); the bucket starts full.
        clock: a monotonic clock in seconds (inject a fake one in tests).
        sleep: the coroutine used to wait (inject with a fake clock).
    """

    __slots__ = ("_clock", "_last", "_sleep", "_tokens", "burst", "rate")

    def __init__(
        self,
        rate: float,
        burst: int = 1,
        *,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], Awaitable[object]] = asyncio.sleep,
    ) -> None:
        if rate <= 0:
            raise ValueError("rate must be > 0")
        if burst < 1:
            raise ValueError("burst must be >= 1")
        self.rate = float(rate)
        self.burst = int(burst)
        self._clock = clock
        self._sleep = sleep
        self._tokens = float(burst)
        self._last = clock()

    def _refill(self) -> float:
        now = self._clock()
        elapsed = now - self._last
        if elapsed > 0:
            self._tokens = min(float(self.burst), self._tokens + elapsed * self.rate)
            self._last = now
        return self._tokens

    @property
    def available(self) -> float:
        """Tokens available right now (0 while waiters are still owed tokens)."""
        return max(0.0, self._refill())

    def _check(self, n: float) -> None:
        if n <= 0:
            raise ValueError("n must be > 0")
        if n > self.burst:
            raise ValueError(f"cannot take {n} tokens at once from a bucket of burst {self.burst}")

    def try_acquire(self, n: float = 1) -> bool:
        """Take ``n`` tokens if they are there now; never waits."""
        # _check() and _refill() inlined: this runs once per call of every connector.
        if not 0 < n <= self.burst:
            self._check(n)
        now = self._clock()
        tokens = self._tokens
        elapsed = now - self._last
        if elapsed > 0:
            tokens += elapsed * self.rate
            if tokens > self.burst:
                tokens = float(self.burst)
            self._last = now
        if tokens >= n:
            self._tokens = tokens - n
            return True
        self._tokens = tokens
        return False

    async def acquire(self, n: float = 1) -> float:
        """Take ``n`` tokens, waiting as long as needed. Returns the seconds waited."""
        self._check(n)
        tokens = self._refill() - n
        self._tokens = tokens
        if tokens >= 0:
            return 0.0
        wait = -tokens / self.rate
        try:
            await self._sleep(wait)
        except asyncio.CancelledError:
            # Refund, but never above burst (a refill may have run since the reservation).
            self._tokens = min(float(self.burst), self._refill() + n)
            raise
        return wait
