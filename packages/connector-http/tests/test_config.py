"""HttpConfig: from a URL, from env, validation, redaction; the registry; exports."""

from __future__ import annotations

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
