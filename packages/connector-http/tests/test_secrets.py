"""Secrets never reach logs (caplog), error messages, error details, repr or dumps."""

from __future__ import annotations

import base64
import logging
from typing import Any

import pytest

from connector_core import AuthenticationError, ConnectorError
from connector_http import HttpConfig, HttpConnector

pytestmark = pytest.mark.integration

API_KEY = "key-5c7e9a1b3d"
CLIENT_SECRET = "csecret-9b1d2e4f6a8c"


def _texts(error: ConnectorError) -> list[str]:
    texts = [str(error), repr(error), str(error.details)]
    if error.__cause__ is not None:
        texts.append(str(error.__cause__))
    return texts


async def _fail(http: HttpConnector, path: str, **kwargs: Any) -> ConnectorError:
    with pytest.raises(ConnectorError) as caught:
        await http.get(path, **kwargs)
    return caught.value


@pytest.mark.parametrize(
    "auth",
    [
        {"type": "api_key", "key": API_KEY, "name": "api_key", "location": "query"},
        {"type": "api_key", "key": API_KEY, "name": "custom_param_x", "location": "query"},
        {"type": "api_key", "key": API_KEY, "name": "api_access_token"},
        {"type": "bearer", "token": API_KEY},
        {"type": "basic", "username": "u", "password": API_KEY},
    ],
)
async def test_static_secrets_absent_from_logs_and_errors(
    base_url: str, state: Any, caplog: pytest.LogCaptureFixture, auth: dict[str, Any]
) -> None:
    caplog.set_level(logging.DEBUG)
    config = HttpConfig(
        base_url=base_url,
        health_path="/health",
        auth=auth,
        retry={"max_attempts": 2, "initial_delay": 0.01},
    )
    http = HttpConnector(config)
    errors: list[ConnectorError] = []
    async with http:
        # the server echoes the secret in its body; a 500 is retried and logged
        errors.append(await _fail(http, "/status/500", headers={"X-Say": API_KEY}))
        errors.append(await _fail(http, "/status/404"))
        errors.append(await _fail(http, "/slow", params={"delay": 1}, timeout=0.1))
        await http.get("/echo")
    texts = [
        caplog.text,
        repr(http),
        repr(config),
        str(config.model_dump()),
        config.model_dump_json(),
    ]
    assert '"say": "***"' in errors[0].details["body"]  # the echoed secret was masked
    for error in errors:
        texts.extend(_texts(error))
    for text in texts:
        assert API_KEY not in text, text
    assert "HTTP Request: GET" in caplog.text  # httpx's own log lines were captured
    assert state.seen_queries  # and the server really got requests


async def test_query_api_key_never_in_error_urls(base_url: str, state: Any) -> None:
    auth = {"type": "api_key", "key": API_KEY, "name": "api_key", "location": "query"}
    config = HttpConfig(
        base_url=base_url, health_path="/health", auth=auth, retry={"max_attempts": 1}
    )
    async with HttpConnector(config) as http:
        error = await _fail(http, "/status/503")
        # a caller that passes a key-like parameter itself gets it masked too
        own = await _fail(http, "/status/400", params={"access_token": "own-secret-1"})
    assert state.seen_queries[-1]["api_key"] == API_KEY  # it was sent
    assert "api_key" not in error.details["url"]
    assert API_KEY not in str(error)
    assert "own-secret-1" not in own.details["url"]
    assert "own-secret-1" not in str(own)


async def test_wrong_query_key_echoed_by_server_is_scrubbed(base_url: str, state: Any) -> None:
    auth = {"type": "api_key", "key": "wrong-key-3e5f", "name": "api_key", "location": "query"}
    config = HttpConfig(base_url=base_url, health_path="/health", auth=auth)
    async with HttpConnector(config) as http:
        error = await _fail(http, "/key")
    assert isinstance(error, AuthenticationError)
    assert "bad key" in error.details["body"]
    for text in _texts(error):
        assert "wrong-key-3e5f" not in text


