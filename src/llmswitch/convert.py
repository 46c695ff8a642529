"""IR results -> the SDK's OpenAI-shaped result objects (``results``)."""

from __future__ import annotations

from typing import Any

import msgspec

from llmswitch import ir, results
from llmswitch.dialects import openai_chat
from llmswitch.dialects.openai_chat import map_usage_out
from llmswitch.dialects.openai_tools import functions_response


def model_response(resp: ir.Response, *, legacy_functions: bool | None = None) -> results.ModelResponse:
    body = openai_chat.encode_response(resp)
    return msgspec.convert(functions_response(body) if legacy_functions else body, results.ModelResponse)


def usage(u: ir.Usage) -> results.Usage:
    return msgspec.convert(map_usage_out(u), results.Usage)


def stream_chunk(chunk: dict[str, Any]) -> results.ModelResponseStream:
    return msgspec.convert(chunk, results.ModelResponseStream)


def embedding_response(resp: ir.EmbeddingResponse) -> results.EmbeddingResponse:
    tokens = resp.usage.input_tokens if resp.usage else 0
    return results.EmbeddingResponse(
        model=resp.model,
        data=[results.EmbeddingData(index=e.index, embedding=e.vector) for e in resp.data],
        usage=results.EmbeddingUsage(prompt_tokens=tokens, total_tokens=tokens),
    )
