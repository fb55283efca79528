"""A fake Chatwoot server held to Chatwoot's own OpenAPI document.

Every request is validated against ``application_swagger.json`` (path, method,
parameters, body schema, the ``api_access_token`` security header, and no query
parameter the document does not declare), and every response the fake sends is
validated against the document's response schemas. Anything outside the
document is recorded in ``violations``; the ``fake_chatwoot`` fixture fails the
test when that list is not empty.

Documented exceptions (see docs/decisions/0031-chatwoot-contract-fake-server.md):
* ``before``/``after`` on the messages listing: real server parameters the README
  beside the document lists but the document omits.
* 401 and 429 on operations whose responses do not list them: 401 bodies must still
  validate against ``bad_request_error``; 429 is rack-attack's ``text/plain``.
* 204 with no body where the document gives the 204 a JSON schema (HTTP forbids a
  body on 204).
* bodies a test injects with ``respond_next`` (malformed or hostile on purpose) are
  sent as given and not checked.

``change_before`` changes the backend between two requests of the client (another user
deleting or creating contacts mid-sync), and every answer's JSON body is recorded.
"""

from __future__ import annotations

import inspect
import json
import re
import socket
import threading
import time
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import uvicorn
from openapi_core import OpenAPI
from openapi_core.datatypes import RequestParameters
from openapi_schema_validator import OAS30Validator
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, Response
from starlette.routing import Route
from werkzeug.datastructures import Headers, ImmutableMultiDict

from connector_adapters.chatwoot import (
    ChatwootConfig,
    MockChatwoot,
)
from connector_adapters.chatwoot._mock_server import answer
from connector_core import RetrySettings

REPO_ROOT = Path(__file__).resolve().parents[3]
SPEC_HOST = "https://app.chatwoot.com"
TOKEN = "test-api-access-token-5f2c"
EXTRA_QUERY_PARAMS: dict[tuple[str, str], frozenset[str]] = {
    (
        "get",
        "/api/v1/accounts/{account_id}/conversations/{conversation_id}/messages",
    ): frozenset({"before", "after"}),
}
UNDOCUMENTED_STATUSES = frozenset({401, 429})


def contract_path(repo_root: Path) -> Path:
    """The vendored copy in the repository (contracts/README.md says where it comes from)."""
    return repo_root / "contracts" / "chatwoot" / "application_swagger.json"


class _Req:
    """The request shape openapi-core validates (multi-valued query parameters kept)."""

    def __init__(
        self,
        method: str,
        path: str,
        query: list[tuple[str, str]],
        headers: Mapping[str, str],
        body: bytes,
        content_type: str,
    ) -> None:
        self.host_url = SPEC_HOST
        self.method = method.lower()
        self.path = path
        self.body = body
        self.content_type = content_type
        self.parameters = RequestParameters(
            query=ImmutableMultiDict(query),
            header=Headers(dict(headers)),
            cookie=ImmutableMultiDict(),
        )


class _Resp:
    def __init__(self, status: int, body: bytes, content_type: str) -> None:
        self.status_code = status
        self.data = body
        self.content_type = content_type
        self.headers = Headers({"Content-Type": content_type} if content_type else {})


