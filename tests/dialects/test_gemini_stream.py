"""Gemini streams: alt=sse and JSON-array bytes -> IR events, IR events -> alt=sse bytes, split anywhere."""

from __future__ import annotations

import json
import string
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import msgspec
import pytest
from google.genai import types as genai_types
from hypothesis import given, settings
from hypothesis import strategies as st

from llmswitch import ir
from llmswitch.dialects import gemini
from llmswitch.dialects.gemini_stream import JSONArrayScanner, StreamDecoder, StreamEncoder
from llmswitch.errors import RateLimitError, ServiceUnavailableError

SHARED = Path(__file__).resolve().parents[2].parent / "shared"
RECORDED = SHARED / "fixtures" / "recorded"
sys.path.insert(0, str(SHARED / "conformance"))
import expect  # noqa: E402

META = ir.StreamMeta(id="resp-1", model="gemini-2.5-flash")


@dataclass
class Reading:
    """What a whole stream said, per choice: what a client assembles from the events."""

    text: dict[int, str] = field(default_factory=dict)
    reasoning: dict[int, str] = field(default_factory=dict)
    signatures: dict[int, list[str]] = field(default_factory=dict)
    fragments: dict[int, dict[int, list[Any]]] = field(default_factory=dict)
    finish: dict[int, str | None] = field(default_factory=dict)
    usage: ir.Usage | None = None
    blocks: list[dict[str, Any]] = field(default_factory=list)

    @property
    def calls(self) -> dict[int, list[tuple[str, Any, Any]]]:
        """Tool calls per choice: (name, parsed arguments, provider_specific), fragments joined."""
        return {
            c: [(n, json.loads(a or "{}"), ps) for _, (n, a, ps) in sorted(by_index.items())]
            for c, by_index in self.fragments.items()
        }

    def add(self, ev: ir.StreamEvent) -> None:
        c = ev.choice
        if ev.text:
            self.text[c] = self.text.get(c, "") + ev.text
        if ev.reasoning:
            self.reasoning[c] = self.reasoning.get(c, "") + ev.reasoning
        if ev.reasoning_signature:
            self.signatures.setdefault(c, []).append(ev.reasoning_signature)
        for d in ev.tool_calls or ():
            slot = self.fragments.setdefault(c, {}).setdefault(d.index, ["", "", None])
            slot[0] += d.name or ""
            slot[1] += d.arguments
            slot[2] = slot[2] or d.provider_specific
        if ev.finish_reason:
            self.finish[c] = ev.finish_reason
        if ev.usage is not None:
            self.usage = ev.usage
        if ev.provider_part is not None:
            self.blocks.append(ev.provider_part.block)


def splits(data: bytes, cuts: list[int]) -> list[bytes]:
    points = sorted({min(c, len(data)) for c in cuts})
    out, last = [], 0
    for p in points:
        out.append(data[last:p])
        last = p
    out.append(data[last:])
    return out


def decode_all(chunks: list[bytes]) -> tuple[list[ir.StreamEvent], StreamDecoder]:
    dec = StreamDecoder(provider="gemini", model="gemini-2.5-flash")
    events = [ev for c in chunks for ev in dec.feed(c)]
    return events + dec.close(), dec


def read(events: list[ir.StreamEvent]) -> Reading:
    r = Reading()
    for ev in events:
        r.add(ev)
    return r


def as_expect(r: Reading) -> dict[str, Any]:
    u = r.usage
    return {
        "content": r.text.get(0) or None,
        "reasoning": r.reasoning.get(0) or None,
        "tool_calls": [{"name": n, "arguments": a} for n, a, _ in r.calls.get(0, [])],
        "finish_reason": r.finish.get(0),
        "usage": u
        and {
            "prompt": u.input_tokens,
            "completion": u.output_tokens,
            "cached": u.cache_read_tokens,
            "reasoning": u.reasoning_tokens,
        },
    }


STREAMS = [
    (provider, p.stem)
    for provider in ("gemini", "vertex")
    for p in sorted((RECORDED / provider).glob("*.json"))
    if "streamGenerateContent" in json.loads(p.read_text())["request"]["url"]
]


