"""MockSalesforce: the Salesforce client in memory, for offline and self-hosted use."""

from __future__ import annotations

import copy
import csv
import io
import re
import threading
from collections.abc import AsyncIterator, Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from importlib.metadata import PackageNotFoundError, version
from typing import Any, ClassVar, Self
from urllib.parse import parse_qs, unquote, urlsplit

from connector_adapters.salesforce._bulk import (
    NULL,
    BulkFailure,
    BulkJob,
    BulkSuccess,
    BulkUnprocessed,
    check_operation,
    csv_dicts,
    csv_of,
    failure_row,
    finished_job,
    poll_job,
    success_row,
    unprocessed_row,
)
from connector_adapters.salesforce._catalog import catalog_of
from connector_adapters.salesforce._client import (
    check_fields,
    check_record_id,
    check_sobject,
    check_window,
    jsonable,
    new_correlation_id,
)
from connector_adapters.salesforce._composite import (
    REFERENCE,
    CollectionWriteResult,
    CompositeRequest,
    CompositeResult,
    CompositeSubrequest,
    collection_records,
    composite_subrequests,
    write_in_chunks,
)
from connector_adapters.salesforce._config import DEFAULT_API_VERSION
from connector_adapters.salesforce._errors import salesforce_error
from connector_adapters.salesforce._mock_soql import parse_soql, run_query
from connector_adapters.salesforce._models import (
    ApiUsage,
    DeletedResult,
    DescribeGlobal,
    FieldDescribe,
    Limit,
    SalesforceRecord,
    SaveResult,
    SObjectDescribe,
    SObjectSummary,
    UpdatedResult,
    UpsertResult,
)
from connector_adapters.salesforce._soql import soql_identifier
from connector_core import (
    Catalog,
    CheckResult,
    ConflictError,
    ConnectorError,
    NotFoundError,
)

try:
    _VERSION = version("connector-adapters")
except PackageNotFoundError:  # pragma: no cover
    _VERSION = "0.0.0"

DAILY_API_REQUESTS = 100_000
SYSTEM_FIELDS = ("Id", "IsDeleted", "CreatedDate", "LastModifiedDate", "SystemModstamp")
_KEY_PREFIXES = {"Account": "001", "Contact": "003", "Opportunity": "006", "Lead": "00Q"}


@dataclass
class MockBulkJob:
    """A Bulk API 2.0 job the mock holds: its info, the CSV uploaded, and its results."""

    info: dict[str, Any]
    data: list[str] = field(default_factory=list)
    successful: list[dict[str, str]] = field(default_factory=list)
    failed: list[dict[str, str]] = field(default_factory=list)
    unprocessed: list[dict[str, str]] = field(default_factory=list)
    header: list[str] = field(default_factory=list)
    rows: list[list[str]] = field(default_factory=list)


def _csv_text(header: Sequence[str], rows: Iterable[Sequence[Any]]) -> str:
    out = io.StringIO()
    writer = csv.writer(out, quoting=csv.QUOTE_ALL, lineterminator="\n")
    writer.writerow(header)
    writer.writerows(rows)
    return out.getvalue()


