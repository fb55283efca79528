import connector_file
from connector_core import connector_class, from_url


def test_exported_names_are_exactly_the_public_api() -> None:
    assert set(connector_file.__all__) == {
        "Compression",
        "CsvSettings",
        "FileConfig",
        "FileConnector",
        "FileFormat",
        "FileReader",
        "FileStream",
        "RecordIssue",
        "StreamPlan",
        "StreamSettings",
        "__version__",
    }
    for name in connector_file.__all__:
        assert hasattr(connector_file, name)


def test_the_file_scheme_is_registered() -> None:
    assert connector_class("file") is connector_file.FileConnector
    connector = from_url("file:///data/exports?format=ndjson&primary_key=id,day")
    assert isinstance(connector, connector_file.FileConnector)
    assert str(connector.config.root) == "/data/exports"
    assert connector.config.format is connector_file.FileFormat.NDJSON
    assert connector.config.primary_key == ("id", "day")
