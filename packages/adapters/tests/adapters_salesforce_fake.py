"""A fake Salesforce held to Salesforce's own Postman collection.

Every request is matched against the request definitions in
``contracts/salesforce/postman/`` (vendored) (method, path pattern, required headers,
query parameters, body shape) plus the few requests the contract's README documents and
the 2021 collection lacks (client credentials token grant, ``nextRecordsUrl`` batches,
upsert by external id). Anything else is recorded in ``violations`` and answered 400;
the ``fake_salesforce`` fixture fails the test when that list is not empty.

Two ports serve one app: the login host (token endpoint only) and the instance host
(REST only), so a client that ignored ``instance_url`` would fail. The token endpoint
verifies JWT bearer assertions (RS256 with the test key's public half; iss, sub, aud,
exp) and client credentials / refresh tokens. Responses follow the README's facts:
query batches of at most 2,000 records with ``nextRecordsUrl``, error arrays, and
``Sforce-Limit-Info`` on every REST response. The backend is a MockSalesforce.
See docs/decisions/0082-salesforce-contract-fake-server.md.
"""

from __future__ import annotations

import asyncio
import itertools
import json
import re
import secrets
import threading
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, unquote

import jwt
from adapters_chatwoot_fake import AsgiServer
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response, StreamingResponse
from starlette.routing import Route

from connector_adapters.salesforce import MockSalesforce
from connector_core import ConnectorError

REPO_ROOT = Path(__file__).resolve().parents[3]
CLIENT_ID = "3MVG9fakeConsumerKey"
CLIENT_SECRET = "fake-consumer-secret-1c9e"
USERNAME = "integration@example.com"
REFRESH_TOKEN = "5Aep861fakeRefreshToken"
MAX_BATCH = 2000
MAX_COMPOSITE = 25
MAX_COLLECTION = 200
DAILY_LIMIT = 100_000
JWT_GRANT = "urn:ietf:params:oauth:grant-type:jwt-bearer"


def contract_dir(repo_root: Path) -> Path:
    """The vendored copy in the repository (contracts/README.md says where it comes from)."""
    return repo_root / "contracts" / "salesforce" / "postman"


def make_key_pair() -> tuple[str, str]:
    """(private key PEM, public key PEM) of a fresh 2048-bit RSA key."""
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    private = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    ).decode()
    public = (
        key.public_key()
        .public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
        .decode()
    )
    return private, public


# -- the contract -------------------------------------------------------------------------


@dataclass(frozen=True)
class ContractRequest:
    """One request definition: where it came from and what it allows."""

    source: str
    method: str
    pattern: re.Pattern[str]
    literal_segments: int
    host: str  # "login" or "instance"
    body: str | None  # "form", "json" or None
    content_type: str | None
    form_keys: frozenset[str] = frozenset()
    query_keys: frozenset[str] = frozenset()
    required_query: frozenset[str] = frozenset()
    grant_type: str | None = None
    body_keys: frozenset[str] | None = None
    """The keys a JSON body may hold (None: any, e.g. a record's fields)."""
    required_body_keys: frozenset[str] = frozenset()


def _grant(body: bytes) -> str | None:
    return dict(parse_qsl(body.decode("utf-8", "replace"))).get("grant_type")


