"""Token counting through the gateway: Anthropic's ``POST /v1/messages/count_tokens``, Gemini's
``models/{model}:countTokens`` and LiteLLM's ``POST /utils/token_counter``.

The model group is resolved as for chat and its first deployment that has an endpoint counts: with the
provider's own API when it has one (Anthropic, Gemini; exact and free), else a local estimate
(:func:`llmswitch.count_tokens.estimate_tokens`). So an Anthropic client can count for an OpenAI
deployment, and the other way round; the answer is always in the caller's dialect.

Like every route that may call a provider, a count is authenticated, checked against the key's models,
admitted against its limits (it takes one request of the rpm; its estimated tokens are reserved and
then settled to zero, since a count uses no model tokens) and journaled as a request with no tokens
and no cost. One attempt, no failover: a count is cheap to ask again.
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Any

from llmswitch import ir
from llmswitch.count_tokens import TokenCount, count_tokens
from llmswitch.dialects import anthropic_count_tokens, gemini_count_tokens, openai_chat
from llmswitch.dialects._json import dumps, invalid
from llmswitch.errors import NotFoundError
from llmswitch.router.outcomes import Route
from llmswitch.server import http
from llmswitch.server.chat import parse_json

if TYPE_CHECKING:
    from llmswitch.server.app import Gateway


async def handle_anthropic(gw: Gateway, request: http.Request, send: http.Send) -> None:
    found = await _count(gw, request, lambda body: anthropic_count_tokens.decode_request(body))
    await http.send_bytes(send, 200, dumps(anthropic_count_tokens.encode_response(found.total)))


async def handle_gemini(gw: Gateway, request: http.Request, send: http.Send) -> None:
    model = str(request.state["model"])
    found = await _count(gw, request, lambda body: gemini_count_tokens.decode_request(body, model=model))
    await http.send_bytes(send, 200, dumps(gemini_count_tokens.encode_response(found.total)))


async def handle_litellm(gw: Gateway, request: http.Request, send: http.Send) -> None:
    """LiteLLM's proxy route: ``{"model", "messages"}`` or ``{"model", "prompt"}`` -> ``total_tokens``."""
    found = await _count(gw, request, _litellm_request)
    out = {
        "total_tokens": found.total,
        "request_model": request.state.get("model"),
        "model_used": request.state.get("model_used"),
        "tokenizer_type": found.source,
    }
    await http.send_bytes(send, 200, dumps(out))


def _litellm_request(body: Any) -> ir.Request:
    if not isinstance(body, dict):
        raise invalid("body", "the request body must be a JSON object")
    messages = body.get("messages")
    if messages is None:
        prompt = body.get("prompt")
        if not isinstance(prompt, str):
            raise invalid("messages", "send messages (a list) or prompt (a string)")
        messages = [{"role": "user", "content": prompt}]
    return openai_chat.decode_request({"model": body.get("model"), "messages": messages})


async def _count(gw: Gateway, request: http.Request, decode: Any) -> TokenCount:
    principal = gw.keys.authenticate(gw.key_of(request))
    request.state["principal"] = principal
    req: ir.Request = decode(parse_json(request.body))
    request.state["model"] = req.model
    gw.authorize_model(principal, req.model)
    targets = [t for t in gw.router.deployments(req.model) if t.endpoint is not None]
    if not targets:
        raise NotFoundError(
            f"model {req.model!r} is not served here; available: {', '.join(gw.router.model_names()) or 'none'}",
            status_code=404,
            provider="llmswitch",
            error_type="not_found_error",
            param="model",
        )
    target = targets[0]
    route = Route(target, target.group, 1, req.model)
    request.state["deployment"] = target.id
    request.state["model_used"] = target.model
    acc = gw.accounting
    started = time.perf_counter()
    reservation = await acc.admit(principal, req, request)
    try:
        found = await count_tokens(
            target.provider, req, model=target.model, endpoint=target.endpoint, timeout=gw.request_timeout
        )
    except BaseException as exc:
        status = getattr(exc, "status_code", None) or 500
        await acc.finish(request, reservation, status=status, route=route, error=exc, started=started)
        raise
    await acc.finish(request, reservation, status=200, route=route, usage=ir.Usage(), started=started)
    return found
