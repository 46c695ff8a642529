"""llmswitch.testing.FakeUpstream: each provider's wire format as recorded traffic shows it, read by the
official SDKs, and scripted faults played as asked."""

from __future__ import annotations

import asyncio
import base64
import http.client
import json
import socket
import struct
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any, NamedTuple

import aiohttp
import openai
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from llmswitch import ir
from llmswitch.dialects.sse import SSEParser
from llmswitch.testing import FakeUpstream, RecordedRequest, Reply, embedding_vector, to_response, to_stream_events

FIXTURES = Path(__file__).resolve().parents[2].parent / "shared" / "fixtures" / "recorded"
USER: Any = [{"role": "user", "content": "What is 4200 + 42?"}]


def recorded(provider: str, case: str) -> dict[str, Any]:
    path = FIXTURES / provider / f"{case}.json"
    if not path.exists():
        pytest.skip(f"recorded traffic not available at {path}")
    data: dict[str, Any] = json.loads(path.read_text())
    return data


@pytest.fixture
def up() -> Iterator[FakeUpstream]:
    with FakeUpstream() as fake:
        yield fake


class Raw(NamedTuple):
    status: int
    headers: dict[str, str]
    body: bytes


_opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))


def post(url: str, body: Any, *, timeout: float = 10.0) -> Raw:
    data = body if isinstance(body, bytes) else json.dumps(body).encode()
    req = urllib.request.Request(url, data=data, headers={"content-type": "application/json"}, method="POST")
    try:
        with _opener.open(req, timeout=timeout) as resp:
            return Raw(resp.status, {k.lower(): v for k, v in resp.headers.items()}, resp.read())
    except urllib.error.HTTPError as err:
        with err:
            return Raw(err.code, {k.lower(): v for k, v in err.headers.items()}, err.read())


def sse_data(body: bytes) -> list[str]:
    parser = SSEParser()
    return [ev.data for ev in [*parser.feed(body), *parser.close()]]


def chunks_of(body: bytes) -> list[dict[str, Any]]:
    return [json.loads(d) for d in sse_data(body) if d != "[DONE]"]


def chat_body(**extra: Any) -> dict[str, Any]:
    return {"model": "gpt-4o", "messages": USER, **extra}


# ---------------------------------------------------------------- OpenAI wire format against recorded traffic

# keys OpenAI sends on some chunks or accounts only (padding, tiers), which a faithful fake may leave out
_OPTIONAL_CHUNK_KEYS = {"obfuscation", "service_tier", "system_fingerprint", "usage"}


def test_openai_stream_has_the_recorded_chunk_layout(up: FakeUpstream) -> None:
    rec = recorded("openai", "chat_stream_include_usage")
    theirs = chunks_of(rec["response"]["body_text"].encode())
    up.script(Reply(text="4200 + 42 = 4242.", usage=ir.Usage(input_tokens=16, output_tokens=10)))

    raw = post(f"{up.openai_base}/chat/completions", rec["request"]["body"])

    assert raw.status == 200
    assert raw.headers["content-type"].startswith("text/event-stream")
    assert raw.body.endswith(b"data: [DONE]\n\n") and rec["response"]["body_text"].endswith("data: [DONE]\n\n")
    ours = chunks_of(raw.body)
    for mine, real in ((ours[0], theirs[0]), (ours[1], theirs[1]), (ours[-2], theirs[-2]), (ours[-1], theirs[-1])):
        assert set(mine) - _OPTIONAL_CHUNK_KEYS == set(real) - _OPTIONAL_CHUNK_KEYS
        for c_mine, c_real in zip(mine["choices"], real["choices"], strict=True):
            assert set(c_mine) == set(c_real)
    assert ours[0]["choices"][0]["delta"] == {"role": "assistant", "content": ""}
    assert ours[-2]["choices"][0] == {"index": 0, "delta": {}, "logprobs": None, "finish_reason": "stop"}
    assert ours[-1]["choices"] == [] == theirs[-1]["choices"]
    assert {"prompt_tokens", "completion_tokens", "total_tokens"} <= set(ours[-1]["usage"])
    assert (ours[-1]["usage"]["prompt_tokens"], ours[-1]["usage"]["completion_tokens"]) == (16, 10)
    assert "".join(c["choices"][0]["delta"].get("content") or "" for c in ours[:-1]) == "4200 + 42 = 4242."
    assert len({c["id"] for c in ours}) == 1


