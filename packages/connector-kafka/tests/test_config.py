"""KafkaConfig: defaults, URLs and the environment, and ConfigErrors that name every bad
field without echoing a value."""

from __future__ import annotations

import importlib.util
from pathlib import Path
from typing import Any

import pytest

from connector_core import ConfigError
from connector_kafka import Acks, IsolationLevel, KafkaConfig, OffsetReset, SecurityProtocol

SECRET = "pw-Zq7S3cr3t-kafka"


def _fields(error: ConfigError) -> set[str]:
    return set(error.fields)


def test_defaults_are_the_safe_ones() -> None:
    config = KafkaConfig()
    assert config.bootstrap_servers == ("localhost:9092",)
    assert config.acks is Acks.ALL
    assert config.enable_idempotence
    assert config.isolation_level is IsolationLevel.READ_COMMITTED
    assert config.auto_offset_reset is OffsetReset.EARLIEST
    assert config.producer_settings()["acks"] == "all"
    assert config.consumer_settings("g")["enable_auto_commit"] is False


def test_url_with_several_brokers_and_settings() -> None:
    config = KafkaConfig.from_url("kafka://h1:9092,h2:9093/?group_id=orders&acks=all&linger=0.01")
    assert config.bootstrap_servers == ("h1:9092", "h2:9093")
    assert config.group_id == "orders"
    assert config.acks is Acks.ALL
    assert config.producer_settings()["linger_ms"] == 10


def test_url_credentials_are_the_sasl_login_and_stay_hidden() -> None:
    config = KafkaConfig.from_url(
        f"kafka://ann:{SECRET}@broker:9092?security_protocol=SASL_PLAINTEXT"
        "&sasl_mechanism=SCRAM-SHA-512"
    )
    assert config.sasl_username == "ann"
    assert config.sasl_password is not None
    assert config.sasl_password.get_secret_value() == SECRET
    assert config.connection_string() == "kafka://ann:***@broker:9092"
    assert SECRET in config.connection_string(reveal=True)
    for text in (repr(config), str(config), str(config.model_dump()), config.model_dump_json()):
        assert SECRET not in text
    assert config.client_settings()["sasl_plain_password"] == SECRET
    assert config.secret_values() == (SECRET,)


def test_addresses_are_normalized() -> None:
    config = KafkaConfig(bootstrap_servers=["broker", "[::1]:9093", " 10.0.0.1:9094 "])
    assert config.bootstrap_servers == ("broker:9092", "[::1]:9093", "10.0.0.1:9094")


@pytest.mark.parametrize(
    "url",
    ["http://h:9092", "kafka://h:9092/topic", "kafka://h:9092/#frag", "kafka:h"],
)
def test_urls_kafka_cannot_use_are_config_errors(url: str) -> None:
    with pytest.raises(ConfigError) as caught:
        KafkaConfig.from_url(url)
    assert _fields(caught.value) == {"url"}


@pytest.mark.parametrize("server", ["h:0", "h:99999", "h:abc", "a b:1", "[::1", ":9092", "u@h:1"])
def test_a_bad_broker_address_names_bootstrap_servers(server: str) -> None:
    with pytest.raises(ConfigError) as caught:
        KafkaConfig(bootstrap_servers=[server])
    assert _fields(caught.value) == {"bootstrap_servers.0"} or _fields(caught.value) == {
        "bootstrap_servers"
    }
    assert server not in str(caught.value)


def test_environment() -> None:
    env = {
        "KAFKA_BOOTSTRAP_SERVERS": "a:1,b:2",
        "KAFKA_ACKS": "1",
        "KAFKA_ENABLE_IDEMPOTENCE": "false",
        "KAFKA_GROUP_ID": "billing",
        "KAFKA_RETRY__MAX_ATTEMPTS": "5",
    }
    config = KafkaConfig.from_env("KAFKA_", env)
    assert config.bootstrap_servers == ("a:1", "b:2")
    assert config.acks is Acks.LEADER
    assert config.producer_settings()["acks"] == 1
    assert config.group_id == "billing"
    assert config.retry.max_attempts == 5


def test_environment_url_then_fields() -> None:
    env = {"KAFKA_URL": "kafka://h1:9092/?group_id=a", "KAFKA_GROUP_ID": "b"}
    config = KafkaConfig.from_env("KAFKA_", env)
    assert (config.bootstrap_servers, config.group_id) == (("h1:9092",), "b")


