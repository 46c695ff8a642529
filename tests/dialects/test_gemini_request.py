"""Gemini request bodies: IR -> generationConfig / tools / toolConfig, and client bodies -> IR, validated."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from llmswitch import ir
from llmswitch.dialects import gemini
from llmswitch.errors import BadRequestError

SHARED = Path(__file__).resolve().parents[2].parent / "shared"
RECORDED = SHARED / "fixtures" / "recorded"


def fixture(name: str, provider: str = "gemini") -> dict[str, Any]:
    return json.loads((RECORDED / provider / f"{name}.json").read_text())


def user(text: str) -> ir.Message:
    return ir.Message(role="user", content=[ir.TextPart(text=text)])


def request(*messages: ir.Message, **kw: Any) -> ir.Request:
    return ir.Request(model="gemini-2.5-flash", messages=list(messages), **kw)


def encode(req: ir.Request, model: str = "gemini-2.5-flash") -> dict[str, Any]:
    return gemini.encode_request(req, model=model)


SAMPLING = [
    ({"temperature": 0.2}, {"temperature": 0.2}),
    ({"top_p": 0.9}, {"topP": 0.9}),
    ({"top_k": 40}, {"topK": 40}),
    ({"max_tokens": 100}, {"maxOutputTokens": 100}),
    ({"stop": ["x", "y"]}, {"stopSequences": ["x", "y"]}),
    ({"seed": 7}, {"seed": 7}),
    ({"n": 2}, {"candidateCount": 2}),
    ({"presence_penalty": 0.5}, {"presencePenalty": 0.5}),
    ({"frequency_penalty": -0.5}, {"frequencyPenalty": -0.5}),
    ({"logprobs": True, "top_logprobs": 3}, {"responseLogprobs": True, "logprobs": 3}),
    ({"response_format": ir.ResponseFormat(type="json_object")}, {"responseMimeType": "application/json"}),
    ({"response_format": ir.ResponseFormat(type="text")}, None),
    (
        {
            "response_format": ir.ResponseFormat(
                type="json_schema",
                schema={"type": "object", "properties": {"b": {"type": "string"}, "a": {"type": ["integer", "null"]}}},
            )
        },
        {
            "responseMimeType": "application/json",
            "responseSchema": {
                "type": "OBJECT",
                "properties": {"b": {"type": "STRING"}, "a": {"type": "INTEGER", "nullable": True}},
                "propertyOrdering": ["b", "a"],
            },
        },
    ),
    ({"reasoning_effort": "none"}, {"thinkingConfig": {"thinkingBudget": 0}}),
    ({"reasoning_effort": "low"}, {"thinkingConfig": {"thinkingBudget": 1024, "includeThoughts": True}}),
    ({"reasoning_effort": "medium"}, {"thinkingConfig": {"thinkingBudget": 8192, "includeThoughts": True}}),
    ({"reasoning_effort": "high"}, {"thinkingConfig": {"thinkingBudget": 24576, "includeThoughts": True}}),
    (
        {"thinking_budget": 6400, "reasoning_effort": "low"},
        {"thinkingConfig": {"thinkingBudget": 6400, "includeThoughts": True}},
    ),
    ({"thinking_budget": -1}, {"thinkingConfig": {"thinkingBudget": -1, "includeThoughts": True}}),
    ({"user": "u", "metadata": {"a": 1}, "logit_bias": {"1": 2.0}, "parallel_tool_calls": False}, None),
]


@pytest.mark.parametrize(("fields", "want"), SAMPLING)
def test_generation_config(fields: dict[str, Any], want: dict[str, Any] | None) -> None:
    body = encode(request(user("hi"), **fields))
    assert body.get("generationConfig") == want
    assert set(body) <= {"contents", "generationConfig"}


@pytest.mark.parametrize(
    ("effort", "level"),
    [("none", "MINIMAL"), ("minimal", "MINIMAL"), ("low", "LOW"), ("medium", "MEDIUM"), ("high", "HIGH")],
)
def test_gemini_3_takes_thinking_levels(effort: str, level: str) -> None:
    body = encode(request(user("hi"), reasoning_effort=effort), model="gemini-3-pro-preview")
    assert body["generationConfig"]["thinkingConfig"] == {"thinkingLevel": level, "includeThoughts": True}


def test_extra_passes_through_and_merges_generation_config() -> None:
    extra = {
        "safetySettings": [{"category": "HARM_CATEGORY_HARASSMENT", "threshold": "BLOCK_NONE"}],
        "generationConfig": {"responseModalities": ["TEXT"], "thinkingConfig": {"includeThoughts": False}},
    }
    body = encode(request(user("hi"), temperature=1.0, reasoning_effort="low", extra=extra))
    assert body["safetySettings"] == extra["safetySettings"]
    assert body["generationConfig"] == {
        "temperature": 1.0,
        "responseModalities": ["TEXT"],
        "thinkingConfig": {"thinkingBudget": 1024, "includeThoughts": False},
    }


TOOL_CHOICES = [
    (ir.ToolChoice(mode="auto"), {"mode": "AUTO"}),
    (ir.ToolChoice(mode="required"), {"mode": "ANY"}),
    (ir.ToolChoice(mode="none"), {"mode": "NONE"}),
    (ir.ToolChoice(mode="tool", name="get"), {"mode": "ANY", "allowedFunctionNames": ["get"]}),
]


@pytest.mark.parametrize(("choice", "want"), TOOL_CHOICES)
def test_tool_choice(choice: ir.ToolChoice, want: dict[str, Any]) -> None:
    tools = [ir.Tool(name="get", parameters={"type": "object", "properties": {"q": {"type": "string"}}})]
    body = encode(request(user("hi"), tools=tools, tool_choice=choice))
    assert body["toolConfig"] == {"functionCallingConfig": want}


def test_tools_declarations_schemas_and_builtins() -> None:
    params = {
        "$defs": {"Unit": {"type": "string", "enum": ["c", "f"]}},
        "type": "object",
        "additionalProperties": False,
        "properties": {"city": {"type": "string"}, "unit": {"anyOf": [{"$ref": "#/$defs/Unit"}, {"type": "null"}]}},
        "required": ["city", "unit"],
    }
    tools = [
        ir.Tool(name="weather", description="Weather.", parameters=params),
        ir.Tool(name="now", parameters={"type": "object", "properties": {}}),
        ir.Tool(name="googleSearch", builtin={"googleSearch": {}}),
        ir.Tool(name="codeExecution", builtin={"codeExecution": {}}),
        ir.Tool(name="web_search", builtin={"type": "web_search_20250305", "name": "web_search"}),
    ]
    body = encode(request(user("hi"), tools=tools))
    assert body["tools"] == [
        {
            "functionDeclarations": [
                {
                    "name": "weather",
                    "description": "Weather.",
                    "parameters": {
                        "type": "OBJECT",
                        "properties": {
                            "city": {"type": "STRING"},
                            "unit": {"type": "STRING", "enum": ["c", "f"], "nullable": True},
                        },
                        "required": ["city", "unit"],
                    },
                },
                {"name": "now"},
            ]
        },
        {"googleSearch": {}},
        {"codeExecution": {}},
    ]
    assert "toolConfig" not in body


# ---------------------------------------------------------------- requests the google-genai SDK really sent

REQUESTS = [
    p.stem
    for p in sorted((RECORDED / "gemini").glob("*.json"))
    if "Generate" in json.loads(p.read_text())["request"]["url"]
]


@pytest.mark.parametrize("name", REQUESTS)
def test_recorded_sdk_requests_decode_and_reencode(name: str) -> None:
    sent = fixture(name)["request"]["body"]
    req = gemini.decode_request(sent, model="gemini-2.5-flash")
    body = encode(req)
    assert [c["role"] for c in body["contents"]] == [c["role"] for c in sent["contents"]]
    assert [len(c["parts"]) for c in body["contents"]] == [len(c["parts"]) for c in sent["contents"]]
    for got, want in zip(body["contents"], sent["contents"], strict=True):
        for gp, wp in zip(got["parts"], want["parts"], strict=True):
            assert gp.get("thoughtSignature") == wp.get("thoughtSignature")  # byte for byte, whatever the alphabet
            assert gp.get("functionResponse", {}).get("name") == wp.get("functionResponse", {}).get("name")
    if "thinkingConfig" in json.dumps(sent):
        assert body["generationConfig"]["thinkingConfig"] == {"thinkingBudget": 6400, "includeThoughts": True}
    if sent.get("tools"):
        assert gemini.decode_request(body, model="m").tools == req.tools


# ---------------------------------------------------------------- request body -> IR (server side)

BAD_REQUESTS = [
    ([], "body"),
    ({}, "contents"),
    ({"contents": []}, "contents"),
    ({"contents": ["hi"]}, "contents[0]"),
    ({"contents": [{"role": "assistant", "parts": [{"text": "x"}]}]}, "contents[0].role"),
    ({"contents": [{"role": "user"}]}, "contents[0].parts"),
    ({"contents": [{"parts": [{"bogus": 1}]}]}, "contents[0].parts[0]"),
    ({"contents": [{"parts": [{"text": 5}]}]}, "contents[0].parts[0].text"),
    ({"contents": [{"parts": [{"inlineData": {"data": "AA"}}]}]}, "contents[0].parts[0].inlineData"),
    ({"contents": [{"parts": [{"fileData": {"mimeType": "image/png"}}]}]}, "contents[0].parts[0].fileData.fileUri"),
    (
        {"contents": [{"role": "model", "parts": [{"functionCall": {"args": {}}}]}]},
        "contents[0].parts[0].functionCall.name",
    ),
    ({"contents": [{"parts": [{"functionResponse": {"response": {}}}]}]}, "contents[0].parts[0].functionResponse.name"),
    (
        {"contents": [{"parts": [{"text": "x"}]}], "systemInstruction": {"parts": [{"inlineData": {}}]}},
        "systemInstruction.parts",
    ),
    ({"contents": [{"parts": [{"text": "x"}]}], "tools": {}}, "tools"),
    (
        {"contents": [{"parts": [{"text": "x"}]}], "tools": [{"functionDeclarations": [{"description": "d"}]}]},
        "tools[0].functionDeclarations[0].name",
    ),
    (
        {"contents": [{"parts": [{"text": "x"}]}], "toolConfig": {"functionCallingConfig": {"mode": "SOMETIMES"}}},
        "toolConfig.functionCallingConfig.mode",
    ),
    ({"contents": [{"parts": [{"text": "x"}]}], "generationConfig": []}, "generationConfig"),
    (
        {"contents": [{"parts": [{"text": "x"}]}], "generationConfig": {"temperature": "hot"}},
        "generationConfig.temperature",
    ),
    (
        {"contents": [{"parts": [{"text": "x"}]}], "generationConfig": {"max_output_tokens": 0}},
        "generationConfig.maxOutputTokens",
    ),
    (
        {"contents": [{"parts": [{"text": "x"}]}], "generationConfig": {"stopSequences": "x"}},
        "generationConfig.stopSequences",
    ),
    (
        {"contents": [{"parts": [{"text": "x"}]}], "generationConfig": {"thinkingConfig": {"thinkingBudget": "lots"}}},
        "generationConfig.thinkingConfig.thinkingBudget",
    ),
    (
        {"contents": [{"parts": [{"text": "x"}]}], "generationConfig": {"thinkingConfig": {"thinkingLevel": "MAX"}}},
        "generationConfig.thinkingConfig.thinkingLevel",
    ),
]


@pytest.mark.parametrize(("body", "param"), BAD_REQUESTS)
def test_bad_requests_name_the_field(body: Any, param: str) -> None:
    with pytest.raises(BadRequestError) as e:
        gemini.decode_request(body, model="gemini-2.5-flash")
    assert e.value.param == param
    assert e.value.status_code == 400
    status, err = gemini.encode_error(e.value)
    assert (status, err["error"]["status"]) == (400, "INVALID_ARGUMENT")


def test_decode_request_full() -> None:
    body = {
        "contents": [
            {"role": "user", "parts": [{"text": "hi"}, {"inline_data": {"mime_type": "image/png", "data": "AA"}}]},
            {
                "role": "model",
                "parts": [
                    {"functionCall": {"name": "f", "args": {"a": 1}}},
                    {"functionCall": {"name": "g", "args": {}}},
                ],
            },
            {
                "role": "user",
                "parts": [
                    {"functionResponse": {"name": "g", "response": {"ok": True}}},
                    {"functionResponse": {"name": "f", "response": {"output": "1"}}},
                ],
            },
        ],
        "system_instruction": {"parts": [{"text": "sys"}]},
        "tools": [
            {
                "functionDeclarations": [
                    {"name": "f", "parameters": {"type": "OBJECT", "properties": {"a": {"type": "INTEGER"}}}}
                ]
            },
            {"google_search": {}},
        ],
        "toolConfig": {"functionCallingConfig": {"mode": "ANY", "allowedFunctionNames": ["f"]}},
        "generationConfig": {
            "temperature": 0.5,
            "topK": 40.0,
            "responseMimeType": "application/json",
            "responseModalities": ["TEXT"],
        },
        "safetySettings": [{"category": "HARM_CATEGORY_HATE_SPEECH", "threshold": "BLOCK_NONE"}],
        "cachedContent": "cachedContents/x",
    }
    req = gemini.decode_request(body, model="gemini-2.5-flash", stream=True)
    assert (req.stream, req.include_usage, req.model) == (True, True, "gemini-2.5-flash")
    assert [m.role for m in req.messages] == ["system", "user", "assistant", "tool", "tool"]
    assert req.messages[1].content[1] == ir.ImagePart(data="AA", media_type="image/png")
    f_id, g_id = (c.id for c in req.messages[2].tool_calls)
    results = [m.content[0] for m in req.messages[3:]]
    assert [(r.tool_call_id, r.name, r.text) for r in results if isinstance(r, ir.ToolResultPart)] == [
        (g_id, "g", '{"ok":true}'),
        (f_id, "f", "1"),
    ]
    assert req.tools == [
        ir.Tool(name="f", parameters={"type": "object", "properties": {"a": {"type": "integer"}}}),
        ir.Tool(name="google_search", builtin={"google_search": {}}),
    ]
    assert req.tool_choice == ir.ToolChoice(mode="tool", name="f")
    assert (req.temperature, req.top_k, req.response_format) == (0.5, 40, ir.ResponseFormat(type="json_object"))
    assert req.extra == {
        "safetySettings": body["safetySettings"],
        "cachedContent": "cachedContents/x",
        "generationConfig": {"responseModalities": ["TEXT"]},
    }
    again = encode(req)
    assert again["safetySettings"] == body["safetySettings"] and again["generationConfig"]["responseModalities"] == [
        "TEXT"
    ]


def test_include_thoughts_alone_is_kept() -> None:
    body = {"contents": [{"parts": [{"text": "x"}]}], "generationConfig": {"thinkingConfig": {"includeThoughts": True}}}
    req = gemini.decode_request(body, model="m")
    assert req.thinking_budget is None
    assert encode(req)["generationConfig"] == {"thinkingConfig": {"includeThoughts": True}}
