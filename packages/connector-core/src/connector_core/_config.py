"""Configuration: frozen, strict pydantic models that never show a secret."""

from __future__ import annotations

import contextvars
import json
import os
from collections.abc import Iterable, Iterator, Mapping
from pathlib import Path
from typing import Any, ClassVar, Self
from urllib.parse import parse_qsl, quote, unquote, urlsplit

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    SecretStr,
    ValidationError,
    ValidatorFunctionWrapHandler,
    model_validator,
)
from pydantic_core import ErrorDetails

from connector_core._errors import ConfigError, FieldError
from connector_core._redaction import MASK


def _setattr_hiding_value(model: BaseModel, name: str, value: Any) -> None:
    try:
        BaseModel.__setattr__(model, name, value)
        return
    except ValidationError:
        # pydantic's frozen check echoes the assigned value (a secret, maybe) even with
        # hide_input_in_errors, and keeps it as the error's input: raise a ConfigError
        # naming the field instead, after this block so that nothing chains the original.
        pass
    message = "the config is frozen: build a new one, e.g. with model_copy(update=...)"
    raise ConfigError(
        f"invalid {type(model).__name__}: {name}: {message}", errors=[FieldError(name, message)]
    )


# Top-level validation raises ConfigError; nested settings leave their ValidationError to
# the enclosing model, which names every bad field at once.
_VALIDATING: contextvars.ContextVar[bool] = contextvars.ContextVar(
    "connector_core_validating", default=False
)


def _validate_or_config_error(title: str, data: Any, handler: ValidatorFunctionWrapHandler) -> Any:
    if _VALIDATING.get():
        return handler(data)
    token = _VALIDATING.set(True)
    try:
        return handler(data)
    except ValidationError as exc:
        # Built here, raised below: raised inside this block it would keep the
        # ValidationError (which holds the input, secrets included) as __context__.
        error = config_error_from_validation(exc, title)
    finally:
        _VALIDATING.reset(token)
    raise error


class SettingsModel(BaseModel):
    """Base for nested settings blocks: frozen, strict about unknown fields, no inf/NaN.

    Built on its own, invalid input raises :class:`ConfigError`; nested in a config, its
    errors are part of the config's one ConfigError naming every bad field.
    """

    model_config = ConfigDict(
        frozen=True, extra="forbid", hide_input_in_errors=True, allow_inf_nan=False
    )

    def __setattr__(self, name: str, value: Any) -> None:
        _setattr_hiding_value(self, name, value)

    @model_validator(mode="wrap")
    @classmethod
    def _raise_config_error(cls, data: Any, handler: ValidatorFunctionWrapHandler) -> Any:
        return _validate_or_config_error(cls.__name__, data, handler)


MAX_TIMEOUT = 7 * 24 * 3600.0
"""The largest timeout a config accepts (a week): larger is a typo, not a deadline."""


class RetrySettings(SettingsModel):
    """How operations are retried. See :class:`connector_core.RetryPolicy`."""

    max_attempts: int = Field(3, ge=1, le=100)
    initial_delay: float = Field(0.1, ge=0, le=MAX_TIMEOUT)
    max_delay: float = Field(10.0, ge=0, le=MAX_TIMEOUT)
    multiplier: float = Field(2.0, ge=1)
    jitter: bool = True
    deadline: float | None = Field(60.0, gt=0, le=MAX_TIMEOUT)
    max_retry_after: float = Field(60.0, ge=0, le=MAX_TIMEOUT)


class RateLimitSettings(SettingsModel):
    """A token bucket: ``rate`` operations per second with bursts up to ``burst``."""

    rate: float = Field(gt=0)
    burst: int = Field(1, ge=1)


class CircuitBreakerSettings(SettingsModel):
    """Open after ``failure_threshold`` consecutive failures; probe again after ``cooldown`` s."""

    failure_threshold: int = Field(5, ge=1)
    cooldown: float = Field(30.0, gt=0, le=MAX_TIMEOUT)
    half_open_max_calls: int = Field(1, ge=1)


def _field_path(loc: tuple[int | str, ...]) -> str:
    return ".".join(str(p) for p in loc) or "__root__"


def _message_without_input(error: ErrorDetails) -> str:
    """pydantic's message for one error, unless it quotes the input: then one that
    says the same without it (a discriminator tag, say, may be a mistyped secret)."""
    message = error["msg"]
    if error["type"] == "union_tag_invalid":
        ctx = error.get("ctx", {})
        return f"{ctx.get('discriminator', 'the tag')} must be one of {ctx.get('expected_tags')}"
    given = error.get("input")
    if isinstance(given, str) and len(given) >= 3 and given in message:
        return f"invalid value ({error['type']})"
    return message


def config_error_from_validation(exc: ValidationError, title: str) -> ConfigError:
    """Turn a pydantic ``ValidationError`` into a :class:`ConfigError` naming every bad
    field, with pydantic's messages but never the input values."""
    return config_error(
        title,
        [(_field_path(e["loc"]), _message_without_input(e)) for e in exc.errors(include_url=False)],
    )


