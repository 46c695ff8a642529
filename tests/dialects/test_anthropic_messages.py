"""The Anthropic Messages dialect: mapping tables, recorded traffic, and round-trip properties."""

from __future__ import annotations

import base64
import itertools
import json
import struct
import sys
from functools import cache
from pathlib import Path
from typing import Any

import msgspec
import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from llmswitch import errors, ir
from llmswitch.dialects import anthropic_messages as am
from llmswitch.dialects.anthropic_stream import StreamDecoder, StreamEncoder

SHARED = Path(__file__).resolve().parents[2].parent / "shared"
RECORDED = SHARED / "fixtures" / "recorded"
sys.path.insert(0, str(SHARED / "conformance"))
import expect  # noqa: E402


def user(*parts: ir.Part) -> ir.Message:
    return ir.Message(role="user", content=list(parts))


def text(t: str, **kw: Any) -> ir.TextPart:
    return ir.TextPart(text=t, **kw)


def request(*messages: ir.Message, **kw: Any) -> ir.Request:
    return ir.Request(model="claude-sonnet-4-5", messages=list(messages), **kw)


CALL = ir.ToolCallPart(id="toolu_1", name="get", arguments='{"q":"x"}')
RESULT = ir.ToolResultPart(tool_call_id="toolu_1", content=[text("42")])
EPHEMERAL = {"type": "ephemeral"}


@cache
def spec_validator() -> Any:
    from jsonschema import Draft202012Validator

    doc = json.loads((SHARED / "specs" / "anthropic-openapi.json").read_text())
    return Draft202012Validator({"$ref": "#/components/schemas/CreateMessageParams", "components": doc["components"]})


def assert_valid(body: dict[str, Any]) -> None:
    problems = [e.message[:200] for e in spec_validator().iter_errors(body)]
    assert not problems, problems


# ---------------------------------------------------------------- request mapping tables


# fmt: off
@pytest.mark.parametrize(
    ("messages", "system", "turns"),
    [
        ([ir.Message(role="system", content=[text("Be brief.")]), user(text("hi"))], "Be brief.", [("user", "hi")]),
        ([ir.Message(role="system", content=[text("a")]), ir.Message(role="developer", content=[text("b")]), user(text("hi"))], [{"type": "text", "text": "a"}, {"type": "text", "text": "b"}], [("user", "hi")]),
        ([ir.Message(role="system", content=[text("a", cache_control=EPHEMERAL)]), user(text("hi"))], [{"type": "text", "text": "a", "cache_control": EPHEMERAL}], [("user", "hi")]),
        # a system message in the middle of the conversation is hoisted too
        ([user(text("hi")), ir.Message(role="system", content=[text("late")]), user(text("again"))], "late", [("user", [{"type": "text", "text": "hi"}, {"type": "text", "text": "again"}])]),
        # consecutive turns of one role merge; tool results go first in the user turn
        ([user(text("q")), ir.Message(role="assistant", content=[text("let me look"), CALL]), ir.Message(role="tool", content=[RESULT]), user(text("and?"))], None, [("user", "q"), ("assistant", [{"type": "text", "text": "let me look"}, {"type": "tool_use", "id": "toolu_1", "name": "get", "input": {"q": "x"}}]), ("user", [{"type": "tool_result", "tool_use_id": "toolu_1", "content": "42"}, {"type": "text", "text": "and?"}])]),
        ([user(text("first")), ir.Message(role="tool", content=[RESULT])], None, [("user", [{"type": "tool_result", "tool_use_id": "toolu_1", "content": "42"}, {"type": "text", "text": "first"}])]),
        # a final assistant turn is a prefill: trailing whitespace is trimmed, as the API demands
        ([user(text("hi")), ir.Message(role="assistant", content=[text("The answer is ")])], None, [("user", "hi"), ("assistant", "The answer is")]),
        # empty text is dropped; an empty message disappears
        ([user(text("hi")), ir.Message(role="assistant", content=[text("")]), user(text("there"))], None, [("user", [{"type": "text", "text": "hi"}, {"type": "text", "text": "there"}])]),
    ],
)
def test_system_hoisting_and_merging(messages: list[ir.Message], system: Any, turns: list[tuple[str, Any]]) -> None:
    body = am.encode_request(request(*messages), model="claude-sonnet-4-5")
    assert body.get("system") == system
    assert [(t["role"], t["content"]) for t in body["messages"]] == turns
    assert_valid(body)


TOOLS = [
    ir.Tool(
        name="get", description="Get a thing", parameters={"type": "object", "properties": {"q": {"type": "string"}}}
    )
]


# fmt: off
@pytest.mark.parametrize(
    ("choice", "parallel", "wire"),
    [
        (None, None, None),
        (ir.ToolChoice(mode="auto"), None, {"type": "auto"}),
        (ir.ToolChoice(mode="required"), None, {"type": "any"}),
        (ir.ToolChoice(mode="none"), None, {"type": "none"}),
        (ir.ToolChoice(mode="tool", name="get"), None, {"type": "tool", "name": "get"}),
        (None, False, {"type": "auto", "disable_parallel_tool_use": True}),
        (ir.ToolChoice(mode="required"), False, {"type": "any", "disable_parallel_tool_use": True}),
        (ir.ToolChoice(mode="tool", name="get", parallel=False), None, {"type": "tool", "name": "get", "disable_parallel_tool_use": True}),
        (ir.ToolChoice(mode="none"), False, {"type": "none"}),
        (None, True, None),
    ],
)
def test_tool_choice(choice: ir.ToolChoice | None, parallel: bool | None, wire: dict[str, Any] | None) -> None:
    req = request(user(text("hi")), tools=TOOLS, tool_choice=choice, parallel_tool_calls=parallel)
    body = am.encode_request(req, model="claude-sonnet-4-5")
    assert body.get("tool_choice") == wire
    assert body["tools"] == [{"name": "get", "description": "Get a thing", "input_schema": TOOLS[0].parameters}]
    assert_valid(body)


def test_no_tool_choice_without_tools() -> None:
    body = am.encode_request(
        request(user(text("hi")), tool_choice=ir.ToolChoice(mode="auto")), model="claude-sonnet-4-5"
    )
    assert "tool_choice" not in body and "tools" not in body


def test_tools_schema_defaults_strict_and_builtin() -> None:
    web = {"type": "web_search_20250305", "name": "web_search", "max_uses": 3}
    tools = [
        ir.Tool(name="noargs"),
        ir.Tool(name="loose", parameters={"properties": {}}, strict=True, cache_control=EPHEMERAL),
        ir.Tool(name="web_search", builtin=web),
    ]
    new = am.encode_request(request(user(text("hi")), tools=tools), model="claude-sonnet-4-5")["tools"]
    assert new == [
        {"name": "noargs", "input_schema": {"type": "object", "properties": {}}},
        {
            "name": "loose",
            "input_schema": {"type": "object", "properties": {}},
            "strict": True,
            "cache_control": EPHEMERAL,
        },
        web,
    ]
    # strict tool use only exists on models with structured outputs
    old = am.encode_request(request(user(text("hi")), tools=tools), model="claude-sonnet-4-20250514")["tools"]
    assert "strict" not in old[1]


