"""Toxiproxy between the agent and the server, a proxy made for each test: latency slows
requests without losing the connection, a reset is a lost connection the agent recovers
from."""

from __future__ import annotations

import asyncio

import pytest
from agent_support import Connects, EchoAgent, running
from ws_support import Backend, proxy_to, wait_until

from connector_core import ConnectorTimeoutError
from connector_testing import ToxiproxyClient
from connector_websocket import WebSocketConnector

pytestmark = pytest.mark.integration


async def test_latency_slows_requests_without_losing_the_connection(
    backend: Backend, toxiproxy: ToxiproxyClient
) -> None:
    with proxy_to(toxiproxy, backend) as (proxy, url):
        async with WebSocketConnector(backend.config(url=url)) as ws:
            await ws.request("echo", {"warm": True})
            with toxiproxy.toxic(proxy, "latency", latency=300):
                assert await ws.request("echo", {"slow": True}) == {"slow": True}
                with pytest.raises(ConnectorTimeoutError):
                    await ws.request("echo", {"too": "slow"}, timeout=0.1)
            assert ws.is_connected
            assert await ws.request("echo", {"fast": True}) == {"fast": True}
    assert backend.connects == 1


async def test_the_agent_answers_through_latency(
    backend: Backend, toxiproxy: ToxiproxyClient
) -> None:
    with proxy_to(toxiproxy, backend) as (proxy, url):
        agent = EchoAgent(backend.config(url=url, heartbeat_interval=0.2, pong_timeout=2.0))
        async with running(agent):
            with toxiproxy.toxic(proxy, "latency", stream="upstream", latency=250):
                await asyncio.sleep(0.6)  # pings cross the latency too, and are answered
                reply = await backend.ask("echo", {"late": "but answered"})
    assert reply["body"] == {"echo": {"late": "but answered"}}
    assert backend.connects == 1


async def test_a_reset_is_a_lost_connection_the_agent_recovers_from(
    backend: Backend, toxiproxy: ToxiproxyClient
) -> None:
    with proxy_to(toxiproxy, backend) as (proxy, url):
        agent = EchoAgent(backend.config(url=url, heartbeat_interval=0.1, pong_timeout=1.0))
        connects = Connects(agent)
        async with running(agent):
            with toxiproxy.toxic(proxy, "reset_peer", timeout=0):
                # The next bytes (a ping at the latest) meet a TCP reset; while the toxic
                # holds, every new connection is reset too.
                await wait_until(lambda: agent.connection.needs_reconnect)
            await connects.reach(2)
            reply = await backend.ask("echo", {"after": "reset"})
    assert reply["body"] == {"echo": {"after": "reset"}}
    assert agent.stats.reconnects >= 1
