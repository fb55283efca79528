"""An agent for the tests, and a way to run one for the length of a block."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator
from typing import Any

from connector_core import NotFoundError
from connector_websocket import AgentEvent, AgentEventInfo, WebSocketAgent


class EchoAgent(WebSocketAgent):
    """echo -> the body; boom -> ValueError; missing -> NotFoundError; block -> a blocking
    call in the thread pool; hang -> never answers."""

    async def handle(self, request: str, request_id: str, body: dict[str, Any]) -> dict[str, Any]:
        if request == "boom":
            raise ValueError("boom")
        if request == "missing":
            raise NotFoundError(f"no item {body.get('id')}")
        if request == "block":
            await self.run_blocking(time.sleep, body["seconds"])
            return {"blocked": body["seconds"]}
        if request == "hang":
            await asyncio.sleep(3600)
        return {"echo": body}


class Connects:
    """Counts ON_CONNECT and lets a test wait for the n-th."""

    def __init__(self, agent: WebSocketAgent) -> None:
        self.count = 0
        self._changed = asyncio.Event()
        agent.register_callback(AgentEvent.ON_CONNECT, self._seen)

    def _seen(self, info: AgentEventInfo) -> None:
        self.count += 1
        self._changed.set()

    async def reach(self, n: int, timeout: float = 30) -> None:
        async with asyncio.timeout(timeout):
            while self.count < n:
                self._changed.clear()
                await self._changed.wait()


@contextlib.asynccontextmanager
async def running(agent: WebSocketAgent) -> AsyncIterator[asyncio.Task[None]]:
    """Run ``agent`` in a task for the block (connected when it starts); stop it after."""
    connects = Connects(agent)
    task = asyncio.create_task(agent.run())
    try:
        waiter = asyncio.create_task(connects.reach(1))
        done, _ = await asyncio.wait({waiter, task}, return_when=asyncio.FIRST_COMPLETED)
        if task in done:
            waiter.cancel()
            await task  # raises why it stopped
        yield task
    finally:
        agent.stop()
        if not task.done():
            await asyncio.wait_for(task, 30)