# fmt: off
@pytest.mark.parametrize(
    ("model", "kw", "thinking", "max_tokens"),
    [
        ("claude-sonnet-4-5", {}, None, 8192),
        ("claude-3-haiku-20240307", {}, None, 4096),
        ("claude-3-5-haiku-20241022", {}, None, 8192),
        ("some-proxy-model", {}, None, 4096),
        ("claude-sonnet-4-5", {"max_tokens": 100}, None, 100),
        ("claude-sonnet-4-5", {"reasoning_effort": "low"}, {"type": "enabled", "budget_tokens": 2048}, 8192),
        ("claude-sonnet-4-5", {"reasoning_effort": "medium"}, {"type": "enabled", "budget_tokens": 4096}, 8192),
        ("claude-sonnet-4-5", {"reasoning_effort": "high"}, {"type": "enabled", "budget_tokens": 8192}, 16384),
        ("claude-sonnet-4-5", {"reasoning_effort": "high", "max_tokens": 1000}, {"type": "enabled", "budget_tokens": 8192}, 9216),
        ("claude-sonnet-4-5", {"reasoning_effort": "none"}, None, 8192),
        # an explicit budget wins over an effort; below the API's minimum it is raised to 1024
        ("claude-sonnet-4-5", {"reasoning_effort": "high", "thinking_budget": 2000}, {"type": "enabled", "budget_tokens": 2000}, 8192),
        ("claude-sonnet-4-5", {"thinking_budget": 10}, {"type": "enabled", "budget_tokens": 1024}, 8192),
        ("claude-sonnet-4-5", {"thinking_budget": 6400, "max_tokens": 16000}, {"type": "enabled", "budget_tokens": 6400}, 16000),
        ("claude-sonnet-4-5", {"thinking_budget": 0}, {"type": "disabled"}, 8192),
        # raised max_tokens stays within what the model can write
        ("claude-opus-4-1", {"thinking_budget": 31000}, {"type": "enabled", "budget_tokens": 30976}, 32000),
        # models that cannot think ignore an effort (it is a preference), not an explicit budget
        ("claude-3-5-sonnet-20241022", {"reasoning_effort": "high"}, None, 8192),
        ("claude-sonnet-4-5", {"reasoning_effort": "high", "tool_choice": ir.ToolChoice(mode="required")}, None, 8192),
    ],
)
def test_max_tokens_and_thinking_budget(model: str, kw: dict[str, Any], thinking: Any, max_tokens: int) -> None:
    kw.setdefault("tools", TOOLS)
    body = am.encode_request(request(user(text("hi")), **kw), model=model)
    assert body.get("thinking") == thinking
    assert body["max_tokens"] == max_tokens
    if thinking and thinking["type"] == "enabled":
        assert thinking["budget_tokens"] < body["max_tokens"]
    assert_valid(body)


def test_default_max_tokens_override() -> None:
    assert (
        am.encode_request(request(user(text("hi"))), model="claude-sonnet-4-5", default_max_tokens=300)["max_tokens"]
        == 300
    )


# fmt: off
@pytest.mark.parametrize(
    ("model", "kw", "sent"),
    [
        ("claude-sonnet-4-5", {"temperature": 0.2, "top_k": 5}, {"temperature": 0.2, "top_k": 5}),
        ("claude-sonnet-4-20250514", {"temperature": 0.2, "top_p": 0.9}, {"temperature": 0.2, "top_p": 0.9}),
        # Claude 4.1+ refuses temperature and top_p together
        ("claude-sonnet-4-5", {"temperature": 0.2, "top_p": 0.9}, {"temperature": 0.2}),
        ("claude-sonnet-4-5", {"top_p": 0.9}, {"top_p": 0.9}),
        # thinking: no temperature, no top_k, top_p only within 0.95-1
        ("claude-sonnet-4-5", {"thinking_budget": 2048, "temperature": 0.2, "top_k": 5, "top_p": 0.5}, {}),
        ("claude-sonnet-4-5", {"thinking_budget": 2048, "temperature": 0.2, "top_p": 0.97}, {"top_p": 0.97}),
    ],
)
def test_sampling_rules(model: str, kw: dict[str, Any], sent: dict[str, Any]) -> None:
    body = am.encode_request(request(user(text("hi")), **kw), model=model)
    assert {k: body[k] for k in ("temperature", "top_p", "top_k") if k in body} == sent


def test_stop_user_metadata_stream_extra() -> None:
    req = request(
        user(text("hi")),
        stop=["\n", "END", "  "],
        user="u-1",
        stream=True,
        seed=3,
        presence_penalty=0.5,
        extra={"service_tier": "auto", "output_config": {"effort": "low"}},
        response_format=ir.ResponseFormat(type="json_schema", schema={"type": "object"}),
    )
    body = am.encode_request(req, model="claude-sonnet-4-5")
    # whitespace-only stop sequences are refused by the API; Anthropic has no seed or penalties
    assert body["stop_sequences"] == ["END"]
    assert body["metadata"] == {"user_id": "u-1"}
    assert body["stream"] is True and body["service_tier"] == "auto"
    assert body["output_config"] == {"format": {"type": "json_schema", "schema": {"type": "object"}}, "effort": "low"}
    assert "seed" not in body and "presence_penalty" not in body
    assert_valid(body)


def test_n_above_one_is_refused() -> None:
    with pytest.raises(errors.BadRequestError, match="one choice"):
        am.encode_request(request(user(text("hi")), n=2), model="claude-sonnet-4-5")


def test_cache_control_passes_through_everywhere() -> None:
    cc = {"type": "ephemeral", "ttl": "1h"}
    req = request(
        ir.Message(role="system", content=[text("sys", cache_control=cc)]),
        user(text("hi", cache_control=cc), ir.ImagePart(data="iVBORw0", media_type="image/png", cache_control=cc)),
        ir.Message(role="assistant", content=[ir.ToolCallPart(id="t1", name="get", arguments="{}", cache_control=cc)]),
        ir.Message(role="tool", content=[ir.ToolResultPart(tool_call_id="t1", content=[text("r")], cache_control=cc)]),
        tools=[ir.Tool(name="get", parameters={"type": "object"}, cache_control=cc)],
    )
    body = am.encode_request(req, model="claude-sonnet-4-5")
    assert body["system"] == [{"type": "text", "text": "sys", "cache_control": cc}]
    assert [b["cache_control"] for b in body["messages"][0]["content"]] == [cc, cc]
    assert body["messages"][1]["content"][0]["cache_control"] == cc
    assert body["messages"][2]["content"][0]["cache_control"] == cc
    assert body["tools"][0]["cache_control"] == cc
    assert_valid(body)


# fmt: off
@pytest.mark.parametrize(
    ("part", "block"),
    [
        (ir.ImagePart(data="iVBORw0KGgo", media_type="image/png"), {"type": "image", "source": {"type": "base64", "media_type": "image/png", "data": "iVBORw0KGgo"}}),
        (ir.ImagePart(data="/9j/4AAQ"), {"type": "image", "source": {"type": "base64", "media_type": "image/jpeg", "data": "/9j/4AAQ"}}),
        (ir.ImagePart(url="data:image/webp;base64,UklGRg"), {"type": "image", "source": {"type": "base64", "media_type": "image/webp", "data": "UklGRg"}}),
        (ir.ImagePart(url="https://x.test/a.png"), {"type": "image", "source": {"type": "url", "url": "https://x.test/a.png"}}),
        (ir.FilePart(data="JVBERi0", media_type="application/pdf", filename="a.pdf"), {"type": "document", "source": {"type": "base64", "media_type": "application/pdf", "data": "JVBERi0"}, "title": "a.pdf"}),
        (ir.FilePart(data=base64.b64encode(b"plain words").decode(), media_type="text/plain"), {"type": "document", "source": {"type": "text", "media_type": "text/plain", "data": "plain words"}}),
        (ir.FilePart(url="https://x.test/a.pdf"), {"type": "document", "source": {"type": "url", "url": "https://x.test/a.pdf"}}),
        (ir.FilePart(file_id="file_1"), {"type": "document", "source": {"type": "file", "file_id": "file_1"}}),
        (ir.FilePart(data="iVBOR", media_type="image/png"), {"type": "image", "source": {"type": "base64", "media_type": "image/png", "data": "iVBOR"}}),
        (ir.ReasoningPart(text="hm", signature="sig"), {"type": "thinking", "thinking": "hm", "signature": "sig"}),
        (ir.ReasoningPart(text="from another provider"), None),
        (ir.ReasoningPart(text="signed by Gemini", signature="g", provider="gemini"), None),
        (ir.RedactedReasoningPart(data="opaque"), {"type": "redacted_thinking", "data": "opaque"}),
        (ir.ProviderPart(provider="anthropic", block={"type": "server_tool_use", "id": "srvtoolu_1", "name": "web_search", "input": {}}), {"type": "server_tool_use", "id": "srvtoolu_1", "name": "web_search", "input": {}}),
        (ir.ProviderPart(provider="gemini", block={"executableCode": {}}), None),
        (ir.ToolCallPart(id="call:1/x", name="f", arguments="not json"), {"type": "tool_use", "id": "call_1_x", "name": "f", "input": {}}),
        (ir.ToolResultPart(tool_call_id="t", content=[text("a"), ir.ImagePart(data="iVBOR", media_type="image/png")], is_error=True), {"type": "tool_result", "tool_use_id": "t", "content": [{"type": "text", "text": "a"}, {"type": "image", "source": {"type": "base64", "media_type": "image/png", "data": "iVBOR"}}], "is_error": True}),
        (ir.ToolResultPart(tool_call_id="t"), {"type": "tool_result", "tool_use_id": "t"}),
        (text("cited", citations=[ir.Citation(provider="anthropic", native={"type": "char_location", "cited_text": "x", "document_index": 0, "start_char_index": 0, "end_char_index": 1}), ir.Citation(url="u", provider="openai", native={"type": "url_citation", "url_citation": {"url": "u"}})]), {"type": "text", "text": "cited", "citations": [{"type": "char_location", "cited_text": "x", "document_index": 0, "start_char_index": 0, "end_char_index": 1}]}),
    ],
)
def test_block_out(part: ir.Part, block: dict[str, Any] | None) -> None:
    assert am.block_out(part) == block


