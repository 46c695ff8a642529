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
from llmswitch.errors import APIError
from llmswitch.server import http

if TYPE_CHECKING:
    from llmswitch.engine import ChatStream
    from llmswitch.server.faces import Face


class _UsageOnly(msgspec.Struct):
    usage: dict[str, Any] | None = None


_usage_decoder = msgspec.json.Decoder(_UsageOnly)

# OpenAI's own usage, every count an integer or null and no other field, is read into these structs
# and mapped as map_usage_in maps the same object (tests/server/test_fastpath_usage.py holds the two
# equal); anything else (a vendor's fields, a count as a float) goes to map_usage_in itself
_Count = int | msgspec.UnsetType | None
_UNSET: Any = msgspec.UNSET


class _KnownDetails(msgspec.Struct, forbid_unknown_fields=True):
    cached_tokens: _Count = _UNSET
    cache_creation_tokens: _Count = _UNSET
    audio_tokens: _Count = _UNSET
    reasoning_tokens: _Count = _UNSET
    accepted_prediction_tokens: _Count = _UNSET
    rejected_prediction_tokens: _Count = _UNSET
    text_tokens: _Count = _UNSET
    image_tokens: _Count = _UNSET


class _KnownUsage(msgspec.Struct, forbid_unknown_fields=True):
    prompt_tokens: _Count = _UNSET
    completion_tokens: _Count = _UNSET
    total_tokens: _Count = _UNSET
    prompt_tokens_details: _KnownDetails | msgspec.UnsetType | None = _UNSET
    completion_tokens_details: _KnownDetails | msgspec.UnsetType | None = _UNSET


class _KnownUsageOnly(msgspec.Struct):
    usage: _KnownUsage | None = None


_known_usage_decoder = msgspec.json.Decoder(_KnownUsageOnly)
_NO_DETAILS = _KnownDetails()


def usage_of_body(body: bytes) -> ir.Usage | None:
    """The usage of an OpenAI answer, reading nothing else of it."""
    try:
        u = _known_usage_decoder.decode(body).usage
    except msgspec.DecodeError:
        try:
            raw = _usage_decoder.decode(body).usage
        except msgspec.DecodeError:
            return None
        return map_usage_in(raw) if raw else None
    if u is None or (u.prompt_tokens is _UNSET and _empty(u)):
        return None
    prompt = u.prompt_tokens or 0
    completion = u.completion_tokens or 0
    cd = u.completion_tokens_details or _NO_DETAILS
    pd = u.prompt_tokens_details or _NO_DETAILS
    reasoning = cd.reasoning_tokens or 0
    if reasoning and u.total_tokens == prompt + completion + reasoning:
        completion += reasoning  # as map_usage_in: reasoning counted outside completion goes inside it
    return ir.Usage(
        input_tokens=prompt,
        output_tokens=completion,
        cache_read_tokens=pd.cached_tokens or 0,
        cache_write_tokens=pd.cache_creation_tokens or 0,
        reasoning_tokens=reasoning,
        reasoning_reported=cd.reasoning_tokens is not _UNSET,
        input_audio_tokens=pd.audio_tokens or 0,
        output_audio_tokens=cd.audio_tokens or 0,
        accepted_prediction_tokens=cd.accepted_prediction_tokens or 0,
        rejected_prediction_tokens=cd.rejected_prediction_tokens or 0,
    )


def _empty(u: _KnownUsage) -> bool:
    """Whether the usage object had no field at all (``"usage": {}``: no usage, as map_usage_in's caller reads it)."""
    return (
        u.completion_tokens is _UNSET
        and u.total_tokens is _UNSET
        and u.prompt_tokens_details is _UNSET
        and u.completion_tokens_details is _UNSET
    )


