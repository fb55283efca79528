"""Faults: latency past the socket timeout, and the server killed mid-read."""

from __future__ import annotations

import contextlib
import fcntl
import os
import signal
import socket
import subprocess
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
from mongo_support import make_config, toxic
from pymongo.errors import PyMongoError

from connector_core import (
    ConnectionFailedError,
    ConnectorError,
    ConnectorTimeoutError,
    QueryError,
)
from connector_mongo import MongoConnector
from connector_testing import ToxiproxyClient, skip_or_fail

pytestmark = pytest.mark.integration

# ---------------------------------------------------------------- the FerretDB of scripts/services


def _repo_root() -> Path:
    for folder in Path(__file__).resolve().parents:
        if (folder / "scripts" / "services").is_file():
            return folder
    return Path.cwd()


def _services_run_dirs() -> list[Path]:
    """Where ``scripts/services`` may keep its pid files and logs (``.cache/services/run``):
    under ``SERVICES_CACHE_DIR`` when set, under the checkout whose ``scripts/services up``
    wrote the env file in use (a worktree's ``.services.env`` may link to another
    checkout's), and under this checkout."""
    caches: list[Path] = []
    if os.environ.get("SERVICES_CACHE_DIR"):
        caches.append(Path(os.environ["SERVICES_CACHE_DIR"]))
    root = _repo_root()
    env_file = os.environ.get("CONNECTOR_SERVICES_ENV") or str(root / ".services.env")
    if Path(env_file).is_file():
        caches.append(Path(env_file).resolve().parent / ".cache" / "services")
    caches.append(root / ".cache" / "services")
    runs: list[Path] = []
    for cache in caches:
        run = cache.resolve() / "run"
        if run not in runs:
            runs.append(run)
    return runs


def _cmdline(pid: int) -> list[str]:
    try:
        raw = Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return []
    return [part.decode(errors="surrogateescape") for part in raw.split(b"\0") if part]


def _alive(pid: int) -> bool:
    """Whether ``pid`` runs (a zombie, dead but not yet reaped, does not count)."""
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (OSError, IndexError):
        return False
    return state not in ("Z", "X")


def _answers(host: str, port: int) -> bool:
    try:
        with socket.create_connection((host, port), timeout=0.5):
            return True
    except OSError:
        return False


@dataclass
class FerretDB:
    """The FerretDB process ``scripts/services`` started (its pid file, command line and
    log), which a test may kill and start again the way the script does."""

    pid_file: Path
    log_file: Path
    argv: list[str]
    cwd: str
    host: str
    port: int
    pid: int

    def kill(self) -> None:
        """SIGKILL: no goodbye to the clients, the way a crash looks to them."""
        os.kill(self.pid, signal.SIGKILL)
        deadline = time.monotonic() + 30
        while _alive(self.pid):
            if time.monotonic() > deadline:
                raise AssertionError(f"FerretDB (pid {self.pid}) still runs after SIGKILL")
            time.sleep(0.02)

    @property
    def running(self) -> bool:
        return _alive(self.pid) and _cmdline(self.pid) == self.argv

    def start(self, timeout: float = 60.0) -> None:
        """Start it again with the same command line, detached the way the script's
        ``start_daemon`` does it (``setsid ... &``: its own session, not our child) and
        logging where the script's would, and record the pid where the script looks for
        it (so ``scripts/services status/down`` know the new process)."""
        launched = subprocess.run(
            [
                "sh",
                "-c",
                'log="$1"; shift; setsid "$@" </dev/null >>"$log" 2>&1 & echo $!',
                "sh",
                str(self.log_file),
                *self.argv,
            ],
            cwd=self.cwd,
            capture_output=True,
            text=True,
            timeout=30,
            check=True,
        )
        self.pid = int(launched.stdout.strip())
        tmp = self.pid_file.with_suffix(".tmp")
        tmp.write_text(f"{self.pid}\n")
        tmp.replace(self.pid_file)
        deadline = time.monotonic() + timeout
        while not _answers(self.host, self.port):
            if not _alive(self.pid):
                raise AssertionError(f"FerretDB exited on restart: see {self.log_file}")
            if time.monotonic() > deadline:
                raise AssertionError(f"FerretDB did not listen within {timeout}s on restart")
            time.sleep(0.05)


