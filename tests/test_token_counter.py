"""``llmswitch.token_counter`` (LiteLLM's name and signature): the provider's own count for Anthropic and
Gemini over real HTTP (``FakeUpstream``, which counts with its own tokenizer), a local estimate otherwise."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

import llmswitch
from llmswitch import ir
from llmswitch.count_tokens import estimate_tokens
from llmswitch.dialects import anthropic_count_tokens, gemini_count_tokens
from llmswitch.testing import FakeUpstream, Reply, fake_token_count

SPECS = Path(__file__).resolve().parents[1].parent / "shared" / "specs"
TEXT = "Extraordinarily sophisticated internationalization considerations."
MSGS = [{"role": "system", "content": "Answer thoughtfully."}, {"role": "user", "content": TEXT}]
REQ = ir.Request(
    model="m",
    messages=[
        ir.Message(role="system", content=[ir.TextPart("Answer thoughtfully.")]),
        ir.Message(role="user", content=[ir.TextPart(TEXT)]),
    ],
)


@pytest.fixture(autouse=True)
def no_keys(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("ANTHROPIC_API_KEY", "GEMINI_API_KEY", "GOOGLE_API_KEY", "OPENAI_API_KEY"):
        monkeypatch.delenv(name, raising=False)


def test_anthropic_and_gemini_are_counted_by_their_apis() -> None:
    assert fake_token_count(REQ) != estimate_tokens(REQ)
    with FakeUpstream() as up:
        a = llmswitch.token_counter(model="anthropic/claude-sonnet-4-5", messages=MSGS, api_base=up.url, api_key="k")
        g = llmswitch.token_counter(model="gemini/gemini-2.5-flash", messages=MSGS, api_base=up.url, api_key="k")
        assert (a, g) == (fake_token_count(REQ), fake_token_count(REQ))
        first, second = up.requests
    assert (first.path, first.headers["x-api-key"]) == ("/v1/messages/count_tokens", "k")
    assert first.json == {
        "model": "claude-sonnet-4-5",
        "system": "Answer thoughtfully.",
        "messages": [{"role": "user", "content": TEXT}],
    }
    assert (second.path, second.headers["x-goog-api-key"]) == ("/v1beta/models/gemini-2.5-flash:countTokens", "k")


def test_the_key_may_come_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ANTHROPIC_API_KEY", "from-env")
    with FakeUpstream() as up:
        assert llmswitch.token_counter(model="claude-sonnet-4-5", text=TEXT, api_base=up.url) == fake_token_count(
            ir.Request(model="m", messages=[ir.Message(role="user", content=[ir.TextPart(TEXT)])])
        )
        assert up.requests[0].headers["x-api-key"] == "from-env"


def test_other_providers_and_keyless_calls_are_estimated_locally() -> None:
    with FakeUpstream() as up:
        assert llmswitch.token_counter(model="openai/gpt-4o", messages=MSGS, api_base=up.url) == estimate_tokens(REQ)
        assert llmswitch.token_counter(model="anthropic/claude-sonnet-4-5", messages=MSGS) == estimate_tokens(REQ)
        assert llmswitch.token_counter(model="some-local-model", messages=MSGS) == estimate_tokens(REQ)
        assert up.requests == []


def test_the_estimate_counts_tools_and_images() -> None:
    tools = [{"type": "function", "function": {"name": "f", "parameters": {"type": "object", "properties": {}}}}]
    plain = llmswitch.token_counter(model="gpt-4o", messages=MSGS)
    assert llmswitch.token_counter(model="gpt-4o", messages=MSGS, tools=tools) > plain
    image = {"type": "image_url", "image_url": {"url": "https://example.com/cat.png"}}
    with_image = [MSGS[0], {"role": "user", "content": [{"type": "text", "text": TEXT}, image]}]
    assert llmswitch.token_counter(model="gpt-4o", messages=with_image) == plain + 85


def test_a_providers_error_is_raised_not_estimated() -> None:
    with FakeUpstream() as up:
        up.script(Reply(status=401, message="invalid x-api-key"))
        with pytest.raises(llmswitch.AuthenticationError, match="invalid x-api-key"):
            llmswitch.token_counter(model="anthropic/claude-sonnet-4-5", messages=MSGS, api_base=up.url, api_key="bad")


def test_custom_tokenizer_is_refused_not_ignored() -> None:
    with pytest.raises(llmswitch.ConfigError, match="custom_tokenizer"):
        llmswitch.token_counter(model="gpt-4o", messages=MSGS, custom_tokenizer={"type": "huggingface_tokenizer"})


def test_anthropic_count_body_keeps_only_what_the_endpoint_takes() -> None:
    from jsonschema import Draft202012Validator

    req = ir.Request(
        model="m",
        messages=REQ.messages,
        max_tokens=100,
        temperature=0.5,
        stream=True,
        tools=[ir.Tool(name="f", parameters={"type": "object", "properties": {}})],
        thinking_budget=2048,
    )
    body = anthropic_count_tokens.encode_request(req, model="claude-sonnet-4-5")
    spec = json.loads((SPECS / "anthropic-openapi.json").read_text())
    schema = {**spec["components"]["schemas"]["CountMessageTokensParams"], "components": spec["components"]}
    assert [e.message for e in Draft202012Validator(schema).iter_errors(body)] == []
    assert set(body) == {"model", "system", "messages", "tools", "thinking"}


def test_gemini_count_answers() -> None:
    assert gemini_count_tokens.decode_response({"totalTokens": 12, "cachedContentTokenCount": 4}) == 12
    assert gemini_count_tokens.decode_response({}) == 0  # proto3 JSON leaves a zero out
    with pytest.raises(ValueError):
        gemini_count_tokens.decode_response({"totalTokens": "many"})
