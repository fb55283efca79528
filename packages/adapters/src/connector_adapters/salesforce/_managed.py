"""ManagedSalesforce: the Salesforce client over connector-http's HttpConnector."""

from __future__ import annotations

import asyncio
import json
import logging
import re
import time
from collections.abc import AsyncIterator, Callable, Iterable, Mapping, Sequence
from datetime import UTC, datetime
from importlib.metadata import PackageNotFoundError, version
from types import TracebackType
from typing import Any, ClassVar, Self
from urllib.parse import quote

from pydantic import BaseModel, ConfigDict

from connector_adapters.salesforce._bulk import (
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
    CollectionWriteResult,
    CompositeRequest,
    CompositeResult,
    CompositeSubrequest,
    collection_records,
    composite_subrequests,
    write_in_chunks,
)
from connector_adapters.salesforce._config import SalesforceConfig
from connector_adapters.salesforce._errors import error_items, is_session_expired, salesforce_error
from connector_adapters.salesforce._login import SalesforceLogin, SalesforceToken
from connector_adapters.salesforce._mock import upsert_conflict
from connector_adapters.salesforce._models import (
    ApiUsage,
    DeletedResult,
    DescribeGlobal,
    Limit,
    QueryPage,
    SalesforceRecord,
    SaveResult,
    SObjectDescribe,
    UpdatedResult,
    UpsertResult,
    parse,
)
from connector_adapters.salesforce._soql import Soql, soql_identifier
from connector_core import (
    Catalog,
    CheckResult,
    ConfigError,
    ConnectorError,
    FieldError,
    NotConnectedError,
    NotFoundError,
    SerializationError,
    StatsSnapshot,
)
from connector_http import HttpConfig, HttpConnector, HttpResponse, HttpStreamResponse

try:
    _VERSION = version("connector-adapters")
except PackageNotFoundError:  # pragma: no cover
    _VERSION = "0.0.0"

logger = logging.getLogger("connector_adapters.salesforce")
_LIMIT_INFO = re.compile(r"api-usage=(\d+)/(\d+)")


class SalesforceStats(BaseModel):
    """What the client has seen: the REST and login connectors' stats, the org's API
    usage from the last ``Sforce-Limit-Info``, tokens minted and sessions renewed."""

    model_config = ConfigDict(frozen=True)

    rest: StatsSnapshot | None
    login: StatsSnapshot
    api_usage: ApiUsage | None
    token_requests: int
    session_renewals: int


def parse_limit_info(value: str | None) -> ApiUsage | None:
    """``api-usage=10018/100000`` -> ApiUsage(used=10018, limit=100000)."""
    match = _LIMIT_INFO.search(value or "")
    return ApiUsage(used=int(match[1]), limit=int(match[2])) if match else None


def _salesforce_answer(response: HttpResponse) -> bool:
    # Salesforce's own refusals carry an error array: they are read and mapped here. A
    # 429 or a 5xx stays the connector's (typed, retried when the call is idempotent).
    return _salesforce_status(response.status)


def _salesforce_status(status: int) -> bool:
    return 400 <= status < 500 and status != 429


def _json_text(text: Any) -> Any:
    try:
        return json.loads(text) if isinstance(text, str) and text.strip() else None
    except ValueError:
        return None


def _iso(value: datetime) -> str:
    return value.astimezone(UTC).isoformat(timespec="seconds")


