"""discover(), read(), sample() and identifier handling against the real server."""

from __future__ import annotations

import datetime as dt
import uuid
from decimal import Decimal
from typing import Any

import pytest

from connector_core import (
    Catalog,
    Discoverable,
    FieldType,
    InvalidRequestError,
    NotFoundError,
    Readable,
    Writable,
)
from connector_postgres import PostgresConnector, ReadCheckpoint, quote_ident

pytestmark = pytest.mark.integration


async def test_connector_offers_the_capabilities(pg: PostgresConnector) -> None:
    assert isinstance(pg, Discoverable)
    assert isinstance(pg, Readable)
    assert isinstance(pg, Writable)


async def test_discover_lists_tables_and_views_with_types_and_keys(pg: PostgresConnector) -> None:
    await pg.execute("CREATE SCHEMA disc")
    await pg.execute("CREATE TYPE disc.color AS ENUM ('red', 'green')")
    await pg.execute("CREATE DOMAIN disc.positive AS int CHECK (VALUE > 0)")
    await pg.execute(
        """CREATE TABLE disc.owners (tenant int, id int, PRIMARY KEY (tenant, id));
        CREATE TABLE disc.things (
            id bigint PRIMARY KEY, name varchar(20) NOT NULL, price numeric(10, 2),
            ratio float8, active boolean, born date, at time, updated_at timestamptz,
            span interval, blob bytea, ref uuid, doc jsonb, tags text[], color disc.color,
            qty disc.positive, ip inet, tenant int, owner int,
            FOREIGN KEY (tenant, owner) REFERENCES disc.owners (tenant, id));
        CREATE VIEW disc.thing_names AS SELECT id, name FROM disc.things;
        INSERT INTO disc.things (id, name) SELECT g, 'n' FROM generate_series(1, 500) g;
        ANALYZE disc.things;"""
    )
    async with PostgresConnector(pg.config.model_copy(update={"schemas": ("disc",)})) as conn:
        catalog = await conn.discover()
    assert isinstance(catalog, Catalog)
    assert catalog.names == ("disc.owners", "disc.thing_names", "disc.things")
    things = catalog.stream("disc.things")
    types = {f.name: f.type for f in things.fields}
    assert types == {
        "id": FieldType.INTEGER,
        "name": FieldType.STRING,
        "price": FieldType.DECIMAL,
        "ratio": FieldType.NUMBER,
        "active": FieldType.BOOLEAN,
        "born": FieldType.DATE,
        "at": FieldType.TIME,
        "updated_at": FieldType.DATETIME,
        "span": FieldType.DURATION,
        "blob": FieldType.BINARY,
        "ref": FieldType.UUID,
        "doc": FieldType.JSON,
        "tags": FieldType.ARRAY,
        "color": FieldType.STRING,
        "qty": FieldType.INTEGER,
        "ip": FieldType.STRING,
        "tenant": FieldType.INTEGER,
        "owner": FieldType.INTEGER,
    }
    assert things.field("tags").item_type is FieldType.STRING
    assert things.field("name").native_type == "character varying(20)"
    assert not things.field("name").nullable
    assert things.field("price").nullable
    assert things.primary_key == ("id",)
    assert things.cursor_field == "updated_at"
    assert things.estimated_count == 500
    [fk] = things.foreign_keys
    assert (fk.fields, fk.references_stream, fk.references_fields) == (
        ("tenant", "owner"),
        "disc.owners",
        ("tenant", "id"),
    )
    assert catalog.stream("owners").primary_key == ("tenant", "id")
    view = catalog.stream("thing_names")
    assert view.kind == "view"
    assert view.estimated_count is None
    assert [f.name for f in view.fields] == ["id", "name"]


