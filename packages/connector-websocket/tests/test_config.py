"""WebSocketConfig: URLs, every bad field named at once, TLS only for wss://, what the
driver is given."""

from __future__ import annotations

from pathlib import Path

import pytest

from connector_core import ConfigError
from connector_websocket import SecretMode, WebSocketConfig


def test_from_url_sets_named_fields_and_keeps_the_rest_of_the_query() -> None:
    config = WebSocketConfig.from_url(
        "wss://api.example.com/agent?heartbeat_interval=5&pool_size=3&room=7"
    )
    assert config.heartbeat_interval == 5
    assert config.pool_size == 3
    assert config.url == "wss://api.example.com/agent?room=7"
    assert config.secure


def test_every_bad_field_is_named_without_its_value() -> None:
    with pytest.raises(ConfigError) as caught:
        WebSocketConfig(
            url="ws://user:hunter2-pw@host/",
            pool_size=100,
            pong_timeout=0,
            headers={"bad name": "x"},
            subprotocols=("",),
            reconnect={"max_attempts": 0},
        )
    assert set(caught.value.fields) >= {
        "url",
        "pool_size",
        "pong_timeout",
        "headers",
        "subprotocols",
        "reconnect.max_attempts",
    }
    assert "hunter2-pw" not in str(caught.value)


def test_settings_that_disagree_are_named() -> None:
    with pytest.raises(ConfigError) as caught:
        WebSocketConfig(
            url="ws://host/",
            secret_mode="first_message",
            heartbeat_interval=None,
            heartbeat_message={"type": "heartbeat"},
            ssl_check_hostname=False,
        )
    assert set(caught.value.fields) == {"secret_mode", "heartbeat_message"}


def test_tls_files_are_only_for_wss_and_must_load(tmp_path: Path) -> None:
    bogus = tmp_path / "ca.pem"
    bogus.write_text("not a certificate")
    with pytest.raises(ConfigError) as plain:
        WebSocketConfig(url="ws://host/", ssl_cafile=bogus)
    assert plain.value.fields == ("ssl_cafile",)
    with pytest.raises(ConfigError) as broken:
        WebSocketConfig(url="wss://host/", ssl_cafile=bogus)
    assert broken.value.fields == ("ssl_cafile",)
    with pytest.raises(ConfigError) as missing:
        WebSocketConfig(url="wss://host/", ssl_cafile=tmp_path / "nowhere.pem")
    assert missing.value.fields == ("ssl_cafile",)


def test_a_self_signed_ca_gives_a_verifying_context(certificate: tuple[Path, Path]) -> None:
    _, cert = certificate
    config = WebSocketConfig(url="wss://localhost/", ssl_cafile=cert)
    context = config.ssl_context()
    assert context is not None
    assert context.check_hostname
    assert config.connect_options()["ssl"] is not None


def test_the_secret_travels_as_configured() -> None:
    header = WebSocketConfig(url="ws://h/", secret="abc-123")
    assert header.handshake_headers() == {"Authorization": "Bearer abc-123"}
    assert header.auth_message() is None
    custom = WebSocketConfig(
        url="ws://h/", secret="abc-123", secret_header="X-Key", secret_prefix=""
    )
    assert custom.handshake_headers() == {"X-Key": "abc-123"}
    first = WebSocketConfig(url="ws://h/", secret="abc-123", secret_mode=SecretMode.FIRST_MESSAGE)
    assert first.handshake_headers() == {}
    assert first.auth_message() == '{"type": "auth", "secret": "abc-123"}'


def test_driver_options_follow_the_config() -> None:
    config = WebSocketConfig(
        url="ws://h/",
        heartbeat_interval=7,
        pong_timeout=3,
        compression="none",
        max_message_size=1000,
        subprotocols=("v1.agent",),
    )
    options = config.connect_options()
    assert options["ping_interval"] == 7
    assert options["ping_timeout"] == 3
    assert options["compression"] is None
    assert options["max_size"] == 1000
    assert options["subprotocols"] == ["v1.agent"]
    assert "ssl" not in options
    off = WebSocketConfig(url="ws://h/", heartbeat_interval=None).connect_options()
    assert off["ping_interval"] is None
    assert off["ping_timeout"] is None


def test_from_env_reads_nested_reconnect_settings() -> None:
    config = WebSocketConfig.from_env(
        "AGENT_",
        {"AGENT_URL": "ws://h:9000/x", "AGENT_RECONNECT__MAX_ATTEMPTS": "4", "AGENT_SECRET": "s"},
    )
    assert config.url == "ws://h:9000/x"
    assert config.reconnect.max_attempts == 4
    assert config.secret is not None
    assert config.secret.get_secret_value() == "s"