def test_openai_stream_chunks_carry_usage_null_with_include_usage(up: FakeUpstream) -> None:
    raw = post(f"{up.openai_base}/chat/completions", chat_body(stream=True, stream_options={"include_usage": True}))
    ours = chunks_of(raw.body)
    assert all("usage" in c and c["usage"] is None for c in ours[:-1])


def test_openai_stream_without_include_usage_has_no_usage_chunk(up: FakeUpstream) -> None:
    raw = post(f"{up.openai_base}/chat/completions", chat_body(stream=True))
    ours = chunks_of(raw.body)
    assert all(c["choices"] for c in ours)
    assert not any(c.get("usage") for c in ours)
    assert raw.body.endswith(b"data: [DONE]\n\n")


def test_openai_tool_call_stream_has_the_recorded_fragment_layout(up: FakeUpstream) -> None:
    rec = recorded("openai", "tool_call_stream_parallel")
    theirs = chunks_of(rec["response"]["body_text"].encode())
    calls = [("secret_retrieval_tool", {"password": "mellon"}), ("secret_retrieval_tool", {"password": "radiance"})]
    up.script(Reply(tool_calls=calls, chunk_size=5))

    ours = chunks_of(post(f"{up.openai_base}/chat/completions", rec["request"]["body"]).body)

    def fragments(chunks: list[dict[str, Any]]) -> list[dict[str, Any]]:
        return [t for c in chunks for ch in c["choices"] for t in ch["delta"].get("tool_calls") or ()]

    for frags in (fragments(theirs), fragments(ours)):
        firsts = [f for f in frags if "id" in f]
        assert [f["index"] for f in firsts] == [0, 1]
        assert all(set(f) == {"index", "id", "type", "function"} and f["function"]["arguments"] == "" for f in firsts)
        assert all(
            set(f) == {"index", "function"} and set(f["function"]) == {"arguments"} for f in frags if "id" not in f
        )
    args = ["".join(f["function"]["arguments"] for f in fragments(ours) if f["index"] == i) for i in (0, 1)]
    assert [json.loads(a) for a in args] == [c[1] for c in calls]
    assert ours[-2]["choices"][0]["finish_reason"] == theirs[-2]["choices"][0]["finish_reason"] == "tool_calls"


def test_openai_completion_has_the_recorded_layout(up: FakeUpstream) -> None:
    rec = recorded("openai", "chat_simple")
    theirs = json.loads(rec["response"]["body_text"])
    up.script(Reply(text="4200 + 42 = 4242"))

    raw = post(f"{up.openai_base}/chat/completions", rec["request"]["body"])
    ours = json.loads(raw.body)

    assert raw.headers["content-type"] == rec["response"]["headers"]["content-type"]
    assert set(ours) == set(theirs) - {"service_tier"}
    assert set(ours["choices"][0]) == set(theirs["choices"][0])
    assert ours["choices"][0]["message"] == {"role": "assistant", "content": "4200 + 42 = 4242"}
    assert {"prompt_tokens", "completion_tokens", "total_tokens"} <= set(ours["usage"]) <= set(theirs["usage"])


@pytest.mark.parametrize("case", ["error_429_rate_limit_tpm", "error_500_server_error", "error_404_model_not_found"])
def test_openai_error_envelope_has_the_recorded_layout(up: FakeUpstream, case: str) -> None:
    rec = recorded("openai", case)
    theirs = json.loads(rec["response"]["body_text"])
    status = rec["response"]["status"]
    up.script(Reply(status=status, message=theirs["error"]["message"]))

    raw = post(f"{up.openai_base}/chat/completions", chat_body())

    ours = json.loads(raw.body)
    assert raw.status == status
    assert raw.headers["content-type"].startswith("application/json")
    assert set(ours) == {"error"} and set(ours["error"]) == set(theirs["error"])
    assert ours["error"]["message"] == theirs["error"]["message"]


