"""SalesforceConfig: which org to log in to, how to authenticate, how fast to go."""

from __future__ import annotations

import re
from typing import Annotated, Any, ClassVar, Literal, TypeAlias
from urllib.parse import SplitResult, parse_qsl, unquote, urlsplit, urlunsplit

from pydantic import BaseModel, ConfigDict, Field, SecretStr, field_validator, model_validator

from connector_core import ConfigError, ConnectorConfig, FieldError, redact_url

PRODUCTION_LOGIN_URL = "https://login.salesforce.com"
SANDBOX_LOGIN_URL = "https://test.salesforce.com"
DEFAULT_API_VERSION = "62.0"
GENERIC_LOGIN_HOSTS = frozenset({"login.salesforce.com", "test.salesforce.com"})
"""Hosts that serve every org: the client credentials flow needs the org's own My Domain."""

_API_VERSION = re.compile(r"[1-9][0-9]{1,2}\.0")
# RFC 9110 token characters: what an HTTP header name may hold.
_HEADER_NAME = re.compile(r"[!#$%&'*+.^_`|~0-9A-Za-z-]{1,256}")
# A consumer key, a username, a secret: visible ASCII, no spaces (they go into a form).
_VISIBLE = re.compile(r"[\x21-\x7e]{1,4096}")
_PEM = re.compile(
    r"\s*-----BEGIN ([A-Z ]*)PRIVATE KEY-----[A-Za-z0-9+/=\s]+-----END \1PRIVATE KEY-----\s*"
)


def _split(url: str) -> SplitResult | None:
    """``urlsplit(url)`` with its port checked, or None for an invalid URL."""
    try:
        parts = urlsplit(url)
        parts.port  # noqa: B018 - validates the port
    except ValueError:
        return None
    return parts


def _visible(value: str) -> str:
    if not _VISIBLE.fullmatch(value):
        raise ValueError("must be 1 to 4096 visible ASCII characters (no spaces)")
    return value


def _visible_secret(value: SecretStr | None) -> SecretStr | None:
    if value is not None and not _VISIBLE.fullmatch(value.get_secret_value()):
        raise ValueError("must be 1 to 4096 visible ASCII characters (no spaces)")
    return value


