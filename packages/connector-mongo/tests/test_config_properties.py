"""Property tests of MongoConfig (fields, from_url, from_env): whatever the input, a
ConfigError or a config; never another exception, never a secret in a message, a repr, a
dump or a chained cause. Configs that validate connect to the real server, or fail with
a typed error. Runs are reproducible (``derandomize``) and bounded."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from typing import Any
from urllib.parse import quote

import pytest
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st
from mongo_support import make_config

from connector_core import ConfigError, ConnectorError, ErrorCode, secret_forms
from connector_mongo import MongoConfig, MongoConnector
from connector_testing.strategies import hostile_number, hostile_text, hostile_value

MARK = "Zq7S3cr3t"
SETTINGS = settings(
    max_examples=250,
    deadline=None,
    derandomize=True,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)

secret = st.builds(lambda tail: MARK + tail, hostile_text)
FIELDS: dict[str, st.SearchStrategy[Any]] = {
    "hosts": st.one_of(st.just("db:27017"), st.just("a:1,b:2"), hostile_text, hostile_value),
    "srv": st.one_of(st.booleans(), hostile_text),
    "database": st.one_of(st.just("shop"), hostile_text),
    "user": st.one_of(st.just("ann"), hostile_text, hostile_value),
    "password": st.one_of(secret, hostile_value),
    "auth_source": st.one_of(st.just("admin"), hostile_text),
    "auth_mechanism": st.one_of(
        st.sampled_from(["SCRAM-SHA-1", "SCRAM-SHA-256", "MONGODB-X509"]), hostile_text
    ),
    "replica_set": st.one_of(st.just("rs0"), hostile_text),
    "tls": st.one_of(st.booleans(), hostile_text),
    "tls_ca_file": st.one_of(hostile_text, hostile_value),
    "tls_certificate_key_file_password": secret,
    "tls_allow_invalid_hostnames": st.booleans(),
    "pool_min": hostile_number,
    "pool_max": hostile_number,
    "server_selection_timeout": hostile_number,
    "socket_timeout": hostile_number,
    "read_preference": st.one_of(st.sampled_from(["primary", "nearest"]), hostile_text),
    "read_concern": st.one_of(st.sampled_from(["local", "majority"]), hostile_text),
    "w": st.one_of(st.sampled_from([0, 1, "majority", -1, 99]), hostile_value),
    "journal": st.one_of(st.booleans(), hostile_value),
    "wtimeout": hostile_number,
    "app_name": st.one_of(st.just("svc"), hostile_text),
    "compressors": st.one_of(st.sampled_from(["zlib", "zstd", "lz4"]), hostile_text),
    "batch_size": hostile_number,
    "id_field": st.one_of(st.just("id"), hostile_text),
    "timeout": hostile_number,
    "retry": st.one_of(
        st.dictionaries(st.sampled_from(["max_attempts"]), hostile_number), hostile_value
    ),
}


@st.composite
def _some_fields(draw: st.DrawFn) -> dict[str, Any]:
    names = draw(st.lists(st.sampled_from(sorted(FIELDS)), max_size=4, unique=True))
    return {name: draw(FIELDS[name]) for name in names}


def _forms(value: str) -> list[str]:
    forms = [value, repr(value)[1:-1]]
    try:
        forms += secret_forms(value)
        forms.append(repr(value.encode())[2:-1])
    except UnicodeEncodeError:  # a lone surrogate: no encoded form exists to leak
        pass
    return [f for f in forms if MARK in f or len(f) >= len(MARK) + 4]


def _secrets_in(value: Any) -> Iterator[str]:
    if isinstance(value, str) and MARK in value:
        yield value
    elif isinstance(value, dict):
        for item in value.values():
            yield from _secrets_in(item)
    elif isinstance(value, list | tuple):
        for item in value:
            yield from _secrets_in(item)


def _chain(error: BaseException) -> Iterator[BaseException]:
    seen: set[int] = set()
    stack: list[BaseException | None] = [error]
    while stack:
        current = stack.pop()
        if current is None or id(current) in seen:
            continue
        seen.add(id(current))
        yield current
        stack += [current.__cause__, current.__context__]


def _error_texts(error: BaseException) -> list[str]:
    texts: list[str] = []
    for link in _chain(error):
        texts += [str(link), repr(link), repr(link.args)]
        if isinstance(link, ConfigError):
            texts += [f"{e.field} {e.message}" for e in link.errors]
    return texts


def _config_texts(config: MongoConfig) -> list[str]:
    return [
        repr(config),
        str(config),
        str(config.model_dump()),
        config.model_dump_json(),
        config.connection_string(),
        repr(MongoConnector(config)),
    ]


def _assert_no_leak(secrets: list[str], texts: list[str]) -> None:
    for value in secrets:
        for form in _forms(value):
            for text in texts:
                assert form not in text, (form[:60], text[:300])


@SETTINGS
@given(fields=_some_fields())
def test_any_fields_give_a_config_error_or_a_config_that_keeps_its_secrets(
    fields: dict[str, Any],
) -> None:
    secrets = list(_secrets_in(fields))
    error: ConfigError | None = None
    try:
        config = MongoConfig.model_validate(fields)
    except ConfigError as exc:
        error = exc
    if error is not None:
        event("ConfigError")
        assert error.__context__ is None  # nothing chained that holds the input
        assert error.__cause__ is None
        _assert_no_leak(secrets, _error_texts(error))
        return
    event("a config")
    _assert_no_leak(secrets, _config_texts(config))


def _quote(value: str) -> str:
    return quote(value, safe="", errors="surrogatepass")


QUERY_KEYS = st.one_of(
    st.sampled_from(sorted(FIELDS)),
    st.sampled_from(["authSource", "replicaSet", "w", "serverSelectionTimeoutMS", "tls"]),
    hostile_text,
)


@st.composite
def _url(draw: st.DrawFn) -> tuple[Any, list[str]]:
    secrets: list[str] = []
    userinfo = ""
    if draw(st.booleans()):
        password = draw(secret)
        secrets.append(password)
        userinfo = f"{_quote(draw(hostile_text))}:{_quote(password)}@"
    hosts = draw(st.one_of(st.just("h1:27017,h2"), st.just("[::1]:27017"), hostile_text))
    pairs = []
    for _ in range(draw(st.integers(0, 3))):
        key, value = draw(QUERY_KEYS), draw(st.one_of(hostile_text, secret))
        if MARK in value:
            secrets.append(value)
        pairs.append(f"{_quote(key)}={_quote(value)}")
    scheme = draw(st.one_of(st.sampled_from(["mongodb", "mongodb+srv"]), hostile_text))
    path = draw(st.one_of(st.just(""), st.just("/shop"), hostile_text))
    url = f"{scheme}://{userinfo}{hosts}{path}?{'&'.join(pairs)}"
    return draw(st.one_of(st.just(url), hostile_value)), secrets


ENV = st.dictionaries(
    st.sampled_from(["M_HOSTS", "M_W", "M_RETRY", "M_RETRY__MAX_ATTEMPTS", "M_POOL_MAX", "M_URL"]),
    st.one_of(hostile_text, st.just('{"max_attempts": 3}'), st.just("mongodb://h:1/db")),
    max_size=3,
)


@SETTINGS
@given(url=_url(), env=ENV, password=st.one_of(st.none(), secret))
def test_from_url_and_from_env_give_a_config_error_or_a_config(
    url: tuple[Any, list[str]], env: dict[str, str], password: str | None
) -> None:
    value, secrets = url
    if password is not None:
        env = {**env, "M_PASSWORD": password, "M_USER": "ann"}
        secrets = [*secrets, password]
    builds = [lambda: MongoConfig.from_url(value), lambda: MongoConfig.from_env("M_", env)]
    for build in builds:
        try:
            config = build()
        except ConfigError as exc:
            event("ConfigError")
            _assert_no_leak(secrets, _error_texts(exc))
            continue
        event("a config")
        _assert_no_leak(secrets, _config_texts(config))


CONNECTABLE: dict[str, st.SearchStrategy[Any]] = {
    "app_name": st.one_of(st.just("svc"), hostile_text),
    "pool_min": st.sampled_from([0, 1, 3]),
    "pool_max": st.sampled_from([3, 10, 100]),
    "read_preference": st.sampled_from(["primary", "primaryPreferred", "nearest"]),
    "w": st.sampled_from([0, 1, "majority"]),
    "compressors": st.sampled_from(["", "zlib"]),
    "socket_timeout": st.sampled_from([None, 5.0]),
    "batch_size": st.sampled_from([1, 100, 10_000]),
    "retry_writes": st.booleans(),
}


@pytest.mark.integration
@settings(max_examples=25, deadline=None, derandomize=True)
@given(fields=st.fixed_dictionaries({}, optional=CONNECTABLE))
def test_configs_that_validate_connect_or_fail_typed(
    mongo_url: str, fields: dict[str, Any]
) -> None:
    try:
        config = make_config(mongo_url, **fields, retry={"max_attempts": 1})
    except ConfigError:
        event("ConfigError")
        return

    async def use() -> ConnectorError | None:
        try:
            async with MongoConnector(config) as connector:
                await connector.find_one("property_probe", {"_id": 1})
        except ConnectorError as exc:
            return exc
        return None

    failure = asyncio.run(use())
    event(f"connect and find_one: {failure.code.value if failure else 'ok'}")
    if failure is not None:  # typed: an untranslated driver error would be "unknown"
        assert failure.code is not ErrorCode.UNKNOWN, repr(failure)
