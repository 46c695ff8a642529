"""Ollama's native API (``ollama/`` and ``ollama_chat/`` at the server root) and its ``/v1`` rule.

Recorded native traffic is replayed byte for byte over loopback and judged by the shared reference
reading (``conformance/expect.py``); behaviour is driven through ``llmswitch.testing.FakeUpstream``'s
Ollama face, which decodes the body we send as Ollama does (a malformed one gets Ollama's 400).
"""

from __future__ import annotations

import asyncio
import json
import sys
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web

import llmswitch
from llmswitch import ir, transport
from llmswitch.dialects.ollama_chat_stream import StreamDecoder
from llmswitch.errors import InternalServerError, NotFoundError, UnsupportedParamsError
from llmswitch.providers import get_provider
from llmswitch.testing import FakeUpstream, Reply

SHARED = Path(__file__).resolve().parents[2].parent / "shared"
RECORDED = SHARED / "fixtures" / "recorded" / "ollama"
sys.path.insert(0, str(SHARED / "conformance"))
import expect  # noqa: E402

NATIVE = sorted(p.stem for p in RECORDED.glob("native_chat_*.json"))
USER = [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "Hi"}]
TOOLS = [
    {
        "type": "function",
        "function": {
            "name": "get_weather",
            "parameters": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]},
        },
    }
]


def _fixture(case: str) -> dict[str, Any]:
    out: dict[str, Any] = json.loads((RECORDED / f"{case}.json").read_text())
    return out


async def _replay(fx: dict[str, Any], model: str, **kw: Any) -> tuple[Any, list[tuple[str, Any]]]:
    """The recorded answer served verbatim (in 7-byte pieces, to split lines anywhere); our call and what it sent."""
    seen: list[tuple[str, Any]] = []

    async def answer(request: web.Request) -> web.StreamResponse:
        raw = await request.read()
        seen.append((request.path, json.loads(raw) if raw else None))
        resp = web.StreamResponse(status=fx["response"]["status"], headers={"content-type": "application/json"})
        await resp.prepare(request)
        body = fx["response"]["body_text"].encode()
        for i in range(0, len(body), 7):
            await resp.write(body[i : i + 7])
        await resp.write_eof()
        return resp

    app = web.Application()
    app.router.add_route("*", "/{tail:.*}", answer)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    host, port = runner.addresses[0][:2]
    try:
        result: Any
        try:
            result = await llmswitch.acompletion(model, api_base=f"http://{host}:{port}", num_retries=0, **kw)
            if kw.get("stream"):
                result = [c async for c in result]
        except Exception as exc:  # judged by the caller
            result = exc
        return result, seen
    finally:
        await transport.close_session()
        await runner.cleanup()


def _normal(result: Any, stream: bool) -> dict[str, Any]:
    if not stream:
        m = result.choices[0].message
        calls = [{"name": t.function.name, "arguments": json.loads(t.function.arguments)} for t in m.tool_calls or []]
        text, think, finish, u = m.content, m.reasoning_content, result.choices[0].finish_reason, result.usage
    else:
        text, think, finish, u, slots = "", "", None, None, {}
        for c in result:
            u = c.usage or u
            for ch in c.choices:
                text += ch.delta.content or ""
                think += ch.delta.reasoning_content or ""
                for t in ch.delta.tool_calls or []:
                    slot = slots.setdefault(t.index, {"name": "", "arguments": ""})
                    slot["name"] += t.function.name or ""
                    slot["arguments"] += t.function.arguments or ""
                finish = ch.finish_reason or finish
        calls = [{"name": s["name"], "arguments": json.loads(s["arguments"])} for _, s in sorted(slots.items())]
    usage = {"prompt": u.prompt_tokens, "completion": u.completion_tokens, "cached": 0, "reasoning": 0}
    return {
        "content": text or None,
        "reasoning": think or None,
        "tool_calls": calls,
        "finish_reason": finish,
        "usage": usage,
    }


