"""Per-connector counters and latency percentiles, cheap to record, typed to read."""

from __future__ import annotations

from collections import Counter
from typing import ClassVar

from pydantic import BaseModel, ConfigDict

from connector_core._errors import ErrorCode


class LatencySummary(BaseModel):
    """Latency percentiles in seconds over the most recent calls (a sliding window)."""

    model_config = ConfigDict(frozen=True)

    count: int = 0
    p50: float | None = None
    p90: float | None = None
    p99: float | None = None
    max: float | None = None


class OperationStats(BaseModel):
    model_config = ConfigDict(frozen=True)

    calls: int = 0
    successes: int = 0
    failures: int = 0
    failures_by_code: dict[ErrorCode, int] = {}
    retries: int = 0
    latency: LatencySummary = LatencySummary()


class StatsSnapshot(BaseModel):
    """A point-in-time copy of a connector's stats."""

    model_config = ConfigDict(frozen=True)

    connector: str
    calls: int = 0
    successes: int = 0
    failures: int = 0
    failures_by_code: dict[ErrorCode, int] = {}
    retries: int = 0
    reconnects: int = 0
    rate_limit_waits: int = 0
    rate_limit_wait_seconds: float = 0.0
    latency: LatencySummary = LatencySummary()
    operations: dict[str, OperationStats] = {}


class _OperationRecorder:
    __slots__ = (
        "calls",
        "failures",
        "failures_by_code",
        "latencies",
        "pos",
        "retries",
        "successes",
    )

    WINDOW: ClassVar[int] = 1024

    def __init__(self) -> None:
        self.calls = 0
        self.successes = 0
        self.failures = 0
        self.retries = 0
        self.failures_by_code: Counter[ErrorCode] = Counter()
        self.latencies: list[float] = []
        self.pos = 0

    def add_latency(self, seconds: float) -> None:
        lat = self.latencies
        if len(lat) < self.WINDOW:
            lat.append(seconds)
        else:
            lat[self.pos] = seconds
            self.pos = (self.pos + 1) % self.WINDOW


def _summary(latencies: list[float]) -> LatencySummary:
    if not latencies:
        return LatencySummary()
    ordered = sorted(latencies)
    n = len(ordered)

    def pct(p: float) -> float:
        return ordered[min(n - 1, int(p * n))]

    return LatencySummary(count=n, p50=pct(0.50), p90=pct(0.90), p99=pct(0.99), max=ordered[-1])


class StatsRecorder:
    """Mutable recorder behind :class:`StatsSnapshot`; the hot path only bumps counters."""

    __slots__ = ("_ops", "connector", "rate_limit_wait_seconds", "rate_limit_waits", "reconnects")

    def __init__(self, connector: str) -> None:
        self.connector = connector
        self._ops: dict[str, _OperationRecorder] = {}
        self.reconnects = 0
        self.rate_limit_waits = 0
        self.rate_limit_wait_seconds = 0.0

    def operation(self, name: str) -> _OperationRecorder:
        rec = self._ops.get(name)
        if rec is None:
            rec = self._ops[name] = _OperationRecorder()
        return rec

    def record_rate_limit_wait(self, seconds: float) -> None:
        self.rate_limit_waits += 1
        self.rate_limit_wait_seconds += seconds

    def reset(self) -> None:
        self._ops.clear()
        self.reconnects = 0
        self.rate_limit_waits = 0
        self.rate_limit_wait_seconds = 0.0

    def snapshot(self) -> StatsSnapshot:
        operations: dict[str, OperationStats] = {}
        all_latencies: list[float] = []
        total_codes: Counter[ErrorCode] = Counter()
        for name, rec in self._ops.items():
            operations[name] = OperationStats(
                calls=rec.calls,
                successes=rec.successes,
                failures=rec.failures,
                failures_by_code=dict(rec.failures_by_code),
                retries=rec.retries,
                latency=_summary(rec.latencies),
            )
            all_latencies.extend(rec.latencies)
            total_codes.update(rec.failures_by_code)
        return StatsSnapshot(
            connector=self.connector,
            calls=sum(o.calls for o in operations.values()),
            successes=sum(o.successes for o in operations.values()),
            failures=sum(o.failures for o in operations.values()),
            failures_by_code=dict(total_codes),
            retries=sum(o.retries for o in operations.values()),
            reconnects=self.reconnects,
            rate_limit_waits=self.rate_limit_waits,
            rate_limit_wait_seconds=self.rate_limit_wait_seconds,
            latency=_summary(all_latencies),
            operations=operations,
        )
