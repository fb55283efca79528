"""Requests, responses, status mapping, retries, timeouts, resets, the circuit breaker and
streaming, against a real uvicorn server on 127.0.0.1."""

from __future__ import annotations

import asyncio
import os
import random
import socket
import time
from typing import Any

import psutil
import pytest

from connector_core import (
    AuthenticationError,
    CircuitOpenError,
    CircuitState,
    ConflictError,
    ConnectionFailedError,
    ConnectorError,
    ConnectorTimeoutError,
    ErrorCode,
    InvalidRequestError,
    NotConnectedError,
    NotFoundError,
    PermissionDeniedError,
    RateLimitedError,
    SerializationError,
    ServiceUnavailableError,
)
from connector_http import HttpConfig, HttpConnector

pytestmark = pytest.mark.integration

FAST_RETRY = {"max_attempts": 3, "initial_delay": 0.01, "max_delay": 0.05}


def make(base_url: str, **fields: Any) -> HttpConnector:
    fields.setdefault("retry", FAST_RETRY)
    fields.setdefault("health_path", "/health")
    return HttpConnector(HttpConfig(base_url=base_url, **fields))


async def test_get_returns_typed_response(base_url: str, state: Any) -> None:
    async with make(base_url) as http:
        response = await http.get("/echo", params={"q": "1"})
    assert response.status == 200
    assert response.json()["query"] == {"q": "1"}
    assert response.headers["content-type"] == "application/json"
    assert response.request_id == "req-echo-1"
    assert response.method == "GET"
    assert response.url.endswith("/v1/echo?q=1")
    assert response.elapsed > 0
    assert '"method":"GET"' in response.text


async def test_post_json_and_form(base_url: str, state: Any) -> None:
    async with make(base_url) as http:
        sent = await http.post("/echo", json={"a": 1})
        form = await http.put("/echo", data={"b": "2"})
    assert sent.json()["body"] == '{"a":1}'
    assert form.json()["body"] == "b=2"


async def test_request_before_connect_raises_not_connected(base_url: str) -> None:
    with pytest.raises(NotConnectedError):
        await make(base_url).get("/echo")


async def test_invalid_json_body_raises_serialization_error(base_url: str, state: Any) -> None:
    async with make(base_url) as http:
        response = await http.get("/big", params={"mb": 0})  # an empty body
    with pytest.raises(SerializationError):
        response.json()


async def test_correlation_id_generated_given_and_stable_across_retries(
    base_url: str, state: Any
) -> None:
    async with make(base_url) as http:
        generated = (await http.get("/echo")).json()["headers"]["x-correlation-id"]
        given = (await http.get("/echo", correlation_id="corr-42")).json()["headers"]
        own_header = (await http.get("/echo", headers={"x-correlation-id": "mine"})).json()
        await http.get("/flaky/corr", params={"fail": 2})
    assert len(generated) == 32
    assert given["x-correlation-id"] == "corr-42"
    assert own_header["headers"]["x-correlation-id"] == "mine"
    flaky_ids = {h["x-correlation-id"] for h in state.seen_headers[-3:]}
    assert len(flaky_ids) == 1  # the three attempts of one call share its id


async def test_empty_correlation_id_means_generate_one(base_url: str, state: Any) -> None:
    async with make(base_url) as http:
        empty = (await http.get("/echo", correlation_id="")).json()["correlation_ids"]
        blank = (await http.get("/echo", correlation_id="  ")).json()["correlation_ids"]
        own = (
            await http.get("/echo", correlation_id="", headers={"X-Correlation-ID": "mine"})
        ).json()["correlation_ids"]
        both = (
            await http.get("/echo", correlation_id="given", headers={"x-correlation-id": "mine"})
        ).json()["correlation_ids"]
    assert len(empty) == 1
    assert len(empty[0]) == 32
    int(empty[0], 16)  # hex
    assert len(blank) == 1
    assert len(blank[0]) == 32
    assert own == ["mine"]
    assert both == ["given"]  # the argument wins, and only one header is sent


async def test_correlation_header_name_is_configurable(base_url: str, state: Any) -> None:
    async with make(base_url, correlation_id_header="X-Trace") as http:
        headers = (await http.get("/echo")).json()["headers"]
    assert "x-trace" in headers
    assert "x-correlation-id" not in headers


