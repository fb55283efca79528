"""Typed Salesforce payloads. Every model keeps the fields it does not name
(``extra="allow"``): Salesforce adds fields with every release, and a record is as wide
as its SOQL."""

from __future__ import annotations

from datetime import datetime
from typing import Any, TypeVar

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from connector_core import SerializationError


class SalesforceModel(BaseModel):
    """Base of every Salesforce payload: unknown fields are kept, not dropped."""

    model_config = ConfigDict(extra="allow", populate_by_name=True, frozen=True)


class RecordAttributes(SalesforceModel):
    type: str | None = None
    url: str | None = None


class SalesforceRecord(SalesforceModel):
    """One sObject record: ``record["Name"]`` or ``record.get("Name")`` for any field."""

    attributes: RecordAttributes | None = None

    def __getitem__(self, name: str) -> Any:
        if name == "attributes":
            return self.attributes
        extra = self.model_extra or {}
        if name not in extra:
            raise KeyError(name)
        return extra[name]

    def get(self, name: str, default: Any = None) -> Any:
        return (self.model_extra or {}).get(name, default)

    @property
    def id(self) -> str | None:
        value = self.get("Id")
        return value if isinstance(value, str) else None

    def fields(self) -> dict[str, Any]:
        """The record's fields without ``attributes``."""
        return dict(self.model_extra or {})


class QueryPage(SalesforceModel):
    """One batch of a query: up to 2,000 records and, unless ``done``, where the next is."""

    total_size: int = Field(alias="totalSize")
    done: bool
    next_records_url: str | None = Field(None, alias="nextRecordsUrl")
    records: list[SalesforceRecord] = []


class SalesforceErrorItem(SalesforceModel):
    """One entry of Salesforce's error array."""

    message: str = ""
    error_code: str = Field("", alias="errorCode")
    fields: list[str] = []


class SaveResult(SalesforceModel):
    """The answer to a create: the new id, or the errors."""

    id: str | None = None
    success: bool = True
    errors: list[SalesforceErrorItem] = []
    created: bool = True


class UpsertResult(SalesforceModel):
    """The answer to an upsert by external id: the record's id and whether it is new."""

    id: str | None = None
    created: bool
    success: bool = True
    errors: list[SalesforceErrorItem] = []


class UpdatedResult(SalesforceModel):
    """``/sobjects/{Obj}/updated``: ids changed between two times."""

    ids: list[str] = []
    latest_date_covered: datetime | None = Field(None, alias="latestDateCovered")


class DeletedRecord(SalesforceModel):
    id: str
    deleted_date: datetime = Field(alias="deletedDate")


class DeletedResult(SalesforceModel):
    """``/sobjects/{Obj}/deleted``: records deleted between two times."""

    deleted_records: list[DeletedRecord] = Field([], alias="deletedRecords")
    earliest_date_available: datetime | None = Field(None, alias="earliestDateAvailable")
    latest_date_covered: datetime | None = Field(None, alias="latestDateCovered")


class SObjectSummary(SalesforceModel):
    """One sObject of describe global."""

    name: str
    label: str | None = None
    custom: bool = False
    queryable: bool = True
    createable: bool = True
    updateable: bool = True
    deletable: bool = True
    replicateable: bool = True


class DescribeGlobal(SalesforceModel):
    encoding: str | None = None
    max_batch_size: int | None = Field(None, alias="maxBatchSize")
    sobjects: list[SObjectSummary] = []


class FieldDescribe(SalesforceModel):
    """One field of an sObject describe."""

    name: str
    type: str
    label: str | None = None
    nillable: bool = True
    length: int | None = None
    external_id: bool = Field(False, alias="externalId")
    id_lookup: bool = Field(False, alias="idLookup")
    reference_to: list[str] = Field([], alias="referenceTo")
    relationship_name: str | None = Field(None, alias="relationshipName")


class SObjectDescribe(SalesforceModel):
    """``/sobjects/{Obj}/describe``: the object's fields and what it allows."""

    name: str
    label: str | None = None
    queryable: bool = True
    fields: list[FieldDescribe] = []

    def field_names(self) -> frozenset[str]:
        return frozenset(f.name for f in self.fields)


class Limit(SalesforceModel):
    """One entry of ``/limits``: the allocation and what is left of it."""

    max: int = Field(alias="Max")
    remaining: int = Field(alias="Remaining")


class ApiUsage(SalesforceModel):
    """``Sforce-Limit-Info: api-usage=USED/LIMIT``: the org's daily API requests."""

    used: int
    limit: int

    @property
    def share(self) -> float:
        return self.used / self.limit if self.limit else 0.0


M = TypeVar("M", bound=BaseModel)


def parse(model: type[M], data: Any, what: str) -> M:
    """``model`` validated from ``data``; SerializationError naming ``what`` otherwise."""
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        failure = f"{exc.error_count()} problem(s), first at {_loc(exc)}"
    raise SerializationError(f"unexpected Salesforce response: {what} ({failure})")


def _loc(exc: ValidationError) -> str:
    errors = exc.errors(include_input=False)
    return ".".join(str(p) for p in errors[0]["loc"]) or "top level" if errors else "?"
