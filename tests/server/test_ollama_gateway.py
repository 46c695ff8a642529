"""An Ollama deployment (its own /api/chat at the server root) behind the gateway, the official SDKs as clients."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import anthropic
import openai
import pytest
from gateway_harness import MASTER_KEY, ServedGateway

from llmswitch.testing import FakeUpstream, Reply

TOOLS = [
    {
        "type": "function",
        "function": {
            "name": "get_weather",
            "parameters": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]},
        },
    }
]


@pytest.fixture(scope="module")
def ollama_gw(upstream: FakeUpstream, tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServedGateway]:
    db: Path = tmp_path_factory.mktemp("ollama") / "keys.db"
    config = f"""model_list:
  - model_name: local
    litellm_params:
      model: ollama/qwen3:14b
      api_base: "{upstream.url}"
general_settings:
  master_key: {MASTER_KEY}
  store_path: "{db}"
router_settings:
  num_retries: 0
"""
    with ServedGateway(config) as served:
        yield served


def test_openai_sdk_through_an_ollama_deployment(ollama_gw: ServedGateway, up: FakeUpstream) -> None:
    up.script(Reply(text="4", reasoning="2+2"), Reply(tool_calls=[("get_weather", {"city": "Paris"})]))
    with openai.OpenAI(base_url=f"{ollama_gw.url}/v1", api_key=MASTER_KEY, max_retries=0) as client:
        r = client.chat.completions.create(
            model="local", messages=[{"role": "user", "content": "2+2?"}], max_tokens=20, temperature=0
        )
        assert r.choices[0].message.content == "4"
        assert r.usage is not None and r.usage.completion_tokens > 0
        stream = client.chat.completions.create(
            model="local",
            messages=[{"role": "user", "content": "weather?"}],
            tools=TOOLS,
            stream=True,  # type: ignore[arg-type]
        )
        chunks = list(stream)
    calls = [t for c in chunks for ch in c.choices for t in ch.delta.tool_calls or []]
    assert [(t.function.name, json.loads(t.function.arguments or "")) for t in calls] == [  # type: ignore[union-attr]
        ("get_weather", {"city": "Paris"})
    ]
    assert [ch.finish_reason for c in chunks for ch in c.choices if ch.finish_reason] == ["tool_calls"]
    first, second = up.requests
    assert (first.path, first.json["stream"], first.json["options"]) == (
        "/api/chat",
        False,
        {"temperature": 0.0, "num_predict": 20},
    )
    assert (second.path, second.json["stream"]) == ("/api/chat", True)


def test_anthropic_sdk_through_an_ollama_deployment(ollama_gw: ServedGateway, up: FakeUpstream) -> None:
    with anthropic.Anthropic(base_url=ollama_gw.url, api_key=MASTER_KEY, max_retries=0) as client:
        r = client.messages.create(
            model="local", max_tokens=30, system="Be brief.", messages=[{"role": "user", "content": "Hi"}]
        )
        n = client.messages.count_tokens(model="local", messages=[{"role": "user", "content": "Hi"}])
    assert [b.text for b in r.content if b.type == "text"] == ["Hi"]
    (rec,) = up.requests  # the count is a local estimate: Ollama has no counting API
    assert rec.json["messages"][0] == {"role": "system", "content": "Be brief."}
    assert n.input_tokens > 0
