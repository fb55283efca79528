"""Which wire carries the requests (decision 0090: aiohttp for HTTP/1.1, httpcore for
HTTP/2 and proxies, the given transport), and that both wires send the same request."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from connector_http import HttpConfig, HttpConnector

pytestmark = pytest.mark.integration

KEY = "wire-key-5c2a"


def _config(base_url: str, **fields: Any) -> HttpConfig:
    fields.setdefault("connect_probe", False)
    return HttpConfig(
        base_url=base_url,
        auth={"type": "api_key", "key": KEY, "name": "X-API-Key", "location": "header"},
        retry={"max_attempts": 1},
        **fields,
    )


async def test_http11_goes_over_aiohttp_by_default(base_url: str, state: Any) -> None:
    async with HttpConnector(_config(base_url)) as http:
        assert http.wire == "aiohttp"
        response = await http.get("/echo")
    assert response.json()["headers"]["x-api-key"] == KEY


async def test_http2_and_proxies_keep_httpcore(
    base_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    for name in ("HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "NO_PROXY"):
        monkeypatch.delenv(name, raising=False)
        monkeypatch.delenv(name.lower(), raising=False)
    assert HttpConnector(_config(base_url, http2=True)).wire == "httpcore"
    proxied = HttpConnector(_config(base_url, proxy="http://127.0.0.1:9"))
    assert proxied.wire == "httpcore"
    monkeypatch.setenv("NO_PROXY", "example.com")  # not a proxy
    assert HttpConnector(_config(base_url)).wire == "aiohttp"
    monkeypatch.setenv("HTTPS_PROXY", "http://127.0.0.1:9")
    from_env = HttpConnector(_config(base_url))
    assert from_env.wire == "httpcore"
    async with from_env:  # decided at connect, as reported
        assert from_env.wire == "httpcore"
    assert HttpConnector(_config(base_url, trust_env=False)).wire == "aiohttp"


def test_a_given_transport_is_the_wire(base_url: str) -> None:
    transport = httpx.MockTransport(lambda request: httpx.Response(204))
    assert HttpConnector(_config(base_url), transport=transport).wire == "transport"


@pytest.mark.parametrize("method", ["GET", "POST"])
async def test_both_wires_send_the_same_request(base_url: str, state: Any, method: str) -> None:
    """The aiohttp road (a GET takes its direct path) sends what httpcore sends: the
    URL joined to base_url with the params, the default, call and auth headers."""
    seen = []
    for fields in ({}, {"http2": True}):  # http2 on plain http: httpcore speaking 1.1
        async with HttpConnector(_config(base_url, **fields)) as http:
            response = await http.request(
                method,
                "/echo",
                params={"q": "a b/ü", "n": 2, "flag": True},
                headers={"X-Extra": "1"},
                correlation_id="corr-1",
                json={"x": 1} if method == "POST" else None,
            )
            body = response.json()
            seen.append((body["method"], body["query"], body["headers"], body["body"]))
            assert response.url.endswith("/v1/echo?q=a+b%2F%C3%BC&n=2&flag=true")
    assert seen[0] == seen[1]
