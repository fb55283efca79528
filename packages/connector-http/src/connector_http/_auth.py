"""Credentials at run time: static headers, and OAuth2 tokens cached, refreshed ahead of
expiry and fetched once for all concurrent callers."""

from __future__ import annotations

import asyncio
import base64
import copy
import inspect
import logging
import math
import time
import uuid
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qsl, quote, urlsplit

import httpx

from connector_core import (
    AuthenticationError,
    ConfigError,
    ConnectorError,
    ConnectorTimeoutError,
    FieldError,
    SerializationError,
    scrub_secrets,
)
from connector_http._auth_config import (
    ApiKeyAuthConfig,
    AuthConfig,
    BasicAuthConfig,
    BearerAuthConfig,
    NoAuthConfig,
    OAuth2ClientCredentialsConfig,
    OAuth2Config,
    OAuth2JwtBearerConfig,
    OAuth2RefreshTokenConfig,
)
from connector_http._errors import status_error
from connector_http._http_syntax import is_header_value, is_utf8
from connector_http._response import (
    DEFAULT_MAX_ERROR_BODY_BYTES,
    DEFAULT_MAX_RESPONSE_BYTES,
    decode_json,
    json_failure,
    read_body,
    read_capped,
)

TokenRotatedCallback = Callable[[str], Awaitable[None] | None]
"""Called with the new refresh token when the server rotates it (persist it there)."""

JWT_BEARER_GRANT = "urn:ietf:params:oauth:grant-type:jwt-bearer"

logger = logging.getLogger("connector.http.auth")


def basic_header(username: str, password: str) -> str:
    raw = f"{username}:{password}".encode()
    return "Basic " + base64.b64encode(raw).decode("ascii")


def _client_basic_pair(client_id: str, secret: str) -> tuple[str, str]:
    # RFC 6749 2.3.1: form-urlencode both before joining them for Basic auth.
    return quote(client_id, safe=""), quote(secret, safe="")


def wire_secrets(auth: AuthConfig) -> tuple[str, ...]:
    """The secrets ``auth`` puts on the wire that are derived from its fields, so not
    found by scrubbing the fields alone: ``user:password`` (whose base64 form is the
    Basic credential) and the whole ``Basic ...`` header value, for basic auth and for
    OAuth2's ``client_secret_basic``."""
    pair: tuple[str, str] | None = None
    if isinstance(auth, BasicAuthConfig):
        if auth.password.get_secret_value():
            pair = (auth.username, auth.password.get_secret_value())
    elif (
        isinstance(auth, OAuth2ClientCredentialsConfig | OAuth2RefreshTokenConfig)
        and auth.client_secret is not None
        and auth.client_secret.get_secret_value()
    ):
        pair = _client_basic_pair(auth.client_id, auth.client_secret.get_secret_value())
    if pair is None:
        return ()
    return (basic_header(*pair), f"{pair[0]}:{pair[1]}")


@dataclass(frozen=True, slots=True)
class StaticAuth:
    """What a static scheme adds to every request: headers, or one query parameter."""

    headers: dict[str, str]
    query: tuple[str, str] | None = None


def static_auth(
    auth: NoAuthConfig | BasicAuthConfig | BearerAuthConfig | ApiKeyAuthConfig,
) -> StaticAuth:
    if isinstance(auth, BasicAuthConfig):
        password = auth.password.get_secret_value()
        return StaticAuth({"Authorization": basic_header(auth.username, password)})
    if isinstance(auth, BearerAuthConfig):
        return StaticAuth({"Authorization": f"Bearer {auth.token.get_secret_value()}"})
    if isinstance(auth, ApiKeyAuthConfig):
        key = auth.key.get_secret_value()
        if auth.location == "query":
            return StaticAuth({}, (auth.name, key))
        return StaticAuth({auth.name: f"{auth.prefix}{key}"})
    return StaticAuth({})


