"""Finding secrets in what code shows: text, log records, results, whole exception chains."""

from __future__ import annotations

import base64
import binascii
import logging
import re
import traceback
from collections.abc import Iterable
from typing import Any

from connector_core import secret_forms

# Runs of base64 (either alphabet) long enough to hide a secret: a Basic header's value,
# a token echoed inside another encoding.
_BASE64_RUN = re.compile(r"[A-Za-z0-9+/_-]{8,}={0,2}")


def _decoded_runs(text: str) -> Iterable[bytes]:
    for match in _BASE64_RUN.finditer(text):
        run = match.group(0)
        padded = run + "=" * (-len(run.rstrip("=")) % 4)
        for decode in (base64.b64decode, base64.urlsafe_b64decode):
            try:
                yield decode(padded.encode())
            except (binascii.Error, ValueError):
                continue


def secret_leaks(texts: Iterable[str], secrets: Iterable[str]) -> list[str]:
    """Where any of ``secrets`` shows in ``texts``: plain, URL-encoded, form-encoded,
    base64 of the secret itself, or inside base64 of a longer text (``Basic
    base64(user:password)``). Each leak is described without the secret; an empty list
    means nothing leaked.
    """
    known = [s for s in secrets if s]
    leaks: list[str] = []
    for index, text in enumerate(texts):
        for secret in known:
            label = f"secret #{known.index(secret)} in text #{index}"
            found = next((f for f in secret_forms(secret) if f in text), None)
            if found is not None:
                kind = "plain" if found == secret else "encoded"
                at = text.index(found)
                context = text[max(0, at - 40) : at].replace(found, "<secret>")
                leaks.append(f"{label} ({kind}), after: {context!r}")
                continue
            raw = secret.encode(errors="surrogatepass")
            if any(raw in decoded for decoded in _decoded_runs(text)):
                leaks.append(f"{label} (inside base64)")
    return leaks


def exception_texts(error: BaseException) -> list[str]:
    """Everything an exception chain shows: the formatted traceback of the whole chain,
    and ``str``, ``repr``, ``args``, attributes and notes of every exception in it
    (``__cause__`` and ``__context__``, suppressed or not)."""
    texts = ["".join(traceback.format_exception(error))]
    seen: set[int] = set()
    stack: list[BaseException] = [error]
    while stack:
        current = stack.pop()
        if id(current) in seen:
            continue
        seen.add(id(current))
        texts += [str(current), repr(current), repr(current.args)]
        texts.append(repr(getattr(current, "__dict__", {})))
        stack += [e for e in (current.__cause__, current.__context__) if e is not None]
    return texts


def record_texts(records: Iterable[logging.LogRecord]) -> list[str]:
    """What log records show: the message, its arguments and any formatted exception."""
    formatter = logging.Formatter()
    texts: list[str] = []
    for record in records:
        texts.append(record.getMessage())
        texts.append(repr(record.args))
        if record.exc_info and record.exc_info[1] is not None:
            texts += exception_texts(record.exc_info[1])
        if record.exc_text:
            texts.append(record.exc_text)
        texts.append(formatter.format(record))
    return texts


def shown_texts(*values: Any) -> list[str]:
    """``str`` and ``repr`` of each value, and ``model_dump`` / ``model_dump_json`` of
    pydantic models (configs, CheckResult), exception chains in full."""
    texts: list[str] = []
    for value in values:
        if isinstance(value, BaseException):
            texts += exception_texts(value)
            continue
        texts += [str(value), repr(value)]
        dump = getattr(value, "model_dump", None)
        if callable(dump):
            texts += [repr(dump()), repr(dump(mode="json")), value.model_dump_json()]
    return texts
