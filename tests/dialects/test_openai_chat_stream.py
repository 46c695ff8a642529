"""OpenAI chat streams: IR events -> SSE bytes -> IR events, and every vendor's variant of the wire."""

from __future__ import annotations

import json
import string
from dataclasses import dataclass, field
from typing import Any

import msgspec
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from llmswitch import ir
from llmswitch.dialects.openai_chat_stream import StreamDecoder, StreamEncoder
from llmswitch.errors import (
    APIStatusError,
    BadRequestError,
    ContextWindowExceededError,
    InternalServerError,
    RateLimitError,
)

texts = st.text(st.characters(blacklist_categories=("Cs",)), min_size=1, max_size=10)
names = st.text(string.ascii_letters + string.digits + "_", min_size=1, max_size=10)
FINISH = ["stop", "length", "tool_calls", "content_filter"]


@dataclass
class Reading:
    """What a whole stream said, per choice: the thing a client assembles from the deltas."""

    text: dict[int, str] = field(default_factory=dict)
    reasoning: dict[int, str] = field(default_factory=dict)
    calls: dict[tuple[int, int], list[str | None]] = field(default_factory=dict)
    finish: dict[int, tuple[str | None, str | None]] = field(default_factory=dict)
    roles: dict[int, int] = field(default_factory=dict)
    usage: ir.Usage | None = None
    refusal: dict[int, str] = field(default_factory=dict)
    logprobs: dict[int, list[Any]] = field(default_factory=dict)


def read(events: list[ir.StreamEvent]) -> Reading:
    r = Reading()
    for ev in events:
        c = ev.choice
        if ev.role:
            r.roles[c] = r.roles.get(c, 0) + 1
        if ev.text:
            r.text[c] = r.text.get(c, "") + ev.text
        if ev.reasoning:
            r.reasoning[c] = r.reasoning.get(c, "") + ev.reasoning
        if ev.refusal:
            r.refusal[c] = r.refusal.get(c, "") + ev.refusal
        if ev.logprobs:
            r.logprobs[c] = r.logprobs.get(c, []) + ev.logprobs["content"]
        for t in ev.tool_calls or []:
            slot = r.calls.setdefault((c, t.index), [None, None, ""])
            slot[0] = slot[0] or t.id
            slot[1] = slot[1] or t.name
            slot[2] = (slot[2] or "") + t.arguments
        if ev.finish_reason:
            r.finish[c] = (ev.finish_reason, ev.native_finish_reason)
        if ev.usage is not None:
            r.usage = ev.usage
    return r


def decode(raw: bytes, cuts: list[int] = ()) -> tuple[list[ir.StreamEvent], StreamDecoder]:  # type: ignore[assignment]
    dec = StreamDecoder(provider="p", model="m")
    out: list[ir.StreamEvent] = []
    start = 0
    for cut in [*sorted(set(cuts)), len(raw)]:
        out += dec.feed(raw[start:cut])
        start = cut
    return out + dec.close(), dec


# ---------------------------------------------------------------- round trip through our own encoder


@st.composite
def choice_events(draw: st.DrawFn, choice: int) -> list[ir.StreamEvent]:
    events: list[ir.StreamEvent] = []
    started_calls: set[int] = set()
    for _ in range(draw(st.integers(0, 6))):
        kind = draw(st.sampled_from(["text", "reasoning", "tool", "refusal", "logprobs", "empty"]))
        if kind == "text":
            events.append(ir.StreamEvent(choice=choice, text=draw(texts)))
        elif kind == "refusal":
            events.append(ir.StreamEvent(choice=choice, refusal=draw(texts)))
        elif kind == "logprobs":
            token = draw(texts)
            entry = {"token": token, "logprob": -0.5, "bytes": list(token.encode()), "top_logprobs": []}
            events.append(ir.StreamEvent(choice=choice, text=token, logprobs={"content": [entry]}))
        elif kind == "reasoning":
            events.append(ir.StreamEvent(choice=choice, reasoning=draw(texts)))
        elif kind == "tool":
            index = draw(st.integers(0, 2))
            delta = ir.ToolCallDelta(index=index, arguments=draw(st.just("") | texts))
            if index not in started_calls:  # id and name come with a call's first fragment only
                started_calls.add(index)
                delta.id, delta.name = f"call_{draw(names)}", draw(names)
            events.append(ir.StreamEvent(choice=choice, tool_calls=[delta]))
        else:
            events.append(ir.StreamEvent(choice=choice))
    finish = draw(st.none() | st.sampled_from(FINISH))
    if finish is not None:
        events.append(ir.StreamEvent(choice=choice, finish_reason=finish))
    return events


