"""Property tests over every config of connector-http (HttpConfig, each auth config, the
nested settings, from_url and from_env): whatever the input, it is a ConfigError, or a
config that connects to the test server (or fails there with a typed, non-transient
ConnectorError); never another exception, and never a secret in a message, a repr, a
dump or a chained cause.

Inputs are hostile on purpose: NUL and control characters, CR/LF, huge strings, unicode
(right-to-left marks, a lone surrogate), URL-special characters, inf/NaN/1e300 and
huge integers, and values of the wrong type. Every secret carries MARK, so that finding
any form of it in any text is a leak. Runs are reproducible (``derandomize``) and
bounded (``max_examples``)."""

from __future__ import annotations

import asyncio
import logging
import math
from collections.abc import Iterator
from typing import Any
from urllib.parse import quote

import pytest
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from connector_core import ConfigError, ConnectorError, ErrorCode, secret_forms
from connector_http import (
    ApiKeyAuthConfig,
    BasicAuthConfig,
    BearerAuthConfig,
    HttpConfig,
    HttpConnector,
    HttpTimeouts,
    NoAuthConfig,
    OAuth2ClientCredentialsConfig,
    OAuth2JwtBearerConfig,
    OAuth2RefreshTokenConfig,
    PoolLimits,
    TlsSettings,
)

pytestmark = pytest.mark.integration

MARK = "Zq7S3cr3t"

HOSTILE_STRINGS = [
    "",
    " ",
    "\x00",
    "a\x00b",
    "\r\n",
    "v\r\nX-Injected: 1",
    "\t",
    "\x01",
    "\x7f",
    "é",
    "日本語",
    "\u202e",
    "\ufeff",
    "\ud800",
    "%",
    "%00",
    "%zz",
    "%2F",
    "/",
    "?",
    "#",
    "@",
    ":",
    "//",
    "../../etc/passwd",
    "http://evil.example/",
    "https://u:p@evil.example",
    "a b",
    "'\"<>",
    "{}",
    "[]",
    "x" * 10_000,
    "y" * 1_000_000,
]

WRONG_TYPES = st.sampled_from([None, 0, -1, 1.5, True, [], {}, b"bytes", ["a"], {"a": 1}])

NUMBERS = st.sampled_from(
    [
        0,
        -1,
        5,
        30.0,
        "30",
        1e300,
        -1e300,
        math.inf,
        -math.inf,
        math.nan,
        10**400,
        "inf",
        "nan",
        "1e300",
        "abc",
        None,
        True,
        [],
        {},
    ]
)

SETTINGS = settings(
    max_examples=300,
    deadline=None,
    derandomize=True,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)

text = st.one_of(st.text(max_size=20), st.sampled_from(HOSTILE_STRINGS))
secret = st.builds(lambda tail: MARK + tail, text)
maybe = st.one_of  # readability: maybe(a valid value, hostile ones...)


def _auth(token_url: st.SearchStrategy[Any]) -> st.SearchStrategy[Any]:
    oauth_common = {
        "token_url": token_url,
        "client_id": maybe(st.just("client-7f3a"), text, WRONG_TYPES),
        "client_auth": maybe(st.sampled_from(["client_secret_post", "client_secret_basic"]), text),
    }
    optional = {
        "scope": maybe(text, WRONG_TYPES),
        "audience": maybe(text, WRONG_TYPES),
        "refresh_margin": NUMBERS,
        "default_expires_in": NUMBERS,
        "token_timeout": NUMBERS,
        "extra_params": maybe(st.dictionaries(text, text, max_size=2), WRONG_TYPES),
    }
    return st.one_of(
        st.fixed_dictionaries({"type": st.just("none")}),
        st.fixed_dictionaries(
            {
                "type": st.just("basic"),
                "username": maybe(st.just("ann"), text, WRONG_TYPES),
                "password": maybe(secret, WRONG_TYPES),
            }
        ),
        st.fixed_dictionaries({"type": st.just("bearer"), "token": maybe(secret, WRONG_TYPES)}),
        st.fixed_dictionaries(
            {"type": st.just("api_key"), "key": maybe(secret, WRONG_TYPES)},
            optional={
                "name": maybe(st.sampled_from(["X-API-Key", "api_key"]), text, WRONG_TYPES),
                "location": maybe(st.sampled_from(["header", "query"]), text),
                "prefix": maybe(st.just("Token "), text, WRONG_TYPES),
            },
        ),
        st.fixed_dictionaries(
            {
                "type": st.just("oauth2_client_credentials"),
                **oauth_common,
                "client_secret": maybe(secret, WRONG_TYPES),
            },
            optional=optional,
        ),
        st.fixed_dictionaries(
            {
                "type": st.just("oauth2_refresh_token"),
                **oauth_common,
                "refresh_token": maybe(secret, WRONG_TYPES),
            },
            optional={**optional, "client_secret": maybe(secret, WRONG_TYPES)},
        ),
        st.fixed_dictionaries(
            {
                "type": st.just("oauth2_jwt_bearer"),
                **oauth_common,
                "subject": maybe(st.just("svc@example.com"), text),
                "private_key": secret,
            },
            optional={"algorithm": maybe(st.just("RS256"), text), "key_id": text},
        ),
        st.fixed_dictionaries({"type": text}),
        WRONG_TYPES,
    )


