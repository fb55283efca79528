"""CallTimeouts: asyncio.timeout semantics for many calls with one timer handle."""

from __future__ import annotations

import asyncio
import concurrent.futures

import pytest

from connector_core._timeout import CallTimeouts


async def sleep_under(timeouts: CallTimeouts, limit: float, duration: float) -> str:
    with timeouts.limit(limit):
        await asyncio.sleep(duration)
    return "finished"


def outcome(result: object) -> str:
    return type(result).__name__ if isinstance(result, BaseException) else str(result)


async def test_each_call_gets_its_own_deadline() -> None:
    timeouts = CallTimeouts()
    results = await asyncio.gather(
        sleep_under(timeouts, 0.5, 0.01),  # in time
        sleep_under(timeouts, 0.02, 5),  # times out first
        sleep_under(timeouts, 0.05, 5),  # times out later
        sleep_under(timeouts, 0.5, 0.1),  # in time, after the others timed out
        return_exceptions=True,
    )
    assert [outcome(r) for r in results] == [
        "finished",
        "TimeoutError",
        "TimeoutError",
        "finished",
    ]
    assert timeouts._calls == {}


async def test_a_shorter_deadline_arriving_later_rearms_the_timer() -> None:
    timeouts = CallTimeouts()
    long_call = asyncio.create_task(sleep_under(timeouts, 30, 0.2))
    await asyncio.sleep(0)
    with pytest.raises(TimeoutError):
        await sleep_under(timeouts, 0.01, 5)
    assert await long_call == "finished"


async def test_many_concurrent_calls_all_time_out() -> None:
    timeouts = CallTimeouts()
    results = await asyncio.gather(
        *(sleep_under(timeouts, 0.01 + i / 1000, 5) for i in range(50)),
        return_exceptions=True,
    )
    assert all(isinstance(r, TimeoutError) for r in results)
    assert timeouts._calls == {}


async def test_the_timer_is_rearmed_for_calls_still_running() -> None:
    timeouts = CallTimeouts()
    first = asyncio.create_task(sleep_under(timeouts, 0.02, 0.001))
    await asyncio.sleep(0.005)
    second = asyncio.create_task(sleep_under(timeouts, 0.04, 5))
    assert await first == "finished"
    with pytest.raises(TimeoutError):
        await second  # the timer fired at first's deadline, found none, and re-armed


async def test_outside_cancellation_passes_through() -> None:
    timeouts = CallTimeouts()
    task = asyncio.create_task(sleep_under(timeouts, 10, 5))
    await asyncio.sleep(0.01)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert task.cancelled()


async def test_cancellation_at_the_same_time_as_the_deadline_stays_a_cancellation() -> None:
    timeouts = CallTimeouts()
    entered = asyncio.Event()

    async def body() -> None:
        with timeouts.limit(0.01):
            entered.set()
            await asyncio.sleep(5)

    task = asyncio.create_task(body())
    await entered.wait()
    (call,) = timeouts._calls
    call._expire()  # the deadline passes ...
    task.cancel()  # ... and someone cancels the task as well
    with pytest.raises(asyncio.CancelledError):
        await task
    assert task.cancelled()


async def test_a_block_that_finishes_leaves_the_task_uncancelled() -> None:
    timeouts = CallTimeouts()
    assert await sleep_under(timeouts, 0.01, 0) == "finished"
    await asyncio.sleep(0.03)
    task = asyncio.current_task()
    assert task is not None
    assert task.cancelling() == 0


def test_works_across_event_loops() -> None:
    timeouts = CallTimeouts()

    async def main() -> list[str]:
        results = await asyncio.gather(
            sleep_under(timeouts, 60, 0), sleep_under(timeouts, 0.01, 5), return_exceptions=True
        )
        return [outcome(r) for r in results]

    # The first loop leaves a timer armed for 60 s; the second must not depend on it.
    assert asyncio.run(main()) == ["finished", "TimeoutError"]
    assert asyncio.run(main()) == ["finished", "TimeoutError"]
    # And in another thread's loop: the task cancelled is that loop's own.
    with concurrent.futures.ThreadPoolExecutor(1) as pool:
        assert pool.submit(asyncio.run, main()).result() == ["finished", "TimeoutError"]
    assert asyncio.run(main()) == ["finished", "TimeoutError"]


def test_outside_a_task_is_a_runtime_error() -> None:
    with pytest.raises(RuntimeError, match="no running event loop"):
        CallTimeouts().limit(1)


class _FarClockLoop(asyncio.SelectorEventLoop):
    """A loop whose clock is not time.monotonic() (as uvloop's or a test loop's may be)."""

    def time(self) -> float:
        return super().time() + 1e6


def test_deadlines_are_on_the_running_loops_clock() -> None:
    # Deadlines read from time.monotonic() would lie 1e6 s in this loop's past and
    # expire at once; on the loop's own clock the short call finishes, the long one
    # times out.
    timeouts = CallTimeouts()

    async def both() -> list[object]:
        return await asyncio.gather(
            sleep_under(timeouts, 5, 0.01),
            sleep_under(timeouts, 0.02, 5),
            return_exceptions=True,
        )

    loop = _FarClockLoop()
    try:
        results = loop.run_until_complete(both())
    finally:
        loop.close()
    assert [outcome(r) for r in results] == ["finished", "TimeoutError"]


def test_outside_a_task_but_inside_a_loop_is_a_runtime_error() -> None:
    loop = asyncio.new_event_loop()
    asyncio.events._set_running_loop(loop)  # as in a loop callback: no task
    try:
        with pytest.raises(RuntimeError, match="inside a task"):
            CallTimeouts().limit(1)
    finally:
        asyncio.events._set_running_loop(None)
        loop.close()
