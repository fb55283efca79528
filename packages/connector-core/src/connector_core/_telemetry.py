"""OpenTelemetry spans when ``opentelemetry-api`` is installed; nothing otherwise."""

from __future__ import annotations

from contextlib import AbstractContextManager
from typing import Any

try:  # pragma: no cover - exercised by whichever environment runs the tests
    from opentelemetry import trace as _trace
except ImportError:  # pragma: no cover
    _trace = None  # type: ignore[assignment]

SPAN_KIND_CLIENT: Any = _trace.SpanKind.CLIENT if _trace is not None else None

_ProxyTracer: Any = getattr(_trace, "ProxyTracer", None)
# The API's own test of whether a global provider exists (ProxyTracer._tracer reads
# the same module global). Private: when a release renames it, every span is started
# and judged by is_noop() as before (decision 0128); test_telemetry.py fails first.
_PROVIDER_KNOWN = (
    _trace is not None
    and hasattr(_trace, "_TRACER_PROVIDER")
    and _ProxyTracer is not None
    and "_real_tracer" in vars(_ProxyTracer("connector_core"))
)


def get_tracer(version: str) -> Any | None:
    """A tracer for connector operations, or None when OpenTelemetry is absent."""
    if _trace is None:
        return None  # type: ignore[unreachable,unused-ignore]
    return _trace.get_tracer("connector_core", version)


def is_proxy(tracer: Any) -> bool:
    """Whether ``tracer`` is the API's proxy (it follows the global provider)."""
    return _PROVIDER_KNOWN and tracer is not None and type(tracer) is _ProxyTracer


def is_inert_proxy(tracer: Any) -> bool:
    """Whether ``tracer`` is the API's proxy tracer and the process has no tracer
    provider yet: every span it would start is then the current span's context again
    in a non-recording span, so starting one and making it current changes nothing
    observable (not the current trace context, not what propagators inject). Only
    for a tracer :func:`is_proxy` accepted; checked on every call, so a provider set
    after the connector was built takes effect."""
    return tracer._real_tracer is None and _trace._TRACER_PROVIDER is None


def is_noop(span: Any) -> bool:
    """Whether ``span`` neither records nor carries a trace context to propagate
    (what the API's no-op tracer returns when no SDK is configured)."""
    return not span.is_recording() and not span.get_span_context().is_valid


def use_span(span: Any) -> AbstractContextManager[Any]:
    """Make ``span`` current for the block and end it on exit; the caller records errors."""
    assert _trace is not None
    return _trace.use_span(
        span, end_on_exit=True, record_exception=False, set_status_on_exception=False
    )


def set_error_status(span: Any, error: BaseException) -> None:
    assert _trace is not None
    span.record_exception(error)
    span.set_status(_trace.Status(_trace.StatusCode.ERROR, type(error).__name__))
