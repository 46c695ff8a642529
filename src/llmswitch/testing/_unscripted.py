"""What the fake upstream answers when nothing is scripted: a tool call, JSON that fits, or an echo.

A request without tools or a response format gets its last user message back (the default reply's
echo). Otherwise the fake behaves as a model asked the same would:

- tools sent, and the conversation does not end in tool results: it calls one, with arguments
  valid for the tool's schema. ``tool_choice`` is respected: ``none`` calls nothing, a named tool is
  the one called, ``required`` calls the first tool not yet called in the conversation (so a
  forced answer tool, as Anthropic's structured outputs use, comes after the caller's own tools),
  ``auto`` calls the tool the last user message names, else the first one.
- the conversation ends in tool results: it answers in words, quoting them.
- a ``response_format`` (or Gemini's ``responseSchema`` / ``responseMimeType``): the answer is JSON,
  an instance of the schema for ``json_schema`` and ``{"answer": ...}`` for ``json_object``.
"""

from __future__ import annotations

import dataclasses
from typing import Any

from llmswitch import ir
from llmswitch.dialects._json import dumps
from llmswitch.dialects.anthropic_content import RESPONSE_TOOL
from llmswitch.testing._instances import instance_for
from llmswitch.testing._reply import Reply, last_user_text


def fill_reply(reply: Reply, req: ir.Request | None) -> Reply:
    """``reply`` with the content ``req`` calls for, when the reply leaves its content open.

    A reply with text, tool calls or reasoning of its own, an error, or a request with neither tools
    nor a response format is returned as it is.
    """
    if req is None or reply.is_error or reply.text is not None or reply.tool_calls or reply.reasoning is not None:
        return reply
    call = _tool_call(req)
    if call is not None:
        return dataclasses.replace(reply, tool_calls=[call])
    results = _last_tool_results(req)
    answer = _structured_answer(req, results)
    if answer is not None:
        return dataclasses.replace(reply, text=answer)
    if results:
        return dataclasses.replace(reply, text=results)
    return reply


def _function_tools(req: ir.Request) -> list[ir.Tool]:
    # a provider's own tools (web search, code execution) run on the provider's side: never "called" here
    return [t for t in req.tools or () if t.builtin is None]


def _ends_in_tool_results(req: ir.Request) -> bool:
    return bool(req.messages) and req.messages[-1].role == "tool"


def _called(req: ir.Request) -> set[str]:
    return {c.name for m in req.messages if m.role == "assistant" for c in m.tool_calls}


def _tool_call(req: ir.Request) -> tuple[str, dict[str, Any]] | None:
    tools = _function_tools(req)
    choice = req.tool_choice
    mode = choice.mode if choice is not None else "auto"
    if not tools or mode == "none":
        return None
    if mode == "tool":
        tool = next((t for t in tools if choice is not None and t.name == choice.name), None)
    elif mode == "required":
        called = _called(req)
        tool = next((t for t in tools if t.name not in called), tools[-1])
    elif _ends_in_tool_results(req):
        return None
    else:
        said = last_user_text(req).lower()
        tool = next((t for t in tools if t.name.lower() in said), tools[0])
    if tool is None:
        return None
    schema = tool.parameters if tool.parameters is not None else {"type": "object", "properties": {}}
    # the answer tool is the response format in Anthropic's form: its input is the answer
    args = _answer(schema, req, "") if tool.name == RESPONSE_TOOL else instance_for(schema)
    return tool.name, args if isinstance(args, dict) else {}


def _last_tool_results(req: ir.Request) -> str:
    """The tool results that end the conversation, as a sentence ('' when it does not end in any)."""
    names = {c.id: c.name for m in req.messages for c in m.tool_calls}
    said = []
    for m in reversed(req.messages):
        if m.role != "tool":
            break
        for p in m.content:
            if isinstance(p, ir.ToolResultPart):
                name = p.name or names.get(p.tool_call_id, "the tool")
                said.append(f"{name} returned: {p.text}")
    return "; ".join(reversed(said))


def _structured_answer(req: ir.Request, results: str) -> str | None:
    rf = req.response_format
    if rf is None or rf.type == "text":
        return None
    schema = rf.schema if rf.type == "json_schema" and rf.schema is not None else {"type": "object"}
    return dumps(_answer(schema, req, results)).decode()


def _answer(schema: dict[str, Any], req: ir.Request, results: str) -> Any:
    """An instance of ``schema``; for any object at all (``json_object``), the answer's words in one."""
    free = set(schema) <= {"type", "title", "description", "properties", "additionalProperties"}
    if (
        free
        and schema.get("type", "object") == "object"
        and not schema.get("properties")
        and schema.get("additionalProperties") is not False
    ):
        return {"answer": results or last_user_text(req)}
    return instance_for(schema)
