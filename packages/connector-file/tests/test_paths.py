"""Every stream path stays inside the root: '..', absolute paths elsewhere and symlinks
that lead out are InvalidRequestError, and nothing is opened."""

from __future__ import annotations

import os
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from connector_core import ConfigError, InvalidRequestError
from connector_file import FileConfig, FileConnector

_OPENED: list[str] = []
_WATCHING: list[bool] = [False]


def _audit(event: str, args: tuple[object, ...]) -> None:
    if _WATCHING[0] and event == "open" and args and isinstance(args[0], str | bytes | int):
        _OPENED.append(str(args[0]))


sys.addaudithook(_audit)  # cannot be removed: it records only while a test watches


@pytest.fixture
def opened() -> Iterator[list[str]]:
    """Every path opened (by this process, any thread) while the test runs."""
    _OPENED.clear()
    _WATCHING[0] = True
    try:
        yield _OPENED
    finally:
        _WATCHING[0] = False


@pytest.fixture
def outside(tmp_path: Path) -> Path:
    secret = tmp_path / "outside" / "secret.ndjson"
    secret.parent.mkdir()
    secret.write_text('{"secret": true}\n')
    return secret


def _escapes(root: Path, outside: Path) -> list[str]:
    os.symlink(outside, root / "link.ndjson")
    os.symlink(outside.parent, root / "linkdir")
    return [
        "../outside/secret.ndjson",
        "sub/../../outside/secret.ndjson",
        str(outside),
        "link.ndjson",
        "linkdir/secret.ndjson",
    ]


async def test_reads_that_lead_out_of_the_root_are_refused_before_any_open(
    files: FileConnector, root: Path, outside: Path, opened: list[str]
) -> None:
    for path in _escapes(root, outside):
        with pytest.raises(InvalidRequestError, match="inside the root"):
            [r async for r in files.read(path)]
        with pytest.raises(InvalidRequestError, match="inside the root"):
            await files.sample(path)
    assert not [p for p in opened if "outside" in p or "link" in p], opened


async def test_writes_that_lead_out_of_the_root_are_refused_and_write_nothing(
    files: FileConnector, root: Path, outside: Path, opened: list[str]
) -> None:
    before = outside.read_bytes()
    paths = _escapes(root, outside)
    opened.clear()
    for path in paths:
        for mode in ("append", "replace"):
            with pytest.raises(InvalidRequestError, match="inside the root"):
                await files.write(path, [{"id": 1}], mode=mode)  # type: ignore[arg-type]
    seen = list(opened)
    assert outside.read_bytes() == before
    assert sorted(p.name for p in outside.parent.iterdir()) == ["secret.ndjson"]
    assert not [p for p in seen if "outside" in p or "link" in p], seen


async def test_a_glob_matching_a_symlink_out_is_refused_before_any_open(
    root: Path, outside: Path, opened: list[str]
) -> None:
    (root / "a.ndjson").write_text('{"id": 1}\n')
    os.symlink(outside, root / "b.ndjson")
    config = FileConfig(root=root, streams={"all": {"path": "*.ndjson"}})
    async with FileConnector(config) as connector:
        opened.clear()
        with pytest.raises(InvalidRequestError, match="symbolic link"):
            [r async for r in connector.read("all")]
    assert not [p for p in opened if p.endswith(".ndjson")], opened


async def test_a_symlink_inside_the_root_is_followed(files: FileConnector, root: Path) -> None:
    (root / "data").mkdir()
    (root / "data" / "a.ndjson").write_text('{"id": 1}\n')
    os.symlink(root / "data" / "a.ndjson", root / "alias.ndjson")
    assert [r async for r in files.read("alias.ndjson")] == [{"id": 1}]
    assert [r async for r in files.read(str(root / "data" / "a.ndjson"))] == [{"id": 1}]


def test_a_configured_stream_path_outside_the_root_is_a_config_error(root: Path) -> None:
    with pytest.raises(ConfigError) as caught:
        FileConfig(
            root=root,
            streams={"up": {"path": "../x.ndjson"}, "abs": {"path": "/etc/passwd"}},
        )
    assert {"streams.up.path", "streams.abs.path"} <= set(caught.value.fields)
