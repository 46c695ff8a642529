"""Tool choices narrowed to some tools, and OpenAI's custom tools (issue 14, section 3).

- ``allowed_tools`` (OpenAI) and ``allowedFunctionNames`` (Gemini) map to each other: ``required`` is
  Gemini's ``ANY``, ``auto`` its ``VALIDATED``; Ollama (no tool choice) is offered only the allowed tools
  in ``auto`` mode; Anthropic cannot narrow a choice, so the policy refuses it naming the caller's field,
  or with drop_params keeps the choice over every tool and reports the drop.
- Custom tools (free-form input) exist only in OpenAI's API: they, their ``{"type": "custom"}`` choice
  and their calls go to OpenAI as written (fast and full path alike); any other family gets the
  policy's 400 naming ``tools[i]``, or with drop_params the other tools.
"""

from __future__ import annotations

import json
from typing import Any

import pytest
from harness import (
    OPENAI_PATHS,
    Ask,
    ServedGateway,
    ask,
    ask_openai_family,
    dropped,
    openai_answer,
    openai_stream,
    refused_then_dropped,
    the_request,
)

from llmswitch.testing import FakeUpstream, Reply

PROMPT = "What time is it in Paris?"


def fn(name: str) -> dict[str, Any]:
    params = {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]}
    return {"type": "function", "function": {"name": name, "description": f"{name} of a city", "parameters": params}}


TOOLS = [fn("get_weather"), fn("get_time"), fn("get_news")]
ALLOWED = ["get_weather", "get_time"]


def allowed_ask(mode: str) -> Ask:
    choice = {
        "type": "allowed_tools",
        "allowed_tools": {"mode": mode, "tools": [{"type": "function", "function": {"name": n}} for n in ALLOWED]},
    }
    declarations = [{"name": t["function"]["name"], "parameters": t["function"]["parameters"]} for t in TOOLS]
    gemini_mode = {"required": "ANY", "auto": "VALIDATED"}[mode]
    return Ask(
        openai={"messages": [{"role": "user", "content": PROMPT}], "tools": TOOLS, "tool_choice": choice},
        gemini={
            "contents": PROMPT,
            "config": {
                "tools": [{"function_declarations": declarations}],
                "tool_config": {"function_calling_config": {"mode": gemini_mode, "allowed_function_names": ALLOWED}},
            },
        },
    )


def sent_choice(family: str, body: dict[str, Any]) -> Any:
    """What the family's request says about the tool choice (and, for Ollama, which tools it offers)."""
    if family == "openai":
        return body.get("tool_choice")
    if family == "gemini":
        return (body.get("toolConfig") or {}).get("functionCallingConfig")
    if family == "anthropic":
        return body.get("tool_choice")
    return sorted(t["function"]["name"] for t in body.get("tools") or [])


def expected_choice(family: str, mode: str) -> Any:
    if family == "openai":
        return allowed_ask(mode).openai["tool_choice"]  # type: ignore[index]
    if family == "gemini":
        return {"mode": {"required": "ANY", "auto": "VALIDATED"}[mode], "allowedFunctionNames": ALLOWED}
    return sorted(ALLOWED)


CASES = [
    pytest.param(client, family, mode, id=f"{client}-to-{family}-{mode}")
    for client in ("openai", "gemini", "sdk")
    for family in ("openai", "gemini", "ollama")
    for mode in ("auto", "required")
    # Ollama has no tool choice: a required one is refused (below)
    if not (family == "ollama" and mode == "required")
]


@pytest.mark.parametrize(("client", "family", "mode"), CASES)
def test_a_narrowed_tool_choice_keeps_its_meaning(
    gw: ServedGateway, up: FakeUpstream, client: str, family: str, mode: str
) -> None:
    up.script(Reply(tool_calls=[("get_time", {"city": "Paris"})]))
    seen = ask(client, f"m-{family}", allowed_ask(mode), gw=gw, up=up)
    assert seen.status == 200, seen.error
    assert [(n, json.loads(a)) for n, a in seen.tool_calls] == [("get_time", {"city": "Paris"})]
    assert sent_choice(family, the_request(up, family).json) == expected_choice(family, mode)


ANTHROPIC_FIELD = {
    "openai": "tool_choice.allowed_tools",
    "sdk": "tool_choice.allowed_tools",
    "gemini": "toolConfig.functionCallingConfig.allowedFunctionNames",
}


@pytest.mark.parametrize("mode", ["auto", "required"])
@pytest.mark.parametrize("client", ["openai", "gemini", "sdk"])
def test_anthropic_cannot_narrow_a_choice_refused_or_dropped(
    gw: ServedGateway, up: FakeUpstream, client: str, mode: str
) -> None:
    up.script(Reply(tool_calls=[("get_time", {"city": "Paris"})]))
    refused, kept, body = refused_then_dropped(client, "anthropic", allowed_ask(mode), gw=gw, up=up)
    assert ANTHROPIC_FIELD[client] in refused.error
    assert ANTHROPIC_FIELD[client] in dropped(kept)
    assert body["tool_choice"] == {"type": {"auto": "auto", "required": "any"}[mode]}
    assert len(body["tools"]) == 3


