"""ChatwootConfig: where the Chatwoot account is, how to authenticate, how fast to go."""

from __future__ import annotations

import re
from typing import Any, ClassVar, Literal
from urllib.parse import SplitResult, parse_qsl, urlsplit, urlunsplit

from pydantic import Field, SecretStr, field_validator, model_validator

from connector_core import ConfigError, ConnectorConfig, FieldError, redact_url

CHATWOOT_CLOUD_URL = "https://app.chatwoot.com"
MAX_REQUESTS_PER_MINUTE = 60_000_000
"""Upper bound of both rate settings: a million requests a second, beyond any HTTP client
(Chatwoot cloud allows 3,000 a minute; benchmarks raise the limit out of the way)."""
MAX_BURST = 100_000
MAX_WEBHOOK_TOLERANCE = 86_400.0
"""A day: a larger window would let a captured webhook be replayed for longer."""

# RFC 9110 token characters: what an HTTP header name may hold.
_HEADER_NAME = re.compile(r"[!#$%&'*+.^_`|~0-9A-Za-z-]{1,256}")
# Visible ASCII, no spaces: what an api_access_token header value may hold.
_TOKEN = re.compile(r"[\x21-\x7e]{1,4096}")


def _split(url: str) -> SplitResult | None:
    """``urlsplit(url)`` with its port checked, or None for an invalid URL."""
    try:
        parts = urlsplit(url)
        parts.port  # noqa: B018 - validates the port
    except ValueError:
        return None
    return parts


