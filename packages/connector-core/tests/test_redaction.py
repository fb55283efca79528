"""redact_url and secret scrubbing."""

from __future__ import annotations

import gc
import logging
from urllib.parse import quote, quote_plus

import pytest

from connector_core import redact_url, scrub_exception, scrub_secrets, scrub_value, secret_forms


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        (
            "postgresql://app:s3cret@db:5432/app",
            "postgresql://app:***@db:5432/app",
        ),
        ("postgresql://app@db/app", "postgresql://app@db/app"),
        ("https://example.com/path?q=1", "https://example.com/path?q=1"),
        (
            "https://h/x?api_key=K3Y&page=2&Token=T0K",
            "https://h/x?api_key=%2A%2A%2A&page=2&Token=%2A%2A%2A",
        ),
        ("mongodb://u:p%40ss@h1,h2/db", "mongodb://u:***@h1,h2/db"),
        ("postgresql://u:a@b@host/db", "postgresql://u:***@host/db"),
    ],
)
def test_redact_url(url: str, expected: str) -> None:
    assert redact_url(url) == expected


@pytest.mark.parametrize("secret", ["s3cret", "K3Y", "T0K", "p%40ss", "a@b"])
def test_no_secret_survives(secret: str) -> None:
    url = (
        f"https://user:{secret}@h/x?password={secret}&access_token={secret}&client_secret={secret}"
    )
    assert secret not in redact_url(url)


def test_unparseable_url_is_masked_entirely() -> None:
    assert redact_url("http://[::1") == "***"


@pytest.mark.parametrize(
    "template",
    [
        "connect to x://u:{plain}@h/db failed",
        "connect to x://u:{quoted}@h/db failed",
        "query string password={plus}&a=1",
        "server said: bad password {plain}",
    ],
)
def test_scrub_removes_plain_and_url_encoded_forms(template: str) -> None:
    secret = "p@ss/w0rd: +x"
    text = template.format(plain=secret, quoted=quote(secret, safe=""), plus=quote_plus(secret))
    scrubbed = scrub_secrets(text, [secret])
    for form in (secret, quote(secret, safe=""), quote_plus(secret), "w0rd"):
        assert form not in scrubbed, scrubbed


def test_scrub_masks_passwords_of_urls_it_was_not_told_about() -> None:
    scrubbed = scrub_secrets("driver: cannot reach postgresql://app:hunter2@db:5432/app", [])
    assert "hunter2" not in scrubbed
    assert "postgresql://app:***@db:5432/app" in scrubbed


def test_scrub_removes_base64_forms() -> None:
    import base64

    secret = "s3cr3t-key-value"
    b64 = base64.b64encode(secret.encode()).decode()
    text = f"X-Token: {b64} and {b64.rstrip('=')}"
    assert secret_forms(secret)[0]  # longest first, never empty
    scrubbed = scrub_secrets(text, [secret])
    assert b64.rstrip("=") not in scrubbed, scrubbed


# -- scrub_exception: a whole chain, copies only where needed ------------------------------


class NeedsKeywordsError(Exception):
    def __init__(self, *, text: str) -> None:
        super().__init__(text)


def test_scrub_exception_copies_what_leaks_and_keeps_the_rest() -> None:
    secret = "hunter2-secret"
    clean = KeyError("no secret here")
    leaky = ValueError(f"bad password {secret}")
    leaky.__cause__ = clean
    top = RuntimeError("wrapper")
    top.__context__ = leaky
    top.__suppress_context__ = False
    out = scrub_exception(top, [secret])
    assert out is top  # nothing of its own leaked: kept, relinked
    assert out.__suppress_context__ is False
    copy_ = out.__context__
    assert isinstance(copy_, ValueError)
    assert copy_ is not leaky
    assert str(copy_) == "bad password ***"
    assert copy_.__cause__ is clean
    assert str(leaky) == f"bad password {secret}"  # the original is not rewritten