class ChatwootContract:
    """Chatwoot's OpenAPI document, loaded once, with request and response checks."""

    def __init__(self, path: Path) -> None:
        if not path.is_file():
            raise FileNotFoundError(
                f"Chatwoot's OpenAPI document is missing at {path}: the contract tests need "
                "contracts/chatwoot/application_swagger.json, vendored in the repository"
            )
        self.path = path
        self.document: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
        self.api = OpenAPI.from_dict(self.document)
        self._routes: list[tuple[re.Pattern[str], str]] = []
        for template in self.document["paths"]:
            pattern = re.sub(r"\\\{[^}]+\\\}", "[^/]+", re.escape(template))
            self._routes.append((re.compile(f"^{pattern}$"), template))
        # Literal segments beat parameters (contacts/search before contacts/{id}).
        self._routes.sort(key=lambda r: r[1].count("{"))
        schemas = self.document["components"]["schemas"]
        self.error_validator = OAS30Validator(
            {**schemas["bad_request_error"], "components": self.document["components"]}
        )

    def template(self, path: str) -> str | None:
        for pattern, template in self._routes:
            if pattern.match(path):
                return template
        return None

    def _param(self, param: Mapping[str, Any]) -> Mapping[str, Any]:
        ref = param.get("$ref")
        if ref:
            return self.document["components"]["parameters"][ref.rsplit("/", 1)[1]]  # type: ignore[no-any-return]
        return param

    def query_names(self, template: str, method: str) -> frozenset[str]:
        item = self.document["paths"][template]
        params = list(item.get("parameters", [])) + list(item[method].get("parameters", []))
        names = {self._param(p)["name"] for p in params if self._param(p)["in"] == "query"}
        return frozenset(names | EXTRA_QUERY_PARAMS.get((method, template), frozenset()))

    def check_request(self, req: _Req) -> list[str]:
        where = f"{req.method.upper()} {req.path}"
        template = self.template(req.path)
        if template is None:
            return [f"{where}: path not in the document"]
        if req.method not in self.document["paths"][template]:
            return [f"{where}: method not in the document for {template}"]
        problems = []
        unknown = {k for k, _ in req.parameters.query.items(multi=True)} - self.query_names(
            template, req.method
        )
        if unknown:
            problems.append(f"{where}: query parameters not in the document: {sorted(unknown)}")
        try:
            self.api.validate_request(req)
        except Exception as exc:
            detail = "; ".join(str(e) for e in getattr(exc, "schema_errors", ()) or [exc])
            problems.append(f"{where}: {type(exc).__name__}: {detail}")
        return problems

    def check_response(self, req: _Req, resp: _Resp) -> list[str]:
        where = f"{req.method.upper()} {req.path} -> {resp.status_code}"
        template = self.template(req.path)
        if template is None:
            return []  # already reported for the request
        operation = self.document["paths"][template].get(req.method, {})
        documented = operation.get("responses", {})
        if str(resp.status_code) not in documented:
            if resp.status_code == 429:
                return [] if resp.content_type.startswith("text/plain") else [f"{where}: 429 body"]
            if resp.status_code == 401:
                errors = [
                    e.message for e in self.error_validator.iter_errors(json.loads(resp.data))
                ]
                return [f"{where}: {e}" for e in errors]
            return [f"{where}: status not documented for this operation"]
        if resp.status_code == 204 and not resp.data:
            return []
        try:
            self.api.validate_response(req, resp)
        except Exception as exc:
            detail = "; ".join(str(e) for e in getattr(exc, "schema_errors", ()) or [exc])
            return [f"{where}: {type(exc).__name__}: {detail}"]
        return []


@dataclass
class Recorded:
    method: str
    path: str
    query: list[tuple[str, str]]
    headers: dict[str, str]
    body: Any
    status: int = 0
    response: Any = None
    """The JSON body the fake answered with (None for other bodies and injected faults)."""


@dataclass
class Fault:
    status: int
    retry_after: str | None = None
    path_contains: str = ""
    body: bytes | None = None
    """Sent as the (``application/json``) body instead of the usual answer, when set."""


BackendChange = Callable[[MockChatwoot], Awaitable[None] | None]


@dataclass
class Change:
    """Changes the backend just before the fake answers a matching request."""

    action: BackendChange
    method: str
    path_suffix: str
    query: dict[str, str] = field(default_factory=dict)
    times: int = 1

    def matches(self, method: str, path: str, query: list[tuple[str, str]]) -> bool:
        given = dict(query)
        return (
            self.times > 0
            and method == self.method
            and path.endswith(self.path_suffix)
            and all(given.get(k) == v for k, v in self.query.items())
        )


