"""Gemini generateContent responses: finish reasons, usage, metadata, ids, recorded traffic, embeddings, round trips."""

from __future__ import annotations

import json
import string
import sys
from pathlib import Path
from typing import Any

import msgspec
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from llmswitch import ir
from llmswitch.dialects import gemini
from llmswitch.dialects.gemini_response import _FINISH_REASON_MAP
from llmswitch.errors import BadRequestError

SHARED = Path(__file__).resolve().parents[2].parent / "shared"
RECORDED = SHARED / "fixtures" / "recorded"


def fixture(name: str, provider: str = "gemini") -> dict[str, Any]:
    return json.loads((RECORDED / provider / f"{name}.json").read_text())


sys.path.insert(0, str(SHARED / "conformance"))
import expect  # noqa: E402

# ---------------------------------------------------------------- thought signatures in a response

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


def test_signatures_decode_into_the_ir() -> None:
    parts = gemini.decode_response(SIGNED).choices[0].parts
    assert parts[:3] == [
        ir.ReasoningPart(text="thinking…", signature="T1", provider="gemini"),
        ir.ReasoningPart(text="", signature="S1", provider="gemini"),
        ir.TextPart(text="Here."),
    ]
    assert isinstance(parts[3], ir.ToolCallPart) and parts[3].provider_specific == {"thought_signature": "S2"}
    assert isinstance(parts[4], ir.ToolCallPart) and parts[4].provider_specific is None


# ---------------------------------------------------------------- response -> IR


@pytest.mark.parametrize(("native", "want"), sorted(_FINISH_REASON_MAP.items()))
def test_finish_reasons(native: str, want: str) -> None:
    body = {"candidates": [{"content": {"role": "model", "parts": [{"text": "x"}]}, "finishReason": native}]}
    choice = gemini.decode_response(body).choices[0]
    assert (choice.finish_reason, choice.native_finish_reason) == (want, native)


@pytest.mark.parametrize(
    ("native", "want"), [("STOP", "tool_calls"), ("MAX_TOKENS", "length"), ("SAFETY", "content_filter")]
)
def test_finish_reason_after_function_calls(native: str, want: str) -> None:
    body = {
        "candidates": [{"content": {"parts": [{"functionCall": {"name": "f", "args": {}}}]}, "finishReason": native}]
    }
    assert gemini.decode_response(body).choices[0].finish_reason == want


def test_unknown_finish_reason_is_stop_and_missing_is_none() -> None:
    assert (
        gemini.decode_response({"candidates": [{"finishReason": "SOMETHING_NEW"}]}).choices[0].finish_reason == "stop"
    )
    assert (
        gemini.decode_response({"candidates": [{"content": {"parts": [{"text": "x"}]}}]}).choices[0].finish_reason
        is None
    )


def test_blocked_prompt_is_one_content_filter_choice() -> None:
    feedback = {"blockReason": "PROHIBITED_CONTENT", "safetyRatings": []}
    r = gemini.decode_response(
        {"promptFeedback": feedback, "usageMetadata": {"promptTokenCount": 9, "totalTokenCount": 9}}
    )
    assert len(r.choices) == 1
    c = r.choices[0]
    assert (c.finish_reason, c.native_finish_reason, c.parts) == ("content_filter", "PROHIBITED_CONTENT", [])
    assert c.provider_specific == {"promptFeedback": feedback}
    assert gemini.encode_response(r)["promptFeedback"] == feedback
    assert "candidates" not in gemini.encode_response(r)


USAGE = [
    (
        {"promptTokenCount": 13, "candidatesTokenCount": 77, "totalTokenCount": 115, "thoughtsTokenCount": 25},
        (13, 102, 0, 25, True),
    ),
    (
        {
            "promptTokenCount": 3797,
            "candidatesTokenCount": 656,
            "cachedContentTokenCount": 3055,
            "thoughtsTokenCount": 1549,
        },
        (3797, 2205, 3055, 1549, True),
    ),
    ({"promptTokenCount": 152, "candidatesTokenCount": 37, "totalTokenCount": 189}, (152, 37, 0, 0, False)),
    ({"promptTokenCount": 5}, (5, 0, 0, 0, False)),
]


@pytest.mark.parametrize(("meta", "want"), USAGE)
def test_usage_normal_form(meta: dict[str, int], want: tuple[int, int, int, int, bool]) -> None:
    u = gemini.map_usage_in(meta)
    assert (u.input_tokens, u.output_tokens, u.cache_read_tokens, u.reasoning_tokens, u.reasoning_reported) == want
    back = gemini.map_usage_out(u)
    for key in ("promptTokenCount", "cachedContentTokenCount", "thoughtsTokenCount"):
        assert back.get(key, 0) == meta.get(key, 0)
    assert back["candidatesTokenCount"] == meta.get("candidatesTokenCount", 0)


