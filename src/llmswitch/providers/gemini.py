"""Google Gemini through AI Studio (the Gemini Developer API): ``gemini/<model>``.

``{api_base}/v1beta/models/{model}:generateContent``, ``:streamGenerateContent?alt=sse`` and
``:batchEmbedContents``, with the key in the ``x-goog-api-key`` header (never in the URL, where it
would end up in access logs). The key comes from ``api_key=``, ``GEMINI_API_KEY`` or
``GOOGLE_API_KEY``; the base from ``api_base=`` or ``GEMINI_API_BASE``. An ``api_base`` that already
ends in an API version (``…/v1beta``, ``…/v1``) is used as it is; ``api_version=`` picks another
version (``v1alpha``).

    >>> r = llmswitch.completion("gemini/gemini-2.5-flash", [{"role": "user", "content": "Hi"}])
"""

from __future__ import annotations

import re
from collections.abc import Mapping

import msgspec

from llmswitch import ir
from llmswitch.dialects import gemini
from llmswitch.dialects._json import dumps, loads
from llmswitch.dialects.gemini_stream import StreamDecoder
from llmswitch.errors import APIResponseValidationError, APIStatusError
from llmswitch.providers.base import Endpoint, HTTPCall, Provider, merge_headers
from llmswitch.providers.paths import path_segment

_VERSIONED = re.compile(r"/v\d+(?:alpha|beta)?\d*$")


class GeminiProvider(Provider):
    """``gemini/<model>``: Google AI Studio's Gemini API, or anything that speaks it through ``api_base``."""

    name = "gemini"
    dialect = "gemini"
    default_api_base = "https://generativelanguage.googleapis.com"
    api_key_env: tuple[str, ...] = ("GEMINI_API_KEY", "GOOGLE_API_KEY")
    api_base_env = ("GEMINI_API_BASE",)
    api_version = "v1beta"

    def headers(self, endpoint: Endpoint, *, stream: bool = False) -> dict[str, str]:
        h = {"content-type": "application/json", "accept": "text/event-stream" if stream else "application/json"}
        if endpoint.api_key:
            h["x-goog-api-key"] = endpoint.api_key
        return merge_headers(h, endpoint.extra_headers)

    def url(self, endpoint: Endpoint, model: str, method: str) -> str:
        """``{base}/{version}/models/{model}:{method}``; a ``models/…`` or ``tunedModels/…`` name is kept.

        The name is one path segment, percent-encoded (see :mod:`llmswitch.providers.paths`)."""
        base = endpoint.api_base
        if not _VERSIONED.search(base):
            base = f"{base}/{endpoint.api_version or self.api_version}"
        collection, slash, name = model.partition("/")
        if not (slash and collection in ("models", "tunedModels")):
            collection, name = "models", model
        return f"{base}/{collection}/{path_segment(name, provider=self.name, what='model', whole=model)}:{method}"

    def chat_call(self, req: ir.Request, *, model: str, endpoint: Endpoint) -> HTTPCall:
        method = "streamGenerateContent?alt=sse" if req.stream else "generateContent"
        body = gemini.encode_request(self.own_extras(req), model=model)
        return HTTPCall(self.url(endpoint, model, method), self.headers(endpoint, stream=req.stream), dumps(body))

    def decode_chat(self, body: bytes, *, model: str) -> ir.Response:
        try:
            data = loads(body.strip())
        except msgspec.DecodeError as exc:
            raise APIResponseValidationError(
                f"{self.name}: response is not JSON: {body[:200]!r}", provider=self.name, model=model
            ) from exc
        if isinstance(data, list) and len(data) == 1:
            data = data[0]  # an error (or a one-chunk answer) wrapped the way Gemini's array stream does
        if not isinstance(data, dict):
            raise APIResponseValidationError(
                f"{self.name}: unexpected response {body[:200]!r}", provider=self.name, model=model
            )
        if data.get("error") and not data.get("candidates"):
            raise gemini.decode_error(200, body, provider=self.name, model=model)
        return gemini.decode_response(data)

    def stream_decoder(self, *, model: str) -> StreamDecoder:
        return StreamDecoder(provider=self.name, model=model)

    def decode_error(self, status: int, headers: Mapping[str, str], body: bytes, *, model: str) -> APIStatusError:
        return gemini.decode_error(status, body, headers, provider=self.name, model=model)

    def embedding_call(self, req: ir.EmbeddingRequest, *, model: str, endpoint: Endpoint) -> HTTPCall:
        body = gemini.encode_embedding_request(req, model=model)
        return HTTPCall(self.url(endpoint, model, "batchEmbedContents"), self.headers(endpoint), dumps(body))

    def decode_embedding(self, body: bytes, *, model: str) -> ir.EmbeddingResponse:
        try:
            data = loads(body.strip())
        except msgspec.DecodeError as exc:
            raise APIResponseValidationError(
                f"{self.name}: response is not JSON: {body[:200]!r}", provider=self.name, model=model
            ) from exc
        if not isinstance(data, dict):
            raise APIResponseValidationError(f"{self.name}: unexpected response {body[:200]!r}", provider=self.name)
        return gemini.decode_embedding_response(data, model=model)
