"""Tool calling helpers: schemas from typed Python functions, and the call-execute-reply loop.

    >>> def get_weather(city: str, unit: str = "celsius") -> str:
    ...     '''The current weather in a city.'''
    ...     return "sunny"
    >>> function_tool(get_weather)["function"]["parameters"]["required"]
    ['city']

``run_tools(model, messages, tools=[get_weather])`` asks the model, runs the functions it calls,
sends their results back, and repeats until the model answers without calling a tool (or
``max_steps`` is reached, which raises :class:`MaxStepsExceededError`). The caller's ``messages``
are not changed; the final response's ``messages`` holds the whole transcript.
"""

from __future__ import annotations

import inspect
import json
from collections.abc import Callable, Sequence
from typing import Any

from llmswitch.errors import MaxStepsExceededError


def function_tool(fn: Callable[..., Any], *, name: str | None = None, description: str | None = None) -> dict[str, Any]:
    """An OpenAI tool definition for ``fn``, its parameters' JSON schema built from its type hints."""
    from pydantic import create_model

    sig = inspect.signature(fn)
    hints = _type_hints(fn)
    fields: dict[str, Any] = {}
    for pname, param in sig.parameters.items():
        if param.kind in (param.VAR_POSITIONAL, param.VAR_KEYWORD):
            continue
        annotation = hints.get(pname, Any)
        default = ... if param.default is param.empty else param.default
        fields[pname] = (annotation, default)
    model = create_model(f"{fn.__name__}_args", **fields)
    schema = model.model_json_schema()
    schema.pop("title", None)
    for prop in schema.get("properties", {}).values():
        prop.pop("title", None)
    schema.setdefault("required", [])
    doc = inspect.getdoc(fn) or ""
    return {
        "type": "function",
        "function": {
            "name": name or fn.__name__,
            "description": description or doc.strip().split("\n\n")[0],
            "parameters": schema,
        },
    }


def _type_hints(fn: Callable[..., Any]) -> dict[str, Any]:
    import typing

    try:
        return typing.get_type_hints(fn)
    except Exception:
        return {}


def _tool_table(
    tools: Sequence[Callable[..., Any] | dict[str, Any]],
) -> tuple[list[dict[str, Any]], dict[str, Callable[..., Any]]]:
    schemas, table = [], {}
    for t in tools:
        if callable(t):
            schema = function_tool(t)
            table[schema["function"]["name"]] = t
            schemas.append(schema)
        else:
            schemas.append(t)
    return schemas, table


async def _execute(fn: Callable[..., Any], arguments: str) -> tuple[str, bool]:
    try:
        args = json.loads(arguments or "{}")
        result = fn(**args)
        if inspect.isawaitable(result):
            result = await result
    except Exception as exc:  # the model gets to see its tool failed, and why
        return f"Error: {type(exc).__name__}: {exc}", True
    if isinstance(result, str):
        return result, False
    dump = getattr(result, "model_dump_json", None)
    return (dump() if dump else json.dumps(result, default=str)), False


async def arun_tools(
    model: str,
    messages: Sequence[Any],
    *,
    tools: Sequence[Callable[..., Any] | dict[str, Any]],
    max_steps: int = 8,
    **kwargs: Any,
) -> Any:
    """Run the tool loop; returns the final response, whose ``messages`` is the whole transcript.

    The transcript is ``messages`` followed by each assistant turn, the tool results, and the final
    answer. ``messages`` itself (and every message in it) is left as it was, so it can be reused.

        >>> final = llmswitch.run_tools("openai/gpt-4o", [{"role": "user", "content": "Weather?"}],
        ...                             tools=[get_weather])  # doctest: +SKIP
        >>> [m["role"] for m in final.messages]  # doctest: +SKIP
        ['user', 'assistant', 'tool', 'assistant']
    """
    from llmswitch.sdk import acompletion

    schemas, table = _tool_table(tools)
    # a list of our own: the caller's messages are shared, never appended to
    transcript = list(messages)
    for _ in range(max_steps):
        r = await acompletion(model, transcript, tools=schemas, **kwargs)
        msg = r.choices[0].message
        transcript.append(msg.model_dump())
        if not msg.tool_calls:
            r.messages = transcript
            return r
        for call in msg.tool_calls:
            name = call.function.name if call.function is not None else (call.custom or {}).get("name")
            fn = table.get(name or "")
            if fn is None or call.function is None:
                content, is_error = f"Error: no tool named {name!r}", True
            else:
                content, is_error = await _execute(fn, call.function.arguments)
            reply: dict[str, Any] = {"role": "tool", "tool_call_id": call.id, "content": content}
            if is_error:
                reply["is_error"] = True
            transcript.append(reply)
    raise MaxStepsExceededError(f"the model was still calling tools after {max_steps} steps")


def run_tools(
    model: str,
    messages: Sequence[Any],
    *,
    tools: Sequence[Callable[..., Any] | dict[str, Any]],
    max_steps: int = 8,
    **kwargs: Any,
) -> Any:
    """Sync :func:`arun_tools`."""
    from llmswitch._sync import run

    return run(arun_tools(model, messages, tools=tools, max_steps=max_steps, **kwargs))


def stream_chunk_builder(chunks: Sequence[Any]) -> Any:
    """Join streamed chunks into the complete response they add up to (LiteLLM's helper)."""
    from llmswitch import results

    if not chunks:
        raise ValueError("no chunks to build a response from")
    first = chunks[0]
    content, reasoning, finish, usage = "", "", None, None
    refusal: str | None = None
    function_call: list[str] | None = None  # the legacy functions' one call: name, arguments
    calls: dict[int, dict[str, Any]] = {}
    for c in chunks:
        if c.usage is not None:
            usage = c.usage
        for ch in c.choices:
            d = ch.delta
            content += d.content or ""
            reasoning += d.reasoning_content or ""
            if d.refusal is not None:
                refusal = (refusal or "") + d.refusal
            if d.function_call is not None:
                function_call = function_call or ["", ""]
                function_call[0] += d.function_call.name or ""
                function_call[1] += d.function_call.arguments or ""
            for t in d.tool_calls or []:
                slot = calls.setdefault(t.index, {"id": "", "name": "", "arguments": "", "psf": None})
                slot["id"] = t.id or slot["id"]
                if t.function is not None:
                    slot["name"] += t.function.name or ""
                    slot["arguments"] += t.function.arguments or ""
                slot["psf"] = t.provider_specific_fields or slot["psf"]
            finish = ch.finish_reason or finish
    tool_calls = [
        results.ChatCompletionMessageToolCall(
            id=v["id"],
            type="function",
            function=results.Function(name=v["name"], arguments=v["arguments"]),
            provider_specific_fields=v["psf"],
        )
        for _, v in sorted(calls.items())
    ]
    msg = results.Message(
        role="assistant",
        content=content or None,
        tool_calls=tool_calls or None,
        refusal=refusal,
        function_call=results.Function(name=function_call[0], arguments=function_call[1]) if function_call else None,
        reasoning_content=reasoning or None,
    )
    return results.ModelResponse(
        id=first.id,
        created=first.created,
        model=first.model,
        choices=[results.Choices(index=0, message=msg, finish_reason=finish)],
        usage=usage,
    )
