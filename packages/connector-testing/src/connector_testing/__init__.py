"""connector-testing: tools for testing connectors and code that uses them.

``MemoryConnector`` is an in-memory connector with every capability;
``ConnectorContractTests`` is the standard suite each connector package runs;
the pytest plugin (registered through ``pytest11``) provides fixtures for real
services: ``postgres_url``, ``kafka_bootstrap``, ``mongo_url``, ``toxiproxy``.
"""

from connector_testing._contract import ConnectorContractTests
from connector_testing._memory import MemoryConfig, MemoryConnector
from connector_testing._secrets import exception_texts, record_texts, secret_leaks, shown_texts
from connector_testing._toxiproxy import ToxiproxyClient, ToxiproxyError
from connector_testing.plugin import skip_or_fail, unique_name

__all__ = [
    "ConnectorContractTests",
    "MemoryConfig",
    "MemoryConnector",
    "ToxiproxyClient",
    "ToxiproxyError",
    "exception_texts",
    "record_texts",
    "secret_leaks",
    "shown_texts",
    "skip_or_fail",
    "unique_name",
]
