"""The agent against a real websockets server: requests answered in envelopes that match
the schema, handler errors, callbacks, reconnects, backoff, throw_errors, the thread
pool and a graceful stop that leaves nothing running."""

from __future__ import annotations

import asyncio
import logging
from typing import Any

import jsonschema
import pytest
from agent_support import Connects, EchoAgent, running
from ws_support import Backend, ThreadedBackend, running_backend, wait_until

from connector_core import AuthenticationError, ConnectionFailedError, LifecycleEvent
from connector_websocket import (
    AgentEvent,
    AgentEventInfo,
    WebSocketAgent,
    WebSocketConnector,
    envelope_schema,
)

pytestmark = pytest.mark.integration


def valid(message: dict[str, Any]) -> dict[str, Any]:
    jsonschema.validate(message, envelope_schema())
    return message


class CountingOpener:
    """Opens real connections with websockets, counting the attempts."""

    def __init__(self) -> None:
        self.attempts = 0

    def __call__(self, uri: str, /, **options: Any) -> Any:
        from websockets.asyncio.client import connect

        self.attempts += 1
        return connect(uri, **options)


async def test_requests_are_answered_in_envelopes_that_match_the_schema(backend: Backend) -> None:
    agent = EchoAgent(backend.config())
    async with running(agent):
        reply = valid(await backend.ask("echo", {"n": 1, "text": "é"}))
        failed = valid(await backend.ask("boom", {}))
    assert reply == {
        "status": "success",
        "request": "echo",
        "request_id": reply["request_id"],
        "body": {"echo": {"n": 1, "text": "é"}},
    }
    assert failed["status"] == "error"
    for request in backend.requests_seen:
        valid(request)


async def test_the_client_side_round_trip_matches_the_schema(backend: Backend) -> None:
    async with WebSocketConnector(backend.config()) as ws:
        assert await ws.request("echo", {"a": [1, 2]}) == {"a": [1, 2]}
    (sent,) = backend.requests_seen
    assert valid(sent)["request"] == "echo"


def test_the_schema_refuses_what_is_not_an_envelope() -> None:
    schema = envelope_schema()
    for bad in (
        {"status": "success", "request": "x", "request_id": "1"},  # no body
        {"status": "error", "request": "x", "request_id": "1", "code": 500},  # no message
        {"status": "maybe", "request": "x", "request_id": "1", "body": {}},
        {"request": "x", "request_id": "", "body": {}},
        {"request": "x", "request_id": "1", "body": [], "extra": 1},
    ):
        with pytest.raises(jsonschema.ValidationError):
            jsonschema.validate(bad, schema)


async def test_a_handler_exception_becomes_an_error_envelope_and_the_agent_goes_on(
    backend: Backend, caplog: pytest.LogCaptureFixture
) -> None:
    agent = EchoAgent(backend.config())
    async with running(agent):
        crashed = valid(await backend.ask("boom", {}))
        missing = valid(await backend.ask("missing", {"id": 7}))
        after = await backend.ask("echo", {"still": "here"})
    assert crashed["code"] == 500
    assert crashed["message"] == "internal error (ValueError)"
    assert missing["code"] == "not_found"
    assert "no item 7" in missing["message"]
    assert after["body"] == {"echo": {"still": "here"}}
    assert any("boom" in r.getMessage() or r.exc_info for r in caplog.records)


async def test_an_error_envelope_reaches_the_client_as_a_typed_error(backend: Backend) -> None:
    from connector_core import NotFoundError, RateLimitedError
    from connector_websocket import RemoteError

    async with WebSocketConnector(backend.config()) as ws:
        with pytest.raises(NotFoundError, match="gone"):
            await ws.request("fail", {"code": "not_found", "message": "gone"})
        with pytest.raises(RateLimitedError):
            await ws.request("fail", {"code": "rate_limited", "message": "slow down"})
        with pytest.raises(RemoteError) as caught:
            await ws.request("fail", {"code": 500, "message": "internal error"})
    assert caught.value.remote_code == 500


async def test_the_startup_routine_and_callbacks_run_in_order(backend: Backend) -> None:
    seen: list[str] = []

    class Warmup:
        async def run(self) -> None:
            seen.append(f"startup routine, {backend.connects} connections")

    async def on_connect(info: AgentEventInfo) -> None:
        seen.append(f"on_connect {info.connects}")

    def broken(info: AgentEventInfo) -> None:
        raise RuntimeError("a broken callback")

    agent = EchoAgent(backend.config(), startup=Warmup())
    agent.register_callback(AgentEvent.ON_STARTUP, lambda info: seen.append("on_startup"))
    agent.register_callback(AgentEvent.ON_STARTUP, broken)
    agent.register_callback(AgentEvent.ON_CONNECT, on_connect)
    agent.register_callback(AgentEvent.ON_CONNECT, broken)
    agent.register_callback(AgentEvent.ON_STOP, lambda info: seen.append("on_stop"))
    agent.register_callback(LifecycleEvent.DISCONNECT, lambda info: seen.append("disconnect"))
    async with running(agent):
        await backend.ask("echo", {})  # the broken callbacks did not stop the agent
    assert seen == [
        "startup routine, 0 connections",
        "on_startup",
        "on_connect 1",
        "disconnect",
        "on_stop",
    ]


