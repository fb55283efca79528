"""ConnectorConfig: validation, URLs, environment, presentation and secrets."""

from __future__ import annotations

import json
import logging
import pickle
from pathlib import Path
from typing import Any

import pytest
from _core_support import SECRET, ScriptedConfig
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pydantic import SecretStr

from connector_core import (
    CircuitBreakerSettings,
    ConfigError,
    ConnectorConfig,
    ErrorCode,
    RateLimitSettings,
    RetrySettings,
)

# -- hypothesis: invalid configs raise ConfigError naming every bad field ------------------

not_a_string = st.one_of(
    st.integers(), st.floats(allow_nan=False), st.lists(st.text(max_size=3), max_size=2)
)
not_a_number = st.one_of(
    st.text(alphabet="abcxyz!", min_size=1, max_size=5), st.lists(st.integers(), max_size=2)
)

# Each field maps to a strategy of values that must be rejected.
BAD_VALUES: dict[str, st.SearchStrategy[Any]] = {
    "host": st.one_of(not_a_string, st.just("")),
    "port": st.one_of(
        st.integers(max_value=0),
        st.integers(min_value=65536),
        not_a_number,
        st.floats(min_value=1.1, max_value=100.9).filter(lambda f: not f.is_integer()),
    ),
    "password": st.one_of(st.integers(), st.lists(st.just(SECRET), min_size=1, max_size=2)),
    "timeout": st.one_of(st.floats(max_value=0.0, allow_nan=False), not_a_number),
    "connect_timeout": st.one_of(st.floats(max_value=0.0, allow_nan=False), st.none()),
    "label": not_a_string,
}
BAD_RETRY: dict[str, st.SearchStrategy[Any]] = {
    "max_attempts": st.one_of(st.integers(max_value=0), st.integers(min_value=101)),
    "initial_delay": st.floats(max_value=-0.001, allow_nan=False),
    "multiplier": st.floats(min_value=-10, max_value=0.999),
    "deadline": st.one_of(st.floats(max_value=0.0, allow_nan=False), not_a_number),
    "surprise": st.integers(),  # unknown nested field
}
FIELD_NAMES = set(ScriptedConfig.model_fields)
unknown_names = st.from_regex(r"[a-z][a-z_]{0,12}", fullmatch=True).filter(
    lambda n: n not in FIELD_NAMES
)


@st.composite
def invalid_configs(draw: st.DrawFn) -> tuple[dict[str, Any], set[str]]:
    """A config dict with at least one bad field, and the dotted names of the bad fields.

    The valid password carries SECRET, so every error must keep it out of its text.
    """
    data: dict[str, Any] = {"host": "db", "port": 5432, "user": "app", "password": SECRET}
    bad: set[str] = set()
    for name in draw(st.sets(st.sampled_from(sorted(BAD_VALUES)), max_size=len(BAD_VALUES))):
        data[name] = draw(BAD_VALUES[name])
        bad.add(name)
    retry_bad = draw(st.sets(st.sampled_from(sorted(BAD_RETRY)), max_size=2))
    if retry_bad:
        data["retry"] = {name: draw(BAD_RETRY[name]) for name in retry_bad}
        bad |= {f"retry.{name}" for name in retry_bad}
    elif draw(st.booleans()):
        data["retry"] = draw(st.one_of(st.integers(), st.text(max_size=3)))
        bad.add("retry")
    for name in draw(st.sets(unknown_names, max_size=2)):
        data[name] = draw(st.one_of(st.integers(), st.just(SECRET)))
        bad.add(name)
    if not bad:
        data["port"] = -1
        bad.add("port")
    return data, bad


