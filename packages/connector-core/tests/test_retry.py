"""RetryPolicy: backoff bounds, jitter, retry_after, deadline, attempts, what is never retried."""

from __future__ import annotations

import random

import pytest
from hypothesis import given
from hypothesis import strategies as st

from connector_core import (
    AuthenticationError,
    CircuitOpenError,
    ConfigError,
    ConnectionFailedError,
    ConnectorError,
    ConnectorTimeoutError,
    NotConnectedError,
    NotFoundError,
    PermissionDeniedError,
    QueryError,
    RateLimitedError,
    RetryPolicy,
    RetrySettings,
    ServiceUnavailableError,
)


def transient() -> ConnectorError:
    return ServiceUnavailableError("busy")


@given(
    initial=st.floats(0.0, 5.0),
    multiplier=st.floats(1.0, 1e12),
    max_delay=st.floats(0.0, 100.0),
    retry_number=st.integers(1, 200),
    seed=st.integers(0, 2**32),
)
def test_backoff_is_within_full_jitter_bounds(
    initial: float, multiplier: float, max_delay: float, retry_number: int, seed: int
) -> None:
    policy = RetryPolicy(
        initial_delay=initial,
        multiplier=multiplier,
        max_delay=max_delay,
        rng=random.Random(seed),
    )
    delay = policy.backoff(retry_number)
    try:
        cap = min(max_delay, initial * multiplier ** (retry_number - 1))
    except OverflowError:
        cap = max_delay if initial > 0 else 0.0
    assert 0.0 <= delay <= cap + 1e-12


def test_backoff_caps_grow_exponentially_then_stop_at_max_delay() -> None:
    policy = RetryPolicy(initial_delay=0.1, multiplier=2.0, max_delay=1.0, jitter=False)
    assert [policy.backoff(n) for n in range(1, 7)] == pytest.approx([0.1, 0.2, 0.4, 0.8, 1.0, 1.0])


def test_backoff_survives_a_huge_multiplier() -> None:
    # initial * multiplier**63 overflows a float; the cap is then max_delay.
    policy = RetryPolicy(initial_delay=1.0, multiplier=1e10, max_delay=5.0, jitter=False)
    assert policy.backoff(100) == 5.0


def test_full_jitter_varies_and_is_reproducible_with_a_seed() -> None:
    def delays(seed: int) -> list[float]:
        policy = RetryPolicy(initial_delay=1.0, max_delay=1.0, rng=random.Random(seed))
        return [policy.backoff(1) for _ in range(200)]

    first = delays(42)
    assert len(set(first)) > 150  # not a constant
    assert min(first) < 0.1
    assert max(first) > 0.9
    assert first == delays(42)
    assert first != delays(43)


def test_next_delay_uses_backoff_for_transient_errors_of_idempotent_operations() -> None:
    policy = RetryPolicy(max_attempts=5, initial_delay=0.5, jitter=False, deadline=None)
    assert policy.next_delay(transient(), attempt=1, idempotent=True, elapsed=0.0) == 0.5
    assert policy.next_delay(transient(), attempt=3, idempotent=True, elapsed=0.0) == 2.0


def test_retry_after_is_honoured_exactly() -> None:
    policy = RetryPolicy(initial_delay=0.01, max_delay=0.02, max_retry_after=60)
    error = RateLimitedError("slow down", retry_after=7.25)
    assert policy.next_delay(error, attempt=1, idempotent=True, elapsed=0.0) == 7.25


def test_retry_after_above_max_retry_after_ends_the_retries() -> None:
    policy = RetryPolicy(max_retry_after=5.0)
    error = RateLimitedError("come back tomorrow", retry_after=86_400)
    assert policy.next_delay(error, attempt=1, idempotent=True, elapsed=0.0) is None
    at_cap = RateLimitedError("ok", retry_after=5.0)
    assert policy.next_delay(at_cap, attempt=1, idempotent=True, elapsed=0.0) == 5.0


def test_negative_retry_after_means_retry_now() -> None:
    error = RateLimitedError("clock skew", retry_after=-3)
    assert RetryPolicy().next_delay(error, attempt=1, idempotent=True, elapsed=0.0) == 0.0


