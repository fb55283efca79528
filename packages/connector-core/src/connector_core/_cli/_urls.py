"""Connector URLs on the command line: ``${VAR}`` references, prompts, and the secrets
that must never be printed."""

from __future__ import annotations

import getpass
import os
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from urllib.parse import parse_qsl, quote, unquote, urlsplit

from connector_core._redaction import SECRET_QUERY_KEYS, redact_url

# ${NAME}: expanded from the environment by the command itself, so the secret is in no
# process list and no shell history (quote the URL with single quotes).
_REFERENCE = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)\}")


class UsageError(Exception):
    """A mistake in how the command was called (exit code 2), with a hint."""

    def __init__(self, message: str, hint: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint


Prompt = Callable[[str], str]


def terminal_prompt(name: str) -> str:
    """Ask for ``name`` on the controlling terminal without echo (getpass)."""
    return getpass.getpass(f"{name}: ")


def has_terminal() -> bool:
    """Whether a controlling terminal can be opened to prompt on (stdin may be records)."""
    try:
        fd = os.open("/dev/tty", os.O_RDWR | os.O_NOCTTY)
    except OSError:
        return False
    os.close(fd)
    return True


@dataclass(frozen=True, slots=True)
class ResolvedUrl:
    """A URL with its references expanded, the secrets it holds, and how to show it."""

    url: str
    secrets: tuple[str, ...]

    @property
    def shown(self) -> str:
        return redact_url(self.url)


def _encoded_span(url: str) -> tuple[int, int, int]:
    """(start of userinfo, end of userinfo, start of the query): where an expanded value
    must be percent-encoded (elsewhere, in a host or a path, it goes in as it is)."""
    start = url.find("://")
    start = 0 if start < 0 else start + 3
    netloc_end = len(url)
    for stop in "/?#":
        found = url.find(stop, start)
        if found >= 0:
            netloc_end = min(netloc_end, found)
    at = url.rfind("@", start, netloc_end)
    query = url.find("?", start)
    return start, (at if at >= 0 else start), (query if query >= 0 else len(url))


def resolve_url(
    url: str,
    *,
    environ: Mapping[str, str] | None = None,
    prompt: Prompt | None = None,
) -> ResolvedUrl:
    """Expand every ``${NAME}`` in ``url`` from ``environ`` (default ``os.environ``), or,
    for a variable that is not set, from ``prompt`` (no echo) when one is given.

    Values that land in the user info or the query are percent-encoded. Raises
    UsageError naming a variable that is neither set nor can be prompted for."""
    env = os.environ if environ is None else environ
    user_start, user_end, query_start = _encoded_span(url)
    pieces: list[str] = []
    last = 0
    for match in _REFERENCE.finditer(url):
        name = match.group(1)
        value = env.get(name)
        if value is None:
            if prompt is None:
                raise UsageError(
                    f"environment variable {name} is not set (the URL refers to ${{{name}}})",
                    f"export {name}=... first, or run in a terminal to be asked for it",
                )
            value = prompt(name)
        encode = user_start <= match.start() < user_end or match.start() > query_start
        pieces.append(url[last : match.start()])
        pieces.append(quote(value, safe="") if encode else value)
        last = match.end()
    pieces.append(url[last:])
    expanded = "".join(pieces)
    return ResolvedUrl(expanded, url_secrets(expanded))


def url_secrets(url: str) -> tuple[str, ...]:
    """The password and credential-like query values of ``url`` (plain and encoded)."""
    try:
        parts = urlsplit(url)
        password = parts.password
    except ValueError:
        return ()
    found: set[str] = set()
    if password:
        found.update({password, unquote(password)})
    for key, value in parse_qsl(parts.query, keep_blank_values=False):
        if key.lower() in SECRET_QUERY_KEYS and value:
            found.add(value)
    return tuple(sorted(found, key=len, reverse=True))
