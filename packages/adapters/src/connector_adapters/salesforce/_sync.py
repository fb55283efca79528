"""sync_sobject: an sObject into a table, incrementally by SystemModstamp, with deletes."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime
from typing import Any, Literal

from connector_adapters._ports import EventPublisher, JsonObject, StateStore
from connector_adapters._sync import (
    IncrementalSync,
    ProgressCallback,
    SourceBatch,
    SyncItem,
    SyncReport,
    _now_iso,
)
from connector_adapters.salesforce._client import SalesforceClient, new_correlation_id
from connector_adapters.salesforce._models import SalesforceRecord, SObjectDescribe
from connector_adapters.salesforce._soql import Soql, soql_identifier
from connector_core import InvalidRequestError, SerializationError, Writable

SOURCE_SYSTEM = "salesforce"
DELETED_COLUMN = "is_deleted"
"""The soft delete column: True for a record deleted in Salesforce."""
DELETED_AT_COLUMN = "deleted_at"
DeleteDetection = Literal["query_all", "get_deleted"]

logger = logging.getLogger("connector_adapters.salesforce.sync")

_PG_TYPES = {
    "boolean": "boolean",
    "int": "bigint",
    "long": "bigint",
    "double": "double precision",
    "currency": "double precision",
    "percent": "double precision",
    "date": "date",
    "datetime": "timestamptz",
    "address": "jsonb",
    "location": "jsonb",
}


def column_name(field: str) -> str:
    """The table column of a Salesforce field: its name in lower case."""
    return soql_identifier(field).lower()


def _wanted_fields(describe: SObjectDescribe, fields: Sequence[str] | None) -> list[str]:
    known = {f.name.lower(): f.name for f in describe.fields}
    given = list(fields) if fields is not None else [f.name for f in describe.fields]
    unknown = [f for f in given if f.lower() not in known]
    if unknown:
        raise InvalidRequestError(
            f"field(s) {', '.join(unknown)} not found on {describe.name}; known: "
            f"{', '.join(sorted(known.values()))}",
            connector="salesforce",
        )
    names = [known[f.lower()] for f in given]
    for needed in ("Id", "SystemModstamp"):
        if needed not in names:
            names.insert(0, needed)
    return [n for n in dict.fromkeys(names) if n != "IsDeleted"]


def sobject_columns(
    describe: SObjectDescribe, fields: Sequence[str] | None = None
) -> dict[str, str]:
    """The table's columns for ``fields`` of ``describe`` (all when None): PostgreSQL
    types from the Salesforce types, ``id`` the primary key, then the soft delete
    columns and ``synced_at``."""
    types = {f.name: f.type for f in describe.fields}
    columns: dict[str, str] = {}
    for name in _wanted_fields(describe, fields):
        sql = _PG_TYPES.get(types[name], "text")
        columns[column_name(name)] = "text PRIMARY KEY" if name == "Id" else sql
    columns[DELETED_COLUMN] = "boolean NOT NULL DEFAULT false"
    columns[DELETED_AT_COLUMN] = "timestamptz"
    columns["synced_at"] = "timestamptz"
    return columns


def sobject_table_ddl(
    describe: SObjectDescribe, table: str, fields: Sequence[str] | None = None
) -> str:
    """``CREATE TABLE IF NOT EXISTS`` for the table ``sync_sobject`` writes (names quoted
    by connector-postgres: the ``postgres`` extra, ImportError naming it when missing)."""
    try:
        from connector_postgres import quote_ident
    except ImportError as exc:  # pragma: no cover - exercised in a clean venv
        raise ImportError(
            "sobject_table_ddl needs the PostgreSQL connector: "
            "pip install 'connector-adapters[postgres]'"
        ) from exc
    quoted = ".".join(quote_ident(part) for part in table.split("."))
    columns = ",\n  ".join(
        f"{quote_ident(name)} {sql}" for name, sql in sobject_columns(describe, fields).items()
    )
    return f"CREATE TABLE IF NOT EXISTS {quoted} (\n  {columns}\n)"


def _stamp(value: Any) -> datetime:
    if isinstance(value, datetime):
        return value.astimezone(UTC)
    try:
        parsed = datetime.fromisoformat(str(value))
    except ValueError:
        parsed = None
    if parsed is None or parsed.utcoffset() is None:
        raise SerializationError(
            f"SystemModstamp {value!r} is not a datetime with a time zone", connector="salesforce"
        )
    return parsed.astimezone(UTC)


def _value(value: Any, sf_type: str) -> Any:
    if value is None:
        return None
    try:
        if sf_type == "datetime":
            return _stamp(value)
        if sf_type == "date":
            return value if isinstance(value, date) else date.fromisoformat(str(value))
        if sf_type in ("int", "long"):
            return int(value)
        if sf_type in ("double", "currency", "percent"):
            return float(value)
    except (TypeError, ValueError) as exc:
        raise SerializationError(
            f"{value!r} is not a Salesforce {sf_type}", connector="salesforce"
        ) from exc
    if sf_type == "boolean":
        return value if isinstance(value, bool) else str(value).lower() == "true"
    if sf_type in ("address", "location"):
        return dict(value) if isinstance(value, Mapping) else {"value": value}
    return str(value)


@dataclass(frozen=True, slots=True)
class Deletion:
    """A record ``get_deleted`` reported."""

    id: str
    deleted_at: datetime


def _position(value: JsonObject | None) -> tuple[datetime, str] | None:
    if value is None:
        return None
    stamp, record_id = value.get("stamp"), value.get("id")
    if not isinstance(stamp, str) or not isinstance(record_id, str):
        raise SerializationError(
            f"sObject sync position {value!r} holds no SystemModstamp and Id; delete the "
            "sync's checkpoint and watermark to start again",
            connector="salesforce",
        )
    return _stamp(stamp), record_id


def _as_position(stamp: datetime, record_id: str) -> JsonObject:
    return {"stamp": stamp.isoformat(), "id": record_id}


class SObjectSource:
    """Records of one sObject in (SystemModstamp, Id) order, after a position.

    Each batch is ``batch_size`` records: those with the position's SystemModstamp and a
    greater Id, then those with a later SystemModstamp (two keyset queries, so records
    sharing one SystemModstamp are neither skipped nor repeated wherever a batch ends).
    With ``deletes="query_all"`` the records come through queryAll, deleted ones
    (``IsDeleted``) among them; with ``"get_deleted"`` they come through query, and
    after the pass ``get_deleted`` from ``deleted_since`` to now gives the deletions.
    ``high_water`` and ``deleted_until`` are where the next run starts.
    """

    def __init__(
        self,
        client: SalesforceClient,
        sobject: str,
        fields: Sequence[str],
        *,
        batch_size: int,
        deletes: DeleteDetection,
        watermark: JsonObject | None,
        deleted_since: datetime | None,
        correlation_id: str,
        clock: Callable[[], datetime] | None = None,
    ) -> None:
        self.client = client
        self.sobject = sobject
        self.fields = list(fields)
        self.batch_size = batch_size
        self.deletes = deletes
        self.correlation_id = correlation_id
        self.watermark = watermark
        self.high_water = watermark
        self.deleted_since = deleted_since
        self.deleted_until: datetime | None = deleted_since
        self.clock = clock or (lambda: datetime.now(UTC))

    def _select(self) -> Soql:
        fields = [*self.fields, "IsDeleted"] if self.deletes == "query_all" else self.fields
        return Soql(self.sobject).select(*fields)

    async def _read(self, query: Soql) -> list[SalesforceRecord]:
        read = self.client.query_all if self.deletes == "query_all" else self.client.query
        return [r async for r in read(str(query), correlation_id=self.correlation_id)]

    async def _after(self, position: tuple[datetime, str] | None) -> list[SalesforceRecord]:
        n = self.batch_size
        if position is None:
            return await self._read(
                self._select().order_by("SystemModstamp").order_by("Id").limit(n)
            )
        stamp, record_id = position
        ties = await self._read(
            self._select().where("SystemModstamp", "=", stamp).where("Id", ">", record_id)
            .order_by("Id").limit(n)
        )  # fmt: skip
        if len(ties) >= n:
            return ties
        later = await self._read(
            self._select().where("SystemModstamp", ">", stamp)
            .order_by("SystemModstamp").order_by("Id").limit(n - len(ties))
        )  # fmt: skip
        return ties + later

    async def batches(
        self, position: JsonObject | None
    ) -> AsyncIterator[SourceBatch[SalesforceRecord | Deletion]]:
        started = self.clock().astimezone(UTC)
        if position is not None:
            self.high_water = position
        cursor = _position(position if position is not None else self.watermark)
        while True:
            records = await self._after(cursor)
            if not records:
                break
            last = records[-1]
            if last.id is None:
                raise SerializationError("a record without Id", connector="salesforce")
            cursor = (_stamp(last.get("SystemModstamp")), last.id)
            self.high_water = _as_position(*cursor)
            yield SourceBatch(items=records, position=self.high_water)
            if len(records) < self.batch_size:
                break
        if self.deletes == "get_deleted":
            async for batch in self._deletions(started):
                yield batch

    async def _deletions(
        self, until: datetime
    ) -> AsyncIterator[SourceBatch[SalesforceRecord | Deletion]]:
        since = self.deleted_since
        if since is None or since >= until:
            # A first run has nothing in the sink that a deletion before it could mark.
            self.deleted_until = until
            return
        found = await self.client.get_deleted(
            self.sobject, since, until, correlation_id=self.correlation_id
        )
        deletions = [Deletion(d.id, d.deleted_date.astimezone(UTC)) for d in found.deleted_records]
        covered = found.latest_date_covered
        self.deleted_until = covered.astimezone(UTC) if covered is not None else until
        for start in range(0, len(deletions), self.batch_size):
            chunk = deletions[start : start + self.batch_size]
            yield SourceBatch(items=chunk, position=self.high_water)


async def sync_sobject(
    client: SalesforceClient,
    sink: Writable,
    sobject: str,
    *,
    publisher: EventPublisher,
    state: StateStore,
    fields: Sequence[str] | None = None,
    table: str | None = None,
    deletes: DeleteDetection = "query_all",
    batch_size: int = 2000,
    entity_type: str | None = None,
    name: str | None = None,
    on_progress: ProgressCallback | None = None,
    correlation_id: str | None = None,
    clock: Callable[[], datetime] | None = None,
) -> SyncReport:
    """Sync ``sobject`` into ``table`` of ``sink`` (default ``salesforce_<sobject>``),
    incrementally by SystemModstamp with Id as tie-breaker.

    A run reads what changed after the last complete run's watermark (the
    SystemModstamp and Id of the last record applied, kept in ``state`` under
    ``<name>:watermark``), ``batch_size`` records a batch, on the generic
    :class:`IncrementalSync`: rows upserted on ``id`` (create the table with
    :func:`sobject_table_ddl`), ``<entity_type>.created`` / ``.updated`` events (entity
    type: the sObject's name in lower case), a checkpoint after each batch, so a run
    cancelled mid-way resumes at its last batch with nothing lost or repeated.

    Deletes are marked in the sink (``is_deleted`` true, ``deleted_at``) and published
    as ``<entity_type>.deleted``: found through queryAll (``IsDeleted``; deleting
    bumps SystemModstamp) or, with ``deletes="get_deleted"``, through get_deleted
    from the previous run to this one. The watermark moves only when the run is
    complete (every record applied): otherwise the next run reads the same changes
    again (fingerprints make what was applied cost no write and no event).

    ``clock`` gives the time a get_deleted window ends at (default: now, UTC).

    Raises InvalidRequestError for an unknown field or a bad batch size, and the
    ConnectorError of the client, sink or state store that failed.
    """
    if not isinstance(batch_size, int) or not 1 <= batch_size <= 2000:
        raise InvalidRequestError("batch_size must be 1 to 2000 records", connector="salesforce")
    if deletes not in ("query_all", "get_deleted"):
        raise InvalidRequestError(
            "deletes must be 'query_all' or 'get_deleted'", connector="salesforce"
        )
    cid = new_correlation_id(correlation_id)
    describe = await client.describe(sobject, correlation_id=cid)
    wanted = _wanted_fields(describe, fields)
    types = {f.name: f.type for f in describe.fields}
    target = table or f"salesforce_{describe.name.lower()}"
    sync_name = name or f"salesforce-{describe.name}-{target}"
    entity = entity_type or describe.name.lower()
    watermark_key = f"{sync_name}:watermark"
    stored = await state.get(watermark_key) or {}
    since = stored.get("deleted_until")
    source = SObjectSource(
        client, describe.name, wanted, batch_size=batch_size, deletes=deletes,
        watermark=stored.get("position"),
        deleted_since=_stamp(since) if isinstance(since, str) else None, correlation_id=cid,
        clock=clock,
    )  # fmt: skip

    def mapper(item: SalesforceRecord | Deletion) -> SyncItem:
        if isinstance(item, Deletion):
            row: dict[str, Any] = {
                "id": item.id, DELETED_COLUMN: True, DELETED_AT_COLUMN: item.deleted_at,
            }  # fmt: skip
            payload = {"Id": item.id, "deleted_at": item.deleted_at.isoformat()}
            return SyncItem(entity_id=item.id, record=row, payload=payload, event="deleted")
        if item.id is None:
            raise SerializationError(f"a {describe.name} record without Id")
        row = {column_name(f): _value(item.get(f), types[f]) for f in wanted}
        deleted = bool(item.get("IsDeleted"))
        row[DELETED_COLUMN] = deleted
        row[DELETED_AT_COLUMN] = row["systemmodstamp"] if deleted else None
        return SyncItem(
            entity_id=item.id, record=row, payload=item.fields(),
            event="deleted" if deleted else None,
        )  # fmt: skip

    sync: IncrementalSync[SalesforceRecord | Deletion] = IncrementalSync(
        name=sync_name,
        source=source,
        mapper=mapper,
        sink=sink,
        stream=target,
        publisher=publisher,
        state=state,
        source_system=SOURCE_SYSTEM,
        entity_type=entity,
        on_progress=on_progress,
    )
    report = await sync.run(correlation_id=cid)
    if report.completed:
        mark: dict[str, Any] = {"position": source.high_water, "updated_at": _now_iso()}
        if source.deleted_until is not None:
            mark["deleted_until"] = source.deleted_until.isoformat()
        await state.put(watermark_key, mark)
    else:
        logger.warning(
            "salesforce sync %s incomplete: the watermark stays at %s, the next run reads "
            "these changes again",
            sync_name,
            stored.get("position"),
        )
    return report