async def test_the_agent_reconnects_when_the_server_closes_the_connection(
    backend: Backend,
) -> None:
    agent = EchoAgent(backend.config())
    connects = Connects(agent)
    async with running(agent):
        await backend.close_all()
        await connects.reach(2)
        reply = await backend.ask("echo", {"after": "reconnect"})
    assert reply["body"] == {"echo": {"after": "reconnect"}}
    assert backend.connects == 2
    assert agent.stats.reconnects == 1


async def test_a_server_down_for_seconds_gets_backing_off_attempts_then_recovery(
    backend: Backend,
) -> None:
    delays: list[float] = []
    many = asyncio.Event()

    async def sleep(delay: float) -> None:
        delays.append(delay)
        if len(delays) >= 6:
            many.set()
        await asyncio.sleep(delay)

    opener = CountingOpener()
    config = backend.config(
        reconnect={"initial_delay": 0.1, "max_delay": 0.8, "multiplier": 2, "jitter": False}
    )
    agent = EchoAgent(config, opener=opener, sleep=sleep)
    connects = Connects(agent)
    async with running(agent):
        await backend.stop()  # down: every attempt is refused
        async with asyncio.timeout(30):
            await many.wait()
        await backend.start()
        await connects.reach(2)
        reply = await backend.ask("echo", {"back": True})
    assert reply["body"] == {"echo": {"back": True}}
    # Exponential, capped at max_delay, one attempt after each wait (and the first one).
    assert delays[:6] == [0.1, 0.2, 0.4, 0.8, 0.8, 0.8]
    assert opener.attempts == 1 + len(delays)


async def test_reconnect_attempts_are_bounded_by_max_attempts(backend: Backend) -> None:
    opener = CountingOpener()
    config = backend.config(reconnect={"initial_delay": 0.01, "max_delay": 0.02, "max_attempts": 3})
    agent = EchoAgent(config, opener=opener)
    async with running(agent) as task:
        await backend.stop()
        with pytest.raises(ConnectionFailedError):
            await asyncio.wait_for(task, 30)
    assert opener.attempts == 1 + 3  # the first connection, then three failed attempts
    assert agent.tasks == frozenset()


async def test_a_server_that_drops_every_connection_at_once_is_dialled_with_backoff() -> None:
    delays: list[float] = []

    async def sleep(delay: float) -> None:
        delays.append(delay)
        await asyncio.sleep(delay)

    async with running_backend() as server:
        config = server.config(
            reconnect={"initial_delay": 0.02, "max_delay": 5.0, "multiplier": 2, "jitter": False}
        )
        agent = EchoAgent(config, sleep=sleep)
        connects = Connects(agent)
        async with running(agent):
            for n in range(2, 6):
                await server.close_all()  # right after each connect
                await connects.reach(n)
    assert delays[:4] == [0.02, 0.04, 0.08, 0.16]


async def test_throw_errors_propagates_a_lost_connection(backend: Backend) -> None:
    agent = EchoAgent(backend.config(throw_errors=True))
    async with running(agent) as task:
        await backend.close_all()
        with pytest.raises(ConnectionFailedError, match="connection lost"):
            await asyncio.wait_for(task, 30)
    assert backend.connects == 1  # no reconnect
    assert not agent.is_connected


async def test_throw_errors_propagates_a_handler_error_after_its_envelope(
    backend: Backend,
) -> None:
    agent = EchoAgent(backend.config(throw_errors=True))
    async with running(agent) as task:
        reply = valid(await backend.ask("boom", {}))
        with pytest.raises(ValueError, match="boom"):
            await asyncio.wait_for(task, 30)
    assert reply["code"] == 500


async def test_a_refused_first_message_secret_stops_the_agent_without_retrying() -> None:
    async with running_backend(secret_mode="first_message") as server:
        agent = EchoAgent(server.config())
        async with running(agent):
            assert (await server.ask("echo", {}))["body"] == {"echo": {}}
        opener = CountingOpener()
        refused = EchoAgent(server.config(secret="wrong-secret-123"), opener=opener)
        with pytest.raises(AuthenticationError):
            await asyncio.wait_for(refused.run(), 30)
    assert opener.attempts == 1


