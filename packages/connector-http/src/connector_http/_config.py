"""HttpConfig: where the API is, how to reach it, and how to authenticate."""

from __future__ import annotations

from importlib.metadata import PackageNotFoundError, version
from typing import Any, ClassVar
from urllib.parse import parse_qsl, unquote, urlsplit, urlunsplit

from pydantic import Field, SecretStr, field_validator

from connector_core import (
    MAX_TIMEOUT,
    ConfigError,
    ConnectorConfig,
    FieldError,
    SettingsModel,
    redact_url,
)
from connector_http._auth import wire_secrets
from connector_http._auth_config import ApiKeyAuthConfig, AuthConfig, NoAuthConfig
from connector_http._http_syntax import (
    HeaderName,
    HeaderValue,
    Secret,
    Text,
    check_file_path,
    check_header_name,
    check_header_value,
    check_http_url,
    check_proxy_url,
    check_relative_path,
    split_url,
)
from connector_http._response import DEFAULT_MAX_ERROR_BODY_BYTES, DEFAULT_MAX_RESPONSE_BYTES

try:
    VERSION = version("connector-http")
except PackageNotFoundError:  # pragma: no cover - running from a source tree
    VERSION = "0.0.0"

DEFAULT_REQUEST_ID_HEADERS: tuple[str, ...] = (
    "X-Request-ID",
    "X-Amzn-RequestId",
    "X-Amz-Request-Id",
    "Request-Id",
    "X-GitHub-Request-Id",
    "CF-Ray",
)

# Framing headers belong to each request's body, never to every request.
_PER_REQUEST_HEADERS = frozenset({"content-length", "transfer-encoding"})

# Query parameters of a URL given to ``from_url`` that carry an API key.
_URL_KEY_PARAMS = frozenset({"api_key", "apikey", "api_access_token", "access_token", "key"})


def _origin_or_none(text: str) -> str | None:
    """``text`` as a normalised ``scheme://host[:port]`` origin, or None when it is not
    one (it has a path, a query, user info, or is no http(s) URL)."""
    parts = split_url(text)
    if (
        parts is None
        or parts.scheme not in ("http", "https")
        or not parts.hostname
        or "@" in parts.netloc
        or parts.path not in ("", "/")
        or parts.query
        or parts.fragment
    ):
        return None
    host = parts.hostname if ":" not in parts.hostname else f"[{parts.hostname}]"
    return f"{parts.scheme}://{host}" + (f":{parts.port}" if parts.port is not None else "")


_SET_BY_URL = "set by the URL itself (its path, user info or API key parameter); not again"
_GIVEN_TWICE = "given twice in the URL, or both as a value and as nested fields"


def _set_once(fields: dict[str, Any], path: list[str], value: Any) -> bool:
    """Set ``fields[p0][p1]...`` to ``value``, making maps on the way; False (nothing
    set) when that field, or a value where a map is needed, is there already."""
    target = fields
    for part in path[:-1]:
        nested = target.setdefault(part, {})
        if not isinstance(nested, dict):
            return False
        target = nested
    if path[-1] in target:
        return False
    target[path[-1]] = value
    return True


class HttpTimeouts(SettingsModel):
    """httpx's per-phase timeouts in seconds (``None``: wait forever)."""

    connect: float | None = Field(10.0, gt=0, le=MAX_TIMEOUT)
    read: float | None = Field(30.0, gt=0, le=MAX_TIMEOUT)
    write: float | None = Field(30.0, gt=0, le=MAX_TIMEOUT)
    pool: float | None = Field(10.0, gt=0, le=MAX_TIMEOUT)


class PoolLimits(SettingsModel):
    """Connection pool limits."""

    max_connections: int | None = Field(100, ge=1, description="None: no limit.")
    max_keepalive_connections: int | None = Field(
        None,
        ge=0,
        description="Idle connections kept open; None: as many as max_connections, so a "
        "burst up to the pool size reuses its connections instead of reopening them.",
    )
    keepalive_expiry: float | None = Field(5.0, ge=0, le=MAX_TIMEOUT)


