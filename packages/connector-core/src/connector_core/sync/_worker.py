"""SyncWorker: several processes share the streams of one sync configuration, in rounds,
each stream leased to one of them at a time."""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import inspect
import logging
import math
import os
import random
import socket
import time
import uuid
from collections.abc import Awaitable, Callable, MutableMapping, Sequence
from dataclasses import dataclass
from typing import Protocol, runtime_checkable

from connector_core._config import config_error
from connector_core._errors import ConnectionFailedError
from connector_core.sync._engine import StreamReport, StreamSync

logger = logging.getLogger("connector_core.sync")


@runtime_checkable
class StreamLeases(Protocol):
    """Exclusive leases by name, held by one worker (one session) at a time.

    A lease is released by :meth:`release`, or by the lease service itself when the
    holder is gone (a PostgreSQL advisory lock when its session ends), so a dead worker
    never keeps one. connector-postgres's ``AdvisoryLeases`` is the shared
    implementation; :class:`InMemoryLeases` shares leases inside one process.
    """

    heartbeat: float
    """Seconds between :meth:`check` calls that keep the leases (and notice their loss)
    in time."""

    async def try_acquire(self, name: str) -> bool:
        """Take the lease on ``name`` if nobody holds it; whether this holder has it."""
        ...

    async def release(self, name: str) -> None:
        """Give the lease on ``name`` back (nothing happens when it is not held)."""
        ...

    async def check(self) -> None:
        """Raise a ConnectorError when the leases held may be lost (the session that holds
        them is gone): a worker stops its runs when this raises."""
        ...


class InMemoryLeases:
    """:class:`StreamLeases` in a dict: workers in one process that share ``board`` (name
    -> holder) exclude one another; for tests and single-process use.

    :meth:`drop` forgets every lease this holder has, as a lease server does when the
    holder's session ends; :meth:`check` raises ConnectionFailedError after it.
    """

    heartbeat = 0.05

    def __init__(self, board: MutableMapping[str, str] | None = None, *, owner: str = "") -> None:
        self.board: MutableMapping[str, str] = {} if board is None else board
        self.owner = owner or uuid.uuid4().hex
        self._lost = False

    def __repr__(self) -> str:
        return f"InMemoryLeases(owner={self.owner!r}, held={sorted(self.held)})"

    @property
    def held(self) -> set[str]:
        """The names this holder has leased."""
        return {name for name, owner in self.board.items() if owner == self.owner}

    async def try_acquire(self, name: str) -> bool:
        await self.check()
        return self.board.setdefault(name, self.owner) == self.owner

    async def release(self, name: str) -> None:
        if self.board.get(name) == self.owner:
            del self.board[name]

    async def check(self) -> None:
        if self._lost:
            raise ConnectionFailedError("the leases were dropped (their session ended)")

    def drop(self) -> None:
        """Lose every lease held (as when the session holding them ends)."""
        for name in self.held:
            del self.board[name]
        self._lost = True


@dataclass(frozen=True, slots=True)
class StreamRun:
    """One run of a stream by a worker (what ``on_run`` gets)."""

    name: str
    """The sync's name (its lease name)."""
    round: int
    worker: str
    started_at: dt.datetime
    finished_at: dt.datetime
    report: StreamReport | None
    """What the run did; None when it failed."""
    error: Exception | None = None
    """Why the run failed (the stream is tried again in the next round)."""


RunCallback = Callable[[StreamRun], Awaitable[None] | None]