@pytest.fixture
async def events(pg: PostgresConnector) -> str:
    """600 events whose cursor takes only four values (150 rows share each)."""
    table = "events"
    await pg.execute(
        f"""CREATE TABLE IF NOT EXISTS {table} (
            id int PRIMARY KEY, updated_at timestamptz NOT NULL, payload text);
        TRUNCATE {table};"""
    )
    base = dt.datetime(2026, 1, 1, tzinfo=dt.UTC)
    await pg.copy_in(
        table,
        [(i, base + dt.timedelta(hours=(i * 7) % 4), f"p{i}") for i in range(600)],
    )
    return table


def _ids(records: list[Any]) -> list[int]:
    return [r["id"] for r in records]


async def test_read_pages_through_ties_without_skipping_or_repeating(
    pg: PostgresConnector, events: str
) -> None:
    records = [r async for r in pg.read(events, cursor_field="updated_at", batch_size=7)]
    assert sorted(_ids(records)) == list(range(600))
    keys = [(r["updated_at"], r["id"]) for r in records]
    assert keys == sorted(keys)
    assert all(isinstance(r, dict) for r in records)


async def test_checkpoints_carry_the_position_across_runs(
    pg: PostgresConnector, events: str
) -> None:
    seen: list[int] = []
    since: Any = None
    runs = 0
    while True:
        reader = pg.read(events, cursor_field="updated_at", since=since, limit=45, batch_size=10)
        batch = [r async for r in reader]
        runs += 1
        if not batch:
            break
        seen.extend(_ids(batch))
        since = reader.checkpoint
        assert isinstance(since, ReadCheckpoint)
        # Round-trip through plain data, as a state store would keep it.
        since = (since.cursor, since.key)
    assert sorted(seen) == list(range(600))
    assert len(seen) == len(set(seen))
    assert runs == 600 // 45 + 2
    # New rows at an already-read cursor value, with higher keys, are picked up next time.
    last = await pg.query_value(f"SELECT max(updated_at) FROM {events}")
    await pg.execute(f"INSERT INTO {events} VALUES (1000, $1, 'late')", last)
    late = [r async for r in pg.read(events, cursor_field="updated_at", since=since)]
    assert _ids(late) == [1000]


async def test_a_plain_since_value_reads_from_that_value_on(
    pg: PostgresConnector, events: str
) -> None:
    top = await pg.query_value(f"SELECT max(updated_at) FROM {events}")
    records = [r async for r in pg.read(events, cursor_field="updated_at", since=top)]
    assert len(records) == 150
    assert {r["updated_at"] for r in records} == {top}


async def test_read_without_cursor_goes_by_primary_key(pg: PostgresConnector, events: str) -> None:
    records = [r async for r in pg.read(events, limit=25, batch_size=10)]
    assert _ids(records) == list(range(25))


async def test_read_needs_a_key_or_a_known_field(pg: PostgresConnector, events: str) -> None:
    await pg.execute("CREATE TABLE IF NOT EXISTS keyless (n int NOT NULL, at timestamptz)")
    with pytest.raises(InvalidRequestError, match="key_fields"):
        await anext(pg.read("keyless", cursor_field="at"))
    with pytest.raises(NotFoundError, match="known fields"):
        await anext(pg.read(events, cursor_field="no_such_column"))
    with pytest.raises(InvalidRequestError):
        pg.read(events, since=5)
    await pg.execute("INSERT INTO keyless VALUES (1, now()), (2, now())")
    records = [r async for r in pg.read("keyless", cursor_field="at", key_fields=["n"])]
    assert _ids([{"id": r["n"]} for r in records]) == [1, 2]