def test_candidate_metadata_and_executable_parts_are_kept() -> None:
    grounding = {"webSearchQueries": ["q"], "groundingChunks": [{"web": {"uri": "https://a.test", "title": "A"}}]}
    code = {"executableCode": {"language": "PYTHON", "code": "print(2)"}}
    result = {"codeExecutionResult": {"outcome": "OUTCOME_OK", "output": "2\n"}}
    body = {
        "candidates": [
            {
                "content": {"role": "model", "parts": [code, result, {"text": "2"}]},
                "finishReason": "STOP",
                "groundingMetadata": grounding,
                "citationMetadata": {"citationSources": [{"uri": "https://b.test"}]},
            }
        ],
        "modelVersion": "gemini-2.5-flash",
        "responseId": "r",
    }
    c = gemini.decode_response(body).choices[0]
    assert c.parts == [
        ir.ProviderPart(provider="gemini", block=code),
        ir.ProviderPart(provider="gemini", block=result),
        # the recitation source reads as a citation of the text it covers (all of it: no offsets given)
        ir.TextPart(text="2", citations=[ir.Citation(url="https://b.test", start=0, end=1, provider="gemini")]),
    ]
    assert c.provider_specific == {
        "groundingMetadata": grounding,
        "citationMetadata": body["candidates"][0]["citationMetadata"],
    }
    back = gemini.encode_response(gemini.decode_response(body))
    assert back["candidates"][0] == {**body["candidates"][0], "index": 0}


def test_tool_call_ids_are_stable_and_unique() -> None:
    body = json.loads(fixture("function_call")["response"]["body_text"])
    first = [c.id for c in gemini.decode_response(body).choices[0].tool_calls]
    again = [c.id for c in gemini.decode_response(json.loads(json.dumps(body))).choices[0].tool_calls]
    assert first == again and len(set(first)) == 2 and all(i.startswith("call_") for i in first)
    twins = {
        "responseId": "r",
        "candidates": [{"content": {"parts": [{"functionCall": {"name": "f", "args": {}}}] * 2}}],
    }
    ids = [c.id for c in gemini.decode_response(twins).choices[0].tool_calls]
    assert len(set(ids)) == 2
    native = {"candidates": [{"content": {"parts": [{"functionCall": {"id": "g-1", "name": "f", "args": {}}}]}}]}
    assert gemini.decode_response(native).choices[0].tool_calls[0].id == "g-1"


def test_logprobs_map_to_openai_shape_and_back() -> None:
    lr = {
        "topCandidates": [
            {"candidates": [{"token": "Hi", "logProbability": -0.1}, {"token": "Yo", "logProbability": -2.5}]}
        ],
        "chosenCandidates": [{"token": "Hi", "logProbability": -0.1}],
    }
    c = gemini.decode_response(
        {"candidates": [{"content": {"parts": [{"text": "Hi"}]}, "logprobsResult": lr}]}
    ).choices[0]
    assert c.logprobs == {
        "content": [
            {
                "token": "Hi",
                "logprob": -0.1,
                "bytes": [72, 105],  # OpenAI's token entries always have the UTF-8 bytes
                "top_logprobs": [
                    {"token": "Hi", "logprob": -0.1, "bytes": [72, 105]},
                    {"token": "Yo", "logprob": -2.5, "bytes": [89, 111]},
                ],
            }
        ]
    }
    assert gemini.logprobs_out(c.logprobs) == lr


def test_vertex_create_time_is_the_created_second() -> None:
    body = json.loads(fixture("generate_content_nonstream", "vertex")["response"]["body_text"])
    assert gemini.decode_response(body).created == 1787150164


# ---------------------------------------------------------------- recorded traffic, judged by the conformance reference

NON_STREAM = [
    p.stem
    for p in sorted((RECORDED / "gemini").glob("*.json"))
    if json.loads(p.read_text())["response"]["status"] < 400
    and ":generateContent" in json.loads(p.read_text())["request"]["url"]
]


def reading(resp: ir.Response) -> dict[str, Any]:
    """Our response read the way expect.py reads the wire."""
    c = resp.choices[0]
    u = resp.usage
    return {
        "content": c.text or None,
        "reasoning": c.reasoning or None,
        "tool_calls": [{"name": t.name, "arguments": json.loads(t.arguments)} for t in c.tool_calls],
        "finish_reason": c.finish_reason,
        "usage": u
        and {
            "prompt": u.input_tokens,
            "completion": u.output_tokens,
            "cached": u.cache_read_tokens,
            "reasoning": u.reasoning_tokens,
        },
    }


@pytest.mark.parametrize("name", NON_STREAM)
def test_recorded_responses_read_as_the_reference_does(name: str) -> None:
    body = fixture(name)["response"]["body_text"]
    assert reading(gemini.decode_response(json.loads(body))) == expect.gemini(body, False)


