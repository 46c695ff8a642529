"""Every official SDK against every provider dialect through the gateway: 3 clients x 3 providers x
{whole, stream} x {text, tool call}.

Each case scripts the fake upstream's answer, reads it back through the SDK's own types, and checks what
the upstream received: the provider's own path and auth header, with the deployment's key, never the
client's.
"""

from __future__ import annotations

import base64
import json
import struct
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import anthropic
import openai
import pytest
from gateway_harness import GROUPS, MASTER_KEY, UPSTREAM_KEYS, UPSTREAM_MODELS, ServedGateway
from google import genai
from google.genai import types as gtypes

from llmswitch.testing import FakeUpstream, Reply, embedding_vector

PROMPT = "What is the weather in Paris, in three days?"
# several chunks, multi-byte characters split across them
TEXT = "Sunny in Paris — 24 °C, light wind; ünïcödé survives ✓"
TOOL = "get_weather"
ARGS = {"city": "Paris", "days": 3, "units": ["celsius"], "detail": {"hourly": False}}
PARAMS = {
    "type": "object",
    "properties": {
        "city": {"type": "string"},
        "days": {"type": "integer"},
        "units": {"type": "array", "items": {"type": "string"}},
        "detail": {"type": "object", "properties": {"hourly": {"type": "boolean"}}},
    },
    "required": ["city"],
}
USAGE = (23, 9)

# what each client's SDK calls "finished normally" and "stopped to call a tool"
FINISH = {
    "openai": {"text": "stop", "tool": "tool_calls"},
    "anthropic": {"text": "end_turn", "tool": "tool_use"},
    "gemini": {"text": "STOP", "tool": "STOP"},
}


@dataclass
class Answer:
    """What a client's SDK handed back, in one shape for every SDK."""

    text: str = ""
    tool_calls: list[tuple[str, dict[str, Any]]] = field(default_factory=list)
    finish: str | None = None
    usage: tuple[int, int, int] | None = None  # input, output, total


def ask_openai(gw: ServedGateway, key: str, group: str, *, stream: bool, tool: bool) -> Answer:
    client = openai.OpenAI(base_url=f"{gw.url}/v1", api_key=key, max_retries=0)
    kwargs: dict[str, Any] = {"model": group, "messages": [{"role": "user", "content": PROMPT}]}
    if tool:
        kwargs["tools"] = [{"type": "function", "function": {"name": TOOL, "parameters": PARAMS}}]
    out = Answer()
    with client:
        if not stream:
            r = client.chat.completions.create(**kwargs)
            (choice,) = r.choices
            out.text = choice.message.content or ""
            out.tool_calls = [
                (c.function.name, json.loads(c.function.arguments)) for c in choice.message.tool_calls or []
            ]
            out.finish = choice.finish_reason
            assert r.usage is not None
            out.usage = (r.usage.prompt_tokens, r.usage.completion_tokens, r.usage.total_tokens)
            return out
        calls: dict[int, list[str]] = {}
        for chunk in client.chat.completions.create(**kwargs, stream=True, stream_options={"include_usage": True}):
            if chunk.usage is not None:
                out.usage = (chunk.usage.prompt_tokens, chunk.usage.completion_tokens, chunk.usage.total_tokens)
            for choice in chunk.choices:
                out.text += choice.delta.content or ""
                for d in choice.delta.tool_calls or []:
                    name_args = calls.setdefault(d.index, ["", ""])
                    if d.function is not None:
                        name_args[0] += d.function.name or ""
                        name_args[1] += d.function.arguments or ""
                if choice.finish_reason is not None:
                    out.finish = choice.finish_reason
        out.tool_calls = [(name, json.loads(args)) for _, (name, args) in sorted(calls.items())]
    return out