def require_jwt() -> Any:
    """Import PyJWT or say which extra provides it."""
    try:
        import jwt
    except ImportError as exc:
        raise ImportError(
            "the oauth2_jwt_bearer auth needs PyJWT with cryptography: "
            "pip install 'connector-http[jwt]'"
        ) from exc
    return jwt


def _origin(url: str) -> str:
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}"


@dataclass(frozen=True, slots=True)
class _Token:
    access: str
    refresh_at: float
    expires_at: float


class OAuth2TokenSource:
    """Gets, caches and refreshes an OAuth2 access token.

    ``token()`` returns the cached token until ``refresh_margin`` seconds before it
    expires; then the first caller starts one fetch (an asyncio task) and every caller
    that arrives while it runs awaits that same fetch: one token request for any number
    of callers, whether it succeeds or fails (a failure is raised to every waiter; the
    next call after it starts a new fetch). Waiters await it through ``asyncio.shield``,
    so cancelling any of them, the first included, never cancels the fetch for the
    others. ``invalidate(token)`` drops a token the API rejected (401) so the next
    ``token()`` fetches a fresh one.
    """

    def __init__(
        self,
        settings: OAuth2Config,
        *,
        connector: str = "http",
        on_token_rotated: TokenRotatedCallback | None = None,
        request_id_headers: Iterable[str] = (),
        known_secrets: Iterable[str] = (),
        max_body: int = DEFAULT_MAX_RESPONSE_BYTES,
        max_error_body: int = DEFAULT_MAX_ERROR_BODY_BYTES,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.settings = settings
        self._max_body = max_body
        self._max_error_body = max_error_body
        # The config's secrets and their wire forms: masked in token errors along with
        # what the request itself sent and the tokens obtained so far.
        self._known_secrets = wire_secrets(settings) + tuple(known_secrets)
        self.connector = connector
        self.on_token_rotated = on_token_rotated
        self._request_id_headers = tuple(request_id_headers)
        self._clock = clock
        self._token: _Token | None = None
        self._pending: asyncio.Task[_Token] | None = None
        self._refresh_token: str | None = (
            settings.refresh_token.get_secret_value()
            if isinstance(settings, OAuth2RefreshTokenConfig)
            else None
        )
        self._jwt: Any = require_jwt() if isinstance(settings, OAuth2JwtBearerConfig) else None
        self.token_requests = 0

    @property
    def secrets(self) -> tuple[str, ...]:
        """The secrets obtained at run time (access and rotated refresh tokens)."""
        values = [self._refresh_token or ""]
        if self._token is not None:
            values.append(self._token.access)
        return tuple(v for v in values if v)

    async def token(self, client: httpx.AsyncClient) -> str:
        """A valid access token, fetching one when none is cached or it is due."""
        current = self._token
        if current is not None and self._clock() < current.refresh_at:
            return current.access
        pending = self._pending
        if pending is None:
            pending = asyncio.get_running_loop().create_task(self._fetch_and_store(client))
            pending.add_done_callback(self._fetch_done)
            self._pending = pending
        try:
            token = await asyncio.shield(pending)
        except ConnectorError as exc:
            # Every waiter gets its own copy: callers annotate the errors they raise.
            raise _own_copy(exc) from exc.__cause__
        return token.access

    async def _fetch_and_store(self, client: httpx.AsyncClient) -> _Token:
        token = await self._fetch(client)
        self._token = token
        return token

    def _fetch_done(self, task: asyncio.Task[_Token]) -> None:
        if self._pending is task:
            self._pending = None
        if not task.cancelled():
            task.exception()  # retrieved: no "never retrieved" warning if nobody waits

    def invalidate(self, token: str) -> None:
        """Forget ``token`` (if it is still the cached one) after the API rejected it."""
        current = self._token
        if current is not None and current.access == token:
            self._token = None

    def clear(self) -> None:
        self._token = None

    # -- the token request --------------------------------------------------------------

    def _form(self) -> tuple[dict[str, str], dict[str, str]]:
        s = self.settings
        form: dict[str, str] = {}
        headers = {"Accept": "application/json"}
        secret: str | None = None
        if isinstance(s, OAuth2ClientCredentialsConfig):
            form["grant_type"] = "client_credentials"
            secret = s.client_secret.get_secret_value()
        elif isinstance(s, OAuth2RefreshTokenConfig):
            form["grant_type"] = "refresh_token"
            form["refresh_token"] = self._refresh_token or ""
            secret = s.client_secret.get_secret_value() if s.client_secret else None
        else:
            form["grant_type"] = JWT_BEARER_GRANT
            form["assertion"] = self._assertion(s)
        if not isinstance(s, OAuth2JwtBearerConfig):
            if secret is not None and s.client_auth == "client_secret_basic":
                headers["Authorization"] = basic_header(*_client_basic_pair(s.client_id, secret))
            else:
                form["client_id"] = s.client_id
                if secret is not None:
                    form["client_secret"] = secret
        if s.scope:
            form["scope"] = s.scope
        if s.audience:
            form["audience"] = s.audience
        form.update(s.extra_params)
        return form, headers

    def _assertion(self, s: OAuth2JwtBearerConfig) -> str:
        now = int(time.time())
        claims = {
            "iss": s.client_id,
            "sub": s.subject,
            "aud": s.assertion_audience or _origin(s.token_url),
            "iat": now,
            "exp": now + int(s.assertion_lifetime),
            "jti": uuid.uuid4().hex,
        }
        headers = {"kid": s.key_id} if s.key_id else None
        try:
            token: str = self._jwt.encode(
                claims, s.private_key.get_secret_value(), algorithm=s.algorithm, headers=headers
            )
            return token
        except (ValueError, TypeError, self._jwt.PyJWTError) as exc:
            failure = type(exc).__name__
        # Raised after the block: the library's exception (about the key) is not chained.
        raise ConfigError(
            f"invalid auth.private_key: cannot sign a {s.algorithm} assertion with it "
            f"({failure}); give a PEM private key of that type",
            errors=[FieldError("auth.private_key", "not a usable private key")],
            connector=self.connector,
        )

    async def _fetch(self, client: httpx.AsyncClient) -> _Token:
        s = self.settings
        self.token_requests += 1
        # Its own deadline: the fetch is shared and shielded, so a caller's timeout ends
        # only that caller's wait, never a fetch stuck on a silent or trickling endpoint.
        scope = asyncio.timeout(s.token_timeout)
        try:
            async with scope:
                return await self._exchange(client)
        except TimeoutError:
            if not scope.expired():
                raise
        raise ConnectorTimeoutError(
            f"token request to {s.token_url} timed out after {s.token_timeout}s "
            "(auth.token_timeout)",
            connector=self.connector,
            details={"url": s.token_url},
        )

    async def _exchange(self, client: httpx.AsyncClient) -> _Token:
        s = self.settings
        form, headers = self._form()
        started = self._clock()
        request = client.build_request("POST", s.token_url, data=form, headers=headers)
        # Never redirected: a 307/308 would send the form, client secret included, on to
        # wherever the Location header points.
        response = await client.send(request, stream=True, follow_redirects=False)
        sent = [v for k, v in form.items() if k not in ("grant_type", "scope")]
        secrets = (*self._known_secrets, *self.secrets, *sent)
        if response.status_code >= 400:
            body, cut = await read_capped(response, self._max_error_body)
            raise self._token_error(response, body, cut, secrets)
        if response.is_redirect:
            await response.aclose()
            raise ConfigError(
                f"invalid auth.token_url: the token endpoint {s.token_url} answered "
                f"{response.status_code} (a redirect); token requests do not follow "
                "redirects (they carry the client credentials): set token_url to the "
                "final URL",
                errors=[FieldError("auth.token_url", "redirects elsewhere")],
                connector=self.connector,
            )
        body = await read_body(response, self._max_body, connector=self.connector, masked_params=())
        payload = self._payload(response, body)
        access = payload.get("access_token")
        if not isinstance(access, str) or not access:
            raise AuthenticationError(
                f"token endpoint {s.token_url} answered {response.status_code} "
                "without an access_token",
                connector=self.connector,
            )
        rotated = payload.get("refresh_token")
        # Tokens we could never send (a header is ASCII, a form UTF-8) are refused here:
        # kept, they would fail every request, and every scrub of an error, later on.
        if not is_header_value("Bearer " + access) or (
            isinstance(rotated, str) and not is_utf8(rotated)
        ):
            raise SerializationError(
                f"token endpoint {s.token_url} answered {response.status_code} with a token "
                "that cannot be sent (not a valid HTTP header value or not encodable text)",
                connector=self.connector,
                details={"status": response.status_code, "url": s.token_url},
            )
        try:
            expires_in = float(payload.get("expires_in") or s.default_expires_in)
        except (TypeError, ValueError, OverflowError):
            expires_in = s.default_expires_in
        if not 0 < expires_in < math.inf:  # "1e999" is inf, "nan" is nan: never due
            expires_in = s.default_expires_in
        margin = s.refresh_margin if s.refresh_margin < expires_in else expires_in / 2
        if (
            isinstance(s, OAuth2RefreshTokenConfig)
            and isinstance(rotated, str)
            and rotated
            and rotated != self._refresh_token
        ):
            self._refresh_token = rotated
            await self._notify_rotated(rotated)
        logger.debug("obtained an access token valid for %.0fs from %s", expires_in, s.token_url)
        return _Token(access, started + expires_in - margin, started + expires_in)

    async def _notify_rotated(self, refresh_token: str) -> None:
        callback = self.on_token_rotated
        if callback is None:
            logger.warning(
                "the token endpoint rotated the refresh token and no on_token_rotated "
                "callback is set: the new token lives only in memory"
            )
            return
        try:
            result = callback(refresh_token)
            if inspect.isawaitable(result):
                await result
        except Exception as exc:
            # The new token is valid and kept in memory; failing the request would not help.
            logger.error("on_token_rotated callback failed: %s", type(exc).__name__)

    def _payload(self, response: httpx.Response, body: bytes) -> dict[str, Any]:
        ctype = response.headers.get("content-type", "")
        reason = "not a JSON object"
        try:
            if "x-www-form-urlencoded" in ctype:
                return dict(parse_qsl(body.decode(response.encoding or "utf-8", "replace")))
            data = decode_json(body)
        except ValueError as exc:
            data, reason = None, f"not valid JSON ({json_failure(exc)})"
        if not isinstance(data, dict):
            raise SerializationError(
                f"token endpoint {self.settings.token_url} answered "
                f"{response.status_code} with a body that is {reason}",
                connector=self.connector,
                details={"status": response.status_code, "url": self.settings.token_url},
            )
        return data

    def _token_error(
        self, response: httpx.Response, body: bytes, cut: bool, secrets: tuple[str, ...]
    ) -> ConnectorError:
        status = response.status_code
        url = self.settings.token_url
        if status in (400, 401, 403):
            code = description = ""
            try:
                answer = decode_json(body)
                if isinstance(answer, dict):
                    code = str(answer.get("error") or "")
                    description = str(answer.get("error_description") or "")
            except ValueError:
                pass
            reason = ": ".join(p for p in (code, description) if p) or response.reason_phrase
            return AuthenticationError(
                scrub_secrets(f"token request to {url} was refused ({status} {reason})", secrets),
                connector=self.connector,
                details={"status": status, "url": url, "error": scrub_secrets(code, secrets)},
            )
        return status_error(
            response,
            body=body,
            body_cut=cut,
            connector=self.connector,
            masked_params=(),
            secrets=secrets,
            request_id_headers=self._request_id_headers,
            body_limit=200,
        )


def _own_copy(error: ConnectorError) -> ConnectorError:
    """A shallow copy of ``error`` with its own ``details`` (the original if it resists)."""
    try:
        twin = copy.copy(error)
    except Exception:  # pragma: no cover - an error class with an unusual constructor
        return error
    twin.details = dict(error.details)
    return twin
