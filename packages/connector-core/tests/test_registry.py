"""The registry: entry points by URL scheme, register/unregister, helpful errors."""

from __future__ import annotations

from collections.abc import Iterator
from importlib.metadata import EntryPoint, EntryPoints
from typing import Any

import pytest
from _core_support import SECRET, ScriptedConnector

import connector_core
import connector_core._registry as registry
from connector_core import (
    ENTRY_POINT_GROUP,
    ConfigError,
    ConnectorNotInstalledError,
    available_schemes,
    connector_class,
    from_url,
    register,
    unregister,
)
from connector_testing import MemoryConnector


@pytest.fixture
def entry_points(monkeypatch: pytest.MonkeyPatch) -> dict[str, Any]:
    """Control which entry points the registry sees: ``hide`` names real ones to drop,
    ``add`` holds extra EntryPoint objects."""
    control: dict[str, Any] = {"hide": set(), "add": []}
    real = registry.entry_points  # type: ignore[attr-defined]

    def fake(*, group: str) -> EntryPoints:
        eps = [ep for ep in real(group=group) if ep.name not in control["hide"]]
        return EntryPoints([*eps, *control["add"]])

    monkeypatch.setattr(registry, "entry_points", fake)
    return control


@pytest.fixture
def scripted_registered() -> Iterator[None]:
    register("Scripted", ScriptedConnector)
    yield
    unregister("scripted")


def test_memory_scheme_comes_from_connector_testing_entry_point() -> None:
    assert "memory" in available_schemes()
    assert connector_class("memory") is MemoryConnector
    connector = from_url("memory://unit-store?latency=0")
    assert isinstance(connector, MemoryConnector)
    assert connector.config.store == "unit-store"
    assert isinstance(connector, connector_core.Connector)


def test_from_url_applies_overrides() -> None:
    connector = from_url("memory://a", store="b")
    assert isinstance(connector, MemoryConnector)
    assert connector.config.store == "b"


def test_register_and_unregister(scripted_registered: None) -> None:
    assert "scripted" in available_schemes()
    assert connector_class("SCRIPTED") is ScriptedConnector
    connector = from_url(f"scripted://u:{SECRET}@h:1234/db")
    assert isinstance(connector, ScriptedConnector)
    assert connector.config.port == 1234
    unregister("scripted")
    assert "scripted" not in available_schemes()
    with pytest.raises(ConnectorNotInstalledError):
        connector_class("scripted")


def test_register_beats_an_entry_point() -> None:
    register("memory", ScriptedConnector)
    try:
        assert connector_class("memory") is ScriptedConnector
    finally:
        unregister("memory")
    assert connector_class("memory") is MemoryConnector


@pytest.mark.parametrize(
    ("url", "package"),
    [
        (f"mongodb://admin:{SECRET}@mongo:27017/app", "connector-mongo"),
        (f"mongodb+srv://admin:{SECRET}@cluster.example.com/app", "connector-mongo"),
        (f"postgresql://app:{SECRET}@db/app", "connector-postgres"),
        (f"kafka://broker:9092?sasl_password={SECRET}", "connector-kafka"),
        (f"wss://user:{SECRET}@stream.example.com", "connector-websocket"),
        (f"https://user:{SECRET}@api.example.com", "connector-http"),
    ],
)
def test_missing_known_package_says_what_to_pip_install(
    entry_points: dict[str, Any], url: str, package: str
) -> None:
    scheme = url.partition("://")[0]
    entry_points["hide"].add(scheme)
    with pytest.raises(ConnectorNotInstalledError) as info:
        from_url(url)
    error = info.value
    assert isinstance(error, ConfigError)
    assert f"pip install {package}" in str(error)
    assert repr(scheme) in str(error)
    assert error.fields == ("url",)
    assert SECRET not in f"{error} {error!r}"


def test_unknown_scheme_lists_installed_schemes() -> None:
    with pytest.raises(ConnectorNotInstalledError) as info:
        from_url(f"gopher://u:{SECRET}@h/")
    message = str(info.value)
    assert "no connector installed for URL scheme 'gopher'" in message
    assert "installed schemes:" in message
    assert "memory" in message
    assert SECRET not in message


@pytest.mark.parametrize("url", ["no-scheme-here", f"//u:{SECRET}@host/db", ""])
def test_url_without_scheme_is_a_config_error(url: str) -> None:
    with pytest.raises(ConfigError, match="no scheme") as info:
        from_url(url)
    assert info.value.fields == ("url",)
    assert SECRET not in str(info.value)


@pytest.mark.parametrize("url", [12345, None, b"memory://x"])
def test_url_that_is_not_a_string_is_a_config_error(url: object) -> None:
    with pytest.raises(ConfigError, match="must be a string") as info:
        from_url(url)  # type: ignore[arg-type]
    assert info.value.fields == ("url",)


@pytest.mark.parametrize(
    ("name", "target", "package"),
    [
        ("kafka", "connector_kafka_not_installed_xyz:KafkaConnector", "connector-kafka"),
        ("oddball", "oddball_pkg_missing_xyz:Thing", "oddball_pkg_missing_xyz"),
        ("broken", "connector_core:NoSuchConnectorXyz", "connector_core"),
    ],
)
def test_entry_point_that_fails_to_import_says_to_reinstall(
    entry_points: dict[str, Any], name: str, target: str, package: str
) -> None:
    entry_points["hide"].add(name)
    entry_points["add"].append(EntryPoint(name=name, value=target, group=ENTRY_POINT_GROUP))
    assert name in available_schemes()
    with pytest.raises(ConnectorNotInstalledError) as info:
        from_url(f"{name}://u:{SECRET}@h/")
    message = str(info.value)
    assert "could not be imported" in message
    assert f"reinstall it: pip install {package}" in message
    assert SECRET not in message
    assert info.value.__cause__ is not None


def test_bad_config_in_url_is_a_config_error_without_the_secret() -> None:
    with pytest.raises(ConfigError) as info:
        from_url(f"memory://:{SECRET}@store?latency=-1")
    assert "latency" in info.value.fields
    assert SECRET not in str(info.value)
