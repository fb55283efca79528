"""WritableContractTests: ``write`` means the same in every connector."""

from __future__ import annotations

import gc
import logging
from collections.abc import Awaitable, Callable
from typing import Any

import pytest

from connector_core import Connector, Readable, Writable
from connector_testing._streams import MakeStream, StreamSuite, records

ReadBack = Callable[[Any, str], Awaitable[list[dict[str, Any]]]]


def _writable(connector: Connector) -> Writable:
    assert isinstance(connector, Writable), f"{type(connector).__name__} is not Writable"
    return connector


class WritableContractTests(StreamSuite):
    """What ``write(stream, records)`` means, as :class:`connector_core.Writable`
    documents: ``WriteResult`` counts, ``RecordError.index`` pointing at the input
    record that was refused, an upsert applied twice leaving one record per key, and a
    rejected record never vanishing silently (a result with failures dropped unread is
    warned in the log).

    Provide ``config``, ``make_stream`` (see :class:`StreamSuite`; the suite writes into
    streams it makes empty), ``rejected_record`` (a record with ``id`` 3 that the
    destination refuses: a value of the wrong type, a missing key) and, when the
    connector is not Readable, ``read_back``."""

    @pytest.fixture
    def rejected_record(self) -> dict[str, Any]:
        raise NotImplementedError(
            "provide 'rejected_record': a record (id 3) the destination refuses to store"
        )

    @pytest.fixture
    def read_back(self, read_options: dict[str, Any]) -> ReadBack:
        async def read(connector: Any, stream: str) -> list[dict[str, Any]]:
            if not isinstance(connector, Readable):
                pytest.fail("the connector is not Readable: give a 'read_back' fixture")
            rows = [dict(r) async for r in connector.read(stream, **read_options)]
            return sorted(rows, key=lambda r: r["id"])

        return read

    @pytest.mark.asyncio
    async def test_write_counts_what_it_wrote(
        self, connected: Connector, make_stream: MakeStream, read_back: ReadBack
    ) -> None:
        stream = await make_stream(connected, [])
        batch = records([1, 2, 3])
        result = await _writable(connected).write(stream, batch)
        assert (result.written, result.failed, result.errors, result.ok) == (3, 0, (), True)
        assert await read_back(connected, stream) == batch

    @pytest.mark.asyncio
    async def test_an_upsert_applied_twice_leaves_one_record_per_key(
        self, connected: Connector, make_stream: MakeStream, read_back: ReadBack
    ) -> None:
        stream = await make_stream(connected, [])
        writer = _writable(connected)
        first = records([1, 2, 3])
        assert (await writer.write(stream, first)).ok
        again = [{**r, "updated_at": r["updated_at"] + 10, "name": r["name"] + "'"} for r in first]
        result = await writer.write(stream, again)
        assert (result.written, result.failed) == (3, 0)
        assert await read_back(connected, stream) == again

    @pytest.mark.asyncio
    async def test_a_record_error_points_at_the_rejected_record(
        self,
        connected: Connector,
        make_stream: MakeStream,
        read_back: ReadBack,
        rejected_record: dict[str, Any],
    ) -> None:
        stream = await make_stream(connected, [])
        batch: list[dict[str, Any]] = records([1, 2, 3, 4, 5])
        batch[2] = rejected_record
        result = await _writable(connected).write(stream, batch)
        assert result.failed >= 1
        assert result.written + result.failed == len(batch)
        assert 2 in {e.index for e in result.errors}, result.errors
        assert all(-1 <= e.index < len(batch) for e in result.errors)
        stored = await read_back(connected, stream)
        # Exactly what was reported written is there: nothing half-applied silently.
        assert len(stored) == result.written
        assert all(r in batch for r in stored)
        assert rejected_record not in stored

    @pytest.mark.asyncio
    async def test_rejected_records_of_an_unread_result_are_warned(
        self,
        connected: Connector,
        make_stream: MakeStream,
        rejected_record: dict[str, Any],
        caplog: pytest.LogCaptureFixture,
    ) -> None:
        stream = await make_stream(connected, [])
        batch: list[dict[str, Any]] = records([1, 2])
        batch.append(rejected_record)
        with caplog.at_level(logging.WARNING, logger="connector_core.write"):
            await _writable(connected).write(stream, batch)  # the result is ignored
            gc.collect()
        warned = [r for r in caplog.records if r.name == "connector_core.write"]
        assert warned, "a WriteResult with failures was dropped and nobody was warned"
        assert "rejected" in warned[0].getMessage()