def test_a_malformed_request_gets_the_dialects_400_and_uses_no_reply(up: FakeUpstream) -> None:
    up.script(Reply(text="never sent"))
    raw = post(f"{up.openai_base}/chat/completions", {"model": "gpt-4o", "messages": []})
    assert raw.status == 400
    assert json.loads(raw.body)["error"]["param"] == "messages"
    assert up.pending == 1
    assert post(f"{up.openai_base}/chat/completions", b"{not json").status == 400


# ---------------------------------------------------------------- the official openai SDK reads it


@pytest.fixture
def client(up: FakeUpstream) -> Iterator[openai.OpenAI]:
    with openai.OpenAI(base_url=up.openai_base, api_key="sk-test", max_retries=0) as c:
        yield c


def test_openai_sdk_reads_a_completion_with_usage(up: FakeUpstream, client: openai.OpenAI) -> None:
    up.script(Reply(text="4242", usage=(16, 3)))
    r = client.chat.completions.create(model="gpt-4o", messages=USER)
    assert r.choices[0].message.content == "4242"
    assert r.choices[0].finish_reason == "stop"
    assert r.usage is not None and (r.usage.prompt_tokens, r.usage.completion_tokens) == (16, 3)
    assert up.requests[-1].headers["authorization"] == "Bearer sk-test"


def test_openai_sdk_reads_a_stream_with_parallel_tool_calls_and_usage(up: FakeUpstream, client: openai.OpenAI) -> None:
    up.script(Reply(tool_calls=[("lookup", {"q": "mellon"}), ("lookup", {"q": "radiance"}, "call_custom")]))
    stream = client.chat.completions.create(
        model="gpt-4o",
        messages=USER,
        stream=True,
        stream_options={"include_usage": True},
    )
    chunks = list(stream)
    calls: dict[int, dict[str, str]] = {}
    for c in chunks:
        for ch in c.choices:
            for t in ch.delta.tool_calls or ():
                slot = calls.setdefault(t.index, {"id": "", "name": "", "arguments": ""})
                slot["id"] += t.id or ""
                slot["name"] += (t.function.name if t.function else None) or ""
                slot["arguments"] += (t.function.arguments if t.function else None) or ""
    assert [json.loads(calls[i]["arguments"]) for i in (0, 1)] == [{"q": "mellon"}, {"q": "radiance"}]
    assert calls[1]["id"] == "call_custom" and calls[0]["name"] == "lookup"
    assert chunks[-1].choices == [] and chunks[-1].usage is not None


def test_openai_sdk_reads_embeddings_in_base64_and_float(up: FakeUpstream, client: openai.OpenAI) -> None:
    default = client.embeddings.create(model="text-embedding-3-small", input=["a", "b"])
    floats = client.embeddings.create(model="text-embedding-3-small", input="a", encoding_format="float", dimensions=5)
    assert up.requests[0].json["encoding_format"] == "base64"  # what the SDK asks for by default
    assert default.data[0].embedding == embedding_vector("a", 8)
    assert default.data[1].embedding == embedding_vector("b", 8)
    assert floats.data[0].embedding == embedding_vector("a", 5)
    assert default.usage.prompt_tokens > 0


def test_openai_sdk_lists_models(up: FakeUpstream, client: openai.OpenAI) -> None:
    assert [m.id for m in client.models.list()] == up.models


@pytest.mark.parametrize(
    ("status", "error_class"),
    [(400, openai.BadRequestError), (429, openai.RateLimitError), (500, openai.InternalServerError)],
)
def test_openai_sdk_raises_its_own_error_class_with_the_scripted_message(
    up: FakeUpstream, client: openai.OpenAI, status: int, error_class: type[openai.APIStatusError]
) -> None:
    up.script(Reply(status=status, message="scripted trouble", retry_after=3))
    with pytest.raises(error_class, match="scripted trouble") as info:
        client.chat.completions.create(model="gpt-4o", messages=USER)
    assert info.value.response.headers["retry-after"] == "3"
    assert info.value.response.headers["retry-after-ms"] == "3000"