async def test_oauth_and_user_tokens_absent_from_logs_and_errors(
    server: Any, base_url: str, state: Any, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    auth = {
        "type": "oauth2_client_credentials",
        "token_url": f"{server.url}/oauth/token",
        "client_id": "client-7f3a",
        "client_secret": CLIENT_SECRET,
    }
    state.api_rejects_all = True  # /protected echoes the Authorization header in its 401
    http = HttpConnector(HttpConfig(base_url=base_url, health_path="/health", auth=auth))
    async with http:
        oauth_error = await _fail(http, "/protected")
        user_error = await _fail(http, "/protected", user_token="user-jwt-7d9f")
    issued = [t for t in state.tokens] + [f"at-{i}" for i in range(1, 3)]
    assert oauth_error.details["body"].count("***") >= 1
    texts = [caplog.text, *_texts(oauth_error), *_texts(user_error)]
    for text in texts:
        assert CLIENT_SECRET not in text, text
        assert "user-jwt-7d9f" not in text, text
        for token in issued:
            assert token not in text, text


@pytest.mark.parametrize(
    ("path", "kind"),
    [("/cursor-echo", "cursor"), ("/next-url-echo", "next_url")],
)
async def test_user_token_repeated_by_a_paginating_server_is_masked(
    base_url: str, state: Any, path: str, kind: str
) -> None:
    user = "user-jwt-page-2c4e6a"
    async with HttpConnector(HttpConfig(base_url=base_url, health_path="/health")) as http:
        if kind == "cursor":
            pages = http.paginate_cursor(
                path, items="items", next_cursor="meta.next_cursor", user_token=user
            )
        else:
            pages = http.paginate_next_url(
                path, items="records", next_url="nextRecordsUrl", user_token=user
            )
        with pytest.raises(ConnectorError) as caught:
            async for _ in pages:
                pass
    assert type(caught.value).__name__ == "PaginationLoopError"
    assert "***" in str(caught.value)  # the token was in the marker, masked
    for text in _texts(caught.value):
        assert user not in text, text


def _all_texts(error: BaseException) -> list[str]:
    """str and repr of ``error`` and of every exception chained to it, and its details."""
    texts: list[str] = []
    seen: set[int] = set()
    current: BaseException | None = error
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        texts += [str(current), repr(current)]
        if isinstance(current, ConnectorError):
            texts.append(str(current.details))
        current = current.__cause__ or current.__context__
    return texts


async def test_basic_credentials_echoed_by_an_error_page_are_masked(
    base_url: str, state: Any, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    password = "pw-echoed-5e7a9c1b"
    header = "Basic " + base64.b64encode(f"ann:{password}".encode()).decode()
    config = HttpConfig(
        base_url=base_url,
        health_path="/health",
        auth={"type": "basic", "username": "ann", "password": password},
        retry={"max_attempts": 2, "initial_delay": 0.01},
        error_body_limit=2000,
    )
    async with HttpConnector(config) as http:
        # 500 (retried, so logged at DEBUG and INFO) and 400: both echo the headers
        errors = [await _fail(http, "/echo-error/500"), await _fail(http, "/echo-error/400")]
    assert state.seen_headers[-1]["authorization"] == header  # it was sent as Basic
    for error in errors:
        assert "authorization: ***" in error.details["body"]  # echoed, and masked
        for text in [*_all_texts(error), caplog.text]:
            assert header.split()[1] not in text, text
            assert password not in text, text


async def test_oauth2_client_secret_basic_header_echoed_by_the_token_endpoint_is_masked(
    server: Any, base_url: str, state: Any, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    state.token_status = 500  # answered with the Authorization header echoed in the body
    auth = {
        "type": "oauth2_client_credentials",
        "token_url": f"{server.url}/oauth/token",
        "client_id": "client-7f3a",
        "client_secret": CLIENT_SECRET,
        "client_auth": "client_secret_basic",
    }
    config = HttpConfig(
        base_url=base_url, health_path="/health", auth=auth, retry={"max_attempts": 1}
    )
    basic = base64.b64encode(f"client-7f3a:{CLIENT_SECRET}".encode()).decode()
    async with HttpConnector(config) as http:
        error = await _fail(http, "/protected")
    assert '"echo":"***"' in error.details["body"]
    for text in [*_all_texts(error), caplog.text]:
        assert basic not in text, text
        assert CLIENT_SECRET not in text, text


async def test_a_secret_cut_by_the_body_limit_shows_no_part_of_itself(
    base_url: str, state: Any
) -> None:
    config = HttpConfig(
        base_url=base_url,
        health_path="/health",
        auth={"type": "api_key", "key": API_KEY, "name": "api_access_token"},
        retry={"max_attempts": 1},
        error_body_limit=37,  # the cut falls inside the echoed key (after "key-5")
    )
    async with HttpConnector(config) as http:
        error = await _fail(http, "/status/400", headers={"X-Say": API_KEY})
    assert error.details["body"].startswith('{"error": "status 400", "say": "')
    for text in _all_texts(error):
        assert API_KEY[:5] not in text, text
