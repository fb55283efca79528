"""Composite requests (``/composite``) through a small typed builder, and sObject
collections (``/composite/sobjects``) in chunks of 200 returning a WriteResult."""

from __future__ import annotations

import re
from collections.abc import Awaitable, Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote

from pydantic import Field

from connector_adapters.salesforce._checks import (
    check_fields,
    check_record_id,
    check_sobject,
    jsonable,
)
from connector_adapters.salesforce._models import (
    SalesforceErrorItem,
    SalesforceModel,
    SalesforceRecord,
)
from connector_adapters.salesforce._soql import soql_identifier
from connector_core import ErrorCode, InvalidRequestError, RecordError, WriteResult

COMPOSITE_LIMIT = 25
"""Salesforce's most subrequests in one ``/composite`` call."""
COLLECTION_CHUNK = 200
"""Salesforce's most records in one sObject collections call."""

_REF_ID = re.compile(r"[A-Za-z][A-Za-z0-9_]{0,79}")
REFERENCE = re.compile(r"@\{([A-Za-z][A-Za-z0-9_]*)\.([A-Za-z0-9_.\[\]]+)\}")
"""``@{referenceId.field}`` (``field`` may be a path: ``records[0].Id``)."""


def _invalid(message: str) -> InvalidRequestError:
    return InvalidRequestError(message, connector="salesforce")


@dataclass(frozen=True, slots=True)
class Ref:
    """A subrequest of a :class:`CompositeRequest`: use ``ref.id`` or ``ref.field("Name")``
    where a later subrequest needs a value of its answer (``@{refId.id}``)."""

    reference_id: str

    def field(self, path: str) -> str:
        """``@{referenceId.path}`` (``path`` like ``id``, ``Name`` or ``records[0].Id``)."""
        if not isinstance(path, str) or not re.fullmatch(r"[A-Za-z0-9_.\[\]]+", path):
            raise _invalid(f"{path!r} is not a field path of a composite answer")
        return f"@{{{self.reference_id}.{path}}}"

    @property
    def id(self) -> str:
        """``@{referenceId.id}``: the id a create or upsert answered."""
        return self.field("id")

    def __str__(self) -> str:
        return self.id


@dataclass(frozen=True, slots=True)
class CompositeSubrequest:
    """One subrequest: ``url`` is relative to the data path (``sobjects/Account``)."""

    method: str
    url: str
    reference_id: str
    body: Mapping[str, Any] | None = None

    def to_json(self, data_path: str) -> dict[str, Any]:
        out: dict[str, Any] = {
            "method": self.method,
            "url": f"{data_path}/{self.url}",
            "referenceId": self.reference_id,
        }
        if self.body is not None:
            out["body"] = dict(self.body)
        return out


def _values(fields: Mapping[str, Any]) -> dict[str, Any]:
    # A Ref given as a value stands for the id its subrequest created.
    checked = check_fields(fields)
    return jsonable({k: v.id if isinstance(v, Ref) else v for k, v in checked.items()})


def _target_id(record_id: str | Ref) -> str:
    if isinstance(record_id, Ref):
        return record_id.id
    if isinstance(record_id, str) and REFERENCE.fullmatch(record_id):
        return record_id
    return check_record_id(record_id)


