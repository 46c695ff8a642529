"""One call to one provider endpoint: the part of the pipeline below the router.

The ``send_*`` functions make exactly one attempt (the router decides what happens after a failure).
``chat`` / ``chat_raw`` / ``chat_stream`` / ``embedding`` wrap them with retries of the same endpoint
inside one deadline, for the SDK's direct calls that have no router.

A stream is returned only once its first *content* event has arrived (text, reasoning, a tool call or
the finish): a stream that fails before that is an ordinary failed attempt, retried or failed over
without the caller seeing any of it. After that, a failure reaches the caller as an error raised from
the iteration (the gateway turns it into an error event in the client's dialect).

    >>> s = await send_stream(provider, call, model="gpt-4o", timeout=30)  # doctest: +SKIP
    >>> async for ev in s.events(): ...  # doctest: +SKIP
"""

from __future__ import annotations

import asyncio
import re
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any, TypeVar

from llmswitch import ir, transport
from llmswitch.errors import APIConnectionError, APIError, APITimeoutError
from llmswitch.providers.base import Endpoint, HTTPCall, Provider, StreamDecoder
from llmswitch.router.retry import RetryPolicy

T = TypeVar("T")


class Deadline:
    """The moment a request must be over by, across every attempt.

    >>> Deadline(None).remaining() is None
    True
    """

    __slots__ = ("at", "clock")

    def __init__(self, timeout: float | None, clock: Callable[[], float] = time.monotonic) -> None:
        self.clock = clock
        self.at = None if timeout is None else clock() + timeout

    def remaining(self) -> float | None:
        return None if self.at is None else max(self.at - self.clock(), 0.0)

    def expired(self) -> bool:
        return self.at is not None and self.clock() >= self.at

    def allows(self, wait: float) -> bool:
        rem = self.remaining()
        return rem is None or wait < rem


# ---------------------------------------------------------------- one attempt


def with_network(call: HTTPCall, endpoint: Endpoint) -> HTTPCall:
    """``call`` carrying its endpoint's proxy / TLS settings and credentials (providers build calls
    without them)."""
    if endpoint.network is None and endpoint.auth is None:
        return call
    return call._replace(network=endpoint.network, auth=endpoint.auth)


async def send_chat(provider: Provider, call: HTTPCall, *, model: str, timeout: float | None) -> ir.Response:
    if call.auth is not None:
        call = await _authorized(provider, call, timeout)
    raw = await transport.send(call, timeout=timeout, provider=provider.name)
    if raw.status >= 400:
        raise provider.decode_error(raw.status, raw.headers, raw.body, model=model)
    return provider.decode_chat(raw.body, model=model)


async def send_raw(provider: Provider, call: HTTPCall, *, model: str, timeout: float | None) -> bytes:
    """The fast path: a body already in the provider's dialect; its answer's bytes unchanged."""
    if call.auth is not None:
        call = await _authorized(provider, call, timeout)
    raw = await transport.send(call, timeout=timeout, provider=provider.name)
    if raw.status >= 400:
        raise provider.decode_error(raw.status, raw.headers, raw.body, model=model)
    return raw.body


async def send_embedding(
    provider: Provider, call: HTTPCall, *, model: str, timeout: float | None
) -> ir.EmbeddingResponse:
    if call.auth is not None:
        call = await _authorized(provider, call, timeout)
    raw = await transport.send(call, timeout=timeout, provider=provider.name)
    if raw.status >= 400:
        raise provider.decode_error(raw.status, raw.headers, raw.body, model=model)
    return provider.decode_embedding(raw.body, model=model)


async def send_stream(
    provider: Provider, call: HTTPCall, *, model: str, timeout: float | None, passthrough: bool = False
) -> ChatStream:
    """Open a stream and read up to its first content event, all within ``timeout``."""
    try:
        async with asyncio.timeout(timeout):
            if call.auth is not None:
                call = await call.auth.authorize(call)
            resp = await transport.open_stream(call, timeout=timeout, provider=provider.name)
            if resp.status >= 400:
                body = await resp.read()
                raise provider.decode_error(resp.status, resp.headers, body, model=model)
            s = ChatStream(resp, provider.stream_decoder(model=model), provider.name)
            s.passthrough = passthrough
            try:
                await s.peek()
            except BaseException:
                s.close()
                raise
            return s
    except TimeoutError as exc:
        raise APITimeoutError(f"{provider.name}: no answer within {timeout:.3g} s", provider=provider.name) from exc


async def _authorized(provider: Provider, call: HTTPCall, timeout: float | None) -> HTTPCall:
    """``call`` with its credentials applied (a token fetched when it must be), within ``timeout``."""
    assert call.auth is not None
    try:
        async with asyncio.timeout(timeout):
            return await call.auth.authorize(call)
    except TimeoutError as exc:
        raise APITimeoutError(
            f"{provider.name}: no credentials within {timeout:.3g} s", provider=provider.name
        ) from exc