@settings(max_examples=30, deadline=None)
@given(cuts=st.lists(st.integers(0, 4000), max_size=12))
@pytest.mark.parametrize(("provider", "name"), STREAMS)
def test_recorded_streams_read_as_the_reference_does(provider: str, name: str, cuts: list[int]) -> None:
    body = json.loads((RECORDED / provider / f"{name}.json").read_text())["response"]["body_text"]
    events, dec = decode_all(splits(body.encode(), cuts))
    assert as_expect(read(events)) == expect.gemini(body, True)
    assert dec.meta.id and dec.meta.model == "gemini-2.5-flash"
    assert events[0].role == "assistant"


def test_streamed_and_whole_responses_agree_on_tool_call_ids() -> None:
    body = json.loads((RECORDED / "gemini" / "function_call_stream.json").read_text())["response"]["body_text"]
    events, _ = decode_all([body.encode()])
    streamed = [(d.id, d.name, d.provider_specific) for ev in events for d in ev.tool_calls or ()]
    chunk = json.loads(body.split("data: ", 1)[1].split("\r\n")[0])
    whole = [(c.id, c.name, c.provider_specific) for c in gemini.decode_response(chunk).choices[0].tool_calls]
    assert streamed == whole and len({i for i, _, _ in whole}) == 2


def json_array(chunks: list[dict[str, Any]]) -> bytes:
    # what Gemini sends without alt=sse: a pretty-printed array, objects separated by ",\r\n"
    return ("[" + ",\r\n".join(json.dumps(c, indent=2) for c in chunks) + "]").encode()


ARRAY_CHUNKS = [
    {
        "candidates": [{"content": {"role": "model", "parts": [{"text": 'he said "}{[" and \\'}]}, "index": 0}],
        "usageMetadata": {"promptTokenCount": 4, "candidatesTokenCount": 2, "totalTokenCount": 6},
        "modelVersion": "gemini-2.5-flash",
        "responseId": "arr",
    },
    {
        "candidates": [
            {
                "content": {
                    "role": "model",
                    "parts": [{"functionCall": {"name": "f", "args": {"q": "{x}"}}, "thoughtSignature": "c2ln"}],
                },
                "finishReason": "STOP",
                "index": 0,
            }
        ],
        "usageMetadata": {
            "promptTokenCount": 4,
            "candidatesTokenCount": 9,
            "totalTokenCount": 20,
            "thoughtsTokenCount": 7,
        },
        "modelVersion": "gemini-2.5-flash",
        "responseId": "arr",
    },
]


@settings(max_examples=200, deadline=None)
@given(cuts=st.lists(st.integers(0, 1200), max_size=20))
def test_json_array_stream_split_anywhere(cuts: list[int]) -> None:
    data = json_array(ARRAY_CHUNKS)
    events, dec = decode_all(splits(data, cuts))
    r = read(events)
    assert r.text == {0: 'he said "}{[" and \\'}
    assert r.calls == {0: [("f", {"q": "{x}"}, {"thought_signature": "c2ln"})]}
    assert r.finish == {0: "tool_calls"}
    assert r.usage == ir.Usage(input_tokens=4, output_tokens=16, reasoning_tokens=7, reasoning_reported=True)
    assert dec.meta.id == "arr"
    assert as_expect(r) == expect.gemini(data.decode(), True)


def test_json_array_scanner_keeps_partial_objects() -> None:
    s = JSONArrayScanner()
    assert s.feed(b' [ {"a": "\\') == []
    assert s.pending
    assert s.feed(b'"}"} ,') == [b'{"a": "\\"}"}']
    assert not s.pending
    assert s.feed(b'{"b": {}}]') == [b'{"b": {}}']


