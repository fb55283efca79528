"""HttpConnector: httpx on the connector road (limiter, breaker, timeout, errors, retry)."""

from __future__ import annotations

import asyncio
import contextlib
import http.cookiejar
import importlib.util
import logging
import math
import os
import random
import ssl
import time
import urllib.request
from collections.abc import AsyncIterator, Callable, Coroutine, Mapping, Sequence
from typing import Any, ClassVar, TypedDict, Unpack

import aiohttp
import httpx
import yarl
from pydantic import SecretStr

from connector_core import (
    USE_DEFAULT,
    BaseConnector,
    ConfigError,
    ConnectorConfig,
    ConnectorError,
    ConnectorTimeoutError,
    FieldError,
    InvalidRequestError,
    NotConnectedError,
    RetryRule,
    scrub_secrets,
)
from connector_http import _pagination
from connector_http._aiohttp_transport import (
    CHUNK_SIZE,
    AiohttpTransport,
    client_timeout,
    mapped,
    wrap,
)
from connector_http._auth import (
    OAuth2TokenSource,
    StaticAuth,
    TokenRotatedCallback,
    static_auth,
)
from connector_http._auth_config import (
    OAuth2ClientCredentialsConfig,
    OAuth2JwtBearerConfig,
    OAuth2RefreshTokenConfig,
)
from connector_http._config import VERSION, HttpConfig
from connector_http._errors import request_id_of, status_error, transport_error
from connector_http._http_syntax import HEADER_VALUE_RULE, is_header_value
from connector_http._response import (
    HttpResponse,
    HttpStreamResponse,
    Received,
    read_body,
    read_capped,
    too_large,
)
from connector_http._transport import (
    CREDENTIAL_EXTENSION,
    CredentialTransport,
    Origin,
    RequestCredential,
    origin_of,
    trusted_origins,
)

_httpx_log = logging.getLogger("httpx")

IDEMPOTENT_METHODS = frozenset({"GET", "HEAD", "OPTIONS", "PUT", "DELETE", "TRACE"})
"""Methods retried by default; POST and PATCH only with ``idempotent=True`` or an
``Idempotency-Key`` header."""

ItemsSelector = str | Callable[[Any], Sequence[Any] | None] | None
MarkerSelector = str | Callable[[Any], Any]


class RequestOptions(TypedDict, total=False):
    """Keyword arguments every request helper accepts (see :meth:`HttpConnector.request`)."""

    params: Mapping[str, Any] | None
    json: Any
    data: Mapping[str, Any] | None
    content: bytes | str | None
    headers: Mapping[str, str] | None
    timeout: float | None
    idempotent: bool | None
    correlation_id: str | None
    user_token: str | SecretStr | None
    operation: str | None
    retry_on: RetryRule | None
    accept_error: Callable[[HttpResponse], bool] | None


class _Outgoing:
    """One request as every attempt sends it (the same headers, correlation id and
    credential each time). A plain class whose options default at class level, set on
    the instance only when a call gives them: a frozen dataclass's ``__init__`` of
    twelve fields cost more than the rest of the connector's own work (decision 0098).

    ``direct``: the direct aiohttp path can send it (no body, not a stream). ``plain``:
    its headers are only the correlation id (the call gave no headers), so the direct
    path sends the cached default headers and that one pair."""

    params: Mapping[str, Any] | None = None
    json: Any = None
    data: Mapping[str, Any] | None = None
    content: bytes | str | None = None
    timeout: httpx.Timeout | Any = httpx.USE_CLIENT_DEFAULT
    user_token: str | None = None
    stream: bool = False
    accept_error: Callable[[HttpResponse], bool] | None = None
    direct: bool = True

    def __init__(self, method: str, url: str, headers: dict[str, str], plain: bool) -> None:
        self.method = method
        self.url = url
        self.headers = headers
        self.plain = plain


class _CookieJar(http.cookiejar.CookieJar):
    """The client's cookie jar, which remembers whether it was ever given a cookie:
    every way into a jar (httpx's ``extract_cookies``, ``Cookies.set``) goes through
    ``set_cookie``. Until then the direct path need not count an empty jar per request."""

    held = False

    def set_cookie(self, cookie: http.cookiejar.Cookie) -> None:
        self.held = True
        super().set_cookie(cookie)


def _credential(token: str | None) -> dict[str, Any] | None:
    """Request extensions carrying ``token`` as the request's bearer credential."""
    if token is None:
        return None
    return {CREDENTIAL_EXTENSION: RequestCredential("Bearer " + token)}


def _has_idempotency_key(headers: Mapping[str, str] | None) -> bool:
    return headers is not None and any(k.lower() == "idempotency-key" for k in headers)


# Correlation ids need to be unique, not secret: a private generator seeded from the OS
# (again in a forked child) makes one in a third of os.urandom's time, without its
# system call on every request; user code seeding ``random`` cannot repeat them.
_ids = random.Random(os.urandom(32))
if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=lambda: _ids.seed(os.urandom(32)))


def _new_correlation_id() -> str:
    """32 hex digits (128 random bits), as ``os.urandom(16).hex()`` gave."""
    return _ids.randbytes(16).hex()


async def _raising(exc: Exception) -> Any:
    """A coroutine that raises ``exc`` when awaited (what a coroutine function does)."""
    raise exc


