"""Token counting through the gateway, with the official SDKs as clients: Anthropic's
``/v1/messages/count_tokens``, Gemini's ``:countTokens`` and LiteLLM's ``/utils/token_counter``.

The fake upstream counts with its own tokenizer (``fake_token_count``), which differs from llmswitch's
local estimate for the texts used here, so each test tells whether the provider's API was asked.
"""

from __future__ import annotations

import json
from pathlib import Path

import anthropic
import pytest
from gateway_harness import GROUPS, MASTER_KEY, UPSTREAM_KEYS, UPSTREAM_MODELS, ServedGateway, dialect_error
from google import genai
from google.genai import types as gtypes
from jsonschema import Draft202012Validator

from llmswitch import ir
from llmswitch.count_tokens import estimate_tokens
from llmswitch.testing import FakeUpstream, Reply, fake_token_count

SPECS = Path(__file__).resolve().parents[2].parent / "shared" / "specs"
# long words: the fake's one-token-a-word count is well below four-characters-a-token
TEXT = "Extraordinarily sophisticated internationalization considerations."
SYSTEM = "Answer thoughtfully."
WEATHER = {
    "name": "get_weather",
    "description": "Weather in a city",
    "input_schema": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]},
}


def _ir(text: str = TEXT, system: str | None = SYSTEM, tools: list[ir.Tool] | None = None) -> ir.Request:
    msgs = [ir.Message(role="system", content=[ir.TextPart(system)])] if system else []
    msgs.append(ir.Message(role="user", content=[ir.TextPart(text)]))
    return ir.Request(model="m", messages=msgs, tools=tools)


def _spec_errors(body: object) -> list[str]:
    spec = json.loads((SPECS / "anthropic-openapi.json").read_text())
    schema = {**spec["components"]["schemas"]["CountMessageTokensParams"], "components": spec["components"]}
    return [e.message for e in Draft202012Validator(schema).iter_errors(body)]


def test_texts_tell_the_providers_count_from_the_estimate() -> None:
    assert fake_token_count(_ir()) != estimate_tokens(_ir())


def test_anthropic_sdk_counts_with_anthropics_api(gw: ServedGateway, up: FakeUpstream) -> None:
    tool = ir.Tool(name=WEATHER["name"], description=WEATHER["description"], parameters=WEATHER["input_schema"])
    with anthropic.Anthropic(base_url=gw.url, api_key=MASTER_KEY) as client:
        r = client.messages.count_tokens(
            model=GROUPS["anthropic"], system=SYSTEM, messages=[{"role": "user", "content": TEXT}], tools=[WEATHER]
        )
    assert r.input_tokens == fake_token_count(_ir(tools=[tool]))
    (rec,) = up.requests
    assert rec.path == "/v1/messages/count_tokens"
    assert rec.headers["x-api-key"] == UPSTREAM_KEYS["anthropic"]
    assert rec.json["model"] == UPSTREAM_MODELS["anthropic"]
    assert _spec_errors(rec.json) == []
    assert "max_tokens" not in rec.json


def test_anthropic_sdk_gets_an_estimate_for_an_openai_deployment(gw: ServedGateway, up: FakeUpstream) -> None:
    with anthropic.Anthropic(base_url=gw.url, api_key=MASTER_KEY) as client:
        r = client.messages.count_tokens(
            model=GROUPS["openai"], system=SYSTEM, messages=[{"role": "user", "content": TEXT}]
        )
    assert r.input_tokens == estimate_tokens(_ir())
    assert up.requests == []  # OpenAI has no counting API: nothing was sent


def test_genai_sdk_counts_with_gemini_and_with_anthropic(gw: ServedGateway, up: FakeUpstream) -> None:
    options = gtypes.HttpOptions(base_url=gw.url, api_version="v1beta")
    with genai.Client(api_key=MASTER_KEY, http_options=options) as client:
        g = client.models.count_tokens(model=GROUPS["gemini"], contents=TEXT)
        a = client.models.count_tokens(model=GROUPS["anthropic"], contents=TEXT)
    want = fake_token_count(_ir(system=None))
    assert (g.total_tokens, a.total_tokens) == (want, want)
    first, second = up.requests
    assert first.path == f"/v1beta/models/{UPSTREAM_MODELS['gemini']}:countTokens"
    assert first.headers["x-goog-api-key"] == UPSTREAM_KEYS["gemini"]
    inner = first.json["generateContentRequest"]
    assert inner["model"] == f"models/{UPSTREAM_MODELS['gemini']}"
    assert inner["contents"] == [{"role": "user", "parts": [{"text": TEXT}]}]
    assert second.path == "/v1/messages/count_tokens"


