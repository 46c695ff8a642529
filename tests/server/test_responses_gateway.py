"""OpenAI's Responses API on the gateway, through the openai SDK's ``client.responses``: on OpenAI,
Anthropic and Gemini deployments, whole and streamed, function tools, ``previous_response_id`` with
stored responses (for the key that made them only), retrieve and delete."""

from __future__ import annotations

import json
from collections.abc import Iterator

import openai
import pytest
from gateway_harness import MASTER_KEY, Closing, ServedGateway, gateway_config

from llmswitch.testing import FakeUpstream, Reply

GROUPS = ["m-openai", "m-anthropic", "m-gemini"]
TOOLS = [
    {
        "type": "function",
        "name": "get_weather",
        "description": "The weather in a city",
        "parameters": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]},
    }
]


@pytest.fixture(scope="module")
def gw(upstream: FakeUpstream, tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServedGateway]:
    store = str(tmp_path_factory.mktemp("responses") / "keys.db")
    with ServedGateway(gateway_config(upstream, store)) as gateway:
        yield gateway


def client(closing: Closing, gw: ServedGateway, key: str = MASTER_KEY) -> openai.OpenAI:
    return closing(openai.OpenAI(base_url=f"{gw.url}/v1", api_key=key, max_retries=0))


@pytest.mark.parametrize("group", GROUPS)
def test_a_whole_response_from_any_deployment(
    gw: ServedGateway, up: FakeUpstream, group: str, closing: Closing
) -> None:
    up.script(Reply(text="Paris.", usage=(12, 2)))
    r = client(closing, gw).responses.create(model=group, input="Capital of France?", instructions="Be brief.")
    assert r.output_text == "Paris."
    assert r.status == "completed" and r.id.startswith("resp_")
    assert (r.usage.input_tokens, r.usage.output_tokens) == (12, 2)  # type: ignore[union-attr]
    [rec] = up.requests
    # the instructions reached the provider as its own system prompt
    assert "Be brief." in json.dumps(rec.json)


@pytest.mark.parametrize("group", GROUPS)
def test_a_streamed_response_as_typed_events(gw: ServedGateway, up: FakeUpstream, group: str, closing: Closing) -> None:
    up.script(Reply(text="one two three", usage=(5, 3)))
    c = client(closing, gw)
    with c.responses.stream(model=group, input="Count") as stream:
        deltas = [e.delta for e in stream if e.type == "response.output_text.delta"]
        final = stream.get_final_response()
    assert "".join(deltas) == "one two three"
    assert final.output_text == "one two three" and final.usage.output_tokens == 3  # type: ignore[union-attr]


@pytest.mark.parametrize("group", GROUPS)
def test_a_tool_call_then_its_output_by_previous_response_id(
    gw: ServedGateway, up: FakeUpstream, group: str, closing: Closing
) -> None:
    up.script(Reply(tool_calls=[("get_weather", {"city": "Oslo"})]), Reply(text="Cold in Oslo."))
    c = client(closing, gw)
    first = c.responses.create(model=group, input="Weather in Oslo?", tools=TOOLS)  # type: ignore[arg-type]
    [call] = [o for o in first.output if o.type == "function_call"]
    assert call.name == "get_weather" and json.loads(call.arguments) == {"city": "Oslo"}  # type: ignore[union-attr]
    second = c.responses.create(
        model=group,
        previous_response_id=first.id,
        input=[{"type": "function_call_output", "call_id": call.call_id, "output": "-5 C"}],  # type: ignore[union-attr]
        tools=TOOLS,  # type: ignore[arg-type]
    )
    assert second.output_text == "Cold in Oslo."
    sent = json.dumps(up.requests[1].json)
    # the provider saw the whole conversation: the question, its tool call and the tool's output
    assert "Weather in Oslo?" in sent and "-5 C" in sent and "get_weather" in sent


def test_a_stored_response_is_retrieved_and_deleted_by_its_key_only(
    gw: ServedGateway, up: FakeUpstream, closing: Closing
) -> None:
    up.script(Reply(text="kept"))
    c = client(closing, gw)
    r = c.responses.create(model="m-openai", input="remember this")
    assert c.responses.retrieve(r.id).output_text == "kept"
    other = gw.new_key(key_alias="responses-other")
    with pytest.raises(openai.NotFoundError):
        client(closing, gw, other).responses.retrieve(r.id)
    with pytest.raises(openai.NotFoundError):
        client(closing, gw, other).responses.create(model="m-openai", input="x", previous_response_id=r.id)
    c.responses.delete(r.id)
    with pytest.raises(openai.NotFoundError):
        c.responses.retrieve(r.id)


def test_store_false_keeps_nothing(gw: ServedGateway, up: FakeUpstream, closing: Closing) -> None:
    up.script(Reply(text="gone"))
    c = client(closing, gw)
    r = c.responses.create(model="m-openai", input="forget this", store=False)
    with pytest.raises(openai.NotFoundError):
        c.responses.retrieve(r.id)


def test_an_unknown_field_is_a_400_naming_it(gw: ServedGateway, up: FakeUpstream, closing: Closing) -> None:
    with pytest.raises(openai.BadRequestError) as err:
        client(closing, gw).responses.create(model="m-openai", input="hi", extra_body={"frobnicate": 1})
    assert "frobnicate" in str(err.value)
    assert up.requests == []
