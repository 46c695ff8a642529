"""The in-process origin of ``llamacpp://`` calls: OpenAI chat bodies in, OpenAI JSON or SSE bytes out.

Mounted on the transport (:func:`llmswitch.transport.mount`), it stands where an OpenAI-compatible
server would: the provider encodes, the engine decodes, the gateway relays, all unchanged. A call's URL
says which model file to run and how to load it (:func:`call_url`); its body is the request.

    >>> call_url(LoadOptions("/m/smollm2.gguf", n_ctx=2048))
    'llamacpp://chat/completions?path=%2Fm%2Fsmollm2.gguf&n_ctx=2048&n_gpu_layers=0'
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qs, urlencode, urlsplit

from llmswitch.dialects._json import dumps, loads
from llmswitch.errors import APITimeoutError
from llmswitch.local.requests import GenerationError
from llmswitch.local.runtime import ChunkStream, LoadOptions, error_body, loaded_model
from llmswitch.transport import RawResponse, StreamResponse

if TYPE_CHECKING:
    from llmswitch.providers.base import HTTPCall

SCHEME = "llamacpp"
_JSON = {"content-type": "application/json"}
_SSE = {"content-type": "text/event-stream"}


def call_url(options: LoadOptions) -> str:
    """The URL of a chat call to the model ``options`` loads."""
    query = {k: v for k, v in options._asdict().items() if v is not None}
    return f"{SCHEME}://chat/completions?{urlencode(query)}"


def load_options(url: str) -> LoadOptions:
    """The inverse of :func:`call_url`."""
    query = {k: v[-1] for k, v in parse_qs(urlsplit(url).query).items()}
    if "path" not in query:
        raise GenerationError(f"llamacpp: the call's URL names no model file: {url}", 400)
    threads = query.get("n_threads")
    return LoadOptions(
        path=query["path"],
        n_ctx=int(query.get("n_ctx") or LoadOptions._field_defaults["n_ctx"]),
        n_threads=int(threads) if threads else None,
        n_gpu_layers=int(query.get("n_gpu_layers", 0)),
        chat_format=query.get("chat_format") or None,
    )


class LlamaCppOrigin:
    """Answers ``llamacpp://`` calls with the model their URL names."""

    async def send(self, call: HTTPCall, *, timeout: float | None, provider: str | None) -> RawResponse:
        try:
            body = _body(call)
            model = loaded_model(load_options(call.url))
            async with asyncio.timeout(timeout):
                result = await model.complete(body)
        except GenerationError as exc:
            return RawResponse(exc.status, dict(_JSON), error_body(exc))
        except TimeoutError as exc:
            raise _timed_out(provider, timeout) from exc
        return RawResponse(200, {}, dumps(result))

    async def open_stream(self, call: HTTPCall, *, timeout: float | None, provider: str | None) -> StreamResponse:
        try:
            body = _body(call)
            chunks = loaded_model(load_options(call.url)).stream(body)
        except GenerationError as exc:
            return LocalStreamResponse.failed(exc)
        try:
            # like a server's status line: the answer has started (or failed) once the first chunk is out
            async with asyncio.timeout(timeout):
                first = await chunks.next()
        except GenerationError as exc:
            chunks.close()
            return LocalStreamResponse.failed(exc)
        except TimeoutError as exc:
            chunks.close()
            raise _timed_out(provider, timeout) from exc
        except BaseException:
            chunks.close()
            raise
        return LocalStreamResponse(chunks, first, timeout, provider)


class LocalStreamResponse(StreamResponse):
    """A streamed local answer as OpenAI's server-sent events, read like a network stream."""

    __slots__ = ("_chunks", "_error", "_first", "_local_timeout", "_who")

    def __init__(
        self,
        chunks: ChunkStream | None,
        first: dict[str, Any] | None,
        timeout: float | None,
        provider: str | None,
        *,
        status: int = 200,
        error: bytes = b"",
    ) -> None:
        # no connection behind it: StreamResponse's own state is not set up
        self._chunks = chunks
        self._first = first
        self._local_timeout = timeout
        self._who = provider
        self._error = error
        self.status = status
        self.headers = dict(_SSE if status < 400 else _JSON)

    @classmethod
    def failed(cls, exc: GenerationError) -> LocalStreamResponse:
        return cls(None, None, None, None, status=exc.status, error=error_body(exc))

    async def read(self) -> bytes:
        if self.status >= 400:
            return self._error
        return b"".join([chunk async for chunk in self.iter_chunks()])

    async def iter_chunks(self) -> AsyncIterator[bytes]:
        chunks = self._chunks
        if chunks is None:
            return
        try:
            item = self._first
            self._first = None
            while item is not None:
                yield b"data: " + dumps(item) + b"\n\n"
                try:
                    async with asyncio.timeout(self._local_timeout):
                        item = await chunks.next()
                except TimeoutError as exc:
                    raise _timed_out(self._who, self._local_timeout) from exc
                except GenerationError as exc:
                    # after the first chunk an error can only travel inside the stream, as OpenAI sends it
                    yield b"data: " + error_body(exc) + b"\n\n"
                    return
            yield b"data: [DONE]\n\n"
        finally:
            self.close()

    def close(self) -> None:
        chunks, self._chunks = self._chunks, None
        if chunks is not None:
            chunks.close()


def _body(call: HTTPCall) -> dict[str, Any]:
    try:
        body = loads(call.body)
    except Exception as exc:
        raise GenerationError(f"llamacpp: the request body is not JSON: {exc}", 400) from exc
    if not isinstance(body, dict):
        raise GenerationError("llamacpp: the request body is not a JSON object", 400)
    return body


def _timed_out(provider: str | None, timeout: float | None) -> APITimeoutError:
    return APITimeoutError(
        f"{provider or SCHEME}: the local model did not answer within {timeout:.3g} s", provider=provider or SCHEME
    )
