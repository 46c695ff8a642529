"""The Anthropic provider over real HTTP: recorded bodies served from loopback, the public SDK as client."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web
from pydantic import BaseModel

import llmswitch
from llmswitch import errors, transport
from llmswitch.dialects.anthropic_messages import RESPONSE_TOOL

RECORDED = Path(__file__).resolve().parents[2].parent / "shared" / "fixtures" / "recorded" / "anthropic"
MESSAGES = [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "What is 4200 + 42?"}]
SECRET_TOOL = {
    "type": "function",
    "function": {
        "name": "secret_retrieval_tool",
        "description": "A tool that requires a password to retrieve a secret.",
        "parameters": {"type": "object", "properties": {"password": {"type": "string"}}, "required": ["password"]},
    },
}

Reply = tuple[int, dict[str, str], bytes]


def recorded(name: str) -> Reply:
    fx = json.loads((RECORDED / f"{name}.json").read_text())
    r = fx["response"]
    headers = {k: v for k, v in r["headers"].items() if k in ("content-type", "retry-after", "x-should-retry")}
    return r["status"], headers, r["body_text"].encode()


def message(content: list[dict[str, Any]], stop_reason: str = "end_turn", **usage: int) -> Reply:
    body = {
        "id": "msg_test",
        "type": "message",
        "role": "assistant",
        "model": "claude-sonnet-4-20250514",
        "content": content,
        "stop_reason": stop_reason,
        "stop_sequence": None,
        "usage": {"input_tokens": 10, "output_tokens": 5, **usage},
    }
    return 200, {"content-type": "application/json"}, json.dumps(body).encode()


def error(status: int, etype: str, text: str, **headers: str) -> Reply:
    body = {"type": "error", "error": {"type": etype, "message": text}, "request_id": "req_1"}
    return status, {"content-type": "application/json", **headers}, json.dumps(body).encode()


class Upstream:
    """A loopback Anthropic: answers the n-th request with the n-th reply (the last one repeats).

    Streamed bodies are written in small pieces, so the client sees events split across reads.
    """

    def __init__(self, *replies: Reply) -> None:
        self.replies = list(replies)
        self.requests: list[dict[str, Any]] = []
        self.url = ""
        self._runner: web.AppRunner | None = None

    async def __aenter__(self) -> Upstream:
        app = web.Application()
        app.router.add_route("*", "/{tail:.*}", self._answer)
        self._runner = web.AppRunner(app)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        self.url = f"http://127.0.0.1:{self._runner.addresses[0][1]}"
        return self

    async def __aexit__(self, *exc: object) -> None:
        assert self._runner is not None
        await self._runner.cleanup()

    async def _answer(self, request: web.Request) -> web.StreamResponse:
        raw = await request.read()
        self.requests.append(
            {
                "path": request.path_qs,
                "headers": {k.lower(): v for k, v in request.headers.items()},
                "body": json.loads(raw) if raw else None,
            }
        )
        status, headers, body = self.replies[min(len(self.requests), len(self.replies)) - 1]
        if not headers.get("content-type", "").startswith("text/event-stream"):
            return web.Response(status=status, body=body, headers=headers)
        resp = web.StreamResponse(status=status, headers=headers)
        await resp.prepare(request)
        for i in range(0, len(body), 53):
            await resp.write(body[i : i + 53])
        await resp.write_eof()
        return resp

    @property
    def body(self) -> dict[str, Any]:
        return self.requests[-1]["body"]  # type: ignore[no-any-return]


def run(upstream: Upstream, call: Callable[[str], Awaitable[Any]]) -> Any:
    async def main() -> Any:
        try:
            async with upstream:
                return await call(upstream.url)
        finally:
            await transport.close_session()

    return asyncio.run(main())


async def chat(url: str, model: str = "anthropic/claude-sonnet-4-0", **kw: Any) -> Any:
    kw.setdefault("messages", MESSAGES)
    return await llmswitch.acompletion(
        model, api_base=url, api_key="sk-test", num_retries=kw.pop("num_retries", 0), **kw
    )


async def chat_stream(url: str, **kw: Any) -> list[Any]:
    stream = await chat(url, stream=True, stream_options={"include_usage": True}, **kw)
    return [c async for c in stream]


def test_request_and_response() -> None:
    up = Upstream(recorded("messages_simple"))
    r = run(up, lambda url: chat(url, max_tokens=100, temperature=0.3, stop=["END"], user="u-1"))
    req = up.requests[0]
    assert req["path"] == "/v1/messages"
    h = req["headers"]
    assert (h["x-api-key"], h["anthropic-version"], h["content-type"]) == ("sk-test", "2023-06-01", "application/json")
    assert "anthropic-beta" not in h and "authorization" not in h
    assert req["body"] == {
        "model": "claude-sonnet-4-0",
        "messages": [{"role": "user", "content": "What is 4200 + 42?"}],
        "max_tokens": 100,
        "system": "Be brief.",
        "temperature": 0.3,
        "stop_sequences": ["END"],
        "metadata": {"user_id": "u-1"},
    }
    assert r.choices[0].message.content == "4200 + 42 = 4242"
    assert (r.choices[0].finish_reason, r.model, r.id) == (
        "stop",
        "claude-sonnet-4-20250514",
        "msg_01EXuhhFC9buDpjCcznFPSDs",
    )
    assert (r.usage.prompt_tokens, r.usage.completion_tokens, r.usage.total_tokens) == (17, 15, 32)


def test_default_max_tokens_and_api_base_forms(monkeypatch: pytest.MonkeyPatch) -> None:
    up = Upstream(recorded("messages_simple"))
    run(up, lambda url: chat(url + "/v1"))
    assert up.requests[0]["path"] == "/v1/messages"
    assert up.body["max_tokens"] == 8192  # required by the API: a per-model default
    # key and base from the environment, as the anthropic SDK reads them
    up = Upstream(recorded("messages_simple"))

    async def from_env(url: str) -> Any:
        monkeypatch.setenv("ANTHROPIC_BASE_URL", url)
        monkeypatch.setenv("ANTHROPIC_API_KEY", "sk-env")
        return await llmswitch.acompletion("anthropic/claude-3-haiku-20240307", MESSAGES, num_retries=0)

    run(up, from_env)
    assert up.requests[0]["headers"]["x-api-key"] == "sk-env" and up.body["max_tokens"] == 4096


@pytest.mark.parametrize(
    ("fixture", "prompt", "cached", "written", "split"),
    [
        ("usage_cache_creation", 4175, 0, 4167, {"ephemeral_5m_input_tokens": 4167, "ephemeral_1h_input_tokens": 0}),
        ("usage_cache_read", 4179, 4167, None, None),
    ],
)
def test_cache_usage_in_normal_form(fixture: str, prompt: int, cached: int, written: int | None, split: Any) -> None:
    cc = {"type": "ephemeral", "ttl": "1h"}
    system = {"role": "system", "content": [{"type": "text", "text": "Be brief.", "cache_control": cc}]}
    up = Upstream(recorded(fixture))
    r = run(up, lambda url: chat(url, messages=[system, MESSAGES[1]]))
    assert up.body["system"] == [{"type": "text", "text": "Be brief.", "cache_control": cc}]
    u = r.usage
    assert (u.prompt_tokens, u.prompt_tokens_details.cached_tokens) == (prompt, cached)
    assert u.prompt_tokens_details.cache_creation_tokens == written
    assert u.cache_creation == split


def test_stream_text_and_usage() -> None:
    chunks = run(Upstream(recorded("messages_stream")), chat_stream)
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert text == "4200 + 42 = 4242"
    assert [c.choices[0].finish_reason for c in chunks if c.choices and c.choices[0].finish_reason] == ["stop"]
    assert chunks[-1].usage.prompt_tokens == 17 and chunks[-1].usage.completion_tokens == 15
    assert chunks[0].id == "msg_018bk6q16LtrDpGDm6TyXTgn" and chunks[0].model == "claude-sonnet-4-20250514"


def test_stream_parallel_tool_calls() -> None:
    up = Upstream(recorded("tool_use_stream_input_json_delta"))
    chunks = run(up, lambda url: chat_stream(url, tools=[SECRET_TOOL]))
    assert up.body["stream"] is True and up.body["tools"][0]["input_schema"] == SECRET_TOOL["function"]["parameters"]
    calls: dict[int, dict[str, str]] = {}
    for c in chunks:
        for t in (c.choices[0].delta.tool_calls or []) if c.choices else []:
            slot = calls.setdefault(t.index, {"id": "", "name": "", "args": ""})
            slot["id"] += t.id or ""
            slot["name"] += t.function.name or ""
            slot["args"] += t.function.arguments or ""
    assert sorted(calls) == [0, 1]
    assert [json.loads(calls[i]["args"]) for i in (0, 1)] == [{"password": "mellon"}, {"password": "radiance"}]
    assert calls[0]["id"] == "toolu_015cUijgET79LXjgeYQerN2h" and calls[1]["name"] == "secret_retrieval_tool"
    assert [c.choices[0].finish_reason for c in chunks if c.choices and c.choices[0].finish_reason] == ["tool_calls"]


def test_stream_thinking_with_signature() -> None:
    up = Upstream(recorded("thinking_stream"))
    chunks = run(
        up, lambda url: chat_stream(url, thinking={"type": "enabled", "budget_tokens": 6400}, max_tokens=16000)
    )
    assert up.body["thinking"] == {"type": "enabled", "budget_tokens": 6400} and up.body["max_tokens"] == 16000
    deltas = [c.choices[0].delta for c in chunks if c.choices]
    reasoning = "".join(d.reasoning_content or "" for d in deltas)
    sigs = [b["signature"] for d in deltas for b in d.thinking_blocks or [] if b.get("signature")]
    assert reasoning.startswith("I need to find all prime numbers below 400") and len(sigs) == 1
    assert "".join(d.content or "" for d in deltas).endswith("379: Prime\n\n3")


THINKING = json.loads(json.loads((RECORDED / "thinking.json").read_text())["response"]["body_text"])["content"][0]


def test_tool_loop_sends_thinking_blocks_back_unchanged() -> None:
    first = message(
        [
            THINKING,
            {"type": "redacted_thinking", "data": "EmwKAhgBEgy3va3pzix/LafPsn4a"},
            {"type": "text", "text": "Let me look that up."},
            {"type": "tool_use", "id": "toolu_01A", "name": "secret_retrieval_tool", "input": {"password": "mellon"}},
        ],
        stop_reason="tool_use",
    )
    up = Upstream(first, recorded("tool_result_followup"))

    async def loop(url: str) -> Any:
        convo: list[Any] = [{"role": "user", "content": "Secret for mellon?"}]
        r1 = await chat(url, messages=convo, tools=[SECRET_TOOL], reasoning_effort="low")
        msg = r1.choices[0].message
        assert r1.choices[0].finish_reason == "tool_calls" and msg.reasoning_content == THINKING["thinking"]
        convo += [msg, {"role": "tool", "tool_call_id": msg.tool_calls[0].id, "content": "Welcome to Moria!"}]
        return await chat(url, messages=convo, tools=[SECRET_TOOL], reasoning_effort="low")

    r2 = run(up, loop)
    assert up.requests[0]["body"]["thinking"] == {"type": "enabled", "budget_tokens": 2048}
    second = up.requests[1]["body"]
    assistant, results = second["messages"][1], second["messages"][2]
    assert assistant["role"] == "assistant"
    assert assistant["content"][0] == THINKING  # text and signature byte for byte
    assert assistant["content"][1] == {"type": "redacted_thinking", "data": "EmwKAhgBEgy3va3pzix/LafPsn4a"}
    assert assistant["content"][3] == {
        "type": "tool_use",
        "id": "toolu_01A",
        "name": "secret_retrieval_tool",
        "input": {"password": "mellon"},
    }
    assert results == {
        "role": "user",
        "content": [{"type": "tool_result", "tool_use_id": "toolu_01A", "content": "Welcome to Moria!"}],
    }
    assert r2.choices[0].message.content.startswith("Here are the secrets")


def test_parallel_tool_calls_and_results() -> None:
    up = Upstream(recorded("tool_use_parallel"))
    r = run(up, lambda url: chat(url, tools=[SECRET_TOOL], tool_choice="required", parallel_tool_calls=False))
    assert up.body["tool_choice"] == {"type": "any", "disable_parallel_tool_use": True}
    calls = r.choices[0].message.tool_calls
    assert [json.loads(c.function.arguments) for c in calls] == [{"password": "mellon"}, {"password": "radiance"}]
    assert r.choices[0].message.content == "I'll retrieve the secrets for both passwords you provided."


class Book(BaseModel):
    title: str
    rating: int


def test_structured_output_native() -> None:
    up = Upstream(recorded("structured_output_output_format"))
    r = run(up, lambda url: chat(url, "anthropic/claude-sonnet-4-5", response_format=Book))
    fmt = up.body["output_config"]["format"]
    assert fmt["type"] == "json_schema" and fmt["schema"]["required"] == ["title", "rating"]
    assert "tools" not in up.body and "anthropic-beta" not in up.requests[0]["headers"]
    assert r.choices[0].message.parsed == Book(title="THE NAME OF THE WIND", rating=7)


def test_structured_output_through_a_forced_tool() -> None:
    answer = message(
        [{"type": "tool_use", "id": "toolu_1", "name": RESPONSE_TOOL, "input": {"title": "DUNE", "rating": 9}}],
        stop_reason="tool_use",
    )
    up = Upstream(answer)
    r = run(up, lambda url: chat(url, "anthropic/claude-sonnet-4-20250514", response_format=Book))
    assert up.body["tool_choice"] == {"type": "tool", "name": RESPONSE_TOOL}
    assert up.body["tools"][0]["input_schema"]["required"] == ["title", "rating"]
    c = r.choices[0]
    assert (c.finish_reason, c.message.tool_calls, c.message.parsed) == ("stop", None, Book(title="DUNE", rating=9))


def test_server_tools_pass_through() -> None:
    web_search = {"type": "web_search_20250305", "name": "web_search", "max_uses": 2}
    result = {"type": "web_search_tool_result", "tool_use_id": "srvtoolu_1", "content": []}
    up = Upstream(
        message(
            [
                {"type": "server_tool_use", "id": "srvtoolu_1", "name": "web_search", "input": {"query": "q"}},
                result,
                {"type": "text", "text": "Nothing found."},
            ]
        )
    )
    r = run(up, lambda url: chat(url, tools=[web_search]))
    assert up.body["tools"] == [web_search]
    blocks = r.choices[0].message.provider_specific_fields["blocks"]
    assert [b["type"] for b in blocks] == ["server_tool_use", "web_search_tool_result"]
    assert r.choices[0].message.content == "Nothing found."


def test_beta_headers_are_merged() -> None:
    up = Upstream(recorded("messages_simple"))
    convo = [
        {
            "role": "user",
            "content": [{"type": "file", "file": {"file_id": "file_1"}}, {"type": "text", "text": "Summarise"}],
        }
    ]
    run(
        up,
        lambda url: chat(
            url, messages=convo, extra_headers={"anthropic-beta": "context-1m-2025-08-07", "x-trace": "t"}
        ),
    )
    h = up.requests[0]["headers"]
    assert h["anthropic-beta"] == "files-api-2025-04-14,context-1m-2025-08-07" and h["x-trace"] == "t"
    assert up.body["messages"][0]["content"][0] == {"type": "document", "source": {"type": "file", "file_id": "file_1"}}


@pytest.mark.parametrize(
    ("reply", "cls", "text"),
    [
        (recorded("error_400_prompt_too_long"), errors.ContextWindowExceededError, "prompt is too long"),
        (recorded("error_401_authentication"), errors.AuthenticationError, "invalid x-api-key"),
        (recorded("error_404_model_not_found"), errors.NotFoundError, "model: this-model-does-not-exist"),
        (recorded("error_429_rate_limit"), errors.RateLimitError, "exceed your organization's rate limit"),
        (
            error(413, "request_too_large", "Request exceeds the maximum allowed number of bytes."),
            errors.BadRequestError,
            "maximum allowed",
        ),
        (
            error(403, "permission_error", "Your API key does not have permission"),
            errors.PermissionDeniedError,
            "permission",
        ),
        (error(500, "api_error", "Internal server error"), errors.InternalServerError, "Internal server error"),
        (error(529, "overloaded_error", "Overloaded"), errors.ServiceUnavailableError, "Overloaded"),
        ((200, {"content-type": "application/json"}, b"not json"), errors.APIResponseValidationError, "not JSON"),
    ],
)
def test_error_classes_over_http(reply: Reply, cls: type[Exception], text: str) -> None:
    with pytest.raises(cls) as ei:
        run(Upstream(reply), chat)
    assert text in str(ei.value) and str(ei.value).startswith("anthropic: ")


def test_retry_after_and_should_retry_are_honoured() -> None:
    up = Upstream(error(529, "overloaded_error", "Overloaded", **{"retry-after": "0.01"}), recorded("messages_simple"))
    r = run(up, lambda url: chat(url, num_retries=1))
    assert len(up.requests) == 2 and r.choices[0].message.content == "4200 + 42 = 4242"
    # x-should-retry: false wins over the class-based decision (429 is otherwise retried)
    up = Upstream(recorded("error_429_rate_limit"), recorded("messages_simple"))
    with pytest.raises(errors.RateLimitError) as ei:
        run(up, lambda url: chat(url, num_retries=2))
    assert len(up.requests) == 1 and ei.value.should_retry is False
    up = Upstream(error(529, "overloaded_error", "Overloaded", **{"retry-after": "7"}))
    with pytest.raises(errors.ServiceUnavailableError) as e2:
        run(up, chat)
    assert e2.value.retry_after == 7.0 and e2.value.status_code == 529


def test_error_event_mid_stream_raises() -> None:
    body = (
        b'event: message_start\ndata: {"type":"message_start","message":{"id":"msg_1","model":"claude","usage":{"input_tokens":3,"output_tokens":1}}}\n\n'
        b'event: content_block_start\ndata: {"type":"content_block_start","index":0,"content_block":{"type":"text","text":""}}\n\n'
        b'event: content_block_delta\ndata: {"type":"content_block_delta","index":0,"delta":{"type":"text_delta","text":"Hel"}}\n\n'
        b'event: error\ndata: {"type":"error","error":{"type":"overloaded_error","message":"Overloaded"}}\n\n'
    )
    seen: list[str] = []

    async def consume(url: str) -> None:
        stream = await chat(url, stream=True)
        async for c in stream:
            seen.append(c.choices[0].delta.content or "")

    with pytest.raises(errors.ServiceUnavailableError, match="Overloaded"):
        run(Upstream((200, {"content-type": "text/event-stream"}, body)), consume)
    assert "".join(seen) == "Hel"


def test_error_body_inside_a_200() -> None:
    with pytest.raises(errors.RateLimitError, match="slow down"):
        run(Upstream(error(200, "rate_limit_error", "slow down")), chat)


def test_no_embeddings() -> None:
    with pytest.raises(errors.ConfigError, match="does not offer embeddings"):
        run(
            Upstream(recorded("messages_simple")),
            lambda url: llmswitch.aembedding("anthropic/claude-sonnet-4-0", "hi", api_base=url, api_key="k"),
        )