# Required query parameters: the collection lists q/start/end with empty example values,
# the README says what they are for; these requests are useless without them.
_REQUIRED_QUERY = {
    "rest/query.json": {"q"},
    "rest/queryall.json": {"q"},
    "rest/sobject_get_updated.json": {"start", "end"},
    "rest/sobject_get_deleted.json": {"start", "end"},
}
# From the README's facts, absent from the 2021 collection.
_README_REQUESTS = [
    ("README: client credentials", "POST", "{{url}}/services/oauth2/token", "form",
     frozenset({"grant_type", "client_id", "client_secret"})),
    ("README: nextRecordsUrl", "GET", "{{_endpoint}}/services/data/v{{version}}/query/<LOCATOR>",
     None, frozenset()),
    ("README: nextRecordsUrl (queryAll)", "GET",
     "{{_endpoint}}/services/data/v{{version}}/queryAll/<LOCATOR>", None, frozenset()),
    ("README: upsert by external id", "PATCH",
     "{{_endpoint}}/services/data/v{{version}}/sobjects/<SOBJECT>/<FIELD>/<VALUE>", "json",
     frozenset()),
    ("README: sObject collections upsert", "PATCH",
     "{{_endpoint}}/services/data/v{{version}}/composite/sobjects/<SOBJECT>/<FIELD>", "json",
     frozenset()),
]  # fmt: skip
# JSON bodies of a fixed shape: the keys the collection's example body shows are the keys
# allowed; these must be there (the request means nothing without them).
_REQUIRED_BODY_KEYS = {
    "composite/composite.json": {"compositeRequest"},
    "composite/sobject_collections_create.json": {"records"},
    "composite/sobject_collections_update.json": {"records"},
    "README: sObject collections upsert": {"records"},
    "bulk_v2/create_job.json": {"object", "operation"},
    "bulk_v2/close_or_abort_a_job.json": {"state"},
    "query/create_job_query.json": {"operation", "query"},
}
# Beyond the example: an upsert job names its external id field (Bulk API 2.0 guide).
_EXTRA_BODY_KEYS = {
    "bulk_v2/create_job.json": {"externalIdFieldName"},
    "README: sObject collections upsert": {"allOrNone"},
}
_BODY_KEY = re.compile(r'"(\w+)"\s*:')


def _pattern(url: str) -> tuple[re.Pattern[str], int, str]:
    path = url.split("?", 1)[0]
    host = "instance" if path.startswith("{{_endpoint}}") else "login"
    for prefix in ("{{url}}{{site}}", "{{url}}", "{{_endpoint}}"):
        path = path.removeprefix(prefix)
    segments = [s for s in path.split("/") if s]
    parts = []
    literal = 0
    for segment in segments:
        if segment == "v{{version}}":
            parts.append(r"v\d{2,3}\.0")
            literal += 1
        elif re.fullmatch(r"<[^>]+>|\{\{[^}]+\}\}", segment):
            parts.append(r"[^/]+")
        else:
            parts.append(re.escape(segment))
            literal += 1
    return re.compile("^/" + "/".join(parts) + "/?$"), literal, host