@pytest.mark.parametrize("prefix", ["ollama", "ollama_chat"])
@pytest.mark.parametrize("case", NATIVE)
def test_recorded_native_answers_read_as_the_reference_does(case: str, prefix: str) -> None:
    fx = _fixture(case)
    body = fx["request"]["body"]
    stream = body.get("stream", True) is not False
    kw: dict[str, Any] = {"messages": body["messages"], "stream": stream}
    if body.get("tools"):
        kw["tools"] = body["tools"]
    if stream:
        kw["stream_options"] = {"include_usage": True}
    result, seen = asyncio.run(_replay(fx, f"{prefix}/{body['model']}", **kw))
    assert not isinstance(result, Exception), result
    assert _normal(result, stream) == expect.ollama_chat(fx["response"]["body_text"], stream)
    path, sent = seen[-1]
    assert path == "/api/chat"
    assert sent["stream"] is stream  # Ollama streams unless told otherwise: always said out loud
    assert sent["model"] == body["model"]


def test_recorded_unknown_model_is_not_found_with_ollamas_words() -> None:
    fx = _fixture("native_error_model_not_found")
    result, _ = asyncio.run(_replay(fx, "ollama/nonexistent-model:latest", messages=USER))
    assert isinstance(result, NotFoundError)
    assert "model 'nonexistent-model:latest' not found" in str(result)


def test_the_litellm_call_reaches_api_chat_at_the_server_root() -> None:
    # completion(model="ollama/qwen3:14b", api_base="http://localhost:11434") posted to /chat/completions
    # under a root without /v1 and got a 404; it is Ollama's own API now
    with FakeUpstream() as up:
        r = llmswitch.completion("ollama/qwen3:14b", USER, api_base=up.url, max_tokens=9)
        assert r.choices[0].message.content == "Hi"
        assert r.usage.prompt_tokens > 0 and r.usage.completion_tokens > 0
        (rec,) = up.requests
        assert rec.path == "/api/chat"
        assert rec.json == {
            "model": "qwen3:14b",
            "messages": USER,
            "stream": False,
            "options": {"num_predict": 9},
        }


def test_default_base_is_the_local_server_root() -> None:
    for name in ("ollama", "ollama_chat"):
        p = get_provider(name)
        assert p.endpoint().api_base == "http://localhost:11434"
        req = ir.Request(model="m", messages=[])
        assert p.chat_call(req, model="m", endpoint=p.endpoint()).url == "http://localhost:11434/api/chat"


@pytest.mark.parametrize("prefix", ["ollama", "ollama_chat"])
def test_a_base_ending_in_v1_is_the_openai_compatible_api(prefix: str) -> None:
    with FakeUpstream() as up:
        r = llmswitch.completion(f"{prefix}/qwen3:14b", USER, api_base=up.url + "/v1", max_tokens=9)
        assert r.choices[0].message.content == "Hi"
        (rec,) = up.requests
        assert (rec.path, rec.json["max_tokens"]) == ("/v1/chat/completions", 9)


def test_options_format_keep_alive_and_think() -> None:
    schema = {"type": "object", "properties": {"a": {"type": "integer"}}, "required": ["a"]}
    with FakeUpstream() as up:
        r = llmswitch.completion(
            "ollama_chat/gpt-oss:20b",
            USER,
            api_base=up.url,
            temperature=0.1,
            top_p=0.9,
            top_k=20,
            seed=7,
            stop=["END"],
            num_ctx=8192,
            options={"repeat_penalty": 1.1},
            keep_alive="10m",
            reasoning_effort="high",
            response_format={"type": "json_schema", "json_schema": {"name": "x", "schema": schema}},
        )
        assert json.loads(r.choices[0].message.content)["a"] is not None  # the fake answered to the format
        sent = up.requests[-1].json
    assert sent["format"] == schema
    assert sent["keep_alive"] == "10m"
    assert sent["think"] == "high"  # gpt-oss takes levels
    assert sent["options"] == {
        "temperature": 0.1,
        "top_p": 0.9,
        "top_k": 20,
        "seed": 7,
        "stop": ["END"],
        "num_ctx": 8192,
        "repeat_penalty": 1.1,
    }


