"""PostgresDataConfig, the mapping and its coercions, and the xmin window: unit tests,
no database."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from typing import Any

import pytest

from connector_adapters import load_adapters
from connector_adapters.postgres_data import (
    ManagedPostgresData,
    MockPostgresData,
    PostgresDataConfig,
    coerce,
)
from connector_adapters.postgres_data._client import xmin_position
from connector_adapters.postgres_data._managed import xmin_query
from connector_adapters.postgres_data._mapping import table_map
from connector_core import (
    Checkpoint,
    ConfigError,
    FieldType,
    InvalidRequestError,
    SerializationError,
    Stream,
    StreamField,
)
from connector_testing import shown_texts

SECRET = "s3cr3t-pw"
URL = f"postgresql://app:{SECRET}@db.example:5432/sales"


def test_every_bad_field_is_named_without_its_value() -> None:
    with pytest.raises(ConfigError) as info:
        PostgresDataConfig(
            postgres={"host": "h", "password": SECRET, "port": 0},
            include=[""],
            incremental="ctid",
            batch_size=0,
            tables={"t": {"columns": {"a": {"coerce": "uuid"}}, "unmapped": "hide"}},
        )
    assert set(info.value.fields) == {
        "postgres.port", "include", "incremental", "batch_size",
        "tables.t.columns.a.coerce", "tables.t.unmapped",
    }  # fmt: skip
    assert SECRET not in str(info.value)


def test_cross_field_mistakes_are_named() -> None:
    with pytest.raises(ConfigError) as info:
        PostgresDataConfig(
            mode="managed",
            include=["orders*"],
            exclude=["orders_old"],
            tables={
                "orders_old": {},
                "orders": {"columns": {"a": "x", "b": {"field": "x"}}},
            },
        )
    assert set(info.value.fields) == {"postgres", "tables.orders_old", "tables.orders.columns.b"}


def test_the_url_is_the_database_and_selects_the_managed_client() -> None:
    config = PostgresDataConfig.from_url(URL + "?timeout=5")
    assert config.is_managed
    assert config.postgres is not None
    assert (config.postgres.host, config.postgres.timeout) == ("db.example", 5.0)
    assert isinstance(load_adapters({"postgres_data": config}).postgres_data, ManagedPostgresData)
    for shown in shown_texts(config, config.connection_string()):
        assert SECRET not in shown
    assert SECRET in config.connection_string(reveal=True)
    assert not PostgresDataConfig().is_managed
    assert not PostgresDataConfig(postgres=URL, mode="mock").is_managed
    with pytest.raises(ConfigError) as info:
        PostgresDataConfig(postgres="postgresql://h:99999/db")
    assert info.value.fields == ("postgres",)


def test_load_adapters_reads_the_environment() -> None:
    env = {
        "POSTGRES_DATA_URL": URL,
        "POSTGRES_DATA_INCLUDE": "orders, customers",
        "POSTGRES_DATA_INCREMENTAL": "xmin",
        "POSTGRES_DATA_TABLES": '{"orders": {"entity_type": "order"}}',
    }
    adapters = load_adapters(environ=env)
    config = adapters.postgres_data_config
    assert config.include == ("orders", "customers")
    assert config.tables["orders"].entity_type == "order"
    assert adapters.modes() == {"postgres_data": "managed"}
    mock = load_adapters({"postgres_data": {}}).postgres_data
    assert isinstance(mock, MockPostgresData)


def test_patterns_match_the_bare_and_the_qualified_name() -> None:
    config = PostgresDataConfig(include=["sales.*", "audit_?"], exclude=["*_tmp"])
    assert config.exposes("orders", "sales")
    assert config.exposes("audit_1", "public")
    assert not config.exposes("orders", "public")
    assert not config.exposes("orders_tmp", "sales")


def test_per_table_settings_override_the_defaults() -> None:
    config = PostgresDataConfig(
        soft_delete_column="deleted_at",
        tables={
            "a": {"incremental": "xmin"},
            "b": {"cursor_column": "modified", "soft_delete_column": None},
        },
    )
    assert (config.cursor_column_of("a"), config.soft_delete_column_of("a")) == (None, "deleted_at")
    assert (config.cursor_column_of("b"), config.soft_delete_column_of("b")) == ("modified", None)
    assert config.cursor_column_of("c") == "updated_at"


@pytest.mark.parametrize(
    ("value", "kind", "expected"),
    [
        ("42", "int", 42),
        (Decimal("3"), "int", 3),
        (2.0, "int", 2),
        (3, "float", 3.0),
        (0.1, "decimal", Decimal("0.1")),
        ("1.25", "decimal", Decimal("1.25")),
        (7, "str", "7"),
        (dt.date(2026, 1, 2), "str", "2026-01-02"),
        ({"b": 1, "a": 2}, "str", '{"a": 2, "b": 1}'),
        ("Yes", "bool", True),
        (0, "bool", False),
        ("2026-01-02T03:04:05Z", "datetime", dt.datetime(2026, 1, 2, 3, 4, 5, tzinfo=dt.UTC)),
        (dt.datetime(2026, 1, 2), "datetime", dt.datetime(2026, 1, 2, tzinfo=dt.UTC)),
        (0, "datetime", dt.datetime(1970, 1, 1, tzinfo=dt.UTC)),
        (dt.datetime(2026, 1, 2, 23, 0), "date", dt.date(2026, 1, 2)),
        ('{"a": [1, 2]}', "json", {"a": [1, 2]}),
        (None, "int", None),
    ],
)
def test_coercions(value: Any, kind: Any, expected: Any) -> None:
    assert coerce(value, kind) == expected


@pytest.mark.parametrize(
    ("value", "kind"),
    [("seven", "int"), (2.5, "int"), (True, "decimal"), ("maybe", "bool"), (2, "bool"),
     ("x", "decimal"), ("not json", "json"), (b"x", "datetime"), ("2026-13-01", "date")],
)  # fmt: skip
def test_a_value_that_cannot_be_coerced_is_a_serialization_error(value: Any, kind: Any) -> None:
    with pytest.raises(SerializationError, match=f"cannot be coerced to {kind}"):
        coerce(value, kind)


def _stream(*names: str, key: tuple[str, ...] = ("id",), kind: str = "table") -> Stream:
    return Stream(
        name="t",
        namespace="public",
        fields=tuple(StreamField(name=n, type=FieldType.STRING, native_type="text") for n in names),
        primary_key=key,
        kind=kind,
    )


def test_a_dropped_key_or_soft_delete_column_is_a_problem() -> None:
    config = PostgresDataConfig(
        soft_delete_column="gone",
        tables={"t": {"unmapped": "drop", "columns": {"updated_at": "changed"}}},
    )
    tmap = table_map(config, _stream("id", "updated_at", "gone"))
    assert [field for field, _ in tmap.problems] == ["tables.t.columns", "tables.t.columns"]
    with pytest.raises(ConfigError, match="key column 'id' must not be dropped"):
        tmap.check()


def test_a_table_without_a_key_or_a_view_in_xmin_mode_is_a_problem() -> None:
    config = PostgresDataConfig(incremental="xmin")
    tmap = table_map(config, _stream("a", key=(), kind="view"))
    assert [field for field, _ in tmap.problems] == ["tables.t.key", "tables.t.incremental"]
    keyed = PostgresDataConfig(incremental="xmin", tables={"t": {"key": "a"}})
    assert table_map(keyed, _stream("a", key=())).problems == ()


def test_a_composite_key_is_a_json_list_as_entity_id() -> None:
    config = PostgresDataConfig(tables={"t": {"key": ["a", "id"]}})
    tmap = table_map(config, _stream("a", "id", "updated_at"))
    assert tmap.entity_id({"a": "x", "id": "1"}) == '["x", "1"]'


def test_xmin_positions() -> None:
    assert xmin_position(None) == (None, None, None)
    assert xmin_position(Checkpoint(cursor={"xmin": 10})) == (10, None, None)
    assert xmin_position(Checkpoint(cursor={"xmin": 10, "next": 12}, key=(5,))) == (10, 12, (5,))
    assert xmin_position("77") == (77, None, None)
    for bad in (Checkpoint(cursor="2026-01-01"), Checkpoint(cursor={"xmin": -1}), 1.5, True):
        with pytest.raises(InvalidRequestError):
            xmin_position(bad)


def test_the_xmin_query_binds_the_window_and_the_key() -> None:
    tmap = table_map(PostgresDataConfig(incremental="xmin"), _stream("id", "name"))
    sql, args = xmin_query(tmap, (5, 100), ("k",))
    assert sql == (
        'SELECT "id", "name" FROM "public"."t" WHERE ((xmin::text::bigint - $1) % 4294967296 '
        '+ 4294967296) % 4294967296 < $2 AND ("id") > ($3::text::text) ORDER BY "id"'
    )
    assert args == [5, 100, "k"]
    assert xmin_query(tmap, None, None)[0] == 'SELECT "id", "name" FROM "public"."t" ORDER BY "id"'


async def test_the_xmin_window_survives_the_32_bit_wraparound() -> None:
    # The mock numbers transactions like PostgreSQL (64-bit; a row shows the low 32 bits).
    mock = MockPostgresData(PostgresDataConfig(incremental="xmin"), first_xid=2**32 - 2)
    mock.create_table("t", {"id": FieldType.INTEGER, "n": FieldType.INTEGER})
    mock.upsert("t", [{"id": i, "n": 0} for i in range(1, 4)])  # xid 2**32 - 2
    async with mock:
        first = mock.read("t")
        assert len([r async for r in first]) == 3
        mock.upsert("t", [{"id": 2, "n": 1}])  # xid 2**32 - 1
        mock.upsert("t", [{"id": 3, "n": 2}])  # xid 2**32: shows as 0
        after = mock.read("t", since=first.checkpoint)
        assert [r async for r in after] == [{"id": 2, "n": 1}, {"id": 3, "n": 2}]
        assert [r async for r in mock.read("t", since=after.checkpoint)] == []