class TlsSettings(SettingsModel):
    """TLS: verification is on by default; add a CA bundle or a client certificate."""

    verify: bool = True
    ca_bundle: str | None = Field(None, description="PEM file of CAs to trust.")
    client_cert: str | None = Field(None, description="PEM file of the client certificate.")
    client_key: str | None = Field(None, description="PEM file of its key (if not in cert).")
    client_key_password: Secret | None = None

    @field_validator("ca_bundle", "client_cert", "client_key")
    @classmethod
    def _check_path(cls, value: str | None) -> str | None:
        return None if value is None else check_file_path(value)


class HttpConfig(ConnectorConfig):
    """Configuration of :class:`HttpConnector`.

    ``HttpConfig.from_url("https://user:pass@api.example.com/v1?timeout=5")`` sets
    ``base_url`` to ``https://api.example.com/v1``, moves the user and password into
    basic auth, an ``api_key``-like query parameter into API-key auth, and maps
    other query parameters onto fields (``timeouts.read=5`` for nested ones).
    Invalid values raise ConfigError naming every bad field.
    """

    url_schemes: ClassVar[tuple[str, ...]] = ("https", "http")

    base_url: str = Field(description="Absolute http(s) URL every relative path is joined to.")
    auth: AuthConfig = Field(default_factory=NoAuthConfig)
    timeouts: HttpTimeouts = Field(default_factory=HttpTimeouts)
    limits: PoolLimits = Field(default_factory=PoolLimits)
    tls: TlsSettings = Field(default_factory=TlsSettings)
    proxy: SecretStr | None = Field(
        None, description="Proxy URL (kept secret: it may hold credentials)."
    )
    trust_env: bool = Field(True, description="Honour HTTP(S)_PROXY, SSL_CERT_FILE, ... vars.")
    http2: bool = Field(False, description="Offer HTTP/2 (needs connector-http[http2]).")
    follow_redirects: bool = Field(
        False, description="Follow 3xx; credentials still go to trusted origins only."
    )
    trusted_origins: tuple[str, ...] = Field(
        (),
        description="Origins (scheme://host[:port]) that also get the credentials, on "
        "redirects and absolute URLs; base_url's origin always does, no other one does.",
    )
    headers: dict[str, str] = Field(default_factory=dict, description="Sent with every request.")
    user_agent: HeaderValue = Field(f"connector-http/{VERSION}", min_length=1)
    correlation_id_header: HeaderName = "X-Correlation-ID"
    request_id_headers: tuple[HeaderName, ...] = DEFAULT_REQUEST_ID_HEADERS
    health_path: str = Field("/", description="Path that ping() and check() GET.")
    connect_probe: bool = Field(
        True, description="connect() makes one request to health_path to prove reachability."
    )
    error_body_limit: int = Field(500, ge=0, description="Characters of a body kept in errors.")
    max_response_bytes: int = Field(
        DEFAULT_MAX_RESPONSE_BYTES,
        ge=1,
        description="Largest body (decoded) request() reads; beyond it ResponseTooLargeError. "
        "stream() bodies have no size limit.",
    )
    max_error_body_bytes: int = Field(
        DEFAULT_MAX_ERROR_BODY_BYTES,
        ge=0,
        description="Bytes of an error (or redirect) body read and kept; the rest is dropped.",
    )
    stream_deadline: float | None = Field(
        3600.0,
        gt=0,
        le=MAX_TIMEOUT,
        description="Seconds a whole stream() (headers and body) may take; None: no limit.",
    )
    redact_query_params: tuple[Text, ...] = Field(
        (), description="More query parameter names whose values are masked in errors."
    )

    @field_validator("base_url")
    @classmethod
    def _check_base_url(cls, value: str) -> str:
        check_http_url(value, query=False)
        return value.rstrip("/") if urlsplit(value).path not in ("", "/") else value

    @field_validator("headers")
    @classmethod
    def _check_headers(cls, value: dict[str, str]) -> dict[str, str]:
        for name, item in value.items():
            check_header_name(name)
            check_header_value(item)
            if name.lower() in _PER_REQUEST_HEADERS:
                raise ValueError("must not set Content-Length or Transfer-Encoding")
        return value

    @field_validator("proxy")
    @classmethod
    def _check_proxy(cls, value: SecretStr | None) -> SecretStr | None:
        if value is not None:
            check_proxy_url(value.get_secret_value())
        return value

    @field_validator("trusted_origins")
    @classmethod
    def _check_trusted_origins(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        origins = []
        for number, entry in enumerate(value):
            origin = _origin_or_none(entry)
            if origin is None:
                raise ValueError(
                    f"entry {number} must be an origin such as https://api.example.com:8443 "
                    "(scheme, host and optional port; no path, query or credentials)"
                )
            origins.append(origin)
        return tuple(origins)

    _health_path = field_validator("health_path")(check_relative_path)

    @classmethod
    def fields_from_url(cls, url: str) -> dict[str, Any]:
        """The fields ``https://user:password@host/path?field=value&nested.field=value``
        gives (see the class). Raises ConfigError naming the field for a URL that is none,
        and for any field the URL gives twice: a repeated parameter, a value and nested
        fields (``timeouts=1&timeouts.read=2``), or a parameter for what the URL's own
        parts set (``base_url``; ``auth.*`` along with user info or an API key
        parameter). Values are never quoted in the error."""
        title = f"invalid {cls.__name__}"
        parts = split_url(url) if isinstance(url, str) else None
        if parts is None:
            raise ConfigError(
                f"{title}: url: not a valid URL", errors=[FieldError("url", "not a valid URL")]
            )
        if parts.scheme not in cls.url_schemes or not parts.hostname:
            message = "must be an absolute http:// or https:// URL"
            raise ConfigError(f"{title}: url: {message}", errors=[FieldError("url", message)])
        netloc = parts.netloc.rpartition("@")[2]
        fields: dict[str, Any] = {
            "base_url": urlunsplit((parts.scheme, netloc, parts.path, "", "")),
        }
        # Plain maps, not models: from_env may refine them (API_AUTH__PASSWORD=...).
        if parts.username:
            fields["auth"] = {
                "type": "basic",
                "username": unquote(parts.username),
                "password": SecretStr(unquote(parts.password or "")),
            }
        set_by_url = set(fields)
        clashes: list[FieldError] = []
        for key, text in parse_qsl(parts.query, keep_blank_values=True):
            path = key.replace("__", ".").split(".")
            value: Any = text
            if key.lower() in _URL_KEY_PARAMS:
                path = ["auth"]
                value = {
                    "type": "api_key",
                    "key": SecretStr(text),
                    "name": key,
                    "location": "query",
                }
            elif path[0] in set_by_url:
                clashes.append(FieldError(path[0], _SET_BY_URL))
                continue
            if not _set_once(fields, path, value):
                clashes.append(FieldError(".".join(path), _GIVEN_TWICE))
            if path == ["auth"]:
                set_by_url.add("auth")
        if clashes:
            listing = "; ".join(f"{e.field}: {e.message}" for e in clashes)
            raise ConfigError(f"{title}: {listing}", errors=clashes)
        return fields

    def connection_string(self, reveal: bool = False) -> str:
        """The base URL (credentials never appear in it; they live in ``auth``)."""
        return self.base_url if reveal else redact_url(self.base_url)

    def secret_values(self) -> tuple[str, ...]:
        """Every secret in this config, and the forms auth derives from them on the wire
        (``user:password``, whose base64 is the Basic credential, and the whole
        ``Basic ...`` header value), for scrubbing text before it leaves us. The wire
        forms come first: masked before their parts, they leave no piece showing."""
        return wire_secrets(self.auth) + super().secret_values()

    @property
    def masked_query_params(self) -> frozenset[str]:
        """Lower-cased names of query parameters whose values errors must mask."""
        names = {n.lower() for n in self.redact_query_params}
        if isinstance(self.auth, ApiKeyAuthConfig) and self.auth.location == "query":
            names.add(self.auth.name.lower())
        return frozenset(names)
