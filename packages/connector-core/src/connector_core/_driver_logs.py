"""Secrets out of a driver's own log records.

Drivers log what they send at DEBUG: aiokafka every request, SASL ones included (with
PLAIN, ``sasl_auth_bytes=b'\\x00user\\x00password'``); PyMongo every command's name and
body. A driver's loggers get a filter that masks the secrets of every live connector in
each record (message, arguments and exception) before any handler sees it. A record is
only built when its level is enabled, so this costs nothing unless the driver's DEBUG
logging is on.
"""

from __future__ import annotations

import logging
import threading
import weakref
from collections.abc import Callable

from connector_core._redaction import scrub_exception, scrub_secrets


class DriverLogScrubber(logging.Filter):
    """Masks registered secrets in records of the loggers named ``prefix`` and
    ``prefix.*`` (a driver's, e.g. ``"aiokafka"``); one module-level instance per
    driver, each connector registering its ``_known_secrets``::

        _SCRUBBER = DriverLogScrubber("pymongo")
        ...
        _SCRUBBER.register(self._known_secrets)  # in the connector's __init__
    """

    def __init__(self, prefix: str) -> None:
        super().__init__()
        self._prefix = prefix
        # Replaced, never changed in place: filter() reads it without a lock (a record
        # may be logged anywhere, even while the garbage collector runs).
        self._sources: tuple[weakref.WeakMethod[Callable[[], tuple[str, ...]]], ...] = ()
        self._lock = threading.Lock()
        self._installed: set[str] = set()

    def register(self, secrets_of: Callable[[], tuple[str, ...]]) -> None:
        """Mask what the bound method ``secrets_of`` returns (a connector's known
        secrets, asked for each record, so that secrets learnt later count too) for as
        long as its object lives. Held weakly: registering keeps nothing alive."""
        with self._lock:
            # No finalizer forgets a dead connector (one could run inside filter(), in
            # the middle of anything): dead ones are dropped here, and skipped meanwhile.
            live = [ref for ref in self._sources if ref() is not None]
            self._sources = (*live, weakref.WeakMethod(secrets_of))
            self._install()

    def _secrets(self) -> tuple[str, ...]:
        found: list[str] = []
        for ref in self._sources:
            method = ref()
            if method is not None:
                found.extend(s for s in method() if s)
        return tuple(found)

    def _install(self) -> None:
        # Drivers create their loggers at import (one per module): add the filter to
        # each, since a logger's filters do not see its children's records. Loggers
        # created later are added at the next registration.
        names = [self._prefix] + [
            name
            for name, logger in list(logging.root.manager.loggerDict.items())
            if name.startswith(self._prefix + ".") and isinstance(logger, logging.Logger)
        ]
        for name in names:
            if name not in self._installed:
                logging.getLogger(name).addFilter(self)
                self._installed.add(name)

    def filter(self, record: logging.LogRecord) -> bool:
        secrets = self._secrets()
        if not secrets:
            return True
        try:
            message = record.getMessage()
        except Exception:  # a broken record: leave it to logging's own error handling
            return True
        scrubbed = scrub_secrets(message, secrets)
        if scrubbed != message:
            record.msg, record.args = scrubbed, None
        if record.exc_info and record.exc_info[1] is not None:
            _kind, value, tb = record.exc_info
            clean = scrub_exception(value, secrets)
            if clean is not value:
                record.exc_info = (type(clean), clean, tb)
                record.exc_text = None
        return True
