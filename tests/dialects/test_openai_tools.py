"""OpenAI tool choices (allowed_tools, custom), legacy function calling, and what other dialects make of
OpenAI-only content (refusals, streamed logprobs): pure translation, tables and round trips."""

from __future__ import annotations

import json
from typing import Any

import pytest

from llmswitch import ir
from llmswitch.dialects import anthropic_stream, gemini_request, gemini_stream, openai_chat, openai_chat_stream
from llmswitch.dialects.openai_tools import (
    functions_chunk,
    functions_response,
    tool_choice_in,
    tool_choice_out,
    unsupported_custom_tools,
    without_custom_tools,
)
from llmswitch.errors import BadRequestError


def fn(name: str) -> dict[str, Any]:
    return {"type": "function", "function": {"name": name}}


def custom(name: str) -> dict[str, Any]:
    return {"type": "custom", "custom": {"name": name}}


@pytest.mark.parametrize(
    ("raw", "choice"),
    [
        ("auto", ir.ToolChoice(mode="auto")),
        ("required", ir.ToolChoice(mode="required")),
        ("none", ir.ToolChoice(mode="none")),
        (fn("a"), ir.ToolChoice(mode="tool", name="a")),
        (custom("c"), ir.ToolChoice(mode="tool", name="c")),
        ({"name": "a"}, ir.ToolChoice(mode="tool", name="a")),  # the legacy function_call
        (
            {"type": "allowed_tools", "allowed_tools": {"mode": "auto", "tools": [fn("a"), custom("c")]}},
            ir.ToolChoice(mode="auto", allowed=["a", "c"]),
        ),
        (
            {"type": "allowed_tools", "allowed_tools": {"mode": "required", "tools": [fn("a")]}},
            ir.ToolChoice(mode="required", allowed=["a"]),
        ),
    ],
)
def test_tool_choices_in_and_back_out(raw: Any, choice: ir.ToolChoice) -> None:
    assert tool_choice_in(raw) == choice
    tools = [ir.Tool(name="a"), ir.Tool(name="c", builtin={"type": "custom", "custom": {"name": "c"}})]
    if raw != {"name": "a"}:
        assert tool_choice_out(choice, tools) == raw


@pytest.mark.parametrize(
    ("raw", "field"),
    [
        (
            {"type": "allowed_tools", "allowed_tools": {"mode": "any", "tools": [fn("a")]}},
            "tool_choice.allowed_tools.mode",
        ),
        ({"type": "allowed_tools", "allowed_tools": {"mode": "auto", "tools": []}}, "tool_choice.allowed_tools.tools"),
        (
            {"type": "allowed_tools", "allowed_tools": {"mode": "auto", "tools": [{}]}},
            "tool_choice.allowed_tools.tools[0]",
        ),
        ({"type": "custom", "custom": {}}, "tool_choice"),
        (7, "tool_choice"),
    ],
)
def test_malformed_tool_choices_name_the_field(raw: Any, field: str) -> None:
    with pytest.raises(BadRequestError) as info:
        tool_choice_in(raw)
    assert info.value.param == field


def test_a_narrowed_choice_to_gemini_keeps_its_meaning() -> None:
    def config(mode: str) -> Any:
        req = openai_chat.decode_request(
            {
                "model": "m",
                "messages": [{"role": "user", "content": "hi"}],
                "tools": [{"type": "function", "function": {"name": n}} for n in ("a", "b", "c")],
                "tool_choice": {"type": "allowed_tools", "allowed_tools": {"mode": mode, "tools": [fn("a"), fn("b")]}},
            }
        )
        return gemini_request.encode_request(req, model="gemini-2.5-flash")["toolConfig"]["functionCallingConfig"]

    assert config("required") == {"mode": "ANY", "allowedFunctionNames": ["a", "b"]}
    assert config("auto") == {"mode": "VALIDATED", "allowedFunctionNames": ["a", "b"]}


CUSTOM_TOOL = ir.Tool(name="run", builtin={"type": "custom", "custom": {"name": "run"}})


def test_custom_tools_are_found_for_every_target_but_openai() -> None:
    req = ir.Request(
        model="m",
        messages=[],
        tools=[ir.Tool(name="a"), CUSTOM_TOOL],
        tool_choice=ir.ToolChoice(mode="tool", name="run"),
    )
    assert unsupported_custom_tools(req, "openai_chat") == []
    assert unsupported_custom_tools(req, "anthropic_messages") == ["tools[1]", "tool_choice"]
    assert without_custom_tools(req) == {"tools": [ir.Tool(name="a")], "tool_choice": ir.ToolChoice(mode="auto")}
    narrowed = ir.Request(
        model="m", messages=[], tools=[CUSTOM_TOOL], tool_choice=ir.ToolChoice(mode="auto", allowed=["run"])
    )
    assert without_custom_tools(narrowed) == {"tools": None, "tool_choice": None}