def _has_content(ev: ir.StreamEvent) -> bool:
    return bool(
        ev.text
        or ev.reasoning
        or ev.tool_calls
        or ev.finish_reason is not None
        or ev.redacted_reasoning
        or ev.reasoning_signature
        or ev.provider_part is not None
        or ev.refusal
        or ev.audio is not None
    )


_FINISH_MARKERS = (b"[DONE]", b'"finish_reason":"', b'"finish_reason": "')


def _has_finish(prev: bytes, chunk: bytes) -> bool:
    """Whether an OpenAI SSE chunk (or its seam with the one before) carries a finish reason or ``[DONE]``."""
    for marker in _FINISH_MARKERS:
        if marker in chunk:
            return True
    seam = prev[-20:] + chunk[:20]
    return any(marker in seam for marker in _FINISH_MARKERS)


StreamEnd = Callable[["ChatStream", "APIError | None"], None]

# an OpenAI chunk carrying content: text, reasoning or a refusal that is not empty, tool calls, audio, or a finish
_RAW_CONTENT = re.compile(
    rb'"(?:content|reasoning_content|reasoning|refusal)":\s?"[^"]|"tool_calls":\s?\[\{|"finish_reason":\s?"|"audio":\s?\{'
)


class ChatStream:
    """An open provider stream as IR events (``events()``) or as the provider's bytes (``raw_chunks()``).

    ``meta`` is complete once the first event is out. ``passthrough`` tells whether the raw bytes are
    already in the client's (OpenAI) dialect. ``usage`` is the latest usage seen by ``events()``.
    ``on_end(stream, error)`` is called once when the stream is closed: ``error`` is the failure that
    ended it, or ``None`` (finished, or left early by its reader).
    """

    def __init__(self, resp: transport.StreamResponse, decoder: StreamDecoder, provider: str = "") -> None:
        self._provider = provider
        self._resp = resp
        self._decoder = decoder
        self._chunks = resp.iter_chunks()
        self._raw_buf: list[bytes] = []
        self._ev_buf: list[ir.StreamEvent] = []
        self._body_ended = False
        self._closed = False
        self._error: APIError | None = None
        self.meta = decoder.meta
        self.passthrough = False
        self.usage: ir.Usage | None = None
        self.on_end: StreamEnd | None = None
        # the owner's bookkeeping for ``on_end`` (the router keeps its deployment here)
        self.context: Any = None

    async def peek(self) -> None:
        """Read (and keep) chunks until an event with content arrives; raise if the stream fails first."""
        async for chunk in self._chunks:
            self._raw_buf.append(chunk)
            if self.passthrough and b'"error"' not in chunk and _RAW_CONTENT.search(chunk) is not None:
                # relayed as bytes: content arrived and no error with it is all that needs knowing,
                # so nothing is decoded (an error, or no content yet, takes the decoding path below)
                return
            events = self._decoder.feed(chunk)
            if events:
                self._ev_buf.extend(events)
                if any(_has_content(ev) for ev in events):
                    return
        self._body_ended = True
        self._ev_buf.extend(self._decoder.close())
        if not any(ev.finish_reason is not None for ev in self._ev_buf):
            raise self._truncated()

    async def raw_chunks(self) -> AsyncIterator[bytes]:
        """The provider's bytes as they arrive (the fast path relays them without decoding).

        The bytes are OpenAI SSE (only OpenAI-dialect streams are relayed raw): a body that ends
        without a finish reason or ``[DONE]`` raises, as :meth:`events` does, rather than passing
        off a truncated answer as complete. Finding the marker is a byte search, not a decode.
        """
        finished = any(ev.finish_reason is not None for ev in self._ev_buf)
        prev = b""
        try:
            buffered, self._raw_buf = self._raw_buf, []
            for chunk in buffered:
                finished = finished or _has_finish(prev, chunk)
                prev = chunk
                yield chunk
            if not self._body_ended:
                async for chunk in self._chunks:
                    finished = finished or _has_finish(prev, chunk)
                    prev = chunk
                    yield chunk
            if not finished:
                raise self._truncated()
        except APIError as exc:
            self._error = exc
            raise
        finally:
            self.close()

    async def events(self) -> AsyncIterator[ir.StreamEvent]:
        finished = False
        try:
            buffered, self._ev_buf = self._ev_buf, []
            for ev in buffered:
                finished = finished or ev.finish_reason is not None
                if ev.usage is not None:
                    self.usage = ev.usage
                yield ev
            if not self._body_ended:
                async for chunk in self._chunks:
                    for ev in self._decoder.feed(chunk):
                        finished = finished or ev.finish_reason is not None
                        if ev.usage is not None:
                            self.usage = ev.usage
                        yield ev
                for ev in self._decoder.close():
                    finished = finished or ev.finish_reason is not None
                    if ev.usage is not None:
                        self.usage = ev.usage
                    yield ev
            if not finished:
                # a body that ended cleanly but before the answer did (a proxy giving up): never pass
                # that off as a complete answer
                raise self._truncated()
        except APIError as exc:
            self._error = exc
            raise
        finally:
            self.close()

    def _truncated(self) -> APIConnectionError:
        return APIConnectionError(
            f"{self._provider}: the stream ended before the answer did (no finish reason)", provider=self._provider
        )

    def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        self._resp.close()
        on_end, self.on_end = self.on_end, None
        if on_end is not None:
            on_end(self, self._error)