def config_error(title: str, problems: Iterable[tuple[str, str]]) -> ConfigError:
    """A :class:`ConfigError` naming every bad field: ``problems`` are (field, message)
    pairs whose messages quote no input value. For a config's cross-field checks::

        @model_validator(mode="after")
        def _settings_agree(self) -> MyConfig:
            if problems := self._disagreements():
                raise config_error(type(self).__name__, problems)
            return self
    """
    errors = [FieldError(field, message) for field, message in problems]
    listing = "; ".join(f"{e.field}: {e.message}" for e in errors)
    noun = "field" if len(errors) == 1 else "fields"
    return ConfigError(f"invalid {title}: {len(errors)} bad {noun}: {listing}", errors=errors)


def check_secret_text(value: SecretStr | None) -> SecretStr | None:
    """A field validator's body for a secret that travels in a login (a password, a key's
    passphrase): not empty, no NUL, valid UTF-8. The reasons never quote the secret."""
    if value is not None:
        secret = value.get_secret_value()
        if not secret:
            raise ValueError("must not be empty")
        if "\x00" in secret:
            raise ValueError("must not contain NUL characters")
        try:
            secret.encode()
        except UnicodeEncodeError:
            raise ValueError("must be valid UTF-8 text (no lone surrogates)") from None
    return value


def check_local_file(value: Path | None) -> Path | None:
    """A field validator's body for a file the driver reads at connect (a CA, a client
    certificate or key): refused at construction, where a missing file would otherwise look
    like an unreachable server at connect (and be retried). The reasons never echo the
    path."""
    if value is None:
        return value
    problem = None
    try:
        found = value.is_file()
    except (OSError, ValueError) as exc:  # too long, a NUL, ...
        reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else None
        problem = f"not a usable path ({reason or type(exc).__name__})"
    else:
        if not found:
            problem = "file not found (or not a regular file)"
    if problem is not None:
        raise ValueError(problem)
    return value


