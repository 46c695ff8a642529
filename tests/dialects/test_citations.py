"""Citations across dialects: OpenAI url_citation annotations, Anthropic citation locations and Gemini
grounding / citation metadata, decoded from each provider and encoded for each client, whole and streamed.

The provider bodies follow the shapes in each provider's documentation (web search with OpenAI's search
models, Anthropic's web_search tool and document citations, Gemini's Google Search grounding)."""

from __future__ import annotations

import doctest
import itertools
import json
from functools import cache
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from jsonschema import Draft202012Validator

from llmswitch import ir
from llmswitch.dialects import (
    anthropic_messages,
    anthropic_stream,
    citations,
    gemini,
    gemini_stream,
    native_finish,
    openai_chat,
    openai_chat_stream,
    web_search,
)

SPECS = Path(__file__).resolve().parents[2].parent / "shared" / "specs"

OPENAI_TEXT = "Stocks rose today ([reuters.com](https://www.reuters.com/markets?utm_source=openai)). Bonds fell."
OPENAI_ANNOTATION = {
    "type": "url_citation",
    "url_citation": {
        "end_index": 86,
        "start_index": 18,
        "title": "Markets news",
        "url": "https://www.reuters.com/markets?utm_source=openai",
    },
}
OPENAI_BODY = {
    "id": "chatcmpl-1",
    "object": "chat.completion",
    "created": 1741034290,
    "model": "gpt-4o-search-preview-2025-03-11",
    "choices": [
        {
            "index": 0,
            "message": {
                "role": "assistant",
                "content": OPENAI_TEXT,
                "refusal": None,
                "annotations": [OPENAI_ANNOTATION],
            },
            "finish_reason": "stop",
        }
    ],
    "usage": {"prompt_tokens": 9, "completion_tokens": 30, "total_tokens": 39},
}

WEB_CITATION = {
    "type": "web_search_result_location",
    "url": "https://en.wikipedia.org/wiki/Claude_Shannon",
    "title": "Claude Shannon - Wikipedia",
    "encrypted_index": "Eo8BCioIAhgBIiQyYjQ0",
    "cited_text": "Claude Elwood Shannon (April 30, 1916 - February 24, 2001) was an American mathematician",
}
DOC_CITATION = {
    "type": "char_location",
    "cited_text": "The grass is green.",
    "document_index": 0,
    "document_title": "Facts",
    "start_char_index": 0,
    "end_char_index": 20,
    "file_id": None,
}
ANTHROPIC_BODY = {
    "id": "msg_1",
    "type": "message",
    "role": "assistant",
    "model": "claude-sonnet-4-5-20250929",
    "content": [
        {"type": "text", "text": "I'll search for that."},
        {
            "type": "server_tool_use",
            "id": "srvtoolu_1",
            "name": "web_search",
            "input": {"query": "claude shannon born"},
        },
        {
            "type": "web_search_tool_result",
            "tool_use_id": "srvtoolu_1",
            "content": [
                {
                    "type": "web_search_result",
                    "url": "https://en.wikipedia.org/wiki/Claude_Shannon",
                    "title": "Claude Shannon - Wikipedia",
                    "encrypted_content": "EqgfCioIARgBIiQ3YTAw",
                    "page_age": "April 30, 2025",
                }
            ],
        },
        {"type": "text", "text": " Shannon was born on April 30, 1916.", "citations": [WEB_CITATION]},
        {"type": "text", "text": " The grass is green.", "citations": [DOC_CITATION]},
    ],
    "stop_reason": "end_turn",
    "stop_sequence": None,
    "usage": {"input_tokens": 10, "output_tokens": 20, "server_tool_use": {"web_search_requests": 1}},
}

