"""OpenAI's tool choices and its legacy function calling, both directions, for ``openai_chat``.

- ``tool_choice`` as the API takes it: ``"auto" | "none" | "required"``, a named function
  (``{"type": "function", ...}``) or custom tool (``{"type": "custom", ...}``), and ``allowed_tools``
  (``{"type": "allowed_tools", "allowed_tools": {"mode": "auto" | "required", "tools": [...]}}``), which
  narrows the choice to some tools (Gemini's ``allowedFunctionNames``). The legacy ``function_call``
  (``"auto" | "none" | {"name": ...}``) too.
- A caller of the legacy ``functions`` / ``function_call`` gets ``message.function_call`` (and
  ``delta.function_call``, finish reason ``function_call``) back, whichever provider answered:
  :func:`functions_response` and :class:`FunctionCallChunks` rewrite the tool-call answer.

    >>> tool_choice_in({"type": "allowed_tools", "allowed_tools": {"mode": "required",
    ...     "tools": [{"type": "function", "function": {"name": "a"}}]}})
    ToolChoice(mode='required', allowed=['a'])
"""

from __future__ import annotations

from typing import Any

from llmswitch import ir
from llmswitch.dialects._json import invalid

_CHOICE_SHAPES = (
    "'auto', 'none', 'required', {'type': 'function', 'function': {'name': …}}, {'type': 'custom', 'custom': "
    "{'name': …}} or {'type': 'allowed_tools', 'allowed_tools': {'mode': 'auto' | 'required', 'tools': […]}}"
)


def tool_choice_in(raw: Any, where: str = "tool_choice") -> ir.ToolChoice | None:
    """A caller's ``tool_choice`` (or legacy ``function_call``) as the IR's."""
    if raw is None:
        return None
    if raw in ("auto", "none", "required"):
        return ir.ToolChoice(mode=raw)
    if raw == "any":
        return ir.ToolChoice(mode="required")
    if isinstance(raw, dict):
        kind = raw.get("type")
        if kind == "allowed_tools":
            return _allowed_in(raw.get("allowed_tools"), f"{where}.allowed_tools")
        name = tool_name(raw) if kind in ("function", "custom") else raw.get("name")
        if isinstance(name, str) and name:
            return ir.ToolChoice(mode="tool", name=name)
    raise invalid(where, f"must be {_CHOICE_SHAPES}")


def tool_name(t: dict[str, Any]) -> str | None:
    """The name in a ``{"type": "function" | "custom", <type>: {"name": ...}}`` object."""
    inner = t.get(str(t.get("type")))
    name = inner.get("name") if isinstance(inner, dict) else None
    return name if isinstance(name, str) and name else None


def _allowed_in(at: Any, where: str) -> ir.ToolChoice:
    if not isinstance(at, dict) or at.get("mode") not in ("auto", "required"):
        raise invalid(f"{where}.mode", "must be 'auto' or 'required'")
    tools = at.get("tools")
    if not isinstance(tools, list) or not tools:
        raise invalid(f"{where}.tools", "must be a non-empty list of tools")
    names = []
    for i, t in enumerate(tools):
        name = tool_name(t) if isinstance(t, dict) else None
        if name is None:
            raise invalid(f"{where}.tools[{i}]", "must be {'type': 'function', 'function': {'name': …}} (or custom)")
        names.append(name)
    return ir.ToolChoice(mode=at["mode"], allowed=names)


def is_custom_tool(t: ir.Tool) -> bool:
    """An OpenAI custom tool (free-form input, optionally a grammar): carried as a builtin, as written."""
    return t.builtin is not None and t.builtin.get("type") == "custom"


def tool_choice_out(tc: ir.ToolChoice, tools: list[ir.Tool] | None) -> Any:
    """The IR's tool choice as OpenAI's (a custom tool is named as one)."""
    custom = {t.name for t in tools or () if is_custom_tool(t)}

    def named(name: str | None) -> dict[str, Any]:
        kind = "custom" if name in custom else "function"
        return {"type": kind, kind: {"name": name}}

    if tc.mode == "tool":
        return named(tc.name)
    if tc.allowed and tc.mode in ("auto", "required"):
        return {"type": "allowed_tools", "allowed_tools": {"mode": tc.mode, "tools": [named(n) for n in tc.allowed]}}
    return tc.mode