# ---------------------------------------------------------------- faults


def test_latency_delays_the_answer(up: FakeUpstream) -> None:
    up.script(Reply(latency=0.2))
    t0 = time.monotonic()
    assert post(f"{up.openai_base}/chat/completions", chat_body()).status == 200
    assert time.monotonic() - t0 >= 0.2


def test_ttft_comes_after_the_headers_and_chunk_delay_between_writes() -> None:
    async def main() -> tuple[float, float, float]:
        async with FakeUpstream() as up, aiohttp.ClientSession() as session:
            up.script(Reply(text="abcdef", chunk_size=2, ttft=0.4, chunk_delay=0.1))
            t0 = time.monotonic()
            async with session.post(f"{up.openai_base}/chat/completions", json=chat_body(stream=True)) as resp:
                t_headers = time.monotonic()
                await resp.content.readany()
                t_first = time.monotonic()
                await resp.read()
                t_end = time.monotonic()
        return t_headers - t0, t_first - t0, t_end - t_first

    headers, first, rest = asyncio.run(main())
    assert first >= 0.4
    assert first - headers >= 0.2  # the headers were not held back until the first byte
    assert rest >= 0.3  # role + 3 text + finish chunks: four gaps after the first write (at least three)


def test_cut_after_drops_the_connection_mid_stream(up: FakeUpstream) -> None:
    up.script(Reply(text="abcdefghij", chunk_size=2, cut_after=3))
    req = urllib.request.Request(
        f"{up.openai_base}/chat/completions",
        data=json.dumps(chat_body(stream=True)).encode(),
        headers={"content-type": "application/json"},
    )
    with _opener.open(req, timeout=10) as resp, pytest.raises(http.client.IncompleteRead) as info:
        resp.read()
    partial = chunks_of(info.value.partial)
    assert len(partial) == 3
    assert b"[DONE]" not in info.value.partial
    assert up.disconnects == 0  # the fake hung up, not the client


def test_end_after_ends_the_body_cleanly_before_the_answer_ends(up: FakeUpstream) -> None:
    up.script(Reply(text="abcdefghij", chunk_size=2, end_after=3))
    raw = post(f"{up.openai_base}/chat/completions", chat_body(stream=True))
    assert raw.status == 200
    assert len(chunks_of(raw.body)) == 3
    assert b"[DONE]" not in raw.body and b'finish_reason":"stop' not in raw.body


def test_hang_never_answers_and_a_client_that_gives_up_is_counted(up: FakeUpstream) -> None:
    up.script(Reply(hang=True))
    with pytest.raises((TimeoutError, socket.timeout)):
        post(f"{up.openai_base}/chat/completions", chat_body(), timeout=0.3)
    assert up.wait_for_disconnects(1, timeout=5)


def test_a_raw_body_replaces_the_error_envelope(up: FakeUpstream) -> None:
    up.script(Reply(status=503, body="upstream connect error", headers={"x-envoy": "1"}))
    raw = post(f"{up.openai_base}/chat/completions", chat_body())
    assert (raw.status, raw.body) == (503, b"upstream connect error")
    assert raw.headers["content-type"].startswith("text/plain")
    assert raw.headers["x-envoy"] == "1"


@pytest.mark.parametrize(("seconds", "header", "ms"), [(0.05, "0.05", "50"), (2, "2", "2000"), (1.5, "1.5", "1500")])
def test_retry_after_sets_both_headers(up: FakeUpstream, seconds: float, header: str, ms: str) -> None:
    up.script(Reply(status=429, retry_after=seconds))
    raw = post(f"{up.openai_base}/chat/completions", chat_body())
    assert (raw.headers["retry-after"], raw.headers["retry-after-ms"]) == (header, ms)


def test_reply_rejects_nonsense_values() -> None:
    with pytest.raises(ValueError, match="chunk_size"):
        Reply(chunk_size=0)
    with pytest.raises(ValueError, match="cut_after"):
        Reply(cut_after=-1)
    with pytest.raises(ValueError, match="end_after"):
        Reply(end_after=-1)