class FakeChatwoot:
    """The app and its state: a MockChatwoot backend, recorded requests, faults, violations."""

    def __init__(self, contract: ChatwootContract) -> None:
        self.contract = contract
        self.backend = MockChatwoot(account_id=1)
        self.requests: list[Recorded] = []
        self.violations: list[str] = []
        self.faults: list[Fault] = []
        self.changes: list[Change] = []
        self.url = ""
        self.app = Starlette(
            routes=[
                Route(
                    "/{path:path}",
                    self._handle,
                    methods=["GET", "POST", "PUT", "PATCH", "DELETE"],
                )
            ]
        )
        self._lock = threading.Lock()

    def reset(self) -> None:
        with self._lock:
            self.backend = MockChatwoot(account_id=1)
            self.requests = []
            self.violations = []
            self.faults = []
            self.changes = []

    def change_before(
        self,
        action: BackendChange,
        *,
        method: str = "GET",
        path_suffix: str = "/contacts",
        query: Mapping[str, str] | None = None,
        times: int = 1,
    ) -> None:
        """Run ``action(backend)`` just before answering each of the next ``times``
        requests that match (method, path suffix, and these query values): a change
        another Chatwoot user makes between two requests of the client under test."""
        with self._lock:
            self.changes.append(Change(action, method, path_suffix, dict(query or {}), times))

    def respond_next(self, body: bytes, *, path_contains: str = "", status: int = 200) -> None:
        """Answer the next matching request with ``body`` as ``application/json`` and
        ``status`` (a malformed or hostile response: it is exempt from the contract)."""
        with self._lock:
            self.faults.append(Fault(status, path_contains=path_contains, body=body))

    def fail_next(
        self,
        status: int,
        *,
        retry_after: str | None = None,
        times: int = 1,
        path_contains: str = "",
    ) -> None:
        """Answer the next ``times`` matching requests with ``status`` (401 or 429)."""
        with self._lock:
            self.faults.extend(Fault(status, retry_after, path_contains) for _ in range(times))

    def api_requests(self, path_suffix: str = "") -> list[Recorded]:
        return [r for r in self.requests if r.path.endswith(path_suffix)]

    # -- request handling ---------------------------------------------------------------

    async def _handle(self, request: Request) -> Response:
        raw = await request.body()
        headers = {k.lower(): v for k, v in request.headers.items()}
        query = list(request.query_params.multi_items())
        req = _Req(
            request.method,
            request.url.path,
            query,
            request.headers,
            raw,
            request.headers.get("content-type", "application/octet-stream").split(";")[0],
        )
        try:
            body = json.loads(raw) if raw else None
        except ValueError:
            body = raw.decode("utf-8", "replace")
        record = Recorded(request.method, request.url.path, query, headers, body)
        self.requests.append(record)
        problems = self.contract.check_request(req)
        if problems:
            self.violations.extend(problems)
            response: Response = JSONResponse(
                {"description": "request violates the contract", "errors": []}, status_code=400
            )
        else:
            await self._apply_changes(request.method, request.url.path, query)
            fault = self._fault(req.path)
            if fault is not None and fault.body is not None:
                record.status = fault.status
                return Response(fault.body, status_code=fault.status, media_type="application/json")
            response = await self._answer(req, request.method.lower(), headers, body, fault)
        record.status = response.status_code
        resp_body = bytes(response.body)
        ctype = (response.headers.get("content-type") or "").split(";")[0]
        if response.status_code == 204:
            ctype = ""
        if ctype == "application/json" and resp_body:
            record.response = json.loads(resp_body)
        self.violations.extend(
            self.contract.check_response(req, _Resp(response.status_code, resp_body, ctype))
        )
        return response

    async def _apply_changes(self, method: str, path: str, query: list[tuple[str, str]]) -> None:
        with self._lock:
            due = [c for c in self.changes if c.matches(method, path, query)]
            for change in due:
                change.times -= 1
        for change in due:
            result = change.action(self.backend)
            if inspect.isawaitable(result):
                await result

    def _fault(self, path: str) -> Fault | None:
        with self._lock:
            for index, fault in enumerate(self.faults):
                if fault.path_contains in path:
                    return self.faults.pop(index)
        return None

    async def _answer(
        self, req: _Req, method: str, headers: Mapping[str, str], body: Any, fault: Fault | None
    ) -> Response:
        if fault is not None:
            if fault.status == 429:
                extra = {"Retry-After": fault.retry_after} if fault.retry_after else {}
                return PlainTextResponse("Retry later\n", status_code=429, headers=extra)
            return JSONResponse(
                {"description": "injected", "errors": [{"message": "injected"}]},
                status_code=fault.status,
            )
        result = await answer(
            self.backend,
            token=TOKEN,
            method=method,
            path=req.path,
            query=list(req.parameters.query.items(multi=True)),
            headers=headers,
            body=body,
        )
        if result is None:
            self.violations.append(f"{method.upper()} {req.path}: documented but not faked")
            return JSONResponse({"description": "not implemented by the fake"}, status_code=400)
        if result.body is None:
            return Response(status_code=result.status)
        return JSONResponse(result.body, status_code=result.status)


