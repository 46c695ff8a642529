"""Recorded traffic of OpenAI and the OpenAI-compatible vendors, replayed over real HTTP.

Each recorded response is served verbatim (status, content-type, retry headers, body bytes) by an
aiohttp server on 127.0.0.1; the recorded request is replayed through the public
``llmswitch.acompletion`` / ``aembedding`` with the provider's prefix; the result is judged by the
shared reference reading (``conformance/expect.py``) and the request we sent by the OpenAI spec.
"""

from __future__ import annotations

import asyncio
import functools
import json
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web
from jsonschema import Draft202012Validator

import llmswitch
from llmswitch import transport

SHARED = Path(__file__).resolve().parents[2].parent / "shared"
RECORDED = SHARED / "fixtures" / "recorded"
sys.path.insert(0, str(SHARED / "conformance"))
import expect  # noqa: E402

# folder of recorded traffic -> the SDK's provider prefix
PREFIX = {
    "openai": "openai",
    "azure": "azure",
    "deepseek": "deepseek",
    "groq": "groq",
    "mistral": "mistral",
    "openrouter": "openrouter",
    "together": "together_ai",
    "xai": "xai",
    "ollama": "ollama",
}
OTHER_APIS = ("native_", "completions_", "responses_", "batch_")  # Ollama native, legacy completions, Responses, Batch
KEY = "sk-test-key"
# used when a recording has no chat messages of its own (a GET that failed with a 500)
FALLBACK_MESSAGES = [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "What is 4200 + 42?"}]
PASSED_ON = ("retry-after", "retry-after-ms", "x-should-retry")


def _cases() -> list[Any]:
    out = []
    for folder in PREFIX:
        for path in sorted((RECORDED / folder).glob("*.json")):
            if not path.stem.startswith(OTHER_APIS):
                out.append(pytest.param(folder, path.stem, id=f"{folder}/{path.stem}"))
    return out


CASES = _cases()


def fixture(folder: str, case: str) -> dict[str, Any]:
    out: dict[str, Any] = json.loads((RECORDED / folder / f"{case}.json").read_text())
    return out


# ---------------------------------------------------------------- the loopback upstream


@dataclass
class Seen:
    method: str
    path: str
    headers: dict[str, str]
    body: Any


@dataclass
class Replay:
    """Answers every request with one recorded response, byte for byte; remembers the requests."""

    response: dict[str, Any]
    requests: list[Seen] = field(default_factory=list)
    url: str = ""

    async def _answer(self, request: web.Request) -> web.StreamResponse:
        raw = await request.read()
        self.requests.append(
            Seen(
                request.method,
                request.path_qs,
                {k.lower(): v for k, v in request.headers.items()},
                json.loads(raw) if raw else None,
            )
        )
        recorded = {k.lower(): v for k, v in self.response["headers"].items()}
        body = self.response["body_text"].encode()
        lead = self.response["body_text"].lstrip()[:5]
        headers = {
            "content-type": recorded.get("content-type")
            or ("text/event-stream" if lead.startswith(("data:", ":", "event")) else "application/json")
        }
        headers |= {k: v for k, v in recorded.items() if k in PASSED_ON or k.startswith("x-ratelimit")}
        resp = web.StreamResponse(status=self.response["status"], headers=headers)
        await resp.prepare(request)
        for i in range(0, len(body), 1000):  # in pieces, as a network would deliver a stream
            await resp.write(body[i : i + 1000])
        await resp.write_eof()
        return resp

    async def __aenter__(self) -> Replay:
        app = web.Application()
        app.router.add_route("*", "/{tail:.*}", self._answer)
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        host, port = self._runner.addresses[0][:2]
        self.url = f"http://{host}:{port}"
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self._runner.cleanup()


# ---------------------------------------------------------------- one replayed call


@dataclass
class Outcome:
    kind: str  # chat | embedding
    stream: bool
    model: str
    request: Seen | None
    sent_kwargs: dict[str, Any]
    result: Any = None  # ModelResponse, [ModelResponseStream], EmbeddingResponse
    error: BaseException | None = None


