"""GeminiProvider over real HTTP: recorded Gemini bodies served from loopback, called through the public SDK."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Callable, Coroutine
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

import pytest
from aiohttp import web

import llmswitch
from llmswitch import transport
from llmswitch.errors import AuthenticationError, RateLimitError
from llmswitch.providers import get_provider
from llmswitch.providers.base import Endpoint

RECORDED = Path(__file__).resolve().parents[2].parent / "shared" / "fixtures" / "recorded" / "gemini"
T = TypeVar("T")


def recorded(name: str) -> tuple[int, str, str]:
    """(status, content type, body) of a recorded Gemini answer."""
    fx = json.loads((RECORDED / f"{name}.json").read_text())
    resp = fx["response"]
    return resp["status"], resp["headers"].get("content-type", "application/json"), resp["body_text"]


@dataclass
class Seen:
    path: str
    headers: dict[str, str]
    body: Any


@dataclass
class Upstream:
    """A loopback Gemini: answers each request with the next scripted reply, remembers what it got."""

    replies: list[tuple[int, str, str]]
    chunk: int = 0  # > 0: write the body in pieces of this size (a stream arriving split anywhere)
    seen: list[Seen] = field(default_factory=list)
    url: str = ""

    async def handle(self, request: web.Request) -> web.StreamResponse:
        raw = await request.read()
        self.seen.append(
            Seen(request.path_qs, {k.lower(): v for k, v in request.headers.items()}, json.loads(raw) if raw else None)
        )
        status, ctype, body = self.replies.pop(0)
        resp = web.StreamResponse(status=status, headers={"content-type": ctype})
        await resp.prepare(request)
        data = body.encode()
        step = self.chunk or len(data) or 1
        for i in range(0, len(data), step):
            await resp.write(data[i : i + step])
        await resp.write_eof()
        return resp


@asynccontextmanager
async def serve(*replies: tuple[int, str, str], chunk: int = 0) -> AsyncIterator[Upstream]:
    up = Upstream(list(replies), chunk)
    app = web.Application()
    app.router.add_route("*", "/{tail:.*}", up.handle)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    up.url = "http://{}:{}".format(*runner.addresses[0][:2])
    try:
        yield up
    finally:
        await transport.close_session()
        await runner.cleanup()


def run(scenario: Callable[[], Coroutine[Any, Any, T]]) -> T:
    return asyncio.run(scenario())


MESSAGES = [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "What is 4200 + 42?"}]


def test_completion_path_key_header_and_body() -> None:
    async def scenario() -> tuple[Any, Upstream]:
        async with serve(recorded("generate_content_simple")) as up:
            r = await llmswitch.acompletion(
                "gemini/gemini-2.5-flash", MESSAGES, api_base=up.url, api_key="k", temperature=0.3, max_tokens=100
            )
            return r, up

    r, up = run(scenario)
    (req,) = up.seen
    assert req.path == "/v1beta/models/gemini-2.5-flash:generateContent"
    assert req.headers["x-goog-api-key"] == "k" and "key=" not in req.path
    assert req.body == {
        "contents": [{"role": "user", "parts": [{"text": "What is 4200 + 42?"}]}],
        "systemInstruction": {"parts": [{"text": "Be brief."}]},
        "generationConfig": {"temperature": 0.3, "maxOutputTokens": 100},
    }
    assert "4242" in r.choices[0].message.content
    assert r.choices[0].finish_reason == "stop"
    assert (r.id, r.model) == ("SJfyaMbrNJKlqtsPvNOW8Ao", "gemini-2.5-flash")
    assert (r.usage.prompt_tokens, r.usage.completion_tokens, r.usage.total_tokens) == (13, 102, 115)
    assert r.usage.completion_tokens_details.reasoning_tokens == 25


def test_thinking_and_reasoning_content() -> None:
    async def scenario() -> tuple[Any, Upstream]:
        async with serve(recorded("thinking_thoughts")) as up:
            r = await llmswitch.acompletion(
                "gemini/gemini-2.5-flash", MESSAGES, api_base=up.url, api_key="k", reasoning_effort="low"
            )
            return r, up

    r, up = run(scenario)
    assert up.seen[0].body["generationConfig"] == {"thinkingConfig": {"thinkingBudget": 1024, "includeThoughts": True}}
    assert r.choices[0].message.reasoning_content.startswith("**Analyzing Prime Numbers")
    assert r.choices[0].message.content.endswith("3")


@pytest.mark.parametrize("chunk", [0, 1, 7])
def test_streaming(chunk: int) -> None:
    async def scenario() -> tuple[list[Any], Upstream]:
        async with serve(recorded("stream_sse"), chunk=chunk) as up:
            stream = await llmswitch.acompletion(
                "gemini/gemini-2.5-flash",
                MESSAGES,
                api_base=up.url,
                api_key="k",
                stream=True,
                stream_options={"include_usage": True},
            )
            return [c async for c in stream], up

    chunks, up = run(scenario)
    assert up.seen[0].path == "/v1beta/models/gemini-2.5-flash:streamGenerateContent?alt=sse"
    text = "".join(ch.delta.content or "" for c in chunks for ch in c.choices)
    assert text.endswith("00 + 42 = **4242**.") and "So, 4200" in text
    assert [ch.finish_reason for c in chunks for ch in c.choices if ch.finish_reason] == ["stop"]
    usage = chunks[-1].usage
    assert (usage.prompt_tokens, usage.completion_tokens, usage.completion_tokens_details.reasoning_tokens) == (
        13,
        138,
        75,
    )
    assert {c.id for c in chunks} == {"VJfyaP7eE_6zmtkP4qLV6Ao"}


def test_json_array_stream_from_a_proxy_that_drops_alt_sse() -> None:
    _, _, sse = recorded("stream_sse")
    chunks = [json.loads(line[6:]) for line in sse.split("\r\n\r\n") if line.startswith("data: ")]
    array = "[" + ",\r\n".join(json.dumps(c, indent=2) for c in chunks) + "]"

    async def scenario() -> list[Any]:
        async with serve((200, "application/json", array), chunk=5) as up:
            stream = await llmswitch.acompletion(
                "gemini/gemini-2.5-flash", MESSAGES, api_base=up.url, api_key="k", stream=True
            )
            return [c async for c in stream]

    got = run(scenario)
    assert "".join(ch.delta.content or "" for c in got for ch in c.choices).endswith("**4242**.")


def test_embeddings() -> None:
    _, ctype, body = recorded("embeddings_batch_embed_contents")
    one = json.loads(body)["embeddings"][0]
    two = json.dumps({"embeddings": [one, {"values": [0.5, -0.5]}]})

    async def scenario() -> tuple[Any, Upstream]:
        async with serve((200, ctype, two)) as up:
            r = await llmswitch.aembedding(
                "gemini/text-embedding-004", ["hello", "world"], api_base=up.url, api_key="k", dimensions=768
            )
            return r, up

    r, up = run(scenario)
    (req,) = up.seen
    assert req.path == "/v1beta/models/text-embedding-004:batchEmbedContents"
    assert req.headers["x-goog-api-key"] == "k"
    assert req.body == {
        "requests": [
            {"model": "models/text-embedding-004", "content": {"parts": [{"text": t}]}, "outputDimensionality": 768}
            for t in ("hello", "world")
        ]
    }
    assert [len(d.embedding) for d in r.data] == [768, 2]
    assert r.data[1].embedding == [0.5, -0.5]


TOOLS = [
    {
        "type": "function",
        "function": {
            "name": "secret_retrieval_tool",
            "description": "A tool that requires a password to retrieve a secret.",
            "parameters": {"type": "object", "properties": {"password": {"type": "string"}}, "required": ["password"]},
        },
    }
]


def test_tool_loop_sends_names_and_thought_signatures_back() -> None:
    _, _, first_body = recorded("function_call")
    signature = json.loads(first_body)["candidates"][0]["content"]["parts"][0]["thoughtSignature"]

    async def scenario() -> tuple[Any, Any, Upstream]:
        async with serve(recorded("function_call"), recorded("function_response_followup")) as up:
            messages: list[Any] = [{"role": "user", "content": "Secrets for: mellon,radiance"}]
            first = await llmswitch.acompletion(
                "gemini/gemini-2.5-flash", messages, api_base=up.url, api_key="k", tools=TOOLS
            )
            message = first.choices[0].message
            messages.append(message)
            for call, answer in zip(message.tool_calls, ("Welcome to Moria!", "Life before Death"), strict=True):
                messages.append({"role": "tool", "tool_call_id": call.id, "content": answer})
            second = await llmswitch.acompletion(
                "gemini/gemini-2.5-flash", messages, api_base=up.url, api_key="k", tools=TOOLS
            )
            return first, second, up

    first, second, up = run(scenario)
    calls = first.choices[0].message.tool_calls
    assert first.choices[0].finish_reason == "tool_calls"
    assert [(c.function.name, json.loads(c.function.arguments)) for c in calls] == [
        ("secret_retrieval_tool", {"password": "mellon"}),
        ("secret_retrieval_tool", {"password": "radiance"}),
    ]
    assert len({c.id for c in calls}) == 2
    assert calls[0].provider_specific_fields == {"thought_signature": signature}
    assert up.seen[0].body["tools"] == [
        {
            "functionDeclarations": [
                {
                    "name": "secret_retrieval_tool",
                    "description": "A tool that requires a password to retrieve a secret.",
                    "parameters": {
                        "type": "OBJECT",
                        "properties": {"password": {"type": "STRING"}},
                        "required": ["password"],
                    },
                }
            ]
        }
    ]
    model_turn, results = up.seen[1].body["contents"][1:]
    assert model_turn == {
        "role": "model",
        "parts": [
            {
                "functionCall": {"name": "secret_retrieval_tool", "args": {"password": "mellon"}},
                "thoughtSignature": signature,
            },
            {"functionCall": {"name": "secret_retrieval_tool", "args": {"password": "radiance"}}},
        ],
    }
    assert results == {
        "role": "user",
        "parts": [
            {"functionResponse": {"name": "secret_retrieval_tool", "response": {"output": "Welcome to Moria!"}}},
            {"functionResponse": {"name": "secret_retrieval_tool", "response": {"output": "Life before Death"}}},
        ],
    }
    assert "Welcome to Moria!" in second.choices[0].message.content


def test_invalid_key_is_an_authentication_error() -> None:
    async def scenario() -> None:
        async with serve(recorded("error_400_api_key_invalid")) as up:
            await llmswitch.acompletion(
                "gemini/gemini-2.5-flash", MESSAGES, api_base=up.url, api_key="bad", num_retries=0
            )

    with pytest.raises(AuthenticationError, match="API key not valid") as e:
        run(scenario)
    assert e.value.status_code == 400 and e.value.code == "API_KEY_INVALID"


def test_quota_error_carries_the_retry_delay_from_the_body() -> None:
    async def scenario() -> None:
        async with serve(recorded("error_429_resource_exhausted")) as up:
            await llmswitch.acompletion(
                "gemini/gemini-2.5-flash", MESSAGES, api_base=up.url, api_key="k", num_retries=0
            )

    with pytest.raises(RateLimitError, match="You exceeded your current quota") as e:
        run(scenario)
    assert e.value.retry_after == 48.0


def test_key_and_base_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    provider = get_provider("gemini")
    for var in ("GEMINI_API_KEY", "GOOGLE_API_KEY", "GEMINI_API_BASE"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("GOOGLE_API_KEY", "google-key")
    assert provider.endpoint() == Endpoint("https://generativelanguage.googleapis.com", "google-key", None, None)
    monkeypatch.setenv("GEMINI_API_KEY", "gemini-key")
    monkeypatch.setenv("GEMINI_API_BASE", "https://proxy.test/gemini/")
    assert provider.endpoint() == Endpoint("https://proxy.test/gemini", "gemini-key", None, None)
    monkeypatch.delenv("GEMINI_API_KEY")
    monkeypatch.delenv("GOOGLE_API_KEY")
    with pytest.raises(AuthenticationError, match="GEMINI_API_KEY or GOOGLE_API_KEY"):
        provider.endpoint()


@pytest.mark.parametrize(
    ("base", "version", "model", "want"),
    [
        ("https://g.test", None, "gemini-2.5-flash", "https://g.test/v1beta/models/gemini-2.5-flash:generateContent"),
        (
            "https://g.test/v1beta",
            None,
            "gemini-2.5-flash",
            "https://g.test/v1beta/models/gemini-2.5-flash:generateContent",
        ),
        (
            "https://g.test",
            "v1alpha",
            "models/gemini-2.5-flash",
            "https://g.test/v1alpha/models/gemini-2.5-flash:generateContent",
        ),
        ("https://g.test/v1", None, "tunedModels/mine", "https://g.test/v1/tunedModels/mine:generateContent"),
    ],
)
def test_urls(base: str, version: str | None, model: str, want: str) -> None:
    provider = get_provider("gemini")
    assert provider.url(Endpoint(base, "k", None, version), model, "generateContent") == want  # type: ignore[attr-defined]


def test_extra_headers_and_provider_extras_reach_gemini() -> None:
    safety = [{"category": "HARM_CATEGORY_HARASSMENT", "threshold": "BLOCK_NONE"}]

    async def scenario() -> Upstream:
        async with serve(recorded("generate_content_simple")) as up:
            await llmswitch.acompletion(
                "gemini/gemini-2.5-flash",
                MESSAGES,
                api_base=up.url,
                api_key="k",
                extra_headers={"x-goog-user-project": "p"},
                safetySettings=safety,
                tools=[{"googleSearch": {}}],
            )
            return up

    up = run(scenario)
    assert up.seen[0].headers["x-goog-user-project"] == "p"
    assert up.seen[0].body["safetySettings"] == safety
    assert up.seen[0].body["tools"] == [{"googleSearch": {}}]