def test_block_out_refuses_audio() -> None:
    with pytest.raises(errors.BadRequestError, match="audio"):
        am.block_out(ir.FilePart(data="AAAA", media_type="audio/wav"))


def test_files_need_a_beta_header() -> None:
    body = am.encode_request(request(user(ir.FilePart(file_id="file_1"), text("sum up"))), model="claude-sonnet-4-5")
    assert am.required_betas(body) == ["files-api-2025-04-14"]
    assert am.required_betas(am.encode_request(request(user(text("hi"))), model="claude-sonnet-4-5")) == []


# ---------------------------------------------------------------- structured outputs

SCHEMA = {
    "type": "object",
    "properties": {"city": {"type": "string"}},
    "required": ["city"],
    "additionalProperties": False,
}


# fmt: off
@pytest.mark.parametrize(
    ("model", "rf", "kw", "native", "choice"),
    [
        ("claude-sonnet-4-5", ir.ResponseFormat(type="json_schema", schema=SCHEMA), {}, True, None),
        ("claude-sonnet-4-20250514", ir.ResponseFormat(type="json_schema", schema=SCHEMA), {}, False, {"type": "tool", "name": am.RESPONSE_TOOL}),
        ("claude-sonnet-4-5", ir.ResponseFormat(type="json_object"), {}, False, {"type": "tool", "name": am.RESPONSE_TOOL}),
        # with tools of its own the model may call them, but must answer through the tool
        ("claude-sonnet-4-20250514", ir.ResponseFormat(type="json_schema", schema=SCHEMA), {"tools": TOOLS}, False, {"type": "any"}),
        ("claude-sonnet-4-20250514", ir.ResponseFormat(type="json_schema", schema=SCHEMA), {"tools": TOOLS, "tool_choice": ir.ToolChoice(mode="none")}, False, {"type": "tool", "name": am.RESPONSE_TOOL}),
        # thinking forbids forced tools: the tool is asked for in words
        ("claude-sonnet-4-20250514", ir.ResponseFormat(type="json_schema", schema=SCHEMA), {"thinking_budget": 2048}, False, {"type": "auto"}),
        ("claude-sonnet-4-5", ir.ResponseFormat(type="text"), {}, False, None),
    ],
)
def test_structured_output_request(
    model: str, rf: ir.ResponseFormat, kw: dict[str, Any], native: bool, choice: Any
) -> None:
    body = am.encode_request(
        request(ir.Message(role="system", content=[text("Be brief.")]), user(text("Paris?")), response_format=rf, **kw),
        model=model,
    )
    assert ("output_config" in body) is native
    if native:
        assert body["output_config"] == {"format": {"type": "json_schema", "schema": SCHEMA}}
    assert body.get("tool_choice") == choice
    answer_tools = [t for t in body.get("tools", []) if t["name"] == am.RESPONSE_TOOL]
    if choice is not None and rf.type != "text":
        assert answer_tools[0]["input_schema"] == (SCHEMA if rf.type == "json_schema" else {"type": "object"})
    if kw.get("thinking_budget"):
        assert am.RESPONSE_TOOL in body["system"][-1]["text"]
    assert_valid(body)


def test_structured_output_answer_tool_becomes_text() -> None:
    body = {
        "id": "msg_1",
        "model": "claude-sonnet-4-20250514",
        "content": [{"type": "tool_use", "id": "toolu_9", "name": am.RESPONSE_TOOL, "input": {"city": "Paris"}}],
        "stop_reason": "tool_use",
        "usage": {"input_tokens": 5, "output_tokens": 3},
    }
    c = am.decode_response(body).choices[0]
    assert c.text == '{"city":"Paris"}' and c.tool_calls == [] and c.finish_reason == "stop"
    assert c.native_finish_reason == "tool_use"


# ---------------------------------------------------------------- responses, usage, finish reasons


# fmt: off
@pytest.mark.parametrize(
    ("raw", "usage"),
    [
        ({"input_tokens": 17, "output_tokens": 15}, ir.Usage(input_tokens=17, output_tokens=15)),
        ({"input_tokens": 8, "cache_creation_input_tokens": 4167, "cache_read_input_tokens": 0, "cache_creation": {"ephemeral_5m_input_tokens": 4167, "ephemeral_1h_input_tokens": 0}, "output_tokens": 204}, ir.Usage(input_tokens=4175, output_tokens=204, cache_write_tokens=4167, cache_write_5m_tokens=4167)),
        ({"input_tokens": 12, "cache_read_input_tokens": 4167, "output_tokens": 350}, ir.Usage(input_tokens=4179, output_tokens=350, cache_read_tokens=4167)),
        ({"input_tokens": 1, "cache_creation_input_tokens": 30, "cache_read_input_tokens": 5, "cache_creation": {"ephemeral_5m_input_tokens": 10, "ephemeral_1h_input_tokens": 20}, "output_tokens": 9, "output_tokens_details": {"thinking_tokens": 7}}, ir.Usage(input_tokens=36, output_tokens=9, cache_read_tokens=5, cache_write_tokens=30, cache_write_5m_tokens=10, cache_write_1h_tokens=20, reasoning_tokens=7, reasoning_reported=True)),
        ({"input_tokens": None, "output_tokens": 3, "cache_read_input_tokens": None}, ir.Usage(output_tokens=3)),
    ],
)
def test_usage_normal_form(raw: dict[str, Any], usage: ir.Usage) -> None:
    assert am.map_usage_in(raw) == usage
    back = am.map_usage_out(usage)
    assert back["input_tokens"] == (raw["input_tokens"] or 0)
    assert am.map_usage_in(back) == usage


# fmt: off
@pytest.mark.parametrize(
    ("native", "finish"),
    [
        ("end_turn", "stop"),
        ("stop_sequence", "stop"),
        ("pause_turn", "stop"),
        ("max_tokens", "length"),
        ("model_context_window_exceeded", "length"),
        ("tool_use", "tool_calls"),
        ("refusal", "content_filter"),
        ("something_new", "stop"),
        (None, None),
    ],
)
def test_finish_reasons(native: str | None, finish: str | None) -> None:
    assert am.finish_reason_in(native) == finish
    if native is not None and native != "something_new":
        assert (
            am.encode_response(
                ir.Response(id="m", model="c", choices=[ir.Choice(finish_reason=finish, native_finish_reason=native)])
            )["stop_reason"]
            == native
        )


# fmt: off
@pytest.mark.parametrize(
    ("finish", "stop_reason"),
    [
        ("stop", "end_turn"),
        ("length", "max_tokens"),
        ("tool_calls", "tool_use"),
        ("content_filter", "refusal"),
        (None, "end_turn"),
    ],
)
def test_stop_reason_from_other_providers(finish: Any, stop_reason: str) -> None:
    resp = ir.Response(
        id="chatcmpl-1", model="gpt", choices=[ir.Choice(finish_reason=finish, native_finish_reason="eos")]
    )
    assert am.encode_response(resp)["stop_reason"] == stop_reason


