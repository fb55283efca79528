"""A real HTTP server for the tests: a Starlette app served by uvicorn on 127.0.0.1 in a
thread (session scope), with state the tests read and steer."""

from __future__ import annotations

import asyncio
import json
import socket
import threading
import time
import zlib
from collections import Counter
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import dataclass, field
from email.utils import formatdate
from typing import Any
from urllib.parse import parse_qsl

import jwt
import pytest
import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, Response, StreamingResponse
from starlette.routing import Route

CLIENT_ID = "client-7f3a"
CLIENT_SECRET = "csecret-9b1d2e4f6a8c"
API_KEY = "key-5c7e9a1b3d"
BEARER = "bearer-tok-2e4a6c8e0f"

ITEMS = [{"id": i} for i in range(53)]  # 6 pages of 10 (the last one short)


@dataclass
class ServerState:
    hits: Counter[str] = field(default_factory=Counter)
    seen_headers: list[dict[str, str]] = field(default_factory=list)
    seen_queries: list[dict[str, str]] = field(default_factory=list)
    client_ports: list[int] = field(default_factory=list)
    # OAuth2
    expires_in: float = 3600
    lifetimes: list[float] = field(default_factory=list)  # of the next tokens, then expires_in
    token_status: int = 0  # when set, the token endpoint answers this status
    token_delay: float = 0.0
    token_seq: int = 0
    tokens: dict[str, float] = field(default_factory=dict)  # token -> expiry (monotonic)
    revoke_first_token: bool = False
    api_rejects_all: bool = False
    refresh_token: str = "rt-initial-1a2b3c"
    rotate_refresh: bool = False
    grants: list[dict[str, str]] = field(default_factory=list)
    jwt_public_key: Any = None
    jwt_claims: list[dict[str, Any]] = field(default_factory=list)
    # When set, the token endpoint answers (status, JSON body) whatever it is sent.
    token_answer: tuple[int, str] | None = None
    token_trickle: bool = False  # the token endpoint sends its answer a byte at a time
    # Body bytes the streaming routes managed to send, by route.
    sent: Counter[str] = field(default_factory=Counter)
    # GraphQL
    mutation_fails: bool = False


STATE = ServerState()


def _count(request: Request, key: str) -> int:
    STATE.hits[key] += 1
    STATE.seen_headers.append(dict(request.headers))
    STATE.seen_queries.append(dict(request.query_params))
    if request.client is not None:
        STATE.client_ports.append(request.client.port)
    return STATE.hits[key]


async def health(request: Request) -> Response:
    _count(request, "health")
    return JSONResponse({"ok": True})


async def echo(request: Request) -> Response:
    _count(request, f"echo:{request.method}")
    body = await request.body()
    return JSONResponse(
        {
            "method": request.method,
            "headers": dict(request.headers),
            "correlation_ids": request.headers.getlist("x-correlation-id"),
            "query": dict(request.query_params),
            "body": body.decode(),
        },
        headers={"X-Request-ID": "req-echo-1"},
    )


async def status(request: Request) -> Response:
    code = int(request.path_params["code"])
    _count(request, f"status:{code}")
    say = request.query_params.get("say") or request.headers.get("x-say", "")
    headers = {"X-Request-ID": f"req-{code}"}
    if code in (429, 503) and "retry_after" in request.query_params:
        headers["Retry-After"] = request.query_params["retry_after"]
    body = json.dumps({"error": f"status {code}", "say": say, "pad": "x" * 2000})
    return Response(body, status_code=code, headers=headers, media_type="application/json")


async def echo_error(request: Request) -> Response:
    """A careless error page that prints the request's headers, as some servers do."""
    code = int(request.path_params["code"])
    _count(request, f"echo_error:{code}")
    lines = "\n".join(f"{k}: {v}" for k, v in request.headers.items())
    return PlainTextResponse(f"Error {code}. Your request:\n{lines}\n", status_code=code)


def nested(depth: int) -> str:
    """A JSON array nested ``depth`` levels deep: [[[...]]]."""
    return "[" * depth + "]" * depth


async def deep(request: Request) -> Response:
    _count(request, "deep")
    depth = int(request.query_params.get("depth", "100000"))
    code = int(request.query_params.get("code", "200"))
    return Response(nested(depth), status_code=code, media_type="application/json")


