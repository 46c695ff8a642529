"""The provider's prompt caching: LiteLLM's cache_control_injection_points and prompt_cache: auto, as pure
functions of the IR (the gateway's byte-stability is tested in tests/server/test_cache_prompt.py)."""

from __future__ import annotations

from typing import Any

from llmswitch import ir
from llmswitch.cache.prompt import apply_prompt_cache
from llmswitch.dialects import openai_chat

LONG = "policy " * 1000  # ~7000 characters: past Anthropic's 1024-token minimum at four characters a token


def request(*messages: tuple[str, str], tools: int = 0, **extra: Any) -> ir.Request:
    body: dict[str, Any] = {"model": "g", "messages": [{"role": r, "content": c} for r, c in messages], **extra}
    if tools:
        body["tools"] = [
            {"type": "function", "function": {"name": f"t{i}", "description": LONG, "parameters": {"type": "object"}}}
            for i in range(tools)
        ]
    return openai_chat.decode_request(body)


def marks(req: ir.Request) -> list[tuple[int, int]]:
    """(message, part) of every marker, tools as message -1."""
    out = [(-1, i) for i, t in enumerate(req.tools or ()) if t.cache_control is not None]
    for i, m in enumerate(req.messages):
        out += [(i, j) for j, p in enumerate(m.content) if getattr(p, "cache_control", None) is not None]
    return out


def apply(req: ir.Request, dialect: str = "anthropic_messages", **params: Any) -> ir.Request:
    return apply_prompt_cache(req, params, dialect, "claude-sonnet-4-5")


def test_injection_points_by_role_and_index() -> None:
    req = request(("system", "rules"), ("user", "a"), ("assistant", "b"), ("user", "c"))
    out = apply(
        req,
        cache_control_injection_points=[
            {"location": "message", "role": "system"},
            {"location": "message", "index": "-1"},
        ],
    )
    assert marks(out) == [(0, 0), (3, 0)]
    assert marks(req) == []  # the caller's request is left as it was
    control = {"type": "ephemeral", "ttl": "1h"}
    out = apply(req, cache_control_injection_points=[{"location": "message", "index": 1, "control": control}])
    assert out.messages[1].content[0].cache_control == control  # type: ignore[union-attr]


def test_out_of_range_and_unknown_points_are_ignored() -> None:
    req = request(("user", "a"))
    points = [
        {"location": "message", "index": 9},
        {"location": "message", "index": "x"},
        {"location": "nowhere"},
        "bad",
    ]
    assert marks(apply(req, cache_control_injection_points=points)) == []


def test_never_more_than_four_and_the_clients_own_markers_stand() -> None:
    body = {
        "model": "g",
        "messages": [
            {
                "role": "user",
                "content": [{"type": "text", "text": "x", "cache_control": {"type": "ephemeral", "ttl": "1h"}}],
            }
        ]
        + [{"role": "user", "content": f"m{i}"} for i in range(8)],
    }
    req = openai_chat.decode_request(body)
    out = apply(req, cache_control_injection_points=[{"location": "message", "role": "user"}])
    assert len(marks(out)) == 4
    assert out.messages[0].content[0].cache_control == {"type": "ephemeral", "ttl": "1h"}  # type: ignore[union-attr]


def test_auto_marks_tools_system_and_conversation_only_past_the_minimum() -> None:
    long_req = request(("system", LONG), ("user", "a"), ("assistant", "b"), ("user", "c"), tools=2)
    assert marks(apply(long_req, prompt_cache="auto")) == [(-1, 1), (0, 0), (3, 0)]
    short = request(("system", "be brief"), ("user", "hi"))
    assert marks(apply(short, prompt_cache="auto")) == []


def test_providers_without_markers_get_nothing() -> None:
    req = request(("system", LONG), ("user", "a"))
    for dialect in ("openai_chat", "gemini"):
        out = apply(
            req, dialect, prompt_cache="auto", cache_control_injection_points=[{"location": "message", "index": 0}]
        )
        assert out is req
