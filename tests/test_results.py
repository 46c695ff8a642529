"""The SDK's result objects: attribute and dict access, and model_dump() that is OpenAI's JSON."""

from __future__ import annotations

import json
import string
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from openai.types import CreateEmbeddingResponse
from openai.types.chat import ChatCompletion, ChatCompletionChunk

from llmswitch import convert, ir, results
from llmswitch.dialects import openai_chat
from llmswitch.dialects.openai_chat_stream import StreamEncoder

texts = st.text(st.characters(blacklist_categories=("Cs",)), min_size=1, max_size=12)
names = st.text(string.ascii_letters + string.digits, min_size=1, max_size=10)
OPENAI_FINISH = ["stop", "length", "tool_calls", "content_filter"]


def sdk_dump(model: Any) -> dict[str, Any]:
    """What the openai SDK makes of a dict: only the fields that were there, extras kept."""
    out: dict[str, Any] = model.model_dump(exclude_unset=True)
    return out


@st.composite
def usages(draw: st.DrawFn) -> ir.Usage:
    inp, out = draw(st.integers(0, 10**6)), draw(st.integers(0, 10**5))
    read = draw(st.integers(0, inp))
    w5, w1 = draw(st.integers(0, inp - read)), 0
    if draw(st.booleans()):
        w1 = draw(st.integers(0, inp - read - w5))
    return ir.Usage(
        input_tokens=inp,
        output_tokens=out,
        cache_read_tokens=read,
        cache_write_tokens=w5 + w1,
        cache_write_5m_tokens=w5,
        cache_write_1h_tokens=w1,
        reasoning_tokens=draw(st.integers(0, out)),
    )


@st.composite
def responses(draw: st.DrawFn) -> ir.Response:
    choices = []
    for i in range(draw(st.integers(1, 3))):
        parts: list[ir.Part] = []
        if draw(st.booleans()):
            parts.append(ir.ReasoningPart(draw(texts), signature=draw(st.none() | names)))
        if draw(st.booleans()):
            parts.append(ir.TextPart(draw(texts)))
        choices.append(
            ir.Choice(
                index=i,
                parts=parts,
                finish_reason=draw(st.sampled_from(OPENAI_FINISH)),
                provider_specific=draw(st.none() | texts.map(lambda t: {"refusal": t})),
            )
        )
    return ir.Response(
        id=f"chatcmpl-{draw(names)}",
        model=draw(names),
        created=draw(st.integers(1, 2**33)),
        choices=choices,
        usage=draw(st.none() | usages()),
        system_fingerprint=draw(st.none() | names),
    )


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(responses())
def test_model_response_dump_is_a_chat_completion(resp: ir.Response) -> None:
    r = convert.model_response(resp)
    dump = r.model_dump()
    assert sdk_dump(ChatCompletion.model_validate(dump)) == dump
    # the same completion as the dialect's own JSON, field for field
    wire = ChatCompletion.model_validate(openai_chat.encode_response(resp))
    assert ChatCompletion.model_validate(dump).model_dump(exclude_none=True) == wire.model_dump(exclude_none=True)
    assert json.loads(r.model_dump_json()) == dump
    for i, c in enumerate(r.choices):
        assert dump["choices"][i]["message"]["content"] == c.message.content  # present, even when None
        assert "finish_reason" in dump["choices"][i]


def test_tool_call_dump_carries_its_type() -> None:
    resp = ir.Response(
        id="c",
        model="m",
        created=1,
        choices=[ir.Choice(parts=[ir.ToolCallPart(id="call_1", name="f", arguments="{}")], finish_reason="tool_calls")],
    )
    dump = convert.model_response(resp).model_dump()
    assert dump["choices"][0]["message"]["tool_calls"][0]["type"] == "function"
    ChatCompletion.model_validate(dump)