class CompositeRequest:
    """Up to 25 subrequests sent in one ``/composite`` call, in order; a later one may
    use a value of an earlier one's answer through its :class:`Ref`::

        request = CompositeRequest()
        account = request.create("Account", {"Name": "Acme"})
        request.create("Contact", {"LastName": "Doe", "AccountId": account.id})
        result = await client.composite(request, all_or_none=True)
        result[account].id

    Names are checked (sObjects, fields, record ids) as the client's own calls check
    them. Raises InvalidRequestError for a 26th subrequest, a reference id used twice,
    or a bad name.
    """

    def __init__(self) -> None:
        self._subrequests: list[CompositeSubrequest] = []

    def __len__(self) -> int:
        return len(self._subrequests)

    def __iter__(self) -> Iterator[CompositeSubrequest]:
        return iter(self._subrequests)

    @property
    def subrequests(self) -> tuple[CompositeSubrequest, ...]:
        return tuple(self._subrequests)

    def _add(self, method: str, url: str, body: Mapping[str, Any] | None, ref: str | None) -> Ref:
        if len(self._subrequests) >= COMPOSITE_LIMIT:
            raise _invalid(
                f"a composite request holds at most {COMPOSITE_LIMIT} subrequests: send "
                "several, or use the sObject collections (create_records, ... : "
                f"{COLLECTION_CHUNK} records a call)"
            )
        reference_id = ref if ref is not None else f"ref{len(self._subrequests) + 1}"
        if not isinstance(reference_id, str) or not _REF_ID.fullmatch(reference_id):
            raise _invalid(
                f"{reference_id!r} is not a reference id (a letter, then letters, digits, _)"
            )
        if any(s.reference_id == reference_id for s in self._subrequests):
            raise _invalid(f"reference id {reference_id!r} is used twice")
        self._subrequests.append(CompositeSubrequest(method, url, reference_id, body))
        return Ref(reference_id)

    def create(self, sobject: str, fields: Mapping[str, Any], *, ref: str | None = None) -> Ref:
        return self._add("POST", f"sobjects/{check_sobject(sobject)}", _values(fields), ref)

    def update(
        self,
        sobject: str,
        record_id: str | Ref,
        fields: Mapping[str, Any],
        *,
        ref: str | None = None,
    ) -> Ref:
        url = f"sobjects/{check_sobject(sobject)}/{_target_id(record_id)}"
        return self._add("PATCH", url, _values(fields), ref)

    def upsert(
        self,
        sobject: str,
        external_id_field: str,
        external_id: str,
        fields: Mapping[str, Any],
        *,
        ref: str | None = None,
    ) -> Ref:
        if not isinstance(external_id, str) or not external_id:
            raise _invalid("an upsert needs a non-empty external id")
        key = soql_identifier(external_id_field)
        url = f"sobjects/{check_sobject(sobject)}/{key}/{quote(external_id, safe='')}"
        return self._add("PATCH", url, _values(fields), ref)

    def delete(self, sobject: str, record_id: str | Ref, *, ref: str | None = None) -> Ref:
        url = f"sobjects/{check_sobject(sobject)}/{_target_id(record_id)}"
        return self._add("DELETE", url, None, ref)

    def get(self, sobject: str, record_id: str | Ref, *, ref: str | None = None) -> Ref:
        url = f"sobjects/{check_sobject(sobject)}/{_target_id(record_id)}"
        return self._add("GET", url, None, ref)

    def query(self, soql: str, *, ref: str | None = None) -> Ref:
        """A SOQL query (build it with :class:`Soql`); its answer's ``records[0].Id``
        can be referenced."""
        if not isinstance(soql, str) or not soql.strip():
            raise _invalid("a composite query needs SOQL")
        return self._add("GET", f"query/?q={quote(soql, safe='')}", None, ref)


class CompositeSubresponse(SalesforceModel):
    """The answer to one subrequest: its status, body and reference id."""

    body: Any = None
    http_headers: dict[str, str] = Field(default_factory=dict, alias="httpHeaders")
    http_status: int = Field(alias="httpStatusCode")
    reference_id: str = Field(alias="referenceId")

    @property
    def ok(self) -> bool:
        return 200 <= self.http_status < 300

    @property
    def id(self) -> str | None:
        """The id a create or upsert answered."""
        value = self.body.get("id") if isinstance(self.body, dict) else None
        return value if isinstance(value, str) else None

    @property
    def errors(self) -> list[SalesforceErrorItem]:
        """Salesforce's error array when the subrequest failed (else empty)."""
        if self.ok or not isinstance(self.body, list):
            return []
        return [SalesforceErrorItem.model_validate(e) for e in self.body if isinstance(e, dict)]

    def record(self) -> SalesforceRecord | None:
        """The record a GET answered."""
        return SalesforceRecord.model_validate(self.body) if isinstance(self.body, dict) else None

    def records(self) -> list[SalesforceRecord]:
        """The records a query answered (its first batch)."""
        found = self.body.get("records") if isinstance(self.body, dict) else None
        return [SalesforceRecord.model_validate(r) for r in found or []]


class CompositeResult(SalesforceModel):
    """The answers of a composite call, in the order of the subrequests;
    ``result[ref]`` (a :class:`Ref` or its reference id) picks one."""

    composite_response: list[CompositeSubresponse] = Field(alias="compositeResponse")

    @property
    def ok(self) -> bool:
        return all(r.ok for r in self.composite_response)

    def __getitem__(self, ref: Ref | str) -> CompositeSubresponse:
        wanted = ref.reference_id if isinstance(ref, Ref) else ref
        for response in self.composite_response:
            if response.reference_id == wanted:
                return response
        raise KeyError(wanted)

    def __len__(self) -> int:
        return len(self.composite_response)


def composite_subrequests(
    requests: CompositeRequest | Sequence[CompositeSubrequest],
) -> list[CompositeSubrequest]:
    """The subrequests to send, held to the 25 limit and unique reference ids."""
    found = list(requests)
    if not found:
        raise _invalid("a composite request needs at least one subrequest")
    if len(found) > COMPOSITE_LIMIT:
        raise _invalid(
            f"{len(found)} subrequests: a composite request holds at most {COMPOSITE_LIMIT}"
        )
    ids = [s.reference_id for s in found]
    if len(set(ids)) != len(ids):
        raise _invalid("every subrequest needs its own reference id")
    return found


# -- sObject collections --------------------------------------------------------------------


