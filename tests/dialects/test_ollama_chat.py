"""Ollama's /api/chat dialect: our request encoder read back by the server half, answers and NDJSON streams
written by the server half read back by the client half (the same bytes either way)."""

from __future__ import annotations

import json

import pytest

from llmswitch import ir
from llmswitch.dialects import ollama_chat, ollama_chat_server
from llmswitch.dialects.ollama_chat_stream import StreamDecoder

CALL = ir.ToolCallPart(id="call_1", name="get_weather", arguments='{"city":"Paris"}')
REQUESTS = [
    ir.Request(model="m", messages=[ir.Message(role="user", content=[ir.TextPart("hi")])], temperature=0.3, seed=1),
    ir.Request(
        model="m",
        messages=[
            ir.Message(role="system", content=[ir.TextPart("Be brief.")]),
            ir.Message(role="user", content=[ir.TextPart("look"), ir.ImagePart(data="AAAA", media_type="image/png")]),
            ir.Message(role="assistant", content=[ir.ReasoningPart("hmm"), CALL]),
            ir.Message(role="tool", content=[ir.ToolResultPart(tool_call_id="call_1", content=[ir.TextPart("18C")])]),
        ],
        tools=[ir.Tool(name="get_weather", parameters={"type": "object", "properties": {}})],
        max_tokens=50,
        top_k=20,
        stop=["END"],
        stream=True,
    ),
]


@pytest.mark.parametrize("req", REQUESTS)
def test_request_round_trip(req: ir.Request) -> None:
    body = ollama_chat.encode_request(req, model="m")
    back = ollama_chat_server.decode_request(json.loads(json.dumps(body)))
    for name in ("temperature", "seed", "max_tokens", "top_k", "stop", "stream"):
        assert getattr(back, name) == getattr(req, name), name
    assert [t.name for t in back.tools or []] == [t.name for t in req.tools or []]
    assert [m.role for m in back.messages] == [m.role for m in req.messages]
    assert [m.text for m in back.messages] == [m.text for m in req.messages]
    got_calls = [(c.id, c.name, json.loads(c.arguments)) for m in back.messages for c in m.tool_calls]
    want_calls = [(c.id, c.name, json.loads(c.arguments)) for m in req.messages for c in m.tool_calls]
    assert got_calls == want_calls
    images = [p.data for m in back.messages for p in m.content if isinstance(p, ir.ImagePart)]
    assert images == [p.data for m in req.messages for p in m.content if isinstance(p, ir.ImagePart)]


def test_tool_result_names_its_function() -> None:
    body = ollama_chat.encode_request(REQUESTS[1], model="m")
    assert body["messages"][-1] == {"role": "tool", "content": "18C", "tool_name": "get_weather"}
    assert body["messages"][2]["tool_calls"][0]["function"]["arguments"] == {"city": "Paris"}


@pytest.mark.parametrize(
    ("parts", "finish"),
    [
        ([ir.ReasoningPart("think"), ir.TextPart("4")], "stop"),
        ([CALL], "tool_calls"),
        ([ir.TextPart("cut")], "length"),
    ],
)
def test_answer_and_stream_round_trip(parts: list[ir.Part], finish: ir.FinishReason) -> None:
    resp = ir.Response(
        id="x",
        model="m",
        choices=[ir.Choice(parts=parts, finish_reason=finish)],
        usage=ir.Usage(input_tokens=7, output_tokens=3),
    )
    back = ollama_chat.decode_response(ollama_chat_server.encode_response(resp))
    assert (back.choices[0].text, back.choices[0].reasoning) == (resp.choices[0].text, resp.choices[0].reasoning)
    assert [(c.name, c.arguments) for c in back.choices[0].tool_calls] == [
        (c.name, c.arguments) for c in resp.choices[0].tool_calls
    ]
    assert back.choices[0].finish_reason == finish
    assert back.usage == resp.usage
    enc = ollama_chat_server.StreamEncoder(ir.StreamMeta(model="m"))
    events = [
        ir.StreamEvent(reasoning=p.text) if isinstance(p, ir.ReasoningPart) else ir.StreamEvent(text=p.text)
        for p in parts
        if isinstance(p, ir.ReasoningPart | ir.TextPart)
    ]
    events += [
        ir.StreamEvent(tool_calls=[ir.ToolCallDelta(index=0, id=CALL.id, name=CALL.name, arguments=CALL.arguments)])
        for p in parts
        if p is CALL
    ]
    events.append(ir.StreamEvent(finish_reason=finish, usage=resp.usage))
    wire = b"".join(enc.encode(e) for e in events) + enc.close()
    d = StreamDecoder()
    out = d.feed(wire) + d.close()
    assert "".join(e.text or "" for e in out) == resp.choices[0].text
    assert "".join(e.reasoning or "" for e in out) == resp.choices[0].reasoning
    assert [t.name for e in out for t in e.tool_calls or []] == [c.name for c in resp.choices[0].tool_calls]
    assert [e.finish_reason for e in out if e.finish_reason] == [finish]
    assert [e.usage for e in out if e.usage] == [resp.usage]
