"""PostgresConfig, statement classification and result parsing: no server needed."""

from __future__ import annotations

import ssl
from pathlib import Path
from urllib.parse import parse_qsl, urlsplit

import pytest

from connector_core import ConfigError, InvalidRequestError, from_url
from connector_postgres import (
    ExecuteResult,
    PostgresConfig,
    PostgresConnector,
    SslMode,
    is_read_only,
    quote_ident,
)
from connector_testing import exception_texts

SECRET = "s3cr3t-p@ss/word"
URL = (
    "postgresql://app:s3cr3t-p%40ss%2Fword@db.example:6543/sales"
    "?sslmode=require&application_name=etl&schemas=sales,public&pool_max=20"
    "&command_timeout=5&statement_timeout=2.5&search_path=sales,public&connect_timeout=3"
)


def test_from_url_reads_every_part() -> None:
    config = PostgresConfig.from_url(URL)
    assert (config.host, config.port, config.user, config.database) == (
        "db.example",
        6543,
        "app",
        "sales",
    )
    assert config.password is not None
    assert config.password.get_secret_value() == SECRET
    assert config.sslmode is SslMode.REQUIRE
    assert config.application_name == "etl"
    assert config.schemas == ("sales", "public")
    assert config.search_path == ("sales", "public")
    assert config.pool_max == 20
    assert config.command_timeout == 5
    assert config.connect_timeout == 3


def test_postgres_scheme_is_accepted_and_others_are_not() -> None:
    assert PostgresConfig.from_url("postgres://u@h/db").host == "h"
    with pytest.raises(ConfigError) as caught:
        PostgresConfig.from_url("mysql://u:pw@h/db")
    assert "url" in caught.value.fields


def test_registry_builds_the_connector_from_a_url() -> None:
    connector = from_url("postgres://u:pw@h:5432/db")
    assert isinstance(connector, PostgresConnector)


def test_connection_string_masks_the_password() -> None:
    config = PostgresConfig.from_url(URL)
    masked = config.connection_string()
    assert SECRET not in masked
    assert "s3cr3t" not in masked
    assert masked == "postgresql://app:***@db.example:6543/sales"
    assert PostgresConfig.from_url(config.connection_string(reveal=True)).password == (
        config.password
    )


def test_secrets_stay_out_of_repr_dump_and_connector_repr() -> None:
    config = PostgresConfig.from_url(URL, sslpassword="key-pass-123")
    texts = [repr(config), str(config), str(config.model_dump()), config.model_dump_json()]
    texts.append(repr(PostgresConnector(config)))
    for text in texts:
        assert "s3cr3t" not in text
        assert "key-pass-123" not in text
    assert set(config.secret_values()) == {SECRET, "key-pass-123"}


def test_bad_fields_are_all_named_without_echoing_values() -> None:
    with pytest.raises(ConfigError) as caught:
        PostgresConfig(
            port=0,
            pool_min=5,
            pool_max=2,
            sslmode="sometimes",  # type: ignore[arg-type]
            statement_timeout=-1,
            application_name="x" * 64,
            password="do-not-echo-me",  # type: ignore[arg-type]
            max_queries="lots",  # type: ignore[arg-type]
        )
    assert set(caught.value.fields) >= {
        "port",
        "pool_max",
        "sslmode",
        "statement_timeout",
        "application_name",
        "max_queries",
    }
    assert "do-not-echo-me" not in str(caught.value)


def test_unknown_url_parameter_is_rejected_by_name() -> None:
    with pytest.raises(ConfigError) as caught:
        PostgresConfig.from_url("postgresql://u@h/db?sslmod=require")
    assert "sslmod" in caught.value.fields


def test_cert_and_key_go_together(client_cert: tuple[Path, Path]) -> None:
    cert, _ = client_cert
    with pytest.raises(ConfigError) as caught:
        PostgresConfig(sslcert=cert)
    assert "sslkey" in caught.value.fields


def test_missing_ssl_files_are_named_at_validation(tmp_path: Path) -> None:
    missing = tmp_path / "nope.pem"
    for field in ("sslrootcert", "sslcert", "sslkey"):
        with pytest.raises(ConfigError) as caught:
            PostgresConfig(**{field: missing})  # type: ignore[arg-type]
        assert field in caught.value.fields
        assert "not found" in str(caught.value)
    with pytest.raises(ConfigError) as both:
        PostgresConfig.from_url(f"postgresql://h/db?sslcert={missing}&sslkey={missing}")
    assert set(both.value.fields) >= {"sslcert"}


def test_unusable_ssl_files_are_named_at_validation(
    tmp_path: Path, client_cert: tuple[Path, Path]
) -> None:
    cert, key = client_cert
    garbage = tmp_path / "garbage.pem"
    garbage.write_text("not a certificate")
    with pytest.raises(ConfigError) as root:
        PostgresConfig(sslrootcert=garbage, sslmode="verify-ca")  # type: ignore[arg-type]
    assert root.value.fields == ("sslrootcert",)
    with pytest.raises(ConfigError) as pair:
        PostgresConfig(sslcert=cert, sslkey=garbage)
    assert pair.value.fields == ("sslkey",)
    assert PostgresConfig(sslcert=cert, sslkey=key, sslrootcert=cert).sslkey == key