class SyncWorker:
    """Run the streams of a sync configuration in rounds, together with other workers
    (processes, machines) that run the same configuration with the same ``leases``.

    A round runs every stream once. The round number is the stream's mark in its state
    store (key ``<name>:round``), written after each run: the round being worked on is
    one more than the lowest mark, so every worker agrees on it whatever its clock. For
    each stream not yet marked, a worker tries its lease; with it, it reads the mark
    again, runs the :class:`StreamSync`, stores the mark and gives the lease back. A
    stream leased by another worker is tried again every ``poll`` seconds until it is
    marked: a worker that died mid-run leaves it unmarked and unleased, so another one
    runs it in the same round (within ``poll`` seconds of the lease's release by the
    server). Rounds start at most every ``every`` seconds.

    The state store must be one all workers share (connector-postgres's
    ``PostgresStateStore``). ``on_run`` (sync or async) gets a :class:`StreamRun` after
    each run, before the mark is stored (so at least once per run; what it raises is
    logged). A run that raises is logged, handed to ``on_run`` with its error and
    marked, so one failing stream does not stop the round; it is tried again next round
    from its last checkpoint.

    While it runs, the worker calls ``leases.check()`` every ``leases.heartbeat`` seconds;
    when that raises (the lease session is gone, so others may take the streams) the
    stream run in progress is cancelled and :meth:`run` raises that error: restart the
    worker (a supervisor such as systemd or Kubernetes does).

    Raises ConfigError at construction naming every bad setting.
    """

    def __init__(
        self,
        syncs: Sequence[StreamSync],
        leases: StreamLeases | object,
        *,
        every: float = 60.0,
        poll: float = 1.0,
        worker_id: str | None = None,
        on_run: RunCallback | None = None,
    ) -> None:
        problems: list[tuple[str, str]] = []
        names = [s.name for s in syncs if isinstance(s, StreamSync)]
        if not syncs or len(names) != len(syncs):
            problems.append(("syncs", "must be one or more StreamSync"))
        elif len(set(names)) != len(names):
            twice = sorted({n for n in names if names.count(n) > 1})
            problems.append(("syncs", f"names must differ (twice: {', '.join(twice)})"))
        if not isinstance(leases, StreamLeases):
            problems.append(("leases", "must be StreamLeases (try_acquire, release, check)"))
        elif not _positive(getattr(leases, "heartbeat", None)):
            problems.append(("leases", "heartbeat must be a finite number of seconds > 0"))
        if not (_positive(every) or every == 0):
            problems.append(("every", "must be a finite number of seconds >= 0"))
        if not _positive(poll):
            problems.append(("poll", "must be a finite number of seconds > 0"))
        if problems:
            raise config_error("SyncWorker", problems)
        assert isinstance(leases, StreamLeases)
        self.syncs = tuple(syncs)
        self.leases: StreamLeases = leases
        self.every = every
        self.poll = poll
        self.worker_id = worker_id or f"{socket.gethostname()}:{os.getpid()}"
        self.on_run = on_run
        self.runs = 0
        """Stream runs this worker did."""

    def __repr__(self) -> str:
        return f"SyncWorker(worker_id={self.worker_id!r}, streams={len(self.syncs)})"

    async def marks(self) -> dict[str, int]:
        """The last round each stream was run in (0: never), by sync name."""
        found: dict[str, int] = {}
        stores: dict[int, list[StreamSync]] = {}
        for sync in self.syncs:  # one read per store (syncs usually share one)
            stores.setdefault(id(sync.state), []).append(sync)
        for group in stores.values():
            entries = await group[0].state.get_many([_mark_key(s) for s in group])
            for sync in group:
                entry = entries.get(_mark_key(sync))
                found[sync.name] = int(entry.get("round", 0)) if entry else 0
        return found

    async def run(self, *, until_round: int | None = None) -> int:
        """Work on rounds until round ``until_round`` is complete (None: for ever); the
        last round complete. Raises what ``leases.check()`` raises when the leases are
        lost, and the state store's errors."""
        work = asyncio.ensure_future(self._rounds(until_round))
        beat = asyncio.ensure_future(self._heartbeat())
        try:
            await asyncio.wait({work, beat}, return_when=asyncio.FIRST_COMPLETED)
            if beat.done():  # it only ends by raising: the leases are lost
                work.cancel()
                with contextlib.suppress(asyncio.CancelledError, Exception):
                    await work
                beat.result()
            return work.result()
        finally:
            for task in (work, beat):
                task.cancel()
            for task in (work, beat):
                with contextlib.suppress(asyncio.CancelledError, Exception):
                    await task

    async def _heartbeat(self) -> None:
        while True:
            await asyncio.sleep(self.leases.heartbeat)
            try:
                await self.leases.check()
            except Exception:
                logger.error("worker %s: its stream leases are lost; stopping", self.worker_id)
                raise

    async def _rounds(self, until_round: int | None) -> int:
        complete = min((await self.marks()).values())
        while until_round is None or complete < until_round:
            started = time.monotonic()
            complete = await self._round(complete + 1)
            if until_round is not None and complete >= until_round:
                break
            await asyncio.sleep(max(0.0, self.every - (time.monotonic() - started)))
        return complete

    async def _round(self, number: int) -> int:
        """Run (or wait for others to run) every stream not marked ``number`` yet; the
        lowest mark once none is left below ``number``."""
        while True:
            marks = await self.marks()
            pending = [s for s in self.syncs if marks[s.name] < number]
            if not pending:
                return min(marks.values())
            ran = False
            for sync in random.sample(pending, len(pending)):  # spread workers apart
                ran = await self._run_leased(sync, number) or ran
            if not ran:
                await asyncio.sleep(self.poll)

    async def _run_leased(self, sync: StreamSync, number: int) -> bool:
        if not await self.leases.try_acquire(sync.name):
            return False
        try:
            entry = await sync.state.get(_mark_key(sync))  # again, under the lease
            if entry and int(entry.get("round", 0)) >= number:
                return False
            await self._run_one(sync, number)
            return True
        finally:
            await self.leases.release(sync.name)

    async def _run_one(self, sync: StreamSync, number: int) -> None:
        started = _now()
        report: StreamReport | None = None
        error: Exception | None = None
        try:
            report = await sync.run()
        except Exception as exc:  # the stream is tried again next round
            error = exc
            logger.warning(
                "worker %s: stream %s failed in round %d (%s: %s); it runs again next round",
                self.worker_id, sync.name, number, type(exc).__name__, exc,
            )  # fmt: skip
        finished = _now()
        self.runs += 1
        if self.on_run is not None:
            # Before the mark: a worker that dies in between has its run done again, so
            # on_run sees every run at least once.
            run = StreamRun(sync.name, number, self.worker_id, started, finished, report, error)
            try:
                if inspect.isawaitable(result := self.on_run(run)):
                    await result
            except Exception as exc:
                logger.warning(
                    "worker %s: on_run failed for stream %s (%s: %s)",
                    self.worker_id, sync.name, type(exc).__name__, exc,
                )  # fmt: skip
        mark = {"round": number, "worker": self.worker_id, "at": finished.isoformat()}
        if error is not None:
            mark["error"] = type(error).__name__
        await sync.state.put(_mark_key(sync), mark)


def _mark_key(sync: StreamSync) -> str:
    return f"{sync.name}:round"


def _positive(value: object) -> bool:
    return (
        isinstance(value, (int, float))
        and not isinstance(value, bool)
        and math.isfinite(value)
        and value > 0
    )


def _now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)
