"""HTTP/1.1 for ASGI apps on asyncio: one client connection (its request/response cycle is ``h1cycle.py``).

The server of ``llmswitch serve`` (see ``h1serve.Server``), written for the gateway's hot path:
``httptools`` parses, a request's body is handed over whole when it has all arrived, and a response's
header block goes out in one write with its first body message. Any ASGI 3 ``http`` app can be served.

A connection runs one request at a time, each in its own task; requests pipelined behind it wait in a
queue. Reading pauses while a request's unread body passes ``BODY_HIGH_WATER`` bytes (or too many
requests wait), and ``send()`` waits while the transport's write buffer is over its high-water mark,
so neither a fast uploader nor a slow reader can make the server buffer without bound.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections import deque
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any, cast
from urllib.parse import unquote_to_bytes

import httptools

from llmswitch.server.h1cycle import Cycle, plain_response

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]

log = logging.getLogger("llmswitch.server")

MAX_HEAD_BYTES = 64 * 1024  # request line and headers; more is answered 431
BODY_HIGH_WATER = 1024 * 1024  # unread request body at which reading pauses
MAX_PIPELINED = 8  # requests waiting behind the running one at which reading pauses

_ASGI = {"version": "3.0", "spec_version": "2.3"}
_METHODS = {m.encode(): m for m in ("GET", "POST", "PUT", "PATCH", "DELETE", "HEAD", "OPTIONS")}


class _HeadTooLarge(Exception):
    pass


class ServerState:
    """What every connection of one server shares."""

    __slots__ = ("app", "app_state", "connections", "keep_alive_timeout", "shutting_down", "tasks")

    def __init__(self, app: ASGIApp, keep_alive_timeout: float = 65.0) -> None:
        self.app = app
        self.keep_alive_timeout = keep_alive_timeout
        self.app_state: dict[str, Any] | None = None  # the lifespan's state, copied into each request's scope
        self.connections: set[HttpProtocol] = set()
        self.tasks: set[asyncio.Task[None]] = set()
        self.shutting_down = False


class HttpProtocol(asyncio.Protocol):
    """One client connection."""

    __slots__ = (
        "_begin_len",
        "_chunk_len",
        "_closed",
        "_connection_header",
        "_drain_waiter",
        "_expect_100",
        "_headers",
        "_idle_since",
        "_idle_timer",
        "_in_head",
        "_parser",
        "_parser_done",
        "_parsing",
        "_partial",
        "_queue",
        "_scope_template",
        "_state",
        "_too_large",
        "_url",
        "loop",
        "read_paused",
        "transport",
        "write_paused",
    )

    def __init__(self, state: ServerState, loop: asyncio.AbstractEventLoop) -> None:
        self._state = state
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
        self._idle_timer: asyncio.TimerHandle | None = None
        self._idle_since = 0.0
        self._url = b""
        self._headers: list[tuple[bytes, bytes]] = []
        self._chunk_len = 0  # the size of the read being parsed
        self._begin_len = 0  # ... of the read the request began in
        self._partial = 0  # ... of the reads since, while its header block is incomplete
        self._in_head = False
        self._too_large = False
        self._expect_100 = False
        self._connection_header = False
        self._scope_template: dict[str, Any] = {}

    # ------------------------------------------------------------ transport events

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.Transport, transport)  # uvloop's is not an asyncio.Transport subclass
        self._state.connections.add(self)
        self._scope_template = {
            "type": "http",
            "asgi": _ASGI,
            "http_version": "1.1",
            "method": "GET",
            "scheme": "http",
            "path": "/",
            "raw_path": b"/",
            "query_string": b"",
            "root_path": "",
            "headers": [],
            "client": _address(transport.get_extra_info("peername")),
            "server": _address(transport.get_extra_info("sockname")),
        }
        self._went_idle()

    def connection_lost(self, exc: Exception | None) -> None:
        self._closed = True
        self._state.connections.discard(self)
        for cycle in self._queue:
            cycle.disconnect()
        if self._parsing is not None:
            self._parsing.disconnect()
        self._wake_writers()
        if self._idle_timer is not None:
            self._idle_timer.cancel()
            self._idle_timer = None

    def data_received(self, data: bytes) -> None:
        if self._parser_done:
            return
        self._chunk_len = len(data)
        if self._in_head:
            self._partial += self._chunk_len
        try:
            self._parser.feed_data(data)
        except httptools.HttpParserUpgrade:
            # no protocol upgrades here: the request was served as plain HTTP, then the connection closes
            self._stop_parsing()
            return
        except httptools.HttpParserError:
            self._reject(431 if self._too_large else 400)
            return
        if self._in_head and self._partial > MAX_HEAD_BYTES:
            self._reject(431)  # the header block so far, in reads after the one it began in, is too large

    def pause_writing(self) -> None:
        self.write_paused = True

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
        self._expect_100 = False
        self._connection_header = False

    def on_url(self, url: bytes) -> None:
        self._url += url

    def on_header(self, name: bytes, value: bytes) -> None:
        name = name.lower()
        if name == b"connection":
            self._connection_header = True
        elif name == b"expect" and value.lower() == b"100-continue":
            self._expect_100 = True
        self._headers.append((name, value))

    def on_headers_complete(self) -> None:
        self._in_head = False
        headers = self._headers
        url = self._url
        # the header block is at most the reads it came in: measured only when those were large
        if (
            self._begin_len + self._partial > MAX_HEAD_BYTES
            and len(url) + sum(len(n) + len(v) + 4 for n, v in headers) > MAX_HEAD_BYTES
        ):
            self._too_large = True
            raise _HeadTooLarge
        parser = self._parser
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
        keep_alive = parser.should_keep_alive()
        scope = self._scope_template.copy()
        if not keep_alive or self._connection_header:
            scope["http_version"] = parser.get_http_version()
        # else it is "1.1", as in the template: llhttp keeps a connection alive without a Connection
        # header only for HTTP/1.1 (get_http_version formats a new string each time, a cost worth saving)
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
        queue = self._queue
        queue.append(cycle)
        if len(queue) == 1:
            self._start(cycle)
        elif len(queue) > MAX_PIPELINED:
            self._pause_reading()

    def on_body(self, body: bytes) -> None:
        cycle = self._parsing
        if cycle is None or cycle.response_complete:
            return  # answered already: the rest of its body is read and dropped
        cycle.chunks.append(body)
        cycle.buffered += len(body)
        waiter = cycle.waiter
        if waiter is not None and not waiter.done():
            waiter.set_result(None)
        if cycle.buffered > BODY_HIGH_WATER:
            self._pause_reading()

    def on_message_complete(self) -> None:
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
            close = not cycle.keep_alive
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
        if not cycle.keep_alive:
            self._close()
            return
        if queue:
            self._start(queue[0])
        else:
            self._went_idle()
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

    # ------------------------------------------------------------ flow control, timers, errors

    def _pause_reading(self) -> None:
        if not self.read_paused and not self._closed:
            self.read_paused = True
            self.transport.pause_reading()

    def maybe_resume_reading(self) -> None:
        cycle = self._parsing
        if (
            self.read_paused
            and not self._closed
            and not self._parser_done
            and len(self._queue) <= MAX_PIPELINED
            and (cycle is None or cycle.response_complete or cycle.buffered <= BODY_HIGH_WATER)
        ):
            self.read_paused = False
            self.transport.resume_reading()

    async def drain(self) -> None:
        """Wait while the transport's write buffer is over its high-water mark."""
        while self.write_paused and not self._closed:
            waiter = self._drain_waiter
            if waiter is None or waiter.done():
                waiter = self._drain_waiter = self.loop.create_future()
            await waiter

    def _wake_writers(self) -> None:
        waiter = self._drain_waiter
        if waiter is not None:
            self._drain_waiter = None
            if not waiter.done():
                waiter.set_result(None)

    def _went_idle(self) -> None:
        # one timer per idle period at most, not one per request: it checks when the connection went idle
        self._idle_since = self.loop.time()
        if self._idle_timer is None:
            self._idle_timer = self.loop.call_later(self._state.keep_alive_timeout, self._on_idle_timer)

    def _on_idle_timer(self) -> None:
        self._idle_timer = None
        if self._closed or self._queue:
            return  # busy: armed again when it goes idle
        left = self._idle_since + self._state.keep_alive_timeout - self.loop.time()
        if left > 0:
            self._idle_timer = self.loop.call_later(left, self._on_idle_timer)
        else:
            self._close()

    def _stop_parsing(self) -> None:
        self._parser_done = True
        self._pause_reading()
        for cycle in self._queue:
            cycle.keep_alive = False
        if not self._queue:
            self._close()

    def _reject(self, status: int) -> None:
        """A request we cannot parse: 400 (431 for a header block too large), then close."""
        log.debug("bad request from %s: %d", self._scope_template.get("client"), status)
        cycle = self._parsing
        if cycle is not None and cycle.more_body and not cycle.response_complete:
            self._close()  # its body cannot be read: the request is lost, and so is the connection
            return
        if self._queue:
            # a response is under way: let it finish, then close without answering the bad request
            self._stop_parsing()
            return
        self._parser_done = True
        text = "Request header fields too large" if status == 431 else "Invalid HTTP request"
        self.transport.write(plain_response(status, text, close=True))
        self._close()

    def _close(self) -> None:
        if not self._closed:
            self.transport.close()


def _address(addr: Any) -> tuple[str, int] | None:
    if isinstance(addr, tuple) and len(addr) >= 2:
        return str(addr[0]), int(addr[1])
    return None