# "é" is two bytes in UTF-8: Gemini's offsets are bytes, ours characters
GEMINI_TEXT = "Spain won Euro 2024, beating England. Café owners cheered."
GEMINI_BODY = {
    "candidates": [
        {
            "content": {"role": "model", "parts": [{"text": GEMINI_TEXT}]},
            "finishReason": "STOP",
            "groundingMetadata": {
                "webSearchQueries": ["euro 2024 winner"],
                "searchEntryPoint": {"renderedContent": "<div>search</div>"},
                "groundingChunks": [
                    {
                        "web": {
                            "uri": "https://vertexaisearch.cloud.google.com/grounding-api-redirect/a",
                            "title": "uefa.com",
                        }
                    },
                    {
                        "web": {
                            "uri": "https://vertexaisearch.cloud.google.com/grounding-api-redirect/b",
                            "title": "bbc.com",
                        }
                    },
                ],
                "groundingSupports": [
                    {
                        "segment": {"endIndex": 37, "text": "Spain won Euro 2024, beating England."},
                        "groundingChunkIndices": [0],
                    },
                    {
                        "segment": {"startIndex": 38, "endIndex": 59, "text": "Café owners cheered."},
                        "groundingChunkIndices": [0, 1],
                    },
                ],
            },
        }
    ],
    "modelVersion": "gemini-2.5-flash",
    "responseId": "r1",
}


@cache
def _components(spec: str) -> dict[str, Any]:
    doc: dict[str, Any] = json.loads((SPECS / spec).read_text())
    return _nullable(doc["components"])


def _nullable(node: Any) -> Any:
    """OpenAPI 3.0's ``nullable`` as JSON Schema (the OpenAI spec is 3.0)."""
    if isinstance(node, list):
        return [_nullable(x) for x in node]
    if not isinstance(node, dict):
        return node
    out = {k: _nullable(v) for k, v in node.items()}
    if out.pop("nullable", False):
        return {"anyOf": [out, {"type": "null"}]}
    return out


def assert_schema(spec: str, name: str, value: Any) -> None:
    v = Draft202012Validator({"$ref": f"#/components/schemas/{name}", "components": _components(spec)})
    problems = [f"{list(e.path)}: {e.message[:200]}" for e in v.iter_errors(value)]
    assert not problems, problems


def assert_openai_annotations(annotations: Any) -> None:
    schema = _components("openai-openapi.json")["schemas"]["ChatCompletionResponseMessage"]["properties"]
    Draft202012Validator(schema["annotations"]).validate(annotations)


@pytest.mark.parametrize("module", [citations, web_search, native_finish], ids=lambda m: m.__name__)
def test_doctests(module: Any) -> None:
    result = doctest.testmod(module)
    assert result.attempted > 0 and result.failed == 0


# ---------------------------------------------------------------- OpenAI


def test_openai_annotations_decode_with_their_offsets_and_go_back_unchanged() -> None:
    resp = openai_chat.decode_response(OPENAI_BODY)
    (part,) = resp.choices[0].parts
    assert isinstance(part, ir.TextPart) and part.citations is not None
    (c,) = part.citations
    assert (c.url, c.title, c.start, c.end) == (OPENAI_ANNOTATION["url_citation"]["url"], "Markets news", 18, 86)
    assert OPENAI_TEXT[c.start : c.end].startswith("([reuters.com]")
    # the full path gives an OpenAI client what the fast path relays
    assert openai_chat.encode_response(resp)["choices"][0]["message"]["annotations"] == [OPENAI_ANNOTATION]


def test_openai_annotations_in_a_stream_survive_a_round_trip() -> None:
    chunks = [
        {
            "id": "c",
            "object": "chat.completion.chunk",
            "created": 1,
            "model": "m",
            "choices": [{"index": 0, "delta": d, "finish_reason": f}],
        }
        for d, f in [
            ({"role": "assistant", "content": ""}, None),
            ({"content": OPENAI_TEXT[:40]}, None),
            ({"content": OPENAI_TEXT[40:]}, None),
            ({"annotations": [OPENAI_ANNOTATION]}, None),
            ({}, "stop"),
        ]
    ]
    raw = b"".join(b"data: " + json.dumps(c).encode() + b"\n\n" for c in chunks) + b"data: [DONE]\n\n"
    dec = openai_chat_stream.StreamDecoder()
    events = dec.feed(raw) + dec.close()
    cited = [e.citations for e in events if e.citations]
    assert [(c.start, c.end) for cs in cited for c in cs] == [(18, 86)]
    enc = openai_chat_stream.StreamEncoder(dec.meta, include_usage=False)
    out = [c for e in events if (c := enc.chunk(e)) is not None]
    assert [
        ch["choices"][0]["delta"].get("annotations") for ch in out if "annotations" in ch["choices"][0]["delta"]
    ] == [[OPENAI_ANNOTATION]]


