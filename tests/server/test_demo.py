"""`llmswitch serve --demo` shows tool calls and structured output to each official SDK, whole and streamed.

The demo gateway runs as a process, as a user starts it; its upstream is the built-in fake, which calls
a tool with arguments valid for the tool's schema and answers JSON that fits the response format.
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import anthropic
import jsonschema
import openai
import pytest
from gateway_harness import call, free_port
from google import genai
from google.genai import types
from pydantic import BaseModel

from llmswitch.server.demo import DEMO_MASTER_KEY

LLMSWITCH = Path(sys.executable).with_name("llmswitch")
GROUPS = ("demo-openai", "demo-anthropic", "demo-gemini")

WEATHER = {
    "type": "object",
    "properties": {
        "city": {"type": "string", "minLength": 2},
        "unit": {"type": "string", "enum": ["celsius", "fahrenheit"]},
        "days": {"type": "integer", "minimum": 1, "maximum": 7},
    },
    "required": ["city", "unit"],
}
TIME = {"type": "object", "properties": {"zone": {"type": "string"}}, "required": ["zone"]}
CITY = {
    "type": "object",
    "properties": {
        "name": {"type": "string"},
        "country": {"type": "string", "enum": ["FR", "PT"]},
        "population": {"type": "integer", "minimum": 1000},
        "founded": {"type": "string", "format": "date-time"},
        "districts": {
            "type": "array",
            "minItems": 2,
            "items": {
                "type": "object",
                "properties": {"name": {"type": "string"}, "area_km2": {"type": "number", "exclusiveMinimum": 0}},
                "required": ["name", "area_km2"],
                "additionalProperties": False,
            },
        },
    },
    "required": ["name", "country", "population", "founded", "districts"],
    "additionalProperties": False,
}


def valid(schema: dict[str, Any], value: Any) -> Any:
    checker = jsonschema.Draft202012Validator.FORMAT_CHECKER
    jsonschema.Draft202012Validator(schema, format_checker=checker).validate(value)
    return value


def _serve_demo(log: Path) -> tuple[subprocess.Popen[bytes], int] | None:
    """`llmswitch serve --demo` on a free port once it is ready; None when another process took the port
    between our probe and its bind (other test workers pick free ports too)."""
    port = free_port()
    argv = [str(LLMSWITCH), "serve", "--demo", "--host", "127.0.0.1", "--port", str(port)]
    with log.open("wb") as out:
        proc = subprocess.Popen(argv, stdout=out, stderr=subprocess.STDOUT)
    deadline = time.monotonic() + 60
    while True:
        if proc.poll() is not None:
            text = log.read_text()
            if "Address already in use" in text:
                return None
            raise AssertionError(text)
        try:
            if call(port, "GET", "/health/readiness", key=None, timeout=2).status == 200:
                return proc, port
        except OSError:
            pass
        if time.monotonic() >= deadline:
            proc.terminate()
            proc.wait(timeout=30)
            raise AssertionError(log.read_text())
        time.sleep(0.05)


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """The base URL of `llmswitch serve --demo`, started as a process."""
    log = tmp_path_factory.mktemp("demo") / "serve.log"
    for _ in range(3):
        if (started := _serve_demo(log)) is not None:
            break
    else:
        raise AssertionError(f"no free port three times: {log.read_text()}")
    proc, port = started
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        proc.terminate()
        proc.wait(timeout=30)


def openai_client(base: str) -> openai.OpenAI:
    return openai.OpenAI(base_url=f"{base}/v1", api_key=DEMO_MASTER_KEY, max_retries=0)


def function(name: str, schema: dict[str, Any]) -> dict[str, Any]:
    return {"type": "function", "function": {"name": name, "description": f"the {name} tool", "parameters": schema}}


# ---------------------------------------------------------------- openai SDK


@pytest.mark.parametrize("group", GROUPS)
@pytest.mark.parametrize("stream", [False, True], ids=["whole", "streamed"])
def test_openai_sdk_gets_a_tool_call_valid_for_the_schema_then_text_after_the_result(
    demo: str, group: str, stream: bool
) -> None:
    client = openai_client(demo)
    messages: list[Any] = [{"role": "user", "content": "What is the weather in Lisbon?"}]
    tools = [function("get_weather", WEATHER), function("get_time", TIME)]
    if stream:
        chunks = list(client.chat.completions.create(model=group, messages=messages, tools=tools, stream=True))
        deltas = [t for c in chunks if c.choices for t in c.choices[0].delta.tool_calls or []]
        finish = next(c.choices[0].finish_reason for c in chunks if c.choices and c.choices[0].finish_reason)
        name = next(t.function.name for t in deltas if t.function and t.function.name)
        call_id = next(t.id for t in deltas if t.id)
        arguments = "".join(t.function.arguments or "" for t in deltas if t.function)
    else:
        r = client.chat.completions.create(model=group, messages=messages, tools=tools)
        finish = r.choices[0].finish_reason
        (tool_call,) = r.choices[0].message.tool_calls or []
        assert tool_call.type == "function"
        name, call_id, arguments = tool_call.function.name, tool_call.id, tool_call.function.arguments
    assert finish == "tool_calls"
    assert name == "get_weather"
    valid(WEATHER, json.loads(arguments))

    messages.append(
        {
            "role": "assistant",
            "tool_calls": [{"id": call_id, "type": "function", "function": {"name": name, "arguments": arguments}}],
        }
    )
    messages.append({"role": "tool", "tool_call_id": call_id, "content": "18 degrees and sunny"})
    r = client.chat.completions.create(model=group, messages=messages, tools=tools)
    assert r.choices[0].finish_reason == "stop"
    assert not r.choices[0].message.tool_calls
    assert r.choices[0].message.content == "get_weather returned: 18 degrees and sunny"


@pytest.mark.parametrize("group", GROUPS)
def test_openai_sdk_tool_choice_is_respected(demo: str, group: str) -> None:
    client = openai_client(demo)
    messages: Any = [{"role": "user", "content": "What is the weather?"}]
    tools: Any = [function("get_weather", WEATHER), function("get_time", TIME)]
    named = client.chat.completions.create(
        model=group, messages=messages, tools=tools, tool_choice={"type": "function", "function": {"name": "get_time"}}
    )
    (tc,) = named.choices[0].message.tool_calls or []
    assert tc.function.name == "get_time"
    valid(TIME, json.loads(tc.function.arguments))
    none = client.chat.completions.create(model=group, messages=messages, tools=tools, tool_choice="none")
    assert none.choices[0].message.tool_calls is None
    assert none.choices[0].message.content == "What is the weather?"


@pytest.mark.parametrize("group", GROUPS)
@pytest.mark.parametrize("stream", [False, True], ids=["whole", "streamed"])
def test_openai_sdk_gets_json_that_fits_the_response_format(demo: str, group: str, stream: bool) -> None:
    client = openai_client(demo)
    messages: Any = [{"role": "user", "content": "Describe Lisbon."}]
    fmt: Any = {"type": "json_schema", "json_schema": {"name": "City", "schema": CITY, "strict": True}}
    if stream:
        chunks = client.chat.completions.create(model=group, messages=messages, response_format=fmt, stream=True)
        text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    else:
        text = (
            client.chat.completions.create(model=group, messages=messages, response_format=fmt)
            .choices[0]
            .message.content
            or ""
        )
    city = valid(CITY, json.loads(text))
    assert len(city["districts"]) == 2

    plain = client.chat.completions.create(model=group, messages=messages, response_format={"type": "json_object"})
    assert json.loads(plain.choices[0].message.content or "") == {"answer": "Describe Lisbon."}


@pytest.mark.parametrize("group", GROUPS)
def test_openai_sdk_parse_with_a_pydantic_model(demo: str, group: str) -> None:
    class District(BaseModel):
        name: str
        area_km2: float

    class City(BaseModel):
        name: str
        districts: list[District]

    r = openai_client(demo).chat.completions.parse(
        model=group, messages=[{"role": "user", "content": "Describe Lisbon."}], response_format=City
    )
    city = r.choices[0].message.parsed
    assert isinstance(city, City) and city.districts and city.districts[0].name == "name"


# ---------------------------------------------------------------- anthropic SDK


@pytest.mark.parametrize("group", GROUPS)
@pytest.mark.parametrize("stream", [False, True], ids=["whole", "streamed"])
def test_anthropic_sdk_gets_a_forced_tool_use_valid_for_the_schema(demo: str, group: str, stream: bool) -> None:
    client = anthropic.Anthropic(base_url=demo, api_key=DEMO_MASTER_KEY, max_retries=0)
    tools: Any = [
        {"name": "get_weather", "description": "the weather", "input_schema": WEATHER},
        {"name": "get_time", "description": "the time", "input_schema": TIME},
    ]
    kwargs: Any = {
        "model": group,
        "max_tokens": 256,
        "messages": [{"role": "user", "content": "What is the weather?"}],
        "tools": tools,
        "tool_choice": {"type": "tool", "name": "get_time"},
    }
    if stream:
        with client.messages.stream(**kwargs) as s:
            message = s.get_final_message()
    else:
        message = client.messages.create(**kwargs)
    assert message.stop_reason == "tool_use"
    (use,) = [b for b in message.content if b.type == "tool_use"]
    assert use.name == "get_time"
    valid(TIME, use.input)

    answer = client.messages.create(
        model=group,
        max_tokens=256,
        tools=tools,
        messages=[
            *kwargs["messages"],
            {
                "role": "assistant",
                "content": [{"type": "tool_use", "id": use.id, "name": use.name, "input": use.input}],
            },
            {"role": "user", "content": [{"type": "tool_result", "tool_use_id": use.id, "content": "noon"}]},
        ],
    )
    assert answer.stop_reason == "end_turn"
    assert [b.type for b in answer.content] == ["text"]
    assert answer.content[0].text == "get_time returned: noon"  # type: ignore[union-attr]


@pytest.mark.parametrize("group", GROUPS)
@pytest.mark.parametrize("stream", [False, True], ids=["whole", "streamed"])
def test_anthropic_sdk_structured_output_fits_the_schema(demo: str, group: str, stream: bool) -> None:
    client = anthropic.Anthropic(base_url=demo, api_key=DEMO_MASTER_KEY, max_retries=0)
    kwargs: Any = {
        "model": group,
        "max_tokens": 512,
        "messages": [{"role": "user", "content": "Describe Lisbon."}],
        "output_config": {"format": {"type": "json_schema", "schema": CITY}},
    }
    if stream:
        with client.messages.stream(**kwargs) as s:
            message = s.get_final_message()
    else:
        message = client.messages.create(**kwargs)
    assert message.stop_reason == "end_turn"
    text = "".join(b.text for b in message.content if b.type == "text")
    valid(CITY, json.loads(text))


# ---------------------------------------------------------------- google-genai SDK


def gemini_client(base: str) -> genai.Client:
    return genai.Client(api_key=DEMO_MASTER_KEY, http_options=types.HttpOptions(base_url=base))


@pytest.mark.parametrize("group", GROUPS)
@pytest.mark.parametrize("stream", [False, True], ids=["whole", "streamed"])
def test_gemini_sdk_gets_a_function_call_valid_for_its_declaration(demo: str, group: str, stream: bool) -> None:
    client = gemini_client(demo)
    declaration = types.FunctionDeclaration(
        name="get_weather", description="the weather", parameters_json_schema=WEATHER
    )
    config = types.GenerateContentConfig(
        tools=[types.Tool(function_declarations=[declaration])],
        tool_config=types.ToolConfig(
            function_calling_config=types.FunctionCallingConfig(mode=types.FunctionCallingConfigMode.ANY)
        ),
    )
    if stream:
        chunks = list(
            client.models.generate_content_stream(model=group, contents="What is the weather?", config=config)
        )
        calls = [c for chunk in chunks for c in chunk.function_calls or []]
    else:
        calls = (
            client.models.generate_content(model=group, contents="What is the weather?", config=config).function_calls
            or []
        )
    (fc,) = calls
    assert fc.name == "get_weather"
    valid(WEATHER, fc.args)


@pytest.mark.parametrize("group", GROUPS)
def test_gemini_sdk_automatic_function_calling_runs_the_tool_then_gets_text(demo: str, group: str) -> None:
    seen: list[str] = []

    def get_weather(city: str) -> str:
        """The current weather in a city."""
        seen.append(city)
        return f"sunny in {city}"

    config = types.GenerateContentConfig(tools=[get_weather])
    client = gemini_client(demo)  # held: the SDK closes a client it no longer sees, mid-loop
    r = client.models.generate_content(model=group, contents="What is the weather?", config=config)
    assert seen == ["city"]
    assert r.text == 'get_weather returned: {"result":"sunny in city"}'


@pytest.mark.parametrize("group", GROUPS)
@pytest.mark.parametrize("stream", [False, True], ids=["whole", "streamed"])
def test_gemini_sdk_response_schema_gives_json_that_fits(demo: str, group: str, stream: bool) -> None:
    class City(BaseModel):
        name: str
        population: int
        districts: list[str]

    client = gemini_client(demo)
    config = types.GenerateContentConfig(response_mime_type="application/json", response_schema=City)
    if stream:
        chunks = client.models.generate_content_stream(model=group, contents="Describe Lisbon.", config=config)
        text = "".join(c.text or "" for c in chunks)
    else:
        r = client.models.generate_content(model=group, contents="Describe Lisbon.", config=config)
        assert isinstance(r.parsed, City)
        text = r.text or ""
    valid(City.model_json_schema(), json.loads(text))

    bare = client.models.generate_content(
        model=group,
        contents="Describe Lisbon.",
        config=types.GenerateContentConfig(response_mime_type="application/json"),
    )
    assert json.loads(bare.text or "") == {"answer": "Describe Lisbon."}
