"""Keeping secrets out of text: URLs, messages and log lines."""

from __future__ import annotations

import base64
import copy
import re
from collections.abc import Iterable, Mapping
from typing import Any
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
    userinfo), form-encoded (query strings), base64 (standard and URL-safe alphabet,
    with and without padding) and escaped as ``repr`` shows it (a driver's message
    quoting ``b'tok\\x00en'``), longest first."""
    raw = secret.encode(errors="surrogatepass")  # a lone surrogate is still a secret
    encoded = (base64.b64encode(raw).decode(), base64.urlsafe_b64encode(raw).decode())
    forms = {
        secret,
        quote(raw, safe=""),
        quote_plus(raw),
        quote(raw),
    }
    forms.update(encoded)
    forms.update(e.rstrip("=") for e in encoded)
    forms.add(repr(secret)[1:-1])  # str escapes
    forms.add(repr(raw)[2:-1])  # bytes escapes
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


class RedactedError(Exception):
    """Stands in a chain of exceptions for one whose text held a secret and could not be
    copied with the secret masked; its message names the original type."""


def _leaks(value: Any, secrets: tuple[str, ...]) -> bool:
    try:
        text = value if isinstance(value, str) else repr(value)
    except Exception:  # a repr that fails tells nothing, and leaks nothing
        return False
    return scrub_secrets(text, secrets) != text


def _exception_leaks(exc: BaseException, secrets: tuple[str, ...]) -> bool:
    try:
        shown = str(exc)
    except Exception:
        shown = ""
    if _leaks(shown, secrets) or any(_leaks(arg, secrets) for arg in exc.args):
        return True
    return any(_leaks(v, secrets) for v in _own_attributes(exc).values())


def _own_attributes(exc: BaseException) -> dict[str, Any]:
    return dict(getattr(exc, "__dict__", {}))


def scrub_value(value: Any, secrets: Iterable[str]) -> Any:
    """``value`` with every string in it scrubbed (see :func:`scrub_secrets`), inside
    mappings, lists and tuples too; any other object that shows a secret in its
    ``repr`` becomes the mask."""
    known = tuple(secrets)
    return _scrub_value(value, known)


def _scrub_value(value: Any, secrets: tuple[str, ...]) -> Any:
    if isinstance(value, str):
        return scrub_secrets(value, secrets)
    if isinstance(value, Mapping):
        return {_scrub_value(k, secrets): _scrub_value(v, secrets) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return type(value)(_scrub_value(v, secrets) for v in value)
    return MASK if _leaks(value, secrets) else value


def _scrubbed_copy(exc: BaseException, secrets: tuple[str, ...]) -> BaseException:
    try:
        clone = copy.copy(exc)
        clone.args = tuple(_scrub_value(arg, secrets) for arg in exc.args)
        for name, value in _own_attributes(exc).items():
            if _leaks(value, secrets):
                setattr(clone, name, _scrub_value(value, secrets))
    except Exception:  # an exception class copy cannot rebuild: stand in for it
        clone = None
    if clone is None or _exception_leaks(clone, secrets):
        try:
            shown = scrub_secrets(str(exc), secrets)
        except Exception:
            shown = ""
        kind = type(exc)
        clone = RedactedError(f"{kind.__module__}.{kind.__qualname__}: {shown}".rstrip(": "))
    return clone.with_traceback(exc.__traceback__)


def scrub_exception(exc: BaseException, secrets: Iterable[str]) -> BaseException:
    """``exc``, or a copy of it, such that no exception of its chain (``__cause__`` and
    ``__context__``, followed all the way) shows any form of any of ``secrets`` (see
    :func:`scrub_secrets`) in its message, arguments or attributes.

    An exception that shows a secret is replaced by a copy with the secret masked (or,
    when its class cannot be copied, by a :class:`RedactedError` naming its type); its
    traceback is kept. The links of exceptions that show none are repointed in place to
    the scrubbed copies. Use it on what leaves a connector::

        raise scrub_exception(error, secrets)
    """
    known = tuple(s for s in secrets if s)
    return _scrub_chain(exc, known, {})


def _scrub_chain(
    exc: BaseException, secrets: tuple[str, ...], done: dict[int, BaseException]
) -> BaseException:
    key = id(exc)
    if key in done:  # a cycle, or a link shared by two branches
        return done[key]
    out = _scrubbed_copy(exc, secrets) if _exception_leaks(exc, secrets) else exc
    done[key] = out
    cause, context, suppress = exc.__cause__, exc.__context__, exc.__suppress_context__
    new_cause = _scrub_chain(cause, secrets, done) if cause is not None else None
    new_context = _scrub_chain(context, secrets, done) if context is not None else None
    if out is not exc or new_cause is not cause or new_context is not context:
        out.__cause__ = new_cause
        out.__context__ = new_context
        out.__suppress_context__ = suppress  # setting __cause__ turned it on
    return out