def test_every_bad_field_is_named_at_once() -> None:
    with pytest.raises(ConfigError) as caught:
        KafkaConfig(
            acks=2,  # type: ignore[arg-type]
            compression="brotli",  # type: ignore[arg-type]
            batch_size=True,
            linger=1e300,
            request_timeout=-1,
            max_poll_records=0,
            isolation_level="dirty",  # type: ignore[arg-type]
        )
    assert _fields(caught.value) == {
        "acks",
        "compression",
        "batch_size",
        "linger",
        "request_timeout",
        "max_poll_records",
        "isolation_level",
    }
    assert "brotli" not in str(caught.value)
    assert "dirty" not in str(caught.value)


@pytest.mark.parametrize(
    ("fields", "named"),
    [
        ({"acks": 1}, {"acks"}),
        ({"acks": "0"}, {"acks"}),
        (
            {"transactional_id": "tx", "enable_idempotence": False, "acks": "all"},
            {"enable_idempotence"},
        ),
        ({"security_protocol": "SASL_SSL"}, {"sasl_username", "sasl_password"}),
        ({"sasl_username": "ann", "sasl_password": SECRET}, {"sasl_username", "sasl_password"}),
        ({"heartbeat_interval": 10, "session_timeout": 10}, {"heartbeat_interval"}),
        ({"drain_timeout": 30, "rebalance_timeout": 30}, {"drain_timeout"}),
    ],
)
def test_settings_that_disagree_name_the_field(fields: dict[str, Any], named: set[str]) -> None:
    with pytest.raises(ConfigError) as caught:
        KafkaConfig(**fields)
    assert _fields(caught.value) == named
    assert SECRET not in str(caught.value)


def test_acks_one_is_fine_without_idempotence() -> None:
    config = KafkaConfig(acks=1, enable_idempotence=False)  # type: ignore[arg-type]
    assert config.producer_settings()["acks"] == 1
    assert KafkaConfig(acks=-1).acks is Acks.ALL  # type: ignore[arg-type]


def test_a_codec_says_which_extra_brings_it() -> None:
    if importlib.util.find_spec("cramjam") is None:
        with pytest.raises(ConfigError) as caught:
            KafkaConfig(compression="lz4")  # type: ignore[arg-type]
        assert _fields(caught.value) == {"compression"}
        assert "connector-kafka[lz4]" in str(caught.value)
    else:  # the extra is installed here: the codec is accepted
        assert KafkaConfig(compression="lz4").producer_settings()["compression_type"] == "lz4"  # type: ignore[arg-type]
    assert KafkaConfig(compression="gzip").producer_settings()["compression_type"] == "gzip"  # type: ignore[arg-type]


def test_tls_files_are_checked_without_echoing_paths(tmp_path: Path) -> None:
    missing = tmp_path / "no-such-ca-Zq7.pem"
    with pytest.raises(ConfigError) as caught:
        KafkaConfig(security_protocol="SSL", ssl_cafile=missing)  # type: ignore[arg-type]
    assert _fields(caught.value) == {"ssl_cafile"}
    assert "Zq7" not in str(caught.value)
    garbage = tmp_path / "garbage.pem"
    garbage.write_text("not a certificate")
    with pytest.raises(ConfigError) as caught:
        KafkaConfig(security_protocol="SSL", ssl_cafile=garbage)  # type: ignore[arg-type]
    assert _fields(caught.value) == {"ssl_cafile"}
    with pytest.raises(ConfigError) as caught:
        KafkaConfig(ssl_cafile=garbage)  # PLAINTEXT does not use it
    assert _fields(caught.value) == {"ssl_cafile"}
    with pytest.raises(ConfigError) as caught:
        KafkaConfig(security_protocol="SSL", ssl_certfile=garbage)  # type: ignore[arg-type]
    assert _fields(caught.value) == {"ssl_keyfile"}


def test_tls_context_verifies_brokers() -> None:
    config = KafkaConfig(security_protocol=SecurityProtocol.SSL)
    context = config.ssl_context()
    assert context is not None
    assert context.check_hostname
    assert KafkaConfig().ssl_context() is None


def test_names_with_control_characters_are_refused() -> None:
    with pytest.raises(ConfigError) as caught:
        KafkaConfig(client_id="a\nb", group_id="", transactional_id="x" * 300)
    assert _fields(caught.value) == {"client_id", "group_id", "transactional_id"}


def test_a_frozen_config_refuses_assignment() -> None:
    config = KafkaConfig()
    with pytest.raises(ConfigError) as caught:
        config.acks = Acks.LEADER  # type: ignore[misc]
    assert _fields(caught.value) == {"acks"}


def test_deadlines() -> None:
    config = KafkaConfig(request_timeout=5, timeout=2)
    assert config.produce_timeout == 2
    assert KafkaConfig(request_timeout=5, timeout=None).produce_timeout == 5
    assert config.bulk_deadline(1000) == pytest.approx(3.0)
