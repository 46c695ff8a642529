"""Fuzzing the server's parser feed (server/h1.py): random bytes and pieces of requests, split at random.

The connection (``HttpProtocol``) is fed directly on a real event loop, its transport an in-memory one that
records what is written. Whatever arrives: no exception escapes, the loop logs no error, every answer is
a well-formed HTTP/1.1 response that is never a 5xx other than 501/505 (a refusal, not a failure), and once
the connection is gone every request's task has ended.
"""

from __future__ import annotations

import asyncio
import itertools
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from llmswitch.server.h1 import HttpProtocol, ServerState
from llmswitch.server.h1limits import ServerLimits


class MemoryTransport(asyncio.Transport):
    """A transport that keeps what the server writes."""

    def __init__(self) -> None:
        super().__init__()
        self.out = bytearray()
        self.closed = False
        self.eof = False
        self.reading = True

    def write(self, data: bytes | bytearray | memoryview) -> None:
        assert not self.closed and not self.eof, "a write after close"
        self.out += data

    def close(self) -> None:
        self.closed = True

    def abort(self) -> None:
        self.closed = True

    def is_closing(self) -> bool:
        return self.closed

    def can_write_eof(self) -> bool:
        return True

    def write_eof(self) -> None:
        self.eof = True

    def pause_reading(self) -> None:
        self.reading = False

    def resume_reading(self) -> None:
        self.reading = True

    def is_reading(self) -> bool:
        return self.reading

    def get_write_buffer_size(self) -> int:
        return 0

    def get_extra_info(self, name: str, default: Any = None) -> Any:
        return {"peername": ("127.0.0.1", 50000), "sockname": ("127.0.0.1", 8000)}.get(name, default)


async def echo(scope: Any, receive: Any, send: Any) -> None:
    body = b""
    while True:
        msg = await receive()
        if msg["type"] == "http.disconnect":
            return
        body += msg.get("body", b"")
        if not msg.get("more_body"):
            break
    await send({"type": "http.response.start", "status": 200, "headers": [(b"x-len", str(len(body)).encode())]})
    await send({"type": "http.response.body", "body": body})


def statuses(out: bytes) -> list[int]:
    """The status of each response in ``out``, checking each is framed as it says."""
    found = []
    while out:
        head, sep, rest = out.partition(b"\r\n\r\n")
        assert sep, f"an incomplete response head: {out[:200]!r}"
        lines = head.split(b"\r\n")
        version, status, *_ = lines[0].split(b" ", 2)
        assert version == b"HTTP/1.1", lines[0]
        headers = dict(line.lower().split(b": ", 1) for line in lines[1:])
        found.append(int(status))
        if int(status) == 100:
            out = rest
            continue
        if b"content-length" in headers:
            n = int(headers[b"content-length"])
            assert len(rest) >= n or headers.get(b"connection") == b"close", "a body cut short"
            out = rest[n:]
        else:
            assert headers.get(b"transfer-encoding") is None, "the echo app's answers are never chunked"
            out = rest
    return found


FRAGMENTS = [
    b"GET / HTTP/1.1\r\nHost: a\r\n\r\n",
    b"POST /x HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\n\r\nhello",
    b"POST /x HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n",
    b"5\r\nhello\r\n",
    b"0\r\n\r\n",
    b"0\r\nX-Trailer: 1\r\n\r\n",
    b"Expect: 100-continue\r\n",
    b"Content-Length: 3\r\n",
    b"Transfer-Encoding: chunked\r\n",
    b"Host: b\r\n",
    b"HTTP/1.0\r\n",
    b"\r\n",
    b"\n",
    b"\x00",
    b"GET /",
    b"Connection: close\r\n",
    b"Upgrade: x\r\nConnection: upgrade\r\n",
]


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    pieces=st.lists(st.one_of(st.sampled_from(FRAGMENTS), st.binary(max_size=40)), max_size=12),
    cuts=st.lists(st.integers(min_value=0, max_value=400), max_size=8),
)
def test_any_bytes_in_any_pieces(pieces: list[bytes], cuts: list[int]) -> None:
    data = b"".join(pieces)
    points = sorted({c for c in cuts if c < len(data)} | {0, len(data)})
    reads = [data[a:b] for a, b in itertools.pairwise(points) if data[a:b]]
    loop = asyncio.new_event_loop()
    errors: list[dict[str, Any]] = []
    loop.set_exception_handler(lambda _loop, context: errors.append(context))
    try:
        state = ServerState(echo, limits=ServerLimits(max_head_bytes=512, max_headers=8, max_pipelined=2))
        transport = MemoryTransport()
        conn = HttpProtocol(state, loop)
        conn.connection_made(transport)
        for read in reads:
            if transport.closed:
                break
            if transport.reading:
                conn.data_received(read)
            loop.run_until_complete(asyncio.sleep(0))
        for _ in range(5):
            loop.run_until_complete(asyncio.sleep(0))
        conn.connection_lost(None)
        for _ in range(5):
            loop.run_until_complete(asyncio.sleep(0))
        assert not state.tasks, "a request's task outlived its connection"
        assert not state.connections
        for status in statuses(bytes(transport.out)):
            assert status in (100, 200, 400, 431, 501, 505), status
    finally:
        loop.close()
    assert errors == []