async def flaky(request: Request) -> Response:
    """The first ``fail`` calls of ``key`` answer ``code``; later ones 200."""
    key = request.path_params["key"]
    n = _count(request, f"flaky:{key}")
    if n <= int(request.query_params.get("fail", "1")):
        code = int(request.query_params.get("code", "503"))
        headers = {}
        if "retry_after" in request.query_params:
            headers["Retry-After"] = request.query_params["retry_after"]
        if "reset" in request.query_params:
            headers["X-RateLimit-Reset"] = request.query_params["reset"]
        return JSONResponse({"error": "try later"}, status_code=code, headers=headers)
    return JSONResponse({"hits": n})


async def slow(request: Request) -> Response:
    _count(request, "slow")
    await asyncio.sleep(float(request.query_params.get("delay", "1")))
    return JSONResponse({"slow": True})


def counted_body(request: Request, key: str, total: int) -> AsyncIterator[bytes]:
    """``total`` bytes in 64 KiB chunks, counted in ``STATE.sent[key]`` as they go, until
    the client goes away (uvicorn drops what is sent after that without a word)."""
    chunk = b"x" * 65536

    async def body() -> AsyncIterator[bytes]:
        sent = 0
        while sent < total and not await request.is_disconnected():
            piece = chunk[: total - sent]
            yield piece
            sent += len(piece)
            STATE.sent[key] += len(piece)

    return body()


def _megabytes(request: Request, default: str = "50") -> int:
    return int(float(request.query_params.get("mb", default)) * 1024 * 1024)


async def big(request: Request) -> Response:
    _count(request, "big")
    total = _megabytes(request)
    return StreamingResponse(
        counted_body(request, "big", total),
        media_type="application/octet-stream",
        headers={"Content-Length": str(total)},
    )


async def big_error(request: Request) -> Response:
    """A 500 whose body is ``mb`` megabytes long."""
    _count(request, "big_error")
    total = _megabytes(request)
    return StreamingResponse(
        counted_body(request, "big_error", total),
        status_code=500,
        media_type="text/plain",
        headers={"Content-Length": str(total)},
    )


async def big_redirect(request: Request) -> Response:
    """A 302 to ``to`` whose own body is ``mb`` megabytes long."""
    _count(request, "big_redirect")
    total = _megabytes(request)
    headers = {"Content-Length": str(total), "Location": request.query_params["to"]}
    return StreamingResponse(
        counted_body(request, "big_redirect", total), status_code=302, headers=headers
    )


_GZIPPED_ZEROS: dict[int, bytes] = {}


def gzipped_zeros(total: int) -> bytes:
    """``total`` zero bytes, gzip-compressed (400 MB make about 400 KB)."""
    if total not in _GZIPPED_ZEROS:
        packer = zlib.compressobj(6, zlib.DEFLATED, 31)
        block = bytes(1024 * 1024)
        parts = [packer.compress(block[: min(len(block), total - done)])
                 for done in range(0, total, len(block))]  # fmt: skip
        _GZIPPED_ZEROS[total] = b"".join([*parts, packer.flush()])
    return _GZIPPED_ZEROS[total]


async def gzip_bomb(request: Request) -> Response:
    _count(request, "gzip_bomb")
    body = gzipped_zeros(_megabytes(request))
    headers = {"Content-Encoding": "gzip"}
    return Response(body, media_type="application/octet-stream", headers=headers)


def trickle_bytes(request: Request, every: float) -> AsyncIterator[bytes]:
    """One byte every ``every`` seconds, for up to ten minutes or until the client goes."""

    async def body() -> AsyncIterator[bytes]:
        ends = time.monotonic() + 600
        while time.monotonic() < ends and not await request.is_disconnected():
            yield b" "
            await asyncio.sleep(every)

    return body()


async def trickle(request: Request) -> Response:
    """A body that never ends but never goes silent long enough for a read timeout."""
    _count(request, "trickle")
    every = float(request.query_params.get("every", "0.2"))
    return StreamingResponse(trickle_bytes(request, every), media_type="application/json")


async def key_check(request: Request) -> Response:
    _count(request, "key")
    given = request.headers.get("api_access_token") or request.query_params.get("api_key")
    if given != API_KEY:
        # A careless server that echoes what it was given: our errors must scrub it.
        return JSONResponse({"error": "bad key", "given": given}, status_code=401)
    return JSONResponse({"ok": True})


# -- OAuth2 ------------------------------------------------------------------------------


