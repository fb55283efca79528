"""BaseConnector: the lifecycle and the one road every operation takes."""

from __future__ import annotations

import asyncio
import logging
import random
from collections.abc import Callable
from typing import Any

import pytest
from _core_support import (
    SECRET,
    EventLog,
    FakeClock,
    Script,
    ScriptedConfig,
    ScriptedConnector,
)
from pydantic import SecretStr

from connector_core import (
    USE_DEFAULT,
    AuthenticationError,
    BaseConnector,
    CircuitBreaker,
    CircuitOpenError,
    CircuitState,
    ConfigError,
    ConnectionFailedError,
    ConnectionState,
    ConnectorConfig,
    ConnectorError,
    ConnectorTimeoutError,
    ErrorCode,
    EventInfo,
    LifecycleEvent,
    NotConnectedError,
    NotFoundError,
    PermissionDeniedError,
    QueryError,
    RateLimitedError,
    RetryPolicy,
    ServiceUnavailableError,
    TokenBucket,
)
from connector_testing import MemoryConfig, MemoryConnector, exception_texts

Make = Callable[..., ScriptedConnector]


def policy(**kwargs: Any) -> RetryPolicy:
    params: dict[str, Any] = {"max_attempts": 4, "deadline": None, "rng": random.Random(7)}
    params.update(kwargs)
    return RetryPolicy(**params)


async def connected(connector: ScriptedConnector) -> ScriptedConnector:
    await connector.connect()
    return connector


def state_of(connector: ScriptedConnector) -> ConnectionState:
    return connector.state  # a call, so mypy does not narrow the property across awaits


def circuit_state(breaker: CircuitBreaker) -> CircuitState:
    return breaker.state


def unavailable() -> ServiceUnavailableError:
    return ServiceUnavailableError("503 from upstream")


# -- construction --------------------------------------------------------------------------


def test_wrong_config_type_is_a_config_error() -> None:
    with pytest.raises(ConfigError, match="ScriptedConnector needs a ScriptedConfig"):
        ScriptedConnector(MemoryConfig())  # type: ignore[arg-type]


def test_resilience_is_built_from_the_config() -> None:
    connector = ScriptedConnector(
        ScriptedConfig(
            retry={"max_attempts": 6, "jitter": False},
            rate_limit={"rate": 3, "burst": 2},
            circuit_breaker={"failure_threshold": 4, "cooldown": 9},
        )
    )
    assert connector.retry_policy.max_attempts == 6
    assert connector.retry_policy.jitter is False
    assert connector.rate_limiter is not None
    assert (connector.rate_limiter.rate, connector.rate_limiter.burst) == (3.0, 2)
    assert connector.circuit_breaker is not None
    assert connector.circuit_breaker.failure_threshold == 4
    assert connector.circuit_breaker.cooldown == 9
    assert connector.circuit_breaker.name == "scripted"
    bare = ScriptedConnector(ScriptedConfig(circuit_breaker=None))
    assert bare.rate_limiter is None
    assert bare.circuit_breaker is None


def test_from_url_and_from_env_build_the_connector(monkeypatch: pytest.MonkeyPatch) -> None:
    connector = ScriptedConnector.from_url("scripted://h:1/db", timeout=3)
    assert (connector.config.port, connector.config.timeout) == (1, 3)
    monkeypatch.setenv("SCR_TEST_PORT", "77")
    assert ScriptedConnector.from_env("SCR_TEST_").config.port == 77


def test_repr_and_str_never_show_the_secret() -> None:
    connector = ScriptedConnector(ScriptedConfig(user="app", password=SecretStr(SECRET)))
    assert SECRET not in repr(connector)
    assert SECRET not in str(connector)
    assert repr(connector) == (
        "ScriptedConnector('scripted://app:***@localhost:5000', state=disconnected)"
    )


# -- the road: retries ---------------------------------------------------------------------


async def test_transient_errors_of_idempotent_operations_are_retried(
    make_connector: Make, sleeps: list[float]
) -> None:
    connector = await connected(make_connector(retry_policy=policy(initial_delay=0.5)))
    op = Script(unavailable(), unavailable(), result=42)
    assert await connector.run("get", op, idempotent=True) == 42
    assert op.calls == 3
    assert len(sleeps) == 2
    assert 0 <= sleeps[0] <= 0.5
    assert 0 <= sleeps[1] <= 1.0
    stats = connector.stats
    assert (stats.calls, stats.successes, stats.failures, stats.retries) == (1, 1, 2, 2)
    assert stats.failures_by_code == {ErrorCode.UNAVAILABLE: 2}


async def test_attempts_are_bounded_by_max_attempts(
    make_connector: Make, sleeps: list[float]
) -> None:
    connector = await connected(make_connector(retry_policy=policy(max_attempts=3)))
    op = Script(*(unavailable() for _ in range(10)))
    with pytest.raises(ServiceUnavailableError):
        await connector.run("get", op, idempotent=True)
    assert op.calls == 3
    assert len(sleeps) == 2
    assert connector.stats.retries == 2


