"""Per-call overhead of connector-core's operation road on a no-op operation.

The road (``BaseConnector.run``): rate limiter (a token bucket of very high rate) ->
circuit breaker -> call with timeout -> error translation -> retry policy -> stats.
It is measured against awaiting the same no-op coroutine directly, in the same
run, in interleaved rounds; medians are printed. The goals: at most 5 us per call with
tracing off and at most 6 us with the OpenTelemetry API installed but no SDK (issue 14).

Three road variants are measured:

* ``road (otel api, no sdk)``: OpenTelemetry API importable but no SDK provider
  configured (the usual state of a library user), so spans are non-recording;
* ``road (tracing off)``: the connector's tracer disabled (``_tracer = None``);
* ``road (bare)``: no limiter, breaker or timeout, tracing off (the floor).

Run: ``uv run --no-sync python benchmarks/core_overhead.py [--quick]``.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import time
from collections.abc import Awaitable, Callable
from typing import ClassVar

from connector_core import (
    BaseConnector,
    CircuitBreaker,
    ConnectorConfig,
    RetryPolicy,
    TokenBucket,
)


class NoopConfig(ConnectorConfig):
    """A config with nothing of its own."""


class NoopConnector(BaseConnector[NoopConfig]):
    name: ClassVar[str] = "noop"
    version: ClassVar[str] = "0.0.0"
    config_class: ClassVar[type[ConnectorConfig]] = NoopConfig

    async def _connect(self) -> None:
        return None

    async def _disconnect(self) -> None:
        return None

    async def _ping(self) -> None:
        return None


async def noop() -> int:
    return 1


def full_road(*, tracing: bool) -> NoopConnector:
    connector = NoopConnector(
        NoopConfig(timeout=30.0),
        retry_policy=RetryPolicy(max_attempts=3),
        rate_limiter=TokenBucket(rate=1e12, burst=1_000_000),
        circuit_breaker=CircuitBreaker(failure_threshold=5, cooldown=30.0),
    )
    if not tracing:
        connector._tracer = None
    return connector


def bare_road() -> NoopConnector:
    connector = NoopConnector(
        NoopConfig(timeout=None, circuit_breaker=None), rate_limiter=None, circuit_breaker=None
    )
    connector._tracer = None
    return connector


async def time_direct(n: int) -> float:
    fn = noop
    start = time.perf_counter()
    for _ in range(n):
        await fn()
    return (time.perf_counter() - start) / n


async def time_road(connector: NoopConnector, n: int) -> float:
    run = connector.run
    fn = noop
    start = time.perf_counter()
    for _ in range(n):
        await run("noop", fn, idempotent=True)
    return (time.perf_counter() - start) / n


async def main(rounds: int, calls: int) -> None:
    roads: dict[str, NoopConnector] = {
        "road (otel api, no sdk)": full_road(tracing=True),
        "road (tracing off)": full_road(tracing=False),
        "road (bare)": bare_road(),
    }
    for connector in roads.values():
        await connector.connect()
    tracer = roads["road (otel api, no sdk)"]._tracer
    print(f"tracer with otel api installed: {type(tracer).__name__ if tracer else None}")

    samples: dict[str, list[float]] = {"direct": [], **{k: [] for k in roads}}

    def road_runner(connector: NoopConnector) -> Callable[[], Awaitable[float]]:
        return lambda: time_road(connector, calls)

    runners: dict[str, Callable[[], Awaitable[float]]] = {
        "direct": lambda: time_direct(calls),
        **{name: road_runner(connector) for name, connector in roads.items()},
    }
    # Warm up every variant once, then interleave the rounds so drift hits all alike.
    for runner in runners.values():
        await runner()
    for _ in range(rounds):
        for name, runner in runners.items():
            samples[name].append(await runner())

    direct = statistics.median(samples["direct"])
    print(f"{rounds} rounds x {calls} calls, medians per call:")
    print(f"  {'direct await':<26} {direct * 1e6:8.3f} us")
    for name in roads:
        med = statistics.median(samples[name])
        overhead = (med - direct) * 1e6
        print(
            f"  {name:<26} {med * 1e6:8.3f} us   overhead {overhead:7.3f} us"
            f"   ratio {med / direct:6.1f}x"
        )
    with_otel = statistics.median(samples["road (otel api, no sdk)"])
    without = statistics.median(samples["road (tracing off)"])
    print(f"  span cost (otel api, no sdk, vs tracing off): {(with_otel - without) * 1e6:.3f} us")
    for label, value, goal in (
        ("tracing off", without, 5.0),
        ("otel api, no sdk", with_otel, 6.0),
    ):
        overhead = (value - direct) * 1e6
        verdict = "met" if overhead <= goal else "NOT met"
        print(f"goal <= {goal:g} us overhead ({label}): {verdict} ({overhead:.2f} us)")
    for connector in roads.values():
        await connector.disconnect()


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="few rounds, for smoke runs")
    parser.add_argument("--rounds", type=int, default=None)
    parser.add_argument("--calls", type=int, default=None)
    args = parser.parse_args()
    rounds = args.rounds or (3 if args.quick else 15)
    calls = args.calls or (2_000 if args.quick else 20_000)
    asyncio.run(main(rounds, calls))
