"""PostgresStateStore against a real PostgreSQL."""

from __future__ import annotations

import pytest

from connector_adapters import StateStore
from connector_adapters.postgres_state import PostgresStateStore
from connector_core import ConnectorError, SerializationError
from connector_postgres import PostgresConnector
from connector_testing import unique_name

pytestmark = pytest.mark.integration


async def test_round_trip_and_namespaces(pg: PostgresConnector) -> None:
    table = unique_name("state")
    store = PostgresStateStore(pg, table=table, namespace="a")
    other = PostgresStateStore(pg, table=table, namespace="b")
    assert isinstance(store, StateStore)
    assert await store.get("cp") is None  # creates the table on first use
    await store.put("cp", {"page": 3, "nested": {"ok": True}})
    await store.put_many({"fp:1": {"fp": "x"}, "fp:2": {"fp": "y"}, "cp": {"page": 4}})
    assert await store.get("cp") == {"page": 4}
    assert await store.get_many(["fp:1", "fp:2", "fp:3"]) == {
        "fp:1": {"fp": "x"},
        "fp:2": {"fp": "y"},
    }
    assert await store.get_many([]) == {}
    assert await other.get("cp") is None
    await store.delete("fp:1")
    assert await store.get("fp:1") is None
    rows = await pg.query_value(f'SELECT count(*) FROM "{table}"')
    assert rows == 2
    assert "namespace='a'" in repr(store)


async def test_put_many_is_all_or_nothing(pg: PostgresConnector) -> None:
    store = PostgresStateStore(pg, table=unique_name("state"))
    await store.setup()
    with pytest.raises(SerializationError):
        await store.put_many({"good": {"a": 1}, "bad": {"b": object()}})
    assert await store.get("good") is None
    # A failure inside the transaction rolls every entry back.
    await pg.execute(f'ALTER TABLE "{store.table}" ADD CONSTRAINT small CHECK (length(key) < 10)')
    with pytest.raises(ConnectorError, match="small"):
        await store.put_many({"short": {"a": 1}, "much-too-long-key": {"b": 2}})
    assert await store.get("short") is None


@pytest.mark.parametrize(
    ("value", "match"),
    [
        ('{"a": ' + "[" * 5000 + "]" * 5000 + "}", "nested too deeply to decode"),
        ("[1, 2]", "does not hold a JSON object"),
        ('{"a": ' + "[" * 80 + "]" * 80 + "}", "nests more than 64 levels"),
    ],
    ids=["5000-levels", "array", "80-levels"],
)
async def test_a_row_this_store_did_not_write_is_a_serialization_error(
    pg: PostgresConnector, value: str, match: str
) -> None:
    store = PostgresStateStore(pg, table=unique_name("state"), namespace="n")
    await store.setup()
    # PostgreSQL's jsonb takes 5,000 levels; Python's json decoder does not.
    await pg.execute(
        f'INSERT INTO "{store.table}" (namespace, key, value) VALUES ($1, $2, $3::text::jsonb)',
        "n", "cp", value,
    )  # fmt: skip
    for read in (store.get("cp"), store.get_many(["cp"])):
        with pytest.raises(SerializationError, match=match) as info:
            await read
        assert "'cp'" in str(info.value)
        assert info.value.__context__ is None
