"""sync_streams: several streams of one source into one sink, one after another."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from connector_core._protocols import Readable, Writable
from connector_core.sync._engine import StreamReport, StreamSync
from connector_core.sync._state import StateStore


async def sync_streams(
    source: Readable,
    sink: Writable,
    streams: Mapping[str, str | None],
    *,
    state: StateStore,
    **options: Any,
) -> list[StreamReport]:
    """Run a :class:`StreamSync` for each ``source stream -> sink stream`` of ``streams``
    (None: the same name), in order, with the same ``options``; the reports, one per
    stream. The first failure raises (the streams before it stay synced and
    checkpointed)."""
    reports = []
    for stream, target in streams.items():
        sync = StreamSync(source, stream, sink, state=state, target=target, **options)
        reports.append(await sync.run())
    return reports
