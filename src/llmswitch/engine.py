"""One call to one provider endpoint, with retries: the part of the pipeline below the router.

``chat`` returns an IR response; ``chat_stream`` returns a :class:`ChatStream` of IR events. Both
retry transient failures (for a stream: only before its first byte reached the caller) with the
policy's backoff, inside one deadline across all attempts.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import TypeVar

from llmswitch import ir, transport
from llmswitch.errors import APIConnectionError, APIError, APITimeoutError
from llmswitch.providers.base import Endpoint, HTTPCall, Provider, StreamDecoder
from llmswitch.router.retry import RetryPolicy

T = TypeVar("T")


class Deadline:
    """The moment a request must be over by, across every attempt."""

    __slots__ = ("at",)

    def __init__(self, timeout: float | None) -> None:
        self.at = None if timeout is None else time.monotonic() + timeout

    def remaining(self) -> float | None:
        return None if self.at is None else max(self.at - time.monotonic(), 0.0)

    def allows(self, wait: float) -> bool:
        rem = self.remaining()
        return rem is None or wait < rem


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
    call = provider.chat_call(req, model=model, endpoint=endpoint)

    async def once(t: float | None) -> ir.Response:
        raw = await transport.send(call, timeout=t, provider=provider.name)
        if raw.status >= 400:
            raise provider.decode_error(raw.status, raw.headers, raw.body, model=model)
        return provider.decode_chat(raw.body, model=model)

    return await _with_retries(once, policy, Deadline(timeout), provider)


async def chat_raw(
    provider: Provider,
    call: HTTPCall,
    *,
    model: str,
    timeout: float | None,
    policy: RetryPolicy,
) -> bytes:
    """The fast path: send a body already in the provider's dialect and return its answer's bytes."""

    async def once(t: float | None) -> bytes:
        raw = await transport.send(call, timeout=t, provider=provider.name)
        if raw.status >= 400:
            raise provider.decode_error(raw.status, raw.headers, raw.body, model=model)
        return raw.body

    return await _with_retries(once, policy, Deadline(timeout), provider)


class ChatStream:
    """An open provider stream as IR events. ``meta`` is complete once the first event is out."""

    def __init__(self, resp: transport.StreamResponse, decoder: StreamDecoder, provider: str = "") -> None:
        self._provider = provider
        self._resp = resp
        self._decoder = decoder
        self.meta = decoder.meta
        self._closed = False
        self.passthrough = False

    async def raw_chunks(self) -> AsyncIterator[bytes]:
        """The provider's bytes as they arrive (the fast path relays them without decoding)."""
        try:
            async for chunk in self._resp.iter_chunks():
                yield chunk
        finally:
            self.close()

    async def events(self) -> AsyncIterator[ir.StreamEvent]:
        finished = False
        try:
            async for chunk in self._resp.iter_chunks():
                for ev in self._decoder.feed(chunk):
                    finished = finished or ev.finish_reason is not None
                    yield ev
            for ev in self._decoder.close():
                finished = finished or ev.finish_reason is not None
                yield ev
        finally:
            self.close()
        if not finished:
            # a body that ended cleanly but before the answer did (a proxy giving up): never pass
            # that off as a complete answer
            raise APIConnectionError(
                f"{self._provider}: the stream ended before the answer did (no finish reason)",
                provider=self._provider,
            )

    def close(self) -> None:
        if not self._closed:
            self._closed = True
            self._resp.close()


async def chat_stream(
    provider: Provider,
    req: ir.Request,
    *,
    model: str,
    endpoint: Endpoint,
    timeout: float | None,
    policy: RetryPolicy,
) -> ChatStream:
    """Open a stream; failures before the body starts (connect, error status) are retried."""
    call = provider.chat_call(req, model=model, endpoint=endpoint)
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
        resp = await transport.open_stream(call, timeout=t, provider=provider.name)
        if resp.status >= 400:
            body = await resp.read()
            raise provider.decode_error(resp.status, resp.headers, body, model=model)
        return ChatStream(resp, provider.stream_decoder(model=model), provider.name)

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
    call = provider.embedding_call(req, model=model, endpoint=endpoint)

    async def once(t: float | None) -> ir.EmbeddingResponse:
        raw = await transport.send(call, timeout=t, provider=provider.name)
        if raw.status >= 400:
            raise provider.decode_error(raw.status, raw.headers, raw.body, model=model)
        return provider.decode_embedding(raw.body, model=model)

    return await _with_retries(once, policy, Deadline(timeout), provider)