@settings(max_examples=300, suppress_health_check=[HealthCheck.too_slow])
@given(invalid_configs())
def test_invalid_configs_raise_config_error_naming_every_bad_field(
    case: tuple[dict[str, Any], set[str]],
) -> None:
    data, bad = case
    with pytest.raises(ConfigError) as info:  # and nothing else
        ScriptedConfig(**data)
    error = info.value
    assert type(error) is ConfigError
    assert error.code is ErrorCode.CONFIG
    named = set(error.fields)
    assert bad <= named, f"not named: {bad - named}"
    # Only the bad fields (or parts of them) are named.
    assert all(any(n == b or n.startswith(b + ".") for b in bad) for n in named), named
    text = f"{error} {error!r} {error.errors!r}"
    for name in bad:
        assert name in text
    assert SECRET not in text


@settings(max_examples=100)
@given(invalid_configs())
def test_model_validate_raises_the_same_config_error(case: tuple[dict[str, Any], set[str]]) -> None:
    data, bad = case
    with pytest.raises(ConfigError) as info:
        ScriptedConfig.model_validate(data)
    assert bad <= set(info.value.fields)
    assert SECRET not in str(info.value)


def test_a_non_mapping_is_a_config_error() -> None:
    with pytest.raises(ConfigError) as info:
        ScriptedConfig.model_validate([1, 2])
    assert info.value.fields == ("__root__",)


def test_message_counts_and_lists_the_bad_fields() -> None:
    with pytest.raises(ConfigError) as info:
        ScriptedConfig(port=0, host="")
    message = str(info.value)
    assert message.startswith("invalid ScriptedConfig: 2 bad fields: ")
    assert "port: Input should be greater than or equal to 1" in message
    assert "host: String should have at least 1 character" in message


def test_valid_config_has_documented_defaults() -> None:
    config = ScriptedConfig()
    assert config.timeout == 30.0
    assert config.connect_timeout == 10.0
    assert config.retry == RetrySettings()
    assert config.rate_limit is None
    assert config.circuit_breaker == CircuitBreakerSettings()


def test_nested_settings_validate_and_are_frozen() -> None:
    config = ScriptedConfig(
        rate_limit={"rate": 5, "burst": 2},
        circuit_breaker=None,
        timeout=None,
    )
    assert config.rate_limit == RateLimitSettings(rate=5, burst=2)
    with pytest.raises(ConfigError) as info:
        ScriptedConfig(rate_limit={"rate": 0}, circuit_breaker={"cooldown": -1})
    assert set(info.value.fields) == {"rate_limit.rate", "circuit_breaker.cooldown"}


# -- frozen, secrets never shown -------------------------------------------------------------


def test_config_is_frozen() -> None:
    config = ScriptedConfig(password=SecretStr(SECRET))
    with pytest.raises(ConfigError) as info:
        config.port = 1  # type: ignore[misc]
    assert info.value.fields == ("port",)
    with pytest.raises(ConfigError) as info2:
        config.password = "another-" + SECRET  # type: ignore[misc,assignment]
    assert info2.value.fields == ("password",)
    for error in (info.value, info2.value):
        # Nothing of the refused assignment survives, not even in the chain.
        assert error.__context__ is None
        assert error.__cause__ is None
        assert SECRET not in str(error) + repr(error)
    assert config.port == 5000
    with pytest.raises(ConfigError) as info3:
        config.retry.max_attempts = 9  # type: ignore[misc]
    assert info3.value.fields == ("max_attempts",)


def test_secret_never_in_repr_str_dump_or_json() -> None:
    config = ScriptedConfig(user="app", password=SecretStr(SECRET))
    shown = [
        repr(config),
        str(config),
        repr(config.model_dump()),
        str(config.model_dump()),
        json.dumps(config.model_dump(mode="json")),
        config.model_dump_json(),
        config.connection_string(),
        f"{config}",
    ]
    for text in shown:
        assert SECRET not in text, text
    assert config.password is not None
    assert config.password.get_secret_value() == SECRET
    assert config.secret_values() == (SECRET,)


def test_secret_never_logged(caplog: pytest.LogCaptureFixture) -> None:
    config = ScriptedConfig(password=SecretStr(SECRET))
    with caplog.at_level(logging.DEBUG):
        logging.getLogger("connector.test").info("config: %s %r", config, config)
    assert caplog.records
    assert SECRET not in caplog.text


