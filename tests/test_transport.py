"""llmswitch.transport: the pooled HTTP/1.1 client, over real loopback sockets, on asyncio and uvloop.

Wire-level cases talk to :class:`Wire`, a raw asyncio server whose test-written handler decides every
byte; protocol-level ones to ``llmswitch.testing.FakeUpstream``.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import gzip
import hashlib
import json
import shutil
import socket
import ssl
import subprocess
import threading
import warnings
import zlib
from collections.abc import Awaitable, Callable, Coroutine, Iterator
from pathlib import Path
from typing import Any, NamedTuple

import pytest
import uvloop

from llmswitch import _http1, _http1_pool, _http1_request, transport
from llmswitch.errors import APIConnectionError, APITimeoutError
from llmswitch.providers.base import HTTPCall
from llmswitch.testing import FakeUpstream, Reply

Run = Callable[[Coroutine[Any, Any, Any]], Any]


@pytest.fixture(params=["asyncio", "uvloop"])
def run(request: pytest.FixtureRequest) -> Run:
    """Run a coroutine on a fresh loop of each kind (the pool closes itself when the loop ends)."""
    if request.param == "uvloop":
        return uvloop.run
    return asyncio.run


async def within(aw: Awaitable[Any], seconds: float = 5.0) -> Any:
    """Await something that must happen: a bound so a broken test fails instead of hanging."""
    async with asyncio.timeout(seconds):
        return await aw


async def until(condition: Callable[[], bool], seconds: float = 5.0) -> None:
    """Poll for a state no event announces (how many connections a server has, a paused socket)."""
    async with asyncio.timeout(seconds):
        while not condition():  # noqa: ASYNC110 - nothing to wait on but the state itself
            await asyncio.sleep(0.002)


# ---------------------------------------------------------------- a raw HTTP/1.1 server


class Request(NamedTuple):
    line: str
    headers: dict[str, str]  # lower-cased names
    raw: bytes  # request line and headers as received
    body: bytes


class ServerConn:
    """One accepted connection, as a handler sees it."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, number: int) -> None:
        self.reader = reader
        self.writer = writer
        self.number = number  # 1 for the first accepted connection
        self.gone = asyncio.Event()  # the client closed (EOF or reset)

    async def request(self, *, read_body: bool = True) -> Request | None:
        """The next request, or None when the client closed the connection."""
        try:
            raw = await self.reader.readuntil(b"\r\n\r\n")
        except (asyncio.IncompleteReadError, ConnectionError):
            self.gone.set()
            return None
        line, *rest = raw.decode("latin-1").split("\r\n")
        headers = {}
        for h in rest:
            if h:
                name, _, value = h.partition(":")
                headers[name.strip().lower()] = value.strip()
        size = int(headers.get("content-length", "0"))
        body = await self.reader.readexactly(size) if read_body and size else b""
        return Request(line, headers, raw, body)

    def write(self, data: bytes) -> None:
        self.writer.write(data)

    async def until_gone(self) -> None:
        """Read until the client closes the connection (everything read is dropped)."""
        try:
            while await self.reader.read(65536):
                pass
        except ConnectionError:
            pass
        self.gone.set()

    def close(self) -> None:
        self.writer.close()


Handler = Callable[[ServerConn], Awaitable[None]]


class Wire:
    """A raw HTTP/1.1 server on a loopback port: ``handler(conn)`` runs for each accepted connection."""

    def __init__(self, handler: Handler, *, ssl_context: ssl.SSLContext | None = None, host: str = "127.0.0.1") -> None:
        self.handler = handler
        self.ssl_context = ssl_context
        self.host = host
        self.conns: list[ServerConn] = []
        self.port = 0
        self._server: asyncio.Server | None = None

    @property
    def accepts(self) -> int:
        return len(self.conns)

    def url(self, path: str = "/v1/chat/completions") -> str:
        scheme = "https" if self.ssl_context else "http"
        host = "localhost" if self.ssl_context else f"[{self.host}]" if ":" in self.host else self.host
        return f"{scheme}://{host}:{self.port}{path}"

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        conn = ServerConn(reader, writer, len(self.conns) + 1)
        self.conns.append(conn)
        try:
            await self.handler(conn)
        except ConnectionError:
            conn.gone.set()

    async def __aenter__(self) -> Wire:
        self._server = await asyncio.start_server(self._serve, self.host, 0, ssl=self.ssl_context)
        self.port = self._server.sockets[0].getsockname()[1]
        return self

    async def __aexit__(self, *exc: object) -> None:
        assert self._server is not None
        for conn in self.conns:
            conn.writer.transport.abort()
        self._server.close()
        await self._server.wait_closed()


def response(body: bytes = b'{"ok":true}', status: str = "200 OK", headers: str = "") -> bytes:
    return (
        f"HTTP/1.1 {status}\r\nContent-Type: application/json\r\nContent-Length: {len(body)}\r\n{headers}\r\n".encode()
        + body
    )


def chunk(data: bytes) -> bytes:
    return b"%x\r\n%s\r\n" % (len(data), data)


async def answer_each(conn: ServerConn) -> None:
    """Answer every request on the connection with a small JSON naming the connection and request."""
    count = 0
    while (req := await conn.request()) is not None:
        count += 1
        conn.write(response(json.dumps({"conn": conn.number, "n": count, "line": req.line}).encode()))


def call(url: str, body: bytes = b'{"q":1}', method: str = "POST", **headers: str) -> HTTPCall:
    return HTTPCall(url, {"content-type": "application/json", **headers}, body, method)


# ---------------------------------------------------------------- URLs and request bytes


