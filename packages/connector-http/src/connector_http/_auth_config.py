"""Auth settings: one small model per scheme, chosen by ``type`` (a discriminated union)."""

from __future__ import annotations

from typing import Annotated, Literal, TypeAlias

from pydantic import Field, SecretStr, ValidationInfo, field_validator

from connector_core import MAX_TIMEOUT, SettingsModel
from connector_http._http_syntax import (
    HEADER_NAME_RULE,
    HEADER_VALUE_RULE,
    Secret,
    Text,
    check_http_url,
    check_utf8,
    is_header_name,
    is_header_value,
)


def _check_token_url(value: str) -> str:
    return check_http_url(value, query=True)


def _check_map(value: dict[str, str]) -> dict[str, str]:
    for key, item in value.items():
        check_utf8(key)
        check_utf8(item)
    return value


class NoAuthConfig(SettingsModel):
    """No credentials are sent (the default)."""

    type: Literal["none"] = "none"


class BasicAuthConfig(SettingsModel):
    """HTTP Basic authentication (RFC 7617)."""

    type: Literal["basic"] = "basic"
    username: Text = Field(min_length=1)
    password: Secret = SecretStr("")

    @field_validator("username")
    @classmethod
    def _check_username(cls, value: str) -> str:
        if ":" in value:  # RFC 7617 2: the colon separates it from the password
            raise ValueError("must not contain ':'")
        return value


class BearerAuthConfig(SettingsModel):
    """A static bearer token sent as ``Authorization: Bearer <token>``."""

    type: Literal["bearer"] = "bearer"
    token: SecretStr

    @field_validator("token")
    @classmethod
    def _check_token(cls, value: SecretStr) -> SecretStr:
        token = value.get_secret_value()
        if not token or not is_header_value("Bearer " + token):
            raise ValueError(f"must be a non-empty HTTP header value: {HEADER_VALUE_RULE}")
        return value


class ApiKeyAuthConfig(SettingsModel):
    """An API key in a header (default ``X-API-Key``) or a query parameter.

    Chatwoot, for example: ``{"type": "api_key", "name": "api_access_token"}``.
    ``prefix`` is put before the key in a header (``"Token "`` gives ``Token <key>``).
    """

    # Declared in this order so that each check sees the fields it depends on (field
    # validators run inside the model's validation; an "after" model validator would run
    # outside the ConfigError wrapping of a SettingsModel built on its own).
    type: Literal["api_key"] = "api_key"
    location: Literal["header", "query"] = "header"
    name: Text = Field("X-API-Key", min_length=1)
    prefix: Text = ""
    key: Secret

    @field_validator("name")
    @classmethod
    def _check_name(cls, name: str, info: ValidationInfo) -> str:
        if info.data.get("location") == "header" and not is_header_name(name):
            raise ValueError(f"must be an HTTP header name: {HEADER_NAME_RULE}")
        return name

    @field_validator("key")
    @classmethod
    def _check_key(cls, key: SecretStr, info: ValidationInfo) -> SecretStr:
        value = key.get_secret_value()
        if not value:
            raise ValueError("must not be empty")
        prefix = info.data.get("prefix")
        header = info.data.get("location") == "header"
        if header and isinstance(prefix, str) and not is_header_value(prefix + value):
            raise ValueError(f"with prefix, must be an HTTP header value: {HEADER_VALUE_RULE}")
        return key


class _OAuth2Base(SettingsModel):
    token_url: str
    client_id: Text = Field(min_length=1)
    scope: Text | None = None
    audience: Text | None = Field(
        None, description="Sent as the 'audience' form field (Auth0 style) when set."
    )
    client_auth: Literal["client_secret_post", "client_secret_basic"] = "client_secret_post"
    refresh_margin: float = Field(
        60.0,
        ge=0,
        le=MAX_TIMEOUT,
        description="Refresh this many seconds before the token expires.",
    )
    default_expires_in: float = Field(
        3600.0,
        gt=0,
        le=366 * 86400,
        description="Token lifetime assumed when the server gives no expires_in.",
    )
    extra_params: dict[str, str] = Field(
        default_factory=dict, description="Extra form fields sent to the token endpoint."
    )
    token_timeout: float = Field(
        30.0,
        gt=0,
        le=MAX_TIMEOUT,
        description="Deadline of one token request (connect, send, wait, read) in seconds.",
    )

    _token_url = field_validator("token_url")(_check_token_url)
    _extra = field_validator("extra_params")(_check_map)


class OAuth2ClientCredentialsConfig(_OAuth2Base):
    """OAuth2 client credentials grant (RFC 6749 section 4.4)."""

    type: Literal["oauth2_client_credentials"] = "oauth2_client_credentials"
    client_secret: Secret


class OAuth2RefreshTokenConfig(_OAuth2Base):
    """OAuth2 refresh token grant (RFC 6749 section 6).

    When the server rotates the refresh token, the connector keeps the new one and
    calls its ``on_token_rotated`` callback so you can persist it.
    """

    type: Literal["oauth2_refresh_token"] = "oauth2_refresh_token"
    refresh_token: Secret
    client_secret: Secret | None = None


class OAuth2JwtBearerConfig(_OAuth2Base):
    """OAuth2 JWT bearer grant (RFC 7523), e.g. Salesforce server-to-server login.

    The connector signs an assertion (``iss`` = ``client_id``, ``sub`` = ``subject``,
    ``aud`` = ``assertion_audience`` or the token URL's origin) with ``private_key``
    (PEM). Needs ``pip install connector-http[jwt]``.
    """

    type: Literal["oauth2_jwt_bearer"] = "oauth2_jwt_bearer"
    subject: Text = Field(min_length=1)
    private_key: Secret
    algorithm: Literal["RS256", "RS384", "RS512", "ES256", "ES384"] = "RS256"
    assertion_audience: Text | None = None
    assertion_lifetime: float = Field(180.0, gt=0, le=3600)
    key_id: Text | None = None


AuthConfig: TypeAlias = Annotated[
    NoAuthConfig
    | BasicAuthConfig
    | BearerAuthConfig
    | ApiKeyAuthConfig
    | OAuth2ClientCredentialsConfig
    | OAuth2RefreshTokenConfig
    | OAuth2JwtBearerConfig,
    Field(discriminator="type"),
]
"""Any auth setting, chosen by its ``type`` field."""

OAuth2Config: TypeAlias = (
    OAuth2ClientCredentialsConfig | OAuth2RefreshTokenConfig | OAuth2JwtBearerConfig
)
