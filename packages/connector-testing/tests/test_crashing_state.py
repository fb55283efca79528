"""CrashingStateStore stops a sync after the sink took a batch, before its checkpoint."""

from __future__ import annotations

import uuid

import pytest

from connector_core.sync import StreamSync
from connector_testing import (
    CrashingStateStore,
    MemoryConfig,
    MemoryConnector,
    SimulatedCrashError,
)


async def test_the_chosen_checkpoint_is_not_stored_and_the_run_resumes_before_it() -> None:
    source = MemoryConnector(MemoryConfig(store=f"src-{uuid.uuid4().hex}"))
    sink = MemoryConnector(MemoryConfig(store=f"dst-{uuid.uuid4().hex}"))
    async with source, sink:
        source.create_stream("items", primary_key=("id",))
        await source.write("items", [{"id": i} for i in range(30)])
        state = CrashingStateStore(fail_at=2)
        sync = StreamSync(source, "items", sink, state=state, batch_size=10)
        with pytest.raises(SimulatedCrashError):
            await sync.run()
        assert state.checkpoints == 2
        assert (await sync.checkpoint() or {})["key"] == [9]  # batch 1's last record
        assert len([r async for r in sink.read("items")]) == 20  # batch 2 was written
        await state.put("other", {"x": 1})  # other keys are stored as usual
        assert await state.get("other") == {"x": 1}
        state.fail_at = None
        assert (await sync.run()).records == 20
