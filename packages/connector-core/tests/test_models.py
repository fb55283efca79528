"""Checkpoint and WriteResult: the positions and outcomes every connector shares."""

from __future__ import annotations

import gc
import logging

import pytest

from connector_core import Checkpoint, ErrorCode, RecordError, WriteResult

ERRORS = (RecordError(index=3, message="bad value", code=ErrorCode.QUERY),)


def _failed() -> WriteResult:
    return WriteResult(written=1, failed=2, errors=ERRORS)


def _dropped(result: WriteResult, caplog: pytest.LogCaptureFixture) -> list[str]:
    caplog.clear()
    with caplog.at_level(logging.WARNING, logger="connector_core.write"):
        del result
        gc.collect()
    return [r.getMessage() for r in caplog.records if r.name == "connector_core.write"]


def test_a_result_with_failures_dropped_unread_is_warned(caplog: pytest.LogCaptureFixture) -> None:
    messages = _dropped(_failed(), caplog)
    assert len(messages) == 1
    assert "rejected 2 record(s)" in messages[0]
    assert "#3 query: bad value" in messages[0]


@pytest.mark.parametrize("look", ["failed", "errors", "ok", "model_dump", "equality"])
def test_a_result_that_was_read_is_not_warned(look: str, caplog: pytest.LogCaptureFixture) -> None:
    result = _failed()
    if look == "equality":
        assert result == _failed()
    else:
        getattr(result, look)
    assert _dropped(result, caplog) == []


def test_a_result_without_failures_is_never_warned(caplog: pytest.LogCaptureFixture) -> None:
    assert _dropped(WriteResult(written=5), caplog) == []
    assert hash(WriteResult(written=5)) == hash(WriteResult(written=5))


def test_checkpoint_after_a_record_and_through_json() -> None:
    record = {"id": 7, "tenant": "a", "updated_at": "2026-01-02T03:04:05+00:00"}
    cp = Checkpoint.after(record, cursor_field="updated_at", key_fields=("tenant", "id"))
    assert cp == Checkpoint(cursor="2026-01-02T03:04:05+00:00", key=("a", 7))
    assert Checkpoint.model_validate_json(cp.model_dump_json()) == cp
    by_key = Checkpoint.after(record, cursor_field="id", key_fields=("id",))
    assert by_key == Checkpoint(cursor=7, key=())
