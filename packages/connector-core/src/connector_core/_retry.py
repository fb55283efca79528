"""Retry decisions: exponential backoff with full jitter, ``retry_after``, a deadline."""

from __future__ import annotations

import random
from collections.abc import Callable
from dataclasses import dataclass, field

from connector_core._config import RetrySettings
from connector_core._errors import ConnectorError, ErrorCode

# Never retried, whatever ``transient`` says: retrying cannot cure them.
NEVER_RETRIED = frozenset(
    {
        ErrorCode.AUTHENTICATION,
        ErrorCode.PERMISSION_DENIED,
        ErrorCode.CONFIG,
        ErrorCode.NOT_CONNECTED,
        ErrorCode.CIRCUIT_OPEN,
    }
)


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    """When and how long to wait before retrying a failed operation.

    Only transient errors of idempotent operations are retried; authentication,
    permission, config and circuit-open errors never are. The delay before retry
    ``n`` (1-based) is uniform in ``[0, min(max_delay, initial_delay * multiplier**(n-1))]``
    ("full jitter"), or exactly the error's ``retry_after`` when the remote side said.
    A ``retry_after`` above ``max_retry_after`` ends the retries (retrying sooner than
    asked is pointless). Retries stop after ``max_attempts`` attempts in all, or when
    the next wait would reach ``deadline`` seconds since the first attempt.

    ``wait_for_open_circuit=True`` makes an open circuit (CircuitOpenError) something to
    wait out rather than fail on: the next attempt comes when the circuit lets a probe
    through (its ``retry_after``, at least the backoff), within the same deadline. For
    calls that must outlast an outage, such as a listener reconnecting.
    """

    max_attempts: int = 3
    initial_delay: float = 0.1
    max_delay: float = 10.0
    multiplier: float = 2.0
    jitter: bool = True
    deadline: float | None = 60.0
    max_retry_after: float = 60.0
    wait_for_open_circuit: bool = False
    rng: random.Random = field(default_factory=random.Random, compare=False, repr=False)

    def __post_init__(self) -> None:
        if self.max_attempts < 1:
            raise ValueError("max_attempts must be at least 1")
        if self.initial_delay < 0 or self.max_delay < 0 or self.multiplier < 1:
            raise ValueError("delays must be >= 0 and multiplier >= 1")

    @classmethod
    def from_settings(cls, settings: RetrySettings) -> RetryPolicy:
        return cls(**settings.model_dump())

    @classmethod
    def none(cls) -> RetryPolicy:
        """A policy that never retries."""
        return cls(max_attempts=1)

    def backoff(self, retry_number: int) -> float:
        """The jittered backoff before retry ``retry_number`` (1 for the first retry)."""
        exponent = min(retry_number - 1, 64)
        try:
            cap = min(self.max_delay, self.initial_delay * self.multiplier**exponent)
        except OverflowError:  # a huge multiplier: the growth passed any max_delay long ago
            cap = self.max_delay if self.initial_delay > 0 else 0.0
        return self.rng.uniform(0.0, cap) if self.jitter else cap

    def is_retryable(
        self,
        error: ConnectorError,
        *,
        idempotent: bool,
        retry_on: Callable[[ConnectorError], bool] | None = None,
    ) -> bool:
        """Whether ``error`` may be retried at all (ignoring attempts and deadline).

        By default: a transient error of an idempotent operation. ``retry_on`` replaces
        that rule for one call (a POST that the server refused before processing it, a
        429, may be sent again). Authentication, permission, config, not-connected and
        circuit-open errors are never retried, whatever either rule says.
        """
        if error.code is ErrorCode.CIRCUIT_OPEN and self.wait_for_open_circuit:
            return True
        if error.code in NEVER_RETRIED:
            return False
        if retry_on is not None:
            return retry_on(error)
        return idempotent and error.transient

    def next_delay(
        self,
        error: ConnectorError,
        *,
        attempt: int,
        idempotent: bool,
        elapsed: float,
        retry_on: Callable[[ConnectorError], bool] | None = None,
    ) -> float | None:
        """Seconds to wait before the next attempt, or None to give up.

        ``attempt`` is the number of attempts made so far (1 after the first failure);
        ``elapsed`` the seconds since the first attempt began; ``retry_on`` as in
        :meth:`is_retryable`.
        """
        if attempt >= self.max_attempts or not self.is_retryable(
            error, idempotent=idempotent, retry_on=retry_on
        ):
            return None
        if error.retry_after is not None:
            if error.retry_after > self.max_retry_after:
                return None
            delay = max(0.0, error.retry_after)
            if error.code is ErrorCode.CIRCUIT_OPEN:
                # A half-open circuit busy with its probe says 0: back off, do not spin.
                delay = max(delay, self.backoff(attempt))
        else:
            delay = self.backoff(attempt)
        if self.deadline is not None and elapsed + delay >= self.deadline:
            return None
        return delay
