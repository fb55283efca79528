"""MongoConnector: PyMongo's AsyncMongoClient behind connector_core's lifecycle and road.

Every driver call runs on :meth:`BaseConnector.run` (rate limit, circuit breaker,
timeout, error translation, retry, stats); the parts live in modules of their own:
configuration (``_config.py``), names (``_names.py``), errors (``_errors.py``).
"""

from __future__ import annotations

from collections.abc import Mapping
from importlib.metadata import PackageNotFoundError
from importlib.metadata import version as _version
from typing import Any, ClassVar

import pymongo
from pymongo import AsyncMongoClient
from pymongo.asynchronous.collection import AsyncCollection
from pymongo.asynchronous.database import AsyncDatabase

from connector_core import (
    USE_DEFAULT,
    BaseConnector,
    ConnectorError,
    InvalidRequestError,
    NotConnectedError,
    UseDefault,
)
from connector_mongo._config import MongoConfig
from connector_mongo._errors import translate_error
from connector_mongo._names import check_collection_name

try:
    __version__ = _version("connector-mongo")
except PackageNotFoundError:  # pragma: no cover - running from a source tree
    __version__ = "0.0.0"

Document = dict[str, Any]


class MongoConnector(BaseConnector[MongoConfig]):
    """A MongoDB connector over PyMongo's ``AsyncMongoClient`` (its own pool).

    Errors are connector_core's typed errors: ConnectionFailedError (no server, network
    error; transient), ConnectorTimeoutError (socket or server time limit),
    AuthenticationError (never retried), PermissionDeniedError, ConflictError (duplicate
    key, with ``details["key"]`` when the server says it), NotFoundError,
    InvalidRequestError (a bad filter, pipeline, option or collection name) and QueryError
    (anything else the server refused, with ``details["code"]`` and
    ``details["server_message"]``).
    """

    name: ClassVar[str] = "mongo"
    version: ClassVar[str] = __version__
    config_class: ClassVar[type[MongoConfig]] = MongoConfig

    def __init__(self, config: MongoConfig, **kwargs: Any) -> None:
        super().__init__(config, **kwargs)
        self._client: AsyncMongoClient[Document] | None = None

    # -- driver hooks -------------------------------------------------------------------

    async def _connect(self) -> None:
        client: AsyncMongoClient[Document] = AsyncMongoClient(**self.config.client_settings())
        try:
            # One real round trip (authenticating, when there are credentials); server
            # selection bounded by connect_timeout, so a dead server says "no server
            # available" rather than the road's bare timeout.
            with pymongo.timeout(self.config.connect_timeout * 0.9):
                await client[self.config.database].command("ping")
        except BaseException:
            await client.close()
            raise
        self._client = client

    async def _disconnect(self) -> None:
        client, self._client = self._client, None
        if client is not None:
            await client.close()

    async def _ping(self) -> None:
        await self.database.command("ping")

    def _translate_error(self, exc: BaseException) -> ConnectorError | None:
        return translate_error(exc)

    def _is_connection_lost(self, error: ConnectorError) -> bool:
        # The driver's pool heals itself (it re-discovers servers and replaces dead
        # connections): re-creating the client would break every other task's cursor.
        return False

    # -- the driver ---------------------------------------------------------------------

    @property
    def client(self) -> AsyncMongoClient[Document]:
        """The AsyncMongoClient, for what this class does not cover (NotConnectedError
        before ``connect()``). Calls made on it bypass retries, stats and translation."""
        if self._client is None:
            raise NotConnectedError(
                "not connected: call connect() or use 'async with' first", connector=self.name
            )
        return self._client

    @property
    def database(self) -> AsyncDatabase[Document]:
        """The configured database (``config.database``) of :attr:`client`."""
        return self.client[self.config.database]

    def collection(self, name: str) -> AsyncCollection[Document]:
        """The collection ``name`` of the configured database, after checking the name
        (InvalidRequestError for an empty, ``$``-holding, NUL-holding or ``system.``
        name: nothing reaches the server)."""
        check_collection_name(name, self.config.database, connector=self.name)
        return self.database[name]

    # -- commands -----------------------------------------------------------------------

    async def command(
        self,
        command: Mapping[str, Any],
        *,
        idempotent: bool = False,
        timeout: float | UseDefault | None = USE_DEFAULT,
    ) -> Document:
        """Run a database command on the configured database (``{"dbStats": 1}``); its
        reply. Not retried unless ``idempotent=True``; ``timeout`` replaces
        ``config.timeout`` for this call. Raises InvalidRequestError (an unknown command),
        QueryError, ... like every operation."""
        if not isinstance(command, Mapping) or not command:
            raise InvalidRequestError(
                "command must be a non-empty mapping such as {'ping': 1}", connector=self.name
            )
        spec = dict(command)

        async def call() -> Document:
            reply: Document = await self.database.command(spec)
            return reply

        return await self.run("command", call, idempotent=idempotent, timeout=timeout)