def is_embedding(fx: dict[str, Any]) -> bool:
    return bool(fx["request"]["url"].endswith("/embeddings"))


def model_of(folder: str, fx: dict[str, Any]) -> str:
    url, body = fx["request"]["url"], fx["request"].get("body") or {}
    if folder == "azure" and "/deployments/" in url:
        return f"azure/{url.split('/deployments/')[1].split('/')[0]}"
    return f"{PREFIX[folder]}/{body.get('model', 'gpt-4o')}"


def call_kwargs(fx: dict[str, Any]) -> dict[str, Any]:
    """The recorded request's own parameters, as a user would pass them to the SDK."""
    body = fx["request"].get("body") if isinstance(fx["request"].get("body"), dict) else {}
    kw = {k: v for k, v in body.items() if k not in ("model", "messages", "stream", "stream_options")}
    kw["messages"] = body.get("messages") or FALLBACK_MESSAGES
    kw["stream"] = bool(body.get("stream"))
    if kw["stream"]:
        kw["stream_options"] = {"include_usage": True}
    return kw


@functools.cache
def replay(folder: str, case: str) -> Outcome:
    fx = fixture(folder, case)
    model = model_of(folder, fx)

    async def go() -> Outcome:
        async with Replay(fx["response"]) as upstream:
            # Ollama's OpenAI-compatible API is under /v1 (at the root, ollama/ speaks its native API)
            base = upstream.url + ("/v1" if folder == "ollama" else "")
            common = {"api_base": base, "api_key": KEY, "num_retries": 0, "timeout": 20}
            if is_embedding(fx):
                body = fx["request"]["body"]
                kw = {"input": ["hello world", "goodbye world"], "dimensions": body.get("dimensions")}
                out = Outcome("embedding", False, model, None, kw)
            else:
                kw = call_kwargs(fx)
                out = Outcome("chat", kw["stream"], model, None, kw)
            try:
                if out.kind == "embedding":
                    out.result = await llmswitch.aembedding(model, **kw, **common)
                elif out.stream:
                    out.result = [c async for c in await llmswitch.acompletion(model, **kw, **common)]
                else:
                    out.result = await llmswitch.acompletion(model, **kw, **common)
            except Exception as exc:  # the contract is the class and the message; judged below
                out.error = exc
            finally:
                await transport.close_session()
            out.request = upstream.requests[-1] if upstream.requests else None
            return out

    return asyncio.run(go())


def normal_form(out: Outcome) -> dict[str, Any]:
    """Our result in the reference's normal form (what driver.py reads through the public API)."""

    def usage(u: Any) -> dict[str, int] | None:
        if u is None:
            return None
        return {
            "prompt": u.prompt_tokens,
            "completion": u.completion_tokens,
            "cached": (u.prompt_tokens_details.cached_tokens if u.prompt_tokens_details else 0) or 0,
            "reasoning": (u.completion_tokens_details.reasoning_tokens if u.completion_tokens_details else 0) or 0,
        }

    if not out.stream:
        m = out.result.choices[0].message
        return {
            "content": m.content or None,
            "reasoning": m.reasoning_content or None,
            "tool_calls": [
                {"name": t.function.name, "arguments": json.loads(t.function.arguments or "{}")}
                for t in m.tool_calls or []
            ],
            "finish_reason": out.result.choices[0].finish_reason,
            "usage": usage(out.result.usage),
        }
    content, reasoning, calls, finish, u = "", "", {}, None, None
    for c in out.result:
        if c.usage is not None:
            u = usage(c.usage)
        for ch in c.choices:
            content += ch.delta.content or ""
            reasoning += ch.delta.reasoning_content or ""
            for t in ch.delta.tool_calls or []:
                slot = calls.setdefault(t.index, {"name": "", "arguments": ""})
                slot["name"] += (t.function.name or "") if t.function else ""
                slot["arguments"] += (t.function.arguments or "") if t.function else ""
            finish = ch.finish_reason or finish
    tools = [{"name": v["name"], "arguments": json.loads(v["arguments"] or "{}")} for _, v in sorted(calls.items())]
    return {
        "content": content or None,
        "reasoning": reasoning or None,
        "tool_calls": tools,
        "finish_reason": finish,
        "usage": u,
    }


