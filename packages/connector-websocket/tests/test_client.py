"""The client side: many requests in flight, each matched to its reply."""

from __future__ import annotations

import asyncio

import pytest
from ws_support import Backend

from connector_websocket import WebSocketConnector

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
