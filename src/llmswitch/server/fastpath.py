"""The same-dialect fast path: an OpenAI client and a plain OpenAI upstream, bytes relayed.

The request was still decoded and validated at the edge; only the answer skips the IR. A stream's
events are passed through unchanged except the usage chunk, which the gateway always asks the
upstream for (bookkeeping needs it) and hands on only to clients that asked for it too. The full path
gives the same visible result; tests compare the two.
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any

import msgspec

from llmswitch import ir
from llmswitch.dialects.openai_chat import map_usage_in
from llmswitch.dialects.sse import SSEParser
from llmswitch.errors import APIConnectionError, APIError
from llmswitch.server import http

if TYPE_CHECKING:
    from llmswitch.engine import ChatStream
    from llmswitch.server.faces import Face


class _UsageOnly(msgspec.Struct):
    usage: dict[str, Any] | None = None


_usage_decoder = msgspec.json.Decoder(_UsageOnly)


def usage_of_body(body: bytes) -> ir.Usage | None:
    """The usage of an OpenAI answer, reading nothing else of it."""
    try:
        u = _usage_decoder.decode(body).usage
    except msgspec.DecodeError:
        return None
    return map_usage_in(u) if u else None


async def relay_stream(
    s: ChatStream,
    request: http.Request,
    send: http.Send,
    face: Face,
    *,
    include_usage: bool,
    headers: dict[str, str],
    provider: str = "provider",
    before_last_byte: Callable[[], Awaitable[Any]] | None = None,
) -> None:
    parser = SSEParser()
    started = False
    finished = False
    t0 = time.perf_counter()
    try:
        await http.start_stream(send, headers=headers)
        started = True
        async for chunk in s.raw_chunks():
            out = []
            for ev in parser.feed(chunk):
                data = ev.data
                if not finished and (_has_finish(data) or data.strip() == "[DONE]"):
                    finished = True
                if '"usage":{' in data:
                    u = usage_of_body(data.encode())
                    if u is not None:
                        request.state["usage"] = u
                        if not include_usage and '"choices":[]' in data:
                            continue
                if "ttft_ms" not in request.state:
                    request.state["ttft_ms"] = (time.perf_counter() - t0) * 1000
                out.append(b"data: " + data.encode() + b"\n\n" if ev.event is None else _with_event(ev.event, data))
            if out:
                await http.stream_chunk(send, b"".join(out))
        if not finished:
            # the upstream's body ended before its answer did: say so, never hand on a short answer
            raise APIConnectionError(
                f"{provider}: the stream ended before the answer did (no finish reason)", provider=provider
            )
        if before_last_byte is not None:
            await before_last_byte()
        await http.end_stream(send)
    except APIError as exc:
        request.state["error"] = exc
        if not started:
            raise
        await http.end_stream(send, face.stream_error(exc))
    finally:
        s.close()


def _has_finish(data: str) -> bool:
    i = data.find('"finish_reason":')
    if i < 0:
        return False
    rest = data[i + 16 : i + 24].lstrip()
    return not rest.startswith("null")


def _with_event(event: str, data: str) -> bytes:
    return f"event: {event}\ndata: {data}\n\n".encode()