# ---------------------------------------------------------------- Anthropic


def test_anthropic_citations_reach_an_openai_client_in_the_schemas_shape() -> None:
    resp = anthropic_messages.decode_response(ANTHROPIC_BODY)
    msg = openai_chat.encode_response(resp)["choices"][0]["message"]
    content = msg["content"]
    assert content == "I'll search for that. Shannon was born on April 30, 1916. The grass is green."
    (ann,) = msg["annotations"]
    span = ann["url_citation"]
    assert content[span["start_index"] : span["end_index"]] == " Shannon was born on April 30, 1916."
    assert (span["url"], span["title"]) == (WEB_CITATION["url"], WEB_CITATION["title"])
    assert_openai_annotations(msg["annotations"])
    # a place in a document has no URL: LiteLLM's place for it, as Anthropic wrote it
    assert msg["provider_specific_fields"]["citations"] == [DOC_CITATION]
    # the server-tool blocks ride along, to be sent back on the next turn
    assert [b["type"] for b in msg["provider_specific_fields"]["blocks"]] == [
        "server_tool_use",
        "web_search_tool_result",
    ]


def test_anthropic_citations_go_back_to_an_anthropic_client_unchanged() -> None:
    back = anthropic_messages.encode_response(anthropic_messages.decode_response(ANTHROPIC_BODY))
    assert back["content"] == ANTHROPIC_BODY["content"]


def test_only_anthropics_own_citations_are_sent_to_anthropic() -> None:
    ours = ir.Citation(url="https://a.test", title="A", native={**WEB_CITATION, "encrypted_index": ""})
    theirs = ir.Citation(url="https://b.test", provider="openai", native=OPENAI_ANNOTATION)
    own = citations.anthropic_one(WEB_CITATION)
    msg = ir.Message(role="assistant", content=[ir.TextPart("cited", citations=[ours, theirs, own])])
    _, turns = anthropic_messages.map_messages_out([ir.Message(role="user", content=[ir.TextPart("q")]), msg])
    assert turns[1]["content"] == [{"type": "text", "text": "cited", "citations": [WEB_CITATION]}]


def _anthropic_sse(events: list[dict[str, Any]]) -> bytes:
    return b"".join(f"event: {e['type']}\ndata: {json.dumps(e)}\n\n".encode() for e in events)


ANTHROPIC_STREAM = [
    {
        "type": "message_start",
        "message": {"id": "msg_1", "model": "claude", "usage": {"input_tokens": 5, "output_tokens": 1}},
    },
    {"type": "content_block_start", "index": 0, "content_block": {"type": "text", "text": ""}},
    {"type": "content_block_delta", "index": 0, "delta": {"type": "text_delta", "text": "Intro."}},
    {"type": "content_block_stop", "index": 0},
    {"type": "content_block_start", "index": 1, "content_block": {"type": "text", "text": "", "citations": []}},
    {"type": "content_block_delta", "index": 1, "delta": {"type": "citations_delta", "citation": WEB_CITATION}},
    {"type": "content_block_delta", "index": 1, "delta": {"type": "text_delta", "text": " Shannon was born"}},
    {"type": "content_block_delta", "index": 1, "delta": {"type": "text_delta", "text": " in 1916."}},
    {"type": "content_block_stop", "index": 1},
    {
        "type": "message_delta",
        "delta": {"stop_reason": "end_turn", "stop_sequence": None},
        "usage": {"output_tokens": 9},
    },
    {"type": "message_stop"},
]


