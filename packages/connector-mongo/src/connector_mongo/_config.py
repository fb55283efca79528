"""MongoConfig: which servers, how to authenticate, how the client pool and its
operations behave."""

from __future__ import annotations

import re
from enum import StrEnum
from pathlib import Path
from typing import Any, ClassVar
from urllib.parse import parse_qsl, quote, unquote, urlsplit

from pydantic import Field, SecretStr, ValidationInfo, field_validator, model_validator

from connector_core import (
    MAX_TIMEOUT,
    ConfigError,
    ConnectorConfig,
    FieldError,
    check_local_file,
    check_secret_text,
    config_error,
)
from connector_mongo._names import check_database_name
from connector_mongo._values import TYPE_REGISTRY

_MASK = "***"
DEFAULT_PORT = 27017
MAX_POOL = 10_000
"""The largest pool accepted: more connections than any server takes is a typo."""
MAX_NAME_LENGTH = 255

_PORT = re.compile(r"\d{1,5}")


class AuthMechanism(StrEnum):
    """How the client proves who it is (MongoDB's ``authMechanism``)."""

    SCRAM_SHA_1 = "SCRAM-SHA-1"
    SCRAM_SHA_256 = "SCRAM-SHA-256"
    MONGODB_X509 = "MONGODB-X509"


class ReadPreference(StrEnum):
    """Which members of a replica set serve reads."""

    PRIMARY = "primary"
    PRIMARY_PREFERRED = "primaryPreferred"
    SECONDARY = "secondary"
    SECONDARY_PREFERRED = "secondaryPreferred"
    NEAREST = "nearest"


class ReadConcern(StrEnum):
    """The consistency of what reads see (MongoDB's ``readConcernLevel``)."""

    LOCAL = "local"
    AVAILABLE = "available"
    MAJORITY = "majority"
    LINEARIZABLE = "linearizable"
    SNAPSHOT = "snapshot"


class Compressor(StrEnum):
    """Wire compression; zlib is built in, snappy and zstd need their extra
    (``pip install 'connector-mongo[zstd]'``)."""

    ZLIB = "zlib"
    SNAPPY = "snappy"
    ZSTD = "zstd"


# MongoDB's connection-string options (what a URL copied from Atlas or the docs says)
# and the field each one sets; durations in ms are turned into seconds.
_URI_OPTIONS: dict[str, str] = {
    "authsource": "auth_source",
    "authmechanism": "auth_mechanism",
    "replicaset": "replica_set",
    "tls": "tls",
    "ssl": "tls",
    "tlscafile": "tls_ca_file",
    "tlscertificatekeyfile": "tls_certificate_key_file",
    "tlscertificatekeyfilepassword": "tls_certificate_key_file_password",
    "tlsallowinvalidhostnames": "tls_allow_invalid_hostnames",
    "minpoolsize": "pool_min",
    "maxpoolsize": "pool_max",
    "readpreference": "read_preference",
    "readconcernlevel": "read_concern",
    "w": "w",
    "journal": "journal",
    "retryreads": "retry_reads",
    "retrywrites": "retry_writes",
    "appname": "app_name",
    "compressors": "compressors",
    "directconnection": "direct_connection",
}
_URI_MILLISECONDS: dict[str, str] = {
    "serverselectiontimeoutms": "server_selection_timeout",
    "connecttimeoutms": "connect_timeout",
    "sockettimeoutms": "socket_timeout",
    "wtimeoutms": "wtimeout",
}

_NUMBERS = (
    "pool_min",
    "pool_max",
    "server_selection_timeout",
    "socket_timeout",
    "wtimeout",
    "batch_size",
    "discover_sample",
)
_BOOLEANS = (
    "tls",
    "tls_allow_invalid_hostnames",
    "journal",
    "retry_reads",
    "retry_writes",
    "srv",
    "direct_connection",
)


def _check_text(value: str, what: str) -> None:
    if not value:
        raise ValueError(f"{what} must not be empty")
    if len(value) > MAX_NAME_LENGTH:
        raise ValueError(f"{what} must be at most {MAX_NAME_LENGTH} characters")
    if any(ord(c) < 0x20 or ord(c) == 0x7F for c in value):
        raise ValueError(f"{what} must not contain control characters")
    try:
        value.encode()
    except UnicodeEncodeError:
        raise ValueError(f"{what} must be valid UTF-8 text (no lone surrogates)") from None


