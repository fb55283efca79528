"""load_adapters(config): the one place that wires managed or mock clients per integration."""

from __future__ import annotations

import importlib
import os
from collections.abc import Mapping
from types import TracebackType
from typing import TYPE_CHECKING, Any, Self

from connector_core import ConfigError, FieldError

if TYPE_CHECKING:
    from connector_adapters.chatwoot import ChatwootClient, ChatwootConfig

INTEGRATIONS: dict[str, str] = {"chatwoot": "CHATWOOT_"}
"""Known integrations and the environment prefix each reads when no config is given."""


def _chatwoot_module() -> Any:
    # Imported on demand: the subpackage needs the 'chatwoot' extra and says so itself.
    return importlib.import_module("connector_adapters.chatwoot")


class Adapters:
    """The clients of every integration, managed or mock as configured.

    ``adapters.chatwoot`` is built on first use (ImportError naming
    ``connector-adapters[chatwoot]`` when the extra is missing). ``async with``
    connects the managed clients and always disconnects them.
    """

    def __init__(self, configs: Mapping[str, Any]) -> None:
        self._configs = dict(configs)
        self._clients: dict[str, Any] = {}

    @property
    def chatwoot_config(self) -> ChatwootConfig:
        module = _chatwoot_module()
        config = self._configs.get("chatwoot")
        if config is None:
            config = module.ChatwootConfig()
        elif not isinstance(config, module.ChatwootConfig):
            config = module.ChatwootConfig.model_validate(config)
        self._configs["chatwoot"] = config
        result: ChatwootConfig = config
        return result

    @property
    def chatwoot(self) -> ChatwootClient:
        """The Chatwoot client: ManagedChatwoot with credentials, else MockChatwoot."""
        client = self._clients.get("chatwoot")
        if client is None:
            module = _chatwoot_module()
            config = self.chatwoot_config
            if config.is_managed:
                client = module.ManagedChatwoot(config)
            else:
                client = module.MockChatwoot(account_id=config.account_id or 1)
            self._clients["chatwoot"] = client
        result: ChatwootClient = client
        return result

    def modes(self) -> dict[str, str]:
        """``{"chatwoot": "managed" | "mock"}`` for every configured integration."""
        return {
            name: ("managed" if getattr(self, f"{name}_config").is_managed else "mock")
            for name in self._configs
        }

    async def connect(self) -> None:
        """Connect every client built so far, and the configured ones."""
        for name in self._configs:
            await getattr(self, name).connect()

    async def disconnect(self) -> None:
        """Disconnect every client that was built (never raises connector errors)."""
        for client in self._clients.values():
            await client.disconnect()

    async def __aenter__(self) -> Self:
        await self.connect()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.disconnect()


def load_adapters(
    config: Mapping[str, Any] | None = None, *, environ: Mapping[str, str] | None = None
) -> Adapters:
    """Build the adapter bundle.

    ``config`` maps an integration name (``"chatwoot"``) to its config object or
    a mapping of its fields. Without ``config``, each integration whose
    environment variables are set (``CHATWOOT_API_ACCESS_TOKEN``, ...) is read from
    them. An integration without credentials gets its mock client.

    Raises ConfigError for an unknown integration name or bad fields (naming them).
    """
    if config is None:
        env = os.environ if environ is None else environ
        configs: dict[str, Any] = {}
        for name, prefix in INTEGRATIONS.items():
            if any(key.upper().startswith(prefix) for key in env):
                module = importlib.import_module(f"connector_adapters.{name}")
                configs[name] = module.ChatwootConfig.from_env(prefix, env)
        return Adapters(configs)
    unknown = sorted(set(config) - set(INTEGRATIONS))
    if unknown:
        known = ", ".join(sorted(INTEGRATIONS))
        raise ConfigError(
            f"unknown integration(s) {', '.join(map(repr, unknown))}; known: {known}",
            errors=[FieldError(name, f"unknown integration; known: {known}") for name in unknown],
        )
    adapters = Adapters(config)
    for name in config:
        getattr(adapters, f"{name}_config")  # validate now, not at first use
    return adapters
