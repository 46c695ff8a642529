"""Prompt caching through the gateway: breakpoints reach Anthropic where configured, the settings never reach
any provider, and what a provider caches on (the prefix before a conversation's new turn) is byte-stable."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest
from gateway_harness import ServedGateway, model_list

from llmswitch.testing import FakeUpstream

LONG = "Follow the policy. " * 400


@pytest.fixture(scope="module")
def pgw(upstream: FakeUpstream) -> Iterator[ServedGateway]:
    extra = f"""  - model_name: claude-auto
    litellm_params:
      model: anthropic/claude-sonnet-4-20250514
      api_base: "{upstream.anthropic_base}"
      api_key: sk-up-a
      prompt_cache: auto
  - model_name: claude-points
    litellm_params:
      model: anthropic/claude-sonnet-4-20250514
      api_base: "{upstream.anthropic_base}"
      api_key: sk-up-a
      cache_control_injection_points:
        - location: message
          role: system
  - model_name: openai-points
    litellm_params:
      model: openai/gpt-4o-mini
      api_base: "{upstream.openai_base}"
      api_key: sk-up-o
      prompt_cache: auto
      cache_control_injection_points:
        - location: message
          role: system
"""
    with ServedGateway(model_list(upstream) + extra) as served:
        yield served


TOOLS = [
    {"type": "function", "function": {"name": "lookup", "description": LONG, "parameters": {"type": "object"}}},
]


def turn(n: int) -> dict[str, Any]:
    """The OpenAI body of a conversation's n-th turn (each turn extends the one before it)."""
    messages: list[dict[str, Any]] = [{"role": "system", "content": LONG}]
    for i in range(n):
        messages.append({"role": "user", "content": f"question {i}"})
        if i < n - 1:
            messages.append({"role": "assistant", "content": f"answer {i}"})
    return {"model": "", "messages": messages, "tools": TOOLS, "max_tokens": 32}


def upstream_body(gw: ServedGateway, up: FakeUpstream, group: str, body: dict[str, Any]) -> tuple[bytes, Any]:
    up.reset()
    r = gw.call("POST", "/v1/chat/completions", dict(body, model=group))
    assert r.status == 200, r.body
    (rec,) = up.requests
    return rec.body, rec.json


def strip_markers(value: Any) -> Any:
    """Anthropic content without its breakpoints, a string as the one text block it stands for (the API's
    own shorthand: a marked message is sent as blocks, the same message unmarked as its string)."""
    if isinstance(value, dict):
        if isinstance(value.get("content"), str):
            value = dict(value, content=[{"type": "text", "text": value["content"]}])
        return {k: strip_markers(v) for k, v in value.items() if k != "cache_control"}
    if isinstance(value, list):
        return [strip_markers(v) for v in value]
    return value


def test_injection_points_reach_anthropic_and_no_provider_sees_the_settings(
    pgw: ServedGateway, up: FakeUpstream
) -> None:
    _, sent = upstream_body(pgw, up, "claude-points", turn(1))
    system = sent["system"]
    assert isinstance(system, list) and system[-1]["cache_control"] == {"type": "ephemeral"}
    assert "cache_control_injection_points" not in sent and "prompt_cache" not in sent
    raw, sent = upstream_body(pgw, up, "openai-points", turn(1))
    assert b"cache_control" not in raw and b"prompt_cache" not in raw


def test_auto_marks_tools_system_and_the_conversation(pgw: ServedGateway, up: FakeUpstream) -> None:
    _, sent = upstream_body(pgw, up, "claude-auto", turn(2))
    assert sent["tools"][-1]["cache_control"] == {"type": "ephemeral"}
    assert sent["system"][-1]["cache_control"] == {"type": "ephemeral"}
    last = sent["messages"][-1]["content"]
    assert isinstance(last, list) and last[-1]["cache_control"] == {"type": "ephemeral"}
    assert json.dumps(sent).count('"cache_control"') == 3


@pytest.mark.parametrize("group", ["m-openai", "m-anthropic", "m-gemini", "claude-auto"])
def test_prefixes_are_byte_stable_across_calls_and_turns(pgw: ServedGateway, up: FakeUpstream, group: str) -> None:
    first, _ = upstream_body(pgw, up, group, turn(2))
    again, _ = upstream_body(pgw, up, group, turn(2))
    assert first == again  # the same request is the same bytes, every time
    _, t2 = upstream_body(pgw, up, group, turn(2))
    _, t3 = upstream_body(pgw, up, group, turn(3))
    if group == "m-gemini":
        assert t3["systemInstruction"] == t2["systemInstruction"] and t3["tools"] == t2["tools"]
        prior, longer = t2["contents"], t3["contents"]
    elif group == "m-openai":
        assert t3["tools"] == t2["tools"]
        prior, longer = t2["messages"], t3["messages"]
    else:
        assert t3["system"] == t2["system"] and t3["tools"] == t2["tools"]  # markers included
        prior, longer = strip_markers(t2["messages"]), strip_markers(t3["messages"])
    # the turn before is carried unchanged (only its breakpoint, not its content, may move forward)
    assert longer[: len(prior)] == prior
    assert len(longer) > len(prior)
