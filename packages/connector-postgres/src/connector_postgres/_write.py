"""write(): planning a batch (insert or upsert, pipelined or staged through COPY), the
SQL it runs, feeding records to the driver, and locating the record a failed batch
tripped on."""

from __future__ import annotations

import itertools
import operator
import re
from collections.abc import Awaitable, Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal

import asyncpg

from connector_core import (
    ConnectorError,
    InvalidRequestError,
    Record,
    RecordError,
    SerializationError,
    WriteResult,
)
from connector_postgres._catalog import CatalogResolver, Table
from connector_postgres._identifiers import column_list, quote_ident
from connector_postgres._session import Connection, Session, close_now

WriteMode = Literal["insert", "upsert"]

STAGE_TABLE = "connector_postgres_upsert_stage"
# Every reference to the stage names its schema: unqualified, it resolves through
# search_path, and with pg_temp placed last (a common hardening) that finds a permanent
# table of the same name first, someone else's (docs/decisions/0051).
STAGE_SCHEMA = "pg_temp"
_STAGE = f"{STAGE_SCHEMA}.{quote_ident(STAGE_TABLE)}"
ORDINAL = "connector_postgres_ordinal"

# COPY reports the failing input line; in binary COPY each record is one "line".
_COPY_LINE = re.compile(r"\bCOPY [^,]+, line (\d+)")
# asyncpg's client-side encoding errors name the element of the batch.
_ELEMENT = re.compile(r"element #(\d+)")


def stage_sql(table: Table, columns: Sequence[str]) -> str:
    """A temporary table shaped like ``columns`` of ``table`` plus an arrival ordinal;
    dropped at commit (or rollback)."""
    return (
        f"CREATE TEMPORARY TABLE {_STAGE} ON COMMIT DROP AS "  # noqa: S608
        f"SELECT {column_list(columns)} FROM {table.sql_name} WITH NO DATA; "
        f"ALTER TABLE {_STAGE} "
        f"ADD COLUMN {quote_ident(ORDINAL)} bigint GENERATED ALWAYS AS IDENTITY"
    )


def _conflict_clause(columns: Sequence[str], key: Sequence[str]) -> str:
    updates = [c for c in columns if c not in key]
    target = column_list(key)
    if not updates:
        return f"ON CONFLICT ({target}) DO NOTHING"
    assignments = ", ".join(f"{quote_ident(c)} = EXCLUDED.{quote_ident(c)}" for c in updates)
    return f"ON CONFLICT ({target}) DO UPDATE SET {assignments}"


def merge_stage_sql(table: Table, columns: Sequence[str], key: Sequence[str]) -> str:
    """Upsert the staged rows into ``table``; of several rows with one key, the last wins."""
    cols = column_list(columns)
    return (
        f"INSERT INTO {table.sql_name} ({cols}) "  # noqa: S608
        f"SELECT DISTINCT ON ({column_list(key)}) {cols} FROM {_STAGE} "
        f"ORDER BY {column_list(key)}, {quote_ident(ORDINAL)} DESC "
        f"{_conflict_clause(columns, key)}"
    )


def upsert_sql(table: Table, columns: Sequence[str], key: Sequence[str]) -> str:
    """One-row upsert, for small batches sent with executemany."""
    params = ", ".join(f"${i}" for i in range(1, len(columns) + 1))
    return (
        f"INSERT INTO {table.sql_name} ({column_list(columns)}) VALUES ({params}) "  # noqa: S608
        f"{_conflict_clause(columns, key)}"
    )


def is_record_error(error: ConnectorError) -> bool:
    """Whether ``error`` is about the data of some record (a bad value, a constraint)
    rather than about the request, the connection or the server."""
    if isinstance(error, SerializationError):
        return True
    state = str(error.details.get("sqlstate", ""))
    return state[:2] in ("22", "23")


def failing_index(error: ConnectorError) -> int | None:
    """The batch position of the record the server or driver complained about, if it said."""
    context = str(error.details.get("context", ""))
    match = _COPY_LINE.search(context)
    if match:
        return int(match.group(1)) - 1
    match = _ELEMENT.search(error.message)
    if match:
        return int(match.group(1))
    return None


def key_of(record: Mapping[str, Any], key: Sequence[str]) -> Any:
    """The record's primary key value (a tuple for composite keys), None if absent."""
    if not key:
        return None
    values = tuple(record.get(k) for k in key)
    return values[0] if len(values) == 1 else values


def drop_stage_sql() -> str:
    """Drop the staging table now (inside a longer transaction, ON COMMIT is too late)."""
    return f"DROP TABLE {_STAGE}"