async def test_memory_connector_retries_injected_failures(clock: FakeClock) -> None:
    sleeps = clock.sleeps
    memory = MemoryConnector(
        MemoryConfig(store="base-retry"), retry_policy=policy(), clock=clock, sleep=clock.sleep
    )
    async with memory:
        await memory.write("things", [{"id": 1}])
        calls_before = memory.calls
        memory.fail_next(unavailable(), RateLimitedError("slow", retry_after=0.25))
        assert await memory.sample("things") == [{"id": 1}]
        assert memory.calls - calls_before == 3
        assert sleeps[-1] == 0.25
    MemoryConnector.reset_store("base-retry")


async def test_non_idempotent_operation_is_tried_once(
    make_connector: Make, sleeps: list[float]
) -> None:
    connector = await connected(make_connector(retry_policy=policy()))
    op = Script(unavailable(), result="never")
    with pytest.raises(ServiceUnavailableError):
        await connector.run("insert", op)  # idempotent defaults to False
    assert op.calls == 1
    assert sleeps == []
    assert connector.stats.retries == 0


async def test_retry_false_disables_retries(make_connector: Make, sleeps: list[float]) -> None:
    connector = await connected(make_connector(retry_policy=policy()))
    op = Script(unavailable(), result="never")
    with pytest.raises(ServiceUnavailableError):
        await connector.run("get", op, idempotent=True, retry=False)
    assert op.calls == 1


@pytest.mark.parametrize(
    "error",
    [
        AuthenticationError("token expired", transient=True),
        PermissionDeniedError("read-only user", transient=True),
        NotFoundError("no such table"),
        QueryError("syntax error"),
    ],
    ids=lambda e: type(e).__name__,
)
async def test_auth_and_non_transient_errors_are_tried_once(
    make_connector: Make, sleeps: list[float], error: ConnectorError
) -> None:
    connector = await connected(make_connector(retry_policy=policy()))
    op = Script(error, result="never")
    with pytest.raises(type(error)) as info:
        await connector.run("get", op, idempotent=True)
    assert info.value is error
    assert op.calls == 1
    assert sleeps == []


async def test_retry_after_is_waited_exactly(make_connector: Make, sleeps: list[float]) -> None:
    connector = await connected(make_connector(retry_policy=policy()))
    op = Script(RateLimitedError("429", retry_after=2.5), RateLimitedError("429", retry_after=0))
    assert await connector.run("get", op, idempotent=True) == "ok"
    assert sleeps == [2.5, 0.0]


async def test_retry_after_beyond_max_retry_after_is_not_waited(
    make_connector: Make, sleeps: list[float]
) -> None:
    connector = await connected(make_connector(retry_policy=policy(max_retry_after=10)))
    op = Script(RateLimitedError("429", retry_after=3600))
    with pytest.raises(RateLimitedError):
        await connector.run("get", op, idempotent=True)
    assert op.calls == 1
    assert sleeps == []


async def test_deadline_stops_retries(make_connector: Make, clock: FakeClock) -> None:
    retry = policy(max_attempts=100, initial_delay=3.0, multiplier=1.0, jitter=False, deadline=10)
    connector = await connected(make_connector(retry_policy=retry))
    op = Script(*(unavailable() for _ in range(50)))
    with pytest.raises(ServiceUnavailableError):
        await connector.run("get", op, idempotent=True)
    # Failures at t=0, 3, 6 are retried (next wait ends before 10); the one at t=9 is not.
    assert op.calls == 4
    assert clock.sleeps == [3.0, 3.0, 3.0]


# -- the road: reconnect -------------------------------------------------------------------


async def test_reconnects_after_a_connection_failure(
    make_connector: Make, sleeps: list[float]
) -> None:
    connector = await connected(make_connector(retry_policy=policy()))
    log = EventLog(connector)
    op = Script(ConnectionResetError("peer reset"), result="back")
    assert await connector.run("get", op, idempotent=True) == "back"
    assert connector.connect_calls == 2
    assert connector.disconnect_calls == 1  # the dead connection was closed first
    assert connector.stats.reconnects == 1
    assert log.events == [LifecycleEvent.ERROR, LifecycleEvent.RETRY, LifecycleEvent.RECONNECT]
    assert connector.is_connected


async def test_non_idempotent_failure_reconnects_before_the_next_call(make_connector: Make) -> None:
    connector = await connected(make_connector(retry_policy=policy()))
    with pytest.raises(ConnectionFailedError):
        await connector.run("insert", Script(ConnectionFailedError("lost")))
    assert connector.connect_calls == 1
    assert await connector.run("insert", Script(result="done")) == "done"
    assert connector.connect_calls == 2
    assert connector.stats.reconnects == 1


async def test_failed_reconnect_is_retried_then_succeeds(
    make_connector: Make, sleeps: list[float]
) -> None:
    connector = await connected(make_connector(retry_policy=policy()))
    connector.connect_script = [ConnectionRefusedError("still down")]
    op = Script(ConnectionFailedError("lost"), result="ok")
    assert await connector.run("get", op, idempotent=True) == "ok"
    assert connector.connect_calls == 3  # first connect, failed reconnect, good reconnect
    assert op.calls == 2
    assert connector.stats.reconnects == 1
    assert connector.stats.failures_by_code == {ErrorCode.CONNECTION_FAILED: 2}


