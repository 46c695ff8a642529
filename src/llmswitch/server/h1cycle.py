"""One HTTP/1.1 request and its response, as an ASGI app sees them: ``receive`` and ``send``.

The connection (``h1.HttpProtocol``) parses the request into a :class:`Cycle` and runs the app with its
``receive`` and ``send``. ``send`` frames the response: a body in one message gets a Content-Length,
a streamed one is chunked (or, for HTTP/1.0, ends with the connection); the header block goes out in
one write with the first body message. An app's response is checked before it goes out: header names
must be tokens and values free of control characters (RFC 9110 5.1, 5.5), and a body must match the
Content-Length the app gave (more is refused, less ends the connection), so no app can split a
response or desynchronize the connection.

``100 Continue`` is sent on the app's first ``receive()`` only, and never once a response has
started: an app that refuses a request on its head (no key) never invites the body.
"""

from __future__ import annotations

import asyncio
import http
import re
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from llmswitch.server.h1 import HttpProtocol, Message, Scope

_CONTINUE = b"HTTP/1.1 100 Continue\r\n\r\n"
_CHUNKED = b"transfer-encoding: chunked\r\n"
_CLOSE = b"connection: close\r\n"
_KEEP_ALIVE = b"connection: keep-alive\r\n"
_LAST_CHUNK = b"0\r\n\r\n"
_NO_BODY_STATUS = frozenset({204, 304})
_FRAMING_HEADERS = frozenset({b"content-length", b"connection", b"transfer-encoding"})
_TOKEN = re.compile(rb"[!#$%&'*+\-.^_`|~0-9A-Za-z]+")
_BAD_VALUE = re.compile(rb"[\x00-\x08\x0a-\x1f\x7f]")  # control characters but HTAB
# header names already found to be tokens (apps send the same few): each one's lowercase name when it is a
# framing header, else b""
_NAMES_SEEN: dict[bytes, bytes] = {}
_NAMES_SEEN_MAX = 1024
_VALUES_SEEN: set[bytes] = set()  # ... and values found clean (content types, lengths): a set lookup is cheaper
_VALUES_SEEN_MAX = 4096


def _status_line(status: int) -> bytes:
    try:
        phrase = http.HTTPStatus(status).phrase
    except ValueError:
        phrase = ""
    return f"HTTP/1.1 {status} {phrase}\r\n".encode()


_STATUS_LINES = {status: _status_line(status) for status in range(100, 600)}


def plain_response(status: int, text: str, *, close: bool, head_only: bool = False) -> bytes:
    """A whole short text/plain response: the server's own 400, 431 and 500."""
    body = text.encode()
    head = (
        _STATUS_LINES[status]
        + b"content-type: text/plain; charset=utf-8\r\ncontent-length: %d\r\n" % len(body)
        + (_CLOSE if close else b"")
        + b"\r\n"
    )
    return head if head_only else head + body


