"""The client secret never shows: not in websockets' own DEBUG logs (the handshake
header, the first message), not in the agent's logs or error envelopes when a handler's
error quotes it. (The lifecycle suite's secret tests run in test_contract.py.)"""

from __future__ import annotations

import logging

import pytest
from agent_support import running
from ws_support import SECRET, Backend, running_backend

from connector_core import ConnectorError, PermissionDeniedError
from connector_testing import record_texts, secret_leaks, shown_texts
from connector_websocket import WebSocketAgent, WebSocketConnector

pytestmark = pytest.mark.integration


async def test_websockets_debug_logs_show_no_secret_in_either_mode(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG)
    for mode in ("header", "first_message"):
        async with (
            running_backend(secret_mode=mode) as server,
            WebSocketConnector(server.config()) as ws,
        ):
            assert await ws.request("echo", {"mode": mode}) == {"mode": mode}
    texts = record_texts(caplog.records)
    assert any("Authorization" in text for text in texts)  # the header was logged, masked
    assert any('"type": "auth"' in text for text in texts)  # so was the first message
    assert secret_leaks(texts, [SECRET]) == []


async def test_a_handler_error_quoting_the_secret_is_masked_everywhere(
    backend: Backend, caplog: pytest.LogCaptureFixture
) -> None:
    class Leaky(WebSocketAgent):
        async def handle(
            self, request: str, request_id: str, body: dict[str, object]
        ) -> dict[str, object]:
            raise PermissionDeniedError(f"token {SECRET} may not {request}")

    caplog.set_level(logging.DEBUG)
    agent = Leaky(backend.config())
    async with running(agent):
        reply = await backend.ask("delete", {})
    assert reply["code"] == "permission_denied"
    assert "***" in reply["message"]
    texts = [*backend.raw_seen, *record_texts(caplog.records), *shown_texts(agent, agent.config)]
    assert secret_leaks(texts, [SECRET]) == []


async def test_a_refused_secret_shows_nowhere(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    async with running_backend() as server:
        connector = WebSocketConnector(server.config(secret="the-wrong-s3cret"))
        with pytest.raises(ConnectorError) as caught:
            await connector.connect()
        result = await connector.check()
    texts = shown_texts(caught.value, result, connector) + record_texts(caplog.records)
    assert secret_leaks(texts, ["the-wrong-s3cret"]) == []
    assert caught.value.code.value == "authentication"
