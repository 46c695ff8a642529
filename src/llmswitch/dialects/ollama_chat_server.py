"""Ollama's ``/api/chat`` as a server speaks it: a request body -> IR, and IR -> answers and NDJSON.

The other half of :mod:`llmswitch.dialects.ollama_chat`, used where something must answer like
Ollama (``llmswitch.testing.FakeUpstream``'s Ollama face). Ollama streams unless the body says
``"stream": false``; a stream is one JSON object per line, the last with ``done: true``.

    >>> decode_request({"model": "llama3", "messages": [{"role": "user", "content": "hi"}]}).stream
    True
"""

from __future__ import annotations

import datetime
from typing import Any

from llmswitch import ir
from llmswitch.dialects._json import dumps, invalid, loads_lenient
from llmswitch.dialects.ollama_chat import OPTION_KEYS
from llmswitch.errors import APIStatusError

_ROLES = ("system", "user", "assistant", "tool")
_OPTIONS_IN = {
    "temperature": "temperature",
    "top_p": "top_p",
    "top_k": "top_k",
    "seed": "seed",
    "num_predict": "max_tokens",
    "presence_penalty": "presence_penalty",
    "frequency_penalty": "frequency_penalty",
}


def decode_request(body: dict[str, Any]) -> ir.Request:
    """An ``/api/chat`` body as IR; a malformed one raises the 400 Ollama would answer."""
    model = body.get("model")
    if not isinstance(model, str) or not model:
        raise invalid("model", "model is required")
    messages = body.get("messages")
    if not isinstance(messages, list):
        raise invalid("messages", "messages must be a list")
    fields: dict[str, Any] = {}
    options = body.get("options") or {}
    if not isinstance(options, dict):
        raise invalid("options", "options must be an object")
    for key, name in _OPTIONS_IN.items():
        if options.get(key) is not None:
            fields[name] = options[key]
    if options.get("stop"):
        fields["stop"] = list(options["stop"])
    extra = {k: v for k, v in options.items() if k in OPTION_KEYS and k != "num_predict"}
    for key in ("keep_alive", "think"):
        if body.get(key) is not None:
            extra[key] = body[key]
    fmt = body.get("format")
    if fmt == "json":
        fields["response_format"] = ir.ResponseFormat(type="json_object")
    elif isinstance(fmt, dict):
        fields["response_format"] = ir.ResponseFormat(type="json_schema", schema=fmt)
    tools = [_tool_in(t, i) for i, t in enumerate(body.get("tools") or [])]
    return ir.Request(
        model=model,
        messages=[_message_in(m, i) for i, m in enumerate(messages)],
        stream=body.get("stream", True) is not False,
        include_usage=True,
        tools=tools or None,
        extra=extra or None,
        extra_dialect="ollama_chat" if extra else None,
        **fields,
    )


def _message_in(m: Any, i: int) -> ir.Message:
    if not isinstance(m, dict) or m.get("role") not in _ROLES:
        raise invalid(f"messages[{i}].role", f"role must be one of {', '.join(_ROLES)}")
    content = m.get("content", "")
    if not isinstance(content, str):
        raise invalid(f"messages[{i}].content", "content must be a string")
    if m["role"] == "tool":
        name = m.get("tool_name")
        call_id = str(m.get("tool_call_id") or name or "")
        return ir.Message(role="tool", content=[ir.ToolResultPart(call_id, [ir.TextPart(content)], name=name)])
    parts: list[ir.Part] = []
    if m.get("thinking"):
        parts.append(ir.ReasoningPart(text=str(m["thinking"])))
    if content:
        parts.append(ir.TextPart(text=content))
    parts.extend(ir.ImagePart(data=str(img)) for img in m.get("images") or [])
    for k, tc in enumerate(m.get("tool_calls") or []):
        fn = tc.get("function") or {}
        args = fn.get("arguments")
        if not isinstance(args, dict):
            raise invalid(f"messages[{i}].tool_calls[{k}].function.arguments", "arguments must be an object")
        parts.append(
            ir.ToolCallPart(id=str(tc.get("id") or f"call_{k}"), name=str(fn.get("name")), arguments=_text(args))
        )
    return ir.Message(role=m["role"], content=parts)