@st.composite
def streams(draw: st.DrawFn) -> tuple[ir.StreamMeta, list[ir.StreamEvent]]:
    per_choice = [draw(choice_events(c)) for c in range(draw(st.integers(1, 3)))]
    # interleave the choices in any order, keeping each choice's own order
    order = draw(st.permutations([c for c, evs in enumerate(per_choice) for _ in evs]))
    cursors = [0] * len(per_choice)
    events = []
    for c in order:
        events.append(per_choice[c][cursors[c]])
        cursors[c] += 1
    for _ in range(draw(st.integers(0, 2))):  # cumulative usage: the last one counts
        inp, out = draw(st.integers(0, 10**6)), draw(st.integers(0, 10**5))
        usage = ir.Usage(
            input_tokens=inp,
            output_tokens=out,
            cache_read_tokens=draw(st.integers(0, inp)),
            reasoning_tokens=draw(st.integers(0, out)),
        )
        events.append(ir.StreamEvent(usage=usage))
    meta = ir.StreamMeta(
        id=f"chatcmpl-{draw(names)}",
        model=draw(names),
        created=draw(st.integers(1, 2**33)),
        system_fingerprint=draw(st.none() | names),
    )
    return meta, events


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(streams(), st.data())
def test_stream_round_trip_with_random_splits(
    stream: tuple[ir.StreamMeta, list[ir.StreamEvent]], data: st.DataObject
) -> None:
    meta, events = stream
    enc = StreamEncoder(meta, include_usage=True)
    raw = b"".join(enc.encode(ev) for ev in events) + enc.close()
    cuts = data.draw(st.lists(st.integers(0, len(raw)), max_size=10))
    decoded, dec = decode(raw, cuts)

    want, got = read(events), read(decoded)
    assert got.text == want.text
    assert got.reasoning == want.reasoning
    assert got.refusal == want.refusal
    assert got.logprobs == want.logprobs
    assert got.calls == want.calls
    assert got.finish == {c: (f, f) for c, (f, _) in want.finish.items()}
    if want.usage is None:
        assert got.usage is None
    else:
        assert got.usage == msgspec.structs.replace(want.usage, reasoning_reported=True)
    # every choice that said anything is announced once, as the assistant
    assert set(got.roles) == {ev.choice for ev in events}
    assert set(got.roles.values()) <= {1}
    assert dec.done
    if events:
        assert dec.meta == meta


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(streams())
def test_usage_chunk_only_when_asked_and_last(stream: tuple[ir.StreamMeta, list[ir.StreamEvent]]) -> None:
    meta, events = stream
    for include in (True, False):
        enc = StreamEncoder(meta, include_usage=include)
        raw = b"".join(enc.encode(ev) for ev in events) + enc.close()
        chunks = [json.loads(line[6:]) for line in raw.decode().split("\n\n") if line.startswith("data: {")]
        with_usage = [i for i, c in enumerate(chunks) if c.get("usage") is not None]
        # with include_usage every chunk carries the key (null until the last one), as OpenAI sends it
        assert all(("usage" in c) == include for c in chunks)
        has_usage = include and any(ev.usage for ev in events)
        assert with_usage == ([len(chunks) - 1] if has_usage else [])
        if has_usage:
            assert chunks[-1]["choices"] == []
        assert raw.endswith(b"data: [DONE]\n\n")
        assert all(c["object"] == "chat.completion.chunk" and c["id"] == meta.id for c in chunks)


