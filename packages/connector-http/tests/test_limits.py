"""What a response may cost, against the real test server: a body larger than
max_response_bytes (plain or a gzip bomb), huge error and redirect bodies, and peers that
trickle a byte at a time (stream bodies and headers, token endpoints)."""

from __future__ import annotations

import asyncio
import resource
from collections.abc import AsyncIterator
from typing import Any

import pytest

from connector_core import ConnectorTimeoutError, InvalidRequestError, ServiceUnavailableError
from connector_http import HttpConfig, HttpConnector, ResponseTooLargeError

pytestmark = pytest.mark.integration

MB = 1024 * 1024
DEFAULT_LIMIT = 32 * MB


def make(base_url: str, **fields: Any) -> HttpConnector:
    fields.setdefault("retry", {"max_attempts": 1})
    fields.setdefault("health_path", "/health")
    return HttpConnector(HttpConfig(base_url=base_url, **fields))


def peak_rss() -> int:
    """The process's peak resident set size so far, in bytes (Linux: ru_maxrss in KiB)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024


async def test_a_gzip_bomb_is_judged_by_its_decoded_size(base_url: str, state: Any) -> None:
    async with make(base_url) as http:
        small = await http.get("/gzip-bomb", params={"mb": 1})
        assert small.content == bytes(MB)  # gzip bodies are decoded as usual
        before = peak_rss()
        with pytest.raises(ResponseTooLargeError) as caught:
            await http.get("/gzip-bomb", params={"mb": 400})  # ~400 KB on the wire
        grown = peak_rss() - before
    assert caught.value.details["limit"] == DEFAULT_LIMIT
    assert not caught.value.transient
    # Read whole, the 400 MB would cost 400-800 MB; one 64 KiB read inflates to ~66 MB.
    assert grown < 200 * MB, f"peak RSS grew by {grown / MB:.0f} MB"


async def test_a_body_over_the_default_limit_stops_the_download(base_url: str, state: Any) -> None:
    async with make(base_url) as http:
        before = peak_rss()
        with pytest.raises(ResponseTooLargeError) as caught:
            await http.get("/big", params={"mb": 300})
        grown = peak_rss() - before
        assert (await http.get("/echo")).status == 200  # the connector goes on working
    error = caught.value
    assert "max_response_bytes" in str(error)
    assert error.details["status"] == 200
    assert error.details["url"].endswith("/v1/big?mb=300")
    assert state.hits["big"] == 1  # not retried: the same request brings the same body
    # The server could send the limit and what the socket buffers hold, not 300 MB.
    assert state.sent["big"] < 100 * MB, state.sent["big"]
    assert grown < 150 * MB, f"peak RSS grew by {grown / MB:.0f} MB"


async def test_max_response_bytes_is_configurable(base_url: str, state: Any) -> None:
    async with make(base_url, max_response_bytes=1000) as http:
        assert (await http.get("/big", params={"mb": 1000 / MB})).content == b"x" * 1000
        with pytest.raises(ResponseTooLargeError) as caught:
            await http.get("/big", params={"mb": 1001 / MB})
        async with http.stream("GET", "/big", params={"mb": 2}) as response:
            streamed = sum([len(chunk) async for chunk in response.aiter_bytes()])
    assert caught.value.details["limit"] == 1000
    assert streamed == 2 * MB  # stream() is not limited: it reads in constant memory


async def _stream_error_body(http: HttpConnector) -> None:
    async with http.stream("GET", "/big-error", params={"mb": 300}):
        pytest.fail("the body of an error must not be handed out")


@pytest.mark.parametrize("how", ["request", "stream"])
async def test_a_huge_error_body_is_capped(base_url: str, state: Any, how: str) -> None:
    async with make(base_url) as http:
        before = peak_rss()
        call = (
            http.get("/big-error", params={"mb": 300})
            if how == "request"
            else _stream_error_body(http)
        )
        with pytest.raises(ServiceUnavailableError) as caught:
            await call
        grown = peak_rss() - before
    assert caught.value.details["body"].startswith("xxxx")
    assert len(caught.value.details["body"]) == 503  # error_body_limit + "..."
    assert state.sent["big_error"] < 100 * MB, state.sent["big_error"]
    assert grown < 100 * MB, f"peak RSS grew by {grown / MB:.0f} MB"


async def test_a_redirect_body_is_not_read_whole(base_url: str, state: Any) -> None:
    async with make(base_url, follow_redirects=True) as http:
        response = await http.get("/big-redirect", params={"mb": 300, "to": "/v1/echo"})
    assert response.json()["method"] == "GET"  # the redirect was followed
    assert state.sent["big_redirect"] < 100 * MB, state.sent["big_redirect"]


async def test_too_many_redirects_is_an_invalid_request(base_url: str, state: Any) -> None:
    async with make(base_url, follow_redirects=True) as http:
        with pytest.raises(InvalidRequestError, match="redirects"):
            await http.get("/redirect-loop")
    assert state.hits["redirect_loop"] == 21  # the first request and 20 redirects


# -- deadlines ---------------------------------------------------------------------------


class TricklingHeadersServer:
    """A raw TCP server that answers every request with a status line, then one byte of
    a header every 0.2 s, forever: no read timeout ever fires."""

    def __init__(self) -> None:
        self.server: asyncio.Server | None = None
        self.tasks: set[asyncio.Task[None]] = set()

    async def handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        self.tasks.add(task)
        try:
            await reader.readuntil(b"\r\n\r\n")
            writer.write(b"HTTP/1.1 200 OK\r\nX-Slow: ")
            while True:
                writer.write(b"z")
                await writer.drain()
                await asyncio.sleep(0.2)
        except (ConnectionError, asyncio.IncompleteReadError):
            pass
        finally:
            writer.close()
            self.tasks.discard(task)

    async def __aenter__(self) -> str:
        self.server = await asyncio.start_server(self.handle, "127.0.0.1", 0)
        return f"http://127.0.0.1:{self.server.sockets[0].getsockname()[1]}"

    async def __aexit__(self, *exc: object) -> None:
        assert self.server is not None
        self.server.close()
        for task in list(self.tasks):
            task.cancel()
        await asyncio.gather(*self.tasks, return_exceptions=True)
        await self.server.wait_closed()


@pytest.fixture
async def trickling_headers() -> AsyncIterator[str]:
    async with TricklingHeadersServer() as url:
        yield url


def test_every_operation_has_a_finite_deadline_by_default() -> None:
    config = HttpConfig(
        base_url="https://api.example.com",
        auth={
            "type": "oauth2_client_credentials",
            "token_url": "https://login.example.com/token",
            "client_id": "c",
            "client_secret": "s",
        },
    )
    assert config.timeout is not None  # request(): sending and reading, one attempt
    assert config.retry.deadline is not None  # all attempts of one call
    assert config.stream_deadline is not None  # stream(): headers and body
    assert config.auth.token_timeout is not None  # type: ignore[union-attr]
    assert config.connect_timeout is not None


async def _within_a_minute(call: Any) -> Any:
    # A guard against hanging, not a speed check: the deadlines under test are 1 s.
    async with asyncio.timeout(60):
        return await call


async def test_the_stream_deadline_ends_a_trickling_body(base_url: str, state: Any) -> None:
    async def drain(http: HttpConnector, **options: Any) -> int:
        total = 0
        async with http.stream("GET", "/trickle", **options) as response:
            async for chunk in response.aiter_bytes():
                total += len(chunk)
        return total

    async with make(base_url, stream_deadline=1) as http:
        with pytest.raises(ConnectorTimeoutError, match=r"stream deadline of 1\.0s") as caught:
            await _within_a_minute(drain(http))
        with pytest.raises(ConnectorTimeoutError, match=r"stream deadline of 0\.5s"):
            await _within_a_minute(drain(http, deadline=0.5))  # per call
        with pytest.raises(InvalidRequestError, match="deadline"):
            await drain(http, deadline=-1)
        assert (await http.get("/echo")).status == 200
    assert caught.value.details["deadline"] == 1.0
    assert state.hits["trickle"] == 2  # the bad deadline sent nothing


async def test_the_stream_deadline_covers_trickling_headers(trickling_headers: str) -> None:
    # The per-attempt timeout is long: only the stream deadline can end this one.
    config = {"connect_probe": False, "timeout": 120, "stream_deadline": 1}
    async with make(trickling_headers, **config) as http:
        with pytest.raises(ConnectorTimeoutError, match="stream deadline"):
            async with await _within_a_minute(_enter(http.stream("GET", "/x"))):
                pytest.fail("no headers ever came")


async def _enter(manager: Any) -> Any:
    """Enter an async context manager inside a guarded await; return one that exits it."""
    value = await manager.__aenter__()

    class _Exit:
        async def __aenter__(self) -> Any:
            return value

        async def __aexit__(self, *exc: Any) -> None:
            await manager.__aexit__(*exc)

    return _Exit()


@pytest.mark.parametrize("where", ["headers", "body"])
async def test_request_timeout_covers_trickling_headers_and_body(
    base_url: str, trickling_headers: str, state: Any, where: str
) -> None:
    url = trickling_headers if where == "headers" else base_url
    async with make(url, connect_probe=False, timeout=1) as http:
        with pytest.raises(ConnectorTimeoutError, match=r"timed out after 1\.0s"):
            await _within_a_minute(http.get("/trickle"))


async def test_a_trickling_token_endpoint_has_its_own_deadline(
    server: Any, base_url: str, state: Any
) -> None:
    state.token_trickle = True
    auth = {
        "type": "oauth2_client_credentials",
        "token_url": f"{server.url}/oauth/token",
        "client_id": "client-7f3a",
        "client_secret": "csecret-9b1d2e4f6a8c",
        "token_timeout": 1,
    }
    # The call's own timeout is long: the token request's deadline is what ends it.
    async with make(base_url, auth=auth, timeout=120) as http:
        for _ in range(2):
            with pytest.raises(ConnectorTimeoutError, match="token request") as caught:
                await _within_a_minute(http.get("/protected"))
    assert "auth.token_timeout" in str(caught.value)
    # The stuck fetch ended: the second call made a new token request, not joined it.
    assert state.hits["token"] == 2
    assert state.hits["api"] == 0
