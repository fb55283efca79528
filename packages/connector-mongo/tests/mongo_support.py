"""Helpers the connector-mongo tests import (conftest.py puts this folder on sys.path)."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import Any

from connector_mongo import MongoConfig
from connector_testing import ToxiproxyClient, ToxiproxyError

DATABASE = "connector_mongo_tests"


def make_config(url: str, **overrides: Any) -> MongoConfig:
    """A config for the test server with quick retries and short server selection."""
    fields: dict[str, Any] = {
        "database": DATABASE,
        "connect_timeout": 10.0,
        "server_selection_timeout": 5.0,
        "timeout": 60.0,
        "retry": {"max_attempts": 4, "initial_delay": 0.05, "max_delay": 0.5},
    }
    fields.update(overrides)
    return MongoConfig.from_url(url, **fields)


class Toxic:
    """A toxic added by :func:`toxic`; ``require()`` fails when it vanished meanwhile."""

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
