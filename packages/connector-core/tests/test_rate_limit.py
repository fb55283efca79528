"""TokenBucket on a fake clock: burst, refill, waits, cancellation, accuracy."""

from __future__ import annotations

import asyncio
import heapq
import itertools

import pytest
from _core_support import FakeClock

from connector_core import TokenBucket


def test_starts_full_and_allows_a_burst(clock: FakeClock) -> None:
    bucket = TokenBucket(rate=10, burst=5, clock=clock)
    assert bucket.available == 5
    assert [bucket.try_acquire() for _ in range(6)] == [True] * 5 + [False]
    assert bucket.available == 0


def test_refills_at_rate_up_to_burst(clock: FakeClock) -> None:
    bucket = TokenBucket(rate=10, burst=5, clock=clock)
    assert bucket.try_acquire(5)
    clock.advance(0.25)
    assert bucket.available == pytest.approx(2.5)
    assert bucket.try_acquire(2)
    assert not bucket.try_acquire(1)
    clock.advance(3600)
    assert bucket.available == 5  # never above burst


def test_try_acquire_takes_nothing_when_short(clock: FakeClock) -> None:
    bucket = TokenBucket(rate=1, burst=3, clock=clock)
    assert bucket.try_acquire(2)
    assert not bucket.try_acquire(2)
    assert bucket.available == pytest.approx(1)


@pytest.mark.parametrize("n", [0, -1, 4])
def test_invalid_amounts_raise_value_error(clock: FakeClock, n: float) -> None:
    bucket = TokenBucket(rate=1, burst=3, clock=clock)
    with pytest.raises(ValueError, match=r"n must be > 0|cannot take"):
        bucket.try_acquire(n)


async def test_acquire_more_than_burst_raises_value_error(clock: FakeClock) -> None:
    bucket = TokenBucket(rate=1, burst=3, clock=clock, sleep=clock.sleep)
    with pytest.raises(ValueError, match="cannot take 4 tokens at once from a bucket of burst 3"):
        await bucket.acquire(4)
    assert bucket.available == 3  # nothing taken


@pytest.mark.parametrize(("rate", "burst"), [(0, 1), (-1, 1), (1, 0)])
def test_invalid_bucket_raises_value_error(rate: float, burst: int) -> None:
    with pytest.raises(ValueError, match="must be"):
        TokenBucket(rate=rate, burst=burst)


async def test_acquire_returns_at_once_while_tokens_last(clock: FakeClock) -> None:
    bucket = TokenBucket(rate=2, burst=2, clock=clock, sleep=clock.sleep)
    assert await bucket.acquire() == 0.0
    assert await bucket.acquire() == 0.0
    assert clock.sleeps == []


async def test_acquire_waits_exactly_until_the_tokens_exist(clock: FakeClock) -> None:
    bucket = TokenBucket(rate=4, burst=2, clock=clock, sleep=clock.sleep)
    await bucket.acquire(2)
    waited = await bucket.acquire(1)
    assert waited == pytest.approx(0.25)
    assert clock.sleeps == [pytest.approx(0.25)]
    clock.advance(0.1)
    waited = await bucket.acquire(2)  # has 0.4 tokens; needs 1.6 more at 4/s
    assert waited == pytest.approx(0.4)


async def test_waiters_queue_in_arrival_order_without_polling(clock: FakeClock) -> None:
    waits: list[float] = []

    async def record(delay: float) -> None:
        waits.append(delay)

    bucket = TokenBucket(rate=10, burst=1, clock=clock, sleep=record)
    await bucket.acquire()
    # Three waiters arriving at the same instant each reserve and wait their turn.
    results = await asyncio.gather(*(bucket.acquire() for _ in range(3)))
    assert results == pytest.approx([0.1, 0.2, 0.3])
    assert waits == pytest.approx([0.1, 0.2, 0.3])  # one sleep each: no polling
    assert bucket.available == 0


async def test_cancelled_waiter_gets_its_tokens_back(clock: FakeClock) -> None:
    started = asyncio.Event()

    async def block(delay: float) -> None:
        started.set()
        await asyncio.Event().wait()

    bucket = TokenBucket(rate=1, burst=2, clock=clock, sleep=block)
    await bucket.acquire(2)
    task = asyncio.create_task(bucket.acquire(2))
    await started.wait()
    assert bucket.available == 0
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    clock.advance(2.0)
    assert bucket.available == pytest.approx(2.0)  # the refund: as if never asked
    assert bucket.try_acquire(2)


def test_available_is_zero_while_waiters_are_owed(clock: FakeClock) -> None:
    bucket = TokenBucket(rate=1, burst=1, clock=clock)
    bucket._tokens = -3.0  # three tokens promised to waiters
    assert bucket.available == 0
    clock.advance(3.5)
    assert bucket.available == pytest.approx(0.5)


def test_refill_is_not_fooled_by_a_clock_going_back(clock: FakeClock) -> None:
    bucket = TokenBucket(rate=1, burst=2, clock=clock)
    bucket.try_acquire(2)
    clock.advance(-10)
    assert bucket.available == 0
    clock.advance(11)
    assert bucket.available == pytest.approx(1)


class VirtualTime:
    """A clock and a sleep for many concurrent tasks: time jumps to the next wake-up."""

    def __init__(self) -> None:
        self.now = 0.0
        self._queue: list[tuple[float, int, asyncio.Future[None]]] = []
        self._seq = itertools.count()

    def clock(self) -> float:
        return self.now

    async def sleep(self, delay: float) -> None:
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        heapq.heappush(self._queue, (self.now + delay, next(self._seq), future))
        await future

    async def run_until(self, end: float) -> None:
        while True:
            for _ in range(5):  # let every runnable task reach its next sleep
                await asyncio.sleep(0)
            if not self._queue or self._queue[0][0] > end:
                self.now = end
                return
            when, _, future = heapq.heappop(self._queue)
            self.now = max(self.now, when)
            if not future.done():
                future.set_result(None)


@pytest.mark.parametrize(("rate", "burst", "acquirers"), [(50.0, 10, 20), (333.0, 1, 7)])
async def test_tokens_granted_over_time_are_within_one_percent(
    rate: float, burst: int, acquirers: int
) -> None:
    time = VirtualTime()
    bucket = TokenBucket(rate=rate, burst=burst, clock=time.clock, sleep=time.sleep)
    granted: list[float] = []

    async def acquirer() -> None:
        while True:
            await bucket.acquire()
            granted.append(time.now)

    tasks = [asyncio.create_task(acquirer()) for _ in range(acquirers)]
    duration = 60.0
    await time.run_until(duration)
    for task in tasks:
        task.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)

    expected = rate * duration + burst
    count = sum(1 for t in granted if t <= duration)
    assert abs(count - expected) <= 0.01 * expected, (count, expected)
    # And never more than the bucket allows at any moment: rate * t + burst.
    for i, t in enumerate(sorted(granted)):
        assert i + 1 <= rate * t + burst + 1e-6


async def test_a_late_refund_never_fills_the_bucket_past_burst(clock: FakeClock) -> None:
    started = asyncio.Event()

    async def block(delay: float) -> None:
        started.set()
        await asyncio.Event().wait()

    bucket = TokenBucket(rate=1, burst=2, clock=clock, sleep=block)
    await bucket.acquire(2)
    task = asyncio.create_task(bucket.acquire(2))
    await started.wait()
    clock.advance(100)  # the loop was busy: the waiter's time came and went
    assert bucket.available == 2
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert bucket.available == 2
    assert bucket.try_acquire(2)
    assert not bucket.try_acquire(1)
