"""PostgresConfig: where the server is, how to authenticate, how the pool behaves."""

from __future__ import annotations

import re
import ssl
from enum import StrEnum
from pathlib import Path
from typing import Any, ClassVar, Literal
from urllib.parse import quote, urlencode, urlsplit

from pydantic import Field, SecretStr, ValidationInfo, field_validator, model_validator

from connector_core import (
    MAX_TIMEOUT,
    ConfigError,
    ConnectorConfig,
    FieldError,
    check_local_file,
    config_error,
)
from connector_postgres._identifiers import quote_ident

_MASK = "***"

# Limits the server (or the OS) enforces only when a connection is made, checked at
# construction instead (docs/decisions/0052):
MAX_NAME_BYTES = 63  # NAMEDATALEN - 1: longer role, database and schema names are cut
# Durations are at most connector-core's MAX_TIMEOUT, a week (longer is a typo): well
# inside statement_timeout's range on the server (INT_MAX milliseconds, ~24.8 days).
MAX_CONNECTIONS = 262_143  # MAX_BACKENDS: max_connections can never be higher
MAX_FETCH_ROWS = 2_147_483_647  # a fetch's row count is an int32 in the protocol
MAX_STARTUP_PACKET = 10_000  # bytes after the length; a longer one is dropped unanswered
_SOCKET_PATH_BYTES = 107  # sun_path (108 on Linux) less its NUL
_SOCKET_FILE = "/.s.PGSQL.65535"  # what libpq and asyncpg add to a socket directory
# Startup-packet parameters that are not settings: given in server_settings they would
# replace the connection's role or database ("replication" would make it a replication
# connection); and settings that have a field of their own, which checks them.
_NOT_SETTINGS = frozenset({"user", "database"})
_SETTING_FIELDS = frozenset({"application_name", "search_path", "statement_timeout"})
# A run-time setting's name: an identifier, or dotted identifiers for an extension's.
_SETTING_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_$]*(?:\.[A-Za-z_][A-Za-z0-9_$]*)*")

# A bulk call's deadline when bulk_timeout is not set (docs/decisions/0049): a floor of
# 1,000 records/s, ~100x below the slowest write path measured (pipelined upserts), and
# ten operation timeouts when the number of records is not known up front.
BULK_SECONDS_PER_ROW = 0.001
BULK_UNKNOWN_SIZE_FACTOR = 10


class SslMode(StrEnum):
    """libpq's ``sslmode`` values (``allow`` is not offered: it only downgrades)."""

    DISABLE = "disable"
    PREFER = "prefer"
    REQUIRE = "require"
    VERIFY_CA = "verify-ca"
    VERIFY_FULL = "verify-full"


class IsolationLevel(StrEnum):
    """Transaction isolation levels (PostgreSQL runs READ UNCOMMITTED as READ COMMITTED)."""

    READ_COMMITTED = "read_committed"
    REPEATABLE_READ = "repeatable_read"
    SERIALIZABLE = "serializable"
    READ_UNCOMMITTED = "read_uncommitted"


def _split_names(value: Any) -> Any:
    # URLs and environment variables carry lists as "a,b,c".
    if isinstance(value, str):
        return tuple(part.strip() for part in value.split(",") if part.strip())
    return value


