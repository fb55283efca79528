"""HttpConfig: from a URL, from env, validation, redaction; the registry; exports."""

from __future__ import annotations

import sys
from typing import Any

import pytest
from pydantic import SecretStr

import connector_http
from connector_core import ConfigError, connector_class
from connector_http import (
    ApiKeyAuthConfig,
    BasicAuthConfig,
    BearerAuthConfig,
    HttpConfig,
    HttpConnector,
    NoAuthConfig,
    OAuth2ClientCredentialsConfig,
)


def test_public_api_is_exactly_this() -> None:
    assert set(connector_http.__all__) == {
        "IDEMPOTENT_METHODS",
        "ApiKeyAuthConfig",
        "AuthConfig",
        "BasicAuthConfig",
        "BearerAuthConfig",
        "GraphQLConnector",
        "GraphQLError",
        "HttpConfig",
        "HttpConnector",
        "HttpResponse",
        "HttpStreamResponse",
        "HttpTimeouts",
        "NoAuthConfig",
        "OAuth2ClientCredentialsConfig",
        "OAuth2JwtBearerConfig",
        "OAuth2RefreshTokenConfig",
        "PaginationLoopError",
        "PoolLimits",
        "RequestOptions",
        "ResponseTooLargeError",
        "TlsSettings",
        "TokenRotatedCallback",
        "__version__",
        "parse_retry_after",
    }
    for name in connector_http.__all__:
        assert hasattr(connector_http, name), name


def test_http_and_https_schemes_are_registered() -> None:
    assert connector_class("http") is HttpConnector
    assert connector_class("https") is HttpConnector


def test_from_url_basic_credentials_move_into_auth() -> None:
    config = HttpConfig.from_url("https://ann:p%40ss@api.example.com/v1?timeout=5&timeouts.read=2")
    assert config.base_url == "https://api.example.com/v1"
    assert isinstance(config.auth, BasicAuthConfig)
    assert config.auth.username == "ann"
    assert config.auth.password.get_secret_value() == "p@ss"
    assert config.timeout == 5.0
    assert config.timeouts.read == 2.0
    assert config.connection_string() == "https://api.example.com/v1"
    assert "p@ss" not in repr(config)


def test_from_url_api_key_query_parameter_becomes_query_auth() -> None:
    config = HttpConfig.from_url("https://api.example.com/v1?api_key=k-123&health_path=/ping")
    assert isinstance(config.auth, ApiKeyAuthConfig)
    assert config.auth.location == "query"
    assert config.auth.name == "api_key"
    assert config.auth.key.get_secret_value() == "k-123"
    assert config.health_path == "/ping"
    assert "k-123" not in config.connection_string()
    assert "k-123" in config.secret_values()
    assert config.masked_query_params == frozenset({"api_key"})


def test_from_url_rejects_other_schemes_and_unknown_parameters() -> None:
    with pytest.raises(ConfigError) as caught:
        HttpConfig.from_url("ftp://example.com")
    assert caught.value.fields == ("url",)
    with pytest.raises(ConfigError) as unknown:
        HttpConfig.from_url("https://example.com?colour=blue")
    assert "colour" in unknown.value.fields


def test_from_env_with_nested_auth() -> None:
    env = {
        "API_BASE_URL": "https://api.example.com",
        "API_AUTH__TYPE": "bearer",
        "API_AUTH__TOKEN": "tok-env-1",
        "API_RETRY__MAX_ATTEMPTS": "5",
        "API_HEADERS": '{"X-Tenant": "t1"}',
    }
    config = HttpConfig.from_env("API_", env)
    assert isinstance(config.auth, BearerAuthConfig)
    assert config.auth.token.get_secret_value() == "tok-env-1"
    assert config.retry.max_attempts == 5
    assert config.headers == {"X-Tenant": "t1"}
    from_url = HttpConfig.from_env("API_", {"API_URL": "https://u:p@h.example.com/x"})
    assert from_url.base_url == "https://h.example.com/x"


def test_base_url_validation_names_fields_without_echoing_secrets() -> None:
    with pytest.raises(ConfigError) as caught:
        HttpConfig(base_url="https://u:hunter2@example.com", timeouts={"read": 0})  # type: ignore[arg-type]
    assert set(caught.value.fields) == {"base_url", "timeouts.read"}
    assert "hunter2" not in str(caught.value)
    with pytest.raises(ConfigError):
        HttpConfig(base_url="https://example.com/v1?x=1")
    with pytest.raises(ConfigError):
        HttpConfig(base_url="/relative")