def _full_response() -> results.ModelResponse:
    parts: list[ir.Part] = [
        ir.ReasoningPart("think", signature="sig"),
        ir.TextPart("answer"),
        ir.ToolCallPart(id="call_1", name="lookup", arguments='{"q": 1}', provider_specific={"thought_signature": "t"}),
    ]
    usage = ir.Usage(
        input_tokens=100,
        output_tokens=20,
        cache_read_tokens=60,
        cache_write_tokens=30,
        cache_write_5m_tokens=10,
        cache_write_1h_tokens=20,
        reasoning_tokens=5,
    )
    return convert.model_response(
        ir.Response(
            id="chatcmpl-1",
            model="gpt-4o",
            created=1700000000,
            choices=[ir.Choice(parts=parts, finish_reason="tool_calls")],
            usage=usage,
            system_fingerprint="fp_1",
        )
    )


def test_attribute_access() -> None:
    r = _full_response()
    m = r.choices[0].message
    assert (r.id, r.object, r.created, r.model, r.system_fingerprint) == (
        "chatcmpl-1",
        "chat.completion",
        1700000000,
        "gpt-4o",
        "fp_1",
    )
    assert (m.role, m.content, m.reasoning_content) == ("assistant", "answer", "think")
    assert m.thinking_blocks == [{"type": "thinking", "thinking": "think", "signature": "sig"}]
    call = m.tool_calls[0]  # type: ignore[index]
    assert (call.id, call.type, call.function.name, call.function.arguments) == (
        "call_1",
        "function",
        "lookup",
        '{"q": 1}',
    )
    assert call.provider_specific_fields == {"thought_signature": "t"}
    assert r.choices[0].finish_reason == "tool_calls"


def test_usage_details_are_present() -> None:
    u = _full_response().usage
    assert u is not None
    assert (u.prompt_tokens, u.completion_tokens, u.total_tokens) == (100, 20, 120)
    assert u.prompt_tokens_details is not None and u.completion_tokens_details is not None
    assert (u.prompt_tokens_details.cached_tokens, u.prompt_tokens_details.cache_creation_tokens) == (60, 30)
    assert u.completion_tokens_details.reasoning_tokens == 5
    assert u.cache_creation == {"ephemeral_5m_input_tokens": 10, "ephemeral_1h_input_tokens": 20}
    plain = convert.usage(ir.Usage(input_tokens=3, output_tokens=4))
    assert plain.model_dump() == {
        "prompt_tokens": 3,
        "completion_tokens": 4,
        "total_tokens": 7,
        "prompt_tokens_details": {"cached_tokens": 0},
        "completion_tokens_details": {"reasoning_tokens": 0},
    }


def test_dict_style_access() -> None:
    r = _full_response()
    assert r["choices"][0]["message"]["content"] == "answer"
    assert r["usage"]["prompt_tokens_details"]["cached_tokens"] == 60
    assert r["choices"][0]["message"]["tool_calls"][0]["function"]["name"] == "lookup"
    assert r.get("model") == "gpt-4o"
    assert r.get("nope", 5) == 5
    assert "usage" in r
    assert "service_tier" not in r  # unset
    with pytest.raises(KeyError):
        r["nope"]


def test_directly_built_results_dump_their_object_type() -> None:
    msg = results.Message(role="assistant", content=None)
    r = results.ModelResponse(
        id="x", created=0, model="m", choices=[results.Choices(index=0, message=msg, finish_reason=None)]
    )
    assert r.model_dump() == {
        "id": "x",
        "created": 0,
        "model": "m",
        "object": "chat.completion",
        "choices": [{"index": 0, "message": {"content": None, "role": "assistant"}, "finish_reason": None}],
    }
    chunk = results.ModelResponseStream(id="x", created=0, model="m", choices=[])
    assert chunk.model_dump()["object"] == "chat.completion.chunk"


# ---------------------------------------------------------------- stream chunks


