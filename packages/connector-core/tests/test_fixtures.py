"""The fixtures that patch ``asyncio.sleep`` record only the test's own sleeps.

Other packages' session fixtures leave servers running in threads (uvicorn polls with
``asyncio.sleep(0.1)``); their sleeps must keep real time and stay out of the record.
"""

from __future__ import annotations

import asyncio
import threading

import pytest
from _core_support import FakeClock


def _sleep_in_another_thread(times: int) -> int:
    done: list[int] = []

    async def poll() -> None:
        for _ in range(times):
            await asyncio.sleep(0.001)
            done.append(1)

    thread = threading.Thread(target=asyncio.run, args=(poll(),))
    thread.start()
    thread.join(timeout=10)
    return len(done)


async def test_sleeps_fixture_ignores_other_threads(sleeps: list[float]) -> None:
    assert _sleep_in_another_thread(5) == 5
    await asyncio.sleep(0.25)
    assert sleeps == [0.25]


async def test_fake_clock_sleep_ignores_other_threads(monkeypatch: pytest.MonkeyPatch) -> None:
    clock = FakeClock(0.0)
    monkeypatch.setattr(asyncio, "sleep", clock.sleep)
    assert _sleep_in_another_thread(5) == 5
    await asyncio.sleep(2.0)
    assert clock.sleeps == [2.0]
    assert clock.now == 2.0