# ---------------------------------------------------------------- legacy function calling, answered as asked


def functions_response(body: dict[str, Any]) -> dict[str, Any]:
    """A Chat Completions response body with each choice's first tool call as ``function_call``."""
    for choice in body.get("choices") or ():
        msg = choice.get("message") or {}
        calls = msg.pop("tool_calls", None)
        if calls:
            fn = calls[0].get("function") or {}
            msg["function_call"] = {"name": fn.get("name", ""), "arguments": fn.get("arguments", "")}
        if choice.get("finish_reason") == "tool_calls":
            choice["finish_reason"] = "function_call"
    return body


def functions_chunk(chunk: dict[str, Any]) -> dict[str, Any]:
    """A stream chunk with the first tool call's fragments as ``delta.function_call``."""
    for choice in chunk.get("choices") or ():
        delta = choice.get("delta") or {}
        calls = delta.pop("tool_calls", None)
        first = [c for c in calls or () if c.get("index", 0) == 0]
        if first:
            fn = first[0].get("function") or {}
            delta["function_call"] = {k: fn[k] for k in ("name", "arguments") if k in fn}
        if choice.get("finish_reason") == "tool_calls":
            choice["finish_reason"] = "function_call"
    return chunk


class FunctionCallChunks:
    """An OpenAI ``StreamEncoder`` whose chunks say ``function_call`` (see :func:`functions_chunk`)."""

    def __init__(self, encoder: Any) -> None:
        self._encoder = encoder

    def chunk(self, ev: ir.StreamEvent) -> dict[str, Any] | None:
        c: dict[str, Any] | None = self._encoder.chunk(ev)
        return functions_chunk(c) if c is not None else None

    def encode(self, ev: ir.StreamEvent) -> bytes:
        from llmswitch.dialects._json import dumps
        from llmswitch.dialects.sse import encode_event

        c = self.chunk(ev)
        return encode_event(dumps(c)) if c is not None else b""

    def usage_chunk(self) -> dict[str, Any] | None:
        u: dict[str, Any] | None = self._encoder.usage_chunk()
        return u

    def close(self) -> bytes:
        tail: bytes = self._encoder.close()
        return tail


# ---------------------------------------------------------------- custom tools, where a target has none


def unsupported_custom_tools(req: ir.Request, dialect: str) -> list[str]:
    """The caller's fields naming custom tools ``dialect`` cannot carry (only OpenAI's API has them):
    each ``tools[i]``, and a ``tool_choice`` that names one."""
    if dialect == "openai_chat" or not req.tools:
        return []
    custom = {t.name for t in req.tools if is_custom_tool(t)}
    if not custom:
        return []
    found = [f"tools[{i}]" for i, t in enumerate(req.tools) if is_custom_tool(t)]
    tc = req.tool_choice
    if tc is not None and (tc.name in custom or custom.intersection(tc.allowed or ())):
        found.append("tool_choice")
    return found


def without_custom_tools(req: ir.Request) -> dict[str, Any]:
    """The request's changes that drop its custom tools (and a tool choice naming one: the choice reverts
    to ``auto`` over the tools that are left)."""
    custom = {t.name for t in req.tools or () if is_custom_tool(t)}
    tools = [t for t in req.tools or () if not is_custom_tool(t)] or None
    tc = req.tool_choice
    if tc is not None and tc.name in custom:
        tc = ir.ToolChoice(mode="auto", parallel=tc.parallel)
    elif tc is not None and tc.allowed:
        allowed = [n for n in tc.allowed if n not in custom]
        tc = ir.ToolChoice(mode=tc.mode, parallel=tc.parallel, allowed=allowed or None)
    if tools is None:
        tc = None
    return {"tools": tools, "tool_choice": tc}