class ChatwootConfig(ConnectorConfig):
    """Configuration of the Chatwoot integration (managed and mock).

    ``mode="auto"`` (the default) is managed when ``api_access_token`` and
    ``account_id`` are set and mock when no credential is (``account_id`` alone
    only numbers the mock's account). A partial set, an ``api_access_token`` or an
    explicit ``base_url`` without the rest, raises ConfigError naming the missing
    field(s) instead of silently falling back to the mock. Rate limits default to Chatwoot's
    published limits: 3,000 requests/min per client and 100 contact searches/min.
    Invalid values raise ConfigError naming every bad field (never a value), including
    what the managed client could not send (a token that is not visible ASCII, a header
    name that is not one) and numbers past the upper bounds (``MAX_REQUESTS_PER_MINUTE``,
    ``MAX_BURST``, ``MAX_WEBHOOK_TOLERANCE``), so a config that builds is one it can use.
    """

    url_schemes: ClassVar[tuple[str, ...]] = ("https", "http")

    base_url: str = Field(CHATWOOT_CLOUD_URL, max_length=2048, description="Chatwoot's base URL.")
    account_id: int | None = Field(
        None, ge=1, le=2**63 - 1, description="The numeric account id (a bigint)."
    )
    api_access_token: SecretStr | None = Field(
        None, description="The api_access_token of a user or agent bot (secret)."
    )
    mode: Literal["auto", "managed", "mock"] = "auto"
    requests_per_minute: int = Field(
        3000, ge=1, le=MAX_REQUESTS_PER_MINUTE, description="Limit on every request."
    )
    burst: int = Field(
        50, ge=1, le=MAX_BURST, description="Requests allowed at once above the rate."
    )
    search_requests_per_minute: int = Field(
        100, ge=1, le=MAX_REQUESTS_PER_MINUTE, description="Limit on contact search."
    )
    search_burst: int = Field(
        10, ge=1, le=MAX_BURST, description="Searches allowed at once above the rate."
    )
    webhook_secret: SecretStr | None = Field(
        None, description="Secret that verifies X-Chatwoot-Signature on webhooks."
    )
    webhook_tolerance: float = Field(
        300.0,
        gt=0,
        le=MAX_WEBHOOK_TOLERANCE,
        description="Maximum age (s) of a webhook's X-Chatwoot-Timestamp.",
    )
    correlation_id_header: str = Field("X-Correlation-ID", min_length=1)

    @field_validator("api_access_token")
    @classmethod
    def _check_token(cls, value: SecretStr | None) -> SecretStr | None:
        # Sent as a header value: a space, control character or non-ASCII letter would
        # fail in the HTTP client at the first request instead of here.
        if value is not None and not _TOKEN.fullmatch(value.get_secret_value()):
            raise ValueError("must be 1 to 4096 visible ASCII characters (no spaces)")
        return value

    @field_validator("webhook_secret")
    @classmethod
    def _check_webhook_secret(cls, value: SecretStr | None) -> SecretStr | None:
        if value is not None and not _encodes(value.get_secret_value()):
            raise ValueError("must be non-empty text that UTF-8 can encode")
        return value

    @field_validator("correlation_id_header")
    @classmethod
    def _check_header_name(cls, value: str) -> str:
        if not _HEADER_NAME.fullmatch(value):
            raise ValueError("must be an HTTP header name (letters, digits, - and the like)")
        return value

    @field_validator("base_url")
    @classmethod
    def _check_base_url(cls, value: str) -> str:
        parts = _split(value)
        if parts is None:
            raise ValueError("not a valid URL")
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValueError("must be an absolute http:// or https:// URL")
        if "@" in parts.netloc or parts.query or parts.fragment:
            raise ValueError("must be a plain URL: put the token in 'api_access_token'")
        return value.rstrip("/")

    @model_validator(mode="after")
    def _check_managed(self) -> ChatwootConfig:
        # Raised as ConfigError directly: an after-validator of a subclass runs
        # outside ConnectorConfig's translation of ValidationError.
        if self.mode == "mock":
            return self
        missing = [
            name
            for name, value in (
                ("account_id", self.account_id),
                ("api_access_token", self.api_access_token),
            )
            if value is None
        ]
        if not missing:
            return self
        if self.mode == "managed":
            raise ConfigError(
                f"invalid {type(self).__name__}: mode 'managed' needs {' and '.join(missing)}",
                errors=[FieldError(n, "required when mode is 'managed'") for n in missing],
            )
        # mode "auto": no credentials at all means mock; a partial set is a mistake that
        # would otherwise send every write to an in-memory mock, so it is refused.
        given = [
            name
            for name, is_set in (
                ("api_access_token", self.api_access_token is not None),
                ("base_url", "base_url" in self.model_fields_set),
            )
            if is_set
        ]
        if given:
            raise ConfigError(
                f"invalid {type(self).__name__}: {' and '.join(given)} set but "
                f"{' and '.join(missing)} missing; give every credential for the managed "
                "client, none for the mock, or set mode explicitly",
                errors=[
                    FieldError(n, f"required when {' and '.join(given)} is set") for n in missing
                ],
            )
        return self

    @property
    def is_managed(self) -> bool:
        """Whether this config selects the managed (HTTP) client.

        In ``auto`` mode a valid config either has every credential (managed) or
        none (mock): a partial set is refused with ConfigError at validation.
        """
        if self.mode == "auto":
            return self.api_access_token is not None and self.account_id is not None
        return self.mode == "managed"

    @property
    def api_prefix(self) -> str:
        """The path of the account's Application API (``/api/v1/accounts/<id>``)."""
        return f"/api/v1/accounts/{self.account_id}"

    @classmethod
    def fields_from_url(cls, url: str) -> dict[str, Any]:
        """``https://chat.example.com/app/accounts/3?api_access_token=...`` -> fields."""
        parts = _split(url)
        if parts is None:  # raised here, not in an except block: nothing chained
            raise ConfigError(
                f"invalid {cls.__name__}: url: not a valid URL",
                errors=[FieldError("url", "not a valid URL")],
            )
        fields: dict[str, Any] = {"base_url": urlunsplit((parts.scheme, parts.netloc, "", "", ""))}
        segments = [s for s in parts.path.split("/") if s]
        if "accounts" in segments:
            index = segments.index("accounts")
            if index + 1 < len(segments):
                fields["account_id"] = segments[index + 1]
        for key, value in parse_qsl(parts.query, keep_blank_values=True):
            fields[key] = value
        return fields

    def connection_string(self, reveal: bool = False) -> str:
        """The account's API URL; it never holds the token."""
        url = f"{self.base_url}{self.api_prefix}" if self.account_id else self.base_url
        return url if reveal else redact_url(url)


def _encodes(text: str) -> bool:
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return bool(text)
