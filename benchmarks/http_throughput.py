"""HTTP throughput: HttpConnector versus raw aiohttp, raw httpx and the options between.

GETs of a small JSON body per client at concurrency 50 against one local ASGI server in
its own process: uvicorn with ``--http httptools --loop uvloop`` (the benchmark stops if
either is missing rather than measure a slower server). With two or more CPUs the server
and this client process are pinned to different cores (``os.sched_setaffinity``).

Clients (decision 0090): raw httpx (httpcore), raw aiohttp, httpx over httpx-aiohttp's
transport, httpx over connector-http's own aiohttp transport, the connector road around a
bare aiohttp GET (the floor of a path straight to aiohttp), HttpConnector on httpcore (as
before 0090) and HttpConnector as it is by default. The connectors run with bearer auth,
a (high) rate limit, the retry policy and the circuit breaker on; the raw clients send
the same Authorization header with the same pool limits. All clients stay open; the work
is split into rounds (10 of 1,000 by default) run interleaved, the order rotating each
round, so drift of the machine hits every client alike. For each client it prints the
median req/s, the median client CPU time per request (``time.process_time``) and the
median of its per-round ratios to raw aiohttp; the headline is HttpConnector / raw
aiohttp (goal >= 0.9). A concurrency-1 run follows (2,000 GETs each, interleaved) on
fresh clients with one-connection pools. The load average is printed: the machine is
shared, quote it with the figures. ``--only NAME ...`` runs some clients (raw aiohttp
and HttpConnector are needed for the headline).

    uv run --no-sync python benchmarks/http_throughput.py [--quick] [--requests N]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import importlib.util
import json
import os
import socket
import statistics
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

BODY = json.dumps({"id": 1, "name": "widget", "tags": ["a", "b"], "price": 9.99}).encode()
TOKEN = "bench-token-0123456789"
HERE = Path(__file__).resolve().parent

One = Callable[[], Awaitable[Any]]
BASE = "raw aiohttp"


# -- the server (uvicorn in a child process) -------------------------------------------------


async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
    if scope["type"] != "http":
        return
    await send(
        {
            "type": "http.response.start",
            "status": 200,
            "headers": [
                (b"content-type", b"application/json"),
                (b"content-length", str(len(BODY)).encode()),
            ],
        }
    )
    await send({"type": "http.response.body", "body": BODY})


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
    return port


def require_fast_server() -> None:
    missing = [m for m in ("uvicorn", "httptools", "uvloop") if importlib.util.find_spec(m) is None]
    if missing:
        raise SystemExit(
            f"the benchmark server needs {', '.join(missing)} (uvicorn --http httptools "
            "--loop uvloop); install the dev group (uv sync --all-packages). Refusing to "
            "fall back to a slower server: the figures would measure the server, not the client."
        )


def cpu_split() -> tuple[set[int], set[int]] | None:
    """(server cores, client cores) when there are at least two cores to split."""
    if not hasattr(os, "sched_getaffinity"):
        return None
    cpus = sorted(os.sched_getaffinity(0))
    if len(cpus) < 2:
        return None
    return {cpus[0]}, set(cpus[1:2])


def start_server(split: tuple[set[int], set[int]] | None) -> tuple[subprocess.Popen[bytes], str]:
    port = free_port()
    command = [
        sys.executable, "-m", "uvicorn", "http_throughput:app",
        "--app-dir", str(HERE), "--host", "127.0.0.1", "--port", str(port),
        "--http", "httptools", "--loop", "uvloop",
        "--log-level", "warning", "--no-access-log", "--lifespan", "off", "--ws", "none",
        # Clients idle while the others take their turn: uvicorn's default 5 s keep-alive
        # would close their pooled connections under them (a ReadError for raw httpx).
        "--timeout-keep-alive", "600",
    ]  # fmt: skip
    proc = subprocess.Popen(command)
    if split is not None:
        os.sched_setaffinity(proc.pid, split[0])
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise SystemExit(f"the benchmark server exited with {proc.returncode}")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.2):
                return proc, f"http://127.0.0.1:{port}"
        except OSError:
            time.sleep(0.05)
    proc.kill()
    raise SystemExit("the benchmark server did not start")


# -- the clients ---------------------------------------------------------------------------


async def drive(n: int, concurrency: int, one: One) -> tuple[float, float]:
    """Run ``one`` n times with ``concurrency`` workers; returns (requests per second,
    client CPU seconds per request)."""
    remaining = n

    async def worker() -> None:
        nonlocal remaining
        while remaining > 0:
            remaining -= 1
            await one()

    cpu = time.process_time()
    started = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(concurrency)))
    wall = time.perf_counter() - started
    return n / wall, (time.process_time() - cpu) / n


@contextlib.asynccontextmanager
async def raw_client(url: str, concurrency: int) -> AsyncIterator[One]:
    import httpx

    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
    async with httpx.AsyncClient(
        base_url=url, limits=limits, headers={"Authorization": f"Bearer {TOKEN}"}
    ) as client:

        async def one() -> None:
            response = await client.get("/item")
            if response.status_code >= 400:
                raise RuntimeError(response.status_code)
            response.json()

        yield one


@contextlib.asynccontextmanager
async def connector_client(url: str, concurrency: int) -> AsyncIterator[One]:
    from connector_http import HttpConnector

    async with HttpConnector(connector_config(url, concurrency)) as http:
        assert http.rate_limiter is not None
        assert http.circuit_breaker is not None
        assert http.retry_policy.max_attempts > 1

        async def one() -> None:
            (await http.get("/item")).json()

        yield one


@contextlib.asynccontextmanager
async def httpx_over(url: str, transport: Any) -> AsyncIterator[One]:
    import httpx

    async with httpx.AsyncClient(
        base_url=url, transport=transport, headers={"Authorization": f"Bearer {TOKEN}"}
    ) as client:

        async def one() -> None:
            response = await client.get("/item")
            if response.status_code >= 400:
                raise RuntimeError(response.status_code)
            response.json()

        yield one


@contextlib.asynccontextmanager
async def httpx_aiohttp_client(url: str, concurrency: int) -> AsyncIterator[One]:
    """httpx over the httpx-aiohttp package's transport, as it is."""
    import httpx
    from httpx_aiohttp import AiohttpTransport

    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
    async with httpx_over(url, AiohttpTransport(limits=limits)) as one:
        yield one


