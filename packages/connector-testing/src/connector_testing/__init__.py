"""connector-testing: tools for testing connectors and code that uses them.

``MemoryConnector`` is an in-memory connector with every capability;
``ConnectorContractTests`` (lifecycle, config, secrets), ``RoadContractTests``,
``ReadableContractTests``, ``WritableContractTests`` and ``DiscoverableContractTests``
are the standard suites each connector package runs, by subclassing them;
``CrashingStateStore`` stops a sync between a batch's write and its checkpoint;
the pytest plugin (registered through ``pytest11``) provides fixtures for real
services: ``postgres_url``, ``kafka_bootstrap``, ``mongo_url``, ``toxiproxy``.
"""

from connector_testing._discoverable_contract import DiscoverableContractTests
from connector_testing._lifecycle_contract import ConnectorContractTests
from connector_testing._memory import MemoryConfig, MemoryConnector
from connector_testing._network import closed_port
from connector_testing._readable_contract import ReadableContractTests
from connector_testing._road_contract import RoadContractTests
from connector_testing._secrets import exception_texts, record_texts, secret_leaks, shown_texts
from connector_testing._streams import StreamSuite, cursor_value, records
from connector_testing._suite import ContractSuite, Observable
from connector_testing._sync import CrashingStateStore, SimulatedCrashError
from connector_testing._toxiproxy import ToxiproxyClient, ToxiproxyError
from connector_testing._writable_contract import WritableContractTests
from connector_testing.plugin import skip_or_fail, unique_name

__all__ = [
    "ConnectorContractTests",
    "ContractSuite",
    "CrashingStateStore",
    "DiscoverableContractTests",
    "MemoryConfig",
    "MemoryConnector",
    "Observable",
    "ReadableContractTests",
    "RoadContractTests",
    "SimulatedCrashError",
    "StreamSuite",
    "ToxiproxyClient",
    "ToxiproxyError",
    "WritableContractTests",
    "closed_port",
    "cursor_value",
    "exception_texts",
    "record_texts",
    "records",
    "secret_leaks",
    "shown_texts",
    "skip_or_fail",
    "unique_name",
]
