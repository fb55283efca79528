"""Find and build connectors by URL scheme through the ``connector_core.connectors``
entry-point group."""

from __future__ import annotations

from importlib.metadata import entry_points
from typing import Any
from urllib.parse import urlsplit

from connector_core._errors import ConfigError, FieldError
from connector_core._protocols import Connector
from connector_core._redaction import redact_url

ENTRY_POINT_GROUP = "connector_core.connectors"

# Which distribution provides each well-known scheme, for the "pip install" hint.
KNOWN_PACKAGES: dict[str, str] = {
    "http": "connector-http",
    "https": "connector-http",
    "postgres": "connector-postgres",
    "postgresql": "connector-postgres",
    "mongodb": "connector-mongo",
    "mongodb+srv": "connector-mongo",
    "kafka": "connector-kafka",
    "ws": "connector-websocket",
    "wss": "connector-websocket",
    "file": "connector-file",
    "memory": "connector-testing",
}

_registered: dict[str, type[Any]] = {}


class ConnectorNotInstalledError(ConfigError):
    """No installed package provides a connector for the URL's scheme."""


def register(scheme: str, connector_class: type[Any]) -> None:
    """Register ``connector_class`` for ``scheme`` in this process (entry points are the
    usual way; this is for applications and tests)."""
    _registered[scheme.lower()] = connector_class


def unregister(scheme: str) -> None:
    _registered.pop(scheme.lower(), None)


def _entry_point_classes() -> dict[str, Any]:
    return {ep.name.lower(): ep for ep in entry_points(group=ENTRY_POINT_GROUP)}


def available_schemes() -> tuple[str, ...]:
    """Every scheme an installed connector package (or ``register()``) provides."""
    return tuple(sorted(set(_registered) | set(_entry_point_classes())))


def connector_class(scheme: str) -> type[Any]:
    """The connector class registered for ``scheme``.

    Raises ConnectorNotInstalledError naming the package to install.
    """
    key = scheme.lower()
    if key in _registered:
        return _registered[key]
    ep = _entry_point_classes().get(key)
    if ep is None:
        package = KNOWN_PACKAGES.get(key)
        hint = (
            f"; pip install {package}"
            if package
            else f"; installed schemes: {', '.join(available_schemes()) or 'none'}"
        )
        raise ConnectorNotInstalledError(
            f"no connector installed for URL scheme {scheme!r}{hint}",
            errors=[FieldError("url", f"unsupported scheme {scheme!r}")],
        )
    try:
        cls: type[Any] = ep.load()
    except (ImportError, AttributeError) as exc:  # module missing, or the class within it
        package = KNOWN_PACKAGES.get(key, ep.value.partition(":")[0])
        raise ConnectorNotInstalledError(
            f"the connector for {scheme!r} could not be imported ({exc.name or exc}); "
            f"reinstall it: pip install {package}",
        ) from exc
    return cls


def from_url(url: str, **overrides: Any) -> Connector:
    """Build the connector for ``url`` (``postgresql://...``, ``https://...``, ...).

    Keyword arguments override config fields. Raises ConnectorNotInstalledError
    (a ConfigError) when no installed package handles the scheme, and ConfigError
    when the URL or overrides are invalid. The URL's secrets never appear in errors.
    """
    if not isinstance(url, str):
        raise ConfigError(
            f"a connector URL must be a string, got {type(url).__name__}",
            errors=[FieldError("url", "must be a string")],
        )
    try:
        scheme = urlsplit(url).scheme
    except ValueError:
        scheme = ""
    if not scheme:
        raise ConfigError(
            f"not a connector URL (no scheme): {redact_url(url)!r}",
            errors=[FieldError("url", "missing scheme")],
        )
    cls = connector_class(scheme)
    connector: Connector = cls.from_url(url, **overrides)
    return connector