def _issue() -> dict[str, Any]:
    STATE.token_seq += 1
    token = f"at-{STATE.token_seq}-{time.monotonic_ns()}"
    lifetime = STATE.lifetimes.pop(0) if STATE.lifetimes else STATE.expires_in
    STATE.tokens[token] = time.monotonic() + lifetime
    if STATE.revoke_first_token and STATE.token_seq == 1:
        del STATE.tokens[token]
    return {"access_token": token, "token_type": "Bearer", "expires_in": lifetime}


async def oauth_token(request: Request) -> Response:
    STATE.hits["token"] += 1
    form = dict(parse_qsl((await request.body()).decode()))
    STATE.grants.append(form)
    if STATE.token_delay:
        await asyncio.sleep(STATE.token_delay)
    if STATE.token_trickle:
        return StreamingResponse(trickle_bytes(request, 0.2), media_type="application/json")
    if STATE.token_answer is not None:
        code, text = STATE.token_answer
        return Response(text, status_code=code, media_type="application/json")
    if STATE.token_status:
        # Careless too: it echoes the Authorization header it was sent.
        echo = request.headers.get("authorization", "")
        return JSONResponse(
            {"error": "temporarily_unavailable", "echo": echo}, status_code=STATE.token_status
        )
    grant = form.get("grant_type")
    auth = request.headers.get("authorization", "")
    if grant == "client_credentials":
        basic_ok = auth.startswith("Basic ")
        if basic_ok:
            import base64

            cid, _, secret = base64.b64decode(auth[6:]).decode().partition(":")
        else:
            cid, secret = form.get("client_id", ""), form.get("client_secret", "")
        if (cid, secret) != (CLIENT_ID, CLIENT_SECRET):
            return JSONResponse(
                {"error": "invalid_client", "error_description": f"bad secret {secret}"},
                status_code=401,
            )
        return JSONResponse(_issue())
    if grant == "refresh_token":
        if form.get("refresh_token") != STATE.refresh_token:
            return JSONResponse({"error": "invalid_grant"}, status_code=400)
        payload = _issue()
        if STATE.rotate_refresh:
            STATE.refresh_token = f"rt-rotated-{STATE.token_seq}"
            payload["refresh_token"] = STATE.refresh_token
        return JSONResponse(payload)
    if grant == "urn:ietf:params:oauth:grant-type:jwt-bearer":
        try:
            claims = jwt.decode(
                form.get("assertion", ""),
                STATE.jwt_public_key,
                algorithms=["RS256"],
                audience=str(request.base_url).rstrip("/"),
            )
        except jwt.PyJWTError as exc:
            return JSONResponse(
                {"error": "invalid_grant", "error_description": str(exc)}, status_code=400
            )
        STATE.jwt_claims.append(claims)
        payload = _issue()
        del payload["expires_in"]  # Salesforce gives none
        payload["instance_url"] = str(request.base_url)
        return JSONResponse(payload)
    return JSONResponse({"error": "unsupported_grant_type"}, status_code=400)


async def protected(request: Request) -> Response:
    _count(request, "api")
    auth = request.headers.get("authorization", "")
    token = auth.removeprefix("Bearer ")
    expiry = STATE.tokens.get(token)
    if STATE.api_rejects_all or expiry is None or expiry < time.monotonic():
        return JSONResponse(
            {"error": "invalid_token", "echo": auth},
            status_code=401,
            headers={"WWW-Authenticate": "Bearer"},
        )
    if request.method == "POST":
        return JSONResponse({"created": True}, status_code=201)
    return JSONResponse({"ok": True})


# -- pagination --------------------------------------------------------------------------


async def pages(request: Request) -> Response:
    _count(request, "pages")
    page = int(request.query_params.get("page", "1"))
    size = int(request.query_params.get("per_page", "10"))
    return JSONResponse({"data": ITEMS[(page - 1) * size : page * size], "page": page})


async def pages_stuck(request: Request) -> Response:
    n = _count(request, "pages_stuck")
    # Ignores ?page; the body still differs on every call, as a timestamp would make it.
    return JSONResponse({"data": ITEMS[:10], "request": n, "at": time.time_ns()})


async def offset_stuck(request: Request) -> Response:
    n = _count(request, "offset_stuck")
    return JSONResponse({"items": ITEMS[:10], "request_id": f"r-{n}"})  # ignores ?offset


def _bearer(request: Request) -> str:
    return request.headers.get("authorization", "").removeprefix("Bearer ")


