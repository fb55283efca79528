"""The streams the capability suites read, write and discover: records with an integer
key ``id``, a cursor ``updated_at`` (integers or timestamps) and a ``name``."""

from __future__ import annotations

import datetime as dt
from collections.abc import Awaitable, Callable, Sequence
from typing import Any, Literal

import pytest

from connector_testing._suite import ContractSuite

CursorKind = Literal["integer", "datetime"]
MakeStream = Callable[[Any, Sequence[dict[str, Any]]], Awaitable[str]]

_EPOCH = dt.datetime(2026, 1, 1, tzinfo=dt.UTC)


def cursor_value(step: int, kind: CursorKind) -> Any:
    """The cursor value for ``step`` as an integer or as an aware UTC timestamp."""
    return step if kind == "integer" else _EPOCH + dt.timedelta(minutes=step)


def records(
    steps: Sequence[int], kind: CursorKind = "integer", *, first_id: int = 1
) -> list[dict[str, Any]]:
    """One record per cursor step: ``{"id", "updated_at", "name"}``, ids counting up."""
    return [
        {"id": first_id + i, "updated_at": cursor_value(step, kind), "name": f"r{first_id + i}"}
        for i, step in enumerate(steps)
    ]


class StreamSuite(ContractSuite):
    """Fixtures of the suites that need streams. A connector's test class provides
    ``make_stream``: an async function ``(connector, records) -> stream name`` that
    creates a new stream (table, collection...) with primary key ``id`` and cursor
    ``updated_at`` (the type of the first record's value: int or an aware datetime;
    with no records, int), holding exactly ``records``, and returns the name to pass to
    ``read``/``write``/``discover``. ``read_options`` are extra keyword arguments for
    ``read()`` (a connector that must be told the cursor field says so there)."""

    @pytest.fixture
    def make_stream(self) -> MakeStream:
        raise NotImplementedError(
            "provide 'make_stream': async (connector, records) -> name of a new stream with "
            "primary key 'id' and cursor 'updated_at' holding exactly those records"
        )

    @pytest.fixture
    def read_options(self) -> dict[str, Any]:
        return {}


def ordered(rows: Sequence[dict[str, Any]]) -> list[tuple[Any, Any]]:
    """``(updated_at, id)`` of each record, in the order given."""
    return [(row["updated_at"], row["id"]) for row in rows]
