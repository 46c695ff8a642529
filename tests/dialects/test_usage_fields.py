"""Usage fields beyond plain token counts, in each dialect: decoded into normal form and written back.

Gemini's ``toolUsePromptTokenCount`` and per-modality details, Anthropic's ``server_tool_use`` (billed web
searches and fetches), ``service_tier`` and ``inference_geo``, OpenAI's ``audio_tokens`` and predicted-output
counts. The wire shapes follow the providers' published schemas (../shared/specs) and docs.
"""

from __future__ import annotations

import json
from functools import cache
from pathlib import Path
from typing import Any

import pytest
from jsonschema import Draft202012Validator

from llmswitch import ir
from llmswitch.dialects import anthropic_content, anthropic_messages, gemini_response, openai_chat
from llmswitch.dialects.anthropic_stream import StreamDecoder as AnthropicStreamDecoder
from llmswitch.dialects.anthropic_stream import StreamEncoder as AnthropicStreamEncoder
from llmswitch.dialects.gemini_stream import StreamDecoder as GeminiStreamDecoder
from llmswitch.dialects.openai_chat_stream import StreamDecoder as OpenAIStreamDecoder

SPECS = Path(__file__).resolve().parents[3] / "shared" / "specs"

# ---------------------------------------------------------------- decoding: wire usage -> normal form

OPENAI_AUDIO = {
    "prompt_tokens": 120,
    "completion_tokens": 80,
    "total_tokens": 200,
    "prompt_tokens_details": {"cached_tokens": 0, "audio_tokens": 45},
    "completion_tokens_details": {
        "reasoning_tokens": 0,
        "audio_tokens": 60,
        "accepted_prediction_tokens": 9,
        "rejected_prediction_tokens": 11,
    },
}
ANTHROPIC_SEARCH = {
    "input_tokens": 2000,
    "cache_creation_input_tokens": 0,
    "cache_read_input_tokens": 500,
    "output_tokens": 300,
    "server_tool_use": {"web_search_requests": 3, "web_fetch_requests": 2},
    "service_tier": "priority",
    "inference_geo": "us",
}
GEMINI_TOOL_USE = {
    "promptTokenCount": 100,
    "candidatesTokenCount": 30,
    "toolUsePromptTokenCount": 40,
    "thoughtsTokenCount": 5,
    "cachedContentTokenCount": 20,
    "totalTokenCount": 175,
    "promptTokensDetails": [{"modality": "TEXT", "tokenCount": 70}, {"modality": "AUDIO", "tokenCount": 30}],
    "candidatesTokensDetails": [{"modality": "TEXT", "tokenCount": 30}],
    "cacheTokensDetails": [{"modality": "TEXT", "tokenCount": 20}],
    "toolUsePromptTokensDetails": [{"modality": "TEXT", "tokenCount": 40}],
    "serviceTier": "standard",
}

DECODED: list[tuple[str, Any, dict[str, Any]]] = [
    (
        "openai audio and predictions",
        lambda: openai_chat.map_usage_in(OPENAI_AUDIO),
        {
            "input_tokens": 120,
            "output_tokens": 80,  # rejected prediction tokens are inside completion_tokens already
            "input_audio_tokens": 45,
            "output_audio_tokens": 60,
            "accepted_prediction_tokens": 9,
            "rejected_prediction_tokens": 11,
        },
    ),
    (
        "anthropic server tools, tier and region",
        lambda: anthropic_content.map_usage_in(ANTHROPIC_SEARCH),
        {
            "input_tokens": 2500,
            "cache_read_tokens": 500,
            "output_tokens": 300,
            "web_search_requests": 3,
            "web_fetch_requests": 2,
            "service_tier": "priority",
            "inference_geo": "us",
        },
    ),
    (
        "gemini tool-use prompt and modalities",
        lambda: gemini_response.map_usage_in(GEMINI_TOOL_USE),
        {
            "input_tokens": 140,  # the tool-use prompt is input: 100 + 40
            "output_tokens": 35,
            "reasoning_tokens": 5,
            "cache_read_tokens": 20,
            "tool_use_prompt_tokens": 40,
            "input_audio_tokens": 30,
            "output_audio_tokens": 0,
            "input_modalities": {"TEXT": 70, "AUDIO": 30},
            "output_modalities": {"TEXT": 30},
            "cache_modalities": {"TEXT": 20},
            "tool_use_modalities": {"TEXT": 40},
        },
    ),
    (
        "gemini audio answer",
        lambda: gemini_response.map_usage_in(
            {
                "promptTokenCount": 8,
                "candidatesTokenCount": 50,
                "candidatesTokensDetails": [{"modality": "AUDIO", "tokenCount": 50}],
            }
        ),
        {"input_tokens": 8, "output_tokens": 50, "output_audio_tokens": 50, "output_modalities": {"AUDIO": 50}},
    ),
    (
        "litellm server_tool_use on openai-shaped usage",
        lambda: openai_chat.map_usage_in(
            {"prompt_tokens": 10, "completion_tokens": 2, "server_tool_use": {"web_search_requests": 4}}
        ),
        {"input_tokens": 10, "output_tokens": 2, "web_search_requests": 4},
    ),
]