async def test_default_headers_and_user_agent(base_url: str, state: Any) -> None:
    async with make(base_url, headers={"X-Tenant": "t1"}, user_agent="tests/1.0") as http:
        headers = (await http.get("/echo")).json()["headers"]
    assert headers["x-tenant"] == "t1"
    assert headers["user-agent"] == "tests/1.0"


@pytest.mark.parametrize(
    ("code", "error"),
    [
        (400, InvalidRequestError),
        (401, AuthenticationError),
        (403, PermissionDeniedError),
        (404, NotFoundError),
        (409, ConflictError),
        (422, InvalidRequestError),
        (429, RateLimitedError),
        (500, ServiceUnavailableError),
        (502, ServiceUnavailableError),
        (503, ServiceUnavailableError),
    ],
)
async def test_status_maps_to_typed_error_with_details(
    base_url: str, state: Any, code: int, error: type[ConnectorError]
) -> None:
    async with make(base_url, retry={"max_attempts": 1}) as http:
        with pytest.raises(error) as caught:
            await http.get(f"/status/{code}", params={"say": "hello"})
    exc = caught.value
    assert type(exc) is error
    assert exc.transient is (code in (429, 500, 502, 503))
    assert exc.details["status"] == code
    assert exc.details["method"] == "GET"
    assert exc.details["url"].endswith(f"/v1/status/{code}?say=hello")
    assert exc.details["request_id"] == f"req-{code}"
    assert exc.details["body"].startswith('{"error": "status')
    assert len(exc.details["body"]) <= 503  # trimmed to error_body_limit (500) + "..."
    assert f"req-{code}" in str(exc)
    assert exc.connector == "http"


async def test_error_body_limit_is_configurable(base_url: str, state: Any) -> None:
    async with make(base_url, error_body_limit=20, retry={"max_attempts": 1}) as http:
        with pytest.raises(InvalidRequestError) as caught:
            await http.get("/status/400")
    assert len(caught.value.details["body"]) == 23


async def test_503_then_success_is_retried(base_url: str, state: Any) -> None:
    async with make(base_url) as http:
        response = await http.get("/flaky/a", params={"fail": 2})
        stats = http.stats
    assert response.json() == {"hits": 3}
    assert state.hits["flaky:a"] == 3
    assert stats.operations["GET"].retries == 2


async def test_429_retry_after_is_honoured(base_url: str, state: Any) -> None:
    async with make(base_url) as http:
        started = time.monotonic()
        response = await http.get("/flaky/rl", params={"fail": 1, "code": 429, "retry_after": 1})
        waited = time.monotonic() - started
    assert response.status == 200
    assert state.hits["flaky:rl"] == 2
    assert 0.9 <= waited < 5


async def test_429_retry_after_http_date_is_honoured(base_url: str, state: Any) -> None:
    async with make(base_url) as http:
        started = time.monotonic()
        response = await http.get("/http-date")
        waited = time.monotonic() - started
    assert response.text == "ok"
    assert 0.5 <= waited < 5  # an HTTP date 2s ahead, at one-second resolution


async def test_429_x_ratelimit_reset_is_honoured(base_url: str, state: Any) -> None:
    async with make(base_url) as http:
        started = time.monotonic()
        response = await http.get("/flaky/xr", params={"fail": 1, "code": 429, "reset": 1})
        waited = time.monotonic() - started
    assert response.status == 200
    assert state.hits["flaky:xr"] == 2
    assert 0.9 <= waited < 5  # the reset header said one second


async def test_429_without_retries_carries_retry_after(base_url: str, state: Any) -> None:
    async with make(base_url, retry={"max_attempts": 1}) as http:
        with pytest.raises(RateLimitedError) as caught:
            await http.get("/status/429", params={"retry_after": "7"})
    assert caught.value.retry_after == 7.0


async def test_post_is_not_retried_unless_marked(base_url: str, state: Any) -> None:
    async with make(base_url) as http:
        with pytest.raises(ServiceUnavailableError):
            await http.post("/flaky/p1", params={"fail": 1}, json={})
        assert state.hits["flaky:p1"] == 1
        with pytest.raises(ServiceUnavailableError):
            await http.patch("/flaky/p2", params={"fail": 1}, json={})
        assert state.hits["flaky:p2"] == 1
        ok = await http.post("/flaky/p3", params={"fail": 1}, json={}, idempotent=True)
        assert ok.json() == {"hits": 2}
        keyed = await http.post(
            "/flaky/p4", params={"fail": 1}, json={}, headers={"Idempotency-Key": "k-1"}
        )
        assert keyed.json() == {"hits": 2}
        with pytest.raises(ServiceUnavailableError):
            await http.get("/flaky/p5", params={"fail": 1}, idempotent=False)
        assert state.hits["flaky:p5"] == 1