class PostgresConfig(ConnectorConfig):
    """Configuration of :class:`PostgresConnector`.

    Build it from fields, from a URL (``postgresql://user:pass@host:5432/db?sslmode=require``,
    where every query parameter names a field) or from environment variables
    (``PostgresConfig.from_env("PG_")``). Invalid input raises ConfigError naming every
    bad field; the password never appears in ``repr``, dumps, URLs or errors.
    """

    url_schemes: ClassVar[tuple[str, ...]] = ("postgresql", "postgres")

    host: str = Field(
        "localhost", min_length=1, description="Server host name, IP, or socket directory."
    )
    port: int = Field(5432, ge=1, le=65535)
    database: str | None = Field(None, min_length=1, description="Database (default: the user).")
    user: str | None = Field(None, min_length=1, description="Role name (default: the OS user).")
    password: SecretStr | None = None

    schemas: tuple[str, ...] = Field(
        ("public",),
        min_length=1,
        description="Schemas that discover() lists and stream names resolve in, in order.",
    )
    search_path: tuple[str, ...] | None = Field(
        None, description="Server search_path for every connection (None: server default)."
    )

    pool_min: int = Field(
        1, ge=0, le=MAX_CONNECTIONS, description="Connections the pool keeps open."
    )
    pool_max: int = Field(
        10, ge=1, le=MAX_CONNECTIONS, description="Most connections the pool opens."
    )
    max_inactive_connection_lifetime: float = Field(
        300.0,
        ge=0,
        le=MAX_TIMEOUT,
        description="Close idle pooled connections after this many seconds (0: never).",
    )
    max_queries: int = Field(
        50_000, ge=1, description="Replace a connection after this many queries."
    )
    command_timeout: float | None = Field(
        None,
        gt=0,
        le=MAX_TIMEOUT,
        description="Client-side timeout of each statement, seconds (asyncpg).",
    )
    statement_timeout: float | None = Field(
        None, gt=0, le=MAX_TIMEOUT, description="Server-side statement_timeout, seconds."
    )
    application_name: str = Field("connector-postgres", max_length=63)
    statement_cache_size: int = Field(
        100, ge=0, description="Prepared statements cached per connection (0 behind PgBouncer)."
    )

    sslmode: SslMode = SslMode.PREFER
    sslrootcert: Path | None = Field(None, description="CA bundle that signs the server's cert.")
    sslcert: Path | None = Field(None, description="Client certificate (PEM).")
    sslpassword: SecretStr | None = Field(None, description="Password of an encrypted sslkey.")
    sslkey: Path | None = Field(None, description="Client private key (PEM).")

    server_settings: dict[str, str] = Field(
        default_factory=dict, description="Extra run-time settings sent at connect."
    )

    decode_json: bool = Field(
        True, description="json/jsonb as Python values (False: as their text, asyncpg's way)."
    )
    batch_size: int = Field(
        1_000,
        ge=1,
        le=MAX_FETCH_ROWS,
        description="Default rows per fetch of stream() and per page of read().",
    )
    read_scan: Literal["cursor", "keyset"] = Field(
        "cursor",
        description=(
            "How read() scans by default: 'cursor' (one server-side cursor in a read-only "
            "REPEATABLE READ transaction) or 'keyset' (one query per page, no transaction "
            "held between pages)."
        ),
    )
    upsert_copy_threshold: int = Field(
        1_000,
        ge=1,
        description="Upserts of at least this many records go through COPY into a temp table.",
    )
    bulk_timeout: float | None = Field(
        None,
        gt=0,
        le=MAX_TIMEOUT,
        description=(
            "Deadline of one write(), copy_in(), copy_out() or copy_out_query() call and "
            "of the first fetch (the scan) of a cursor read(), "
            "seconds (None: scaled from timeout, see bulk_deadline())."
        ),
    )
    tcp_keepalive: float | None = Field(
        60.0,
        ge=2,
        le=7200,
        description=(
            "Seconds after which a connection whose peer stopped answering is closed by the "
            "OS (TCP keepalive probes and TCP_USER_TIMEOUT; None: the OS defaults, hours)."
        ),
    )
    catalog_cache_ttl: float = Field(
        60.0,
        ge=0,
        le=MAX_TIMEOUT,
        description=(
            "Seconds a table's catalog look-up is reused by read/write/copy calls "
            "(0: look it up on every call)."
        ),
    )

    @classmethod
    def fields_from_url(cls, url: str) -> dict[str, Any]:
        """As :meth:`ConnectorConfig.fields_from_url`, but a bad port (``:99999``,
        ``:abc``) is a ConfigError naming ``port``, not the whole ``url``."""
        if _bad_url_port(url):
            message = "must be an integer from 1 to 65535"
            raise ConfigError(
                f"invalid {cls.__name__}: port: {message}",
                errors=[FieldError("port", message)],
            )
        return super().fields_from_url(url)

    @field_validator(
        "port",
        "pool_min",
        "pool_max",
        "max_queries",
        "statement_cache_size",
        "batch_size",
        "upsert_copy_threshold",
        "max_inactive_connection_lifetime",
        "command_timeout",
        "statement_timeout",
        "bulk_timeout",
        "tcp_keepalive",
        "catalog_cache_ttl",
        mode="before",
    )
    @classmethod
    def _numbers_are_not_booleans(cls, value: Any) -> Any:
        # pydantic takes True as 1: port=True would connect to port 1, and a timeout of
        # True would be one second.
        if isinstance(value, bool):
            raise ValueError("must be a number, not a boolean")
        return value

    @field_validator("schemas", "search_path", mode="before")
    @classmethod
    def _names_from_text(cls, value: Any) -> Any:
        return _split_names(value)

    @field_validator("schemas", "search_path")
    @classmethod
    def _names_not_blank(cls, value: tuple[str, ...] | None) -> tuple[str, ...] | None:
        if value is not None:
            if any(not name for name in value):
                raise ValueError("schema names must not be empty")
            for name in value:
                _check_name(name, "schema names")
        return value

    @field_validator("host")
    @classmethod
    def _host_is_reachable_text(cls, value: str) -> str:
        _check_text(value, "the host")
        if value.startswith("/"):  # a Unix socket directory
            if len(value.encode()) + len(_SOCKET_FILE) > _SOCKET_PATH_BYTES:
                raise ValueError(
                    f"a socket directory must be at most "
                    f"{_SOCKET_PATH_BYTES - len(_SOCKET_FILE)} bytes long"
                )
            return value
        try:
            ascii_form = value.encode("idna")  # what the resolver is given
        except UnicodeError:
            ascii_form = b""
        if not ascii_form or len(ascii_form.rstrip(b".")) > 253 or not ascii_form.isascii():
            raise ValueError(
                "must be a host name (labels of 1 to 63 characters), an IP address "
                "or a socket directory"
            )
        if any(byte <= 0x20 or byte == 0x7F for byte in ascii_form):
            raise ValueError("must not contain spaces or control characters")
        return value

    @field_validator("user", "database")
    @classmethod
    def _names_fit(cls, value: str | None, info: ValidationInfo) -> str | None:
        if value is not None:
            _check_name(value, f"the {info.field_name}")
        return value

    @field_validator("application_name")
    @classmethod
    def _application_name_is_text(cls, value: str) -> str:
        _check_text(value, "the application name")
        return value

    @field_validator("password", "sslpassword")
    @classmethod
    def _secret_is_text(cls, value: SecretStr | None) -> SecretStr | None:
        if value is not None:
            _check_text(value.get_secret_value(), "a password")
        return value

    @field_validator("server_settings")
    @classmethod
    def _settings_are_text(cls, value: dict[str, str]) -> dict[str, str]:
        for key, setting in value.items():
            if not key:
                raise ValueError("setting names must not be empty")
            lowered = key.lower()
            if lowered in _SETTING_FIELDS:
                raise ValueError(f"set {lowered} with the field of that name, not here")
            if lowered == "replication":
                raise ValueError("replication connections are not supported")
            if lowered in _NOT_SETTINGS:
                raise ValueError(f"{lowered} is not a setting: use the field of that name")
            if not _SETTING_NAME.fullmatch(key):
                raise ValueError(
                    "setting names are identifiers (letters, digits, _ and $), dotted for "
                    "an extension's settings"
                )
            _check_text(setting, "setting values")
        return value

    @model_validator(mode="after")
    def _startup_packet_fits(self) -> PostgresConfig:
        # The server reads at most MAX_STARTUP_PACKET bytes of the packet that opens a
        # connection and drops the connection without an error otherwise, which would
        # look like a transient network failure.
        size = self.startup_packet_size()
        if size > MAX_STARTUP_PACKET:
            message = (
                f"the connection's startup packet would be {size} bytes; PostgreSQL "
                f"accepts at most {MAX_STARTUP_PACKET}: shorten search_path or server_settings"
            )
            # Only these can grow that large (names are at most 63 bytes each).
            fields = [f for f in ("search_path", "server_settings") if getattr(self, f)]
            raise config_error(
                type(self).__name__, [(f, message) for f in fields or ["server_settings"]]
            )
        return self

    @field_validator("pool_max")
    @classmethod
    def _pool_bounds(cls, value: int, info: ValidationInfo) -> int:
        pool_min = info.data.get("pool_min")
        if isinstance(pool_min, int) and pool_min > value:
            raise ValueError("must be at least pool_min")
        return value

    @field_validator("sslrootcert", "sslcert", "sslkey")
    @classmethod
    def _file_exists(cls, value: Path | None) -> Path | None:
        if value is not None:
            try:
                str(value).encode()  # it travels in a UTF-8 DSN under sslmode=prefer
            except UnicodeEncodeError:
                raise ValueError("not a usable path (UnicodeEncodeError)") from None
        return check_local_file(value)

    @field_validator("sslrootcert")
    @classmethod
    def _root_cert_loads(cls, value: Path | None) -> Path | None:
        if value is not None:
            reason = None
            try:
                ssl.create_default_context().load_verify_locations(cafile=str(value))
            except (ssl.SSLError, OSError, ValueError) as exc:
                reason = _ssl_reason(exc)
            if reason is not None:  # raised here: nothing chains the driver's error
                raise ValueError(f"not a usable CA bundle ({reason})")
        return value

    @field_validator("sslkey")
    @classmethod
    def _cert_and_key_together(cls, value: Path | None, info: ValidationInfo) -> Path | None:
        if "sslcert" not in info.data:  # sslcert itself is bad: already reported
            return value
        cert = info.data["sslcert"]
        if (cert is None) != (value is None):
            raise ValueError("sslcert and sslkey go together: give both or neither")
        if cert is not None and value is not None:
            secret = info.data.get("sslpassword")
            password = secret.get_secret_value() if secret is not None else None
            reason = None
            try:
                context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
                context.load_cert_chain(str(cert), str(value), password=password)
            except (ssl.SSLError, OSError, ValueError) as exc:
                reason = _ssl_reason(exc)
            if reason is not None:  # raised here: nothing chains the key password's error
                raise ValueError(f"sslcert and sslkey cannot be loaded together ({reason})")
        return value

    # -- presentation -------------------------------------------------------------------

    def connection_string(self, reveal: bool = False) -> str:
        """``postgresql://user:***@host:port/database``; the password shows only with
        ``reveal=True``. SSL and pool settings are not part of the string."""
        auth = ""
        if self.user:
            auth = quote(self.user, safe="")
            if self.password is not None:
                secret = self.password.get_secret_value()
                auth += ":" + (quote(secret, safe="") if reveal else _MASK)
            auth += "@"
        host = f"[{self.host}]" if ":" in self.host and not self.host.startswith("/") else self.host
        path = f"/{quote(self.database, safe='')}" if self.database else ""
        return f"postgresql://{auth}{quote(host, safe='[]:/')}:{self.port}{path}"

    # -- deadlines ------------------------------------------------------------------------

    def bulk_deadline(self, rows: int | None) -> float | None:
        """The deadline, in seconds, of one bulk call (``write``, ``copy_in``,
        ``copy_out``, ``copy_out_query``) moving ``rows`` records (None: not known up front).

        ``bulk_timeout`` when it is set. Otherwise scaled from ``timeout``: ``timeout``
        plus 1 ms per record when the count is known (``write()``, ``copy_in()`` of a
        list or tuple), so a one-record write fails like any other call and a million
        records get about 17 more minutes; ``10 * timeout`` when it is not. None only when
        both are None. See docs/decisions/0049."""
        if self.bulk_timeout is not None:
            return self.bulk_timeout
        if self.timeout is None:
            return None
        if rows is None:
            return self.timeout * BULK_UNKNOWN_SIZE_FACTOR
        return self.timeout + rows * BULK_SECONDS_PER_ROW

    # -- what the driver needs ----------------------------------------------------------

    def ssl_argument(self) -> ssl.SSLContext | str | bool:
        """The ``ssl`` argument for asyncpg: False, ``"prefer"`` or an SSLContext.

        ``prefer`` stays a mode name (an SSLContext would turn it into ``require``: no
        plain-text fallback); its client certificate goes in :meth:`driver_dsn`."""
        if self.sslmode is SslMode.DISABLE:
            return False
        if self.sslmode is SslMode.PREFER:
            return "prefer"
        verify = self.sslmode is not SslMode.REQUIRE or self.sslrootcert is not None
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
        context.check_hostname = self.sslmode is SslMode.VERIFY_FULL
        if verify:
            context.verify_mode = ssl.CERT_REQUIRED
            if self.sslrootcert is not None:
                context.load_verify_locations(cafile=str(self.sslrootcert))
            else:
                context.load_default_certs()
        else:
            context.verify_mode = ssl.CERT_NONE
        if self.sslcert is not None and self.sslkey is not None:
            key_password = self.sslpassword.get_secret_value() if self.sslpassword else None
            context.load_cert_chain(str(self.sslcert), str(self.sslkey), password=key_password)
        return context

    def driver_dsn(self) -> str | None:
        """A DSN holding only what asyncpg takes from nowhere else: the client
        certificate, key and key password under ``sslmode=prefer`` (with ``prefer``
        asyncpg reads them from the DSN or the environment, never from an SSLContext).
        None when there is nothing to carry. Never logged: it may hold the key password.
        ``prefer`` does not verify the server's certificate (as in libpq), so
        ``sslrootcert`` has no effect there: use ``verify-ca`` or ``verify-full``."""
        if self.sslmode is not SslMode.PREFER or self.sslcert is None or self.sslkey is None:
            return None
        query = {"sslcert": str(self.sslcert), "sslkey": str(self.sslkey)}
        if self.sslpassword is not None:
            query["sslpassword"] = self.sslpassword.get_secret_value()
        return "postgresql://?" + urlencode(query)

    def startup_packet_size(self) -> int:
        """Bytes of the packet asyncpg opens each connection with, not counting its
        4-byte length (as the server counts it); user and database count at their
        longest when they are left to defaults."""
        pairs = {"client_encoding": "'utf-8'", **self.all_server_settings()}
        pairs["user"] = self.user or "u" * MAX_NAME_BYTES
        pairs["database"] = self.database or "d" * MAX_NAME_BYTES
        body = sum(len(k.encode()) + len(v.encode()) + 2 for k, v in pairs.items())
        return 4 + body + 1  # protocol version, name/value pairs, terminator

    def all_server_settings(self) -> dict[str, str]:
        """Run-time settings sent in the startup packet of every connection."""
        settings = {"application_name": self.application_name}
        if self.search_path is not None:
            settings["search_path"] = ", ".join(quote_ident(s) for s in self.search_path)
        if self.statement_timeout is not None:
            settings["statement_timeout"] = str(max(1, round(self.statement_timeout * 1000)))
        settings.update(self.server_settings)
        return settings