async def relay_stream(
    s: ChatStream,
    request: http.Request,
    send: http.Send,
    face: Face,
    *,
    include_usage: bool,
    headers: http.RawHeaders,
    provider: str = "provider",
    before_last_byte: Callable[[], Awaitable[Any]] | None = None,
    keep: list[bytes] | None = None,
) -> None:
    """Relay an OpenAI upstream's SSE bytes, whole events at a time, reading none of them but the
    usage event (``raw_chunks`` itself checks, by a byte search, that the answer was finished). ``keep``
    gets every block relayed (the cache stores the answer from them afterwards)."""
    started = False
    pending = b""
    t0 = time.perf_counter()
    # what was relayed, for a stream that ends before its usage (see relayed_chars): a sample of the
    # first bytes and the total, so the normal path pays two additions a chunk and no parsing
    sample: list[bytes] = []
    sampled = relayed = 0
    held = b""  # the end marker, sent with the body's end once the answer's record is written
    # from the request's admission (handle_chat): the upstream's wait for its first token counts too
    t0 = request.state.get("admitted_at") or t0
    try:
        await http.start_stream(send, raw_headers=headers)
        started = True
        async for chunk in s.raw_chunks():
            data = pending + chunk if pending else chunk
            end = _events_end(data)
            if end == 0:
                pending = data
                continue
            ready, pending = data[:end], data[end:]
            if b'"usage":{' in ready or b'"usage": {' in ready:
                ready = _take_usage(ready, request, include_usage)
            if "ttft_ms" not in request.state:
                request.state["ttft_ms"] = (time.perf_counter() - t0) * 1000
            if held:  # bytes after the end marker (never from a provider seen so far): kept in order
                ready, held = held + ready, b""
            if ready.endswith(_DONE_ENDS):
                # the end marker waits for the record: a client that has it has the whole answer, and may
                # hang up before the body's own end
                cut = ready.rfind(b"data:")
                held, ready = ready[cut:], ready[:cut]
            if ready:
                await http.stream_chunk(send, ready)
                if keep is not None:
                    keep.append(ready)
                relayed += len(ready)
                if sampled < _SAMPLE_BYTES:
                    sample.append(ready)
                    sampled += len(ready)
        if pending:  # a last event without its blank line, sent with the body's end
            if b'"usage":' in pending:
                pending = _take_usage(pending, request, include_usage)
            held += pending
        if keep is not None and held:
            keep.append(held)
        if before_last_byte is not None:
            await before_last_byte()
        await http.end_stream(send, held)
    except APIError as exc:
        request.state["error"] = exc
        if not started:
            raise
        await http.end_stream(send, held + face.stream_error(exc))
    finally:
        request.state["relayed"] = (sample, relayed)
        s.close()


_SAMPLE_BYTES = 64 << 10
_DONE_ENDS = (b"[DONE]\n\n", b"[DONE]\r\n\r\n")


def relayed_chars(sample: list[bytes], relayed: int) -> int:
    """Characters of answer text (content, reasoning, tool arguments) in ``relayed`` bytes of OpenAI
    stream events, of which ``sample`` holds the first: counted in the sample, scaled to the rest."""
    data = b"".join(sample)
    if not data:
        return 0
    chars = 0
    parser = SSEParser()
    for ev in parser.feed(data) + parser.close():
        try:
            chunk = msgspec.json.decode(ev.data)
        except msgspec.DecodeError:
            continue  # [DONE], or an event cut short
        for choice in chunk.get("choices") or () if isinstance(chunk, dict) else ():
            delta = choice.get("delta") if isinstance(choice, dict) else None
            if not isinstance(delta, dict):
                continue
            for name in ("content", "reasoning_content", "reasoning", "refusal"):
                text = delta.get(name)
                if isinstance(text, str):
                    chars += len(text)
            for call in delta.get("tool_calls") or ():
                function = call.get("function") if isinstance(call, dict) else None
                if isinstance(function, dict):
                    for name in ("name", "arguments"):
                        text = function.get(name)
                        if isinstance(text, str):
                            chars += len(text)
    if relayed > len(data):
        chars = -(-chars * relayed // len(data))
    return chars


def _events_end(data: bytes) -> int:
    """Where the last complete SSE event in ``data`` ends (0: none yet), for either line ending."""
    lf = data.rfind(b"\n\n")
    crlf = data.rfind(b"\r\n\r\n")
    return max(lf + 2 if lf >= 0 else 0, crlf + 4 if crlf >= 0 else 0)


def _take_usage(ready: bytes, request: http.Request, include_usage: bool) -> bytes:
    """Read the usage out of these events; drop the usage-only event unless the client asked for it
    (the gateway always asks the upstream, for its own bookkeeping)."""
    parser = SSEParser()
    out = []
    for ev in parser.feed(ready) + parser.close():
        data = ev.data
        if '"usage":' in data:
            u = usage_of_body(data.encode())
            if u is not None:
                request.state["usage"] = u
                if not include_usage and ('"choices":[]' in data or '"choices": []' in data):
                    continue
        out.append(b"data: " + data.encode() + b"\n\n" if ev.event is None else _with_event(ev.event, data))
    return b"".join(out)


def _with_event(event: str, data: str) -> bytes:
    return f"event: {event}\ndata: {data}\n\n".encode()
