"""Property tests of KafkaConfig (fields, from_url, from_env): whatever the input, a
ConfigError or a config; never another exception, never a secret in a message, a repr, a
dump or a chained cause. Configs that validate connect to the real broker, or fail with a
typed error. Runs are reproducible (``derandomize``) and bounded."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Iterator
from typing import Any
from urllib.parse import quote

import pytest
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st
from kafka_support import make_config

from connector_core import ConfigError, ConnectorError, ErrorCode, NotFoundError, secret_forms
from connector_kafka import KafkaConfig, KafkaConnector
from connector_testing import unique_name
from connector_testing.strategies import hostile_number, hostile_text, hostile_value

pytestmark = pytest.mark.integration

MARK = "Zq7S3cr3t"
SETTINGS = settings(
    max_examples=250,
    deadline=None,
    derandomize=True,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)

secret = st.builds(lambda tail: MARK + tail, hostile_text)
FIELDS: dict[str, st.SearchStrategy[Any]] = {
    "bootstrap_servers": st.one_of(
        st.just("broker:9092"), st.just("a:1,b:2"), hostile_text, hostile_value
    ),
    "client_id": st.one_of(st.just("svc"), hostile_text, hostile_value),
    "security_protocol": st.one_of(
        st.sampled_from(["PLAINTEXT", "SSL", "SASL_PLAINTEXT", "SASL_SSL"]), hostile_text
    ),
    "sasl_mechanism": st.one_of(
        st.sampled_from(["PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512"]), hostile_text
    ),
    "sasl_username": st.one_of(st.just("ann"), hostile_text, hostile_value),
    "sasl_password": st.one_of(secret, hostile_value),
    "ssl_cafile": st.one_of(hostile_text, hostile_value),
    "ssl_key_password": secret,
    "acks": st.one_of(st.sampled_from(["all", 1, 0, -1, "1", 2]), hostile_value),
    "enable_idempotence": st.one_of(st.booleans(), hostile_value),
    "linger": hostile_number,
    "batch_size": hostile_number,
    "compression": st.one_of(st.sampled_from(["none", "gzip", "lz4", "brotli"]), hostile_text),
    "max_request_size": hostile_number,
    "request_timeout": hostile_number,
    "transactional_id": st.one_of(st.just("tx-1"), hostile_text),
    "group_id": st.one_of(st.just("orders"), hostile_text, hostile_value),
    "auto_offset_reset": st.one_of(st.sampled_from(["earliest", "latest", "none"]), hostile_text),
    "isolation_level": st.one_of(
        st.sampled_from(["read_committed", "read_uncommitted"]), hostile_text
    ),
    "max_poll_records": hostile_number,
    "session_timeout": hostile_number,
    "heartbeat_interval": hostile_number,
    "rebalance_timeout": hostile_number,
    "drain_timeout": hostile_number,
    "commit_interval": hostile_number,
    "value_format": st.one_of(st.sampled_from(["bytes", "string", "json"]), hostile_text),
    "discover_sample": hostile_number,
    "timeout": hostile_number,
    "retry": st.one_of(
        st.dictionaries(st.sampled_from(["max_attempts"]), hostile_number), hostile_value
    ),
}


@st.composite
def _some_fields(draw: st.DrawFn) -> dict[str, Any]:
    # A few fields at a time: with all of them hostile at once, nothing would validate.
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


def _config_texts(config: KafkaConfig) -> list[str]:
    return [
        repr(config),
        str(config),
        str(config.model_dump()),
        config.model_dump_json(),
        config.connection_string(),
        repr(KafkaConnector(config)),
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
        config = KafkaConfig.model_validate(fields)
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
    # A lone surrogate is percent-encoded as its UTF-8-ish bytes, as a careless tool would.
    return quote(value, safe="", errors="surrogatepass")


QUERY_KEYS = st.one_of(st.sampled_from(sorted(FIELDS)), hostile_text)


@st.composite
def _url(draw: st.DrawFn) -> tuple[Any, list[str]]:
    secrets: list[str] = []
    userinfo = ""
    if draw(st.booleans()):
        password = draw(secret)
        secrets.append(password)
        userinfo = f"{_quote(draw(hostile_text))}:{_quote(password)}@"
    hosts = draw(st.one_of(st.just("h1:9092,h2:9093"), st.just("[::1]:9092"), hostile_text))
    pairs = []
    for _ in range(draw(st.integers(0, 3))):
        key, value = draw(QUERY_KEYS), draw(st.one_of(hostile_text, secret))
        if MARK in value:
            secrets.append(value)
        pairs.append(f"{_quote(key)}={_quote(value)}")
    scheme = draw(st.one_of(st.just("kafka"), hostile_text))
    path = draw(st.one_of(st.just(""), st.just("/"), hostile_text))
    url = f"{scheme}://{userinfo}{hosts}{path}?{'&'.join(pairs)}"
    return draw(st.one_of(st.just(url), hostile_value)), secrets


ENV = st.dictionaries(
    st.sampled_from(
        ["K_BOOTSTRAP_SERVERS", "K_ACKS", "K_RETRY", "K_RETRY__MAX_ATTEMPTS", "K_LINGER", "K_URL"]
    ),
    st.one_of(hostile_text, st.just('{"max_attempts": 3}'), st.just("kafka://h:1")),
    max_size=3,
)


@SETTINGS
@given(url=_url(), env=ENV, password=st.one_of(st.none(), secret))
def test_from_url_and_from_env_give_a_config_error_or_a_config(
    url: tuple[Any, list[str]], env: dict[str, str], password: str | None
) -> None:
    value, secrets = url
    if password is not None:
        env = {**env, "K_SASL_PASSWORD": password}
        secrets = [*secrets, password]
    builds = [lambda: KafkaConfig.from_url(value), lambda: KafkaConfig.from_env("K_", env)]
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
    "client_id": st.one_of(st.just("svc"), hostile_text),
    "acks": st.sampled_from(["all", 1, 0]),
    "enable_idempotence": st.booleans(),
    "linger": st.sampled_from([0, 0.001, 0.05]),
    "batch_size": st.sampled_from([1, 512, 16_384, 1_000_000]),
    "compression": st.sampled_from(["none", "gzip"]),
    "max_request_size": st.sampled_from([100, 10_000, 1_048_576]),
    "request_timeout": st.sampled_from([0.5, 5, 30]),
    "value_format": st.sampled_from(["bytes", "string", "json"]),
}


@pytest.fixture(scope="module")
def probe_topic(kafka_bootstrap: str) -> Iterator[str]:
    """The topic the connect property produces to (made by the broker on first use),
    deleted after the module's tests."""
    name = unique_name("property-probe").replace("_", "-")
    yield name

    async def delete() -> None:
        async with KafkaConnector(make_config(kafka_bootstrap)) as admin:
            with contextlib.suppress(NotFoundError):
                await admin.delete_topic(name)

    asyncio.run(delete())


@settings(max_examples=30, deadline=None, derandomize=True)
@given(fields=st.fixed_dictionaries({}, optional=CONNECTABLE))
def test_configs_that_validate_connect_or_fail_typed(
    kafka_bootstrap: str, probe_topic: str, fields: dict[str, Any]
) -> None:
    try:
        config = make_config(kafka_bootstrap, **fields, retry={"max_attempts": 1})
    except ConfigError:
        event("ConfigError")
        return

    async def use() -> ConnectorError | None:
        connector = KafkaConnector(config)
        value: Any = {"bytes": b"v", "string": "v", "json": {"v": 1}}[config.value_format.value]
        try:
            async with connector:
                await connector.produce(probe_topic, value)
        except ConnectorError as exc:
            return exc
        return None

    failure = asyncio.run(use())
    event(f"connect and produce: {failure.code.value if failure else 'ok'}")
    if failure is not None:  # typed: an untranslated driver error would be "unknown"
        assert failure.code is not ErrorCode.UNKNOWN, repr(failure)