def test_secret_values_finds_nested_secrets() -> None:
    class Nested(ConnectorConfig):
        password: SecretStr
        extra_secrets: dict[str, SecretStr] = {}
        keys: tuple[SecretStr, ...] = ()

    config = Nested(
        password=SecretStr("a1"),
        extra_secrets={"x": SecretStr("b2")},
        keys=(SecretStr("c3"), SecretStr("")),
    )
    assert sorted(config.secret_values()) == ["a1", "b2", "c3"]


def test_config_pickles_without_revealing(tmp_path: Any) -> None:
    config = ScriptedConfig(password=SecretStr(SECRET))
    assert pickle.loads(pickle.dumps(config)) == config


# -- from_url ------------------------------------------------------------------------------


def test_from_url_maps_every_part() -> None:
    config = ScriptedConfig.from_url(
        "scripted://ann%40corp:p%2Fss%3Aword@db.example.com:6543/my%20db?timeout=5&label=x%26y"
    )
    assert config.host == "db.example.com"
    assert config.port == 6543
    assert config.user == "ann@corp"
    assert config.password is not None
    assert config.password.get_secret_value() == "p/ss:word"
    assert config.database == "my db"
    assert config.timeout == 5.0
    assert config.label == "x&y"


def test_from_url_json_query_values_and_overrides() -> None:
    config = ScriptedConfig.from_url(
        'scripted://h/db?retry={"max_attempts": 7}', port=7000, database="other"
    )
    assert config.retry.max_attempts == 7
    assert config.port == 7000
    assert config.database == "other"


def test_from_url_ipv6_host() -> None:
    config = ScriptedConfig.from_url("scripted://u:pw@[::1]:5000/db")
    assert config.host == "::1"
    assert config.connection_string() == "scripted://u:***@[::1]:5000/db"
    assert ScriptedConfig.from_url(config.connection_string(reveal=True)) == config


def test_from_url_wrong_scheme() -> None:
    with pytest.raises(ConfigError, match="scheme 'postgresql' is not one of scripted") as info:
        ScriptedConfig.from_url(f"postgresql://u:{SECRET}@h/db")
    assert info.value.fields == ("url",)
    assert SECRET not in str(info.value)


@pytest.mark.parametrize(
    "url",
    [f"scripted://u:{SECRET}@h:notaport/db", f"scripted://u:{SECRET}@h:99999999/db"],
)
def test_from_url_bad_port_never_echoes_the_url(url: str) -> None:
    with pytest.raises(ConfigError) as info:
        ScriptedConfig.from_url(url)
    assert info.value.fields == ("url",) or "port" in info.value.fields
    assert SECRET not in str(info.value)


def test_from_url_unknown_query_parameter_is_named() -> None:
    with pytest.raises(ConfigError) as info:
        ScriptedConfig.from_url(f"scripted://h/db?bogus={SECRET}&port=0")
    assert set(info.value.fields) == {"bogus", "port"}
    assert SECRET not in str(info.value)


# -- from_env ------------------------------------------------------------------------------


def test_from_env_reads_prefixed_fields_nested_and_json() -> None:
    env = {
        "APP_HOST": "envhost",
        "APP_PORT": "6000",
        "APP_PASSWORD": SECRET,
        "APP_RETRY__MAX_ATTEMPTS": "9",
        "APP_RETRY__JITTER": "false",
        "APP_RATE_LIMIT": '{"rate": 2.5, "burst": 4}',
        "OTHER_PORT": "1",
    }
    config = ScriptedConfig.from_env("APP_", env)
    assert (config.host, config.port) == ("envhost", 6000)
    assert config.password is not None
    assert config.password.get_secret_value() == SECRET
    assert config.retry.max_attempts == 9
    assert config.retry.jitter is False
    assert config.rate_limit == RateLimitSettings(rate=2.5, burst=4)