def _find_ferretdb(mongo_url: str) -> FerretDB | None:
    """The FerretDB of ``scripts/services`` serving ``mongo_url``, or None."""
    address = urlsplit(mongo_url)
    host, port = address.hostname or "", address.port or 27017
    for run in _services_run_dirs():
        pid_file = run / "pids" / "ferretdb.pid"
        try:
            pid = int(pid_file.read_text().strip())
        except (OSError, ValueError):
            continue
        argv = _cmdline(pid)
        # The script's own guard against a reused pid: its run dir on the command line.
        if not _alive(pid) or not any(str(run / "ferretdb") in part for part in argv):
            continue
        if f"--listen-addr={host}:{port}" not in argv:
            continue  # a FerretDB, but not the server the tests talk to
        try:
            cwd = os.readlink(f"/proc/{pid}/cwd")
        except OSError:
            cwd = "/"
        log_file = run / "ferretdb" / "ferretdb.log"
        return FerretDB(pid_file, log_file, argv, cwd, host, port, pid)
    return None


@pytest.fixture
def restartable_ferretdb(mongo_url: str) -> Iterator[FerretDB]:
    """The FerretDB that ``scripts/services`` runs behind ``mongo_url``, for a test to kill
    and start again; it is running again when the test ends, whatever happened. Other
    test sessions share this server: one lock file keeps two restarts from interleaving."""
    server = _find_ferretdb(mongo_url)
    if server is None:
        skip_or_fail(
            f"the restart test needs the FerretDB of scripts/services serving {mongo_url} "
            f"(pid file under {' or '.join(str(r / 'pids') for r in _services_run_dirs())}): "
            "run `make services`"
        )
    lock_path = server.pid_file.parent / "ferretdb.restart.lock"
    with lock_path.open("a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            # Another session may have restarted it while we waited for the lock.
            server = _find_ferretdb(mongo_url) or server
            yield server
        finally:
            if not server.running:
                if _alive(server.pid):
                    server.kill()
                server.start()


# ---------------------------------------------------------------- latency past the socket timeout

SOCKET_TIMEOUT = 1.0


LATENT_DOCS = 300


async def _first(stream: AsyncIterator[dict[str, Any]]) -> dict[str, Any]:
    async with contextlib.aclosing(stream) as documents:  # type: ignore[type-var]
        async for document in documents:
            return document
    raise AssertionError("no document")


# Each call reads; each is retried on the road when transient, and PyMongo retries reads
# once itself: none of that may stretch a socket timeout.
CALLS: dict[str, Callable[[MongoConnector, str], Awaitable[Any]]] = {
    "find_one": lambda mongo, c: mongo.find_one(c, {"_id": 7}),
    "count": lambda mongo, c: mongo.count(c, {"n": {"$gte": 0}}),
    "find": lambda mongo, c: _first(mongo.find(c, {"_id": {"$gte": 7}}, sort=[("_id", 1)])),
}
EXPECTED = {"find_one": {"_id": 7, "n": 7}, "count": LATENT_DOCS, "find": {"_id": 7, "n": 7}}


@pytest.mark.parametrize("call", sorted(CALLS))
async def test_latency_past_the_socket_timeout_is_a_timeout_then_the_client_recovers(
    mongo_proxy_url: str,
    toxiproxy: ToxiproxyClient,
    mongo: MongoConnector,
    collection: str,
    call: str,
) -> None:
    # A 4 s latency against a 1 s socket_timeout and a 60 s operation timeout: only the
    # socket timeout can end the call within a second more. The road never resends it
    # (final, decision 0097); PyMongo's own retryable read would resend it once on a new
    # connection (README: Troubleshooting), so it is off here.
    await mongo.insert_many(collection, [{"_id": i, "n": i} for i in range(LATENT_DOCS)])
    read = CALLS[call]
    config = make_config(mongo_proxy_url, socket_timeout=SOCKET_TIMEOUT, retry_reads=False)
    async with MongoConnector(config) as proxied:
        assert await read(proxied, collection) == EXPECTED[call]
        with toxic(toxiproxy, "mongo", "latency", latency=4000) as latency:
            started = time.monotonic()
            with pytest.raises(ConnectorTimeoutError) as caught:
                await read(proxied, collection)
            elapsed = time.monotonic() - started
            latency.require()
        assert elapsed < SOCKET_TIMEOUT + 1.0, f"the timeout took {elapsed:.2f}s"
        assert "socket" in str(caught.value).lower() or "timed out" in str(caught.value)
        # The toxic is gone: the same connector answers again, nobody reconnects it.
        assert await read(proxied, collection) == EXPECTED[call]
        assert await proxied.ping() < SOCKET_TIMEOUT


async def test_latency_past_the_socket_timeout_mid_stream_is_a_timeout(
    mongo_proxy_url: str, toxiproxy: ToxiproxyClient, mongo: MongoConnector, collection: str
) -> None:
    await mongo.insert_many(collection, [{"_id": i, "n": i} for i in range(LATENT_DOCS)])
    config = make_config(mongo_proxy_url, socket_timeout=SOCKET_TIMEOUT)
    async with MongoConnector(config) as proxied:
        stream = proxied.find(collection, {}, sort=[("_id", 1)], batch_size=100)
        first_batch = [await anext(stream) for _ in range(100)]  # the rest is on the server
        assert [d["_id"] for d in first_batch] == list(range(100))
        with toxic(toxiproxy, "mongo", "latency", latency=4000) as latency:
            started = time.monotonic()
            with pytest.raises(ConnectorTimeoutError):
                await anext(stream)  # the getMore of the second batch
            elapsed = time.monotonic() - started
            latency.require()
        assert elapsed < SOCKET_TIMEOUT + 1.0, f"the timeout took {elapsed:.2f}s"
        assert await proxied.count(collection) == LATENT_DOCS


# ---------------------------------------------------------------- the server killed mid-read

KILL_DOCS = 20_000
KILL_BATCH = 500


@pytest.mark.parametrize("when", ["down", "restarted"])
async def test_the_server_killed_mid_read_is_a_typed_error_and_the_next_call_succeeds(
    mongo: MongoConnector, collection: str, restartable_ferretdb: FerretDB, when: str
) -> None:
    """``down``: the next batch is asked for while the server is dead; ``restarted``:
    it is already back (a new process, which knows nothing of the cursor).
    ``restartable_ferretdb`` comes last: torn down first, it has the server running
    again before ``collection`` drops its collection."""
    loaded = await mongo.insert_many(collection, [{"_id": i, "n": i} for i in range(KILL_DOCS)])
    assert loaded.written == KILL_DOCS
    seen: list[int] = []

    async def read_through_the_fault() -> None:
        async for document in mongo.find(collection, {}, sort=[("_id", 1)], batch_size=KILL_BATCH):
            seen.append(document["_id"])
            if len(seen) == 2 * KILL_BATCH:  # two batches in: the cursor is open
                restartable_ferretdb.kill()
                if when == "restarted":
                    restartable_ferretdb.start()

    with pytest.raises(ConnectorError) as caught:
        await read_through_the_fault()
    error = caught.value
    assert type(error) is not ConnectorError, f"an untyped error: {error!r}"
    assert isinstance(error, ConnectionFailedError | QueryError), repr(error)
    assert error.transient, repr(error)
    assert isinstance(error.__cause__, PyMongoError)  # the driver's own, kept as the cause
    # The documents handed out before the fault were each handed out once, in order; the
    # read did not quietly start over, nor end as if the collection were shorter.
    assert seen == list(range(len(seen)))
    assert 2 * KILL_BATCH <= len(seen) < KILL_DOCS
    if when == "down":
        restartable_ferretdb.start()
    # The same connector, no reconnect by the caller: the next call succeeds.
    assert await mongo.count(collection) == KILL_DOCS
    again = [d["_id"] async for d in mongo.find(collection, {}, sort=[("_id", 1)])]
    assert again == list(range(KILL_DOCS))