class ManagedSalesforce:
    """Salesforce's REST API over :class:`connector_http.HttpConnector`.

    ``connect()`` logs in at ``login_url`` (JWT bearer, client credentials or refresh
    token) and opens a second connector on the ``instance_url`` the token response
    names; every request carries the token and the correlation id
    (``config.correlation_id_header``). A 401 INVALID_SESSION_ID "Session expired or
    invalid" mints one new token and re-sends the request once (a query goes on from
    the batch it was fetching: nothing lost, nothing repeated); the same code with "not
    valid for use with the REST API" is an AuthenticationError at once.
    REQUEST_LIMIT_EXCEEDED is a RateLimitedError that is not retried. GET, PATCH and
    DELETE are retried on transient errors, a create (POST) is not.

    Each response's ``Sforce-Limit-Info`` updates :attr:`api_usage`; past
    ``config.api_usage_warn_threshold`` a WARNING is logged (once per crossing).
    Use ``async with ManagedSalesforce(config) as sf:``. Raises ConfigError without
    ``auth``; operations raise the errors listed on :class:`SalesforceClient`.
    """

    name: ClassVar[str] = "salesforce"
    version: ClassVar[str] = _VERSION

    def __init__(self, config: SalesforceConfig) -> None:
        if config.auth is None:
            raise ConfigError(
                "ManagedSalesforce needs auth in SalesforceConfig (jwt_bearer, "
                "client_credentials or refresh_token)",
                errors=[FieldError("auth", "required for the managed client")],
                connector="salesforce",
            )
        self.config = config
        self._user_agent = f"connector-adapters/{_VERSION} (salesforce)"
        self.login_http = HttpConnector(self._http_config(config.login_url))
        self.login = SalesforceLogin(config, self.login_http)
        self.rest: HttpConnector | None = None
        self._rest_lock = asyncio.Lock()
        self._api_usage: ApiUsage | None = None
        self._over_threshold = False
        self.session_renewals = 0
        self._data = config.data_path

    def _http_config(self, base_url: str) -> HttpConfig:
        config = self.config
        return HttpConfig(
            base_url=base_url,
            timeout=config.timeout,
            connect_timeout=config.connect_timeout,
            retry=config.retry,
            rate_limit=config.rate_limit,
            circuit_breaker=config.circuit_breaker,
            correlation_id_header=config.correlation_id_header,
            health_path=f"{config.data_path}/limits",
            connect_probe=False,
            follow_redirects=False,
            user_agent=self._user_agent,
            headers={"Accept": "application/json"},
        )

    def __repr__(self) -> str:
        return f"ManagedSalesforce({self.config.connection_string()!r})"

    # -- lifecycle ----------------------------------------------------------------------

    async def connect(self) -> None:
        """Log in and open the REST connector on the instance URL."""
        try:
            await self.login_http.connect()
            token = await self.login.token(correlation_id=new_correlation_id(None))
            await self._rest_for(token)
        except BaseException:
            await asyncio.shield(self.disconnect())  # nothing left open by a failed login
            raise

    async def _rest_for(self, token: SalesforceToken) -> HttpConnector:
        rest = self.rest
        if rest is not None and rest.config.base_url == token.instance_url:
            return rest
        async with self._rest_lock:  # concurrent connects open one REST connector
            rest = self.rest
            if rest is not None and rest.config.base_url == token.instance_url:
                return rest
            fresh = HttpConnector(self._http_config(token.instance_url))
            await fresh.connect()
            self.rest = fresh
        if rest is not None:  # the org moved instance: the old connector is done
            await rest.disconnect()
        return fresh

    async def disconnect(self) -> None:
        rest, self.rest = self.rest, None
        if rest is not None:
            await rest.disconnect()
        await self.login_http.disconnect()

    @property
    def is_connected(self) -> bool:
        return self.rest is not None and self.rest.is_connected

    async def ping(self) -> float:
        """GET ``/limits`` (which proves the token); its round trip in seconds."""
        started = time.perf_counter()
        await self._send("GET", f"{self._data}/limits", "ping", new_correlation_id(None))
        return time.perf_counter() - started

    async def check(self) -> CheckResult:
        """Log in, GET ``/limits``, report; never raises, and leaves the client connected
        or not as it found it."""
        was_connected = self.is_connected
        try:
            if not was_connected:
                await self.connect()
            latency = await self.ping()
        except ConnectorError as exc:
            return CheckResult(ok=False, connector=self.name, error=str(exc), error_code=exc.code)
        finally:
            if not was_connected:
                await asyncio.shield(self.disconnect())
        usage = self._api_usage.model_dump() if self._api_usage else {}
        return CheckResult(ok=True, connector=self.name, latency=latency, details=usage)

    async def __aenter__(self) -> Self:
        await self.connect()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await asyncio.shield(self.disconnect())

    # -- usage and stats ----------------------------------------------------------------

    @property
    def api_usage(self) -> ApiUsage | None:
        return self._api_usage

    def stats(self) -> SalesforceStats:
        return SalesforceStats(
            rest=self.rest.stats if self.rest is not None else None,
            login=self.login_http.stats,
            api_usage=self._api_usage,
            token_requests=self.login.token_requests,
            session_renewals=self.session_renewals,
        )

    def _note_usage(self, response: HttpResponse | HttpStreamResponse) -> None:
        usage = parse_limit_info(response.headers.get("Sforce-Limit-Info"))
        if usage is None:
            return
        self._api_usage = usage
        over = usage.share >= self.config.api_usage_warn_threshold
        if over and not self._over_threshold:
            logger.warning(
                "Salesforce API usage is at %d of %d daily requests (%.0f%%, threshold "
                "%.0f%%): at the limit every call fails with REQUEST_LIMIT_EXCEEDED",
                usage.used,
                usage.limit,
                usage.share * 100,
                self.config.api_usage_warn_threshold * 100,
            )
        self._over_threshold = over

    # -- the road -----------------------------------------------------------------------

    async def _send(
        self,
        method: str,
        path: str,
        operation: str,
        correlation_id: str,
        *,
        params: Mapping[str, Any] | None = None,
        json: Any = None,
        content: bytes | None = None,
        headers: Mapping[str, str] | None = None,
        idempotent: bool | None = None,
    ) -> HttpResponse:
        """One request with the current token; a 401 'Session expired' re-mints the
        token once and re-sends. Salesforce's error array becomes a ConnectorError."""
        if self.rest is None:
            raise NotConnectedError(
                "ManagedSalesforce is not connected: call connect() or use 'async with'",
                connector="salesforce",
            )
        token = await self.login.token(correlation_id=correlation_id)
        renewed = False
        while True:
            rest = await self._rest_for(token)
            response = await rest.request(
                method,
                path,
                params=params,
                json=json,
                content=content,
                headers=headers,
                correlation_id=correlation_id,
                user_token=token.access_token,
                operation=f"salesforce.{operation}",
                idempotent=idempotent,
                accept_error=_salesforce_answer,
            )
            self._note_usage(response)
            if response.status < 400:
                return response
            body = _json_or_none(response)
            if response.status == 401 and not renewed and is_session_expired(error_items(body)):
                renewed = True
                self.session_renewals += 1
                logger.info("Salesforce session expired during %s: logging in again", operation)
                token = await self.login.renew(token, correlation_id=correlation_id)
                continue
            raise salesforce_error(response.status, body, operation=operation)

    async def _optional(self, call: Any) -> Any:
        try:
            return await call
        except NotFoundError:
            return None

    # -- queries ------------------------------------------------------------------------

    async def _records(
        self, soql: str, resource: str, operation: str, correlation_id: str | None
    ) -> AsyncIterator[SalesforceRecord]:
        if not isinstance(soql, str) or not soql.strip():
            raise salesforce_error(
                400, [{"errorCode": "MALFORMED_QUERY", "message": "empty query"}],
                operation=operation,
            )  # fmt: skip
        cid = new_correlation_id(correlation_id)
        path: str = f"{self._data}/{resource}/"
        params: dict[str, str] | None = {"q": soql}
        seen: set[str] = set()
        while True:
            response = await self._send("GET", path, operation, cid, params=params)
            page = parse(QueryPage, response.json(), f"a {operation} batch")
            for record in page.records:
                yield record
            following = page.next_records_url
            if page.done or not following:
                return
            if not following.startswith(f"{self._data}/") or following in seen:
                raise SerializationError(
                    f"unexpected Salesforce response: nextRecordsUrl {following!r} is not a "
                    "new path of this API version",
                    connector="salesforce",
                )
            seen.add(following)
            path, params = following, None

    def query(
        self, soql: str, *, correlation_id: str | None = None
    ) -> AsyncIterator[SalesforceRecord]:
        return self._records(soql, "query", "query", correlation_id)

    def query_all(
        self, soql: str, *, correlation_id: str | None = None
    ) -> AsyncIterator[SalesforceRecord]:
        return self._records(soql, "queryAll", "query_all", correlation_id)

    async def count(self, soql: str, *, correlation_id: str | None = None) -> int:
        cid = new_correlation_id(correlation_id)
        response = await self._send("GET", f"{self._data}/query/", "count", cid, params={"q": soql})
        return parse(QueryPage, response.json(), "a count").total_size

    # -- sObjects -----------------------------------------------------------------------

    def _sobject_path(self, sobject: str, *rest: str) -> str:
        return "/".join([f"{self._data}/sobjects", check_sobject(sobject), *rest])

    async def get(
        self,
        sobject: str,
        record_id: str,
        *,
        fields: Sequence[str] | None = None,
        correlation_id: str | None = None,
    ) -> SalesforceRecord | None:
        cid = new_correlation_id(correlation_id)
        path = self._sobject_path(sobject, check_record_id(record_id))
        if fields is not None:
            # The collection's record GET takes no ?fields=: a SOQL query by Id does it.
            query = Soql(sobject).select(*fields).where("Id", "=", record_id).limit(1)
            async for record in self.query(str(query), correlation_id=cid):
                return record
            return None
        response = await self._optional(self._send("GET", path, "get", cid))
        if response is None:
            return None
        return parse(SalesforceRecord, response.json(), "a record")

    async def create(
        self, sobject: str, fields: Mapping[str, Any], *, correlation_id: str | None = None
    ) -> SaveResult:
        response = await self._send(
            "POST", self._sobject_path(sobject), "create", new_correlation_id(correlation_id),
            json=jsonable(check_fields(fields)),
        )  # fmt: skip
        return parse(SaveResult, response.json(), "a create result")

    async def update(
        self,
        sobject: str,
        record_id: str,
        fields: Mapping[str, Any],
        *,
        correlation_id: str | None = None,
    ) -> bool:
        response = await self._optional(
            self._send(
                "PATCH", self._sobject_path(sobject, check_record_id(record_id)), "update",
                new_correlation_id(correlation_id), json=jsonable(check_fields(fields)),
                idempotent=True,  # the same values written twice leave the same record
            )
        )  # fmt: skip
        return response is not None

    async def delete(
        self, sobject: str, record_id: str, *, correlation_id: str | None = None
    ) -> bool:
        response = await self._optional(
            self._send(
                "DELETE", self._sobject_path(sobject, check_record_id(record_id)), "delete",
                new_correlation_id(correlation_id),
            )
        )  # fmt: skip
        return response is not None

    async def upsert(
        self,
        sobject: str,
        external_id_field: str,
        external_id: str,
        fields: Mapping[str, Any],
        *,
        correlation_id: str | None = None,
    ) -> UpsertResult:
        key = soql_identifier(external_id_field)
        if not isinstance(external_id, str) or not external_id:
            raise salesforce_error(
                400, [{"errorCode": "INVALID_FIELD", "message": "empty external id"}],
                operation=f"upsert {sobject}",
            )  # fmt: skip
        path = self._sobject_path(sobject, key, quote(external_id, safe=""))
        response = await self._send(
            "PATCH", path, "upsert", new_correlation_id(correlation_id),
            json=jsonable(check_fields(fields)), idempotent=True,
        )  # fmt: skip
        if response.status == 300:
            body = _json_or_none(response)
            matches = [str(m) for m in body] if isinstance(body, list) else []
            raise upsert_conflict(sobject, key, matches)
        if response.status == 204 or not response.content.strip():
            return UpsertResult(created=False)
        result = parse(UpsertResult, {"created": response.status == 201, **response.json()}, "")
        return result

    async def get_updated(
        self,
        sobject: str,
        start: datetime,
        end: datetime,
        *,
        correlation_id: str | None = None,
    ) -> UpdatedResult:
        start, end = check_window(start, end)
        response = await self._send(
            "GET", self._sobject_path(sobject, "updated/"), "get_updated",
            new_correlation_id(correlation_id), params={"start": _iso(start), "end": _iso(end)},
        )  # fmt: skip
        return parse(UpdatedResult, response.json(), "an updated listing")

    async def get_deleted(
        self,
        sobject: str,
        start: datetime,
        end: datetime,
        *,
        correlation_id: str | None = None,
    ) -> DeletedResult:
        start, end = check_window(start, end)
        response = await self._send(
            "GET", self._sobject_path(sobject, "deleted/"), "get_deleted",
            new_correlation_id(correlation_id), params={"start": _iso(start), "end": _iso(end)},
        )  # fmt: skip
        return parse(DeletedResult, response.json(), "a deleted listing")

    # -- metadata -----------------------------------------------------------------------

    async def describe_global(self, *, correlation_id: str | None = None) -> DescribeGlobal:
        response = await self._send(
            "GET", f"{self._data}/sobjects/", "describe_global", new_correlation_id(correlation_id)
        )
        return parse(DescribeGlobal, response.json(), "describe global")

    async def describe(self, sobject: str, *, correlation_id: str | None = None) -> SObjectDescribe:
        response = await self._send(
            "GET", self._sobject_path(sobject, "describe"), "describe",
            new_correlation_id(correlation_id),
        )  # fmt: skip
        return parse(SObjectDescribe, response.json(), f"the describe of {sobject}")

    async def discover(
        self, sobjects: Sequence[str] | None = None, *, correlation_id: str | None = None
    ) -> Catalog:
        cid = new_correlation_id(correlation_id)
        names = list(sobjects) if sobjects else None
        if names is None:
            found = await self.describe_global(correlation_id=cid)
            names = [s.name for s in found.sobjects if s.queryable]
        return catalog_of([await self.describe(n, correlation_id=cid) for n in names])

    async def limits(self, *, correlation_id: str | None = None) -> dict[str, Limit]:
        response = await self._send(
            "GET", f"{self._data}/limits", "limits", new_correlation_id(correlation_id)
        )
        body = response.json()
        if not isinstance(body, dict):
            raise SerializationError(
                "unexpected Salesforce response: limits is not an object", connector="salesforce"
            )
        return {
            name: parse(Limit, value, f"limit {name}")
            for name, value in body.items()
            if isinstance(value, dict) and "Max" in value
        }

    # -- composite and collections ------------------------------------------------------

    async def composite(
        self,
        requests: CompositeRequest | Sequence[CompositeSubrequest],
        *,
        all_or_none: bool = False,
        correlation_id: str | None = None,
    ) -> CompositeResult:
        body = {
            "allOrNone": bool(all_or_none),
            "compositeRequest": [s.to_json(self._data) for s in composite_subrequests(requests)],
        }
        response = await self._send(
            "POST", f"{self._data}/composite/", "composite", new_correlation_id(correlation_id),
            json=body,
        )  # fmt: skip
        return parse(CompositeResult, response.json(), "a composite answer")

    async def _collection(
        self,
        method: str,
        path: str,
        operation: str,
        items: Sequence[Any],
        keys: Sequence[Any],
        all_or_none: bool,
        correlation_id: str | None,
    ) -> CollectionWriteResult:
        cid = new_correlation_id(correlation_id)

        async def send(chunk: list[Any]) -> list[dict[str, Any]]:
            if method == "DELETE":
                params = {"ids": ",".join(chunk), "allOrNone": str(all_or_none).lower()}
                response = await self._send(method, path, operation, cid, params=params)
            else:
                response = await self._send(
                    method, path, operation, cid,
                    json={"allOrNone": all_or_none, "records": chunk},
                    idempotent=method == "PATCH",  # the same values twice: the same records
                )  # fmt: skip
            body = response.json()
            if not isinstance(body, list) or not all(isinstance(b, dict) for b in body):
                raise SerializationError(
                    f"unexpected Salesforce response: {operation} did not answer a list of results",
                    connector="salesforce",
                )
            return body

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
            "POST", f"{self._data}/composite/sobjects", "create_records", items,
            [None] * len(items), all_or_none, correlation_id,
        )  # fmt: skip

    async def update_records(
        self,
        sobject: str,
        records: Sequence[Mapping[str, Any]],
        *,
        all_or_none: bool = False,
        correlation_id: str | None = None,
    ) -> CollectionWriteResult:
        items = collection_records(sobject, records, need_id=True)
        return await self._collection(
            "PATCH", f"{self._data}/composite/sobjects/{check_sobject(sobject)}",
            "update_records", items, [r["Id"] for r in items], all_or_none, correlation_id,
        )  # fmt: skip

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
        return await self._collection(
            "PATCH", f"{self._data}/composite/sobjects/{check_sobject(sobject)}/{key}",
            "upsert_records", items, [r.get(key) for r in items], all_or_none, correlation_id,
        )  # fmt: skip

    async def delete_records(
        self,
        sobject: str,
        record_ids: Sequence[str],
        *,
        all_or_none: bool = False,
        correlation_id: str | None = None,
    ) -> CollectionWriteResult:
        ids = [check_record_id(i) for i in record_ids]
        return await self._collection(
            "DELETE", f"{self._data}/composite/sobjects/{check_sobject(sobject)}",
            "delete_records", ids, ids, all_or_none, correlation_id,
        )  # fmt: skip

    # -- Bulk API 2.0 -------------------------------------------------------------------

    def _jobs(self, query: bool, *rest: str) -> str:
        kind = "query" if query else "ingest"
        return "/".join([f"{self._data}/jobs/{kind}", *(check_record_id(r) for r in rest[:1]),
                         *rest[1:]])  # fmt: skip

    async def _job_call(
        self, method: str, path: str, operation: str, cid: str, body: Any = None
    ) -> BulkJob:
        response = await self._send(
            method, path, operation, cid, json=body,
            idempotent=method in ("GET", "PATCH"),  # setting one state twice is the same
        )  # fmt: skip
        return parse(BulkJob, response.json(), f"a bulk job ({operation})")

    async def create_ingest_job(
        self,
        sobject: str,
        operation: str,
        *,
        external_id_field: str | None = None,
        correlation_id: str | None = None,
    ) -> BulkJob:
        check_operation(operation, external_id_field)
        body: dict[str, Any] = {"object": check_sobject(sobject), "operation": operation}
        if external_id_field is not None:
            body["externalIdFieldName"] = soql_identifier(external_id_field)
        return await self._job_call(
            "POST", self._jobs(False), "create_ingest_job", new_correlation_id(correlation_id),
            body,
        )  # fmt: skip

    async def upload_job_data(
        self,
        job_id: str,
        data: str | bytes | Iterable[Mapping[str, Any]],
        *,
        correlation_id: str | None = None,
    ) -> None:
        await self._send(
            "PUT", self._jobs(False, job_id, "batches"), "upload_job_data",
            new_correlation_id(correlation_id), content=csv_of(data).encode("utf-8"),
            headers={"Content-Type": "text/csv"},
            idempotent=False,  # a job takes its data once: never sent twice
        )  # fmt: skip

    async def close_job(self, job_id: str, *, correlation_id: str | None = None) -> BulkJob:
        return await self._job_call(
            "PATCH", self._jobs(False, job_id), "close_job", new_correlation_id(correlation_id),
            {"state": "UploadComplete"},
        )  # fmt: skip

    async def abort_job(
        self, job_id: str, *, query: bool = False, correlation_id: str | None = None
    ) -> BulkJob:
        return await self._job_call(
            "PATCH", self._jobs(query, job_id), "abort_job", new_correlation_id(correlation_id),
            {"state": "Aborted"},
        )  # fmt: skip

    async def get_job(
        self, job_id: str, *, query: bool = False, correlation_id: str | None = None
    ) -> BulkJob:
        return await self._job_call(
            "GET", self._jobs(query, job_id), "get_job", new_correlation_id(correlation_id)
        )

    async def delete_job(
        self, job_id: str, *, query: bool = False, correlation_id: str | None = None
    ) -> None:
        await self._send(
            "DELETE", self._jobs(query, job_id), "delete_job", new_correlation_id(correlation_id)
        )

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
        """Poll the job until JobComplete, Failed or Aborted: ``initial_delay``, then
        doubling up to ``max_delay``, within ``timeout`` seconds (ConnectorTimeoutError
        after). Each poll goes the connector's road (transient errors retried)."""
        cid = new_correlation_id(correlation_id)
        return await poll_job(
            lambda: self.get_job(job_id, query=query, correlation_id=cid),
            timeout=timeout, initial_delay=initial_delay, max_delay=max_delay,
        )  # fmt: skip

    async def _stream_lines(
        self,
        path: str,
        operation: str,
        cid: str,
        params: Mapping[str, Any] | None = None,
        on_headers: Callable[[HttpStreamResponse], None] | None = None,
    ) -> AsyncIterator[str]:
        """The lines of a CSV body as they arrive (never the whole body in memory). A
        401 before the body starts mints one new token and asks again."""
        token = await self.login.token(correlation_id=cid)
        renewed = False
        while True:
            rest = await self._rest_for(token)
            started = False
            try:
                async with rest.stream(
                    "GET", path, params=params, correlation_id=cid,
                    user_token=token.access_token, operation=f"salesforce.{operation}",
                    headers={"Accept": "text/csv"},
                ) as response:  # fmt: skip
                    started = True
                    self._note_usage(response)
                    if on_headers is not None:
                        on_headers(response)
                    async for line in response.aiter_lines():
                        yield line
                return
            except ConnectorError as exc:
                status = exc.details.get("status")
                if started or not isinstance(status, int) or not _salesforce_status(status):
                    raise
                # Salesforce's refusal, read by the HTTP connector: mapped as every other.
                body = _json_text(exc.details.get("body"))
                if status == 401 and not renewed and is_session_expired(error_items(body)):
                    renewed = True
                    self.session_renewals += 1
                    logger.info("Salesforce session expired before %s: logging in again", operation)
                    token = await self.login.renew(token, correlation_id=cid)
                    continue
                raise salesforce_error(status, body, operation=operation) from exc

    async def _results(
        self, job_id: str, which: str, correlation_id: str | None
    ) -> AsyncIterator[dict[str, str]]:
        cid = new_correlation_id(correlation_id)
        lines = self._stream_lines(self._jobs(False, job_id, which), which, cid)
        async for row in csv_dicts(lines):
            yield row

    async def successful_results(
        self, job_id: str, *, correlation_id: str | None = None
    ) -> AsyncIterator[BulkSuccess]:
        """The job's successful rows, parsed as they stream in."""
        async for row in self._results(job_id, "successfulResults", correlation_id):
            yield success_row(row)

    async def failed_results(
        self, job_id: str, *, correlation_id: str | None = None
    ) -> AsyncIterator[BulkFailure]:
        """The job's failed rows with Salesforce's error, parsed as they stream in."""
        async for row in self._results(job_id, "failedResults", correlation_id):
            yield failure_row(row)

    async def unprocessed_records(
        self, job_id: str, *, correlation_id: str | None = None
    ) -> AsyncIterator[BulkUnprocessed]:
        """The rows an aborted or failed job never processed."""
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
        """Create an ingest job, upload ``data`` (CSV, or records made CSV), close it and
        wait for it; the finished job (its counts). Read the rows with
        successful_results / failed_results. Raises InvalidRequestError when the job
        ends Failed or Aborted, ConnectorTimeoutError past ``timeout``."""
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
        if not isinstance(soql, str) or not soql.strip():
            raise salesforce_error(
                400, [{"errorCode": "MALFORMED_QUERY", "message": "empty query"}],
                operation="create_query_job",
            )  # fmt: skip
        body = {"operation": "queryAll" if include_deleted else "query", "query": soql}
        return await self._job_call(
            "POST", self._jobs(True), "create_query_job", new_correlation_id(correlation_id),
            body,
        )  # fmt: skip

    async def query_job_results(
        self,
        job_id: str,
        *,
        max_records: int | None = None,
        correlation_id: str | None = None,
    ) -> AsyncIterator[dict[str, str]]:
        """Every row of a completed query job, page after page (``Sforce-Locator``),
        each page parsed as it streams in."""
        cid = new_correlation_id(correlation_id)
        path = self._jobs(True, job_id, "results")
        locator: str | None = None
        seen: set[str] = set()
        while True:
            params: dict[str, Any] = {}
            if locator is not None:
                params["locator"] = locator
            if max_records is not None:
                params["maxRecords"] = max_records
            found: list[str | None] = [None]

            def keep(response: HttpStreamResponse, found: list[str | None] = found) -> None:
                value = response.headers.get("Sforce-Locator")
                found[0] = None if value in (None, "", "null") else value

            lines = self._stream_lines(path, "query_job_results", cid, params or None, keep)
            async for row in csv_dicts(lines):
                yield row
            locator = found[0]
            if locator is None:
                return
            if locator in seen:
                raise SerializationError(
                    f"unexpected Salesforce response: Sforce-Locator {locator!r} came twice",
                    connector="salesforce",
                )
            seen.add(locator)

    async def bulk_query(
        self,
        soql: str,
        *,
        include_deleted: bool = False,
        max_records: int | None = None,
        timeout: float = 600.0,
        correlation_id: str | None = None,
    ) -> AsyncIterator[dict[str, str]]:
        """Run ``soql`` as a Bulk API 2.0 query job and yield its rows (values as CSV
        text; empty for null), paged by ``Sforce-Locator``, in constant memory."""
        cid = new_correlation_id(correlation_id)
        job = await self.create_query_job(soql, include_deleted=include_deleted, correlation_id=cid)
        job = finished_job(
            await self.wait_for_job(job.id, query=True, timeout=timeout, correlation_id=cid)
        )
        async for row in self.query_job_results(job.id, max_records=max_records,
                                                correlation_id=cid):  # fmt: skip
            yield row


def _json_or_none(response: HttpResponse) -> Any:
    try:
        return response.json() if response.content.strip() else None
    except ConnectorError:
        return None
