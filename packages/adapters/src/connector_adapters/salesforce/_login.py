"""Login: mint an access token at ``{login_url}/services/oauth2/token``.

The token response names the org's ``instance_url`` (where the REST API lives) and
usually no ``expires_in``: a token is kept until the API answers 401 INVALID_SESSION_ID
"Session expired or invalid", then :meth:`SalesforceLogin.renew` mints one more. Why the
adapter mints tokens itself rather than through connector-http's OAuth2 auth:
docs/decisions/0080-salesforce-login-and-instance-url.md.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

from connector_adapters.salesforce._config import (
    ClientCredentialsAuth,
    JwtBearerAuth,
    RefreshTokenAuth,
    SalesforceConfig,
)
from connector_core import (
    AuthenticationError,
    ConfigError,
    ConnectorError,
    FieldError,
    SerializationError,
    scrub_secrets,
)
from connector_http import HttpConnector, HttpResponse

JWT_BEARER_GRANT = "urn:ietf:params:oauth:grant-type:jwt-bearer"
TOKEN_PATH = "/services/oauth2/token"  # noqa: S105 - a path, not a password

_HINTS = {
    "invalid_grant": (
        "check auth.username, that the user is pre-authorized for the connected app "
        "(or its policy lets users self-authorize), the certificate uploaded to the app, "
        "and login_url (https://test.salesforce.com for a sandbox)"
    ),
    "invalid_client_id": "check auth.client_id (the connected app's consumer key)",
    "invalid_client": "check auth.client_id and auth.client_secret",
    "unsupported_grant_type": "enable the flow (JWT bearer or client credentials) on the app",
}


@dataclass(frozen=True, slots=True)
class SalesforceToken:
    """An access token and where to use it (the token itself is never shown)."""

    access_token: str = field(repr=False)
    instance_url: str
    id_url: str | None = None
    issued_at: str | None = None
    serial: int = 0
    """1 for the first token of a client, 2 for the next one, ..."""


def _jwt() -> Any:
    try:
        import jwt
    except ImportError as exc:  # pragma: no cover - the salesforce extra pulls it
        raise ImportError(
            "JWT bearer login needs PyJWT with cryptography: "
            "pip install 'connector-adapters[salesforce]'"
        ) from exc
    return jwt


class SalesforceLogin:
    """Mints and caches the access token; one token request however many callers wait.

    Raises AuthenticationError when Salesforce refuses the login (with what to check),
    ConfigError for a private key that cannot sign, SerializationError for an answer
    without a token or an instance URL, and the HTTP connector's errors otherwise.
    """

    def __init__(self, config: SalesforceConfig, http: HttpConnector) -> None:
        if config.auth is None:
            raise ConfigError(
                "SalesforceLogin needs auth in SalesforceConfig",
                errors=[FieldError("auth", "required for the managed client")],
                connector="salesforce",
            )
        self.config = config
        self.auth = config.auth
        self.http = http
        self._jwt: Any = _jwt() if isinstance(self.auth, JwtBearerAuth) else None
        self._token: SalesforceToken | None = None
        self._lock = asyncio.Lock()
        self.token_requests = 0
        self._secrets: list[str] = list(config.secret_values())

    @property
    def secrets(self) -> tuple[str, ...]:
        """Every secret this login knows (config secrets, assertions, tokens)."""
        return tuple(self._secrets)

    @property
    def current(self) -> SalesforceToken | None:
        return self._token

    async def token(self, *, correlation_id: str) -> SalesforceToken:
        """The cached token, minted on first use."""
        current = self._token
        if current is not None:
            return current
        async with self._lock:
            if self._token is None:
                self._token = await self._mint(correlation_id, serial=1)
            return self._token

    async def renew(self, stale: SalesforceToken, *, correlation_id: str) -> SalesforceToken:
        """A token other than ``stale`` (minted now unless another caller already did)."""
        async with self._lock:
            current = self._token
            if current is not None and current.serial != stale.serial:
                return current
            self._token = await self._mint(correlation_id, serial=stale.serial + 1)
            return self._token

    def _form(self) -> dict[str, str]:
        auth = self.auth
        if isinstance(auth, JwtBearerAuth):
            assertion = self._assertion(auth)
            self._secrets.append(assertion)
            return {"grant_type": JWT_BEARER_GRANT, "assertion": assertion}
        if isinstance(auth, ClientCredentialsAuth):
            return {
                "grant_type": "client_credentials",
                "client_id": auth.client_id,
                "client_secret": auth.client_secret.get_secret_value(),
            }
        assert isinstance(auth, RefreshTokenAuth)
        form = {
            "grant_type": "refresh_token",
            "client_id": auth.client_id,
            "refresh_token": auth.refresh_token.get_secret_value(),
        }
        if auth.client_secret is not None:
            form["client_secret"] = auth.client_secret.get_secret_value()
        return form

    def _assertion(self, auth: JwtBearerAuth) -> str:
        now = int(time.time())
        claims = {
            "iss": auth.client_id,
            "sub": auth.username,
            "aud": self.config.audience,
            "exp": now + auth.assertion_lifetime,
            "jti": uuid.uuid4().hex,
        }
        jwt = self._jwt
        try:
            signed: str = jwt.encode(claims, auth.private_key.get_secret_value(), algorithm="RS256")
            return signed
        except (ValueError, TypeError, jwt.PyJWTError) as exc:
            failure = type(exc).__name__
        # Raised after the block: the library's exception (about the key) is not chained.
        raise ConfigError(
            f"invalid auth.private_key: cannot sign an RS256 assertion with it ({failure}); "
            "give the connected app's RSA private key in PEM",
            errors=[FieldError("auth.private_key", "not a usable RSA private key")],
            connector="salesforce",
        )

    async def _mint(self, correlation_id: str, *, serial: int) -> SalesforceToken:
        self.token_requests += 1
        response: HttpResponse = await self.http.request(
            "POST",
            TOKEN_PATH,
            data=self._form(),
            headers={"Accept": "application/json"},
            correlation_id=correlation_id,
            operation="salesforce.login",
            idempotent=True,  # minting twice is harmless
            accept_error=lambda r: r.status in (400, 401, 403),
        )
        if response.status >= 400:
            raise self._refused(response)
        try:
            payload = response.json()
        except ConnectorError:
            payload = None
        if not isinstance(payload, dict):
            raise SerializationError(
                f"Salesforce's token endpoint answered {response.status} without a JSON object",
                connector="salesforce",
            )
        access = payload.get("access_token")
        instance = payload.get("instance_url")
        parts = urlsplit(instance) if isinstance(instance, str) else None
        if not isinstance(access, str) or not access or parts is None:
            raise SerializationError(
                "Salesforce's token endpoint answered without an access_token and instance_url",
                connector="salesforce",
            )
        if parts.scheme not in ("https", "http") or not parts.hostname:
            raise SerializationError(
                "Salesforce's token endpoint gave an instance_url that is not an http(s) URL",
                connector="salesforce",
            )
        self._secrets.append(access)
        id_url = payload.get("id")
        issued = payload.get("issued_at")
        return SalesforceToken(
            access_token=access,
            instance_url=str(instance).rstrip("/"),
            id_url=id_url if isinstance(id_url, str) else None,
            issued_at=issued if isinstance(issued, str) else None,
            serial=serial,
        )

    def _refused(self, response: HttpResponse) -> AuthenticationError:
        code = description = ""
        try:
            answer = response.json()
        except ConnectorError:
            answer = None
        if isinstance(answer, dict):
            code = str(answer.get("error") or "")
            description = str(answer.get("error_description") or "")
        reason = ": ".join(p for p in (code, description) if p) or response.reason
        hint = _HINTS.get(code, "check the auth settings and the connected app")
        text = (
            f"Salesforce refused the {self.auth.type} login at {self.config.token_url} "
            f"({response.status} {reason}); {hint}"
        )
        return AuthenticationError(
            scrub_secrets(text, self.secrets),
            connector="salesforce",
            details={"status": response.status, "error": scrub_secrets(code, self.secrets)},
        )
