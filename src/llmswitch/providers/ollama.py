"""Ollama: ``ollama/<model>`` and ``ollama_chat/<model>``, as LiteLLM and Ollama's docs write them.

``api_base`` is the server root (default ``http://localhost:11434``, or ``OLLAMA_API_BASE``) and the
call goes to Ollama's own API: ``/api/chat`` (:mod:`llmswitch.dialects.ollama_chat`, NDJSON streams)
and ``/api/embed``. An ``api_base`` ending in ``/v1`` is Ollama's OpenAI-compatible API and is
spoken as such (``/v1/chat/completions``, ``/v1/embeddings``), as before.

    >>> p = OllamaProvider()
    >>> p.chat_call(ir.Request(model="m", messages=[]), model="qwen3:14b", endpoint=p.endpoint()).url
    'http://localhost:11434/api/chat'
    >>> p.chat_call(ir.Request(model="m", messages=[]), model="qwen3:14b",
    ...             endpoint=p.endpoint(api_base="http://gpu:11434/v1")).url
    'http://gpu:11434/v1/chat/completions'

The answer is read by its shape (an OpenAI answer has ``choices``, an SSE stream starts with
``data:``), since decoding is not told which base the call went to.
"""

from __future__ import annotations

from collections.abc import Mapping

from llmswitch import ir
from llmswitch.dialects import ollama_chat, ollama_chat_stream, openai_chat_stream
from llmswitch.dialects._json import dumps, loads_lenient
from llmswitch.dialects.openai_errors import decode_error
from llmswitch.errors import APIResponseValidationError, APIStatusError
from llmswitch.providers.base import Endpoint, HTTPCall, Provider, json_headers, merge_headers
from llmswitch.providers.openai import OpenAIProvider


class OllamaProvider(Provider):
    """Ollama's native API at the server root, or its OpenAI-compatible API under ``…/v1``."""

    name = "ollama"
    dialect = "ollama_chat"
    default_api_base = "http://localhost:11434"
    api_key_env = ("OLLAMA_API_KEY",)
    api_base_env = ("OLLAMA_API_BASE",)
    requires_api_key = False

    def __init__(self, name: str = "ollama") -> None:
        self.name = name
        compat = OpenAIProvider()
        compat.name = name
        compat.max_tokens_key = "max_tokens"
        compat.passthrough = False  # Ollama's answers carry quirks the full path normalizes
        self._compat = compat

    @staticmethod
    def openai_compatible(endpoint: Endpoint) -> bool:
        return endpoint.api_base.endswith("/v1")

    def headers(self, endpoint: Endpoint) -> dict[str, str]:
        # a key only for a server behind an authenticating proxy (or ollama.com); a local Ollama needs none
        h = json_headers({"authorization": f"Bearer {endpoint.api_key}"} if endpoint.api_key else None)
        return merge_headers(h, endpoint.extra_headers)

    def chat_call(self, req: ir.Request, *, model: str, endpoint: Endpoint) -> HTTPCall:
        if self.openai_compatible(endpoint):
            return self._compat.chat_call(req, model=model, endpoint=endpoint)
        headers = self.headers(endpoint)
        if req.stream:
            headers["accept"] = "application/x-ndjson"
        body = ollama_chat.encode_request(self.own_extras(req), model=model)
        return HTTPCall(f"{endpoint.api_base}/api/chat", headers, dumps(body))

    def decode_chat(self, body: bytes, *, model: str) -> ir.Response:
        data = loads_lenient(body)
        if not isinstance(data, dict):
            raise APIResponseValidationError(
                f"{self.name}: unexpected response {body[:200]!r}", provider=self.name, model=model
            )
        if "choices" in data:
            return self._compat.decode_chat(body, model=model)
        if data.get("error"):
            raise decode_error(200, body, provider=self.name, model=model)
        return ollama_chat.decode_response(data)

    def stream_decoder(self, *, model: str) -> _EitherStreamDecoder:
        return _EitherStreamDecoder(provider=self.name, model=model)

    def decode_error(self, status: int, headers: Mapping[str, str], body: bytes, *, model: str) -> APIStatusError:
        # both APIs' shapes ({"error": "text"} natively, OpenAI's object under /v1) are read there
        return decode_error(status, body, headers, provider=self.name, model=model)

    def embedding_call(self, req: ir.EmbeddingRequest, *, model: str, endpoint: Endpoint) -> HTTPCall:
        if self.openai_compatible(endpoint):
            return self._compat.embedding_call(req, model=model, endpoint=endpoint)
        body: dict[str, object] = {"model": model, "input": req.input}
        if req.dimensions is not None:
            body["dimensions"] = req.dimensions
        if req.extra:
            body.update(req.extra)
        return HTTPCall(f"{endpoint.api_base}/api/embed", self.headers(endpoint), dumps(body))

    def decode_embedding(self, body: bytes, *, model: str) -> ir.EmbeddingResponse:
        data = loads_lenient(body)
        if not isinstance(data, dict):
            raise APIResponseValidationError(f"{self.name}: unexpected response {body[:200]!r}", provider=self.name)
        if "data" in data:
            return self._compat.decode_embedding(body, model=model)
        vectors = data.get("embeddings") or []
        return ir.EmbeddingResponse(
            model=str(data.get("model") or model),
            data=[ir.Embedding(index=i, vector=list(v)) for i, v in enumerate(vectors)],
            usage=ir.Usage(input_tokens=int(data.get("prompt_eval_count") or 0)),
        )


class _EitherStreamDecoder:
    """NDJSON (native) or SSE (``/v1``), told apart by the first byte that is not blank."""

    def __init__(self, *, provider: str, model: str) -> None:
        self.meta = ir.StreamMeta()
        self._provider = provider
        self._model = model
        self._inner: ollama_chat_stream.StreamDecoder | openai_chat_stream.StreamDecoder | None = None
        self._head = b""

    def feed(self, chunk: bytes) -> list[ir.StreamEvent]:
        if self._inner is None:
            self._head += chunk
            start = self._head.lstrip()
            if not start:
                return []
            chunk, self._head = self._head, b""
            cls = ollama_chat_stream.StreamDecoder if start[:1] == b"{" else openai_chat_stream.StreamDecoder
            self._inner = cls(provider=self._provider, model=self._model)
            self._inner.meta = self.meta  # the stream's reader holds this object
        return self._inner.feed(chunk)

    def close(self) -> list[ir.StreamEvent]:
        if self._inner is None:
            return []
        return self._inner.close()


class OllamaChatProvider(OllamaProvider):
    """``ollama_chat/<model>``: LiteLLM's name for the same native API (and the same ``/v1`` rule)."""

    def __init__(self) -> None:
        super().__init__("ollama_chat")