class BatchWriter:
    """``write()`` for a connector: one batch, all or nothing, on a session.

    The table is resolved with ``resolver``; ``bulk_deadline(n)`` bounds a batch of
    ``n`` records; upserts of ``upsert_copy_threshold`` records or more are staged
    through a binary COPY into a temporary table, smaller ones pipelined. ``scrub``
    masks the connector's secrets in a message that did not come through the road (the
    driver's reason for refusing a value may quote the value)."""

    def __init__(
        self,
        resolver: CatalogResolver,
        bulk_deadline: Callable[[int | None], float | None],
        *,
        upsert_copy_threshold: int,
        scrub: Callable[[str], str],
        connector: str,
    ) -> None:
        self._resolver = resolver
        self._bulk_deadline = bulk_deadline
        self._upsert_copy_threshold = upsert_copy_threshold
        self._scrub = scrub
        self._connector = connector

    async def write(
        self,
        session: Session,
        stream: str,
        records: Iterable[Record],
        mode: WriteMode | None,
    ) -> WriteResult:
        """See ``PostgresConnector.write``."""
        batch: Sequence[Record] = records if isinstance(records, (list, tuple)) else list(records)
        if not batch:
            return WriteResult()
        columns = tuple(batch[0].keys())

        async def write_into(table: Table) -> WriteResult:
            return await self._write_table(session, table, batch, columns, mode)

        return await self._resolver.with_table(session, stream, write_into, columns=columns)

    def _mode(self, table: Table, columns: tuple[str, ...], mode: WriteMode | None) -> WriteMode:
        if not table.writable:
            raise InvalidRequestError(
                f"cannot write into {table.stream.kind} {table.stream.qualified_name!r}",
                connector=self._connector,
            )
        for column in columns:
            table.column(column)
        pk = table.stream.primary_key
        if mode is None:
            return "upsert" if pk else "insert"
        if mode == "upsert":
            if not pk:
                raise InvalidRequestError(
                    f"upsert needs a primary key; {table.stream.qualified_name!r} has none",
                    connector=self._connector,
                )
            missing = [k for k in pk if k not in columns]
            if missing:
                raise InvalidRequestError(
                    f"upsert needs the primary key in every record; missing {missing}",
                    connector=self._connector,
                )
        elif mode != "insert":
            raise InvalidRequestError(f"unknown write mode {mode!r}", connector=self._connector)
        return mode

    async def _write_table(
        self,
        session: Session,
        table: Table,
        batch: Sequence[Record],
        columns: tuple[str, ...],
        mode: WriteMode | None,
    ) -> WriteResult:
        mode = self._mode(table, columns, mode)
        pk = table.stream.primary_key
        getter = _row_getter(columns)
        # Every statement of the write gets the whole bulk deadline (not command_timeout,
        # which is sized for ordinary statements); the operation's deadline bounds the sum.
        timeout = self._bulk_deadline(len(batch))
        in_transaction = session.in_transaction
        staged = len(batch) >= self._upsert_copy_threshold

        async def insert(c: Connection, rows: Iterator[tuple[Any, ...]]) -> None:
            await c.copy_records_to_table(
                table.name, records=rows, columns=columns, schema_name=table.schema, timeout=timeout
            )

        async def upsert(c: Connection, rows: Iterator[tuple[Any, ...]]) -> None:
            if staged:
                await c.execute(stage_sql(table, columns), timeout=timeout)
                await c.copy_records_to_table(
                    STAGE_TABLE,
                    records=rows,
                    columns=columns,
                    schema_name=STAGE_SCHEMA,
                    timeout=timeout,
                )
                await c.execute(merge_stage_sql(table, columns, pk), timeout=timeout)
                if in_transaction:  # ON COMMIT DROP is at the outer commit: too late
                    await c.execute(drop_stage_sql(), timeout=timeout)
            else:
                await c.executemany(upsert_sql(table, columns, pk), rows, timeout=timeout)

        work = upsert if mode == "upsert" else insert
        # An insert outside a transaction is one COPY statement: atomic by itself.
        atomic = mode == "upsert" or in_transaction

        async def attempt(c: Connection) -> _Unencodable | None:
            # A record the driver cannot encode is an outcome of the attempt, returned
            # (after the rollback), not an error: it is not the road's to classify or
            # retry, and nothing identifies it once the road has scrubbed the chain.
            source = _RowSource(batch, getter, len(columns))
            try:
                if atomic:
                    await _atomically(c, lambda: work(c, iter(source)))
                else:
                    await work(c, iter(source))
            except (KeyError, _ShapeMismatchError):  # a record unlike the first one
                return _Unencodable(None, "record shape")
            except (TypeError, ValueError, OverflowError) as exc:
                if isinstance(exc, asyncpg.InterfaceError) and "element #" in str(exc):
                    raise  # asyncpg names the element itself
                reason = self._scrub(f"cannot encode a value: {exc}")
                return _Unencodable(source.position(), reason)
            return None

        try:
            unencodable = await session.run(
                f"write.{mode}", attempt, idempotent=mode == "upsert", bulk_deadline=timeout
            )
        except ConnectorError as error:
            if not is_record_error(error):
                raise
            culprit = failing_index(error)
            in_batch = culprit is not None and 0 <= culprit < len(batch)
            key = key_of(batch[culprit], pk) if culprit is not None and in_batch else None
            record_error = RecordError(
                index=culprit if culprit is not None and in_batch else -1,
                message=error.message,
                code=error.code,
                key=key,
            )
            return WriteResult(written=0, failed=len(batch), errors=(record_error,))
        if unencodable is not None:
            found = _first_mismatch(batch, columns, pk) if unencodable.index is None else None
            if found is None:
                at = unencodable.index if unencodable.index is not None else -1
                found = RecordError(
                    index=at,
                    message=unencodable.reason,
                    code=SerializationError.code,
                    key=key_of(batch[at], pk) if 0 <= at < len(batch) else None,
                )
            return WriteResult(written=0, failed=len(batch), errors=(found,))
        return WriteResult(written=len(batch), failed=0)


