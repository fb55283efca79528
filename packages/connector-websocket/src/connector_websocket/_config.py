"""WebSocketConfig: where to connect, how to authenticate, how the connection is kept."""

from __future__ import annotations

import json
import ssl
from enum import StrEnum
from pathlib import Path
from typing import Any, ClassVar
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

from pydantic import Field, SecretStr, field_validator, model_validator

from connector_core import (
    MAX_TIMEOUT,
    ConfigError,
    ConnectorConfig,
    FieldError,
    SettingsModel,
    check_local_file,
    check_secret_text,
    config_error,
    redact_url,
)

_SCHEMES = ("ws", "wss")
MAX_POOL_SIZE = 64
_TOKEN_CHARS = frozenset(
    "!#$%&'*+-.^_`|~0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"
)


class SecretMode(StrEnum):
    """How the client secret reaches the server."""

    HEADER = "header"
    """In a handshake header (``secret_header``, value ``secret_prefix + secret``)."""
    FIRST_MESSAGE = "first_message"
    """As the first text message after the handshake: ``{"type": "auth", "secret": ...}``."""


class Compression(StrEnum):
    """Per-message compression negotiated at the handshake."""

    DEFLATE = "deflate"
    NONE = "none"


class ReconnectSettings(SettingsModel):
    """How the agent dials again after losing its connection: exponential backoff (the
    core's :class:`~connector_core.RetryPolicy` delays, full jitter), bounded by
    ``max_attempts`` consecutive failed attempts (None: until stopped)."""

    initial_delay: float = Field(0.5, ge=0, le=MAX_TIMEOUT)
    max_delay: float = Field(30.0, ge=0, le=MAX_TIMEOUT)
    multiplier: float = Field(2.0, ge=1, le=100)
    jitter: bool = True
    max_attempts: int | None = Field(None, ge=1, le=1_000_000)