def test_stream_round_trip_keeps_reasoning_signature() -> None:
    enc = StreamEncoder(ir.StreamMeta(id="c", model="m", created=1), include_usage=False)
    events = [
        ir.StreamEvent(reasoning="2+2"),
        ir.StreamEvent(reasoning_signature="sig=="),
        ir.StreamEvent(redacted_reasoning="opaque"),
        ir.StreamEvent(text="4", finish_reason="stop"),
    ]
    decoded, _ = decode(b"".join(enc.encode(ev) for ev in events) + enc.close())
    assert [ev.reasoning_signature for ev in decoded if ev.reasoning_signature] == ["sig=="]
    assert [ev.redacted_reasoning for ev in decoded if ev.redacted_reasoning] == ["opaque"]


# ---------------------------------------------------------------- vendor variants of the wire


def chunk(delta: dict[str, Any] | None = None, finish: str | None = None, **extra: Any) -> dict[str, Any]:
    c: dict[str, Any] = {"id": "chatcmpl-1", "object": "chat.completion.chunk", "created": 1, "model": "m"}
    if delta is not None or finish is not None:
        c["choices"] = [{"index": 0, "delta": delta or {}, "finish_reason": finish}]
    return c | extra


def sse(*items: dict[str, Any] | str, done: bool = True) -> bytes:
    out = ""
    for it in items:
        out += it if isinstance(it, str) else f"data: {json.dumps(it)}\n\n"
    return (out + ("data: [DONE]\n\n" if done else "")).encode()


USAGE = {"prompt_tokens": 10, "completion_tokens": 4, "total_tokens": 14}


@pytest.mark.parametrize(
    ("raw", "text", "reasoning", "finish", "usage"),
    [
        pytest.param(
            sse(
                ": OPENROUTER PROCESSING\n\n",
                chunk({"role": "assistant", "content": ""}),
                ": OPENROUTER PROCESSING\n\n",
                "data:     " + json.dumps(chunk({"content": "42"})) + "\n\n",
                chunk({}, "stop", native_finish_reason="end_turn"),
                chunk(usage=USAGE, choices=[]),
            ),
            "42",
            "",
            ("stop", "stop"),
            ir.Usage(input_tokens=10, output_tokens=4),
            id="openrouter-comments-and-padding",
        ),
        pytest.param(
            sse(
                chunk({"role": "assistant", "content": ""}),
                chunk({"content": "Hi"}),
                chunk({}, "stop", x_groq={"id": "req_1", "usage": USAGE}),
            ),
            "Hi",
            "",
            ("stop", "stop"),
            ir.Usage(input_tokens=10, output_tokens=4),
            id="groq-x_groq-usage",
        ),
        pytest.param(
            sse(
                chunk(
                    {
                        "role": "assistant",
                        "content": [{"type": "thinking", "thinking": [{"type": "text", "text": "hmm"}]}],
                    }
                ),
                chunk({"content": [{"type": "text", "text": "4"}]}),
                chunk({"content": "2"}, "stop"),
            ),
            "42",
            "hmm",
            ("stop", "stop"),
            None,
            id="mistral-thinking-parts",
        ),
        pytest.param(sse(chunk({"content": "x"}), chunk({}, "eos")), "x", "", ("stop", "eos"), None, id="together-eos"),
        pytest.param(
            sse(
                chunk({"reasoning_content": "Think", "role": "assistant"}),
                chunk({"reasoning_content": "ing"}),
                chunk({"content": "4"}, "stop"),
                chunk(
                    choices=[],
                    usage={
                        "prompt_tokens": 10,
                        "completion_tokens": 1,
                        "total_tokens": 31,
                        "completion_tokens_details": {"reasoning_tokens": 20},
                    },
                ),
            ),
            "4",
            "Thinking",
            ("stop", "stop"),
            ir.Usage(input_tokens=10, output_tokens=21, reasoning_tokens=20, reasoning_reported=True),
            id="xai-reasoning-outside-completion",
        ),
        pytest.param(
            sse(
                chunk({"content": "", "reasoning": "Okay"}),
                chunk({"content": "4"}, "stop"),
            ),
            "4",
            "Okay",
            ("stop", "stop"),
            None,
            id="ollama-reasoning",
        ),
        pytest.param(
            sse(
                chunk({"content": "4"}, "stop"),
                chunk(choices=[], usage={**USAGE, "prompt_cache_hit_tokens": 8, "prompt_cache_miss_tokens": 2}),
            ),
            "4",
            "",
            ("stop", "stop"),
            ir.Usage(input_tokens=10, output_tokens=4, cache_read_tokens=8),
            id="deepseek-cache-hit",
        ),
        pytest.param(
            sse(chunk({"content": "no done marker"}, "length"), done=False),
            "no done marker",
            "",
            ("length", "length"),
            None,
            id="no-done-marker",
        ),
        pytest.param(
            b'data: {"id":"c","choices":[{"index":0,"delta":{"content":"crlf"},"finish_reason":"stop"}]}\r\n\r\ndata: [DONE]\r\n\r\n',
            "crlf",
            "",
            ("stop", "stop"),
            None,
            id="crlf-line-endings",
        ),
        pytest.param(
            b'data: {"id":"c","choices":[{"index":0,"delta":{"content":"tail"},"finish_reason":"stop"}]}',
            "tail",
            "",
            ("stop", "stop"),
            None,
            id="last-event-without-blank-line",
        ),
    ],
)
def test_vendor_streams(raw: bytes, text: str, reasoning: str, finish: tuple[str, str], usage: ir.Usage | None) -> None:
    for cuts in ([], list(range(len(raw)))):  # whole, and one byte at a time
        events, _ = decode(raw, cuts)
        r = read(events)
        assert (r.text.get(0, ""), r.reasoning.get(0, ""), r.finish.get(0), r.usage) == (text, reasoning, finish, usage)