# ---------------------------------------------------------------- with retries (the SDK's direct calls)


async def _with_retries(
    attempt_once: Callable[[float | None], Awaitable[T]], policy: RetryPolicy, deadline: Deadline, provider: Provider
) -> T:
    attempt = 0
    while True:
        rem = deadline.remaining()
        if rem is not None and rem <= 0:
            raise APITimeoutError(f"{provider.name}: request timed out", provider=provider.name)
        try:
            return await attempt_once(rem)
        except APIError as exc:
            if not policy.should_retry(exc, attempt):
                raise
            wait = policy.delay(exc, attempt)
            if not deadline.allows(wait):
                raise
            attempt += 1
            await asyncio.sleep(wait)


async def chat(
    provider: Provider,
    req: ir.Request,
    *,
    model: str,
    endpoint: Endpoint,
    timeout: float | None,
    policy: RetryPolicy,
) -> ir.Response:
    call = with_network(provider.chat_call(req, model=model, endpoint=endpoint), endpoint)

    async def once(t: float | None) -> ir.Response:
        return await send_chat(provider, call, model=model, timeout=t)

    return await _with_retries(once, policy, Deadline(timeout), provider)


async def chat_raw(
    provider: Provider,
    call: HTTPCall,
    *,
    model: str,
    timeout: float | None,
    policy: RetryPolicy,
) -> bytes:
    """The fast path with retries: send a body already in the provider's dialect, return the answer's bytes."""

    async def once(t: float | None) -> bytes:
        return await send_raw(provider, call, model=model, timeout=t)

    return await _with_retries(once, policy, Deadline(timeout), provider)


async def chat_stream(
    provider: Provider,
    req: ir.Request,
    *,
    model: str,
    endpoint: Endpoint,
    timeout: float | None,
    policy: RetryPolicy,
) -> ChatStream:
    """Open a stream; failures before its first content event (connect, error status, a cut) are retried."""
    call = with_network(provider.chat_call(req, model=model, endpoint=endpoint), endpoint)
    return await open_chat_stream(provider, call, model=model, timeout=timeout, policy=policy)


async def open_chat_stream(
    provider: Provider,
    call: HTTPCall,
    *,
    model: str,
    timeout: float | None,
    policy: RetryPolicy,
) -> ChatStream:
    """Open a stream for a prepared call (also the fast path's, whose body is the client's own)."""

    async def once(t: float | None) -> ChatStream:
        return await send_stream(provider, call, model=model, timeout=t)

    return await _with_retries(once, policy, Deadline(timeout), provider)


async def open_raw_stream(
    provider: Provider,
    call: HTTPCall,
    *,
    model: str,
    timeout: float | None,
    policy: RetryPolicy,
) -> transport.StreamResponse:
    """Open a stream whose bytes the caller reads itself (an API the IR does not stand between, such as
    OpenAI's Responses events); an error status, or failing to connect, is retried like any attempt."""

    async def once(t: float | None) -> transport.StreamResponse:
        c = await _authorized(provider, call, t) if call.auth is not None else call
        resp = await transport.open_stream(c, timeout=t, provider=provider.name)
        if resp.status >= 400:
            body = await resp.read()
            raise provider.decode_error(resp.status, resp.headers, body, model=model)
        return resp

    return await _with_retries(once, policy, Deadline(timeout), provider)


async def embedding(
    provider: Provider,
    req: ir.EmbeddingRequest,
    *,
    model: str,
    endpoint: Endpoint,
    timeout: float | None,
    policy: RetryPolicy,
) -> ir.EmbeddingResponse:
    call = with_network(provider.embedding_call(req, model=model, endpoint=endpoint), endpoint)

    async def once(t: float | None) -> ir.EmbeddingResponse:
        return await send_embedding(provider, call, model=model, timeout=t)

    return await _with_retries(once, policy, Deadline(timeout), provider)
