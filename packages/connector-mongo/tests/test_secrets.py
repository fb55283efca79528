"""The password never leaves the connector: not in reprs, URLs, logs, errors or their
chained causes, on a refused login or an unreachable server."""

from __future__ import annotations

import logging
from typing import Any

import pytest
from mongo_support import make_config

from connector_core import AuthenticationError, ConnectionFailedError, ConnectorError
from connector_mongo import MongoConnector
from connector_testing import closed_port, exception_texts, record_texts, secret_leaks, shown_texts

pytestmark = pytest.mark.integration

PASSWORD = "Zq7-m0ngo/p@ss:wörd"


async def _refused(connector: MongoConnector) -> ConnectorError:
    with pytest.raises(ConnectorError) as caught:
        await connector.connect()
    await connector.disconnect()
    return caught.value


@pytest.mark.parametrize("where", ["refused login", "unreachable server"])
async def test_the_password_never_shows(
    where: str, mongo_url: str, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    url = mongo_url if where == "refused login" else f"mongodb://127.0.0.1:{closed_port()}/"
    config = make_config(
        url,
        user="ann",
        password=PASSWORD,
        connect_timeout=2.0,
        server_selection_timeout=1.0,
        retry={"max_attempts": 2, "initial_delay": 0.01, "max_delay": 0.02},
    )
    connector = MongoConnector(config)
    error = await _refused(connector)
    expected: Any = AuthenticationError if where == "refused login" else ConnectionFailedError
    assert isinstance(error, expected), repr(error)
    result = await connector.check()
    assert not result.ok
    texts = shown_texts(error, result, connector, config, connector.stats) + record_texts(
        caplog.records
    )
    texts += exception_texts(error)
    assert not secret_leaks(texts, [PASSWORD])
    assert "ann:***@" in connector.config.connection_string()
