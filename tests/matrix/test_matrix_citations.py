"""Citations (issue 14, section 3): what a provider cites reaches every client, whole and streamed.

Each family answers in its own documented shape (OpenAI's ``url_citation`` annotations from a search
model, Anthropic's ``web_search_result_location`` citations and ``citations_delta`` events, Gemini's
``groundingMetadata``); each client reads them back through its own SDK's types, as (cited text, URL)
pairs: OpenAI clients from ``annotations`` over the message content, Anthropic clients from their
text blocks' ``citations``, google-genai clients from ``grounding_supports`` over the candidate's text.

Also here: the fast path and the full path give an OpenAI client the same annotations, and Anthropic's
``pause_turn`` (a server-tool loop that paused) reaches every client so the loop can go on.
"""

from __future__ import annotations

import json
from typing import Any

import pytest
from gateway_harness import chat_request
from harness import Ask, Seen, ServedGateway, ask, openai_answer, openai_stream, plain, the_request

from llmswitch.testing import FakeUpstream, Reply

CLIENTS = ("openai", "sdk", "anthropic", "gemini")
FAMILIES = ("openai", "anthropic", "gemini")
QUESTION = "What moved the markets today?"

# ---------------------------------------------------------------- each family's answer, as its API documents it

URL_A = "https://www.reuters.com/markets/?utm_source=openai"
URL_B = "https://www.bbc.co.uk/news/business?utm_source=openai"
INTRO = "Markets — a summary. "
CLAIM_A = "Stocks rose on rate hopes."
CLAIM_B = " Bonds fell; café chains gained."
TEXT = INTRO + CLAIM_A + CLAIM_B
SPAN_A = (len(INTRO), len(INTRO) + len(CLAIM_A))
SPAN_B = (SPAN_A[1], len(TEXT))
CITED = [(CLAIM_A, URL_A), (CLAIM_B, URL_B)]


def _annotation(span: tuple[int, int], url: str, title: str) -> dict[str, Any]:
    return {
        "type": "url_citation",
        "url_citation": {"end_index": span[1], "start_index": span[0], "title": title, "url": url},
    }


ANNOTATIONS = [_annotation(SPAN_A, URL_A, "Reuters"), _annotation(SPAN_B, URL_B, "BBC")]


def _web(url: str, title: str) -> dict[str, Any]:
    return {
        "type": "web_search_result_location",
        "url": url,
        "title": title,
        "encrypted_index": "EpMBCioIBhgB",
        "cited_text": "…",
    }


SEARCH_BLOCKS = [
    {"type": "server_tool_use", "id": "srvtoolu_01", "name": "web_search", "input": {"query": "markets today"}},
    {
        "type": "web_search_tool_result",
        "tool_use_id": "srvtoolu_01",
        "content": [
            {
                "type": "web_search_result",
                "url": URL_A,
                "title": "Reuters",
                "encrypted_content": "EqgfCio",
                "page_age": None,
            }
        ],
    },
]
ANTHROPIC_CONTENT = [
    *SEARCH_BLOCKS,
    {"type": "text", "text": INTRO, "citations": None},
    {"type": "text", "text": CLAIM_A, "citations": [_web(URL_A, "Reuters")]},
    {"type": "text", "text": CLAIM_B, "citations": [_web(URL_B, "BBC")]},
]
ANTHROPIC_USAGE = {"input_tokens": 9, "output_tokens": 4, "server_tool_use": {"web_search_requests": 1}}


def anthropic_answer(content: list[dict[str, Any]], stop: str = "end_turn") -> str:
    return json.dumps(
        {
            "id": "msg_matrix1",
            "type": "message",
            "role": "assistant",
            "model": "claude-sonnet-4-20250514",
            "content": content,
            "stop_reason": stop,
            "stop_sequence": None,
            "usage": ANTHROPIC_USAGE,
        }
    )