def normalize_host(address: str, *, srv: bool) -> str:
    """``address`` as ``host:port`` (port 27017 when missing; a bare host name for SRV),
    or ValueError saying why (never echoing it)."""
    text = address.strip()
    if not text:
        raise ValueError("a host must not be empty")
    if any(ord(c) <= 0x20 or ord(c) == 0x7F for c in text) or any(c in text for c in "/@?#,"):
        raise ValueError("a host is host:port, without spaces, '/', '@', '?', '#' or ','")
    if text.startswith("["):  # [IPv6]:port
        host, sep, rest = text[1:].partition("]")
        if not sep or not host or (rest and not rest.startswith(":")):
            raise ValueError("an IPv6 host is written [address]:port")
        port_text = rest[1:] if rest else ""
        shown = f"[{host}]"
    else:
        host, sep, port_text = text.rpartition(":")
        if not sep:
            host, port_text = text, ""
        if not host or ":" in host:
            raise ValueError("a host is host:port ([address]:port for IPv6)")
        shown = host
    try:
        encoded = host.encode("idna")
    except UnicodeError:
        encoded = b""
    if not encoded or len(encoded) > 253:
        raise ValueError("a host must be a host name or an IP address")
    if srv:
        if port_text:
            raise ValueError("a mongodb+srv:// host has no port (DNS gives the ports)")
        return shown
    port_text = port_text or str(DEFAULT_PORT)
    if not _PORT.fullmatch(port_text) or not 1 <= int(port_text) <= 65535:
        raise ValueError("a host's port must be an integer from 1 to 65535")
    return f"{shown}:{int(port_text)}"


