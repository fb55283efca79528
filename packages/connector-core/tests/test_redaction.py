"""redact_url and secret scrubbing."""

from __future__ import annotations

import pytest

from connector_core import redact_url


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
