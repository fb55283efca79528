"""Helpers the connector-kafka tests import (conftest.py puts this folder on sys.path)."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import Any

from connector_kafka import JsonSerializer, KafkaConfig, KafkaConnector
from connector_testing import ToxiproxyClient, ToxiproxyError

# Short enough for fast rebalances, long enough for a loaded two-core machine; the broker
# refuses sessions under group.min.session.timeout.ms (6 s by default).
FAST_GROUPS: dict[str, Any] = {
    "session_timeout": 6.0,
    "heartbeat_interval": 0.5,
    "rebalance_timeout": 15.0,
    "drain_timeout": 5.0,
    "commit_interval": 0.5,
}


def make_config(bootstrap: str, **overrides: Any) -> KafkaConfig:
    """A config for the test broker with quick retries and short group timeouts."""
    fields: dict[str, Any] = {
        "bootstrap_servers": bootstrap,
        "connect_timeout": 10.0,
        "request_timeout": 10.0,
        "timeout": 30.0,
        "retry": {"max_attempts": 4, "initial_delay": 0.05, "max_delay": 0.5},
        **FAST_GROUPS,
    }
    fields.update(overrides)
    return KafkaConfig.model_validate(fields)


def json_connector(config: KafkaConfig) -> KafkaConnector:
    """A connector whose keys and values are JSON (records, discovery)."""
    return KafkaConnector(
        config, key_serializer=JsonSerializer(), value_serializer=JsonSerializer()
    )


@contextlib.contextmanager
def toxic(client: ToxiproxyClient, proxy: str, kind: str, **attributes: Any) -> Iterator[None]:
    """A Toxiproxy toxic for the duration of a block. Its removal tolerates "not found":
    on a shared machine another test session may reset every proxy meanwhile."""
    name = client.add_toxic(proxy, kind, **attributes)
    try:
        yield
    finally:
        with contextlib.suppress(ToxiproxyError):
            client.remove_toxic(proxy, name)