def test_decode_response_keeps_everything() -> None:
    web = {
        "type": "web_search_tool_result",
        "tool_use_id": "srvtoolu_1",
        "content": [{"type": "web_search_result", "url": "u", "title": "t", "encrypted_content": "e"}],
    }
    body = {
        "id": "msg_1",
        "type": "message",
        "role": "assistant",
        "model": "claude-sonnet-4-5-20250929",
        "content": [
            {"type": "thinking", "thinking": "hmm", "signature": "SIG"},
            {"type": "redacted_thinking", "data": "RED"},
            {"type": "server_tool_use", "id": "srvtoolu_1", "name": "web_search", "input": {"query": "q"}},
            web,
            {
                "type": "text",
                "text": "Found it",
                "citations": [
                    {
                        "type": "web_search_result_location",
                        "url": "u",
                        "title": "t",
                        "encrypted_index": "i",
                        "cited_text": "c",
                    }
                ],
            },
            {"type": "tool_use", "id": "toolu_1", "name": "get", "input": {"q": "x"}},
        ],
        "stop_reason": "stop_sequence",
        "stop_sequence": "END",
        "container": {"id": "c1", "expires_at": "2030"},
        "usage": {"input_tokens": 3, "output_tokens": 4, "service_tier": "standard"},
    }
    resp = am.decode_response(body)
    c = resp.choices[0]
    assert c.parts[0] == ir.ReasoningPart(text="hmm", signature="SIG", provider="anthropic")
    assert c.parts[1] == ir.RedactedReasoningPart(data="RED", provider="anthropic")
    assert c.parts[3] == ir.ProviderPart(provider="anthropic", block=web)
    assert c.text == "Found it" and c.parts[4].citations  # type: ignore[union-attr]
    assert c.tool_calls == [ir.ToolCallPart(id="toolu_1", name="get", arguments='{"q":"x"}')]
    assert (c.finish_reason, c.provider_specific) == ("stop", {"stop_sequence": "END"})
    assert resp.service_tier == "standard" and resp.provider_specific == {
        "container": {"id": "c1", "expires_at": "2030"}
    }
    again = am.encode_response(resp)
    assert (
        again["content"] == body["content"]
        and again["stop_sequence"] == "END"
        and again["container"] == body["container"]
    )


# ---------------------------------------------------------------- server side: decoding client requests


def test_decode_request_reads_every_field() -> None:
    body = {
        "model": "claude-sonnet-4-5",
        "max_tokens": 1000,
        "system": [{"type": "text", "text": "sys", "cache_control": EPHEMERAL}],
        "messages": [
            {"role": "user", "content": "hi"},
            {
                "role": "assistant",
                "content": [
                    {"type": "thinking", "thinking": "t", "signature": "s"},
                    {"type": "tool_use", "id": "toolu_1", "name": "get", "input": {"q": 1}},
                ],
            },
            {
                "role": "user",
                "content": [
                    {
                        "type": "tool_result",
                        "tool_use_id": "toolu_1",
                        "content": [{"type": "text", "text": "r"}],
                        "is_error": True,
                    },
                    {"type": "text", "text": "go on"},
                ],
            },
        ],
        "tools": [
            {"name": "get", "input_schema": {"type": "object"}, "strict": True},
            {"type": "web_search_20250305", "name": "web_search"},
        ],
        "tool_choice": {"type": "any", "disable_parallel_tool_use": True},
        "thinking": {"type": "enabled", "budget_tokens": 2048},
        "output_config": {"format": {"type": "json_schema", "schema": SCHEMA}, "effort": "high"},
        "temperature": 1,
        "top_k": 3,
        "stop_sequences": ["END"],
        "metadata": {"user_id": "u"},
        "stream": True,
        "service_tier": "auto",
    }
    req = am.decode_request(body)
    assert [m.role for m in req.messages] == ["system", "user", "assistant", "tool", "user"]
    assert req.messages[0].content == [text("sys", cache_control=EPHEMERAL)]
    assert req.messages[3].content == [ir.ToolResultPart(tool_call_id="toolu_1", content=[text("r")], is_error=True)]
    assert req.tools is not None and req.tools[0].strict is True and req.tools[1].builtin == body["tools"][1]
    assert req.tool_choice == ir.ToolChoice(mode="required", parallel=False) and req.parallel_tool_calls is False
    assert (req.thinking_budget, req.max_tokens, req.temperature, req.top_k) == (2048, 1000, 1.0, 3)
    assert req.response_format == ir.ResponseFormat(type="json_schema", schema=SCHEMA)
    assert (req.stop, req.user, req.stream, req.include_usage) == (["END"], "u", True, True)
    assert req.extra == {"service_tier": "auto", "output_config": {"effort": "high"}}


# fmt: off
@pytest.mark.parametrize(
    ("patch", "param"),
    [
        ({"model": None}, "model"),
        ({"max_tokens": None}, "max_tokens"),
        ({"max_tokens": -1}, "max_tokens"),
        ({"max_tokens": "10"}, "max_tokens"),
        ({"messages": "hi"}, "messages"),
        ({"messages": [{"role": "system", "content": "x"}]}, "messages[0].role"),
        ({"messages": [{"role": "user", "content": 3}]}, "messages[0].content"),
        ({"messages": [{"role": "user", "content": [{"text": "no type"}]}]}, "messages[0].content[0]"),
        ({"messages": [{"role": "user", "content": [{"type": "text", "text": 1}]}]}, "messages[0].content[0].text"),
        ({"messages": [{"role": "user", "content": [{"type": "image", "source": "x"}]}]}, "messages[0].content[0].source"),
        ({"messages": [{"role": "assistant", "content": [{"type": "tool_use", "id": "a", "name": "b", "input": []}]}]}, "messages[0].content[0].input"),
        ({"system": 5}, "system"),
        ({"system": [{"type": "image", "source": {"type": "url", "url": "u"}}]}, "system"),
        ({"tools": {}}, "tools"),
        ({"tools": [{"name": "x"}]}, "tools[0].input_schema"),
        ({"tools": [{"input_schema": {}}]}, "tools[0].name"),
        ({"tool_choice": "auto"}, "tool_choice"),
        ({"tool_choice": {"type": "tool"}}, "tool_choice.name"),
        ({"thinking": {"type": "enabled", "budget_tokens": 10}}, "thinking.budget_tokens"),
        ({"thinking": {"type": "sometimes"}}, "thinking.type"),
        ({"output_config": {"format": {"type": "json_object"}}}, "output_config.format"),
        ({"temperature": "hot"}, "temperature"),
        ({"stop_sequences": "END"}, "stop_sequences"),
        ({"metadata": {"user_id": 5}}, "metadata"),
        ({"stream": "yes"}, "stream"),
        ({"frequency_penalty": 1}, "frequency_penalty"),
    ],
)
def test_decode_request_names_the_bad_field(patch: dict[str, Any], param: str) -> None:
    body = {"model": "claude-sonnet-4-5", "max_tokens": 10, "messages": [{"role": "user", "content": "hi"}]} | patch
    with pytest.raises(errors.BadRequestError) as ei:
        am.decode_request(body)
    assert ei.value.param == param and ei.value.status_code == 400
    assert param in str(ei.value)


def test_decode_request_rejects_non_object() -> None:
    with pytest.raises(errors.BadRequestError):
        am.decode_request([])  # type: ignore[arg-type]


# ---------------------------------------------------------------- errors

ERR = '{{"type":"error","error":{{"type":"{t}","message":"{m}"}},"request_id":"req_1"}}'