class HttpConnector(BaseConnector[HttpConfig]):
    """An async HTTP client for one API, on the shared connector road.

    Every request goes through :meth:`BaseConnector.run`: rate limiter -> circuit
    breaker -> timeout -> error translation -> retry -> stats. Error statuses become
    typed errors (400/422 InvalidRequestError, 401 AuthenticationError, 403
    PermissionDeniedError, 404 NotFoundError, 409 ConflictError, 429 RateLimitedError
    with ``retry_after``, 5xx ServiceUnavailableError); resets and read timeouts are
    transient. Only idempotent requests are retried (GET, HEAD, OPTIONS, PUT, DELETE;
    POST/PATCH with ``idempotent=True`` or an ``Idempotency-Key`` header).

    Args:
        config: an :class:`HttpConfig` or a URL for :meth:`HttpConfig.from_url`.
        on_token_rotated: called (sync or async) with the new refresh token when an
            OAuth2 refresh-token server rotates it; persist it there.
        transport: an ``httpx.AsyncBaseTransport`` to send requests through instead of
            the network (``httpx.MockTransport(handler)`` to test code that uses the
            connector). The config's TLS, proxy, HTTP/2 and pool settings are then the
            transport's business; credentials, retries, limits and errors work as
            usual. The connector does not close a transport it was given.
        **kwargs: ``retry_policy``, ``rate_limiter``, ``circuit_breaker``, ``clock``,
            ``sleep`` (see :class:`connector_core.BaseConnector`).

    Raises ImportError naming the extra when ``http2`` or JWT bearer auth lacks its
    dependency, and ConfigError for an invalid config.
    """

    name: ClassVar[str] = "http"
    version: ClassVar[str] = VERSION
    config_class: ClassVar[type[ConnectorConfig]] = HttpConfig

    def __init__(
        self,
        config: HttpConfig | str,
        *,
        on_token_rotated: TokenRotatedCallback | None = None,
        transport: httpx.AsyncBaseTransport | None = None,
        **kwargs: Any,
    ) -> None:
        if isinstance(config, str):
            config = HttpConfig.from_url(config)
        super().__init__(config, **kwargs)
        cfg = self.config
        if cfg.http2:
            try:
                import h2  # noqa: F401
            except ImportError as exc:
                raise ImportError(
                    "http2=True needs the h2 package: pip install 'connector-http[http2]'"
                ) from exc
        socks = cfg.proxy is not None and cfg.proxy.get_secret_value().startswith("socks")
        if socks and importlib.util.find_spec("socksio") is None:
            raise ImportError(
                "a socks5:// proxy needs the socksio package: pip install 'httpx[socks]'"
            )
        auth = cfg.auth
        self._token_source: OAuth2TokenSource | None = None
        self._static = StaticAuth({})
        if isinstance(
            auth,
            OAuth2ClientCredentialsConfig | OAuth2RefreshTokenConfig | OAuth2JwtBearerConfig,
        ):
            self._token_source = OAuth2TokenSource(
                auth,
                connector=self.name,
                on_token_rotated=on_token_rotated,
                request_id_headers=cfg.request_id_headers,
                known_secrets=self._secrets,
                max_body=cfg.max_response_bytes,
                max_error_body=cfg.max_error_body_bytes,
            )
        else:
            self._static = static_auth(auth)
        self._masked = cfg.masked_query_params
        self._origins: frozenset[Origin] = trusted_origins(cfg.base_url, cfg.trusted_origins)
        self._corr_header = cfg.correlation_id_header
        self._corr_lower = cfg.correlation_id_header.lower()
        self._client: httpx.AsyncClient | None = None
        self._transport = transport
        # The credential transport over aiohttp, sent to directly (see _dispatch); None
        # on httpcore or a given transport, where client.send() is used.
        self._wire: CredentialTransport | None = None
        self._aio: AiohttpTransport | None = None
        self._direct = False
        self._targets: dict[str, tuple[httpx.URL, yarl.URL, bool]] = {}
        self._wire_headers: dict[str, tuple[str, str]] = {}
        self._static_pairs: list[tuple[str, str]] = []
        self._auth_free = True
        self._plain_ok = False
        self._jar = _CookieJar()
        self._aio_timeout = aiohttp.ClientTimeout()

    # -- lifecycle ----------------------------------------------------------------------

    def _ssl_verify(self) -> ssl.SSLContext | bool:
        tls = self.config.tls
        if tls.verify and not tls.ca_bundle and not tls.client_cert:
            return True
        try:
            if tls.verify:
                import certifi

                ctx = ssl.create_default_context(cafile=tls.ca_bundle or certifi.where())
            else:
                ctx = ssl.create_default_context()
                ctx.check_hostname = False
                ctx.verify_mode = ssl.CERT_NONE
            if tls.client_cert:
                password = tls.client_key_password
                ctx.load_cert_chain(
                    tls.client_cert,
                    tls.client_key,
                    password.get_secret_value() if password else None,
                )
            return ctx
        except (OSError, ssl.SSLError, ValueError) as exc:
            reason = f"{type(exc).__name__}: {getattr(exc, 'strerror', None) or exc}"
        # Raised after the block: the ssl error (which may name the key file) is not chained.
        fields = [f for f in ("ca_bundle", "client_cert", "client_key") if getattr(tls, f)]
        raise ConfigError(
            f"invalid tls settings: cannot load {', '.join('tls.' + f for f in fields)} ({reason})",
            errors=[FieldError(f"tls.{f}", "cannot be loaded") for f in fields],
            connector=self.name,
        )

    def _on_aiohttp(self) -> bool:
        """Whether requests go over aiohttp (HTTP/1.1 without a proxy: decision 0090)
        rather than httpcore (HTTP/2, a configured or environment proxy)."""
        cfg = self.config
        if cfg.http2 or cfg.proxy is not None:
            return False
        return not (cfg.trust_env and any(
            k != "no" for k in urllib.request.getproxies_environment()
        ))  # fmt: skip

    def _build_client(self) -> httpx.AsyncClient:
        cfg = self.config
        proxy = cfg.proxy.get_secret_value() if cfg.proxy is not None else None
        limits = cfg.limits
        keepalive = limits.max_keepalive_connections
        if keepalive is None:  # as many idle connections as the pool may hold
            keepalive = limits.max_connections
        given = self._transport
        inner: httpx.AsyncBaseTransport
        if given is not None:
            inner = given
        elif self._on_aiohttp():
            inner = AiohttpTransport(
                ssl_context=httpx.create_ssl_context(
                    verify=self._ssl_verify(), trust_env=cfg.trust_env
                ),
                max_connections=limits.max_connections,
                keepalive_expiry=limits.keepalive_expiry,
            )
        else:
            inner = httpx.AsyncHTTPTransport(
                verify=self._ssl_verify(),
                http2=cfg.http2,
                limits=httpx.Limits(
                    max_connections=limits.max_connections,
                    max_keepalive_connections=keepalive,
                    keepalive_expiry=limits.keepalive_expiry,
                ),
                proxy=proxy,
                trust_env=cfg.trust_env,
            )
        static = self._static
        transport = CredentialTransport(
            inner,
            origins=self._origins,
            headers=static.headers,
            query=static.query,
            owns_inner=given is None,
        )
        aio = inner if isinstance(inner, AiohttpTransport) else None
        self._wire = transport if aio is not None else None
        self._aio = aio
        # Not when following redirects: only client.send builds redirect requests.
        self._direct = aio is not None and not cfg.follow_redirects
        self._targets.clear()
        # Every read of the direct path happens within the attempt's deadline (the
        # config's ``timeout``): a per-read timeout that cannot end first is left out.
        self._aio_timeout = client_timeout(
            httpx.Timeout(**cfg.timeouts.model_dump()).as_dict(), deadline=cfg.timeout
        )
        # The credentials are the transport's to add (to trusted origins only): a header
        # of the same name in ``headers`` must not go out to every origin in their place.
        names = {name.lower() for name in static.headers}
        headers = {"User-Agent": cfg.user_agent}
        headers.update((k, v) for k, v in cfg.headers.items() if k.lower() not in names)
        self._jar = jar = _CookieJar()
        client = httpx.AsyncClient(
            base_url=httpx.URL(cfg.base_url),
            headers=headers,
            cookies=jar,
            timeout=httpx.Timeout(**cfg.timeouts.model_dump()),
            transport=transport,
            # Redirects are followed by _send_following, never by httpx (which would read
            # each redirect's body whole).
            follow_redirects=False,
            trust_env=cfg.trust_env,
        )
        # The client's default headers as the direct path sends them (lower name: pair).
        self._wire_headers = wire_headers = {k.lower(): (k, v) for k, v in client.headers.items()}
        if aio is not None:  # the session sends them: the direct path need not
            aio.default_headers = tuple(wire_headers.values())
        self._static_pairs = list(static.headers.items())
        credentials = {name.lower() for name in static.headers}
        taken = {*wire_headers, *credentials}
        self._auth_free = "authorization" not in taken
        # A default or credential of the correlation header's name, or a credential of a
        # default's: the general merge decides.
        self._plain_ok = self._corr_lower not in taken and not credentials & set(wire_headers)
        return client

    async def _connect(self) -> None:
        self._client = client = self._build_client()
        if self.config.connect_probe:
            # Any HTTP answer proves the server is there; ping() judges the status. A
            # little of the body is read (so the connection can be reused), never all.
            request = client.build_request(
                "GET", self.config.health_path, headers={self._corr_header: _new_correlation_id()}
            )
            response = await client.send(request, stream=True)
            await read_capped(response, self.config.max_error_body_bytes)

    async def _disconnect(self) -> None:
        client, self._client = self._client, None
        if client is not None:
            await client.aclose()

    async def _ping(self) -> None:
        headers = {self._corr_header: _new_correlation_id()}
        await self._send(_Outgoing("GET", self.config.health_path, headers, plain=True))

    def _translate_error(self, exc: BaseException) -> ConnectorError | None:
        if isinstance(exc, httpx.InvalidURL):
            return InvalidRequestError(f"invalid URL ({exc})", connector=self.name)
        return transport_error(exc, connector=self.name, masked_params=self._masked)

    def _is_connection_lost(self, error: ConnectorError) -> bool:
        # httpx's pool replaces broken connections itself; rebuilding the client would
        # abort every other request in flight on it.
        return False

    # -- requests -----------------------------------------------------------------------

    def _known_secrets(self) -> tuple[str, ...]:
        """The config's secrets with their wire forms (``HttpConfig.secret_values``) and
        those learnt at run time (OAuth2 access and rotated refresh tokens)."""
        if self._token_source is None:
            return self._secrets
        return self._secrets + self._token_source.secrets

    def _error_secrets(self, user_token: str | None) -> tuple[str, ...]:
        secrets = self._known_secrets()
        return (*secrets, user_token) if user_token else secrets

    def _user_token(self, token: str | SecretStr | None) -> str | None:
        """The per-call token's value; InvalidRequestError (which never quotes it) when it
        cannot be a header value: h11 would refuse it with a message, and httpcore a DEBUG
        log line, that quote it."""
        value = token.get_secret_value() if isinstance(token, SecretStr) else token
        if value is not None and not (value and is_header_value("Bearer " + value)):
            raise InvalidRequestError(
                f"user_token must be a non-empty HTTP header value: {HEADER_VALUE_RULE}",
                connector=self.name,
            )
        return value

    def _headers(
        self, headers: Mapping[str, str] | None, correlation_id: str | None
    ) -> dict[str, str]:
        if not headers:  # the usual call: only the correlation id
            if not (correlation_id and correlation_id.strip()):
                correlation_id = _new_correlation_id()
            return {self._corr_header: correlation_id}
        out = dict(headers)
        if correlation_id and correlation_id.strip():
            for key in [k for k in out if k.lower() == self._corr_lower]:
                del out[key]
            out[self._corr_header] = correlation_id
        elif not any(k.lower() == self._corr_lower for k in out):
            # None or "" (or blank): generate one.
            out[self._corr_header] = _new_correlation_id()
        return out

    def _build(self, client: httpx.AsyncClient, out: _Outgoing, token: str | None) -> httpx.Request:
        return client.build_request(
            out.method, out.url, params=out.params, json=out.json, data=out.data,
            content=out.content, headers=out.headers, timeout=out.timeout,
            extensions=_credential(token),
        )  # fmt: skip

    async def _send(self, out: _Outgoing) -> tuple[httpx.Response | Received, bytes | None]:
        """One attempt: (the response, its body; None with ``out.stream``, the body then
        still to be read). Error statuses raise, unless ``out.accept_error`` accepts them."""
        client = self._client
        if client is None:
            raise NotConnectedError("the HTTP client is closed", connector=self.name)
        source = self._token_source if out.user_token is None else None
        token = out.user_token
        if source is not None:
            token = await source.token(client)
        if (
            self._aio is not None
            and self._direct
            and out.direct
            and not (self._jar.held and len(self._jar))
        ):
            got = await self._send_direct(client, self._aio, out, token)
            if isinstance(got, tuple):
                return got
            response = await self._follow(client, got)
        else:
            response = await self._send_following(client, self._build(client, out, token))
        return await self._finish(client, out, response, source, token)

    async def _fetch(self, out: _Outgoing) -> HttpResponse:
        """One attempt of :meth:`request`: :meth:`_send` and the response's view, with a
        2xx of the direct path straight from :meth:`_send_direct` (a frame less on every
        resume of the usual call; decision 0138)."""
        client = self._client
        aio = self._aio
        token = out.user_token
        response: httpx.Response | Received
        if (
            client is not None
            and aio is not None
            and self._direct
            and out.direct
            and (token is not None or self._token_source is None)
            and not (self._jar.held and len(self._jar))
        ):
            got = await self._send_direct(client, aio, out, token)
            if isinstance(got, tuple):
                return self._view(got[0], got[1])
            followed = await self._follow(client, got)
            response, body = await self._finish(client, out, followed, None, token)
        else:
            response, body = await self._send(out)
        assert body is not None  # not a stream
        return self._view(response, body)

    async def _finish(
        self,
        client: httpx.AsyncClient,
        out: _Outgoing,
        response: httpx.Response,
        source: Any,
        token: str | None,
    ) -> tuple[httpx.Response, bytes | None]:
        """The rest of an attempt once the response's head is in: one refresh and resend
        on a 401 of a token source, error statuses raised (or accepted), the body read."""
        cfg = self.config
        if response.status_code == 401 and source is not None and token is not None:
            # The token may have been revoked early: refresh once and try again.
            await read_capped(response, cfg.max_error_body_bytes)
            source.invalidate(token)
            token = await source.token(client)
            response = await self._send_following(client, self._build(client, out, token))
        if response.status_code >= 400:
            body, cut = await read_capped(response, cfg.max_error_body_bytes)
            accept = out.accept_error
            if (
                accept is not None
                and not out.stream
                and not cut
                and accept(self._view(response, body))
            ):
                return response, body
            raise self._status_error(response, body, cut, out.user_token)
        if out.stream:
            return response, None
        body = await read_body(
            response, cfg.max_response_bytes, connector=self.name, masked_params=self._masked
        )
        return response, body

    def _view(self, response: httpx.Response | Received, body: bytes) -> HttpResponse:
        return HttpResponse(
            response,
            content=body,
            connector=self.name,
            request_id_headers=self.config.request_id_headers,
            masked_params=self._masked,
        )

    async def _send_following(
        self, client: httpx.AsyncClient, request: httpx.Request
    ) -> httpx.Response:
        """Send ``request`` with its body left to read, following redirects when the
        config says so. httpx would read every redirect's body whole, unbounded; here at
        most ``max_error_body_bytes`` of each is read. The credentials of each hop are
        the transport's to decide (only trusted origins get them)."""
        return await self._follow(client, await self._dispatch(client, request))

    async def _follow(self, client: httpx.AsyncClient, response: httpx.Response) -> httpx.Response:
        """The response at the end of ``response``'s redirects (when the config follows
        them), each redirect's body read to at most ``max_error_body_bytes``."""
        if not self.config.follow_redirects:
            return response
        hops = 0
        while (next_request := response.next_request) is not None:
            await read_capped(response, self.config.max_error_body_bytes)
            hops += 1
            if hops > client.max_redirects:
                raise httpx.TooManyRedirects(
                    f"Exceeded maximum allowed redirects ({client.max_redirects}).",
                    request=next_request,
                )
            response = await self._dispatch(client, next_request)
        return response

    def _target(
        self, client: httpx.AsyncClient, out: _Outgoing
    ) -> tuple[httpx.URL, yarl.URL, bool]:
        """(the URL as httpx would merge it, the URL sent, with the query credential when
        trusted, whether its origin is trusted): cached for a path without params."""
        if out.params is None:
            hit = self._targets.get(out.url)
            if hit is not None:
                return hit
        url = httpx.URL(out.url)
        if url.is_relative_url:  # httpx's base_url joining (AsyncClient._merge_url), exactly
            base = client.base_url
            url = base.copy_with(raw_path=base.raw_path + url.raw_path.lstrip(b"/"))
        if out.params is not None:
            url = url.copy_merge_params(out.params)
        trusted = origin_of(url) in self._origins
        query = self._static.query
        wire = str(url.copy_merge_params({query[0]: query[1]}) if trusted and query else url)
        target = (url, yarl.URL(wire, encoded=True), trusted)
        if out.params is None and len(self._targets) < 256:
            self._targets[out.url] = target
        return target

    def _wire_pairs(
        self, out: _Outgoing, trusted: bool, token: str | None
    ) -> list[tuple[str, str]]:
        """The headers the direct path sends, as the httpx road would: the client's
        defaults, the call's (replacing defaults of the same name), then, to a trusted
        origin only, the static credentials the call does not set and the bearer token."""
        if out.plain and self._plain_ok and (token is None or self._auth_free):
            # Only the correlation id, whose name no default or credential uses; the
            # defaults are the aiohttp session's (AiohttpTransport.default_headers).
            pairs = list(out.headers.items())
            if trusted:
                pairs += self._static_pairs
                if token is not None:
                    pairs.append(("Authorization", "Bearer " + token))
            return pairs
        headers = dict(self._wire_headers)
        for name, value in out.headers.items():
            headers[name.lower()] = (name, value)
        if trusted:
            for name, value in self._static.headers.items():
                headers.setdefault(name.lower(), (name, value))
            if token is not None:
                headers["authorization"] = ("Authorization", "Bearer " + token)
        return list(headers.values())

    async def _send_direct(
        self,
        client: httpx.AsyncClient,
        aio: AiohttpTransport,
        out: _Outgoing,
        token: str | None,
    ) -> tuple[Received, bytes] | httpx.Response:
        """A body-less request straight to aiohttp, without an httpx request or response
        (decision 0090): the same URL, headers and credentials as the httpx road (only
        to trusted origins), its timeouts, and its errors (mapped as the transport maps
        them). A 2xx with an identity body is read here, within ``max_response_bytes``;
        anything else (a redirect, an error status, a compressed body, a cookie) comes
        back as an ``httpx.Response`` for the general road to handle."""
        url, wire, trusted = self._target(client, out)
        headers = self._wire_pairs(out, trusted, token)
        timeout = self._aio_timeout
        if out.timeout is not httpx.USE_CLIENT_DEFAULT:
            # A per-call timeout is both the phase timeouts and the attempt's deadline.
            phases = out.timeout.as_dict()
            timeout = client_timeout(phases, deadline=phases["read"])
        started = time.perf_counter()
        try:
            response = await aio.session().request(
                out.method, wire, headers=headers, allow_redirects=False, timeout=timeout
            )
        except (aiohttp.ClientError, TimeoutError, ValueError) as exc:
            with mapped(self._build(client, out, token)):
                raise exc from None
        status = response.status
        encoding = response.headers.get("Content-Encoding")
        if (
            status >= 300
            or status < 200
            or (encoding is not None and encoding.strip().lower() != "identity")
            or "Set-Cookie" in response.headers
        ):
            got = wrap(response, self._build(client, out, token), started)
            return await self._received(client, got)
        limit = self.config.max_response_bytes
        content = response.content
        chunks: list[bytes] = []
        size = 0
        try:
            while chunk := await content.read(CHUNK_SIZE):
                size += len(chunk)
                if size > limit:
                    response.close()  # the rest is never downloaded
                    raise too_large(
                        out.method, url, status, limit,
                        connector=self.name, masked_params=self._masked,
                    )  # fmt: skip
                chunks.append(chunk)
                if content.at_eof():  # no empty read to learn it (one await less)
                    break
        except (aiohttp.ClientError, TimeoutError) as exc:
            response.close()
            with mapped(self._build(client, out, token), reading=True):
                raise exc from None
        except BaseException:  # too large, cancelled: the connection is not reusable
            response.close()
            raise
        response.release()
        body = chunks[0] if len(chunks) == 1 else b"".join(chunks)
        if _httpx_log.isEnabledFor(logging.INFO):
            _httpx_log.info(
                'HTTP Request: %s %s "HTTP/1.1 %d %s"', out.method, url, status, response.reason
            )
        received = Received(
            status,
            response.reason or "",
            response.raw_headers,
            out.method,
            url,
            time.perf_counter() - started,
        )
        return received, body

    async def _dispatch(self, client: httpx.AsyncClient, request: httpx.Request) -> httpx.Response:
        """``client.send(request, stream=True)``; on the aiohttp road straight to the
        transport (decision 0090): the client's auth flow, hooks and stream wrapping cost
        more than the wire there, and do nothing for the connector (no client auth or
        hooks; redirects are :meth:`_send_following`'s). What they do that matters is
        done here: cookies kept, the request logged as httpx logs it, ``elapsed`` (set
        by the transport's body)."""
        wire = self._wire
        if wire is None or self.config.follow_redirects:
            # Redirect requests are client.send's to build (response.next_request).
            return await client.send(request, stream=True)
        return await self._received(client, await wire.handle_async_request(request))

    async def _received(
        self, client: httpx.AsyncClient, response: httpx.Response
    ) -> httpx.Response:
        """What client.send does with a response from its transport (see _dispatch)."""
        try:
            return self._adopt(client, response)
        except BaseException:
            await response.aclose()
            raise

    def _adopt(self, client: httpx.AsyncClient, response: httpx.Response) -> httpx.Response:
        """The cookies kept, the httpx log line."""
        request = response.request
        if "set-cookie" in response.headers:
            client.cookies.extract_cookies(response)
        if _httpx_log.isEnabledFor(logging.INFO):
            _httpx_log.info(
                'HTTP Request: %s %s "%s %d %s"', request.method, request.url,
                response.http_version, response.status_code, response.reason_phrase,
            )  # fmt: skip
        return response

    def _status_error(
        self, response: httpx.Response, body: bytes, cut: bool, user_token: str | None
    ) -> ConnectorError:
        cfg = self.config
        return status_error(
            response,
            body=body,
            body_cut=cut,
            connector=self.name,
            masked_params=self._masked,
            secrets=self._error_secrets(user_token),
            request_id_headers=cfg.request_id_headers,
            body_limit=cfg.error_body_limit,
        )

    def _prepare(
        self,
        method: str,
        path: str,
        options: RequestOptions,
        *,
        stream: bool = False,
    ) -> tuple[_Outgoing, bool]:
        """The request every attempt sends, and whether it may be retried by default."""
        method = method.upper()
        if not options:  # the usual call: nothing but the path
            out = _Outgoing(method, path, self._headers(None, None), True)
            if stream:
                out.stream, out.direct = True, False
            return out, method in IDEMPOTENT_METHODS
        headers = options.get("headers")
        idempotent = options.get("idempotent")
        if idempotent is None:
            idempotent = method in IDEMPOTENT_METHODS or _has_idempotency_key(headers)
        out = _Outgoing(
            method, path, self._headers(headers, options.get("correlation_id")), not headers
        )
        if (params := options.get("params")) is not None:
            out.params = params
        out.json, out.data, out.content = (
            options.get("json"),
            options.get("data"),
            options.get("content"),
        )
        if stream:
            out.stream = True
        out.direct = not stream and out.json is None and out.data is None and out.content is None
        if (timeout := options.get("timeout")) is not None:
            out.timeout = httpx.Timeout(timeout)
        if (token := options.get("user_token")) is not None:
            out.user_token = self._user_token(token)
        if (accept := options.get("accept_error")) is not None:
            out.accept_error = accept
        return out, idempotent

    def request(
        self, method: str, path: str, **options: Unpack[RequestOptions]
    ) -> Coroutine[Any, Any, HttpResponse]:
        """Send one request and read its body: ``await`` it for an :class:`HttpResponse`.

        ``path`` is joined to ``base_url`` (an absolute URL is used as is). Options:

        * ``params``, ``json``, ``data``, ``content``, ``headers``: as in httpx;
        * ``timeout`` (seconds) overrides both httpx's timeouts and the per-attempt
          deadline;
        * ``idempotent`` overrides the method's default retry rule; ``retry_on``
          replaces the rule altogether for this call (an error for which it returns
          True is retried, whatever the method: a 429 refused a POST before it was
          processed, say); authentication errors are never retried;
        * ``correlation_id`` is sent in the correlation header; when it is None or
          empty, the header given in ``headers`` is kept, or a random one is generated
          (the same for every retry of the call);
        * ``user_token`` is sent as ``Authorization: Bearer`` for this call only,
          instead of the configured auth, to trusted origins only, and never logged;
        * ``operation`` names the call in stats;
        * ``accept_error``: an error response for which it returns True (given as an
          HttpResponse holding at most ``max_error_body_bytes`` of its body) is returned
          instead of raised.

        Raises NotConnectedError before ``connect()``; InvalidRequestError,
        AuthenticationError, PermissionDeniedError, NotFoundError, ConflictError,
        RateLimitedError, ServiceUnavailableError for error statuses;
        ConnectionFailedError, ConnectorTimeoutError, CircuitOpenError otherwise;
        ResponseTooLargeError past ``max_response_bytes``.
        """
        try:
            out, idempotent = self._prepare(method, path, options)
        except Exception as exc:  # raised when awaited, as from a coroutine function
            return _raising(exc)
        timeout = options.get("timeout")
        return self.run(
            options.get("operation") or out.method,
            lambda: self._fetch(out),
            idempotent=idempotent,
            timeout=USE_DEFAULT if timeout is None else timeout,
            retry_on=options.get("retry_on"),
        )

    def get(
        self, path: str, **options: Unpack[RequestOptions]
    ) -> Coroutine[Any, Any, HttpResponse]:
        """``request("GET", path, ...)``; retried on transient errors."""
        return self.request("GET", path, **options)

    def head(
        self, path: str, **options: Unpack[RequestOptions]
    ) -> Coroutine[Any, Any, HttpResponse]:
        """``request("HEAD", path, ...)``."""
        return self.request("HEAD", path, **options)

    def options(
        self, path: str, **options: Unpack[RequestOptions]
    ) -> Coroutine[Any, Any, HttpResponse]:
        """``request("OPTIONS", path, ...)``."""
        return self.request("OPTIONS", path, **options)

    def post(
        self, path: str, **options: Unpack[RequestOptions]
    ) -> Coroutine[Any, Any, HttpResponse]:
        """``request("POST", path, ...)``; not retried unless ``idempotent=True`` or an
        ``Idempotency-Key`` header is sent."""
        return self.request("POST", path, **options)

    def put(
        self, path: str, **options: Unpack[RequestOptions]
    ) -> Coroutine[Any, Any, HttpResponse]:
        """``request("PUT", path, ...)``."""
        return self.request("PUT", path, **options)

    def patch(
        self, path: str, **options: Unpack[RequestOptions]
    ) -> Coroutine[Any, Any, HttpResponse]:
        """``request("PATCH", path, ...)``; retried only like POST."""
        return self.request("PATCH", path, **options)

    def delete(
        self, path: str, **options: Unpack[RequestOptions]
    ) -> Coroutine[Any, Any, HttpResponse]:
        """``request("DELETE", path, ...)``."""
        return self.request("DELETE", path, **options)

    @contextlib.asynccontextmanager
    async def stream(
        self,
        method: str,
        path: str,
        *,
        deadline: float | None = None,
        **options: Unpack[RequestOptions],
    ) -> AsyncIterator[HttpStreamResponse]:
        """Send a request and read its body in chunks, in constant memory::

            async with connector.stream("GET", "/export") as response:
                async for chunk in response.aiter_bytes():
                    ...

        Sending and receiving the status and headers go through the connector road
        (and may be retried); reading the body does not. The whole stream, headers and
        body, must be done within ``deadline`` seconds (default: the config's
        ``stream_deadline``), or reading raises ConnectorTimeoutError: a peer that
        trickles a byte now and then never trips the per-read timeouts. The body has
        no size limit. Raises like :meth:`request`, and InvalidRequestError for a
        ``deadline`` that is not a positive number of seconds.
        """
        seconds = self.config.stream_deadline if deadline is None else deadline
        if seconds is not None and not 0 < seconds < math.inf:
            raise InvalidRequestError(
                "stream deadline must be a positive, finite number of seconds",
                connector=self.name,
            )
        loop = asyncio.get_running_loop()
        ends = None if seconds is None else loop.time() + seconds
        out, idempotent = self._prepare(method, path, options, stream=True)
        method = out.method
        timeout = options.get("timeout")

        operation = options.get("operation") or f"{method} stream"

        def too_late() -> ConnectorError:
            return ConnectorTimeoutError(
                f"{operation}: the stream deadline of {seconds}s passed (stream_deadline)",
                connector=self.name,
                details={"method": method, "deadline": seconds},
            )

        scope = asyncio.timeout_at(ends)
        expired = False
        try:
            async with scope:
                sent = await self.run(
                    operation,
                    lambda: self._send(out),
                    idempotent=idempotent,
                    timeout=USE_DEFAULT if timeout is None else timeout,
                    retry_on=options.get("retry_on"),
                )
        except TimeoutError:
            if not scope.expired():
                raise
            expired = True
        if expired:  # raised after the block: nothing chained
            raise too_late()
        response = sent[0]
        assert isinstance(response, httpx.Response)  # streams never take the direct path
        try:
            yield HttpStreamResponse(
                response,
                lambda exc: self._to_error(exc, operation),
                request_id_of(response.headers, self.config.request_id_headers),
                deadline=ends,
                deadline_error=too_late,
            )
        finally:
            await response.aclose()

    # -- pagination ---------------------------------------------------------------------

    def paginate_pages(
        self,
        path: str,
        *,
        items: ItemsSelector = None,
        page_param: str = "page",
        first_page: int = 1,
        page_size: int | None = None,
        size_param: str = "per_page",
        max_pages: int | None = None,
        params: Mapping[str, Any] | None = None,
        headers: Mapping[str, str] | None = None,
        user_token: str | SecretStr | None = None,
    ) -> AsyncIterator[Any]:
        """Iterate the items of ``?page=1,2,...`` pages.

        ``items`` picks the list out of the JSON body (a dotted path like ``"data.items"``,
        a callable, or None when the body is the list). Stops on an empty page, a page
        shorter than ``page_size`` or after ``max_pages``. Raises PaginationLoopError
        when the server sends the same page twice in a row (it ignores ``page_param``).
        """
        return _pagination.page_number(
            self, path, items=items, page_param=page_param, first_page=first_page,
            page_size=page_size, size_param=size_param, max_pages=max_pages,
            params=params, headers=headers, user_token=user_token,
        )  # fmt: skip

    def paginate_offset(
        self,
        path: str,
        *,
        items: ItemsSelector = None,
        limit: int = 100,
        offset_param: str = "offset",
        limit_param: str = "limit",
        first_offset: int = 0,
        max_pages: int | None = None,
        params: Mapping[str, Any] | None = None,
        headers: Mapping[str, str] | None = None,
        user_token: str | SecretStr | None = None,
    ) -> AsyncIterator[Any]:
        """Iterate the items of ``?offset=0&limit=N`` pages; the offset advances by the
        number of items received. Stops on an empty or short page or after ``max_pages``;
        raises PaginationLoopError when the same page comes back twice in a row."""
        return _pagination.offset_limit(
            self, path, items=items, limit=limit, offset_param=offset_param,
            limit_param=limit_param, first_offset=first_offset, max_pages=max_pages,
            params=params, headers=headers, user_token=user_token,
        )  # fmt: skip

    def paginate_cursor(
        self,
        path: str,
        *,
        items: ItemsSelector = None,
        next_cursor: MarkerSelector = "next_cursor",
        cursor_param: str = "cursor",
        first_cursor: str | None = None,
        max_pages: int | None = None,
        params: Mapping[str, Any] | None = None,
        headers: Mapping[str, str] | None = None,
        user_token: str | SecretStr | None = None,
    ) -> AsyncIterator[Any]:
        """Iterate the items of pages chained by a cursor read from the body
        (``next_cursor``: dotted path or callable) and sent back as ``cursor_param``.
        Stops on an empty page, a missing cursor or after ``max_pages``; raises
        PaginationLoopError when the server repeats a cursor."""
        return _pagination.body_cursor(
            self, path, items=items, next_cursor=next_cursor, cursor_param=cursor_param,
            first_cursor=first_cursor, max_pages=max_pages, params=params,
            headers=headers, user_token=user_token,
        )  # fmt: skip

    def paginate_next_url(
        self,
        path: str,
        *,
        items: ItemsSelector = None,
        next_url: MarkerSelector = "next",
        max_pages: int | None = None,
        params: Mapping[str, Any] | None = None,
        headers: Mapping[str, str] | None = None,
        user_token: str | SecretStr | None = None,
    ) -> AsyncIterator[Any]:
        """Iterate the items of pages chained by a next URL in the body (Salesforce's
        ``nextRecordsUrl``: ``next_url="nextRecordsUrl", items="records"``). Relative
        URLs are resolved against the current page's URL; a URL on another origin is
        refused. Stops on an empty page, a missing URL or after ``max_pages``; raises
        PaginationLoopError when the server repeats a URL."""
        return _pagination.body_next_url(
            self, path, items=items, next_url=next_url, max_pages=max_pages,
            params=params, headers=headers, user_token=user_token,
        )  # fmt: skip

    def paginate_links(
        self,
        path: str,
        *,
        items: ItemsSelector = None,
        rel: str = "next",
        max_pages: int | None = None,
        params: Mapping[str, Any] | None = None,
        headers: Mapping[str, str] | None = None,
        user_token: str | SecretStr | None = None,
    ) -> AsyncIterator[Any]:
        """Iterate the items of pages chained by RFC 8288 ``Link: <...>; rel="next"``
        headers (GitHub style). Stops on an empty page, no next link or after
        ``max_pages``; raises PaginationLoopError when the server repeats a URL."""
        return _pagination.link_header(
            self, path, items=items, rel=rel, max_pages=max_pages, params=params,
            headers=headers, user_token=user_token,
        )  # fmt: skip

    # -- introspection ------------------------------------------------------------------

    @property
    def wire(self) -> str:
        """What carries the requests: ``"aiohttp"`` (the HTTP/1.1 default),
        ``"httpcore"`` (``http2=True``, a proxy in the config or, with ``trust_env``, in
        the environment) or ``"transport"`` (``transport=`` was given). Decided at
        ``connect()``; before it, what ``connect()`` would choose."""
        if self._transport is not None:
            return "transport"
        if self._client is not None:
            return "aiohttp" if self._aio is not None else "httpcore"
        return "aiohttp" if self._on_aiohttp() else "httpcore"

    @property
    def token_requests(self) -> int:
        """How many OAuth2 token requests this connector made (0 without OAuth2)."""
        return self._token_source.token_requests if self._token_source else 0

    def scrub(self, text: str, *, user_token: str | SecretStr | None = None) -> str:
        """``text`` with every secret this connector knows masked, and ``user_token``
        (a per-call token) too."""
        user = user_token.get_secret_value() if isinstance(user_token, SecretStr) else user_token
        return scrub_secrets(text, self._error_secrets(user))