def test_prefer_carries_the_client_certificate_to_the_driver(
    client_cert: tuple[Path, Path],
) -> None:
    cert, key = client_cert
    config = PostgresConfig(sslcert=cert, sslkey=key, sslpassword="key-secret-5d1")
    assert config.ssl_argument() == "prefer"  # keeps the plain-text fallback
    dsn = config.driver_dsn()
    assert dsn is not None
    query = dict(parse_qsl(urlsplit(dsn).query))
    assert query == {"sslcert": str(cert), "sslkey": str(key), "sslpassword": "key-secret-5d1"}
    assert "key-secret-5d1" not in repr(config)
    assert PostgresConfig().driver_dsn() is None
    required = PostgresConfig(sslmode="require", sslcert=cert, sslkey=key)  # type: ignore[arg-type]
    assert required.driver_dsn() is None  # the SSLContext carries them
    assert isinstance(required.ssl_argument(), ssl.SSLContext)


def test_a_bad_url_port_names_port() -> None:
    for url in ("postgresql://u@h:99999/db", "postgresql://u@h:abc/db"):
        with pytest.raises(ConfigError) as caught:
            PostgresConfig.from_url(url)
        assert caught.value.fields == ("port",)


def test_from_env_reads_url_and_fields() -> None:
    config = PostgresConfig.from_env(
        "PG_",
        {"PG_URL": "postgresql://u:pw@h:1/db", "PG_POOL_MAX": "3", "PG_SCHEMAS": "a,b"},
    )
    assert (config.port, config.pool_max, config.schemas) == (1, 3, ("a", "b"))


def test_server_settings_carry_search_path_statement_timeout_and_extras() -> None:
    config = PostgresConfig(
        search_path=("Sales", "public"),
        statement_timeout=2.5,
        application_name="etl",
        server_settings={"timezone": "UTC"},
    )
    assert config.all_server_settings() == {
        "application_name": "etl",
        "search_path": '"Sales", "public"',
        "statement_timeout": "2500",
        "timezone": "UTC",
    }


def test_ssl_modes_map_to_driver_arguments() -> None:
    assert PostgresConfig(sslmode="disable").ssl_argument() is False  # type: ignore[arg-type]
    assert PostgresConfig().ssl_argument() == "prefer"
    require = PostgresConfig(sslmode="require").ssl_argument()  # type: ignore[arg-type]
    assert isinstance(require, ssl.SSLContext)
    assert require.verify_mode == ssl.CERT_NONE
    assert not require.check_hostname
    full = PostgresConfig(sslmode="verify-full").ssl_argument()  # type: ignore[arg-type]
    assert isinstance(full, ssl.SSLContext)
    assert full.verify_mode == ssl.CERT_REQUIRED
    assert full.check_hostname
    ca = PostgresConfig(sslmode="verify-ca").ssl_argument()  # type: ignore[arg-type]
    assert isinstance(ca, ssl.SSLContext)
    assert ca.verify_mode == ssl.CERT_REQUIRED
    assert not ca.check_hostname


@pytest.mark.parametrize(
    "sql",
    [
        "SELECT 1",
        "  select * from t where id = $1",
        "WITH x AS (SELECT 1) SELECT * FROM x",
        "-- comment\nSELECT 2",
        "/* c */ VALUES (1)",
        "SHOW search_path",
        "TABLE users",
    ],
)
def test_reads_are_recognised(sql: str) -> None:
    assert is_read_only(sql)


@pytest.mark.parametrize(
    "sql",
    [
        "INSERT INTO t VALUES (1)",
        "UPDATE t SET a = 1",
        "WITH d AS (DELETE FROM t RETURNING *) SELECT * FROM d",
        "SELECT nextval('s')",
        "SELECT * FROM t FOR UPDATE",
        "SELECT * INTO new_table FROM t",
        "SELECT pg_advisory_lock(1)",
        "CREATE TABLE t (a int)",
    ],
)
def test_statements_that_may_write_are_not_reads(sql: str) -> None:
    assert not is_read_only(sql)


@pytest.mark.parametrize(
    ("status", "rowcount"),
    [
        ("INSERT 0 3", 3),
        ("UPDATE 2", 2),
        ("DELETE 0", 0),
        ("SELECT 7", 7),
        ("COPY 10", 10),
        ("CREATE TABLE", None),
        ("BEGIN", None),
    ],
)
def test_execute_result_parses_the_command_tag(status: str, rowcount: int | None) -> None:
    assert ExecuteResult.from_status(status) == ExecuteResult(status, rowcount)


def test_quote_ident_doubles_quotes_and_rejects_unrepresentable_names() -> None:
    assert quote_ident('users; DROP TABLE "x"') == '"users; DROP TABLE ""x"""'
    with pytest.raises(InvalidRequestError):
        quote_ident("")
    with pytest.raises(InvalidRequestError):
        quote_ident("a\x00b")


# -- what the server or the driver would refuse only at connect -----------------------