# fmt: off
@pytest.mark.parametrize(
    ("status", "etype", "message", "cls"),
    [
        (400, "invalid_request_error", "prompt is too long: 3333404 tokens > 200000 maximum", errors.ContextWindowExceededError),
        (400, "invalid_request_error", "messages.0: bad", errors.BadRequestError),
        (401, "authentication_error", "invalid x-api-key", errors.AuthenticationError),
        (403, "permission_error", "no access", errors.PermissionDeniedError),
        (404, "not_found_error", "model: nope", errors.NotFoundError),
        (413, "request_too_large", "Request exceeds the maximum allowed number of bytes.", errors.BadRequestError),
        (429, "rate_limit_error", "slow down", errors.RateLimitError),
        (500, "api_error", "Internal server error", errors.InternalServerError),
        (529, "overloaded_error", "Overloaded", errors.ServiceUnavailableError),
        # an error event inside a 200 stream: the type says which status it stands for
        (200, "overloaded_error", "Overloaded", errors.ServiceUnavailableError),
        (200, "rate_limit_error", "slow", errors.RateLimitError),
        (200, "invalid_request_error", "prompt is too long: 1 > 0", errors.ContextWindowExceededError),
    ],
)
def test_error_classes(status: int, etype: str, message: str, cls: type[errors.APIStatusError]) -> None:
    exc = am.decode_error(
        status,
        ERR.format(t=etype, m=message).encode(),
        {"retry-after": "7", "x-should-retry": "true"},
        provider="anthropic",
        model="m",
    )
    assert type(exc) is cls
    assert message in str(exc) and exc.type == etype and exc.provider == "anthropic"
    assert (exc.retry_after, exc.should_retry) == (7.0, True)
    assert exc.status_code == (status if status >= 400 else am_status(etype))
    # and back again, as the anthropic SDK reads it
    st_code, body = am.encode_error(exc)
    assert st_code == exc.status_code and body == {"type": "error", "error": {"type": etype, "message": exc.message}}


def am_status(etype: str) -> int:
    from llmswitch.dialects.anthropic_errors import STATUS_FOR_TYPE

    return STATUS_FOR_TYPE[etype]


def test_error_bodies_that_are_not_anthropic_json() -> None:
    exc = am.decode_error(502, b"<html>Bad Gateway</html>", provider="anthropic")
    assert isinstance(exc, errors.InternalServerError) and "Bad Gateway" in str(exc)
    assert am.decode_error(503, b"", provider="anthropic").status_code == 503


# fmt: off
@pytest.mark.parametrize(
    ("exc", "status", "etype"),
    [
        (errors.BadRequestError("bad", status_code=400), 400, "invalid_request_error"),
        (errors.ServiceUnavailableError("busy", status_code=503), 503, "overloaded_error"),
        (errors.RateLimitError("slow", status_code=429, error_type="rate_limit_exceeded"), 429, "rate_limit_error"),
        (errors.APITimeoutError("late"), 504, "timeout_error"),
        (errors.APIConnectionError("down"), 502, "api_error"),
        (RuntimeError("secret internals"), 500, "api_error"),
    ],
)
def test_encode_error(exc: BaseException, status: int, etype: str) -> None:
    got_status, body = am.encode_error(exc)
    assert (got_status, body["type"], body["error"]["type"]) == (status, "error", etype)
    assert "secret" not in body["error"]["message"]


# ---------------------------------------------------------------- recorded traffic


def fixtures(folder: str = "anthropic") -> list[Path]:
    return sorted(p for p in (RECORDED / folder).glob("*.json") if not p.stem.startswith("message_batch"))


def normal_form(parts: list[ir.Part], finish: Any, usage: ir.Usage | None) -> dict[str, Any]:
    t = "".join(p.text for p in parts if isinstance(p, ir.TextPart))
    r = "".join(p.text for p in parts if isinstance(p, ir.ReasoningPart))
    calls = [
        {"name": p.name, "arguments": json.loads(p.arguments or "{}")} for p in parts if isinstance(p, ir.ToolCallPart)
    ]
    u = usage or ir.Usage()
    return {
        "content": t or None,
        "reasoning": r or None,
        "tool_calls": calls,
        "finish_reason": finish,
        "usage": {
            "prompt": u.input_tokens,
            "completion": u.output_tokens,
            "cached": u.cache_read_tokens,
            "reasoning": u.reasoning_tokens,
        },
    }


def collect(events: list[ir.StreamEvent]) -> dict[str, Any]:
    """Stream events folded into the same normal form (usage: the latest value wins)."""
    parts: list[ir.Part] = []
    calls: dict[int, list[str]] = {}
    finish, usage = None, None
    for e in events:
        if e.text:
            parts.append(text(e.text))
        if e.reasoning:
            parts.append(ir.ReasoningPart(text=e.reasoning))
        for d in e.tool_calls or ():
            slot = calls.setdefault(d.index, ["", "", ""])
            slot[0] += d.id or ""
            slot[1] += d.name or ""
            slot[2] += d.arguments
        finish = e.finish_reason or finish
        usage = e.usage or usage
    parts += [ir.ToolCallPart(id=i, name=n, arguments=a) for i, n, a in (calls[k] for k in sorted(calls))]
    return normal_form(parts, finish, usage)


def decode_stream(raw: bytes, cuts: list[int] = ()) -> list[ir.StreamEvent]:  # type: ignore[assignment]
    d = StreamDecoder(provider="anthropic", model="m")
    out: list[ir.StreamEvent] = []
    bounds = [0, *sorted(c % (len(raw) + 1) for c in cuts), len(raw)]
    for a, b in itertools.pairwise(bounds):
        out += d.feed(raw[a:b])
    return out + d.close()


def check_against_expect(got: dict[str, Any], want: dict[str, Any]) -> None:
    for k in ("content", "reasoning", "tool_calls", "finish_reason"):
        assert got[k] == (want[k] or ([] if k == "tool_calls" else None)), k
    for k in ("prompt", "completion", "cached"):
        assert got["usage"][k] == want["usage"][k], k


@pytest.mark.parametrize("path", fixtures(), ids=lambda p: p.stem)
def test_recorded_fixture(path: Path) -> None:
    fx = json.loads(path.read_text())
    resp, body = fx["response"], fx["response"]["body_text"]
    stream = bool((fx["request"].get("body") or {}).get("stream"))
    if resp["status"] >= 400:
        exc = am.decode_error(resp["status"], body.encode(), resp["headers"], provider="anthropic", model="m")
        assert expect.expected_error("anthropic", fx) in [c.__name__ for c in type(exc).__mro__]
        assert expect.error_message(fx)[:25].lower() in str(exc).lower()
        assert exc.should_retry is False  # x-should-retry: false is honoured
        return
    want = expect.anthropic(body, stream)
    if stream:
        for cuts in ([], [1, 7, 100, 101, 2000], list(range(0, len(body), 13))):
            check_against_expect(collect(decode_stream(body.encode(), cuts)), want)
    else:
        r = am.decode_response(json.loads(body))
        check_against_expect(normal_form(r.choices[0].parts, r.choices[0].finish_reason, r.usage), want)
    # the request the SDK recorded reads back as the same request after one trip through us
    sent = fx["request"]["body"]
    req = am.decode_request(sent)
    again = am.encode_request(req, model=sent["model"])
    assert_valid(again)
    assert am.decode_request(again) == req


def test_recorded_signature_survives() -> None:
    fx = json.loads((RECORDED / "anthropic" / "thinking_stream.json").read_text())
    sigs = [e.reasoning_signature for e in decode_stream(fx["response"]["body_text"].encode()) if e.reasoning_signature]
    assert len(sigs) == 1 and sigs[0].startswith("E")


def test_recorded_batch_results() -> None:
    fx = json.loads((RECORDED / "anthropic" / "message_batch_results.json").read_text())
    lines = [json.loads(x) for x in fx["response"]["body_text"].splitlines() if x.strip()]
    texts = [am.decode_response(x["result"]["message"]).choices[0].text for x in lines]
    assert texts == ["4", "Jupiter"]


def _eventstream_payloads(raw: bytes) -> list[bytes]:
    """Payloads of an AWS event stream (prelude: total length, headers length, CRC)."""
    out, pos = [], 0
    while pos < len(raw):
        total, headers_len = struct.unpack(">II", raw[pos : pos + 8])
        out.append(raw[pos + 12 + headers_len : pos + total - 4])
        pos += total
    return out