def anthropic_stream(content: list[dict[str, Any]], stop: str = "end_turn") -> str:
    """A Messages stream of ``content``: server-tool blocks whole, text blocks as Anthropic streams them
    (``citations_delta`` events before the text)."""
    start = {
        "id": "msg_matrix1",
        "type": "message",
        "role": "assistant",
        "model": "claude-sonnet-4-20250514",
        "content": [],
        "stop_reason": None,
        "stop_sequence": None,
        "usage": {"input_tokens": 9, "output_tokens": 1},
    }
    events: list[dict[str, Any]] = [{"type": "message_start", "message": start}]
    for i, block in enumerate(content):
        if block["type"] != "text":
            events.append({"type": "content_block_start", "index": i, "content_block": block})
        else:
            opening = {"type": "text", "text": ""} | ({"citations": []} if block.get("citations") else {})
            events.append({"type": "content_block_start", "index": i, "content_block": opening})
            for c in block.get("citations") or ():
                events.append(
                    {"type": "content_block_delta", "index": i, "delta": {"type": "citations_delta", "citation": c}}
                )
            half = len(block["text"]) // 2
            for piece in (block["text"][:half], block["text"][half:]):
                events.append(
                    {"type": "content_block_delta", "index": i, "delta": {"type": "text_delta", "text": piece}}
                )
        events.append({"type": "content_block_stop", "index": i})
    delta = {"type": "message_delta", "delta": {"stop_reason": stop, "stop_sequence": None}, "usage": ANTHROPIC_USAGE}
    events += [delta, {"type": "message_stop"}]
    return "".join(f"event: {e['type']}\ndata: {json.dumps(e)}\n\n" for e in events)


def _bytes(s: str) -> int:
    return len(s.encode())


GROUNDING = {
    "webSearchQueries": ["markets today"],
    "searchEntryPoint": {"renderedContent": '<div class="container">…</div>'},
    "groundingChunks": [{"web": {"uri": URL_A, "title": "reuters.com"}}, {"web": {"uri": URL_B, "title": "bbc.co.uk"}}],
    "groundingSupports": [
        {
            "segment": {"startIndex": _bytes(INTRO), "endIndex": _bytes(INTRO + CLAIM_A), "text": CLAIM_A},
            "groundingChunkIndices": [0],
        },
        {
            "segment": {"startIndex": _bytes(INTRO + CLAIM_A), "endIndex": _bytes(TEXT), "text": CLAIM_B},
            "groundingChunkIndices": [1],
        },
    ],
}
GEMINI_USAGE = {"promptTokenCount": 9, "candidatesTokenCount": 4, "totalTokenCount": 13}


def gemini_answer() -> str:
    cand = {
        "content": {"role": "model", "parts": [{"text": TEXT}]},
        "finishReason": "STOP",
        "index": 0,
        "groundingMetadata": GROUNDING,
    }
    return json.dumps(
        {"candidates": [cand], "usageMetadata": GEMINI_USAGE, "modelVersion": "gemini-2.5-flash", "responseId": "g1"}
    )


def gemini_stream() -> str:
    first = {"content": {"role": "model", "parts": [{"text": TEXT[:30]}]}, "index": 0}
    last = {
        "content": {"role": "model", "parts": [{"text": TEXT[30:]}]},
        "finishReason": "STOP",
        "index": 0,
        "groundingMetadata": GROUNDING,
    }
    chunks = [
        {"candidates": [c], "usageMetadata": GEMINI_USAGE, "modelVersion": "gemini-2.5-flash", "responseId": "g1"}
        for c in (first, last)
    ]
    return "".join(f"data: {json.dumps(c)}\r\n\r\n" for c in chunks)


def cited_reply(family: str, stream: bool) -> Reply:
    if family == "openai":
        if stream:
            pieces = [{"role": "assistant", "content": ""}, {"content": TEXT[:30]}, {"content": TEXT[30:]}]
            return Reply(body=openai_stream([*pieces, {"annotations": ANNOTATIONS}]))
        return Reply(body=openai_answer({"content": TEXT, "annotations": ANNOTATIONS}))
    if family == "anthropic":
        return Reply(body=anthropic_stream(ANTHROPIC_CONTENT) if stream else anthropic_answer(ANTHROPIC_CONTENT))
    return Reply(body=gemini_stream() if stream else gemini_answer())