class ConnectorConfig(BaseModel):
    """Base of every connector's configuration.

    Frozen, ``extra="forbid"``, secrets as ``SecretStr``. Invalid input raises
    :class:`ConfigError` naming every bad field (and never echoing a value).
    Subclasses add their own fields and set ``url_schemes``.
    """

    model_config = ConfigDict(
        frozen=True,
        extra="forbid",
        hide_input_in_errors=True,
        validate_default=True,
        allow_inf_nan=False,
    )

    url_schemes: ClassVar[tuple[str, ...]] = ()

    def __setattr__(self, name: str, value: Any) -> None:
        _setattr_hiding_value(self, name, value)

    timeout: float | None = Field(
        30.0,
        gt=0,
        le=MAX_TIMEOUT,
        description="Per-operation timeout in seconds (None: no timeout).",
    )
    connect_timeout: float = Field(
        10.0, gt=0, le=MAX_TIMEOUT, description="Timeout of one connect attempt."
    )
    retry: RetrySettings = Field(default_factory=RetrySettings)
    rate_limit: RateLimitSettings | None = None
    circuit_breaker: CircuitBreakerSettings | None = Field(default_factory=CircuitBreakerSettings)

    @model_validator(mode="wrap")
    @classmethod
    def _raise_config_error(cls, data: Any, handler: ValidatorFunctionWrapHandler) -> Any:
        return _validate_or_config_error(cls.__name__, data, handler)

    # -- construction -------------------------------------------------------------------

    @classmethod
    def from_url(cls, url: str, **overrides: Any) -> Self:
        """Build a config from a URL; keyword arguments override what the URL says.

        Query parameters map to fields of the same name, so
        ``postgresql://u:p@h/db?command_timeout=5`` sets ``command_timeout``. Raises
        ConfigError for anything but a valid URL string of one of ``url_schemes``.
        """
        if not isinstance(url, str):
            raise ConfigError(
                f"invalid {cls.__name__}: url: must be a string, got {type(url).__name__}",
                errors=[FieldError("url", "must be a string")],
            )
        fields = cls.fields_from_url(url)
        fields.update(overrides)
        return cls.model_validate(fields)

    @classmethod
    def fields_from_url(cls, url: str) -> dict[str, Any]:
        """Map a URL's parts onto this model's fields (override for other shapes).

        The default understands ``scheme://user:password@host:port/database?field=value``
        and fills whichever of ``host``, ``port``, ``user``/``username``,
        ``password``, ``database`` the model has.
        """
        try:
            parts = urlsplit(url)
            port = parts.port
        except ValueError:
            parts = None  # raised below, outside this block: the URL is not chained
        if parts is None:
            raise ConfigError(
                f"invalid {cls.__name__}: url: not a valid URL",
                errors=[FieldError("url", "not a valid URL")],
            )
        if cls.url_schemes and parts.scheme not in cls.url_schemes:
            expected = ", ".join(cls.url_schemes)
            raise ConfigError(
                f"invalid {cls.__name__}: url: scheme {parts.scheme!r} is not one of {expected}",
                errors=[FieldError("url", f"scheme must be one of {expected}")],
            )
        names = cls.model_fields
        fields: dict[str, Any] = {}
        if parts.hostname and "host" in names:
            fields["host"] = parts.hostname
        if port is not None and "port" in names:
            fields["port"] = port
        if parts.username:
            user_field = "user" if "user" in names else "username"
            fields[user_field] = unquote(parts.username)
        if parts.password is not None and "password" in names:
            fields["password"] = unquote(parts.password)
        database = parts.path.lstrip("/")
        if database and "database" in names:
            fields["database"] = unquote(database)
        for key, value in parse_qsl(parts.query, keep_blank_values=True):
            fields[key] = _parse_scalar(value)
        return fields

    @classmethod
    def from_env(cls, prefix: str, environ: Mapping[str, str] | None = None) -> Self:
        """Build a config from environment variables named ``{prefix}{FIELD}``.

        ``{prefix}URL`` is read first (through :meth:`from_url`); single fields
        override it. Nested settings use a double underscore
        (``PG_RETRY__MAX_ATTEMPTS=5``); JSON values are accepted for lists and maps, and
        a JSON map merges with nested variables (the nested ones win). A field given both
        as a plain value and as nested fields (``PG_RETRY=3`` with
        ``PG_RETRY__MAX_ATTEMPTS=5``) is a ConfigError naming it.
        """
        if not isinstance(prefix, str):
            raise ConfigError(
                f"invalid {cls.__name__}: prefix: must be a string",
                errors=[FieldError("prefix", "must be a string")],
            )
        env = os.environ if environ is None else environ
        prefix = prefix.upper()
        url_key = f"{prefix}URL"
        url_is_field = "url" in cls.model_fields
        fields: dict[str, Any] = {}
        for key, value in env.items():
            if key.upper() == url_key and not url_is_field:
                fields = {**cls.fields_from_url(value), **fields}
        paths: list[tuple[list[str], Any]] = []
        for key, value in env.items():
            upper = key.upper()
            if not upper.startswith(prefix) or (upper == url_key and not url_is_field):
                continue
            paths.append((upper[len(prefix) :].lower().split("__"), _parse_scalar(value)))
        # Shallow paths first, so that nested variables refine a JSON map, never the
        # other way round, whatever order the environment lists them in.
        paths.sort(key=lambda item: len(item[0]))
        clashes = [path for path, value in paths if not _set_path(fields, path, value)]
        if clashes:
            errors = [FieldError(".".join(p), _CLASH) for p in clashes]
            listing = "; ".join(f"{e.field}: {e.message}" for e in errors)
            raise ConfigError(f"invalid {cls.__name__}: {listing}", errors=errors)
        return cls.model_validate(fields)

    # -- presentation -------------------------------------------------------------------

    def connection_string(self, reveal: bool = False) -> str:
        """A URL for this config; the password is masked unless ``reveal=True``."""
        values = dict(iter(self))  # not dict(self): a field named "keys" would break it
        scheme = self.url_schemes[0] if self.url_schemes else type(self).__name__.lower()
        user = values.get("user", values.get("username"))
        password = values.get("password")
        auth = ""
        if user:
            auth = quote(str(user), safe="")
            if isinstance(password, SecretStr):
                secret = password.get_secret_value()
                auth += ":" + (quote(secret, safe="") if reveal else MASK)
            auth += "@"
        host = values.get("host", "")
        if ":" in str(host):  # an IPv6 literal needs its brackets back
            host = f"[{host}]"
        port = values.get("port")
        hostport = f"{host}:{port}" if port is not None else str(host)
        database = values.get("database")
        path = f"/{quote(str(database), safe='')}" if database else ""
        return f"{scheme}://{auth}{hostport}{path}"

    def secret_values(self) -> tuple[str, ...]:
        """Every secret string in this config (for scrubbing text before it leaves us)."""
        return tuple(s for s in _iter_secrets(self) if s)


def _iter_secrets(value: Any) -> Iterator[str]:
    if isinstance(value, SecretStr):
        yield value.get_secret_value()
    elif isinstance(value, BaseModel):
        for _, item in value:  # not dict(value): a field named "keys" would break it
            yield from _iter_secrets(item)
    elif isinstance(value, Mapping):
        for item in value.values():
            yield from _iter_secrets(item)
    elif isinstance(value, (list, tuple, set, frozenset)):
        for item in value:
            yield from _iter_secrets(item)


_CLASH = "given both as a value and as nested fields; give one or the other"


def _set_path(fields: dict[str, Any], path: list[str], value: Any) -> bool:
    """Set ``fields[p0][p1]...`` to ``value``, creating maps on the way; a map meets a
    map by merging. False (nothing set) where a plain value and nested fields clash."""
    target = fields
    for part in path[:-1]:
        nested = target.setdefault(part, {})
        if not isinstance(nested, dict):
            return False
        target = nested
    leaf = path[-1]
    current = target.get(leaf)
    if isinstance(current, dict):
        if not isinstance(value, dict):
            return False
        target[leaf] = {**value, **current}
        return True
    target[leaf] = value
    return True


def _parse_scalar(value: str) -> Any:
    stripped = value.strip()
    if stripped[:1] in ("{", "["):
        try:
            return json.loads(stripped)
        except (ValueError, RecursionError):  # left as text: validation names the field
            return value
    return value