def is_error_case(fx: dict[str, Any]) -> bool:
    resp = fx["response"]
    return resp["status"] >= 400 or expect.stream_error(resp["body_text"]) is not None


@functools.cache
def validator(schema: str) -> Draft202012Validator:
    doc = json.loads((SHARED / "specs" / "openai-openapi.json").read_text())
    return Draft202012Validator({"$ref": f"#/components/schemas/{schema}", "components": doc["components"]})


# ---------------------------------------------------------------- the tests


def test_every_folder_has_cases() -> None:
    folders = {p.values[0] for p in CASES}
    assert folders == set(PREFIX)
    assert len(CASES) >= 45


@pytest.mark.parametrize(("folder", "case"), CASES)
def test_response_reads_as_the_reference_does(folder: str, case: str) -> None:
    fx = fixture(folder, case)
    out = replay(folder, case)
    if is_error_case(fx):
        assert out.error is not None, f"expected {expect.expected_error(folder, fx)}, got a result"
        assert expect.expected_error(folder, fx) in [c.__name__ for c in type(out.error).__mro__]
        fragment = expect.error_message(fx)
        assert fragment
        assert fragment.lower() in str(out.error).lower()
        assert str(out.error).startswith(f"{PREFIX[folder]}: ")
        if fx["response"]["status"] >= 400:
            assert out.error.status_code == fx["response"]["status"]  # type: ignore[attr-defined]
        return
    assert out.error is None, f"raised {out.error!r}"
    if out.kind == "embedding":
        recorded = json.loads(fx["response"]["body_text"])
        assert [d.embedding for d in out.result.data] == [d["embedding"] for d in recorded["data"]]
        assert [d.index for d in out.result.data] == [d["index"] for d in recorded["data"]]
        assert out.result.usage.prompt_tokens == recorded["usage"]["prompt_tokens"]
        return
    want = expect.READ[folder](fx["response"]["body_text"], out.stream)
    got = normal_form(out)
    if not want["usage"]["reasoning"]:
        got["usage"]["reasoning"] = 0  # not reported by the provider: an estimate would be allowed
    assert got == want


@pytest.mark.parametrize(("folder", "case"), CASES)
def test_request_is_valid_openai_with_the_right_auth(folder: str, case: str) -> None:
    fx = fixture(folder, case)
    out = replay(folder, case)
    seen = out.request
    assert seen is not None, "no request reached the upstream"
    assert seen.method == "POST"
    schema, path = (
        ("CreateEmbeddingRequest", "/embeddings")
        if out.kind == "embedding"
        else ("CreateChatCompletionRequest", "/chat/completions")
    )
    assert seen.path.split("?")[0].endswith(path)
    assert [e.message for e in validator(schema).iter_errors(seen.body)] == []
    assert seen.headers["content-type"] == "application/json"
    if folder == "azure":
        assert seen.headers["api-key"] == KEY
        assert "authorization" not in seen.headers
        assert "api-version=" in seen.path
    else:
        assert seen.headers["authorization"] == f"Bearer {KEY}"
    if out.stream:
        assert seen.headers["accept"] == "text/event-stream"
        assert seen.body["stream"] is True
        assert seen.body["stream_options"] == {"include_usage": True}
    assert seen.body["model"] == out.model.partition("/")[2]
    assert not is_embedding(fx) or seen.body["input"] == ["hello world", "goodbye world"]


