"""A provider's own request fields survive a trip through the IR back to that provider, and reach the others
mapped where they have a meaning there, else through the parameter policy.

Gemini: a structured ``functionResponse.response``, part-level ``videoMetadata`` / ``mediaResolution``,
``parametersJsonSchema`` / ``responseJsonSchema``, ``toolConfig`` (ANY with several names, VALIDATED,
``retrievalConfig``) and Gemini tools beside ``functionDeclarations``. Anthropic: the tool fields
``input_examples``, ``defer_loading``, ``eager_input_streaming``, ``allowed_callers`` and ``tool_use.caller``.
"""

from __future__ import annotations

import copy
import json
from functools import cache
from pathlib import Path
from typing import Any

import pytest
from jsonschema import Draft202012Validator

from llmswitch import ir
from llmswitch.dialects import anthropic_messages, gemini_request, openai_chat
from llmswitch.dialects.anthropic_stream import StreamDecoder as AnthropicStreamDecoder
from llmswitch.dialects.anthropic_stream import StreamEncoder as AnthropicStreamEncoder
from llmswitch.errors import UnsupportedParamsError
from llmswitch.providers import params

SPECS = Path(__file__).resolve().parents[3] / "shared" / "specs"
WEATHER_SCHEMA = {
    "type": "object",
    "properties": {"city": {"type": "string", "minLength": 1}, "unit": {"enum": ["c", "f"]}},
    "required": ["city"],
    "additionalProperties": False,
}


@cache
def _spec(name: str, schema: str) -> Draft202012Validator:
    doc = json.loads((SPECS / f"{name}-openapi.json").read_text())
    return Draft202012Validator({"$ref": f"#/components/schemas/{schema}", "components": doc["components"]})


def gemini_round_trip(body: dict[str, Any]) -> dict[str, Any]:
    req = gemini_request.decode_request(copy.deepcopy(body), model="gemini-2.5-flash")
    return gemini_request.encode_request(req, model="gemini-2.5-flash")


def gemini_caller(body: dict[str, Any]) -> ir.Request:
    req = gemini_request.decode_request(copy.deepcopy(body), model="gemini-2.5-flash")
    req.client_dialect = req.extra_dialect = "gemini"  # as the gateway's Gemini face marks it
    return req


ASK = {"role": "user", "parts": [{"text": "Weather in Paris?"}]}
CALL = {"role": "model", "parts": [{"functionCall": {"name": "get_weather", "args": {"city": "Paris"}}}]}
DECLS = [{"name": "get_weather", "description": "Weather", "parametersJsonSchema": WEATHER_SCHEMA}]


# ---------------------------------------------------------------- Gemini -> Gemini


def test_a_structured_function_response_goes_back_as_the_object() -> None:
    response = {"temperature": 21, "sky": "clear", "hourly": [20, 21]}
    result = {"role": "user", "parts": [{"functionResponse": {"name": "get_weather", "response": response}}]}
    sent = gemini_round_trip({"contents": [ASK, CALL, result]})
    assert sent["contents"][2]["parts"][0]["functionResponse"]["response"] == response


def test_an_output_wrapped_function_response_keeps_its_wrapper() -> None:
    result = {"role": "user", "parts": [{"functionResponse": {"name": "get_weather", "response": {"output": "21C"}}}]}
    sent = gemini_round_trip({"contents": [ASK, CALL, result]})
    assert sent["contents"][2]["parts"][0]["functionResponse"]["response"] == {"output": "21C"}


def test_part_level_video_metadata_and_media_resolution_are_kept() -> None:
    video = {
        "fileData": {"mimeType": "video/mp4", "fileUri": "https://generativelanguage.googleapis.com/v1beta/files/v1"},
        "videoMetadata": {"startOffset": "10s", "endOffset": "20s", "fps": 2},
        "mediaResolution": {"level": "MEDIA_RESOLUTION_LOW"},
    }
    image = {
        "inlineData": {"mimeType": "image/png", "data": "iVBORw0KGgo="},
        "mediaResolution": {"level": "MEDIA_RESOLUTION_HIGH"},
    }
    sent = gemini_round_trip({"contents": [{"role": "user", "parts": [video, image, {"text": "What happens?"}]}]})
    assert sent["contents"][0]["parts"] == [video, image, {"text": "What happens?"}]


