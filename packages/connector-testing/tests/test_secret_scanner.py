"""secret_leaks finds every form of a secret, and only real ones."""

from __future__ import annotations

import base64
import logging
from urllib.parse import quote, quote_plus

import pytest

from connector_testing import exception_texts, record_texts, secret_leaks, shown_texts

SECRET = "p@ss w0rd/+x:y"


@pytest.mark.parametrize(
    "text",
    [
        f"plain {SECRET}",
        f"path /{quote(SECRET, safe='')}/",
        f"query a={quote_plus(SECRET)}",
        "header X-Key: " + base64.b64encode(SECRET.encode()).decode(),
        "url-safe " + base64.urlsafe_b64encode(SECRET.encode()).decode().rstrip("="),
        "Authorization: Basic " + base64.b64encode(f"app:{SECRET}".encode()).decode(),
    ],
)
def test_every_form_is_found(text: str) -> None:
    leaks = secret_leaks([text], [SECRET])
    assert len(leaks) == 1
    assert SECRET not in leaks[0]


def test_masked_text_is_clean() -> None:
    basic = base64.b64encode(b"app:other").decode()
    assert secret_leaks(["a *** b", f"Basic {basic}", ""], [SECRET, ""]) == []


def test_exception_texts_cover_the_whole_chain() -> None:
    try:
        try:
            raise KeyError("first")
        except KeyError as exc:
            raise ValueError("second") from exc
    except ValueError as exc:
        error = exc
    error.__context__ = OSError(SECRET)  # hidden behind the explicit cause
    assert secret_leaks(exception_texts(error), [SECRET])


def test_record_and_shown_texts() -> None:
    record = logging.LogRecord("x", logging.INFO, __file__, 1, "got %s", (SECRET,), None)
    assert secret_leaks(record_texts([record]), [SECRET])
    assert secret_leaks(shown_texts({"k": SECRET}), [SECRET])
    assert not secret_leaks(shown_texts({"k": "***"}), [SECRET])


def test_a_secret_with_a_lone_surrogate_is_scanned_too() -> None:
    secret = "ab\udc80cd-secret"
    assert secret_leaks([f"x {secret}"], [secret])
    assert secret_leaks(["x ***"], [secret]) == []
