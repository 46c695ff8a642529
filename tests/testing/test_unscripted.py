"""What the fake upstream answers when nothing is scripted: tool calls, JSON, text after tool results, echoes."""

from __future__ import annotations

import json
from typing import Any

import jsonschema
import pytest

import llmswitch
from llmswitch import ir
from llmswitch.dialects.anthropic_content import RESPONSE_TOOL
from llmswitch.testing import FakeUpstream, Reply
from llmswitch.testing._unscripted import fill_reply

WEATHER = {
    "type": "object",
    "properties": {"city": {"type": "string"}, "unit": {"enum": ["celsius", "fahrenheit"]}},
    "required": ["city"],
}
TIME = {"type": "object", "properties": {"zone": {"type": "string", "format": "uuid"}}, "required": ["zone"]}
TOOLS = [ir.Tool(name="get_weather", parameters=WEATHER), ir.Tool(name="get_time", parameters=TIME)]


def user(text: str) -> ir.Message:
    return ir.Message(role="user", content=[ir.TextPart(text)])


def called(name: str, call_id: str = "c1") -> list[ir.Message]:
    return [
        ir.Message(role="assistant", content=[ir.ToolCallPart(id=call_id, name=name, arguments="{}")]),
        ir.Message(role="tool", content=[ir.ToolResultPart(tool_call_id=call_id, content=[ir.TextPart("done")])]),
    ]


def request(*messages: ir.Message, **kw: Any) -> ir.Request:
    return ir.Request(model="m", messages=list(messages or [user("hi")]), **kw)


@pytest.mark.parametrize(
    ("req", "tool"),
    [
        (request(tools=TOOLS), "get_weather"),
        (request(user("what time is it? use get_time"), tools=TOOLS), "get_time"),
        (request(tools=TOOLS, tool_choice=ir.ToolChoice(mode="tool", name="get_time")), "get_time"),
        (request(tools=TOOLS, tool_choice=ir.ToolChoice(mode="required")), "get_weather"),
        (
            request(user("hi"), *called("get_weather"), tools=TOOLS, tool_choice=ir.ToolChoice(mode="required")),
            "get_time",
        ),
        (request(tools=[ir.Tool(name="web", builtin={"type": "web_search"}), *TOOLS]), "get_weather"),
    ],
    ids=["auto-first", "auto-named-in-text", "named", "required", "required-next-uncalled", "builtin-skipped"],
)
def test_a_tool_is_called_with_arguments_valid_for_its_schema(req: ir.Request, tool: str) -> None:
    reply = fill_reply(Reply(), req)
    ((name, args),) = reply.tool_calls
    assert name == tool
    schema = {t.name: t.parameters for t in TOOLS}[tool]
    jsonschema.Draft202012Validator(schema, format_checker=jsonschema.FormatChecker()).validate(args)
    assert reply.text is None


def test_no_tool_is_called_for_tool_choice_none_and_the_echo_stays() -> None:
    assert fill_reply(Reply(), request(user("hi"), tools=TOOLS, tool_choice=ir.ToolChoice(mode="none"))) == Reply()


def test_after_tool_results_the_answer_is_text_quoting_them() -> None:
    req = request(user("weather?"), *called("get_weather"), tools=TOOLS)
    assert fill_reply(Reply(), req) == Reply(text="get_weather returned: done")


def test_json_schema_and_json_object_answers() -> None:
    schema = {"type": "object", "properties": {"n": {"type": "integer", "minimum": 3}}, "required": ["n"]}
    fmt = ir.ResponseFormat(type="json_schema", schema=schema)
    assert json.loads(fill_reply(Reply(), request(response_format=fmt)).text or "") == {"n": 3}
    obj = ir.ResponseFormat(type="json_object")
    assert json.loads(fill_reply(Reply(), request(user("hi"), response_format=obj)).text or "") == {"answer": "hi"}
    after = request(user("weather?"), *called("get_weather"), tools=TOOLS, response_format=obj)
    assert json.loads(fill_reply(Reply(), after).text or "") == {"answer": "get_weather returned: done"}


def test_the_anthropic_answer_tool_for_json_object_carries_the_answer() -> None:
    tools = [ir.Tool(name=RESPONSE_TOOL, parameters={"type": "object"})]
    req = request(user("hi"), tools=tools, tool_choice=ir.ToolChoice(mode="tool", name=RESPONSE_TOOL))
    assert fill_reply(Reply(), req).tool_calls == [(RESPONSE_TOOL, {"answer": "hi"})]


@pytest.mark.parametrize(
    "reply",
    [Reply(text="scripted"), Reply(tool_calls=[("x", {})]), Reply(reasoning="hmm"), Reply(status=500)],
    ids=["text", "tool-calls", "reasoning", "error"],
)
def test_a_reply_with_content_of_its_own_is_kept(reply: Reply) -> None:
    assert fill_reply(reply, request(tools=TOOLS)) is reply


def test_faults_of_the_default_reply_are_kept() -> None:
    filled = fill_reply(Reply(latency=0.5, chunk_delay=0.1), request(tools=TOOLS))
    assert (filled.latency, filled.chunk_delay, filled.tool_calls[0][0]) == (0.5, 0.1, "get_weather")


def test_the_fake_upstream_echoes_plain_requests_and_calls_tools_when_sent() -> None:
    weather = {"type": "function", "function": {"name": "get_weather", "parameters": WEATHER}}
    with FakeUpstream() as up:
        kw: dict[str, Any] = {"api_base": up.openai_base, "api_key": "k"}
        plain = llmswitch.completion("openai/gpt-4o-mini", [{"role": "user", "content": "Hello"}], **kw)
        assert plain.choices[0].message.content == "Hello"
        tools = llmswitch.completion(
            "openai/gpt-4o-mini", [{"role": "user", "content": "Hello"}], tools=[weather], **kw
        )
        (tc,) = tools.choices[0].message.tool_calls
        assert (tc.function.name, json.loads(tc.function.arguments)) == (
            "get_weather",
            {"city": "city", "unit": "celsius"},
        )
        up.script(Reply(text="scripted"))
        scripted = llmswitch.completion(
            "openai/gpt-4o-mini", [{"role": "user", "content": "Hi"}], tools=[weather], **kw
        )
        assert scripted.choices[0].message.content == "scripted"
