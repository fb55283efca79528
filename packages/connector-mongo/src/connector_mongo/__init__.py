"""connector-mongo: MongoDB through PyMongo's AsyncMongoClient, on connector_core's contract.

Streamed finds and aggregations, bulk writes with per-operation errors, indexes,
transactions, change streams, schema inference and incremental reads. Import from here;
the ``_modules`` behind this file are private. The bulk operations are PyMongo's own,
re-exported so that one import is enough.
"""

from pymongo import DeleteMany, DeleteOne, InsertOne, ReplaceOne, UpdateMany, UpdateOne

from connector_mongo._config import (
    AuthMechanism,
    Compressor,
    MongoConfig,
    ReadConcern,
    ReadPreference,
)
from connector_mongo._connector import MongoConnector, __version__
from connector_mongo._discover import CollectionStream
from connector_mongo._read import DocumentReader
from connector_mongo._results import BulkWriteResult, IndexInfo, UpdateResult
from connector_mongo._transaction import MongoTransaction
from connector_mongo._values import portable_type
from connector_mongo._watch import ChangeEvent, ChangeStream

__all__ = [
    "AuthMechanism",
    "BulkWriteResult",
    "ChangeEvent",
    "ChangeStream",
    "CollectionStream",
    "Compressor",
    "DeleteMany",
    "DeleteOne",
    "DocumentReader",
    "IndexInfo",
    "InsertOne",
    "MongoConfig",
    "MongoConnector",
    "MongoTransaction",
    "ReadConcern",
    "ReadPreference",
    "ReplaceOne",
    "UpdateMany",
    "UpdateOne",
    "UpdateResult",
    "__version__",
    "portable_type",
]
