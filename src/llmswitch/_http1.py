"""HTTP/1.1 client connections (``asyncio.Protocol`` + ``httptools``) and what goes on the wire.

The machinery under :mod:`llmswitch.transport`, which owns the public API and the error mapping; this
module raises plain exceptions (``OSError`` and its subclasses — ``TimeoutError`` for a deadline —
``httptools.HttpParserError``, ``zlib.error``, :class:`InvalidURL`).

A :class:`Connection` is one socket and one ``httptools`` response parser; it carries one exchange at a
time. Whoever waits on it (``Connection.wait``) is woken by every event — bytes, the end of the answer,
drained writes, an error — and re-checks the state it waits for: one future per wait and, with a
deadline, one ``call_at`` timer, never a task. The keep-alive pool that owns connections, and the
request loop over it, are in :mod:`llmswitch._http1_pool`.
"""

from __future__ import annotations

import asyncio
import ssl
import zlib
from typing import TYPE_CHECKING, cast

import httptools

from llmswitch import _http1_tls

if TYPE_CHECKING:
    from llmswitch._http1_pool import Pool

# a stream stops reading from the socket while more than this is buffered and unread
READ_HIGH_WATER = 256 * 1024
# larger request bodies are written in slices of this size, each waiting for the socket to drain
WRITE_SLICE = 256 * 1024
# what a response may carry: the status line and headers (interim 1xx answers included), their number,
# and the body once decompressed (for streams: the decompressed bytes; an uncompressed stream is
# consumed as it comes and not capped)
MAX_HEAD_BYTES = 256 * 1024
MAX_HEADERS = 256
MAX_BODY_BYTES = 256 * 1024 * 1024

# what the pool keys connections by: the origin, the proxy (with its credentials: a tunnel is
# authenticated once, when it opens) and the TLS context, as one string (its hash is computed once and
# kept by the string, where a tuple's is recomputed at every look-up)
RouteKey = str
RawHeaders = list[tuple[bytes, bytes]]


class ServerDisconnected(ConnectionError):
    """The server closed the connection before its answer was complete."""


class ResponseTooLarge(ValueError):
    """A response's head, header count or (decompressed) body went past its cap."""


def header_dict(raw: RawHeaders) -> dict[str, str]:
    """Headers with lower-cased names (a repeated header keeps its last value)."""
    return {name.decode("latin-1").lower(): value.decode("utf-8", "surrogateescape") for name, value in raw}


def tls_context() -> ssl.SSLContext:
    """The process-wide TLS context (see :mod:`llmswitch._http1_tls`)."""
    return _http1_tls.context_for()


def set_tls_context(context: ssl.SSLContext | None) -> None:
    """Use ``context`` for every later TLS connection without settings of its own (``None``: back to
    the default). For tests."""
    _http1_tls.set_override(context)


class _Inflater:
    """``gzip`` / ``deflate`` bodies: zlib with header auto-detection; raw deflate as some servers send it.

    Output is bounded as it is made (``max_length``), so a small compressed body that would expand to
    gigabytes fails at the cap without the memory ever being taken.
    """

    __slots__ = ("_raw_allowed", "_started", "_z", "limit", "room")

    def __init__(self, encoding: bytes, limit: int) -> None:
        self._z = zlib.decompressobj(47)
        self._raw_allowed = encoding == b"deflate"
        self._started = False
        self.limit = self.room = limit

    def decompress(self, data: bytes) -> bytes:
        if not self._started:
            self._started = True
            try:
                return self._bounded(data)
            except zlib.error:
                if not self._raw_allowed:
                    raise
                self._z = zlib.decompressobj(-15)
                self.room = self.limit
        return self._bounded(data)

    def _bounded(self, data: bytes) -> bytes:
        out = self._z.decompress(data, self.room + 1)
        self.room -= len(out)
        if self.room < 0 or self._z.unconsumed_tail:
            raise ResponseTooLarge(f"the response body decompresses to more than {self.limit} bytes")
        return out

    def flush(self) -> bytes:
        out = self._z.flush()
        self.room -= len(out)
        if self.room < 0:
            raise ResponseTooLarge(f"the response body decompresses to more than {self.limit} bytes")
        return out


# ---------------------------------------------------------------- one connection


