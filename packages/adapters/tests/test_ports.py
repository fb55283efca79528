"""EventPublisher and StateStore ports: in-memory and file implementations."""

from __future__ import annotations

import asyncio
import json
import os
import threading
from datetime import UTC, datetime
from pathlib import Path

import pytest

from connector_adapters import (
    DomainEvent,
    EventPublisher,
    FileStateStore,
    InMemoryEventPublisher,
    InMemoryStateStore,
    StateStore,
)
from connector_core import SerializationError


def _event(kind: str = "contact.created", entity_id: str = "1") -> DomainEvent:
    return DomainEvent(
        type=kind, source_system="chatwoot", entity_type="contact", entity_id=entity_id
    )


async def test_in_memory_publisher_keeps_events_in_order_and_calls_subscribers() -> None:
    publisher = InMemoryEventPublisher()
    seen: list[str] = []
    received: list[str] = []

    async def async_subscriber(event: DomainEvent) -> None:
        received.append(event.entity_id)

    publisher.subscribe(lambda e: seen.append(e.entity_id))
    publisher.subscribe(async_subscriber)
    await publisher.publish(_event(entity_id="1"))
    await publisher.publish(_event("contact.updated", "2"))
    assert isinstance(publisher, EventPublisher)
    assert [e.entity_id for e in publisher.events] == ["1", "2"]
    assert [e.entity_id for e in publisher.of_type("contact.updated")] == ["2"]
    assert seen == received == ["1", "2"]


def test_domain_event_defaults_and_validation() -> None:
    event = _event()
    assert len(event.id) == 36
    assert event.occurred_at.tzinfo is not None
    assert event.occurred_at <= datetime.now(UTC)
    assert _event().id != event.id
    with pytest.raises(ValueError, match="type"):
        DomainEvent(type="", source_system="s", entity_type="e", entity_id="1")