async def test_the_primary_key_can_be_the_cursor(pg: PostgresConnector) -> None:
    await pg.execute("CREATE TABLE ids (id int PRIMARY KEY, v text)")
    await pg.execute("INSERT INTO ids SELECT g, 'v' || g FROM generate_series(1, 10) g")
    assert _ids([r async for r in pg.read("ids", cursor_field="id", since=2)]) == list(range(2, 11))
    reader = pg.read("ids", cursor_field="id", limit=4, batch_size=3)
    assert _ids([r async for r in reader]) == [1, 2, 3, 4]
    assert reader.checkpoint == ReadCheckpoint(cursor=4, key=())
    rest = pg.read("ids", cursor_field="id", since=reader.checkpoint, batch_size=3)
    assert _ids([r async for r in rest]) == list(range(5, 11))
    # Part of a composite key: the rest of the key breaks the ties.
    await pg.execute(
        "CREATE TABLE tenant_ids (tenant int, id int, PRIMARY KEY (tenant, id));"
        "INSERT INTO tenant_ids SELECT t, g FROM generate_series(1, 3) t, generate_series(1, 4) g"
    )
    seen = [
        (r["id"], r["tenant"])
        async for r in pg.read("tenant_ids", cursor_field="id", since=2, batch_size=2)
    ]
    assert seen == [(i, t) for i in range(2, 5) for t in range(1, 4)]