def _anthropic_events() -> list[ir.StreamEvent]:
    d = anthropic_stream.StreamDecoder()
    return d.feed(_anthropic_sse(ANTHROPIC_STREAM)) + d.close()


def test_streamed_citations_delta_is_decoded_over_its_blocks_text() -> None:
    events = _anthropic_events()
    (cited,) = [e.citations for e in events if e.citations]
    text = "".join(e.text or "" for e in events)
    assert [(text[c.start : c.end], c.url) for c in cited] == [(" Shannon was born in 1916.", WEB_CITATION["url"])]


def test_streamed_anthropic_citations_reach_an_openai_client_as_annotations() -> None:
    enc = openai_chat_stream.StreamEncoder(ir.StreamMeta(id="x", model="m"), include_usage=False)
    chunks = [c for e in _anthropic_events() if (c := enc.chunk(e)) is not None]
    text = "".join(ch["choices"][0]["delta"].get("content") or "" for ch in chunks)
    anns = [a for ch in chunks for a in ch["choices"][0]["delta"].get("annotations") or ()]
    assert_openai_annotations(anns)
    (a,) = anns
    assert text[a["url_citation"]["start_index"] : a["url_citation"]["end_index"]] == " Shannon was born in 1916."


def test_streamed_anthropic_citations_reach_an_anthropic_client_in_their_block() -> None:
    enc = anthropic_stream.StreamEncoder(ir.StreamMeta(id="msg_1", model="claude"))
    raw = b"".join(enc.encode(e) for e in _anthropic_events()) + enc.close()
    again = anthropic_stream.StreamDecoder()
    events = again.feed(raw) + again.close()
    (cited,) = [e.citations for e in events if e.citations]
    text = "".join(e.text or "" for e in events)
    assert [(text[c.start : c.end], c.native) for c in cited] == [(" Shannon was born in 1916.", WEB_CITATION)]


# ---------------------------------------------------------------- Gemini


def test_gemini_grounding_reads_as_citations_with_character_offsets() -> None:
    (part,) = gemini.decode_response(GEMINI_BODY).choices[0].parts
    assert isinstance(part, ir.TextPart) and part.citations is not None
    spans = [(part.text[c.start : c.end], c.title) for c in part.citations]
    assert spans == [
        ("Spain won Euro 2024, beating England.", "uefa.com"),
        ("Café owners cheered.", "uefa.com"),
        ("Café owners cheered.", "bbc.com"),
    ]


def test_gemini_grounding_reaches_an_openai_client_as_annotations() -> None:
    msg = openai_chat.encode_response(gemini.decode_response(GEMINI_BODY))["choices"][0]["message"]
    assert_openai_annotations(msg["annotations"])
    got = [
        (msg["content"][a["url_citation"]["start_index"] : a["url_citation"]["end_index"]], a["url_citation"]["title"])
        for a in msg["annotations"]
    ]
    assert got[1:] == [("Café owners cheered.", "uefa.com"), ("Café owners cheered.", "bbc.com")]
    # the rest of the grounding (queries, the search entry point Google asks to show) rides along
    assert msg["provider_specific_fields"]["groundingMetadata"]["webSearchQueries"] == ["euro 2024 winner"]


def test_gemini_grounding_reaches_an_anthropic_client_as_cited_blocks() -> None:
    out = anthropic_messages.encode_response(gemini.decode_response(GEMINI_BODY))
    blocks = out["content"]
    assert [b["text"] for b in blocks] == ["Spain won Euro 2024, beating England.", " ", "Café owners cheered."]
    assert [len(b.get("citations", [])) for b in blocks] == [1, 0, 2]
    for b in blocks:
        for c in b.get("citations", []):
            assert_schema("anthropic-openapi.json", "ResponseWebSearchResultLocationCitation", c)
            assert c["cited_text"] == b["text"]


def test_gemini_grounding_goes_back_to_a_gemini_client_as_it_came() -> None:
    back = gemini.encode_response(gemini.decode_response(GEMINI_BODY))
    assert back["candidates"][0] == {**GEMINI_BODY["candidates"][0], "index": 0}