@pytest.fixture(params=["memory", "file"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> StateStore:
    if request.param == "memory":
        return InMemoryStateStore()
    return FileStateStore(tmp_path / "state" / "sync.json")


async def test_state_store_round_trip(store: StateStore) -> None:
    assert isinstance(store, StateStore)
    assert await store.get("missing") is None
    await store.put("a", {"page": 3, "nested": {"x": [1, 2]}})
    await store.put_many({"b": {"fp": "1"}, "c": {"fp": "2"}})
    assert await store.get("a") == {"page": 3, "nested": {"x": [1, 2]}}
    assert await store.get_many(["a", "c", "zzz"]) == {
        "a": {"page": 3, "nested": {"x": [1, 2]}},
        "c": {"fp": "2"},
    }
    await store.put("a", {"page": 4})
    await store.delete("b")
    await store.delete("never-there")
    assert await store.get("a") == {"page": 4}
    assert await store.get("b") is None


async def test_state_store_values_are_copies(store: StateStore) -> None:
    value = {"list": [1]}
    await store.put("k", value)
    value["list"].append(2)
    got = await store.get("k")
    assert got == {"list": [1]}
    assert got is not None
    got["list"].append(3)
    assert await store.get("k") == {"list": [1]}


async def test_state_store_rejects_non_json_values(store: StateStore) -> None:
    with pytest.raises(SerializationError, match="'k'"):
        await store.put("k", {"when": object()})
    with pytest.raises(SerializationError):
        await store.put_many({"ok": {"a": 1}, "bad": {"x": float("nan")}})
    assert await store.get("ok") is None  # put_many is all or nothing


async def test_file_store_survives_a_restart(tmp_path: Path) -> None:
    path = tmp_path / "state.json"
    await FileStateStore(path).put_many({"cp": {"page": 7}, "fp:1": {"fp": "x"}})
    reopened = FileStateStore(path)
    assert await reopened.get("cp") == {"page": 7}
    assert json.loads(path.read_text()) == {"cp": {"page": 7}, "fp:1": {"fp": "x"}}


async def test_file_store_write_is_atomic(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "state.json"
    store = FileStateStore(path)
    await store.put("cp", {"page": 1})
    synced: list[int] = []
    real_fsync = os.fsync
    monkeypatch.setattr(os, "fsync", lambda fd: (synced.append(fd), real_fsync(fd)))

    def crash(src: str, dst: str) -> None:
        raise OSError("disk gone")

    monkeypatch.setattr(os, "replace", crash)
    with pytest.raises(OSError, match="disk gone"):
        await store.put("cp", {"page": 2})
    assert synced, "the temporary file is fsynced before it replaces the old one"
    assert json.loads(path.read_text()) == {"cp": {"page": 1}}
    assert os.listdir(tmp_path) == ["state.json"]  # no temp file left
    assert await FileStateStore(path).get("cp") == {"page": 1}


async def test_file_store_names_a_corrupt_file(tmp_path: Path) -> None:
    path = tmp_path / "state.json"
    path.write_text("{not json")
    with pytest.raises(SerializationError, match=r"state\.json"):
        await FileStateStore(path).get("x")
    path.write_text("[1, 2]")
    with pytest.raises(SerializationError, match="JSON object"):
        await FileStateStore(path).get("x")


async def test_file_store_cancelled_during_write_keeps_memory_and_file_in_step(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "state.json"
    store = FileStateStore(path)
    await store.put("cp", {"page": 1})
    entered, release, finished = threading.Event(), threading.Event(), threading.Event()
    real_write = FileStateStore._write

    def slow_write(self: FileStateStore, data: dict[str, object]) -> None:
        entered.set()
        release.wait(30)
        try:
            real_write(self, data)  # type: ignore[arg-type]
        finally:
            finished.set()

    monkeypatch.setattr(FileStateStore, "_write", slow_write)
    task = asyncio.create_task(store.put_many({"cp": {"page": 2}, "fp:1": {"fp": "a"}}))
    await asyncio.to_thread(entered.wait, 30)
    task.cancel()
    await asyncio.sleep(0)
    release.set()
    with pytest.raises(asyncio.CancelledError):
        await task
    await asyncio.to_thread(finished.wait, 30)  # the thread wrote the file regardless
    monkeypatch.setattr(FileStateStore, "_write", real_write)
    assert await store.get("cp") == {"page": 2}  # memory agrees with the file
    await store.put("fp:2", {"fp": "b"})  # must not overwrite the cancelled commit
    reopened = FileStateStore(path)
    assert await reopened.get_many(["cp", "fp:1", "fp:2"]) == {
        "cp": {"page": 2}, "fp:1": {"fp": "a"}, "fp:2": {"fp": "b"},
    }  # fmt: skip


def _nested(depth: int) -> dict[str, object]:
    value: object = []
    for _ in range(depth - 2):
        value = [value]
    return {"a": value}


async def test_state_values_nest_at_most_64_levels(store: StateStore) -> None:
    await store.put("ok", _nested(64))
    assert await store.get("ok") == _nested(64)
    for depth in (65, 600, 5000):  # 600 broke copy.deepcopy on get; 5000 json.dumps on put
        with pytest.raises(SerializationError, match="nests more than 64 levels"):
            await store.put("deep", _nested(depth))
        with pytest.raises(SerializationError, match="'deep'"):
            await store.put_many({"fine": {"a": 1}, "deep": _nested(depth)})
    loop: dict[str, object] = {}
    loop["self"] = loop
    with pytest.raises(SerializationError):
        await store.put("loop", loop)
    assert await store.get_many(["deep", "fine", "loop"]) == {}


@pytest.mark.parametrize(
    ("text", "match"),
    [
        ('{"a": ' + "[" * 100_000 + "]" * 100_000 + "}", "nested too deeply to decode"),
        ('{"a": {"b": ' + "[" * 100 + "]" * 100 + "}}", "nests more than 65 levels"),
        ('{"cp": {"page": 1}, "fp:1": 5, "fp:2": "x"}', r"not objects \('fp:1', 'fp:2'\)"),
        ("\udcff", "not valid JSON"),
    ],
    ids=["deeper-than-json-decodes", "deeper-than-64", "values-not-objects", "not-utf8"],
)
async def test_file_store_refuses_a_file_it_did_not_write(
    tmp_path: Path, text: str, match: str
) -> None:
    path = tmp_path / "state.json"
    path.write_bytes(text.encode("utf-8", "surrogateescape"))
    with pytest.raises(SerializationError, match=match) as info:
        await FileStateStore(path).get("cp")
    assert "state.json" in str(info.value)
    assert info.value.__cause__ is None
    assert info.value.__context__ is None
