"""Keeping secrets out of text: URLs, messages and log lines."""

from __future__ import annotations

import base64
import re
from collections.abc import Iterable
from urllib.parse import parse_qsl, quote, quote_plus, urlencode, urlsplit, urlunsplit

MASK = "***"

# scheme://user:password@... inside free text (driver messages).
_URL_WITH_USERINFO = re.compile(r"[A-Za-z][A-Za-z0-9+.-]*://[^\s/@'\"]+:[^\s/@'\"]*@[^\s'\"]+")

# Query parameter names whose values are credentials in the wild.
SECRET_QUERY_KEYS = frozenset(
    {
        "password",
        "pass",
        "passwd",
        "pwd",
        "secret",
        "client_secret",
        "token",
        "access_token",
        "refresh_token",
        "api_key",
        "apikey",
        "api_access_token",
        "key",
        "signature",
        "sig",
        "auth",
        "authorization",
        "sslpassword",
        "assertion",
    }
)


def redact_url(url: str) -> str:
    """Return ``url`` with its password and credential-like query values masked.

    >>> redact_url("postgresql://app:s3cret@db:5432/app?sslmode=require&password=x")
    'postgresql://app:***@db:5432/app?sslmode=require&password=%2A%2A%2A'
    """
    try:
        parts = urlsplit(url)
    except ValueError:
        return MASK
    netloc = parts.netloc
    if "@" in netloc:
        userinfo, _, hostinfo = netloc.rpartition("@")
        user, sep, _password = userinfo.partition(":")
        netloc = f"{user}:{MASK}@{hostinfo}" if sep else f"{user}@{hostinfo}"
    query = parts.query
    if query:
        pairs = parse_qsl(query, keep_blank_values=True)
        if any(k.lower() in SECRET_QUERY_KEYS for k, _ in pairs):
            query = urlencode(
                [(k, MASK if k.lower() in SECRET_QUERY_KEYS else v) for k, v in pairs]
            )
    return urlunsplit((parts.scheme, netloc, parts.path, query, parts.fragment))


def secret_forms(secret: str) -> tuple[str, ...]:
    """A secret as it may appear in text: plain, percent-encoded (URL paths and
    userinfo), form-encoded (query strings) and base64 (standard and URL-safe alphabet,
    with and without padding), longest first."""
    raw = secret.encode()
    encoded = (base64.b64encode(raw).decode(), base64.urlsafe_b64encode(raw).decode())
    forms = {secret, quote(secret, safe=""), quote_plus(secret), quote(secret)}
    forms.update(encoded)
    forms.update(e.rstrip("=") for e in encoded)
    return tuple(sorted((f for f in forms if f), key=len, reverse=True))


def scrub_secrets(text: str, secrets: Iterable[str]) -> str:
    """Replace every occurrence of each secret in ``text`` (plain, URL-encoded or base64,
    see :func:`secret_forms`) with a mask, and mask the password of any URL in it.

    A secret that is only derived from others (``Basic base64(user:password)``) is not
    found by its parts: pass the derived value itself as one of ``secrets``."""
    for secret in secrets:
        if not secret:
            continue
        for form in secret_forms(secret):
            if form in text:
                text = text.replace(form, MASK)
    if "://" in text and "@" in text:
        text = _URL_WITH_USERINFO.sub(lambda m: redact_url(m.group(0)), text)
    return text
