"""Endpoints users call next (issue 14, section 5), from every client to every family.

- Token counting: Anthropic's ``count_tokens``, Gemini's ``countTokens``, LiteLLM's
  ``/utils/token_counter`` and ``llmswitch.token_counter``: the provider's own API where it has one
  (Anthropic, Gemini), a local estimate otherwise (OpenAI, Ollama) — never a chat call.
- Gemini's ``embedContent`` / ``batchEmbedContents`` from the google-genai SDK to any embedding deployment.
- Ollama as LiteLLM and Ollama's docs write it: ``ollama/<model>`` with the server root as ``api_base``
  speaks the native ``/api/chat``, with tools, images, thinking, a JSON-schema ``format``, ``keep_alive``
  and model options, from every client.
"""

from __future__ import annotations

import base64
import json
from typing import Any

import anthropic
import pytest
from google import genai
from google.genai import errors as genai_errors
from google.genai import types as gtypes
from harness import FAMILIES, KEYS, MASTER_KEY, MODELS, Ask, ServedGateway, ask, base_of, spec, the_request

import llmswitch
from llmswitch import ir
from llmswitch.count_tokens import estimate_tokens
from llmswitch.testing import FakeUpstream, Reply, embedding_vector, fake_token_count

# long words: the fake's one-token-a-word count is well below four-characters-a-token
TEXT = "Extraordinarily sophisticated internationalization considerations."
COUNTED_BY_API = {"anthropic": "/v1/messages/count_tokens", "gemini": ":countTokens"}


def count(client: str, family: str, gw: ServedGateway, up: FakeUpstream) -> int:
    group = f"m-{family}"
    if client == "anthropic":
        with anthropic.Anthropic(base_url=gw.url, api_key=MASTER_KEY, max_retries=0) as a:
            return a.messages.count_tokens(model=group, messages=[{"role": "user", "content": TEXT}]).input_tokens
    if client == "gemini":
        options = gtypes.HttpOptions(base_url=gw.url, api_version="v1beta")
        with genai.Client(api_key=MASTER_KEY, http_options=options) as g:
            total = g.models.count_tokens(model=group, contents=TEXT).total_tokens
            assert total is not None
            return total
    if client == "route":
        r = gw.call("POST", "/utils/token_counter", {"model": group, "messages": [{"role": "user", "content": TEXT}]})
        assert r.status == 200, r.body
        n: int = r.json()["total_tokens"]
        return n
    return llmswitch.token_counter(
        model=MODELS[family],
        messages=[{"role": "user", "content": TEXT}],
        api_key=KEYS[family],
        api_base=base_of(up, family),
    )


@pytest.mark.parametrize("family", FAMILIES)
@pytest.mark.parametrize("client", ["anthropic", "gemini", "route", "sdk"])
def test_token_counting(gw: ServedGateway, up: FakeUpstream, client: str, family: str) -> None:
    asked = ir.Request(model="m", messages=[ir.Message(role="user", content=[ir.TextPart(TEXT)])])
    got = count(client, family, gw, up)
    if family in COUNTED_BY_API:
        assert got == fake_token_count(asked)
        (rec,) = up.requests
        assert COUNTED_BY_API[family] in rec.path
        if family == "anthropic":
            problems = list(spec("anthropic", "CountMessageTokensParams").iter_errors(rec.json))
            assert not problems, problems
        else:
            inner = rec.json["generateContentRequest"]
            assert inner["contents"] == [{"role": "user", "parts": [{"text": TEXT}]}]
    else:
        assert got == estimate_tokens(asked)
        assert up.requests == []  # no counting API: nothing was sent, least of all a chat


EMBED_PATHS = {"openai": "/v1/embeddings", "gemini": ":batchEmbedContents", "ollama": "/api/embed"}


