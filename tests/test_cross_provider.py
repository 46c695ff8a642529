"""One conversation moving between providers mid-way: a tool loop started on OpenAI continues on
Anthropic, then on Gemini, then back on Anthropic, with the same message list. Tool call ids, results
and reasoning must arrive in each provider's own format, and a reasoning signature only ever goes
back to the provider that made it."""

from __future__ import annotations

import json
from typing import Any

import llmswitch
from llmswitch.testing import FakeUpstream, Reply

OPENAI, ANTHROPIC, GEMINI = "openai/gpt-4o-mini", "anthropic/claude-sonnet-4-20250514", "gemini/gemini-2.5-flash"
TOOLS = [
    {
        "type": "function",
        "function": {
            "name": name,
            "description": f"{name} tool",
            "parameters": {"type": "object", "properties": {"q": {"type": "string"}}, "required": ["q"]},
        },
    }
    for name in ("get_weather", "get_time")
]


def ask(up: FakeUpstream, model: str, messages: list[Any]) -> Any:
    base = {"openai": up.openai_base, "anthropic": up.anthropic_base, "gemini": up.gemini_base}[model.split("/")[0]]
    r = llmswitch.completion(model, messages, tools=TOOLS, api_base=base, api_key="k", num_retries=0)
    messages.append(r.choices[0].message.model_dump())
    return r


def test_a_tool_loop_moves_from_openai_to_anthropic_to_gemini_and_back() -> None:
    with FakeUpstream() as up:
        messages: list[Any] = [
            {"role": "system", "content": "Be brief."},
            {"role": "user", "content": "Weather and time in Paris?"},
        ]

        # 1. OpenAI asks for a tool
        up.script(Reply(tool_calls=[("get_weather", {"q": "Paris"}, "call_openai_1")]))
        r = ask(up, OPENAI, messages)
        assert r.choices[0].message.tool_calls[0].id == "call_openai_1"
        messages.append({"role": "tool", "tool_call_id": "call_openai_1", "content": "18C sunny"})

        # 2. Anthropic continues: it sees OpenAI's call and result as tool_use / tool_result, and thinks
        up.script(
            Reply(
                reasoning="Now the time.",
                reasoning_signature="SIG-ANTHROPIC",
                tool_calls=[("get_time", {"q": "CET"}, "toolu_2")],
            )
        )
        r = ask(up, ANTHROPIC, messages)
        sent = up.requests[-1].json
        assert sent["system"] == "Be brief." or "Be brief." in json.dumps(sent["system"])
        blocks = [b for m in sent["messages"] for b in (m["content"] if isinstance(m["content"], list) else [])]
        assert {
            "type": "tool_use",
            "id": "call_openai_1",
            "name": "get_weather",
            "input": {"q": "Paris"},
        }.items() <= next(b for b in blocks if b["type"] == "tool_use").items()
        result = next(b for b in blocks if b["type"] == "tool_result")
        assert result["tool_use_id"] == "call_openai_1" and "18C sunny" in json.dumps(result)
        msg = r.choices[0].message
        assert msg.reasoning_content == "Now the time."
        assert msg.thinking_blocks[0]["signature"] == "SIG-ANTHROPIC"
        messages.append({"role": "tool", "tool_call_id": "toolu_2", "content": "14:05"})

        # 3. Gemini continues: calls and results by name, user/model roles, no foreign signature
        up.script(Reply(text="18C, sunny, 14:05."))
        r = ask(up, GEMINI, messages)
        assert r.choices[0].message.content == "18C, sunny, 14:05."
        sent = up.requests[-1].json
        assert {c["role"] for c in sent["contents"]} <= {"user", "model"}
        calls = [p["functionCall"]["name"] for c in sent["contents"] for p in c["parts"] if "functionCall" in p]
        answers = [
            p["functionResponse"]["name"] for c in sent["contents"] for p in c["parts"] if "functionResponse" in p
        ]
        assert calls == ["get_weather", "get_time"] and answers == ["get_weather", "get_time"]
        assert "SIG-ANTHROPIC" not in json.dumps(sent)
        assert "Be brief." in json.dumps(sent["systemInstruction"])

        # 4. back on Anthropic: its own thinking block goes back unchanged, with its signature
        messages.append({"role": "user", "content": "Thanks. Tomorrow?"})
        up.script(Reply(text="Rain."))
        ask(up, ANTHROPIC, messages)
        sent = up.requests[-1].json
        thinking = [
            b
            for m in sent["messages"]
            if isinstance(m["content"], list)
            for b in m["content"]
            if b["type"] == "thinking"
        ]
        assert thinking == [{"type": "thinking", "thinking": "Now the time.", "signature": "SIG-ANTHROPIC"}]
        ids = [
            b["id"]
            for m in sent["messages"]
            if isinstance(m["content"], list)
            for b in m["content"]
            if b["type"] == "tool_use"
        ]
        assert ids == ["call_openai_1", "toolu_2"]


def test_a_gemini_signature_does_not_reach_anthropic() -> None:
    with FakeUpstream() as up:
        messages: list[Any] = [{"role": "user", "content": "Think, then answer."}]
        up.script(Reply(reasoning="pondering", reasoning_signature="SIG-GEMINI", text="42"))
        r = ask(up, GEMINI, messages)
        assert r.choices[0].message.reasoning_content == "pondering"
        messages.append({"role": "user", "content": "And again?"})
        up.script(Reply(text="43"))
        ask(up, ANTHROPIC, messages)
        sent = json.dumps(up.requests[-1].json)
        assert "SIG-GEMINI" not in sent  # Anthropic rejects a signature it did not make
        # ... while Gemini gets its own signature back
        messages.append({"role": "user", "content": "Once more on Gemini."})
        up.script(Reply(text="44"))
        ask(up, GEMINI, messages)
        assert "SIG-GEMINI" in json.dumps(up.requests[-1].json)