async def cursor_echo(request: Request) -> Response:
    n = _count(request, "cursor_echo")
    # A careless server whose cursor is the caller's token: it repeats it on page 2.
    return JSONResponse(
        {"items": ITEMS[(n - 1) * 10 : n * 10], "meta": {"next_cursor": _bearer(request)}}
    )


async def next_url_echo(request: Request) -> Response:
    n = _count(request, "next_url_echo")
    nxt = f"/v1/next-url-echo?t={_bearer(request)}"
    return JSONResponse({"records": ITEMS[(n - 1) * 10 : n * 10], "nextRecordsUrl": nxt})


async def offset(request: Request) -> Response:
    _count(request, "offset")
    start = int(request.query_params.get("offset", "0"))
    limit = int(request.query_params.get("limit", "10"))
    return JSONResponse(ITEMS[start : start + limit])


async def cursor(request: Request) -> Response:
    _count(request, "cursor")
    start = int(request.query_params.get("cursor", "0") or 0)
    chunk = ITEMS[start : start + 10]
    nxt = str(start + 10) if start + 10 < len(ITEMS) else None
    return JSONResponse({"items": chunk, "meta": {"next_cursor": nxt}})


async def cursor_repeat(request: Request) -> Response:
    n = _count(request, "cursor_repeat")
    start = (n - 1) * 10
    # Page 1 says "abc", page 2 (fetched with abc) says "def", page 3 says "abc" again.
    nxt = ["abc", "def", "abc"][min(n - 1, 2)]
    return JSONResponse({"items": ITEMS[start : start + 10], "meta": {"next_cursor": nxt}})


async def next_url(request: Request) -> Response:
    _count(request, "next_url")
    page = int(request.query_params.get("page", "1"))
    chunk = ITEMS[(page - 1) * 10 : page * 10]
    nxt = f"/v1/next-url?page={page + 1}" if page * 10 < len(ITEMS) else None
    return JSONResponse({"records": chunk, "done": nxt is None, "nextRecordsUrl": nxt})


async def next_url_repeat(request: Request) -> Response:
    n = _count(request, "next_url_repeat")
    return JSONResponse(
        {"records": ITEMS[(n - 1) * 10 : n * 10], "nextRecordsUrl": "/v1/next-url-repeat?p=2"}
    )


async def next_url_foreign(request: Request) -> Response:
    _count(request, "next_url_foreign")
    return JSONResponse({"records": ITEMS[:10], "nextRecordsUrl": "http://evil.example/steal"})


async def links(request: Request) -> Response:
    _count(request, "links")
    page = int(request.query_params.get("page", "1"))
    chunk = ITEMS[(page - 1) * 10 : page * 10]
    headers = {}
    base = str(request.url).split("?")[0]
    if page * 10 < len(ITEMS):
        headers["Link"] = f'<{base}?page={page + 1}>; rel="next", <{base}?page=1>; rel="first"'
    return JSONResponse(chunk, headers=headers)


async def links_repeat(request: Request) -> Response:
    n = _count(request, "links_repeat")
    base = str(request.url).split("?")[0]
    return JSONResponse(
        ITEMS[(n - 1) * 10 : n * 10], headers={"Link": f'<{base}?page=2>; rel="next"'}
    )


# -- GraphQL -----------------------------------------------------------------------------

GQL_ITEMS = [{"id": f"n{i}", "name": f"item {i}"} for i in range(23)]