@settings(max_examples=50, deadline=None)
@given(cuts=st.lists(st.integers(0, 900), max_size=6))
@pytest.mark.parametrize("framing", ["sse", "array"])
def test_error_inside_a_stream_raises_after_the_events_before_it(framing: str, cuts: list[int]) -> None:
    err = {"error": {"code": 429, "message": "Resource has been exhausted", "status": "RESOURCE_EXHAUSTED"}}
    ok = ARRAY_CHUNKS[0]
    data = (
        json_array([ok, err])
        if framing == "array"
        else f"data: {json.dumps(ok)}\r\n\r\ndata: {json.dumps(err)}\r\n\r\n".encode()
    )
    dec = StreamDecoder(provider="gemini", model="m")
    seen: list[ir.StreamEvent] = []
    with pytest.raises(RateLimitError, match="Resource has been exhausted"):
        for piece in splits(data, cuts):
            seen += dec.feed(piece)
        dec.close()
    assert read(seen).text == {0: ok["candidates"][0]["content"]["parts"][0]["text"]}


def test_overloaded_error_event_is_service_unavailable() -> None:
    data = b'data: {"error": {"code": 503, "message": "The model is overloaded.", "status": "UNAVAILABLE"}}\r\n\r\n'
    with pytest.raises(ServiceUnavailableError):
        StreamDecoder().feed(data)


def test_blocked_prompt_in_a_stream() -> None:
    chunk = {
        "promptFeedback": {"blockReason": "SAFETY"},
        "usageMetadata": {"promptTokenCount": 3, "totalTokenCount": 3},
        "responseId": "b",
    }
    events, _ = decode_all([f"data: {json.dumps(chunk)}\r\n\r\n".encode()])
    assert events[0].finish_reason == "content_filter" and events[0].native_finish_reason == "SAFETY"
    assert events[0].provider_specific == {"promptFeedback": {"blockReason": "SAFETY"}}
    enc = StreamEncoder(META, include_usage=True)
    again = frames(b"".join(enc.encode(ev) for ev in events) + enc.close())
    assert [(f["promptFeedback"], f["usageMetadata"]["promptTokenCount"]) for f in again] == [
        ({"blockReason": "SAFETY"}, 3)
    ]


def test_metadata_and_code_parts_in_a_stream() -> None:
    code = {"executableCode": {"language": "PYTHON", "code": "1+1"}}
    chunks = [
        {"candidates": [{"content": {"parts": [code]}, "index": 0}], "responseId": "g"},
        {
            "candidates": [
                {
                    "content": {"parts": [{"text": "2"}]},
                    "finishReason": "STOP",
                    "index": 0,
                    "groundingMetadata": {"webSearchQueries": ["q"]},
                }
            ],
            "responseId": "g",
        },
    ]
    events, _ = decode_all([b"".join(f"data: {json.dumps(c)}\r\n\r\n".encode() for c in chunks)])
    assert read(events).blocks == [code]
    assert events[-1].finish_reason == "stop" and events[-1].provider_specific == {
        "groundingMetadata": {"webSearchQueries": ["q"]}
    }


# ---------------------------------------------------------------- encoder


def frames(data: bytes) -> list[dict[str, Any]]:
    assert data.endswith(b"\r\n\r\n") or not data
    parts = [p for p in data.split(b"\r\n\r\n") if p]
    assert all(p.startswith(b"data: ") and b"\n" not in p for p in parts)
    return [json.loads(p[6:]) for p in parts]


def test_encoder_framing_is_geminis() -> None:
    enc = StreamEncoder(META, include_usage=True)
    u1 = ir.Usage(input_tokens=5, output_tokens=1)
    u2 = ir.Usage(input_tokens=5, output_tokens=9, reasoning_tokens=4, reasoning_reported=True)
    out = enc.encode(ir.StreamEvent(role="assistant", text="Hel", usage=u1))
    assert out == (
        b'data: {"candidates":[{"content":{"parts":[{"text":"Hel"}],"role":"model"},"index":0}],'
        b'"usageMetadata":{"promptTokenCount":5,"candidatesTokenCount":1,"totalTokenCount":6},'
        b'"modelVersion":"gemini-2.5-flash","responseId":"resp-1"}\r\n\r\n'
    )
    held = enc.encode(ir.StreamEvent(text="lo", finish_reason="stop"))
    assert held == b""  # the finishing chunk waits for the usage that follows it
    assert enc.encode(ir.StreamEvent(usage=u2)) == b""
    tail = enc.close()
    assert b"[DONE]" not in tail
    (last,) = frames(tail)
    assert last["candidates"] == [
        {"content": {"parts": [{"text": "lo"}], "role": "model"}, "finishReason": "STOP", "index": 0}
    ]
    assert last["usageMetadata"] == {
        "promptTokenCount": 5,
        "candidatesTokenCount": 5,
        "totalTokenCount": 14,
        "thoughtsTokenCount": 4,
    }


