"""sync_table: an exposed table into a sink, with a domain event per change."""

from __future__ import annotations

import contextlib
import logging
import uuid
from collections.abc import AsyncIterator

from connector_adapters._ports import EventPublisher, JsonObject, StateStore
from connector_adapters._sync import (
    IncrementalSync,
    ProgressCallback,
    SourceBatch,
    SyncItem,
    SyncReport,
    _now_iso,
)
from connector_adapters.postgres_data._client import PostgresDataClient
from connector_adapters.postgres_data._config import MAX_BATCH_SIZE
from connector_adapters.postgres_data._mapping import TableMap
from connector_core import (
    Checkpoint,
    FieldType,
    InvalidRequestError,
    Provisionable,
    Record,
    StreamField,
    Writable,
)

SOURCE_SYSTEM = "postgres"
STAMP_FIELD = "synced_at"

logger = logging.getLogger("connector_adapters.postgres_data.sync")


def _dump(checkpoint: Checkpoint | None) -> JsonObject | None:
    return checkpoint.model_dump(mode="json") if checkpoint is not None else None


class TableSource:
    """The rows of one exposed table after a position, in batches of ``batch_size``.

    A new pass (position None) starts at ``watermark``, the position the last complete
    run ended at. ``high_water`` is where this run got to: in xmin mode the start of
    the next pass once the pass is read to its end, even when it found no row.
    """

    def __init__(
        self,
        client: PostgresDataClient,
        table: str,
        *,
        batch_size: int,
        watermark: JsonObject | None,
    ) -> None:
        self.client = client
        self.table = table
        self.batch_size = batch_size
        self.watermark = watermark
        self.high_water = watermark

    async def batches(self, position: JsonObject | None) -> AsyncIterator[SourceBatch[Record]]:
        start = position if position is not None else self.watermark
        since = Checkpoint.model_validate(start) if start is not None else None
        reader = self.client.read(self.table, since=since, raw=True)
        batch: list[Record] = []
        async with contextlib.aclosing(reader):
            async for row in reader:
                batch.append(row)
                if len(batch) >= self.batch_size:
                    self.high_water = _dump(reader.checkpoint)
                    yield SourceBatch(items=batch, position=self.high_water)
                    batch = []
        self.high_water = _dump(reader.checkpoint) or self.high_water
        if batch:
            yield SourceBatch(items=batch, position=self.high_water)


async def sync_table(
    client: PostgresDataClient,
    table: str,
    sink: Writable,
    *,
    publisher: EventPublisher,
    state: StateStore,
    target: str | None = None,
    name: str | None = None,
    batch_size: int | None = None,
    create: bool = True,
    on_progress: ProgressCallback | None = None,
    correlation_id: str | None = None,
) -> SyncReport:
    """Sync the exposed ``table`` into ``target`` of ``sink`` (default: the table's
    name) incrementally, publishing a domain event per change.

    Each run reads the rows changed since the last complete run (updated_at or xmin, as
    configured), maps them to entity records and runs the generic
    :class:`~connector_adapters.IncrementalSync`: records upserted on the key (a
    :class:`~connector_core.Provisionable` sink gets the entity's table first, with
    ``create``), ``<entity_type>.created`` for an entity this sync had not seen,
    ``.updated`` for one whose record changed, ``.deleted`` for one whose soft-delete
    field is set (the sink keeps the field: a soft delete), a checkpoint with the
    fingerprints after each batch. A run stopped mid-way resumes at its last batch.
    The watermark (``<name>:watermark`` in ``state``) moves only when the run is
    complete, so rows the sink refused or the mapping could not coerce are read again.

    Raises NotFoundError, ConfigError (the mapping does not fit the table),
    InvalidRequestError (a bad batch size) and the ConnectorError of the client, sink,
    publisher or state store that failed.
    """
    size = batch_size if batch_size is not None else client.config.batch_size
    if isinstance(size, bool) or not isinstance(size, int) or not 1 <= size <= MAX_BATCH_SIZE:
        raise InvalidRequestError(
            f"batch_size must be 1 to {MAX_BATCH_SIZE} records", connector="postgres_data"
        )
    tmap: TableMap = await client.table_map(table)
    tmap.check()
    target = target or tmap.table
    sync_name = name or f"postgres_data-{tmap.qualified}-{target}".replace(":", "_")
    cid = correlation_id or str(uuid.uuid4())
    if create and isinstance(sink, Provisionable):
        stream = tmap.stream()
        stamped = stream.model_copy(
            update={
                "fields": (*stream.fields, StreamField(name=STAMP_FIELD, type=FieldType.DATETIME))
            }
        )
        await sink.ensure_stream(target, stamped)
    watermark_key = f"{sync_name}:watermark"
    stored = await state.get(watermark_key) or {}
    position = stored.get("position")
    source = TableSource(
        client,
        tmap.table,
        batch_size=size,
        watermark=position if isinstance(position, dict) else None,
    )

    def mapper(row: Record) -> SyncItem:
        record = tmap.record(row)
        return SyncItem(
            entity_id=tmap.entity_id(record),
            record=record,
            event="deleted" if tmap.is_deleted(record) else None,
        )

    sync: IncrementalSync[Record] = IncrementalSync(
        name=sync_name,
        source=source,
        mapper=mapper,
        sink=sink,
        stream=target,
        publisher=publisher,
        state=state,
        source_system=SOURCE_SYSTEM,
        entity_type=tmap.entity_type,
        stamp_field=STAMP_FIELD,
        on_progress=on_progress,
    )
    report = await sync.run(correlation_id=cid)
    if report.completed:
        await state.put(watermark_key, {"position": source.high_water, "updated_at": _now_iso()})
    else:
        logger.warning(
            "postgres data sync %s incomplete: the watermark stays at %s, the next run reads "
            "these changes again",
            sync_name,
            position,
        )
    return report