# ---------------------------------------------------------------- what each client sees, as (cited text, URL)


def _get(obj: Any, key: str) -> Any:
    if isinstance(obj, dict):
        return obj.get(key)
    value = getattr(obj, key, None)
    if value is None and getattr(obj, "model_extra", None):
        value = obj.model_extra.get(key)
    return value


def citations_seen(client: str, seen: Seen) -> list[tuple[str, str]]:
    if client in ("openai", "sdk"):
        annotations: list[Any] = []
        for r in seen.raw:
            for choice in r.choices:
                holder = _get(choice, "message") or _get(choice, "delta")
                annotations += _get(holder, "annotations") or []
        out = []
        for a in annotations:
            u = _get(a, "url_citation")
            out.append((seen.text[_get(u, "start_index") : _get(u, "end_index")], _get(u, "url")))
        return out
    if client == "anthropic":
        (message,) = seen.raw
        return [(b.text, c.url) for b in message.content if b.type == "text" for c in b.citations or ()]
    text = seen.text.encode()
    grounding = [c.grounding_metadata for r in seen.raw for c in r.candidates or () if c.grounding_metadata]
    pairs = []
    for gm in grounding:
        for s in gm.grounding_supports or ():
            seg = s.segment
            for i in s.grounding_chunk_indices or ():
                pairs.append((text[seg.start_index or 0 : seg.end_index].decode(), gm.grounding_chunks[i].web.uri))
    return pairs


def cases() -> list[Any]:
    return [
        pytest.param(client, family, stream, id=f"{client}-from-{family}-{'stream' if stream else 'whole'}")
        for client in CLIENTS
        for family in FAMILIES
        for stream in (False, True)
    ]


@pytest.mark.parametrize(("client", "family", "stream"), cases())
def test_citations_reach_every_client(
    gw: ServedGateway, up: FakeUpstream, client: str, family: str, stream: bool
) -> None:
    up.script(cited_reply(family, stream))
    seen = ask(client, f"m-{family}", plain(QUESTION), stream=stream, gw=gw, up=up)
    assert seen.status == 200, seen.error
    assert seen.text == TEXT
    got = citations_seen(client, seen)
    if client == "anthropic" and stream and family != "anthropic":
        # OpenAI and Gemini tell their citations after the text: the block they end in is the one cited
        assert [url for _, url in got] == [URL_A, URL_B] and all(
            claim in text for (claim, _), (text, _) in zip(CITED, got, strict=True)
        )
    else:
        assert got == CITED
    the_request(up, family)


# ---------------------------------------------------------------- what only some clients can carry


def test_an_openai_client_gets_anthropics_citations_in_the_schemas_shape(gw: ServedGateway, up: FakeUpstream) -> None:
    """Web citations as url_citation annotations (the openai SDK parses them into its own types); a
    document citation, which has no URL, in provider_specific_fields; the search blocks beside it."""
    doc = {
        "type": "page_location",
        "cited_text": "Revenue grew 12%.",
        "document_index": 0,
        "document_title": "Q3 report",
        "start_page_number": 2,
        "end_page_number": 3,
        "file_id": None,
    }
    content = [*ANTHROPIC_CONTENT, {"type": "text", "text": " Revenue grew.", "citations": [doc]}]
    up.script(Reply(body=anthropic_answer(content)))
    seen = ask("openai", "m-anthropic", plain(QUESTION), gw=gw)
    assert seen.status == 200, seen.error
    message = seen.raw[0].choices[0].message
    assert [type(a).__name__ for a in message.annotations] == ["Annotation", "Annotation"]
    assert citations_seen("openai", seen) == CITED
    extra = message.model_extra["provider_specific_fields"]
    assert extra["citations"] == [doc]
    assert [b["type"] for b in extra["blocks"]] == ["server_tool_use", "web_search_tool_result"]
    assert seen.usage is not None and seen.usage["server_tool_use"]["web_search_requests"] == 1


