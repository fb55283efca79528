"""Per-call timeouts with ``asyncio.timeout`` semantics, served by one timer per connector.

``asyncio.timeout()`` schedules and cancels a timer handle for every call, which costs
several microseconds (about half of the operation road's overhead on the success path).
Calls of one connector mostly share one timeout value, so their deadlines arrive in
order: one timer, set for the earliest pending deadline, serves them all, and a call
only registers and unregisters its deadline in a dict. See decision 0006.
"""

from __future__ import annotations

import asyncio
from types import TracebackType

# A timer may fire up to the loop's clock resolution early; treat that as on time.
_EARLY = 1e-6


class CallTimeouts:
    """The deadlines of one connector's calls in flight, watched by one timer handle."""

    __slots__ = ("_calls", "_handle", "_loop", "_when")

    def __init__(self) -> None:
        self._calls: dict[CallTimeout, float] = {}
        self._handle: asyncio.TimerHandle | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._when = float("inf")

    def limit(self, delay: float) -> CallTimeout:
        """A ``with`` block that raises ``TimeoutError`` when it runs past ``delay`` s.

        Like ``asyncio.timeout(delay)``: at the deadline the current task is cancelled
        and the cancellation leaves the block as ``TimeoutError``; any other
        cancellation passes through untouched. Must be used inside a task.
        """
        task = asyncio.current_task()
        if task is None:
            raise RuntimeError("a call timeout must be used inside a task")
        call = CallTimeout(self, task)
        loop = task.get_loop()
        if loop is not self._loop:  # first use, or the connector moved to a new loop
            if self._handle is not None:
                self._handle.cancel()
            self._loop, self._handle, self._when = loop, None, float("inf")
        deadline = loop.time() + delay
        self._calls[call] = deadline
        if deadline < self._when:
            if self._handle is not None:
                self._handle.cancel()
            self._when = deadline
            self._handle = loop.call_at(deadline, self._fire)
        return call

    def _discard(self, call: CallTimeout) -> None:
        self._calls.pop(call, None)

    def _fire(self) -> None:
        loop = self._loop
        assert loop is not None
        self._handle, self._when = None, float("inf")
        now = loop.time() + _EARLY
        expired = [call for call, deadline in self._calls.items() if deadline <= now]
        for call in expired:
            del self._calls[call]
            call._expire()
        if self._calls:
            self._when = min(self._calls.values())
            self._handle = loop.call_at(self._when, self._fire)


class CallTimeout:
    """One call's timeout; see :meth:`CallTimeouts.limit`."""

    __slots__ = ("_cancelling", "_expired", "_owner", "_task")

    def __init__(self, owner: CallTimeouts, task: asyncio.Task[object]) -> None:
        self._owner = owner
        self._task = task
        self._cancelling = task.cancelling()
        self._expired = False

    def _expire(self) -> None:
        self._task.cancel()
        self._expired = True

    def __enter__(self) -> None:
        return None

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self._owner._discard(self)
        if (
            self._expired
            and self._task.uncancel() <= self._cancelling
            and exc_type is asyncio.CancelledError
        ):
            raise TimeoutError from exc
