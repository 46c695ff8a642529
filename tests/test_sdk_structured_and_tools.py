"""Structured outputs, tool schemas and the tool loop, and embeddings, through the SDK against the fake."""

from __future__ import annotations

import asyncio
import copy
import json
from collections.abc import Iterator
from typing import Any, Literal

import pytest
from pydantic import BaseModel

import llmswitch
from llmswitch import transport
from llmswitch.testing import FakeUpstream, RecordedRequest, Reply, embedding_vector

MESSAGES = [{"role": "user", "content": "Recommend a book"}]


@pytest.fixture
def up() -> Iterator[FakeUpstream]:
    with FakeUpstream() as fake:
        yield fake


def ask(up: FakeUpstream, messages: list[Any] | None = None, **kwargs: Any) -> Any:
    return llmswitch.completion(
        "openai/gpt-4o-mini", messages or MESSAGES, api_base=up.openai_base, api_key="sk-test", **kwargs
    )


# ---------------------------------------------------------------- structured outputs


class Author(BaseModel):
    first_name: str
    last_name: str


class Book(BaseModel):
    title: str
    author: Author
    rating: int = 5


BOOK_JSON = '{"title":"THE NAME OF THE WIND","author":{"first_name":"Patrick","last_name":"Rothfuss"},"rating":7}'


def test_a_pydantic_response_format_gives_a_parsed_instance(up: FakeUpstream) -> None:
    up.script(Reply(text=BOOK_JSON))
    r = ask(up, response_format=Book)
    parsed = r.choices[0].message.parsed
    assert isinstance(parsed, Book)
    assert parsed == Book(
        title="THE NAME OF THE WIND", author=Author(first_name="Patrick", last_name="Rothfuss"), rating=7
    )
    assert r.choices[0].message.content == BOOK_JSON


def test_a_pydantic_response_format_is_sent_as_a_strict_json_schema(up: FakeUpstream) -> None:
    up.script(Reply(text=BOOK_JSON))
    ask(up, response_format=Book)
    rf = up.requests[0].json["response_format"]
    assert rf["type"] == "json_schema"
    assert rf["json_schema"]["name"] == "Book" and rf["json_schema"]["strict"] is True
    schema = rf["json_schema"]["schema"]
    assert schema["required"] == ["title", "author", "rating"]  # strict mode: every property required
    assert schema["additionalProperties"] is False
    assert schema["$defs"]["Author"]["additionalProperties"] is False
    assert "default" not in schema["properties"]["rating"]


@pytest.mark.parametrize(
    ("content", "reason"),
    [("{'title': 'not json'", "not JSON"), ('{"title": "No author"}', "missing a field"), ("", "empty")],
)
def test_a_reply_that_does_not_fit_raises_response_parse_error(up: FakeUpstream, content: str, reason: str) -> None:
    up.script(Reply(text=content))
    with pytest.raises(llmswitch.ResponseParseError, match="Book") as info:
        ask(up, response_format=Book)
    assert info.value.content == (content or None)
    assert isinstance(info.value, ValueError)


def test_a_json_schema_dict_is_sent_as_given(up: FakeUpstream) -> None:
    rf = {
        "type": "json_schema",
        "json_schema": {
            "name": "city",
            "schema": {"type": "object", "properties": {"name": {"type": "string"}}, "required": ["name"]},
            "strict": True,
        },
    }
    up.script(Reply(text='{"name": "Paris"}'))
    r = ask(up, response_format=rf)
    assert up.requests[0].json["response_format"] == rf
    assert json.loads(r.choices[0].message.content) == {"name": "Paris"}
    assert r.choices[0].message.parsed is None


def test_json_object_is_sent_as_openai_expects(up: FakeUpstream) -> None:
    up.script(Reply(text="{}"))
    ask(up, response_format={"type": "json_object"})
    assert up.requests[0].json["response_format"] == {"type": "json_object"}


def test_a_bare_json_schema_is_wrapped(up: FakeUpstream) -> None:
    schema = {"type": "object", "properties": {"n": {"type": "integer"}}}
    up.script(Reply(text='{"n": 1}'))
    ask(up, response_format=schema)
    assert up.requests[0].json["response_format"] == {
        "type": "json_schema",
        "json_schema": {"name": "response", "schema": schema},
    }


def test_a_tool_call_answer_is_not_parsed(up: FakeUpstream) -> None:
    up.script(Reply(tool_calls=[("lookup", {"q": "books"})]))
    r = ask(up, response_format=Book, tools=[llmswitch.function_tool(lookup)])
    assert r.choices[0].message.parsed is None
    assert r.choices[0].message.tool_calls[0].function.name == "lookup"


def test_acompletion_parses_too() -> None:
    async def main() -> Any:
        try:
            async with FakeUpstream() as up:
                up.script(Reply(text=BOOK_JSON))
                return await llmswitch.acompletion(
                    "openai/gpt-4o-mini", MESSAGES, api_base=up.openai_base, api_key="k", response_format=Book
                )
        finally:
            await transport.close_session()

    assert asyncio.run(main()).choices[0].message.parsed.author.last_name == "Rothfuss"


