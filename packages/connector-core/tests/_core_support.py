"""Helpers shared by connector-core's unit tests: a fake clock, a scripted connector,
an operation script and an event log. (Imported by the tests through conftest's path.)"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any, ClassVar

from pydantic import Field, SecretStr

from connector_core import BaseConnector, ConnectorConfig, EventInfo, LifecycleEvent

SECRET = "pa55-w0rd-XYZZY"


class FakeClock:
    """A monotonic clock the test moves; ``sleep`` (injected into the code under test)
    records the delay and advances the clock instead of waiting."""

    def __init__(self, start: float = 1000.0) -> None:
        self.now = start
        self.sleeps: list[float] = []

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds

    async def sleep(self, delay: float) -> None:
        self.sleeps.append(delay)
        self.now += delay
        await asyncio.sleep(0)


class ScriptedConfig(ConnectorConfig):
    """A config with the usual connection fields and one secret."""

    url_schemes: ClassVar[tuple[str, ...]] = ("scripted",)

    host: str = Field("localhost", min_length=1)
    port: int = Field(5000, ge=1, le=65535)
    user: str | None = None
    password: SecretStr | None = None
    database: str | None = None
    label: str = "x"


class ScriptedConnector(BaseConnector[ScriptedConfig]):
    """A connector whose connects fail as scripted; counts driver calls."""

    name: ClassVar[str] = "scripted"
    version: ClassVar[str] = "9.9.9"
    config_class: ClassVar[type[ConnectorConfig]] = ScriptedConfig

    def __init__(self, config: ScriptedConfig | None = None, **kwargs: Any) -> None:
        super().__init__(config or ScriptedConfig(), **kwargs)
        self.connect_script: list[BaseException] = []
        self.connect_calls = 0
        self.disconnect_calls = 0
        self.connect_gate: asyncio.Event | None = None
        self.translations: dict[type[BaseException], Callable[[BaseException], Any]] = {}

    async def _connect(self) -> None:
        self.connect_calls += 1
        if self.connect_gate is not None:
            await self.connect_gate.wait()
        if self.connect_script:
            raise self.connect_script.pop(0)

    async def _disconnect(self) -> None:
        self.disconnect_calls += 1

    async def _ping(self) -> None:
        return None

    def _translate_error(self, exc: BaseException) -> Any:
        translate = self.translations.get(type(exc))
        return translate(exc) if translate is not None else None


class Script:
    """An operation that fails with the scripted exceptions, then returns ``result``."""

    def __init__(self, *failures: BaseException, result: Any = "ok") -> None:
        self.failures = list(failures)
        self.result = result
        self.calls = 0

    async def __call__(self) -> Any:
        self.calls += 1
        if self.failures:
            raise self.failures.pop(0)
        return self.result


class EventLog:
    """Subscribes to every lifecycle event and keeps what it saw."""

    def __init__(self, connector: BaseConnector[Any]) -> None:
        self.infos: list[EventInfo] = []
        for event in LifecycleEvent:
            connector.on(event, self.infos.append)

    @property
    def events(self) -> list[LifecycleEvent]:
        return [i.event for i in self.infos]
