"""CPU per HTTP exchange: ``llmswitch.transport`` against the aiohttp client it replaced.

nginx (``../shared/bench/upstream.py``, on free loopback ports) answers every POST with one ~450-byte
chat.completion JSON (keep-alive), and with an 11-chunk SSE stream on its other port. Each client sends
the same small POST sequentially on one reused connection, on uvloop (``--loop asyncio`` for asyncio's
own loop); the rounds alternate between the clients so the machine's drift falls on both alike:

- **transport**: ``await transport.send(HTTPCall(...), timeout=30)`` (streams: ``open_stream`` and
  ``iter_chunks`` to the end);
- **aiohttp**: one ``aiohttp.ClientSession`` configured as the old transport's was (``limit=0``,
  no ``User-Agent``), ``async with session.request(...) as r: await r.read()`` with a total timeout
  (streams: ``sock_read`` timeout and ``r.content.iter_any()``);
- **floor**: a bare ``asyncio.Protocol`` writing the same request bytes and waiting until as many
  bytes as the first answer had have come back, parsing nothing: what the loop and the kernel cost.

CPU is this process's ``time.process_time()`` (nginx runs in its own processes), divided by the number
of exchanges; the medians over the rounds are printed, with wall-clock µs beside them.

    .venv/bin/python bench/transport_cpu.py [--n 5000] [--rounds 5] [--loop uvloop|asyncio] [--json out.json]

A benchmark, not a test: CI does not run it. Everything it starts (nginx) it stops.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import re
import statistics
import sys
import time
from collections.abc import Awaitable, Callable
from pathlib import Path

import aiohttp

sys.path.insert(0, str(Path(__file__).resolve().parent))
import _harness as h

from llmswitch import _http1_request, transport
from llmswitch.providers.base import HTTPCall

BODY = json.dumps({"model": "gpt-4o-mini", "messages": h.MESSAGES}).encode()
HEADERS = {"content-type": "application/json", "authorization": "Bearer sk-bench-upstream-key"}

Exchange = Callable[[], Awaitable[int]]


def ours(url: str, stream: bool) -> Exchange:
    call = HTTPCall(url, HEADERS, BODY)

    async def once() -> int:
        raw = await transport.send(call, timeout=30)
        return len(raw.body)

    async def once_stream() -> int:
        resp = await transport.open_stream(call, timeout=30)
        size = 0
        async for chunk in resp.iter_chunks():
            size += len(chunk)
        resp.close()
        return size

    return once_stream if stream else once


def theirs(session: aiohttp.ClientSession, url: str, stream: bool) -> Exchange:
    total = aiohttp.ClientTimeout(total=30)
    per_read = aiohttp.ClientTimeout(total=None, sock_connect=30, sock_read=30)

    async def once() -> int:
        async with session.request("POST", url, data=BODY, headers=HEADERS, timeout=total) as r:
            return len(await r.read())

    async def once_stream() -> int:
        r = await session.request("POST", url, data=BODY, headers=HEADERS, timeout=per_read)
        size = 0
        async for chunk in r.content.iter_any():
            size += len(chunk)
        r.release()
        return size

    return once_stream if stream else once


class _Counting(asyncio.Protocol):
    """Counts answer bytes; the first answer tells how many make one (its head plus Content-Length)."""

    def __init__(self) -> None:
        self.first = b""
        self.expected = 0
        self.received = 0
        self.done: asyncio.Future[None] | None = None

    def data_received(self, data: bytes) -> None:
        self.received += len(data)
        if not self.expected:
            self.first += data
            head, sep, _ = self.first.partition(b"\r\n\r\n")
            if not sep:
                return
            length = re.search(rb"(?i)\r\ncontent-length: *(\d+)", head)
            assert length is not None, "the floor needs answers with a Content-Length"
            self.expected = len(head) + len(sep) + int(length.group(1))
        if self.received >= self.expected and self.done is not None and not self.done.done():
            self.done.set_result(None)


async def floor(url: str, opened: list[asyncio.BaseTransport]) -> Exchange:
    loop = asyncio.get_running_loop()
    target = _http1_request.parse_url(url)
    sock, proto = await loop.create_connection(_Counting, target.origin[1], target.origin[2])
    opened.append(sock)
    request = _http1_request.request_head("POST", target, HEADERS, len(BODY)) + BODY

    async def once() -> int:
        proto.received = 0
        proto.done = loop.create_future()
        sock.write(request)
        await proto.done
        return proto.received

    return once


def old_session() -> aiohttp.ClientSession:
    connector = aiohttp.TCPConnector(limit=0, limit_per_host=0, ttl_dns_cache=300, keepalive_timeout=60)
    return aiohttp.ClientSession(connector=connector, auto_decompress=True, skip_auto_headers=("User-Agent",))


async def measure(exchange: Exchange, n: int) -> tuple[float, float]:
    """(CPU µs, wall µs) per exchange over ``n`` sequential exchanges."""
    cpu0, wall0 = time.process_time(), time.perf_counter()
    for _ in range(n):
        await exchange()
    return (time.process_time() - cpu0) / n * 1e6, (time.perf_counter() - wall0) / n * 1e6


async def run(args: argparse.Namespace, up: h.Upstream) -> dict[str, dict[str, float]]:
    results: dict[str, dict[str, float]] = {}
    opened: list[asyncio.BaseTransport] = []
    async with old_session() as session:
        for stream in (False, True):
            url = f"{up.sse_base if stream else up.json_base}/chat/completions"
            clients = {
                "transport": ours(url, stream),
                "aiohttp": theirs(session, url, stream),
                "floor": await floor(url, opened),
            }
            cpu: dict[str, list[float]] = {name: [] for name in clients}
            wall: dict[str, list[float]] = {name: [] for name in clients}
            for exchange in clients.values():  # warm up: connections, caches
                await measure(exchange, min(args.n, 500))
            for _ in range(args.rounds):
                for name, exchange in clients.items():
                    c, w = await measure(exchange, args.n)
                    cpu[name].append(c)
                    wall[name].append(w)
            kind = "stream" if stream else "json"
            for name in clients:
                results[f"{kind}/{name}"] = {
                    "cpu_us": statistics.median(cpu[name]),
                    "wall_us": statistics.median(wall[name]),
                }
    await transport.close_session()
    for sock in opened:
        sock.close()
    return results


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=5000, help="exchanges per round and client")
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--loop", choices=("uvloop", "asyncio"), default="uvloop")
    parser.add_argument("--json", type=Path, help="also write the figures here")
    args = parser.parse_args()
    print(f"load average: {' '.join(f'{x:.2f}' for x in os.getloadavg())}; loop: {args.loop}")
    with h.upstream() as up:
        if args.loop == "uvloop":
            import uvloop

            results = uvloop.run(run(args, up))
        else:
            results = asyncio.run(run(args, up))
    print(f"{'':18}{'CPU µs/exchange':>16}{'wall µs':>10}   (medians of {args.rounds} rounds of {args.n})")
    for key, fig in results.items():
        print(f"{key:18}{fig['cpu_us']:16.1f}{fig['wall_us']:10.1f}")
    for kind in ("json", "stream"):
        ratio = results[f"{kind}/aiohttp"]["cpu_us"] / results[f"{kind}/transport"]["cpu_us"]
        print(f"{kind}: aiohttp uses {ratio:.1f}x the CPU of transport per exchange")
    if args.json:
        args.json.write_text(json.dumps({"loop": args.loop, "n": args.n, "results": results}, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