async def test_authentication_failure_on_reconnect_is_not_retried(
    make_connector: Make, sleeps: list[float]
) -> None:
    connector = await connected(make_connector(retry_policy=policy(max_attempts=10)))
    connector.connect_script = [AuthenticationError("password was rotated")] * 5
    op = Script(ConnectionFailedError("lost"), result="never")
    with pytest.raises(AuthenticationError):
        await connector.run("get", op, idempotent=True)
    assert connector.connect_calls == 2  # the first connect and one reconnect: no retry
    assert op.calls == 1


# -- the road: circuit breaker, rate limiter, timeout --------------------------------------


async def test_circuit_opens_fails_fast_and_half_opens(
    make_connector: Make, clock: FakeClock
) -> None:
    breaker = CircuitBreaker(failure_threshold=2, cooldown=5.0, clock=clock)
    connector = await connected(
        make_connector(retry_policy=policy(max_attempts=1), circuit_breaker=breaker)
    )
    failing = Script(*(unavailable() for _ in range(5)))
    for _ in range(2):
        with pytest.raises(ServiceUnavailableError):
            await connector.run("get", failing, idempotent=True)
    assert circuit_state(breaker) is CircuitState.OPEN
    clock.advance(2.0)
    with pytest.raises(CircuitOpenError) as info:
        await connector.run("get", failing, idempotent=True)
    assert failing.calls == 2  # failed fast: the operation was not called
    assert info.value.retry_after == pytest.approx(3.0)
    assert connector.stats.failures_by_code[ErrorCode.CIRCUIT_OPEN] == 1
    clock.advance(3.0)
    assert await connector.run("get", Script(result="probe ok"), idempotent=True) == "probe ok"
    assert circuit_state(breaker) is CircuitState.CLOSED


async def test_circuit_open_error_is_not_retried(make_connector: Make, clock: FakeClock) -> None:
    breaker = CircuitBreaker(failure_threshold=1, cooldown=5.0, clock=clock)
    connector = await connected(
        make_connector(retry_policy=policy(max_attempts=5), circuit_breaker=breaker)
    )
    breaker.record_failure()
    op = Script(result="never")
    with pytest.raises(CircuitOpenError):
        await connector.run("get", op, idempotent=True)
    assert op.calls == 0
    assert connector.stats.retries == 0


async def test_only_unhealthy_failures_count_toward_the_circuit(
    make_connector: Make, clock: FakeClock
) -> None:
    breaker = CircuitBreaker(failure_threshold=2, cooldown=5.0, clock=clock)
    connector = await connected(make_connector(circuit_breaker=breaker))
    for _ in range(5):
        with pytest.raises(NotFoundError):
            await connector.run("get", Script(NotFoundError("no row")))
    assert circuit_state(breaker) is CircuitState.CLOSED
    with pytest.raises(ConnectorTimeoutError):
        await connector.run("get", Script(ConnectorTimeoutError("slow")))
    with pytest.raises(ServiceUnavailableError):
        await connector.run("get", Script(unavailable()))
    assert circuit_state(breaker) is CircuitState.OPEN


async def test_cancelled_probe_frees_its_half_open_slot(
    make_connector: Make, clock: FakeClock
) -> None:
    breaker = CircuitBreaker(failure_threshold=1, cooldown=5.0, clock=clock)
    connector = await connected(make_connector(circuit_breaker=breaker))
    breaker.record_failure()
    clock.advance(5.0)
    started = asyncio.Event()

    async def hang() -> None:
        started.set()
        await asyncio.Event().wait()

    task = asyncio.create_task(connector.run("get", hang, idempotent=True))
    await started.wait()
    with pytest.raises(CircuitOpenError):  # the only probe slot is taken
        await connector.run("get", Script())
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert await connector.run("get", Script(result="probe")) == "probe"
    assert circuit_state(breaker) is CircuitState.CLOSED


async def test_rate_limiter_is_applied(make_connector: Make, clock: FakeClock) -> None:
    bucket = TokenBucket(rate=10, burst=2, clock=clock, sleep=clock.sleep)
    connector = await connected(make_connector(rate_limiter=bucket))
    for _ in range(4):
        await connector.run("get", Script())
    assert clock.sleeps == [pytest.approx(0.1), pytest.approx(0.1)]
    stats = connector.stats
    assert stats.rate_limit_waits == 2
    assert stats.rate_limit_wait_seconds == pytest.approx(0.2)


async def test_timeout_raises_connector_timeout_error(make_connector: Make) -> None:
    connector = await connected(
        make_connector(
            retry_policy=policy(max_attempts=2, initial_delay=0), config={"timeout": 0.02}
        )
    )
    calls = 0

    async def slow() -> None:
        nonlocal calls
        calls += 1
        await asyncio.sleep(5)

    with pytest.raises(ConnectorTimeoutError, match=r"get timed out after 0\.02s") as info:
        await connector.run("get", slow, idempotent=True)
    assert isinstance(info.value.__cause__, TimeoutError)
    assert info.value.connector == "scripted"
    assert calls == 2  # a timeout is transient: retried once
    assert connector.stats.failures_by_code == {ErrorCode.TIMEOUT: 2}


