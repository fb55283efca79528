"""A state store that makes a sync die at the worst point: after the sink took a batch
and before that batch's checkpoint was stored."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from connector_core.sync import InMemoryStateStore


class SimulatedCrashError(RuntimeError):
    """Raised by :class:`CrashingStateStore` where the process would have died."""


class CrashingStateStore(InMemoryStateStore):
    """An :class:`~connector_core.sync.InMemoryStateStore` whose ``fail_at``-th checkpoint
    (a ``put`` of a key ending in ``:checkpoint``) raises :class:`SimulatedCrashError`
    instead of being stored: the run stops right after the sink took that batch, the
    point where a kill makes a resumed run repeat the most (one batch). Set ``fail_at``
    to None and run again with the same store to resume. ``checkpoints`` counts the
    checkpoint puts so far."""

    def __init__(self, fail_at: int | None) -> None:
        super().__init__()
        self.fail_at = fail_at
        self.checkpoints = 0

    async def put(self, key: str, value: Mapping[str, Any]) -> None:
        if key.endswith(":checkpoint"):
            self.checkpoints += 1
            if self.checkpoints == self.fail_at:
                raise SimulatedCrashError(f"simulated crash before checkpoint {self.fail_at}")
        await super().put(key, value)
