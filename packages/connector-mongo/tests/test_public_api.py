import connector_mongo
from connector_core import connector_class


def test_exported_names_are_exactly_the_public_api() -> None:
    assert set(connector_mongo.__all__) == {
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
    }
    for name in connector_mongo.__all__:
        assert hasattr(connector_mongo, name)


def test_the_mongodb_schemes_are_registered() -> None:
    assert connector_class("mongodb") is connector_mongo.MongoConnector
    assert connector_class("mongodb+srv") is connector_mongo.MongoConnector
