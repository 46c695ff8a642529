"""Gemini contents and parts <-> IR messages: roles, tool results and their names, media, thought signatures."""

from __future__ import annotations

import json
import string
from typing import Any

import msgspec
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from llmswitch import ir
from llmswitch.dialects import gemini
from llmswitch.errors import BadRequestError


def user(text: str) -> ir.Message:
    return ir.Message(role="user", content=[ir.TextPart(text=text)])


def request(*messages: ir.Message, **kw: Any) -> ir.Request:
    return ir.Request(model="gemini-2.5-flash", messages=list(messages), **kw)


def encode(req: ir.Request, model: str = "gemini-2.5-flash") -> dict[str, Any]:
    return gemini.encode_request(req, model=model)


def test_roles_merging_and_system_instruction() -> None:
    call = ir.ToolCallPart(id="c1", name="f", arguments='{"x": 1}')
    body = encode(
        request(
            ir.Message(role="system", content=[ir.TextPart(text="Be brief.")]),
            user("a"),
            user("b"),
            ir.Message(role="developer", content=[ir.TextPart(text="Use tools.")]),
            ir.Message(role="assistant", content=[ir.TextPart(text="calling"), call]),
            ir.Message(role="tool", content=[ir.ToolResultPart(tool_call_id="c1", content=[ir.TextPart(text="42")])]),
            user("thanks"),
        )
    )
    assert body["systemInstruction"] == {"parts": [{"text": "Be brief."}, {"text": "Use tools."}]}
    assert body["contents"] == [
        {"role": "user", "parts": [{"text": "a"}, {"text": "b"}]},
        {
            "role": "model",
            "parts": [{"text": "calling"}, {"functionCall": {"id": "c1", "name": "f", "args": {"x": 1}}}],
        },
        {
            "role": "user",
            "parts": [
                {"functionResponse": {"id": "c1", "name": "f", "response": {"output": "42"}}},
                {"text": "thanks"},
            ],
        },
    ]


def test_tool_result_name_comes_from_the_matching_call() -> None:
    calls = [
        ir.ToolCallPart(id="call_" + "a" * 24, name="lookup", arguments='{"k": "x"}'),
        ir.ToolCallPart(id="call_" + "b" * 24, name="other", arguments="{}"),
    ]
    body = encode(
        request(
            user("go"),
            ir.Message(role="assistant", content=calls),
            ir.Message(
                role="tool",
                content=[ir.ToolResultPart(tool_call_id="call_" + "b" * 24, content=[ir.TextPart(text="2")])],
            ),
            ir.Message(
                role="tool",
                content=[
                    ir.ToolResultPart(
                        tool_call_id="call_" + "a" * 24, content=[ir.TextPart(text="boom")], is_error=True
                    )
                ],
            ),
        )
    )
    # synthesized ids are ours, not Gemini's: they are not sent
    assert body["contents"][1]["parts"] == [
        {"functionCall": {"name": "lookup", "args": {"k": "x"}}},
        {"functionCall": {"name": "other", "args": {}}},
    ]
    assert body["contents"][2]["parts"] == [
        {"functionResponse": {"name": "other", "response": {"output": "2"}}},
        {"functionResponse": {"name": "lookup", "response": {"error": "boom"}}},
    ]


def test_tool_result_with_an_image_and_its_own_name() -> None:
    result = ir.ToolResultPart(
        tool_call_id="x",
        name="shot",
        content=[ir.TextPart(text="see"), ir.ImagePart(data="AAAA", media_type="image/png")],
    )
    body = encode(request(ir.Message(role="tool", content=[result])))
    assert body["contents"][0]["parts"] == [
        {"functionResponse": {"id": "x", "name": "shot", "response": {"output": "see"}}},
        {"inlineData": {"mimeType": "image/png", "data": "AAAA"}},
    ]


def test_orphan_tool_result_is_a_bad_request_naming_the_field() -> None:
    orphan = ir.Message(role="tool", content=[ir.ToolResultPart(tool_call_id="nope", content=[ir.TextPart(text="1")])])
    with pytest.raises(BadRequestError) as e:
        encode(request(user("hi"), orphan))
    assert e.value.param == "messages[1].tool_call_id"