def _check_text(value: str, what: str) -> None:
    """What every string sent to the server must be (the protocol ends strings with NUL)."""
    if "\x00" in value:
        raise ValueError(f"{what} must not contain NUL characters")


def _check_name(value: str, what: str) -> None:
    _check_text(value, what)
    if len(value.encode()) > MAX_NAME_BYTES:
        raise ValueError(
            f"{what} must be at most {MAX_NAME_BYTES} bytes (PostgreSQL cuts longer names, "
            "which would then name something else)"
        )


def _os_reason(exc: BaseException) -> str:
    if isinstance(exc, OSError) and exc.strerror:
        return exc.strerror  # "File name too long": no file name in it
    return type(exc).__name__


def _ssl_reason(exc: BaseException) -> str:
    if isinstance(exc, ssl.SSLError) and exc.reason:
        return str(exc.reason)
    return type(exc).__name__


def _bad_url_port(url: str) -> bool:
    """Whether ``url`` parses but for its port."""
    try:
        parts = urlsplit(url)
    except ValueError:
        return False
    try:
        port = parts.port
    except ValueError:
        hostport = parts.netloc.rpartition("@")[2]
        tail = hostport.rpartition("]")[2] if hostport.startswith("[") else hostport
        return ":" in tail and bool(tail.rpartition(":")[2])
    return port == 0
