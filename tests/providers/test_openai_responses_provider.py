"""Chat requests sent through OpenAI's Responses API: ``openai/responses/<model>`` in the SDK, and an
``openai/`` deployment with ``use_responses_api: true`` behind the gateway. The caller speaks Chat
Completions and gets chat answers; the upstream sees Responses requests (checked against OpenAI's
published schema)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import openai
import pytest

import llmswitch
from llmswitch.testing import FakeUpstream, Reply

SPEC = Path(__file__).resolve().parents[3] / "shared" / "specs"
TOOLS = [
    {
        "type": "function",
        "function": {"name": "lookup", "parameters": {"type": "object", "properties": {"q": {"type": "string"}}}},
    }
]


@pytest.fixture
def up() -> Iterator[FakeUpstream]:
    with FakeUpstream() as fake:
        yield fake


def create_response_schema() -> dict[str, Any] | None:
    """OpenAI's CreateResponse schema from the published spec, when the spec is beside the checkout."""
    for path in sorted(SPEC.glob("openai*")):
        if path.suffix in (".json",):
            spec = json.loads(path.read_text())
            schemas = spec.get("components", {}).get("schemas", {})
            if "CreateResponse" in schemas:
                return {"$ref": "#/components/schemas/CreateResponse", "components": spec["components"]}
    return None


def valid_per_spec(body: dict[str, Any]) -> None:
    schema = create_response_schema()
    if schema is None:
        return  # the published spec is not beside this checkout; the shape is checked below all the same
    import jsonschema

    jsonschema.validate(body, schema)


def test_the_sdk_sends_a_chat_request_as_a_responses_request(up: FakeUpstream) -> None:
    up.script(Reply(tool_calls=[("lookup", {"q": "tides"})], usage=(20, 5)), Reply(text="High tide at noon."))
    messages: list[Any] = [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "Tides?"}]
    kw: dict[str, Any] = {"api_base": up.openai_base, "api_key": "k", "num_retries": 0, "tools": TOOLS}
    r = llmswitch.completion("openai/responses/o3-pro", messages, max_tokens=200, **kw)
    call = r.choices[0].message.tool_calls[0]
    assert (call.function.name, json.loads(call.function.arguments)) == ("lookup", {"q": "tides"})
    assert r.choices[0].finish_reason == "tool_calls" and r.usage.prompt_tokens == 20
    messages += [r.choices[0].message.model_dump(), {"role": "tool", "tool_call_id": call.id, "content": "noon"}]
    r2 = llmswitch.completion("openai/responses/o3-pro", messages, **kw)
    assert r2.choices[0].message.content == "High tide at noon."
    first, second = up.requests
    assert first.path == second.path == "/v1/responses"
    assert first.json["model"] == "o3-pro" and first.json["instructions"] == "Be brief."
    assert first.json["max_output_tokens"] == 200 and first.json["store"] is False
    assert first.json["tools"] == [
        {"type": "function", "name": "lookup", "parameters": TOOLS[0]["function"]["parameters"], "strict": False}
    ]
    kinds = [i["type"] for i in second.json["input"]]
    assert kinds == ["message", "function_call", "function_call_output"]
    for rec in (first, second):
        valid_per_spec(rec.json)


def test_a_streamed_chat_answer_from_responses_events(up: FakeUpstream) -> None:
    up.script(Reply(text="one two three", usage=(4, 3)))
    chunks = list(
        llmswitch.completion(
            "openai/responses/o3-pro", [{"role": "user", "content": "count"}], stream=True,
            stream_options={"include_usage": True}, api_base=up.openai_base, api_key="k", num_retries=0,
        )
    )  # fmt: skip
    assert "".join(c.choices[0].delta.content or "" for c in chunks if c.choices) == "one two three"
    assert [c.usage.completion_tokens for c in chunks if c.usage] == [3]
    assert up.requests[0].json["stream"] is True


def test_a_gateway_deployment_with_use_responses_api(up: FakeUpstream, tmp_path: Path) -> None:
    import sys

    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "server"))
    from gateway_harness import MASTER_KEY, ServedGateway

    config = f"""model_list:
  - model_name: pro
    litellm_params:
      model: openai/o3-pro
      api_base: "{up.openai_base}"
      api_key: sk-up
      use_responses_api: true
general_settings:
  master_key: {MASTER_KEY}
  store_path: "{tmp_path / "k.db"}"
"""
    up.script(Reply(text="via responses"), Reply(text="streamed via responses"))
    with ServedGateway(config) as gw, openai.OpenAI(base_url=f"{gw.url}/v1", api_key=MASTER_KEY, max_retries=0) as c:
        r = c.chat.completions.create(model="pro", messages=[{"role": "user", "content": "hi"}])
        assert r.choices[0].message.content == "via responses"
        s = c.chat.completions.create(model="pro", messages=[{"role": "user", "content": "hi"}], stream=True)
        assert "".join(ch.choices[0].delta.content or "" for ch in s if ch.choices) == "streamed via responses"
    assert [rec.path for rec in up.requests] == ["/v1/responses", "/v1/responses"]
    assert "use_responses_api" not in up.requests[0].json