class SalesforceContract:
    """The collection's request definitions, loaded once, with a request check."""

    def __init__(self, directory: Path) -> None:
        if not directory.is_dir():
            raise FileNotFoundError(
                f"Salesforce's Postman collection is missing at {directory}: the contract "
                "tests need contracts/salesforce/postman, vendored in the repository"
            )
        self.directory = directory
        self.requests: list[ContractRequest] = []
        for path in sorted(directory.glob("*/*.json")):
            item = json.loads(path.read_text(encoding="utf-8"))
            source = f"{path.parent.name}/{path.name}"
            pattern, literal, host = _pattern(item["url"])
            mode = item.get("dataMode")
            headers = {h["key"].lower(): h.get("value", "") for h in item.get("headerData") or []}
            body = {"urlencoded": "form", "raw": "json", "params": "form", "binary": "binary"}
            body = body.get(mode or "")
            raw = item.get("rawModeData") or ""
            if mode == "raw" and not raw.strip():
                body = None  # a raw body of nothing: the DELETEs and GETs of the collection
            body_keys = None
            if source in _REQUIRED_BODY_KEYS:
                body_keys = frozenset(_BODY_KEY.findall(raw)) | _EXTRA_BODY_KEYS.get(source, set())
            self.requests.append(
                ContractRequest(
                    source=source,
                    method=item["method"],
                    pattern=pattern,
                    literal_segments=literal,
                    host=host,
                    body=body if item["method"] not in ("GET", "DELETE") else None,
                    content_type=headers.get("content-type"),
                    form_keys=frozenset(d["key"] for d in item.get("data") or []),
                    query_keys=frozenset(q["key"] for q in item.get("queryParams") or []),
                    required_query=frozenset(_REQUIRED_QUERY.get(source, set())),
                    grant_type=next(
                        (d["value"] for d in item.get("data") or [] if d["key"] == "grant_type"),
                        None,
                    ),
                    body_keys=body_keys,
                    required_body_keys=frozenset(_REQUIRED_BODY_KEYS.get(source, set())),
                )
            )
        for source, method, url, body, keys in _README_REQUESTS:
            pattern, literal, host = _pattern(url)
            ctype = {"form": "application/x-www-form-urlencoded", "json": "application/json"}
            required = frozenset(_REQUIRED_BODY_KEYS.get(source, set()))
            self.requests.append(
                ContractRequest(
                    source, method, pattern, literal, host, body,
                    ctype.get(body or ""), form_keys=keys,
                    grant_type="client_credentials" if "client_secret" in keys else None,
                    body_keys=required | _EXTRA_BODY_KEYS.get(source, set()) if required else None,
                    required_body_keys=required,
                )
            )  # fmt: skip
        # Literal segments beat parameters (sobjects/X/describe before sobjects/X/{id}).
        self.requests.sort(key=lambda r: -r.literal_segments)

    def match(self, method: str, path: str, host: str) -> tuple[list[ContractRequest], str]:
        """The definitions this method and path may be (most specific first), or why none."""
        candidates = [r for r in self.requests if r.pattern.match(path) and r.host == host]
        if not candidates:
            return [], f"{method} {path}: path not in the collection (on the {host} host)"
        same = [r for r in candidates if r.method == method]
        if not same:
            return [], f"{method} {path}: method not in the collection for this path"
        return same, ""

    def find(
        self,
        record: Recorded,
    ) -> tuple[ContractRequest | None, list[str]]:
        """The definition ``record`` satisfies, or the problems with the closest one."""
        candidates, problem = self.match(record.method, record.path, record.host)
        if not candidates:
            return None, [problem]
        found: list[str] = []
        for spec in candidates:
            problems = self.check(spec, record.headers, record.query, record.body)
            if not problems:
                return spec, []
            found = found or problems
            if spec.grant_type and spec.grant_type == _grant(record.body):
                found = problems  # the definition of this grant says what is wrong
        return None, found

    def check(
        self,
        request: ContractRequest,
        headers: dict[str, str],
        query: list[tuple[str, str]],
        body: bytes,
    ) -> list[str]:
        where = f"{request.method} ({request.source})"
        problems = []
        keys = {k for k, _ in query}
        unknown = keys - request.query_keys
        if unknown:
            problems.append(f"{where}: query parameters not in the collection: {sorted(unknown)}")
        missing = request.required_query - keys
        if missing:
            problems.append(f"{where}: required query parameters missing: {sorted(missing)}")
        ctype = headers.get("content-type", "").split(";")[0].strip()
        if request.body is None:
            if body:
                problems.append(f"{where}: a body where the collection has none")
            return problems
        if request.content_type and ctype != request.content_type:
            problems.append(f"{where}: Content-Type {ctype!r}, expected {request.content_type!r}")
        if request.body == "json":
            try:
                parsed = json.loads(body)
            except ValueError:
                parsed = None
            if not isinstance(parsed, dict):
                problems.append(f"{where}: the body is not a JSON object")
            else:
                absent_keys = request.required_body_keys - set(parsed)
                if absent_keys:
                    problems.append(f"{where}: body keys missing: {sorted(absent_keys)}")
                if request.body_keys is not None and set(parsed) - request.body_keys:
                    unknown_keys = sorted(set(parsed) - request.body_keys)
                    problems.append(f"{where}: body keys not in the collection: {unknown_keys}")
        elif request.body == "binary":
            if not body:
                problems.append(f"{where}: an empty upload")
        elif request.body == "form":
            form = dict(parse_qsl(body.decode("utf-8", "replace"), keep_blank_values=True))
            if request.grant_type and form.get("grant_type") != request.grant_type:
                problems.append(f"{where}: grant_type is not {request.grant_type!r}")
            extra = set(form) - request.form_keys
            if extra:
                problems.append(f"{where}: form fields not in the collection: {sorted(extra)}")
            absent = request.form_keys - set(form) - {"client_secret", "client_id"}
            if request.grant_type == "client_credentials":
                absent = request.form_keys - set(form)
            if absent:
                problems.append(f"{where}: form fields missing: {sorted(absent)}")
        return problems


# -- the server ---------------------------------------------------------------------------


@dataclass
class Recorded:
    host: str
    method: str
    path: str
    query: list[tuple[str, str]]
    headers: dict[str, str]
    body: bytes
    status: int = 0
    response: Any = None


@dataclass
class Fault:
    status: int
    body: Any
    path_contains: str = ""
    times: int = 1


