"""OpenTelemetry spans around every operation when opentelemetry is installed.

Each test hands the connector a tracer from its own SDK ``TracerProvider`` (through
``connector_core._telemetry.get_tracer``, which the connector calls at construction),
so no global provider is set and other test modules are unaffected.
"""

from __future__ import annotations

import os
import random
import subprocess
import sys
import textwrap
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from _core_support import SECRET, Script, ScriptedConfig, ScriptedConnector
from opentelemetry import trace
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.sdk.trace.sampling import ALWAYS_OFF
from opentelemetry.trace import SpanKind, StatusCode
from pydantic import SecretStr

import connector_core._telemetry as telemetry
from connector_core import NotFoundError, RetryPolicy, ServiceUnavailableError

MakeTraced = Callable[..., ScriptedConnector]


@pytest.fixture
def exporter() -> InMemorySpanExporter:
    return InMemorySpanExporter()


@pytest.fixture
def traced(monkeypatch: pytest.MonkeyPatch, exporter: InMemorySpanExporter) -> MakeTraced:
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))

    def get_tracer(version: str) -> Any:
        return provider.get_tracer("connector_core", version)

    monkeypatch.setattr(telemetry, "get_tracer", get_tracer)

    def make(**kwargs: Any) -> ScriptedConnector:
        config = ScriptedConfig(**kwargs.pop("config", {}))
        return ScriptedConnector(config, **kwargs)

    return make


async def test_span_per_operation_with_name_kind_and_attributes(
    traced: MakeTraced, exporter: InMemorySpanExporter
) -> None:
    connector = traced()
    await connector.connect()
    seen_inside: list[Any] = []

    async def op() -> str:
        seen_inside.append(trace.get_current_span())
        return "ok"

    assert await connector.run("select", op, idempotent=True) == "ok"
    (span,) = exporter.get_finished_spans()
    assert span.name == "scripted.select"
    assert span.kind is SpanKind.CLIENT
    assert span.attributes is not None
    assert dict(span.attributes) == {
        "connector.name": "scripted",
        "connector.operation": "select",
    }
    assert span.status.status_code is StatusCode.UNSET
    assert span.instrumentation_scope is not None
    assert span.instrumentation_scope.name == "connector_core"
    assert span.instrumentation_scope.version == "9.9.9"
    # The span is current inside the operation, so driver instrumentation nests under it.
    assert seen_inside[0].get_span_context() == span.get_span_context()


async def test_failed_operation_span_has_error_status_code_and_exception(
    traced: MakeTraced, exporter: InMemorySpanExporter
) -> None:
    connector = traced(config={"user": "app", "password": SecretStr(SECRET)})
    await connector.connect()
    with pytest.raises(NotFoundError):
        await connector.run("get", Script(NotFoundError(f"row for {SECRET} not found")))
    (span,) = exporter.get_finished_spans()
    assert span.status.status_code is StatusCode.ERROR
    assert span.status.description == "NotFoundError"
    assert span.attributes is not None
    assert span.attributes["connector.error_code"] == "not_found"
    (event,) = span.events
    assert event.name == "exception"
    assert event.attributes is not None
    assert str(event.attributes["exception.type"]).endswith("NotFoundError")
    assert SECRET not in str(event.attributes["exception.message"])


async def test_one_span_covers_all_retries(
    traced: MakeTraced, exporter: InMemorySpanExporter, sleeps: list[float]
) -> None:
    connector = traced(retry_policy=RetryPolicy(max_attempts=3, rng=random.Random(1)))
    await connector.connect()
    op = Script(ServiceUnavailableError("busy"), result="ok")
    assert await connector.run("get", op, idempotent=True) == "ok"
    (span,) = exporter.get_finished_spans()
    assert span.status.status_code is StatusCode.UNSET