def _plausible_auth(token_url: str) -> st.SearchStrategy[dict[str, Any]]:
    """Auth that is valid but for its hostile secrets: it gets past validation, so the
    requests, the token endpoint (which echoes a wrong secret) and the errors run."""
    oauth = {
        "token_url": st.just(token_url),
        "client_id": st.just("client-7f3a"),
        "client_auth": st.sampled_from(["client_secret_post", "client_secret_basic"]),
    }
    return st.one_of(
        st.fixed_dictionaries(
            {"type": st.just("basic"), "username": st.just("ann"), "password": secret}
        ),
        st.fixed_dictionaries({"type": st.just("bearer"), "token": secret}),
        st.fixed_dictionaries(
            {
                "type": st.just("api_key"),
                "key": secret,
                "location": st.sampled_from(["header", "query"]),
            }
        ),
        st.fixed_dictionaries(
            {"type": st.just("oauth2_client_credentials"), **oauth, "client_secret": secret}
        ),
        st.fixed_dictionaries(
            {"type": st.just("oauth2_refresh_token"), **oauth, "refresh_token": secret}
        ),
    )


def _fields(
    base_url: st.SearchStrategy[Any], token_url: st.SearchStrategy[Any], *, numbers: bool
) -> st.SearchStrategy[dict[str, Any]]:
    """HttpConfig fields, every one optional but base_url; with ``numbers``, hostile
    numbers in every numeric setting (core's included, else only in auth) and a proxy."""
    header_map = st.dictionaries(maybe(st.just("X-Tenant"), text), text, max_size=2)
    optional: dict[str, st.SearchStrategy[Any]] = {
        "auth": st.one_of(_auth(token_url), _plausible_auth("{server}/oauth/token")),
        "headers": maybe(header_map, WRONG_TYPES),
        "user_agent": maybe(text, WRONG_TYPES),
        "correlation_id_header": maybe(text, WRONG_TYPES),
        "request_id_headers": maybe(st.lists(text, max_size=2), WRONG_TYPES),
        "health_path": maybe(st.just("/health"), text, WRONG_TYPES),
        "connect_probe": maybe(st.booleans(), WRONG_TYPES),
        "follow_redirects": maybe(st.booleans(), WRONG_TYPES),
        "trusted_origins": maybe(st.lists(text, max_size=2), WRONG_TYPES),
        "redact_query_params": maybe(st.lists(text, max_size=2), WRONG_TYPES),
        "tls": st.fixed_dictionaries(
            {},
            optional={
                "ca_bundle": maybe(text, WRONG_TYPES),
                "client_cert": maybe(text, WRONG_TYPES),
                "client_key_password": maybe(secret, WRONG_TYPES),
                "verify": maybe(st.booleans(), WRONG_TYPES),
            },
        ),
        "http2": maybe(st.booleans(), WRONG_TYPES),
        "trust_env": st.just(False),
    }
    if numbers:
        # Only where nothing connects: a proxy that is not there is a transient failure.
        optional["proxy"] = maybe(secret, st.builds(lambda s: f"http://u:{s}@127.0.0.1:9", secret))
        optional.update(
            timeouts=maybe(
                st.dictionaries(
                    st.sampled_from(["connect", "read", "write", "pool"]), NUMBERS, max_size=2
                ),
                WRONG_TYPES,
            ),
            limits=maybe(
                st.dictionaries(
                    st.sampled_from(
                        ["max_connections", "keepalive_expiry", "max_keepalive_connections"]
                    ),
                    NUMBERS,
                    max_size=2,
                )
            ),
            error_body_limit=NUMBERS,
            max_response_bytes=NUMBERS,
            max_error_body_bytes=NUMBERS,
            stream_deadline=NUMBERS,
            timeout=NUMBERS,
            connect_timeout=NUMBERS,
            retry=maybe(st.dictionaries(st.sampled_from(["max_attempts", "deadline"]), NUMBERS)),
        )
    return _some_of(base_url, optional)