def test_encoder_without_usage_and_usage_only_tail() -> None:
    enc = StreamEncoder(META, include_usage=False)
    assert "usageMetadata" not in frames(enc.encode(ir.StreamEvent(text="x", usage=ir.Usage(input_tokens=1))))[0]
    enc = StreamEncoder(META, include_usage=True)
    frames(enc.encode(ir.StreamEvent(text="x")))
    enc.encode(ir.StreamEvent(usage=ir.Usage(input_tokens=2, output_tokens=3)))
    (tail,) = frames(enc.close())
    assert tail == {
        "usageMetadata": {"promptTokenCount": 2, "candidatesTokenCount": 3, "totalTokenCount": 5},
        "modelVersion": "gemini-2.5-flash",
        "responseId": "resp-1",
    }


def test_encoder_assembles_fragmented_tool_calls() -> None:
    enc = StreamEncoder(META, include_usage=False)
    out = enc.encode(ir.StreamEvent(tool_calls=[ir.ToolCallDelta(index=0, id="call_1", name="get", arguments="")]))
    out += enc.encode(ir.StreamEvent(tool_calls=[ir.ToolCallDelta(index=0, arguments='{"city": ')]))
    assert out == b""
    out = enc.encode(
        ir.StreamEvent(
            tool_calls=[
                ir.ToolCallDelta(index=0, arguments='"Paris"}'),
                ir.ToolCallDelta(index=1, id="call_2", name="now"),
            ]
        )
    )
    (first,) = frames(out)
    assert first["candidates"][0]["content"]["parts"] == [
        {"functionCall": {"id": "call_1", "name": "get", "args": {"city": "Paris"}}}
    ]
    enc.encode(ir.StreamEvent(finish_reason="tool_calls"))
    (last,) = frames(enc.close())
    assert last["candidates"][0]["content"]["parts"] == [{"functionCall": {"id": "call_2", "name": "now", "args": {}}}]
    assert last["candidates"][0]["finishReason"] == "STOP"


def test_encoder_signatures() -> None:
    enc = StreamEncoder(META, include_usage=False)
    got = frames(
        enc.encode(ir.StreamEvent(reasoning="hmm", reasoning_signature="T"))
        + enc.encode(ir.StreamEvent(text="", reasoning_signature="S"))
        + enc.encode(ir.StreamEvent(reasoning_signature="A"))  # a signature that ends a thought (Anthropic)
    )
    assert [f["candidates"][0]["content"]["parts"] for f in got] == [
        [{"text": "hmm", "thought": True, "thoughtSignature": "T"}],
        [{"text": "", "thoughtSignature": "S"}],
        [{"text": "", "thought": True, "thoughtSignature": "A"}],
    ]


def test_encoded_chunks_are_read_by_the_google_sdk() -> None:
    enc = StreamEncoder(META, include_usage=True)
    data = enc.encode(ir.StreamEvent(role="assistant", reasoning="think", reasoning_signature="c2ln"))
    data += enc.encode(
        ir.StreamEvent(tool_calls=[ir.ToolCallDelta(index=0, id="call_x", name="f", arguments='{"a": 1}')])
    )
    data += enc.encode(ir.StreamEvent(finish_reason="tool_calls", usage=ir.Usage(input_tokens=3, output_tokens=4)))
    data += enc.close()
    for chunk in frames(data):
        r = genai_types.GenerateContentResponse._from_response(response=chunk, kwargs={})
        assert r.response_id == "resp-1"
    assert r.candidates and r.candidates[0].finish_reason == genai_types.FinishReason.STOP
    assert r.usage_metadata and r.usage_metadata.total_token_count == 7


