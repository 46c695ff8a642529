"""How many input tokens a request is: the provider's own count where it has an API, else an estimate.

Anthropic (``/v1/messages/count_tokens``) and Gemini (``:countTokens``) count for free and exactly;
for every other provider the count is :func:`estimate_tokens`, a local estimate (no tokenizer ships
with llmswitch: OpenAI's needs files downloaded at run time), and says so in ``source``.

    >>> req = ir.Request(model="m", messages=[ir.Message(role="user", content=[ir.TextPart("Hello there!")])])
    >>> estimate_tokens(req)
    9
"""

from __future__ import annotations

import math
from typing import Literal, NamedTuple

from llmswitch import ir, transport
from llmswitch.dialects import anthropic_count_tokens, gemini_count_tokens
from llmswitch.dialects._json import dumps, loads_lenient
from llmswitch.errors import APIResponseValidationError
from llmswitch.providers.base import Endpoint, HTTPCall, Provider

Source = Literal["anthropic_api", "gemini_api", "estimate"]

# OpenAI's documented chat overhead: each message costs about 3 tokens beyond its content, and every
# answer is primed with 3 more; an image at low detail is 85 tokens (a flat allowance for any media)
_PER_MESSAGE = 3
_PRIMING = 3
_PER_MEDIA = 85
_CHARS_PER_TOKEN = 4


class TokenCount(NamedTuple):
    total: int
    source: Source


def estimate_tokens(req: ir.Request) -> int:
    """About four characters a token for text, tool calls and tool schemas, plus OpenAI's per-message
    overhead; an image or file counts 85. An estimate: real tokenizers differ by model and language."""
    chars = 0
    media = 0
    for m in req.messages:
        for p in m.content:
            if isinstance(p, ir.TextPart | ir.ReasoningPart | ir.ToolResultPart):
                chars += len(p.text)
                media += sum(1 for c in getattr(p, "content", ()) if not isinstance(c, ir.TextPart))
            elif isinstance(p, ir.ToolCallPart):
                chars += len(p.name) + len(p.arguments)
            elif isinstance(p, ir.ImagePart | ir.FilePart):
                media += 1
    for t in req.tools or ():
        chars += len(t.name) + len(t.description or "") + len(dumps(t.parameters or {}))
    text_tokens = math.ceil(chars / _CHARS_PER_TOKEN)
    return text_tokens + _PER_MESSAGE * len(req.messages) + _PRIMING + _PER_MEDIA * media


def api_of(provider: Provider) -> Source | None:
    """The token-counting API ``provider`` speaks, or None (its count is estimated)."""
    if provider.dialect == "anthropic_messages" and hasattr(provider, "chat_url") and hasattr(provider, "headers"):
        return "anthropic_api"
    if provider.dialect == "gemini" and hasattr(provider, "url") and hasattr(provider, "headers"):
        return "gemini_api"
    return None


def count_call(
    provider: Provider, req: ir.Request, *, model: str, endpoint: Endpoint
) -> tuple[HTTPCall, Source] | None:
    """The provider's own token-counting call for ``req``, or None when it has no such API."""
    source = api_of(provider)
    if source == "anthropic_api" and hasattr(provider, "chat_url") and hasattr(provider, "headers"):
        body = anthropic_count_tokens.encode_request(provider.own_extras(req), model=model)
        headers = provider.headers(endpoint, [])
        return HTTPCall(f"{provider.chat_url(endpoint)}/count_tokens", headers, dumps(body)), "anthropic_api"
    if source == "gemini_api" and hasattr(provider, "url") and hasattr(provider, "headers"):
        body = gemini_count_tokens.encode_request(provider.own_extras(req), model=model)
        return HTTPCall(
            provider.url(endpoint, model, "countTokens"), provider.headers(endpoint), dumps(body)
        ), "gemini_api"
    return None


async def count_tokens(
    provider: Provider, req: ir.Request, *, model: str, endpoint: Endpoint | None, timeout: float | None = None
) -> TokenCount:
    """Count ``req``'s input tokens with ``provider``'s API (one attempt), or estimate them.

    ``endpoint`` None (no credentials to call with) always estimates. A provider's error is raised as
    the provider's error, never turned into an estimate that would look like a real count.
    """
    found = count_call(provider, req, model=model, endpoint=endpoint) if endpoint is not None else None
    if found is None:
        return TokenCount(estimate_tokens(req), "estimate")
    call, source = found
    raw = await transport.send(call, timeout=timeout, provider=provider.name)
    if raw.status >= 400:
        raise provider.decode_error(raw.status, raw.headers, raw.body, model=model)
    reader = anthropic_count_tokens if source == "anthropic_api" else gemini_count_tokens
    try:
        return TokenCount(reader.decode_response(loads_lenient(raw.body)), source)
    except ValueError as exc:
        raise APIResponseValidationError(f"{provider.name}: {exc}", provider=provider.name, model=model) from exc
