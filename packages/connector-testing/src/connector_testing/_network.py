"""Network helpers for tests: addresses nobody answers on."""

from __future__ import annotations

import socket


def closed_port(host: str = "127.0.0.1") -> int:
    """A TCP port on ``host`` that nothing listens on (bound, read and released: a
    connect to it is refused, unless something grabs it in between, which a test run
    on one machine does not)."""
    with socket.socket() as sock:
        sock.bind((host, 0))
        port: int = sock.getsockname()[1]
    return port