# ---------------------------------------------------------------- scripting and observing


def test_replies_come_from_the_model_queue_then_the_shared_queue_then_the_responder_then_default(
    up: FakeUpstream,
) -> None:
    up.script(Reply(text="for mini"), model="gpt-4o-mini")
    up.script(Reply(text="shared"))
    seen: list[RecordedRequest] = []

    def responder(req: RecordedRequest) -> Reply:
        seen.append(req)
        return Reply(text=f"responder saw {req.text!r}") if len(seen) == 1 else Reply(text=None)

    def ask(model: str, text: str) -> str:
        body = {"model": model, "messages": [{"role": "user", "content": text}]}
        answer = json.loads(post(f"{up.openai_base}/chat/completions", body).body)
        content: str = answer["choices"][0]["message"]["content"]
        return content

    assert ask("gpt-4o", "1") == "shared"
    assert ask("gpt-4o-mini", "2") == "for mini"
    assert up.pending == 0
    up.responder = responder
    assert ask("gpt-4o", "3") == "responder saw '3'"
    assert ask("gpt-4o", "echo me") == "echo me"
    up.responder = None
    up.default = Reply(text="fallback")
    assert ask("gpt-4o", "4") == "fallback"


def test_an_async_responder_is_awaited() -> None:
    async def main() -> str:
        async with FakeUpstream() as up, aiohttp.ClientSession() as session:

            async def responder(req: RecordedRequest) -> Reply:
                await asyncio.sleep(0)
                return Reply(text=req.text.upper())

            up.responder = responder
            async with session.post(f"{up.openai_base}/chat/completions", json=chat_body()) as resp:
                content: str = (await resp.json())["choices"][0]["message"]["content"]
                return content

    assert asyncio.run(main()) == "WHAT IS 4200 + 42?"


def test_requests_are_recorded_with_lowercased_headers_and_parsed_bodies(up: FakeUpstream) -> None:
    req = urllib.request.Request(
        f"{up.url}/chat/completions?trace=1",
        data=json.dumps(chat_body()).encode(),
        headers={"Content-Type": "application/json", "X-Custom": "Yes"},
    )
    with _opener.open(req, timeout=10):
        pass
    post(f"{up.openai_base}/embeddings", {"model": "text-embedding-3-small", "input": "x"})

    first = up.requests[0]
    assert (first.method, first.path, first.query) == ("POST", "/chat/completions", {"trace": "1"})
    assert first.headers["x-custom"] == "Yes" and first.headers["content-type"] == "application/json"
    assert first.json == chat_body() and first.model == "gpt-4o" and first.face == "openai"
    assert first.chat is not None and first.text == "What is 4200 + 42?"
    assert [r.path for r in up.calls_for("/embeddings")] == ["/v1/embeddings"]
    up.reset()
    assert up.requests == [] and up.disconnects == 0


def test_url_is_only_known_while_running() -> None:
    fake = FakeUpstream()
    with pytest.raises(RuntimeError, match="not running"):
        _ = fake.url
    with fake:
        assert fake.url.startswith("http://127.0.0.1:")
        assert fake.openai_base == f"{fake.url}/v1" and fake.anthropic_base == fake.gemini_base == fake.url
    with pytest.raises(RuntimeError):
        _ = fake.url


def test_stopping_ends_a_hanging_request() -> None:
    async def main() -> int:
        async with aiohttp.ClientSession() as session:
            arrived = asyncio.Event()

            async def responder(req: RecordedRequest) -> Reply:
                arrived.set()
                return Reply(hang=True)

            up = await FakeUpstream().start()
            up.responder = responder
            pending = asyncio.ensure_future(session.post(f"{up.openai_base}/chat/completions", json=chat_body()))
            await arrived.wait()
            await up.stop()
            async with await pending as resp:
                return resp.status

    assert asyncio.run(main()) == 503


# ---------------------------------------------------------------- one reply, two forms