def test_scrub_exception_stands_in_for_what_cannot_be_copied() -> None:
    secret = "hunter2-secret"
    try:
        raise NeedsKeywordsError(text=f"server echoed {secret}")
    except NeedsKeywordsError as exc:
        original = exc
    out = scrub_exception(original, [secret])
    assert type(out).__name__ == "RedactedError"
    assert f"{__name__}.NeedsKeywordsError: server echoed ***" in str(out)
    assert out.__traceback__ is original.__traceback__


def test_scrub_exception_masks_attributes_notes_and_url_passwords() -> None:
    secret = "hunter2-secret"
    exc = OSError("cannot reach postgresql://app:pw-not-told@db/app")
    exc.filename = f"/tmp/{secret}"
    exc.add_note(f"while sending {secret}")
    out = scrub_exception(exc, [secret])
    shown = f"{out} {out.args} {vars(out)} {getattr(out, '__notes__', '')}"
    assert secret not in shown
    assert "pw-not-told" not in shown


def test_scrub_exception_survives_cycles() -> None:
    secret = "hunter2-secret"
    a = ValueError(f"a {secret}")
    b = ValueError("b")
    a.__context__ = b
    b.__context__ = a
    out = scrub_exception(b, [secret])
    assert out is b
    assert str(out.__context__) == "a ***"
    assert out.__context__.__context__ is b


def test_scrub_value_scrubs_nested_strings() -> None:
    secret = "hunter2-secret"
    value = {"body": f"x {secret}", "list": [secret, 1], secret: ("t", secret)}
    assert scrub_value(value, [secret]) == {
        "body": "x ***",
        "list": ["***", 1],
        "***": ("t", "***"),
    }


def test_scrub_removes_escaped_forms_that_reprs_show() -> None:
    secret = "tok\x00en-\u00e9-9f"
    text = f"Illegal header value {secret.encode()!r}; also {secret!r}"
    scrubbed = scrub_secrets(text, [secret])
    assert "tok\\x00en" not in scrubbed, scrubbed


def test_scrub_copes_with_a_secret_holding_a_lone_surrogate() -> None:
    secret = "ab\udc80cd-secret"
    assert scrub_secrets(f"x {secret} y", [secret]) == "x *** y"


class _HoldsSecret:
    def __init__(self, secret: str) -> None:
        self.secret = secret

    def secrets(self) -> tuple[str, ...]:
        return (self.secret,)


def test_driver_log_scrubber_masks_registered_secrets_in_a_drivers_records(
    caplog: pytest.LogCaptureFixture,
) -> None:
    from connector_core import DriverLogScrubber

    child = logging.getLogger("fakedriver4e1.command")  # created before, as drivers do
    scrubber = DriverLogScrubber("fakedriver4e1")
    holder = _HoldsSecret("hunter2-secret")
    scrubber.register(holder.secrets)
    other = logging.getLogger("otherdriver4e1")
    with caplog.at_level(logging.DEBUG):
        child.debug("sent %s", {"pwd": "hunter2-secret"})
        try:
            raise RuntimeError(f"server said {holder.secret}")  # no literal in the traceback
        except RuntimeError:
            child.exception("failed")
        other.debug("not ours: hunter2-secret")
    shown = [r.getMessage() for r in caplog.records]
    assert "hunter2-secret" not in shown[0]
    assert "***" in shown[0]
    exc_info = caplog.records[1].exc_info
    assert exc_info is not None
    assert "hunter2-secret" not in str(exc_info[1])
    assert "hunter2-secret" not in caplog.text.replace("not ours: hunter2-secret", "")
    assert "hunter2-secret" in shown[2], "only the driver's loggers are filtered"
    # Held weakly: a dead connector's secrets are no longer masked, nor kept alive.
    del holder
    gc.collect()
    with caplog.at_level(logging.DEBUG):
        child.debug("after: hunter2-secret")
    assert "hunter2-secret" in caplog.records[-1].getMessage()
