"""A circuit breaker: fail fast while a dependency is down, probe it when it may be back."""

from __future__ import annotations

import time
from collections.abc import Callable
from enum import StrEnum

from connector_core._errors import CircuitOpenError


class CircuitState(StrEnum):
    CLOSED = "closed"
    OPEN = "open"
    HALF_OPEN = "half_open"


class CircuitBreaker:
    """Closed -> open after ``failure_threshold`` consecutive failures; open -> half-open
    after ``cooldown`` seconds; in half-open at most ``half_open_max_calls`` probes run at
    once: a success closes the circuit, a failure opens it again.
    """

    __slots__ = (
        "_clock",
        "_failures",
        "_opened_at",
        "_probes",
        "_state",
        "cooldown",
        "failure_threshold",
        "half_open_max_calls",
        "name",
    )

    def __init__(
        self,
        failure_threshold: int = 5,
        cooldown: float = 30.0,
        half_open_max_calls: int = 1,
        *,
        name: str | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if failure_threshold < 1 or half_open_max_calls < 1 or cooldown <= 0:
            raise ValueError("failure_threshold, half_open_max_calls >= 1 and cooldown > 0")
        self.failure_threshold = failure_threshold
        self.cooldown = cooldown
        self.half_open_max_calls = half_open_max_calls
        self.name = name
        self._clock = clock
        self._state = CircuitState.CLOSED
        self._failures = 0
        self._opened_at = 0.0
        self._probes = 0

    @property
    def state(self) -> CircuitState:
        if self._state is CircuitState.OPEN and self._clock() - self._opened_at >= self.cooldown:
            self._state = CircuitState.HALF_OPEN
            self._probes = 0
        return self._state

    @property
    def consecutive_failures(self) -> int:
        return self._failures

    def before_call(self) -> None:
        """Admit a call or raise :class:`CircuitOpenError` with the seconds left to wait."""
        if self._state is CircuitState.CLOSED:
            return
        state = self.state
        if state is CircuitState.OPEN:
            remaining = self.cooldown - (self._clock() - self._opened_at)
            raise CircuitOpenError(
                f"circuit open after {self._failures} consecutive failures; "
                f"next probe in {remaining:.2f}s",
                connector=self.name,
                retry_after=max(0.0, remaining),
            )
        if state is CircuitState.HALF_OPEN:
            if self._probes >= self.half_open_max_calls:
                raise CircuitOpenError(
                    "circuit half-open and its probe calls are in flight",
                    connector=self.name,
                    retry_after=0.0,
                )
            self._probes += 1

    def record_success(self) -> None:
        self._failures = 0
        if self._state is not CircuitState.CLOSED:
            self._state = CircuitState.CLOSED
            self._probes = 0

    def record_failure(self) -> None:
        self._failures += 1
        if self._state is CircuitState.HALF_OPEN or self._failures >= self.failure_threshold:
            self._state = CircuitState.OPEN
            self._opened_at = self._clock()
            self._probes = 0

    def record_abandoned(self) -> None:
        """A call admitted by :meth:`before_call` ended without an outcome (cancelled)."""
        if self._state is CircuitState.HALF_OPEN and self._probes > 0:
            self._probes -= 1

    def reset(self) -> None:
        self._state = CircuitState.CLOSED
        self._failures = 0
        self._probes = 0