@dataclass
class _Cursor:
    records: list[dict[str, Any]]
    resource: str


@dataclass
class FakeSalesforce:
    """The fake's state: backend, tokens, faults, and everything it was sent."""

    contract: SalesforceContract
    public_key: str
    private_key: str
    backend: MockSalesforce = field(default_factory=MockSalesforce)
    login_url: str = ""
    instance_url: str = ""
    violations: list[str] = field(default_factory=list)
    requests: list[Recorded] = field(default_factory=list)
    token_grants: list[str] = field(default_factory=list)
    valid_tokens: set[str] = field(default_factory=set)
    faults: list[Fault] = field(default_factory=list)
    batch_size: int = MAX_BATCH
    api_used: int = 10_000
    expire_after: int | None = None
    """Expire every token after this many more REST requests (then None again)."""
    not_for_rest: bool = False
    """Answer every REST request 401 INVALID_SESSION_ID '... not valid for use with the
    REST API' (a token that a new login does not cure)."""
    bulk_polls_in_progress: int = 2
    """How many polls of a closed ingest job answer InProgress before its real state."""
    bulk_page_size: int | None = None
    """Rows per query-job results page when the client names no maxRecords (None: all)."""
    hold_results: threading.Event | None = None
    """When set: CSV results are sent in two parts, the header and first rows, then the
    rest once this event is set (or after a while, noted as False in ``results_held``),
    so a test can see a client yield rows before the whole body has come."""
    results_held: list[bool] = field(default_factory=list)
    _in_progress: dict[str, int] = field(default_factory=dict)
    _cursors: dict[str, _Cursor] = field(default_factory=dict)
    _ids: itertools.count[int] = field(default_factory=lambda: itertools.count(1))

    def reset(self) -> None:
        self.backend = MockSalesforce()
        self.violations.clear()
        self.requests.clear()
        self.token_grants.clear()
        self.valid_tokens.clear()
        self.faults.clear()
        self.batch_size = MAX_BATCH
        self.api_used = 10_000
        self.expire_after = None
        self.not_for_rest = False
        self.bulk_polls_in_progress = 2
        self.bulk_page_size = None
        self.hold_results = None
        self.results_held.clear()
        self._in_progress.clear()
        self._cursors.clear()

    def rest_requests(self, contains: str = "") -> list[Recorded]:
        return [r for r in self.requests if r.host == "instance" and contains in r.path]

    def fail_next(self, status: int, body: Any, *, path_contains: str = "", times: int = 1) -> None:
        self.faults.append(Fault(status, body, path_contains, times))

    @property
    def app(self) -> Starlette:
        return Starlette(
            routes=[
                Route(
                    "/{path:path}",
                    self._handle,
                    methods=["GET", "POST", "PATCH", "PUT", "DELETE", "HEAD"],
                )
            ]
        )

    async def _handle(self, request: Request) -> Response:
        port = request.url.port
        host = "login" if self.login_url.endswith(f":{port}") else "instance"
        raw_path = request.scope.get("raw_path", request.url.path.encode()).decode()
        body = await request.body()
        query = parse_qsl(request.url.query, keep_blank_values=True)
        headers = {k.lower(): v for k, v in request.headers.items()}
        record = Recorded(host, request.method, raw_path, query, headers, body)
        self.requests.append(record)
        response = self._answer(record)
        record.status = response.status_code
        if host == "instance":
            self.api_used += 1
            response.headers["Sforce-Limit-Info"] = f"api-usage={self.api_used}/{DAILY_LIMIT}"
        return response

    def _json(self, record: Recorded, status: int, body: Any) -> Response:
        record.response = body
        if status == 204:
            return Response(status_code=204)
        return JSONResponse(body, status_code=status)

    def _answer(self, record: Recorded) -> Response:
        spec, problems = self.contract.find(record)
        if spec is None:
            self.violations.extend(problems)
            return self._json(
                record, 400, [{"errorCode": "NOT_IN_CONTRACT", "message": "; ".join(problems)}]
            )
        if record.host == "login":
            return self._token(record)
        auth = record.headers.get("authorization", "")
        if not auth.startswith("Bearer "):
            self.violations.append(f"{record.method} {record.path}: no bearer token")
            return self._json(
                record,
                401,
                [{"errorCode": "INVALID_SESSION_ID", "message": "Session expired or invalid"}],
            )
        if self.not_for_rest:
            return self._json(record, 401, [{
                "errorCode": "INVALID_SESSION_ID",
                "message": "This session is not valid for use with the REST API",
            }])  # fmt: skip
        if self.expire_after is not None:
            if self.expire_after <= 0:
                self.valid_tokens.clear()
                self.expire_after = None
            else:
                self.expire_after -= 1
        if auth.removeprefix("Bearer ") not in self.valid_tokens:
            return self._json(
                record,
                401,
                [{"errorCode": "INVALID_SESSION_ID", "message": "Session expired or invalid"}],
            )
        for fault in self.faults:
            if (
                fault.times > 0
                and fault.path_contains in record.path
                and fault.path_contains != "/services/oauth2/token"
            ):
                fault.times -= 1
                return self._json(record, fault.status, fault.body)
        try:
            return self._rest(record, spec)
        except ConnectorError as error:
            status = int(error.details.get("status", 400))
            if status == 300:
                return self._json(record, 300, error.details.get("matches", []))
            items = [
                {k: v for k, v in e.items() if k != "fields" or v}
                for e in error.details.get("errors", [])
            ]
            return self._json(record, status, items)

    # -- the token endpoint -------------------------------------------------------------

    def _token(self, record: Recorded) -> Response:
        form = dict(parse_qsl(record.body.decode(), keep_blank_values=True))
        grant = form.get("grant_type", "")
        self.token_grants.append(grant)
        for fault in self.faults:
            if fault.times > 0 and fault.path_contains == "/services/oauth2/token":
                fault.times -= 1
                # An injected answer may quote what the form sent (a careless proxy).
                body = json.loads(json.dumps(fault.body).replace("{form}", record.body.decode()))
                return self._json(record, fault.status, body)

        def refuse(error: str, description: str) -> Response:
            return self._json(record, 400, {"error": error, "error_description": description})

        if grant == JWT_GRANT:
            try:
                claims = jwt.decode(
                    form.get("assertion", ""),
                    self.public_key,
                    algorithms=["RS256"],
                    audience=self.login_url,
                    issuer=CLIENT_ID,
                    options={"require": ["exp", "iss", "sub", "aud"]},
                )
            except jwt.PyJWTError as exc:
                return refuse("invalid_grant", f"assertion refused: {type(exc).__name__}")
            if claims.get("sub") != USERNAME:
                return refuse("invalid_grant", "user hasn't approved this consumer")
            if claims["exp"] > time.time() + 300:
                return refuse("invalid_grant", "expiration too far in the future")
        elif grant == "client_credentials":
            if form.get("client_id") != CLIENT_ID or form.get("client_secret") != CLIENT_SECRET:
                return refuse("invalid_client", "invalid client credentials")
        elif grant == "refresh_token":
            if form.get("client_id") != CLIENT_ID or form.get("refresh_token") != REFRESH_TOKEN:
                return refuse("invalid_grant", "expired access/refresh token")
        else:
            return refuse("unsupported_grant_type", "grant type not supported")
        token = f"00Dfake!{secrets.token_urlsafe(24)}"
        self.valid_tokens.add(token)
        return self._json(
            record,
            200,
            {
                "access_token": token,
                "instance_url": self.instance_url,
                "id": f"{self.login_url}/id/00Dfake000000001/005fake000000001",
                "token_type": "Bearer",
                "issued_at": str(int(time.time() * 1000)),
                "signature": secrets.token_urlsafe(32),
            },
        )

    # -- REST ---------------------------------------------------------------------------

    def _rest(self, record: Recorded, spec: ContractRequest) -> Response:
        backend = self.backend
        segments = [unquote(s) for s in record.path.split("/") if s][3:]  # after vXX.X
        query = dict(record.query)
        source = spec.source
        body = json.loads(record.body) if record.body and spec.body == "json" else None
        if source in ("rest/query.json", "rest/queryall.json"):
            total, records = backend.query_now(
                query["q"], include_deleted=source.endswith("all.json")
            )
            resource = "queryAll" if source.endswith("all.json") else "query"
            return self._json(record, 200, self._batch(total, records, resource))
        if source.startswith("README: nextRecordsUrl"):
            locator = segments[1]
            cursor = self._cursors.get(locator.split("-")[0])
            if cursor is None:
                return self._json(
                    record,
                    400,
                    [{"errorCode": "INVALID_QUERY_LOCATOR", "message": "invalid query locator"}],
                )
            offset = int(locator.split("-")[1])
            return self._json(record, 200, self._page(locator.split("-")[0], cursor, offset))
        if source == "rest/limit.json":
            return self._json(record, 200, {
                "DailyApiRequests": {"Max": DAILY_LIMIT, "Remaining": DAILY_LIMIT - self.api_used},
                "DataStorageMB": {"Max": 5, "Remaining": 5},
            })  # fmt: skip
        if source == "rest/describe_global.json":
            return self._json(record, 200, backend.describe_global_now().model_dump(by_alias=True))
        if source == "rest/sobject_describe.json":
            return self._json(record, 200, backend._describe(segments[1]).model_dump(by_alias=True))
        if source == "rest/sobject_create.json":
            return self._json(
                record, 201, backend.create_now(segments[1], body).model_dump(exclude={"created"})
            )
        if source in ("rest/sobject_get_updated.json", "rest/sobject_get_deleted.json"):
            start, end = (datetime.fromisoformat(query[k]) for k in ("start", "end"))
            if source.endswith("updated.json"):
                result = backend.updated_now(segments[1], start, end)
            else:
                result = backend.deleted_now(segments[1], start, end)
            return self._json(record, 200, result.model_dump(mode="json", by_alias=True))
        if source == "rest/sobject_rows.json":
            found = backend.get_now(segments[1], segments[2])
            if found is None:
                return self._json(
                    record,
                    404,
                    [
                        {
                            "errorCode": "NOT_FOUND",
                            "message": "The requested resource does not exist",
                        }
                    ],
                )
            return self._json(record, 200, found)
        if source == "rest/sobject_rows_update.json":
            if not backend.update_now(segments[1], segments[2], body):
                return self._json(
                    record,
                    404,
                    [
                        {
                            "errorCode": "NOT_FOUND",
                            "message": "The requested resource does not exist",
                        }
                    ],
                )
            return self._json(record, 204, None)
        if source == "rest/sobject_rows_delete.json":
            if not backend.delete_now(segments[1], segments[2]):
                return self._json(
                    record,
                    404,
                    [{"errorCode": "ENTITY_IS_DELETED", "message": "entity is deleted"}],
                )
            return self._json(record, 204, None)
        if source == "README: upsert by external id":
            result = backend.upsert_now(segments[1], segments[2], segments[3], body)
            status = 201 if result.created else 200
            return self._json(record, status, result.model_dump())
        if source.startswith(("bulk_v2/", "query/")):
            return self._bulk(record, source, segments, query, body)
        if source == "composite/composite.json":
            return self._composite(record, body)
        if source.startswith("composite/sobject_collections") or source.startswith(
            "README: sObject collections"
        ):
            return self._collections(record, source, segments, query, body)
        self.violations.append(
            f"{record.method} {record.path}: in the collection ({source}), not served by the fake"
        )
        return self._json(record, 501, [{"errorCode": "NOT_IMPLEMENTED", "message": source}])

    def _bulk(
        self,
        record: Recorded,
        source: str,
        segments: list[str],
        query: dict[str, str],
        body: Any,
    ) -> Response:
        backend = self.backend
        kind = "query" if source.startswith("query/") else "ingest"
        name = source.split("/", 1)[1]
        if name in ("create_job.json", "create_job_query.json"):
            if kind == "query" and body.get("operation") not in ("query", "queryAll"):
                self.violations.append(f"{record.path}: operation {body.get('operation')!r}")
            return self._json(record, 200, backend.bulk_create_now(kind, body))
        job_id = segments[2]
        if name == "upload_job_data.json":
            backend.bulk_upload_now(job_id, record.body.decode("utf-8"))
            return Response(status_code=201)
        if name in ("close_or_abort_a_job.json", "abort_a_job_query.json"):
            info = backend.bulk_state_now(kind, job_id, str(body.get("state")))
            if info["state"] == "JobComplete":
                self._in_progress[job_id] = self.bulk_polls_in_progress
                info = {**info, "state": "UploadComplete"}
            return self._json(record, 200, info)
        if name in ("get_job_info.json", "get_job_info_query.json"):
            info = backend.bulk_job_now(kind, job_id)
            left = self._in_progress.get(job_id, 0)
            if left > 0:  # Salesforce takes a while: the job shows InProgress meanwhile
                self._in_progress[job_id] = left - 1
                info = {**info, "state": "InProgress", "numberRecordsProcessed": 0}
            return self._json(record, 200, info)
        if name in ("delete_job.json", "delete_job_query.json"):
            backend.bulk_delete_now(kind, job_id)
            return self._json(record, 204, None)
        if name == "get_job_query_result.json":
            wanted = query.get("maxRecords") or self.bulk_page_size
            text, locator, count = backend.bulk_query_page_now(
                job_id, query.get("locator") or None, int(wanted) if wanted else None
            )
            record.response = {"locator": locator, "records": count}
            return self._csv(
                text, {"Sforce-Locator": locator or "null", "Sforce-NumberOfRecords": str(count)}
            )
        which = {
            "get_job_successful_record_results.json": "successfulResults",
            "get_job_failed_record_results.json": "failedResults",
            "get_job_unprocessed_record_results.json": "unprocessedrecords",
        }.get(name)
        if which is None:
            self.violations.append(f"{record.path}: in the collection ({source}), not served")
            return self._json(record, 501, [{"errorCode": "NOT_IMPLEMENTED", "message": source}])
        return self._csv(backend.bulk_results_now(job_id, which), {})

    def _csv(self, text: str, headers: dict[str, str]) -> Response:
        event = self.hold_results
        if event is None:
            return Response(text, media_type="text/csv", headers=headers)
        lines = text.splitlines(keepends=True)
        held = self.results_held

        async def parts() -> AsyncIterator[str]:
            yield "".join(lines[:10])
            held.append(await asyncio.to_thread(event.wait, 10))
            yield "".join(lines[10:])

        return StreamingResponse(parts(), media_type="text/csv", headers=headers)

    def _composite(self, record: Recorded, body: dict[str, Any]) -> Response:
        subrequests = body.get("compositeRequest")
        data_path = f"/services/data/v{self.backend.api_version}"
        problems = []
        if not isinstance(subrequests, list) or not 1 <= len(subrequests) <= MAX_COMPOSITE:
            problems.append(f"compositeRequest must hold 1 to {MAX_COMPOSITE} subrequests")
            subrequests = []
        for sub in subrequests:
            # Each subrequest is itself a request the collection must describe.
            method, url = str(sub.get("method", "")), str(sub.get("url", ""))
            path, _, query = url.partition("?")
            if not path.startswith(f"{data_path}/") or not isinstance(sub.get("referenceId"), str):
                problems.append(f"subrequest {sub!r}: a url under {data_path} and a referenceId")
                continue
            resolved = re.sub(r"@\{[^}]+\}", "001000000000000AAA", path)
            content = json.dumps(sub["body"]).encode() if "body" in sub else b""
            inner = Recorded(
                "instance", method, resolved, parse_qsl(query, keep_blank_values=True),
                {"content-type": "application/json"} if content else {}, content,
            )  # fmt: skip
            spec, found = self.contract.find(inner)
            if spec is None:
                problems.extend(f"composite subrequest: {p}" for p in found)
        if problems:
            self.violations.extend(problems)
            return self._json(
                record, 400, [{"errorCode": "NOT_IN_CONTRACT", "message": "; ".join(problems)}]
            )
        answer = self.backend.composite_now(data_path, subrequests, bool(body.get("allOrNone")))
        return self._json(record, 200, answer)

    def _collections(
        self,
        record: Recorded,
        source: str,
        segments: list[str],
        query: dict[str, str],
        body: Any,
    ) -> Response:
        backend = self.backend
        if source.endswith("delete.json"):
            ids = [i for i in query.get("ids", "").split(",") if i]
            if not 1 <= len(ids) <= MAX_COLLECTION:
                self.violations.append(f"{record.path}: ids must hold 1 to {MAX_COLLECTION}")
                return self._json(record, 400, [{"errorCode": "EXCEEDED_ID_LIMIT",
                                                 "message": "too many ids"}])  # fmt: skip
            all_or_none = query.get("allOrNone", "false") == "true"
            return self._json(record, 200, backend.collection_now(
                "delete", ids, all_or_none=all_or_none))  # fmt: skip
        records = body.get("records")
        if not isinstance(records, list) or not 1 <= len(records) <= MAX_COLLECTION:
            self.violations.append(f"{record.path}: records must hold 1 to {MAX_COLLECTION}")
            return self._json(record, 400, [{"errorCode": "EXCEEDED_ID_LIMIT",
                                             "message": "too many records"}])  # fmt: skip
        untyped = [r for r in records if not (r.get("attributes") or {}).get("type")]
        if untyped:
            self.violations.append(f"{record.path}: records without attributes.type")
            return self._json(record, 400, [{"errorCode": "INVALID_TYPE",
                                             "message": "attributes.type missing"}])  # fmt: skip
        all_or_none = bool(body.get("allOrNone"))
        if source.endswith("create.json"):
            answer = backend.collection_now("create", records, all_or_none=all_or_none)
        elif source.endswith("update.json"):
            answer = backend.collection_now(
                "update", records, all_or_none=all_or_none, sobject=segments[2]
            )
        else:
            answer = backend.collection_now(
                "upsert", records, all_or_none=all_or_none, sobject=segments[2],
                external_id_field=segments[3],
            )  # fmt: skip
        return self._json(record, 200, answer)

    def _batch(self, total: int, records: list[dict[str, Any]], resource: str) -> dict[str, Any]:
        locator = f"01gFAKE{next(self._ids):08d}"
        cursor = _Cursor(records, resource)
        self._cursors[locator] = cursor
        page = self._page(locator, cursor, 0)
        page["totalSize"] = total
        return page

    def _page(self, locator: str, cursor: _Cursor, offset: int) -> dict[str, Any]:
        size = min(self.batch_size, MAX_BATCH)
        chunk = cursor.records[offset : offset + size]
        done = offset + size >= len(cursor.records)
        page: dict[str, Any] = {"totalSize": len(cursor.records), "done": done, "records": chunk}
        if not done:
            version = self.backend.api_version
            page["nextRecordsUrl"] = (
                f"/services/data/v{version}/{cursor.resource}/{locator}-{offset + size}"
            )
        return page