def test_litellm_token_counter_route(gw: ServedGateway, up: FakeUpstream) -> None:
    msgs = [{"role": "system", "content": SYSTEM}, {"role": "user", "content": TEXT}]
    r = gw.call("POST", "/utils/token_counter", {"model": GROUPS["anthropic"], "messages": msgs})
    assert r.status == 200, r.body
    assert r.json() == {
        "total_tokens": fake_token_count(_ir()),
        "request_model": GROUPS["anthropic"],
        "model_used": UPSTREAM_MODELS["anthropic"],
        "tokenizer_type": "anthropic_api",
    }
    r = gw.call("POST", "/utils/token_counter", {"model": GROUPS["openai"], "prompt": TEXT})
    assert r.status == 200, r.body
    assert (r.json()["total_tokens"], r.json()["tokenizer_type"]) == (estimate_tokens(_ir(system=None)), "estimate")
    assert len(up.requests) == 1


def test_counting_is_authenticated_and_limited_to_the_keys_models(gw: ServedGateway, up: FakeUpstream) -> None:
    body = {"model": GROUPS["anthropic"], "messages": [{"role": "user", "content": TEXT}]}
    r = gw.call("POST", "/v1/messages/count_tokens", body, key=None)
    assert r.status == 401 and dialect_error("anthropic", r)[0] == "authentication_error"
    key = gw.new_key(models=[GROUPS["openai"]])
    r = gw.call("POST", "/v1/messages/count_tokens", body, key=key)
    assert r.status in (401, 403), r.body
    r = gw.call(
        "POST",
        f"/v1beta/models/{GROUPS['anthropic']}:countTokens",
        {"contents": [{"role": "user", "parts": [{"text": TEXT}]}]},
        key=key,
    )
    assert r.status in (401, 403), r.body
    assert up.requests == []


def test_a_count_takes_a_request_of_the_keys_rpm(gw: ServedGateway, up: FakeUpstream) -> None:
    key = gw.new_key(rpm_limit=2, key_alias="count-rpm")
    body = {"model": GROUPS["openai"], "prompt": "hi"}
    assert [gw.call("POST", "/utils/token_counter", body, key=key).status for _ in range(3)] == [200, 200, 429]


def test_a_count_is_journaled_with_no_tokens_and_no_cost(gw: ServedGateway, up: FakeUpstream) -> None:
    from multi_harness import wait_logged

    key = gw.new_key(key_alias="count-journal")
    r = gw.call(
        "POST",
        "/v1/messages/count_tokens",
        {"model": GROUPS["anthropic"], "messages": [{"role": "user", "content": TEXT}]},
        key=key,
    )
    assert r.status == 200, r.body
    (row,) = wait_logged(gw.port, key, 1, timeout=10)
    assert (row["model_group"], row["spend"], row["total_tokens"]) == (GROUPS["anthropic"], 0, 0)


def test_a_providers_error_reaches_the_caller_in_its_dialect(gw: ServedGateway, up: FakeUpstream) -> None:
    up.script(Reply(status=400, message="messages: at least one message is required"))
    client = anthropic.Anthropic(base_url=gw.url, api_key=MASTER_KEY, max_retries=0)
    with client, pytest.raises(anthropic.BadRequestError, match="at least one message is required"):
        client.messages.count_tokens(model=GROUPS["anthropic"], messages=[{"role": "user", "content": "x"}])


def test_unknown_fields_are_refused_as_anthropic_does(gw: ServedGateway, up: FakeUpstream) -> None:
    body = {"model": GROUPS["anthropic"], "messages": [{"role": "user", "content": "x"}], "max_tokens": 5}
    r = gw.call("POST", "/v1/messages/count_tokens", body)
    assert r.status == 400
    assert dialect_error("anthropic", r) == (
        "invalid_request_error",
        "Invalid value for 'max_tokens': Extra inputs are not permitted",
    )
    assert up.requests == []
