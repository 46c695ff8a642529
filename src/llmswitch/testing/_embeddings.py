"""Embedding routes of the fake upstream: OpenAI ``/v1/embeddings``, Gemini's ``embedContent`` pair and
Ollama's ``/api/embed``.

OpenAI's embeddings body is simple enough to read here; Gemini's is read and written by its dialect.

Vectors are a deterministic function of the input text (see :func:`embedding_vector`), so a test
can compare two calls, or two encodings, value for value.
"""

from __future__ import annotations

import base64
from typing import Any

from aiohttp import web

from llmswitch import ir
from llmswitch.dialects._json import invalid
from llmswitch.errors import APIStatusError
from llmswitch.testing._answers import Host, answer, error_response, json_response, reply_headers, text_response
from llmswitch.testing._faces import GEMINI, OLLAMA, OPENAI, DialectUnavailable
from llmswitch.testing._recorded import RecordedRequest
from llmswitch.testing._reply import embedding_vector, estimate_tokens, float32_bytes


def _openai_inputs(body: dict[str, Any]) -> list[str]:
    raw = body.get("input")
    if isinstance(raw, str):
        return [raw]
    if isinstance(raw, list) and raw:
        # token arrays (lists of ints) embed as their text form
        return [item if isinstance(item, str) else str(item) for item in raw]
    raise invalid("input", "must be a string or a non-empty list")


def _openai_options(body: Any) -> tuple[list[str], str, int | None]:
    if not isinstance(body, dict) or not isinstance(body.get("model"), str):
        raise invalid("model", "a model name (string) is required")
    fmt = body.get("encoding_format") or "float"
    if fmt not in ("float", "base64"):
        raise invalid("encoding_format", f"{fmt!r} is not one of 'float', 'base64'")
    dims = body.get("dimensions")
    if dims is not None and (not isinstance(dims, int) or isinstance(dims, bool) or dims < 1):
        raise invalid("dimensions", "must be a positive integer")
    return _openai_inputs(body), fmt, dims


async def openai(request: web.Request, host: Host, rec: RecordedRequest) -> web.StreamResponse:
    try:
        texts, fmt, dims = _openai_options(rec.json)
    except APIStatusError as exc:
        return error_response(OPENAI, exc, rec.number)
    body: dict[str, Any] = rec.json
    reply = await host.choose(rec)
    size = dims or reply.dims

    async def success() -> web.StreamResponse:
        data = []
        for i, text in enumerate(texts):
            vec = embedding_vector(text, size)
            emb: Any = base64.b64encode(float32_bytes(vec)).decode() if fmt == "base64" else vec
            data.append({"object": "embedding", "index": i, "embedding": emb})
        tokens = sum(max(1, estimate_tokens(t)) for t in texts)
        out = {
            "object": "list",
            "data": data,
            "model": reply.model or body["model"],
            "usage": {"prompt_tokens": tokens, "total_tokens": tokens},
        }
        return json_response(200, out, OPENAI, reply_headers(reply, OPENAI, rec.number))

    return await answer(request, host, OPENAI, reply, rec.number, success)


async def gemini(request: web.Request, host: Host, rec: RecordedRequest, *, batch: bool) -> web.StreamResponse:
    """``embedContent`` / ``batchEmbedContents``, read and written by the Gemini dialect."""
    try:
        req = GEMINI.decode_embedding_request(rec.json, model=rec.model or "")
    except APIStatusError as exc:
        return error_response(GEMINI, exc, rec.number)
    except DialectUnavailable as exc:
        return text_response(501, str(exc))
    reply = await host.choose(rec)
    size = req.dimensions or reply.dims

    async def success() -> web.StreamResponse:
        data = [ir.Embedding(index=i, vector=embedding_vector(t, size)) for i, t in enumerate(req.input)]
        tokens = sum(max(1, estimate_tokens(t)) for t in req.input)
        resp = ir.EmbeddingResponse(model=reply.model or req.model, data=data, usage=ir.Usage(input_tokens=tokens))
        body = GEMINI.encode_embedding_response(resp, batch=batch)
        return json_response(200, body, GEMINI, reply_headers(reply, GEMINI, rec.number))

    return await answer(request, host, GEMINI, reply, rec.number, success)


async def ollama(request: web.Request, host: Host, rec: RecordedRequest) -> web.StreamResponse:
    """Ollama's ``/api/embed``: ``{"model", "input": str | [str], "dimensions"?}`` -> ``{"embeddings"}``."""
    body = rec.json
    try:
        if not isinstance(body, dict) or not isinstance(body.get("model"), str):
            raise invalid("model", "model is required")
        texts = _openai_inputs(body)
        dims = body.get("dimensions")
        if dims is not None and (not isinstance(dims, int) or isinstance(dims, bool) or dims < 1):
            raise invalid("dimensions", "must be a positive integer")
    except APIStatusError as exc:
        return error_response(OLLAMA, exc, rec.number)
    reply = await host.choose(rec)
    size = dims or reply.dims

    async def success() -> web.StreamResponse:
        out = {
            "model": reply.model or body["model"],
            "embeddings": [embedding_vector(t, size) for t in texts],
            "prompt_eval_count": sum(max(1, estimate_tokens(t)) for t in texts),
        }
        return json_response(200, out, OLLAMA, reply_headers(reply, OLLAMA, rec.number))

    return await answer(request, host, OLLAMA, reply, rec.number, success)
