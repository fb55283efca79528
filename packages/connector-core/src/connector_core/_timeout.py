"""Per-call timeouts with ``asyncio.timeout`` semantics, served by one timer per connector.

``asyncio.timeout()`` schedules and cancels a timer handle for every call, which costs
several microseconds (about half of the operation road's overhead on the success path).
Calls of one connector mostly share one timeout value, so their deadlines arrive in
order: one timer, set for the earliest pending deadline, serves them all, and a call
only registers and unregisters its deadline in a dict. See decision 0006.
"""

from __future__ import annotations

import asyncio
import sys
import threading
import time
from collections.abc import Callable
from types import TracebackType
from typing import Any

# On Python 3.11 asyncio.current_task() is a Python function over this dict; read it
# as that function does, for the connector's own loop (see CallTimeouts.limit).
_tasks_by_loop: dict[asyncio.AbstractEventLoop, asyncio.Task[Any]] | None = (
    asyncio.tasks._current_tasks  # type: ignore[attr-defined]
    if sys.version_info < (3, 12)
    and asyncio.current_task.__module__ == "asyncio.tasks"
    and isinstance(getattr(asyncio.tasks, "_current_tasks", None), dict)
    else None
)
_thread = threading.get_ident
_new_call = object.__new__

# A timer may fire up to the loop's clock resolution early; treat that as on time.
_EARLY = 1e-6


class CallTimeouts:
    """The deadlines of one connector's calls in flight, watched by one timer handle."""

    __slots__ = ("_calls", "_handle", "_loop", "_now", "_thread", "_when")

    def __init__(self) -> None:
        self._calls: dict[CallTimeout, float] = {}
        self._handle: asyncio.TimerHandle | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._when = float("inf")
        self._now: Callable[[], float] = time.monotonic
        self._thread = 0  # the thread that runs _loop

    def limit(self, delay: float) -> CallTimeout:
        """A ``with`` block that raises ``TimeoutError`` when it runs past ``delay`` s.

        Like ``asyncio.timeout(delay)``: at the deadline the current task is cancelled
        and the cancellation leaves the block as ``TimeoutError``; any other
        cancellation passes through untouched. Must be used inside a task.
        """
        loop = self._loop
        # The task running on this connector's loop, when that loop runs in this
        # thread: one dict read, where asyncio.current_task() on Python 3.11 costs a
        # Python frame and get_running_loop() a getpid() system call (decision 0128).
        task = (
            _tasks_by_loop.get(loop)
            if _tasks_by_loop is not None and loop is not None and _thread() == self._thread
            else None
        )
        if task is None:  # first use, another loop or thread, or no task at all
            task = asyncio.current_task()  # RuntimeError without a running loop
            if task is None:
                raise RuntimeError("a call timeout must be used inside a task")
            if task.get_loop() is not loop:
                loop = self._switch_loop(task.get_loop())
        assert loop is not None
        # Built without __init__ (one frame less on every call of every connector).
        call = _new_call(CallTimeout)
        call._owner = self
        call._task = task
        call._cancelling = task.cancelling()
        call._expired = False
        deadline = self._now() + delay
        self._calls[call] = deadline
        if deadline < self._when:
            if self._handle is not None:
                self._handle.cancel()
            self._when = deadline
            self._handle = loop.call_at(deadline, self._fire)
        return call

    def _switch_loop(self, loop: asyncio.AbstractEventLoop) -> asyncio.AbstractEventLoop:
        """First use, or the connector moved to a new loop: forget the old timer."""
        if self._handle is not None:
            self._handle.cancel()
        self._loop, self._handle, self._when = loop, None, float("inf")
        self._thread = _thread()
        # asyncio's own loops read time.monotonic(); call it without the method frame.
        base_time = asyncio.BaseEventLoop.time
        self._now = time.monotonic if getattr(type(loop), "time", None) is base_time else loop.time
        return loop

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

    _owner: CallTimeouts
    _task: asyncio.Task[Any]
    _cancelling: int
    _expired: bool

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
        self._owner._calls.pop(self, None)
        if (
            self._expired
            and self._task.uncancel() <= self._cancelling
            and exc_type is asyncio.CancelledError
        ):
            raise TimeoutError from exc