@dataclass(frozen=True, slots=True)
class _Unencodable:
    """A record of a write batch could not be encoded (``index`` None: find it by shape)."""

    index: int | None
    reason: str


def _row_getter(columns: Sequence[str]) -> Callable[[Mapping[str, Any]], tuple[Any, ...]]:
    if len(columns) == 1:
        only = columns[0]
        return lambda record: (record[only],)
    getter: Callable[[Mapping[str, Any]], tuple[Any, ...]] = operator.itemgetter(*columns)
    return getter


# Records per chunk of a write batch whose shape is checked at once.
_CHUNK = 4096


class _ShapeMismatchError(Exception):
    """A chunk of a write batch holds a record with more or fewer fields than the first."""


class _RowSource:
    """The records of a write batch as tuples in ``columns`` order, for the driver.

    Chunk by chunk: each chunk's shape is checked at C speed (its records' field counts
    must add up to ``width`` per record; with the KeyError a missing field raises while
    converting, that proves every record has exactly the first record's fields) right
    before ``operator.itemgetter`` converts it, so the checks run while the server is
    busy with the previous chunk instead of before anything is sent. A failure only
    says *that* something is wrong; ``_first_mismatch`` then finds *which* record.
    """

    __slots__ = ("_batch", "_getter", "_part", "_part_len", "_start", "_width")

    def __init__(
        self,
        batch: Sequence[Record],
        getter: Callable[[Record], tuple[Any, ...]],
        width: int,
    ) -> None:
        self._batch = batch
        self._getter = getter
        self._width = width
        self._start = 0
        self._part_len = 0
        self._part: Iterator[Record] = iter(())

    def __iter__(self) -> Iterator[tuple[Any, ...]]:
        self._start, self._part_len, self._part = 0, 0, iter(())
        return itertools.chain.from_iterable(map(self._chunk, range(0, len(self._batch), _CHUNK)))

    def _chunk(self, start: int) -> Iterator[tuple[Any, ...]]:
        part = self._batch[start : start + _CHUNK]
        if sum(map(len, part)) != self._width * len(part):
            raise _ShapeMismatchError
        self._start, self._part_len = start, len(part)
        self._part = iter(part)
        return map(self._getter, self._part)

    def position(self) -> int:
        """The batch index of the record handed to the driver last (the driver encodes
        each record as soon as it takes it)."""
        return self._start + self._part_len - operator.length_hint(self._part) - 1


async def _atomically(c: Connection, call: Callable[[], Awaitable[None]]) -> None:
    """``call()`` in a transaction (a SAVEPOINT when one is open on ``c``)."""
    tx = c.transaction()
    await tx.start()
    try:
        await call()
    except Exception:
        try:
            await tx.rollback()
        except Exception:
            close_now(c)  # the server rolls back when the connection goes
        raise
    await tx.commit()


def _first_mismatch(
    batch: Sequence[Record], columns: Sequence[str], pk: Sequence[str]
) -> RecordError | None:
    for index, record in enumerate(batch):
        if len(record) != len(columns) or not all(c in record for c in columns):
            return _mismatch(index, record, columns, pk)
    return None


def _mismatch(index: int, record: Record, columns: Sequence[str], pk: Sequence[str]) -> RecordError:
    return RecordError(
        index=index,
        message=(
            f"record has fields {sorted(record.keys())}; every record of a batch needs "
            f"the first record's fields {sorted(columns)}"
        ),
        code=InvalidRequestError.code,
        key=key_of(record, pk),
    )
