"""Bulk API 2.0: job models, typed result rows, CSV in and out (rows parsed as they
stream in), and the bounded poll that waits for a job."""

from __future__ import annotations

import asyncio
import csv
import io
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable, Mapping
from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal
from typing import Any, Literal

from pydantic import Field

from connector_adapters.salesforce._models import SalesforceModel
from connector_core import ConnectorTimeoutError, InvalidRequestError

IngestOperation = Literal["insert", "update", "upsert", "delete", "hardDelete"]
INGEST_OPERATIONS: frozenset[str] = frozenset(
    {"insert", "update", "upsert", "delete", "hardDelete"}
)
FINAL_STATES = frozenset({"JobComplete", "Failed", "Aborted"})
"""Bulk job states after which nothing changes."""
NULL = "#N/A"
"""What a Bulk CSV holds for "set this field to null" (an empty value leaves it as is)."""


class BulkJob(SalesforceModel):
    """A Bulk API 2.0 job (ingest or query) as Salesforce describes it."""

    id: str
    state: str
    object: str | None = None
    operation: str | None = None
    external_id_field_name: str | None = Field(None, alias="externalIdFieldName")
    number_records_processed: int = Field(0, alias="numberRecordsProcessed")
    number_records_failed: int = Field(0, alias="numberRecordsFailed")
    error_message: str | None = Field(None, alias="errorMessage")
    job_type: str | None = Field(None, alias="jobType")

    @property
    def done(self) -> bool:
        """JobComplete, Failed or Aborted: the job will not change any more."""
        return self.state in FINAL_STATES


@dataclass(frozen=True, slots=True)
class BulkSuccess:
    """A row of ``successfulResults``: the record's id, whether it was created, and the
    row as uploaded."""

    id: str
    created: bool
    fields: dict[str, str]


@dataclass(frozen=True, slots=True)
class BulkFailure:
    """A row of ``failedResults``: Salesforce's error (``CODE:message``) and the row as
    uploaded (``id`` is empty for a record that was never created)."""

    id: str
    error: str
    fields: dict[str, str]

    @property
    def error_code(self) -> str:
        """The status code at the start of ``error`` (``REQUIRED_FIELD_MISSING``)."""
        return self.error.split(":", 1)[0]


@dataclass(frozen=True, slots=True)
class BulkUnprocessed:
    """A row of ``unprocessedrecords``: uploaded, never processed (the job was aborted
    or failed first)."""

    fields: dict[str, str]


def _cell(value: Any) -> str:
    if value is None:
        return NULL
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, datetime | date):
        return value.isoformat()
    if isinstance(value, Decimal):
        return format(value, "f")
    return str(value)


def to_csv(records: Iterable[Mapping[str, Any]]) -> str:
    """Records as Bulk API CSV: a header of every field (in first-seen order), then one
    line per record (a missing field is empty: left as is; None is ``#N/A``: null).
    InvalidRequestError for no records."""
    rows = [dict(r) for r in records]
    if not rows:
        raise InvalidRequestError("a bulk ingest job needs at least one record")
    columns = list(dict.fromkeys(k for row in rows for k in row))
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(columns)
    for row in rows:
        writer.writerow([_cell(row[c]) if c in row else "" for c in columns])
    return out.getvalue()


async def csv_rows(lines: AsyncIterator[str]) -> AsyncIterator[list[str]]:
    """The CSV rows of a stream of lines, one at a time (a quoted value may hold line
    breaks: a row ends where the count of quotes is even)."""
    pending: list[str] = []
    quotes = 0
    async for line in lines:
        pending.append(line)
        quotes += line.count('"')
        if quotes % 2:
            continue
        text = "\n".join(pending)
        pending.clear()
        quotes = 0
        if text:
            yield next(csv.reader([text]))
    if pending:
        yield next(csv.reader(["\n".join(pending)]))


async def csv_dicts(lines: AsyncIterator[str]) -> AsyncIterator[dict[str, str]]:
    """The rows of a CSV stream as dicts keyed by its header."""
    header: list[str] | None = None
    async for row in csv_rows(lines):
        if header is None:
            header = row
            continue
        yield dict(zip(header, row, strict=False))


def success_row(row: Mapping[str, str]) -> BulkSuccess:
    fields = {k: v for k, v in row.items() if not k.startswith("sf__")}
    created = row.get("sf__Created", "").lower() == "true"
    return BulkSuccess(id=row.get("sf__Id", ""), created=created, fields=fields)


def failure_row(row: Mapping[str, str]) -> BulkFailure:
    fields = {k: v for k, v in row.items() if not k.startswith("sf__")}
    return BulkFailure(id=row.get("sf__Id", ""), error=row.get("sf__Error", ""), fields=fields)


def unprocessed_row(row: Mapping[str, str]) -> BulkUnprocessed:
    return BulkUnprocessed(fields=dict(row))


def check_operation(operation: str, external_id_field: str | None) -> str:
    if operation not in INGEST_OPERATIONS:
        known = ", ".join(sorted(INGEST_OPERATIONS))
        raise InvalidRequestError(
            f"unknown bulk ingest operation {operation!r}; known: {known}",
            connector="salesforce",
        )
    if (operation == "upsert") != (external_id_field is not None):
        raise InvalidRequestError(
            "an upsert job names its external_id_field (and only an upsert does)",
            connector="salesforce",
        )
    return operation


async def poll_job(
    fetch: Callable[[], Awaitable[BulkJob]],
    *,
    timeout: float,
    initial_delay: float,
    max_delay: float,
    sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
) -> BulkJob:
    """``fetch()`` until the job is done, waiting ``initial_delay``, then twice as long
    each time up to ``max_delay``, never past ``timeout`` seconds in all. Raises
    ConnectorTimeoutError naming the job and its last state when the time is up (the
    job goes on in Salesforce: wait again, or abort it)."""
    if not (timeout > 0 and initial_delay > 0 and max_delay >= initial_delay):
        raise InvalidRequestError(
            "poll timeout and delays must be positive (max_delay >= initial_delay)",
            connector="salesforce",
        )
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    delay = initial_delay
    while True:
        job = await fetch()
        if job.done:
            return job
        left = deadline - loop.time()
        if left <= 0:
            raise ConnectorTimeoutError(
                f"Salesforce bulk job {job.id} is still {job.state} after {timeout}s; it goes "
                "on in Salesforce: wait_for_job() again, or abort_job()",
                connector="salesforce",
                details={"job_id": job.id, "state": job.state, "timeout": timeout},
            )
        await sleep(min(delay, left))
        delay = min(delay * 2, max_delay)


def csv_of(data: str | bytes | Iterable[Mapping[str, Any]]) -> str:
    if isinstance(data, bytes):
        return data.decode("utf-8")
    if isinstance(data, str):
        return data
    return to_csv(data)


def finished_job(job: BulkJob) -> BulkJob:
    """``job`` when it completed; a ConnectorError saying why when it failed or was
    aborted."""
    if job.state == "JobComplete":
        return job
    raise InvalidRequestError(
        f"Salesforce bulk job {job.id} ended {job.state}: {job.error_message or 'no reason given'}"
        "; its unprocessed_records() say what was not done",
        connector="salesforce",
        details={"job_id": job.id, "state": job.state, "errorMessage": job.error_message},
    )