def test_from_env_url_then_single_fields_override() -> None:
    env = {"app_url": f"scripted://u:{SECRET}@urlhost:7000/db", "APP_PORT": "7001"}
    config = ScriptedConfig.from_env("app_", env)
    assert (config.host, config.port, config.user, config.database) == (
        "urlhost",
        7001,
        "u",
        "db",
    )
    assert config.password is not None
    assert config.password.get_secret_value() == SECRET


def test_from_env_uses_os_environ(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ZZTEST_HOST", "from-os")
    assert ScriptedConfig.from_env("ZZTEST_").host == "from-os"


def test_from_env_bad_values_name_the_fields_without_values() -> None:
    env = {"APP_PORT": "zero", "APP_RETRY__MAX_ATTEMPTS": "0", "APP_NOPE": SECRET}
    with pytest.raises(ConfigError) as info:
        ScriptedConfig.from_env("APP_", env)
    assert set(info.value.fields) == {"port", "retry.max_attempts", "nope"}
    assert SECRET not in str(info.value)


# -- connection_string --------------------------------------------------------------------


def test_connection_string_masks_the_password_unless_revealed() -> None:
    config = ScriptedConfig(
        host="db", port=5432, user="a b", password=SecretStr("p@ss/w:rd"), database="d"
    )
    assert config.connection_string() == "scripted://a%20b:***@db:5432/d"
    revealed = config.connection_string(reveal=True)
    assert revealed == "scripted://a%20b:p%40ss%2Fw%3Ard@db:5432/d"
    assert ScriptedConfig.from_url(revealed) == config


def test_connection_string_without_credentials() -> None:
    assert ScriptedConfig(host="h", port=1).connection_string() == "scripted://h:1"


def test_connection_string_of_a_config_without_scheme_uses_the_class_name() -> None:
    assert ConnectorConfig().connection_string() == "connectorconfig://"


# -- hostile input: always a ConfigError, at construction, echoing nothing -----------------


def _chain(error: BaseException) -> list[BaseException]:
    seen: list[BaseException] = []
    current: BaseException | None = error
    while current is not None and current not in seen:
        seen.append(current)
        current = current.__cause__ or current.__context__
    return seen


@pytest.mark.parametrize(
    ("fields", "bad"),
    [
        ({"timeout": float("inf")}, "timeout"),
        ({"timeout": float("nan")}, "timeout"),
        ({"connect_timeout": "inf"}, "connect_timeout"),
        ({"retry": {"deadline": float("inf")}}, "retry.deadline"),
        ({"rate_limit": {"rate": float("nan")}}, "rate_limit.rate"),
    ],
)
def test_infinite_and_nan_numbers_are_config_errors(fields: dict[str, Any], bad: str) -> None:
    with pytest.raises(ConfigError) as info:
        ScriptedConfig(**fields)
    assert info.value.fields == (bad,)


def test_settings_built_alone_raise_config_error_too() -> None:
    with pytest.raises(ConfigError) as info:
        RetrySettings(max_attempts=0, surprise=SECRET)  # type: ignore[call-arg]
    assert set(info.value.fields) == {"max_attempts", "surprise"}
    assert SECRET not in str(info.value)


def test_config_errors_chain_nothing_that_holds_the_input() -> None:
    with pytest.raises(ConfigError) as info:
        ScriptedConfig(password=SecretStr(SECRET), port=0, retry={"deadline": SECRET})
    assert _chain(info.value) == [info.value]  # no ValidationError with the input behind it


def test_a_bad_discriminator_tag_is_named_but_not_echoed() -> None:
    from typing import Annotated, Literal

    from pydantic import Field

    from connector_core import SettingsModel

    class Plain(SettingsModel):
        type: Literal["plain"] = "plain"

    class Keyed(SettingsModel):
        type: Literal["keyed"] = "keyed"
        key: SecretStr

    class Tagged(ConnectorConfig):
        auth: Annotated[Plain | Keyed, Field(discriminator="type")] = Plain()

    with pytest.raises(ConfigError) as info:
        Tagged(auth={"type": SECRET})
    assert info.value.fields == ("auth",)
    assert "'plain', 'keyed'" in str(info.value)  # says what would do
    assert SECRET not in str(info.value) + repr(info.value.errors)


@pytest.mark.parametrize("url", [12345, None, b"scripted://h/db", ["scripted://h"]])
def test_from_url_of_a_non_string_is_a_config_error(url: Any) -> None:
    with pytest.raises(ConfigError) as info:
        ScriptedConfig.from_url(url)
    assert info.value.fields == ("url",)


@pytest.mark.parametrize(
    "env",
    [
        {"APP_RETRY": "3", "APP_RETRY__MAX_ATTEMPTS": "5"},
        {"APP_RETRY__MAX_ATTEMPTS": "5", "APP_RETRY": "3"},
        {"APP_RETRY__MAX_ATTEMPTS": "5", "APP_RETRY__MAX_ATTEMPTS__X": "1"},
    ],
)
def test_from_env_value_and_nested_fields_clash_is_a_config_error(env: dict[str, str]) -> None:
    with pytest.raises(ConfigError) as info:
        ScriptedConfig.from_env("APP_", {**env, "APP_PASSWORD": SECRET})
    assert info.value.fields
    assert all(f.startswith("retry") for f in info.value.fields), info.value.fields
    assert SECRET not in str(info.value)


def test_from_env_nested_variables_refine_a_json_map() -> None:
    env = {"APP_RETRY__JITTER": "false", "APP_RETRY": '{"max_attempts": 7, "jitter": true}'}
    config = ScriptedConfig.from_env("APP_", env)
    assert config.retry.max_attempts == 7
    assert config.retry.jitter is False


def test_from_env_prefix_must_be_a_string() -> None:
    with pytest.raises(ConfigError) as info:
        ScriptedConfig.from_env(42, {})  # type: ignore[arg-type]
    assert info.value.fields == ("prefix",)


@pytest.mark.parametrize(
    "fields",
    [{"timeout": 1e300}, {"connect_timeout": 10**9}, {"retry": {"deadline": 1e12}}],
)
def test_absurdly_long_timeouts_are_config_errors(fields: dict[str, Any]) -> None:
    with pytest.raises(ConfigError):
        ScriptedConfig(**fields)


def test_a_deeply_nested_json_variable_is_a_config_error_not_a_recursion_error() -> None:
    deep = "[" * 100_000 + "]" * 100_000
    with pytest.raises(ConfigError) as info:
        ScriptedConfig.from_env("APP_", {"APP_RETRY": deep})
    assert info.value.fields == ("retry",)


def test_a_malformed_url_is_refused_without_its_chain() -> None:
    with pytest.raises(ConfigError) as info:
        ScriptedConfig.from_url(f"scripted://u:{SECRET}@h:notaport/db")
    assert info.value.__context__ is None
    assert info.value.__cause__ is None


def test_shared_field_checks_refuse_without_echoing_the_value(tmp_path: Path) -> None:
    from pydantic import SecretStr

    from connector_core import check_local_file, check_secret_text, config_error

    for bad, reason in [("", "empty"), ("pw\x00x", "NUL"), ("pw\udc80", "UTF-8")]:
        with pytest.raises(ValueError, match=reason) as refused:
            check_secret_text(SecretStr(bad))
        assert bad not in str(refused.value) or not bad
    assert check_secret_text(None) is None
    missing = tmp_path / "missing-ca-4f2.pem"
    with pytest.raises(ValueError, match="file not found") as refused:
        check_local_file(missing)
    assert "missing-ca-4f2" not in str(refused.value)
    with pytest.raises(ValueError, match="not a usable path"):
        check_local_file(Path("x" * 5000))
    present = tmp_path / "ca.pem"
    present.write_text("x")
    assert check_local_file(present) == present
    error = config_error("MyConfig", [("a", "must be set"), ("b.c", "too big")])
    assert error.fields == ("a", "b.c")
    assert str(error).startswith("invalid MyConfig: 2 bad fields: a: must be set; b.c: too big")
