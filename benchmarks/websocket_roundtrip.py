"""connector-websocket's client side versus raw websockets (and picows for reference):
request/response round trips, same run, interleaved rounds, medians.

    uv run --no-sync python benchmarks/websocket_roundtrip.py [--quick] [--requests N]
        [--rounds R] [--compression none|deflate]

Each round sends N request envelopes ``{"request", "request_id", "body"}`` and waits for
the reply with the same ``request_id``, at concurrency 1 (one after another) and 100
(100 workers, N/100 each), with:

* connector: ``WebSocketConnector.request()`` (the core's road: timeout, typed errors,
  stats; replies matched by its reader task);
* raw websockets: ``websockets.asyncio.client.connect`` with the same options, the same
  envelope, and at c=100 a reader task matching replies to futures by ``request_id``
  (the least a caller with requests in flight must write); at c=1 ``send`` then ``recv``;
* picows (reference, the fastest asyncio WebSocket client on PyPI): the same envelope and
  matching in a ``WSListener``. picows has no permessage-deflate, so it runs only with
  ``--compression none`` (the default: small JSON does not gain from it).

The server is websockets in a subprocess (its own CPU), echoing each body in a success
envelope. Prints round trips/s and client CPU microseconds per round trip (this
process's ``time.process_time``, the repeatable figure on a shared machine) and the
connector/raw ratios: the ratio of the medians and the median of each round's own ratio
(goal: >= 0.95). Each round runs the clients back to back, the order rotating.
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import json
import os
import socket
import statistics
import subprocess
import sys
import time
from collections.abc import Awaitable, Callable
from typing import Any

import picows
from websockets.asyncio.client import ClientConnection, connect
from websockets.asyncio.server import ServerConnection, serve

from connector_websocket import WebSocketConfig, WebSocketConnector

CONCURRENCY = (1, 100)
BODY = {"item": "tea", "qty": 2, "note": "x" * 64}


# -- the server (a subprocess) -----------------------------------------------------------


async def _echo(ws: ServerConnection) -> None:
    loads, dumps = json.loads, json.JSONEncoder(separators=(",", ":")).encode
    async for raw in ws:
        message = loads(raw)
        message["status"] = "success"
        await ws.send(dumps(message))


async def _serve(port: int, compression: str | None) -> None:
    async with serve(_echo, "127.0.0.1", port, compression=compression, ping_interval=None):
        print("ready", flush=True)
        await asyncio.Future()


def start_server(compression: str) -> tuple[subprocess.Popen[str], str]:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    process = subprocess.Popen(
        [sys.executable, __file__, "--serve", str(port), "--compression", compression],
        stdout=subprocess.PIPE,
        text=True,
    )
    assert process.stdout is not None
    if process.stdout.readline().strip() != "ready":
        sys.exit("the benchmark server did not start")
    return process, f"ws://127.0.0.1:{port}/"


# -- the clients -------------------------------------------------------------------------

Send = Callable[[dict[str, Any]], Awaitable[dict[str, Any]]]


class RawClient:
    """What a caller of raw websockets writes for requests in flight: ids, futures,
    a reader task."""

    def __init__(self, ws: ClientConnection) -> None:
        self.ws = ws
        self.ids = itertools.count(1)
        self.pending: dict[str, asyncio.Future[dict[str, Any]]] = {}
        self.reader = asyncio.create_task(self._read())
        self.encode = json.JSONEncoder(separators=(",", ":")).encode

    async def _read(self) -> None:
        loads, pending = json.loads, self.pending
        async for raw in self.ws:
            message = loads(raw)
            waiter = pending.pop(message["request_id"], None)
            if waiter is not None:
                waiter.set_result(message)

    async def request(self, body: dict[str, Any]) -> dict[str, Any]:
        request_id = str(next(self.ids))
        waiter = asyncio.get_running_loop().create_future()
        self.pending[request_id] = waiter
        await self.ws.send(self.encode({"request": "echo", "request_id": request_id, "body": body}))
        reply = await waiter
        return reply["body"]  # type: ignore[no-any-return]

    async def request_one(self, body: dict[str, Any]) -> dict[str, Any]:
        # c=1 without the reader task: send, then read the one reply.
        request_id = str(next(self.ids))
        await self.ws.send(self.encode({"request": "echo", "request_id": request_id, "body": body}))
        reply = json.loads(await self.ws.recv())
        assert reply["request_id"] == request_id
        return reply["body"]  # type: ignore[no-any-return]


class PicowsClient(picows.WSListener):  # type: ignore[misc]
    def __init__(self) -> None:
        self.ids = itertools.count(1)
        self.pending: dict[str, asyncio.Future[dict[str, Any]]] = {}
        self.transport: Any = None
        self.encode = json.JSONEncoder(separators=(",", ":")).encode

    def on_ws_connected(self, transport: Any) -> None:
        self.transport = transport

    def on_ws_frame(self, transport: Any, frame: Any) -> None:
        if frame.msg_type == picows.WSMsgType.TEXT:
            message = json.loads(frame.get_payload_as_bytes())
            waiter = self.pending.pop(message["request_id"], None)
            if waiter is not None:
                waiter.set_result(message)

    async def request(self, body: dict[str, Any]) -> dict[str, Any]:
        request_id = str(next(self.ids))
        waiter = asyncio.get_running_loop().create_future()
        self.pending[request_id] = waiter
        data = self.encode({"request": "echo", "request_id": request_id, "body": body})
        self.transport.send(picows.WSMsgType.TEXT, data.encode())
        reply = await waiter
        return reply["body"]  # type: ignore[no-any-return]


async def timed(send: Send, requests: int, concurrency: int) -> tuple[float, float]:
    """(round trips/s, client CPU microseconds per round trip)."""
    each = requests // concurrency

    async def worker() -> None:
        for _ in range(each):
            await send(BODY)

    cpu = time.process_time()
    started = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(concurrency)))
    elapsed = time.perf_counter() - started
    cpu = time.process_time() - cpu
    done = each * concurrency
    return done / elapsed, cpu * 1e6 / done


async def main(
    requests: int, rounds: int, compression: str, only: str | None, levels: tuple[int, ...]
) -> None:
    process, url = start_server(compression)
    try:
        await run(url, requests, rounds, compression, only, levels)
    finally:
        process.terminate()
        process.wait(10)


async def run(
    url: str,
    requests: int,
    rounds: int,
    compression: str,
    only: str | None = None,
    levels: tuple[int, ...] = CONCURRENCY,
) -> None:
    config = WebSocketConfig(
        url=url, compression=compression, timeout=60.0, heartbeat_interval=20.0
    )
    connector = WebSocketConnector(config)
    await connector.connect()
    options = config.connect_options()
    raw = RawClient(await connect(url, **options))
    raw_one = RawClient(await connect(url, **options))
    raw_one.reader.cancel()

    async def request_body(body: dict[str, Any]) -> dict[str, Any]:
        return await connector.request("echo", body)

    sides: dict[str, Callable[[int], Send]] = {
        "connector": lambda c: request_body,
        "websockets": lambda c: raw.request if c > 1 else raw_one.request_one,
    }
    picows_client: PicowsClient | None = None
    if compression == "none":
        transport, listener = await picows.ws_connect(PicowsClient, url)
        picows_client = listener
        sides["picows"] = lambda c: listener.request
    else:
        transport = None
        print("picows: skipped (no permessage-deflate)")
    for send in (request_body, raw.request, raw_one.request_one):
        assert await send(BODY) == BODY  # warm up, and check the echo
    results: dict[tuple[str, int], list[tuple[float, float]]] = {}
    load_before = os.getloadavg()
    print(
        f"round trips per round: {requests:,}; rounds: {rounds}; compression: {compression}; "
        f"load average {load_before[0]:.2f} (2 cores, shared)",
        flush=True,
    )
    names = [only] if only is not None else list(sides)
    for number in range(rounds):
        order = names[number % len(names) :] + names[: number % len(names)]
        for concurrency in levels:
            for name in order:
                figure = await timed(sides[name](concurrency), requests, concurrency)
                results.setdefault((name, concurrency), []).append(figure)
        print(f"  round {number + 1}/{rounds} done", flush=True)
    load_after = os.getloadavg()
    await connector.disconnect()
    await raw.ws.close()
    await raw_one.ws.close()
    if transport is not None:
        transport.disconnect()
    del picows_client

    print()
    print(f"{'client':<12}{'c':>5}{'round trips/s':>16}{'client CPU us/rt':>18}")
    for (name, concurrency), figures in results.items():
        speed = statistics.median(f[0] for f in figures)
        cpu = statistics.median(f[1] for f in figures)
        print(f"{name:<12}{concurrency:>5}{speed:>16,.0f}{cpu:>18.1f}")
    print()
    if only is not None:
        return  # one client (for valgrind --tool=callgrind): no ratios
    for concurrency in levels:
        mine, theirs = results[("connector", concurrency)], results[("websockets", concurrency)]
        ratio = statistics.median(m[0] for m in mine) / statistics.median(t[0] for t in theirs)
        per_round = [m[0] / t[0] for m, t in zip(mine, theirs, strict=True)]
        cpu_rounds = [t[1] / m[1] for m, t in zip(mine, theirs, strict=True)]
        paired = statistics.median(per_round)
        verdict = "ok" if paired >= 0.95 else "below 0.95"
        print(
            f"c={concurrency}: connector / websockets throughput = {ratio:.3f}; median of "
            f"per-round ratios = {paired:.3f} ({verdict}; rounds {min(per_round):.3f}-"
            f"{max(per_round):.3f}); client CPU (websockets / connector, per round trip) = "
            f"{statistics.median(cpu_rounds):.3f}"
        )
    print(
        f"noise: load average {load_before[0]:.2f} before, {load_after[0]:.2f} after; the "
        "server runs in another process on the same 2 cores"
    )


def parse(argv: list[str]) -> Any:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="2,000 round trips, 2 rounds")
    parser.add_argument("--requests", type=int, default=None, help="round trips per round")
    parser.add_argument("--rounds", type=int, default=None)
    parser.add_argument("--compression", choices=["none", "deflate"], default="none")
    parser.add_argument(
        "--only",
        choices=["connector", "websockets", "picows"],
        default=None,
        help="run one client only (under valgrind --tool=callgrind, say)",
    )
    parser.add_argument("--concurrency", type=int, action="append", default=None)
    parser.add_argument("--serve", type=int, default=None, help=argparse.SUPPRESS)
    return parser.parse_args(argv)


if __name__ == "__main__":
    args = parse(sys.argv[1:])
    if args.serve is not None:
        asyncio.run(_serve(args.serve, None if args.compression == "none" else "deflate"))
    else:
        count = args.requests or (2_000 if args.quick else 20_000)
        rounds = args.rounds or (2 if args.quick else 7)
        levels = tuple(args.concurrency or CONCURRENCY)
        asyncio.run(main(count, rounds, args.compression, args.only, levels))