def test_azure_first_chunk_without_choices_or_id() -> None:
    raw = sse(
        {
            "choices": [],
            "created": 0,
            "id": "",
            "model": "",
            "object": "",
            "prompt_filter_results": [{"prompt_index": 0}],
        },
        chunk(
            {"role": "assistant", "content": ""}, model="gpt-4o-mini-2024-07-18", id="chatcmpl-az", created=1700000000
        ),
        chunk(
            {
                "tool_calls": [
                    {"index": 0, "id": "call_1", "type": "function", "function": {"name": "f", "arguments": ""}}
                ]
            }
        ),
        chunk({"tool_calls": [{"index": 0, "function": {"arguments": '{"a":'}}]}),
        chunk({"tool_calls": [{"index": 0, "function": {"arguments": " 1}"}}]}, "tool_calls"),
    )
    events, dec = decode(raw)
    assert dec.meta == ir.StreamMeta(id="chatcmpl-az", model="gpt-4o-mini-2024-07-18", created=1700000000)
    assert read(events).calls == {(0, 0): ["call_1", "f", '{"a": 1}']}


def test_parallel_tool_calls_by_index() -> None:
    raw = sse(
        chunk({"tool_calls": [{"index": 0, "id": "a", "function": {"name": "f", "arguments": "{"}}]}),
        chunk({"tool_calls": [{"index": 1, "id": "b", "function": {"name": "g", "arguments": "{}"}}]}),
        chunk({"tool_calls": [{"index": 0, "function": {"arguments": "}"}}]}, "tool_calls"),
    )
    assert read(decode(raw)[0]).calls == {(0, 0): ["a", "f", "{}"], (0, 1): ["b", "g", "{}"]}


