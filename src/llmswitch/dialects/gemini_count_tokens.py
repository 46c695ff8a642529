"""Gemini's ``models/{model}:countTokens``, both directions, pure.

Sent as ``{"generateContentRequest": {...}}`` so the system instruction and tools are counted too
(a bare ``contents`` body counts the turns only). Read: ``totalTokens`` (and
``cachedContentTokenCount``). A client may send either form.

    >>> req = ir.Request(model="m", messages=[ir.Message(role="user", content=[ir.TextPart("Hi")])])
    >>> encode_request(req, model="gemini-2.5-flash")
    {'generateContentRequest': {'model': 'models/gemini-2.5-flash', 'contents': [{'role': 'user', 'parts': [{'text': 'Hi'}]}]}}
"""

from __future__ import annotations

from typing import Any

from llmswitch import ir
from llmswitch.dialects import gemini
from llmswitch.dialects._json import invalid

# the members of GenerateContentRequest that countTokens reads
_COUNTED = ("contents", "systemInstruction", "tools", "toolConfig", "generationConfig", "cachedContent")


def encode_request(req: ir.Request, *, model: str) -> dict[str, Any]:
    body = gemini.encode_request(req, model=model)
    name = model if model.startswith(("models/", "tunedModels/")) else f"models/{model}"
    inner = {"model": name, **{k: v for k, v in body.items() if k in _COUNTED}}
    return {"generateContentRequest": inner}


def decode_response(body: Any) -> int:
    # proto3 JSON leaves a zero out: an empty prompt answers {}
    n = body.get("totalTokens", 0) if isinstance(body, dict) else None
    if not isinstance(n, int):
        raise ValueError(f"no totalTokens in {str(body)[:200]!r}")
    return n


# ---------------------------------------------------------------- server side


def decode_request(body: Any, *, model: str) -> ir.Request:
    """``{"contents": [...]}`` or ``{"generateContentRequest": {...}}`` as IR."""
    if not isinstance(body, dict):
        raise invalid("body", "the request body must be a JSON object")
    inner = body.get("generateContentRequest")
    if inner is not None:
        if not isinstance(inner, dict):
            raise invalid("generateContentRequest", "must be an object")
        inner = {k: v for k, v in inner.items() if k != "model"}
    else:
        inner = {"contents": body.get("contents") or []}
    return gemini.decode_request(inner, model=model)


def encode_response(total_tokens: int) -> dict[str, Any]:
    return {"totalTokens": total_tokens}