async def test_sampled_out_span_still_propagates_its_context(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # A non-recording span with a valid trace context must still be made current
    # (the fast path skips only spans that carry nothing).
    provider = TracerProvider(sampler=ALWAYS_OFF)
    monkeypatch.setattr(telemetry, "get_tracer", lambda v: provider.get_tracer("x", v))
    connector = ScriptedConnector()
    await connector.connect()
    inside: list[Any] = []

    async def op() -> None:
        inside.append(trace.get_current_span().get_span_context())

    await connector.run("get", op)
    assert inside[0].is_valid
    assert not inside[0].trace_flags.sampled


async def test_without_an_sdk_the_road_works_and_makes_no_span_current() -> None:
    # The dev environment has the API but no global SDK provider: a no-op tracer.
    connector = ScriptedConnector()
    assert connector._tracer is not None
    await connector.connect()
    inside: list[Any] = []

    async def op() -> str:
        inside.append(trace.get_current_span())
        return "ok"

    assert await connector.run("get", op) == "ok"
    assert not inside[0].get_span_context().is_valid
    with pytest.raises(NotFoundError):
        await connector.run("get", Script(NotFoundError("x")))


async def test_tracing_disabled(exporter: InMemorySpanExporter, traced: MakeTraced) -> None:
    connector = traced()
    connector._tracer = None
    await connector.connect()
    assert await connector.run("get", Script(result=3)) == 3
    assert exporter.get_finished_spans() == ()


def test_get_tracer_returns_a_tracer_when_the_api_is_installed() -> None:
    tracer = telemetry.get_tracer("1.2.3")
    assert tracer is not None
    assert hasattr(tracer, "start_span")


async def test_without_a_provider_no_span_is_started_and_the_callers_context_stays(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # The API's proxy tracer with no provider in the process: a span would only be
    # the caller's context again, so the road does not start one (decision 0128)...
    started: list[str] = []
    real_start = trace.NoOpTracer.start_span

    def counting_start(self: Any, name: str, *args: Any, **kwargs: Any) -> Any:
        started.append(name)
        return real_start(self, name, *args, **kwargs)

    monkeypatch.setattr(trace.NoOpTracer, "start_span", counting_start)
    connector = ScriptedConnector()
    assert telemetry.is_proxy(connector._tracer)
    await connector.connect()
    # ...and a trace context the caller carries (say, extracted from an incoming
    # request) is what the operation sees, so propagators inject the same parent.
    parent = trace.SpanContext(
        trace_id=0x1234, span_id=0x5678, is_remote=True, trace_flags=trace.TraceFlags(1)
    )
    inside: list[Any] = []

    async def op() -> None:
        inside.append(trace.get_current_span().get_span_context())

    with trace.use_span(trace.NonRecordingSpan(parent)):
        await connector.run("get", op)
    assert inside == [parent]
    assert started == []


def test_a_provider_set_after_the_connector_was_built_records_its_spans() -> None:
    # set_tracer_provider() works once per process: run in a fresh interpreter.
    script = textwrap.dedent(
        """
        import asyncio
        from opentelemetry import trace
        from opentelemetry.sdk.trace import TracerProvider
        from opentelemetry.sdk.trace.export import SimpleSpanProcessor
        from opentelemetry.sdk.trace.export.in_memory_span_exporter import (
            InMemorySpanExporter,
        )
        from _core_support import ScriptedConnector

        async def main():
            connector = ScriptedConnector()  # built before any provider exists
            await connector.connect()
            async def op():
                return trace.get_current_span().get_span_context().is_valid
            before = await connector.run("get", op)
            exporter = InMemorySpanExporter()
            provider = TracerProvider()
            provider.add_span_processor(SimpleSpanProcessor(exporter))
            trace.set_tracer_provider(provider)
            after = await connector.run("get", op)
            names = [span.name for span in exporter.get_finished_spans()]
            print(before, after, names)

        asyncio.run(main())
        """
    )
    tests_dir = Path(__file__).parent
    result = subprocess.run(
        [sys.executable, "-c", script],
        cwd=tests_dir,
        env={**os.environ, "PYTHONPATH": str(tests_dir)},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.split("\n")[0] == "False True ['scripted.get']"


def test_the_provider_check_holds_for_the_locked_api() -> None:
    # The names decision 0128 reads exist in the locked opentelemetry-api: when a
    # release renames them this fails, before the road silently starts every span.
    assert telemetry._PROVIDER_KNOWN
    assert telemetry.is_proxy(telemetry.get_tracer("1"))