def test_recorded_bedrock_anthropic_bodies() -> None:
    fx = json.loads((RECORDED / "bedrock" / "invoke_anthropic_nonstream.json").read_text())
    r = am.decode_response(json.loads(fx["response"]["body_text"]))
    check_against_expect(
        normal_form(r.choices[0].parts, r.choices[0].finish_reason, r.usage),
        expect.anthropic(fx["response"]["body_text"], False),
    )
    fx = json.loads((RECORDED / "bedrock" / "invoke_anthropic_stream.json").read_text())
    inner = [
        base64.b64decode(json.loads(p)["bytes"])
        for p in _eventstream_payloads(base64.b64decode(fx["response"]["body_text"]))
    ]
    sse = "".join(f"event: {json.loads(e)['type']}\ndata: {e.decode()}\n\n" for e in inner)
    got = collect(decode_stream(sse.encode()))
    check_against_expect(got, expect.anthropic(sse, True))
    assert got["content"]


def test_stream_error_event_raises() -> None:
    raw = b'event: message_start\ndata: {"type":"message_start","message":{"id":"m","model":"c","usage":{"input_tokens":1,"output_tokens":1}}}\n\n'
    raw += b'event: error\ndata: {"type":"error","error":{"type":"overloaded_error","message":"Overloaded"}}\n\n'
    d = StreamDecoder(provider="anthropic", model="c")
    # what came before the error in the same read is handed out first; the error follows
    assert [e.role for e in d.feed(raw)] == ["assistant"]
    with pytest.raises(errors.ServiceUnavailableError, match="Overloaded") as ei:
        d.close()
    assert ei.value.status_code == 529
    with pytest.raises(errors.ServiceUnavailableError):
        StreamDecoder().feed(raw.split(b"\n\n", 1)[1])  # nothing before it: raised at once


def test_stream_server_tool_blocks_and_citations() -> None:
    events = [
        {
            "type": "message_start",
            "message": {"id": "msg_1", "model": "c", "usage": {"input_tokens": 5, "output_tokens": 1}},
        },
        {
            "type": "content_block_start",
            "index": 0,
            "content_block": {"type": "server_tool_use", "id": "srvtoolu_1", "name": "web_search", "input": {}},
        },
        {
            "type": "content_block_delta",
            "index": 0,
            "delta": {"type": "input_json_delta", "partial_json": '{"query": '},
        },
        {"type": "content_block_delta", "index": 0, "delta": {"type": "input_json_delta", "partial_json": '"cats"}'}},
        {"type": "content_block_stop", "index": 0},
        {
            "type": "content_block_start",
            "index": 1,
            "content_block": {"type": "web_search_tool_result", "tool_use_id": "srvtoolu_1", "content": []},
        },
        {"type": "content_block_stop", "index": 1},
        {"type": "content_block_start", "index": 2, "content_block": {"type": "text", "text": ""}},
        {
            "type": "content_block_delta",
            "index": 2,
            "delta": {"type": "citations_delta", "citation": {"type": "web_search_result_location", "url": "u"}},
        },
        {"type": "content_block_delta", "index": 2, "delta": {"type": "text_delta", "text": "Cats."}},
        {"type": "content_block_stop", "index": 2},
        {
            "type": "content_block_start",
            "index": 3,
            "content_block": {"type": "tool_use", "id": "toolu_2", "name": "get", "input": {}},
        },
        {"type": "content_block_delta", "index": 3, "delta": {"type": "input_json_delta", "partial_json": "{}"}},
        {"type": "content_block_stop", "index": 3},
        {
            "type": "message_delta",
            "delta": {"stop_reason": "tool_use", "stop_sequence": None},
            "usage": {"output_tokens": 30},
        },
        {"type": "message_stop"},
    ]
    raw = "".join(f"event: {e['type']}\ndata: {json.dumps(e)}\n\n" for e in events).encode()
    got = decode_stream(raw)
    parts = [e.provider_part for e in got if e.provider_part]
    assert parts[0] == ir.ProviderPart(
        provider="anthropic",
        block={"type": "server_tool_use", "id": "srvtoolu_1", "name": "web_search", "input": {"query": "cats"}},
    )
    assert parts[1].block["type"] == "web_search_tool_result"
    # the citation is told at the end of its block, over the block's text ("Cats.", at 0-5)
    native = {"type": "web_search_result_location", "url": "u"}
    assert [e.citations for e in got if e.citations] == [[ir.Citation(url="u", start=0, end=5, native=native)]]
    # tool index counts tool_use blocks only, not Anthropic's block index
    assert [d.index for e in got for d in e.tool_calls or ()] == [0, 0]
    last = got[-1]
    assert (last.finish_reason, last.usage) == ("tool_calls", ir.Usage(input_tokens=5, output_tokens=30))


def test_stream_answer_tool_streams_as_text() -> None:
    events = [
        {
            "type": "message_start",
            "message": {"id": "msg_1", "model": "c", "usage": {"input_tokens": 5, "output_tokens": 1}},
        },
        {
            "type": "content_block_start",
            "index": 0,
            "content_block": {"type": "tool_use", "id": "toolu_1", "name": am.RESPONSE_TOOL, "input": {}},
        },
        {"type": "content_block_delta", "index": 0, "delta": {"type": "input_json_delta", "partial_json": '{"city"'}},
        {
            "type": "content_block_delta",
            "index": 0,
            "delta": {"type": "input_json_delta", "partial_json": ': "Paris"}'},
        },
        {"type": "content_block_stop", "index": 0},
        {"type": "message_delta", "delta": {"stop_reason": "tool_use"}, "usage": {"output_tokens": 9}},
    ]
    got = collect(decode_stream("".join(f"data: {json.dumps(e)}\n\n" for e in events).encode()))
    assert (got["content"], got["tool_calls"], got["finish_reason"]) == ('{"city": "Paris"}', [], "stop")


# ---------------------------------------------------------------- round-trip properties

words = st.from_regex(r"[A-Za-z0-9](?:[A-Za-z0-9 .,!?']{0,30}[A-Za-z0-9.!?])?", fullmatch=True)
ids = st.from_regex(r"[A-Za-z0-9_]{1,16}", fullmatch=True)
names = st.from_regex(r"[a-z][a-z_]{0,12}", fullmatch=True)
caches = st.sampled_from([None, {"type": "ephemeral"}, {"type": "ephemeral", "ttl": "1h"}])
json_args = st.dictionaries(names, st.one_of(st.integers(-99, 99), words, st.booleans()), max_size=3).map(
    lambda d: msgspec.json.encode(d).decode()
)
images = st.builds(
    ir.ImagePart,
    data=st.sampled_from(["iVBORw0KGgo", "/9j/4AAQSk"]),
    media_type=st.sampled_from(["image/png", "image/jpeg"]),
    cache_control=caches,
)
docs = st.one_of(
    st.builds(
        ir.FilePart, data=st.just("JVBERi0xLjQ="), media_type=st.just("application/pdf"), filename=st.none() | words
    ),
    st.builds(lambda t: ir.FilePart(data=base64.b64encode(t.encode()).decode(), media_type="text/plain"), words),
    st.builds(ir.FilePart, url=st.just("https://example.com/a.pdf")),
)
texts = st.builds(ir.TextPart, text=words, cache_control=caches)
server_block = st.builds(
    lambda i, q: ir.ProviderPart(
        provider="anthropic",
        block={"type": "server_tool_use", "id": f"srvtoolu_{i}", "name": "web_search", "input": {"query": q}},
    ),
    ids,
    words,
)


@st.composite
def assistant_turn(draw: st.DrawFn) -> ir.Message:
    parts: list[ir.Part] = []
    if draw(st.booleans()):
        parts.append(
            draw(
                st.one_of(
                    st.builds(ir.ReasoningPart, text=words, signature=ids, provider=st.just("anthropic")),
                    st.builds(ir.RedactedReasoningPart, data=ids, provider=st.just("anthropic")),
                )
            )
        )
    parts += draw(st.lists(st.one_of(texts, server_block), max_size=2))
    parts += draw(
        st.lists(
            st.builds(ir.ToolCallPart, id=ids, name=names, arguments=json_args, cache_control=caches),
            max_size=3,
            unique_by=lambda c: c.id,
        )
    )
    assume(parts)
    return ir.Message(role="assistant", content=parts)


