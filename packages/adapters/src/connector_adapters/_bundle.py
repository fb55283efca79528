"""load_adapters(config): the one place that wires managed or mock clients per integration."""

from __future__ import annotations

import asyncio
import logging
import os
from collections.abc import Mapping
from types import TracebackType
from typing import Any, Self

from connector_adapters._integrations import (
    IntegrationClient,
    IntegrationConfig,
    env_prefix,
    integration,
    integration_names,
)
from connector_core import ConfigError, FieldError

logger = logging.getLogger("connector_adapters.bundle")


class Adapters:
    """The clients of every configured integration, managed or mock as configured.

    ``adapters.client("chatwoot")`` (or ``adapters.chatwoot``) is built on first use;
    ``adapters.config("chatwoot")`` (or ``adapters.chatwoot_config``) is its config.
    ``async with`` connects every configured client and always disconnects them; when
    one fails to connect, those already connected are disconnected before the error
    propagates.
    """

    def __init__(self, configs: Mapping[str, Any]) -> None:
        self._given = dict(configs)
        self._configs: dict[str, IntegrationConfig] = {}
        self._clients: dict[str, IntegrationClient] = {}

    def config(self, name: str) -> IntegrationConfig:
        """The validated config of integration ``name`` (its defaults when none given)."""
        config = self._configs.get(name)
        if config is None:
            config = self._configs[name] = integration(name).config(self._given.get(name))
        return config

    def client(self, name: str) -> Any:
        """The client of integration ``name``: managed when its config has credentials,
        else the mock. Built once."""
        client = self._clients.get(name)
        if client is None:
            client = self._clients[name] = integration(name).client(self.config(name))
        return client

    def __getattr__(self, attribute: str) -> Any:
        # adapters.chatwoot and adapters.chatwoot_config, for every known integration.
        if attribute.startswith("_"):
            raise AttributeError(attribute)
        names = integration_names()
        if attribute in names:
            return self.client(attribute)
        base = attribute.removesuffix("_config")
        if attribute.endswith("_config") and base in names:
            return self.config(base)
        raise AttributeError(f"{type(self).__name__} has no integration {attribute!r}")

    def modes(self) -> dict[str, str]:
        """``{"chatwoot": "managed" | "mock", ...}`` for every configured integration."""
        return {name: "managed" if self.config(name).is_managed else "mock" for name in self._given}

    async def connect(self) -> None:
        """Connect every configured client, in order. When one fails, the ones already
        connected are disconnected, then its error is raised."""
        connected: list[IntegrationClient] = []
        try:
            for name in self._given:
                client = self.client(name)
                await client.connect()
                connected.append(client)
        except BaseException:
            await asyncio.shield(self._disconnect_all(reversed(connected)))
            raise

    async def disconnect(self) -> None:
        """Disconnect every client that was built (never raises connector errors)."""
        await self._disconnect_all(reversed(list(self._clients.values())))

    async def _disconnect_all(self, clients: Any) -> None:
        for client in clients:
            try:
                await client.disconnect()
            except Exception as exc:  # one client's trouble must not keep others open
                logger.warning("disconnecting %r failed: %s", client, type(exc).__name__)

    async def __aenter__(self) -> Self:
        await self.connect()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await asyncio.shield(self.disconnect())


def load_adapters(
    config: Mapping[str, Any] | None = None, *, environ: Mapping[str, str] | None = None
) -> Adapters:
    """Build the adapter bundle from the registry of integrations.

    ``config`` maps an integration name (``"chatwoot"``) to its config object or a
    mapping of its fields. Without ``config``, each known integration whose environment
    variables are set (``CHATWOOT_API_ACCESS_TOKEN``, ...) is read from them. An
    integration without credentials gets its mock client.

    Raises ConfigError for unknown integration names or bad fields (naming them), and
    an integration's ImportError naming its extra when it is not installed.
    """
    if config is None:
        env = os.environ if environ is None else environ
        configs: dict[str, Any] = {}
        for name in integration_names():
            prefix = env_prefix(name)
            if any(key.upper().startswith(prefix) for key in env):
                configs[name] = integration(name).config_class.from_env(prefix, env)
        return Adapters(configs)
    known = integration_names()
    unknown = sorted(set(config) - set(known))
    if unknown:
        listing = ", ".join(known) or "none"
        raise ConfigError(
            f"unknown integration(s) {', '.join(map(repr, unknown))}; known: {listing}",
            errors=[FieldError(n, f"unknown integration; known: {listing}") for n in unknown],
        )
    adapters = Adapters(config)
    for name in config:
        adapters.config(name)  # validate now, not at first use
    return adapters