@pytest.mark.parametrize(
    ("raw", "cls", "message"),
    [
        pytest.param(
            b'event: error\ndata: {"error":{"message":"Tool call validation failed","type":"invalid_request_error",'
            b'"code":"tool_use_failed"}}\n\n',
            BadRequestError,
            "Tool call validation failed",
            id="groq-event-error",
        ),
        pytest.param(
            b"event: error\ndata: upstream exploded\n\n",
            InternalServerError,
            "upstream exploded",
            id="event-error-plain-text",
        ),
        pytest.param(
            sse(chunk({"content": ""}, "error", error={"code": 502, "message": "Provider disconnected"})),
            InternalServerError,
            "Provider disconnected",
            id="openrouter-error-chunk-502",
        ),
        pytest.param(
            sse(chunk(error={"code": 429, "message": "Rate limit exceeded upstream"})),
            RateLimitError,
            "Rate limit exceeded upstream",
            id="error-chunk-429",
        ),
        pytest.param(
            sse(chunk(error={"code": "server_error", "message": "Internal failure"})),
            InternalServerError,
            "Internal failure",
            id="error-chunk-string-code",
        ),
        pytest.param(
            sse(
                chunk(
                    error={
                        "message": "This model's maximum context length is 8192 tokens",
                        "type": "invalid_request_error",
                    }
                )
            ),
            ContextWindowExceededError,
            "maximum context length",
            id="error-chunk-context-window",
        ),
        pytest.param(sse({"error": "model is loading"}), InternalServerError, "model is loading", id="error-string"),
    ],
)
def test_errors_inside_a_200_stream_raise(raw: bytes, cls: type[APIStatusError], message: str) -> None:
    with pytest.raises(APIStatusError) as info:
        decode(sse(chunk({"role": "assistant", "content": "partial"}), done=False) + raw)
    assert type(info.value) is cls
    assert message in str(info.value)
    assert str(info.value).startswith("p: ")  # the provider is named
    assert info.value.provider == "p"
    assert info.value.model == "m"


def test_events_before_an_in_stream_error_do_not_depend_on_splits() -> None:
    raw = sse(chunk({"content": "partial"}), chunk(error={"code": 502, "message": "gone"}), done=False)

    def seen_before_error(pieces: list[bytes]) -> list[str | None]:
        dec = StreamDecoder(provider="p", model="m")
        seen: list[str | None] = []
        with pytest.raises(InternalServerError):
            for piece in pieces:
                seen += [ev.text for ev in dec.feed(piece)]
            seen += [ev.text for ev in dec.close()]
        return seen

    one_byte_at_a_time = [raw[i : i + 1] for i in range(len(raw))]
    assert seen_before_error(one_byte_at_a_time) == ["partial"]
    assert seen_before_error([raw]) == ["partial"]  # both events in one network read


def test_non_json_data_is_skipped_and_done_is_tracked() -> None:
    events, dec = decode(b"data: not json\n\n" + sse(chunk({"content": "ok"})))
    assert [ev.text for ev in events] == ["ok"]
    assert dec.done


def test_encoder_chunks_shape() -> None:
    enc = StreamEncoder(ir.StreamMeta(id="c1", model="m", created=5, system_fingerprint="fp"), include_usage=True)
    first = enc.chunk(ir.StreamEvent(tool_calls=[ir.ToolCallDelta(index=0, id="call", name="f", arguments="")]))
    assert first == {
        "id": "c1",
        "object": "chat.completion.chunk",
        "created": 5,
        "model": "m",
        "system_fingerprint": "fp",
        "choices": [
            {
                "index": 0,
                "delta": {
                    "role": "assistant",
                    "tool_calls": [
                        {"index": 0, "id": "call", "type": "function", "function": {"arguments": "", "name": "f"}}
                    ],
                },
                "logprobs": None,
                "finish_reason": None,
            }
        ],
        "usage": None,
    }
    assert enc.chunk(ir.StreamEvent(usage=ir.Usage(input_tokens=1))) is None
    assert enc.chunk(ir.StreamEvent(finish_reason="stop"))["choices"][0] == {  # type: ignore[index]
        "index": 0,
        "delta": {},
        "logprobs": None,
        "finish_reason": "stop",
    }
    assert enc.usage_chunk() == {
        "id": "c1",
        "object": "chat.completion.chunk",
        "created": 5,
        "model": "m",
        "system_fingerprint": "fp",
        "choices": [],
        "usage": {
            "prompt_tokens": 1,
            "completion_tokens": 0,
            "total_tokens": 1,
            "prompt_tokens_details": {"cached_tokens": 0},
            "completion_tokens_details": {"reasoning_tokens": 0},
        },
    }


def test_first_chunk_of_a_choice_announces_the_role_with_empty_content() -> None:
    enc = StreamEncoder(ir.StreamMeta(id="c", model="m", created=1), include_usage=False)
    assert enc.chunk(ir.StreamEvent(choice=1))["choices"][0]["delta"] == {"role": "assistant", "content": ""}  # type: ignore[index]
    assert enc.chunk(ir.StreamEvent(choice=1)) is None