@st.composite
def conversations(draw: st.DrawFn) -> list[ir.Message]:
    msgs: list[ir.Message] = []
    if draw(st.booleans()):
        msgs.append(ir.Message(role="system", content=draw(st.lists(texts, min_size=1, max_size=2))))
    for _ in range(draw(st.integers(1, 3))):
        last = msgs[-1] if msgs and msgs[-1].role == "assistant" else None
        if last is not None and last.tool_calls:
            for call in last.tool_calls:
                content = draw(st.lists(st.one_of(texts, images), max_size=2))
                msgs.append(
                    ir.Message(
                        role="tool",
                        content=[
                            ir.ToolResultPart(
                                tool_call_id=call.id,
                                content=content,
                                is_error=draw(st.booleans()),
                                cache_control=draw(caches),
                            )
                        ],
                    )
                )
            extra = draw(st.lists(texts, max_size=1))
            if extra:
                msgs.append(ir.Message(role="user", content=extra))
        else:
            msgs.append(
                ir.Message(
                    role="user", content=draw(st.lists(st.one_of(texts, texts, images, docs), min_size=1, max_size=3))
                )
            )
        msgs.append(draw(assistant_turn()))
    if draw(st.booleans()):
        msgs.pop()  # end on the user's turn, or on an assistant prefill
    return msgs


@st.composite
def requests(draw: st.DrawFn) -> ir.Request:
    model = draw(st.sampled_from(["claude-sonnet-4-5", "claude-sonnet-4-20250514"]))
    msgs = draw(conversations())
    assume(any(m.role != "system" for m in msgs))
    tools = draw(
        st.lists(
            st.builds(
                ir.Tool,
                name=names,
                description=st.none() | words,
                parameters=st.just({"type": "object", "properties": {"q": {"type": "string"}}}),
                cache_control=caches,
            ),
            max_size=2,
            unique_by=lambda t: t.name,
        )
    )
    if draw(st.booleans()):
        tools.append(
            ir.Tool(name="web_search", builtin={"type": "web_search_20250305", "name": "web_search", "max_uses": 2})
        )
    budget = draw(st.sampled_from([None, 0, 1024, 3000]))
    req = ir.Request(
        model=model,
        messages=msgs,
        tools=tools or None,
        max_tokens=draw(st.integers(4000, 64000)),
        thinking_budget=budget,
    )
    if tools:
        mode = draw(st.sampled_from(["auto", "required", "none", "tool", None]))
        parallel = draw(st.sampled_from([None, False])) if mode not in (None, "none") else None
        if mode is not None:
            req.tool_choice = ir.ToolChoice(
                mode=mode, name=tools[0].name if mode == "tool" else None, parallel=parallel
            )  # type: ignore[arg-type]
            req.parallel_tool_calls = parallel
    if not budget:
        req.temperature = draw(st.none() | st.sampled_from([0.0, 0.5, 1.0]))
        req.top_k = draw(st.none() | st.integers(1, 50))
        if req.temperature is None or model == "claude-sonnet-4-20250514":
            req.top_p = draw(st.none() | st.sampled_from([0.5, 0.9]))
    if model == "claude-sonnet-4-5" and draw(st.booleans()):
        req.response_format = ir.ResponseFormat(type="json_schema", schema=SCHEMA)
    req.stop = draw(st.none() | st.lists(words, min_size=1, max_size=2))
    req.user = draw(st.none() | ids)
    req.stream = req.include_usage = draw(st.booleans())
    req.extra = draw(st.sampled_from([None, {"service_tier": "auto"}]))
    return req


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(requests())
def test_request_round_trip(req: ir.Request) -> None:
    body = am.encode_request(req, model=req.model)
    assert_valid(body)
    assert am.decode_request(body) == req


def _usage(base: int, read: int, w5: int, w1: int, out: int, thinking: int | None) -> ir.Usage:
    return ir.Usage(
        input_tokens=base + read + w5 + w1,
        output_tokens=out,
        cache_read_tokens=read,
        cache_write_tokens=w5 + w1,
        cache_write_5m_tokens=w5,
        cache_write_1h_tokens=w1,
        reasoning_tokens=thinking or 0,
        reasoning_reported=thinking is not None,
    )


small = st.integers(0, 5000)
usages = st.builds(_usage, small, small, small, small, small, st.none() | small)


@st.composite
def responses(draw: st.DrawFn) -> ir.Response:
    parts = draw(
        st.lists(
            st.one_of(
                st.builds(ir.ReasoningPart, text=words, signature=ids, provider=st.just("anthropic")),
                st.builds(ir.RedactedReasoningPart, data=ids, provider=st.just("anthropic")),
                st.builds(
                    ir.TextPart,
                    text=words,
                    citations=st.none()
                    | st.just(
                        [
                            ir.Citation(
                                title="d",
                                cited_text="c",
                                provider="anthropic",
                                native={
                                    "type": "char_location",
                                    "cited_text": "c",
                                    "document_index": 0,
                                    "document_title": "d",
                                    "start_char_index": 0,
                                    "end_char_index": 1,
                                },
                            )
                        ]
                    ),
                ),
                st.builds(ir.ToolCallPart, id=ids, name=names, arguments=json_args),
                server_block,
            ),
            max_size=5,
        )
    )
    native = draw(
        st.sampled_from(
            [
                "end_turn",
                "stop_sequence",
                "pause_turn",
                "max_tokens",
                "tool_use",
                "refusal",
                "model_context_window_exceeded",
            ]
        )
    )
    stop_seq = draw(words) if native == "stop_sequence" else None
    return ir.Response(
        id=draw(ids),
        model=draw(names),
        choices=[
            ir.Choice(
                parts=parts,
                finish_reason=am.finish_reason_in(native),
                native_finish_reason=native,
                provider_specific={"stop_sequence": stop_seq} if stop_seq else None,
            )
        ],
        usage=draw(usages),
        service_tier=draw(st.none() | st.just("standard")),
    )


@settings(max_examples=300, deadline=None)
@given(responses())
def test_response_round_trip(resp: ir.Response) -> None:
    assert am.decode_response(am.encode_response(resp)) == resp


@st.composite
def event_streams(draw: st.DrawFn) -> list[ir.StreamEvent]:
    evs: list[ir.StreamEvent] = [ir.StreamEvent(role="assistant")]
    for _ in range(draw(st.integers(0, 2))):
        kind = draw(st.sampled_from(["thinking", "redacted", "text"]))
        if kind == "thinking":
            evs += [ir.StreamEvent(reasoning=w) for w in draw(st.lists(words, min_size=1, max_size=3))]
            evs.append(ir.StreamEvent(reasoning_signature=draw(ids)))
        elif kind == "redacted":
            evs.append(ir.StreamEvent(redacted_reasoning=draw(ids)))
        else:
            evs += [ir.StreamEvent(text=w) for w in draw(st.lists(words, min_size=1, max_size=3))]
    evs += [ir.StreamEvent(text=w) for w in draw(st.lists(words, max_size=3))]
    for k in range(draw(st.integers(0, 3))):
        args = draw(json_args)
        cuts = sorted(draw(st.lists(st.integers(0, len(args)), max_size=3)))
        frags = [args[a:b] for a, b in zip([0, *cuts], [*cuts, len(args)], strict=False)]
        evs.append(
            ir.StreamEvent(
                tool_calls=[ir.ToolCallDelta(index=k, id=f"toolu_{draw(ids)}", name=draw(names), arguments=frags[0])]
            )
        )
        evs += [ir.StreamEvent(tool_calls=[ir.ToolCallDelta(index=k, arguments=f)]) for f in frags[1:] if f]
    native = draw(st.sampled_from([None, "end_turn", "max_tokens", "tool_use", "refusal", "stop_sequence"]))
    finish = am.finish_reason_in(native) or draw(st.sampled_from(["stop", "length", "tool_calls", "content_filter"]))
    evs.append(ir.StreamEvent(finish_reason=finish, native_finish_reason=native))
    evs.append(ir.StreamEvent(usage=draw(usages)))
    return evs