class WebSocketConfig(ConnectorConfig):
    """Configuration of :class:`WebSocketConnector` and :class:`WebSocketAgent`.

    Build it from fields, from a URL (``ws://host:8765/agent?heartbeat_interval=10``:
    query parameters that name a field set it, the others stay in the URL) or from
    environment variables (``WebSocketConfig.from_env("AGENT_")``). Durations are
    seconds. Invalid input raises ConfigError naming every bad field; the secret never
    appears in ``repr``, dumps, URLs or errors.
    """

    url_schemes: ClassVar[tuple[str, ...]] = _SCHEMES

    url: str = Field("ws://127.0.0.1:8765/", description="ws:// or wss:// URL of the server.")
    secret: SecretStr | None = Field(None, description="The client secret.")
    secret_mode: SecretMode = SecretMode.HEADER
    secret_header: str = Field("Authorization", description="Header carrying the secret.")
    secret_prefix: str = Field("Bearer ", description="Put before the secret in the header.")
    headers: dict[str, str] = Field(
        default_factory=dict, description="Extra handshake headers (no secrets: use `secret`)."
    )
    subprotocols: tuple[str, ...] = Field((), description="Offered subprotocols, in order.")
    user_agent: str | None = Field("connector-websocket", description="User-Agent header.")

    # -- keeping the connection -------------------------------------------------------------
    heartbeat_interval: float | None = Field(
        20.0,
        gt=0,
        le=MAX_TIMEOUT,
        description="Seconds between protocol pings (and heartbeat messages); None: off.",
    )
    pong_timeout: float = Field(
        20.0,
        gt=0,
        le=MAX_TIMEOUT,
        description="A ping unanswered this long means the connection is dead.",
    )
    heartbeat_message: dict[str, Any] | None = Field(
        None, description="JSON object the agent also sends every heartbeat_interval."
    )
    reconnect: ReconnectSettings = Field(default_factory=ReconnectSettings)
    close_timeout: float = Field(
        10.0, gt=0, le=MAX_TIMEOUT, description="How long a close waits for the server's."
    )

    # -- messages ---------------------------------------------------------------------------
    max_message_size: int | None = Field(
        2**20, ge=1, le=2**31, description="Largest incoming message, bytes (None: no limit)."
    )
    compression: Compression = Compression.DEFLATE

    # -- TLS (wss:// only) ------------------------------------------------------------------
    ssl_cafile: Path | None = Field(None, description="CA bundle that signs the server's cert.")
    ssl_certfile: Path | None = Field(None, description="Client certificate (PEM), mutual TLS.")
    ssl_keyfile: Path | None = Field(None, description="Client private key (PEM).")
    ssl_key_password: SecretStr | None = Field(None, description="Password of ssl_keyfile.")
    ssl_check_hostname: bool = Field(True, description="Check the server's name in its cert.")

    # -- the agent and the pool -------------------------------------------------------------
    handler_concurrency: int = Field(
        64, ge=1, le=100_000, description="Requests handled at once, at most."
    )
    blocking_workers: int | None = Field(
        None, ge=1, le=1024, description="Threads of run_blocking() (None: Python's default)."
    )
    pool_size: int = Field(1, ge=1, le=MAX_POOL_SIZE, description="Connections held.")
    throw_errors: bool = Field(
        False, description="The agent raises on connection loss instead of reconnecting."
    )

    # -- validation -------------------------------------------------------------------------

    @classmethod
    def fields_from_url(cls, url: str) -> dict[str, Any]:
        """``ws[s]://host[:port]/path?field=value``: query parameters that name a field
        set it; the others stay in ``url``. Raises ConfigError for another scheme."""
        try:
            parts = urlsplit(url)
        except ValueError:
            parts = None
        if parts is None or parts.scheme.lower() not in _SCHEMES:
            raise ConfigError(
                f"invalid {cls.__name__}: url: must be a ws:// or wss:// URL",
                errors=[FieldError("url", "must be a ws:// or wss:// URL")],
            )
        fields: dict[str, Any] = {}
        kept: list[tuple[str, str]] = []
        for key, value in parse_qsl(parts.query, keep_blank_values=True):
            if key in cls.model_fields and key != "url":
                fields[key] = (
                    _parse_json(value)
                    if key in ("headers", "heartbeat_message", "reconnect", "subprotocols")
                    else value
                )
            else:
                kept.append((key, value))
        fields["url"] = urlunsplit(parts._replace(query=urlencode(kept)))
        return fields

    @field_validator("url")
    @classmethod
    def _url_is_websocket(cls, value: str) -> str:
        try:
            parts = urlsplit(value)
            port = parts.port
        except ValueError:
            raise ValueError("not a valid URL") from None
        if parts.scheme.lower() not in _SCHEMES:
            raise ValueError("must be a ws:// or wss:// URL")
        if not parts.hostname:
            raise ValueError("has no host")
        if parts.username is not None or parts.password is not None:
            raise ValueError("must not hold credentials: put the secret in 'secret'")
        if parts.fragment:
            raise ValueError("must not have a fragment")
        if port == 0:
            raise ValueError("port must be from 1 to 65535")
        if any(ord(c) <= 0x20 or ord(c) == 0x7F for c in value):
            raise ValueError("must not contain spaces or control characters")
        return value

    @field_validator("secret", "ssl_key_password")
    @classmethod
    def _secret_is_text(cls, value: SecretStr | None) -> SecretStr | None:
        value = check_secret_text(value)
        if value is not None and any(
            ord(c) < 0x20 or ord(c) == 0x7F for c in value.get_secret_value()
        ):
            raise ValueError("must not contain control characters")
        return value

    @field_validator("secret_header")
    @classmethod
    def _header_name(cls, value: str) -> str:
        if not value or not set(value) <= _TOKEN_CHARS:
            raise ValueError("must be an HTTP header name")
        return value

    @field_validator("headers")
    @classmethod
    def _headers(cls, value: dict[str, str]) -> dict[str, str]:
        for name, text in value.items():
            if not name or not set(name) <= _TOKEN_CHARS:
                raise ValueError("every name must be an HTTP header name")
            if any((ord(c) < 0x20 and c != "\t") or ord(c) == 0x7F for c in text):
                raise ValueError("values must not contain control characters")
        return value

    @field_validator("subprotocols")
    @classmethod
    def _subprotocols(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        for name in value:
            if not name or not set(name) <= _TOKEN_CHARS:
                raise ValueError("every subprotocol must be a token (RFC 7230)")
        return value

    @field_validator("heartbeat_message")
    @classmethod
    def _heartbeat_is_json(cls, value: dict[str, Any] | None) -> dict[str, Any] | None:
        if value is not None:
            try:
                json.dumps(value)
            except (TypeError, ValueError):
                raise ValueError("must be a JSON object") from None
        return value

    @field_validator("ssl_cafile", "ssl_certfile", "ssl_keyfile")
    @classmethod
    def _file_exists(cls, value: Path | None) -> Path | None:
        return check_local_file(value)

    @model_validator(mode="after")
    def _settings_agree(self) -> WebSocketConfig:
        if problems := self._disagreements():
            raise config_error(type(self).__name__, problems)
        return self

    def _disagreements(self) -> list[tuple[str, str]]:
        found: list[tuple[str, str]] = []
        secure = self.secure
        for name in ("ssl_cafile", "ssl_certfile", "ssl_keyfile", "ssl_key_password"):
            if getattr(self, name) is not None and not secure:
                found.append((name, "only used with a wss:// URL"))
        if (self.ssl_certfile is None) != (self.ssl_keyfile is None):
            found.append(("ssl_keyfile", "ssl_certfile and ssl_keyfile go together"))
        elif secure:
            try:
                self.ssl_context()
            except (ssl.SSLError, OSError, ValueError) as exc:
                field = "ssl_keyfile" if self.ssl_certfile is not None else "ssl_cafile"
                reason = getattr(exc, "reason", None) or type(exc).__name__
                found.append((field, f"cannot be loaded ({reason})"))
        if self.secret_mode is SecretMode.FIRST_MESSAGE and self.secret is None:
            found.append(("secret_mode", "first_message needs a secret"))
        if self.heartbeat_message is not None and self.heartbeat_interval is None:
            found.append(("heartbeat_message", "needs a heartbeat_interval"))
        reserved = {self.secret_header.lower()} if self.secret is not None else set()
        if any(name.lower() in reserved for name in self.headers):
            found.append(("headers", "the secret header is set from 'secret'"))
        return found

    # -- what the driver needs --------------------------------------------------------------

    @property
    def secure(self) -> bool:
        return urlsplit(self.url).scheme.lower() == "wss"

    def ssl_context(self) -> ssl.SSLContext | None:
        """The TLS context of a wss:// URL (None for ws://)."""
        if not self.secure:
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

    def handshake_headers(self) -> dict[str, str]:
        """Headers of the opening handshake. Never logged: one may hold the secret."""
        headers = dict(self.headers)
        if self.secret is not None and self.secret_mode is SecretMode.HEADER:
            headers[self.secret_header] = self.secret_prefix + self.secret.get_secret_value()
        return headers

    def auth_message(self) -> str | None:
        """The first message of ``secret_mode=first_message`` (None otherwise)."""
        if self.secret is None or self.secret_mode is not SecretMode.FIRST_MESSAGE:
            return None
        return json.dumps({"type": "auth", "secret": self.secret.get_secret_value()})

    def connect_options(self) -> dict[str, Any]:
        """Keyword arguments of ``websockets.asyncio.client.connect``."""
        options: dict[str, Any] = {
            "additional_headers": self.handshake_headers() or None,
            "subprotocols": list(self.subprotocols) or None,
            "compression": None if self.compression is Compression.NONE else "deflate",
            "user_agent_header": self.user_agent,
            "open_timeout": self.connect_timeout,
            "ping_interval": self.heartbeat_interval,
            "ping_timeout": self.pong_timeout if self.heartbeat_interval is not None else None,
            "close_timeout": self.close_timeout,
            "max_size": self.max_message_size,
        }
        context = self.ssl_context()
        if context is not None:
            options["ssl"] = context
        return options

    # -- presentation -----------------------------------------------------------------------

    def connection_string(self, reveal: bool = False) -> str:
        """The URL (credential-like query values masked unless ``reveal``)."""
        return self.url if reveal else redact_url(self.url)


def _parse_json(value: str) -> Any:
    try:
        return json.loads(value)
    except ValueError:
        return value
