"""A provider's own fields across families (issue 14, section 2): what has a meaning elsewhere is sent as the
target's own form, what has none goes through the policy; the same-dialect trips, field by field, are
``tests/server/test_documents_gateway.py``'s.

- A Gemini caller's structured ``functionResponse.response`` is the object itself to Gemini and its JSON
  text to every other family (never ``{"output": "<json string>"}``).
- Gemini's ``VALIDATED`` mode over every function has no counterpart: refused as ``toolConfig``, or dropped.
"""

from __future__ import annotations

import json
from typing import Any

import pytest
from harness import FAMILIES, Ask, ServedGateway, ask, dropped, refused_then_dropped, the_request

from llmswitch.testing import FakeUpstream, Reply

WEATHER = {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]}
RESULT = {"temp": 21, "sky": ["clear", "dry"]}
TURNS = [
    {"role": "user", "parts": [{"text": "Weather in Paris?"}]},
    {"role": "model", "parts": [{"function_call": {"name": "get_weather", "args": {"city": "Paris"}}}]},
    {"role": "user", "parts": [{"function_response": {"name": "get_weather", "response": RESULT}}]},
]
TOOLS = [{"function_declarations": [{"name": "get_weather", "parameters_json_schema": WEATHER}]}]


def sent_result(family: str, body: dict[str, Any]) -> Any:
    """The tool result as the family's request carries it."""
    if family == "gemini":
        return body["contents"][2]["parts"][0]["functionResponse"]["response"]
    if family == "anthropic":
        block = body["messages"][2]["content"][0]
        content = block["content"]
        return json.loads(content if isinstance(content, str) else content[0]["text"])
    (tool,) = [m for m in body["messages"] if m["role"] == "tool"]
    return json.loads(tool["content"])


@pytest.mark.parametrize("family", FAMILIES)
def test_a_structured_function_response_keeps_its_meaning(gw: ServedGateway, up: FakeUpstream, family: str) -> None:
    up.script(Reply(text="Clear and 21 °C."))
    seen = ask("gemini", f"m-{family}", Ask(gemini={"contents": TURNS, "config": {"tools": TOOLS}}), gw=gw)
    assert (seen.status, seen.text) == (200, "Clear and 21 °C."), seen.error
    assert sent_result(family, the_request(up, family).json) == RESULT


@pytest.mark.parametrize("family", ["openai", "anthropic", "ollama"])
def test_validated_over_every_function_has_no_counterpart(gw: ServedGateway, up: FakeUpstream, family: str) -> None:
    config = {"tools": TOOLS, "tool_config": {"function_calling_config": {"mode": "VALIDATED"}}}
    up.script(Reply(text="Clear."))
    refused, kept, body = refused_then_dropped(
        "gemini", family, Ask(gemini={"contents": TURNS[:1], "config": config}), gw=gw, up=up
    )
    assert "toolConfig" in refused.error
    assert dropped(kept) == {"toolConfig"}
    assert "VALIDATED" not in json.dumps(body)
