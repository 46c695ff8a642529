"""Our HTTP/1.1 server (server/h1.py, server/h1serve.py) serving a small ASGI app defined here, on loopback.

Clients are raw sockets (exact bytes), plus ``http.client`` where bytes do not matter. Every test runs on
asyncio's loop and on uvloop's.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import http.client
import json
import logging
import socket
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import pytest

from llmswitch.server.h1serve import GC_GEN0_THRESHOLD, Server

# ---------------------------------------------------------------- the app under test


@dataclass
class Seen:
    """What the app saw, shared with the test thread."""

    scopes: list[dict[str, Any]] = field(default_factory=list)
    first_receive: list[dict[str, Any]] = field(default_factory=list)
    chunks: list[int] = field(default_factory=list)
    disconnected: threading.Event = field(default_factory=threading.Event)
    sent: list[int] = field(default_factory=list)  # bytes the app has handed to send(), running total
    lifespan: list[str] = field(default_factory=list)


class App:
    """Routes by path:

    /echo      reads the body, answers JSON about the request (no content-length: the server adds it)
    /fixed     answers 5 bytes with its own content-length
    /stream    ?n chunks of b"chunk-<i>;", no content-length (chunked), ?delay seconds between them
    /close     answers with "connection: close"
    /slowread  reads the body one receive() at a time, slowly, counting chunks
    /raise-before, /raise-after, /no-response   app failures
    /then-receive     answers, then calls receive() once more
    /wait-disconnect  streams one chunk, then waits in receive() for the client to hang up
    /big       streams ?mb MiB in 64 KiB messages, recording how much send() has accepted
    """

    def __init__(self, lifespan: str = "ok") -> None:
        self.seen = Seen()
        self.lifespan_mode = lifespan

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] == "lifespan":
            await self._lifespan(scope, receive, send)
            return
        assert scope["type"] == "http"
        self.seen.scopes.append(scope)
        path = scope["path"]
        query = dict(p.split("=") for p in scope["query_string"].decode().split("&") if p)
        if path == "/slowread":
            total = 0
            while True:
                msg = await receive()
                self.seen.chunks.append(len(msg.get("body", b"")))
                total += len(msg.get("body", b""))
                await asyncio.sleep(0.01)
                if not msg.get("more_body"):
                    break
            await _answer(send, 200, str(total).encode(), length=True)
            return
        first = await receive()
        self.seen.first_receive.append(first)
        body = first.get("body", b"")
        while first.get("more_body"):
            first = await receive()
            body += first.get("body", b"")
        if path == "/echo":
            info = {
                "method": scope["method"],
                "path": path,
                "body": body.decode("latin-1"),
                "http_version": scope["http_version"],
                "state": scope.get("state", {}).get("answer"),
            }
            await _answer(send, 200, json.dumps(info).encode())
        elif path == "/fixed":
            await _answer(send, 200, b"fixed", length=True)
        elif path == "/close":
            await send({"type": "http.response.start", "status": 200, "headers": [(b"connection", b"close")]})
            await send({"type": "http.response.body", "body": b"bye"})
        elif path == "/stream":
            await send({"type": "http.response.start", "status": 200, "headers": [(b"content-type", b"text/plain")]})
            for i in range(int(query.get("n", "3"))):
                await send({"type": "http.response.body", "body": f"chunk-{i};".encode(), "more_body": True})
                await asyncio.sleep(float(query.get("delay", "0")))
            await send({"type": "http.response.body", "body": b""})
        elif path == "/raise-before":
            raise ValueError("broken before the answer")
        elif path == "/raise-after":
            await send({"type": "http.response.start", "status": 200, "headers": []})
            await send({"type": "http.response.body", "body": b"partial", "more_body": True})
            raise ValueError("broken after the answer started")
        elif path == "/no-response":
            return
        elif path == "/then-receive":
            await _answer(send, 200, b"done", length=True)
            self.seen.first_receive.append(await receive())  # at once: the response is complete
        elif path == "/wait-disconnect":
            await send({"type": "http.response.start", "status": 200, "headers": []})
            await send({"type": "http.response.body", "body": b"first", "more_body": True})
            msg = await receive()
            if msg["type"] == "http.disconnect":
                self.seen.disconnected.set()
        elif path == "/big":
            await send({"type": "http.response.start", "status": 200, "headers": []})
            block = b"x" * 65536
            total = 0
            for _ in range(int(query.get("mb", "64")) * 16):
                await send({"type": "http.response.body", "body": block, "more_body": True})
                total += len(block)
                self.seen.sent.append(total)
            await send({"type": "http.response.body", "body": b""})
        else:
            await _answer(send, 404, b"no such path", length=True)

    async def _lifespan(self, scope: Any, receive: Any, send: Any) -> None:
        if self.lifespan_mode == "unsupported":
            raise RuntimeError("no lifespan here")
        while True:
            msg = await receive()
            self.seen.lifespan.append(msg["type"])
            if msg["type"] == "lifespan.startup":
                if self.lifespan_mode == "fail":
                    await send({"type": "lifespan.startup.failed", "message": "no database"})
                    return
                scope["state"]["answer"] = 42
                await send({"type": "lifespan.startup.complete"})
            else:
                await send({"type": "lifespan.shutdown.complete"})
                return


async def _answer(send: Any, status: int, body: bytes, *, length: bool = False) -> None:
    headers = [(b"content-type", b"application/json")]
    if length:
        headers.append((b"content-length", str(len(body)).encode()))
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})


# ---------------------------------------------------------------- serving it, and raw clients


@pytest.fixture(params=["asyncio", "uvloop"])
def loop_kind(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@contextlib.contextmanager
def serving(app: Any, loop_kind: str, **kw: Any) -> Iterator[Server]:
    server = Server(app, host="127.0.0.1", port=0, loop=loop_kind, **kw)  # type: ignore[arg-type]
    errors: list[BaseException] = []

    def run() -> None:
        try:
            server.run()
        except BaseException as exc:
            errors.append(exc)

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started:
        assert thread.is_alive(), f"the server stopped while starting: {errors}"
        assert time.monotonic() < deadline
        time.sleep(0.005)
    try:
        yield server
    finally:
        server.should_exit = True
        thread.join(10)
        assert not thread.is_alive(), "the server did not stop"


@pytest.fixture
def app() -> App:
    return App()


@pytest.fixture
def served(app: App, loop_kind: str) -> Iterator[Server]:
    with serving(app, loop_kind) as server:
        yield server


def port_of(server: Server) -> int:
    assert server.address is not None
    return server.address[1]


def connect(server: Server) -> socket.socket:
    return socket.create_connection(("127.0.0.1", port_of(server)), timeout=5)


@dataclass
class Answer:
    status: int
    headers: dict[str, str]
    body: bytes
    raw_head: bytes
    chunks: list[bytes] | None = None  # the chunk payloads, for a chunked answer


class Reader:
    """Reads HTTP responses off a socket, keeping what follows one for the next."""

    def __init__(self, sock: socket.socket) -> None:
        self.sock = sock
        self.buf = b""

    def _fill(self) -> bool:
        data = self.sock.recv(65536)
        self.buf += data
        return bool(data)

    def _take_line(self) -> bytes:
        while b"\r\n" not in self.buf:
            if not self._fill():
                raise EOFError(self.buf)
        line, _, self.buf = self.buf.partition(b"\r\n")
        return line

    def _take(self, n: int) -> bytes:
        while len(self.buf) < n:
            if not self._fill():
                raise EOFError(self.buf)
        data, self.buf = self.buf[:n], self.buf[n:]
        return data

    def head(self) -> tuple[bytes, int, dict[str, str]]:
        while b"\r\n\r\n" not in self.buf:
            if not self._fill():
                raise EOFError(self.buf)
        raw, _, self.buf = self.buf.partition(b"\r\n\r\n")
        lines = raw.split(b"\r\n")
        status = int(lines[0].split(b" ")[1])
        headers: dict[str, str] = {}
        for line in lines[1:]:
            k, _, v = line.decode().partition(":")
            assert k.lower() not in headers, f"header {k} twice"
            headers[k.lower()] = v.strip()
        return raw + b"\r\n\r\n", status, headers

    def answer(self, *, head_only: bool = False) -> Answer:
        raw, status, headers = self.head()
        if head_only or status in (204, 304) or 100 <= status < 200:
            return Answer(status, headers, b"", raw)
        if "content-length" in headers:
            return Answer(status, headers, self._take(int(headers["content-length"])), raw)
        if headers.get("transfer-encoding") == "chunked":
            chunks = []
            while True:
                size = int(self._take_line(), 16)
                data = self._take(size)
                assert self._take(2) == b"\r\n"
                if size == 0:
                    return Answer(status, headers, b"".join(chunks), raw, chunks)
                chunks.append(data)
        while self._fill():  # delimited by the close
            pass
        body, self.buf = self.buf, b""
        return Answer(status, headers, body, raw)

    def closed(self, timeout: float = 3) -> bool:
        """True when the server closes the connection (with nothing more sent) within ``timeout``."""
        self.sock.settimeout(timeout)
        try:
            data = self.sock.recv(65536)
        except TimeoutError:
            return False
        except ConnectionResetError:
            return True
        assert data == b"", data
        return True


def request(
    method: str, path: str, body: bytes = b"", headers: dict[str, str] | None = None, version: str = "1.1"
) -> bytes:
    h = {"host": "test", **(headers or {})}
    if body and "transfer-encoding" not in h:
        h["content-length"] = str(len(body))
    return (
        f"{method} {path} HTTP/{version}\r\n".encode()
        + "".join(f"{k}: {v}\r\n" for k, v in h.items()).encode()
        + b"\r\n"
        + body
    )


# ---------------------------------------------------------------- requests and connections


def test_keep_alive_serves_requests_one_after_another_on_one_connection(served: Server, app: App) -> None:
    with connect(served) as s:
        r = Reader(s)
        for i in range(3):
            s.sendall(request("POST", "/echo", f"body-{i}".encode()))
            a = r.answer()
            assert a.status == 200 and json.loads(a.body)["body"] == f"body-{i}"
            assert "connection" not in a.headers
    assert len({tuple(sc["client"]) for sc in app.seen.scopes}) == 1


def test_the_scope_has_every_field(served: Server, app: App) -> None:
    with connect(served) as s:
        s.sendall(request("GET", "/a%20b/%C3%A9?x=1&y=%20", headers={"X-Mixed-Case": "Value", "Accept": "*/*"}))
        assert Reader(s).answer().status == 404
        client_port = s.getsockname()[1]
    scope = app.seen.scopes[0]
    assert scope["type"] == "http"
    assert scope["asgi"] == {"version": "3.0", "spec_version": "2.3"}
    assert scope["http_version"] == "1.1"
    assert scope["method"] == "GET"
    assert scope["scheme"] == "http"
    assert scope["path"] == "/a b/é"
    assert scope["raw_path"] == b"/a%20b/%C3%A9"
    assert scope["query_string"] == b"x=1&y=%20"
    assert scope["root_path"] == ""
    assert scope["headers"] == [(b"host", b"test"), (b"x-mixed-case", b"Value"), (b"accept", b"*/*")]
    assert scope["client"] == ("127.0.0.1", client_port)
    assert scope["server"] == ("127.0.0.1", port_of(served))
    assert scope["state"] == {"answer": 42}  # a copy of what the lifespan's startup put in its state


def test_a_body_that_arrived_whole_comes_in_the_first_receive(served: Server, app: App) -> None:
    with connect(served) as s:
        s.sendall(request("POST", "/echo", b"x" * 5000))
        assert Reader(s).answer().status == 200
    assert app.seen.first_receive == [{"type": "http.request", "body": b"x" * 5000, "more_body": False}]


def test_two_requests_pipelined_in_one_write_are_answered_in_order(served: Server) -> None:
    with connect(served) as s:
        s.sendall(request("GET", "/stream?n=3&delay=0.02") + request("POST", "/echo", b"second"))
        r = Reader(s)
        first, second = r.answer(), r.answer()
    assert first.body == b"chunk-0;chunk-1;chunk-2;"
    assert json.loads(second.body)["body"] == "second"


def test_many_pipelined_requests(served: Server) -> None:
    with connect(served) as s:
        s.sendall(b"".join(request("POST", "/echo", f"n{i}".encode()) for i in range(50)))
        r = Reader(s)
        assert [json.loads(r.answer().body)["body"] for _ in range(50)] == [f"n{i}" for i in range(50)]


def test_a_chunked_request_body(served: Server) -> None:
    with connect(served) as s:
        s.sendall(request("POST", "/echo", headers={"transfer-encoding": "chunked"}))
        for part in (b"hello ", b"chunked ", b"world"):
            s.sendall(b"%x\r\n%b\r\n" % (len(part), part))
            time.sleep(0.01)
        s.sendall(b"0\r\n\r\n")
        a = Reader(s).answer()
    assert json.loads(a.body)["body"] == "hello chunked world"


def test_expect_100_continue_is_answered_when_the_app_reads(served: Server) -> None:
    with connect(served) as s:
        s.sendall(request("POST", "/echo", headers={"expect": "100-continue", "content-length": "4"}))
        r = Reader(s)
        raw, status, _ = r.head()
        assert raw == b"HTTP/1.1 100 Continue\r\n\r\n" and status == 100
        s.sendall(b"data")
        a = r.answer()
    assert a.status == 200 and json.loads(a.body)["body"] == "data"


def test_a_large_upload_is_read_in_pieces_while_the_app_is_slow(served: Server, app: App) -> None:
    size = 8 * 1024 * 1024
    with connect(served) as s:
        s.sendall(request("POST", "/slowread", b"u" * size))
        a = Reader(s).answer()
    assert a.body == str(size).encode()
    assert len(app.seen.chunks) > 1  # delivered as it arrived, not gathered first


def test_receive_after_the_response_reports_a_disconnect_at_once(served: Server, app: App) -> None:
    with connect(served) as s:
        s.sendall(request("GET", "/then-receive"))
        r = Reader(s)
        assert r.answer().body == b"done"
        deadline = time.monotonic() + 5
        while len(app.seen.first_receive) < 2:
            assert time.monotonic() < deadline
            time.sleep(0.01)
        assert app.seen.first_receive[1] == {"type": "http.disconnect"}
        s.sendall(request("GET", "/fixed"))  # while the connection is still open
        assert r.answer().body == b"fixed"


def test_an_upgrade_request_is_served_as_plain_http_then_closed(served: Server) -> None:
    with connect(served) as s:
        s.sendall(request("GET", "/fixed", headers={"connection": "Upgrade", "upgrade": "websocket"}) + b"\x81\x00")
        r = Reader(s)
        a = r.answer()
        assert a.body == b"fixed" and a.headers["connection"] == "close"
        assert r.closed()


# ---------------------------------------------------------------- response framing


def test_a_single_body_message_gets_a_content_length(served: Server) -> None:
    with connect(served) as s:
        s.sendall(request("POST", "/echo", b"abc"))
        a = Reader(s).answer()
    assert a.headers["content-length"] == str(len(a.body))
    assert "transfer-encoding" not in a.headers
    assert a.raw_head.startswith(b"HTTP/1.1 200 OK\r\n")


def test_the_apps_own_content_length_is_kept(served: Server) -> None:
    with connect(served) as s:
        s.sendall(request("GET", "/fixed"))
        a = Reader(s).answer()  # Reader asserts no header comes twice
    assert a.headers["content-length"] == "5" and a.body == b"fixed"


def test_a_streamed_body_is_chunked(served: Server) -> None:
    with connect(served) as s:
        s.sendall(request("GET", "/stream?n=3"))
        r = Reader(s)
        a = r.answer()
        # the connection stays usable after the last chunk
        s.sendall(request("GET", "/fixed"))
        assert r.answer().body == b"fixed"
    assert a.headers["transfer-encoding"] == "chunked"
    assert "content-length" not in a.headers
    assert a.chunks == [b"chunk-0;", b"chunk-1;", b"chunk-2;"]  # an empty message makes no (terminating) chunk


def test_head_answers_headers_only(served: Server) -> None:
    with connect(served) as s:
        s.sendall(request("HEAD", "/fixed") + request("GET", "/fixed"))
        r = Reader(s)
        head = r.answer(head_only=True)
        get = r.answer()  # the next answer follows at once: no body bytes were sent for HEAD
    assert head.status == 200 and head.headers["content-length"] == "5"
    assert get.body == b"fixed"


# ---------------------------------------------------------------- closing


def test_connection_close_from_the_client(served: Server) -> None:
    with connect(served) as s:
        s.sendall(request("GET", "/fixed", headers={"connection": "close"}))
        r = Reader(s)
        assert r.answer().headers["connection"] == "close"
        assert r.closed()


def test_connection_close_from_the_app(served: Server) -> None:
    with connect(served) as s:
        s.sendall(request("GET", "/close"))
        r = Reader(s)
        a = r.answer()
        assert a.body == b"bye" and a.headers["connection"] == "close"
        assert r.closed()


def test_http_1_0_closes_unless_asked_to_keep_alive(served: Server, app: App) -> None:
    with connect(served) as s:
        s.sendall(request("POST", "/echo", b"old", version="1.0"))
        r = Reader(s)
        a = r.answer()
        assert json.loads(a.body)["http_version"] == "1.0"
        assert r.closed()
    with connect(served) as s:
        r = Reader(s)
        for _ in range(2):
            s.sendall(request("GET", "/fixed", headers={"connection": "keep-alive"}, version="1.0"))
            a = r.answer()
            assert a.body == b"fixed" and a.headers["connection"] == "keep-alive"
    with connect(served) as s:  # no chunks in HTTP/1.0: the stream ends with the connection
        s.sendall(request("GET", "/stream?n=2", headers={"connection": "keep-alive"}, version="1.0"))
        a = Reader(s).answer()
        assert a.body == b"chunk-0;chunk-1;" and "transfer-encoding" not in a.headers


def test_freeze_gc_freezes_the_startup_and_collects_the_young_generation_less_often(app: App) -> None:
    before = gc.get_threshold()
    try:
        with serving(app, "uvloop", freeze_gc=True) as server:
            assert gc.get_freeze_count() > 0
            assert gc.get_threshold() == (GC_GEN0_THRESHOLD, *before[1:])
            with connect(server) as conn:
                conn.sendall(request("POST", "/echo", b"after the freeze"))
                a = Reader(conn).answer()
                assert a.status == 200 and json.loads(a.body)["body"] == "after the freeze"
    finally:
        gc.unfreeze()
        gc.set_threshold(*before)


def test_a_closed_connection_is_freed_without_the_garbage_collector(app: App, loop_kind: str) -> None:
    # a connection, its parser and its requests referred to one another: every closed connection waited
    # for a pass of the collector, which llmswitch serve makes rarer (GC_GEN0_THRESHOLD)
    gc.collect()
    gc.set_debug(gc.DEBUG_SAVEALL)  # what the collector finds from here on stays in gc.garbage
    try:
        with serving(app, loop_kind) as server:
            for i in range(5):
                with connect(server) as conn:
                    conn.sendall(request("POST", "/echo", b"x" * i))
                    assert Reader(conn).answer().status == 200
            deadline = time.monotonic() + 5
            while server.state is not None and server.state.connections:
                assert time.monotonic() < deadline, "the connections were not closed"
                time.sleep(0.01)
            gc.collect()
            left = [type(o).__name__ for o in gc.garbage if type(o).__module__.startswith("llmswitch.")]
            assert left == []
    finally:
        gc.set_debug(0)
        gc.garbage.clear()


def test_an_idle_connection_is_closed_after_the_keep_alive_timeout(app: App, loop_kind: str) -> None:
    with serving(app, loop_kind, keep_alive_timeout=0.2) as server:
        with connect(server) as s:
            r = Reader(s)
            s.sendall(request("GET", "/fixed"))
            assert r.answer().body == b"fixed"
            time.sleep(0.1)
            s.sendall(request("GET", "/fixed"))  # a request in time keeps it open
            assert r.answer().body == b"fixed"
            began = time.monotonic()
            assert r.closed(timeout=3)
            assert 0.15 < time.monotonic() - began < 2
        with connect(server) as s:  # a connection that never sends anything
            assert Reader(s).closed(timeout=3)


# ---------------------------------------------------------------- bad requests


@pytest.mark.parametrize(
    "raw",
    [
        b"this is not http\r\n\r\n",
        b"G@T / HTTP/1.1\r\nHost: x\r\n\r\n",
        b"GET / HTTP/1.1\r\nHost: x\r\nContent-Length: abc\r\n\r\n",
        b"GET / HTTP/1.1\r\nbad header line\r\n\r\n",
    ],
    ids=["garbage", "method", "content-length", "header"],
)
def test_a_malformed_request_is_answered_400_and_closed(served: Server, app: App, raw: bytes) -> None:
    with connect(served) as s:
        s.sendall(raw)
        r = Reader(s)
        a = r.answer()
        assert a.status == 400 and a.headers["connection"] == "close"
        assert r.closed()
    assert app.seen.scopes == []


def test_garbage_after_a_good_request_ends_the_connection_after_its_answer(served: Server) -> None:
    with connect(served) as s:
        s.sendall(request("GET", "/stream?n=3&delay=0.02") + b"garbage\r\n\r\n")
        r = Reader(s)
        assert r.answer().body == b"chunk-0;chunk-1;chunk-2;"
        assert r.closed()


def test_a_broken_chunked_body_ends_the_request_as_a_disconnect(served: Server, app: App) -> None:
    with connect(served) as s:
        s.sendall(request("POST", "/wait-disconnect", headers={"transfer-encoding": "chunked"}) + b"zz\r\n")
        r = Reader(s)
        assert r.answer().status == 400  # nothing was sent yet: the client learns why (issue 12, item 4)
        assert r.closed()
    assert app.seen.disconnected.wait(5)
    assert app.seen.first_receive == [{"type": "http.disconnect"}]


@pytest.mark.parametrize("pieces", [1, 40], ids=["one-write", "many-writes"])
def test_a_header_block_over_64_kib_is_answered_431(served: Server, app: App, pieces: int) -> None:
    raw = request("GET", "/fixed", headers={f"x-h{i}": "v" * 1000 for i in range(80)})
    with connect(served) as s:
        step = len(raw) // pieces + 1
        with contextlib.suppress(ConnectionError):  # the server may answer and close before all is sent
            for i in range(0, len(raw), step):
                s.sendall(raw[i : i + step])
                if pieces > 1:
                    time.sleep(0.002)
        a = Reader(s).answer()
        assert a.status == 431
    assert app.seen.scopes == []


def test_one_endless_header_line_is_answered_431(served: Server) -> None:
    with connect(served) as s:
        s.sendall(b"GET / HTTP/1.1\r\nx-long: ")
        with contextlib.suppress(ConnectionError):
            for _ in range(40):
                s.sendall(b"v" * 8192)
                time.sleep(0.002)
        assert Reader(s).answer().status == 431


def test_a_header_block_just_under_the_limit_is_served(served: Server) -> None:
    raw = request("GET", "/fixed", headers={f"x-h{i}": "v" * 1000 for i in range(60)})
    with connect(served) as s:
        for i in range(0, len(raw), 5000):
            s.sendall(raw[i : i + 5000])
            time.sleep(0.002)
        assert Reader(s).answer().body == b"fixed"


# ---------------------------------------------------------------- the app failing


@pytest.fixture
def server_log() -> Iterator[list[logging.LogRecord]]:
    records: list[logging.LogRecord] = []

    class Keep(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            records.append(record)

    logger = logging.getLogger("llmswitch.server")
    handler = Keep(level=logging.DEBUG)
    logger.addHandler(handler)
    old = logger.level
    logger.setLevel(logging.INFO)
    yield records
    logger.removeHandler(handler)
    logger.setLevel(old)


def test_an_app_raising_before_its_answer_gives_500_and_a_logged_traceback(
    served: Server, server_log: list[logging.LogRecord]
) -> None:
    with connect(served) as s:
        r = Reader(s)
        s.sendall(request("GET", "/raise-before"))
        a = r.answer()
        assert a.status == 500 and a.body == b"Internal Server Error"
        s.sendall(request("GET", "/fixed"))  # the connection survives
        assert r.answer().body == b"fixed"
    errors = [rec for rec in server_log if rec.levelno >= logging.ERROR]
    assert len(errors) == 1 and errors[0].exc_info is not None
    assert "broken before the answer" in str(errors[0].exc_info[1])


def test_an_app_raising_after_its_answer_started_cuts_the_connection(served: Server) -> None:
    with connect(served) as s:
        s.sendall(request("GET", "/raise-after"))
        r = Reader(s)
        _, status, headers = r.head()
        assert status == 200 and headers["transfer-encoding"] == "chunked"
        assert r._take_line() == b"7" and r._take(9) == b"partial\r\n"
        assert r.closed()  # and no last chunk: the client sees the answer cut short
        assert r.buf == b""


def test_an_app_returning_without_an_answer_gives_500(served: Server) -> None:
    with connect(served) as s:
        s.sendall(request("GET", "/no-response"))
        assert Reader(s).answer().status == 500


# ---------------------------------------------------------------- disconnects and backpressure


def test_a_client_hanging_up_mid_stream_reaches_the_apps_receive(served: Server, app: App) -> None:
    with connect(served) as s:
        s.sendall(request("GET", "/wait-disconnect"))
        r = Reader(s)
        r.head()
        assert r._take_line() == b"5"
    assert app.seen.disconnected.wait(5)


def test_send_waits_for_a_client_that_does_not_read(served: Server, app: App) -> None:
    total = 64 * 1024 * 1024
    with connect(served) as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 64 * 1024)
        s.sendall(request("GET", "/big?mb=64"))
        # the app gets ahead only by what the kernel's buffers and the transport's high-water mark hold
        last = -1
        deadline = time.monotonic() + 10
        while True:
            time.sleep(0.2)
            now = app.seen.sent[-1] if app.seen.sent else 0
            if now == last:
                break
            last = now
            assert time.monotonic() < deadline
        assert last < 16 * 1024 * 1024
        assert served.state is not None
        buffered = [c.transport.get_write_buffer_size() for c in list(served.state.connections)]
        assert max(buffered) <= 1024 * 1024, buffered
        # then the client reads it all, and the stream completes
        got = 0
        r = Reader(s)
        _, _, headers = r.head()
        assert headers["transfer-encoding"] == "chunked"
        got = len(r.buf)
        s.settimeout(10)
        while not r.buf.endswith(b"0\r\n\r\n") or got < total:
            data = s.recv(1 << 20)
            assert data
            got += len(data)
            r.buf = r.buf[-5:] + data
    assert app.seen.sent[-1] == total


def test_send_after_the_client_left_returns_quietly(app: App, loop_kind: str, server_log: list[Any]) -> None:
    with serving(app, loop_kind) as server:
        with connect(server) as s:
            s.sendall(request("GET", "/big?mb=8"))
            Reader(s).head()
        deadline = time.monotonic() + 10
        while not app.seen.sent or app.seen.sent[-1] < 8 * 1024 * 1024:  # the app runs to its end
            assert time.monotonic() < deadline
            time.sleep(0.02)
        assert server.state is not None
        while server.state.tasks:
            assert time.monotonic() < deadline
            time.sleep(0.02)
    assert [rec for rec in server_log if rec.levelno >= logging.WARNING] == []


# ---------------------------------------------------------------- lifespan and shutdown


def test_lifespan_runs_startup_before_serving_and_shutdown_after(app: App, loop_kind: str) -> None:
    with serving(app, loop_kind) as server:
        assert app.seen.lifespan == ["lifespan.startup"]
        with connect(server) as s:
            s.sendall(request("POST", "/echo", b"x"))
            assert json.loads(Reader(s).answer().body)["state"] == 42
        assert app.seen.lifespan == ["lifespan.startup"]
    assert app.seen.lifespan == ["lifespan.startup", "lifespan.shutdown"]


def test_a_failed_startup_means_no_serving_and_exit_3(loop_kind: str) -> None:
    app = App(lifespan="fail")
    server = Server(app, host="127.0.0.1", port=0, loop=loop_kind)  # type: ignore[arg-type]
    with pytest.raises(SystemExit) as exc:
        server.run()
    assert exc.value.code == 3
    assert not server.started and server.address is None


def test_an_app_without_lifespan_is_served(loop_kind: str) -> None:
    app = App(lifespan="unsupported")
    with serving(app, loop_kind) as server, connect(server) as s:
        s.sendall(request("POST", "/echo", b"x"))
        body = json.loads(Reader(s).answer().body)
        assert body["state"] is None and app.seen.scopes[0].get("state") is None


def test_graceful_shutdown_lets_a_stream_finish_and_refuses_new_connections(app: App, loop_kind: str) -> None:
    with serving(app, loop_kind, graceful_timeout=10) as server:
        port = port_of(server)
        idle = connect(server)
        streaming = connect(server)
        streaming.sendall(request("GET", "/stream?n=20&delay=0.05"))
        r = Reader(streaming)
        r.head()
        server.should_exit = True
        time.sleep(0.3)
        with pytest.raises(ConnectionRefusedError):
            socket.create_connection(("127.0.0.1", port), timeout=2)
        assert Reader(idle).closed()  # an idle connection is closed at once
        body = b""
        while True:
            size = int(r._take_line(), 16)
            if size == 0:
                break
            body += r._take(size)
            r._take(2)
        assert body == b"".join(f"chunk-{i};".encode() for i in range(20))
        assert r._take(2) == b"\r\n" and r.closed()
        idle.close()
        streaming.close()


def test_graceful_shutdown_gives_up_after_its_timeout(app: App, loop_kind: str) -> None:
    began = time.monotonic()
    with serving(app, loop_kind, graceful_timeout=0.3) as server, connect(server) as s:
        s.sendall(request("GET", "/stream?n=100&delay=0.1"))
        r = Reader(s)
        r.head()
        server.should_exit = True
        s.settimeout(5)
        while r._fill():  # until the server closes it
            pass
        assert not r.buf.endswith(b"0\r\n\r\n")  # cut short, and the client can tell
    assert time.monotonic() - began < 5


def test_http_client_round_trip(served: Server) -> None:
    conn = http.client.HTTPConnection("127.0.0.1", port_of(served), timeout=5)
    try:
        for i in range(3):
            conn.request("POST", "/echo", body=f"c{i}".encode())
            resp = conn.getresponse()
            assert resp.status == 200 and json.loads(resp.read())["body"] == f"c{i}"
        conn.request("GET", "/stream?n=5")
        assert conn.getresponse().read() == b"".join(f"chunk-{i};".encode() for i in range(5))
    finally:
        conn.close()
