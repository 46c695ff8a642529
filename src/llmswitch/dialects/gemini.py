"""Google Gemini ``generateContent`` (AI Studio; Vertex bodies are the same), both directions, pure.

Client side (llmswitch calling Gemini): ``encode_request``, ``decode_response``, ``decode_error``,
``encode_embedding_request`` / ``decode_embedding_response``, and ``StreamDecoder`` (in
``gemini_stream``; reads ``alt=sse`` and the bare JSON-array stream).
Server side (a google-genai client calling the gateway): ``decode_request``, ``encode_response``,
``StreamEncoder``, ``encode_error``, ``decode_embedding_request`` / ``encode_embedding_response``.
Every public name is importable from here; the work lives in siblings: request bodies in
``gemini_request``, responses, usage and finish reasons in ``gemini_response``, streams in
``gemini_stream``, contents and parts in ``gemini_messages``, error envelopes in ``gemini_errors``,
JSON Schema in ``gemini_schema``. Embeddings are below.

    >>> body = encode_request(ir.Request(model="m", messages=[ir.Message(role="user",
    ...     content=[ir.TextPart("Hi")])]), model="gemini-2.5-flash")
    >>> body
    {'contents': [{'role': 'user', 'parts': [{'text': 'Hi'}]}]}

How the IR maps:
- ``contents`` take roles ``user`` / ``model`` only: tool results are ``functionResponse`` parts of a
  user turn, consecutive turns of one role merge, system and developer messages become
  ``systemInstruction``.
- Gemini sends no tool-call ids. Decoding makes ``call_<24 hex>`` from a hash of the response id,
  candidate, call position, name and arguments: the same for the same bytes, streamed or not, and
  unique within a response. Those are never sent to Gemini; ids Gemini issued (``functionCall.id``) or
  another provider made go back on the call and on its ``functionResponse``. A ``functionResponse``
  needs the function *name*: it comes from the result or from the matching earlier tool call.
- ``thoughtSignature`` survives every round trip: on a ``functionCall`` part it is
  ``ToolCallPart.provider_specific["thought_signature"]``; on a thought part, the ``ReasoningPart``'s
  ``signature``; on a visible text part, a text-less ``ReasoningPart`` just before the text, which
  re-attaches to that text when encoding.
- Response parts with no IR counterpart (``executableCode``, ``codeExecutionResult``, generated
  ``inlineData`` …) are ``ProviderPart(provider="gemini", block=part)``; candidate metadata
  (``groundingMetadata``, ``urlContextMetadata``, ``citationMetadata``, ``safetyRatings`` …) is kept in
  ``Choice.provider_specific``.
- Thinking: ``thinking_budget`` is sent as ``thinkingBudget``; ``reasoning_effort`` as the budget in
  :data:`THINKING_BUDGETS` (``none`` turns thinking off), or as ``thinkingLevel`` for Gemini 3 models,
  which are documented to take levels. ``includeThoughts`` is set whenever thinking is on.
- Usage in normal form: prompt = ``promptTokenCount`` (it already contains
  ``cachedContentTokenCount``), completion = ``candidatesTokenCount + thoughtsTokenCount``.
- Finish reasons: :data:`gemini_response._FINISH_REASON_MAP`. ``OTHER`` counts as ``content_filter`` (Gemini uses it for
  blocks without a named category); ``MALFORMED_FUNCTION_CALL`` and the other "the model produced
  something unusable" reasons are ``error``; a prompt blocked before any candidate
  (``promptFeedback.blockReason``) is one ``content_filter`` choice with no content.
"""

from __future__ import annotations

from typing import Any

from llmswitch import ir
from llmswitch.dialects._json import invalid
from llmswitch.dialects.gemini_errors import decode_error, encode_error
from llmswitch.dialects.gemini_messages import get
from llmswitch.dialects.gemini_request import THINKING_BUDGETS, decode_request, encode_request
from llmswitch.dialects.gemini_response import (
    decode_response,
    encode_response,
    finish_reason_in,
    finish_reason_out,
    logprobs_in,
    logprobs_out,
    map_usage_in,
    map_usage_out,
)
from llmswitch.dialects.gemini_stream import StreamDecoder, StreamEncoder

