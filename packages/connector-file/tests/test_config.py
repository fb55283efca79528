"""FileConfig: construction, the URL form, and ConfigErrors naming every bad field."""

from __future__ import annotations

from pathlib import Path

import pytest

from connector_core import ConfigError, FieldType
from connector_file import FileConfig, FileConnector, FileFormat


def test_the_url_gives_the_root_and_the_query_gives_fields() -> None:
    config = FileConfig.from_url("file:///data/ex%20ports?format=csv&strict=true&sample_size=5")
    assert config.root == Path("/data/ex ports")
    assert (config.format, config.strict, config.sample_size) == (FileFormat.CSV, True, 5)
    assert config.connection_string() == "file:///data/ex%20ports"
    assert FileConfig.from_url("file://localhost/srv").root == Path("/srv")


@pytest.mark.parametrize("url", ["file://otherhost/data", "http://host/data"])
def test_a_url_that_is_no_local_path_is_refused(url: str) -> None:
    with pytest.raises(ConfigError) as caught:
        FileConfig.from_url(url)
    assert caught.value.fields == ("url",)


def test_every_bad_field_is_named_at_once(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as caught:
        FileConfig(
            root=tmp_path,
            chunk_size=1,
            csv={"delimiter": "ab", "encoding": "utf-16"},
            schema_hints={"a": "color"},
            streams={"x": {"path": "plain"}},
        )
    assert {"chunk_size", "csv.delimiter", "csv.encoding", "schema_hints.a"} <= set(
        caught.value.fields
    )


def test_a_stream_whose_format_nothing_says_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as caught:
        FileConfig(root=tmp_path, streams={"x": {"path": "exports/data"}})
    assert caught.value.fields == ("streams.x.format",)
    given = FileConfig(root=tmp_path, streams={"x": {"path": "exports/data", "format": "csv"}})
    assert given.streams["x"].format is FileFormat.CSV


def test_csv_without_a_header_needs_field_names(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as caught:
        FileConfig(root=tmp_path, csv={"header": False})
    assert caught.value.fields == ("csv",)
    assert "fieldnames" in str(caught.value)


async def test_csv_without_a_header_reads_by_the_given_names(tmp_path: Path) -> None:
    (tmp_path / "a.tsv").write_text("1\tAnn\n2\tBo\n")
    config = FileConfig(
        root=tmp_path,
        csv={"dialect": "excel-tab", "header": False, "fieldnames": ["id", "name"]},
        schema_hints={"id": FieldType.STRING},
    )
    async with FileConnector(config) as files:
        assert [r async for r in files.read("a.tsv")] == [
            {"id": "1", "name": "Ann"},
            {"id": "2", "name": "Bo"},
        ]


async def test_a_root_that_is_a_file_is_a_config_error_at_connect(tmp_path: Path) -> None:
    (tmp_path / "f").write_text("")
    connector = FileConnector(FileConfig(root=tmp_path / "f"))
    with pytest.raises(ConfigError, match="not a directory"):
        await connector.connect()