async def graphql(request: Request) -> Response:
    body = json.loads(await request.body())
    op = body.get("operationName")
    variables = body.get("variables") or {}
    _count(request, f"graphql:{op}")
    if op == "Hello":
        return JSONResponse({"data": {"hello": f"hi {variables.get('name')}"}})
    if op == "Broken":
        return JSONResponse(
            {
                "data": {"partial": 1},
                "errors": [
                    {"message": "Cannot query field 'nope'", "path": ["nope"]},
                    {"message": "second problem"},
                ],
            }
        )
    if op == "Unauth":
        return JSONResponse(
            {"errors": [{"message": "login", "extensions": {"code": "UNAUTHENTICATED"}}]}
        )
    if op in ("EchoAuth", "EchoAuthCoded"):
        # A careless server that puts the caller's token into its errors and data.
        auth = request.headers.get("authorization", "")
        error: dict[str, Any] = {
            "message": f"token {auth} is not allowed here",
            "extensions": {"seen": auth},
        }
        if op == "EchoAuthCoded":
            error["extensions"]["code"] = "FORBIDDEN"
        return JSONResponse({"data": {"whoami": auth}, "errors": [error]})
    if op == "FlakyQuery":
        if STATE.hits["graphql:FlakyQuery"] == 1:
            return JSONResponse({"error": "down"}, status_code=503)
        return JSONResponse({"data": {"ok": True}})
    if op in ("Http400", "Http401", "Http400Coded", "Http429"):
        # GraphQL over HTTP (application/graphql-response+json) and Apollo: 4xx + errors.
        code = {"Http400": 400, "Http401": 401, "Http400Coded": 400, "Http429": 429}[op]
        error = {"message": f"rejected with {code}", "locations": [{"line": 1, "column": 9}]}
        if op == "Http400Coded":
            error["extensions"] = {"code": "FORBIDDEN"}
        return Response(
            json.dumps({"data": None, "errors": [error]}),
            status_code=code,
            media_type="application/graphql-response+json",
        )
    if op == "Deep":  # not decodable: nested 100,000 levels
        return Response(nested(100_000), media_type="application/json")
    if op == "DeepHttp400":
        return Response(
            '{"errors": [' + nested(100_000) + "]}",
            status_code=400,
            media_type="application/graphql-response+json",
        )
    if op == "DeepErrors":  # decodable, but deeper than a recursive copy can go
        depth = int(variables.get("depth", 600))
        return Response(
            '{"errors": [{"message": "deep", "extensions": {"x": ' + nested(depth) + "}}]}",
            media_type="application/json",
        )
    if op == "Create":
        if STATE.mutation_fails:
            return JSONResponse({"error": "down"}, status_code=503)
        return JSONResponse({"data": {"create": {"id": "new-1"}}})
    if op in ("Items", "ItemsRepeat", "ItemsEchoCursor"):
        first = int(variables.get("first", 5))
        after = variables.get("after")
        if op == "ItemsEchoCursor":
            after = None
        start = 0 if after is None else int(after.removeprefix("c")) + 1
        chunk = GQL_ITEMS[start : start + first]
        end = f"c{start + len(chunk) - 1}" if chunk else None
        has_next = start + first < len(GQL_ITEMS)
        if op == "ItemsRepeat":
            end, has_next = "c4", True
        if op == "ItemsEchoCursor":  # a cursor that is the caller's token, repeated
            end, has_next = request.headers.get("authorization", ""), True
        return JSONResponse(
            {
                "data": {
                    "shop": {
                        "items": {
                            "edges": [
                                {"node": n, "cursor": f"c{GQL_ITEMS.index(n)}"} for n in chunk
                            ],
                            "pageInfo": {"hasNextPage": has_next, "endCursor": end},
                        }
                    }
                }
            }
        )
    return JSONResponse({"errors": [{"message": f"unknown operation {op}"}]}, status_code=400)


async def redirect(request: Request) -> Response:
    """Redirects (``code``, default 302) to ``to``: another origin, or a path here."""
    _count(request, "redirect")
    code = int(request.query_params.get("code", "302"))
    return Response(status_code=code, headers={"Location": request.query_params["to"]})


async def redirect_loop(request: Request) -> Response:
    _count(request, "redirect_loop")
    return Response(status_code=302, headers={"Location": "/v1/redirect-loop"})


async def http_date_limited(request: Request) -> Response:
    n = _count(request, "http_date")
    if n == 1:
        return JSONResponse(
            {"error": "slow down"},
            status_code=429,
            headers={"Retry-After": formatdate(time.time() + 2, usegmt=True)},
        )
    return PlainTextResponse("ok")