# ---------------------------------------------------------------- round trip: IR events -> bytes -> IR events

texts = st.text(st.characters(blacklist_categories=("Cs",)), min_size=1, max_size=8)
names = st.text(string.ascii_letters, min_size=1, max_size=6)
call_args = st.dictionaries(names, st.integers() | texts | st.none(), max_size=3)


@st.composite
def event_streams(draw: st.DrawFn) -> list[ir.StreamEvent]:
    events: list[ir.StreamEvent] = []
    calls = 0
    for _ in range(draw(st.integers(1, 8))):
        kind = draw(st.sampled_from(["text", "reasoning", "call", "fragmented_call", "usage"]))
        if kind == "text":
            events.append(ir.StreamEvent(text=draw(texts)))
        elif kind == "reasoning":
            events.append(ir.StreamEvent(reasoning=draw(texts), reasoning_signature=draw(st.none() | names)))
        elif kind == "call":
            args = msgspec.json.encode(draw(call_args)).decode()
            events.append(
                ir.StreamEvent(
                    tool_calls=[ir.ToolCallDelta(index=calls, id=f"call-{calls}", name=draw(names), arguments=args)]
                )
            )
            calls += 1
        elif kind == "fragmented_call":
            args = msgspec.json.encode(draw(call_args)).decode()
            cut = draw(st.integers(0, len(args)))
            events.append(
                ir.StreamEvent(
                    tool_calls=[
                        ir.ToolCallDelta(index=calls, id=f"call-{calls}", name=draw(names), arguments=args[:cut])
                    ]
                )
            )
            events.append(ir.StreamEvent(tool_calls=[ir.ToolCallDelta(index=calls, arguments=args[cut:])]))
            calls += 1
        else:
            i, o = draw(st.integers(0, 1000)), draw(st.integers(0, 1000))
            events.append(ir.StreamEvent(usage=ir.Usage(input_tokens=i, output_tokens=o)))
    finish = draw(st.sampled_from(["stop", "length", "content_filter"]))
    events.append(ir.StreamEvent(finish_reason="tool_calls" if calls and finish == "stop" else finish))
    if draw(st.booleans()):
        events.append(
            ir.StreamEvent(
                usage=ir.Usage(input_tokens=7, output_tokens=11, reasoning_tokens=2, reasoning_reported=True)
            )
        )
    return events


@settings(max_examples=200, deadline=None)
@given(event_streams(), st.lists(st.integers(0, 3000), max_size=15))
def test_stream_round_trip_split_anywhere(events: list[ir.StreamEvent], cuts: list[int]) -> None:
    enc = StreamEncoder(META, include_usage=True)
    data = b"".join(enc.encode(ev) for ev in events) + enc.close()
    got, dec = decode_all(splits(data, cuts))
    want, have = read(events), read(got)
    assert have.text == want.text
    assert have.reasoning == want.reasoning
    assert have.signatures == want.signatures
    assert [(n, a) for n, a, _ in have.calls.get(0, [])] == [(n, a) for n, a, _ in want.calls.get(0, [])]
    assert have.finish == want.finish
    assert have.usage == want.usage
    assert (dec.meta.id, dec.meta.model) == (META.id, META.model)


def test_gemini_stream_through_the_ir_comes_out_as_it_went_in() -> None:
    body = json.loads((RECORDED / "gemini" / "stream_sse.json").read_text())["response"]["body_text"]
    events, dec = decode_all([body.encode()])
    enc = StreamEncoder(dec.meta, include_usage=True)
    again = frames(b"".join(enc.encode(ev) for ev in events) + enc.close())
    original = [json.loads(block[6:]) for block in body.split("\r\n\r\n") if block.startswith("data: ")]
    assert again == original