def test_other_providers_citations_reach_a_gemini_client_as_grounding_in_bytes() -> None:
    body = json.loads(json.dumps(OPENAI_BODY))
    body["choices"][0]["message"]["content"] = "é" + OPENAI_TEXT  # one character, two bytes, before the span
    body["choices"][0]["message"]["annotations"][0]["url_citation"].update(start_index=19, end_index=87)
    gm = gemini.encode_response(openai_chat.decode_response(body))["candidates"][0]["groundingMetadata"]
    (support,) = gm["groundingSupports"]
    assert support["segment"]["startIndex"] == 20 and support["segment"]["endIndex"] == 88
    assert support["segment"]["text"].startswith("([reuters.com]")
    assert gm["groundingChunks"] == [
        {"web": {"uri": OPENAI_ANNOTATION["url_citation"]["url"], "title": "Markets news"}}
    ]
    # and Anthropic's web searches as the queries
    gm = gemini.encode_response(anthropic_messages.decode_response(ANTHROPIC_BODY))["candidates"][0][
        "groundingMetadata"
    ]
    assert gm["webSearchQueries"] == ["claude shannon born"]


def test_streamed_gemini_grounding_reaches_openai_and_back_to_gemini() -> None:
    chunks = [
        {"candidates": [{"content": {"role": "model", "parts": [{"text": GEMINI_TEXT[:20]}]}}], "responseId": "r1"},
        {
            "candidates": [
                {**GEMINI_BODY["candidates"][0], "content": {"role": "model", "parts": [{"text": GEMINI_TEXT[20:]}]}}
            ],
            "responseId": "r1",
        },
    ]
    raw = b"".join(b"data: " + json.dumps(c).encode() + b"\r\n\r\n" for c in chunks)
    d = gemini_stream.StreamDecoder()
    events = d.feed(raw) + d.close()
    enc = openai_chat_stream.StreamEncoder(d.meta, include_usage=False)
    out = [c for e in events if (c := enc.chunk(e)) is not None]
    anns = [a for ch in out for a in ch["choices"][0]["delta"].get("annotations") or ()]
    assert_openai_annotations(anns)
    assert [GEMINI_TEXT[a["url_citation"]["start_index"] : a["url_citation"]["end_index"]] for a in anns] == [
        "Spain won Euro 2024, beating England.",
        "Café owners cheered.",
        "Café owners cheered.",
    ]
    genc = gemini_stream.StreamEncoder(d.meta)
    wire = b"".join(genc.encode(e) for e in events) + genc.close()
    last = json.loads(wire.split(b"\r\n\r\n")[-2][len(b"data: ") :])
    assert last["candidates"][0]["groundingMetadata"] == GEMINI_BODY["candidates"][0]["groundingMetadata"]


def test_streamed_anthropic_citations_reach_a_gemini_client_as_grounding() -> None:
    enc = gemini_stream.StreamEncoder(ir.StreamMeta(id="r", model="m"))
    wire = b"".join(enc.encode(e) for e in _anthropic_events()) + enc.close()
    frames = [json.loads(f[len(b"data: ") :]) for f in wire.split(b"\r\n\r\n") if f]
    (gm,) = [c["groundingMetadata"] for f in frames for c in f.get("candidates", ()) if "groundingMetadata" in c]
    text = "".join(
        p.get("text", "")
        for f in frames
        for c in f.get("candidates", ())
        for p in (c.get("content") or {}).get("parts", ())
    )
    (support,) = gm["groundingSupports"]
    seg = support["segment"]
    assert text.encode()[seg["startIndex"] : seg["endIndex"]].decode() == " Shannon was born in 1916."


# ---------------------------------------------------------------- pieces