@contextlib.asynccontextmanager
async def own_transport_client(url: str, concurrency: int) -> AsyncIterator[One]:
    """httpx over connector-http's own transport (one long-lived aiohttp session)."""
    import httpx

    from connector_http._aiohttp_transport import AiohttpTransport

    transport = AiohttpTransport(
        ssl_context=httpx.create_ssl_context(), max_connections=concurrency, keepalive_expiry=600
    )
    async with httpx_over(url, transport) as one:
        yield one


def connector_config(url: str, concurrency: int) -> Any:
    from connector_http import HttpConfig

    return HttpConfig(
        base_url=url,
        auth={"type": "bearer", "token": TOKEN},
        rate_limit={"rate": 1_000_000, "burst": 10_000},
        limits={"max_connections": concurrency, "max_keepalive_connections": concurrency},
        health_path="/item",
    )


@contextlib.asynccontextmanager
async def connector_httpcore_client(url: str, concurrency: int) -> AsyncIterator[One]:
    """HttpConnector on httpx's own transport (httpcore): the road before decision 0090."""
    import httpx

    from connector_http import HttpConnector

    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
    async with (
        httpx.AsyncHTTPTransport(limits=limits) as transport,
        HttpConnector(connector_config(url, concurrency), transport=transport) as http,
    ):

        async def one() -> None:
            (await http.get("/item")).json()

        yield one


@contextlib.asynccontextmanager
async def road_aiohttp_client(url: str, concurrency: int) -> AsyncIterator[One]:
    """The floor of a hot path straight to aiohttp: the connector road (limiter, breaker,
    timeout, retry, stats) around a bare aiohttp GET, no httpx request or response."""
    import aiohttp

    from connector_http import HttpConnector

    async with (
        HttpConnector(connector_config(url, concurrency)) as http,
        aiohttp.ClientSession(
            base_url=url,
            connector=aiohttp.TCPConnector(limit=concurrency),
            headers={"Authorization": f"Bearer {TOKEN}"},
        ) as session,
    ):

        async def get() -> Any:
            async with session.get("/item") as response:
                response.raise_for_status()
                return await response.read()

        async def one() -> None:
            json.loads(await http.run("GET", get, idempotent=True))

        yield one


@contextlib.asynccontextmanager
async def aiohttp_client(url: str, concurrency: int) -> AsyncIterator[One]:
    import aiohttp

    connector = aiohttp.TCPConnector(limit=concurrency)
    async with aiohttp.ClientSession(
        base_url=url, connector=connector, headers={"Authorization": f"Bearer {TOKEN}"}
    ) as session:

        async def one() -> None:
            async with session.get("/item") as response:
                response.raise_for_status()
                await response.json()

        yield one


async def interleave(
    clients: dict[str, One], rounds: int, block: int, concurrency: int, label: str
) -> dict[str, list[tuple[float, float]]]:
    names = list(clients)
    results: dict[str, list[tuple[float, float]]] = {name: [] for name in names}
    for round_no in range(rounds):
        shift = round_no % len(names)
        order = names[shift:] + names[:shift]
        line = []
        for name in order:
            rate, cpu = await drive(block, concurrency, clients[name])
            results[name].append((rate, cpu))
            line.append(f"{name} {rate:,.0f}/s {cpu * 1e6:,.0f}us")
        print(f"{label} round {round_no + 1}: " + ", ".join(line), flush=True)
    return results


def ratio(results: dict[str, list[tuple[float, float]]], mine: str, base: str) -> str:
    pairs = list(zip(results[mine], results[base], strict=True))
    paired = statistics.median(m[0] / b[0] for m, b in pairs)
    cpu_ratio = statistics.median(m[1] / b[1] for m, b in pairs)
    return f"{paired:.3f} (CPU per request x{cpu_ratio:.2f})"