async def test_per_call_timeout_overrides_the_config(make_connector: Make) -> None:
    connector = await connected(make_connector(config={"timeout": 0.001}))

    async def slowish() -> str:
        await asyncio.sleep(0.02)
        return "done"

    assert await connector.run("get", slowish, timeout=None) == "done"
    with pytest.raises(ConnectorTimeoutError):
        await connector.run("get", slowish, timeout=0.005)


async def test_a_finished_call_leaves_no_timer_behind(make_connector: Make) -> None:
    connector = await connected(make_connector(config={"timeout": 0.01}))
    assert await connector.run("get", Script(result=1)) == 1
    await asyncio.sleep(0.03)  # a stray timer would cancel this task here
    task = asyncio.current_task()
    assert task is not None
    assert task.cancelling() == 0


async def test_outside_cancellation_is_not_turned_into_a_timeout(make_connector: Make) -> None:
    connector = await connected(make_connector(config={"timeout": 10}))
    started = asyncio.Event()

    async def hang() -> None:
        started.set()
        await asyncio.sleep(60)

    task = asyncio.create_task(connector.run("get", hang, idempotent=True))
    await started.wait()
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert task.cancelled()
    assert connector.stats.failures == 0


async def test_timeout_inside_an_outer_timeout_belongs_to_the_inner(make_connector: Make) -> None:
    connector = await connected(make_connector(config={"timeout": 0.01}))

    async def hang() -> None:
        await asyncio.sleep(60)

    async with asyncio.timeout(30):
        with pytest.raises(ConnectorTimeoutError):
            await connector.run("get", hang)
    task = asyncio.current_task()
    assert task is not None
    assert task.cancelling() == 0


# -- errors: translation, chaining, secrets -------------------------------------------------


class DriverError(Exception):
    pass


async def test_driver_errors_are_translated_and_chained(make_connector: Make) -> None:
    connector = await connected(make_connector(retry_policy=policy(max_attempts=1)))
    connector.translations[DriverError] = lambda exc: QueryError(f"translated: {exc}")
    cause = DriverError("column missing")
    with pytest.raises(QueryError, match="translated: column missing") as info:
        await connector.run("select", Script(cause))
    assert info.value.__cause__ is cause
    assert info.value.connector == "scripted"

    oserror = ConnectionRefusedError("refused")
    with pytest.raises(ConnectionFailedError, match="ConnectionRefusedError: refused") as info2:
        await connector.run("select", Script(oserror))
    assert info2.value.__cause__ is oserror

    odd = ValueError("weird")
    with pytest.raises(ConnectorError, match="select failed: ValueError: weird") as info3:
        await connector.run("select", Script(odd))
    assert info3.value.code is ErrorCode.UNKNOWN
    assert info3.value.__cause__ is odd


async def test_secrets_are_scrubbed_from_error_messages_events_and_logs(
    make_connector: Make, caplog: pytest.LogCaptureFixture
) -> None:
    connector = await connected(
        make_connector(
            retry_policy=policy(max_attempts=1),
            config={"user": "app", "password": SecretStr(SECRET)},
        )
    )
    log = EventLog(connector)
    with caplog.at_level(logging.DEBUG, logger="connector.scripted"):
        with pytest.raises(ConnectionFailedError) as info:
            await connector.run("get", Script(OSError(f"auth app:{SECRET}@db failed")))
        with pytest.raises(QueryError) as info2:
            await connector.run("get", Script(QueryError(f"bad password {SECRET!r}")))
    for error in (info.value, info2.value):
        assert SECRET not in str(error)
        assert SECRET not in repr(error)
        assert all(SECRET not in str(a) for a in error.args)
    assert "***" in str(info.value)
    assert all(SECRET not in str(i.error) for i in log.infos)
    assert SECRET not in caplog.text
    assert "get attempt 1 failed" in caplog.text


def _whole_chain_text(error: BaseException) -> str:
    """What a logged traceback and a hostile look at the chain would show."""
    return "\n".join(exception_texts(error))


class LeakyDriverError(Exception):
    def __init__(self, message: str, *, query: str) -> None:  # keyword-only: copy fails
        super().__init__(message)
        self.query = query