@pytest.mark.parametrize("method", ["POST", "PATCH"])
async def test_post_and_patch_with_idempotency_key_are_retried(
    base_url: str, state: Any, method: str
) -> None:
    key = f"idem-{method.lower()}-1"
    async with make(base_url) as http:
        response = await http.request(
            method,
            f"/flaky/k-{method}",
            params={"fail": 2},
            json={},
            headers={"Idempotency-Key": key},
        )
    assert response.json() == {"hits": 3}
    assert state.hits[f"flaky:k-{method}"] == 3
    assert [h["idempotency-key"] for h in state.seen_headers[-3:]] == [key] * 3


async def test_default_pool_keeps_every_connection_of_a_burst_alive(
    base_url: str, state: Any
) -> None:
    assert HttpConfig(base_url=base_url).limits.max_keepalive_connections is None
    async with make(base_url) as http:
        await asyncio.gather(*(http.get("/slow", params={"delay": 0.3}) for _ in range(30)))
        first = set(state.client_ports[-30:])
        await asyncio.gather(*(http.get("/slow", params={"delay": 0.3}) for _ in range(30)))
        second = set(state.client_ports[-30:])
    assert len(first) == 30  # the burst needed 30 connections
    assert second == first  # and the next burst reused all of them (no churn)


async def test_read_timeout_is_transient_and_retried(base_url: str, state: Any) -> None:
    async with make(
        base_url, timeouts={"read": 0.2}, retry={"max_attempts": 2, "initial_delay": 0.01}
    ) as http:
        with pytest.raises(ConnectorTimeoutError) as caught:
            await http.get("/slow", params={"delay": 1.5})
    assert caught.value.transient
    assert state.hits["slow"] == 2
    assert caught.value.details["url"].endswith("/v1/slow?delay=1.5")


async def test_per_call_timeout(base_url: str, state: Any) -> None:
    async with make(base_url, retry={"max_attempts": 1}) as http:
        with pytest.raises(ConnectorTimeoutError):
            await http.get("/slow", params={"delay": 1.5}, timeout=0.2)


class ResettingServer:
    """A raw TCP server that sends a partial response and aborts the connection for the
    first ``resets`` requests, then answers properly."""

    def __init__(self, resets: int) -> None:
        self.resets = resets
        self.requests = 0
        self.server: asyncio.Server | None = None

    async def handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        head = await reader.readuntil(b"\r\n\r\n")
        for line in head.split(b"\r\n"):
            if line.lower().startswith(b"content-length:"):
                await reader.readexactly(int(line.split(b":")[1]))
        self.requests += 1
        if self.requests <= self.resets:
            writer.write(
                b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n"
                b'Content-Length: 1000\r\n\r\n{"partial": '
            )
            await writer.drain()
            writer.transport.abort()
            return
        body = b'{"ok": true}'
        writer.write(
            b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nConnection: close\r\n"
            + f"Content-Length: {len(body)}\r\n\r\n".encode()
            + body
        )
        await writer.drain()
        writer.close()

    async def __aenter__(self) -> str:
        self.server = await asyncio.start_server(self.handle, "127.0.0.1", 0)
        port = self.server.sockets[0].getsockname()[1]
        return f"http://127.0.0.1:{port}"

    async def __aexit__(self, *exc: object) -> None:
        assert self.server is not None
        self.server.close()
        await self.server.wait_closed()


class HeadRecorder(ResettingServer):
    """Answers every request and keeps the header lines of each, as sent."""

    def __init__(self) -> None:
        super().__init__(resets=0)
        self.heads: list[list[tuple[str, str]]] = []

    async def handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        head = await reader.readuntil(b"\r\n\r\n")
        lines = head.decode("latin-1").split("\r\n")[1:-2]
        self.heads.append([(k.lower(), v.strip()) for k, _, v in (x.partition(":") for x in lines)])
        await super().handle(_Replay(head), writer)


