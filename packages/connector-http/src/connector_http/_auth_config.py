"""Auth settings: one small model per scheme, chosen by ``type`` (a discriminated union)."""

from __future__ import annotations

from typing import Annotated, Literal, TypeAlias

from pydantic import Field, SecretStr, field_validator

from connector_core import SettingsModel


def _check_token_url(value: str) -> str:
    if not value.startswith(("https://", "http://")):
        raise ValueError("must be an absolute http(s) URL")
    return value


class NoAuthConfig(SettingsModel):
    """No credentials are sent (the default)."""

    type: Literal["none"] = "none"


class BasicAuthConfig(SettingsModel):
    """HTTP Basic authentication (RFC 7617)."""

    type: Literal["basic"] = "basic"
    username: str = Field(min_length=1)
    password: SecretStr = SecretStr("")


class BearerAuthConfig(SettingsModel):
    """A static bearer token sent as ``Authorization: Bearer <token>``."""

    type: Literal["bearer"] = "bearer"
    token: SecretStr


class ApiKeyAuthConfig(SettingsModel):
    """An API key in a header (default ``X-API-Key``) or a query parameter.

    Chatwoot, for example: ``{"type": "api_key", "name": "api_access_token"}``.
    ``prefix`` is put before the key in a header (``"Token "`` gives ``Token <key>``).
    """

    type: Literal["api_key"] = "api_key"
    key: SecretStr
    name: str = Field("X-API-Key", min_length=1)
    location: Literal["header", "query"] = "header"
    prefix: str = ""


class _OAuth2Base(SettingsModel):
    token_url: str
    client_id: str = Field(min_length=1)
    scope: str | None = None
    audience: str | None = Field(
        None, description="Sent as the 'audience' form field (Auth0 style) when set."
    )
    client_auth: Literal["client_secret_post", "client_secret_basic"] = "client_secret_post"
    refresh_margin: float = Field(
        60.0, ge=0, description="Refresh this many seconds before the token expires."
    )
    default_expires_in: float = Field(
        3600.0, gt=0, description="Token lifetime assumed when the server gives no expires_in."
    )
    extra_params: dict[str, str] = Field(
        default_factory=dict, description="Extra form fields sent to the token endpoint."
    )
    token_timeout: float = Field(
        30.0,
        gt=0,
        le=3600,
        description="Deadline of one token request (connect, send, wait, read) in seconds.",
    )

    _token_url = field_validator("token_url")(_check_token_url)


class OAuth2ClientCredentialsConfig(_OAuth2Base):
    """OAuth2 client credentials grant (RFC 6749 section 4.4)."""

    type: Literal["oauth2_client_credentials"] = "oauth2_client_credentials"
    client_secret: SecretStr


class OAuth2RefreshTokenConfig(_OAuth2Base):
    """OAuth2 refresh token grant (RFC 6749 section 6).

    When the server rotates the refresh token, the connector keeps the new one and
    calls its ``on_token_rotated`` callback so you can persist it.
    """

    type: Literal["oauth2_refresh_token"] = "oauth2_refresh_token"
    refresh_token: SecretStr
    client_secret: SecretStr | None = None


class OAuth2JwtBearerConfig(_OAuth2Base):
    """OAuth2 JWT bearer grant (RFC 7523), e.g. Salesforce server-to-server login.

    The connector signs an assertion (``iss`` = ``client_id``, ``sub`` = ``subject``,
    ``aud`` = ``assertion_audience`` or the token URL's origin) with ``private_key``
    (PEM). Needs ``pip install connector-http[jwt]``.
    """

    type: Literal["oauth2_jwt_bearer"] = "oauth2_jwt_bearer"
    subject: str = Field(min_length=1)
    private_key: SecretStr
    algorithm: Literal["RS256", "RS384", "RS512", "ES256", "ES384"] = "RS256"
    assertion_audience: str | None = None
    assertion_lifetime: float = Field(180.0, gt=0, le=3600)
    key_id: str | None = None


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