@pytest.mark.parametrize("where", ["run", "connect", "reconnect"])
async def test_chained_causes_are_scrubbed_everywhere_errors_leave(
    make_connector: Make, where: str
) -> None:
    connector = make_connector(
        retry_policy=policy(max_attempts=1),
        config={"user": "app", "password": SecretStr(SECRET)},
    )
    inner = OSError(f"socket to app:{SECRET}@db reset")
    try:
        try:
            raise inner
        except OSError:
            # A driver error raised while handling another one: context and cause both.
            raise DriverError(f"server said: password {SECRET} rejected") from KeyError(SECRET)
    except DriverError as exc:
        driver = exc
    driver.add_note(f"note with {SECRET}")
    odd = LeakyDriverError("statement failed", query=f"SELECT '{SECRET}'")
    odd.__context__ = driver
    connector.translations[LeakyDriverError] = lambda exc: ConnectionFailedError(
        f"lost: {exc}", details={"nested": {"sql": SECRET}}
    )
    if where == "run":
        await connector.connect()
        with pytest.raises(ConnectionFailedError) as info:
            await connector.run("get", Script(odd))
    elif where == "connect":
        connector.connect_script = [odd]
        with pytest.raises(ConnectionFailedError) as info:
            await connector.connect()
    else:
        await connector.connect()
        with pytest.raises(ConnectionFailedError):
            await connector.run("get", Script(ConnectionResetError("reset")))
        connector.connect_script = [odd]
        with pytest.raises(ConnectionFailedError) as info:
            await connector.run("get", Script(result=1))
    error = info.value
    text = _whole_chain_text(error)
    assert SECRET not in text, text
    assert "***" in text
    # The chain is still there to read: the driver's type, message and links survive.
    assert "LeakyDriverError" in text
    assert "server said: password *** rejected" in text
    assert "socket to app:***@db reset" in text
    assert error.details == {"nested": {"sql": "***"}}


async def test_a_chain_without_secrets_is_left_as_it_was(make_connector: Make) -> None:
    connector = await connected(
        make_connector(retry_policy=policy(max_attempts=1), config={"password": SecretStr(SECRET)})
    )
    cause = DriverError("column missing")
    connector.translations[DriverError] = lambda exc: QueryError(f"translated: {exc}")
    with pytest.raises(QueryError) as info:
        await connector.run("select", Script(cause))
    assert info.value.__cause__ is cause
    assert info.value.__context__ is None  # raised outside the except block


async def test_connect_error_keeps_the_drivers_cause(make_connector: Make) -> None:
    connector = make_connector(retry_policy=policy(max_attempts=1))
    driver = DriverError("FATAL: password authentication failed")
    rejected = AuthenticationError("credentials rejected")
    rejected.__cause__ = driver
    connector.connect_script = [rejected]
    with pytest.raises(AuthenticationError) as info:
        await connector.connect()
    assert info.value is rejected
    assert info.value.__cause__ is driver


async def test_connect_timeout_is_a_connection_failure(make_connector: Make) -> None:
    connector = make_connector(
        retry_policy=policy(max_attempts=1), config={"connect_timeout": 0.01}
    )
    connector.connect_gate = asyncio.Event()  # never set: connect hangs
    with pytest.raises(ConnectionFailedError, match=r"connect timed out after 0\.01s"):
        await connector.connect()
    assert state_of(connector) is ConnectionState.DISCONNECTED


# -- stats ---------------------------------------------------------------------------------


async def test_stats_snapshot(make_connector: Make, sleeps: list[float]) -> None:
    connector = await connected(make_connector(retry_policy=policy()))
    for _ in range(3):
        await connector.run("get", Script(result=1), idempotent=True)
    await connector.run("get", Script(unavailable(), result=1), idempotent=True)
    with pytest.raises(NotFoundError):
        await connector.run("put", Script(NotFoundError("x")))
    stats = connector.stats
    assert stats.connector == "scripted"
    assert (stats.calls, stats.successes, stats.failures, stats.retries) == (5, 4, 2, 1)
    assert stats.failures_by_code == {ErrorCode.UNAVAILABLE: 1, ErrorCode.NOT_FOUND: 1}
    get = stats.operations["get"]
    assert (get.calls, get.successes, get.failures, get.retries) == (4, 4, 1, 1)
    assert stats.operations["put"].failures_by_code == {ErrorCode.NOT_FOUND: 1}
    lat = stats.latency
    assert lat.count == 6  # every attempt that ran: 5 successes... and failures with a time
    assert lat.p50 is not None
    assert lat.p90 is not None
    assert lat.p99 is not None
    assert lat.max is not None
    assert 0 <= lat.p50 <= lat.p90 <= lat.p99 <= lat.max
    with pytest.raises(Exception, match="frozen"):
        stats.calls = 0  # type: ignore[misc]


def test_latency_percentiles() -> None:
    from connector_core._stats import StatsRecorder

    recorder = StatsRecorder("x")
    rec = recorder.operation("op")
    for ms in range(1, 101):
        rec.add_latency(ms / 1000)
    lat = recorder.snapshot().latency
    assert lat.count == 100
    assert lat.p50 == pytest.approx(0.050, abs=0.0011)
    assert lat.p90 == pytest.approx(0.090, abs=0.0011)
    assert lat.p99 == pytest.approx(0.099, abs=0.0011)
    assert lat.max == pytest.approx(0.100)
    for i in range(5000):  # a sliding window: old latencies leave it
        rec.add_latency(1.0 + i / 1e6)
    lat = recorder.snapshot().latency
    assert lat.count == rec.WINDOW
    assert lat.p50 is not None
    assert lat.p50 >= 1.0


async def test_ping_and_run_before_connect_raise_not_connected(make_connector: Make) -> None:
    connector = make_connector()
    with pytest.raises(NotConnectedError, match="call connect"):
        await connector.ping()
    with pytest.raises(NotConnectedError):
        await connector.run("get", Script())
    await connector.connect()
    assert await connector.ping() >= 0
    assert connector.stats.operations["ping"].calls == 1