def test_deadline_stops_retries() -> None:
    policy = RetryPolicy(max_attempts=100, initial_delay=1.0, jitter=False, deadline=10.0)
    assert policy.next_delay(transient(), attempt=1, idempotent=True, elapsed=8.9) == 1.0
    assert policy.next_delay(transient(), attempt=1, idempotent=True, elapsed=9.0) is None
    long_wait = RateLimitedError("later", retry_after=5)
    assert policy.next_delay(long_wait, attempt=1, idempotent=True, elapsed=6.0) is None


def test_no_deadline_means_attempts_alone_bound_retries() -> None:
    policy = RetryPolicy(max_attempts=3, deadline=None, jitter=False)
    assert policy.next_delay(transient(), attempt=2, idempotent=True, elapsed=1e9) is not None


@pytest.mark.parametrize("max_attempts", [1, 2, 5])
def test_max_attempts_counts_every_attempt(max_attempts: int) -> None:
    policy = RetryPolicy(max_attempts=max_attempts, deadline=None)
    allowed = [
        policy.next_delay(transient(), attempt=a, idempotent=True, elapsed=0.0) is not None
        for a in range(1, max_attempts + 2)
    ]
    assert allowed == [True] * (max_attempts - 1) + [False, False]


@pytest.mark.parametrize(
    "error",
    [
        AuthenticationError("bad password", transient=True),
        PermissionDeniedError("no", transient=True),
        ConfigError("bad"),
        NotConnectedError("connect first", transient=True),
        CircuitOpenError("open", retry_after=0.0),
    ],
    ids=lambda e: type(e).__name__,
)
def test_some_errors_are_never_retried_even_when_marked_transient(error: ConnectorError) -> None:
    policy = RetryPolicy(max_attempts=10)
    assert not policy.is_retryable(error, idempotent=True)
    assert policy.next_delay(error, attempt=1, idempotent=True, elapsed=0.0) is None


@pytest.mark.parametrize(
    "error",
    [NotFoundError("gone"), QueryError("syntax"), ConnectorError("?")],
    ids=lambda e: type(e).__name__,
)
def test_non_transient_errors_are_not_retried(error: ConnectorError) -> None:
    assert RetryPolicy().next_delay(error, attempt=1, idempotent=True, elapsed=0.0) is None


@pytest.mark.parametrize(
    "error",
    [
        ConnectionFailedError("reset"),
        ConnectorTimeoutError("slow"),
        ServiceUnavailableError("503"),
        RateLimitedError("429"),
        QueryError("deadlock", transient=True),
    ],
    ids=lambda e: type(e).__name__,
)
def test_transient_errors_are_retried_only_when_idempotent(error: ConnectorError) -> None:
    policy = RetryPolicy()
    assert policy.next_delay(error, attempt=1, idempotent=True, elapsed=0.0) is not None
    assert policy.next_delay(error, attempt=1, idempotent=False, elapsed=0.0) is None


def test_none_policy_never_retries() -> None:
    assert RetryPolicy.none().next_delay(transient(), attempt=1, idempotent=True, elapsed=0) is None


def test_from_settings_copies_every_setting() -> None:
    settings = RetrySettings(
        max_attempts=7,
        initial_delay=0.3,
        max_delay=4.0,
        multiplier=3.0,
        jitter=False,
        deadline=None,
        max_retry_after=9.0,
    )
    policy = RetryPolicy.from_settings(settings)
    assert (
        policy.max_attempts,
        policy.initial_delay,
        policy.max_delay,
        policy.multiplier,
        policy.jitter,
        policy.deadline,
        policy.max_retry_after,
    ) == (7, 0.3, 4.0, 3.0, False, None, 9.0)


@pytest.mark.parametrize(
    "kwargs",
    [{"max_attempts": 0}, {"initial_delay": -1}, {"max_delay": -1}, {"multiplier": 0.5}],
)
def test_invalid_policy_raises_value_error(kwargs: dict[str, float]) -> None:
    with pytest.raises(ValueError, match="must"):
        RetryPolicy(**kwargs)  # type: ignore[arg-type]