def test_think_is_on_or_off_for_models_without_levels() -> None:
    with FakeUpstream() as up:
        llmswitch.completion("ollama/qwen3:14b", USER, api_base=up.url, reasoning_effort="low")
        llmswitch.completion("ollama/qwen3:14b", USER, api_base=up.url, reasoning_effort="none")
        llmswitch.completion("ollama/qwen3:14b", USER, api_base=up.url, response_format={"type": "json_object"})
        assert [r.json.get("think") for r in up.requests] == [True, False, None]
        assert up.requests[-1].json["format"] == "json"


def test_thinking_reaches_the_caller_as_reasoning_in_both_modes() -> None:
    reply = Reply(text="4", reasoning="2+2 is 4")
    with FakeUpstream() as up:
        up.script(reply, reply)
        r = llmswitch.completion("ollama/qwen3:14b", USER, api_base=up.url)
        assert (r.choices[0].message.content, r.choices[0].message.reasoning_content) == ("4", "2+2 is 4")
        chunks = list(llmswitch.completion("ollama/qwen3:14b", USER, api_base=up.url, stream=True))
    assert "".join(c.choices[0].delta.reasoning_content or "" for c in chunks if c.choices) == "2+2 is 4"
    assert "".join(c.choices[0].delta.content or "" for c in chunks if c.choices) == "4"


def test_tool_round_trip_with_images_as_ollama_takes_them() -> None:
    png = "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mP8z8BQDwAEhQGAhKmMIQAAAABJRU5ErkJggg=="
    with FakeUpstream() as up:
        up.script(Reply(tool_calls=[("get_weather", {"city": "Paris"})]))
        msgs: list[dict[str, Any]] = [
            {
                "role": "user",
                "content": [
                    {"type": "text", "text": "Weather where this was taken?"},
                    {"type": "image_url", "image_url": {"url": f"data:image/png;base64,{png}"}},
                ],
            }
        ]
        r = llmswitch.completion("ollama/llava", msgs, api_base=up.url, tools=TOOLS, stream=True)
        chunks = list(r)
        calls = [t for c in chunks if c.choices for t in c.choices[0].delta.tool_calls or []]
        assert [(t.function.name, json.loads(t.function.arguments)) for t in calls] == [
            ("get_weather", {"city": "Paris"})
        ]
        assert [c.choices[0].finish_reason for c in chunks if c.choices and c.choices[0].finish_reason] == [
            "tool_calls"
        ]
        first = up.requests[-1].json
        assert first["messages"][0] == {"role": "user", "content": "Weather where this was taken?", "images": [png]}
        assert first["tools"] == TOOLS
        msgs += [
            {
                "role": "assistant",
                "content": None,
                "tool_calls": [
                    {
                        "id": calls[0].id,
                        "type": "function",
                        "function": {"name": "get_weather", "arguments": '{"city":"Paris"}'},
                    }
                ],
            },
            {"role": "tool", "tool_call_id": calls[0].id, "content": "18C, sunny"},
        ]
        r2 = llmswitch.completion("ollama/llava", msgs, api_base=up.url, tools=TOOLS)
        assert r2.choices[0].finish_reason == "stop"
        sent = up.requests[-1].json["messages"]
    assert sent[1]["tool_calls"] == [
        {"id": calls[0].id, "function": {"name": "get_weather", "arguments": {"city": "Paris"}}}
    ]
    assert sent[2] == {"role": "tool", "content": "18C, sunny", "tool_name": "get_weather"}