def build_app() -> Starlette:
    return Starlette(
        routes=[
            Route("/health", health),
            Route("/v1/health", health),
            Route("/v1/echo", echo, methods=["GET", "POST", "PUT", "PATCH", "DELETE"]),
            Route("/v1/status/{code:int}", status, methods=["GET", "POST"]),
            Route("/v1/echo-error/{code:int}", echo_error, methods=["GET", "POST"]),
            Route("/v1/flaky/{key}", flaky, methods=["GET", "POST", "PATCH", "PUT"]),
            Route("/v1/slow", slow),
            Route("/v1/big", big),
            Route("/v1/big-error", big_error),
            Route("/v1/big-redirect", big_redirect),
            Route("/v1/gzip-bomb", gzip_bomb),
            Route("/v1/trickle", trickle),
            Route("/v1/deep", deep),
            Route("/v1/key", key_check),
            Route("/oauth/token", oauth_token, methods=["POST"]),
            Route("/v1/protected", protected, methods=["GET", "POST"]),
            Route("/v1/pages", pages),
            Route("/v1/pages-stuck", pages_stuck),
            Route("/v1/offset-stuck", offset_stuck),
            Route("/v1/cursor-echo", cursor_echo),
            Route("/v1/next-url-echo", next_url_echo),
            Route("/v1/offset", offset),
            Route("/v1/cursor", cursor),
            Route("/v1/cursor-repeat", cursor_repeat),
            Route("/v1/next-url", next_url),
            Route("/v1/next-url-repeat", next_url_repeat),
            Route("/v1/next-url-foreign", next_url_foreign),
            Route("/v1/links", links),
            Route("/v1/links-repeat", links_repeat),
            Route("/v1/http-date", http_date_limited),
            Route("/v1/redirect", redirect, methods=["GET", "POST"]),
            Route("/v1/redirect-loop", redirect_loop),
            Route("/graphql", graphql, methods=["POST"]),
        ]
    )


class ThreadedServer:
    """uvicorn serving ``app`` on 127.0.0.1 (a free port) in a daemon thread."""

    def __init__(self, app: Any, **config: Any) -> None:
        self._sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self._sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self._sock.bind(("127.0.0.1", 0))
        self.port: int = self._sock.getsockname()[1]
        self.url = f"http://127.0.0.1:{self.port}"
        options: dict[str, Any] = {
            "log_level": "warning",
            "ws": "none",
            "lifespan": "off",
            "timeout_keep_alive": 30,
            **config,
        }
        self.server = uvicorn.Server(uvicorn.Config(app, **options))
        self._thread = threading.Thread(
            target=self.server.run, kwargs={"sockets": [self._sock]}, daemon=True
        )

    def start(self) -> None:
        self._thread.start()
        deadline = time.monotonic() + 15
        while not self.server.started:
            if time.monotonic() > deadline or not self._thread.is_alive():
                raise RuntimeError("the test HTTP server did not start")
            time.sleep(0.02)

    def stop(self) -> None:
        self.server.should_exit = True
        self._thread.join(10)
        self._sock.close()


@dataclass
class ForeignRecord:
    """What one request to the foreign server carried."""

    method: str
    path: str
    headers: dict[str, str]
    query: dict[str, str]
    body: str

    def text(self) -> str:
        """Everything it carried, as one string to search for secrets."""
        return json.dumps([self.method, self.path, self.headers, self.query, self.body])


FOREIGN: list[ForeignRecord] = []


async def foreign_any(request: Request) -> Response:
    FOREIGN.append(
        ForeignRecord(
            request.method,
            request.url.path,
            dict(request.headers),
            dict(request.query_params),
            (await request.body()).decode("utf-8", "replace"),
        )
    )
    return JSONResponse({"foreign": True})


def build_foreign_app() -> Starlette:
    """Another origin (its own port) that records everything it is sent."""
    methods = ["GET", "POST", "PUT", "PATCH", "DELETE"]
    return Starlette(routes=[Route("/{path:path}", foreign_any, methods=methods)])


@pytest.fixture(scope="session")
def foreign_server() -> Iterator[ThreadedServer]:
    srv = ThreadedServer(build_foreign_app())
    srv.start()
    yield srv
    srv.stop()


@pytest.fixture
def foreign(foreign_server: ThreadedServer) -> Iterator[list[ForeignRecord]]:
    """The requests the foreign server receives during the test."""
    FOREIGN.clear()
    yield FOREIGN
    FOREIGN.clear()


@pytest.fixture(scope="session")
def server() -> Iterator[ThreadedServer]:
    srv = ThreadedServer(build_app())
    srv.start()
    yield srv
    srv.stop()


@pytest.fixture(scope="session")
def serve_app() -> Callable[..., ThreadedServer]:
    """Make (not start) another server of the test app with extra uvicorn options."""

    def make(**config: Any) -> ThreadedServer:
        return ThreadedServer(build_app(), **config)

    return make


@pytest.fixture
def state(server: ThreadedServer) -> ServerState:
    """The server's state, fresh for each test."""
    fresh = ServerState()
    STATE.__dict__.update(fresh.__dict__)
    return STATE


@pytest.fixture
def base_url(server: ThreadedServer) -> str:
    return f"{server.url}/v1"