def test_custom_tool_calls_round_trip_whole_and_streamed() -> None:
    call = {"id": "call_1", "type": "custom", "custom": {"name": "run", "input": "print(1)"}}
    body = {"id": "x", "model": "m", "choices": [{"index": 0, "message": {"role": "assistant", "tool_calls": [call]}}]}
    resp = openai_chat.decode_response(body)
    assert resp.choices[0].tool_calls == [ir.ToolCallPart(id="call_1", name="run", arguments="print(1)", custom=True)]
    assert openai_chat.encode_response(resp)["choices"][0]["message"]["tool_calls"] == [call]
    chunk = {"id": "x", "choices": [{"index": 0, "delta": {"tool_calls": [{"index": 0, **call}]}}]}
    (ev,) = openai_chat_stream.StreamDecoder().feed(f"data: {json.dumps(chunk)}\n\n".encode())
    out = openai_chat_stream.StreamEncoder(ir.StreamMeta(id="x"), include_usage=False).chunk(ev)
    assert out is not None and out["choices"][0]["delta"]["tool_calls"] == [{"index": 0, **call}]


def test_legacy_function_callers_get_function_call() -> None:
    body = {
        "choices": [
            {
                "index": 0,
                "message": {
                    "role": "assistant",
                    "content": None,
                    "tool_calls": [{"id": "1", "function": {"name": "f", "arguments": "{}"}}],
                },
                "finish_reason": "tool_calls",
            }
        ]
    }
    out = functions_response(body)["choices"][0]
    assert out["message"] == {"role": "assistant", "content": None, "function_call": {"name": "f", "arguments": "{}"}}
    assert out["finish_reason"] == "function_call"
    chunk = {
        "choices": [{"delta": {"tool_calls": [{"index": 0, "function": {"arguments": '{"a"'}}]}, "finish_reason": None}]
    }
    assert functions_chunk(chunk)["choices"][0]["delta"] == {"function_call": {"arguments": '{"a"'}}
    req = openai_chat.decode_request(
        {
            "model": "m",
            "messages": [{"role": "user", "content": "hi"}],
            "functions": [{"name": "f"}],
            "function_call": "auto",
        }
    )
    assert (req.legacy_functions, req.tool_choice, [t.name for t in req.tools or []]) == (
        True,
        ir.ToolChoice(mode="auto"),
        ["f"],
    )


# ---------------------------------------------------------------- refusals and streamed logprobs elsewhere


def test_a_refusal_in_the_history_is_openais_refusal_and_others_text() -> None:
    req = openai_chat.decode_request(
        {
            "model": "m",
            "messages": [
                {"role": "user", "content": "hi"},
                {"role": "assistant", "content": None, "refusal": "No."},
                {"role": "user", "content": "ok"},
            ],
        }
    )
    assert req.messages[1].content == [ir.TextPart("No.", refusal=True)]
    sent = openai_chat.encode_request(req, model="m")["messages"][1]
    assert sent == {"role": "assistant", "content": None, "refusal": "No."}


def sse(*chunks: dict[str, Any]) -> bytes:
    return b"".join(f"data: {json.dumps(c)}\n\n".encode() for c in chunks)


LOGPROB = {"token": "No", "logprob": -0.5, "bytes": [78, 111], "top_logprobs": []}
REFUSAL_STREAM = sse(
    {
        "id": "x",
        "choices": [{"index": 0, "delta": {"role": "assistant", "refusal": "No"}, "logprobs": {"content": [LOGPROB]}}],
    },
    {"id": "x", "choices": [{"index": 0, "delta": {}, "finish_reason": "stop"}]},
)


def test_a_streamed_refusal_and_its_logprobs_survive_openai_to_openai() -> None:
    events = openai_chat_stream.StreamDecoder().feed(REFUSAL_STREAM)
    assert (events[0].refusal, events[0].logprobs) == ("No", {"content": [LOGPROB]})
    enc = openai_chat_stream.StreamEncoder(ir.StreamMeta(id="x"), include_usage=False)
    first = enc.chunk(events[0])
    assert first is not None
    assert first["choices"][0]["delta"] == {"role": "assistant", "refusal": "No"}
    assert first["choices"][0]["logprobs"] == {"content": [LOGPROB]}


def test_a_streamed_refusal_is_text_to_anthropic_and_gemini_clients() -> None:
    events = openai_chat_stream.StreamDecoder().feed(REFUSAL_STREAM)
    a = anthropic_stream.StreamEncoder(ir.StreamMeta(id="x"))
    wire = b"".join(a.encode(ev) for ev in events) + a.close()
    assert b'"text_delta","text":"No"' in wire.replace(b" ", b"")
    g = gemini_stream.StreamEncoder(ir.StreamMeta(id="x"))
    wire = b"".join(g.encode(ev) for ev in events) + g.close()
    chunks = [json.loads(line[6:]) for line in wire.split(b"\r\n\r\n") if line.startswith(b"data: ")]
    cand = chunks[0]["candidates"][0]
    assert cand["content"]["parts"] == [{"text": "No"}]
    assert cand["logprobsResult"]["chosenCandidates"] == [{"token": "No", "logProbability": -0.5}]


def test_geminis_streamed_logprobs_come_out_per_chunk() -> None:
    lr = {"chosenCandidates": [{"token": "Hi", "logProbability": -0.1}], "topCandidates": [{"candidates": []}]}
    chunk = {
        "candidates": [{"content": {"parts": [{"text": "Hi"}], "role": "model"}, "index": 0, "logprobsResult": lr}]
    }
    (ev,) = gemini_stream.StreamDecoder().feed(f"data: {json.dumps(chunk)}\r\n\r\n".encode())
    assert ev.text == "Hi"
    assert ev.logprobs == {"content": [{"token": "Hi", "logprob": -0.1, "bytes": [72, 105], "top_logprobs": []}]}