_text = st.text(alphabet=st.characters(codec="utf-8"), max_size=40)
_args = st.dictionaries(st.text(min_size=1, max_size=5), st.integers() | _text, max_size=3)


@settings(max_examples=60, deadline=None)
@given(
    text=st.none() | _text,
    reasoning=st.none() | _text,
    calls=st.lists(st.tuples(st.text(min_size=1, max_size=8), _args), max_size=3),
    size=st.integers(min_value=1, max_value=7),
)
def test_stream_events_add_up_to_the_response(
    text: str | None, reasoning: str | None, calls: list[tuple[str, dict[str, Any]]], size: int
) -> None:
    req = ir.Request(model="m", messages=[ir.Message(role="user", content=[ir.TextPart(text="echo this")])])
    reply = Reply(text=text, reasoning=reasoning, tool_calls=calls, chunk_size=size)
    whole = to_response(reply, req, response_id="r", model="m").choices[0]
    events = to_stream_events(reply, req)

    assert "".join(e.text or "" for e in events) == whole.text
    assert "".join(e.reasoning or "" for e in events) == whole.reasoning
    streamed: dict[int, list[str]] = {}
    for e in events:
        for d in e.tool_calls or ():
            streamed.setdefault(d.index, []).append(d.arguments)
            assert (d.id is not None) == (len(streamed[d.index]) == 1)
    assert ["".join(streamed[i]) for i in sorted(streamed)] == [c.arguments for c in whole.tool_calls]
    assert [json.loads(c.arguments) for c in whole.tool_calls] == [c[1] for c in calls]
    assert events[-1].finish_reason == whole.finish_reason == ("tool_calls" if calls else "stop")
    assert events[-1].usage == to_response(reply, req, response_id="r", model="m").usage
    if text is None and not calls:
        assert whole.text == "echo this"


def test_embedding_vectors_are_deterministic_float32_unit_vectors() -> None:
    v = embedding_vector("hello", 16)
    assert v == embedding_vector("hello", 16) != embedding_vector("hello!", 16)
    assert abs(sum(x * x for x in v) - 1) < 1e-5
    packed = base64.b64encode(struct.pack("<16f", *v))
    assert list(struct.unpack("<16f", base64.b64decode(packed))) == v


# ---------------------------------------------------------------- Anthropic face


def _anthropic_events(body: bytes) -> list[tuple[str, dict[str, Any]]]:
    parser = SSEParser()
    return [(ev.event or "", json.loads(ev.data)) for ev in [*parser.feed(body), *parser.close()] if ev.event != "ping"]


def _collapse(names: list[str]) -> list[str]:
    return [n for i, n in enumerate(names) if i == 0 or names[i - 1] != n]


@pytest.mark.parametrize(
    ("case", "reply"),
    [
        ("messages_stream", Reply(text="4200 + 42 = 4242")),
        (
            "tool_use_stream_input_json_delta",
            Reply(text="I'll look.", tool_calls=[("secret_retrieval_tool", {"p": "m"})]),
        ),
    ],
)
def test_anthropic_stream_has_the_recorded_event_layout(up: FakeUpstream, case: str, reply: Reply) -> None:
    rec = recorded("anthropic", case)
    theirs = _anthropic_events(rec["response"]["body_text"].encode())
    up.script(reply)

    raw = post(f"{up.anthropic_base}/v1/messages", rec["request"]["body"] | {"stream": True})
    ours = _anthropic_events(raw.body)

    assert raw.headers["content-type"] == rec["response"]["headers"]["content-type"]
    assert _collapse([n for n, _ in ours])[:3] == _collapse([n for n, _ in theirs])[:3]
    assert [n for n, _ in ours][-2:] == ["message_delta", "message_stop"]
    assert all(data["type"] == name for name, data in ours)
    first_of = dict(reversed(ours))
    for name, data in theirs:
        if name in first_of:
            assert set(first_of[name]) == set(data), name
    assert set(first_of["message_start"]["message"]) == set(theirs[0][1]["message"])
    if reply.tool_calls:
        starts = [d["content_block"] for n, d in ours if n == "content_block_start"]
        assert [b["type"] for b in starts] == ["text", "tool_use"]
        assert set(starts[1]) == {"type", "id", "name", "input"} and starts[1]["id"].startswith("toolu_")


