"""redact_url and secret scrubbing."""

from __future__ import annotations

from urllib.parse import quote, quote_plus

import pytest

from connector_core import redact_url, scrub_secrets, secret_forms


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
