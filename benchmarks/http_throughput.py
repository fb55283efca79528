"""HTTP throughput: HttpConnector versus raw httpx (and aiohttp for reference).

10,000 GETs of a small JSON body per client at concurrency 50 against one local
ASGI server running in a separate process (uvicorn, with httptools when it is
installed). The connector runs with bearer auth, a (high) rate limit, the retry
policy and the circuit breaker on; raw httpx sends the same Authorization header.
All three clients stay open; the work is split into rounds (10 of 1,000 by
default) run interleaved, the order rotating each round, so drift of the machine
hits every client alike. Prints each client's median req/s, the ratio of the
medians connector / raw, and the median of the per-round ratios.

    uv run --no-sync python benchmarks/http_throughput.py [--quick] [--requests N]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import importlib.util
import json
import socket
import statistics
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

BODY = json.dumps({"id": 1, "name": "widget", "tags": ["a", "b"], "price": 9.99}).encode()
TOKEN = "bench-token-0123456789"


# -- the server (run in a child process) ---------------------------------------------------


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


def serve(port: int) -> None:
    import uvicorn

    http = "httptools" if importlib.util.find_spec("httptools") else "h11"
    loop = "uvloop" if importlib.util.find_spec("uvloop") else "asyncio"
    uvicorn.run(
        "http_throughput:app",
        host="127.0.0.1",
        port=port,
        http=http,
        loop=loop,
        log_level="warning",
        access_log=False,
        lifespan="off",
        ws="none",
        app_dir=str(__import__("pathlib").Path(__file__).parent),
    )


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
    return port


def start_server() -> tuple[subprocess.Popen[bytes], str]:
    port = free_port()
    proc = subprocess.Popen([sys.executable, __file__, "--serve", str(port)])
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.2):
                return proc, f"http://127.0.0.1:{port}"
        except OSError:
            time.sleep(0.05)
    proc.kill()
    raise SystemExit("the benchmark server did not start")


# -- the clients ---------------------------------------------------------------------------


async def drive(n: int, concurrency: int, one: Callable[[], Awaitable[Any]]) -> float:
    """Run ``one`` n times with ``concurrency`` workers; returns requests per second."""
    remaining = n

    async def worker() -> None:
        nonlocal remaining
        while remaining > 0:
            remaining -= 1
            await one()

    started = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(concurrency)))
    return n / (time.perf_counter() - started)


@contextlib.asynccontextmanager
async def raw_client(url: str, concurrency: int) -> AsyncIterator[Callable[[], Awaitable[Any]]]:
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
async def connector_client(
    url: str, concurrency: int
) -> AsyncIterator[Callable[[], Awaitable[Any]]]:
    from connector_http import HttpConfig, HttpConnector

    config = HttpConfig(
        base_url=url,
        auth={"type": "bearer", "token": TOKEN},  # type: ignore[arg-type]
        rate_limit={"rate": 1_000_000, "burst": 10_000},  # type: ignore[arg-type]
        limits={"max_connections": concurrency, "max_keepalive_connections": concurrency},  # type: ignore[arg-type]
        health_path="/item",
    )
    async with HttpConnector(config) as http:
        assert http.rate_limiter is not None
        assert http.circuit_breaker is not None
        assert http.retry_policy.max_attempts > 1

        async def one() -> None:
            (await http.get("/item")).json()

        yield one


@contextlib.asynccontextmanager
async def aiohttp_client(url: str, concurrency: int) -> AsyncIterator[Callable[[], Awaitable[Any]]]:
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


async def main(args: argparse.Namespace) -> None:
    proc, url = start_server()
    factories = {
        "raw httpx": raw_client,
        "HttpConnector": connector_client,
        "aiohttp": aiohttp_client,
    }
    names = list(factories)
    results: dict[str, list[float]] = {name: [] for name in names}
    block = args.requests // args.rounds
    try:
        async with contextlib.AsyncExitStack() as stack:
            clients = {
                name: await stack.enter_async_context(factory(url, args.concurrency))
                for name, factory in factories.items()
            }
            for name in names:  # open the pools, settle the server
                await drive(args.warmup, args.concurrency, clients[name])
            for round_no in range(args.rounds):
                shift = round_no % len(names)
                order = names[shift:] + names[:shift]
                line = []
                for name in order:
                    rate = await drive(block, args.concurrency, clients[name])
                    results[name].append(rate)
                    line.append(f"{name} {rate:,.0f}/s")
                print(f"round {round_no + 1}: " + ", ".join(line), flush=True)
    finally:
        proc.terminate()
        proc.wait(10)
    med = {name: statistics.median(values) for name, values in results.items()}
    server = "httptools" if importlib.util.find_spec("httptools") else "h11"
    print()
    print(
        f"{block * args.rounds:,} GETs per client at concurrency {args.concurrency}, in "
        f"{args.rounds} interleaved rounds of {block:,} (server: uvicorn/{server}, own process)"
    )
    for name in names:
        print(f"  {name:<14} median {med[name]:>9,.0f} req/s")
    ratio = med["HttpConnector"] / med["raw httpx"]
    paired = statistics.median(
        c / r for c, r in zip(results["HttpConnector"], results["raw httpx"], strict=True)
    )
    print(f"  ratio HttpConnector / raw httpx: {ratio:.3f} (goal >= 0.95)")
    print(f"  median of per-round ratios:      {paired:.3f}")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--serve", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--quick", action="store_true", help="1,500 requests in 3 rounds")
    parser.add_argument("--requests", type=int, default=10_000)
    parser.add_argument("--concurrency", type=int, default=50)
    parser.add_argument("--rounds", type=int, default=10)
    parser.add_argument("--warmup", type=int, default=500)
    arguments = parser.parse_args()
    if arguments.serve:
        serve(arguments.serve)
    else:
        if arguments.quick:
            arguments.requests, arguments.rounds, arguments.warmup = 1_500, 3, 100
        asyncio.run(main(arguments))