def report(results: dict[str, list[tuple[float, float]]]) -> None:
    """Medians per client, each client's median of per-round req/s ratios to raw aiohttp,
    and the headline: HttpConnector / raw aiohttp."""
    for name, values in results.items():
        rate = statistics.median(r for r, _ in values)
        cpu = statistics.median(c for _, c in values)
        print(
            f"  {name:<22} median {rate:>7,.0f} req/s  client CPU {cpu * 1e6:>6,.0f} us/req  "
            f"/ aiohttp {ratio(results, name, BASE)}"
        )
    if "raw httpx" in results:
        print(f"  HttpConnector / raw httpx: {ratio(results, 'HttpConnector', 'raw httpx')}")
    print(
        f"  headline HttpConnector / {BASE}: {ratio(results, 'HttpConnector', BASE)} (goal >= 0.9)"
    )


async def main(args: argparse.Namespace) -> None:
    require_fast_server()
    load = os.getloadavg()
    split = cpu_split()
    proc, url = start_server(split)
    if split is not None:
        os.sched_setaffinity(0, split[1])
    factories = {
        "raw httpx": raw_client,
        BASE: aiohttp_client,
        "httpx+httpx-aiohttp": httpx_aiohttp_client,
        "httpx+own transport": own_transport_client,
        "road+bare aiohttp": road_aiohttp_client,
        "HttpConnector/httpcore": connector_httpcore_client,
        "HttpConnector": connector_client,
    }
    if args.only:
        factories = {k: v for k, v in factories.items() if k in args.only}
    block = args.requests // args.rounds
    try:
        async with contextlib.AsyncExitStack() as stack:
            clients = {
                name: await stack.enter_async_context(factory(url, args.concurrency))
                for name, factory in factories.items()
            }
            for one in clients.values():  # open the pools, settle the server
                await drive(args.warmup, args.concurrency, one)
            main_results = await interleave(
                clients, args.rounds, block, args.concurrency, f"c={args.concurrency}"
            )
        # Fresh clients with one-connection pools for the concurrency-1 run: left over from
        # the run above, a pool's idle connections would each be polled (httpcore checks
        # every idle connection for a server close on every request, ~30 us each) until
        # their 5 s keep-alive expiry, charging whichever client ran last.
        async with contextlib.AsyncExitStack() as stack:
            clients = {
                name: await stack.enter_async_context(factory(url, 1))
                for name, factory in factories.items()
            }
            for one in clients.values():
                await drive(args.warmup, 1, one)
            serial = await interleave(clients, args.rounds, args.serial // args.rounds, 1, "c=1")
    finally:
        proc.terminate()
        proc.wait(10)
    pinned = (
        f"server on CPU {sorted(split[0])}, client on CPU {sorted(split[1])}"
        if split is not None
        else "not pinned (fewer than 2 CPUs)"
    )
    print()
    print(
        f"server: uvicorn --http httptools --loop uvloop, own process; {pinned}; "
        f"client loop: asyncio, Python {sys.version.split()[0]}; load average at start "
        f"{load[0]:.2f}, at end {os.getloadavg()[0]:.2f} (1 min)"
    )
    print(
        "raw aiohttp: aiohttp's defaults (ClientTimeout total=300 s, sock_connect=30 s: one "
        "timer per request; a cookie jar), TCPConnector(limit=concurrency), the "
        "Authorization header; raise_for_status(), response.json()"
    )
    print(
        "HttpConnector: HttpConfig defaults (timeouts connect 10 / read 30 / write 30 / pool "
        "10 s, attempt deadline timeout=30 s), bearer auth, rate limit 1e6/s burst 10,000, "
        "retry policy, circuit breaker, correlation id and User-Agent headers, "
        "max_connections=concurrency; HttpResponse.json()"
    )
    print(
        f"{block * args.rounds:,} GETs per client at concurrency {args.concurrency}, in "
        f"{args.rounds} interleaved rounds of {block:,}:"
    )
    report(main_results)
    n1 = args.serial // args.rounds * args.rounds
    print(f"{n1:,} GETs per client at concurrency 1, in {args.rounds} interleaved rounds:")
    report(serial)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="1,500 requests in 3 rounds")
    parser.add_argument("--requests", type=int, default=10_000)
    parser.add_argument("--concurrency", type=int, default=50)
    parser.add_argument("--rounds", type=int, default=10)
    parser.add_argument("--warmup", type=int, default=500)
    parser.add_argument("--serial", type=int, default=2_000, help="requests at concurrency 1")
    parser.add_argument(
        "--only",
        nargs="+",
        help="the clients to run (names as printed; 'raw aiohttp' and HttpConnector are needed)",
    )
    arguments = parser.parse_args()
    if arguments.quick:
        arguments.requests, arguments.rounds, arguments.warmup, arguments.serial = (
            1_500,
            3,
            100,
            300,
        )
    asyncio.run(main(arguments))