def test_json_schemas_go_back_to_gemini_unchanged() -> None:
    body = {
        "contents": [ASK],
        "tools": [{"functionDeclarations": DECLS}],
        "generationConfig": {"responseMimeType": "application/json", "responseJsonSchema": WEATHER_SCHEMA},
    }
    sent = gemini_round_trip(body)
    assert sent["tools"] == [{"functionDeclarations": DECLS}]
    assert sent["generationConfig"] == {"responseMimeType": "application/json", "responseJsonSchema": WEATHER_SCHEMA}


def test_a_gemini_schema_in_parameters_is_still_gemini_shaped() -> None:
    decl = {"name": "f", "parameters": {"type": "OBJECT", "properties": {"x": {"type": "STRING"}}}}
    sent = gemini_round_trip({"contents": [ASK], "tools": [{"functionDeclarations": [decl]}]})
    assert "parametersJsonSchema" not in sent["tools"][0]["functionDeclarations"][0]


@pytest.mark.parametrize(
    "tool_config",
    [
        {"functionCallingConfig": {"mode": "ANY", "allowedFunctionNames": ["get_weather", "get_time"]}},
        {"functionCallingConfig": {"mode": "VALIDATED"}},
        {"retrievalConfig": {"latLng": {"latitude": 48.85, "longitude": 2.35}, "languageCode": "fr"}},
        {
            "functionCallingConfig": {"mode": "AUTO"},
            "retrievalConfig": {"latLng": {"latitude": 48.85, "longitude": 2.35}},
        },
    ],
    ids=["any-several-names", "validated", "retrieval-config", "auto-and-retrieval"],
)
def test_tool_config_goes_back_to_gemini_unchanged(tool_config: dict[str, Any]) -> None:
    decls = [*DECLS, {"name": "get_time", "parametersJsonSchema": {"type": "object", "properties": {}}}]
    body = {"contents": [ASK], "tools": [{"functionDeclarations": decls}], "toolConfig": tool_config}
    assert gemini_round_trip(body)["toolConfig"] == tool_config


def test_gemini_tools_beside_function_declarations_are_kept() -> None:
    body = {"contents": [ASK], "tools": [{"functionDeclarations": DECLS, "codeExecution": {}, "googleSearch": {}}]}
    tools = gemini_round_trip(body)["tools"]
    assert tools[0] == {"functionDeclarations": DECLS}
    assert {"codeExecution": {}} in tools and {"googleSearch": {}} in tools


# ---------------------------------------------------------------- Gemini -> others


ANY_TWO = {"functionCallingConfig": {"mode": "ANY", "allowedFunctionNames": ["get_weather", "get_time"]}}
TWO_TOOLS = [{"functionDeclarations": [*DECLS, {"name": "get_time", "parametersJsonSchema": {"type": "object"}}]}]


def test_any_with_several_names_is_openai_allowed_tools() -> None:
    req = gemini_caller({"contents": [ASK], "tools": TWO_TOOLS, "toolConfig": ANY_TWO})
    req, dropped = params.apply(req, "openai", model="gpt-4o", deployment="d", dialect="openai_chat")
    assert dropped == ()
    body = openai_chat.encode_request(req, model="gpt-4o")
    assert body["tool_choice"] == {
        "type": "allowed_tools",
        "allowed_tools": {
            "mode": "required",
            "tools": [
                {"type": "function", "function": {"name": "get_weather"}},
                {"type": "function", "function": {"name": "get_time"}},
            ],
        },
    }
    assert body["tools"][0]["function"]["parameters"] == WEATHER_SCHEMA
    assert not list(_spec("openai", "CreateChatCompletionRequest").iter_errors(body))


def test_any_with_several_names_goes_through_the_policy_for_anthropic() -> None:
    req = gemini_caller({"contents": [ASK], "tools": TWO_TOOLS, "toolConfig": ANY_TWO})
    with pytest.raises(UnsupportedParamsError) as exc:
        params.apply(req, "anthropic", model="claude-sonnet-4-5", deployment="d", dialect="anthropic_messages")
    assert exc.value.params == ("toolConfig.functionCallingConfig.allowedFunctionNames",)
    out, dropped = params.apply(
        req, "anthropic", model="claude-sonnet-4-5", deployment="d", drop=True, dialect="anthropic_messages"
    )
    assert dropped == ("toolConfig.functionCallingConfig.allowedFunctionNames",)
    body = anthropic_messages.encode_request(out, model="claude-sonnet-4-5")
    assert body["tool_choice"] == {"type": "any"}
    assert not list(_spec("anthropic", "CreateMessageParams").iter_errors(body))


