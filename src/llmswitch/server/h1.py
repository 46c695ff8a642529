"""HTTP/1.1 for ASGI apps on asyncio: one client connection (its request/response cycle is ``h1cycle.py``).

The server of ``llmswitch serve`` (see ``h1serve.Server``), written for the gateway's hot path:
``httptools`` parses, a request's body is handed over whole when it has all arrived, and a response's
header block goes out in one write with its first body message. Any ASGI 3 ``http`` app can be served.

A connection runs one request at a time, each in its own task; requests pipelined behind it wait in a
queue. Reading pauses while a request's unread body passes ``BODY_HIGH_WATER`` bytes (or too many
requests wait), and ``send()`` waits while the transport's write buffer is over its high-water mark,
so neither a fast uploader nor a slow reader can make the server buffer without bound.

Everything a client sends is bounded before the app sees it (``h1limits.ServerLimits``): head size and
header count (a chunked body's trailers too, which are dropped: they never become request headers),
the time to send a head, the gaps in a body the app waits for, how long a response may sit unread,
and the number of connections. One timer per connection watches all of it: it looks at the
connection's state when it fires, so the hot path only notes a time, never arms a timer.

A response that ends before its request's body has arrived (a refusal on the head, say) ends the
connection: the body is never read, only drained briefly (``LINGER_BYTES``, ``LINGER_SECONDS``) after
half-closing, so the client reads the answer instead of a reset.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections import deque
from typing import Any, cast
from urllib.parse import unquote_to_bytes

import httptools

from llmswitch.server.h1cycle import Cycle, plain_response
from llmswitch.server.h1guard import BODY_HIGH_WATER, Guard
from llmswitch.server.h1limits import ServerLimits
from llmswitch.server.h1state import ASGIApp, Message, Receive, Scope, Send, ServerState, log

__all__ = ["ASGIApp", "HttpProtocol", "Message", "Receive", "Scope", "Send", "ServerState", "log"]

MAX_HEAD_BYTES = ServerLimits().max_head_bytes  # the defaults (see ServerLimits for each)
MAX_PIPELINED = ServerLimits().max_pipelined
FEED_SLICE = 4096  # a larger read is parsed in slices, so one write cannot queue more than a slice of requests

_ASGI = {"version": "3.0", "spec_version": "2.3"}
_METHODS = {m.encode(): m for m in ("GET", "POST", "PUT", "PATCH", "DELETE", "HEAD", "OPTIONS")}
_NOTED_HEADERS = frozenset({b"connection", b"content-length", b"expect", b"host", b"transfer-encoding"})


class _Nobody:
    """Callbacks for a parser no connection reads with any more."""


# a closed connection's parser is swapped for this one: the parser holds its connection's callbacks, and
# the loop the two made kept a closed connection (its transport, requests and buffers) until a pass of
# the garbage collector
_DETACHED = httptools.HttpRequestParser(_Nobody())


class _Refused(Exception):
    """Raised in a parser callback to stop parsing; the status to answer is in ``HttpProtocol._refusal``."""


class HttpProtocol(Guard, asyncio.Protocol):
    """One client connection (its timers, flow control and refusals are ``h1guard.Guard``'s)."""

    __slots__ = (
        "_begin_len",
        "_body_left",
        "_body_open",
        "_chunk_len",
        "_connection_header",
        "_expect_100",
        "_headers",
        "_hosts",
        "_length",
        "_parser",
        "_partial",
        "_refusal",
        "_stalled",
        "_te",
        "_trailers",
        "_url",
    )

    def __init__(self, state: ServerState, loop: asyncio.AbstractEventLoop) -> None:
        self._state = state
        self._limits = state.limits
        self.loop = loop
        self._parser = httptools.HttpRequestParser(self)
        # answer the request before a "Connection: close" even if the client sent more after it
        with contextlib.suppress(AttributeError):  # httptools < 0.6.3 has no leniencies
            self._parser.set_dangerous_leniencies(lenient_data_after_close=True)
        self._parser_done = False
        self._queue: deque[Cycle] = deque()  # the running request first, then pipelined ones
        self._parsing: Cycle | None = None  # the request whose body is arriving
        self._closed = False
        self.read_paused = False
        self.write_paused = False
        self._drain_waiter: asyncio.Future[None] | None = None
        self._timer: asyncio.TimerHandle | None = None
        self._idle_since = 0.0
        self._head_since = 0.0
        self.body_since = 0.0  # when the app last began waiting for body bytes (set by Cycle.receive)
        self._write_since = 0.0
        self._url = b""
        self._headers: list[tuple[bytes, bytes]] = []
        self._chunk_len = 0  # the size of the read being parsed
        self._begin_len = 0  # ... of the read the request began in
        self._partial = 0  # ... of the reads since, while its header block is incomplete
        self._stalled = 0  # ... of the reads since the last body bytes, while a body is open (framing, trailers)
        self._trailers = 0  # the size of a chunked body's trailers so far (they are dropped)
        self._in_head = False
        self._body_open = False
        self._refusal = 400
        self._hosts = 0
        self._te: bytes | None = None  # a transfer-encoding other than plain "chunked"
        self._length: bytes | None = None  # the request's content-length
        self._body_left = -1  # what is still to come of a body of known length
        self._held: bytes | None = None  # read but not parsed yet: too many requests were waiting
        self._lingering = 0  # bytes still to drop before closing, after an answer that left a body unread
        self._expect_100 = False
        self._connection_header = False
        self._scope_template: dict[str, Any] = {}

    # ------------------------------------------------------------ transport events

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.Transport, transport)  # uvloop's is not an asyncio.Transport subclass
        state = self._state
        if len(state.connections) >= self._limits.max_connections:
            # over the cap: accepted and closed at once, before reading anything
            self._parser_done = True
            self._closed = True
            state.refuse_connection(self.loop.time())
            transport.close()
            return
        state.connections.add(self)
        self._scope_template = {
            "type": "http",
            "asgi": _ASGI,
            "http_version": "1.1",
            "method": "GET",
            "scheme": "https" if transport.get_extra_info("sslcontext") is not None else "http",
            "path": "/",
            "raw_path": b"/",
            "query_string": b"",
            "root_path": "",
            "headers": [],
            "client": _address(transport.get_extra_info("peername")),
            "server": _address(transport.get_extra_info("sockname")),
        }
        self._idle_since = self.loop.time()
        self._timer = self.loop.call_later(self._limits.shortest_timeout, self._on_timer)

    def connection_lost(self, exc: Exception | None) -> None:
        self._closed = True
        self._parser = _DETACHED  # no data arrives after this
        self._state.connections.discard(self)
        for cycle in self._queue:
            cycle.disconnect()
        if self._parsing is not None:
            self._parsing.disconnect()
        # each request refers to its connection: let go of them, so that a closed connection is freed
        # as soon as its requests are done, without waiting for the garbage collector
        self._queue.clear()
        self._parsing = None
        self._wake_writers()
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None

    def data_received(self, data: bytes) -> None:
        if self._parser_done:
            if self._lingering:  # dropping an unwanted body for a while, so the client reads our answer
                self._lingering -= min(len(data), self._lingering)
                if not self._lingering:
                    self._close()
            return
        n = len(data)
        if n > FEED_SLICE:
            self._feed_slices(memoryview(data))
            return
        # _feed, inlined for the common case (a whole small request in one read): one call less per read
        self._chunk_len = n
        if self._in_head:
            self._partial += n
        elif self._body_open:
            self._stalled += n
        try:
            self._parser.feed_data(data)
        except httptools.HttpParserUpgrade:
            self._stop_parsing()
            return
        except httptools.HttpParserError:
            self._reject(self._refusal)
            return
        if self._in_head:
            if self._partial > self._limits.max_head_bytes:
                self._reject(431)
        elif self._body_open and self._stalled > self._limits.max_head_bytes:
            self._reject(431)

    def _feed_slices(self, view: memoryview) -> None:
        # one large write must not queue more requests than a slice can hold: when too many wait, the rest
        # is held, unparsed, until they are answered
        # is held, unparsed, until they are answered. The known rest of a body goes in one piece (it holds
        # no requests), so an upload is not parsed in small slices
        limit = self._limits.max_pipelined
        start, end = 0, len(view)
        while start < end:
            if self._parser_done or self._closed:
                return
            if len(self._queue) > limit:
                self._held = bytes(view[start:])
                self._pause_reading()
                return
            left = self._body_left
            step = left if self._body_open and left > FEED_SLICE else FEED_SLICE
            self._feed(view[start : start + step])
            start += step

    def _feed(self, data: bytes | memoryview) -> None:
        n = self._chunk_len = len(data)
        if self._in_head:
            self._partial += n
        elif self._body_open:
            self._stalled += n
        try:
            self._parser.feed_data(data)
        except httptools.HttpParserUpgrade:
            # no protocol upgrades here: the request was served as plain HTTP, then the connection closes
            self._stop_parsing()
            return
        except httptools.HttpParserError:
            self._reject(self._refusal)
            return
        limit = self._limits.max_head_bytes
        if self._in_head:
            if self._partial > limit:
                self._reject(431)  # the header block so far, in reads after the one it began in, is too large
        elif self._body_open and self._stalled > limit:
            self._reject(431)  # as much again without a byte of body: chunk framing or trailers without end

    def pause_writing(self) -> None:
        self.write_paused = True
        self._write_since = self.loop.time()

    def resume_writing(self) -> None:
        self.write_paused = False
        self._wake_writers()

    # ------------------------------------------------------------ parser callbacks

    def on_message_begin(self) -> None:
        self._url = b""
        self._headers = []
        self._partial = 0
        self._begin_len = self._chunk_len
        self._in_head = True
        self._head_since = self.loop.time()
        self._expect_100 = False
        self._connection_header = False
        self._hosts = 0
        self._te = None
        self._length = None
        self._trailers = 0

    def on_url(self, url: bytes) -> None:
        self._url += url

    def on_header(self, name: bytes, value: bytes) -> None:
        if not self._in_head:
            # a trailer of a chunked body: counted against the limits, then dropped (never a request header)
            self._trailers += len(name) + len(value) + 4
            if self._trailers > self._limits.max_head_bytes:
                self._refuse(431)
            return
        name = name.lower()
        if name in _NOTED_HEADERS:
            if name == b"connection":
                self._connection_header = True
            elif name == b"expect":
                if value.lower() == b"100-continue":
                    self._expect_100 = True
            elif name == b"host":
                self._hosts += 1
            elif name == b"content-length":
                self._length = value
            elif value.lower() != b"chunked":
                self._te = value
        self._headers.append((name, value))

    def _refuse(self, status: int) -> None:
        self._refusal = status
        raise _Refused

    def on_headers_complete(self) -> None:
        self._in_head = False
        headers = self._headers
        url = self._url
        limits = self._limits
        # the header block is at most the reads it came in: measured only when those were large
        if (
            self._begin_len + self._partial > limits.max_head_bytes
            and len(url) + sum(len(n) + len(v) + 4 for n, v in headers) > limits.max_head_bytes
        ) or len(headers) > limits.max_headers:
            self._refuse(431)
        parser = self._parser
        keep_alive = parser.should_keep_alive()
        version = None
        # llhttp keeps a connection alive without a Connection header only for HTTP/1.1: otherwise the
        # version is asked for (get_http_version formats a new string each time, a cost worth saving)
        if not keep_alive or self._connection_header or self._hosts != 1:
            version = parser.get_http_version()
            if version != "1.1" and version != "1.0":
                self._refuse(505)  # HTTP/0.9 and HTTP/2.0 lines parse, but are not HTTP/1.x
            if self._hosts > 1 or (self._hosts == 0 and version == "1.1"):
                self._refuse(400)  # RFC 9112 3.2: exactly one Host in HTTP/1.1
        if self._te is not None:
            # RFC 9112 6.1: a coding we do not know, 501; chunked not the last coding, 400
            last = self._te.lower().rpartition(b",")[2].strip(b" \t")
            self._refuse(501 if last == b"chunked" else 400)
        if url[0] == 47:  # b"/": origin form
            raw_path, _, query = url.partition(b"?")
        elif url == b"*":
            raw_path, query = url, b""
        else:  # absolute form
            parsed = httptools.parse_url(url)
            raw_path, query = parsed.path or b"/", parsed.query or b""
        if b"%" in raw_path:
            path = unquote_to_bytes(raw_path).decode("utf-8", "replace")
        else:
            path = raw_path.decode("utf-8", "replace")
        method_bytes = parser.get_method()
        method = _METHODS.get(method_bytes) or method_bytes.decode("ascii")
        state = self._state
        scope = self._scope_template.copy()
        if version is not None:
            scope["http_version"] = version
        scope["method"] = method
        scope["path"] = path
        scope["raw_path"] = raw_path
        scope["query_string"] = query
        scope["headers"] = headers
        if state.app_state is not None:
            scope["state"] = state.app_state.copy()
        keep_alive = keep_alive and not state.shutting_down and not parser.should_upgrade()
        cycle = Cycle(self, scope, keep_alive, self._expect_100, method == "HEAD")
        self._parsing = cycle
        self._body_open = True
        self._stalled = 0
        self._body_left = int(self._length) if self._length is not None else -1  # llhttp checked its digits
        queue = self._queue
        queue.append(cycle)
        if len(queue) == 1:
            self._start(cycle)
        elif len(queue) > limits.max_pipelined:
            self._pause_reading()

    def on_body(self, body: bytes) -> None:
        self._stalled = 0
        self._body_left -= len(body)
        cycle = self._parsing
        if cycle is None or cycle.response_complete:
            return  # answered already: the rest of its body is dropped
        cycle.chunks.append(body)
        cycle.buffered += len(body)
        waiter = cycle.waiter
        if waiter is not None and not waiter.done():
            waiter.set_result(None)
        if cycle.buffered > BODY_HIGH_WATER:
            self._pause_reading()

    def on_message_complete(self) -> None:
        self._body_open = False
        cycle = self._parsing
        if cycle is None:
            return
        cycle.more_body = False
        waiter = cycle.waiter
        if waiter is not None and not waiter.done():
            waiter.set_result(None)

    # ------------------------------------------------------------ requests

    def _start(self, cycle: Cycle) -> None:
        task = self.loop.create_task(self._run(cycle))
        cycle.task = task
        self._state.tasks.add(task)

    async def _run(self, cycle: Cycle) -> None:
        try:
            await self._state.app(cycle.scope, cycle.receive, cycle.send)
        except asyncio.CancelledError:
            self._app_failed(cycle)
        except Exception:
            scope = cycle.scope
            log.exception("error in the ASGI application on %s %s", scope["method"], scope["path"])
            self._app_failed(cycle)
        else:
            if not cycle.response_complete:
                if not cycle.started and not cycle.disconnected:
                    log.error("the ASGI application returned without a response to %s", cycle.scope["path"])
                self._app_failed(cycle)
        finally:
            task = cycle.task
            if task is not None:
                self._state.tasks.discard(task)
                cycle.task = None

    def _app_failed(self, cycle: Cycle) -> None:
        """The app raised, or returned without finishing its response."""
        if cycle.response_complete or cycle.disconnected or self._closed:
            return
        if cycle.head is not None or not cycle.started:
            # nothing went out yet: the client gets a 500
            cycle.started = True
            cycle.head = None
            cycle.response_complete = True
            close = not cycle.keep_alive or cycle.more_body  # a body still arriving is not read (_close_unread)
            self.transport.write(plain_response(500, "Internal Server Error", close=close, head_only=cycle.head_only))
            self.response_done(cycle)
            return
        # the answer started: only closing the connection tells the client it is cut short (for a chunked
        # body, closing without the last chunk)
        cycle.response_complete = True
        self._close()

    def response_done(self, cycle: Cycle) -> None:
        """The last byte of ``cycle``'s response was written."""
        queue = self._queue
        if queue and queue[0] is cycle:
            queue.popleft()
        cycle.chunks = []
        waiter = cycle.waiter
        if waiter is not None and not waiter.done():  # a receive() waiting now learns of the "disconnect"
            waiter.set_result(None)
        if self._closed:
            return
        if cycle.more_body:
            self._close_unread(cycle)
            return
        if not cycle.keep_alive:
            self._close()
            return
        if queue:
            self._start(queue[0])
        else:
            self._idle_since = self.loop.time()
        if self.read_paused:
            self.maybe_resume_reading()

    def shutdown(self) -> None:
        """Graceful shutdown: close now if idle, else after the running request's response."""
        if not self._queue:
            self._close()
            return
        for cycle in self._queue:
            cycle.keep_alive = False

    def abort(self) -> None:
        if not self._closed:
            self.transport.abort()


def _address(addr: Any) -> tuple[str, int] | None:
    if isinstance(addr, tuple) and len(addr) >= 2:
        return str(addr[0]), int(addr[1])
    return None
