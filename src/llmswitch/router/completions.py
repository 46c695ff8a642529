"""The SDK face of the Router: LiteLLM Router's ``completion`` / ``acompletion`` / ``embedding`` / ``aembedding``.

Results are the same objects ``llmswitch.completion`` returns (streams: the same chunks), plus what the
router did: ``r.llmswitch`` and LiteLLM's ``r._hidden_params`` hold the deployment, its model group and
the number of attempts.

    >>> router = llmswitch.Router(model_list=[...], fallbacks=[{"main": ["backup"]}], num_retries=2)
    >>> r = router.completion(model="main", messages=[{"role": "user", "content": "Hi"}])  # doctest: +SKIP
    >>> r.llmswitch["deployment"], r.llmswitch["attempts"]  # doctest: +SKIP
    ('main#0', 1)
"""

from __future__ import annotations

from collections.abc import AsyncGenerator
from typing import TYPE_CHECKING, Any

from llmswitch import convert, ir, results
from llmswitch._sync import SyncIterator, run
from llmswitch.dialects import openai_chat
from llmswitch.dialects.openai_chat_stream import StreamEncoder
from llmswitch.errors import ConfigError
from llmswitch.structured import normalize_response_format, parse_content

if TYPE_CHECKING:
    from llmswitch.engine import ChatStream
    from llmswitch.router.outcomes import Ask, Route

# keywords of a call that steer the router instead of going to the provider
_ROUTER_KEYS = ("timeout", "num_retries", "max_retries", "request_timeout")


def _hidden(info: dict[str, Any]) -> dict[str, Any]:
    """LiteLLM's ``_hidden_params`` keys, with ours (``dropped_params`` always: a list, maybe empty)."""
    return {"model_id": info["deployment"], "custom_llm_provider": info["provider"], "dropped_params": [], **info}


def _mark(obj: Any, info: dict[str, Any], hidden: dict[str, Any]) -> None:
    # results are msgspec Structs with a __dict__: extra attributes are allowed and never serialized
    obj.llmswitch = info
    obj._hidden_params = hidden


class ChunkStream:
    """The chunks of a routed stream (``async for``), with ``llmswitch`` saying what served it.

    The upstream stream is already open (the router read up to its first content to know it is good):
    ``aclose()``, or dropping the object, closes it even if it was never iterated.
    """

    def __init__(self, stream: ChatStream, include_usage: bool, info: dict[str, Any]) -> None:
        self._stream = stream
        self._source = _chunks(stream, include_usage, info)
        self.llmswitch = info
        self._hidden_params = _hidden(info)

    def __aiter__(self) -> ChunkStream:
        return self

    async def __anext__(self) -> results.ModelResponseStream:
        return await self._source.__anext__()

    async def aclose(self) -> None:
        await self._source.aclose()
        self._stream.close()

    def __del__(self) -> None:
        self._stream.close()


async def _chunks(
    s: ChatStream, include_usage: bool, info: dict[str, Any]
) -> AsyncGenerator[results.ModelResponseStream, None]:
    encoder: StreamEncoder | None = None
    hidden = _hidden(info)
    try:
        async for ev in s.events():
            if encoder is None:
                encoder = StreamEncoder(s.meta, include_usage=include_usage)
            chunk = encoder.chunk(ev)
            if chunk is not None:
                out = convert.stream_chunk(chunk)
                _mark(out, info, hidden)
                yield out
        if encoder is not None:
            tail = encoder.usage_chunk()
            if tail is not None:
                out = convert.stream_chunk(tail)
                _mark(out, info, hidden)
                yield out
    finally:
        s.close()