def ask_anthropic(gw: ServedGateway, key: str, group: str, *, stream: bool, tool: bool) -> Answer:
    client = anthropic.Anthropic(base_url=gw.url, api_key=key, max_retries=0)
    kwargs: dict[str, Any] = {
        "model": group,
        "max_tokens": 512,
        "messages": [{"role": "user", "content": PROMPT}],
    }
    if tool:
        kwargs["tools"] = [{"name": TOOL, "input_schema": PARAMS}]
    with client:
        if stream:
            streamed = ""
            with client.messages.stream(**kwargs) as s:
                for piece in s.text_stream:
                    streamed += piece
                message = s.get_final_message()
        else:
            message = client.messages.create(**kwargs)
            streamed = None
    out = Answer(finish=message.stop_reason)
    for block in message.content:
        if block.type == "text":
            out.text += block.text
        elif block.type == "tool_use":
            assert isinstance(block.input, dict)
            out.tool_calls.append((block.name, block.input))
    if streamed is not None:
        assert streamed == out.text  # the deltas add up to the final message
    u = message.usage
    out.usage = (u.input_tokens, u.output_tokens, u.input_tokens + u.output_tokens)
    return out


def ask_gemini(gw: ServedGateway, key: str, group: str, *, stream: bool, tool: bool) -> Answer:
    client = genai.Client(api_key=key, http_options=gtypes.HttpOptions(base_url=gw.url, api_version="v1beta"))
    config = gtypes.GenerateContentConfig(
        tools=[
            gtypes.Tool(function_declarations=[gtypes.FunctionDeclaration(name=TOOL, parameters_json_schema=PARAMS)])
        ]
        if tool
        else None,
        automatic_function_calling=gtypes.AutomaticFunctionCallingConfig(disable=True),
    )
    with client:
        if stream:
            chunks = list(client.models.generate_content_stream(model=group, contents=PROMPT, config=config))
        else:
            chunks = [client.models.generate_content(model=group, contents=PROMPT, config=config)]
    out = Answer()
    for chunk in chunks:
        for cand in chunk.candidates or []:
            for part in (cand.content.parts if cand.content else None) or []:
                if part.text:
                    out.text += part.text
                if part.function_call is not None:
                    out.tool_calls.append((part.function_call.name or "", dict(part.function_call.args or {})))
            if cand.finish_reason is not None:
                out.finish = cand.finish_reason.value
        um = chunk.usage_metadata
        if um is not None and um.total_token_count:
            out.usage = (um.prompt_token_count or 0, um.candidates_token_count or 0, um.total_token_count)
    return out


ASK = {"openai": ask_openai, "anthropic": ask_anthropic, "gemini": ask_gemini}


def matrix() -> Iterator[Any]:
    for client in ("openai", "anthropic", "gemini"):
        for provider in ("openai", "anthropic", "gemini"):
            for stream in (False, True):
                for kind in ("text", "tool"):
                    ident = f"{client}-sdk-to-{provider}-{'stream' if stream else 'whole'}-{kind}"
                    yield pytest.param(client, provider, stream, kind, id=ident)


@pytest.fixture(scope="module")
def matrix_key(gw: ServedGateway) -> str:
    return gw.new_key(models=list(GROUPS.values()), key_alias="sdk-matrix")


@pytest.mark.parametrize(("client", "provider", "stream", "kind"), list(matrix()))
def test_sdk_through_gateway(
    gw: ServedGateway, up: FakeUpstream, matrix_key: str, client: str, provider: str, stream: bool, kind: str
) -> None:
    tool = kind == "tool"
    if tool:
        up.script(Reply(tool_calls=[(TOOL, ARGS)], usage=USAGE, chunk_size=5))
    else:
        up.script(Reply(text=TEXT, usage=USAGE, chunk_size=5))

    got = ASK[client](gw, matrix_key, GROUPS[provider], stream=stream, tool=tool)

    assert got.text == ("" if tool else TEXT)
    assert got.tool_calls == ([(TOOL, ARGS)] if tool else [])
    assert got.finish == FINISH[client][kind]
    assert got.usage == (USAGE[0], USAGE[1], USAGE[0] + USAGE[1])
    assert up.pending == 0

    # the upstream got one request, in its own dialect, with the deployment's key
    (rec,) = up.requests
    assert rec.face == provider
    assert rec.model == UPSTREAM_MODELS[provider]
    assert rec.text == PROMPT
    assert rec.chat is not None
    assert [t.name for t in rec.chat.tools or []] == ([TOOL] if tool else [])
    if tool:
        assert rec.chat.tools is not None and rec.chat.tools[0].parameters is not None
        assert set(rec.chat.tools[0].parameters["properties"]) == set(PARAMS["properties"])
    if provider == "openai":
        assert rec.path == "/v1/chat/completions"
        assert rec.headers["authorization"] == f"Bearer {UPSTREAM_KEYS['openai']}"
        assert rec.json.get("stream", False) is stream
    elif provider == "anthropic":
        assert rec.path == "/v1/messages"
        assert rec.headers["x-api-key"] == UPSTREAM_KEYS["anthropic"]
        assert "authorization" not in rec.headers
        assert rec.json.get("stream", False) is stream
    else:
        method = "streamGenerateContent" if stream else "generateContent"
        assert rec.path == f"/v1beta/models/{UPSTREAM_MODELS['gemini']}:{method}"
        assert rec.query == ({"alt": "sse"} if stream else {})
        assert rec.headers["x-goog-api-key"] == UPSTREAM_KEYS["gemini"]
        assert "authorization" not in rec.headers
    everything_sent = json.dumps(rec.headers) + json.dumps(rec.query) + rec.body.decode()
    assert matrix_key not in everything_sent