class Connection(asyncio.Protocol):
    """One keep-alive connection; the fields below the first group describe its current exchange."""

    __slots__ = (
        "body_bytes",
        "body_unsent",
        "buffered",
        "busy",
        "chunks",
        "closed",
        "complete",
        "deadline",
        "decoder",
        "error",
        "framed",
        "head",
        "head_bytes",
        "headers_done",
        "idle_since",
        "interim",
        "keep_alive",
        "loop",
        "origin",
        "parser",
        "pool",
        "raw_headers",
        "read_paused",
        "received",
        "reusable",
        "sent",
        "slot_held",
        "status",
        "streaming",
        "timer",
        "transport",
        "waiter",
        "write_paused",
    )

    def __init__(self, pool: Pool, origin: RouteKey) -> None:
        self.pool = pool
        self.origin = origin  # the pool's key: origin, proxy, TLS settings
        self.slot_held = False  # counted against the pool's per-origin cap
        self.loop = pool.loop
        self.transport: asyncio.Transport | None = None
        self.parser = httptools.HttpResponseParser(self)
        self.closed = False  # connection_lost has run
        self.reusable = True  # False once its state is in doubt (cancelled, stray bytes, HEAD)
        self.busy = False
        self.idle_since = 0.0
        self.waiter: asyncio.Future[None] | None = None
        self.deadline: float | None = None  # of the current wait
        self.timer: asyncio.TimerHandle | None = None
        self.write_paused = False
        self.read_paused = False
        self.sent = False  # the current request, or its first bytes, handed to the transport (start resets it)
        self._reset(False, False)

    def start(self, head: bool, streaming: bool) -> None:
        """Begin an exchange (before the request is written)."""
        self.sent = False  # before the check: a connection found closed has sent nothing of this request
        if self.closed or self.transport is None or self.transport.is_closing():
            raise ServerDisconnected("the server closed the connection")
        self.busy = True
        self._reset(head, streaming)

    def _reset(self, head: bool, streaming: bool) -> None:
        self.head = head
        self.streaming = streaming
        self.received = False  # any byte of the answer
        self.head_bytes = 0
        self.body_bytes = 0
        self.status = 0
        self.raw_headers: RawHeaders = []
        self.chunks: list[bytes] = []
        self.buffered = 0
        self.headers_done = False
        self.interim = False
        self.complete = False
        self.keep_alive = False
        self.framed = True  # False: the body ends when the server closes the connection
        self.decoder: _Inflater | None = None
        self.error: BaseException | None = None
        self.body_unsent = False

    # ------------------------------------------------------------ asyncio.Protocol

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.Transport, transport)
        self.pool.conns.add(self)

    def data_received(self, data: bytes) -> None:
        if not self.busy or self.complete:
            # bytes nobody asked for: whatever state the server is in, this connection cannot be trusted
            self.reusable = False
            if not self.busy:
                self.abort()
            return
        self.received = True
        heading = not self.headers_done
        try:
            self.parser.feed_data(data)
        except httptools.HttpParserCallbackError as exc:
            self._fail(exc.__context__ if isinstance(exc.__context__, Exception) else exc)
        except httptools.HttpParserUpgrade:
            self._fail(httptools.HttpParserError("the server switched protocols (101)"))
        except httptools.HttpParserError as exc:
            self._fail(exc)
        if heading:
            self.head_bytes += len(data)
            # past the cap: either the head is still coming, or it ended in this read, which may have
            # brought body bytes too (then the head's own size decides, counted only in this rare case)
            if (
                self.head_bytes > MAX_HEAD_BYTES
                and self.error is None
                and (not self.headers_done or self._head_size() > MAX_HEAD_BYTES)
            ):
                self.complete = False  # a whole small answer behind a huge head is still refused
                self._fail(ResponseTooLarge(f"the response head is larger than {MAX_HEAD_BYTES} bytes"))

    def _head_size(self) -> int:
        return sum(len(name) + len(value) + 4 for name, value in self.raw_headers)

    def eof_received(self) -> bool | None:
        return None  # close the transport; connection_lost settles the exchange

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True
        self.reusable = False
        if self.timer is not None:
            self.timer.cancel()
            self.timer = None
        self.pool.conns.discard(self)
        if self.slot_held:
            self.pool.release(self)
        if not self.busy:
            self.pool.forget(self)
        elif not self.complete and self.error is None:
            if exc is None and self.headers_done and not self.framed:
                try:
                    self._finish()  # a body without length ends where the connection does
                except (zlib.error, ResponseTooLarge) as bad:  # a compressed body cut short, or a bomb
                    self.error = bad
            elif exc is not None:
                self.error = exc
            else:
                self.error = ServerDisconnected(
                    "the server closed the connection before the response was complete"
                    if self.received
                    else "the server closed the connection without answering"
                )
        self._wake()

    def pause_writing(self) -> None:
        self.write_paused = True

    def resume_writing(self) -> None:
        self.write_paused = False
        self._wake()

    # ------------------------------------------------------------ httptools callbacks

    def on_message_begin(self) -> None:
        if self.complete:  # a second answer to one request: stop parsing (data_received drops the connection)
            self.reusable = False
            raise httptools.HttpParserError("more than one response to one request")

    def on_header(self, name: bytes, value: bytes) -> None:
        self.raw_headers.append((name, value))

    def on_headers_complete(self) -> None:
        status = self.parser.get_status_code()
        if 100 <= status < 200 and status != 101:
            self.interim = True  # 100 Continue and friends: the real answer follows
            self.raw_headers = []
            return
        if len(self.raw_headers) > MAX_HEADERS:
            raise ResponseTooLarge(f"the response has more than {MAX_HEADERS} header fields")
        self.status = status
        framed = status == 204 or status == 304 or self.head
        for name, value in self.raw_headers:
            size = len(name)
            if size == 14 or size == 16 or size == 17:
                low = name.lower()
                if low == b"content-length":
                    framed = True
                elif low == b"transfer-encoding":
                    framed = framed or b"chunked" in value.lower()
                elif low == b"content-encoding":
                    encoding = value.strip().lower()
                    if encoding in (b"gzip", b"x-gzip", b"deflate"):
                        self.decoder = _Inflater(encoding, MAX_BODY_BYTES)
        self.framed = framed
        self.headers_done = True
        if self.head:
            # httptools cannot be told the request was HEAD, so the parser would wait for a body
            self.reusable = False
            self._finish()
        elif self.streaming:
            self._wake()

    def on_body(self, body: bytes) -> None:
        if self.decoder is not None:
            body = self.decoder.decompress(body)
            if not body:
                return
        elif not self.streaming:
            self.body_bytes += len(body)
            if self.body_bytes > MAX_BODY_BYTES:
                raise ResponseTooLarge(f"the response body is larger than {MAX_BODY_BYTES} bytes")
        self.chunks.append(body)
        if self.streaming:
            self.buffered += len(body)
            if self.buffered > READ_HIGH_WATER and not self.read_paused and self.transport is not None:
                self.read_paused = True
                self.transport.pause_reading()
            self._wake()

    def on_message_complete(self) -> None:
        if self.interim:
            self.interim = False
            return
        if not self.complete:
            self.keep_alive = self.parser.should_keep_alive()
            self._finish()

    # ------------------------------------------------------------ the exchange

    def _finish(self) -> None:
        if self.decoder is not None:
            tail = self.decoder.flush()
            if tail:
                self.chunks.append(tail)
        self.complete = True
        self._wake()

    def _fail(self, exc: BaseException) -> None:
        if self.complete:  # junk after a complete answer only makes the connection unusable
            self.reusable = False
            return
        if self.error is None:
            self.error = exc
        self.abort()
        self._wake()

    def _wake(self) -> None:
        waiter = self.waiter
        if waiter is not None:
            self.waiter = None
            if not waiter.done():
                waiter.set_result(None)

    # A timer per wait would cost more than the rest of a small exchange: the connection keeps one
    # timer, which only moves earlier. When it fires it checks the current wait's deadline and, if that
    # is later, sets itself again, so back-to-back requests with one timeout share a timer.

    def _on_timer(self) -> None:
        self.timer = None
        deadline = self.deadline
        if deadline is None or self.waiter is None or self.error is not None:
            return  # nobody waits (or was woken already): the next wait sets a timer again
        if self.loop.time() < deadline:
            self.timer = self.loop.call_at(deadline, self._on_timer)
            return
        self.error = TimeoutError()
        self.abort()
        self._wake()

    async def wait(self, deadline: float | None) -> None:
        """Wait for the next event; raise the exchange's error if there is one (the connection is gone)."""
        if self.error is None:
            waiter = self.waiter = self.loop.create_future()
            self.deadline = deadline
            if deadline is not None:
                timer = self.timer
                if timer is None or timer.when() > deadline:
                    if timer is not None:
                        timer.cancel()
                    self.timer = self.loop.call_at(deadline, self._on_timer)
            try:
                await waiter
            except BaseException:  # cancelled: where the exchange stopped is unknown, so nothing reuses it
                self.abort()
                raise
        if self.error is not None:
            raise self.error

    def send(self, data: bytes) -> None:
        """Write a request the pool queued (:meth:`Pool.send`), unless its exchange ended meanwhile (it
        was cancelled and aborted the connection) or the connection closed: then nothing goes out, and
        the exchange, if still waiting, hears of the close from :meth:`connection_lost`."""
        transport = self.transport
        if not self.busy or self.closed or transport is None or transport.is_closing():
            return
        self.sent = True
        try:
            transport.write(data)
        except Exception as exc:  # the transport refused the bytes: the exchange fails with why
            self._fail(exc)

    async def write_large(self, head: bytes, body: bytes, deadline: float | None) -> None:
        """Write a large body slice by slice, waiting whenever the transport asks to pause."""
        transport = self.transport
        assert transport is not None
        self.sent = True
        transport.write(head)
        view = memoryview(body)
        for at in range(0, len(body), WRITE_SLICE):
            while self.write_paused and not self.headers_done:
                await self.wait(deadline)
            if self.headers_done or self.closed:
                # answered before the whole body went out (413, or a server that does not read it)
                self.body_unsent = True
                return
            transport.write(view[at : at + WRITE_SLICE])

    def take(self) -> bytes:
        """The body bytes buffered so far (a stream's reader resumes the socket if it was paused)."""
        chunks = self.chunks
        data = chunks[0] if len(chunks) == 1 else b"".join(chunks)
        chunks.clear()
        self.buffered = 0
        if self.read_paused:
            self.read_paused = False
            if self.transport is not None and not self.transport.is_closing():
                self.transport.resume_reading()
        return data

    def abort(self) -> None:
        self.reusable = False
        if self.transport is not None and not self.closed:
            self.transport.abort()

    def close(self) -> None:
        self.reusable = False
        if self.transport is not None and not self.closed:
            self.transport.close()
