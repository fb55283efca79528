"""A real websockets server on 127.0.0.1 for the tests: a backend that answers client
requests, sends requests to an agent, checks the secret, closes idle connections and can
stop answering pings or go down for a while."""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import json
import random
import subprocess
import threading
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from websockets.asyncio.server import Server, ServerConnection, serve
from websockets.datastructures import Headers
from websockets.frames import CloseCode
from websockets.http11 import Request, Response

from connector_testing import ToxiproxyClient, closed_port, unique_name
from connector_websocket import WebSocketConfig

SECRET = "wS-s3cret-Tok3n-5e1f"


class WatchedConnection(ServerConnection):
    """A server connection that notes when any frame (pings included) last came."""

    last_frame: float = 0.0

    def process_event(self, event: Any) -> None:
        self.last_frame = asyncio.get_running_loop().time()
        super().process_event(event)


async def wait_until(condition: Callable[[], object], timeout: float = 30) -> None:
    """Poll ``condition`` until true (ConnectorTimeoutError-free: TimeoutError after
    ``timeout``): for states that signal no event of their own."""
    async with asyncio.timeout(timeout):
        while not condition():  # noqa: ASYNC110
            await asyncio.sleep(0.01)


@dataclass
class Backend:
    """The test server. ``requests_seen`` and ``heartbeats`` record what clients sent."""

    secret: str | None = SECRET
    secret_mode: str = "header"
    idle_timeout: float | None = None
    port: int = field(default_factory=closed_port)
    server: Server | None = None
    connects: int = 0
    heartbeats: list[float] = field(default_factory=list)
    requests_seen: list[dict[str, Any]] = field(default_factory=list)
    replies_seen: list[dict[str, Any]] = field(default_factory=list)
    raw_seen: list[str] = field(default_factory=list)
    dropped: set[str] = field(default_factory=set)
    live: set[ServerConnection] = field(default_factory=set)
    requests_by_connection: dict[int, int] = field(default_factory=dict)
    paused: set[ServerConnection] = field(default_factory=set)
    _waiting: dict[str, asyncio.Future[dict[str, Any]]] = field(default_factory=dict)
    _ids: Iterator[int] = field(default_factory=itertools.count)
    _tasks: set[asyncio.Task[Any]] = field(default_factory=set)
    connected: asyncio.Event = field(default_factory=asyncio.Event)

    @property
    def url(self) -> str:
        return f"ws://127.0.0.1:{self.port}/agent"

    def config(self, **overrides: Any) -> WebSocketConfig:
        fields: dict[str, Any] = {
            "url": self.url,
            "secret": self.secret,
            "secret_mode": self.secret_mode,
            "connect_timeout": 5.0,
            "timeout": 10.0,
            "retry": {"max_attempts": 1},
            "reconnect": {"initial_delay": 0.05, "max_delay": 0.2},
            "close_timeout": 1.0,
        }
        fields.update(overrides)
        return WebSocketConfig(**fields)

    # -- life ---------------------------------------------------------------------------

    async def start(self) -> None:
        self.server = await serve(
            self._serve,
            "127.0.0.1",
            self.port,
            process_request=self._check_secret,
            create_connection=WatchedConnection,
            ping_interval=None,
            compression=None,
        )

    async def stop(self) -> None:
        server, self.server = self.server, None
        for ws in self.paused:  # they would wait close_timeout for a close nobody reads
            ws.transport.abort()
        self.paused.clear()
        if server is not None:
            server.close()
            await server.wait_closed()
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)

    def pause_reading(self) -> None:
        """Stop reading every open connection: pings go unanswered, TCP stays up."""
        for ws in self.live:
            ws.transport.pause_reading()
            self.paused.add(ws)
        self.live.clear()  # ask() goes to the connections made after this

    async def close_all(self, code: int = CloseCode.GOING_AWAY, reason: str = "bye") -> None:
        for ws in list(self.live):
            await ws.close(code, reason)

    # -- handshake ----------------------------------------------------------------------

    def _check_secret(self, connection: ServerConnection, request: Request) -> Response | None:
        if self.secret is None or self.secret_mode != "header":
            return None
        if request.headers.get("Authorization") != f"Bearer {self.secret}":
            return connection.respond(401, "bad secret\n")
        return None

    # -- a connection -------------------------------------------------------------------

    async def _serve(self, ws: ServerConnection) -> None:
        if self.secret is not None and self.secret_mode == "first_message":
            first = json.loads(await ws.recv())
            if first != {"type": "auth", "secret": self.secret}:
                await ws.close(4401, "bad secret")
                return
        self.connects += 1
        self.live.add(ws)
        self.connected.set()
        watcher = self._spawn(self._watch_idle(ws)) if self.idle_timeout else None
        try:
            async for raw in ws:
                assert isinstance(raw, str)
                self.raw_seen.append(raw)
                message = json.loads(raw)
                if message.get("type") == "heartbeat":
                    self.heartbeats.append(asyncio.get_running_loop().time())
                elif "status" in message:
                    self.replies_seen.append(message)
                    waiter = self._waiting.pop(message["request_id"], None)
                    if waiter is not None and not waiter.done():
                        waiter.set_result(message)
                else:
                    self.requests_seen.append(message)
                    key = id(ws)
                    self.requests_by_connection[key] = self.requests_by_connection.get(key, 0) + 1
                    self._spawn(self._answer(ws, message))
        finally:
            self.live.discard(ws)
            self.paused.discard(ws)
            if watcher is not None:
                watcher.cancel()

    def _spawn(self, coro: Any) -> asyncio.Task[Any]:
        task = asyncio.get_running_loop().create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return task

    async def _watch_idle(self, ws: WatchedConnection) -> None:  # type: ignore[override]
        assert self.idle_timeout is not None
        ws.last_frame = asyncio.get_running_loop().time()
        while True:
            await asyncio.sleep(self.idle_timeout / 4)
            if asyncio.get_running_loop().time() - ws.last_frame > self.idle_timeout:
                await ws.close(4000, "idle timeout")
                return

    async def _answer(self, ws: ServerConnection, message: dict[str, Any]) -> None:
        name, request_id, body = message["request"], message["request_id"], message["body"]

        def success(reply: dict[str, Any]) -> str:
            return json.dumps(
                {"status": "success", "request": name, "request_id": request_id, "body": reply}
            )

        def error(code: Any, text: str) -> str:
            return json.dumps(
                {
                    "status": "error",
                    "request": name,
                    "request_id": request_id,
                    "code": code,
                    "message": text,
                }
            )

        with contextlib.suppress(Exception):
            if name == "echo":
                await ws.send(success(body))
            elif name == "shuffle":  # answers out of order
                await asyncio.sleep(random.random() * 0.005)
                await ws.send(success(body))
            elif name == "sleep":
                await asyncio.sleep(body["seconds"])
                await ws.send(success(body))
            elif name == "fail":
                await ws.send(error(body["code"], body["message"]))
            elif name == "quote_secret":
                header = ws.request.headers.get("Authorization") if ws.request else None
                await ws.send(error(401, f"token refused: {header}"))
            elif name == "close":
                await ws.close(body.get("code", 1000), body.get("reason", ""))
            elif name == "drop_once":
                if body["key"] not in self.dropped:
                    self.dropped.add(body["key"])
                    ws.transport.abort()
                    return
                await ws.send(success(body))
            else:
                await ws.send(error("not_found", f"no request {name!r}"))

    # -- asking an agent ----------------------------------------------------------------

    async def ask(self, request: str, body: dict[str, Any], timeout: float = 30) -> dict[str, Any]:
        """Send a request to the (first) connected agent and wait for its reply."""
        await wait_until(lambda: self.live, timeout)
        async with asyncio.timeout(timeout):
            ws = next(iter(self.live))
            request_id = f"srv-{next(self._ids)}"
            waiter: asyncio.Future[dict[str, Any]] = asyncio.get_running_loop().create_future()
            self._waiting[request_id] = waiter
            payload = {"request": request, "request_id": request_id, "body": body}
            await ws.send(json.dumps(payload))
            return await waiter


