"""The client side: many requests in flight, each matched to its reply."""

from __future__ import annotations

import asyncio
import json
import ssl
from pathlib import Path

import pytest
from websockets.asyncio.server import ServerConnection, serve
from ws_support import Backend

from connector_core import ConnectionFailedError
from connector_websocket import WebSocketConfig, WebSocketConnector

pytestmark = pytest.mark.integration


async def test_a_thousand_concurrent_requests_are_matched_to_their_replies(
    backend: Backend,
) -> None:
    async with WebSocketConnector(backend.config()) as ws:
        # The server answers each after a random pause: replies come out of order.
        replies = await asyncio.gather(
            *(ws.request("shuffle", {"n": n, "tag": f"r{n}"}) for n in range(1000))
        )
    assert replies == [{"n": n, "tag": f"r{n}"} for n in range(1000)]
    order = [request["body"]["n"] for request in backend.requests_seen]
    assert sorted(order) == list(range(1000))


async def test_messages_that_are_not_replies_are_received(backend: Backend) -> None:
    async with WebSocketConnector(backend.config()) as ws:
        asking = asyncio.create_task(backend.ask("hello", {"from": "server"}))
        message = await ws.receive(timeout=10)
        assert message["request"] == "hello"
        await ws.send_message(message["request"], message["request_id"], {"hi": True})
        reply = await asking
    assert reply["body"] == {"hi": True}


async def test_a_wss_server_is_verified_with_the_configured_ca(
    certificate: tuple[Path, Path],
) -> None:
    key, cert = certificate
    server_tls = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    server_tls.load_cert_chain(cert, key)

    async def echo(ws: ServerConnection) -> None:
        async for raw in ws:
            message = json.loads(raw)
            await ws.send(json.dumps({**message, "status": "success"}))

    async with serve(echo, "127.0.0.1", 0, ssl=server_tls) as server:
        port = server.sockets[0].getsockname()[1]
        url = f"wss://localhost:{port}/"
        async with WebSocketConnector(WebSocketConfig(url=url, ssl_cafile=cert)) as ws:
            assert await ws.request("echo", {"tls": True}) == {"tls": True}
        untrusting = WebSocketConnector(WebSocketConfig(url=url, retry={"max_attempts": 1}))
        with pytest.raises(ConnectionFailedError) as caught:
            await untrusting.connect()
    assert isinstance(caught.value.__cause__, ssl.SSLCertVerificationError)