MARK = "Zq9"  # in every bad value below, and in no message of its own


@pytest.mark.parametrize(
    ("fields", "bad"),
    [
        ({"sslrootcert": MARK + "x" * 5000}, {"sslrootcert"}),  # OSError, path echoed
        ({"sslcert": MARK * 2000, "sslkey": MARK * 2000}, {"sslcert", "sslkey"}),
        ({"statement_timeout": 1e300}, {"statement_timeout"}),
        ({"statement_timeout": 2_147_483.648}, {"statement_timeout"}),  # INT_MAX ms + 1
        ({"statement_timeout": 604_800.001}, {"statement_timeout"}),  # a week and a ms
        ({"statement_timeout": float("inf")}, {"statement_timeout"}),
        ({"command_timeout": 1e300}, {"command_timeout"}),
        ({"bulk_timeout": 1e300}, {"bulk_timeout"}),
        ({"catalog_cache_ttl": 1e300}, {"catalog_cache_ttl"}),
        ({"max_inactive_connection_lifetime": 1e300}, {"max_inactive_connection_lifetime"}),
        ({"host": f"db\x00{MARK}"}, {"host"}),
        ({"host": MARK * 30}, {"host"}),  # a label longer than 63: no resolver takes it
        ({"host": f"{MARK} db"}, {"host"}),
        ({"host": "/" + MARK * 40}, {"host"}),  # a socket path longer than sun_path
        ({"user": f"{MARK}\x00"}, {"user"}),  # the server said "protocol violation"
        ({"user": MARK + "u" * 61}, {"user"}),  # 64 bytes: the server would cut it
        ({"database": f"{MARK}\x00"}, {"database"}),
        ({"database": MARK + "é" * 31}, {"database"}),
        ({"application_name": f"{MARK}\x00"}, {"application_name"}),
        ({"password": f"{MARK}\x00secret"}, {"password"}),
        ({"sslpassword": f"{MARK}\x00"}, {"sslpassword"}),
        ({"schemas": [MARK + "s" * 61]}, {"schemas"}),
        ({"search_path": [f"{MARK}\x00"]}, {"search_path"}),
        ({"pool_max": 10**12}, {"pool_max"}),  # asyncpg would build 10**12 pool slots
        ({"pool_min": 300_000, "pool_max": 300_000}, {"pool_min", "pool_max"}),
        ({"batch_size": 2**31}, {"batch_size"}),  # the protocol's fetch count is int32
        ({"server_settings": {f"{MARK} name": "1"}}, {"server_settings"}),
        ({"server_settings": {"x.y": f"{MARK}\x00"}}, {"server_settings"}),
        ({"server_settings": {"user": MARK}}, {"server_settings"}),  # another role
        ({"server_settings": {"replication": MARK}}, {"server_settings"}),
        ({"server_settings": {"Statement_Timeout": MARK}}, {"server_settings"}),
        ({"server_settings": {"x.y": MARK * 4000}}, {"server_settings"}),  # > 10,000 bytes
        ({"search_path": [MARK + "s" * 57] * 200}, {"search_path"}),
        (
            {"port": True, "pool_max": True, "command_timeout": True},
            {"port", "pool_max", "command_timeout"},
        ),
    ],
    ids=lambda value: "-".join(value) if isinstance(value, dict) else "",
)
def test_what_the_server_would_refuse_is_a_config_error_at_construction(
    fields: dict[str, object], bad: set[str]
) -> None:
    with pytest.raises(ConfigError) as caught:
        PostgresConfig(**fields)  # type: ignore[arg-type]
    error = caught.value
    assert bad <= set(error.fields), error
    texts = exception_texts(error)
    assert not [t for t in texts if MARK in t], "a value was echoed"
    assert error.__cause__ is None
    assert error.__context__ is None


@pytest.mark.parametrize(
    ("url", "bad"),
    [
        ("postgresql://us%00er:pw@db.example/sales", "user"),
        ("postgresql://app:pw@db.example/sa%00les", "database"),
        ("postgresql://app:p%00w@db.example/sales", "password"),
        (f"postgresql://app@db.example/sales?sslrootcert={'x' * 5000}", "sslrootcert"),
        ("postgresql://app@db.example/sales?statement_timeout=1e300", "statement_timeout"),
        ("postgresql://app@db.example/sales?statement_timeout=inf", "statement_timeout"),
        (
            "postgresql://app@db.example/sales?server_settings=%7B%22user%22%3A%22x%22%7D",
            "server_settings",
        ),
    ],
)
def test_the_same_from_a_url(url: str, bad: str) -> None:
    with pytest.raises(ConfigError) as caught:
        PostgresConfig.from_url(url)
    assert bad in caught.value.fields
    assert "x" * 50 not in "".join(exception_texts(caught.value))


def test_the_startup_packet_is_counted_as_asyncpg_sends_it() -> None:
    config = PostgresConfig(user="app", database="sales", application_name="etl")
    # protocol version, client_encoding/'utf-8', user/app, database/sales,
    # application_name/etl, final NUL
    assert config.startup_packet_size() == 4 + 24 + 9 + 15 + 21 + 1
