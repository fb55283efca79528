"""KafkaConfig: which brokers, how to authenticate, how the producer and consumers behave."""

from __future__ import annotations

import importlib.util
import re
import ssl
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

_MASK = "***"
INT32_MAX = 2**31 - 1
MAX_LINGER = 60.0
"""The longest ``linger`` accepted, seconds: every produce() may wait that long for company."""
MAX_NAME_LENGTH = 255
"""Client, group and transactional ids are sent in every request header or group call;
longer ones are a mistake (Kafka's own topic names stop at 249 characters)."""
DEFAULT_PORT = 9092

_PORT = re.compile(r"\d{1,5}")


class SecurityProtocol(StrEnum):
    """How the connection to each broker is secured (Kafka's ``security.protocol``)."""

    PLAINTEXT = "PLAINTEXT"
    SSL = "SSL"
    SASL_PLAINTEXT = "SASL_PLAINTEXT"
    SASL_SSL = "SASL_SSL"


class SaslMechanism(StrEnum):
    """SASL mechanisms the connector authenticates with."""

    PLAIN = "PLAIN"
    SCRAM_SHA_256 = "SCRAM-SHA-256"
    SCRAM_SHA_512 = "SCRAM-SHA-512"


class Acks(StrEnum):
    """How many replicas must have a message before the broker acknowledges it."""

    ALL = "all"
    LEADER = "1"
    NONE = "0"


class Compression(StrEnum):
    """Producer batch compression. gzip is built in; the others need their extra
    (``pip install 'connector-kafka[lz4]'``)."""

    NONE = "none"
    GZIP = "gzip"
    SNAPPY = "snappy"
    LZ4 = "lz4"
    ZSTD = "zstd"


class OffsetReset(StrEnum):
    """Where a group with no committed offset starts reading a partition."""

    EARLIEST = "earliest"
    LATEST = "latest"
    NONE = "none"


class IsolationLevel(StrEnum):
    """Whether consumers see messages of open and aborted transactions."""

    READ_COMMITTED = "read_committed"
    READ_UNCOMMITTED = "read_uncommitted"


class Format(StrEnum):
    """The built-in serializers a config can name (code can pass any
    :class:`~connector_kafka.Serializer` instead)."""

    BYTES = "bytes"
    STRING = "string"
    JSON = "json"


# The codecs that need a library besides the standard one, and the extra that brings it.
_CODEC_MODULE = {
    Compression.SNAPPY: "cramjam",
    Compression.LZ4: "cramjam",
    Compression.ZSTD: "cramjam",
}

_NUMBERS = (
    "request_timeout",
    "linger",
    "batch_size",
    "max_request_size",
    "transaction_timeout",
    "max_poll_records",
    "session_timeout",
    "heartbeat_interval",
    "max_poll_interval",
    "rebalance_timeout",
    "drain_timeout",
    "commit_interval",
    "discover_sample",
)


def _split_servers(value: Any) -> Any:
    # URLs and environment variables carry lists as "h1:9092,h2:9092".
    if isinstance(value, str):
        return tuple(part.strip() for part in value.split(","))
    return value


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


def normalize_server(address: str) -> str:
    """``address`` as ``host:port`` (port 9092 when missing), or ValueError saying why
    (never echoing it)."""
    text = address.strip()
    if not text:
        raise ValueError("a bootstrap server must not be empty")
    if any(ord(c) <= 0x20 or ord(c) == 0x7F for c in text) or "/" in text or "@" in text:
        raise ValueError("a bootstrap server is host:port, without spaces, '/' or '@'")
    if text.startswith("["):  # [IPv6]:port
        host, sep, rest = text[1:].partition("]")
        if not sep or not host or (rest and not rest.startswith(":")):
            raise ValueError("an IPv6 bootstrap server is written [address]:port")
        port_text = rest[1:] if rest else str(DEFAULT_PORT)
        shown = f"[{host}]"
    else:
        host, sep, port_text = text.rpartition(":")
        if not sep:
            host, port_text = text, str(DEFAULT_PORT)
        if not host or ":" in host:
            raise ValueError("a bootstrap server is host:port ([address]:port for IPv6)")
        shown = host
    if not _PORT.fullmatch(port_text) or not 1 <= int(port_text) <= 65535:
        raise ValueError("a bootstrap server's port must be an integer from 1 to 65535")
    try:
        encoded = host.encode("idna")
    except UnicodeError:
        encoded = b""
    if not encoded or len(encoded) > 253:
        raise ValueError("a bootstrap server's host must be a host name or an IP address")
    return f"{shown}:{int(port_text)}"


