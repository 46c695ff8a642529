"""OpenAI through its Responses API, for chat requests: ``openai/responses/<model>``, or an ``openai/``
deployment with ``use_responses_api: true`` (LiteLLM's names). Models that exist only there (``o3-pro``,
``codex-mini-latest``, ``computer-use-preview`` …) are reached this way; the caller still speaks Chat
Completions (or any client dialect) and gets a chat answer (:mod:`llmswitch.dialects.openai_responses_client`).

    >>> r = llmswitch.completion("openai/responses/o3-pro", [{"role": "user", "content": "Hi"}])  # doctest: +SKIP
"""

from __future__ import annotations

from typing import Any

from llmswitch import ir
from llmswitch.dialects import openai_responses_client
from llmswitch.dialects._json import dumps, loads
from llmswitch.errors import APIResponseValidationError
from llmswitch.providers.base import Endpoint, HTTPCall, merge_headers
from llmswitch.providers.openai import OpenAIProvider


class OpenAIResponsesProvider(OpenAIProvider):
    """Chat requests to OpenAI's ``/responses``; the same endpoint, keys and parameter policy as ``openai/``."""

    policy = "openai"
    # the client's chat body is never relayed as it is: it is a Responses request on the wire
    passthrough = False

    @staticmethod
    def _model(model: str) -> str:
        return model.removeprefix("responses/")

    def chat_call(self, req: ir.Request, *, model: str, endpoint: Endpoint) -> HTTPCall:
        headers = merge_headers(self.auth_headers(endpoint), endpoint.extra_headers)
        if req.stream:
            headers["accept"] = "text/event-stream"
        body = openai_responses_client.encode_request(self.own_extras(req), model=self._model(model))
        return HTTPCall(f"{endpoint.api_base}/responses", headers, dumps(body))

    def passthrough_call(self, body: dict[str, Any], *, model: str, endpoint: Endpoint) -> HTTPCall:
        raise NotImplementedError("a Responses deployment is never on the fast path")

    def decode_chat(self, body: bytes, *, model: str) -> ir.Response:
        try:
            data = loads(body.strip())
        except Exception as exc:
            raise APIResponseValidationError(
                f"{self.name}: response is not JSON: {body[:200]!r}", provider=self.name, model=model
            ) from exc
        if not isinstance(data, dict):
            raise APIResponseValidationError(f"{self.name}: unexpected response {body[:200]!r}", provider=self.name)
        return openai_responses_client.decode_response(data)

    def stream_decoder(self, *, model: str) -> openai_responses_client.StreamDecoder:
        return openai_responses_client.StreamDecoder(provider=self.name, model=self._model(model))


_instance: OpenAIResponsesProvider | None = None


def responses_provider() -> OpenAIResponsesProvider:
    global _instance
    if _instance is None:
        _instance = OpenAIResponsesProvider()
    return _instance