# -- lifecycle -----------------------------------------------------------------------------


async def test_lifecycle_events_in_order_with_sync_and_async_callbacks(
    make_connector: Make, sleeps: list[float]
) -> None:
    connector = make_connector(retry_policy=policy())
    sync_seen: list[LifecycleEvent] = []
    async_seen: list[LifecycleEvent] = []

    async def async_callback(info: EventInfo) -> None:
        await asyncio.sleep(0)
        async_seen.append(info.event)

    infos: list[EventInfo] = []
    for event in LifecycleEvent:
        connector.on(event, lambda info: sync_seen.append(info.event))
        connector.on(event, async_callback)
        connector.on(event, infos.append)

    await connector.connect()
    await connector.run("get", Script(ConnectionFailedError("lost")), idempotent=True)
    await connector.disconnect()
    await connector._events.drain()

    expected = [
        LifecycleEvent.STARTUP,
        LifecycleEvent.CONNECT,
        LifecycleEvent.ERROR,
        LifecycleEvent.RETRY,
        LifecycleEvent.RECONNECT,
        LifecycleEvent.DISCONNECT,
        LifecycleEvent.STOP,
    ]
    assert sync_seen == expected
    assert sorted(async_seen) == sorted(expected)
    error, retry = infos[2], infos[3]
    assert (error.operation, error.attempt) == ("get", 1)
    assert isinstance(error.error, ConnectionFailedError)
    assert (retry.operation, retry.attempt, retry.error) == ("get", 1, error.error)
    assert retry.delay is not None
    assert retry.delay >= 0
    assert all(i.connector == "scripted" for i in infos)


async def test_failing_callbacks_do_not_break_the_connector(
    make_connector: Make, caplog: pytest.LogCaptureFixture
) -> None:
    connector = make_connector()

    def broken(info: EventInfo) -> None:
        raise RuntimeError("callback bug")

    async def broken_async(info: EventInfo) -> None:
        raise RuntimeError("async callback bug")

    seen: list[LifecycleEvent] = []
    connector.on(LifecycleEvent.CONNECT, broken)
    connector.on(LifecycleEvent.CONNECT, broken_async)
    connector.on(LifecycleEvent.CONNECT, lambda info: seen.append(info.event))
    with caplog.at_level(logging.ERROR, logger="connector.scripted"):
        await connector.connect()
        await connector._events.drain()
    assert connector.is_connected
    assert seen == [LifecycleEvent.CONNECT]
    assert "lifecycle callback for connect failed" in caplog.text
    assert "async lifecycle callback failed" in caplog.text


async def test_unsubscribe(make_connector: Make) -> None:
    connector = make_connector()
    seen: list[EventInfo] = []
    unsubscribe = connector.on(LifecycleEvent.CONNECT, seen.append)
    unsubscribe()
    unsubscribe()  # twice is fine
    await connector.connect()
    assert seen == []


async def test_connect_and_disconnect_are_idempotent(make_connector: Make) -> None:
    connector = make_connector()
    log = EventLog(connector)
    await connector.connect()
    await connector.connect()
    assert connector.connect_calls == 1
    await connector.disconnect()
    await connector.disconnect()
    assert connector.disconnect_calls == 1
    assert log.events == [
        LifecycleEvent.STARTUP,
        LifecycleEvent.CONNECT,
        LifecycleEvent.DISCONNECT,
        LifecycleEvent.STOP,
    ]


async def test_concurrent_connects_share_one_attempt(make_connector: Make) -> None:
    connector = make_connector()
    log = EventLog(connector)
    connector.connect_gate = asyncio.Event()
    tasks = [asyncio.create_task(connector.connect()) for _ in range(5)]
    for _ in range(3):
        await asyncio.sleep(0)
    assert state_of(connector) is ConnectionState.CONNECTING
    connector.connect_gate.set()
    await asyncio.gather(*tasks)
    assert connector.connect_calls == 1
    assert connector.is_connected
    assert log.events.count(LifecycleEvent.STARTUP) == 1
    assert log.events.count(LifecycleEvent.CONNECT) == 1


async def test_concurrent_connects_share_one_failure(make_connector: Make) -> None:
    connector = make_connector(retry_policy=policy(max_attempts=1))
    connector.connect_gate = asyncio.Event()
    connector.connect_script = [AuthenticationError("no")]
    tasks = [asyncio.create_task(connector.connect()) for _ in range(3)]
    await asyncio.sleep(0)
    connector.connect_gate.set()
    results = await asyncio.gather(*tasks, return_exceptions=True)
    assert all(isinstance(r, AuthenticationError) for r in results)
    assert connector.connect_calls == 1