@pytest.mark.parametrize("include_usage", [False, True], ids=["without-usage", "with-usage"])
@pytest.mark.parametrize("provider", ["openai", "anthropic", "gemini"])
def test_openai_stream_carries_usage_only_when_asked(
    gw: ServedGateway, up: FakeUpstream, matrix_key: str, provider: str, include_usage: bool
) -> None:
    """The usage chunk (empty choices) comes last and only with stream_options.include_usage, whichever path
    (the same-dialect relay or the re-encoding one) serves the provider."""
    up.script(Reply(text=TEXT, usage=USAGE, chunk_size=5))
    extra: dict[str, Any] = {"stream_options": {"include_usage": True}} if include_usage else {}
    with openai.OpenAI(base_url=f"{gw.url}/v1", api_key=matrix_key, max_retries=0) as client:
        chunks = list(
            client.chat.completions.create(
                model=GROUPS[provider], messages=[{"role": "user", "content": PROMPT}], stream=True, **extra
            )
        )
    usage_chunks = [c for c in chunks if not c.choices]
    assert "".join(c.choices[0].delta.content or "" for c in chunks if c.choices) == TEXT
    assert all(c.usage is None for c in chunks if c.choices)
    if include_usage:
        assert usage_chunks == [chunks[-1]]
        assert chunks[-1].usage is not None
        assert (chunks[-1].usage.prompt_tokens, chunks[-1].usage.completion_tokens) == USAGE
    else:
        assert usage_chunks == []
    assert len({c.id for c in chunks}) == 1


@pytest.mark.parametrize("provider", ["openai", "gemini"])
def test_openai_sdk_embeddings(gw: ServedGateway, up: FakeUpstream, matrix_key: str, provider: str) -> None:
    with openai.OpenAI(base_url=f"{gw.url}/v1", api_key=matrix_key, max_retries=0) as client:
        # the SDK asks for base64 by default and decodes it
        plain = client.embeddings.create(model=GROUPS[provider], input=["alpha", "beta"])
        assert [d.embedding for d in plain.data] == [embedding_vector("alpha", 8), embedding_vector("beta", 8)]
        assert [d.index for d in plain.data] == [0, 1]
        shorter = client.embeddings.create(model=GROUPS[provider], input="alpha", dimensions=4, encoding_format="float")
        assert shorter.data[0].embedding == embedding_vector("alpha", 4)
        packed = client.embeddings.create(model=GROUPS[provider], input=["alpha"], encoding_format="base64")
    raw = base64.b64decode(str(packed.data[0].embedding))
    assert list(struct.unpack(f"<{len(raw) // 4}f", raw)) == embedding_vector("alpha", 8)
    paths = {r.path for r in up.requests}
    assert paths == (
        {"/v1/embeddings"}
        if provider == "openai"
        else {f"/v1beta/models/{UPSTREAM_MODELS['gemini']}:batchEmbedContents"}
    )
    assert matrix_key not in "".join(json.dumps(r.headers) for r in up.requests)


def test_openai_sdk_embeddings_from_a_chat_only_provider_is_a_400(gw: ServedGateway, up: FakeUpstream) -> None:
    with (
        openai.OpenAI(base_url=f"{gw.url}/v1", api_key=MASTER_KEY, max_retries=0) as client,
        pytest.raises(openai.BadRequestError, match="embeddings"),
    ):
        client.embeddings.create(model=GROUPS["anthropic"], input="alpha")
    assert up.requests == []