def test_anthropic_message_and_error_have_the_recorded_layout(up: FakeUpstream) -> None:
    simple = recorded("anthropic", "messages_simple")
    error = recorded("anthropic", "error_429_rate_limit")
    up.script(Reply(text="4200 + 42 = 4242"), Reply(status=429, message="rate limited"))

    ok = json.loads(post(f"{up.anthropic_base}/v1/messages", simple["request"]["body"]).body)
    failed = post(f"{up.anthropic_base}/v1/messages", simple["request"]["body"])

    assert set(ok) == set(json.loads(simple["response"]["body_text"]))
    assert ok["content"] == [{"type": "text", "text": "4200 + 42 = 4242"}] and ok["stop_reason"] == "end_turn"
    theirs = json.loads(error["response"]["body_text"])
    ours = json.loads(failed.body)
    assert failed.status == 429 and failed.headers["request-id"].startswith("req_")
    assert ours["type"] == "error" and set(ours["error"]) == set(theirs["error"])
    assert ours["error"] == {"type": "rate_limit_error", "message": "rate limited"}


def test_anthropic_sdk_reads_text_thinking_tools_and_errors(up: FakeUpstream) -> None:
    import anthropic

    up.script(
        Reply(text="plain"),
        Reply(reasoning="Let me think.", reasoning_signature="sig-1", text="Calling.", tool_calls=[("f", {"x": 1})]),
        Reply(status=529),
    )
    kwargs: dict[str, Any] = {"model": "claude-sonnet-4-0", "max_tokens": 64, "messages": USER}
    with anthropic.Anthropic(base_url=up.anthropic_base, api_key="sk-ant-test", max_retries=0) as client:
        assert client.messages.create(**kwargs).content[0].model_dump()["text"] == "plain"
        with client.messages.stream(**kwargs) as stream:
            final = stream.get_final_message()
        with pytest.raises(anthropic.APIStatusError, match="Overloaded") as info:
            client.messages.create(**kwargs)

    thinking, text, tool = (block.model_dump() for block in final.content)
    assert (thinking["type"], thinking["thinking"], thinking["signature"]) == ("thinking", "Let me think.", "sig-1")
    assert (text["type"], text["text"]) == ("text", "Calling.")
    assert (tool["type"], tool["name"], tool["input"]) == ("tool_use", "f", {"x": 1})
    assert final.stop_reason == "tool_use"
    assert info.value.status_code == 529
    headers = up.requests[0].headers
    assert "sk-ant-test" in headers.get("x-api-key", headers.get("authorization", ""))
    assert "anthropic-version" in headers


# ---------------------------------------------------------------- Gemini face


def _gemini_url(up: FakeUpstream, method: str, query: str = "") -> str:
    return f"{up.gemini_base}/v1beta/models/gemini-2.5-flash:{method}{query}"


def test_gemini_sse_stream_has_the_recorded_layout(up: FakeUpstream) -> None:
    rec = recorded("gemini", "stream_sse")
    theirs_text = rec["response"]["body_text"]
    up.script(Reply(text="4200 + 42 = 4242", chunk_size=10))

    raw = post(_gemini_url(up, "streamGenerateContent", "?alt=sse"), rec["request"]["body"])
    ours = [json.loads(d) for d in sse_data(raw.body)]
    theirs = [json.loads(d) for d in sse_data(theirs_text.encode())]

    assert raw.headers["content-type"] == rec["response"]["headers"]["content-type"]
    assert raw.body.count(b"\r\n\r\n") == len(ours) and theirs_text.count("\r\n\r\n") == len(theirs)
    assert b"[DONE]" not in raw.body and b"event:" not in raw.body
    assert all(set(c) == set(theirs[-1]) for c in ours)
    assert "finishReason" not in ours[0]["candidates"][0]
    assert ours[-1]["candidates"][0]["finishReason"] == theirs[-1]["candidates"][0]["finishReason"] == "STOP"
    assert "content" in ours[-1]["candidates"][0]  # the finish reason rides on the last text, as recorded
    assert "".join(p["text"] for c in ours for p in c["candidates"][0]["content"]["parts"]) == "4200 + 42 = 4242"