def fold(events: list[ir.StreamEvent]) -> dict[str, Any]:
    calls: dict[int, list[str]] = {}
    out: dict[str, Any] = {"text": "", "reasoning": "", "signatures": [], "redacted": [], "finish": None, "usage": None}
    for e in events:
        out["text"] += e.text or ""
        out["reasoning"] += e.reasoning or ""
        if e.reasoning_signature:
            out["signatures"].append(e.reasoning_signature)
        if e.redacted_reasoning:
            out["redacted"].append(e.redacted_reasoning)
        for d in e.tool_calls or ():
            slot = calls.setdefault(d.index, ["", "", ""])
            slot[0] += d.id or ""
            slot[1] += d.name or ""
            slot[2] += d.arguments
        out["finish"] = e.finish_reason or out["finish"]
        out["usage"] = e.usage or out["usage"]
    out["calls"] = [calls[k] for k in sorted(calls)]
    return out


@settings(max_examples=300, deadline=None)
@given(event_streams(), st.lists(st.integers(0, 10**6), max_size=12))
def test_stream_round_trip(events: list[ir.StreamEvent], cuts: list[int]) -> None:
    enc = StreamEncoder(ir.StreamMeta(id="msg_1", model="claude-x"), include_usage=True)
    raw = b"".join(enc.encode(e) for e in events) + enc.close()
    got = decode_stream(raw, cuts)
    assert fold(got) == fold(events)
    assert got[0].role == "assistant"


def test_stream_encoder_layout_is_anthropics() -> None:
    enc = StreamEncoder(ir.StreamMeta(id="msg_1", model="claude-x"), include_usage=False)
    raw = (
        b"".join(
            enc.encode(e)
            for e in [
                ir.StreamEvent(role="assistant", usage=ir.Usage(input_tokens=10, output_tokens=1)),
                ir.StreamEvent(reasoning="hm"),
                ir.StreamEvent(reasoning_signature="SIG"),
                ir.StreamEvent(text="Hi"),
                ir.StreamEvent(tool_calls=[ir.ToolCallDelta(index=0, id="toolu_1", name="get", arguments="")]),
                ir.StreamEvent(tool_calls=[ir.ToolCallDelta(index=0, arguments='{"q":1}')]),
                ir.StreamEvent(finish_reason="tool_calls"),
                ir.StreamEvent(usage=ir.Usage(input_tokens=10, output_tokens=20)),
            ]
        )
        + enc.close()
    )
    blocks = [b for b in raw.decode().split("\n\n") if b]
    names_seen = [b.split("\n")[0].removeprefix("event: ") for b in blocks]
    assert names_seen == [
        "message_start", "ping",
        "content_block_start", "content_block_delta", "content_block_delta", "content_block_stop",
        "content_block_start", "content_block_delta", "content_block_stop",
        "content_block_start", "content_block_delta", "content_block_stop",
        "message_delta", "message_stop",
    ]  # fmt: skip
    payloads = [json.loads(b.split("\ndata: ", 1)[1]) for b in blocks]
    assert payloads[0]["message"]["usage"]["input_tokens"] == 10
    assert payloads[-2] == {
        "type": "message_delta",
        "delta": {"stop_reason": "tool_use", "stop_sequence": None},
        "usage": am.map_usage_out(ir.Usage(input_tokens=10, output_tokens=20)),
    }
    # the official SDK reads it back whole
    assert [p["index"] for p in payloads if p["type"] == "content_block_start"] == [0, 1, 2]


def test_stream_encoder_error_event_and_empty_stream() -> None:
    enc = StreamEncoder(ir.StreamMeta(id="m", model="c"), include_usage=True)
    raw = enc.close()
    assert b"message_start" in raw and b'"stop_reason":"end_turn"' in raw
    err = enc.error(errors.RateLimitError("slow", status_code=429))
    with pytest.raises(errors.RateLimitError, match="slow"):
        StreamDecoder().feed(err)


def test_anthropic_sdk_accumulates_our_stream() -> None:
    """The official anthropic SDK's own stream accumulator reads what the encoder writes."""
    from anthropic.lib.streaming._messages import accumulate_event
    from anthropic.types import RawMessageStreamEvent
    from pydantic import TypeAdapter

    enc = StreamEncoder(ir.StreamMeta(id="msg_1", model="claude-x"), include_usage=True)
    events = [
        ir.StreamEvent(reasoning="think"),
        ir.StreamEvent(reasoning_signature="SIG"),
        ir.StreamEvent(text="Hello"),
        ir.StreamEvent(tool_calls=[ir.ToolCallDelta(index=0, id="toolu_1", name="get", arguments='{"q":')]),
        ir.StreamEvent(tool_calls=[ir.ToolCallDelta(index=0, arguments=' "x"}')]),
        ir.StreamEvent(
            finish_reason="tool_calls", usage=ir.Usage(input_tokens=12, output_tokens=7, cache_read_tokens=2)
        ),
    ]
    raw = b"".join(enc.encode(e) for e in events) + enc.close()
    adapter: TypeAdapter[Any] = TypeAdapter(RawMessageStreamEvent)
    snapshot = None
    bufs: dict[int, bytes] = {}
    for block in raw.decode().split("\n\n"):
        if block and not block.startswith("event: ping"):
            snapshot = accumulate_event(
                event=adapter.validate_json(block.split("\ndata: ", 1)[1]), current_snapshot=snapshot, json_bufs=bufs
            )
    assert snapshot is not None
    assert [b.type for b in snapshot.content] == ["thinking", "text", "tool_use"]
    assert snapshot.content[0].signature == "SIG" and snapshot.content[2].input == {"q": "x"}
    assert (snapshot.stop_reason, snapshot.usage.input_tokens, snapshot.usage.output_tokens) == ("tool_use", 10, 7)


def test_beta_parameters_name_their_header() -> None:
    extra = {"context_management": {"edits": []}, "mcp_servers": [{"type": "url", "url": "https://m.test", "name": "m"}]}
    body = am.encode_request(request(user(text("hi")), extra=extra), model="claude-sonnet-4-5")
    assert am.required_betas(body) == ["context-management-2025-06-27", "mcp-client-2025-04-04"]


@pytest.mark.parametrize("cuts", [[], [40], [150, 151], list(range(0, 400, 11)), list(range(400))])
def test_events_before_an_error_do_not_depend_on_splits(cuts: list[int]) -> None:
    raw = (
        b'event: message_start\ndata: {"type":"message_start","message":{"id":"m","model":"c","usage":{"output_tokens":1}}}\n\n'
        b'event: content_block_delta\ndata: {"type":"content_block_delta","index":0,"delta":{"type":"text_delta","text":"Hel"}}\n\n'
        b'event: error\ndata: {"type":"error","error":{"type":"api_error","message":"boom"}}\n\n'
    )
    d, seen = StreamDecoder(), []
    bounds = [0, *sorted(c for c in cuts if c < len(raw)), len(raw)]
    with pytest.raises(errors.InternalServerError, match="boom"):
        for a, b in itertools.pairwise(bounds):
            seen += d.feed(raw[a:b])
        seen += d.close()
    assert "".join(e.text or "" for e in seen) == "Hel"


def test_an_answer_through_the_response_tool_is_an_end_turn_for_an_anthropic_caller() -> None:
    upstream = {
        "id": "msg_1",
        "type": "message",
        "role": "assistant",
        "model": "claude-sonnet-4-20250514",
        "content": [{"type": "tool_use", "id": "toolu_1", "name": "llmswitch_response", "input": {"city": "Lisbon"}}],
        "stop_reason": "tool_use",
        "usage": {"input_tokens": 5, "output_tokens": 7},
    }
    resp = am.decode_response(upstream)
    assert resp.choices[0].finish_reason == "stop"
    out = am.encode_response(resp)
    assert out["stop_reason"] == "end_turn"
    assert out["content"] == [{"type": "text", "text": '{"city":"Lisbon"}'}]
