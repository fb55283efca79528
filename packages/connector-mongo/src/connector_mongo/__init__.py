"""connector-mongo: MongoDB through PyMongo's AsyncMongoClient, on connector_core's contract.

Streamed finds and aggregations, bulk writes with per-operation errors, indexes,
transactions, change streams, schema inference and incremental reads. Import from here;
the ``_modules`` behind this file are private.
"""

from connector_mongo._config import (
    AuthMechanism,
    Compressor,
    MongoConfig,
    ReadConcern,
    ReadPreference,
)
from connector_mongo._connector import MongoConnector, __version__

__all__ = [
    "AuthMechanism",
    "Compressor",
    "MongoConfig",
    "MongoConnector",
    "ReadConcern",
    "ReadPreference",
    "__version__",
]
