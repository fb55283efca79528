import connector_websocket
from connector_core import connector_class, from_url


def test_exported_names_are_exactly_the_public_api() -> None:
    assert set(connector_websocket.__all__) == {
        "AgentCallback",
        "AgentEvent",
        "AgentEventInfo",
        "Compression",
        "IncomingRequest",
        "Opener",
        "ReconnectSettings",
        "RemoteError",
        "SecretMode",
        "StartupRoutine",
        "WebSocketAgent",
        "WebSocketConfig",
        "WebSocketConnector",
        "__version__",
        "envelope_schema",
    }
    for name in connector_websocket.__all__:
        assert hasattr(connector_websocket, name)


def test_the_ws_and_wss_schemes_are_registered() -> None:
    assert connector_class("ws") is connector_websocket.WebSocketConnector
    assert connector_class("wss") is connector_websocket.WebSocketConnector
    built = from_url("ws://127.0.0.1:9/agent?pool_size=2")
    assert isinstance(built, connector_websocket.WebSocketConnector)
    assert built.config.pool_size == 2


def test_the_schema_ships_in_the_package() -> None:
    schema = connector_websocket.envelope_schema()
    assert schema["$schema"].endswith("2020-12/schema")
    schema["title"] = "changed"  # a copy: the next caller gets the original
    assert connector_websocket.envelope_schema()["title"] != "changed"