async def test_connect_failure_then_success_on_retry(
    make_connector: Make, sleeps: list[float]
) -> None:
    connector = make_connector(retry_policy=policy())
    log = EventLog(connector)
    connector.connect_script = [ConnectionRefusedError("not yet"), TimeoutError()]
    await connector.connect()
    assert connector.connect_calls == 3
    assert connector.disconnect_calls == 2  # half-open driver state cleaned after each failure
    assert len(sleeps) == 2
    assert log.events == [
        LifecycleEvent.STARTUP,
        LifecycleEvent.ERROR,
        LifecycleEvent.RETRY,
        LifecycleEvent.ERROR,
        LifecycleEvent.RETRY,
        LifecycleEvent.CONNECT,
    ]
    assert all(
        isinstance(i.error, ConnectionFailedError)
        for i in log.infos
        if i.event is LifecycleEvent.ERROR
    )


async def test_connect_auth_failure_is_not_retried(
    make_connector: Make, sleeps: list[float]
) -> None:
    connector = make_connector(retry_policy=policy())
    connector.connect_script = [AuthenticationError("bad password")]
    with pytest.raises(AuthenticationError):
        await connector.connect()
    assert connector.connect_calls == 1
    assert sleeps == []
    assert state_of(connector) is ConnectionState.DISCONNECTED
    await connector.connect()  # a later connect starts afresh
    assert connector.is_connected


async def test_disconnect_during_an_in_flight_connect(make_connector: Make) -> None:
    connector = make_connector()
    log = EventLog(connector)
    connector.connect_gate = asyncio.Event()
    connecting = asyncio.create_task(connector.connect())
    for _ in range(3):
        await asyncio.sleep(0)
    assert state_of(connector) is ConnectionState.CONNECTING
    await connector.disconnect()
    with pytest.raises(NotConnectedError, match="disconnect"):
        await connecting  # the caller learns why, and is not itself cancelled
    assert not connecting.cancelled()
    assert state_of(connector) is ConnectionState.DISCONNECTED
    assert connector.disconnect_calls == 1  # the half-made connection was closed
    assert LifecycleEvent.CONNECT not in log.events
    connector.connect_gate.set()
    await connector.connect()  # and the connector is usable again
    assert connector.is_connected


async def test_async_with_disconnects_on_error(make_connector: Make) -> None:
    connector = make_connector()

    async def use() -> None:
        async with connector:
            assert connector.is_connected
            raise RuntimeError("boom")

    with pytest.raises(RuntimeError, match="boom"):
        await use()
    assert state_of(connector) is ConnectionState.DISCONNECTED
    assert connector.disconnect_calls == 1


async def test_async_with_cancelled_while_connecting_leaves_nothing_open(
    make_connector: Make,
) -> None:
    connector = make_connector()
    connector.connect_gate = asyncio.Event()

    async def use() -> None:
        async with connector:
            await asyncio.sleep(60)

    task = asyncio.create_task(use())
    await asyncio.sleep(0.01)
    assert state_of(connector) is ConnectionState.CONNECTING
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    connector.connect_gate.set()
    for _ in range(10):
        await asyncio.sleep(0)
    assert state_of(connector) is ConnectionState.DISCONNECTED
    assert connector.connect_calls == connector.disconnect_calls


async def test_check_reports_ok_and_failure(make_connector: Make) -> None:
    connector = make_connector(retry_policy=policy(max_attempts=1))
    result = await connector.check()
    assert result.ok
    assert result.connector == "scripted"
    assert result.latency is not None
    assert result.latency >= 0
    assert not connector.is_connected  # check() leaves things as it found them
    connector.connect_script = [AuthenticationError("nope")]
    failed = await connector.check()
    assert not failed.ok
    assert failed.error_code is ErrorCode.AUTHENTICATION
    assert failed.error is not None
    assert "nope" in failed.error


async def test_disconnect_swallows_driver_errors(make_connector: Make) -> None:
    class BadClose(ScriptedConnector):
        async def _disconnect(self) -> None:
            raise OSError("already closed")

    connector = BadClose(ScriptedConfig())
    log = EventLog(connector)
    await connector.connect()
    await connector.disconnect()
    assert state_of(connector) is ConnectionState.DISCONNECTED
    assert LifecycleEvent.ERROR in log.events
    assert log.events[-2:] == [LifecycleEvent.DISCONNECT, LifecycleEvent.STOP]


def test_base_connector_is_abstract() -> None:
    with pytest.raises(TypeError):
        BaseConnector(ConnectorConfig())  # type: ignore[abstract]


# -- one retry road: per-call rules and policies, injected clock and sleep -----------------


async def test_retry_on_retries_what_it_accepts_even_if_not_idempotent(
    make_connector: Make, sleeps: list[float]
) -> None:
    connector = await connected(make_connector(retry_policy=policy()))
    op = Script(RateLimitedError("429", retry_after=1.5), result="sent")
    result = await connector.run(
        "post", op, retry_on=lambda error: isinstance(error, RateLimitedError)
    )
    assert result == "sent"
    assert op.calls == 2
    assert sleeps == [1.5]
    assert connector.stats.operations["post"].retries == 1


async def test_retry_on_replaces_the_idempotent_rule(
    make_connector: Make, sleeps: list[float]
) -> None:
    connector = await connected(make_connector(retry_policy=policy()))
    op = Script(unavailable(), result="never")
    with pytest.raises(ServiceUnavailableError):
        await connector.run("get", op, idempotent=True, retry_on=lambda error: False)
    assert op.calls == 1
    assert sleeps == []