def test_what_ollama_cannot_take_is_refused_before_any_call() -> None:
    with FakeUpstream() as up:
        with pytest.raises(UnsupportedParamsError, match="tool_choice"):
            llmswitch.completion("ollama/llama3", USER, api_base=up.url, tools=TOOLS, tool_choice="required")
        with pytest.raises(UnsupportedParamsError, match="not_an_ollama_field"):
            llmswitch.completion("ollama/llama3", USER, api_base=up.url, not_an_ollama_field=1)
        with pytest.raises(UnsupportedParamsError, match="logit_bias"):
            llmswitch.completion("ollama_chat/llama3", USER, api_base=up.url, logit_bias={"1": 2})
        assert up.requests == []
        # "none" means no tools, which Ollama can say; drop_params drops what it cannot
        llmswitch.completion("ollama/llama3", USER, api_base=up.url, tools=TOOLS, tool_choice="none")
        assert "tools" not in up.requests[-1].json
        r = llmswitch.completion("ollama_chat/llama3", USER, api_base=up.url, n=2, drop_params=True)
        assert r._hidden_params["dropped_params"] == ["n"]
        assert set(up.requests[-1].json) == {"model", "messages", "stream"}


def test_native_embeddings_use_api_embed() -> None:
    body = b'{"model":"all-minilm","embeddings":[[0.1,0.2],[0.3,0.4]],"prompt_eval_count":6}'
    p = get_provider("ollama")
    call = p.embedding_call(ir.EmbeddingRequest(model="m", input=["a", "b"]), model="all-minilm", endpoint=p.endpoint())
    assert (call.url, json.loads(call.body)) == (
        "http://localhost:11434/api/embed",
        {"model": "all-minilm", "input": ["a", "b"]},
    )
    out = p.decode_embedding(body, model="all-minilm")
    assert [e.vector for e in out.data] == [[0.1, 0.2], [0.3, 0.4]]
    assert out.usage is not None and out.usage.input_tokens == 6
    compat = p.endpoint(api_base="http://gpu:11434/v1")
    v1 = p.embedding_call(ir.EmbeddingRequest(model="m", input=["a"]), model="all-minilm", endpoint=compat)
    assert v1.url == "http://gpu:11434/v1/embeddings"


# ---------------------------------------------------------------- the NDJSON decoder


def test_stream_decoder_reads_the_same_however_the_bytes_are_split() -> None:
    body = _fixture("native_chat_stream_ndjson")["response"]["body_text"].encode()

    def decode(step: int) -> list[ir.StreamEvent]:
        d = StreamDecoder(provider="ollama")
        out = []
        for i in range(0, len(body), step):
            out += d.feed(body[i : i + step])
        return out + d.close()

    whole = decode(len(body))
    assert whole[-1].finish_reason == "stop" and whole[-1].usage is not None
    for step in (1, 3, 50):
        assert decode(step) == whole


def test_an_error_line_in_a_200_stream_raises_after_what_came_before() -> None:
    d = StreamDecoder(provider="ollama")
    events = d.feed(
        b'{"message":{"role":"assistant","content":"Hel"},"done":false}\n{"error":"model runner crashed"}\n'
    )
    assert [e.text for e in events] == ["Hel"]
    with pytest.raises(InternalServerError, match="model runner crashed"):
        d.close()


def test_sdk_embedding_through_api_embed_over_http() -> None:
    from llmswitch.testing import embedding_vector

    with FakeUpstream() as up:
        r = llmswitch.embedding("ollama/all-minilm", input=["alpha", "beta"], api_base=up.url, dimensions=4)
        (rec,) = up.requests
    assert (rec.path, rec.json) == ("/api/embed", {"model": "all-minilm", "input": ["alpha", "beta"], "dimensions": 4})
    assert [d["embedding"] if isinstance(d, dict) else d.embedding for d in r.data] == [
        embedding_vector("alpha", 4),
        embedding_vector("beta", 4),
    ]


def test_openai_defaults_said_out_loud_are_not_refused_and_logprobs_read_as_openais() -> None:
    with FakeUpstream() as up:
        llmswitch.completion("ollama/llama3", USER, api_base=up.url, store=False, service_tier="auto")
        assert set(up.requests[-1].json) == {"model", "messages", "stream"}
    lp = [{"token": "Hi", "logprob": -0.1, "bytes": [72, 105], "top_logprobs": []}]
    body = {"model": "m", "message": {"role": "assistant", "content": "Hi"}, "done": True, "logprobs": lp}
    resp = get_provider("ollama_chat").decode_chat(json.dumps(body).encode(), model="m")
    assert resp.choices[0].logprobs == {"content": lp}
