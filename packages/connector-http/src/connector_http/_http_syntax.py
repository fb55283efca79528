"""What a config value must look like to go on the wire: header names and values, URLs,
text that UTF-8 can encode. Checked when a config is built, so that a bad value is a
ConfigError naming its field, never a UnicodeEncodeError, an h11 error quoting the value
(a secret, maybe) or an httpx.InvalidURL at the first request.

Each check raises ValueError with a message that never quotes the value.
"""

from __future__ import annotations

import re
from typing import Annotated, TypeAlias
from urllib.parse import SplitResult, urlsplit

import httpx
from pydantic import AfterValidator, SecretStr

# RFC 9110 5.1 token, as h11 enforces it.
_HEADER_NAME = re.compile(r"[-!#$%&'*+.^_`|~0-9A-Za-z]+")
# RFC 9110 5.5 field value restricted to visible ASCII: httpx encodes str header values as
# ASCII, and h11 refuses NUL, CR, LF and surrounding whitespace.
_HEADER_VALUE = re.compile(r"(?:[\x21-\x7e]+(?:[ \t]+[\x21-\x7e]+)*)?")

HEADER_VALUE_RULE = "visible ASCII characters, spaces and tabs inside only (no CR, LF or NUL)"


HEADER_NAME_RULE = "letters, digits and !#$%&'*+-.^_`|~ only"


def is_header_name(value: str) -> bool:
    return _HEADER_NAME.fullmatch(value) is not None


def check_header_name(value: str) -> str:
    if not is_header_name(value):
        raise ValueError(f"must be an HTTP header name: {HEADER_NAME_RULE}")
    return value


def is_header_value(value: str) -> bool:
    return _HEADER_VALUE.fullmatch(value) is not None


def check_header_value(value: str) -> str:
    if not is_header_value(value):
        raise ValueError(f"must be a valid HTTP header value: {HEADER_VALUE_RULE}")
    return value


def is_utf8(value: str) -> bool:
    """Whether UTF-8 can encode ``value`` (not if it holds a lone surrogate)."""
    try:
        value.encode()
    except UnicodeEncodeError:
        return False
    return True


def check_utf8(value: str) -> str:
    """``value`` unless UTF-8 cannot encode it (a lone surrogate): it could never be sent."""
    if not is_utf8(value):
        raise ValueError("must be text UTF-8 can encode (it holds a lone surrogate)")
    return value


def split_url(value: str) -> SplitResult | None:
    """urlsplit and httpx.URL both accept ``value`` (None when either refuses it)."""
    try:
        parts = urlsplit(value)
        parts.port  # noqa: B018 - validates the port
        httpx.URL(value)
    except (ValueError, httpx.InvalidURL):
        return None
    return parts


def check_http_url(value: str, *, query: bool) -> str:
    """An absolute http(s) URL with a host and no credentials, that httpx can send to;
    with ``query=False``, no query either. Never a fragment."""
    parts = split_url(value)
    if parts is None:
        raise ValueError("not a valid URL")
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ValueError("must be an absolute http:// or https:// URL")
    if "@" in parts.netloc:
        raise ValueError("must not hold credentials in the URL")
    if parts.fragment or (parts.query and not query):
        raise ValueError("must not have a query or fragment" if not query else "no fragment")
    return value


def check_proxy_url(value: str) -> str:
    parts = split_url(value)
    if parts is None or parts.scheme not in ("http", "https", "socks5", "socks5h"):
        raise ValueError("must be an http://, https:// or socks5:// proxy URL")
    if not parts.hostname:
        raise ValueError("must name the proxy's host")
    return value


def check_file_path(value: str) -> str:
    if "\x00" in value:
        raise ValueError("must be a file path (it holds a NUL character)")
    return check_utf8(value)


def check_relative_path(value: str) -> str:
    """A path (with an optional query) that httpx can join to base_url."""
    parts = split_url(value)
    if parts is None:
        raise ValueError("not a valid URL path")
    if parts.scheme or parts.netloc or "://" in value:
        raise ValueError("must be a path relative to base_url")
    return value


def _check_secret(value: SecretStr) -> SecretStr:
    check_utf8(value.get_secret_value())
    return value


HeaderName: TypeAlias = Annotated[str, AfterValidator(check_header_name)]
"""A str field that must be an HTTP header name."""
HeaderValue: TypeAlias = Annotated[str, AfterValidator(check_header_value)]
"""A str field that must be an HTTP header value."""
Text: TypeAlias = Annotated[str, AfterValidator(check_utf8)]
"""A str field that UTF-8 must be able to encode (it goes on the wire somewhere)."""
Secret: TypeAlias = Annotated[SecretStr, AfterValidator(_check_secret)]
"""A SecretStr field that UTF-8 must be able to encode."""
