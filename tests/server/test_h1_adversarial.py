"""Our HTTP/1.1 server against hostile clients: smuggling and framing, trailers, slowloris on the head, the
body and the response, connection and header caps, bad responses from the app, pipelining floods.

Raw sockets on loopback (exact bytes); the server runs the app of ``test_h1`` plus a few routes of its own,
on asyncio's loop and on uvloop's, with short timeouts configured (no long sleeps). Each case asserts the exact
outcome: the status answered, and whether the connection stays open.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import socket
import threading
import time
from collections.abc import Iterator
from typing import Any

import pytest
from test_h1 import App, Reader, connect, request, serving

from llmswitch.server.h1 import FEED_SLICE
from llmswitch.server.h1limits import ServerLimits
from llmswitch.server.h1serve import Server


class EdgeApp(App):
    """test_h1's app, and:

    /headers      reads the whole body, answers the request's header names (as the app saw them at the end)
    /refuse       answers 401 without reading the body (as the gateway does to a caller without a key)
    /refuse-then-receive  answers 401, then calls receive() (no 100 Continue may go out then)
    /firehose     streams 64 KiB messages until send() stops being possible, then waits for the disconnect
    /bad-header   answers with the header given by ?kind (a response the server must refuse)
    /short, /long answer with content-length 10 and 5 or 15 bytes
    /block        waits until the test releases it
    /raise-unread raises before reading the body
    """

    def __init__(self) -> None:
        super().__init__()
        self.release = threading.Event()
        self.events: list[str] = []

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        path = scope.get("path")
        if scope["type"] != "http" or path not in _EDGE_PATHS:
            await super().__call__(scope, receive, send)
            return
        self.seen.scopes.append(scope)
        query = dict(p.split("=") for p in scope["query_string"].decode().split("&") if p)
        if path == "/headers":
            msg = {"more_body": True}
            while msg.get("more_body"):
                msg = await receive()
                if msg["type"] == "http.disconnect":
                    self.events.append("disconnect")
                    self.seen.disconnected.set()
                    return
            names = [n.decode() for n, _ in scope["headers"]]
            await _json(send, 200, names)
        elif path in ("/refuse", "/refuse-then-receive"):
            await _json(send, 401, {"error": "no key"})
            if path == "/refuse-then-receive":
                self.seen.first_receive.append(await receive())
        elif path == "/firehose":
            watcher = asyncio.ensure_future(self._watch(receive))  # as the gateway watches for a hang-up
            await send({"type": "http.response.start", "status": 200, "headers": []})
            block = b"y" * 65536
            while not self.seen.disconnected.is_set() and len(self.seen.sent) < 4096:
                await send({"type": "http.response.body", "body": block, "more_body": True})
                self.seen.sent.append(len(block))
            watcher.cancel()
            self.events.append("stopped")
        elif path == "/bad-header":
            header = {
                "ctl": (b"x-ok", b"a\x01b"),
                "del": (b"x-ok", b"a\x7fb"),
                "nul": (b"x-ok", b"a\x00b"),
                "space-in-name": (b"x bad", b"v"),
                "colon-in-name": (b"x:bad", b"v"),
                "empty-name": (b"", b"v"),
                "crlf": (b"x-ok", b"a\r\nset-cookie: evil=1"),
            }[query["kind"]]
            await send({"type": "http.response.start", "status": 200, "headers": [header]})
            await send({"type": "http.response.body", "body": b"never"})
        elif path in ("/short", "/long"):
            body = b"12345" if path == "/short" else b"123456789012345"
            await send({"type": "http.response.start", "status": 200, "headers": [(b"content-length", b"10")]})
            await send({"type": "http.response.body", "body": body})
        elif path == "/raise-unread":
            raise ValueError("broken before reading the body")
        elif path == "/block":
            while not self.release.is_set():  # noqa: ASYNC110 (a threading.Event, set by the test's thread)
                await asyncio.sleep(0.01)
            await _json(send, 200, "released")

    async def _watch(self, receive: Any) -> None:
        while (await receive())["type"] != "http.disconnect":
            pass
        self.seen.disconnected.set()


_EDGE_PATHS = {
    "/headers",
    "/refuse",
    "/refuse-then-receive",
    "/firehose",
    "/bad-header",
    "/short",
    "/long",
    "/block",
    "/raise-unread",
}


async def _json(send: Any, status: int, value: Any) -> None:
    body = json.dumps(value).encode()
    headers = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})


@pytest.fixture(params=["asyncio", "uvloop"])
def loop_kind(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture
def app() -> EdgeApp:
    return EdgeApp()


@pytest.fixture
def served(app: EdgeApp, loop_kind: str) -> Iterator[Server]:
    with serving(app, loop_kind) as server:
        yield server


def chunked_post(path: str, headers: dict[str, str] | None = None) -> bytes:
    return request("POST", path, headers={"transfer-encoding": "chunked", **(headers or {})})


def send_all_tolerant(s: socket.socket, data: bytes, step: int = 65536) -> None:
    """Send ``data``; the server may answer and close before all of it is sent."""
    with contextlib.suppress(ConnectionError):
        for i in range(0, len(data), step):
            s.sendall(data[i : i + step])


# ---------------------------------------------------------------- trailers (item 1)


def test_trailers_are_dropped_and_never_become_request_headers(served: Server) -> None:
    with connect(served) as s:
        s.sendall(chunked_post("/headers") + b"3\r\nabc\r\n0\r\nAuthorization: Bearer sk-smuggled\r\nX-Late: 1\r\n\r\n")
        r = Reader(s)
        a = r.answer()
        assert a.status == 200
        assert json.loads(a.body) == ["host", "transfer-encoding"]
        s.sendall(request("GET", "/fixed"))  # the connection carries on
        assert r.answer().body == b"fixed"


@pytest.mark.parametrize("shape", ["many-lines", "one-endless-value"])
def test_trailers_count_against_the_head_limit(served: Server, app: EdgeApp, shape: str) -> None:
    with connect(served) as s:
        s.sendall(chunked_post("/headers") + b"3\r\nabc\r\n0\r\n")
        if shape == "many-lines":
            flood = b"".join(b"x-t%d: %s\r\n" % (i, b"v" * 1000) for i in range(2000))  # 2 MB of trailers
        else:
            flood = b"x-t: " + b"v" * 2_000_000
        send_all_tolerant(s, flood, step=8192)
        r = Reader(s)
        assert r.answer().status == 431
        assert r.closed()
    assert app.seen.disconnected.wait(5)  # the app waiting for the body learnt it will not come


# ---------------------------------------------------------------- smuggling and framing (item 4)

_HEAD = b"POST /echo HTTP/1.1\r\nHost: a\r\n"


@pytest.mark.parametrize(
    ("raw", "status"),
    [
        (_HEAD + b"Content-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n", 400),  # CL + TE
        (_HEAD + b"Content-Length: 3\r\nContent-Length: 4\r\n\r\nabcd", 400),  # duplicate CL
        (_HEAD + b"Content-Length: 3, 3\r\n\r\nabc", 400),  # a list in CL
        (_HEAD + b"Content-Length: -1\r\n\r\n", 400),
        (_HEAD + b"Content-Length: 99999999999999999999999\r\n\r\n", 400),  # CL overflow
        (b"GET / HTTP/1.1\r\nHost: a\r\nX: a\r\n b\r\n\r\n", 400),  # obs-fold
        (b"GET / HTTP/1.1\nHost: a\n\n", 400),  # bare LF
        (b"GET / HTTP/1.1\rHost: a\r\r\n", 400),  # bare CR
        (b"GET / HTTP/1.1\r\nHost: a\x00b\r\n\r\n", 400),  # NUL in a value
        (b"GET / HTTP/1.1\r\nHost : a\r\n\r\n", 400),  # space before the colon
        (_HEAD + b"Transfer-Encoding: gzip\r\n\r\nabc", 400),  # chunked not the final coding
        (_HEAD + b"Transfer-Encoding: xchunked\r\n\r\n0\r\n\r\n", 400),
        (_HEAD + b"Transfer-Encoding: chunked, gzip\r\n\r\n0\r\n\r\n", 400),
        (_HEAD + b"Transfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n", 400),
        (_HEAD + b"Transfer-Encoding: gzip, chunked\r\n\r\n3\r\nabc\r\n0\r\n\r\n", 501),  # an unknown coding
        (_HEAD + b"Transfer-Encoding: chunked\r\n\r\nfffffffffffffffffff\r\nabc", 400),  # chunk-size overflow
        (_HEAD + b"Transfer-Encoding: chunked\r\n\r\n3\nabc\r\n0\r\n\r\n", 400),  # bare LF after a chunk size
        (_HEAD + b"Transfer-Encoding: chunked\r\n\r\n3 \r\nabc\r\n0\r\n\r\n", 400),
        (b"GET /echo HTTP/1.1\r\n\r\n", 400),  # no Host in HTTP/1.1
        (b"GET /echo HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n", 400),  # two Hosts
        (b"GET /echo HTTP/1.0\r\nHost: a\r\nHost: b\r\n\r\n", 400),
        (b"GET /echo HTTP/2.0\r\nHost: a\r\n\r\n", 505),
        (b"GET /echo HTTP/0.9\r\nHost: a\r\n\r\n", 505),
        (b"GET /echo\r\n\r\n", 505),  # an HTTP/0.9 request line
        (b"GET /echo HTTP/1.2\r\nHost: a\r\n\r\n", 400),
    ],
    ids=[
        "cl-and-te",
        "duplicate-cl",
        "cl-list",
        "cl-negative",
        "cl-overflow",
        "obs-fold",
        "bare-lf",
        "bare-cr",
        "nul",
        "space-before-colon",
        "te-gzip",
        "te-xchunked",
        "te-chunked-gzip",
        "te-twice",
        "te-gzip-chunked",
        "chunk-size-overflow",
        "chunk-size-bare-lf",
        "chunk-size-space",
        "no-host",
        "two-hosts",
        "two-hosts-1.0",
        "http-2.0",
        "http-0.9",
        "http-0.9-line",
        "http-1.2",
    ],
)
def test_framing_corpus_is_answered_then_closed(served: Server, app: EdgeApp, raw: bytes, status: int) -> None:
    with connect(served) as s:
        s.sendall(raw)
        r = Reader(s)
        a = r.answer()
        assert (a.status, a.headers["connection"]) == (status, "close")
        assert r.closed()


def test_http_1_0_without_host_is_served(served: Server) -> None:
    with connect(served) as s:
        s.sendall(b"GET /fixed HTTP/1.0\r\n\r\n")
        assert Reader(s).answer().body == b"fixed"


def test_a_framing_error_in_a_pipelined_request_ends_the_connection_after_the_good_one(served: Server) -> None:
    with connect(served) as s:
        s.sendall(request("GET", "/fixed") + _HEAD + b"Transfer-Encoding: gzip\r\n\r\nabc")
        r = Reader(s)
        assert r.answer().body == b"fixed"
        assert r.closed()


# ---------------------------------------------------------------- the body is not read for a refusal (item 3)


def test_an_answer_before_the_body_sends_no_100_and_reads_no_body(served: Server) -> None:
    with connect(served) as s:
        head = request("POST", "/refuse", headers={"expect": "100-continue", "content-length": str(30 << 20)})
        s.sendall(head)
        r = Reader(s)
        a = r.answer()
        assert a.status == 401 and a.headers["connection"] == "close"
        assert r.closed()  # no body awaited: the connection ends with the answer


def test_no_100_continue_after_the_response_started(served: Server, app: EdgeApp) -> None:
    with connect(served) as s:
        s.sendall(request("POST", "/refuse-then-receive", headers={"expect": "100-continue", "content-length": "10"}))
        r = Reader(s)
        assert r.answer().status == 401
        assert r.closed()
        assert b"100 Continue" not in r.buf
    assert app.seen.first_receive == [{"type": "http.disconnect"}]


def test_a_body_still_arriving_after_the_answer_is_drained_briefly_then_the_connection_closes(
    served: Server,
) -> None:
    with connect(served) as s:
        s.sendall(request("POST", "/refuse", headers={"content-length": str(30 << 20)}) + b"x" * 1000)
        r = Reader(s)
        a = r.answer()  # readable: the server half-closed, it did not reset the connection
        assert a.status == 401 and a.headers["connection"] == "close"
        s.settimeout(5)
        with pytest.raises(ConnectionError):  # it drops at most LINGER_BYTES, then closes
            for _ in range(30 * 16):
                s.sendall(b"x" * 65536)


def test_an_app_failing_before_the_body_arrived_gets_500_and_the_connection_ends(served: Server) -> None:
    with connect(served) as s:
        s.sendall(request("POST", "/raise-unread", headers={"content-length": "100"}) + b"x" * 10)
        r = Reader(s)
        a = r.answer()
        assert a.status == 500 and a.headers["connection"] == "close"
        assert r.closed()


# ---------------------------------------------------------------- slowloris (item 2)


@pytest.fixture
def quick(app: EdgeApp, loop_kind: str) -> Iterator[Server]:
    limits = ServerLimits(head_timeout=0.3, body_timeout=0.3, write_timeout=0.5, keep_alive_timeout=5)
    with serving(app, loop_kind, limits=limits) as server:
        yield server


def test_a_head_sent_too_slowly_is_answered_408(quick: Server, app: EdgeApp) -> None:
    with connect(quick) as s:
        raw = request("GET", "/fixed")
        with contextlib.suppress(ConnectionError):
            for byte in raw[:-2]:  # a byte every 50 ms: each read is on time, the head as a whole is not
                s.sendall(bytes([byte]))
                time.sleep(0.05)
        r = Reader(s)
        assert r.answer().status == 408
        assert r.closed()
    assert app.seen.scopes == []


def test_a_stalled_body_is_answered_408_and_the_app_sees_a_disconnect(quick: Server, app: EdgeApp) -> None:
    with connect(quick) as s:
        s.sendall(request("POST", "/headers", headers={"content-length": "10"}) + b"12345")
        r = Reader(s)
        assert r.answer().status == 408
        assert r.closed()
    assert app.seen.disconnected.wait(5)


def test_a_dripping_body_with_short_gaps_is_served(app: EdgeApp, loop_kind: str) -> None:
    with serving(app, loop_kind, limits=ServerLimits(body_timeout=1.0)) as server, connect(server) as s:
        s.sendall(request("POST", "/headers", headers={"content-length": "12"}))
        for byte in b"123456789012":  # 12 gaps of 100 ms: each well under the body timeout, the whole over it
            time.sleep(0.1)
            s.sendall(bytes([byte]))
        assert Reader(s).answer().status == 200


def test_a_client_that_stops_reading_is_dropped_and_the_app_sees_it(quick: Server, app: EdgeApp) -> None:
    with connect(quick) as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        s.sendall(request("GET", "/firehose"))
        # the client reads nothing: once the write buffer is full for write_timeout, the server drops it
        assert app.seen.disconnected.wait(10)
        deadline = time.monotonic() + 10
        while "stopped" not in app.events:
            assert time.monotonic() < deadline
            time.sleep(0.02)
    assert len(app.seen.sent) < 4096  # it stopped because the client was gone, not at the app's own end


def test_an_idle_client_connection_does_not_hit_the_head_timeout(quick: Server) -> None:
    with connect(quick) as s:
        r = Reader(s)
        time.sleep(0.6)  # idle (no byte of a request): the keep-alive timeout (5 s) applies, not the head's
        s.sendall(request("GET", "/fixed"))
        assert r.answer().body == b"fixed"


# ---------------------------------------------------------------- caps (item 2)


def test_connections_over_the_cap_are_closed_at_once_and_logged_once(
    app: EdgeApp, loop_kind: str, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING, logger="llmswitch.server")
    with serving(app, loop_kind, limits=ServerLimits(max_connections=2)) as server:
        first, second = connect(server), connect(server)
        try:
            for s in (first, second):
                s.sendall(request("GET", "/fixed"))
                assert Reader(s).answer().body == b"fixed"
            for _ in range(3):
                with connect(server) as extra:
                    assert Reader(extra).closed()
            first.close()
            deadline = time.monotonic() + 5
            while server.state is not None and len(server.state.connections) > 1:
                assert time.monotonic() < deadline
                time.sleep(0.01)
            with connect(server) as again:
                again.sendall(request("GET", "/fixed"))
                assert Reader(again).answer().body == b"fixed"
        finally:
            first.close()
            second.close()
    lines = [r for r in caplog.records if "max_connections" in r.getMessage()]
    assert len(lines) == 1


def test_more_headers_than_the_limit_is_answered_431(app: EdgeApp, loop_kind: str) -> None:
    with serving(app, loop_kind, limits=ServerLimits(max_headers=20)) as server:
        with connect(server) as s:
            s.sendall(request("GET", "/fixed", headers={f"x-h{i}": "v" for i in range(19)}))  # 20 with host
            assert Reader(s).answer().body == b"fixed"
        with connect(server) as s:
            s.sendall(request("GET", "/fixed", headers={f"x-h{i}": "v" for i in range(20)}))
            r = Reader(s)
            assert r.answer().status == 431
            assert r.closed()


@pytest.mark.parametrize("body", [0, 300_000], ids=["after-a-get", "after-a-large-body"])
def test_one_large_write_of_pipelined_requests_queues_no_more_than_the_limit_and_a_slice(
    served: Server, body: int
) -> None:
    app_requests = 2000
    tiny = b"GET /fixed HTTP/1.1\r\nHost: a\r\n\r\n"
    assert served.state is not None
    app = served.app
    assert isinstance(app, EdgeApp)
    with connect(served) as s:
        first = request("POST", "/block", b"b" * body) if body else request("GET", "/block")
        s.sendall(first + tiny * app_requests)
        deadline = time.monotonic() + 5
        while not app.seen.scopes:
            assert time.monotonic() < deadline
            time.sleep(0.01)
        time.sleep(0.2)  # everything has arrived; the server parsed what it was willing to
        (conn,) = list(served.state.connections)
        queued = len(conn._queue)
        assert queued <= ServerLimits().max_pipelined + 1 + FEED_SLICE // len(tiny) + 1
        app.release.set()
        r = Reader(s)
        assert r.answer().body == b'"released"'
        assert [r.answer().body for _ in range(app_requests)] == [b"fixed"] * app_requests


# ---------------------------------------------------------------- responses the app gets wrong (item 4)


@pytest.mark.parametrize("kind", ["ctl", "del", "nul", "space-in-name", "colon-in-name", "empty-name", "crlf"])
def test_a_response_header_that_is_not_valid_is_refused_with_500(served: Server, kind: str) -> None:
    with connect(served) as s:
        s.sendall(request("GET", f"/bad-header?kind={kind}"))
        r = Reader(s)
        a = r.answer()
        assert a.status == 500 and a.body == b"Internal Server Error"
        assert "x-ok" not in a.headers
        s.sendall(request("GET", "/fixed"))  # nothing of it went out: the connection is still in step
        assert r.answer().body == b"fixed"


def test_a_body_longer_than_the_apps_content_length_is_refused_with_500(served: Server) -> None:
    with connect(served) as s:
        s.sendall(request("GET", "/long"))
        r = Reader(s)
        a = r.answer()
        assert a.status == 500
        s.sendall(request("GET", "/fixed"))
        assert r.answer().body == b"fixed"


def test_a_body_shorter_than_the_apps_content_length_ends_the_connection(served: Server) -> None:
    with connect(served) as s:
        s.sendall(request("GET", "/short") + request("GET", "/fixed"))
        r = Reader(s)
        _, status, headers = r.head()
        assert status == 200 and headers["content-length"] == "10" and headers["connection"] == "close"
        assert r.closed()
        assert r.buf == b"12345"  # and nothing after it: the pipelined request is not answered out of step