def test_gemini_stream_without_alt_sse_is_one_json_array(up: FakeUpstream) -> None:
    up.script(Reply(text="abcdefghij", chunk_size=4))
    raw = post(_gemini_url(up, "streamGenerateContent"), {"contents": [{"role": "user", "parts": [{"text": "hi"}]}]})
    items = json.loads(raw.body)
    assert raw.headers["content-type"].startswith("application/json")
    assert isinstance(items, list) and len(items) == 3
    assert "".join(p["text"] for c in items for p in c["candidates"][0]["content"]["parts"]) == "abcdefghij"


def test_gemini_response_function_calls_and_error_have_the_recorded_layout(up: FakeUpstream) -> None:
    simple = recorded("gemini", "generate_content_simple")
    calls = recorded("gemini", "function_call")
    error = recorded("gemini", "error_429_resource_exhausted")
    up.script(
        Reply(text="4242"),
        Reply(tool_calls=[("secret_retrieval_tool", {"password": "radiance"})]),
        Reply(status=429, message="You exceeded your current quota"),
    )
    ok = post(_gemini_url(up, "generateContent"), simple["request"]["body"])
    call = json.loads(post(_gemini_url(up, "generateContent"), calls["request"]["body"]).body)
    failed = post(_gemini_url(up, "generateContent"), simple["request"]["body"])

    theirs = json.loads(simple["response"]["body_text"])
    assert ok.headers["content-type"] == simple["response"]["headers"]["content-type"]
    assert set(json.loads(ok.body)) == set(theirs)
    part = call["candidates"][0]["content"]["parts"][0]
    real_part = json.loads(calls["response"]["body_text"])["candidates"][0]["content"]["parts"][1]
    assert part == real_part  # no id, args as an object
    assert failed.status == 429
    ours_error = json.loads(failed.body)["error"]
    assert {"code", "message", "status"} <= set(ours_error) <= set(json.loads(error["response"]["body_text"])["error"])
    assert (ours_error["code"], ours_error["status"]) == (429, "RESOURCE_EXHAUSTED")


@pytest.mark.parametrize("api_version", ["v1beta", "v1"])
def test_google_genai_sdk_reads_text_streams_calls_embeddings_and_errors(up: FakeUpstream, api_version: str) -> None:
    from google import genai
    from google.genai import errors, types

    options = types.HttpOptions(
        base_url=up.gemini_base, api_version=api_version, retry_options=types.HttpRetryOptions(attempts=1)
    )
    client = genai.Client(api_key="g-test", http_options=options)
    try:
        up.script(Reply(text="hello there"), Reply(text="streamed text", tool_calls=[("f", {"x": 1})], chunk_size=4))
        assert client.models.generate_content(model="gemini-2.5-flash", contents="hi").text == "hello there"
        chunks = list(client.models.generate_content_stream(model="gemini-2.5-flash", contents="hi"))
        config = types.EmbedContentConfig(output_dimensionality=6)
        emb = client.models.embed_content(model="gemini-embedding-001", contents=["a", "b"], config=config)
        up.script(Reply(status=429, message="quota exhausted"))
        with pytest.raises(errors.ClientError, match="quota exhausted") as info:
            client.models.generate_content(model="gemini-2.5-flash", contents="hi")
    finally:
        client.close()

    assert "".join(c.text or "" for c in chunks) == "streamed text"
    fn_calls = [fc for c in chunks for fc in c.function_calls or ()]
    assert [(fc.name, fc.args) for fc in fn_calls] == [("f", {"x": 1})]
    assert [e.values for e in emb.embeddings or ()] == [embedding_vector("a", 6), embedding_vector("b", 6)]
    assert info.value.code == 429
    assert all(r.path.startswith(f"/{api_version}/models/") for r in up.requests)
    assert up.requests[0].headers["x-goog-api-key"] == "g-test"
