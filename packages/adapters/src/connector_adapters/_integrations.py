"""The registry of integrations ``load_adapters`` knows: each says how to build its
managed and mock clients, without the bundle naming any of them."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from importlib.metadata import EntryPoint, entry_points
from typing import Any, Protocol

from connector_core import ConfigError, FieldError

ENTRY_POINT_GROUP = "connector_adapters.integrations"
"""Packages register integrations under this entry-point group: ``name = "module:OBJECT"``
where ``OBJECT`` is an :class:`Integration` (imported only when that integration is used,
so a missing extra fails there, naming the extra)."""


class IntegrationConfig(Protocol):
    """What the bundle needs of an integration's config: which client it selects."""

    @property
    def is_managed(self) -> bool: ...


class IntegrationClient(Protocol):
    async def connect(self) -> None: ...

    async def disconnect(self) -> None: ...


@dataclass(frozen=True, slots=True)
class Integration:
    """One business integration: its config class and its two clients.

    ``managed(config)`` talks to the real API, ``mock(config)`` keeps everything in
    memory; ``config.is_managed`` chooses. ``env_prefix`` is where ``load_adapters()``
    looks without a config (default ``NAME_``).
    """

    name: str
    config_class: Any
    managed: Callable[[Any], IntegrationClient]
    mock: Callable[[Any], IntegrationClient]
    env_prefix: str = ""

    @property
    def prefix(self) -> str:
        return self.env_prefix or f"{self.name.upper()}_"

    def config(self, value: Any) -> IntegrationConfig:
        """``value`` as this integration's config (a config object, a mapping of its
        fields, or None for its defaults). Raises ConfigError naming the bad fields."""
        if isinstance(value, self.config_class):
            config: IntegrationConfig = value
            return config
        built: IntegrationConfig = self.config_class.model_validate(value or {})
        return built

    def client(self, config: IntegrationConfig) -> IntegrationClient:
        return self.managed(config) if config.is_managed else self.mock(config)


_registered: dict[str, Integration] = {}


def register_integration(integration: Integration) -> None:
    """Make ``integration`` known in this process (entry points are the usual way)."""
    _registered[integration.name] = integration


def unregister_integration(name: str) -> None:
    _registered.pop(name, None)


def _entry_points() -> dict[str, EntryPoint]:
    return {ep.name: ep for ep in entry_points(group=ENTRY_POINT_GROUP)}


def integration_names() -> tuple[str, ...]:
    """Every integration known: registered at run time or by an installed package."""
    return tuple(sorted(set(_registered) | set(_entry_points())))


def env_prefix(name: str) -> str:
    """The environment prefix of integration ``name`` (known without importing it)."""
    found = _registered.get(name)
    return found.prefix if found is not None else f"{name.upper()}_"


def integration(name: str) -> Integration:
    """The integration called ``name``, imported on first use. Raises ConfigError for an
    unknown name, and the integration's own ImportError (naming its extra) when its
    dependencies are missing."""
    found = _registered.get(name)
    if found is not None:
        return found
    ep = _entry_points().get(name)
    if ep is None:
        known = ", ".join(integration_names()) or "none"
        raise ConfigError(
            f"unknown integration {name!r}; known: {known}",
            errors=[FieldError(name, f"unknown integration; known: {known}")],
        )
    loaded = ep.load()
    if not isinstance(loaded, Integration):
        raise TypeError(f"entry point {ep.value} is not an Integration")
    return loaded