@pytest.mark.parametrize(
    ("spans", "blocks"),
    [
        ([(0, 5)], [("Hello", 1), (" world", 0)]),
        ([(6, 11)], [("Hello ", 0), ("world", 1)]),
        ([(0, 11), (6, 11)], [("Hello ", 1), ("world", 2)]),
        ([(None, None)], [("Hello world", 1)]),
        ([(3, 3)], [("Hel", 0), ("lo world", 1)]),
    ],
)
def test_split_blocks_cuts_text_where_cited_spans_begin_and_end(
    spans: list[tuple[int | None, int | None]], blocks: list[tuple[str, int]]
) -> None:
    p = ir.TextPart("Hello world", citations=[ir.Citation(url="u", start=s, end=e) for s, e in spans])
    assert [(t, len(c)) for t, c in citations.split_blocks(p)] == blocks


# ---------------------------------------------------------------- native stop reasons (a server-tool loop goes on)

PAUSED = {**ANTHROPIC_BODY, "content": ANTHROPIC_BODY["content"][:3], "stop_reason": "pause_turn"}


def test_pause_turn_reaches_an_openai_client_in_provider_specific_fields() -> None:
    choice = openai_chat.encode_response(anthropic_messages.decode_response(PAUSED))["choices"][0]
    assert choice["finish_reason"] == "stop"
    assert choice["provider_specific_fields"] == {"native_finish_reason": "pause_turn"}
    assert choice["message"]["provider_specific_fields"]["native_finish_reason"] == "pause_turn"


@pytest.mark.parametrize(
    ("native", "told"),
    [
        ("end_turn", False),
        ("tool_use", False),
        ("refusal", True),
        ("model_context_window_exceeded", True),
        ("SAFETY", True),
        ("STOP", False),
    ],
)
def test_only_stop_reasons_openais_word_hides_are_told(native: str, told: bool) -> None:
    assert (openai_chat.native_finish_out(native) is not None) is told


def test_pause_turn_reaches_an_anthropic_client_natively_whole_and_streamed() -> None:
    assert anthropic_messages.encode_response(anthropic_messages.decode_response(PAUSED))["stop_reason"] == "pause_turn"
    events = [
        {**e, "delta": {"stop_reason": "pause_turn", "stop_sequence": None}} if e["type"] == "message_delta" else e
        for e in ANTHROPIC_STREAM
    ]
    d = anthropic_stream.StreamDecoder()
    enc = anthropic_stream.StreamEncoder(ir.StreamMeta(id="m", model="c"))
    raw = b"".join(enc.encode(e) for e in d.feed(_anthropic_sse(events)) + d.close()) + enc.close()
    assert b'"stop_reason":"pause_turn"' in raw


def test_pause_turn_in_an_openai_stream_chunk() -> None:
    enc = openai_chat_stream.StreamEncoder(ir.StreamMeta(id="x", model="m"), include_usage=False)
    chunk = enc.chunk(ir.StreamEvent(finish_reason="stop", native_finish_reason="pause_turn"))
    assert chunk is not None and chunk["choices"][0]["provider_specific_fields"] == {
        "native_finish_reason": "pause_turn"
    }
    plain = enc.chunk(ir.StreamEvent(finish_reason="stop", native_finish_reason="end_turn"))
    assert plain is not None and "provider_specific_fields" not in plain["choices"][0]


# ---------------------------------------------------------------- round trips (properties)

_texts = st.text(st.characters(blacklist_categories=("Cs",)), min_size=1, max_size=40)


@st.composite
def cited_openai_bodies(draw: st.DrawFn) -> tuple[str, list[tuple[int, int, str]]]:
    """A content and non-overlapping cited spans of it, each with its own URL."""
    text = draw(_texts)
    cuts = sorted(set(draw(st.lists(st.integers(0, len(text)), max_size=6))))
    pairs = [(a, b) for a, b in itertools.pairwise(cuts) if a < b]
    chosen = draw(st.lists(st.sampled_from(pairs), unique=True, max_size=3)) if pairs else []
    return text, [(a, b, f"https://s{i}.example/") for i, (a, b) in enumerate(sorted(chosen))]


