"""The provider's prompt caching: cache breakpoints put where a prefix is stable, never content changed.

Two deployment settings (``litellm_params``), both read here and never sent to the provider:

- ``cache_control_injection_points`` (LiteLLM's): ``[{location: message, role: system}, {location: message,
  index: -1}, {location: tool_config}]``, each with an optional ``control`` (default ``{type: ephemeral}``).
- ``prompt_cache: auto`` (llmswitch's): a breakpoint at the end of the tools, of the system prompt, and of the
  conversation so far, each only where the prefix up to it is long enough for the provider to cache
  (Anthropic: 1024 tokens, 2048 for Haiku models; estimated at four characters a token).

Markers go on the last block of their message, as Anthropic requires, at most four per request counting the
client's own, and never onto a message the client already marked. Only providers that take markers get them
(the Anthropic Messages dialect); OpenAI, DeepSeek and others cache prefixes by themselves, and nothing is
reordered or rewritten for any provider, so a request's bytes before its new turn stay as they were.

    >>> req = ir.Request(model="m", messages=[ir.Message("system", [ir.TextPart("rules")]), ir.Message("user", [ir.TextPart("hi")])])
    >>> out = apply_prompt_cache(req, {"cache_control_injection_points": [{"location": "message", "role": "system"}]}, "anthropic_messages", "claude-sonnet-4")
    >>> out.messages[0].content[0].cache_control, req.messages[0].content[0].cache_control
    ({'type': 'ephemeral'}, None)
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import msgspec

from llmswitch import ir

SETTINGS = frozenset({"cache_control_injection_points", "prompt_cache"})
MARKER_DIALECTS = frozenset({"anthropic_messages"})
MAX_BREAKPOINTS = 4
EPHEMERAL: dict[str, Any] = {"type": "ephemeral"}
CHARS_PER_TOKEN = 4


def without_settings(params: Mapping[str, Any]) -> dict[str, Any]:
    """A deployment's params less the prompt-cache settings (which are the gateway's)."""
    return {k: v for k, v in params.items() if k not in SETTINGS}


def min_tokens(model: str) -> int:
    """The shortest prefix the provider caches (Anthropic's documented minimum for the model)."""
    return 2048 if "haiku" in model.lower() else 1024


def apply_prompt_cache(req: ir.Request, params: Mapping[str, Any], dialect: str, model: str) -> ir.Request:
    """``req`` with the breakpoints ``params`` ask for (a copy; ``req`` is left as it was)."""
    if dialect not in MARKER_DIALECTS:
        return req
    points = params.get("cache_control_injection_points")
    auto = params.get("prompt_cache") == "auto"
    if not points and not auto:
        return req
    out = msgspec.structs.replace(
        req,
        messages=[msgspec.structs.replace(m, content=list(m.content)) for m in req.messages],
        tools=[msgspec.structs.replace(t) for t in req.tools] if req.tools else req.tools,
    )
    budget = MAX_BREAKPOINTS - _count(out)
    if isinstance(points, list):
        for point in points:
            if budget <= 0:
                break
            if isinstance(point, Mapping):
                budget -= _inject(out, point, budget)
    if auto and budget > 0:
        _auto(out, budget, min_tokens(model))
    return out


def _count(req: ir.Request) -> int:
    n = sum(1 for t in req.tools or () if t.cache_control is not None)
    for m in req.messages:
        n += sum(1 for p in m.content if getattr(p, "cache_control", None) is not None)
    return n


def _control(point: Mapping[str, Any]) -> dict[str, Any]:
    control = point.get("control")
    return dict(control) if isinstance(control, Mapping) and control.get("type") else dict(EPHEMERAL)


def _inject(req: ir.Request, point: Mapping[str, Any], budget: int) -> int:
    """Apply one injection point; the breakpoints it added."""
    location = point.get("location")
    control = _control(point)
    if location in ("tool_config", "tools"):
        return 1 if _mark_tools(req, control) else 0
    if location != "message":
        return 0
    added = 0
    for i in _targets(req, point):
        if added >= budget:
            break
        if _mark_message(req, i, control):
            added += 1
    return added


def _targets(req: ir.Request, point: Mapping[str, Any]) -> list[int]:
    index = point.get("index")
    if isinstance(index, str):
        try:
            index = int(index)
        except ValueError:
            index = None
    n = len(req.messages)
    if isinstance(index, int) and not isinstance(index, bool):
        i = index + n if index < 0 else index
        return [i] if 0 <= i < n else []
    role = point.get("role")
    if isinstance(role, str):
        return [i for i, m in enumerate(req.messages) if m.role == role]
    return []


def _markable(part: Any) -> bool:
    return hasattr(part, "cache_control")


def _mark_message(req: ir.Request, i: int, control: dict[str, Any]) -> bool:
    msg = req.messages[i]
    if not msg.content or any(getattr(p, "cache_control", None) is not None for p in msg.content):
        return False  # the client's own marker stands
    last = msg.content[-1]
    if not _markable(last):
        return False
    msg.content[-1] = msgspec.structs.replace(last, cache_control=control)
    return True


def _mark_tools(req: ir.Request, control: dict[str, Any]) -> bool:
    tools = req.tools
    if not tools or any(t.cache_control is not None for t in tools):
        return False
    tools[-1] = msgspec.structs.replace(tools[-1], cache_control=control)
    return True


def _size(value: Any) -> int:
    return len(msgspec.json.encode(value))


def _auto(req: ir.Request, budget: int, minimum: int) -> None:
    """Breakpoints at the end of the tools, of the system prompt and of the conversation, where the prefix
    up to each (tools, then system, then messages: the order the provider caches in) is long enough."""
    least = minimum * CHARS_PER_TOKEN
    prefix = _size(req.tools) if req.tools else 0
    if req.tools and prefix >= least and budget > 0 and _mark_tools(req, dict(EPHEMERAL)):
        budget -= 1
    last_system = max((i for i, m in enumerate(req.messages) if m.role in ("system", "developer")), default=None)
    for i, m in enumerate(req.messages):
        prefix += _size(m.content)
        if i == last_system and prefix >= least and budget > 0 and _mark_message(req, i, dict(EPHEMERAL)):
            budget -= 1
    end = len(req.messages) - 1
    if end >= 0 and end != last_system and prefix >= least and budget > 0:
        _mark_message(req, end, dict(EPHEMERAL))
