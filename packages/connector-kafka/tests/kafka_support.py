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


def sasl_config(url: str, **overrides: Any) -> KafkaConfig:
    """A config for the test broker's SASL listener (``kafka_sasl_url``), with the quick
    settings of :func:`make_config`; ``overrides`` win over the URL's own fields."""
    fields = KafkaConfig.fields_from_url(url)
    bootstrap = fields.pop("bootstrap_servers")
    return make_config(bootstrap, **{**fields, **overrides})


def sasl_password(url: str) -> str:
    """The password in ``kafka_sasl_url`` (what no text may show)."""
    password = KafkaConfig.fields_from_url(url).get("sasl_password")
    if not isinstance(password, str) or not password:
        raise AssertionError("kafka_sasl_url carries no password")
    return password


def json_connector(config: KafkaConfig) -> KafkaConnector:
    """A connector whose keys and values are JSON (records, discovery)."""
    return KafkaConnector(
        config, key_serializer=JsonSerializer(), value_serializer=JsonSerializer()
    )


class Toxic:
    """A toxic added by :func:`toxic`; ``active()`` says whether it is still there."""

    def __init__(self, client: ToxiproxyClient, proxy: str, name: str) -> None:
        self.client, self.proxy, self.name = client, proxy, name

    def active(self) -> bool:
        return any(t.get("name") == self.name for t in self.client.toxics(self.proxy))

    def require(self) -> None:
        """Fail saying so when the toxic vanished: on a shared machine another test
        session may reset every proxy, and the test would then prove nothing."""
        if not self.active():
            raise AssertionError(
                f"the {self.name} toxic was removed meanwhile (another test session reset "
                "Toxiproxy?): the fault was not injected all along"
            )


@contextlib.contextmanager
def toxic(client: ToxiproxyClient, proxy: str, kind: str, **attributes: Any) -> Iterator[Toxic]:
    """A Toxiproxy toxic for the duration of a block. Its removal tolerates "not found"
    (another test session may have reset every proxy meanwhile)."""
    name = client.add_toxic(proxy, kind, **attributes)
    try:
        yield Toxic(client, proxy, name)
    finally:
        with contextlib.suppress(ToxiproxyError):
            client.remove_toxic(proxy, name)