__all__ = [
    "THINKING_BUDGETS",
    "StreamDecoder",
    "StreamEncoder",
    "decode_embedding_request",
    "decode_embedding_response",
    "decode_error",
    "decode_request",
    "decode_response",
    "encode_embedding_request",
    "encode_embedding_response",
    "encode_error",
    "encode_request",
    "encode_response",
    "finish_reason_in",
    "finish_reason_out",
    "logprobs_in",
    "logprobs_out",
    "map_usage_in",
    "map_usage_out",
]


# ---------------------------------------------------------------- embeddings (batchEmbedContents / embedContent)


def encode_embedding_request(req: ir.EmbeddingRequest, *, model: str, batch: bool = True) -> dict[str, Any]:
    """The ``batchEmbedContents`` body (or, with ``batch=False``, ``embedContent`` for one input)."""
    name = model if model.startswith(("models/", "tunedModels/")) else f"models/{model}"
    items = []
    for text in req.input:
        item: dict[str, Any] = {"model": name, "content": {"parts": [{"text": text}]}}
        if req.dimensions is not None:
            item["outputDimensionality"] = req.dimensions
        if req.extra:
            item.update(req.extra)  # taskType, title …
        items.append(item)
    return {"requests": items} if batch else items[0]


def decode_embedding_response(body: dict[str, Any], *, model: str) -> ir.EmbeddingResponse:
    """``{"embeddings": [{"values"}]}`` (batch) or ``{"embedding": {"values"}}`` as IR."""
    raw = body.get("embeddings")
    if raw is None and isinstance(body.get("embedding"), dict):
        raw = [body["embedding"]]
    data = [ir.Embedding(index=i, vector=list(e.get("values") or [])) for i, e in enumerate(raw or ())]
    um = body.get("usageMetadata") or {}
    tokens = int(um.get("promptTokenCount") or um.get("totalTokenCount") or 0)
    return ir.EmbeddingResponse(model=model, data=data, usage=ir.Usage(input_tokens=tokens))


def decode_embedding_request(body: dict[str, Any], *, model: str) -> ir.EmbeddingRequest:
    """A ``batchEmbedContents`` or ``embedContent`` body as IR (texts only), naming bad fields."""
    if not isinstance(body, dict):
        raise invalid("body", "the request body must be a JSON object")
    items = body.get("requests") if "requests" in body else [body]
    if not isinstance(items, list) or not items:
        raise invalid("requests", "a non-empty list of requests is required")
    texts: list[str] = []
    dims: int | None = None
    for i, item in enumerate(items):
        where = f"requests[{i}]" if "requests" in body else "content"
        parts = (item.get("content") or {}).get("parts") if isinstance(item, dict) else None
        if not isinstance(parts, list) or not all(
            isinstance(p, dict) and isinstance(p.get("text"), str) for p in parts
        ):
            raise invalid(f"{where}.content.parts", "must be a list of text parts")
        texts.append("".join(p["text"] for p in parts))
        d = get(item, "outputDimensionality")
        if d is not None:
            if isinstance(d, bool) or not isinstance(d, int) or d < 1:
                raise invalid(f"{where}.outputDimensionality", "must be a positive integer")
            dims = d
    return ir.EmbeddingRequest(model=model, input=texts, dimensions=dims)


def encode_embedding_response(resp: ir.EmbeddingResponse, *, batch: bool = True) -> dict[str, Any]:
    """IR embeddings as ``batchEmbedContents`` (or ``embedContent``) JSON."""
    vectors = [{"values": e.vector} for e in sorted(resp.data, key=lambda e: e.index)]
    if batch:
        return {"embeddings": vectors}
    return {"embedding": vectors[0] if vectors else {"values": []}}
