"""Server CPU per request: our HTTP/1.1 server (``llmswitch.server.h1serve``) against uvicorn (httptools, uvloop).

Each server runs a trivial ASGI app (a 300-byte JSON answer to ``GET /``) in a process of its own; a light
raw-asyncio client drives it over ``--conns`` keep-alive connections (one request at a time on each, no
pipelining) for ``--n`` requests after a warm-up, and the server process's CPU time (utime + stime from
``/proc/PID/stat``) over those requests, divided by their number, is its cost per request. The servers
take turns for ``--rounds``; medians are printed. "floor" is no server at all: a protocol that writes a
canned answer per request, the cost of the event loop and the socket calls alone. Linux only.

    .venv/bin/python bench/server_cpu.py [--n 30000] [--conns 8] [--rounds 3] [--json FILE]

About 30 seconds. A benchmark, not a test: the machine is shared, compare the two figures of one run.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import socket
import statistics
import subprocess
import sys
import time
from pathlib import Path

BODY = json.dumps({"id": "x" * 240, "object": "chat.completion", "ok": True, "n": 1}).encode()[:300].ljust(300)
REQUEST = b"GET / HTTP/1.1\r\nHost: bench\r\nUser-Agent: bench\r\nAccept: */*\r\n\r\n"


async def app(scope: dict, receive, send) -> None:  # type: ignore[no-untyped-def]
    if scope["type"] != "http":
        return  # no lifespan
    await receive()
    await send(
        {
            "type": "http.response.start",
            "status": 200,
            "headers": [(b"content-type", b"application/json"), (b"content-length", b"300")],
        }
    )
    await send({"type": "http.response.body", "body": BODY})


class _Floor(asyncio.Protocol):
    """No HTTP, no ASGI: one canned answer per request seen. What the loop and the syscalls cost."""

    answer = b"HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: 300\r\n\r\n" + BODY

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport

    def data_received(self, data: bytes) -> None:
        self.transport.write(self.answer * data.count(b"\r\n\r\n"))  # type: ignore[attr-defined]


def serve(kind: str, port: int) -> None:
    if kind == "floor":
        import uvloop

        async def floor() -> None:
            server = await asyncio.get_running_loop().create_server(_Floor, "127.0.0.1", port)
            await server.serve_forever()

        uvloop.run(floor())
    elif kind == "uvicorn":
        import uvicorn

        config = uvicorn.Config(
            app,
            host="127.0.0.1",
            port=port,
            loop="uvloop",
            http="httptools",
            lifespan="off",
            access_log=False,
            log_level="warning",
            server_header=False,
            date_header=False,
        )
        uvicorn.Server(config).run()
    else:
        from llmswitch.server.h1serve import Server

        Server(app, host="127.0.0.1", port=port, loop="uvloop").run()


class _Client(asyncio.Protocol):
    """Sends one request, counts the answer's bytes, sends the next: every answer is ``size`` bytes."""

    def __init__(self, size: int, left: list[int], done: asyncio.Future[None]) -> None:
        self.size, self.left, self.done = size, left, done
        self.pending = 0

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport
        self._next()

    def _next(self) -> None:
        if self.left[0] <= 0:
            self.transport.close()
            if not self.done.done():
                self.done.set_result(None)
            return
        self.left[0] -= 1
        self.transport.write(REQUEST)  # type: ignore[attr-defined]

    def data_received(self, data: bytes) -> None:
        self.pending += len(data)
        while self.pending >= self.size:
            self.pending -= self.size
            self._next()


def answer_size(port: int) -> int:
    with socket.create_connection(("127.0.0.1", port)) as s:
        s.sendall(REQUEST)
        data = b""
        while b"\r\n\r\n" not in data:
            data += s.recv(65536)
        head = data.split(b"\r\n\r\n")[0]
        return len(head) + 4 + len(BODY)


async def drive(port: int, n: int, conns: int) -> None:
    import uvloop

    size = answer_size(port)
    loop = asyncio.get_running_loop()
    left = [n]
    done: list[asyncio.Future[None]] = []
    for _ in range(conns):
        fut: asyncio.Future[None] = loop.create_future()
        await loop.create_connection(lambda f=fut: _Client(size, left, f), "127.0.0.1", port)  # type: ignore[misc]
        done.append(fut)
    await asyncio.gather(*done)
    del uvloop


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def measure(kind: str, n: int, conns: int) -> float:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    proc = subprocess.Popen([sys.executable, __file__, "--serve", kind, "--port", str(port)])
    try:
        for _ in range(200):
            try:
                socket.create_connection(("127.0.0.1", port)).close()
                break
            except OSError:
                time.sleep(0.05)
        import uvloop

        uvloop.run(drive(port, max(2000, n // 10), conns))  # warm up
        before = cpu_seconds(proc.pid)
        uvloop.run(drive(port, n, conns))
        return (cpu_seconds(proc.pid) - before) / n * 1e6
    finally:
        proc.terminate()
        proc.wait(timeout=30)


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--n", type=int, default=30000)
    p.add_argument("--conns", type=int, default=8)
    p.add_argument("--rounds", type=int, default=3)
    p.add_argument("--json")
    p.add_argument("--serve", choices=["ours", "uvicorn", "floor"], help=argparse.SUPPRESS)
    p.add_argument("--port", type=int, help=argparse.SUPPRESS)
    args = p.parse_args()
    if args.serve:
        serve(args.serve, args.port)
        return 0
    runs: dict[str, list[float]] = {"uvicorn": [], "ours": [], "floor": []}
    for _ in range(args.rounds):
        for kind in runs:
            runs[kind].append(measure(kind, args.n, args.conns))
    load = os.getloadavg()
    result = {kind: round(statistics.median(v), 1) for kind, v in runs.items()}
    print(f"load average {load[0]:.2f} {load[1]:.2f} {load[2]:.2f}; {args.n} requests x {args.rounds} rounds")
    for kind, v in runs.items():
        print(f"  {kind:8s} {result[kind]:6.1f} µs CPU/request (runs: {', '.join(f'{x:.1f}' for x in v)})")
    if args.json:
        Path(args.json).write_text(json.dumps({"us_per_request": result, "runs": runs, "load": load}, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
