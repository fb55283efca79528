"""Property tests: whatever a config is given, it raises ConfigError or builds; a built
config connects or fails at connect with a typed, non-transient error; no secret ever
shows, in a message, a repr or anywhere in a chained cause."""

from __future__ import annotations

from typing import Any

from _core_support import SECRET, ScriptedConfig
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from connector_core import (
    CircuitBreakerSettings,
    ConfigError,
    ConnectionFailedError,
    ConnectorError,
    RateLimitSettings,
    RetrySettings,
)
from connector_testing import MemoryConfig, MemoryConnector, exception_texts, secret_leaks
from connector_testing.strategies import hostile_number, hostile_text, hostile_value

PROPERTY = settings(
    max_examples=150,
    deadline=None,
    derandomize=True,
    suppress_health_check=[HealthCheck.too_slow],
)

# The secret goes only where secrets belong; every other field is shown on purpose.
secret_text = st.sampled_from([SECRET, f"x{SECRET}y", f"{SECRET}\x00"])
FIELDS = sorted(set(ScriptedConfig.model_fields) | {"unknown", "retry.max_attempts"})


def _no_secret_anywhere(error: BaseException) -> None:
    leaks = secret_leaks(exception_texts(error), [SECRET])
    assert not leaks, leaks


@PROPERTY
@given(
    st.dictionaries(st.sampled_from(FIELDS), hostile_value, max_size=6),
    st.one_of(secret_text, hostile_value),
)
def test_any_fields_give_a_config_or_a_config_error(fields: dict[str, Any], password: Any) -> None:
    try:
        config = ScriptedConfig.model_validate({**fields, "password": password})
    except ConfigError as error:
        refused = error
    else:
        assert SECRET not in repr(config) + str(config) + config.model_dump_json()
        return
    assert refused.fields, "a ConfigError names the bad fields"
    _no_secret_anywhere(refused)


@PROPERTY
@given(
    st.sampled_from([RetrySettings, RateLimitSettings, CircuitBreakerSettings]),
    st.dictionaries(st.text(max_size=20), hostile_value, max_size=4),
)
def test_settings_built_alone_give_settings_or_a_config_error(
    kind: type[Any], fields: dict[str, Any]
) -> None:
    try:
        kind.model_validate(fields)
    except ConfigError as error:
        _no_secret_anywhere(error)


url_part = st.one_of(hostile_text, st.sampled_from(["@", ":", "/", "?", "#", "[::1", "%zz"]))


@PROPERTY
@given(st.lists(url_part, min_size=1, max_size=6).map("".join), st.booleans())
def test_any_url_gives_a_config_or_a_config_error(tail: str, with_secret: bool) -> None:
    url = f"scripted://app:{SECRET}@{tail}" if with_secret else tail
    try:
        ScriptedConfig.from_url(url)
    except ConfigError as error:
        _no_secret_anywhere(error)


env_key = st.one_of(
    st.sampled_from(["HOST", "PORT", "RETRY", "RETRY__MAX_ATTEMPTS", "RETRY__X__Y", "URL"]),
    st.text(alphabet="ABCXYZ_", max_size=8),
)


@PROPERTY
@given(st.dictionaries(env_key, st.one_of(hostile_text, st.just('{"max_attempts": 2}'))))
def test_any_environment_gives_a_config_or_a_config_error(env: dict[str, str]) -> None:
    environ = {f"APP_{k}": v for k, v in env.items()} | {"APP_PASSWORD": SECRET}
    try:
        ScriptedConfig.from_env("APP_", environ)
    except ConfigError as error:
        _no_secret_anywhere(error)


memory_fields = st.fixed_dictionaries(
    {},
    optional={
        "store": hostile_text,
        "token": st.one_of(secret_text, hostile_text),
        "expected_token": st.one_of(secret_text, hostile_text),
        "latency": st.one_of(hostile_number, st.just(0.0)),
        "retry": st.one_of(hostile_value, st.just({"max_attempts": 1})),
    },
)


@PROPERTY
@given(memory_fields)
async def test_a_built_memory_config_connects_or_fails_typed_and_final(
    fields: dict[str, Any],
) -> None:
    try:
        config = MemoryConfig.model_validate(fields)
    except ConfigError as error:
        _no_secret_anywhere(error)
        return
    if config.latency > 0.01:  # valid, but too slow to wait for here
        return
    connector = MemoryConnector(config.model_copy(update={"retry": RetrySettings(max_attempts=1)}))
    failure: ConnectorError | None = None
    try:
        await connector.connect()
    except ConnectorError as error:
        failure = error
    finally:
        await connector.disconnect()
    if failure is not None:
        assert not isinstance(failure, ConnectionFailedError), "only available=False fails so"
        assert not failure.transient, failure
        _no_secret_anywhere(failure)