def test_a_validated_tool_config_goes_through_the_policy_elsewhere() -> None:
    req = gemini_caller(
        {"contents": [ASK], "tools": TWO_TOOLS, "toolConfig": {"functionCallingConfig": {"mode": "VALIDATED"}}}
    )
    with pytest.raises(UnsupportedParamsError) as exc:
        params.apply(req, "openai", model="gpt-4o", deployment="d", dialect="openai_chat")
    assert exc.value.params == ("toolConfig",)


def test_a_structured_function_response_reaches_openai_as_its_json() -> None:
    response = {"temperature": 21}
    result = {"role": "user", "parts": [{"functionResponse": {"name": "get_weather", "response": response}}]}
    req = gemini_caller({"contents": [ASK, CALL, result]})
    tool_msg = openai_chat.encode_request(req, model="gpt-4o")["messages"][2]
    assert tool_msg["role"] == "tool" and json.loads(tool_msg["content"]) == response


# ---------------------------------------------------------------- Anthropic -> Anthropic


def test_anthropic_tool_fields_and_the_callers_of_tool_uses_are_kept() -> None:
    tool = {
        "name": "get_weather",
        "description": "Weather",
        "input_schema": WEATHER_SCHEMA,
        "input_examples": [{"city": "Paris", "unit": "c"}],
        "defer_loading": True,
        "eager_input_streaming": True,
        "allowed_callers": ["code_execution_20250825"],
    }
    caller = {"type": "code_execution_20250825", "tool_id": "srvtoolu_1"}
    use = {"type": "tool_use", "id": "toolu_1", "name": "get_weather", "input": {"city": "Paris"}, "caller": caller}
    result = {"type": "tool_result", "tool_use_id": "toolu_1", "content": "21C"}
    body = {
        "model": "claude-sonnet-4-5",
        "max_tokens": 64,
        "tools": [tool],
        "messages": [
            {"role": "user", "content": "Weather in Paris?"},
            {"role": "assistant", "content": [use]},
            {"role": "user", "content": [result]},
        ],
    }
    sent = anthropic_messages.encode_request(anthropic_messages.decode_request(copy.deepcopy(body)), model="m")
    assert sent["tools"] == [tool]
    assert sent["messages"][1]["content"] == [use]
    # the other providers never see them
    req = anthropic_messages.decode_request(copy.deepcopy(body))
    openai_body = openai_chat.encode_request(req, model="gpt-4o")
    assert "input_examples" not in json.dumps(openai_body) and "caller" not in json.dumps(openai_body["messages"])
    assert "input_examples" not in json.dumps(gemini_request.encode_request(req, model="gemini-2.5-flash"))


def test_a_response_tool_use_keeps_its_caller() -> None:
    caller = {"type": "code_execution_20250825", "tool_id": "srvtoolu_1"}
    resp = anthropic_messages.decode_response(
        {
            "id": "msg_1",
            "type": "message",
            "role": "assistant",
            "model": "claude-sonnet-4-5",
            "content": [{"type": "tool_use", "id": "toolu_1", "name": "f", "input": {}, "caller": caller}],
            "stop_reason": "tool_use",
            "stop_sequence": None,
            "usage": {"input_tokens": 1, "output_tokens": 1},
        }
    )
    assert anthropic_messages.encode_response(resp)["content"][0]["caller"] == caller


def test_a_streamed_tool_use_keeps_its_caller() -> None:
    caller = {"type": "code_execution_20250825", "tool_id": "srvtoolu_1"}
    start = {"type": "tool_use", "id": "toolu_1", "name": "f", "input": {}, "caller": caller}
    message = {"id": "msg_1", "type": "message", "role": "assistant", "model": "m", "content": []}
    raw = b"".join(
        f"event: {name}\ndata: {json.dumps(data)}\n\n".encode()
        for name, data in [
            ("message_start", {"type": "message_start", "message": message | {"usage": {"input_tokens": 1}}}),
            ("content_block_start", {"type": "content_block_start", "index": 0, "content_block": start}),
            (
                "content_block_delta",
                {
                    "type": "content_block_delta",
                    "index": 0,
                    "delta": {"type": "input_json_delta", "partial_json": "{}"},
                },
            ),
            ("content_block_stop", {"type": "content_block_stop", "index": 0}),
        ]
    )
    dec = AnthropicStreamDecoder()
    events = dec.feed(raw)
    enc = AnthropicStreamEncoder(ir.StreamMeta(id="msg_1", model="m"))
    out = b"".join(enc.encode(e) for e in events) + enc.close()
    starts = [
        json.loads(line[6:])
        for line in out.decode().splitlines()
        if line.startswith("data: ") and '"content_block_start"' in line
    ]
    assert starts[0]["content_block"]["caller"] == caller