def _openai_body(text: str, spans: list[tuple[int, int, str]]) -> dict[str, Any]:
    anns = [
        {"type": "url_citation", "url_citation": {"end_index": b, "start_index": a, "title": "t", "url": u}}
        for a, b, u in spans
    ]
    msg = {"role": "assistant", "content": text, "annotations": anns}
    return {**OPENAI_BODY, "choices": [{"index": 0, "message": msg, "finish_reason": "stop"}]}


def _spans_of(msg: dict[str, Any]) -> list[tuple[int, int, str]]:
    return sorted(
        (a["url_citation"]["start_index"], a["url_citation"]["end_index"], a["url_citation"]["url"])
        for a in msg.get("annotations") or ()
    )


@settings(max_examples=150, deadline=None)
@given(cited_openai_bodies())
def test_openai_citations_survive_a_trip_through_anthropic_blocks(case: tuple[str, list[tuple[int, int, str]]]) -> None:
    text, spans = case
    anthropic = anthropic_messages.encode_response(openai_chat.decode_response(_openai_body(text, spans)))
    for block in anthropic["content"]:
        for c in block.get("citations", ()):
            assert c["cited_text"] == block["text"]  # each cited span is a block of its own
    back = openai_chat.encode_response(anthropic_messages.decode_response(anthropic))["choices"][0]["message"]
    assert back["content"] == text
    assert _spans_of(back) == sorted(spans)


@settings(max_examples=150, deadline=None)
@given(cited_openai_bodies())
def test_openai_citations_survive_a_trip_through_gemini_byte_offsets(
    case: tuple[str, list[tuple[int, int, str]]],
) -> None:
    text, spans = case
    g = gemini.encode_response(openai_chat.decode_response(_openai_body(text, spans)))
    for s in g["candidates"][0].get("groundingMetadata", {}).get("groundingSupports", ()):
        seg = s["segment"]
        assert text.encode()[seg["startIndex"] : seg["endIndex"]].decode() == seg["text"]
    back = openai_chat.encode_response(gemini.decode_response(g))["choices"][0]["message"]
    assert back["content"] == text
    assert _spans_of(back) == sorted(spans)


def test_gemini_citation_metadata_reaches_an_openai_client() -> None:
    """Recitation sources (Vertex AI names the list ``citations``), offsets in bytes."""
    text = "Ünïcode first. Then a quoted line."
    start = len("Ünïcode first. ".encode())
    cand = {
        "content": {"role": "model", "parts": [{"text": text}]},
        "finishReason": "STOP",
        "citationMetadata": {
            "citations": [
                {"startIndex": start, "endIndex": len(text.encode()), "uri": "https://q.example/", "license": "mit"}
            ]
        },
    }
    msg = openai_chat.encode_response(gemini.decode_response({"candidates": [cand]}))["choices"][0]["message"]
    (a,) = msg["annotations"]
    assert text[a["url_citation"]["start_index"] : a["url_citation"]["end_index"]] == "Then a quoted line."
    assert_openai_annotations(msg["annotations"])


def test_openai_annotations_past_the_content_go_back_as_they_came() -> None:
    """The full path does not correct an upstream's offsets: the fast path relays them unchanged."""
    body = json.loads(json.dumps(OPENAI_BODY))
    body["choices"][0]["message"]["annotations"][0]["url_citation"]["end_index"] = len(OPENAI_TEXT) + 5
    msg = openai_chat.encode_response(openai_chat.decode_response(body))["choices"][0]["message"]
    assert msg["annotations"] == body["choices"][0]["message"]["annotations"]


def test_grounding_repeated_on_later_chunks_is_told_once() -> None:
    cand = {**GEMINI_BODY["candidates"][0]}
    first = {**cand, "finishReason": None, "content": {"role": "model", "parts": [{"text": GEMINI_TEXT}]}}
    last = {**cand, "content": {"role": "model", "parts": [{"text": ""}]}}
    raw = b"".join(b"data: " + json.dumps({"candidates": [c]}).encode() + b"\r\n\r\n" for c in (first, last))
    d = gemini_stream.StreamDecoder()
    events = d.feed(raw) + d.close()
    assert len([c for e in events for c in e.citations or ()]) == 3