class FakeSalesforceServer:
    """Serves a FakeSalesforce on two ports: the login host and the instance host."""

    def __init__(self, fake: FakeSalesforce) -> None:
        self.fake = fake
        app = fake.app
        self._login = AsgiServer(app)
        self._instance = AsgiServer(app)
        fake.login_url = self._login.url
        fake.instance_url = self._instance.url

    def start(self) -> None:
        self._login.start()
        self._instance.start()

    def stop(self) -> None:
        self._login.stop()
        self._instance.stop()


def managed_config(fake: FakeSalesforce, auth: Any = "jwt_bearer", **overrides: Any) -> Any:
    """A SalesforceConfig logging in to the fake with ``auth`` (a login the fake knows
    by its type, or auth fields as given), quick retries."""
    from connector_adapters.salesforce import SalesforceConfig

    logins: dict[str, dict[str, Any]] = {
        "jwt_bearer": {
            "type": "jwt_bearer", "client_id": CLIENT_ID, "username": USERNAME,
            "private_key": fake.private_key,
        },
        "client_credentials": {
            "type": "client_credentials", "client_id": CLIENT_ID, "client_secret": CLIENT_SECRET,
        },
        "refresh_token": {
            "type": "refresh_token", "client_id": CLIENT_ID, "refresh_token": REFRESH_TOKEN,
        },
    }  # fmt: skip
    fields: dict[str, Any] = {
        "login_url": fake.login_url,
        "auth": logins[auth] if isinstance(auth, str) else auth,
        "retry": {"initial_delay": 0.01, "max_delay": 0.05, "max_attempts": 3},
    }
    fields.update(overrides)
    return SalesforceConfig.model_validate(fields)


__all__ = [
    "CLIENT_ID",
    "CLIENT_SECRET",
    "REFRESH_TOKEN",
    "USERNAME",
    "FakeSalesforce",
    "FakeSalesforceServer",
    "SalesforceContract",
    "contract_dir",
    "make_key_pair",
    "managed_config",
]
