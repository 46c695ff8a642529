"""How the fake upstream answers: scripted faults first, then JSON or a stream written chunk by chunk.

Every route ends in :func:`answer`: wait out the reply's ``latency``, ``hang`` if asked, answer an
error ``status`` in the face's error envelope, or call the route's success function. Streams go
out through :func:`write_stream`, which plays ``ttft``, ``chunk_delay`` and ``cut_after``.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any, Protocol

from aiohttp import web

from llmswitch.dialects._json import dumps
from llmswitch.errors import APIStatusError
from llmswitch.testing._faces import DialectUnavailable, Face, Framer
from llmswitch.testing._recorded import RecordedRequest
from llmswitch.testing._reply import Reply, fault_headers, to_error


class Host(Protocol):
    """What the routes need from the :class:`FakeUpstream` that serves them."""

    models: list[str]

    def record(self, rec: RecordedRequest) -> None: ...

    def next_number(self) -> int: ...

    async def choose(self, rec: RecordedRequest) -> Reply: ...

    def note_disconnect(self) -> None: ...

    def is_stopping(self) -> bool: ...

    async def wait_stopping(self) -> None: ...


Success = Callable[[], Awaitable[web.StreamResponse]]


async def answer(
    request: web.Request,
    host: Host,
    face: Face,
    reply: Reply,
    number: int,
    success: Success,
    *,
    streaming: bool = False,
) -> web.StreamResponse:
    """Play a reply's faults, then ``success()``; a client that leaves before the end is counted."""
    try:
        if reply.latency > 0:
            await asyncio.sleep(reply.latency)
        if reply.hang:
            await host.wait_stopping()
            return text_response(503, "the fake upstream stopped while this request hung")
        if reply.is_error:
            return _fault_response(face, reply, number)
        if reply.body is not None:
            return _raw_response(face, reply, number, streaming=streaming)
        if reply.cut_after is not None and not streaming:
            # a whole answer is one piece: any cut comes before its first byte
            return _cut(request, web.Response(status=200))
        return await success()
    except asyncio.CancelledError:
        # aiohttp cancels the handler when the client's connection is lost
        if not host.is_stopping():
            host.note_disconnect()
        raise
    except ConnectionResetError as exc:
        # a write noticed the lost connection before the cancellation arrived: end the handler the
        # same quiet way aiohttp ends it for a client that left
        if not host.is_stopping():
            host.note_disconnect()
        raise asyncio.CancelledError from exc


def _fault_response(face: Face, reply: Reply, number: int) -> web.StreamResponse:
    headers = reply_headers(reply, face, number)
    if reply.body is not None:
        raw = reply.body.encode() if isinstance(reply.body, str) else reply.body
        headers["content-type"] = reply.content_type or "text/plain; charset=utf-8"
        return web.Response(status=reply.status, body=raw, headers=headers)
    try:
        error = to_error(reply)
        _, body = face.encode_error(error)
    except DialectUnavailable as exc:
        return text_response(501, str(exc))
    return json_response(reply.status, body, face, {**face.error_headers(error), **headers})


def _raw_response(face: Face, reply: Reply, number: int, *, streaming: bool) -> web.StreamResponse:
    """A 2xx answer of the reply's own bytes (a provider's exact wire form), in the face's content type."""
    assert reply.body is not None
    headers = reply_headers(reply, face, number)
    headers["content-type"] = reply.content_type or (face.sse_type if streaming else face.json_type)
    raw = reply.body.encode() if isinstance(reply.body, str) else reply.body
    return web.Response(status=reply.status, body=raw, headers=headers)


def error_response(face: Face, exc: APIStatusError, number: int) -> web.StreamResponse:
    """The face's error envelope for an error the fake found itself (a malformed request)."""
    try:
        status, body = face.encode_error(exc)
    except DialectUnavailable as unavailable:
        return text_response(501, str(unavailable))
    return json_response(status, body, face, reply_headers(Reply(), face, number))


def reply_headers(reply: Reply, face: Face, number: int) -> dict[str, str]:
    """The face's request-id header, then the reply's ``retry_after`` and ``headers``."""
    return {face.request_id_header: f"req_fake{number:06d}", **fault_headers(reply)}


def json_response(status: int, body: Any, face: Face, headers: dict[str, str] | None = None) -> web.Response:
    out = dict(headers or {})
    out["content-type"] = face.json_type
    return web.Response(status=status, body=dumps(body), headers=out)


def text_response(status: int, text: str) -> web.Response:
    return web.Response(status=status, text=text)


async def write_stream(
    request: web.Request,
    reply: Reply,
    chunks: list[bytes],
    tail: bytes,
    framer: Framer,
    headers: dict[str, str],
) -> web.StreamResponse:
    """Send ``chunks`` (then ``tail``) through ``framer`` as one streamed 200 answer."""
    resp = web.StreamResponse(status=200, headers={**headers, "cache-control": "no-cache"})
    await resp.prepare(request)  # the status line and headers go out now, before ttft
    if reply.ttft > 0:
        await asyncio.sleep(reply.ttft)
    written = 0
    for chunk in chunks:
        data = framer.feed(chunk)
        if not data:
            continue
        if _stops_here(reply, written):
            return await _stop(request, reply, resp, written)
        if written and reply.chunk_delay > 0:
            await asyncio.sleep(reply.chunk_delay)
        await resp.write(data)
        written += 1
    if _stops_here(reply, written):
        return await _stop(request, reply, resp, written)
    await resp.write(framer.feed(tail) + framer.close())
    await resp.write_eof()
    return resp


def _stops_here(reply: Reply, written: int) -> bool:
    return any(n is not None and written >= n for n in (reply.cut_after, reply.end_after))


async def _stop(request: web.Request, reply: Reply, resp: web.StreamResponse, written: int) -> web.StreamResponse:
    if reply.cut_after is not None and written >= reply.cut_after:
        return _cut(request, resp)
    await resp.write_eof()  # a complete HTTP body that ends before the answer does
    return resp


def _cut(request: web.Request, resp: web.StreamResponse) -> web.StreamResponse:
    # close the socket with the chunked body unfinished: the client sees a broken stream, not an end
    if request.transport is not None:
        request.transport.close()
    return resp