class CompletionMethods:
    """Mixed into :class:`~llmswitch.router.router.Router`; uses its ``_serve`` and ``_deadline``."""

    if TYPE_CHECKING:

        async def _serve(self, ask: Ask) -> tuple[Any, Route]: ...

        def _deadline(self, timeout: float | None) -> Any: ...

    def _ask(self, kind: Any, req: Any, kwargs: dict[str, Any]) -> Ask:
        from llmswitch.router.outcomes import Ask

        timeout = kwargs.pop("timeout", None) or kwargs.pop("request_timeout", None)
        num_retries = kwargs.pop("num_retries", None)
        if num_retries is None:
            num_retries = kwargs.pop("max_retries", None)
        if num_retries is not None and (not isinstance(num_retries, int) or num_retries < 0):
            raise ConfigError("num_retries must be a non-negative integer")
        return Ask(kind, req, None, self._deadline(timeout), num_retries)

    async def acompletion(self, model: str, messages: list[Any], stream: bool = False, **kwargs: Any) -> Any:
        """Chat completion from the model group ``model``: a ``ModelResponse``, or with ``stream=True`` an async
        iterator of ``ModelResponseStream`` chunks. ``timeout`` bounds the whole call, every retry and
        fallback included; ``num_retries`` overrides the router's for this call.

            >>> r = await router.acompletion(model="main", messages=[{"role": "user", "content": "Hi"}])
        """
        router_kw = {k: kwargs.pop(k) for k in _ROUTER_KEYS if k in kwargs}
        rf, parse_into = normalize_response_format(kwargs.pop("response_format", None))
        body: dict[str, Any] = {"model": model, "messages": messages}
        if stream:
            body["stream"] = True
        if rf is not None:
            body["response_format"] = rf
        body.update((k, v) for k, v in kwargs.items() if v is not None)
        req = openai_chat.decode_request(body)
        if stream:
            user_wants_usage = req.include_usage
            ask = self._ask("stream", req, router_kw)
            s, route = await self._serve(ask)
            info = route.info()
            return ChunkStream(s, user_wants_usage, info)
        resp, route = await self._serve(self._ask("chat", req, router_kw))
        out = convert.model_response(resp)
        if parse_into is not None:
            for c in out.choices:
                if c.finish_reason != "tool_calls" or c.message.content:
                    c.message.parsed = parse_content(c.message.content, parse_into)
        info = route.info()
        _mark(out, info, _hidden(info))
        return out

    def completion(self, model: str, messages: list[Any], stream: bool = False, **kwargs: Any) -> Any:
        """Sync :meth:`acompletion` (a sync iterator of chunks with ``stream=True``).

        >>> r = router.completion(model="main", messages=[{"role": "user", "content": "Hi"}])
        >>> r.choices[0].message.content, r.llmswitch["attempts"]
        """
        result = run(self.acompletion(model, messages, stream, **kwargs))
        if stream:
            it: SyncIterator[Any] = SyncIterator(result)
            it.llmswitch = result.llmswitch  # type: ignore[attr-defined]
            it._hidden_params = result._hidden_params  # type: ignore[attr-defined]
            return it
        return result

    async def aembedding(self, model: str, input: str | list[str], **kwargs: Any) -> results.EmbeddingResponse:
        """Embeddings from the model group ``model``.

        >>> r = await router.aembedding(model="embed", input=["hello"])
        """
        router_kw = {k: kwargs.pop(k) for k in _ROUTER_KEYS if k in kwargs}
        texts = [input] if isinstance(input, str) else list(input)
        if not texts or not all(isinstance(t, str) for t in texts):
            raise ConfigError("input must be a string or a non-empty list of strings")
        fmt = kwargs.pop("encoding_format", None)
        if fmt not in (None, "float", "base64"):
            raise ConfigError("encoding_format must be 'float' or 'base64'")
        req = ir.EmbeddingRequest(
            model=model,
            input=texts,
            dimensions=kwargs.pop("dimensions", None),
            encoding_format=fmt,
            user=kwargs.pop("user", None),
            extra={k: v for k, v in kwargs.items() if v is not None} or None,
        )
        resp, route = await self._serve(self._ask("embedding", req, router_kw))
        out = convert.embedding_response(resp)
        info = route.info()
        _mark(out, info, _hidden(info))
        return out