@pytest.mark.parametrize(
    ("url", "origin", "authority", "path"),
    [
        ("http://api.example.com/v1/chat", ("http", "api.example.com", 80), "api.example.com", "/v1/chat"),
        ("https://api.example.com/v1/chat", ("https", "api.example.com", 443), "api.example.com", "/v1/chat"),
        ("https://API.example.com:8443/x?a=1&b=%20", ("https", "api.example.com", 8443), "api.example.com:8443", "/x?a=1&b=%20"),
        ("http://127.0.0.1:80", ("http", "127.0.0.1", 80), "127.0.0.1", "/"),
        ("http://h:81?q=1", ("http", "h", 81), "h:81", "/?q=1"),
        ("http://[::1]:8080/p", ("http", "::1", 8080), "[::1]:8080", "/p"),
        ("https://[2001:db8::1]/p", ("https", "2001:db8::1", 443), "[2001:db8::1]", "/p"),
        ("https://h/models/gemini-pro:streamGenerateContent?alt=sse#frag", ("https", "h", 443), "h", "/models/gemini-pro:streamGenerateContent?alt=sse"),
        ("http://h/a b/é", ("http", "h", 80), "h", "/a%20b/%C3%A9"),
    ],
)  # fmt: skip
def test_urls_are_parsed_with_default_ports_and_the_path_kept_verbatim(
    url: str, origin: tuple[str, str, int], authority: str, path: str
) -> None:
    target = _http1_request.parse_url(url)
    assert (target.origin, target.authority, target.path) == (origin, authority, path)


@pytest.mark.parametrize("url", ["ftp://h/x", "http:///nohost", "http://h:99999/", "http://h:port/", "/relative"])
def test_a_url_that_cannot_be_sent_to_is_a_connection_error(run: Run, url: str) -> None:
    async def main() -> None:
        with pytest.raises(APIConnectionError, match="InvalidURL"):
            await transport.send(call(url), timeout=5, provider="acme")

    run(main())


def test_request_bytes_carry_host_and_content_length_once_and_nothing_else() -> None:
    target = _http1_request.parse_url("http://127.0.0.1:8080/v1/x?y=1")
    head = _http1_request.request_head(
        "POST", target, {"Authorization": "Bearer k", "content-type": "application/json"}, 7
    )
    assert head == (
        b"POST /v1/x?y=1 HTTP/1.1\r\nHost: 127.0.0.1:8080\r\nAuthorization: Bearer k\r\n"
        b"content-type: application/json\r\nContent-Length: 7\r\n\r\n"
    )
    # a caller's own Host / Content-Length (any case) are not doubled
    own = _http1_request.request_head("POST", target, {"HOST": "other", "content-LENGTH": "0"}, 0)
    assert own == b"POST /v1/x?y=1 HTTP/1.1\r\nHOST: other\r\ncontent-LENGTH: 0\r\n\r\n"
    # POST always says how long its body is; a GET without a body does not
    assert b"Content-Length: 0\r\n" in _http1_request.request_head("POST", target, {}, 0)
    assert b"Content-Length" not in _http1_request.request_head("GET", target, {}, 0)


@pytest.mark.parametrize("headers", [{"x-a": "s3cret\r\nInjected: 1"}, {"x-a\n": "s3cret"}, {"x-a": "s3cret\r"}])
def test_a_header_with_a_line_break_is_refused_without_showing_its_value(headers: dict[str, str]) -> None:
    with pytest.raises(ValueError, match=r"the request header 'x-a' contains a line break") as caught:
        _http1_request.request_head("POST", _http1_request.parse_url("http://h/"), {"ok": "fine", **headers}, 0)
    assert "s3cret" not in str(caught.value)


def test_credentials_in_the_url_become_basic_auth_unless_the_caller_authorizes() -> None:
    target = _http1_request.parse_url("http://us%40er:p%3Ass@h:8080/x")
    assert target.authority == "h:8080"
    head = _http1_request.request_head("GET", target, {}, 0)
    assert head == b"GET /x HTTP/1.1\r\nHost: h:8080\r\nAuthorization: Basic dXNAZXI6cDpzcw==\r\n\r\n"
    assert b"Basic" not in _http1_request.request_head("GET", target, {"authorization": "Bearer k"}, 0)


def test_the_request_on_the_wire(run: Run) -> None:
    seen: list[Request] = []

    async def handler(conn: ServerConn) -> None:
        while (req := await conn.request()) is not None:
            seen.append(req)
            conn.write(response())

    async def main() -> None:
        async with Wire(handler) as wire:
            await transport.send(call(wire.url("/v1/a?b=c"), b"hello", authorization="Bearer k"), timeout=5)
            await transport.send(call(wire.url("/v1/models"), b"", "GET"), timeout=5)

    run(main())
    post, get = seen
    assert post.line == "POST /v1/a?b=c HTTP/1.1"
    assert post.headers == {
        "host": post.headers["host"],
        "content-type": "application/json",
        "authorization": "Bearer k",
        "content-length": "5",
    }
    assert post.headers["host"].startswith("127.0.0.1:") and post.body == b"hello"
    assert get.line == "GET /v1/models HTTP/1.1" and "content-length" not in get.headers
    assert "user-agent" not in get.headers and "accept-encoding" not in get.headers


# ---------------------------------------------------------------- keep-alive and the pool


def test_sequential_requests_share_one_connection(run: Run) -> None:
    async def main() -> None:
        async with Wire(answer_each) as wire:
            bodies = [json.loads((await transport.send(call(wire.url()), timeout=5)).body) for _ in range(20)]
            assert wire.accepts == 1
            assert [b["n"] for b in bodies] == list(range(1, 21))
            stream = await transport.open_stream(call(wire.url()), timeout=5)
            assert json.loads(await stream.read())["n"] == 21
            assert json.loads((await transport.send(call(wire.url()), timeout=5)).body)["n"] == 22
            assert wire.accepts == 1

    run(main())


def test_concurrent_requests_open_connections_as_needed_and_the_pool_reuses_them(run: Run) -> None:
    async def main() -> None:
        go = asyncio.Event()

        async def handler(conn: ServerConn) -> None:
            while (await conn.request()) is not None:
                await go.wait()
                conn.write(response())

        async with Wire(handler) as wire:
            tasks = [asyncio.create_task(transport.send(call(wire.url()), timeout=5)) for _ in range(8)]
            await until(lambda: wire.accepts == 8)  # no cap on connections: all eight are in flight at once
            go.set()
            assert [r.status for r in await within(asyncio.gather(*tasks))] == [200] * 8
            for _ in range(8):
                await transport.send(call(wire.url()), timeout=5)
            assert wire.accepts == 8

    run(main())