async def test_a_blocking_handler_in_the_pool_does_not_delay_heartbeats(backend: Backend) -> None:
    config = backend.config(heartbeat_interval=0.05, heartbeat_message={"type": "heartbeat"})
    agent = EchoAgent(config)
    loop = asyncio.get_running_loop()
    async with running(agent):
        sent = loop.time()
        blocked = asyncio.create_task(backend.ask("block", {"seconds": 1.0}))
        await asyncio.sleep(0.1)  # the handler is in its blocking call
        quick = await backend.ask("echo", {"quick": True})  # answered meanwhile
        assert not blocked.done()
        reply = await blocked
        answered = loop.time()
    during = len([t for t in backend.heartbeats if sent < t < answered])
    assert reply["body"] == {"blocked": 1.0}
    assert quick["body"] == {"echo": {"quick": True}}
    assert during >= 5, during  # about 20 at 0.05 s; none if the loop had been blocked


async def test_graceful_stop_fires_on_stop_and_leaves_no_task() -> None:
    threaded = ThreadedBackend()
    with threaded as server:
        stops: list[AgentEventInfo] = []
        config = server.config(
            heartbeat_interval=0.05, heartbeat_message={"type": "heartbeat"}, pool_size=2
        )
        agent = EchoAgent(config)
        agent.register_callback(AgentEvent.ON_STOP, stops.append)
        connects = Connects(agent)
        task = asyncio.create_task(agent.run())
        await connects.reach(1)
        await agent.run_blocking(sum, [1, 2])
        hanging = asyncio.ensure_future(threaded.ask("hang", {}))
        await wait_until(lambda: len(agent.tasks) >= 3)  # receiver, heartbeat, the handler
        agent.stop()
        await asyncio.wait_for(task, 30)
        hanging.cancel()
        await asyncio.gather(hanging, return_exceptions=True)
    assert [info.event for info in stops] == [AgentEvent.ON_STOP]
    assert agent.tasks == frozenset()
    assert not agent.is_connected
    assert asyncio.all_tasks() == {asyncio.current_task()}


async def test_a_cancelled_run_is_a_graceful_stop(backend: Backend) -> None:
    stops: list[AgentEventInfo] = []
    agent = EchoAgent(backend.config())
    agent.register_callback(AgentEvent.ON_STOP, stops.append)
    async with running(agent) as task:
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
    assert len(stops) == 1
    assert agent.tasks == frozenset()


async def test_a_receiver_subclass_reads_the_messages_itself(backend: Backend) -> None:
    class Upper(WebSocketAgent):
        async def receiver(self) -> None:
            async for message in self.messages():
                await self.send_message(
                    message["request"], message["request_id"], {"up": message["body"]["s"].upper()}
                )

    async with running(Upper(backend.config())):
        reply = await backend.ask("upper", {"s": "abc"})
    assert reply["body"] == {"up": "ABC"}


def test_an_agent_must_implement_handle_or_receiver(backend: Backend) -> None:
    class Nothing(WebSocketAgent):
        pass

    with pytest.raises(TypeError, match="handle\\(\\) or receiver\\(\\)"):
        Nothing(backend.config())


async def test_a_given_connection_is_the_one_used(backend: Backend) -> None:
    opener = CountingOpener()
    connection = WebSocketConnector(backend.config(), opener=opener)
    agent = EchoAgent(connection=connection)
    async with running(agent):
        await backend.ask("echo", {})
        assert agent.connection is connection
        assert connection.is_connected
    assert opener.attempts == 1


async def test_a_pool_holds_several_connections_and_spreads_requests(backend: Backend) -> None:
    async with WebSocketConnector(backend.config(pool_size=3)) as ws:
        assert len(ws.connections()) == 3
        await asyncio.gather(*(ws.request("echo", {"i": i}) for i in range(30)))
    assert backend.connects == 3
    assert sorted(backend.requests_by_connection.values()) == [10, 10, 10]


async def test_a_late_reply_is_dropped_with_a_log_line(
    backend: Backend, caplog: pytest.LogCaptureFixture
) -> None:
    from connector_core import ConnectorTimeoutError

    caplog.set_level(logging.INFO, logger="connector.websocket")
    async with WebSocketConnector(backend.config()) as ws:
        with pytest.raises(ConnectorTimeoutError):
            await ws.request("sleep", {"seconds": 0.2}, timeout=0.01)
        await wait_until(lambda: any("dropped a reply" in r.getMessage() for r in caplog.records))
        assert await ws.request("echo", {"next": 1}) == {"next": 1}


async def test_handlers_run_concurrently_up_to_handler_concurrency(backend: Backend) -> None:
    active, peak = 0, 0

    class Counting(WebSocketAgent):
        async def handle(
            self, request: str, request_id: str, body: dict[str, Any]
        ) -> dict[str, Any]:
            nonlocal active, peak
            active += 1
            peak = max(peak, active)
            await asyncio.sleep(0.05)
            active -= 1
            return {"limit": self.options["label"]}

    agent = Counting(backend.config(handler_concurrency=3), options={"label": "three"})
    async with running(agent):
        replies = await asyncio.gather(*(backend.ask("work", {"n": n}) for n in range(12)))
    assert [r["body"] for r in replies] == [{"limit": "three"}] * 12
    assert peak == 3
