"""OpenAI, and the base of every OpenAI-compatible provider (presets are rows of data over it)."""

from __future__ import annotations

import base64
import struct
from collections.abc import Mapping
from typing import Any

from llmswitch import ir
from llmswitch.dialects import openai_chat
from llmswitch.dialects._json import dumps, loads
from llmswitch.dialects.openai_chat_stream import StreamDecoder
from llmswitch.errors import APIResponseValidationError, APIStatusError
from llmswitch.providers.base import Endpoint, HTTPCall, Provider, merge_headers


class OpenAIProvider(Provider):
    """``openai/<model>``: api.openai.com, or any OpenAI-compatible server through ``api_base``."""

    name = "openai"
    default_api_base = "https://api.openai.com/v1"
    api_key_env: tuple[str, ...] = ("OPENAI_API_KEY",)
    api_base_env: tuple[str, ...] = ("OPENAI_API_BASE", "OPENAI_BASE_URL")
    # OpenAI's reasoning models reject max_tokens; every current OpenAI model takes this one
    max_tokens_key = "max_completion_tokens"
    # answers exactly in OpenAI's format (no vendor quirks), so a client speaking OpenAI can be
    # served its bytes as they are: the gateway's fast path
    passthrough = True
    # LiteLLM's switch to OpenAI's Responses API for a deployment's chat requests (see for_settings)
    settings_keys = frozenset(("use_responses_api",))

    def for_model(self, model: str) -> Provider:
        """``openai/responses/<model>``: the Responses API (:mod:`llmswitch.providers.openai_responses`)."""
        if self.name == "openai" and model.startswith("responses/"):
            from llmswitch.providers.openai_responses import responses_provider

            return responses_provider()
        return self

    def for_settings(self, settings: Mapping[str, Any] | None) -> Provider:
        if self.name == "openai" and settings and settings.get("use_responses_api") in (True, "true", "True"):
            from llmswitch.providers.openai_responses import responses_provider

            return responses_provider()
        return self

    def endpoint(self, *, settings: Mapping[str, Any] | None = None, **kwargs: Any) -> Endpoint:
        # use_responses_api chose the provider (for_settings); the endpoint is the same
        return super().endpoint(**kwargs)

    def auth_headers(self, endpoint: Endpoint) -> dict[str, str]:
        h = {"content-type": "application/json", "accept": "application/json"}
        if endpoint.api_key:
            h["authorization"] = f"Bearer {endpoint.api_key}"
        return h

    def chat_url(self, endpoint: Endpoint, model: str) -> str:
        return f"{endpoint.api_base}/chat/completions"

    def embeddings_url(self, endpoint: Endpoint, model: str) -> str:
        return f"{endpoint.api_base}/embeddings"

    def chat_body(self, req: ir.Request, model: str) -> dict[str, Any]:
        return openai_chat.encode_request(req, model=model, max_tokens_key=self.max_tokens_key)

    def chat_call(self, req: ir.Request, *, model: str, endpoint: Endpoint) -> HTTPCall:
        headers = merge_headers(self.auth_headers(endpoint), endpoint.extra_headers)
        if req.stream:
            headers["accept"] = "text/event-stream"
        return HTTPCall(self.chat_url(endpoint, model), headers, dumps(self.chat_body(self.own_extras(req), model)))

    def passthrough_call(self, body: dict[str, Any], *, model: str, endpoint: Endpoint) -> HTTPCall:
        """A call carrying a client's own OpenAI body, with only the model id (and, for a stream,
        ``stream_options.include_usage``, which bookkeeping needs) rewritten."""
        out = dict(body)
        out["model"] = model
        out.pop("timeout", None)  # a gateway setting (LiteLLM's proxy takes it in the body), not OpenAI's
        headers = merge_headers(self.auth_headers(endpoint), endpoint.extra_headers)
        if out.get("stream"):
            so = out.get("stream_options")
            out["stream_options"] = {**so, "include_usage": True} if isinstance(so, dict) else {"include_usage": True}
            headers["accept"] = "text/event-stream"
        return HTTPCall(self.chat_url(endpoint, model), headers, dumps(out))

    def decode_chat(self, body: bytes, *, model: str) -> ir.Response:
        try:
            data = loads(body.strip())
        except Exception as exc:
            raise APIResponseValidationError(
                f"{self.name}: response is not JSON: {body[:200]!r}", provider=self.name, model=model
            ) from exc
        if isinstance(data, dict) and data.get("error") and not data.get("choices"):
            raise openai_chat.decode_error(200, body, provider=self.name, model=model)
        if not isinstance(data, dict):
            raise APIResponseValidationError(f"{self.name}: unexpected response {body[:200]!r}", provider=self.name)
        return openai_chat.decode_response(data)

    def stream_decoder(self, *, model: str) -> StreamDecoder:
        return StreamDecoder(provider=self.name, model=model)

    def decode_error(self, status: int, headers: Mapping[str, str], body: bytes, *, model: str) -> APIStatusError:
        return openai_chat.decode_error(status, body, headers, provider=self.name, model=model)

    def embedding_call(self, req: ir.EmbeddingRequest, *, model: str, endpoint: Endpoint) -> HTTPCall:
        body: dict[str, Any] = {"model": model, "input": req.input}
        if req.dimensions is not None:
            body["dimensions"] = req.dimensions
        if req.encoding_format is not None:
            body["encoding_format"] = req.encoding_format
        if req.user is not None:
            body["user"] = req.user
        if req.extra:
            body.update(req.extra)
        headers = merge_headers(self.auth_headers(endpoint), endpoint.extra_headers)
        return HTTPCall(self.embeddings_url(endpoint, model), headers, dumps(body))

    def decode_embedding(self, body: bytes, *, model: str) -> ir.EmbeddingResponse:
        data = loads(body.strip())
        items = []
        for i, d in enumerate(data.get("data") or []):
            vec = d.get("embedding")
            if isinstance(vec, str):
                vec = decode_base64_floats(vec)
            items.append(ir.Embedding(index=int(d.get("index", i)), vector=vec or []))
        u = data.get("usage") or {}
        usage = ir.Usage(input_tokens=int(u.get("prompt_tokens") or u.get("total_tokens") or 0))
        return ir.EmbeddingResponse(model=str(data.get("model") or model), data=items, usage=usage)


def decode_base64_floats(text: str) -> list[float]:
    """OpenAI's ``encoding_format=base64``: little-endian float32s."""
    raw = base64.b64decode(text)
    return list(struct.unpack(f"<{len(raw) // 4}f", raw))