class AsgiServer:
    """Serves an ASGI app with uvicorn on 127.0.0.1 (a free port) in a thread."""

    def __init__(self, app: Any) -> None:
        self._sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self._sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        # Accepted sockets inherit it: without it, Nagle + delayed ACK add ~40 ms per
        # response (uvicorn writes headers and body separately).
        self._sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self._sock.bind(("127.0.0.1", 0))
        port = self._sock.getsockname()[1]
        self.url = f"http://127.0.0.1:{port}"
        config = uvicorn.Config(app, log_level="warning", lifespan="off")
        self._server = uvicorn.Server(config)
        self._thread = threading.Thread(
            target=self._server.run, kwargs={"sockets": [self._sock]}, daemon=True
        )

    def start(self) -> None:
        self._thread.start()
        deadline = time.monotonic() + 10
        while not self._server.started:
            if time.monotonic() > deadline or not self._thread.is_alive():
                raise RuntimeError("the test server did not start")
            time.sleep(0.01)

    def stop(self) -> None:
        self._server.should_exit = True
        self._thread.join(timeout=10)
        self._sock.close()


class FakeChatwootServer(AsgiServer):
    """Serves a :class:`FakeChatwoot`."""

    def __init__(self, fake: FakeChatwoot) -> None:
        super().__init__(fake.app)
        self.fake = fake
        fake.url = self.url


def managed_config(url: str, **overrides: object) -> ChatwootConfig:
    fields: dict[str, object] = {
        "base_url": url,
        "account_id": 1,
        "api_access_token": TOKEN,
        "retry": RetrySettings(initial_delay=0.01, max_delay=0.05, max_attempts=3),
    }
    fields.update(overrides)
    return ChatwootConfig.model_validate(fields)


def served_contact_ids(requests: list[Recorded]) -> set[int]:
    """The ids of every contact the fake sent in these requests' answers (listings,
    searches, filters and reads by id)."""
    ids: set[int] = set()
    for record in requests:
        payload = record.response.get("payload") if isinstance(record.response, dict) else None
        if "/contacts" not in record.path:
            continue
        if isinstance(payload, list):
            ids.update(item["id"] for item in payload if isinstance(item, dict) and "id" in item)
        elif isinstance(payload, dict) and "id" in payload:
            ids.add(payload["id"])
    return ids


__all__ = [
    "AsgiServer",
    "BackendChange",
    "ChatwootContract",
    "FakeChatwoot",
    "FakeChatwootServer",
    "managed_config",
    "served_contact_ids",
]
