"""TCP keepalive on the driver's sockets: a peer that vanished is noticed by the OS.

asyncpg sets no socket options, and without them a connection whose server (or the
network in between) disappeared without a FIN or RST stays "open" for hours: a statement
waiting on it waits as long as its deadline allows, and an idle pooled or LISTEN
connection never learns. See docs/decisions/0050.
"""

from __future__ import annotations

import logging
import socket
from typing import Any

logger = logging.getLogger("connector.postgres")

# Unanswered probes before the OS gives up (Linux's own default is 9, at 75 s intervals).
PROBES = 3


def keepalive_options(seconds: float) -> dict[str, int]:
    """The TCP options that close a connection about ``seconds`` after its peer went
    silent: probes start after half of it, ``PROBES`` of them share the other half, and
    ``TCP_USER_TIMEOUT`` gives unacknowledged data the same budget (so a connection that
    is sending, where keepalive does not apply, is bounded too)."""
    idle = max(1, round(seconds / 2))
    return {
        "TCP_KEEPIDLE": idle,  # Linux, Windows; macOS calls it TCP_KEEPALIVE
        "TCP_KEEPALIVE": idle,
        "TCP_KEEPINTVL": max(1, round((seconds - idle) / PROBES)),
        "TCP_KEEPCNT": PROBES,
        "TCP_USER_TIMEOUT": round(seconds * 1000),  # milliseconds; Linux only
    }


def keep_alive(connection: Any, seconds: float) -> None:
    """Turn TCP keepalive on for ``connection``'s socket (an asyncpg Connection), with
    :func:`keepalive_options`. A Unix-domain socket, or an option the platform lacks, is
    left as it is."""
    # asyncpg has no public accessor for its transport (nor a socket factory hook).
    transport = getattr(connection, "_transport", None)
    sock = transport.get_extra_info("socket") if transport is not None else None
    if sock is None or sock.family not in (socket.AF_INET, socket.AF_INET6):
        return
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_KEEPALIVE, 1)
        for name, value in keepalive_options(seconds).items():
            option = getattr(socket, name, None)
            if option is not None:
                sock.setsockopt(socket.IPPROTO_TCP, option, value)
    except OSError as exc:  # an exotic platform: keep the connection, without keepalive
        logger.debug("could not set TCP keepalive options: %s", exc)
