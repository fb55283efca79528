"""Heartbeat: websockets' keepalive pings keep an idle connection alive past the server's
idle timeout, and a server that stops answering them is found dead within the ping
interval plus the pong timeout (plus the close timeout websockets then waits)."""

from __future__ import annotations

import asyncio
import logging

import pytest
from agent_support import Connects, EchoAgent, running
from ws_support import running_backend, wait_until

pytestmark = pytest.mark.integration

IDLE = 0.6  # the server closes a connection that sent no frame (ping included) this long


async def test_pings_keep_an_idle_connection_alive_past_the_servers_idle_timeout() -> None:
    async with running_backend(idle_timeout=IDLE) as server:
        agent = EchoAgent(server.config(heartbeat_interval=IDLE / 4, pong_timeout=5.0))
        connects = Connects(agent)
        async with running(agent):
            await asyncio.sleep(IDLE * 4)  # idle, apart from the pings
            reply = await server.ask("echo", {"still": "connected"})
        assert reply["body"] == {"echo": {"still": "connected"}}
        assert server.connects == 1
        assert connects.count == 1


async def test_without_heartbeat_the_idle_timeout_closes_the_connection() -> None:
    # The counterpart of the test above: the idle timeout is real.
    async with running_backend(idle_timeout=IDLE) as server:
        agent = EchoAgent(server.config(heartbeat_interval=None))
        connects = Connects(agent)
        async with running(agent):
            await connects.reach(2)
        assert server.connects >= 2


async def test_heartbeat_messages_go_out_every_interval() -> None:
    async with running_backend() as server:
        config = server.config(heartbeat_interval=0.05, heartbeat_message={"type": "heartbeat"})
        async with running(EchoAgent(config)):
            await wait_until(lambda: len(server.heartbeats) >= 3)
        assert server.connects == 1


async def test_a_server_that_stops_answering_pings_is_detected(
    caplog: pytest.LogCaptureFixture,
) -> None:
    interval, pong_timeout, close_timeout = 0.2, 0.3, 0.2
    async with running_backend() as server:
        config = server.config(
            heartbeat_interval=interval, pong_timeout=pong_timeout, close_timeout=close_timeout
        )
        agent = EchoAgent(config)
        connects = Connects(agent)
        async with running(agent):
            loop = asyncio.get_running_loop()
            paused = loop.time()
            server.pause_reading()  # TCP stays up; nothing is read, no pong comes
            # Found dead within interval + pong timeout, then websockets waits up to
            # close_timeout for the close; a second of slack for a loaded machine.
            await connects.reach(2, timeout=interval + pong_timeout + close_timeout + 1.0)
            detected = loop.time() - paused
            reply = await server.ask("echo", {"on": "the new connection"})
    assert reply["body"] == {"echo": {"on": "the new connection"}}
    assert detected > pong_timeout  # not before a pong was due
    lost = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert any("keepalive ping timeout" in text for text in lost), lost