def test_auth_union_is_discriminated_by_type() -> None:
    assert isinstance(HttpConfig(base_url="http://h").auth, NoAuthConfig)
    config = HttpConfig(
        base_url="http://h",
        auth={  # type: ignore[arg-type]
            "type": "oauth2_client_credentials",
            "token_url": "https://login.example.com/token",
            "client_id": "c",
            "client_secret": "s3cr3t-x",
        },
    )
    assert isinstance(config.auth, OAuth2ClientCredentialsConfig)
    assert "s3cr3t-x" in config.secret_values()
    assert "s3cr3t-x" not in str(config.model_dump())
    with pytest.raises(ConfigError) as caught:
        HttpConfig(
            base_url="http://h",
            auth={"type": "oauth2_client_credentials", "token_url": "ftp://x", "client_id": ""},  # type: ignore[arg-type]
        )
    fields = set(caught.value.fields)
    assert {
        "auth.oauth2_client_credentials.token_url",
        "auth.oauth2_client_credentials.client_id",
        "auth.oauth2_client_credentials.client_secret",
    } <= fields


def test_proxy_and_tls_password_are_secrets() -> None:
    config = HttpConfig(
        base_url="https://h",
        proxy=SecretStr("http://user:proxypw@proxy:3128"),
        tls={"client_key_password": "keypw-1"},  # type: ignore[arg-type]
    )
    assert "proxypw" not in repr(config)
    assert "keypw-1" not in repr(config)
    assert {"http://user:proxypw@proxy:3128", "keypw-1"} <= set(config.secret_values())


def test_connector_accepts_a_url() -> None:
    http = HttpConnector("https://api.example.com/v1?api_key=zz-top-1")
    assert "zz-top-1" not in repr(http)
    assert http.config.base_url == "https://api.example.com/v1"


async def test_missing_tls_files_are_config_errors() -> None:
    http = HttpConnector(
        HttpConfig(base_url="https://127.0.0.1:1", tls={"ca_bundle": "/nonexistent/ca.pem"})  # type: ignore[arg-type]
    )
    with pytest.raises(ConfigError) as caught:
        await http.connect()
    assert caught.value.fields == ("tls.ca_bundle",)


@pytest.mark.parametrize(
    ("url", "field"),
    [
        ("https://h.example.com/v1?timeouts=1&timeouts.read=2", "timeouts.read"),
        ("https://h.example.com/v1?timeouts.read=2&timeouts=1", "timeouts"),
        ("https://h.example.com/v1?timeouts__read=2&timeouts.read=3", "timeouts.read"),
        ("https://h.example.com/v1?timeout=1&timeout=2", "timeout"),
        ("https://ann:pw-clash-7e9c@h.example.com/v1?auth.type=bearer", "auth"),
        ("https://ann:pw-clash-7e9c@h.example.com/v1?access_token=key-clash-3b5d", "auth"),
        ("https://h.example.com/v1?api_key=key-clash-3b5d&auth.type=bearer", "auth"),
        ("https://h.example.com/v1?auth.type=bearer&api_key=key-clash-3b5d", "auth"),
        ("https://h.example.com/v1?api_key=key-clash-3b5d&key=key-clash-3b5d", "auth"),
        ("https://h.example.com/v1?base_url=https://evil.example", "base_url"),
    ],
)
def test_from_url_fields_given_twice_are_config_errors(url: str, field: str) -> None:
    with pytest.raises(ConfigError) as caught:
        HttpConfig.from_url(url)
    error = caught.value
    assert error.fields == (field,)
    assert error.__cause__ is None
    assert error.__context__ is None
    for value in ("pw-clash-7e9c", "key-clash-3b5d", "evil.example", "bearer"):
        assert value not in str(error)