@pytest.mark.parametrize(("name", "decode", "want"), DECODED, ids=[d[0] for d in DECODED])
def test_usage_fields_are_decoded_into_normal_form(name: str, decode: Any, want: dict[str, Any]) -> None:
    u = decode()
    assert {k: getattr(u, k) for k in want} == want


# ---------------------------------------------------------------- encoding: normal form -> each client's usage

RICH = ir.Usage(
    input_tokens=140,
    output_tokens=80,
    cache_read_tokens=20,
    reasoning_tokens=5,
    reasoning_reported=True,
    input_audio_tokens=30,
    output_audio_tokens=25,
    accepted_prediction_tokens=9,
    rejected_prediction_tokens=11,
    tool_use_prompt_tokens=40,
    web_search_requests=3,
    web_fetch_requests=1,
    service_tier="priority",
    inference_geo="us",
)

ENCODED: list[tuple[str, Any, dict[str, Any]]] = [
    (
        "openai",
        openai_chat.map_usage_out,
        {
            "prompt_tokens": 140,
            "completion_tokens": 80,
            "total_tokens": 220,
            "prompt_tokens_details": {"cached_tokens": 20, "audio_tokens": 30},
            "completion_tokens_details": {
                "reasoning_tokens": 5,
                "audio_tokens": 25,
                "accepted_prediction_tokens": 9,
                "rejected_prediction_tokens": 11,
            },
            "server_tool_use": {"web_search_requests": 3, "web_fetch_requests": 1},
        },
    ),
    (
        "anthropic",
        anthropic_content.map_usage_out,
        {
            "input_tokens": 120,
            "cache_creation_input_tokens": 0,
            "cache_read_input_tokens": 20,
            "cache_creation": {"ephemeral_5m_input_tokens": 0, "ephemeral_1h_input_tokens": 0},
            "output_tokens": 80,
            "output_tokens_details": {"thinking_tokens": 5},
            "server_tool_use": {"web_search_requests": 3, "web_fetch_requests": 1},
            "service_tier": "priority",
            "inference_geo": "us",
        },
    ),
    (
        "gemini",
        gemini_response.map_usage_out,
        {
            "promptTokenCount": 100,  # Gemini counts the tool-use prompt apart
            "toolUsePromptTokenCount": 40,
            "candidatesTokenCount": 75,
            "thoughtsTokenCount": 5,
            "cachedContentTokenCount": 20,
            "totalTokenCount": 220,
            # OpenAI's audio split, as Gemini's modalities: the rest is text
            "promptTokensDetails": [{"modality": "TEXT", "tokenCount": 70}, {"modality": "AUDIO", "tokenCount": 30}],
            "candidatesTokensDetails": [
                {"modality": "TEXT", "tokenCount": 50},
                {"modality": "AUDIO", "tokenCount": 25},
            ],
            "serviceTier": "priority",
        },
    ),
]


@pytest.mark.parametrize(("name", "encode", "want"), ENCODED, ids=[e[0] for e in ENCODED])
def test_usage_fields_are_written_in_each_clients_dialect(name: str, encode: Any, want: dict[str, Any]) -> None:
    assert encode(RICH) == want


@cache
def _schema(spec: str, name: str) -> Draft202012Validator:
    doc = json.loads((SPECS / spec).read_text())
    return Draft202012Validator({"$ref": f"#/components/schemas/{name}", "components": doc["components"]})


def test_written_usage_validates_against_the_published_schemas() -> None:
    _schema("openai-openapi.json", "CompletionUsage").validate(openai_chat.map_usage_out(RICH))
    _schema("anthropic-openapi.json", "Usage").validate(anthropic_content.map_usage_out(RICH))


def test_an_openai_service_tier_is_not_written_where_anthropic_or_gemini_do_not_allow_it() -> None:
    out = anthropic_content.map_usage_out(ir.Usage(input_tokens=1, service_tier="default"))
    assert "service_tier" not in out  # the schema's enum: standard, priority, batch
    assert "serviceTier" not in gemini_response.map_usage_out(ir.Usage(input_tokens=1, service_tier="default"))
    resp = ir.Response(id="r", model="m", choices=[ir.Choice()], usage=ir.Usage(input_tokens=1), service_tier="default")
    body = anthropic_messages.encode_response(resp)
    assert "service_tier" not in body["usage"]


