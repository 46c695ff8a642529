"""Anthropic's ``POST /v1/messages/count_tokens``, both directions, pure.

The body is a Messages request without what only generation needs (``max_tokens``, ``stream``,
sampling settings): the spec's ``CountMessageTokensParams`` takes ``model``, ``messages``, ``system``,
``tools``, ``tool_choice``, ``thinking``, ``output_config`` and ``cache_control``, nothing else. The
answer is ``{"input_tokens": N}``.

    >>> req = ir.Request(model="m", messages=[ir.Message(role="user", content=[ir.TextPart("Hi")])])
    >>> encode_request(req, model="claude-sonnet-4-5")
    {'model': 'claude-sonnet-4-5', 'messages': [{'role': 'user', 'content': 'Hi'}]}
"""

from __future__ import annotations

from typing import Any

from llmswitch import ir
from llmswitch.dialects import anthropic_messages
from llmswitch.dialects._json import invalid

# CountMessageTokensParams (additionalProperties: false)
COUNT_KEYS = frozenset(
    {"model", "messages", "system", "tools", "tool_choice", "thinking", "output_config", "cache_control"}
)


def encode_request(req: ir.Request, *, model: str) -> dict[str, Any]:
    """The count_tokens body for ``req``: its Messages body, less what the endpoint does not take."""
    body = anthropic_messages.encode_request(req, model=model)
    return {k: v for k, v in body.items() if k in COUNT_KEYS}


def decode_response(body: Any) -> int:
    n = body.get("input_tokens") if isinstance(body, dict) else None
    if not isinstance(n, int):
        raise ValueError(f"no input_tokens in {str(body)[:200]!r}")
    return n


# ---------------------------------------------------------------- server side


def decode_request(body: Any) -> ir.Request:
    """A client's count_tokens body as IR (a 400 naming the field for what the endpoint does not take)."""
    if not isinstance(body, dict):
        raise invalid("body", "the request body must be a JSON object")
    unknown = sorted(set(body) - COUNT_KEYS)
    if unknown:
        raise invalid(unknown[0], "Extra inputs are not permitted")
    # the Messages decoder checks everything else; max_tokens is a generation setting it requires
    return anthropic_messages.decode_request({**body, "max_tokens": 1})


def encode_response(input_tokens: int) -> dict[str, Any]:
    return {"input_tokens": input_tokens}