# ---------------------------------------------------------------- tools

CALLS: list[tuple[str, dict[str, Any]]] = []


def get_weather(city: str, unit: Literal["celsius", "fahrenheit"] = "celsius") -> str:
    """The current weather in a city.

    Only the first paragraph becomes the description.
    """
    CALLS.append(("get_weather", {"city": city, "unit": unit}))
    return f"sunny in {city}"


def add(a: int, b: int) -> dict[str, int]:
    """Add two integers."""
    CALLS.append(("add", {"a": a, "b": b}))
    return {"sum": a + b}


def lookup(q: str, limit: int | None = None) -> str:
    """Look something up."""
    raise ValueError(f"nothing found for {q}")


async def slow_echo(text: str) -> str:
    """Echo, after a moment."""
    await asyncio.sleep(0)
    return text


@pytest.fixture(autouse=True)
def _clear_calls() -> None:
    CALLS.clear()


def test_function_tool_builds_the_schema_from_type_hints() -> None:
    tool = llmswitch.function_tool(get_weather)
    assert tool["type"] == "function"
    fn = tool["function"]
    assert fn["name"] == "get_weather"
    assert fn["description"] == "The current weather in a city."
    params = fn["parameters"]
    assert params["type"] == "object"
    assert params["required"] == ["city"]
    assert params["properties"]["city"] == {"type": "string"}
    assert params["properties"]["unit"]["enum"] == ["celsius", "fahrenheit"]
    assert llmswitch.function_tool(add)["function"]["parameters"]["properties"]["b"] == {"type": "integer"}
    optional = llmswitch.function_tool(lookup)["function"]["parameters"]
    assert optional["required"] == ["q"]
    assert {"type": "null"} in optional["properties"]["limit"]["anyOf"]


def test_function_tool_takes_a_name_and_description() -> None:
    fn = llmswitch.function_tool(add, name="plus", description="Sum.")["function"]
    assert (fn["name"], fn["description"]) == ("plus", "Sum.")


def test_run_tools_runs_the_loop_until_a_text_answer(up: FakeUpstream) -> None:
    up.script(
        Reply(tool_calls=[("get_weather", {"city": "Paris"})]),
        Reply(tool_calls=[("add", {"a": 2, "b": 3}), ("get_weather", {"city": "Rome", "unit": "fahrenheit"})]),
        Reply(text="Paris is sunny and 2 + 3 = 5."),
    )
    messages: list[Any] = [{"role": "user", "content": "Weather in Paris, and 2+3?"}]
    r = llmswitch.run_tools(
        "openai/gpt-4o-mini", messages, tools=[get_weather, add], api_base=up.openai_base, api_key="k"
    )

    assert r.choices[0].message.content == "Paris is sunny and 2 + 3 = 5."
    assert CALLS == [
        ("get_weather", {"city": "Paris", "unit": "celsius"}),
        ("add", {"a": 2, "b": 3}),
        ("get_weather", {"city": "Rome", "unit": "fahrenheit"}),
    ]
    assert len(up.requests) == 3
    assert up.requests[0].json["tools"] == [llmswitch.function_tool(get_weather), llmswitch.function_tool(add)]
    last = up.requests[2].json["messages"]
    assert [m["role"] for m in last] == ["user", "assistant", "tool", "assistant", "tool", "tool"]
    first_call_id = last[1]["tool_calls"][0]["id"]
    assert last[2] == {"role": "tool", "tool_call_id": first_call_id, "content": "sunny in Paris"}
    assert json.loads(last[4]["content"]) == {"sum": 5}
    assert last[5]["content"] == "sunny in Rome"
    assert messages == [{"role": "user", "content": "Weather in Paris, and 2+3?"}]
    assert [m["role"] for m in r.messages] == ["user", "assistant", "tool", "assistant", "tool", "tool", "assistant"]
    assert r.messages[-1]["content"] == "Paris is sunny and 2 + 3 = 5."


def test_run_tools_leaves_the_callers_messages_alone_and_returns_the_whole_transcript(up: FakeUpstream) -> None:
    up.script(Reply(tool_calls=[("add", {"a": 2, "b": 3})]), Reply(text="5"), Reply(text="again: 5"))
    system = {"role": "system", "content": "Be brief."}
    question = {"role": "user", "content": [{"type": "text", "text": "2+3?"}]}
    messages = [system, question]
    before = copy.deepcopy(messages)
    r = llmswitch.run_tools("openai/gpt-4o-mini", messages, tools=[add], api_base=up.openai_base, api_key="k")

    assert messages == before and messages[0] is system and messages[1] is question
    assert r.messages[:2] == before
    assert [m["role"] for m in r.messages] == ["system", "user", "assistant", "tool", "assistant"]
    assert r.messages[2]["tool_calls"][0]["function"] == {"name": "add", "arguments": '{"a":2,"b":3}'}
    assert json.loads(r.messages[3]["content"]) == {"sum": 5}
    assert r.messages[4] == {"role": "assistant", "content": "5"}
    assert "messages" not in r.model_dump()  # the OpenAI JSON of the final answer stays OpenAI's

    # the same list runs again from the start: nothing of the first run leaked into it
    again = asyncio.run(_arun_tools_once(messages, up))
    assert [m["role"] for m in up.requests[-1].json["messages"]] == ["system", "user"]
    assert messages == before and [m["role"] for m in again.messages] == ["system", "user", "assistant"]


