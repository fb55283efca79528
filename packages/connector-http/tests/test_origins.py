"""Credentials go to trusted origins only: a second real server on another port (another
origin) records everything it is sent, through 302 and 307 redirects and absolute URLs,
for every kind of auth and the per-call user token."""

from __future__ import annotations

from typing import Any
from urllib.parse import urlencode

import pytest

from connector_core import ConfigError, secret_forms
from connector_http import HttpConfig, HttpConnector

pytestmark = pytest.mark.integration

PASSWORD = "pw-origin-7d9f1b3c"
TOKEN = "tok-origin-2e4a6c8e"
KEY = "key-origin-4f6a8c0e"
USER_TOKEN = "user-origin-9b1d3f5a"
CLIENT_SECRET = "csecret-9b1d2e4f6a8c"  # the test server's OAuth2 client


def _auth(kind: str, server_url: str) -> dict[str, Any]:
    return {
        "basic": {"type": "basic", "username": "ann", "password": PASSWORD},
        "bearer": {"type": "bearer", "token": TOKEN},
        "x_api_key": {"type": "api_key", "key": KEY},
        "api_access_token": {"type": "api_key", "key": KEY, "name": "api_access_token"},
        "query_key": {"type": "api_key", "key": KEY, "name": "api_key", "location": "query"},
        "oauth2": {
            "type": "oauth2_client_credentials",
            "token_url": f"{server_url}/oauth/token",
            "client_id": "client-7f3a",
            "client_secret": CLIENT_SECRET,
        },
        "user_token": {"type": "none"},
    }[kind]


KINDS = ["basic", "bearer", "x_api_key", "api_access_token", "query_key", "oauth2", "user_token"]


def _secrets(kind: str, state: Any) -> list[str]:
    values = {
        "basic": [PASSWORD, f"ann:{PASSWORD}"],
        "bearer": [TOKEN],
        "x_api_key": [KEY],
        "api_access_token": [KEY],
        "query_key": [KEY],
        "oauth2": [CLIENT_SECRET, *state.tokens],
        "user_token": [USER_TOKEN],
    }[kind]
    return [form for value in values for form in secret_forms(value)]


def _connector(kind: str, server: Any, **fields: Any) -> HttpConnector:
    config = HttpConfig(
        base_url=f"{server.url}/v1",
        health_path="/health",
        auth=_auth(kind, server.url),
        follow_redirects=True,
        retry={"max_attempts": 1},
        **fields,
    )
    return HttpConnector(config)


def _call_options(kind: str) -> dict[str, Any]:
    return {"user_token": USER_TOKEN} if kind == "user_token" else {}


def _carries_credential(kind: str, headers: dict[str, str], query: dict[str, str]) -> bool:
    if kind == "query_key":
        return query.get("api_key") == KEY
    if kind == "x_api_key":
        return headers.get("x-api-key") == KEY
    if kind == "api_access_token":
        return headers.get("api_access_token") == KEY
    return headers.get("authorization", "").startswith(("Basic ", "Bearer "))


@pytest.mark.parametrize("how", ["302", "307", "absolute"])
@pytest.mark.parametrize("kind", KINDS)
async def test_no_credential_reaches_another_origin(
    server: Any, foreign_server: Any, foreign: list[Any], state: Any, kind: str, how: str
) -> None:
    target = f"{foreign_server.url}/landing"
    async with _connector(kind, server) as http:
        if how == "absolute":
            response = await http.get(target, **_call_options(kind))
        else:
            response = await http.get(
                "/redirect", params={"to": target, "code": how}, **_call_options(kind)
            )
    assert response.json() == {"foreign": True}  # the request did reach the other origin
    assert len(foreign) == 1
    received = foreign[0].text()
    for form in _secrets(kind, state):
        assert form not in received, (kind, how, received)
    assert not _carries_credential(kind, foreign[0].headers, foreign[0].query)


@pytest.mark.parametrize("kind", KINDS)
async def test_a_redirect_within_the_origin_keeps_the_credential(
    server: Any, state: Any, kind: str
) -> None:
    async with _connector(kind, server) as http:
        response = await http.get(
            "/redirect", params={"to": "/v1/echo?x=1", "code": "307"}, **_call_options(kind)
        )
    echoed = response.json()
    assert echoed["query"]["x"] == "1"  # the redirect was followed to /echo
    assert _carries_credential(kind, echoed["headers"], echoed["query"])


@pytest.mark.parametrize("kind", KINDS)
async def test_trusted_origins_opt_in(
    server: Any, foreign_server: Any, foreign: list[Any], state: Any, kind: str
) -> None:
    async with _connector(kind, server, trusted_origins=[foreign_server.url]) as http:
        await http.get(
            "/redirect", params={"to": f"{foreign_server.url}/landing"}, **_call_options(kind)
        )
        await http.get(f"{foreign_server.url}/direct", **_call_options(kind))
    assert [r.path for r in foreign] == ["/landing", "/direct"]
    for record in foreign:
        assert _carries_credential(kind, record.headers, record.query), record


async def test_token_request_does_not_follow_a_redirect(
    server: Any, foreign_server: Any, foreign: list[Any], state: Any
) -> None:
    query = urlencode({"to": f"{foreign_server.url}/token", "code": "307"})
    auth = {**_auth("oauth2", server.url), "token_url": f"{server.url}/v1/redirect?{query}"}
    config = HttpConfig(
        base_url=f"{server.url}/v1",
        health_path="/health",
        auth=auth,
        follow_redirects=True,
        trusted_origins=[foreign_server.url],  # even a trusted origin gets no client secret
        retry={"max_attempts": 1},
    )
    async with HttpConnector(config) as http:
        with pytest.raises(ConfigError) as caught:
            await http.get("/protected")
    assert caught.value.fields == ("auth.token_url",)
    assert "307" in str(caught.value)
    assert foreign == []  # the form, client secret included, went nowhere else


def test_trusted_origins_must_be_origins() -> None:
    config = HttpConfig(
        base_url="https://api.example.com",
        trusted_origins=["https://Files.Example.com:8443", "http://[::1]:80/"],
    )
    assert config.trusted_origins == ("https://files.example.com:8443", "http://[::1]:80")
    for bad in ["files.example.com", "https://u:p@x.example.com", "https://x.example.com/a",
                "ftp://x.example.com", "https://x.example.com?q=1", "https://"]:  # fmt: skip
        with pytest.raises(ConfigError) as caught:
            HttpConfig(base_url="https://api.example.com", trusted_origins=[bad])
        assert caught.value.fields == ("trusted_origins",), bad
        assert "u:p" not in str(caught.value)
