"""MongoConfig: URLs as MongoDB spells them, fields, the environment, and what is refused."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from connector_core import ConfigError
from connector_mongo import AuthMechanism, MongoConfig, ReadConcern, ReadPreference

SECRET = "s3cr3t-p@ss/word"


def test_a_url_with_mongodb_options_sets_the_fields() -> None:
    config = MongoConfig.from_url(
        "mongodb://ann:s3cr3t-p%40ss%2Fword@db1,db2:27018/shop?authSource=admin"
        "&replicaSet=rs0&w=majority&journal=true&wtimeoutMS=2500&readPreference=secondary"
        "&readConcernLevel=majority&serverSelectionTimeoutMS=1500&socketTimeoutMS=4000"
        "&connectTimeoutMS=3000&maxPoolSize=20&minPoolSize=2&retryWrites=false"
        "&appName=orders&compressors=zlib&authMechanism=SCRAM-SHA-256"
    )
    assert config.hosts == ("db1:27017", "db2:27018")
    assert config.database == "shop"
    assert config.user == "ann"
    assert config.password is not None
    assert config.password.get_secret_value() == SECRET
    assert config.auth_source == "admin"
    assert config.auth_mechanism is AuthMechanism.SCRAM_SHA_256
    assert config.replica_set == "rs0"
    assert (config.w, config.journal, config.wtimeout) == ("majority", True, 2.5)
    assert config.read_preference is ReadPreference.SECONDARY
    assert config.read_concern is ReadConcern.MAJORITY
    assert (config.server_selection_timeout, config.socket_timeout) == (1.5, 4.0)
    assert config.connect_timeout == 3.0
    assert (config.pool_min, config.pool_max, config.retry_writes) == (2, 20, False)
    assert config.app_name == "orders"
    assert [c.value for c in config.compressors] == ["zlib"]


def test_field_names_work_in_the_query_too() -> None:
    config = MongoConfig.from_url("mongodb://h/db?batch_size=50&timeout=5&pool_max=3")
    assert (config.batch_size, config.timeout, config.pool_max) == (50, 5.0, 3)


def test_an_srv_url_takes_one_name_and_implies_tls() -> None:
    config = MongoConfig.from_url(
        f"mongodb+srv://ann:{SECRET.replace('/', '%2F')}@c0.example.net/app"
    )
    assert config.srv
    assert config.hosts == ("c0.example.net",)
    settings = config.client_settings()
    assert settings["host"] == "mongodb+srv://c0.example.net"
    assert settings["tls"] is True
    assert config.connection_string() == "mongodb+srv://ann:***@c0.example.net/app"
    with pytest.raises(ConfigError) as caught:
        MongoConfig.from_url("mongodb+srv://c0.example.net:27017,c1.example.net/app")
    assert "hosts" in caught.value.fields


def test_the_client_always_decodes_aware_datetimes_and_standard_uuids() -> None:
    settings = MongoConfig.from_url("mongodb://h/db").client_settings()
    assert settings["tz_aware"] is True
    assert settings["uuidRepresentation"] == "standard"
    assert settings["connect"] is False


@pytest.mark.parametrize(
    ("fields", "bad"),
    [
        ({"hosts": "h:0"}, "hosts"),
        ({"hosts": "a b"}, "hosts"),
        ({"database": "a.b"}, "database"),
        ({"database": "$cmd"}, "database"),
        ({"database": ""}, "database"),
        ({"password": SECRET}, "password"),
        ({"user": "ann"}, "password"),
        ({"pool_min": 5, "pool_max": 2}, "pool_min"),
        ({"pool_max": True}, "pool_max"),
        ({"w": -1}, "w"),
        ({"w": 0, "journal": True}, "journal"),
        ({"tls_allow_invalid_hostnames": True}, "tls_allow_invalid_hostnames"),
        ({"tls": True, "tls_ca_file": "/no/such/ca.pem"}, "tls_ca_file"),
        ({"auth_mechanism": "MONGODB-X509"}, "tls_certificate_key_file"),
        ({"auth_mechanism": "PLAIN"}, "auth_mechanism"),
        ({"read_preference": "closest"}, "read_preference"),
        ({"compressors": "zlib,zlib"}, "compressors"),
        ({"compressors": "brotli"}, "compressors"),
        ({"server_selection_timeout": 0}, "server_selection_timeout"),
        ({"no_such_option": 1}, "no_such_option"),
    ],
)
def test_bad_fields_are_named(fields: dict[str, Any], bad: str) -> None:
    with pytest.raises(ConfigError) as caught:
        MongoConfig.model_validate(fields)
    assert bad in {f.split(".")[0] for f in caught.value.fields}, caught.value.fields
    assert SECRET not in str(caught.value)


def test_every_bad_field_is_named_at_once() -> None:
    with pytest.raises(ConfigError) as caught:
        MongoConfig.from_url(
            f"mongodb://ann:{SECRET.replace('/', '%2F').replace('@', '%40')}@h:99999/a.b"
            "?maxPoolSize=x&readPreference=closest"
        )
    assert {"hosts", "database", "pool_max", "read_preference"} <= set(caught.value.fields)
    assert SECRET not in str(caught.value)
    assert caught.value.__cause__ is None
    assert caught.value.__context__ is None


@pytest.mark.parametrize(
    "url",
    ["postgresql://h/db", "mongodb:/h", "mongodb://h/db#frag", "h:27017", "mongodb://[::1/db"],
)
def test_urls_that_are_not_mongodb_urls_are_refused(url: str) -> None:
    with pytest.raises(ConfigError) as caught:
        MongoConfig.from_url(url)
    assert caught.value.fields


def test_from_env_reads_the_url_and_single_fields(tmp_path: Path) -> None:
    env = {
        "MONGO_URL": f"mongodb://ann:{SECRET.replace('/', '%2F').replace('@', '%40')}@h1/shop",
        "MONGO_POOL_MAX": "7",
        "MONGO_RETRY__MAX_ATTEMPTS": "2",
        "MONGO_HOSTS": "h1:1,h2:2",
    }
    config = MongoConfig.from_env("MONGO_", env)
    assert config.hosts == ("h1:1", "h2:2")
    assert config.pool_max == 7
    assert config.retry.max_attempts == 2
    assert config.password is not None
    assert config.password.get_secret_value() == SECRET


def test_the_password_never_shows() -> None:
    config = MongoConfig(hosts=("h",), user="ann", password=SECRET)
    for text in (repr(config), str(config), config.model_dump_json(), config.connection_string()):
        assert SECRET not in text
    assert config.connection_string() == "mongodb://ann:***@h:27017/test"
    revealed = config.connection_string(reveal=True)
    assert "s3cr3t-p%40ss%2Fword" in revealed
    assert config.secret_values() == (SECRET,)


def test_x509_authenticates_against_external(tmp_path: Path) -> None:
    pem = tmp_path / "client.pem"
    pem.write_text("not really a certificate")
    config = MongoConfig(
        hosts=("h",),
        tls=True,
        auth_mechanism="MONGODB-X509",
        tls_certificate_key_file=pem,
        tls_certificate_key_file_password="key-secret-9",
    )
    settings = config.client_settings()
    assert settings["authSource"] == "$external"
    assert settings["authMechanism"] == "MONGODB-X509"
    assert settings["tlsCertificateKeyFilePassword"] == "key-secret-9"
    assert "key-secret-9" not in repr(config)