class _Replay(asyncio.StreamReader):
    def __init__(self, head: bytes) -> None:
        super().__init__()
        self.feed_data(head)
        self.feed_eof()


async def test_the_direct_path_sends_the_headers_of_the_httpx_road_once_each() -> None:
    # The direct path leaves the client's default headers to the aiohttp session
    # (decision 0138): on the wire a plain GET must carry exactly what the httpx road
    # sends (follow_redirects takes that road), each header once.
    raw = HeadRecorder()
    config = {
        "connect_probe": False,
        "headers": {"X-Tenant": "t1"},
        "user_agent": "tests/1.0",
        "auth": {"type": "bearer", "token": "tok-123456"},
    }
    async with raw as url:
        async with make(url, **config) as http:
            await http.get("/a", correlation_id="c-1")
        async with make(url, follow_redirects=True, **config) as http:
            await http.get("/a", correlation_id="c-1")
    direct, road = (sorted(head) for head in raw.heads)
    assert direct == road
    names = [name for name, _ in direct]
    assert len(names) == len(set(names))
    assert {"x-tenant", "user-agent", "authorization", "x-correlation-id"} <= set(names)
    assert dict(direct)["user-agent"] == "tests/1.0"


async def test_connection_reset_mid_response_is_transient_and_retried() -> None:
    raw = ResettingServer(resets=1)
    async with raw as url, make(url, connect_probe=False) as http:
        response = await http.get("/anything")
    assert response.json() == {"ok": True}
    assert raw.requests == 2


async def test_connection_reset_on_post_is_not_retried() -> None:
    raw = ResettingServer(resets=1)
    async with raw as url, make(url, connect_probe=False) as http:
        with pytest.raises(ConnectionFailedError) as caught:
            await http.post("/anything", json={"x": 1})
    assert caught.value.transient
    assert raw.requests == 1


def closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
    return port


async def test_unreachable_server_raises_connection_failed() -> None:
    http = make(f"http://127.0.0.1:{closed_port()}", retry={"max_attempts": 1})
    with pytest.raises(ConnectionFailedError) as caught:
        await http.connect()
    assert caught.value.transient
    assert not http.is_connected


async def test_circuit_opens_then_half_opens_and_closes(base_url: str, state: Any) -> None:
    http = make(
        base_url,
        retry={"max_attempts": 1},
        circuit_breaker={"failure_threshold": 2, "cooldown": 0.3},
    )
    async with http:
        for _ in range(2):
            with pytest.raises(ServiceUnavailableError):
                await http.get("/flaky/cb", params={"fail": 3})
        assert http.circuit_breaker is not None
        assert http.circuit_breaker.state is CircuitState.OPEN
        with pytest.raises(CircuitOpenError):
            await http.get("/flaky/cb", params={"fail": 3})
        assert state.hits["flaky:cb"] == 2  # failed fast: the server saw nothing
        await asyncio.sleep(0.35)
        assert http.circuit_breaker.state is CircuitState.HALF_OPEN
        with pytest.raises(ServiceUnavailableError):  # the probe fails: open again
            await http.get("/flaky/cb", params={"fail": 3})
        assert http.circuit_breaker.state is CircuitState.OPEN
        await asyncio.sleep(0.35)
        response = await http.get("/flaky/cb", params={"fail": 3})  # probe succeeds
        assert response.json() == {"hits": 4}
        assert http.circuit_breaker.state is CircuitState.CLOSED
        failures = http.stats.operations["GET"].failures_by_code
    assert failures[ErrorCode.CIRCUIT_OPEN] == 1


async def test_client_errors_do_not_open_the_circuit(base_url: str, state: Any) -> None:
    http = make(base_url, retry={"max_attempts": 1}, circuit_breaker={"failure_threshold": 1})
    async with http:
        for _ in range(3):
            with pytest.raises(NotFoundError):
                await http.get("/status/404")
        assert http.circuit_breaker is not None
        assert http.circuit_breaker.state is CircuitState.CLOSED


async def test_rate_limit_spaces_requests(base_url: str, state: Any) -> None:
    async with make(base_url, rate_limit={"rate": 20, "burst": 1}) as http:
        started = time.monotonic()
        await asyncio.gather(*(http.get("/echo") for _ in range(10)))
        elapsed = time.monotonic() - started
        stats = http.stats
    assert elapsed >= 0.4  # nine waits of 1/20 s
    assert stats.rate_limit_waits == 9