class CollectionWriteResult(WriteResult):
    """A WriteResult of an sObject collections call: ``errors[i].index`` is the
    record's index in the input (across chunks); ``ids`` and ``created`` follow the
    input order (None/False for a record that failed)."""

    ids: tuple[str | None, ...] = ()
    created: tuple[bool, ...] = ()


_CODES = {
    "REQUIRED_FIELD_MISSING": ErrorCode.INVALID_REQUEST,
    "INVALID_FIELD": ErrorCode.INVALID_REQUEST,
    "INVALID_CROSS_REFERENCE_KEY": ErrorCode.NOT_FOUND,
    "ENTITY_IS_DELETED": ErrorCode.NOT_FOUND,
    "NOT_FOUND": ErrorCode.NOT_FOUND,
    "DUPLICATE_VALUE": ErrorCode.CONFLICT,
    "DUPLICATES_DETECTED": ErrorCode.CONFLICT,
    "DUPLICATE_EXTERNAL_ID": ErrorCode.CONFLICT,
    "ENTITY_IS_LOCKED": ErrorCode.CONFLICT,
    "INSUFFICIENT_ACCESS_OR_READONLY": ErrorCode.PERMISSION_DENIED,
    "ALL_OR_NONE_OPERATION_ROLLED_BACK": ErrorCode.INVALID_REQUEST,
}
NOT_SENT = "NOT_SENT"
"""The status code of records not sent: an earlier chunk failed with all_or_none."""


def record_error(index: int, key: Any, errors: Any) -> RecordError:
    """A RecordError from one entry's ``errors`` (``statusCode``, ``message``, ``fields``)."""
    items = [e for e in errors if isinstance(e, dict)] if isinstance(errors, list) else []
    first = items[0] if items else {}
    status = str(first.get("statusCode") or first.get("errorCode") or "UNKNOWN_EXCEPTION")
    fields = first.get("fields") or []
    message = (
        "; ".join(
            f"{e.get('statusCode') or e.get('errorCode')}: {e.get('message', '')}" for e in items
        )
        or f"{status}: no error given"
    )
    if fields:
        message += f" (fields: {', '.join(str(f) for f in fields)})"
    return RecordError(
        index=index, message=message, code=_CODES.get(status, ErrorCode.UNKNOWN), key=key
    )


ChunkSender = Callable[[list[Any]], Awaitable[list[dict[str, Any]]]]


async def write_in_chunks(
    items: Sequence[Any],
    send: ChunkSender,
    *,
    keys: Sequence[Any],
    all_or_none: bool,
) -> CollectionWriteResult:
    """Send ``items`` 200 at a time through ``send`` (which answers Salesforce's list of
    ``{"id", "success", "errors"[, "created"]}``, one per item, in order) and gather one
    CollectionWriteResult. With ``all_or_none`` each chunk is atomic on Salesforce's
    side, and after a chunk that failed the rest are not sent (their records fail with
    NOT_SENT): chunks already written cannot be rolled back."""
    ids: list[str | None] = []
    created: list[bool] = []
    errors: list[RecordError] = []
    written = 0
    stopped = False
    for start in range(0, len(items), COLLECTION_CHUNK):
        chunk = list(items[start : start + COLLECTION_CHUNK])
        if stopped:
            for offset in range(len(chunk)):
                errors.append(
                    record_error(
                        start + offset,
                        keys[start + offset],
                        [{"statusCode": NOT_SENT, "message": "not sent: an earlier chunk "
                          "failed and all_or_none was asked"}],
                    )
                )  # fmt: skip
                ids.append(None)
                created.append(False)
            continue
        answers = await send(chunk)
        if len(answers) != len(chunk):
            raise _invalid(f"Salesforce answered {len(answers)} results for {len(chunk)} records")
        chunk_failed = False
        for offset, answer in enumerate(answers):
            index = start + offset
            if answer.get("success"):
                written += 1
                ids.append(answer.get("id"))
                created.append(bool(answer.get("created", True)))
            else:
                chunk_failed = True
                ids.append(None)
                created.append(False)
                errors.append(record_error(index, keys[index], answer.get("errors")))
        stopped = all_or_none and chunk_failed
    return CollectionWriteResult(
        written=written,
        failed=len(errors),
        errors=tuple(errors),
        ids=tuple(ids),
        created=tuple(created),
    )


def collection_records(
    sobject: str, records: Sequence[Mapping[str, Any]], *, need_id: bool
) -> list[dict[str, Any]]:
    """Records as the collections API takes them: ``attributes.type`` and checked fields."""
    if isinstance(records, Mapping) or not isinstance(records, Sequence):
        raise _invalid("records must be a sequence of mappings")
    name = check_sobject(sobject)
    out = []
    for index, record in enumerate(records):
        fields = _values(record)
        if need_id:
            record_id = fields.get("Id")
            if not isinstance(record_id, str):
                raise _invalid(f"record {index} has no Id: an update names the record by Id")
            check_record_id(record_id)
        out.append({"attributes": {"type": name}, **fields})
    return out
