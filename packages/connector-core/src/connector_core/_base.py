"""BaseConnector: one lifecycle and one road for every operation of every connector."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from abc import ABC, abstractmethod
from collections.abc import Awaitable, Callable, Coroutine
from enum import StrEnum
from types import TracebackType
from typing import Any, ClassVar, Generic, Self, TypeVar, cast, get_args, get_origin

from connector_core import _telemetry
from connector_core._circuit import CircuitBreaker
from connector_core._config import ConnectorConfig
from connector_core._defaults import USE_DEFAULT, UseDefault
from connector_core._errors import (
    ConfigError,
    ConnectionFailedError,
    ConnectorError,
    ConnectorTimeoutError,
    ErrorCode,
    NotConnectedError,
)
from connector_core._events import EventCallback, EventEmitter, EventInfo, LifecycleEvent
from connector_core._models import CheckResult
from connector_core._rate_limit import TokenBucket
from connector_core._redaction import scrub_exception, scrub_secrets, scrub_value
from connector_core._retry import RetryPolicy
from connector_core._stats import StatsRecorder, StatsSnapshot
from connector_core._timeout import CallTimeouts

ConfigT = TypeVar("ConfigT", bound=ConnectorConfig)
T = TypeVar("T")

RetryRule = Callable[[ConnectorError], bool]
"""Decides, for one call, whether an error may be retried (see ``run(retry_on=...)``)."""
Sleep = Callable[[float], Awaitable[object]]

_NO_RETRY = RetryPolicy.none()

# Failures that say the remote side is unwell (they count toward opening the circuit);
# other failures (not found, conflict, bad query) prove the remote side answered.
_BREAKER_CODES = frozenset({ErrorCode.CONNECTION_FAILED, ErrorCode.TIMEOUT, ErrorCode.UNAVAILABLE})


class ConnectionState(StrEnum):
    DISCONNECTED = "disconnected"
    CONNECTING = "connecting"
    CONNECTED = "connected"
    DISCONNECTING = "disconnecting"


class BaseConnector(ABC, Generic[ConfigT]):
    """The shared lifecycle and operation road; subclasses implement the driver parts.

    Subclasses set ``name``, ``version`` and ``config_class`` and implement
    ``_connect()``, ``_disconnect()`` and ``_ping()``; they run every driver call
    through :meth:`run`, which applies, in order: rate limiter -> circuit breaker ->
    timeout -> error translation (``_translate_error``) -> retry -> stats and events.

    * ``connect()``/``disconnect()`` are idempotent; concurrent ``connect()`` calls
      share one attempt; ``async with`` always disconnects.
    * Transient errors of idempotent operations are retried (see :class:`RetryPolicy`);
      after a connection-level failure the connector reconnects before the next call.
    """

    name: ClassVar[str] = "connector"
    version: ClassVar[str] = "0.0.0"
    config_class: ClassVar[type[ConnectorConfig]] = ConnectorConfig

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        declared = _declared_config(cls)
        if declared is None:
            return
        if "config_class" not in vars(cls) and cls.config_class is ConnectorConfig:
            cls.config_class = declared  # BaseConnector[XConfig] is enough to say it
        elif not issubclass(cls.config_class, declared):
            raise TypeError(
                f"{cls.__name__}.config_class is {cls.config_class.__name__}, but the class "
                f"is declared BaseConnector[{declared.__name__}]: make them agree"
            )

    def __init__(
        self,
        config: ConfigT,
        *,
        retry_policy: RetryPolicy | None = None,
        rate_limiter: TokenBucket | UseDefault | None = USE_DEFAULT,
        circuit_breaker: CircuitBreaker | UseDefault | None = USE_DEFAULT,
        clock: Callable[[], float] = time.monotonic,
        sleep: Sleep = asyncio.sleep,
    ) -> None:
        """Args:
        config: the connector's config (ConfigError when it is of another class).
        retry_policy: overrides the one built from ``config.retry``.
        rate_limiter, circuit_breaker: override the ones built from the config
            (None: none at all).
        clock, sleep: the monotonic clock and the sleep of every wait the connector
            makes (retry backoff, retry deadlines, the limiter and breaker it builds);
            inject fakes in tests instead of patching ``asyncio.sleep``.
        """
        if not isinstance(config, self.config_class):
            raise ConfigError(
                f"{type(self).__name__} needs a {self.config_class.__name__}, "
                f"got {type(config).__name__}",
                connector=self.name,
            )
        self.config: ConfigT = config
        self.logger = logging.getLogger(f"connector.{self.name}")
        self.retry_policy = retry_policy or RetryPolicy.from_settings(config.retry)
        self._clock = clock
        self._sleep = sleep
        if rate_limiter is USE_DEFAULT:
            rl = config.rate_limit
            rate_limiter = (
                TokenBucket(rl.rate, rl.burst, clock=clock, sleep=sleep) if rl is not None else None
            )
        self.rate_limiter: TokenBucket | None = rate_limiter
        if circuit_breaker is USE_DEFAULT:
            cb = config.circuit_breaker
            circuit_breaker = (
                CircuitBreaker(
                    cb.failure_threshold,
                    cb.cooldown,
                    cb.half_open_max_calls,
                    name=self.name,
                    clock=clock,
                )
                if cb is not None
                else None
            )
        self.circuit_breaker: CircuitBreaker | None = circuit_breaker
        self._secrets = config.secret_values()
        self._state = ConnectionState.DISCONNECTED
        self._connect_task: asyncio.Task[None] | None = None
        self._reconnect_lock = asyncio.Lock()
        self._needs_reconnect = False
        self._events = EventEmitter(self.logger)
        self._stats = StatsRecorder(self.name)
        self._tracer = _telemetry.get_tracer(self.version)
        self._tracer_is_proxy = _telemetry.is_proxy(self._tracer)
        self._timeouts = CallTimeouts()

    # -- construction -------------------------------------------------------------------

    @classmethod
    def _config_type(cls) -> type[ConfigT]:
        # __init_subclass__ made config_class agree with the declared ConfigT.
        return cast("type[ConfigT]", cls.config_class)

    @classmethod
    def from_url(cls, url: str, **overrides: Any) -> Self:
        """Build the connector from a URL (see the config's ``from_url``)."""
        return cls(cls._config_type().from_url(url, **overrides))

    @classmethod
    def from_env(cls, prefix: str) -> Self:
        """Build the connector from environment variables (see the config's ``from_env``)."""
        return cls(cls._config_type().from_env(prefix))

    def __repr__(self) -> str:
        return (
            f"{type(self).__name__}({self.config.connection_string()!r}, state={self._state.value})"
        )

    # -- what subclasses implement ------------------------------------------------------

    @abstractmethod
    async def _connect(self) -> None:
        """Open the driver's connection or pool. Raise driver errors freely."""

    @abstractmethod
    async def _disconnect(self) -> None:
        """Close the driver's connection or pool."""

    @abstractmethod
    async def _ping(self) -> None:
        """Make one real round trip; raise when unhealthy."""

    def _translate_error(self, exc: BaseException) -> ConnectorError | None:
        """Map a driver exception to a ConnectorError (None: use the generic mapping)."""
        return None

    def _is_connection_lost(self, error: ConnectorError) -> bool:
        """Whether ``error`` means the connection is gone and must be re-made."""
        return error.code is ErrorCode.CONNECTION_FAILED

    def _known_secrets(self) -> tuple[str, ...]:
        """Every secret to mask in what leaves the connector: errors, their chained
        causes, logs. The config's secrets by default; a subclass adds what it derives
        from them (a whole ``Authorization`` header) or learns at run time (tokens)."""
        return self._secrets

    # -- state --------------------------------------------------------------------------

    @property
    def state(self) -> ConnectionState:
        return self._state

    @property
    def is_connected(self) -> bool:
        return self._state is ConnectionState.CONNECTED

    @property
    def stats(self) -> StatsSnapshot:
        """A typed snapshot of calls, failures by code, retries, waits and latencies."""
        return self._stats.snapshot()

    def on(self, event: LifecycleEvent, callback: EventCallback) -> Callable[[], None]:
        """Subscribe ``callback`` to a lifecycle event; returns the unsubscribe function."""
        return self._events.on(event, callback)

    def _emit(self, event: LifecycleEvent, **fields: Any) -> None:
        if self._events.has_listeners(event):
            self._events.emit(EventInfo(event=event, connector=self.name, **fields))

    # -- lifecycle ----------------------------------------------------------------------

    async def connect(self) -> None:
        """Connect (idempotent). Concurrent callers share one attempt.

        Raises ConnectionFailedError, AuthenticationError, ConnectorTimeoutError, ...
        """
        if self._state is ConnectionState.CONNECTED:
            return
        task = self._connect_task
        if task is None:
            task = self._connect_task = asyncio.ensure_future(self._connect_with_retry())
            task.add_done_callback(self._connect_done)
        try:
            await asyncio.shield(task)
        except asyncio.CancelledError:
            current = asyncio.current_task()
            if task.cancelled() and (current is None or not current.cancelling()):
                # The shared attempt was abandoned by disconnect(), not this caller.
                raise NotConnectedError(
                    "connect() was abandoned because disconnect() was called",
                    connector=self.name,
                ) from None
            raise

    def _connect_done(self, task: asyncio.Task[None]) -> None:
        if self._connect_task is task:
            self._connect_task = None
        if not task.cancelled():
            task.exception()  # mark retrieved; callers re-raise it

    async def _connect_with_retry(self) -> None:
        self._emit(LifecycleEvent.STARTUP)
        self._state = ConnectionState.CONNECTING
        self.logger.debug("connecting to %s", self.config.connection_string())
        clock = self._clock
        started = clock()
        attempt = 0
        policy = self.retry_policy
        while True:
            attempt += 1
            try:
                async with asyncio.timeout(self.config.connect_timeout):
                    await self._connect()
            except asyncio.CancelledError:
                self._state = ConnectionState.DISCONNECTED
                await self._safe_driver_disconnect()
                raise
            except Exception as exc:
                error = self._to_error(exc, "connect")
                if isinstance(error, ConnectorTimeoutError):
                    error = ConnectionFailedError(
                        f"connect timed out after {self.config.connect_timeout}s",
                        connector=self.name,
                    )
                self._emit(LifecycleEvent.ERROR, operation="connect", attempt=attempt, error=error)
                await self._safe_driver_disconnect()
                delay = policy.next_delay(
                    error, attempt=attempt, idempotent=True, elapsed=clock() - started
                )
                if delay is None:
                    self._state = ConnectionState.DISCONNECTED
                    self.logger.warning("connect failed: %s", error)
                    final = self._outgoing(error, exc)
                    break
                await self._wait_to_retry("connect", attempt, delay, error)
            else:
                self._state = ConnectionState.CONNECTED
                self._needs_reconnect = False
                self.logger.info("connected to %s", self.config.connection_string())
                self._emit(LifecycleEvent.CONNECT)
                return
        raise final

    async def _safe_driver_disconnect(self) -> None:
        try:
            await self._disconnect()
        except Exception as exc:
            self.logger.debug("cleanup after failed connect raised %s", type(exc).__name__)

    async def disconnect(self) -> None:
        """Disconnect (idempotent). Cancels a connect in flight. Never raises driver errors."""
        task = self._connect_task
        if task is not None and not task.done():
            task.cancel()
            # The connect attempt's own outcome no longer matters: we are stopping.
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
        if self._state is ConnectionState.DISCONNECTED:
            return
        self._state = ConnectionState.DISCONNECTING
        try:
            await self._disconnect()
        except Exception as exc:
            error = self._to_error(exc, "disconnect")
            self.logger.warning("error while disconnecting: %s", error)
            self._emit(LifecycleEvent.ERROR, operation="disconnect", error=error)
        finally:
            self._state = ConnectionState.DISCONNECTED
            self._needs_reconnect = False
        self.logger.info("disconnected")
        self._emit(LifecycleEvent.DISCONNECT)
        self._emit(LifecycleEvent.STOP)

    async def __aenter__(self) -> Self:
        try:
            await self.connect()
        except BaseException:
            # __aexit__ will not run: cancel the shared connect attempt if this caller
            # was cancelled, so the connection is not made later with nobody to close it.
            await asyncio.shield(self.disconnect())
            raise
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        # Shielded so that a second cancellation cannot leave the connection open.
        await asyncio.shield(self.disconnect())

    async def _reconnect(self) -> None:
        async with self._reconnect_lock:
            if not self._needs_reconnect:
                return  # another task already reconnected
            self.logger.info("reconnecting after a connection failure")
            await self._safe_driver_disconnect()
            try:
                async with asyncio.timeout(self.config.connect_timeout):
                    await self._connect()
            except Exception as exc:
                error = self._to_error(exc, "reconnect")
                # A timeout is a failed connection; any other error keeps its class, so
                # an AuthenticationError on reconnect is not retried as if transient.
                if isinstance(error, ConnectorTimeoutError):
                    error = ConnectionFailedError(
                        f"reconnect failed: {error.message}", connector=self.name
                    )
                final = self._outgoing(error, exc)
            else:
                self._needs_reconnect = False
                self._stats.reconnects += 1
                self._emit(LifecycleEvent.RECONNECT)
                return
            raise final

    # -- health -------------------------------------------------------------------------

    async def ping(self) -> float:
        """One real round trip; returns its duration in seconds.

        Raises NotConnectedError before ``connect()``, or the ConnectorError that
        says why the system is unhealthy.
        """
        return await self.run("ping", self._timed_ping, idempotent=True, retry=False)

    async def _timed_ping(self) -> float:
        start = time.perf_counter()
        await self._ping()
        return time.perf_counter() - start

    async def check(self) -> CheckResult:
        """Validate, connect (if needed), ping and report; never raises ConnectorError."""
        was_connected = self.is_connected
        try:
            if not was_connected:
                await self.connect()
            latency = await self.ping()
        except ConnectorError as exc:
            return CheckResult(ok=False, connector=self.name, error=str(exc), error_code=exc.code)
        finally:
            if not was_connected:
                await self.disconnect()
        return CheckResult(ok=True, connector=self.name, latency=latency)

    # -- the operation road -------------------------------------------------------------

    def _to_error(self, exc: BaseException, operation: str) -> ConnectorError:
        if isinstance(exc, ConnectorError):
            error = exc
        else:
            translated = self._translate_error(exc)
            if translated is not None:
                error = translated
            elif isinstance(exc, TimeoutError):
                error = ConnectorTimeoutError(f"{operation} timed out", connector=self.name)
            elif isinstance(exc, (ConnectionError, OSError, EOFError)):
                error = ConnectionFailedError(
                    f"{operation}: connection failed ({type(exc).__name__}: {exc})",
                    connector=self.name,
                )
            else:
                error = ConnectorError(
                    f"{operation} failed: {type(exc).__name__}: {exc}", connector=self.name
                )
        if error.connector is None:
            error.connector = self.name
        secrets = self._known_secrets()
        scrubbed = scrub_secrets(error.message, secrets)
        if scrubbed != error.message:
            error.message = scrubbed
            error.args = (scrubbed,)
        if error.details:
            error.details = scrub_value(error.details, secrets)
        return error

    def _outgoing(self, error: ConnectorError, exc: BaseException) -> ConnectorError:
        """``error`` ready to leave the connector: the driver's ``exc`` chained as its
        cause, and every exception of its chain free of secrets (``error`` itself was
        scrubbed by :meth:`_to_error`). Raise it outside the ``except`` block that caught
        ``exc``, or Python chains the unscrubbed ``exc`` as ``__context__`` again."""
        if error is not exc:
            error.__cause__ = exc
        secrets = self._known_secrets()
        suppress = error.__suppress_context__
        if error.__cause__ is not None:
            error.__cause__ = scrub_exception(error.__cause__, secrets)
        if error.__context__ is not None:
            error.__context__ = scrub_exception(error.__context__, secrets)
        error.__suppress_context__ = suppress
        return error

    def run(
        self,
        operation: str,
        fn: Callable[[], Awaitable[T]],
        *,
        idempotent: bool = False,
        timeout: float | UseDefault | None = USE_DEFAULT,
        retry: bool = True,
        retry_on: RetryRule | None = None,
        retry_policy: RetryPolicy | None = None,
    ) -> Coroutine[Any, Any, T]:
        """Run one driver call on the shared road: ``await connector.run(...)``.

        ``fn`` is called once per attempt. ``idempotent`` allows retries of transient
        errors; ``retry_on`` replaces that rule for this call (an error for which it
        returns True is retried, whatever ``idempotent`` says; authentication,
        permission and circuit-open errors never are); ``retry_policy`` replaces the
        connector's policy (attempts, backoff, deadline) for this call; ``retry=False``
        disables retries. ``timeout`` bounds each attempt (None: no bound; by default the
        config's ``timeout``). Raises a ConnectorError subclass, with the driver's
        exception (scrubbed of secrets) as ``__cause__``.

        A plain method returning the road's coroutine, not a coroutine of its own: one
        frame less for every resume of every call (decision 0128).
        """
        if not retry:
            policy = _NO_RETRY
        else:
            policy = self.retry_policy if retry_policy is None else retry_policy
        tracer = self._tracer
        if tracer is None or (self._tracer_is_proxy and _telemetry.is_inert_proxy(tracer)):
            # No tracing, or the OpenTelemetry API without any provider (a library
            # user's usual state): a span would be the caller's context again.
            return self._run(operation, fn, idempotent, timeout, policy, retry_on)
        return self._run_traced(tracer, operation, fn, idempotent, timeout, policy, retry_on)

    async def _run_traced(
        self,
        tracer: Any,
        operation: str,
        fn: Callable[[], Awaitable[T]],
        idempotent: bool,
        timeout: float | UseDefault | None,
        policy: RetryPolicy,
        retry_on: RetryRule | None,
    ) -> T:
        span = tracer.start_span(
            f"{self.name}.{operation}",
            kind=_telemetry.SPAN_KIND_CLIENT,
            attributes={"connector.name": self.name, "connector.operation": operation},
        )
        if _telemetry.is_noop(span):
            # Nothing to record or propagate: making the no-op span current would cost
            # ~10 us per call and change nothing observable.
            return await self._run(operation, fn, idempotent, timeout, policy, retry_on)
        with _telemetry.use_span(span):
            try:
                return await self._run(operation, fn, idempotent, timeout, policy, retry_on)
            except ConnectorError as exc:
                span.set_attribute("connector.error_code", exc.code.value)
                _telemetry.set_error_status(span, exc)
                raise

    async def _run(
        self,
        operation: str,
        fn: Callable[[], Awaitable[T]],
        idempotent: bool,
        timeout: float | UseDefault | None,
        policy: RetryPolicy,
        retry_on: RetryRule | None,
    ) -> T:
        if self._state is not ConnectionState.CONNECTED:
            raise NotConnectedError(
                f"{operation} needs a connection: call connect() or use 'async with' first",
                connector=self.name,
            )
        if timeout is USE_DEFAULT:
            timeout = self.config.timeout
        rec = self._stats.operation(operation)
        limiter = self.rate_limiter
        breaker = self.circuit_breaker
        perf = time.perf_counter
        started = self._clock()
        attempt = 0
        rec.calls += 1
        while True:
            attempt += 1
            if self._needs_reconnect:
                try:
                    await self._reconnect()
                except ConnectorError as reconnect_error:
                    self._record_failure(rec, operation, attempt, reconnect_error, 0.0)
                    delay = policy.next_delay(
                        reconnect_error,
                        attempt=attempt,
                        idempotent=idempotent,
                        elapsed=self._clock() - started,
                        retry_on=retry_on,
                    )
                    if delay is None:
                        raise
                    rec.retries += 1
                    await self._wait_to_retry(operation, attempt, delay, reconnect_error)
                    continue
            # try_acquire() first: same accounting as acquire() without a coroutine.
            if limiter is not None and not limiter.try_acquire():
                waited = await limiter.acquire()
                if waited:
                    self._stats.record_rate_limit_wait(waited)
            if breaker is not None:
                try:
                    breaker.before_call()
                except ConnectorError as open_error:
                    self._record_failure(rec, operation, attempt, open_error, 0.0)
                    delay = policy.next_delay(
                        open_error,
                        attempt=attempt,
                        idempotent=idempotent,
                        elapsed=self._clock() - started,
                        retry_on=retry_on,
                    )
                    if delay is None:  # the usual case: an open circuit fails fast
                        raise
                    rec.retries += 1
                    await self._wait_to_retry(operation, attempt, delay, open_error)
                    continue
            t0 = perf()
            try:
                if timeout is None:
                    result = await fn()
                else:
                    with self._timeouts.limit(timeout):
                        result = await fn()
            except asyncio.CancelledError:
                if breaker is not None:
                    breaker.record_abandoned()
                raise
            except Exception as exc:
                elapsed = perf() - t0
                error = self._to_error(exc, operation)
                # Name the operation's own timeout only when it is the one that fired (a
                # driver's own timeout, e.g. a per-statement one, keeps its message).
                if (
                    isinstance(error, ConnectorTimeoutError)
                    and timeout is not None
                    and isinstance(exc.__cause__, asyncio.CancelledError)
                ):
                    error.message = f"{operation} timed out after {timeout}s"
                    error.args = (error.message,)
                if breaker is not None:
                    if error.code in _BREAKER_CODES:
                        breaker.record_failure()
                    else:
                        breaker.record_success()
                if self._is_connection_lost(error):
                    self._needs_reconnect = True
                self._record_failure(rec, operation, attempt, error, elapsed)
                delay = policy.next_delay(
                    error,
                    attempt=attempt,
                    idempotent=idempotent,
                    elapsed=self._clock() - started,
                    retry_on=retry_on,
                )
                if delay is None:
                    final = self._outgoing(error, exc)
                else:
                    rec.retries += 1
                    await self._wait_to_retry(operation, attempt, delay, error)
                    continue
            else:
                rec.add_latency(perf() - t0)
                rec.successes += 1
                if breaker is not None:
                    breaker.record_success()
                return result
            raise final

    def _record_failure(
        self, rec: Any, operation: str, attempt: int, error: ConnectorError, elapsed: float
    ) -> None:
        rec.failures += 1
        rec.failures_by_code[error.code] += 1
        if elapsed:
            rec.add_latency(elapsed)
        self.logger.debug("%s attempt %d failed: %s", operation, attempt, error)
        self._emit(LifecycleEvent.ERROR, operation=operation, attempt=attempt, error=error)

    async def _wait_to_retry(
        self, operation: str, attempt: int, delay: float, error: ConnectorError
    ) -> None:
        """The one place every retry of this connector waits: logged, announced as a
        RETRY event, slept with the connector's ``sleep``."""
        self.logger.info(
            "%s failed (%s); retry %d in %.3fs", operation, error.code.value, attempt, delay
        )
        self._emit(
            LifecycleEvent.RETRY, operation=operation, attempt=attempt, delay=delay, error=error
        )
        await self._sleep(delay)


def _declared_config(cls: type[Any]) -> type[ConnectorConfig] | None:
    """The config class in ``class X(BaseConnector[XConfig])``, if ``cls`` names one."""
    for base in getattr(cls, "__orig_bases__", ()):
        origin = get_origin(base)
        if isinstance(origin, type) and issubclass(origin, BaseConnector):
            args = get_args(base)
            if args and isinstance(args[0], type) and issubclass(args[0], ConnectorConfig):
                return args[0]
    return None
