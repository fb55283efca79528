"""DiscoverableContractTests: ``discover`` means the same in every connector."""

from __future__ import annotations

import pytest

from connector_core import Catalog, Connector, Discoverable, FieldType
from connector_testing._streams import MakeStream, StreamSuite, records


async def _discover(connector: Connector) -> Catalog:
    assert isinstance(connector, Discoverable), f"{type(connector).__name__} is not Discoverable"
    return await connector.discover()


class DiscoverableContractTests(StreamSuite):
    """What ``discover()`` returns: every stream with fields of portable types, the
    primary key and cursor field where the source has them, and the same catalog twice
    in a row. Provide ``config`` and ``make_stream`` (see :class:`StreamSuite`)."""

    @pytest.mark.asyncio
    async def test_discover_describes_a_stream_with_portable_types(
        self, connected: Connector, make_stream: MakeStream
    ) -> None:
        stream = await make_stream(connected, records([1, 2, 3]))
        found = (await _discover(connected)).stream(stream)
        types = {f.name: f.type for f in found.fields}
        assert types == {
            "id": FieldType.INTEGER,
            "updated_at": FieldType.INTEGER,
            "name": FieldType.STRING,
        }
        assert found.primary_key == ("id",)
        assert found.cursor_field == "updated_at"
        assert not found.field("id").nullable

    @pytest.mark.asyncio
    async def test_every_stream_is_consistent(
        self, connected: Connector, make_stream: MakeStream
    ) -> None:
        await make_stream(connected, records([1]))
        catalog = await _discover(connected)
        assert catalog.streams
        for stream in catalog.streams:
            names = [f.name for f in stream.fields]
            assert len(names) == len(set(names)), f"{stream.name}: a field is listed twice"
            assert all(isinstance(f.type, FieldType) for f in stream.fields)
            assert set(stream.primary_key) <= set(names), stream
            assert stream.cursor_field is None or stream.cursor_field in names, stream

    @pytest.mark.asyncio
    async def test_discover_twice_gives_the_same_catalog(
        self, connected: Connector, make_stream: MakeStream
    ) -> None:
        await make_stream(connected, records([1, 2]))
        assert await _discover(connected) == await _discover(connected)