class _AuthModel(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid", hide_input_in_errors=True)

    client_id: str = Field(description="The connected app's consumer key.")

    _client_id = field_validator("client_id")(_visible)


class JwtBearerAuth(_AuthModel):
    """OAuth 2.0 JWT bearer flow: an RS256 assertion signed with the connected app's key.

    ``iss`` is ``client_id``, ``sub`` is ``username``, ``aud`` is ``audience`` (default:
    the login URL, ``https://test.salesforce.com`` for a sandbox), ``exp`` is now plus
    ``assertion_lifetime`` (Salesforce accepts up to 3 minutes).
    """

    type: Literal["jwt_bearer"] = "jwt_bearer"
    username: str = Field(description="The Salesforce user the app acts as.")
    private_key: SecretStr = Field(description="The connected app's private key, PEM (secret).")
    audience: str | None = Field(None, description="The assertion's aud (default: login URL).")
    assertion_lifetime: int = Field(180, ge=10, le=180, description="Seconds to exp.")

    _username = field_validator("username")(_visible)

    @field_validator("private_key")
    @classmethod
    def _check_pem(cls, value: SecretStr) -> SecretStr:
        if not _PEM.fullmatch(value.get_secret_value()):
            raise ValueError(
                "must be a PEM private key (-----BEGIN PRIVATE KEY----- ... -----END ...)"
            )
        return value

    @field_validator("audience")
    @classmethod
    def _check_audience(cls, value: str | None) -> str | None:
        if value is not None:
            _check_https_url(value)
        return value


class ClientCredentialsAuth(_AuthModel):
    """OAuth 2.0 client credentials flow (needs the org's My Domain URL as login URL)."""

    type: Literal["client_credentials"] = "client_credentials"
    client_secret: SecretStr = Field(description="The connected app's consumer secret.")

    _secret = field_validator("client_secret")(_visible_secret)


class RefreshTokenAuth(_AuthModel):
    """OAuth 2.0 refresh token flow: a refresh token obtained once by a user."""

    type: Literal["refresh_token"] = "refresh_token"
    refresh_token: SecretStr = Field(description="The refresh token (secret).")
    client_secret: SecretStr | None = Field(None, description="The consumer secret, if any.")

    _secrets = field_validator("refresh_token", "client_secret")(_visible_secret)


SalesforceAuth: TypeAlias = Annotated[
    JwtBearerAuth | ClientCredentialsAuth | RefreshTokenAuth, Field(discriminator="type")
]
"""Any Salesforce login, chosen by its ``type``."""


def _check_https_url(value: str) -> str:
    parts = _split(value)
    if parts is None:
        raise ValueError("not a valid URL")
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ValueError("must be an absolute https:// URL")
    if "@" in parts.netloc or parts.query or parts.fragment or parts.path.strip("/"):
        raise ValueError("must be a plain origin such as https://acme.my.salesforce.com")
    return value.rstrip("/")


class SalesforceConfig(ConnectorConfig):
    """Configuration of the Salesforce integration (managed and mock).

    ``login_url`` is production (``https://login.salesforce.com``, the default), a
    sandbox (``https://test.salesforce.com``) or the org's My Domain
    (``https://acme.my.salesforce.com``). ``auth`` is one of :class:`JwtBearerAuth`,
    :class:`ClientCredentialsAuth` (My Domain only) or :class:`RefreshTokenAuth`; the
    instance URL and the access token come from the token response. ``mode="auto"``
    is managed when ``auth`` is set and mock otherwise. ``rate_limit``, ``timeout``,
    ``connect_timeout``, ``retry`` and ``circuit_breaker`` are the connector settings of
    every request; ``api_usage_warn_threshold`` is the share of the org's daily API
    requests (``Sforce-Limit-Info``) past which the client logs a WARNING.

    Invalid values raise ConfigError naming every bad field, never a value.
    """

    url_schemes: ClassVar[tuple[str, ...]] = ("https", "http")

    login_url: str = Field(PRODUCTION_LOGIN_URL, max_length=2048, description="Where to log in.")
    api_version: str = Field(DEFAULT_API_VERSION, description="REST API version, e.g. 62.0.")
    auth: SalesforceAuth | None = Field(None, description="How to log in (None: the mock).")
    mode: Literal["auto", "managed", "mock"] = "auto"
    api_usage_warn_threshold: float = Field(
        0.8, gt=0, le=1, description="Warn when this share of the daily API limit is used."
    )
    correlation_id_header: str = Field("X-Correlation-ID", min_length=1)

    @field_validator("login_url")
    @classmethod
    def _check_login_url(cls, value: str) -> str:
        return _check_https_url(value)

    @field_validator("api_version")
    @classmethod
    def _check_api_version(cls, value: str) -> str:
        if not _API_VERSION.fullmatch(value):
            raise ValueError("must look like 62.0 (major version, '.0')")
        return value

    @field_validator("correlation_id_header")
    @classmethod
    def _check_header_name(cls, value: str) -> str:
        if not _HEADER_NAME.fullmatch(value):
            raise ValueError("must be an HTTP header name (letters, digits, - and the like)")
        return value

    @model_validator(mode="after")
    def _check_combination(self) -> SalesforceConfig:
        # Raised as ConfigError directly: an after-validator of a subclass runs outside
        # ConnectorConfig's translation of ValidationError.
        errors: list[FieldError] = []
        if self.mode == "managed" and self.auth is None:
            errors.append(FieldError("auth", "required when mode is 'managed'"))
        host = (urlsplit(self.login_url).hostname or "").lower()
        if isinstance(self.auth, ClientCredentialsAuth) and host in GENERIC_LOGIN_HOSTS:
            errors.append(
                FieldError(
                    "login_url",
                    "client_credentials needs the org's My Domain URL "
                    "(https://<domain>.my.salesforce.com), not login/test.salesforce.com",
                )
            )
        if errors:
            listing = "; ".join(f"{e.field}: {e.message}" for e in errors)
            raise ConfigError(f"invalid {type(self).__name__}: {listing}", errors=errors)
        return self

    @property
    def is_managed(self) -> bool:
        """Whether this config selects the managed (HTTP) client."""
        if self.mode == "auto":
            return self.auth is not None
        return self.mode == "managed"

    @property
    def token_url(self) -> str:
        return f"{self.login_url}/services/oauth2/token"

    @property
    def audience(self) -> str:
        """The ``aud`` of a JWT bearer assertion."""
        if isinstance(self.auth, JwtBearerAuth) and self.auth.audience:
            return self.auth.audience
        return self.login_url

    @property
    def data_path(self) -> str:
        """``/services/data/vXX.X``: the REST API's root on the instance."""
        return f"/services/data/v{self.api_version}"

    @classmethod
    def fields_from_url(cls, url: str) -> dict[str, Any]:
        """``https://ID:SECRET@acme.my.salesforce.com?api_version=61.0`` -> fields.

        The user part is the consumer key, the password the consumer secret (client
        credentials); ``auth.<field>`` query parameters set the other auth fields
        (``auth.type=jwt_bearer&auth.username=...``), other parameters top-level ones.
        """
        parts = _split(url)
        if parts is None:  # raised here, not in an except block: nothing chained
            raise ConfigError(
                f"invalid {cls.__name__}: url: not a valid URL",
                errors=[FieldError("url", "not a valid URL")],
            )
        host = parts.hostname or ""
        netloc = f"[{host}]" if ":" in host else host
        if parts.port is not None:
            netloc += f":{parts.port}"
        fields: dict[str, Any] = {
            "login_url": urlunsplit((parts.scheme, netloc, parts.path, "", ""))
        }
        auth: dict[str, Any] = {}
        if parts.username:
            auth["client_id"] = unquote(parts.username)
        if parts.password is not None:
            auth["client_secret"] = unquote(parts.password)
            auth["type"] = "client_credentials"
        for key, value in parse_qsl(parts.query, keep_blank_values=True):
            if key.startswith("auth."):
                auth[key[len("auth.") :]] = value
            else:
                fields[key] = value
        if auth:
            fields["auth"] = auth
        return fields

    def connection_string(self, reveal: bool = False) -> str:
        """The login URL and API version; it never holds a secret."""
        url = f"{self.login_url}{self.data_path}"
        return url if reveal else redact_url(url)