@st.composite
def stream_events(draw: st.DrawFn) -> list[ir.StreamEvent]:
    events = [ir.StreamEvent(choice=draw(st.integers(0, 1)))]
    for _ in range(draw(st.integers(0, 6))):
        kind = draw(st.sampled_from(["text", "reasoning", "call", "args", "signature", "finish"]))
        c = draw(st.integers(0, 1))
        if kind == "text":
            events.append(ir.StreamEvent(choice=c, text=draw(texts)))
        elif kind == "reasoning":
            events.append(ir.StreamEvent(choice=c, reasoning=draw(texts)))
        elif kind == "call":
            delta = ir.ToolCallDelta(
                index=draw(st.integers(0, 2)), id=f"call_{draw(names)}", name=draw(names), arguments=""
            )
            events.append(ir.StreamEvent(choice=c, tool_calls=[delta]))
        elif kind == "args":
            events.append(
                ir.StreamEvent(
                    choice=c, tool_calls=[ir.ToolCallDelta(index=draw(st.integers(0, 2)), arguments=draw(texts))]
                )
            )
        elif kind == "signature":
            events.append(ir.StreamEvent(choice=c, reasoning_signature=draw(names)))
        else:
            events.append(ir.StreamEvent(choice=c, finish_reason=draw(st.sampled_from(OPENAI_FINISH))))
    events.append(ir.StreamEvent(usage=draw(usages())))
    return events


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(stream_events())
def test_stream_chunks_dump_as_chat_completion_chunks(events: list[ir.StreamEvent]) -> None:
    enc = StreamEncoder(
        ir.StreamMeta(id="chatcmpl-s", model="m", created=1, system_fingerprint="fp"), include_usage=True
    )
    wire = [c for c in (enc.chunk(ev) for ev in events) if c is not None]
    tail = enc.usage_chunk()
    assert tail is not None
    for raw in [*wire, tail]:
        chunk = convert.stream_chunk(raw)
        dump = chunk.model_dump()
        assert sdk_dump(ChatCompletionChunk.model_validate(dump)) == dump
        assert ChatCompletionChunk.model_validate(dump).model_dump(
            exclude_none=True
        ) == ChatCompletionChunk.model_validate(raw).model_dump(exclude_none=True)
    last = convert.stream_chunk(tail)
    assert last.choices == []
    assert last.usage is not None
    assert last.usage.total_tokens == last.usage.prompt_tokens + last.usage.completion_tokens


def test_chunk_attribute_and_dict_access() -> None:
    chunk = convert.stream_chunk(
        {
            "id": "c",
            "object": "chat.completion.chunk",
            "created": 1,
            "model": "m",
            "choices": [
                {
                    "index": 0,
                    "delta": {
                        "role": "assistant",
                        "tool_calls": [
                            {"index": 0, "id": "call_1", "type": "function", "function": {"name": "f", "arguments": ""}}
                        ],
                    },
                    "logprobs": None,
                    "finish_reason": None,
                }
            ],
        }
    )
    d = chunk.choices[0].delta
    assert (d.role, d.content, d.tool_calls[0].function.name) == ("assistant", None, "f")  # type: ignore[index,union-attr]
    assert chunk["choices"][0]["delta"]["tool_calls"][0]["id"] == "call_1"
    assert chunk.choices[0].finish_reason is None
    assert "finish_reason" in chunk.model_dump()["choices"][0]


# ---------------------------------------------------------------- embeddings


def test_embedding_response() -> None:
    resp = convert.embedding_response(
        ir.EmbeddingResponse(
            model="text-embedding-3-small",
            data=[ir.Embedding(index=0, vector=[0.25, -1.0]), ir.Embedding(index=1, vector=[0.5, 0.0])],
            usage=ir.Usage(input_tokens=8),
        )
    )
    assert resp.data[1].embedding == [0.5, 0.0]
    assert resp["data"][0]["embedding"] == [0.25, -1.0]
    assert (resp.usage.prompt_tokens, resp.usage.total_tokens) == (8, 8)
    dump = resp.model_dump()
    assert dump == {
        "object": "list",
        "model": "text-embedding-3-small",
        "data": [
            {"object": "embedding", "index": 0, "embedding": [0.25, -1.0]},
            {"object": "embedding", "index": 1, "embedding": [0.5, 0.0]},
        ],
        "usage": {"prompt_tokens": 8, "total_tokens": 8},
    }
    assert CreateEmbeddingResponse.model_validate(dump).model_dump() == dump