@pytest.mark.parametrize("stream", [False, True], ids=["whole", "stream"])
def test_fast_and_full_path_give_an_openai_client_the_same_annotations(
    gw: ServedGateway, up: FakeUpstream, stream: bool
) -> None:
    seen = {}
    for path in ("fast", "full"):
        up.reset()
        up.script(cited_reply("openai", stream))
        seen[path] = ask("openai", "m-openai", plain(QUESTION), stream=stream, gw=gw, drop=path == "full")
        assert seen[path].status == 200, seen[path].error
    assert citations_seen("openai", seen["fast"]) == citations_seen("openai", seen["full"]) == CITED
    if not stream:
        fast, full = (s.raw[0].choices[0].message.annotations for s in (seen["fast"], seen["full"]))
        assert [a.model_dump() for a in fast] == [a.model_dump() for a in full]


# ---------------------------------------------------------------- pause_turn: a server-tool loop that paused


@pytest.mark.parametrize("stream", [False, True], ids=["whole", "stream"])
@pytest.mark.parametrize("client", CLIENTS)
def test_pause_turn_reaches_every_client(gw: ServedGateway, up: FakeUpstream, client: str, stream: bool) -> None:
    content = [{"type": "text", "text": "Searching.", "citations": None}, *SEARCH_BLOCKS]
    up.script(
        Reply(body=anthropic_stream(content, "pause_turn") if stream else anthropic_answer(content, "pause_turn"))
    )
    seen = ask(client, "m-anthropic", plain(QUESTION), stream=stream, gw=gw, up=up)
    assert seen.status == 200, seen.error
    if client == "anthropic":
        assert seen.finish == "pause_turn"  # as Anthropic said it
        assert [b.type for b in seen.raw[0].content] == ["text", "server_tool_use", "web_search_tool_result"]
    elif client == "gemini":
        assert seen.finish == "STOP"  # Gemini has no word for it: it is told in the finish message, which
        # google-genai does not read (a REST client does)
        up.script(
            Reply(body=anthropic_stream(content, "pause_turn") if stream else anthropic_answer(content, "pause_turn"))
        )
        path, body = chat_request("gemini", "m-anthropic", QUESTION, stream=stream)
        r = gw.call("POST", path, body)
        frames = [json.loads(f[len(b"data: ") :]) for f in r.body.split(b"\r\n\r\n") if f] if stream else [r.json()]
        told = [c.get("finishMessage") for f in frames for c in f.get("candidates", ()) if "finishReason" in c]
        assert told == ["pause_turn"]
    else:
        assert seen.finish == "stop"
        fields = [_get(choice, "provider_specific_fields") for r in seen.raw for choice in r.choices]
        assert {"native_finish_reason": "pause_turn"} in fields


def test_an_openai_client_continues_a_paused_turn(gw: ServedGateway, up: FakeUpstream) -> None:
    """The answer's server-tool blocks, sent back in the assistant message, reach Anthropic as they were."""
    content = [{"type": "text", "text": "Searching.", "citations": None}, *SEARCH_BLOCKS]
    up.script(Reply(body=anthropic_answer(content, "pause_turn")))
    first = ask("openai", "m-anthropic", plain(QUESTION), gw=gw)
    message = first.raw[0].choices[0].message.model_dump(exclude_none=True)
    up.reset()
    up.script(Reply(body=anthropic_answer(ANTHROPIC_CONTENT)))
    history = [{"role": "user", "content": QUESTION}, message]
    seen = ask("openai", "m-anthropic", Ask(openai={"messages": history}), gw=gw)
    assert seen.status == 200, seen.error
    sent = the_request(up, "anthropic").json
    assert sent["messages"][-1]["role"] == "assistant"
    assert [b["type"] for b in sent["messages"][-1]["content"]] == ["text", "server_tool_use", "web_search_tool_result"]
    assert citations_seen("openai", seen) == CITED