@contextlib.asynccontextmanager
async def running_backend(**options: Any) -> AsyncIterator[Backend]:
    backend = Backend(**options)
    await backend.start()
    try:
        yield backend
    finally:
        await backend.stop()


@contextlib.contextmanager
def proxy_to(toxiproxy: ToxiproxyClient, backend: Backend) -> Iterator[tuple[str, str]]:
    """A Toxiproxy proxy made for one test in front of ``backend``: (its name, its ws URL)."""
    name = unique_name("ws")
    port = closed_port()
    toxiproxy.create_proxy(name, f"127.0.0.1:{port}", f"127.0.0.1:{backend.port}")
    try:
        yield name, f"ws://127.0.0.1:{port}/agent"
    finally:
        toxiproxy.delete_proxy(name)


def headers_of(ws: ServerConnection) -> Headers:
    assert ws.request is not None
    return ws.request.headers


class ThreadedBackend:
    """A Backend running in a thread of its own, on its own event loop: the test's loop
    then holds only the tasks of the code under test."""

    def __init__(self, **options: Any) -> None:
        self.backend = Backend(**options)
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, daemon=True)

    def __enter__(self) -> Backend:
        self._thread.start()
        asyncio.run_coroutine_threadsafe(self.backend.start(), self._loop).result(10)
        return self.backend

    def __exit__(self, *exc_info: Any) -> None:
        asyncio.run_coroutine_threadsafe(self.backend.stop(), self._loop).result(10)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(10)
        self._loop.close()

    async def ask(self, request: str, body: dict[str, Any]) -> dict[str, Any]:
        future = asyncio.run_coroutine_threadsafe(self.backend.ask(request, body), self._loop)
        return await asyncio.wrap_future(future)


def self_signed(folder: Path) -> tuple[Path, Path]:
    """(key, certificate) of a self-signed certificate for ``localhost``, made by openssl."""
    key, cert = folder / "key.pem", folder / "cert.pem"
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1",
         "-subj", "/CN=localhost", "-addext", "subjectAltName=DNS:localhost",
         "-keyout", str(key), "-out", str(cert)],
        check=True,
        capture_output=True,
    )  # fmt: skip
    return key, cert