class KafkaConfig(ConnectorConfig):
    """Configuration of :class:`KafkaConnector`.

    Build it from fields, from a URL (``kafka://h1:9092,h2:9092/?group_id=orders&acks=all``;
    ``kafka://user:password@host:9092/?security_protocol=SASL_SSL`` for SASL; every query
    parameter names a field) or from environment variables (``KafkaConfig.from_env("KAFKA_")``).
    Durations are seconds. Invalid input raises ConfigError naming every bad field; the
    SASL password and the key password never appear in ``repr``, dumps, URLs or errors.
    """

    url_schemes: ClassVar[tuple[str, ...]] = ("kafka",)

    bootstrap_servers: tuple[str, ...] = Field(
        ("localhost:9092",),
        min_length=1,
        description="host:port of one or more brokers (a comma-separated string is split).",
    )
    client_id: str = Field(
        "connector-kafka", description="Sent with every request (broker logs, quotas)."
    )

    # -- security -------------------------------------------------------------------------
    security_protocol: SecurityProtocol = SecurityProtocol.PLAINTEXT
    sasl_mechanism: SaslMechanism = SaslMechanism.PLAIN
    sasl_username: str | None = Field(None, description="SASL user (SASL_PLAINTEXT / SASL_SSL).")
    sasl_password: SecretStr | None = Field(None, description="SASL password.")
    ssl_cafile: Path | None = Field(
        None, description="CA bundle that signs the brokers' certificates."
    )
    ssl_certfile: Path | None = Field(None, description="Client certificate (PEM), for mutual TLS.")
    ssl_keyfile: Path | None = Field(None, description="Client private key (PEM).")
    ssl_key_password: SecretStr | None = Field(
        None, description="Password of an encrypted ssl_keyfile."
    )
    ssl_check_hostname: bool = Field(
        True, description="Check the broker's name in its certificate."
    )

    # -- producer ---------------------------------------------------------------------------
    acks: Acks = Field(
        Acks.ALL, description="Replicas that must have a message before it is acked."
    )
    enable_idempotence: bool = Field(
        True, description="The driver retries sends without writing duplicates (needs acks=all)."
    )
    linger: float = Field(
        0.0,
        ge=0,
        le=MAX_LINGER,
        description="Seconds a send waits for more messages to batch with.",
    )
    batch_size: int = Field(16_384, ge=1, le=INT32_MAX, description="Bytes per partition batch.")
    compression: Compression = Compression.NONE
    max_request_size: int = Field(
        1_048_576, ge=1, le=INT32_MAX, description="Largest produce request (and message), bytes."
    )
    request_timeout: float = Field(
        30.0,
        gt=0,
        le=MAX_TIMEOUT,
        description="Deadline of each broker request, and of produce()'s wait for its ack.",
    )
    transactional_id: str | None = Field(
        None, description="Makes the producer transactional (transaction())."
    )
    transaction_timeout: float = Field(
        60.0, gt=0, le=MAX_TIMEOUT, description="The broker aborts a transaction open longer."
    )

    # -- consumers --------------------------------------------------------------------------
    group_id: str | None = Field(None, description="Default consumer group of consume()/process().")
    auto_offset_reset: OffsetReset = OffsetReset.EARLIEST
    isolation_level: IsolationLevel = IsolationLevel.READ_COMMITTED
    max_poll_records: int = Field(
        500, ge=1, le=INT32_MAX, description="Messages per fetch, at most."
    )
    session_timeout: float = Field(
        10.0, gt=0, le=MAX_TIMEOUT, description="A member silent this long leaves the group."
    )
    heartbeat_interval: float = Field(3.0, gt=0, le=MAX_TIMEOUT)
    max_poll_interval: float = Field(
        300.0, gt=0, le=MAX_TIMEOUT, description="Longest pause between fetches of a member."
    )
    rebalance_timeout: float = Field(
        30.0, gt=0, le=MAX_TIMEOUT, description="How long the broker waits for members to rejoin."
    )
    drain_timeout: float = Field(
        10.0,
        gt=0,
        le=MAX_TIMEOUT,
        description="How long a rebalance or stop waits for in-flight messages to finish.",
    )
    commit_interval: float = Field(
        5.0, gt=0, le=MAX_TIMEOUT, description="How often handled offsets are committed."
    )

    # -- records ----------------------------------------------------------------------------
    key_format: Format = Field(
        Format.STRING, description="Serializer of keys, unless given in code."
    )
    value_format: Format = Field(
        Format.BYTES, description="Serializer of values, unless given in code."
    )
    discover_sample: int = Field(
        100, ge=0, le=10_000, description="Messages discover() reads per topic to infer fields."
    )

    # -- validation -------------------------------------------------------------------------

    @classmethod
    def fields_from_url(cls, url: str) -> dict[str, Any]:
        """``kafka://[user:password@]h1:9092,h2:9092[/]?field=value``: user and password
        are the SASL credentials, the hosts the bootstrap servers, every query parameter a
        field. Raises ConfigError for another scheme or a URL with a path."""
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
        # pydantic takes True as 1: batch_size=True would be a one-byte batch.
        if isinstance(value, bool):
            raise ValueError("must be a number, not a boolean")
        return value

    @field_validator("acks", mode="before")
    @classmethod
    def _acks_spellings(cls, value: Any) -> Any:
        # Kafka's own spellings: -1 is "all"; URLs and the environment give text.
        if isinstance(value, bool):
            raise ValueError("must be 'all', 1 or 0")
        if isinstance(value, int | str) and str(value).strip().lower() in ("-1", "all"):
            return Acks.ALL
        if isinstance(value, int) and value in (0, 1):
            return Acks(str(value))
        return value

    @field_validator("bootstrap_servers", mode="before")
    @classmethod
    def _servers_from_text(cls, value: Any) -> Any:
        return _split_servers(value)

    @field_validator("bootstrap_servers")
    @classmethod
    def _servers_are_addresses(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        return tuple(normalize_server(server) for server in value)

    @field_validator("client_id", "group_id", "transactional_id", "sasl_username")
    @classmethod
    def _names_are_text(cls, value: str | None, info: ValidationInfo) -> str | None:
        if value is not None:
            _check_text(value, f"the {info.field_name}")
        return value

    @field_validator("sasl_password", "ssl_key_password")
    @classmethod
    def _secret_is_text(cls, value: SecretStr | None) -> SecretStr | None:
        return check_secret_text(value)

    @field_validator("ssl_cafile", "ssl_certfile", "ssl_keyfile")
    @classmethod
    def _file_exists(cls, value: Path | None) -> Path | None:
        return check_local_file(value)

    @model_validator(mode="after")
    def _settings_agree(self) -> KafkaConfig:
        if problems := self._disagreements():
            raise config_error(type(self).__name__, problems)
        return self

    def _disagreements(self) -> list[tuple[str, str]]:
        found: list[tuple[str, str]] = []
        module = _CODEC_MODULE.get(self.compression)
        if module is not None and importlib.util.find_spec(module) is None:
            # Checked once the value is known to be one of ours: naming it echoes no input.
            codec = self.compression.value
            found.append(
                ("compression", f"{codec} needs its codec: pip install 'connector-kafka[{codec}]'")
            )
        if self.enable_idempotence and self.acks is not Acks.ALL:
            found.append(
                (
                    "acks",
                    "an idempotent producer needs acks='all' (or set enable_idempotence=false)",
                )
            )
        if self.transactional_id is not None and not self.enable_idempotence:
            found.append(
                ("enable_idempotence", "a transactional producer is idempotent: leave it on")
            )
        sasl = self.security_protocol in (
            SecurityProtocol.SASL_PLAINTEXT,
            SecurityProtocol.SASL_SSL,
        )
        tls = self.security_protocol in (SecurityProtocol.SSL, SecurityProtocol.SASL_SSL)
        if sasl:
            for name in ("sasl_username", "sasl_password"):
                if getattr(self, name) is None:
                    found.append((name, f"{self.security_protocol.value} needs it"))
        else:
            for name in ("sasl_username", "sasl_password"):
                if getattr(self, name) is not None:
                    found.append(
                        (name, "only used with security_protocol SASL_PLAINTEXT or SASL_SSL")
                    )
        ssl_files = ("ssl_cafile", "ssl_certfile", "ssl_keyfile", "ssl_key_password")
        if not tls:
            for name in ssl_files:
                if getattr(self, name) is not None:
                    found.append((name, "only used with security_protocol SSL or SASL_SSL"))
        elif (self.ssl_certfile is None) != (self.ssl_keyfile is None):
            found.append(("ssl_keyfile", "ssl_certfile and ssl_keyfile go together"))
        elif tls:
            reason = self._tls_problem()
            if reason is not None:
                found.append(reason)
        if self.heartbeat_interval >= self.session_timeout:
            found.append(("heartbeat_interval", "must be shorter than session_timeout"))
        if self.drain_timeout >= self.rebalance_timeout:
            found.append(
                (
                    "drain_timeout",
                    "must be shorter than rebalance_timeout (the group waits that long)",
                )
            )
        return found

    def _tls_problem(self) -> tuple[str, str] | None:
        try:
            self.ssl_context()
        except (ssl.SSLError, OSError, ValueError) as exc:
            field = "ssl_keyfile" if self.ssl_certfile is not None else "ssl_cafile"
            reason = (
                exc.reason if isinstance(exc, ssl.SSLError) and exc.reason else type(exc).__name__
            )
            return field, f"cannot be loaded ({reason})"
        return None

    # -- what the driver needs ------------------------------------------------------------

    def ssl_context(self) -> ssl.SSLContext | None:
        """The TLS context for SSL and SASL_SSL (None otherwise), verifying the brokers."""
        if self.security_protocol not in (SecurityProtocol.SSL, SecurityProtocol.SASL_SSL):
            return None
        context = ssl.create_default_context(
            cafile=str(self.ssl_cafile) if self.ssl_cafile is not None else None
        )
        context.check_hostname = self.ssl_check_hostname
        if self.ssl_certfile is not None and self.ssl_keyfile is not None:
            password = self.ssl_key_password.get_secret_value() if self.ssl_key_password else None
            context.load_cert_chain(
                str(self.ssl_certfile), str(self.ssl_keyfile), password=password
            )
        return context

    def client_settings(self) -> dict[str, Any]:
        """Keyword arguments every aiokafka client (producer, consumer, admin) takes.
        Never logged: they hold the SASL password."""
        settings: dict[str, Any] = {
            "bootstrap_servers": list(self.bootstrap_servers),
            "client_id": self.client_id,
            "request_timeout_ms": _ms(self.request_timeout),
            "security_protocol": self.security_protocol.value,
            "ssl_context": self.ssl_context(),
        }
        if self.security_protocol in (SecurityProtocol.SASL_PLAINTEXT, SecurityProtocol.SASL_SSL):
            settings["sasl_mechanism"] = self.sasl_mechanism.value
            settings["sasl_plain_username"] = self.sasl_username
            password = self.sasl_password
            settings["sasl_plain_password"] = password.get_secret_value() if password else None
        return settings

    def producer_settings(self) -> dict[str, Any]:
        """Keyword arguments of ``AIOKafkaProducer`` (besides :meth:`client_settings`)."""
        acks: int | str = "all" if self.acks is Acks.ALL else int(self.acks.value)
        settings: dict[str, Any] = {
            "acks": acks,
            "enable_idempotence": self.enable_idempotence,
            "linger_ms": _ms(self.linger),
            "max_batch_size": self.batch_size,
            "compression_type": None
            if self.compression is Compression.NONE
            else self.compression.value,
            "max_request_size": self.max_request_size,
        }
        if self.transactional_id is not None:
            settings["transactional_id"] = self.transactional_id
            settings["transaction_timeout_ms"] = _ms(self.transaction_timeout)
        return settings

    def consumer_settings(self, group_id: str | None) -> dict[str, Any]:
        """Keyword arguments of ``AIOKafkaConsumer`` for ``group_id`` (None: no group).
        Offsets are always committed by the connector, never by the driver's timer."""
        settings: dict[str, Any] = {
            "group_id": group_id,
            "enable_auto_commit": False,
            "auto_offset_reset": self.auto_offset_reset.value,
            "isolation_level": self.isolation_level.value,
            "max_poll_records": self.max_poll_records,
        }
        if group_id is not None:
            settings.update(
                session_timeout_ms=_ms(self.session_timeout),
                heartbeat_interval_ms=_ms(self.heartbeat_interval),
                max_poll_interval_ms=_ms(self.max_poll_interval),
                rebalance_timeout_ms=_ms(self.rebalance_timeout),
            )
        return settings

    @property
    def produce_timeout(self) -> float:
        """How long produce() waits for its acknowledgement: ``request_timeout``, or
        ``timeout`` when that is shorter."""
        if self.timeout is None:
            return self.request_timeout
        return min(self.timeout, self.request_timeout)

    def bulk_deadline(self, messages: int) -> float:
        """The deadline of one produce_many()/write() of ``messages`` messages: the
        produce timeout plus 1 ms per message (a floor of 1,000 messages/s)."""
        return self.produce_timeout + messages * 0.001

    # -- presentation -----------------------------------------------------------------------

    def connection_string(self, reveal: bool = False) -> str:
        """``kafka://user:***@h1:9092,h2:9092``; the password shows only with ``reveal=True``."""
        auth = ""
        if self.sasl_username is not None:
            auth = quote(self.sasl_username, safe="")
            if self.sasl_password is not None:
                secret = self.sasl_password.get_secret_value()
                auth += ":" + (quote(secret, safe="") if reveal else _MASK)
            auth += "@"
        return f"kafka://{auth}{','.join(self.bootstrap_servers)}"


def _ms(seconds: float) -> int:
    return round(seconds * 1000)


def _parse_url(url: str) -> tuple[tuple[str, str] | None, dict[str, Any]]:
    """(problem, fields): ``problem`` is (field, message) when the URL cannot be used."""
    scheme, sep, rest = url.partition("://")
    if not sep:
        return ("url", "not a kafka:// URL"), {}
    if scheme.lower() != "kafka":
        return ("url", "scheme must be kafka"), {}
    try:
        # The netloc holds several host:port, which urlsplit's .port cannot read: split
        # it by hand, and let urlsplit find the path, query and fragment.
        parts = urlsplit("kafka://" + rest)
    except ValueError:
        return ("url", "not a valid URL"), {}
    if parts.path not in ("", "/"):
        return ("url", "a kafka:// URL has no path (put settings in the query)"), {}
    if parts.fragment:
        return ("url", "a kafka:// URL has no fragment"), {}
    userinfo, at, hosts = parts.netloc.rpartition("@")
    fields: dict[str, Any] = {}
    if at:
        user, colon, password = userinfo.partition(":")
        if user:
            fields["sasl_username"] = unquote(user)
        if colon:
            fields["sasl_password"] = unquote(password)
    if hosts:
        fields["bootstrap_servers"] = hosts
    for key, value in parse_qsl(parts.query, keep_blank_values=True):
        fields[key] = value
    return None, fields