MEDIA = [
    (ir.ImagePart(data="QUJD", media_type="image/webp"), {"inlineData": {"mimeType": "image/webp", "data": "QUJD"}}),
    (
        ir.ImagePart(url="https://x.test/cat.png"),
        {"fileData": {"mimeType": "image/png", "fileUri": "https://x.test/cat.png"}},
    ),
    (
        ir.FilePart(data="JVBE", media_type="application/pdf"),
        {"inlineData": {"mimeType": "application/pdf", "data": "JVBE"}},
    ),
    (
        ir.FilePart(file_id="files/abc", media_type="text/plain"),
        {
            "fileData": {
                "mimeType": "text/plain",
                "fileUri": "https://generativelanguage.googleapis.com/v1beta/files/abc",
            }
        },
    ),
    (
        ir.FilePart(url="gs://b/a.mp4", media_type="video/mp4"),
        {"fileData": {"mimeType": "video/mp4", "fileUri": "gs://b/a.mp4"}},
    ),
]


@pytest.mark.parametrize(("part", "want"), MEDIA)
def test_media_parts(part: ir.Part, want: dict[str, Any]) -> None:
    body = encode(request(ir.Message(role="user", content=[ir.TextPart(text="look"), part])))
    assert body["contents"][0]["parts"] == [{"text": "look"}, want]


def test_other_providers_blocks_are_skipped_and_gemini_blocks_kept() -> None:
    code = {"executableCode": {"language": "PYTHON", "code": "print(1)"}}
    msg = ir.Message(
        role="assistant",
        content=[
            ir.RedactedReasoningPart(data="opaque"),
            ir.ProviderPart(provider="anthropic", block={"type": "server_tool_use"}),
            ir.ProviderPart(provider="gemini", block=code),
            ir.TextPart(text="done"),
        ],
    )
    assert encode(request(user("hi"), msg))["contents"][1]["parts"] == [code, {"text": "done"}]


# ---------------------------------------------------------------- thought signatures survive the round trip

SIGNED = {
    "candidates": [
        {
            "content": {
                "role": "model",
                "parts": [
                    {"text": "thinking…", "thought": True, "thoughtSignature": "T1"},
                    {"text": "Here.", "thoughtSignature": "S1"},
                    {"functionCall": {"name": "f", "args": {"a": [1, {"b": None}]}}, "thoughtSignature": "S2"},
                    {"functionCall": {"name": "f", "args": {}}},
                ],
            },
            "finishReason": "STOP",
        }
    ],
    "responseId": "r1",
}


def test_model_turn_is_sent_back_unchanged() -> None:
    choice = gemini.decode_response(SIGNED).choices[0]
    body = encode(request(user("q"), ir.Message(role="assistant", content=choice.parts)))
    assert body["contents"][1] == SIGNED["candidates"][0]["content"]


def test_text_signature_reattaches_after_an_openai_round_trip() -> None:
    # LiteLLM-style clients send thinking_blocks first, then the text
    msg = ir.Message(
        role="assistant",
        content=[ir.ReasoningPart(text="", signature="S1", provider="gemini"), ir.TextPart(text="Here.")],
    )
    assert encode(request(user("q"), msg))["contents"][1]["parts"] == [{"text": "Here.", "thoughtSignature": "S1"}]
    lone = ir.Message(role="assistant", content=[ir.ReasoningPart(text="", signature="S9", provider="gemini")])
    assert encode(request(user("q"), lone))["contents"][1]["parts"] == [{"text": "", "thoughtSignature": "S9"}]


# ---------------------------------------------------------------- round trip: IR request -> body -> IR request

texts = st.text(st.characters(blacklist_categories=("Cs",)), min_size=1, max_size=12)
names = st.text(string.ascii_letters + "_", min_size=1, max_size=8)
sigs = st.text(string.ascii_letters + string.digits + "+/=_-", min_size=4, max_size=12)
json_values = st.recursive(
    st.none() | st.booleans() | st.integers(-1000, 1000) | texts,
    lambda kids: st.lists(kids, max_size=3) | st.dictionaries(names, kids, max_size=3),
    max_leaves=6,
)
args = st.dictionaries(names, json_values, max_size=3).map(lambda d: msgspec.json.encode(d).decode())


