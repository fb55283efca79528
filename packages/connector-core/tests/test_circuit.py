"""CircuitBreaker transitions on a fake clock."""

from __future__ import annotations

import pytest
from _core_support import FakeClock

from connector_core import CircuitBreaker, CircuitOpenError, CircuitState, ErrorCode


def state(cb: CircuitBreaker) -> CircuitState:
    return cb.state  # a call, so mypy does not narrow the property across mutations


def breaker(clock: FakeClock, **kwargs: int | float) -> CircuitBreaker:
    params: dict[str, int | float] = {"failure_threshold": 3, "cooldown": 10.0}
    params.update(kwargs)
    return CircuitBreaker(name="svc", clock=clock, **params)  # type: ignore[arg-type]


def test_closed_until_threshold_consecutive_failures(clock: FakeClock) -> None:
    cb = breaker(clock)
    for _ in range(2):
        cb.before_call()
        cb.record_failure()
    assert state(cb) is CircuitState.CLOSED
    assert cb.consecutive_failures == 2
    cb.before_call()
    cb.record_failure()
    assert state(cb) is CircuitState.OPEN


def test_a_success_resets_the_failure_count(clock: FakeClock) -> None:
    cb = breaker(clock)
    cb.record_failure()
    cb.record_failure()
    cb.record_success()
    cb.record_failure()
    cb.record_failure()
    assert state(cb) is CircuitState.CLOSED
    assert cb.consecutive_failures == 2


def test_open_fails_fast_with_retry_after(clock: FakeClock) -> None:
    cb = breaker(clock)
    for _ in range(3):
        cb.record_failure()
    clock.advance(4.0)
    with pytest.raises(CircuitOpenError) as info:
        cb.before_call()
    error = info.value
    assert error.code is ErrorCode.CIRCUIT_OPEN
    assert error.retry_after == pytest.approx(6.0)
    assert error.connector == "svc"
    assert "3 consecutive failures" in str(error)


def test_half_open_after_cooldown(clock: FakeClock) -> None:
    cb = breaker(clock)
    for _ in range(3):
        cb.record_failure()
    clock.advance(9.99)
    assert state(cb) is CircuitState.OPEN
    clock.advance(0.01)
    assert state(cb) is CircuitState.HALF_OPEN


def test_half_open_admits_only_limited_probes(clock: FakeClock) -> None:
    cb = breaker(clock, half_open_max_calls=2)
    for _ in range(3):
        cb.record_failure()
    clock.advance(10)
    cb.before_call()
    cb.before_call()
    with pytest.raises(CircuitOpenError, match="probe") as info:
        cb.before_call()
    assert info.value.retry_after == 0.0


def test_probe_success_closes(clock: FakeClock) -> None:
    cb = breaker(clock)
    for _ in range(3):
        cb.record_failure()
    clock.advance(10)
    cb.before_call()
    cb.record_success()
    assert state(cb) is CircuitState.CLOSED
    assert cb.consecutive_failures == 0
    for _ in range(5):
        cb.before_call()  # closed admits everything


def test_probe_failure_reopens_for_a_new_cooldown(clock: FakeClock) -> None:
    cb = breaker(clock)
    for _ in range(3):
        cb.record_failure()
    clock.advance(10)
    cb.before_call()
    cb.record_failure()  # a single failure in half-open is enough
    assert state(cb) is CircuitState.OPEN
    clock.advance(9)
    with pytest.raises(CircuitOpenError) as info:
        cb.before_call()
    assert info.value.retry_after == pytest.approx(1.0)
    clock.advance(1)
    assert state(cb) is CircuitState.HALF_OPEN


def test_record_abandoned_frees_a_probe_slot(clock: FakeClock) -> None:
    cb = breaker(clock, half_open_max_calls=1)
    for _ in range(3):
        cb.record_failure()
    clock.advance(10)
    cb.before_call()
    with pytest.raises(CircuitOpenError):
        cb.before_call()
    cb.record_abandoned()  # the probe was cancelled: no verdict, let another try
    cb.before_call()
    assert state(cb) is CircuitState.HALF_OPEN


def test_record_abandoned_outside_half_open_changes_nothing(clock: FakeClock) -> None:
    cb = breaker(clock)
    cb.record_abandoned()
    assert state(cb) is CircuitState.CLOSED
    for _ in range(3):
        cb.record_failure()
    cb.record_abandoned()
    assert state(cb) is CircuitState.OPEN


def test_reset_closes(clock: FakeClock) -> None:
    cb = breaker(clock)
    for _ in range(3):
        cb.record_failure()
    cb.reset()
    assert state(cb) is CircuitState.CLOSED
    assert cb.consecutive_failures == 0
    cb.before_call()


@pytest.mark.parametrize(
    "kwargs",
    [{"failure_threshold": 0}, {"half_open_max_calls": 0}, {"cooldown": 0}],
)
def test_invalid_settings_raise_value_error(kwargs: dict[str, float]) -> None:
    with pytest.raises(ValueError, match=">= 1"):
        CircuitBreaker(**kwargs)  # type: ignore[arg-type]