def _tool_in(t: Any, i: int) -> ir.Tool:
    fn = t.get("function") if isinstance(t, dict) else None
    if not isinstance(fn, dict) or not isinstance(fn.get("name"), str):
        raise invalid(f"tools[{i}].function.name", "a tool needs a function with a name")
    return ir.Tool(name=fn["name"], description=fn.get("description"), parameters=fn.get("parameters"))


def _text(value: Any) -> str:
    return dumps(value).decode()


_DONE_REASON = {"stop": "stop", "tool_calls": "stop", "length": "length", "content_filter": "stop", "error": "stop"}


def encode_response(resp: ir.Response) -> dict[str, Any]:
    choice = resp.choices[0] if resp.choices else ir.Choice()
    # Ollama has no refusal field: a refusal is what the model said
    msg: dict[str, Any] = {
        "role": "assistant",
        "content": "".join(p.text for p in choice.parts if isinstance(p, ir.TextPart)),
    }
    if choice.reasoning:
        msg["thinking"] = choice.reasoning
    if choice.tool_calls:
        msg["tool_calls"] = [_call_out(c, k) for k, c in enumerate(choice.tool_calls)]
    out: dict[str, Any] = {"model": resp.model, "created_at": _created_at(resp.created), "message": msg, "done": True}
    out["done_reason"] = _DONE_REASON.get(choice.finish_reason or "stop", "stop")
    out.update(_usage_out(resp.usage))
    return out


def _call_out(c: ir.ToolCallPart | ir.ToolCallDelta, index: int) -> dict[str, Any]:
    args = loads_lenient(c.arguments or "{}")
    return {"id": c.id, "function": {"index": index, "name": c.name, "arguments": args if args is not None else {}}}


def _usage_out(u: ir.Usage | None) -> dict[str, Any]:
    if u is None:
        return {}
    return {"prompt_eval_count": u.input_tokens, "eval_count": u.output_tokens}


def _created_at(created: int) -> str:
    return datetime.datetime.fromtimestamp(created or 0, datetime.UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


class StreamEncoder:
    """IR events -> NDJSON lines; tool calls go out whole (Ollama never splits their arguments)."""

    def __init__(self, meta: ir.StreamMeta, *, include_usage: bool = True) -> None:
        self._meta = meta
        self._calls: dict[int, ir.ToolCallDelta] = {}
        self._finish: ir.FinishReason | None = None
        self._usage: ir.Usage | None = None

    def _line(self, msg: dict[str, Any], **more: Any) -> bytes:
        obj = {"model": self._meta.model, "created_at": _created_at(self._meta.created), "message": msg, **more}
        return dumps(obj) + b"\n"

    def encode(self, ev: ir.StreamEvent) -> bytes:
        for t in ev.tool_calls or ():
            slot = self._calls.get(t.index)
            if slot is None:
                self._calls[t.index] = ir.ToolCallDelta(index=t.index, id=t.id, name=t.name, arguments=t.arguments)
            else:
                slot.arguments += t.arguments
        if ev.usage is not None:
            self._usage = ev.usage
        if ev.finish_reason is not None:
            self._finish = ev.finish_reason
        text = (ev.text or "") + (ev.refusal or "")
        msg: dict[str, Any] = {"role": "assistant", "content": text}
        if ev.reasoning:
            msg["thinking"] = ev.reasoning
        return self._line(msg, done=False) if text or ev.reasoning else b""

    def close(self) -> bytes:
        msg: dict[str, Any] = {"role": "assistant", "content": ""}
        if self._calls:
            calls = [self._calls[k] for k in sorted(self._calls)]
            msg["tool_calls"] = [_call_out(c, k) for k, c in enumerate(calls)]
        reason = _DONE_REASON.get(self._finish or "stop", "stop")
        return self._line(msg, done=True, done_reason=reason, **_usage_out(self._usage))


def encode_error(exc: BaseException) -> tuple[int, dict[str, Any]]:
    """Ollama's error body: ``{"error": "<text>"}``."""
    status = exc.status_code if isinstance(exc, APIStatusError) and exc.status_code else 500
    message = getattr(exc, "message", None) or str(exc)
    return status, {"error": message}