@st.composite
def assistant_parts(draw: st.DrawFn) -> list[ir.Part]:
    parts: list[ir.Part] = []
    if draw(st.booleans()):
        parts.append(ir.ReasoningPart(text=draw(texts), signature=draw(st.none() | sigs), provider="gemini"))
    if draw(st.booleans()):
        sig = draw(st.none() | sigs)
        if sig:
            parts.append(ir.ReasoningPart(text="", signature=sig, provider="gemini"))
        parts.append(ir.TextPart(text=draw(texts)))
    for _ in range(draw(st.integers(0 if parts else 1, 3))):
        ps = draw(st.none() | sigs.map(lambda s: {"thought_signature": s}))
        parts.append(ir.ToolCallPart(id=draw(names), name=draw(names), arguments=draw(args), provider_specific=ps))
    return parts


@st.composite
def conversations(draw: st.DrawFn) -> ir.Request:
    messages: list[ir.Message] = []
    if draw(st.booleans()):
        messages.append(ir.Message(role="system", content=[ir.TextPart(text=draw(texts))]))
    for _ in range(draw(st.integers(1, 3))):
        content: list[ir.Part] = [ir.TextPart(text=draw(texts))]
        if draw(st.booleans()):
            content.append(ir.ImagePart(data="QUJD", media_type="image/png"))
        messages.append(ir.Message(role="user", content=content))
        parts = draw(assistant_parts())
        messages.append(ir.Message(role="assistant", content=parts))
        calls = [p for p in parts if isinstance(p, ir.ToolCallPart)]
        for c in calls:
            result = ir.ToolResultPart(
                tool_call_id=c.id, name=c.name, content=[ir.TextPart(text=draw(texts))], is_error=draw(st.booleans())
            )
            messages.append(ir.Message(role="tool", content=[result]))
    return ir.Request(
        model="gemini-2.5-flash",
        messages=messages,
        temperature=draw(st.none() | st.floats(0, 2)),
        top_k=draw(st.none() | st.integers(1, 100)),
        max_tokens=draw(st.none() | st.integers(1, 10_000)),
        stop=draw(st.none() | st.lists(texts, min_size=1, max_size=3)),
        seed=draw(st.none() | st.integers(0, 2**31)),
        thinking_budget=draw(st.none() | st.integers(-1, 24576)),
        tool_choice=draw(
            st.none()
            | st.sampled_from([ir.ToolChoice(mode="auto"), ir.ToolChoice(mode="required"), ir.ToolChoice(mode="none")])
        ),
        tools=[
            ir.Tool(
                name="f",
                description="d",
                parameters={"type": "object", "properties": {"a": {"type": "string"}}, "required": ["a"]},
            )
        ],
        response_format=draw(st.none() | st.just(ir.ResponseFormat(type="json_object"))),
    )


@settings(max_examples=100, deadline=None)
@given(conversations())
def test_request_round_trip(req: ir.Request) -> None:
    body = encode(req)
    decoded = gemini.decode_request(json.loads(json.dumps(body)), model=req.model)
    assert encode(decoded) == body  # the wire is a fixed point
    sent = [m for m in req.messages if m.role != "system"]
    got = [m for m in decoded.messages if m.role != "system"]
    assert [m.role for m in got] == [m.role for m in sent]
    for a, b in zip(sent, got, strict=True):
        if a.role == "tool":
            ra, rb = a.content[0], b.content[0]
            assert isinstance(ra, ir.ToolResultPart) and isinstance(rb, ir.ToolResultPart)
            assert (ra.name, ra.text, ra.is_error) == (rb.name, rb.text, rb.is_error)
            continue
        assert [type(p) for p in a.content] == [type(p) for p in b.content]
        for pa, pb in zip(a.content, b.content, strict=True):
            if isinstance(pa, ir.ToolCallPart) and isinstance(pb, ir.ToolCallPart):
                assert (pa.name, json.loads(pa.arguments), pa.provider_specific) == (
                    pb.name,
                    json.loads(pb.arguments),
                    pb.provider_specific,
                )
            else:
                assert pa == pb
    # every result answers the call before it
    ids = {c.id for m in got for c in m.tool_calls}
    assert all(r.tool_call_id in ids for m in got for r in m.content if isinstance(r, ir.ToolResultPart))
    assert (decoded.temperature, decoded.top_k, decoded.max_tokens, decoded.stop, decoded.seed) == (
        req.temperature,
        req.top_k,
        req.max_tokens,
        req.stop,
        req.seed,
    )
    assert decoded.thinking_budget == req.thinking_budget
    assert decoded.tool_choice == req.tool_choice
    assert decoded.response_format == req.response_format
