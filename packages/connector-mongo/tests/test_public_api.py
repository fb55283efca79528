import connector_mongo
from connector_core import connector_class


def test_exported_names_are_exactly_the_public_api() -> None:
    assert set(connector_mongo.__all__) == {
        "AuthMechanism",
        "Compressor",
        "MongoConfig",
        "MongoConnector",
        "ReadConcern",
        "ReadPreference",
        "__version__",
    }
    for name in connector_mongo.__all__:
        assert hasattr(connector_mongo, name)


def test_the_mongodb_schemes_are_registered() -> None:
    assert connector_class("mongodb") is connector_mongo.MongoConnector
    assert connector_class("mongodb+srv") is connector_mongo.MongoConnector
