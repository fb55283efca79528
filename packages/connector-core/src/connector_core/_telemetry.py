"""OpenTelemetry spans when ``opentelemetry-api`` is installed; nothing otherwise."""

from __future__ import annotations

from typing import Any

try:  # pragma: no cover - exercised by whichever environment runs the tests
    from opentelemetry import trace as _trace
except ImportError:  # pragma: no cover
    _trace = None  # type: ignore[assignment]


def get_tracer(version: str) -> Any | None:
    """A tracer for connector operations, or None when OpenTelemetry is absent."""
    if _trace is None:
        return None  # type: ignore[unreachable,unused-ignore]
    return _trace.get_tracer("connector_core", version)


def span_kind_client() -> Any:
    assert _trace is not None
    return _trace.SpanKind.CLIENT


def set_error_status(span: Any, error: BaseException) -> None:
    assert _trace is not None
    span.record_exception(error)
    span.set_status(_trace.Status(_trace.StatusCode.ERROR, type(error).__name__))