# ---------------------------------------------------------------- custom tools

GRAMMAR = {"type": "grammar", "grammar": {"syntax": "regex", "definition": "^print\\(.*\\)$"}}
CUSTOM = {"type": "custom", "custom": {"name": "run_python", "description": "Runs one line", "format": GRAMMAR}}
CUSTOM_ASK = Ask(
    openai={
        "messages": [{"role": "user", "content": "Print 42."}],
        "tools": [fn("get_weather"), CUSTOM],
        "tool_choice": {"type": "custom", "custom": {"name": "run_python"}},
    }
)
CODE = "print(42)"


def custom_call_reply(stream: bool) -> Reply:
    call = {"id": "call_c1", "type": "custom", "custom": {"name": "run_python", "input": CODE}}
    if not stream:
        return Reply(body=openai_answer({"tool_calls": [call]}, finish="tool_calls"))
    first = {"index": 0, "id": "call_c1", "type": "custom", "custom": {"name": "run_python", "input": ""}}
    deltas = [{"role": "assistant", "content": None, "tool_calls": [first]}]
    deltas += [{"tool_calls": [{"index": 0, "custom": {"input": piece}}]} for piece in ("print(", "42)")]
    return Reply(body=openai_stream(deltas, finish="tool_calls"))


@pytest.mark.parametrize("stream", [False, True], ids=["whole", "stream"])
@pytest.mark.parametrize(("client", "path"), OPENAI_PATHS)
def test_custom_tools_go_to_openai_as_written_and_their_calls_come_back(
    gw: ServedGateway, up: FakeUpstream, client: str, path: str, stream: bool
) -> None:
    up.script(custom_call_reply(stream))
    seen, body = ask_openai_family(client, path, CUSTOM_ASK, stream=stream, gw=gw, up=up)
    assert seen.tool_calls == [("run_python", CODE)]
    assert seen.finish == "tool_calls"
    assert body["tools"][1] == CUSTOM
    assert body["tool_choice"] == {"type": "custom", "custom": {"name": "run_python"}}


def test_a_custom_tool_call_in_the_history_goes_back_to_openai(gw: ServedGateway, up: FakeUpstream) -> None:
    call = {"id": "call_c1", "type": "custom", "custom": {"name": "run_python", "input": CODE}}
    history = [
        {"role": "user", "content": "Print 42."},
        {"role": "assistant", "content": None, "tool_calls": [call]},
        {"role": "tool", "tool_call_id": "call_c1", "content": "42"},
    ]
    up.script(Reply(text="It printed 42."))
    seen = ask("sdk", "m-openai", Ask(openai={"messages": history, "tools": [CUSTOM]}), up=up)
    assert seen.status == 200, seen.error
    body = the_request(up, "openai").json
    assert body["messages"][1]["tool_calls"] == [call]


@pytest.mark.parametrize("family", ["anthropic", "gemini", "ollama"])
@pytest.mark.parametrize("client", ["openai", "sdk"])
def test_custom_tools_elsewhere_are_refused_or_dropped(
    gw: ServedGateway, up: FakeUpstream, client: str, family: str
) -> None:
    up.script(Reply(text="42"))
    refused, kept, body = refused_then_dropped(client, family, CUSTOM_ASK, gw=gw, up=up)
    assert "tools[1]" in refused.error and "tool_choice" in refused.error
    assert {"tools[1]", "tool_choice"} <= dropped(kept)
    assert "run_python" not in json.dumps(body)
    assert "get_weather" in json.dumps(body["tools"])


OLLAMA_FIELD = {"openai": "tool_choice", "sdk": "tool_choice", "gemini": "toolConfig.functionCallingConfig.mode"}


@pytest.mark.parametrize("client", ["openai", "gemini", "sdk"])
def test_ollama_cannot_be_made_to_call_a_tool_refused_or_offered_only_those(
    gw: ServedGateway, up: FakeUpstream, client: str
) -> None:
    up.script(Reply(tool_calls=[("get_time", {"city": "Paris"})]))
    refused, kept, body = refused_then_dropped(client, "ollama", allowed_ask("required"), gw=gw, up=up)
    assert f"'{OLLAMA_FIELD[client]}'" in refused.error
    assert dropped(kept) == {OLLAMA_FIELD[client]}
    assert sent_choice("ollama", body) == sorted(ALLOWED)  # with drop_params: it may call (only) those
    assert [n for n, _ in kept.tool_calls] == ["get_time"]


def test_a_named_choice_to_ollama_offers_only_that_tool(gw: ServedGateway, up: FakeUpstream) -> None:
    named = Ask(
        openai={
            "messages": [{"role": "user", "content": PROMPT}],
            "tools": TOOLS,
            "tool_choice": {"type": "function", "function": {"name": "get_time"}},
        }
    )
    up.script(Reply(tool_calls=[("get_time", {"city": "Paris"})]))
    refused, kept, body = refused_then_dropped("openai", "ollama", named, gw=gw, up=up)
    assert "'tool_choice'" in refused.error
    assert dropped(kept) == {"tool_choice"}
    assert sent_choice("ollama", body) == ["get_time"]