@pytest.mark.parametrize(
    ("provider", "name"),
    [("gemini", n) for n in NON_STREAM]
    + [("vertex", "generate_content_nonstream"), ("vertex", "generate_content_tool_call")],
)
def test_recorded_responses_come_out_of_the_ir_as_they_went_in(provider: str, name: str) -> None:
    body = json.loads(fixture(name, provider)["response"]["body_text"])
    # what the IR has no place for: per-modality token details, Vertex's traffic type and createTime
    for key in ("promptTokensDetails", "candidatesTokensDetails", "cacheTokensDetails", "trafficType", "serviceTier"):
        body["usageMetadata"].pop(key, None)
    body.pop("createTime", None)
    for c in body["candidates"]:
        c.setdefault("index", 0)
    assert gemini.encode_response(gemini.decode_response(body)) == body


# ---------------------------------------------------------------- embeddings


def test_recorded_embeddings() -> None:
    fx = fixture("embeddings_batch_embed_contents")
    req = gemini.decode_embedding_request(fx["request"]["body"], model="gemini-embedding-001")
    assert gemini.encode_embedding_request(req, model="gemini-embedding-001") == fx["request"]["body"]
    resp = gemini.decode_embedding_response(json.loads(fx["response"]["body_text"]), model="gemini-embedding-001")
    assert [len(e.vector) for e in resp.data] == [768]


def test_embeddings_both_ways() -> None:
    req = ir.EmbeddingRequest(
        model="text-embedding-004", input=["a", "b"], dimensions=768, extra={"taskType": "RETRIEVAL_QUERY"}
    )
    body = gemini.encode_embedding_request(req, model="text-embedding-004")
    assert body == {
        "requests": [
            {
                "model": "models/text-embedding-004",
                "content": {"parts": [{"text": t}]},
                "outputDimensionality": 768,
                "taskType": "RETRIEVAL_QUERY",
            }
            for t in ("a", "b")
        ]
    }
    assert gemini.encode_embedding_request(req, model="models/x", batch=False)["model"] == "models/x"
    back = gemini.decode_embedding_request(body, model="text-embedding-004")
    assert (back.input, back.dimensions) == (["a", "b"], 768)
    resp = gemini.decode_embedding_response({"embeddings": [{"values": [0.1, 0.2]}, {"values": [0.3]}]}, model="m")
    assert [(e.index, e.vector) for e in resp.data] == [(0, [0.1, 0.2]), (1, [0.3])]
    assert gemini.decode_embedding_response({"embedding": {"values": [1.0]}}, model="m").data[0].vector == [1.0]
    assert gemini.encode_embedding_response(resp) == {"embeddings": [{"values": [0.1, 0.2]}, {"values": [0.3]}]}
    assert gemini.encode_embedding_response(resp, batch=False) == {"embedding": {"values": [0.1, 0.2]}}
    assert gemini.decode_embedding_request({"content": {"parts": [{"text": "one"}]}}, model="m").input == ["one"]
    with pytest.raises(BadRequestError) as e:
        gemini.decode_embedding_request({"requests": [{"content": {"parts": [{"inlineData": {}}]}}]}, model="m")
    assert e.value.param == "requests[0].content.parts"


# ---------------------------------------------------------------- round trip: IR response -> body -> IR response

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


usages = st.builds(
    lambda i, o, c, r: ir.Usage(
        input_tokens=i + c, output_tokens=o + r, cache_read_tokens=c, reasoning_tokens=r, reasoning_reported=True
    ),
    st.integers(0, 10**6),
    st.integers(0, 10**5),
    st.integers(0, 10**5),
    st.integers(0, 10**5),
)


@st.composite
def responses(draw: st.DrawFn) -> ir.Response:
    choices = []
    for index in range(draw(st.integers(1, 2))):
        parts = draw(assistant_parts())
        calls = any(isinstance(p, ir.ToolCallPart) for p in parts)
        finish = draw(st.sampled_from(["stop", "length", "content_filter"]))
        if finish == "stop" and calls:
            finish = "tool_calls"
        meta = draw(st.none() | st.just({"groundingMetadata": {"webSearchQueries": ["q"]}}))
        choices.append(
            ir.Choice(index=index, parts=parts, finish_reason=finish, native_finish_reason=None, provider_specific=meta)
        )
    return ir.Response(id=draw(names), model="gemini-2.5-flash", choices=choices, usage=draw(st.none() | usages))


@settings(max_examples=100, deadline=None)
@given(responses())
def test_response_round_trip(resp: ir.Response) -> None:
    back = gemini.decode_response(json.loads(json.dumps(gemini.encode_response(resp))))
    assert (back.id, back.model, back.usage) == (resp.id, resp.model, resp.usage)
    for a, b in zip(resp.choices, back.choices, strict=True):
        assert (a.index, a.finish_reason, a.provider_specific) == (b.index, b.finish_reason, b.provider_specific)
        assert b.native_finish_reason == gemini.finish_reason_out(a.finish_reason, None)
        # ids the IR had (not synthesized) are sent as functionCall.id, so they come back too
        assert a.parts == b.parts