@st.composite
def _some_of(
    draw: st.DrawFn, base_url: st.SearchStrategy[Any], optional: dict[str, st.SearchStrategy[Any]]
) -> dict[str, Any]:
    # A few fields at a time: with all of them hostile at once, almost nothing would
    # validate and the paths past validation would go untested.
    others = sorted(set(optional) - {"auth"})
    names = draw(st.lists(st.sampled_from(others), max_size=3, unique=True))
    if draw(st.booleans()):  # auth, the richest of them, half the time
        names.append("auth")
    return {"base_url": draw(base_url), **{name: draw(optional[name]) for name in names}}


# -- what must never show up --------------------------------------------------------------


def _forms(value: str) -> list[str]:
    """Every form a secret could leak in: secret_forms' (plain, URL-encoded, base64) and
    the escaped ones repr() and bytes reprs make of control characters."""
    forms = [value, repr(value)[1:-1]]
    try:
        forms += secret_forms(value)
        forms.append(repr(value.encode())[2:-1])
    except UnicodeEncodeError:  # a lone surrogate: no encoded form exists to leak
        pass
    return [f for f in forms if MARK in f or len(f) >= len(MARK) + 4]


def _secrets_in(value: Any) -> Iterator[str]:
    if isinstance(value, str) and MARK in value:
        yield value
    elif isinstance(value, dict):
        for item in value.values():
            yield from _secrets_in(item)
    elif isinstance(value, list | tuple):
        for item in value:
            yield from _secrets_in(item)


def _chain(error: BaseException) -> Iterator[BaseException]:
    seen: set[int] = set()
    stack: list[BaseException | None] = [error]
    while stack:
        current = stack.pop()
        if current is None or id(current) in seen:
            continue
        seen.add(id(current))
        yield current
        stack += [current.__cause__, current.__context__]


def _texts_of_error(error: BaseException) -> list[str]:
    texts: list[str] = []
    for link in _chain(error):
        texts += [str(link), repr(link), repr(link.args)]
        if isinstance(link, ConnectorError):
            texts.append(repr(link.details))
        if isinstance(link, ConfigError):
            texts += [f"{e.field} {e.message}" for e in link.errors]
    return texts


def _texts_of_config(config: HttpConfig) -> list[str]:
    return [
        repr(config),
        str(config),
        str(config.model_dump()),
        config.model_dump_json(),
        config.connection_string(),
    ]


def _assert_no_leak(secrets: list[str], texts: list[str]) -> None:
    for value in secrets:
        for form in _forms(value):
            for text_ in texts:
                assert form not in text_, (form[:80], text_[:300])