@pytest.mark.parametrize("family", FAMILIES)
def test_gemini_embed_content_through_any_embedding_deployment(
    gw: ServedGateway, up: FakeUpstream, family: str
) -> None:
    options = gtypes.HttpOptions(base_url=gw.url, api_version="v1beta")
    with genai.Client(api_key=MASTER_KEY, http_options=options) as g:
        if family == "anthropic":
            with pytest.raises(genai_errors.ClientError) as info:
                g.models.embed_content(model="m-anthropic", contents=["alpha"])
            assert info.value.code == 400
            assert up.requests == []
            return
        r = g.models.embed_content(model=f"m-{family}", contents=["alpha", "beta"])
    # google-genai sends a list of strings to a model named like "*gemini*" as one content of several parts
    texts = ["alphabeta"] if family == "gemini" else ["alpha", "beta"]
    assert [e.values for e in r.embeddings or []] == [embedding_vector(t, 8) for t in texts]
    (rec,) = up.requests
    assert EMBED_PATHS[family] in rec.path


# ---------------------------------------------------------------- Ollama's own API at the server root

PNG = base64.b64encode(b"\x89PNG\r\n\x1a\n tiny").decode()
SCHEMA = {"type": "object", "properties": {"colour": {"type": "string"}}, "required": ["colour"]}
WEATHER = {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]}
IMAGE_URL = {"type": "image_url", "image_url": {"url": f"data:image/png;base64,{PNG}"}}
OLLAMA_ASK = Ask(
    openai={
        "messages": [{"role": "user", "content": [{"type": "text", "text": "What colour?"}, IMAGE_URL]}],
        "tools": [{"type": "function", "function": {"name": "get_weather", "parameters": WEATHER}}],
        "reasoning_effort": "low",
        "response_format": {"type": "json_schema", "json_schema": {"name": "c", "schema": SCHEMA}},
        "extra_body": {"keep_alive": "5m", "num_ctx": 8192},
    },
    anthropic={
        "max_tokens": 2048,
        "messages": [
            {
                "role": "user",
                "content": [
                    {"type": "text", "text": "What colour?"},
                    {"type": "image", "source": {"type": "base64", "media_type": "image/png", "data": PNG}},
                ],
            }
        ],
        "tools": [{"name": "get_weather", "input_schema": WEATHER}],
        "thinking": {"type": "enabled", "budget_tokens": 1024},
    },
    gemini={
        "contents": [
            {
                "role": "user",
                "parts": [{"text": "What colour?"}, {"inline_data": {"mime_type": "image/png", "data": PNG}}],
            }
        ],
        "config": {
            "tools": [{"function_declarations": [{"name": "get_weather", "parameters_json_schema": WEATHER}]}],
            "thinking_config": {"thinking_budget": 1024},
            "response_mime_type": "application/json",
            "response_json_schema": SCHEMA,
        },
    },
)


@pytest.mark.parametrize("stream", [False, True], ids=["whole", "stream"])
@pytest.mark.parametrize("client", ["openai", "anthropic", "gemini", "sdk"])
def test_ollama_native_features(gw: ServedGateway, up: FakeUpstream, client: str, stream: bool) -> None:
    answer = json.dumps({"colour": "red"})
    up.script(Reply(text=answer, reasoning="Looking at it…"))
    seen = ask(client, "m-ollama", OLLAMA_ASK, stream=stream, gw=gw, up=up)
    assert seen.status == 200, seen.error
    assert seen.text == answer
    rec = the_request(up, "ollama")
    assert rec.path == "/api/chat"
    body: dict[str, Any] = rec.json
    assert body["model"] == "qwen3:14b"
    assert body["stream"] is stream  # Ollama streams unless told not to
    assert body["messages"][-1]["images"] == [PNG]
    assert [t["function"]["name"] for t in body["tools"]] == ["get_weather"]
    assert body["think"] in (True, "low")
    if client != "anthropic":
        assert body["format"] == SCHEMA
    if client in ("openai", "sdk"):
        assert (body["keep_alive"], body["options"]["num_ctx"]) == ("5m", 8192)


def test_ollama_under_v1_is_its_openai_compatible_api(up: FakeUpstream) -> None:
    up.script(Reply(text="Hi"))
    r = llmswitch.completion(
        "ollama/qwen3:14b", [{"role": "user", "content": "Hello"}], api_base=f"{up.url}/v1", num_retries=0
    )
    assert r.choices[0].message.content == "Hi"
    (rec,) = up.requests
    assert (rec.face, rec.path) == ("openai", "/v1/chat/completions")
    problems = list(spec("openai", "CreateChatCompletionRequest").iter_errors(rec.json))
    assert not problems, problems