class MongoConfig(ConnectorConfig):
    """Configuration of :class:`MongoConnector`.

    Build it from fields, from a URL (``mongodb://user:password@h1:27017,h2/shop?
    replicaSet=rs0&w=majority``, ``mongodb+srv://user:password@cluster0.example.net/shop``;
    MongoDB's own connection-string options and this model's field names are both
    understood in the query) or from environment variables
    (``MongoConfig.from_env("MONGO_")``). Durations are seconds (``...MS`` options of a URL
    are milliseconds, as MongoDB spells them). Invalid input raises ConfigError naming
    every bad field; the password and the key file's password never appear in ``repr``,
    dumps, URLs or errors.
    """

    url_schemes: ClassVar[tuple[str, ...]] = ("mongodb", "mongodb+srv")

    srv: bool = Field(False, description="Look the servers up in DNS (mongodb+srv://).")
    hosts: tuple[str, ...] = Field(
        ("localhost:27017",),
        min_length=1,
        description="host:port of one or more servers (a comma-separated string is split); "
        "with srv=True one DNS name without a port.",
    )
    database: str = Field("test", description="The database the connector works in.")
    user: str | None = Field(None, description="User name (SCRAM) or None.")
    password: SecretStr | None = Field(None, description="The user's password.")
    auth_source: str | None = Field(
        None, description="Database holding the user (MongoDB's default: the database, or admin)."
    )
    auth_mechanism: AuthMechanism | None = Field(
        None, description="None: negotiated with the server (SCRAM-SHA-256 or -1)."
    )
    replica_set: str | None = Field(None, description="Name of the replica set to require.")
    direct_connection: bool | None = Field(
        None, description="Talk to the one host given, never discover the others."
    )

    # -- TLS ------------------------------------------------------------------------------
    tls: bool = Field(False, description="Encrypt connections (implied by mongodb+srv://).")
    tls_ca_file: Path | None = Field(None, description="CA bundle of the servers' certificates.")
    tls_certificate_key_file: Path | None = Field(
        None, description="Client certificate and key (PEM), for X.509 or mutual TLS."
    )
    tls_certificate_key_file_password: SecretStr | None = Field(
        None, description="Password of an encrypted tls_certificate_key_file."
    )
    tls_allow_invalid_hostnames: bool = Field(
        False, description="Accept a certificate naming another host. Off: keep it off."
    )

    # -- pool and timeouts ----------------------------------------------------------------
    pool_min: int = Field(0, ge=0, le=MAX_POOL, description="Connections kept open per server.")
    pool_max: int = Field(100, ge=1, le=MAX_POOL, description="Connections per server, at most.")
    server_selection_timeout: float = Field(
        10.0,
        gt=0,
        le=MAX_TIMEOUT,
        description="How long an operation waits for a suitable server before failing.",
    )
    socket_timeout: float | None = Field(
        None,
        gt=0,
        le=MAX_TIMEOUT,
        description="How long a socket waits for a reply (None: no limit but ``timeout``).",
    )

    # -- consistency ----------------------------------------------------------------------
    read_preference: ReadPreference = ReadPreference.PRIMARY
    read_concern: ReadConcern | None = Field(None, description="None: the server's default.")
    w: int | str | None = Field(
        None, description="Write concern: a number of members, 'majority' or a tag set name."
    )
    journal: bool | None = Field(None, description="Write concern: wait for the journal.")
    wtimeout: float | None = Field(
        None, gt=0, le=MAX_TIMEOUT, description="Write concern: how long to wait for w, seconds."
    )
    retry_reads: bool = Field(True, description="The driver retries a read once after a failover.")
    retry_writes: bool = Field(
        True, description="The driver retries a write once after a failover (replica sets)."
    )

    # -- client ---------------------------------------------------------------------------
    app_name: str = Field("connector-mongo", description="Shown in the server's logs.")
    compressors: tuple[Compressor, ...] = Field((), description="Wire compressors, in order.")
    batch_size: int = Field(
        1000, ge=1, le=1_000_000, description="Documents per round trip of find() and read()."
    )
    id_field: str = Field(
        "_id",
        description="The name _id goes by in records: read(), sample(), discover() and "
        "write() rename _id to it and back ('id' for records of SQL tables).",
    )
    discover_sample: int = Field(
        1000, ge=1, le=1_000_000, description="Documents discover() samples per collection."
    )

    # -- validation -------------------------------------------------------------------------

    @classmethod
    def fields_from_url(cls, url: str) -> dict[str, Any]:
        """``mongodb[+srv]://[user:password@]h1[:port],h2[:port]/[database][?options]``:
        every query option is one of MongoDB's (``authSource``, ``replicaSet``,
        ``serverSelectionTimeoutMS``, ...) or a field of this model. Raises ConfigError
        for another scheme or a malformed URL (never quoting the URL)."""
        problem, fields = _parse_url(url)
        if problem is not None:
            field, message = problem
            raise ConfigError(
                f"invalid {cls.__name__}: {field}: {message}", errors=[FieldError(field, message)]
            )
        return fields

    @field_validator(*_NUMBERS, mode="before")
    @classmethod
    def _numbers_are_not_booleans(cls, value: Any) -> Any:
        # pydantic takes True as 1: pool_max=True would be a pool of one.
        if isinstance(value, bool):
            raise ValueError("must be a number, not a boolean")
        return value

    @field_validator(*_BOOLEANS, mode="before")
    @classmethod
    def _boolean_spellings(cls, value: Any) -> Any:
        if isinstance(value, str) and value.strip().lower() in ("true", "false"):
            return value.strip().lower() == "true"
        return value

    @field_validator("hosts", "compressors", mode="before")
    @classmethod
    def _split_text(cls, value: Any) -> Any:
        # URLs and environment variables carry lists as "h1:27017,h2:27017".
        if isinstance(value, str):
            return tuple(part.strip() for part in value.split(",")) if value else ()
        return value

    @field_validator("hosts")
    @classmethod
    def _hosts_are_addresses(cls, value: tuple[str, ...], info: ValidationInfo) -> tuple[str, ...]:
        srv = info.data.get("srv") is True
        return tuple(normalize_host(host, srv=srv) for host in value)

    @field_validator("w", mode="before")
    @classmethod
    def _w_spellings(cls, value: Any) -> Any:
        if isinstance(value, bool):
            raise ValueError("must be a number of members, 'majority' or a tag set name")
        if isinstance(value, str) and value.strip().isdigit():
            return int(value.strip())
        return value

    @field_validator("w")
    @classmethod
    def _w_is_sane(cls, value: int | str | None) -> int | str | None:
        if isinstance(value, int) and not 0 <= value <= 50:
            raise ValueError("must be from 0 to 50 members (a replica set has at most 50)")
        if isinstance(value, str):
            _check_text(value, "w")
        return value

    @field_validator("database")
    @classmethod
    def _database_is_a_name(cls, value: str) -> str:
        check_database_name(value)
        return value

    @field_validator("auth_source")
    @classmethod
    def _auth_source_is_a_name(cls, value: str | None) -> str | None:
        if value is not None and value != "$external":  # X.509 and LDAP users live there
            check_database_name(value)
        return value

    @field_validator("id_field")
    @classmethod
    def _id_field_is_a_field(cls, value: str) -> str:
        if not value or "$" in value or "." in value or "\x00" in value:
            raise ValueError("must be a top-level field name (not empty, no '$', '.' or NUL)")
        return value

    @field_validator("user", "replica_set", "app_name")
    @classmethod
    def _names_are_text(cls, value: str | None, info: ValidationInfo) -> str | None:
        if value is not None:
            _check_text(value, f"the {info.field_name}")
        return value

    @field_validator("password", "tls_certificate_key_file_password")
    @classmethod
    def _secret_is_text(cls, value: SecretStr | None) -> SecretStr | None:
        return check_secret_text(value)

    @field_validator("tls_ca_file", "tls_certificate_key_file")
    @classmethod
    def _file_exists(cls, value: Path | None) -> Path | None:
        return check_local_file(value)

    @model_validator(mode="after")
    def _settings_agree(self) -> MongoConfig:
        if problems := self._disagreements():
            raise config_error(type(self).__name__, problems)
        return self

    def _disagreements(self) -> list[tuple[str, str]]:
        found: list[tuple[str, str]] = []
        if self.srv and len(self.hosts) != 1:
            found.append(("hosts", "mongodb+srv:// takes exactly one DNS name"))
        if self.direct_connection and len(self.hosts) != 1:
            found.append(("direct_connection", "a direct connection takes one host"))
        if self.srv and self.direct_connection:
            found.append(("direct_connection", "cannot be used with mongodb+srv://"))
        if self.password is not None and self.user is None:
            found.append(("password", "a password needs a user"))
        x509 = self.auth_mechanism is AuthMechanism.MONGODB_X509
        if x509:
            if self.password is not None:
                found.append(("password", "MONGODB-X509 authenticates with the certificate"))
            if self.tls_certificate_key_file is None:
                found.append(("tls_certificate_key_file", "MONGODB-X509 needs a certificate"))
        elif self.auth_mechanism is not None and self.user is None:
            found.append(("user", f"{self.auth_mechanism.value} needs a user"))
        elif self.user is not None and self.password is None:
            found.append(("password", "SCRAM needs the user's password"))
        tls = self.tls or self.srv
        if not tls:
            for name in (
                "tls_ca_file",
                "tls_certificate_key_file",
                "tls_certificate_key_file_password",
            ):
                if getattr(self, name) is not None:
                    found.append((name, "only used with tls=true"))
            if self.tls_allow_invalid_hostnames:
                found.append(("tls_allow_invalid_hostnames", "only used with tls=true"))
        if self.tls_certificate_key_file_password is not None and (
            self.tls_certificate_key_file is None
        ):
            found.append(("tls_certificate_key_file_password", "needs tls_certificate_key_file"))
        if self.pool_min > self.pool_max:
            found.append(("pool_min", "must not be larger than pool_max"))
        if len(set(self.compressors)) != len(self.compressors):
            found.append(("compressors", "each compressor at most once"))
        for compressor in self.compressors:
            module = {Compressor.SNAPPY: "snappy", Compressor.ZSTD: "zstandard"}.get(compressor)
            if module is not None and not _importable(module):
                codec = compressor.value
                found.append(
                    (
                        "compressors",
                        f"{codec} needs its codec: pip install 'connector-mongo[{codec}]'",
                    )
                )
        if self.w == 0 and self.journal:
            found.append(("journal", "an unacknowledged write (w=0) cannot wait for the journal"))
        return found

    # -- what the driver needs ------------------------------------------------------------

    def client_settings(self) -> dict[str, Any]:
        """Keyword arguments of ``AsyncMongoClient``. Never logged: they hold the password.

        Documents come back with timezone-aware datetimes (UTC) and UUIDs in the standard
        representation (subtype 4), whatever the URL said."""
        host: Any = f"mongodb+srv://{self.hosts[0]}" if self.srv else list(self.hosts)
        settings: dict[str, Any] = {
            "host": host,
            "tz_aware": True,
            "uuidRepresentation": "standard",
            "type_registry": TYPE_REGISTRY,
            "appname": self.app_name,
            "minPoolSize": self.pool_min,
            "maxPoolSize": self.pool_max,
            "serverSelectionTimeoutMS": _ms(self.server_selection_timeout),
            "connectTimeoutMS": _ms(self.connect_timeout),
            "socketTimeoutMS": _ms(self.socket_timeout) if self.socket_timeout else None,
            "readPreference": self.read_preference.value,
            "retryReads": self.retry_reads,
            "retryWrites": self.retry_writes,
            "connect": False,
        }
        if self.tls or self.srv:
            settings["tls"] = True
            settings["tlsAllowInvalidHostnames"] = self.tls_allow_invalid_hostnames
            if self.tls_ca_file is not None:
                settings["tlsCAFile"] = str(self.tls_ca_file)
            if self.tls_certificate_key_file is not None:
                settings["tlsCertificateKeyFile"] = str(self.tls_certificate_key_file)
            if self.tls_certificate_key_file_password is not None:
                key_password = self.tls_certificate_key_file_password.get_secret_value()
                settings["tlsCertificateKeyFilePassword"] = key_password
        if self.user is not None:
            settings["username"] = self.user
        if self.password is not None:
            settings["password"] = self.password.get_secret_value()
        if self.auth_source is not None:
            settings["authSource"] = self.auth_source
        elif self.auth_mechanism is AuthMechanism.MONGODB_X509:
            settings["authSource"] = "$external"
        if self.auth_mechanism is not None:
            settings["authMechanism"] = self.auth_mechanism.value
        if self.replica_set is not None:
            settings["replicaSet"] = self.replica_set
        if self.direct_connection is not None:
            settings["directConnection"] = self.direct_connection
        if self.read_concern is not None:
            settings["readConcernLevel"] = self.read_concern.value
        if self.w is not None:
            settings["w"] = self.w
        if self.journal is not None:
            settings["journal"] = self.journal
        if self.wtimeout is not None:
            settings["wTimeoutMS"] = _ms(self.wtimeout)
        if self.compressors:
            settings["compressors"] = ",".join(c.value for c in self.compressors)
        return settings

    # -- presentation -----------------------------------------------------------------------

    def connection_string(self, reveal: bool = False) -> str:
        """``mongodb://user:***@h1:27017,h2:27017/shop``; the password shows only with
        ``reveal=True``."""
        auth = ""
        if self.user is not None:
            auth = quote(self.user, safe="")
            if self.password is not None:
                secret = self.password.get_secret_value()
                auth += ":" + (quote(secret, safe="") if reveal else _MASK)
            auth += "@"
        scheme = "mongodb+srv" if self.srv else "mongodb"
        return f"{scheme}://{auth}{','.join(self.hosts)}/{quote(self.database, safe='')}"