class Cycle:
    """One request and its response: the ``receive`` and ``send`` an app is called with."""

    __slots__ = (
        "body_done",
        "buffered",
        "chunked",
        "chunks",
        "conn",
        "disconnected",
        "expect_100",
        "head",
        "head_only",
        "keep_alive",
        "length_given",
        "length_left",
        "more_body",
        "no_body",
        "response_complete",
        "scope",
        "started",
        "task",
        "transport",
        "waiter",
    )

    def __init__(self, conn: HttpProtocol, scope: Scope, keep_alive: bool, expect_100: bool, head_only: bool) -> None:
        self.conn = conn
        self.transport = conn.transport
        self.scope = scope
        self.keep_alive = keep_alive
        self.expect_100 = expect_100
        self.head_only = head_only
        self.chunks: list[bytes] = []
        self.buffered = 0
        self.more_body = True
        self.body_done = False
        self.waiter: asyncio.Future[None] | None = None
        self.disconnected = False
        self.task: asyncio.Task[None] | None = None
        self.started = False
        self.response_complete = False
        self.head: list[bytes] | None = None  # the header block, until the first body message joins it
        self.length_given = False  # the app framed the body itself (content-length or transfer-encoding)
        self.length_left = -1  # what is still owed of the app's own content-length (-1: none given)
        self.chunked = False
        self.no_body = False

    def disconnect(self) -> None:
        self.disconnected = True
        waiter = self.waiter
        if waiter is not None and not waiter.done():
            waiter.set_result(None)

    async def _wait(self) -> None:
        waiter = self.waiter = self.conn.loop.create_future()
        try:
            await waiter
        finally:
            self.waiter = None

    async def receive(self) -> Message:
        if self.disconnected or self.response_complete:
            return {"type": "http.disconnect"}
        if self.body_done:
            await self._wait()  # until the client goes away or the response is complete
            return {"type": "http.disconnect"}
        if self.expect_100 and self.more_body and not self.chunks and not self.started:
            self.expect_100 = False
            self.transport.write(_CONTINUE)
        while not self.chunks and self.more_body:
            if self.conn.read_paused:
                self.conn.maybe_resume_reading()
            self.conn.body_since = self.conn.loop.time()  # the body timeout counts from here
            await self._wait()
            if self.disconnected or self.response_complete:
                return {"type": "http.disconnect"}
        chunks = self.chunks
        if not chunks:
            body = b""
        elif len(chunks) == 1:
            body = chunks[0]
            self.chunks = []
        else:
            body = b"".join(chunks)
            self.chunks = []
        self.buffered = 0
        if self.conn.read_paused:
            self.conn.maybe_resume_reading()
        more = self.more_body
        if not more:
            self.body_done = True
        return {"type": "http.request", "body": body, "more_body": more}

    async def send(self, message: Message) -> None:
        conn = self.conn
        if conn.write_paused:
            await conn.drain()
        if self.disconnected:
            if not message.get("more_body", False) and message["type"] == "http.response.body":
                self.response_complete = True
            return  # the client is gone: nothing to write, and nothing to complain about
        kind = message["type"]
        if not self.started:
            if kind != "http.response.start":
                raise RuntimeError(f"expected 'http.response.start', got {kind!r}")
            self._start_response(message)
            return
        if kind != "http.response.body":
            raise RuntimeError(f"expected 'http.response.body', got {kind!r}")
        if self.response_complete:
            raise RuntimeError("the response is already complete")
        body: bytes = message.get("body", b"")
        more: bool = message.get("more_body", False)
        left = self.length_left
        if left >= 0 and not self.head_only and not self.no_body:
            left -= len(body)
            if left < 0:
                raise RuntimeError("the response body is longer than its content-length")
            self.length_left = left
            if left and not more:
                self.keep_alive = False  # shorter than its content-length: only a close tells the client
        head = self.head
        if head is not None:
            self.head = None
            if not self.length_given and not self.no_body:
                if not more:
                    if body or not self.head_only:  # a HEAD answer without a body or length: length unknown
                        head.append(b"content-length: %d\r\n" % len(body))
                elif self.scope["http_version"] == "1.0":
                    self.keep_alive = False  # HTTP/1.0 has no chunked encoding: the close ends the body
                else:
                    self.chunked = True
                    head.append(_CHUNKED)
            if self.more_body:
                self.keep_alive = False  # answered before its body arrived: the body is not read (h1.py)
            if not self.keep_alive:
                head.append(_CLOSE)
            elif self.scope["http_version"] == "1.0":
                head.append(_KEEP_ALIVE)
            head.append(b"\r\n")
            if not self.head_only and not self.no_body:
                if not self.chunked:
                    head.append(body)
                elif body:
                    head += (b"%x\r\n" % len(body), body, b"\r\n")
                if self.chunked and not more:
                    head.append(_LAST_CHUNK)
            self.transport.write(b"".join(head))
        elif self.head_only or self.no_body:
            pass
        elif self.chunked:
            if body:
                data = b"%x\r\n%b\r\n%b" % (len(body), body, b"" if more else _LAST_CHUNK)
                self.transport.write(data)
            elif not more:
                self.transport.write(_LAST_CHUNK)
        elif body:
            self.transport.write(body)
        if not more:
            self.response_complete = True
            conn.response_done(self)

    def _start_response(self, message: Message) -> None:
        status: int = message["status"]
        line = _STATUS_LINES.get(status)
        if line is None:
            raise RuntimeError(f"invalid HTTP status {status!r}")
        head = [line]
        for name, value in message.get("headers", ()):
            framing = _NAMES_SEEN.get(name)
            if framing is None:
                if not _TOKEN.fullmatch(name):
                    raise RuntimeError(f"invalid response header name {name!r}: not a token")
                lowered = name.lower()
                framing = lowered if lowered in _FRAMING_HEADERS else b""
                if len(_NAMES_SEEN) < _NAMES_SEEN_MAX:
                    _NAMES_SEEN[name] = framing
            # letters and digits alone (ids, lengths) hold no control character: proved by one C call, and
            # kept out of the set, which the unique ids of every answer would otherwise fill
            if not value.isalnum() and value not in _VALUES_SEEN:
                if _BAD_VALUE.search(value) is not None:
                    raise RuntimeError(f"invalid response header {name!r}: a control character in its value")
                if len(value) <= 64 and len(_VALUES_SEEN) < _VALUES_SEEN_MAX:
                    _VALUES_SEEN.add(value)
            if framing:
                lname = framing
                if lname == b"content-length":
                    if self.length_given or not value.isdigit():
                        raise RuntimeError(f"invalid response content-length {value!r}")
                    self.length_given = True
                    self.length_left = int(value)
                elif lname == b"connection":
                    if b"close" in value.lower():
                        self.keep_alive = False
                    continue  # the server decides about the connection (and says so)
                elif b"chunked" in value.lower():  # transfer-encoding: the app asks for chunks, the server frames them
                    self.chunked = self.length_given = True
                else:
                    self.length_given = True
                    self.keep_alive = False  # another coding: the body ends with the connection
            head += (name, b": ", value, b"\r\n")
        if self.chunked and self.scope["http_version"] == "1.0":
            raise RuntimeError("chunked transfer encoding in a response to HTTP/1.0")
        self.no_body = status < 200 or status in _NO_BODY_STATUS
        self.head = head
        self.started = True
