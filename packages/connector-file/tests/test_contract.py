"""The standard contracts on a real directory: lifecycle, road, and the capability
suites, for NDJSON, CSV and JSON-array files."""

from __future__ import annotations

import asyncio
import os
import threading
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import pytest

from connector_file import FileConfig, FileConnector
from connector_testing import (
    ConnectorContractTests,
    DiscoverableContractTests,
    ReadableContractTests,
    RoadContractTests,
    WritableContractTests,
    unique_name,
)

NO_SECRET = "a file connector's config holds no secret (no credentials: the OS decides)"


class FileFixtures:
    connector_class: Any = FileConnector

    @pytest.fixture
    def config(self, root: Path) -> FileConfig:
        return FileConfig(root=root, retry={"max_attempts": 2, "initial_delay": 0.01})


class TestFileContract(FileFixtures, ConnectorContractTests):
    @pytest.fixture
    def unreachable_config(self, tmp_path: Path) -> FileConfig:
        # A root that is not there: like a server that is down (a mount may come back).
        return FileConfig(root=tmp_path / "not-mounted", retry={"max_attempts": 1})

    @pytest.fixture
    def invalid_config_fields(self) -> dict[str, Any]:
        return {
            "format": "xml",
            "chunk_size": 10,
            "csv": {"delimiter": "::", "encoding": "utf-16"},
            "streams": {"up": {"path": "../etc/passwd"}},
        }

    @pytest.mark.xfail(reason=NO_SECRET, strict=True)
    def test_secret_absent_from_repr_str_and_dump(self) -> None:  # type: ignore[override]
        pytest.fail(NO_SECRET)

    @pytest.mark.xfail(reason=NO_SECRET, strict=True)
    async def test_secret_absent_from_logs_and_errors(self) -> None:  # type: ignore[override]
        pytest.fail(NO_SECRET)


class TestFileRoad(FileFixtures, RoadContractTests):
    @pytest.fixture
    def connector(self, config: FileConfig, root: Path) -> FileConnector:
        away = root.with_name("root-away")

        async def bring_back_then_sleep(delay: float) -> None:
            # The road's one wait before a retry: the root comes back meanwhile.
            if away.exists():
                away.rename(root)
            await asyncio.sleep(delay)

        return FileConnector(config, sleep=bring_back_then_sleep)

    @pytest.fixture
    def provoke_driver_error(self, root: Path) -> Any:
        async def read_a_directory(connector: FileConnector) -> None:
            (root / "dir.ndjson").mkdir()
            await connector.write("dir.ndjson", [{"id": 1}], mode="append")

        return read_a_directory

    @pytest.fixture
    def flaky_operation(self, root: Path) -> Any:
        (root / "a.ndjson").write_text('{"id": 1}\n')

        async def flaky(connector: FileConnector, *, idempotent: bool) -> None:
            # The root goes away (an unmounted share): a transient failure; the
            # connector's sleep before a retry brings it back.
            root.rename(root.with_name("root-away"))
            try:
                if idempotent:
                    assert await connector.files("a.ndjson") == ["a.ndjson"]
                else:
                    await connector.write("a.ndjson", [{"id": 2}], mode="append")
            finally:
                if not root.exists():
                    root.with_name("root-away").rename(root)

        return flaky

    @pytest.mark.xfail(reason="files have no credentials to refuse: the OS decides", strict=True)
    async def test_authentication_errors_are_never_retried(self) -> None:  # type: ignore[override]
        pytest.fail("no credentials")

    @pytest.fixture
    def rejected_config(self, config: FileConfig) -> FileConfig:
        return config

    @pytest.fixture
    def slow_operation(self, root: Path) -> Iterator[Any]:
        # A FIFO whose writer sends nothing: the read waits for bytes that do not come.
        fifo = root / "slow.ndjson"
        os.mkfifo(fifo)
        release = threading.Event()

        def writer() -> None:
            fd = os.open(fifo, os.O_WRONLY)  # waits for the reader
            release.wait(30)
            os.close(fd)

        thread = threading.Thread(target=writer, daemon=True)
        thread.start()

        async def slow(connector: FileConnector, timeout: float) -> None:
            quick = FileConnector(connector.config.model_copy(update={"timeout": timeout}))
            try:
                async with quick:
                    await anext(quick.read("slow.ndjson"))
            finally:
                release.set()

        yield slow
        release.set()
        thread.join(5)


# -- the capability suites, on each format ---------------------------------------------

FORMATS = ("ndjson", "csv", "json")


class StreamFixtures:
    connector_class: Any = FileConnector

    @pytest.fixture(params=FORMATS)
    def extension(self, request: pytest.FixtureRequest) -> str:
        return str(request.param)

    @pytest.fixture
    def config(self, root: Path) -> FileConfig:
        return FileConfig(root=root, primary_key=("id",), cursor_field="updated_at")

    @pytest.fixture
    def make_stream(self, extension: str) -> Any:
        async def make(connector: FileConnector, records: Sequence[dict[str, Any]]) -> str:
            name = f"{unique_name('s')}.{extension}"
            result = await connector.write(name, records, mode="replace")
            assert result.ok, result.errors
            return name

        return make


class TestFileReadable(StreamFixtures, ReadableContractTests):
    pass


class TestFileWritable(StreamFixtures, WritableContractTests):
    @pytest.fixture
    def rejected_record(self) -> dict[str, Any]:
        # A set has no JSON or CSV form: the record cannot be written.
        return {"id": 3, "updated_at": 3, "name": {"r", "3"}}


class TestFileDiscoverable(StreamFixtures, DiscoverableContractTests):
    pass