def test_an_expired_idle_connection_is_closed_not_reused(run: Run, monkeypatch: pytest.MonkeyPatch) -> None:
    async def main() -> None:
        async with Wire(answer_each) as wire:
            monkeypatch.setattr(_http1_pool, "IDLE_TTL", -1.0)  # every idle connection has expired when next wanted
            await transport.send(call(wire.url()), timeout=5)
            await transport.send(call(wire.url()), timeout=5)
            assert wire.accepts == 2
            await within(wire.conns[0].gone.wait())  # the expired one was closed, not just left behind

    run(main())


def test_a_pool_keeps_at_most_max_idle_connections_per_origin(run: Run, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(_http1_pool, "MAX_IDLE", 2)

    async def main() -> None:
        go = asyncio.Event()

        async def handler(conn: ServerConn) -> None:
            while (await conn.request()) is not None:
                await go.wait()
                conn.write(response())
            conn.gone.set()

        async with Wire(handler) as wire:
            tasks = [asyncio.create_task(transport.send(call(wire.url()), timeout=5)) for _ in range(5)]
            await until(lambda: wire.accepts == 5)
            go.set()
            await within(asyncio.gather(*tasks))
            await until(lambda: sum(c.gone.is_set() for c in wire.conns) == 3)  # closed as the pool overflowed
            for _ in range(2):
                await transport.send(call(wire.url()), timeout=5)
            assert wire.accepts == 5 and sum(c.gone.is_set() for c in wire.conns) == 3

    run(main())


def _reads_then_dies(seen: list[Request], *, clean: bool) -> Handler:
    """Answers the first request on connection 1, then reads the second whole and closes without an answer
    (as a server that crashed, or whose idle timeout struck, after taking the request); later
    connections answer everything."""

    async def handler(conn: ServerConn) -> None:
        if conn.number == 1:
            assert await conn.request() is not None
            conn.write(response(b'{"first":true}'))
            req = await conn.request()
            assert req is not None
            seen.append(req)
            if clean:
                conn.close()
            else:
                conn.writer.transport.abort()
            return
        while (req := await conn.request()) is not None:
            seen.append(req)
            conn.write(response(json.dumps({"conn": conn.number}).encode()))

    return handler


@pytest.mark.parametrize("clean", [False, True], ids=["reset", "fin"])
def test_a_post_the_server_read_before_closing_a_reused_connection_is_not_sent_again(run: Run, clean: bool) -> None:
    """The upstream may have started a paid generation: a second copy must not follow (the router decides
    what to do with the connection error). This used to be resent on a fresh connection."""
    seen: list[Request] = []

    async def main() -> None:
        async with Wire(_reads_then_dies(seen, clean=clean)) as wire:
            assert (await transport.send(call(wire.url()), timeout=5)).body == b'{"first":true}'
            with pytest.raises(APIConnectionError, match=r"ServerDisconnected|ConnectionResetError"):
                await transport.send(call(wire.url(), b'{"gen":2}'), timeout=5)
            assert wire.accepts == 1 and [r.body for r in seen] == [b'{"gen":2}']
            await transport.send(call(wire.url()), timeout=5)  # the next request gets a new connection
            assert wire.accepts == 2

    run(main())


def test_a_streamed_post_the_server_read_before_closing_is_not_sent_again(run: Run) -> None:
    seen: list[Request] = []

    async def main() -> None:
        async with Wire(_reads_then_dies(seen, clean=True)) as wire:
            await transport.send(call(wire.url()), timeout=5)
            with pytest.raises(APIConnectionError, match="ServerDisconnected"):
                await transport.open_stream(call(wire.url(), b'{"gen":2}'), timeout=5)
            assert wire.accepts == 1 and len(seen) == 1

    run(main())


@pytest.mark.parametrize(
    ("method", "headers"), [("GET", {}), ("PUT", {}), ("POST", {"Idempotency-Key": "k-1"})], ids=["get", "put", "key"]
)
def test_a_repeatable_request_on_a_reused_connection_that_died_unanswered_is_sent_again_once(
    run: Run, method: str, headers: dict[str, str]
) -> None:
    seen: list[Request] = []

    async def main() -> None:
        async with Wire(_reads_then_dies(seen, clean=False)) as wire:
            await transport.send(call(wire.url()), timeout=5)
            raw = await transport.send(call(wire.url(), b'{"gen":2}', method, **headers), timeout=5)
            assert json.loads(raw.body)["conn"] == 2 and wire.accepts == 2
            assert [r.line.split()[0] for r in seen] == [method, method]

    run(main())


def test_a_pooled_connection_the_server_closed_while_idle_is_replaced_transparently(run: Run) -> None:
    seen: list[Request] = []

    async def handler(conn: ServerConn) -> None:
        while (req := await conn.request()) is not None:
            seen.append(req)
            conn.write(response(json.dumps({"conn": conn.number}).encode()))
            if conn.number == 1:
                await conn.writer.drain()
                conn.close()  # an idle timeout, after the answer: the client sees it before reusing
                return

    async def main() -> None:
        async with Wire(handler) as wire:
            await transport.send(call(wire.url()), timeout=5)
            await until(lambda: not any(transport._pool().idle.values()))  # the close was read: nothing idle
            raw = await transport.send(call(wire.url(), b'{"gen":2}'), timeout=5)
            assert json.loads(raw.body)["conn"] == 2 and len(seen) == 2

    run(main())


def test_a_close_waiting_unread_on_an_idle_connection_is_noticed_before_writing(
    run: Run, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The server's FIN has arrived but the loop has not run since (a busy loop): the pool checks an idle
    connection's socket before reusing it, so the POST goes out once, on a new connection."""
    monkeypatch.setattr(_http1_pool, "RECHECK_AFTER", 0.0)
    closed = threading.Event()
    seen: list[Request] = []

    async def handler(conn: ServerConn) -> None:
        while (req := await conn.request()) is not None:
            seen.append(req)
            conn.write(response(json.dumps({"conn": conn.number}).encode()))
            if conn.number == 1:
                await conn.writer.drain()
                conn.writer.close()
                await conn.writer.wait_closed()  # the socket is closed (FIN sent), not just scheduled to be
                closed.set()
                return

    async def main(wire: Wire) -> None:
        await transport.send(call(wire.url()), timeout=5)
        assert closed.wait(5)  # blocks the loop on purpose: the close stays unread
        raw = await transport.send(call(wire.url(), b'{"gen":2}'), timeout=5)
        assert json.loads(raw.body)["conn"] == 2

    with serving_elsewhere(handler) as wire:
        run(main(wire))
    assert [r.body for r in seen] == [b'{"q":1}', b'{"gen":2}']


def test_a_fresh_connection_that_fails_is_not_retried(run: Run) -> None:
    async def handler(conn: ServerConn) -> None:
        assert await conn.request() is not None
        conn.writer.transport.abort()

    async def main() -> None:
        async with Wire(handler) as wire:
            with pytest.raises(APIConnectionError, match=r"acme: connection to 127\.0\.0\.1:\d+ failed: "):
                await transport.send(call(wire.url()), timeout=5, provider="acme")
            assert wire.accepts == 1

    run(main())


def test_a_reused_connection_that_fails_after_answer_bytes_is_not_retried(run: Run) -> None:
    async def handler(conn: ServerConn) -> None:
        assert await conn.request() is not None
        conn.write(response())
        assert await conn.request() is not None
        conn.write(b"HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\npartial")
        await conn.writer.drain()
        conn.close()

    async def main() -> None:
        async with Wire(handler) as wire:
            await transport.send(call(wire.url()), timeout=5)
            with pytest.raises(APIConnectionError, match="ServerDisconnected"):
                await transport.send(call(wire.url()), timeout=5)
            assert wire.accepts == 1

    run(main())


def test_a_server_that_says_connection_close_gets_a_new_connection_next_time(run: Run) -> None:
    async def handler(conn: ServerConn) -> None:
        assert await conn.request() is not None
        conn.write(response(headers="Connection: close\r\n"))
        await conn.writer.drain()
        conn.close()

    async def main() -> None:
        async with Wire(handler) as wire:
            for _ in range(3):
                assert (await transport.send(call(wire.url()), timeout=5)).status == 200
            assert wire.accepts == 3

    run(main())


def test_close_session_closes_idle_connections_and_a_new_pool_follows(run: Run) -> None:
    async def main() -> None:
        async with Wire(answer_each) as wire:
            await transport.send(call(wire.url()), timeout=5)
            await transport.close_session()
            await within(wire.conns[0].gone.wait())
            assert (await transport.send(call(wire.url()), timeout=5)).status == 200
            assert wire.accepts == 2

    run(main())


# ---------------------------------------------------------------- response framing


def test_a_chunked_answer_is_dechunked(run: Run) -> None:
    async def handler(conn: ServerConn) -> None:
        while (await conn.request()) is not None:
            conn.write(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n")
            conn.write(chunk(b'{"a":') + chunk(b"1}") + b"0\r\n\r\n")

    async def main() -> None:
        async with Wire(handler) as wire:
            assert (await transport.send(call(wire.url()), timeout=5)).body == b'{"a":1}'
            stream = await transport.open_stream(call(wire.url()), timeout=5)
            assert b"".join([c async for c in stream.iter_chunks()]) == b'{"a":1}'
            assert wire.accepts == 1  # both answers ended cleanly: one connection

    run(main())


def test_an_answer_without_length_ends_when_the_server_closes(run: Run) -> None:
    async def handler(conn: ServerConn) -> None:
        assert await conn.request() is not None
        conn.write(b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\n\r\nall of ")
        await conn.writer.drain()
        conn.write(b"it")
        await conn.writer.drain()
        conn.close()

    async def main() -> None:
        async with Wire(handler) as wire:
            assert (await transport.send(call(wire.url()), timeout=5)).body == b"all of it"
            stream = await transport.open_stream(call(wire.url()), timeout=5)
            assert b"".join([c async for c in stream.iter_chunks()]) == b"all of it"
            assert wire.accepts == 2

    run(main())


def test_a_100_continue_before_the_answer_is_skipped(run: Run) -> None:
    async def handler(conn: ServerConn) -> None:
        while (await conn.request()) is not None:
            conn.write(b"HTTP/1.1 100 Continue\r\n\r\n")
            await conn.writer.drain()
            conn.write(response(b"real", "201 Created", "X-Final: yes\r\n"))

    async def main() -> None:
        async with Wire(handler) as wire:
            raw = await transport.send(call(wire.url()), timeout=5)
            assert (raw.status, raw.body) == (201, b"real")
            stream = await transport.open_stream(call(wire.url()), timeout=5)
            assert stream.status == 201 and stream.headers["x-final"] == "yes"
            assert await stream.read() == b"real"
            assert wire.accepts == 1

    run(main())


def test_head_has_no_body(run: Run) -> None:
    async def handler(conn: ServerConn) -> None:
        while (await conn.request()) is not None:
            conn.write(b"HTTP/1.1 200 OK\r\nContent-Length: 1234\r\n\r\n")

    async def main() -> None:
        async with Wire(handler) as wire:
            raw = await within(transport.send(call(wire.url(), b"", "HEAD"), timeout=5))
            assert (raw.status, raw.body) == (200, b"")
            raw = await within(transport.send(call(wire.url(), b"", "HEAD"), timeout=5))
            assert raw.status == 200

    run(main())


def test_no_content_and_not_modified_have_no_body(run: Run) -> None:
    async def handler(conn: ServerConn) -> None:
        statuses = iter(["204 No Content", "304 Not Modified", "200 OK"])
        while (await conn.request()) is not None:
            status = next(statuses)
            conn.write(f"HTTP/1.1 {status}\r\n\r\n".encode() if status != "200 OK" else response(b"x"))

    async def main() -> None:
        async with Wire(handler) as wire:
            assert (await within(transport.send(call(wire.url()), timeout=5))).status == 204
            assert (await within(transport.send(call(wire.url()), timeout=5))).status == 304
            assert (await transport.send(call(wire.url()), timeout=5)).body == b"x"
            assert wire.accepts == 1

    run(main())


def _deflate_raw(data: bytes) -> bytes:
    z = zlib.compressobj(wbits=-15)
    return z.compress(data) + z.flush()


@pytest.mark.parametrize(
    ("encoding", "encode"),
    [("gzip", gzip.compress), ("x-gzip", gzip.compress), ("deflate", zlib.compress), ("deflate", _deflate_raw)],
)
def test_compressed_answers_are_decompressed(run: Run, encoding: str, encode: Callable[[bytes], bytes]) -> None:
    text = json.dumps({"text": "hello " * 2000}).encode()
    packed = encode(text)

    async def handler(conn: ServerConn) -> None:
        while (await conn.request()) is not None:
            conn.write(response(packed, headers=f"Content-Encoding: {encoding}\r\n"))
            # and streamed in small pieces, each decompressed as it comes
            assert await conn.request() is not None
            conn.write(
                f"HTTP/1.1 200 OK\r\nContent-Encoding: {encoding}\r\nTransfer-Encoding: chunked\r\n\r\n".encode()
            )
            for at in range(0, len(packed), 50):
                conn.write(chunk(packed[at : at + 50]))
                await conn.writer.drain()
            conn.write(b"0\r\n\r\n")

    async def main() -> None:
        async with Wire(handler) as wire:
            assert (await transport.send(call(wire.url()), timeout=5)).body == text
            stream = await transport.open_stream(call(wire.url()), timeout=5)
            assert stream.headers["content-encoding"] == encoding
            assert b"".join([c async for c in stream.iter_chunks()]) == text
            assert wire.accepts == 1

    run(main())


def test_other_encodings_pass_through_unchanged(run: Run) -> None:
    async def handler(conn: ServerConn) -> None:
        assert await conn.request() is not None
        conn.write(response(b"\x8b\x00brotli?", headers="Content-Encoding: br\r\n"))

    async def main() -> None:
        async with Wire(handler) as wire:
            assert (await transport.send(call(wire.url()), timeout=5)).body == b"\x8b\x00brotli?"

    run(main())


def test_a_corrupt_compressed_body_is_a_connection_error(run: Run) -> None:
    async def handler(conn: ServerConn) -> None:
        assert await conn.request() is not None
        conn.write(response(b"not gzip at all", headers="Content-Encoding: gzip\r\n"))

    async def main() -> None:
        async with Wire(handler) as wire:
            with pytest.raises(APIConnectionError, match="error: Error -3"):
                await transport.send(call(wire.url()), timeout=5)

    run(main())


@pytest.mark.parametrize(
    "answer", [b"garbage\r\n\r\n", b"HTTP/1.1 abc OK\r\n\r\n", b"HTTP/1.1 200 OK\r\nContent-Length: x\r\n\r\n"]
)
def test_a_malformed_answer_is_a_connection_error(run: Run, answer: bytes) -> None:
    async def handler(conn: ServerConn) -> None:
        assert await conn.request() is not None
        conn.write(answer)
        await conn.until_gone()

    async def main() -> None:
        async with Wire(handler) as wire:
            with pytest.raises(APIConnectionError, match=r"acme: connection to .* failed: HttpParser\w*Error"):
                await transport.send(call(wire.url()), timeout=5, provider="acme")
            await within(wire.conns[0].gone.wait())  # and that connection is dropped

    run(main())


def test_a_second_answer_to_one_request_drops_the_connection(run: Run) -> None:
    async def handler(conn: ServerConn) -> None:
        while (await conn.request()) is not None:
            conn.write(response(b"one") + response(b"two"))

    async def main() -> None:
        async with Wire(handler) as wire:
            assert (await transport.send(call(wire.url()), timeout=5)).body == b"one"
            assert (await transport.send(call(wire.url()), timeout=5)).body == b"one"
            assert wire.accepts == 2

    run(main())


def test_error_statuses_come_with_lower_cased_headers(run: Run) -> None:
    async def handler(conn: ServerConn) -> None:
        while (req := await conn.request()) is not None:
            if req.line.startswith("POST /ok"):
                conn.write(response(headers="X-Request-Id: r1\r\n"))
            else:
                conn.write(
                    response(b'{"error":{}}', "429 Too Many Requests", "Retry-After: 2\r\nX-RateLimit-Reset: 5s\r\n")
                )

    async def main() -> None:
        async with Wire(handler) as wire:
            raw = await transport.send(call(wire.url("/limited")), timeout=5)
            assert raw.status == 429 and raw.body == b'{"error":{}}'
            assert raw.headers["retry-after"] == "2" and raw.headers["x-ratelimit-reset"] == "5s"
            assert raw.headers["content-type"] == "application/json"
            assert (await transport.send(call(wire.url("/ok")), timeout=5)).headers == {}
            stream = await transport.open_stream(call(wire.url("/ok")), timeout=5)
            assert stream.headers["x-request-id"] == "r1" and stream.status == 200
            stream.close()

    run(main())


# ---------------------------------------------------------------- streams


def test_iter_chunks_yields_each_chunk_as_it_is_sent(run: Run) -> None:
    async def main() -> None:
        got = [asyncio.Event() for _ in range(3)]

        async def handler(conn: ServerConn) -> None:
            assert await conn.request() is not None
            conn.write(b"HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nTransfer-Encoding: chunked\r\n\r\n")
            for i in range(3):
                conn.write(chunk(b"data: %d\n\n" % i))
                await got[i].wait()  # the next token only once the client has this one
            conn.write(b"0\r\n\r\n")

        async with Wire(handler) as wire:
            stream = await transport.open_stream(call(wire.url()), timeout=5)
            seen = []
            async for data in stream.iter_chunks():
                seen.append(data)
                got[len(seen) - 1].set()
            assert seen == [b"data: 0\n\n", b"data: 1\n\n", b"data: 2\n\n"]

    run(main())


def test_a_stream_cut_midway_raises_from_the_iterator(run: Run) -> None:
    async def main() -> None:
        async with FakeUpstream() as up:
            up.script(Reply(text="one two three four five six", chunk_size=4, cut_after=3, chunk_delay=0.001))
            body = json.dumps({"model": "gpt-4o", "messages": [{"role": "user", "content": "x"}], "stream": True})
            url = f"{up.openai_base}/chat/completions"
            stream = await transport.open_stream(call(url, body.encode()), timeout=5, provider="openai")
            assert stream.status == 200 and stream.headers["content-type"].startswith("text/event-stream")
            seen = b""
            with pytest.raises(
                APIConnectionError, match=r"openai: connection to 127\.0\.0\.1:\d+ failed: ServerDisconnected"
            ):
                async for data in stream.iter_chunks():
                    seen += data
            assert seen.count(b"data: ") >= 3
            stream.close()

    run(main())


def test_early_close_aborts_and_later_requests_still_work(run: Run) -> None:
    async def main() -> None:
        async def handler(conn: ServerConn) -> None:
            if conn.number > 1:
                await answer_each(conn)
                return
            assert await conn.request() is not None
            conn.write(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n" + chunk(b"first"))
            await conn.until_gone()

        async with Wire(handler) as wire:
            stream = await transport.open_stream(call(wire.url()), timeout=5)
            chunks = stream.iter_chunks()
            assert await anext(chunks) == b"first"
            stream.close()
            await within(wire.conns[0].gone.wait())
            assert [c async for c in chunks] == []  # closed: nothing more comes
            assert json.loads((await transport.send(call(wire.url()), timeout=5)).body)["conn"] == 2

    run(main())


def test_a_read_stream_goes_back_to_the_pool_on_close(run: Run) -> None:
    async def main() -> None:
        async with Wire(answer_each) as wire:
            stream = await transport.open_stream(call(wire.url()), timeout=5)
            assert [json.loads(c)["n"] async for c in stream.iter_chunks()] == [1]
            stream.close()
            stream.close()  # twice is harmless
            assert json.loads((await transport.send(call(wire.url()), timeout=5)).body)["n"] == 2
            assert wire.accepts == 1

    run(main())


def test_a_slow_reader_pauses_the_socket_and_gets_every_byte(run: Run) -> None:
    payload = hashlib.sha256(b"seed").digest() * (4 * 1024 * 1024 // 32)  # 4 MB

    async def handler(conn: ServerConn) -> None:
        assert await conn.request() is not None
        conn.write(b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n" % len(payload))
        for at in range(0, len(payload), 65536):
            conn.write(payload[at : at + 65536])
            await conn.writer.drain()
        await conn.until_gone()

    async def main() -> None:
        async with Wire(handler) as wire:
            stream = await transport.open_stream(call(wire.url()), timeout=5)
            conn = stream._conn
            assert conn is not None
            await until(lambda: conn.read_paused)  # nobody reads: the client stops reading the socket
            assert conn.buffered <= _http1.READ_HIGH_WATER + 256 * 1024
            received = bytearray()
            async for data in stream.iter_chunks():
                received += data
                assert len(data) <= _http1.READ_HIGH_WATER + 256 * 1024
            assert bytes(received) == payload

    run(main())


# ---------------------------------------------------------------- timeouts and cancellation


def test_a_stream_whose_headers_do_not_come_times_out(run: Run) -> None:
    async def handler(conn: ServerConn) -> None:
        assert await conn.request() is not None
        await conn.until_gone()

    async def main() -> None:
        async with Wire(handler) as wire:
            with pytest.raises(APITimeoutError, match=r"acme: request to 127\.0\.0\.1:\d+ timed out"):
                await within(transport.open_stream(call(wire.url()), timeout=0.2, provider="acme"))
            await within(wire.conns[0].gone.wait())  # the connection was aborted

    run(main())


def test_each_wait_for_stream_bytes_has_the_timeout_not_the_whole_stream(run: Run) -> None:
    async def handler(conn: ServerConn) -> None:
        assert await conn.request() is not None
        conn.write(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n")
        for i in range(12):  # 0.6 s in all, 0.05 s apart
            await asyncio.sleep(0.05)
            if conn.writer.transport.is_closing():
                break
            conn.write(chunk(b"%d," % i))
        conn.write(chunk(b"stall"))
        await conn.until_gone()

    async def main() -> None:
        async with Wire(handler) as wire:
            stream = await transport.open_stream(call(wire.url()), timeout=0.4)
            seen = b""
            with pytest.raises(APITimeoutError):
                async for data in stream.iter_chunks():
                    seen += data
            assert seen == b"0,1,2,3,4,5,6,7,8,9,10,11,stall"
            stream.close()
            await within(wire.conns[0].gone.wait())

    run(main())


def test_send_timeout_bounds_the_whole_exchange(run: Run) -> None:
    async def handler(conn: ServerConn) -> None:
        assert await conn.request() is not None
        conn.write(b"HTTP/1.1 200 OK\r\nContent-Length: 40\r\n\r\n")
        for _ in range(40):  # a byte every 0.05 s: no single wait is long, the whole is 2 s
            await asyncio.sleep(0.05)
            if conn.writer.transport.is_closing():
                break
            conn.write(b"x")
        await conn.until_gone()

    async def main() -> None:
        async with Wire(handler) as wire:
            with pytest.raises(APITimeoutError, match="timed out"):
                await within(transport.send(call(wire.url()), timeout=0.4))
            await within(wire.conns[0].gone.wait())

    run(main())


def test_one_connection_timer_serves_exchanges_with_different_timeouts(run: Run) -> None:
    """The connection's timer is shared between exchanges: a later deadline re-arms it, an earlier moves it."""

    async def main() -> None:
        go = asyncio.Event()

        async def handler(conn: ServerConn) -> None:
            while (req := await conn.request()) is not None:
                if req.line.startswith("POST /wait"):
                    await go.wait()
                    go.clear()
                if not req.line.startswith("POST /never"):
                    conn.write(response(req.line.encode()))

        async with Wire(handler) as wire:
            for later in (None, 5.0):
                await transport.send(call(wire.url()), timeout=0.1)  # leaves the timer 0.1 s out
                task = asyncio.create_task(transport.send(call(wire.url("/wait")), timeout=later))
                await asyncio.sleep(0.3)  # past that timer: this exchange's own deadline is what counts
                go.set()
                assert (await within(task)).status == 200
            await transport.send(call(wire.url()), timeout=30)  # the timer now fires late...
            with pytest.raises(APITimeoutError):  # ...and a shorter deadline still holds
                await within(transport.send(call(wire.url("/never")), timeout=0.2), 2)
            assert wire.accepts == 1

    run(main())


def test_cancelling_a_request_aborts_its_connection(run: Run) -> None:
    async def main() -> None:
        arrived = asyncio.Event()

        async def handler(conn: ServerConn) -> None:
            if conn.number > 1:
                await answer_each(conn)
                return
            assert await conn.request() is not None
            arrived.set()
            await conn.until_gone()

        async with Wire(handler) as wire:
            task = asyncio.create_task(transport.send(call(wire.url()), timeout=None))
            await within(arrived.wait())
            task.cancel()
            with pytest.raises(asyncio.CancelledError):
                await task
            await within(wire.conns[0].gone.wait())
            assert json.loads((await transport.send(call(wire.url()), timeout=5)).body)["conn"] == 2

    run(main())


def test_cancelling_a_stream_reader_aborts_its_connection(run: Run) -> None:
    async def main() -> None:
        async def handler(conn: ServerConn) -> None:
            if conn.number > 1:
                await answer_each(conn)
                return
            assert await conn.request() is not None
            conn.write(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n" + chunk(b"one"))
            await conn.until_gone()

        async with Wire(handler) as wire:
            stream = await transport.open_stream(call(wire.url()), timeout=None)

            async def consume() -> None:
                async for _ in stream.iter_chunks():
                    pass

            task = asyncio.create_task(consume())
            conn = stream._conn
            assert conn is not None
            await until(lambda: conn.waiter is not None)  # it read "one" and waits for more
            task.cancel()
            with pytest.raises(asyncio.CancelledError):
                await task
            await within(wire.conns[0].gone.wait())
            stream.close()
            assert json.loads((await transport.send(call(wire.url()), timeout=5)).body)["conn"] == 2

    run(main())


# ---------------------------------------------------------------- failing to connect


def test_connection_refused_is_a_connection_error(run: Run) -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]  # nothing listens once it is closed

    async def main() -> None:
        with pytest.raises(
            APIConnectionError, match=rf"acme: connection to 127\.0\.0\.1:{port} failed: ConnectionRefusedError"
        ):
            await transport.send(call(f"http://127.0.0.1:{port}/v1"), timeout=5, provider="acme")
        with pytest.raises(APIConnectionError, match="ConnectionRefusedError"):
            await transport.open_stream(call(f"http://127.0.0.1:{port}/v1"), timeout=5)

    run(main())


def test_an_unknown_host_is_a_connection_error(run: Run) -> None:
    async def main() -> None:
        with pytest.raises(APIConnectionError, match=r"provider: connection to no-such-host\.invalid failed: gaierror"):
            await transport.send(call("http://no-such-host.invalid/v1"), timeout=10)

    run(main())


def test_a_host_name_is_resolved_and_each_address_tried(run: Run) -> None:
    async def main() -> None:
        async with Wire(answer_each) as wire:
            # localhost may resolve to ::1 first, where nothing listens: 127.0.0.1 is tried next
            raw = await transport.send(call(f"http://localhost:{wire.port}/x"), timeout=5)
            assert json.loads(raw.body)["line"] == "POST /x HTTP/1.1"

    run(main())


def _has_ipv6_loopback() -> bool:
    try:
        with socket.socket(socket.AF_INET6) as s:
            s.bind(("::1", 0))
    except OSError:
        return False
    return True


@pytest.mark.skipif(not _has_ipv6_loopback(), reason="no IPv6 loopback")
def test_an_ipv6_literal_host(run: Run) -> None:
    seen: list[Request] = []

    async def handler(conn: ServerConn) -> None:
        while (req := await conn.request()) is not None:
            seen.append(req)
            conn.write(response())

    async def main() -> None:
        async with Wire(handler, host="::1") as wire:
            assert wire.url().startswith("http://[::1]:")
            assert (await transport.send(call(wire.url()), timeout=5)).status == 200

    run(main())
    assert seen[0].headers["host"].startswith("[::1]:")


# ---------------------------------------------------------------- large bodies


def test_a_32_mb_request_body_arrives_whole(run: Run) -> None:
    body = hashlib.sha256(b"big").digest() * (32 * 1024 * 1024 // 32)

    async def handler(conn: ServerConn) -> None:
        while (req := await conn.request()) is not None:
            conn.write(
                response(json.dumps({"size": len(req.body), "sha": hashlib.sha256(req.body).hexdigest()}).encode())
            )

    async def main() -> None:
        async with Wire(handler) as wire:
            raw = await within(transport.send(call(wire.url(), body), timeout=30), 30)
            assert json.loads(raw.body) == {"size": len(body), "sha": hashlib.sha256(body).hexdigest()}
            stream = await within(transport.open_stream(call(wire.url(), body), timeout=30), 30)
            assert json.loads(await stream.read())["size"] == len(body)
            assert wire.accepts == 1

    run(main())


def test_an_answer_before_the_whole_body_was_read_stops_the_upload(run: Run) -> None:
    body = b"x" * (16 * 1024 * 1024)

    async def handler(conn: ServerConn) -> None:
        if conn.number > 1:
            await answer_each(conn)
            return
        assert await conn.request(read_body=False) is not None
        conn.write(response(b'{"error":"too large"}', "413 Payload Too Large"))
        await conn.writer.drain()
        await asyncio.sleep(3600)  # never reads the body, never closes: only the client can end this

    async def main() -> None:
        async with Wire(handler) as wire:
            raw = await within(transport.send(call(wire.url(), body), timeout=None))
            assert raw.status == 413 and raw.body == b'{"error":"too large"}'
            assert json.loads((await transport.send(call(wire.url()), timeout=5)).body)["conn"] == 2

    run(main())


# ---------------------------------------------------------------- the fake upstream


def test_against_the_fake_upstream(run: Run) -> None:
    async def main() -> None:
        async with FakeUpstream() as up:
            url = f"{up.openai_base}/chat/completions"
            body = json.dumps({"model": "gpt-4o", "messages": [{"role": "user", "content": "Hi"}]}).encode()
            up.script(Reply(text="Hello!"), Reply(status=429, retry_after=0.5), Reply(latency=1.0), Reply(hang=True))
            raw = await transport.send(call(url, body), timeout=5)
            assert raw.status == 200 and json.loads(raw.body)["choices"][0]["message"]["content"] == "Hello!"
            raw = await transport.send(call(url, body), timeout=5)
            assert raw.status == 429 and raw.headers["retry-after"] in ("0.5", "1")
            with pytest.raises(APITimeoutError):
                await transport.send(call(url, body), timeout=0.2, provider="openai")
            with pytest.raises(APITimeoutError):
                await transport.open_stream(call(url, body), timeout=0.2)
            assert await up.await_disconnects(2)
            raw = await transport.send(call(url, body), timeout=5)
            assert raw.status == 200

    run(main())


# ---------------------------------------------------------------- TLS


@pytest.fixture(scope="module")
def certificate(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    if shutil.which("openssl") is None:
        pytest.skip("the openssl CLI is not installed")
    d = tmp_path_factory.mktemp("tls")
    cert, key = d / "cert.pem", d / "key.pem"
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes",
         "-keyout", str(key), "-out", str(cert), "-days", "2", "-subj", "/CN=localhost",
         "-addext", "subjectAltName=DNS:localhost,IP:127.0.0.1"],
        check=True, capture_output=True,
    )  # fmt: skip
    return cert, key


@pytest.fixture
def trusting(certificate: tuple[Path, Path]) -> Iterator[ssl.SSLContext]:
    """The client trusts the test certificate (and nothing else) for the test's duration."""
    _http1.set_tls_context(ssl.create_default_context(cafile=str(certificate[0])))
    try:
        yield _http1.tls_context()
    finally:
        _http1.set_tls_context(None)


def server_tls(certificate: tuple[Path, Path]) -> ssl.SSLContext:
    ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ctx.load_cert_chain(str(certificate[0]), str(certificate[1]))
    return ctx


def test_https_with_keep_alive(run: Run, certificate: tuple[Path, Path], trusting: ssl.SSLContext) -> None:
    async def main() -> None:
        async with Wire(answer_each, ssl_context=server_tls(certificate)) as wire:
            for n in (1, 2, 3):
                raw = await transport.send(call(wire.url()), timeout=5)
                assert json.loads(raw.body)["n"] == n
            stream = await transport.open_stream(call(wire.url()), timeout=5)
            assert json.loads(await stream.read())["n"] == 4
            assert wire.accepts == 1

    run(main())


def test_https_checks_the_certificate(run: Run, certificate: tuple[Path, Path]) -> None:
    async def main() -> None:
        async with Wire(answer_each, ssl_context=server_tls(certificate)) as wire:
            # the default context trusts the system's CAs, which never signed this certificate
            with pytest.raises(APIConnectionError, match="SSLCertVerificationError"):
                await transport.send(call(wire.url()), timeout=5)

    run(main())


@contextlib.contextmanager
def serving_elsewhere(handler: Handler, *, ssl_context: ssl.SSLContext | None = None) -> Iterator[Wire]:
    """A :class:`Wire` on a thread and loop of its own, outliving the client's loop."""
    loop = asyncio.new_event_loop()
    wire = Wire(handler, ssl_context=ssl_context)
    loop.run_until_complete(wire.__aenter__())
    thread = threading.Thread(target=loop.run_forever, daemon=True)
    thread.start()
    try:
        yield wire
    finally:
        loop.call_soon_threadsafe(loop.stop)
        thread.join(10)
        loop.run_until_complete(_stop(wire))
        loop.close()


async def _stop(wire: Wire) -> None:
    await wire.__aexit__()
    handlers = [t for t in asyncio.all_tasks() if t is not asyncio.current_task()]
    for task in handlers:
        task.cancel()
    await asyncio.gather(*handlers, return_exceptions=True)


@pytest.mark.parametrize("runner", [asyncio.run, uvloop.run], ids=["asyncio", "uvloop"])
def test_a_run_that_ends_leaves_no_connection_open(
    runner: Run, certificate: tuple[Path, Path], trusting: ssl.SSLContext
) -> None:
    """An SDK user's ``asyncio.run`` without any cleanup: no ResourceWarning ("unclosed ...") afterwards."""
    left_open: list[asyncio.BaseTransport] = []

    async def main(wires: list[Wire]) -> None:
        for wire in wires:
            stream = await transport.open_stream(call(wire.url()), timeout=5)
            assert stream.status == 200  # left open, never closed
            await transport.send(call(wire.url()), timeout=5)  # on a second connection, then idle in the pool
        left_open.extend(c.transport for c in transport._pool().conns if c.transport is not None)

    with (
        serving_elsewhere(answer_each, ssl_context=server_tls(certificate)) as tls,
        serving_elsewhere(answer_each) as plain,
        warnings.catch_warnings(record=True) as caught,
    ):
        warnings.simplefilter("always")
        runner(main([tls, plain]))
        gc.collect()
        assert len(left_open) == 4 and all(t.is_closing() for t in left_open)
        assert [str(w.message) for w in caught if issubclass(w.category, ResourceWarning)] == []