def test_from_env_refines_the_auth_its_url_gives() -> None:
    env = {"API_URL": "https://ann@h.example.com/v1", "API_AUTH__PASSWORD": "pw-env-4c6e"}
    config = HttpConfig.from_env("API_", env)
    assert isinstance(config.auth, BasicAuthConfig)
    assert (config.auth.username, config.auth.password.get_secret_value()) == ("ann", "pw-env-4c6e")
    with pytest.raises(ConfigError) as caught:  # another scheme on top of user info
        HttpConfig.from_env("API_", {"API_URL": "https://ann:pw-env-4c6e@h.example.com",
                                     "API_AUTH__TYPE": "bearer"})  # fmt: skip
    assert "pw-env-4c6e" not in str(caught.value)


@pytest.mark.parametrize(
    ("fields", "field"),
    [
        ({"headers": {"X-Tenant": "caf\u00e9"}}, "headers"),
        ({"headers": {"X Tenant": "t1"}}, "headers"),
        ({"headers": {"X-Tenant": "t1\r\nX-Injected: 1"}}, "headers"),
        ({"headers": {"Content-Length": "5"}}, "headers"),
        ({"user_agent": "ua/1\n"}, "user_agent"),
        ({"correlation_id_header": "X Correlation"}, "correlation_id_header"),
        ({"request_id_headers": ["X-Request-ID", "Request Id"]}, "request_id_headers.1"),
        ({"health_path": "/health\x1f"}, "health_path"),
        ({"health_path": "//evil.example/x"}, "health_path"),
        ({"base_url": "http://127.0.0.1/v1\x00"}, "base_url"),
        ({"proxy": "ftp://proxy.example.com"}, "proxy"),
        ({"tls": {"ca_bundle": "/etc/ssl/\x00ca.pem"}}, "tls.ca_bundle"),
        ({"timeouts": {"read": 1e300}}, "timeouts.read"),
        ({"limits": {"keepalive_expiry": 1e300}}, "limits.keepalive_expiry"),
        ({"stream_deadline": 1e300}, "stream_deadline"),
        ({"auth": {"type": "bearer", "token": "tok-wire-5a7c\n"}}, "auth.bearer.token"),
        ({"auth": {"type": "bearer", "token": ""}}, "auth.bearer.token"),
        ({"auth": {"type": "basic", "username": "a:b", "password": "tok-wire-5a7c"}},
         "auth.basic.username"),
        ({"auth": {"type": "basic", "username": "a", "password": "tok-wire-5a7c\ud800"}},
         "auth.basic.password"),
        ({"auth": {"type": "api_key", "key": "tok-wire-5a7c\x00"}}, "auth.api_key.key"),
        ({"auth": {"type": "api_key", "key": "tok-wire-5a7c", "name": "X Key"}},
         "auth.api_key.name"),
        ({"auth": {"type": "api_key", "key": ""}}, "auth.api_key.key"),
        ({"auth": {"type": "oauth2_client_credentials", "client_id": "c",
                   "client_secret": "tok-wire-5a7c", "refresh_margin": 1e300,
                   "token_url": "https://login.example.com/t"}},
         "auth.oauth2_client_credentials.refresh_margin"),
        ({"auth": {"type": "oauth2_client_credentials", "client_id": "c",
                   "client_secret": "tok-wire-5a7c",
                   "token_url": "https://id:tok-wire-5a7c@login.example.com/t"}},
         "auth.oauth2_client_credentials.token_url"),
    ],
)  # fmt: skip
def test_values_that_cannot_go_on_the_wire_are_config_errors(
    fields: dict[str, Any], field: str
) -> None:
    with pytest.raises(ConfigError) as caught:
        HttpConfig(**{"base_url": "https://api.example.com", **fields})
    assert caught.value.fields == (field,)
    assert "tok-wire-5a7c" not in str(caught.value)
    assert "caf\u00e9" not in str(caught.value)


def test_a_query_api_key_may_hold_any_text() -> None:
    auth = {"type": "api_key", "key": "k\u00e9y with spaces\n", "location": "query", "name": "k y"}
    config = HttpConfig(base_url="https://api.example.com", auth=auth)  # type: ignore[arg-type]
    assert isinstance(config.auth, ApiKeyAuthConfig)


def test_a_socks_proxy_without_socksio_names_the_extra(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "socksio", None)
    config = HttpConfig(base_url="https://api.example.com", proxy="socks5://127.0.0.1:1080")  # type: ignore[arg-type]
    with pytest.raises(ImportError, match=r"httpx\[socks\]"):
        HttpConnector(config)
