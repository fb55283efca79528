"""Every Python code block of every README runs, as written, against the real services.

A block runs as a script of its own (``__name__ == "__main__"``, in a temporary working
directory) with the servers it says it needs in environment variables, the way a reader
would run it after ``make services``:

* ``PG_URL``: the PostgreSQL of the test services;
* ``KAFKA_BOOTSTRAP``: the Kafka broker (``host:port``);
* ``MONGO_URL``: the MongoDB-wire server (FerretDB here);
* ``API_URL``: a small HTTP API (JSON items paged by ``?page=``, an echo, a health path)
  started for these tests on 127.0.0.1.

An HTML comment on the line before the fence tells the collector about the block:

* ``<!-- example: needs postgres kafka mongo api -->``: the services it needs (the
  variables above);
* ``<!-- example: fragment -->``: a fragment (a signature, a piece of a class); it is only
  compiled, never run.

A block with no marker needs no service.
"""

from __future__ import annotations

import os
import re
import socket
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
READMES = [ROOT / "README.md", *sorted(ROOT.glob("packages/*/README.md"))]
_MARKER = re.compile(r"<!--\s*example:\s*(?P<what>[^>]*?)\s*-->")
SERVICES = {"postgres", "kafka", "mongo", "api"}


@dataclass(frozen=True)
class Block:
    path: Path
    line: int
    source: str
    fragment: bool
    needs: frozenset[str]

    @property
    def id(self) -> str:
        return f"{self.path.relative_to(ROOT)}:{self.line}"


def blocks(path: Path) -> list[Block]:
    found: list[Block] = []
    lines = path.read_text().splitlines()
    index = 0
    while index < len(lines):
        if lines[index].strip() != "```python":
            index += 1
            continue
        start = index + 1
        end = start
        while end < len(lines) and lines[end].strip() != "```":
            end += 1
        previous = next((lines[i] for i in range(index - 1, -1, -1) if lines[i].strip()), "")
        marker = _MARKER.search(previous)
        what = marker.group("what").split() if marker else []
        fragment = "fragment" in what
        needs = frozenset(w.strip(",") for w in what[1:]) if what[:1] == ["needs"] else frozenset()
        found.append(Block(path, start + 1, "\n".join(lines[start:end]) + "\n", fragment, needs))
        index = end + 1
    return found


ALL_BLOCKS = [block for readme in READMES for block in blocks(readme)]


def test_every_readme_has_runnable_examples() -> None:
    assert ALL_BLOCKS, "no README has a Python block"
    for readme in READMES:
        mine = [b for b in ALL_BLOCKS if b.path == readme]
        assert mine, f"{readme.relative_to(ROOT)} has no Python example"
        assert any(not b.fragment for b in mine), f"{readme.relative_to(ROOT)}: only fragments"
    unknown = {need for b in ALL_BLOCKS for need in b.needs} - SERVICES
    assert not unknown, f"unknown services in example markers: {unknown}"


# -- the example API ------------------------------------------------------------------------


def _api_app() -> object:
    from starlette.applications import Starlette
    from starlette.requests import Request
    from starlette.responses import JSONResponse, Response
    from starlette.routing import Route

    items = [{"id": i, "name": f"item {i}"} for i in range(1, 26)]

    async def health(request: Request) -> Response:
        return JSONResponse({"ok": True})

    async def list_items(request: Request) -> Response:
        page = int(request.query_params.get("page", "1"))
        size = int(request.query_params.get("per_page", "10"))
        return JSONResponse({"data": items[(page - 1) * size : page * size], "page": page})

    async def echo(request: Request) -> Response:
        body = await request.body()
        return JSONResponse(
            {"method": request.method, "body": body.decode(), "headers": dict(request.headers)}
        )

    async def item(request: Request) -> Response:
        wanted = int(request.path_params["id"])
        for found in items:
            if found["id"] == wanted:
                return JSONResponse(found)
        return JSONResponse({"error": f"no item {wanted}"}, status_code=404)

    return Starlette(
        routes=[
            Route("/health", health),
            Route("/v1/items", list_items),
            Route("/v1/items/{id:int}", item),
            Route("/v1/echo", echo, methods=["GET", "POST", "PUT", "DELETE"]),
        ]
    )


@pytest.fixture(scope="module")
def api_url() -> Iterator[str]:
    import uvicorn

    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    config = uvicorn.Config(_api_app(), log_level="warning", lifespan="off", ws="none")
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    deadline = time.monotonic() + 15
    while not server.started:
        if time.monotonic() > deadline:
            raise RuntimeError("the example API did not start")
        time.sleep(0.02)
    yield f"http://127.0.0.1:{port}"
    server.should_exit = True
    thread.join(10)
    sock.close()


# -- running the blocks -----------------------------------------------------------------------


@pytest.mark.parametrize("block", ALL_BLOCKS, ids=lambda b: b.id)
def test_readme_example(
    block: Block,
    request: pytest.FixtureRequest,
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
) -> None:
    code = compile(block.source, f"{block.path}:{block.line}", "exec", dont_inherit=True)
    if block.fragment:
        return  # compiled: the syntax is right; a fragment does not run on its own
    if "postgres" in block.needs:
        monkeypatch.setenv("PG_URL", request.getfixturevalue("postgres_url"))
    if "kafka" in block.needs:
        monkeypatch.setenv("KAFKA_BOOTSTRAP", request.getfixturevalue("kafka_bootstrap"))
    if "mongo" in block.needs:
        monkeypatch.setenv("MONGO_URL", request.getfixturevalue("mongo_url"))
    if "api" in block.needs:
        monkeypatch.setenv("API_URL", request.getfixturevalue("api_url"))
    monkeypatch.chdir(tmp_path)
    namespace: dict[str, object] = {
        "__name__": "__main__",
        "__file__": str(tmp_path / "example.py"),
    }
    exec(code, namespace)  # the README's own code, run as its reader would


def test_markers_are_understood() -> None:
    text = (
        "intro\n\n<!-- example: needs postgres, api -->\n```python\nx = 1\n```\n\n"
        "<!-- example: fragment -->\n\n```python\ndef f(\n```\n"
    )
    path = ROOT / "build" / "probe.md"
    os.makedirs(path.parent, exist_ok=True)
    try:
        path.write_text(text)
        first, second = blocks(path)
    finally:
        path.unlink()
        path.parent.rmdir()
    assert (first.needs, first.fragment, first.source) == (
        frozenset({"postgres", "api"}),
        False,
        "x = 1\n",
    )
    assert second.fragment
    assert first.line == 5
