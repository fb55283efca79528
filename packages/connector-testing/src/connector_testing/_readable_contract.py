"""ReadableContractTests: ``read`` and ``sample`` mean the same in every connector."""

from __future__ import annotations

from typing import Any

import pytest

from connector_core import Checkpoint, Connector, NotFoundError, Readable
from connector_testing._streams import CursorKind, MakeStream, StreamSuite, ordered, records


def _readable(connector: Connector) -> Readable:
    assert isinstance(connector, Readable), f"{type(connector).__name__} is not Readable"
    return connector


async def read_all(
    connector: Connector, stream: str, options: dict[str, Any], **kwargs: Any
) -> list[dict[str, Any]]:
    """Every record ``read(stream, **options, **kwargs)`` yields, as dicts."""
    return [dict(r) async for r in _readable(connector).read(stream, **options, **kwargs)]


# Cursor steps with many ties, written in an order that is neither the key's nor the
# cursor's: the order read() returns must come from the connector, not from insertion.
_STEPS = [3, 1, 2, 1, 3, 2, 2, 1, 3, 1, 2, 3]


class ReadableContractTests(StreamSuite):
    """What ``read(stream, since=..., limit=...)`` and ``sample()`` mean, as
    :class:`connector_core.Readable` documents: (cursor, key) order, a Checkpoint is
    strictly after, a plain value is inclusive, ``limit``, checkpoints that survive JSON
    and resume with nothing skipped or repeated among many equal cursor values,
    NotFoundError for an unknown stream. Provide ``config``, ``make_stream`` and, if
    ``read()`` needs them, ``read_options``."""

    @pytest.mark.asyncio
    async def test_read_orders_by_cursor_then_key(
        self, connected: Connector, make_stream: MakeStream, read_options: dict[str, Any]
    ) -> None:
        given = records(_STEPS)
        stream = await make_stream(connected, list(reversed(given)))
        rows = await read_all(connected, stream, read_options)
        assert ordered(rows) == sorted(ordered(given))
        assert {r["name"] for r in rows} == {r["name"] for r in given}

    @pytest.mark.asyncio
    async def test_since_a_checkpoint_is_strictly_after_it(
        self, connected: Connector, make_stream: MakeStream, read_options: dict[str, Any]
    ) -> None:
        given = records(_STEPS)
        stream = await make_stream(connected, given)
        after = sorted(ordered(given))[5]  # a record among others with its cursor value
        since = Checkpoint(cursor=after[0], key=(after[1],))
        rows = await read_all(connected, stream, read_options, since=since)
        assert ordered(rows) == [p for p in sorted(ordered(given)) if p > after]

    @pytest.mark.asyncio
    async def test_since_a_checkpoint_of_the_cursor_alone_skips_that_value(
        self, connected: Connector, make_stream: MakeStream, read_options: dict[str, Any]
    ) -> None:
        given = records(_STEPS)
        stream = await make_stream(connected, given)
        rows = await read_all(connected, stream, read_options, since=Checkpoint(cursor=2))
        assert ordered(rows) == [p for p in sorted(ordered(given)) if p[0] > 2]

    @pytest.mark.asyncio
    async def test_since_a_plain_value_includes_that_value(
        self, connected: Connector, make_stream: MakeStream, read_options: dict[str, Any]
    ) -> None:
        given = records(_STEPS)
        stream = await make_stream(connected, given)
        rows = await read_all(connected, stream, read_options, since=2)
        assert ordered(rows) == [p for p in sorted(ordered(given)) if p[0] >= 2]

    @pytest.mark.asyncio
    async def test_limit_stops_after_that_many_records(
        self, connected: Connector, make_stream: MakeStream, read_options: dict[str, Any]
    ) -> None:
        given = records(_STEPS)
        stream = await make_stream(connected, given)
        first = await read_all(connected, stream, read_options, limit=4)
        assert ordered(first) == sorted(ordered(given))[:4]
        assert await read_all(connected, stream, read_options, limit=0) == []
        everything = await read_all(connected, stream, read_options, limit=len(given) + 5)
        assert len(everything) == len(given)

    @pytest.mark.asyncio
    @pytest.mark.parametrize("kind", ["integer", "datetime"])
    async def test_checkpoints_through_json_resume_without_gaps_or_repeats(
        self,
        connected: Connector,
        make_stream: MakeStream,
        read_options: dict[str, Any],
        kind: CursorKind,
    ) -> None:
        # 40 records on 4 cursor values: every page boundary falls inside a run of ties.
        given = records([i % 4 for i in range(40)], kind)
        stream = await make_stream(connected, given)
        seen: list[dict[str, Any]] = []
        saved: str | None = None
        for _ in range(20):
            since = Checkpoint.model_validate_json(saved) if saved is not None else None
            page = await read_all(connected, stream, read_options, since=since, limit=7)
            if not page:
                break
            seen += page
            last = Checkpoint.after(page[-1], cursor_field="updated_at", key_fields=("id",))
            saved = last.model_dump_json()  # as a sync would store it between runs
        ids = [r["id"] for r in seen]
        assert len(ids) == len(set(ids)), "a record was read twice"
        assert sorted(ids) == [r["id"] for r in given], "a record was skipped"
        assert ordered(seen) == sorted(ordered(given))

    @pytest.mark.asyncio
    async def test_sample_returns_records_of_the_stream(
        self, connected: Connector, make_stream: MakeStream
    ) -> None:
        given = records(_STEPS)
        stream = await make_stream(connected, given)
        reader = _readable(connected)
        sample = [dict(r) for r in await reader.sample(stream, 3)]
        assert len(sample) == 3
        assert all(r in given for r in sample)
        assert await reader.sample(stream, 0) == []

    @pytest.mark.asyncio
    async def test_an_unknown_stream_is_not_found(
        self, connected: Connector, read_options: dict[str, Any]
    ) -> None:
        with pytest.raises(NotFoundError):
            await read_all(connected, "no_such_stream_4c1e", read_options)
        with pytest.raises(NotFoundError):
            await _readable(connected).sample("no_such_stream_4c1e", 1)