_CURSOR_KINDS = {
    "timestamptz": lambda i: (
        dt.datetime(2026, 1, 1, tzinfo=dt.UTC) + dt.timedelta(minutes=i // 3, microseconds=7)
    ),
    "numeric(12, 3)": lambda i: Decimal(i // 3) + Decimal("0.125"),
    "uuid": lambda i: uuid.UUID(int=i // 3 + 1),
    "int": lambda i: i // 3,
    "text": lambda i: f"k{i // 3:03d}",
}


@pytest.mark.parametrize("kind", list(_CURSOR_KINDS))
async def test_checkpoints_survive_a_trip_through_json(pg: PostgresConnector, kind: str) -> None:
    table = "cp_" + kind.split("(")[0]
    await pg.execute(f"CREATE TABLE {table} (id int PRIMARY KEY, c {kind} NOT NULL)")
    value_of = _CURSOR_KINDS[kind]
    assert await pg.copy_in(table, [(i, value_of(i)) for i in range(20)]) == 20
    seen: list[int] = []
    saved: str | None = None
    for _ in range(30):
        since = ReadCheckpoint.model_validate_json(saved) if saved is not None else None
        reader = pg.read(table, cursor_field="c", since=since, limit=4, batch_size=3)
        batch = [r async for r in reader]
        if not batch:
            break
        seen.extend(_ids(batch))
        assert reader.checkpoint is not None
        saved = reader.checkpoint.model_dump_json()  # as a state store would keep it
    assert seen == list(range(20))
    # A plain since value given as text (as from a config file) is cast the same way.
    text_since = str(value_of(9))
    assert _ids([r async for r in pg.read(table, cursor_field="c", since=text_since)]) == list(
        range(9, 20)
    )


async def test_nullable_key_fields_are_refused(pg: PostgresConnector, events: str) -> None:
    await pg.execute("CREATE TABLE nullable_key (n int, at timestamptz NOT NULL)")
    await pg.execute("INSERT INTO nullable_key VALUES (1, now()), (NULL, now())")
    with pytest.raises(InvalidRequestError, match=r"key_fields \['n'\].*nullable"):
        await anext(pg.read("nullable_key", cursor_field="at", key_fields=["n"]))
    # A view's columns are nullable as far as the catalog knows: allowed, and rows with
    # a NULL key are left out (never half-compared).
    await pg.execute(
        f"CREATE VIEW events_with_null_keys AS SELECT id, updated_at FROM {events} "
        "UNION ALL SELECT NULL::int, max(updated_at) FROM events"
    )
    records = [
        r
        async for r in pg.read(
            "events_with_null_keys", cursor_field="updated_at", key_fields=["id"], batch_size=50
        )
    ]
    assert sorted(_ids(records)) == list(range(600))


async def test_lag_leaves_out_rows_newer_than_now_minus_lag(pg: PostgresConnector) -> None:
    await pg.execute(
        "CREATE TABLE lagged (id int PRIMARY KEY, at timestamptz NOT NULL, local_at timestamp);"
        "INSERT INTO lagged VALUES"
        " (1, now() - interval '1 hour', localtimestamp - interval '1 hour'),"
        " (2, now() - interval '5 seconds', localtimestamp - interval '5 seconds'),"
        " (3, now() + interval '1 hour', localtimestamp + interval '1 hour')"
    )
    assert _ids([r async for r in pg.read("lagged", cursor_field="at")]) == [1, 2, 3]
    assert _ids([r async for r in pg.read("lagged", cursor_field="at", lag=0)]) == [1, 2]
    assert _ids([r async for r in pg.read("lagged", cursor_field="at", lag=60)]) == [1]
    later = pg.read("lagged", cursor_field="local_at", lag=dt.timedelta(minutes=1))
    assert _ids([r async for r in later]) == [1]
    with pytest.raises(InvalidRequestError, match="date or timestamp"):
        await anext(pg.read("lagged", cursor_field="id", lag=60))
    with pytest.raises(InvalidRequestError, match="lag"):
        pg.read("lagged", lag=60)
    with pytest.raises(InvalidRequestError, match="lag"):
        pg.read("lagged", cursor_field="at", lag=-1)


async def test_sample_returns_up_to_n_records(pg: PostgresConnector, events: str) -> None:
    sample = await pg.sample(events, 5)
    assert len(sample) == 5
    assert set(sample[0]) == {"id", "updated_at", "payload"}
    assert await pg.sample(events, 0) == []


INJECTIONS = [
    "users; DROP TABLE victim",
    'victim"; DROP TABLE victim; --',
    "victim' OR '1'='1",
    "public.victim; DROP TABLE victim",
    "victim--",
]


@pytest.mark.parametrize("name", INJECTIONS)
async def test_injection_in_a_stream_name_is_not_found_and_runs_nothing(
    pg: PostgresConnector, name: str
) -> None:
    await pg.execute("CREATE TABLE IF NOT EXISTS victim (id int PRIMARY KEY)")
    with pytest.raises(NotFoundError, match="not found"):
        await anext(pg.read(name))
    with pytest.raises(NotFoundError):
        await pg.sample(name)
    with pytest.raises(NotFoundError):
        await pg.write(name, [{"id": 1}])
    with pytest.raises(NotFoundError):
        await pg.copy_in(name, [(1,)])
    with pytest.raises(NotFoundError):
        await pg.read("victim", cursor_field=name).__anext__()
    with pytest.raises(NotFoundError):
        await pg.write("victim", [{name: 1}])
    assert await pg.query_value("SELECT to_regclass('public.victim') IS NOT NULL")


ODD = "it's \"odd\"\\n}, 'x': __import__('os')"


async def test_hostile_but_real_identifiers_are_quoted_correctly(pg: PostgresConnector) -> None:
    table = 'odd "name"; DROP TABLE victim'
    column = "select"
    await pg.execute("CREATE TABLE IF NOT EXISTS victim (id int PRIMARY KEY)")
    await pg.execute(
        f'CREATE TABLE "odd ""name""; DROP TABLE victim" (id int PRIMARY KEY, "{column}" text)'
    )
    assert (await pg.write(table, [{"id": 1, column: "a"}, {"id": 2, column: "b"}])).ok
    assert (await pg.write(table, [{"id": 1, column: "c"}])).ok
    assert [r[column] async for r in pg.read(table)] == ["c", "b"]
    assert await pg.copy_in(table, [(3, "d")]) == 1
    assert len(await pg.sample(table)) == 3
    stream = (await pg.discover()).stream(table)
    assert [f.name for f in stream.fields] == ["id", column]
    assert await pg.query_value("SELECT to_regclass('public.victim') IS NOT NULL")
    # Column names become string literals of the row-to-dict function: never code.
    await pg.execute(
        f'ALTER TABLE "odd ""name""; DROP TABLE victim" ADD COLUMN {quote_ident(ODD)} int'
    )
    pg.invalidate_catalog()
    for scan in ("cursor", "keyset"):
        rows = [r async for r in pg.read(table, scan=scan)]  # type: ignore[arg-type]
        assert [set(r) for r in rows] == [{"id", column, ODD}] * 3