class _Records(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.lines: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.lines.append(self.format(record))


def _build(fields: Any) -> HttpConfig | ConfigError:
    try:
        config = HttpConfig.model_validate(fields)
    except ConfigError as exc:
        event("ConfigError")
        return exc
    event("a config")
    return config


# -- the properties -----------------------------------------------------------------------


@SETTINGS
@given(
    fields=_fields(
        maybe(st.just("https://api.example.com/v1"), text, WRONG_TYPES),
        maybe(st.just("https://login.example.com/token"), text),
        numbers=True,
    )
)
def test_any_fields_give_a_config_error_or_a_config_that_keeps_its_secrets(
    fields: dict[str, Any],
) -> None:
    secrets = list(_secrets_in(fields))
    built = _build(fields)
    if isinstance(built, ConfigError):
        _assert_no_leak(secrets, _texts_of_error(built))
        return
    connector = HttpConnector(built)
    _assert_no_leak(secrets, [*_texts_of_config(built), repr(connector)])


SETTINGS_CLASSES: dict[str, type[Any]] = {
    "none": NoAuthConfig,
    "basic": BasicAuthConfig,
    "bearer": BearerAuthConfig,
    "api_key": ApiKeyAuthConfig,
    "oauth2_client_credentials": OAuth2ClientCredentialsConfig,
    "oauth2_refresh_token": OAuth2RefreshTokenConfig,
    "oauth2_jwt_bearer": OAuth2JwtBearerConfig,
}
NESTED: dict[type[Any], st.SearchStrategy[Any]] = {
    HttpTimeouts: st.dictionaries(st.sampled_from(["connect", "read", "write", "pool", "x"]),
                                  NUMBERS, max_size=3),
    PoolLimits: st.dictionaries(st.sampled_from(["max_connections", "keepalive_expiry",
                                                 "max_keepalive_connections"]), NUMBERS),
    TlsSettings: st.fixed_dictionaries({}, optional={
        "ca_bundle": maybe(text, WRONG_TYPES), "client_key_password": maybe(secret, WRONG_TYPES),
        "verify": maybe(st.booleans(), WRONG_TYPES)}),
}  # fmt: skip


@SETTINGS
@given(
    built=st.one_of(
        _auth(maybe(st.just("https://login.example.com/token"), text)).map(
            lambda fields: (SETTINGS_CLASSES.get(getattr(fields, "get", dict().get)("type"),
                                                 BasicAuthConfig), fields)
        ),
        st.sampled_from(sorted(NESTED, key=lambda c: c.__name__)).flatmap(
            lambda cls: NESTED[cls].map(lambda fields: (cls, fields))
        ),
    )
)  # fmt: skip
def test_each_settings_class_alone_gives_a_config_error_or_settings(
    built: tuple[type[Any], Any],
) -> None:
    cls, fields = built
    secrets = list(_secrets_in(fields))
    try:
        settings_ = cls.model_validate(fields)
    except ConfigError as exc:
        event(f"{cls.__name__}: ConfigError")
        _assert_no_leak(secrets, _texts_of_error(exc))
        return
    event(f"{cls.__name__}: built")
    _assert_no_leak(secrets, [repr(settings_), str(settings_), str(settings_.model_dump()),
                              settings_.model_dump_json()])  # fmt: skip


@pytest.fixture(scope="module")
def server_url(server: Any) -> str:
    return str(server.url)


def _connect_fields() -> st.SearchStrategy[dict[str, Any]]:
    # The server is not known when strategies are built: "{server}" is filled in later.
    path = maybe(st.just(""), st.just("/v1"), st.builds(lambda p: "/" + p, text))
    base_url = st.builds(lambda p: "{server}" + p, path)
    token_url = maybe(
        st.just("{server}/oauth/token"), st.builds(lambda p: "{server}/" + p, text), text
    )
    return _fields(base_url, token_url, numbers=False)


def _fill(value: Any, server: str) -> Any:
    if isinstance(value, str):
        return value.replace("{server}", server)
    if isinstance(value, dict):
        return {k: _fill(v, server) for k, v in value.items()}
    return value


async def _connect_and_get(config: HttpConfig, log: _Records) -> list[str]:
    connector = HttpConnector(config)
    failure: ConnectorError | None = None
    try:
        async with connector:
            await connector.get("/v1/echo")
    except ConnectorError as exc:
        failure = exc
    kind = config.auth.type
    event(f"connect and get ({kind}): {type(failure).__name__ if failure else 'ok'}")
    texts = [repr(connector), *log.lines]
    if failure is not None:
        # Typed: a driver error left untranslated would be the generic UNKNOWN one.
        assert failure.code is not ErrorCode.UNKNOWN, repr(failure)
        assert not failure.transient, repr(failure)
        texts += _texts_of_error(failure)
    return texts


@SETTINGS
@given(fields=_connect_fields())
def test_any_config_connects_or_fails_with_a_typed_non_transient_error(
    server_url: str, fields: dict[str, Any]
) -> None:
    fields = {**_fill(fields, server_url), "retry": {"max_attempts": 1}}
    secrets = list(_secrets_in(fields))
    built = _build(fields)
    if isinstance(built, ConfigError):
        _assert_no_leak(secrets, _texts_of_error(built))
        return
    log = _Records()
    loggers = [logging.getLogger(n) for n in ("connector", "httpx", "httpcore")]
    for logger in loggers:
        logger.addHandler(log)
        logger.setLevel(logging.DEBUG)
    try:
        texts = asyncio.run(_connect_and_get(built, log))
    finally:
        for logger in loggers:
            logger.removeHandler(log)
            logger.setLevel(logging.NOTSET)
    _assert_no_leak(secrets, [*texts, *_texts_of_config(built)])


QUERY_KEYS = st.sampled_from(
    [
        "timeout",
        "timeouts",
        "timeouts.read",
        "timeouts__read",
        "auth",
        "auth.type",
        "base_url",
        "health_path",
        "headers.X-Tenant",
        "retry.max_attempts",
        "retry",
        "",
        ".",
        "a..b",
        "trusted_origins",
        "max_response_bytes",
    ]
)
SECRET_KEYS = st.sampled_from(["api_key", "key", "access_token", "auth.token", "auth.password"])


def _quote(value: str) -> str:
    # A lone surrogate is percent-encoded as its UTF-8-ish bytes, as a careless tool would.
    return quote(value, safe="", errors="surrogatepass")


@st.composite
def _url(draw: st.DrawFn) -> tuple[Any, list[str]]:
    """A hostile URL for from_url, and the secrets put into it (quoted as they should
    be: a raw password holding '/' or '#' is no password any more, but a path)."""
    secrets: list[str] = []
    pairs = []
    for _ in range(draw(st.integers(0, 4))):
        if draw(st.booleans()):
            key, value = draw(SECRET_KEYS), draw(secret)
            secrets.append(value)
        else:
            key, value = draw(maybe(QUERY_KEYS, text)), draw(text)
        pairs.append(f"{_quote(key)}={_quote(value)}")
    userinfo = ""
    kind = draw(st.sampled_from(["none", "quoted", "raw"]))
    if kind == "quoted":
        password = draw(secret)
        secrets.append(password)
        userinfo = f"{_quote(draw(text))}:{_quote(password)}@"
    elif kind == "raw":
        userinfo = f"{draw(text)}:{draw(text)}@"
    scheme = draw(maybe(st.sampled_from(["https", "http"]), text))
    host = draw(maybe(st.just("api.example.com"), st.just("127.0.0.1:8443"), text))
    url = f"{scheme}://{userinfo}{host}/{draw(text)}?{'&'.join(pairs)}"
    return draw(maybe(st.just(url), text, WRONG_TYPES)), secrets


ENV = st.dictionaries(
    st.sampled_from(
        [
            "API_AUTH__TYPE",
            "API_AUTH",
            "API_TIMEOUTS",
            "API_TIMEOUTS__READ",
            "API_BASE_URL",
            "API_HEADERS",
            "API_HEALTH_PATH",
        ]
    ),
    maybe(text, st.just('{"read": 3}'), st.just("bearer")),
    max_size=2,
)


@SETTINGS
@given(url=_url(), env=ENV, password=maybe(st.none(), secret))
def test_from_url_and_from_env_give_a_config_error_or_a_config(
    url: tuple[Any, list[str]], env: dict[str, str], password: str | None
) -> None:
    value, secrets = url
    env = {**env, "API_URL": value} if isinstance(value, str) else env
    if password is not None:
        env["API_AUTH__PASSWORD"] = password
        secrets = [*secrets, password]
    for build in (lambda: HttpConfig.from_url(value), lambda: HttpConfig.from_env("API_", env)):
        try:
            config = build()
        except ConfigError as exc:
            event("ConfigError")
            _assert_no_leak(secrets, _texts_of_error(exc))
            continue
        event("a config")
        _assert_no_leak(secrets, _texts_of_config(config))
