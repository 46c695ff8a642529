"""OpenAI's legacy function calling and spoken answers (issue 14, section 3).

- A caller of ``functions`` / ``function_call`` gets ``message.function_call`` (``delta.function_call``
  in a stream, finish reason ``function_call``), never ``tool_calls``, whichever family answers: each
  is sent the functions as its own tools.
- ``message.audio`` (id, data, transcript, expires_at) and ``delta.audio`` come through to OpenAI
  clients and the SDK on the fast and the full path alike; a family that cannot speak refuses
  ``modalities`` / ``audio`` by the policy, or drops them with drop_params.
"""

from __future__ import annotations

import json
from typing import Any

import pytest
from harness import (
    FAMILIES,
    OPENAI_PATHS,
    Ask,
    ServedGateway,
    ask,
    ask_openai_family,
    dropped,
    matrix,
    openai_answer,
    openai_stream,
    refused_then_dropped,
    the_request,
)

import llmswitch
import llmswitch.results
from llmswitch.testing import FakeUpstream, Reply

PARAMS = {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]}
FUNCTIONS = [{"name": "get_weather", "description": "The weather in a city", "parameters": PARAMS}]


def legacy_ask(function_call: Any) -> Ask:
    return Ask(
        openai={
            "messages": [{"role": "user", "content": "Weather in Paris?"}],
            "functions": FUNCTIONS,
            "function_call": function_call,
        }
    )


def tools_sent(family: str, body: dict[str, Any]) -> list[str]:
    if family == "gemini":
        return [d["name"] for t in body["tools"] for d in t.get("functionDeclarations", [])]
    if family == "anthropic":
        return [t["name"] for t in body["tools"]]
    return [t["function"]["name"] for t in body["tools"]]


@pytest.mark.parametrize(("client", "family", "stream"), list(matrix(clients=("openai", "sdk"), families=FAMILIES)))
def test_legacy_function_callers_get_function_call_back(
    gw: ServedGateway, up: FakeUpstream, client: str, family: str, stream: bool
) -> None:
    up.script(Reply(tool_calls=[("get_weather", {"city": "Paris"})], chunk_size=4))
    seen = ask(client, f"m-{family}", legacy_ask("auto"), stream=stream, gw=gw, up=up)
    assert seen.status == 200, seen.error
    assert seen.tool_calls == []
    assert seen.function_call is not None
    name, arguments = seen.function_call
    assert (name, json.loads(arguments)) == ("get_weather", {"city": "Paris"})
    assert seen.finish == "function_call"
    assert tools_sent(family, the_request(up, family).json) == ["get_weather"]
    if client == "sdk" and stream:
        built = llmswitch.stream_chunk_builder(seen.raw).choices[0].message
        assert (built.function_call, built.tool_calls) == (
            llmswitch.results.Function(name=name, arguments=arguments),
            None,
        )


@pytest.mark.parametrize("family", ["openai", "anthropic", "gemini"])
def test_a_named_legacy_function_call_forces_that_function(gw: ServedGateway, up: FakeUpstream, family: str) -> None:
    up.script(Reply(tool_calls=[("get_weather", {"city": "Paris"})]))
    seen = ask("openai", f"m-{family}", legacy_ask({"name": "get_weather"}), gw=gw)
    assert seen.status == 200, seen.error
    assert seen.function_call is not None and seen.function_call[0] == "get_weather"
    body = the_request(up, family).json
    forced = {
        "openai": ("tool_choice", {"type": "function", "function": {"name": "get_weather"}}),
        "anthropic": ("tool_choice", {"type": "tool", "name": "get_weather"}),
        "gemini": ("toolConfig", {"functionCallingConfig": {"mode": "ANY", "allowedFunctionNames": ["get_weather"]}}),
    }[family]
    assert body[forced[0]] == forced[1]


def test_a_legacy_function_turn_in_the_history_is_sent_as_a_tool_turn(gw: ServedGateway, up: FakeUpstream) -> None:
    history = [
        {"role": "user", "content": "Weather in Paris?"},
        {
            "role": "assistant",
            "content": None,
            "function_call": {"name": "get_weather", "arguments": '{"city":"Paris"}'},
        },
        {"role": "function", "name": "get_weather", "content": "Sunny"},
    ]
    up.script(Reply(text="It is sunny."))
    seen = ask("openai", "m-anthropic", Ask(openai={"messages": history, "functions": FUNCTIONS}), gw=gw)
    assert (seen.status, seen.text, seen.function_call) == (200, "It is sunny.", None)
    messages = the_request(up, "anthropic").json["messages"]
    use = messages[1]["content"][0]
    result = messages[2]["content"][0]
    assert (use["type"], use["name"], use["input"]) == ("tool_use", "get_weather", {"city": "Paris"})
    assert (result["type"], result["tool_use_id"]) == ("tool_result", use["id"])