def _wire_messages(messages: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """What a message says, without the empty fields some SDKs add (annotations: [], refusal: null)."""
    out = []
    for m in messages:
        keep = {k: v for k, v in m.items() if k in ("role", "content", "name", "tool_call_id") and v is not None}
        if m.get("tool_calls"):
            keep["tool_calls"] = [(t["id"], t["function"]["name"], t["function"]["arguments"]) for t in m["tool_calls"]]
        out.append(keep)
    return out


def _wire_tools(tools: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Tools as they mean: an empty description says nothing."""
    out = []
    for t in tools:
        fn = {k: v for k, v in t.get("function", {}).items() if not (k == "description" and v == "")}
        out.append({**t, "function": fn} if "function" in t else t)
    return out


REQUEST_CASES = [
    pytest.param(*p.values, id=p.id)
    for p in CASES
    if p.values[1] != "error_500_server_error" and not p.values[1].startswith("embeddings")
]


@pytest.mark.parametrize(("folder", "case"), REQUEST_CASES)
def test_recorded_request_survives_the_trip(folder: str, case: str) -> None:
    """The recorded client's request, replayed through our SDK, reaches the wire saying the same."""
    recorded = fixture(folder, case)["request"]["body"]
    sent = replay(folder, case).request.body  # type: ignore[union-attr]
    assert _wire_messages(sent["messages"]) == _wire_messages(recorded["messages"])
    max_key = get_max_tokens_key(folder)
    for key, value in recorded.items():
        if key in ("model", "messages", "stream_options") or (key == "stream" and value is False):
            continue
        if key in ("max_tokens", "max_completion_tokens"):
            assert sent[max_key] == value
        elif key == "tools":
            assert _wire_tools(sent[key]) == _wire_tools(value)
        else:
            assert sent.get(key) == value, key


def get_max_tokens_key(folder: str) -> str:
    return "max_completion_tokens" if folder == "openai" else "max_tokens"


def _has_tool_calls(fx: dict[str, Any]) -> bool:
    if (fx["request"].get("body") or {}).get("stream") or is_embedding(fx):
        return False
    return bool(json.loads(fx["response"]["body_text"])["choices"][0]["message"].get("tool_calls"))


SDK_CASES = [pytest.param(*p.values, id=p.id) for p in CASES if not is_error_case(fixture(*p.values))]


@pytest.mark.parametrize(("folder", "case"), SDK_CASES)
def test_results_validate_with_the_openai_sdk(folder: str, case: str) -> None:
    from openai.types import CreateEmbeddingResponse
    from openai.types.chat import ChatCompletion, ChatCompletionChunk

    out = replay(folder, case)
    if out.kind == "embedding":
        CreateEmbeddingResponse.model_validate(out.result.model_dump())
    elif out.stream:
        assert out.result
        for chunk in out.result:
            assert (
                ChatCompletionChunk.model_validate(chunk.model_dump()).model_dump(exclude_unset=True)
                == chunk.model_dump()
            )
    else:
        dump = out.result.model_dump()
        if dump.get("service_tier") == "on_demand":
            del dump["service_tier"]  # Groq's own tier name, relayed as the provider said it
        assert ChatCompletion.model_validate(dump).model_dump(exclude_unset=True) == dump


def test_azure_retry_after_is_read_from_the_recorded_headers() -> None:
    # recorded: retry-after: 1 beside retry-after-ms: 0
    err = replay("azure", "error_429_rate_limit_retry_after").error
    assert isinstance(err, llmswitch.RateLimitError)
    assert err.retry_after == 1.0


def test_stream_meta_comes_from_the_recorded_chunks() -> None:
    out = replay("azure", "chat_stream_tool_call_usage")
    recorded = [
        json.loads(d)
        for d in expect._sse_data(fixture("azure", "chat_stream_tool_call_usage")["response"]["body_text"])
        if d != "[DONE]"
    ]
    first = next(c for c in recorded if c["id"])
    assert {(c.id, c.model, c.created) for c in out.result} == {(first["id"], first["model"], first["created"])}