def _query_cell(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


async def _lines(text: str) -> AsyncIterator[str]:
    for line in text.splitlines():
        yield line


def _field(name: str, sf_type: str, **extra: Any) -> FieldDescribe:
    return FieldDescribe.model_validate({"name": name, "type": sf_type, **extra})


def _system_fields() -> list[FieldDescribe]:
    return [
        _field("Id", "id", nillable=False, idLookup=True),
        _field("IsDeleted", "boolean", nillable=False),
        _field("CreatedDate", "datetime", nillable=False),
        _field("LastModifiedDate", "datetime", nillable=False),
        _field("SystemModstamp", "datetime", nillable=False),
    ]


def standard_describes() -> list[SObjectDescribe]:
    """The objects a fresh MockSalesforce knows: Account and Contact, a few fields each."""
    account = SObjectDescribe(
        name="Account",
        label="Account",
        fields=[
            *_system_fields(),
            _field("Name", "string", nillable=False, length=255),
            _field("Industry", "picklist"),
            _field("AnnualRevenue", "currency"),
            _field("NumberOfEmployees", "int"),
            _field("External_Id__c", "string", externalId=True, idLookup=True, length=64),
        ],
    )
    contact = SObjectDescribe(
        name="Contact",
        label="Contact",
        fields=[
            *_system_fields(),
            _field("FirstName", "string"),
            _field("LastName", "string", nillable=False),
            _field("Email", "email", idLookup=True),
            _field("Birthdate", "date"),
            _field("AccountId", "reference", referenceTo=["Account"], relationshipName="Account"),
        ],
    )
    return [account, contact]


def format_datetime(value: datetime) -> str:
    """Salesforce's datetime format: ``2024-05-01T12:34:56.000+0000``."""
    utc = value.astimezone(UTC)
    return utc.strftime("%Y-%m-%dT%H:%M:%S.") + f"{utc.microsecond // 1000:03d}+0000"


def _floor_minute(value: datetime) -> datetime:
    return value.astimezone(UTC).replace(second=0, microsecond=0)


def upsert_conflict(sobject: str, field: str, matches: Sequence[str]) -> ConflictError:
    """The ConflictError of an upsert whose external id matches several records."""
    listing = ", ".join(matches)
    return ConflictError(
        f"Salesforce refused upsert: {len(matches)} {sobject} records have {field} set to "
        f"the given value (300 Multiple Choices): {listing}; make the external id unique "
        "or update by record id",
        connector="salesforce",
        details={"status": 300, "errorCode": "MULTIPLE_CHOICES", "matches": list(matches)},
    )


class MockSalesforce:
    """Salesforce in memory: records per sObject, the SOQL subset of
    :mod:`_mock_soql`, describes, updated/deleted windows and limits.

    Never raises for a missing record (get gives None, update/delete False); refuses
    what Salesforce refuses (unknown objects and fields, missing required fields, an
    external id matching several records) with the same errors. ``calls`` records
    ``(operation, correlation_id)`` of every call. ``clock`` gives the time written to
    CreatedDate/SystemModstamp (strictly increasing, a millisecond apart at least).
    """

    name: ClassVar[str] = "salesforce-mock"
    version: ClassVar[str] = _VERSION

    def __init__(
        self,
        *,
        describes: Iterable[SObjectDescribe] | None = None,
        clock: Callable[[], datetime] | None = None,
        api_version: str = DEFAULT_API_VERSION,
    ) -> None:
        self.describes: dict[str, SObjectDescribe] = {}
        for describe in describes if describes is not None else standard_describes():
            self.define(describe)
        self.records: dict[str, dict[str, dict[str, Any]]] = {n: {} for n in self.describes}
        self.deleted: dict[str, dict[str, dict[str, Any]]] = {n: {} for n in self.describes}
        self.calls: list[tuple[str, str]] = []
        self.api_version = api_version
        self._clock = clock or (lambda: datetime.now(UTC))
        self._last = datetime.min.replace(tzinfo=UTC)
        self._next_id = 0
        self._lock = threading.RLock()
        self._connected = False
        self.jobs: dict[str, MockBulkJob] = {}
        self._next_job = 0

    def __repr__(self) -> str:
        return f"MockSalesforce(objects={sorted(self.describes)})"

    # -- setup ----------------------------------------------------------------------------

    def define(self, describe: SObjectDescribe) -> None:
        """Make an sObject known (its system fields are added when missing)."""
        names = describe.field_names()
        extra = [f for f in _system_fields() if f.name not in names]
        full = describe.model_copy(update={"fields": [*extra, *describe.fields]})
        self.describes[describe.name] = full
        if hasattr(self, "records"):
            self.records.setdefault(describe.name, {})
            self.deleted.setdefault(describe.name, {})

    def seed(self, sobject: str, rows: Iterable[Mapping[str, Any]]) -> list[str]:
        """Insert ``rows`` directly (no call recorded); their new ids in order."""
        return [self.create_now(sobject, row).id or "" for row in rows]

    def now(self) -> datetime:
        with self._lock:
            now = self._clock().astimezone(UTC)
            now = now.replace(microsecond=now.microsecond // 1000 * 1000)
            if now <= self._last:
                now = self._last + timedelta(milliseconds=1)
            self._last = now
            return now

    # -- the core (the fake Salesforce server calls these too) ----------------------------

    def _describe(self, sobject: str) -> SObjectDescribe:
        for name, describe in self.describes.items():
            if name.lower() == sobject.lower():
                return describe
        raise salesforce_error(
            404,
            [{"errorCode": "NOT_FOUND", "message": "The requested resource does not exist"}],
            operation=f"describe {sobject}",
        )

    def _types(self, describe: SObjectDescribe) -> dict[str, tuple[str, str]]:
        return {f.name.lower(): (f.name, f.type) for f in describe.fields}

    def _canonical(
        self, describe: SObjectDescribe, fields: Mapping[str, Any], op: str
    ) -> dict[str, Any]:
        types = self._types(describe)
        out: dict[str, Any] = {}
        for given, value in fields.items():
            known = types.get(given.lower())
            if known is None or known[0] in SYSTEM_FIELDS:
                raise salesforce_error(
                    400,
                    [
                        {
                            "errorCode": "INVALID_FIELD",
                            "message": f"No such column '{given}' on sobject of type "
                            f"{describe.name}"
                            if known is None
                            else f"Unable to create/update fields: {given}",
                            "fields": [given],
                        }
                    ],
                    operation=f"{op} {describe.name}",
                )
            out[known[0]] = value
        return jsonable(out)

    def _new_id(self, sobject: str) -> str:
        self._next_id += 1
        prefix = _KEY_PREFIXES.get(sobject, "a0" + chr(ord("A") + len(sobject) % 26))
        return f"{prefix}5g00000{self._next_id:05d}AAA"[:18].ljust(18, "A")

    def _attributes(self, sobject: str, record_id: str) -> dict[str, str]:
        return {
            "type": sobject,
            "url": f"/services/data/v{self.api_version}/sobjects/{sobject}/{record_id}",
        }

    def record_out(
        self, sobject: str, record: Mapping[str, Any], fields: Sequence[str] | None = None
    ) -> dict[str, Any]:
        """A record as the REST API shows it: ``attributes`` then the fields."""
        out: dict[str, Any] = {"attributes": self._attributes(sobject, record["Id"])}
        if fields is None:
            out.update(record)
        else:
            out.update({f: record.get(f) for f in fields})
        return out

    def create_now(self, sobject: str, fields: Mapping[str, Any]) -> SaveResult:
        with self._lock:
            describe = self._describe(sobject)
            values = self._canonical(describe, fields, "create")
            missing = [
                f.name
                for f in describe.fields
                if not f.nillable and f.name not in SYSTEM_FIELDS and values.get(f.name) is None
            ]
            if missing:
                raise salesforce_error(
                    400,
                    [
                        {
                            "errorCode": "REQUIRED_FIELD_MISSING",
                            "message": f"Required fields are missing: [{', '.join(missing)}]",
                            "fields": missing,
                        }
                    ],
                    operation=f"create {describe.name}",
                )
            record_id = self._new_id(describe.name)
            stamp = format_datetime(self.now())
            record: dict[str, Any] = {f.name: None for f in describe.fields}
            record.update(values)
            record.update(
                Id=record_id,
                IsDeleted=False,
                CreatedDate=stamp,
                LastModifiedDate=stamp,
                SystemModstamp=stamp,
            )
            self.records[describe.name][record_id] = record
            return SaveResult(id=record_id, success=True, errors=[])

    def update_now(self, sobject: str, record_id: str, fields: Mapping[str, Any]) -> bool:
        with self._lock:
            describe = self._describe(sobject)
            values = self._canonical(describe, fields, "update")
            record = self.records[describe.name].get(record_id)
            if record is None:
                return False
            record.update(values)
            stamp = format_datetime(self.now())
            record.update(LastModifiedDate=stamp, SystemModstamp=stamp)
            return True

    def delete_now(self, sobject: str, record_id: str) -> bool:
        with self._lock:
            describe = self._describe(sobject)
            record = self.records[describe.name].pop(record_id, None)
            if record is None:
                return False
            stamp = format_datetime(self.now())
            record.update(IsDeleted=True, SystemModstamp=stamp)
            self.deleted[describe.name][record_id] = record
            return True

    def get_now(
        self, sobject: str, record_id: str, fields: Sequence[str] | None = None
    ) -> dict[str, Any] | None:
        with self._lock:
            describe = self._describe(sobject)
            canonical = None
            if fields is not None:
                types = self._types(describe)
                unknown = [f for f in fields if f.lower() not in types]
                if unknown:
                    raise salesforce_error(
                        400,
                        [
                            {
                                "errorCode": "INVALID_FIELD",
                                "message": f"No such column '{unknown[0]}' on sobject of "
                                f"type {describe.name}",
                                "fields": unknown,
                            }
                        ],
                        operation=f"get {describe.name}",
                    )
                canonical = [types[f.lower()][0] for f in fields]
            record = self.records[describe.name].get(record_id)
            return None if record is None else self.record_out(describe.name, record, canonical)

    def upsert_now(
        self, sobject: str, field: str, value: str, fields: Mapping[str, Any]
    ) -> UpsertResult:
        with self._lock:
            describe = self._describe(sobject)
            spec = next((f for f in describe.fields if f.name.lower() == field.lower()), None)
            if spec is None or not (spec.external_id or spec.name == "Id"):
                raise salesforce_error(
                    404,
                    [
                        {
                            "errorCode": "NOT_FOUND",
                            "message": "Provided external ID field does not exist or is "
                            f"not accessible: {field}",
                        }
                    ],
                    operation=f"upsert {describe.name}",
                )
            matches = [
                r["Id"] for r in self.records[describe.name].values() if r.get(spec.name) == value
            ]
            if len(matches) > 1:
                urls = [self._attributes(describe.name, m)["url"] for m in matches]
                raise upsert_conflict(describe.name, spec.name, urls)
            body = {k: v for k, v in fields.items() if k.lower() != spec.name.lower()}
            if matches:
                self.update_now(describe.name, matches[0], body)
                return UpsertResult(id=matches[0], created=False)
            created = self.create_now(describe.name, {**body, spec.name: value})
            return UpsertResult(id=created.id, created=True)

    def query_now(self, soql: str, *, include_deleted: bool) -> tuple[int, list[dict[str, Any]]]:
        """(totalSize, the records as the REST API shows them)."""
        with self._lock:
            parsed = parse_soql(soql)
            describe = self._describe(parsed.sobject)
            rows = list(self.records[describe.name].values())
            if include_deleted:
                rows += list(self.deleted[describe.name].values())
            selected = run_query(parsed, rows, self._types(describe))
            if parsed.count:
                return len(selected), []
            return len(selected), [
                {"attributes": self._attributes(describe.name, str(r.get("Id", "")))} | r
                if "Id" in r
                else {"attributes": {"type": describe.name}} | r
                for r in selected
            ]

    def updated_now(self, sobject: str, start: datetime, end: datetime) -> UpdatedResult:
        with self._lock:
            describe = self._describe(sobject)
            low, high = _floor_minute(start), _floor_minute(end)
            ids = [
                r["Id"]
                for r in self.records[describe.name].values()
                if low <= datetime.fromisoformat(r["SystemModstamp"]) <= high
            ]
            return UpdatedResult(ids=ids, latestDateCovered=high)

    def deleted_now(self, sobject: str, start: datetime, end: datetime) -> DeletedResult:
        with self._lock:
            describe = self._describe(sobject)
            low, high = _floor_minute(start), _floor_minute(end)
            found = [
                {"id": r["Id"], "deletedDate": r["SystemModstamp"]}
                for r in self.deleted[describe.name].values()
                if low <= datetime.fromisoformat(r["SystemModstamp"]) <= high
            ]
            earliest = min((d["deletedDate"] for d in found), default=None)
            return DeletedResult.model_validate(
                {
                    "deletedRecords": found,
                    "earliestDateAvailable": earliest or low.isoformat(),
                    "latestDateCovered": high.isoformat(),
                }
            )

    def describe_global_now(self) -> DescribeGlobal:
        return DescribeGlobal(
            encoding="UTF-8",
            maxBatchSize=200,
            sobjects=[
                SObjectSummary(name=d.name, label=d.label, custom=d.name.endswith("__c"))
                for d in self.describes.values()
            ],
        )

    def limits_now(self) -> dict[str, Limit]:
        used = len(self.calls)
        return {
            "DailyApiRequests": Limit.model_validate(
                {"Max": DAILY_API_REQUESTS, "Remaining": DAILY_API_REQUESTS - used}
            )
        }

    # -- composite and collections (the fake server calls these too) ----------------------

    def _snapshot(self) -> Any:
        return copy.deepcopy((self.records, self.deleted))

    def _restore(self, snapshot: Any) -> None:
        self.records, self.deleted = snapshot

    def rest_now(self, method: str, path: str, body: Any) -> tuple[int, Any]:
        """One REST call of a composite subrequest: ``path`` after the data path
        (``sobjects/Account/001...``, ``query/?q=...``) -> (status, body); Salesforce's
        error array on failure."""
        split = urlsplit(path)
        segments = [unquote(s) for s in split.path.split("/") if s]
        try:
            if segments[:1] == ["query"] and method == "GET":
                soql = parse_qs(split.query).get("q", [""])[0]
                total, records = self.query_now(soql, include_deleted=False)
                return 200, {"totalSize": total, "done": True, "records": records}
            if segments[:1] != ["sobjects"] or len(segments) < 2:
                raise _not_found()
            sobject = segments[1]
            if len(segments) == 2 and method == "POST":
                return 201, self.create_now(sobject, body or {}).model_dump(exclude={"created"})
            if len(segments) == 3 and method == "GET":
                found = self.get_now(sobject, segments[2])
                if found is None:
                    raise _not_found()
                return 200, found
            if len(segments) == 3 and method == "PATCH":
                if not self.update_now(sobject, segments[2], body or {}):
                    raise _not_found()
                return 204, None
            if len(segments) == 3 and method == "DELETE":
                if not self.delete_now(sobject, segments[2]):
                    raise _not_found("ENTITY_IS_DELETED", "entity is deleted")
                return 204, None
            if len(segments) == 4 and method == "PATCH":
                result = self.upsert_now(sobject, segments[2], segments[3], body or {})
                return (201 if result.created else 200), result.model_dump()
            raise _not_found()
        except ConnectorError as error:
            status = int(error.details.get("status", 400))
            if status == 300:
                return 300, error.details.get("matches", [])
            items = [
                {k: v for k, v in e.items() if k != "fields" or v}
                for e in error.details.get("errors", [])
            ]
            return status, items

    def composite_now(
        self, data_path: str, subrequests: Sequence[Mapping[str, Any]], all_or_none: bool
    ) -> dict[str, Any]:
        """``POST /composite``: the subrequests in order, ``@{ref.field}`` resolved from
        earlier answers; with ``all_or_none`` a failure rolls every change back (the
        others answer PROCESSING_HALTED)."""
        with self._lock:
            snapshot = self._snapshot() if all_or_none else None
            answers: dict[str, Any] = {}
            out: list[dict[str, Any]] = []
            failed = False
            for sub in subrequests:
                ref = str(sub.get("referenceId", ""))
                try:
                    url = _resolve(str(sub.get("url", "")), answers)
                    body = _resolve(sub.get("body"), answers)
                except LookupError as exc:
                    status, answer = 400, [
                        {"errorCode": "PROCESSING_HALTED", "message": f"Invalid reference "
                         f"specified. No value for {exc.args[0]} found in an earlier answer"}
                    ]  # fmt: skip
                else:
                    path = url.removeprefix(f"{data_path}/")
                    status, answer = self.rest_now(str(sub.get("method", "GET")), path, body)
                if status < 300:
                    answers[ref] = answer
                else:
                    failed = True
                out.append(
                    {"body": answer, "httpHeaders": {}, "httpStatusCode": status,
                     "referenceId": ref}
                )  # fmt: skip
                if failed and all_or_none:
                    break
            if failed and all_or_none and snapshot is not None:
                self._restore(snapshot)
                halted = [{"errorCode": "PROCESSING_HALTED", "message": "The transaction was "
                           "rolled back since another operation in the same transaction "
                           "failed."}]  # fmt: skip
                done = {o["referenceId"] for o in out if o["httpStatusCode"] >= 300}
                out = [
                    o if o["referenceId"] in done
                    else {**o, "body": halted, "httpStatusCode": 400}
                    for o in out
                ] + [
                    {"body": halted, "httpHeaders": {}, "httpStatusCode": 400,
                     "referenceId": str(s.get("referenceId", ""))}
                    for s in subrequests[len(out):]
                ]  # fmt: skip
            return {"compositeResponse": out}

    def collection_now(
        self,
        operation: str,
        items: Sequence[Any],
        *,
        all_or_none: bool,
        sobject: str | None = None,
        external_id_field: str | None = None,
    ) -> list[dict[str, Any]]:
        """``/composite/sobjects`` (create, update, upsert: records; delete: ids) ->
        Salesforce's ``[{"id", "success", "errors"[, "created"]}]``, one per item; with
        ``all_or_none`` any failure rolls back the call."""
        with self._lock:
            snapshot = self._snapshot() if all_or_none else None
            out: list[dict[str, Any]] = []
            for item in items:
                out.append(self._collection_item(operation, item, sobject, external_id_field))
            if all_or_none and snapshot is not None and not all(o["success"] for o in out):
                self._restore(snapshot)
                rolled = {"statusCode": "ALL_OR_NONE_OPERATION_ROLLED_BACK", "message":
                          "Record rolled back because not all records were valid and the "
                          "request was using AllOrNone header", "fields": []}  # fmt: skip
                out = [
                    o
                    if not o["success"]
                    else {**o, "id": None, "success": False, "errors": [rolled]}
                    for o in out
                ]
            return out

    def _collection_item(
        self, operation: str, item: Any, sobject: str | None, external_id_field: str | None
    ) -> dict[str, Any]:
        try:
            if operation == "delete":
                record_id = str(item)
                if not any(record_id in by_id for by_id in self.records.values()):
                    raise _not_found("ENTITY_IS_DELETED", "entity is deleted")
                name = next(n for n, by_id in self.records.items() if record_id in by_id)
                self.delete_now(name, record_id)
                return {"id": record_id, "success": True, "errors": []}
            fields = {k: v for k, v in dict(item).items() if k != "attributes"}
            name = sobject or str((item.get("attributes") or {}).get("type", ""))
            if operation == "create":
                return {"id": self.create_now(name, fields).id, "success": True, "errors": []}
            if operation == "update":
                record_id = str(fields.pop("Id", ""))
                if not self.update_now(name, record_id, fields):
                    raise _not_found("ENTITY_IS_DELETED", "entity is deleted")
                return {"id": record_id, "success": True, "errors": []}
            key = str(external_id_field)
            value = str(fields.get(key, ""))
            result = self.upsert_now(name, key, value, fields)
            return {"id": result.id, "success": True, "errors": [], "created": result.created}
        except ConnectorError as error:
            errors = [
                {"statusCode": e.get("errorCode", ""), "message": e.get("message", ""),
                 "fields": e.get("fields", [])}
                for e in error.details.get("errors", [])
            ] or [{"statusCode": str(error.details.get("errorCode") or "UNKNOWN_EXCEPTION"),
                   "message": error.message, "fields": []}]  # fmt: skip
            return {"id": None, "success": False, "errors": errors}

    # -- Bulk API 2.0 (the fake server calls these too) -----------------------------------

    def _job(self, kind: str, job_id: str) -> MockBulkJob:
        job = self.jobs.get(job_id)
        if job is None or job.info["jobType"] != ("V2Query" if kind == "query" else "V2Ingest"):
            raise _not_found("NOT_FOUND", f"no {kind} job {job_id}")
        return job

    def bulk_create_now(self, kind: str, body: Mapping[str, Any]) -> dict[str, Any]:
        """``POST /jobs/ingest`` or ``/jobs/query`` -> the job info. A query job runs at
        once (its results are ready: JobComplete)."""
        with self._lock:
            self._next_job += 1
            job_id = f"7505g00000{self._next_job:05d}AAA"
            stamp = format_datetime(self.now())
            info: dict[str, Any] = {
                "id": job_id, "operation": body.get("operation"), "createdDate": stamp,
                "systemModstamp": stamp, "state": "Open", "concurrencyMode": "Parallel",
                "contentType": "CSV", "apiVersion": float(self.api_version),
                "lineEnding": "LF", "columnDelimiter": "COMMA",
                "numberRecordsProcessed": 0, "numberRecordsFailed": 0,
            }  # fmt: skip
            if kind == "query":
                parsed = parse_soql(str(body.get("query", "")))
                total, records = self.query_now(
                    str(body.get("query", "")), include_deleted=body.get("operation") == "queryAll"
                )
                del total
                job = MockBulkJob({**info, "jobType": "V2Query", "object": parsed.sobject})
                job.header = list(records[0]) if records else list(parsed.fields)
                job.header = [h for h in job.header if h != "attributes"] or list(parsed.fields)
                job.rows = [[_query_cell(r.get(h)) for h in job.header] for r in records]
                job.info.update(state="JobComplete", numberRecordsProcessed=len(job.rows))
            else:
                describe = self._describe(str(body.get("object", "")))
                check_operation(str(body.get("operation")), body.get("externalIdFieldName"))
                job = MockBulkJob({
                    **info, "jobType": "V2Ingest", "object": describe.name,
                    "externalIdFieldName": body.get("externalIdFieldName"),
                })  # fmt: skip
            self.jobs[job_id] = job
            return dict(job.info)

    def bulk_upload_now(self, job_id: str, text: str) -> None:
        with self._lock:
            job = self._job("ingest", job_id)
            if job.info["state"] != "Open":
                raise salesforce_error(
                    400, [{"errorCode": "INVALIDJOBSTATE",
                           "message": f"Job is {job.info['state']}: upload to an Open job"}],
                    operation="upload_job_data",
                )  # fmt: skip
            job.data.append(text)

    def bulk_job_now(self, kind: str, job_id: str) -> dict[str, Any]:
        with self._lock:
            return dict(self._job(kind, job_id).info)

    def bulk_state_now(self, kind: str, job_id: str, state: str) -> dict[str, Any]:
        """``PATCH`` a job to UploadComplete (the mock processes it at once) or Aborted."""
        with self._lock:
            job = self._job(kind, job_id)
            if (
                job.info["state"] in ("JobComplete", "Failed", "Aborted")
                or state not in ("UploadComplete", "Aborted")
                or (state == "UploadComplete" and kind == "query")
            ):
                raise salesforce_error(
                    400, [{"errorCode": "INVALIDJOBSTATE",
                           "message": f"Job is {job.info['state']}: cannot move to {state}"}],
                    operation="close_job",
                )  # fmt: skip
            rows = self._uploaded(job)
            if state == "Aborted":
                job.unprocessed = rows
                job.info["state"] = "Aborted"
            else:
                self._process(job, rows)
            return dict(job.info)

    def _uploaded(self, job: MockBulkJob) -> list[dict[str, str]]:
        rows: list[dict[str, str]] = []
        for text in job.data:
            rows.extend(csv.DictReader(io.StringIO(text)))
        return rows

    def _process(self, job: MockBulkJob, rows: list[dict[str, str]]) -> None:
        operation, sobject = job.info["operation"], job.info["object"]
        key = str(job.info.get("externalIdFieldName") or "")
        known = {f.name.lower() for f in self._describe(sobject).fields}
        unknown = [c for c in dict.fromkeys(c for r in rows for c in r) if c.lower() not in known]
        if unknown:  # Salesforce fails the whole job on a header it cannot map
            job.unprocessed = rows
            job.info.update(
                state="Failed",
                errorMessage=f"InvalidBatch : Field name not found : {unknown[0]}",
            )
            return
        for row in rows:
            values = {k: (None if v == NULL else v) for k, v in row.items() if v != ""}
            try:
                if operation == "insert":
                    record_id, created = self.create_now(sobject, values).id or "", True
                elif operation == "upsert":
                    result = self.upsert_now(sobject, key, str(values.get(key, "")), values)
                    record_id, created = result.id or "", result.created
                else:
                    record_id, created = str(values.pop("Id", "")), False
                    done = (
                        self.update_now(sobject, record_id, values)
                        if operation == "update"
                        else self.delete_now(sobject, record_id)
                    )
                    if not done:
                        raise _not_found("ENTITY_IS_DELETED", "entity is deleted")
            except ConnectorError as error:
                items = error.details.get("errors") or [{"errorCode": "UNKNOWN_EXCEPTION",
                                                         "message": error.message}]  # fmt: skip
                first = items[0]
                reason = f"{first.get('errorCode')}:{first.get('message')}"
                if first.get("fields"):
                    reason += f":{','.join(first['fields'])} --"
                job.failed.append({"sf__Id": "", "sf__Error": reason, **row})
            else:
                job.successful.append(
                    {"sf__Id": record_id, "sf__Created": "true" if created else "false", **row}
                )
        job.info.update(
            state="JobComplete",
            numberRecordsProcessed=len(rows),
            numberRecordsFailed=len(job.failed),
        )

    def bulk_results_now(self, job_id: str, which: str) -> str:
        """``successfulResults``, ``failedResults`` or ``unprocessedrecords`` as CSV."""
        with self._lock:
            job = self._job("ingest", job_id)
            if which == "unprocessedrecords":
                rows = job.unprocessed
                header = list(rows[0]) if rows else []
            else:
                rows = job.successful if which == "successfulResults" else job.failed
                extra = ["sf__Id", "sf__Created"] if which == "successfulResults" else [
                    "sf__Id", "sf__Error"]  # fmt: skip
                header = list(rows[0]) if rows else extra
            return _csv_text(header, ([r.get(h, "") for h in header] for r in rows))

    def bulk_query_page_now(
        self, job_id: str, locator: str | None, max_records: int | None
    ) -> tuple[str, str | None, int]:
        """One page of a query job's results: (CSV, the next page's locator or None,
        the number of records in this page)."""
        with self._lock:
            job = self._job("query", job_id)
            if job.info["state"] != "JobComplete":
                raise salesforce_error(400, [{"errorCode": "INVALIDJOBSTATE",
                                              "message": "the job is not complete"}],
                                       operation="query_job_results")  # fmt: skip
            start = 0
            if locator:
                if not re.fullmatch(r"L\d+", locator):
                    raise salesforce_error(400, [{"errorCode": "INVALID_QUERY_LOCATOR",
                                                  "message": "invalid locator"}],
                                           operation="query_job_results")  # fmt: skip
                start = int(locator[1:])
            size = max_records or len(job.rows) or 1
            page = job.rows[start : start + size]
            following = start + size
            next_locator = f"L{following:08d}" if following < len(job.rows) else None
            return _csv_text(job.header, page), next_locator, len(page)

    def bulk_delete_now(self, kind: str, job_id: str) -> None:
        with self._lock:
            self._job(kind, job_id)
            del self.jobs[job_id]

    # -- the client -----------------------------------------------------------------------

    def _call(self, operation: str, correlation_id: str | None) -> str:
        cid = new_correlation_id(correlation_id)
        self.calls.append((operation, cid))
        return cid

    async def connect(self) -> None:
        self._connected = True

    async def disconnect(self) -> None:
        self._connected = False

    @property
    def is_connected(self) -> bool:
        return self._connected

    async def ping(self) -> float:
        return 0.0

    async def check(self) -> CheckResult:
        return CheckResult(ok=True, connector=self.name, latency=0.0)

    async def __aenter__(self) -> Self:
        await self.connect()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.disconnect()

    @property
    def api_usage(self) -> ApiUsage | None:
        return ApiUsage(used=len(self.calls), limit=DAILY_API_REQUESTS)

    async def _records(
        self, soql: str, include_deleted: bool, operation: str, correlation_id: str | None
    ) -> AsyncIterator[SalesforceRecord]:
        self._call(operation, correlation_id)
        _, records = self.query_now(soql, include_deleted=include_deleted)
        for record in records:
            yield SalesforceRecord.model_validate(record)

    def query(
        self, soql: str, *, correlation_id: str | None = None
    ) -> AsyncIterator[SalesforceRecord]:
        return self._records(soql, False, "query", correlation_id)

    def query_all(
        self, soql: str, *, correlation_id: str | None = None
    ) -> AsyncIterator[SalesforceRecord]:
        return self._records(soql, True, "query_all", correlation_id)

    async def count(self, soql: str, *, correlation_id: str | None = None) -> int:
        self._call("count", correlation_id)
        return self.query_now(soql, include_deleted=False)[0]

    async def get(
        self,
        sobject: str,
        record_id: str,
        *,
        fields: Sequence[str] | None = None,
        correlation_id: str | None = None,
    ) -> SalesforceRecord | None:
        self._call("get", correlation_id)
        check_sobject(sobject)
        check_record_id(record_id)
        if fields is not None:
            check_fields(dict.fromkeys(fields))
        try:
            found = self.get_now(sobject, record_id, list(fields) if fields is not None else None)
        except NotFoundError:  # an unknown object type: Salesforce answers the same 404
            return None
        return None if found is None else SalesforceRecord.model_validate(found)

    async def create(
        self, sobject: str, fields: Mapping[str, Any], *, correlation_id: str | None = None
    ) -> SaveResult:
        self._call("create", correlation_id)
        return self.create_now(check_sobject(sobject), check_fields(fields))

    async def update(
        self,
        sobject: str,
        record_id: str,
        fields: Mapping[str, Any],
        *,
        correlation_id: str | None = None,
    ) -> bool:
        self._call("update", correlation_id)
        try:
            return self.update_now(
                check_sobject(sobject), check_record_id(record_id), check_fields(fields)
            )
        except NotFoundError:
            return False

    async def delete(
        self, sobject: str, record_id: str, *, correlation_id: str | None = None
    ) -> bool:
        self._call("delete", correlation_id)
        try:
            return self.delete_now(check_sobject(sobject), check_record_id(record_id))
        except NotFoundError:
            return False

    async def upsert(
        self,
        sobject: str,
        external_id_field: str,
        external_id: str,
        fields: Mapping[str, Any],
        *,
        correlation_id: str | None = None,
    ) -> UpsertResult:
        self._call("upsert", correlation_id)
        check_fields({external_id_field: None})
        return self.upsert_now(
            check_sobject(sobject), external_id_field, str(external_id), check_fields(fields)
        )

    async def get_updated(
        self,
        sobject: str,
        start: datetime,
        end: datetime,
        *,
        correlation_id: str | None = None,
    ) -> UpdatedResult:
        self._call("get_updated", correlation_id)
        return self.updated_now(check_sobject(sobject), *check_window(start, end))

    async def get_deleted(
        self,
        sobject: str,
        start: datetime,
        end: datetime,
        *,
        correlation_id: str | None = None,
    ) -> DeletedResult:
        self._call("get_deleted", correlation_id)
        return self.deleted_now(check_sobject(sobject), *check_window(start, end))

    async def describe_global(self, *, correlation_id: str | None = None) -> DescribeGlobal:
        self._call("describe_global", correlation_id)
        return self.describe_global_now()

    async def describe(self, sobject: str, *, correlation_id: str | None = None) -> SObjectDescribe:
        self._call("describe", correlation_id)
        try:
            return self._describe(check_sobject(sobject))
        except NotFoundError as exc:
            known = ", ".join(sorted(self.describes))
            raise NotFoundError(
                f"{exc.message}; the mock knows: {known} (MockSalesforce.define adds more)",
                connector="salesforce",
                details=exc.details,
            ) from None

    async def discover(
        self, sobjects: Sequence[str] | None = None, *, correlation_id: str | None = None
    ) -> Catalog:
        cid = self._call("discover", correlation_id)
        names = sobjects or [s.name for s in self.describe_global_now().sobjects if s.queryable]
        return catalog_of([await self.describe(n, correlation_id=cid) for n in names])

    async def limits(self, *, correlation_id: str | None = None) -> dict[str, Limit]:
        self._call("limits", correlation_id)
        return self.limits_now()

    # -- composite and collections --------------------------------------------------------

    async def composite(
        self,
        requests: CompositeRequest | Sequence[CompositeSubrequest],
        *,
        all_or_none: bool = False,
        correlation_id: str | None = None,
    ) -> CompositeResult:
        checked = composite_subrequests(requests)  # refused before it counts as a call
        self._call("composite", correlation_id)
        data_path = f"/services/data/v{self.api_version}"
        subrequests = [s.to_json(data_path) for s in checked]
        body = self.composite_now(data_path, subrequests, bool(all_or_none))
        return CompositeResult.model_validate(body)

    async def _collection(
        self,
        operation: str,
        items: Sequence[Any],
        keys: Sequence[Any],
        all_or_none: bool,
        correlation_id: str | None,
        **where: Any,
    ) -> CollectionWriteResult:
        async def send(chunk: list[Any]) -> list[dict[str, Any]]:
            self._call(f"{operation}_records", correlation_id)
            return self.collection_now(operation, chunk, all_or_none=all_or_none, **where)

        return await write_in_chunks(items, send, keys=keys, all_or_none=all_or_none)

    async def create_records(
        self,
        sobject: str,
        records: Sequence[Mapping[str, Any]],
        *,
        all_or_none: bool = False,
        correlation_id: str | None = None,
    ) -> CollectionWriteResult:
        items = collection_records(sobject, records, need_id=False)
        return await self._collection(
            "create", items, [None] * len(items), all_or_none, correlation_id
        )

    async def update_records(
        self,
        sobject: str,
        records: Sequence[Mapping[str, Any]],
        *,
        all_or_none: bool = False,
        correlation_id: str | None = None,
    ) -> CollectionWriteResult:
        items = collection_records(sobject, records, need_id=True)
        keys = [r["Id"] for r in items]
        return await self._collection("update", items, keys, all_or_none, correlation_id)

    async def upsert_records(
        self,
        sobject: str,
        external_id_field: str,
        records: Sequence[Mapping[str, Any]],
        *,
        all_or_none: bool = False,
        correlation_id: str | None = None,
    ) -> CollectionWriteResult:
        key = soql_identifier(external_id_field)
        items = collection_records(sobject, records, need_id=False)
        keys = [r.get(key) for r in items]
        return await self._collection(
            "upsert", items, keys, all_or_none, correlation_id,
            sobject=check_sobject(sobject), external_id_field=key,
        )  # fmt: skip

    async def delete_records(
        self,
        sobject: str,
        record_ids: Sequence[str],
        *,
        all_or_none: bool = False,
        correlation_id: str | None = None,
    ) -> CollectionWriteResult:
        check_sobject(sobject)
        ids = [check_record_id(i) for i in record_ids]
        return await self._collection("delete", ids, ids, all_or_none, correlation_id)

    # -- Bulk API 2.0 ---------------------------------------------------------------------

    async def create_ingest_job(
        self,
        sobject: str,
        operation: str,
        *,
        external_id_field: str | None = None,
        correlation_id: str | None = None,
    ) -> BulkJob:
        check_operation(operation, external_id_field)
        self._call("create_ingest_job", correlation_id)
        body: dict[str, Any] = {"object": check_sobject(sobject), "operation": operation}
        if external_id_field is not None:
            body["externalIdFieldName"] = soql_identifier(external_id_field)
        return BulkJob.model_validate(self.bulk_create_now("ingest", body))

    async def upload_job_data(
        self,
        job_id: str,
        data: str | bytes | Iterable[Mapping[str, Any]],
        *,
        correlation_id: str | None = None,
    ) -> None:
        self._call("upload_job_data", correlation_id)
        self.bulk_upload_now(check_record_id(job_id), csv_of(data))

    async def close_job(self, job_id: str, *, correlation_id: str | None = None) -> BulkJob:
        self._call("close_job", correlation_id)
        info = self.bulk_state_now("ingest", check_record_id(job_id), "UploadComplete")
        return BulkJob.model_validate(info)

    async def abort_job(
        self, job_id: str, *, query: bool = False, correlation_id: str | None = None
    ) -> BulkJob:
        self._call("abort_job", correlation_id)
        kind = "query" if query else "ingest"
        return BulkJob.model_validate(self.bulk_state_now(kind, check_record_id(job_id), "Aborted"))

    async def get_job(
        self, job_id: str, *, query: bool = False, correlation_id: str | None = None
    ) -> BulkJob:
        self._call("get_job", correlation_id)
        kind = "query" if query else "ingest"
        return BulkJob.model_validate(self.bulk_job_now(kind, check_record_id(job_id)))

    async def delete_job(
        self, job_id: str, *, query: bool = False, correlation_id: str | None = None
    ) -> None:
        self._call("delete_job", correlation_id)
        self.bulk_delete_now("query" if query else "ingest", check_record_id(job_id))

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
        cid = new_correlation_id(correlation_id)
        return await poll_job(
            lambda: self.get_job(job_id, query=query, correlation_id=cid),
            timeout=timeout, initial_delay=initial_delay, max_delay=max_delay,
        )  # fmt: skip

    async def _results(self, job_id: str, which: str, correlation_id: str | None) -> Any:
        self._call(which, correlation_id)
        text = self.bulk_results_now(check_record_id(job_id), which)
        async for row in csv_dicts(_lines(text)):
            yield row

    async def successful_results(
        self, job_id: str, *, correlation_id: str | None = None
    ) -> AsyncIterator[BulkSuccess]:
        async for row in self._results(job_id, "successfulResults", correlation_id):
            yield success_row(row)

    async def failed_results(
        self, job_id: str, *, correlation_id: str | None = None
    ) -> AsyncIterator[BulkFailure]:
        async for row in self._results(job_id, "failedResults", correlation_id):
            yield failure_row(row)

    async def unprocessed_records(
        self, job_id: str, *, correlation_id: str | None = None
    ) -> AsyncIterator[BulkUnprocessed]:
        async for row in self._results(job_id, "unprocessedrecords", correlation_id):
            yield unprocessed_row(row)

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
        cid = new_correlation_id(correlation_id)
        job = await self.create_ingest_job(
            sobject, operation, external_id_field=external_id_field, correlation_id=cid
        )
        await self.upload_job_data(job.id, data, correlation_id=cid)
        await self.close_job(job.id, correlation_id=cid)
        return finished_job(await self.wait_for_job(job.id, timeout=timeout, correlation_id=cid))

    async def create_query_job(
        self, soql: str, *, include_deleted: bool = False, correlation_id: str | None = None
    ) -> BulkJob:
        self._call("create_query_job", correlation_id)
        body = {"operation": "queryAll" if include_deleted else "query", "query": soql}
        return BulkJob.model_validate(self.bulk_create_now("query", body))

    async def query_job_results(
        self,
        job_id: str,
        *,
        max_records: int | None = None,
        correlation_id: str | None = None,
    ) -> AsyncIterator[dict[str, str]]:
        locator: str | None = None
        while True:
            self._call("query_job_results", correlation_id)
            text, locator, _ = self.bulk_query_page_now(
                check_record_id(job_id), locator, max_records
            )
            async for row in csv_dicts(_lines(text)):
                yield row
            if locator is None:
                return

    async def bulk_query(
        self,
        soql: str,
        *,
        include_deleted: bool = False,
        max_records: int | None = None,
        timeout: float = 600.0,
        correlation_id: str | None = None,
    ) -> AsyncIterator[dict[str, str]]:
        cid = new_correlation_id(correlation_id)
        job = await self.create_query_job(soql, include_deleted=include_deleted, correlation_id=cid)
        job = finished_job(await self.wait_for_job(job.id, query=True, timeout=timeout,
                                                correlation_id=cid))  # fmt: skip
        async for row in self.query_job_results(job.id, max_records=max_records,
                                                correlation_id=cid):  # fmt: skip
            yield row


def _not_found(code: str = "NOT_FOUND", message: str = "") -> ConnectorError:
    return salesforce_error(
        404,
        [{"errorCode": code, "message": message or "The requested resource does not exist"}],
        operation="request",
    )


def _resolve(value: Any, answers: Mapping[str, Any]) -> Any:
    """``value`` with every ``@{ref.path}`` replaced from ``answers`` (LookupError naming
    the reference when an answer lacks it)."""
    if isinstance(value, str):
        whole = REFERENCE.fullmatch(value)
        if whole:
            return _lookup(whole, answers)
        return REFERENCE.sub(lambda m: str(_lookup(m, answers)), value)
    if isinstance(value, Mapping):
        return {k: _resolve(v, answers) for k, v in value.items()}
    if isinstance(value, list):
        return [_resolve(v, answers) for v in value]
    return value


def _lookup(match: re.Match[str], answers: Mapping[str, Any]) -> Any:
    ref, path = match[1], match[2]
    if ref not in answers:
        raise LookupError(f"{ref}.{path}")
    current: Any = answers[ref]
    for part in re.findall(r"[^.\[\]]+|\[\d+\]", path):
        try:
            current = current[int(part[1:-1])] if part.startswith("[") else current[part]
        except (KeyError, IndexError, TypeError):
            raise LookupError(f"{ref}.{path}") from None
    return current
