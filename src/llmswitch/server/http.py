"""The gateway's thin HTTP layer over ASGI: a request value, responses, and disconnect watching.

No framework: the gateway's routes are few and fixed, and every microsecond on this path is paid on
every request of every user (DESIGN.md, hot-path rules).
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, MutableMapping, Sequence
from typing import Any
from urllib.parse import parse_qsl

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
# a route: (gateway, request, send); the gateway is typed Any here to keep this module at the bottom
Handler = Callable[[Any, "Request", Send], Awaitable[None]]


class BodyTooLarge(Exception):
    def __init__(self, limit: int) -> None:
        super().__init__(f"request body exceeds the {limit} byte limit")
        self.limit = limit


# header names decoded before: a client sends the same dozen or so with every request (the SDKs' own
# x-stainless-* among them), and a look-up is cheaper than a decode. Bounded, so a client inventing names
# cannot grow it; names past the bound are decoded each time.
_NAMES: dict[bytes, str] = {}
_NAMES_MAX = 512


def _headers(raw: Sequence[tuple[bytes, bytes]]) -> dict[str, str]:
    names = _NAMES
    headers: dict[str, str] = {}
    for k, v in raw:
        name = names.get(k)
        if name is None:
            name = k.decode("latin-1")
            if len(names) < _NAMES_MAX:
                names[k] = name
        headers[name] = v.decode("latin-1")
    return headers


class Request:
    """One HTTP request: method, path, query, lowercased headers, body bytes."""

    __slots__ = ("_query", "body", "disconnected", "headers", "method", "path", "query_string", "receive", "state")

    def __init__(self, scope: Scope, receive: Receive) -> None:
        self.method: str = scope["method"]
        self.path: str = scope["path"]
        self.query_string: bytes = scope.get("query_string", b"")
        self.headers: dict[str, str] = _headers(scope["headers"])
        self.receive = receive
        self.body = b""
        self.disconnected = False
        self._query: dict[str, str] | None = None
        self.state: dict[str, Any] = {}

    @property
    def query(self) -> dict[str, str]:
        if self._query is None:
            self._query = dict(parse_qsl(self.query_string.decode("latin-1"), keep_blank_values=True))
        return self._query

    async def read_body(self, limit: int) -> bytes:
        declared = self.headers.get("content-length")
        if declared is not None and declared.isdigit() and int(declared) > limit:
            raise BodyTooLarge(limit)
        chunks: list[bytes] = []
        size = 0
        while True:
            msg = await self.receive()
            if msg["type"] == "http.disconnect":
                self.disconnected = True
                raise asyncio.CancelledError("client disconnected")
            chunk = msg.get("body", b"")
            if chunk:
                size += len(chunk)
                if size > limit:
                    raise BodyTooLarge(limit)
                chunks.append(chunk)
            if not msg.get("more_body"):
                break
        self.body = chunks[0] if len(chunks) == 1 else b"".join(chunks)
        return self.body

    async def wait_disconnect(self) -> None:
        """Return when the client goes away (reading after the body only yields the disconnect)."""
        while True:
            msg = await self.receive()
            if msg["type"] == "http.disconnect":
                self.disconnected = True
                return


_JSON = (b"content-type", b"application/json")
_SSE_HEADERS = [(b"content-type", b"text/event-stream"), (b"cache-control", b"no-cache"), (b"x-accel-buffering", b"no")]


RawHeaders = Sequence[tuple[bytes, bytes]]


def header_list(headers: dict[str, str] | None) -> list[tuple[bytes, bytes]]:
    """``headers`` as ASGI wants them: (name, value) byte pairs, latin-1."""
    if not headers:
        return []
    return [(k.encode("latin-1"), v.encode("latin-1")) for k, v in headers.items()]


async def send_bytes(
    send: Send,
    status: int,
    body: bytes,
    *,
    content_type: bytes = b"application/json",
    headers: dict[str, str] | None = None,
    raw_headers: RawHeaders = (),
) -> None:
    """A whole response; ``raw_headers`` are already encoded (a caller's cached ones), ``headers`` not."""
    hl = [(b"content-type", content_type), (b"content-length", b"%d" % len(body)), *raw_headers]
    if headers:
        hl += header_list(headers)
    await send({"type": "http.response.start", "status": status, "headers": hl})
    await send({"type": "http.response.body", "body": body})


async def start_stream(
    send: Send,
    status: int = 200,
    headers: dict[str, str] | None = None,
    content_type: bytes | None = None,
    raw_headers: RawHeaders = (),
) -> None:
    base = _SSE_HEADERS if content_type is None else [(b"content-type", content_type), *_SSE_HEADERS[1:]]
    hl = [*base, *raw_headers]
    if headers:
        hl += header_list(headers)
    await send({"type": "http.response.start", "status": status, "headers": hl})


async def stream_chunk(send: Send, data: bytes) -> None:
    await send({"type": "http.response.body", "body": data, "more_body": True})


async def end_stream(send: Send, data: bytes = b"") -> None:
    await send({"type": "http.response.body", "body": data, "more_body": False})