async def _arun_tools_once(messages: list[Any], up: FakeUpstream) -> Any:
    try:
        return await llmswitch.arun_tools(
            "openai/gpt-4o-mini", messages, tools=[add], api_base=up.openai_base, api_key="k"
        )
    finally:
        await transport.close_session()


def test_run_tools_raises_at_the_step_limit(up: FakeUpstream) -> None:
    up.default = Reply(tool_calls=[("add", {"a": 1, "b": 1})])
    with pytest.raises(llmswitch.MaxStepsExceededError, match="3 steps"):
        llmswitch.run_tools(
            "openai/gpt-4o-mini",
            [{"role": "user", "content": "loop"}],
            tools=[add],
            max_steps=3,
            api_base=up.openai_base,
            api_key="k",
        )
    assert len(up.requests) == 3
    assert len(CALLS) == 3


def test_tool_failures_and_unknown_tools_are_reported_to_the_model(up: FakeUpstream) -> None:
    seen: list[RecordedRequest] = []

    def responder(req: RecordedRequest) -> Reply:
        seen.append(req)
        if len(seen) == 1:
            return Reply(tool_calls=[("lookup", {"q": "unicorns"}), ("teleport", {})])
        return Reply(text="Sorry, I could not find anything.")

    up.responder = responder
    r = llmswitch.run_tools(
        "openai/gpt-4o-mini",
        [{"role": "user", "content": "find unicorns"}],
        tools=[lookup],
        api_base=up.openai_base,
        api_key="k",
    )
    assert r.choices[0].message.content == "Sorry, I could not find anything."
    results = [m for m in seen[1].json["messages"] if m["role"] == "tool"]
    assert results[0]["content"] == "Error: ValueError: nothing found for unicorns"
    assert "no tool named 'teleport'" in results[1]["content"]


def test_arun_tools_awaits_async_tools() -> None:
    async def main() -> Any:
        try:
            async with FakeUpstream() as up:
                up.script(Reply(tool_calls=[("slow_echo", {"text": "hello"})]), Reply(text="done"))
                r = await llmswitch.arun_tools(
                    "openai/gpt-4o-mini",
                    [{"role": "user", "content": "echo hello"}],
                    tools=[slow_echo],
                    api_base=up.openai_base,
                    api_key="k",
                )
                return r, up.requests[1].json["messages"][-1]
        finally:
            await transport.close_session()

    r, tool_message = asyncio.run(main())
    assert r.choices[0].message.content == "done"
    assert tool_message["content"] == "hello"


# ---------------------------------------------------------------- embeddings


def test_embeddings_in_float_and_base64_decode_to_the_same_floats(up: FakeUpstream) -> None:
    texts = ["the quick brown fox", "jumps over the lazy dog"]

    def embed(encoding_format: str | None) -> list[list[float]]:
        r = llmswitch.embedding(
            "openai/text-embedding-3-small",
            texts,
            dimensions=32,
            encoding_format=encoding_format,
            api_base=up.openai_base,
            api_key="k",
        )
        return [d.embedding for d in r.data]

    floats, b64, default = embed("float"), embed("base64"), embed(None)
    assert floats == b64 == default == [embedding_vector(t, 32) for t in texts]
    sent = [r.json.get("encoding_format") for r in up.calls_for("/embeddings")]
    assert sent == ["float", "base64", None]
    assert all(isinstance(d["embedding"], str) for d in _raw_embeddings(up, "base64"))


def _raw_embeddings(up: FakeUpstream, encoding_format: str) -> list[dict[str, Any]]:
    import urllib.request

    body = json.dumps({"model": "m", "input": ["x"], "encoding_format": encoding_format}).encode()
    req = urllib.request.Request(
        f"{up.openai_base}/embeddings", data=body, headers={"content-type": "application/json"}
    )
    with urllib.request.build_opener(urllib.request.ProxyHandler({})).open(req, timeout=10) as resp:
        data: list[dict[str, Any]] = json.loads(resp.read())["data"]
    return data


def test_embedding_usage_and_order(up: FakeUpstream) -> None:
    r = llmswitch.embedding("openai/text-embedding-3-small", ["a", "b", "c"], api_base=up.openai_base, api_key="k")
    assert [d.index for d in r.data] == [0, 1, 2]
    assert r.usage.prompt_tokens == r.usage.total_tokens > 0
    assert r.model == "text-embedding-3-small"