# ---------------------------------------------------------------- spoken answers

AUDIO = {"id": "audio_m1", "data": "UklGRiQAAABXQVZF", "transcript": "Hello there!", "expires_at": 1764982800}
AUDIO_ASK = Ask(
    openai={
        "messages": [{"role": "user", "content": "Say hello."}],
        "modalities": ["text", "audio"],
        "audio": {"voice": "alloy", "format": "wav"},
    }
)


def audio_reply(stream: bool) -> Reply:
    if not stream:
        return Reply(body=openai_answer({"audio": AUDIO}))
    first = {"role": "assistant", "content": None, "audio": {"id": AUDIO["id"], "transcript": "Hello "}}
    deltas = [first, {"audio": {"transcript": "there!"}}, {"audio": {"data": AUDIO["data"]}}]
    deltas.append({"audio": {"expires_at": AUDIO["expires_at"]}})
    return Reply(body=openai_stream(deltas))


@pytest.mark.parametrize("stream", [False, True], ids=["whole", "stream"])
@pytest.mark.parametrize(("client", "path"), OPENAI_PATHS)
def test_a_spoken_answer_comes_through(
    gw: ServedGateway, up: FakeUpstream, client: str, path: str, stream: bool
) -> None:
    up.script(audio_reply(stream))
    seen, body = ask_openai_family(client, path, AUDIO_ASK, stream=stream, gw=gw, up=up)
    assert seen.audio == AUDIO
    assert (body["modalities"], body["audio"]) == (["text", "audio"], {"voice": "alloy", "format": "wav"})


@pytest.mark.parametrize("family", ["anthropic", "gemini", "ollama"])
@pytest.mark.parametrize("client", ["openai", "sdk"])
def test_asking_to_speak_elsewhere_is_refused_or_dropped(
    gw: ServedGateway, up: FakeUpstream, client: str, family: str
) -> None:
    up.script(Reply(text="Hello there!"))
    refused, kept, body = refused_then_dropped(client, family, AUDIO_ASK, gw=gw, up=up)
    assert "modalities" in refused.error and "audio" in refused.error
    assert kept.text == "Hello there!"
    assert {"modalities", "audio"} <= dropped(kept)
    assert "modalities" not in body and "audio" not in body


SPOKEN_HISTORY = [
    {"role": "user", "content": "Say hello."},
    {"role": "assistant", "content": None, "audio": {"id": "audio_m1"}},
    {"role": "user", "content": "Again, slower."},
]


@pytest.mark.parametrize(("client", "path"), OPENAI_PATHS)
def test_an_earlier_spoken_answer_goes_back_to_openai_by_its_id(
    gw: ServedGateway, up: FakeUpstream, client: str, path: str
) -> None:
    up.script(audio_reply(False))
    ask_ = Ask(openai={**AUDIO_ASK.openai, "messages": SPOKEN_HISTORY})  # type: ignore[dict-item]
    seen, body = ask_openai_family(client, path, ask_, stream=False, gw=gw, up=up)
    assert seen.audio == AUDIO
    assert body["messages"][1] == {"role": "assistant", "content": None, "audio": {"id": "audio_m1"}}


@pytest.mark.parametrize("family", ["anthropic", "gemini", "ollama"])
def test_an_earlier_spoken_answer_elsewhere_is_refused_or_dropped(
    gw: ServedGateway, up: FakeUpstream, family: str
) -> None:
    up.script(Reply(text="Hello… there."))
    refused, kept, body = refused_then_dropped("openai", family, Ask(openai={"messages": SPOKEN_HISTORY}), gw=gw, up=up)
    assert "messages[1].audio" in refused.error
    assert (kept.text, dropped(kept)) == ("Hello… there.", {"messages[1].audio"})
    assert "audio_m1" not in str(body)


def test_a_named_legacy_function_call_to_ollama_names_function_call(gw: ServedGateway, up: FakeUpstream) -> None:
    up.script(Reply(tool_calls=[("get_weather", {"city": "Paris"})]))
    refused, kept, body = refused_then_dropped("openai", "ollama", legacy_ask({"name": "get_weather"}), gw=gw, up=up)
    assert "'function_call'" in refused.error
    assert dropped(kept) == {"function_call"}
    assert kept.function_call is not None and kept.function_call[0] == "get_weather"
    assert [t["function"]["name"] for t in body["tools"]] == ["get_weather"]
