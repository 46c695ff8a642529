"""Anthropic: the Messages API at ``{api_base}/v1/messages``, authenticated with ``x-api-key``.

``api_base`` follows the anthropic SDK's convention (``https://api.anthropic.com``, no ``/v1``); a base
that already ends in ``/v1`` or ``/v1/messages`` is taken as written. ``anthropic-beta`` carries what
the request needs (see :func:`anthropic_messages.required_betas`) merged with any the caller sends.
Anthropic has no embeddings endpoint, so :meth:`embedding_call` stays the base class's ConfigError.

    >>> p = AnthropicProvider()
    >>> p.chat_url(p.endpoint(api_base="http://127.0.0.1:8080", api_key="k"))
    'http://127.0.0.1:8080/v1/messages'
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from llmswitch import ir
from llmswitch.dialects import anthropic_messages
from llmswitch.dialects._json import dumps, loads
from llmswitch.dialects.anthropic_errors import decode_error
from llmswitch.dialects.anthropic_stream import StreamDecoder
from llmswitch.errors import APIResponseValidationError, APIStatusError, BadRequestError
from llmswitch.providers.base import Endpoint, HTTPCall, Provider


class AnthropicProvider(Provider):
    """``anthropic/<model>``: api.anthropic.com, or any server speaking the Messages API via ``api_base``."""

    name = "anthropic"
    dialect = "anthropic_messages"
    default_api_base = "https://api.anthropic.com"
    api_key_env: tuple[str, ...] = ("ANTHROPIC_API_KEY",)
    api_base_env: tuple[str, ...] = ("ANTHROPIC_API_BASE", "ANTHROPIC_BASE_URL")
    supports_embeddings = False
    api_version = "2023-06-01"
    # None: the dialect's per-model default (see anthropic_models.max_tokens_of)
    default_max_tokens: int | None = None

    def chat_url(self, endpoint: Endpoint) -> str:
        base = endpoint.api_base
        if base.endswith("/v1/messages"):
            return base
        if base.endswith("/v1"):
            return f"{base}/messages"
        return f"{base}/v1/messages"

    def headers(self, endpoint: Endpoint, betas: list[str]) -> dict[str, str]:
        h = {
            "content-type": "application/json",
            "accept": "application/json",
            "anthropic-version": endpoint.api_version or self.api_version,
        }
        if endpoint.api_key:
            h["x-api-key"] = endpoint.api_key
        for k, v in (endpoint.extra_headers or {}).items():
            if k.lower() == "anthropic-beta":
                betas = betas + [b.strip() for b in str(v).split(",") if b.strip()]
            else:
                h[k.lower()] = str(v)
        if betas:
            h["anthropic-beta"] = ",".join(dict.fromkeys(betas))  # merged, order kept, no repeats
        return h

    def chat_body(self, req: ir.Request, model: str) -> dict[str, Any]:
        return anthropic_messages.encode_request(req, model=model, default_max_tokens=self.default_max_tokens)

    def chat_call(self, req: ir.Request, *, model: str, endpoint: Endpoint) -> HTTPCall:
        body = self.chat_body(self.own_extras(req), model)
        headers = self.headers(endpoint, anthropic_messages.required_betas(body))
        return HTTPCall(self.chat_url(endpoint), headers, dumps(body))

    def decode_chat(self, body: bytes, *, model: str) -> ir.Response:
        try:
            data = loads(body.strip())
        except Exception as exc:
            raise APIResponseValidationError(
                f"{self.name}: response is not JSON: {body[:200]!r}", provider=self.name, model=model
            ) from exc
        if not isinstance(data, dict):
            raise APIResponseValidationError(f"{self.name}: unexpected response {body[:200]!r}", provider=self.name)
        if data.get("type") == "error":
            raise decode_error(200, body, provider=self.name, model=model)
        try:
            return anthropic_messages.decode_response(data)
        except BadRequestError as exc:
            # a malformed block in a 2xx answer is the provider's fault, not the caller's
            raise APIResponseValidationError(
                f"{self.name}: unreadable response: {exc}", provider=self.name, model=model, body=data
            ) from exc

    def stream_decoder(self, *, model: str) -> StreamDecoder:
        return StreamDecoder(provider=self.name, model=model)

    def decode_error(self, status: int, headers: Mapping[str, str], body: bytes, *, model: str) -> APIStatusError:
        return decode_error(status, body, headers, provider=self.name, model=model)
