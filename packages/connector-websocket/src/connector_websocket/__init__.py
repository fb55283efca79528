"""connector-websocket: WebSocket clients and long-running agents on ``websockets``.

:class:`WebSocketConnector` is a client (a pool of connections, JSON envelopes,
``request()`` matched to replies by ``request_id``); :class:`WebSocketAgent` is the base
class of a service that holds a WebSocket to a backend and answers its requests, with
heartbeat, reconnect, lifecycle callbacks and a thread pool for blocking handlers.
Import from here; the ``_modules`` behind this file are private.
"""

from connector_websocket._agent import (
    AgentCallback,
    AgentEvent,
    AgentEventInfo,
    StartupRoutine,
    WebSocketAgent,
)
from connector_websocket._config import (
    Compression,
    ReconnectSettings,
    SecretMode,
    WebSocketConfig,
)
from connector_websocket._connector import Opener, WebSocketConnector, __version__
from connector_websocket._envelope import IncomingRequest, envelope_schema
from connector_websocket._errors import RemoteError

__all__ = [
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
]
