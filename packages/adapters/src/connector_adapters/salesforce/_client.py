"""The one Salesforce client interface; managed (HTTP) and mock clients implement it."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterable, Mapping, Sequence
from datetime import datetime
from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable

from connector_adapters.salesforce._checks import (
    check_fields,
    check_record_id,
    check_sobject,
    check_window,
    jsonable,
    new_correlation_id,
)
from connector_adapters.salesforce._models import (
    ApiUsage,
    DeletedResult,
    DescribeGlobal,
    Limit,
    SalesforceRecord,
    SaveResult,
    SObjectDescribe,
    UpdatedResult,
    UpsertResult,
)
from connector_core import Catalog, CheckResult

if TYPE_CHECKING:
    from connector_adapters.salesforce._bulk import (
        BulkFailure,
        BulkJob,
        BulkSuccess,
        BulkUnprocessed,
    )
    from connector_adapters.salesforce._composite import (
        CollectionWriteResult,
        CompositeRequest,
        CompositeResult,
        CompositeSubrequest,
    )

QUERY_BATCH_SIZE = 2000
"""Salesforce's largest query batch: more records come through ``nextRecordsUrl``."""


@runtime_checkable
class SalesforceClient(Protocol):
    """Salesforce's REST API for one org.

    Every operation takes a keyword-only ``correlation_id`` (one is generated when
    omitted); the managed client sends it as a header. Reads of a missing record return
    None, and update/delete of one False, in both implementations.

    Raises (managed): AuthenticationError (login refused, or a token the REST API does
    not accept), PermissionDeniedError, RateLimitedError (REQUEST_LIMIT_EXCEEDED: not
    retried), QueryError (MALFORMED_QUERY, INVALID_FIELD, ...), InvalidRequestError
    (bad input, before any request when the client can tell), ConflictError
    (duplicates; an upsert matching several records), NotFoundError (an unknown
    sObject type), ServiceUnavailableError, ConnectorTimeoutError, SerializationError.
    Each keeps Salesforce's ``errorCode`` and ``fields`` in ``details``.
    """

    async def connect(self) -> None:
        """Log in (the managed client mints a token); nothing for the mock."""
        ...

    async def disconnect(self) -> None:
        """Close what connect opened (idempotent; never raises connector errors)."""
        ...

    async def check(self) -> CheckResult:
        """Connect, make one real call, report; never raises."""
        ...

    async def ping(self) -> float:
        """One real round trip (``/limits``); seconds."""
        ...

    @property
    def is_connected(self) -> bool: ...

    @property
    def api_usage(self) -> ApiUsage | None:
        """The org's daily API usage from the last ``Sforce-Limit-Info`` seen."""
        ...

    # queries
    def query(
        self, soql: str, *, correlation_id: str | None = None
    ) -> AsyncIterator[SalesforceRecord]:
        """Every record of ``soql``, batch after batch (``nextRecordsUrl``) until done."""
        ...

    def query_all(
        self, soql: str, *, correlation_id: str | None = None
    ) -> AsyncIterator[SalesforceRecord]:
        """As :meth:`query`, deleted and archived records included (``IsDeleted``)."""
        ...

    async def count(self, soql: str, *, correlation_id: str | None = None) -> int:
        """The query's ``totalSize`` (``SELECT COUNT() FROM ...`` for a plain count)."""
        ...

    # sObjects
    async def get(
        self,
        sobject: str,
        record_id: str,
        *,
        fields: Sequence[str] | None = None,
        correlation_id: str | None = None,
    ) -> SalesforceRecord | None: ...

    async def create(
        self, sobject: str, fields: Mapping[str, Any], *, correlation_id: str | None = None
    ) -> SaveResult: ...

    async def update(
        self,
        sobject: str,
        record_id: str,
        fields: Mapping[str, Any],
        *,
        correlation_id: str | None = None,
    ) -> bool: ...

    async def delete(
        self, sobject: str, record_id: str, *, correlation_id: str | None = None
    ) -> bool: ...

    async def upsert(
        self,
        sobject: str,
        external_id_field: str,
        external_id: str,
        fields: Mapping[str, Any],
        *,
        correlation_id: str | None = None,
    ) -> UpsertResult:
        """Create or update the record whose ``external_id_field`` is ``external_id``;
        ConflictError listing the matches when several records have it."""
        ...

    async def get_updated(
        self,
        sobject: str,
        start: datetime,
        end: datetime,
        *,
        correlation_id: str | None = None,
    ) -> UpdatedResult:
        """Ids of records changed in [start, end] (Salesforce ignores the seconds)."""
        ...

    async def get_deleted(
        self,
        sobject: str,
        start: datetime,
        end: datetime,
        *,
        correlation_id: str | None = None,
    ) -> DeletedResult:
        """Records deleted in [start, end] (Salesforce ignores the seconds)."""
        ...

    # metadata
    async def describe_global(self, *, correlation_id: str | None = None) -> DescribeGlobal: ...

    async def describe(self, sobject: str, *, correlation_id: str | None = None) -> SObjectDescribe:
        """The object's fields; NotFoundError for an unknown object type."""
        ...

    async def discover(
        self, sobjects: Sequence[str] | None = None, *, correlation_id: str | None = None
    ) -> Catalog:
        """A Stream per sObject (the queryable ones of describe global when None)."""
        ...

    async def limits(self, *, correlation_id: str | None = None) -> dict[str, Limit]: ...

    # composite and sObject collections
    async def composite(
        self,
        requests: CompositeRequest | Sequence[CompositeSubrequest],
        *,
        all_or_none: bool = False,
        correlation_id: str | None = None,
    ) -> CompositeResult:
        """Up to 25 subrequests in one call, in order, ``@{ref.field}`` references
        resolved by Salesforce; each answer typed in the result (``result[ref]``). With
        ``all_or_none`` one failure rolls back all (the others answer
        PROCESSING_HALTED). InvalidRequestError for more than 25 subrequests."""
        ...

    async def create_records(
        self,
        sobject: str,
        records: Sequence[Mapping[str, Any]],
        *,
        all_or_none: bool = False,
        correlation_id: str | None = None,
    ) -> CollectionWriteResult:
        """Create ``records`` 200 a call (``/composite/sobjects``); the result's errors
        carry each failing record's index in ``records``, ``ids`` the new ids."""
        ...

    async def update_records(
        self,
        sobject: str,
        records: Sequence[Mapping[str, Any]],
        *,
        all_or_none: bool = False,
        correlation_id: str | None = None,
    ) -> CollectionWriteResult:
        """Update ``records`` (each names its ``Id``) 200 a call."""
        ...

    async def upsert_records(
        self,
        sobject: str,
        external_id_field: str,
        records: Sequence[Mapping[str, Any]],
        *,
        all_or_none: bool = False,
        correlation_id: str | None = None,
    ) -> CollectionWriteResult:
        """Upsert ``records`` by ``external_id_field`` 200 a call (``created`` says which
        are new)."""
        ...

    async def delete_records(
        self,
        sobject: str,
        record_ids: Sequence[str],
        *,
        all_or_none: bool = False,
        correlation_id: str | None = None,
    ) -> CollectionWriteResult:
        """Delete records by id 200 a call (a missing one fails alone: ENTITY_IS_DELETED)."""
        ...

    # Bulk API 2.0 (``query=True`` names a query job where both kinds are possible)
    async def create_ingest_job(
        self,
        sobject: str,
        operation: str,
        *,
        external_id_field: str | None = None,
        correlation_id: str | None = None,
    ) -> BulkJob:
        """A new Open ingest job (insert, update, upsert with its external id field,
        delete, hardDelete)."""
        ...

    async def upload_job_data(
        self,
        job_id: str,
        data: str | bytes | Iterable[Mapping[str, Any]],
        *,
        correlation_id: str | None = None,
    ) -> None:
        """Upload the job's CSV (records are made CSV: None is ``#N/A``, null)."""
        ...

    async def close_job(self, job_id: str, *, correlation_id: str | None = None) -> BulkJob:
        """``state=UploadComplete``: Salesforce starts processing."""
        ...

    async def abort_job(
        self, job_id: str, *, query: bool = False, correlation_id: str | None = None
    ) -> BulkJob: ...

    async def get_job(
        self, job_id: str, *, query: bool = False, correlation_id: str | None = None
    ) -> BulkJob: ...

    async def delete_job(
        self, job_id: str, *, query: bool = False, correlation_id: str | None = None
    ) -> None: ...

    async def wait_for_job(
        self,
        job_id: str,
        *,
        query: bool = False,
        timeout: float = 600.0,
        initial_delay: float = 0.5,
        max_delay: float = 10.0,
        correlation_id: str | None = None,
    ) -> BulkJob:
        """Poll with doubling delays until the job is done; ConnectorTimeoutError past
        ``timeout`` seconds."""
        ...

    def successful_results(
        self, job_id: str, *, correlation_id: str | None = None
    ) -> AsyncIterator[BulkSuccess]: ...

    def failed_results(
        self, job_id: str, *, correlation_id: str | None = None
    ) -> AsyncIterator[BulkFailure]: ...

    def unprocessed_records(
        self, job_id: str, *, correlation_id: str | None = None
    ) -> AsyncIterator[BulkUnprocessed]: ...

    async def bulk_ingest(
        self,
        sobject: str,
        operation: str,
        data: str | bytes | Iterable[Mapping[str, Any]],
        *,
        external_id_field: str | None = None,
        timeout: float = 600.0,
        correlation_id: str | None = None,
    ) -> BulkJob:
        """Create, upload, close and wait: the finished job. InvalidRequestError when it
        ends Failed or Aborted."""
        ...

    async def create_query_job(
        self, soql: str, *, include_deleted: bool = False, correlation_id: str | None = None
    ) -> BulkJob: ...

    def query_job_results(
        self,
        job_id: str,
        *,
        max_records: int | None = None,
        correlation_id: str | None = None,
    ) -> AsyncIterator[dict[str, str]]:
        """A completed query job's rows, page after page by ``Sforce-Locator``."""
        ...

    def bulk_query(
        self,
        soql: str,
        *,
        include_deleted: bool = False,
        max_records: int | None = None,
        timeout: float = 600.0,
        correlation_id: str | None = None,
    ) -> AsyncIterator[dict[str, str]]:
        """Run a query job, wait, and stream its rows in constant memory."""
        ...


__all__ = [
    "QUERY_BATCH_SIZE",
    "SalesforceClient",
    "check_fields",
    "check_record_id",
    "check_sobject",
    "check_window",
    "jsonable",
    "new_correlation_id",
]