def _importable(module: str) -> bool:
    import importlib.util

    return importlib.util.find_spec(module) is not None


def _ms(seconds: float) -> int:
    return max(1, round(seconds * 1000))


def _seconds_from_ms(value: str) -> Any:
    try:
        return float(value) / 1000
    except ValueError:
        return value  # left as text: validation names the field


def _parse_url(url: str) -> tuple[tuple[str, str] | None, dict[str, Any]]:
    """(problem, fields): ``problem`` is (field, message) when the URL cannot be used."""
    scheme, sep, rest = url.partition("://")
    if not sep:
        return ("url", "not a mongodb:// or mongodb+srv:// URL"), {}
    scheme = scheme.lower()
    if scheme not in ("mongodb", "mongodb+srv"):
        return ("url", "scheme must be mongodb or mongodb+srv"), {}
    try:
        # The netloc holds several host:port, which urlsplit's .port cannot read: split
        # it by hand, and let urlsplit find the path, query and fragment.
        parts = urlsplit("mongodb://" + rest)
    except ValueError:
        return ("url", "not a valid URL"), {}
    if parts.fragment:
        return ("url", "a mongodb:// URL has no fragment"), {}
    userinfo, at, hosts = parts.netloc.rpartition("@")
    fields: dict[str, Any] = {}
    if scheme == "mongodb+srv":
        fields["srv"] = True
    if at:
        user, colon, password = userinfo.partition(":")
        if user:
            fields["user"] = unquote(user)
        if colon:
            fields["password"] = unquote(password)
    if hosts:
        fields["hosts"] = unquote(hosts)
    database = unquote(parts.path.lstrip("/"))
    if database:
        fields["database"] = database
    for key, value in parse_qsl(parts.query, keep_blank_values=True):
        lowered = key.lower()
        if lowered in _URI_MILLISECONDS:
            fields[_URI_MILLISECONDS[lowered]] = _seconds_from_ms(value)
        elif lowered in _URI_OPTIONS:
            fields[_URI_OPTIONS[lowered]] = value
        else:
            fields[key] = value  # a field of the model, or an unknown one ConfigError names
    return None, fields