@pytest.mark.parametrize(
    ("decode", "encode", "wire"),
    [
        (openai_chat.map_usage_in, openai_chat.map_usage_out, OPENAI_AUDIO),
        (anthropic_content.map_usage_in, anthropic_content.map_usage_out, ANTHROPIC_SEARCH),
        (gemini_response.map_usage_in, gemini_response.map_usage_out, GEMINI_TOOL_USE),
    ],
    ids=["openai", "anthropic", "gemini"],
)
def test_same_dialect_usage_comes_back_as_it_went_in(decode: Any, encode: Any, wire: dict[str, Any]) -> None:
    again = encode(decode(wire))
    for key, value in wire.items():
        assert again[key] == value, key


# ---------------------------------------------------------------- streams: the same fields on the last usage


def _sse(events: list[tuple[str | None, dict[str, Any]]]) -> bytes:
    return b"".join(
        (f"event: {name}\n" if name else "").encode() + b"data: " + json.dumps(data).encode() + b"\n\n"
        for name, data in events
    )


def _last_usage(decoder: Any, raw: bytes) -> ir.Usage:
    events = decoder.feed(raw) + decoder.close()
    usages = [e.usage for e in events if e.usage is not None]
    assert usages, events
    last: ir.Usage = usages[-1]
    return last


def test_streamed_openai_usage_carries_audio_and_predictions() -> None:
    head = {"id": "c", "object": "chat.completion.chunk", "created": 1, "model": "gpt-4o-audio-preview"}
    raw = (
        _sse(
            [
                (None, head | {"choices": [{"index": 0, "delta": {"role": "assistant", "content": "hi"}}]}),
                (None, head | {"choices": [{"index": 0, "delta": {}, "finish_reason": "stop"}]}),
                (None, head | {"choices": [], "usage": OPENAI_AUDIO}),
            ]
        )
        + b"data: [DONE]\n\n"
    )
    u = _last_usage(OpenAIStreamDecoder(), raw)
    assert (u.input_audio_tokens, u.output_audio_tokens) == (45, 60)
    assert (u.accepted_prediction_tokens, u.rejected_prediction_tokens) == (9, 11)


def test_streamed_anthropic_usage_carries_server_tools_and_region() -> None:
    start_usage = {"input_tokens": 2000, "output_tokens": 1, "service_tier": "priority", "inference_geo": "us"}
    message = {"id": "msg_1", "type": "message", "role": "assistant", "model": "claude-sonnet-4-5", "content": []}
    raw = _sse(
        [
            ("message_start", {"type": "message_start", "message": message | {"usage": start_usage}}),
            (
                "content_block_start",
                {"type": "content_block_start", "index": 0, "content_block": {"type": "text", "text": ""}},
            ),
            (
                "content_block_delta",
                {"type": "content_block_delta", "index": 0, "delta": {"type": "text_delta", "text": "x"}},
            ),
            ("content_block_stop", {"type": "content_block_stop", "index": 0}),
            (
                "message_delta",
                {
                    "type": "message_delta",
                    "delta": {"stop_reason": "end_turn", "stop_sequence": None},
                    "usage": {
                        "output_tokens": 300,
                        "server_tool_use": {"web_search_requests": 3, "web_fetch_requests": 0},
                    },
                },
            ),
            ("message_stop", {"type": "message_stop"}),
        ]
    )
    u = _last_usage(AnthropicStreamDecoder(), raw)
    assert (u.web_search_requests, u.service_tier, u.inference_geo, u.output_tokens) == (3, "priority", "us", 300)
    # and an Anthropic client of the stream gets them back: the tier and region on message_start (where
    # Anthropic tells them), the billed searches on message_delta, each as the schema of its event allows
    enc = AnthropicStreamEncoder(ir.StreamMeta(id="msg_1", model="m"))
    out = b"".join(enc.encode(e) for e in AnthropicStreamDecoder().feed(raw)) + enc.close()
    events = [json.loads(line[6:]) for line in out.decode().splitlines() if line.startswith("data: ")]
    start = next(e for e in events if e["type"] == "message_start")["message"]["usage"]
    assert (start["service_tier"], start["inference_geo"]) == ("priority", "us")
    final = [e for e in events if e["type"] == "message_delta"][-1]["usage"]
    assert final["server_tool_use"] == {"web_search_requests": 3, "web_fetch_requests": 0}
    assert "service_tier" not in final and "inference_geo" not in final


def test_streamed_gemini_usage_counts_the_tool_use_prompt_as_input() -> None:
    chunk = {
        "candidates": [{"content": {"role": "model", "parts": [{"text": "x"}]}, "finishReason": "STOP", "index": 0}]
    }
    raw = _sse([(None, chunk | {"usageMetadata": GEMINI_TOOL_USE, "modelVersion": "gemini-2.5-flash"})])
    u = _last_usage(GeminiStreamDecoder(), raw)
    assert (u.input_tokens, u.tool_use_prompt_tokens, u.input_modalities) == (140, 40, {"TEXT": 70, "AUDIO": 30})
