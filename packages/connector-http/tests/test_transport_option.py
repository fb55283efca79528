"""HttpConnector(transport=...): code that uses the connector tested without a server,
with every connector behaviour (credentials, retries, typed errors) still in place; and
the per-call retry_on and accept_error options."""

from __future__ import annotations

import json

import httpx
import pytest

from connector_core import AuthenticationError, RateLimitedError
from connector_http import HttpConfig, HttpConnector, HttpResponse

KEY = "mock-key-7d1f"


def _config(**fields: object) -> HttpConfig:
    return HttpConfig(
        base_url="https://api.example.test/v1",
        auth={"type": "api_key", "key": KEY, "name": "X-API-Key"},
        retry={"max_attempts": 3, "initial_delay": 0, "jitter": False},
        connect_probe=False,
        **fields,  # type: ignore[arg-type]
    )


async def test_a_mock_transport_sees_what_a_server_would() -> None:
    seen: list[tuple[str, httpx.Headers]] = []

    def handler(request: httpx.Request) -> httpx.Response:
        # As it reached the "server" (the connector puts its request back as it was).
        seen.append((str(request.url), request.headers.copy()))
        if len(seen) == 1:
            return httpx.Response(503, json={"error": "busy"})
        return httpx.Response(200, json={"items": [1, 2]})

    transport = httpx.MockTransport(handler)
    async with HttpConnector(_config(), transport=transport) as http:
        response = await http.get("/items", params={"page": 2})
        assert response.json() == {"items": [1, 2]}
        assert http.stats.retries == 1  # the 503 was retried on the road
        await http.get("https://elsewhere.example.test/x")
    assert [url for url, _ in seen] == [
        "https://api.example.test/v1/items?page=2",
        "https://api.example.test/v1/items?page=2",
        "https://elsewhere.example.test/x",
    ]
    assert seen[0][1]["X-API-Key"] == KEY
    assert "X-API-Key" not in seen[2][1]  # never to another origin


async def test_a_given_transport_is_not_closed_by_the_connector() -> None:
    closed: list[bool] = []

    class Tracking(httpx.MockTransport):
        async def aclose(self) -> None:
            closed.append(True)

    transport = Tracking(lambda request: httpx.Response(200, json={}))
    http = HttpConnector(_config(), transport=transport)
    for _ in range(2):  # connect, disconnect, and again on the same transport
        async with http:
            await http.get("/ping")
    assert closed == []


async def test_error_statuses_from_a_mock_transport_are_typed() -> None:
    transport = httpx.MockTransport(lambda request: httpx.Response(401, json={"error": "no"}))
    async with HttpConnector(_config(), transport=transport) as http:
        with pytest.raises(AuthenticationError):
            await http.get("/me")


async def test_retry_on_resends_a_post_the_server_refused_before_processing_it() -> None:
    calls: list[str] = []

    def handler(request: httpx.Request) -> httpx.Response:
        calls.append(request.method)
        if len(calls) == 1:
            return httpx.Response(429, headers={"Retry-After": "0"}, json={"error": "slow"})
        return httpx.Response(201, json={"id": 7})

    async with HttpConnector(_config(), transport=httpx.MockTransport(handler)) as http:
        with pytest.raises(RateLimitedError):
            await http.post("/things", json={"a": 1})  # a POST is not retried by default
        calls.clear()
        created = await http.post(
            "/things",
            json={"a": 1},
            retry_on=lambda error: isinstance(error, RateLimitedError),
        )
    assert created.status == 201
    assert calls == ["POST", "POST"]


async def test_accept_error_hands_back_the_responses_it_accepts() -> None:
    body = {"errors": [{"message": "bad field"}]}
    transport = httpx.MockTransport(lambda request: httpx.Response(400, json=body))

    def graphql_answer(response: HttpResponse) -> bool:
        return response.status == 400 and "errors" in json.loads(response.content)

    async with HttpConnector(_config(), transport=transport) as http:
        response = await http.post("/graphql", json={}, accept_error=graphql_answer)
        assert (response.status, response.json()) == (400, body)
        with pytest.raises(Exception, match="400"):
            await http.post("/graphql", json={}, accept_error=lambda response: False)