async def test_stream_50mb_in_flat_memory(base_url: str, state: Any) -> None:
    process = psutil.Process()
    size = 50 * 1024 * 1024
    async with make(base_url) as http:
        async with http.stream("GET", "/big", params={"mb": 1}) as warm:
            async for _ in warm.aiter_bytes():
                pass
        total = 0
        chunks = 0
        before = process.memory_info().rss  # before stream(): a buffered body would show
        peak = before
        async with http.stream("GET", "/big", params={"mb": 50}) as response:
            assert response.status == 200
            peak = max(peak, process.memory_info().rss)
            async for chunk in response.aiter_bytes():
                total += len(chunk)
                chunks += 1
                if chunks % 16 == 1:
                    peak = max(peak, process.memory_info().rss)
        peak = max(peak, process.memory_info().rss)
    assert total == size
    # httpcore reads at most 64 KiB at a time: a streamed body arrives in >= 800 pieces;
    # one read into memory and handed out whole would be a single chunk.
    assert chunks >= size // 65536, chunks
    assert peak - before < 30 * 1024 * 1024, f"RSS grew by {(peak - before) / 2**20:.1f} MB"


async def test_stream_error_status_raises_typed_error(base_url: str, state: Any) -> None:
    async with make(base_url, retry={"max_attempts": 1}) as http:
        with pytest.raises(NotFoundError) as caught:
            async with http.stream("GET", "/status/404"):
                pytest.fail("the body of an error must not be handed out")
    assert caught.value.details["status"] == 404


async def _drain(http: HttpConnector, path: str) -> int:
    total = 0
    async with http.stream("GET", path) as response:
        async for chunk in response.aiter_bytes():
            total += len(chunk)
    return total


async def test_stream_reset_mid_body_raises_connection_failed() -> None:
    raw = ResettingServer(resets=5)
    async with raw as url, make(url, connect_probe=False) as http:
        with pytest.raises(ConnectionFailedError):
            await _drain(http, "/x")


async def test_ping_and_check_use_health_path(base_url: str, state: Any) -> None:
    http = make(base_url)
    result = await http.check()
    assert result.ok
    assert state.hits["health"] == 2  # the connect probe and the ping
    async with make(base_url, health_path="/status/503", retry={"max_attempts": 1}) as sick:
        with pytest.raises(ServiceUnavailableError):
            await sick.ping()


async def test_connect_probe_accepts_any_status(base_url: str, state: Any) -> None:
    async with make(base_url, health_path="/status/404") as http:
        assert http.is_connected


async def test_from_url_builds_working_connector(server: Any, state: Any) -> None:
    from connector_core import from_url

    connector = from_url(f"{server.url}/v1?health_path=/health&timeout=5")
    assert isinstance(connector, HttpConnector)
    async with connector:
        assert (await connector.get("/echo")).status == 200


async def test_deeply_nested_json_is_a_serialization_error(base_url: str, state: Any) -> None:
    async with make(base_url) as http:
        response = await http.get("/deep", params={"depth": 100_000})
        assert response.status == 200
        with pytest.raises(SerializationError, match="nested too deeply") as caught:
            response.json()
        with pytest.raises(SerializationError):  # and through a paginator
            async for _ in http.paginate_pages("/deep", items=None):
                pass
    assert caught.value.details["status"] == 200


def test_generated_correlation_ids_do_not_follow_the_random_module() -> None:
    # Unique, not secret (decision 0138): a private generator, so code that seeds
    # ``random`` (tests often do) cannot make two processes send the same ids.
    from connector_http._connector import _new_correlation_id

    random.seed(7)
    first = [_new_correlation_id() for _ in range(3)]
    random.seed(7)
    second = [_new_correlation_id() for _ in range(3)]
    assert first != second
    assert all(len(i) == 32 and int(i, 16) >= 0 for i in first + second)
    assert len(set(first + second)) == 6


def test_a_forked_child_makes_other_correlation_ids() -> None:
    from connector_http._connector import _new_correlation_id

    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: one id to the parent, then out without cleanup
        os.write(write, _new_correlation_id().encode())
        os._exit(0)
    os.close(write)
    child = os.read(read, 64).decode()
    os.close(read)
    os.waitpid(pid, 0)
    assert len(child) == 32
    assert child != _new_correlation_id()