async def test_retry_on_never_retries_authentication_errors(
    make_connector: Make, sleeps: list[float]
) -> None:
    connector = await connected(make_connector(retry_policy=policy()))
    op = Script(AuthenticationError("expired", transient=True), result="never")
    with pytest.raises(AuthenticationError):
        await connector.run("get", op, retry_on=lambda error: True)
    assert op.calls == 1


async def test_a_per_call_policy_replaces_the_connectors(
    make_connector: Make, sleeps: list[float]
) -> None:
    connector = await connected(
        make_connector(retry_policy=policy(max_attempts=2), circuit_breaker=None)
    )
    op = Script(*(unavailable() for _ in range(5)), result="late")
    wide = policy(max_attempts=10, initial_delay=0.2, multiplier=1.0, jitter=False)
    assert await connector.run("get", op, idempotent=True, retry_policy=wide) == "late"
    assert sleeps == [0.2] * 5
    with pytest.raises(ServiceUnavailableError):
        await connector.run("get", Script(*(unavailable() for _ in range(5))), idempotent=True)
    assert len(sleeps) == 6  # the connector's own policy: one retry


async def test_the_limiter_and_breaker_built_from_config_use_the_injected_clock(
    make_connector: Make, clock: FakeClock
) -> None:
    connector = await connected(
        make_connector(
            retry_policy=policy(max_attempts=1),
            config={
                "rate_limit": {"rate": 2, "burst": 1},
                "circuit_breaker": {"failure_threshold": 1, "cooldown": 30},
            },
        )
    )
    await connector.run("get", Script())
    await connector.run("get", Script())  # waits 0.5 s for a token: on the fake clock
    assert clock.sleeps == [pytest.approx(0.5)]
    with pytest.raises(ServiceUnavailableError):
        await connector.run("get", Script(unavailable()))
    with pytest.raises(CircuitOpenError):
        await connector.run("get", Script())
    clock.advance(30)
    assert await connector.run("get", Script(result="probe")) == "probe"


async def test_timeout_none_means_no_timeout_and_use_default_the_configs(
    make_connector: Make,
) -> None:
    connector = await connected(make_connector(config={"timeout": 0.05}))

    async def slow() -> str:
        await asyncio.sleep(0.2)
        return "done"

    assert await connector.run("slow", slow, timeout=None) == "done"
    with pytest.raises(ConnectorTimeoutError):
        await connector.run("slow", slow, timeout=USE_DEFAULT)
    assert repr(USE_DEFAULT) == "USE_DEFAULT"


def test_config_class_comes_from_the_generic_parameter() -> None:
    class Inferred(BaseConnector[ScriptedConfig]):
        async def _connect(self) -> None: ...

        async def _disconnect(self) -> None: ...

        async def _ping(self) -> None: ...

    assert Inferred.config_class is ScriptedConfig
    assert isinstance(Inferred.from_url("scripted://h:1/db").config, ScriptedConfig)


def test_config_class_that_disagrees_with_the_generic_parameter_is_refused() -> None:
    with pytest.raises(TypeError, match=r"declared BaseConnector\[ScriptedConfig\]"):

        class Confused(BaseConnector[ScriptedConfig]):
            config_class = MemoryConfig


async def test_a_policy_that_waits_for_an_open_circuit_retries_when_it_lets_a_probe_through(
    make_connector: Make, clock: FakeClock
) -> None:
    breaker = CircuitBreaker(failure_threshold=1, cooldown=5.0, clock=clock)
    connector = await connected(
        make_connector(retry_policy=policy(max_attempts=1), circuit_breaker=breaker)
    )
    with pytest.raises(ServiceUnavailableError):
        await connector.run("get", Script(unavailable()), idempotent=True)
    assert circuit_state(breaker) is CircuitState.OPEN
    with pytest.raises(CircuitOpenError):  # by default an open circuit fails fast
        await connector.run("get", Script(), idempotent=True)
    patient = policy(max_attempts=10, initial_delay=0.1, jitter=False, wait_for_open_circuit=True)
    op = Script(result="back")
    assert await connector.run("get", op, idempotent=True, retry_policy=patient) == "back"
    assert op.calls == 1  # not called while open: it waited out the cooldown
    assert clock.sleeps == [pytest.approx(5.0)]
    assert circuit_state(breaker) is CircuitState.CLOSED


async def test_waiting_for_an_open_circuit_stays_within_the_deadline(
    make_connector: Make, clock: FakeClock
) -> None:
    breaker = CircuitBreaker(failure_threshold=1, cooldown=30.0, clock=clock)
    connector = await connected(
        make_connector(retry_policy=policy(max_attempts=1), circuit_breaker=breaker)
    )
    with pytest.raises(ServiceUnavailableError):
        await connector.run("get", Script(unavailable()), idempotent=True)
    patient = policy(max_attempts=10, deadline=10.0, wait_for_open_circuit=True)
    with pytest.raises(CircuitOpenError):
        await connector.run("get", Script(), idempotent=True, retry_policy=patient)
    assert clock.sleeps == []  # 30 s of cooldown do not fit in a 10 s deadline
